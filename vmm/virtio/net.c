/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2 §5.1): receiveq0 and transmitq0, no control queue. Every frame
 * carries the 12-byte struct virtio_net_hdr_v1 in front (§5.1.6, modern header). Frames
 * go to one backend (net-backend.h): a host TAP (net-tap.c) or a VM-to-VM link
 * (net-link.c).
 *
 * Offloads come from the backend (its features): a TAP carries checksum and TSO both ways
 * and mergeable receive buffers, a link none of them (the plain path). With an offload
 * acked (§5.1.3: CSUM, HOST_TSO4/6 for transmit), the guest's transmit header is copied
 * out once and passed on to the backend, which checks it; without, the backend gets a
 * zeroed one and never sees guest values. Receive headers come from the backend, which
 * hands over only what the guest acked (GUEST_CSUM, GUEST_TSO4/6; set at DRIVER_OK).
 * With MRG_RXBUF (§5.1.6.4.2) a frame is read whole into the device's buffer and spread
 * over as many receive chains as it needs, num_buffers saying how many; without, each
 * frame takes one chain. On a TAP the kernel's vhost-net may serve both queues instead
 * ("vhost": true, false, "auto" by default): the device opens it here and the transport
 * hands it the rings at DRIVER_OK (vhost.c); the frame code below then stays idle.
 *
 *   {"type": "virtio-net", "tap": "tap0", "mac": "52:54:00:12:34:56"}
 *   {"type": "virtio-net", "port": "client-a", "mac": "52:54:00:00:00:0a"}
 *   {"type": "virtio-net", "mac": "52:54:00:00:00:01",
 *    "peer": {"vm": "netdom", "port": "client-a"}}
 *
 * Exactly one of tap (an interface name, opened or created with IFF_VNET_HDR, which
 * needs CAP_NET_ADMIN), port (this VM serves a client on a link: its name, unique in the
 * VM) or peer (this VM is a client of port `port` of VM `vm`; mac required, the port
 * accepts no other source). Without mac the device gets a random locally administered
 * address. Carrier (VIRTIO_NET_S_LINK_UP, §5.1.4) follows the backend: always on for a
 * TAP, on while a link holds a live end; each change raises a config interrupt.
 * A tap may also be "fd:N", a TAP iovd opened (virtio_net_tap_open) and passed, which is
 * how iovd always hands it over (the jailed VMM has no capability and no host network).
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
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>

#include "util/util.h"
#include "vmm/virtio/net-backend.h"

enum {
        NET_RX = 0,
        NET_TX = 1,
};

_Static_assert(IOV_VIRTIO_NET_TAP_NAME_MAX == IFNAMSIZ, "a TAP name is an interface name");

/* Guest features that make the transmit header meaningful to the backend (§5.1.6.2). */
#define NET_TX_OFFLOADS                                                                            \
        ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |                          \
         (1ull << VIRTIO_NET_F_HOST_TSO6))

#define NET_RX_BUF_SIZE (IOV_NET_HDR_SIZE + IOV_NET_MAX_FRAME)

struct net {
        struct iov_net_backend *backend;
        struct virtio_net_config config;
        struct iovec frame[IOV_VIRTQ_MAX_SEGS + 1];
        struct virtio_net_hdr_v1 tx_hdr;
        /* MRG_RXBUF: the frame read from the backend (rx_len bytes, header included; 0:
         * none) waiting for enough receive chains, and the chains it is spread over. */
        uint8_t *rx_buf;
        size_t rx_len;
        uint16_t rx_wait_idx; /* avail index when the ring held too little for it */
        uint16_t rx_heads[IOV_VIRTQ_MAX_SIZE];
        uint32_t rx_lens[IOV_VIRTQ_MAX_SIZE];
};

/* §5.1.4: status follows the backend's carrier; with VIRTIO_NET_F_STATUS negotiated and
 * the driver running, a change raises a configuration change interrupt (§4.1.4.5). */
static void net_sync_carrier(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        uint16_t status = n->backend->carrier ? VIRTIO_NET_S_LINK_UP : 0;

        if (n->config.status == status)
                return;
        n->config.status = status;
        dev->config_generation++;
        if ((dev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
            virtio_dev_has_feature(dev, VIRTIO_NET_F_STATUS) && dev->transport.signal_config)
                dev->transport.signal_config(dev);
}

static int net_handle_tx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        struct net *n = dev->priv;
        size_t skip = IOV_NET_HDR_SIZE;
        unsigned k = 0;

        (void)q;
        *ret_written = 0;
        /* A transmit chain is device-readable only and holds a header and a frame. */
        if (req->n_in > 0 || req->out_len <= IOV_NET_HDR_SIZE ||
            req->out_len - IOV_NET_HDR_SIZE > IOV_NET_MAX_FRAME) {
                dev->stats.requests_failed++;
                return 0;
        }
        /* Copied once: the guest may rewrite its header while the backend reads ours. */
        n->tx_hdr = (struct virtio_net_hdr_v1){0};
        if (dev->guest_features & NET_TX_OFFLOADS)
                virtio_iov_to_buf(req->out, req->n_out, 0, &n->tx_hdr, IOV_NET_HDR_SIZE);
        n->tx_hdr.num_buffers = 0; /* §5.1.6.2: unused on transmit */
        n->frame[k++] = (struct iovec){&n->tx_hdr, IOV_NET_HDR_SIZE};
        k += virtq_iov_skip(req->out, req->n_out, skip, n->frame + k, ARRAY_SIZE(n->frame) - k);
        /* A backend that cannot take the frame now drops it, like a wire. */
        if (n->backend->ops->transmit(n->backend, n->frame, k, req->out_len - IOV_NET_HDR_SIZE) <
            0) {
                dev->stats.requests_failed++;
                return 0;
        }
        dev->stats.requests_written++;
        dev->stats.bytes_written += req->out_len - IOV_NET_HDR_SIZE;
        return 0;
}

static int net_handle_rx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        struct net *n = dev->priv;
        /* §5.1.6.3.2: without MRG_RXBUF each frame takes one buffer, num_buffers is 1. */
        uint16_t num_buffers = 1;
        size_t got = 0;

        (void)q;
        *ret_written = 0;
        if (req->n_out > 0 || req->in_len < IOV_NET_HDR_SIZE) {
                /* A receive buffer with nothing or too little to write into: fail it. */
                dev->stats.requests_failed++;
                return 0;
        }
        int r = n->backend->ops->receive(n->backend, req->in, req->n_in, &got);
        if (r == -EAGAIN)
                return -EAGAIN;
        if (r < 0 || got < IOV_NET_HDR_SIZE) {
                dev->stats.requests_failed++;
                return r < 0 ? -EAGAIN : 0;
        }
        virtio_iov_from_buf(req->in, req->n_in, offsetof(struct virtio_net_hdr_v1, num_buffers),
                            &num_buffers, sizeof(num_buffers));
        dev->stats.requests_read++;
        dev->stats.bytes_read += got - IOV_NET_HDR_SIZE;
        *ret_written = (uint32_t)got;
        return 0;
}

/* ---- mergeable receive buffers (§5.1.6.4.2) ---- */

/* The next frame into n->rx_buf unless one is waiting there. -EAGAIN: none. */
static int net_rx_fetch(struct iov_virtio_dev *dev, struct net *n)
{
        struct iovec iov = {n->rx_buf, NET_RX_BUF_SIZE};
        size_t got = 0;

        while (n->rx_len == 0) {
                int r = n->backend->ops->receive(n->backend, &iov, 1, &got);
                if (r < 0)
                        return -EAGAIN; /* nothing, or a backend error: retried on the next wake-up
                                         */
                if (got >= IOV_NET_HDR_SIZE)
                        n->rx_len = got;
                else
                        dev->stats.requests_failed++; /* a frame without its header */
        }
        return 0;
}

/* Give back the chains popped for a frame that did not fit (they stay the driver's). */
static int net_rx_unpop(struct iov_virtq *vq, unsigned chains)
{
        while (chains-- > 0)
                virtq_unpop(vq);
        return -EAGAIN;
}

/* Copy the waiting frame into as many chains as it needs; *ret_chains of them, in order,
 * in n->rx_heads/rx_lens. -EAGAIN when the ring holds too little (nothing consumed),
 * -EBADMSG for a chain the driver must not post (§5.1.6.3.1: writable only, each at
 * least a header long). */
static int net_rx_spread(struct iov_virtio_dev *dev, struct net *n, unsigned *ret_chains)
{
        struct iov_virtq *vq = &dev->queues[NET_RX];
        struct iov_virtq_req *req = dev->req;
        struct iovec nb[2];
        unsigned chains = 0, n_nb = 0;
        size_t off = 0;

        while (off < n->rx_len) {
                int r = virtq_pop(vq, req);
                if (r < 0)
                        return r;
                if (r == 0) {
                        n->rx_wait_idx = vq->last_avail;
                        return net_rx_unpop(vq, chains);
                }
                if (req->n_out > 0 || req->in_len < IOV_NET_HDR_SIZE || chains >= vq->size)
                        return -EBADMSG;
                if (chains == 0)
                        n_nb = virtq_iov_skip(req->in, req->n_in,
                                              offsetof(struct virtio_net_hdr_v1, num_buffers), nb,
                                              ARRAY_SIZE(nb));
                size_t put = virtio_iov_from_buf(req->in, req->n_in, 0, n->rx_buf + off,
                                                 n->rx_len - off);
                n->rx_heads[chains] = req->head;
                n->rx_lens[chains++] = (uint32_t)put;
                off += put;
        }
        uint16_t num_buffers = (uint16_t)chains;
        virtio_iov_from_buf(nb, n_nb, 0, &num_buffers, sizeof(num_buffers));
        *ret_chains = chains;
        return 0;
}

/* One waiting frame into the used ring (published by the caller). */
static int net_rx_deliver(struct iov_virtio_dev *dev, struct net *n)
{
        unsigned chains = 0;

        int r = net_rx_spread(dev, n, &chains);
        for (unsigned i = 0; r == 0 && i < chains; i++)
                r = virtq_fill(&dev->queues[NET_RX], n->rx_heads[i], n->rx_lens[i]);
        if (r < 0)
                return r;
        dev->stats.requests_read++;
        dev->stats.bytes_read += n->rx_len - IOV_NET_HDR_SIZE;
        n->rx_len = 0;
        return 0;
}

/* Frames until the backend or the ring runs dry, at most a queue's worth per call (1:
 * call again), then one used->idx store and at most one interrupt (§2.7.7.2). */
static int net_rx_mergeable(struct iov_virtio_dev *dev)
{
        struct iov_virtq *vq = &dev->queues[NET_RX];
        struct net *n = dev->priv;
        unsigned frames = 0;
        int r = 0;

        virtq_disable_notify(vq);
        while (frames < vq->size) {
                r = net_rx_fetch(dev, n);
                if (r == 0)
                        r = net_rx_deliver(dev, n);
                if (r == -EAGAIN && n->rx_len > 0 &&
                    virtq_enable_notify_beyond(vq, n->rx_wait_idx)) {
                        virtq_disable_notify(vq); /* buffers arrived meanwhile */
                        continue;
                }
                if (r < 0)
                        break;
                frames++;
        }
        if (r == -EAGAIN && n->rx_len == 0)
                (void)virtq_enable_notify(vq);
        /* -EAGAIN: wait for a frame or for buffers; 0: budget spent, call again. */
        r = r == -EAGAIN ? 0 : r == 0 ? 1 : r;
        if (frames > 0) {
                virtq_flush(vq);
                virtio_dev_signal_used(dev, NET_RX);
        }
        return r;
}

static int net_rx_serve(struct iov_virtio_dev *dev)
{
        if (virtio_dev_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF))
                return net_rx_mergeable(dev);
        return virtio_dev_process_queue(dev, NET_RX, net_handle_rx);
}

static int net_queue_notify(struct iov_virtio_dev *dev, unsigned q)
{
        int r = q == NET_TX ? virtio_dev_process_queue(dev, q, net_handle_tx) : net_rx_serve(dev);
        net_sync_carrier(dev);
        return r;
}

static int net_backend_ready(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        int r = 0;

        if (n->backend->ops->service)
                n->backend->ops->service(n->backend);
        if (virtio_dev_queue_ready(dev, NET_RX))
                r = net_rx_serve(dev);
        net_sync_carrier(dev);
        return r;
}

static void net_backend_watch(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;

        if (n->backend->ops->watch)
                n->backend->ops->watch(n->backend);
        net_sync_carrier(dev);
}

/* A frame waits for more receive chains than the ring holds: reading on would only take
 * more frames off the backend, so its fd rests until the driver adds buffers. */
static bool net_backend_blocked(struct iov_virtio_dev *dev)
{
        const struct net *n = dev->priv;
        return n->rx_len > 0;
}

/* Features are final: the backend hands over only the offloads the guest acked. */
static int net_activate(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;

        if (!n->backend->features || !n->backend->ops->set_offload)
                return 0;
        return n->backend->ops->set_offload(n->backend, dev->guest_features);
}

static void net_reset(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;

        /* A frame read for the old driver is dropped with its rings (§2.4). */
        n->rx_len = 0;
        if (n->backend->features && n->backend->ops->set_offload)
                (void)n->backend->ops->set_offload(n->backend, 0);
}

static void net_destroy(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        if (!n)
                return;
        if (n->backend)
                n->backend->ops->free(n->backend);
        free(n->rx_buf);
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

/* 1..size-1 of [A-Za-z0-9_.-]: interface and port names (size IFNAMSIZ, with the NUL),
 * and VMs as iovd names them, by name (1..64, vm-contract.h) or id. */
static bool net_word_valid(const char *s, size_t size)
{
        size_t n = strlen(s);
        if (n == 0 || n >= size)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                            s[i]))
                        return false;
        return true;
}

static bool net_name_valid(const char *s)
{
        return net_word_valid(s, IFNAMSIZ);
}

static bool net_vm_name_valid(const char *s)
{
        return net_word_valid(s, IOV_VIRTIO_NET_PEER_VM_MAX);
}

/* "peer": {"vm": "netdom", "port": "client-a"}, both required, nothing else. */
static int net_parse_peer(struct iov_virtio_net_options *o, struct json_object *value,
                          char **ret_error)
{
        struct json_object *vm = NULL, *port = NULL;

        if (!json_object_is_type(value, json_type_object))
                return virtio_spec_error(ret_error, "%s", "\"peer\" must be an object");
        json_object_object_foreach (value, key, v) {
                if (!streq(key, "vm") && !streq(key, "port"))
                        return virtio_spec_error(ret_error, "peer: unknown field \"%.64s\"", key);
                if (!json_object_is_type(v, json_type_string))
                        return virtio_spec_error(ret_error, "peer: \"%s\" must be a string", key);
        }
        if (!json_object_object_get_ex(value, "vm", &vm) ||
            !json_object_object_get_ex(value, "port", &port))
                return virtio_spec_error(ret_error, "%s", "peer needs \"vm\" and \"port\"");
        const char *vm_s = json_object_get_string(vm), *port_s = json_object_get_string(port);
        if (!net_vm_name_valid(vm_s))
                return virtio_spec_error(ret_error, "peer: vm \"%.64s\" is not a VM name or id",
                                         vm_s);
        if (!net_name_valid(port_s))
                return virtio_spec_error(
                        ret_error, "peer: port \"%.64s\" is not 1..15 of [A-Za-z0-9_.-]", port_s);
        snprintf(o->peer_vm, sizeof(o->peer_vm), "%s", vm_s);
        snprintf(o->peer_port, sizeof(o->peer_port), "%s", port_s);
        return 0;
}

/* "vhost": true, false or "auto"; iovd puts "fd:N" in its place when it opened
 * /dev/vhost-net for a jailed VMM (vms/vm-files.c). */
static int net_parse_vhost(struct iov_virtio_net_options *o, struct json_object *value,
                           char **ret_error)
{
        const char *s =
                json_object_is_type(value, json_type_string) ? json_object_get_string(value) : NULL;

        if (json_object_is_type(value, json_type_boolean)) {
                o->vhost = json_object_get_boolean(value) ? IOV_VIRTIO_NET_VHOST_ON
                                                          : IOV_VIRTIO_NET_VHOST_OFF;
                return 0;
        }
        if (s && streq(s, "auto")) {
                o->vhost = IOV_VIRTIO_NET_VHOST_AUTO;
                return 0;
        }
        if (s && strncmp(s, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0 &&
            strlen(s) < sizeof(o->vhost_fd)) {
                o->vhost = IOV_VIRTIO_NET_VHOST_ON;
                snprintf(o->vhost_fd, sizeof(o->vhost_fd), "%s", s);
                return 0;
        }
        return virtio_spec_error(ret_error, "%s", "\"vhost\" must be true, false or \"auto\"");
}

static int net_parse_field(void *options, const char *key, struct json_object *value,
                           char **ret_error)
{
        struct iov_virtio_net_options *o = options;

        if (streq(key, "peer"))
                return net_parse_peer(o, value, ret_error);
        if (streq(key, "vhost"))
                return net_parse_vhost(o, value, ret_error);
        if (!streq(key, "tap") && !streq(key, "mac") && !streq(key, "port"))
                return -ENOENT;
        if (!json_object_is_type(value, json_type_string))
                return virtio_spec_error(ret_error, "\"%s\" must be a string", key);
        const char *s = json_object_get_string(value);
        if (streq(key, "tap") || streq(key, "port")) {
                /* An interface name never holds ':' (dev_valid_name), so "fd:N" is not one. */
                bool fd_name = streq(key, "tap") &&
                               strncmp(s, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0 &&
                               strlen(s) < sizeof(o->tap_name);
                if (!fd_name && !net_name_valid(s))
                        return virtio_spec_error(
                                ret_error, "%s \"%.64s\" is not 1..15 of [A-Za-z0-9_.-]", key, s);
                snprintf(streq(key, "tap") ? o->tap_name : o->port, sizeof(o->port), "%s", s);
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
        int backends = !!o->tap_name[0] + !!o->port[0] + !!o->peer_vm[0];

        if (backends != 1)
                return virtio_spec_error(ret_error, "%s needs one of \"tap\", \"port\", \"peer\"",
                                         "virtio-net");
        /* The port accepts no other source address than this one. */
        if (o->peer_vm[0] && !o->has_mac)
                return virtio_spec_error(ret_error, "%s", "a \"peer\" link needs its \"mac\"");
        /* vhost-net takes a TAP as its backend; a link stays on the userspace path. */
        if (o->vhost == IOV_VIRTIO_NET_VHOST_ON && !o->tap_name[0])
                return virtio_spec_error(ret_error, "%s", "\"vhost\": true needs a \"tap\"");
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

/* iovd opens the TAP named by "tap" and /dev/vhost-net for iovd-vmm and passes them
 * (virtio.h, host_files): a jailed VMM can open neither. */
static const struct iov_virtio_host_file net_host_files[] = {
        {"tap", IOV_VIRTIO_HOST_TAP}, {"vhost", IOV_VIRTIO_HOST_VHOST_NET}, {NULL, 0}};

static const struct iov_virtio_dev_ops net_ops = {
        .name = "virtio-net",
        .device_id = VIRTIO_ID_NET,
        .features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS),
        .num_queues = 2,
        .queue_max_size = 256,
        .config_size = sizeof(struct virtio_net_config),
        .config_read = virtio_dev_read_config,
        .activate = net_activate,
        .queue_notify = net_queue_notify,
        .backend_ready = net_backend_ready,
        .backend_blocked = net_backend_blocked,
        .backend_watch = net_backend_watch,
        .backend_queue = NET_RX,
        .reset = net_reset,
        .destroy = net_destroy,
        .options_size = sizeof(struct iov_virtio_net_options),
        .parse_field = net_parse_field,
        .parse_done = net_parse_done,
        .host_files = net_host_files,
        .create = net_create,
};

IOV_VIRTIO_DEVICE(net_ops)

int virtio_net_link_name(const struct iov_virtio_net_options *opts, char *buf, size_t size)
{
        int n;

        if (opts->port[0])
                n = snprintf(buf, size, "%s", opts->port);
        else if (opts->peer_vm[0])
                n = snprintf(buf, size, "%s/%s", opts->peer_vm, opts->peer_port);
        else
                return -ENOENT;
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int net_backend_new(const struct iov_virtio_net_options *opts, struct iov_net_backend **ret)
{
        char name[IOV_VIRTIO_NET_LINK_NAME_MAX];

        if (virtio_net_link_name(opts, name, sizeof(name)) < 0)
                return net_tap_backend_new(opts->tap_name, opts->tap_fd, opts->offload_stand_in,
                                           ret);
        return net_link_backend_new(name, opts->port[0] != 0, ret);
}

/* /dev/vhost-net (drivers/vhost/net.c), opened here before the sandbox or taken as the
 * "fd:N" iovd passed, and owned by this process (VHOST_SET_OWNER: its worker thread is
 * ours, in our cgroup); it must serve modern rings (VERSION_1). */
static int net_vhost_open(const struct iov_virtio_net_options *o, int *ret_fd,
                          uint64_t *ret_features)
{
        _cleanup_close_ int fd = -1;
        uint64_t features = 0;

        int r = o->vhost_fd[0] ? util_open_inherited(o->vhost_fd, O_RDWR, &fd) : 0;
        if (r < 0)
                return r;
        if (fd < 0 && (fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0)
                return -errno;
        if (ioctl(fd, VHOST_SET_OWNER) < 0 || ioctl(fd, VHOST_GET_FEATURES, &features) < 0)
                return -errno;
        if (!(features & (1ull << VIRTIO_F_VERSION_1)))
                return -EOPNOTSUPP;
        *ret_fd = TAKE_FD(fd);
        *ret_features = features;
        return 0;
}

/* The kernel's data path for a TAP where it can be had; otherwise this device serves the
 * queues itself (logged). Ring features vhost lacks are not offered. */
static int net_vhost_setup(struct iov_virtio_dev *dev, const struct iov_virtio_net_options *o,
                           int backend_fd)
{
        const uint64_t ring = (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
                              (1ull << VIRTIO_RING_F_INDIRECT_DESC);

        if (o->vhost == IOV_VIRTIO_NET_VHOST_OFF || backend_fd < 0)
                return 0;
        int r = net_vhost_open(o, &dev->vhost_fd, &dev->vhost_features);
        if (r < 0 && o->vhost == IOV_VIRTIO_NET_VHOST_ON)
                return log_error_errno(r, "virtio-net: vhost-net required, unavailable: %m");
        if (r < 0) {
                log_info("virtio-net: vhost-net unavailable (%s): userspace data path",
                         strerror(-r));
                return 0;
        }
        dev->vhost_backend_fd = backend_fd;
        dev->host_features &= ~(ring & ~dev->vhost_features);
        return 0;
}

int virtio_net_new(const struct iov_virtio_mem *mem, const struct iov_virtio_net_options *opts,
                   struct iov_virtio_dev **ret)
{
        struct iov_net_backend *backend = NULL;
        struct iov_virtio_dev *dev;

        int r = net_backend_new(opts, &backend);
        if (r < 0)
                return r;
        struct net *n = calloc(1, sizeof(*n));
        if (n && (backend->features & (1ull << VIRTIO_NET_F_MRG_RXBUF)))
                n->rx_buf = malloc(NET_RX_BUF_SIZE);
        if (!n || ((backend->features & (1ull << VIRTIO_NET_F_MRG_RXBUF)) && !n->rx_buf)) {
                backend->ops->free(backend);
                free(n);
                return -ENOMEM;
        }
        n->backend = backend;
        memcpy(n->config.mac, opts->mac, sizeof(n->config.mac));
        n->config.status = backend->carrier ? VIRTIO_NET_S_LINK_UP : 0;
        n->config.max_virtqueue_pairs = 1;
        r = virtio_dev_new(&net_ops, backend->features, mem, &dev);
        if (r < 0) {
                backend->ops->free(backend);
                free(n->rx_buf);
                free(n);
                return r;
        }
        dev->priv = n;
        dev->config = &n->config;
        dev->backend_fd = backend->poll_fd;
        dev->watch_fd = backend->watch_fd;
        r = net_vhost_setup(dev, opts, backend->vhost_backend_fd);
        if (r < 0) {
                virtio_dev_free(dev);
                return r;
        }
        *ret = dev;
        return 0;
}
