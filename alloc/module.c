/* SPDX-License-Identifier: MIT */
/*
 * module: the allocations module of the daemon (DAEMON_MODULE): at start it opens the state store,
 * loads pools, allocations and the quarantine (a corrupt file stops the start, untouched),
 * reconciles them with sysfs before READY=1, and plugs allocation data into the device and group
 * JSON. While running, a watcher follows the daemon's own events: when a device goes
 * away (udev remove, rescan) the allocations holding it become lost at once.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

#include "alloc/alloc-internal.h"
#include "daemon/daemon.h"

static struct json_object *hook_device_allocation(struct iov_daemon *d,
                                                  const struct iov_pci_address *address)
{
        struct iov_registry *registry = d->alloc->registry;
        struct json_object *o = NULL;
        pthread_rwlock_rdlock(&registry->lock);
        struct iov_allocation *a = registry_find_by_device(registry, address);
        struct iov_quarantine_entry *q = a ? NULL : registry_find_quarantined(registry, address);
        if (a || q)
                o = json_object_new_object();
        if (a) {
                json_object_object_add(o, "id", json_object_new_string(a->id));
                json_object_object_add(o, "owner", json_object_new_string(a->owner));
                json_object_object_add(o, "vm", a->vm ? json_object_new_string(a->vm) : NULL);
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
        struct iov_registry *registry = d->alloc->registry;
        struct json_object *o = NULL;
        pthread_rwlock_rdlock(&registry->lock);
        struct iov_allocation *a = registry_find_by_group(registry, group_id);
        if (a)
                o = json_object_new_string(a->owner);
        pthread_rwlock_unlock(&registry->lock);
        return o;
}

/* Where allocations and releases spent their time, per step (enum iov_alloc_step). */
static void step_metrics(struct iov_registry *registry, FILE *out)
{
        fputs("# HELP iovd_allocation_step_seconds_total Time allocations and releases spent "
              "per step.\n# TYPE iovd_allocation_step_seconds_total counter\n"
              "# HELP iovd_allocation_steps_total Steps taken by allocations and releases.\n"
              "# TYPE iovd_allocation_steps_total counter\n",
              out);
        for (int s = 0; s < IOV_STEP_COUNT; s++) {
                uint64_t usec = __atomic_load_n(&registry->step_usec[s], __ATOMIC_RELAXED);
                uint64_t n = __atomic_load_n(&registry->step_count[s], __ATOMIC_RELAXED);
                const char *name = registry_step_name((enum iov_alloc_step)s);
                fprintf(out, "iovd_allocation_step_seconds_total{step=\"%s\"} %.6f\n", name,
                        (double)usec / 1e6);
                fprintf(out, "iovd_allocation_steps_total{step=\"%s\"} %" PRIu64 "\n", name, n);
        }
}

static void hook_metrics(struct iov_daemon *d, FILE *out)
{
        struct iov_registry *registry = d->alloc->registry;
        size_t by_state[IOV_ALLOCATION_LOST + 1] = {0};
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
        step_metrics(registry, out);
}

static void hook_host_counts(struct iov_daemon *d, struct json_object *counts)
{
        struct iov_registry *registry = d->alloc->registry;
        pthread_rwlock_rdlock(&registry->lock);
        json_object_object_add(counts, "allocations",
                               json_object_new_int64((int64_t)registry->n_allocations));
        json_object_object_add(counts, "pools", json_object_new_int64((int64_t)registry->n_pools));
        json_object_object_add(counts, "quarantined",
                               json_object_new_int64((int64_t)registry->n_quarantine));
        pthread_rwlock_unlock(&registry->lock);
}

/* Events that can mean a held device went away or changed hands behind our back: the
 * device they name is checked (a PF's vfs_changed comes with device_removed for each VF
 * that went). 1 with *ret_address, 0 for other events, -EBADMSG when the event names no
 * address (everything is checked then). */
static int event_device_address(const char *line, struct iov_pci_address *ret_address)
{
        struct json_object *ev = json_tokener_parse(line), *type, *data, *address;
        int r = 0;
        if (ev && json_object_object_get_ex(ev, "type", &type)) {
                const char *t = json_object_get_string(type);
                if (streq(t, "device_removed") || streq(t, "vfs_changed") ||
                    streq(t, "driver_changed"))
                        r = json_object_object_get_ex(ev, "data", &data) &&
                                            json_object_object_get_ex(data, "address", &address) &&
                                            pci_address_parse(json_object_get_string(address),
                                                              ret_address) == 0
                                    ? 1
                                    : -EBADMSG;
        }
        json_object_put(ev);
        return r;
}

static void watcher_handle(struct iov_daemon *d, const char *line)
{
        struct iov_pci_address address;
        int r = event_device_address(line, &address);
        if (r > 0)
                (void)allocations_check_device(d, &address);
        else if (r < 0)
                (void)allocations_check_active(d);
}

static void *watcher_main(void *userdata)
{
        struct iov_daemon *d = userdata;
        struct iov_event_subscriber *sub = NULL;
        while (!atomic_load(&d->alloc->watcher_stop)) {
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
                watcher_handle(d, line);
                free(line);
        }
        daemon_event_unsubscribe(sub);
        return NULL;
}

static int load_and_reconcile(struct iov_daemon *d)
{
        struct iov_registry *registry = d->alloc->registry;
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

static void alloc_stop(struct iov_daemon *d);

static int alloc_open_state(struct iov_daemon *d)
{
        if (d->state)
                return 0;
        int r = state_open(d->config.state_dir, &d->state);
        if (r < 0)
                return log_error_errno(r, "Cannot open state dir %s: %m", d->config.state_dir);
        d->alloc->owns_state = true;
        return 0;
}

int alloc_lock_pf_of(struct iov_daemon *d, const struct iov_pci_address *address, bool shared,
                     struct iov_hwlock **ret)
{
        if (!d->alloc)
                return -ESRCH;
        struct iov_pci_device dev = {0};
        char key[IOV_HWLOCK_KEY_MAX];
        int r = pci_device_read(d->config.sysfs_root, address, &dev);
        if (r < 0)
                return r;
        hwlock_key_pf(dev.is_vf ? &dev.physfn : address, key);
        pci_device_clear(&dev);
        return hwlock_take(&d->alloc->hwlocks, key, shared, ret);
}

void alloc_unlock(struct iov_daemon *d, struct iov_hwlock *l)
{
        if (d->alloc)
                hwlock_release(&d->alloc->hwlocks, l);
}

static int alloc_start(struct iov_daemon *d)
{
        d->alloc = calloc(1, sizeof(*d->alloc));
        if (!d->alloc)
                return -ENOMEM;
        pthread_mutex_init(&d->alloc->hwlocks.lock, NULL);
        int r = alloc_open_state(d);
        if (r >= 0)
                r = registry_new(&d->alloc->registry);
        if (r >= 0)
                r = load_and_reconcile(d);
        if (r < 0) {
                alloc_stop(d);
                return r;
        }
        atomic_store(&d->alloc->watcher_stop, false);
        r = pthread_create(&d->alloc->watcher, NULL, watcher_main, d);
        if (r != 0) {
                alloc_stop(d);
                return log_error_errno(r, "Cannot start the allocation watcher: %m");
        }
        d->alloc->watcher_running = true;
        return 0;
}

static void alloc_stop(struct iov_daemon *d)
{
        struct iov_alloc *alloc = d->alloc;
        if (!alloc)
                return;
        /* The watcher reaches the registry through d: stop it before d->alloc goes. */
        if (alloc->watcher_running) {
                atomic_store(&alloc->watcher_stop, true);
                pthread_join(alloc->watcher, NULL);
        }
        d->alloc = NULL;
        registry_free(alloc->registry);
        pthread_mutex_destroy(&alloc->hwlocks.lock);
        if (alloc->owns_state)
                state_free(TAKE_PTR(d->state));
        free(alloc);
}

DAEMON_MODULE(allocations, .order = 50, .start = alloc_start, .stop = alloc_stop,
              .metrics = hook_metrics, .host_counts = hook_host_counts,
              .device_allocation = hook_device_allocation, .group_owner = hook_group_owner)
