/* SPDX-License-Identifier: MIT */
/* The state store at its limits and under crashes: every pool limit and the allocations
 * limit filled then a restart, legacy single-document state migrated to one file per item, a bad
 * item file refused by name and left alone, and kill -9 at each step of an allocation's create and
 * delete with the invariants checked after each restart. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "alloc/alloc.h"
#include "test-alloc-common.h"

#define N_VFS 2

static void write_text(const char *path, const char *text)
{
        int r = util_write_file_atomic(path, text, strlen(text), 0600);
        cr_assert_eq(r, 0, "write %s: %s", path, strerror(-r));
}

static int64_t host_count(struct iov_harness *h, const char *key)
{
        struct json_object *host = call(h, "GET", "/v1/host", NULL, 200);
        int64_t n = jint(json_object_object_get(host, "counts"), key);
        json_object_put(host);
        return n;
}

/* A body for a pool listing IOV_POOL_ADDRESSES_MAX addresses (none need to exist). */
static char *big_pool_body(unsigned index)
{
        size_t size = 64 + IOV_POOL_ADDRESSES_MAX * 18;
        char *body = malloc(size);
        cr_assert_not_null(body);
        int used =
                snprintf(body, size, "{\"name\":\"big-%u\",\"selector\":{\"addresses\":[", index);
        for (unsigned i = 0; i < IOV_POOL_ADDRESSES_MAX; i++)
                used += snprintf(body + used, size - (size_t)used, "%s\"0010:%02x:%02x.%u\"",
                                 i ? "," : "", i / 128, (i / 4) % 32, i % 4);
        snprintf(body + used, size - (size_t)used, "]}}");
        return body;
}

/* start_iovd with time to load 16,384 files on a loaded machine. */
static struct iov_harness *start_iovd_patiently(struct fixture *fx, const char *dir)
{
        struct iov_harness_options o = {
                .sysfs_root = fixture_sysfs_root(fx),
                .dev_root = fixture_dev_root(fx),
                .state_dir = dir,
                .no_wait = true,
        };
        struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        if (r == 0)
                r = harness_wait_ready(h, 120 * 1000);
        _cleanup_free_ char *log = h ? harness_log(h) : NULL;
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r), log ? log : "");
        return h;
}

/* n item files of kind ("pools", "allocations") as an earlier iovd wrote them: the marker
 * <kind>.json and <kind>/<key>.json, with key and item from item_json(i, &key). Plain
 * writes: thousands of renames and fsyncs would take minutes on a loaded machine. */
static void write_item_files(const char *dir, const char *kind, unsigned n,
                             char *(*item_json)(unsigned i, char **ret_key))
{
        _cleanup_free_ char *items = util_path_join(dir, kind, NULL);
        cr_assert_eq(util_mkdir_p(items, 0700), 0);
        _cleanup_free_ char *marker = util_strdup_printf("%s/%s.json", dir, kind);
        _cleanup_free_ char *marker_text =
                util_strdup_printf("{\"format\": \"iovd-state\", \"version\": 2, \"kind\": \"%s\", "
                                   "\"items_in\": \"%s/\"}\n",
                                   kind, kind);
        write_text(marker, marker_text);
        for (unsigned i = 0; i < n; i++) {
                _cleanup_free_ char *key = NULL;
                _cleanup_free_ char *item = item_json(i, &key);
                _cleanup_free_ char *path = util_strdup_printf("%s/%s.json", items, key);
                FILE *f = fopen(path, "we");
                cr_assert_not_null(f, "%s: %s", path, strerror(errno));
                fprintf(f,
                        "{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"%s\",\"item\":%s}\n",
                        kind, item);
                cr_assert_eq(fclose(f), 0);
        }
}

/* The iovd counts of key on /v1/host are want; then a clean stop and a start on the same
 * state, where they are want again. Returns the new iovd. */
static struct iov_harness *restart_counting(struct fixture *fx, const char *dir,
                                            struct iov_harness *h, const char *key, int64_t want)
{
        cr_assert_eq(host_count(h, key), want, "%s before the restart", key);
        stop_iovd(h);
        harness_free(h);
        h = start_iovd_patiently(fx, dir);
        cr_assert_eq(host_count(h, key), want, "%s after the restart", key);
        return h;
}

/* Small pool i: a vendor selector, none of the address budget. */
static char *small_pool_item(unsigned i, char **ret_key)
{
        *ret_key = util_strdup_printf("small-%u", i);
        return util_strdup_printf(
                "{\"name\":\"small-%u\",\"selector\":{\"vendor_id\":\"1b36\"},\"created_usec\":%u}",
                i, i + 1);
}

/* Every pool limit at once: IOV_POOLS_MAX pools, IOV_POOL_ADDRESSES_TOTAL_MAX addresses
 * in their selectors. Beyond either, 409; after a restart everything is there. */
Test(state_limits, every_pool_limit_filled_loads_again, .timeout = 240)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(0, NULL);
        _cleanup_free_ char *dir = make_state_dir("state-limits");
        const unsigned big = IOV_POOL_ADDRESSES_TOTAL_MAX / IOV_POOL_ADDRESSES_MAX;
        /* Most pools as files a running iovd accepted before, the rest through the API. */
        write_item_files(dir, "pools", IOV_POOLS_MAX - big - 1, small_pool_item);
        _cleanup_harness_ struct iov_harness *h = start_iovd_patiently(fx, dir);
        for (unsigned i = 0; i < big; i++) {
                _cleanup_free_ char *body = big_pool_body(i);
                json_object_put(call(h, "POST", "/v1/pools", body, 201));
        }
        _cleanup_free_ char *one_more = big_pool_body(big);
        expect_error(h, "POST", "/v1/pools", one_more, 409, "too_many_pool_addresses");
        json_object_put(call(h, "POST", "/v1/pools",
                             "{\"name\":\"last\",\"selector\":{\"class\":\"01\"}}", 201));
        expect_error(h, "POST", "/v1/pools",
                     "{\"name\":\"beyond\",\"selector\":{\"class\":\"01\"}}", 409,
                     "too_many_pools");
        h = restart_counting(fx, dir, TAKE_PTR(h), "pools", IOV_POOLS_MAX);
        _cleanup_free_ char *path = util_strdup_printf("/v1/pools/big-%u", big - 1);
        struct json_object *pool = call(h, "GET", path, NULL, 200);
        struct json_object *sel = json_object_object_get(pool, "selector");
        size_t n = json_object_array_length(json_object_object_get(sel, "addresses"));
        cr_assert_eq(n, IOV_POOL_ADDRESSES_MAX, "%s lists %zu addresses after the restart", path,
                     n);
        json_object_put(pool);
        json_object_put(call(h, "GET", "/v1/pools/last", NULL, 200));
        remove_state_dir(dir);
}

/* Allocation i of a device that vanished (domain 0010, which no generated device has),
 * so it loads as lost. */
static char *lost_allocation_item(unsigned i, char **ret_key)
{
        *ret_key = util_strdup_printf("a-%016x", i);
        return util_strdup_printf(
                "{\"id\":\"a-%016x\",\"owner\":\"gone\",\"pool\":null,\"state\":\"lost\","
                "\"iommu_group\":%u,\"members\":[{\"address\":\"0010:%02x:%02x.%u\","
                "\"original_driver\":null,\"original_override\":null,\"is_bridge\":false}],"
                "\"created_usec\":%u,\"lost_reason\":\"the device vanished\"}",
                i, 100000 + i, i >> 8, (i >> 3) & 0x1f, i & 7, i + 1);
}

/* IOV_ALLOCATIONS_MAX records, all but one lost ones an earlier iovd kept: the last one
 * through the API, then 409 too_many_allocations; after a restart everything is there. */
Test(state_limits, every_allocation_limit_filled_loads_again, .timeout = 240)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(N_VFS, NULL);
        _cleanup_free_ char *dir = make_state_dir("state-limits");
        write_item_files(dir, "allocations", IOV_ALLOCATIONS_MAX - 1, lost_allocation_item);
        _cleanup_harness_ struct iov_harness *h = start_iovd_patiently(fx, dir);
        struct json_object *a = allocate(h, "last", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *id = strdup(jstr(a, "id"));
        json_object_put(a);
        expect_error(h, "POST", "/v1/allocations",
                     "{\"owner\":\"beyond\",\"device\":\"0000:01:00.2\"}", 409,
                     "too_many_allocations");
        h = restart_counting(fx, dir, TAKE_PTR(h), "allocations", IOV_ALLOCATIONS_MAX);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", id);
        a = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(a, "state"), "active", "%s", json_object_to_json_string(a));
        json_object_put(a);
        a = call(h, "GET", "/v1/allocations/a-0000000000000007", NULL, 200);
        cr_assert_str_eq(jstr(a, "state"), "lost", "%s", json_object_to_json_string(a));
        json_object_put(a);
        remove_state_dir(dir);
}

static const char legacy_allocation[] =
        "{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"allocations\",\"items\":["
        "{\"id\":\"a-00000000000000a1\",\"owner\":\"vm-1\",\"pool\":\"nvme\",\"state\":"
        "\"active\",\"iommu_group\":6,\"members\":[{\"address\":\"0000:01:00.1\","
        "\"original_driver\":null,\"original_override\":null,\"is_bridge\":false}],"
        "\"created_usec\":1,\"lost_reason\":null}]}\n";

/* State written by an iovd from before per-item files loads, is rewritten as one file
 * per item, and the old documents become markers an older iovd refuses. */
Test(state_limits, legacy_documents_are_migrated)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(N_VFS, NULL);
        _cleanup_free_ char *dir = make_state_dir("state-limits");
        bind_outside_iovd(fx, "0000:01:00.1", "vfio-pci", "vfio-pci");
        _cleanup_free_ char *pools = util_path_join(dir, "pools.json", NULL);
        _cleanup_free_ char *allocations = util_path_join(dir, "allocations.json", NULL);
        write_text(pools, "{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"pools\",\"items\":["
                          "{\"name\":\"nvme\",\"selector\":{\"physfn\":\"0000:01:00.0\"},"
                          "\"created_usec\":5}]}\n");
        write_text(allocations, legacy_allocation);
        for (int round = 0; round < 2; round++) {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                struct json_object *a =
                        call(h, "GET", "/v1/allocations/a-00000000000000a1", NULL, 200);
                cr_assert_str_eq(jstr(a, "state"), "active", "round %d: %s", round,
                                 json_object_to_json_string(a));
                json_object_put(a);
                struct json_object *p = call(h, "GET", "/v1/pools/nvme", NULL, 200);
                cr_assert_eq(jint(p, "allocations"), 1, "round %d: %s", round,
                             json_object_to_json_string(p));
                json_object_put(p);
                stop_iovd(h);
        }
        _cleanup_free_ char *item =
                util_path_join(dir, "allocations/a-00000000000000a1.json", NULL);
        _cleanup_free_ char *marker = NULL, *text = NULL;
        cr_assert_eq(util_read_file(item, 1 << 20, &text, NULL), 0, "%s was not written", item);
        cr_assert_eq(util_read_file(allocations, 1 << 20, &marker, NULL), 0);
        cr_assert(strstr(marker, "\"version\": 2") && strstr(marker, "\"items_in\""),
                  "allocations.json is not the marker: %s", marker);
        remove_state_dir(dir);
}

static void expect_refused(struct fixture *fx, const char *dir, const char *file,
                           const char *content)
{
        struct iov_harness_options o = {
                .sysfs_root = fixture_sysfs_root(fx),
                .dev_root = fixture_dev_root(fx),
                .state_dir = dir,
        };
        _cleanup_harness_ struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        cr_assert_eq(r, -ECHILD, "iovd started with %s", file);
        _cleanup_free_ char *log = harness_log(h);
        cr_assert(strstr(log, file), "the log does not name %s:\n%s", file, log);
        _cleanup_free_ char *after = NULL;
        cr_assert_eq(util_read_file(file, 1 << 20, &after, NULL), 0, "%s is gone", file);
        cr_assert_str_eq(after, content, "%s was changed", file);
}

/* Every item file is checked like a request: one that fails stops the start, named in
 * the log, and stays as it is. */
Test(state_limits, a_bad_item_file_is_refused_by_name_and_left_alone)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(N_VFS, NULL);
        static const char *const cases[][2] = {
                /* a pool in another pool's file */
                {"pools/other.json", "{\"format\":\"iovd-state\",\"version\":1,\"kind\":"
                                     "\"pools\",\"item\":{\"name\":\"p\",\"selector\":{"
                                     "\"class\":\"01\"},\"created_usec\":1}}\n"},
                /* an owner with a control character, as the API never accepts */
                {"allocations/a-00000000000000b2.json",
                 "{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"allocations\",\"item\":"
                 "{\"id\":\"a-00000000000000b2\",\"owner\":\"vm\\u0001\",\"pool\":null,"
                 "\"state\":\"active\",\"iommu_group\":6,\"members\":[{\"address\":"
                 "\"0000:01:00.1\",\"original_driver\":null,\"original_override\":null,"
                 "\"is_bridge\":false}],\"created_usec\":1,\"lost_reason\":null}}\n"},
                /* an id iovd never makes, pointing out of the directory once used */
                {"allocations/a-..json", "{}\n"},
                /* a file that is not KEY.json */
                {"quarantine/notes.txt", "hello\n"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *dir = make_state_dir("state-limits");
                _cleanup_free_ char *file = util_path_join(dir, cases[i][0], NULL);
                _cleanup_free_ char *parent = strdup(file);
                *strrchr(parent, '/') = '\0';
                cr_assert_eq(util_mkdir_p(parent, 0700), 0);
                write_text(file, cases[i][1]);
                expect_refused(fx, dir, file, cases[i][1]);
                remove_state_dir(dir);
        }
}

/* ---- kill -9 at each step ------------------------------------------------------------- */

struct request {
        struct iov_harness *h;
        const char *method;
        char *path;
        char *body;
};

static void *send_request(void *userdata)
{
        struct request *req = userdata;
        struct iov_http_reply reply = {0};
        (void)harness_request(req->h, req->method, req->path, req->body, &reply);
        harness_reply_clear(&reply);
        return NULL;
}

/* The kernel carries out a sysfs write before the write returns, so nothing a killed
 * iovd wrote is still in flight; the fake kernel reacts later (60 ms here). Wait until
 * its log has been quiet for 300 ms, as the real kernel would be the moment iovd died. */
static void wait_kernel_quiet(struct fixture *fx)
{
        size_t last = SIZE_MAX;
        for (int quiet = 0; quiet < 3;) {
                _cleanup_free_ char *log = NULL;
                cr_assert_eq(fixture_kernel_log(fx, &log), 0);
                size_t now = strlen(log);
                quiet = now == last ? quiet + 1 : 0;
                last = now;
                util_sleep_usec(100 * 1000);
        }
}

/* Send the request and kill -9 the daemon after delay_ms, whatever it was doing. */
static void kill_during(struct fixture *fx, struct iov_harness *h, const char *method,
                        const char *path, const char *body, unsigned delay_ms)
{
        struct request req = {h, method, strdup(path), body ? strdup(body) : NULL};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, send_request, &req), 0);
        util_sleep_usec(delay_ms * 1000ull);
        cr_assert_eq(kill(h->pid, SIGKILL), 0, "kill: %s", strerror(errno));
        waitpid(h->pid, NULL, 0);
        h->pid = 0;
        pthread_join(t, NULL);
        wait_kernel_quiet(fx);
        free(req.path);
        free(req.body);
}

/* The first allocation's path, or NULL when there is none. */
static char *first_allocation(struct iov_harness *h)
{
        struct json_object *list = call(h, "GET", "/v1/allocations", NULL, 200);
        struct json_object *arr = json_object_object_get(list, "allocations");
        char *path = json_object_array_length(arr) == 0
                             ? NULL
                             : util_strdup_printf("/v1/allocations/%s",
                                                  jstr(json_object_array_get_idx(arr, 0), "id"));
        json_object_put(list);
        return path;
}

static void kill_during_create(struct fixture *fx, const char *dir, unsigned delay_ms)
{
        _cleanup_free_ char *when = util_strdup_printf("kill after %u ms of a create", delay_ms);
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                kill_during(fx, h, "POST", "/v1/allocations",
                            "{\"owner\":\"vm-1\",\"device\":\"0000:01:00.1\"}", delay_ms);
        }
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        expect_vf_invariants(fx, h, N_VFS, when);
        /* The delete that follows needs something held. */
        _cleanup_free_ char *path = first_allocation(h);
        if (!path)
                json_object_put(allocate(h, "vm-1", "device", "0000:01:00.1", 201));
        stop_iovd(h);
}

static void kill_during_delete(struct fixture *fx, const char *dir, unsigned delay_ms)
{
        _cleanup_free_ char *when = util_strdup_printf("kill after %u ms of a delete", delay_ms);
        {
                _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
                _cleanup_free_ char *victim = first_allocation(h);
                cr_assert_not_null(victim, "%s: nothing to delete", when);
                kill_during(fx, h, "DELETE", victim, NULL, delay_ms);
        }
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, dir, NULL);
        expect_vf_invariants(fx, h, N_VFS, when);
        /* The next round starts with nothing held. */
        for (char *path; (path = first_allocation(h)); free(path))
                json_object_put(call(h, "DELETE", path, NULL, 200));
        stop_iovd(h);
}

/* The fake kernel takes 60 ms per reaction, so an allocation and a release each span a
 * few hundred ms: across the delays the kill lands before the intent, between intent and
 * bind, mid-bind, between bind and the active record, mid-reset and mid-restore. */
Test(state_limits, kill_9_at_each_step_of_create_and_delete, .timeout = 240)
{
        const struct fixture_kernel_options slow = {.delay_ms = 60};
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(N_VFS, &slow);
        _cleanup_free_ char *dir = make_state_dir("state-limits");
        static const unsigned delays_ms[] = {1, 15, 40, 80, 130, 200, 300, 450};
        for (size_t i = 0; i < ARRAY_SIZE(delays_ms); i++) {
                kill_during_create(fx, dir, delays_ms[i]);
                kill_during_delete(fx, dir, delays_ms[i]);
        }
        remove_state_dir(dir);
}
