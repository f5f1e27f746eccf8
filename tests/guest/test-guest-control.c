/* SPDX-License-Identifier: MIT */
/*
 * iovd-vmm driven from outside while the guest runs: the control socket, the stop
 * signals, a console reader that goes away. Skips with a reason without /dev/kvm.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "guest-run.h"
#include "util/util.h"
#include "vmm/contract/vm-contract.h"

static void expect_exit_zero(int wstatus, const char *what)
{
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "%s: exit status 0x%x", what,
                  wstatus);
}

Test(vmm_guest, control_socket_drives_the_vm, .timeout = 90)
{
        guest_skip_without_kvm();
        struct idle_vmm v;
        idle_vmm_start(&v, true, -1);
        int fd = control_connect(v.sock);

        struct json_object *o = control(fd, "status");
        cr_expect_str_eq(field(o, "state"), "running", "status: %s", json_object_to_json_string(o));
        json_object_put(o);
        o = control(fd, "stats");
        struct json_object *markers = NULL;
        json_object_object_get_ex(o, "markers", &markers);
        cr_expect_eq(json_object_array_length(markers), 1u, "markers %s",
                     json_object_to_json_string(markers));
        cr_expect_gt(atoll(field(o, "rss_guest_kib")), 60000, "guest RSS %s KiB",
                     field(o, "rss_guest_kib"));
        json_object_put(o);

        /* Each command, the member its reply must have ("error": the error code), and its
         * value. */
        static const struct {
                const char *command, *key, *value;
        } steps[] = {
                {"pause", "ok", "true"},
                {"status", "state", "paused"},
                {"pause", "error", "wrong_state"},
                {"resume", "ok", "true"},
                {"launch missiles", "error", "unknown_command"},
                {"input hello", "ok", "true"},
                {"kill", "ok", "true"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
                o = control(fd, steps[i].command);
                const char *got =
                        streq(steps[i].key, "error") ? error_code(o) : field(o, steps[i].key);
                cr_expect_str_eq(got, steps[i].value, "step %zu \"%s\": %s", i, steps[i].command,
                                 json_object_to_json_string(o));
                json_object_put(o);
        }
        close(fd);
        expect_exit_zero(idle_vmm_wait(&v), "after kill");
}

/* Between the stop and the exit, the control socket answers what was sent ("status" says
 * "stopped" and why) and then closes: nothing waits on a socket that will not answer. */
Test(vmm_guest, control_socket_answers_then_closes_when_the_vm_stops, .timeout = 90)
{
        guest_skip_without_kvm();
        struct idle_vmm v;
        idle_vmm_start(&v, true, -1);
        int fd = control_connect(v.sock);
        const char both[] = "kill\nstatus\n";
        cr_assert_eq(write(fd, both, strlen(both)), (ssize_t)strlen(both));
        struct json_object *o = control(fd, NULL);
        cr_expect_str_eq(field(o, "ok"), "true", "kill: %s", json_object_to_json_string(o));
        json_object_put(o);
        o = control(fd, NULL);
        cr_expect_str_eq(field(o, "state"), "stopped", "status after kill: %s",
                         json_object_to_json_string(o));
        cr_expect_str_eq(field(o, "reason"), "killed through the control socket",
                         "status after kill: %s", json_object_to_json_string(o));
        json_object_put(o);

        uint64_t start = util_now_usec();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;
        cr_expect_eq(poll(&p, 1, 2000), 1, "no end of the connection within 2 s");
        cr_expect_leq(read(fd, &c, 1), 0, "data after the last reply");
        uint64_t waited = util_now_usec() - start;
        cr_expect_lt(waited, 150000, "the connection closed %llu usec after the kill",
                     (unsigned long long)waited);
        close(fd);
        expect_exit_zero(idle_vmm_wait(&v), "after kill");
}

Test(vmm_guest, sigterm_stops_cleanly_with_stats, .timeout = 90)
{
        guest_skip_without_kvm();
        int err[2];
        cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
        struct idle_vmm v;
        idle_vmm_start(&v, false, err[1]);
        close(err[1]);
        kill(v.pid, SIGTERM);
        expect_exit_zero(idle_vmm_wait(&v), "after SIGTERM");
        static char errbuf[8192];
        ssize_t n = read(err[0], errbuf, sizeof(errbuf) - 1);
        errbuf[n > 0 ? n : 0] = '\0';
        cr_expect(strstr(errbuf, "stopped by signal") != NULL, "stderr: %s", errbuf);
        struct json_object *stats = NULL;
        cr_expect_eq(vm_stats_line_find(errbuf, &stats), 0, "no stats: %s", errbuf);
        json_object_put(stats);
        close(err[0]);
}

Test(vmm_guest, console_reader_gone_does_not_kill_the_vm, .timeout = 60)
{
        guest_skip_without_kvm();
        _cleanup_free_ char *k = guest_payload("hello");
        int out[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        close(out[0]); /* nobody reads the console */
        pid_t pid = guest_spawn_vmm((const char *[]){"--kernel", k, "--memory", "64", NULL}, -1,
                                    out[1], -1);
        close(out[1]);
        int wstatus = guest_wait(pid);
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
                  "exit status 0x%x (SIGPIPE is 13)", wstatus);
}

/* The console input thread (serial stdio) waits for stdin and for the stop together: a
 * stdin that stays open and silent must not hold up the exit, nor one that keeps
 * sending while the VM stops. */
Test(vmm_guest, open_stdin_does_not_hold_up_the_stop, .timeout = 60)
{
        guest_skip_without_kvm();
        _cleanup_free_ char *k = guest_payload("idle");
        for (int busy = 0; busy <= 1; busy++) {
                int in[2], out[2];
                cr_assert_eq(pipe2(in, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
                cr_assert_eq(pipe2(out, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
                pid_t pid =
                        guest_spawn_vmm((const char *[]){"--kernel", k, "--memory", "128", NULL},
                                        in[0], out[1], -1);
                close(in[0]);
                close(out[1]);
                char line[16];
                guest_read_line(out[0], line, sizeof(line));
                cr_assert_str_eq(line, "idle", "payload output \"%s\"", line);
                /* Busy: more than the UART takes, so the thread is inside its retry loop. */
                static char input[8192];
                memset(input, 'x', sizeof(input));
                if (busy)
                        cr_assert_eq(write(in[1], input, sizeof(input)), (ssize_t)sizeof(input));
                uint64_t start = util_now_usec();
                kill(pid, SIGTERM);
                int wstatus = guest_wait(pid);
                uint64_t waited = util_now_usec() - start;
                expect_exit_zero(wstatus, busy ? "busy stdin" : "silent stdin");
                cr_expect_lt(waited, 2000000, "%s stdin: %llu usec from SIGTERM to exit",
                             busy ? "busy" : "silent", (unsigned long long)waited);
                close(in[1]);
                close(out[0]);
        }
}

/* IOVD_TRACE=1: "stats" lists the start-up steps, each stamped once, in the order they
 * happen (CLOCK_MONOTONIC and CPU time never go back; "jail" too, at once without
 * --jail), the guest's marker last; without it, no "trace" (vmm/trace.c). */
Test(vmm_guest, trace_lists_the_start_up_steps_in_order, .timeout = 90)
{
        static const char *const steps[] = {"exec",      "jail",    "kvm_open",  "memory",
                                            "vm_create", "devices", "boot_load", "vcpus",
                                            "sandbox",   "running", "marker"};
        guest_skip_without_kvm();
        cr_assert_eq(setenv("IOVD_TRACE", "1", 1), 0);
        struct idle_vmm v;
        idle_vmm_start(&v, true, -1);
        int fd = control_connect(v.sock);
        struct json_object *o = control(fd, "stats"), *trace = NULL;
        cr_assert(json_object_object_get_ex(o, "trace", &trace), "no trace: %s",
                  json_object_to_json_string(o));
        int64_t last_usec = 0, last_cpu = 0;
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
                struct json_object *p = json_object_object_get(trace, steps[i]);
                cr_assert_eq(json_object_array_length(p), 2u, "%s: %s", steps[i],
                             json_object_to_json_string(trace));
                int64_t usec = json_object_get_int64(json_object_array_get_idx(p, 0));
                int64_t cpu = json_object_get_int64(json_object_array_get_idx(p, 1));
                cr_expect(usec >= last_usec && cpu >= last_cpu, "%s at %lld (CPU %lld) before %lld",
                          steps[i], (long long)usec, (long long)cpu, (long long)last_usec);
                last_usec = usec;
                last_cpu = cpu;
        }
        json_object_put(o);
        unsetenv("IOVD_TRACE");
        close(fd);
        kill(v.pid, SIGTERM);
        expect_exit_zero(idle_vmm_wait(&v), "after SIGTERM");
}

Test(vmm_guest, no_trace_without_iovd_trace, .timeout = 90)
{
        guest_skip_without_kvm();
        unsetenv("IOVD_TRACE");
        struct idle_vmm v;
        idle_vmm_start(&v, true, -1);
        int fd = control_connect(v.sock);
        struct json_object *o = control(fd, "stats");
        cr_expect_null(json_object_object_get(o, "trace"), "trace without IOVD_TRACE: %s",
                       json_object_to_json_string(o));
        json_object_put(o);
        close(fd);
        kill(v.pid, SIGTERM);
        expect_exit_zero(idle_vmm_wait(&v), "after SIGTERM");
}
