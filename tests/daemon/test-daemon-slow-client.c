/* SPDX-License-Identifier: MIT */
/* An event client that stops reading is cut off; the daemon never waits for it. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "harness.h"
#include "tests/fixtures/fixture.h"

#define VFS    128
#define ROUNDS 16

static long rescan_usec(struct iov_harness *h, uint64_t *ret_usec)
{
        struct iov_http_reply r = {0};
        uint64_t start = util_now_usec();
        cr_assert_eq(harness_request(h, "POST", "/v1/rescan", NULL, &r), 0);
        *ret_usec = util_now_usec() - start;
        long status = r.status;
        harness_reply_clear(&r);
        return status;
}

Test(slow_client, dropped_without_blocking_the_daemon, .timeout = 100)
{
        _cleanup_(fixture_freep) struct fixture *fx = NULL;
        _cleanup_harness_ struct iov_harness *h = NULL;
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_generated(fx, 1, VFS, true), 0);
        struct iov_harness_options o = {.sysfs_root = fixture_sysfs_root(fx),
                                        .dev_root = fixture_dev_root(fx)};
        cr_assert_eq(harness_start(&o, &h), 0);

        int fd;
        long status;
        cr_assert_eq(harness_events_open(h, &fd, &status), 0);
        cr_assert_eq(status, 200L);
        /* From here on the client reads nothing. Each round removes and re-creates VFS
         * functions: 2 * VFS device events, far more than socket buffers and the
         * subscriber queue hold. */
        uint64_t worst = 0;
        for (int i = 0; i < ROUNDS; i++) {
                cr_assert_eq(fixture_set_num_vfs(fx, "0000:01:00.0", i % 2 ? VFS : 0), 0);
                uint64_t usec;
                long s = rescan_usec(h, &usec);
                cr_assert_eq(s, 200L, "rescan %d: %ld", i, s);
                worst = usec > worst ? usec : worst;
        }
        cr_expect_lt(worst, 5000000u, "a rescan took %llu us with a stuck client",
                     (unsigned long long)worst);

        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/metrics", NULL, &r), 0);
        cr_expect(strstr(r.body, "iovd_event_subscribers_dropped_total 1"),
                  "slow client not counted as dropped:\n%s", r.body);
        harness_reply_clear(&r);

        /* The stuck client's stream ends once it drains what was buffered. */
        int rc = 0;
        for (int lines = 0; rc == 0 && lines < 1000000; lines++) {
                _cleanup_free_ char *line = NULL;
                rc = harness_events_next(fd, 5000, &line);
        }
        cr_expect_eq(rc, -EPIPE, "stream of a dropped client did not end: %d", rc);
        close(fd);

        /* A new client is served. */
        cr_assert_eq(harness_events_open(h, &fd, &status), 0);
        cr_expect_eq(status, 200L, "new subscriber: %ld", status);
        close(fd);
}
