/* SPDX-License-Identifier: MIT */
/* iommu status and groups against generated trees. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "iommu/iommu.h"
#include "tests/unit/pci/lab-fixture.h"
#include "util/util.h"

static struct iov_iommu_status status(void)
{
        struct iov_iommu_status st;
        int r = iommu_status_read(fixture_sysfs_root(fx), &st);
        cr_assert_eq(r, 0, "iommu_status_read: %s", strerror(-r));
        return st;
}

static void write_sys(const char *rel, const char *value)
{
        char *path = util_strdup_printf("%s/%s", fixture_sysfs_root(fx), rel);
        char *dir = strdup(path);
        *strrchr(dir, '/') = '\0';
        cr_assert_eq(util_mkdir_p(dir, 0755), 0, "mkdir %s", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "create %s", path);
        fputs(value, f);
        fclose(f);
        free(dir);
        free(path);
}

TestSuite(iommu_status, .init = lab_setup, .fini = lab_teardown);
TestSuite(iommu_groups, .init = lab_setup, .fini = lab_teardown);

Test(iommu_status, lab_has_everything)
{
        struct iov_iommu_status st = status();
        cr_expect(st.enabled, "IOMMU not enabled");
        cr_expect_eq(st.interrupt_remapping, IOV_YES, "IR %d", st.interrupt_remapping);
        cr_expect(st.vfio_pci_loaded, "vfio-pci not seen");
        cr_expect(!st.allow_unsafe_interrupts, "unsafe interrupts allowed");
        cr_expect_eq(st.n_groups, 6u, "groups %u", st.n_groups);
}

Test(iommu_status, the_probe_answers_the_same_and_stops_at_the_first_group)
{
        struct iov_iommu_status full = status(), probe;
        cr_assert_eq(iommu_status_probe(fixture_sysfs_root(fx), &probe), 0);
        cr_expect_eq(probe.enabled, full.enabled);
        cr_expect_eq(probe.interrupt_remapping, full.interrupt_remapping);
        cr_expect_eq(probe.vfio_pci_loaded, full.vfio_pci_loaded);
        cr_expect_eq(probe.allow_unsafe_interrupts, full.allow_unsafe_interrupts);
        cr_expect_eq(probe.n_groups, 1u, "groups %u", probe.n_groups);
}

Test(iommu_status, intel_without_ecap_ir)
{
        cr_assert_eq(fixture_set_iommu(fx, true, false), 0);
        cr_expect_eq(status().interrupt_remapping, IOV_NO);
}

Test(iommu_status, one_unit_without_ir_is_a_hole)
{
        write_sys("class/iommu/dmar1/intel-iommu/ecap", "f00f52\n");
        cr_expect_eq(status().interrupt_remapping, IOV_NO, "IR %d", status().interrupt_remapping);
}

Test(iommu_status, unreadable_registers_are_unknown)
{
        write_sys("class/iommu/dmar0/intel-iommu/ecap", "not hex\n");
        cr_expect_eq(status().interrupt_remapping, IOV_UNKNOWN);
        cr_assert_eq(fixture_set_iommu_amd(fx, false), 0);
        cr_expect_eq(status().interrupt_remapping, IOV_UNKNOWN, "AMD without features");
        cr_assert_eq(fixture_set_iommu_amd(fx, true), 0);
        cr_expect_eq(status().interrupt_remapping, IOV_YES, "AMD with features");
}

Test(iommu_status, no_iommu_and_unsafe_switch)
{
        struct fixture *plain = NULL;
        cr_assert_eq(fixture_new(&plain), 0);
        const struct fixture_device nic = {.address = "0000:00:02.0",
                                           .vendor_id = 0x8086,
                                           .device_id = 0x10d3,
                                           .class_code = 0x020000,
                                           .driver = "e1000e",
                                           .iommu_group = -1,
                                           .numa_node = -1};
        cr_assert_eq(fixture_add_device(plain, &nic), 0);
        struct iov_iommu_status st;
        cr_assert_eq(iommu_status_read(fixture_sysfs_root(plain), &st), 0);
        cr_expect(!st.enabled, "enabled without units");
        cr_expect_eq(st.interrupt_remapping, IOV_NO, "IR %d", st.interrupt_remapping);
        cr_expect_eq(st.n_groups, 0u, "groups %u", st.n_groups);
        cr_expect(!st.vfio_pci_loaded, "vfio-pci seen");

        cr_assert_eq(fixture_add_driver(plain, "vfio-pci"), 0);
        cr_assert_eq(fixture_set_allow_unsafe_interrupts(plain, true), 0);
        cr_assert_eq(iommu_status_read(fixture_sysfs_root(plain), &st), 0);
        cr_expect(st.vfio_pci_loaded && st.allow_unsafe_interrupts, "loaded %d unsafe %d",
                  st.vfio_pci_loaded, st.allow_unsafe_interrupts);
        fixture_free(plain);
}

Test(iommu_groups, scan_lists_groups_and_sorted_members)
{
        struct iov_iommu_group *groups = NULL;
        size_t n = 0;
        cr_assert_eq(iommu_groups_scan(fixture_sysfs_root(fx), &groups, &n), 0);
        cr_assert_eq(n, 6u, "groups %zu", n);
        for (size_t i = 0; i < n; i++)
                cr_expect_eq(groups[i].id, i, "group %zu has id %u", i, groups[i].id);
        cr_assert_eq(groups[4].n_devices, 3u, "group 4 members %zu", groups[4].n_devices);
        char buf[IOV_PCI_ADDRESS_MAX];
        cr_expect_str_eq(pci_address_format(&groups[4].devices[0], buf), "0000:00:1f.0");
        cr_expect_str_eq(pci_address_format(&groups[4].devices[2], buf), "0000:00:1f.3");
        iommu_groups_free(groups, n);
        iommu_groups_free(NULL, 0);
}

Test(iommu_groups, read_ignores_stray_names_and_reports_missing_groups)
{
        write_sys("kernel/iommu_groups/2/devices/not-an-address", "");
        write_sys("kernel/iommu_groups/2/devices/0000:00:1f.9", "");
        struct iov_iommu_group g = {.id = 99};
        cr_assert_eq(iommu_group_read(fixture_sysfs_root(fx), 2, &g), 0);
        cr_expect_eq(g.n_devices, 1u, "members %zu", g.n_devices);
        iommu_group_clear(&g);
        iommu_group_clear(NULL);
        g.id = 99;
        cr_expect_eq(iommu_group_read(fixture_sysfs_root(fx), 42, &g), -ENOENT);
        cr_expect_eq(g.id, 99u, "output written on failure");
}

Test(iommu_groups, viability_names_the_blockers)
{
        struct iov_group_blocker *b = NULL;
        size_t n = 0;
        cr_expect_eq(iommu_group_check_viable(fixture_sysfs_root(fx), 4, &b, &n), 0);
        cr_assert_eq(n, 3u, "blockers %zu", n);
        cr_expect_str_eq(b[0].driver, "lpc_ich");
        cr_expect_str_eq(b[1].driver, "ahci");
        cr_expect_str_eq(b[2].driver, "i801_smbus");
        iommu_group_blockers_free(b, n);

        /* A root port on pcieport does not block; driverless and vfio-pci members pass. */
        cr_expect_eq(iommu_group_check_viable(fixture_sysfs_root(fx), 3, &b, &n), 1);
        cr_expect_null(b);
        cr_expect_eq(n, 0u);
        cr_expect_eq(iommu_group_check_viable(fixture_sysfs_root(fx), 0, NULL, NULL), 1,
                     "driverless host bridge");
        cr_assert_eq(fixture_set_driver(fx, "0000:00:02.0", "vfio-pci"), 0);
        cr_expect_eq(iommu_group_check_viable(fixture_sysfs_root(fx), 2, NULL, NULL), 1);
        cr_expect_eq(iommu_group_check_viable(fixture_sysfs_root(fx), 5, NULL, NULL), 0,
                     "nvme-bound PF");
        cr_expect_eq(iommu_group_check_viable(fixture_sysfs_root(fx), 77, NULL, NULL), -ENOENT);
}

Test(iommu_groups, member_rule)
{
        cr_expect_not(iommu_member_blocks(0x020000, NULL), "driverless NIC blocks");
        cr_expect_not(iommu_member_blocks(0x020000, "vfio-pci"), "NIC on vfio-pci blocks");
        cr_expect(iommu_member_blocks(0x020000, "e1000e"), "NIC on e1000e passes");
        cr_expect_not(iommu_member_blocks(0x060400, "pcieport"), "root port on pcieport blocks");
        cr_expect_not(iommu_member_blocks(0x060401, "pcieport"),
                      "subtractive-decode bridge on pcieport blocks");
        cr_expect(iommu_member_blocks(0x060400, "shpchp"), "bridge on shpchp passes");
        cr_expect(iommu_member_blocks(0x060000, "pcieport"), "host bridge on pcieport passes");
}

/* The snapshot rule and the sysfs rule agree on every group of the lab tree. */
Test(iommu_groups, snapshot_rule_agrees_with_sysfs)
{
        cr_assert_eq(fixture_set_driver(fx, "0000:00:02.0", "vfio-pci"), 0);
        struct iov_pci_inventory *inv = NULL;
        int r = pci_inventory_scan(fixture_sysfs_root(fx), &inv);
        cr_assert_eq(r, 0, "pci_inventory_scan: %s", strerror(-r));
        struct iov_iommu_group *groups = NULL;
        size_t n = 0;
        r = iommu_groups_scan(fixture_sysfs_root(fx), &groups, &n);
        cr_assert_eq(r, 0, "iommu_groups_scan: %s", strerror(-r));
        cr_assert_geq(n, 6u, "groups %zu", n);
        for (size_t i = 0; i < n; i++) {
                int viable =
                        iommu_group_check_viable(fixture_sysfs_root(fx), groups[i].id, NULL, NULL);
                cr_expect_eq(iommu_group_viable_in(&groups[i], inv), viable == 1,
                             "group %u: snapshot and sysfs (%d) disagree", groups[i].id, viable);
        }
        iommu_groups_free(groups, n);
        pci_inventory_free(inv);
}

Test(iommu_groups, vfio_group_path)
{
        char *p = iommu_vfio_group_path("/dev", 7);
        cr_expect_str_eq(p, "/dev/vfio/7");
        free(p);
}

Test(iommu_groups, from_inventory_matches_the_scan)
{
        cr_assert_eq(fixture_set_num_vfs(fx, "0000:01:00.0", 3), 0);
        struct iov_pci_inventory *inv = NULL;
        cr_assert_eq(pci_inventory_scan(fixture_sysfs_root(fx), &inv), 0);
        struct iov_iommu_group *scanned = NULL, *derived = NULL;
        size_t n_scanned = 0, n_derived = 0;
        cr_assert_eq(iommu_groups_scan(fixture_sysfs_root(fx), &scanned, &n_scanned), 0);
        cr_assert_eq(iommu_groups_from_inventory(inv, &derived, &n_derived), 0);
        cr_assert_eq(n_derived, n_scanned, "derived %zu groups, scanned %zu", n_derived, n_scanned);
        cr_expect_eq(n_derived, 9u, "groups %zu", n_derived);
        for (size_t i = 0; i < n_derived; i++) {
                cr_expect_eq(derived[i].id, scanned[i].id, "group %zu: id %u vs %u", i,
                             derived[i].id, scanned[i].id);
                cr_assert_eq(derived[i].n_devices, scanned[i].n_devices, "group %u size",
                             derived[i].id);
                for (size_t j = 0; j < derived[i].n_devices; j++)
                        cr_expect(pci_address_equal(&derived[i].devices[j], &scanned[i].devices[j]),
                                  "group %u member %zu differs", derived[i].id, j);
        }
        iommu_groups_free(scanned, n_scanned);
        iommu_groups_free(derived, n_derived);
        pci_inventory_free(inv);
        cr_expect_eq(iommu_groups_from_inventory(NULL, &derived, &n_derived), -EINVAL);
}
