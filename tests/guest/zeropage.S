/* SPDX-License-Identifier: MIT */
/*
 * Check the zero page the VMM built (Documentation/arch/x86/zero-page.rst): "HdrS" in the
 * setup header (0x202), e820 entries (count at 0x1e8, table at 0x2d0, 20 bytes each)
 * starting with RAM at 0 and RAM from 1 MiB, and a command line (pointer at 0x228)
 * starting with "iovtest=zeropage". Prints "zeropage ok e820=N" or "zeropage bad K".
 */
#include "guest.inc"
        .globl _start
_start:
        mov %rsi, %r15
        mov $'1', %bl
        cmpl $0x53726448, 0x202(%r15)
        jne bad
        mov $'2', %bl
        movzbl 0x1e8(%r15), %r14d
        cmp $3, %r14d
        jb bad
        mov $'3', %bl
        cmpq $0, 0x2d0(%r15)
        jne bad
        cmpl $1, 0x2e0(%r15)
        jne bad
        mov $'4', %bl
        cmpq $0x100000, 0x2d0+40(%r15)
        jne bad
        cmpl $1, 0x2e0+40(%r15)
        jne bad
        mov $'5', %bl
        movl 0x228(%r15), %edi
        lea expected(%rip), %rsi
1:      movb (%rsi), %al
        test %al, %al
        jz good
        cmpb (%rdi), %al
        jne bad
        inc %rsi
        inc %rdi
        jmp 1b
good:
        PUTS ok
        mov %r14d, %eax
        add $'0', %al
        PUTC_NEWLINE
        RESET
bad:
        FAIL_AT_STEP fail
#include "uart-puts.inc"
expected: .asciz "iovtest=zeropage"
ok:     .asciz "zeropage ok e820="
fail:   .asciz "zeropage bad "
