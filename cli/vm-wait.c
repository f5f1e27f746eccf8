/* SPDX-License-Identifier: MIT */
/*
 * iovctl vm start [--wait] [--marker N] [--timeout SEC]: POST /v1/vms/{id}/start, which
 * answers once the VM's iovd-vmm runs (or ended), then with --wait follow the VM (GET
 * every 200 ms) until it is running, or until the guest wrote boot marker N to the
 * debug port (stats.markers), with a progress line on a terminal. A VM that stops or
 * crashes first, or a timeout, is a failure (exit status 1).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define VM_WAIT_POLL_USEC           200000
#define VM_WAIT_DEFAULT_TIMEOUT_SEC 60

const struct iov_cli_option_spec cli_vm_start_options[] = {
        {"wait", 0, NULL, "wait until the VM runs (or fails); a progress line on a terminal"},
        {"marker", 0, "N", "with --wait: until the guest writes boot marker N (debug port)"},
        {"timeout", 0, "SEC", "give up waiting after SEC seconds (default 60): exit status 1"},
        {NULL, 0, NULL, NULL},
};

struct vm_wait {
        const char *id;
        long long marker; /* -1: running is enough */
        uint64_t deadline_usec;
        struct iov_cli_progress *progress;
};

/* Has the guest written this marker? stats.markers: [{value, usec, count}]. */
static bool vm_has_marker(struct json_object *vm, long long marker)
{
        struct json_object *stats = NULL, *markers = NULL, *value = NULL;
        if (!json_object_object_get_ex(vm, "stats", &stats) ||
            !json_object_object_get_ex(stats, "markers", &markers) ||
            !json_object_is_type(markers, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(markers); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(markers, i), "value",
                                              &value) &&
                    json_object_get_int64(value) == marker)
                        return true;
        return false;
}

/* 1 done, 0 keep waiting, -1 failed (stopped or crashed before it got there). */
static int vm_wait_check(const struct vm_wait *w, struct json_object *vm, const char *state)
{
        if (w->marker >= 0 && vm_has_marker(vm, w->marker))
                return 1;
        if (streq(state, "running"))
                return w->marker < 0 ? 1 : 0;
        return streq(state, "paused") ? 0 : -1;
}

static int vm_wait_failed(struct iov_cli *cli, const struct vm_wait *w, struct json_object *vm,
                          const char *what)
{
        _cleanup_free_ char *state = cli_json_field(vm, "state");
        _cleanup_free_ char *reason = cli_json_field(vm, "reason");
        fprintf(cli->err, "iovctl: VM %s %s (state %s%s%s)\n", w->id, what, state ? state : "-",
                reason ? ": " : "", reason ? reason : "");
        return IOV_CLI_EXIT_API;
}

/* Follow the VM from the start answer on; *vm is replaced by each newer answer. */
static int vm_wait_loop(struct iov_cli *cli, struct vm_wait *w, const char *path,
                        struct json_object **vm)
{
        for (;;) {
                _cleanup_free_ char *state = cli_json_field(*vm, "state");
                int done = vm_wait_check(w, *vm, state ? state : "-");
                if (done != 0)
                        return done > 0
                                       ? IOV_CLI_EXIT_OK
                                       : vm_wait_failed(cli, w, *vm, "stopped before it got there");
                if (util_now_usec() >= w->deadline_usec)
                        return vm_wait_failed(cli, w, *vm, "timed out");
                cli_progress_set(w->progress, "vm start %s: %s%s", w->id, state ? state : "-",
                                 w->marker >= 0 ? ", waiting for its boot marker" : "");
                util_sleep_usec(VM_WAIT_POLL_USEC);
                json_object_put(*vm);
                *vm = NULL;
                int status = cli_call(cli, "GET", path, NULL, vm);
                if (status != IOV_CLI_EXIT_OK)
                        return status;
                if (!*vm)
                        return IOV_CLI_EXIT_API;
        }
}

/* --marker and --timeout; both only with --wait. */
static int vm_start_parse(struct iov_cli *cli, const struct iov_cli_args *args, struct vm_wait *w,
                          long long *ret_timeout_sec)
{
        const char *marker = cli_args_get(args, "marker"), *timeout = cli_args_get(args, "timeout");
        long long sec = VM_WAIT_DEFAULT_TIMEOUT_SEC;

        if ((marker || timeout) && !cli_args_has(args, "wait"))
                return cli_usage_error(cli, "--marker and --timeout go with --wait");
        /* The debug port takes writes of up to 4 bytes (vmm/debugport.c). */
        if (marker && cli_parse_int(marker, 0, UINT32_MAX, &w->marker) < 0)
                return cli_usage_error(cli, "--marker takes a number from 0 to %u, not '%s'",
                                       UINT32_MAX, marker);
        if (timeout && cli_parse_int(timeout, 1, 86400, &sec) < 0)
                return cli_usage_error(cli, "--timeout takes 1 to 86400 seconds, not '%s'",
                                       timeout);
        *ret_timeout_sec = sec;
        return IOV_CLI_EXIT_OK;
}

/* The last answer: --json always (scripts see how it ended), the detail view on success. */
static int vm_start_show(struct iov_cli *cli, int status, struct json_object *vm)
{
        int r = 0;
        if (vm && cli->json)
                r = cli_json_print(vm, cli->out);
        else if (vm && status == IOV_CLI_EXIT_OK)
                r = cli_print_object(cli, vm);
        if (r < 0) {
                fprintf(cli->err, "iovctl: cannot print the answer: %s\n", strerror(-r));
                return IOV_CLI_EXIT_API;
        }
        return status;
}

int cli_cmd_vm_start(struct iov_cli *cli, const struct iov_cli_args *args)
{
        struct vm_wait w = {.id = args->positional[0], .marker = -1};
        _cleanup_free_ char *path = cli_path_build("/v1/vms", w.id, NULL);
        _cleanup_free_ char *start = cli_path_build("/v1/vms", w.id, "/start");
        _cleanup_json_ struct json_object *vm = NULL;
        long long timeout_sec = VM_WAIT_DEFAULT_TIMEOUT_SEC;

        int status = vm_start_parse(cli, args, &w, &timeout_sec);
        if (status != IOV_CLI_EXIT_OK)
                return status;
        if (!path || !start)
                return cli_usage_error(cli, "out of memory");
        if (!cli_args_has(args, "wait"))
                return cli_call_and_show(cli, "POST", start, NULL, cli_print_object);
        w.deadline_usec = util_now_usec() + (uint64_t)timeout_sec * 1000000;
        w.progress = cli_progress_start(cli, "vm start %s", w.id);
        status = cli_call(cli, "POST", start, NULL, &vm);
        if (status == IOV_CLI_EXIT_OK)
                status = vm ? vm_wait_loop(cli, &w, path, &vm) : IOV_CLI_EXIT_API;
        cli_progress_end(w.progress);
        return vm_start_show(cli, status, vm);
}
