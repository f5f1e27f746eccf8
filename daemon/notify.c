/* SPDX-License-Identifier: MIT */
/*
 * notify: the sd_notify protocol, written out (no libsystemd): one datagram with
 * "READY=1" or "STOPPING=1" to the AF_UNIX socket named by $NOTIFY_SOCKET; a leading '@'
 * names an abstract socket (sd_notify(3)). Several "VAR=value" lines may go in one
 * datagram. Sending never blocks: when the receiver's queue is full (a manager not
 * reading) the message is dropped with -EAGAIN rather than stall a rescan or the loop.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "daemon/daemon.h"

int daemon_notify(const char *state)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (!path || !path[0])
                return 0;
        size_t len = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, len);
        if (path[0] == '@')
                sa.sun_path[0] = 0;

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        socklen_t sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
        if (sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
                   sa_len) < 0)
                return -errno;
        return 0;
}
