/* SPDX-License-Identifier: MIT */
/*
 * The jail iovd-vmm enters before it builds anything (--jail UID:GID, which iovd always
 * gives; Firecracker's jailer is the model), while it is still single-threaded, so every
 * thread it makes afterwards is inside:
 *
 *   - namespaces of its own: mount, IPC, UTS and network (the PID namespace is made by
 *     its parent, iovd-vmm-monitor, since a process cannot enter one itself). Nothing
 *     needs the host's network: a TAP device is opened by iovd and passed as a
 *     descriptor, which works in any namespace;
 *   - an empty root: a tmpfs (nodev) holding nothing, but a read-only /sys when a VFIO
 *     device is configured (vmm/vfio/ reads a function's IOMMU group and driver there).
 *     No device node at all: iovd opens /dev/kvm, /dev/vfio/vfio and each group's
 *     /dev/vfio/N and passes them as descriptors ("kvm", "vfio_container" and each vfio
 *     entry's "vfio_group" in the config), as it does for the VM's files, so the jail
 *     makes no node (no CAP_MKNOD, no CAP_CHOWN, no "m" in the device cgroup).
 *     pivot_root(2) into it (or, on an initial ramfs, a move and chroot), the old root
 *     detached, the new one read-only;
 *   - its own uid and gid, no supplementary groups, and no capabilities at all: the
 *     bounding set is emptied first (which needs CAP_SETPCAP), then the uid change clears
 *     the permitted and effective sets and the inheritable and ambient ones are cleared.
 *
 * Everything the VM uses comes as descriptors (util_open_inherited): its device nodes, its
 * files, the console log, the control socket, TAP and vhost-net devices. What is opened by path
 * before the root is gone: /proc/self/fd (the descriptors to close at the sandbox) and
 * /proc/self/status (the statistics). seccomp and no_new_privs follow later, as without the jail
 * (vmm/sandbox.c).
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <grp.h>

#include "util/util.h"
#include "vmm/run.h"

#define JAIL_ROOT "/tmp" /* the mount point of the new root, in the private namespace */

/* A read-only /sys when a VFIO device is configured: vmm/vfio/ reads a function's IOMMU
 * group and driver there. Its device nodes are descriptors iovd opened. */
static int jail_sysfs(const struct iov_vm_spec *spec)
{
        bool any = false;
        for (size_t i = 0; i < spec->n_devices; i++)
                any |= spec->devices[i].kind == IOV_VM_DEVICE_VFIO;
        if (!any)
                return 0;
        if (mkdir(JAIL_ROOT "/sys", 0555) < 0 ||
            mount("/sys", JAIL_ROOT "/sys", NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, JAIL_ROOT "/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return -errno;
        return 0;
}

/* Namespaces of its own and an empty tmpfs at JAIL_ROOT, private to them. */
static int jail_unshare(void)
{
        /* The modes below exactly as written, whatever umask iovd runs with (iovd.service
         * has UMask=0077): sys/ must be searchable by the VMM's own uid. Nothing it makes
         * after this is a file. */
        umask(0);
        if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) < 0)
                return -errno;
        /* Nothing mounted from here on may reach the host's namespace. No dev/: every
         * device node the VM uses is a descriptor iovd opened, so no mknod (CAP_MKNOD, the
         * device cgroup's "m") and no chown (CAP_CHOWN) are needed. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("iovd-vmm", JAIL_ROOT, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
                  "mode=0755,size=64k") < 0)
                return -errno;
        (void)!sethostname("iovd-vmm", 8);
        return 0;
}

/* Into the new root; the old one detached, the new one read-only. pivot_root(2) refuses
 * (EINVAL) when the current root is the initial ramfs, which cannot be unmounted: there
 * the new root is moved over "/" and chroot'ed into (what switch_root does). That leaves
 * the old root beneath, reachable only by a process able to chroot again or holding a
 * directory of it, and the VMM has neither (no capability, and /proc is not there). */
static int jail_pivot(void)
{
        if (chdir(JAIL_ROOT) < 0)
                return -errno;
        if (syscall(SYS_pivot_root, ".", ".") == 0) {
                if (umount2(".", MNT_DETACH) < 0)
                        return -errno;
        } else if (errno != EINVAL || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0) {
                return -errno;
        }
        if (chdir("/") < 0 || mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return -errno;
        return 0;
}

static int jail_root(const struct iov_vm_spec *spec, char *error, size_t error_size)
{
        const char *step = "namespaces";
        int r = jail_unshare();
        if (r >= 0) {
                step = "/sys";
                r = jail_sysfs(spec);
        }
        if (r >= 0) {
                step = "pivot_root";
                r = jail_pivot();
        }
        if (r < 0)
                snprintf(error, error_size, "jail: %s: %s", step, strerror(-r));
        return r;
}

/* Every capability gone for good: bounding set, then uid and gid, then the rest. */
static int jail_drop_privileges(uid_t uid, gid_t gid, char *error, size_t error_size)
{
        for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                        goto fail;
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                goto fail;
        struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct none[2] = {0};
        if (syscall(SYS_capset, &header, none) < 0 ||
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                goto fail;
        return 0;
fail:;
        int r = -errno;
        snprintf(error, error_size, "jail: dropping privileges: %s", strerror(-r));
        return r;
}

int vmm_jail_enter(const struct iov_vmm_config *config, char *error, size_t error_size)
{
        if (!config->jail)
                return 0;
        /* Read /proc while there is one. */
        vmm_sandbox_note_inherited_fds();
        (void)vmm_stats_open();
        /* VFIO pins guest memory (VFIO_IOMMU_MAP_DMA): without CAP_IPC_LOCK it counts
         * against RLIMIT_MEMLOCK, so that has to cover the guest's RAM. */
        rlim_t ram = (rlim_t)(config->spec.memory_mib + 64) << 20;
        struct rlimit memlock = {ram, ram};
        (void)setrlimit(RLIMIT_MEMLOCK, &memlock);
        int r = jail_root(&config->spec, error, error_size);
        if (r < 0)
                return r;
        return jail_drop_privileges(config->jail_uid, config->jail_gid, error, error_size);
}
