/* SPDX-License-Identifier: MIT */
/*
 * virtio-net on a real TAP, in a network namespace of the test's own: the offloads the
 * device offers and sets on the TAP (only what the guest acked, off again at reset), the
 * guest's transmit header passed through unchanged, and mergeable receive buffers (one
 * frame over several chains, num_buffers, a frame waiting for more buffers). Frames are
 * put on and taken off the TAP's host side with packet sockets. A two-queue TAP follows
 * the pairs the driver uses (queues detached and attached again). Needs root and
 * /dev/net/tun; skips without them.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "fake-guest.h"

#define HDR     sizeof(struct virtio_net_hdr_v1)
#define TAP     "iovtap0"
#define QUEUE   16
#define BIG_MTU 9000

/* What a TAP device offers besides MAC and STATUS (virtio 1.2 §5.1.3). */
#define NET_OFFLOADS                                                                               \
        ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |                         \
         (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |                     \
         (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |                   \
         (1ull << VIRTIO_NET_F_MRG_RXBUF))

static struct fake_guest guest;
static struct fake_ring rings[2];
static struct iov_virtio_dev *dev;
static int ctl = -1;

static void tap_ifreq(unsigned long request, struct ifreq *ifr)
{
        snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", TAP);
        cr_assert_eq(ioctl(ctl, request, ifr), 0, "ioctl 0x%lx on %s: %m", request, TAP);
}

/* A TAP of our own, up, with room for jumbo frames, no IPv6 chatter; the device on it. */
static void tap_start(uint64_t guest_features)
{
        int fd = -1;

        if (geteuid() != 0)
                cr_skip_test("needs root for a network namespace and a TAP device");
        if (access("/dev/net/tun", R_OK | W_OK) < 0)
                cr_skip_test("/dev/net/tun is not usable (%s)", strerror(errno));
        cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %m");
        int r = virtio_net_tap_open(TAP, &fd);
        cr_assert_eq(r, 0, "virtio_net_tap_open: %s", strerror(-r));
        ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(ctl, 0, "socket: %m");
        int sysctl = open("/proc/sys/net/ipv6/conf/" TAP "/disable_ipv6", O_WRONLY);
        if (sysctl >= 0) {
                (void)!write(sysctl, "1", 1);
                close(sysctl);
        }
        struct ifreq ifr = {.ifr_mtu = BIG_MTU};
        tap_ifreq(SIOCSIFMTU, &ifr);
        ifr = (struct ifreq){.ifr_flags = IFF_UP};
        tap_ifreq(SIOCSIFFLAGS, &ifr);

        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        struct iov_virtio_net_options opts = {
                .tap_fd = fd, .mac = {2, 0, 0, 0, 0, 9}, .vhost = IOV_VIRTIO_NET_VHOST_OFF};
        r = virtio_net_new(&guest.mem, &opts, &dev);
        cr_assert_eq(r, 0, "virtio_net_new returned %d", r);
        cr_assert_eq(dev->host_features & NET_OFFLOADS, NET_OFFLOADS, "a TAP device offers 0x%llx",
                     (unsigned long long)dev->host_features);
        /* fake_dev_start acks everything offered: narrow it to what this test's guest takes. */
        dev->host_features &= ~(NET_OFFLOADS & ~guest_features);
        uint8_t status = fake_dev_start(dev, &guest, rings, QUEUE);
        cr_assert(status & VIRTIO_CONFIG_S_DRIVER_OK, "device status 0x%x", status);
}

static void teardown(void)
{
        virtio_dev_free(dev);
        dev = NULL;
        if (ctl >= 0)
                close(ctl);
        if (guest.ram)
                fake_guest_fini(&guest);
}

TestSuite(virtio_net_tap, .fini = teardown);

/* Is NETIF_F_TSO on the TAP: may it hand us TCP/IPv4 superframes (ETHTOOL_GTSO)? */
static bool tap_tso_on(void)
{
        struct ethtool_value v = {.cmd = ETHTOOL_GTSO};
        struct ifreq ifr = {.ifr_data = (void *)&v};
        tap_ifreq(SIOCETHTOOL, &ifr);
        return v.data != 0;
}

static int packet_socket(bool vnet_hdr)
{
        int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
        cr_assert_geq(s, 0, "packet socket: %m");
        int on = 1;
        if (vnet_hdr)
                cr_assert_eq(setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on)), 0,
                             "PACKET_VNET_HDR: %m");
        struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                                  .sll_protocol = htons(ETH_P_ALL),
                                  .sll_ifindex = (int)if_nametoindex(TAP)};
        cr_assert_eq(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0, "bind to %s: %m", TAP);
        return s;
}

/* A frame of len bytes towards the guest: the TAP's host side transmits it. */
static void tap_inject(size_t len, uint8_t fill)
{
        uint8_t frame[BIG_MTU + ETH_HLEN];
        int s = packet_socket(false);

        cr_assert_leq(len, sizeof(frame), "frame of %zu bytes", len);
        memset(frame, fill, len);
        memcpy(frame, (uint8_t[]){2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 1, 0x88, 0xb5}, ETH_HLEN);
        cr_assert_eq(send(s, frame, len, 0), (ssize_t)len, "send %zu bytes on %s: %m", len, TAP);
        close(s);
}

Test(virtio_net_tap, offers_offloads_and_sets_what_guest_acked)
{
        tap_start(NET_OFFLOADS);
        uint64_t want = (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_TSO4) |
                        (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_HOST_TSO6);
        cr_assert_eq(dev->guest_features & want, want, "features 0x%llx lack 0x%llx",
                     (unsigned long long)dev->guest_features, (unsigned long long)want);
        cr_assert(tap_tso_on(), "GUEST_TSO4 acked but the TAP's TSO is off");
        virtio_dev_set_status(dev, 0);
        cr_assert_not(tap_tso_on(), "the TAP's TSO still on after a device reset");
}

Test(virtio_net_tap, no_tap_offload_for_a_guest_without_them)
{
        tap_start(0);
        cr_assert_not(virtio_dev_has_feature(dev, VIRTIO_NET_F_GUEST_TSO4),
                      "GUEST_TSO4 negotiated although the guest did not take it");
        cr_assert_not(tap_tso_on(), "the TAP's TSO is on for a guest without GUEST_TSO4");
}

/* IPv6/UDP frame whose checksum the guest leaves to the host (§5.1.6.2 NEEDS_CSUM). */
Test(virtio_net_tap, tx_header_passes_through_with_csum)
{
        tap_start(NET_OFFLOADS);
        int s = packet_socket(true);
        const size_t len = ETH_HLEN + 40 + 8 + 32;
        uint64_t h = fake_guest_alloc(&guest, HDR), f = fake_guest_alloc(&guest, (uint32_t)len);
        struct virtio_net_hdr_v1 *hdr = fake_guest_ptr(&guest, h);
        *hdr = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                          .csum_start = ETH_HLEN + 40,
                                          .csum_offset = 6};
        uint8_t *frame = fake_guest_ptr(&guest, f);
        memset(frame, 0, len);
        memcpy(frame, (uint8_t[]){2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9, 0x86, 0xdd}, ETH_HLEN);
        frame[ETH_HLEN] = 0x60;     /* IPv6 */
        frame[ETH_HLEN + 5] = 40;   /* payload length: UDP header + 32 */
        frame[ETH_HLEN + 6] = 17;   /* next header: UDP */
        frame[ETH_HLEN + 7] = 64;   /* hop limit */
        frame[ETH_HLEN + 8] = 0xfe; /* fe80::1 -> fe80::2 */
        frame[ETH_HLEN + 9] = 0x80;
        frame[ETH_HLEN + 23] = 1;
        frame[ETH_HLEN + 24] = 0xfe;
        frame[ETH_HLEN + 25] = 0x80;
        frame[ETH_HLEN + 39] = 2;
        frame[ETH_HLEN + 40 + 5] = 40; /* UDP length */
        struct fake_buf bufs[] = {{h, HDR, false}, {f, (uint32_t)len, false}};
        fake_ring_add(&rings[1], bufs, 2);
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");

        uint8_t got[sizeof(struct virtio_net_hdr) + 256];
        ssize_t n = recv(s, got, sizeof(got), 0);
        cr_assert_eq(n, (ssize_t)(sizeof(struct virtio_net_hdr) + len), "host got %zd bytes: %m",
                     n);
        struct virtio_net_hdr seen;
        memcpy(&seen, got, sizeof(seen));
        cr_assert_eq(seen.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM, "flags 0x%x on the host side",
                     seen.flags);
        cr_assert_eq(seen.csum_start, ETH_HLEN + 40, "csum_start %u", seen.csum_start);
        cr_assert_eq(seen.csum_offset, 6, "csum_offset %u", seen.csum_offset);
        cr_assert_eq(dev->stats.requests_failed, 0, "requests_failed %lu",
                     (unsigned long)dev->stats.requests_failed);
        close(s);
}

static struct virtio_net_hdr_v1 *rx_post(uint32_t size, uint64_t *ret_gpa)
{
        uint64_t b = fake_guest_alloc(&guest, size);
        struct fake_buf buf = {b, size, true};
        memset(fake_guest_ptr(&guest, b), 0xee, size);
        fake_ring_add(&rings[0], &buf, 1);
        if (ret_gpa)
                *ret_gpa = b;
        return fake_guest_ptr(&guest, b);
}

Test(virtio_net_tap, mergeable_frame_spreads_over_chains)
{
        tap_start(NET_OFFLOADS);
        uint64_t second;
        struct virtio_net_hdr_v1 *first = rx_post(1526, NULL);
        (void)rx_post(1526, &second);
        (void)rx_post(1526, NULL);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        tap_inject(3000, 0x77);
        cr_assert_geq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");

        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "frame not delivered");
        cr_assert_eq(len, 1526, "first chain holds %u bytes, expected 1526", len);
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "second chain not used");
        cr_assert_eq(len, HDR + 3000 - 1526, "second chain holds %u bytes", len);
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0, "a third chain was used");
        cr_assert_eq(first->num_buffers, 2, "num_buffers %u, expected 2", first->num_buffers);
        uint8_t *tail = fake_guest_ptr(&guest, second);
        cr_assert_eq(tail[0], 0x77, "second chain starts with 0x%02x", tail[0]);
        cr_assert_eq(dev->stats.bytes_read, 3000, "rx bytes %lu",
                     (unsigned long)dev->stats.bytes_read);
}

Test(virtio_net_tap, mergeable_frame_waits_for_enough_buffers)
{
        tap_start(NET_OFFLOADS);
        struct virtio_net_hdr_v1 *first = rx_post(1526, NULL);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        tap_inject(3000, 0x55);
        cr_assert_geq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0,
                     "part of a frame published (%u bytes)", len);
        cr_assert(dev->ops->backend_blocked(dev, 0),
                  "the TAP is still polled with a frame waiting");

        (void)rx_post(1526, NULL);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "waiting frame not delivered");
        cr_assert_eq(first->num_buffers, 2, "num_buffers %u, expected 2", first->num_buffers);
        cr_assert_not(dev->ops->backend_blocked(dev, 0), "backend still blocked after delivery");
}

Test(virtio_net_tap, without_mergeable_a_frame_takes_one_chain)
{
        tap_start(0);
        struct virtio_net_hdr_v1 *h = rx_post(4096, NULL);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        tap_inject(3000, 0x33);
        cr_assert_geq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "frame not delivered");
        cr_assert_eq(len, HDR + 3000, "used len %u", len);
        cr_assert_eq(h->num_buffers, 1, "num_buffers %u, expected 1", h->num_buffers);
        cr_assert_eq(h->flags, 0, "flags 0x%x for a guest without offloads", h->flags);
}

/* Transmit queues of TAP in /sys/class/net/TAP/queues: the queues attached. A sysfs of
 * this test's network namespace, mounted in a child's mount namespace (the one at /sys
 * shows its mounter's network namespace). */
static unsigned tap_tx_queues(const char *tap)
{
        pid_t pid = fork();
        int status = 0;

        cr_assert_geq(pid, 0, "fork: %m");
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
                    mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
                        _exit(255);
                char path[64];
                snprintf(path, sizeof(path), "/sys/class/net/%s/queues", tap);
                DIR *d = opendir(path);
                unsigned n = 0;
                for (struct dirent *e; d && (e = readdir(d));)
                        n += strncmp(e->d_name, "tx-", 3) == 0;
                _exit((int)n);
        }
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255,
                  "no sysfs of the test's network namespace (status 0x%x)", status);
        return (unsigned)WEXITSTATUS(status);
}

static struct fake_ring mq_rings[5];

/* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET on the control queue (queue 4 with two pairs). */
static uint8_t mq_pairs_set(uint16_t pairs)
{
        uint64_t h = fake_guest_alloc(&guest, 2), d = fake_guest_alloc(&guest, 2),
                 a = fake_guest_alloc(&guest, 1);
        uint8_t *hdr = fake_guest_ptr(&guest, h), *ack = fake_guest_ptr(&guest, a);

        hdr[0] = VIRTIO_NET_CTRL_MQ;
        hdr[1] = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
        memcpy(fake_guest_ptr(&guest, d), &pairs, sizeof(pairs));
        struct fake_buf bufs[] = {{h, 2, false}, {d, 2, false}, {a, 1, true}};
        fake_ring_add(&mq_rings[4], bufs, 3);
        cr_assert_eq(virtio_dev_notify(dev, 4), 0, "control queue notify failed");
        return *ack;
}

/* A two-queue TAP: both queues attached until the driver runs, the second detached while
 * the driver uses one pair, attached again when it sets two and after a reset. */
Test(virtio_net_tap, multiqueue_tap_follows_the_pairs_in_use)
{
        int fds[2];
        char names[2][IOV_VIRTIO_NET_TAP_NAME_MAX];

        if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) < 0)
                cr_skip_test("needs root and a usable /dev/net/tun");
        cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %m");
        int r = virtio_net_tap_open_queues("iovmq0", 2, fds);
        cr_assert_eq(r, 0, "virtio_net_tap_open_queues: %s", strerror(-r));
        cr_assert_eq(tap_tx_queues("iovmq0"), 2, "a two-queue TAP without two queues");
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        struct iov_virtio_net_options opts = {
                .queues = 2, .mac = {2, 0, 0, 0, 0, 9}, .vhost = IOV_VIRTIO_NET_VHOST_OFF};
        for (int i = 0; i < 2; i++) {
                snprintf(names[i], sizeof(names[i]), "fd:%d", fds[i]);
                memcpy(opts.tap_queue_fds[i], names[i], sizeof(names[i]));
        }
        memcpy(opts.tap_name, names[0], sizeof(names[0]));
        r = virtio_net_new(&guest.mem, &opts, &dev);
        close(fds[0]); /* the device holds copies */
        close(fds[1]);
        cr_assert_eq(r, 0, "virtio_net_new returned %d", r);
        fake_dev_start(dev, &guest, mq_rings, QUEUE);
        cr_assert_eq(tap_tx_queues("iovmq0"), 1, "pair 2 unused but its TAP queue attached");
        cr_assert_eq(mq_pairs_set(2), VIRTIO_NET_OK, "VQ_PAIRS_SET 2 refused");
        cr_assert_eq(tap_tx_queues("iovmq0"), 2, "pair 2 in use but its TAP queue detached");
        cr_assert_eq(mq_pairs_set(1), VIRTIO_NET_OK, "VQ_PAIRS_SET 1 refused");
        cr_assert_eq(tap_tx_queues("iovmq0"), 1, "back to one pair, two TAP queues attached");
        virtio_dev_set_status(dev, 0);
        cr_assert_eq(tap_tx_queues("iovmq0"), 2, "after a reset the TAP has %u queue(s)",
                     tap_tx_queues("iovmq0"));
}
