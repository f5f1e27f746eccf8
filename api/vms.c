/* SPDX-License-Identifier: MIT */
/*
 * /v1/vms: define VMs, run them (one iovd-vmm each), read their consoles. The lifecycle
 * lives in vms/ (public header vms/vms.h; the files a definition names are opened there,
 * confined to the image directories); this file checks requests (the definition with the
 * VM contract's parser) and shapes the answers.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "api/api.h"
#include "daemon/daemon.h"
#include "vms/vms.h"

#define VM_STOP_TIMEOUT_MAX_SEC 600

static bool int_field(struct json_object *body, const char *key, int64_t *ret)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(body, key, &v) || !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

/* The contract's refusals (vm-contract.h) as the API's error codes. */
static int reply_spec_error(struct iov_api_response *resp, const struct iov_vm_spec_error *err)
{
        switch (err->problem) {
        case IOV_VM_SPEC_NOT_OBJECT:
                return api_error(resp, 400, "invalid_body", "%s", err->message);
        case IOV_VM_SPEC_UNKNOWN_FIELD:
                return api_error(resp, 400, "unknown_field", "%s", err->message);
        case IOV_VM_SPEC_WRONG_TYPE:
                return api_error(resp, 400, "wrong_type", "%s", err->message);
        case IOV_VM_SPEC_MISSING_FIELD:
                return api_error(resp, 400, "missing_field", "%s", err->message);
        case IOV_VM_SPEC_INVALID_PATH:
                return api_error(resp, 400, "invalid_path", "%s", err->message);
        case IOV_VM_SPEC_INVALID_DEVICE:
                return api_error(resp, 400, "invalid_device", "%s", err->message);
        case IOV_VM_SPEC_INVALID_VALUE:
                break;
        }
        return api_error(resp, 400, "invalid_value", "%s", err->message);
}

/* The body is read by the parser iovd-vmm uses for --config, so what one accepts the other
 * does; devices are parsed there, once. */
static int parse_definition(const struct iov_api_request *req, struct iov_api_response *resp,
                            struct iov_vm_spec *ret)
{
        if (!req->body)
                return api_error(resp, 400, "missing_body", "this request needs a JSON body");
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err;
        int r = vm_spec_parse_json(req->body, 0, &spec, &err);
        if (r == -EINVAL)
                return reply_spec_error(resp, &err);
        if (r == -ENOMEM)
                return api_error(resp, 500, "out_of_memory", "out of memory");
        if (r < 0)
                return r;
        *ret = spec;
        return 0;
}

static int handle_create(struct iov_daemon *d, const struct iov_api_request *req,
                         struct iov_api_response *resp)
{
        struct iov_vm_spec spec;
        int r = parse_definition(req, resp, &spec);
        if (r < 0)
                return r;
        struct iov_problem p = {0};
        struct json_object *vm = NULL;
        r = vms_create(d, &spec, &vm, &p);
        vm_spec_done(&spec);
        if (r == -EBADMSG)
                return api_reply_problem(resp, &p);
        if (r < 0)
                return r;
        return api_reply_json(resp, 201, vm);
}

/* GET /v1/vms ?state=: the VM states of api/openapi.yaml (vm_state_to_string). */
static const char *const state_values[] = {"created", "running", "paused",
                                           "stopped", "crashed", NULL};
static const struct iov_api_query_param list_query[] = {{"state", state_values}, {NULL, NULL}};

/* Keep the VMs of list ({"vms": [...]}) whose state is state. */
static void filter_by_state(struct json_object *list, const char *state)
{
        struct json_object *vms = json_object_object_get(list, "vms");
        for (size_t i = json_object_array_length(vms); i > 0; i--) {
                struct json_object *vm = json_object_array_get_idx(vms, i - 1);
                if (!streq_ptr(json_object_get_string(json_object_object_get(vm, "state")), state))
                        json_object_array_del_idx(vms, i - 1, 1);
        }
}

static int handle_list(struct iov_daemon *d, const struct iov_api_request *req,
                       struct iov_api_response *resp)
{
        struct json_object *vms = NULL;
        int r = vms_list(d, &vms);
        if (r < 0)
                return r;
        const char *state = api_request_query(req, "state");
        if (state)
                filter_by_state(vms, state);
        return api_reply_json(resp, 200, vms);
}

/* Shared tail of the handlers that answer with one VM or a problem. */
static int reply_result(struct iov_api_response *resp, int r, struct json_object *json,
                        const struct iov_problem *p)
{
        if (r == -EBADMSG)
                return api_reply_problem(resp, p);
        if (r < 0)
                return r;
        return api_reply_json(resp, 200, json);
}

static int handle_show(struct iov_daemon *d, const struct iov_api_request *req,
                       struct iov_api_response *resp)
{
        struct iov_problem p = {0};
        struct json_object *vm = NULL;
        int r = vms_show(d, api_request_param(req, "id"), &vm, &p);
        return reply_result(resp, r, vm, &p);
}

static const char *const force_values[] = {"true", "false", NULL};
static const struct iov_api_query_param delete_query[] = {{"force", force_values}, {NULL, NULL}};

/* ?force=true deletes a driver VM whose ports clients still name (their links stay down). */
static int handle_delete(struct iov_daemon *d, const struct iov_api_request *req,
                         struct iov_api_response *resp)
{
        struct iov_problem p = {0};
        struct json_object *o = NULL;
        const char *force = api_request_query(req, "force");
        int r = vms_delete(d, api_request_param(req, "id"), force && streq(force, "true"), &o, &p);
        return reply_result(resp, r, o, &p);
}

/* Actions take no body, or an empty object; stop also takes {"timeout_sec": N}. */
static int parse_action_body(const struct iov_api_request *req, struct iov_api_response *resp,
                             enum iov_vm_action action, unsigned *ret_timeout)
{
        static const struct iov_api_field stop_fields[] = {
                {"timeout_sec", json_type_int, false, false},
        };
        *ret_timeout = IOV_VM_STOP_TIMEOUT_SEC;
        if (!req->body)
                return 0;
        bool stop = action == IOV_VM_ACTION_STOP;
        int r = api_body_check(req, resp, stop_fields, stop ? ARRAY_SIZE(stop_fields) : 0);
        if (r < 0)
                return r;
        int64_t v;
        if (stop && int_field(req->body, "timeout_sec", &v)) {
                if (v < 0 || v > VM_STOP_TIMEOUT_MAX_SEC)
                        return api_error(resp, 400, "invalid_value",
                                         "\"timeout_sec\" must be 0..%d, not %lld",
                                         VM_STOP_TIMEOUT_MAX_SEC, (long long)v);
                *ret_timeout = (unsigned)v;
        }
        return 0;
}

static int handle_action(struct iov_daemon *d, const struct iov_api_request *req,
                         struct iov_api_response *resp, enum iov_vm_action action)
{
        unsigned timeout = IOV_VM_STOP_TIMEOUT_SEC;
        int r = parse_action_body(req, resp, action, &timeout);
        if (r < 0)
                return r;
        struct iov_problem p = {0};
        struct json_object *vm = NULL;
        r = vms_act(d, api_request_param(req, "id"), action, timeout, &vm, &p);
        return reply_result(resp, r, vm, &p);
}

#define VM_ACTION_HANDLER(name_, action_)                                                          \
        static int handle_##name_(struct iov_daemon *d, const struct iov_api_request *req,         \
                                  struct iov_api_response *resp)                                   \
        {                                                                                          \
                return handle_action(d, req, resp, action_);                                       \
        }
VM_ACTION_HANDLER(start, IOV_VM_ACTION_START)
VM_ACTION_HANDLER(stop, IOV_VM_ACTION_STOP)
VM_ACTION_HANDLER(kill, IOV_VM_ACTION_KILL)
VM_ACTION_HANDLER(pause, IOV_VM_ACTION_PAUSE)
VM_ACTION_HANDLER(resume, IOV_VM_ACTION_RESUME)

static ssize_t console_stream_read(void *userdata, char *buf, size_t max)
{
        ssize_t n = vms_console_follower_read(userdata, buf, max);
        if (n == VMS_CONSOLE_END)
                return IOV_API_STREAM_END;
        if (n == VMS_CONSOLE_ERROR)
                return IOV_API_STREAM_ERROR;
        return n;
}

static void console_stream_free(void *userdata)
{
        vms_console_follower_free(userdata);
}

static const struct iov_api_stream_ops console_stream_ops = {
        .read = console_stream_read,
        .free = console_stream_free,
};

static const char *const follow_values[] = {"0", "1", "false", "true", NULL};
static const struct iov_api_query_param console_query[] = {{"follow", follow_values}, {NULL, NULL}};

/* The router let only follow_values through. */
static bool follow_requested(const struct iov_api_request *req)
{
        const char *v = api_request_query(req, "follow");
        return v && (streq(v, "1") || streq(v, "true"));
}

static int handle_console(struct iov_daemon *d, const struct iov_api_request *req,
                          struct iov_api_response *resp)
{
        struct iov_problem p = {0};
        const char *id = api_request_param(req, "id");
        int r;
        if (!follow_requested(req)) {
                struct json_object *o = NULL;
                r = vms_console_read(d, id, &o, &p);
                return reply_result(resp, r, o, &p);
        }
        struct iov_vm_console_follower *f = NULL;
        r = vms_console_follow(d, id, &f, &p);
        if (r == -EBADMSG)
                return api_reply_problem(resp, &p);
        if (r < 0)
                return r;
        return api_reply_stream(resp, "text/plain; charset=utf-8", &console_stream_ops, f);
}

API_ROUTE(vms_create, "POST", "/v1/vms", handle_create)
API_ROUTE_QUERY(vms_list, "GET", "/v1/vms", handle_list, list_query)
API_ROUTE(vms_show, "GET", "/v1/vms/{id}", handle_show)
API_ROUTE_QUERY(vms_delete, "DELETE", "/v1/vms/{id}", handle_delete, delete_query)
API_ROUTE(vms_start, "POST", "/v1/vms/{id}/start", handle_start)
API_ROUTE(vms_stop, "POST", "/v1/vms/{id}/stop", handle_stop)
API_ROUTE(vms_kill, "POST", "/v1/vms/{id}/kill", handle_kill)
API_ROUTE(vms_pause, "POST", "/v1/vms/{id}/pause", handle_pause)
API_ROUTE(vms_resume, "POST", "/v1/vms/{id}/resume", handle_resume)
API_ROUTE_QUERY(vms_console, "GET", "/v1/vms/{id}/console", handle_console, console_query)
