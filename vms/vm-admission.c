/* SPDX-License-Identifier: MIT */
/*
 * vm-admission: whether the host can hold one more VM, and whether the table can.
 *
 * The memory and vCPUs of every VM that runs, is paused or is being started, plus the
 * candidate's, must fit in the host's MemTotal (/proc/meminfo) and online CPUs times the
 * overcommit ratios of the command line (--memory-overcommit, --vcpu-overcommit). A create
 * checks the VM alone, so one that could never start is refused at once; a start checks
 * the sum. Refusals are 409 "insufficient_memory" / "insufficient_cpus".
 *
 * The table holds at most IOV_VMS_MAX VMs whose durable form is at most
 * IOV_VM_DURABLE_MAX bytes each, so vms.json always stays under the loader's
 * IOV_STATE_MAX_SIZE and whatever was accepted can be loaded again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

/* Room for what a VM gains after create: the reason (6 bytes a character at worst, as
 * "\u00XX"), the final stats of a run, and the timestamps. */
#define VM_RUNTIME_DURABLE_MAX (IOV_VM_REASON_MAX * 6 + IOV_VM_STATS_MAX + 1024)
_Static_assert((uint64_t)IOV_VMS_MAX *(IOV_VM_DURABLE_MAX + VM_RUNTIME_DURABLE_MAX) + 4096 <=
                       IOV_STATE_MAX_SIZE,
               "a full VM table must fit in a state document the loader accepts");

/* MemTotal in MiB; proc(5): the line "MemTotal:  N kB". */
static int host_memory_mib(uint64_t *ret)
{
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r = util_read_file("/proc/meminfo", 64 * 1024, &text, &size);
        if (r < 0)
                return r;
        const char *line = strstr(text, "MemTotal:");
        unsigned long long kib;
        if (!line || sscanf(line, "MemTotal: %llu kB", &kib) != 1)
                return -EBADMSG;
        *ret = kib / 1024;
        return 0;
}

static bool vm_holds_host(const struct iov_vm_record *rec)
{
        return rec->starting || rec->pidfd >= 0 || rec->state == IOV_VM_STATE_RUNNING ||
               rec->state == IOV_VM_STATE_PAUSED;
}

/* What the VMs holding the host use (lock held), rec itself left out. */
static void vm_table_usage(struct iov_vm_table *t, const struct iov_vm_record *rec,
                           uint64_t *ret_memory_mib, uint64_t *ret_vcpus)
{
        uint64_t memory = 0, vcpus = 0;
        for (size_t i = 0; rec && i < t->n_records; i++) {
                const struct iov_vm_record *other = t->records[i];
                if (other == rec || !vm_holds_host(other))
                        continue;
                memory += other->spec.memory_mib;
                vcpus += other->spec.vcpus;
        }
        *ret_memory_mib = memory;
        *ret_vcpus = vcpus;
}

int vm_admission_check(struct iov_vm_table *t, const struct iov_vm_record *rec, bool others,
                       struct iov_problem *p)
{
        const struct iov_daemon_config *c = &t->daemon->config;
        uint64_t host_mib;
        int r = host_memory_mib(&host_mib);
        if (r < 0)
                return log_error_errno(r, "Cannot read MemTotal from /proc/meminfo: %m");
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
                cpus = 1;
        uint64_t used_mib = 0, used_vcpus = 0;
        if (others)
                vm_table_usage(t, rec, &used_mib, &used_vcpus);
        uint64_t memory_limit = (uint64_t)((double)host_mib * c->memory_overcommit);
        uint64_t vcpu_limit = (uint64_t)((double)cpus * c->vcpu_overcommit);
        if (used_mib + rec->spec.memory_mib > memory_limit)
                return daemon_problem_set(p, 409, "insufficient_memory",
                                          "VM needs %" PRIu64 " MiB; %" PRIu64 " of %" PRIu64
                                          " MiB (MemTotal x --memory-overcommit %.2f) are in use",
                                          rec->spec.memory_mib, used_mib, memory_limit,
                                          c->memory_overcommit);
        if (used_vcpus + rec->spec.vcpus > vcpu_limit)
                return daemon_problem_set(p, 409, "insufficient_cpus",
                                          "VM needs %u vCPUs; %" PRIu64 " of %" PRIu64
                                          " (online CPUs x --vcpu-overcommit %.2f) are in use",
                                          rec->spec.vcpus, used_vcpus, vcpu_limit,
                                          c->vcpu_overcommit);
        return 0;
}

int vm_admission_check_table(struct iov_vm_table *t, const struct iov_vm_record *rec,
                             struct iov_problem *p)
{
        if (t->n_records >= IOV_VMS_MAX)
                return daemon_problem_set(p, 409, "too_many_vms", "iovd holds at most %d VMs",
                                          IOV_VMS_MAX);
        _cleanup_json_ struct json_object *o = vm_record_to_durable(rec);
        if (!o)
                return -ENOMEM;
        /* Measured as daemon/state.c writes it. */
        size_t size = strlen(json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        if (size > IOV_VM_DURABLE_MAX)
                return daemon_problem_set(p, 422, "definition_too_large",
                                          "the definition takes %zu bytes stored; at most %d", size,
                                          IOV_VM_DURABLE_MAX);
        return 0;
}
