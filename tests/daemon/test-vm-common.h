/* SPDX-License-Identifier: MIT */
/*
 * Shared by the VM tests: a real iovd on a state dir and a run dir the test owns (so a
 * second iovd can take over both), real iovd-vmm ($IOVD_VMM_BINARY) and the tiny guest
 * payloads of tests/guest ($GUEST_DIR). Every VMM a test leaves behind is killed by pid at
 * teardown: VMMs outlive iovd by design.
 */
#pragma once

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include "harness.h"

#define VM_WAIT_USEC (30ULL * 1000000)

struct vm_env {
        char dir[64]; /* mkdtemp: state/ and run/ */
        char *state_dir;
        char *run_dir;
        struct iov_harness *h;
};

static inline void vm_env_start_iovd(struct vm_env *e)
{
        const char *extra[] = {"--run-dir", e->run_dir, "--image-dir", e->dir, NULL};
        struct iov_harness_options o = {.state_dir = e->state_dir, .extra_args = extra};
        int r = harness_start(&o, &e->h);
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r),
                     e->h ? harness_log(e->h) : "");
}

static inline void vm_env_init(struct vm_env *e)
{
        cr_assert_not_null(getenv("IOVD_VMM_BINARY"), "IOVD_VMM_BINARY is not set");
        cr_assert_not_null(getenv("GUEST_DIR"), "GUEST_DIR is not set");
        snprintf(e->dir, sizeof(e->dir), "/tmp/iovd-vmtest-XXXXXX");
        cr_assert_not_null(mkdtemp(e->dir), "mkdtemp: %s", strerror(errno));
        e->state_dir = util_path_join(e->dir, "state", NULL);
        e->run_dir = util_path_join(e->dir, "run", NULL);
        cr_assert(e->state_dir && e->run_dir);
        vm_env_start_iovd(e);
}

/* Kill every VMM still listed in a pid file under run/vms, then remove the tree. */
static inline void vm_env_done(struct vm_env *e)
{
        harness_free(e->h);
        e->h = NULL;
        harness_kill_vmms(e->run_dir);
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf '%s'", e->dir);
        if (cmd && e->dir[0])
                (void)!system(cmd);
        free(e->state_dir);
        free(e->run_dir);
}

/* A suite whose tests each get a fresh iovd in `env` (skipped with a reason first when
 * needs_kvm and /dev/kvm cannot be opened) and leave nothing behind. Further TestSuite
 * options (.timeout = ...) follow. */
#define VM_TEST_SUITE(suite, needs_kvm, ...)                                                       \
        static struct vm_env env;                                                                  \
        static void vm_suite_setup(void)                                                           \
        {                                                                                          \
                if (needs_kvm)                                                                     \
                        HARNESS_SKIP_WITHOUT_KVM();                                                \
                vm_env_init(&env);                                                                 \
        }                                                                                          \
        static void vm_suite_teardown(void)                                                        \
        {                                                                                          \
                vm_env_done(&env);                                                                 \
        }                                                                                          \
        TestSuite(suite, .init = vm_suite_setup, .fini = vm_suite_teardown, ##__VA_ARGS__)

static inline char *vm_guest(const char *name)
{
        char *p = util_strdup_printf("%s/%s.bzImage", getenv("GUEST_DIR"), name);
        cr_assert_not_null(p);
        return p;
}

static inline const char *vm_str(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return "(none)";
        return json_object_get_string(v);
}

static inline const char *vm_error_code(const struct iov_http_reply *r)
{
        struct json_object *e = NULL;
        if (!r->json || !json_object_object_get_ex(r->json, "error", &e))
                return "(no error object)";
        return vm_str(e, "code");
}

static inline const char *vm_error_message(const struct iov_http_reply *r)
{
        struct json_object *e = NULL;
        if (!r->json || !json_object_object_get_ex(r->json, "error", &e))
                return "";
        return vm_str(e, "message");
}

/* A request that must answer with status; the reply is left in *ret. */
static inline void vm_call(struct vm_env *e, const char *method, const char *path, const char *body,
                           long status, struct iov_http_reply *ret)
{
        *ret = (struct iov_http_reply){0};
        int r = harness_request(e->h, method, path, body, ret);
        cr_assert_eq(r, 0, "%s %s: no reply: %s", method, path, strerror(-r));
        cr_assert_eq(ret->status, status, "%s %s: status %ld, want %ld; body %s", method, path,
                     ret->status, status, ret->body ? ret->body : "");
}

/* Create a VM on a guest payload; returns its id (caller frees). */
static inline char *vm_create(struct vm_env *e, const char *payload, unsigned memory_mib)
{
        _cleanup_free_ char *kernel = vm_guest(payload);
        _cleanup_free_ char *body = util_strdup_printf(
                "{\"kernel\": \"%s\", \"memory_mib\": %u, \"cmdline\": \"console=ttyS0\"}", kernel,
                memory_mib);
        struct iov_http_reply r;
        vm_call(e, "POST", "/v1/vms", body, 201, &r);
        cr_assert_str_eq(vm_str(r.json, "state"), "created", "new VM state %s",
                         vm_str(r.json, "state"));
        char *id = strdup(vm_str(r.json, "id"));
        harness_reply_clear(&r);
        return id;
}

static inline void vm_action(struct vm_env *e, const char *id, const char *action, const char *body,
                             long status, struct iov_http_reply *ret)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s/%s", id, action);
        vm_call(e, "POST", path, body, status, ret);
}

/* GET the VM (200) into *ret. */
static inline void vm_get(struct vm_env *e, const char *id, struct iov_http_reply *ret)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", id);
        vm_call(e, "GET", path, NULL, 200, ret);
}

/* Poll until the VM's state is `state`; fails naming the last state and reason. */
static inline void vm_wait_state(struct vm_env *e, const char *id, const char *state,
                                 struct iov_http_reply *ret)
{
        uint64_t deadline = util_now_usec() + VM_WAIT_USEC;
        for (;;) {
                vm_get(e, id, ret);
                if (streq(vm_str(ret->json, "state"), state))
                        return;
                cr_assert(util_now_usec() < deadline, "VM %s: state %s (reason %s), want %s", id,
                          vm_str(ret->json, "state"), vm_str(ret->json, "reason"), state);
                harness_reply_clear(ret);
                util_sleep_usec(20000);
        }
}

/* The console output as GET .../console returns it (caller frees). */
/* Start a created or stopped VM and wait until it has stopped again. */
static inline void vm_run_until_stopped(struct vm_env *e, const char *id)
{
        struct iov_http_reply r;
        vm_action(e, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_wait_state(e, id, "stopped", &r);
        harness_reply_clear(&r);
}

static inline char *vm_console(struct vm_env *e, const char *id)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s/console", id);
        struct iov_http_reply r;
        vm_call(e, "GET", path, NULL, 200, &r);
        char *out = strdup(vm_str(r.json, "output"));
        harness_reply_clear(&r);
        return out;
}

/* Wait until the console shows text. */
static inline void vm_wait_console(struct vm_env *e, const char *id, const char *text)
{
        uint64_t deadline = util_now_usec() + VM_WAIT_USEC;
        for (;;) {
                _cleanup_free_ char *out = vm_console(e, id);
                if (strstr(out, text))
                        return;
                cr_assert(util_now_usec() < deadline, "VM %s console never showed \"%s\": \"%s\"",
                          id, text, out);
                util_sleep_usec(20000);
        }
}

static inline pid_t vm_pid(struct iov_http_reply *r)
{
        struct json_object *v = NULL;
        if (!r->json || !json_object_object_get_ex(r->json, "pid", &v) ||
            !json_object_is_type(v, json_type_int))
                return 0;
        return (pid_t)json_object_get_int(v);
}

/* Start VM id (200 expected) and return its VMM's pid. */
static inline pid_t vm_start_pid(struct vm_env *e, const char *id)
{
        struct iov_http_reply r;
        vm_action(e, id, "start", NULL, 200, &r);
        pid_t pid = vm_pid(&r);
        harness_reply_clear(&r);
        return pid;
}
