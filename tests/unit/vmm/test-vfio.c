/* SPDX-License-Identifier: MIT */
/* The VFIO device model without VFIO: the device entry, the host checks on a generated
 * sysfs tree, and config space and BARs of a made-up e1000e whose "device fd" is a memfd
 * laid out like vfio-pci's regions (config region and BARs at their offsets). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "fake-vm.h"
#include "vmm/vfio/vfio.h"

/* ---- the device entry ------------------------------------------------------------------ */

static int parse(const char *json, struct iov_vfio_spec *spec, char **error)
{
        struct json_object *o = json_tokener_parse(json);
        cr_assert_not_null(o, "test JSON %s", json);
        int r = vfio_spec_parse(o, spec, error);
        json_object_put(o);
        return r;
}

Test(vfio_spec, parses_host_and_slot)
{
        struct iov_vfio_spec s;
        int r = parse("{\"type\":\"vfio\",\"host\":\"0000:00:0A.0\",\"guest_address\":5}", &s,
                      NULL);
        cr_assert_eq(r, 1, "parse returned %d", r);
        cr_assert_str_eq(s.host, "0000:00:0a.0", "host %s", s.host);
        cr_assert_eq(s.guest_slot, 5, "slot %u", s.guest_slot);
        r = parse("{\"type\":\"vfio\",\"host\":\"0000:01:00.1\"}", &s, NULL);
        cr_assert_eq(r, 1, "parse returned %d", r);
        cr_assert_eq(s.guest_slot, 0, "default slot %u", s.guest_slot);
}

Test(vfio_spec, leaves_other_devices_alone)
{
        struct iov_vfio_spec s;
        int r = parse("{\"type\":\"virtio-rng\"}", &s, NULL);
        cr_assert_eq(r, 0, "a virtio entry gave %d", r);
}

Test(vfio_spec, refuses_malformed_entries)
{
        static const char *bad[] = {
                "{\"type\":\"vfio\"}",
                "{\"type\":\"vfio\",\"host\":\"00:03.0\"}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:20.0\"}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:03.8\"}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:03.0 \"}",
                "{\"type\":\"vfio\",\"host\":3}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:03.0\",\"guest_address\":0}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:03.0\",\"guest_address\":32}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:03.0\",\"rom\":true}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:03.0\",\"vfio_group\":7}",
                "{\"type\":\"vfio\",\"host\":\"0000:00:03.0\",\"vfio_group\":\"vfio/7\"}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct iov_vfio_spec s;
                char *error = NULL;
                int r = parse(bad[i], &s, &error);
                cr_expect_eq(r, -EINVAL, "%s gave %d", bad[i], r);
                cr_expect_not_null(error, "%s: no message", bad[i]);
                free(error);
        }
}

Test(vfio_spec, parses_present_as)
{
        struct iov_vfio_spec s;
        int r = parse("{\"type\":\"vfio\",\"host\":\"0000:00:02.0\",\"present_as\":"
                      "{\"subsystem_id\":\"0001\",\"revision\":\"0a\"}}",
                      &s, NULL);
        cr_assert_eq(r, 1, "parse returned %d", r);
        cr_expect_eq(s.present_as.fields, IOV_VFIO_PRESENT_SUBSYSTEM_ID | IOV_VFIO_PRESENT_REVISION,
                     "fields %x", s.present_as.fields);
        cr_expect_eq(s.present_as.subsystem_id, 0x0001, "subsystem_id %04x",
                     s.present_as.subsystem_id);
        cr_expect_eq(s.present_as.revision, 0x0a, "revision %02x", s.present_as.revision);
        r = parse("{\"type\":\"vfio\",\"host\":\"0000:00:02.0\",\"present_as\":"
                  "{\"vendor_id\":\"8086\",\"device_id\":\"10d3\",\"subsystem_vendor_id\":"
                  "\"1af4\",\"subsystem_id\":\"1100\"}}",
                  &s, NULL);
        cr_assert_eq(r, 1, "parse returned %d", r);
        cr_expect(s.present_as.vendor_id == 0x8086 && s.present_as.device_id == 0x10d3 &&
                          s.present_as.subsystem_vendor_id == 0x1af4 &&
                          s.present_as.subsystem_id == 0x1100,
                  "ids %04x:%04x %04x:%04x", s.present_as.vendor_id, s.present_as.device_id,
                  s.present_as.subsystem_vendor_id, s.present_as.subsystem_id);
        r = parse("{\"type\":\"vfio\",\"host\":\"0000:00:02.0\"}", &s, NULL);
        cr_expect_eq(s.present_as.fields, 0, "no present_as: fields %x", s.present_as.fields);
}

/* Combinations that cannot work are refused, each with the reason. */
Test(vfio_spec, refuses_present_as_that_cannot_work)
{
        static const struct {
                const char *present_as, *message;
        } bad[] = {
                {"{}", "names no id"},
                {"[]", "must be an object"},
                {"{\"class\":\"020000\"}", "cannot change the class"},
                {"{\"class_code\":\"010802\"}", "cannot change the class"},
                {"{\"vendor_id\":\"ffff\"}", "not 0000 or ffff"},
                {"{\"device_id\":\"0000\"}", "not 0000 or ffff"},
                {"{\"subsystem_id\":\"FFFF\"}", "lowercase"},
                {"{\"subsystem_vendor_id\":\"10D3\"}", "lowercase"},
                {"{\"device_id\":\"10d\"}", "4 lowercase"},
                {"{\"device_id\":4307}", "4 lowercase"},
                {"{\"revision\":\"100\"}", "2 lowercase"},
                {"{\"revision\":\"0x\"}", "2 lowercase"},
                {"{\"device\":\"10d3\"}", "unknown field \"device\""},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *json = util_strdup_printf(
                        "{\"type\":\"vfio\",\"host\":\"0000:00:02.0\",\"present_as\":%s}",
                        bad[i].present_as);
                struct iov_vfio_spec s;
                char *error = NULL;
                int r = parse(json, &s, &error);
                cr_expect_eq(r, -EINVAL, "%s gave %d", json, r);
                cr_expect(error && strstr(error, bad[i].message), "%s: message \"%s\", not \"%s\"",
                          json, error ? error : "(none)", bad[i].message);
                free(error);
        }
}

/* ---- host checks on a generated sysfs tree -------------------------------------------- */

static char sysfs[64];

static void sysfs_device(const char *driver, bool group)
{
        char path[256];
        snprintf(sysfs, sizeof(sysfs), "/tmp/iovd-vfio-sysfs.XXXXXX");
        cr_assert_not_null(mkdtemp(sysfs));
        snprintf(path, sizeof(path), "mkdir -p %s/bus/pci/devices/0000:00:02.0", sysfs);
        cr_assert_eq(system(path), 0);
        snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:00:02.0/iommu_group", sysfs);
        if (group)
                cr_assert_eq(symlink("../../../../kernel/iommu_groups/2", path), 0);
        snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:00:02.0/driver", sysfs);
        char target[128];
        snprintf(target, sizeof(target), "../../../../bus/pci/drivers/%s", driver);
        if (driver[0])
                cr_assert_eq(symlink(target, path), 0);
}

static void sysfs_remove(void)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", sysfs);
        int r = system(cmd);
        cr_expect_eq(r, 0, "%s: %d", cmd, r);
}

Test(vfio_host, accepts_a_function_bound_to_vfio_pci)
{
        char error[256] = "";
        unsigned group = 99;
        sysfs_device("vfio-pci", true);
        int r = vfio_host_check(sysfs, "0000:00:02.0", &group, error, sizeof(error));
        sysfs_remove();
        cr_assert_eq(r, 0, "check gave %d (%s)", r, error);
        cr_assert_eq(group, 2, "group %u", group);
}

Test(vfio_host, refuses_other_drivers_no_iommu_and_absent_devices)
{
        char error[256] = "";
        unsigned group = 99;
        sysfs_device("e1000e", true);
        int r = vfio_host_check(sysfs, "0000:00:02.0", &group, error, sizeof(error));
        cr_expect_eq(r, -EBUSY, "bound to e1000e: %d", r);
        cr_expect(strstr(error, "not bound to vfio-pci (e1000e)"), "message: %s", error);
        r = vfio_host_check(sysfs, "0000:00:03.0", &group, error, sizeof(error));
        cr_expect_eq(r, -ENODEV, "absent function: %d", r);
        sysfs_remove();

        sysfs_device("vfio-pci", false);
        r = vfio_host_check(sysfs, "0000:00:02.0", &group, error, sizeof(error));
        sysfs_remove();
        cr_expect_eq(r, -ENXIO, "no iommu_group: %d", r);
        cr_expect(strstr(error, "IOMMU"), "message: %s", error);
        cr_expect_eq(group, 99, "ret_group set on failure: %u", group);
}

/* ---- a made-up e1000e ----------------------------------------------------------------- */

#define REGION_STRIDE 0x100000ULL
#define CONFIG_BASE   (VFIO_PCI_CONFIG_REGION_INDEX * REGION_STRIDE)

static void put32(uint8_t *c, unsigned off, uint32_t v)
{
        memcpy(&c[off], &v, 4);
}

/* 8086:10d3 with PM (0xc8) -> MSI (0xd0, 64-bit) -> PCIe (0xe0) -> MSI-X (0xa0, 5 vectors,
 * table BAR3+0, PBA BAR3+0x2000); extended: AER (0x100) -> ARI (0x140) -> SR-IOV (0x150)
 * -> DSN (0x190). BAR0/1 128 KiB memory, BAR2 32 bytes of I/O, BAR3 16 KiB memory.
 * msi_control: the MSI capability's message control (0x0082: 64-bit, 2 messages); with
 * per-vector masking the capability is longer and PCIe moves to 0xf0. */
static void fake_config(uint8_t *c, uint16_t msi_control)
{
        memset(c, 0, 4096);
        put32(c, 0x00, 0x10d38086);
        put32(c, 0x04, 0x00100000); /* status: capability list */
        put32(c, 0x08, 0x02000000);
        c[0x0e] = 0x80; /* multifunction */
        put32(c, 0x10, 0xfebc0000);
        put32(c, 0x14, 0xfebe0000);
        put32(c, 0x18, 0x0000c001);
        put32(c, 0x1c, 0xfebf0000);
        put32(c, 0x2c, 0x00008086);
        c[0x34] = 0xc8;
        c[0x3d] = 1;
        c[0xc8] = 0x01, c[0xc9] = 0xd0;
        uint8_t pcie = (msi_control & 0x100) ? 0xf0 : 0xe0;
        c[0xd0] = 0x05, c[0xd1] = pcie;
        c[0xd2] = (uint8_t)msi_control, c[0xd3] = (uint8_t)(msi_control >> 8);
        c[pcie] = 0x10, c[pcie + 1] = 0xa0, c[pcie + 2] = 0x02;
        c[0xa0] = 0x11, c[0xa1] = 0x00, c[0xa2] = 0x04;
        put32(c, 0xa4, 0x00000003);
        put32(c, 0xa8, 0x00002003);
        put32(c, 0x100, 0x14010001);
        put32(c, 0x104, 0xaaaaaaaa); /* AER body */
        put32(c, 0x140, 0x1501000e);
        put32(c, 0x150, 0x19010010);
        put32(c, 0x154, 0x55555555); /* SR-IOV body */
        put32(c, 0x190, 0x00010003);
        put32(c, 0x194, 0x12345678); /* serial number */
}

struct fake_device {
        struct iov_vm *vm;
        struct iov_vfio_device *d;
        uint8_t phys[4096];
};

/* A device built with present_as (NULL: the device's own ids), INTx offered by vfio-pci
 * or not, and its MSI capability's message control. */
static void fake_device_build_msi(struct fake_device *f, const struct iov_vfio_present_as *as,
                                  bool intx, uint16_t msi_control)
{
        f->vm = fake_vm_new();
        fake_vm_add_device(f->vm, "pci-host");
        struct iov_vfio_device *d = calloc(1, sizeof(*d));
        cr_assert_not_null(d);
        d->vm = f->vm;
        snprintf(d->name, sizeof(d->name), "vfio-test");
        d->fd = memfd_create("fake-vfio", MFD_CLOEXEC);
        cr_assert_geq(d->fd, 0);
        cr_assert_eq(ftruncate(d->fd, (off_t)(IOV_VFIO_REGIONS * REGION_STRIDE)), 0);
        static const uint64_t sizes[IOV_VFIO_REGIONS] = {0x20000, 0x20000, 0x20, 0x4000,
                                                         0,       0,       0,    4096};
        for (unsigned i = 0; i < IOV_VFIO_REGIONS; i++)
                d->regions[i] =
                        (struct iov_vfio_region){.offset = i * REGION_STRIDE, .size = sizes[i]};
        d->config_size = 4096;
        if (as)
                d->present_as = *as;
        d->has_intx = intx;
        fake_config(f->phys, msi_control);
        cr_assert_eq(pwrite(d->fd, f->phys, 4096, CONFIG_BASE), 4096);
        int r = vfio_config_build(d, f->phys);
        cr_assert_eq(r, 0, "config build: %d", r);
        r = vfio_bars_declare(d, f->phys);
        cr_assert_eq(r, 0, "BARs: %d", r);
        r = vmm_pci_register_device(f->vm, &d->pci);
        cr_assert_eq(r, 0, "registration: %d", r);
        f->d = d;
}

static void fake_device_build(struct fake_device *f, const struct iov_vfio_present_as *as,
                              bool intx)
{
        fake_device_build_msi(f, as, intx, 0x0082);
}

static void fake_device_new_as(struct fake_device *f, const struct iov_vfio_present_as *as)
{
        fake_device_build(f, as, false);
}

static void fake_device_new(struct fake_device *f)
{
        fake_device_build(f, NULL, false);
}

static void fake_device_free(struct fake_device *f)
{
        vmm_pci_msix_done(&f->d->msix);
        close(f->d->fd);
        free(f->d);
        fake_vm_free(f->vm);
}

static uint32_t cfg_read(struct fake_device *f, uint32_t off, unsigned len)
{
        uint8_t b[4] = {0};
        vmm_pci_config_access(&f->d->pci, off, b, len, false);
        uint32_t v = 0;
        memcpy(&v, b, len);
        return v;
}

static void cfg_write(struct fake_device *f, uint32_t off, uint32_t v, unsigned len)
{
        uint8_t b[4];
        memcpy(b, &v, 4);
        vmm_pci_config_access(&f->d->pci, off, b, len, true);
}

static uint32_t dev_read(struct fake_device *f, uint64_t at, unsigned len)
{
        uint32_t v = 0;
        cr_assert_eq(pread(f->d->fd, &v, len, (off_t)at), (ssize_t)len);
        return v;
}

Test(vfio_config, forwards_the_device_and_emulates_the_header)
{
        struct fake_device f;
        fake_device_new(&f);
        cr_expect_eq(cfg_read(&f, 0, 4), 0x10d38086, "ids %08x", cfg_read(&f, 0, 4));
        cr_expect_eq(cfg_read(&f, 0x0e, 1), 0, "header type %02x: multifunction must be clear",
                     cfg_read(&f, 0x0e, 1));
        cr_expect_eq(cfg_read(&f, 0x3d, 1), 0, "interrupt pin %u: no INTx offered",
                     cfg_read(&f, 0x3d, 1));
        /* Live: a change on the device shows through. */
        uint32_t subsys = 0x11223344;
        cr_assert_eq(pwrite(f.d->fd, &subsys, 4, CONFIG_BASE + 0x2c), 4);
        cr_expect_eq(cfg_read(&f, 0x2c, 4), subsys, "subsystem %08x", cfg_read(&f, 0x2c, 4));
        /* The power-management control register is the device's. */
        cfg_write(&f, 0xcc, 0x0003, 2);
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0xcc, 2), 3, "PMCSR on the device %x",
                     dev_read(&f, CONFIG_BASE + 0xcc, 2));
        /* Command: the guest's decode and master bits reach the device, INTx stays off. */
        cfg_write(&f, 0x04, 0x0006, 2);
        cr_expect_eq(cfg_read(&f, 0x04, 2), 0x0006, "command %04x", cfg_read(&f, 0x04, 2));
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0x04, 2), 0x0406, "device command %04x",
                     dev_read(&f, CONFIG_BASE + 0x04, 2));
        fake_device_free(&f);
}

/* With INTx offered: the device's pin, the line of the slot's GSI (the map of vmm/irq.c
 * the guest's _PRT and MP table describe), and the guest's INTx-disable bit reaches the
 * device (vfio-pci masks the interrupt on it). */
Test(vfio_config, offers_intx_on_the_slot_gsi)
{
        struct fake_device f;
        fake_device_build(&f, NULL, true);
        unsigned slot = f.d->pci.slot, gsi = vmm_pci_intx_gsi(slot, 1);
        cr_expect_eq(cfg_read(&f, 0x3d, 1), 1, "interrupt pin %u", cfg_read(&f, 0x3d, 1));
        cr_expect(gsi >= 16 && gsi <= 19, "slot %u INTA on GSI %u", slot, gsi);
        cr_expect_eq(cfg_read(&f, 0x3c, 1), gsi, "interrupt line %u, slot %u's GSI is %u",
                     cfg_read(&f, 0x3c, 1), slot, gsi);
        cfg_write(&f, 0x04, 0x0006, 2);
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0x04, 2), 0x0006,
                     "device command %04x: INTx must stay enabled",
                     dev_read(&f, CONFIG_BASE + 0x04, 2));
        cfg_write(&f, 0x04, 0x0406, 2);
        cr_expect_eq(cfg_read(&f, 0x04, 2), 0x0406, "command %04x", cfg_read(&f, 0x04, 2));
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0x04, 2), 0x0406,
                     "device command %04x: the guest's INTx disable",
                     dev_read(&f, CONFIG_BASE + 0x04, 2));
        /* Without INTx from vfio-pci (a VF has none): pin and line 0. */
        fake_device_free(&f);
        fake_device_build(&f, NULL, false);
        cr_expect_eq(cfg_read(&f, 0x3c, 1), 0, "line %u without INTx", cfg_read(&f, 0x3c, 1));
        fake_device_free(&f);
}

Test(vfio_config, filters_both_capability_lists)
{
        struct fake_device f;
        fake_device_new(&f);
        uint8_t ids[8], n = 0;
        cr_expect(cfg_read(&f, 0x06, 1) & 0x10, "capability-list bit");
        for (uint32_t p = cfg_read(&f, 0x34, 1); p && n < 8; p = cfg_read(&f, p + 1, 1))
                ids[n++] = (uint8_t)cfg_read(&f, p, 1);
        cr_assert_eq(n, 4, "%u capabilities in the list", n);
        cr_expect(ids[0] == 0x01 && ids[1] == 0x05 && ids[2] == 0x10 && ids[3] == 0x11,
                  "list %02x %02x %02x %02x: PM, MSI, PCIe, MSI-X expected", ids[0], ids[1], ids[2],
                  ids[3]);
        cr_expect_eq(cfg_read(&f, 0xa2, 2), 4, "MSI-X table size field %u", cfg_read(&f, 0xa2, 2));
        uint32_t aer = cfg_read(&f, 0x100, 4);
        cr_expect_eq(aer & 0xfffff, 0x10001, "AER header %08x", aer);
        cr_expect_eq(aer >> 20, 0x190, "AER points to %03x, not past ARI and SR-IOV to DSN",
                     aer >> 20);
        cr_expect_eq(cfg_read(&f, 0x104, 4), 0xaaaaaaaa, "AER body %08x", cfg_read(&f, 0x104, 4));
        cr_expect_eq(cfg_read(&f, 0x150, 4), 0, "SR-IOV header visible: %08x",
                     cfg_read(&f, 0x150, 4));
        cr_expect_eq(cfg_read(&f, 0x154, 4), 0, "SR-IOV body visible: %08x",
                     cfg_read(&f, 0x154, 4));
        cr_expect_eq(cfg_read(&f, 0x190, 4), 0x00010003, "DSN header %08x", cfg_read(&f, 0x190, 4));
        cr_expect_eq(cfg_read(&f, 0x194, 4), 0x12345678, "serial %08x", cfg_read(&f, 0x194, 4));
        fake_device_free(&f);
}

Test(vfio_bars, placed_aligned_sized_and_virtual)
{
        struct fake_device f;
        fake_device_new(&f);
        uint32_t bar0 = cfg_read(&f, 0x10, 4), bar3 = cfg_read(&f, 0x1c, 4);
        cr_expect(bar0 >= IOV_MEM_PCI_MMIO_START && bar0 < IOV_MEM_PCI_MMIO_END, "BAR0 %08x", bar0);
        cr_expect_eq(bar0 % 0x20000, 0, "BAR0 %08x not aligned to its 128 KiB", bar0);
        cr_expect_eq(bar3 % 0x4000, 0, "BAR3 %08x not aligned to its 16 KiB", bar3);
        cr_expect_eq(cfg_read(&f, 0x18, 4) & 3, 1, "BAR2 is I/O: %08x", cfg_read(&f, 0x18, 4));
        cfg_write(&f, 0x10, 0xffffffff, 4);
        cr_expect_eq(cfg_read(&f, 0x10, 4), 0xfffe0000, "BAR0 sizing %08x", cfg_read(&f, 0x10, 4));
        cfg_write(&f, 0x18, 0xffffffff, 4);
        cr_expect_eq(cfg_read(&f, 0x18, 4), 0xffffffe1, "BAR2 sizing %08x", cfg_read(&f, 0x18, 4));
        cfg_write(&f, 0x30, 0xffffffff, 4);
        cr_expect_eq(cfg_read(&f, 0x30, 4), 0, "ROM sizing %08x: no ROM", cfg_read(&f, 0x30, 4));
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0x10, 4), 0xfebc0000, "device BAR0 changed: %08x",
                     dev_read(&f, CONFIG_BASE + 0x10, 4));
        fake_device_free(&f);
}

Test(vfio_bars, traps_forward_registers_and_keep_the_msix_table)
{
        struct fake_device f;
        fake_device_new(&f);
        uint32_t bar0 = cfg_read(&f, 0x10, 4), bar3 = cfg_read(&f, 0x1c, 4);
        cfg_write(&f, 0x04, 0x0002, 2); /* memory decode on */
        uint32_t v = 0x5a5a1234, got = 0;
        vmm_bus_access(&f.vm->mmio, bar0 + 0x5400, (uint8_t *)&v, 4, true);
        cr_expect_eq(dev_read(&f, 0 * REGION_STRIDE + 0x5400, 4), v, "BAR0 write not forwarded");
        vmm_bus_access(&f.vm->mmio, bar0 + 0x5400, (uint8_t *)&got, 4, false);
        cr_expect_eq(got, v, "BAR0 read %08x", got);
        /* Vector 0's control word: the emulated table says masked (PCI r3.0 §6.8.2.9). */
        uint32_t marker = 0xdeadbeef;
        cr_assert_eq(pwrite(f.d->fd, &marker, 4, 3 * REGION_STRIDE + 12), 4);
        vmm_bus_access(&f.vm->mmio, bar3 + 12, (uint8_t *)&got, 4, false);
        cr_expect_eq(got, 1, "MSI-X vector control %08x came from the device", got);
        fake_device_free(&f);
}

Test(vfio_bars, mmap_areas_leave_out_the_msix_pages)
{
        struct iov_vfio_area out[8];
        /* e1000e: table at 0 (5 vectors), PBA at 0x2000, in a 16 KiB BAR. */
        struct iov_vfio_area holes[2] = {{0, 5 * 16}, {0x2000, 8}};
        unsigned n = vfio_area_split((struct iov_vfio_area){0, 0x4000}, holes, 2, out, 8);
        cr_assert_eq(n, 2, "%u pieces", n);
        cr_expect(out[0].offset == 0x1000 && out[0].size == 0x1000, "piece 0 %llx+%llx",
                  (unsigned long long)out[0].offset, (unsigned long long)out[0].size);
        cr_expect(out[1].offset == 0x3000 && out[1].size == 0x1000, "piece 1 %llx+%llx",
                  (unsigned long long)out[1].offset, (unsigned long long)out[1].size);
        /* NVMe: doorbells first, table and PBA on the pages after them. */
        struct iov_vfio_area nvme[2] = {{0x2000, 65 * 16}, {0x3000, 16}};
        n = vfio_area_split((struct iov_vfio_area){0, 0x4000}, nvme, 2, out, 8);
        cr_assert_eq(n, 1, "%u pieces", n);
        cr_expect(out[0].offset == 0 && out[0].size == 0x2000, "piece %llx+%llx",
                  (unsigned long long)out[0].offset, (unsigned long long)out[0].size);
}

Test(vfio_config, emulates_msi_without_touching_the_device)
{
        struct fake_device f;
        fake_device_new(&f);
        cr_expect_eq(cfg_read(&f, 0xd2, 2), 0x0082, "MSI control %04x", cfg_read(&f, 0xd2, 2));
        cfg_write(&f, 0xd4, 0xfee01004, 4);
        cfg_write(&f, 0xd8, 0, 4);
        cfg_write(&f, 0xdc, 0x4041, 2);
        cfg_write(&f, 0xd2, 0x0011, 2); /* enable, two messages */
        cr_expect_eq(cfg_read(&f, 0xd2, 2), 0x0093, "MSI control %04x", cfg_read(&f, 0xd2, 2));
        cr_expect_eq(cfg_read(&f, 0xd4, 4), 0xfee01004, "address %08x", cfg_read(&f, 0xd4, 4));
        cr_expect_eq(cfg_read(&f, 0xdc, 2), 0x4041, "data %04x", cfg_read(&f, 0xdc, 2));
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0xd2, 2), 0x0082, "device MSI control %04x",
                     dev_read(&f, CONFIG_BASE + 0xd2, 2));
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0xd4, 4), 0, "device MSI address %08x",
                     dev_read(&f, CONFIG_BASE + 0xd4, 4));
        fake_device_free(&f);
}

/* present_as: the presented ids are what the guest reads, its writes change nothing, and
 * what is not presented (the vendor here) still comes from the device. */
Test(vfio_config, presents_the_ids_of_present_as)
{
        const struct iov_vfio_present_as as = {
                .fields = IOV_VFIO_PRESENT_DEVICE_ID | IOV_VFIO_PRESENT_SUBSYSTEM_VENDOR_ID |
                          IOV_VFIO_PRESENT_SUBSYSTEM_ID | IOV_VFIO_PRESENT_REVISION,
                .device_id = 0x10d4,
                .subsystem_vendor_id = 0x1af4,
                .subsystem_id = 0x1100,
                .revision = 0x07,
        };
        struct fake_device f;
        fake_device_new_as(&f, &as);
        cr_expect_eq(cfg_read(&f, 0, 4), 0x10d48086, "ids %08x", cfg_read(&f, 0, 4));
        cr_expect_eq(cfg_read(&f, 0x2c, 4), 0x11001af4, "subsystem %08x", cfg_read(&f, 0x2c, 4));
        cr_expect_eq(cfg_read(&f, 0x08, 4), 0x02000007, "class and revision %08x",
                     cfg_read(&f, 0x08, 4));
        cfg_write(&f, 0x2c, 0x22223333, 4);
        cfg_write(&f, 0x00, 0x44445555, 4);
        cr_expect_eq(cfg_read(&f, 0x2c, 4), 0x11001af4, "subsystem after a write %08x",
                     cfg_read(&f, 0x2c, 4));
        cr_expect_eq(cfg_read(&f, 0x02, 2), 0x10d4, "device id after a write %04x",
                     cfg_read(&f, 0x02, 2));
        uint16_t vendor = 0x15ad;
        cr_assert_eq(pwrite(f.d->fd, &vendor, 2, CONFIG_BASE), 2);
        cr_expect_eq(cfg_read(&f, 0x00, 2), 0x15ad, "the vendor id is not presented: %04x",
                     cfg_read(&f, 0x00, 2));
        fake_device_free(&f);
}

/* ---- MSI (PCI r3.0 §6.8.1) as the guest programs it ------------------------------------- */

/* One guest config write: offset, value, width. */
struct msi_write {
        uint32_t offset, value;
        unsigned len;
};

static void msi_expect(struct fake_device *f, unsigned vector, uint64_t address, uint32_t data,
                       bool masked)
{
        struct iov_msi_message msg = {0};
        bool is_masked = !masked;
        vfio_msi_vector(f->d, vector, &msg, &is_masked);
        cr_expect_eq(is_masked, masked, "vector %u masked %d, expected %d", vector, is_masked,
                     masked);
        if (masked)
                return;
        cr_expect_eq(msg.address, address, "vector %u address %llx, expected %llx", vector,
                     (unsigned long long)msg.address, (unsigned long long)address);
        cr_expect_eq(msg.data, data, "vector %u data %x, expected %x", vector, msg.data, data);
}

/* Linux writes address and data, then the enable bit; other guests enable first. Every
 * one of the 24 orders of the four writes must end in the same two vectors. */
Test(vfio_msi, every_order_of_the_writes_gives_the_same_messages)
{
        const struct msi_write writes[4] = {
                {0xd2, 0x0011, 2},     /* enable, two messages */
                {0xd4, 0xfee01004, 4}, /* address */
                {0xd8, 0x00000000, 4}, /* upper address */
                {0xdc, 0x4040, 2},     /* data: vector 0 in bit 0 */
        };
        unsigned orders = 0;
        for (unsigned a = 0; a < 4; a++)
                for (unsigned b = 0; b < 4; b++)
                        for (unsigned c = 0; c < 4; c++) {
                                unsigned d = 6 - a - b - c;
                                if (a == b || a == c || b == c || d > 3 || d == a || d == b ||
                                    d == c)
                                        continue;
                                const unsigned order[4] = {a, b, c, d};
                                struct fake_device f;
                                fake_device_new(&f);
                                cr_expect_eq(vfio_msi_enabled(f.d), 0, "enabled before writes");
                                for (unsigned i = 0; i < 4; i++) {
                                        const struct msi_write *w = &writes[order[i]];
                                        cfg_write(&f, w->offset, w->value, w->len);
                                }
                                cr_expect_eq(vfio_msi_enabled(f.d), 2, "order %u%u%u%u: %u vectors",
                                             a, b, c, d, vfio_msi_enabled(f.d));
                                msi_expect(&f, 0, 0xfee01004, 0x4040, false);
                                msi_expect(&f, 1, 0xfee01004, 0x4041, false);
                                msi_expect(&f, 2, 0, 0, true);
                                fake_device_free(&f);
                                orders++;
                        }
        cr_expect_eq(orders, 24, "%u orders tried", orders);
}

/* Byte by byte, as a guest may access config space, and the upper address used. */
Test(vfio_msi, byte_writes_and_a_64bit_address)
{
        struct fake_device f;
        fake_device_new(&f);
        const uint8_t address[8] = {0x00, 0x20, 0xe0, 0xfe, 0x01, 0x00, 0x00, 0x00};
        for (unsigned i = 0; i < 8; i++)
                cfg_write(&f, 0xd4 + i, address[i], 1);
        cfg_write(&f, 0xdc, 0x31, 1);
        cfg_write(&f, 0xdd, 0x00, 1);
        cfg_write(&f, 0xd2, 0x01, 1);
        cr_expect_eq(cfg_read(&f, 0xd4, 4), 0xfee02000, "address %08x", cfg_read(&f, 0xd4, 4));
        cr_expect_eq(cfg_read(&f, 0xd8, 4), 1, "upper address %08x", cfg_read(&f, 0xd8, 4));
        cr_expect_eq(vfio_msi_enabled(f.d), 1, "%u vectors", vfio_msi_enabled(f.d));
        msi_expect(&f, 0, 0x1fee02000ULL, 0x31, false);
        /* A low address outside 0xFEExxxxx is no interrupt on x86: never delivered. */
        cfg_write(&f, 0xd6, 0x00d0, 2);
        msi_expect(&f, 0, 0, 0, true);
        fake_device_free(&f);
}

/* 32-bit: the data follows the address at +8; the upper address does not exist, and the
 * bytes after the capability are the device's. */
Test(vfio_msi, a_32bit_capability)
{
        struct fake_device f;
        fake_device_build_msi(&f, NULL, false, 0x0000);
        cr_expect_eq(cfg_read(&f, 0xd2, 2), 0x0000, "control %04x", cfg_read(&f, 0xd2, 2));
        cfg_write(&f, 0xd4, 0xfee00003, 4); /* bits 1:0 are reserved */
        cfg_write(&f, 0xd8, 0x0025, 2);
        cfg_write(&f, 0xd2, 0x0001, 2);
        cr_expect_eq(cfg_read(&f, 0xd4, 4), 0xfee00000, "address %08x", cfg_read(&f, 0xd4, 4));
        cr_expect_eq(cfg_read(&f, 0xd8, 2), 0x0025, "data %04x", cfg_read(&f, 0xd8, 2));
        msi_expect(&f, 0, 0xfee00000, 0x25, false);
        cfg_write(&f, 0xdc, 0x1234, 2);
        cr_expect_eq(dev_read(&f, CONFIG_BASE + 0xdc, 2), 0x1234, "device byte after the cap %x",
                     dev_read(&f, CONFIG_BASE + 0xdc, 2));
        msi_expect(&f, 0, 0xfee00000, 0x25, false);
        fake_device_free(&f);
}

/* Per-vector masking, 64-bit, 8 messages: mask bits 4 bytes after the data, writable
 * only for implemented vectors, pending bits read only; a masked vector is not
 * delivered, unmasking delivers it again. */
Test(vfio_msi, per_vector_masking_64bit)
{
        struct fake_device f;
        fake_device_build_msi(&f, NULL, false, 0x0186);
        cfg_write(&f, 0xd4, 0xfee00000, 4);
        cfg_write(&f, 0xdc, 0x0040, 2);
        cfg_write(&f, 0xe0, 0xffffff02, 4);
        cfg_write(&f, 0xe4, 0xffffffff, 4);
        cfg_write(&f, 0xd2, 0x0031, 2); /* enable, eight messages */
        cr_expect_eq(cfg_read(&f, 0xd2, 2), 0x01b7, "control %04x", cfg_read(&f, 0xd2, 2));
        cr_expect_eq(cfg_read(&f, 0xe0, 4), 0x02, "mask bits %08x", cfg_read(&f, 0xe0, 4));
        cr_expect_eq(cfg_read(&f, 0xe4, 4), 0, "pending bits %08x", cfg_read(&f, 0xe4, 4));
        cr_expect_eq(vfio_msi_enabled(f.d), 8, "%u vectors", vfio_msi_enabled(f.d));
        msi_expect(&f, 0, 0xfee00000, 0x40, false);
        msi_expect(&f, 1, 0, 0, true);
        msi_expect(&f, 7, 0xfee00000, 0x47, false);
        msi_expect(&f, 8, 0, 0, true);
        cfg_write(&f, 0xe0, 0x80, 1);
        msi_expect(&f, 1, 0xfee00000, 0x41, false);
        msi_expect(&f, 7, 0, 0, true);
        cr_expect_eq(cfg_read(&f, 0xf0, 1), 0x10, "PCIe capability after it: %02x",
                     cfg_read(&f, 0xf0, 1));
        fake_device_free(&f);
}

/* Per-vector masking, 32-bit: data at +8, mask bits at +0xc. */
Test(vfio_msi, per_vector_masking_32bit)
{
        struct fake_device f;
        fake_device_build_msi(&f, NULL, false, 0x0102);
        cfg_write(&f, 0xdc, 0x1, 4);
        cfg_write(&f, 0xd4, 0xfee00000, 4);
        cfg_write(&f, 0xd8, 0x0050, 2);
        cfg_write(&f, 0xd2, 0x0011, 2);
        cr_expect_eq(cfg_read(&f, 0xdc, 4), 1, "mask bits %08x", cfg_read(&f, 0xdc, 4));
        msi_expect(&f, 0, 0, 0, true);
        msi_expect(&f, 1, 0xfee00000, 0x51, false);
        cfg_write(&f, 0xdc, 0x0, 4);
        msi_expect(&f, 0, 0xfee00000, 0x50, false);
        fake_device_free(&f);
}

/* While enabled, Linux rewrites the message to move the interrupt and writes an all-zero
 * one while it takes the vector away; that one is never delivered. Turning MSI off
 * leaves no vector. */
Test(vfio_msi, rewrites_while_enabled_and_disable)
{
        struct fake_device f;
        fake_device_new(&f);
        cfg_write(&f, 0xd4, 0xfee00000, 4);
        cfg_write(&f, 0xdc, 0x0025, 2);
        cfg_write(&f, 0xd2, 0x0001, 2);
        msi_expect(&f, 0, 0xfee00000, 0x25, false);
        cfg_write(&f, 0xd4, 0, 4);
        cfg_write(&f, 0xdc, 0, 2);
        msi_expect(&f, 0, 0, 0, true);
        cfg_write(&f, 0xd4, 0xfee01000, 4);
        cfg_write(&f, 0xdc, 0x0026, 2);
        msi_expect(&f, 0, 0xfee01000, 0x26, false);
        cfg_write(&f, 0xd2, 0x0000, 2);
        cr_expect_eq(vfio_msi_enabled(f.d), 0, "%u vectors after disable", vfio_msi_enabled(f.d));
        msi_expect(&f, 0, 0, 0, true);
        fake_device_free(&f);
}

/* More messages enabled than the device can do (undefined, §6.8.1.3): what it can. */
Test(vfio_msi, more_messages_than_capable)
{
        struct fake_device f;
        fake_device_new(&f);
        cfg_write(&f, 0xd4, 0xfee00000, 4);
        cfg_write(&f, 0xdc, 0x0040, 2);
        cfg_write(&f, 0xd2, 0x0051, 2);
        cr_expect_eq(vfio_msi_enabled(f.d), 2, "%u vectors", vfio_msi_enabled(f.d));
        msi_expect(&f, 1, 0xfee00000, 0x41, false);
        msi_expect(&f, 2, 0, 0, true);
        fake_device_free(&f);
}
