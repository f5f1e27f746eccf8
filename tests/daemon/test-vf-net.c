/* SPDX-License-Identifier: MIT */
/* PUT /v1/devices/{vf}/net and GET's "net" through the real iovd on a generated tree. The
 * tree's network PF names an interface this machine does not have, so what is checked
 * here is every refusal and the "interface gone" answers; the lab (scenario vf-net)
 * checks the settings on a real kernel. */
#include "test-alloc-common.h"

#define NET_PF   "0000:03:00.0"
#define NET_VF1  "0000:03:10.2" /* offset 0x80, stride 2: VF 1 */
#define NVME_VF  "0000:01:00.1"
#define IFNAME   "iovdnotthere0"
#define NET_PATH "/v1/devices/" NET_VF1 "/net"

/* The lab tree with one NVMe VF, plus an igb-like network PF with two VFs and a net/
 * entry. No fake kernel: nothing here writes to sysfs. */
static struct fixture *net_fixture(void)
{
        struct fixture *fx = NULL;
        struct fixture_device pf = {.address = NET_PF,
                                    .vendor_id = 0x8086,
                                    .device_id = 0x10c9,
                                    .class_code = 0x020000,
                                    .driver = "igb",
                                    .iommu_group = 20,
                                    .numa_node = -1};
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_lab_preset(fx), 0);
        _cleanup_free_ char *autoprobe = util_strdup_printf(
                "%s/bus/pci/devices/0000:01:00.0/sriov_drivers_autoprobe", fixture_sysfs_root(fx));
        cr_assert_eq(util_write_attr(autoprobe, "0\n"), 0); /* VFs driverless, as iovd makes them */
        cr_assert_eq(fixture_set_num_vfs(fx, "0000:01:00.0", 1), 0);
        cr_assert_eq(fixture_add_pf(fx, &pf, 7, 0x10ca, 0x80, 2), 0);
        cr_assert_eq(fixture_set_num_vfs(fx, NET_PF, 2), 0);
        _cleanup_free_ char *net = util_strdup_printf("%s/bus/pci/devices/" NET_PF "/net/" IFNAME,
                                                      fixture_sysfs_root(fx));
        cr_assert_eq(util_mkdir_p(net, 0755), 0, "mkdir %s", net);
        return fx;
}

Test(vf_net, get_shows_where_the_settings_live)
{
        _cleanup_(fixture_freep) struct fixture *fx = net_fixture();
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *vf = get_device(h, NET_VF1);
        struct json_object *net = json_object_object_get(vf, "net");
        const char *text = json_object_to_json_string(vf);
        cr_assert(net, "no net in %s", text);
        cr_expect_str_eq(jstr(net, "pf") ? jstr(net, "pf") : "", NET_PF, "%s", text);
        cr_expect_str_eq(jstr(net, "pf_interface") ? jstr(net, "pf_interface") : "", IFNAME, "%s",
                         text);
        cr_expect_eq(jint(net, "vf_index"), 1, "%s", text);
        /* The interface is not on this machine: said so, no settings made up. */
        cr_expect(jstr(net, "error") && !json_object_object_get_ex(net, "mac", NULL), "%s", text);
        json_object_put(vf);

        const char *no_net[] = {NVME_VF, NET_PF, "0000:00:02.0"};
        for (size_t i = 0; i < ARRAY_SIZE(no_net); i++) {
                struct json_object *d = get_device(h, no_net[i]);
                struct json_object *n = NULL;
                cr_expect(json_object_object_get_ex(d, "net", &n) && n == NULL,
                          "%s: net should be null: %s", no_net[i], json_object_to_json_string(d));
                json_object_put(d);
        }
}

Test(vf_net, refusals_name_the_reason)
{
        _cleanup_(fixture_freep) struct fixture *fx = net_fixture();
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        expect_error(h, "PUT", "/v1/devices/" NVME_VF "/net", "{\"vlan\":5}", 409,
                     "not_a_network_function");
        expect_error(h, "PUT", NET_PATH, "{\"vlan\":5}", 409, "interface_not_found");
        expect_error(h, "PUT", "/v1/devices/" NET_PF "/net", "{\"vlan\":5}", 400, "not_a_vf");
        expect_error(h, "PUT", "/v1/devices/0000:09:00.0/net", "{\"vlan\":5}", 404,
                     "device_not_found");
        const char *bad[] = {
                "{\"vlan\":4095}",
                "{\"vlan\":-1}",
                "{\"qos\":8}",
                "{\"mac\":\"01:00:5e:00:00:01\"}",
                "{\"mac\":\"00:00:00:00:00:00\"}",
                "{\"mac\":\"02:00:00:00:00\"}",
                "{\"link_state\":\"on\"}",
                "{\"max_tx_rate\":4294967296}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                expect_error(h, "PUT", NET_PATH, bad[i], 400, "invalid_value");
        expect_error(h, "PUT", NET_PATH, "{\"vlan\":5,\"colour\":1}", 400, "unknown_field");
        expect_error(h, "PUT", NET_PATH, "{\"trust\":1}", 400, "wrong_type");
        expect_error(h, "PUT", NET_PATH, "{}", 400, "missing_field");
}

Test(vf_net, pool_templates_are_strict_and_shown)
{
        _cleanup_(fixture_freep) struct fixture *fx = net_fixture();
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *o = call(h, "POST", "/v1/pools",
                                     "{\"name\":\"nics\",\"selector\":{\"physfn\":\"" NET_PF
                                     "\"},\"net\":{\"vlan\":100,\"trust\":true}}",
                                     201);
        struct json_object *net = json_object_object_get(o, "net");
        cr_expect(jint(net, "vlan") == 100 && jint(net, "qos") == 0 &&
                          json_object_get_boolean(json_object_object_get(net, "trust")),
                  "pool answer %s", json_object_to_json_string(o));
        json_object_put(o);
        o = call(h, "GET", "/v1/pools/nics", NULL, 200);
        cr_expect(jint(json_object_object_get(o, "net"), "vlan") == 100, "GET pool: %s",
                  json_object_to_json_string(o));
        json_object_put(o);

        const char *bad[][2] = {
                {"{\"vlan\":5000}", "invalid_value"},
                {"{\"qos\":3}", "invalid_value"},
                {"{\"trust\":1}", "invalid_value"},
                {"{}", "invalid_value"},
                {"{\"colour\":1}", "unknown_field"},
                {"{\"mac\":\"02:00:00:00:00:01\"}", "unknown_field"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *body = util_strdup_printf(
                        "{\"name\":\"p%zu\",\"selector\":{\"physfn\":\"" NET_PF "\"},\"net\":%s}",
                        i, bad[i][0]);
                expect_error(h, "POST", "/v1/pools", body, 400, bad[i][1]);
        }
}

/* Network settings asked for at allocation: every refusal comes before anything changes,
 * so nothing is allocated and the VF keeps its driver (none). */
Test(vf_net, allocation_refusals_allocate_nothing)
{
        _cleanup_(fixture_freep) struct fixture *fx = net_fixture();
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        json_object_put(call(h, "POST", "/v1/pools",
                             "{\"name\":\"nics\",\"selector\":{\"physfn\":\"" NET_PF
                             "\"},\"net\":{\"vlan\":100}}",
                             201));

        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"vm-1\",\"pool\":\"nics\"}", 409,
                     "interface_not_found");
        expect_error(h, "POST", "/v1/allocations",
                     "{\"owner\":\"vm-1\",\"device\":\"" NET_VF1 "\",\"mac\":\"auto\"}", 409,
                     "interface_not_found");
        expect_error(h, "POST", "/v1/allocations",
                     "{\"owner\":\"vm-1\",\"device\":\"" NVME_VF "\",\"mac\":\"auto\"}", 409,
                     "not_a_network_function");
        expect_error(h, "POST", "/v1/allocations",
                     "{\"owner\":\"vm-1\",\"device\":\"" NET_VF1
                     "\",\"mac\":\"ff:ff:ff:ff:ff:ff\"}",
                     400, "invalid_value");
        struct json_object *list = call(h, "GET", "/v1/allocations", NULL, 200);
        cr_expect_eq(json_object_array_length(json_object_object_get(list, "allocations")), 0,
                     "allocations after the refusals: %s", json_object_to_json_string(list));
        json_object_put(list);
        expect_sysfs_driver(fx, NET_VF1, "");
        expect_sysfs_driver(fx, NVME_VF, "");
}
