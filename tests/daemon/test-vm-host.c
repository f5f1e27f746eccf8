/* SPDX-License-Identifier: MIT */
/* VMs in the daemon-wide views: counts by state in GET /v1/host and /metrics next to the
 * allocations' (both modules contribute), and the --vmm option. */
#include <sys/socket.h>
#include <sys/un.h>

#include "test-vm-common.h"

VM_TEST_SUITE(vm_host, false);

static int64_t count_of(struct json_object *counts, const char *key)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(counts, key, &v) || !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

static void expect_metric_line(const char *metrics, const char *line)
{
        _cleanup_free_ char *needle = util_strdup_printf("\n%s\n", line);
        cr_expect(strstr(metrics, needle), "no line \"%s\" in /metrics:\n%s", line, metrics);
}

Test(vm_host, counts_by_state_in_host_and_metrics)
{
        _cleanup_free_ char *a = vm_create(&env, "hello", 16);
        _cleanup_free_ char *b = vm_create(&env, "hello", 16);
        cr_assert(a && b, "VMs not created");
        struct iov_http_reply r;
        vm_call(&env, "GET", "/v1/host", NULL, 200, &r);
        struct json_object *counts = NULL;
        cr_assert(json_object_object_get_ex(r.json, "counts", &counts), "no counts in %s", r.body);
        cr_expect_eq(count_of(counts, "vms"), 2, "counts.vms in %s", r.body);
        struct json_object *by_state = NULL;
        cr_assert(json_object_object_get_ex(counts, "vms_by_state", &by_state),
                  "no counts.vms_by_state in %s", r.body);
        cr_expect_eq(count_of(by_state, "created"), 2, "created in %s", r.body);
        cr_expect_eq(count_of(by_state, "running"), 0, "running in %s", r.body);
        /* The allocations module still contributes its own counts. */
        cr_expect_eq(count_of(counts, "allocations"), 0, "counts.allocations in %s", r.body);
        harness_reply_clear(&r);

        vm_call(&env, "GET", "/metrics", NULL, 200, &r);
        expect_metric_line(r.body, "iovd_vms{state=\"created\"} 2");
        expect_metric_line(r.body, "iovd_vms{state=\"crashed\"} 0");
        expect_metric_line(r.body, "iovd_allocations{state=\"active\"} 0");
        harness_reply_clear(&r);

        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", a);
        vm_call(&env, "DELETE", path, NULL, 200, &r);
        harness_reply_clear(&r);
        vm_call(&env, "GET", "/metrics", NULL, 200, &r);
        expect_metric_line(r.body, "iovd_vms{state=\"created\"} 1");
        harness_reply_clear(&r);
}

/* The value of the metric line that starts with name (the labels included), or -1. */
static double metric_value(const char *metrics, const char *name)
{
        _cleanup_free_ char *needle = util_strdup_printf("\n%s ", name);
        const char *line = strstr(metrics, needle);
        return line ? strtod(line + strlen(needle), NULL) : -1;
}

/* Each step a VM took through iovd is counted and timed (iovd_vm_step_seconds_total), so
 * bench/vms can say where a VM's time goes. */
Test(vm_host, vm_steps_are_timed_in_metrics)
{
        HARNESS_SKIP_WITHOUT_KVM();
        _cleanup_free_ char *id = vm_create(&env, "idle", 16);
        cr_assert(id, "VM not created");
        struct iov_http_reply r;
        vm_action(&env, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", id);
        vm_call(&env, "DELETE", path, NULL, 200, &r);
        harness_reply_clear(&r);

        vm_call(&env, "GET", "/metrics", NULL, 200, &r);
        const char *taken[] = {"validate",  "state_write",  "file_open", "config_write",
                               "spawn",     "monitor_exec", "vmm_ready", "stop",
                               "exit_read", "delete"};
        for (size_t i = 0; i < ARRAY_SIZE(taken); i++) {
                _cleanup_free_ char *count =
                        util_strdup_printf("iovd_vm_steps_total{step=\"%s\"}", taken[i]);
                _cleanup_free_ char *seconds =
                        util_strdup_printf("iovd_vm_step_seconds_total{step=\"%s\"}", taken[i]);
                cr_expect_geq(metric_value(r.body, count), 1, "%s: %g, in:\n%s", count,
                              metric_value(r.body, count), r.body);
                cr_expect_gt(metric_value(r.body, seconds), 0, "%s: %g", seconds,
                             metric_value(r.body, seconds));
        }
        /* A kill and a delete cost a save each at least, the create one. */
        cr_expect_geq(metric_value(r.body, "iovd_vm_steps_total{step=\"state_write\"}"), 3,
                      "state_write count");
        harness_reply_clear(&r);
}

/* Restart iovd with extra arguments and IOVD_VMM_BINARY unset; 0 or harness_start's error. */
static int restart_with(const char *const *extra, struct iov_harness **ret)
{
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        _cleanup_free_ char *saved = strdup(getenv("IOVD_VMM_BINARY"));
        unsetenv("IOVD_VMM_BINARY");
        struct iov_harness_options o = {.state_dir = env.state_dir, .extra_args = extra};
        int r = harness_start(&o, ret);
        setenv("IOVD_VMM_BINARY", saved, 1);
        return r;
}

Test(vm_host, vmm_option_names_the_binary)
{
        const char *vmm = getenv("IOVD_VMM_BINARY");
        const char *extra[] = {"--run-dir", env.run_dir, "--vmm", vmm, NULL};
        int r = restart_with(extra, &env.h);
        _cleanup_free_ char *log = env.h ? harness_log(env.h) : NULL;
        cr_assert_eq(r, 0, "iovd --vmm %s did not start: %s\n%s", vmm, strerror(-r), log);
        _cleanup_free_ char *said = util_strdup_printf("(VMM %s)", vmm);
        cr_expect(strstr(log, said), "the log does not name --vmm %s:\n%s", vmm, log);
}

Test(vm_host, vmm_option_that_cannot_run_fails_the_start)
{
        const char *extra[] = {"--run-dir", env.run_dir, "--vmm", "/nonexistent/iovd-vmm", NULL};
        struct iov_harness *h = NULL;
        int r = restart_with(extra, &h);
        cr_assert_eq(r, -ECHILD, "iovd started with a missing --vmm: %s", strerror(-r));
        cr_expect_eq(h->exit_status, 1, "exit status %d", h->exit_status);
        _cleanup_free_ char *log = harness_log(h);
        cr_expect(strstr(log, "/nonexistent/iovd-vmm"), "message does not name it:\n%s", log);
        harness_free(h);
}

Test(vm_host, vmm_option_must_be_absolute)
{
        const char *const args[] = {"--vmm", "iovd-vmm", NULL};
        int status = 0;
        _cleanup_free_ char *out = NULL;
        int r = harness_run(args, &status, &out);
        cr_assert_eq(r, 0, "cannot run iovd: %s", strerror(-r));
        cr_expect_neq(status, 0, "a relative --vmm was accepted");
        cr_expect(strstr(out, "--vmm"), "the error does not name --vmm:\n%s", out);
}

/* Lowered idle timeout (2 s): a silent idle connection is closed, a silent console follow
 * and events stream are not. */
#define IDLE_TIMEOUT_SEC "2"

static void restart_with_short_timeout(void)
{
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        const char *extra[] = {"--run-dir", env.run_dir, "--connection-timeout-sec",
                               IDLE_TIMEOUT_SEC, NULL};
        struct iov_harness_options o = {.state_dir = env.state_dir, .extra_args = extra};
        int r = harness_start(&o, &env.h);
        cr_assert_eq(r, 0, "iovd --connection-timeout-sec did not start: %s", strerror(-r));
}

static int connect_silent(void)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", env.h->socket_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                     strerror(errno));
        return fd;
}

/* The next non-blank line of a stream, or the error of harness_events_next. */
static int next_line(int fd, unsigned timeout_ms, char **ret)
{
        for (;;) {
                int r = harness_events_next(fd, timeout_ms, ret);
                if (r < 0 || **ret)
                        return r;
                free(*ret); /* a keep-alive */
        }
}

Test(vm_host, streams_outlive_the_idle_timeout)
{
        HARNESS_SKIP_WITHOUT_KVM();
        restart_with_short_timeout();
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        vm_action(&env, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_wait_console(&env, id, "idle");

        _cleanup_close_ int idle = connect_silent();
        _cleanup_close_ int console = -1, events = -1;
        long status = 0;
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s/console?follow=1", id);
        cr_assert_eq(harness_stream_open(env.h, path, &console, &status), 0, "GET %s", path);
        cr_assert_eq(status, 200, "GET %s: status %ld", path, status);
        cr_assert_eq(harness_events_open(env.h, &events, &status), 0, "GET /v1/events");
        _cleanup_free_ char *subscribed = NULL, *first = NULL;
        cr_assert_eq(next_line(events, 5000, &subscribed), 0, "no first event line");
        cr_assert_eq(next_line(console, 5000, &first), 0, "no console output");
        cr_expect_str_eq(first, "idle", "console said \"%s\"", first);

        /* The guest now prints nothing for twice the timeout. */
        util_sleep_usec(2 * 2000000ULL + 500000);
        char c;
        cr_expect_eq(recv(idle, &c, 1, MSG_DONTWAIT), 0,
                     "a silent idle connection outlived the %s s timeout", IDLE_TIMEOUT_SEC);
        ssize_t n = recv(console, &c, 1, MSG_DONTWAIT);
        cr_expect(n < 0 && errno == EAGAIN, "the console follow was cut (recv %zd, %s)", n,
                  n < 0 ? strerror(errno) : "end of stream");

        /* The events stream still delivers, the console still ends cleanly with its VM. */
        _cleanup_free_ char *other = vm_create(&env, "hello", 16);
        cr_assert(other, "second VM not created");
        _cleanup_free_ char *event = NULL;
        cr_assert_eq(next_line(events, 5000, &event), 0, "events stream cut or silent");
        cr_expect(strstr(event, "vm_created"), "event %s", event);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
        _cleanup_free_ char *last = NULL;
        cr_expect_eq(next_line(console, 10000, &last), -EPIPE,
                     "the console did not end with its VM (%s)", last ? last : "timeout");
}

Test(vm_host, bad_device_is_refused_at_create_naming_entry_and_field)
{
        _cleanup_free_ char *kernel = vm_guest("hello");
        _cleanup_free_ char *body =
                util_strdup_printf("{\"kernel\": \"%s\", \"devices\": [{\"type\": \"virtio-rng\"}, "
                                   "{\"type\": \"virtio-blk\", \"read_only\": true}]}",
                                   kernel);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 400, &r);
        cr_expect_str_eq(vm_error_code(&r), "invalid_device", "code %s", vm_error_code(&r));
        const char *message = vm_error_message(&r);
        cr_expect(strstr(message, "\"devices\"[1]") && strstr(message, "path"),
                  "message names neither the entry nor the missing field: %s", message);
        harness_reply_clear(&r);
        vm_call(&env, "GET", "/v1/vms", NULL, 200, &r);
        struct json_object *list = json_object_is_type(r.json, json_type_array)
                                           ? r.json
                                           : json_object_object_get(r.json, "vms");
        cr_expect_eq(json_object_array_length(list), 0u, "a refused create defined a VM: %s",
                     r.body);
        harness_reply_clear(&r);
}
