/* SPDX-License-Identifier: MIT */
/* Admission control and bounded state through the real iovd: a VM larger than the host
 * (MemTotal, online CPUs) is refused with 409 unless an overcommit option allows it, a
 * start counts the VMs already running, and a table filled to its limits loads again
 * after a restart. */
#include <unistd.h>

#include "test-vm-common.h"

/* The definition's limits as api/openapi.yaml publishes them. */
#define API_MAX_VCPUS      32
#define API_MEMORY_MAX_MIB (1024ULL * 1024)

VM_TEST_SUITE(vm_admission, false, .timeout = 180);

static uint64_t memtotal_mib(void)
{
        _cleanup_free_ char *text = NULL;
        size_t size;
        cr_assert_eq(util_read_file("/proc/meminfo", 65536, &text, &size), 0, "/proc/meminfo");
        unsigned long long kib = 0;
        const char *line = strstr(text, "MemTotal:");
        cr_assert(line && sscanf(line, "MemTotal: %llu kB", &kib) == 1, "no MemTotal");
        return kib / 1024;
}

static void restart_with(const char *option, const char *value)
{
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        const char *extra[] = {"--run-dir", env.run_dir, option, value, NULL};
        struct iov_harness_options o = {.state_dir = env.state_dir, .extra_args = extra};
        int r = harness_start(&o, &env.h);
        cr_assert_eq(r, 0, "iovd %s %s did not start: %s", option, value, strerror(-r));
}

/* POST /v1/vms with memory_mib and vcpus; the status must be want (201 or 409 code). */
static void create_expect(uint64_t memory_mib, long vcpus, long want, const char *code)
{
        _cleanup_free_ char *kernel = vm_guest("idle");
        _cleanup_free_ char *body =
                util_strdup_printf("{\"kernel\": \"%s\", \"memory_mib\": %llu, \"vcpus\": %ld}",
                                   kernel, (unsigned long long)memory_mib, vcpus);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, want, &r);
        if (code)
                cr_expect_str_eq(vm_error_code(&r), code, "memory %llu vcpus %ld: code %s",
                                 (unsigned long long)memory_mib, vcpus, vm_error_code(&r));
        harness_reply_clear(&r);
}

Test(vm_admission, memory_beyond_the_host_is_refused_unless_overcommitted)
{
        uint64_t host = memtotal_mib();
        cr_assert(2 * host <= API_MEMORY_MAX_MIB, "host of %llu MiB", (unsigned long long)host);
        create_expect(2 * host, 1, 409, "insufficient_memory");
        create_expect(host / 2, 1, 201, NULL);
        restart_with("--memory-overcommit", "3");
        create_expect(2 * host, 1, 201, NULL);
}

Test(vm_admission, vcpus_beyond_the_host_are_refused_unless_overcommitted)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        /* The default lets vCPUs be 4 times the online CPUs. */
        if (4 * cpus + 1 > API_MAX_VCPUS)
                cr_skip_test("%ld CPUs: no VM can ask for more than 4 vCPUs a CPU", cpus);
        create_expect(64, 4 * cpus + 1, 409, "insufficient_cpus");
        create_expect(64, 4 * cpus, 201, NULL);
        restart_with("--vcpu-overcommit", "1");
        create_expect(64, cpus + 1, 409, "insufficient_cpus");
        restart_with("--vcpu-overcommit", "8");
        create_expect(64, 4 * cpus + 1, 201, NULL);
}

Test(vm_admission, overcommit_options_take_a_sane_ratio)
{
        const char *bad[] = {"0", "-1", "abc", "1000", "1.5x"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                const char *args[] = {"--memory-overcommit", bad[i], NULL};
                int status = -1;
                _cleanup_free_ char *out = NULL;
                cr_assert_eq(harness_run(args, &status, &out), 0, "cannot run iovd");
                cr_expect_neq(status, 0, "--memory-overcommit %s accepted: %s", bad[i], out);
        }
}

/* Create a VM on the idle guest with vcpus; returns its id. */
static char *create_idle(long vcpus)
{
        _cleanup_free_ char *kernel = vm_guest("idle");
        _cleanup_free_ char *body = util_strdup_printf(
                "{\"kernel\": \"%s\", \"memory_mib\": 16, \"vcpus\": %ld}", kernel, vcpus);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 201, &r);
        char *id = strdup(vm_str(r.json, "id"));
        harness_reply_clear(&r);
        cr_assert_not_null(id);
        return id;
}

Test(vm_admission, a_start_counts_the_vms_already_running)
{
        HARNESS_SKIP_WITHOUT_KVM();
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus > API_MAX_VCPUS)
                cr_skip_test("%ld CPUs: one VM cannot fill the host", cpus);
        restart_with("--vcpu-overcommit", "1");
        _cleanup_free_ char *big = create_idle(cpus);
        _cleanup_free_ char *small = create_idle(1);
        struct iov_http_reply r;
        vm_action(&env, big, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_action(&env, small, "start", NULL, 409, &r);
        cr_expect_str_eq(vm_error_code(&r), "insufficient_cpus", "start beside %ld vCPUs: %s", cpus,
                         vm_error_code(&r));
        harness_reply_clear(&r);
        vm_action(&env, big, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_action(&env, small, "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_action(&env, small, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}
