/* SPDX-License-Identifier: MIT */
/*
 * router: the one route table. Resource files add themselves with API_ROUTE(); a request
 * path is split into segments, each percent-decoded on its own, so an encoded slash
 * ("..%2f..%2fetc") stays inside one segment and reaches the handler's strict parser
 * instead of changing which route matches.
 */
#include <stdio.h>

#include "api/api.h"
#include "pci/pci.h"

static struct iov_api_route *routes;

void api_route_register(struct iov_api_route *route)
{
        route->next = routes;
        routes = route;
}

const struct iov_api_route *api_routes(void)
{
        return routes;
}

int api_percent_decode(char *s, bool plus_is_space)
{
        char *out = s;

        for (const char *in = s; *in; in++) {
                if (*in == '+' && plus_is_space) {
                        *out++ = ' ';
                        continue;
                }
                if (*in != '%') {
                        *out++ = *in;
                        continue;
                }
                char hex[3] = {in[1], in[1] ? in[2] : 0, 0};
                uint64_t v;
                if (!hex[0] || !hex[1] || util_parse_u64(hex, 16, &v) < 0 || v == 0)
                        return -EINVAL;
                *out++ = (char)v;
                in += 2;
        }
        *out = 0;
        return 0;
}

/* Split "/a/b/c" into at most max segments, in place. -EINVAL when the path does not start
 * with '/' or has an empty segment ("//", a trailing slash); -E2BIG above max. */
static int split_path(char *path, char **segments, size_t max, size_t *ret_n)
{
        size_t n = 0;

        if (path[0] != '/')
                return -EINVAL;
        if (path[1] == 0) {
                *ret_n = 0;
                return 0;
        }
        for (char *p = path + 1;;) {
                char *slash = strchr(p, '/');
                if (slash)
                        *slash = 0;
                if (*p == 0)
                        return -EINVAL;
                if (n == max)
                        return -E2BIG;
                segments[n++] = p;
                if (!slash)
                        break;
                p = slash + 1;
        }
        *ret_n = n;
        return 0;
}

#define MAX_SEGMENTS 16

/* Number of captures when pattern matches the segments, -1 otherwise. Captures are
 * stored in params (names point into a copy of the pattern owned by the caller). */
static int route_try(char *pattern_copy, char **segments, size_t n_segments,
                     struct iov_api_param *params)
{
        char *pattern_segments[MAX_SEGMENTS];
        size_t n_pattern;
        int n_params = 0;

        if (split_path(pattern_copy, pattern_segments, MAX_SEGMENTS, &n_pattern) < 0)
                return -1;
        if (n_pattern != n_segments)
                return -1;
        for (size_t i = 0; i < n_segments; i++) {
                char *p = pattern_segments[i];
                size_t len = strlen(p);
                if (p[0] == '{' && p[len - 1] == '}') {
                        if (n_params == IOV_API_MAX_PARAMS)
                                return -1;
                        p[len - 1] = 0;
                        params[n_params].name = p + 1;
                        params[n_params].value = segments[i];
                        n_params++;
                } else if (!streq(p, segments[i]))
                        return -1;
        }
        return n_params;
}

static void allow_append(char *allow, size_t size, const char *method)
{
        if (strstr(allow, method))
                return;
        size_t len = strlen(allow);
        snprintf(allow + len, size - len, "%s%s", len ? ", " : "", method);
}

struct match_state {
        char *segments[MAX_SEGMENTS];
        size_t n_segments;
        const struct iov_api_route *best;
        int best_params;
        char allow[64];
};

/* Split and decode the request path into m->segments (in place in path). */
static enum iov_api_match match_segments(char *path, struct match_state *m)
{
        int r = split_path(path, m->segments, MAX_SEGMENTS, &m->n_segments);
        if (r == -E2BIG)
                return IOV_API_MATCH_NO_PATH;
        if (r < 0)
                return IOV_API_MATCH_BAD_PATH;
        for (size_t i = 0; i < m->n_segments; i++)
                if (api_percent_decode(m->segments[i], false) < 0)
                        return IOV_API_MATCH_BAD_PATH;
        return IOV_API_MATCH_FOUND;
}

/* Pick the route for method; collect the methods the path has for a 405. */
static int match_routes(const char *method, struct match_state *m)
{
        for (const struct iov_api_route *route = routes; route; route = route->next) {
                _cleanup_free_ char *pattern = strdup(route->pattern);
                struct iov_api_param params[IOV_API_MAX_PARAMS];
                if (!pattern)
                        return -ENOMEM;
                int n = route_try(pattern, m->segments, m->n_segments, params);
                if (n < 0)
                        continue;
                if (!streq(route->method, method)) {
                        allow_append(m->allow, sizeof(m->allow), route->method);
                        continue;
                }
                /* Literal segments win over captures: "/v1/vms/new" before "/v1/vms/{id}". */
                if (m->best_params < 0 || n < m->best_params) {
                        m->best = route;
                        m->best_params = n;
                }
        }
        return 0;
}

/* Copy the winner's captures into the request. */
static int match_fill(struct match_state *m, struct iov_api_request *req)
{
        _cleanup_free_ char *pattern = strdup(m->best->pattern);
        struct iov_api_param params[IOV_API_MAX_PARAMS];
        if (!pattern)
                return -ENOMEM;
        int n = route_try(pattern, m->segments, m->n_segments, params);
        req->route = m->best->pattern;
        req->n_params = 0;
        for (int i = 0; i < n; i++) {
                req->params[i].name = strdup(params[i].name);
                req->params[i].value = strdup(params[i].value);
                req->n_params++;
                if (!req->params[i].name || !req->params[i].value)
                        return -ENOMEM;
        }
        return 0;
}

enum iov_api_match api_route_match(const char *method, const char *path,
                                   struct iov_api_request *req, const struct iov_api_route **ret,
                                   char **ret_allow)
{
        _cleanup_free_ char *copy = strdup(path);
        struct match_state m = {.best_params = -1};

        if (!copy)
                return IOV_API_MATCH_NO_PATH;
        enum iov_api_match r = match_segments(copy, &m);
        if (r != IOV_API_MATCH_FOUND)
                return r;
        if (match_routes(method, &m) < 0)
                return IOV_API_MATCH_NO_PATH;
        if (!m.best) {
                if (!m.allow[0])
                        return IOV_API_MATCH_NO_PATH;
                if (ret_allow)
                        *ret_allow = strdup(m.allow);
                return IOV_API_MATCH_NO_METHOD;
        }
        if (match_fill(&m, req) < 0)
                return IOV_API_MATCH_NO_PATH;
        *ret = m.best;
        return IOV_API_MATCH_FOUND;
}

static const char *param_find(const struct iov_api_param *params, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (streq(params[i].name, name))
                        return params[i].value;
        return NULL;
}

const char *api_request_param(const struct iov_api_request *req, const char *name)
{
        return param_find(req->params, req->n_params, name);
}

const char *api_request_query(const struct iov_api_request *req, const char *name)
{
        return param_find(req->query, req->n_query, name);
}

int api_param_address(const struct iov_api_request *req, struct iov_api_response *resp,
                      const char *name, struct iov_pci_address *ret)
{
        const char *text = api_request_param(req, name);
        struct iov_pci_address address;
        if (!text || pci_address_parse(text, &address) < 0)
                return api_error(resp, 400, "invalid_address",
                                 "\"%s\" is not a PCI address (expected like 0000:01:00.0)",
                                 text ? text : "");
        *ret = address;
        return 0;
}

void api_request_clear(struct iov_api_request *req)
{
        for (size_t i = 0; i < req->n_params; i++) {
                free((char *)req->params[i].name);
                free(req->params[i].value);
        }
        for (size_t i = 0; i < req->n_query; i++) {
                free((char *)req->query[i].name);
                free(req->query[i].value);
        }
        req->n_params = req->n_query = 0;
        json_object_put(req->body);
        req->body = NULL;
}

/* "a, b, c" from a NULL-terminated list, or from the names of a query table; NULL on OOM. */
static char *join_names(const char *const *values, const struct iov_api_query_param *params)
{
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        if (!out)
                return NULL;
        for (size_t i = 0; values ? values[i] != NULL : params[i].name != NULL; i++)
                fprintf(out, "%s%s", i ? ", " : "", values ? values[i] : params[i].name);
        if (fclose(out) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

static const struct iov_api_query_param *query_param_find(const struct iov_api_route *route,
                                                          const char *name)
{
        for (const struct iov_api_query_param *p = route->query; p && p->name; p++)
                if (streq(p->name, name))
                        return p;
        return NULL;
}

static bool value_allowed(const struct iov_api_query_param *p, const char *value)
{
        if (!p->values)
                return true;
        for (const char *const *v = p->values; *v; v++)
                if (streq(*v, value))
                        return true;
        return false;
}

int api_route_check_query(const struct iov_api_route *route, const struct iov_api_request *req,
                          struct iov_api_response *resp)
{
        for (size_t i = 0; i < req->n_query; i++) {
                const struct iov_api_param *q = &req->query[i];
                const struct iov_api_query_param *p = query_param_find(route, q->name);
                if (p && value_allowed(p, q->value))
                        continue;
                _cleanup_free_ char *accepted =
                        route->query ? join_names(p ? p->values : NULL, route->query) : NULL;
                if (!p)
                        return api_error(resp, 400, "unknown_parameter",
                                         "unknown query parameter \"%s\" (%s%s)", q->name,
                                         route->query ? "accepted: " : "this resource takes none",
                                         accepted ? accepted : "");
                return api_error(resp, 400, "invalid_parameter",
                                 "query parameter \"%s\" is one of %s, not \"%.32s\"", q->name,
                                 accepted ? accepted : "?", q->value);
        }
        return 0;
}
