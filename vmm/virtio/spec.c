/* SPDX-License-Identifier: MIT */
/*
 * The virtio entries of a VM's "devices" list (POST /v1/vms, iovd-vmm --config), parsed
 * once into typed options; unknown fields and malformed values are refused with a
 * message. Entries whose type is not virtio-* belong to other device models.
 *
 *   {"type": "virtio-console", "input": "/run/vm/console.in"}   (input: optional FIFO)
 *   {"type": "virtio-blk", "path": "/var/lib/x.img", "read_only": false, "serial": "disk0"}
 *   {"type": "virtio-net", "tap": "tap0", "mac": "52:54:00:12:34:56"}
 *   {"type": "virtio-rng"}
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>

#include "util/util.h"

static int spec_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int spec_error(char **ret_error, const char *fmt, ...)
{
        va_list ap;
        char *msg = NULL;

        if (!ret_error)
                return -EINVAL;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        free(*ret_error);
        *ret_error = msg;
        return -EINVAL;
}

static int spec_type(const char *type, enum iov_virtio_type *ret)
{
        static const struct {
                const char *name;
                enum iov_virtio_type type;
        } types[] = {
                {"virtio-console", IOV_VIRTIO_CONSOLE},
                {"virtio-blk", IOV_VIRTIO_BLK},
                {"virtio-net", IOV_VIRTIO_NET},
                {"virtio-rng", IOV_VIRTIO_RNG},
        };
        for (size_t i = 0; i < ARRAY_SIZE(types); i++)
                if (streq(type, types[i].name)) {
                        *ret = types[i].type;
                        return 0;
                }
        return -EINVAL;
}

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

static bool tap_name_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n >= IFNAMSIZ)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                            s[i]))
                        return false;
        return true;
}

static bool field_allowed(enum iov_virtio_type type, const char *key)
{
        if (streq(key, "type"))
                return true;
        if (type == IOV_VIRTIO_BLK)
                return streq(key, "path") || streq(key, "read_only") || streq(key, "serial");
        if (type == IOV_VIRTIO_NET)
                return streq(key, "tap") || streq(key, "mac");
        if (type == IOV_VIRTIO_CONSOLE)
                return streq(key, "input");
        return false;
}

static int spec_field(struct iov_virtio_spec *s, const char *key, struct json_object *v,
                      char **ret_error)
{
        bool is_string = json_object_is_type(v, json_type_string);
        const char *str = is_string ? json_object_get_string(v) : "";

        if (streq(key, "read_only")) {
                if (!json_object_is_type(v, json_type_boolean))
                        return spec_error(ret_error, "\"%s\" must be true or false", key);
                s->blk.read_only = json_object_get_boolean(v);
                return 0;
        }
        if (!is_string)
                return spec_error(ret_error, "\"%s\" must be a string", key);
        if (streq(key, "path") || streq(key, "input")) {
                if (str[0] == '\0')
                        return spec_error(ret_error, "\"%s\" must not be empty", key);
                free(s->path);
                s->path = strdup(str);
                return s->path ? 0 : -ENOMEM;
        }
        if (streq(key, "serial")) {
                if (strlen(str) > sizeof(s->blk.serial))
                        return spec_error(ret_error, "serial \"%s\" is longer than 20 bytes", str);
                memset(s->blk.serial, 0, sizeof(s->blk.serial));
                memcpy(s->blk.serial, str, strlen(str));
                return 0;
        }
        if (streq(key, "tap")) {
                if (!tap_name_valid(str))
                        return spec_error(ret_error, "tap \"%s\" is not an interface name", str);
                free(s->tap);
                s->tap = strdup(str);
                return s->tap ? 0 : -ENOMEM;
        }
        if (virtio_parse_mac(str, s->net.mac) < 0)
                return spec_error(ret_error, "mac \"%s\" is not a unicast xx:xx:xx:xx:xx:xx", str);
        s->has_mac = true;
        return 0;
}

static int spec_check(struct iov_virtio_spec *s, char **ret_error)
{
        if (s->type == IOV_VIRTIO_BLK && !s->path)
                return spec_error(ret_error, "%s needs \"path\"", "virtio-blk");
        if (s->type == IOV_VIRTIO_NET && !s->tap)
                return spec_error(ret_error, "%s needs \"tap\"", "virtio-net");
        s->blk.path = s->path;
        s->net.tap_name = s->tap;
        s->net.tap_fd = -1;
        return 0;
}

int virtio_spec_parse(struct json_object *entry, struct iov_virtio_spec *ret, char **ret_error)
{
        struct json_object *type;
        struct iov_virtio_spec s = {0};
        int r;

        if (!json_object_is_type(entry, json_type_object))
                return spec_error(ret_error, "%s", "a device must be a JSON object");
        if (!json_object_object_get_ex(entry, "type", &type) ||
            !json_object_is_type(type, json_type_string))
                return spec_error(ret_error, "%s", "a device needs a \"type\" string");
        const char *name = json_object_get_string(type);
        if (strncmp(name, "virtio-", 7) != 0)
                return 0;
        if (spec_type(name, &s.type) < 0)
                return spec_error(ret_error, "unknown device type \"%s\"", name);

        json_object_object_foreach (entry, key, v) {
                if (!field_allowed(s.type, key)) {
                        virtio_spec_done(&s);
                        return spec_error(ret_error, "unknown field \"%s\"", key);
                }
                if (streq(key, "type"))
                        continue;
                r = spec_field(&s, key, v, ret_error);
                if (r < 0) {
                        virtio_spec_done(&s);
                        return r;
                }
        }
        r = spec_check(&s, ret_error);
        if (r < 0) {
                virtio_spec_done(&s);
                return r;
        }
        *ret = s;
        return 1;
}

void virtio_spec_done(struct iov_virtio_spec *spec)
{
        if (!spec)
                return;
        free(spec->path);
        free(spec->tap);
        spec->path = spec->tap = NULL;
}
