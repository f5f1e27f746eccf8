/* SPDX-License-Identifier: MIT */
/*
 * host: GET /v1/host, what this host offers for virtualization: KVM (the API version from
 * KVM_GET_API_VERSION on DEV_ROOT/kvm), the IOMMU and interrupt remapping (read from the
 * hardware description in sysfs; null when unknown), whether vfio-pci is loaded, the
 * unsafe switches, and counts from the inventory.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "api/api.h"
#include "config.h"
#include "daemon/daemon.h"

static struct json_object *kvm_json(const char *dev_root)
{
        struct json_object *o = json_object_new_object();
        _cleanup_free_ char *path = util_path_join(dev_root, "kvm", NULL);
        int version = -1;

        if (!o)
                return NULL;
        if (path) {
                _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0)
                        version = ioctl(fd, KVM_GET_API_VERSION, 0);
        }
        json_object_object_add(o, "available", json_object_new_boolean(version >= 0));
        json_object_object_add(o, "api_version",
                               version >= 0 ? json_object_new_int(version) : NULL);
        json_object_object_add(o, "device", json_object_new_string(path ? path : ""));
        return o;
}

static struct json_object *tristate_json(enum iov_tristate t)
{
        return t == IOV_UNKNOWN ? NULL : json_object_new_boolean(t == IOV_YES);
}

static struct json_object *iommu_json(const struct iov_iommu_status *st)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "enabled", json_object_new_boolean(st->enabled));
        json_object_object_add(o, "interrupt_remapping", tristate_json(st->interrupt_remapping));
        json_object_object_add(o, "groups", json_object_new_int64(st->n_groups));
        return o;
}

static struct json_object *counts_json(struct iov_daemon *d)
{
        _cleanup_snapshot_ struct iov_snapshot *s = daemon_snapshot_get(d);
        struct json_object *o = json_object_new_object();
        size_t pfs = 0, vfs = 0;

        if (!o)
                return NULL;
        for (size_t i = 0; i < s->pci->n_devices; i++) {
                pfs += s->pci->devices[i].is_pf;
                vfs += s->pci->devices[i].is_vf;
        }
        json_object_object_add(o, "devices", json_object_new_uint64(s->pci->n_devices));
        json_object_object_add(o, "sriov_pfs", json_object_new_uint64(pfs));
        json_object_object_add(o, "sriov_vfs", json_object_new_uint64(vfs));
        json_object_object_add(o, "iommu_groups", json_object_new_uint64(s->n_groups));
        daemon_modules_host_counts(d, o);
        return o;
}

static int host_get(struct iov_daemon *d, const struct iov_api_request *req,
                    struct iov_api_response *resp)
{
        static const char *const none[] = {NULL};
        struct iov_iommu_status st;

        int r = api_query_check(req, resp, none);
        if (r < 0)
                return r;
        r = iommu_status_read(d->config.sysfs_root, &st);
        if (r < 0)
                return api_error(resp, 500, "host_unreadable", "reading the IOMMU status: %s",
                                 strerror(-r));
        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "version", json_object_new_string(IOVD_VERSION));
        json_object_object_add(o, "kvm", kvm_json(d->config.dev_root));
        json_object_object_add(o, "iommu", iommu_json(&st));
        json_object_object_add(o, "vfio_pci_loaded", json_object_new_boolean(st.vfio_pci_loaded));
        /* Two switches: ours (iovd may pass through without IOMMU/remapping) and the
         * kernel's vfio_iommu_type1 parameter of the same name. */
        json_object_object_add(o, "allow_unsafe_interrupts",
                               json_object_new_boolean(d->config.allow_unsafe_interrupts));
        json_object_object_add(o, "kernel_allow_unsafe_interrupts",
                               json_object_new_boolean(st.allow_unsafe_interrupts));
        json_object_object_add(o, "sysfs_root", json_object_new_string(d->config.sysfs_root));
        json_object_object_add(o, "counts", counts_json(d));
        return api_reply_json(resp, 200, o);
}

API_ROUTE(host, "GET", "/v1/host", host_get)
