/* SPDX-License-Identifier: MIT */
/* Allocations through the real iovd on a generated tree with the fake kernel: by device,
 * by pool, whole groups, viability, injected failures, release, quarantine, the IOMMU
 * safety switch, and a race for the last free VF. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "test-alloc-common.h"

/* GET /v1/allocations lists exactly n; when says at which point, for the message. */
static void expect_allocation_count(struct iov_harness *h, size_t n, const char *when)
{
        struct json_object *list = call(h, "GET", "/v1/allocations", NULL, 200);
        size_t got = json_object_array_length(json_object_object_get(list, "allocations"));
        cr_assert_eq(got, n, "%zu allocations %s, expected %zu: %s", got, when, n,
                     json_object_to_json_string(list));
        json_object_put(list);
}

Test(alloc, by_device_binds_the_group_and_returns_the_vfio_node)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *a = allocate(h, "vm-1", "device", "0000:01:00.1", 201);
        const char *id = jstr(a, "id");
        cr_assert_not_null(id, "no id in %s", json_object_to_json_string(a));
        cr_assert_str_eq(jstr(a, "owner"), "vm-1", "owner in %s", json_object_to_json_string(a));
        struct json_object *devices = json_object_object_get(a, "devices");
        cr_assert_eq(json_object_array_length(devices), 1u, "devices %s",
                     json_object_to_json_string(devices));
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(devices, 0)),
                         "0000:01:00.1", "devices %s", json_object_to_json_string(devices));
        int64_t group = jint(a, "iommu_group");
        cr_assert_geq(group, 0, "iommu_group %lld", (long long)group);
        _cleanup_free_ char *node =
                util_strdup_printf("%s/vfio/%lld", fixture_dev_root(fx), (long long)group);
        cr_assert_str_eq(jstr(a, "vfio_group"), node, "vfio_group in %s",
                         json_object_to_json_string(a));
        cr_assert_not_null(jstr(a, "created"), "no created time in %s",
                           json_object_to_json_string(a));
        expect_sysfs_driver(fx, "0000:01:00.1", "vfio-pci");

        struct json_object *dev = get_device(h, "0000:01:00.1");
        struct json_object *held = json_object_object_get(dev, "allocation");
        cr_assert_str_eq(jstr(held, "id") ? jstr(held, "id") : "", id, "device allocation %s",
                         json_object_to_json_string(dev));
        cr_assert_str_eq(jstr(dev, "driver") ? jstr(dev, "driver") : "", "vfio-pci",
                         "device driver in %s", json_object_to_json_string(dev));
        json_object_put(dev);

        _cleanup_free_ char *gpath = util_strdup_printf("/v1/iommu-groups/%lld", (long long)group);
        struct json_object *g = call(h, "GET", gpath, NULL, 200);
        cr_assert_str_eq(jstr(g, "owner") ? jstr(g, "owner") : "", "vm-1", "group %s",
                         json_object_to_json_string(g));
        json_object_put(g);

        _cleanup_free_ char *apath = util_strdup_printf("/v1/allocations/%s", id);
        struct json_object *got = call(h, "GET", apath, NULL, 200);
        cr_assert_str_eq(jstr(got, "state"), "active", "state in %s",
                         json_object_to_json_string(got));
        json_object_put(got);

        /* Never twice. */
        struct json_object *again = allocate(h, "vm-2", "device", "0000:01:00.1", 409);
        cr_assert_str_eq(error_code(again), "device_allocated", "second allocation: %s",
                         json_object_to_json_string(again));
        json_object_put(again);
        json_object_put(a);
}

Test(alloc, bad_requests_are_refused_clearly)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\"}", 400, "missing_field");
        expect_error(h, "POST", "/v1/allocations",
                     "{\"owner\":\"x\",\"device\":\"0000:01:00.1\",\"pool\":\"p\"}", 404,
                     "pool_not_found");
        expect_error(h, "POST", "/v1/allocations",
                     "{\"owner\":\"x\",\"device\":\"01:00.1\",\"pool\":\"p\"}", 400,
                     "invalid_address");
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\",\"device\":\"01:00.1\"}", 400,
                     "invalid_address");
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"\",\"device\":\"0000:01:00.1\"}",
                     400, "invalid_value");
        expect_error(h, "POST", "/v1/allocations",
                     "{\"owner\":\"x\",\"device\":\"0000:01:00.1\",\"extra\":1}", 400,
                     "unknown_field");
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\",\"device\":\"0000:09:00.0\"}",
                     404, "device_not_found");
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\",\"pool\":\"nope\"}", 404,
                     "pool_not_found");
        expect_error(h, "GET", "/v1/allocations/a-0000000000000000", NULL, 404,
                     "allocation_not_found");
        expect_error(h, "DELETE", "/v1/allocations/a-0000000000000000", NULL, 404,
                     "allocation_not_found");
        /* Nothing was touched. */
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        expect_allocation_count(h, 0, "after refusals");
}

/* Allocate device as a member of pool for owner; expect status. */
static struct json_object *allocate_member(struct iov_harness *h, const char *owner,
                                           const char *pool, const char *device, long expected)
{
        _cleanup_free_ char *body = util_strdup_printf(
                "{\"owner\":\"%s\",\"pool\":\"%s\",\"device\":\"%s\"}", owner, pool, device);
        return call(h, "POST", "/v1/allocations", body, expected);
}

/* GET /v1/pools/name shows free and allocations as expected. */
static void expect_pool_counts(struct iov_harness *h, const char *name, int64_t free,
                               int64_t allocations)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/pools/%s", name);
        struct json_object *pool = call(h, "GET", path, NULL, 200);
        cr_assert_eq(jint(pool, "free"), free, "free %lld, expected %lld: %s",
                     (long long)jint(pool, "free"), (long long)free,
                     json_object_to_json_string(pool));
        cr_assert_eq(jint(pool, "allocations"), allocations, "allocations %lld, expected %lld: %s",
                     (long long)jint(pool, "allocations"), (long long)allocations,
                     json_object_to_json_string(pool));
        json_object_put(pool);
}

Test(alloc, device_named_in_its_pool_counts_there)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        json_object_put(call(h, "POST", "/v1/pools",
                             "{\"name\":\"nvme-vfs\",\"selector\":{\"physfn\":\"0000:01:00.0\"}}",
                             201));
        json_object_put(
                call(h, "POST", "/v1/pools",
                     "{\"name\":\"second\",\"selector\":{\"addresses\":[\"0000:01:00.2\"]}}", 201));

        struct json_object *o = allocate_member(h, "vm-1", "nope", "0000:01:00.1", 404);
        cr_assert_str_eq(error_code(o), "pool_not_found", "%s", json_object_to_json_string(o));
        json_object_put(o);
        o = allocate_member(h, "vm-1", "second", "0000:01:00.1", 409);
        cr_assert_str_eq(error_code(o), "device_not_in_pool", "%s", json_object_to_json_string(o));
        json_object_put(o);
        o = allocate_member(h, "vm-1", "nvme-vfs", "0000:09:00.0", 404);
        cr_assert_str_eq(error_code(o), "device_not_found", "%s", json_object_to_json_string(o));
        json_object_put(o);
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        expect_allocation_count(h, 0, "after refusals");

        struct json_object *a = allocate_member(h, "vm-1", "nvme-vfs", "0000:01:00.2", 201);
        cr_assert_str_eq(jstr(a, "pool") ? jstr(a, "pool") : "", "nvme-vfs", "pool in %s",
                         json_object_to_json_string(a));
        const char *dev = json_object_get_string(
                json_object_array_get_idx(json_object_object_get(a, "devices"), 0));
        cr_assert_str_eq(dev ? dev : "", "0000:01:00.2", "devices in %s",
                         json_object_to_json_string(a));
        expect_sysfs_driver(fx, "0000:01:00.2", "vfio-pci");
        expect_pool_counts(h, "nvme-vfs", 1, 1);

        /* The pool path's refusals, and the pool is held. */
        o = allocate_member(h, "vm-2", "nvme-vfs", "0000:01:00.2", 409);
        cr_assert_str_eq(error_code(o), "device_allocated", "%s", json_object_to_json_string(o));
        json_object_put(o);
        expect_error(h, "DELETE", "/v1/pools/nvme-vfs", NULL, 409, "pool_in_use");
        json_object_put(allocate(h, "vm-2", "pool", "nvme-vfs", 201)); /* the other VF */
        expect_pool_counts(h, "nvme-vfs", 0, 2);

        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        json_object_put(call(h, "DELETE", path, NULL, 200));
        expect_pool_counts(h, "nvme-vfs", 1, 1);
        json_object_put(a);
}

Test(alloc, group_member_on_host_driver_blocks_and_is_listed)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        add_triple(fx, "mlx5_core");
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *o = allocate(h, "vm-1", "device", "0000:03:00.0", 409);
        cr_assert_str_eq(error_code(o), "group_not_viable", "reply %s",
                         json_object_to_json_string(o));
        struct json_object *blockers =
                json_object_object_get(json_object_object_get(o, "error"), "blockers");
        cr_assert_eq(json_object_array_length(blockers), 1u, "blockers %s",
                     json_object_to_json_string(o));
        struct json_object *b = json_object_array_get_idx(blockers, 0);
        cr_assert_str_eq(jstr(b, "address"), "0000:03:00.2", "blocker %s",
                         json_object_to_json_string(b));
        cr_assert_str_eq(jstr(b, "driver"), "mlx5_core", "blocker %s",
                         json_object_to_json_string(b));
        const char *message = jstr(json_object_object_get(o, "error"), "message");
        cr_assert(strstr(message, "0000:03:00.2") && strstr(message, "mlx5_core"),
                  "message does not name the blocker: %s", message);
        json_object_put(o);
        for (int i = 0; i < 2; i++) {
                char address[16];
                snprintf(address, sizeof(address), "0000:03:00.%d", i);
                expect_sysfs_driver(fx, address, "");
        }
        expect_sysfs_driver(fx, "0000:03:00.2", "mlx5_core");

        /* A pool over the group counts it but has nothing free to hand out. */
        json_object_put(call(h, "POST", "/v1/pools",
                             "{\"name\":\"mlx\",\"selector\":{\"vendor_id\":\"15b3\"}}", 201));
        struct json_object *pool = call(h, "GET", "/v1/pools/mlx", NULL, 200);
        cr_assert_eq(jint(pool, "capacity"), 3, "pool %s", json_object_to_json_string(pool));
        cr_assert_eq(jint(pool, "free"), 0, "pool %s", json_object_to_json_string(pool));
        json_object_put(pool);
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"vm-1\",\"pool\":\"mlx\"}", 409,
                     "pool_exhausted");
}

Test(alloc, whole_group_of_three_is_handed_out_and_given_back)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        add_triple(fx, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *a = allocate(h, "vm-1", "device", "0000:03:00.1", 201);
        struct json_object *devices = json_object_object_get(a, "devices");
        cr_assert_eq(json_object_array_length(devices), 3u, "devices %s",
                     json_object_to_json_string(a));
        cr_assert_eq(jint(a, "iommu_group"), 30, "group in %s", json_object_to_json_string(a));
        for (int i = 0; i < 3; i++) {
                char address[16];
                snprintf(address, sizeof(address), "0000:03:00.%d", i);
                expect_sysfs_driver(fx, address, "vfio-pci");
        }
        /* Another member of the same group is taken too. */
        struct json_object *again = allocate(h, "vm-2", "device", "0000:03:00.2", 409);
        cr_assert_str_eq(error_code(again), "device_allocated", "reply %s",
                         json_object_to_json_string(again));
        json_object_put(again);

        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        struct json_object *rel = call(h, "DELETE", path, NULL, 200);
        cr_assert_eq(json_object_array_length(json_object_object_get(rel, "released")), 3u,
                     "released %s", json_object_to_json_string(rel));
        json_object_put(rel);
        for (int i = 0; i < 3; i++) {
                char address[16];
                snprintf(address, sizeof(address), "0000:03:00.%d", i);
                expect_sysfs_driver(fx, address, "");
                expect_no_override(fx, address);
        }
        json_object_put(a);
}

Test(alloc, injected_bind_failure_restores_every_member)
{
        struct fixture_kernel_options opts = {.fail_bind = "0000:03:00.2"};
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, &opts);
        add_triple(fx, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct iov_http_reply reply = {0};
        int r = harness_request(h, "POST", "/v1/allocations",
                                "{\"owner\":\"vm-1\",\"device\":\"0000:03:00.0\"}", &reply);
        cr_assert_eq(r, 0, "no reply: %s", strerror(-r));
        cr_assert(reply.status == 409 || reply.status >= 500, "status %ld: %s", reply.status,
                  reply.body);
        cr_assert_str_eq(error_code(reply.json), "bind_failed", "reply %s", reply.body);
        harness_reply_clear(&reply);

        for (int i = 0; i < 3; i++) {
                char address[16];
                snprintf(address, sizeof(address), "0000:03:00.%d", i);
                expect_sysfs_driver(fx, address, "");
                expect_no_override(fx, address);
        }
        expect_allocation_count(h, 0, "after a failed bind");

        /* Once the fault is gone the same group can be allocated. */
        cr_assert_eq(fixture_kernel_control(fx, "clear"), 0);
        json_object_put(allocate(h, "vm-1", "device", "0000:03:00.0", 201));
}

Test(alloc, device_vanishing_mid_bind_is_refused_and_nothing_is_held)
{
        struct fixture_kernel_options opts = {.vanish_on_bind = "0000:01:00.2"};
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, &opts);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct iov_http_reply reply = {0};
        int r = harness_request(h, "POST", "/v1/allocations",
                                "{\"owner\":\"vm-1\",\"device\":\"0000:01:00.2\"}", &reply);
        cr_assert_eq(r, 0, "no reply: %s", strerror(-r));
        cr_assert(reply.status == 409 || reply.status >= 500, "status %ld: %s", reply.status,
                  reply.body);
        harness_reply_clear(&reply);
        expect_allocation_count(h, 0, "after a vanished device");
        /* The other VF is still fine. */
        json_object_put(allocate(h, "vm-1", "device", "0000:01:00.1", 201));
}

Test(alloc, release_resets_and_returns_the_device_to_the_pool)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        json_object_put(call(h, "POST", "/v1/pools",
                             "{\"name\":\"nvme-vfs\",\"selector\":{\"physfn\":\"0000:01:00.0\"}}",
                             201));
        struct json_object *a = allocate(h, "vm-1", "pool", "nvme-vfs", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        struct json_object *rel = call(h, "DELETE", path, NULL, 200);
        cr_assert_eq(json_object_array_length(json_object_object_get(rel, "quarantined")), 0u,
                     "quarantined %s", json_object_to_json_string(rel));
        json_object_put(rel);
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        _cleanup_free_ char *log = NULL;
        cr_assert_eq(fixture_kernel_log(fx, &log), 0);
        cr_assert(strstr(log, "reset 0000:01:00.1"), "no reset before release; kernel log:\n%s",
                  log);
        call(h, "GET", path, NULL, 404);

        struct json_object *pool = call(h, "GET", "/v1/pools/nvme-vfs", NULL, 200);
        cr_assert_eq(jint(pool, "free"), 1, "pool after release %s",
                     json_object_to_json_string(pool));
        json_object_put(pool);
        json_object_put(allocate(h, "vm-2", "pool", "nvme-vfs", 201));
        json_object_put(a);
}

Test(alloc, device_without_reset_is_quarantined_on_release)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        add_no_reset_device(fx);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *a = allocate(h, "vm-1", "device", "0000:04:00.0", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        struct json_object *rel = call(h, "DELETE", path, NULL, 200);
        struct json_object *q = json_object_object_get(rel, "quarantined");
        cr_assert_eq(json_object_array_length(q), 1u, "quarantined %s",
                     json_object_to_json_string(rel));
        cr_assert_str_eq(jstr(json_object_array_get_idx(q, 0), "address"), "0000:04:00.0",
                         "quarantined %s", json_object_to_json_string(rel));
        json_object_put(rel);
        /* Held back on vfio-pci, reported, never handed out again. */
        expect_sysfs_driver(fx, "0000:04:00.0", "vfio-pci");
        struct json_object *dev = get_device(h, "0000:04:00.0");
        struct json_object *held = json_object_object_get(dev, "allocation");
        cr_assert_str_eq(jstr(held, "state") ? jstr(held, "state") : "", "quarantined", "device %s",
                         json_object_to_json_string(dev));
        json_object_put(dev);
        struct json_object *again = allocate(h, "vm-2", "device", "0000:04:00.0", 409);
        cr_assert_str_eq(error_code(again), "device_quarantined", "reply %s",
                         json_object_to_json_string(again));
        json_object_put(again);
        struct json_object *list = call(h, "GET", "/v1/quarantine", NULL, 200);
        struct json_object *entries = json_object_object_get(list, "quarantined");
        cr_assert_eq(json_object_array_length(entries), 1u, "quarantine %s",
                     json_object_to_json_string(list));
        cr_assert(strstr(jstr(json_object_array_get_idx(entries, 0), "reason"), "reset"),
                  "reason does not mention the reset: %s", json_object_to_json_string(list));
        json_object_put(list);

        /* An operator clears it: it goes back to its driver (none) and can be allocated. */
        expect_error(h, "DELETE", "/v1/quarantine/0000:01:00.0", NULL, 404, "not_quarantined");
        expect_error(h, "DELETE", "/v1/quarantine/04:00.0", NULL, 400, "invalid_address");
        json_object_put(call(h, "DELETE", "/v1/quarantine/0000:04:00.0", NULL, 200));
        expect_sysfs_driver(fx, "0000:04:00.0", "");
        expect_no_override(fx, "0000:04:00.0");
        json_object_put(allocate(h, "vm-2", "device", "0000:04:00.0", 201));
        json_object_put(a);
}

Test(alloc, no_iommu_or_no_remapping_is_refused_unless_unsafe)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        cr_assert_eq(fixture_set_iommu(fx, false, false), 0);
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
                struct json_object *o = allocate(h, "vm-1", "device", "0000:01:00.1", 409);
                cr_assert_str_eq(error_code(o), "iommu_unavailable", "reply %s",
                                 json_object_to_json_string(o));
                json_object_put(o);
        }
        cr_assert_eq(fixture_set_iommu(fx, true, false), 0);
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
                struct json_object *o = allocate(h, "vm-1", "device", "0000:01:00.1", 409);
                cr_assert_str_eq(error_code(o), "interrupt_remapping_unavailable", "reply %s",
                                 json_object_to_json_string(o));
                json_object_put(o);
                expect_sysfs_driver(fx, "0000:01:00.1", "");
        }
        const char *const unsafe[] = {"--allow-unsafe-interrupts", NULL};
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, unsafe);
        json_object_put(allocate(h, "vm-1", "device", "0000:01:00.1", 201));
        expect_sysfs_driver(fx, "0000:01:00.1", "vfio-pci");
}

struct racer {
        struct iov_harness *h;
        pthread_barrier_t *start;
        long status;
        char code[64];
};

static void *race(void *userdata)
{
        struct racer *r = userdata;
        struct iov_http_reply reply = {0};
        pthread_barrier_wait(r->start);
        if (harness_request(r->h, "POST", "/v1/allocations",
                            "{\"owner\":\"racer\",\"pool\":\"last\"}", &reply) == 0) {
                r->status = reply.status;
                const char *code = error_code(reply.json);
                snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
        }
        harness_reply_clear(&reply);
        return NULL;
}

Test(alloc, racing_for_the_last_free_vf_exactly_one_wins)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        json_object_put(call(h, "POST", "/v1/pools",
                             "{\"name\":\"last\",\"selector\":{\"physfn\":\"0000:01:00.0\"}}",
                             201));
        json_object_put(allocate(h, "first", "pool", "last", 201));

        enum { N = 8 };
        struct racer racers[N];
        pthread_t threads[N];
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, N);
        for (int i = 0; i < N; i++) {
                racers[i] = (struct racer){.h = h, .start = &barrier};
                pthread_create(&threads[i], NULL, race, &racers[i]);
        }
        int winners = 0;
        for (int i = 0; i < N; i++) {
                pthread_join(threads[i], NULL);
                if (racers[i].status == 201) {
                        winners++;
                        continue;
                }
                cr_assert_eq(racers[i].status, 409L, "racer %d: status %ld", i, racers[i].status);
                cr_assert(streq(racers[i].code, "pool_exhausted") ||
                                  streq(racers[i].code, "device_allocated"),
                          "racer %d: code %s", i, racers[i].code);
        }
        pthread_barrier_destroy(&barrier);
        cr_assert_eq(winners, 1, "%d racers won the last VF", winners);
        expect_allocation_count(h, 2, "after the race");
}

Test(alloc, device_vanishing_while_allocated_becomes_lost)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        struct json_object *a = allocate(h, "vm-1", "device", "0000:01:00.2", 201);
        int fd = -1;
        long status = 0;
        cr_assert_eq(harness_events_open(h, &fd, &status), 0);
        cr_assert_eq(status, 200L, "events status %ld", status);

        cr_assert_eq(fixture_remove_device(fx, "0000:01:00.2"), 0);
        json_object_put(call(h, "POST", "/v1/rescan", NULL, 200));

        bool seen = false;
        for (int i = 0; i < 50 && !seen; i++) {
                _cleanup_free_ char *line = NULL;
                if (harness_events_next(fd, 200, &line) < 0)
                        continue;
                seen = strstr(line, "\"allocation_lost\"") && strstr(line, jstr(a, "id"));
        }
        close(fd);
        cr_assert(seen, "no allocation_lost event for %s", jstr(a, "id"));
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        struct json_object *got = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(got, "state"), "lost", "allocation %s",
                         json_object_to_json_string(got));
        cr_assert(jstr(got, "lost_reason") && strstr(jstr(got, "lost_reason"), "0000:01:00.2"),
                  "lost_reason in %s", json_object_to_json_string(got));
        json_object_put(got);
        json_object_put(a);
}

/* A function an administrator had already put on vfio-pci goes back exactly so. */
Test(alloc, release_gives_back_the_previous_override_and_driver)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        bind_outside_iovd(fx, "0000:01:00.1", "vfio-pci", "vfio-pci");
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);

        struct json_object *a = allocate(h, "vm-1", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        json_object_put(call(h, "DELETE", path, NULL, 200));
        expect_sysfs_driver(fx, "0000:01:00.1", "vfio-pci");
        _cleanup_free_ char *after = sysfs_override(fx, "0000:01:00.1");
        cr_assert_str_eq(after, "vfio-pci", "driver_override after release: \"%s\"", after);
        json_object_put(a);
}

/* Make the state document doc unwritable: a directory where it goes makes the rename of
 * an atomic write fail, also for root. A saved document is kept aside meanwhile. */
/* Make every save in a collection fail: its directory (STATE_DIR/KIND/, one file per
 * item) moved aside and a plain file in its place. */
static void block_state_dir(const char *dir, const char *aside)
{
        cr_assert_eq(rename(dir, aside), 0, "rename %s: %s", dir, strerror(errno));
        int fd = open(dir, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0, "create %s: %s", dir, strerror(errno));
        close(fd);
}

static void unblock_state_dir(const char *dir, const char *aside)
{
        cr_assert_eq(unlink(dir), 0, "unlink %s: %s", dir, strerror(errno));
        cr_assert_eq(rename(aside, dir), 0, "rename %s: %s", aside, strerror(errno));
}

/* When the state cannot be saved nothing is handed out, and a release that cannot be
 * recorded leaves the allocation as it was. */
Test(alloc, state_write_failure_refuses_and_changes_nothing)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        _cleanup_free_ char *doc = util_path_join(h->state_dir, "allocations", NULL);
        _cleanup_free_ char *aside = util_path_join(h->state_dir, "aside", NULL);

        block_state_dir(doc, aside);
        expect_error(h, "POST", "/v1/allocations", "{\"owner\":\"x\",\"device\":\"0000:01:00.1\"}",
                     500, "state_write_failed");
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        expect_allocation_count(h, 0, "after a failed save");
        unblock_state_dir(doc, aside);

        struct json_object *a = allocate(h, "vm-1", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        block_state_dir(doc, aside);
        expect_error(h, "DELETE", path, NULL, 500, "state_write_failed");
        expect_sysfs_driver(fx, "0000:01:00.1", "vfio-pci");
        struct json_object *got = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(got, "state"), "active", "after a failed release: %s",
                         json_object_to_json_string(got));
        json_object_put(got);
        unblock_state_dir(doc, aside);
        json_object_put(call(h, "DELETE", path, NULL, 200));
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        json_object_put(a);
}

Test(alloc, pool_changes_that_cannot_be_saved_are_refused)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        _cleanup_free_ char *doc = util_path_join(h->state_dir, "pools", NULL);
        _cleanup_free_ char *aside = util_path_join(h->state_dir, "aside", NULL);
        const char *body = "{\"name\":\"p\",\"selector\":{\"vendor_id\":\"1b36\"}}";

        block_state_dir(doc, aside);
        expect_error(h, "POST", "/v1/pools", body, 500, "state_write_failed");
        call(h, "GET", "/v1/pools/p", NULL, 404);
        unblock_state_dir(doc, aside);

        json_object_put(call(h, "POST", "/v1/pools", body, 201));
        block_state_dir(doc, aside);
        expect_error(h, "DELETE", "/v1/pools/p", NULL, 500, "state_write_failed");
        json_object_put(call(h, "GET", "/v1/pools/p", NULL, 200));
        unblock_state_dir(doc, aside);
        json_object_put(call(h, "DELETE", "/v1/pools/p", NULL, 200));
        call(h, "GET", "/v1/pools/p", NULL, 404);
}
