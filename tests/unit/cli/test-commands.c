/* SPDX-License-Identifier: MIT */
/*
 * iovctl's commands against a canned server: what each command sends (method, path,
 * query, body, headers), how it prints the answer (tables, --json) and its exit status
 * for API errors, usage errors and an unreachable daemon.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tests/unit/cli/mock-suite.h"

static const char devices_json[] =
        "{\"devices\": ["
        "{\"address\": \"0000:01:00.0\", \"vendor_id\": \"8086\", \"device_id\": \"1572\", "
        "\"class\": \"020000\", \"vendor_name\": \"Intel Corporation\", "
        "\"device_name\": \"Ethernet Controller X710\", \"driver\": \"i40e\", "
        "\"iommu_group\": 12, \"numa_node\": 0, \"sriov\": {\"total_vfs\": 64, \"num_vfs\": 2, "
        "\"vfs\": [\"0000:01:02.0\", \"0000:01:02.1\"]}, \"allocation\": null},"
        "{\"address\": \"0000:01:02.0\", \"vendor_id\": \"8086\", \"device_id\": \"154c\", "
        "\"class\": \"020000\", \"vendor_name\": \"Intel Corporation\", \"device_name\": null, "
        "\"driver\": null, \"iommu_group\": null, \"numa_node\": -1, "
        "\"physfn\": \"0000:01:00.0\", \"allocation\": {\"id\": \"a1\"}}]}";

TestSuite(cli_commands, .init = mock_suite_setup, .fini = mock_suite_teardown);

Test(cli_commands, devices_table_aligns_columns_and_prints_dash_for_null)
{
        mock_server_add(&server, "GET", "/v1/devices", 200, devices_json, NULL);
        cli_run(&run, SOCK, "devices", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr: %s", run.status, run.err);
        cr_assert_str_eq(
                run.out,
                "ADDRESS       CLASS   ID         DRIVER  GROUP  NUMA  SRIOV               "
                "ALLOCATION  NAME\n"
                "0000:01:00.0  020000  8086:1572  i40e    12     0     pf 2/64             -  "
                "         Intel Corporation Ethernet Controller X710\n"
                "0000:01:02.0  020000  8086:154c  -       -      -1    vf of 0000:01:00.0  a1 "
                "         Intel Corporation\n",
                "table was:\n%s", run.out);
}

Test(cli_commands, devices_json_prints_the_answer_as_it_is)
{
        mock_server_add(&server, "GET", "/v1/devices", 200, devices_json, NULL);
        cli_run(&run, "devices", "--json", SOCK, NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr: %s", run.status, run.err);
        struct json_object *printed = json_tokener_parse(run.out);
        struct json_object *sent = json_tokener_parse(devices_json);
        cr_assert_not_null(printed, "--json output is not JSON: %s", run.out);
        cr_assert(json_object_equal(printed, sent), "--json changed the answer: %s", run.out);
        cr_assert(strchr(run.out, '\n') != strrchr(run.out, '\n'), "not pretty printed: %s",
                  run.out);
        json_object_put(printed);
        json_object_put(sent);
}

Test(cli_commands, devices_filters_become_query_parameters)
{
        cli_run(&run, SOCK, "devices", "--vendor-id", "8086", "--sriov=vf", "--physfn",
                "0000:01:00.0", "--numa-node", "1", "--driver", "a b&c", NULL);
        const struct mock_request *req = mock_server_last(&server);
        cr_assert_not_null(req, "no request was sent");
        cr_assert_str_eq(req->url,
                         "/v1/devices?vendor_id=8086&driver=a b&c&physfn=0000:01:00.0&sriov=vf&"
                         "numa_node=1",
                         "query was %s", req->url);
}

Test(cli_commands, bad_address_is_a_usage_error_and_sends_nothing)
{
        static const char *const bad[] = {"0000:01:00", "../../etc", "0000:01:00.0/x", ""};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                cli_run(&run, SOCK, "device", bad[i], NULL);
                cr_expect_eq(run.status, 2, "address '%s': exit status %d", bad[i], run.status);
                cr_expect(strstr(run.err, "invalid device address") != NULL,
                          "address '%s': stderr %s", bad[i], run.err);
                cli_run_clear(&run);
        }
        cli_run(&run, SOCK, "sriov", "01:00.0", "4", NULL);
        cr_expect_eq(run.status, 2, "sriov with a short address: exit status %d", run.status);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "devices", "--physfn", "0000:01:00.9", NULL);
        cr_expect_eq(run.status, 2, "--physfn with function 9: exit status %d", run.status);
        cr_assert_eq(server.n_requests, 0, "%zu requests were sent for bad input",
                     server.n_requests);
}

Test(cli_commands, api_error_prints_code_and_message_and_exits_1)
{
        mock_server_add(&server, "GET", "/v1/devices/0000:09:00.0", 404,
                        "{\"error\": {\"code\": \"device_not_found\", "
                        "\"message\": \"no device 0000:09:00.0\"}}",
                        NULL);
        cli_run(&run, SOCK, "device", "0000:09:00.0", NULL);
        cr_assert_eq(run.status, 1, "exit status %d", run.status);
        cr_assert_str_eq(run.err, "error: device_not_found: no device 0000:09:00.0\n",
                         "stderr was %s", run.err);
        cr_assert_str_empty(run.out, "stdout was %s", run.out);
        cli_run_clear(&run);

        cli_run(&run, SOCK, "--json", "device", "0000:09:00.0", NULL);
        cr_assert_eq(run.status, 1, "--json: exit status %d", run.status);
        cr_assert_str_eq(run.err, "error: device_not_found: no device 0000:09:00.0\n",
                         "--json: stderr was %s", run.err);
        struct json_object *printed = json_tokener_parse(run.out), *error = NULL;
        cr_assert(printed && json_object_object_get_ex(printed, "error", &error),
                  "--json: the error object is not on stdout: %s", run.out);
        json_object_put(printed);
}

Test(cli_commands, answer_not_in_the_error_shape_still_exits_1)
{
        mock_server_add(&server, "GET", "/v1/host", 502, "bad gateway", "text/plain");
        cli_run(&run, SOCK, "host", NULL);
        cr_assert_eq(run.status, 1, "exit status %d", run.status);
        cr_assert(strstr(run.err, "error: http_502") == run.err, "stderr was %s", run.err);
}

Test(cli_commands, host_prints_nested_fields_as_dotted_keys)
{
        mock_server_add(&server, "GET", "/v1/host", 200,
                        "{\"kvm\": {\"available\": true, \"api_version\": 12}, "
                        "\"iommu\": {\"enabled\": false, \"interrupt_remapping\": null}, "
                        "\"vfio_pci_loaded\": false}",
                        NULL);
        cli_run(&run, SOCK, "host", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        cr_assert_str_eq(run.out,
                         "kvm.available              yes\n"
                         "kvm.api_version            12\n"
                         "iommu.enabled              no\n"
                         "iommu.interrupt_remapping  -\n"
                         "vfio_pci_loaded            no\n",
                         "output was:\n%s", run.out);
}

Test(cli_commands, missing_socket_exits_3_naming_the_socket)
{
        char path[200];
        snprintf(path, sizeof(path), "%s/absent.sock", server.dir);
        cli_run(&run, "--socket", path, "host", NULL);
        cr_assert_eq(run.status, 3, "exit status %d", run.status);
        cr_assert(strstr(run.err, path) != NULL, "stderr does not name %s: %s", path, run.err);
        cr_assert(strstr(run.err, "No such file") != NULL, "stderr: %s", run.err);
}

Test(cli_commands, socket_without_listener_exits_3_connection_refused)
{
        char path[200];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(path, sizeof(path), "%s/stale.sock", server.dir);
        cr_assert_lt(strlen(path), sizeof(sa.sun_path), "socket path too long: %s", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s", path);
        close(fd); /* the socket file stays, nobody listens */

        cli_run(&run, "--socket", path, "groups", NULL);
        unlink(path);
        cr_assert_eq(run.status, 3, "exit status %d", run.status);
        cr_assert(strstr(run.err, "Connection refused") != NULL, "stderr: %s", run.err);
}

Test(cli_commands, socket_from_environment)
{
        mock_server_add(&server, "GET", "/v1/iommu-groups", 200,
                        "{\"groups\": [{\"id\": 7, \"devices\": [\"0000:01:00.0\", "
                        "\"0000:01:00.1\"], \"viable\": true, \"owner\": null}]}",
                        NULL);
        setenv("IOVD_SOCKET", server.socket_path, 1);
        cli_run(&run, "groups", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        cr_assert_str_eq(run.out,
                         "ID  VIABLE  OWNER  DEVICES\n"
                         "7   yes     -      0000:01:00.0,0000:01:00.1\n",
                         "output was:\n%s", run.out);
}

Test(cli_commands, usage_errors_exit_2_and_send_nothing)
{
        static const char *const cases[][4] = {
                {"bogus", NULL},
                {"devices", "--bogus", NULL},
                {"device", NULL},
                {"device", "0000:01:00.0", "extra", NULL},
                {"devices", "--vendor-id", NULL},
                {"host", "--json=yes", NULL},
                {"pool", NULL},
                {"vm", "bogus", "x", NULL},
                {"alloc", "--device", "0000:01:00.0", NULL},
                {"alloc", "--owner", "vm1", NULL},
                {"sriov", "0000:01:00.0", "-1", NULL},
                {"sriov", "0000:01:00.0", "70000", NULL},
                {"group", "seven", NULL},
                {"events", "--count", "0", NULL},
                {"devices", "--numa-node", "-1", NULL},
                {"devices", "--numa-node", "one", NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                cli_run(&run, SOCK, cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL);
                cr_expect_eq(run.status, 2, "'%s %s': exit status %d", cases[i][0],
                             cases[i][1] ? cases[i][1] : "", run.status);
                cr_expect(strncmp(run.err, "iovctl: ", 8) == 0, "'%s': stderr %s", cases[i][0],
                          run.err);
                cli_run_clear(&run);
        }
        cli_run(&run, NULL);
        cr_expect_eq(run.status, 2, "no command: exit status %d", run.status);
        cli_run_clear(&run);
        char long_path[200];
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        cli_run(&run, "--socket", long_path, "host", NULL);
        cr_expect_eq(run.status, 2, "199-byte socket path: exit status %d", run.status);
        cr_assert_eq(server.n_requests, 0, "%zu requests sent", server.n_requests);
}

Test(cli_commands, help_exits_0_on_stdout)
{
        cli_run(&run, "--help", NULL);
        cr_assert_eq(run.status, 0, "exit status %d", run.status);
        cr_assert(strstr(run.out, "pool create") != NULL, "main help: %s", run.out);
        cli_run_clear(&run);
        cli_run(&run, "devices", "--help", NULL);
        cr_assert_eq(run.status, 0, "exit status %d", run.status);
        cr_assert(strstr(run.out, "--vendor-id") != NULL, "devices help: %s", run.out);
        cli_run_clear(&run);
        cli_run(&run, "vm", "create", "-h", NULL);
        cr_assert(strstr(run.out, "--kernel") != NULL, "vm create help: %s", run.out);
        cr_assert_eq(server.n_requests, 0, "help sent %zu requests", server.n_requests);
}
