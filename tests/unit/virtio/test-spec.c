/* SPDX-License-Identifier: MIT */
/* The virtio entries of a VM's "devices" list: accepted forms, and each refusal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/virtio.h"

static int parse(const char *json, struct iov_virtio_spec *spec, char **error)
{
        struct json_object *o = json_tokener_parse(json);
        cr_assert_not_null(o, "test JSON does not parse: %s", json);
        *error = NULL;
        int r = virtio_spec_parse(o, spec, error);
        json_object_put(o);
        return r;
}

static void expect_refused(const char *json, const char *needle)
{
        struct iov_virtio_spec spec;
        char *error;
        int r = parse(json, &spec, &error);
        cr_assert_eq(r, -EINVAL, "%s: returned %d, expected -EINVAL", json, r);
        cr_assert_not_null(error, "%s: no error message", json);
        cr_assert(strstr(error, needle), "%s: message '%s' does not mention '%s'", json, error,
                  needle);
        free(error);
}

Test(virtio_spec, blk_with_all_fields)
{
        struct iov_virtio_spec spec;
        char *error;
        int r = parse("{\"type\":\"virtio-blk\",\"path\":\"/img\",\"read_only\":true,"
                      "\"serial\":\"disk0\"}",
                      &spec, &error);
        cr_assert_eq(r, 1, "returned %d (%s)", r, error ? error : "");
        cr_assert_eq(spec.type, IOV_VIRTIO_BLK, "type %d", spec.type);
        cr_assert_str_eq(spec.blk.path, "/img", "path '%s'", spec.blk.path);
        cr_assert(spec.blk.read_only, "read_only lost");
        cr_assert_str_eq(spec.blk.serial, "disk0", "serial '%.20s'", spec.blk.serial);
        virtio_spec_done(&spec);
}

Test(virtio_spec, net_with_mac)
{
        struct iov_virtio_spec spec;
        char *error;
        int r = parse("{\"type\":\"virtio-net\",\"tap\":\"tap0\",\"mac\":\"52:54:00:ab:cd:ef\"}",
                      &spec, &error);
        cr_assert_eq(r, 1, "returned %d (%s)", r, error ? error : "");
        cr_assert_str_eq(spec.net.tap_name, "tap0", "tap '%s'", spec.net.tap_name);
        cr_assert(spec.has_mac, "has_mac not set");
        cr_assert_eq(spec.net.mac[5], 0xef, "mac[5] 0x%02x", spec.net.mac[5]);
        virtio_spec_done(&spec);
}

Test(virtio_spec, console_and_rng_take_no_fields)
{
        struct iov_virtio_spec spec;
        char *error;
        cr_assert_eq(parse("{\"type\":\"virtio-console\"}", &spec, &error), 1, "console refused");
        cr_assert_eq(spec.type, IOV_VIRTIO_CONSOLE, "type %d", spec.type);
        cr_assert_eq(parse("{\"type\":\"virtio-console\",\"input\":\"/run/in\"}", &spec, &error), 1,
                     "console with input refused");
        cr_assert_str_eq(spec.path, "/run/in", "input '%s'", spec.path);
        virtio_spec_done(&spec);
        expect_refused("{\"type\":\"virtio-console\",\"input\":\"\"}", "input");
        expect_refused("{\"type\":\"virtio-console\",\"input\":7}", "input");
        cr_assert_eq(parse("{\"type\":\"virtio-rng\"}", &spec, &error), 1, "rng refused");
        cr_assert_eq(spec.type, IOV_VIRTIO_RNG, "type %d", spec.type);
        expect_refused("{\"type\":\"virtio-rng\",\"path\":\"/x\"}", "path");
}

Test(virtio_spec, other_types_are_not_ours)
{
        struct iov_virtio_spec spec;
        char *error;
        int r = parse("{\"type\":\"vfio-pci\",\"address\":\"0000:01:00.0\"}", &spec, &error);
        cr_assert_eq(r, 0, "a vfio-pci entry returned %d, expected 0", r);
}

Test(virtio_spec, malformed_entries_are_refused)
{
        expect_refused("[1]", "object");
        expect_refused("{\"path\":\"/x\"}", "type");
        expect_refused("{\"type\":\"virtio-gpu\"}", "virtio-gpu");
        expect_refused("{\"type\":\"virtio-blk\"}", "path");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"\"}", "path");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/x\",\"read_only\":\"yes\"}",
                       "read_only");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/x\",\"serial\":"
                       "\"123456789012345678901\"}",
                       "20 bytes");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/x\",\"size\":1}", "size");
        expect_refused("{\"type\":\"virtio-net\"}", "tap");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"../etc\"}", "../etc");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"a-very-long-name0\"}", "tap");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"mac\":\"01:00:5e:00:00:01\"}",
                       "unicast");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"mac\":\"52:54:00:ab:cd\"}", "mac");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"mac\":\"52-54-00-ab-cd-ef\"}",
                       "mac");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"mac\":\"52:54:00:ab:cd:eg\"}",
                       "mac");
}
