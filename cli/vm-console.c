/* SPDX-License-Identifier: MIT */
/*
 * `iovctl vm console ID [--follow]`: what the guest printed on its serial console. The
 * guest's bytes go to stdout untouched (a prompt without a newline shows at once when
 * following); with --json the API's answer is printed as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

const struct iov_cli_option_spec cli_console_options[] = {
        {"follow", 'f', NULL, "keep printing as the guest writes"},
        {NULL, 0, NULL, NULL},
};

static int on_console_data(const char *data, size_t len, void *userdata)
{
        struct iov_cli *cli = userdata;
        if (fwrite(data, 1, len, cli->out) != len)
                return -EIO;
        fflush(cli->out);
        return 0;
}

/* A JSON answer carries the text in a string member; anything else is the text. */
static void console_print_answer(struct iov_cli *cli, const struct iov_cli_response *resp)
{
        static const char *const keys[] = {"output", "console", "text", "data"};
        struct json_object *v = NULL;

        if (cli->json && resp->json) {
                cli_json_print(resp->json, cli->out);
                return;
        }
        for (size_t i = 0; resp->json && i < ARRAY_SIZE(keys); i++)
                if (json_object_object_get_ex(resp->json, keys[i], &v) &&
                    json_object_is_type(v, json_type_string)) {
                        fputs(json_object_get_string(v), cli->out);
                        return;
                }
        if (resp->body)
                fwrite(resp->body, 1, resp->size, cli->out);
}

static int console_report(struct iov_cli *cli, int r, const char *error,
                          struct iov_cli_response *resp)
{
        int status = IOV_CLI_EXIT_OK;
        if (r < 0) {
                fprintf(cli->err, "iovctl: %s\n", error ? error : strerror(-r));
                return cli_transport_error_is_unreachable(r) ? IOV_CLI_EXIT_UNREACHABLE
                                                             : IOV_CLI_EXIT_API;
        }
        if (resp->status < 200 || resp->status > 299) {
                _cleanup_free_ char *line = cli_error_format(resp);
                fprintf(cli->err, "%s\n", line ? line : "error: out of memory");
                status = IOV_CLI_EXIT_API;
        }
        return status;
}

int cli_cmd_vm_console(struct iov_cli *cli, const struct iov_cli_args *args)
{
        struct iov_cli_response resp = {0};
        _cleanup_free_ char *error = NULL;
        bool follow = cli_args_has(args, "follow");
        _cleanup_free_ char *path = cli_path_build("/v1/vms", args->positional[0],
                                                   follow ? "/console?follow=1" : "/console");
        int r, status;

        if (!path)
                return cli_usage_error(cli, "out of memory");
        if (follow)
                r = cli_transport_stream(&cli->endpoint, path, true, on_console_data, cli, &resp,
                                         &error);
        else
                r = cli_transport_request(&cli->endpoint, "GET", path, NULL, &resp, &error);
        status = console_report(cli, r, error, &resp);
        if (status == IOV_CLI_EXIT_OK && !follow)
                console_print_answer(cli, &resp);
        cli_response_clear(&resp);
        return status;
}
