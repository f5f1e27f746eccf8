/* SPDX-License-Identifier: MIT */
/* Pool definitions: strict parsing, the durable round trip, and selector matching. */
#include <criterion/criterion.h>

#include "alloc/alloc.h"

static struct iov_pool *parse_ok(const char *text)
{
        struct json_object *o = json_tokener_parse(text);
        cr_assert_not_null(o, "test JSON does not parse: %s", text);
        struct iov_pool *pool = NULL;
        struct iov_pool_parse_error e = {0};
        int r = pool_from_json(o, false, &pool, &e);
        cr_assert_eq(r, 0, "pool_from_json(%s) = %d: %s: %s", text, r, e.field, e.message);
        json_object_put(o);
        return pool;
}

static void parse_fails(const char *text, const char *field, const char *code)
{
        struct json_object *o = json_tokener_parse(text);
        cr_assert_not_null(o, "test JSON does not parse: %s", text);
        struct iov_pool *pool = NULL;
        struct iov_pool_parse_error e = {0};
        int r = pool_from_json(o, false, &pool, &e);
        cr_assert_eq(r, -EINVAL, "pool_from_json(%s) = %d, expected -EINVAL", text, r);
        cr_assert_null(pool, "a pool was returned for %s", text);
        cr_assert_str_eq(e.field, field, "field for %s: %s (%s)", text, e.field, e.message);
        cr_assert_str_eq(e.code, code, "code for %s: %s", text, e.code);
        cr_assert_gt(strlen(e.message), 0u, "no message for %s", text);
        json_object_put(o);
}

Test(pools, names_are_bounded_and_plain)
{
        cr_assert(pool_name_is_valid("nvme-vfs_0"), "nvme-vfs_0 refused");
        cr_assert(pool_name_is_valid("a"), "a refused");
        const char *bad[] = {"", "-x", "_x", "Upper", "a b", "a/b", "a.b", "é"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                cr_assert_not(pool_name_is_valid(bad[i]), "\"%s\" accepted", bad[i]);
        char longest[IOV_POOL_NAME_MAX + 2];
        memset(longest, 'a', sizeof(longest) - 1);
        longest[sizeof(longest) - 1] = '\0';
        cr_assert_not(pool_name_is_valid(longest), "a %zu-character name accepted",
                      strlen(longest));
        longest[IOV_POOL_NAME_MAX] = '\0';
        cr_assert(pool_name_is_valid(longest), "a %d-character name refused", IOV_POOL_NAME_MAX);
}

Test(pools, bad_definitions_name_the_field)
{
        parse_fails("{\"name\":\"Bad\",\"selector\":{\"vendor_id\":\"8086\"}}", "name",
                    "invalid_value");
        parse_fails("{\"name\":\"p\"}", "selector", "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{}}", "selector", "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"vendor_id\":\"808\"}}", "selector.vendor_id",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"vendor_id\":32902}}", "selector.vendor_id",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"device_id\":\"xyz1\"}}", "selector.device_id",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"class\":\"020\"}}", "selector.class",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"driver\":\"a/b\"}}", "selector.driver",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"physfn\":\"01:00.0\"}}", "selector.physfn",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"numa_node\":-1}}", "selector.numa_node",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"addresses\":[]}}", "selector.addresses",
                    "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"addresses\":[\"0000:01:00.1\","
                    "\"0000:01:00.1\"]}}",
                    "selector.addresses", "invalid_value");
        parse_fails("{\"name\":\"p\",\"selector\":{\"colour\":\"red\"}}", "selector.colour",
                    "unknown_field");
        parse_fails("{\"name\":\"p\",\"selector\":{\"numa_node\":0},\"created_usec\":5}",
                    "created_usec", "unknown_field");
}

Test(pools, durable_form_round_trips)
{
        struct iov_pool *pool = parse_ok(
                "{\"name\":\"vfs\",\"selector\":{\"vendor_id\":\"8086\",\"device_id\":\"154C\","
                "\"class\":\"0200\",\"driver\":\"iavf\",\"physfn\":\"0000:01:00.0\","
                "\"numa_node\":1,\"addresses\":[\"0000:01:02.0\",\"0000:01:02.1\"]}}");
        struct json_object *saved = pool_to_json(pool);
        struct iov_pool *again = NULL;
        struct iov_pool_parse_error e = {0};
        int r = pool_from_json(saved, true, &again, &e);
        cr_assert_eq(r, 0, "reloading %s: %s", json_object_to_json_string(saved), e.message);
        struct json_object *resaved = pool_to_json(again);
        cr_assert_str_eq(json_object_to_json_string(saved), json_object_to_json_string(resaved),
                         "round trip differs");
        const char *sel = json_object_to_json_string(json_object_object_get(saved, "selector"));
        cr_assert(strstr(sel, "\"154c\""), "device_id not normalized to lowercase: %s", sel);
        json_object_put(saved);
        json_object_put(resaved);
        pool_free(pool);
        pool_free(again);
}

static struct iov_pci_device vf(const char *address, const char *pf)
{
        struct iov_pci_device d = {
                .vendor_id = 0x8086,
                .device_id = 0x154c,
                .class_code = 0x020000,
                .numa_node = 1,
                .is_vf = true,
        };
        cr_assert_eq(pci_address_parse(address, &d.address), 0);
        cr_assert_eq(pci_address_parse(pf, &d.physfn), 0);
        return d;
}

Test(pools, every_criterion_must_match)
{
        struct iov_pool *pool = parse_ok("{\"name\":\"vfs\",\"selector\":{\"vendor_id\":\"8086\","
                                         "\"class\":\"02\",\"physfn\":\"0000:01:00.0\","
                                         "\"numa_node\":1}}");
        struct iov_pci_device d = vf("0000:01:02.0", "0000:01:00.0");
        cr_assert(pool_selector_match(&pool->selector, &d, NULL), "matching VF refused");

        struct iov_pci_device other_pf = vf("0000:02:02.0", "0000:02:00.0");
        cr_assert_not(pool_selector_match(&pool->selector, &other_pf, NULL),
                      "VF of another PF matched");
        struct iov_pci_device wrong_node = d;
        wrong_node.numa_node = 0;
        cr_assert_not(pool_selector_match(&pool->selector, &wrong_node, NULL),
                      "VF on NUMA node 0 matched");
        struct iov_pci_device storage = d;
        storage.class_code = 0x010802;
        cr_assert_not(pool_selector_match(&pool->selector, &storage, NULL),
                      "class 010802 matched class prefix 02");
        struct iov_pci_device not_vf = d;
        not_vf.is_vf = false;
        cr_assert_not(pool_selector_match(&pool->selector, &not_vf, NULL),
                      "a function without physfn matched a physfn selector");
        pool_free(pool);

        pool = parse_ok("{\"name\":\"two\",\"selector\":{\"driver\":\"iavf\","
                        "\"addresses\":[\"0000:01:02.1\",\"0000:01:02.0\"]}}");
        cr_assert(pool_selector_match(&pool->selector, &d, "iavf"), "listed address refused");
        cr_assert_not(pool_selector_match(&pool->selector, &d, NULL),
                      "driver selector matched a driverless device");
        struct iov_pci_device unlisted = vf("0000:01:02.2", "0000:01:00.0");
        cr_assert_not(pool_selector_match(&pool->selector, &unlisted, "iavf"),
                      "unlisted address matched");
        pool_free(pool);
}
