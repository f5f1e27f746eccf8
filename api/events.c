/* SPDX-License-Identifier: MIT */
/*
 * events: GET /v1/events, a stream of newline-delimited JSON objects (device, VF,
 * driver and allocation events). The first line, {"type": "subscribed", ...}, says the
 * subscription is live, so a client knows from then on it misses nothing. A client too
 * slow to keep up is cut off (the stream ends with an error) instead of slowing iovd.
 */
#include <stdio.h>

#include "api/api.h"
#include "daemon/daemon.h"

/* How long one read waits for an event before handing control back to the server. */
#define EVENT_WAIT_MS 1000
/* An idle stream sends a blank line this often: it keeps the connection inside the
 * server's idle timeout and lets a client notice a dead daemon. Clients skip blank
 * lines (they are not events). */
#define EVENT_KEEPALIVE_USEC (15 * 1000 * 1000ULL)

struct events_stream {
        struct iov_event_subscriber *subscriber;
        char *line; /* being sent */
        size_t offset;
        uint64_t last_send_usec;
};

static ssize_t events_read(void *userdata, char *buf, size_t max)
{
        struct events_stream *st = userdata;

        if (!st->line) {
                int r = daemon_event_next(st->subscriber, EVENT_WAIT_MS, &st->line);
                if (r == -EAGAIN && max > 0 &&
                    util_now_usec() - st->last_send_usec >= EVENT_KEEPALIVE_USEC) {
                        st->last_send_usec = util_now_usec();
                        buf[0] = '\n';
                        return 1;
                }
                if (r == -EAGAIN)
                        return 0;
                if (r == -ESHUTDOWN)
                        return IOV_API_STREAM_END;
                if (r < 0)
                        return IOV_API_STREAM_ERROR;
                st->offset = 0;
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

static int events_get(struct iov_daemon *d, const struct iov_api_request *req,
                      struct iov_api_response *resp)
{
        (void)req;
        struct events_stream *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        int r = daemon_event_subscribe(d, &st->subscriber);
        if (r < 0) {
                free(st);
                if (r == -EMFILE)
                        return api_error(resp, 503, "too_many_subscribers",
                                         "too many event streams are open");
                return r;
        }
        st->line = util_strdup_printf("{\"type\":\"subscribed\",\"time_usec\":%llu}\n",
                                      (unsigned long long)util_realtime_usec());
        return api_reply_stream(resp, IOV_API_NDJSON_TYPE, &events_ops, st);
}

API_ROUTE(events, "GET", "/v1/events", events_get)
