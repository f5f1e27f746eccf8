/* SPDX-License-Identifier: MIT */
/* Address-range dispatch for the PIO and MMIO buses. */
#include <inttypes.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/bus.h"

int vmm_bus_init(struct iov_bus *bus, const char *name)
{
        *bus = (struct iov_bus){.name = name};
        int r = pthread_rwlock_init(&bus->lock, NULL);
        return r > 0 ? -r : 0;
}

void vmm_bus_done(struct iov_bus *bus)
{
        if (!bus || !bus->name)
                return;
        free(bus->ranges);
        bus->ranges = NULL;
        pthread_rwlock_destroy(&bus->lock);
        bus->name = NULL;
}

/* Called with the write lock held. */
static struct iov_bus_counter *bus_get_counter(struct iov_bus *bus, const char *name)
{
        for (unsigned i = 0; i < bus->n_counters; i++)
                if (strncmp(bus->counters[i].name, name, sizeof(bus->counters[i].name) - 1) == 0)
                        return &bus->counters[i];
        if (bus->n_counters == IOV_BUS_MAX_COUNTERS)
                return &bus->counters[IOV_BUS_MAX_COUNTERS - 1]; /* shared overflow slot */
        struct iov_bus_counter *c = &bus->counters[bus->n_counters++];
        snprintf(c->name, sizeof(c->name), "%s", name);
        return c;
}

/* Index of the first range whose base is > addr. */
static size_t bus_upper_bound(const struct iov_bus *bus, uint64_t addr)
{
        size_t lo = 0, hi = bus->n_ranges;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (bus->ranges[mid].base <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static int bus_insert_locked(struct iov_bus *bus, const struct iov_bus_range *range)
{
        size_t i = bus_upper_bound(bus, range->base);
        if (i > 0) {
                const struct iov_bus_range *prev = &bus->ranges[i - 1];
                if (range->base - prev->base < prev->len)
                        return -EEXIST;
        }
        if (i < bus->n_ranges && bus->ranges[i].base - range->base < range->len)
                return -EEXIST;

        if (bus->n_ranges == bus->allocated) {
                size_t n = bus->allocated ? bus->allocated * 2 : 16;
                struct iov_bus_range *bigger = realloc(bus->ranges, n * sizeof(*bigger));
                if (!bigger)
                        return -ENOMEM;
                bus->ranges = bigger;
                bus->allocated = n;
        }
        memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->n_ranges - i) * sizeof(*range));
        bus->ranges[i] = *range;
        bus->n_ranges++;
        return 0;
}

int vmm_bus_register(struct iov_bus *bus, uint64_t base, uint64_t len, iov_bus_access_fn fn,
                     void *opaque, const char *name)
{
        if (len == 0 || base + len - 1 < base || !fn)
                return -EINVAL;

        pthread_rwlock_wrlock(&bus->lock);
        struct iov_bus_range range = {
                .base = base,
                .len = len,
                .fn = fn,
                .opaque = opaque,
                .counter = bus_get_counter(bus, name ? name : "?"),
        };
        int r = bus_insert_locked(bus, &range);
        pthread_rwlock_unlock(&bus->lock);
        return r;
}

int vmm_bus_unregister(struct iov_bus *bus, uint64_t base, void *opaque)
{
        int r = -ENOENT;

        pthread_rwlock_wrlock(&bus->lock);
        size_t i = bus_upper_bound(bus, base);
        if (i > 0 && bus->ranges[i - 1].base == base && bus->ranges[i - 1].opaque == opaque) {
                memmove(&bus->ranges[i - 1], &bus->ranges[i],
                        (bus->n_ranges - i) * sizeof(bus->ranges[0]));
                bus->n_ranges--;
                r = 0;
        }
        pthread_rwlock_unlock(&bus->lock);
        return r;
}

static void bus_log_unhandled(struct iov_bus *bus, uint64_t addr, uint32_t len, bool is_write,
                              uint64_t count)
{
        /* The first few, then one in 4096: a guest probing in a loop must not flood. */
        if (count > 16 && count % 4096 != 0)
                return;
        log_debug("%s: unhandled %s of %u bytes at 0x%" PRIx64 " (%" PRIu64 " so far)", bus->name,
                  is_write ? "write" : "read", len, addr, count);
}

bool vmm_bus_access(struct iov_bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
        struct iov_bus_range range = {.fn = NULL};

        pthread_rwlock_rdlock(&bus->lock);
        size_t i = bus_upper_bound(bus, addr);
        if (i > 0) {
                const struct iov_bus_range *r = &bus->ranges[i - 1];
                if (addr - r->base < r->len && len <= r->len - (addr - r->base))
                        range = *r;
        }
        pthread_rwlock_unlock(&bus->lock);

        if (range.fn) {
                atomic_fetch_add_explicit(&range.counter->accesses, 1, memory_order_relaxed);
                range.fn(range.opaque, addr - range.base, data, len, is_write);
                return true;
        }

        uint64_t count;
        if (is_write) {
                count = atomic_fetch_add(&bus->unhandled_writes, 1) + 1;
        } else {
                count = atomic_fetch_add(&bus->unhandled_reads, 1) + 1;
                memset(data, 0xff, len);
        }
        bus_log_unhandled(bus, addr, len, is_write, count);
        return false;
}

void vmm_bus_for_each_counter(struct iov_bus *bus,
                              void (*fn)(void *userdata, const char *device, uint64_t accesses),
                              void *userdata)
{
        pthread_rwlock_rdlock(&bus->lock);
        unsigned n = bus->n_counters;
        pthread_rwlock_unlock(&bus->lock);
        for (unsigned i = 0; i < n; i++) {
                uint64_t v = atomic_load(&bus->counters[i].accesses);
                if (v)
                        fn(userdata, bus->counters[i].name, v);
        }
}
