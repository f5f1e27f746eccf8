/* SPDX-License-Identifier: MIT */
/*
 * iovctl sriov on a terminal: while PUT /v1/devices/PF/sriov waits in iovd for the VFs
 * (up to 10 s), a second thread follows GET /v1/events and counts the device_added
 * events of the PF's VFs (their "physfn"), so the progress line says how many are there.
 * The PUT is sent only once the stream said "subscribed" (from then on no event is
 * missed), or after 2 s without it. Off a terminal none of this runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define WATCH_SUBSCRIBE_WAIT_USEC 2000000
#define WATCH_COUNT_WAIT_USEC     500000

struct sriov_watch {
        struct iov_cli_endpoint endpoint; /* the command's, with cancel set */
        const char *pf;
        long long num_vfs;
        long long seen;
        struct iov_cli_progress *progress;
        int cancel;     /* set by the command: the stream ends (transport.c) */
        int subscribed; /* set by the thread; both read and written atomically */
        int ended;
};

static int watch_on_line(const char *line, size_t len, void *userdata)
{
        struct sriov_watch *w = userdata;
        struct json_object *data = NULL;
        (void)len;
        _cleanup_json_ struct json_object *event = json_tokener_parse(line);
        _cleanup_free_ char *type = cli_json_field(event, "type");

        if (type && streq(type, "subscribed"))
                __atomic_store_n(&w->subscribed, 1, __ATOMIC_RELEASE);
        if (!type || !streq(type, "device_added") ||
            !json_object_object_get_ex(event, "data", &data))
                return 0;
        _cleanup_free_ char *physfn = cli_json_field(data, "physfn");
        if (!physfn || !streq(physfn, w->pf))
                return 0;
        long long seen = __atomic_add_fetch(&w->seen, 1, __ATOMIC_RELEASE);
        cli_progress_set(w->progress, "sriov %s: %lld of %lld VFs", w->pf, seen, w->num_vfs);
        return 0;
}

static void *watch_thread(void *userdata)
{
        struct sriov_watch *w = userdata;
        struct iov_cli_response resp = {0};
        _cleanup_free_ char *error = NULL;

        /* However it ends (cancelled, refused, iovd gone): the command does not need it. */
        cli_transport_stream(&w->endpoint, "/v1/events", false, watch_on_line, w, &resp, &error);
        cli_response_clear(&resp);
        __atomic_store_n(&w->ended, 1, __ATOMIC_RELEASE);
        return NULL;
}

/* Until the stream said subscribed, or ended, or usec passed. */
static void watch_wait_subscribed(struct sriov_watch *w, uint64_t usec)
{
        uint64_t deadline = util_now_usec() + usec;
        while (!__atomic_load_n(&w->subscribed, __ATOMIC_ACQUIRE) &&
               !__atomic_load_n(&w->ended, __ATOMIC_ACQUIRE) && util_now_usec() < deadline)
                util_sleep_usec(10000);
}

/* iovd publishes the VFs' events as it answers: let the last ones reach the line. */
static void watch_wait_counted(struct sriov_watch *w, uint64_t usec)
{
        uint64_t deadline = util_now_usec() + usec;
        while (__atomic_load_n(&w->seen, __ATOMIC_ACQUIRE) < w->num_vfs &&
               !__atomic_load_n(&w->ended, __ATOMIC_ACQUIRE) && util_now_usec() < deadline)
                util_sleep_usec(10000);
}

int cli_sriov_call_watching(struct iov_cli *cli, const char *pf, long long num_vfs,
                            struct json_object *body)
{
        _cleanup_free_ char *path = cli_path_build("/v1/devices", pf, "/sriov");
        _cleanup_free_ char *label =
                util_strdup_printf("sriov %s: waiting for %lld VFs", pf, num_vfs);
        _cleanup_json_ struct json_object *json = NULL;
        struct sriov_watch w = {.endpoint = cli->endpoint, .pf = pf, .num_vfs = num_vfs};
        pthread_t thread;

        if (!path || !label)
                return cli_usage_error(cli, "out of memory");
        if (!cli->term.progress || num_vfs == 0)
                return cli_call_waiting(cli, label, "PUT", path, body);
        w.endpoint.cancel = &w.cancel;
        w.progress = cli_progress_start(cli, "%s", label);
        bool watching = pthread_create(&thread, NULL, watch_thread, &w) == 0;
        if (watching)
                watch_wait_subscribed(&w, WATCH_SUBSCRIBE_WAIT_USEC);
        int status = cli_call(cli, "PUT", path, body, &json);
        if (watching && status == IOV_CLI_EXIT_OK)
                watch_wait_counted(&w, WATCH_COUNT_WAIT_USEC);
        __atomic_store_n(&w.cancel, 1, __ATOMIC_RELEASE);
        if (watching)
                pthread_join(thread, NULL);
        cli_progress_end(w.progress);
        return status == IOV_CLI_EXIT_OK ? cli_print_answer(cli, json) : status;
}
