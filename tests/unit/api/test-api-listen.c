/* SPDX-License-Identifier: MIT */
/* Listener specs and sockets: "unix:PATH" and "tcp:HOST:PORT". */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "api/listen.h"

Test(api_listen, parse_specs)
{
        bool tcp;
        const char *rest;
        cr_assert_eq(api_listen_parse("unix:/run/iovd/iovd.sock", &tcp, &rest), 0);
        cr_assert_not(tcp);
        cr_assert_str_eq(rest, "/run/iovd/iovd.sock");
        cr_assert_eq(api_listen_parse("tcp:127.0.0.1:8080", &tcp, &rest), 0);
        cr_assert(tcp);
        cr_assert_str_eq(rest, "127.0.0.1:8080");
        const char *bad[] = {"unix:relative", "unix:", "tcp:", "udp:1.2.3.4:5", "", "/path"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                cr_expect_eq(api_listen_parse(bad[i], &tcp, &rest), -EINVAL, "\"%s\" accepted",
                             bad[i]);
}

static int bound_family(int fd)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
        return ss.ss_family;
}

Test(api_listen, tcp_numeric_hosts_only)
{
        int fd = -1;
        cr_assert_eq(api_listen_tcp("127.0.0.1:0", &fd), 0);
        cr_expect_eq(bound_family(fd), AF_INET);
        close(fd);
        if (api_listen_tcp("[::1]:0", &fd) == 0) {
                cr_expect_eq(bound_family(fd), AF_INET6);
                close(fd);
        }
        const char *bad[] = {"localhost:80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                             "127.0.0.1:-1", ":80",       "[::1:80",    "127.0.0.1:0x50"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                int r = api_listen_tcp(bad[i], &fd);
                cr_expect_lt(r, 0, "\"%s\" accepted", bad[i]);
                if (r == 0)
                        close(fd);
        }
}

Test(api_listen, unix_socket_mode_and_path_limits)
{
        char dir[] = "/tmp/iovd-listen-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *path = util_path_join(dir, "s.sock", NULL);
        int fd = -1;
        mode_t old = umask(0);
        int r = api_listen_unix(path, &fd);
        umask(old);
        cr_assert_eq(r, 0, "api_listen_unix: %s", strerror(-r));
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_expect_eq(st.st_mode & 0777, 0660u, "mode %o with umask 0", st.st_mode & 0777);
        cr_expect_eq(api_listen_unix(path, &r), -EADDRINUSE, "a live socket was replaced");
        close(fd);
        unlink(path);

        char long_path[200];
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = 0;
        cr_expect_eq(api_listen_unix(long_path, &fd), -ENAMETOOLONG);
        rmdir(dir);
}
