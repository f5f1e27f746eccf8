/* SPDX-License-Identifier: MIT */
/*
 * response: filling a response: JSON, text, streams, and the one error shape
 * {"error": {"code": "stable_snake_case", "message": "text"}}.
 */
#include <stdio.h>

#include "api/api.h"
#include "daemon/daemon.h"

void api_response_clear(struct iov_api_response *resp)
{
        json_object_put(resp->json);
        free(resp->text);
        free(resp->allow);
        if (resp->stream_ops && resp->stream_ops->free)
                resp->stream_ops->free(resp->stream_userdata);
        *resp = (struct iov_api_response){0};
}

/* A handler may fill a response twice (an error after a partial success): keep the last. */
static void response_reset_body(struct iov_api_response *resp)
{
        char *allow = TAKE_PTR(resp->allow);
        api_response_clear(resp);
        resp->allow = allow;
}

int api_reply_json(struct iov_api_response *resp, unsigned status, struct json_object *json)
{
        response_reset_body(resp);
        resp->status = status;
        resp->json = json;
        resp->content_type = IOV_API_JSON_TYPE;
        return 0;
}

int api_reply_text(struct iov_api_response *resp, unsigned status, const char *content_type,
                   char *text)
{
        response_reset_body(resp);
        resp->status = status;
        resp->text = text;
        resp->content_type = content_type;
        return 0;
}

int api_reply_stream(struct iov_api_response *resp, const char *content_type,
                     const struct iov_api_stream_ops *ops, void *userdata)
{
        response_reset_body(resp);
        resp->status = 200;
        resp->content_type = content_type;
        resp->stream_ops = ops;
        resp->stream_userdata = userdata;
        return 0;
}

struct json_object *api_array_append(struct json_object *arr, struct json_object *item)
{
        if (arr && item && json_object_array_add(arr, item) == 0)
                return arr;
        json_object_put(item);
        json_object_put(arr);
        return NULL;
}

int api_reply_list(struct iov_api_response *resp, const char *key, struct json_object *arr)
{
        struct json_object *o = arr ? json_object_new_object() : NULL;
        if (!o) {
                json_object_put(arr);
                return -ENOMEM;
        }
        json_object_object_add(o, key, arr);
        return api_reply_json(resp, 200, o);
}

int api_error(struct iov_api_response *resp, unsigned status, const char *code, const char *fmt,
              ...)
{
        _cleanup_free_ char *message = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&message, fmt, ap) < 0)
                message = NULL;
        va_end(ap);

        struct json_object *inner = json_object_new_object();
        struct json_object *outer = json_object_new_object();
        if (inner && outer) {
                json_object_object_add(inner, "code", json_object_new_string(code));
                json_object_object_add(inner, "message",
                                       json_object_new_string(message ? message : code));
                json_object_object_add(outer, "error", inner);
                inner = NULL;
        }
        json_object_put(inner);
        api_reply_json(resp, status, outer);
        return -EBADMSG;
}

int api_reply_problem(struct iov_api_response *resp, const struct iov_problem *p)
{
        int r = api_error(resp, p->status, p->code, "%s", p->message);
        struct json_object *error = NULL;
        if (!p->details || !json_object_object_get_ex(resp->json, "error", &error))
                return r;
        json_object_object_foreach (p->details, key, value)
                json_object_object_add(error, key, json_object_get(value));
        return r;
}
