/* SPDX-License-Identifier: MIT */
/*
 * The one error line of iovctl: "error: CODE: message" from iovd's error shape
 * {"error": {"code", "message", ...}}, then one indented line per extra detail the
 * daemon gives (the members that block an allocation), so a script can match the code
 * and a person sees why.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* Members of the error object besides code and message (the devices that block an
 * allocation, say): one "  key: value" line each, one per element for lists. */
static char *error_details(struct json_object *error, char *line)
{
        json_object_object_foreach (error, key, value) {
                if (!line || streq(key, "code") || streq(key, "message"))
                        continue;
                bool list = json_object_is_type(value, json_type_array);
                size_t n = list ? json_object_array_length(value) : 1;
                for (size_t i = 0; line && i < n; i++) {
                        _cleanup_free_ char *item = cli_json_item_text(
                                list ? json_object_array_get_idx(value, i) : value);
                        char *next =
                                util_strdup_printf("%s\n  %s: %s", line, key, item ? item : "-");
                        free(line);
                        line = next;
                }
        }
        return line;
}

char *cli_error_format(const struct iov_cli_response *r)
{
        struct json_object *error = NULL, *code = NULL, *message = NULL;

        if (r->json && json_object_object_get_ex(r->json, "error", &error) &&
            json_object_object_get_ex(error, "code", &code) &&
            json_object_is_type(code, json_type_string)) {
                char *line;
                if (json_object_object_get_ex(error, "message", &message) &&
                    json_object_is_type(message, json_type_string))
                        line = util_strdup_printf("error: %s: %s", json_object_get_string(code),
                                                  json_object_get_string(message));
                else
                        line = util_strdup_printf("error: %s", json_object_get_string(code));
                return error_details(error, line);
        }
        /* Not our error shape (a proxy, a crash): say what came back. */
        return util_strdup_printf("error: http_%ld: unexpected answer from iovd%s%.200s", r->status,
                                  r->size > 0 ? ": " : "", r->body ? r->body : "");
}
