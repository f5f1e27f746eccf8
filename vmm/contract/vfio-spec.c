/* SPDX-License-Identifier: MIT */
/*
 * The vfio entries of a VM's "devices" list, in their two forms:
 *   iovd-vmm --config:  {"type": "vfio", "host": "0000:00:03.0", "guest_address": 5}
 *   the API (iovd):     {"type": "vfio", "pool": "nics" | "device": "0000:01:00.2" |
 *                        "allocation": "a-...", "guest_address": 5}
 * host is the function on the host (bound to vfio-pci); through the API a VM names where
 * iovd takes the function from instead, exactly one of pool, device or allocation, and
 * iovd writes the VMM's entry with "host" (vfio_spec_to_host_entry). guest_address,
 * optional, is the slot on the guest's bus 0 (1..31; 0 is the host bridge). Parsed once
 * here, for both. guest_function (iovd-vmm --config only, with guest_address; iovd writes
 * it for the other functions of a multi-function device) puts the function at 1..7 of
 * that slot, whose function 0 an earlier entry is. vfio_group (iovd-vmm --config only) is
 * the node of the function's IOMMU group, "fd:N" for a descriptor iovd opened and passed
 * (the jailed VMM has no /dev; entries of one group name the same one), or a path.
 * present_as, optional (both forms), the ids the guest sees instead of the device's
 * (vendor_id, device_id, subsystem_vendor_id, subsystem_id: 4 lowercase hex digits, the
 * API's HexId; revision: 2), e.g. "present_as": {"subsystem_id": "0001"}.
 */
#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/contract/vm-contract.h"

/* Exactly "DDDD:BB:SS.F" in hex, slot <= 0x1f, function <= 7 (PCI r3.0 §3.2.2.3.2);
 * stored in lowercase, the form sysfs and VFIO_GROUP_GET_DEVICE_FD use. */
static int spec_parse_bdf(const char *s, char ret[static IOV_VFIO_BDF_MAX])
{
        static const char shape[] = "xxxx:xx:xx.x";
        if (strlen(s) != sizeof(shape) - 1)
                return -EINVAL;
        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == 'x' ? !isxdigit((unsigned char)s[i]) : s[i] != shape[i])
                        return -EINVAL;
        unsigned slot = (unsigned)strtoul(s + 8, NULL, 16), function = (unsigned)(s[11] - '0');
        if (slot > 0x1f || function > 7)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(shape); i++)
                ret[i] = (char)tolower((unsigned char)s[i]);
        return 0;
}

/* Exactly digits lowercase hex digits, the API's HexId form. */
static int spec_parse_hex(struct json_object *v, size_t digits, uint16_t *ret)
{
        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        const char *s = json_object_get_string(v);
        if (strlen(s) != digits)
                return -EINVAL;
        for (size_t i = 0; i < digits; i++)
                if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
                        return -EINVAL;
        *ret = (uint16_t)strtoul(s, NULL, 16);
        return 0;
}

static const struct {
        const char *key;
        unsigned field;
} present_ids[] = {
        {"vendor_id", IOV_VFIO_PRESENT_VENDOR_ID},
        {"device_id", IOV_VFIO_PRESENT_DEVICE_ID},
        {"subsystem_vendor_id", IOV_VFIO_PRESENT_SUBSYSTEM_VENDOR_ID},
        {"subsystem_id", IOV_VFIO_PRESENT_SUBSYSTEM_ID},
};

static void present_set(struct iov_vfio_present_as *p, unsigned field, uint16_t id)
{
        p->fields |= field;
        if (field == IOV_VFIO_PRESENT_VENDOR_ID)
                p->vendor_id = id;
        else if (field == IOV_VFIO_PRESENT_DEVICE_ID)
                p->device_id = id;
        else if (field == IOV_VFIO_PRESENT_SUBSYSTEM_VENDOR_ID)
                p->subsystem_vendor_id = id;
        else
                p->subsystem_id = id;
}

/* One id of "present_as". 0000 and ffff name no device: ffff is what a read of an absent
 * function returns (PCI r3.0 §6.2.1), and 0000 is no vendor's. */
static int present_field(struct iov_vfio_present_as *p, const char *key, struct json_object *v,
                         char **ret_error)
{
        uint16_t id;
        if (streq(key, "revision")) {
                if (spec_parse_hex(v, 2, &id) < 0)
                        return util_error_printf(ret_error, "vfio: \"present_as\".revision must "
                                                            "be 2 lowercase hex digits");
                p->fields |= IOV_VFIO_PRESENT_REVISION;
                p->revision = (uint8_t)id;
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(present_ids); i++) {
                if (!streq(key, present_ids[i].key))
                        continue;
                if (spec_parse_hex(v, 4, &id) < 0 || id == 0 || id == 0xffff)
                        return util_error_printf(ret_error,
                                                 "vfio: \"present_as\".%s must be 4 lowercase "
                                                 "hex digits, not 0000 or ffff",
                                                 key);
                present_set(p, present_ids[i].field, id);
                return 0;
        }
        /* The class is how drivers and the guest's own code tell what kind of device this
         * is; presenting another one cannot work, so there is no field for it. */
        if (streq(key, "class") || streq(key, "class_code"))
                return util_error_printf(ret_error, "vfio: \"present_as\" cannot change the "
                                                    "class (there is no class field): a device "
                                                    "of one class cannot pass for another");
        return util_error_printf(ret_error, "vfio: \"present_as\": unknown field \"%s\"", key);
}

static int spec_parse_present_as(struct json_object *v, struct iov_vfio_present_as *ret,
                                 char **ret_error)
{
        if (!json_object_is_type(v, json_type_object))
                return util_error_printf(ret_error, "vfio: \"present_as\" must be an object");
        struct iov_vfio_present_as p = {0};
        json_object_object_foreach (v, key, id) {
                int r = present_field(&p, key, id, ret_error);
                if (r < 0)
                        return r;
        }
        if (p.fields == 0)
                return util_error_printf(ret_error, "vfio: \"present_as\" names no id (vendor_id, "
                                                    "device_id, subsystem_vendor_id, subsystem_id, "
                                                    "revision)");
        *ret = p;
        return 0;
}

/* Pool names: [a-z0-9_-], starting with a letter or digit (alloc/pools.c's rule). */
static bool spec_name_valid(const char *s, size_t max, const char *extra)
{
        size_t n = strlen(s);
        if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
                      strchr(extra, s[i])))
                        return false;
        return true;
}

/* One of "host", "pool", "device", "allocation": where the function comes from. */
static int spec_source(struct iov_vfio_spec *s, int *n_sources, const char *key,
                       struct json_object *v, char **ret_error)
{
        const char *text =
                json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        (*n_sources)++;
        if (streq(key, "host") || streq(key, "device")) {
                s->source = streq(key, "host") ? IOV_VFIO_SOURCE_HOST : IOV_VFIO_SOURCE_DEVICE;
                if (!text || spec_parse_bdf(text, s->host) < 0)
                        return util_error_printf(ret_error,
                                                 "vfio: \"%s\" must be a PCI address "
                                                 "DDDD:BB:SS.F",
                                                 key);
                return 0;
        }
        if (streq(key, "pool")) {
                s->source = IOV_VFIO_SOURCE_POOL;
                if (!text || !spec_name_valid(text, IOV_VFIO_POOL_NAME_MAX, "_-"))
                        return util_error_printf(ret_error,
                                                 "vfio: \"pool\" must be a pool name "
                                                 "([a-z0-9_-], at most %d)",
                                                 IOV_VFIO_POOL_NAME_MAX);
                strcpy(s->pool, text);
                return 0;
        }
        s->source = IOV_VFIO_SOURCE_ALLOCATION;
        if (!text || !spec_name_valid(text, IOV_VFIO_ALLOCATION_ID_MAX - 1, "-"))
                return util_error_printf(ret_error,
                                         "vfio: \"allocation\" must be an allocation id");
        strcpy(s->allocation, text);
        return 0;
}

static bool spec_is_source(const char *key, bool api)
{
        if (api)
                return streq(key, "pool") || streq(key, "device") || streq(key, "allocation");
        return streq(key, "host");
}

/* "vfio_group": "fd:N" (a descriptor iovd passed) or a path, the group's node. */
static int spec_parse_group_node(struct json_object *v, char ret[static IOV_VFIO_GROUP_NODE_MAX],
                                 char **ret_error)
{
        const char *node =
                json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if ((node[0] != '/' && strncmp(node, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX))) ||
            strlen(node) >= IOV_VFIO_GROUP_NODE_MAX)
                return util_error_printf(ret_error,
                                         "vfio: \"vfio_group\" must be \"fd:N\" or a path");
        strcpy(ret, node);
        return 0;
}

static int spec_field(struct iov_vfio_spec *s, bool api, int *n_sources, const char *key,
                      struct json_object *v, char **ret_error)
{
        if (streq(key, "type"))
                return 0;
        if (spec_is_source(key, api))
                return spec_source(s, n_sources, key, v, ret_error);
        if (streq(key, "guest_address")) {
                int64_t slot = json_object_get_int64(v);
                if (!json_object_is_type(v, json_type_int) || slot < 1 ||
                    slot > IOV_VFIO_GUEST_SLOT_MAX)
                        return util_error_printf(ret_error,
                                                 "vfio: \"guest_address\" must be a slot "
                                                 "1..%d",
                                                 IOV_VFIO_GUEST_SLOT_MAX);
                s->guest_slot = (uint8_t)slot;
                return 0;
        }
        if (!api && streq(key, "guest_function")) {
                int64_t function = json_object_get_int64(v);
                if (!json_object_is_type(v, json_type_int) || function < 0 || function > 7)
                        return util_error_printf(ret_error, "vfio: \"guest_function\" must be "
                                                            "0..7");
                s->guest_function = (uint8_t)function;
                return 0;
        }
        if (!api && streq(key, "vfio_group"))
                return spec_parse_group_node(v, s->vfio_group, ret_error);
        if (api && streq(key, "host"))
                return util_error_printf(ret_error,
                                         "vfio: \"host\" is for iovd-vmm --config; through the "
                                         "API name a \"pool\", a \"device\" or an "
                                         "\"allocation\"");
        if (streq(key, "present_as"))
                return spec_parse_present_as(v, &s->present_as, ret_error);
        return util_error_printf(ret_error, "vfio: unknown field \"%s\"", key);
}

static bool spec_is_vfio(struct json_object *entry)
{
        struct json_object *type;
        return json_object_is_type(entry, json_type_object) &&
               json_object_object_get_ex(entry, "type", &type) &&
               json_object_is_type(type, json_type_string) &&
               streq(json_object_get_string(type), "vfio");
}

static int spec_parse(struct json_object *entry, bool api, struct iov_vfio_spec *ret,
                      char **ret_error)
{
        if (!spec_is_vfio(entry))
                return 0; /* not ours; the other models (or the config parser) judge it */
        struct iov_vfio_spec s = {0};
        int n_sources = 0;
        json_object_object_foreach (entry, key, v) {
                int r = spec_field(&s, api, &n_sources, key, v, ret_error);
                if (r < 0)
                        return r;
        }
        if (api && n_sources != 1)
                return util_error_printf(ret_error, "vfio: give exactly one of \"pool\", "
                                                    "\"device\" or \"allocation\"");
        if (!api && n_sources != 1)
                return util_error_printf(ret_error, "vfio: \"host\" (the PCI address) is required");
        if (s.guest_function && !s.guest_slot)
                return util_error_printf(ret_error, "vfio: \"guest_function\" needs a "
                                                    "\"guest_address\"");
        *ret = s;
        return 1;
}

int vfio_spec_parse(struct json_object *entry, struct iov_vfio_spec *ret, char **ret_error)
{
        return spec_parse(entry, false, ret, ret_error);
}

int vfio_spec_parse_api(struct json_object *entry, struct iov_vfio_spec *ret, char **ret_error)
{
        return spec_parse(entry, true, ret, ret_error);
}

int vfio_spec_to_host_entry(struct json_object *entry, const char *host, struct json_object **ret)
{
        struct json_object *out = json_object_new_object();
        if (!out)
                return -ENOMEM;
        json_object_object_foreach (entry, key, v)
                if (!spec_is_source(key, true))
                        json_object_object_add(out, key, json_object_get(v));
        json_object_object_add(out, "host", json_object_new_string(host));
        *ret = out;
        return 0;
}
