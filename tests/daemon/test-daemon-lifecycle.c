/* SPDX-License-Identifier: MIT */
/* The daemon's life: READY=1, socket mode, SIGTERM, a second daemon, bad options. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "harness.h"

Test(daemon, ready_means_the_socket_answers)
{
        _cleanup_harness_ struct iov_harness *h = NULL;
        int r = harness_start(NULL, &h);
        cr_assert_eq(r, 0, "harness_start: %s; log:\n%s", strerror(-r), h ? harness_log(h) : "");

        /* READY=1 has arrived: the very first request must be served, no retry. */
        struct iov_http_reply reply = {0};
        r = harness_request(h, "GET", "/metrics", NULL, &reply);
        cr_assert_eq(r, 0, "request right after READY=1 failed: %s", strerror(-r));
        cr_assert_neq(reply.status, 0L, "no HTTP status right after READY=1");
        harness_reply_clear(&reply);
}

Test(daemon, socket_mode_is_0660)
{
        _cleanup_harness_ struct iov_harness *h = NULL;
        cr_assert_eq(harness_start(NULL, &h), 0);
        struct stat st;
        cr_assert_eq(stat(h->socket_path, &st), 0, "stat %s: %s", h->socket_path, strerror(errno));
        cr_assert(S_ISSOCK(st.st_mode), "%s is not a socket (mode %o)", h->socket_path, st.st_mode);
        cr_assert_eq(st.st_mode & 0777, 0660u, "socket mode is %o", st.st_mode & 0777);
}

Test(daemon, sigterm_exits_zero_and_removes_socket)
{
        _cleanup_harness_ struct iov_harness *h = NULL;
        cr_assert_eq(harness_start(NULL, &h), 0);
        int status = -1;
        cr_assert_eq(harness_stop(h, &status), 0, "daemon did not stop on SIGTERM");
        cr_assert_eq(status, 0, "exit status %d", status);
        cr_assert(h->stopping, "no STOPPING=1 before exit");
        cr_assert_eq(access(h->socket_path, F_OK), -1, "socket %s left behind", h->socket_path);
}

Test(daemon, second_daemon_on_same_state_dir_refused)
{
        _cleanup_harness_ struct iov_harness *first = NULL, *second = NULL;
        cr_assert_eq(harness_start(NULL, &first), 0);

        struct iov_harness_options o = {.state_dir = first->state_dir};
        int r = harness_start(&o, &second);
        cr_assert_eq(r, -ECHILD, "second daemon did not exit: %s", strerror(-r));
        cr_assert_neq(second->exit_status, 0, "second daemon exited 0");
        _cleanup_free_ char *log = harness_log(second);
        cr_assert(strstr(log, "Another iovd is running"), "no clear message; log:\n%s", log);

        /* The first one is unaffected. */
        struct iov_http_reply reply = {0};
        cr_assert_eq(harness_request(first, "GET", "/metrics", NULL, &reply), 0);
        cr_assert_eq(reply.status, 200L, "first daemon answers %ld on /metrics", reply.status);
        harness_reply_clear(&reply);
}

Test(daemon, live_socket_refused)
{
        _cleanup_harness_ struct iov_harness *first = NULL, *second = NULL;
        cr_assert_eq(harness_start(NULL, &first), 0);
        _cleanup_free_ char *listen = util_strdup_printf("unix:%s", first->socket_path);

        /* Same socket, other state dir: someone listens there, so it is not taken. */
        const char *const args[] = {"--listen", listen, NULL};
        struct iov_harness_options o = {.extra_args = args, .no_unix_listen = true};
        int r = harness_start(&o, &second);
        cr_assert_eq(r, -ECHILD, "second daemon took a live socket: %s", strerror(-r));
        _cleanup_free_ char *log = harness_log(second);
        cr_assert(strstr(log, "another process listens"), "no clear message; log:\n%s", log);
}

Test(daemon, tcp_without_token_file_refused)
{
        const char *const args[] = {"--listen", "tcp:127.0.0.1:1", "--state-dir", "/nonexistent",
                                    NULL};
        int status = -1;
        _cleanup_free_ char *out = NULL;
        cr_assert_eq(harness_run(args, &status, &out), 0);
        cr_assert_eq(status, 2, "exit status %d; output:\n%s", status, out);
        cr_assert(strstr(out, "--token-file"), "message does not name --token-file:\n%s", out);
}

Test(daemon, bad_options_refused)
{
        const char *const cases[][3] = {
                {"--listen", "udp:1.2.3.4:5", NULL},
                {"--state-dir", "relative/dir", NULL},
                {"--log-level", "loud", NULL},
                {"--no-such-option", NULL, NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int status = -1;
                _cleanup_free_ char *out = NULL;
                cr_assert_eq(harness_run(cases[i], &status, &out), 0);
                cr_assert_eq(status, 2, "%s %s: exit status %d; output:\n%s", cases[i][0],
                             cases[i][1] ? cases[i][1] : "", status, out);
        }
}

Test(daemon, help_and_version)
{
        const char *const help[] = {"--help", NULL};
        const char *const version[] = {"--version", NULL};
        int status = -1;
        _cleanup_free_ char *out = NULL, *vout = NULL;
        cr_assert_eq(harness_run(help, &status, &out), 0);
        cr_assert_eq(status, 0, "--help exit status %d", status);
        const char *documented[] = {
                "--listen unix:", "--listen tcp:", "--token-file", "--state-dir",
                "--run-dir",      "--sysfs-root",  "--dev-root",   "--allow-unsafe-interrupts",
                "--log-level",    "--vmm PATH"};
        for (size_t i = 0; i < ARRAY_SIZE(documented); i++)
                cr_assert(strstr(out, documented[i]), "--help does not document %s", documented[i]);
        cr_assert_eq(harness_run(version, &status, &vout), 0);
        cr_assert_eq(status, 0, "--version exit status %d", status);
        cr_assert(strstr(vout, "iovd "), "--version printed: %s", vout);
}

Test(daemon, stale_socket_file_is_replaced)
{
        /* A socket file nobody listens on, as a crashed daemon leaves behind. */
        char dir[] = "/tmp/iovd-stale-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *path = util_path_join(dir, "iovd.sock", NULL);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);

        _cleanup_free_ char *listen = util_strdup_printf("unix:%s", path);
        const char *const args[] = {"--listen", listen, NULL};
        struct iov_harness_options o = {.extra_args = args, .no_unix_listen = true};
        _cleanup_harness_ struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        cr_assert_eq(r, 0, "stale socket not replaced: %s; log:\n%s", strerror(-r),
                     h ? harness_log(h) : "");
        struct iov_http_request req = {.method = "GET", .path = "/metrics", .socket_path = path};
        struct iov_http_reply reply = {0};
        cr_assert_eq(harness_http(&req, &reply), 0);
        cr_assert_eq(reply.status, 200L, "status %ld", reply.status);
        harness_reply_clear(&reply);
        harness_stop(h, NULL);
        rmdir(dir);
}

Test(daemon, non_socket_at_socket_path_is_kept)
{
        char dir[] = "/tmp/iovd-stale-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *path = util_path_join(dir, "iovd.sock", NULL);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs("precious", f);
        fclose(f);

        _cleanup_free_ char *listen = util_strdup_printf("unix:%s", path);
        const char *const args[] = {"--listen", listen, NULL};
        struct iov_harness_options o = {.extra_args = args, .no_unix_listen = true};
        _cleanup_harness_ struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        cr_assert_eq(r, -ECHILD, "daemon started over a regular file: %s", strerror(-r));
        cr_assert_neq(h->exit_status, 0);
        _cleanup_free_ char *content = NULL;
        cr_assert_eq(util_read_file(path, 100, &content, NULL), 0, "file removed");
        cr_assert_str_eq(content, "precious", "file changed: %s", content);
        unlink(path);
        rmdir(dir);
}

Test(daemon, missing_sysfs_root_is_a_clear_start_failure)
{
        struct iov_harness_options o = {.sysfs_root = "/nonexistent/iovd-sys"};
        _cleanup_harness_ struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        cr_assert_eq(r, -ECHILD, "daemon started without a sysfs tree: %s", strerror(-r));
        cr_assert_eq(h->exit_status, 1, "exit status %d", h->exit_status);
        cr_assert_not(h->ready, "READY=1 sent by a daemon that failed to start");
        _cleanup_free_ char *log = harness_log(h);
        cr_assert(strstr(log, "/nonexistent/iovd-sys"), "message does not name the root:\n%s", log);
}
