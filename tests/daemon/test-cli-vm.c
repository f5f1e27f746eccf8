/* SPDX-License-Identifier: MIT */
/*
 * iovctl vm ... against the real iovd and iovd-vmm on /dev/kvm with the tiny guest
 * payloads of tests/guest: create (relative kernel path made absolute), list, show, start,
 * console (plain and --follow), pause/resume, stop --timeout, kill, delete, and the exit
 * status of wrong-state requests. Skips with a reason where /dev/kvm cannot be opened.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "test-cli-common.h"
#include "test-vm-common.h"

VM_TEST_SUITE(cli_vm, true, .timeout = 120);

#define ctl(c, ...)         ctl_run(c, env.h->socket_path, env.dir, NULL, __VA_ARGS__)
#define ctl_in(c, cwd, ...) ctl_run(c, env.h->socket_path, env.dir, cwd, __VA_ARGS__)

/* `vm create` with --json; returns the new VM's id (caller frees). */
static char *cli_vm_create(const char *payload, const char *memory)
{
        _cleanup_free_ char *file = util_strdup_printf("%s.bzImage", payload);
        struct ctl c = {0};
        /* Run in the guest dir with a relative path: iovctl must send it absolute. */
        ctl_in(&c, getenv("GUEST_DIR"), "vm", "create", payload, "--kernel", file, "--memory",
               memory, "--cmdline", "console=ttyS0", "--json", NULL);
        cr_assert_eq(c.status, 0, "vm create %s: exit %d, stderr %s", payload, c.status, c.err);
        struct json_object *vm = json_tokener_parse(c.out);
        cr_assert_not_null(vm, "vm create --json: %s", c.out);
        cr_assert_str_eq(vm_str(vm, "state"), "created", "state: %s", c.out);
        _cleanup_free_ char *kernel = vm_guest(payload);
        cr_assert_str_eq(vm_str(vm, "kernel"), kernel, "kernel path sent: %s", c.out);
        char *id = strdup(vm_str(vm, "id"));
        json_object_put(vm);
        ctl_clear(&c);
        return id;
}

/* Poll `vm show` until the state row says state. */
static void cli_vm_wait_state(const char *id, const char *state)
{
        uint64_t deadline = util_now_usec() + VM_WAIT_USEC;
        for (;;) {
                struct ctl c = {0};
                ctl(&c, "vm", "show", id, NULL);
                cr_assert_eq(c.status, 0, "vm show: exit %d, stderr %s", c.status, c.err);
                _cleanup_free_ char *now = detail_value(c.out, "state");
                bool done = streq(now, state);
                cr_assert(done || util_now_usec() < deadline, "VM %s: state %s, want %s:\n%s", id,
                          now, state, c.out);
                ctl_clear(&c);
                if (done)
                        return;
                util_sleep_usec(50000);
        }
}

Test(cli_vm, hello_runs_to_reset_and_prints_on_the_console)
{
        _cleanup_free_ char *id = cli_vm_create("hello", "16");
        struct ctl c = {0};

        ctl(&c, "vm", "list", NULL);
        const char *row = table_row(c.out, id);
        cr_assert(row && strstr(row, " hello ") && strstr(row, " created "), "vm list:\n%s", c.out);
        ctl_clear(&c);

        ctl(&c, "vm", "start", id, NULL);
        cr_assert_eq(c.status, 0, "vm start: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        cli_vm_wait_state(id, "stopped");

        ctl(&c, "vm", "console", id, NULL);
        cr_assert_eq(c.status, 0, "vm console: exit %d, stderr %s", c.status, c.err);
        cr_assert(strstr(c.out, "hello from the guest\n"), "console: %s", c.out);
        ctl_clear(&c);
        ctl(&c, "vm", "console", "--follow", id, NULL);
        cr_assert_eq(c.status, 0, "console --follow of a stopped VM: exit %d, stderr %s", c.status,
                     c.err);
        cr_assert(strstr(c.out, "hello from the guest\n"), "followed console: %s", c.out);
        ctl_clear(&c);

        ctl(&c, "vm", "pause", id, NULL);
        cr_assert_eq(c.status, 1, "pause of a stopped VM: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: invalid_state: ", 22), 0, "stderr: %s", c.err);
        ctl_clear(&c);

        ctl(&c, "vm", "delete", id, NULL);
        cr_assert_eq(c.status, 0, "vm delete: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "vm", "show", id, NULL);
        cr_assert_eq(c.status, 1, "deleted VM shown: exit %d", c.status);
        ctl_clear(&c);
}

Test(cli_vm, pause_resume_stop_and_follow_a_running_vm)
{
        _cleanup_free_ char *id = cli_vm_create("idle", "96");
        struct ctl c = {0};
        ctl(&c, "vm", "start", id, NULL);
        cr_assert_eq(c.status, 0, "vm start: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);

        /* Follow the console in the background until the VM stops. */
        const char *const follow[] = {"vm", "console", id, "--follow", NULL};
        _cleanup_free_ char *dir = util_path_join(env.dir, "follow", NULL);
        _cleanup_free_ char *out = util_path_join(dir, "ctl.out", NULL);
        cr_assert_eq(util_mkdir_p(dir, 0700), 0, "mkdir %s", dir);
        pid_t pid = ctl_spawn(env.h->socket_path, dir, NULL, follow);
        cr_assert(wait_for_text(out, "idle", 30000), "--follow never printed the guest's text");

        ctl(&c, "vm", "pause", id, NULL);
        _cleanup_free_ char *paused = detail_value(c.out, "state");
        cr_assert_str_eq(paused, "paused", "after pause:\n%s%s", c.out, c.err);
        ctl_clear(&c);
        ctl(&c, "vm", "resume", id, NULL);
        _cleanup_free_ char *resumed = detail_value(c.out, "state");
        cr_assert_str_eq(resumed, "running", "after resume:\n%s%s", c.out, c.err);
        ctl_clear(&c);

        /* The halted guest ignores the request: killed after a second. */
        ctl(&c, "vm", "stop", id, "--timeout", "1", NULL);
        cr_assert_eq(c.status, 0, "vm stop: exit %d, stderr %s", c.status, c.err);
        _cleanup_free_ char *stopped = detail_value(c.out, "state");
        cr_assert_str_eq(stopped, "stopped", "after stop:\n%s", c.out);
        ctl_clear(&c);

        struct ctl f = {0};
        ctl_collect(&f, dir, pid, 10000);
        cr_assert_eq(f.status, 0, "console --follow after stop: exit %d, stderr %s", f.status,
                     f.err);
        cr_assert(strstr(f.out, "idle"), "followed console: %s", f.out);
        ctl_clear(&f);
}

Test(cli_vm, create_errors)
{
        struct ctl c = {0};
        ctl(&c, "vm", "create", "x", "--kernel", "/nonexistent/bzImage", NULL);
        cr_assert_eq(c.status, 1, "missing kernel: exit %d", c.status);
        cr_assert_eq(strncmp(c.err, "error: ", 7), 0, "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "vm", "create", "x", "--kernel", "/k", "--vcpus", "0", NULL);
        cr_assert_eq(c.status, 2, "--vcpus 0: exit %d", c.status);
        ctl_clear(&c);
        ctl(&c, "vm", "list", NULL);
        cr_assert_eq(count_lines(c.out), 1, "a VM was created anyway:\n%s", c.out);
        ctl_clear(&c);
}

Test(cli_vm, devices_short_form_reach_the_vm)
{
        _cleanup_free_ char *disk = util_path_join(env.dir, "disk.img", NULL);
        _cleanup_free_ char *kernel = vm_guest("hello");
        char zeros[4096] = {0};
        cr_assert_eq(util_write_file_atomic(disk, zeros, sizeof(zeros), 0600), 0, "%s", disk);

        struct ctl c = {0};
        ctl_in(&c, env.dir, "vm", "create", "dev", "--kernel", kernel, "--memory", "16", "--device",
               "virtio-blk,path=disk.img,read_only=true,serial=12", "--device", "virtio-rng",
               "--json", NULL);
        cr_assert_eq(c.status, 0, "vm create: exit %d, stderr %s", c.status, c.err);
        struct json_object *vm = json_tokener_parse(c.out), *devices = NULL;
        cr_assert(vm && json_object_object_get_ex(vm, "devices", &devices), "answer: %s", c.out);
        _cleanup_free_ char *text = util_strdup_printf(
                "[{\"type\": \"virtio-blk\", \"path\": \"%s\", \"read_only\": true, \"serial\": "
                "\"12\"}, {\"type\": \"virtio-rng\"}]",
                disk);
        struct json_object *want = json_tokener_parse(text);
        cr_assert(json_object_equal(devices, want), "devices %s, want %s",
                  json_object_to_json_string(devices), text);
        _cleanup_free_ char *id = strdup(vm_str(vm, "id"));
        json_object_put(want);
        json_object_put(vm);
        ctl_clear(&c);

        ctl(&c, "vm", "start", id, NULL);
        cr_assert_eq(c.status, 0, "vm start with devices: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        cli_vm_wait_state(id, "stopped");
        ctl(&c, "vm", "console", id, NULL);
        cr_assert(strstr(c.out, "hello from the guest\n"), "console: %s", c.out);
        ctl_clear(&c);
}

/* VM-to-VM links: a port in the short form, a peer as JSON; vm show lists the link, vm
 * delete of the driver VM is refused naming its client until --force. */
Test(cli_vm, links_show_and_force_delete)
{
        _cleanup_free_ char *kernel = vm_guest("hello");
        struct ctl c = {0};
        ctl(&c, "vm", "create", "netdom", "--kernel", kernel, "--memory", "16", "--device",
            "virtio-net,port=client-a,mac=52:54:00:00:00:0a", NULL);
        cr_assert_eq(c.status, 0, "driver VM: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
        ctl(&c, "vm", "create", "c1", "--kernel", kernel, "--memory", "16", "--device",
            "{\"type\": \"virtio-net\", \"mac\": \"52:54:00:00:00:01\", "
            "\"peer\": {\"vm\": \"netdom\", \"port\": \"client-a\"}}",
            NULL);
        cr_assert_eq(c.status, 0, "client VM: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);

        ctl(&c, "vm", "show", "c1", NULL);
        cr_assert_eq(c.status, 0, "vm show: exit %d, stderr %s", c.status, c.err);
        const char *links = strstr(c.out, "links");
        cr_assert(links && strstr(links, "client-a") && strstr(links, "netdom") &&
                          strstr(links, "down"),
                  "vm show lists no link to netdom's client-a:\n%s", c.out);
        ctl_clear(&c);

        ctl(&c, "vm", "delete", "netdom", NULL);
        cr_assert_eq(c.status, 1, "delete of a driver VM with a client: exit %d", c.status);
        cr_assert(strstr(c.err, "vm_has_clients"), "stderr: %s", c.err);
        ctl_clear(&c);
        ctl(&c, "vm", "delete", "netdom", "--force", NULL);
        cr_assert_eq(c.status, 0, "delete --force: exit %d, stderr %s", c.status, c.err);
        ctl_clear(&c);
}
