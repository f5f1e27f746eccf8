/* SPDX-License-Identifier: MIT */
/*
 * listen: the sockets the API server listens on, created here and handed to
 * libmicrohttpd, so the Unix socket gets its mode before any client can connect.
 */
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "api/api.h"
#include "api/listen.h"

#define LISTEN_BACKLOG 64

static int unix_address(const char *path, struct sockaddr_un *ret)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (path[0] != '/' || strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        *ret = sa;
        return 0;
}

/* A socket file left by a daemon that died is replaced; one somebody still listens on is
 * not (that is another daemon), and a path that is not a socket is never removed. */
static int unix_remove_stale(const struct sockaddr_un *sa)
{
        struct stat st;

        if (lstat(sa->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
                return -errno;
        if (connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
                return -EADDRINUSE;
        if (errno != ECONNREFUSED)
                return -errno;
        if (unlink(sa->sun_path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int api_listen_unix(const char *path, int *ret_fd)
{
        struct sockaddr_un sa;
        int r = unix_address(path, &sa);
        if (r < 0)
                return r;
        r = unix_remove_stale(&sa);
        if (r < 0)
                return r;

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* The socket file is created by bind() with the umask applied: with 0117 it is
         * born 0660 and no other user ever sees a wider mode. */
        mode_t old = umask(0117);
        r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return -errno;
        if (chmod(path, 0660) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
                r = -errno;
                unlink(path);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* "HOST:PORT" or "[V6]:PORT". */
static int tcp_split(const char *spec, char **ret_host, char **ret_port)
{
        const char *colon = strrchr(spec, ':');
        if (!colon || colon == spec || !colon[1])
                return -EINVAL;
        size_t host_len = (size_t)(colon - spec);
        const char *host = spec;
        if (spec[0] == '[') {
                if (host_len < 3 || spec[host_len - 1] != ']')
                        return -EINVAL;
                host++;
                host_len -= 2;
        }
        uint64_t port;
        if (util_parse_u64(colon + 1, 10, &port) < 0 || port > 65535)
                return -EINVAL;
        char *h = strndup(host, host_len);
        char *p = strdup(colon + 1);
        if (!h || !p) {
                free(h);
                free(p);
                return -ENOMEM;
        }
        *ret_host = h;
        *ret_port = p;
        return 0;
}

int api_listen_tcp(const char *spec, int *ret_fd)
{
        _cleanup_free_ char *host = NULL, *port = NULL;
        int r = tcp_split(spec, &host, &port);
        if (r < 0)
                return r;

        struct addrinfo hints = {
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST,
        };
        struct addrinfo *ai = NULL;
        if (getaddrinfo(host, port, &hints, &ai) != 0)
                return -EADDRNOTAVAIL;

        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
                r = -errno;
                freeaddrinfo(ai);
                return r;
        }
        freeaddrinfo(ai);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int api_listen_parse(const char *listen, bool *ret_tcp, const char **ret_rest)
{
        if (strncmp(listen, "unix:", 5) == 0 && listen[5] == '/') {
                *ret_tcp = false;
                *ret_rest = listen + 5;
                return 0;
        }
        if (strncmp(listen, "tcp:", 4) == 0 && listen[4]) {
                *ret_tcp = true;
                *ret_rest = listen + 4;
                return 0;
        }
        return -EINVAL;
}

/* Bits a token carries by its alphabet: 4 per character when it is all hex digits, else
 * 6 (base64url or base64, the b64token of RFC 6750 §2.1, padding not counted); 0 when a
 * character cannot stand in an Authorization header's token68 at all. */
static size_t token_bits(const char *token)
{
        size_t n = strspn(token, "0123456789abcdefABCDEF");
        if (token[n] == 0)
                return 4 * n;
        n = strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
        size_t padding = strspn(token + n, "=");
        return token[n + padding] == 0 ? 6 * n : 0;
}

int api_token_read(const char *path, char **ret, unsigned *ret_mode)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_mode & 0077) {
                if (ret_mode)
                        *ret_mode = st.st_mode & 07777;
                return -EPERM;
        }
        _cleanup_free_ char *token = NULL;
        int r = util_read_line(path, &token);
        if (r < 0)
                return r;
        if (token_bits(token) < IOV_API_TOKEN_MIN_BITS)
                return -EINVAL;
        *ret = TAKE_PTR(token);
        return 0;
}
