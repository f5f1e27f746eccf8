/* SPDX-License-Identifier: MIT */
/* Durable state documents under --state-dir: versioned, atomically replaced, never
 * silently discarded when they cannot be understood. */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

#include "daemon/daemon.h"
#include "util/util.h"

struct iov_state {
        char *dir;
};

static void json_put_ptr(struct json_object **p)
{
        json_object_put(*p);
}

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

static const char *check_header(struct json_object *doc, const char *kind, int *ret_error)
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
        if (!json_object_object_get_ex(doc, "items", &v) ||
            !json_object_is_type(v, json_type_array))
                return "\"items\" is missing or not an array";
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

        _cleanup_(json_put_ptr) struct json_object *doc = NULL;
        r = parse_document(text, size, &doc);
        if (r < 0) {
                set_error(ret_error, path, "not valid JSON (corrupt or truncated)");
                return r;
        }
        const char *what = check_header(doc, kind, &r);
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
        _cleanup_(json_put_ptr) struct json_object *doc = json_object_new_object();
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
