/* SPDX-License-Identifier: MIT */
/*
 * harness: the real iovd under test. See harness.h.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "harness.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  10000

static const char *iovd_binary(void)
{
        const char *p = getenv("IOVD_BINARY");
        return p ? p : "iovd";
}

static int notify_socket_open(const char *path, int *ret)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret = fd;
        return 0;
}

static int status_decode(int wstatus)
{
        if (WIFEXITED(wstatus))
                return WEXITSTATUS(wstatus);
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        return -1;
}

/* Reap the daemon if it exited; true when it has. */
static bool harness_reap(struct iov_harness *h, bool block)
{
        int wstatus;
        if (h->pid <= 0)
                return true;
        pid_t p = waitpid(h->pid, &wstatus, block ? 0 : WNOHANG);
        if (p != h->pid)
                return false;
        h->exit_status = status_decode(wstatus);
        h->pid = 0;
        return true;
}

static void notify_read(struct iov_harness *h)
{
        char buf[512];
        ssize_t n;
        while ((n = recv(h->notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
                buf[n] = 0;
                for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                        if (streq(line, "READY=1"))
                                h->ready = true;
                        if (streq(line, "STOPPING=1"))
                                h->stopping = true;
                }
        }
}

int harness_wait_ready(struct iov_harness *h, unsigned timeout_ms)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;

        while (!h->ready) {
                struct pollfd p = {.fd = h->notify_fd, .events = POLLIN};
                if (poll(&p, 1, 20) > 0)
                        notify_read(h);
                if (h->ready)
                        break;
                if (harness_reap(h, false))
                        return -ECHILD;
                if (util_now_usec() > deadline)
                        return -ETIMEDOUT;
        }
        return 0;
}

static int make_dirs(struct iov_harness *h, const struct iov_harness_options *o)
{
        char tmpl[] = "/tmp/iovd-harness-XXXXXX";
        if (!mkdtemp(tmpl))
                return -errno;
        h->dir = strdup(tmpl);
        h->socket_path = util_path_join(tmpl, "iovd.sock", NULL);
        h->state_dir = o->state_dir ? strdup(o->state_dir) : util_path_join(tmpl, "state", NULL);
        h->run_dir = util_path_join(tmpl, "run", NULL);
        h->sysfs_root = o->sysfs_root ? strdup(o->sysfs_root) : util_path_join(tmpl, "sys", NULL);
        h->dev_root = o->dev_root ? strdup(o->dev_root) : util_path_join(tmpl, "dev", NULL);
        h->log_path = util_path_join(tmpl, "iovd.log", NULL);
        if (!h->dir || !h->socket_path || !h->state_dir || !h->run_dir || !h->sysfs_root ||
            !h->dev_root || !h->log_path)
                return -ENOMEM;
        if (!o->sysfs_root) {
                _cleanup_free_ char *p = util_path_join(h->sysfs_root, "bus/pci/devices", NULL);
                _cleanup_free_ char *g = util_path_join(h->sysfs_root, "kernel/iommu_groups", NULL);
                int r = p && g ? util_mkdir_p(p, 0755) : -ENOMEM;
                if (r >= 0)
                        r = util_mkdir_p(g, 0755);
                if (r < 0)
                        return r;
        }
        if (!o->dev_root && mkdir(h->dev_root, 0755) < 0)
                return -errno;
        return 0;
}

static void child_exec(struct iov_harness *h, const struct iov_harness_options *o)
{
        const char *argv[64];
        size_t n = 0;
        _cleanup_free_ char *listen = util_strdup_printf("unix:%s", h->socket_path);
        _cleanup_free_ char *notify = util_path_join(h->dir, "notify", NULL);

        argv[n++] = iovd_binary();
        if (!o->no_unix_listen) {
                argv[n++] = "--listen";
                argv[n++] = listen;
        }
        const char *pairs[][2] = {{"--state-dir", h->state_dir},
                                  {"--run-dir", h->run_dir},
                                  {"--sysfs-root", h->sysfs_root},
                                  {"--dev-root", h->dev_root},
                                  {"--log-level", "debug"}};
        for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
                argv[n++] = pairs[i][0];
                argv[n++] = pairs[i][1];
        }
        /* VM files come only from image directories: the harness's own (tests put
         * images there) and the guest payloads' build directories. */
        argv[n++] = "--image-dir";
        argv[n++] = h->dir;
        _cleanup_free_ char *dirs =
                getenv("IOVD_TEST_IMAGE_DIRS") ? strdup(getenv("IOVD_TEST_IMAGE_DIRS")) : NULL;
        char *save = NULL;
        for (char *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d && n < ARRAY_SIZE(argv) - 8;
             d = strtok_r(NULL, ":", &save)) {
                argv[n++] = "--image-dir";
                argv[n++] = d;
        }
        for (size_t i = 0; o->extra_args && o->extra_args[i] && n < ARRAY_SIZE(argv) - 1; i++)
                argv[n++] = o->extra_args[i];
        argv[n] = NULL;

        /* A failed Criterion assertion ends the test without running cleanups: the
         * daemon must not outlive the test process that started it. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != h->parent)
                _exit(127);
        int log = open(h->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log >= 0) {
                dup2(log, STDOUT_FILENO);
                dup2(log, STDERR_FILENO);
        }
        setenv("NOTIFY_SOCKET", notify, 1);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
}

int harness_start(const struct iov_harness_options *o, struct iov_harness **ret)
{
        static const struct iov_harness_options defaults = {0};
        struct iov_harness *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->notify_fd = -1;
        o = o ? o : &defaults;

        int r = make_dirs(h, o);
        _cleanup_free_ char *notify = h->dir ? util_path_join(h->dir, "notify", NULL) : NULL;
        if (r >= 0)
                r = notify ? notify_socket_open(notify, &h->notify_fd) : -ENOMEM;
        if (r >= 0) {
                h->parent = getpid();
                h->pid = fork();
                if (h->pid < 0)
                        r = -errno;
                else if (h->pid == 0)
                        child_exec(h, o);
        }
        if (r < 0) {
                harness_free(h);
                return r;
        }
        *ret = h;
        return o->no_wait ? 0 : harness_wait_ready(h, START_TIMEOUT_MS);
}

int harness_stop(struct iov_harness *h, int *ret_status)
{
        if (h->pid > 0)
                kill(h->pid, SIGTERM);
        uint64_t deadline = util_now_usec() + (uint64_t)STOP_TIMEOUT_MS * 1000;
        while (!harness_reap(h, false)) {
                if (util_now_usec() > deadline) {
                        kill(h->pid, SIGKILL);
                        harness_reap(h, true);
                        return -ETIMEDOUT;
                }
                util_sleep_usec(10000);
        }
        notify_read(h);
        if (ret_status)
                *ret_status = h->exit_status;
        return 0;
}

void harness_free(struct iov_harness *h)
{
        if (!h)
                return;
        if (h->pid > 0) {
                kill(h->pid, SIGKILL);
                harness_reap(h, true);
        }
        if (h->notify_fd >= 0)
                close(h->notify_fd);
        if (h->dir && getenv("IOVD_HARNESS_KEEP") == NULL) {
                _cleanup_free_ char *cmd = util_strdup_printf("rm -rf '%s'", h->dir);
                if (cmd && system(cmd) != 0)
                        fprintf(stderr, "harness: could not remove %s\n", h->dir);
        }
        free(h->dir);
        free(h->socket_path);
        free(h->state_dir);
        free(h->run_dir);
        free(h->sysfs_root);
        free(h->dev_root);
        free(h->log_path);
        free(h);
}

void harness_kill_vmms(const char *run_dir)
{
        _cleanup_free_ char *vms = run_dir ? util_path_join(run_dir, "vms", NULL) : NULL;
        DIR *d = vms ? opendir(vms) : NULL;
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_free_ char *pid_path = util_path_join(vms, de->d_name, "vmm.pid", NULL);
                _cleanup_free_ char *line = NULL;
                if (pid_path && util_read_line(pid_path, &line) >= 0 && atoi(line) > 0)
                        kill(atoi(line), SIGKILL);
        }
        closedir(d);
}

char *harness_log(const struct iov_harness *h)
{
        char *text = NULL;
        if (util_read_file(h->log_path, 16 * 1024 * 1024, &text, NULL) < 0)
                return strdup("");
        return text;
}

int harness_run(const char *const *args, int *ret_status, char **ret_output)
{
        char tmpl[] = "/tmp/iovd-harness-run-XXXXXX";
        int out = mkstemp(tmpl);
        if (out < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                close(out);
                return -errno;
        }
        if (pid == 0) {
                const char *argv[64] = {iovd_binary()};
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (size_t i = 0; args && args[i] && i < ARRAY_SIZE(argv) - 2; i++)
                        argv[i + 1] = args[i];
                dup2(out, STDOUT_FILENO);
                dup2(out, STDERR_FILENO);
                unsetenv("NOTIFY_SOCKET");
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(out);
        struct iov_harness h = {.pid = pid};
        uint64_t deadline = util_now_usec() + (uint64_t)START_TIMEOUT_MS * 1000;
        while (!harness_reap(&h, false) && util_now_usec() < deadline)
                util_sleep_usec(10000);
        if (h.pid > 0) {
                kill(pid, SIGKILL);
                harness_reap(&h, true);
                unlink(tmpl);
                return -ETIMEDOUT;
        }
        if (ret_output && util_read_file(tmpl, 1024 * 1024, ret_output, NULL) < 0)
                *ret_output = strdup("");
        unlink(tmpl);
        *ret_status = h.exit_status;
        return 0;
}

int harness_kvm_usable(void)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}
