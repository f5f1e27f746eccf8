/* SPDX-License-Identifier: MIT */
/*
 * ACPI (ACPI 6.4 spec): tables in the BIOS area so Linux finds the CPUs and the IOAPIC
 * (MADT, §5.2.12) and can power the VM off (FADT §5.2.9 with a PM1a control block, DSDT
 * with an \_S5 sleep package, §7.4.2.5), plus the fixed-hardware PM1a event/control
 * registers (§4.8.3). Writing SLP_EN with SLP_TYP = 5 (S5, soft off) stops the VM with
 * status 0. The FADT's reset register is the i8042 reset (port 0x64, value 0xfe), and
 * its boot flags say an 8042 is present, so Linux keeps using the keyboard controller.
 *
 * Tables at 0xf1000 (after the MP table): RSDP, XSDT, FADT, FACS, MADT, MCFG, DSDT; all
 * inside the e820-reserved 0x9fc00-0xfffff, where Linux looks for "RSD PTR " (§5.2.5.1).
 *
 * The MCFG (PCI Firmware Spec r3.2 §4.1.2) announces the ECAM window for bus 0 only, the
 * same bus range as the host bridge's _CRS, so Linux does its config accesses through
 * MMCONFIG (one MMIO exit each) instead of CF8/CFC (two port exits each).
 */
#include <assert.h>

#include "util/util.h"
#include "vmm/kvm.h"

#define ACPI_BASE      0xf1000ULL
#define ACPI_RSDP_ADDR (ACPI_BASE + 0x000)
#define ACPI_XSDT_ADDR (ACPI_BASE + 0x040)
#define ACPI_FADT_ADDR (ACPI_BASE + 0x100)
#define ACPI_FACS_ADDR (ACPI_BASE + 0x240) /* 64-byte aligned (§5.2.10) */
#define ACPI_MADT_ADDR (ACPI_BASE + 0x300) /* at most 0x148 bytes for 32 vCPUs */
#define ACPI_MCFG_ADDR (ACPI_BASE + 0x700)
#define ACPI_DSDT_ADDR (ACPI_BASE + 0x800)
#define ACPI_END       (ACPI_BASE + 0x2000) /* the DSDT's _PRT needs ~1.7 KiB */

#define PM1A_EVT_PORT 0x600 /* PM1 status (2 bytes), PM1 enable (2 bytes) */
#define PM1A_CNT_PORT 0x604 /* PM1 control (2 bytes) */
#define SCI_IRQ       9

#define PM1_CNT_SCI_EN  0x0001
#define PM1_CNT_SLP_TYP 0x1c00
#define PM1_CNT_SLP_EN  0x2000
#define SLP_TYP_S5      5

/* The buses the host bridge decodes: only bus 0 exists (vmm/pci.h). */
#define PCI_BUS_FIRST 0
#define PCI_BUS_LAST  0

/* ---- table building --------------------------------------------------------------- */

static void put(uint8_t *t, size_t offset, uint64_t value, unsigned len)
{
        for (unsigned i = 0; i < len; i++)
                t[offset + i] = (uint8_t)(value >> (8 * i));
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
        uint8_t sum = 0;
        for (size_t i = 0; i < len; i++)
                sum += p[i];
        return (uint8_t)-sum;
}

/* The 36-byte header every system description table starts with (§5.2.6). */
static void header(uint8_t *t, const char *signature, uint32_t length, uint8_t revision)
{
        memcpy(t, signature, 4);
        put(t, 4, length, 4);
        t[8] = revision;
        memcpy(t + 10, "IOVD  ", 6);
        memcpy(t + 16, "IOVD-VMM", 8);
        put(t, 24, 1, 4);
        memcpy(t + 28, "IOVD", 4);
        put(t, 32, 1, 4);
}

static void finish(uint8_t *t, uint32_t length)
{
        t[9] = 0;
        t[9] = checksum(t, length);
}

/* Generic address structure for an I/O port register (§5.2.3.2). */
static void gas_io(uint8_t *t, size_t offset, uint16_t port, unsigned bits, unsigned access)
{
        t[offset] = 1; /* system I/O space */
        t[offset + 1] = (uint8_t)bits;
        t[offset + 2] = 0;
        t[offset + 3] = (uint8_t)access; /* 1 byte, 2 word, 3 dword */
        put(t, offset + 4, port, 8);
}

static void acpi_build_fadt(uint8_t *t)
{
        const uint32_t len = 276; /* FADT revision 6 */
        header(t, "FACP", len, 6);
        /* FIRMWARE_CTRL stays 0: X_FIRMWARE_CTRL below holds the FACS (§5.2.9). */
        put(t, 40, ACPI_DSDT_ADDR, 4);
        put(t, 46, SCI_IRQ, 2);
        /* SMI_CMD 0: the platform is always in ACPI mode (§5.2.9, SMI_CMD). */
        put(t, 56, PM1A_EVT_PORT, 4);
        put(t, 64, PM1A_CNT_PORT, 4);
        t[88] = 4;              /* PM1_EVT_LEN */
        t[89] = 2;              /* PM1_CNT_LEN */
        put(t, 96, 101, 2);     /* P_LVL2_LAT > 100: no C2 */
        put(t, 98, 1001, 2);    /* P_LVL3_LAT > 1000: no C3 */
        t[108] = 0x32;          /* CENTURY: the RTC's century byte (vmm/rtc.c) */
        put(t, 109, 0x0003, 2); /* IAPC_BOOT_ARCH: LEGACY_DEVICES, 8042 */
        /* Flags: WBINVD, C1 supported, power and sleep buttons not fixed hardware,
         * RESET_REG_SUP. */
        put(t, 112, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 10, 4);
        gas_io(t, 116, 0x64, 8, 1);
        t[128] = 0xfe; /* RESET_VALUE: the i8042 reset pulse */
        put(t, 132, ACPI_FACS_ADDR, 8);
        put(t, 140, ACPI_DSDT_ADDR, 8);
        gas_io(t, 148, PM1A_EVT_PORT, 32, 2);
        gas_io(t, 172, PM1A_CNT_PORT, 16, 2);
        memcpy(t + 268, "IOVD-VMM", 8); /* hypervisor vendor identity */
        finish(t, len);
}

static void acpi_build_facs(uint8_t *t)
{
        memcpy(t, "FACS", 4);
        put(t, 4, 64, 4);
        t[32] = 2; /* version */
}

/* MADT: one local APIC per vCPU, the IOAPIC (id n_vcpus, as in the MP table), SCI on
 * IRQ 9 level/active-high, LINT1 = NMI on every processor. */
static uint32_t acpi_build_madt(uint8_t *t, unsigned n_vcpus)
{
        uint32_t o = 44;
        for (unsigned i = 0; i < n_vcpus; i++, o += 8) {
                t[o] = 0, t[o + 1] = 8, t[o + 2] = (uint8_t)i, t[o + 3] = (uint8_t)i;
                put(t, o + 4, 1, 4); /* enabled */
        }
        t[o] = 1, t[o + 1] = 12, t[o + 2] = (uint8_t)n_vcpus;
        put(t, o + 4, IOV_MEM_IOAPIC_START, 4);
        put(t, o + 8, 0, 4); /* GSI base */
        o += 12;
        t[o] = 2, t[o + 1] = 10, t[o + 2] = 0, t[o + 3] = SCI_IRQ;
        put(t, o + 4, SCI_IRQ, 4);
        put(t, o + 8, 0x000d, 2); /* active high, level triggered */
        o += 10;
        t[o] = 4, t[o + 1] = 6, t[o + 2] = 0xff;
        put(t, o + 3, 0, 2);
        t[o + 5] = 1; /* LINT1 */
        o += 6;
        header(t, "APIC", o, 5);
        put(t, 36, IOV_MEM_LAPIC_START, 4);
        put(t, 40, 1, 4); /* PCAT_COMPAT: there are 8259s too */
        finish(t, o);
        return o;
}

/* MCFG: one configuration space base address allocation structure (PCI Firmware Spec
 * r3.2 §4.1.2, table 4-3): base address, PCI segment 0, start and end bus. The base is
 * that of bus 0, so ECAM offset = bus << 20 | device << 15 | function << 12. */
static uint32_t acpi_build_mcfg(uint8_t *t)
{
        const uint32_t len = 44 + 16;
        header(t, "MCFG", len, 1);
        /* bytes 36-43 reserved */
        put(t, 44, IOV_MEM_ECAM_START, 8);
        put(t, 52, 0, 2); /* PCI segment group */
        t[54] = PCI_BUS_FIRST;
        t[55] = PCI_BUS_LAST;
        finish(t, len);
        return len;
}

/* ---- AML for the DSDT (ACPI 6.4 chapter 20) ---------------------------------------- */

struct aml {
        uint8_t b[4096];
        size_t n;
};

static void aml_add(struct aml *a, const void *data, size_t len)
{
        assert(a->n + len <= sizeof(a->b)); /* the tables are fixed: a size bug is ours */
        memcpy(a->b + a->n, data, len);
        a->n += len;
}

/* op, then PkgLength (§20.2.4: 1 to 3 bytes, counting itself), then inner. */
static void aml_package(struct aml *a, const uint8_t *op, size_t op_len, const struct aml *inner)
{
        size_t k = inner->n + 1 <= 63 ? 1 : (inner->n + 2 <= 0xfff ? 2 : 3);
        size_t total = inner->n + k;
        uint8_t pkg[3];
        if (k == 1) {
                pkg[0] = (uint8_t)total;
        } else {
                pkg[0] = (uint8_t)((k - 1) << 6 | (total & 0xf));
                pkg[1] = (uint8_t)(total >> 4);
                pkg[2] = (uint8_t)(total >> 12);
        }
        aml_add(a, op, op_len);
        aml_add(a, pkg, k);
        aml_add(a, inner->b, inner->n);
}

/* Name (NAME, Zero) and Name (NAME, DWord). */
static void aml_name_zero(struct aml *a, const char name[4])
{
        aml_add(a, (const uint8_t[]){0x08}, 1);
        aml_add(a, name, 4);
        aml_add(a, (const uint8_t[]){0x00}, 1);
}

static void aml_name_dword(struct aml *a, const char name[4], uint32_t v)
{
        uint8_t b[6] = {0x08, 0, 0, 0, 0, 0x0c};
        memcpy(b + 1, name, 4);
        aml_add(a, b, 6);
        aml_add(a,
                (const uint8_t[]){(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                                  (uint8_t)(v >> 24)},
                4);
}

/* Word address space descriptor (§6.4.3.5.3): type 1 I/O, 2 bus numbers. */
static void res_word(struct aml *r, uint8_t type, uint8_t type_flags, uint16_t min, uint16_t max)
{
        uint16_t len = (uint16_t)(max - min + 1);
        uint8_t d[16] = {0x88,
                         13,
                         0,
                         type,
                         0x0c /* fixed min and max, producer */,
                         type_flags,
                         0,
                         0,
                         (uint8_t)min,
                         (uint8_t)(min >> 8),
                         (uint8_t)max,
                         (uint8_t)(max >> 8),
                         0,
                         0,
                         (uint8_t)len,
                         (uint8_t)(len >> 8)};
        aml_add(r, d, sizeof(d));
}

/* DWord memory range descriptor (§6.4.3.5.2), read-write, non-cacheable. */
static void res_dword_memory(struct aml *r, uint32_t min, uint32_t max)
{
        uint32_t v[5] = {0, min, max, 0, max - min + 1}; /* granularity .. length */
        uint8_t d[6] = {0x87, 23, 0, 0 /* memory */, 0x0c, 0x01};
        aml_add(r, d, sizeof(d));
        for (unsigned i = 0; i < 5; i++)
                aml_add(r,
                        (const uint8_t[]){(uint8_t)v[i], (uint8_t)(v[i] >> 8),
                                          (uint8_t)(v[i] >> 16), (uint8_t)(v[i] >> 24)},
                        4);
}

/* QWord memory range descriptor (§6.4.3.5.1), read-write, prefetchable (type-specific
 * flags bits 2:1 = 11b), fixed minimum and maximum. */
static void res_qword_memory(struct aml *r, uint64_t min, uint64_t max)
{
        uint64_t v[5] = {0, min, max, 0, max - min + 1}; /* granularity .. length */
        uint8_t d[6] = {0x8a, 43, 0, 0 /* memory */, 0x0c, 0x07};
        aml_add(r, d, sizeof(d));
        for (unsigned i = 0; i < 5; i++)
                for (unsigned b = 0; b < 8; b++)
                        aml_add(r, (const uint8_t[]){(uint8_t)(v[i] >> (8 * b))}, 1);
}

/* The root bridge's resources: bus 0, the CF8 ports it decodes itself, the I/O space
 * around them, the BAR window below 4 GiB (IOV_MEM_PCI_MMIO_*) and the one above RAM
 * (vmm_memory_pci64_start()), where large 64-bit prefetchable BARs are (vmm/pci.c). */
static void aml_pci_crs(struct aml *a, uint64_t pci64_start)
{
        struct aml r = {.n = 0}, buf = {.n = 0};
        res_word(&r, 2, 0, PCI_BUS_FIRST, PCI_BUS_LAST);
        aml_add(&r, (const uint8_t[]){0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08}, 8);
        res_word(&r, 1, 0x03, 0x0000, 0x0cf7);
        res_word(&r, 1, 0x03, 0x0d00, 0xffff);
        res_dword_memory(&r, (uint32_t)IOV_MEM_PCI_MMIO_START, (uint32_t)IOV_MEM_PCI_MMIO_END - 1);
        res_qword_memory(&r, pci64_start, pci64_start + IOV_MEM_PCI64_SIZE - 1);
        aml_add(&r, (const uint8_t[]){0x79, 0x00}, 2); /* end tag */

        aml_add(&buf, (const uint8_t[]){0x0a, (uint8_t)r.n}, 2); /* BufferSize */
        aml_add(&buf, r.b, r.n);
        aml_add(a, (const uint8_t[]){0x08, '_', 'C', 'R', 'S'}, 5);
        aml_package(a, (const uint8_t[]){0x11}, 1, &buf);
}

/* One _PRT entry (ACPI 6.4 §6.2.13): Package (4) { Address, Pin, Source, Source Index }
 * with Address = slot << 16 | 0xffff (any function), Pin 0..3 = INTA..INTD, Source Zero:
 * the pin is wired to the global system interrupt Source Index, which is then
 * level-triggered, active-low and shareable (§6.2.13). */
static void aml_prt_entry(struct aml *a, unsigned slot, unsigned pin)
{
        struct aml e = {.n = 0};
        uint32_t address = slot << 16 | 0xffff;
        aml_add(&e, (const uint8_t[]){0x04, 0x0c}, 2); /* NumElements 4, DWordPrefix */
        aml_add(&e,
                (const uint8_t[]){(uint8_t)address, (uint8_t)(address >> 8),
                                  (uint8_t)(address >> 16), (uint8_t)(address >> 24)},
                4);
        aml_add(&e, (const uint8_t[]){0x0a, (uint8_t)pin, 0x00}, 3); /* BytePrefix pin, Zero */
        aml_add(&e, (const uint8_t[]){0x0a, (uint8_t)vmm_pci_intx_gsi(slot, pin + 1)}, 2);
        aml_package(a, (const uint8_t[]){0x12}, 1, &e); /* PackageOp */
}

/* Name (_PRT, Package () { ... }): INTA..INTD of every slot of bus 0, as vmm/irq.c wires
 * them. Without it a Linux guest with ACPI finds no interrupt for a device's pin. */
static void aml_pci_prt(struct aml *a)
{
        struct aml entries = {.n = 0};
        aml_add(&entries, (const uint8_t[]){32 * 4}, 1); /* NumElements */
        for (unsigned slot = 0; slot < 32; slot++)
                for (unsigned pin = 0; pin < 4; pin++)
                        aml_prt_entry(&entries, slot, pin);
        aml_add(a, (const uint8_t[]){0x08, '_', 'P', 'R', 'T'}, 5);
        aml_package(a, (const uint8_t[]){0x12}, 1, &entries);
}

/* Device (RES0) { _HID PNP0C02, _CRS { Memory32Fixed (ECAM of bus 0) } }: a motherboard
 * resource holding the MCFG window. Linux checks the window against such resources once
 * ACPI is up (PCI Firmware Spec r3.2 §4.1.2 asks firmware to reserve it) and stops
 * using MMCONFIG when it finds none. */
static void aml_ecam_reservation(struct aml *scope)
{
        struct aml dev = {.n = 0}, r = {.n = 0};
        aml_add(&dev, "RES0", 4);
        aml_name_dword(&dev, "_HID", 0x020cd041); /* EisaId ("PNP0C02") */
        uint32_t v[2] = {(uint32_t)IOV_MEM_ECAM_START, (uint32_t)IOV_MEM_ECAM_BUS_SIZE};
        /* Memory32Fixed descriptor (§6.4.3.4): read-write, base, length; then end tag. */
        aml_add(&r, (const uint8_t[]){0x0a, 14, 0x86, 9, 0, 1}, 6); /* BufferSize 14 */
        for (unsigned i = 0; i < 2; i++)
                aml_add(&r,
                        (const uint8_t[]){(uint8_t)v[i], (uint8_t)(v[i] >> 8),
                                          (uint8_t)(v[i] >> 16), (uint8_t)(v[i] >> 24)},
                        4);
        aml_add(&r, (const uint8_t[]){0x79, 0x00}, 2);
        aml_add(&dev, (const uint8_t[]){0x08, '_', 'C', 'R', 'S'}, 5);
        aml_package(&dev, (const uint8_t[]){0x11}, 1, &r);
        aml_package(scope, (const uint8_t[]){0x5b, 0x82}, 2, &dev); /* DeviceOp */
}

/* Scope (\_SB) { Device (PCI0) { _HID PNP0A03, _UID, _SEG, _BBN, _CRS, _PRT } } and
 * Name (_S5, Package (4) { 5, 5, 0, 0 }) for soft off (§7.4.2). Linux with ACPI finds PCI
 * root buses only through the namespace, so the host bridge must be here. */
static uint32_t acpi_build_dsdt(uint8_t *t, uint64_t pci64_start)
{
        struct aml dev = {.n = 0}, scope = {.n = 0}, body = {.n = 0};
        aml_add(&dev, "PCI0", 4);
        aml_name_dword(&dev, "_HID", 0x030ad041); /* EisaId ("PNP0A03") */
        aml_name_zero(&dev, "_UID");
        aml_name_zero(&dev, "_SEG");
        aml_name_zero(&dev, "_BBN");
        aml_pci_crs(&dev, pci64_start);
        aml_pci_prt(&dev);
        aml_add(&scope, (const uint8_t[]){'\\', '_', 'S', 'B', '_'}, 5);
        aml_package(&scope, (const uint8_t[]){0x5b, 0x82}, 2, &dev); /* DeviceOp */
        aml_ecam_reservation(&scope);
        aml_package(&body, (const uint8_t[]){0x10}, 1, &scope); /* ScopeOp */
        static const uint8_t s5[] = {0x08, '_',  'S',        '5',  '_',        0x12, 0x08,
                                     0x04, 0x0a, SLP_TYP_S5, 0x0a, SLP_TYP_S5, 0x00, 0x00};
        aml_add(&body, s5, sizeof(s5));

        uint32_t len = (uint32_t)(36 + body.n);
        header(t, "DSDT", len, 2);
        memcpy(t + 36, body.b, body.n);
        finish(t, len);
        return len;
}

static void acpi_build_xsdt_rsdp(uint8_t *xsdt, uint8_t *rsdp)
{
        const uint32_t len = 36 + 3 * 8;
        header(xsdt, "XSDT", len, 1);
        put(xsdt, 36, ACPI_FADT_ADDR, 8);
        put(xsdt, 44, ACPI_MADT_ADDR, 8);
        put(xsdt, 52, ACPI_MCFG_ADDR, 8);
        finish(xsdt, len);

        memcpy(rsdp, "RSD PTR ", 8);
        memcpy(rsdp + 9, "IOVD  ", 6);
        rsdp[15] = 2; /* ACPI 2.0+: XSDT */
        put(rsdp, 20, 36, 4);
        put(rsdp, 24, ACPI_XSDT_ADDR, 8);
        rsdp[8] = checksum(rsdp, 20);
        rsdp[32] = checksum(rsdp, 36);
}

int vmm_acpi_write(struct iov_vm *vm)
{
        uint8_t *base = vmm_memory_ptr(vm->mem, ACPI_BASE, ACPI_END - ACPI_BASE);
        if (!base || vm->n_vcpus > 32)
                return -EFAULT;
        memset(base, 0, ACPI_END - ACPI_BASE);
        acpi_build_fadt(base + (ACPI_FADT_ADDR - ACPI_BASE));
        acpi_build_facs(base + (ACPI_FACS_ADDR - ACPI_BASE));
        acpi_build_madt(base + (ACPI_MADT_ADDR - ACPI_BASE), vm->n_vcpus);
        acpi_build_mcfg(base + (ACPI_MCFG_ADDR - ACPI_BASE));
        acpi_build_dsdt(base + (ACPI_DSDT_ADDR - ACPI_BASE), vmm_memory_pci64_start(vm->mem));
        acpi_build_xsdt_rsdp(base + (ACPI_XSDT_ADDR - ACPI_BASE),
                             base + (ACPI_RSDP_ADDR - ACPI_BASE));
        return 0;
}

/* ---- PM1 registers ------------------------------------------------------------------ */

struct iov_acpi_pm {
        struct iov_vm *vm;
        pthread_mutex_t lock;
        uint16_t status, enable, control;
};

static void pm_control_write(struct iov_acpi_pm *pm, uint16_t v)
{
        /* SLP_EN is write-only and starts the transition (§4.8.3.2.1); only S5 exists. */
        if ((v & PM1_CNT_SLP_EN) && ((v & PM1_CNT_SLP_TYP) >> 10) == SLP_TYP_S5)
                vmm_vm_request_stop(pm->vm, false, IOV_VMM_EXIT_STOPPED,
                                    "guest powered off (ACPI S5)");
        pm->control = (uint16_t)((v & ~(PM1_CNT_SLP_EN | PM1_CNT_SCI_EN)) | PM1_CNT_SCI_EN);
}

/* offset 0-1 PM1 status (write 1 to clear), 2-3 PM1 enable, 4-5 PM1 control. */
static void pm_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
        struct iov_acpi_pm *pm = opaque;
        pthread_mutex_lock(&pm->lock);
        uint8_t regs[6];
        memcpy(regs, &pm->status, 2);
        memcpy(regs + 2, &pm->enable, 2);
        memcpy(regs + 4, &pm->control, 2);
        if (!is_write) {
                for (uint32_t i = 0; i < len; i++)
                        data[i] = offset + i < sizeof(regs) ? regs[offset + i] : 0xff;
        } else {
                uint8_t w[6];
                memcpy(w, regs, sizeof(w));
                for (uint32_t i = 0; i < len && offset + i < sizeof(w); i++)
                        w[offset + i] = data[i];
                uint16_t status, enable, control;
                memcpy(&status, w, 2);
                memcpy(&enable, w + 2, 2);
                memcpy(&control, w + 4, 2);
                if (offset < 2)
                        pm->status &= (uint16_t)~status;
                pm->enable = enable;
                if (offset + len > 4)
                        pm_control_write(pm, control);
        }
        pthread_mutex_unlock(&pm->lock);
}

static void pm_free(void *data)
{
        struct iov_acpi_pm *pm = data;
        pthread_mutex_destroy(&pm->lock);
        free(pm);
}

static int acpi_pm_init(struct iov_vm *vm)
{
        struct iov_acpi_pm *pm = calloc(1, sizeof(*pm));
        if (!pm)
                return -ENOMEM;
        pm->vm = vm;
        pm->control = PM1_CNT_SCI_EN; /* always in ACPI mode */
        pthread_mutex_init(&pm->lock, NULL);
        int r = vmm_vm_add_cleanup(vm, pm_free, pm);
        if (r < 0) {
                pm_free(pm);
                return r;
        }
        return vmm_bus_register(&vm->pio, PM1A_EVT_PORT, 6, pm_access, pm, "acpi-pm");
}

IOV_VMM_DEVICE("acpi-pm", IOV_DEVICE_ORDER_LEGACY, acpi_pm_init)
