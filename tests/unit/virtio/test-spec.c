/* SPDX-License-Identifier: MIT */
/* The virtio entries of a VM's "devices" list: accepted forms, and each refusal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "fake-guest.h"
#include "util/util.h"
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
        cr_assert_str_eq(spec.ops->name, "virtio-blk", "device %s", spec.ops->name);
        const struct iov_virtio_blk_options *blk = spec.options;
        cr_assert_str_eq(blk->path, "/img", "path '%s'", blk->path);
        cr_assert(blk->read_only, "read_only lost");
        cr_assert_str_eq(blk->serial, "disk0", "serial '%.20s'", blk->serial);
        virtio_spec_done(&spec);
        cr_assert_null(spec.options, "options left after virtio_spec_done");
}

Test(virtio_spec, net_with_and_without_mac)
{
        struct iov_virtio_spec spec;
        char *error;
        int r = parse("{\"type\":\"virtio-net\",\"tap\":\"tap0\",\"mac\":\"52:54:00:ab:cd:ef\"}",
                      &spec, &error);
        cr_assert_eq(r, 1, "returned %d (%s)", r, error ? error : "");
        const struct iov_virtio_net_options *net = spec.options;
        cr_assert_str_eq(net->tap_name, "tap0", "tap '%s'", net->tap_name);
        cr_assert(net->has_mac, "has_mac not set");
        cr_assert_eq(net->mac[5], 0xef, "mac[5] 0x%02x", net->mac[5]);
        cr_assert_eq(net->tap_fd, -1, "tap_fd %d from a spec", net->tap_fd);
        virtio_spec_done(&spec);
        r = parse("{\"type\":\"virtio-net\",\"tap\":\"tap0\"}", &spec, &error);
        cr_assert_eq(r, 1, "without mac: returned %d (%s)", r, error ? error : "");
        net = spec.options;
        cr_assert(!net->has_mac, "has_mac set without a mac");
        virtio_spec_done(&spec);
}

Test(virtio_spec, console_and_rng_take_no_fields)
{
        struct iov_virtio_spec spec;
        char *error;
        cr_assert_eq(parse("{\"type\":\"virtio-console\"}", &spec, &error), 1, "console refused");
        cr_assert_str_eq(spec.ops->name, "virtio-console", "device %s", spec.ops->name);
        const struct iov_virtio_console_options *console = spec.options;
        cr_assert_str_eq(console->input, "", "input '%s' without \"input\"", console->input);
        virtio_spec_done(&spec);
        cr_assert_eq(parse("{\"type\":\"virtio-console\",\"input\":\"/run/in\"}", &spec, &error), 1,
                     "console with input refused");
        console = spec.options;
        cr_assert_str_eq(console->input, "/run/in", "input '%s'", console->input);
        virtio_spec_done(&spec);
        expect_refused("{\"type\":\"virtio-console\",\"input\":\"\"}", "input");
        expect_refused("{\"type\":\"virtio-console\",\"input\":7}", "input");
        cr_assert_eq(parse("{\"type\":\"virtio-rng\"}", &spec, &error), 1, "rng refused");
        cr_assert_str_eq(spec.ops->name, "virtio-rng", "device %s", spec.ops->name);
        virtio_spec_done(&spec);
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
        expect_refused("{\"type\":\"virtio-gpu\"}", "unknown device type \"virtio-gpu\"");
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

/* VM-to-VM links: a port, a peer (with its mac), and one backend per entry. */
Test(virtio_spec, net_port_and_peer)
{
        struct iov_virtio_spec spec;
        char *error = NULL;
        cr_assert_eq(parse("{\"type\":\"virtio-net\",\"port\":\"client-a\"}", &spec, &error), 1,
                     "port refused: %s", error ? error : "");
        const struct iov_virtio_net_options *o = spec.options;
        cr_assert_str_eq(o->port, "client-a", "port \"%s\"", o->port);
        virtio_spec_done(&spec);
        cr_assert_eq(parse("{\"type\":\"virtio-net\",\"mac\":\"52:54:00:00:00:01\",\"peer\":"
                           "{\"vm\":\"netdom\",\"port\":\"client-a\"}}",
                           &spec, &error),
                     1, "peer refused: %s", error ? error : "");
        o = spec.options;
        cr_assert_str_eq(o->peer_vm, "netdom", "peer vm \"%s\"", o->peer_vm);
        cr_assert_str_eq(o->peer_port, "client-a", "peer port \"%s\"", o->peer_port);
        char name[IOV_VIRTIO_NET_LINK_NAME_MAX];
        cr_assert_eq(virtio_net_link_name(o, name, sizeof(name)), 0, "no link name");
        cr_assert_str_eq(name, "netdom/client-a", "link name \"%s\"", name);
        virtio_spec_done(&spec);

        expect_refused("{\"type\":\"virtio-net\",\"peer\":{\"vm\":\"n\",\"port\":\"p\"}}", "mac");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"port\":\"p\"}", "one of");
        expect_refused("{\"type\":\"virtio-net\",\"port\":\"a/b\"}", "a/b");
        expect_refused("{\"type\":\"virtio-net\",\"mac\":\"52:54:00:00:00:01\",\"peer\":"
                       "{\"vm\":\"n\"}}",
                       "port");
        expect_refused("{\"type\":\"virtio-net\",\"mac\":\"52:54:00:00:00:01\",\"peer\":"
                       "{\"vm\":\"n\",\"port\":\"p\",\"x\":\"1\"}}",
                       "\"x\"");
        expect_refused("{\"type\":\"virtio-net\",\"mac\":\"52:54:00:00:00:01\",\"peer\":"
                       "{\"vm\":\"a/b\",\"port\":\"p\"}}",
                       "a/b");
        expect_refused("{\"type\":\"virtio-net\",\"mac\":\"52:54:00:00:00:01\",\"peer\":\"n\"}",
                       "object");
}

/* Every device file registered itself once, under the name its entries use, with the
 * device id of virtio 1.2 §5 and a way to be made from a spec. A new device needs no
 * change here: only the four the VMM has always had are named. */
Test(virtio_registry, every_device_registered_once)
{
        static const struct {
                const char *name;
                uint16_t device_id;
        } expected[] = {
                {"virtio-net", 1},
                {"virtio-blk", 2},
                {"virtio-console", 3},
                {"virtio-rng", 4},
        };
        for (const struct iov_virtio_registration *r = virtio_devices(); r; r = r->next) {
                cr_assert_not_null(r->ops->create, "%s: no create", r->ops->name);
                cr_assert(strncmp(r->ops->name, "virtio-", 7) == 0, "%s: not a virtio- name",
                          r->ops->name);
                cr_assert_eq(virtio_device_find(r->ops->name), r->ops, "%s registered twice",
                             r->ops->name);
        }
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
                const struct iov_virtio_dev_ops *ops = virtio_device_find(expected[i].name);
                cr_assert_not_null(ops, "%s not registered", expected[i].name);
                cr_assert_eq(ops->device_id, expected[i].device_id, "%s: device id %u",
                             expected[i].name, ops->device_id);
        }
        cr_assert_null(virtio_device_find("virtio-gpu"), "virtio-gpu found");
}

/* A device made from a spec offers the registered feature bits plus what depends on its
 * options (read-only blk), and the common ones. */
Test(virtio_registry, spec_creates_the_device)
{
        struct fake_guest guest;
        char image[] = "/tmp/iovd-virtio-spec-XXXXXX";
        int fd = mkstemp(image);
        cr_assert_geq(fd, 0, "mkstemp: %m");
        cr_assert_eq(ftruncate(fd, 4096), 0, "ftruncate: %m");
        close(fd);
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        _cleanup_free_ char *json = NULL;
        cr_assert_geq(asprintf(&json,
                               "{\"type\":\"virtio-blk\",\"path\":\"%s\",\"read_only\":true}",
                               image),
                      0, "asprintf");

        struct iov_virtio_spec spec;
        char *error;
        cr_assert_eq(parse(json, &spec, &error), 1, "%s refused: %s", json, error ? error : "");
        struct iov_virtio_host host = {.mem = &guest.mem, .console_fd = -1};
        struct iov_virtio_dev *dev = NULL;
        int r = virtio_spec_create(&spec, &host, &dev);
        virtio_spec_done(&spec);
        unlink(image);
        cr_assert_eq(r, 0, "virtio_spec_create returned %d", r);
        cr_assert_eq(dev->ops, virtio_device_find("virtio-blk"), "device %s", dev->ops->name);
        uint64_t want = (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_RO) |
                        (1ull << VIRTIO_F_VERSION_1);
        cr_assert_eq(dev->host_features & want, want, "features 0x%llx lack 0x%llx",
                     (unsigned long long)dev->host_features, (unsigned long long)want);
        virtio_dev_free(dev);
        fake_guest_fini(&guest);
}

/* virtio-blk's queue count and O_DIRECT: the bounds of num_queues, booleans only, and
 * without num_queues one queue per vCPU of the VM up to the cap. */
Test(virtio_spec, blk_num_queues_and_direct)
{
        struct iov_virtio_spec spec;
        char *error;
        int r = parse(
                "{\"type\":\"virtio-blk\",\"path\":\"/img\",\"num_queues\":4,\"direct\":true}",
                &spec, &error);
        cr_assert_eq(r, 1, "returned %d (%s)", r, error ? error : "");
        const struct iov_virtio_blk_options *blk = spec.options;
        cr_assert_eq(blk->num_queues, 4, "num_queues %u", blk->num_queues);
        cr_assert(blk->direct, "direct lost");
        virtio_spec_done(&spec);
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/img\",\"num_queues\":0}",
                       "num_queues");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/img\",\"num_queues\":9}",
                       "num_queues");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/img\",\"num_queues\":\"2\"}",
                       "num_queues");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/img\",\"num_queues\":1.5}",
                       "num_queues");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/img\",\"direct\":\"yes\"}", "direct");
}

static unsigned blk_queues_for_vcpus(unsigned vcpus)
{
        struct fake_guest guest;
        char image[] = "/tmp/iovd-virtio-spec-XXXXXX";
        int fd = mkstemp(image);
        cr_assert_geq(fd, 0, "mkstemp: %m");
        cr_assert_eq(ftruncate(fd, 4096), 0, "ftruncate: %m");
        close(fd);
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        _cleanup_free_ char *json = NULL;
        cr_assert_geq(asprintf(&json, "{\"type\":\"virtio-blk\",\"path\":\"%s\"}", image), 0,
                      "asprintf");
        struct iov_virtio_spec spec;
        char *error;
        cr_assert_eq(parse(json, &spec, &error), 1, "%s refused: %s", json, error ? error : "");
        struct iov_virtio_host host = {.mem = &guest.mem, .console_fd = -1, .vcpus = vcpus};
        struct iov_virtio_dev *dev = NULL;
        int r = virtio_spec_create(&spec, &host, &dev);
        virtio_spec_done(&spec);
        unlink(image);
        cr_assert_eq(r, 0, "virtio_spec_create returned %d", r);
        unsigned n = dev->num_queues;
        bool mq = dev->host_features & (1ull << VIRTIO_BLK_F_MQ);
        cr_assert_eq(mq, n > 1, "%u queues, MQ offered: %d", n, mq);
        virtio_dev_free(dev);
        fake_guest_fini(&guest);
        return n;
}

Test(virtio_registry, blk_has_a_queue_per_vcpu_by_default)
{
        cr_assert_eq(blk_queues_for_vcpus(0), 1, "no vCPU count: not one queue");
        cr_assert_eq(blk_queues_for_vcpus(1), 1, "1 vCPU: not one queue");
        cr_assert_eq(blk_queues_for_vcpus(3), 3, "3 vCPUs: not three queues");
        cr_assert_eq(blk_queues_for_vcpus(64), IOV_VIRTIO_BLK_MAX_QUEUES, "64 vCPUs: not the cap");
}

static enum iov_virtio_net_vhost parse_vhost(const char *value)
{
        struct iov_virtio_spec spec;
        char *error = NULL;
        _cleanup_free_ char *json =
                util_strdup_printf("{\"type\":\"virtio-net\",\"tap\":\"t\"%s%s}",
                                   value ? ",\"vhost\":" : "", value ? value : "");
        cr_assert_eq(parse(json, &spec, &error), 1, "%s refused: %s", json, error ? error : "");
        enum iov_virtio_net_vhost v = ((const struct iov_virtio_net_options *)spec.options)->vhost;
        virtio_spec_done(&spec);
        return v;
}

Test(virtio_spec, net_vhost_option)
{
        cr_assert_eq(parse_vhost(NULL), IOV_VIRTIO_NET_VHOST_AUTO, "default is not auto");
        cr_assert_eq(parse_vhost("\"auto\""), IOV_VIRTIO_NET_VHOST_AUTO, "\"auto\" not auto");
        cr_assert_eq(parse_vhost("true"), IOV_VIRTIO_NET_VHOST_ON, "true not on");
        cr_assert_eq(parse_vhost("false"), IOV_VIRTIO_NET_VHOST_OFF, "false not off");
        cr_assert_eq(parse_vhost("\"fd:7\""), IOV_VIRTIO_NET_VHOST_ON, "a passed fd not on");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"vhost\":1}", "vhost");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"vhost\":\"yes\"}", "vhost");
        expect_refused("{\"type\":\"virtio-net\",\"port\":\"p\",\"vhost\":true}", "tap");
        /* auto and false on a link: it stays on the userspace path, nothing to refuse */
        struct iov_virtio_spec spec;
        char *error = NULL;
        cr_assert_eq(
                parse("{\"type\":\"virtio-net\",\"port\":\"p\",\"vhost\":\"auto\"}", &spec, &error),
                1, "auto on a port refused: %s", error ? error : "");
        virtio_spec_done(&spec);
}

static const struct iov_virtio_net_options *net_options(const char *json,
                                                        struct iov_virtio_spec *spec)
{
        char *error = NULL;
        int r = parse(json, spec, &error);
        cr_assert_eq(r, 1, "%s: returned %d (%s)", json, r, error ? error : "");
        return spec->options;
}

Test(virtio_spec, net_queues_and_passed_queue_fds)
{
        struct iov_virtio_spec spec;

        const struct iov_virtio_net_options *o =
                net_options("{\"type\":\"virtio-net\",\"tap\":\"t\"}", &spec);
        cr_assert_eq(o->queues, 1, "default queues %u, expected 1", o->queues);
        virtio_spec_done(&spec);
        o = net_options("{\"type\":\"virtio-net\",\"tap\":\"t\",\"queues\":4,\"poll_us\":50}",
                        &spec);
        cr_assert_eq(o->queues, 4, "queues %u, expected 4", o->queues);
        cr_assert_eq(o->poll_us, 50, "poll_us %u, expected 50", o->poll_us);
        virtio_spec_done(&spec);
        /* how iovd hands a multiqueue TAP and its vhost devices to iovd-vmm */
        o = net_options("{\"type\":\"virtio-net\",\"tap\":[\"fd:5\",\"fd:6\"],\"queues\":2,"
                        "\"vhost\":[\"fd:7\",\"fd:8\"]}",
                        &spec);
        cr_assert_str_eq(o->tap_queue_fds[1], "fd:6", "second TAP queue %s", o->tap_queue_fds[1]);
        cr_assert_str_eq(o->tap_name, "fd:5", "tap_name %s, expected the first queue", o->tap_name);
        cr_assert_str_eq(o->vhost_fd[1], "fd:8", "second vhost fd %s", o->vhost_fd[1]);
        cr_assert_eq(o->vhost, IOV_VIRTIO_NET_VHOST_ON, "passed vhost fds not on");
        virtio_spec_done(&spec);
}

Test(virtio_spec, net_queues_refused)
{
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"queues\":0}", "queues");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"queues\":5}", "queues");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"queues\":\"2\"}", "queues");
        /* a VM-to-VM link is one channel: one pair */
        expect_refused("{\"type\":\"virtio-net\",\"port\":\"p\",\"queues\":2}", "one queue pair");
        expect_refused("{\"type\":\"virtio-net\",\"mac\":\"52:54:00:00:00:01\",\"queues\":2,"
                       "\"peer\":{\"vm\":\"n\",\"port\":\"p\"}}",
                       "one queue pair");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":[\"fd:5\"],\"queues\":2}", "lists 1");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"fd:5\",\"queues\":2}", "per pair");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":[\"tap0\",\"fd:6\"],\"queues\":2}",
                       "fd:N");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":[],\"queues\":1}", "tap");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"queues\":2,\"vhost\":\"fd:7\"}",
                       "vhost");
        expect_refused("{\"type\":\"virtio-net\",\"tap\":\"t\",\"poll_us\":1001}", "poll_us");
        expect_refused("{\"type\":\"virtio-blk\",\"path\":\"/img\",\"poll_us\":-1}", "poll_us");
}
