/* SPDX-License-Identifier: MIT */
/* GET /metrics: Prometheus text exposition (format 0.0.4) of the daemon's counters. */
#include "api/api.h"
#include "daemon/daemon.h"

static int metrics_get(struct iov_daemon *d, const struct iov_api_request *req,
                       struct iov_api_response *resp)
{
        (void)req;
        char *text = NULL;
        int r = daemon_metrics_render(d, &text);
        if (r < 0)
                return r;
        return api_reply_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

API_ROUTE(metrics, "GET", "/metrics", metrics_get)
