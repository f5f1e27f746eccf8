/* SPDX-License-Identifier: MIT */
/*
 * One I/O thread per virtio-pci device: it sleeps in ppoll(2) on the queues' doorbell
 * eventfds (written by KVM, no exit to userspace) and on the device's backend fd, and
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

static bool iothread_polls_backend(const struct iov_virtio_pci *p)
{
        return p->vdev->backend_fd >= 0 && !p->backend_dead && !p->backend_starved &&
               !iothread_vhost(p);
}

/* p->lock held. */
static void iothread_update_starved(struct iov_virtio_pci *p)
{
        struct iov_virtio_dev *d = p->vdev;
        if (d->backend_fd >= 0)
                p->backend_starved = !virtq_has_avail(&d->queues[d->ops->backend_queue]) ||
                                     (d->ops->backend_blocked && d->ops->backend_blocked(d));
}

static void iothread_kick(struct iov_virtio_pci *p, unsigned q)
{
        eventfd_t count;
        int r;

        pthread_mutex_lock(&p->lock);
        /* The doorbell is vhost's now (it woke us once more before we left its fd). */
        if (p->vhost_running) {
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

static void iothread_backend(struct iov_virtio_pci *p, short revents)
{
        int r;

        pthread_mutex_lock(&p->lock);
        if (p->vhost_running) {
                pthread_mutex_unlock(&p->lock);
                return;
        }
        r = virtio_dev_backend_ready(p->vdev);
        iothread_update_starved(p);
        pthread_mutex_unlock(&p->lock);
        if (r == -EPIPE || (revents & (POLLERR | POLLNVAL)))
                p->backend_dead = true;
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

static void *iothread_main(void *arg)
{
        struct iov_virtio_pci *p = arg;
        unsigned nq = p->vdev->num_queues;

        for (;;) {
                struct pollfd fds[IOV_VPCI_MAX_QUEUES + 4];
                nfds_t n = 0;
                int backend = -1, completion = -1, watch = -1;

                bool vhost = iothread_vhost(p);
                fds[n++] = (struct pollfd){.fd = p->stop_fd, .events = POLLIN};
                /* Under vhost the doorbells are the kernel's: a negative fd is skipped. */
                for (unsigned q = 0; q < nq; q++)
                        fds[n++] =
                                (struct pollfd){.fd = vhost ? -1 : p->kick_fd[q], .events = POLLIN};
                if (iothread_polls_backend(p)) {
                        backend = (int)n;
                        fds[n++] = (struct pollfd){.fd = p->vdev->backend_fd, .events = POLLIN};
                }
                if (p->vdev->watch_fd >= 0 && !p->backend_dead) {
                        watch = (int)n;
                        fds[n++] = (struct pollfd){.fd = p->vdev->watch_fd, .events = POLLIN};
                }
                if (p->vdev->completion_fd >= 0) {
                        completion = (int)n;
                        fds[n++] = (struct pollfd){.fd = p->vdev->completion_fd, .events = POLLIN};
                }
                if (ppoll(fds, n, NULL, NULL) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (fds[0].revents)
                        break;
                /* Completions first: they free slots and batch with what the kicks add. */
                if (completion >= 0 && fds[completion].revents)
                        iothread_complete(p);
                for (unsigned q = 0; q < nq; q++)
                        if (fds[1 + q].revents & POLLIN)
                                iothread_kick(p, q);
                if (backend >= 0 && fds[backend].revents)
                        iothread_backend(p, fds[backend].revents);
                if (watch >= 0 && fds[watch].revents)
                        iothread_watch(p);
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
