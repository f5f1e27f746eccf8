/* SPDX-License-Identifier: MIT */
/* pci inventory against generated sysfs trees (tests/fixtures). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "pci/pci.h"
#include "tests/unit/pci/lab-fixture.h"
#include "util/util.h"

static const struct iov_pci_device *find(const struct iov_pci_inventory *inv, const char *s)
{
        struct iov_pci_address a;
        cr_assert_eq(pci_address_parse(s, &a), 0, "bad test address %s", s);
        return pci_inventory_find(inv, &a);
}

static struct iov_pci_inventory *scan(void)
{
        struct iov_pci_inventory *inv = NULL;
        int r = pci_inventory_scan(fixture_sysfs_root(fx), &inv);
        cr_assert_eq(r, 0, "pci_inventory_scan: %s", strerror(-r));
        return inv;
}

TestSuite(pci_inventory, .init = lab_setup, .fini = lab_teardown);
TestSuite(pci_device, .init = lab_setup, .fini = lab_teardown);

Test(pci_inventory, lists_every_function_sorted_with_ids_and_names)
{
        struct iov_pci_inventory *inv = scan();
        cr_assert_eq(inv->n_devices, 8, "n_devices %zu", inv->n_devices);
        for (size_t i = 1; i < inv->n_devices; i++)
                cr_expect_lt(
                        pci_address_compare(&inv->devices[i - 1].address, &inv->devices[i].address),
                        0, "%s before %s", inv->devices[i - 1].name, inv->devices[i].name);

        const struct iov_pci_device *nic = find(inv, "0000:00:02.0");
        cr_assert_not_null(nic, "e1000e missing");
        cr_expect_str_eq(nic->name, "0000:00:02.0");
        cr_expect_eq(nic->vendor_id, 0x8086, "vendor %04x", nic->vendor_id);
        cr_expect_eq(nic->device_id, 0x10d3, "device %04x", nic->device_id);
        cr_expect_eq(nic->subsystem_vendor_id, 0x8086, "subsystem vendor %04x",
                     nic->subsystem_vendor_id);
        cr_expect_eq(nic->class_code, 0x020000u, "class %06x", nic->class_code);
        cr_expect_str_eq(nic->vendor_name, "Intel Corporation", "vendor name %s", nic->vendor_name);
        cr_expect(nic->device_name && strstr(nic->device_name, "82574L"), "device name %s",
                  nic->device_name ? nic->device_name : "(null)");
        cr_expect_str_eq(nic->driver, "e1000e", "driver %s", nic->driver);
        cr_expect_null(nic->driver_override, "override %s", nic->driver_override);
        cr_expect_eq(nic->iommu_group, 2, "group %d", nic->iommu_group);
        cr_expect_eq(nic->numa_node, -1, "numa %d", nic->numa_node);
        cr_expect(!nic->is_pf && !nic->is_vf, "pf %d vf %d", nic->is_pf, nic->is_vf);
        cr_expect_gt(inv->scanned_usec, 0);

        const struct iov_pci_device *host = find(inv, "0000:00:00.0");
        cr_assert_not_null(host);
        cr_expect_null(host->driver, "host bridge driver %s", host->driver);
        cr_expect_eq(host->iommu_group, 0, "host bridge group %d", host->iommu_group);
        pci_inventory_free(inv);
}

Test(pci_inventory, reads_a_pf_and_its_vfs)
{
        struct iov_pci_inventory *inv = scan();
        const struct iov_pci_device *pf = find(inv, "0000:01:00.0");
        cr_assert_not_null(pf);
        cr_expect(pf->is_pf, "NVMe not seen as PF");
        cr_expect_eq(pf->total_vfs, 4u, "total %u", pf->total_vfs);
        cr_expect_eq(pf->num_vfs, 0u, "num %u", pf->num_vfs);
        cr_expect_eq(pf->n_vfs, 0u, "n_vfs %zu", pf->n_vfs);
        cr_expect_eq(pf->vf_device_id, 0x0010, "vf device %04x", pf->vf_device_id);
        cr_expect_eq(pf->vf_offset, 1u, "offset %u", pf->vf_offset);
        cr_expect_eq(pf->vf_stride, 1u, "stride %u", pf->vf_stride);
        cr_expect(pf->drivers_autoprobe, "autoprobe off");
        pci_inventory_free(inv);

        cr_assert_eq(fixture_set_num_vfs(fx, "0000:01:00.0", 3), 0);
        inv = scan();
        cr_expect_eq(inv->n_devices, 11, "n_devices %zu", inv->n_devices);
        pf = find(inv, "0000:01:00.0");
        cr_assert_eq(pf->n_vfs, 3u, "n_vfs %zu", pf->n_vfs);
        cr_expect_eq(pf->num_vfs, 3u, "num %u", pf->num_vfs);
        char buf[IOV_PCI_ADDRESS_MAX];
        cr_expect_str_eq(pci_address_format(&pf->vfs[2], buf), "0000:01:00.3");
        const struct iov_pci_device *vf = find(inv, "0000:01:00.1");
        cr_assert_not_null(vf);
        cr_expect(vf->is_vf && !vf->is_pf, "vf %d pf %d", vf->is_vf, vf->is_pf);
        cr_expect_str_eq(pci_address_format(&vf->physfn, buf), "0000:01:00.0");
        cr_expect_eq(vf->device_id, 0x0010, "vf device %04x", vf->device_id);
        cr_expect_eq(vf->iommu_group, 6, "vf group %d", vf->iommu_group);
        cr_expect_str_eq(vf->driver, "nvme", "autoprobed driver %s", vf->driver);
        pci_inventory_free(inv);
}

Test(pci_inventory, find_returns_null_for_absent_addresses)
{
        struct iov_pci_inventory *inv = scan();
        cr_expect_null(find(inv, "0000:05:00.0"));
        cr_expect_null(pci_inventory_find(inv, NULL));
        cr_expect_null(pci_inventory_find(NULL, &inv->devices[0].address));
        pci_inventory_free(inv);
        pci_inventory_free(NULL);
}

Test(pci_inventory, unknown_ids_have_no_names_and_big_domains_work)
{
        const struct fixture_device odd = {
                .address = "10000:00:02.0",
                .vendor_id = 0xbeef, /* not in pci.ids */
                .device_id = 0x1234,
                .class_code = 0xff0000,
                .iommu_group = -1,
                .numa_node = 1,
        };
        cr_assert_eq(fixture_add_device(fx, &odd), 0);
        struct iov_pci_inventory *inv = scan();
        const struct iov_pci_device *d = find(inv, "10000:00:02.0");
        cr_assert_not_null(d, "VMD-domain device missing");
        cr_expect_null(d->vendor_name, "vendor name %s", d->vendor_name);
        cr_expect_null(d->device_name, "device name %s", d->device_name);
        cr_expect_eq(d->iommu_group, -1, "group %d", d->iommu_group);
        cr_expect_eq(d->numa_node, 1, "numa %d", d->numa_node);
        cr_expect_eq(inv->devices[inv->n_devices - 1].address.domain, 0x10000u, "sorted last: %s",
                     inv->devices[inv->n_devices - 1].name);
        pci_inventory_free(inv);
}

Test(pci_inventory, missing_or_empty_trees)
{
        struct iov_pci_inventory *inv = (void *)0x1;
        cr_expect_eq(pci_inventory_scan("/nonexistent-iovd-tree", &inv), -ENOENT);
        cr_expect_eq(inv, (void *)0x1, "output written on failure");

        struct fixture *empty = NULL;
        cr_assert_eq(fixture_new(&empty), 0);
        inv = NULL;
        cr_assert_eq(pci_inventory_scan(fixture_sysfs_root(empty), &inv), 0);
        cr_expect_eq(inv->n_devices, 0, "n_devices %zu", inv->n_devices);
        pci_inventory_free(inv);
        fixture_free(empty);
}

Test(pci_inventory, corrupt_attribute_is_a_clear_error)
{
        char *path = util_strdup_printf("%s/bus/pci/devices/0000:00:02.0/numa_node",
                                        fixture_sysfs_root(fx));
        cr_assert_eq(util_write_attr(path, "seven\n"), 0);
        struct iov_pci_inventory *inv = NULL;
        cr_expect_eq(pci_inventory_scan(fixture_sysfs_root(fx), &inv), -EINVAL);
        cr_expect_null(inv);
        free(path);
}

Test(pci_device, read_sees_changes_and_vanished_devices)
{
        struct iov_pci_address a;
        struct iov_pci_device d;
        cr_assert_eq(pci_address_parse("0000:00:02.0", &a), 0);
        char *path = pci_device_sysfs_path(fixture_sysfs_root(fx), &a, "driver_override");
        cr_assert_eq(util_write_attr(path, "vfio-pci\n"), 0);
        cr_assert_eq(fixture_set_driver(fx, "0000:00:02.0", NULL), 0);

        cr_assert_eq(pci_device_read(fixture_sysfs_root(fx), &a, &d), 0);
        cr_expect_null(d.driver, "driver %s", d.driver);
        cr_expect_str_eq(d.driver_override, "vfio-pci", "override %s", d.driver_override);
        cr_expect_eq(d.device_id, 0x10d3, "device %04x", d.device_id);
        cr_expect_str_eq(d.vendor_name, "Intel Corporation");
        pci_device_clear(&d);
        cr_expect_null(d.vendor_name);
        pci_device_clear(NULL);

        cr_assert_eq(fixture_remove_device(fx, "0000:00:02.0"), 0);
        struct iov_pci_device untouched = {.vendor_id = 42};
        cr_expect_eq(pci_device_read(fixture_sysfs_root(fx), &a, &untouched), -ENOENT);
        cr_expect_eq(untouched.vendor_id, 42, "output written on failure");
        free(path);
}

Test(pci_device, sysfs_path_is_built_from_the_typed_address)
{
        struct iov_pci_address a = {.domain = 0, .bus = 0x3a, .slot = 0x1f, .function = 7};
        char *p = pci_device_sysfs_path("/sys", &a, "reset");
        cr_expect_str_eq(p, "/sys/bus/pci/devices/0000:3a:1f.7/reset");
        free(p);
        p = pci_device_sysfs_path("/x/", &a, NULL);
        cr_expect_str_eq(p, "/x/bus/pci/devices/0000:3a:1f.7");
        free(p);
}

Test(pci_device, reset_writes_one_or_says_why_not)
{
        struct iov_pci_address nic, host, gone;
        cr_assert_eq(pci_address_parse("0000:00:02.0", &nic), 0);
        cr_assert_eq(pci_address_parse("0000:00:00.0", &host), 0);
        cr_assert_eq(pci_address_parse("0000:09:00.0", &gone), 0);
        cr_expect_eq(pci_device_reset(fixture_sysfs_root(fx), &nic), 0);
        char *path = pci_device_sysfs_path(fixture_sysfs_root(fx), &nic, "reset");
        char *value = NULL;
        cr_assert_eq(util_read_file(path, 64, &value, NULL), 0);
        cr_expect_str_eq(value, "1", "reset file holds \"%s\"", value);
        cr_expect_eq(pci_device_reset(fixture_sysfs_root(fx), &host), -ENOTTY,
                     "host bridge has no reset method");
        cr_expect_eq(pci_device_reset(fixture_sysfs_root(fx), &gone), -ENODEV);
        free(path);
        free(value);
}

Test(pci_inventory, falls_back_to_attributes_without_uevent)
{
        char *path = util_strdup_printf("%s/bus/pci/devices/0000:00:02.0/uevent",
                                        fixture_sysfs_root(fx));
        cr_assert_eq(unlink(path), 0, "no uevent to remove at %s", path);
        struct iov_pci_inventory *inv = scan();
        const struct iov_pci_device *nic = find(inv, "0000:00:02.0");
        cr_assert_not_null(nic);
        cr_expect_eq(nic->vendor_id, 0x8086, "vendor %04x", nic->vendor_id);
        cr_expect_eq(nic->device_id, 0x10d3, "device %04x", nic->device_id);
        cr_expect_eq(nic->class_code, 0x020000u, "class %06x", nic->class_code);
        cr_expect_str_eq(nic->driver, "e1000e", "driver %s", nic->driver);
        pci_inventory_free(inv);
        free(path);
}

Test(pci_inventory, uevent_follows_binding)
{
        cr_assert_eq(fixture_set_driver(fx, "0000:00:02.0", "vfio-pci"), 0);
        struct iov_pci_inventory *inv = scan();
        cr_expect_str_eq(find(inv, "0000:00:02.0")->driver, "vfio-pci");
        pci_inventory_free(inv);
        cr_assert_eq(fixture_set_driver(fx, "0000:00:02.0", NULL), 0);
        inv = scan();
        cr_expect_null(find(inv, "0000:00:02.0")->driver);
        pci_inventory_free(inv);
}

Test(pci_inventory, large_generated_host_is_complete)
{
        struct fixture *big = NULL;
        cr_assert_eq(fixture_new(&big), 0);
        cr_assert_eq(fixture_add_generated(big, 2, 150, true), 0);
        struct iov_pci_inventory *inv = NULL;
        cr_assert_eq(pci_inventory_scan(fixture_sysfs_root(big), &inv), 0);
        cr_assert_eq(inv->n_devices, 303u, "n_devices %zu", inv->n_devices);
        size_t pfs = 0, vfs = 0, named = 0;
        for (size_t i = 0; i < inv->n_devices; i++) {
                const struct iov_pci_device *d = &inv->devices[i];
                pfs += d->is_pf;
                vfs += d->is_vf;
                named += d->device_name != NULL;
                if (d->is_vf)
                        cr_expect_eq(d->physfn.bus, d->address.bus, "%s physfn bus %02x", d->name,
                                     d->physfn.bus);
        }
        cr_expect_eq(pfs, 2u, "PFs %zu", pfs);
        cr_expect_eq(vfs, 300u, "VFs %zu", vfs);
        cr_expect_eq(named, 303u, "named %zu (all three ids are in pci.ids)", named);
        struct iov_pci_address a = {.bus = 2, .slot = 0x12, .function = 0};
        const struct iov_pci_device *vf = pci_inventory_find(inv, &a);
        cr_assert_not_null(vf, "0000:02:12.0 missing");
        cr_expect_eq(vf->device_id, 0x154c, "VF device %04x", vf->device_id);
        cr_expect_str_eq(vf->driver, "iavf", "VF driver %s (autoprobe is on)", vf->driver);
        pci_inventory_free(inv);
        fixture_free(big);
}

Test(pci_inventory, a_stray_entry_is_an_error_not_an_exit)
{
        char *path = util_strdup_printf("%s/bus/pci/devices/not-a-device", fixture_sysfs_root(fx));
        cr_assert_eq(util_mkdir_p(path, 0755), 0);
        struct iov_pci_inventory *inv = NULL;
        int r = pci_inventory_scan(fixture_sysfs_root(fx), &inv);
        cr_expect_eq(r, -EIO, "libpci's complaint became %d", r);
        cr_expect_null(inv);
        free(path);
}

/* The tree is meant for libpci's own tools too: lspci must read it as real sysfs. */
Test(pci_inventory, lspci_reads_the_generated_tree)
{
        if (system("command -v lspci >/dev/null 2>&1") != 0)
                cr_skip_test("lspci (pciutils) is not installed");
        char *cmd = util_strdup_printf("lspci -D -vmm -A linux-sysfs -O sysfs.path=%s/bus/pci "
                                       "-s 01:00.0 2>&1",
                                       fixture_sysfs_root(fx));
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        char out[4096] = "";
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        cr_expect_eq(pclose(p), 0, "lspci failed: %s", out);
        cr_expect(strstr(out, "Slot:\t0000:01:00.0") != NULL, "no slot line in: %s", out);
        cr_expect(strstr(out, "Non-Volatile memory controller") != NULL, "class missing: %s", out);
        cr_expect(strstr(out, "QEMU NVM Express Controller") != NULL, "device name missing: %s",
                  out);
        cr_expect(strstr(out, "IOMMUGroup:\t5") != NULL, "group missing: %s", out);
        free(cmd);
}

Test(pci_inventory, older_kernels_without_some_sriov_attributes)
{
        char *dir = util_strdup_printf("%s/bus/pci/devices/0000:01:00.0", fixture_sysfs_root(fx));
        char *vf_device = util_strdup_printf("%s/sriov_vf_device", dir);
        char *autoprobe = util_strdup_printf("%s/sriov_drivers_autoprobe", dir);
        cr_assert_eq(unlink(vf_device), 0);
        cr_assert_eq(unlink(autoprobe), 0);
        struct iov_pci_inventory *inv = scan();
        const struct iov_pci_device *pf = find(inv, "0000:01:00.0");
        cr_assert_not_null(pf);
        cr_expect(pf->is_pf, "PF lost with its newer attributes");
        cr_expect_eq(pf->total_vfs, 4u, "total %u", pf->total_vfs);
        cr_expect_eq(pf->vf_device_id, 0, "vf device %04x", pf->vf_device_id);
        cr_expect(pf->drivers_autoprobe, "autoprobe defaults to on, as in the kernel");
        pci_inventory_free(inv);
        free(dir);
        free(vf_device);
        free(autoprobe);
}
