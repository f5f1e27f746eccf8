/* SPDX-License-Identifier: MIT */
/*
 * tcp-suite: iovd listening on 127.0.0.1 (a free port, tcp_port; URL in base) with a
 * bearer token file, started by tcp_suite_start() and torn down by tcp_suite_teardown().
 */
#pragma once

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* 22 base64url characters: 132 bits, the least iovd accepts in that alphabet. */
#define TOKEN "q3V9xK2mT7rB1wZ8nL4p-_"

static struct iov_harness *h;
static char token_path[] = "/tmp/iovd-test-token-XXXXXX";
static char base[64];
static unsigned tcp_port;

/* more: further iovd arguments, NULL-terminated (may be NULL). */
static void tcp_suite_start_with(const char *const *more)
{
        int fd = mkstemp(token_path);
        cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
        cr_assert_eq(write(fd, TOKEN "\n", strlen(TOKEN) + 1), (ssize_t)strlen(TOKEN) + 1);
        close(fd);
        cr_assert_eq(harness_free_port(&tcp_port), 0);
        _cleanup_free_ char *listen = util_strdup_printf("tcp:127.0.0.1:%u", tcp_port);
        snprintf(base, sizeof(base), "http://127.0.0.1:%u", tcp_port);
        const char *args[16] = {"--listen", listen, "--token-file", token_path};
        for (size_t i = 0; more && more[i]; i++) {
                cr_assert_lt(4 + i, ARRAY_SIZE(args) - 1, "too many arguments");
                args[4 + i] = more[i];
        }
        struct iov_harness_options o = {.extra_args = args};
        int r = harness_start(&o, &h);
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r),
                     h ? harness_log(h) : "");
}

static inline void tcp_suite_start(void)
{
        tcp_suite_start_with(NULL);
}

static void tcp_suite_teardown(void)
{
        harness_free(h);
        unlink(token_path);
}
