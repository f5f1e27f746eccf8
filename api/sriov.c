/* SPDX-License-Identifier: MIT */
/*
 * PUT /v1/devices/{address}/sriov {"num_vfs": N, "drivers_autoprobe": false}: create or
 * remove the virtual functions of a physical function (PCIe r5 §9). Refused without any
 * change while a VF of that PF (or the PF itself) is allocated or quarantined, since
 * writing sriov_numvfs destroys every existing VF.
 */
#include <stdio.h>

#include "api/api.h"
#include "alloc/alloc.h"
#include "daemon/daemon.h"
#include "sriov/sriov.h"

#define IOV_SRIOV_TIMEOUT_MS 10000

/* With the PF's lock held exclusively (no allocation can claim one of its functions
 * meanwhile): a function of this PF that iovd holds, or is binding, blocks the change. */
static int check_not_held(struct iov_registry *reg, const struct iov_pci_device *pf,
                          struct iov_api_response *resp)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        int r = 0;
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; r == 0 && i <= pf->n_vfs; i++) {
                const struct iov_pci_address *addr = i < pf->n_vfs ? &pf->vfs[i] : &pf->address;
                struct iov_allocation *a = registry_find_by_device(reg, addr);
                if (a)
                        r = api_error(resp, 409, "vf_allocated",
                                      "%s is held by allocation %s (owner %s); release it "
                                      "before changing the VFs of %s",
                                      pci_address_format(addr, buf), a->id, a->owner, pf->name);
                else if (registry_find_quarantined(reg, addr))
                        r = api_error(resp, 409, "vf_quarantined",
                                      "%s is quarantined; changing the VFs of %s would "
                                      "destroy it",
                                      pci_address_format(addr, buf), pf->name);
        }
        pthread_rwlock_unlock(&reg->lock);
        return r;
}

static int sriov_error(struct iov_api_response *resp, int r, const struct iov_pci_device *pf,
                       unsigned num_vfs)
{
        switch (r) {
        case -EINVAL:
                return api_error(resp, 400, "num_vfs_above_total",
                                 "%s supports at most %u VFs, %u requested", pf->name,
                                 pf->total_vfs, num_vfs);
        case -ENODEV:
                return api_error(resp, 400, "not_a_pf", "%s has no SR-IOV capability", pf->name);
        case -ETIMEDOUT:
                return api_error(resp, 504, "vfs_timeout",
                                 "%u VFs of %s did not appear within %u ms", num_vfs, pf->name,
                                 IOV_SRIOV_TIMEOUT_MS);
        case -ENOENT:
                return api_error(resp, 404, "device_not_found", "%s vanished", pf->name);
        default:
                return api_error(resp, 500, "sriov_failed", "setting %u VFs on %s failed: %s",
                                 num_vfs, pf->name, strerror(-r));
        }
}

/* Check and write under the lock; the pf read is the decision's view of the hardware. */
static int set_num_vfs_locked(struct iov_daemon *d, const struct iov_pci_address *address,
                              unsigned num_vfs, bool autoprobe, struct iov_api_response *resp)
{
        struct iov_pci_device pf = {0};
        char buf[IOV_PCI_ADDRESS_MAX];
        int r = pci_device_read(d->config.sysfs_root, address, &pf);
        if (r == -ENOENT)
                return api_error(resp, 404, "device_not_found", "no PCI function %s",
                                 pci_address_format(address, buf));
        if (r < 0)
                return api_error(resp, 500, "device_unreadable", "cannot read %s: %s",
                                 pci_address_format(address, buf), strerror(-r));
        if (!pf.is_pf)
                r = api_error(resp, 400, "not_a_pf", "%s is not an SR-IOV physical function%s",
                              pf.name, pf.is_vf ? " (it is a VF)" : "");
        else if (num_vfs > pf.total_vfs)
                r = sriov_error(resp, -EINVAL, &pf, num_vfs);
        else
                r = check_not_held(registry_get(d), &pf, resp);
        if (r == 0) {
                r = sriov_set_num_vfs(d->config.sysfs_root, address, num_vfs, autoprobe,
                                      IOV_SRIOV_TIMEOUT_MS);
                if (r < 0)
                        sriov_error(resp, r, &pf, num_vfs);
        }
        pci_device_clear(&pf);
        return r < 0 ? -EBADMSG : 0;
}

static struct json_object *pf_json(struct iov_daemon *d, const struct iov_pci_address *address)
{
        struct iov_pci_device pf = {0};
        char buf[IOV_PCI_ADDRESS_MAX];
        if (pci_device_read(d->config.sysfs_root, address, &pf) < 0)
                return NULL;
        struct json_object *o = json_object_new_object(), *vfs = json_object_new_array();
        for (size_t i = 0; i < pf.n_vfs; i++)
                json_object_array_add(vfs,
                                      json_object_new_string(pci_address_format(&pf.vfs[i], buf)));
        json_object_object_add(o, "address", json_object_new_string(pf.name));
        json_object_object_add(o, "total_vfs", json_object_new_int64(pf.total_vfs));
        json_object_object_add(o, "num_vfs", json_object_new_int64(pf.num_vfs));
        json_object_object_add(o, "drivers_autoprobe",
                               json_object_new_boolean(pf.drivers_autoprobe));
        json_object_object_add(o, "vfs", vfs);
        pci_device_clear(&pf);
        return o;
}

static int sriov_put(struct iov_daemon *d, const struct iov_api_request *req,
                     struct iov_api_response *resp)
{
        static const struct iov_api_field fields[] = {
                {"num_vfs", json_type_int, true, false},
                {"drivers_autoprobe", json_type_boolean, false, false},
        };
        int r = api_body_check(req, resp, fields, ARRAY_SIZE(fields));
        if (r < 0)
                return r;
        struct iov_pci_address address;
        r = api_param_address(req, resp, "address", &address);
        if (r < 0)
                return r;
        int64_t n = json_object_get_int64(json_object_object_get(req->body, "num_vfs"));
        if (n < 0 || n > 65535)
                return api_error(resp, 400, "invalid_value",
                                 "num_vfs must be an integer from 0 to 65535");
        struct json_object *ap = json_object_object_get(req->body, "drivers_autoprobe");
        bool autoprobe = ap && json_object_get_boolean(ap);

        /* This PF alone: a VF change elsewhere, or a bind, does not wait for it. */
        struct iov_hwlock *lock = NULL;
        r = alloc_lock_pf_of(d, &address, false, &lock);
        if (r == -ENOENT)
                return api_error(resp, 404, "device_not_found", "no PCI function %s",
                                 api_request_param(req, "address"));
        if (r < 0)
                return r;
        r = set_num_vfs_locked(d, &address, (unsigned)n, autoprobe, resp);
        alloc_unlock(d, lock);
        if (r < 0)
                return r;
        /* The PF and its VFs, old and new: publishes vfs_changed, device_added/removed. */
        (void)daemon_refresh_devices(d, &address, 1);
        struct json_object *o = pf_json(d, &address);
        if (!o)
                return api_error(resp, 500, "device_unreadable",
                                 "VFs set, but the PF cannot be read back");
        daemon_event_publish(d, "sriov_configured", json_object_get(o));
        return api_reply_json(resp, 200, o);
}

API_ROUTE(sriov_put, "PUT", "/v1/devices/{address}/sriov", sriov_put)
