/* SPDX-License-Identifier: MIT */
/*
 * iovctl against the real iovd on the lab machine's generated tree (fake kernel running):
 * each command's table and --json output, and the exit status contract: 0 ok, 1 API
 * error with the code printed, 2 usage (nothing sent), 3 daemon not running.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "test-cli-common.h"
#include "tests/fixtures/fixture.h"

static struct fixture *fx;
static struct iov_harness *h;

static void setup(void)
{
        int r = fixture_new(&fx);
        cr_assert_eq(r, 0, "fixture_new: %s", strerror(-r));
        r = fixture_add_lab_preset(fx);
        cr_assert_eq(r, 0, "fixture_add_lab_preset: %s", strerror(-r));
        r = fixture_kernel_start(fx, NULL);
        cr_assert_eq(r, 0, "fixture_kernel_start: %s", strerror(-r));
        struct iov_harness_options o = {
                .sysfs_root = fixture_sysfs_root(fx),
                .dev_root = fixture_dev_root(fx),
        };
        r = harness_start(&o, &h);
        _cleanup_free_ char *log = h ? harness_log(h) : NULL;
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r), log ? log : "");
}

static void teardown(void)
{
        harness_free(h);
        fixture_free(fx);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

/* iovctl against this test's daemon. */
#define ctl(c, ...) ctl_run(c, h->socket_path, h->dir, NULL, __VA_ARGS__)

/* The API's own answer, for comparing --json output with. */
static struct json_object *api_get(const char *path)
{
        struct iov_http_reply reply = {0};
        int r = harness_request(h, "GET", path, NULL, &reply);
        cr_assert_eq(r, 0, "GET %s: %s", path, strerror(-r));
        cr_assert_eq(reply.status, 200L, "GET %s: status %ld", path, reply.status);
        struct json_object *json = json_object_get(reply.json);
        harness_reply_clear(&reply);
        return json;
}

static void expect_json_equals_api(const struct ctl *c, const char *path)
{
        struct json_object *printed = json_tokener_parse(c->out);
        struct json_object *api = api_get(path);
        cr_assert_not_null(printed, "--json output of %s is not JSON: %s", path, c->out);
        cr_assert(json_object_equal(printed, api), "--json output %s differs from GET %s: %s",
                  c->out, path, json_object_to_json_string(api));
        json_object_put(printed);
        json_object_put(api);
}

Test(cli, host_table_and_json)
{
        struct ctl c = {0};
        ctl(&c, "host", NULL);
        cr_assert_eq(c.status, 0, "host: exit %d, stderr %s", c.status, c.err);
        cr_assert_not_null(table_row(c.out, "iommu.enabled"), "no iommu.enabled row:\n%s", c.out);
        cr_assert(strstr(table_row(c.out, "iommu.enabled"), "yes"), "IOMMU not shown enabled:\n%s",
                  c.out);
        ctl_clear(&c);
        ctl(&c, "host", "--json", NULL);
        cr_assert_eq(c.status, 0, "host --json: exit %d, stderr %s", c.status, c.err);
        expect_json_equals_api(&c, "/v1/host");
        ctl_clear(&c);
}

Test(cli, devices_table_json_and_filters)
{
        struct ctl c = {0};
        ctl(&c, "devices", NULL);
        cr_assert_eq(c.status, 0, "devices: exit %d, stderr %s", c.status, c.err);
        cr_assert_eq(strncmp(c.out, "ADDRESS ", 8), 0, "no header: %s", c.out);
        /* The lab: 7 functions on bus 0 and the NVMe PF. */
        cr_assert_eq(count_lines(c.out), 1 + 8, "rows:\n%s", c.out);
        const char *pf = table_row(c.out, "0000:01:00.0");
        cr_assert_not_null(pf, "no PF row:\n%s", c.out);
        cr_assert(strstr(pf, "1b36:0010") && strstr(pf, "nvme") && strstr(pf, "pf 0/4"),
                  "PF row: %.200s", pf);
        ctl_clear(&c);

        ctl(&c, "devices", "--json", NULL);
        cr_assert_eq(c.status, 0, "devices --json: exit %d, stderr %s", c.status, c.err);
        expect_json_equals_api(&c, "/v1/devices");
        ctl_clear(&c);

        ctl(&c, "devices", "--sriov", "pf", NULL);
        cr_assert_eq(c.status, 0, "--sriov pf: exit %d, stderr %s", c.status, c.err);
        cr_assert_eq(count_lines(c.out), 2, "one PF expected:\n%s", c.out);
        cr_assert_not_null(table_row(c.out, "0000:01:00.0"), "PF missing:\n%s", c.out);
        ctl_clear(&c);

        ctl(&c, "devices", "--vendor-id", "8086", "--class", "0c0500", NULL);
        cr_assert_eq(c.status, 0, "vendor+class: exit %d, stderr %s", c.status, c.err);
        cr_assert_eq(count_lines(c.out), 2, "only the SMBus controller expected:\n%s", c.out);
        cr_assert_not_null(table_row(c.out, "0000:00:1f.3"), "SMBus missing:\n%s", c.out);
        ctl_clear(&c);
}

/* Every read command's --json output is the API's answer for the same resource. */
Test(cli, json_output_equals_the_api_for_every_read)
{
        static const struct {
                const char *args[4];
                const char *path;
        } reads[] = {
                {{"host"}, "/v1/host"},
                {{"devices", "--sriov", "pf"}, "/v1/devices?sriov=pf"},
                {{"device", "0000:00:02.0"}, "/v1/devices/0000:00:02.0"},
                {{"groups"}, "/v1/iommu-groups"},
                {{"group", "4"}, "/v1/iommu-groups/4"},
                {{"pools"}, "/v1/pools"},
                {{"allocations"}, "/v1/allocations"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(reads); i++) {
                struct ctl c = {0};
                ctl(&c, reads[i].args[0], "--json", reads[i].args[1] ? reads[i].args[1] : NULL,
                    reads[i].args[2], NULL);
                cr_assert_eq(c.status, 0, "%s --json: exit %d, stderr %s", reads[i].args[0],
                             c.status, c.err);
                expect_json_equals_api(&c, reads[i].path);
                ctl_clear(&c);
        }
}

Test(cli, device_show_missing_and_bad_address)
{
        struct ctl c = {0};
        ctl(&c, "device", "0000:00:02.0", NULL);
        cr_assert_eq(c.status, 0, "device: exit %d, stderr %s", c.status, c.err);
        const char *driver = table_row(c.out, "driver");
        cr_assert(driver && strstr(driver, "e1000e"), "driver row missing:\n%s", c.out);
        ctl_clear(&c);

        ctl(&c, "device", "0000:09:00.0", NULL);
        cr_assert_eq(c.status, 1, "absent device: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: device_not_found: ", 25), 0, "stderr: %s", c.err);
        cr_assert_str_empty(c.out, "stdout: %s", c.out);
        ctl_clear(&c);

        ctl(&c, "device", "0000:09:00", NULL);
        cr_assert_eq(c.status, 2, "bad address: exit %d", c.status);
        cr_assert(strstr(c.err, "invalid device address '0000:09:00'"), "stderr: %s", c.err);
        ctl_clear(&c);
}

Test(cli, groups_and_group)
{
        struct ctl c = {0};
        ctl(&c, "groups", NULL);
        cr_assert_eq(c.status, 0, "groups: exit %d, stderr %s", c.status, c.err);
        const char *g4 = table_row(c.out, "4");
        cr_assert(g4 && strstr(g4, "0000:00:1f.0,0000:00:1f.2,0000:00:1f.3"), "group 4 row:\n%s",
                  c.out);
        ctl_clear(&c);
        ctl(&c, "groups", "--json", NULL);
        expect_json_equals_api(&c, "/v1/iommu-groups");
        ctl_clear(&c);
        ctl(&c, "group", "2", NULL);
        cr_assert_eq(c.status, 0, "group 2: exit %d, stderr %s", c.status, c.err);
        cr_assert(strstr(c.out, "0000:00:02.0"), "group 2 members:\n%s", c.out);
        ctl_clear(&c);
        ctl(&c, "group", "99", NULL);
        cr_assert_eq(c.status, 1, "group 99: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: ", 7), 0, "stderr: %s", c.err);
        ctl_clear(&c);
}

Test(cli, sriov_then_alloc_release_cycle)
{
        struct ctl c = {0};
        ctl(&c, "sriov", "0000:01:00.0", "9", NULL);
        cr_assert_eq(c.status, 1, "9 VFs of 4: exit %d", c.status);
        cr_assert(strstr(c.err, "error: num_vfs_above_total: "), "stderr: %s", c.err);
        ctl_clear(&c);

        ctl(&c, "sriov", "0000:01:00.0", "2", NULL);
        cr_assert_eq(c.status, 0, "sriov 2: exit %d, stderr %s", c.status, c.err);
        _cleanup_free_ char *num = detail_value(c.out, "num_vfs");
        cr_assert_str_eq(num, "2", "num_vfs in the answer:\n%s", c.out);
        ctl_clear(&c);
        ctl(&c, "devices", "--physfn", "0000:01:00.0", NULL);
        cr_assert_eq(count_lines(c.out), 3, "two VFs expected:\n%s", c.out);
        const char *vf = table_row(c.out, "0000:01:00.1");
        cr_assert(vf && strstr(vf, "vf of 0000:01:00.0"), "VF row:\n%s", c.out);
        ctl_clear(&c);

        ctl(&c, "alloc", "--owner", "vm1", "--device", "0000:01:00.1", "--json", NULL);
        cr_assert_eq(c.status, 0, "alloc: exit %d, stderr %s", c.status, c.err);
        struct json_object *a = json_tokener_parse(c.out), *id = NULL;
        cr_assert(a && json_object_object_get_ex(a, "id", &id), "alloc answer: %s", c.out);
        char *alloc_id = strdup(json_object_get_string(id));
        json_object_put(a);
        ctl_clear(&c);

        ctl(&c, "allocations", NULL);
        const char *row = table_row(c.out, alloc_id);
        cr_assert(row && strstr(row, "vm1") && strstr(row, "0000:01:00.1"), "row of %s:\n%s",
                  alloc_id, c.out);
        ctl_clear(&c);
        ctl(&c, "allocation", alloc_id, NULL);
        cr_assert_eq(c.status, 0, "allocation: exit %d, stderr %s", c.status, c.err);
        cr_assert(table_row(c.out, "vfio_group"), "no vfio_group:\n%s", c.out);
        ctl_clear(&c);

        ctl(&c, "alloc", "--owner", "vm2", "--device", "0000:01:00.1", NULL);
        cr_assert_eq(c.status, 1, "second alloc of one VF: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: ", 7), 0, "stderr: %s", c.err);
        ctl_clear(&c);

        ctl(&c, "release", alloc_id, NULL);
        cr_assert_eq(c.status, 0, "release: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "allocation", alloc_id, NULL);
        cr_assert_eq(c.status, 1, "released allocation still shown: exit %d", c.status);
        ctl_clear(&c);
        free(alloc_id);
}

/* alloc set-owner: the new label in the answer and the list; refusals exit 1 with the
 * daemon's code, a missing argument is a usage error. */
Test(cli, alloc_set_owner_relabels_an_allocation)
{
        struct ctl c = {0};
        ctl(&c, "sriov", "0000:01:00.0", "1", NULL);
        cr_assert_eq(c.status, 0, "sriov 1: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "alloc", "--owner", "k8s:iovd.io/n:0000:01:00.1", "--device", "0000:01:00.1",
            "--json", NULL);
        cr_assert_eq(c.status, 0, "alloc: exit %d, stderr %s", c.status, c.err);
        struct json_object *a = json_tokener_parse(c.out), *id = NULL;
        cr_assert(a && json_object_object_get_ex(a, "id", &id), "alloc answer: %s", c.out);
        _cleanup_free_ char *alloc_id = strdup(json_object_get_string(id));
        json_object_put(a);
        ctl_clear(&c);

        ctl(&c, "alloc", "set-owner", alloc_id, "k8s:default/app/main", NULL);
        cr_assert_eq(c.status, 0, "set-owner: exit %d, stderr %s", c.status, c.err);
        _cleanup_free_ char *owner = detail_value(c.out, "owner");
        cr_assert_str_eq(owner, "k8s:default/app/main", "owner in the answer:\n%s", c.out);
        ctl_clear(&c);
        ctl(&c, "allocations", NULL);
        const char *row = table_row(c.out, alloc_id);
        cr_assert(row && strstr(row, "k8s:default/app/main"), "row of %s:\n%s", alloc_id, c.out);
        ctl_clear(&c);

        ctl(&c, "alloc", "set-owner", "a-0000000000000000", "x", NULL);
        cr_assert_eq(c.status, 1, "unknown id: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: allocation_not_found: ", 29), 0, "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "alloc", "set-owner", alloc_id, "", NULL);
        cr_assert_eq(c.status, 1, "empty owner: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: invalid_value: ", 22), 0, "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "alloc", "set-owner", alloc_id, NULL);
        cr_assert_eq(c.status, 2, "missing owner: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        /* "alloc" alone still allocates. */
        ctl(&c, "alloc", "--owner", "x", NULL);
        cr_assert_eq(c.status, 2, "alloc without a device: exit %d", c.status);
        cr_assert(strstr(c.err, "give --device, --pool, or both"), "stderr: %s", c.err);
        ctl_clear(&c);
}

Test(cli, alloc_refused_lists_blockers)
{
        struct ctl c = {0};
        ctl(&c, "alloc", "--owner", "vm1", "--device", "0000:00:1f.2", NULL);
        cr_assert_eq(c.status, 1, "group with host drivers: exit %d, stdout %s", c.status, c.out);
        cr_assert_eq(strncmp(c.err, "error: group_not_viable: ", 25), 0, "stderr: %s", c.err);
        cr_assert(strstr(c.err, "0000:00:1f.0") && strstr(c.err, "lpc_ich"),
                  "blocking member not named: %s", c.err);
        ctl_clear(&c);
}

/* --pool with --device: that device as a member of the pool; the daemon decides. */
Test(cli, alloc_pool_and_device_together)
{
        struct ctl c = {0};
        ctl(&c, "pool", "create", "nvme", "--physfn", "0000:01:00.0", NULL);
        cr_assert_eq(c.status, 0, "pool create: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "alloc", "--owner", "vm1", "--pool", "nvme", "--device", "0000:00:1f.2", NULL);
        cr_assert_eq(c.status, 1, "device outside the pool: exit %d, stdout %s", c.status, c.out);
        cr_assert_eq(strncmp(c.err, "error: device_not_in_pool: ", 27), 0, "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "alloc", "--owner", "vm1", "--pool", "nope", "--device", "0000:00:1f.2", NULL);
        cr_assert_eq(c.status, 1, "no such pool: exit %d, stdout %s", c.status, c.out);
        cr_assert_eq(strncmp(c.err, "error: pool_not_found: ", 23), 0, "stderr: %s", c.err);
        ctl_clear(&c);
}

Test(cli, pools_create_list_delete)
{
        struct ctl c = {0};
        ctl(&c, "pool", "create", "nvme", "--vendor-id", "1b36", "--physfn", "0000:01:00.0", NULL);
        cr_assert_eq(c.status, 0, "pool create: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "pool", "create", "nvme", "--vendor-id", "1b36", NULL);
        cr_assert_eq(c.status, 1, "duplicate pool: exit %d", c.status);
        cr_assert(strstr(c.err, "error: pool_exists: "), "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "pool", "create", "x", "--address", "0000:01:00.1", "--address", "junk", NULL);
        cr_assert_eq(c.status, 2, "bad --address: exit %d", c.status);
        ctl_clear(&c);

        ctl(&c, "pools", NULL);
        const char *row = table_row(c.out, "nvme");
        cr_assert(row && strstr(row, "vendor_id=1b36"), "pools:\n%s", c.out);
        ctl_clear(&c);
        ctl(&c, "pools", "--json", NULL);
        expect_json_equals_api(&c, "/v1/pools");
        ctl_clear(&c);

        ctl(&c, "pool", "delete", "nvme", NULL);
        cr_assert_eq(c.status, 0, "pool delete: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "pool", "show", "nvme", NULL);
        cr_assert_eq(c.status, 1, "deleted pool: exit %d", c.status);
        cr_assert(strstr(c.err, "error: pool_not_found: "), "stderr: %s", c.err);
        ctl_clear(&c);
}

/* --net KEY=VALUE,...: the pool's network template, numbers and on/off checked before
 * any request. */
Test(cli, pool_create_takes_a_net_template)
{
        struct ctl c = {0};
        ctl(&c, "pool", "create", "nics", "--physfn", "0000:01:00.0", "--net",
            "vlan=100,spoof_check=off,trust=on,max_tx_rate=500", NULL);
        cr_assert_eq(c.status, 0, "pool create --net: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "--json", "pool", "show", "nics", NULL);
        struct json_object *pool = json_tokener_parse(c.out);
        struct json_object *net = json_object_object_get(pool, "net");
        cr_assert_eq(json_object_get_int(json_object_object_get(net, "vlan")), 100, "net: %s",
                     c.out);
        cr_assert(!json_object_get_boolean(json_object_object_get(net, "spoof_check")) &&
                          json_object_get_boolean(json_object_object_get(net, "trust")) &&
                          json_object_get_int(json_object_object_get(net, "max_tx_rate")) == 500,
                  "net: %s", c.out);
        json_object_put(pool);
        ctl_clear(&c);
        static const char *const bad[] = {"vlan=x", "colour=red", "trust=maybe", "vlan"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                ctl(&c, "pool", "create", "bad", "--physfn", "0000:01:00.0", "--net", bad[i], NULL);
                cr_assert_eq(c.status, 2, "--net %s: exit %d", bad[i], c.status);
                ctl_clear(&c);
        }
        ctl(&c, "pool", "create", "bad", "--physfn", "0000:01:00.0", "--net", "vlan=5000", NULL);
        cr_assert_eq(c.status, 1, "--net vlan=5000: exit %d (the daemon refuses)", c.status);
        ctl_clear(&c);
}

Test(cli, events_prints_one_line_per_event)
{
        const char *const args[] = {"events", "--count", "2", NULL};
        _cleanup_free_ char *dir = util_path_join(h->dir, "events", NULL);
        _cleanup_free_ char *out = util_path_join(dir, "ctl.out", NULL);
        cr_assert_eq(util_mkdir_p(dir, 0700), 0, "mkdir %s", dir);
        pid_t pid = ctl_spawn(h->socket_path, dir, NULL, args);

        /* The daemon's first line says the stream is subscribed: from then on nothing is
         * missed. */
        bool subscribed = wait_for_text(out, " subscribed\n", 10000);
        struct ctl c = {0};
        ctl(&c, "pool", "create", "watched", "--vendor-id", "8086", NULL);
        cr_assert_eq(c.status, 0, "pool create: exit %d, %s", c.status, c.err);
        ctl_clear(&c);

        struct ctl ev = {0};
        ctl_collect(&ev, dir, pid, 10000);
        cr_assert(subscribed, "no subscribed line: %s", ev.out);
        cr_assert_eq(ev.status, 0, "events: exit %d, stderr %s", ev.status, ev.err);
        cr_assert_eq(count_lines(ev.out), 2, "two lines expected: %s", ev.out);
        const char *second = strchr(ev.out, '\n') + 1;
        cr_assert(strstr(second, " pool_created ") && strstr(second, "name=watched"),
                  "event line: %s", second);
        ctl_clear(&ev);

        /* --json: the daemon's lines as they are. */
        const char *const json_args[] = {"events", "--count", "1", "--json", NULL};
        pid = ctl_spawn(h->socket_path, dir, NULL, json_args);
        ctl_collect(&ev, dir, pid, 10000);
        cr_assert_eq(ev.status, 0, "events --json: exit %d, stderr %s", ev.status, ev.err);
        struct json_object *line = json_tokener_parse(ev.out), *type = NULL;
        cr_assert(line && json_object_object_get_ex(line, "type", &type) &&
                          streq(json_object_get_string(type), "subscribed"),
                  "--json line: %s", ev.out);
        json_object_put(line);
        ctl_clear(&ev);
}

Test(cli, events_end_when_the_daemon_stops)
{
        const char *const args[] = {"events", NULL};
        _cleanup_free_ char *dir = util_path_join(h->dir, "events", NULL);
        _cleanup_free_ char *out = util_path_join(dir, "ctl.out", NULL);
        cr_assert_eq(util_mkdir_p(dir, 0700), 0, "mkdir %s", dir);
        pid_t pid = ctl_spawn(h->socket_path, dir, NULL, args);
        cr_assert(wait_for_text(out, " subscribed\n", 10000), "no subscribed line");
        int status = -1;
        cr_assert_eq(harness_stop(h, &status), 0, "iovd did not stop");

        struct ctl ev = {0};
        ctl_collect(&ev, dir, pid, 10000);
        cr_assert_eq(ev.status, 3, "events after iovd stopped: exit %d, stderr %s", ev.status,
                     ev.err);
        cr_assert(strstr(ev.err, "event stream"), "stderr: %s", ev.err);
        ctl_clear(&ev);
}

Test(cli, rescan_and_usage_errors)
{
        struct ctl c = {0};
        ctl(&c, "rescan", NULL);
        cr_assert_eq(c.status, 0, "rescan: exit %d, stderr %s", c.status, c.err);
        cr_assert(table_row(c.out, "devices"), "rescan output:\n%s", c.out);
        ctl_clear(&c);
        ctl(&c, "frobnicate", NULL);
        cr_assert_eq(c.status, 2, "unknown command: exit %d", c.status);
        cr_assert(strstr(c.err, "unknown command 'frobnicate'"), "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "devices", "--sriov", "maybe", NULL);
        cr_assert_eq(c.status, 2, "--sriov maybe: exit %d", c.status);
        ctl_clear(&c);
}

Test(cli, daemon_not_running_exits_3)
{
        int status = -1;
        cr_assert_eq(harness_stop(h, &status), 0, "iovd did not stop");
        struct ctl c = {0};
        ctl(&c, "devices", NULL);
        cr_assert_eq(c.status, 3, "stopped daemon: exit %d, stderr %s", c.status, c.err);
        cr_assert(strstr(c.err, h->socket_path), "stderr does not name the socket: %s", c.err);
        ctl_clear(&c);
}

/* iovd restarted on the same tree, also listening on 127.0.0.1 with a bearer token (the
 * token files live in the tree: the first daemon's harness dir goes with it). */
Test(cli, tcp_url_with_bearer_token)
{
        unsigned port;
        char listen[64], url[64];
        cr_assert_eq(harness_free_port(&port), 0, "no free port");
        snprintf(listen, sizeof(listen), "tcp:127.0.0.1:%u", port);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
        _cleanup_free_ char *token = util_path_join(fixture_root(fx), "token", NULL);
        _cleanup_free_ char *wrong = util_path_join(fixture_root(fx), "wrong-token", NULL);
        cr_assert_eq(util_write_file_atomic(token, "0123456789abcdef0123456789abcdef\n", 33, 0600),
                     0);
        cr_assert_eq(util_write_file_atomic(wrong, "fedcba9876543210\n", 17, 0600), 0);

        int status = -1;
        cr_assert_eq(harness_stop(h, &status), 0, "first iovd did not stop");
        harness_free(h);
        h = NULL;
        const char *const extra[] = {"--listen", listen, "--token-file", token, NULL};
        struct iov_harness_options o = {
                .sysfs_root = fixture_sysfs_root(fx),
                .dev_root = fixture_dev_root(fx),
                .extra_args = extra,
        };
        int r = harness_start(&o, &h);
        _cleanup_free_ char *log = h ? harness_log(h) : NULL;
        cr_assert_eq(r, 0, "iovd with TCP did not start: %s; log:\n%s", strerror(-r), log);

        struct ctl c = {0};
        ctl(&c, "--url", url, "--token-file", token, "device", "0000:00:02.0", NULL);
        cr_assert_eq(c.status, 0, "right token: exit %d, stderr %s", c.status, c.err);
        cr_assert(table_row(c.out, "address"), "device over TCP:\n%s", c.out);
        ctl_clear(&c);
        ctl(&c, "--url", url, "--token-file", wrong, "host", NULL);
        cr_assert_eq(c.status, 1, "wrong token: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: unauthorized: ", 21), 0, "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "--url", url, "host", NULL);
        cr_assert_eq(c.status, 1, "no token: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: unauthorized: ", 21), 0, "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "--url", "http://127.0.0.1:1", "--token-file", token, "host", NULL);
        cr_assert_eq(c.status, 3, "nothing listening: exit %d", c.status);
        cr_assert(strstr(c.err, "http://127.0.0.1:1"), "stderr does not name the URL: %s", c.err);
        ctl_clear(&c);
}
