/* SPDX-License-Identifier: MIT */
/*
 * pty-run COLUMNS COMMAND [ARG...]: run COMMAND with stdin, stdout and stderr on a new
 * pseudo-terminal of COLUMNS x 24 (its controlling terminal), copy everything it writes
 * to our stdout as it is (the terminal's CR LF included), and exit with its status. How
 * the tests see iovctl on a terminal without one (tests/daemon/test-cli-tty.sh).
 */
#include <errno.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child: a session of its own with the pty's slave as its controlling terminal. */
static void run_child(int slave, char **argv)
{
        setsid();
        if (ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 || dup2(slave, 1) < 0 ||
            dup2(slave, 2) < 0)
                _exit(126);
        if (slave > 2)
                close(slave);
        execvp(argv[0], argv);
        _exit(127);
}

/* Copy until the slave side is closed by every process (read fails with EIO). */
static void copy_output(int master)
{
        char buf[4096];
        for (;;) {
                ssize_t n = read(master, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
                        return;
        }
}

int main(int argc, char **argv)
{
        int master, slave, status;
        struct winsize ws = {.ws_row = 24};

        if (argc < 3 || atoi(argv[1]) <= 0) {
                fprintf(stderr, "usage: pty-run COLUMNS COMMAND [ARG...]\n");
                return 2;
        }
        ws.ws_col = (unsigned short)atoi(argv[1]);
        if (openpty(&master, &slave, NULL, NULL, &ws) < 0) {
                perror("openpty");
                return 125;
        }
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                return 125;
        }
        if (pid == 0)
                run_child(slave, argv + 2);
        close(slave);
        copy_output(master);
        fflush(stdout);
        if (waitpid(pid, &status, 0) < 0)
                return 125;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
