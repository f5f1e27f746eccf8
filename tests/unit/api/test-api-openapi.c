/* SPDX-License-Identifier: MIT */
/* Every route the daemon registers is described in api/openapi.yaml, and every
 * operation there exists. The spec path comes from meson (argument OPENAPI_PATH). */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>

#include "api/api.h"

/* The spec is JSON plus full-line '#' comments (see its header). */
static struct json_object *spec_load(void)
{
        _cleanup_free_ char *text = NULL;
        int r = util_read_file(OPENAPI_PATH, 4 * 1024 * 1024, &text, NULL);
        cr_assert_eq(r, 0, "cannot read %s: %s", OPENAPI_PATH, strerror(-r));
        for (char *line = text; line && *line;) {
                char *next = strchr(line, '\n');
                char *p = line;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p == '#')
                        memset(line, ' ', next ? (size_t)(next - line) : strlen(line));
                line = next ? next + 1 : NULL;
        }
        struct json_object *spec = NULL;
        const char *code = "";
        r = api_json_parse_strict(text, strlen(text), &spec, &code, NULL);
        cr_assert_eq(r, 0, "%s is not JSON-compatible YAML: %s", OPENAPI_PATH, code);
        return spec;
}

static void lower(const char *s, char *buf, size_t size)
{
        size_t i = 0;
        for (; s[i] && i < size - 1; i++)
                buf[i] = (char)tolower((unsigned char)s[i]);
        buf[i] = 0;
}

Test(api_openapi, every_route_documented)
{
        struct json_object *spec = spec_load(), *paths, *item;
        cr_assert(json_object_object_get_ex(spec, "paths", &paths), "spec has no paths");
        size_t n = 0;
        for (const struct iov_api_route *r = api_routes(); r; r = r->next, n++) {
                char method[16];
                lower(r->method, method, sizeof(method));
                cr_expect(json_object_object_get_ex(paths, r->pattern, &item) &&
                                  json_object_object_get_ex(item, method, NULL),
                          "route %s %s is not in api/openapi.yaml", r->method, r->pattern);
        }
        cr_assert_gt(n, 8u, "only %zu routes registered: resources not linked whole?", n);
        json_object_put(spec);
}

Test(api_openapi, every_documented_operation_exists)
{
        struct json_object *spec = spec_load(), *paths;
        cr_assert(json_object_object_get_ex(spec, "paths", &paths));
        json_object_object_foreach (paths, path, item) {
                json_object_object_foreach (item, method, operation) {
                        (void)operation;
                        if (!strstr("get post put delete", method))
                                continue;
                        bool found = false;
                        for (const struct iov_api_route *r = api_routes(); r && !found;
                             r = r->next) {
                                char m[16];
                                lower(r->method, m, sizeof(m));
                                found = streq(m, method) && streq(r->pattern, path);
                        }
                        cr_expect(found, "api/openapi.yaml describes %s %s, which no route serves",
                                  method, path);
                }
        }
        json_object_put(spec);
}
