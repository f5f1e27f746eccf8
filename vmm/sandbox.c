/* SPDX-License-Identifier: MIT */
/*
 * What iovd-vmm gives up once the VM is built (it runs guest-controlled device emulation
 * from then on):
 *   - every file descriptor it inherited, except stdio (and any the caller keeps);
 *   - core dumps (they would hold guest memory) and new file descriptors beyond a small
 *     number (RLIMIT_CORE = 0, RLIMIT_NOFILE = 256);
 *   - privilege gain through execve (PR_SET_NO_NEW_PRIVS);
 *   - every system call not on the allow-list below, for every thread (seccomp filter
 *     with TSYNC, written as classic BPF: Documentation/userspace-api/seccomp_filter.rst).
 *     The architecture is checked first (x86-64 only; x32 numbers are refused), ioctl()
 *     is limited to the KVM and terminal requests the running VM makes. A refused call
 *     kills the process: the supervisor sees the VM crash, the host is untouched.
 */
#include <dirent.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/vhost.h>
#include <linux/vfio.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <termios.h>

#include "util/util.h"
#include "vmm/run.h"

#define X32_SYSCALL_BIT 0x40000000

static const unsigned allowed_syscalls[] = {
        SYS_read,
        SYS_write,
        SYS_readv,
        SYS_writev,
        SYS_pread64,
        SYS_pwrite64,
        SYS_fdatasync, /* virtio-blk FLUSH (vmm/virtio/blk.c) */
        SYS_fallocate, /* virtio-blk DISCARD and WRITE_ZEROES (vmm/virtio/blk-io.c) */
        /* virtio-blk's io_uring (vmm/virtio/blk-io.c): submitting and waiting. Not
         * io_uring_setup nor io_uring_register: the ring is made before the sandbox, with
         * IORING_REGISTER_RESTRICTIONS (read, write, sync of the image only); a ring made
         * afterwards would run any operation (openat, connect) outside this filter. */
        SYS_io_uring_enter,
        SYS_close,
        SYS_lseek,
        SYS_fstat,
        SYS_newfstatat,
        SYS_fcntl,
        SYS_futex,
        SYS_exit,
        SYS_exit_group,
        SYS_rt_sigreturn,
        SYS_rt_sigprocmask,
        SYS_sigaltstack,
        SYS_restart_syscall,
        SYS_madvise,
        SYS_mmap,
        SYS_munmap,
        SYS_mprotect,
        SYS_brk,
        SYS_poll,
        SYS_ppoll,
        SYS_accept,
        SYS_accept4,
        SYS_recvfrom,
        SYS_sendto,
        SYS_recvmsg,
        SYS_sendmsg,
        SYS_shutdown,
        SYS_clock_gettime,
        SYS_clock_nanosleep,
        SYS_nanosleep,
        SYS_getpid,
        SYS_gettid,
        SYS_tgkill,
        SYS_sched_yield,
        SYS_eventfd2,
        SYS_epoll_ctl, /* a VM-to-VM link adopts a new end (vmm/virtio/net-link.c) */
        SYS_dup3,      /* and moves it to its reserved high descriptor number */
        SYS_getrandom,
        SYS_rseq,
        SYS_set_robust_list,
};

static const unsigned long allowed_ioctls[] = {
        KVM_RUN, KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD,
        KVM_GET_REGS, KVM_GET_SREGS, /* read only: the vCPU's state logged at a guest crash */
        TCGETS, FIONBIO,
        TUNSETOFFLOAD, /* virtio-net: the TAP hands over what the guest acked (net-tap.c) */
        TUNSETQUEUE,   /* virtio-net: the queues of pairs the guest does not use leave the
                        * TAP's set (attach and detach only; TUNGETIFF is before the sandbox) */
        /* vmm/virtio/vhost.c: the rings to vhost-net at DRIVER_OK and back at reset (a
         * driver reload repeats it). VHOST_SET_OWNER and VHOST_GET_FEATURES happen before
         * the sandbox and stay refused. */
        VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE, VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE,
        VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL, VHOST_GET_VRING_BASE,
        VHOST_NET_SET_BACKEND,
        /* vmm/vfio/: what a passed-through function needs once the guest runs. Every
         * VFIO fd (container, group, device) is opened before the sandbox. */
        VFIO_DEVICE_SET_IRQS,       /* the guest turns MSI-X or MSI on or off (and INTx off, on) */
        KVM_SET_USER_MEMORY_REGION, /* the guest moves a BAR or toggles its decode bit:
                                     * the BAR's mmapped slots follow */
        VFIO_DEVICE_RESET,          /* at teardown: nothing of the guest stays behind */
        VFIO_IOMMU_UNMAP_DMA,       /* at teardown: guest RAM leaves the IOMMU */
};

#define FILTER_MAX 256 /* a filter that does not fit ends without RET: the kernel refuses it */

struct filter {
        struct sock_filter insns[FILTER_MAX];
        unsigned n;
};

static void emit(struct filter *f, struct sock_filter insn)
{
        if (f->n < FILTER_MAX)
                f->insns[f->n++] = insn;
}

static void filter_build(struct filter *f)
{
        const struct sock_filter kill = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
        const struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

        emit(f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                             offsetof(struct seccomp_data, arch)));
        emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
        emit(f, kill);
        emit(f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                             offsetof(struct seccomp_data, nr)));
        emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1));
        emit(f, kill);
        /* ioctl first, KVM_RUN first among the requests: it is the call every VM exit
         * makes, so it takes the fewest filter instructions. */
        const uint8_t ioctl_block = (uint8_t)(1 + 2 * ARRAY_SIZE(allowed_ioctls) + 1);
        emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, ioctl_block));
        emit(f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                             offsetof(struct seccomp_data, args[1])));
        for (size_t i = 0; i < ARRAY_SIZE(allowed_ioctls); i++) {
                emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                                     (uint32_t)allowed_ioctls[i], 0, 1));
                emit(f, allow);
        }
        emit(f, kill);
        /* Then the other calls (the accumulator still holds the number). */
        for (size_t i = 0; i < ARRAY_SIZE(allowed_syscalls); i++) {
                emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, allowed_syscalls[i],
                                                     0, 1));
                emit(f, allow);
        }
        emit(f, kill);
}

/* The descriptors this process inherited (numbers >= 3), noted before it opened any. */
static bool inherited[VMM_FD_LIMIT];

void vmm_sandbox_note_inherited_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return;
        int self = dirfd(d);
        struct dirent *de;
        while ((de = readdir(d))) {
                uint64_t fd;
                if (util_parse_u64(de->d_name, 10, &fd) >= 0 && fd >= 3 && fd < VMM_FD_LIMIT &&
                    (int)fd != self)
                        inherited[fd] = true;
        }
        closedir(d);
}

/* Close what was inherited and is not in keep_fds: the VMM's own descriptors (vCPUs,
 * eventfds, device backends) stay. */
static void sandbox_close_fds(const int *keep_fds, size_t n_keep)
{
        for (int fd = 3; fd < VMM_FD_LIMIT; fd++) {
                if (!inherited[fd])
                        continue;
                bool keep = false;
                for (size_t i = 0; i < n_keep; i++)
                        keep = keep || keep_fds[i] == fd;
                if (!keep)
                        close(fd);
                inherited[fd] = false;
        }
}

int vmm_sandbox_enter(const int *keep_fds, size_t n_keep, bool seccomp, char *error,
                      size_t error_size)
{
        int r;
        sandbox_close_fds(keep_fds, n_keep);
        struct rlimit none = {0, 0}, fds = {VMM_FD_LIMIT, VMM_FD_LIMIT};
        if (setrlimit(RLIMIT_CORE, &none) < 0 || setrlimit(RLIMIT_NOFILE, &fds) < 0 ||
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                r = -errno;
                snprintf(error, error_size, "dropping limits: %s", strerror(-r));
                return r;
        }
        if (!seccomp)
                return 0;

        static struct filter f;
        f.n = 0;
        filter_build(&f);
        struct sock_fprog prog = {.len = (unsigned short)f.n, .filter = f.insns};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
                r = errno ? -errno : -ESRCH;
                snprintf(error, error_size, "installing the seccomp filter: %s", strerror(-r));
                return r;
        }
        return 0;
}
