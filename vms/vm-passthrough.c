/* SPDX-License-Identifier: MIT */
/*
 * vm-passthrough: a VM's vfio entries ({"type": "vfio", "pool" | "device" | "allocation":
 * ...}) as allocations the VM holds (alloc/alloc.h, "allocations held by VMs"). Taken at
 * create (so a definition the host cannot satisfy is refused with the allocation's own
 * error), reset before each start and after each end, released at delete. The VM record
 * keeps which allocation serves which entry (vms.json "passthrough"); the allocation
 * records name the VM (allocations.json "vm"), and each is saved before the next step,
 * so a restart finds every device with exactly one holder (alloc/vm-owner.c reconciles
 * the allocations of VMs that never were or are no more).
 */
#include <fcntl.h>
#include <stdio.h>

#include "alloc/alloc.h"
#include "daemon/daemon.h"
#include "vms/vm-record.h"

/* The contract bounds the names alloc/ checks (vm-contract.h). */
_Static_assert(IOV_VFIO_ALLOCATION_ID_MAX == IOV_ALLOCATION_ID_MAX, "allocation id bound");
_Static_assert(IOV_VFIO_POOL_NAME_MAX == IOV_POOL_NAME_MAX, "pool name bound");

static size_t count_vfio(const struct iov_vm_spec *spec)
{
        size_t n = 0;
        for (size_t i = 0; i < spec->n_devices; i++)
                n += spec->devices[i].kind == IOV_VM_DEVICE_VFIO;
        return n;
}

/* Allocate (pool, device) or adopt (allocation) the function of one entry for rec. */
static int attach_one(struct iov_daemon *d, const struct iov_vm_record *rec,
                      const struct iov_vfio_spec *v, char ret_id[static IOV_ALLOCATION_ID_MAX],
                      struct iov_problem *p)
{
        _cleanup_json_ struct json_object *out = NULL;
        int r;
        if (v->source == IOV_VFIO_SOURCE_ALLOCATION) {
                r = allocations_adopt(d, v->allocation, rec->id, rec->spec.name, &out, p);
        } else {
                struct iov_allocation_request req = {
                        .owner = rec->spec.name ? rec->spec.name : rec->id,
                        .vm = rec->id,
                        .pool = v->source == IOV_VFIO_SOURCE_POOL ? v->pool : NULL,
                };
                r = req.pool ? 0 : pci_address_parse(v->host, &req.device);
                if (r >= 0)
                        r = allocations_create(d, &req, &out, p);
        }
        if (r < 0)
                return r;
        const char *id = json_object_get_string(json_object_object_get(out, "id"));
        if (!id || strlen(id) >= IOV_ALLOCATION_ID_MAX)
                return -EIO;
        strcpy(ret_id, id);
        return 0;
}

int vm_passthrough_attach(struct iov_daemon *d, struct iov_vm_record *rec, struct iov_problem *p)
{
        size_t n = count_vfio(&rec->spec);
        if (n == 0)
                return 0;
        rec->passthrough = calloc(n, sizeof(*rec->passthrough));
        if (!rec->passthrough)
                return -ENOMEM;
        for (size_t i = 0; i < rec->spec.n_devices; i++) {
                if (rec->spec.devices[i].kind != IOV_VM_DEVICE_VFIO)
                        continue;
                struct iov_vm_passthrough *pt = &rec->passthrough[rec->n_passthrough];
                int r = attach_one(d, rec, &rec->spec.devices[i].vfio, pt->allocation, p);
                if (r < 0) {
                        /* Nothing of a refused create stays allocated. */
                        vm_passthrough_detach(d, rec->id, &rec->spec, rec->passthrough,
                                              rec->n_passthrough, true, NULL);
                        free(TAKE_PTR(rec->passthrough));
                        rec->n_passthrough = 0;
                        return r;
                }
                pt->index = i;
                rec->n_passthrough++;
        }
        return 0;
}

int vm_passthrough_take_over(struct iov_daemon *d, const struct iov_vm_record *rec,
                             struct iov_problem *p)
{
        for (size_t k = 0; k < rec->n_passthrough; k++) {
                const struct iov_vm_passthrough *pt = &rec->passthrough[k];
                if (rec->spec.devices[pt->index].vfio.source != IOV_VFIO_SOURCE_ALLOCATION)
                        continue;
                int r = allocations_take_over(d, pt->allocation, rec->id, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

void vm_passthrough_detach(struct iov_daemon *d, const char *vm_id, const struct iov_vm_spec *spec,
                           const struct iov_vm_passthrough *list, size_t n, bool rollback,
                           struct json_object **ret)
{
        struct json_object *reports = ret ? json_object_new_array() : NULL;
        for (size_t k = 0; k < n; k++) {
                const char *id = list[k].allocation;
                bool adopted =
                        spec->devices[list[k].index].vfio.source == IOV_VFIO_SOURCE_ALLOCATION;
                struct iov_problem p = {0};
                struct json_object *out = NULL;
                int r = rollback && adopted ? allocations_disown(d, id, vm_id)
                                            : allocations_release_vm(d, id, vm_id, &out, &p);
                if (r < 0)
                        log_warning("VM %s: cannot give back allocation %s: %s", vm_id, id,
                                    p.message[0] ? p.message : strerror(-r));
                daemon_problem_clear(&p);
                if (reports && out)
                        json_object_array_add(reports, TAKE_PTR(out));
                json_object_put(out);
        }
        if (ret)
                *ret = reports;
}

/* ---- the group's other functions -------------------------------------------------------
 * An allocation holds a whole IOMMU group, and the VMM's VFIO container takes every group
 * it opens whole: a function of that group left out of the guest is held for nothing, and
 * the guest's driver for the second port of a two-port NIC finds no device. So every
 * non-bridge member (the allocation's "devices") reaches the guest, the named one as its
 * entry says (guest_address, present_as: a sibling keeps its own ids), each other one as
 * a plain entry of its own:
 * - when the named one is function 0 of its host slot, its siblings in that slot become
 *   the same functions of its guest slot (the guest sees DEVICE.0, DEVICE.1, ... as on
 *   the host; vmm/pci.h marks function 0 multi-function); the guest slot must then be
 *   known here, so one is taken for the named function when its entry names none;
 * - every other sibling (another host slot, or the named one is not function 0: a
 *   function 1 alone in a guest slot would never be scanned, PCI r3.0 §6.2.1) gets a
 *   slot of its own.
 * Slots taken here come from the top of bus 0 downward (31, 30, ...), skipping every slot
 * an entry names: devices without a guest_address take the lowest free slots, and with at
 * most IOV_VM_MAX_DEVICES entries in all (checked at start) the two never meet. All of it
 * follows from the definition and the allocations, so start and GET agree without the
 * VMM. */

/* The slots the definition's vfio entries name (bit n: slot n; bit 0 is the host bridge). */
static uint32_t named_slots(const struct iov_vm_spec *spec)
{
        uint32_t used = 1;
        for (size_t i = 0; i < spec->n_devices; i++)
                if (spec->devices[i].kind == IOV_VM_DEVICE_VFIO)
                        used |= UINT32_C(1) << spec->devices[i].vfio.guest_slot;
        return used;
}

/* The highest slot not in *used, taken; -ENOSPC when the bus is full. */
static int take_slot(uint32_t *used)
{
        for (int slot = IOV_VFIO_GUEST_SLOT_MAX; slot > 0; slot--) {
                if (!(*used & (UINT32_C(1) << slot))) {
                        *used |= UINT32_C(1) << slot;
                        return slot;
                }
        }
        return -ENOSPC;
}

/* One function the guest gets: {"host", "guest_address", "guest_function"}
 * (guest_address null: the VMM's first free slot). */
static struct json_object *function_json(const char *host, int slot, int function)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "host", json_object_new_string(host));
        json_object_object_add(o, "guest_address", slot ? json_object_new_int(slot) : NULL);
        json_object_object_add(o, "guest_function", json_object_new_int(function));
        return o;
}

/* Host addresses are canonical "DDDD:BB:SS.F" (pci_address_format). */
static bool same_host_slot(const char *a, const char *b)
{
        return strncmp(a, b, sizeof("DDDD:BB:SS") - 1) == 0;
}

static int host_function_number(const char *host)
{
        return host[sizeof("DDDD:BB:SS.") - 1] - '0';
}

/* Every function allocation a gives the guest, the named one first, then the others in
 * the allocation's order: [{"host", "guest_address", "guest_function"}, ...]. */
static int passthrough_functions(struct json_object *a, uint8_t guest_slot, uint32_t *used,
                                 struct json_object **ret)
{
        const char *named = json_object_get_string(json_object_object_get(a, "device"));
        struct json_object *devices = json_object_object_get(a, "devices");
        _cleanup_json_ struct json_object *list = json_object_new_array();
        if (!named || strlen(named) != IOV_VFIO_BDF_MAX - 1 || !list)
                return -ENOMEM;
        /* A multi-function device: its functions share a guest slot, which must be known. */
        bool multi = host_function_number(named) == 0 && json_object_array_length(devices) > 1;
        int slot = guest_slot;
        if (multi && slot == 0 && (slot = take_slot(used)) < 0)
                return slot;
        if (json_object_array_add(list, function_json(named, slot, 0)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                const char *host = json_object_get_string(json_object_array_get_idx(devices, i));
                if (!host || streq(host, named) || strlen(host) != strlen(named))
                        continue;
                bool beside = multi && same_host_slot(host, named);
                int own = beside ? slot : take_slot(used);
                if (own < 0)
                        return own;
                struct json_object *f =
                        function_json(host, own, beside ? host_function_number(host) : 0);
                if (json_object_array_add(list, f) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(list);
        return 0;
}

/* ---- start and end --------------------------------------------------------------------- */

/* A VFIO node (the container, a group's /dev/vfio/N) opened for the VMM and passed: the
 * jailed VMM has no /dev (vmm/jail.c) and makes no node. Below --dev-root, where the
 * allocations' vfio_group is. */
static int open_vfio_node(const char *path, struct iov_vmm_fds *fds, char **ret_name,
                          struct iov_problem *p)
{
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                int err = errno;
                /* A group is opened by one process at a time (vfio.rst). */
                return daemon_problem_set(p, 409, "vfio_unavailable", "cannot open %s: %s%s", path,
                                          strerror(err),
                                          err == EBUSY ? " (another process holds the group)" : "");
        }
        int r = supervisor_fds_add(fds, fd, ret_name); /* closes fd on failure */
        if (r < 0)
                return daemon_problem_set(p, 500, "internal_error", "%s: %s", path, strerror(-r));
        return 0;
}

/* The VMM's entry of each function of the list passthrough_functions gives, the named one
 * (the first) in the definition's place at pt->index, the others appended; each with
 * "vfio_group", the group's node passed as group. */
static int put_entries(struct json_object *devices, const struct iov_vm_passthrough *pt,
                       struct json_object *functions, const char *group)
{
        for (size_t i = 0; i < json_object_array_length(functions); i++) {
                struct json_object *f = json_object_array_get_idx(functions, i), *entry = NULL;
                const char *host = json_object_get_string(json_object_object_get(f, "host"));
                int r = i == 0 ? vfio_spec_to_host_entry(
                                         json_object_array_get_idx(devices, pt->index), host,
                                         &entry)
                               : vfio_spec_to_host_entry(f, host, &entry);
                if (r < 0)
                        return r;
                /* The named one: the slot it shares with its other functions, when taken
                 * here (a null guest_address is no field for iovd-vmm). */
                struct json_object *slot = json_object_object_get(f, "guest_address");
                if (i == 0 && slot)
                        json_object_object_add(entry, "guest_address", json_object_get(slot));
                json_object_object_add(entry, "type", json_object_new_string("vfio"));
                json_object_object_add(entry, "vfio_group", json_object_new_string(group));
                r = i == 0 ? json_object_array_put_idx(devices, pt->index, entry)
                           : json_object_array_add(devices, entry);
                if (r < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The VMM's entries for passthrough pt: the definition's entry with "host" set to the
 * function the allocation holds for it, and one {"type": "vfio", "host", "guest_address",
 * "guest_function"} appended to devices for each other function of the group (indexes of
 * the definition's entries stay as they are); the group's node opened into fds. */
static int host_entries(struct iov_daemon *d, struct json_object *devices,
                        const struct iov_vm_passthrough *pt, const struct iov_vfio_spec *v,
                        uint32_t *used, struct iov_vmm_fds *fds, struct iov_problem *p)
{
        _cleanup_json_ struct json_object *a = NULL, *functions = NULL;
        int r = allocations_show(d, pt->allocation, &a);
        if (r == -ENOENT)
                return daemon_problem_set(p, 409, "allocation_not_found",
                                          "allocation %s of devices[%zu] is gone", pt->allocation,
                                          pt->index);
        if (r < 0)
                return r;
        r = passthrough_functions(a, v->guest_slot, used, &functions);
        if (r == -ENOSPC)
                return daemon_problem_set(
                        p, 409, "no_guest_slot",
                        "devices[%zu]: the functions of IOMMU group %d do not "
                        "fit on the guest's bus (31 slots)",
                        pt->index, json_object_get_int(json_object_object_get(a, "iommu_group")));
        if (r < 0)
                return r;
        const char *path = json_object_get_string(json_object_object_get(a, "vfio_group"));
        _cleanup_free_ char *group = NULL;
        r = path ? open_vfio_node(path, fds, &group, p) : -EIO;
        if (r < 0)
                return r;
        return put_entries(devices, pt, functions, group);
}

/* The container's node as config's "vfio_container" (one per VM: every group joins it). */
static int pass_container(struct iov_daemon *d, struct json_object *config, struct iov_vmm_fds *fds,
                          struct iov_problem *p)
{
        _cleanup_free_ char *path = util_path_join(d->config.dev_root, "vfio", "vfio", NULL);
        _cleanup_free_ char *name = NULL;
        int r = path ? open_vfio_node(path, fds, &name, p) : -ENOMEM;
        if (r < 0)
                return r;
        json_object_object_add(config, "vfio_container", json_object_new_string(name));
        return 0;
}

int vm_passthrough_prepare(struct iov_daemon *d, const struct iov_vm_record *rec,
                           struct json_object *config, struct iov_vmm_fds *fds, bool *ret_unsafe,
                           struct iov_problem *p)
{
        bool unsafe = false;
        if (rec->n_passthrough == 0) {
                *ret_unsafe = false;
                return 0;
        }
        int r = allocations_check_host(d, &unsafe, p);
        if (r >= 0)
                r = pass_container(d, config, fds, p);
        if (r < 0)
                return r;
        /* The VMM gets a copy: the record's definition stays as the client gave it. */
        struct json_object *devices = NULL;
        if (json_object_deep_copy(json_object_object_get(config, "devices"), &devices, NULL) < 0)
                return -ENOMEM;
        json_object_object_add(config, "devices", devices);
        uint32_t used = named_slots(&rec->spec);
        for (size_t k = 0; k < rec->n_passthrough; k++) {
                const struct iov_vm_passthrough *pt = &rec->passthrough[k];
                r = allocations_reset(d, pt->allocation, p);
                if (r >= 0)
                        r = host_entries(d, devices, pt, &rec->spec.devices[pt->index].vfio, &used,
                                         fds, p);
                if (r < 0)
                        return r;
        }
        /* iovd-vmm reads at most IOV_VM_MAX_DEVICES entries (vm-contract.h). */
        if (json_object_array_length(devices) > IOV_VM_MAX_DEVICES)
                return daemon_problem_set(p, 409, "no_guest_slot",
                                          "with every function of their IOMMU groups the VM has "
                                          "%zu devices, more than the %d the guest's bus holds",
                                          json_object_array_length(devices), IOV_VM_MAX_DEVICES);
        *ret_unsafe = unsafe;
        return 0;
}

void vm_passthrough_reset(struct iov_daemon *d, const char *vm_id,
                          const struct iov_vm_passthrough *list, size_t n)
{
        for (size_t k = 0; k < n; k++) {
                struct iov_problem p = {0};
                if (allocations_reset(d, list[k].allocation, &p) < 0)
                        log_warning("VM %s: %s", vm_id, p.message);
                daemon_problem_clear(&p);
        }
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void copy_field(struct json_object *to, const char *to_key, struct json_object *from,
                       const char *key)
{
        json_object_object_add(to, to_key, json_object_get(json_object_object_get(from, key)));
}

static struct json_object *passthrough_json(struct iov_daemon *d, const struct iov_vm_record *rec,
                                            const struct iov_vm_passthrough *pt, uint32_t *used)
{
        const struct iov_vfio_spec *v = &rec->spec.devices[pt->index].vfio;
        struct json_object *entry = json_object_array_get_idx(rec->spec.devices_json, pt->index);
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "index", json_object_new_int64((int64_t)pt->index));
        json_object_object_add(o, "allocation", json_object_new_string(pt->allocation));
        json_object_object_add(o, "guest_address",
                               v->guest_slot ? json_object_new_int(v->guest_slot) : NULL);
        copy_field(o, "present_as", entry, "present_as");
        _cleanup_json_ struct json_object *a = NULL;
        if (allocations_show(d, pt->allocation, &a) < 0) {
                json_object_object_add(o, "state", json_object_new_string("missing"));
                return o;
        }
        copy_field(o, "host", a, "device");
        copy_field(o, "iommu_group", a, "iommu_group");
        copy_field(o, "devices", a, "devices");
        struct json_object *functions = NULL;
        if (passthrough_functions(a, v->guest_slot, used, &functions) >= 0)
                json_object_object_add(o, "functions", functions);
        copy_field(o, "vfio_group", a, "vfio_group");
        copy_field(o, "state", a, "state");
        copy_field(o, "quarantined", a, "reset_failure");
        return o;
}

struct json_object *vm_passthrough_to_json(struct iov_daemon *d, const struct iov_vm_record *rec)
{
        struct json_object *arr = json_object_new_array();
        uint32_t used = named_slots(&rec->spec); /* the slots vm_passthrough_prepare gives */
        for (size_t k = 0; arr && k < rec->n_passthrough; k++)
                json_object_array_add(arr, passthrough_json(d, rec, &rec->passthrough[k], &used));
        return arr;
}

struct json_object *vm_passthrough_to_durable(const struct iov_vm_record *rec)
{
        struct json_object *arr = json_object_new_array();
        for (size_t k = 0; arr && k < rec->n_passthrough; k++) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "index",
                                       json_object_new_int64((int64_t)rec->passthrough[k].index));
                json_object_object_add(o, "allocation",
                                       json_object_new_string(rec->passthrough[k].allocation));
                json_object_array_add(arr, o);
        }
        return arr;
}

static int passthrough_from_item(struct json_object *item, const struct iov_vm_spec *spec,
                                 struct iov_vm_passthrough *ret)
{
        struct json_object *index = json_object_object_get(item, "index");
        struct json_object *id = json_object_object_get(item, "allocation");
        if (!json_object_is_type(index, json_type_int) ||
            !json_object_is_type(id, json_type_string) ||
            strlen(json_object_get_string(id)) >= IOV_ALLOCATION_ID_MAX)
                return -EBADMSG;
        int64_t i = json_object_get_int64(index);
        if (i < 0 || (size_t)i >= spec->n_devices || spec->devices[i].kind != IOV_VM_DEVICE_VFIO)
                return -EBADMSG;
        ret->index = (size_t)i;
        strcpy(ret->allocation, json_object_get_string(id));
        return 0;
}

int vm_passthrough_from_durable(struct json_object *o, struct iov_vm_record *rec)
{
        struct json_object *arr = json_object_object_get(o, "passthrough");
        if (!arr) /* absent in records older than passthrough */
                return count_vfio(&rec->spec) == 0 ? 0 : -EBADMSG;
        if (!json_object_is_type(arr, json_type_array))
                return -EBADMSG;
        size_t n = json_object_array_length(arr);
        if (n != count_vfio(&rec->spec))
                return -EBADMSG;
        if (n == 0)
                return 0;
        rec->passthrough = calloc(n, sizeof(*rec->passthrough));
        if (!rec->passthrough)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                int r = passthrough_from_item(json_object_array_get_idx(arr, k), &rec->spec,
                                              &rec->passthrough[k]);
                if (r < 0)
                        return r;
                rec->n_passthrough++;
        }
        return 0;
}
