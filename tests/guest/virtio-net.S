/* SPDX-License-Identifier: MIT */
/*
 * Guest payload for the virtio-net test (tests/unit/virtio/test-guest.c): over
 * virtio-net and its TAP device, broadcast a raw Ethernet frame (EtherType 0x88b5, local
 * experimental; payload "iovd-guest-hello") until a frame with the payload
 * "iovd-host-reply" comes back, addressed to the MAC the device's config space reports.
 *   0x41  the reply arrived       0xdead  no reply after the retries, or a failed step
 * The link may come up after the first frames (the host side sets the TAP up when it
 * sees it), so the frame is sent again every few milliseconds; other frames received
 * meanwhile are dropped and their buffer is posted again.
 */
#include "guest.inc"
#include "virtio-cpl3.inc"
#include "virtio-driver.inc"

        .set RX_RING, 0x300000
        .set TX_RING, 0x340000
        .set RX_BUF, 0x380000
        .set TX_BUF, 0x390000
        .set HDR_LEN, 12           /* struct virtio_net_hdr_v1 (virtio 1.2 §5.1.6) */
        .set FRAME_LEN, 60
        .set MAC, 0x3a0000

        .globl _start
_start:
        VIRTIO_CPL3_ENTER user

user:
        mov $0x1041, %edi          /* virtio-net */
        call vdrv_find
        call vdrv_init
        xor %esi, %esi             /* receiveq0 */
        mov $RX_RING, %edi
        call vdrv_queue
        mov %rax, %r12
        mov $1, %esi               /* transmitq0 */
        mov $TX_RING, %edi
        call vdrv_queue
        mov %rax, %r15
        call vdrv_driver_ok

        /* Our MAC: device config offset 0 (struct virtio_net_config.mac). */
        mov 0x2000(%r14), %eax
        mov %eax, MAC
        movzwl 0x2004(%r14), %eax
        mov %ax, MAC + 4

        /* The frame: zero header, broadcast, our MAC, 0x88b5, the greeting. */
        mov $TX_BUF + HDR_LEN, %edi
        movl $0xffffffff, (%rdi)
        movw $0xffff, 4(%rdi)
        mov MAC, %eax
        mov %eax, 6(%rdi)
        movzwl MAC + 4, %eax
        mov %ax, 10(%rdi)
        movw $0xb588, 12(%rdi)
        lea hello(%rip), %rsi
        add $14, %rdi
        mov $16, %ecx
        rep movsb
        VDRV_DESC TX_RING, 0, TX_BUF, HDR_LEN + FRAME_LEN, 0, 0
        VDRV_DESC RX_RING, 0, RX_BUF, 1526, 2, 0
        call rx_post

        mov $500, %ebp             /* attempts */
        xor %r13d, %r13d           /* rx completions seen */
1:      mov $TX_RING, %edi
        xor %esi, %esi
        mov %r15, %rdx
        mov $1, %ecx
        call vdrv_submit
        mov $2000000, %ecx         /* a few ms at native speed */
2:      movzwl RX_RING + VQ_USED + 2, %eax
        cmp %r13w, %ax
        jne 3f
        pause
        dec %ecx
        jnz 2b
        dec %ebp
        jnz 1b
        jmp fail
3:      inc %r13d
        /* ours? EtherType at header + 12, payload at header + 14 */
        cmpw $0xb588, RX_BUF + HDR_LEN + 12
        jne 4f
        lea reply(%rip), %rsi
        mov $RX_BUF + HDR_LEN + 14, %edi
        mov $15, %ecx
        repe cmpsb
        jne 4f
        MARKER 0x41
        jmp done
4:      call rx_post               /* someone else's frame: reuse the buffer */
        jmp 2b

/* Publish descriptor 0 on receiveq0 and ring its doorbell. */
rx_post:
        movzwl RX_RING + VQ_AVAIL + 2, %eax
        mov %eax, %r9d
        and $VQ_SIZE - 1, %eax
        movw $0, RX_RING + VQ_AVAIL + 4(, %rax, 2)
        inc %r9d
        mov %r9w, RX_RING + VQ_AVAIL + 2
        movw $0, (%r12)
        ret

fail:
        MARKER 0xdead
done:
        VIRTIO_CPL3_RESET

hello:  .ascii "iovd-guest-hello"
reply:  .ascii "iovd-host-reply"
        VIRTIO_DRIVER_CODE
        VIRTIO_CPL3_GDT
