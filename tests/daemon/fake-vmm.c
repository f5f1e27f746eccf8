/* SPDX-License-Identifier: MIT */
/*
 * fake-vmm: what iovd sees of an iovd-vmm, for the tests whose VMs pass through functions
 * of a generated sysfs tree (no VFIO behind them): the same command line (--config,
 * --control-socket, --serial), a control socket (inherited as fd:N, as iovd passes it, or
 * a path) answering status, stats, pause, resume
 * and stop (vmm/vmm.h's protocol, one line each way), exit status 0 after a stop and on
 * SIGTERM. It checks nothing of its configuration: the tests read config.json themselves.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *arg_value(int argc, char **argv, const char *name)
{
        for (int i = 1; i + 1 < argc; i++)
                if (strcmp(argv[i], name) == 0)
                        return argv[i + 1];
        return NULL;
}

static int listen_on(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -1;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        (void)unlink(path);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                return -1;
        return fd;
}

/* One command from a client; returns 1 when the VMM is to end. */
static int serve(int client, char *state)
{
        char line[256];
        ssize_t n = read(client, line, sizeof(line) - 1);
        if (n <= 0)
                return 0;
        line[n] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        char reply[256];
        int end = 0;
        if (strcmp(line, "status") == 0)
                snprintf(reply, sizeof(reply), "{\"state\":\"%s\"}\n", state);
        else if (strcmp(line, "stats") == 0)
                snprintf(reply, sizeof(reply), "{\"exits\":{},\"markers\":[]}\n");
        else if (strcmp(line, "pause") == 0 || strcmp(line, "resume") == 0) {
                strcpy(state, line[0] == 'p' ? "paused" : "running");
                snprintf(reply, sizeof(reply), "{\"ok\":true}\n");
        } else if (strcmp(line, "stop") == 0 || strcmp(line, "kill") == 0) {
                snprintf(reply, sizeof(reply), "{\"ok\":true}\n");
                end = 1;
        } else
                snprintf(reply, sizeof(reply),
                         "{\"error\":{\"code\":\"unknown_command\",\"message\":\"%.64s\"}}\n",
                         line);
        (void)!write(client, reply, strlen(reply));
        return end;
}

int main(int argc, char **argv)
{
        const char *config = arg_value(argc, argv, "--config");
        const char *control = arg_value(argc, argv, "--control-socket");
        if (!config || !control) {
                fprintf(stderr, "fake-vmm: --config and --control-socket are required\n");
                return 2;
        }
        signal(SIGTERM, SIG_DFL);
        /* iovd binds the control socket itself and passes it as fd:N (vms/supervisor.c);
         * a path is for a run by hand. */
        int fd = strncmp(control, "fd:", 3) == 0 ? atoi(control + 3) : listen_on(control);
        if (fd < 0) {
                fprintf(stderr, "fake-vmm: cannot listen on %s: %s\n", control, strerror(errno));
                return 1;
        }
        fprintf(stderr, "fake-vmm: running %s\n", config);
        char state[16] = "running";
        for (;;) {
                int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (client < 0)
                        continue;
                int end = serve(client, state);
                close(client);
                if (end) {
                        fprintf(stderr, "iovd-vmm: stopped: stopped on request\n");
                        return 0;
                }
        }
}
