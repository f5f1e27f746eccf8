/* SPDX-License-Identifier: MIT */
/*
 * The --device argument of `iovctl vm create`: either a JSON object passed through, or
 * the short form "TYPE,key=value,..." turned into {"type": TYPE, "key": value, ...}:
 *   virtio-blk,path=disk.img,read_only=true,serial=disk0
 *   virtio-net,tap=tap0,mac=52:54:00:12:34:56
 *   vfio,pool=nics,guest_address=5      (also device=ADDRESS or allocation=ID)
 * Values are strings, true/false booleans (a serial "12" must stay a string: the JSON
 * form is there for numbers), except "guest_address", a slot number, which is an integer
 * when it is all digits. A relative "path" is made absolute, as the daemon runs
 * elsewhere. The daemon checks the fields; here only the form is checked, so a typo in
 * the form is a usage error that names the faulty part.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static struct json_object *spec_value(const char *key, const char *v)
{
        char cwd[PATH_MAX];
        long long slot;
        if (streq(v, "true") || streq(v, "false"))
                return json_object_new_boolean(streq(v, "true"));
        if (streq(key, "guest_address") && cli_parse_int(v, 0, INT32_MAX, &slot) == 0)
                return json_object_new_int64(slot);
        if (streq(key, "path") && v[0] != '/' && v[0] != '\0' && getcwd(cwd, sizeof(cwd))) {
                _cleanup_free_ char *abs = util_strdup_printf("%s/%s", cwd, v);
                return abs ? json_object_new_string(abs) : NULL;
        }
        return json_object_new_string(v);
}

static int spec_add_item(struct json_object *obj, const char *item, bool first, char **ret_error)
{
        const char *eq = strchr(item, '=');
        if (!eq) {
                if (!first) {
                        *ret_error = util_strdup_printf("'%s' is not key=value", item);
                        return -EINVAL;
                }
                return json_object_object_add(obj, "type", json_object_new_string(item));
        }
        _cleanup_free_ char *key = strndup(item, (size_t)(eq - item));
        if (!key)
                return -ENOMEM;
        if (key[0] == '\0') {
                *ret_error = util_strdup_printf("'%s' has an empty key", item);
                return -EINVAL;
        }
        if (json_object_object_get_ex(obj, key, NULL)) {
                *ret_error = util_strdup_printf("key '%s' given twice", key);
                return -EINVAL;
        }
        return json_object_object_add(obj, key, spec_value(key, eq + 1));
}

/* One JSON object and nothing after it. */
static int spec_parse_json(const char *spec, struct json_object **ret, char **ret_error)
{
        struct json_tokener *tok = json_tokener_new();
        struct json_object *obj = NULL;
        size_t len = strlen(spec);

        if (!tok)
                return -ENOMEM;
        obj = json_tokener_parse_ex(tok, spec, (int)len);
        bool complete = obj && json_tokener_get_error(tok) == json_tokener_success &&
                        strspn(spec + tok->char_offset, " \t\n") == len - (size_t)tok->char_offset;
        json_tokener_free(tok);
        if (!complete || !json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                *ret_error = util_strdup_printf("device '%s' is not a valid JSON object", spec);
                return -EINVAL;
        }
        *ret = obj;
        return 0;
}

int cli_device_spec_parse(const char *spec, struct json_object **ret, char **ret_error)
{
        if (spec[0] == '{')
                return spec_parse_json(spec, ret, ret_error);

        _cleanup_json_ struct json_object *obj = json_object_new_object();
        _cleanup_free_ char *copy = strdup(spec);
        char *save = NULL;
        bool first = true;

        if (!obj || !copy)
                return -ENOMEM;
        if (spec[0] == '\0' || spec[0] == ',') {
                *ret_error = util_strdup_printf("device '%s' has no type", spec);
                return -EINVAL;
        }
        for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                int r = spec_add_item(obj, item, first, ret_error);
                if (r < 0)
                        return r;
                first = false;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}
