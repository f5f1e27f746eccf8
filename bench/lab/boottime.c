/* SPDX-License-Identifier: MIT */
/*
 * boottime: time from a VMM's start to the first line of its output that contains a
 * marker, measured from outside the VMM so iovd-vmm and QEMU are timed the same way.
 * The clock starts just before fork(); the VMM's stdout and stderr go through a pipe that
 * is read line by line (and copied to LOG). Once the marker is seen, the VMM gets GRACE
 * seconds to exit on its own (the guest powers off), then SIGKILL.
 *
 * Usage: boottime MARKER LOG TIMEOUT_S GRACE_S -- COMMAND [ARGS...]
 * Prints "boot_ms=X exit=Y" (exit: the VMM's status, or "killed"); with BOOTTIME_ANNOUNCE
 * set, prints its value on stderr the moment the marker is seen; with BOOTTIME_AT_MARKER
 * set, runs it with /bin/sh then, while the VMM still runs (KVM's statistics of a VM
 * leave debugfs's sums when the VM ends: bench/lab/scenario-boot.sh reads them here). Exit status 0
 * when the marker was seen, 1 when not (timeout or the VMM ended first), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static pid_t spawn(char **argv, int *ret_fd)
{
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY);
                if (null < 0 || dup2(null, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                dprintf(fds[1], "boottime: cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(fds[1]);
        if (pid < 0) {
                close(fds[0]);
                return -1;
        }
        *ret_fd = fds[0];
        return pid;
}

/* Reads the VMM's output until the marker shows up, the pipe closes or the deadline
 * passes; returns the time of the marker in ms since start, or a negative number. */
static double wait_marker(int fd, FILE *log, const char *marker, double start, double deadline)
{
        char line[4096];
        size_t used = 0;
        for (;;) {
                double left = deadline - now_ms();
                if (left <= 0)
                        return -1;
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, (int)left + 1) <= 0)
                        continue;
                ssize_t n = read(fd, line + used, sizeof(line) - 1 - used);
                if (n <= 0)
                        return -1;
                double t = now_ms();
                fwrite(line + used, 1, (size_t)n, log);
                used += (size_t)n;
                line[used] = '\0';
                if (strstr(line, marker))
                        return t - start;
                /* Keep only the unfinished last line (or the tail of an over-long one). */
                char *nl = strrchr(line, '\n');
                size_t keep = nl ? used - (size_t)(nl + 1 - line) : used;
                if (keep > sizeof(line) / 2)
                        keep = strlen(marker);
                memmove(line, line + used - keep, keep);
                used = keep;
        }
}

/* After the marker: copy what is left of the output to the log until the VMM exits or
 * the grace period ends, then reap it (killing it if needed). */
static void finish(pid_t pid, int fd, FILE *log, double grace_ms, char *status, size_t size)
{
        char buf[4096];
        double deadline = now_ms() + grace_ms;
        int wstatus;
        for (;;) {
                double left = deadline - now_ms();
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0)
                        break;
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                fwrite(buf, 1, (size_t)n, log);
        }
        /* The output may end a moment before the process does: poll until the deadline. */
        do {
                if (waitpid(pid, &wstatus, WNOHANG) == pid) {
                        snprintf(status, size, "%d",
                                 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
                        return;
                }
                usleep(10000);
        } while (now_ms() < deadline);
        kill(pid, SIGKILL);
        waitpid(pid, &wstatus, 0);
        snprintf(status, size, "killed");
}

int main(int argc, char **argv)
{
        if (argc < 7 || strcmp(argv[5], "--") != 0) {
                fprintf(stderr,
                        "usage: boottime MARKER LOG TIMEOUT_S GRACE_S -- COMMAND [ARGS...]\n");
                return 2;
        }
        FILE *log = fopen(argv[2], "w");
        if (!log) {
                fprintf(stderr, "boottime: %s: %s\n", argv[2], strerror(errno));
                return 2;
        }
        int fd;
        double start = now_ms();
        pid_t pid = spawn(argv + 6, &fd);
        if (pid < 0) {
                fprintf(stderr, "boottime: fork: %s\n", strerror(errno));
                return 2;
        }
        double t = wait_marker(fd, log, argv[1], start, start + atof(argv[3]) * 1e3);
        /* Tell whoever watches stderr (the lab's console: bench/lab/cpumon.py) right away. */
        const char *announce = getenv("BOOTTIME_ANNOUNCE");
        if (t >= 0 && announce)
                fprintf(stderr, "%s\n", announce);
        const char *at_marker = getenv("BOOTTIME_AT_MARKER");
        if (t >= 0 && at_marker && system(at_marker) != 0)
                fprintf(stderr, "boottime: BOOTTIME_AT_MARKER failed\n");
        char status[16];
        finish(pid, fd, log, t < 0 ? 0 : atof(argv[4]) * 1e3, status, sizeof(status));
        fclose(log);
        if (t < 0) {
                printf("boot_ms=none exit=%s\n", status);
                return 1;
        }
        printf("boot_ms=%.1f exit=%s\n", t, status);
        return 0;
}
