/* SPDX-License-Identifier: MIT */
/* pci: helpers shared by the inventory files; not part of the module's interface. */
#pragma once

#include <setjmp.h>
#include <sys/types.h>

#include "pci/pci.h"

/* Read a sysfs attribute relative to a directory fd into buf, NUL-terminated, trailing
 * newline stripped. Returns the length or a negative errno (-EFBIG when it does not fit).
 * Relative opens skip the path walk from the root for every attribute. */
ssize_t pci_attr_read_at(int dir_fd, const char *name, char *buf, size_t size);
/* Whole-string numbers: base 16 accepts an optional 0x, base 10 is plain decimal. */
int pci_attr_read_u64_at(int dir_fd, const char *name, int base, uint64_t *ret);
int pci_attr_read_int_at(int dir_fd, const char *name, int *ret);
/* The last component of a symbolic link's target; -ENOENT when there is no link. */
int pci_link_basename_at(int dir_fd, const char *name, char *buf, size_t size);

/* Names from pci.ids through one process-wide libpci handle (loaded once, locked).
 * Unknown ids give NULL names; only -ENOMEM is an error. */
int pci_names_lookup(uint16_t vendor_id, uint16_t device_id, char **ret_vendor_name,
                     char **ret_device_name);

/* Everything sysfs says about one function whose directory is open as dir_fd. */
int pci_device_read_at(int dir_fd, const struct iov_pci_address *address,
                       struct iov_pci_device *ret);

/* libpci reports fatal errors through a callback that must not return (its default
 * exits). Ours jumps back to the innermost PCI_LIBPCI_TRY of this thread, so a broken
 * tree is an error code, never an exit. */
struct pci_access;
extern __thread jmp_buf *pci_libpci_jump;
struct pci_access *pci_libpci_alloc(void);
