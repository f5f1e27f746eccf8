/* SPDX-License-Identifier: MIT */
/* The state store: round trips, versions, corrupt files reported and left untouched, and
 * atomic replacement under kill -9. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "daemon/daemon.h"
#include "util/util.h"

static char *top, *dir;
static struct iov_state *store;

static void setup(void)
{
        char tmpl[] = "/tmp/iovd-test-state-XXXXXX";
        cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
        top = strdup(tmpl);
        dir = util_path_join(tmpl, "state", NULL); /* not there yet: state_open creates it */
        cr_assert_eq(state_open(dir, &store), 0, "state_open(%s)", dir);
}

static void teardown(void)
{
        state_free(store);
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf %s", top);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
        free(dir);
        free(top);
}

TestSuite(state, .init = setup, .fini = teardown);

static void write_raw(const char *kind, const char *text)
{
        _cleanup_free_ char *path = state_path(store, kind);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
        fputs(text, f);
        fclose(f);
}

static char *read_raw(const char *kind)
{
        _cleanup_free_ char *path = state_path(store, kind);
        char *text = NULL;
        cr_assert_eq(util_read_file(path, 1 << 20, &text, NULL), 0, "read %s", path);
        return text;
}

static struct json_object *items_of(int n, int value)
{
        struct json_object *a = json_object_new_array();
        for (int i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_int(value));
        return a;
}

Test(state, missing_file_is_empty_collection)
{
        struct json_object *items = NULL;
        cr_assert_eq(state_load(store, "pools", &items, NULL), 0);
        cr_assert(json_object_is_type(items, json_type_array), "items is %s",
                  json_object_to_json_string(items));
        cr_assert_eq(json_object_array_length(items), 0u, "length %zu",
                     json_object_array_length(items));
        json_object_put(items);

        struct stat st;
        cr_assert_eq(stat(dir, &st), 0, "state dir %s not created", dir);
        cr_assert_eq(st.st_mode & 0777, 0700u, "state dir mode %o", st.st_mode & 0777);
}

Test(state, save_then_load_round_trips)
{
        struct json_object *items = json_object_new_array();
        struct json_object *pool = json_object_new_object();
        json_object_object_add(pool, "name", json_object_new_string("vfs"));
        json_object_array_add(items, pool);
        cr_assert_eq(state_save(store, "pools", items), 0);
        json_object_put(items);

        struct json_object *loaded = NULL;
        char *error = NULL;
        cr_assert_eq(state_load(store, "pools", &loaded, &error), 0, "load: %s", error);
        const char *text = json_object_to_json_string_ext(loaded, JSON_C_TO_STRING_PLAIN);
        cr_assert_str_eq(text, "[{\"name\":\"vfs\"}]", "loaded %s", text);
        json_object_put(loaded);

        _cleanup_free_ char *path = state_path(store, "pools");
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600u, "state file mode %o", st.st_mode & 0777);
        _cleanup_free_ char *raw = read_raw("pools");
        cr_assert_not_null(strstr(raw, "\"version\":1"), "no version field in %s", raw);
}

Test(state, save_rejects_non_array)
{
        struct json_object *obj = json_object_new_object();
        int r = state_save(store, "pools", obj);
        cr_assert_eq(r, -EINVAL, "state_save(object) = %d", r);
        json_object_put(obj);
}

/* Each bad document must give the expected error, a message naming the file, and leave
 * the file byte for byte as it was. */
static void expect_refused(const char *text, int expected, const char *fragment)
{
        write_raw("allocations", text);
        struct json_object *items = NULL;
        char *error = NULL;
        int r = state_load(store, "allocations", &items, &error);
        cr_assert_eq(r, expected, "state_load of '%s' = %d, expected %d", text, r, expected);
        cr_assert_null(items, "items returned for '%s'", text);
        cr_assert_not_null(error, "no message for '%s'", text);
        _cleanup_free_ char *path = state_path(store, "allocations");
        cr_assert_not_null(strstr(error, path), "message '%s' does not name %s", error, path);
        cr_assert_not_null(strstr(error, fragment), "message '%s' lacks '%s'", error, fragment);
        free(error);
        _cleanup_free_ char *after = read_raw("allocations");
        cr_assert_str_eq(after, text, "file changed to '%s'", after);
}

Test(state, corrupt_documents_are_reported_and_untouched)
{
        expect_refused("garbage\n", -EBADMSG, "not valid JSON");
        expect_refused("{\"format\": \"iovd-state\", \"version\": 1, \"kind\": \"allo", -EBADMSG,
                       "not valid JSON");
        expect_refused("", -EBADMSG, "not valid JSON");
        expect_refused("{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"allocations\","
                       "\"items\":[]} trailing",
                       -EBADMSG, "not valid JSON");
        expect_refused("[1,2]", -EBADMSG, "not a JSON object");
        expect_refused("{\"format\":\"other\",\"version\":1,\"kind\":\"allocations\","
                       "\"items\":[]}",
                       -EBADMSG, "format");
        expect_refused("{\"format\":\"iovd-state\",\"version\":\"1\",\"kind\":\"allocations\","
                       "\"items\":[]}",
                       -EBADMSG, "version");
        expect_refused("{\"format\":\"iovd-state\",\"version\":0,\"kind\":\"allocations\","
                       "\"items\":[]}",
                       -EBADMSG, "version");
        expect_refused("{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"pools\","
                       "\"items\":[]}",
                       -EBADMSG, "kind");
        expect_refused("{\"format\":\"iovd-state\",\"version\":1,\"kind\":\"allocations\","
                       "\"items\":{}}",
                       -EBADMSG, "items");
}

Test(state, newer_version_is_refused)
{
        expect_refused("{\"format\":\"iovd-state\",\"version\":99,\"kind\":\"allocations\","
                       "\"items\":[]}",
                       -EPROTONOSUPPORT, "newer");
}

Test(state, unreadable_file_is_reported)
{
        _cleanup_free_ char *path = state_path(store, "pools");
        cr_assert_eq(mkdir(path, 0700), 0, "mkdir %s", path);
        struct json_object *items = NULL;
        char *error = NULL;
        int r = state_load(store, "pools", &items, &error);
        cr_assert_lt(r, 0, "state_load of a directory = %d", r);
        cr_assert_not_null(error, "no message for an unreadable file");
        cr_assert_not_null(strstr(error, path), "message '%s' does not name %s", error, path);
        free(error);
}

/* A writer saving generation after generation is killed at arbitrary moments; every time
 * the document left behind must parse and be one whole generation, never a mix. */
Test(state, kill_during_save_leaves_old_or_new_document)
{
        struct json_object *first = items_of(200, 0);
        cr_assert_eq(state_save(store, "pools", first), 0);
        json_object_put(first);

        for (int round = 0; round < 12; round++) {
                pid_t pid = fork();
                cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
                if (pid == 0) {
                        for (int g = 1;; g++) {
                                struct json_object *items = items_of(200, g);
                                state_save(store, "pools", items);
                                json_object_put(items);
                        }
                }
                util_sleep_usec(2000 + (uint64_t)round * 1500);
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);

                struct json_object *items = NULL;
                char *error = NULL;
                int r = state_load(store, "pools", &items, &error);
                cr_assert_eq(r, 0, "round %d: load after kill -9 = %d (%s)", round, r, error);
                size_t n = json_object_array_length(items);
                cr_assert_eq(n, 200u, "round %d: %zu items", round, n);
                int g = json_object_get_int(json_object_array_get_idx(items, 0));
                for (size_t i = 1; i < n; i++) {
                        int v = json_object_get_int(json_object_array_get_idx(items, i));
                        cr_assert_eq(v, g, "round %d: item %zu from generation %d, first %d", round,
                                     i, v, g);
                }
                json_object_put(items);
        }
}

Test(state, open_removes_temporaries_of_interrupted_saves)
{
        struct json_object *items = items_of(1, 1);
        cr_assert_eq(state_save(store, "pools", items), 0);
        json_object_put(items);
        _cleanup_free_ char *tmp = util_strdup_printf("%s/pools.json.tmp.4242", dir);
        _cleanup_free_ char *other = util_strdup_printf("%s/notes.txt", dir);
        cr_assert_eq(util_write_file_atomic(tmp, "{\"half", 6, 0600), 0);
        cr_assert_eq(util_write_file_atomic(other, "keep", 4, 0600), 0);

        struct iov_state *again = NULL;
        cr_assert_eq(state_open(dir, &again), 0);
        cr_assert_eq(access(tmp, F_OK), -1, "%s left behind", tmp);
        cr_assert_eq(access(other, F_OK), 0, "%s removed", other);
        struct json_object *loaded = NULL;
        cr_assert_eq(state_load(again, "pools", &loaded, NULL), 0);
        cr_assert_eq(json_object_array_length(loaded), 1u, "document damaged: %s",
                     json_object_to_json_string(loaded));
        json_object_put(loaded);
        state_free(again);
}
