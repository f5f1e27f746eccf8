/* SPDX-License-Identifier: MIT */
/* Helpers of the vmm-guest tests: see guest-run.h. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "guest-run.h"
#include "util/util.h"
#include "vmm/contract/vm-contract.h"

#define RUN_TIMEOUT_USEC (60ULL * 1000000)

void guest_skip_without_kvm(void)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                cr_skip_test("/dev/kvm cannot be opened (%s): no KVM on this machine",
                             strerror(errno));
        close(fd);
}

char *guest_payload(const char *name)
{
        const char *dir = getenv("GUEST_DIR");
        cr_assert_not_null(dir, "GUEST_DIR is not set (run through meson test)");
        return util_strdup_printf("%s/%s.bzImage", dir, name);
}

pid_t guest_spawn_vmm(const char *const *args, int in_fd, int out_fd, int err_fd)
{
        const char *vmm = getenv("IOVD_VMM");
        cr_assert_not_null(vmm, "IOVD_VMM is not set (run through meson test)");
        const char *argv[32] = {vmm};
        for (size_t i = 0; args[i] && i < 30; i++)
                argv[i + 1] = args[i];
        pid_t pid = fork();
        cr_assert_geq(pid, 0, "fork failed: %s", strerror(errno));
        if (pid == 0) {
                /* As under systemd: no TZ, so libc would read /etc/localtime lazily, which
                 * the sandbox must not need. */
                unsetenv("TZ");
                int null = open("/dev/null", O_RDWR);
                dup2(in_fd >= 0 ? in_fd : null, 0);
                dup2(out_fd >= 0 ? out_fd : null, 1);
                dup2(err_fd >= 0 ? err_fd : null, 2);
                execv(vmm, (char *const *)argv);
                _exit(127);
        }
        return pid;
}

int guest_wait(pid_t pid)
{
        int wstatus;
        cr_assert_eq(waitpid(pid, &wstatus, 0), pid, "waitpid %d: %s", (int)pid, strerror(errno));
        return wstatus;
}

static void drain(int fd, char *buf, size_t *len, size_t size, bool *open_)
{
        ssize_t n = read(fd, buf + *len, size - 1 - *len);
        if (n <= 0) {
                *open_ = false;
                return;
        }
        *len += (size_t)n;
        buf[*len] = '\0';
}

/* The stats line is read by the contract's own parser, as iovd reads it. */
static void parse_stats(struct run_result *res)
{
        if (vm_stats_line_find(res->err, &res->stats) < 0)
                res->stats = NULL;
}

void guest_run_vmm(const char *const *args, struct run_result *res)
{
        memset(res, 0, sizeof(*res));
        int out[2], err[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
        pid_t pid = guest_spawn_vmm(args, -1, out[1], err[1]);
        close(out[1]);
        close(err[1]);

        bool out_open = true, err_open = true;
        uint64_t deadline = util_now_usec() + RUN_TIMEOUT_USEC;
        while ((out_open || err_open) && util_now_usec() < deadline) {
                struct pollfd p[2] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                                      {.fd = err_open ? err[0] : -1, .events = POLLIN}};
                if (poll(p, 2, 500) <= 0)
                        continue;
                if (p[0].revents)
                        drain(out[0], res->out, &res->out_len, sizeof(res->out), &out_open);
                if (p[1].revents)
                        drain(err[0], res->err, &res->err_len, sizeof(res->err), &err_open);
        }
        if (out_open || err_open)
                kill(pid, SIGKILL);
        int wstatus = guest_wait(pid);
        close(out[0]);
        close(err[0]);
        res->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        parse_stats(res);
}

void guest_read_line(int fd, char *line, size_t size)
{
        size_t len = 0;
        while (len < size - 1 && read(fd, line + len, 1) == 1 && line[len] != '\n')
                len++;
        line[len] = '\0';
}

int64_t guest_stat(const struct run_result *res, const char *group, const char *key)
{
        struct json_object *g, *v;
        if (!res->stats || !json_object_object_get_ex(res->stats, group, &g))
                return -1;
        if (!key)
                return json_object_get_int64(g);
        if (!json_object_object_get_ex(g, key, &v))
                return -1;
        return json_object_get_int64(v);
}

void guest_expect_stat(const struct run_result *res, const char *group, const char *key,
                       int64_t min, int64_t max)
{
        int64_t v = guest_stat(res, group, key);
        cr_expect(v >= min && v <= max, "stats %s.%s is %lld, expected %lld..%lld", group,
                  key ? key : "", (long long)v, (long long)min, (long long)max);
}

int64_t guest_marker_usec(const struct run_result *res, unsigned index)
{
        struct json_object *markers = NULL, *m, *v;
        if (!res->stats || !json_object_object_get_ex(res->stats, "markers", &markers) ||
            !(m = json_object_array_get_idx(markers, index)) ||
            !json_object_object_get_ex(m, "usec", &v))
                return -1;
        return json_object_get_int64(v);
}

void idle_vmm_start(struct idle_vmm *v, bool control, int err_fd)
{
        _cleanup_free_ char *k = guest_payload("idle");
        v->sock = NULL;
        if (control) {
                snprintf(v->dir, sizeof(v->dir), "/tmp/iovd-vmm-ctl-XXXXXX");
                cr_assert_not_null(mkdtemp(v->dir), "mkdtemp: %s", strerror(errno));
                v->sock = util_strdup_printf("%s/control", v->dir);
        }
        int out[2];
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
        const char *args[] = {"--kernel", k, "--memory", "128", "--control-socket", v->sock, NULL};
        if (!control)
                args[4] = NULL;
        v->pid = guest_spawn_vmm(args, -1, out[1], err_fd);
        close(out[1]);
        v->out = out[0];
        char line[16];
        guest_read_line(v->out, line, sizeof(line));
        cr_assert_str_eq(line, "idle", "payload output \"%s\"", line);
}

int idle_vmm_wait(struct idle_vmm *v)
{
        int wstatus = guest_wait(v->pid);
        close(v->out);
        if (v->sock) {
                unlink(v->sock);
                rmdir(v->dir);
                free(v->sock);
        }
        return wstatus;
}

int control_connect(const char *sock)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", sock,
                     strerror(errno));
        return fd;
}

struct json_object *control(int fd, const char *command)
{
        const char *shown = command ? command : "";
        if (command) {
                char line[256];
                snprintf(line, sizeof(line), "%s\n", command);
                cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
        }
        static char buf[8192];
        size_t len = 0;
        while (len < sizeof(buf) - 1) {
                ssize_t n = read(fd, buf + len, 1);
                cr_assert_gt(n, 0, "control socket closed after \"%s\"", shown);
                if (buf[len] == '\n')
                        break;
                len++;
        }
        buf[len] = '\0';
        struct json_object *o = json_tokener_parse(buf);
        cr_assert_not_null(o, "reply to \"%s\" is not JSON: %s", shown, buf);
        return o;
}

const char *field(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "(none)";
}

const char *error_code(struct json_object *o)
{
        struct json_object *e;
        return json_object_object_get_ex(o, "error", &e) ? field(e, "code") : "(none)";
}
