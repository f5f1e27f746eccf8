/* SPDX-License-Identifier: MIT */
/* Allocate, release and PUT sriov refresh only the functions they touched: the inventory
 * shows the change at once, and no full rescan runs (iovd_rescans_total stays put). */
#include <stdio.h>

#include "test-alloc-common.h"

/* A counter from GET /metrics; fails the test when it is missing. */
static unsigned long long metric(struct iov_harness *h, const char *name)
{
        struct iov_http_reply reply = {0};
        int r = harness_request(h, "GET", "/metrics", NULL, &reply);
        cr_assert_eq(r, 0, "GET /metrics: %s", strerror(-r));
        cr_assert_eq(reply.status, 200, "GET /metrics: status %ld", reply.status);
        _cleanup_free_ char *prefix = util_strdup_printf("\n%s ", name);
        const char *at = strstr(reply.body, prefix);
        cr_assert_not_null(at, "no %s in /metrics:\n%s", name, reply.body);
        unsigned long long v = strtoull(at + strlen(prefix), NULL, 10);
        harness_reply_clear(&reply);
        return v;
}

static const char *driver_of(struct json_object *dev)
{
        const char *driver = jstr(dev, "driver");
        return driver ? driver : "";
}

/* The driver of the function at address is want ("": none); when says at which step. */
static void expect_driver(struct iov_harness *h, const char *address, const char *want,
                          const char *when)
{
        struct json_object *dev = get_device(h, address);
        cr_assert_str_eq(driver_of(dev), want, "%s: %s", when, json_object_to_json_string(dev));
        json_object_put(dev);
}

/* After step what: no full rescan since rescans was read, refreshes_total refreshes. */
static void expect_refreshed_only(struct iov_harness *h, const char *what,
                                  unsigned long long rescans, unsigned long long refreshes_total)
{
        cr_assert_eq(metric(h, "iovd_rescans_total"), rescans, "%s ran a full rescan", what);
        cr_assert_eq(metric(h, "iovd_device_refreshes_total"), refreshes_total,
                     "%s did not refresh its group", what);
}

static size_t count_devices(struct iov_harness *h)
{
        struct json_object *o = call(h, "GET", "/v1/devices", NULL, 200);
        struct json_object *list =
                json_object_is_type(o, json_type_array) ? o : json_object_object_get(o, "devices");
        size_t n = json_object_array_length(list);
        json_object_put(o);
        return n;
}

Test(refresh, allocate_and_release_reread_only_the_group)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        unsigned long long rescans = metric(h, "iovd_rescans_total");
        unsigned long long refreshes = metric(h, "iovd_device_refreshes_total");
        size_t n = count_devices(h);

        struct json_object *a = allocate(h, "vm-1", "device", "0000:01:00.1", 201);
        expect_driver(h, "0000:01:00.1", "vfio-pci", "after allocate");
        expect_refreshed_only(h, "allocate", rescans, refreshes + 1);
        cr_assert_eq(count_devices(h), n, "device count changed by an allocation (was %zu)", n);
        /* The untouched sibling is copied as it was. */
        expect_driver(h, "0000:01:00.2", "", "sibling VF");

        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        json_object_put(call(h, "DELETE", path, NULL, 200));
        expect_driver(h, "0000:01:00.1", "", "after release");
        expect_refreshed_only(h, "release", rescans, refreshes + 2);
        json_object_put(a);
}

static bool group_listed(struct iov_harness *h, int64_t id)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/iommu-groups/%lld", (long long)id);
        struct iov_http_reply reply = {0};
        int r = harness_request(h, "GET", path, NULL, &reply);
        cr_assert_eq(r, 0, "GET %s: %s", path, strerror(-r));
        bool found = reply.status == 200;
        harness_reply_clear(&reply);
        return found;
}

Test(refresh, sriov_put_brings_and_takes_vfs_and_their_groups)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        unsigned long long rescans = metric(h, "iovd_rescans_total");
        size_t n = count_devices(h);

        json_object_put(call(h, "PUT", "/v1/devices/0000:01:00.0/sriov", "{\"num_vfs\":3}", 200));
        cr_assert_eq(count_devices(h), n + 3, "after 3 VFs (was %zu)", n);
        int64_t groups[3];
        for (int i = 0; i < 3; i++) {
                char address[16];
                snprintf(address, sizeof(address), "0000:01:00.%d", i + 1);
                struct json_object *vf = get_device(h, address);
                groups[i] = jint(vf, "iommu_group");
                cr_assert_geq(groups[i], 0, "VF without a group: %s",
                              json_object_to_json_string(vf));
                json_object_put(vf);
                cr_assert(group_listed(h, groups[i]), "group %lld of %s not listed",
                          (long long)groups[i], address);
        }
        json_object_put(call(h, "PUT", "/v1/devices/0000:01:00.0/sriov", "{\"num_vfs\":1}", 200));
        cr_assert_eq(count_devices(h), n + 1, "after shrinking to 1 VF (was %zu)", n);
        expect_error(h, "GET", "/v1/devices/0000:01:00.3", NULL, 404, "device_not_found");
        cr_assert_not(group_listed(h, groups[2]), "group %lld of a removed VF still listed",
                      (long long)groups[2]);
        cr_assert_eq(metric(h, "iovd_rescans_total"), rescans, "PUT sriov ran a full rescan");
}
