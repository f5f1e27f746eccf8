/* SPDX-License-Identifier: MIT */
/*
 * Guest payload for the virtio device test (tests/unit/virtio/test-guest.c): drives
 * virtio-rng and virtio-blk through iovd-vmm's virtio-pci transport from CPL 3 and
 * reports each step on the boot-progress port:
 *   0x11  virtio-rng filled 64 bytes, not all zero
 *   0x21  virtio-blk read sectors 0-7: byte i of the disk is i & 0xff
 *   0x22  virtio-blk wrote sectors 8-15 with byte i = ~i (the host checks the image)
 *   0x25  FLUSH succeeded (fdatasync inside iovd-vmm's sandbox)
 *   0x23  GET_ID returned the serial "iovd-e2e-disk"
 *   0x24  a read at sector 16 (the end of the 8 KiB disk) failed with IOERR
 *   0x26  a descriptor chain looping on itself got the device DEVICE_NEEDS_RESET
 *         (virtio 1.2 §2.1.2), and iovd-vmm kept running
 *   0x27  after a reset the same device served a read again
 *   0xdead on any unexpected answer. Then reset through the i8042.
 */
#include "guest.inc"
#include "virtio-cpl3.inc"
#include "virtio-driver.inc"

        .set RNG_RING, 0x300000
        .set RNG_BUF, 0x310000
        .set BLK_RING, 0x400000
        .set HDR, 0x410000         /* struct virtio_blk_outhdr: type, ioprio, sector */
        .set DATA, 0x411000
        .set STATUS, 0x412000
        .set ID, 0x413000

        .globl _start
_start:
        VIRTIO_CPL3_ENTER user

user:
        /* ---- virtio-rng (0x1044), requestq 0 ---- */
        mov $0x1044, %edi
        call vdrv_find
        call vdrv_init
        xor %esi, %esi
        mov $RNG_RING, %edi
        call vdrv_queue
        mov %rax, %r15
        call vdrv_driver_ok
        VDRV_DESC RNG_RING, 0, RNG_BUF, 64, 2, 0
        mov $RNG_RING, %edi
        xor %esi, %esi
        mov %r15, %rdx
        xor %ecx, %ecx
        call vdrv_submit
        cmp $64, %eax
        jne fail
        mov RNG_BUF, %rax
        or RNG_BUF + 8, %rax
        or RNG_BUF + 56, %rax
        test %rax, %rax
        jz fail
        MARKER 0x11

        /* ---- virtio-blk (0x1042), requestq 0: header, data, status (§5.2.6) ---- */
        mov $0x1042, %edi
        call vdrv_find
        call vdrv_init
        xor %esi, %esi
        mov $BLK_RING, %edi
        call vdrv_queue
        mov %rax, %r15
        call vdrv_driver_ok
        VDRV_DESC BLK_RING, 0, HDR, 16, 1, 1
        VDRV_DESC BLK_RING, 1, DATA, 4096, 3, 2
        VDRV_DESC BLK_RING, 2, STATUS, 1, 2, 0

        movl $0, HDR               /* VIRTIO_BLK_T_IN, sector 0 */
        movq $0, HDR + 8
        call blk_submit
        cmp $4097, %eax
        jne fail
        xor %ecx, %ecx
1:      cmp %cl, DATA(%rcx)
        jne fail
        inc %ecx
        cmp $4096, %ecx
        jne 1b
        MARKER 0x21

        xor %ecx, %ecx
2:      mov %ecx, %eax
        not %eax
        mov %al, DATA(%rcx)
        inc %ecx
        cmp $4096, %ecx
        jne 2b
        movl $1, HDR               /* VIRTIO_BLK_T_OUT, sector 8 */
        movq $8, HDR + 8
        movw $1, BLK_RING + 16 + 12   /* data is device-readable now */
        call blk_submit
        MARKER 0x22

        movl $4, HDR               /* VIRTIO_BLK_T_FLUSH: header and status only */
        VDRV_DESC BLK_RING, 0, HDR, 16, 1, 2
        call blk_submit
        VDRV_DESC BLK_RING, 0, HDR, 16, 1, 1
        MARKER 0x25

        movl $8, HDR               /* VIRTIO_BLK_T_GET_ID */
        VDRV_DESC BLK_RING, 1, ID, 20, 3, 2
        call blk_submit
        lea serial(%rip), %rsi
        mov $ID, %edi
        mov $14, %ecx              /* "iovd-e2e-disk" and its NUL */
        repe cmpsb
        jne fail
        MARKER 0x23

        movl $0, HDR               /* VIRTIO_BLK_T_IN at sector 16: past the end */
        movq $16, HDR + 8
        VDRV_DESC BLK_RING, 1, DATA, 512, 3, 2
        movb $0xee, STATUS
        mov $BLK_RING, %edi
        xor %esi, %esi
        mov %r15, %rdx
        xor %ecx, %ecx
        call vdrv_submit
        cmpb $1, STATUS            /* VIRTIO_BLK_S_IOERR */
        jne fail
        MARKER 0x24

        /* A hostile chain: descriptor 0 names itself as next. */
        VDRV_DESC BLK_RING, 0, HDR, 16, 1, 0
        movzwl BLK_RING + VQ_AVAIL + 2, %eax
        and $VQ_SIZE - 1, %eax
        movw $0, BLK_RING + VQ_AVAIL + 4(, %rax, 2)
        incw BLK_RING + VQ_AVAIL + 2
        movw $0, (%r15)
        mov $100000000, %ecx
5:      testb $0x40, COMMON_STATUS(%r14)
        jnz 6f
        pause
        dec %ecx
        jnz 5b
        jmp fail
6:      MARKER 0x26

        /* Reset and start over on fresh rings: the device works again. */
        mov $BLK_RING, %edi
        xor %eax, %eax
        mov $0x3000 / 8, %ecx
        rep stosq
        call vdrv_init
        xor %esi, %esi
        mov $BLK_RING, %edi
        call vdrv_queue
        mov %rax, %r15
        call vdrv_driver_ok
        VDRV_DESC BLK_RING, 0, HDR, 16, 1, 1
        VDRV_DESC BLK_RING, 1, DATA, 512, 3, 2
        VDRV_DESC BLK_RING, 2, STATUS, 1, 2, 0
        movl $0, HDR               /* read sector 0 again */
        movq $0, HDR + 8
        call blk_submit
        cmpb $0, DATA
        jne fail
        cmpb $0xff, DATA + 255
        jne fail
        MARKER 0x27
        jmp done

/* Submit the chain at descriptor 0; the status must come back VIRTIO_BLK_S_OK. */
blk_submit:
        movb $0xee, STATUS
        mov $BLK_RING, %edi
        xor %esi, %esi
        mov %r15, %rdx
        xor %ecx, %ecx
        call vdrv_submit
        cmpb $0, STATUS
        jne fail
        ret

fail:
        MARKER 0xdead
done:
        VIRTIO_CPL3_RESET

serial: .asciz "iovd-e2e-disk"
        VIRTIO_DRIVER_CODE
        VIRTIO_CPL3_GDT
