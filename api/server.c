/* SPDX-License-Identifier: MIT */
/*
 * server: libmicrohttpd glue. One MHD instance per listener, thread per connection (so
 * streams and slow handlers never hold up other clients). A request goes: authenticate
 * (TCP only), refuse oversized bodies from Content-Length before reading them, collect
 * the body, route, check Content-Type, parse strictly, call the handler, count it.
 */
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "api/api.h"
#include "api/conn-limit.h"
#include "api/listen.h"
#include "daemon/daemon.h"

/* Who may hold how many connections, and the 5 s deadline for a request's headers (an
 * idle keep-alive included): api/conn-limit.c, which accepts for MHD. A connection
 * silent for --connection-timeout-sec (default 60: a stalled request body) is closed by
 * MHD, so idle clients cannot hold every thread. Streams are exempt once their response is queued:
 * a VM console may rightly stay silent for hours, and a plain-text body has no room for a
 * keep-alive. A dead client of a stream is still noticed: the events stream sends a blank line
 * every 15 s, a console ends with its VM, and either one's next write to a closed socket fails. */
/* A client sending a chunked body past the cap is read (and dropped) this far, then cut. */
#define DISCARD_LIMIT (16 * IOV_API_BODY_MAX)

struct iov_api_server {
        struct iov_daemon *d;
        struct MHD_Daemon *mhd;
        struct iov_conn_limit *limit;
        char *unix_path; /* removed at stop */
        char *token;     /* TCP listeners only */
};

struct connection_ctx {
        uint64_t started_usec; /* headers received */
        char *body;
        size_t size;
        size_t discarded;
        bool too_large;
};

static int connection_fd(struct MHD_Connection *c)
{
        const union MHD_ConnectionInfo *info =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        return info ? info->connect_fd : -1;
}

/* MHD would decode %2f before routing; the router decodes each segment itself. */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
        (void)cls;
        (void)c;
        return strlen(s);
}

static enum MHD_Result queue(struct MHD_Connection *c, const char *method, const char *route,
                             struct iov_api_server *server, struct iov_api_response *resp,
                             uint64_t start_usec);

static int send_error(struct iov_api_server *server, struct MHD_Connection *c, const char *method,
                      uint64_t start_usec, unsigned status, const char *code, const char *message)
{
        struct iov_api_response resp = {0};
        api_error(&resp, status, code, "%s", message);
        return queue(c, method, NULL, server, &resp, start_usec);
}

/* A streamed response and the connection it goes to. */
struct stream_body {
        struct iov_api_response resp;
        struct iov_conn_limit *limit;
        int fd;
};

/* A stream's read returns within about a second (api.h), so a client that hung up
 * (conn-limit watches its socket) ends its stream within that second. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct stream_body *body = cls;
        struct iov_api_response *resp = &body->resp;
        (void)pos;
        if (conn_limit_peer_gone(body->limit, body->fd))
                return MHD_CONTENT_READER_END_WITH_ERROR;
        ssize_t n = resp->stream_ops->read(resp->stream_userdata, buf, max);
        if (n == IOV_API_STREAM_END)
                return MHD_CONTENT_READER_END_OF_STREAM;
        if (n < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        return n;
}

static void stream_free(void *cls)
{
        struct stream_body *body = cls;
        api_response_clear(&body->resp);
        free(body);
}

static struct MHD_Response *response_build(struct iov_api_server *server, struct MHD_Connection *c,
                                           struct iov_api_response *resp)
{
        if (resp->stream_ops) {
                struct stream_body *owned = malloc(sizeof(*owned));
                if (!owned)
                        return NULL;
                *owned = (struct stream_body){
                        .resp = *resp, .limit = server->limit, .fd = connection_fd(c)};
                *resp = (struct iov_api_response){0};
                return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, owned,
                                                         stream_free);
        }
        if (resp->text)
                return MHD_create_response_from_buffer(strlen(resp->text), resp->text,
                                                       MHD_RESPMEM_MUST_COPY);
        if (!resp->json) {
                resp->status = 500;
                return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        }
        size_t len;
        const char *s = json_object_to_json_string_length(
                resp->json, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        _cleanup_free_ char *text = util_strdup_printf("%s\n", s);
        if (!text)
                return NULL;
        return MHD_create_response_from_buffer(len + 1, text, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result queue(struct MHD_Connection *c, const char *method, const char *route,
                             struct iov_api_server *server, struct iov_api_response *resp,
                             uint64_t start_usec)
{
        /* Read before building: a stream's response moves into the MHD response. */
        const char *content_type = resp->content_type;
        bool stream = resp->stream_ops != NULL;
        unsigned status = resp->status ? resp->status : 500;
        struct MHD_Response *r = response_build(server, c, resp);
        if (r && resp->status == 500 && status != 500)
                status = 500; /* the JSON body could not be built */

        if (!r) {
                api_response_clear(resp);
                return MHD_NO;
        }
        if (content_type)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        if (resp->allow)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
        if (status == 401)
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        /* A refused client does not keep its slot (RFC 9112 §9.6: close after this). */
        if (status == 401 || status == 429 || status == 503)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
        enum MHD_Result ret = MHD_queue_response(c, status, r);
        if (ret == MHD_YES && stream) /* no idle timeout for streams (see the top) */
                (void)MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
        MHD_destroy_response(r);
        daemon_metrics_count_request(server->d, method, route ? route : "unmatched", status,
                                     util_now_usec() - start_usec);
        api_response_clear(resp);
        return ret;
}

/* "Bearer TOKEN": the auth-scheme is case-insensitive and one or more spaces separate it
 * from the credentials (RFC 7235 §2.1, RFC 6750 §2.1). */
static bool authorized(struct iov_api_server *server, struct MHD_Connection *c)
{
        if (!server->token)
                return true;
        const char *h =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h || strncasecmp(h, "Bearer ", 7) != 0)
                return false;
        h += strspn(h + 6, " ") + 6;
        return util_consttime_equal(h, strlen(h), server->token, strlen(server->token));
}

const char *api_request_header(const struct iov_api_request *req, const char *name)
{
        return req->connection ? MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name)
                               : NULL;
}

struct query_ctx {
        struct iov_api_request *req;
        int error;  /* -E2BIG, -EEXIST, -EINVAL */
        char *name; /* the offending parameter */
};

static enum MHD_Result query_add(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
        struct query_ctx *q = cls;
        (void)kind;
        _cleanup_free_ char *k = strdup(key), *v = strdup(value ? value : "");
        if (!k || !v) {
                q->error = -ENOMEM;
                return MHD_NO;
        }
        if (api_percent_decode(k, true) < 0 || api_percent_decode(v, true) < 0)
                q->error = -EINVAL;
        else if (api_request_query(q->req, k))
                q->error = -EEXIST;
        else if (q->req->n_query == IOV_API_MAX_QUERY)
                q->error = -E2BIG;
        if (q->error < 0) {
                q->name = TAKE_PTR(k);
                return MHD_NO;
        }
        q->req->query[q->req->n_query].name = TAKE_PTR(k);
        q->req->query[q->req->n_query].value = TAKE_PTR(v);
        q->req->n_query++;
        return MHD_YES;
}

/* 0, or -EBADMSG with resp filled. */
static int request_parse_query(struct MHD_Connection *c, struct iov_api_request *req,
                               struct iov_api_response *resp)
{
        struct query_ctx q = {.req = req};
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_add, &q);
        _cleanup_free_ char *name = q.name;
        switch (q.error) {
        case 0:
                return 0;
        case -EEXIST:
                return api_error(resp, 400, "duplicate_parameter",
                                 "query parameter \"%s\" given twice", name);
        case -E2BIG:
                return api_error(resp, 400, "too_many_parameters", "more than %d query parameters",
                                 IOV_API_MAX_QUERY);
        case -EINVAL:
                return api_error(resp, 400, "invalid_parameter",
                                 "bad percent-encoding in query parameter \"%s\"", name);
        default:
                return api_error(resp, 500, "internal_error", "out of memory");
        }
}

static bool content_type_is_json(struct MHD_Connection *c)
{
        const char *h =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        size_t n = strlen(IOV_API_JSON_TYPE);
        if (!h || strncasecmp(h, IOV_API_JSON_TYPE, n) != 0)
                return false;
        return h[n] == 0 || h[n] == ';' || h[n] == ' ';
}

/* 0, or -EBADMSG with resp filled. */
static int request_parse_body(struct MHD_Connection *c, struct connection_ctx *ctx,
                              struct iov_api_request *req, struct iov_api_response *resp)
{
        if (ctx->too_large)
                return api_error(resp, 413, "body_too_large", "request body above %d bytes",
                                 IOV_API_BODY_MAX);
        if (ctx->size == 0)
                return 0;
        /* No GET or DELETE of this API defines a body (api/openapi.yaml): one sent anyway
         * would be ignored without a word, so it is refused. */
        if (streq(req->method, "GET") || streq(req->method, "DELETE"))
                return api_error(resp, 400, "unexpected_body", "%s %s takes no request body",
                                 req->method, req->route);
        if (!content_type_is_json(c))
                return api_error(resp, 415, "unsupported_media_type",
                                 "request bodies must be sent as %s", IOV_API_JSON_TYPE);
        const char *code = NULL;
        _cleanup_free_ char *message = NULL;
        int r = api_json_parse_strict(ctx->body, ctx->size, &req->body, &code, &message);
        if (r == -EBADMSG)
                return api_error(resp, 400, code, "%s", message ? message : code);
        if (r < 0)
                return api_error(resp, 500, "internal_error", "parsing the body: %s", strerror(-r));
        return 0;
}

/* Who sent a request: the peer's credentials on a Unix socket (SO_PEERCRED), its
 * address on TCP. */
static void request_peer(struct MHD_Connection *c, char *buf, size_t size)
{
        const union MHD_ConnectionInfo *info =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct sockaddr_storage ss;
        socklen_t ss_len = sizeof(ss);

        snprintf(buf, size, "?");
        if (!info)
                return;
        if (getsockopt(info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
            cred.pid > 0) {
                snprintf(buf, size, "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
                return;
        }
        if (getpeername(info->connect_fd, (struct sockaddr *)&ss, &ss_len) == 0) {
                char host[64], port[16];
                if (getnameinfo((struct sockaddr *)&ss, ss_len, host, sizeof(host), port,
                                sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
                        snprintf(buf, size, "%s port %s", host, port);
        }
}

/* Server errors always; changes (anything but GET) at info with who asked, an audit
 * trail; reads at debug. */
static void request_log(struct MHD_Connection *c, const char *method, const char *url,
                        unsigned status)
{
        char peer[96];
        bool change = !streq(method, "GET");
        if (status < 500 && !change && util_log_get_max_level() < UTIL_LOG_DEBUG)
                return;
        request_peer(c, peer, sizeof(peer));
        if (status >= 500)
                log_error("%s %s from %s: %u", method, url, peer, status);
        else if (change)
                log_info("%s %s from %s: %u", method, url, peer, status);
        else
                log_debug("%s %s from %s: %u", method, url, peer, status);
}

/* Streams hold their connection for hours: they count against limits of their own. */
static void stream_admit(struct iov_api_server *server, struct MHD_Connection *c,
                         struct iov_api_response *resp)
{
        int r = conn_limit_stream_begin(server->limit, connection_fd(c));
        if (r == 0)
                return;
        api_response_clear(resp); /* ends the subscription the handler made */
        if (r == -EUSERS)
                api_error(resp, 429, "too_many_streams", "this client has %d streams open already",
                          IOV_CONN_STREAMS_PER_CLIENT);
        else
                api_error(resp, 503, "server_busy", "every stream slot is taken");
}

static enum MHD_Result request_dispatch(struct iov_api_server *server, struct MHD_Connection *c,
                                        const char *url, const char *method,
                                        struct connection_ctx *ctx)
{
        _cleanup_(api_request_clear) struct iov_api_request req = {
                .method = method, .path = url, .connection = c};
        struct iov_api_response resp = {0};
        const struct iov_api_route *route = NULL;
        _cleanup_free_ char *allow = NULL;

        switch (api_route_match(method, url, &req, &route, &allow)) {
        case IOV_API_MATCH_NO_PATH:
                return send_error(server, c, method, ctx->started_usec, 404, "not_found",
                                  "no such resource");
        case IOV_API_MATCH_BAD_PATH:
                return send_error(server, c, method, ctx->started_usec, 400, "invalid_path",
                                  "the path has an empty segment or a bad escape");
        case IOV_API_MATCH_NO_METHOD:
                api_error(&resp, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)",
                          method, allow ? allow : "");
                resp.allow = TAKE_PTR(allow);
                return queue(c, method, NULL, server, &resp, ctx->started_usec);
        case IOV_API_MATCH_FOUND:
                break;
        }

        int r = request_parse_query(c, &req, &resp);
        if (r >= 0)
                r = api_route_check_query(route, &req, &resp);
        if (r >= 0)
                r = request_parse_body(c, ctx, &req, &resp);
        if (r >= 0) {
                r = route->handler(server->d, &req, &resp);
                if (r < 0 && resp.status == 0)
                        api_error(&resp, 500, "internal_error", "%s", strerror(-r));
        }
        if (resp.stream_ops)
                stream_admit(server, c, &resp);
        request_log(c, method, url, resp.status);
        return queue(c, method, route->pattern, server, &resp, ctx->started_usec);
}

/* First call of a request: headers only. Refuse early what must not be read at all. */
static enum MHD_Result request_begin(struct iov_api_server *server, struct MHD_Connection *c,
                                     const char *method, void **con_cls)
{
        uint64_t now = util_now_usec();
        bool ok = authorized(server, c);
        conn_limit_headers_done(server->limit, connection_fd(c), ok);
        if (!ok)
                return send_error(server, c, method, now, 401, "unauthorized",
                                  "missing or wrong bearer token");
        const char *len =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n;
        if (len && util_parse_u64(len, 10, &n) == 0 && n > IOV_API_BODY_MAX)
                return send_error(server, c, method, now, 413, "body_too_large",
                                  "request body above the limit");
        struct connection_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return MHD_NO;
        ctx->started_usec = now;
        *con_cls = ctx;
        return MHD_YES;
}

static enum MHD_Result body_append(struct connection_ctx *ctx, const char *data, size_t *size)
{
        if (ctx->too_large || ctx->size + *size > IOV_API_BODY_MAX) {
                ctx->too_large = true;
                ctx->discarded += *size;
                *size = 0;
                return ctx->discarded > DISCARD_LIMIT ? MHD_NO : MHD_YES;
        }
        char *p = realloc(ctx->body, ctx->size + *size + 1);
        if (!p)
                return MHD_NO;
        memcpy(p + ctx->size, data, *size);
        ctx->size += *size;
        p[ctx->size] = 0;
        ctx->body = p;
        *size = 0;
        return MHD_YES;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
        struct iov_api_server *server = cls;
        (void)version;

        if (!*con_cls)
                return request_begin(server, c, method, con_cls);
        if (*upload_data_size > 0)
                return body_append(*con_cls, upload_data, upload_data_size);
        return request_dispatch(server, c, url, method, *con_cls);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
        struct connection_ctx *ctx = *con_cls;
        struct iov_api_server *server = cls;
        (void)toe;
        conn_limit_request_done(server->limit, connection_fd(c));
        if (ctx) {
                free(ctx->body);
                free(ctx);
                *con_cls = NULL;
        }
}

_printf_(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        _cleanup_free_ char *text = NULL;
        (void)cls;
        if (vasprintf(&text, fmt, ap) >= 0)
                log_debug("microhttpd: %s", text);
}

/* Called before MHD closes the socket, so its number is not reused yet. */
static void connection_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
        struct iov_api_server *server = cls;
        (void)socket_context;
        if (code == MHD_CONNECTION_NOTIFY_CLOSED)
                conn_limit_release(server->limit, connection_fd(c));
}

/* conn-limit admitted fd: MHD takes it (and closes it even on failure). */
static int connection_add(void *userdata, int fd)
{
        struct iov_api_server *server = userdata;
        struct sockaddr_storage ss = {0};
        socklen_t len = sizeof(ss);
        if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0 || len == 0)
                len = sizeof(sa_family_t);
        if (MHD_add_connection(server->mhd, fd, (struct sockaddr *)&ss, len) != MHD_YES)
                return -EIO;
        return 0;
}

/* No listening socket: conn-limit accepts and hands admitted sockets over. */
static struct MHD_Daemon *server_mhd_start(struct iov_api_server *s)
{
        return MHD_start_daemon(
                MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC,
                0, NULL, NULL, access_handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                MHD_OPTION_NOTIFY_COMPLETED, request_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                connection_notify, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)IOV_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                s->d->config.connection_timeout_sec, MHD_OPTION_END);
}

/* The listener's group: its members are operators (conn-limit.h). */
static int server_limit_new(struct iov_api_server *s, bool tcp, int fd)
{
        struct stat st = {0};
        if (!tcp && stat(s->unix_path, &st) < 0)
                return -errno;
        return conn_limit_new(fd, tcp, st.st_gid, &s->limit);
}

/* The limiter takes fd over (closing it on failure too), then MHD and the accept loop
 * start. */
static int server_run(struct iov_api_server *s, bool tcp, int fd)
{
        int r = server_limit_new(s, tcp, fd);
        if (r < 0) {
                close(fd);
                return r;
        }
        s->mhd = server_mhd_start(s);
        return s->mhd ? conn_limit_start(s->limit, connection_add, s) : -EIO;
}

int api_server_start(struct iov_daemon *d, const char *listen, const char *token,
                     struct iov_api_server **ret)
{
        bool tcp;
        const char *rest;

        int r = api_listen_parse(listen, &tcp, &rest);
        if (r < 0)
                return r;
        if (tcp && !token)
                return -EPERM;

        struct iov_api_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->d = d;
        s->token = tcp ? strdup(token) : NULL;
        char *path = tcp ? NULL : strdup(rest);
        if (tcp ? !s->token : !path) {
                free(path);
                api_server_stop(s);
                return -ENOMEM;
        }
        _cleanup_close_ int fd = -1;
        r = tcp ? api_listen_tcp(rest, &fd) : api_listen_unix(rest, &fd);
        s->unix_path = r >= 0 ? path : NULL; /* from now on stop removes the socket */
        if (r < 0) {
                free(path);
                api_server_stop(s);
                return r;
        }
        r = server_run(s, tcp, TAKE_FD(fd));
        if (r < 0) {
                api_server_stop(s);
                return r;
        }
        *ret = s;
        return 0;
}

void api_server_stop(struct iov_api_server *server)
{
        if (!server)
                return;
        conn_limit_stop(server->limit); /* no new connections, then end the others */
        if (server->mhd)
                MHD_stop_daemon(server->mhd);
        conn_limit_free(server->limit); /* closes the listening socket */
        if (server->unix_path)
                unlink(server->unix_path);
        free(server->unix_path);
        free(server->token);
        free(server);
}
