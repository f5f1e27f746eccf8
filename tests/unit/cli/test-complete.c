/* SPDX-License-Identifier: MIT */
/*
 * iovctl's hidden "__complete" command (cli/complete.c), the helper of the shell
 * completions: candidates from the command tables, value kinds from option and argument
 * names, live values from a canned server, and silence when nothing can be asked.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/unit/cli/mock-suite.h"

TestSuite(cli_complete, .init = mock_suite_setup, .fini = mock_suite_teardown);

static const char devices_json[] = "{\"devices\": [{\"address\": \"0000:01:00.0\"}, "
                                   "{\"address\": \"0000:01:00.1\"}, "
                                   "{\"address\": \"0000:02:00.0\"}]}";

static void assert_output(const char *expected)
{
        cr_assert_eq(run.status, 0, "exit status %d, stderr: %s", run.status, run.err);
        cr_assert_str_eq(run.out, expected, "candidates: [%s], expected [%s]", run.out, expected);
        cr_assert_str_empty(run.err, "stderr: %s", run.err);
}

Test(cli_complete, first_word_offers_each_command_word_once)
{
        cli_run(&run, "__complete", "0", "", NULL);
        cr_assert(strncmp(run.out, "words\nhost\ndevices\n", 19) == 0, "got: %s", run.out);
        cr_assert(strstr(run.out, "\nvm\n") && !strstr(strstr(run.out, "\nvm\n") + 1, "\nvm\n"),
                  "vm once: %s", run.out);
        cr_assert_null(strstr(run.out, "create"), "subcommands at the first word: %s", run.out);
}

Test(cli_complete, group_offers_its_subcommands_by_prefix)
{
        cli_run(&run, "__complete", "1", "vm", "s", NULL);
        assert_output("words\nshow\nstart\nstop\n");
}

Test(cli_complete, options_of_the_command_and_global_ones)
{
        cli_run(&run, "__complete", "1", "devices", "--nu", NULL);
        assert_output("words\n--numa-node\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "1", "vm", "--js", NULL);
        assert_output("words\n--json\n");
}

Test(cli_complete, choices_of_a_value_name_also_after_equals)
{
        cli_run(&run, "__complete", "2", "devices", "--sriov", "", NULL);
        assert_output("words\npf\nvf\nnone\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "1", "devices", "--sriov=v", NULL);
        assert_output("words\nvf\n");
}

Test(cli_complete, file_options_and_values_without_candidates)
{
        cli_run(&run, "__complete", "3", "vm", "create", "--kernel", "", NULL);
        assert_output("files\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "2", "alloc", "--owner", "", NULL);
        assert_output("words\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "2", "vm", "create", "", NULL);
        assert_output("words\n");
}

Test(cli_complete, device_addresses_from_the_daemon_by_prefix)
{
        mock_server_add(&server, "GET", "/v1/devices", 200, devices_json, NULL);
        cli_run(&run, "__complete", "3", SOCK, "device", "0000:01", NULL);
        assert_output("words\n0000:01:00.0\n0000:01:00.1\n");
}

Test(cli_complete, sriov_asks_for_pfs_and_its_count_takes_nothing)
{
        mock_server_add(&server, "GET", "/v1/devices?sriov=pf", 200, devices_json, NULL);
        cli_run(&run, "__complete", "3", SOCK, "sriov", "", NULL);
        assert_output("words\n0000:01:00.0\n0000:01:00.1\n0000:02:00.0\n");
        cli_run_clear(&run);
        size_t before = server.n_requests;
        cli_run(&run, "__complete", "4", SOCK, "sriov", "0000:01:00.0", "", NULL);
        assert_output("words\n");
        cr_assert_eq(server.n_requests, before, "a request for the VF count");
}

Test(cli_complete, vms_by_name_and_id_pools_and_allocations)
{
        mock_server_add(&server, "GET", "/v1/vms", 200,
                        "{\"vms\": [{\"id\": \"vm-1\", \"name\": \"demo\"}]}", NULL);
        mock_server_add(&server, "GET", "/v1/pools", 200, "{\"pools\": [{\"name\": \"nic\"}]}",
                        NULL);
        mock_server_add(&server, "GET", "/v1/allocations", 200,
                        "{\"allocations\": [{\"id\": \"a-01\"}]}", NULL);
        cli_run(&run, "__complete", "4", SOCK, "vm", "stop", "", NULL);
        assert_output("words\ndemo\nvm-1\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "4", SOCK, "alloc", "--pool", "", NULL);
        assert_output("words\nnic\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "3", SOCK, "release", "", NULL);
        assert_output("words\na-01\n");
        /* "alloc" is a command and the group of "alloc set-owner". */
        cli_run_clear(&run);
        cli_run(&run, "__complete", "3", SOCK, "alloc", "", NULL);
        assert_output("words\nset-owner\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "4", SOCK, "alloc", "set-owner", "", NULL);
        assert_output("words\na-01\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "5", SOCK, "alloc", "set-owner", "a-01", "", NULL);
        assert_output("words\n");
}

/* vm create --device: the entry types, then a vfio entry's pool from the daemon. */
Test(cli_complete, device_specs_and_vfio_pools)
{
        mock_server_add(&server, "GET", "/v1/pools", 200, "{\"pools\": [{\"name\": \"nic\"}]}",
                        NULL);
        cli_run(&run, "__complete", "5", SOCK, "vm", "create", "--device", "vf", NULL);
        assert_output("words\nvfio,pool=\nvfio,device=\nvfio,allocation=\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "5", SOCK, "vm", "create", "--device", "vfio,pool=", NULL);
        assert_output("words\nvfio,pool=nic\n");
}

Test(cli_complete, unreachable_daemon_and_unknown_command_give_nothing)
{
        cli_run(&run, "__complete", "3", "--socket", "/nonexistent/iovd.sock", "device", "", NULL);
        assert_output("words\n");
        cli_run_clear(&run);
        cli_run(&run, "__complete", "1", "frobnicate", "", NULL);
        assert_output("words\n");
}

Test(cli_complete, bad_word_index_is_a_usage_error_and_help_hides_it)
{
        cli_run(&run, "__complete", "5", "vm", NULL);
        cr_assert_eq(run.status, IOV_CLI_EXIT_USAGE, "exit status %d", run.status);
        cli_run_clear(&run);
        cli_run(&run, "--help", NULL);
        cr_assert_null(strstr(run.out, "__complete"), "help shows it: %s", run.out);
}
