/* SPDX-License-Identifier: MIT */
/*
 * Running iovd-vmm on the tiny guest payloads from the vmm-guest tests: spawn it with its
 * output captured, wait for it with a deadline, read its stats line, talk to its control
 * socket. Every helper fails the current test (Criterion) when its own step fails.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct run_result {
        int status; /* exit status, or 128 + signal */
        char out[8192];
        char err[8192];
        size_t out_len, err_len;
        struct json_object *stats; /* the "iovd-vmm: stats" line, or NULL */
};

/* Skip the test with a reason when /dev/kvm cannot be opened. */
void guest_skip_without_kvm(void);
/* The path of the payload's bzImage (malloc'ed). */
char *guest_payload(const char *name);

/* Start iovd-vmm with args (NULL-terminated, without the program name); stdin, stdout
 * and stderr are in_fd, out_fd and err_fd (/dev/null when -1). */
pid_t guest_spawn_vmm(const char *const *args, int in_fd, int out_fd, int err_fd);
/* Run iovd-vmm with args to its end (60 s at most), capturing stdout and stderr. */
void guest_run_vmm(const char *const *args, struct run_result *res);
/* Read one line (without its newline) from fd, up to size - 1 bytes. */
void guest_read_line(int fd, char *line, size_t size);
/* waitpid() for pid; returns the wait status. */
int guest_wait(pid_t pid);

/* stats[group][key], or stats[group] when key is NULL; -1 when missing. */
int64_t guest_stat(const struct run_result *res, const char *group, const char *key);
/* Expect min <= stats[group][key] <= max, naming the value otherwise. */
void guest_expect_stat(const struct run_result *res, const char *group, const char *key,
                       int64_t min, int64_t max);
/* "usec" of the index-th boot marker, -1 when missing. */
int64_t guest_marker_usec(const struct run_result *res, unsigned index);

/* iovd-vmm on the idle payload (it prints "idle" and waits), started and seen running,
 * with a control socket in a fresh directory when control is true. */
struct idle_vmm {
        pid_t pid;
        int out;
        char dir[32];
        char *sock; /* or NULL */
};

void idle_vmm_start(struct idle_vmm *v, bool control, int err_fd);
/* Wait for its end, clean up; returns the wait status. */
int idle_vmm_wait(struct idle_vmm *v);

int control_connect(const char *sock);
/* Send one command line (none when command is NULL) and parse the next reply line. */
struct json_object *control(int fd, const char *command);
/* o[key] as a string, "(none)" when missing; o.error.code likewise. */
const char *field(struct json_object *o, const char *key);
const char *error_code(struct json_object *o);
