/* SPDX-License-Identifier: MIT */
/* Races answered right: several threads create, start, stop, kill and delete a few VMs at
 * random for a few seconds. Every answer must be a success or a 404/409 with a stable
 * code, never a 500; iovd keeps running, and its state loads again after a restart with
 * the same VMs. */
#include <pthread.h>
#include <stdatomic.h>

#include "test-vm-common.h"

#define RACE_THREADS 4
#define RACE_SLOTS   3
#define RACE_SECONDS 3
#define VM_ID_BUF    32 /* "vm-" and 16 hex digits, with room */

VM_TEST_SUITE(vm_race, true, .timeout = 120);

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static char slots[RACE_SLOTS][VM_ID_BUF];
static atomic_uint bad_answers;
static atomic_uint answers;
static char first_bad[512];

static void note_answer(const char *method, const char *path, int r,
                        const struct iov_http_reply *reply)
{
        atomic_fetch_add(&answers, 1);
        bool ok = r == 0 && (reply->status < 300 || reply->status == 404 || reply->status == 409);
        if (ok)
                return;
        if (atomic_fetch_add(&bad_answers, 1) == 0)
                snprintf(first_bad, sizeof(first_bad), "%s %s: %s, status %ld, body %.300s", method,
                         path, r < 0 ? strerror(-r) : "answered", reply->status,
                         reply->body ? reply->body : "");
}

/* Create a VM into slot i (when empty) or act on its VM. */
static void race_step(unsigned *seed)
{
        static const char *const actions[] = {"start", "start", "kill", "stop", "delete"};
        unsigned i = (unsigned)rand_r(seed) % RACE_SLOTS;
        char id[VM_ID_BUF];
        pthread_mutex_lock(&slots_lock);
        memcpy(id, slots[i], sizeof(id));
        pthread_mutex_unlock(&slots_lock);
        struct iov_http_reply reply = {0};
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char *kernel = NULL;
        _cleanup_free_ char *body = NULL;
        const char *method = "POST";
        if (!id[0]) {
                kernel = vm_guest("idle");
                body = util_strdup_printf("{\"kernel\": \"%s\", \"memory_mib\": 16}", kernel);
                path = strdup("/v1/vms");
        } else {
                const char *a = actions[(unsigned)rand_r(seed) % ARRAY_SIZE(actions)];
                method = streq(a, "delete") ? "DELETE" : "POST";
                path = streq(a, "delete") ? util_strdup_printf("/v1/vms/%s", id)
                                          : util_strdup_printf("/v1/vms/%s/%s", id, a);
                if (streq(a, "stop"))
                        body = strdup("{\"timeout_sec\": 0}");
        }
        int r = harness_request(env.h, method, path, body, &reply);
        note_answer(method, path, r, &reply);
        pthread_mutex_lock(&slots_lock);
        if (r == 0 && reply.status == 201 && !slots[i][0])
                snprintf(slots[i], sizeof(slots[i]), "%s", vm_str(reply.json, "id"));
        else if (r == 0 && reply.status == 200 && streq(method, "DELETE") && streq(slots[i], id))
                slots[i][0] = 0;
        pthread_mutex_unlock(&slots_lock);
        harness_reply_clear(&reply);
}

static void *race_thread(void *userdata)
{
        unsigned seed = (unsigned)(uintptr_t)userdata ^ (unsigned)util_now_usec();
        uint64_t end = util_now_usec() + RACE_SECONDS * 1000000ULL;
        while (util_now_usec() < end)
                race_step(&seed);
        return NULL;
}

/* The ids GET /v1/vms lists, sorted, comma-separated. */
static char *listed_ids(void)
{
        struct iov_http_reply r;
        vm_call(&env, "GET", "/v1/vms", NULL, 200, &r);
        struct json_object *vms = json_object_object_get(r.json, "vms");
        size_t n = json_object_array_length(vms);
        char *ids = strdup("");
        for (size_t k = 0; k < n && ids; k++) {
                const char *id = vm_str(json_object_array_get_idx(vms, k), "id");
                char *next = util_strdup_printf("%s%s,", ids, id);
                free(ids);
                ids = next;
        }
        harness_reply_clear(&r);
        cr_assert_not_null(ids);
        return ids;
}

Test(vm_race, lifecycle_requests_racing_delete_never_answer_500)
{
        pthread_t threads[RACE_THREADS];
        for (uintptr_t k = 0; k < RACE_THREADS; k++)
                cr_assert_eq(pthread_create(&threads[k], NULL, race_thread, (void *)k), 0);
        for (size_t k = 0; k < RACE_THREADS; k++)
                pthread_join(threads[k], NULL);
        cr_expect_eq(atomic_load(&bad_answers), 0, "%u of %u answers wrong; first: %s",
                     atomic_load(&bad_answers), atomic_load(&answers), first_bad);
        cr_expect_gt(atomic_load(&answers), 20, "only %u requests in %d s", atomic_load(&answers),
                     RACE_SECONDS);
        _cleanup_free_ char *before = listed_ids();
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop after the race");
        harness_free(env.h);
        env.h = NULL;
        vm_env_start_iovd(&env);
        _cleanup_free_ char *after = listed_ids();
        cr_expect_str_eq(after, before, "VMs after the restart %s, before %s", after, before);
}
