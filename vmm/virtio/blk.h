/* SPDX-License-Identifier: MIT */
/*
 * Private to virtio-blk: the device (blk.c: requests, config space, options) and its
 * data path (blk-io.c: io_uring with many requests in flight, or pread/pwrite where
 * io_uring is unavailable; discard and write-zeroes through fallocate).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_blk.h>

#include "vmm/virtio/virtio.h"

#define IOV_BLK_SECTOR_SIZE 512u
#define IOV_BLK_QUEUE_SIZE  256u /* entries per request queue we offer */
/* Discard and write-zeroes limits in config space (§5.2.4): sectors per segment and
 * segments per request. */
#define IOV_BLK_DISCARD_MAX_SECTORS (1u << 22) /* 2 GiB */
#define IOV_BLK_DISCARD_MAX_SEG     32u

struct blk_uring;

/* A read, write or flush the device took and has not returned yet: slot q * queue size +
 * head (the driver cannot reuse a head before we return it, §2.7.13.3). */
struct blk_inflight {
        struct iovec *iov; /* the data part, malloc'ed */
        unsigned n_iov;
        uint64_t offset; /* bytes into the image */
        uint64_t len;    /* data bytes */
        uint8_t *status; /* the request's status byte, in guest memory */
        uint8_t type;    /* VIRTIO_BLK_T_IN, _OUT or _FLUSH */
        bool busy;
};

struct blk {
        int fd;          /* the image; O_DIRECT with "direct" */
        int fd_buffered; /* with "direct": the image through the page cache, for what
                          * O_DIRECT refuses (misaligned buffers); otherwise -1 */
        bool read_only;
        bool no_io_uring; /* the synchronous path only (options.no_io_uring) */
        uint64_t sectors;
        char serial[VIRTIO_BLK_ID_BYTES];
        struct virtio_blk_config config;
        struct iovec data[IOV_VIRTQ_MAX_SEGS]; /* the data part of the current request */
        struct blk_inflight *inflight;         /* num_queues * IOV_BLK_QUEUE_SIZE slots */
        struct blk_uring *uring;               /* NULL: synchronous */
        uint32_t completed_queues;             /* bit q: completions filled, not flushed */
        /* Reads and writes in flight per queue: while there are some, their completion
         * serves the queue, so the driver's kicks are off (ops->queue_busy). */
        unsigned queue_rw_inflight[IOV_VIRTIO_BLK_MAX_QUEUES];
};

/* blk-io.c */
/* Start the asynchronous path for num_queues queues; without io_uring (no kernel
 * support, a sandbox that refuses it) the device stays synchronous and this returns 0. */
int blk_io_start(struct iov_virtio_dev *dev, unsigned num_queues);
/* Wait for every request in flight and drop it (reset), or also end the ring (destroy). */
void blk_io_drain(struct iov_virtio_dev *dev);
void blk_io_stop(struct iov_virtio_dev *dev);
/* A read (write false) or write of the n data iovecs at sector: IOV_VIRTIO_REQ_ASYNC
 * when it went to the ring, else 0 with *ret_status (done synchronously). */
int blk_io_rw(struct iov_virtio_dev *dev, unsigned q, const struct iov_virtq_req *req, bool write,
              unsigned n, uint64_t sector, uint8_t *ret_status);
int blk_io_flush(struct iov_virtio_dev *dev, unsigned q, const struct iov_virtq_req *req,
                 uint8_t *ret_status);
/* After a batch of requests: hand the prepared ones to the kernel in one call. */
void blk_io_submit(struct iov_virtio_dev *dev);
/* ops->complete: finished requests into the used rings, one flush per queue, then each
 * such queue is served again (its notifications were off while it was busy). */
int blk_io_complete(struct iov_virtio_dev *dev);
/* ops->queue_busy: reads or writes of queue q in flight. */
bool blk_io_queue_busy(struct iov_virtio_dev *dev, unsigned q);
/* pread/pwrite of every byte of iov at offset (O_DIRECT refusals redone buffered). */
int blk_io_sync(struct blk *b, bool write, const struct iovec *iov, unsigned n, uint64_t offset);
/* DISCARD and WRITE_ZEROES (§5.2.6): segments checked against the limits and the
 * capacity first, so a bad one changes nothing; then fallocate. Returns the status. */
uint8_t blk_io_discard(struct iov_virtio_dev *dev, const struct iov_virtq_req *req, uint32_t type);
