/* SPDX-License-Identifier: MIT */
/*
 * sysfs-limit: the raw sysfs work of one allocation and release of a driverless function,
 * with nothing around it (no HTTP, no state file, no inventory): the limit iovd's
 * allocate+release latency is compared with.
 *
 *   allocate: driver_override = vfio-pci, drivers_probe, wait for driver -> vfio-pci
 *   release:  reset, unbind from vfio-pci, wait for no driver, clear driver_override
 *
 * Usage: sysfs-limit SYSFS_ROOT ROUNDS ADDRESS...  (addresses used in turn); prints one
 * line per round: the microseconds it took.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define POLL_USEC 50

static int write_attr(const char *root, const char *a, const char *b, const char *c,
                      const char *value)
{
        _cleanup_free_ char *path = util_path_join(root, a, b, c, NULL);
        if (!path)
                return -ENOMEM;
        return util_write_attr(path, value);
}

/* Wait until the device's driver is want (NULL: none), polling readlink. */
static int wait_driver(const char *root, const char *address, const char *want)
{
        _cleanup_free_ char *link =
                util_path_join(root, "bus/pci/devices", address, "driver", NULL);
        if (!link)
                return -ENOMEM;
        for (unsigned i = 0; i < 5000000 / POLL_USEC; i++) {
                char target[512];
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n < 0 && !want)
                        return 0;
                if (n >= 0 && want) {
                        target[n] = '\0';
                        const char *base = strrchr(target, '/');
                        if (streq(base ? base + 1 : target, want))
                                return 0;
                }
                util_sleep_usec(POLL_USEC);
        }
        return -ETIMEDOUT;
}

static int one_round(const char *root, const char *address)
{
        int r = write_attr(root, "bus/pci/devices", address, "driver_override", "vfio-pci");
        if (r == 0)
                r = write_attr(root, "bus/pci", "drivers_probe", NULL, address);
        if (r == 0)
                r = wait_driver(root, address, "vfio-pci");
        if (r == 0)
                r = write_attr(root, "bus/pci/devices", address, "reset", "1");
        if (r == 0)
                r = write_attr(root, "bus/pci/drivers/vfio-pci", "unbind", NULL, address);
        if (r == 0)
                r = wait_driver(root, address, NULL);
        if (r == 0)
                r = write_attr(root, "bus/pci/devices", address, "driver_override", "\n");
        return r;
}

int main(int argc, char **argv)
{
        uint64_t rounds;
        if (argc < 4 || util_parse_u64(argv[2], 10, &rounds) < 0) {
                fprintf(stderr, "Usage: sysfs-limit SYSFS_ROOT ROUNDS ADDRESS...\n");
                return 2;
        }
        for (uint64_t i = 0; i < rounds; i++) {
                const char *address = argv[3 + i % (uint64_t)(argc - 3)];
                uint64_t start = util_now_usec();
                int r = one_round(argv[1], address);
                if (r < 0) {
                        fprintf(stderr, "sysfs-limit: %s: %s\n", address, strerror(-r));
                        return 1;
                }
                printf("%llu\n", (unsigned long long)(util_now_usec() - start));
        }
        return 0;
}
