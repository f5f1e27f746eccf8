/* SPDX-License-Identifier: MIT */
/*
 * modules: the one extension mechanism of the core. Each module registers itself
 * (DAEMON_MODULE) with a start, a stop and optional callbacks; the core starts them in
 * order, asks the running ones for metrics, host counts and device or group owners, and
 * stops them in reverse order. Adding a module touches its own files and the build only.
 */
#include "daemon/runtime.h"

static struct iov_daemon_module *modules;

/* Keep the list sorted by order, so start runs low to high and stop the reverse. */
void daemon_module_register(struct iov_daemon_module *module)
{
        struct iov_daemon_module **p = &modules;
        while (*p && (*p)->order <= module->order)
                p = &(*p)->next;
        module->next = *p;
        *p = module;
}

int daemon_modules_start(struct iov_daemon *d)
{
        for (struct iov_daemon_module *m = modules; m; m = m->next) {
                uint64_t start = util_now_usec();
                int r = m->start ? m->start(d) : 0;
                if (r < 0)
                        return log_error_errno(r, "Starting %s failed: %m", m->name);
                /* From now on its callbacks answer; readers hold the lock for reading. */
                pthread_rwlock_wrlock(&d->rt->modules_lock);
                d->rt->n_modules_running++;
                pthread_rwlock_unlock(&d->rt->modules_lock);
                log_debug("module %s started in %llu ms", m->name,
                          (unsigned long long)(util_now_usec() - start) / 1000);
        }
        return 0;
}

static struct iov_daemon_module *module_at(size_t i)
{
        struct iov_daemon_module *m = modules;
        while (m && i-- > 0)
                m = m->next;
        return m;
}

/* The running ones, last started first. Each is taken out of the answering set before
 * its stop runs, so no callback runs into a module that is stopping. */
void daemon_modules_stop(struct iov_daemon *d)
{
        while (d->rt->n_modules_running > 0) {
                pthread_rwlock_wrlock(&d->rt->modules_lock);
                struct iov_daemon_module *m = module_at(--d->rt->n_modules_running);
                pthread_rwlock_unlock(&d->rt->modules_lock);
                if (m && m->stop)
                        m->stop(d);
        }
}

/* The running modules, in order; the caller holds the lock for reading. */
#define FOREACH_RUNNING_MODULE(d, m)                                                               \
        for (struct iov_daemon_module *m = modules, *end_ = module_at((d)->rt->n_modules_running); \
             m != end_; m = m->next)

void daemon_modules_metrics(struct iov_daemon *d, FILE *out)
{
        pthread_rwlock_rdlock(&d->rt->modules_lock);
        FOREACH_RUNNING_MODULE(d, m)
        if (m->metrics)
                m->metrics(d, out);
        pthread_rwlock_unlock(&d->rt->modules_lock);
}

void daemon_modules_host_counts(struct iov_daemon *d, struct json_object *counts)
{
        pthread_rwlock_rdlock(&d->rt->modules_lock);
        FOREACH_RUNNING_MODULE(d, m)
        if (m->host_counts)
                m->host_counts(d, counts);
        pthread_rwlock_unlock(&d->rt->modules_lock);
}

struct json_object *daemon_device_allocation(struct iov_daemon *d,
                                             const struct iov_pci_address *address)
{
        struct json_object *o = NULL;
        pthread_rwlock_rdlock(&d->rt->modules_lock);
        FOREACH_RUNNING_MODULE(d, m)
        if (!o && m->device_allocation)
                o = m->device_allocation(d, address);
        pthread_rwlock_unlock(&d->rt->modules_lock);
        return o;
}

struct json_object *daemon_group_owner(struct iov_daemon *d, unsigned group_id)
{
        struct json_object *o = NULL;
        pthread_rwlock_rdlock(&d->rt->modules_lock);
        FOREACH_RUNNING_MODULE(d, m)
        if (!o && m->group_owner)
                o = m->group_owner(d, group_id);
        pthread_rwlock_unlock(&d->rt->modules_lock);
        return o;
}
