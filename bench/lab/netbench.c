/* SPDX-License-Identifier: MIT */
/*
 * netbench: raw Ethernet frames through one interface, for the lab's virtio-net benchmark
 * (no IP at all: the lab never gives its interfaces IPv4 addresses).
 *
 *   netbench send IFACE SECONDS [SIZE]   frames of SIZE bytes (default 1514: a full
 *                                        1500-byte MTU frame) as fast as the interface
 *                                        takes them, for SECONDS
 *   netbench recv IFACE WAIT_S           counts frames of our EtherType from the first one
 *                                        until none came for 1 s (or WAIT_S without any)
 *
 * Frames go from the interface's own address to the broadcast address with the IEEE 802
 * local experimental EtherType 0x88B5, so no protocol in either kernel takes them. Packet sockets
 * see every frame on the link, whatever its destination. send prints "sent_frames=N sent_mib_s=X",
 * recv prints "frames=N mib_s=X pps=Y seconds=Z"; the receiver's figure is the
 * throughput.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NETBENCH_ETHERTYPE 0x88B5

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_packet(const char *ifname, struct sockaddr_ll *ret_addr)
{
        struct sockaddr_ll addr = {
                .sll_family = AF_PACKET,
                .sll_protocol = htons(NETBENCH_ETHERTYPE),
                .sll_ifindex = (int)if_nametoindex(ifname),
        };
        if (addr.sll_ifindex == 0) {
                fprintf(stderr, "netbench: no interface %s\n", ifname);
                return -1;
        }
        int fd = socket(AF_PACKET, SOCK_RAW, htons(NETBENCH_ETHERTYPE));
        if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                fprintf(stderr, "netbench: packet socket on %s: %s\n", ifname, strerror(errno));
                return -1;
        }
        /* A deep receive buffer: the receiver shares the lab's only CPU with the sender. */
        int size = 8 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        *ret_addr = addr;
        return fd;
}

/* The interface's own address: frames go out from it, as any of its traffic would (a
 * VM-to-VM link's port drops frames from any other source). A local one if unknown. */
static void interface_mac(int fd, int ifindex, unsigned char mac[ETH_ALEN])
{
        struct ifreq ifr = {0};
        memcpy(mac, "\x02\x00\x00\x00\xbe\x01", ETH_ALEN);
        if (if_indextoname((unsigned)ifindex, ifr.ifr_name) && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
                memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
}

static int do_send(int fd, struct sockaddr_ll *addr, double seconds, size_t size)
{
        unsigned char frame[ETH_FRAME_LEN];
        if (size < ETH_ZLEN || size > sizeof(frame)) {
                fprintf(stderr, "netbench: frame size %zu not in %d..%zu\n", size, ETH_ZLEN,
                        sizeof(frame));
                return 2;
        }
        memset(frame, 0xa5, sizeof(frame));
        memset(frame, 0xff, ETH_ALEN); /* broadcast destination */
        interface_mac(fd, addr->sll_ifindex, frame + ETH_ALEN);
        frame[12] = NETBENCH_ETHERTYPE >> 8;
        frame[13] = NETBENCH_ETHERTYPE & 0xff;
        addr->sll_halen = ETH_ALEN;
        memset(addr->sll_addr, 0xff, ETH_ALEN);

        /* A full transmit queue answers ENOBUFS: that frame never left, count it apart. */
        uint64_t frames = 0, dropped = 0;
        double start = now(), elapsed = 0;
        while (elapsed < seconds) {
                if (sendto(fd, frame, size, 0, (struct sockaddr *)addr, sizeof(*addr)) >= 0)
                        frames++;
                else if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
                        dropped++;
                else {
                        fprintf(stderr, "netbench: send: %s\n", strerror(errno));
                        return 1;
                }
                elapsed = now() - start;
        }
        printf("sent_frames=%llu sent_dropped=%llu sent_mib_s=%.2f\n", (unsigned long long)frames,
               (unsigned long long)dropped, (double)frames * (double)size / elapsed / (1 << 20));
        return 0;
}

static int do_recv(int fd, double wait_s)
{
        unsigned char frame[ETH_FRAME_LEN + 64];
        uint64_t frames = 0, bytes = 0;
        double first = 0, last = 0, start = now();
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int timeout_ms = frames ? 1000 : (int)((start + wait_s - now()) * 1e3);
                if (timeout_ms <= 0 || poll(&p, 1, timeout_ms) <= 0)
                        break;
                ssize_t n = recv(fd, frame, sizeof(frame), 0);
                if (n < ETH_HLEN)
                        continue;
                last = now();
                if (frames == 0)
                        first = last;
                frames++;
                bytes += (uint64_t)n;
        }
        if (frames < 2) {
                printf("frames=%llu mib_s=0 pps=0 seconds=0\n", (unsigned long long)frames);
                return 1;
        }
        /* The first frame starts the clock: count the frames after it. */
        double span = last - first;
        printf("frames=%llu mib_s=%.2f pps=%.0f seconds=%.2f\n", (unsigned long long)frames,
               (double)(bytes - bytes / frames) / span / (1 << 20), (double)(frames - 1) / span,
               span);
        return 0;
}

int main(int argc, char **argv)
{
        struct sockaddr_ll addr;
        if (argc < 4 || (strcmp(argv[1], "send") != 0 && strcmp(argv[1], "recv") != 0)) {
                fprintf(stderr, "usage: netbench send IFACE SECONDS [SIZE] | recv IFACE WAIT_S\n");
                return 2;
        }
        int fd = open_packet(argv[2], &addr);
        if (fd < 0)
                return 1;
        if (strcmp(argv[1], "send") == 0)
                return do_send(fd, &addr, atof(argv[3]),
                               argc > 4 ? strtoul(argv[4], NULL, 0) : ETH_FRAME_LEN);
        return do_recv(fd, atof(argv[3]));
}
