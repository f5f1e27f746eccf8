/* SPDX-License-Identifier: MIT */
/* Pool definitions: strict parsing of names and selectors, their durable JSON form, and
 * matching a device against a selector. */
#include <ctype.h>
#include <stdio.h>

#include "alloc/alloc.h"

_printf_(3, 4) static int fail(struct iov_pool_parse_error *e, const char *field, const char *fmt,
                               ...)
{
        va_list ap;
        e->code = "invalid_value";
        snprintf(e->field, sizeof(e->field), "%s", field);
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* Every accepted pool must load again: its file (at most IOV_POOL_ADDRESSES_MAX addresses
 * of at most 32 bytes as stored, and under 4 KiB of other fields) stays within the
 * loader's IOV_STATE_ITEM_MAX_SIZE. */
_Static_assert((uint64_t)IOV_POOL_ADDRESSES_MAX * 32 + 4096 <= IOV_STATE_ITEM_MAX_SIZE,
               "a pool with the most addresses must fit in a state file the loader accepts");

bool pool_name_is_valid(const char *name)
{
        size_t n = strlen(name);
        if (n == 0 || n > IOV_POOL_NAME_MAX || name[0] == '-' || name[0] == '_')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
                    name[i] != '-' && name[i] != '_')
                        return false;
        return true;
}

/* Exactly `digits` hex digits (one allowed length) or 2/4/6 for a class prefix. */
static int parse_hex(const char *s, unsigned min, unsigned max, bool even, uint64_t *ret,
                     unsigned *ret_digits)
{
        size_t n = strlen(s);
        if (n < min || n > max || (even && n % 2))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char)s[i]))
                        return -EINVAL;
        *ret_digits = (unsigned)n;
        return util_parse_u64(s, 16, ret);
}

static int parse_id(struct json_object *v, const char *field, int *ret,
                    struct iov_pool_parse_error *e)
{
        uint64_t value;
        unsigned digits;
        if (!json_object_is_type(v, json_type_string))
                return fail(e, field, "%s must be a string of 4 hex digits", field);
        if (parse_hex(json_object_get_string(v), 4, 4, false, &value, &digits) < 0)
                return fail(e, field, "%s must be 4 hex digits, like \"8086\"", field);
        *ret = (int)value;
        return 0;
}

static int parse_class(struct json_object *v, struct iov_pool_selector *sel,
                       struct iov_pool_parse_error *e)
{
        uint64_t value;
        unsigned digits;
        if (!json_object_is_type(v, json_type_string) ||
            parse_hex(json_object_get_string(v), 2, 6, true, &value, &digits) < 0)
                return fail(e, "selector.class",
                            "selector.class must be 2, 4 or 6 hex digits (\"02\", \"0200\", "
                            "\"020000\")");
        sel->class_value = (uint32_t)value;
        sel->class_digits = digits;
        return 0;
}

static int parse_driver(struct json_object *v, struct iov_pool_selector *sel,
                        struct iov_pool_parse_error *e)
{
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        size_t n = strlen(s);
        bool ok = n > 0 && n <= IOV_POOL_DRIVER_MAX;
        for (size_t i = 0; ok && i < n; i++)
                ok = isalnum((unsigned char)s[i]) || strchr("_-.", s[i]);
        if (!ok)
                return fail(e, "selector.driver",
                            "selector.driver must be a driver name of 1 to %d characters "
                            "[A-Za-z0-9_.-]",
                            IOV_POOL_DRIVER_MAX);
        sel->driver = strdup(s);
        return sel->driver ? 0 : -ENOMEM;
}

static int parse_address(struct json_object *v, const char *field, struct iov_pci_address *ret,
                         struct iov_pool_parse_error *e)
{
        if (!json_object_is_type(v, json_type_string) ||
            pci_address_parse(json_object_get_string(v), ret) < 0)
                return fail(e, field, "%s must be a PCI address like \"0000:01:00.0\"", field);
        return 0;
}

static int parse_numa_node(struct json_object *v, struct iov_pool_selector *sel,
                           struct iov_pool_parse_error *e)
{
        int64_t n = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || n < 0 || n > 1023)
                return fail(e, "selector.numa_node",
                            "selector.numa_node must be an integer from 0 to 1023");
        sel->numa_node = (int)n;
        return 0;
}

static int parse_addresses(struct json_object *v, struct iov_pool_selector *sel,
                           struct iov_pool_parse_error *e)
{
        size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
        if (n == 0 || n > IOV_POOL_ADDRESSES_MAX)
                return fail(e, "selector.addresses",
                            "selector.addresses must be an array of 1 to %d PCI addresses",
                            IOV_POOL_ADDRESSES_MAX);
        sel->addresses = calloc(n, sizeof(*sel->addresses));
        if (!sel->addresses)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = parse_address(json_object_array_get_idx(v, i), "selector.addresses",
                                      &sel->addresses[i], e);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (pci_address_equal(&sel->addresses[i], &sel->addresses[j]))
                                return fail(
                                        e, "selector.addresses",
                                        "selector.addresses lists %s twice",
                                        json_object_get_string(json_object_array_get_idx(v, i)));
        }
        sel->n_addresses = n;
        return 0;
}

static int parse_selector_field(const char *key, struct json_object *v,
                                struct iov_pool_selector *sel, struct iov_pool_parse_error *e)
{
        if (streq(key, "vendor_id"))
                return parse_id(v, "selector.vendor_id", &sel->vendor_id, e);
        if (streq(key, "device_id"))
                return parse_id(v, "selector.device_id", &sel->device_id, e);
        if (streq(key, "class"))
                return parse_class(v, sel, e);
        if (streq(key, "driver"))
                return parse_driver(v, sel, e);
        if (streq(key, "physfn")) {
                sel->has_physfn = true;
                return parse_address(v, "selector.physfn", &sel->physfn, e);
        }
        if (streq(key, "numa_node"))
                return parse_numa_node(v, sel, e);
        if (streq(key, "addresses"))
                return parse_addresses(v, sel, e);
        char field[64];
        snprintf(field, sizeof(field), "selector.%s", key);
        fail(e, field, "unknown field %s", field);
        e->code = "unknown_field";
        return -EINVAL;
}

static int parse_selector(struct json_object *obj, struct iov_pool_selector *sel,
                          struct iov_pool_parse_error *e)
{
        if (!json_object_is_type(obj, json_type_object))
                return fail(e, "selector", "selector must be an object");
        if (json_object_object_length(obj) == 0)
                return fail(e, "selector", "selector must have at least one criterion");
        json_object_object_foreach (obj, key, v) {
                int r = parse_selector_field(key, v, sel, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_top_field(const char *key, struct json_object *v, bool allow_created,
                           struct iov_pool *pool, struct iov_pool_parse_error *e)
{
        if (streq(key, "name")) {
                const char *s =
                        json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                if (!pool_name_is_valid(s))
                        return fail(e, "name",
                                    "name must be 1 to %d characters of [a-z0-9_-], starting "
                                    "with a letter or digit",
                                    IOV_POOL_NAME_MAX);
                snprintf(pool->name, sizeof(pool->name), "%s", s);
                return 0;
        }
        if (streq(key, "selector"))
                return parse_selector(v, &pool->selector, e);
        if (streq(key, "net") && !pool->net)
                return pool_net_from_json(v, &pool->net, e);
        if (allow_created && streq(key, "created_usec") && json_object_is_type(v, json_type_int)) {
                pool->created_usec = (uint64_t)json_object_get_int64(v);
                return 0;
        }
        fail(e, key, "unknown field %s", key);
        e->code = "unknown_field";
        return -EINVAL;
}

int pool_from_json(struct json_object *obj, bool allow_created, struct iov_pool **ret,
                   struct iov_pool_parse_error *ret_error)
{
        if (!json_object_is_type(obj, json_type_object))
                return fail(ret_error, "", "a pool must be a JSON object");
        _cleanup_(pool_freep) struct iov_pool *pool = calloc(1, sizeof(*pool));
        if (!pool)
                return -ENOMEM;
        pool->selector.vendor_id = pool->selector.device_id = pool->selector.numa_node = -1;
        pool->created_usec = util_realtime_usec();

        json_object_object_foreach (obj, key, v) {
                int r = parse_top_field(key, v, allow_created, pool, ret_error);
                if (r < 0)
                        return r;
        }
        if (!pool->name[0])
                return fail(ret_error, "name", "name is required");
        if (!json_object_object_get_ex(obj, "selector", NULL))
                return fail(ret_error, "selector", "selector is required");
        *ret = TAKE_PTR(pool);
        return 0;
}

static int add_hex(struct json_object *o, const char *key, unsigned value, unsigned digits)
{
        char buf[16];
        snprintf(buf, sizeof(buf), "%0*x", (int)digits, value);
        return json_object_object_add(o, key, json_object_new_string(buf));
}

static struct json_object *selector_to_json(const struct iov_pool_selector *sel)
{
        struct json_object *o = json_object_new_object();
        char buf[IOV_PCI_ADDRESS_MAX];
        if (!o)
                return NULL;
        if (sel->vendor_id >= 0)
                add_hex(o, "vendor_id", (unsigned)sel->vendor_id, 4);
        if (sel->device_id >= 0)
                add_hex(o, "device_id", (unsigned)sel->device_id, 4);
        if (sel->class_digits)
                add_hex(o, "class", sel->class_value, sel->class_digits);
        if (sel->driver)
                json_object_object_add(o, "driver", json_object_new_string(sel->driver));
        if (sel->has_physfn)
                json_object_object_add(
                        o, "physfn", json_object_new_string(pci_address_format(&sel->physfn, buf)));
        if (sel->numa_node >= 0)
                json_object_object_add(o, "numa_node", json_object_new_int(sel->numa_node));
        if (sel->addresses) {
                struct json_object *a = json_object_new_array();
                for (size_t i = 0; i < sel->n_addresses; i++)
                        json_object_array_add(a, json_object_new_string(pci_address_format(
                                                         &sel->addresses[i], buf)));
                json_object_object_add(o, "addresses", a);
        }
        return o;
}

struct json_object *pool_to_json(const struct iov_pool *pool)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(pool->name));
        json_object_object_add(o, "selector", selector_to_json(&pool->selector));
        if (pool->net)
                json_object_object_add(o, "net", pool_net_to_json(pool->net));
        json_object_object_add(o, "created_usec",
                               json_object_new_int64((int64_t)pool->created_usec));
        return o;
}

void pool_free(struct iov_pool *pool)
{
        if (!pool)
                return;
        free(pool->selector.driver);
        free(pool->selector.addresses);
        free(pool->net);
        free(pool);
}

static bool class_matches(const struct iov_pool_selector *sel, uint32_t class_code)
{
        if (!sel->class_digits)
                return true;
        unsigned shift = 4 * (6 - sel->class_digits);
        return (class_code >> shift) == sel->class_value;
}

static bool address_listed(const struct iov_pool_selector *sel, const struct iov_pci_address *a)
{
        if (!sel->addresses)
                return true;
        for (size_t i = 0; i < sel->n_addresses; i++)
                if (pci_address_equal(&sel->addresses[i], a))
                        return true;
        return false;
}

bool pool_selector_match(const struct iov_pool_selector *sel, const struct iov_pci_device *device,
                         const char *driver)
{
        if (sel->vendor_id >= 0 && sel->vendor_id != device->vendor_id)
                return false;
        if (sel->device_id >= 0 && sel->device_id != device->device_id)
                return false;
        if (!class_matches(sel, device->class_code))
                return false;
        if (sel->driver && !streq_ptr(sel->driver, driver))
                return false;
        if (sel->has_physfn &&
            (!device->is_vf || !pci_address_equal(&sel->physfn, &device->physfn)))
                return false;
        if (sel->numa_node >= 0 && sel->numa_node != device->numa_node)
                return false;
        return address_listed(sel, &device->address);
}
