/* SPDX-License-Identifier: MIT */
/*
 * The udev path for real: iovd on the host's own /sys, and a kernel uevent made by writing
 * to a PCI function's "uevent" attribute (sysfs-devices: "add" re-announces an existing
 * device; nothing about the device changes). An add leads to one refresh of that function
 * (not a full rescan); a "change" (not about inventory) leads to none. Needs root and a writable
 * /sys with PCI functions.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

/* Inventory reads since start: full rescans plus per-device refreshes. */
static unsigned long long counter(struct iov_harness *h, const char *name)
{
        struct iov_http_reply reply = {0};
        int r = harness_request(h, "GET", "/metrics", NULL, &reply);
        cr_assert_eq(r, 0, "GET /metrics: %s", strerror(-r));
        _cleanup_free_ char *prefix = util_strdup_printf("\n%s ", name);
        const char *at = reply.body ? strstr(reply.body, prefix) : NULL;
        cr_assert_not_null(at, "no %s in /metrics:\n%s", name, reply.body);
        unsigned long long v = strtoull(at + strlen(prefix), NULL, 10);
        harness_reply_clear(&reply);
        return v;
}

static unsigned long long rescans(struct iov_harness *h)
{
        return counter(h, "iovd_rescans_total") + counter(h, "iovd_device_refreshes_total");
}

/* The first PCI function of the host, or skip. */
static char *first_function(void)
{
        DIR *dir = opendir("/sys/bus/pci/devices");
        if (!dir)
                cr_skip_test("no /sys/bus/pci/devices here");
        char *found = NULL;
        for (struct dirent *de; !found && (de = readdir(dir));)
                if (de->d_name[0] != '.')
                        found = strdup(de->d_name);
        closedir(dir);
        if (!found)
                cr_skip_test("the host has no PCI functions");
        return found;
}

static int send_uevent(const char *address, const char *action)
{
        _cleanup_free_ char *path = util_strdup_printf("/sys/bus/pci/devices/%s/uevent", address);
        return util_write_attr(path, action);
}

/* Wait up to timeout_ms for the rescan count to pass before; the count seen. */
static unsigned long long wait_rescans(struct iov_harness *h, unsigned long long before,
                                       unsigned timeout_ms)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        unsigned long long now;
        while ((now = rescans(h)) <= before && util_now_usec() < deadline)
                util_sleep_usec(20000);
        return now;
}

Test(udev, kernel_add_uevent_rescans_a_live_sys)
{
        if (geteuid() != 0)
                cr_skip_test("writing a sysfs uevent attribute needs root");
        _cleanup_free_ char *address = first_function();
        struct iov_harness_options o = {.sysfs_root = "/sys"};
        _cleanup_harness_ struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        cr_assert_eq(r, 0, "iovd on /sys did not start: %s", strerror(-r));
        _cleanup_free_ char *log = harness_log(h);
        if (strstr(log, "No udev monitor"))
                cr_skip_test("no kernel uevent socket here: %s", log);

        /* A "change" is not about the inventory: no rescan. */
        unsigned long long before = rescans(h), full = counter(h, "iovd_rescans_total");
        r = send_uevent(address, "change");
        if (r == -EACCES || r == -EROFS || r == -EPERM)
                cr_skip_test("/sys is not writable here: %s", strerror(-r));
        cr_assert_eq(r, 0, "write change to %s/uevent: %s", address, strerror(-r));
        cr_expect_eq(wait_rescans(h, before, 500), before, "a change uevent of %s rescanned",
                     address);

        r = send_uevent(address, "add");
        cr_assert_eq(r, 0, "write add to %s/uevent: %s", address, strerror(-r));
        unsigned long long after = wait_rescans(h, before, 3000);
        if (after == before) {
                /* The write worked but no uevent reached us: a network namespace the kernel
                 * does not broadcast uevents into (containers). Say so, do not pass. */
                cr_skip_test("no uevent for %s reached iovd within 3 s (uevents are not "
                             "delivered to this network namespace)",
                             address);
        }
        cr_expect_eq(after, before + 1, "one add uevent made %llu inventory reads", after - before);
        cr_expect_eq(counter(h, "iovd_rescans_total"), full, "an add uevent read the whole host");
        _cleanup_free_ char *path = util_strdup_printf("/v1/devices/%s", address);
        struct iov_http_reply reply = {0};
        cr_assert_eq(harness_request(h, "GET", path, NULL, &reply), 0);
        cr_expect_eq(reply.status, 200, "%s after the rescan: status %ld", address, reply.status);
        harness_reply_clear(&reply);
}
