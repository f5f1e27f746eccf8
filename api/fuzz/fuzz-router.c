/* SPDX-License-Identifier: MIT */
/* libFuzzer: route matching, per-segment percent-decoding and the path address parser on
 * arbitrary paths. */
#include <stdint.h>

#include "api/api.h"
#include "pci/pci.h"

static int handler(struct iov_daemon *d, const struct iov_api_request *req,
                   struct iov_api_response *resp)
{
        (void)d;
        (void)req;
        (void)resp;
        return 0;
}

API_ROUTE(f_list, "GET", "/v1/devices", handler)
API_ROUTE(f_get, "GET", "/v1/devices/{address}", handler)
API_ROUTE(f_put, "PUT", "/v1/devices/{address}/sriov", handler)
API_ROUTE(f_vm, "POST", "/v1/vms/{id}/{action}", handler)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const methods[] = {"GET", "PUT", "POST", "DELETE"};
        if (size < 1 || size > 4096)
                return 0;
        _cleanup_free_ char *path = strndup((const char *)data + 1, size - 1);
        if (!path)
                return 0;
        struct iov_api_request req = {0};
        const struct iov_api_route *route = NULL;
        _cleanup_free_ char *allow = NULL;
        enum iov_api_match m = api_route_match(methods[data[0] % 4], path, &req, &route, &allow);
        /* A decoded capture goes on to the strict address parser, as in api/devices.c. */
        if (m == IOV_API_MATCH_FOUND && api_request_param(&req, "address")) {
                struct iov_api_response resp = {0};
                struct iov_pci_address address;
                (void)api_param_address(&req, &resp, "address", &address);
                api_response_clear(&resp);
        }
        api_request_clear(&req);
        return 0;
}
