/* SPDX-License-Identifier: MIT */
/*
 * pci: libpci handles that never exit, and vendor/device names from pci.ids. The names
 * database is parsed once per process (about 1.3 MB of text) into libpci's hash and then
 * shared by every scan and single-device read under a lock.
 */
#include "pci/libpci.h"
#include <pthread.h>

#include "pci/pci-internal.h"
#include "util/util.h"

__thread jmp_buf *pci_libpci_jump;

static void libpci_error(char *msg _unused_, ...) __attribute__((noreturn));
static void libpci_error(char *msg _unused_, ...)
{
        if (pci_libpci_jump)
                longjmp(*pci_libpci_jump, 1);
        /* Every libpci call runs inside a guard; getting here is a programming error. */
        abort();
}

static void libpci_quiet(char *msg _unused_, ...)
{
}

struct pci_access *pci_libpci_alloc(void)
{
        struct pci_access *a = pci_alloc();
        if (!a)
                return NULL;
        a->error = libpci_error;
        a->warning = libpci_quiet;
        a->debug = libpci_quiet;
        return a;
}

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pci_access *names_access;

/* 0 with *ret NULL when the database does not know the id. */
static int lookup(int flags, uint16_t vendor_id, uint16_t device_id, char **ret)
{
        char buf[256];
        /* pci.ids only: the udev hwdb is not part of iovd's contract and is slow to miss. */
        flags |= PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB;
        const char *name =
                pci_lookup_name(names_access, buf, sizeof(buf), flags, vendor_id, device_id);
        *ret = name ? strdup(name) : NULL;
        return name && !*ret ? -ENOMEM : 0;
}

static int lookup_locked(uint16_t vendor_id, uint16_t device_id, char **ret_vendor,
                         char **ret_device)
{
        jmp_buf jump, *outer = pci_libpci_jump;
        if (!names_access) {
                names_access = pci_libpci_alloc();
                if (!names_access)
                        return -ENOMEM;
        }
        char *volatile vendor = NULL;
        char *device = NULL;
        pci_libpci_jump = &jump;
        if (setjmp(jump) != 0) {
                pci_libpci_jump = outer;
                free(vendor);
                return -EIO;
        }
        char *v = NULL;
        int r = lookup(PCI_LOOKUP_VENDOR, vendor_id, 0, &v);
        vendor = v;
        if (r == 0)
                r = lookup(PCI_LOOKUP_DEVICE, vendor_id, device_id, &device);
        pci_libpci_jump = outer;
        if (r < 0) {
                free(vendor);
                return r;
        }
        *ret_vendor = vendor;
        *ret_device = device;
        return 0;
}

int pci_names_lookup(uint16_t vendor_id, uint16_t device_id, char **ret_vendor_name,
                     char **ret_device_name)
{
        char *vendor = NULL, *device = NULL;
        pthread_mutex_lock(&names_lock);
        int r = lookup_locked(vendor_id, device_id, &vendor, &device);
        pthread_mutex_unlock(&names_lock);
        if (r < 0)
                return r;
        *ret_vendor_name = vendor;
        *ret_device_name = device;
        return 0;
}
