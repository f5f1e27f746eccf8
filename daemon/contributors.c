/* SPDX-License-Identifier: MIT */
/*
 * contributors: the modules that add lines to /metrics and keys to GET /v1/host "counts".
 * A list rather than one slot, so allocations, VMs and later modules each bring their own
 * without knowing of the others.
 */
#include "daemon/runtime.h"

void daemon_contributor_add(struct iov_daemon *d, struct iov_daemon_contributor *c)
{
        pthread_rwlock_wrlock(&d->rt->contributors_lock);
        struct iov_daemon_contributor **tail = &d->rt->contributors;
        while (*tail && *tail != c)
                tail = &(*tail)->next;
        if (!*tail) { /* adding twice would make a cycle */
                c->next = NULL;
                *tail = c;
        }
        pthread_rwlock_unlock(&d->rt->contributors_lock);
}

void daemon_contributor_remove(struct iov_daemon *d, struct iov_daemon_contributor *c)
{
        pthread_rwlock_wrlock(&d->rt->contributors_lock);
        for (struct iov_daemon_contributor **p = &d->rt->contributors; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        c->next = NULL;
                        break;
                }
        pthread_rwlock_unlock(&d->rt->contributors_lock);
}

void daemon_contributors_metrics(struct iov_daemon *d, FILE *out)
{
        pthread_rwlock_rdlock(&d->rt->contributors_lock);
        for (struct iov_daemon_contributor *c = d->rt->contributors; c; c = c->next)
                if (c->metrics)
                        c->metrics(d, out);
        pthread_rwlock_unlock(&d->rt->contributors_lock);
}

void daemon_contributors_host_counts(struct iov_daemon *d, struct json_object *counts)
{
        pthread_rwlock_rdlock(&d->rt->contributors_lock);
        for (struct iov_daemon_contributor *c = d->rt->contributors; c; c = c->next)
                if (c->host_counts)
                        c->host_counts(d, counts);
        pthread_rwlock_unlock(&d->rt->contributors_lock);
}
