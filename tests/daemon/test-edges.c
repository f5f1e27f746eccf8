/* SPDX-License-Identifier: MIT */
/* Edges of the API through the real iovd on a generated tree (issue 11): platform devices
 * that are never handed out, NUL inside JSON strings, eight-digit PCI domains. */
#include <stdio.h>

#include "test-alloc-common.h"

/* The lab's host bridge (00:00.0, class 060000, alone and driverless in group 0) passed
 * every other check and went to vfio-pci; the root port and the ISA bridge are platform
 * too. Each is refused with 409 device_not_assignable and nothing moves. */
Test(edges, platform_devices_are_never_allocated)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        static const char *const platform[] = {"0000:00:00.0", "0000:00:03.0", "0000:00:1f.0"};
        for (size_t i = 0; i < ARRAY_SIZE(platform); i++) {
                _cleanup_free_ char *body =
                        util_strdup_printf("{\"owner\":\"vm-1\",\"device\":\"%s\"}", platform[i]);
                expect_error(h, "POST", "/v1/allocations", body, 409, "device_not_assignable");
        }
        expect_sysfs_driver(fx, "0000:00:00.0", "");
        expect_sysfs_driver(fx, "0000:00:03.0", "pcieport");
        expect_no_override(fx, "0000:00:00.0");
        struct json_object *list = call(h, "GET", "/v1/allocations", NULL, 200);
        size_t n = json_object_array_length(json_object_object_get(list, "allocations"));
        cr_expect_eq(n, 0u, "allocations after refusals: %s", json_object_to_json_string(list));
        json_object_put(list);

        /* An endpoint on the same tree still goes (the NVMe PF, once unbound). */
        cr_assert_eq(fixture_set_driver(fx, "0000:01:00.0", NULL), 0);
        struct json_object *a = allocate(h, "vm-1", "device", "0000:01:00.0", 201);
        json_object_put(a);
}

/* "vm\u0000evil" passed the owner check as "vm" and was stored cut short. Refused at the
 * body parser for every resource, in values and keys; an escaped backslash before
 * "u0000" is six ordinary characters and goes through. */
Test(edges, nul_in_json_strings_is_refused)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        const struct {
                const char *method, *path, *body;
        } cases[] = {
                {"POST", "/v1/allocations",
                 "{\"owner\":\"vm\\u0000evil\",\"device\":\"0000:01:00.1\"}"},
                {"POST", "/v1/allocations",
                 "{\"owner\":\"vm\",\"device\":\"0000:01:00.1\\u0000\"}"},
                {"POST", "/v1/pools", "{\"name\":\"p\\u0000q\",\"selector\":{}}"},
                {"POST", "/v1/vms", "{\"name\":\"a\\u0000b\",\"kernel\":\"/nonexistent\\u0000\"}"},
                {"PUT", "/v1/devices/0000:01:00.0/sriov", "{\"num_vfs\\u0000\":1}"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                expect_error(h, cases[i].method, cases[i].path, cases[i].body, 400,
                             "nul_in_string");
        struct json_object *list = call(h, "GET", "/v1/allocations", NULL, 200);
        size_t n = json_object_array_length(json_object_object_get(list, "allocations"));
        cr_expect_eq(n, 0u, "allocations after refusals: %s", json_object_to_json_string(list));
        json_object_put(list);
        expect_sysfs_driver(fx, "0000:01:00.1", "");

        struct json_object *a = allocate(h, "vm\\\\u0000x", "device", "0000:01:00.1", 201);
        cr_expect_str_eq(jstr(a, "owner") ? jstr(a, "owner") : "", "vm\\u0000x", "owner in %s",
                         json_object_to_json_string(a));
        json_object_put(a);
}
