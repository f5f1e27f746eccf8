/* SPDX-License-Identifier: MIT */
/* iommu: the group list derived from an inventory snapshot instead of a second scan. */
#include "iommu/iommu.h"
#include "util/util.h"

struct member {
        unsigned group;
        struct iov_pci_address address;
};

static int compare_members(const void *a, const void *b)
{
        const struct member *x = a, *y = b;
        if (x->group != y->group)
                return x->group < y->group ? -1 : 1;
        return pci_address_compare(&x->address, &y->address);
}

static int collect_members(const struct iov_pci_inventory *inv, struct member **ret, size_t *ret_n)
{
        struct member *members = calloc(inv->n_devices ? inv->n_devices : 1, sizeof(*members));
        if (!members)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < inv->n_devices; i++)
                if (inv->devices[i].iommu_group >= 0)
                        members[n++] = (struct member){(unsigned)inv->devices[i].iommu_group,
                                                       inv->devices[i].address};
        qsort(members, n, sizeof(*members), compare_members);
        *ret = members;
        *ret_n = n;
        return 0;
}

/* members[first..end) share a group. */
static int fill_group(const struct member *members, size_t first, size_t end,
                      struct iov_iommu_group *g)
{
        g->id = members[first].group;
        g->n_devices = end - first;
        g->devices = calloc(g->n_devices, sizeof(*g->devices));
        if (!g->devices)
                return -ENOMEM;
        for (size_t i = first; i < end; i++)
                g->devices[i - first] = members[i].address;
        return 0;
}

int iommu_groups_from_inventory(const struct iov_pci_inventory *inventory,
                                struct iov_iommu_group **ret, size_t *ret_n)
{
        if (!inventory)
                return -EINVAL;
        _cleanup_free_ struct member *members = NULL;
        size_t n = 0;
        int r = collect_members(inventory, &members, &n);
        if (r < 0)
                return r;
        struct iov_iommu_group *groups = calloc(n ? n : 1, sizeof(*groups));
        if (!groups)
                return -ENOMEM;
        size_t n_groups = 0;
        for (size_t first = 0, end; first < n; first = end) {
                for (end = first + 1; end < n && members[end].group == members[first].group;)
                        end++;
                r = fill_group(members, first, end, &groups[n_groups]);
                if (r < 0) {
                        iommu_groups_free(groups, n_groups);
                        return r;
                }
                n_groups++;
        }
        *ret = groups;
        *ret_n = n_groups;
        return 0;
}
