/* SPDX-License-Identifier: MIT */
/* The API edge of the running daemon: routing, errors, strict bodies, paths, filters. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "lab-suite.h"
#include "tests/fixtures/fixture.h"

LAB_SUITE(api);

static const char *error_code(const struct iov_http_reply *r)
{
        struct json_object *e, *c;
        if (!r->json || !json_object_object_get_ex(r->json, "error", &e) ||
            !json_object_object_get_ex(e, "code", &c))
                return "(no error object)";
        return json_object_get_string(c);
}

static const char *error_message(const struct iov_http_reply *r)
{
        struct json_object *e, *m;
        if (!r->json || !json_object_object_get_ex(r->json, "error", &e) ||
            !json_object_object_get_ex(e, "message", &m))
                return "";
        return json_object_get_string(m);
}

/* One request that must fail with status and code. */
static void expect_error(const struct iov_http_request *req, long status, const char *code)
{
        struct iov_http_reply r = {0};
        int rc = harness_http(req, &r);
        cr_assert_eq(rc, 0, "%s %s: no reply: %s", req->method, req->path, strerror(-rc));
        cr_expect_eq(r.status, status, "%s %s: status %ld, want %ld (body %s)", req->method,
                     req->path, r.status, status, r.body ? r.body : "");
        cr_expect_str_eq(error_code(&r), code, "%s %s: code %s, want %s", req->method, req->path,
                         error_code(&r), code);
        cr_expect_str_eq(r.content_type ? r.content_type : "", "application/json",
                         "%s %s: content type %s", req->method, req->path,
                         r.content_type ? r.content_type : "(none)");
        harness_reply_clear(&r);
}

static void expect_get_error(const char *path, long status, const char *code)
{
        struct iov_http_request req = {
                .method = "GET", .path = path, .socket_path = h->socket_path};
        expect_error(&req, status, code);
}

static void expect_post_error(const char *path, const char *body, long status, const char *code)
{
        struct iov_http_request req = {
                .method = "POST", .path = path, .body = body, .socket_path = h->socket_path};
        expect_error(&req, status, code);
}

Test(api, unknown_path_is_404)
{
        expect_get_error("/v1/nothing", 404, "not_found");
        expect_get_error("/", 404, "not_found");
        expect_get_error("/v2/devices", 404, "not_found");
        expect_get_error("/v1/devices/0000:01:00.0/no/such/thing", 404, "not_found");
}

Test(api, wrong_method_is_405_with_allow)
{
        struct iov_http_request req = {
                .method = "DELETE", .path = "/v1/devices", .socket_path = h->socket_path};
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_http(&req, &r), 0);
        cr_assert_eq(r.status, 405L, "status %ld", r.status);
        cr_assert_str_eq(error_code(&r), "method_not_allowed", "code %s", error_code(&r));
        cr_assert_not_null(r.allow, "no Allow header");
        cr_assert(strstr(r.allow, "GET"), "Allow is \"%s\"", r.allow);
        harness_reply_clear(&r);
        expect_get_error("/v1/rescan", 405, "method_not_allowed");
}

Test(api, oversized_body_is_413)
{
        size_t size = 2 * 1024 * 1024;
        _cleanup_free_ char *big = malloc(size + 1);
        cr_assert_not_null(big);
        memset(big, ' ', size);
        big[0] = '{';
        big[size - 1] = '}';
        big[size] = 0;
        expect_post_error("/v1/rescan", big, 413, "body_too_large");

        struct iov_http_request chunked = {.method = "POST",
                                           .path = "/v1/rescan",
                                           .body = big,
                                           .chunked = true,
                                           .socket_path = h->socket_path};
        expect_error(&chunked, 413, "body_too_large");

        /* The daemon is still there and serves the next request. */
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/devices", NULL, &r), 0);
        cr_assert_eq(r.status, 200L, "status after 413: %ld", r.status);
        harness_reply_clear(&r);
}

Test(api, strict_json_bodies)
{
        expect_post_error("/v1/rescan", "{", 400, "malformed_json");
        expect_post_error("/v1/rescan", "{'a': 1}", 400, "malformed_json");
        expect_post_error("/v1/rescan", "{} {}", 400, "trailing_garbage");
        expect_post_error("/v1/rescan", "{}x", 400, "trailing_garbage");
        expect_post_error("/v1/rescan", "{\"a\":1,\"a\":2}", 400, "duplicate_key");
        expect_post_error("/v1/rescan", "{\"a\":{\"b\":1,\"\\u0062\":2}}", 400, "duplicate_key");
        expect_post_error("/v1/rescan", "{\"force\":true}", 400, "unknown_field");
        expect_post_error("/v1/rescan", "[]", 400, "invalid_body");

        struct iov_http_reply r = {0};
        struct iov_http_request dup = {.method = "POST",
                                       .path = "/v1/rescan",
                                       .body = "{\"num\":1,\"num\":2}",
                                       .socket_path = h->socket_path};
        cr_assert_eq(harness_http(&dup, &r), 0);
        cr_assert(strstr(error_message(&r), "\"num\""), "message does not name the key: %s",
                  error_message(&r));
        harness_reply_clear(&r);

        struct iov_http_request text = {.method = "POST",
                                        .path = "/v1/rescan",
                                        .body = "{}",
                                        .content_type = "text/plain",
                                        .socket_path = h->socket_path};
        expect_error(&text, 415, "unsupported_media_type");
}

/* GET and DELETE take no body: one sent anyway is refused, not ignored, and the DELETE
 * does not happen. */
Test(api, body_on_get_or_delete_is_refused)
{
        struct iov_http_request get = {.method = "GET",
                                       .path = "/v1/devices",
                                       .body = "{}",
                                       .socket_path = h->socket_path};
        expect_error(&get, 400, "unexpected_body");
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "POST", "/v1/pools",
                                     "{\"name\":\"p\",\"selector\":{\"vendor_id\":\"1b36\"}}", &r),
                     0);
        cr_assert_eq(r.status, 201, "POST /v1/pools: %ld %s", r.status, r.body ? r.body : "");
        harness_reply_clear(&r);
        struct iov_http_request del = {.method = "DELETE",
                                       .path = "/v1/pools/p",
                                       .body = "{\"force\":true}",
                                       .socket_path = h->socket_path};
        expect_error(&del, 400, "unexpected_body");
        cr_assert_eq(harness_request(h, "GET", "/v1/pools/p", NULL, &r), 0);
        cr_expect_eq(r.status, 200, "the pool after a refused DELETE: %ld %s", r.status,
                     r.body ? r.body : "");
        harness_reply_clear(&r);
}

/* A query parameter a change does not define (a "force" or "dry_run" a client may believe
 * in) is refused, and nothing changes. */
Test(api, unknown_query_on_changes_is_refused)
{
        struct iov_http_reply r = {0};
        const char *pool = "{\"name\":\"p\",\"selector\":{\"vendor_id\":\"1b36\"}}";
        struct iov_http_request create = {.method = "POST",
                                          .path = "/v1/pools?dry_run=1",
                                          .body = pool,
                                          .socket_path = h->socket_path};
        expect_error(&create, 400, "unknown_parameter");
        cr_assert_eq(harness_request(h, "GET", "/v1/pools/p", NULL, &r), 0);
        cr_expect_eq(r.status, 404, "a refused POST created the pool: %ld", r.status);
        harness_reply_clear(&r);

        cr_assert_eq(harness_request(h, "POST", "/v1/pools", pool, &r), 0);
        cr_assert_eq(r.status, 201, "POST /v1/pools: %ld %s", r.status, r.body ? r.body : "");
        harness_reply_clear(&r);
        struct iov_http_request del = {
                .method = "DELETE", .path = "/v1/pools/p?force=1", .socket_path = h->socket_path};
        expect_error(&del, 400, "unknown_parameter");
        cr_assert_eq(harness_request(h, "GET", "/v1/pools/p", NULL, &r), 0);
        cr_expect_eq(r.status, 200, "the pool after a refused DELETE: %ld", r.status);
        harness_reply_clear(&r);

        struct iov_http_request alloc = {.method = "POST",
                                         .path = "/v1/allocations?dry_run=1",
                                         .body = "{\"owner\":\"x\",\"device\":\"0000:00:02.0\"}",
                                         .socket_path = h->socket_path};
        expect_error(&alloc, 400, "unknown_parameter");
        struct iov_http_request sriov = {.method = "PUT",
                                         .path = "/v1/devices/0000:01:00.0/sriov?force=1",
                                         .body = "{\"num_vfs\":2}",
                                         .socket_path = h->socket_path};
        expect_error(&sriov, 400, "unknown_parameter");
        cr_assert_eq(harness_request(h, "GET", "/v1/allocations", NULL, &r), 0);
        cr_expect(r.body && !strstr(r.body, "0000:00:02.0"), "refused allocation exists: %s",
                  r.body);
        harness_reply_clear(&r);
        cr_assert_eq(harness_request(h, "GET", "/v1/devices/0000:01:00.0", NULL, &r), 0);
        cr_expect(r.body && strstr(r.body, "\"num_vfs\":0"), "a refused PUT changed the VFs: %s",
                  r.body);
        harness_reply_clear(&r);
}

static void expect_put_error(const char *path, const char *body, long status, const char *code)
{
        struct iov_http_request req = {
                .method = "PUT", .path = path, .body = body, .socket_path = h->socket_path};
        expect_error(&req, status, code);
}

/* Typed fields through real resources (PUT sriov, POST allocations), and nothing changed
 * by a refused body. */
Test(api, typed_fields_refused_and_nothing_changes)
{
        const char *sriov = "/v1/devices/0000:01:00.0/sriov";
        expect_put_error(sriov, "{\"num_vfs\":\"2\"}", 400, "wrong_type");
        expect_put_error(sriov, "{\"num_vfs\":2.0}", 400, "wrong_type");
        expect_put_error(sriov, "{\"num_vfs\":true}", 400, "wrong_type");
        expect_put_error(sriov, "{}", 400, "missing_field");
        expect_put_error(sriov, "{\"num_vfs\":2,\"vfs\":2}", 400, "unknown_field");
        expect_put_error(sriov, "{\"num_vfs\":2,\"num_vfs\":3}", 400, "duplicate_key");
        expect_put_error(sriov, "{\"num_vfs\":2}garbage", 400, "trailing_garbage");
        expect_put_error(sriov, NULL, 400, "missing_body");
        expect_post_error("/v1/allocations", "{\"owner\":7,\"device\":\"0000:00:02.0\"}", 400,
                          "wrong_type");
        expect_post_error("/v1/allocations", "{\"device\":\"0000:00:02.0\"}", 400, "missing_field");

        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/devices/0000:01:00.0", NULL, &r), 0);
        struct json_object *sr, *n;
        cr_assert(r.json && json_object_object_get_ex(r.json, "sriov", &sr) &&
                          json_object_object_get_ex(sr, "num_vfs", &n),
                  "%s", r.body);
        cr_expect_eq(json_object_get_int(n), 0, "refused requests changed num_vfs to %d",
                     json_object_get_int(n));
        harness_reply_clear(&r);
        cr_assert_eq(harness_request(h, "GET", "/v1/allocations", NULL, &r), 0);
        cr_expect(r.body && !strstr(r.body, "0000:00:02.0"), "refused allocation exists: %s",
                  r.body);
        harness_reply_clear(&r);
}

Test(api, bad_addresses_and_path_tricks)
{
        expect_get_error("/v1/devices/..%2f..%2fetc", 400, "invalid_address");
        expect_get_error("/v1/devices/..%2F..%2Fetc%2Fpasswd", 400, "invalid_address");
        expect_get_error("/v1/devices/0000:01:00.0%2f..", 400, "invalid_address");
        expect_get_error("/v1/devices/0000:1:0.0", 400, "invalid_address");
        expect_get_error("/v1/devices/0000:01:00.8", 400, "invalid_address");
        expect_get_error("/v1/devices/%20000:01:00.0", 400, "invalid_address");
        expect_get_error("/v1/devices/0000:01:00.0%00", 400, "invalid_path");
        expect_get_error("/v1/devices/%zz", 400, "invalid_path");
        expect_get_error("/v1/devices//", 400, "invalid_path");
        expect_get_error("/v1/devices/0000:99:00.0", 404, "device_not_found");
        expect_get_error("/v1/iommu-groups/abc", 400, "invalid_group_id");
        expect_get_error("/v1/iommu-groups/-1", 400, "invalid_group_id");
        expect_get_error("/v1/iommu-groups/4294967296", 400, "invalid_group_id");
        expect_get_error("/v1/iommu-groups/9999", 404, "group_not_found");

        /* Upper case hex and percent-encoded colons are the same address. */
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/devices/0000%3A01%3A00.0", NULL, &r), 0);
        cr_assert_eq(r.status, 200L, "encoded colons: status %ld", r.status);
        harness_reply_clear(&r);
}

static size_t count_devices(const char *query, long *ret_status)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/devices%s", query);
        struct iov_http_reply r = {0};
        struct json_object *list;
        cr_assert_eq(harness_request(h, "GET", path, NULL, &r), 0);
        *ret_status = r.status;
        size_t n = 0;
        if (r.json && json_object_object_get_ex(r.json, "devices", &list))
                n = json_object_array_length(list);
        harness_reply_clear(&r);
        return n;
}

Test(api, device_filters)
{
        long status;
        size_t all = count_devices("", &status);
        cr_assert_eq(status, 200L);
        cr_assert_gt(all, 5u, "lab tree lists %zu devices", all);

        struct {
                const char *query;
                size_t want;
        } cases[] = {
                {"?sriov=pf", 1},
                {"?sriov=vf", 0},
                {"?vendor_id=1b36&device_id=0010", 1},
                {"?class=0108", 1},
                {"?class=010802", 1},
                {"?driver=e1000e", 1},
                {"?driver=e1000e&class=03", 0},
                {"?physfn=0000:01:00.0", 0},
                {"?vendor_id=ffff", 0},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                size_t n = count_devices(cases[i].query, &status);
                cr_expect_eq(status, 200L, "%s: status %ld", cases[i].query, status);
                cr_expect_eq(n, cases[i].want, "%s: %zu devices, want %zu", cases[i].query, n,
                             cases[i].want);
        }
        size_t none = count_devices("?driver=none", &status);
        cr_expect(none > 0 && none < all, "driver=none: %zu of %zu", none, all);
        /* Without VFs, everything but the one PF is neither PF nor VF. */
        size_t plain = count_devices("?sriov=none", &status);
        cr_expect_eq(status, 200L, "sriov=none: status %ld", status);
        cr_expect_eq(plain, all - 1, "sriov=none: %zu of %zu", plain, all);

        const char *bad[] = {
                "?class=2",           "?class=zz",   "?vendor_id=8086a",   "?vendor_id=0x86",
                "?device_id=",        "?numa_node=", "?numa_node=-1",      "?numa_node=x",
                "?physfn=0000:01:00", "?driver=a/b", "?driver=..%2f..%2fx"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *path = util_strdup_printf("/v1/devices%s", bad[i]);
                expect_get_error(path, 400, "invalid_filter");
        }
        expect_get_error("/v1/devices?colour=red", 400, "unknown_parameter");
        expect_get_error("/v1/devices?sriov=pf&sriov=vf", 400, "duplicate_parameter");
}

/* A parameter with an enum in api/openapi.yaml takes only those values: the route table
 * declares them and the server refuses the others before any handler runs. */
Test(api, query_enums_refused)
{
        expect_get_error("/v1/devices?sriov=both", 400, "invalid_parameter");
        expect_get_error("/v1/devices?sriov=PF", 400, "invalid_parameter");
        expect_get_error("/v1/allocations?state=bogus", 400, "invalid_parameter");
        expect_get_error("/v1/allocations?state=", 400, "invalid_parameter");
        expect_get_error("/v1/allocations?owner=x&colour=red", 400, "unknown_parameter");
        expect_get_error("/v1/vms?state=bogus", 400, "invalid_parameter");
        expect_get_error("/v1/vms?status=running", 400, "unknown_parameter");
        expect_get_error("/v1/host?x=1", 400, "unknown_parameter");
        static const char *const states[] = {"pending", "active", "releasing", "lost"};
        for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
                struct iov_http_reply r = {0};
                _cleanup_free_ char *path =
                        util_strdup_printf("/v1/allocations?state=%s", states[i]);
                cr_assert_eq(harness_request(h, "GET", path, NULL, &r), 0);
                cr_expect_eq(r.status, 200L, "%s: status %ld", path, r.status);
                harness_reply_clear(&r);
        }
}

Test(api, device_fields)
{
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/devices/0000:01:00.0", NULL, &r), 0);
        cr_assert_eq(r.status, 200L, "status %ld", r.status);
        struct json_object *v, *sriov;
        const char *strings[][2] = {{"address", "0000:01:00.0"},
                                    {"vendor_id", "1b36"},
                                    {"device_id", "0010"},
                                    {"class", "010802"},
                                    {"driver", "nvme"}};
        for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
                cr_assert(json_object_object_get_ex(r.json, strings[i][0], &v), "no %s",
                          strings[i][0]);
                cr_expect_str_eq(json_object_get_string(v), strings[i][1], "%s is %s",
                                 strings[i][0], json_object_get_string(v));
        }
        cr_assert(json_object_object_get_ex(r.json, "sriov", &sriov) && sriov, "PF without sriov");
        cr_assert(json_object_object_get_ex(sriov, "total_vfs", &v));
        cr_expect_eq(json_object_get_int(v), 4, "total_vfs %d", json_object_get_int(v));
        cr_assert(json_object_object_get_ex(r.json, "allocation", &v), "no allocation field");
        cr_expect_null(v, "allocation is %s", json_object_to_json_string(v));
        cr_assert(json_object_object_get_ex(r.json, "physfn", &v), "no physfn field");
        cr_expect_null(v, "physfn of a PF is %s", json_object_to_json_string(v));
        harness_reply_clear(&r);
}

Test(api, metrics_counts_requests)
{
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/devices", NULL, &r), 0);
        harness_reply_clear(&r);
        cr_assert_eq(harness_request(h, "GET", "/v1/nope", NULL, &r), 0);
        harness_reply_clear(&r);
        cr_assert_eq(harness_request(h, "GET", "/metrics", NULL, &r), 0);
        cr_assert_eq(r.status, 200L);
        cr_assert(r.content_type && strstr(r.content_type, "text/plain"), "content type %s",
                  r.content_type);
        const char *want[] = {
                "iovd_http_requests_total{method=\"GET\",route=\"/v1/devices\",status=\"200\"} 1",
                "iovd_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
                "iovd_pci_devices ",
                ("iovd_http_request_duration_seconds_total{method=\"GET\",route=\"/v1/devices\","
                 "status=\"200\"} "),
        };
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                cr_expect(strstr(r.body, want[i]), "metrics lack \"%s\":\n%s", want[i], r.body);
        harness_reply_clear(&r);
}
