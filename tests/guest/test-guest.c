/* SPDX-License-Identifier: MIT */
/*
 * Run iovd-vmm on the tiny guest payloads on this machine's /dev/kvm and check what can be
 * observed from outside: serial output, exit status, the stats line (exits, devices,
 * unhandled accesses, boot markers). Skips with a reason when /dev/kvm cannot be opened.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "util/util.h"

#define RUN_TIMEOUT_USEC (60ULL * 1000000)

struct run_result {
        int status; /* exit status, or 128 + signal */
        char out[8192];
        char err[8192];
        size_t out_len, err_len;
        struct json_object *stats;
};

static void skip_without_kvm(void)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                cr_skip_test("/dev/kvm cannot be opened (%s): no KVM on this machine",
                             strerror(errno));
        close(fd);
}

static void drain(int fd, char *buf, size_t *len, size_t size, bool *open_)
{
        ssize_t n = read(fd, buf + *len, size - 1 - *len);
        if (n <= 0) {
                *open_ = false;
                return;
        }
        *len += (size_t)n;
        buf[*len] = '\0';
}

static void parse_stats(struct run_result *res)
{
        const char *p = strstr(res->err, "iovd-vmm: stats ");
        if (!p)
                return;
        p += strlen("iovd-vmm: stats ");
        const char *end = strchr(p, '\n');
        _cleanup_free_ char *line = strndup(p, end ? (size_t)(end - p) : strlen(p));
        res->stats = json_tokener_parse(line);
}

/* Run iovd-vmm with argv (NULL-terminated, without the program name). */
static void run_vmm(const char *const *args, struct run_result *res)
{
        memset(res, 0, sizeof(*res));
        const char *vmm = getenv("IOVD_VMM");
        cr_assert_not_null(vmm, "IOVD_VMM is not set (run through meson test)");
        int out[2], err[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(err, O_CLOEXEC), 0);

        const char *argv[32] = {vmm};
        for (size_t i = 0; args[i] && i < 30; i++)
                argv[i + 1] = args[i];
        pid_t pid = fork();
        cr_assert_geq(pid, 0, "fork failed");
        if (pid == 0) {
                /* As under systemd: no TZ, so libc would read /etc/localtime lazily, which
                 * the sandbox must not need. */
                unsetenv("TZ");
                int null = open("/dev/null", O_RDONLY);
                dup2(null, 0);
                dup2(out[1], 1);
                dup2(err[1], 2);
                execv(vmm, (char *const *)argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);

        bool out_open = true, err_open = true;
        uint64_t deadline = util_now_usec() + RUN_TIMEOUT_USEC;
        while ((out_open || err_open) && util_now_usec() < deadline) {
                struct pollfd p[2] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                                      {.fd = err_open ? err[0] : -1, .events = POLLIN}};
                if (poll(p, 2, 500) <= 0)
                        continue;
                if (p[0].revents)
                        drain(out[0], res->out, &res->out_len, sizeof(res->out), &out_open);
                if (p[1].revents)
                        drain(err[0], res->err, &res->err_len, sizeof(res->err), &err_open);
        }
        if (out_open || err_open)
                kill(pid, SIGKILL);
        int wstatus;
        waitpid(pid, &wstatus, 0);
        close(out[0]);
        close(err[0]);
        res->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        parse_stats(res);
}

static char *payload(const char *name)
{
        const char *dir = getenv("GUEST_DIR");
        cr_assert_not_null(dir, "GUEST_DIR is not set (run through meson test)");
        return util_strdup_printf("%s/%s.bzImage", dir, name);
}

/* stats[group][key], or stats[group] when key is NULL; -1 when missing. */
static int64_t stats_get(struct run_result *res, const char *group, const char *key)
{
        struct json_object *g, *v;
        if (!res->stats || !json_object_object_get_ex(res->stats, group, &g))
                return -1;
        if (!key)
                return json_object_get_int64(g);
        if (!json_object_object_get_ex(g, key, &v))
                return -1;
        return json_object_get_int64(v);
}

Test(vmm_guest, hello_prints_marks_and_resets, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("hello");
        struct run_result res;
        run_vmm((const char *[]){"--kernel", k, "--memory", "64", NULL}, &res);

        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_eq(res.out, "hello from the guest\n", "serial output: \"%s\"", res.out);
        cr_expect(strstr(res.err, "guest reset through the i8042") != NULL,
                  "no reset reason in stderr: %s", res.err);
        cr_assert_not_null(res.stats, "no stats line in stderr: %s", res.err);
        cr_expect_eq(stats_get(&res, "devices", "uart"), 21, "uart accesses %lld",
                     (long long)stats_get(&res, "devices", "uart"));
        cr_expect_eq(stats_get(&res, "devices", "i8042"), 1, "i8042 accesses %lld",
                     (long long)stats_get(&res, "devices", "i8042"));
        cr_expect_geq(stats_get(&res, "exits", "io"), 23, "io exits %lld",
                      (long long)stats_get(&res, "exits", "io"));

        struct json_object *markers = NULL, *m0 = NULL, *v = NULL;
        json_object_object_get_ex(res.stats, "markers", &markers);
        cr_assert_eq(json_object_array_length(markers), 1u, "markers: %s",
                     json_object_to_json_string(markers));
        m0 = json_object_array_get_idx(markers, 0);
        json_object_object_get_ex(m0, "value", &v);
        cr_expect_eq(json_object_get_int(v), 1, "marker value %d", json_object_get_int(v));
        json_object_object_get_ex(m0, "usec", &v);
        cr_expect_gt(json_object_get_int64(v), 0, "marker time %lld",
                     (long long)json_object_get_int64(v));
        json_object_put(res.stats);
}

Test(vmm_guest, zeropage_has_e820_and_cmdline, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("zeropage");
        struct run_result res;
        run_vmm((const char *[]){"--kernel", k, "--memory", "128", "--cmdline",
                                 "iovtest=zeropage console=ttyS0", NULL},
                &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_eq(res.out, "zeropage ok e820=3\n", "serial output: \"%s\"", res.out);
        json_object_put(res.stats);
}

Test(vmm_guest, zeropage_detects_wrong_cmdline, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("zeropage");
        struct run_result res;
        run_vmm((const char *[]){"--kernel", k, "--memory", "64", "--cmdline", "other", NULL},
                &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_eq(res.out, "zeropage bad 5\n", "serial output: \"%s\"", res.out);
        json_object_put(res.stats);
}

Test(vmm_guest, unhandled_accesses_read_all_ones_and_count, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("unhandled");
        struct run_result res;
        run_vmm((const char *[]){"--kernel", k, "--memory", "64", NULL}, &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_eq(res.out, "unhandled ok\n", "serial output: \"%s\"", res.out);
        cr_expect_eq(stats_get(&res, "unhandled", "pio_reads"), 1, "pio_reads %lld",
                     (long long)stats_get(&res, "unhandled", "pio_reads"));
        cr_expect_eq(stats_get(&res, "unhandled", "pio_writes"), 1, "pio_writes %lld",
                     (long long)stats_get(&res, "unhandled", "pio_writes"));
        cr_expect_eq(stats_get(&res, "unhandled", "mmio_reads"), 1, "mmio_reads %lld",
                     (long long)stats_get(&res, "unhandled", "mmio_reads"));
        cr_expect_eq(stats_get(&res, "unhandled", "mmio_writes"), 1, "mmio_writes %lld",
                     (long long)stats_get(&res, "unhandled", "mmio_writes"));
        cr_expect_eq(stats_get(&res, "devices", "pci-ecam"), 1, "pci-ecam %lld",
                     (long long)stats_get(&res, "devices", "pci-ecam"));
        cr_expect_eq(stats_get(&res, "devices", "rtc"), 4, "rtc %lld",
                     (long long)stats_get(&res, "devices", "rtc"));
        cr_expect_geq(stats_get(&res, "exits", "mmio"), 3, "mmio exits %lld",
                      (long long)stats_get(&res, "exits", "mmio"));
        json_object_put(res.stats);
}

Test(vmm_guest, triple_fault_stops_with_crash_status, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("triplefault");
        struct run_result res;
        run_vmm((const char *[]){"--kernel", k, "--memory", "64", NULL}, &res);
        cr_expect_eq(res.status, 3, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_eq(res.out, "about to triple fault\n", "serial output: \"%s\"", res.out);
        cr_expect(strstr(res.err, "triple fault") != NULL, "no triple fault message: %s", res.err);
        json_object_put(res.stats);
}

Test(vmm_guest, serial_file_and_32_vcpus, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("hello");
        char path[] = "/tmp/iovd-vmm-serial-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        _cleanup_free_ char *serial = util_strdup_printf("file:%s", path);
        struct run_result res;
        run_vmm((const char *[]){"--kernel", k, "--vcpus", "32", "--serial", serial, NULL}, &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_empty(res.out, "stdout should be empty: \"%s\"", res.out);
        _cleanup_free_ char *content = NULL;
        cr_expect_eq(util_read_file(path, 4096, &content, NULL), 0);
        cr_expect_str_eq(content ? content : "", "hello from the guest\n", "serial file: \"%s\"",
                         content ? content : "(none)");
        unlink(path);
        json_object_put(res.stats);
}

Test(vmm_guest, bad_kernel_is_a_clear_error, .timeout = 30)
{
        skip_without_kvm();
        char path[] = "/tmp/iovd-vmm-kernel-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, "not a kernel at all", 19), 19);
        close(fd);
        struct run_result res;
        run_vmm((const char *[]){"--kernel", path, NULL}, &res);
        unlink(path);
        cr_expect_eq(res.status, 1, "exit status %d", res.status);
        cr_expect(strstr(res.err, "not a Linux kernel") != NULL, "stderr: %s", res.err);
}

Test(vmm_guest, bad_options_are_usage_errors, .timeout = 30)
{
        struct run_result res;
        run_vmm((const char *[]){"--memory", "12x", "--kernel", "k", NULL}, &res);
        cr_expect_eq(res.status, 2, "bad --memory: exit status %d", res.status);
        run_vmm((const char *[]){"--kernel", "k", "--vcpus", "33", NULL}, &res);
        cr_expect_eq(res.status, 2, "33 vCPUs: exit status %d", res.status);
        cr_expect(strstr(res.err, "vcpus must be 1..32") != NULL, "stderr: %s", res.err);
        run_vmm((const char *[]){NULL}, &res);
        cr_expect_eq(res.status, 2, "no kernel: exit status %d", res.status);
        run_vmm((const char *[]){"--kernel", "k", "--serial", "tcp:1", NULL}, &res);
        cr_expect_eq(res.status, 2, "bad --serial: exit status %d", res.status);
}

/* Send one command line on a connected control socket (none when command is NULL) and
 * parse the next reply line. */
static struct json_object *control(int fd, const char *command)
{
        if (command) {
                char line[256];
                snprintf(line, sizeof(line), "%s\n", command);
                cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
        }
        static char buf[8192];
        size_t len = 0;
        while (len < sizeof(buf) - 1) {
                ssize_t n = read(fd, buf + len, 1);
                cr_assert_gt(n, 0, "control socket closed after \"%s\"", command ? command : "");
                if (buf[len] == '\n')
                        break;
                len++;
        }
        buf[len] = '\0';
        struct json_object *o = json_tokener_parse(buf);
        cr_assert_not_null(o, "reply to \"%s\" is not JSON: %s", command ? command : "", buf);
        return o;
}

static const char *field(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "(none)";
}

static const char *error_code(struct json_object *o)
{
        struct json_object *e;
        return json_object_object_get_ex(o, "error", &e) ? field(e, "code") : "(none)";
}

Test(vmm_guest, control_socket_drives_the_vm, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("idle");
        char dir[] = "/tmp/iovd-vmm-ctl-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *sock = util_strdup_printf("%s/control", dir);
        int out[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(out[1], 1);
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(null, 2);
                const char *vmm = getenv("IOVD_VMM");
                execl(vmm, vmm, "--kernel", k, "--memory", "128", "--control-socket", sock,
                      (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        char line[16] = "";
        size_t len = 0;
        while (len < sizeof(line) - 1 && read(out[0], line + len, 1) == 1 && line[len] != '\n')
                len++;
        line[len] = '\0';
        cr_assert_str_eq(line, "idle", "payload output \"%s\"", line);

        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s", sock);

        struct json_object *o = control(fd, "status");
        cr_expect_str_eq(field(o, "state"), "running");
        json_object_put(o);
        o = control(fd, "stats");
        struct json_object *markers = NULL;
        json_object_object_get_ex(o, "markers", &markers);
        cr_expect_eq(json_object_array_length(markers), 1u, "markers %s",
                     json_object_to_json_string(markers));
        cr_expect_gt(atoll(field(o, "rss_guest_kib")), 60000, "guest RSS %s KiB",
                     field(o, "rss_guest_kib"));
        json_object_put(o);
        o = control(fd, "pause");
        cr_expect_str_eq(field(o, "ok"), "true", "pause: %s", json_object_to_json_string(o));
        json_object_put(o);
        o = control(fd, "status");
        cr_expect_str_eq(field(o, "state"), "paused");
        json_object_put(o);
        o = control(fd, "pause");
        cr_expect_str_eq(error_code(o), "wrong_state", "second pause: %s",
                         json_object_to_json_string(o));
        json_object_put(o);
        o = control(fd, "resume");
        cr_expect_str_eq(field(o, "ok"), "true");
        json_object_put(o);
        o = control(fd, "launch missiles");
        cr_expect_str_eq(error_code(o), "unknown_command");
        json_object_put(o);
        o = control(fd, "input hello");
        cr_expect_str_eq(field(o, "ok"), "true");
        json_object_put(o);
        o = control(fd, "kill");
        cr_expect_str_eq(field(o, "ok"), "true");
        json_object_put(o);
        close(fd);

        int wstatus;
        cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "exit status 0x%x", wstatus);
        close(out[0]);
        unlink(sock);
        rmdir(dir);
}

Test(vmm_guest, config_file_is_the_api_json, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("zeropage");
        char path[] = "/tmp/iovd-vmm-config-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        _cleanup_free_ char *json = util_strdup_printf(
                "{\"name\":\"t\",\"vcpus\":2,\"memory_mib\":64,\"kernel\":\"%s\","
                "\"cmdline\":\"iovtest=zeropage\",\"devices\":[]}",
                k);
        cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
        close(fd);
        struct run_result res;
        run_vmm((const char *[]){"--config", path, NULL}, &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_eq(res.out, "zeropage ok e820=3\n", "serial output: \"%s\"", res.out);
        json_object_put(res.stats);
        /* The command line overrides the file. */
        run_vmm((const char *[]){"--config", path, "--cmdline", "other", NULL}, &res);
        cr_expect_str_eq(res.out, "zeropage bad 5\n", "override: \"%s\"", res.out);
        json_object_put(res.stats);

        fd = open(path, O_WRONLY | O_TRUNC);
        cr_assert_eq(write(fd, "{\"kernel\":\"x\",\"gpus\":1}", 23), 23);
        close(fd);
        run_vmm((const char *[]){"--config", path, NULL}, &res);
        cr_expect_eq(res.status, 2, "unknown field: exit status %d", res.status);
        cr_expect(strstr(res.err, "unknown field \"gpus\"") != NULL, "stderr: %s", res.err);
        unlink(path);
}

Test(vmm_guest, sigterm_stops_cleanly_with_stats, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("idle");
        int out[2], err[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(out[1], 1);
                dup2(err[1], 2);
                const char *vmm = getenv("IOVD_VMM");
                execl(vmm, vmm, "--kernel", k, "--memory", "128", (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        char line[16] = "";
        size_t len = 0;
        while (len < sizeof(line) - 1 && read(out[0], line + len, 1) == 1 && line[len] != '\n')
                len++;
        line[len] = '\0';
        cr_assert_str_eq(line, "idle", "payload output \"%s\"", line);
        kill(pid, SIGTERM);
        int wstatus;
        cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "exit status 0x%x", wstatus);
        static char errbuf[8192];
        ssize_t n = read(err[0], errbuf, sizeof(errbuf) - 1);
        errbuf[n > 0 ? n : 0] = '\0';
        cr_expect(strstr(errbuf, "stopped by signal") != NULL, "stderr: %s", errbuf);
        cr_expect(strstr(errbuf, "iovd-vmm: stats {") != NULL, "no stats: %s", errbuf);
        close(out[0]);
        close(err[0]);
}

Test(vmm_guest, guest_poking_every_port_and_the_mmio_hole_cannot_hurt_the_vmm, .timeout = 120)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("chaos");
        struct run_result res;
        run_vmm((const char *[]){"--kernel", k, "--memory", "64", NULL}, &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect(res.out_len >= 10 && streq(res.out + res.out_len - 10, "\nsurvived\n"),
                  "output does not end with survived: %zu bytes", res.out_len);
        cr_expect_gt(stats_get(&res, "unhandled", "pio_reads"), 60000, "pio_reads %lld",
                     (long long)stats_get(&res, "unhandled", "pio_reads"));
        /* 1024 MiB steps minus ECAM's 256 and the local APIC / IOAPIC pages KVM handles. */
        cr_expect_gt(stats_get(&res, "unhandled", "mmio_writes"), 700, "mmio_writes %lld",
                     (long long)stats_get(&res, "unhandled", "mmio_writes"));
        json_object_put(res.stats);
}

Test(vmm_guest, console_reader_gone_does_not_kill_the_vm, .timeout = 60)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("hello");
        int out[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        close(out[0]); /* nobody reads the console */
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(out[1], 1);
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(null, 2);
                const char *vmm = getenv("IOVD_VMM");
                execl(vmm, vmm, "--kernel", k, "--memory", "64", (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        int wstatus;
        cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
                  "exit status 0x%x (SIGPIPE is 13)", wstatus);
}

static int64_t marker_usec(struct run_result *res, unsigned index)
{
        struct json_object *markers = NULL, *m, *v;
        if (!res->stats || !json_object_object_get_ex(res->stats, "markers", &markers) ||
            !(m = json_object_array_get_idx(markers, index)) ||
            !json_object_object_get_ex(m, "usec", &v))
                return -1;
        return json_object_get_int64(v);
}

/* hello writes marker 1 and resets at once: the stop must wake the main thread then, not
 * at its next timeout (it used to wait in 200 ms steps: about 190 ms for this payload). */
Test(vmm_guest, reset_ends_the_process_within_milliseconds, .timeout = 90)
{
        skip_without_kvm();
        _cleanup_free_ char *k = payload("hello");
        char dir[] = "/tmp/iovd-vmm-ctl-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *sock = util_strdup_printf("%s/control", dir);
        const char *const variants[][8] = {
                {"--kernel", k, "--memory", "64", NULL},
                {"--kernel", k, "--memory", "64", "--control-socket", sock, NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(variants); i++) {
                struct run_result res;
                run_vmm(variants[i], &res);
                cr_expect_eq(res.status, 0, "variant %zu: exit status %d", i, res.status);
                int64_t uptime = stats_get(&res, "uptime_usec", NULL);
                int64_t reset = marker_usec(&res, 0);
                cr_assert(uptime > 0 && reset > 0, "variant %zu: uptime %lld, marker %lld: %s", i,
                          (long long)uptime, (long long)reset, res.err);
                cr_expect_lt(uptime - reset, 100000, "variant %zu: %lld usec from reset to stop", i,
                             (long long)(uptime - reset));
                json_object_put(res.stats);
        }
        unlink(sock);
        rmdir(dir);
}

/* iovd-vmm on the idle payload (it prints "idle" and waits), with a control socket in a
 * fresh directory; stderr to err_fd (or /dev/null when -1). */
struct idle_vmm {
        pid_t pid;
        int out;
        char dir[32];
        char *sock;
};

static void idle_vmm_start(struct idle_vmm *v, int err_fd)
{
        _cleanup_free_ char *k = payload("idle");
        snprintf(v->dir, sizeof(v->dir), "/tmp/iovd-vmm-ctl-XXXXXX");
        cr_assert_not_null(mkdtemp(v->dir));
        v->sock = util_strdup_printf("%s/control", v->dir);
        int out[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        v->pid = fork();
        cr_assert_geq(v->pid, 0);
        if (v->pid == 0) {
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(out[1], 1);
                dup2(err_fd >= 0 ? err_fd : null, 2);
                const char *vmm = getenv("IOVD_VMM");
                execl(vmm, vmm, "--kernel", k, "--memory", "128", "--control-socket", v->sock,
                      (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        v->out = out[0];
        char line[16] = "";
        size_t len = 0;
        while (len < sizeof(line) - 1 && read(v->out, line + len, 1) == 1 && line[len] != '\n')
                len++;
        line[len] = '\0';
        cr_assert_str_eq(line, "idle", "payload output \"%s\"", line);
}

/* Wait for the VMM to end; returns its wait status. */
static int idle_vmm_wait(struct idle_vmm *v)
{
        int wstatus;
        cr_assert_eq(waitpid(v->pid, &wstatus, 0), v->pid);
        close(v->out);
        unlink(v->sock);
        rmdir(v->dir);
        free(v->sock);
        return wstatus;
}

static int control_connect(const char *sock)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", sock,
                     strerror(errno));
        return fd;
}

/* Between the stop and the exit, the control socket answers what was sent ("status" says
 * "stopped" and why) and then closes: nothing waits on a socket that will not answer. */
Test(vmm_guest, control_socket_answers_then_closes_when_the_vm_stops, .timeout = 90)
{
        skip_without_kvm();
        struct idle_vmm v;
        idle_vmm_start(&v, -1);
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
        int wstatus = idle_vmm_wait(&v);
        cr_expect(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "exit status 0x%x", wstatus);
}
