/* SPDX-License-Identifier: MIT */
/* vm-contract: what iovd and iovd-vmm agree on. The stats line and the definition each
 * have one writer and one parser; these tests hold the two to each other. */
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "util/util.h"
#include "vmm/contract/vm-contract.h"

static struct json_object *parse(const char *text)
{
        struct json_object *o = json_tokener_parse(text);
        cr_assert_not_null(o, "test JSON does not parse: %s", text);
        return o;
}

Test(vm_contract, state_names_round_trip)
{
        static const char *const names[] = {"created", "running", "paused", "stopped", "crashed"};
        cr_assert_eq(ARRAY_SIZE(names), IOV_VM_STATE_COUNT, "%d states", IOV_VM_STATE_COUNT);
        for (unsigned st = 0; st < IOV_VM_STATE_COUNT; st++) {
                cr_expect_str_eq(vm_state_to_string(st), names[st], "state %u", st);
                enum iov_vm_state back = IOV_VM_STATE_COUNT;
                int r = vm_state_from_string(names[st], &back);
                cr_expect(r == 0 && back == st, "%s came back as %d (%d)", names[st], back, r);
        }
        enum iov_vm_state untouched = IOV_VM_STATE_PAUSED;
        cr_expect_eq(vm_state_from_string("sleeping", &untouched), -EINVAL, "sleeping taken");
        cr_expect_eq(vm_state_from_string(NULL, &untouched), -EINVAL, "NULL taken");
        cr_expect_eq(untouched, IOV_VM_STATE_PAUSED, "a refused name set the state to %d",
                     untouched);
}

Test(vm_contract, exit_statuses_are_the_documented_numbers)
{
        /* iovd-vmm's README and scripts use the numbers themselves. */
        cr_expect_eq(IOV_VMM_EXIT_STOPPED, 0);
        cr_expect_eq(IOV_VMM_EXIT_BUILD_FAILED, 1);
        cr_expect_eq(IOV_VMM_EXIT_USAGE, 2);
        cr_expect_eq(IOV_VMM_EXIT_GUEST_CRASH, 3);
}

Test(vm_contract, stats_line_round_trips)
{
        struct json_object *stats = parse("{\"exits\":{\"io\":12,\"hlt\":1},\"markers\":"
                                          "[{\"value\":1,\"usec\":5,\"count\":1}],"
                                          "\"state\":\"stopped\",\"reason\":\"a\\nb \\\"c\\\"\"}");
        _cleanup_free_ char *line = NULL;
        cr_assert_eq(vm_stats_line_format(stats, &line), 0);
        cr_expect(strncmp(line, IOV_VMM_STATS_LINE_PREFIX, strlen(IOV_VMM_STATS_LINE_PREFIX)) == 0,
                  "line \"%s\" lacks the prefix", line);
        cr_expect_eq(strchr(line, '\n'), line + strlen(line) - 1, "not one line: \"%s\"", line);

        struct json_object *back = NULL;
        int r = vm_stats_line_parse(line, &back);
        cr_assert_eq(r, 0, "parse of \"%s\": %d", line, r);
        cr_expect(json_object_equal(stats, back), "round trip changed %s into %s",
                  json_object_to_json_string(stats), json_object_to_json_string(back));
        json_object_put(back);

        /* In a log: other lines around it, the last stats line wins. */
        _cleanup_free_ char *log = util_strdup_printf(
                "iovd-vmm: stats {\"old\":1}\nguest says hi\n%siovd-vmm: stopped: a\n", line);
        back = NULL;
        r = vm_stats_line_find(log, &back);
        cr_assert_eq(r, 0, "find in log: %d", r);
        cr_expect(json_object_equal(stats, back), "found %s", json_object_to_json_string(back));
        json_object_put(back);
        json_object_put(stats);
}

Test(vm_contract, stats_line_refusals)
{
        struct json_object *o = NULL;
        cr_expect_eq(vm_stats_line_parse("iovd-vmm: stopped: x", &o), -ENOMSG);
        cr_expect_eq(vm_stats_line_parse("iovd-vmm: stats [1]", &o), -EBADMSG);
        cr_expect_eq(vm_stats_line_parse("iovd-vmm: stats {\"a\":1} trailing", &o), -EBADMSG);
        cr_expect_eq(vm_stats_line_parse("iovd-vmm: stats {\"a\":", &o), -EBADMSG);
        cr_expect_null(o, "a refused line returned %s", json_object_to_json_string(o));
        cr_expect_eq(vm_stats_line_find("no\nstats\nhere\n", &o), -ENOMSG);
        struct json_object *array = json_object_new_array();
        char *line = NULL;
        cr_expect_eq(vm_stats_line_format(array, &line), -EINVAL, "an array was formatted");
        cr_expect_null(line);
        json_object_put(array);
}

static void expect_refused(const char *json, enum iov_vm_spec_problem problem, const char *words)
{
        struct json_object *o = parse(json);
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        int r = vm_spec_parse_json(o, 0, &spec, &err);
        cr_expect_eq(r, -EINVAL, "%s gave %d", json, r);
        cr_expect_eq(err.problem, problem, "%s: problem %d, not %d (%s)", json, err.problem,
                     problem, err.message);
        cr_expect(strstr(err.message, words), "%s: message \"%s\"", json, err.message);
        json_object_put(o);
}

Test(vm_contract, spec_refusals)
{
        expect_refused("[]", IOV_VM_SPEC_NOT_OBJECT, "object");
        expect_refused("{\"kernel\":\"/k\",\"gpus\":1}", IOV_VM_SPEC_UNKNOWN_FIELD, "\"gpus\"");
        expect_refused("{\"kernel\":\"/k\",\"vcpus\":1.5}", IOV_VM_SPEC_WRONG_TYPE, "integer");
        expect_refused("{\"kernel\":null}", IOV_VM_SPEC_WRONG_TYPE, "string");
        expect_refused("{\"name\":\"x\"}", IOV_VM_SPEC_MISSING_FIELD, "kernel");
        expect_refused("{\"kernel\":\"/k\",\"vcpus\":33}", IOV_VM_SPEC_INVALID_VALUE, "1..32");
        expect_refused("{\"kernel\":\"/k\",\"vcpus\":0}", IOV_VM_SPEC_INVALID_VALUE, "not 0");
        expect_refused("{\"kernel\":\"/k\",\"memory_mib\":8}", IOV_VM_SPEC_INVALID_VALUE, "16..");
        expect_refused("{\"kernel\":\"/k\",\"name\":\"bad name!\"}", IOV_VM_SPEC_INVALID_VALUE,
                       "letters");
        expect_refused("{\"kernel\":\"k\"}", IOV_VM_SPEC_INVALID_PATH, "absolute");
        expect_refused("{\"kernel\":\"/k\",\"initrd\":\"i\"}", IOV_VM_SPEC_INVALID_PATH,
                       "\"initrd\"");
        expect_refused("{\"kernel\":\"/k\",\"devices\":[1]}", IOV_VM_SPEC_INVALID_VALUE,
                       "\"devices\"[0]");
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"virtio-rng\"},"
                       "{\"type\":\"vfio-pci\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE,
                       "\"devices\"[1]: unknown device type \"vfio-pci\"");
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"virtio-x\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "virtio-x");
}

/* "vfio" entries naming a host function: accepted only with IOV_VM_SPEC_HOST_DEVICES (the
 * flag iovd-vmm --config passes, never the API), parsed once into the typed entry. */
Test(vm_contract, vfio_entries_only_for_the_vmm)
{
        const char *json = "{\"kernel\":\"/k\",\"devices\":[{\"type\":\"virtio-rng\"},"
                           "{\"type\":\"vfio\",\"host\":\"0000:00:0A.0\",\"guest_address\":5}]}";
        expect_refused(json, IOV_VM_SPEC_INVALID_DEVICE, "is for iovd-vmm --config");
        /* The device nodes iovd passes the VMM are never a client's to name. */
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"pool\":\"p\","
                       "\"vfio_group\":\"fd:3\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "unknown field \"vfio_group\"");
        expect_refused("{\"kernel\":\"/k\",\"kvm\":\"fd:3\"}", IOV_VM_SPEC_UNKNOWN_FIELD,
                       "\"kvm\"");

        struct json_object *o = parse(json);
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        int r = vm_spec_parse_json(o, IOV_VM_SPEC_HOST_DEVICES, &spec, &err);
        cr_assert_eq(r, 0, "%s gave %d (%s)", json, r, err.message);
        cr_assert_eq(spec.n_devices, 2, "%zu devices", spec.n_devices);
        cr_expect_eq(spec.devices[0].kind, IOV_VM_DEVICE_VIRTIO, "kind %d", spec.devices[0].kind);
        cr_assert_eq(spec.devices[1].kind, IOV_VM_DEVICE_VFIO, "kind %d", spec.devices[1].kind);
        cr_expect_str_eq(spec.devices[1].vfio.host, "0000:00:0a.0");
        cr_expect_eq(spec.devices[1].vfio.guest_slot, 5, "slot %u",
                     spec.devices[1].vfio.guest_slot);
        vm_spec_done(&spec);
        json_object_put(o);

        o = parse("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"host\":\"1:2:3\"}]}");
        r = vm_spec_parse_json(o, IOV_VM_SPEC_HOST_DEVICES, &spec, &err);
        cr_expect_eq(r, -EINVAL, "a bad host address gave %d", r);
        cr_expect(strstr(err.message, "\"devices\"[0]: vfio: \"host\""), "message \"%s\"",
                  err.message);
        json_object_put(o);
}

/* Through the API a vfio entry names exactly one of a pool, a device or an allocation;
 * the VMM's form ("host") is refused there, and the API's forms in the VMM's config. */
Test(vm_contract, vfio_entries_through_the_api)
{
        const char *json = "{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"pool\":"
                           "\"nics\"},{\"type\":\"vfio\",\"device\":\"0000:01:00.2\","
                           "\"guest_address\":7},{\"type\":\"vfio\",\"allocation\":"
                           "\"a-00112233aabbccdd\"}]}";
        struct json_object *o = parse(json);
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        int r = vm_spec_parse_json(o, 0, &spec, &err);
        cr_assert_eq(r, 0, "%s gave %d (%s)", json, r, err.message);
        cr_assert_eq(spec.n_devices, 3, "%zu devices", spec.n_devices);
        cr_expect_eq(spec.devices[0].vfio.source, IOV_VFIO_SOURCE_POOL, "source %d",
                     spec.devices[0].vfio.source);
        cr_expect_str_eq(spec.devices[0].vfio.pool, "nics");
        cr_expect_eq(spec.devices[1].vfio.source, IOV_VFIO_SOURCE_DEVICE, "source %d",
                     spec.devices[1].vfio.source);
        cr_expect_str_eq(spec.devices[1].vfio.host, "0000:01:00.2");
        cr_expect_eq(spec.devices[1].vfio.guest_slot, 7, "slot %u",
                     spec.devices[1].vfio.guest_slot);
        cr_expect_eq(spec.devices[2].vfio.source, IOV_VFIO_SOURCE_ALLOCATION, "source %d",
                     spec.devices[2].vfio.source);
        cr_expect_str_eq(spec.devices[2].vfio.allocation, "a-00112233aabbccdd");
        vm_spec_done(&spec);
        r = vm_spec_parse_json(o, IOV_VM_SPEC_HOST_DEVICES, &spec, &err);
        cr_expect_eq(r, -EINVAL, "the VMM took a pool entry: %d", r);
        json_object_put(o);

        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "exactly one of");
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"pool\":\"a\","
                       "\"device\":\"0000:01:00.2\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "exactly one of");
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"pool\":\"Bad "
                       "Name\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "\"pool\" must be a pool name");
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"device\":\"1:2\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "\"device\" must be a PCI address");
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"allocation\":"
                       "\"a/../x\"}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "\"allocation\" must be");
}

/* The VMM's entry for an API entry keeps every field but the source, and names the host
 * function: fields the daemon does not know reach the VMM unchanged. */
Test(vm_contract, vfio_host_entry_keeps_other_fields)
{
        struct json_object *entry = parse("{\"type\":\"vfio\",\"pool\":\"nics\","
                                          "\"guest_address\":5,\"extra\":{\"a\":1}}");
        struct json_object *out = NULL;
        cr_assert_eq(vfio_spec_to_host_entry(entry, "0000:01:00.3", &out), 0);
        const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
        cr_expect(!json_object_object_get_ex(out, "pool", NULL), "pool kept: %s", text);
        cr_expect_str_eq(json_object_get_string(json_object_object_get(out, "host")),
                         "0000:01:00.3", "%s", text);
        cr_expect_eq(json_object_get_int(json_object_object_get(out, "guest_address")), 5, "%s",
                     text);
        cr_expect(json_object_object_get_ex(out, "extra", NULL), "extra dropped: %s", text);
        json_object_put(out);
        json_object_put(entry);
}

/* present_as comes through the definition's one parser, and its refusals name the entry. */
Test(vm_contract, vfio_present_as_through_the_definition)
{
        struct json_object *o = parse("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\","
                                      "\"host\":\"0000:00:02.0\",\"present_as\":"
                                      "{\"subsystem_id\":\"0001\"}}]}");
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        int r = vm_spec_parse_json(o, IOV_VM_SPEC_HOST_DEVICES, &spec, &err);
        cr_assert_eq(r, 0, "parse gave %d (%s)", r, err.message);
        const struct iov_vfio_present_as *as = &spec.devices[0].vfio.present_as;
        cr_expect_eq(as->fields, IOV_VFIO_PRESENT_SUBSYSTEM_ID, "fields %x", as->fields);
        cr_expect_eq(as->subsystem_id, 1, "subsystem_id %04x", as->subsystem_id);
        vm_spec_done(&spec);
        json_object_put(o);

        o = parse("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"host\":"
                  "\"0000:00:02.0\",\"present_as\":{\"class\":\"010802\"}}]}");
        r = vm_spec_parse_json(o, IOV_VM_SPEC_HOST_DEVICES, &spec, &err);
        cr_expect_eq(r, -EINVAL, "a class change gave %d", r);
        cr_expect(
                strstr(err.message, "\"devices\"[0]: vfio: \"present_as\" cannot change the class"),
                "message \"%s\"", err.message);
        json_object_put(o);
}

Test(vm_contract, spec_limits)
{
        _cleanup_free_ char *name =
                util_strdup_printf("{\"kernel\":\"/k\",\"name\":\"%0*d\"}", IOV_VM_NAME_MAX + 1, 0);
        expect_refused(name, IOV_VM_SPEC_INVALID_VALUE, "\"name\"");
        _cleanup_free_ char *cmdline = util_strdup_printf(
                "{\"kernel\":\"/k\",\"cmdline\":\"%0*d\"}", IOV_VM_CMDLINE_MAX + 1, 0);
        expect_refused(cmdline, IOV_VM_SPEC_INVALID_VALUE, "\"cmdline\"");
        _cleanup_free_ char *kernel =
                util_strdup_printf("{\"kernel\":\"/%0*d\"}", IOV_VM_PATH_MAX, 0);
        expect_refused(kernel, IOV_VM_SPEC_INVALID_VALUE, "\"kernel\" is longer");

        /* One device more than PCI bus 0 has slots for. */
        struct json_object *o = parse("{\"kernel\":\"/k\",\"devices\":[]}");
        struct json_object *devices = json_object_object_get(o, "devices");
        for (int i = 0; i <= IOV_VM_MAX_DEVICES; i++)
                json_object_array_add(devices, parse("{\"type\":\"virtio-rng\"}"));
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        cr_expect_eq(vm_spec_parse_json(o, 0, &spec, &err), -EINVAL, "%d devices accepted",
                     IOV_VM_MAX_DEVICES + 1);
        cr_expect(strstr(err.message, "at most"), "message \"%s\"", err.message);
        json_object_array_del_idx(devices, 0, 1);
        int r = vm_spec_parse_json(o, 0, &spec, &err);
        cr_expect_eq(r, 0, "%d devices refused: %s", IOV_VM_MAX_DEVICES, err.message);
        if (r == 0)
                vm_spec_done(&spec);
        json_object_put(o);
}

Test(vm_contract, spec_defaults_and_round_trip)
{
        struct json_object *o = parse("{\"kernel\":\"/k\"}");
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        cr_assert_eq(vm_spec_parse_json(o, 0, &spec, &err), 0, "%s", err.message);
        cr_expect_eq(spec.vcpus, (unsigned)IOV_VM_DEFAULT_VCPUS, "vcpus %u", spec.vcpus);
        cr_expect_eq(spec.memory_mib, (uint64_t)IOV_VM_DEFAULT_MEMORY_MIB, "memory %llu",
                     (unsigned long long)spec.memory_mib);
        cr_expect(!spec.name && !spec.initrd && !spec.cmdline && !spec.devices_json &&
                          spec.n_devices == 0,
                  "a default is set");
        vm_spec_done(&spec);
        json_object_put(o);

        /* What the writer writes is what the parser reads, devices as given. */
        o = parse("{\"name\":\"web-1\",\"vcpus\":4,\"memory_mib\":1024,\"kernel\":\"/k\","
                  "\"initrd\":\"/i\",\"cmdline\":\"console=ttyS0\",\"devices\":"
                  "[{\"type\":\"virtio-blk\",\"path\":\"/d.img\",\"read_only\":true},"
                  "{\"type\":\"virtio-net\",\"tap\":\"tap0\"}],\"restart\":\"on-crash\"}");
        cr_assert_eq(vm_spec_parse_json(o, 0, &spec, &err), 0, "%s", err.message);
        cr_expect_eq(spec.restart, IOV_VM_RESTART_ON_CRASH, "restart %d", (int)spec.restart);
        cr_expect_eq(spec.n_devices, 2u, "%zu devices", spec.n_devices);
        /* The options inside each entry are virtio's (vmm/virtio/ tests them). */
        for (size_t i = 0; i < spec.n_devices; i++)
                cr_expect_eq(spec.devices[i].kind, IOV_VM_DEVICE_VIRTIO, "device %zu kind %d", i,
                             (int)spec.devices[i].kind);
        struct json_object *written = NULL;
        cr_assert_eq(vm_spec_to_json(&spec, &written), 0);
        cr_expect(json_object_equal(o, written), "%s written as %s", json_object_to_json_string(o),
                  json_object_to_json_string(written));
        struct iov_vm_spec again;
        cr_assert_eq(vm_spec_parse_json(written, 0, &again, &err), 0, "%s", err.message);
        cr_expect(streq(again.name, spec.name) && again.vcpus == spec.vcpus &&
                          again.memory_mib == spec.memory_mib && streq(again.kernel, spec.kernel) &&
                          streq(again.initrd, spec.initrd) && streq(again.cmdline, spec.cmdline) &&
                          again.n_devices == spec.n_devices,
                  "the parse of %s differs", json_object_to_json_string(written));
        vm_spec_done(&again);
        vm_spec_done(&spec);
        json_object_put(written);
        json_object_put(o);
}

Test(vm_contract, durable_records_carry_other_fields)
{
        struct json_object *o = parse("{\"id\":\"vm-1\",\"state\":\"stopped\",\"name\":null,"
                                      "\"kernel\":\"/k\",\"initrd\":null,\"devices\":null}");
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        cr_expect_eq(vm_spec_parse_json(o, 0, &spec, &err), -EINVAL, "strict parse took \"id\"");
        int r = vm_spec_parse_json(o, IOV_VM_SPEC_OTHER_FIELDS, &spec, &err);
        cr_assert_eq(r, 0, "durable parse: %s", err.message);
        cr_expect(!spec.name && !spec.initrd && !spec.devices_json, "a null became a value");
        vm_spec_done(&spec);
        json_object_put(o);
}

/* "guest_function" (iovd-vmm --config only) puts a function beside function 0 of its
 * guest_address; without a guest_address, out of range, or through the API it is refused. */
Test(vm_contract, vfio_guest_function_only_with_a_slot_and_for_the_vmm)
{
        const char *json = "{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"host\":"
                           "\"0000:03:00.1\",\"guest_address\":5,\"guest_function\":1}]}";
        struct json_object *o = parse(json);
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err = {0};
        int r = vm_spec_parse_json(o, IOV_VM_SPEC_HOST_DEVICES, &spec, &err);
        cr_assert_eq(r, 0, "%s gave %d (%s)", json, r, err.message);
        cr_expect_eq(spec.devices[0].vfio.guest_slot, 5);
        cr_expect_eq(spec.devices[0].vfio.guest_function, 1);
        vm_spec_done(&spec);
        json_object_put(o);

        static const char *const refused[] = {
                "{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"host\":"
                "\"0000:03:00.1\",\"guest_function\":1}]}",
                "{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"host\":"
                "\"0000:03:00.1\",\"guest_address\":5,\"guest_function\":8}]}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
                o = parse(refused[i]);
                r = vm_spec_parse_json(o, IOV_VM_SPEC_HOST_DEVICES, &spec, &err);
                cr_expect_eq(r, -EINVAL, "%s gave %d", refused[i], r);
                if (r == 0)
                        vm_spec_done(&spec);
                json_object_put(o);
        }
        expect_refused("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"vfio\",\"device\":"
                       "\"0000:03:00.1\",\"guest_address\":5,\"guest_function\":1}]}",
                       IOV_VM_SPEC_INVALID_DEVICE, "guest_function");
}
