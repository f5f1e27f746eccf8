/* SPDX-License-Identifier: MIT */
/*
 * Send one command to an iovd-vmm control socket and print the reply line (for scripts
 * and the lab, where no other Unix-socket client exists).
 *
 * Usage: vmm-control SOCKET COMMAND...   (the words are joined with spaces)
 * Exit status: 0 when the reply has no "error" member, 1 otherwise, 2 on usage.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: vmm-control SOCKET COMMAND...\n");
                return 2;
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "vmm-control: socket path too long\n");
                return 2;
        }
        strcpy(sa.sun_path, argv[1]);
        char line[1024] = "";
        for (int i = 2; i < argc; i++) {
                if (strlen(line) + strlen(argv[i]) + 2 >= sizeof(line)) {
                        fprintf(stderr, "vmm-control: command too long\n");
                        return 2;
                }
                strcat(line, argv[i]);
                strcat(line, i + 1 < argc ? " " : "\n");
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror(argv[1]);
                return 1;
        }
        if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
                perror("write");
                return 1;
        }
        char reply[65536];
        size_t len = 0;
        while (len < sizeof(reply) - 1) {
                ssize_t n = read(fd, reply + len, 1);
                if (n <= 0 || reply[len] == '\n')
                        break;
                len++;
        }
        reply[len] = '\0';
        close(fd);
        puts(reply);
        return strstr(reply, "\"error\"") ? 1 : 0;
}
