/* SPDX-License-Identifier: MIT */
/* File helpers for sysfs attributes and durable state files. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "util/util.h"

int util_read_file(const char *path, size_t max_size, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return util_read_fd(fd, max_size, ret, ret_size);
}

int util_open_inherited(const char *path, int flags, int *ret_fd)
{
        uint64_t n;
        if (strncmp(path, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0) {
                if (util_parse_u64(path + strlen(UTIL_FD_PREFIX), 10, &n) < 0 || n < 3 ||
                    n > INT_MAX)
                        return -EBADF;
                /* A copy: the inherited one is closed with the others at the sandbox. */
                int fd = fcntl((int)n, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                *ret_fd = fd;
                return 0;
        }
        int fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

int util_read_fd(int fd, size_t max_size, char **ret, size_t *ret_size)
{
        size_t allocated = 4096, size = 0;
        _cleanup_free_ char *buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                if (size + 1 >= allocated) {
                        if (allocated > max_size)
                                return -EFBIG;
                        allocated *= 2;
                        char *bigger = realloc(buf, allocated);
                        if (!bigger)
                                return -ENOMEM;
                        buf = bigger;
                }
                ssize_t n = read(fd, buf + size, allocated - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t)n;
                if (size > max_size)
                        return -EFBIG;
        }
        buf[size] = '\0';
        if (ret_size)
                *ret_size = size;
        *ret = TAKE_PTR(buf);
        return 0;
}

int util_read_line(const char *path, char **ret)
{
        char *s;
        int r = util_read_file(path, 64 * 1024, &s, NULL);
        if (r < 0)
                return r;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = '\0';
        *ret = s;
        return 0;
}

int util_read_u64(const char *path, uint64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        int r = util_read_line(path, &s);
        if (r < 0)
                return r;
        return util_parse_u64(s, 0, ret);
}

int util_read_s64(const char *path, int64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        int r = util_read_line(path, &s);
        if (r < 0)
                return r;
        bool negative = s[0] == '-';
        uint64_t v;
        r = util_parse_u64(s + negative, 10, &v);
        if (r < 0)
                return r;
        if (v > (uint64_t)INT64_MAX)
                return -ERANGE;
        *ret = negative ? -(int64_t)v : (int64_t)v;
        return 0;
}

int util_write_attr(const char *path, const char *value)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t len = strlen(value);
        ssize_t n;
        do
                n = write(fd, value, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t)n != len)
                return -EIO;
        return 0;
}

static int fsync_parent_dir(const char *path)
{
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

int util_write_all(int fd, const void *data, size_t size)
{
        const char *p = data;
        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t)n;
        }
        return 0;
}

/* Write data to a temporary file beside path and rename it over path; fsync the file
 * first when durable. */
static int write_file_rename(const char *path, const void *data, size_t size, unsigned mode,
                             bool durable)
{
        _cleanup_free_ char *tmp = util_strdup_printf("%s.tmp.%d", path, (int)getpid());
        if (!tmp)
                return -ENOMEM;

        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        int r = util_write_all(fd, data, size);
        if (r == 0 && durable && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

int util_write_file_atomic(const char *path, const void *data, size_t size, unsigned mode)
{
        int r = write_file_rename(path, data, size, mode, true);
        return r < 0 ? r : fsync_parent_dir(path);
}

int util_write_file_replace(const char *path, const void *data, size_t size, unsigned mode)
{
        return write_file_rename(path, data, size, mode, false);
}

int util_mkdir_p(const char *path, unsigned mode)
{
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        for (char *p = copy + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(copy, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(copy, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int util_readlink_basename(const char *path, char **ret)
{
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = '\0';
        const char *slash = strrchr(target, '/');
        char *s = strdup(slash ? slash + 1 : target);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

ssize_t util_recv_with_fd(int sock, void *buf, size_t size, int flags, int *ret_fd)
{
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = control.buf,
                           .msg_controllen = sizeof(control.buf)};
        *ret_fd = -1;
        ssize_t n = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -errno;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
        return n;
}
