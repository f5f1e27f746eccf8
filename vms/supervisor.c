/* SPDX-License-Identifier: MIT */
/* supervisor: start iovd-vmm detached from iovd, find it again, and read how it ended. */
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "config.h"
#include "vmm/contract/vm-contract.h"
#include "vms/supervisor.h"
#include "util/util.h"

#define LOG_TAIL_MAX (64 * 1024)

extern char **environ;

void supervisor_exit_clear(struct iov_vmm_exit *e)
{
        if (!e)
                return;
        free(e->reason);
        json_object_put(e->stats);
        *e = (struct iov_vmm_exit){0};
}

int supervisor_fds_add(struct iov_vmm_fds *fds, int fd, char **ret_name)
{
        if (fds->n == IOV_VMM_PASSED_FDS_MAX) {
                close(fd);
                return -EMFILE;
        }
        char *name = util_strdup_printf(UTIL_FD_PREFIX "%zu", IOV_VMM_FIRST_PASSED_FD + fds->n);
        if (!name) {
                close(fd);
                return -ENOMEM;
        }
        fds->fds[fds->n++] = fd;
        *ret_name = name;
        return 0;
}

void supervisor_fds_clear(struct iov_vmm_fds *fds)
{
        if (!fds)
                return;
        for (size_t i = 0; i < fds->n; i++)
                close(fds->fds[i]);
        fds->n = 0;
}

static bool is_executable(const char *path)
{
        return path && access(path, X_OK) == 0;
}

int supervisor_find_vmm(const char *configured, char **ret)
{
        if (configured && access(configured, X_OK) < 0)
                return -errno; /* the operator named it: no silent fallback */
        const char *env = configured ? configured : getenv("IOVD_VMM_BINARY");
        if (env && *env) {
                char *s = strdup(env);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                const char *dir = dirname(self);
                char *candidates[] = {
                        util_path_join(dir, "iovd-vmm", NULL),
                        util_path_join(dir, "..", "vmm", "iovd-vmm", NULL),
                };
                char *found = NULL;
                for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
                        if (!found && is_executable(candidates[i]))
                                found = TAKE_PTR(candidates[i]);
                        free(candidates[i]);
                }
                if (found) {
                        *ret = found;
                        return 0;
                }
        }
        char *s = util_path_join(IOVD_LIBEXECDIR, "iovd-vmm", NULL);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Field 22 of a /proc/PID/stat text; the command (field 2) may hold spaces and
 * parentheses, so counting starts after its last ')' (as vmm/monitor.c does). */
static int parse_starttime(const char *text, uint64_t *ret)
{
        const char *p = strrchr(text, ')');
        if (!p)
                return -EBADMSG;
        /* The space after ')' starts field 3 (state); the 20th space from there starts
         * field 22 (proc(5)). */
        for (int field = 3; field <= 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EBADMSG;
        }
        uint64_t value = 0;
        const char *digit = p + 1;
        for (; *digit >= '0' && *digit <= '9'; digit++)
                value = value * 10 + (uint64_t)(*digit - '0');
        if (digit == p + 1)
                return -EBADMSG;
        *ret = value;
        return 0;
}

/* The text of /proc/PID/stat; -ESRCH when the process is gone. */
static int proc_stat_read(pid_t pid, char **ret)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        int r = util_read_file(path, 4096, ret, NULL);
        return r == -ENOENT ? -ESRCH : r;
}

static int proc_starttime(pid_t pid, uint64_t *ret)
{
        _cleanup_free_ char *text = NULL;
        int r = proc_stat_read(pid, &text);
        if (r < 0)
                return r;
        return parse_starttime(text, ret);
}

struct spawn_plan {
        const char *monitor;
        char *argv[40];
        int log_fd, null_fd, pipe_fd;
        const struct iov_vmm_fds *fds; /* or NULL */
};

static void spawn_close_moved(int *moved, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (moved[i] >= 0)
                        close(moved[i]);
}

/* What the monitor's process does before its exec: stdio to the VMM's log, the passed
 * descriptors at IOV_VMM_FIRST_PASSED_FD.., the report pipe right after them, every other
 * one above closed. The sources are copies in moved, all above the places, so that no
 * source sits where another one must go. */
static int spawn_file_actions(const struct spawn_plan *p, const int *moved, size_t n,
                              posix_spawn_file_actions_t *fa)
{
        int r = posix_spawn_file_actions_adddup2(fa, p->null_fd, STDIN_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(fa, p->log_fd, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(fa, p->log_fd, STDERR_FILENO);
        for (size_t i = 0; r == 0 && i <= n; i++)
                r = posix_spawn_file_actions_adddup2(fa, moved[i],
                                                     IOV_VMM_FIRST_PASSED_FD + (int)i);
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(fa,
                                                             IOV_VMM_FIRST_PASSED_FD + (int)n + 1);
        return -r;
}

/* Exec the monitor as a child of iovd in a session of its own; posix_spawn, not fork: iovd's
 * memory is not copied for a process that execs at once (a fork of iovd cost about 20 ms a
 * start under load, bench/vms). iovd blocks SIGTERM/SIGINT in all threads: the monitor
 * starts with none blocked. */
static int spawn_exec_monitor(const struct spawn_plan *p, pid_t *ret_pid)
{
        size_t n = p->fds ? p->fds->n : 0;
        int moved[IOV_VMM_PASSED_FDS_MAX + 1];
        for (size_t i = 0; i <= n; i++)
                moved[i] = -1;
        int r = 0;
        for (size_t i = 0; r == 0 && i <= n; i++) {
                moved[i] = fcntl(i < n ? p->fds->fds[i] : p->pipe_fd, F_DUPFD_CLOEXEC,
                                 IOV_VMM_FIRST_PASSED_FD + (int)n + 1);
                r = moved[i] < 0 ? -errno : 0;
        }
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none;
        sigemptyset(&none);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        if (r == 0)
                r = spawn_file_actions(p, moved, n, &fa);
        if (r == 0)
                r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
        if (r == 0)
                r = -posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = -posix_spawn(ret_pid, p->monitor, &fa, &attr, p->argv, environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        spawn_close_moved(moved, n + 1);
        return r;
}

/* Start the monitor and wait for the pid of the VMM it started. The monitor leaves iovd's
 * children at once (vmm/monitor.c: its first process forks and exits), so that the VMM's
 * parent outlives any restart of iovd; iovd reaps that first process. The pipe's read end
 * is kept (ret_monitor_fd): it hangs up once the monitor wrote the exit file. */
static int spawn_fork(struct spawn_plan *plan, pid_t *ret_pid, int *ret_monitor_fd,
                      uint64_t *ret_forked_usec)
{
        int pipe_fds[2];
        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return -errno;
        _cleanup_close_ int read_fd = pipe_fds[0];
        plan->pipe_fd = pipe_fds[1];
        pid_t first = -1;
        int r = spawn_exec_monitor(plan, &first);
        close(plan->pipe_fd);
        if (r < 0)
                return r;
        if (ret_forked_usec) /* the exec is done: posix_spawn returns after it */
                *ret_forked_usec = util_now_usec();
        int status;
        while (waitpid(first, &status, 0) < 0 && errno == EINTR)
                ;
        pid_t vmm = -1;
        ssize_t n;
        do
                n = read(read_fd, &vmm, sizeof(vmm));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(vmm) || vmm <= 0)
                return -ECHILD;
        *ret_pid = vmm;
        *ret_monitor_fd = TAKE_FD(read_fd);
        return 0;
}

static int write_pid_file(const char *dir, const struct iov_vmm_process *p)
{
        _cleanup_free_ char *path = util_path_join(dir, IOV_VMM_FILE_PID, NULL);
        _cleanup_free_ char *text =
                util_strdup_printf("%d %llu\n", (int)p->pid, (unsigned long long)p->starttime);
        if (!path || !text)
                return -ENOMEM;
        /* Runtime, like the monitor's own write of it: gone with a reboot anyway. */
        return util_write_file_replace(path, text, strlen(text), 0600);
}

static void remove_in(const char *dir, const char *name)
{
        _cleanup_free_ char *path = util_path_join(dir, name, NULL);
        if (path)
                (void)unlink(path);
}

/* The monitor iovd-vmm runs under: iovd-vmm-monitor next to it (both are built into
 * vmm/ and installed into the libexec directory). */
static int spawn_find_monitor(const char *vmm, char **ret)
{
        _cleanup_free_ char *copy = strdup(vmm);
        if (!copy)
                return -ENOMEM;
        char *path = util_path_join(dirname(copy), "iovd-vmm-monitor", NULL);
        if (!path)
                return -ENOMEM;
        if (access(path, X_OK) < 0) {
                int r = -errno;
                free(path);
                return r;
        }
        *ret = path;
        return 0;
}

/* The paths of a VM's run directory a spawn names. */
struct spawn_paths {
        char *config, *control, *console, *log, *exit, *pid;
};

static void spawn_paths_done(struct spawn_paths *s)
{
        free(s->config);
        free(s->control);
        free(s->console);
        free(s->log);
        free(s->exit);
        free(s->pid);
}

static int spawn_paths_init(const char *dir, struct spawn_paths *ret)
{
        struct spawn_paths s = {
                .config = util_path_join(dir, IOV_VMM_FILE_CONFIG, NULL),
                .control = util_path_join(dir, IOV_VMM_FILE_CONTROL, NULL),
                .console = util_path_join(dir, IOV_VMM_FILE_CONSOLE, NULL),
                .log = util_path_join(dir, IOV_VMM_FILE_LOG, NULL),
                .exit = util_path_join(dir, IOV_VMM_FILE_EXIT, NULL),
                .pid = util_path_join(dir, IOV_VMM_FILE_PID, NULL),
        };
        if (!s.config || !s.control || !s.console || !s.log || !s.exit || !s.pid) {
                spawn_paths_done(&s);
                return -ENOMEM;
        }
        if (strlen(s.control) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
                spawn_paths_done(&s);
                return -ENAMETOOLONG;
        }
        *ret = s;
        return 0;
}

/* The arguments of the monitor and of iovd-vmm after it (vmm/monitor.c, vmm/main.c). */
struct spawn_args {
        char report_fd[16], jail[32];
        char *control, *serial; /* "fd:N", "file:fd:N" */
};

static void spawn_args_done(struct spawn_args *a)
{
        free(a->control);
        free(a->serial);
}

static void spawn_argv(struct spawn_plan *plan, const char *vmm, const struct spawn_paths *s,
                       struct spawn_args *a, const struct iov_vmm_confinement *c)
{
        size_t n = 0;
        char **argv = plan->argv;
        argv[n++] = (char *)"iovd-vmm-monitor";
        argv[n++] = (char *)"--pid-file";
        argv[n++] = s->pid;
        argv[n++] = (char *)"--exit-file";
        argv[n++] = s->exit;
        argv[n++] = (char *)"--report-fd";
        argv[n++] = a->report_fd;
        if (c->jail)
                argv[n++] = (char *)"--pid-namespace";
        if (c->cgroup) {
                argv[n++] = (char *)"--cgroup";
                argv[n++] = (char *)c->cgroup;
        }
        argv[n++] = (char *)"--";
        argv[n++] = (char *)vmm;
        argv[n++] = (char *)"--config";
        argv[n++] = s->config;
        argv[n++] = (char *)"--control-socket";
        argv[n++] = a->control;
        argv[n++] = (char *)"--serial";
        argv[n++] = a->serial;
        if (c->jail) {
                snprintf(a->jail, sizeof(a->jail), "%u:%u", (unsigned)c->uid, (unsigned)c->gid);
                argv[n++] = (char *)"--jail";
                argv[n++] = a->jail;
        }
        argv[n] = NULL;
}

/* The control socket, bound and listening for the VMM, so that it needs no path of the
 * host: iovd's connections queue until the VMM serves them (supervisor_wait_ready). */
static int spawn_control_socket(const char *path, int *ret_fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The control socket and the console log into fds, named in a. */
static int spawn_pass_own_fds(const struct spawn_paths *s, struct iov_vmm_fds *fds,
                              struct spawn_args *a)
{
        int control_fd = -1;
        int r = spawn_control_socket(s->control, &control_fd);
        if (r < 0)
                return r;
        r = supervisor_fds_add(fds, control_fd, &a->control);
        if (r < 0)
                return r;
        int console_fd = open(s->console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (console_fd < 0)
                return -errno;
        _cleanup_free_ char *name = NULL;
        r = supervisor_fds_add(fds, console_fd, &name);
        if (r < 0)
                return r;
        a->serial = util_strdup_printf("file:%s", name);
        return a->serial ? 0 : -ENOMEM;
}

int supervisor_spawn(const char *vmm, const char *dir, struct iov_vmm_fds *fds,
                     const struct iov_vmm_confinement *c, struct iov_vmm_process *ret,
                     int *ret_monitor_fd, uint64_t *ret_forked_usec)
{
        remove_in(dir, IOV_VMM_FILE_CONTROL);
        remove_in(dir, IOV_VMM_FILE_EXIT);
        remove_in(dir, IOV_VMM_FILE_PID);
        _cleanup_free_ char *monitor = NULL;
        int r = spawn_find_monitor(vmm, &monitor);
        if (r < 0)
                return r;
        _cleanup_(spawn_paths_done) struct spawn_paths paths = {0};
        _cleanup_(spawn_args_done) struct spawn_args args = {0};
        r = spawn_paths_init(dir, &paths);
        if (r >= 0)
                r = spawn_pass_own_fds(&paths, fds, &args);
        if (r < 0)
                return r;
        _cleanup_close_ int log_fd =
                open(paths.log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (log_fd < 0 || null_fd < 0)
                return -errno;
        snprintf(args.report_fd, sizeof(args.report_fd), "%zu", IOV_VMM_FIRST_PASSED_FD + fds->n);
        struct spawn_plan plan = {
                .monitor = monitor, .log_fd = log_fd, .null_fd = null_fd, .fds = fds};
        spawn_argv(&plan, vmm, &paths, &args, c);
        struct iov_vmm_process p = {0};
        _cleanup_close_ int monitor_fd = -1;
        r = spawn_fork(&plan, &p.pid, &monitor_fd, ret_forked_usec);
        if (r < 0)
                return r;
        struct iov_vmm_process written;
        if (supervisor_read_pid_file(dir, &written) >= 0 && written.pid == p.pid) {
                *ret = written;
                *ret_monitor_fd = TAKE_FD(monitor_fd);
                return 0;
        }
        /* The monitor could not write it: do it here. A VMM that already ended (and was
         * reaped) has no start time: 0 never matches. */
        (void)proc_starttime(p.pid, &p.starttime);
        r = write_pid_file(dir, &p);
        if (r < 0)
                return r;
        *ret = p;
        *ret_monitor_fd = TAKE_FD(monitor_fd);
        return 0;
}

int supervisor_open_pidfd(const struct iov_vmm_process *p, int *ret_fd)
{
        if (p->pid <= 0)
                return -ESRCH;
        _cleanup_close_ int fd = pidfd_open(p->pid, 0);
        if (fd < 0)
                return -errno;
        /* Checked after the pidfd is open: the pidfd now pins this very process. */
        uint64_t starttime;
        int r = proc_starttime(p->pid, &starttime);
        if (r < 0 || starttime != p->starttime)
                return -ESRCH;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Field 4 of /proc/PID/stat, the parent's pid: after the command's last ')' and the state. */
static int proc_ppid(pid_t pid, pid_t *ret)
{
        _cleanup_free_ char *text = NULL;
        int r = proc_stat_read(pid, &text);
        if (r < 0)
                return r;
        const char *p = strrchr(text, ')');
        int ppid;
        if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
                return -EBADMSG;
        *ret = ppid;
        return 0;
}

int supervisor_open_monitor_pidfd(const struct iov_vmm_process *p, int *ret_fd)
{
        pid_t monitor;
        int r = proc_ppid(p->pid, &monitor);
        if (r < 0)
                return r;
        if (monitor <= 1) /* the monitor is gone: the VMM was re-parented */
                return -ESRCH;
        _cleanup_close_ int fd = pidfd_open(monitor, 0);
        if (fd < 0)
                return -errno;
        /* Still the VMM's parent once the pidfd pins it: not a process that took the
         * pid of a monitor that ended in between (the VMM would have a new parent). */
        pid_t again;
        uint64_t starttime;
        if (proc_ppid(p->pid, &again) < 0 || again != monitor ||
            proc_starttime(p->pid, &starttime) < 0 || starttime != p->starttime)
                return -ESRCH;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The first line of a file of the VM's run directory (the pid and exit files). */
static int read_line_in(const char *dir, const char *name, char **ret)
{
        _cleanup_free_ char *path = util_path_join(dir, name, NULL);
        if (!path)
                return -ENOMEM;
        return util_read_line(path, ret);
}

int supervisor_read_pid_file(const char *dir, struct iov_vmm_process *ret)
{
        _cleanup_free_ char *line = NULL;
        int r = read_line_in(dir, IOV_VMM_FILE_PID, &line);
        if (r < 0)
                return r;
        int pid;
        unsigned long long starttime;
        if (sscanf(line, "%d %llu", &pid, &starttime) != 2 || pid <= 0)
                return -EBADMSG;
        *ret = (struct iov_vmm_process){.pid = pid, .starttime = starttime};
        return 0;
}

static int control_connect(const char *dir, int *ret_fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, IOV_VMM_FILE_CONTROL);
        if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Until the VMM answers on fd (0), ends (-ECHILD) or deadline passes (-ETIMEDOUT): iovd
 * listens on the socket for the VMM, so a connection is queued before the VMM serves. */
static int wait_answer(int fd, int pidfd, uint64_t deadline)
{
        static const char status[] = "status\n";
        if (send(fd, status, sizeof(status) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(status) - 1)
                return -errno;
        for (;;) {
                struct pollfd pfds[] = {{.fd = fd, .events = POLLIN},
                                        {.fd = pidfd, .events = POLLIN}};
                uint64_t now = util_now_usec();
                if (now > deadline)
                        return -ETIMEDOUT;
                int n = poll(pfds, 2, (int)((deadline - now) / 1000) + 1);
                if (n < 0 && errno != EINTR)
                        return -errno;
                /* An answer, or the VMM's end closing the connection: either way it is
                 * judged by whether the VMM still runs. */
                if (n > 0 && pfds[0].revents) {
                        char c;
                        return recv(fd, &c, 1, MSG_PEEK) == 1 ? 0 : -ECHILD;
                }
                if (n > 0 && pfds[1].revents)
                        return -ECHILD;
        }
}

int supervisor_wait_ready(const char *dir, int pidfd, unsigned timeout_ms)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        for (;;) {
                _cleanup_close_ int fd = -1;
                int r = control_connect(dir, &fd);
                if (r >= 0)
                        return wait_answer(fd, pidfd, deadline);
                if (r != -ENOENT && r != -ECONNREFUSED)
                        return r;
                struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
                if (poll(&pfd, 1, 1) > 0)
                        return -ECHILD;
                if (util_now_usec() > deadline)
                        return -ETIMEDOUT;
        }
}

static int control_read_line(int fd, char *buf, size_t size)
{
        size_t len = 0;
        while (len < size - 1) {
                ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? -ETIMEDOUT : -errno;
                if (n == 0)
                        return -ECONNRESET;
                len += (size_t)n;
                buf[len] = '\0';
                char *nl = memchr(buf, '\n', len);
                if (nl) {
                        *nl = '\0';
                        return 0;
                }
        }
        return -EMSGSIZE;
}

int supervisor_command(const char *dir, const char *command, unsigned timeout_ms,
                       struct json_object **ret)
{
        _cleanup_close_ int fd = -1;
        int r = control_connect(dir, &fd);
        if (r < 0)
                return r;
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        _cleanup_free_ char *line = util_strdup_printf("%s\n", command);
        if (!line)
                return -ENOMEM;
        if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line))
                return errno ? -errno : -EIO;
        _cleanup_free_ char *buf = malloc(LOG_TAIL_MAX);
        if (!buf)
                return -ENOMEM;
        r = control_read_line(fd, buf, LOG_TAIL_MAX);
        if (r < 0)
                return r;
        struct json_object *reply = json_tokener_parse(buf);
        if (!json_object_is_type(reply, json_type_object)) {
                json_object_put(reply);
                return -EBADMSG;
        }
        *ret = reply;
        return json_object_object_get(reply, "error") ? -EPROTO : 0;
}

/* The last LOG_TAIL_MAX bytes of vmm.log, NUL-terminated. */
static int read_log_tail(const char *dir, char **ret)
{
        _cleanup_free_ char *path = util_path_join(dir, IOV_VMM_FILE_LOG, NULL);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        off_t size = lseek(fd, 0, SEEK_END);
        off_t start = size > LOG_TAIL_MAX ? size - LOG_TAIL_MAX : 0;
        char *buf = malloc(LOG_TAIL_MAX + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t n = pread(fd, buf, LOG_TAIL_MAX, start);
        buf[n > 0 ? n : 0] = '\0';
        *ret = buf;
        return 0;
}

/* From the VMM's log: the final stats line and its last words. iovd-vmm ends with
 * "iovd-vmm: STATE: REASON" and the stats line (vm-contract.h) when the VM ran, or with
 * "iovd-vmm: MESSAGE" when it could not be built. */
static void parse_log(char *log, struct iov_vmm_exit *e)
{
        char *last = NULL;
        char *save = NULL;
        /* strtok_r: several threads judge VMM exits at once (the watcher, a start). */
        for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                struct json_object *stats = NULL;
                int r = vm_stats_line_parse(line, &stats);
                if (r >= 0) {
                        json_object_put(e->stats);
                        e->stats = stats;
                } else if (r == -ENOMSG && *line) {
                        last = line;
                }
        }
        struct json_object *reason = NULL;
        if (e->stats && json_object_object_get_ex(e->stats, "reason", &reason) &&
            json_object_is_type(reason, json_type_string) && *json_object_get_string(reason))
                e->reason = strdup(json_object_get_string(reason));
        else if (last)
                e->reason = strdup(strncmp(last, "iovd-vmm: ", 10) == 0 ? last + 10 : last);
}

static int read_exit_file(const char *dir, struct iov_vmm_exit *e)
{
        _cleanup_free_ char *line = NULL;
        int r = read_line_in(dir, IOV_VMM_FILE_EXIT, &line);
        if (r < 0)
                return r;
        char kind[16];
        if (sscanf(line, "%15s %d", kind, &e->code) != 2)
                return -EBADMSG;
        e->signaled = streq(kind, "signal");
        e->known = true;
        return 0;
}

int supervisor_read_exit(const char *dir, int monitor_fd, unsigned timeout_ms,
                         struct iov_vmm_exit *ret)
{
        struct iov_vmm_exit e = {0};
        /* The monitor writes the file right after the VMM ended and only then lets go of
         * monitor_fd (a pipe it holds, or a pidfd of it): sleep until then, not polling for
         * the file (an inotify watch costs more: closing one waits for an RCU grace
         * period, about 12 ms a verdict here, bench/vms exit_read). A monitor that was
         * killed itself never writes it, hence the bound. */
        struct pollfd pfd = {.fd = monitor_fd, .events = POLLIN};
        if (monitor_fd >= 0 && timeout_ms > 0)
                while (poll(&pfd, 1, (int)timeout_ms) < 0 && errno == EINTR)
                        ;
        (void)read_exit_file(dir, &e);
        _cleanup_free_ char *log = NULL;
        if (read_log_tail(dir, &log) >= 0)
                parse_log(log, &e);
        *ret = e;
        return 0;
}
