/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/unit/cli/mock-server.h"
#include "util/util.h"

static pthread_mutex_t mock_lock = PTHREAD_MUTEX_INITIALIZER;

struct upload {
        char *data;
        size_t size;
};

static enum MHD_Result append_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
        char **url = cls;
        (void)kind;
        char *next = util_strdup_printf("%s%c%s=%s", *url, strchr(*url, '?') ? '&' : '?', key,
                                        value ? value : "");
        free(*url);
        *url = next;
        return next ? MHD_YES : MHD_NO;
}

static char *header_copy(struct MHD_Connection *c, const char *name)
{
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
        return v ? strdup(v) : NULL;
}

static const struct mock_route *route_find(struct mock_server *s, const char *method,
                                           const char *url)
{
        for (size_t i = 0; i < s->n_routes; i++)
                if (streq(s->routes[i].method, method) && streq(s->routes[i].url, url))
                        return &s->routes[i];
        return NULL;
}

static enum MHD_Result answer(struct mock_server *s, struct MHD_Connection *c, const char *method,
                              const char *path, struct upload *up)
{
        char *url = strdup(path);
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, append_arg, &url);

        pthread_mutex_lock(&mock_lock);
        if (s->n_requests < MOCK_MAX_REQUESTS)
                s->requests[s->n_requests++] = (struct mock_request){
                        .method = strdup(method),
                        .url = strdup(url ? url : path),
                        .body = up->data ? strdup(up->data) : strdup(""),
                        .authorization = header_copy(c, "Authorization"),
                        .content_type = header_copy(c, "Content-Type"),
                };
        const struct mock_route *r = url ? route_find(s, method, url) : NULL;
        pthread_mutex_unlock(&mock_lock);

        static const char not_found[] =
                "{\"error\": {\"code\": \"not_found\", \"message\": \"no such path\"}}";
        const char *body = r ? r->body : not_found;
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(resp, "Content-Type",
                                r && r->content_type ? r->content_type : "application/json");
        enum MHD_Result ret = MHD_queue_response(c, r ? r->status : 404, resp);
        MHD_destroy_response(resp);
        free(url);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
        struct upload *up = *state;
        (void)version;
        if (!up) {
                *state = calloc(1, sizeof(struct upload));
                return *state ? MHD_YES : MHD_NO;
        }
        if (*size > 0) {
                char *p = realloc(up->data, up->size + *size + 1);
                if (!p)
                        return MHD_NO;
                memcpy(p + up->size, data, *size);
                up->size += *size;
                p[up->size] = '\0';
                up->data = p;
                *size = 0;
                return MHD_YES;
        }
        return answer(cls, c, method, url, up);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode code)
{
        struct upload *up = *state;
        (void)cls, (void)c, (void)code;
        if (up)
                free(up->data);
        free(up);
        *state = NULL;
}

static int listen_unix(struct mock_server *s)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(s->dir, "/tmp/iovctl-test-XXXXXX");
        if (!mkdtemp(s->dir))
                return -errno;
        snprintf(s->socket_path, sizeof(s->socket_path), "%s/iovd.sock", s->dir);
        if (strlen(s->socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, s->socket_path, strlen(s->socket_path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int mock_server_start(struct mock_server *s, bool tcp)
{
        memset(s, 0, sizeof(*s));
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
        if (tcp) {
                struct sockaddr_in sa = {.sin_family = AF_INET,
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                          &sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                          MHD_OPTION_END);
                if (!s->mhd)
                        return -EIO;
                const union MHD_DaemonInfo *info =
                        MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
                snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", (unsigned)info->port);
                return 0;
        }
        int fd = listen_unix(s);
        if (fd < 0)
                return fd;
        s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
        return s->mhd ? 0 : -EIO;
}

void mock_server_stop(struct mock_server *s)
{
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
        if (s->socket_path[0])
                unlink(s->socket_path);
        if (s->dir[0])
                rmdir(s->dir);
        for (size_t i = 0; i < s->n_requests; i++) {
                free(s->requests[i].method);
                free(s->requests[i].url);
                free(s->requests[i].body);
                free(s->requests[i].authorization);
                free(s->requests[i].content_type);
        }
        s->n_requests = 0;
}

void mock_server_add(struct mock_server *s, const char *method, const char *url, unsigned status,
                     const char *body, const char *content_type)
{
        pthread_mutex_lock(&mock_lock);
        if (s->n_routes < MOCK_MAX_ROUTES)
                s->routes[s->n_routes++] =
                        (struct mock_route){method, url, status, body, content_type};
        pthread_mutex_unlock(&mock_lock);
}

const struct mock_request *mock_server_last(struct mock_server *s)
{
        pthread_mutex_lock(&mock_lock);
        const struct mock_request *r = s->n_requests ? &s->requests[s->n_requests - 1] : NULL;
        pthread_mutex_unlock(&mock_lock);
        return r;
}
