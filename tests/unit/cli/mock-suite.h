/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the iovctl tests that run commands against the canned server: one
 * server on a Unix socket and one captured run per test. A test file includes this once
 * and declares TestSuite(name, .init = mock_suite_setup, .fini = mock_suite_teardown).
 */
#pragma once

#include <criterion/criterion.h>
#include <curl/curl.h>

#include "tests/unit/cli/cli-run.h"
#include "tests/unit/cli/mock-server.h"

static struct mock_server server;
static struct cli_run run;

/* The options that point iovctl at the server. */
#define SOCK "--socket", server.socket_path

static inline void mock_suite_setup(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        cr_assert_eq(mock_server_start(&server, false), 0, "mock server did not start");
}

static inline void mock_suite_teardown(void)
{
        cli_run_clear(&run);
        mock_server_stop(&server);
}
