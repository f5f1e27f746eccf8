/* SPDX-License-Identifier: MIT */
/* The route table: matching, captures, 404/405, percent-decoding per segment. */
#include <criterion/criterion.h>

#include "api/api.h"

static int handler(struct iov_daemon *d, const struct iov_api_request *req,
                   struct iov_api_response *resp)
{
        (void)d;
        (void)req;
        (void)resp;
        return 0;
}

API_ROUTE(t_list, "GET", "/t/items", handler)
API_ROUTE(t_create, "POST", "/t/items", handler)
API_ROUTE(t_get, "GET", "/t/items/{id}", handler)
API_ROUTE(t_new, "GET", "/t/items/new", handler)
API_ROUTE(t_sub, "PUT", "/t/items/{id}/parts/{part}", handler)

static const char *const colours[] = {"red", "green", NULL};
static const struct iov_api_query_param search_query[] = {
        {"colour", colours}, {"name", NULL}, {NULL, NULL}};
API_ROUTE_QUERY(t_search, "GET", "/t/search", handler, search_query)

static enum iov_api_match match(const char *method, const char *path, struct iov_api_request *req,
                                char **allow)
{
        const struct iov_api_route *route = NULL;
        *req = (struct iov_api_request){0};
        return api_route_match(method, path, req, &route, allow);
}

Test(api_router, literal_and_captures)
{
        struct iov_api_request req;
        char *allow = NULL;
        cr_assert_eq(match("GET", "/t/items", &req, &allow), IOV_API_MATCH_FOUND);
        cr_assert_str_eq(req.route, "/t/items");
        api_request_clear(&req);

        cr_assert_eq(match("GET", "/t/items/42", &req, &allow), IOV_API_MATCH_FOUND);
        cr_assert_str_eq(req.route, "/t/items/{id}", "route %s", req.route);
        cr_assert_str_eq(api_request_param(&req, "id"), "42");
        api_request_clear(&req);

        cr_assert_eq(match("GET", "/t/items/new", &req, &allow), IOV_API_MATCH_FOUND);
        cr_assert_str_eq(req.route, "/t/items/new", "literal lost to capture: %s", req.route);
        api_request_clear(&req);

        cr_assert_eq(match("PUT", "/t/items/a/parts/b", &req, &allow), IOV_API_MATCH_FOUND);
        cr_assert_str_eq(api_request_param(&req, "id"), "a");
        cr_assert_str_eq(api_request_param(&req, "part"), "b");
        cr_assert_null(api_request_param(&req, "nope"));
        api_request_clear(&req);
}

Test(api_router, not_found_and_method)
{
        struct iov_api_request req;
        char *allow = NULL;
        cr_assert_eq(match("GET", "/t/nothing", &req, &allow), IOV_API_MATCH_NO_PATH);
        cr_assert_eq(match("GET", "/t/items/1/parts", &req, &allow), IOV_API_MATCH_NO_PATH);
        cr_assert_eq(match("DELETE", "/t/items", &req, &allow), IOV_API_MATCH_NO_METHOD);
        cr_assert_not_null(allow);
        cr_assert(strstr(allow, "GET") && strstr(allow, "POST"), "Allow: %s", allow);
        free(allow);
}

Test(api_router, segments_decoded_one_by_one)
{
        struct iov_api_request req;
        char *allow = NULL;
        cr_assert_eq(match("GET", "/t/items/..%2f..%2fetc", &req, &allow), IOV_API_MATCH_FOUND);
        cr_assert_str_eq(api_request_param(&req, "id"), "../../etc",
                         "an encoded slash changed the route: %s", req.route);
        api_request_clear(&req);

        const char *bad[] = {"/t/items/%00", "/t/items/%zz", "/t/items/%4",
                             "/t//items",    "/t/items/",    "t/items"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                cr_expect_eq(match("GET", bad[i], &req, &allow), IOV_API_MATCH_BAD_PATH,
                             "%s not refused", bad[i]);
}

Test(api_router, percent_decode)
{
        char a[] = "a%20b+c";
        cr_assert_eq(api_percent_decode(a, true), 0);
        cr_assert_str_eq(a, "a b c");
        char b[] = "a+b";
        cr_assert_eq(api_percent_decode(b, false), 0);
        cr_assert_str_eq(b, "a+b");
        char c[] = "%";
        cr_assert_eq(api_percent_decode(c, false), -EINVAL);
}

/* The query check against the table: the code, and a message that says what is accepted. */
static void expect_query(const char *path, const char *const names[][2], size_t n, const char *code,
                         const char *says)
{
        struct iov_api_request req;
        char *allow = NULL;
        const struct iov_api_route *route = NULL;
        req = (struct iov_api_request){0};
        cr_assert_eq(api_route_match("GET", path, &req, &route, &allow), IOV_API_MATCH_FOUND);
        for (size_t i = 0; i < n; i++) {
                req.query[i].name = strdup(names[i][0]);
                req.query[i].value = strdup(names[i][1]);
        }
        req.n_query = n;
        struct iov_api_response resp = {0};
        int r = api_route_check_query(route, &req, &resp);
        if (!code) {
                cr_expect_eq(r, 0, "%s: refused with %u", path, resp.status);
        } else {
                struct json_object *e = NULL, *c = NULL, *m = NULL;
                json_object_object_get_ex(resp.json, "error", &e);
                json_object_object_get_ex(e, "code", &c);
                json_object_object_get_ex(e, "message", &m);
                cr_expect_eq(r, -EBADMSG, "%s %s=%s accepted", path, names[0][0], names[0][1]);
                cr_expect_eq(resp.status, 400u, "status %u", resp.status);
                cr_expect_str_eq(json_object_get_string(c), code, "code %s",
                                 json_object_get_string(c));
                cr_expect(strstr(json_object_get_string(m), says), "message \"%s\" lacks %s",
                          json_object_get_string(m), says);
        }
        api_response_clear(&resp);
        api_request_clear(&req);
}

Test(api_router, query_parameters_from_the_table)
{
        const char *const ok[][2] = {{"colour", "green"}, {"name", "anything at all"}};
        expect_query("/t/search", ok, 2, NULL, NULL);
        expect_query("/t/search", NULL, 0, NULL, NULL);
        const char *const off_enum[][2] = {{"colour", "blue"}};
        expect_query("/t/search", off_enum, 1, "invalid_parameter", "red, green");
        const char *const case_differs[][2] = {{"colour", "Red"}};
        expect_query("/t/search", case_differs, 1, "invalid_parameter", "red, green");
        const char *const unknown[][2] = {{"size", "1"}};
        expect_query("/t/search", unknown, 1, "unknown_parameter", "accepted: colour, name");
        expect_query("/t/items", unknown, 1, "unknown_parameter", "takes none");
}
