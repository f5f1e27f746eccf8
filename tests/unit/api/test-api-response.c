/* SPDX-License-Identifier: MIT */
/* Filling responses: the one error shape, list answers that never have holes, and the
 * PCI address of a path parsed once for every resource. */
#include <criterion/criterion.h>

#include "api/api.h"
#include "daemon/daemon.h"
#include "pci/pci.h"

static const char *error_code(const struct iov_api_response *resp)
{
        struct json_object *err = NULL, *code = NULL;
        if (!json_object_object_get_ex(resp->json, "error", &err) ||
            !json_object_object_get_ex(err, "code", &code))
                return NULL;
        return json_object_get_string(code);
}

static const char *error_message(const struct iov_api_response *resp)
{
        struct json_object *err = NULL, *message = NULL;
        if (!json_object_object_get_ex(resp->json, "error", &err) ||
            !json_object_object_get_ex(err, "message", &message))
                return NULL;
        return json_object_get_string(message);
}

Test(api_response, error_shape)
{
        struct iov_api_response resp = {0};
        int r = api_error(&resp, 409, "pool_exists", "a pool named %s already exists", "p");
        cr_assert_eq(r, -EBADMSG, "api_error returned %d", r);
        cr_assert_eq(resp.status, 409u, "status %u", resp.status);
        cr_assert_str_eq(error_code(&resp), "pool_exists", "body %s",
                         json_object_to_json_string(resp.json));
        cr_assert_str_eq(error_message(&resp), "a pool named p already exists", "body %s",
                         json_object_to_json_string(resp.json));
        api_response_clear(&resp);
}

/* A module's refusal: the same shape, and each key of its details joins the error object
 * (group_not_viable's "blockers"); the problem keeps its details for the caller to clear. */
Test(api_response, problem_with_details)
{
        struct iov_api_response resp = {0};
        struct iov_problem p = {.status = 409, .code = "group_not_viable", .message = "busy"};
        p.details = json_object_new_object();
        json_object_object_add(p.details, "blockers", json_object_new_array());
        int r = api_reply_problem(&resp, &p);
        cr_assert_eq(r, -EBADMSG, "api_reply_problem returned %d", r);
        cr_assert_eq(resp.status, 409u, "status %u", resp.status);
        const char *body = json_object_to_json_string_ext(resp.json, JSON_C_TO_STRING_PLAIN);
        cr_assert_str_eq(body,
                         "{\"error\":{\"code\":\"group_not_viable\",\"message\":\"busy\","
                         "\"blockers\":[]}}",
                         "body %s", body);
        cr_assert_not_null(json_object_object_get(p.details, "blockers"), "details %s",
                           json_object_to_json_string(p.details));
        json_object_put(p.details);
        api_response_clear(&resp);
}

Test(api_response, list_answer)
{
        struct iov_api_response resp = {0};
        struct json_object *arr = json_object_new_array();
        arr = api_array_append(arr, json_object_new_int(1));
        arr = api_array_append(arr, json_object_new_int(2));
        cr_assert_not_null(arr, "append of two items failed");
        int r = api_reply_list(&resp, "items", arr);
        cr_assert_eq(r, 0, "api_reply_list returned %d", r);
        cr_assert_eq(resp.status, 200u, "status %u", resp.status);
        cr_assert_str_eq(json_object_to_json_string_ext(resp.json, JSON_C_TO_STRING_PLAIN),
                         "{\"items\":[1,2]}", "body %s", json_object_to_json_string(resp.json));
        api_response_clear(&resp);
}

/* An item that could not be built (NULL: out of memory) drops the whole list: the client
 * gets a 500 from the server, never a list with a null in it. */
Test(api_response, list_with_a_missing_item_is_no_answer)
{
        struct iov_api_response resp = {0};
        struct json_object *arr = json_object_new_array();
        arr = api_array_append(arr, json_object_new_int(1));
        arr = api_array_append(arr, NULL);
        cr_assert_null(arr, "the list survived a missing item");
        arr = api_array_append(arr, json_object_new_int(3));
        cr_assert_null(arr, "a dropped list came back after another append");
        int r = api_reply_list(&resp, "items", arr);
        cr_assert_eq(r, -ENOMEM, "api_reply_list(NULL) returned %d", r);
        cr_assert_eq(resp.status, 0u, "a response was filled: status %u", resp.status);
        cr_assert_null(resp.json, "a body was set: %s", json_object_to_json_string(resp.json));
}

static int parse_param(const char *value, struct iov_api_response *resp,
                       struct iov_pci_address *ret)
{
        struct iov_api_request req = {
                .params = {{.name = "address", .value = (char *)value}},
                .n_params = 1,
        };
        return api_param_address(&req, resp, "address", ret);
}

Test(api_response, path_address)
{
        struct iov_api_response resp = {0};
        struct iov_pci_address a = {0};
        char buf[IOV_PCI_ADDRESS_MAX];
        int r = parse_param("0000:01:00.3", &resp, &a);
        cr_assert_eq(r, 0, "api_param_address(0000:01:00.3) returned %d", r);
        cr_assert_str_eq(pci_address_format(&a, buf), "0000:01:00.3", "parsed as %s", buf);
        cr_assert_eq(resp.status, 0u, "a valid address filled a response: status %u", resp.status);
}

Test(api_response, path_address_refused)
{
        static const char *const bad[] = {"",          "0000:01:00",     "0000:01:00.8",
                                          "../../etc", "0000:01:00.0/x", "zzzz:01:00.0"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct iov_api_response resp = {0};
                struct iov_pci_address a = {.domain = 0x1234};
                int r = parse_param(bad[i], &resp, &a);
                cr_assert_eq(r, -EBADMSG, "\"%s\": returned %d", bad[i], r);
                cr_assert_eq(resp.status, 400u, "\"%s\": status %u", bad[i], resp.status);
                cr_assert_str_eq(error_code(&resp), "invalid_address", "\"%s\": body %s", bad[i],
                                 json_object_to_json_string(resp.json));
                const char *message = error_message(&resp);
                cr_assert(message && strstr(message, bad[i]),
                          "\"%s\": message does not quote it: %s", bad[i], message);
                cr_assert_eq(a.domain, 0x1234u, "\"%s\": the output was written", bad[i]);
                api_response_clear(&resp);
        }
        /* No such capture in the route: refused the same way, not a crash. */
        struct iov_api_request req = {0};
        struct iov_api_response resp = {0};
        struct iov_pci_address a;
        int r = api_param_address(&req, &resp, "address", &a);
        cr_assert_eq(r, -EBADMSG, "without the capture: returned %d", r);
        cr_assert_str_eq(error_code(&resp), "invalid_address", "without the capture: %s",
                         json_object_to_json_string(resp.json));
        api_response_clear(&resp);
}
