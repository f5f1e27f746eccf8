/* SPDX-License-Identifier: MIT */
/*
 * VM lifecycle through the real iovd and real iovd-vmm on /dev/kvm: a guest that prints,
 * writes its boot marker and resets through the i8042 ends stopped with its text on the
 * console; a VMM killed with SIGKILL makes only its own VM crashed; a VM keeps running
 * across an iovd restart and is still controlled afterwards; a stop the guest ignores
 * ends in a kill after the timeout.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "test-vm-common.h"

VM_TEST_SUITE(vm_lifecycle, true, .timeout = 110);

static bool has_marker(struct json_object *vm, int value)
{
        struct json_object *stats, *markers;
        if (!json_object_object_get_ex(vm, "stats", &stats) ||
            !json_object_object_get_ex(stats, "markers", &markers))
                return false;
        for (size_t i = 0; i < json_object_array_length(markers); i++) {
                struct json_object *m = json_object_array_get_idx(markers, i), *v;
                if (json_object_object_get_ex(m, "value", &v) && json_object_get_int(v) == value)
                        return true;
        }
        return false;
}

Test(vm_lifecycle, guest_prints_and_resets_to_stopped)
{
        _cleanup_free_ char *id = vm_create(&env, "hello", 16);
        struct iov_http_reply r;
        vm_action(&env, id, "start", NULL, 200, &r);
        const char *state = vm_str(r.json, "state");
        cr_assert(streq(state, "running") || streq(state, "stopped"),
                  "state after start: %s (reason %s)", state, vm_str(r.json, "reason"));
        harness_reply_clear(&r);

        vm_wait_state(&env, id, "stopped", &r);
        cr_expect(strstr(vm_str(r.json, "reason"), "reset") != NULL, "reason of a guest reset: %s",
                  vm_str(r.json, "reason"));
        cr_expect(has_marker(r.json, 1), "boot marker 1 missing from the final stats: %s", r.body);
        harness_reply_clear(&r);

        _cleanup_free_ char *out = vm_console(&env, id);
        cr_expect(strstr(out, "hello from the guest") != NULL, "console: \"%s\"", out);

        /* A stopped VM starts again on the same definition. */
        vm_run_until_stopped(&env, id);
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", id);
        vm_call(&env, "DELETE", path, NULL, 200, &r);
        harness_reply_clear(&r);
        vm_call(&env, "GET", path, NULL, 404, &r);
        cr_expect_str_eq(vm_error_code(&r), "not_found", "GET after DELETE: %s", vm_error_code(&r));
        harness_reply_clear(&r);
}

/* The start's answer shows the running VMM's live stats, as a GET does, so that a client
 * waiting for a boot marker may see it there without a poll. */
Test(vm_lifecycle, start_answer_has_live_stats)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        vm_action(&env, id, "start", NULL, 200, &r);
        cr_assert_str_eq(vm_str(r.json, "state"), "running", "state after start: %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        struct json_object *stats, *exits, *markers;
        cr_assert(json_object_object_get_ex(r.json, "stats", &stats) &&
                          json_object_object_get_ex(stats, "exits", &exits) &&
                          json_object_object_get_ex(stats, "markers", &markers) &&
                          json_object_is_type(markers, json_type_array),
                  "no live stats in the start's answer: %s", r.body);
        harness_reply_clear(&r);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

Test(vm_lifecycle, console_follow_streams_until_stopped)
{
        _cleanup_free_ char *id = vm_create(&env, "hello", 16);
        struct iov_http_reply r;
        vm_action(&env, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s/console?follow=1", id);
        /* Returns only once the stream ended: the VM stopped and all output was sent. */
        vm_call(&env, "GET", path, NULL, 200, &r);
        cr_expect(r.body && strstr(r.body, "hello from the guest"), "followed console: \"%s\"",
                  r.body ? r.body : "");
        harness_reply_clear(&r);
        vm_get(&env, id, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "stopped", "state after the stream ended: %s",
                         vm_str(r.json, "state"));
        harness_reply_clear(&r);
}

Test(vm_lifecycle, killed_vmm_crashes_only_its_vm)
{
        _cleanup_free_ char *a = vm_create(&env, "idle", 96);
        _cleanup_free_ char *b = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        vm_action(&env, a, "start", NULL, 200, &r);
        pid_t pid_a = vm_pid(&r);
        harness_reply_clear(&r);
        vm_action(&env, b, "start", NULL, 200, &r);
        pid_t pid_b = vm_pid(&r);
        harness_reply_clear(&r);
        cr_assert(pid_a > 0 && pid_b > 0, "pids of running VMMs: %d %d", pid_a, pid_b);
        vm_wait_console(&env, a, "idle");

        cr_assert_eq(kill(pid_a, SIGKILL), 0, "kill %d: %s", pid_a, strerror(errno));
        vm_wait_state(&env, a, "crashed", &r);
        cr_expect(strstr(vm_str(r.json, "reason"), "signal 9") != NULL, "crash reason: %s",
                  vm_str(r.json, "reason"));
        cr_expect_eq(vm_pid(&r), 0, "a crashed VM still shows pid %d", vm_pid(&r));
        harness_reply_clear(&r);

        vm_get(&env, b, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "running", "the other VM: %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        harness_reply_clear(&r);
        cr_expect_eq(kill(pid_b, 0), 0, "the other VMM %d is gone", pid_b);

        vm_action(&env, b, "kill", NULL, 200, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "stopped", "after kill: %s",
                         vm_str(r.json, "state"));
        cr_expect_str_eq(vm_str(r.json, "reason"), "killed on request", "kill reason: %s",
                         vm_str(r.json, "reason"));
        harness_reply_clear(&r);
}

Test(vm_lifecycle, vm_survives_iovd_restart)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        pid_t pid = vm_start_pid(&env, id);
        vm_wait_console(&env, id, "idle");

        int status = -1;
        cr_assert_eq(harness_stop(env.h, &status), 0, "iovd did not stop");
        cr_expect_eq(status, 0, "iovd exit status %d", status);
        harness_free(env.h);
        env.h = NULL;
        cr_assert_eq(kill(pid, 0), 0, "VMM %d did not outlive iovd", pid);
        /* Its pid file names it with its start time (proc(5) field 22), so that a pid reused
         * by another process is never taken for it. */
        _cleanup_free_ char *pid_path = util_path_join(env.run_dir, "vms", id, "vmm.pid", NULL);
        _cleanup_free_ char *pid_line = NULL, *stat = NULL;
        _cleanup_free_ char *stat_path = util_strdup_printf("/proc/%d/stat", pid);
        cr_assert_eq(util_read_line(pid_path, &pid_line), 0, "no %s", pid_path);
        cr_assert_eq(util_read_file(stat_path, 4096, &stat, NULL), 0, "no %s", stat_path);
        const char *field = strrchr(stat, ')');
        for (int i = 3; field && i <= 22; i++)
                field = strchr(field + 1, ' ');
        cr_assert_not_null(field, "cannot parse %s", stat);
        _cleanup_free_ char *want =
                util_strdup_printf("%d %llu", pid, strtoull(field + 1, NULL, 10));
        cr_expect_str_eq(pid_line, want, "vmm.pid \"%s\", want \"%s\"", pid_line, want);

        vm_env_start_iovd(&env);
        vm_get(&env, id, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "running", "after restart: %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        cr_expect_eq(vm_pid(&r), pid, "re-attached pid %d, want %d", vm_pid(&r), pid);
        /* Live figures from the re-attached VMM: its marker and its exits so far. */
        cr_expect(has_marker(r.json, 1), "no live marker 1 after re-attach: %s", r.body);
        struct json_object *stats = json_object_object_get(r.json, "stats");
        struct json_object *exits = json_object_object_get(stats, "exits");
        cr_expect(json_object_get_int64(json_object_object_get(exits, "io")) > 0,
                  "no live I/O exit count: %s", r.body);
        harness_reply_clear(&r);

        /* Still under control: pause, resume, then a stop the halted guest ignores. */
        vm_action(&env, id, "pause", NULL, 200, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "paused", "after pause: %s",
                         vm_str(r.json, "state"));
        harness_reply_clear(&r);
        vm_action(&env, id, "resume", NULL, 200, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "running", "after resume: %s",
                         vm_str(r.json, "state"));
        harness_reply_clear(&r);
        vm_action(&env, id, "stop", "{\"timeout_sec\": 1}", 200, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "stopped", "after stop: %s",
                         vm_str(r.json, "state"));
        cr_expect(strstr(vm_str(r.json, "reason"), "did not shut down") != NULL, "stop reason: %s",
                  vm_str(r.json, "reason"));
        harness_reply_clear(&r);
        cr_expect_neq(kill(pid, 0), 0, "VMM %d still runs after stop", pid);
}

/* At re-attach the VMM's own "status" (in the contract's state names) decides: a paused
 * VM comes back paused, not running. */
Test(vm_lifecycle, paused_vm_is_paused_after_iovd_restart)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        pid_t pid = vm_start_pid(&env, id);
        vm_wait_console(&env, id, "idle");
        vm_action(&env, id, "pause", NULL, 200, &r);
        harness_reply_clear(&r);

        int status = -1;
        cr_assert_eq(harness_stop(env.h, &status), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        vm_env_start_iovd(&env);
        vm_get(&env, id, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "paused", "after restart: %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        cr_expect_eq(vm_pid(&r), pid, "re-attached pid %d, want %d", vm_pid(&r), pid);
        harness_reply_clear(&r);
        vm_action(&env, id, "kill", NULL, 200, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "stopped", "after kill: %s",
                         vm_str(r.json, "state"));
        harness_reply_clear(&r);
}

Test(vm_lifecycle, vmm_gone_while_iovd_down_is_crashed)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        pid_t pid = vm_start_pid(&env, id);
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        cr_assert_eq(kill(pid, SIGKILL), 0, "kill %d: %s", pid, strerror(errno));
        util_sleep_usec(200000);

        vm_env_start_iovd(&env);
        vm_get(&env, id, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "crashed", "after restart: %s",
                         vm_str(r.json, "state"));
        cr_expect(strstr(vm_str(r.json, "reason"), "signal 9") != NULL, "reason: %s",
                  vm_str(r.json, "reason"));
        harness_reply_clear(&r);
}

/* A re-attached VMM has no report pipe to its monitor: iovd follows the monitor by a pidfd
 * instead, so a VMM killed from outside afterwards is judged from the monitor's exit file
 * (the signal), not as an end whose status is lost. */
Test(vm_lifecycle, reattached_vmm_killed_is_judged_from_its_exit_file)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        pid_t pid = vm_start_pid(&env, id);
        vm_wait_console(&env, id, "idle");
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        vm_env_start_iovd(&env);
        vm_get(&env, id, &r);
        cr_assert_eq(vm_pid(&r), pid, "re-attached pid %d, want %d", vm_pid(&r), pid);
        harness_reply_clear(&r);

        for (int i = 0; i < 5; i++) { /* the verdict never waits for a file that came */
                cr_assert_eq(kill(pid, SIGKILL), 0, "kill %d: %s", pid, strerror(errno));
                vm_wait_state(&env, id, "crashed", &r);
                cr_expect(strstr(vm_str(r.json, "reason"), "signal 9") != NULL, "crash reason: %s",
                          vm_str(r.json, "reason"));
                harness_reply_clear(&r);
                vm_action(&env, id, "start", NULL, 200, &r);
                pid = vm_pid(&r);
                harness_reply_clear(&r);
                cr_assert(pid > 0, "no pid after start %d", i);
        }
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

/* A kill answers once the kill itself is saved (vms.json's "request"), not its verdict: an
 * iovd killed at that point, before the saver wrote the verdict, still judges the end as
 * the kill's at its next start, never as a crash by signal 9. */
Test(vm_lifecycle, kill_9_after_a_kill_keeps_it_a_kill)
{
        setenv("IOVD_TEST_HOOKS", "1", 1);
        setenv("IOVD_TEST_CRASH_AT", "vm-kill-saved", 1);
        harness_free(TAKE_PTR(env.h));
        vm_env_start_iovd(&env);
        unsetenv("IOVD_TEST_CRASH_AT");
        unsetenv("IOVD_TEST_HOOKS");
        for (int i = 0; i < 3; i++) {
                _cleanup_free_ char *id = vm_create(&env, "idle", 96);
                struct iov_http_reply r;
                pid_t pid = vm_start_pid(&env, id);
                vm_wait_console(&env, id, "idle");
                _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s/kill", id);
                /* No answer: iovd is killed at the step. */
                (void)harness_request(env.h, "POST", path, NULL, &r);
                harness_reply_clear(&r);
                int status = -1;
                cr_assert_eq(harness_stop(env.h, &status), 0, "iovd did not end");
                cr_expect_eq(status, 128 + SIGKILL, "iovd was not killed at the step: %d", status);
                harness_free(TAKE_PTR(env.h));
                /* Ended, and reaped by its monitor soon after. */
                for (int w = 0; w < 200 && kill(pid, 0) == 0; w++)
                        util_sleep_usec(10000);
                cr_expect_neq(kill(pid, 0), 0, "VMM %d still there after the kill", pid);
                vm_env_start_iovd(&env);
                vm_get(&env, id, &r);
                cr_expect_str_eq(vm_str(r.json, "state"), "stopped", "after restart: %s (%s)",
                                 vm_str(r.json, "state"), vm_str(r.json, "reason"));
                cr_expect_str_eq(vm_str(r.json, "reason"), "killed on request", "reason: %s",
                                 vm_str(r.json, "reason"));
                cr_expect_null(json_object_object_get(r.json, "request"), "request shown: %s",
                               r.body);
                harness_reply_clear(&r);
                if (i < 2) { /* the next round's iovd dies at the step again */
                        harness_free(TAKE_PTR(env.h));
                        setenv("IOVD_TEST_HOOKS", "1", 1);
                        setenv("IOVD_TEST_CRASH_AT", "vm-kill-saved", 1);
                        vm_env_start_iovd(&env);
                        unsetenv("IOVD_TEST_CRASH_AT");
                        unsetenv("IOVD_TEST_HOOKS");
                }
        }
}

Test(vm_lifecycle, graceful_stop_lets_the_guest_shut_down)
{
        const char *kernel = getenv("VM_CTRLALTDEL");
        cr_assert_not_null(kernel, "VM_CTRLALTDEL is not set");
        _cleanup_free_ char *body =
                util_strdup_printf("{\"kernel\": \"%s\", \"memory_mib\": 16}", kernel);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 201, &r);
        _cleanup_free_ char *id = strdup(vm_str(r.json, "id"));
        harness_reply_clear(&r);
        vm_action(&env, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_wait_console(&env, id, "ready");

        uint64_t t0 = util_now_usec();
        vm_action(&env, id, "stop", "{\"timeout_sec\": 20}", 200, &r);
        uint64_t took = util_now_usec() - t0;
        cr_expect_str_eq(vm_str(r.json, "state"), "stopped", "after stop: %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        cr_expect(strstr(vm_str(r.json, "reason"), "i8042") != NULL,
                  "the guest's own reset should end it, reason: %s", vm_str(r.json, "reason"));
        cr_expect_lt(took, 10000000ULL, "graceful stop took %llu us", (unsigned long long)took);
        harness_reply_clear(&r);
        _cleanup_free_ char *out = vm_console(&env, id);
        cr_expect(strstr(out, "bye") != NULL, "console after stop: \"%s\"", out);
}

/* The next event of type on the stream (others skipped); fails after VM_WAIT_USEC. */
static struct json_object *next_event(int fd, const char *type)
{
        struct json_object *e = NULL;
        int r = harness_events_next_of_type(fd, type, VM_WAIT_USEC / 1000, &e);
        cr_assert_eq(r, 0, "no %s event: %s", type, strerror(-r));
        return e;
}

Test(vm_lifecycle, state_changes_are_events)
{
        int fd;
        long status;
        cr_assert_eq(harness_events_open(env.h, &fd, &status), 0, "events stream");
        cr_assert_eq(status, 200, "events status %ld", status);
        _cleanup_free_ char *id = vm_create(&env, "hello", 16);
        struct iov_http_reply r;
        vm_run_until_stopped(&env, id);
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", id);
        vm_call(&env, "DELETE", path, NULL, 200, &r);
        harness_reply_clear(&r);

        const char *types[] = {"vm_created", "vm_state_changed", "vm_state_changed", "vm_deleted"};
        const char *states[] = {"created", "running", "stopped", "stopped"};
        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
                struct json_object *e = next_event(fd, types[i]);
                struct json_object *data = json_object_object_get(e, "data");
                cr_expect_str_eq(vm_str(data, "id"), id, "%s for VM %s", types[i],
                                 vm_str(data, "id"));
                cr_expect_str_eq(vm_str(data, "state"), states[i], "%s #%zu state %s, want %s",
                                 types[i], i, vm_str(data, "state"), states[i]);
                json_object_put(e);
        }
        close(fd);
}

Test(vm_lifecycle, console_file_stays_bounded)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        vm_action(&env, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_wait_console(&env, id, "idle");

        /* 3 MiB more output, appended the way iovd-vmm writes it. */
        _cleanup_free_ char *path = util_path_join(env.run_dir, "vms", id, "console.log", NULL);
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
        char line[64];
        for (unsigned i = 0; i < 3 * 1024 * 1024 / 16; i++) {
                snprintf(line, sizeof(line), "line %09u\n", i);
                cr_assert_eq(write(fd, line, 15), 15, "write: %s", strerror(errno));
        }
        close(fd);

        struct stat st = {0};
        uint64_t deadline = util_now_usec() + 10000000;
        while (stat(path, &st) == 0 && (uint64_t)st.st_blocks * 512 > 2 * 1024 * 1024 &&
               util_now_usec() < deadline)
                util_sleep_usec(50000);
        cr_expect_leq((uint64_t)st.st_blocks * 512, 2 * 1024 * 1024,
                      "console.log still takes %llu bytes", (unsigned long long)st.st_blocks * 512);

        _cleanup_free_ char *out = vm_console(&env, id);
        snprintf(line, sizeof(line), "line %09u\n", 3 * 1024 * 1024 / 16 - 1);
        size_t len = strlen(out);
        cr_expect(len >= 15 && streq(out + len - 15, line), "console does not end with %s", line);
        cr_expect(len <= 256 * 1024, "console returned %zu bytes", len);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

/* GET path as raw HTTP/1.0 on the daemon's socket: a stream read to its end later. */
static int open_raw_get(const char *socket_path, const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s",
                     socket_path, strerror(errno));
        _cleanup_free_ char *req = util_strdup_printf("GET %s HTTP/1.0\r\n\r\n", path);
        cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req), "send: %s",
                     strerror(errno));
        return fd;
}

Test(vm_lifecycle, console_follow_ends_when_iovd_stops)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 96);
        struct iov_http_reply r;
        vm_action(&env, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_wait_console(&env, id, "idle");
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s/console?follow=1", id);
        int fd = open_raw_get(env.h->socket_path, path);
        util_sleep_usec(200000); /* the stream is open and waiting for output */

        uint64_t t0 = util_now_usec();
        int status = -1;
        cr_assert_eq(harness_stop(env.h, &status), 0, "iovd did not stop");
        uint64_t took = util_now_usec() - t0;
        cr_expect_eq(status, 0, "iovd exit status %d with a console stream open", status);
        cr_expect_lt(took, 5000000ULL, "iovd took %llu us to stop with a console stream open",
                     (unsigned long long)took);
        char buf[4096];
        size_t total = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                total += (size_t)n;
        close(fd);
        cr_expect_gt(total, 0, "the stream sent nothing before it ended");
}

Test(vm_lifecycle, stop_of_a_paused_vm_resumes_it_to_shut_down)
{
        const char *kernel = getenv("VM_CTRLALTDEL");
        cr_assert_not_null(kernel, "VM_CTRLALTDEL is not set");
        _cleanup_free_ char *body = util_strdup_printf(
                "{\"name\": \"p1\", \"kernel\": \"%s\", \"memory_mib\": 16}", kernel);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 201, &r);
        harness_reply_clear(&r);
        /* By name, as people and scripts may. */
        vm_action(&env, "p1", "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_wait_console(&env, "p1", "ready");
        vm_action(&env, "p1", "pause", NULL, 200, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "paused", "after pause: %s",
                         vm_str(r.json, "state"));
        harness_reply_clear(&r);
        vm_action(&env, "p1", "pause", NULL, 409, &r);
        cr_expect(strstr(vm_error_message(&r), "paused") != NULL, "409 message: %s",
                  vm_error_message(&r));
        harness_reply_clear(&r);

        vm_action(&env, "p1", "stop", NULL, 200, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "stopped", "after stop: %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        cr_expect(strstr(vm_str(r.json, "reason"), "i8042") != NULL, "reason: %s",
                  vm_str(r.json, "reason"));
        harness_reply_clear(&r);
}
