/* SPDX-License-Identifier: MIT */
/*
 * netlink-bench: what a frame costs the VMMs between a client VM's virtio-net and its
 * driver VM's port over a VM-to-VM link (vmm/virtio/net-link.c), against the same client
 * device on a host TAP (vmm/virtio/net-tap.c) whose frames a packet socket reads: the
 * device layer, the backend's syscalls and copies, the peer's receive into guest memory.
 * No guest runs (the rings are driven as in tests/unit/virtio), so VM exits and guest
 * drivers are not in these figures; tests/lab scenario vm-link runs the stock drivers.
 *
 *   netlink-bench [SECONDS]   (default 3 each; the TAP half needs root for a network
 *                              namespace of its own, and is skipped without it)
 *
 * Prints "link: frames_s=N mib_s=X", "tap: frames_s=N mib_s=X" and their ratio. Frames
 * are 1514 bytes (a full 1500-byte MTU frame), sent in batches of BATCH per notify.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>

#include "fake-guest.h"

#define FRAME      1514u
#define BATCH      64u
#define QUEUE_SIZE 256
#define HDR        sizeof(struct virtio_net_hdr_v1)
#define ETHERTYPE  0x88B5 /* IEEE 802 local experimental */
#define TAP_NAME   "nlbench0"

struct side {
        struct fake_guest g;
        struct fake_ring rings[2];
        struct iov_virtio_dev *dev;
        uint64_t tx_hdr, tx_frame;
        uint64_t rx[BATCH];
};

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "netlink-bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static void side_start(struct side *s, const struct iov_virtio_net_options *o)
{
        if (fake_guest_init(&s->g) < 0)
                die("guest memory", ENOMEM);
        int r = virtio_net_new(&s->g.mem, o, &s->dev);
        if (r < 0)
                die("virtio_net_new", r);
        fake_dev_start(s->dev, &s->g, s->rings, QUEUE_SIZE);
        s->tx_hdr = fake_guest_alloc(&s->g, HDR);
        s->tx_frame = fake_guest_alloc(&s->g, FRAME);
        uint8_t *f = fake_guest_ptr(&s->g, s->tx_frame);
        memset(f, 0xff, 6);
        memcpy(f + 6, o->mac, 6);
        f[12] = ETHERTYPE >> 8;
        f[13] = ETHERTYPE & 0xff;
        for (unsigned i = 0; i < BATCH; i++) {
                s->rx[i] = fake_guest_alloc(&s->g, HDR + FRAME);
                struct fake_buf b = {s->rx[i], HDR + FRAME, true};
                fake_ring_add(&s->rings[0], &b, 1);
        }
}

static void side_stop(struct side *s)
{
        virtio_dev_free(s->dev);
        fake_guest_fini(&s->g);
}

/* BATCH frames on the transmit queue, one notify, chains reaped. */
static void side_send_batch(struct side *s)
{
        uint32_t id, len;
        for (unsigned i = 0; i < BATCH; i++) {
                struct fake_buf b[] = {{s->tx_hdr, HDR, false}, {s->tx_frame, FRAME, false}};
                fake_ring_add(&s->rings[1], b, 2);
        }
        (void)virtio_dev_notify(s->dev, 1);
        while (fake_ring_get_used(&s->rings[1], &id, &len) > 0)
                ;
}

/* What the backend holds into the receive queue; each used buffer is posted again. */
static uint64_t side_receive(struct side *s, uint64_t *bytes)
{
        uint64_t frames = 0;
        uint32_t id, len;
        for (;;) {
                (void)virtio_dev_backend_ready(s->dev);
                unsigned got = 0;
                while (fake_ring_get_used(&s->rings[0], &id, &len) > 0) {
                        struct fake_buf b = {s->rx[id % BATCH], HDR + FRAME, true};
                        *bytes += len - HDR;
                        fake_ring_add(&s->rings[0], &b, 1);
                        got++;
                }
                frames += got;
                if (got == 0)
                        return frames;
        }
}

static void report(const char *name, uint64_t frames, uint64_t bytes, double seconds,
                   double *ret_fps)
{
        *ret_fps = (double)frames / seconds;
        printf("%s: frames_s=%.0f mib_s=%.1f (%llu frames in %.2f s)\n", name, *ret_fps,
               (double)bytes / seconds / (1024 * 1024), (unsigned long long)frames, seconds);
}

static double bench_link(double seconds)
{
        struct iov_virtio_net_options client = {
                .tap_fd = -1, .has_mac = true, .mac = {0x52, 0x54, 0, 0, 0, 1}};
        struct iov_virtio_net_options port = {
                .tap_fd = -1, .has_mac = true, .mac = {0x52, 0x54, 0, 0, 0, 0x0a}};
        strcpy(client.peer_vm, "netdom");
        strcpy(client.peer_port, "bench");
        strcpy(port.port, "bench");
        struct side c, p;
        side_start(&c, &client);
        side_start(&p, &port);
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair", errno);
        if (virtio_net_link_attach("bench", sv[0], client.mac) < 0 ||
            virtio_net_link_attach("netdom/bench", sv[1], NULL) < 0)
                die("link attach", EINVAL);
        (void)virtio_dev_backend_ready(c.dev); /* both I/O threads adopt their ends */
        (void)virtio_dev_backend_ready(p.dev);
        uint64_t frames = 0, bytes = 0;
        double t0 = now(), t;
        while ((t = now()) - t0 < seconds) {
                side_send_batch(&c);
                frames += side_receive(&p, &bytes);
        }
        double fps;
        report("link", frames, bytes, t - t0, &fps);
        side_stop(&c);
        side_stop(&p);
        return fps;
}

/* TAP_NAME up in a network namespace of our own, and a packet socket reading it. */
static int tap_reader(void)
{
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP_NAME);
        int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (ctl < 0 || ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0)
                die("TAP flags", errno);
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(ctl, SIOCSIFFLAGS, &ifr) < 0 || ioctl(ctl, SIOCGIFINDEX, &ifr) < 0)
                die("TAP up", errno);
        close(ctl);
        int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETHERTYPE));
        struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                                  .sll_protocol = htons(ETHERTYPE),
                                  .sll_ifindex = ifr.ifr_ifindex};
        int size = 8 << 20;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
                die("packet socket", errno);
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
        return fd;
}

static uint64_t tap_drain(int fd, uint64_t *bytes)
{
        static uint8_t frame[FRAME + 64];
        uint64_t frames = 0;
        ssize_t n;
        while ((n = recv(fd, frame, sizeof(frame), 0)) > 0) {
                frames++;
                *bytes += (uint64_t)n;
        }
        return frames;
}

static double bench_tap(double seconds)
{
        if (unshare(CLONE_NEWNET) < 0) {
                printf("tap: skipped (no network namespace of our own: %s)\n", strerror(errno));
                return 0;
        }
        struct iov_virtio_net_options client = {
                .tap_fd = -1, .has_mac = true, .mac = {0x52, 0x54, 0, 0, 0, 1}};
        strcpy(client.tap_name, TAP_NAME);
        struct side c;
        side_start(&c, &client);
        int fd = tap_reader();
        uint64_t frames = 0, bytes = 0;
        double t0 = now(), t;
        while ((t = now()) - t0 < seconds) {
                side_send_batch(&c);
                frames += tap_drain(fd, &bytes);
        }
        double fps;
        report("tap", frames, bytes, t - t0, &fps);
        close(fd);
        side_stop(&c);
        return fps;
}

int main(int argc, char **argv)
{
        double seconds = argc > 1 ? atof(argv[1]) : 3;
        if (seconds <= 0)
                seconds = 3;
        double link = bench_link(seconds);
        double tap = bench_tap(seconds);
        if (tap > 0)
                printf("ratio link/tap: %.2f (frames per second, same frame size, same run)\n",
                       link / tap);
        return 0;
}
