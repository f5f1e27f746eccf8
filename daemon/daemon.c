/* SPDX-License-Identifier: MIT */
/*
 * daemon: the life of the core. Start: lock the state dir, read the token, scan the
 * hardware, start the modules (state restore and reconcile), watch udev; the program then
 * starts the API over it and only then sends READY=1 (daemon_ready). Stop: STOPPING=1 and
 * every stream woken (daemon_stop_begin), the program closes the API (which ends every
 * connection), then the modules stop in reverse order (daemon_stop).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "daemon/runtime.h"

int daemon_new(struct iov_daemon_config *config, struct iov_daemon **ret)
{
        struct iov_daemon *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->rt = calloc(1, sizeof(*d->rt));
        if (!d->rt) {
                free(d);
                return -ENOMEM;
        }
        d->config = *config;
        *config = (struct iov_daemon_config){0};
        d->rt->lock_fd = -1;
        pthread_mutex_init(&d->state_lock, NULL);
        pthread_mutex_init(&d->rt->snapshot_lock, NULL);
        pthread_mutex_init(&d->rt->rescan_lock, NULL);
        pthread_rwlock_init(&d->rt->modules_lock, NULL);
        daemon_events_init(&d->rt->events);
        daemon_metrics_init(&d->rt->metrics);
        *ret = d;
        return 0;
}

void daemon_free(struct iov_daemon *d)
{
        if (!d)
                return;
        daemon_stop(d);
        daemon_inventory_clear(d);
        daemon_events_clear(&d->rt->events);
        daemon_metrics_clear(&d->rt->metrics);
        pthread_mutex_destroy(&d->rt->snapshot_lock);
        pthread_mutex_destroy(&d->rt->rescan_lock);
        pthread_rwlock_destroy(&d->rt->modules_lock);
        pthread_mutex_destroy(&d->state_lock);
        if (d->rt->lock_fd >= 0)
                close(d->rt->lock_fd);
        free(d->rt);
        daemon_config_clear(&d->config);
        free(d);
}

/* flock on STATE_DIR/iovd.lock: released by the kernel when the process dies, so a crash
 * never leaves a lock behind, and a second daemon finds it held. */
static int state_dir_lock(struct iov_daemon *d)
{
        int r = util_mkdir_p(d->config.state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Cannot create state dir %s: %m", d->config.state_dir);
        _cleanup_free_ char *path = util_path_join(d->config.state_dir, "iovd.lock", NULL);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return log_error_errno(EBUSY,
                                               "Another iovd is running on state dir %s "
                                               "(%s is locked)",
                                               d->config.state_dir, path);
                return log_error_errno(errno, "Cannot lock %s: %m", path);
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || write(fd, pid, (size_t)n) != n)
                log_debug("could not record the pid in %s", path);
        d->rt->lock_fd = TAKE_FD(fd);
        return 0;
}

static void log_unsafe_switch(struct iov_daemon *d)
{
        if (d->config.allow_unsafe_interrupts)
                log_warning("--allow-unsafe-interrupts is set: devices may be passed through "
                            "without an IOMMU or without interrupt remapping; a guest can "
                            "then reach host memory or inject interrupts. Do not use this in "
                            "production.");
}

int daemon_start(struct iov_daemon *d)
{
        int r = state_dir_lock(d);
        if (r < 0)
                return r;
        r = util_mkdir_p(d->config.run_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create run dir %s: %m", d->config.run_dir);
        log_unsafe_switch(d);
        uint64_t start = util_now_usec();
        r = daemon_inventory_init(d);
        if (r < 0)
                return log_error_errno(r, "Cannot read the PCI inventory below %s: %m",
                                       d->config.sysfs_root);
        log_debug("inventory read in %llu ms",
                  (unsigned long long)(util_now_usec() - start) / 1000);
        r = daemon_modules_start(d);
        if (r < 0)
                return r;
        r = daemon_udev_start(d, &d->rt->udev);
        if (r < 0)
                log_warning_errno(r, "No udev monitor, use POST /v1/rescan after changes: %m");
        return 0;
}

void daemon_ready(struct iov_daemon *d)
{
        (void)d;
        int r = daemon_notify("READY=1");
        if (r < 0)
                log_warning_errno(r, "Cannot notify the service manager: %m");
        log_info("iovd ready");
}

bool daemon_is_stopping(struct iov_daemon *d)
{
        return __atomic_load_n(&d->rt->stopping, __ATOMIC_RELAXED);
}

void daemon_stop_begin(struct iov_daemon *d)
{
        if (daemon_is_stopping(d))
                return;
        __atomic_store_n(&d->rt->stopping, true, __ATOMIC_RELAXED);
        daemon_notify("STOPPING=1\nSTATUS=stopping");
        daemon_udev_stop(TAKE_PTR(d->rt->udev));
        daemon_events_shutdown(&d->rt->events);
}

void daemon_stop(struct iov_daemon *d)
{
        daemon_stop_begin(d);
        daemon_modules_stop(d);
}
