/* SPDX-License-Identifier: MIT */
/*
 * The generated lab tree (tests/fixtures, lab preset) that the pci, iommu and sriov unit
 * suites start from: each test gets a fresh tree in fx (.init = lab_setup, .fini =
 * lab_teardown), and lab_start_kernel runs the fake kernel over it.
 */
#pragma once

#include <criterion/criterion.h>
#include <string.h>

#include "tests/fixtures/fixture.h"

static struct fixture *fx;

static inline void lab_setup(void)
{
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_lab_preset(fx), 0);
}

static inline void lab_teardown(void)
{
        fixture_free(fx);
        fx = NULL;
}

/* opts may be NULL: a kernel that binds and creates VFs at once, without failures. */
static inline void lab_start_kernel(const struct fixture_kernel_options *opts)
{
        int r = fixture_kernel_start(fx, opts);
        cr_assert_eq(r, 0, "fake kernel: %s", strerror(-r));
}
