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

/* Functions in domains above 0xffff (VMD, Hyper-V) are listed, found and allocated under
 * the name the kernel gives them: every domain digit, never cut to fit a buffer. */
Test(edges, long_pci_domains_print_whole)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        static const char *const addresses[] = {"10000:00:02.0", "7fffffff:ff:1f.7"};
        for (size_t i = 0; i < ARRAY_SIZE(addresses); i++) {
                struct fixture_device d = {
                        .address = addresses[i],
                        .vendor_id = 0x8086,
                        .device_id = 0x0a54,
                        .class_code = 0x010802,
                        .iommu_group = 60 + (int)i,
                        .numa_node = 0,
                };
                int r = fixture_add_device(fx, &d);
                cr_assert_eq(r, 0, "fixture_add_device(%s): %s", addresses[i], strerror(-r));
        }
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *list = call(h, "GET", "/v1/devices?class=0108", NULL, 200);
        const char *text = json_object_to_json_string(list);
        for (size_t i = 0; i < ARRAY_SIZE(addresses); i++) {
                _cleanup_free_ char *quoted = util_strdup_printf("\"%s\"", addresses[i]);
                cr_expect(strstr(text, quoted), "%s missing from %s", addresses[i], text);
                struct json_object *dev = get_device(h, addresses[i]);
                cr_expect_str_eq(jstr(dev, "address") ? jstr(dev, "address") : "", addresses[i],
                                 "device %s", json_object_to_json_string(dev));
                json_object_put(dev);
        }
        json_object_put(list);

        struct json_object *a = allocate(h, "vm-1", "device", "7fffffff:ff:1f.7", 201);
        struct json_object *devices = json_object_object_get(a, "devices");
        cr_expect_str_eq(json_object_get_string(json_object_array_get_idx(devices, 0)),
                         "7fffffff:ff:1f.7", "allocation %s", json_object_to_json_string(a));
        json_object_put(a);
        expect_sysfs_driver(fx, "7fffffff:ff:1f.7", "vfio-pci");
}

/* GET /v1/vms ?state= keeps the VMs in that state; a state openapi.yaml does not list is
 * 400 invalid_parameter (it used to be ignored or unknown, never a silent empty list). */
Test(edges, vm_list_state_filter)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        _cleanup_free_ char *kernel = util_path_join(h->dir, "bzImage", NULL);
        cr_assert_eq(util_write_file_atomic(kernel, "not a kernel\n", 13, 0644), 0);

        _cleanup_free_ char *body =
                util_strdup_printf("{\"name\":\"demo\",\"kernel\":\"%s\"}", kernel);
        json_object_put(call(h, "POST", "/v1/vms", body, 201));
        static const struct {
                const char *state;
                size_t want;
        } cases[] = {{"created", 1}, {"running", 0}, {"crashed", 0}};
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *path = util_strdup_printf("/v1/vms?state=%s", cases[i].state);
                struct json_object *list = call(h, "GET", path, NULL, 200);
                size_t n = json_object_array_length(json_object_object_get(list, "vms"));
                cr_expect_eq(n, cases[i].want, "%s: %s", path, json_object_to_json_string(list));
                json_object_put(list);
        }
        expect_error(h, "GET", "/v1/vms?state=bogus", NULL, 400, "invalid_parameter");
}
