/* SPDX-License-Identifier: MIT */
/* iovd: parse options, start, wait for SIGTERM/SIGINT, stop cleanly. */
#include <signal.h>
#include <stdio.h>

#include "daemon/daemon.h"

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
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = daemon_new(&config, &d);
        if (r < 0)
                return EXIT_FAILURE;
        r = daemon_start(d);
        if (r < 0)
                return EXIT_FAILURE;
        r = daemon_wait_for_signal(d);
        daemon_stop(d);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
