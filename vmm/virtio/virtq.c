/* SPDX-License-Identifier: MIT */
/*
 * The split virtqueue (virtio 1.2 §2.7), device side.
 *
 * The guest owns the memory the rings live in and may change any byte at any time, from
 * another vCPU, while we read it. So: every value is fetched once into a local before it
 * is checked and used; every index is checked against the queue or table size; every
 * buffer is mapped through the bounds-checked accessor; the chain walk is bounded by a
 * count, which also ends loops. A violation marks the queue broken and the device layer
 * turns that into DEVICE_NEEDS_RESET (§2.1.2); nothing is ever read or written outside
 * what the accessor handed out.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <string.h>

/* Ring layout sizes (§2.7: desc 16 * n; avail flags, idx, ring[n], used_event; used
 * flags, idx, ring[n] of 8 bytes, avail_event) and alignment (§2.7 table). */
#define DESC_ALIGN  16u
#define AVAIL_ALIGN 2u
#define USED_ALIGN  4u

static uint64_t desc_bytes(uint16_t n)
{
        return 16ull * n;
}

static uint64_t avail_bytes(uint16_t n)
{
        return 6ull + 2ull * n;
}

static uint64_t used_bytes(uint16_t n)
{
        return 6ull + 8ull * n;
}

static uint16_t load16(const uint16_t *p)
{
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static uint16_t *used_event_ptr(struct iov_virtq *vq)
{
        return &vq->avail->ring[vq->size];
}

static uint16_t *avail_event_ptr(struct iov_virtq *vq)
{
        return (uint16_t *)&vq->used->ring[vq->size];
}

int virtq_enable(struct iov_virtq *vq, const struct iov_virtio_mem *mem)
{
        uint16_t n = vq->size;

        /* §2.7: queue size is a power of 2 (split rings), at most what we offered. */
        if (n == 0 || n > IOV_VIRTQ_MAX_SIZE || (n & (n - 1)) != 0)
                return -EINVAL;
        if (vq->desc_gpa % DESC_ALIGN || vq->avail_gpa % AVAIL_ALIGN || vq->used_gpa % USED_ALIGN)
                return -EINVAL;

        struct vring_desc *desc = virtio_mem_ptr(mem, vq->desc_gpa, desc_bytes(n));
        struct vring_avail *avail = virtio_mem_ptr(mem, vq->avail_gpa, avail_bytes(n));
        struct vring_used *used = virtio_mem_ptr(mem, vq->used_gpa, used_bytes(n));
        if (!desc || !avail || !used)
                return -EFAULT;

        vq->mem = mem;
        vq->desc = desc;
        vq->avail = avail;
        vq->used = used;
        vq->last_avail = 0;
        vq->used_idx = 0;
        vq->signalled_used = 0;
        vq->signalled_used_valid = false;
        vq->broken = false;
        vq->enabled = true;
        return 0;
}

void virtq_disable(struct iov_virtq *vq)
{
        vq->enabled = false;
        vq->broken = false;
        vq->desc = NULL;
        vq->avail = NULL;
        vq->used = NULL;
}

static int virtq_break(struct iov_virtq *vq)
{
        vq->broken = true;
        return -EBADMSG;
}

/* One fetch of a descriptor into host memory; the barrier keeps the compiler from
 * reading the guest's copy again later (the guest may have changed it by then). */
static void desc_fetch(const struct vring_desc *table, uint32_t i, struct vring_desc *ret)
{
        memcpy(ret, &table[i], sizeof(*ret));
        __asm__ __volatile__("" ::: "memory");
}

static int req_add_segment(struct iov_virtq *vq, struct iov_virtq_req *req,
                           const struct vring_desc *d)
{
        /* A zero-length buffer carries nothing; accept and skip it. */
        if (d->len == 0)
                return 0;
        /* NULL for a length that wraps, an address beyond RAM or in an MMIO hole. */
        void *p = virtio_mem_ptr(vq->mem, d->addr, d->len);
        if (!p)
                return -EBADMSG;

        if (d->flags & VRING_DESC_F_WRITE) {
                req->in[req->n_in++] = (struct iovec){p, d->len};
                req->in_len += d->len;
        } else {
                /* §2.7.5.2: device-readable descriptors come before device-writable. */
                if (req->n_in > 0)
                        return -EBADMSG;
                req->out[req->n_out++] = (struct iovec){p, d->len};
                req->out_len += d->len;
        }
        return 0;
}

/* Switch the walk to an indirect table (§2.7.5.3). */
static int walk_enter_indirect(struct iov_virtq *vq, const struct vring_desc *d,
                               const struct vring_desc **table, uint32_t *table_size)
{
        /* §2.7.5.3.1: only with the feature, never with NEXT, never nested; the table is
         * a whole number of descriptors and no longer than one chain may be. */
        if (!vq->indirect_desc || (d->flags & VRING_DESC_F_NEXT))
                return -EBADMSG;
        if (d->len == 0 || d->len % sizeof(struct vring_desc) != 0 ||
            d->len / sizeof(struct vring_desc) > IOV_VIRTQ_MAX_SEGS)
                return -EBADMSG;
        const struct vring_desc *t = virtio_mem_ptr(vq->mem, d->addr, d->len);
        if (!t)
                return -EBADMSG;
        *table = t;
        *table_size = d->len / sizeof(struct vring_desc);
        return 0;
}

static int virtq_walk(struct iov_virtq *vq, uint16_t head, struct iov_virtq_req *req)
{
        const struct vring_desc *table = vq->desc;
        uint32_t table_size = vq->size, i = head, visited = 0, direct = 0;
        bool indirect = false;
        int r;

        req->head = head;
        req->n_out = req->n_in = 0;
        req->out_len = req->in_len = 0;

        for (;;) {
                struct vring_desc d;

                /* The count bounds the walk, so a loop in next ends here too. */
                if (++visited > IOV_VIRTQ_MAX_SEGS)
                        return -EBADMSG;
                /* §2.7.5: a direct chain is no longer than the queue. */
                if (!indirect && ++direct > vq->size)
                        return -EBADMSG;
                desc_fetch(table, i, &d);

                if (d.flags & VRING_DESC_F_INDIRECT) {
                        if (indirect)
                                return -EBADMSG;
                        r = walk_enter_indirect(vq, &d, &table, &table_size);
                        if (r < 0)
                                return r;
                        indirect = true;
                        i = 0;
                        continue;
                }
                r = req_add_segment(vq, req, &d);
                if (r < 0)
                        return r;
                if (!(d.flags & VRING_DESC_F_NEXT))
                        return 0;
                if (d.next >= table_size)
                        return -EBADMSG;
                i = d.next;
        }
}

bool virtq_has_avail(struct iov_virtq *vq)
{
        if (!vq->enabled || vq->broken)
                return false;
        return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
}

int virtq_pop(struct iov_virtq *vq, struct iov_virtq_req *req)
{
        if (vq->broken)
                return -EBADMSG;
        if (!vq->enabled)
                return 0;

        /* Acquire: the ring entries and descriptors the driver wrote before it published
         * idx are visible once we see idx (§2.7.13.3). */
        uint16_t avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
        uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
        if (pending == 0)
                return 0;
        /* More entries than slots: the driver's index is garbage (§2.7.6). */
        if (pending > vq->size)
                return virtq_break(vq);

        uint16_t head = load16(&vq->avail->ring[vq->last_avail % vq->size]);
        if (head >= vq->size)
                return virtq_break(vq);
        if (virtq_walk(vq, head, req) < 0)
                return virtq_break(vq);

        vq->last_avail++;
        return 1;
}

void virtq_unpop(struct iov_virtq *vq)
{
        vq->last_avail--;
}

int virtq_fill(struct iov_virtq *vq, uint16_t head, uint32_t written)
{
        if (vq->broken)
                return -EBADMSG;
        if (!vq->enabled)
                return -ENODEV;

        struct vring_used_elem *e = &vq->used->ring[vq->used_idx % vq->size];
        __atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
        __atomic_store_n(&e->len, written, __ATOMIC_RELAXED);
        vq->used_idx++;
        return 0;
}

void virtq_flush(struct iov_virtq *vq)
{
        if (!vq->enabled || vq->broken)
                return;
        /* Release: the elements and the data written into the buffers are visible
         * before the driver sees the new index (§2.7.8); one store for a whole batch. */
        __atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

int virtq_push(struct iov_virtq *vq, uint16_t head, uint32_t written)
{
        int r = virtq_fill(vq, head, written);
        if (r < 0)
                return r;
        virtq_flush(vq);
        return 0;
}

bool virtq_should_notify(struct iov_virtq *vq)
{
        if (!vq->enabled || vq->broken)
                return false;
        /* The used index store must be visible before we read the driver's wish, or
         * both sides may wait for each other (§2.7.7). */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);

        if (!vq->event_idx)
                return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);

        uint16_t old = vq->signalled_used, new = vq->used_idx;
        bool valid = vq->signalled_used_valid;
        vq->signalled_used = new;
        vq->signalled_used_valid = true;
        if (!valid)
                return true;
        /* §2.7.7.2: interrupt when used_event lies in [old, new). */
        uint16_t event = load16(used_event_ptr(vq));
        return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void virtq_disable_notify(struct iov_virtq *vq)
{
        if (!vq->enabled || vq->broken)
                return;
        /* §2.7.10: with EVENT_IDX the driver kicks only when avail->idx passes
         * avail_event, which stays behind while we drain the ring: nothing to write.
         * Without it, the flag asks the driver not to kick at all (§2.7.7.1). */
        if (!vq->event_idx)
                __atomic_store_n(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}

bool virtq_enable_notify(struct iov_virtq *vq)
{
        if (!vq->enabled || vq->broken)
                return false;
        if (vq->event_idx)
                /* §2.7.10: kick us when the entry after the ones we consumed appears. */
                __atomic_store_n(avail_event_ptr(vq), vq->last_avail, __ATOMIC_RELAXED);
        else
                __atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
        /* The driver may have added entries before it saw our request; look again. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return virtq_has_avail(vq);
}

bool virtq_enable_notify_beyond(struct iov_virtq *vq, uint16_t seen)
{
        if (!vq->enabled || vq->broken)
                return false;
        /* §2.7.10: the driver kicks once avail->idx passes avail_event; entries before
         * seen are there but too few, so only a new one is worth a kick. */
        if (vq->event_idx)
                __atomic_store_n(avail_event_ptr(vq), seen, __ATOMIC_RELAXED);
        else
                __atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != seen;
}

/* Walk iov from byte skip on, copying up to len bytes to it (to_iov) or from it. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf, size_t len,
                       bool to_iov)
{
        size_t done = 0;

        for (unsigned i = 0; i < n && done < len; i++) {
                if (skip >= iov[i].iov_len) {
                        skip -= iov[i].iov_len;
                        continue;
                }
                size_t chunk = iov[i].iov_len - skip;
                if (chunk > len - done)
                        chunk = len - done;
                uint8_t *seg = (uint8_t *)iov[i].iov_base + skip;
                if (to_iov)
                        memcpy(seg, buf + done, chunk);
                else
                        memcpy(buf + done, seg, chunk);
                done += chunk;
                skip = 0;
        }
        return done;
}

size_t virtio_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
        return iov_copy(iov, n, skip, buf, len, false);
}

size_t virtio_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
                           size_t len)
{
        /* Only read through buf: iov_copy writes to it only when to_iov is false. */
        return iov_copy(iov, n, skip, (uint8_t *)buf, len, true);
}

unsigned virtq_iov_skip(const struct iovec *in, unsigned n, size_t skip, struct iovec *out,
                        unsigned max)
{
        unsigned k = 0;

        for (unsigned i = 0; i < n && k < max; i++) {
                struct iovec v = in[i];
                if (skip >= v.iov_len) {
                        skip -= v.iov_len;
                        continue;
                }
                v.iov_base = (uint8_t *)v.iov_base + skip;
                v.iov_len -= skip;
                skip = 0;
                out[k++] = v;
        }
        return k;
}
