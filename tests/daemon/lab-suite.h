/* SPDX-License-Identifier: MIT */
/*
 * lab-suite: a Criterion suite whose every test gets a fresh iovd on a generated sysfs
 * tree with the lab preset (the QEMU lab's devices), as `fx` and `h`.
 */
#pragma once

#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"
#include "tests/fixtures/fixture.h"

static struct fixture *fx;
static struct iov_harness *h;

static void lab_suite_setup(void)
{
        int r = fixture_new(&fx);
        cr_assert_eq(r, 0, "fixture_new: %s", strerror(-r));
        cr_assert_eq(fixture_add_lab_preset(fx), 0);
        struct iov_harness_options o = {.sysfs_root = fixture_sysfs_root(fx),
                                        .dev_root = fixture_dev_root(fx)};
        r = harness_start(&o, &h);
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r),
                     h ? harness_log(h) : "");
}

static void lab_suite_teardown(void)
{
        harness_free(h);
        fixture_free(fx);
}

#define LAB_SUITE(name) TestSuite(name, .init = lab_suite_setup, .fini = lab_suite_teardown)
