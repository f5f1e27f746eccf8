/* SPDX-License-Identifier: MIT */
/*
 * I/O buses: the port I/O space and the MMIO space. A device model registers address
 * ranges with a callback; the vCPU loop hands each PIO / MMIO exit to vmm_bus_access().
 *
 * Accesses to nothing read as all ones and drop writes (what a PC's bus does with no
 * device decoding the address: master abort, PCI r3.0 §6.1); both are counted, and logged
 * at debug level, rate-limited.
 *
 * Callbacks run on vCPU threads with no bus lock held, so a callback may re-register
 * ranges (a BAR move triggered by a config write).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* offset is relative to the registered base; data holds len (1, 2, 4 or 8) bytes,
 * little-endian; for reads the callback fills it. */
typedef void (*iov_bus_access_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                                  bool is_write);

#define IOV_BUS_MAX_COUNTERS 64

/* Per-device access counter, kept by name so it survives a BAR move. */
struct iov_bus_counter {
        char name[32];
        _Atomic uint64_t accesses;
};

struct iov_bus_range {
        uint64_t base;
        uint64_t len;
        iov_bus_access_fn fn;
        void *opaque;
        struct iov_bus_counter *counter;
};

struct iov_bus {
        const char *name; /* "pio" or "mmio" */
        pthread_rwlock_t lock;
        struct iov_bus_range *ranges; /* sorted by base, never overlapping */
        size_t n_ranges, allocated;
        struct iov_bus_counter counters[IOV_BUS_MAX_COUNTERS];
        unsigned n_counters;
        _Atomic uint64_t unhandled_reads;
        _Atomic uint64_t unhandled_writes;
};

int vmm_bus_init(struct iov_bus *bus, const char *name);
void vmm_bus_done(struct iov_bus *bus);

/* Register [base, base + len) for a device called name (counted under that name).
 * -EEXIST when it overlaps a registered range, -EINVAL for len 0 or a wrapping range. */
int vmm_bus_register(struct iov_bus *bus, uint64_t base, uint64_t len, iov_bus_access_fn fn,
                     void *opaque, const char *name);
/* Remove the range that starts at base and belongs to opaque; -ENOENT if none. */
int vmm_bus_unregister(struct iov_bus *bus, uint64_t base, void *opaque);

/* Dispatch one access. Returns true when a device handled it; false for an access to
 * nothing (the read is answered with all ones, the write dropped, both counted). An
 * access that straddles the end of a range is treated as unhandled. */
bool vmm_bus_access(struct iov_bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

/* Call fn for each device counter with a non-zero count. */
void vmm_bus_for_each_counter(struct iov_bus *bus,
                              void (*fn)(void *userdata, const char *device, uint64_t accesses),
                              void *userdata);
