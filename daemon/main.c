/* SPDX-License-Identifier: MIT */
/* iovd: parse options, start the core, then the API over it; wait for SIGTERM/SIGINT;
 * stop the API before the core's modules, so no request runs into a stopped module. */
#include <signal.h>
#include <stdio.h>

#include "api/api.h"
#include "daemon/daemon.h"

static int run(struct iov_daemon *d)
{
        _cleanup_(api_stopp) struct iov_api *api = NULL;

        int r = daemon_start(d);
        if (r < 0)
                return r;
        r = api_start(d, &api);
        if (r < 0)
                return r;
        daemon_ready(d);
        r = daemon_wait_for_signal(d);
        daemon_stop_begin(d); /* streams end, so closing the API does not wait on them */
        api_stop(TAKE_PTR(api));
        daemon_stop(d);
        return r;
}

int main(int argc, char **argv)
{
        struct iov_daemon_config config;
        _cleanup_(daemon_freep) struct iov_daemon *d = NULL;
        sigset_t set;

        if (daemon_config_init(&config) < 0)
                return EXIT_FAILURE;
        int r = daemon_config_parse(&config, argc, argv);
        if (r != 0) {
                daemon_config_clear(&config);
                return r > 0 ? EXIT_SUCCESS : 2;
        }
        util_log_set_max_level(config.log_level);

        /* Signals are taken with sigwait() in this thread; every thread started later
         * inherits the mask. A client closing its socket must not kill the daemon. */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (daemon_test_hooks_enabled())
                sigaddset(&set, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = daemon_new(&config, &d);
        if (r < 0)
                return EXIT_FAILURE;
        r = run(d);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
