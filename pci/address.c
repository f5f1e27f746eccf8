/* SPDX-License-Identifier: MIT */
/*
 * Strict PCI address parsing. Every address that reaches iovd from a request, a state
 * file or a pool definition goes through pci_address_parse() before any sysfs path is
 * built from it, so "../", spaces or extra characters can never reach a path.
 */
#include <errno.h>
#include <stdio.h>

#include "pci/pci.h"
#include "util/util.h"

/* Parse exactly n hex digits (min..max) ending at the terminator character. */
static const char *parse_hex_field(const char *s, int min, int max, char terminator, uint32_t *ret)
{
        uint32_t v = 0;
        int n = 0;
        for (; *s != terminator; s++, n++) {
                int d = util_hex_digit(*s);
                if (d < 0 || n >= max)
                        return NULL;
                v = (v << 4) | (uint32_t)d;
        }
        if (n < min)
                return NULL;
        *ret = v;
        return s + 1;
}

int pci_address_parse(const char *s, struct iov_pci_address *ret)
{
        uint32_t domain, bus, slot;
        if (!s)
                return -EINVAL;
        s = parse_hex_field(s, 4, 8, ':', &domain);
        /* The kernel's domain number is a non-negative int (pci_domain_nr()), so no
         * function is ever named above 7fffffff; libpci cannot list one either. */
        if (!s || domain > INT32_MAX)
                return -EINVAL;
        s = parse_hex_field(s, 2, 2, ':', &bus);
        if (!s)
                return -EINVAL;
        s = parse_hex_field(s, 2, 2, '.', &slot);
        if (!s || slot > 0x1f)
                return -EINVAL;
        if (s[0] < '0' || s[0] > '7' || s[1] != '\0')
                return -EINVAL;
        *ret = (struct iov_pci_address){
                .domain = domain,
                .bus = (uint8_t)bus,
                .slot = (uint8_t)slot,
                .function = (uint8_t)(s[0] - '0'),
        };
        return 0;
}

char *pci_address_format(const struct iov_pci_address *a, char buf[static IOV_PCI_ADDRESS_MAX])
{
        snprintf(buf, IOV_PCI_ADDRESS_MAX, "%04x:%02x:%02x.%u", a->domain, a->bus, a->slot,
                 a->function);
        return buf;
}

bool pci_address_equal(const struct iov_pci_address *a, const struct iov_pci_address *b)
{
        return pci_address_compare(a, b) == 0;
}

int pci_address_compare(const struct iov_pci_address *a, const struct iov_pci_address *b)
{
        if (a->domain != b->domain)
                return a->domain < b->domain ? -1 : 1;
        if (a->bus != b->bus)
                return a->bus < b->bus ? -1 : 1;
        if (a->slot != b->slot)
                return a->slot < b->slot ? -1 : 1;
        if (a->function != b->function)
                return a->function < b->function ? -1 : 1;
        return 0;
}
