/* SPDX-License-Identifier: MIT */
/*
 * inventory-scan: time pci_inventory_scan() on a tree. Prints one line per run:
 * "scan N usec DEVICES". --runs N (default 1) repeats in the same process; the first run
 * includes loading pci.ids, as a fresh daemon or lspci does. Then "derived N usec X
 * groups G" for iommu_groups_from_inventory() and "groups N usec X groups G" for
 * iommu_groups_scan(), the two ways to list the IOMMU groups next to the scan (not with
 * --scan-only, which times the scan as a whole process does it).
 */
#include <getopt.h>
#include <stdio.h>

#include "iommu/iommu.h"
#include "pci/pci.h"
#include "util/util.h"

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"runs", required_argument, NULL, 'n'},
                {"scan-only", no_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        uint64_t runs = 1;
        bool scan_only = false;
        for (int c; (c = getopt_long(argc, argv, "n:sh", options, NULL)) != -1;) {
                if (c == 'n' && util_parse_u64(optarg, 10, &runs) == 0 && runs > 0)
                        continue;
                if (c == 's') {
                        scan_only = true;
                        continue;
                }
                fprintf(c == 'h' ? stdout : stderr,
                        "Usage: inventory-scan [--runs N] [--scan-only] SYSFS_ROOT\n");
                return c == 'h' ? 0 : 2;
        }
        if (optind != argc - 1) {
                fprintf(stderr, "Usage: inventory-scan [--runs N] [--scan-only] SYSFS_ROOT\n");
                return 2;
        }
        for (uint64_t i = 0; i < runs; i++) {
                struct iov_pci_inventory *inv = NULL;
                uint64_t start = util_now_usec();
                int r = pci_inventory_scan(argv[optind], &inv);
                uint64_t usec = util_now_usec() - start;
                if (r < 0) {
                        fprintf(stderr, "inventory-scan: %s: %s\n", argv[optind], strerror(-r));
                        return 1;
                }
                printf("scan %llu usec %llu devices %zu\n", (unsigned long long)i,
                       (unsigned long long)usec, inv->n_devices);
                if (scan_only) {
                        pci_inventory_free(inv);
                        continue;
                }
                struct iov_iommu_group *groups = NULL;
                size_t n = 0;
                start = util_now_usec();
                r = iommu_groups_from_inventory(inv, &groups, &n);
                usec = util_now_usec() - start;
                if (r < 0) {
                        fprintf(stderr, "inventory-scan: groups from inventory: %s\n",
                                strerror(-r));
                        return 1;
                }
                printf("derived %llu usec %llu groups %zu\n", (unsigned long long)i,
                       (unsigned long long)usec, n);
                iommu_groups_free(groups, n);
                pci_inventory_free(inv);

                groups = NULL;
                n = 0;
                start = util_now_usec();
                r = iommu_groups_scan(argv[optind], &groups, &n);
                usec = util_now_usec() - start;
                if (r < 0) {
                        fprintf(stderr, "inventory-scan: groups: %s\n", strerror(-r));
                        return 1;
                }
                printf("groups %llu usec %llu groups %zu\n", (unsigned long long)i,
                       (unsigned long long)usec, n);
                iommu_groups_free(groups, n);
        }
        return 0;
}
