/* SPDX-License-Identifier: MIT */
/*
 * pci: the host's PCI functions as iovd sees them: strict address parsing (the only way
 * an address from outside becomes a sysfs path), and the inventory read with libpci and
 * sysfs below a configurable sysfs root.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "dddd:bb:ss.f" plus NUL; domains above 0xffff (VMD) print with up to 8 digits. */
#define IOV_PCI_ADDRESS_MAX 16

struct iov_pci_address {
        uint32_t domain;
        uint8_t bus;
        uint8_t slot;     /* 0..31 */
        uint8_t function; /* 0..7 */
};

/* Parse exactly "DDDD:BB:SS.F" (4 to 8 hex digits of domain, 2 of bus, 2 of slot at most
 * 0x1f, one function digit 0-7; either letter case). Anything else, including leading or
 * trailing characters, is -EINVAL. */
int pci_address_parse(const char *s, struct iov_pci_address *ret);

/* Canonical lowercase form, "0000:01:00.0". Returns buf. */
char *pci_address_format(const struct iov_pci_address *a, char buf[static IOV_PCI_ADDRESS_MAX]);

bool pci_address_equal(const struct iov_pci_address *a, const struct iov_pci_address *b);
int pci_address_compare(const struct iov_pci_address *a, const struct iov_pci_address *b);
