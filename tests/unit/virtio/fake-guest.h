/* SPDX-License-Identifier: MIT */
/*
 * A pretend guest for the virtio tests: RAM in a plain buffer with an MMIO hole, and a
 * driver side that writes split rings the way a guest driver would (or, for the bad
 * cases, the way a hostile one would).
 */
#pragma once

#include <stdint.h>

#include "vmm/virtio/virtio.h"

#define FAKE_RAM_SIZE   (4u << 20)
#define FAKE_HOLE_START 0x200000u /* [2 MiB, 3 MiB) is not RAM */
#define FAKE_HOLE_END   0x300000u
#define FAKE_BUF_BASE   0x100000u /* test data buffers are allocated from here */

struct fake_guest {
        uint8_t *ram;
        uint64_t next_buf;
        struct iov_virtio_mem mem;
};

struct fake_ring {
        struct fake_guest *guest;
        struct iov_virtq *vq;
        uint16_t size;
        uint16_t avail_idx;
        uint16_t next_desc;
        uint16_t last_used;
};

struct fake_buf {
        uint64_t gpa;
        uint32_t len;
        bool writable;
};

int fake_guest_init(struct fake_guest *g);
void fake_guest_fini(struct fake_guest *g);
void *fake_guest_ptr(struct fake_guest *g, uint64_t gpa);
/* Allocate len bytes of buffer space (16-byte aligned) and return its address. */
uint64_t fake_guest_alloc(struct fake_guest *g, uint32_t len);

/* Lay out a queue of `size` entries at ring_gpa and point vq at it (not enabled). */
void fake_ring_init(struct fake_ring *r, struct fake_guest *g, struct iov_virtq *vq, uint16_t size,
                    uint64_t ring_gpa);
void fake_ring_set_desc(struct fake_ring *r, uint16_t i, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next);
/* Publish head in the next avail slot and bump avail->idx by `advance` (normally 1). */
void fake_ring_publish(struct fake_ring *r, uint16_t head, uint16_t advance);
/* Write a well-formed direct chain and publish it; returns its head. */
uint16_t fake_ring_add(struct fake_ring *r, const struct fake_buf *bufs, unsigned n);
/* Write an indirect table at table_gpa holding bufs, one descriptor pointing at it. */
uint16_t fake_ring_add_indirect(struct fake_ring *r, uint64_t table_gpa,
                                const struct fake_buf *bufs, unsigned n);
/* Next used element, if any: 1 and id/len, 0 when none. */
int fake_ring_get_used(struct fake_ring *r, uint32_t *ret_id, uint32_t *ret_len);
void fake_ring_set_used_event(struct fake_ring *r, uint16_t event);
uint16_t fake_ring_avail_event(struct fake_ring *r);
void fake_ring_set_avail_flags(struct fake_ring *r, uint16_t flags);

/* Drive dev through the driver's init sequence (§3.1.1) with the common features, lay
 * out each queue's rings (queue q at 0x1000 + q * 0x10000), enable them, set DRIVER_OK.
 * rings[] gets one entry per queue. Returns the final status. */
uint8_t fake_dev_start(struct iov_virtio_dev *dev, struct fake_guest *g, struct fake_ring *rings,
                       uint16_t queue_size);
/* Wait for the requests dev took asynchronously (its completion fd) and let it complete
 * them, until none is in flight. *ret_rounds: how many completion batches that took.
 * 0, or -ETIMEDOUT after 5 s without a completion. */
int fake_dev_settle(struct iov_virtio_dev *dev, unsigned *ret_rounds);
