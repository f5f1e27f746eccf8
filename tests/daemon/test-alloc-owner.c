/* SPDX-License-Identifier: MIT */
/* PATCH /v1/allocations/{id} through the real iovd on a generated tree: a new owner label,
 * checked as at create, saved before the answer (a restart keeps it), published as
 * allocation_updated, and decided one after the other with a DELETE racing it. A VM's
 * allocation keeps its owner: tests/daemon/test-vm-passthrough.c. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "test-alloc-common.h"

#define OWNER_MAX 128 /* IOV_ALLOCATION_OWNER_MAX: api/openapi.yaml, AllocationRequest */

static char *owner_body(const char *owner)
{
        return util_strdup_printf("{\"owner\":\"%s\"}", owner);
}

/* PATCH path with {"owner": owner}, expecting 200 and that owner in the answer. */
static void set_owner(struct iov_harness *h, const char *path, const char *owner)
{
        _cleanup_free_ char *body = owner_body(owner);
        struct json_object *o = call(h, "PATCH", path, body, 200);
        cr_assert_str_eq(jstr(o, "owner") ? jstr(o, "owner") : "", owner, "PATCH %s: %s", path,
                         json_object_to_json_string(o));
        json_object_put(o);
}

static void expect_owner(struct iov_harness *h, const char *path, const char *owner)
{
        struct json_object *o = call(h, "GET", path, NULL, 200);
        cr_assert_str_eq(jstr(o, "owner") ? jstr(o, "owner") : "", owner, "GET %s: %s", path,
                         json_object_to_json_string(o));
        json_object_put(o);
}

/* The next event of type on the stream (the ones before it skipped); fails after 5 s. */
static struct json_object *next_event(int fd, const char *type)
{
        struct json_object *e = NULL;
        int r = harness_events_next_of_type(fd, type, 5000, &e);
        cr_assert_eq(r, 0, "no %s event: %s", type, strerror(-r));
        return e;
}

Test(alloc_owner, new_owner_is_answered_listed_and_published)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(2, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        struct json_object *a =
                allocate(h, "k8s:iovd.io/nvme:0000:01:00.1", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        int fd = -1;
        long status = 0;
        cr_assert_eq(harness_events_open(h, &fd, &status), 0);
        cr_assert_eq(status, 200, "GET /v1/events: %ld", status);

        set_owner(h, path, "k8s:default/dpdk-app/app");
        expect_owner(h, path, "k8s:default/dpdk-app/app");
        struct json_object *e = next_event(fd, "allocation_updated");
        struct json_object *data = json_object_object_get(e, "data");
        cr_expect_str_eq(jstr(data, "id"), jstr(a, "id"), "%s", json_object_to_json_string(e));
        cr_expect_str_eq(jstr(data, "owner"), "k8s:default/dpdk-app/app", "%s",
                         json_object_to_json_string(e));
        json_object_put(e);

        struct json_object *list =
                call(h, "GET", "/v1/allocations?owner=k8s:default/dpdk-app/app", NULL, 200);
        size_t n = json_object_array_length(json_object_object_get(list, "allocations"));
        cr_expect_eq(n, 1u, "owner filter: %s", json_object_to_json_string(list));
        json_object_put(list);
        /* Only the label changed: the group stays bound, the device stays held. */
        expect_sysfs_driver(fx, "0000:01:00.1", "vfio-pci");
        _cleanup_free_ char *gpath =
                util_strdup_printf("/v1/iommu-groups/%lld", (long long)jint(a, "iommu_group"));
        struct json_object *g = call(h, "GET", gpath, NULL, 200);
        cr_expect_str_eq(jstr(g, "owner") ? jstr(g, "owner") : "", "k8s:default/dpdk-app/app", "%s",
                         json_object_to_json_string(g));
        json_object_put(g);
        set_owner(h, path, "k8s:default/dpdk-app/app"); /* the same again: still 200 */
        close(fd);
        json_object_put(a);
}

Test(alloc_owner, bad_owners_and_unknown_ids_are_refused)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        struct json_object *a = allocate(h, "first", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        char long_owner[OWNER_MAX + 2];
        memset(long_owner, 'o', sizeof(long_owner) - 1);
        long_owner[sizeof(long_owner) - 1] = '\0';
        _cleanup_free_ char *too_long = owner_body(long_owner);

        expect_error(h, "PATCH", path, "{\"owner\":\"\"}", 400, "invalid_value");
        expect_error(h, "PATCH", path, too_long, 400, "invalid_value");
        expect_error(h, "PATCH", path, "{\"owner\":\"a\\u0001b\"}", 400, "invalid_value");
        expect_error(h, "PATCH", path, "{\"owner\":\"a\\u0000b\"}", 400, "nul_in_string");
        expect_error(h, "PATCH", path, "{\"owner\":\"x\",\"pool\":\"p\"}", 400, "unknown_field");
        expect_error(h, "PATCH", path, "{}", 400, "missing_field");
        expect_error(h, "PATCH", path, "{\"owner\":7}", 400, "wrong_type");
        expect_error(h, "PATCH", "/v1/allocations/a-0000000000000000", "{\"owner\":\"x\"}", 404,
                     "allocation_not_found");
        expect_owner(h, path, "first");
        /* The longest allowed owner is taken. */
        long_owner[sizeof(long_owner) - 2] = '\0';
        set_owner(h, path, long_owner);
        json_object_put(a);
}

Test(alloc_owner, restart_keeps_the_new_owner)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_free_ char *dir = make_state_dir("owner");
        struct iov_harness *h = start_iovd(fx, dir, NULL);
        struct json_object *a =
                allocate(h, "k8s:iovd.io/n:0000:01:00.1", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        set_owner(h, path, "k8s:ns/pod/c");
        stop_iovd(h);
        harness_free(h);

        h = start_iovd(fx, dir, NULL);
        expect_owner(h, path, "k8s:ns/pod/c");
        struct json_object *got = call(h, "GET", path, NULL, 200);
        cr_expect_str_eq(jstr(got, "state"), "active", "%s", json_object_to_json_string(got));
        json_object_put(got);
        expect_sysfs_driver(fx, "0000:01:00.1", "vfio-pci");
        harness_free(h);
        json_object_put(a);
        remove_state_dir(dir);
}

/* A save that fails leaves the old owner, in memory and on disk. */
Test(alloc_owner, owner_that_cannot_be_saved_is_refused)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_harness_ struct iov_harness *h = start_iovd(fx, NULL, NULL);
        struct json_object *a = allocate(h, "first", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        _cleanup_free_ char *doc = util_path_join(h->state_dir, "allocations", NULL);
        _cleanup_free_ char *aside = util_path_join(h->state_dir, "aside", NULL);

        cr_assert_eq(rename(doc, aside), 0, "rename %s: %s", doc, strerror(errno));
        int fd = open(doc, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0, "create %s: %s", doc, strerror(errno));
        close(fd);
        expect_error(h, "PATCH", path, "{\"owner\":\"second\"}", 500, "state_write_failed");
        expect_owner(h, path, "first");
        cr_assert_eq(unlink(doc), 0, "unlink %s: %s", doc, strerror(errno));
        cr_assert_eq(rename(aside, doc), 0, "rename %s: %s", aside, strerror(errno));
        set_owner(h, path, "second");
        json_object_put(a);
}

/* ---- racing a release ------------------------------------------------------------------ */

struct racer {
        struct iov_harness *h;
        pthread_barrier_t *start;
        const char *method;
        const char *path;
        const char *body;
        long status;
};

static void *race(void *userdata)
{
        struct racer *r = userdata;
        struct iov_http_reply reply = {0};
        pthread_barrier_wait(r->start);
        if (harness_request(r->h, r->method, r->path, r->body, &reply) == 0)
                r->status = reply.status;
        harness_reply_clear(&reply);
        return NULL;
}

/* One round: PATCH and DELETE at once. The DELETE always wins its allocation; the PATCH
 * comes before it (200) or after it (404), and nothing is left behind either way. */
static void race_round(struct iov_harness *h, int round)
{
        struct json_object *a = allocate(h, "racer", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, 2);
        struct racer racers[2] = {
                {h, &barrier, "PATCH", path, "{\"owner\":\"renamed\"}", 0},
                {h, &barrier, "DELETE", path, NULL, 0},
        };
        pthread_t threads[2];
        for (int i = 0; i < 2; i++)
                pthread_create(&threads[i], NULL, race, &racers[i]);
        for (int i = 0; i < 2; i++)
                pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&barrier);
        cr_assert_eq(racers[1].status, 200L, "round %d: DELETE %ld", round, racers[1].status);
        cr_assert(racers[0].status == 200 || racers[0].status == 404,
                  "round %d: PATCH %ld, expected 200 or 404", round, racers[0].status);
        call(h, "GET", path, NULL, 404);
        _cleanup_free_ char *file =
                util_strdup_printf("%s/allocations/%s.json", h->state_dir, jstr(a, "id"));
        struct stat st;
        cr_assert(stat(file, &st) < 0 && errno == ENOENT, "round %d: %s is back after the release",
                  round, file);
        json_object_put(a);
}

Test(alloc_owner, racing_a_release_never_brings_the_allocation_back, .timeout = 120)
{
        _cleanup_(fixture_freep) struct fixture *fx = lab_fixture(1, NULL);
        _cleanup_free_ char *dir = make_state_dir("owner");
        struct iov_harness *h = start_iovd(fx, dir, NULL);
        for (int round = 0; round < 12; round++)
                race_round(h, round);
        stop_iovd(h);
        harness_free(h);
        /* What the disk says after the races: nothing is held. */
        h = start_iovd(fx, dir, NULL);
        struct json_object *list = call(h, "GET", "/v1/allocations", NULL, 200);
        size_t n = json_object_array_length(json_object_object_get(list, "allocations"));
        cr_expect_eq(n, 0u, "after the races and a restart: %s", json_object_to_json_string(list));
        json_object_put(list);
        expect_sysfs_driver(fx, "0000:01:00.1", "");
        harness_free(h);
        remove_state_dir(dir);
}
