/* SPDX-License-Identifier: MIT */
/*
 * Connection limits: 1,000 slow connections from one client (another uid on the Unix
 * socket, another loopback address on TCP) leave the operator served within a second or
 * two; the slow client is refused with an answer, cut off when its headers are late, and
 * gets in again once its connections are gone.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tcp-suite.h"

#define HOSTILE  1000
#define NOBODY   65534
#define PARTIAL  "GET /v1/host HTTP/1.1\r\nHost: x\r\n"
#define COMPLETE "GET /v1/host HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

static void setup(void)
{
        /* HOSTILE sockets and curl's: raise the soft limit to the hard one. */
        struct rlimit rl;
        cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s", strerror(errno));
        tcp_suite_start();
}

TestSuite(conn_limits, .init = setup, .fini = tcp_suite_teardown, .timeout = 90);

static int connect_unix(void)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->socket_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) { /* EAGAIN: full */
                close(fd);
                return -1;
        }
        return fd;
}

/* From source address src (any 127/8 address is loopback on Linux). */
static int connect_tcp(const char *src)
{
        struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &from.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        to.sin_port = htons((uint16_t)tcp_port);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
            (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Wait for the socket to be writable (connected), then send text without blocking. */
static void send_text(int fd, const char *text)
{
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 1000) == 1)
                (void)!send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The HTTP status of the answer on fd within timeout_ms; -ETIMEDOUT; -EPIPE on a close
 * without an answer. *ret_body (may be NULL) gets what was read. */
static int read_status(int fd, unsigned timeout_ms, char **ret_body)
{
        char buf[4096];
        size_t n = 0;
        uint64_t end = util_now_usec() + timeout_ms * 1000ull;
        for (;;) {
                uint64_t now = util_now_usec();
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (now >= end || poll(&p, 1, (int)((end - now) / 1000) + 1) == 0)
                        return -ETIMEDOUT;
                ssize_t k = recv(fd, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
                if (k < 0 && errno == EAGAIN)
                        continue;
                if (k <= 0 || n + (size_t)k == sizeof(buf) - 1)
                        break;
                n += (size_t)k;
        }
        buf[n] = 0;
        unsigned status;
        if (sscanf(buf, "HTTP/1.%*u %u", &status) != 1)
                return -EPIPE;
        if (ret_body)
                *ret_body = strdup(buf);
        return (int)status;
}

static void close_all(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

/* n connections from connect_one (NULL src: the Unix socket), each sent a request line
 * and one header, never more: a client that holds its slots. */
static void flood_open(const char *src, int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                fds[i] = -1;
                for (int tries = 0; fds[i] < 0 && tries < 100; tries++) {
                        fds[i] = src ? connect_tcp(src) : connect_unix();
                        if (fds[i] < 0)
                                usleep(1000); /* the backlog is full: the daemon drains it */
                }
        }
        usleep(200 * 1000);
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        (void)!send(fds[i], PARTIAL, strlen(PARTIAL), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* How many of fds were answered with status (and its code) within timeout_ms. */
static size_t flood_count_answers(int *fds, size_t n, int status, const char *code,
                                  unsigned timeout_ms)
{
        _cleanup_free_ struct pollfd *p = calloc(n, sizeof(*p));
        cr_assert_not_null(p);
        size_t answered = 0;
        uint64_t end = util_now_usec() + timeout_ms * 1000ull;
        for (size_t i = 0; i < n; i++)
                p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        while (util_now_usec() < end && poll(p, n, 100) >= 0) {
                for (size_t i = 0; i < n; i++) {
                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        _cleanup_free_ char *body = NULL;
                        if (read_status(p[i].fd, 100, &body) == status && strstr(body, code))
                                answered++;
                        p[i].fd = -1; /* answered or closed: looked at once */
                }
        }
        return answered;
}

/* The status of method path over the Unix socket; *ret_usec how long it took. */
static long timed_unix(const char *method, const char *path, const char *body, uint64_t *ret_usec)
{
        struct iov_http_reply r = {0};
        uint64_t start = util_now_usec();
        int rc = harness_request(h, method, path, body, &r);
        *ret_usec = util_now_usec() - start;
        cr_assert_eq(rc, 0, "%s %s: no reply: %s", method, path, strerror(-rc));
        long status = r.status;
        harness_reply_clear(&r);
        return status;
}

static long timed_tcp(const char *method, const char *path, const char *body, uint64_t *ret_usec)
{
        struct iov_http_request req = {.method = method,
                                       .path = path,
                                       .body = body,
                                       .url_base = base,
                                       .authorization = "Bearer " TOKEN};
        struct iov_http_reply r = {0};
        uint64_t start = util_now_usec();
        int rc = harness_http(&req, &r);
        *ret_usec = util_now_usec() - start;
        cr_assert_eq(rc, 0, "%s %s over TCP: no reply: %s", method, path, strerror(-rc));
        long status = r.status;
        harness_reply_clear(&r);
        return status;
}

#define POOL "{\"name\":\"p\",\"selector\":{\"vendor_id\":\"15b3\"}}"

/* GET /v1/host, then a pool created and deleted: each answers within 2 s. */
static void expect_operator_served(long (*timed)(const char *, const char *, const char *,
                                                 uint64_t *),
                                   const char *where)
{
        uint64_t usec;
        long s = timed("GET", "/v1/host", NULL, &usec);
        cr_expect_eq(s, 200L, "%s: GET /v1/host under flood: %ld", where, s);
        cr_expect_lt(usec, 2000000u, "%s: GET /v1/host took %llu us", where,
                     (unsigned long long)usec);
        s = timed("POST", "/v1/pools", POOL, &usec);
        cr_expect_eq(s, 201L, "%s: POST /v1/pools under flood: %ld", where, s);
        cr_expect_lt(usec, 2000000u, "%s: POST took %llu us", where, (unsigned long long)usec);
        s = timed("DELETE", "/v1/pools/p", NULL, &usec);
        cr_expect(s == 200L || s == 204L, "%s: DELETE /v1/pools/p under flood: %ld", where, s);
        cr_expect_lt(usec, 2000000u, "%s: DELETE took %llu us", where, (unsigned long long)usec);
        fprintf(stderr,
                "%s: operator's GET+POST+DELETE answered under flood, the last in %llu us\n", where,
                (unsigned long long)usec);
}

/* SO_PEERCRED reports the effective ids at connect(2) time (socket(7)). */
static void become(uid_t uid, gid_t gid)
{
        if (uid == 0) {
                cr_assert_eq(seteuid(0), 0, "seteuid 0: %s", strerror(errno));
                cr_assert_eq(setegid(gid), 0, "setegid %u: %s", (unsigned)gid, strerror(errno));
                return;
        }
        cr_assert_eq(setegid(gid), 0, "setegid %u: %s", (unsigned)gid, strerror(errno));
        cr_assert_eq(seteuid(uid), 0, "seteuid %u: %s", (unsigned)uid, strerror(errno));
}

/* One complete request on a new connection; its status. */
static int one_request(int fd, const char *request)
{
        cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
        send_text(fd, request);
        int status = read_status(fd, 3000, NULL);
        close(fd);
        return status;
}

Test(conn_limits, unix_operator_served_under_flood)
{
        if (geteuid() != 0)
                cr_skip_test("another uid to flood from needs root");
        /* Let uid NOBODY reach the socket: it is 0660 in a 0700 directory. */
        cr_assert_eq(chmod(h->dir, 0711), 0);
        cr_assert_eq(chmod(h->socket_path, 0666), 0);
        _cleanup_free_ int *fds = calloc(HOSTILE, sizeof(int));
        cr_assert_not_null(fds);

        uint64_t start = util_now_usec();
        become(NOBODY, NOBODY);
        flood_open(NULL, fds, HOSTILE);
        int extra = connect_unix();
        become(0, 0);
        fprintf(stderr, "unix: %d connections opened in %llu ms\n", HOSTILE,
                (unsigned long long)(util_now_usec() - start) / 1000);

        /* While the client holds its share, one more is refused with an answer. */
        send_text(extra, COMPLETE);
        _cleanup_free_ char *body = NULL;
        int s = read_status(extra, 2000, &body);
        close(extra);
        cr_expect_eq(s, 429, "connection past the share: %d", s);
        cr_expect(body && strstr(body, "too_many_connections"), "refusal: %s", body);
        expect_operator_served(timed_unix, "unix");

        size_t refused = flood_count_answers(fds, HOSTILE, 429, "too_many_connections", 2000);
        fprintf(stderr, "unix: %zu of %d refused with 429\n", refused, HOSTILE);
        cr_expect_geq(refused, (size_t)(HOSTILE - 32), "only %zu refused", refused);
        close_all(fds, HOSTILE);

        /* The slots come back: the same uid is served again. */
        usleep(300 * 1000);
        become(NOBODY, NOBODY);
        int fd = connect_unix();
        become(0, 0);
        s = one_request(fd, COMPLETE);
        cr_expect_eq(s, 200, "the flooding uid after closing its connections: %d", s);
}

#define AUTH_REQUEST                                                                               \
        "GET /v1/host HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN                         \
        "\r\nConnection: close\r\n\r\n"

Test(conn_limits, tcp_operator_served_under_flood_without_token)
{
        _cleanup_free_ int *fds = calloc(HOSTILE, sizeof(int));
        cr_assert_not_null(fds);
        uint64_t start = util_now_usec();
        flood_open("127.0.0.2", fds, HOSTILE);
        fprintf(stderr, "tcp: %d connections opened in %llu ms\n", HOSTILE,
                (unsigned long long)(util_now_usec() - start) / 1000);

        int s = one_request(connect_tcp("127.0.0.2"), AUTH_REQUEST);
        cr_expect_eq(s, 429, "connection past the share, even with the token: %d", s);
        expect_operator_served(timed_tcp, "tcp");
        /* A third client without the token has its own share: it hears 401 at once. */
        s = one_request(connect_tcp("127.0.0.3"), COMPLETE);
        cr_expect_eq(s, 401, "another client without a token: %d", s);

        size_t refused = flood_count_answers(fds, HOSTILE, 429, "too_many_connections", 3000);
        fprintf(stderr, "tcp: %zu of %d refused with 429\n", refused, HOSTILE);
        cr_expect_geq(refused, (size_t)(HOSTILE / 2), "only %zu refused", refused);
        close_all(fds, HOSTILE);

        usleep(300 * 1000);
        s = one_request(connect_tcp("127.0.0.2"), AUTH_REQUEST);
        cr_expect_eq(s, 200, "the flooding address after closing its connections: %d", s);
}

/* -EPIPE (closed without an answer) within about IOV_CONN_HEADER_TIMEOUT_SEC (5 s). */
static void expect_cut_off(int fd, const char *where)
{
        cr_assert_geq(fd, 0, "%s: connect: %s", where, strerror(errno));
        uint64_t start = util_now_usec();
        send_text(fd, PARTIAL);
        int s = read_status(fd, 10000, NULL);
        uint64_t usec = util_now_usec() - start;
        close(fd);
        cr_expect_eq(s, -EPIPE, "%s: slow headers: %d", where, s);
        cr_expect(usec > 4000000u && usec < 7000000u, "%s: cut off after %llu us", where,
                  (unsigned long long)usec);
        fprintf(stderr, "%s: slow headers cut off after %llu ms\n", where,
                (unsigned long long)usec / 1000);
}

Test(conn_limits, slow_headers_dropped)
{
        expect_cut_off(connect_unix(), "unix");
        expect_cut_off(connect_tcp("127.0.0.4"), "tcp");
}

#define STREAMS_PER_CLIENT 8 /* api/conn-limit.h */

/* A client past its streams hears 429 too_many_streams, its connection is closed, and
 * a stream it closes gives its place back. */
Test(conn_limits, streams_per_client)
{
        if (geteuid() != 0)
                cr_skip_test("a non-operator uid needs root");
        cr_assert_eq(chmod(h->dir, 0711), 0);
        cr_assert_eq(chmod(h->socket_path, 0666), 0);
        int fds[STREAMS_PER_CLIENT];
        long status;
        become(NOBODY, NOBODY);
        for (int i = 0; i < STREAMS_PER_CLIENT; i++) {
                int r = harness_events_open(h, &fds[i], &status);
                cr_assert_eq(r, 0, "stream %d: %s", i, strerror(-r));
                cr_assert_eq(status, 200L, "stream %d: %ld", i, status);
        }
        int fd = connect_unix();
        become(0, 0);
        send_text(fd, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n");
        _cleanup_free_ char *body = NULL;
        int s = read_status(fd, 3000, &body); /* reads to end-of-file: the slot is gone */
        close(fd);
        cr_expect_eq(s, 429, "stream past the client's share: %d", s);
        cr_expect(body && strstr(body, "too_many_streams"), "refusal: %s", body);

        /* The operator is not counted per client. */
        int op;
        cr_assert_eq(harness_events_open(h, &op, &status), 0);
        cr_expect_eq(status, 200L, "operator's stream: %ld", status);
        close(op);

        /* The daemon notices the closed stream at its next write: the events stream's
         * keep-alive line every 15 s at the latest. */
        close(fds[0]);
        uint64_t start = util_now_usec();
        int r;
        do {
                usleep(200 * 1000);
                become(NOBODY, NOBODY);
                r = harness_events_open(h, &fds[0], &status);
                become(0, 0);
                if (r == 0 && status != 200)
                        close(fds[0]);
        } while (r == 0 && status == 429 && util_now_usec() - start < 20000000u);
        cr_assert_eq(r, 0, "stream after one closed: %s", strerror(-r));
        cr_expect_eq(status, 200L, "stream after one closed: %ld", status);
        fprintf(stderr, "streams: a closed stream's place back after %llu ms\n",
                (unsigned long long)(util_now_usec() - start) / 1000);
        for (int i = 0; i < STREAMS_PER_CLIENT; i++)
                close(fds[i]);
}
