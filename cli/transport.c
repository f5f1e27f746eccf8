/* SPDX-License-Identifier: MIT */
/*
 * HTTP for iovctl through libcurl: over iovd's Unix socket by default, or TCP with a
 * bearer token. Failures are sorted into "nobody answered" (the socket is missing, the
 * connection was refused: exit status 3) and "the exchange broke" so the caller can
 * tell a stopped daemon from a failing one.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "config.h"

/* Whole answers are held in memory; the full inventory of a large host is a few MiB. */
#define IOV_CLI_MAX_RESPONSE        (256u * 1024 * 1024)
#define IOV_CLI_CONNECT_TIMEOUT_SEC 10L
/* SR-IOV changes wait (bounded) in the daemon for the VFs to appear. */
#define IOV_CLI_REQUEST_TIMEOUT_SEC 300L

struct transport {
        CURL *curl;
        struct curl_slist *headers;
        char *url;
        char *body;
        /* streaming */
        iov_cli_data_fn on_data;
        bool raw;
        void *userdata;
        int stop_error;
        struct iov_cli_response *response;
};

static void transport_done(struct transport *t)
{
        curl_slist_free_all(t->headers);
        if (t->curl)
                curl_easy_cleanup(t->curl);
        free(t->url);
        free(t->body);
}

static int buffer_append(struct iov_cli_response *r, const char *data, size_t size)
{
        if (r->size + size > IOV_CLI_MAX_RESPONSE)
                return -EFBIG;
        char *p = realloc(r->body, r->size + size + 1);
        if (!p)
                return -ENOMEM;
        memcpy(p + r->size, data, size);
        r->size += size;
        p[r->size] = '\0';
        r->body = p;
        return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct transport *t = userdata;
        int r = buffer_append(t->response, data, size * nmemb);
        if (r < 0) {
                t->stop_error = r;
                return 0;
        }
        return size * nmemb;
}

static int transport_add_header(struct transport *t, const char *header)
{
        struct curl_slist *l = curl_slist_append(t->headers, header);
        if (!l)
                return -ENOMEM;
        t->headers = l;
        return 0;
}

/* libcurl's progress callback: non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress_cancel(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                              curl_off_t ultotal, curl_off_t ulnow)
{
        (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        return __atomic_load_n((const int *)userdata, __ATOMIC_ACQUIRE);
}

static int transport_open(struct transport *t, const struct iov_cli_endpoint *e, const char *path)
{
        int r;

        t->curl = curl_easy_init();
        if (!t->curl)
                return -ENOMEM;
        /* Over a Unix socket the host part is only what goes into the Host header. */
        t->url = util_strdup_printf("%s%s", e->url ? e->url : "http://localhost", path);
        if (!t->url)
                return -ENOMEM;
        curl_easy_setopt(t->curl, CURLOPT_URL, t->url);
        if (!e->url)
                curl_easy_setopt(t->curl, CURLOPT_UNIX_SOCKET_PATH, e->socket_path);
        curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT,
                         e->timeout_sec > 0 && e->timeout_sec < IOV_CLI_CONNECT_TIMEOUT_SEC
                                 ? e->timeout_sec
                                 : IOV_CLI_CONNECT_TIMEOUT_SEC);
        curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "iovctl/" IOVD_VERSION);
        curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        /* Straight to iovd: an http_proxy from the environment must not see the token. */
        curl_easy_setopt(t->curl, CURLOPT_PROXY, "");
        curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
        if (e->cancel) {
                curl_easy_setopt(t->curl, CURLOPT_NOPROGRESS, 0L);
                curl_easy_setopt(t->curl, CURLOPT_XFERINFOFUNCTION, on_progress_cancel);
                curl_easy_setopt(t->curl, CURLOPT_XFERINFODATA, e->cancel);
        }

        r = transport_add_header(t, "Accept: application/json");
        if (r < 0)
                return r;
        /* No "Expect: 100-continue" round trip for larger bodies. */
        r = transport_add_header(t, "Expect:");
        if (r < 0)
                return r;
        if (e->token) {
                _cleanup_free_ char *h = util_strdup_printf("Authorization: Bearer %s", e->token);
                if (!h)
                        return -ENOMEM;
                r = transport_add_header(t, h);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int transport_set_body(struct transport *t, const char *method, struct json_object *body)
{
        curl_easy_setopt(t->curl, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                const char *s = json_object_to_json_string_ext(
                        body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                t->body = strdup(s);
                if (!t->body)
                        return -ENOMEM;
                curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, t->body);
                curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
                return transport_add_header(t, "Content-Type: application/json");
        }
        if (streq(method, "POST") || streq(method, "PUT")) {
                /* An empty body with Content-Length: 0 and no form content type. */
                curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE, 0L);
                return transport_add_header(t, "Content-Type:");
        }
        return 0;
}

/* Map a libcurl failure to a negative errno and a message naming the endpoint. */
static int transport_error(struct transport *t, const struct iov_cli_endpoint *e, CURLcode code,
                           char **ret_error)
{
        const char *where = e->url ? e->url : e->socket_path;
        const char *kind = e->url ? "" : "socket ";
        long os_errno = 0;
        struct stat st;
        int r;

        curl_easy_getinfo(t->curl, CURLINFO_OS_ERRNO, &os_errno);
        switch (code) {
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
                /* Connected, then the daemon went away in the middle (it stopped or
                 * died): as unreachable as a missing socket for the caller. */
                *ret_error = util_strdup_printf("iovd at %s%s closed the connection: %s", kind,
                                                where, curl_easy_strerror(code));
                return -ECONNRESET;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
                r = os_errno > 0 ? -(int)os_errno : -ECONNREFUSED;
                if (!e->url && stat(e->socket_path, &st) < 0)
                        r = -errno;
                if (r == -ETIMEDOUT || r == -ENOENT || r == -EACCES || r == -ECONNREFUSED ||
                    r == -ENOTSOCK || r == -EHOSTUNREACH || r == -ENETUNREACH)
                        break;
                r = -ECONNREFUSED;
                break;
        case CURLE_OPERATION_TIMEDOUT:
                r = -ETIMEDOUT;
                break;
        default:
                *ret_error = util_strdup_printf("request to iovd at %s%s failed: %s", kind, where,
                                                curl_easy_strerror(code));
                return -EPROTO;
        }
        *ret_error = util_strdup_printf("cannot reach iovd at %s%s: %s", kind, where, strerror(-r));
        return r;
}

bool cli_transport_error_is_unreachable(int r)
{
        return r == -ENOENT || r == -ECONNREFUSED || r == -EACCES || r == -ETIMEDOUT ||
               r == -ENOTSOCK || r == -EHOSTUNREACH || r == -ENETUNREACH || r == -ECONNRESET;
}

static void response_parse_json(struct iov_cli_response *r)
{
        if (!r->body || r->size == 0)
                return;
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return;
        r->json = json_tokener_parse_ex(tok, r->body, (int)r->size);
        /* Trailing text after the value means this is not the JSON we expect. */
        if (r->json && tok->char_offset < (int)r->size &&
            strspn(r->body + tok->char_offset, " \t\r\n") != r->size - tok->char_offset) {
                json_object_put(r->json);
                r->json = NULL;
        }
        json_tokener_free(tok);
}

static int transport_perform(struct transport *t, const struct iov_cli_endpoint *e,
                             struct iov_cli_response *resp, char **ret_error)
{
        curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
        CURLcode code = curl_easy_perform(t->curl);
        if (t->stop_error < 0 && t->stop_error != -EFBIG)
                return t->stop_error;
        if (t->stop_error == -EFBIG) {
                *ret_error = strdup("answer from iovd too large");
                return -EFBIG;
        }
        if (code != CURLE_OK)
                return transport_error(t, e, code, ret_error);
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &resp->status);
        response_parse_json(resp);
        return 0;
}

int cli_transport_request(const struct iov_cli_endpoint *e, const char *method, const char *path,
                          struct json_object *body, struct iov_cli_response *ret, char **ret_error)
{
        struct transport t = {0};
        struct iov_cli_response resp = {0};
        int r;

        *ret_error = NULL;
        t.response = &resp;
        r = transport_open(&t, e, path);
        if (r >= 0)
                r = transport_set_body(&t, method, body);
        if (r >= 0) {
                curl_easy_setopt(t.curl, CURLOPT_TIMEOUT,
                                 e->timeout_sec > 0 ? e->timeout_sec : IOV_CLI_REQUEST_TIMEOUT_SEC);
                curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
                r = transport_perform(&t, e, &resp, ret_error);
        }
        transport_done(&t);
        if (r < 0) {
                cli_response_clear(&resp);
                if (!*ret_error)
                        *ret_error = util_strdup_printf("request failed: %s", strerror(-r));
                return r;
        }
        *ret = resp;
        return 0;
}

void cli_response_clear(struct iov_cli_response *r)
{
        if (!r)
                return;
        json_object_put(r->json);
        free(r->body);
        *r = (struct iov_cli_response){0};
}

/* Hand the stream out in chunks or lines; a partial last line waits in response->body. */
static size_t on_stream(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct transport *t = userdata;
        struct iov_cli_response *buf = t->response;
        long status = 0;
        size_t n = size * nmemb;

        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        if (t->raw && status >= 200 && status <= 299) {
                int r = t->on_data(data, n, t->userdata);
                if (r < 0) {
                        t->stop_error = r;
                        return 0;
                }
                return n;
        }
        if (buffer_append(buf, data, n) < 0) {
                t->stop_error = -EFBIG;
                return 0;
        }
        if (status < 200 || status > 299)
                return n; /* an error answer: kept whole for the caller */

        char *start = buf->body, *nl;
        while ((nl = memchr(start, '\n', buf->size - (size_t)(start - buf->body)))) {
                *nl = '\0';
                int r = t->on_data(start, (size_t)(nl - start), t->userdata);
                if (r < 0) {
                        t->stop_error = r;
                        return 0;
                }
                start = nl + 1;
        }
        buf->size -= (size_t)(start - buf->body);
        memmove(buf->body, start, buf->size + 1);
        return n;
}

int cli_transport_stream(const struct iov_cli_endpoint *e, const char *path, bool raw,
                         iov_cli_data_fn on_data, void *userdata,
                         struct iov_cli_response *ret_response, char **ret_error)
{
        struct transport t = {.on_data = on_data, .raw = raw, .userdata = userdata};
        struct iov_cli_response resp = {0};
        int r;

        *ret_error = NULL;
        t.response = &resp;
        r = transport_open(&t, e, path);
        if (r >= 0) {
                curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_stream);
                r = transport_perform(&t, e, &resp, ret_error);
        }
        transport_done(&t);
        if (r < 0) {
                cli_response_clear(&resp);
                if (!*ret_error && r != -ECANCELED)
                        *ret_error = util_strdup_printf("stream failed: %s", strerror(-r));
                return r;
        }
        *ret_response = resp;
        return 0;
}

int cli_token_read(const char *path, char **ret)
{
        _cleanup_free_ char *token = NULL;
        int r = util_read_file(path, 64 * 1024, &token, NULL);
        if (r < 0)
                return r;
        /* The first line, without a CR from a file written elsewhere. */
        size_t n = strcspn(token, "\n");
        while (n > 0 && strchr("\r \t", token[n - 1]))
                n--;
        token[n] = '\0';
        if (n == 0)
                return -ENODATA;
        /* It goes into a header: no white space or control characters (RFC 6750 §2.1). */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)token[i] <= ' ' || token[i] == 0x7f)
                        return -EINVAL;
        *ret = TAKE_PTR(token);
        return 0;
}
