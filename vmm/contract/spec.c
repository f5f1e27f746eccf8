/* SPDX-License-Identifier: MIT */
/*
 * The VM definition (vm-contract.h): one parser for POST /v1/vms, iovd-vmm --config and the
 * durable record, one writer for what iovd hands to iovd-vmm. Checks run in the order a
 * client fixes them: the shape (unknown fields, types, "kernel"), then the values, then
 * each device entry.
 */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/util.h"
#include "vmm/contract/vm-contract.h"

struct spec_field {
        const char *name;
        enum json_type type;
        bool nullable;
};

static const struct spec_field spec_fields[] = {
        {"name", json_type_string, true},     {"vcpus", json_type_int, false},
        {"memory_mib", json_type_int, false}, {"kernel", json_type_string, false},
        {"initrd", json_type_string, true},   {"cmdline", json_type_string, true},
        {"devices", json_type_array, true},   {"restart", json_type_string, true},
};

static const char *const restart_names[] = {
        [IOV_VM_RESTART_NEVER] = "never",
        [IOV_VM_RESTART_ON_CRASH] = "on-crash",
};

_printf_(3, 4) static int spec_fail(struct iov_vm_spec_error *err, enum iov_vm_spec_problem problem,
                                    const char *fmt, ...)
{
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                err->problem = problem;
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

void vm_spec_init(struct iov_vm_spec *spec)
{
        *spec = (struct iov_vm_spec){
                .vcpus = IOV_VM_DEFAULT_VCPUS,
                .memory_mib = IOV_VM_DEFAULT_MEMORY_MIB,
        };
}

void vm_spec_done(struct iov_vm_spec *spec)
{
        if (!spec)
                return;
        free(spec->name);
        free(spec->kernel);
        free(spec->initrd);
        free(spec->cmdline);
        for (size_t i = 0; i < spec->n_devices; i++)
                if (spec->devices[i].kind == IOV_VM_DEVICE_VIRTIO)
                        virtio_spec_done(&spec->devices[i].virtio);
        free(spec->devices);
        json_object_put(spec->devices_json);
        vm_spec_init(spec);
}

void vm_spec_move(struct iov_vm_spec *dst, struct iov_vm_spec *src)
{
        vm_spec_done(dst);
        *dst = *src;
        vm_spec_init(src);
}

/* ---- shape ------------------------------------------------------------------------------ */

static const struct spec_field *spec_field_find(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(spec_fields); i++)
                if (streq(spec_fields[i].name, name))
                        return &spec_fields[i];
        return NULL;
}

static int spec_check_shape(struct json_object *o, unsigned flags, struct iov_vm_spec_error *err)
{
        if (!json_object_is_type(o, json_type_object))
                return spec_fail(err, IOV_VM_SPEC_NOT_OBJECT, "the definition must be an object");
        json_object_object_foreach (o, key, value) {
                const struct spec_field *f = spec_field_find(key);
                if (!f && (flags & IOV_VM_SPEC_OTHER_FIELDS))
                        continue;
                if (!f)
                        return spec_fail(err, IOV_VM_SPEC_UNKNOWN_FIELD, "unknown field \"%s\"",
                                         key);
                enum json_type t = json_object_get_type(value);
                if (t == f->type || (t == json_type_null && f->nullable))
                        continue;
                return spec_fail(err, IOV_VM_SPEC_WRONG_TYPE, "field \"%s\" must be %s%s, not %s",
                                 key, util_json_type_name(f->type), f->nullable ? " or null" : "",
                                 util_json_type_name(t));
        }
        if (!json_object_object_get_ex(o, "kernel", NULL))
                return spec_fail(err, IOV_VM_SPEC_MISSING_FIELD, "missing field \"kernel\"");
        return 0;
}

/* ---- values ----------------------------------------------------------------------------- */

static int spec_check_range(const char *field, long long v, long long min, long long max,
                            struct iov_vm_spec_error *err)
{
        if (v < min || v > max)
                return spec_fail(err, IOV_VM_SPEC_INVALID_VALUE,
                                 "\"%s\" must be %lld..%lld, not %lld", field, min, max, v);
        return 0;
}

/* Names are labels for people and scripts: letters, digits, '.', '_', '-'. */
static bool spec_name_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > IOV_VM_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
                        return false;
        return true;
}

static int spec_check_path(const char *field, const char *path, struct iov_vm_spec_error *err)
{
        if (path && strlen(path) > IOV_VM_PATH_MAX)
                return spec_fail(err, IOV_VM_SPEC_INVALID_VALUE, "\"%s\" is longer than %d bytes",
                                 field, IOV_VM_PATH_MAX);
        return 0;
}

int vm_spec_check(const struct iov_vm_spec *s, struct iov_vm_spec_error *err)
{
        if (!s->kernel || !*s->kernel)
                return spec_fail(err, IOV_VM_SPEC_MISSING_FIELD, "a kernel is required");
        int r = spec_check_range("vcpus", s->vcpus, 1, IOV_VM_MAX_VCPUS, err);
        if (r >= 0)
                r = spec_check_range("memory_mib",
                                     s->memory_mib > INT64_MAX ? INT64_MAX
                                                               : (long long)s->memory_mib,
                                     IOV_VM_MEMORY_MIN_MIB, IOV_VM_MEMORY_MAX_MIB, err);
        if (r < 0)
                return r;
        if (s->name && !spec_name_valid(s->name))
                return spec_fail(err, IOV_VM_SPEC_INVALID_VALUE,
                                 "\"name\" must be 1..%d letters, digits, '.', '_' or '-'",
                                 IOV_VM_NAME_MAX);
        if (s->cmdline && strlen(s->cmdline) > IOV_VM_CMDLINE_MAX)
                return spec_fail(err, IOV_VM_SPEC_INVALID_VALUE,
                                 "\"cmdline\" is longer than %d bytes", IOV_VM_CMDLINE_MAX);
        r = spec_check_path("kernel", s->kernel, err);
        if (r >= 0)
                r = spec_check_path("initrd", s->initrd, err);
        if (r >= 0 && s->n_devices > IOV_VM_MAX_DEVICES)
                r = spec_fail(err, IOV_VM_SPEC_INVALID_VALUE, "at most %d devices, not %zu",
                              IOV_VM_MAX_DEVICES, s->n_devices);
        return r;
}

/* ---- reading the JSON ------------------------------------------------------------------- */

/* A string field (the shape is checked): NULL when absent or null. */
static int spec_read_string(struct json_object *o, const char *key, char **field)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return 0;
        char *s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

/* An integer field (the shape is checked) within min..max; left alone when absent. */
static int spec_read_int(struct json_object *o, const char *key, long long min, long long max,
                         uint64_t *field, struct iov_vm_spec_error *err)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        int64_t n = json_object_get_int64(v);
        int r = spec_check_range(key, n, min, max, err);
        if (r >= 0)
                *field = (uint64_t)n;
        return r;
}

/* The kernel and initrd are read by another process than the one that was asked (iovd,
 * then iovd-vmm in its own directory): only absolute paths mean the same file to both.
 * "fd:N" (a descriptor iovd passed) only where the caller allows it. */
static int spec_check_absolute(const char *field, const char *path, unsigned flags,
                               struct iov_vm_spec_error *err)
{
        if (path && (flags & IOV_VM_SPEC_INHERITED_FDS) &&
            strncmp(path, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0)
                return 0;
        if (path && path[0] != '/')
                return spec_fail(err, IOV_VM_SPEC_INVALID_PATH,
                                 "\"%s\" must be an absolute path, not \"%.256s\"", field, path);
        return 0;
}

/* "restart" (the shape is checked): one of restart_names, left alone when absent or null. */
static int spec_read_restart(struct json_object *o, enum iov_vm_restart *field,
                             struct iov_vm_spec_error *err)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, "restart", &v) ||
            !json_object_is_type(v, json_type_string))
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(restart_names); i++)
                if (streq(json_object_get_string(v), restart_names[i])) {
                        *field = (enum iov_vm_restart)i;
                        return 0;
                }
        return spec_fail(err, IOV_VM_SPEC_INVALID_VALUE,
                         "\"restart\" must be \"never\" or \"on-crash\", not \"%.64s\"",
                         json_object_get_string(v));
}

static int spec_read_fields(struct json_object *o, unsigned flags, struct iov_vm_spec *s,
                            struct iov_vm_spec_error *err)
{
        static const char *const strings[] = {"name", "kernel", "initrd", "cmdline"};
        char **targets[] = {&s->name, &s->kernel, &s->initrd, &s->cmdline};
        for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
                int r = spec_read_string(o, strings[i], targets[i]);
                if (r < 0)
                        return r;
        }
        uint64_t vcpus = s->vcpus;
        int r = spec_read_int(o, "vcpus", 1, IOV_VM_MAX_VCPUS, &vcpus, err);
        if (r >= 0)
                r = spec_read_int(o, "memory_mib", IOV_VM_MEMORY_MIN_MIB, IOV_VM_MEMORY_MAX_MIB,
                                  &s->memory_mib, err);
        if (r < 0)
                return r;
        s->vcpus = (unsigned)vcpus;
        r = spec_read_restart(o, &s->restart, err);
        if (r >= 0)
                r = spec_check_absolute("kernel", s->kernel, flags, err);
        if (r >= 0)
                r = spec_check_absolute("initrd", s->initrd, flags, err);
        return r;
}

/* ---- devices ---------------------------------------------------------------------------- */

/* A "vfio" entry: a host function for iovd-vmm's --config (IOV_VM_SPEC_HOST_DEVICES);
 * anywhere else a pool, a device or an allocation, which iovd allocates to the VM. */
static int spec_parse_vfio(struct json_object *entry, size_t i, unsigned flags,
                           struct iov_vm_device *ret, struct iov_vm_spec_error *err)
{
        struct iov_vfio_spec vfio;
        _cleanup_free_ char *error = NULL;
        int r = (flags & IOV_VM_SPEC_HOST_DEVICES) ? vfio_spec_parse(entry, &vfio, &error)
                                                   : vfio_spec_parse_api(entry, &vfio, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return spec_fail(err, IOV_VM_SPEC_INVALID_DEVICE, "\"devices\"[%zu]: %.256s", i,
                                 error ? error : "invalid");
        *ret = (struct iov_vm_device){.kind = IOV_VM_DEVICE_VFIO, .vfio = vfio};
        return 0;
}

/* One entry of "devices": its model's parser decides (virtio-*, vfio); any other type is
 * refused (a new model adds its parser here). */
static int spec_parse_device(struct json_object *entry, size_t i, unsigned flags,
                             struct iov_vm_device *ret, struct iov_vm_spec_error *err)
{
        struct json_object *type = NULL;
        if (!json_object_is_type(entry, json_type_object) ||
            !json_object_object_get_ex(entry, "type", &type) ||
            !json_object_is_type(type, json_type_string) || !*json_object_get_string(type))
                return spec_fail(err, IOV_VM_SPEC_INVALID_VALUE,
                                 "\"devices\"[%zu] must be an object with a \"type\"", i);
        if (streq(json_object_get_string(type), "vfio"))
                return spec_parse_vfio(entry, i, flags, ret, err);
        struct iov_virtio_spec virtio;
        _cleanup_free_ char *error = NULL;
        int r = virtio_spec_parse(entry, &virtio, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return spec_fail(err, IOV_VM_SPEC_INVALID_DEVICE, "\"devices\"[%zu]: %.256s", i,
                                 error ? error : "invalid");
        if (r == 0)
                return spec_fail(err, IOV_VM_SPEC_INVALID_DEVICE,
                                 "\"devices\"[%zu]: unknown device type \"%.64s\"", i,
                                 json_object_get_string(type));
        *ret = (struct iov_vm_device){.kind = IOV_VM_DEVICE_VIRTIO, .virtio = virtio};
        return 0;
}

static int spec_read_devices(struct json_object *o, unsigned flags, struct iov_vm_spec *s,
                             struct iov_vm_spec_error *err)
{
        struct json_object *devices = NULL;
        if (!json_object_object_get_ex(o, "devices", &devices) ||
            !json_object_is_type(devices, json_type_array))
                return 0;
        size_t n = json_object_array_length(devices);
        if (n > IOV_VM_MAX_DEVICES)
                return spec_fail(err, IOV_VM_SPEC_INVALID_VALUE, "at most %d devices, not %zu",
                                 IOV_VM_MAX_DEVICES, n);
        s->devices = calloc(n ? n : 1, sizeof(*s->devices));
        if (!s->devices)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = spec_parse_device(json_object_array_get_idx(devices, i), i, flags,
                                          &s->devices[s->n_devices], err);
                if (r < 0)
                        return r;
                s->n_devices++;
        }
        s->devices_json = json_object_get(devices);
        return 0;
}

int vm_spec_parse_json(struct json_object *o, unsigned flags, struct iov_vm_spec *ret,
                       struct iov_vm_spec_error *err)
{
        struct iov_vm_spec s;
        vm_spec_init(&s);
        int r = spec_check_shape(o, flags, err);
        if (r >= 0)
                r = spec_read_fields(o, flags, &s, err);
        if (r >= 0)
                r = vm_spec_check(&s, err);
        if (r >= 0)
                r = spec_read_devices(o, flags, &s, err);
        if (r < 0) {
                vm_spec_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

static struct json_object *string_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

int vm_spec_to_json(const struct iov_vm_spec *s, struct json_object **ret)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "name", string_or_null(s->name));
        json_object_object_add(o, "vcpus", json_object_new_int64(s->vcpus));
        json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)s->memory_mib));
        json_object_object_add(o, "kernel", string_or_null(s->kernel));
        json_object_object_add(o, "initrd", string_or_null(s->initrd));
        json_object_object_add(o, "cmdline", string_or_null(s->cmdline));
        json_object_object_add(o, "devices", json_object_get(s->devices_json));
        json_object_object_add(o, "restart", json_object_new_string(restart_names[s->restart]));
        *ret = o;
        return 0;
}
