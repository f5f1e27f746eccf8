/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>

#include "pci/pci.h"
#include "util/util.h"

Test(pci_address, parses_canonical_and_upper_case)
{
        struct iov_pci_address a;
        char buf[IOV_PCI_ADDRESS_MAX];

        cr_assert_eq(pci_address_parse("0000:01:00.0", &a), 0);
        cr_assert_str_eq(pci_address_format(&a, buf), "0000:01:00.0");
        cr_assert_eq(pci_address_parse("ABCD:Ef:1f.7", &a), 0);
        cr_assert_str_eq(pci_address_format(&a, buf), "abcd:ef:1f.7", "formatted %s", buf);
        cr_assert_eq(pci_address_parse("10000:00:02.0", &a), 0, "VMD-style 5-digit domain");
        cr_assert_eq(a.domain, 0x10000u, "domain %x", a.domain);
}

/* Domains above 0xffff print whole, as the kernel names them (%04x of the domain): an
 * address parsed from its canonical form formats back to the same text. */
Test(pci_address, long_domains_print_whole)
{
        static const char *const canonical[] = {"10000:00:02.0", "1234567:01:00.0",
                                                "7fffffff:ff:1f.7", "7bcdef01:00:00.1"};
        for (size_t i = 0; i < ARRAY_SIZE(canonical); i++) {
                struct iov_pci_address a;
                char buf[IOV_PCI_ADDRESS_MAX];
                cr_assert_eq(pci_address_parse(canonical[i], &a), 0, "%s refused", canonical[i]);
                cr_expect_str_eq(pci_address_format(&a, buf), canonical[i], "%s printed as %s",
                                 canonical[i], buf);
        }
        struct iov_pci_address a;
        char buf[IOV_PCI_ADDRESS_MAX];
        cr_assert_eq(pci_address_parse("00010000:00:02.0", &a), 0);
        cr_expect_str_eq(pci_address_format(&a, buf), "10000:00:02.0",
                         "leading zeros beyond four digits: %s", buf);
}

Test(pci_address, rejects_everything_else)
{
        static const char *const bad[] = {
                "",
                "0000:01:00",
                "0000:01:00.8",
                "0000:01:20.0",
                "000:01:00.0",
                "0000:1:00.0",
                "0000:01:0.0",
                "0000:01:00.0 ",
                " 0000:01:00.0",
                "0000:01:00.0\n",
                "../../etc/passwd",
                "0000:01:00.0/..",
                "0000:0g:00.0",
                "0000:01:00.00",
                "+000:01:00.0",
                "0000:01:00:0",
                "000000000:01:00.0",
                "80000000:00:00.0", /* above the kernel's int domain */
                "ffffffff:ff:1f.7",
                "01:00.0",
                "0000:01:00.-1",
        };
        struct iov_pci_address a = {.domain = 42};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_expect_eq(pci_address_parse(bad[i], &a), -EINVAL, "accepted \"%s\"", bad[i]);
                cr_expect_eq(a.domain, 42u, "output written on failure for \"%s\"", bad[i]);
        }
        cr_assert_eq(pci_address_parse(NULL, &a), -EINVAL);
}

Test(pci_address, orders_by_domain_bus_slot_function)
{
        struct iov_pci_address a, b;
        cr_assert_eq(pci_address_parse("0000:01:00.1", &a), 0);
        cr_assert_eq(pci_address_parse("0000:01:01.0", &b), 0);
        cr_assert_lt(pci_address_compare(&a, &b), 0);
        cr_assert_gt(pci_address_compare(&b, &a), 0);
        cr_assert(pci_address_equal(&a, &a));
}
