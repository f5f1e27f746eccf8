/* SPDX-License-Identifier: MIT */
/*
 * vm-cgroup: cgroup v2 limits for each VMM, where iovd may make cgroups (its own cgroup on
 * a cgroup2 /sys/fs/cgroup offers the memory and pids controllers and can be written, as
 * under systemd with Delegate=yes; otherwise VMMs run without, which is logged once).
 *
 * cgroup v2 enables controllers for children only in a cgroup without processes of its
 * own ("no internal processes", Documentation/admin-guide/cgroup-v2.rst), so iovd first
 * moves itself into a leaf "daemon" of its cgroup, then enables +memory +pids (and +cpu
 * where offered) there, and gives each running VM a child named after it ("vm-NAME", or
 * its id "vm-HEX" when unnamed, so systemd-cgls shows VMs by name) with
 *   memory.max = the VM's memory + IOV_VM_CGROUP_OVERHEAD_MIB (page tables, the VMM's
 *                own heap, virtio buffers),
 *   pids.max   = its vCPUs + IOV_VM_CGROUP_EXTRA_PIDS (main, I/O and console threads),
 *   cpu.max    = vCPUs * IOV_VM_CGROUP_CPU_PERIOD_US per period: at most as much CPU
 *                time as its vCPUs could use, the VMM's own threads included.
 * iovd-vmm-monitor puts the VMM in before exec and removes the cgroup once it ended.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

#define CGROUP_ROOT                 "/sys/fs/cgroup"
#define IOV_VM_CGROUP_OVERHEAD_MIB  256
#define IOV_VM_CGROUP_EXTRA_PIDS    64
#define IOV_VM_CGROUP_CPU_PERIOD_US 100000 /* the kernel's default cpu.max period */

/* The directory of iovd's own cgroup ("0::PATH" in /proc/self/cgroup). */
static int cgroup_own_dir(char **ret)
{
        struct statfs fs;
        if (statfs(CGROUP_ROOT, &fs) < 0)
                return -errno;
        if (fs.f_type != CGROUP2_SUPER_MAGIC)
                return -EOPNOTSUPP;
        _cleanup_free_ char *text = NULL;
        int r = util_read_file("/proc/self/cgroup", 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        char *line = strstr(text, "0::");
        if (!line)
                return -EOPNOTSUPP;
        line[strcspn(line, "\n")] = '\0';
        char *dir = util_path_join(CGROUP_ROOT, line + 3, NULL);
        if (!dir)
                return -ENOMEM;
        *ret = dir;
        return 0;
}

static int cgroup_write(const char *dir, const char *file, const char *value)
{
        _cleanup_free_ char *path = util_path_join(dir, file, NULL);
        return path ? util_write_attr(path, value) : -ENOMEM;
}

/* Whether iovd is the only process of its cgroup (a cgroup made for it): else the
 * cgroup is not iovd's to rearrange. */
static bool cgroup_only_self(const char *own)
{
        _cleanup_free_ char *path = util_path_join(own, "cgroup.procs", NULL), *procs = NULL;
        if (!path || util_read_file(path, 64 * 1024, &procs, NULL) < 0)
                return false;
        int pid;
        char *save = NULL;
        for (char *line = strtok_r(procs, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (sscanf(line, "%d", &pid) != 1 || pid != getpid())
                        return false;
        return true;
}

/* Whether the space-separated list holds word ("cpu", not "cpuset"). */
static bool cgroup_has_word(const char *list, const char *word)
{
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
                        return true;
        return false;
}

/* cpu is optional: without it VMMs still get memory.max and pids.max, and cpu.max is
 * skipped (vm_cgroup_create finds no cpu.max file in the VM's cgroup). */
static void cgroup_enable_cpu(const char *own, const char *controllers)
{
        if (!cgroup_has_word(controllers, "cpu"))
                log_info("VMMs get no cpu.max: the cpu controller is not delegated to iovd "
                         "(Delegate=cpu)");
        else if (cgroup_write(own, "cgroup.subtree_control", "+cpu") < 0)
                log_info("VMMs get no cpu.max: +cpu in %s/cgroup.subtree_control failed", own);
}

/* iovd into own/daemon, then memory, pids and (where delegated) cpu for the children of
 * own. */
static int cgroup_delegate(const char *own)
{
        if (!cgroup_only_self(own))
                return -EBUSY;
        _cleanup_free_ char *controllers = NULL,
                            *path = util_path_join(own, "cgroup.controllers", NULL);
        int r = path ? util_read_line(path, &controllers) : -ENOMEM;
        if (r < 0)
                return r;
        if (!cgroup_has_word(controllers, "memory") || !cgroup_has_word(controllers, "pids"))
                return -EOPNOTSUPP;
        _cleanup_free_ char *leaf = util_path_join(own, "daemon", NULL);
        if (!leaf)
                return -ENOMEM;
        if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
                return -errno;
        r = cgroup_write(leaf, "cgroup.procs", "0");
        if (r >= 0)
                r = cgroup_write(own, "cgroup.subtree_control", "+memory +pids");
        if (r >= 0)
                cgroup_enable_cpu(own, controllers);
        return r;
}

void vm_cgroup_setup(struct iov_vm_table *t)
{
        _cleanup_free_ char *own = NULL;
        int r = cgroup_own_dir(&own);
        if (r >= 0)
                r = cgroup_delegate(own);
        if (r < 0) {
                log_full_errno(UTIL_LOG_INFO, r,
                               "VMMs run without cgroup limits (no writable cgroup v2 with "
                               "memory and pids at " CGROUP_ROOT "): %m");
                return;
        }
        t->cgroup_dir = TAKE_PTR(own);
        log_info("VMMs get cgroups below %s (memory.max, pids.max, cpu.max)", t->cgroup_dir);
}

/* The VM's limits into its cgroup dir; cpu.max only where the cpu controller is on. */
static int cgroup_write_limits(const char *dir, const struct iov_vm_spec *spec)
{
        char memory[32], pids[32], cpu[48];
        snprintf(memory, sizeof(memory), "%llu",
                 (unsigned long long)(spec->memory_mib + IOV_VM_CGROUP_OVERHEAD_MIB) << 20);
        snprintf(pids, sizeof(pids), "%u", spec->vcpus + IOV_VM_CGROUP_EXTRA_PIDS);
        /* "$MAX $PERIOD" (cgroup-v2.rst, cpu.max): vcpus periods of CPU time per period. */
        snprintf(cpu, sizeof(cpu), "%llu %u",
                 (unsigned long long)spec->vcpus * IOV_VM_CGROUP_CPU_PERIOD_US,
                 IOV_VM_CGROUP_CPU_PERIOD_US);
        int r = cgroup_write(dir, "memory.max", memory);
        if (r >= 0)
                r = cgroup_write(dir, "pids.max", pids);
        if (r >= 0) {
                r = cgroup_write(dir, "cpu.max", cpu);
                if (r == -ENOENT) /* no cpu controller delegated: logged at start */
                        r = 0;
        }
        return r;
}

/* The VM's cgroup directory, named after the VM: names are letters, digits, '.', '_', '-'
 * (vm-contract.h), so "vm-NAME" is a valid cgroup name that never clashes with an
 * interface file. */
static char *cgroup_vm_dir(const struct iov_vm_table *t, const struct iov_vm_record *rec)
{
        _cleanup_free_ char *name =
                rec->spec.name ? util_strdup_printf("vm-%s", rec->spec.name) : strdup(rec->id);
        return name ? util_path_join(t->cgroup_dir, name, NULL) : NULL;
}

void vm_cgroup_restore(struct iov_vm_table *t, const struct iov_vm_record *rec)
{
        _cleanup_free_ char *dir = t->cgroup_dir ? cgroup_vm_dir(t, rec) : NULL;
        if (!dir || access(dir, F_OK) < 0)
                return;
        int r = cgroup_write_limits(dir, &rec->spec);
        if (r < 0)
                log_warning_errno(r, "VM %s: cannot write its cgroup limits again: %m", rec->id);
}

int vm_cgroup_create(struct iov_vm_table *t, const struct iov_vm_record *rec, char **ret_dir)
{
        if (!t->cgroup_dir) {
                *ret_dir = NULL;
                return 0;
        }
        _cleanup_free_ char *dir = cgroup_vm_dir(t, rec);
        if (!dir)
                return -ENOMEM;
        (void)rmdir(dir); /* left by a monitor that was killed: empty, or in use (EBUSY) */
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        int r = cgroup_write_limits(dir, &rec->spec);
        if (r < 0)
                return r;
        *ret_dir = TAKE_PTR(dir);
        return 0;
}
