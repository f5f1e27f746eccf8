/* SPDX-License-Identifier: MIT */
/*
 * The virtio entries of a VM's "devices" list (POST /v1/vms, iovd-vmm --config) and the
 * registry of the devices that can fill them. An entry is an object whose "type" names a
 * registered device ("virtio-blk"); this file checks what every entry shares and hands
 * each other field to the device's parse_field, which fills the device's typed options
 * (its own file documents its fields). Unknown fields, unknown virtio types and
 * malformed values are refused with a message. Entries whose type is not virtio-* belong
 * to other device models.
 */
#include "vmm/virtio/virtio.h"

#include <assert.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* Every virtio type starts with this; other types are left to other device models. */
#define SPEC_TYPE_PREFIX "virtio-"

static struct iov_virtio_registration *registrations;

const struct iov_virtio_dev_ops *virtio_device_find(const char *name)
{
        for (const struct iov_virtio_registration *r = registrations; r; r = r->next)
                if (streq(r->ops->name, name))
                        return r->ops;
        return NULL;
}

void virtio_device_register(struct iov_virtio_registration *reg)
{
        /* Programmer errors: entries are found by "virtio-" names, each name once. */
        assert(strncmp(reg->ops->name, SPEC_TYPE_PREFIX, strlen(SPEC_TYPE_PREFIX)) == 0);
        assert(!virtio_device_find(reg->ops->name));
        reg->next = registrations;
        registrations = reg;
}

const struct iov_virtio_registration *virtio_devices(void)
{
        return registrations;
}

int virtio_spec_error(char **ret_error, const char *fmt, ...)
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

int virtio_spec_string(struct json_object *value, const char *key, char *buf, size_t size,
                       char **ret_error)
{
        if (!json_object_is_type(value, json_type_string))
                return virtio_spec_error(ret_error, "\"%s\" must be a string", key);
        const char *s = json_object_get_string(value);
        size_t len = strlen(s);
        if (len == 0)
                return virtio_spec_error(ret_error, "\"%s\" must not be empty", key);
        if (len >= size)
                return virtio_spec_error(ret_error, "\"%s\" is longer than %zu bytes", key,
                                         size - 1);
        memcpy(buf, s, len + 1);
        return 0;
}

int virtio_spec_poll_us(struct json_object *value, unsigned *ret, char **ret_error)
{
        int64_t n = json_object_get_int64(value);

        if (!json_object_is_type(value, json_type_int) || n < 0 || n > IOV_VIRTIO_POLL_US_MAX)
                return virtio_spec_error(ret_error, "\"poll_us\" must be an integer from 0 to %u",
                                         IOV_VIRTIO_POLL_US_MAX);
        *ret = (unsigned)n;
        return 0;
}

/* The entry's "type": every entry has one, whichever device model it is for. */
static int spec_type(struct json_object *entry, const char **ret, char **ret_error)
{
        struct json_object *type;

        if (!json_object_is_type(entry, json_type_object))
                return virtio_spec_error(ret_error, "%s", "a device must be a JSON object");
        if (!json_object_object_get_ex(entry, "type", &type) ||
            !json_object_is_type(type, json_type_string))
                return virtio_spec_error(ret_error, "%s", "a device needs a \"type\" string");
        *ret = json_object_get_string(type);
        return 0;
}

static int spec_parse_fields(const struct iov_virtio_dev_ops *ops, struct json_object *entry,
                             void *options, char **ret_error)
{
        json_object_object_foreach (entry, key, value) {
                if (streq(key, "type"))
                        continue;
                int r = ops->parse_field ? ops->parse_field(options, key, value, ret_error)
                                         : -ENOENT;
                if (r == -ENOENT)
                        return virtio_spec_error(ret_error, "unknown field \"%.64s\"", key);
                if (r < 0)
                        return r;
        }
        return ops->parse_done ? ops->parse_done(options, ret_error) : 0;
}

int virtio_spec_parse(struct json_object *entry, struct iov_virtio_spec *ret, char **ret_error)
{
        const char *name = "";

        int r = spec_type(entry, &name, ret_error);
        if (r < 0)
                return r;
        if (strncmp(name, SPEC_TYPE_PREFIX, strlen(SPEC_TYPE_PREFIX)) != 0)
                return 0;
        const struct iov_virtio_dev_ops *ops = virtio_device_find(name);
        if (!ops)
                return virtio_spec_error(ret_error, "unknown device type \"%.64s\"", name);
        /* One byte at least, so a device without options still gets a distinct block. */
        _cleanup_free_ void *options = calloc(1, ops->options_size ? ops->options_size : 1);
        if (!options)
                return -ENOMEM;
        r = spec_parse_fields(ops, entry, options, ret_error);
        if (r < 0)
                return r;
        *ret = (struct iov_virtio_spec){.ops = ops, .options = TAKE_PTR(options)};
        return 1;
}

void virtio_spec_done(struct iov_virtio_spec *spec)
{
        if (!spec)
                return;
        free(spec->options);
        spec->options = NULL;
}

int virtio_spec_create(const struct iov_virtio_spec *spec, const struct iov_virtio_host *host,
                       struct iov_virtio_dev **ret)
{
        if (!spec->ops->create)
                return -EOPNOTSUPP;
        return spec->ops->create(spec->options, host, ret);
}
