/* SPDX-License-Identifier: MIT */
/*
 * udev: PCI hotplug, VF creation and driver binds reach iovd as kernel uevents. The
 * monitor listens on the "kernel" netlink source, not "udev": no udev daemon has to run
 * (the lab has none). A burst (255 VFs appearing) is drained, then only the functions
 * it named are read again (daemon_refresh_devices), not the whole host.
 */
#include <libudev.h>
#include <poll.h>
#include <sys/eventfd.h>

#include "daemon/runtime.h"

/* After an event, wait this long for more before scanning, so a burst costs one scan. */
#define SETTLE_MS 50
/* A settled burst of only binds and unbinds that the snapshot does not show yet is looked
 * at once more this much later: when a request of iovd's made them, it refreshes those
 * functions itself before it answers (alloc/allocate.c, alloc/release.c), and a refresh
 * here meanwhile does that work twice on the same CPU (bench/vf-net: 13 such refreshes
 * for 40 requests on the lab's one vCPU). A bind by someone else shows this much later. */
#define RECHECK_MS 250
/* The functions one settled burst may name for a refresh; more, and the whole host is
 * read again (a full scan is then about as cheap). */
#define REFRESH_MAX 1024

struct iov_udev_monitor {
        struct iov_daemon *d;
        struct udev *udev;
        struct udev_monitor *monitor;
        int stop_fd;
        pthread_t thread;
        bool running;
        /* The functions named by the events of the burst being settled. */
        struct iov_pci_address pending[REFRESH_MAX];
        size_t n_pending;
        bool overflow;   /* a name that did not fit or did not parse: rescan everything */
        bool structural; /* an add or remove among them, not only binds and unbinds */
        bool rechecking; /* not shown at the first look: looked at again after RECHECK_MS */
};

static bool action_relevant(const char *action)
{
        return action && (streq(action, "add") || streq(action, "remove") ||
                          streq(action, "bind") || streq(action, "unbind"));
}

static void monitor_note(struct iov_udev_monitor *m, const char *sysname)
{
        struct iov_pci_address a;
        if (!sysname || pci_address_parse(sysname, &a) < 0 || m->n_pending == REFRESH_MAX) {
                m->overflow = true;
                return;
        }
        m->pending[m->n_pending++] = a;
}

/* Read every queued uevent; true when one of them concerns PCI inventory. */
static bool monitor_drain(struct iov_udev_monitor *m)
{
        bool relevant = false;
        struct udev_device *dev;

        while ((dev = udev_monitor_receive_device(m->monitor))) {
                const char *action = udev_device_get_action(dev);
                const char *sysname = udev_device_get_sysname(dev);
                log_debug("uevent %s %s", action ? action : "?", sysname ? sysname : "?");
                if (action_relevant(action)) {
                        relevant = true;
                        m->structural |= !streq(action, "bind") && !streq(action, "unbind");
                        monitor_note(m, sysname);
                }
                udev_device_unref(dev);
        }
        return relevant;
}

/* Whether the snapshot already shows the driver each function is bound to now: what a
 * burst of binds and unbinds iovd made itself looks like once the request refreshed
 * those functions (bench/vf-net: 55 second refreshes for 18 allocations). One readlink
 * per function instead of a refresh. */
static bool snapshot_shows_drivers(struct iov_udev_monitor *m)
{
        _cleanup_snapshot_ struct iov_snapshot *snap = daemon_snapshot_get(m->d);
        for (size_t i = 0; snap && i < m->n_pending; i++) {
                const struct iov_pci_device *dev = pci_inventory_find(snap->pci, &m->pending[i]);
                _cleanup_free_ char *link =
                        pci_device_sysfs_path(m->d->config.sysfs_root, &m->pending[i], "driver");
                _cleanup_free_ char *driver = NULL;
                if (!dev || !link)
                        return false;
                int r = util_readlink_basename(link, &driver);
                if ((r < 0 && r != -ENOENT) || !streq_ptr(driver, dev->driver))
                        return false;
        }
        return snap != NULL;
}

/* The functions the burst named (with their PFs or VFs where those changed too), or the
 * whole host when the burst was too large to list; nothing when only binds and unbinds
 * the snapshot already shows. True: not yet, look again after RECHECK_MS. */
static bool monitor_settle(struct iov_udev_monitor *m)
{
        bool only_binds = !m->overflow && !m->structural;
        bool shown = only_binds && snapshot_shows_drivers(m);
        if (!shown && only_binds && !m->rechecking) {
                m->rechecking = true;
                return true;
        }
        if (!shown && (m->overflow || daemon_refresh_devices(m->d, m->pending, m->n_pending) < 0))
                daemon_rescan(m->d);
        m->n_pending = 0;
        m->overflow = false;
        m->structural = false;
        m->rechecking = false;
        return false;
}

static void *monitor_thread(void *userdata)
{
        struct iov_udev_monitor *m = userdata;
        struct pollfd fds[2] = {
                {.fd = udev_monitor_get_fd(m->monitor), .events = POLLIN},
                {.fd = m->stop_fd, .events = POLLIN},
        };
        bool pending = false;

        for (;;) {
                int n = poll(fds, 2, !pending ? -1 : m->rechecking ? RECHECK_MS : SETTLE_MS);
                if (n < 0 && errno != EINTR)
                        break;
                if (fds[1].revents)
                        break;
                if (n > 0 && fds[0].revents) {
                        pending = monitor_drain(m) || pending;
                        continue;
                }
                if (n == 0 && pending)
                        pending = monitor_settle(m);
        }
        return NULL;
}

static void monitor_free(struct iov_udev_monitor *m)
{
        if (!m)
                return;
        udev_monitor_unref(m->monitor);
        udev_unref(m->udev);
        if (m->stop_fd >= 0)
                close(m->stop_fd);
        free(m);
}

int daemon_udev_start(struct iov_daemon *d, struct iov_udev_monitor **ret)
{
        struct iov_udev_monitor *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->d = d;
        m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        m->udev = udev_new();
        m->monitor = m->udev ? udev_monitor_new_from_netlink(m->udev, "kernel") : NULL;
        int r = m->stop_fd < 0 || !m->monitor ? -EPROTONOSUPPORT : 0;
        if (r == 0)
                r = udev_monitor_filter_add_match_subsystem_devtype(m->monitor, "pci", NULL);
        if (r == 0)
                r = udev_monitor_enable_receiving(m->monitor);
        if (r == 0)
                r = -pthread_create(&m->thread, NULL, monitor_thread, m);
        if (r < 0) {
                monitor_free(m);
                return r;
        }
        m->running = true;
        *ret = m;
        return 0;
}

void daemon_udev_stop(struct iov_udev_monitor *m)
{
        if (!m)
                return;
        if (m->running) {
                uint64_t one = 1;
                if (write(m->stop_fd, &one, sizeof(one)) == sizeof(one))
                        pthread_join(m->thread, NULL);
        }
        monitor_free(m);
}
