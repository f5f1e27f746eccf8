/* SPDX-License-Identifier: MIT */
/* The VM definition: JSON of POST /v1/vms, defaults and validation. */
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "util/util.h"
#include "vmm/vmm.h"

Test(vmm_config, parses_the_api_json)
{
        struct iov_vmm_config c;
        vmm_config_init(&c);
        _cleanup_free_ char *error = NULL;
        int r = vmm_config_parse_json(
                &c,
                "{\"name\":\"vm1\",\"vcpus\":2,\"memory_mib\":512,\"kernel\":\"/k\","
                "\"initrd\":\"/i\",\"cmdline\":\"console=ttyS0\",\"devices\":[{\"type\":\"x\"}]}",
                &error);
        cr_assert_eq(r, 0, "parse: %d %s", r, error ? error : "");
        cr_expect_str_eq(c.name, "vm1");
        cr_expect_eq(c.vcpus, 2u, "vcpus %u", c.vcpus);
        cr_expect_eq(c.memory_mib, 512u, "memory_mib %llu", (unsigned long long)c.memory_mib);
        cr_expect_str_eq(c.kernel, "/k");
        cr_expect_str_eq(c.initrd, "/i");
        cr_expect_str_eq(c.cmdline, "console=ttyS0");
        cr_expect_eq(json_object_array_length(c.devices), 1u, "devices %s",
                     json_object_to_json_string(c.devices));
        r = vmm_config_validate(&c, NULL);
        cr_expect_eq(r, 0, "validate gave %d", r);
        vmm_config_done(&c);
        cr_expect_null(c.kernel, "config_done left the kernel");
}

Test(vmm_config, rejects_bad_json_and_fields)
{
        static const struct {
                const char *json;
                const char *message;
        } cases[] = {
                {"{", "not valid JSON"},
                {"[]", "must be a JSON object"},
                {"{\"vcpus\":\"2\"}", "\"vcpus\" must be a non-negative integer"},
                {"{\"memory_mib\":-1}", "\"memory_mib\" must be a non-negative integer"},
                {"{\"kernel\":5}", "\"kernel\" must be a string"},
                {"{\"devices\":{}}", "\"devices\" must be an array"},
                {"{\"kernel\":\"/k\",\"colour\":\"red\"}", "unknown field \"colour\""},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct iov_vmm_config c;
                vmm_config_init(&c);
                char *error = NULL;
                int r = vmm_config_parse_json(&c, cases[i].json, &error);
                cr_expect_eq(r, -EINVAL, "%s gave %d", cases[i].json, r);
                cr_expect(error && strstr(error, cases[i].message), "%s: message \"%s\"",
                          cases[i].json, error ? error : "(none)");
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
        c.kernel = strdup("/k");
        cr_expect_eq(vmm_config_validate(&c, NULL), 0, "defaults rejected");
        c.vcpus = 0;
        cr_expect_eq(vmm_config_validate(&c, NULL), -EINVAL, "0 vCPUs accepted");
        c.vcpus = 32;
        cr_expect_eq(vmm_config_validate(&c, NULL), 0, "32 vCPUs rejected");
        c.vcpus = 33;
        cr_expect_eq(vmm_config_validate(&c, NULL), -EINVAL, "33 vCPUs accepted");
        c.vcpus = 1;
        c.memory_mib = 8;
        cr_expect_eq(vmm_config_validate(&c, NULL), -EINVAL, "8 MiB accepted");
        vmm_config_done(&c);
}
