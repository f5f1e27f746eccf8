/* SPDX-License-Identifier: MIT */
/*
 * The bodies iovctl sends for commands that change things (sriov, pools, allocations,
 * VMs), the event stream and the VM console, and bearer tokens over TCP.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <string.h>

#include "tests/unit/cli/mock-suite.h"

TestSuite(cli_requests, .init = mock_suite_setup, .fini = mock_suite_teardown);

/* The last request had this method, URL and a JSON body equal to expected_body. */
static void expect_request(const char *method, const char *url, const char *expected_body)
{
        const struct mock_request *req = mock_server_last(&server);
        cr_assert_not_null(req, "no request was sent (stderr: %s)", run.err);
        cr_assert_str_eq(req->method, method, "method %s", req->method);
        cr_assert_str_eq(req->url, url, "url %s", req->url);
        if (!expected_body) {
                cr_assert_str_empty(req->body, "unexpected body %s", req->body);
                return;
        }
        struct json_object *sent = json_tokener_parse(req->body);
        struct json_object *expected = json_tokener_parse(expected_body);
        cr_assert_not_null(expected, "bad expectation %s", expected_body);
        cr_assert(json_object_equal(sent, expected), "body %s, expected %s", req->body,
                  expected_body);
        cr_assert_str_eq(req->content_type ? req->content_type : "(none)", "application/json",
                         "content type of %s", req->body);
        json_object_put(sent);
        json_object_put(expected);
}

Test(cli_requests, sriov_puts_num_vfs_and_autoprobe_only_when_asked)
{
        mock_server_add(&server, "PUT", "/v1/devices/0000:01:00.0/sriov", 200, "{\"num_vfs\": 4}",
                        NULL);
        cli_run(&run, SOCK, "sriov", "0000:01:00.0", "4", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        expect_request("PUT", "/v1/devices/0000:01:00.0/sriov", "{\"num_vfs\": 4}");
        cli_run_clear(&run);
        cli_run(&run, SOCK, "sriov", "0000:01:00.0", "0", "--autoprobe", NULL);
        expect_request("PUT", "/v1/devices/0000:01:00.0/sriov",
                       "{\"num_vfs\": 0, \"drivers_autoprobe\": true}");
}

Test(cli_requests, pool_create_sends_selector_and_addresses)
{
        mock_server_add(&server, "POST", "/v1/pools", 201,
                        "{\"name\": \"nics\", \"capacity\": 2, \"free\": 2}", NULL);
        cli_run(&run, SOCK, "pool", "create", "nics", "--vendor-id", "8086", "--numa-node", "0",
                "--address", "0000:01:02.0", "--address=0000:01:02.1", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        expect_request("POST", "/v1/pools",
                       "{\"name\": \"nics\", \"selector\": {\"vendor_id\": \"8086\", "
                       "\"numa_node\": 0, \"addresses\": [\"0000:01:02.0\", \"0000:01:02.1\"]}}");
        cr_assert(strstr(run.out, "capacity  2") != NULL, "output %s", run.out);
}

Test(cli_requests, pool_create_refuses_a_bad_address_before_sending)
{
        cli_run(&run, SOCK, "pool", "create", "nics", "--address", "0000:01:02.0", "--address",
                "1:2.3", NULL);
        cr_assert_eq(run.status, 2, "exit status %d", run.status);
        cr_assert(strstr(run.err, "1:2.3") != NULL, "stderr does not name the address: %s",
                  run.err);
        cr_assert_eq(server.n_requests, 0, "%zu requests sent", server.n_requests);
}

Test(cli_requests, pools_table_and_pool_names_are_escaped_in_paths)
{
        mock_server_add(&server, "GET", "/v1/pools", 200,
                        "{\"pools\": [{\"name\": \"nics\", \"capacity\": 4, \"free\": 3, "
                        "\"selector\": {\"vendor_id\": \"8086\", \"addresses\": []}}]}",
                        NULL);
        cli_run(&run, SOCK, "pools", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        cr_assert_str_eq(run.out,
                         "NAME  CAPACITY  FREE  SELECTOR\n"
                         "nics  4         3     vendor_id=8086\n",
                         "output was:\n%s", run.out);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "pool", "delete", "a/../b", NULL);
        const struct mock_request *req = mock_server_last(&server);
        cr_assert_str_eq(req->method, "DELETE", "method %s", req->method);
        /* The server decodes %2F back to '/', but it arrived as one segment. */
        cr_assert_str_eq(req->url, "/v1/pools/a/../b", "url %s", req->url);
        cr_assert_eq(run.status, 1, "404 from the mock: exit status %d", run.status);
}

Test(cli_requests, alloc_by_device_and_by_pool)
{
        mock_server_add(&server, "POST", "/v1/allocations", 201,
                        "{\"id\": \"a1\", \"owner\": \"vm1\", \"devices\": [\"0000:01:02.0\"], "
                        "\"iommu_group\": 7, \"vfio_group\": \"/dev/vfio/7\"}",
                        NULL);
        cli_run(&run, SOCK, "alloc", "--owner", "vm1", "--device", "0000:01:02.0", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        expect_request("POST", "/v1/allocations",
                       "{\"owner\": \"vm1\", \"device\": \"0000:01:02.0\"}");
        cr_assert(strstr(run.out, "vfio_group   /dev/vfio/7\n") != NULL, "output %s", run.out);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "alloc", "--pool", "nics", "--owner", "vm2", NULL);
        expect_request("POST", "/v1/allocations", "{\"owner\": \"vm2\", \"pool\": \"nics\"}");
        cli_run_clear(&run);
        cli_run_clear(&run);
        /* Both: this device as a member of that pool (the daemon checks the selector). */
        cli_run(&run, SOCK, "alloc", "--owner", "x", "--pool", "p", "--device", "0000:01:02.0",
                NULL);
        expect_request("POST", "/v1/allocations",
                       "{\"owner\": \"x\", \"pool\": \"p\", \"device\": \"0000:01:02.0\"}");
}

Test(cli_requests, allocations_release_and_conflict)
{
        mock_server_add(&server, "GET", "/v1/allocations", 200,
                        "{\"allocations\": [{\"id\": \"a1\", \"owner\": \"vm1\", \"state\": "
                        "\"active\", \"pool\": null, \"iommu_group\": 7, \"vfio_group\": "
                        "\"/dev/vfio/7\", \"devices\": [\"0000:01:02.0\"]}]}",
                        NULL);
        mock_server_add(&server, "DELETE", "/v1/allocations/a1", 204, "", NULL);
        mock_server_add(&server, "DELETE", "/v1/allocations/a2", 409,
                        "{\"error\": {\"code\": \"busy\", \"message\": \"in use by vm2\"}}", NULL);
        cli_run(&run, SOCK, "allocations", NULL);
        cr_assert_str_eq(run.out,
                         "ID  OWNER  STATE   POOL  GROUP  VFIO         DEVICES\n"
                         "a1  vm1    active  -     7      /dev/vfio/7  0000:01:02.0\n",
                         "output was:\n%s", run.out);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "release", "a1", NULL);
        cr_assert_eq(run.status, 0, "release a1: exit status %d, stderr %s", run.status, run.err);
        cr_assert_str_empty(run.out, "204 printed %s", run.out);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "release", "a2", NULL);
        cr_assert_eq(run.status, 1, "release a2: exit status %d", run.status);
        cr_assert_str_eq(run.err, "error: busy: in use by vm2\n", "stderr %s", run.err);
}

Test(cli_requests, vm_create_builds_the_definition)
{
        mock_server_add(&server, "POST", "/v1/vms", 201,
                        "{\"id\": \"vm-1\", \"state\": \"created\"}", NULL);
        cli_run(&run, SOCK, "vm", "create", "web", "--kernel", "/boot/vmlinuz", "--memory", "256",
                "--vcpus", "2", "--cmdline", "console=ttyS0", "--device",
                "virtio-blk,path=/srv/d.img,read_only=true", "--device",
                "{\"type\": \"virtio-rng\"}", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        expect_request("POST", "/v1/vms",
                       "{\"name\": \"web\", \"kernel\": \"/boot/vmlinuz\", \"cmdline\": "
                       "\"console=ttyS0\", \"vcpus\": 2, \"memory_mib\": 256, \"devices\": "
                       "[{\"type\": \"virtio-blk\", \"path\": \"/srv/d.img\", \"read_only\": true},"
                       " {\"type\": \"virtio-rng\"}]}");
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "create", "x", "--vcpus", "two", NULL);
        cr_assert_eq(run.status, 2, "--vcpus two: exit status %d", run.status);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "create", "x", "--device", "virtio-net,=1", NULL);
        cr_assert_eq(run.status, 2, "empty device key: exit status %d", run.status);
}

Test(cli_requests, vm_actions_list_and_wrong_state)
{
        mock_server_add(&server, "POST", "/v1/vms/vm-1/start", 200,
                        "{\"id\": \"vm-1\", \"state\": \"running\"}", NULL);
        mock_server_add(
                &server, "POST", "/v1/vms/vm-1/resume", 409,
                "{\"error\": {\"code\": \"wrong_state\", \"message\": \"vm-1 is running\"}}", NULL);
        mock_server_add(&server, "GET", "/v1/vms", 200,
                        "{\"vms\": [{\"id\": \"vm-1\", \"name\": \"web\", \"state\": \"running\", "
                        "\"vcpus\": 2, \"memory_mib\": 256}]}",
                        NULL);
        cli_run(&run, SOCK, "vm", "start", "vm-1", NULL);
        cr_assert_eq(run.status, 0, "start: exit status %d, stderr %s", run.status, run.err);
        expect_request("POST", "/v1/vms/vm-1/start", NULL);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "resume", "vm-1", NULL);
        cr_assert_eq(run.status, 1, "resume: exit status %d", run.status);
        cr_assert_str_eq(run.err, "error: wrong_state: vm-1 is running\n", "stderr %s", run.err);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "stop", "vm-1", "--timeout", "5", NULL);
        expect_request("POST", "/v1/vms/vm-1/stop", "{\"timeout_sec\": 5}");
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "stop", "vm-1", NULL);
        expect_request("POST", "/v1/vms/vm-1/stop", NULL);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "stop", "vm-1", "--timeout", "soon", NULL);
        cr_assert_eq(run.status, 2, "--timeout soon: exit status %d", run.status);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "list", NULL);
        cr_assert_str_eq(run.out,
                         "ID    NAME  STATE    VCPUS  MEMORY_MIB  REASON\n"
                         "vm-1  web   running  2      256         -\n",
                         "output was:\n%s", run.out);
}

Test(cli_requests, vm_console_prints_guest_bytes)
{
        mock_server_add(&server, "GET", "/v1/vms/vm-1/console", 200,
                        "hello\nlogin: ", "text/plain");
        mock_server_add(&server, "GET", "/v1/vms/vm-1/console?follow=1", 200, "boot\nmore",
                        "text/plain");
        cli_run(&run, SOCK, "vm", "console", "vm-1", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        cr_assert_str_eq(run.out, "hello\nlogin: ", "console %s", run.out);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "vm", "console", "--follow", "vm-1", NULL);
        cr_assert_eq(run.status, 0, "follow: exit status %d, stderr %s", run.status, run.err);
        cr_assert_str_eq(run.out, "boot\nmore", "followed console %s", run.out);
}

static const char events_ndjson[] =
        "{\"type\": \"device_added\", \"time\": \"2026-01-01T00:00:00Z\", \"address\": "
        "\"0000:01:02.0\"}\n"
        "\n"
        "{\"type\": \"allocation_created\", \"allocation\": {\"id\": \"a1\", \"owner\": \"vm1\"}}\n"
        "{\"type\": \"device_removed\", \"address\": \"0000:01:02.0\"}\n";

Test(cli_requests, events_one_line_each_and_count)
{
        mock_server_add(&server, "GET", "/v1/events", 200, events_ndjson, "application/x-ndjson");
        cli_run(&run, SOCK, "events", "--count", "2", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        cr_assert_str_eq(run.out,
                         "2026-01-01T00:00:00Z device_added address=0000:01:02.0\n"
                         "allocation_created allocation.id=a1 allocation.owner=vm1\n",
                         "events were:\n%s", run.out);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "events", "--json", NULL);
        cr_assert_eq(run.status, 3, "--json, stream ended: exit status %d", run.status);
        cr_assert(strstr(run.err, "event stream") && strstr(run.err, server.socket_path),
                  "stderr %s", run.err);
        cr_assert_eq(strncmp(run.out, events_ndjson, strchr(events_ndjson, '\n') - events_ndjson),
                     0, "--json changed the first line: %s", run.out);
        cli_run_clear(&run);
        cli_run(&run, SOCK, "events", "-n", "5", NULL);
        cr_assert_eq(run.status, 3, "stream ended before 5 events: exit status %d", run.status);
}

/* The show and delete commands address one resource: METHOD /v1/COLLECTION/ID, and the
 * answer is printed as an object. */
Test(cli_requests, show_and_delete_address_one_resource)
{
        static const struct {
                const char *words[3]; /* after "iovctl --socket PATH" */
                const char *method, *url;
        } cases[] = {
                {{"pool", "show", "p1"}, "GET", "/v1/pools/p1"},
                {{"allocation", "a1", NULL}, "GET", "/v1/allocations/a1"},
                {{"vm", "show", "v1"}, "GET", "/v1/vms/v1"},
                {{"vm", "delete", "v1"}, "DELETE", "/v1/vms/v1"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                mock_server_add(&server, cases[i].method, cases[i].url, 200,
                                "{\"id\": \"answer-id\"}", NULL);
                cli_run(&run, SOCK, cases[i].words[0], cases[i].words[1], cases[i].words[2], NULL);
                cr_expect_eq(run.status, 0, "%s: exit status %d, stderr %s", cases[i].url,
                             run.status, run.err);
                expect_request(cases[i].method, cases[i].url, NULL);
                cr_expect(strstr(run.out, "answer-id") != NULL, "%s: output was:\n%s", cases[i].url,
                          run.out);
                cli_run_clear(&run);
        }
}

Test(cli_requests, tcp_url_sends_bearer_token)
{
        struct mock_server tcp;
        char token_path[200];
        cr_assert_eq(mock_server_start(&tcp, true), 0, "TCP mock did not start");
        mock_server_add(&tcp, "GET", "/v1/host", 200, "{\"kvm\": {\"available\": true}}", NULL);
        snprintf(token_path, sizeof(token_path), "%s/token", server.dir);
        FILE *f = fopen(token_path, "w");
        fputs("s3cret\n", f);
        fclose(f);

        /* A proxy in the environment is not used: the token goes to iovd only. */
        setenv("http_proxy", "http://127.0.0.1:1", 1);
        cli_run(&run, "--url", tcp.url, "--token-file", token_path, "host", NULL);
        const struct mock_request *req = mock_server_last(&tcp);
        cr_expect_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        cr_expect_str_eq(req && req->authorization ? req->authorization : "(none)", "Bearer s3cret",
                         "Authorization header");
        cli_run_clear(&run);
        cli_run(&run, "--url", tcp.url, "--token-file", "/nonexistent/token", "host", NULL);
        cr_expect_eq(run.status, 2, "unreadable token file: exit status %d", run.status);
        mock_server_stop(&tcp);
        unlink(token_path);
}

Test(cli_requests, vf_set_sends_only_the_settings_given)
{
        mock_server_add(&server, "PUT", "/v1/devices/0000:01:10.2/net", 200,
                        "{\"pf\": \"0000:01:00.0\", \"pf_interface\": \"enp1s0\", \"vf_index\": 1, "
                        "\"mac\": \"02:00:00:00:00:07\", \"vlan\": 42, \"qos\": 0}",
                        NULL);
        cli_run(&run, SOCK, "vf", "set", "0000:01:10.2", "--mac", "02:00:00:00:00:07", "--vlan",
                "42", "--spoof-check", "off", "--link-state", "enable", "--max-tx-rate", "100",
                NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        expect_request("PUT", "/v1/devices/0000:01:10.2/net",
                       "{\"mac\": \"02:00:00:00:00:07\", \"vlan\": 42, \"spoof_check\": false, "
                       "\"link_state\": \"enable\", \"max_tx_rate\": 100}");
        cr_assert(strstr(run.out, "vlan") && strstr(run.out, "42"), "output %s", run.out);
}

Test(cli_requests, vf_set_usage_errors_send_nothing)
{
        static const char *const bad[][3] = {
                {"--vlan", "4095", NULL},      {"--qos", "x", NULL}, {"--trust", "yes", NULL},
                {"--max-tx-rate", "-1", NULL}, {NULL, NULL, NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                cli_run(&run, SOCK, "vf", "set", "0000:01:10.2", bad[i][0], bad[i][1], NULL);
                cr_expect_eq(run.status, 2, "%s %s: exit status %d", bad[i][0], bad[i][1],
                             run.status);
                cli_run_clear(&run);
        }
        cli_run(&run, SOCK, "vf", "set", "01:10.2", "--vlan", "1", NULL);
        cr_expect_eq(run.status, 2, "short address: exit status %d", run.status);
        cr_assert_eq(server.n_requests, 0, "%zu requests were sent for bad input",
                     server.n_requests);
}

Test(cli_requests, alloc_passes_the_mac_on)
{
        mock_server_add(&server, "POST", "/v1/allocations", 201,
                        "{\"id\": \"a-0000000000000001\", \"owner\": \"vm\"}", NULL);
        cli_run(&run, SOCK, "alloc", "--owner", "vm", "--pool", "nics", "--mac", "auto", NULL);
        cr_assert_eq(run.status, 0, "exit status %d, stderr %s", run.status, run.err);
        expect_request("POST", "/v1/allocations",
                       "{\"owner\": \"vm\", \"pool\": \"nics\", \"mac\": \"auto\"}");
}
