/* SPDX-License-Identifier: MIT */
/* Durable state across restarts, kill -9, corrupt files and crashes between bind and
 * save; reconciliation with what sysfs shows at start. */
#include <signal.h>
#include <sys/wait.h>

#include "test-alloc-common.h"

/* An item's own file: STATE_DIR/KIND/KEY.json (daemon.h). */
static char *item_file(struct iov_harness *h, const char *kind, const char *key)
{
        return util_strdup_printf("%s/%s/%s.json", h->state_dir, kind, key);
}

/* Allocate (owner vm-1) on h; returns the new allocation's path, /v1/allocations/ID. */
static char *allocate_path(struct iov_harness *h, const char *key, const char *value)
{
        struct json_object *a = allocate(h, "vm-1", key, value, 201);
        char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        json_object_put(a);
        cr_assert_not_null(path, "allocating %s %s", key, value);
        return path;
}

/* What a crash in the middle of an allocation (state "pending") or a release
 * ("releasing") of the VF 0000:01:00.1 leaves: the VF on vfio-pci with its override, and
 * the record saved in that state. */
static void write_interrupted_record(struct fixture *fx, const char *dir, const char *id,
                                     const char *state)
{
        bind_outside_iovd(fx, "0000:01:00.1", "vfio-pci", "vfio-pci");
        _cleanup_free_ char *file = util_path_join(dir, "allocations.json", NULL);
        _cleanup_free_ char *doc = util_strdup_printf(
                "{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"allocations\",\"items\":["
                "{\"id\":\"%s\",\"owner\":\"vm-1\",\"pool\":null,\"state\":\"%s\","
                "\"iommu_group\":6,\"members\":[{\"address\":\"0000:01:00.1\","
                "\"original_driver\":null,\"original_override\":null,\"is_bridge\":false}],"
                "\"created_usec\":1,\"lost_reason\":null}]}\n",
                id, state);
        int r = util_write_file_atomic(file, doc, strlen(doc), 0600);
        cr_assert_eq(r, 0, "write %s: %s", file, strerror(-r));
}

Test(durability, restart_keeps_pools_and_allocations)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        _cleanup_free_ char *path = NULL;
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                json_object_put(call(h, "POST", "/v1/pools",
                                     "{\"name\":\"nvme\",\"selector\":{\"vendor_id\":\"1b36\","
                                     "\"physfn\":\"0000:01:00.0\"}}",
                                     201));
                path = allocate_path(h, "pool", "nvme");
                stop_iovd(h);
        }
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        struct json_object *a = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(a, "state"), "active", "after restart: %s",
                         json_object_to_json_string(a));
        cr_assert_str_eq(jstr(a, "owner"), "vm-1", "after restart: %s",
                         json_object_to_json_string(a));
        json_object_put(a);
        struct json_object *pool = call(h, "GET", "/v1/pools/nvme", NULL, 200);
        cr_assert_eq(jint(pool, "capacity"), 2, "pool after restart: %s",
                     json_object_to_json_string(pool));
        cr_assert_eq(jint(pool, "free"), 1, "pool after restart: %s",
                     json_object_to_json_string(pool));
        json_object_put(pool);
        /* The held VF is still not handed out again. */
        json_object_put(allocate(h, "vm-2", "pool", "nvme", 201));
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"vm-3\",\"pool\":\"nvme\"}", 409,
                     "pool_exhausted");
        remove_state_dir(dir);
}

Test(durability, kill_9_right_after_201_keeps_the_allocation)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        _cleanup_free_ char *path = NULL;
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                path = allocate_path(h, "device", "0000:01:00.1");
                cr_assert_eq(kill(h->pid, SIGKILL), 0, "kill: %s", strerror(errno));
                waitpid(h->pid, NULL, 0);
                h->pid = 0;
        }
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        struct json_object *a = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(a, "state"), "active", "after kill -9: %s",
                         json_object_to_json_string(a));
        json_object_put(a);
        expect_sysfs_driver(fx, "0000:01:00.1", "vfio-pci");
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\",\"device\":\"0000:01:00.1\"}",
                     409, "device_allocated");
        remove_state_dir(dir);
}

Test(durability, corrupt_state_file_refuses_start_and_is_left_untouched)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        _cleanup_free_ char *file = util_path_join(dir, "allocations.json", NULL);
        const char garbage[] = "{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"alloc";
        cr_assert_eq(util_write_file_atomic(file, garbage, sizeof(garbage) - 1, 0600), 0);

        struct iov_harness_options o = {
                .sysfs_root = fixture_sysfs_root(fx),
                .dev_root = fixture_dev_root(fx),
                .state_dir = dir,
        };
        _cleanup_harness_ struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        cr_assert_eq(r, -ECHILD, "iovd started on a corrupt state file: %s", strerror(-r));
        cr_assert_neq(h->exit_status, 0, "iovd exited 0 on a corrupt state file");
        _cleanup_free_ char *log = harness_log(h);
        cr_assert(strstr(log, file), "the log does not name %s:\n%s", file, log);

        _cleanup_free_ char *after = NULL;
        cr_assert_eq(util_read_file(file, 1 << 20, &after, NULL), 0);
        cr_assert_str_eq(after, garbage, "the corrupt file was changed to: %s", after);
        remove_state_dir(dir);
}

Test(durability, newer_state_version_refuses_start)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        _cleanup_free_ char *file = util_path_join(dir, "pools.json", NULL);
        const char newer[] = "{\"format\":\"iovd-state\",\"version\":7,\"kind\":\"pools\","
                             "\"items\":[]}\n";
        cr_assert_eq(util_write_file_atomic(file, newer, sizeof(newer) - 1, 0600), 0);
        struct iov_harness_options o = {
                .sysfs_root = fixture_sysfs_root(fx),
                .dev_root = fixture_dev_root(fx),
                .state_dir = dir,
        };
        _cleanup_harness_ struct iov_harness *h = NULL;
        cr_assert_eq(harness_start(&o, &h), -ECHILD, "iovd started on a newer state file");
        _cleanup_free_ char *log = harness_log(h);
        cr_assert(strstr(log, file) && strstr(log, "newer"), "unclear message:\n%s", log);
        _cleanup_free_ char *after = NULL;
        cr_assert_eq(util_read_file(file, 1 << 20, &after, NULL), 0);
        cr_assert_str_eq(after, newer, "the file was changed to: %s", after);
        remove_state_dir(dir);
}

/* A crash after binding but before the allocation was saved as active leaves a pending
 * record: the next start gives the devices back. */
Test(durability, pending_record_from_a_crash_is_undone_at_start)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        write_interrupted_record(fx, dir, "a-00000000000000aa", "pending");

        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        expect_no_override(fx, "0000:01:00.1");
        call(h, "GET", "/v1/allocations/a-00000000000000aa", NULL, 404);
        json_object_put(allocate(h, "vm-2", "device", "0000:01:00.1", 201));
        remove_state_dir(dir);
}

Test(durability, device_gone_while_stopped_is_lost_not_handed_out)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        _cleanup_free_ char *path = NULL;
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                path = allocate_path(h, "device", "0000:01:00.2");
                stop_iovd(h);
        }
        cr_assert_eq(fixture_remove_device(fx, "0000:01:00.2"), 0);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        struct json_object *a = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(a, "state"), "lost", "after the device vanished: %s",
                         json_object_to_json_string(a));
        json_object_put(a);
        _cleanup_free_ char *saved = NULL;
        _cleanup_free_ char *file = item_file(h, "allocations", path + strlen("/v1/allocations/"));
        cr_assert_eq(util_read_file(file, 1 << 20, &saved, NULL), 0, "read %s", file);
        cr_assert(strstr(saved, "\"lost\""), "lost state not saved: %s", saved);
        /* Releasing a lost allocation forgets it. */
        json_object_put(call(h, "DELETE", path, NULL, 200));
        call(h, "GET", path, NULL, 404);
        remove_state_dir(dir);
}

Test(durability, quarantine_survives_a_restart)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        add_no_reset_device(fx);
        _cleanup_free_ char *dir = make_state_dir("durability");
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                _cleanup_free_ char *path = allocate_path(h, "device", "0000:04:00.0");
                json_object_put(call(h, "DELETE", path, NULL, 200));
                stop_iovd(h);
        }
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\",\"device\":\"0000:04:00.0\"}",
                     409, "device_quarantined");
        json_object_put(call(h, "DELETE", "/v1/quarantine/0000:04:00.0", NULL, 200));
        json_object_put(allocate(h, "vm-2", "device", "0000:04:00.0", 201));
        remove_state_dir(dir);
}

/* A crash in the middle of a release leaves a releasing record: the next start finishes
 * the release (reset, drivers back) instead of handing the group out or keeping it. */
Test(durability, releasing_record_from_a_crash_is_finished_at_start)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        write_interrupted_record(fx, dir, "a-00000000000000bb", "releasing");

        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        expect_no_override(fx, "0000:01:00.1");
        _cleanup_free_ char *log = NULL;
        cr_assert_eq(fixture_kernel_log(fx, &log), 0);
        cr_assert(strstr(log, "reset 0000:01:00.1"), "no reset when finishing the release:\n%s",
                  log);
        call(h, "GET", "/v1/allocations/a-00000000000000bb", NULL, 404);
        _cleanup_free_ char *saved = NULL;
        _cleanup_free_ char *file = util_path_join(dir, "allocations.json", NULL);
        cr_assert_eq(util_read_file(file, 1 << 20, &saved, NULL), 0);
        cr_assert_null(strstr(saved, "a-00000000000000bb"), "record still saved: %s", saved);
        remove_state_dir(dir);
}

/* After a reboot a held VF can come back on a host driver: the allocation is lost, and
 * releasing it must not pull the device from that driver. */
Test(durability, device_retaken_by_a_host_driver_is_lost_and_left_alone)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_free_ char *dir = make_state_dir("durability");
        _cleanup_free_ char *path = NULL;
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                path = allocate_path(h, "device", "0000:01:00.1");
                stop_iovd(h);
        }
        bind_outside_iovd(fx, "0000:01:00.1", "(null)", "nvme");

        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        struct json_object *a = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(a, "state"), "lost", "allocation %s", json_object_to_json_string(a));
        cr_assert(strstr(jstr(a, "lost_reason"), "nvme"), "lost_reason in %s",
                  json_object_to_json_string(a));
        json_object_put(a);
        json_object_put(call(h, "DELETE", path, NULL, 200));
        expect_sysfs_driver(fx, "0000:01:00.1", "nvme");
        remove_state_dir(dir);
}
