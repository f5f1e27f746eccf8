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
 *   - an empty root: a tmpfs holding only dev/kvm and, for passthrough, dev/vfio/vfio and
 *     dev/vfio/N of each group (nodes made here, owned by UID: the host's nodes are not
 *     touched), plus a read-only /sys when a VFIO device is configured (vmm/vfio/ reads a
 *     function's IOMMU group and driver there). pivot_root(2) into it (or, on an initial
 *     ramfs, a move and chroot), the old root detached, the new one read-only;
 *   - its own uid and gid, no supplementary groups, and no capabilities at all: the
 *     bounding set is emptied first (which needs CAP_SETPCAP), then the uid change clears
 *     the permitted and effective sets and the inheritable and ambient ones are cleared.
 *
 * Everything else the VM uses comes as descriptors (util_open_inherited): its files, the
 * console log, the control socket, TAP devices. What is opened by path before the root is
 * gone: /proc/self/fd (the descriptors to close at the sandbox) and /proc/self/status
 * (the statistics). seccomp and no_new_privs follow later, as without the jail
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

/* A node at JAIL_ROOT/name with the device number of host_path, owned by uid:gid. */
static int jail_node(const char *host_path, const char *name, uid_t uid, gid_t gid)
{
        struct stat st;
        char path[128];
        if (stat(host_path, &st) < 0)
                return -errno;
        snprintf(path, sizeof(path), JAIL_ROOT "/%s", name);
        if (mknod(path, S_IFCHR | 0600, st.st_rdev) < 0 || chown(path, uid, gid) < 0)
                return -errno;
        return 0;
}

/* dev/vfio/N for the IOMMU group of host function bdf (once per group). */
static int jail_vfio_group(const char *bdf, uid_t uid, gid_t gid)
{
        _cleanup_free_ char *link =
                util_path_join("/sys/bus/pci/devices", bdf, "iommu_group", NULL);
        _cleanup_free_ char *group = NULL;
        int r = link ? util_readlink_basename(link, &group) : -ENOMEM;
        if (r < 0)
                return r;
        _cleanup_free_ char *host = util_path_join("/dev/vfio", group, NULL);
        _cleanup_free_ char *name = util_path_join("dev/vfio", group, NULL);
        if (!host || !name)
                return -ENOMEM;
        r = jail_node(host, name, uid, gid);
        /* No node: the function is not bound to vfio-pci, which vmm/vfio/ reports by name. */
        return r == -EEXIST || r == -ENOENT ? 0 : r;
}

/* dev/vfio/vfio and the group node of each "vfio" device, and a read-only /sys. */
static int jail_vfio(const struct iov_vm_spec *spec, uid_t uid, gid_t gid)
{
        bool any = false;
        for (size_t i = 0; i < spec->n_devices; i++) {
                if (spec->devices[i].kind != IOV_VM_DEVICE_VFIO)
                        continue;
                if (!any && mkdir(JAIL_ROOT "/dev/vfio", 0755) < 0)
                        return -errno;
                int r = any ? 0 : jail_node("/dev/vfio/vfio", "dev/vfio/vfio", uid, gid);
                if (r >= 0)
                        r = jail_vfio_group(spec->devices[i].vfio.host, uid, gid);
                if (r < 0)
                        return r;
                any = true;
        }
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
        /* The modes below exactly as written, whatever umask iovd runs with: under
         * iovd.service's UMask=0027, dev/ came out 0750 root:iovd, which the VMM's own uid
         * cannot search, so its open of dev/kvm failed with EACCES. Nothing it makes
         * after this is a file. */
        umask(0);
        if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) < 0)
                return -errno;
        /* Nothing mounted from here on may reach the host's namespace. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("iovd-vmm", JAIL_ROOT, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") <
                    0 ||
            mkdir(JAIL_ROOT "/dev", 0755) < 0)
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

static int jail_root(const struct iov_vm_spec *spec, uid_t uid, gid_t gid, char *error,
                     size_t error_size)
{
        const char *step = "namespaces";
        int r = jail_unshare();
        if (r >= 0) {
                step = "/dev/kvm";
                r = jail_node("/dev/kvm", "dev/kvm", uid, gid);
        }
        if (r >= 0) {
                step = "VFIO nodes";
                r = jail_vfio(spec, uid, gid);
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
        int r = jail_root(&config->spec, config->jail_uid, config->jail_gid, error, error_size);
        if (r < 0)
                return r;
        return jail_drop_privileges(config->jail_uid, config->jail_gid, error, error_size);
}
