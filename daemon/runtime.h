/* SPDX-License-Identifier: MIT */
/* runtime: the private half of struct iov_daemon, shared by the files of daemon/. */
#pragma once

#include <pthread.h>

#include "daemon/daemon.h"

/* Events kept for Last-Event-ID resume; also the size of each subscriber's queue, so a
 * resume replays the whole backlog into a fresh queue. */
#define IOV_EVENT_BACKLOG 256

struct iov_event_record;

struct iov_event_broker {
        pthread_mutex_t lock;
        struct iov_event_record *backlog; /* ring of IOV_EVENT_BACKLOG, oldest at head */
        size_t backlog_head;
        size_t backlog_count;
        struct iov_event_subscriber *subscribers;
        size_t n_subscribers;
        uint64_t seq;
        uint64_t published;
        uint64_t dropped; /* subscribers cut for being too slow */
        bool stopping;
};

struct iov_request_counter {
        char *method;
        char *route;
        unsigned status;
        uint64_t count;
        uint64_t duration_usec; /* sum */
};

struct iov_metrics {
        pthread_mutex_t lock;
        struct iov_request_counter *counters;
        size_t n_counters;
        uint64_t rescans;
        uint64_t last_rescan_usec; /* duration of the last scan */
        uint64_t refreshes;        /* per-device refreshes (daemon_refresh_devices) */
        uint64_t refresh_usec;     /* their total duration */
};

struct iov_udev_monitor;

struct iov_daemon_runtime {
        pthread_mutex_t snapshot_lock; /* guards the pointer swap only */
        struct iov_snapshot *snapshot;
        pthread_mutex_t rescan_lock; /* one scan at a time, so diffs are in order */

        struct iov_event_broker events;
        struct iov_metrics metrics;

        struct iov_udev_monitor *udev;
        /* The first n_modules_running modules in order have started and not stopped;
         * callers of their callbacks hold the lock for reading. */
        pthread_rwlock_t modules_lock;
        size_t n_modules_running;
        int lock_fd;
        bool stopping;     /* atomic: daemon_stop_begin ran */
        bool status_stale; /* atomic: the main loop sends STATUS= again on its next wake */
};

int daemon_events_init(struct iov_event_broker *b);
/* Wake every subscriber: their next read ends the stream. */
void daemon_events_shutdown(struct iov_event_broker *b);
void daemon_events_clear(struct iov_event_broker *b);

int daemon_metrics_init(struct iov_metrics *m);
void daemon_metrics_clear(struct iov_metrics *m);
void daemon_metrics_count_rescan(struct iov_daemon *d, uint64_t duration_usec);

/* Free a snapshot nobody refers to (one never published, or the last reference). */
void daemon_snapshot_free(struct iov_snapshot *s);

/* Build the first snapshot (no events). */
int daemon_inventory_init(struct iov_daemon *d);
void daemon_inventory_clear(struct iov_daemon *d);
/* Swap new in (taking its reference) and publish what differs from old (may be NULL).
 * The caller holds rescan_lock, so snapshots are published in order. */
void daemon_snapshot_replace(struct iov_daemon *d, const struct iov_snapshot *old,
                             struct iov_snapshot *new);
void daemon_metrics_count_refresh(struct iov_daemon *d, uint64_t duration_usec);

/* Start every module in order; on failure the ones started stay running (and answering)
 * until daemon_modules_stop(). */
int daemon_modules_start(struct iov_daemon *d);
/* Stop the running modules in reverse order. */
void daemon_modules_stop(struct iov_daemon *d);

/* udev: PCI add/remove from the kernel's uevents trigger a rescan. */
int daemon_udev_start(struct iov_daemon *d, struct iov_udev_monitor **ret);
void daemon_udev_stop(struct iov_udev_monitor *m);
