/* SPDX-License-Identifier: MIT */
/*
 * virtio: paravirtual devices for iovd-vmm (virtio 1.2).
 *
 * Three layers, each unaware of the one above it:
 *  - the split-virtqueue core (virtq.c): walks descriptor chains the guest wrote into
 *    its own memory and publishes used buffers. Every index, length and address in the
 *    rings is untrusted; a violation marks the queue broken and the device NEEDS_RESET.
 *  - devices (console.c, blk.c, net.c, rng.c): each fills a struct iov_virtio_dev_ops,
 *    registers it with IOV_VIRTIO_DEVICE() and only ever sees requests (chains of host
 *    iovecs), its own config space and the fields of its own "devices" entries.
 *  - transports (pci.c): map the device onto a bus, negotiate features, deliver
 *    notifications and interrupts.
 *
 * Guest memory is reached through struct iov_virtio_mem only, which maps to the VMM's
 * bounds-checked accessor (or to a plain buffer in the unit tests and fuzzers).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

/* The rings are little-endian (virtio 1.2 §2.7); the structures are read in place. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio rings are little-endian; add byte swapping for this host"
#endif

/* ---- guest memory --------------------------------------------------------------------- */

struct iov_virtio_mem {
        /* Host pointer to [gpa, gpa + len) or NULL if any byte is outside guest RAM. */
        void *(*ptr)(void *opaque, uint64_t gpa, uint64_t len);
        void *opaque;
};

static inline void *virtio_mem_ptr(const struct iov_virtio_mem *mem, uint64_t gpa, uint64_t len)
{
        if (len == 0 || gpa + len < gpa)
                return NULL;
        return mem->ptr(mem->opaque, gpa, len);
}

/* ---- split virtqueue (virtio 1.2 §2.7) ------------------------------------------------ */

#define IOV_VIRTQ_MAX_SIZE 1024u /* largest queue size a device offers */
#define IOV_VIRTQ_MAX_SEGS 1024u /* descriptors per chain, direct plus indirect */

struct iov_virtq {
        /* Set by the transport before virtq_enable(). */
        uint16_t size;
        uint64_t desc_gpa, avail_gpa, used_gpa;
        bool event_idx;     /* VIRTIO_F_EVENT_IDX negotiated */
        bool indirect_desc; /* VIRTIO_F_INDIRECT_DESC negotiated */

        /* Owned by the core. */
        const struct iov_virtio_mem *mem;
        bool enabled;
        bool broken;
        struct vring_desc *desc;
        struct vring_avail *avail;
        struct vring_used *used;
        uint16_t last_avail; /* next avail ring slot to consume */
        uint16_t used_idx;   /* our copy of used->idx */
        uint16_t signalled_used;
        bool signalled_used_valid;
};

/* One request: a chain split into what the device reads (out) and writes (in). */
struct iov_virtq_req {
        uint16_t head;
        unsigned n_out, n_in;
        uint64_t out_len, in_len;
        struct iovec out[IOV_VIRTQ_MAX_SEGS];
        struct iovec in[IOV_VIRTQ_MAX_SEGS];
};

/* The buffers of in[0..n) less their first skip bytes (a header the device handles
 * itself) into out, at most max of them; returns how many. */
unsigned virtq_iov_skip(const struct iovec *in, unsigned n, size_t skip, struct iovec *out,
                        unsigned max);

/* Map the rings; -EINVAL for a bad size, -EFAULT for rings outside RAM. */
int virtq_enable(struct iov_virtq *vq, const struct iov_virtio_mem *mem);
void virtq_disable(struct iov_virtq *vq);

/* Take the next available chain: 1 and *req filled, 0 when the ring is empty, -EBADMSG
 * when the guest broke the protocol (the queue stays broken until reset). */
int virtq_pop(struct iov_virtq *vq, struct iov_virtq_req *req);
/* Give the last popped chain back (a backend had nothing to put in it yet). */
void virtq_unpop(struct iov_virtq *vq);
/* Return a chain with written bytes in its device-writable part. */
int virtq_push(struct iov_virtq *vq, uint16_t head, uint32_t written);
/* The same in two steps, for a batch: fill writes the used element, flush publishes
 * every filled one with a single store of used->idx. */
int virtq_fill(struct iov_virtq *vq, uint16_t head, uint32_t written);
void virtq_flush(struct iov_virtq *vq);
/* After a batch of pushes: does the driver want an interrupt (§2.7.7, §2.7.10)? */
bool virtq_should_notify(struct iov_virtq *vq);
/* While draining the ring: ask the driver not to kick (§2.7.7.1, §2.7.10). */
void virtq_disable_notify(struct iov_virtq *vq);
/* Before sleeping: ask for a notification on the next avail entry. Returns true when
 * entries arrived meanwhile, so the caller must poll once more. */
bool virtq_enable_notify(struct iov_virtq *vq);
/* The same when the entries up to avail index seen are not enough for the next request
 * (one frame over several chains): a kick only for an entry beyond them. Returns true
 * when one arrived meanwhile. */
bool virtq_enable_notify_beyond(struct iov_virtq *vq, uint16_t seen);
bool virtq_has_avail(struct iov_virtq *vq);

/* Copy between iovecs and flat buffers; return bytes copied. */
size_t virtio_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t virtio_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
                           size_t len);

/* ---- devices -------------------------------------------------------------------------- */

struct iov_virtio_dev;
struct iov_virtio_host;
struct json_object;

/* How iovd opens a host file an entry names (struct iov_virtio_dev_ops.host_files). */
enum iov_virtio_host_file_kind {
        /* A disk image: read-write unless the entry's "read_only" is true; a regular file,
         * or a block device where the operator allows them. */
        IOV_VIRTIO_HOST_IMAGE,
        /* A FIFO, read-write and non-blocking (never EOF while the VM runs). */
        IOV_VIRTIO_HOST_FIFO,
        /* Not a path: a TAP interface name, opened with virtio_net_tap_open(). */
        IOV_VIRTIO_HOST_TAP,
        /* Not a path: true, false or "auto" (missing: auto) for /dev/vhost-net, opened for
         * an entry with a "tap" unless false; auto becomes false where it cannot be. */
        IOV_VIRTIO_HOST_VHOST_NET,
};

struct iov_virtio_host_file {
        const char *key; /* the entry's field holding the path */
        enum iov_virtio_host_file_kind kind;
};

/* A device model: what it is, how the transport drives it, and how an entry of a VM's
 * "devices" list becomes one. Each device file fills one and registers it with
 * IOV_VIRTIO_DEVICE(); nothing else lists the devices. */
struct iov_virtio_dev_ops {
        const char *name;   /* "virtio-blk": the entry's "type", also in stats and errors */
        uint16_t device_id; /* virtio 1.2 §5: net 1, blk 2, console 3, rng 4 */
        /* Device feature bits always offered (§5.x.3); the ones that depend on options
         * come from the constructor (virtio_dev_new), VERSION_1 and the ring features
         * from the device layer. */
        uint64_t features;
        unsigned num_queues; /* the default; virtio_dev_new_mq takes another count */
        uint16_t queue_max_size;
        size_t config_size;
        /* Device config space; reads and writes are bounds-checked by the caller. */
        void (*config_read)(struct iov_virtio_dev *dev, size_t offset, void *buf, size_t len);
        void (*config_write)(struct iov_virtio_dev *dev, size_t offset, const void *buf,
                             size_t len);
        /* The driver set DRIVER_OK; queues are enabled. */
        int (*activate)(struct iov_virtio_dev *dev);
        /* Queue q has new buffers. Return -EBADMSG when the guest broke the protocol. */
        int (*queue_notify)(struct iov_virtio_dev *dev, unsigned q);
        /* Requests the device took with IOV_VIRTIO_REQ_ASYNC finished (dev->completion_fd
         * is readable): put them into the used rings (virtio_dev_fill_used, then
         * virtio_dev_flush_used per queue). Returns how many are still in flight. */
        int (*complete)(struct iov_virtio_dev *dev);
        /* Queue q has requests in flight whose completion (ops->complete) will look at
         * the queue again: the driver need not kick meanwhile, so notifications stay off
         * after a drain (virtio 1.2 §2.7.10). NULL: never. */
        bool (*queue_busy)(struct iov_virtio_dev *dev, unsigned q);
        /* Backend b's fd (dev->backend_fd[b]) is readable; -EPIPE once it never will be. */
        int (*backend_ready)(struct iov_virtio_dev *dev, unsigned b);
        /* dev->watch_fd is readable: an event of the backend besides input (a peer gone),
         * watched even while backend_fd rests for want of buffers. NULL: none. */
        void (*backend_watch)(struct iov_virtio_dev *dev);
        /* Backend b's input waits for more buffers than its queue holds, or the driver
         * left b idle: the fd is not polled until the driver kicks a queue. NULL: input
         * waits only for an empty queue. */
        bool (*backend_blocked)(struct iov_virtio_dev *dev, unsigned b);
        /* The queue backend 0's input goes to, and the queues between one backend's and
         * the next's (virtio-net: 2, a receive and a transmit queue per pair): without
         * buffers there, the backend's fd is not polled. */
        unsigned backend_queue, backend_queue_stride;
        /* Back to the state after creation (device reset, §2.4). */
        void (*reset)(struct iov_virtio_dev *dev);
        /* Release what priv holds besides its memory: the core frees priv afterwards. */
        void (*destroy)(struct iov_virtio_dev *dev);

        /* Configuration (spec.c does the common part: the object, "type", unknown fields).
         * options_size bytes of typed options, zeroed, are filled field by field. */
        size_t options_size;
        /* One field of the entry besides "type": 0, -ENOENT when the device has no such
         * field (refused as unknown), -EINVAL with a message (virtio_spec_error), or
         * -ENOMEM. NULL: the device takes no fields. */
        int (*parse_field)(void *options, const char *key, struct json_object *value,
                           char **ret_error);
        /* After the last field: required fields, defaults. NULL: nothing to check. */
        int (*parse_done)(void *options, char **ret_error);
        /* The entry's fields that name host files (NULL-terminated; NULL: none). iovd
         * opens each itself, confined to its image directories, and hands iovd-vmm the
         * descriptor as "fd:N" in their place (vms/vm-files.c); the device opens its
         * field with util_open_inherited(), which takes either form. */
        const struct iov_virtio_host_file *host_files;
        /* Make the device from parsed options; what it needs of the VM comes in host. */
        int (*create)(const void *options, const struct iov_virtio_host *host,
                      struct iov_virtio_dev **ret);
};

/* ---- device registry ------------------------------------------------------------------ */

struct iov_virtio_registration {
        const struct iov_virtio_dev_ops *ops;
        struct iov_virtio_registration *next;
};

void virtio_device_register(struct iov_virtio_registration *reg);
/* The device whose ops->name is name, or NULL. */
const struct iov_virtio_dev_ops *virtio_device_find(const char *name);
/* Every registered device, for listings and checks; follow ->next. */
const struct iov_virtio_registration *virtio_devices(void);

/* The device file's one registration line. The constructor runs at program start; every
 * library holding device files is linked whole (vmm/virtio/meson.build) so the linker
 * keeps them although nothing calls into them by name. */
#define IOV_VIRTIO_DEVICE(ops_)                                                                    \
        static struct iov_virtio_registration virtio_registration_##ops_ = {.ops = &(ops_)};       \
        __attribute__((constructor)) static void virtio_register_##ops_(void)                      \
        {                                                                                          \
                virtio_device_register(&virtio_registration_##ops_);                               \
        }

/* What the VMM lends a device made from a spec. */
struct iov_virtio_host {
        const struct iov_virtio_mem *mem; /* guest memory, for the whole life of the device */
        int console_fd; /* the VM's console stream (the UART's output fd), -1: nowhere */
        unsigned vcpus; /* the VM's vCPUs, for devices with a queue per vCPU (0: unknown) */
};

/* What a transport provides to the device layer. */
struct iov_virtio_transport {
        /* Interrupt for a used buffer on queue q / for a config change. */
        void (*signal_queue)(struct iov_virtio_dev *dev, unsigned q);
        void (*signal_config)(struct iov_virtio_dev *dev);
        /* Serve queue q again soon, as if the driver had kicked (work left over). */
        void (*kick_queue)(struct iov_virtio_dev *dev, unsigned q);
        void *opaque;
};

/* Queues whose requests are counted one by one in the stats (queue_requests). */
#define IOV_VIRTIO_STATS_QUEUES 16

struct iov_virtio_stats {
        uint64_t requests_read, requests_written;
        uint64_t bytes_read, bytes_written; /* from the guest's point of view */
        uint64_t requests_failed;
        uint64_t notifications, interrupts;
        /* Adaptive poll (poll_us): a drained queue got new requests within the poll
         * (hit) or did not and notifications were re-enabled (miss). */
        uint64_t poll_hits, poll_misses;
        /* Requests the driver added while notifications were off for requests in flight,
         * taken only when one of those completed (virtio_dev_poll_queue): how many waited
         * in the ring for a completion instead of being kicked. */
        uint64_t requests_deferred;
        uint64_t queue_requests[IOV_VIRTIO_STATS_QUEUES]; /* chains served, by queue */
};

/* Backends of one device at most: virtio-net's queue pairs, one TAP queue each. */
#define IOV_VIRTIO_MAX_BACKENDS 4
/* The longest adaptive poll a device takes (poll_us of blk and net entries). */
#define IOV_VIRTIO_POLL_US_MAX 1000u

struct iov_virtio_dev {
        const struct iov_virtio_dev_ops *ops;
        /* A kernel data path (vhost-net), one vhost device per backend b: the transport
         * hands vhost_fd[b] the rings of b's queues (backend_queue_stride of them from
         * b * stride) at DRIVER_OK with vhost_backend_fd[b] as the backend and takes them
         * back at reset; the device's own service of those queues then stays idle (other
         * queues, the control queue, stay its own). n_vhost 0: the userspace path. */
        int vhost_fd[IOV_VIRTIO_MAX_BACKENDS], vhost_backend_fd[IOV_VIRTIO_MAX_BACKENDS];
        unsigned n_vhost;
        uint64_t vhost_features; /* what the vhost device supports (VHOST_GET_FEATURES) */
        void *priv;              /* freed by the core after ops->destroy */
        const void *config;      /* plain config space read by virtio_dev_read_config */
        const struct iov_virtio_mem *mem;
        struct iov_virtio_transport transport;
        uint64_t host_features;
        uint64_t guest_features;
        uint8_t status;
        uint8_t isr;
        uint32_t config_generation;
        int backend_fd[IOV_VIRTIO_MAX_BACKENDS]; /* input to poll, -1: none */
        /* Spin on a drained queue's avail index this long before re-enabling
         * notifications (virtio_dev_process_queue); 0: off. */
        unsigned poll_us;
        int watch_fd;      /* ops->backend_watch's, polled always; -1: none */
        int completion_fd; /* readable when ops->complete has work; -1: none */
        unsigned num_queues;
        struct iov_virtq *queues;
        struct iov_virtq_req *req; /* scratch for the device's current request */
        struct iov_virtio_stats stats;
};

/* Allocate the generic part; the device fills priv and backend_fd. */
int virtio_dev_new(const struct iov_virtio_dev_ops *ops, uint64_t device_features,
                   const struct iov_virtio_mem *mem, struct iov_virtio_dev **ret);
/* The same with num_queues queues instead of ops->num_queues (multiqueue devices). */
int virtio_dev_new_mq(const struct iov_virtio_dev_ops *ops, uint64_t device_features,
                      unsigned num_queues, const struct iov_virtio_mem *mem,
                      struct iov_virtio_dev **ret);
void virtio_dev_free(struct iov_virtio_dev *dev);
static inline void virtio_dev_freep(struct iov_virtio_dev **p)
{
        virtio_dev_free(*p);
}

bool virtio_dev_has_feature(const struct iov_virtio_dev *dev, unsigned bit);
/* config_read for a device whose config space is a plain structure at dev->config. */
void virtio_dev_read_config(struct iov_virtio_dev *dev, size_t offset, void *buf, size_t len);
/* Driver status writes (§2.1, §3.1.1): 0 resets; FEATURES_OK is refused (bit stays
 * clear) when the driver took features we do not offer or left out VERSION_1. */
void virtio_dev_set_status(struct iov_virtio_dev *dev, uint8_t status);
void virtio_dev_reset(struct iov_virtio_dev *dev);
/* The guest broke the protocol: set DEVICE_NEEDS_RESET and tell the driver (§2.1.2). */
void virtio_dev_set_needs_reset(struct iov_virtio_dev *dev);
/* Dispatch a queue notification; a protocol violation ends in NEEDS_RESET. */
int virtio_dev_notify(struct iov_virtio_dev *dev, unsigned q);
/* Backend 0's fd is readable; _at: backend b's. */
int virtio_dev_backend_ready(struct iov_virtio_dev *dev);
int virtio_dev_backend_ready_at(struct iov_virtio_dev *dev, unsigned b);
/* The queue backend b's input goes to (ops->backend_queue, backend_queue_stride). */
unsigned virtio_dev_backend_queue(const struct iov_virtio_dev *dev, unsigned b);
void virtio_dev_backend_watch(struct iov_virtio_dev *dev);
/* Serve queue q without a notification from the driver (ops->complete, for a queue whose
 * notifications stayed off while it was busy); what is left over is kicked again. */
int virtio_dev_poll_queue(struct iov_virtio_dev *dev, unsigned q);
/* dev->completion_fd is readable: ops->complete. Returns requests still in flight. */
int virtio_dev_complete(struct iov_virtio_dev *dev);
/* For ops->complete: a request taken asynchronously is done (written bytes in its
 * device-writable part); flush publishes the filled ones and interrupts the driver once
 * for the batch if it asked (§2.7.7.2). */
int virtio_dev_fill_used(struct iov_virtio_dev *dev, unsigned q, uint16_t head, uint32_t written);
void virtio_dev_flush_used(struct iov_virtio_dev *dev, unsigned q);
/* Device side: interrupt the driver for queue q if it asked for one. */
void virtio_dev_signal_used(struct iov_virtio_dev *dev, unsigned q);
bool virtio_dev_queue_ready(const struct iov_virtio_dev *dev, unsigned q);

/* Serve one request: fill *ret_written with the bytes put into req->in. Return 0, -EAGAIN
 * to give the chain back (nothing to put in it yet), IOV_VIRTIO_REQ_ASYNC when the device
 * took the chain and completes it later (ops->complete), or -EBADMSG for a protocol
 * violation. A request the device cannot honour is completed with an error status and 0. */
#define IOV_VIRTIO_REQ_ASYNC 1
typedef int (*virtio_request_handler_t)(struct iov_virtio_dev *dev, unsigned q,
                                        struct iov_virtq_req *req, uint32_t *ret_written);
/* Pop, serve and push every available chain of queue q, re-arm notifications, interrupt
 * the driver if it asked. Returns 1 when the budget ran out and work is left (call
 * again), 0 when the ring is drained, -EBADMSG on a protocol violation. */
int virtio_dev_process_queue(struct iov_virtio_dev *dev, unsigned q,
                             virtio_request_handler_t handle);

/* ---- device constructors -------------------------------------------------------------- */

/* The typed options of each device's "devices" entry, which its constructor takes too.
 * Strings are bounded copies, so a parsed spec holds no pointers into the JSON. */

/* virtio-console, port 0 only: guest output goes to out_fd, input comes from in_fd (-1:
 * none). The fds stay owned by the caller. */
int virtio_console_new(const struct iov_virtio_mem *mem, int in_fd, int out_fd,
                       struct iov_virtio_dev **ret);

#define IOV_VIRTIO_PATH_MAX 4096 /* PATH_MAX of Linux, with the NUL */

struct iov_virtio_console_options {
        char input[IOV_VIRTIO_PATH_MAX]; /* the input FIFO, "" for none */
};

#define IOV_VIRTIO_BLK_MAX_QUEUES 8 /* request queues of one disk at most */

struct iov_virtio_blk_options {
        char path[IOV_VIRTIO_PATH_MAX]; /* a raw image file */
        bool read_only;
        bool direct;      /* open the image with O_DIRECT (no host page cache) */
        unsigned poll_us; /* adaptive poll, 0..IOV_VIRTIO_POLL_US_MAX (0: off) */
        char serial[20];  /* GET_ID answer, NUL-padded (virtio 1.2 §5.2.6) */
        /* 1..IOV_VIRTIO_BLK_MAX_QUEUES; 0: one per vCPU of the VM up to the cap (one
         * when virtio_blk_new is called without a VM) */
        unsigned num_queues;
        /* Not a field of the entry: the synchronous path even where io_uring works, as
         * where it does not (tests, fuzzers). */
        bool no_io_uring;
};
/* Largest data transfer of one request; larger ones fail with IOERR. */
#define IOV_VIRTIO_BLK_MAX_REQUEST (4u << 20)
int virtio_blk_new(const struct iov_virtio_mem *mem, const struct iov_virtio_blk_options *opts,
                   struct iov_virtio_dev **ret);

#define IOV_VIRTIO_NET_TAP_NAME_MAX 16 /* IFNAMSIZ, with the NUL */

#define IOV_VIRTIO_NET_PORT_MAX    16 /* a port name: 1..15 of [A-Za-z0-9_.-], with the NUL */
#define IOV_VIRTIO_NET_PEER_VM_MAX 65 /* a VM name (at most 64) or id, with the NUL */
/* A link's name in its VMM: "PORT" on the driver VM's side, "VM/PORT" on the client's. */
#define IOV_VIRTIO_NET_LINK_NAME_MAX (IOV_VIRTIO_NET_PEER_VM_MAX + IOV_VIRTIO_NET_PORT_MAX)

/* "vhost" of a TAP entry: the kernel's vhost-net as the data path where it can be had
 * (auto, the default), required (on: the device is not made without it) or never (off). */
enum iov_virtio_net_vhost {
        IOV_VIRTIO_NET_VHOST_AUTO = 0,
        IOV_VIRTIO_NET_VHOST_ON,
        IOV_VIRTIO_NET_VHOST_OFF,
};

/* Queue pairs of one virtio-net device at most ("queues"; virtio 1.2 §5.1.6.5.5): a
 * TAP queue each, and with vhost-net a vhost device and its worker thread each. */
#define IOV_VIRTIO_NET_MAX_PAIRS IOV_VIRTIO_MAX_BACKENDS

/* One backend: tap_name (or tap_fd), port, or peer_vm with peer_port. */
struct iov_virtio_net_options {
        char tap_name[IOV_VIRTIO_NET_TAP_NAME_MAX]; /* existing or new TAP, "": use tap_fd */
        /* "tap": ["fd:N", ...]: the TAP's queues iovd opened, one per pair (then tap_name
         * is the first of them). */
        char tap_queue_fds[IOV_VIRTIO_NET_MAX_PAIRS][IOV_VIRTIO_NET_TAP_NAME_MAX];
        unsigned queues;  /* queue pairs, 1..IOV_VIRTIO_NET_MAX_PAIRS (0 in a spec: 1) */
        unsigned poll_us; /* adaptive poll of the transmit queues, 0: off */
        int tap_fd;       /* an open TAP fd (IFF_NO_PI | IFF_VNET_HDR), taken over */
        uint8_t mac[6];
        bool has_mac; /* false: the spec gave no "mac"; its device gets a made-up one */
        char port[IOV_VIRTIO_NET_PORT_MAX];       /* this VM serves a client here, or "" */
        char peer_vm[IOV_VIRTIO_NET_PEER_VM_MAX]; /* this VM is a client of that VM, or "" */
        char peer_port[IOV_VIRTIO_NET_PORT_MAX];  /* ... on that port */
        /* Not a field of the entry: offer a TAP's offloads and mergeable buffers even when
         * tap_fd is no TAP (a socket standing in for one in tests and fuzzers). */
        bool offload_stand_in;
        enum iov_virtio_net_vhost vhost;
        /* "fd:N": /dev/vhost-net as iovd opened and passed it (then vhost is ON), one per
         * pair ("vhost": ["fd:N", ...] with queues > 1); "": iovd-vmm opens it itself,
         * before the sandbox. */
        char vhost_fd[IOV_VIRTIO_NET_MAX_PAIRS][IOV_VIRTIO_NET_TAP_NAME_MAX];
};
int virtio_net_new(const struct iov_virtio_mem *mem, const struct iov_virtio_net_options *opts,
                   struct iov_virtio_dev **ret);
/* The link name of a port or peer entry into buf; -ENOENT for a TAP entry. */
int virtio_net_link_name(const struct iov_virtio_net_options *opts, char *buf, size_t size);
/* Hand link `name` of this process its end of the channel (an AF_UNIX SOCK_SEQPACKET
 * socket), taken over in every case. A port needs source_mac (its client's definition
 * MAC, the only source it accepts); a client side takes none (NULL). The I/O thread
 * adopts the end at its next turn, dropping the one it held. -ENOENT: no such link;
 * -EINVAL: source_mac given to a client side or missing for a port. */
int virtio_net_link_attach(const char *name, int fd, const uint8_t *source_mac);
/* Before the VM's other descriptors are opened (vmm/run.c): keep n descriptor numbers,
 * highest down (each below the process's limit), for link ends (each link created
 * afterwards takes one). A dying process releases its files after closing them all: each
 * close queues the file's release as task work (fput(), fs/file_table.c), close_files()
 * goes in ascending order and task_work_run() runs the queue last in, first out
 * (kernel/task_work.c), so the highest number is released first. On the lab's Linux 6.1
 * the release of a killed driver VM's VFIO device (its reset), container and KVM VM took
 * 0.35 s before its link ends at low numbers were released: on the highest numbers, its
 * clients see the hang-up without waiting for them. */
int virtio_net_link_reserve_fds(unsigned n, int highest);
/* The links of this process as a JSON array of {"name", "role" ("port" or "client"),
 * "carrier", "carrier_changed_usec" (CLOCK_MONOTONIC of its last change, 0: never), "frames_sent",
 * "bytes_sent", "frames_received", "bytes_received", "dropped_full", "dropped_down",
 * "dropped_source_mac", "dropped_invalid"}. */
struct json_object *virtio_net_links_json(void);
/* Open (or create) TAP interface name as virtio-net needs it (IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR, the v1 header size, offloads off until a guest acks some); needs
 * CAP_NET_ADMIN. iovd opens TAPs
 * this way and passes them to iovd-vmm. */
int virtio_net_tap_open(const char *name, int *ret_fd);
/* The same for n queues of a multiqueue TAP (IFF_MULTI_QUEUE when n > 1; Documentation/
 * networking/tuntap.rst §3.4): one fd per queue into ret_fds[0..n). */
int virtio_net_tap_open_queues(const char *name, unsigned n, int *ret_fds);
/* "52:54:00:12:34:56": six two-digit hex octets, a unicast address. */
int virtio_parse_mac(const char *s, uint8_t ret[6]);

/* Bytes of entropy handed out per request at most. */
#define IOV_VIRTIO_RNG_MAX_REQUEST 4096u
int virtio_rng_new(const struct iov_virtio_mem *mem, struct iov_virtio_dev **ret);

/* ---- configuration (spec.c) ----------------------------------------------------------- */

/* One virtio entry of a VM's "devices" list, parsed: its device and that device's typed
 * options (ops->options_size bytes, one of the structures above). */
struct iov_virtio_spec {
        const struct iov_virtio_dev_ops *ops;
        void *options;
};

/* 1 and *ret filled for a virtio entry; 0 for another type (not ours); -EINVAL with a
 * message in *ret_error (malloc'ed) for a malformed one or a virtio type no device
 * registered; -ENOMEM. */
int virtio_spec_parse(struct json_object *entry, struct iov_virtio_spec *ret, char **ret_error);
void virtio_spec_done(struct iov_virtio_spec *spec);
/* Create the device a spec describes (ops->create). */
int virtio_spec_create(const struct iov_virtio_spec *spec, const struct iov_virtio_host *host,
                       struct iov_virtio_dev **ret);
/* For parse_field and parse_done: put a message in *ret_error, return -EINVAL. */
int virtio_spec_error(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For parse_field: "poll_us", an integer 0..IOV_VIRTIO_POLL_US_MAX. */
int virtio_spec_poll_us(struct json_object *value, unsigned *ret, char **ret_error);
/* For parse_field: a non-empty string no longer than size - 1 bytes, copied into buf. */
int virtio_spec_string(struct json_object *value, const char *key, char *buf, size_t size,
                       char **ret_error);

/* ---- virtio-pci transport (pci.c) ----------------------------------------------------- */

struct iov_vm;
/* Counters of every virtio device of this VM, as a JSON array of objects with "type",
 * "slot", "requests_read", "requests_written", "bytes_read", "bytes_written",
 * "requests_failed", "notifications", "interrupts", "needs_reset". */
struct json_object *virtio_pci_stats_json(struct iov_vm *vm);
