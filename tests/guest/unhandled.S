/* SPDX-License-Identifier: MIT */
/*
 * Touch a port and an MMIO address nothing decodes (reads must be all ones, writes are
 * dropped), then read the host bridge's vendor/device id through mechanism #1 and ECAM
 * and an empty slot, and the CMOS clock. Prints "unhandled ok" or "unhandled bad K".
 */
#include "guest.inc"
        .globl _start
_start:
        mov $'1', %bl
        mov $0x200, %dx
        in (%dx), %al
        cmp $0xff, %al
        jne bad
        out %al, (%dx)
        mov $'2', %bl
        mov $0xd0000000, %esi
        movl (%rsi), %eax
        cmp $0xffffffff, %eax
        jne bad
        movl $0x12345678, (%rsi)
        mov $'3', %bl
        PCI_CONFIG_READ 0x80000000 /* bus 0, device 0, function 0, register 0 */
        cmp $0x00081b36, %eax
        jne bad
        mov $'4', %bl
        PCI_CONFIG_READ 0x8000f800 /* device 31: empty */
        cmp $0xffffffff, %eax
        jne bad
        mov $'5', %bl
        mov $0xe0000000, %esi /* ECAM, 00:00.0 register 0 */
        movl (%rsi), %eax
        cmp $0x00081b36, %eax
        jne bad
        mov $'6', %bl
        mov $0x0d, %al /* CMOS RTC status D: valid */
        out %al, $0x70
        in $0x71, %al
        cmp $0x80, %al
        jne bad
        mov $0x09, %al /* year, BCD: reading the clock must work in the sandbox */
        out %al, $0x70
        in $0x71, %al
        cmp $0x99, %al
        ja bad
        PUTS ok
        RESET
bad:
        FAIL_AT_STEP fail
#include "uart-puts.inc"
ok:     .asciz "unhandled ok\n"
fail:   .asciz "unhandled bad "
