/* SPDX-License-Identifier: MIT */
/* The systemd watchdog and STATUS= lines, seen on a fake NOTIFY_SOCKET: READY=1, STATUS=
 * with the counts, WATCHDOG=1 at half of WATCHDOG_USEC while healthy, none once the state
 * lock is wedged (the SIGUSR2 test hook), STATUS=rescanning and STATUS=stopping. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "harness.h"
#include "tests/fixtures/fixture.h"

#define WATCHDOG_USEC 1000000 /* pings every 500 ms */

static struct fixture *fx;
static struct iov_harness *h;

/* What the daemon sent during one window. */
struct notify_log {
        unsigned ready, pings, stopping;
        uint64_t last_ping_usec, max_gap_usec;
        char status[256]; /* the last STATUS= value */
        bool saw_rescanning, saw_unhealthy, saw_stopping_status;
};

static void start(bool watchdog)
{
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_lab_preset(fx), 0);
        if (watchdog)
                setenv("WATCHDOG_USEC", "1000000", 1);
        else
                unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        setenv("IOVD_TEST_HOOKS", "1", 1);
        struct iov_harness_options o = {.sysfs_root = fixture_sysfs_root(fx),
                                        .dev_root = fixture_dev_root(fx),
                                        .no_wait = true};
        int r = harness_start(&o, &h);
        cr_assert_eq(r, 0, "iovd did not start: %s", strerror(-r));
}

static void teardown(void)
{
        harness_free(h);
        fixture_free(fx);
}

static void notify_line(struct notify_log *log, const char *line)
{
        uint64_t now = util_now_usec();
        if (streq(line, "READY=1"))
                log->ready++;
        else if (streq(line, "STOPPING=1"))
                log->stopping++;
        else if (streq(line, "WATCHDOG=1")) {
                if (log->pings && now - log->last_ping_usec > log->max_gap_usec)
                        log->max_gap_usec = now - log->last_ping_usec;
                log->pings++;
                log->last_ping_usec = now;
        } else if (strncmp(line, "STATUS=", 7) == 0) {
                snprintf(log->status, sizeof(log->status), "%s", line + 7);
                log->saw_rescanning |= streq(line + 7, "rescanning");
                log->saw_unhealthy |= strncmp(line + 7, "unhealthy", 9) == 0;
                log->saw_stopping_status |= streq(line + 7, "stopping");
        }
}

/* Read datagrams for ms milliseconds (or until the socket's peer is gone). */
static void notify_collect(struct notify_log *log, unsigned ms)
{
        uint64_t end = util_now_usec() + (uint64_t)ms * 1000;
        for (uint64_t now; (now = util_now_usec()) < end;) {
                struct pollfd p = {.fd = h->notify_fd, .events = POLLIN};
                if (poll(&p, 1, (int)((end - now) / 1000) + 1) <= 0)
                        continue;
                char buf[512];
                ssize_t n = recv(h->notify_fd, buf, sizeof(buf) - 1, 0);
                if (n <= 0)
                        continue;
                buf[n] = 0;
                char *save = NULL;
                for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                        notify_line(log, l);
        }
}

static void rescan(void)
{
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "POST", "/v1/rescan", NULL, &r), 0);
        cr_assert_eq(r.status, 200L, "rescan: %ld %s", r.status, r.body);
        harness_reply_clear(&r);
}

Test(watchdog, pings_and_status_while_healthy, .fini = teardown)
{
        start(true);
        struct notify_log log = {0};
        notify_collect(&log, 3500);
        cr_assert_eq(log.ready, 1u, "READY=1 seen %u times; log:\n%s", log.ready, harness_log(h));
        cr_expect_geq(log.pings, 4u, "%u pings in 3.5 s with WATCHDOG_USEC=%d", log.pings,
                      WATCHDOG_USEC);
        cr_expect_leq(log.max_gap_usec, (uint64_t)WATCHDOG_USEC * 8 / 10,
                      "longest gap between pings %llu us", (unsigned long long)log.max_gap_usec);
        unsigned devices = 0, allocations = 99, vms = 99;
        int n = sscanf(log.status, "ready: %u devices, %u allocations, %u VMs running", &devices,
                       &allocations, &vms);
        cr_expect_eq(n, 3, "STATUS=%s", log.status);
        cr_expect_gt(devices, 0u, "STATUS=%s", log.status);
        cr_expect_eq(allocations, 0u, "STATUS=%s", log.status);
        cr_expect_eq(vms, 0u, "STATUS=%s", log.status);
}

Test(watchdog, wedged_state_lock_stops_the_pings, .fini = teardown)
{
        start(true);
        struct notify_log before = {0}, settle = {0}, after = {0};
        notify_collect(&before, 1500);
        cr_assert_geq(before.pings, 2u, "no pings before the wedge: %u; log:\n%s", before.pings,
                      harness_log(h));
        cr_assert_eq(kill(h->pid, SIGUSR2), 0);
        notify_collect(&settle, 700); /* a check already past the lock may still ping */
        notify_collect(&after, 2500);
        cr_expect_eq(after.pings, 0u, "%u pings with the state lock wedged", after.pings);
        cr_expect(settle.saw_unhealthy || after.saw_unhealthy, "no STATUS=unhealthy, last %s",
                  after.status);
        int status = -1;
        cr_assert_eq(harness_stop(h, &status), 0, "iovd hung after the wedge");
        cr_expect_eq(status, 0, "exit status %d", status);
}

Test(watchdog, no_pings_without_watchdog_usec, .fini = teardown)
{
        start(false);
        struct notify_log log = {0};
        notify_collect(&log, 2000);
        cr_assert_eq(log.ready, 1u, "READY=1 seen %u times", log.ready);
        cr_expect_eq(log.pings, 0u, "%u pings without WATCHDOG_USEC", log.pings);
        cr_expect(strncmp(log.status, "ready: ", 7) == 0, "STATUS=%s", log.status);
}

Test(watchdog, status_says_rescanning_and_stopping, .fini = teardown)
{
        start(true);
        struct notify_log log = {0};
        notify_collect(&log, 700);
        cr_assert_eq(log.ready, 1u, "READY=1 seen %u times", log.ready);
        rescan();
        notify_collect(&log, 1300); /* the main loop says ready again within a second */
        cr_expect(log.saw_rescanning, "no STATUS=rescanning, last %s", log.status);
        cr_expect(strncmp(log.status, "ready: ", 7) == 0, "after rescan STATUS=%s", log.status);
        cr_assert_eq(kill(h->pid, SIGTERM), 0);
        notify_collect(&log, 1500);
        cr_expect_eq(log.stopping, 1u, "STOPPING=1 seen %u times", log.stopping);
        cr_expect(log.saw_stopping_status, "no STATUS=stopping, last %s", log.status);
}
