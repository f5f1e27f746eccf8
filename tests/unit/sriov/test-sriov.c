/* SPDX-License-Identifier: MIT */
/* sriov_set_num_vfs against a generated tree and the fake kernel. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "sriov/sriov.h"
#include "tests/unit/pci/lab-fixture.h"
#include "util/util.h"

#define TIMEOUT_MS 3000

static struct iov_pci_address pf;

static void sriov_setup(void)
{
        lab_setup();
        cr_assert_eq(pci_address_parse("0000:01:00.0", &pf), 0);
}

static void start_kernel(unsigned delay_ms)
{
        lab_start_kernel(&(struct fixture_kernel_options){.delay_ms = delay_ms});
}

static char *pf_attr(const char *name)
{
        char *path = util_strdup_printf("%s/bus/pci/devices/0000:01:00.0/%s",
                                        fixture_sysfs_root(fx), name);
        char *value = NULL;
        if (util_read_line(path, &value) < 0)
                value = strdup("<missing>");
        free(path);
        return value;
}

static bool device_exists(const char *address)
{
        char *path = util_strdup_printf("%s/bus/pci/devices/%s", fixture_sysfs_root(fx), address);
        bool r = access(path, F_OK) == 0;
        free(path);
        return r;
}

static bool device_bound(const char *address)
{
        char *path =
                util_strdup_printf("%s/bus/pci/devices/%s/driver", fixture_sysfs_root(fx), address);
        bool r = access(path, F_OK) == 0;
        free(path);
        return r;
}

static void expect_attr(const char *name, const char *want)
{
        char *value = pf_attr(name);
        cr_expect_str_eq(value, want, "%s is \"%s\", expected \"%s\"", name, value, want);
        free(value);
}

TestSuite(sriov, .init = sriov_setup, .fini = lab_teardown, .timeout = 30);

Test(sriov, creates_driverless_vfs_then_changes_the_count_through_zero)
{
        start_kernel(0);
        int r = sriov_set_num_vfs(fixture_sysfs_root(fx), &pf, 3, false, TIMEOUT_MS);
        cr_assert_eq(r, 0, "set 3: %s", strerror(-r));
        cr_expect(device_exists("0000:01:00.3"), "VF 3 missing");
        cr_expect(!device_bound("0000:01:00.1"), "VF bound although autoprobe is off");
        expect_attr("sriov_drivers_autoprobe", "0");
        expect_attr("sriov_numvfs", "3");

        r = sriov_set_num_vfs(fixture_sysfs_root(fx), &pf, 2, true, TIMEOUT_MS);
        char *trace = NULL;
        fixture_kernel_log(fx, &trace);
        cr_assert_eq(r, 0, "set 2: %s; kernel log:\n%s", strerror(-r), trace);
        free(trace);
        cr_expect(!device_exists("0000:01:00.3"), "VF 3 still there");
        cr_expect(device_exists("0000:01:00.2"), "VF 2 missing");
        cr_expect(device_bound("0000:01:00.1"), "VF not autoprobed");
        expect_attr("sriov_numvfs", "2");

        cr_assert_eq(sriov_set_num_vfs(fixture_sysfs_root(fx), &pf, 0, false, TIMEOUT_MS), 0);
        cr_expect(!device_exists("0000:01:00.1"), "VF 1 still there");
        char *log = NULL;
        cr_assert_eq(fixture_kernel_log(fx, &log), 0);
        cr_expect(strstr(log, "sriov_numvfs 0000:01:00.0 0\n") != NULL, "no pass through 0: %s",
                  log);
        cr_expect(strstr(log, "refused") == NULL, "kernel refused a write: %s", log);
        free(log);
}

Test(sriov, same_count_is_a_no_op_and_slow_kernels_are_waited_for)
{
        start_kernel(20);
        cr_assert_eq(sriov_set_num_vfs(fixture_sysfs_root(fx), &pf, 4, false, TIMEOUT_MS), 0);
        cr_expect(device_exists("0000:01:00.4"), "VF 4 missing");
        cr_assert_eq(sriov_set_num_vfs(fixture_sysfs_root(fx), &pf, 4, false, TIMEOUT_MS), 0);
        cr_expect(device_exists("0000:01:00.4"), "VF 4 gone after a no-op");
}

Test(sriov, above_total_is_einval_and_touches_nothing)
{
        start_kernel(0);
        int r = sriov_set_num_vfs(fixture_sysfs_root(fx), &pf, 5, false, TIMEOUT_MS);
        cr_expect_eq(r, -EINVAL, "set 5 of 4: %d", r);
        expect_attr("sriov_drivers_autoprobe", "1");
        expect_attr("sriov_numvfs", "0");
        cr_expect(!device_exists("0000:01:00.1"), "a VF appeared");
}

Test(sriov, not_a_pf_or_no_device)
{
        struct iov_pci_address nic, none;
        cr_assert_eq(pci_address_parse("0000:00:02.0", &nic), 0);
        cr_assert_eq(pci_address_parse("0000:07:00.0", &none), 0);
        cr_expect_eq(sriov_set_num_vfs(fixture_sysfs_root(fx), &nic, 1, false, 100), -ENODEV);
        cr_expect_eq(sriov_set_num_vfs(fixture_sysfs_root(fx), &none, 1, false, 100), -ENOENT);
}

Test(sriov, no_reaction_times_out)
{
        /* No fake kernel: the write lands in a plain file and no VF ever appears. */
        int r = sriov_set_num_vfs(fixture_sysfs_root(fx), &pf, 2, false, 50);
        cr_expect_eq(r, -ETIMEDOUT, "got %d", r);
}
