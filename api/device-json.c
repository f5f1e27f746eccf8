/* SPDX-License-Identifier: MIT */
/*
 * device-json: the JSON form of a PCI function and an IOMMU group, as DESIGN.md fixes it
 * (lowercase hex ids without 0x, null for what is unknown or absent). Shared by every
 * resource that shows devices.
 */
#include <stdio.h>

#include "api/api.h"
#include "daemon/daemon.h"

static struct json_object *hex_string(unsigned value, int digits)
{
        char buf[16];
        snprintf(buf, sizeof(buf), "%0*x", digits, value);
        return json_object_new_string(buf);
}

static struct json_object *string_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static struct json_object *address_string(const struct iov_pci_address *a)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        return json_object_new_string(pci_address_format(a, buf));
}

static struct json_object *sriov_json(const struct iov_pci_device *dev)
{
        struct json_object *o = json_object_new_object();
        struct json_object *vfs = json_object_new_array();
        if (!o || !vfs) {
                json_object_put(o);
                json_object_put(vfs);
                return NULL;
        }
        for (size_t i = 0; i < dev->n_vfs; i++)
                json_object_array_add(vfs, address_string(&dev->vfs[i]));
        json_object_object_add(o, "total_vfs", json_object_new_int64(dev->total_vfs));
        json_object_object_add(o, "num_vfs", json_object_new_int64(dev->num_vfs));
        json_object_object_add(o, "vfs", vfs);
        json_object_object_add(o, "vf_device_id", hex_string(dev->vf_device_id, 4));
        json_object_object_add(o, "drivers_autoprobe",
                               json_object_new_boolean(dev->drivers_autoprobe));
        return o;
}

struct json_object *api_device_json(struct iov_daemon *d, const struct iov_pci_device *dev)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "address", json_object_new_string(dev->name));
        json_object_object_add(o, "vendor_id", hex_string(dev->vendor_id, 4));
        json_object_object_add(o, "device_id", hex_string(dev->device_id, 4));
        json_object_object_add(o, "subsystem_vendor_id", hex_string(dev->subsystem_vendor_id, 4));
        json_object_object_add(o, "subsystem_device_id", hex_string(dev->subsystem_device_id, 4));
        json_object_object_add(o, "class", hex_string(dev->class_code, 6));
        json_object_object_add(o, "vendor_name", string_or_null(dev->vendor_name));
        json_object_object_add(o, "device_name", string_or_null(dev->device_name));
        json_object_object_add(o, "driver", string_or_null(dev->driver));
        json_object_object_add(o, "driver_override", string_or_null(dev->driver_override));
        json_object_object_add(o, "iommu_group",
                               dev->iommu_group >= 0 ? json_object_new_int(dev->iommu_group)
                                                     : NULL);
        json_object_object_add(o, "numa_node",
                               dev->numa_node >= 0 ? json_object_new_int(dev->numa_node) : NULL);
        json_object_object_add(o, "sriov", dev->is_pf ? sriov_json(dev) : NULL);
        json_object_object_add(o, "physfn", dev->is_vf ? address_string(&dev->physfn) : NULL);
        json_object_object_add(
                o, "allocation",
                d->hooks.device_allocation ? d->hooks.device_allocation(d, &dev->address) : NULL);
        return o;
}

/* PCI-to-PCI bridges (class 06 04, PCI r3.0 Appendix D) bound to pcieport do not stop a
 * group from going to VFIO; the kernel's own viability rule allows them. */
static bool member_blocks(const struct iov_pci_device *dev)
{
        if (!dev->driver || streq(dev->driver, "vfio-pci"))
                return false;
        return !((dev->class_code >> 8) == 0x0604 && streq(dev->driver, "pcieport"));
}

struct json_object *api_group_json(struct iov_daemon *d, const struct iov_snapshot *s,
                                   const struct iov_iommu_group *g)
{
        struct json_object *o = json_object_new_object();
        struct json_object *devices = json_object_new_array();
        struct json_object *blockers = json_object_new_array();
        if (!o || !devices || !blockers) {
                json_object_put(o);
                json_object_put(devices);
                json_object_put(blockers);
                return NULL;
        }
        for (size_t i = 0; i < g->n_devices; i++) {
                json_object_array_add(devices, address_string(&g->devices[i]));
                const struct iov_pci_device *dev = pci_inventory_find(s->pci, &g->devices[i]);
                if (!dev || !member_blocks(dev))
                        continue;
                struct json_object *b = json_object_new_object();
                json_object_object_add(b, "address", json_object_new_string(dev->name));
                json_object_object_add(b, "driver", json_object_new_string(dev->driver));
                json_object_array_add(blockers, b);
        }
        json_object_object_add(o, "id", json_object_new_int64(g->id));
        json_object_object_add(o, "devices", devices);
        json_object_object_add(o, "viable",
                               json_object_new_boolean(json_object_array_length(blockers) == 0));
        json_object_object_add(o, "blockers", blockers);
        json_object_object_add(o, "owner",
                               d->hooks.group_owner ? d->hooks.group_owner(d, g->id) : NULL);
        return o;
}
