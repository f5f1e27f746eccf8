/* SPDX-License-Identifier: MIT */
/* Allocation records: their durable and API JSON forms, and ids. */
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "alloc/alloc-internal.h"

static const char *const state_names[] = {
        [IOV_ALLOCATION_PENDING] = "pending",
        [IOV_ALLOCATION_ACTIVE] = "active",
        [IOV_ALLOCATION_RELEASING] = "releasing",
        [IOV_ALLOCATION_LOST] = "lost",
};

const char *allocation_state_to_string(enum iov_allocation_state state)
{
        return state_names[state];
}

static int allocation_state_from_string(const char *s, enum iov_allocation_state *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(state_names); i++)
                if (streq(s, state_names[i])) {
                        *ret = (enum iov_allocation_state)i;
                        return 0;
                }
        return -EBADMSG;
}

int allocation_new_id(char ret[static IOV_ALLOCATION_ID_MAX])
{
        uint8_t bytes[8];
        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
                return -errno ? -errno : -EIO;
        char *p = ret + sprintf(ret, "a-");
        for (size_t i = 0; i < sizeof(bytes); i++)
                p += sprintf(p, "%02x", bytes[i]);
        return 0;
}

static struct json_object *string_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

struct json_object *allocation_member_to_json(const struct iov_bind_record *m)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "address",
                               json_object_new_string(pci_address_format(&m->address, buf)));
        json_object_object_add(o, "original_driver", string_or_null(m->original_driver));
        json_object_object_add(o, "original_override", string_or_null(m->original_override));
        json_object_object_add(o, "is_bridge", json_object_new_boolean(m->is_bridge));
        return o;
}

/* The device of a record that names none: the first member that is no bridge. */
static struct iov_pci_address default_device(const struct iov_allocation *a)
{
        size_t first = 0;
        while (first + 1 < a->n_members && a->members[first].is_bridge)
                first++;
        return a->n_members ? a->members[first].address : (struct iov_pci_address){0};
}

/* "device", "vm", "adopted" and "reset_failure": always in the API form; in the durable
 * form only when they say more than their defaults, so records of allocations no VM ever
 * held stay as they were. */
static void allocation_add_vm_fields(struct json_object *o, const struct iov_allocation *a,
                                     bool durable)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct iov_pci_address first = default_device(a);
        if (!durable || !pci_address_equal(&first, &a->device))
                json_object_object_add(o, "device",
                                       json_object_new_string(pci_address_format(&a->device, buf)));
        if (durable && !a->vm && !a->reset_failure)
                return;
        json_object_object_add(o, "vm", string_or_null(a->vm));
        json_object_object_add(o, "adopted", json_object_new_boolean(a->adopted));
        json_object_object_add(o, "reset_failure", string_or_null(a->reset_failure));
}

struct json_object *allocation_to_json(const struct iov_allocation *a)
{
        struct json_object *o = json_object_new_object();
        struct json_object *members = json_object_new_array();
        if (!o || !members) {
                json_object_put(o);
                json_object_put(members);
                return NULL;
        }
        for (size_t i = 0; i < a->n_members; i++)
                json_object_array_add(members, allocation_member_to_json(&a->members[i]));
        json_object_object_add(o, "id", json_object_new_string(a->id));
        json_object_object_add(o, "owner", json_object_new_string(a->owner));
        json_object_object_add(o, "pool", string_or_null(a->pool));
        json_object_object_add(o, "state",
                               json_object_new_string(allocation_state_to_string(a->state)));
        json_object_object_add(o, "iommu_group", json_object_new_int64(a->iommu_group));
        json_object_object_add(o, "members", members);
        json_object_object_add(o, "created_usec", json_object_new_int64((int64_t)a->created_usec));
        json_object_object_add(o, "lost_reason", string_or_null(a->lost_reason));
        if (a->net) /* only then: records without it read as before */
                json_object_object_add(o, "net", allocation_net_to_json(a->net));
        allocation_add_vm_fields(o, a, true);
        return o;
}

static struct json_object *time_to_json(uint64_t usec)
{
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;
        char buf[64];
        if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return NULL;
        return json_object_new_string(buf);
}

/* The client's view: what it opens (vfio_group, under --dev-root exactly as the daemon
 * sees it) and which functions it got; original drivers stay internal. */
struct json_object *allocation_to_api_json(const struct iov_allocation *a, const char *dev_root)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct json_object *o = json_object_new_object();
        struct json_object *devices = json_object_new_array();
        _cleanup_free_ char *vfio = iommu_vfio_group_path(dev_root, a->iommu_group);
        if (!o || !devices || !vfio) {
                json_object_put(o);
                json_object_put(devices);
                return NULL;
        }
        for (size_t i = 0; i < a->n_members; i++)
                if (!a->members[i].is_bridge)
                        json_object_array_add(devices, json_object_new_string(pci_address_format(
                                                               &a->members[i].address, buf)));
        json_object_object_add(o, "id", json_object_new_string(a->id));
        json_object_object_add(o, "owner", json_object_new_string(a->owner));
        json_object_object_add(o, "pool", string_or_null(a->pool));
        json_object_object_add(o, "state",
                               json_object_new_string(allocation_state_to_string(a->state)));
        json_object_object_add(o, "devices", devices);
        json_object_object_add(o, "iommu_group", json_object_new_int64(a->iommu_group));
        json_object_object_add(o, "vfio_group", json_object_new_string(vfio));
        json_object_object_add(o, "created", time_to_json(a->created_usec));
        json_object_object_add(o, "lost_reason", string_or_null(a->lost_reason));
        json_object_object_add(o, "net", a->net ? allocation_net_to_json(a->net) : NULL);
        allocation_add_vm_fields(o, a, false);
        return o;
}

void allocation_free(struct iov_allocation *a)
{
        if (!a)
                return;
        free(a->owner);
        free(a->pool);
        free(a->lost_reason);
        free(a->net);
        free(a->vm);
        free(a->reset_failure);
        iommu_bind_records_free(a->members, a->n_members);
        free(a);
}

/* ---- parsing the durable form --------------------------------------------------------- */

static struct json_object *get_typed(struct json_object *o, const char *key, enum json_type type,
                                     bool nullable, bool *ok)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, type) || (nullable && v == NULL)))
                *ok = false;
        return v;
}

static int dup_or_null(struct json_object *v, char **ret)
{
        *ret = NULL;
        if (!v)
                return 0;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

int allocation_member_from_json(struct json_object *o, struct iov_bind_record *m)
{
        bool ok = json_object_is_type(o, json_type_object);
        if (!ok)
                return -EBADMSG;
        struct json_object *addr = get_typed(o, "address", json_type_string, false, &ok);
        struct json_object *drv = get_typed(o, "original_driver", json_type_string, true, &ok);
        struct json_object *ovr = get_typed(o, "original_override", json_type_string, true, &ok);
        struct json_object *bridge = get_typed(o, "is_bridge", json_type_boolean, false, &ok);
        if (!ok || pci_address_parse(json_object_get_string(addr), &m->address) < 0)
                return -EBADMSG;
        m->is_bridge = json_object_get_boolean(bridge);
        if (dup_or_null(drv, &m->original_driver) < 0 ||
            dup_or_null(ovr, &m->original_override) < 0)
                return -ENOMEM;
        return 0;
}

static int members_from_json(struct json_object *arr, struct iov_allocation *a)
{
        size_t n = json_object_array_length(arr);
        if (n == 0)
                return -EBADMSG;
        a->members = calloc(n, sizeof(*a->members));
        if (!a->members)
                return -ENOMEM;
        a->n_members = n;
        for (size_t i = 0; i < n; i++) {
                int r = allocation_member_from_json(json_object_array_get_idx(arr, i),
                                                    &a->members[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "device", "vm", "adopted", "reset_failure": absent in records older than VM
 * ownership (then the first member that is no bridge, no VM). */
static int vm_fields_from_json(struct json_object *obj, struct iov_allocation *a)
{
        bool ok = true;
        struct json_object *device = json_object_object_get(obj, "device");
        struct json_object *vm = json_object_object_get(obj, "vm");
        struct json_object *failure = json_object_object_get(obj, "reset_failure");
        a->device = default_device(a);
        if (device && (!json_object_is_type(device, json_type_string) ||
                       pci_address_parse(json_object_get_string(device), &a->device) < 0))
                ok = false;
        if ((vm && !json_object_is_type(vm, json_type_string)) ||
            (failure && !json_object_is_type(failure, json_type_string)))
                ok = false;
        if (!ok)
                return -EBADMSG;
        a->adopted = json_object_get_boolean(json_object_object_get(obj, "adopted"));
        if (dup_or_null(vm, &a->vm) < 0 || dup_or_null(failure, &a->reset_failure) < 0)
                return -ENOMEM;
        return 0;
}

int allocation_from_json(struct json_object *obj, struct iov_allocation **ret)
{
        bool ok = json_object_is_type(obj, json_type_object);
        if (!ok)
                return -EBADMSG;
        struct json_object *id = get_typed(obj, "id", json_type_string, false, &ok);
        struct json_object *owner = get_typed(obj, "owner", json_type_string, false, &ok);
        struct json_object *pool = get_typed(obj, "pool", json_type_string, true, &ok);
        struct json_object *state = get_typed(obj, "state", json_type_string, false, &ok);
        struct json_object *group = get_typed(obj, "iommu_group", json_type_int, false, &ok);
        struct json_object *members = get_typed(obj, "members", json_type_array, false, &ok);
        struct json_object *created = get_typed(obj, "created_usec", json_type_int, false, &ok);
        struct json_object *lost = get_typed(obj, "lost_reason", json_type_string, true, &ok);
        if (!ok || strlen(json_object_get_string(id)) >= IOV_ALLOCATION_ID_MAX ||
            json_object_get_int64(group) < 0 || json_object_get_int64(group) > UINT32_MAX)
                return -EBADMSG;

        _cleanup_(allocation_freep) struct iov_allocation *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        snprintf(a->id, sizeof(a->id), "%s", json_object_get_string(id));
        a->iommu_group = (unsigned)json_object_get_int64(group);
        a->created_usec = (uint64_t)json_object_get_int64(created);
        int r = allocation_state_from_string(json_object_get_string(state), &a->state);
        if (r < 0)
                return r;
        if (dup_or_null(owner, &a->owner) < 0 || dup_or_null(pool, &a->pool) < 0 ||
            dup_or_null(lost, &a->lost_reason) < 0)
                return -ENOMEM;
        r = members_from_json(members, a);
        struct json_object *net = json_object_object_get(obj, "net");
        if (r >= 0 && net) /* absent in records older than VF network settings */
                r = allocation_net_from_json(net, &a->net);
        if (r >= 0)
                r = vm_fields_from_json(obj, a);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}
