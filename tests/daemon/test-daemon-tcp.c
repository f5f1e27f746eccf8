/* SPDX-License-Identifier: MIT */
/* TCP listeners: a bearer token on every request; the Unix socket needs none. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tcp-suite.h"

TestSuite(tcp, .init = tcp_suite_start, .fini = tcp_suite_teardown);

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
        s = tcp_status("Bearer q3V9xK2m");
        cr_expect_eq(s, 401L, "token prefix: %ld", s);
        s = tcp_status("Basic " TOKEN);
        cr_expect_eq(s, 401L, "wrong scheme: %ld", s);
        s = tcp_status("Bearer " TOKEN);
        cr_expect_eq(s, 200L, "right token: %ld", s);
}

/* RFC 7235 §2.1: the auth-scheme is case-insensitive, 1*SP before the credentials. */
Test(tcp, bearer_scheme_any_case)
{
        static const char *const good[] = {"bearer " TOKEN, "BEARER " TOKEN, "bEaReR " TOKEN,
                                           "Bearer  " TOKEN};
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                long s = tcp_status(good[i]);
                cr_expect_eq(s, 200L, "\"%s\": %ld", good[i], s);
        }
        static const char *const bad[] = {"Bearer" TOKEN, "Bearers " TOKEN, "bearer " TOKEN "x",
                                          "bearer q3V9xK2m"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                long s = tcp_status(bad[i]);
                cr_expect_eq(s, 401L, "\"%s\": %ld", bad[i], s);
        }
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

/* iovd with a TCP listener and a token file of this content and mode: the harness, which
 * has run or exited (r: 0 started, -ECHILD exited). */
static struct iov_harness *start_with_token(const char *content, mode_t mode, int *ret_r)
{
        char path[] = "/tmp/iovd-test-token-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
        cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        cr_assert_eq(fchmod(fd, mode), 0, "fchmod: %s", strerror(errno));
        close(fd);
        unsigned port;
        cr_assert_eq(harness_free_port(&port), 0);
        _cleanup_free_ char *listen = util_strdup_printf("tcp:127.0.0.1:%u", port);
        const char *const args[] = {"--listen", listen, "--token-file", path, NULL};
        struct iov_harness_options o = {.extra_args = args};
        struct iov_harness *th = NULL;
        *ret_r = harness_start(&o, &th);
        unlink(path);
        cr_assert_not_null(th, "harness_start: %s", strerror(-*ret_r));
        return th;
}

static void expect_refused(const char *content, mode_t mode, const char *why, const char *says)
{
        int r;
        _cleanup_harness_ struct iov_harness *th = start_with_token(content, mode, &r);
        _cleanup_free_ char *log = harness_log(th);
        cr_expect_eq(r, -ECHILD, "%s: iovd started (%s); log:\n%s", why, strerror(-r), log);
        cr_expect(strstr(log, says), "%s: the log does not say \"%s\":\n%s", why, says, log);
}

/* A token file must carry 128 bits and be its owner's alone; else iovd does not start. */
Test(tcp_token, weak_or_exposed_token_files_refused)
{
        expect_refused("0123456789abcdef0123456789abcde\n", 0600, "31 hex digits",
                       "does not hold a strong token");
        expect_refused("q3V9xK2mT7rB1wZ8nL4p-\n", 0600, "21 base64url characters",
                       "does not hold a strong token");
        expect_refused("correct horse battery staple\n", 0600, "spaces", "strong token");
        expect_refused("\n", 0600, "empty", "strong token");
        expect_refused(TOKEN "\n", 0640, "group-readable", "chmod 600");
        expect_refused(TOKEN "\n", 0604, "world-readable", "chmod 600");
        expect_refused(TOKEN "\n", 0620, "group-writable", "chmod 600");
}

Test(tcp_token, strong_private_token_files_accepted)
{
        static const char *const good[] = {"0123456789abcdef0123456789ABCDEF\n", TOKEN "\n",
                                           "q3V9xK2mT7rB1wZ8nL4p+/==\n"};
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                int r;
                _cleanup_harness_ struct iov_harness *th = start_with_token(good[i], 0400, &r);
                _cleanup_free_ char *log = harness_log(th);
                cr_expect_eq(r, 0, "token %s refused: %s; log:\n%s", good[i], strerror(-r), log);
        }
}
