/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's options from the VM definition (net.c's comment shows them): parsed once
 * and checked here, so the device and iovd get typed struct iov_virtio_net_options.
 */
#include "vmm/virtio/net.h"

#include <errno.h>
#include <json-c/json.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

_Static_assert(IOV_VIRTIO_NET_TAP_NAME_MAX == IFNAMSIZ, "a TAP name is an interface name");

/* "52:54:00:12:34:56": six two-digit hex octets, a unicast address. */
int virtio_parse_mac(const char *s, uint8_t ret[6])
{
        uint8_t mac[6];

        if (strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++) {
                char octet[3] = {s[3 * i], s[3 * i + 1], 0};
                uint64_t v;
                if ((i < 5 && s[3 * i + 2] != ':') || util_parse_u64(octet, 16, &v) < 0)
                        return -EINVAL;
                mac[i] = (uint8_t)v;
        }
        if (mac[0] & 1)
                return -EINVAL; /* a group address cannot be a NIC's own (IEEE 802 §8.2) */
        memcpy(ret, mac, sizeof(mac));
        return 0;
}

/* 1..size-1 of [A-Za-z0-9_.-]: interface and port names (size IFNAMSIZ, with the NUL),
 * and VMs as iovd names them, by name (1..64, vm-contract.h) or id. */
static bool net_word_valid(const char *s, size_t size)
{
        size_t n = strlen(s);
        if (n == 0 || n >= size)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                            s[i]))
                        return false;
        return true;
}

static bool net_name_valid(const char *s)
{
        return net_word_valid(s, IFNAMSIZ);
}

static bool net_vm_name_valid(const char *s)
{
        return net_word_valid(s, IOV_VIRTIO_NET_PEER_VM_MAX);
}

/* "peer": {"vm": "netdom", "port": "client-a"}, both required, nothing else. */
static int net_parse_peer(struct iov_virtio_net_options *o, struct json_object *value,
                          char **ret_error)
{
        struct json_object *vm = NULL, *port = NULL;

        if (!json_object_is_type(value, json_type_object))
                return virtio_spec_error(ret_error, "%s", "\"peer\" must be an object");
        json_object_object_foreach (value, key, v) {
                if (!streq(key, "vm") && !streq(key, "port"))
                        return virtio_spec_error(ret_error, "peer: unknown field \"%.64s\"", key);
                if (!json_object_is_type(v, json_type_string))
                        return virtio_spec_error(ret_error, "peer: \"%s\" must be a string", key);
        }
        if (!json_object_object_get_ex(value, "vm", &vm) ||
            !json_object_object_get_ex(value, "port", &port))
                return virtio_spec_error(ret_error, "%s", "peer needs \"vm\" and \"port\"");
        const char *vm_s = json_object_get_string(vm), *port_s = json_object_get_string(port);
        if (!net_vm_name_valid(vm_s))
                return virtio_spec_error(ret_error, "peer: vm \"%.64s\" is not a VM name or id",
                                         vm_s);
        if (!net_name_valid(port_s))
                return virtio_spec_error(
                        ret_error, "peer: port \"%.64s\" is not 1..15 of [A-Za-z0-9_.-]", port_s);
        snprintf(o->peer_vm, sizeof(o->peer_vm), "%s", vm_s);
        snprintf(o->peer_port, sizeof(o->peer_port), "%s", port_s);
        return 0;
}

static bool net_fd_name_valid(const char *s)
{
        return strncmp(s, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0 &&
               strlen(s) < IOV_VIRTIO_NET_TAP_NAME_MAX;
}

/* ["fd:N", ...]: descriptors iovd opened and passed, one per queue pair, into names. */
static int net_parse_fd_list(const char *key, struct json_object *value,
                             char names[][IOV_VIRTIO_NET_TAP_NAME_MAX], char **ret_error)
{
        size_t len = json_object_array_length(value);

        if (len < 1 || len > IOV_VIRTIO_NET_MAX_PAIRS)
                return virtio_spec_error(ret_error, "\"%s\" lists 1 to %u descriptors", key,
                                         IOV_VIRTIO_NET_MAX_PAIRS);
        for (size_t i = 0; i < len; i++) {
                struct json_object *v = json_object_array_get_idx(value, i);
                const char *s =
                        json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                if (!net_fd_name_valid(s))
                        return virtio_spec_error(ret_error, "\"%s\"[%zu] is not \"fd:N\"", key, i);
                snprintf(names[i], IOV_VIRTIO_NET_TAP_NAME_MAX, "%s", s);
        }
        return 0;
}

static unsigned net_fd_list_count(const char names[][IOV_VIRTIO_NET_TAP_NAME_MAX])
{
        unsigned n = 0;
        while (n < IOV_VIRTIO_NET_MAX_PAIRS && names[n][0])
                n++;
        return n;
}

/* "queues": pairs, 1..IOV_VIRTIO_NET_MAX_PAIRS. */
static int net_parse_queues(struct iov_virtio_net_options *o, struct json_object *value,
                            char **ret_error)
{
        int64_t n = json_object_get_int64(value);

        if (!json_object_is_type(value, json_type_int) || n < 1 || n > IOV_VIRTIO_NET_MAX_PAIRS)
                return virtio_spec_error(ret_error, "\"queues\" must be an integer from 1 to %u",
                                         IOV_VIRTIO_NET_MAX_PAIRS);
        o->queues = (unsigned)n;
        return 0;
}

/* "vhost": true, false or "auto"; iovd puts "fd:N" (["fd:N", ...] with queues > 1) in its
 * place when it opened /dev/vhost-net for a jailed VMM (vms/vm-files.c). */
static int net_parse_vhost(struct iov_virtio_net_options *o, struct json_object *value,
                           char **ret_error)
{
        const char *s =
                json_object_is_type(value, json_type_string) ? json_object_get_string(value) : NULL;

        if (json_object_is_type(value, json_type_array)) {
                o->vhost = IOV_VIRTIO_NET_VHOST_ON;
                return net_parse_fd_list("vhost", value, o->vhost_fd, ret_error);
        }
        if (json_object_is_type(value, json_type_boolean)) {
                o->vhost = json_object_get_boolean(value) ? IOV_VIRTIO_NET_VHOST_ON
                                                          : IOV_VIRTIO_NET_VHOST_OFF;
                return 0;
        }
        if (s && streq(s, "auto")) {
                o->vhost = IOV_VIRTIO_NET_VHOST_AUTO;
                return 0;
        }
        if (s && net_fd_name_valid(s)) {
                o->vhost = IOV_VIRTIO_NET_VHOST_ON;
                snprintf(o->vhost_fd[0], sizeof(o->vhost_fd[0]), "%s", s);
                return 0;
        }
        return virtio_spec_error(ret_error, "%s", "\"vhost\" must be true, false or \"auto\"");
}

int net_parse_field(void *options, const char *key, struct json_object *value, char **ret_error)
{
        struct iov_virtio_net_options *o = options;

        if (streq(key, "peer"))
                return net_parse_peer(o, value, ret_error);
        if (streq(key, "vhost"))
                return net_parse_vhost(o, value, ret_error);
        if (streq(key, "queues"))
                return net_parse_queues(o, value, ret_error);
        if (streq(key, "poll_us"))
                return virtio_spec_poll_us(value, &o->poll_us, ret_error);
        if (streq(key, "tap") && json_object_is_type(value, json_type_array)) {
                int r = net_parse_fd_list(key, value, o->tap_queue_fds, ret_error);
                if (r == 0)
                        snprintf(o->tap_name, sizeof(o->tap_name), "%s", o->tap_queue_fds[0]);
                return r;
        }
        if (!streq(key, "tap") && !streq(key, "mac") && !streq(key, "port"))
                return -ENOENT;
        if (!json_object_is_type(value, json_type_string))
                return virtio_spec_error(ret_error, "\"%s\" must be a string", key);
        const char *s = json_object_get_string(value);
        if (streq(key, "tap") || streq(key, "port")) {
                /* An interface name never holds ':' (dev_valid_name), so "fd:N" is not one. */
                bool fd_name = streq(key, "tap") && net_fd_name_valid(s);
                if (!fd_name && !net_name_valid(s))
                        return virtio_spec_error(
                                ret_error, "%s \"%.64s\" is not 1..15 of [A-Za-z0-9_.-]", key, s);
                snprintf(streq(key, "tap") ? o->tap_name : o->port, sizeof(o->port), "%s", s);
                return 0;
        }
        if (virtio_parse_mac(s, o->mac) < 0)
                return virtio_spec_error(ret_error,
                                         "mac \"%.64s\" is not a unicast xx:xx:xx:xx:xx:xx", s);
        o->has_mac = true;
        return 0;
}

/* A link is one channel with one pair; passed descriptors come one per pair. */
static int net_check_queues(struct iov_virtio_net_options *o, char **ret_error)
{
        unsigned taps = net_fd_list_count(o->tap_queue_fds);
        unsigned vhosts = net_fd_list_count(o->vhost_fd);

        o->tap_fd = -1;
        if (o->queues > 1 && !o->tap_name[0])
                return virtio_spec_error(ret_error,
                                         "\"queues\": %u needs a \"tap\": a VM-to-VM link "
                                         "(\"port\", \"peer\") has one queue pair",
                                         o->queues);
        if (o->queues > 1 && taps == 0 && net_fd_name_valid(o->tap_name))
                return virtio_spec_error(ret_error, "%s",
                                         "\"tap\": one \"fd:N\" per pair with \"queues\" > 1");
        if (taps > 0 && taps != o->queues)
                return virtio_spec_error(ret_error, "\"tap\" lists %u queues, \"queues\" is %u",
                                         taps, o->queues);
        if (vhosts > 0 && vhosts != o->queues)
                return virtio_spec_error(ret_error, "\"vhost\" lists %u devices, \"queues\" is %u",
                                         vhosts, o->queues);
        return 0;
}

int net_parse_done(void *options, char **ret_error)
{
        struct iov_virtio_net_options *o = options;
        int backends = !!o->tap_name[0] + !!o->port[0] + !!o->peer_vm[0];

        if (backends != 1)
                return virtio_spec_error(ret_error, "%s needs one of \"tap\", \"port\", \"peer\"",
                                         "virtio-net");
        /* The port accepts no other source address than this one. */
        if (o->peer_vm[0] && !o->has_mac)
                return virtio_spec_error(ret_error, "%s", "a \"peer\" link needs its \"mac\"");
        /* vhost-net takes a TAP as its backend; a link stays on the userspace path. */
        if (o->vhost == IOV_VIRTIO_NET_VHOST_ON && !o->tap_name[0])
                return virtio_spec_error(ret_error, "%s", "\"vhost\": true needs a \"tap\"");
        if (o->queues == 0)
                o->queues = 1;
        return net_check_queues(o, ret_error);
}

int virtio_net_link_name(const struct iov_virtio_net_options *opts, char *buf, size_t size)
{
        int n;

        if (opts->port[0])
                n = snprintf(buf, size, "%s", opts->port);
        else if (opts->peer_vm[0])
                n = snprintf(buf, size, "%s/%s", opts->peer_vm, opts->peer_port);
        else
                return -ENOENT;
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
