/* SPDX-License-Identifier: MIT */
/* The daemon core without sockets: options, the event broker, sd_notify. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "daemon/daemon.h"

static int parse(struct iov_daemon_config *c, const char **args)
{
        char *argv[32] = {(char *)"iovd"};
        int argc = 1;
        for (; args[argc - 1]; argc++)
                argv[argc] = (char *)args[argc - 1];
        cr_assert_eq(daemon_config_init(c), 0);
        return daemon_config_parse(c, argc, argv);
}

Test(daemon_config, defaults_are_production)
{
        struct iov_daemon_config c;
        const char *args[] = {NULL};
        cr_assert_eq(parse(&c, args), 0);
        cr_assert_eq(c.n_listen, 1u);
        cr_assert_str_eq(c.listen[0], "unix:/run/iovd/iovd.sock");
        cr_assert_str_eq(c.state_dir, "/var/lib/iovd");
        cr_assert_str_eq(c.run_dir, "/run/iovd");
        cr_assert_str_eq(c.sysfs_root, "/sys");
        cr_assert_str_eq(c.dev_root, "/dev");
        cr_assert_not(c.allow_unsafe_interrupts, "unsafe switch on by default");
        cr_assert_eq(c.memory_overcommit, 1.0, "memory overcommit %g", c.memory_overcommit);
        cr_assert_eq(c.vcpu_overcommit, 4.0, "vcpu overcommit %g", c.vcpu_overcommit);
        daemon_config_clear(&c);
}

Test(daemon_config, overcommit_ratios)
{
        struct iov_daemon_config c;
        const char *args[] = {"--memory-overcommit", "1.5", "--vcpu-overcommit", "2", NULL};
        cr_assert_eq(parse(&c, args), 0);
        cr_assert_eq(c.memory_overcommit, 1.5, "memory overcommit %g", c.memory_overcommit);
        cr_assert_eq(c.vcpu_overcommit, 2.0, "vcpu overcommit %g", c.vcpu_overcommit);
        daemon_config_clear(&c);
}

Test(daemon_config, repeatable_listen_and_roots)
{
        struct iov_daemon_config c;
        const char *args[] = {"--listen",
                              "unix:/tmp/a.sock",
                              "--listen",
                              "tcp:127.0.0.1:8080",
                              "--token-file",
                              "/etc/iovd/token",
                              "--sysfs-root",
                              "/tmp/sys",
                              "--allow-unsafe-interrupts",
                              "--vmm",
                              "/usr/libexec/iovd/iovd-vmm",
                              NULL};
        cr_assert_eq(parse(&c, args), 0);
        cr_assert_eq(c.n_listen, 2u, "%zu listeners", c.n_listen);
        cr_assert_str_eq(c.listen[1], "tcp:127.0.0.1:8080");
        cr_assert_str_eq(c.sysfs_root, "/tmp/sys");
        cr_assert(c.allow_unsafe_interrupts);
        cr_assert_str_eq(c.vmm ? c.vmm : "(null)", "/usr/libexec/iovd/iovd-vmm", "vmm %s", c.vmm);
        daemon_config_clear(&c);
}

Test(daemon_config, refuses_bad_options)
{
        const char *cases[][4] = {
                {"--listen", "tcp:127.0.0.1:80", NULL},
                {"--listen", "unix:relative.sock", NULL},
                {"--listen", "http://x", NULL},
                {"--dev-root", "dev", NULL},
                {"--log-level", "chatty", NULL},
                {"extra", NULL},
                {"--vmm", "iovd-vmm", NULL},
                {"--connection-timeout-sec", "0", NULL},
                {"--connection-timeout-sec", "2x", NULL},
                {"--memory-overcommit", "0", NULL},
                {"--memory-overcommit", "nan", NULL},
                {"--memory-overcommit", "101", NULL},
                {"--vcpu-overcommit", "2x", NULL},
                {"--vcpu-overcommit", "-1", NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct iov_daemon_config c;
                int r = parse(&c, cases[i]);
                cr_expect_eq(r, -EINVAL, "%s %s accepted (%d)", cases[i][0],
                             cases[i][1] ? cases[i][1] : "", r);
                daemon_config_clear(&c);
        }
}

static struct iov_daemon *daemon_make(void)
{
        struct iov_daemon_config c;
        struct iov_daemon *d;
        cr_assert_eq(daemon_config_init(&c), 0);
        cr_assert_eq(daemon_new(&c, &d), 0);
        return d;
}

Test(daemon_events, delivered_in_order)
{
        _cleanup_(daemon_freep) struct iov_daemon *d = daemon_make();
        struct iov_event_subscriber *s;
        cr_assert_eq(daemon_event_subscribe(d, &s), 0);
        daemon_event_publish(d, "one", NULL);
        struct json_object *data = json_object_new_object();
        json_object_object_add(data, "address", json_object_new_string("0000:01:00.0"));
        daemon_event_publish(d, "two", data);

        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        cr_assert_eq(daemon_event_next(s, 100, &a), 0);
        cr_assert_eq(daemon_event_next(s, 100, &b), 0);
        cr_assert(strstr(a, "\"type\":\"one\"") && strstr(a, "\"seq\":1"), "first: %s", a);
        cr_assert(strstr(b, "\"type\":\"two\"") && strstr(b, "0000:01:00.0"), "second: %s", b);
        cr_assert_eq(b[strlen(b) - 1], '\n', "line not newline-terminated: %s", b);
        cr_assert_eq(daemon_event_next(s, 50, &c), -EAGAIN, "a third event appeared");
        daemon_event_unsubscribe(s);
}

Test(daemon_events, slow_subscriber_dropped_publisher_never_blocks)
{
        _cleanup_(daemon_freep) struct iov_daemon *d = daemon_make();
        struct iov_event_subscriber *slow, *fast;
        cr_assert_eq(daemon_event_subscribe(d, &slow), 0);
        cr_assert_eq(daemon_event_subscribe(d, &fast), 0);

        uint64_t start = util_now_usec();
        for (int i = 0; i < 1000; i++) {
                daemon_event_publish(d, "tick", NULL);
                _cleanup_free_ char *line = NULL;
                cr_assert_eq(daemon_event_next(fast, 100, &line), 0, "fast reader lost event %d",
                             i);
        }
        uint64_t elapsed = util_now_usec() - start;
        cr_expect_lt(elapsed, 2000000u, "publishing 1000 events took %llu us",
                     (unsigned long long)elapsed);

        /* The slow one gets what it had queued, then learns it was cut off. */
        int r = 0, n = 0;
        while (r == 0) {
                _cleanup_free_ char *line = NULL;
                r = daemon_event_next(slow, 100, &line);
                n += r == 0;
        }
        cr_expect_eq(r, -EPIPE, "slow subscriber ended with %d, not -EPIPE", r);
        cr_expect_eq(n, 0, "a dropped subscriber still read %d events", n);
        daemon_event_unsubscribe(slow);
        daemon_event_unsubscribe(fast);
}

Test(daemon_events, stop_wakes_readers)
{
        _cleanup_(daemon_freep) struct iov_daemon *d = daemon_make();
        struct iov_event_subscriber *s;
        cr_assert_eq(daemon_event_subscribe(d, &s), 0);
        daemon_stop(d);
        _cleanup_free_ char *line = NULL;
        uint64_t start = util_now_usec();
        cr_assert_eq(daemon_event_next(s, 5000, &line), -ESHUTDOWN);
        cr_assert_lt(util_now_usec() - start, 1000000u, "reader not woken at once");
        daemon_event_unsubscribe(s);
}

Test(daemon_notify, sends_datagram)
{
        char dir[] = "/tmp/iovd-notify-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *path = util_path_join(dir, "n", NULL);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

        setenv("NOTIFY_SOCKET", path, 1);
        cr_assert_eq(daemon_notify("READY=1"), 0);
        char buf[64] = {0};
        cr_assert_eq(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), 7);
        cr_assert_str_eq(buf, "READY=1");
        unsetenv("NOTIFY_SOCKET");
        cr_assert_eq(daemon_notify("READY=1"), 0, "no NOTIFY_SOCKET must be a no-op");
        unlink(path);
        rmdir(dir);
}
