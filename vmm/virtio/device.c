/* SPDX-License-Identifier: MIT */
/*
 * The transport-independent part of a virtio device: feature negotiation, device status
 * (virtio 1.2 §2.1, §3.1.1), reset (§2.4), and the loop that serves a queue. Transports
 * call in here; devices only see their ops being called.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "util/util.h"

/* Chains served per call before the caller gets the thread back (it calls again), so a
 * guest that keeps the ring full cannot keep a device lock forever. */
#define PROCESS_BUDGET 256u

/* Features every device offers: the modern interface, indirect tables, event index. */
#define COMMON_FEATURES                                                                            \
        ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                    \
         (1ull << VIRTIO_RING_F_EVENT_IDX))

int virtio_dev_new_mq(const struct iov_virtio_dev_ops *ops, uint64_t device_features,
                      unsigned num_queues, const struct iov_virtio_mem *mem,
                      struct iov_virtio_dev **ret)
{
        if (num_queues == 0)
                return -EINVAL;
        _cleanup_free_ struct iov_virtio_dev *dev = calloc(1, sizeof(*dev));
        if (!dev)
                return -ENOMEM;
        dev->queues = calloc(num_queues, sizeof(*dev->queues));
        dev->req = malloc(sizeof(*dev->req));
        if (!dev->queues || !dev->req) {
                free(dev->queues);
                free(dev->req);
                return -ENOMEM;
        }
        dev->ops = ops;
        dev->mem = mem;
        dev->host_features = ops->features | device_features | COMMON_FEATURES;
        for (unsigned b = 0; b < IOV_VIRTIO_MAX_BACKENDS; b++)
                dev->backend_fd[b] = dev->vhost_fd[b] = dev->vhost_backend_fd[b] = -1;
        dev->watch_fd = -1;
        dev->completion_fd = -1;
        dev->num_queues = num_queues;
        for (unsigned q = 0; q < num_queues; q++)
                dev->queues[q].size = ops->queue_max_size;
        *ret = TAKE_PTR(dev);
        return 0;
}

int virtio_dev_new(const struct iov_virtio_dev_ops *ops, uint64_t device_features,
                   const struct iov_virtio_mem *mem, struct iov_virtio_dev **ret)
{
        return virtio_dev_new_mq(ops, device_features, ops->num_queues, mem, ret);
}

void virtio_dev_free(struct iov_virtio_dev *dev)
{
        if (!dev)
                return;
        if (dev->ops->destroy)
                dev->ops->destroy(dev);
        for (unsigned b = 0; b < dev->n_vhost; b++)
                if (dev->vhost_fd[b] >= 0)
                        close(dev->vhost_fd[b]);
        free(dev->priv);
        free(dev->queues);
        free(dev->req);
        free(dev);
}

void virtio_dev_read_config(struct iov_virtio_dev *dev, size_t offset, void *buf, size_t len)
{
        /* The transport checked [offset, offset + len) against ops->config_size. */
        memcpy(buf, (const uint8_t *)dev->config + offset, len);
}

bool virtio_dev_has_feature(const struct iov_virtio_dev *dev, unsigned bit)
{
        return bit < 64 && (dev->guest_features & (1ull << bit));
}

bool virtio_dev_queue_ready(const struct iov_virtio_dev *dev, unsigned q)
{
        return q < dev->num_queues && dev->queues[q].enabled;
}

void virtio_dev_reset(struct iov_virtio_dev *dev)
{
        for (unsigned q = 0; q < dev->num_queues; q++) {
                struct iov_virtq *vq = &dev->queues[q];
                virtq_disable(vq);
                *vq = (struct iov_virtq){.size = dev->ops->queue_max_size};
        }
        dev->status = 0;
        dev->guest_features = 0;
        dev->isr = 0;
        if (dev->ops->reset)
                dev->ops->reset(dev);
}

/* §2.2.1: the device accepts no feature it did not offer; §6.1: a modern device needs
 * VERSION_1. Ring features are copied into the queues here, where they become final. */
static bool features_accept(struct iov_virtio_dev *dev)
{
        if (dev->guest_features & ~dev->host_features)
                return false;
        if (!virtio_dev_has_feature(dev, VIRTIO_F_VERSION_1))
                return false;
        for (unsigned q = 0; q < dev->num_queues; q++) {
                dev->queues[q].event_idx = virtio_dev_has_feature(dev, VIRTIO_RING_F_EVENT_IDX);
                dev->queues[q].indirect_desc =
                        virtio_dev_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC);
        }
        return true;
}

void virtio_dev_set_status(struct iov_virtio_dev *dev, uint8_t status)
{
        uint8_t old = dev->status;

        if (status == 0) {
                virtio_dev_reset(dev);
                return;
        }
        if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
            !features_accept(dev))
                /* §3.1.1 step 6: the driver re-reads status and sees FEATURES_OK clear. */
                status &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        /* DEVICE_NEEDS_RESET is the device's to set; only a reset clears it. */
        dev->status = status | (old & VIRTIO_CONFIG_S_NEEDS_RESET);

        if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
            dev->ops->activate && dev->ops->activate(dev) < 0)
                virtio_dev_set_needs_reset(dev);
}

void virtio_dev_set_needs_reset(struct iov_virtio_dev *dev)
{
        if (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET)
                return;
        dev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        /* §2.1.2: with DRIVER_OK set, the device sends a config change notification. */
        if ((dev->status & VIRTIO_CONFIG_S_DRIVER_OK) && dev->transport.signal_config)
                dev->transport.signal_config(dev);
}

static bool dev_running(const struct iov_virtio_dev *dev)
{
        return (dev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
               !(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static int dev_check_result(struct iov_virtio_dev *dev, int r)
{
        if (r == -EBADMSG)
                virtio_dev_set_needs_reset(dev);
        return r;
}

int virtio_dev_notify(struct iov_virtio_dev *dev, unsigned q)
{
        if (q >= dev->num_queues)
                return -EINVAL;
        if (!dev_running(dev) || !dev->queues[q].enabled)
                return 0;
        dev->stats.notifications++;
        return dev_check_result(dev, dev->ops->queue_notify(dev, q));
}

int virtio_dev_poll_queue(struct iov_virtio_dev *dev, unsigned q)
{
        if (q >= dev->num_queues)
                return -EINVAL;
        if (!dev_running(dev) || !dev->queues[q].enabled)
                return 0;
        uint64_t before = q < IOV_VIRTIO_STATS_QUEUES ? dev->stats.queue_requests[q] : 0;
        int r = dev_check_result(dev, dev->ops->queue_notify(dev, q));
        if (q < IOV_VIRTIO_STATS_QUEUES)
                dev->stats.requests_deferred += dev->stats.queue_requests[q] - before;
        /* Budget spent with notifications off: nobody else would come back for the rest. */
        if (r == 1 && dev->transport.kick_queue)
                dev->transport.kick_queue(dev, q);
        return r;
}

int virtio_dev_backend_ready_at(struct iov_virtio_dev *dev, unsigned b)
{
        if (b >= IOV_VIRTIO_MAX_BACKENDS || !dev_running(dev) || !dev->ops->backend_ready)
                return 0;
        return dev_check_result(dev, dev->ops->backend_ready(dev, b));
}

int virtio_dev_backend_ready(struct iov_virtio_dev *dev)
{
        return virtio_dev_backend_ready_at(dev, 0);
}

unsigned virtio_dev_backend_queue(const struct iov_virtio_dev *dev, unsigned b)
{
        return dev->ops->backend_queue + b * dev->ops->backend_queue_stride;
}

/* Not gated on DRIVER_OK: the backend follows its host object whatever the driver does
 * (a carrier change reaches the driver only once it runs). */
void virtio_dev_backend_watch(struct iov_virtio_dev *dev)
{
        if (dev->ops->backend_watch)
                dev->ops->backend_watch(dev);
}

int virtio_dev_complete(struct iov_virtio_dev *dev)
{
        /* Not gated on DRIVER_OK: requests in flight finish even while the driver resets
         * the device (the device's reset waits for them). */
        if (!dev->ops->complete)
                return 0;
        return dev->ops->complete(dev);
}

int virtio_dev_fill_used(struct iov_virtio_dev *dev, unsigned q, uint16_t head, uint32_t written)
{
        if (q >= dev->num_queues)
                return -EINVAL;
        return virtq_fill(&dev->queues[q], head, written);
}

void virtio_dev_flush_used(struct iov_virtio_dev *dev, unsigned q)
{
        if (q >= dev->num_queues)
                return;
        virtq_flush(&dev->queues[q]);
        virtio_dev_signal_used(dev, q);
}

void virtio_dev_signal_used(struct iov_virtio_dev *dev, unsigned q)
{
        if (!virtq_should_notify(&dev->queues[q]))
                return;
        dev->stats.interrupts++;
        if (dev->transport.signal_queue)
                dev->transport.signal_queue(dev, q);
}

/* Pop and serve chains until the ring is empty or the budget is spent; what the device
 * finished at once goes into the used ring (not yet published). *filled counts those,
 * *served everything taken. 0: ring empty, 1: budget spent, negative: error. */
static int process_batch(struct iov_virtio_dev *dev, unsigned q, virtio_request_handler_t handle,
                         unsigned *served, unsigned *filled)
{
        struct iov_virtq *vq = &dev->queues[q];
        int r = 0;

        while (*served < PROCESS_BUDGET && (r = virtq_pop(vq, dev->req)) > 0) {
                uint32_t written = 0;
                r = handle(dev, q, dev->req, &written);
                if (r == -EAGAIN) {
                        /* The backend has nothing for this buffer yet. */
                        virtq_unpop(vq);
                        return -EAGAIN;
                }
                if (r < 0)
                        return r;
                (*served)++;
                if (q < IOV_VIRTIO_STATS_QUEUES)
                        dev->stats.queue_requests[q]++;
                if (r == IOV_VIRTIO_REQ_ASYNC)
                        continue; /* ops->complete returns it */
                r = virtq_fill(vq, dev->req->head, written);
                if (r < 0)
                        return r;
                (*filled)++;
        }
        if (r < 0)
                return r;
        return *served >= PROCESS_BUDGET ? 1 : 0;
}

/* Adaptive poll: a drained queue's avail index watched for dev->poll_us before the
 * driver is asked to kick again, so a guest that posts its next request within that time
 * costs neither a notification nor a wake-up of this thread (§2.7.10 leaves the
 * suppression to the device). Bounded, off by default: it burns this thread's CPU. */
static bool process_poll(struct iov_virtio_dev *dev, struct iov_virtq *vq)
{
        if (dev->poll_us == 0)
                return false;
        uint64_t end = util_now_usec() + dev->poll_us;
        do {
                if (virtq_has_avail(vq)) {
                        dev->stats.poll_hits++;
                        return true;
                }
                __builtin_ia32_pause(); /* a spin-wait hint to the sibling hyperthread */
        } while (util_now_usec() < end);
        dev->stats.poll_misses++;
        return false;
}

int virtio_dev_process_queue(struct iov_virtio_dev *dev, unsigned q,
                             virtio_request_handler_t handle)
{
        struct iov_virtq *vq = &dev->queues[q];
        unsigned served = 0, filled = 0;
        int r;

        /* Drain with notifications off, re-enable only once the ring looks empty, then
         * look again (§2.7.10): a busy queue costs the driver no kick per request. */
        virtq_disable_notify(vq);
        for (;;) {
                r = process_batch(dev, q, handle, &served, &filled);
                if (r == -EAGAIN) {
                        r = 0;
                        (void)virtq_enable_notify(vq);
                        break;
                }
                if (r != 0)
                        break;
                /* Requests in flight bring the device back here when they complete
                 * (virtio_dev_poll_queue): until then the driver need not kick. */
                if (dev->ops->queue_busy && dev->ops->queue_busy(dev, q))
                        break;
                if (process_poll(dev, vq))
                        continue;
                if (!virtq_enable_notify(vq))
                        break;
                virtq_disable_notify(vq);
        }
        /* One store of used->idx and at most one interrupt for the whole batch. */
        if (filled > 0) {
                virtq_flush(vq);
                virtio_dev_signal_used(dev, q);
        }
        return r;
}
