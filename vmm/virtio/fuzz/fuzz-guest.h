/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer targets: the fuzz input becomes the start of a small guest RAM
 * (rings, descriptors, request headers and data all come from it), with a hole above it
 * so addresses just past RAM and inside the hole are exercised as well. ASan turns any
 * host access outside what the accessor handed out into a crash.
 */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/virtio.h"

#define FUZZ_RAM_SIZE   (256u << 10)
#define FUZZ_HOLE_START (128u << 10) /* [128 KiB, 192 KiB) is MMIO */
#define FUZZ_HOLE_END   (192u << 10)

struct fuzz_guest {
        uint8_t *ram;
        struct iov_virtio_mem mem;
};

static inline void *fuzz_mem_ptr(void *opaque, uint64_t gpa, uint64_t len)
{
        struct fuzz_guest *g = opaque;

        if (gpa >= FUZZ_RAM_SIZE || len > FUZZ_RAM_SIZE - gpa)
                return NULL;
        if (gpa < FUZZ_HOLE_END && gpa + len > FUZZ_HOLE_START)
                return NULL;
        return g->ram + gpa;
}

/* Exactly FUZZ_RAM_SIZE bytes, so ASan reports any access one byte past RAM. */
static inline int fuzz_guest_init(struct fuzz_guest *g, const uint8_t *data, size_t size)
{
        g->ram = calloc(1, FUZZ_RAM_SIZE);
        if (!g->ram)
                return -1;
        memcpy(g->ram, data, size < FUZZ_RAM_SIZE ? size : FUZZ_RAM_SIZE);
        g->mem = (struct iov_virtio_mem){.ptr = fuzz_mem_ptr, .opaque = g};
        return 0;
}

static inline void fuzz_guest_fini(struct fuzz_guest *g)
{
        free(g->ram);
}
