/* SPDX-License-Identifier: MIT */
/*
 * Guest payload for the console benchmark: sends N MiB either through the emulated
 * 16550A UART (one OUT per byte, LSR polled per 16-byte FIFO load, like Linux's 8250
 * driver) or through virtio-console's transmitq0 (a minimal virtio 1.x PCI driver, no
 * interrupts: it polls the used ring). The kernel command line picks the path and size:
 * "u N" or "v N" (N in MiB). Marker 1 is written before the first byte, marker 2 after
 * the last one was accepted; then reset through the i8042.
 *
 * Every CPL-0 instruction is emulated (about 1 us) on the nested test machine, so CPL 0
 * only marks the page tables user-accessible, loads a GDT with user segments and a TSS,
 * and drops to CPL 3; everything else, the bulk loops included, runs natively at CPL 3
 * (no interrupts enabled, no way back needed). Port I/O at CPL 3 is allowed by the TSS's
 * I/O permission bitmap, all zeros (Intel SDM vol. 1 §19.5.2): an IOPL of 3 set through
 * IRETQ did not take effect on the nested test machine, the bitmap does.
 */
#include "guest.inc"

        .set CHUNK, 0x10000        /* bytes per descriptor / per UART loop */
        .set BUF, 0x1000000        /* 16 MiB: the data, one 64 KiB pattern */
        .set RING, 0x200000        /* transmitq0: desc, avail (+0x1000), used (+0x2000) */
        .set AVAIL, RING + 0x1000
        .set USED, RING + 0x2000
        .set QSIZE, 256
        .set BATCH, 16             /* descriptors per kick: 1 MiB */
        .set USER_STACK, 0x90000
        .set PAGE_TABLES, 0x9000   /* vmm/boot.h: PML4, PDPT, 4 PDs */
        .set TSS, 0x80000          /* 104-byte TSS, then the 8 KiB I/O bitmap (zero RAM) */
        .set TSS_SEL, 0x28

        .globl _start
_start:
        mov 0x228(%rsi), %ebx      /* zero page: cmd_line_ptr */
        /* Set the user bit on every page table entry (6 pages). */
        mov $PAGE_TABLES, %edi
        mov $6 * 512, %ecx
1:      orq $4, (%rdi)
        add $8, %rdi
        dec %ecx
        jnz 1b
        mov %cr3, %rax
        mov %rax, %cr3
        lgdt gdt_desc(%rip)
        movw $104, TSS + 102       /* I/O map base: right after the TSS */
        movb $0xff, TSS + 104 + 8192  /* the byte after the bitmap is all ones */
        mov $TSS_SEL, %ax
        ltr %ax
        pushq $0x1b                /* SS: user data, RPL 3 */
        pushq $USER_STACK
        pushq $0x0002              /* RFLAGS: interrupts off */
        pushq $0x23                /* CS: user code, RPL 3 */
        lea user(%rip), %rax
        push %rax
        iretq

/* ---- CPL 3 from here ---------------------------------------------------------------- */
user:
        /* Command line "M N": mode byte in r12b, N (MiB, decimal) in r13d. */
        movzbl (%rbx), %r12d
        lea 2(%rbx), %rsi
        xor %r13d, %r13d
2:      movzbl (%rsi), %eax
        sub $'0', %eax
        cmp $9, %eax
        ja 3f
        imul $10, %r13d
        add %eax, %r13d
        inc %rsi
        jmp 2b
3:      test %r13d, %r13d
        jz fail

        /* The pattern: 64-byte lines of '@'..'_' ending in a newline. */
        xor %ecx, %ecx
4:      mov %ecx, %eax
        and $63, %eax
        cmp $63, %eax
        je 5f
        and $31, %eax
        add $0x40, %eax
        jmp 6f
5:      mov $10, %eax
6:      mov %al, BUF(%rcx)
        inc %ecx
        cmp $CHUNK, %ecx
        jne 4b

        cmp $'u', %r12b
        je uart_send
        cmp $'v', %r12b
        je virtio_send
        jmp fail

/* ---- 16550A: N MiB, 16 bytes per THRE ---------------------------------------------- */
uart_send:
        MARKER 1
        mov %r13d, %r14d
        shl $4, %r14d              /* 64 KiB chunks */
10:     mov $BUF, %esi
        mov $CHUNK / 16, %r15d
11:     mov $UART + 5, %dx         /* LSR */
12:     in (%dx), %al
        test $0x20, %al            /* THRE: the FIFO takes 16 more */
        jz 12b
        mov $UART, %dx
        mov $16, %ecx
13:     lodsb
        out %al, (%dx)
        dec %ecx
        jnz 13b
        dec %r15d
        jnz 11b
        dec %r14d
        jnz 10b
        MARKER 2
        jmp done

/* ---- virtio-console: find 1af4:1043 on bus 0, bring it up, stream ------------------ */
        .set COMMON_STATUS, 20
        .set COMMON_GFSEL, 8
        .set COMMON_GF, 12
        .set COMMON_QSEL, 22
        .set COMMON_QSIZE, 24
        .set COMMON_QVEC, 26
        .set COMMON_QENABLE, 28
        .set COMMON_QNOTIFY, 30
        .set COMMON_QDESC, 32
        .set COMMON_QAVAIL, 40
        .set COMMON_QUSED, 48

/* Config dword at (bus 0, slot r8d, offset \off) into eax (PCI r3.0 §3.2.2.3.2). */
.macro CFG_ADDR off
        mov %r8d, %eax
        shl $11, %eax
        or $0x80000000 | \off, %eax
        mov $0xcf8, %dx
        out %eax, (%dx)
        mov $0xcfc, %dx
.endm

virtio_send:
        xor %r8d, %r8d
20:     CFG_ADDR 0
        in (%dx), %eax
        cmp $0x10431af4, %eax      /* virtio 1.2 §4.1.2: 0x1040 + console (3) */
        je 21f
        inc %r8d
        cmp $32, %r8d
        jne 20b
        jmp fail
21:     CFG_ADDR 0x10
        in (%dx), %eax
        and $0xfffffff0, %eax
        mov %eax, %r14d            /* BAR 0: common config at offset 0 (this device) */
        CFG_ADDR 4
        mov $6, %eax               /* memory decode, bus master */
        out %ax, (%dx)

        /* §3.1.1: reset, ACKNOWLEDGE, DRIVER, features (VERSION_1 only), FEATURES_OK */
        movb $0, COMMON_STATUS(%r14)
        movb $1, COMMON_STATUS(%r14)
        movb $3, COMMON_STATUS(%r14)
        movl $1, COMMON_GFSEL(%r14)
        movl $1, COMMON_GF(%r14)   /* bit 32: VIRTIO_F_VERSION_1 */
        movl $0, COMMON_GFSEL(%r14)
        movl $0, COMMON_GF(%r14)
        movb $0xb, COMMON_STATUS(%r14)
        testb $8, COMMON_STATUS(%r14)
        jz fail

        /* transmitq0 is queue 1 (§5.3.2); no MSI-X vector: we poll the used ring. */
        movw $1, COMMON_QSEL(%r14)
        movw $QSIZE, COMMON_QSIZE(%r14)
        movw $0xffff, COMMON_QVEC(%r14)
        movl $RING, COMMON_QDESC(%r14)
        movl $0, COMMON_QDESC + 4(%r14)
        movl $AVAIL, COMMON_QAVAIL(%r14)
        movl $0, COMMON_QAVAIL + 4(%r14)
        movl $USED, COMMON_QUSED(%r14)
        movl $0, COMMON_QUSED + 4(%r14)
        movw $1, COMMON_QENABLE(%r14)
        movzwl COMMON_QNOTIFY(%r14), %eax
        lea 0x3000(%r14, %rax, 4), %r15   /* notify: BAR offset 0x3000, multiplier 4 */
        movb $0xf, COMMON_STATUS(%r14)    /* DRIVER_OK */

        /* BATCH descriptors, each the whole 64 KiB pattern, device-readable. */
        mov $RING, %edi
        xor %ecx, %ecx
22:     movq $BUF, (%rdi)
        movl $CHUNK, 8(%rdi)
        movl $0, 12(%rdi)
        add $16, %rdi
        inc %ecx
        cmp $BATCH, %ecx
        jne 22b

        MARKER 1
        xor %r9d, %r9d             /* our avail idx */
23:     xor %ecx, %ecx
24:     lea (%r9, %rcx), %eax
        and $QSIZE - 1, %eax
        mov %cx, AVAIL + 4(, %rax, 2)
        inc %ecx
        cmp $BATCH, %ecx
        jne 24b
        add $BATCH, %r9d
        mov %r9w, AVAIL + 2        /* x86 keeps stores in order: ring entries first */
        movw $1, (%r15)            /* kick queue 1 (§4.1.5.2) */
25:     pause
        movzwl USED + 2, %eax
        cmp %r9w, %ax
        jne 25b
        dec %r13d
        jnz 23b
        MARKER 2
        jmp done

fail:
        MARKER 0xdead
done:
        mov $0xfe, %al             /* i8042 reset pulse: the VM stops, status 0 */
        out %al, $I8042_COMMAND
7:      pause
        jmp 7b

        .align 16
gdt:    .quad 0
        .quad 0x00af9a000000ffff   /* 0x08 code64, DPL 0 */
        .quad 0x00cf92000000ffff   /* 0x10 data, DPL 0 */
        .quad 0x00cff2000000ffff   /* 0x18 data, DPL 3 */
        .quad 0x00affa000000ffff   /* 0x20 code64, DPL 3 */
        .quad 0x0000890800002068   /* 0x28 TSS at 0x80000, limit 104 + 8192 */
        .quad 0
gdt_end:
gdt_desc:
        .word gdt_end - gdt - 1
        .quad gdt
