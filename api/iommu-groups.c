/* SPDX-License-Identifier: MIT */
/*
 * iommu-groups: GET /v1/iommu-groups and GET /v1/iommu-groups/{id}. A group is the unit
 * VFIO hands out; "viable" says whether every member could go to vfio-pci now (no host
 * driver in the way), "blockers" names those that stop it, "owner" who holds it.
 */
#include "api/api.h"
#include "daemon/daemon.h"

static int groups_list(struct iov_daemon *d, const struct iov_api_request *req,
                       struct iov_api_response *resp)
{
        (void)req;
        _cleanup_snapshot_ struct iov_snapshot *s = daemon_snapshot_get(d);
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        if (!out)
                return -ENOMEM;
        fputs("{\"groups\":[", out);
        for (size_t i = 0; i < s->n_groups; i++) {
                if (i)
                        fputc(',', out);
                api_group_write(d, s, &s->groups[i], out);
        }
        fputs("]}\n", out);
        if (fclose(out) != 0) {
                free(text);
                return -ENOMEM;
        }
        return api_reply_text(resp, 200, IOV_API_JSON_TYPE, text);
}

static int groups_get(struct iov_daemon *d, const struct iov_api_request *req,
                      struct iov_api_response *resp)
{
        const char *text = api_request_param(req, "id");
        uint64_t id;

        if (util_parse_u64(text, 10, &id) < 0 || id > UINT32_MAX)
                return api_error(resp, 400, "invalid_group_id",
                                 "\"%s\" is not an IOMMU group number", text);
        _cleanup_snapshot_ struct iov_snapshot *s = daemon_snapshot_get(d);
        const struct iov_iommu_group *g = daemon_snapshot_find_group(s, (unsigned)id);
        if (!g)
                return api_error(resp, 404, "group_not_found", "no IOMMU group %llu",
                                 (unsigned long long)id);
        struct json_object *o = api_group_json(d, s, g);
        return o ? api_reply_json(resp, 200, o) : -ENOMEM;
}

API_ROUTE(groups_list, "GET", "/v1/iommu-groups", groups_list)
API_ROUTE(groups_get, "GET", "/v1/iommu-groups/{id}", groups_get)
