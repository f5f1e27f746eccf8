/* SPDX-License-Identifier: MIT */
/*
 * pci: the inventory scan. libpci enumerates the functions and reads their identity
 * (sysfs access method pointed at the configured root); the attributes libpci does not
 * know are read relative to an O_PATH descriptor of each device directory, so each
 * attribute costs one short path walk instead of a walk from the root.
 */
#include <fcntl.h>
#include "pci/libpci.h"
#include <stdio.h>

#include "pci/pci-internal.h"
#include "util/util.h"

static int compare_devices(const void *a, const void *b)
{
        const struct iov_pci_device *x = a, *y = b;
        return pci_address_compare(&x->address, &y->address);
}

void pci_inventory_free(struct iov_pci_inventory *inventory)
{
        if (!inventory)
                return;
        for (size_t i = 0; i < inventory->n_devices; i++)
                pci_device_clear(&inventory->devices[i]);
        free(inventory->devices);
        free(inventory);
}

const struct iov_pci_device *pci_inventory_find(const struct iov_pci_inventory *inventory,
                                                const struct iov_pci_address *address)
{
        if (!inventory || !address)
                return NULL;
        struct iov_pci_device key = {.address = *address};
        return bsearch(&key, inventory->devices, inventory->n_devices,
                       sizeof(struct iov_pci_device), compare_devices);
}

/* One function from libpci's list; 0 and nothing added when it vanished meanwhile. */
static int scan_one(int devices_fd, struct pci_dev *p, struct iov_pci_inventory *inv)
{
        if (p->domain < 0)
                return 0;
        struct iov_pci_address address = {
                .domain = (uint32_t)p->domain,
                .bus = p->bus,
                .slot = p->dev,
                .function = p->func,
        };
        char name[IOV_PCI_ADDRESS_MAX];
        pci_address_format(&address, name);
        _cleanup_close_ int fd = openat(devices_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;

        struct iov_pci_device *d = &inv->devices[inv->n_devices];
        d->vendor_id = p->vendor_id;
        d->device_id = p->device_id;
        int r = pci_device_read_at(fd, &address, false, d);
        if (r == -ENOENT && faccessat(fd, ".", F_OK, 0) < 0)
                return 0;
        if (r < 0)
                return r;
        inv->n_devices++;
        return 0;
}

/* Inside the libpci guard: nothing here may own resources a longjmp would leak, except
 * what the caller frees (the access and the inventory). */
static int scan_with(struct pci_access *a, const char *bus_path, int devices_fd,
                     struct iov_pci_inventory *inv)
{
        char param[] = "sysfs.path"; /* libpci's prototype takes non-const strings */
        a->method = PCI_ACCESS_SYS_BUS_PCI;
        if (pci_set_param(a, param, (char *)bus_path) < 0)
                return -EINVAL;
        pci_init(a);
        pci_scan_bus(a);

        size_t n = 0;
        for (struct pci_dev *p = a->devices; p; p = p->next)
                n++;
        inv->devices = calloc(n ? n : 1, sizeof(*inv->devices));
        if (!inv->devices)
                return -ENOMEM;
        for (struct pci_dev *p = a->devices; p; p = p->next) {
                /* Identity only: the rest comes from sysfs below; classes need 24 bits,
                 * which libpci's CLASS field (16 bits) does not carry. */
                pci_fill_info(p, PCI_FILL_IDENT);
                int r = scan_one(devices_fd, p, inv);
                if (r < 0)
                        return r;
        }
        return 0;
}

int pci_inventory_scan(const char *sysfs_root, struct iov_pci_inventory **ret)
{
        _cleanup_free_ char *bus_path = util_path_join(sysfs_root, "bus/pci", NULL);
        _cleanup_free_ char *devices_path = util_path_join(sysfs_root, "bus/pci/devices", NULL);
        if (!bus_path || !devices_path)
                return -ENOMEM;
        /* Checked here so that a missing tree is -ENOENT, not a libpci error. */
        _cleanup_close_ int devices_fd = open(devices_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (devices_fd < 0)
                return -errno;
        struct iov_pci_inventory *inv = calloc(1, sizeof(*inv));
        struct pci_access *a = pci_libpci_alloc();
        if (!inv || !a) {
                free(inv);
                if (a)
                        pci_cleanup(a);
                return -ENOMEM;
        }

        jmp_buf jump, *outer = pci_libpci_jump;
        volatile int r = -EIO;
        pci_libpci_jump = &jump;
        if (setjmp(jump) == 0)
                r = scan_with(a, bus_path, devices_fd, inv);
        pci_libpci_jump = outer;
        pci_cleanup(a);
        if (r < 0) {
                pci_inventory_free(inv);
                return r;
        }
        qsort(inv->devices, inv->n_devices, sizeof(*inv->devices), compare_devices);
        inv->scanned_usec = util_now_usec();
        *ret = inv;
        return 0;
}
