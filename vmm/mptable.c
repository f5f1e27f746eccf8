/* SPDX-License-Identifier: MIT */
/*
 * MP configuration table (Intel MultiProcessor Specification 1.4, chapter 4) so Linux finds
 * every CPU, the IOAPIC and how the ISA interrupts reach it, without ACPI. It lives in the
 * BIOS area (0xf0000), which Linux scans for the "_MP_" floating pointer (spec §4.1) and
 * which the e820 map reserves.
 */
#include "util/util.h"
#include "vmm/kvm.h"

#define MP_TABLE_ADDR     0xf0000ULL
#define MP_LAPIC_VERSION  0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_ISA_IRQS       16

struct mp_floating_pointer {
        char signature[4];
        uint32_t config_table;
        uint8_t length; /* in 16-byte units */
        uint8_t spec_rev;
        uint8_t checksum;
        uint8_t features[5];
} __attribute__((packed));

struct mp_config_header {
        char signature[4];
        uint16_t length;
        uint8_t spec_rev;
        uint8_t checksum;
        char oem_id[8];
        char product_id[12];
        uint32_t oem_table;
        uint16_t oem_table_size;
        uint16_t entry_count;
        uint32_t lapic_address;
        uint16_t ext_length;
        uint8_t ext_checksum;
        uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
        uint8_t type; /* 0 */
        uint8_t lapic_id;
        uint8_t lapic_version;
        uint8_t flags; /* bit 0 enabled, bit 1 bootstrap processor */
        uint32_t signature;
        uint32_t features;
        uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
        uint8_t type; /* 1 */
        uint8_t bus_id;
        char bus_type[6];
} __attribute__((packed));

struct mp_ioapic {
        uint8_t type; /* 2 */
        uint8_t id;
        uint8_t version;
        uint8_t flags; /* bit 0 enabled */
        uint32_t address;
} __attribute__((packed));

struct mp_interrupt {
        uint8_t type;     /* 3 I/O interrupt, 4 local interrupt */
        uint8_t irq_type; /* 0 INT, 1 NMI, 3 ExtINT */
        uint16_t flags;   /* 0: polarity and trigger conform to the bus */
        uint8_t source_bus;
        uint8_t source_irq;
        uint8_t dest_apic;
        uint8_t dest_pin;
} __attribute__((packed));

static uint8_t mp_checksum(const void *p, size_t len)
{
        uint8_t sum = 0;
        for (size_t i = 0; i < len; i++)
                sum += ((const uint8_t *)p)[i];
        return (uint8_t)-sum;
}

static size_t mp_table_size(unsigned n_vcpus)
{
        return sizeof(struct mp_floating_pointer) + sizeof(struct mp_config_header) +
               n_vcpus * sizeof(struct mp_processor) + sizeof(struct mp_bus) +
               sizeof(struct mp_ioapic) + (MP_ISA_IRQS + 2) * sizeof(struct mp_interrupt);
}

/* The entries after the header; returns their number. */
static uint16_t mp_write_entries(uint8_t *p, unsigned n_vcpus, size_t *ret_len)
{
        uint8_t *start = p;
        uint16_t n = 0;
        uint8_t ioapic_id = (uint8_t)n_vcpus; /* after the local APIC ids */

        for (unsigned i = 0; i < n_vcpus; i++, n++) {
                struct mp_processor cpu = {
                        .lapic_id = (uint8_t)i,
                        .lapic_version = MP_LAPIC_VERSION,
                        .flags = 1 | (i == 0 ? 2 : 0),
                        .signature = 0x600, /* family 6 */
                        .features = 0x201,  /* FPU, APIC */
                };
                memcpy(p, &cpu, sizeof(cpu));
                p += sizeof(cpu);
        }
        struct mp_bus isa = {.type = 1, .bus_id = 0, .bus_type = {'I', 'S', 'A', ' ', ' ', ' '}};
        memcpy(p, &isa, sizeof(isa));
        p += sizeof(isa), n++;
        struct mp_ioapic ioapic = {.type = 2,
                                   .id = ioapic_id,
                                   .version = MP_IOAPIC_VERSION,
                                   .flags = 1,
                                   .address = (uint32_t)IOV_MEM_IOAPIC_START};
        memcpy(p, &ioapic, sizeof(ioapic));
        p += sizeof(ioapic), n++;
        /* ISA IRQ i arrives on IOAPIC pin i (KVM's default routing, vmm/irq.c). */
        for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++, n++) {
                struct mp_interrupt e = {.type = 3,
                                         .irq_type = 0,
                                         .source_irq = irq,
                                         .dest_apic = ioapic_id,
                                         .dest_pin = irq};
                memcpy(p, &e, sizeof(e));
                p += sizeof(e);
        }
        /* LINT0 ExtINT and LINT1 NMI on every local APIC (0xff), as vcpu.c programs. */
        struct mp_interrupt lint0 = {.type = 4, .irq_type = 3, .dest_apic = 0xff, .dest_pin = 0};
        struct mp_interrupt lint1 = {.type = 4, .irq_type = 1, .dest_apic = 0xff, .dest_pin = 1};
        memcpy(p, &lint0, sizeof(lint0));
        p += sizeof(lint0), n++;
        memcpy(p, &lint1, sizeof(lint1));
        p += sizeof(lint1), n++;
        *ret_len = (size_t)(p - start);
        return n;
}

int vmm_mptable_write(struct iov_vm *vm)
{
        size_t size = mp_table_size(vm->n_vcpus);
        uint8_t *base = vmm_memory_ptr(vm->mem, MP_TABLE_ADDR, size);
        if (!base)
                return -EFAULT;
        memset(base, 0, size);

        struct mp_floating_pointer fp = {
                .signature = {'_', 'M', 'P', '_'},
                .config_table = (uint32_t)(MP_TABLE_ADDR + sizeof(fp)),
                .length = 1,
                .spec_rev = 4,
        };
        fp.checksum = mp_checksum(&fp, sizeof(fp));
        memcpy(base, &fp, sizeof(fp));

        uint8_t *table = base + sizeof(fp);
        size_t entries_len;
        uint16_t count = mp_write_entries(table + sizeof(struct mp_config_header), vm->n_vcpus,
                                          &entries_len);
        struct mp_config_header hdr = {
                .signature = {'P', 'C', 'M', 'P'},
                .length = (uint16_t)(sizeof(hdr) + entries_len),
                .spec_rev = 4,
                .oem_id = {'I', 'O', 'V', 'D', ' ', ' ', ' ', ' '},
                .product_id = {'I', 'O', 'V', 'D', '-', 'V', 'M', 'M', ' ', ' ', ' ', ' '},
                .entry_count = count,
                .lapic_address = (uint32_t)IOV_MEM_LAPIC_START,
        };
        memcpy(table, &hdr, sizeof(hdr));
        /* The checksum covers the header and every entry (spec §4.2). */
        table[offsetof(struct mp_config_header, checksum)] = mp_checksum(table, hdr.length);
        return 0;
}
