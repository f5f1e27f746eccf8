/* SPDX-License-Identifier: MIT */
/* PUT /v1/devices/{pf}/sriov through the real iovd and the fake kernel. */
#include "test-alloc-common.h"

#define PF_PATH "/v1/devices/0000:01:00.0/sriov"

static size_t vf_count(struct iov_harness *h)
{
        struct json_object *pf = get_device(h, "0000:01:00.0");
        struct json_object *sriov = json_object_object_get(pf, "sriov");
        int64_t n = jint(sriov, "num_vfs");
        cr_assert_geq(n, 0, "no sriov.num_vfs in %s", json_object_to_json_string(pf));
        json_object_put(pf);
        return (size_t)n;
}

Test(sriov, creates_driverless_vfs_and_the_inventory_shows_them)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        int fd = -1;
        long status = 0;
        cr_assert_eq(harness_events_open(h, &fd, &status), 0);

        struct json_object *o = call(h, "PUT", PF_PATH, "{\"num_vfs\":3}", 200);
        cr_assert_eq(jint(o, "num_vfs"), 3, "reply %s", json_object_to_json_string(o));
        cr_assert_eq(json_object_array_length(json_object_object_get(o, "vfs")), 3u, "reply %s",
                     json_object_to_json_string(o));
        json_object_put(o);
        cr_assert_eq(vf_count(h), 3u, "inventory not rescanned");
        /* Autoprobe off by default: the VFs wait driverless for an allocation. */
        for (int i = 1; i <= 3; i++) {
                char address[16];
                snprintf(address, sizeof(address), "0000:01:00.%d", i);
                expect_sysfs_driver(fx, address, "");
                struct json_object *vf = get_device(h, address);
                cr_assert_str_eq(jstr(vf, "physfn") ? jstr(vf, "physfn") : "", "0000:01:00.0",
                                 "VF %s", json_object_to_json_string(vf));
                json_object_put(vf);
        }
        bool seen = false;
        for (int i = 0; i < 50 && !seen; i++) {
                _cleanup_free_ char *line = NULL;
                if (harness_events_next(fd, 200, &line) == 0)
                        seen = strstr(line, "\"vfs_changed\"") || strstr(line, "sriov_configured");
        }
        close(fd);
        cr_assert(seen, "no VF event after PUT sriov");

        /* Back to fewer: 0 then N as the kernel requires. */
        json_object_put(call(h, "PUT", PF_PATH, "{\"num_vfs\":1}", 200));
        cr_assert_eq(vf_count(h), 1u, "after shrinking to 1");
}

Test(sriov, autoprobe_can_be_asked_for)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        json_object_put(call(h, "PUT", PF_PATH, "{\"num_vfs\":1,\"drivers_autoprobe\":true}", 200));
        expect_sysfs_driver(fx, "0000:01:00.1", "nvme");
}

Test(sriov, refusals_change_nothing)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        expect_error(h, "PUT", PF_PATH, "{\"num_vfs\":5}", 400, "num_vfs_above_total");
        expect_error(h, "PUT", "/v1/devices/0000:00:02.0/sriov", "{\"num_vfs\":1}", 400,
                     "not_a_pf");
        expect_error(h, "PUT", "/v1/devices/0000:01:00.1/sriov", "{\"num_vfs\":1}", 400,
                     "not_a_pf");
        expect_error(h, "PUT", "/v1/devices/0000:09:00.0/sriov", "{\"num_vfs\":1}", 404,
                     "device_not_found");
        expect_error(h, "PUT", "/v1/devices/01:00.0/sriov", "{\"num_vfs\":1}", 400,
                     "invalid_address");
        expect_error(h, "PUT", PF_PATH, "{\"num_vfs\":\"2\"}", 400, "wrong_type");
        expect_error(h, "PUT", PF_PATH, "{\"num_vfs\":-1}", 400, "invalid_value");
        expect_error(h, "PUT", PF_PATH, "{\"num_vfs\":1,\"vfs\":1}", 400, "unknown_field");
        expect_error(h, "PUT", PF_PATH, "{}", 400, "missing_field");
        cr_assert_eq(vf_count(h), 2u, "a refused PUT changed the VFs");
}

Test(sriov, allocated_vf_blocks_any_change)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        struct json_object *a = allocate(h, "vm-1", "device", "0000:01:00.2", 201);

        struct json_object *o = call(h, "PUT", PF_PATH, "{\"num_vfs\":0}", 409);
        cr_assert_str_eq(error_code(o), "vf_allocated", "reply %s", json_object_to_json_string(o));
        const char *message = jstr(json_object_object_get(o, "error"), "message");
        cr_assert(strstr(message, jstr(a, "id")), "message does not name the allocation: %s",
                  message);
        json_object_put(o);
        cr_assert_eq(vf_count(h), 2u, "VFs changed although one is allocated");
        expect_sysfs_driver(fx, "0000:01:00.2", "vfio-pci");

        /* After the release the change goes through. */
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        json_object_put(call(h, "DELETE", path, NULL, 200));
        json_object_put(call(h, "PUT", PF_PATH, "{\"num_vfs\":4}", 200));
        cr_assert_eq(vf_count(h), 4u, "after release and PUT 4");
        json_object_put(a);
}

Test(sriov, a_pf_with_vfs_is_not_handed_out)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\",\"device\":\"0000:01:00.0\"}",
                     409, "pf_has_vfs");
        expect_sysfs_driver(fx, "0000:01:00.0", "nvme");
}
