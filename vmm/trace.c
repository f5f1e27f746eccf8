/* SPDX-License-Identifier: MIT */
/*
 * The VMM's start-up timed step by step, for bench/vms: with IOVD_TRACE=1 in the
 * environment (iovd and its monitor pass theirs on) each point below is stamped once,
 * with CLOCK_MONOTONIC (the clock a client's time.monotonic() reads, so a client can put
 * its own request times beside them) and the process's CPU time so far, and "stats"
 * lists them under "trace". Without it nothing is stamped or listed.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"
#include "vmm/run.h"

static bool trace_on;
static uint64_t trace_usec[IOV_VMM_TRACE_COUNT];
static uint64_t trace_cpu_usec[IOV_VMM_TRACE_COUNT];

static const char *const trace_names[IOV_VMM_TRACE_COUNT] = {
        [IOV_VMM_TRACE_EXEC] = "exec",           [IOV_VMM_TRACE_JAIL] = "jail",
        [IOV_VMM_TRACE_KVM_OPEN] = "kvm_open",   [IOV_VMM_TRACE_MEMORY] = "memory",
        [IOV_VMM_TRACE_VM_CREATE] = "vm_create", [IOV_VMM_TRACE_DEVICES] = "devices",
        [IOV_VMM_TRACE_BOOT_LOAD] = "boot_load", [IOV_VMM_TRACE_VCPUS] = "vcpus",
        [IOV_VMM_TRACE_SANDBOX] = "sandbox",     [IOV_VMM_TRACE_RUNNING] = "running",
        [IOV_VMM_TRACE_MARKER] = "marker",
};

void vmm_trace_init(void)
{
        const char *v = getenv("IOVD_TRACE");
        trace_on = v && streq(v, "1");
        vmm_trace_mark(IOV_VMM_TRACE_EXEC);
}

/* The first time only: the marker is written by a vCPU while the control thread may read
 * the stamps, hence the atomics. */
void vmm_trace_mark(enum iov_vmm_trace_point point)
{
        struct timespec cpu;
        uint64_t unset = 0;

        if (!trace_on || __atomic_load_n(&trace_usec[point], __ATOMIC_ACQUIRE))
                return;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
        __atomic_store_n(&trace_cpu_usec[point],
                         (uint64_t)cpu.tv_sec * 1000000ULL + (uint64_t)cpu.tv_nsec / 1000ULL,
                         __ATOMIC_RELAXED);
        __atomic_compare_exchange_n(&trace_usec[point], &unset, util_now_usec(), false,
                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

struct json_object *vmm_trace_json(void)
{
        if (!trace_on)
                return NULL;
        struct json_object *o = json_object_new_object();
        for (int i = 0; i < IOV_VMM_TRACE_COUNT; i++) {
                uint64_t usec = __atomic_load_n(&trace_usec[i], __ATOMIC_ACQUIRE);
                if (!usec)
                        continue;
                struct json_object *p = json_object_new_array();
                json_object_array_add(p, json_object_new_int64((int64_t)usec));
                json_object_array_add(p, json_object_new_int64((int64_t)trace_cpu_usec[i]));
                json_object_object_add(o, trace_names[i], p);
        }
        return o;
}
