/* SPDX-License-Identifier: MIT */
/*
 * servers: the API of one daemon, a server for each --listen of its configuration,
 * started together once the core is up and stopped together before its modules stop.
 */
#include "api/api.h"
#include "daemon/daemon.h"

struct iov_api {
        struct iov_api_server *servers[IOV_DAEMON_MAX_LISTEN];
        size_t n_servers;
};

static int api_listen(struct iov_daemon *d, const char *spec, struct iov_api_server **ret)
{
        int r = api_server_start(d, spec, d->token, ret);
        if (r == -EADDRINUSE)
                return log_error_errno(r, "Cannot listen on %s: another process listens there",
                                       spec);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s: %m", spec);
        log_info("Listening on %s", spec);
        return 0;
}

int api_start(struct iov_daemon *d, struct iov_api **ret)
{
        _cleanup_(api_stopp) struct iov_api *api = calloc(1, sizeof(*api));
        if (!api)
                return -ENOMEM;
        for (size_t i = 0; i < d->config.n_listen; i++) {
                int r = api_listen(d, d->config.listen[i], &api->servers[api->n_servers]);
                if (r < 0)
                        return r;
                api->n_servers++;
        }
        *ret = TAKE_PTR(api);
        return 0;
}

void api_stop(struct iov_api *api)
{
        if (!api)
                return;
        for (size_t i = api->n_servers; i > 0; i--)
                api_server_stop(api->servers[i - 1]);
        free(api);
}
