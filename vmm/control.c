/* SPDX-License-Identifier: MIT */
/*
 * The control socket a supervisor (iovd) drives the VM through: a Unix stream socket, one
 * command per line, one JSON object per reply line (protocol in vmm/vmm.h). Served on
 * the main thread with poll(), which also waits for the VM to stop (its stop eventfd and
 * the stop signals); several clients may be connected at once.
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "util/util.h"
#include "vmm/run.h"

#define CONTROL_MAX_CLIENTS 4
#define CONTROL_LINE_MAX    1024

struct control_client {
        int fd;
        char buf[CONTROL_LINE_MAX];
        size_t len;
        int passed_fd; /* the last fd sent with SCM_RIGHTS, for "link" (-1: none) */
};

int vmm_control_open(const char *path, int *ret_fd)
{
        /* "fd:N": a socket iovd bound and listens on already (util_open_inherited). */
        if (strncmp(path, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0) {
                _cleanup_close_ int fd = -1;
                int r = util_open_inherited(path, 0, &fd);
                if (r < 0)
                        return r;
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void)unlink(path); /* a stale socket from a VMM that died */
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static struct json_object *reply_ok(void)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(true));
        return o;
}

static struct json_object *reply_error(const char *code, const char *message)
{
        struct json_object *o = json_object_new_object(), *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(o, "error", e);
        return o;
}

static struct json_object *control_status(struct iov_vm *vm)
{
        struct json_object *o = json_object_new_object();
        pthread_mutex_lock(&vm->state_lock);
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(vm->state)));
        if (vm->exit_reason[0])
                json_object_object_add(o, "reason", json_object_new_string(vm->exit_reason));
        pthread_mutex_unlock(&vm->state_lock);
        json_object_object_add(o, "vcpus", json_object_new_int((int)vm->n_vcpus));
        json_object_object_add(o, "memory_mib",
                               json_object_new_int64((int64_t)vm->config->spec.memory_mib));
        json_object_object_add(o, "uptime_usec",
                               json_object_new_int64((int64_t)(util_now_usec() - vm->start_usec)));
        return o;
}

static struct json_object *control_pause(struct iov_vm *vm, bool paused)
{
        int r = vmm_vm_set_paused(vm, paused);
        if (r < 0)
                return reply_error("wrong_state",
                                   paused ? "the VM is not running" : "the VM is not paused");
        return reply_ok();
}

static struct json_object *control_input(struct iov_vm *vm, const char *text)
{
        size_t len = strlen(text);
        size_t n = vmm_uart_input(vm, text, len);
        if (n == len)
                n += vmm_uart_input(vm, "\n", 1);
        if (n != len + 1)
                return reply_error("input_overflow", "the UART input buffer is full");
        return reply_ok();
}

/* "link NAME [MAC]" with the link's end passed along (SCM_RIGHTS): iovd hands a link of
 * this VM its end of the channel (docs/architecture.md, "VM-to-VM links"). */
static struct json_object *control_link(const char *args, int *passed_fd)
{
        char name[IOV_VIRTIO_NET_LINK_NAME_MAX], mac_text[18];
        uint8_t mac[6];
        int fd = *passed_fd;

        *passed_fd = -1;
        int n = sscanf(args, "%80s %17s", name, mac_text);
        _Static_assert(IOV_VIRTIO_NET_LINK_NAME_MAX == 81, "the %80s above");
        int r = n < 1 ? -EINVAL : fd < 0 ? -EBADF : 0;
        if (r == 0 && n == 2 && virtio_parse_mac(mac_text, mac) < 0)
                r = -EINVAL;
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return reply_error("link_failed", r == -EBADF ? "no fd was passed with the command"
                                                              : "usage: link NAME [MAC]");
        }
        r = virtio_net_link_attach(name, fd, n == 2 ? mac : NULL);
        if (r < 0)
                return reply_error("link_failed",
                                   r == -ENOENT ? "no such link" : "wrong MAC for this link");
        return reply_ok();
}

static struct json_object *control_command(struct iov_vm *vm, struct control_client *c,
                                           const char *line)
{
        if (streq(line, "status"))
                return control_status(vm);
        if (streq(line, "stats"))
                return vmm_stats_json(vm);
        if (streq(line, "pause"))
                return control_pause(vm, true);
        if (streq(line, "resume"))
                return control_pause(vm, false);
        if (streq(line, "stop")) {
                if (vmm_i8042_request_shutdown(vm) < 0)
                        return reply_error("not_supported", "the VM has no i8042");
                return reply_ok();
        }
        if (streq(line, "kill")) {
                vmm_vm_request_stop(vm, false, IOV_VMM_EXIT_STOPPED,
                                    "killed through the control socket");
                return reply_ok();
        }
        if (strncmp(line, "input ", 6) == 0)
                return control_input(vm, line + 6);
        if (strncmp(line, "link ", 5) == 0)
                return control_link(line + 5, &c->passed_fd);
        return reply_error("unknown_command",
                           "commands: status stats pause resume stop kill input link");
}

static void control_reply(int fd, struct json_object *reply)
{
        const char *s = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
        /* Best effort: a client that does not read its replies loses them. */
        (void)!send(fd, s, strlen(s), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)!send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        json_object_put(reply);
}

/* Read what is there into c->buf; an fd passed along (SCM_RIGHTS, for "link") is kept
 * in c->passed_fd, replacing an unused earlier one. */
static ssize_t control_recv(struct control_client *c)
{
        int fd;
        ssize_t n = util_recv_with_fd(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT,
                                      &fd);
        if (fd >= 0) {
                if (c->passed_fd >= 0)
                        close(c->passed_fd);
                c->passed_fd = fd;
        }
        if (n < 0) {
                errno = (int)-n;
                return -1;
        }
        return n;
}

/* Read what is there; run each complete line. false when the client is gone. */
static bool control_client_read(struct iov_vm *vm, struct control_client *c)
{
        ssize_t n = control_recv(c);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return false;
        if (n < 0)
                return true;
        c->len += (size_t)n;
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->len))) {
                *nl = '\0';
                if (nl > c->buf && nl[-1] == '\r')
                        nl[-1] = '\0';
                control_reply(c->fd, control_command(vm, c, c->buf));
                size_t used = (size_t)(nl + 1 - c->buf);
                memmove(c->buf, nl + 1, c->len - used);
                c->len -= used;
        }
        if (c->len == sizeof(c->buf)) {
                control_reply(c->fd, reply_error("line_too_long", "commands are one short line"));
                return false;
        }
        return true;
}

/* A stop signal (SIGTERM, SIGINT, SIGHUP) read from the signalfd: a clean stop. */
static void control_take_signal(struct iov_vm *vm, int signal_fd)
{
        struct signalfd_siginfo si;
        if (read(signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
                return;
        char reason[64];
        snprintf(reason, sizeof(reason), "stopped by signal %s", strsignal((int)si.ssi_signo));
        vmm_vm_request_stop(vm, false, IOV_VMM_EXIT_STOPPED, reason);
}

static void control_accept(int listen_fd, struct control_client *clients)
{
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        unsigned i = 0;
        while (i < CONTROL_MAX_CLIENTS && clients[i].fd >= 0)
                i++;
        if (i == CONTROL_MAX_CLIENTS) {
                control_reply(fd, reply_error("busy", "too many control clients"));
                close(fd);
                return;
        }
        clients[i] = (struct control_client){.fd = fd, .passed_fd = -1};
}

static void control_client_close(struct control_client *c)
{
        if (c->fd >= 0)
                close(c->fd);
        if (c->passed_fd >= 0)
                close(c->passed_fd);
        c->fd = -1;
        c->passed_fd = -1;
}

/* The VM has stopped: whoever has sent a command (also from the listen backlog) gets its
 * answer ("status" says "stopped" or "crashed" and why), then every connection closes,
 * the listening one too: a later connect is refused instead of hanging. */
static void control_drain(struct iov_vm *vm, int listen_fd, struct control_client *clients)
{
        int fd;
        while (listen_fd >= 0 &&
               (fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                struct control_client c = {.fd = fd, .passed_fd = -1};
                (void)control_client_read(vm, &c);
                control_client_close(&c);
        }
        for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
                if (clients[i].fd >= 0)
                        (void)control_client_read(vm, &clients[i]);
                control_client_close(&clients[i]);
        }
        if (listen_fd >= 0)
                close(listen_fd);
}

enum { POLL_STOP, POLL_SIGNAL, POLL_LISTEN, POLL_CLIENTS };

void vmm_control_serve(struct iov_vm *vm, int listen_fd, int signal_fd)
{
        struct control_client clients[CONTROL_MAX_CLIENTS];
        for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
                clients[i] = (struct control_client){.fd = -1, .passed_fd = -1};

        /* No timeout: a stop from a vCPU, a signal or a client each wakes poll(). */
        while (!vmm_vm_stopping(vm)) {
                struct pollfd pfds[POLL_CLIENTS + CONTROL_MAX_CLIENTS] = {
                        [POLL_STOP] = {.fd = vm->stop_fd, .events = POLLIN},
                        [POLL_SIGNAL] = {.fd = signal_fd, .events = POLLIN},
                        [POLL_LISTEN] = {.fd = listen_fd, .events = POLLIN},
                };
                for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
                        pfds[POLL_CLIENTS + i] =
                                (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
                if (poll(pfds, ARRAY_SIZE(pfds), -1) <= 0)
                        continue;
                if (pfds[POLL_SIGNAL].revents)
                        control_take_signal(vm, signal_fd);
                for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
                        if (pfds[POLL_CLIENTS + i].revents && !control_client_read(vm, &clients[i]))
                                control_client_close(&clients[i]);
                if (pfds[POLL_LISTEN].revents & POLLIN)
                        control_accept(listen_fd, clients);
        }
        control_drain(vm, listen_fd, clients);
}
