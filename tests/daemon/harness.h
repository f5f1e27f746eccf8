/* SPDX-License-Identifier: MIT */
/*
 * harness: run the real iovd binary (path in $IOVD_BINARY, set by meson) on a temporary
 * socket, state dir and run dir against a generated sysfs tree; wait for READY=1 on a
 * NOTIFY_SOCKET the harness owns; talk HTTP to it over the Unix socket (libcurl); stop it
 * with SIGTERM and report its exit status.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/util.h"

struct iov_harness_options {
        const char *sysfs_root;        /* NULL: an empty tree made in the harness dir */
        const char *dev_root;          /* NULL: an empty dir made in the harness dir */
        const char *state_dir;         /* NULL: a fresh one in the harness dir */
        const char *const *extra_args; /* NULL-terminated, after the harness's own */
        bool no_unix_listen;           /* leave out --listen unix:SOCKET */
        bool no_wait;                  /* return right after fork; call harness_wait_ready */
};

struct iov_harness {
        char *dir;         /* removed by harness_free; also an --image-dir of the daemon */
        char *socket_path; /* DIR/iovd.sock */
        char *state_dir;
        char *run_dir;
        char *sysfs_root;
        char *dev_root;
        char *log_path;  /* the daemon's stderr */
        int notify_fd;   /* the NOTIFY_SOCKET the daemon reports to */
        pid_t pid;       /* 0 once reaped */
        pid_t parent;    /* the test process: the daemon gets SIGTERM when it dies */
        int exit_status; /* valid once pid is 0: exit code, or 128 + signal */
        bool ready;
        bool stopping; /* STOPPING=1 received */
};

/* Start iovd. Unless o->no_wait, waits (10 s at most) for READY=1 and returns -ECHILD
 * when the daemon exited first (h is still returned so the caller can read the log and
 * exit status). */
int harness_start(const struct iov_harness_options *o, struct iov_harness **ret);
/* Wait for READY=1: 0, -ETIMEDOUT, or -ECHILD when the daemon exited. */
int harness_wait_ready(struct iov_harness *h, unsigned timeout_ms);
/* SIGTERM, wait (10 s at most, then SIGKILL); *ret_status is the exit status. */
int harness_stop(struct iov_harness *h, int *ret_status);
/* Kill if still running, remove the temporary dir. Accepts NULL. */
void harness_free(struct iov_harness *h);
DEFINE_CLEANUP_FUNC(struct iov_harness, harness_free)
#define _cleanup_harness_ _cleanup_(harness_freep)
/* SIGKILL to every VMM a pid file RUN_DIR/vms/ID/vmm.pid names: VMMs outlive iovd by
 * design, so a test that started VMs ends them itself. Accepts NULL. */
void harness_kill_vmms(const char *run_dir);

/* The daemon's stderr so far; "" when empty. Caller frees. */
char *harness_log(const struct iov_harness *h);

/* Run iovd with args (NULL-terminated, argv[0] excluded) to completion (10 s at most);
 * ret_output gets stdout and stderr together (may be NULL). */
/* 0 when /dev/kvm opens read-write, else -errno. iovd opens it at every VM start (the
 * VMM gets it as a descriptor), so tests that start a VM, even with the fake VMM, need it. */
int harness_kvm_usable(void);

/* In a Criterion test or .init: skip it, with the reason, where harness_kvm_usable() fails. */
#define HARNESS_SKIP_WITHOUT_KVM()                                                                 \
        do {                                                                                       \
                int kvm_error_ = harness_kvm_usable();                                             \
                if (kvm_error_ < 0)                                                                \
                        cr_skip_test("/dev/kvm cannot be opened (%s): iovd opens it at every "     \
                                     "VM start",                                                   \
                                     strerror(-kvm_error_));                                       \
        } while (0)

int harness_run(const char *const *args, int *ret_status, char **ret_output);

/* ---- HTTP ----------------------------------------------------------------------------- */

struct iov_http_reply {
        long status;
        char *body;
        size_t size;
        struct json_object *json; /* NULL when the body is not JSON */
        char *content_type;
        char *allow;
};
void harness_reply_clear(struct iov_http_reply *reply);

struct iov_http_request {
        const char *method;
        const char *path;          /* sent as is (no re-encoding) */
        const char *body;          /* NULL: none */
        size_t body_size;          /* 0: strlen(body) */
        const char *content_type;  /* NULL: application/json when there is a body */
        const char *socket_path;   /* NULL: url_base must be set */
        const char *url_base;      /* "http://127.0.0.1:PORT" for TCP */
        const char *authorization; /* full header value, NULL: none */
        bool chunked;              /* send the body with Transfer-Encoding: chunked */
};

/* 0 when an HTTP reply arrived (whatever its status), negative errno otherwise. */
int harness_http(const struct iov_http_request *req, struct iov_http_reply *ret);
/* Shorthand over the harness's Unix socket. body may be NULL. */
int harness_request(struct iov_harness *h, const char *method, const char *path, const char *body,
                    struct iov_http_reply *ret);

/* ---- event stream --------------------------------------------------------------------- */

/* Open GET /v1/events as a raw HTTP/1.0 stream on the Unix socket and read past the
 * headers; *ret_status gets the HTTP status. */
int harness_events_open(struct iov_harness *h, int *ret_fd, long *ret_status);
/* The same for any GET path (a VM console with ?follow=1). */
int harness_stream_open(struct iov_harness *h, const char *path, int *ret_fd, long *ret_status);
/* The next newline-terminated line (without the newline), waiting at most timeout_ms:
 * 0, -ETIMEDOUT, or -EPIPE when the stream ended. */
int harness_events_next(int fd, unsigned timeout_ms, char **ret);
/* The next event whose "type" is type within timeout_ms, the others skipped: 0 and the
 * event in *ret, -ETIMEDOUT, or -EPIPE when the stream ended. */
int harness_events_next_of_type(int fd, const char *type, unsigned timeout_ms,
                                struct json_object **ret);

/* A free TCP port on 127.0.0.1 right now. */
int harness_free_port(unsigned *ret);
