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
        char *token; /* contents of --token-file, NULL without one */
};

/* The bearer token TCP listeners require, read and judged before anything listens. */
static int api_token_load(const struct iov_daemon *d, char **ret)
{
        const char *path = d->config.token_file;
        unsigned mode = 0;

        if (!path)
                return 0;
        int r = api_token_read(path, ret, &mode);
        if (r == -EPERM)
                return log_error_errno(r,
                                       "Token file %s is open to group or others (mode %04o); "
                                       "it must be readable by its owner only (chmod 600)",
                                       path, mode);
        if (r == -EINVAL)
                return log_error_errno(r,
                                       "Token file %s does not hold a strong token: it needs "
                                       "%d bits or more, 32+ hex digits or 22+ base64url "
                                       "characters on one line (e.g. openssl rand -hex 16)",
                                       path, IOV_API_TOKEN_MIN_BITS);
        if (r < 0)
                return log_error_errno(r, "Cannot read token file %s: %m", path);
        return 0;
}

static int api_listen(struct iov_daemon *d, const char *spec, const char *token,
                      struct iov_api_server **ret)
{
        int r = api_server_start(d, spec, token, ret);
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
        int r = api_token_load(d, &api->token);
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->config.n_listen; i++) {
                r = api_listen(d, d->config.listen[i], api->token, &api->servers[api->n_servers]);
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
        free(api->token);
        free(api);
}
