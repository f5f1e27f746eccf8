/* SPDX-License-Identifier: MIT */
/*
 * daemon_refresh_devices on a generated tree changed behind the daemon's back: the
 * functions named are read again with what they bring in (a VF that came or went its PF,
 * a PF whose VF list changed all its VFs, old and new, and the IOMMU groups of all of
 * them); a VF that stayed (a driver bound or unbound) is read alone; the rest of the
 * snapshot is copied as it was.
 */
#include <criterion/criterion.h>

#include "daemon/runtime.h"
#include "tests/fixtures/fixture.h"

struct env {
        struct fixture *fx;
        struct iov_daemon *d;
};

static struct env env_new(unsigned n_vfs)
{
        struct env e = {0};
        int r = fixture_new(&e.fx);
        cr_assert_eq(r, 0, "fixture_new: %s", strerror(-r));
        r = fixture_add_lab_preset(e.fx);
        cr_assert_eq(r, 0, "fixture_add_lab_preset: %s", strerror(-r));
        r = fixture_set_num_vfs(e.fx, "0000:01:00.0", n_vfs);
        cr_assert_eq(r, 0, "fixture_set_num_vfs(%u): %s", n_vfs, strerror(-r));
        struct iov_daemon_config c;
        cr_assert_eq(daemon_config_init(&c), 0);
        free(c.sysfs_root);
        c.sysfs_root = strdup(fixture_sysfs_root(e.fx));
        cr_assert_eq(daemon_new(&c, &e.d), 0);
        r = daemon_inventory_init(e.d);
        cr_assert_eq(r, 0, "daemon_inventory_init: %s", strerror(-r));
        return e;
}

static void env_free(struct env *e)
{
        daemon_free(e->d);
        fixture_free(e->fx);
}

static const struct iov_pci_device *find(const struct iov_snapshot *s, const char *address)
{
        struct iov_pci_address a;
        cr_assert_eq(pci_address_parse(address, &a), 0, "bad address %s", address);
        return pci_inventory_find(s->pci, &a);
}

/* Behind the daemon's back: the PF's VF count set to n, through 0 as the kernel requires. */
static void env_set_num_vfs(struct env *e, unsigned n)
{
        int r = fixture_set_num_vfs(e->fx, "0000:01:00.0", 0);
        if (r == 0)
                r = fixture_set_num_vfs(e->fx, "0000:01:00.0", n);
        cr_assert_eq(r, 0, "fixture_set_num_vfs(%u): %s", n, strerror(-r));
}

/* daemon_refresh_devices naming one function, as its uevent names it. */
static void env_refresh_one(struct env *e, const char *address)
{
        struct iov_pci_address a;
        cr_assert_eq(pci_address_parse(address, &a), 0, "bad address %s", address);
        int r = daemon_refresh_devices(e->d, &a, 1);
        cr_assert_eq(r, 0, "daemon_refresh_devices: %s", strerror(-r));
}

/* The PF as snapshot s lists it has n VFs. */
static void expect_pf_num_vfs(const struct iov_snapshot *s, unsigned n)
{
        const struct iov_pci_device *pf = find(s, "0000:01:00.0");
        cr_assert_not_null(pf, "PF gone");
        cr_expect_eq(pf->num_vfs, n, "PF num_vfs %u", pf->num_vfs);
}

/* dev (named what) has an IOMMU group, and snapshot s lists that group. */
static void expect_group_listed(const struct iov_snapshot *s, const struct iov_pci_device *dev,
                                const char *what)
{
        cr_assert_geq(dev->iommu_group, 0, "%s has no group", what);
        cr_expect_not_null(daemon_snapshot_find_group(s, (unsigned)dev->iommu_group),
                           "group %d of %s not in the snapshot", dev->iommu_group, what);
}

Test(refresh, a_vf_brings_its_pf_and_a_changed_vf_list)
{
        struct env e = env_new(2);
        _cleanup_snapshot_ struct iov_snapshot *before = daemon_snapshot_get(e.d);
        cr_assert_not_null(find(before, "0000:01:00.2"), "VF 2 missing at start");
        cr_assert_null(find(before, "0000:01:00.3"), "VF 3 present at start");

        /* Behind the daemon's back: 3 VFs instead of 2; only the new VF 3 is named (as
         * its "add" uevent names it). */
        env_set_num_vfs(&e, 3);
        env_refresh_one(&e, "0000:01:00.3");

        _cleanup_snapshot_ struct iov_snapshot *after = daemon_snapshot_get(e.d);
        cr_expect_eq(after->generation, before->generation + 1, "generation %llu after %llu",
                     (unsigned long long)after->generation, (unsigned long long)before->generation);
        expect_pf_num_vfs(after, 3);
        const struct iov_pci_device *vf3 = find(after, "0000:01:00.3");
        cr_assert_not_null(vf3, "the new VF 3 was not read");
        cr_expect(vf3->is_vf, "VF 3 is not a VF");
        expect_group_listed(after, vf3, "VF 3");
        cr_expect_eq(after->pci->n_devices, before->pci->n_devices + 1, "%zu devices, was %zu",
                     after->pci->n_devices, before->pci->n_devices);
        /* Untouched functions are copied with their strings. */
        const struct iov_pci_device *nic = find(after, "0000:00:02.0");
        cr_assert_not_null(nic, "the e1000e vanished");
        cr_expect_str_eq(nic->driver ? nic->driver : "", "e1000e", "driver %s", nic->driver);
        env_free(&e);
}

Test(refresh, a_named_function_that_vanished_is_dropped_with_its_group)
{
        struct env e = env_new(2);
        _cleanup_snapshot_ struct iov_snapshot *before = daemon_snapshot_get(e.d);
        const struct iov_pci_device *vf2 = find(before, "0000:01:00.2");
        cr_assert_not_null(vf2, "VF 2 missing at start");
        int group = vf2->iommu_group;
        cr_assert_geq(group, 0, "VF 2 has no IOMMU group in the lab preset");

        env_set_num_vfs(&e, 1);
        env_refresh_one(&e, "0000:01:00.2");

        _cleanup_snapshot_ struct iov_snapshot *after = daemon_snapshot_get(e.d);
        cr_expect_null(find(after, "0000:01:00.2"), "VF 2 still listed");
        expect_pf_num_vfs(after, 1);
        cr_expect_null(daemon_snapshot_find_group(after, (unsigned)group),
                       "group %d of the removed VF still listed", group);
        cr_expect_not_null(find(after, "0000:01:00.1"), "VF 1 dropped");
        env_free(&e);
}

Test(refresh, a_vf_whose_driver_changed_is_read_alone)
{
        struct env e = env_new(2);
        _cleanup_snapshot_ struct iov_snapshot *before = daemon_snapshot_get(e.d);
        const struct iov_pci_device *vf1 = find(before, "0000:01:00.1");
        cr_assert_not_null(vf1, "VF 1 missing at start");
        cr_assert(!streq_ptr(vf1->driver, "vfio-pci"), "VF 1 on vfio-pci at start");

        /* Behind the daemon's back a third VF, which only its own uevent names; then VF 1
         * bound to vfio-pci (an allocation's bind). */
        env_set_num_vfs(&e, 3);
        int r = fixture_set_driver(e.fx, "0000:01:00.1", "vfio-pci");
        cr_assert_eq(r, 0, "fixture_set_driver: %s", strerror(-r));
        env_refresh_one(&e, "0000:01:00.1");

        _cleanup_snapshot_ struct iov_snapshot *after = daemon_snapshot_get(e.d);
        const struct iov_pci_device *now = find(after, "0000:01:00.1");
        cr_assert_not_null(now, "VF 1 dropped");
        cr_expect_str_eq(now->driver ? now->driver : "none", "vfio-pci", "VF 1's driver %s",
                         now->driver ? now->driver : "none");
        expect_group_listed(after, now, "VF 1");
        /* Its PF was not read: still as the snapshot had it, VF 3 not yet listed. */
        expect_pf_num_vfs(after, 2);
        cr_expect_null(find(after, "0000:01:00.3"), "VF 3 read though nobody named it");
        env_free(&e);
}
