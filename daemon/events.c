/* SPDX-License-Identifier: MIT */
/*
 * events: fan-out of daemon events to GET /v1/events clients. Each subscriber has a
 * bounded queue; publishing never waits for a client: a subscriber whose queue is full
 * is cut off (its stream ends with an error, so it knows it missed events) rather than
 * let the daemon buffer without bound or block.
 */
#include <stdio.h>
#include <time.h>

#include "daemon/runtime.h"

#define SUBSCRIBER_QUEUE 256
#define SUBSCRIBERS_MAX  64

struct iov_event_subscriber {
        struct iov_event_broker *broker;
        char *queue[SUBSCRIBER_QUEUE];
        size_t head;
        size_t count;
        bool dropped;
        pthread_cond_t cond;
        struct iov_event_subscriber *next;
};

int daemon_events_init(struct iov_event_broker *b)
{
        *b = (struct iov_event_broker){0};
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
        pthread_mutex_destroy(&b->lock);
}

static void subscriber_push(struct iov_event_broker *b, struct iov_event_subscriber *s,
                            const char *line)
{
        if (s->dropped)
                return;
        char *copy = s->count < SUBSCRIBER_QUEUE ? strdup(line) : NULL;
        if (!copy) {
                s->dropped = true;
                b->dropped++;
        } else {
                s->queue[(s->head + s->count) % SUBSCRIBER_QUEUE] = copy;
                s->count++;
        }
        pthread_cond_signal(&s->cond);
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
        json_object_object_add(event, "seq", json_object_new_uint64(++b->seq));
        json_object_object_add(event, "time_usec", json_object_new_uint64(util_realtime_usec()));
        json_object_object_add(event, "type", json_object_new_string(type));
        json_object_object_add(event, "data", data);
        _cleanup_free_ char *line = util_strdup_printf(
                "%s\n", json_object_to_json_string_ext(
                                event, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        b->published++;
        for (struct iov_event_subscriber *s = b->subscribers; s && line; s = s->next)
                subscriber_push(b, s, line);
        pthread_mutex_unlock(&b->lock);
        log_debug("event %s", type);
        json_object_put(event);
}

int daemon_event_subscribe(struct iov_daemon *d, struct iov_event_subscriber **ret)
{
        struct iov_event_broker *b = &d->rt->events;
        struct iov_event_subscriber *s = calloc(1, sizeof(*s));
        pthread_condattr_t attr;

        if (!s)
                return -ENOMEM;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &attr);
        pthread_condattr_destroy(&attr);
        s->broker = b;

        pthread_mutex_lock(&b->lock);
        if (b->n_subscribers >= SUBSCRIBERS_MAX || b->stopping) {
                pthread_mutex_unlock(&b->lock);
                pthread_cond_destroy(&s->cond);
                free(s);
                return -EMFILE;
        }
        s->next = b->subscribers;
        b->subscribers = s;
        b->n_subscribers++;
        pthread_mutex_unlock(&b->lock);
        *ret = s;
        return 0;
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

int daemon_event_next(struct iov_event_subscriber *s, unsigned timeout_ms, char **ret)
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
                s->queue[s->head] = NULL;
                s->head = (s->head + 1) % SUBSCRIBER_QUEUE;
                s->count--;
                r = 0;
        }
        pthread_mutex_unlock(&b->lock);
        return r;
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
                free(s->queue[(s->head + i) % SUBSCRIBER_QUEUE]);
        pthread_cond_destroy(&s->cond);
        free(s);
}
