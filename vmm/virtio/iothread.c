/* SPDX-License-Identifier: MIT */
/*
 * One I/O thread per virtio-pci device: it sleeps in ppoll(2) on the queues' doorbell
 * eventfds (written by KVM, no exit to userspace) and on the device's backend fds (one,
 * or one per virtio-net queue pair), and
 * serves the queues under the device lock, so vCPU threads only ever touch registers.
 *
 * ppoll rather than epoll: a handful of fds per device, and ppoll is already on
 * iovd-vmm's seccomp allow-list (vmm/sandbox.c). The backend fd is level-triggered, so it
 * is left out of the set while the queue it feeds has no buffers (the driver's next kick
 * brings it back) or after it reached EOF; otherwise pending input would spin the thread.
 * A device with asynchronous requests (virtio-blk on io_uring) has a completion fd, an
 * eventfd the kernel signals as requests finish: always polled, and its requests are put
 * into the used rings in one batch per wake-up.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>

#include "vmm/virtio/pci.h"

static bool iothread_vhost(const struct iov_virtio_pci *p)
{
        return __atomic_load_n(&p->vhost_running, __ATOMIC_ACQUIRE);
}

/* Queue q is vhost's now: its doorbell and its backend are the kernel's. */
static bool iothread_vhost_queue(const struct iov_virtio_pci *p, unsigned q)
{
        return iothread_vhost(p) && vpci_vhost_owns_queue(p, q);
}

static bool iothread_polls_backend(const struct iov_virtio_pci *p, unsigned b)
{
        return p->vdev->backend_fd[b] >= 0 && !p->backend_dead[b] && !p->backend_starved[b] &&
               !iothread_vhost_queue(p, virtio_dev_backend_queue(p->vdev, b));
}

/* p->lock held. */
static void iothread_update_starved(struct iov_virtio_pci *p)
{
        struct iov_virtio_dev *d = p->vdev;
        for (unsigned b = 0; b < IOV_VIRTIO_MAX_BACKENDS; b++) {
                unsigned q = virtio_dev_backend_queue(d, b);
                if (d->backend_fd[b] >= 0 && q < d->num_queues)
                        p->backend_starved[b] =
                                !virtq_has_avail(&d->queues[q]) ||
                                (d->ops->backend_blocked && d->ops->backend_blocked(d, b));
        }
}

static void iothread_kick(struct iov_virtio_pci *p, unsigned q)
{
        eventfd_t count;
        int r;

        pthread_mutex_lock(&p->lock);
        /* The doorbell is vhost's now (it woke us once more before we left its fd). */
        if (p->vhost_running && vpci_vhost_owns_queue(p, q)) {
                pthread_mutex_unlock(&p->lock);
                return;
        }
        (void)eventfd_read(p->kick_fd[q], &count);
        r = virtio_dev_notify(p->vdev, q);
        iothread_update_starved(p);
        pthread_mutex_unlock(&p->lock);
        /* Budget used up with work left: come back after the other fds had a turn. */
        if (r == 1)
                (void)eventfd_write(p->kick_fd[q], 1);
}

static void iothread_backend(struct iov_virtio_pci *p, unsigned b, short revents)
{
        int r;

        pthread_mutex_lock(&p->lock);
        if (p->vhost_running && vpci_vhost_owns_queue(p, virtio_dev_backend_queue(p->vdev, b))) {
                pthread_mutex_unlock(&p->lock);
                return;
        }
        r = virtio_dev_backend_ready_at(p->vdev, b);
        iothread_update_starved(p);
        pthread_mutex_unlock(&p->lock);
        if (r == -EPIPE || (revents & (POLLERR | POLLNVAL)))
                p->backend_dead[b] = true;
}

/* Not under vhost: vhost serves TAP backends only, and a TAP has no watch fd. */
static void iothread_watch(struct iov_virtio_pci *p)
{
        pthread_mutex_lock(&p->lock);
        virtio_dev_backend_watch(p->vdev);
        iothread_update_starved(p);
        pthread_mutex_unlock(&p->lock);
}

static void iothread_complete(struct iov_virtio_pci *p)
{
        eventfd_t count;

        (void)eventfd_read(p->vdev->completion_fd, &count);
        pthread_mutex_lock(&p->lock);
        (void)virtio_dev_complete(p->vdev);
        pthread_mutex_unlock(&p->lock);
}

/* What one ppoll waits for, and where each kind sits in fds (-1: not polled). */
struct iothread_set {
        struct pollfd fds[IOV_VPCI_MAX_QUEUES + IOV_VIRTIO_MAX_BACKENDS + 3];
        nfds_t n;
        int backend[IOV_VIRTIO_MAX_BACKENDS];
        int completion, watch;
};

static int iothread_add(struct iothread_set *set, int fd)
{
        set->fds[set->n] = (struct pollfd){.fd = fd, .events = POLLIN};
        return (int)set->n++;
}

/* fds[0] the stop fd, fds[1 + q] queue q's doorbell, then the rest. */
static void iothread_fill(struct iov_virtio_pci *p, struct iothread_set *set)
{
        struct iov_virtio_dev *d = p->vdev;

        *set = (struct iothread_set){.completion = -1, .watch = -1};
        (void)iothread_add(set, p->stop_fd);
        /* Under vhost the doorbells are the kernel's: a negative fd is skipped. */
        for (unsigned q = 0; q < d->num_queues; q++)
                (void)iothread_add(set, iothread_vhost_queue(p, q) ? -1 : p->kick_fd[q]);
        for (unsigned b = 0; b < IOV_VIRTIO_MAX_BACKENDS; b++)
                set->backend[b] =
                        iothread_polls_backend(p, b) ? iothread_add(set, d->backend_fd[b]) : -1;
        if (d->watch_fd >= 0 && !p->backend_dead[0])
                set->watch = iothread_add(set, d->watch_fd);
        if (d->completion_fd >= 0)
                set->completion = iothread_add(set, d->completion_fd);
}

static void iothread_dispatch(struct iov_virtio_pci *p, const struct iothread_set *set)
{
        /* Completions first: they free slots and batch with what the kicks add. */
        if (set->completion >= 0 && set->fds[set->completion].revents)
                iothread_complete(p);
        for (unsigned q = 0; q < p->vdev->num_queues; q++)
                if (set->fds[1 + q].revents & POLLIN)
                        iothread_kick(p, q);
        for (unsigned b = 0; b < IOV_VIRTIO_MAX_BACKENDS; b++)
                if (set->backend[b] >= 0 && set->fds[set->backend[b]].revents)
                        iothread_backend(p, b, set->fds[set->backend[b]].revents);
        if (set->watch >= 0 && set->fds[set->watch].revents)
                iothread_watch(p);
}

static void *iothread_main(void *arg)
{
        struct iov_virtio_pci *p = arg;
        struct iothread_set set;

        for (;;) {
                iothread_fill(p, &set);
                if (ppoll(set.fds, set.n, NULL, NULL) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (set.fds[0].revents)
                        break;
                iothread_dispatch(p, &set);
        }
        return NULL;
}

int vpci_iothread_start(struct iov_virtio_pci *p)
{
        sigset_t all, old;
        int r;

        p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->stop_fd < 0)
                return -errno;
        /* The thread takes no signals: they are for the vCPU and main threads. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&p->thread, NULL, iothread_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        p->thread_started = true;
        return 0;
}

void vpci_iothread_stop(struct iov_virtio_pci *p)
{
        if (p->thread_started) {
                (void)eventfd_write(p->stop_fd, 1);
                pthread_join(p->thread, NULL);
                p->thread_started = false;
        }
        if (p->stop_fd >= 0)
                close(p->stop_fd);
        p->stop_fd = -1;
}
