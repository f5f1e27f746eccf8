/* SPDX-License-Identifier: MIT */
/*
 * The VM-to-VM link backend of virtio-net (docs/architecture.md, "VM-to-VM links"): the
 * device's frames go to another VMM over one end of an AF_UNIX SOCK_SEQPACKET socketpair
 * iovd made, one message per Ethernet frame (no virtio header on the wire), so the host's
 * network stack never sees them.
 *
 * A link starts down: its end arrives later, on the control socket's thread
 * (virtio_net_link_attach), at the VMM's start and again each time the peer VM restarts.
 * That thread only parks the end and writes an eventfd; the I/O thread, which polls an
 * epoll set holding the eventfd and the current end, adopts it under the device lock.
 * Carrier (virtio 1.2 §5.1.4) is on while an end is held and off once the peer's end is
 * closed (EPOLLHUP, EPIPE, ECONNRESET).
 *
 * Nothing waits for the peer: sends are MSG_DONTWAIT and a full peer or a link that is
 * down drops the frame and counts it. A port (the driver VM's side) accepts only frames
 * whose source MAC is its client's definition MAC, given with the end; others are
 * dropped and counted, so a client cannot pose as another host behind the driver VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"
#include "vmm/virtio/net-backend.h"

/* Frames dropped (bad source, bad size) per receive call before the I/O thread gets
 * its turn back; the socket stays readable, so the rest are read on the next turn. */
#define LINK_DROP_BUDGET 64u

struct net_link_stats {
        uint64_t frames_sent, bytes_sent, frames_received, bytes_received;
        uint64_t dropped_full, dropped_down, dropped_source_mac, dropped_invalid;
};

struct net_link {
        struct iov_net_backend base;
        char name[IOV_VIRTIO_NET_LINK_NAME_MAX];
        bool is_port;
        int epoll_fd, wake_fd;
        /* The end's hang-up and the wake-up, without its frames: polled always. */
        int watch_epoll_fd;
        /* A high descriptor number the end is moved to, or -1 (virtio_net_link_reserve_fds);
         * without an end it holds a duplicate of wake_fd, so the number stays ours. */
        int slot_fd;
        /* The I/O thread's (device lock). */
        int end_fd;
        uint8_t source_mac[6];
        struct iovec rx_iov[IOV_VIRTQ_MAX_SEGS];
        /* Parked by the control thread under links_lock. */
        int pending_fd;
        uint8_t pending_mac[6];
        bool end_waiting; /* set with pending_fd, taken by the I/O thread */
        /* Written by the I/O thread, read by the control thread (stats): relaxed atomics. */
        struct net_link_stats stats;
        uint64_t carrier_changed_usec; /* CLOCK_MONOTONIC, 0: never */
        struct net_link *next;
};

#define LINK_COUNT(l, field, n) __atomic_fetch_add(&(l)->stats.field, (n), __ATOMIC_RELAXED)

/* The links of this process, found by name by the control socket. */
static pthread_mutex_t links_lock = PTHREAD_MUTEX_INITIALIZER;
static struct net_link *links;
/* Descriptor numbers kept high for link ends, taken by links as they are created. */
#define LINK_RESERVED_FDS_MAX 32
static int reserved_fds[LINK_RESERVED_FDS_MAX];
static unsigned n_reserved_fds;

/* A new eventfd on number fd (it keeps the number for a link end), or on the lowest free
 * number when fd is beyond the process's limit. */
static int link_reserve_fd(int fd)
{
        _cleanup_close_ int e = eventfd(0, EFD_CLOEXEC);
        if (e < 0)
                return -errno;
        if (e == fd || dup3(e, fd, O_CLOEXEC) < 0)
                return TAKE_FD(e);
        return fd;
}

int virtio_net_link_reserve_fds(unsigned n, int highest)
{
        int r = 0;
        pthread_mutex_lock(&links_lock);
        /* Taken from the end of the array: the first link gets the highest number. */
        for (int fd = highest - (int)n + 1; r >= 0 && fd <= highest; fd++) {
                if (n_reserved_fds == LINK_RESERVED_FDS_MAX)
                        break;
                /* A number in use stays with its owner: the lowest free one instead. */
                r = link_reserve_fd(fcntl(fd, F_GETFD) < 0 ? fd : -1);
                if (r >= 0)
                        reserved_fds[n_reserved_fds++] = r;
        }
        pthread_mutex_unlock(&links_lock);
        return r < 0 ? r : 0;
}

static void link_set_carrier(struct net_link *l, bool on)
{
        if (__atomic_load_n(&l->base.carrier, __ATOMIC_RELAXED) == on)
                return;
        __atomic_store_n(&l->base.carrier, on, __ATOMIC_RELAXED);
        __atomic_store_n(&l->carrier_changed_usec, util_now_usec(), __ATOMIC_RELAXED);
}

static void link_drop_end(struct net_link *l)
{
        if (l->end_fd < 0)
                return;
        (void)epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, l->end_fd, NULL);
        (void)epoll_ctl(l->watch_epoll_fd, EPOLL_CTL_DEL, l->end_fd, NULL);
        /* dup3 closes the end and keeps the number (a wake_fd duplicate stands in). */
        if (l->end_fd != l->slot_fd || dup3(l->wake_fd, l->slot_fd, O_CLOEXEC) < 0)
                close(l->end_fd);
        l->end_fd = -1;
        link_set_carrier(l, false);
}

static void link_adopt(struct net_link *l, int fd, const uint8_t mac[6])
{
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
        /* Hang-up only (EPOLLHUP and EPOLLERR are always reported): frames must not
         * wake a device that has no buffer for them. */
        struct epoll_event hup = {.events = EPOLLRDHUP, .data.fd = fd};

        link_drop_end(l);
        if (l->slot_fd >= 0 && dup3(fd, l->slot_fd, O_CLOEXEC) >= 0) {
                close(fd);
                fd = l->slot_fd;
                ev.data.fd = hup.data.fd = fd;
        }
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ||
            epoll_ctl(l->watch_epoll_fd, EPOLL_CTL_ADD, fd, &hup) < 0) {
                (void)epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                return;
        }
        l->end_fd = fd;
        memcpy(l->source_mac, mac, sizeof(l->source_mac));
        link_set_carrier(l, true);
}

/* The peer closed its end (it stopped or crashed): its frames can no longer come. */
static bool link_end_closed(const struct net_link *l)
{
        struct pollfd p = {.fd = l->end_fd, .events = POLLRDHUP};
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
}

static void link_service(struct iov_net_backend *b)
{
        struct net_link *l = (struct net_link *)b;
        eventfd_t count;

        /* Most wake-ups are frames: only an attach costs the eventfd read. A closed end
         * shows up as a readable end whose recvmsg returns 0 (link_receive_one). */
        if (!__atomic_load_n(&l->end_waiting, __ATOMIC_ACQUIRE))
                return;
        /* Under the lock the eventfd is readable exactly while end_waiting is set. */
        pthread_mutex_lock(&links_lock);
        (void)eventfd_read(l->wake_fd, &count);
        __atomic_store_n(&l->end_waiting, false, __ATOMIC_RELEASE);
        int fd = l->pending_fd;
        uint8_t mac[6];
        memcpy(mac, l->pending_mac, sizeof(mac));
        l->pending_fd = -1;
        pthread_mutex_unlock(&links_lock);
        if (fd >= 0)
                link_adopt(l, fd, mac);
}

/* A new end or a closed one, seen even while the guest has no receive buffer posted: the
 * carrier goes off when the peer's VMM ends, not at the guest's next frame. */
static void link_watch(struct iov_net_backend *b)
{
        struct net_link *l = (struct net_link *)b;
        link_service(b);
        if (l->end_fd >= 0 && link_end_closed(l))
                link_drop_end(l);
}

static int link_transmit(struct iov_net_backend *b, const struct iovec *frame, unsigned n,
                         size_t len)
{
        struct net_link *l = (struct net_link *)b;
        /* The wire carries the frame alone: frame[0], the virtio header, stays here. */
        struct msghdr m = {.msg_iov = (struct iovec *)frame + 1, .msg_iovlen = n - 1};

        if (l->end_fd < 0) {
                LINK_COUNT(l, dropped_down, 1);
                return -ENOBUFS;
        }
        if (sendmsg(l->end_fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                if (errno == EAGAIN || errno == ENOBUFS) {
                        LINK_COUNT(l, dropped_full, 1);
                } else {
                        /* EPIPE, ECONNRESET: the peer's end is gone. */
                        LINK_COUNT(l, dropped_down, 1);
                        link_drop_end(l);
                }
                return -ENOBUFS;
        }
        LINK_COUNT(l, frames_sent, 1);
        LINK_COUNT(l, bytes_sent, len);
        return 0;
}

/* buf less its first IOV_NET_HDR_SIZE bytes (the header) into l->rx_iov. */
static unsigned link_rx_iov(struct net_link *l, const struct iovec *buf, unsigned n)
{
        return virtq_iov_skip(buf, n, IOV_NET_HDR_SIZE, l->rx_iov, ARRAY_SIZE(l->rx_iov));
}

/* One message into the buffer: 1 for a frame to keep, 0 for one dropped, -EAGAIN. */
static int link_receive_one(struct net_link *l, const struct iovec *buf, unsigned n, unsigned k,
                            size_t *ret_len)
{
        struct msghdr m = {.msg_iov = l->rx_iov, .msg_iovlen = k};
        ssize_t got = recvmsg(l->end_fd, &m, MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                return -EAGAIN;
        if (got <= 0) {
                /* An error, or 0: the end of a closed peer, or an empty message. */
                if (got < 0 || link_end_closed(l)) {
                        link_drop_end(l);
                        return -EAGAIN;
                }
                LINK_COUNT(l, dropped_invalid, 1);
                return 0;
        }
        if ((m.msg_flags & MSG_TRUNC) || (size_t)got < IOV_NET_ETH_HLEN) {
                LINK_COUNT(l, dropped_invalid, 1);
                return 0;
        }
        uint8_t source[6];
        virtio_iov_to_buf(buf, n, IOV_NET_HDR_SIZE + 6, source, sizeof(source));
        if (l->is_port && memcmp(source, l->source_mac, sizeof(source)) != 0) {
                LINK_COUNT(l, dropped_source_mac, 1);
                return 0;
        }
        LINK_COUNT(l, frames_received, 1);
        LINK_COUNT(l, bytes_received, (uint64_t)got);
        *ret_len = IOV_NET_HDR_SIZE + (size_t)got;
        return 1;
}

static int link_receive(struct iov_net_backend *b, const struct iovec *buf, unsigned n,
                        size_t *ret_len)
{
        static const struct virtio_net_hdr_v1 zero_hdr;
        struct net_link *l = (struct net_link *)b;
        unsigned k = link_rx_iov(l, buf, n);

        if (l->end_fd < 0 || k == 0)
                return -EAGAIN;
        /* A dropped frame leaves the buffer unused: the next one goes into it. */
        for (unsigned tries = 0; tries < LINK_DROP_BUDGET && l->end_fd >= 0; tries++) {
                size_t len = 0;
                int r = link_receive_one(l, buf, n, k, &len);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                virtio_iov_from_buf(buf, n, 0, &zero_hdr, IOV_NET_HDR_SIZE);
                *ret_len = len;
                return 0;
        }
        return -EAGAIN;
}

static void link_free(struct iov_net_backend *b)
{
        struct net_link *l = (struct net_link *)b;
        if (!l)
                return;
        pthread_mutex_lock(&links_lock);
        for (struct net_link **p = &links; *p; p = &(*p)->next)
                if (*p == l) {
                        *p = l->next;
                        break;
                }
        pthread_mutex_unlock(&links_lock);
        link_drop_end(l);
        if (l->pending_fd >= 0)
                close(l->pending_fd);
        if (l->wake_fd >= 0)
                close(l->wake_fd);
        if (l->epoll_fd >= 0)
                close(l->epoll_fd);
        if (l->watch_epoll_fd >= 0)
                close(l->watch_epoll_fd);
        if (l->slot_fd >= 0)
                close(l->slot_fd);
        free(l);
}

static const struct iov_net_backend_ops link_ops = {
        .transmit = link_transmit,
        .receive = link_receive,
        .service = link_service,
        .watch = link_watch,
        .free = link_free,
};

static struct net_link *link_find(const char *name)
{
        for (struct net_link *l = links; l; l = l->next)
                if (streq(l->name, name))
                        return l;
        return NULL;
}

int net_link_backend_new(const char *name, bool is_port, struct iov_net_backend **ret)
{
        struct net_link *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = (struct net_link){.base = {.ops = &link_ops, .watch_fd = -1, .vhost_backend_fd = -1},
                               .is_port = is_port,
                               .end_fd = -1,
                               .pending_fd = -1,
                               .watch_epoll_fd = -1,
                               .slot_fd = -1};
        snprintf(l->name, sizeof(l->name), "%s", name);
        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        l->watch_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->wake_fd};
        if (l->epoll_fd < 0 || l->watch_epoll_fd < 0 || l->wake_fd < 0 ||
            epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0 ||
            epoll_ctl(l->watch_epoll_fd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0) {
                int r = -errno;
                link_free(&l->base);
                return r;
        }
        l->base.poll_fd = l->epoll_fd;
        l->base.watch_fd = l->watch_epoll_fd;
        pthread_mutex_lock(&links_lock);
        int r = link_find(name) ? -EEXIST : 0;
        if (r == 0) {
                l->next = links;
                links = l;
                if (n_reserved_fds > 0)
                        l->slot_fd = reserved_fds[--n_reserved_fds];
        }
        pthread_mutex_unlock(&links_lock);
        if (r < 0) {
                link_free(&l->base);
                return r;
        }
        *ret = &l->base;
        return 0;
}

int virtio_net_link_attach(const char *name, int fd, const uint8_t *source_mac)
{
        _cleanup_close_ int end = fd;

        if (end < 0)
                return -EBADF;
        pthread_mutex_lock(&links_lock);
        struct net_link *l = link_find(name);
        int r = !l ? -ENOENT : (l->is_port != (source_mac != NULL)) ? -EINVAL : 0;
        if (r == 0) {
                if (l->pending_fd >= 0)
                        close(l->pending_fd);
                l->pending_fd = TAKE_FD(end);
                if (source_mac)
                        memcpy(l->pending_mac, source_mac, sizeof(l->pending_mac));
                __atomic_store_n(&l->end_waiting, true, __ATOMIC_RELEASE);
                (void)eventfd_write(l->wake_fd, 1);
        }
        pthread_mutex_unlock(&links_lock);
        return r;
}

static void link_json_add(struct json_object *o, const char *key, const uint64_t *v)
{
        json_object_object_add(
                o, key, json_object_new_int64((int64_t)__atomic_load_n(v, __ATOMIC_RELAXED)));
}

static struct json_object *link_to_json(const struct net_link *l)
{
        struct json_object *o = json_object_new_object();
        const struct net_link_stats *s = &l->stats;

        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "role", json_object_new_string(l->is_port ? "port" : "client"));
        json_object_object_add(
                o, "carrier",
                json_object_new_boolean(__atomic_load_n(&l->base.carrier, __ATOMIC_RELAXED)));
        link_json_add(o, "carrier_changed_usec", &l->carrier_changed_usec);
        link_json_add(o, "frames_sent", &s->frames_sent);
        link_json_add(o, "bytes_sent", &s->bytes_sent);
        link_json_add(o, "frames_received", &s->frames_received);
        link_json_add(o, "bytes_received", &s->bytes_received);
        link_json_add(o, "dropped_full", &s->dropped_full);
        link_json_add(o, "dropped_down", &s->dropped_down);
        link_json_add(o, "dropped_source_mac", &s->dropped_source_mac);
        link_json_add(o, "dropped_invalid", &s->dropped_invalid);
        return o;
}

struct json_object *virtio_net_links_json(void)
{
        struct json_object *a = json_object_new_array();

        pthread_mutex_lock(&links_lock);
        for (const struct net_link *l = links; a && l; l = l->next)
                json_object_array_add(a, link_to_json(l));
        pthread_mutex_unlock(&links_lock);
        return a;
}
