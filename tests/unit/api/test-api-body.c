/* SPDX-License-Identifier: MIT */
/* Strict JSON at the API edge: the parser and the field table. */
#include <criterion/criterion.h>

#include "api/api.h"

static int parse(const char *text, const char **ret_code)
{
        struct json_object *o = NULL;
        _cleanup_free_ char *message = NULL;
        *ret_code = "";
        int r = api_json_parse_strict(text, strlen(text), &o, ret_code, &message);
        json_object_put(o);
        return r;
}

Test(api_body, accepts_valid_json)
{
        const char *good[] = {"{}",
                              " {\"a\": [1, 2, {\"b\": null}]}\n",
                              "{\"a\":\"x\\\"y\"}",
                              "{\"a\":1,\"b\":{\"a\":2}}",
                              "[{\"a\":1},{\"a\":1}]",
                              "{\"\\u00e9\":1,\"e\":2}",
                              "{\"n\":-0.5e+3,\"m\":0}"};
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                const char *code;
                int r = parse(good[i], &code);
                cr_expect_eq(r, 0, "%s refused with %s", good[i], code);
        }
}

Test(api_body, refuses_with_stable_codes)
{
        const struct {
                const char *text;
                const char *code;
        } bad[] = {
                {"", "malformed_json"},
                {"{", "malformed_json"},
                {"{\"a\":}", "malformed_json"},
                {"{'a':1}", "malformed_json"},
                {"{\"a\":'x'}", "malformed_json"},
                {"{\"a\":1,}", "malformed_json"},
                {"{a:1}", "malformed_json"},
                {"{\"a\":NaN}", "malformed_json"},
                {"{\"a\":0x10}", "malformed_json"},
                {"{\"a\":01}", "malformed_json"},
                {"{\"a\":Infinity}", "malformed_json"},
                {"{\"a\":1} x", "trailing_garbage"},
                {"{}{}", "trailing_garbage"},
                {"{\"a\":1,\"a\":1}", "duplicate_key"},
                {"{\"x\":{\"a\":1,\"b\":2,\"a\":3}}", "duplicate_key"},
                {"[{\"k\":1,\"k\":2}]", "duplicate_key"},
                {"{\"a\":1,\"\\u0061\":2}", "duplicate_key"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                const char *code;
                int r = parse(bad[i].text, &code);
                cr_expect_eq(r, -EBADMSG, "%s accepted (r=%d)", bad[i].text, r);
                cr_expect_str_eq(code, bad[i].code, "%s: code %s, want %s", bad[i].text, code,
                                 bad[i].code);
        }
}

Test(api_body, scalars_at_end_of_input)
{
        const char *texts[] = {"12", "null", "true", "\"s\"", " -1.5e3 "};
        for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
                const char *code;
                int r = parse(texts[i], &code);
                cr_expect_eq(r, 0, "%s refused with %s", texts[i], code);
        }
        const char *code;
        cr_expect_eq(parse("12 13", &code), -EBADMSG, "two numbers accepted");
        cr_expect_str_eq(code, "trailing_garbage", "12 13: code %s", code);
}

Test(api_body, refuses_embedded_nul)
{
        const char text[] = "{\"a\":1}\0{\"b\":2}";
        struct json_object *o = NULL;
        const char *code = "";
        int r = api_json_parse_strict(text, sizeof(text) - 1, &o, &code, NULL);
        cr_assert_eq(r, -EBADMSG, "NUL inside the body accepted");
        cr_assert_str_eq(code, "trailing_garbage", "code %s", code);
}

/* An escaped NUL is valid JSON but cuts every C string made from it: refused wherever it
 * stands (value, key, nested), while an escaped backslash before "u0000" is no NUL. */
Test(api_body, refuses_escaped_nul_in_strings)
{
        const char *bad[] = {
                "{\"owner\":\"vm\\u0000x\"}",           "{\"a\\u0000\":1}", "[\"\\u0000\"]",
                "{\"a\":{\"b\":[\"x\",\"y\\u0000\"]}}", "\"\\\\\\u0000\"",  "{\"a\":\"\\u00000\"}"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                const char *code;
                int r = parse(bad[i], &code);
                cr_expect_eq(r, -EBADMSG, "%s accepted", bad[i]);
                cr_expect_str_eq(code, "nul_in_string", "%s: code %s", bad[i], code);
        }
        const char *good[] = {"{\"owner\":\"vm\\\\u0000x\"}", "{\"a\":\"\\u0001\"}"};
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                const char *code;
                int r = parse(good[i], &code);
                cr_expect_eq(r, 0, "%s refused with %s", good[i], code);
        }
}

static const struct iov_api_field fields[] = {
        {"num_vfs", json_type_int, true, false},
        {"owner", json_type_string, false, false},
        {"pool", json_type_string, false, true},
};

static int check(const char *text, struct iov_api_response *resp)
{
        struct iov_api_request req = {0};
        *resp = (struct iov_api_response){0};
        cr_assert_eq(api_json_parse_strict(text, strlen(text), &req.body, NULL, NULL), 0, "%s",
                     text);
        int r = api_body_check(&req, resp, fields, ARRAY_SIZE(fields));
        json_object_put(req.body);
        return r;
}

static void expect_field_error(const char *text, const char *code, const char *field)
{
        struct iov_api_response resp;
        int r = check(text, &resp);
        cr_expect_eq(r, -EBADMSG, "%s accepted", text);
        cr_expect_eq(resp.status, 400u, "%s: status %u", text, resp.status);
        struct json_object *e = NULL, *c = NULL, *m = NULL;
        json_object_object_get_ex(resp.json, "error", &e);
        json_object_object_get_ex(e, "code", &c);
        json_object_object_get_ex(e, "message", &m);
        cr_expect_str_eq(json_object_get_string(c), code, "%s: code %s", text,
                         json_object_get_string(c));
        cr_expect(strstr(json_object_get_string(m), field), "%s: message \"%s\" lacks %s", text,
                  json_object_get_string(m), field);
        api_response_clear(&resp);
}

Test(api_body, field_table)
{
        struct iov_api_response resp;
        cr_expect_eq(check("{\"num_vfs\":4}", &resp), 0, "minimal body refused");
        api_response_clear(&resp);
        cr_expect_eq(check("{\"num_vfs\":4,\"owner\":\"vm1\",\"pool\":null}", &resp), 0,
                     "full body refused");
        api_response_clear(&resp);

        expect_field_error("{\"num_vfs\":4,\"colour\":1}", "unknown_field", "colour");
        expect_field_error("{\"num_vfs\":\"4\"}", "wrong_type", "num_vfs");
        expect_field_error("{\"num_vfs\":4.5}", "wrong_type", "num_vfs");
        expect_field_error("{\"num_vfs\":null}", "wrong_type", "num_vfs");
        expect_field_error("{\"num_vfs\":1,\"owner\":null}", "wrong_type", "owner");
        expect_field_error("{\"owner\":\"x\"}", "missing_field", "num_vfs");
        expect_field_error("[]", "invalid_body", "object");
}

Test(api_body, missing_body)
{
        struct iov_api_request req = {0};
        struct iov_api_response resp = {0};
        cr_assert_eq(api_body_check(&req, &resp, fields, ARRAY_SIZE(fields)), -EBADMSG);
        cr_assert_eq(resp.status, 400u, "status %u", resp.status);
        api_response_clear(&resp);
}
