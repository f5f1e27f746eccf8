/* SPDX-License-Identifier: MIT */
/* TCP listeners: a bearer token on every request; the Unix socket needs none. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "harness.h"

#define TOKEN "s3cret-token-0123456789"

static struct iov_harness *h;
static char token_path[] = "/tmp/iovd-test-token-XXXXXX";
static char base[64];

static void setup(void)
{
        unsigned port;
        int fd = mkstemp(token_path);
        cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
        cr_assert_eq(write(fd, TOKEN "\n", strlen(TOKEN) + 1), (ssize_t)strlen(TOKEN) + 1);
        close(fd);
        cr_assert_eq(harness_free_port(&port), 0);
        _cleanup_free_ char *listen = util_strdup_printf("tcp:127.0.0.1:%u", port);
        snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
        const char *const args[] = {"--listen", listen, "--token-file", token_path, NULL};
        struct iov_harness_options o = {.extra_args = args};
        int r = harness_start(&o, &h);
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r),
                     h ? harness_log(h) : "");
}

static void teardown(void)
{
        harness_free(h);
        unlink(token_path);
}

TestSuite(tcp, .init = setup, .fini = teardown);

static long tcp_status(const char *authorization)
{
        struct iov_http_request req = {.method = "GET",
                                       .path = "/v1/devices",
                                       .url_base = base,
                                       .authorization = authorization};
        struct iov_http_reply r = {0};
        int rc = harness_http(&req, &r);
        cr_assert_eq(rc, 0, "no reply over TCP: %s", strerror(-rc));
        long status = r.status;
        if (status == 401) {
                struct json_object *e, *c;
                cr_assert(r.json && json_object_object_get_ex(r.json, "error", &e) &&
                                  json_object_object_get_ex(e, "code", &c),
                          "401 without error object: %s", r.body);
                cr_assert_str_eq(json_object_get_string(c), "unauthorized");
        }
        harness_reply_clear(&r);
        return status;
}

Test(tcp, token_required)
{
        long s = tcp_status(NULL);
        cr_expect_eq(s, 401L, "no token: %ld", s);
        s = tcp_status("Bearer wrong");
        cr_expect_eq(s, 401L, "wrong token: %ld", s);
        s = tcp_status("Bearer " TOKEN "x");
        cr_expect_eq(s, 401L, "token with a suffix: %ld", s);
        s = tcp_status("Bearer s3cret");
        cr_expect_eq(s, 401L, "token prefix: %ld", s);
        s = tcp_status("Basic " TOKEN);
        cr_expect_eq(s, 401L, "wrong scheme: %ld", s);
        s = tcp_status("Bearer " TOKEN);
        cr_expect_eq(s, 200L, "right token: %ld", s);
}

Test(tcp, unauthorized_before_anything_else)
{
        /* An unknown path or a bad body is not revealed without the token. */
        struct iov_http_request req = {
                .method = "POST", .path = "/v1/nothing", .body = "{", .url_base = base};
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_http(&req, &r), 0);
        cr_expect_eq(r.status, 401L, "status %ld", r.status);
        harness_reply_clear(&r);
}

Test(tcp, unix_socket_needs_no_token)
{
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/devices", NULL, &r), 0);
        cr_expect_eq(r.status, 200L, "unix socket: %ld", r.status);
        harness_reply_clear(&r);
}
