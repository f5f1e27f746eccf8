/* SPDX-License-Identifier: MIT */
/*
 * api: the REST/JSON edge of iovd. One route table, filled by the resource files
 * themselves: a resource (api/devices.c, api/pools.c, ...) declares its routes with
 * API_ROUTE() (or API_ROUTE_QUERY(), with the query parameters it takes) and nothing
 * else has to change but the build. The server (api/server.c) matches the method and
 * path, checks the query against the route's table, reads and strictly parses the body,
 * and calls the handler.
 *
 * Every connection runs in its own thread (libmicrohttpd thread-per-connection), so a
 * handler may take the daemon's locks and a stream may block waiting for data without
 * holding up any other request.
 *
 * Handlers return 0 when they filled the response, or a negative errno: when the response
 * was already filled (api_error, api_body_check) it is sent as is, otherwise the client
 * gets 500 "internal_error" naming the errno.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/util.h"

struct iov_daemon;

/* Bodies above this size get 413: a declared Content-Length above it before the body is
 * read, a chunked body as soon as it passes it (the rest is discarded, then cut). */
#define IOV_API_BODY_MAX    (1024 * 1024)
#define IOV_API_MAX_PARAMS  4
#define IOV_API_MAX_QUERY   16
#define IOV_API_JSON_TYPE   "application/json"
#define IOV_API_NDJSON_TYPE "application/x-ndjson"

struct iov_api_param {
        const char *name; /* owned by the request */
        char *value;      /* percent-decoded; may hold '/' ("%2f"), never NUL: validate */
};

struct iov_api_request {
        const char *method; /* "GET", "POST", "PUT", "DELETE" */
        const char *path;   /* as received, still percent-encoded */
        const char *route;  /* the pattern that matched, e.g. "/v1/devices/{address}" */
        struct iov_api_param params[IOV_API_MAX_PARAMS];
        size_t n_params;
        struct iov_api_param query[IOV_API_MAX_QUERY];
        size_t n_query;
        struct json_object *body; /* strictly parsed; NULL when the request had no body */
        void *connection;         /* the server's own; for api_request_header */
};

/* A path capture ("address" for "{address}"); NULL when the route has no such name. */
const char *api_request_param(const struct iov_api_request *req, const char *name);
/* A query parameter; NULL when absent. Repeated parameters are refused by the server. */
const char *api_request_query(const struct iov_api_request *req, const char *name);
/* A request header (name case-insensitive, RFC 9110 §5.1); NULL when absent. */
const char *api_request_header(const struct iov_api_request *req, const char *name);

/* ---- responses ------------------------------------------------------------------------ */

/* A streamed body (events, a VM console). read() runs in the connection's own thread and
 * may block, but at most about a second at a time so shutdown and dropped clients are
 * noticed: it returns the number of bytes written to buf (at most max), 0 when nothing
 * arrived yet (it is called again), IOV_API_STREAM_END to finish the response cleanly
 * or IOV_API_STREAM_ERROR to cut the connection. free() runs once when the connection
 * ends, however it ends. */
#define IOV_API_STREAM_END   ((ssize_t)-1)
#define IOV_API_STREAM_ERROR ((ssize_t)-2)

struct iov_api_stream_ops {
        ssize_t (*read)(void *userdata, char *buf, size_t max);
        void (*free)(void *userdata);
};

struct iov_api_response {
        unsigned status;          /* 0 until a reply function ran */
        struct json_object *json; /* owned */
        char *text;               /* owned; a non-JSON body (metrics) */
        const char *content_type; /* static string */
        char *allow;              /* owned; the Allow header of a 405 */
        const struct iov_api_stream_ops *stream_ops;
        void *stream_userdata;
};

/* Each takes ownership of what it is given (also on failure) and returns 0. */
int api_reply_json(struct iov_api_response *resp, unsigned status, struct json_object *json);
int api_reply_text(struct iov_api_response *resp, unsigned status, const char *content_type,
                   char *text);
int api_reply_stream(struct iov_api_response *resp, const char *content_type,
                     const struct iov_api_stream_ops *ops, void *userdata);

/* Building a list answer: append item to arr; when item is NULL (out of memory) or cannot
 * be added, both are dropped and NULL returned, so a list never has holes. Then
 * api_reply_list answers 200 {"key": arr}, or -ENOMEM when arr is NULL. */
struct json_object *api_array_append(struct json_object *arr, struct json_object *item);
int api_reply_list(struct iov_api_response *resp, const char *key, struct json_object *arr);

/* The one error shape: status plus {"error": {"code": code, "message": ...}}. Codes are
 * stable snake_case identifiers clients may branch on. Returns -EBADMSG so a handler can
 * `return api_error(...)` and have the reply sent as is. */
int api_error(struct iov_api_response *resp, unsigned status, const char *code, const char *fmt,
              ...) _printf_(4, 5);

struct iov_problem;

/* The same error reply for a module's refusal (daemon/daemon.h): p's status, code and
 * message, and each key of p->details added to the error object (p keeps its details;
 * the caller clears p). Returns -EBADMSG like api_error. */
int api_reply_problem(struct iov_api_response *resp, const struct iov_problem *p);

void api_response_clear(struct iov_api_response *resp);

struct iov_pci_address;

/* The path capture name parsed as a PCI address. Returns 0, or -EBADMSG with resp filled
 * (400 "invalid_address" quoting what was given). */
int api_param_address(const struct iov_api_request *req, struct iov_api_response *resp,
                      const char *name, struct iov_pci_address *ret);

/* ---- strict request bodies ------------------------------------------------------------ */

/* One accepted body field. Integer fields refuse doubles; nullable fields also take null. */
struct iov_api_field {
        const char *name;
        enum json_type type;
        bool required;
        bool nullable;
};

/* Check req->body against a table: a JSON object (400 "invalid_body"; "missing_body"
 * when absent), no field outside the table (400 "unknown_field"), each of the right type
 * (400 "wrong_type"), every required one present (400 "missing_field"). Messages name the
 * field. Returns 0, or -EBADMSG with resp filled. Duplicate keys, malformed JSON, trailing
 * text and strings holding NUL (\u0000) never reach a handler: the server refuses them
 * (400 "duplicate_key", "malformed_json", "trailing_garbage", "nul_in_string"), so every
 * string of a body is a whole C string. */
int api_body_check(const struct iov_api_request *req, struct iov_api_response *resp,
                   const struct iov_api_field *fields, size_t n_fields);

/* Strictly parse a whole JSON text: one value, no duplicate keys, nothing after it but
 * white space. On failure returns -EBADMSG and, when ret_code/ret_message are given, a
 * static code and an allocated message. */
int api_json_parse_strict(const char *text, size_t size, struct json_object **ret,
                          const char **ret_code, char **ret_message);

/* ---- the route table ------------------------------------------------------------------ */

typedef int (*iov_api_handler)(struct iov_daemon *d, const struct iov_api_request *req,
                               struct iov_api_response *resp);

/* One query parameter a route accepts. values lists the allowed values (NULL-terminated)
 * when api/openapi.yaml gives the parameter an enum, and is NULL when the handler parses
 * the value itself (a PCI address, a number). */
struct iov_api_query_param {
        const char *name;
        const char *const *values;
};

struct iov_api_route {
        const char *method;
        const char *pattern; /* "/v1/devices/{address}": {name} captures one segment */
        iov_api_handler handler;
        const struct iov_api_query_param *query; /* ends with {NULL}; NULL: takes none */
        struct iov_api_route *next;
};

void api_route_register(struct iov_api_route *route);
/* The table, for checks that every route is documented; follow ->next. */
const struct iov_api_route *api_routes(void);

/* Declare a route from a resource file; runs before main(). Libraries holding resources
 * are linked whole (see daemon/meson.build) so no route is dropped by the linker. A route
 * declared with API_ROUTE takes no query parameters; API_ROUTE_QUERY names the ones it
 * takes (an array of struct iov_api_query_param ending with {NULL}), and the server
 * refuses any other, and any value outside a declared enum, before the handler runs. */
#define API_ROUTE(id, method_, pattern_, handler_)                                                 \
        API_ROUTE_QUERY(id, method_, pattern_, handler_, NULL)
#define API_ROUTE_QUERY(id, method_, pattern_, handler_, query_)                                   \
        static struct iov_api_route api_route_##id = {                                             \
                .method = (method_),                                                               \
                .pattern = (pattern_),                                                             \
                .handler = (handler_),                                                             \
                .query = (query_),                                                                 \
        };                                                                                         \
        __attribute__((constructor)) static void api_route_register_##id(void)                     \
        {                                                                                          \
                api_route_register(&api_route_##id);                                               \
        }

/* Routing result for one method and path. */
enum iov_api_match {
        IOV_API_MATCH_FOUND,
        IOV_API_MATCH_NO_METHOD, /* the path exists for other methods: 405 */
        IOV_API_MATCH_NO_PATH,   /* 404 */
        IOV_API_MATCH_BAD_PATH,  /* empty segment, bad escape or a decoded NUL: 400 */
};

/* Match method and raw path against the table. On FOUND fills req->route and
 * req->params; on NO_METHOD *ret_allow lists the allowed methods ("GET, POST"). */
enum iov_api_match api_route_match(const char *method, const char *path,
                                   struct iov_api_request *req, const struct iov_api_route **ret,
                                   char **ret_allow);

/* The query against route->query: 400 "unknown_parameter" for a name the route does not
 * declare, 400 "invalid_parameter" for a value outside a declared enum (both messages name
 * what is accepted). Returns 0, or -EBADMSG with resp filled. The server runs it on every
 * request before the handler, so handlers only read the parameters they declared. */
int api_route_check_query(const struct iov_api_route *route, const struct iov_api_request *req,
                          struct iov_api_response *resp);

/* Percent-decode in place; plus_is_space for query strings. -EINVAL on a bad escape or a
 * decoded NUL. */
int api_percent_decode(char *s, bool plus_is_space);

/* Free what api_route_match and the query parser put into req. */
void api_request_clear(struct iov_api_request *req);

/* ---- the HTTP server ------------------------------------------------------------------ */

struct iov_api_server;

/* One listener: "unix:PATH" (mode 0660; a stale socket nobody listens on is replaced) or
 * "tcp:HOST:PORT" (every request needs "Authorization: Bearer TOKEN"). */
int api_server_start(struct iov_daemon *d, const char *listen, const char *token,
                     struct iov_api_server **ret);
void api_server_stop(struct iov_api_server *server);

/* TCP clients prove themselves with a bearer token that cannot be guessed: at least 128
 * bits, the strength of a random UUID or a 128-bit key. */
#define IOV_API_TOKEN_MIN_BITS 128

/* Read the bearer token for TCP listeners from path (one line; trailing white space
 * dropped). The file must be a regular file with no access for group or others: -EPERM
 * otherwise, with its mode in ret_mode (may be NULL). The token must be 32 or more hex
 * digits, or 22 or more characters of base64url or base64 ("-._~+/" too, "=" padding
 * not counted; the b64token of RFC 6750 §2.1): -EINVAL otherwise, as for an empty file. */
int api_token_read(const char *path, char **ret, unsigned *ret_mode);

/* The API of a running daemon: a server on every listener of d's configuration, tcp ones
 * guarded by d's token. Failures are logged naming the listener. api_stop ends every
 * connection; it returns once no handler runs (a stream must end by itself, see
 * daemon_is_stopping). */
struct iov_api;
int api_start(struct iov_daemon *d, struct iov_api **ret);
void api_stop(struct iov_api *api);
DEFINE_CLEANUP_FUNC(struct iov_api, api_stop)

/* ---- shared JSON forms ---------------------------------------------------------------- */

struct iov_pci_device;
struct iov_iommu_group;
struct iov_snapshot;

/* A device as GET /v1/devices/{address} shows it (new reference, NULL on OOM). */
struct json_object *api_device_json(struct iov_daemon *d, const struct iov_pci_device *dev);
/* The same as JSON text, written to out (lists of thousands of devices). */
void api_device_write(struct iov_daemon *d, const struct iov_pci_device *dev, FILE *out);
/* The network settings of a VF of a network PF as the kernel reports them now, with its
 * PF's interface and link (api/vf-net.c); NULL when dev is no VF of a network PF. */
struct json_object *api_vf_net_json(struct iov_daemon *d, const struct iov_pci_address *vf);
/* A group as GET /v1/iommu-groups/{id} shows it: id, devices, viable, blockers, owner. */
struct json_object *api_group_json(struct iov_daemon *d, const struct iov_snapshot *s,
                                   const struct iov_iommu_group *g);
void api_group_write(struct iov_daemon *d, const struct iov_snapshot *s,
                     const struct iov_iommu_group *g, FILE *out);
