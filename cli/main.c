/* SPDX-License-Identifier: MIT */
/*
 * iovctl: command-line client of iovd. Everything but process setup lives in the
 * iovcli library so the unit tests run the same code.
 */
#include <curl/curl.h>
#include <stdio.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fputs("iovctl: cannot initialize libcurl\n", stderr);
                return IOV_CLI_EXIT_UNREACHABLE;
        }
        int status = cli_main(argc - 1, (const char *const *)argv + 1, stdout, stderr);
        if (fflush(stdout) != 0 && status == IOV_CLI_EXIT_OK)
                status = IOV_CLI_EXIT_API;
        curl_global_cleanup();
        return status;
}
