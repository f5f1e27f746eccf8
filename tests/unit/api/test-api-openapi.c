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

/* The query parameters of one operation in the spec, as a JSON object: name -> enum array
 * (or null when the parameter has no enum). */
static struct json_object *spec_query_params(struct json_object *spec, const char *pattern,
                                             const char *method)
{
        struct json_object *paths, *item, *op, *params, *out = json_object_new_object();
        if (!json_object_object_get_ex(spec, "paths", &paths) ||
            !json_object_object_get_ex(paths, pattern, &item) ||
            !json_object_object_get_ex(item, method, &op) ||
            !json_object_object_get_ex(op, "parameters", &params))
                return out;
        for (size_t i = 0; i < json_object_array_length(params); i++) {
                struct json_object *p = json_object_array_get_idx(params, i), *in, *name, *schema,
                                   *values = NULL;
                if (!json_object_object_get_ex(p, "in", &in) ||
                    !streq(json_object_get_string(in), "query"))
                        continue;
                cr_assert(json_object_object_get_ex(p, "name", &name), "%s: unnamed", pattern);
                if (json_object_object_get_ex(p, "schema", &schema))
                        json_object_object_get_ex(schema, "enum", &values);
                json_object_object_add(out, json_object_get_string(name), json_object_get(values));
        }
        return out;
}

static void expect_enum_equal(const struct iov_api_route *r, const struct iov_api_query_param *q,
                              struct json_object *values)
{
        size_t n = 0;
        for (; q->values && q->values[n]; n++) {
                bool found = false;
                for (size_t i = 0; values && i < json_object_array_length(values); i++)
                        found |= streq(json_object_get_string(json_object_array_get_idx(values, i)),
                                       q->values[n]);
                cr_expect(found, "%s %s ?%s=%s is allowed but not in the spec's enum", r->method,
                          r->pattern, q->name, q->values[n]);
        }
        size_t want = values ? json_object_array_length(values) : 0;
        cr_expect_eq(n, want, "%s %s ?%s: %zu values declared, the spec's enum has %zu", r->method,
                     r->pattern, q->name, n, want);
}

/* The route table declares exactly the query parameters the spec documents, with the
 * same enums, both ways. */
Test(api_openapi, query_parameters_match_the_spec)
{
        struct json_object *spec = spec_load();
        size_t checked = 0;
        for (const struct iov_api_route *r = api_routes(); r; r = r->next) {
                char method[16];
                lower(r->method, method, sizeof(method));
                struct json_object *documented = spec_query_params(spec, r->pattern, method);
                size_t declared = 0;
                for (const struct iov_api_query_param *q = r->query; q && q->name; q++) {
                        struct json_object *values = NULL;
                        cr_expect(json_object_object_get_ex(documented, q->name, &values),
                                  "%s %s declares ?%s, which the spec does not document", r->method,
                                  r->pattern, q->name);
                        expect_enum_equal(r, q, values);
                        declared++;
                        checked++;
                }
                cr_expect_eq((size_t)json_object_object_length(documented), declared,
                             "%s %s: the spec documents %d query parameters, the route declares "
                             "%zu",
                             r->method, r->pattern, json_object_object_length(documented),
                             declared);
                json_object_put(documented);
        }
        cr_expect_geq(checked, 11u, "only %zu query parameters declared", checked);
        json_object_put(spec);
}
