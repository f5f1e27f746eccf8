/* SPDX-License-Identifier: MIT */
/* Allocation records and the registry: durable round trip, malformed records refused
 * with the file left alone, lookups that never hand a member out twice. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "alloc/alloc-internal.h"
#include "daemon/daemon.h"

static const char record[] =
        "{\"id\":\"a-0123456789abcdef\",\"owner\":\"vm-1\",\"pool\":\"vfs\",\"state\":\"active\","
        "\"iommu_group\":7,\"members\":[{\"address\":\"0000:01:00.1\",\"original_driver\":"
        "\"iavf\",\"original_override\":null,\"is_bridge\":false},{\"address\":"
        "\"0000:00:1c.0\",\"original_driver\":\"pcieport\",\"original_override\":null,"
        "\"is_bridge\":true}],\"created_usec\":1700000000000000,\"lost_reason\":null}";

static struct iov_allocation *parse(const char *text, int expected)
{
        struct json_object *o = json_tokener_parse(text);
        cr_assert_not_null(o, "test JSON does not parse: %s", text);
        struct iov_allocation *a = NULL;
        int r = allocation_from_json(o, &a);
        cr_assert_eq(r, expected, "allocation_from_json(%s) = %d, expected %d", text, r, expected);
        json_object_put(o);
        return a;
}

Test(records, durable_form_round_trips)
{
        struct iov_allocation *a = parse(record, 0);
        cr_assert_str_eq(a->id, "a-0123456789abcdef");
        cr_assert_eq(a->n_members, 2u, "members %zu", a->n_members);
        cr_assert_str_eq(a->members[0].original_driver, "iavf");
        cr_assert(a->members[1].is_bridge, "bridge flag lost");
        struct json_object *saved = allocation_to_json(a);
        struct json_object *expected = json_tokener_parse(record);
        cr_assert(json_object_equal(saved, expected), "round trip gives %s",
                  json_object_to_json_string(saved));
        json_object_put(saved);
        json_object_put(expected);

        struct json_object *api = allocation_to_api_json(a, "/dev");
        cr_assert_str_eq(json_object_get_string(json_object_object_get(api, "vfio_group")),
                         "/dev/vfio/7", "vfio_group in %s", json_object_to_json_string(api));
        struct json_object *devices = json_object_object_get(api, "devices");
        cr_assert_eq(json_object_array_length(devices), 1u, "bridges listed: %s",
                     json_object_to_json_string(devices));
        cr_assert_str_eq(json_object_get_string(json_object_object_get(api, "created")),
                         "2023-11-14T22:13:20Z", "created in %s", json_object_to_json_string(api));
        json_object_put(api);
        allocation_free(a);
}

/* Replace the first occurrence of from with to in the good record. */
static char *mutate(const char *from, const char *to)
{
        const char *at = strstr(record, from);
        cr_assert_not_null(at, "'%s' not in the record", from);
        return util_strdup_printf("%.*s%s%s", (int)(at - record), record, to, at + strlen(from));
}

Test(records, malformed_records_are_refused)
{
        static const char *const cases[][2] = {
                {"\"state\":\"active\"", "\"state\":\"borrowed\""},
                {"\"iommu_group\":7", "\"iommu_group\":-7"},
                {"\"iommu_group\":7", "\"iommu_group\":\"7\""},
                {"\"address\":\"0000:01:00.1\"", "\"address\":\"../../etc\""},
                {"\"owner\":\"vm-1\",", ""},
                {"\"is_bridge\":false", "\"is_bridge\":0"},
                {"\"id\":\"a-0123456789abcdef\"", "\"id\":\"a-0123456789abcdef0123456789\""},
                {"\"created_usec\":1700000000000000", "\"created_usec\":null"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *text = mutate(cases[i][0], cases[i][1]);
                struct iov_allocation *a = parse(text, -EBADMSG);
                cr_assert_null(a, "a record came back for %s", text);
        }
        cr_assert_null(parse("[]", -EBADMSG), "an array parsed as a record");
        _cleanup_free_ char *no_members = util_strdup_printf(
                "{\"id\":\"a-1\",\"owner\":\"o\",\"pool\":null,\"state\":\"active\","
                "\"iommu_group\":1,\"members\":[],\"created_usec\":1,\"lost_reason\":null}");
        cr_assert_null(parse(no_members, -EBADMSG), "a record without members parsed");
}

static char *tmp_state_dir(void)
{
        char tmpl[] = "/tmp/iovd-test-records-XXXXXX";
        cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
        return strdup(tmpl);
}

static void write_allocations(const char *dir, const char *items)
{
        _cleanup_free_ char *path = util_path_join(dir, "allocations.json", NULL);
        _cleanup_free_ char *text = util_strdup_printf(
                "{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"allocations\","
                "\"items\":[%s]}\n",
                items);
        cr_assert_eq(util_write_file_atomic(path, text, strlen(text), 0600), 0);
}

Test(records, registry_refuses_bad_items_and_keeps_the_file)
{
        _cleanup_free_ char *dir = tmp_state_dir();
        struct iov_state *state = NULL;
        cr_assert_eq(state_open(dir, &state), 0);
        _cleanup_free_ char *bad = mutate("\"state\":\"active\"", "\"state\":\"borrowed\"");
        _cleanup_free_ char *duplicate = util_strdup_printf("%s,%s", record, record);
        const char *const bodies[] = {bad, duplicate};
        for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
                write_allocations(dir, bodies[i]);
                _cleanup_free_ char *path = util_path_join(dir, "allocations.json", NULL);
                _cleanup_free_ char *before = NULL, *after = NULL;
                cr_assert_eq(util_read_file(path, 1 << 20, &before, NULL), 0);
                struct iov_registry *reg = NULL;
                cr_assert_eq(registry_new(&reg), 0);
                int r = registry_load(reg, state);
                cr_assert_eq(r, -EBADMSG, "registry_load of case %zu = %d", i, r);
                registry_free(reg);
                cr_assert_eq(util_read_file(path, 1 << 20, &after, NULL), 0);
                cr_assert_str_eq(after, before, "case %zu: the file was rewritten", i);
        }
        state_free(state);
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
}

Test(records, lookups_find_members_but_not_bridges)
{
        _cleanup_free_ char *dir = tmp_state_dir();
        struct iov_state *state = NULL;
        cr_assert_eq(state_open(dir, &state), 0);
        write_allocations(dir, record);
        struct iov_registry *reg = NULL;
        cr_assert_eq(registry_new(&reg), 0);
        cr_assert_eq(registry_load(reg, state), 0);

        struct iov_pci_address vf, bridge, other;
        pci_address_parse("0000:01:00.1", &vf);
        pci_address_parse("0000:00:1c.0", &bridge);
        pci_address_parse("0000:01:00.2", &other);
        struct iov_allocation *a = registry_find_by_device(reg, &vf);
        cr_assert_not_null(a, "the VF is not found held");
        cr_assert_null(registry_find_by_device(reg, &bridge), "a bridge counted as held");
        cr_assert_null(registry_find_by_device(reg, &other), "an unrelated VF counted as held");
        cr_assert_eq(registry_find_by_group(reg, 7), a, "group 7 owner not found");
        cr_assert_eq(registry_find_allocation(reg, "a-0123456789abcdef"), a);

        /* A lost allocation still holds its devices but no longer owns the group number. */
        registry_set_state(reg, a, IOV_ALLOCATION_LOST, "0000:01:00.1 vanished");
        cr_assert_eq(registry_find_by_device(reg, &vf), a, "lost allocation released its VF");
        cr_assert_null(registry_find_by_group(reg, 7), "lost allocation still owns group 7");
        cr_assert_eq(registry_save_allocation(reg, state, a), 0);
        registry_free(reg);

        cr_assert_eq(registry_new(&reg), 0);
        cr_assert_eq(registry_load(reg, state), 0);
        a = registry_find_allocation(reg, "a-0123456789abcdef");
        cr_assert_not_null(a);
        cr_assert_eq(a->state, IOV_ALLOCATION_LOST, "state %d after reload", a->state);
        cr_assert_str_eq(a->lost_reason, "0000:01:00.1 vanished");
        registry_free(reg);
        state_free(state);
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
}

/* The VF network settings an allocation changed survive a restart exactly: what the VF
 * had (put back on release), what it got, where it lives. */
Test(records, network_settings_round_trip)
{
        static const char with_net[] =
                "{\"id\":\"a-00000000000000aa\",\"owner\":\"vm-2\",\"pool\":\"nics\",\"state\":"
                "\"active\",\"iommu_group\":9,\"members\":[{\"address\":\"0000:02:10.0\","
                "\"original_driver\":null,\"original_override\":null,\"is_bridge\":false}],"
                "\"created_usec\":1700000000000000,\"lost_reason\":null,\"net\":{\"vf\":"
                "\"0000:02:10.0\",\"pf_interface\":\"eth0\",\"vf_index\":0,\"original\":{\"mac\":"
                "\"00:00:00:00:00:00\",\"vlan\":0,\"qos\":0,\"spoof_check\":true,\"trust\":false,"
                "\"link_state\":\"auto\",\"min_tx_rate\":0,\"max_tx_rate\":0},\"applied\":{\"mac\":"
                "\"02:11:22:33:44:55\",\"vlan\":100,\"qos\":3,\"spoof_check\":null,\"trust\":true,"
                "\"link_state\":null,\"min_tx_rate\":null,\"max_tx_rate\":null}}}";
        struct iov_allocation *a = parse(with_net, 0);
        cr_assert_not_null(a->net, "net record lost");
        cr_expect_str_eq(a->net->ifname, "eth0");
        cr_expect(a->net->applied && a->net->now.vlan == 100 && a->net->now.qos == 3,
                  "applied vlan %u qos %u", a->net->now.vlan, a->net->now.qos);
        cr_expect(a->net->original.has_mac && a->net->original.spoof_check == 1,
                  "original mac %d spoof %d", a->net->original.has_mac,
                  a->net->original.spoof_check);
        struct json_object *saved = allocation_to_json(a);
        struct json_object *expected = json_tokener_parse(with_net);
        cr_expect(json_object_equal(saved, expected), "round trip gives %s",
                  json_object_to_json_string(saved));
        json_object_put(saved);
        json_object_put(expected);
        allocation_free(a);
        parse("{\"id\":\"a-00000000000000aa\",\"owner\":\"vm-2\",\"pool\":null,\"state\":"
              "\"active\",\"iommu_group\":9,\"members\":[],\"created_usec\":1,\"lost_reason\":"
              "null,\"net\":{\"vf\":\"02:10.0\",\"pf_interface\":\"eth0\",\"vf_index\":0,"
              "\"original\":{}}}",
              -EBADMSG);
}

/* A VM's allocation keeps its holder, the function given to the VM and a failed reset;
 * records no VM ever held stay as they were (the round trip above). */
Test(records, vm_holder_round_trips)
{
        static const char vm_record[] =
                "{\"id\":\"a-00000000000000cc\",\"owner\":\"web\",\"pool\":null,\"state\":"
                "\"active\",\"iommu_group\":30,\"members\":[{\"address\":\"0000:03:00.0\","
                "\"original_driver\":null,\"original_override\":null,\"is_bridge\":false},"
                "{\"address\":\"0000:03:00.1\",\"original_driver\":null,\"original_override\":"
                "null,\"is_bridge\":false}],\"created_usec\":1,\"lost_reason\":null,\"device\":"
                "\"0000:03:00.1\",\"vm\":\"vm-00000000000000aa\",\"adopted\":true,"
                "\"reset_failure\":\"0000:03:00.1: reset failed\"}";
        struct iov_allocation *a = parse(vm_record, 0);
        cr_assert_str_eq(a->vm, "vm-00000000000000aa");
        cr_assert(a->adopted, "adopted lost");
        struct json_object *saved = allocation_to_json(a);
        struct json_object *expected = json_tokener_parse(vm_record);
        cr_assert(json_object_equal(saved, expected), "round trip gives %s",
                  json_object_to_json_string(saved));
        json_object_put(saved);
        json_object_put(expected);
        struct json_object *api = allocation_to_api_json(a, "/dev");
        cr_assert_str_eq(json_object_get_string(json_object_object_get(api, "device")),
                         "0000:03:00.1", "device in %s", json_object_to_json_string(api));
        json_object_put(api);
        allocation_free(a);
        parse("{\"id\":\"a-00000000000000cc\",\"owner\":\"web\",\"pool\":null,\"state\":"
              "\"active\",\"iommu_group\":30,\"members\":[{\"address\":\"0000:03:00.0\","
              "\"original_driver\":null,\"original_override\":null,\"is_bridge\":false}],"
              "\"created_usec\":1,\"lost_reason\":null,\"vm\":7}",
              -EBADMSG);
}

/* A record of group g with one member, its address made from g. */
static struct iov_allocation *numbered(unsigned g)
{
        _cleanup_free_ char *text = util_strdup_printf(
                "{\"id\":\"a-%016x\",\"owner\":\"o\",\"pool\":null,\"state\":\"active\","
                "\"iommu_group\":%u,\"members\":[{\"address\":\"%04x:%02x:%02x.%u\","
                "\"original_driver\":null,\"original_override\":null,\"is_bridge\":false}],"
                "\"created_usec\":1,\"lost_reason\":null}",
                g, g, g >> 16, (g >> 8) & 0xff, (g >> 3) & 0x1f, g & 7);
        return parse(text, 0);
}

Test(records, registry_claims_at_most_the_allocations_limit)
{
        struct iov_registry *reg = NULL;
        cr_assert_eq(registry_new(&reg), 0);
        const char *why = NULL;
        for (unsigned g = 0; g < IOV_ALLOCATIONS_MAX; g++) {
                int r = registry_claim_allocation(reg, numbered(g), &why);
                cr_assert_eq(r, 0, "claim %u: %d (%s)", g, r, why ? why : "");
        }
        int r = registry_claim_allocation(reg, numbered(IOV_ALLOCATIONS_MAX), &why);
        cr_expect_eq(r, -EBUSY, "claim past the limit: %d", r);
        cr_expect_str_eq(why ? why : "", "too_many_allocations", "refused as %s", why);
        cr_expect_eq(reg->n_allocations, (size_t)IOV_ALLOCATIONS_MAX, "%zu held",
                     reg->n_allocations);
        registry_free(reg);
}
