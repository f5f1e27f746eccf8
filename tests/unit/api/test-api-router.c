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
