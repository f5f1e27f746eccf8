/* SPDX-License-Identifier: MIT */
/*
 * /v1/allocations: hand a device's whole IOMMU group to an owner (by address, from a
 * pool, or a named device counted in its pool), list, relabel the owner and release. The
 * decisions live in alloc/allocate.c, alloc/release.c and alloc/vm-owner.c; this file
 * checks the request and shapes the answer.
 */
#include <ctype.h>
#include <stdio.h>

#include "api/api.h"
#include "alloc/alloc.h"
#include "daemon/daemon.h"

/* Owners are labels chosen by orchestration: printable ASCII, bounded. */
static bool owner_is_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > IOV_ALLOCATION_OWNER_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isprint((unsigned char)s[i]))
                        return false;
        return true;
}

/* Shared tail of the handlers that ask alloc/allocate.c or alloc/release.c: the answer
 * with status, the refusal in p, or a bare errno.
 * Clears p either way. */
static int reply_outcome(struct iov_api_response *resp, int r, unsigned status,
                         struct json_object *out, struct iov_problem *p)
{
        if (r == -EBADMSG)
                api_reply_problem(resp, p);
        daemon_problem_clear(p);
        if (r < 0)
                return r;
        return api_reply_json(resp, status, out);
}

/* "mac": "auto" (iovd derives one) or a unicast, non-zero address for the VF. */
static int check_mac(const struct iov_api_request *req, struct iov_api_response *resp)
{
        struct json_object *v = json_object_object_get(req->body, "mac");
        uint8_t mac[IOV_NETDEV_MAC_LEN];
        const char *s = v ? json_object_get_string(v) : NULL;
        if (!s || streq(s, "auto") || (netdev_mac_parse(s, mac) == 0 && netdev_mac_assignable(mac)))
                return 0;
        return api_error(resp, 400, "invalid_value",
                         "mac must be \"auto\" or a unicast, non-zero address like "
                         "02:00:00:00:00:01, not \"%s\"",
                         s);
}

static int parse_request(const struct iov_api_request *req, struct iov_api_response *resp,
                         struct iov_allocation_request *ret)
{
        static const struct iov_api_field fields[] = {
                {"owner", json_type_string, true, false},
                {"device", json_type_string, false, false},
                {"pool", json_type_string, false, false},
                {"mac", json_type_string, false, false},
        };
        int r = api_body_check(req, resp, fields, ARRAY_SIZE(fields));
        if (r >= 0)
                r = check_mac(req, resp);
        if (r < 0)
                return r;
        struct json_object *owner = json_object_object_get(req->body, "owner");
        struct json_object *device = json_object_object_get(req->body, "device");
        struct json_object *pool = json_object_object_get(req->body, "pool");
        if (!owner_is_valid(json_object_get_string(owner)))
                return api_error(resp, 400, "invalid_value",
                                 "owner must be 1 to %d printable ASCII characters",
                                 IOV_ALLOCATION_OWNER_MAX);
        if (!device && !pool)
                return api_error(resp, 400, "missing_field",
                                 "give device (an address), pool (a name), or both (that "
                                 "device as a member of that pool)");
        *ret = (struct iov_allocation_request){
                .owner = json_object_get_string(owner),
                .mac = json_object_get_string(json_object_object_get(req->body, "mac")),
                .pool = pool ? json_object_get_string(pool) : NULL,
                .pool_device = pool && device,
        };
        if (pool && !pool_name_is_valid(ret->pool))
                return api_error(resp, 400, "invalid_value",
                                 "pool must be a pool name ([a-z0-9_-], at most %d)",
                                 IOV_POOL_NAME_MAX);
        if (device && pci_address_parse(json_object_get_string(device), &ret->device) < 0)
                return api_error(resp, 400, "invalid_address",
                                 "device must be a PCI address like \"0000:01:00.0\"");
        return 0;
}

static int allocations_post(struct iov_daemon *d, const struct iov_api_request *req,
                            struct iov_api_response *resp)
{
        struct iov_allocation_request ar;
        int r = parse_request(req, resp, &ar);
        if (r < 0)
                return r;
        struct iov_problem p = {0};
        struct json_object *out = NULL;
        r = allocations_create(d, &ar, &out, &p);
        return reply_outcome(resp, r, 201, out, &p);
}

/* The filters of GET /v1/allocations; state takes the allocation states of
 * api/openapi.yaml (allocation_state_to_string). */
static const char *const state_values[] = {"pending", "active", "releasing", "lost", NULL};
static const struct iov_api_query_param list_query[] = {
        {"owner", NULL},
        {"state", state_values},
        {"pool", NULL},
        {NULL, NULL},
};

static bool filter_matches(const struct iov_api_request *req, const struct iov_allocation *a)
{
        const char *owner = api_request_query(req, "owner");
        const char *state = api_request_query(req, "state");
        const char *pool = api_request_query(req, "pool");
        return (!owner || streq(owner, a->owner)) &&
               (!state || streq(state, allocation_state_to_string(a->state))) &&
               (!pool || streq_ptr(pool, a->pool));
}

static int allocations_list(struct iov_daemon *d, const struct iov_api_request *req,
                            struct iov_api_response *resp)
{
        struct iov_registry *reg = registry_get(d);
        struct json_object *arr = json_object_new_array();
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; arr && i < reg->n_allocations; i++)
                if (filter_matches(req, reg->allocations[i]))
                        arr = api_array_append(arr, allocation_to_api_json(reg->allocations[i],
                                                                           d->config.dev_root));
        pthread_rwlock_unlock(&reg->lock);
        return api_reply_list(resp, "allocations", arr);
}

static int allocations_get(struct iov_daemon *d, const struct iov_api_request *req,
                           struct iov_api_response *resp)
{
        const char *id = api_request_param(req, "id");
        struct iov_registry *reg = registry_get(d);
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = registry_find_allocation(reg, id);
        struct json_object *o = a ? allocation_to_api_json(a, d->config.dev_root) : NULL;
        pthread_rwlock_unlock(&reg->lock);
        if (!a)
                return api_error(resp, 404, "allocation_not_found", "no allocation %s", id);
        if (!o)
                return -ENOMEM;
        return api_reply_json(resp, 200, o);
}

static int allocations_delete(struct iov_daemon *d, const struct iov_api_request *req,
                              struct iov_api_response *resp)
{
        struct iov_problem p = {0};
        struct json_object *out = NULL;
        int r = allocations_release(d, api_request_param(req, "id"), &out, &p);
        return reply_outcome(resp, r, 200, out, &p);
}

/* PATCH /v1/allocations/{id} {"owner"}: a new owner label, checked as at create. */
static int allocations_patch(struct iov_daemon *d, const struct iov_api_request *req,
                             struct iov_api_response *resp)
{
        static const struct iov_api_field fields[] = {
                {"owner", json_type_string, true, false},
        };
        int r = api_body_check(req, resp, fields, ARRAY_SIZE(fields));
        if (r < 0)
                return r;
        const char *owner = json_object_get_string(json_object_object_get(req->body, "owner"));
        if (!owner_is_valid(owner))
                return api_error(resp, 400, "invalid_value",
                                 "owner must be 1 to %d printable ASCII characters",
                                 IOV_ALLOCATION_OWNER_MAX);
        struct iov_problem p = {0};
        struct json_object *out = NULL;
        r = allocations_set_owner(d, api_request_param(req, "id"), owner, &out, &p);
        return reply_outcome(resp, r, 200, out, &p);
}

static struct json_object *quarantine_json(const struct iov_quarantine_entry *q)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "address",
                               json_object_new_string(pci_address_format(&q->member.address, buf)));
        json_object_object_add(o, "reason", json_object_new_string(q->reason));
        json_object_object_add(o, "since_usec", json_object_new_int64((int64_t)q->since_usec));
        return o;
}

/* GET /v1/quarantine: devices held back on vfio-pci after a failed reset or restore. */
static int quarantine_list(struct iov_daemon *d, const struct iov_api_request *req,
                           struct iov_api_response *resp)
{
        (void)req;
        struct iov_registry *reg = registry_get(d);
        struct json_object *arr = json_object_new_array();
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; arr && i < reg->n_quarantine; i++)
                arr = api_array_append(arr, quarantine_json(&reg->quarantine[i]));
        pthread_rwlock_unlock(&reg->lock);
        return api_reply_list(resp, "quarantined", arr);
}

/* DELETE /v1/quarantine/{address}: an operator clears the device for use again. */
static int quarantine_delete(struct iov_daemon *d, const struct iov_api_request *req,
                             struct iov_api_response *resp)
{
        struct iov_pci_address address;
        int r = api_param_address(req, resp, "address", &address);
        if (r < 0)
                return r;
        struct iov_problem p = {0};
        struct json_object *out = NULL;
        r = allocations_unquarantine(d, &address, &out, &p);
        return reply_outcome(resp, r, 200, out, &p);
}

API_ROUTE_QUERY(allocations_list, "GET", "/v1/allocations", allocations_list, list_query)
API_ROUTE(allocations_post, "POST", "/v1/allocations", allocations_post)
API_ROUTE(allocations_get, "GET", "/v1/allocations/{id}", allocations_get)
API_ROUTE(allocations_patch, "PATCH", "/v1/allocations/{id}", allocations_patch)
API_ROUTE(allocations_delete, "DELETE", "/v1/allocations/{id}", allocations_delete)
API_ROUTE(quarantine_list, "GET", "/v1/quarantine", quarantine_list)
API_ROUTE(quarantine_delete, "DELETE", "/v1/quarantine/{address}", quarantine_delete)
