/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2 §5.1) on a TAP device: receiveq0 and transmitq0, no control
 * queue, no offloads. Every frame carries the 12-byte struct virtio_net_hdr_v1 in front
 * (§5.1.6, modern header); the TAP fd is set up with the same header size so frames pass
 * in one readv/writev. The guest's transmit header is not passed on: we negotiated no
 * checksum or GSO offload, so the kernel gets a zeroed one and never parses guest values.
 *
 *   {"type": "virtio-net", "tap": "tap0", "mac": "52:54:00:12:34:56"}
 *
 * tap is required: an interface name, opened (or created) with IFF_VNET_HDR, which needs
 * CAP_NET_ADMIN; or "fd:N", a TAP iovd opened so (virtio_net_tap_open) and passed, which
 * is how iovd always hands it over (the jailed VMM has no capability and no host network).
 * Without mac the device gets a random locally administered address.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "util/util.h"

enum {
        NET_RX = 0,
        NET_TX = 1,
};

#define NET_HDR_SIZE sizeof(struct virtio_net_hdr_v1)
/* Largest frame without GSO: 64 KiB covers jumbo frames and anything TAP may hand us. */
#define NET_MAX_FRAME 65550u

_Static_assert(IOV_VIRTIO_NET_TAP_NAME_MAX == IFNAMSIZ, "a TAP name is an interface name");

struct net {
        int tap_fd;
        struct virtio_net_config config;
        struct iovec frame[IOV_VIRTQ_MAX_SEGS + 1];
};

static int net_handle_tx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        static const struct virtio_net_hdr_v1 zero_hdr;
        struct net *n = dev->priv;
        size_t skip = NET_HDR_SIZE;
        unsigned k = 0;

        (void)q;
        *ret_written = 0;
        /* A transmit chain is device-readable only and holds a header and a frame. */
        if (req->n_in > 0 || req->out_len <= NET_HDR_SIZE ||
            req->out_len - NET_HDR_SIZE > NET_MAX_FRAME) {
                dev->stats.requests_failed++;
                return 0;
        }
        n->frame[k++] = (struct iovec){(void *)&zero_hdr, NET_HDR_SIZE};
        for (unsigned i = 0; i < req->n_out; i++) {
                struct iovec v = req->out[i];
                if (skip >= v.iov_len) {
                        skip -= v.iov_len;
                        continue;
                }
                v.iov_base = (uint8_t *)v.iov_base + skip;
                v.iov_len -= skip;
                skip = 0;
                n->frame[k++] = v;
        }
        /* TAP takes a frame whole or not at all; a full queue drops it like a wire. */
        if (writev(n->tap_fd, n->frame, (int)k) < 0) {
                dev->stats.requests_failed++;
                return 0;
        }
        dev->stats.requests_written++;
        dev->stats.bytes_written += req->out_len - NET_HDR_SIZE;
        return 0;
}

static int net_handle_rx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        struct net *n = dev->priv;
        /* §5.1.6.3.2: without MRG_RXBUF each frame takes one buffer, num_buffers is 1. */
        uint16_t num_buffers = 1;

        (void)q;
        *ret_written = 0;
        if (req->n_out > 0 || req->in_len < NET_HDR_SIZE) {
                /* A receive buffer with nothing or too little to write into: fail it. */
                dev->stats.requests_failed++;
                return 0;
        }
        ssize_t got = readv(n->tap_fd, req->in, (int)req->n_in);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                return -EAGAIN;
        if (got < (ssize_t)NET_HDR_SIZE) {
                dev->stats.requests_failed++;
                return got < 0 ? -EAGAIN : 0;
        }
        virtio_iov_from_buf(req->in, req->n_in, offsetof(struct virtio_net_hdr_v1, num_buffers),
                            &num_buffers, sizeof(num_buffers));
        dev->stats.requests_read++;
        dev->stats.bytes_read += (uint64_t)got - NET_HDR_SIZE;
        *ret_written = (uint32_t)got;
        return 0;
}

static int net_queue_notify(struct iov_virtio_dev *dev, unsigned q)
{
        return virtio_dev_process_queue(dev, q, q == NET_TX ? net_handle_tx : net_handle_rx);
}

static int net_backend_ready(struct iov_virtio_dev *dev)
{
        if (!virtio_dev_queue_ready(dev, NET_RX))
                return 0;
        return virtio_dev_process_queue(dev, NET_RX, net_handle_rx);
}

static void net_destroy(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        if (!n)
                return;
        if (n->tap_fd >= 0)
                close(n->tap_fd);
}

/* "52:54:00:12:34:56": six two-digit hex octets, a unicast address. */
int virtio_parse_mac(const char *s, uint8_t ret[6])
{
        uint8_t mac[6];

        if (strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++) {
                char octet[3] = {s[3 * i], s[3 * i + 1], 0};
                uint64_t v;
                if ((i < 5 && s[3 * i + 2] != ':') || util_parse_u64(octet, 16, &v) < 0)
                        return -EINVAL;
                mac[i] = (uint8_t)v;
        }
        if (mac[0] & 1)
                return -EINVAL; /* a group address cannot be a NIC's own (IEEE 802 §8.2) */
        memcpy(ret, mac, sizeof(mac));
        return 0;
}

static bool net_tap_name_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n >= IFNAMSIZ)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                            s[i]))
                        return false;
        return true;
}

static int net_parse_field(void *options, const char *key, struct json_object *value,
                           char **ret_error)
{
        struct iov_virtio_net_options *o = options;

        if (!streq(key, "tap") && !streq(key, "mac"))
                return -ENOENT;
        if (!json_object_is_type(value, json_type_string))
                return virtio_spec_error(ret_error, "\"%s\" must be a string", key);
        const char *s = json_object_get_string(value);
        if (streq(key, "tap")) {
                /* An interface name never holds ':' (dev_valid_name), so "fd:N" is not one. */
                bool fd_name = strncmp(s, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0 &&
                               strlen(s) < sizeof(o->tap_name);
                if (!fd_name && !net_tap_name_valid(s))
                        return virtio_spec_error(ret_error,
                                                 "tap \"%.64s\" is not an interface name", s);
                snprintf(o->tap_name, sizeof(o->tap_name), "%s", s);
                return 0;
        }
        if (virtio_parse_mac(s, o->mac) < 0)
                return virtio_spec_error(ret_error,
                                         "mac \"%.64s\" is not a unicast xx:xx:xx:xx:xx:xx", s);
        o->has_mac = true;
        return 0;
}

static int net_parse_done(void *options, char **ret_error)
{
        struct iov_virtio_net_options *o = options;

        if (!o->tap_name[0])
                return virtio_spec_error(ret_error, "%s needs \"tap\"", "virtio-net");
        o->tap_fd = -1;
        return 0;
}

static int net_create(const void *options, const struct iov_virtio_host *host,
                      struct iov_virtio_dev **ret)
{
        struct iov_virtio_net_options o = *(const struct iov_virtio_net_options *)options;

        if (!o.has_mac) {
                if (getrandom(o.mac, sizeof(o.mac), 0) != (ssize_t)sizeof(o.mac))
                        return -EIO;
                /* locally administered, unicast (IEEE 802 §8.2) */
                o.mac[0] = (uint8_t)((o.mac[0] & 0xfc) | 0x02);
        }
        return virtio_net_new(host->mem, &o, ret);
}

/* iovd opens the TAP named by "tap" for iovd-vmm and passes it (virtio.h, host_files). */
static const struct iov_virtio_host_file net_host_files[] = {{"tap", IOV_VIRTIO_HOST_TAP},
                                                             {NULL, 0}};

static const struct iov_virtio_dev_ops net_ops = {
        .name = "virtio-net",
        .device_id = VIRTIO_ID_NET,
        .features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS),
        .num_queues = 2,
        .queue_max_size = 256,
        .config_size = sizeof(struct virtio_net_config),
        .config_read = virtio_dev_read_config,
        .queue_notify = net_queue_notify,
        .backend_ready = net_backend_ready,
        .destroy = net_destroy,
        .options_size = sizeof(struct iov_virtio_net_options),
        .parse_field = net_parse_field,
        .parse_done = net_parse_done,
        .host_files = net_host_files,
        .create = net_create,
};

IOV_VIRTIO_DEVICE(net_ops)

/* Open (or create) TAP interface `name` with the modern virtio-net header in front of
 * every frame (Documentation/networking/tuntap.rst). */
int virtio_net_tap_open(const char *name, int *ret_fd)
{
        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
        int hdr_size = NET_HDR_SIZE;

        if (fd < 0)
                return -errno;
        if (strlen(name) >= sizeof(ifr.ifr_name))
                return -ENAMETOOLONG;
        strncpy(ifr.ifr_name, name, sizeof(ifr.ifr_name) - 1);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return -errno;
        if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
                return -errno;
        /* No offloads: frames arrive whole and checksummed (we negotiate none). */
        if (ioctl(fd, TUNSETOFFLOAD, 0) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int virtio_net_new(const struct iov_virtio_mem *mem, const struct iov_virtio_net_options *opts,
                   struct iov_virtio_dev **ret)
{
        _cleanup_close_ int fd = -1;
        struct iov_virtio_dev *dev;
        int r;

        if (strncmp(opts->tap_name, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0) {
                r = util_open_inherited(opts->tap_name, 0, &fd);
                int flags = r >= 0 ? fcntl(fd, F_GETFL) : -1;
                if (r >= 0 && (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
                        r = -errno;
                if (r < 0)
                        return r;
        } else if (opts->tap_name[0]) {
                r = virtio_net_tap_open(opts->tap_name, &fd);
                if (r < 0)
                        return r;
        } else {
                if (opts->tap_fd < 0)
                        return -EBADF;
                fd = opts->tap_fd;
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
        }
        struct net *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        memcpy(n->config.mac, opts->mac, sizeof(n->config.mac));
        n->config.status = VIRTIO_NET_S_LINK_UP;
        n->config.max_virtqueue_pairs = 1;
        r = virtio_dev_new(&net_ops, 0, mem, &dev);
        if (r < 0) {
                free(n);
                return r;
        }
        n->tap_fd = TAKE_FD(fd);
        dev->priv = n;
        dev->config = &n->config;
        dev->backend_fd = n->tap_fd;
        *ret = dev;
        return 0;
}
