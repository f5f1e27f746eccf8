/* SPDX-License-Identifier: MIT */
/* Legacy device models on the port bus: 16550A UART, i8042, boot-progress port
 * (no /dev/kvm needed: interrupt injection goes nowhere). */
#include <fcntl.h>
#include <time.h>

#include "fake-vm.h"

#define COM1 0x3f8
enum { THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

static struct iov_vm *uart_vm(int *ret_read_fd)
{
        struct iov_vm *vm = fake_vm_new();
        int p[2];
        cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
        vm->serial_out_fd = p[1];
        *ret_read_fd = p[0];
        fake_vm_add_device(vm, "uart");
        return vm;
}

Test(vmm_uart, transmit_and_line_status)
{
        int rfd;
        struct iov_vm *vm = uart_vm(&rfd);
        uint8_t lsr = (uint8_t)pio_read(vm, COM1 + LSR, 1);
        cr_expect_eq(lsr & 0x60, 0x60, "THRE/TEMT not set at reset: LSR 0x%x", lsr);
        cr_expect_eq(lsr & 0x01, 0, "data ready with no input: LSR 0x%x", lsr);
        pio_write(vm, COM1 + THR, 'o', 1);
        pio_write(vm, COM1 + THR, 'k', 1);
        char buf[8] = "";
        ssize_t n = read(rfd, buf, sizeof(buf));
        cr_expect_eq(n, 2, "%zd bytes of output", n);
        cr_expect_eq(memcmp(buf, "ok", 2), 0, "output \"%.2s\"", buf);
        pio_write(vm, COM1 + SCR, 0x5a, 1);
        cr_expect_eq(pio_read(vm, COM1 + SCR, 1), 0x5au, "scratch register");
        close(rfd);
        close(vm->serial_out_fd);
        fake_vm_free(vm);
}

Test(vmm_uart, divisor_latch_is_banked)
{
        int rfd;
        struct iov_vm *vm = uart_vm(&rfd);
        pio_write(vm, COM1 + IER, 0x01, 1);
        pio_write(vm, COM1 + LCR, 0x83, 1); /* DLAB, 8N1 */
        pio_write(vm, COM1 + THR, 0x01, 1); /* DLL: 115200 baud */
        pio_write(vm, COM1 + IER, 0x00, 1); /* DLM */
        cr_expect_eq(pio_read(vm, COM1 + THR, 1), 0x01u, "DLL");
        cr_expect_eq(pio_read(vm, COM1 + IER, 1), 0x00u, "DLM");
        pio_write(vm, COM1 + LCR, 0x03, 1);
        cr_expect_eq(pio_read(vm, COM1 + IER, 1), 0x01u, "IER lost behind DLAB");
        char buf[4];
        cr_expect_eq(read(rfd, buf, sizeof(buf)), -1, "a DLL write was transmitted");
        close(rfd);
        close(vm->serial_out_fd);
        fake_vm_free(vm);
}

Test(vmm_uart, interrupt_identification_and_input)
{
        int rfd;
        struct iov_vm *vm = uart_vm(&rfd);
        pio_write(vm, COM1 + IIR, 0x07, 1); /* FIFO on, clear both */
        uint8_t iir = (uint8_t)pio_read(vm, COM1 + IIR, 1);
        cr_expect_eq(iir, 0xc1, "no interrupt, FIFO on: IIR 0x%x", iir);

        /* Enabling THRE while THR is empty raises it; reading IIR clears it. */
        pio_write(vm, COM1 + IER, 0x02, 1);
        iir = (uint8_t)pio_read(vm, COM1 + IIR, 1);
        cr_expect_eq(iir & 0x0f, 0x02, "THRE interrupt expected: IIR 0x%x", iir);
        iir = (uint8_t)pio_read(vm, COM1 + IIR, 1);
        cr_expect_eq(iir & 0x0f, 0x01, "THRE not cleared by the IIR read: IIR 0x%x", iir);
        pio_write(vm, COM1 + THR, 'x', 1);
        iir = (uint8_t)pio_read(vm, COM1 + IIR, 1);
        cr_expect_eq(iir & 0x0f, 0x02, "THRE not raised after a write: IIR 0x%x", iir);

        /* Received data outranks THRE, and LSR shows it. */
        pio_write(vm, COM1 + IER, 0x03, 1);
        cr_expect_eq(vmm_uart_input(vm, "hi", 2), 2u);
        iir = (uint8_t)pio_read(vm, COM1 + IIR, 1);
        cr_expect_eq(iir & 0x0f, 0x04, "RX interrupt expected: IIR 0x%x", iir);
        cr_expect_eq(pio_read(vm, COM1 + LSR, 1) & 0x01, 1u, "DR not set");
        uint32_t c = pio_read(vm, COM1 + THR, 1);
        cr_expect_eq(c, (uint32_t)'h', "first byte 0x%x", c);
        c = pio_read(vm, COM1 + THR, 1);
        cr_expect_eq(c, (uint32_t)'i', "second byte 0x%x", c);
        cr_expect_eq(pio_read(vm, COM1 + LSR, 1) & 0x01, 0u, "DR set with empty FIFO");
        close(rfd);
        close(vm->serial_out_fd);
        fake_vm_free(vm);
}

Test(vmm_uart, loopback_and_overflow)
{
        int rfd;
        struct iov_vm *vm = uart_vm(&rfd);
        pio_write(vm, COM1 + MCR, 0x10 | 0x02, 1); /* loop, RTS */
        uint8_t msr = (uint8_t)pio_read(vm, COM1 + MSR, 1);
        cr_expect_eq(msr & 0x10, 0x10, "RTS not looped to CTS: MSR 0x%x", msr);
        pio_write(vm, COM1 + THR, 'L', 1);
        cr_expect_eq(pio_read(vm, COM1 + THR, 1), (uint32_t)'L', "loopback byte");
        char buf[4];
        cr_expect_eq(read(rfd, buf, sizeof(buf)), -1, "loopback byte reached the host");
        pio_write(vm, COM1 + MCR, 0x00, 1);

        static char big[5000];
        memset(big, 'a', sizeof(big));
        size_t n = vmm_uart_input(vm, big, sizeof(big));
        cr_expect_eq(n, 4096u, "input accepted %zu bytes of 5000", n);
        close(rfd);
        close(vm->serial_out_fd);
        fake_vm_free(vm);
}

Test(vmm_i8042, self_test_command_byte_and_reset)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "i8042");
        pio_write(vm, 0x64, 0xaa, 1);
        cr_expect_eq(pio_read(vm, 0x64, 1) & 0x01, 1u, "output buffer not full");
        cr_expect_eq(pio_read(vm, 0x60, 1), 0x55u, "self test result");
        cr_expect_eq(pio_read(vm, 0x64, 1) & 0x05, 0x04u, "status after read");
        pio_write(vm, 0x64, 0x60, 1);
        pio_write(vm, 0x60, 0x45, 1);
        pio_write(vm, 0x64, 0x20, 1);
        cr_expect_eq(pio_read(vm, 0x60, 1), 0x45u, "command byte");
        cr_expect_not(vmm_vm_stopping(vm), "stopped before reset");
        pio_write(vm, 0x64, 0xfe, 1);
        cr_expect(vmm_vm_stopping(vm), "0xfe pulse did not stop the VM");
        cr_expect_eq(vm->state, IOV_VM_STATE_STOPPED, "state %d", vm->state);
        cr_expect_eq(vm->exit_status, 0, "exit status %d", vm->exit_status);
        fake_vm_free(vm);
}

Test(vmm_i8042, output_port_reset_and_shutdown_request)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "i8042");
        int r = vmm_i8042_request_shutdown(vm);
        cr_expect_eq(r, 0, "request_shutdown gave %d", r);
        uint8_t codes[4];
        for (int i = 0; i < 4; i++)
                codes[i] = (uint8_t)pio_read(vm, 0x60, 1);
        cr_expect_eq(codes[0], 0x1d, "ctrl 0x%x", codes[0]);
        cr_expect_eq(codes[3], 0x53, "del 0x%x", codes[3]);
        pio_write(vm, 0x64, 0xd1, 1);
        pio_write(vm, 0x60, 0x03, 1); /* bit 0 set: no reset */
        cr_expect_not(vmm_vm_stopping(vm), "output port write with bit 0 set reset");
        pio_write(vm, 0x64, 0xd1, 1);
        pio_write(vm, 0x60, 0x02, 1);
        cr_expect(vmm_vm_stopping(vm), "output port bit 0 low did not reset");
        fake_vm_free(vm);
}

Test(vmm_debugport, markers_keep_time_and_count)
{
        struct iov_vm *vm = fake_vm_new();
        vm->start_usec = util_now_usec();
        fake_vm_add_device(vm, "debug-port");
        pio_write(vm, IOV_DEBUG_PORT, 7, 1);
        pio_write(vm, IOV_DEBUG_PORT, 7, 1);
        pio_write(vm, IOV_DEBUG_PORT, 0x12345678, 4);
        cr_expect_eq(vm->n_markers, 2u, "markers %u", vm->n_markers);
        cr_expect_eq(vm->markers[0].value, 7u, "marker 0 is %u", vm->markers[0].value);
        cr_expect_eq(vm->markers[0].count, 2u, "count %llu",
                     (unsigned long long)vm->markers[0].count);
        cr_expect_eq(vm->markers[1].value, 0x12345678u, "marker 1 is 0x%x", vm->markers[1].value);
        cr_expect_eq(pio_read(vm, IOV_DEBUG_PORT, 1), 0u, "debug port read");
        fake_vm_free(vm);
}

static uint8_t rtc_read(struct iov_vm *vm, uint8_t reg)
{
        pio_write(vm, 0x70, reg, 1);
        return (uint8_t)pio_read(vm, 0x71, 1);
}

static int bcd(uint8_t v)
{
        return (v >> 4) * 10 + (v & 0xf);
}

Test(vmm_rtc, reads_host_time_in_bcd)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "rtc");
        uint8_t a = rtc_read(vm, 0x0a);
        cr_expect_eq(a & 0x80, 0, "update in progress forever: status A 0x%x", a);
        cr_expect_eq(rtc_read(vm, 0x0d), 0x80, "status D not valid");
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        int year = bcd(rtc_read(vm, 0x32)) * 100 + bcd(rtc_read(vm, 0x09));
        cr_expect_eq(year, tm.tm_year + 1900, "year %d", year);
        int month = bcd(rtc_read(vm, 0x08));
        cr_expect_eq(month, tm.tm_mon + 1, "month %d", month);
        int day = bcd(rtc_read(vm, 0x07));
        cr_expect_eq(day, tm.tm_mday, "day %d, host says %d", day, tm.tm_mday);
        int weekday = bcd(rtc_read(vm, 0x06));
        cr_expect_eq(weekday, tm.tm_wday + 1, "weekday %d, host says %d", weekday, tm.tm_wday + 1);
        int hour = bcd(rtc_read(vm, 0x04));
        cr_expect(hour >= 0 && hour < 24, "hour %d", hour);
        /* Binary mode when the guest asks for it; NVRAM keeps bytes. */
        pio_write(vm, 0x70, 0x0b, 1);
        pio_write(vm, 0x71, 0x06, 1);
        cr_expect_eq(rtc_read(vm, 0x08), tm.tm_mon + 1, "binary month");
        pio_write(vm, 0x70, 0x40, 1);
        pio_write(vm, 0x71, 0x99, 1);
        cr_expect_eq(rtc_read(vm, 0x40), 0x99, "NVRAM byte");
        fake_vm_free(vm);
}

Test(vmm_i8042, keyboard_acknowledges_and_identifies)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "i8042");
        pio_write(vm, 0x60, 0xf2, 1); /* identify */
        uint8_t id[3];
        for (int i = 0; i < 3; i++)
                id[i] = (uint8_t)pio_read(vm, 0x60, 1);
        cr_expect(id[0] == 0xfa && id[1] == 0xab && id[2] == 0x83, "identify: %02x %02x %02x",
                  id[0], id[1], id[2]);
        pio_write(vm, 0x60, 0xed, 1); /* set LEDs, then its parameter */
        cr_expect_eq(pio_read(vm, 0x60, 1), 0xfau, "LED command not acknowledged");
        pio_write(vm, 0x60, 0x00, 1);
        cr_expect_eq(pio_read(vm, 0x60, 1), 0xfau, "LED parameter not acknowledged");
        pio_write(vm, 0x60, 0xff, 1);
        cr_expect_eq(pio_read(vm, 0x60, 1), 0xfau, "reset not acknowledged");
        cr_expect_eq(pio_read(vm, 0x60, 1), 0xaau, "reset self test");
        cr_expect_eq(pio_read(vm, 0x64, 1) & 0x01, 0u, "output buffer still full");
        fake_vm_free(vm);
}
