/* SPDX-License-Identifier: MIT */
/*
 * pci: the inventory scan. libpci enumerates the functions (sysfs access method pointed
 * at the configured root) and names them from pci.ids; each function's attributes are
 * read relative to an O_PATH descriptor of its directory, so an attribute costs one short
 * path walk instead of a walk from the root, and identity, class, subsystem and driver
 * come from one read of uevent. No PCI_FILL_* flag is requested: each would cost libpci
 * another open from the root per function for a value uevent already gave.
 */
#include <fcntl.h>
#include "pci/libpci.h"
#include <pthread.h>
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

/* One function; *ret_found false when it vanished since libpci listed it. */
static int read_one(int devices_fd, const struct iov_pci_address *address,
                    struct iov_pci_device *ret, bool *ret_found)
{
        char name[IOV_PCI_ADDRESS_MAX];
        pci_address_format(address, name);
        _cleanup_close_ int fd = openat(devices_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                *ret_found = false;
                return errno == ENOENT ? 0 : -errno;
        }
        int r = pci_device_read_at(fd, address, ret);
        if (r == -ENOENT && faccessat(fd, ".", F_OK, 0) < 0) {
                *ret_found = false;
                return 0;
        }
        *ret_found = r == 0;
        return r;
}

/* The work of one thread: every stride-th function from first. */
struct scan_worker {
        pthread_t thread;
        int devices_fd;
        const struct iov_pci_address *addresses;
        struct iov_pci_device *devices;
        bool *found;
        size_t n, first, stride;
        int result;
};

static void *scan_worker_run(void *userdata)
{
        struct scan_worker *w = userdata;
        for (size_t i = w->first; i < w->n && w->result == 0; i += w->stride)
                w->result = read_one(w->devices_fd, &w->addresses[i], &w->devices[i], &w->found[i]);
        return NULL;
}

/* The kernel's path walk dominates (one per attribute): on a large host the functions are
 * read by a few threads, which scales with cores; small hosts stay single-threaded. */
static unsigned scan_threads(size_t n)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 256 || cpus < 2)
                return 1;
        return cpus > 4 ? 4u : (unsigned)cpus;
}

static int read_all(int devices_fd, const struct iov_pci_address *addresses, size_t n,
                    struct iov_pci_inventory *inv)
{
        _cleanup_free_ bool *found = calloc(n ? n : 1, sizeof(bool));
        inv->devices = calloc(n ? n : 1, sizeof(*inv->devices));
        if (!found || !inv->devices)
                return -ENOMEM;
        struct scan_worker workers[4];
        unsigned n_workers = scan_threads(n), started = 0;
        for (unsigned t = 0; t < n_workers; t++) {
                workers[t] = (struct scan_worker){.devices_fd = devices_fd,
                                                  .addresses = addresses,
                                                  .devices = inv->devices,
                                                  .found = found,
                                                  .n = n,
                                                  .first = t,
                                                  .stride = n_workers};
                if (t == 0 ||
                    pthread_create(&workers[t].thread, NULL, scan_worker_run, &workers[t]) != 0)
                        continue;
                started |= 1u << t;
        }
        /* The calling thread does share 0, and the share of any thread that did not start. */
        for (unsigned t = 0; t < n_workers; t++)
                if (!(started & (1u << t)))
                        scan_worker_run(&workers[t]);
        int r = 0;
        for (unsigned t = 0; t < n_workers; t++) {
                if (started & (1u << t))
                        pthread_join(workers[t].thread, NULL);
                if (r == 0)
                        r = workers[t].result;
        }
        /* Compact: vanished functions leave no hole. */
        for (size_t i = 0; i < n; i++) {
                if (found[i])
                        inv->devices[inv->n_devices++] = inv->devices[i];
        }
        return r;
}

/* Enumeration through libpci, inside its error guard: the addresses only. */
static int list_with(struct pci_access *a, const char *bus_path, struct iov_pci_address **ret,
                     size_t *ret_n)
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
        struct iov_pci_address *addresses = calloc(n ? n : 1, sizeof(*addresses));
        if (!addresses)
                return -ENOMEM;
        n = 0;
        for (struct pci_dev *p = a->devices; p; p = p->next)
                if (p->domain >= 0)
                        addresses[n++] = (struct iov_pci_address){
                                .domain = (uint32_t)p->domain,
                                .bus = p->bus,
                                .slot = p->dev,
                                .function = p->func,
                        };
        *ret = addresses;
        *ret_n = n;
        return 0;
}

static int list_functions(const char *bus_path, struct iov_pci_address **ret, size_t *ret_n)
{
        struct pci_access *a = pci_libpci_alloc();
        if (!a)
                return -ENOMEM;
        jmp_buf jump, *outer = pci_libpci_jump;
        volatile int r = -EIO;
        pci_libpci_jump = &jump;
        if (setjmp(jump) == 0)
                r = list_with(a, bus_path, ret, ret_n);
        pci_libpci_jump = outer;
        pci_cleanup(a);
        return r;
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
        _cleanup_free_ struct iov_pci_address *addresses = NULL;
        size_t n = 0;
        int r = list_functions(bus_path, &addresses, &n);
        if (r < 0)
                return r;
        struct iov_pci_inventory *inv = calloc(1, sizeof(*inv));
        if (!inv)
                return -ENOMEM;
        r = read_all(devices_fd, addresses, n, inv);
        if (r < 0) {
                pci_inventory_free(inv);
                return r;
        }
        qsort(inv->devices, inv->n_devices, sizeof(*inv->devices), compare_devices);
        inv->scanned_usec = util_now_usec();
        *ret = inv;
        return 0;
}
