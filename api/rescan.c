/* SPDX-License-Identifier: MIT */
/* POST /v1/rescan: read the hardware again now, for trees without uevents (tests,
 * containers). Answers with the new inventory's generation and size. */
#include "api/api.h"
#include "daemon/daemon.h"

static int rescan_post(struct iov_daemon *d, const struct iov_api_request *req,
                       struct iov_api_response *resp)
{
        /* No body fields are defined: an empty object (or no body) only. */
        int r = req->body ? api_body_check(req, resp, NULL, 0) : 0;
        if (r < 0)
                return r;
        r = daemon_rescan(d);
        if (r < 0)
                return api_error(resp, 500, "rescan_failed", "reading the hardware failed: %s",
                                 strerror(-r));
        _cleanup_snapshot_ struct iov_snapshot *s = daemon_snapshot_get(d);
        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "generation", json_object_new_uint64(s->generation));
        json_object_object_add(o, "devices", json_object_new_uint64(s->pci->n_devices));
        json_object_object_add(o, "iommu_groups", json_object_new_uint64(s->n_groups));
        return api_reply_json(resp, 200, o);
}

API_ROUTE(rescan, "POST", "/v1/rescan", rescan_post)
