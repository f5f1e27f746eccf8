/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART on COM1 (port 0x3f8, IRQ 4), after the National Semiconductor PC16550D
 * data sheet: DLAB-banked divisor latch, 16-byte FIFOs (FCR), IER/IIR interrupt
 * identification with priorities (line status > received data > THR empty > modem
 * status), LSR data-ready / THR-empty / transmitter-empty, MCR loopback and OUT2 gating
 * the interrupt line as on a PC. Output is written at once, so the transmitter is
 * always empty; input comes from vmm_uart_input() (stdin, the control socket).
 */
#include <stdio.h>

#include "util/util.h"
#include "vmm/vm.h"

#define UART_PORT         0x3f8
#define UART_IRQ          4
#define UART_FIFO         16
#define UART_INPUT_BUFFER 4096

/* Register offsets. */
enum { RBR_THR_DLL = 0, IER_DLM = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI  0x01 /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI  0x08 /* modem status */

#define IIR_NO_INT       0x01
#define IIR_MSI          0x00
#define IIR_THRI         0x02
#define IIR_RDI          0x04
#define IIR_RLSI         0x06
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI  0x40
#define MSR_DCD 0x80

struct iov_uart {
        struct iov_vm *vm;
        pthread_mutex_t lock;
        uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
        bool thr_interrupt; /* THR-empty interrupt pending until IIR read or THR write */
        bool irq_level;
        /* Receive side: the bytes waiting for the guest (the FIFO plus what the host
         * queued behind it). */
        uint8_t rx[UART_INPUT_BUFFER];
        size_t rx_head, rx_count;
};

static uint8_t uart_iir(const struct iov_uart *u)
{
        uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0;
        if ((u->ier & IER_RLSI) && (u->lsr & LSR_OE))
                return IIR_RLSI | fifo;
        if ((u->ier & IER_RDI) && u->rx_count)
                return IIR_RDI | fifo;
        if ((u->ier & IER_THRI) && u->thr_interrupt)
                return IIR_THRI | fifo;
        if ((u->ier & IER_MSI) && (u->msr & 0x0f))
                return IIR_MSI | fifo;
        return IIR_NO_INT | fifo;
}

/* Called with the lock held after any state change. */
static void uart_update_irq(struct iov_uart *u)
{
        bool level = !(uart_iir(u) & IIR_NO_INT) && (u->mcr & MCR_OUT2);
        if (level == u->irq_level)
                return;
        u->irq_level = level;
        vmm_irq_set_level(u->vm, UART_IRQ, level);
}

static void uart_rx_push(struct iov_uart *u, uint8_t byte)
{
        if (u->rx_count == UART_INPUT_BUFFER) {
                u->lsr |= LSR_OE;
                return;
        }
        u->rx[(u->rx_head + u->rx_count) % UART_INPUT_BUFFER] = byte;
        u->rx_count++;
}

static void uart_transmit(struct iov_uart *u, uint8_t byte)
{
        if (u->mcr & MCR_LOOP) {
                uart_rx_push(u, byte);
        } else if (u->vm->serial_out_fd >= 0) {
                ssize_t n;
                do
                        n = write(u->vm->serial_out_fd, &byte, 1);
                while (n < 0 && errno == EINTR);
        }
        u->thr_interrupt = true;
}

static uint8_t uart_read(struct iov_uart *u, unsigned reg)
{
        uint8_t v;
        switch (reg) {
        case RBR_THR_DLL:
                if (u->lcr & LCR_DLAB)
                        return u->dll;
                v = 0;
                if (u->rx_count) {
                        v = u->rx[u->rx_head];
                        u->rx_head = (u->rx_head + 1) % UART_INPUT_BUFFER;
                        u->rx_count--;
                }
                return v;
        case IER_DLM:
                return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        case IIR_FCR:
                v = uart_iir(u);
                /* Reading IIR while it reports THR empty clears that source. */
                if ((v & 0x0f) == IIR_THRI)
                        u->thr_interrupt = false;
                return v;
        case LCR:
                return u->lcr;
        case MCR:
                return u->mcr;
        case LSR:
                v = u->lsr | LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
                u->lsr &= ~LSR_OE; /* error bits clear on read */
                return v;
        case MSR:
                if (u->mcr & MCR_LOOP) /* loopback: outputs show as inputs */
                        return (uint8_t)((u->mcr & MCR_RTS) << 3 | (u->mcr & MCR_DTR) << 5 |
                                         (u->mcr & MCR_OUT1) << 4 | (u->mcr & MCR_OUT2) << 4);
                v = u->msr;
                u->msr &= 0xf0; /* delta bits clear on read */
                return v;
        default:
                return u->scr;
        }
}

static void uart_write(struct iov_uart *u, unsigned reg, uint8_t v)
{
        switch (reg) {
        case RBR_THR_DLL:
                if (u->lcr & LCR_DLAB)
                        u->dll = v;
                else
                        uart_transmit(u, v);
                break;
        case IER_DLM:
                if (u->lcr & LCR_DLAB) {
                        u->dlm = v;
                        break;
                }
                /* Enabling the THR-empty interrupt while THR is empty raises it at once. */
                if ((v & IER_THRI) && !(u->ier & IER_THRI))
                        u->thr_interrupt = true;
                u->ier = v & 0x0f;
                break;
        case IIR_FCR:
                u->fcr = v & 0xc9;
                if (v & FCR_CLEAR_RX)
                        u->rx_count = 0;
                break;
        case LCR:
                u->lcr = v;
                break;
        case MCR:
                u->mcr = v & 0x1f;
                break;
        case SCR:
                u->scr = v;
                break;
        default: /* LSR and MSR are read-only */
                break;
        }
}

static void uart_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
        struct iov_uart *u = opaque;
        pthread_mutex_lock(&u->lock);
        for (uint32_t i = 0; i < len && offset + i < 8; i++) {
                if (is_write)
                        uart_write(u, (unsigned)(offset + i), data[i]);
                else
                        data[i] = uart_read(u, (unsigned)(offset + i));
        }
        uart_update_irq(u);
        pthread_mutex_unlock(&u->lock);
}

size_t vmm_uart_input(struct iov_vm *vm, const void *data, size_t len)
{
        struct iov_uart *u = vm->uart;
        if (!u)
                return 0;
        pthread_mutex_lock(&u->lock);
        size_t room = UART_INPUT_BUFFER - u->rx_count;
        size_t n = len < room ? len : room;
        for (size_t i = 0; i < n; i++)
                uart_rx_push(u, ((const uint8_t *)data)[i]);
        uart_update_irq(u);
        pthread_mutex_unlock(&u->lock);
        return n;
}

static void uart_free(void *data)
{
        struct iov_uart *u = data;
        if (u->vm->uart == u)
                u->vm->uart = NULL;
        pthread_mutex_destroy(&u->lock);
        free(u);
}

static int uart_init(struct iov_vm *vm)
{
        struct iov_uart *u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->vm = vm;
        pthread_mutex_init(&u->lock, NULL);
        u->msr = MSR_DCD | MSR_DSR | MSR_CTS; /* a terminal is attached */
        u->dll = 0x0c;                        /* 9600 baud, the usual reset value */
        int r = vmm_vm_add_cleanup(vm, uart_free, u);
        if (r < 0) {
                pthread_mutex_destroy(&u->lock);
                free(u);
                return r;
        }
        r = vmm_bus_register(&vm->pio, UART_PORT, 8, uart_access, u, "uart");
        if (r < 0)
                return r;
        vm->uart = u;
        return 0;
}

IOV_VMM_DEVICE("uart", IOV_DEVICE_ORDER_LEGACY, uart_init)
