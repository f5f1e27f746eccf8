/* SPDX-License-Identifier: MIT */
/*
 * harness-http: HTTP to the daemon under test: libcurl for requests (over the Unix socket
 * with CURLOPT_UNIX_SOCKET_PATH, or TCP), and a raw HTTP/1.0 socket for the event stream
 * (HTTP/1.0 gets the stream unchunked, one JSON object per line).
 */
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "harness.h"

void harness_reply_clear(struct iov_http_reply *reply)
{
        free(reply->body);
        free(reply->content_type);
        free(reply->allow);
        json_object_put(reply->json);
        *reply = (struct iov_http_reply){0};
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct iov_http_reply *reply = userdata;
        size_t n = size * nmemb;
        char *p = realloc(reply->body, reply->size + n + 1);
        if (!p)
                return 0;
        memcpy(p + reply->size, data, n);
        reply->size += n;
        p[reply->size] = 0;
        reply->body = p;
        return n;
}

/* Keep the value of a header we care about, trimmed. */
static void header_keep(char **field, const char *value, size_t len)
{
        while (len && (value[len - 1] == '\r' || value[len - 1] == '\n' || value[len - 1] == ' '))
                len--;
        while (len && *value == ' ') {
                value++;
                len--;
        }
        free(*field);
        *field = strndup(value, len);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct iov_http_reply *reply = userdata;
        size_t n = size * nmemb;
        if (n > 13 && strncasecmp(data, "Content-Type:", 13) == 0)
                header_keep(&reply->content_type, data + 13, n - 13);
        else if (n > 6 && strncasecmp(data, "Allow:", 6) == 0)
                header_keep(&reply->allow, data + 6, n - 6);
        return n;
}

static struct curl_slist *request_headers(const struct iov_http_request *req)
{
        struct curl_slist *list = NULL;
        _cleanup_free_ char *ct = NULL, *auth = NULL;
        if (req->body || req->content_type)
                ct = util_strdup_printf("Content-Type: %s",
                                        req->content_type ? req->content_type : "application/json");
        if (req->authorization)
                auth = util_strdup_printf("Authorization: %s", req->authorization);
        if (ct)
                list = curl_slist_append(list, ct);
        if (auth)
                list = curl_slist_append(list, auth);
        if (req->chunked)
                list = curl_slist_append(list, "Transfer-Encoding: chunked");
        /* No "Expect: 100-continue" round trip: the daemon answers early anyway. */
        list = curl_slist_append(list, "Expect:");
        return list;
}

struct upload {
        const char *data;
        size_t left;
};

static size_t on_upload(char *buf, size_t size, size_t nmemb, void *userdata)
{
        struct upload *u = userdata;
        size_t n = size * nmemb < u->left ? size * nmemb : u->left;
        memcpy(buf, u->data, n);
        u->data += n;
        u->left -= n;
        return n;
}

int harness_http(const struct iov_http_request *req, struct iov_http_reply *ret)
{
        struct iov_http_reply reply = {0};
        CURL *c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        _cleanup_free_ char *url = util_strdup_printf(
                "%s%s", req->url_base ? req->url_base : "http://iovd", req->path);
        struct curl_slist *headers = request_headers(req);
        size_t size = req->body ? (req->body_size ? req->body_size : strlen(req->body)) : 0;
        struct upload up = {req->body, size};

        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
        if (req->socket_path)
                curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, req->socket_path);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body && req->chunked) {
                curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
                curl_easy_setopt(c, CURLOPT_READDATA, &up);
        } else if (req->body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);

        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
        curl_easy_cleanup(c);
        curl_slist_free_all(headers);
        /* A daemon that answers 413 and closes before the upload ends still answered. */
        if (rc != CURLE_OK && reply.status == 0) {
                harness_reply_clear(&reply);
                return -EIO;
        }
        if (reply.body)
                reply.json = json_tokener_parse(reply.body);
        *ret = reply;
        return 0;
}

int harness_request(struct iov_harness *h, const char *method, const char *path, const char *body,
                    struct iov_http_reply *ret)
{
        struct iov_http_request req = {
                .method = method,
                .path = path,
                .body = body,
                .socket_path = h->socket_path,
        };
        return harness_http(&req, ret);
}

static int read_byte(int fd, unsigned timeout_ms, char *ret)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)timeout_ms);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ETIMEDOUT;
        ssize_t k = read(fd, ret, 1);
        if (k < 0)
                return -errno;
        return k == 0 ? -EPIPE : 0;
}

/* The timeout bounds the wait for a line to begin. Once its first byte is read the rest
 * gets at least LINE_REST_MS more: the daemon writes each event line whole, and a short
 * "quiet" timeout must not cut a line in two and drop its first part. */
#define LINE_REST_MS 10000

int harness_events_next(int fd, unsigned timeout_ms, char **ret)
{
        char line[65536];
        size_t n = 0;
        bool started = false;
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        for (;;) {
                uint64_t now = util_now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                char c;
                int r = read_byte(fd, (unsigned)((deadline - now) / 1000) + 1, &c);
                if (r < 0)
                        return r;
                if (!started) {
                        started = true;
                        uint64_t rest = util_now_usec() + (uint64_t)LINE_REST_MS * 1000;
                        if (rest > deadline)
                                deadline = rest;
                }
                if (c == '\n')
                        break;
                if (n < sizeof(line) - 1)
                        line[n++] = c;
        }
        line[n] = 0;
        *ret = strdup(line);
        return *ret ? 0 : -ENOMEM;
}

int harness_events_next_of_type(int fd, const char *type, unsigned timeout_ms,
                                struct json_object **ret)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        for (;;) {
                uint64_t now = util_now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                _cleanup_free_ char *line = NULL;
                int r = harness_events_next(fd, (unsigned)((deadline - now) / 1000) + 1, &line);
                if (r < 0)
                        return r;
                struct json_object *o = json_tokener_parse(line), *t = NULL;
                if (o && json_object_object_get_ex(o, "type", &t) &&
                    streq_ptr(json_object_get_string(t), type)) {
                        *ret = o;
                        return 0;
                }
                json_object_put(o);
        }
}

int harness_events_open(struct iov_harness *h, int *ret_fd, long *ret_status)
{
        return harness_stream_open(h, "/v1/events", ret_fd, ret_status);
}

int harness_stream_open(struct iov_harness *h, const char *path, int *ret_fd, long *ret_status)
{
        _cleanup_free_ char *request =
                util_strdup_printf("GET %s HTTP/1.0\r\nHost: iovd\r\n\r\n", path);
        if (!request)
                return -ENOMEM;
        size_t size = strlen(request);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->socket_path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        if (write(fd, request, size) != (ssize_t)size)
                return -EIO;
        /* Status line, then headers up to the empty line. */
        _cleanup_free_ char *status = NULL;
        int r = harness_events_next(fd, 5000, &status);
        if (r < 0)
                return r;
        long code = 0;
        if (sscanf(status, "HTTP/%*d.%*d %ld", &code) != 1)
                return -EPROTO;
        for (;;) {
                _cleanup_free_ char *header = NULL;
                r = harness_events_next(fd, 5000, &header);
                if (r < 0)
                        return r;
                if (streq(header, "\r") || streq(header, ""))
                        break;
        }
        *ret_status = code;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int harness_free_port(unsigned *ret)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                return -errno;
        *ret = ntohs(sa.sin_port);
        return 0;
}
