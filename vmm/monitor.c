/* SPDX-License-Identifier: MIT */
/*
 * iovd-vmm-monitor: the parent of one iovd-vmm, which iovd starts (vms/supervisor.c) so
 * that someone can read the VMM's exit status whoever restarts iovd. A small program of
 * its own, exec'd, so no process but iovd holds iovd's memory (its TCP token above all).
 *
 *   iovd-vmm-monitor --pid-file FILE --exit-file FILE --report-fd N [--pid-namespace]
 *                    [--cgroup DIR] -- VMM [ARGS...]
 *
 * iovd spawns it as its child; it leaves iovd's children at once (it forks, and the first
 * process exits, which iovd reaps), so the VMM's parent is never a child of an iovd that
 * may restart. It forks and execs VMM with its own descriptors (stdio, and those iovd
 * passed at 3 and up, except N), writes "PID STARTTIME" to the pid file (STARTTIME: field 22 of
 * /proc/PID/stat), writes the pid (a pid_t) to fd N and closes everything but N, waits, and
 * writes "exited STATUS" or "signal SIGNAL" to the exit file; both files through a
 * temporary file and a rename (vms/supervisor.h reads them). N is closed right after the
 * exit file is written: its hang-up tells iovd that the file is there, so iovd sleeps
 * until then instead of looking for the file. --pid-namespace gives the VMM
 * a PID namespace of its own (it is its init); --cgroup puts it into the cgroup v2
 * directory DIR and removes DIR once it ended. A VMM that cannot be executed exits 127
 * after saying why on stderr (the VMM's log).
 *
 * It also keeps the VM: VMM is run with --keeper-fd (in place of N) on a socket through
 * which the VMM hands over a copy of its KVM descriptor, closed here after the exit file
 * is written and N closed, so that the kernel's teardown of the VM (about 15 ms of SRCU
 * grace periods) comes after the VMM's end that iovd waits for, not before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

#define EXIT_EXEC_FAILED 127 /* the shell's convention (vms/supervisor.h) */

struct monitor_options {
        const char *pid_file, *exit_file, *cgroup;
        int report_fd;
        bool pid_namespace;
        char **vmm_argv;
};

/* Write text to path through path.tmp and a rename: readers see all of it or nothing. */
static void write_atomic(const char *path, const char *text)
{
        char tmp[4096];
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
                return;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
        close(fd);
        if (ok)
                (void)rename(tmp, path);
}

/* Field 22 of /proc/PID/stat; the command (field 2) may hold spaces and parentheses, so
 * counting starts after its last ')' (proc(5)). 0 when unknown. */
static unsigned long long proc_starttime(pid_t pid)
{
        char path[64], text[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return 0;
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        const char *p = strrchr(text, ')');
        for (int field = 3; p && field <= 22; field++)
                p = strchr(p + 1, ' ');
        return p ? strtoull(p + 1, NULL, 10) : 0;
}

static void join_cgroup(const char *dir)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        /* Not fatal: limits are best effort where the cgroup fs is writable. */
        if (fd < 0 || write(fd, "0", 1) != 1)
                fprintf(stderr, "iovd-vmm-monitor: cannot join cgroup %s: %m\n", dir);
        if (fd >= 0)
                close(fd);
}

/* VMM's argv with "--keeper-fd N" after its name (NULL: out of memory). */
static char **keeper_argv(char **vmm_argv, char *fd_text)
{
        size_t n = 0;
        while (vmm_argv[n])
                n++;
        char **argv = calloc(n + 3, sizeof(*argv));
        if (!argv)
                return NULL;
        argv[0] = vmm_argv[0];
        argv[1] = (char *)"--keeper-fd";
        argv[2] = fd_text;
        for (size_t i = 1; i <= n; i++)
                argv[i + 2] = vmm_argv[i];
        return argv;
}

/* In the child: the keeper's socket takes the report pipe's place (closing the pipe). */
static _Noreturn void exec_vmm(const struct monitor_options *o, int keeper)
{
        char fd_text[16];
        snprintf(fd_text, sizeof(fd_text), "%d", o->report_fd);
        char **argv = NULL;
        if (keeper >= 0 && dup2(keeper, o->report_fd) == o->report_fd)
                argv = keeper_argv(o->vmm_argv, fd_text);
        if (!argv)
                close(o->report_fd);
        if (o->cgroup)
                join_cgroup(o->cgroup);
        execv(o->vmm_argv[0], argv ? argv : o->vmm_argv);
        fprintf(stderr, "iovd-vmm: cannot be executed: %s: %m\n", o->vmm_argv[0]);
        _exit(EXIT_EXEC_FAILED);
}

static int parse_options(int argc, char **argv, struct monitor_options *o)
{
        static const struct option options[] = {
                {"pid-file", required_argument, NULL, 'p'},
                {"exit-file", required_argument, NULL, 'e'},
                {"report-fd", required_argument, NULL, 'r'},
                {"pid-namespace", no_argument, NULL, 'n'},
                {"cgroup", required_argument, NULL, 'c'},
                {0},
        };
        int opt;
        *o = (struct monitor_options){.report_fd = -1};
        while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
                if (opt == 'p')
                        o->pid_file = optarg;
                else if (opt == 'e')
                        o->exit_file = optarg;
                else if (opt == 'r')
                        o->report_fd = atoi(optarg);
                else if (opt == 'n')
                        o->pid_namespace = true;
                else if (opt == 'c')
                        o->cgroup = optarg;
                else
                        return -EINVAL;
        }
        o->vmm_argv = argv + optind;
        if (!o->pid_file || !o->exit_file || o->report_fd < 3 || !o->vmm_argv[0])
                return -EINVAL;
        return 0;
}

/* Every descriptor from 3 up closed but a and b (a < b). */
static void close_all_but(unsigned a, unsigned b)
{
        if (a > 3)
                close_range(3, a - 1, 0);
        if (b > a + 1)
                close_range(a + 1, b - 1, 0);
        close_range(b + 1, ~0U, 0);
}

/* Fork the VMM, tell iovd its pid, and drop everything but what waiting needs: the
 * report pipe and *ret_keeper, this end of the VM's keeper socket (-1: none). */
static pid_t start_vmm(const struct monitor_options *o, int *ret_keeper)
{
        if (o->pid_namespace && unshare(CLONE_NEWPID) < 0) {
                fprintf(stderr, "iovd-vmm: no PID namespace of its own: %m\n");
                return -1;
        }
        int keeper[2] = {-1, -1};
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, keeper) < 0)
                keeper[0] = keeper[1] = -1; /* the VM runs all the same, without a keeper */
        pid_t vmm = fork();
        if (vmm == 0)
                exec_vmm(o, keeper[1]);
        if (keeper[1] >= 0)
                close(keeper[1]);
        if (vmm > 0) {
                char line[64];
                snprintf(line, sizeof(line), "%d %llu\n", (int)vmm, proc_starttime(vmm));
                write_atomic(o->pid_file, line);
        }
        (void)!write(o->report_fd, &vmm, sizeof(vmm));
        /* Nothing iovd passed stays open here but the report pipe (its hang-up is iovd's
         * news of the exit file), nor stdio (the VMM's log); and the keeper's socket. */
        int keep = keeper[0] >= 0 ? keeper[0] : o->report_fd;
        close_all_but((unsigned)(keep < o->report_fd ? keep : o->report_fd),
                      (unsigned)(keep < o->report_fd ? o->report_fd : keep));
        *ret_keeper = keeper[0];
        int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd >= 0) {
                dup2(null_fd, STDIN_FILENO);
                dup2(null_fd, STDOUT_FILENO);
                dup2(null_fd, STDERR_FILENO);
                close(null_fd);
        }
        (void)!chdir("/");
        return vmm;
}

/* The VM's descriptor if the VMM hands it over, -1 once it will not: its end of the
 * socket closed (at its sandbox, or its end) without it. */
static int keeper_receive(int keeper)
{
        if (keeper < 0)
                return -1;
        char byte;
        int fd;
        ssize_t n;
        do
                n = util_recv_with_fd(keeper, &byte, 1, 0, &fd);
        while (n == -EINTR);
        close(keeper);
        return fd;
}

int main(int argc, char **argv)
{
        struct monitor_options o;
        if (parse_options(argc, argv, &o) < 0) {
                fprintf(stderr, "Usage: iovd-vmm-monitor --pid-file FILE --exit-file FILE "
                                "--report-fd N [--pid-namespace] [--cgroup DIR] -- VMM "
                                "[ARGS...]\n");
                return 2;
        }
        /* Away from iovd as a parent: re-parented to init (or a subreaper) at once. */
        pid_t self = fork();
        if (self < 0) {
                fprintf(stderr, "iovd-vmm: its monitor cannot leave iovd: %m\n");
                return 1;
        }
        if (self > 0)
                _exit(0);
        int keeper = -1;
        pid_t vmm = start_vmm(&o, &keeper);
        if (vmm < 0)
                return 1;
        int vm_fd = keeper_receive(keeper);
        int status;
        while (waitpid(vmm, &status, 0) < 0)
                if (errno != EINTR)
                        return 1;
        char line[32];
        if (WIFSIGNALED(status))
                snprintf(line, sizeof(line), "signal %d\n", WTERMSIG(status));
        else
                snprintf(line, sizeof(line), "exited %d\n", WEXITSTATUS(status));
        write_atomic(o.exit_file, line);
        close(o.report_fd); /* before the VM's teardown and the cgroup's removal: iovd
                               need not wait for either */
        if (vm_fd >= 0)
                close(vm_fd); /* the VM's last descriptor: the kernel frees it here */
        if (o.cgroup)
                (void)rmdir(o.cgroup);
        return 0;
}
