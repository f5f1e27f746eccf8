/* SPDX-License-Identifier: MIT */
/* What iovd-vmm gives up (vmm/sandbox.c), observed from a child process. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "util/util.h"
#include "vmm/run.h"

/* Run fn in a child; return its wait status. */
static int in_child(void (*fn)(void))
{
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                fn();
                _exit(0);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        return status;
}

static void enter(bool seccomp)
{
        char error[128];
        if (vmm_sandbox_enter(NULL, 0, seccomp, error, sizeof(error)) < 0)
                _exit(10);
}

static void child_limits(void)
{
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        vmm_sandbox_note_inherited_fds(); /* fd now counts as inherited */
        enter(false);
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
                _exit(11); /* the inherited fd is still open */
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                _exit(12);
        struct rlimit rl;
        if (getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_max != 0)
                _exit(13);
        int mine = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (mine < 0)
                _exit(14); /* opening is fine without the filter */
}

Test(vmm_sandbox, closes_inherited_fds_and_drops_limits)
{
        int status = in_child(child_limits);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child failed check %d (11 fd, 12 no_new_privs, 13 core, 14 open)",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void child_open(void)
{
        enter(true);
        (void)!write(STDERR_FILENO, "", 0); /* allowed */
        int fd = open("/dev/null", O_RDONLY);
        (void)fd;
        _exit(20); /* not reached: open is not on the list */
}

Test(vmm_sandbox, filter_kills_a_forbidden_call)
{
        int status = in_child(child_open);
        cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
                  "open() under the filter: status 0x%x (want SIGSYS)", status);
}

static void child_ioctl(void)
{
        int p[2];
        if (pipe(p) < 0)
                _exit(30);
        enter(true);
        int on = 1;
        if (ioctl(p[0], FIONBIO, &on) < 0)
                _exit(31); /* an allowed request failed */
        struct winsize ws;
        (void)ioctl(p[0], TIOCGWINSZ, &ws);
        _exit(32); /* not reached: TIOCGWINSZ is not allowed */
}

Test(vmm_sandbox, ioctl_is_limited_to_listed_requests)
{
        int status = in_child(child_ioctl);
        cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
                  "TIOCGWINSZ under the filter: status 0x%x (exit %d; want SIGSYS)", status,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The VFIO requests a running VM makes are allowed (on a pipe they fail with ENOTTY, not
 * SIGSYS); the setup ones (VFIO_GROUP_GET_DEVICE_FD here) are not. */
static void child_vfio_ioctl(void)
{
        int p[2];
        if (pipe(p) < 0)
                _exit(40);
        enter(true);
        static const unsigned long running[] = {VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET,
                                                VFIO_IOMMU_UNMAP_DMA};
        for (size_t i = 0; i < ARRAY_SIZE(running); i++)
                if (ioctl(p[0], running[i], NULL) != -1 || errno != ENOTTY)
                        _exit(41);
        (void)ioctl(p[0], VFIO_GROUP_GET_DEVICE_FD, "0000:00:02.0");
        _exit(42); /* not reached */
}

Test(vmm_sandbox, vfio_requests_after_setup_only)
{
        int status = in_child(child_vfio_ioctl);
        cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
                  "VFIO_GROUP_GET_DEVICE_FD under the filter: status 0x%x (exit %d; 41: an "
                  "allowed VFIO request was refused; want SIGSYS)",
                  status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void child_threads(void)
{
        enter(true);
        /* Threads, futexes, memory and clocks keep working. */
        void *p = malloc(1 << 20);
        free(p);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        util_sleep_usec(1000);
}

Test(vmm_sandbox, allowed_calls_keep_working)
{
        int status = in_child(child_threads);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
}
