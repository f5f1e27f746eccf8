/* SPDX-License-Identifier: MIT */
/*
 * Run iovd-vmm on the tiny guest payloads on this machine's /dev/kvm and check what can be
 * observed from outside: serial output, exit status, the stats line (exits, devices,
 * unhandled accesses, boot markers). Skips with a reason when /dev/kvm cannot be opened.
 * The control socket, signals and the console: test-guest-control.c.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>

#include "guest-run.h"
#include "util/util.h"

/* Run the payload called name with "--kernel IMAGE" and then extra (NULL-terminated);
 * expect the exit status and exactly this serial output. */
static void run_payload(const char *name, const char *const *extra, int status, const char *output,
                        struct run_result *res)
{
        guest_skip_without_kvm();
        _cleanup_free_ char *k = guest_payload(name);
        const char *args[16] = {"--kernel", k};
        for (size_t i = 0; extra[i] && i < ARRAY_SIZE(args) - 3; i++)
                args[i + 2] = extra[i];
        guest_run_vmm(args, res);
        cr_expect_eq(res->status, status, "%s: exit status %d, stderr: %s", name, res->status,
                     res->err);
        cr_expect_str_eq(res->out, output, "%s: serial output: \"%s\"", name, res->out);
}

Test(vmm_guest, hello_prints_marks_and_resets, .timeout = 90)
{
        struct run_result res;
        run_payload("hello", (const char *[]){"--memory", "64", NULL}, 0, "hello from the guest\n",
                    &res);
        cr_expect(strstr(res.err, "guest reset through the i8042") != NULL,
                  "no reset reason in stderr: %s", res.err);
        cr_assert_not_null(res.stats, "no stats line in stderr: %s", res.err);
        guest_expect_stat(&res, "devices", "uart", 21, 21);
        guest_expect_stat(&res, "devices", "i8042", 1, 1);
        guest_expect_stat(&res, "exits", "io", 23, INT64_MAX);

        struct json_object *markers = NULL, *m0 = NULL, *v = NULL;
        json_object_object_get_ex(res.stats, "markers", &markers);
        cr_assert_eq(json_object_array_length(markers), 1u, "markers: %s",
                     json_object_to_json_string(markers));
        m0 = json_object_array_get_idx(markers, 0);
        json_object_object_get_ex(m0, "value", &v);
        cr_expect_eq(json_object_get_int(v), 1, "marker value %d", json_object_get_int(v));
        cr_expect_gt(guest_marker_usec(&res, 0), 0, "marker time %lld",
                     (long long)guest_marker_usec(&res, 0));
        json_object_put(res.stats);
}

Test(vmm_guest, zeropage_has_e820_and_cmdline, .timeout = 90)
{
        struct run_result res;
        run_payload("zeropage",
                    (const char *[]){"--memory", "128", "--cmdline",
                                     "iovtest=zeropage console=ttyS0", NULL},
                    0, "zeropage ok e820=4\n", &res);
        json_object_put(res.stats);
}

Test(vmm_guest, zeropage_detects_wrong_cmdline, .timeout = 90)
{
        struct run_result res;
        run_payload("zeropage", (const char *[]){"--memory", "64", "--cmdline", "other", NULL}, 0,
                    "zeropage bad 5\n", &res);
        json_object_put(res.stats);
}

Test(vmm_guest, unhandled_accesses_read_all_ones_and_count, .timeout = 90)
{
        struct run_result res;
        run_payload("unhandled", (const char *[]){"--memory", "64", NULL}, 0, "unhandled ok\n",
                    &res);
        static const char *const once[][2] = {
                {"unhandled", "pio_reads"},  {"unhandled", "pio_writes"},
                {"unhandled", "mmio_reads"}, {"unhandled", "mmio_writes"},
                {"devices", "pci-ecam"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(once); i++)
                guest_expect_stat(&res, once[i][0], once[i][1], 1, 1);
        guest_expect_stat(&res, "devices", "rtc", 4, 4);
        guest_expect_stat(&res, "exits", "mmio", 3, INT64_MAX);
        json_object_put(res.stats);
}

Test(vmm_guest, triple_fault_stops_with_crash_status, .timeout = 90)
{
        struct run_result res;
        run_payload("triplefault", (const char *[]){"--memory", "64", NULL}, 3,
                    "about to triple fault\n", &res);
        cr_expect(strstr(res.err, "triple fault") != NULL, "no triple fault message: %s", res.err);
        /* Where it happened: the guest's ud2 runs in 64-bit mode with an empty IDT. */
        cr_expect(strstr(res.err, "vCPU 0: rip 0x") != NULL && strstr(res.err, "64-bit)") != NULL,
                  "no register line: %s", res.err);
        cr_expect(strstr(res.err, "idt 0x0/0") != NULL, "no empty IDT in the log: %s", res.err);
        json_object_put(res.stats);
}

Test(vmm_guest, serial_file_and_32_vcpus, .timeout = 90)
{
        char path[] = "/tmp/iovd-vmm-serial-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        _cleanup_free_ char *serial = util_strdup_printf("file:%s", path);
        struct run_result res;
        run_payload("hello", (const char *[]){"--vcpus", "32", "--serial", serial, NULL}, 0, "",
                    &res);
        _cleanup_free_ char *content = NULL;
        cr_expect_eq(util_read_file(path, 4096, &content, NULL), 0);
        cr_expect_str_eq(content ? content : "", "hello from the guest\n", "serial file: \"%s\"",
                         content ? content : "(none)");
        unlink(path);
        json_object_put(res.stats);
}

Test(vmm_guest, bad_kernel_is_a_clear_error, .timeout = 30)
{
        guest_skip_without_kvm();
        char path[] = "/tmp/iovd-vmm-kernel-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, "not a kernel at all", 19), 19);
        close(fd);
        struct run_result res;
        guest_run_vmm((const char *[]){"--kernel", path, NULL}, &res);
        unlink(path);
        cr_expect_eq(res.status, 1, "exit status %d", res.status);
        cr_expect(strstr(res.err, "not a Linux kernel") != NULL, "stderr: %s", res.err);
}

Test(vmm_guest, bad_options_are_usage_errors, .timeout = 30)
{
        static const struct {
                const char *what;
                const char *args[6];
                const char *message; /* in stderr, or NULL */
        } cases[] = {
                {"bad --memory", {"--memory", "12x", "--kernel", "k"}, NULL},
                {"33 vCPUs", {"--kernel", "k", "--vcpus", "33"}, "\"vcpus\" must be 1..32"},
                {"no kernel", {NULL}, NULL},
                {"bad --serial", {"--kernel", "k", "--serial", "tcp:1"}, NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct run_result res;
                guest_run_vmm(cases[i].args, &res);
                cr_expect_eq(res.status, 2, "%s: exit status %d", cases[i].what, res.status);
                if (cases[i].message)
                        cr_expect(strstr(res.err, cases[i].message) != NULL, "%s: stderr: %s",
                                  cases[i].what, res.err);
        }
}

Test(vmm_guest, config_file_is_the_api_json, .timeout = 90)
{
        guest_skip_without_kvm();
        _cleanup_free_ char *k = guest_payload("zeropage");
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
        guest_run_vmm((const char *[]){"--config", path, NULL}, &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect_str_eq(res.out, "zeropage ok e820=4\n", "serial output: \"%s\"", res.out);
        json_object_put(res.stats);
        /* The command line overrides the file. */
        guest_run_vmm((const char *[]){"--config", path, "--cmdline", "other", NULL}, &res);
        cr_expect_str_eq(res.out, "zeropage bad 5\n", "override: \"%s\"", res.out);
        json_object_put(res.stats);

        fd = open(path, O_WRONLY | O_TRUNC);
        cr_assert_eq(write(fd, "{\"kernel\":\"x\",\"gpus\":1}", 23), 23);
        close(fd);
        guest_run_vmm((const char *[]){"--config", path, NULL}, &res);
        cr_expect_eq(res.status, 2, "unknown field: exit status %d", res.status);
        cr_expect(strstr(res.err, "unknown field \"gpus\"") != NULL, "stderr: %s", res.err);
        unlink(path);
}

/* --config goes through the parser of POST /v1/vms: a device no model of iovd-vmm serves is
 * refused before anything is built (no /dev/kvm needed), not silently left out. */
Test(vmm_guest, config_refuses_unknown_device_types, .timeout = 30)
{
        char path[] = "/tmp/iovd-vmm-config-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        static const char json[] = "{\"kernel\":\"/nonexistent/bzImage\",\"devices\":"
                                   "[{\"type\":\"virtio-rng\"},{\"type\":\"vfio-pci\"}]}";
        cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
        close(fd);
        struct run_result res;
        guest_run_vmm((const char *[]){"--config", path, NULL}, &res);
        unlink(path);
        cr_expect_eq(res.status, 2, "vfio-pci device: exit status %d, stderr: %s", res.status,
                     res.err);
        cr_expect(strstr(res.err, "\"devices\"[1]: unknown device type \"vfio-pci\"") != NULL,
                  "stderr: %s", res.err);
        cr_expect_null(res.stats, "a refused configuration printed stats");
        json_object_put(res.stats);
}

Test(vmm_guest, guest_poking_every_port_and_the_mmio_hole_cannot_hurt_the_vmm, .timeout = 120)
{
        guest_skip_without_kvm();
        _cleanup_free_ char *k = guest_payload("chaos");
        struct run_result res;
        guest_run_vmm((const char *[]){"--kernel", k, "--memory", "64", NULL}, &res);
        cr_expect_eq(res.status, 0, "exit status %d, stderr: %s", res.status, res.err);
        cr_expect(res.out_len >= 10 && streq(res.out + res.out_len - 10, "\nsurvived\n"),
                  "output does not end with survived: %zu bytes", res.out_len);
        guest_expect_stat(&res, "unhandled", "pio_reads", 60001, INT64_MAX);
        /* 1024 MiB steps minus ECAM's 256 and the local APIC / IOAPIC pages KVM handles. */
        guest_expect_stat(&res, "unhandled", "mmio_writes", 701, INT64_MAX);
        json_object_put(res.stats);
}

/* hello writes marker 1 and resets at once: the stop must wake the main thread then, not
 * at its next timeout (it used to wait in 200 ms steps: about 190 ms for this payload). */
Test(vmm_guest, reset_ends_the_process_within_milliseconds, .timeout = 90)
{
        guest_skip_without_kvm();
        _cleanup_free_ char *k = guest_payload("hello");
        char dir[] = "/tmp/iovd-vmm-ctl-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *sock = util_strdup_printf("%s/control", dir);
        const char *const variants[][8] = {
                {"--kernel", k, "--memory", "64", NULL},
                {"--kernel", k, "--memory", "64", "--control-socket", sock, NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(variants); i++) {
                struct run_result res;
                guest_run_vmm(variants[i], &res);
                cr_expect_eq(res.status, 0, "variant %zu: exit status %d", i, res.status);
                int64_t uptime = guest_stat(&res, "uptime_usec", NULL);
                int64_t reset = guest_marker_usec(&res, 0);
                cr_assert(uptime > 0 && reset > 0, "variant %zu: uptime %lld, marker %lld: %s", i,
                          (long long)uptime, (long long)reset, res.err);
                cr_expect_lt(uptime - reset, 100000, "variant %zu: %lld usec from reset to stop", i,
                             (long long)(uptime - reset));
                json_object_put(res.stats);
        }
        unlink(sock);
        rmdir(dir);
}
