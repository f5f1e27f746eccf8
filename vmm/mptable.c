/* SPDX-License-Identifier: MIT */
/*
 * MP configuration table (Intel MultiProcessor Specification 1.4, chapter 4) so Linux finds
 * every CPU, the IOAPIC and how the ISA interrupts reach it, without ACPI. It lives in the
 * BIOS area (0xf0000), which Linux scans for the "_MP_" floating pointer (spec §4.1) and
 * which the e820 map reserves. PCI bus 0's INTA..INTD of every slot are described too
 * (the map of vmm/irq.c), for a guest that boots without ACPI.
 */
#include "util/util.h"
#include "vmm/kvm.h"

#define MP_TABLE_ADDR     0xf0000ULL
#define MP_LAPIC_VERSION  0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_ISA_IRQS       16
#define MP_PCI_SLOTS      32
#define MP_PCI_IRQS       (MP_PCI_SLOTS * 4) /* INTA..INTD of every slot */
/* Bus ids: PCI bus 0 must keep its own number, Linux matches the entries' source bus
 * against the PCI bus number; ISA comes after it. */
#define MP_BUS_PCI 0
#define MP_BUS_ISA 1
/* I/O interrupt entry flags (spec §4.3.4, table 4-10): polarity bits 1:0 = 11b active
 * low, trigger mode bits 3:2 = 11b level, what PCI interrupts are (PCI r3.0 §2.2.6). */
#define MP_IRQ_LEVEL_LOW 0x000f

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
               n_vcpus * sizeof(struct mp_processor) + 2 * sizeof(struct mp_bus) +
               sizeof(struct mp_ioapic) +
               (MP_ISA_IRQS + MP_PCI_IRQS + 2) * sizeof(struct mp_interrupt);
}

static void mp_put(uint8_t **p, uint16_t *n, const void *entry, size_t len)
{
        memcpy(*p, entry, len);
        *p += len;
        (*n)++;
}

/* One I/O interrupt entry per PCI slot and pin (spec §4.3.4: for a PCI source bus the
 * source IRQ is slot << 2 | pin, pin 0 = INTA), to the IOAPIC pin vmm/irq.c wires it to. */
static void mp_write_pci_interrupts(uint8_t **p, uint16_t *n, uint8_t ioapic_id)
{
        for (unsigned slot = 0; slot < MP_PCI_SLOTS; slot++) {
                for (unsigned pin = 0; pin < 4; pin++) {
                        struct mp_interrupt e = {
                                .type = 3,
                                .flags = MP_IRQ_LEVEL_LOW,
                                .source_bus = MP_BUS_PCI,
                                .source_irq = (uint8_t)(slot << 2 | pin),
                                .dest_apic = ioapic_id,
                                .dest_pin = (uint8_t)vmm_pci_intx_gsi(slot, pin + 1),
                        };
                        mp_put(p, n, &e, sizeof(e));
                }
        }
}

/* The buses (in bus id order), the IOAPIC and the interrupt entries. */
static void mp_write_interrupts(uint8_t **p, uint16_t *n, uint8_t ioapic_id)
{
        struct mp_bus pci = {
                .type = 1, .bus_id = MP_BUS_PCI, .bus_type = {'P', 'C', 'I', ' ', ' ', ' '}};
        struct mp_bus isa = {
                .type = 1, .bus_id = MP_BUS_ISA, .bus_type = {'I', 'S', 'A', ' ', ' ', ' '}};
        mp_put(p, n, &pci, sizeof(pci));
        mp_put(p, n, &isa, sizeof(isa));
        struct mp_ioapic ioapic = {.type = 2,
                                   .id = ioapic_id,
                                   .version = MP_IOAPIC_VERSION,
                                   .flags = 1,
                                   .address = (uint32_t)IOV_MEM_IOAPIC_START};
        mp_put(p, n, &ioapic, sizeof(ioapic));
        /* ISA IRQ i arrives on IOAPIC pin i (KVM's default routing, vmm/irq.c). */
        for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++) {
                struct mp_interrupt e = {.type = 3,
                                         .irq_type = 0,
                                         .source_bus = MP_BUS_ISA,
                                         .source_irq = irq,
                                         .dest_apic = ioapic_id,
                                         .dest_pin = irq};
                mp_put(p, n, &e, sizeof(e));
        }
        mp_write_pci_interrupts(p, n, ioapic_id);
        /* LINT0 ExtINT and LINT1 NMI on every local APIC (0xff), as vcpu.c programs. */
        struct mp_interrupt lint0 = {.type = 4, .irq_type = 3, .dest_apic = 0xff, .dest_pin = 0};
        struct mp_interrupt lint1 = {.type = 4, .irq_type = 1, .dest_apic = 0xff, .dest_pin = 1};
        mp_put(p, n, &lint0, sizeof(lint0));
        mp_put(p, n, &lint1, sizeof(lint1));
}

/* The entries after the header; returns their number. */
static uint16_t mp_write_entries(uint8_t *p, unsigned n_vcpus, size_t *ret_len)
{
        uint8_t *start = p;
        uint16_t n = 0;
        for (unsigned i = 0; i < n_vcpus; i++) {
                struct mp_processor cpu = {
                        .lapic_id = (uint8_t)i,
                        .lapic_version = MP_LAPIC_VERSION,
                        .flags = 1 | (i == 0 ? 2 : 0),
                        .signature = 0x600, /* family 6 */
                        .features = 0x201,  /* FPU, APIC */
                };
                mp_put(&p, &n, &cpu, sizeof(cpu));
        }
        mp_write_interrupts(&p, &n, (uint8_t)n_vcpus); /* IOAPIC id after the local APICs' */
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
