/* SPDX-License-Identifier: MIT */
/*
 * udev: PCI hotplug, VF creation and driver binds reach iovd as kernel uevents. The
 * monitor listens on the "kernel" netlink source, not "udev": no udev daemon has to run
 * (the lab has none). A burst (255 VFs appearing) is drained before one rescan.
 */
#include <libudev.h>
#include <poll.h>
#include <sys/eventfd.h>

#include "daemon/runtime.h"

/* After an event, wait this long for more before scanning, so a burst costs one scan. */
#define SETTLE_MS 50

struct iov_udev_monitor {
        struct iov_daemon *d;
        struct udev *udev;
        struct udev_monitor *monitor;
        int stop_fd;
        pthread_t thread;
        bool running;
};

/* Read every queued uevent; true when one of them concerns PCI inventory. */
static bool monitor_drain(struct iov_udev_monitor *m)
{
        bool relevant = false;
        struct udev_device *dev;

        while ((dev = udev_monitor_receive_device(m->monitor))) {
                const char *action = udev_device_get_action(dev);
                log_debug("uevent %s %s", action ? action : "?", udev_device_get_sysname(dev));
                relevant =
                        relevant || (action && (streq(action, "add") || streq(action, "remove") ||
                                                streq(action, "bind") || streq(action, "unbind")));
                udev_device_unref(dev);
        }
        return relevant;
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
                int n = poll(fds, 2, pending ? SETTLE_MS : -1);
                if (n < 0 && errno != EINTR)
                        break;
                if (fds[1].revents)
                        break;
                if (n > 0 && fds[0].revents) {
                        pending = monitor_drain(m) || pending;
                        continue;
                }
                if (n == 0 && pending) {
                        pending = false;
                        daemon_rescan(m->d);
                }
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
