/* SPDX-License-Identifier: MIT */
/*
 * /v1/allocations: hand a device's whole IOMMU group to an owner (by address or from a
 * pool), list and release. The decisions live in alloc/allocate.c and alloc/release.c;
 * this file checks the request and shapes the answer.
 */
#include <ctype.h>
#include <stdio.h>

#include "api/api.h"
#include "alloc/alloc.h"
#include "daemon/daemon.h"

static const char *const no_query[] = {NULL};

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

static int parse_request(const struct iov_api_request *req, struct iov_api_response *resp,
                         struct iov_allocation_request *ret)
{
        static const struct iov_api_field fields[] = {
                {"owner", json_type_string, true, false},
                {"device", json_type_string, false, false},
                {"pool", json_type_string, false, false},
        };
        int r = api_body_check(req, resp, fields, ARRAY_SIZE(fields));
        if (r < 0)
                return r;
        struct json_object *owner = json_object_object_get(req->body, "owner");
        struct json_object *device = json_object_object_get(req->body, "device");
        struct json_object *pool = json_object_object_get(req->body, "pool");
        if (!owner_is_valid(json_object_get_string(owner)))
                return api_error(resp, 400, "invalid_value",
                                 "owner must be 1 to %d printable ASCII characters",
                                 IOV_ALLOCATION_OWNER_MAX);
        if (!device == !pool)
                return api_error(resp, 400, device ? "conflicting_fields" : "missing_field",
                                 "give exactly one of device (an address) or pool (a name)");
        *ret = (struct iov_allocation_request){.owner = json_object_get_string(owner)};
        if (pool) {
                ret->pool = json_object_get_string(pool);
                if (!pool_name_is_valid(ret->pool))
                        return api_error(resp, 400, "invalid_value",
                                         "pool must be a pool name ([a-z0-9_-], at most %d)",
                                         IOV_POOL_NAME_MAX);
        } else if (pci_address_parse(json_object_get_string(device), &ret->device) < 0)
                return api_error(resp, 400, "invalid_address",
                                 "device must be a PCI address like \"0000:01:00.0\"");
        return 0;
}

static int allocations_post(struct iov_daemon *d, const struct iov_api_request *req,
                            struct iov_api_response *resp)
{
        struct iov_allocation_request ar;
        int r = api_query_check(req, resp, no_query);
        if (r >= 0)
                r = parse_request(req, resp, &ar);
        if (r < 0)
                return r;
        struct iov_problem p = {0};
        struct json_object *out = NULL;
        r = allocations_create(d, &ar, &out, &p);
        return reply_outcome(resp, r, 201, out, &p);
}

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
        static const char *const allowed[] = {"owner", "state", "pool", NULL};
        int r = api_query_check(req, resp, allowed);
        if (r < 0)
                return r;
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
        int r = api_query_check(req, resp, no_query);
        if (r < 0)
                return r;
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
        int r = api_query_check(req, resp, no_query);
        if (r < 0)
                return r;
        struct iov_problem p = {0};
        struct json_object *out = NULL;
        r = allocations_release(d, api_request_param(req, "id"), &out, &p);
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
        int r = api_query_check(req, resp, no_query);
        if (r < 0)
                return r;
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
        int r = api_query_check(req, resp, no_query);
        if (r >= 0)
                r = api_param_address(req, resp, "address", &address);
        if (r < 0)
                return r;
        struct iov_problem p = {0};
        struct json_object *out = NULL;
        r = allocations_unquarantine(d, &address, &out, &p);
        return reply_outcome(resp, r, 200, out, &p);
}

API_ROUTE(allocations_list, "GET", "/v1/allocations", allocations_list)
API_ROUTE(allocations_post, "POST", "/v1/allocations", allocations_post)
API_ROUTE(allocations_get, "GET", "/v1/allocations/{id}", allocations_get)
API_ROUTE(allocations_delete, "DELETE", "/v1/allocations/{id}", allocations_delete)
API_ROUTE(quarantine_list, "GET", "/v1/quarantine", quarantine_list)
API_ROUTE(quarantine_delete, "DELETE", "/v1/quarantine/{address}", quarantine_delete)
