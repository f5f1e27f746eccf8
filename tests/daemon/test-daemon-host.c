/* SPDX-License-Identifier: MIT */
/* GET /v1/host on generated trees: IOMMU, interrupt remapping, vfio-pci, KVM, switches. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "harness.h"
#include "tests/fixtures/fixture.h"

/* Start iovd on fx and return GET /v1/host. */
static struct json_object *host_of(struct fixture *fx, const char *const *extra)
{
        _cleanup_harness_ struct iov_harness *h = NULL;
        struct iov_harness_options o = {.sysfs_root = fixture_sysfs_root(fx),
                                        .dev_root = fixture_dev_root(fx),
                                        .extra_args = extra};
        int r = harness_start(&o, &h);
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r),
                     h ? harness_log(h) : "");
        struct iov_http_reply reply = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/host", NULL, &reply), 0);
        cr_assert_eq(reply.status, 200L, "status %ld: %s", reply.status, reply.body);
        struct json_object *host = json_object_get(reply.json);
        harness_reply_clear(&reply);
        return host;
}

/* "a.b" in o, as JSON text ("null" when null or absent). */
static const char *field(struct json_object *o, const char *a, const char *b)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, a, &v))
                return "(absent)";
        if (b && (!v || !json_object_object_get_ex(v, b, &v)))
                return "(absent)";
        return v ? json_object_to_json_string(v) : "null";
}

Test(host, lab_tree_with_interrupt_remapping)
{
        _cleanup_(fixture_freep) struct fixture *fx = NULL;
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_lab_preset(fx), 0);
        struct json_object *host = host_of(fx, NULL);
        cr_expect_str_eq(field(host, "iommu", "enabled"), "true");
        cr_expect_str_eq(field(host, "iommu", "interrupt_remapping"), "true");
        cr_expect_str_eq(field(host, "vfio_pci_loaded", NULL), "true");
        cr_expect_str_eq(field(host, "allow_unsafe_interrupts", NULL), "false");
        /* The generated dev root has no usable /dev/kvm. */
        cr_expect_str_eq(field(host, "kvm", "available"), "false");
        cr_expect_str_eq(field(host, "kvm", "api_version"), "null");
        cr_expect_str_neq(field(host, "counts", "devices"), "0");
        cr_expect_str_eq(field(host, "counts", "sriov_pfs"), "1");
        json_object_put(host);
}

Test(host, no_interrupt_remapping_and_unsafe_switch)
{
        _cleanup_(fixture_freep) struct fixture *fx = NULL;
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_generated(fx, 1, 2, true), 0);
        cr_assert_eq(fixture_set_iommu(fx, true, false), 0);
        const char *const unsafe[] = {"--allow-unsafe-interrupts", NULL};
        struct json_object *host = host_of(fx, unsafe);
        cr_expect_str_eq(field(host, "iommu", "enabled"), "true");
        cr_expect_str_eq(field(host, "iommu", "interrupt_remapping"), "false");
        cr_expect_str_eq(field(host, "allow_unsafe_interrupts", NULL), "true");
        cr_expect_str_eq(field(host, "counts", "sriov_vfs"), "2");
        json_object_put(host);
}

Test(host, unknown_remapping_is_null)
{
        _cleanup_(fixture_freep) struct fixture *fx = NULL;
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_generated(fx, 1, 0, true), 0);
        cr_assert_eq(fixture_set_iommu(fx, false, false), 0);
        cr_assert_eq(fixture_set_iommu_amd(fx, false), 0);
        struct json_object *host = host_of(fx, NULL);
        cr_expect_str_eq(field(host, "iommu", "interrupt_remapping"), "null");
        json_object_put(host);
}

Test(host, real_kvm_when_present)
{
        if (access("/dev/kvm", R_OK | W_OK) < 0)
                cr_skip_test("no usable /dev/kvm here");
        _cleanup_(fixture_freep) struct fixture *fx = NULL;
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_lab_preset(fx), 0);
        _cleanup_harness_ struct iov_harness *h = NULL;
        struct iov_harness_options o = {.sysfs_root = fixture_sysfs_root(fx), .dev_root = "/dev"};
        cr_assert_eq(harness_start(&o, &h), 0);
        struct iov_http_reply reply = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/host", NULL, &reply), 0);
        cr_expect_str_eq(field(reply.json, "kvm", "available"), "true");
        /* KVM_API_VERSION has been 12 since Linux 2.6.22 (Documentation/virt/kvm/api.rst). */
        cr_expect_str_eq(field(reply.json, "kvm", "api_version"), "12");
        harness_reply_clear(&reply);
}
