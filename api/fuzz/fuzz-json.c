/* SPDX-License-Identifier: MIT */
/* libFuzzer: the strict JSON parser and the field-table check on arbitrary bodies. */
#include <stdint.h>

#include "api/api.h"

static const struct iov_api_field fields[] = {
        {"num_vfs", json_type_int, true, false},
        {"owner", json_type_string, false, false},
        {"pool", json_type_string, false, true},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct iov_api_request req = {0};
        struct iov_api_response resp = {0};
        const char *code = NULL;
        char *message = NULL;

        if (size > IOV_API_BODY_MAX)
                return 0;
        if (api_json_parse_strict((const char *)data, size, &req.body, &code, &message) == 0)
                api_body_check(&req, &resp, fields, ARRAY_SIZE(fields));
        free(message);
        json_object_put(req.body);
        api_response_clear(&resp);
        return 0;
}
