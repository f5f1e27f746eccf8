/* SPDX-License-Identifier: MIT */
/* Durable state documents under --state-dir: versioned, atomically replaced, never
 * silently discarded when they cannot be understood. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>

#include "daemon/daemon.h"
#include "util/json.h"
#include "util/util.h"

struct iov_state {
        char *dir;
};

/* A crash during a save can leave KIND.json.tmp.PID behind (util_write_file_atomic); the
 * document itself is whole either way, so the leftover is only clutter. The caller holds
 * the state dir (the daemon's lock), so no save of another process is under way. */
static void remove_stale_temporaries(const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return;
        for (struct dirent *e; (e = readdir(d));) {
                const char *tmp = strstr(e->d_name, ".json.tmp.");
                if (tmp && tmp != e->d_name && e->d_type == DT_REG &&
                    unlinkat(dirfd(d), e->d_name, 0) == 0)
                        log_debug("removed %s/%s left by an interrupted save", dir, e->d_name);
        }
        closedir(d);
}

int state_open(const char *dir, struct iov_state **ret)
{
        int r = util_mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        remove_stale_temporaries(dir);
        struct iov_state *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dir = strdup(dir);
        if (!s->dir) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

void state_free(struct iov_state *state)
{
        if (!state)
                return;
        free(state->dir);
        free(state);
}

const char *state_dir(const struct iov_state *state)
{
        return state->dir;
}

char *state_path(const struct iov_state *state, const char *kind)
{
        return util_strdup_printf("%s/%s.json", state->dir, kind);
}

/* Parse the whole text as exactly one JSON value: trailing data means the file is not
 * what we wrote (util_write_file_atomic never appends). */
static int parse_document(const char *text, size_t size, struct json_object **ret)
{
        if (size > INT32_MAX || strlen(text) != size)
                return -EBADMSG; /* embedded NUL */
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        struct json_object *doc = json_tokener_parse_ex(tok, text, (int)size);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!doc || jerr != json_tokener_success) {
                json_object_put(doc);
                return -EBADMSG;
        }
        while (used < size && strchr(" \t\r\n", text[used]))
                used++;
        if (used != size) {
                json_object_put(doc);
                return -EBADMSG;
        }
        *ret = doc;
        return 0;
}

/* format, version and kind as this daemon writes them, and the payload field (the legacy
 * document's "items" array, an item file's "item" object). */
static const char *check_header(struct json_object *doc, const char *kind, const char *field,
                                int *ret_error)
{
        struct json_object *v;
        *ret_error = -EBADMSG;
        if (!json_object_is_type(doc, json_type_object))
                return "not a JSON object";
        if (!json_object_object_get_ex(doc, "format", &v) ||
            !json_object_is_type(v, json_type_string) ||
            !streq(json_object_get_string(v), IOV_STATE_FORMAT))
                return "\"format\" is not \"" IOV_STATE_FORMAT "\"";
        if (!json_object_object_get_ex(doc, "version", &v) ||
            !json_object_is_type(v, json_type_int))
                return "\"version\" is missing or not an integer";
        int64_t version = json_object_get_int64(v);
        if (version < 1)
                return "\"version\" is not a valid version";
        if (version > IOV_STATE_VERSION) {
                *ret_error = -EPROTONOSUPPORT;
                return "\"version\" is newer than this iovd understands";
        }
        if (!json_object_object_get_ex(doc, "kind", &v) ||
            !json_object_is_type(v, json_type_string) || !streq(json_object_get_string(v), kind))
                return "\"kind\" does not match the file name";
        bool is_item = streq(field, "item");
        if (!json_object_object_get_ex(doc, field, &v) ||
            !json_object_is_type(v, is_item ? json_type_object : json_type_array))
                return is_item ? "\"item\" is missing or not an object"
                               : "\"items\" is missing or not an array";
        if (is_item && json_object_object_length(doc) != 4)
                return "it has fields besides format, version, kind and item";
        *ret_error = 0;
        return NULL;
}

static void set_error(char **ret_error, const char *path, const char *what)
{
        if (ret_error)
                *ret_error = util_strdup_printf("state file %s: %s", path, what);
}

int state_load(const struct iov_state *state, const char *kind, struct json_object **ret_items,
               char **ret_error)
{
        _cleanup_free_ char *path = state_path(state, kind);
        if (!path)
                return -ENOMEM;

        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r = util_read_file(path, IOV_STATE_MAX_SIZE, &text, &size);
        if (r == -ENOENT) {
                struct json_object *empty = json_object_new_array();
                if (!empty)
                        return -ENOMEM;
                *ret_items = empty;
                return 0;
        }
        if (r < 0) {
                set_error(ret_error, path,
                          r == -EFBIG ? "too large to be a state file" : strerror(-r));
                return r;
        }

        _cleanup_json_ struct json_object *doc = NULL;
        r = parse_document(text, size, &doc);
        if (r < 0) {
                set_error(ret_error, path, "not valid JSON (corrupt or truncated)");
                return r;
        }
        const char *what = check_header(doc, kind, "items", &r);
        if (what) {
                set_error(ret_error, path, what);
                return r;
        }
        struct json_object *items = json_object_object_get(doc, "items");
        *ret_items = json_object_get(items);
        return 0;
}

int state_save(const struct iov_state *state, const char *kind, struct json_object *items)
{
        if (!json_object_is_type(items, json_type_array))
                return -EINVAL;
        _cleanup_free_ char *path = state_path(state, kind);
        if (!path)
                return -ENOMEM;
        _cleanup_json_ struct json_object *doc = json_object_new_object();
        if (!doc)
                return -ENOMEM;
        if (json_object_object_add(doc, "format", json_object_new_string(IOV_STATE_FORMAT)) < 0 ||
            json_object_object_add(doc, "version", json_object_new_int(IOV_STATE_VERSION)) < 0 ||
            json_object_object_add(doc, "kind", json_object_new_string(kind)) < 0 ||
            json_object_object_add(doc, "items", json_object_get(items)) < 0)
                return -ENOMEM;

        size_t len = 0;
        const char *text = json_object_to_json_string_length(
                doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!text)
                return -ENOMEM;
        _cleanup_free_ char *with_newline = util_strdup_printf("%s\n", text);
        if (!with_newline)
                return -ENOMEM;
        return util_write_file_atomic(path, with_newline, len + 1, 0600);
}

/* ---- collections of one file per item ------------------------------------------------- */

/* STATE_DIR/KIND/KEY.json, or STATE_DIR/KIND with key NULL. */
static char *item_path(const struct iov_state *state, const char *kind, const char *key)
{
        if (!key)
                return util_strdup_printf("%s/%s", state->dir, kind);
        return util_strdup_printf("%s/%s/%s.json", state->dir, kind, key);
}

/* Keys come from validated names, ids and addresses; this is the last line against a key
 * that would leave the collection's directory or hide among its temporaries. */
static bool item_key_is_valid(const char *key)
{
        size_t n = strlen(key);
        return n > 0 && n <= IOV_STATE_ITEM_KEY_MAX && key[0] != '.' && !strchr(key, '/') &&
               !strstr(key, ".json");
}

int state_item_save(const struct iov_state *state, const char *kind, const char *key,
                    struct json_object *item)
{
        if (!item_key_is_valid(key) || !json_object_is_type(item, json_type_object))
                return -EINVAL;
        _cleanup_free_ char *path = item_path(state, kind, key);
        _cleanup_json_ struct json_object *doc = json_object_new_object();
        if (!path || !doc)
                return -ENOMEM;
        if (json_object_object_add(doc, "format", json_object_new_string(IOV_STATE_FORMAT)) < 0 ||
            json_object_object_add(doc, "version", json_object_new_int(IOV_STATE_VERSION)) < 0 ||
            json_object_object_add(doc, "kind", json_object_new_string(kind)) < 0 ||
            json_object_object_add(doc, "item", json_object_get(item)) < 0)
                return -ENOMEM;
        size_t len = 0;
        const char *text =
                json_object_to_json_string_length(doc, JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!text)
                return -ENOMEM;
        if (len >= IOV_STATE_ITEM_MAX_SIZE)
                return -EFBIG; /* the loader would refuse it: never write one */
        _cleanup_free_ char *with_newline = util_strdup_printf("%s\n", text);
        if (!with_newline)
                return -ENOMEM;
        return util_write_file_atomic(path, with_newline, len + 1, 0600);
}

int state_item_remove(const struct iov_state *state, const char *kind, const char *key)
{
        if (!item_key_is_valid(key))
                return -EINVAL;
        _cleanup_free_ char *path = item_path(state, kind, key);
        _cleanup_free_ char *dir = item_path(state, kind, NULL);
        if (!path || !dir)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        /* The removal is durable only once the directory is. */
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        return fsync(dfd) < 0 ? -errno : 0;
}

/* The collection's marker, KIND.json: what an iovd from before per-item files reads
 * first, and refuses ("version is newer"), so it never starts on an empty view of state
 * it cannot see. */
static int write_marker(const struct iov_state *state, const char *kind)
{
        _cleanup_free_ char *path = state_path(state, kind);
        _cleanup_free_ char *text = util_strdup_printf(
                "{\"format\": \"%s\", \"version\": %d, \"kind\": \"%s\", \"items_in\": \"%s/\"}\n",
                IOV_STATE_FORMAT, IOV_STATE_ITEMS_VERSION, kind, kind);
        if (!path || !text)
                return -ENOMEM;
        return util_write_file_atomic(path, text, strlen(text), 0600);
}

int state_items_commit(const struct iov_state *state, const char *kind)
{
        _cleanup_free_ char *dir = item_path(state, kind, NULL);
        if (!dir)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return write_marker(state, kind);
}

/* 1 when KIND.json is the marker of a per-item collection, 0 when it is absent. A legacy
 * document (version 1) is loaded through state_load. */
static int read_marker(const struct iov_state *state, const char *kind, char **ret_error)
{
        _cleanup_free_ char *path = state_path(state, kind);
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        if (!path)
                return -ENOMEM;
        int r = util_read_file(path, IOV_STATE_ITEM_MAX_SIZE, &text, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return 2; /* legacy or unreadable: state_load says which */
        _cleanup_json_ struct json_object *doc = NULL;
        if (parse_document(text, size, &doc) < 0)
                return 2;
        struct json_object *v = NULL, *in = NULL;
        if (!json_object_object_get_ex(doc, "version", &v) ||
            json_object_get_int64(v) != IOV_STATE_ITEMS_VERSION)
                return 2;
        _cleanup_free_ char *expected = util_strdup_printf("%s/", kind);
        if (!json_object_object_get_ex(doc, "items_in", &in) || !expected ||
            !streq(json_object_get_string(in), expected) ||
            !json_object_object_get_ex(doc, "kind", &v) ||
            !streq(json_object_get_string(v), kind)) {
                set_error(ret_error, path, "not the marker of a per-item collection");
                return -EBADMSG;
        }
        return 1;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* The item files of a collection's directory, sorted; temporaries an interrupted save
 * left are removed, any other name is refused (ret_bad names it). */
static int list_items(const char *dir, char ***ret, size_t *ret_n, char **ret_bad)
{
        DIR *d = opendir(dir);
        if (!d)
                return -errno;
        char **names = NULL;
        size_t n = 0;
        int r = 0;
        for (struct dirent *e; r == 0 && (e = readdir(d));) {
                const char *name = e->d_name, *ext = strstr(name, ".json");
                if (streq(name, ".") || streq(name, ".."))
                        continue;
                if (ext && strstr(ext, ".json.tmp.") == ext) {
                        (void)unlinkat(dirfd(d), name, 0);
                        continue;
                }
                if (!ext || !streq(ext, ".json") || name[0] == '.' || strlen(name) > NAME_MAX) {
                        *ret_bad = strdup(name);
                        r = -EBADMSG;
                        break;
                }
                char **bigger = realloc(names, (n + 1) * sizeof(*names));
                if (!bigger || !(bigger[n] = strndup(name, (size_t)(ext - name))))
                        r = -ENOMEM;
                if (bigger)
                        names = bigger;
                n += r == 0;
        }
        closedir(d);
        if (r < 0) {
                free_names(names, n);
                return r;
        }
        qsort(names, n, sizeof(*names), compare_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

/* Read, parse and check one item file; hand its item to fn. */
static int load_item(const struct iov_state *state, const char *kind, const char *key,
                     state_item_fn fn, void *userdata, char **ret_error)
{
        _cleanup_free_ char *path = item_path(state, kind, key);
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        if (!path)
                return -ENOMEM;
        int r = util_read_file(path, IOV_STATE_ITEM_MAX_SIZE, &text, &size);
        if (r < 0) {
                set_error(ret_error, path,
                          r == -EFBIG ? "too large to be a state file" : strerror(-r));
                return r;
        }
        _cleanup_json_ struct json_object *doc = NULL;
        if (parse_document(text, size, &doc) < 0) {
                set_error(ret_error, path, "not valid JSON (corrupt or truncated)");
                return -EBADMSG;
        }
        const char *what = check_header(doc, kind, "item", &r);
        if (what) {
                set_error(ret_error, path, what);
                return r;
        }
        _cleanup_free_ char *why = NULL;
        r = fn(json_object_object_get(doc, "item"), key, userdata, &why);
        if (r < 0 && r != -ENOMEM)
                set_error(ret_error, path, why ? why : "not a valid item");
        return r;
}

/* Every item of a legacy KIND.json (version 1), handed to fn without a key. */
static int load_legacy(const struct iov_state *state, const char *kind, state_item_fn fn,
                       void *userdata, char **ret_error)
{
        _cleanup_json_ struct json_object *items = NULL;
        int r = state_load(state, kind, &items, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                _cleanup_free_ char *why = NULL;
                r = fn(json_object_array_get_idx(items, i), NULL, userdata, &why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        _cleanup_free_ char *path = state_path(state, kind);
                        _cleanup_free_ char *what = util_strdup_printf(
                                "item %zu: %s", i, why ? why : "not a valid item");
                        set_error(ret_error, path ? path : kind, what ? what : "bad item");
                        return r;
                }
        }
        return 0;
}

int state_items_load(const struct iov_state *state, const char *kind, state_item_fn fn,
                     void *userdata, bool *ret_commit, char **ret_error)
{
        _cleanup_free_ char *dir = item_path(state, kind, NULL);
        if (!dir)
                return -ENOMEM;
        int r = util_mkdir_p(dir, 0700);
        if (r < 0) {
                set_error(ret_error, dir, strerror(-r));
                return r;
        }
        int marker = read_marker(state, kind, ret_error);
        if (marker < 0)
                return marker;
        if (marker == 2) { /* KIND.json from before per-item files: it is the truth */
                r = load_legacy(state, kind, fn, userdata, ret_error);
                if (r == 0)
                        *ret_commit = true;
                return r;
        }
        char **names = NULL, *bad = NULL;
        size_t n = 0;
        r = list_items(dir, &names, &n, &bad);
        if (r < 0) {
                _cleanup_free_ char *path = bad ? item_path(state, kind, NULL) : NULL;
                _cleanup_free_ char *file = path ? util_strdup_printf("%s/%s", path, bad) : NULL;
                set_error(ret_error, file ? file : dir,
                          bad ? "not an item file (KEY.json) of this collection" : strerror(-r));
                free(bad);
                return r;
        }
        for (size_t i = 0; r == 0 && i < n; i++)
                r = load_item(state, kind, names[i], fn, userdata, ret_error);
        free_names(names, n);
        if (r == 0)
                *ret_commit = marker == 0;
        return r;
}
