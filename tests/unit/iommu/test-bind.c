/* SPDX-License-Identifier: MIT */
/* Moving IOMMU groups to vfio-pci and back, against the fake kernel, with failures. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "iommu/iommu.h"
#include "tests/unit/pci/lab-fixture.h"
#include "util/util.h"

#define TIMEOUT_MS 3000

/* The driver link's target name, or "" when unbound, "<gone>" when the device is. */
static char *driver_of(const char *address)
{
        char *dir = util_strdup_printf("%s/bus/pci/devices/%s", fixture_sysfs_root(fx), address);
        char *link = util_strdup_printf("%s/driver", dir);
        char *driver = NULL;
        if (access(dir, F_OK) < 0)
                driver = strdup("<gone>");
        else if (util_readlink_basename(link, &driver) < 0)
                driver = strdup("");
        free(dir);
        free(link);
        return driver;
}

static void expect_driver(const char *address, const char *want)
{
        char *driver = driver_of(address);
        cr_expect_str_eq(driver, want, "%s is on \"%s\", expected \"%s\"", address, driver, want);
        free(driver);
}

static void expect_override_cleared(const char *address)
{
        char *path = util_strdup_printf("%s/bus/pci/devices/%s/driver_override",
                                        fixture_sysfs_root(fx), address);
        char *value = NULL;
        cr_assert_eq(util_read_line(path, &value), 0);
        cr_expect(streq(value, "") || streq(value, "(null)"), "%s override still \"%s\"", address,
                  value);
        free(value);
        free(path);
}

static bool exists(const char *rel)
{
        char *path = util_strdup_printf("%s/%s", fixture_root(fx), rel);
        bool r = access(path, F_OK) == 0;
        free(path);
        return r;
}

TestSuite(iommu_bind, .init = lab_setup, .fini = lab_teardown, .timeout = 30);

Test(iommu_bind, single_device_round_trip)
{
        lab_start_kernel(NULL);
        struct iov_bind_record *rec = NULL;
        size_t n = 0;
        int r = iommu_group_bind_vfio(fixture_sysfs_root(fx), 2, TIMEOUT_MS, &rec, &n);
        cr_assert_eq(r, 0, "bind: %s", strerror(-r));
        cr_assert_eq(n, 1u, "records %zu", n);
        cr_expect_str_eq(rec[0].original_driver, "e1000e");
        cr_expect_null(rec[0].original_override);
        expect_driver("0000:00:02.0", "vfio-pci");
        cr_expect(exists("dev/vfio/2"), "dev/vfio/2 missing after bind");
        cr_expect_eq(iommu_group_check_viable(fixture_sysfs_root(fx), 2, NULL, NULL), 1);

        r = iommu_group_restore(fixture_sysfs_root(fx), rec, n, TIMEOUT_MS);
        cr_expect_eq(r, 0, "restore: %s", strerror(-r));
        expect_driver("0000:00:02.0", "e1000e");
        expect_override_cleared("0000:00:02.0");
        cr_expect(!exists("dev/vfio/2"), "dev/vfio/2 left after restore");
        iommu_bind_records_free(rec, n);
}

Test(iommu_bind, whole_multi_device_group_and_back)
{
        lab_start_kernel(&(struct fixture_kernel_options){.delay_ms = 2});
        struct iov_bind_record *rec = NULL;
        size_t n = 0;
        int r = iommu_group_bind_vfio(fixture_sysfs_root(fx), 4, TIMEOUT_MS, &rec, &n);
        cr_assert_eq(r, 0, "bind: %s", strerror(-r));
        cr_assert_eq(n, 3u, "records %zu", n);
        expect_driver("0000:00:1f.0", "vfio-pci");
        expect_driver("0000:00:1f.2", "vfio-pci");
        expect_driver("0000:00:1f.3", "vfio-pci");
        cr_assert_eq(iommu_group_restore(fixture_sysfs_root(fx), rec, n, TIMEOUT_MS), 0);
        expect_driver("0000:00:1f.0", "lpc_ich");
        expect_driver("0000:00:1f.2", "ahci");
        expect_driver("0000:00:1f.3", "i801_smbus");
        iommu_bind_records_free(rec, n);
}

Test(iommu_bind, failed_bind_of_second_member_rolls_everything_back)
{
        lab_start_kernel(&(struct fixture_kernel_options){.fail_bind = "0000:00:1f.2"});
        struct iov_bind_record *rec = (void *)0x1;
        size_t n = 42;
        int r = iommu_group_bind_vfio(fixture_sysfs_root(fx), 4, 300, &rec, &n);
        cr_expect_eq(r, -ETIMEDOUT, "bind returned %d (%s)", r, strerror(-r));
        cr_expect_eq(rec, (void *)0x1, "records written on failure");
        cr_expect_eq(n, 42u, "count written on failure");
        expect_driver("0000:00:1f.0", "lpc_ich");
        expect_driver("0000:00:1f.2", "ahci");
        expect_driver("0000:00:1f.3", "i801_smbus");
        expect_override_cleared("0000:00:1f.0");
        expect_override_cleared("0000:00:1f.2");
        cr_expect(!exists("dev/vfio/4"), "dev/vfio/4 left behind");
}

Test(iommu_bind, member_vanishing_mid_bind_is_reported_and_the_rest_restored)
{
        lab_start_kernel(&(struct fixture_kernel_options){.vanish_on_bind = "0000:00:1f.2"});
        struct iov_bind_record *rec = NULL;
        size_t n = 0;
        int r = iommu_group_bind_vfio(fixture_sysfs_root(fx), 4, TIMEOUT_MS, &rec, &n);
        cr_expect_eq(r, -ENODEV, "bind returned %d (%s)", r, strerror(-r));
        expect_driver("0000:00:1f.0", "lpc_ich");
        expect_driver("0000:00:1f.2", "<gone>");
        expect_driver("0000:00:1f.3", "i801_smbus");
        expect_override_cleared("0000:00:1f.0");
}

Test(iommu_bind, bridges_are_left_alone_and_overrides_restored)
{
        lab_start_kernel(NULL);
        char *path = util_strdup_printf("%s/bus/pci/devices/0000:00:02.0/driver_override",
                                        fixture_sysfs_root(fx));
        cr_assert_eq(util_write_attr(path, "e1000e\n"), 0);
        struct iov_bind_record *rec = NULL;
        size_t n = 0;
        cr_assert_eq(iommu_group_bind_vfio(fixture_sysfs_root(fx), 3, TIMEOUT_MS, &rec, &n), 0);
        cr_assert_eq(n, 1u);
        cr_expect(rec[0].is_bridge, "root port not seen as a bridge");
        expect_driver("0000:00:03.0", "pcieport");
        iommu_bind_records_free(rec, n);

        cr_assert_eq(iommu_group_bind_vfio(fixture_sysfs_root(fx), 2, TIMEOUT_MS, &rec, &n), 0);
        cr_expect_str_eq(rec[0].original_override, "e1000e");
        cr_assert_eq(iommu_group_restore(fixture_sysfs_root(fx), rec, n, TIMEOUT_MS), 0);
        char *value = NULL;
        cr_assert_eq(util_read_line(path, &value), 0);
        cr_expect_str_eq(value, "e1000e", "override after restore \"%s\"", value);
        expect_driver("0000:00:02.0", "e1000e");
        iommu_bind_records_free(rec, n);
        free(value);
        free(path);
}

Test(iommu_bind, refuses_without_vfio_pci_or_group)
{
        struct fixture *plain = NULL;
        struct iov_bind_record *rec = NULL;
        size_t n = 0;
        cr_assert_eq(fixture_new(&plain), 0);
        cr_expect_eq(iommu_group_bind_vfio(fixture_sysfs_root(plain), 0, 100, &rec, &n), -ENOPKG);
        fixture_free(plain);
        cr_expect_eq(iommu_group_bind_vfio(fixture_sysfs_root(fx), 99, 100, &rec, &n), -ENOENT);
}

Test(iommu_bind, restore_goes_on_past_a_vanished_member)
{
        lab_start_kernel(NULL);
        struct iov_bind_record *rec = NULL;
        size_t n = 0;
        cr_assert_eq(iommu_group_bind_vfio(fixture_sysfs_root(fx), 4, TIMEOUT_MS, &rec, &n), 0);
        cr_assert_eq(fixture_remove_device(fx, "0000:00:1f.3"), 0);
        int r = iommu_group_restore(fixture_sysfs_root(fx), rec, n, TIMEOUT_MS);
        cr_expect_eq(r, -ENODEV, "restore returned %d", r);
        expect_driver("0000:00:1f.0", "lpc_ich");
        expect_driver("0000:00:1f.2", "ahci");
        iommu_bind_records_free(rec, n);
}

Test(iommu_bind, restore_rebinds_a_hand_bound_driver_explicitly)
{
        /* Bound to pci-stub by hand; the kernel would pick e1000e on a reprobe. */
        const struct fixture_device stub = {.address = "0000:02:00.0",
                                            .vendor_id = 0x8086,
                                            .device_id = 0x10d3,
                                            .class_code = 0x020000,
                                            .driver = "pci-stub",
                                            .natural_driver = "e1000e",
                                            .iommu_group = 9,
                                            .numa_node = -1};
        cr_assert_eq(fixture_add_device(fx, &stub), 0);
        lab_start_kernel(NULL);
        struct iov_bind_record *rec = NULL;
        size_t n = 0;
        cr_assert_eq(iommu_group_bind_vfio(fixture_sysfs_root(fx), 9, TIMEOUT_MS, &rec, &n), 0);
        expect_driver("0000:02:00.0", "vfio-pci");
        int r = iommu_group_restore(fixture_sysfs_root(fx), rec, n, TIMEOUT_MS);
        cr_expect_eq(r, 0, "restore: %s", strerror(-r));
        expect_driver("0000:02:00.0", "pci-stub");
        iommu_bind_records_free(rec, n);
}

Test(iommu_bind, binding_reads_driver_and_override_and_knows_a_gone_device)
{
        char *path = util_strdup_printf("%s/bus/pci/devices/0000:00:02.0/driver_override",
                                        fixture_sysfs_root(fx));
        cr_assert_eq(util_write_attr(path, "e1000e\n"), 0);
        struct iov_pci_address a, gone;
        cr_assert_eq(pci_address_parse("0000:00:02.0", &a), 0);
        cr_assert_eq(pci_address_parse("0000:00:1f.7", &gone), 0);
        char *driver = NULL, *override = NULL;
        int r = iommu_device_binding(fixture_sysfs_root(fx), &a, &driver, &override);
        cr_assert_eq(r, 0, "iommu_device_binding: %s", strerror(-r));
        cr_expect_str_eq(driver ? driver : "none", "e1000e", "driver %s", driver);
        cr_expect_str_eq(override ? override : "none", "e1000e", "override %s", override);
        free(driver);
        free(override);
        driver = override = NULL;
        r = iommu_device_binding(fixture_sysfs_root(fx), &gone, &driver, &override);
        cr_expect_eq(r, -ENOENT, "a missing function: %s", strerror(-r));
        cr_expect_null(driver, "driver set for a missing function");
        free(path);
}
