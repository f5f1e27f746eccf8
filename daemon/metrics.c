/* SPDX-License-Identifier: MIT */
/*
 * metrics: counters for GET /metrics in the Prometheus text exposition format (version
 * 0.0.4): requests by method, route pattern and status, inventory gauges, events, plus
 * what the running modules add (their metrics callback).
 */
#include <stdio.h>

#include "daemon/runtime.h"

int daemon_metrics_init(struct iov_metrics *m)
{
        *m = (struct iov_metrics){0};
        return -pthread_mutex_init(&m->lock, NULL);
}

void daemon_metrics_clear(struct iov_metrics *m)
{
        for (size_t i = 0; i < m->n_counters; i++) {
                free(m->counters[i].method);
                free(m->counters[i].route);
        }
        free(m->counters);
        pthread_mutex_destroy(&m->lock);
        *m = (struct iov_metrics){0};
}

static struct iov_request_counter *counter_find_or_add(struct iov_metrics *m, const char *method,
                                                       const char *route, unsigned status)
{
        for (size_t i = 0; i < m->n_counters; i++) {
                struct iov_request_counter *c = &m->counters[i];
                if (c->status == status && streq(c->method, method) && streq(c->route, route))
                        return c;
        }
        struct iov_request_counter *p =
                realloc(m->counters, (m->n_counters + 1) * sizeof(*m->counters));
        if (!p)
                return NULL;
        m->counters = p;
        struct iov_request_counter *c = &p[m->n_counters];
        *c = (struct iov_request_counter){
                .method = strdup(method), .route = strdup(route), .status = status};
        if (!c->method || !c->route) {
                free(c->method);
                free(c->route);
                return NULL;
        }
        m->n_counters++;
        return c;
}

/* route is a pattern from the route table or "unmatched", never the raw path, so the
 * number of series stays bounded whatever clients send. Unknown methods are folded too. */
void daemon_metrics_count_request(struct iov_daemon *d, const char *method, const char *route,
                                  unsigned status, uint64_t duration_usec)
{
        static const char *const known[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
        const char *m = "other";
        for (size_t i = 0; i < ARRAY_SIZE(known); i++)
                if (streq(method, known[i]))
                        m = known[i];

        pthread_mutex_lock(&d->rt->metrics.lock);
        struct iov_request_counter *c = counter_find_or_add(&d->rt->metrics, m, route, status);
        if (c) {
                c->count++;
                c->duration_usec += duration_usec;
        }
        pthread_mutex_unlock(&d->rt->metrics.lock);
}

void daemon_metrics_count_rescan(struct iov_daemon *d, uint64_t duration_usec)
{
        pthread_mutex_lock(&d->rt->metrics.lock);
        d->rt->metrics.rescans++;
        d->rt->metrics.last_rescan_usec = duration_usec;
        pthread_mutex_unlock(&d->rt->metrics.lock);
}

void daemon_metrics_count_refresh(struct iov_daemon *d, uint64_t duration_usec)
{
        pthread_mutex_lock(&d->rt->metrics.lock);
        d->rt->metrics.refreshes++;
        d->rt->metrics.refresh_usec += duration_usec;
        pthread_mutex_unlock(&d->rt->metrics.lock);
}

static void render_requests(struct iov_metrics *m, FILE *out)
{
        fputs("# HELP iovd_http_requests_total HTTP requests by method, route and status.\n"
              "# TYPE iovd_http_requests_total counter\n",
              out);
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->n_counters; i++) {
                struct iov_request_counter *c = &m->counters[i];
                fprintf(out,
                        "iovd_http_requests_total{method=\"%s\",route=\"%s\",status=\"%u\"} %llu\n",
                        c->method, c->route, c->status, (unsigned long long)c->count);
        }
        fputs("# HELP iovd_http_request_duration_seconds_total Time spent answering, by method, "
              "route and status.\n"
              "# TYPE iovd_http_request_duration_seconds_total counter\n",
              out);
        for (size_t i = 0; i < m->n_counters; i++) {
                struct iov_request_counter *c = &m->counters[i];
                fprintf(out,
                        "iovd_http_request_duration_seconds_total{method=\"%s\",route=\"%s\","
                        "status=\"%u\"} %.6f\n",
                        c->method, c->route, c->status, (double)c->duration_usec / 1e6);
        }
        fprintf(out,
                "# HELP iovd_rescans_total Inventory scans since start.\n"
                "# TYPE iovd_rescans_total counter\n"
                "iovd_rescans_total %llu\n"
                "# HELP iovd_rescan_duration_seconds Duration of the last inventory scan.\n"
                "# TYPE iovd_rescan_duration_seconds gauge\n"
                "iovd_rescan_duration_seconds %.6f\n"
                "# HELP iovd_device_refreshes_total Partial inventory refreshes (the functions "
                "an allocation, release or VF change touched).\n"
                "# TYPE iovd_device_refreshes_total counter\n"
                "iovd_device_refreshes_total %llu\n"
                "# HELP iovd_device_refresh_seconds_total Time spent in partial refreshes.\n"
                "# TYPE iovd_device_refresh_seconds_total counter\n"
                "iovd_device_refresh_seconds_total %.6f\n",
                (unsigned long long)m->rescans, (double)m->last_rescan_usec / 1e6,
                (unsigned long long)m->refreshes, (double)m->refresh_usec / 1e6);
        pthread_mutex_unlock(&m->lock);
}

static void render_inventory(struct iov_daemon *d, FILE *out)
{
        _cleanup_snapshot_ struct iov_snapshot *s = daemon_snapshot_get(d);
        size_t pfs = 0, vfs = 0, n = s ? s->pci->n_devices : 0;

        for (size_t i = 0; i < n; i++) {
                pfs += s->pci->devices[i].is_pf;
                vfs += s->pci->devices[i].is_vf;
        }
        fprintf(out,
                "# HELP iovd_pci_devices PCI functions in the inventory.\n"
                "# TYPE iovd_pci_devices gauge\n"
                "iovd_pci_devices %zu\n"
                "# HELP iovd_sriov_pfs SR-IOV physical functions.\n"
                "# TYPE iovd_sriov_pfs gauge\n"
                "iovd_sriov_pfs %zu\n"
                "# HELP iovd_sriov_vfs SR-IOV virtual functions.\n"
                "# TYPE iovd_sriov_vfs gauge\n"
                "iovd_sriov_vfs %zu\n"
                "# HELP iovd_iommu_groups IOMMU groups.\n"
                "# TYPE iovd_iommu_groups gauge\n"
                "iovd_iommu_groups %zu\n",
                n, pfs, vfs, s ? s->n_groups : 0);
}

static void render_events(struct iov_event_broker *b, FILE *out)
{
        pthread_mutex_lock(&b->lock);
        fprintf(out,
                "# HELP iovd_events_published_total Events published.\n"
                "# TYPE iovd_events_published_total counter\n"
                "iovd_events_published_total %llu\n"
                "# HELP iovd_event_subscribers Connected event stream clients.\n"
                "# TYPE iovd_event_subscribers gauge\n"
                "iovd_event_subscribers %zu\n"
                "# HELP iovd_event_subscribers_dropped_total Event clients cut for being too "
                "slow.\n"
                "# TYPE iovd_event_subscribers_dropped_total counter\n"
                "iovd_event_subscribers_dropped_total %llu\n",
                (unsigned long long)b->published, b->n_subscribers, (unsigned long long)b->dropped);
        pthread_mutex_unlock(&b->lock);
}

int daemon_metrics_render(struct iov_daemon *d, char **ret)
{
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        if (!out)
                return -ENOMEM;
        render_requests(&d->rt->metrics, out);
        render_inventory(d, out);
        render_events(&d->rt->events, out);
        daemon_modules_metrics(d, out);
        if (fclose(out) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}
