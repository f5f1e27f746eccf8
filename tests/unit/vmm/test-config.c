/* SPDX-License-Identifier: MIT */
/* iovd-vmm's configuration: the JSON of POST /v1/vms (read by the contract's parser),
 * defaults and validation after command-line overrides. */
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "util/util.h"
#include "vmm/vmm.h"

/* c initialized and json parsed into it, which must succeed. */
static void parse_ok(struct iov_vmm_config *c, const char *json)
{
        vmm_config_init(c);
        _cleanup_free_ char *error = NULL;
        int r = vmm_config_parse_json(c, json, &error);
        cr_assert_eq(r, 0, "parse: %d %s", r, error ? error : "");
}

Test(vmm_config, parses_the_api_json)
{
        struct iov_vmm_config c;
        parse_ok(&c, "{\"name\":\"vm1\",\"vcpus\":2,\"memory_mib\":512,\"kernel\":\"/k\","
                     "\"initrd\":\"/i\",\"cmdline\":\"console=ttyS0\","
                     "\"devices\":[{\"type\":\"virtio-rng\"}]}");
        cr_expect_str_eq(c.spec.name, "vm1");
        cr_expect_eq(c.spec.vcpus, 2u, "vcpus %u", c.spec.vcpus);
        cr_expect_eq(c.spec.memory_mib, 512u, "memory_mib %llu",
                     (unsigned long long)c.spec.memory_mib);
        cr_expect_str_eq(c.spec.kernel, "/k");
        cr_expect_str_eq(c.spec.initrd, "/i");
        cr_expect_str_eq(c.spec.cmdline, "console=ttyS0");
        cr_expect_eq(c.spec.n_devices, 1u, "devices %zu", c.spec.n_devices);
        cr_expect_eq(c.spec.devices[0].kind, IOV_VM_DEVICE_VIRTIO, "device kind %d",
                     (int)c.spec.devices[0].kind);
        int r = vmm_config_validate(&c, NULL);
        cr_expect_eq(r, 0, "validate gave %d", r);
        vmm_config_done(&c);
        cr_expect_null(c.spec.kernel, "config_done left the kernel");
}

Test(vmm_config, rejects_bad_json_and_fields)
{
        static const struct {
                const char *json;
                const char *message;
        } cases[] = {
                {"{", "not valid JSON"},
                {"[]", "must be an object"},
                {"{\"kernel\":\"/k\",\"vcpus\":\"2\"}", "field \"vcpus\" must be integer"},
                {"{\"kernel\":\"/k\",\"memory_mib\":-1}", "\"memory_mib\" must be 16..1048576"},
                {"{\"kernel\":5}", "field \"kernel\" must be string"},
                {"{\"kernel\":\"/k\",\"devices\":{}}", "field \"devices\" must be array"},
                {"{\"kernel\":\"/k\",\"colour\":\"red\"}", "unknown field \"colour\""},
                {"{\"vcpus\":1}", "missing field \"kernel\""},
                {"{\"kernel\":\"bzImage\"}", "must be an absolute path"},
                /* Device entries go through the same parser as POST /v1/vms: an unknown
                 * type is refused, not skipped. */
                {"{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio-pci\"}]}",
                 "unknown device type \"vfio-pci\""},
                {"{\"kernel\":\"/k\",\"devices\":[{\"type\":\"virtio-blk\"}]}", "needs \"path\""},
                /* The device nodes iovd passes: "fd:N" or a path, nothing else. */
                {"{\"kernel\":\"/k\",\"kvm\":5}", "\"kvm\" must be a path or \"fd:N\""},
                {"{\"kernel\":\"/k\",\"kvm\":\"kvm\"}", "\"kvm\" must be a path or \"fd:N\""},
                {"{\"kernel\":\"/k\",\"vfio_container\":null}",
                 "\"vfio_container\" must be a path or \"fd:N\""},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct iov_vmm_config c;
                vmm_config_init(&c);
                char *error = NULL;
                int r = vmm_config_parse_json(&c, cases[i].json, &error);
                cr_expect_eq(r, -EINVAL, "%s gave %d", cases[i].json, r);
                cr_expect(error && strstr(error, cases[i].message), "%s: message \"%s\"",
                          cases[i].json, error ? error : "(none)");
                cr_expect_null(c.spec.kernel, "%s: a refused file changed the config",
                               cases[i].json);
                free(error);
                vmm_config_done(&c);
        }
}

Test(vmm_config, validation_limits)
{
        struct iov_vmm_config c;
        vmm_config_init(&c);
        char *error = NULL;
        cr_expect_eq(vmm_config_validate(&c, &error), -EINVAL, "no kernel accepted");
        free(error);
        c.spec.kernel = strdup("bzImage"); /* the command line may name a relative file */
        cr_expect_eq(vmm_config_validate(&c, NULL), 0, "defaults rejected");
        c.spec.vcpus = 0;
        cr_expect_eq(vmm_config_validate(&c, NULL), -EINVAL, "0 vCPUs accepted");
        c.spec.vcpus = IOV_VM_MAX_VCPUS;
        cr_expect_eq(vmm_config_validate(&c, NULL), 0, "%d vCPUs rejected", IOV_VM_MAX_VCPUS);
        c.spec.vcpus = IOV_VM_MAX_VCPUS + 1;
        cr_expect_eq(vmm_config_validate(&c, NULL), -EINVAL, "%d vCPUs accepted",
                     IOV_VM_MAX_VCPUS + 1);
        c.spec.vcpus = 1;
        c.spec.memory_mib = 8;
        cr_expect_eq(vmm_config_validate(&c, NULL), -EINVAL, "8 MiB accepted");
        vmm_config_done(&c);
}

/* iovd names the device nodes it opened for the jailed VMM (which has no /dev). */
Test(vmm_config, takes_the_device_nodes_iovd_passed)
{
        struct iov_vmm_config c;
        parse_ok(&c, "{\"kernel\":\"fd:4\",\"kvm\":\"fd:3\","
                     "\"vfio_container\":\"fd:5\",\"devices\":[{\"type\":"
                     "\"vfio\",\"host\":\"0000:01:00.0\",\"vfio_group\":\"fd:6\"}]}");
        cr_expect_str_eq(c.kvm, "fd:3");
        cr_expect_str_eq(c.vfio_container, "fd:5");
        cr_assert_eq(c.spec.n_devices, 1u, "devices %zu", c.spec.n_devices);
        cr_expect_str_eq(c.spec.devices[0].vfio.vfio_group, "fd:6");
        vmm_config_done(&c);
        parse_ok(&c, "{\"kernel\":\"/k\"}");
        cr_expect_null(c.kvm, "no \"kvm\": /dev/kvm, kvm %s", c.kvm);
        cr_expect_null(c.vfio_container, "vfio_container %s", c.vfio_container);
        vmm_config_done(&c);
}
