/* SPDX-License-Identifier: MIT */
/* GET /v1/events as Server-Sent Events: framing, ids, Last-Event-ID resume from the
 * daemon's backlog, a resume from too long ago says so; NDJSON stays the default. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lab-suite.h"
#include "tests/fixtures/fixture.h"

/* The daemon's backlog (daemon/runtime.h IOV_EVENT_BACKLOG). */
#define BACKLOG 256

LAB_SUITE(sse);

struct stream {
        int fd;
        long status;
        char content_type[128];
};

/* GET /v1/events with extra request headers (each ending in \r\n); reads past the
 * response headers, keeping the status and Content-Type. */
static void stream_open(const char *headers, struct stream *ret)
{
        _cleanup_free_ char *request =
                util_strdup_printf("GET /v1/events HTTP/1.0\r\nHost: iovd\r\n%s\r\n", headers);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->socket_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %m");
        cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
        *ret = (struct stream){.fd = fd};
        _cleanup_free_ char *status = NULL;
        cr_assert_eq(harness_events_next(fd, 5000, &status), 0, "no status line");
        cr_assert_eq(sscanf(status, "HTTP/%*d.%*d %ld", &ret->status), 1, "status %s", status);
        for (;;) {
                _cleanup_free_ char *line = NULL;
                cr_assert_eq(harness_events_next(fd, 5000, &line), 0, "headers cut");
                if (streq(line, "\r") || streq(line, ""))
                        break;
                if (strncasecmp(line, "Content-Type: ", 14) == 0)
                        snprintf(ret->content_type, sizeof(ret->content_type), "%.*s",
                                 (int)strcspn(line + 14, "\r"), line + 14);
        }
}

struct sse_event {
        char *id;    /* NULL: no id field */
        char *event; /* NULL: no event field */
        char *data;
        unsigned comments;
};

static void sse_event_clear(struct sse_event *e)
{
        free(e->id);
        free(e->event);
        free(e->data);
        *e = (struct sse_event){0};
}

static char **sse_field(struct sse_event *e, const char *line, const char **ret_value)
{
        static const char *const names[] = {"id", "event", "data"};
        char **slots[] = {&e->id, &e->event, &e->data};
        for (size_t i = 0; i < 3; i++) {
                size_t n = strlen(names[i]);
                if (strncmp(line, names[i], n) == 0 && line[n] == ':') {
                        *ret_value = line + n + 1 + (line[n + 1] == ' ');
                        return slots[i];
                }
        }
        cr_assert_fail("unexpected SSE line '%s'", line);
        return NULL;
}

/* The next event: field lines up to a blank line (comment-only blocks are skipped and
 * counted). Every line must be a comment or id/event/data. */
static void sse_next(int fd, struct sse_event *ret)
{
        *ret = (struct sse_event){0};
        for (;;) {
                _cleanup_free_ char *line = NULL;
                int r = harness_events_next(fd, 20000, &line);
                cr_assert_eq(r, 0, "no SSE line: %s", strerror(-r));
                if (line[0] == 0 && (ret->data || ret->event || ret->id))
                        return;
                if (line[0] == 0)
                        continue;
                if (line[0] == ':') {
                        ret->comments++;
                        continue;
                }
                const char *value = NULL;
                char **slot = sse_field(ret, line, &value);
                cr_assert_null(*slot, "field repeated in one event: '%s'", line);
                *slot = strdup(value);
        }
}

static uint64_t json_u64(const char *json, const char *name)
{
        struct json_object *o = json_tokener_parse(json), *v;
        cr_assert_not_null(o, "data is not JSON: %s", json);
        cr_assert(json_object_object_get_ex(o, name, &v), "no %s in %s", name, json);
        uint64_t x = json_object_get_uint64(v);
        json_object_put(o);
        return x;
}

static void rescan(void)
{
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "POST", "/v1/rescan", NULL, &r), 0);
        cr_assert_eq(r.status, 200L, "rescan: %ld %s", r.status, r.body);
        harness_reply_clear(&r);
}

/* Publish a burst of events: VFs of the lab PF come and go. */
static void make_events(unsigned vfs)
{
        cr_assert_eq(fixture_set_num_vfs(fx, "0000:01:00.0", vfs), 0);
        rescan();
}

/* The seq of the next NDJSON event line on fd (blank keepalives skipped). */
static uint64_t ndjson_next_seq(int fd)
{
        for (;;) {
                _cleanup_free_ char *line = NULL;
                int r = harness_events_next(fd, 20000, &line);
                cr_assert_eq(r, 0, "no NDJSON line: %s", strerror(-r));
                if (line[0] == 0 || strstr(line, "\"type\":\"subscribed\""))
                        continue;
                return json_u64(line, "seq");
        }
}

/* The seqs of the NDJSON events on fd until none comes for quiet_ms. */
static size_t ndjson_drain(int fd, unsigned quiet_ms, uint64_t *seqs, size_t max)
{
        size_t n = 0;
        for (;;) {
                _cleanup_free_ char *line = NULL;
                int r = harness_events_next(fd, quiet_ms, &line);
                if (r == -ETIMEDOUT)
                        return n;
                cr_assert_eq(r, 0, "NDJSON stream: %s", strerror(-r));
                if (line[0] == 0 || strstr(line, "\"type\":\"subscribed\""))
                        continue;
                cr_assert_lt(n, max, "more than %zu events", max);
                seqs[n++] = json_u64(line, "seq");
        }
}

Test(sse, framing_and_ids)
{
        struct stream s;
        stream_open("Accept: text/event-stream\r\n", &s);
        cr_assert_eq(s.status, 200L, "status %ld", s.status);
        cr_expect_str_eq(s.content_type, "text/event-stream");
        struct sse_event e;
        sse_next(s.fd, &e);
        cr_expect_str_eq(e.event, "subscribed", "first event %s", e.event);
        cr_expect_null(e.id, "subscribed carries id %s", e.id);
        sse_event_clear(&e);

        make_events(2);
        sse_next(s.fd, &e);
        cr_assert_not_null(e.id, "event without id");
        cr_assert_not_null(e.event, "event without type");
        cr_assert_not_null(e.data, "event without data");
        uint64_t seq = json_u64(e.data, "seq");
        cr_expect_eq(strtoull(e.id, NULL, 10), seq, "id %s, seq %llu", e.id,
                     (unsigned long long)seq);
        _cleanup_free_ char *type = util_strdup_printf("\"type\":\"%s\"", e.event);
        cr_expect(strstr(e.data, type), "event %s, data %s", e.event, e.data);
        sse_event_clear(&e);
        sse_next(s.fd, &e);
        cr_expect_eq(strtoull(e.id, NULL, 10), seq + 1, "next id %s after %llu", e.id,
                     (unsigned long long)seq);
        sse_event_clear(&e);
        close(s.fd);
}

Test(sse, resume_gets_exactly_the_missed_events)
{
        struct stream all, s;
        stream_open("", &all); /* sees every event, to compare with */
        stream_open("Accept: text/event-stream\r\n", &s);
        struct sse_event e;
        sse_next(s.fd, &e);
        sse_event_clear(&e);
        make_events(2);
        sse_next(s.fd, &e);
        _cleanup_free_ char *last = strdup(e.id);
        sse_event_clear(&e);
        uint64_t first = ndjson_next_seq(all.fd);
        cr_assert_eq(first, strtoull(last, NULL, 10), "streams disagree: %llu vs %s",
                     (unsigned long long)first, last);
        close(s.fd); /* disconnected: these are missed */
        make_events(0);
        make_events(3);

        _cleanup_free_ char *hdr =
                util_strdup_printf("Accept: text/event-stream\r\nLast-Event-ID: %s\r\n", last);
        stream_open(hdr, &s);
        sse_next(s.fd, &e);
        cr_expect_str_eq(e.event, "subscribed", "resume within backlog began with %s", e.event);
        sse_event_clear(&e);
        /* What the NDJSON stream saw since must come back, in order, and nothing else. */
        uint64_t seqs[BACKLOG];
        size_t n = ndjson_drain(all.fd, 1500, seqs, BACKLOG);
        cr_assert_gt(n, 0u, "no events while disconnected");
        cr_expect_eq(seqs[0], first + 1, "NDJSON after %llu: %llu", (unsigned long long)first,
                     (unsigned long long)seqs[0]);
        for (size_t i = 0; i < n; i++) {
                sse_next(s.fd, &e);
                cr_assert_eq(strtoull(e.id, NULL, 10), seqs[i], "replayed id %s, want %llu", e.id,
                             (unsigned long long)seqs[i]);
                sse_event_clear(&e);
        }
        _cleanup_free_ char *extra = NULL;
        int r = harness_events_next(s.fd, 1500, &extra);
        cr_expect_eq(r, -ETIMEDOUT, "more than the missed events: '%s'", extra ? extra : "");
        close(s.fd);
        close(all.fd);
}

Test(sse, resume_from_before_the_backlog_says_events_were_missed)
{
        struct stream all, s;
        stream_open("", &all);
        uint64_t last = 0;
        /* Rescans publish before they answer; batches stay well inside the NDJSON
         * stream's own queue. */
        for (unsigned i = 0; last < BACKLOG + 20; i += 8) {
                for (unsigned k = i; k < i + 8; k++)
                        make_events(k % 2 ? 0 : 3);
                uint64_t seqs[BACKLOG];
                size_t n = ndjson_drain(all.fd, 200, seqs, BACKLOG);
                cr_assert_gt(n, 0u, "rescans %u.. published nothing", i);
                last = seqs[n - 1];
        }
        stream_open("Accept: text/event-stream\r\nLast-Event-ID: 1\r\n", &s);
        cr_assert_eq(s.status, 200L, "status %ld", s.status);
        struct sse_event e;
        sse_next(s.fd, &e);
        cr_assert_str_eq(e.event, "gap", "resume from 1 after %llu events began with %s",
                         (unsigned long long)last, e.event);
        uint64_t missed = json_u64(e.data, "missed");
        cr_expect_null(e.id, "gap carries an id %s", e.id);
        sse_event_clear(&e);
        sse_next(s.fd, &e);
        uint64_t oldest = strtoull(e.id, NULL, 10);
        cr_expect_eq(missed, oldest - 2, "missed %llu, first replayed %llu",
                     (unsigned long long)missed, (unsigned long long)oldest);
        cr_expect_eq(oldest, last - BACKLOG + 1, "oldest kept %llu of %llu, backlog %d",
                     (unsigned long long)oldest, (unsigned long long)last, BACKLOG);
        sse_event_clear(&e);
        close(s.fd);
        close(all.fd);
}

Test(sse, resume_from_an_earlier_run_says_so)
{
        struct stream s;
        stream_open("Accept: text/event-stream\r\nLast-Event-ID: 999999\r\n", &s);
        cr_assert_eq(s.status, 200L, "status %ld", s.status);
        struct sse_event e;
        sse_next(s.fd, &e);
        cr_expect_str_eq(e.event, "gap", "unknown id began with %s", e.event);
        sse_event_clear(&e);
        close(s.fd);
}

Test(sse, bad_last_event_id_is_refused)
{
        struct stream s;
        stream_open("Accept: text/event-stream\r\nLast-Event-ID: x1\r\n", &s);
        cr_expect_eq(s.status, 400L, "status %ld", s.status);
        close(s.fd);
}

Test(sse, ndjson_stays_the_default)
{
        const char *headers[] = {"", "Accept: application/x-ndjson\r\n", "Accept: */*\r\n",
                                 "Last-Event-ID: 1\r\n"};
        for (size_t i = 0; i < ARRAY_SIZE(headers); i++) {
                struct stream s;
                stream_open(headers[i], &s);
                cr_assert_eq(s.status, 200L, "status %ld for '%s'", s.status, headers[i]);
                cr_expect_str_eq(s.content_type, "application/x-ndjson", "for '%s'", headers[i]);
                _cleanup_free_ char *line = NULL;
                cr_assert_eq(harness_events_next(s.fd, 5000, &line), 0);
                static const char subscribed[] = "{\"type\":\"subscribed\"";
                cr_expect(strncmp(line, subscribed, strlen(subscribed)) == 0,
                          "first line for '%s': %s", headers[i], line);
                close(s.fd);
        }
}
