/* SPDX-License-Identifier: MIT */
/*
 * events: fan-out of daemon events to GET /v1/events clients. Each subscriber has a
 * bounded queue; publishing never waits for a client: a subscriber whose queue is full
 * is cut off (its stream ends with an error, so it knows it missed events) rather than
 * let the daemon buffer without bound or block. The last IOV_EVENT_BACKLOG events are
 * kept so a client that reconnects with Last-Event-ID gets what it missed.
 */
#include <stdio.h>
#include <time.h>

#include "daemon/runtime.h"

#define SUBSCRIBER_QUEUE IOV_EVENT_BACKLOG
/* A backstop above what the API admits (api/conn-limit.h: 64 streams per listener, and 16
 * more for operators on the Unix socket), so the broker never refuses an operator's stream
 * that the connection limits let in. */
#define SUBSCRIBERS_MAX 256

struct iov_event_subscriber {
        struct iov_event_broker *broker;
        struct iov_event_record queue[SUBSCRIBER_QUEUE];
        size_t head;
        size_t count;
        bool dropped;
        pthread_cond_t cond;
        struct iov_event_subscriber *next;
};

void daemon_event_record_clear(struct iov_event_record *e)
{
        free(e->type);
        free(e->line);
        *e = (struct iov_event_record){0};
}

static int record_copy(const struct iov_event_record *from, struct iov_event_record *ret)
{
        struct iov_event_record e = {
                .seq = from->seq, .type = strdup(from->type), .line = strdup(from->line)};
        if (!e.type || !e.line) {
                daemon_event_record_clear(&e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

int daemon_events_init(struct iov_event_broker *b)
{
        *b = (struct iov_event_broker){0};
        b->backlog = calloc(IOV_EVENT_BACKLOG, sizeof(*b->backlog));
        if (!b->backlog)
                return -ENOMEM;
        return -pthread_mutex_init(&b->lock, NULL);
}

void daemon_events_shutdown(struct iov_event_broker *b)
{
        pthread_mutex_lock(&b->lock);
        b->stopping = true;
        for (struct iov_event_subscriber *s = b->subscribers; s; s = s->next)
                pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&b->lock);
}

void daemon_events_clear(struct iov_event_broker *b)
{
        /* Subscribers belong to their connections, which are gone by now. */
        for (size_t i = 0; b->backlog && i < IOV_EVENT_BACKLOG; i++)
                daemon_event_record_clear(&b->backlog[i]);
        free(b->backlog);
        b->backlog = NULL;
        pthread_mutex_destroy(&b->lock);
}

static void subscriber_push(struct iov_event_broker *b, struct iov_event_subscriber *s,
                            const struct iov_event_record *e)
{
        if (s->dropped)
                return;
        int r = -ENOBUFS;
        if (s->count < SUBSCRIBER_QUEUE)
                r = record_copy(e, &s->queue[(s->head + s->count) % SUBSCRIBER_QUEUE]);
        if (r < 0) {
                s->dropped = true;
                b->dropped++;
        } else
                s->count++;
        pthread_cond_signal(&s->cond);
}

/* Keep e (taken over) as the newest backlog entry, forgetting the oldest when full. */
static void backlog_push(struct iov_event_broker *b, struct iov_event_record *e)
{
        if (b->backlog_count == IOV_EVENT_BACKLOG) {
                daemon_event_record_clear(&b->backlog[b->backlog_head]);
                b->backlog_head = (b->backlog_head + 1) % IOV_EVENT_BACKLOG;
                b->backlog_count--;
        }
        b->backlog[(b->backlog_head + b->backlog_count) % IOV_EVENT_BACKLOG] = *e;
        b->backlog_count++;
        *e = (struct iov_event_record){0};
}

static char *event_format(struct iov_event_broker *b, const char *type, struct json_object *event,
                          struct json_object *data)
{
        json_object_object_add(event, "seq", json_object_new_uint64(b->seq));
        json_object_object_add(event, "time_usec", json_object_new_uint64(util_realtime_usec()));
        json_object_object_add(event, "type", json_object_new_string(type));
        json_object_object_add(event, "data", data);
        return util_strdup_printf(
                "%s\n", json_object_to_json_string_ext(
                                event, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

void daemon_event_publish(struct iov_daemon *d, const char *type, struct json_object *data)
{
        struct iov_event_broker *b = &d->rt->events;
        struct json_object *event = json_object_new_object();

        if (!event) {
                json_object_put(data);
                return;
        }
        pthread_mutex_lock(&b->lock);
        struct iov_event_record e = {.seq = ++b->seq, .type = strdup(type)};
        e.line = event_format(b, type, event, data);
        b->published++;
        for (struct iov_event_subscriber *s = b->subscribers; s && e.line && e.type; s = s->next)
                subscriber_push(b, s, &e);
        if (e.line && e.type && b->backlog) /* NULL: out of memory at start, no resume */
                backlog_push(b, &e);
        pthread_mutex_unlock(&b->lock);
        daemon_event_record_clear(&e);
        log_debug("event %s", type);
        json_object_put(event);
}

static struct iov_event_subscriber *subscriber_new(struct iov_event_broker *b)
{
        struct iov_event_subscriber *s = calloc(1, sizeof(*s));
        pthread_condattr_t attr;

        if (!s)
                return NULL;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &attr);
        pthread_condattr_destroy(&attr);
        s->broker = b;
        return s;
}

/* Queue the backlog after last_seq (lock held). 1 when events between last_seq and the
 * backlog are gone, with *ret_missed their number (0 when unknown). */
static int subscriber_replay(struct iov_event_broker *b, struct iov_event_subscriber *s,
                             uint64_t last_seq, uint64_t *ret_missed)
{
        int gap = 0;
        uint64_t missed = 0;
        if (last_seq > b->seq) {
                /* An id this run never gave: from before a restart. Replay it all. */
                gap = 1;
                last_seq = 0;
        }
        uint64_t oldest = b->backlog_count ? b->backlog[b->backlog_head].seq : b->seq + 1;
        if (oldest > last_seq + 1) {
                gap = 1;
                missed = oldest - last_seq - 1;
        }
        for (size_t i = 0; i < b->backlog_count; i++) {
                const struct iov_event_record *e =
                        &b->backlog[(b->backlog_head + i) % IOV_EVENT_BACKLOG];
                if (e->seq > last_seq)
                        subscriber_push(b, s, e);
        }
        *ret_missed = missed;
        return gap;
}

static int subscribe(struct iov_daemon *d, bool resume, uint64_t last_seq,
                     struct iov_event_subscriber **ret, uint64_t *ret_missed)
{
        struct iov_event_broker *b = &d->rt->events;
        struct iov_event_subscriber *s = subscriber_new(b);
        uint64_t missed = 0;
        int gap = 0;

        if (!s)
                return -ENOMEM;
        pthread_mutex_lock(&b->lock);
        if (b->n_subscribers >= SUBSCRIBERS_MAX || b->stopping) {
                pthread_mutex_unlock(&b->lock);
                pthread_cond_destroy(&s->cond);
                free(s);
                return -EMFILE;
        }
        if (resume)
                gap = subscriber_replay(b, s, last_seq, &missed);
        s->next = b->subscribers;
        b->subscribers = s;
        b->n_subscribers++;
        pthread_mutex_unlock(&b->lock);
        *ret = s;
        if (ret_missed)
                *ret_missed = missed;
        return gap;
}

int daemon_event_subscribe(struct iov_daemon *d, struct iov_event_subscriber **ret)
{
        return subscribe(d, false, 0, ret, NULL);
}

int daemon_event_subscribe_after(struct iov_daemon *d, uint64_t last_seq,
                                 struct iov_event_subscriber **ret, uint64_t *ret_missed)
{
        return subscribe(d, true, last_seq, ret, ret_missed);
}

static void deadline_after(unsigned timeout_ms, struct timespec *ts)
{
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += timeout_ms / 1000;
        ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

int daemon_event_next_record(struct iov_event_subscriber *s, unsigned timeout_ms,
                             struct iov_event_record *ret)
{
        struct iov_event_broker *b = s->broker;
        struct timespec deadline;
        int r = 0;

        deadline_after(timeout_ms, &deadline);
        pthread_mutex_lock(&b->lock);
        while (s->count == 0 && !s->dropped && !b->stopping && r == 0)
                r = pthread_cond_timedwait(&s->cond, &b->lock, &deadline);
        if (s->dropped)
                r = -EPIPE;
        else if (b->stopping)
                r = -ESHUTDOWN;
        else if (s->count == 0)
                r = -EAGAIN;
        else {
                *ret = s->queue[s->head];
                s->queue[s->head] = (struct iov_event_record){0};
                s->head = (s->head + 1) % SUBSCRIBER_QUEUE;
                s->count--;
                r = 0;
        }
        pthread_mutex_unlock(&b->lock);
        return r;
}

int daemon_event_next(struct iov_event_subscriber *s, unsigned timeout_ms, char **ret)
{
        struct iov_event_record e = {0};
        int r = daemon_event_next_record(s, timeout_ms, &e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e.line);
        daemon_event_record_clear(&e);
        return 0;
}

void daemon_event_unsubscribe(struct iov_event_subscriber *s)
{
        if (!s)
                return;
        struct iov_event_broker *b = s->broker;
        pthread_mutex_lock(&b->lock);
        for (struct iov_event_subscriber **p = &b->subscribers; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        b->n_subscribers--;
                        break;
                }
        pthread_mutex_unlock(&b->lock);
        for (size_t i = 0; i < s->count; i++)
                daemon_event_record_clear(&s->queue[(s->head + i) % SUBSCRIBER_QUEUE]);
        pthread_cond_destroy(&s->cond);
        free(s);
}
