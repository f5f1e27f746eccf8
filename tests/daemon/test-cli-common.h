/* SPDX-License-Identifier: MIT */
/*
 * Shared by the iovctl daemon-level tests: run the real iovctl ($IOVCTL_BINARY, set by
 * meson) against a socket, with stdout and stderr captured in files, and small helpers to
 * read its tables.
 */
#pragma once

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

struct ctl {
        int status; /* exit status, 128 + signal, or -1 when it had to be killed */
        char *out;
        char *err;
};

static inline void ctl_clear(struct ctl *c)
{
        free(c->out);
        free(c->err);
        *c = (struct ctl){0};
}

/* Start iovctl --socket SOCKET ARGS... in cwd (NULL: ours) with stdout and stderr going to
 * DIR/ctl.out and DIR/ctl.err. */
static inline pid_t ctl_spawn(const char *socket, const char *dir, const char *cwd,
                              const char *const *args)
{
        const char *binary = getenv("IOVCTL_BINARY");
        cr_assert_not_null(binary, "IOVCTL_BINARY is not set (meson sets it)");
        const char *argv[40] = {binary, "--socket", socket};
        size_t n = 3;
        for (; args[n - 3] && n < ARRAY_SIZE(argv) - 1; n++)
                argv[n] = args[n - 3];
        argv[n] = NULL;

        pid_t pid = fork();
        cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                _cleanup_free_ char *out = util_path_join(dir, "ctl.out", NULL);
                _cleanup_free_ char *err = util_path_join(dir, "ctl.err", NULL);
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
                        _exit(127);
                if (cwd && chdir(cwd) < 0)
                        _exit(127);
                execv(binary, (char *const *)argv);
                _exit(127);
        }
        return pid;
}

/* Wait for the child (timeout_ms at most, then SIGKILL) and collect its output. */
static inline void ctl_collect(struct ctl *c, const char *dir, pid_t pid, unsigned timeout_ms)
{
        int wstatus = 0;
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        pid_t r;

        c->status = -1;
        while ((r = waitpid(pid, &wstatus, WNOHANG)) == 0 && util_now_usec() < deadline)
                util_sleep_usec(2000);
        if (r == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        } else if (r == pid) {
                c->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        }
        _cleanup_free_ char *out = util_path_join(dir, "ctl.out", NULL);
        _cleanup_free_ char *err = util_path_join(dir, "ctl.err", NULL);
        cr_assert_eq(util_read_file(out, 16 << 20, &c->out, NULL), 0, "no stdout file");
        cr_assert_eq(util_read_file(err, 1 << 20, &c->err, NULL), 0, "no stderr file");
}

/* Run iovctl with the arguments (NULL-terminated) to completion (20 s at most). */
static inline void ctl_run(struct ctl *c, const char *socket, const char *dir, const char *cwd,
                           const char *first, ...)
{
        const char *args[32];
        size_t n = 0;
        va_list ap;
        va_start(ap, first);
        for (const char *a = first; a && n < ARRAY_SIZE(args) - 1; a = va_arg(ap, const char *))
                args[n++] = a;
        va_end(ap);
        args[n] = NULL;
        ctl_collect(c, dir, ctl_spawn(socket, dir, cwd, args), 20000);
}

static inline size_t count_lines(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* The table row that starts with key followed by a space, or NULL. */
static inline const char *table_row(const char *table, const char *key)
{
        size_t len = strlen(key);
        for (const char *line = table; line && *line; line = strchr(line, '\n'), line += !!line)
                if (strncmp(line, key, len) == 0 && line[len] == ' ')
                        return line;
        return NULL;
}

/* The value column of a detail view's row, up to the end of the line (caller frees). */
static inline char *detail_value(const char *out, const char *key)
{
        const char *row = table_row(out, key);
        if (!row)
                return strdup("(no row)");
        row += strlen(key);
        row += strspn(row, " ");
        return strndup(row, strcspn(row, "\n"));
}

/* Wait until the file holds text (timeout_ms at most). */
static inline bool wait_for_text(const char *path, const char *text, unsigned timeout_ms)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        while (util_now_usec() < deadline) {
                _cleanup_free_ char *content = NULL;
                if (util_read_file(path, 1 << 20, &content, NULL) == 0 && strstr(content, text))
                        return true;
                util_sleep_usec(10000);
        }
        return false;
}
