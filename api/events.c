/* SPDX-License-Identifier: MIT */
/*
 * events: GET /v1/events, a stream of newline-delimited JSON objects (device, VF,
 * driver and allocation events). The first line, {"type": "subscribed", ...}, says the
 * subscription is live, so a client knows from then on it misses nothing. A client too
 * slow to keep up is cut off (the stream ends with an error) instead of slowing iovd.
 *
 * With "Accept: text/event-stream" the same events come as Server-Sent Events (WHATWG
 * HTML §9.2 "Server-sent events"): "id:" is the event's seq, "event:" its type, "data:"
 * the same JSON object; a blank line ends each event; ":" lines are keepalives. A client
 * that reconnects with Last-Event-ID gets the kept events after that id first, or, when
 * some are gone, an "event: gap" saying how many were missed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "api/api.h"
#include "daemon/daemon.h"

#define IOV_API_SSE_TYPE "text/event-stream"

/* How long one read waits for an event before handing control back to the server. */
#define EVENT_WAIT_MS 1000
/* An idle stream sends a blank line (NDJSON) or a ":" comment (SSE) this often: it
 * keeps the connection inside the server's idle timeout and lets a client notice a dead
 * daemon. Clients skip blank lines and comments (they are not events). */
#define EVENT_KEEPALIVE_USEC (15 * 1000 * 1000ULL)

struct events_stream {
        struct iov_event_subscriber *subscriber;
        bool sse;
        char *line; /* being sent */
        size_t offset;
        uint64_t last_send_usec;
};

/* The SSE frame of one event. The JSON is printed plain, so it has no line breaks and
 * fits one "data:" line (HTML §9.2.6: a line break would end the field). */
static char *events_frame_sse(const struct iov_event_record *e)
{
        size_t len = strlen(e->line);
        int data_len = (int)(len > 0 && e->line[len - 1] == '\n' ? len - 1 : len);
        return util_strdup_printf("id: %" PRIu64 "\nevent: %s\ndata: %.*s\n\n", e->seq, e->type,
                                  data_len, e->line);
}

static int events_fetch(struct events_stream *st)
{
        struct iov_event_record e = {0};
        int r = daemon_event_next_record(st->subscriber, EVENT_WAIT_MS, &e);
        if (r < 0)
                return r;
        st->line = st->sse ? events_frame_sse(&e) : TAKE_PTR(e.line);
        daemon_event_record_clear(&e);
        st->offset = 0;
        return st->line ? 0 : -ENOMEM;
}

static ssize_t events_keepalive(struct events_stream *st, char *buf, size_t max)
{
        static const char comment[] = ":\n";
        size_t n = st->sse ? sizeof(comment) - 1 : 1;
        if (max < n || util_now_usec() - st->last_send_usec < EVENT_KEEPALIVE_USEC)
                return 0;
        st->last_send_usec = util_now_usec();
        memcpy(buf, st->sse ? comment : "\n", n);
        return (ssize_t)n;
}

static ssize_t events_read(void *userdata, char *buf, size_t max)
{
        struct events_stream *st = userdata;

        if (!st->line) {
                int r = events_fetch(st);
                if (r == -EAGAIN)
                        return events_keepalive(st, buf, max);
                if (r == -ESHUTDOWN)
                        return IOV_API_STREAM_END;
                if (r < 0)
                        return IOV_API_STREAM_ERROR;
        }
        size_t left = strlen(st->line + st->offset);
        size_t n = left < max ? left : max;
        memcpy(buf, st->line + st->offset, n);
        st->offset += n;
        st->last_send_usec = util_now_usec();
        if (st->offset == strlen(st->line)) {
                free(st->line);
                st->line = NULL;
        }
        return (ssize_t)n;
}

static void events_free(void *userdata)
{
        struct events_stream *st = userdata;
        daemon_event_unsubscribe(st->subscriber);
        free(st->line);
        free(st);
}

static const struct iov_api_stream_ops events_ops = {
        .read = events_read,
        .free = events_free,
};

/* SSE when the client asks for it; NDJSON otherwise (also for no Accept or *\/ *). */
static bool events_want_sse(const struct iov_api_request *req)
{
        const char *accept = api_request_header(req, "Accept");
        return accept && strcasestr(accept, IOV_API_SSE_TYPE);
}

/* Last-Event-ID: the decimal seq the client saw last (HTML §9.2.4 sends it back). */
static int events_parse_last_id(const char *s, uint64_t *ret)
{
        char *end = NULL;
        if (!s[0] || s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* The first message: "subscribed" (no id, so a client's last id stays as it was), or on
 * a resume that lost events, "gap" with how many (0: unknown, e.g. iovd restarted). */
static char *events_first_message(bool sse, bool gap, uint64_t missed)
{
        uint64_t now = util_realtime_usec();
        if (gap && sse)
                return util_strdup_printf("event: gap\ndata: {\"type\":\"gap\",\"missed\":%" PRIu64
                                          ",\"time_usec\":%" PRIu64 "}\n\n",
                                          missed, now);
        if (sse)
                return util_strdup_printf("event: subscribed\ndata: {\"type\":\"subscribed\","
                                          "\"time_usec\":%" PRIu64 "}\n\n",
                                          now);
        return util_strdup_printf("{\"type\":\"subscribed\",\"time_usec\":%" PRIu64 "}\n", now);
}

static int events_subscribe(struct iov_daemon *d, const struct iov_api_request *req,
                            struct iov_api_response *resp, struct events_stream *st)
{
        const char *last = st->sse ? api_request_header(req, "Last-Event-ID") : NULL;
        uint64_t last_seq = 0, missed = 0;
        int r;

        if (last && events_parse_last_id(last, &last_seq) < 0)
                return api_error(resp, 400, "invalid_value",
                                 "Last-Event-ID is not an event id (a decimal seq)");
        if (last)
                r = daemon_event_subscribe_after(d, last_seq, &st->subscriber, &missed);
        else
                r = daemon_event_subscribe(d, &st->subscriber);
        if (r == -EMFILE)
                return api_error(resp, 503, "too_many_subscribers",
                                 "too many event streams are open");
        if (r < 0)
                return r;
        st->line = events_first_message(st->sse, r > 0, missed);
        return 0;
}

static int events_get(struct iov_daemon *d, const struct iov_api_request *req,
                      struct iov_api_response *resp)
{
        struct events_stream *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->sse = events_want_sse(req);
        int r = events_subscribe(d, req, resp, st);
        if (r < 0) {
                free(st);
                return r;
        }
        return api_reply_stream(resp, st->sse ? IOV_API_SSE_TYPE : IOV_API_NDJSON_TYPE, &events_ops,
                                st);
}

API_ROUTE(events, "GET", "/v1/events", events_get)
