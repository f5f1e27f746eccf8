/* SPDX-License-Identifier: MIT */
/*
 * The allocations module of the daemon: at start it opens the state store, loads pools,
 * allocations and the quarantine (a corrupt file stops the start, untouched), reconciles
 * them with sysfs before READY=1, and plugs allocation data into the device and group
 * JSON. While running, a watcher follows the daemon's own events: when a device goes
 * away (udev remove, rescan) the allocations holding it become lost at once.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "alloc/allocations.h"
#include "daemon/state.h"

/* One daemon per process: the registry lives as long as the module runs. */
static struct iov_registry *registry;
static pthread_t watcher;
static bool watcher_running;
static atomic_bool watcher_stop;
static bool owns_state;

struct iov_registry *registry_get(struct iov_daemon *d)
{
        (void)d;
        return registry;
}

static struct json_object *hook_device_allocation(struct iov_daemon *d,
                                                  const struct iov_pci_address *address)
{
        struct json_object *o = NULL;
        (void)d;
        pthread_rwlock_rdlock(&registry->lock);
        struct iov_allocation *a = registry_find_by_device(registry, address);
        struct iov_quarantine_entry *q = a ? NULL : registry_find_quarantined(registry, address);
        if (a || q)
                o = json_object_new_object();
        if (a) {
                json_object_object_add(o, "id", json_object_new_string(a->id));
                json_object_object_add(o, "owner", json_object_new_string(a->owner));
                json_object_object_add(
                        o, "state", json_object_new_string(allocation_state_to_string(a->state)));
        } else if (q) {
                json_object_object_add(o, "state", json_object_new_string("quarantined"));
                json_object_object_add(o, "reason", json_object_new_string(q->reason));
        }
        pthread_rwlock_unlock(&registry->lock);
        return o;
}

static struct json_object *hook_group_owner(struct iov_daemon *d, unsigned group_id)
{
        struct json_object *o = NULL;
        (void)d;
        pthread_rwlock_rdlock(&registry->lock);
        struct iov_allocation *a = registry_find_by_group(registry, group_id);
        if (a)
                o = json_object_new_string(a->owner);
        pthread_rwlock_unlock(&registry->lock);
        return o;
}

static void hook_metrics(struct iov_daemon *d, FILE *out)
{
        size_t by_state[IOV_ALLOCATION_LOST + 1] = {0};
        (void)d;
        pthread_rwlock_rdlock(&registry->lock);
        for (size_t i = 0; i < registry->n_allocations; i++)
                by_state[registry->allocations[i]->state]++;
        size_t pools = registry->n_pools, quarantined = registry->n_quarantine;
        pthread_rwlock_unlock(&registry->lock);

        fputs("# HELP iovd_allocations Allocations by state.\n"
              "# TYPE iovd_allocations gauge\n",
              out);
        for (size_t s = 0; s < ARRAY_SIZE(by_state); s++)
                fprintf(out, "iovd_allocations{state=\"%s\"} %zu\n",
                        allocation_state_to_string((enum iov_allocation_state)s), by_state[s]);
        fprintf(out,
                "# HELP iovd_pools Defined pools.\n# TYPE iovd_pools gauge\niovd_pools %zu\n"
                "# HELP iovd_quarantined_devices Devices held back after a failed reset.\n"
                "# TYPE iovd_quarantined_devices gauge\niovd_quarantined_devices %zu\n",
                pools, quarantined);
}

static void hook_host_counts(struct iov_daemon *d, struct json_object *counts)
{
        (void)d;
        pthread_rwlock_rdlock(&registry->lock);
        json_object_object_add(counts, "allocations",
                               json_object_new_int64((int64_t)registry->n_allocations));
        json_object_object_add(counts, "pools", json_object_new_int64((int64_t)registry->n_pools));
        json_object_object_add(counts, "quarantined",
                               json_object_new_int64((int64_t)registry->n_quarantine));
        pthread_rwlock_unlock(&registry->lock);
}

/* Events that can mean a held device went away or changed hands behind our back. */
static bool event_concerns_devices(const char *line)
{
        struct json_object *ev = json_tokener_parse(line), *type;
        bool yes = false;
        if (ev && json_object_object_get_ex(ev, "type", &type)) {
                const char *t = json_object_get_string(type);
                yes = streq(t, "device_removed") || streq(t, "vfs_changed") ||
                      streq(t, "driver_changed");
        }
        json_object_put(ev);
        return yes;
}

static void *watcher_main(void *userdata)
{
        struct iov_daemon *d = userdata;
        struct iov_event_subscriber *sub = NULL;
        while (!atomic_load(&watcher_stop)) {
                if (!sub && daemon_event_subscribe(d, &sub) < 0) {
                        util_sleep_usec(200 * 1000);
                        continue;
                }
                char *line = NULL;
                int r = daemon_event_next(sub, 500, &line);
                if (r == -EAGAIN)
                        continue;
                if (r < 0) { /* dropped or stopping: look at everything once, resubscribe */
                        daemon_event_unsubscribe(TAKE_PTR(sub));
                        if (r == -ESHUTDOWN)
                                break;
                        (void)allocations_check_active(d);
                        continue;
                }
                if (event_concerns_devices(line))
                        (void)allocations_check_active(d);
                free(line);
        }
        daemon_event_unsubscribe(sub);
        return NULL;
}

static int load_and_reconcile(struct iov_daemon *d)
{
        int r = registry_load(registry, d->state);
        if (r < 0)
                return r; /* logged, naming the file */
        pthread_mutex_lock(&d->state_lock);
        r = allocations_reconcile(d, registry);
        pthread_mutex_unlock(&d->state_lock);
        if (r < 0)
                return log_error_errno(r, "Cannot save the reconciled state in %s: %m",
                                       state_dir(d->state));
        log_info("state restored from %s: %zu pools, %zu allocations (%d reconciled)",
                 state_dir(d->state), registry->n_pools, registry->n_allocations, r);
        return 0;
}

static void resources_stop(struct iov_daemon *d);

static int resources_start(struct iov_daemon *d)
{
        int r;
        if (!d->state) {
                r = state_open(d->config.state_dir, &d->state);
                if (r < 0)
                        return log_error_errno(r, "Cannot open state dir %s: %m",
                                               d->config.state_dir);
                owns_state = true;
        }
        r = registry_new(&registry);
        if (r < 0)
                return r;
        r = load_and_reconcile(d);
        if (r < 0) {
                resources_stop(d);
                return r;
        }
        atomic_store(&watcher_stop, false);
        r = pthread_create(&watcher, NULL, watcher_main, d);
        if (r != 0)
                return log_error_errno(r, "Cannot start the allocation watcher: %m");
        watcher_running = true;
        return 0;
}

static void resources_stop(struct iov_daemon *d)
{
        if (watcher_running) {
                atomic_store(&watcher_stop, true);
                pthread_join(watcher, NULL);
                watcher_running = false;
        }
        registry_free(TAKE_PTR(registry));
        if (owns_state) {
                state_free(TAKE_PTR(d->state));
                owns_state = false;
        }
}

DAEMON_MODULE(allocations, .order = 50, .start = resources_start, .stop = resources_stop,
              .metrics = hook_metrics, .host_counts = hook_host_counts,
              .device_allocation = hook_device_allocation, .group_owner = hook_group_owner)
