/* SPDX-License-Identifier: MIT */
/*
 * util: small helpers shared by every iovd module: ownership (cleanup attributes),
 * sysfs-style file I/O, atomic durable writes, path joining, logging and time.
 *
 * Conventions (see STYLE.md): functions return 0 or a negative errno; outputs are named
 * ret_* and written only on success; destructors accept NULL.
 */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- ownership ------------------------------------------------------------------------ */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void free_ptr(void *p)
{
        free(*(void **)p);
}

static inline void close_fd_ptr(const int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

#define _cleanup_(f)    __attribute__((cleanup(f)))
#define _cleanup_free_  _cleanup_(free_ptr)
#define _cleanup_close_ _cleanup_(close_fd_ptr)
#define _unused_        __attribute__((unused))
#define _printf_(a, b)  __attribute__((format(printf, a, b)))

/* Hand ownership out of a cleanup variable: the variable is left NULL / -1. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _taken = (p);                                                        \
                (p) = NULL;                                                                        \
                _taken;                                                                            \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _taken = (fd);                                                                 \
                (fd) = -1;                                                                         \
                _taken;                                                                            \
        })

/* Declare a cleanup helper for a type with a destructor that accepts NULL. */
#define DEFINE_CLEANUP_FUNC(type, func)                                                            \
        static inline void func##p(type **p)                                                       \
        {                                                                                          \
                func(*p);                                                                          \
        }

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

/* ---- files ---------------------------------------------------------------------------- */

/* Read a whole small file (sysfs attribute, state file) into a NUL-terminated string.
 * Files longer than max_size give -EFBIG. ret_size may be NULL. */
int util_read_file(const char *path, size_t max_size, char **ret, size_t *ret_size);

/* The same from an open fd (read from its current offset to the end; fd stays open). */
int util_read_fd(int fd, size_t max_size, char **ret, size_t *ret_size);

/* A file named either by path or, as "fd:N", by a descriptor this process inherited
 * (iovd hands iovd-vmm the files of a VM that way: docs/architecture.md). "fd:N" gives a
 * new close-on-exec copy of N (flags do not apply: N was opened with them); a path is
 * opened with flags | O_CLOEXEC | O_NOCTTY. -EBADF for "fd:" without a number >= 3. */
#define UTIL_FD_PREFIX "fd:"
int util_open_inherited(const char *path, int flags, int *ret_fd);

/* Read a one-line file and strip the trailing newline and white space. */
int util_read_line(const char *path, char **ret);

/* Parse an unsigned integer from a one-line file; base 0 accepts 0x, decimal. */
int util_read_u64(const char *path, uint64_t *ret);
int util_read_s64(const char *path, int64_t *ret);

/* Write a string to an existing file (a sysfs attribute): never creates it; O_TRUNC so a
 * plain file in a generated tree holds exactly the value (sysfs ignores it); one
 * write(2), a short write is -EIO. */
int util_write_attr(const char *path, const char *value);

/* Durably replace path with data: write a temporary file in the same directory, fsync
 * it, rename it over path, fsync the directory. Readers see the old or the new file,
 * never a mix, also after a crash. */
int util_write_file_atomic(const char *path, const void *data, size_t size, unsigned mode);
/* The same without the fsyncs, for runtime files (RUN_DIR) that need not outlive a crash of
 * the host: readers still see the old or the new file, never a mix. */
int util_write_file_replace(const char *path, const void *data, size_t size, unsigned mode);

/* write(2) until every byte is out, retrying on EINTR and short writes. */
int util_write_all(int fd, const void *data, size_t size);

/* recvmsg(2) of up to size bytes into buf with flags (MSG_CMSG_CLOEXEC is added), keeping
 * one descriptor passed along with them (SCM_RIGHTS, unix(7)) in *ret_fd (-1: none came).
 * Returns the bytes read (0: the peer is gone) or -errno; *ret_fd is set either way. */
ssize_t util_recv_with_fd(int sock, void *buf, size_t size, int flags, int *ret_fd);

/* mkdir -p with mode for the components created. */
int util_mkdir_p(const char *path, unsigned mode);

/* Read the target of a symbolic link (relative or absolute) and return its last
 * component, e.g. ".../iommu_groups/7" -> "7". */
int util_readlink_basename(const char *path, char **ret);

/* ---- strings and paths ---------------------------------------------------------------- */

/* Join path components with single slashes; NULL ends the list. Returns NULL on OOM. */
char *util_path_join(const char *first, ...) __attribute__((sentinel));

/* asprintf that returns the string or NULL. */
char *util_strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* For parsers that explain a refusal: replace *ret_error (may be NULL: nothing kept) with
 * the formatted message (malloc'ed; NULL when out of memory) and return -EINVAL. */
int util_error_printf(char **ret_error, const char *fmt, ...) _printf_(2, 3);

/* The value of one hexadecimal digit, -1 for anything else. */
int util_hex_digit(char c);

/* Strict decimal / hex parsing of a whole string: no sign, no spaces, no trailing text. */
int util_parse_u64(const char *s, int base, uint64_t *ret);

/* Compare two byte strings in time independent of where they differ (tokens). */
bool util_consttime_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* ---- time ----------------------------------------------------------------------------- */

uint64_t util_now_usec(void);      /* CLOCK_MONOTONIC */
uint64_t util_realtime_usec(void); /* CLOCK_REALTIME */
void util_sleep_usec(uint64_t usec);

/* ---- logging (daemon/ and api/ only; libraries never log above debug) ----------------- */

enum util_log_level {
        UTIL_LOG_ERR = 3,
        UTIL_LOG_WARNING = 4,
        UTIL_LOG_NOTICE = 5,
        UTIL_LOG_INFO = 6,
        UTIL_LOG_DEBUG = 7,
};

void util_log_set_max_level(int level);
int util_log_get_max_level(void);
/* Logs "<level>message" to stderr (journald reads the prefix). Returns -abs(error) when
 * error != 0, so callers can `return util_log_errno(LOG_ERR, r, "...: %m")`; %m prints
 * strerror(error). */
int util_log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
        _printf_(5, 6);

#define log_full_errno(level, error, ...)                                                          \
        util_log_internal(level, error, __FILE__, __LINE__, __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(UTIL_LOG_ERR, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(UTIL_LOG_WARNING, error, __VA_ARGS__)
#define log_debug_errno(error, ...)   log_full_errno(UTIL_LOG_DEBUG, error, __VA_ARGS__)
#define log_error(...)                log_full_errno(UTIL_LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...)              log_full_errno(UTIL_LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...)               log_full_errno(UTIL_LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...)                 log_full_errno(UTIL_LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)                log_full_errno(UTIL_LOG_DEBUG, 0, __VA_ARGS__)
