/* SPDX-License-Identifier: MIT */
/*
 * i8042 keyboard controller (ports 0x60 data, 0x64 status/command), as much as a PC guest
 * needs: the command byte, self tests, the output port, and the reset line. Pulsing output
 * port bit 0 low (command 0xfe, or 0xd1 with bit 0 clear) resets a PC, which here means
 * the guest shut down: the VM stops with exit status 0. A graceful stop request puts
 * Ctrl-Alt-Del in the keyboard buffer (scan code set 1, as translated by the controller)
 * and raises IRQ 1, which Linux turns into a reboot.
 */
#include "util/util.h"
#include "vmm/vm.h"

#define I8042_DATA_PORT    0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_IRQ          1

#define STATUS_OUTPUT_FULL 0x01
#define STATUS_SYSTEM_FLAG 0x04 /* set after a successful self test */
#define STATUS_COMMAND     0x08 /* last write was to the command port */
#define STATUS_UNLOCKED    0x10 /* keyboard not inhibited by the key lock */

#define CMD_READ_COMMAND_BYTE  0x20
#define CMD_WRITE_COMMAND_BYTE 0x60
#define CMD_DISABLE_AUX        0xa7
#define CMD_ENABLE_AUX         0xa8
#define CMD_TEST_AUX           0xa9
#define CMD_SELF_TEST          0xaa
#define CMD_TEST_KEYBOARD      0xab
#define CMD_DISABLE_KEYBOARD   0xad
#define CMD_ENABLE_KEYBOARD    0xae
#define CMD_READ_OUTPUT_PORT   0xd0
#define CMD_WRITE_OUTPUT_PORT  0xd1
#define CMD_PULSE_RESET        0xfe

#define KBD_CMD_ECHO           0xee
#define KBD_CMD_GET_ID         0xf2
#define KBD_CMD_RESET          0xff
#define KBD_REPLY_ACK          0xfa
#define KBD_REPLY_SELF_TEST_OK 0xaa

#define COMMAND_BYTE_KBD_INT     0x01
#define COMMAND_BYTE_KBD_DISABLE 0x10
#define COMMAND_BYTE_AUX_DISABLE 0x20
#define OUTPUT_BUFFER_SIZE       16

struct iov_i8042 {
        struct iov_vm *vm;
        pthread_mutex_t lock;
        uint8_t status;
        uint8_t command_byte;
        uint8_t pending_command; /* a command waiting for its data byte */
        bool irq_level;
        uint8_t out[OUTPUT_BUFFER_SIZE];
        unsigned out_head, out_count;
};

static void i8042_push(struct iov_i8042 *k, uint8_t v)
{
        if (k->out_count == OUTPUT_BUFFER_SIZE)
                return;
        k->out[(k->out_head + k->out_count) % OUTPUT_BUFFER_SIZE] = v;
        k->out_count++;
}

static void i8042_reset_guest(struct iov_i8042 *k)
{
        vmm_vm_request_stop(k->vm, false, IOV_VMM_EXIT_STOPPED, "guest reset through the i8042");
}

static void i8042_command(struct iov_i8042 *k, uint8_t cmd)
{
        switch (cmd) {
        case CMD_READ_COMMAND_BYTE:
                i8042_push(k, k->command_byte);
                break;
        case CMD_WRITE_COMMAND_BYTE:
        case CMD_WRITE_OUTPUT_PORT:
                k->pending_command = cmd;
                break;
        case CMD_SELF_TEST:
                k->status |= STATUS_SYSTEM_FLAG;
                i8042_push(k, 0x55);
                break;
        case CMD_TEST_KEYBOARD:
                i8042_push(k, 0x00); /* interface test passed */
                break;
        case CMD_TEST_AUX:
                /* No mouse port: "clock line stuck high" tells the guest so at once, so
                 * it does not go on probing for one. */
                i8042_push(k, 0x02);
                break;
        case CMD_READ_OUTPUT_PORT:
                i8042_push(k, 0x01); /* reset line high (not asserted) */
                break;
        case CMD_PULSE_RESET:
                i8042_reset_guest(k);
                break;
        /* The enable/disable commands show in the command byte, which is how Linux
         * checks that the controller obeys them. */
        case CMD_DISABLE_AUX:
                k->command_byte |= COMMAND_BYTE_AUX_DISABLE;
                break;
        case CMD_ENABLE_AUX:
                k->command_byte &= ~COMMAND_BYTE_AUX_DISABLE;
                break;
        case CMD_DISABLE_KEYBOARD:
                k->command_byte |= COMMAND_BYTE_KBD_DISABLE;
                break;
        case CMD_ENABLE_KEYBOARD:
                k->command_byte &= ~COMMAND_BYTE_KBD_DISABLE;
                break;
        default:
                break;
        }
}

/* A byte for the keyboard itself. The keyboard acknowledges everything (0xfa), so the
 * guest's driver finds it and Ctrl-Alt-Del reaches it; identify answers an MF2 keyboard
 * (0xab 0x83), reset reports a passed self test (0xaa), echo echoes. Parameter bytes of
 * multi-byte commands (LEDs, typematic rate, scan code set) are acknowledged the same
 * way. (IBM PS/2 keyboard commands; Linux drivers/input/keyboard/atkbd.c uses these.) */
static void i8042_keyboard_command(struct iov_i8042 *k, uint8_t v)
{
        if (v == KBD_CMD_ECHO) {
                i8042_push(k, KBD_CMD_ECHO);
                return;
        }
        i8042_push(k, KBD_REPLY_ACK);
        if (v == KBD_CMD_GET_ID) {
                i8042_push(k, 0xab);
                i8042_push(k, 0x83);
        } else if (v == KBD_CMD_RESET) {
                i8042_push(k, KBD_REPLY_SELF_TEST_OK);
        }
}

static void i8042_data_write(struct iov_i8042 *k, uint8_t v)
{
        uint8_t cmd = k->pending_command;
        k->pending_command = 0;
        if (cmd == CMD_WRITE_COMMAND_BYTE)
                k->command_byte = v;
        else if (cmd == CMD_WRITE_OUTPUT_PORT && !(v & 0x01))
                i8042_reset_guest(k);
        else if (!cmd)
                i8042_keyboard_command(k, v);
}

/* The controller loads one byte at a time into its output buffer and signals IRQ 1 for
 * each: ISA interrupts are edge-triggered at the IOAPIC, so when the guest takes a byte
 * and another is waiting, the line drops and rises again. The line is only touched on a
 * change (each KVM_IRQ_LINE is a system call). */
static void i8042_update_irq(struct iov_i8042 *k, bool byte_taken)
{
        bool level = k->out_count && (k->command_byte & COMMAND_BYTE_KBD_INT);
        if (level && byte_taken && k->irq_level) {
                vmm_irq_set_level(k->vm, I8042_IRQ, false);
                k->irq_level = false;
        }
        if (level != k->irq_level) {
                vmm_irq_set_level(k->vm, I8042_IRQ, level);
                k->irq_level = level;
        }
}

static void i8042_access(struct iov_i8042 *k, bool command_port, uint8_t *data, uint32_t len,
                         bool is_write)
{
        if (len != 1) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        bool byte_taken = false;
        pthread_mutex_lock(&k->lock);
        if (is_write && command_port) {
                k->status |= STATUS_COMMAND;
                i8042_command(k, data[0]);
        } else if (is_write) {
                k->status &= ~STATUS_COMMAND;
                i8042_data_write(k, data[0]);
        } else if (command_port) {
                data[0] = k->status | (k->out_count ? STATUS_OUTPUT_FULL : 0);
        } else {
                data[0] = 0;
                if (k->out_count) {
                        data[0] = k->out[k->out_head];
                        k->out_head = (k->out_head + 1) % OUTPUT_BUFFER_SIZE;
                        k->out_count--;
                        byte_taken = true;
                }
        }
        i8042_update_irq(k, byte_taken);
        pthread_mutex_unlock(&k->lock);
}

static void i8042_data_port(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                            bool is_write)
{
        (void)offset;
        i8042_access(opaque, false, data, len, is_write);
}

static void i8042_command_port(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                               bool is_write)
{
        (void)offset;
        i8042_access(opaque, true, data, len, is_write);
}

int vmm_i8042_request_shutdown(struct iov_vm *vm)
{
        struct iov_i8042 *k = vm->i8042;
        if (!k)
                return -ENODEV;
        /* Ctrl, Alt, Del pressed (Del is extended: 0xe0 prefix), in set 1. */
        static const uint8_t keys[] = {0x1d, 0x38, 0xe0, 0x53};
        pthread_mutex_lock(&k->lock);
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                i8042_push(k, keys[i]);
        i8042_update_irq(k, false);
        pthread_mutex_unlock(&k->lock);
        return 0;
}

static void i8042_free(void *data)
{
        struct iov_i8042 *k = data;
        if (k->vm->i8042 == k)
                k->vm->i8042 = NULL;
        pthread_mutex_destroy(&k->lock);
        free(k);
}

static int i8042_init(struct iov_vm *vm)
{
        struct iov_i8042 *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->vm = vm;
        pthread_mutex_init(&k->lock, NULL);
        k->command_byte = COMMAND_BYTE_KBD_INT | 0x40; /* IRQ on, set-1 translation */
        k->status = STATUS_UNLOCKED;
        int r = vmm_vm_add_cleanup(vm, i8042_free, k);
        if (r < 0) {
                pthread_mutex_destroy(&k->lock);
                free(k);
                return r;
        }
        /* 0x60..0x64 minus 0x61 (the PIT's speaker port, answered by KVM). */
        r = vmm_bus_register(&vm->pio, I8042_DATA_PORT, 1, i8042_data_port, k, "i8042");
        if (r >= 0)
                r = vmm_bus_register(&vm->pio, I8042_COMMAND_PORT, 1, i8042_command_port, k,
                                     "i8042");
        if (r < 0)
                return r;
        vm->i8042 = k;
        return 0;
}

IOV_VMM_DEVICE("i8042", IOV_DEVICE_ORDER_LEGACY, i8042_init)
