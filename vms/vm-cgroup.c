/* SPDX-License-Identifier: MIT */
/*
 * vm-cgroup: cgroup v2 limits for each VMM, where iovd may make cgroups (its own cgroup on
 * a cgroup2 /sys/fs/cgroup offers the memory and pids controllers and can be written, as
 * under systemd with Delegate=yes; otherwise VMMs run without, which is logged once).
 *
 * cgroup v2 enables controllers for children only in a cgroup without processes of its
 * own ("no internal processes", Documentation/admin-guide/cgroup-v2.rst), so iovd first
 * moves itself into a leaf "daemon" of its cgroup, then enables +memory +pids there, and
 * gives each running VM a child named by its id ("vm-...") with
 *   memory.max = the VM's memory + IOV_VM_CGROUP_OVERHEAD_MIB (page tables, the VMM's
 *                own heap, virtio buffers),
 *   pids.max   = its vCPUs + IOV_VM_CGROUP_EXTRA_PIDS (main, I/O and console threads).
 * iovd-vmm-monitor puts the VMM in before exec and removes the cgroup once it ended.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

#define CGROUP_ROOT                "/sys/fs/cgroup"
#define IOV_VM_CGROUP_OVERHEAD_MIB 256
#define IOV_VM_CGROUP_EXTRA_PIDS   64

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

/* iovd into own/daemon, then memory and pids for the children of own. */
static int cgroup_delegate(const char *own)
{
        if (!cgroup_only_self(own))
                return -EBUSY;
        _cleanup_free_ char *controllers = NULL,
                            *path = util_path_join(own, "cgroup.controllers", NULL);
        int r = path ? util_read_line(path, &controllers) : -ENOMEM;
        if (r < 0)
                return r;
        if (!strstr(controllers, "memory") || !strstr(controllers, "pids"))
                return -EOPNOTSUPP;
        _cleanup_free_ char *leaf = util_path_join(own, "daemon", NULL);
        if (!leaf)
                return -ENOMEM;
        if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
                return -errno;
        r = cgroup_write(leaf, "cgroup.procs", "0");
        if (r >= 0)
                r = cgroup_write(own, "cgroup.subtree_control", "+memory +pids");
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
        log_info("VMMs get cgroups below %s (memory.max, pids.max)", t->cgroup_dir);
}

int vm_cgroup_create(struct iov_vm_table *t, const struct iov_vm_record *rec, char **ret_dir)
{
        if (!t->cgroup_dir) {
                *ret_dir = NULL;
                return 0;
        }
        _cleanup_free_ char *dir = util_path_join(t->cgroup_dir, rec->id, NULL);
        if (!dir)
                return -ENOMEM;
        (void)rmdir(dir); /* left by a monitor that was killed: empty, or in use (EBUSY) */
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        char memory[32], pids[32];
        snprintf(memory, sizeof(memory), "%llu",
                 (unsigned long long)(rec->spec.memory_mib + IOV_VM_CGROUP_OVERHEAD_MIB) << 20);
        snprintf(pids, sizeof(pids), "%u", rec->spec.vcpus + IOV_VM_CGROUP_EXTRA_PIDS);
        int r = cgroup_write(dir, "memory.max", memory);
        if (r >= 0)
                r = cgroup_write(dir, "pids.max", pids);
        if (r < 0)
                return r;
        *ret_dir = TAKE_PTR(dir);
        return 0;
}
