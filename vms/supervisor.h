/* SPDX-License-Identifier: MIT */
/*
 * supervisor: the process side of iovd's VMs. Starts one iovd-vmm per VM so that it
 * outlives the daemon, finds it again after a daemon restart, talks to its control
 * socket (protocol in vmm/vmm.h) and reads how it ended.
 *
 * Each VM has a directory RUN_DIR/vms/ID holding:
 *   config.json    the VM definition iovd-vmm is started with (--config)
 *   control.sock   iovd-vmm's control socket
 *   console.log    what the guest printed on COM1 (--serial file:...)
 *   vmm.log        iovd-vmm's stdout and stderr (its failure message and final stats)
 *   vmm.pid        "PID STARTTIME": the VMM's pid and its start time in clock ticks
 *                  (/proc/PID/stat field 22), so a reused pid is never taken for it;
 *                  written by the monitor before iovd even learns the pid
 *   exit           "exited N" or "signal N", written by the VMM's monitor once it ended
 *
 * Process tree: iovd forks a helper that calls setsid() and forks a child that execs
 * iovd-vmm-monitor (vmm/monitor.c, found next to iovd-vmm), then exits at once; the
 * monitor forks and execs iovd-vmm, writes vmm.pid, reports the pid to iovd through a
 * pipe, waits for it, writes exit and only then closes the pipe (iovd sleeps on its
 * hang-up). Being exec'd, the monitor holds nothing of iovd's memory (its
 * TCP token) nor any of its descriptors. The monitor and the VMM belong to no process of
 * iovd's (stopping iovd stops neither), and the monitor is the one parent that can read
 * the VMM's exit status, whoever restarts iovd. iovd follows the VMM through a pidfd.
 *
 * Private to vms/ (its public header is vms/vms.h).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Directory and file names under RUN_DIR/vms/ID. */
#define IOV_VMM_FILE_CONFIG  "config.json"
#define IOV_VMM_FILE_CONTROL "control.sock"
#define IOV_VMM_FILE_CONSOLE "console.log"
#define IOV_VMM_FILE_LOG     "vmm.log"
#define IOV_VMM_FILE_PID     "vmm.pid"
#define IOV_VMM_FILE_EXIT    "exit"

/* The monitor, or its child iovd-vmm, could not be executed (the shell's convention). */
#define SUPERVISOR_EXIT_EXEC_FAILED 127

struct iov_vmm_process {
        pid_t pid;
        uint64_t starttime; /* clock ticks since boot, /proc/PID/stat field 22 */
};

/* How a VMM ended, as the monitor and the VMM's own report say. */
struct iov_vmm_exit {
        bool known;    /* the monitor wrote the exit file */
        bool signaled; /* killed by signal `code`; otherwise exited with status `code` */
        int code;
        char *reason;              /* the VMM's last words (its report or error), or NULL */
        struct json_object *stats; /* the final "stats" line, or NULL */
};

void supervisor_exit_clear(struct iov_vmm_exit *e);

/*
 * Descriptors handed to one iovd-vmm: the one way iovd gives a VMM a host resource (its
 * files, and whatever else a definition needs opened by iovd, such as TAP devices). Each
 * added fd is inherited by iovd-vmm as number IOV_VMM_FIRST_PASSED_FD + its index, and the
 * name supervisor_fds_add returns ("fd:N") is what the config names it by; iovd-vmm opens
 * such a name with util_open_inherited(). Everything else iovd holds is closed first.
 */
#define IOV_VMM_FIRST_PASSED_FD 3
#define IOV_VMM_PASSED_FDS_MAX  64
struct iov_vmm_fds {
        int fds[IOV_VMM_PASSED_FDS_MAX];
        size_t n;
};

/* Take fd (closed on failure too) and return its name in the config, malloc'ed. -EMFILE
 * when IOV_VMM_PASSED_FDS_MAX are taken already. */
int supervisor_fds_add(struct iov_vmm_fds *fds, int fd, char **ret_name);
/* Close what fds holds (after the spawn: the VMM has its copies); fds may be NULL. */
void supervisor_fds_clear(struct iov_vmm_fds *fds);

/* The iovd-vmm to run: configured (--vmm) when not NULL, else $IOVD_VMM_BINARY, else
 * iovd-vmm next to the running iovd, else ../vmm/iovd-vmm from it (the build tree), else
 * IOVD_LIBEXECDIR/iovd-vmm. A configured path that cannot be executed fails (the errno
 * of access(X_OK)) rather than falling back to another binary. */
int supervisor_find_vmm(const char *configured, char **ret);

/* How iovd-vmm is confined, two independent things: jailed (vmm/jail.c; its own PID
 * namespace from vmm/monitor.c) as uid and gid (both not 0), or not at all; and run in a
 * cgroup v2 directory (NULL: none; vmm/monitor.c puts it there), jailed or not. */
struct iov_vmm_confinement {
        bool jail;
        uid_t uid;
        gid_t gid;
        const char *cgroup;
};

/* Start iovd-vmm on the files of dir (config.json must exist) with the descriptors of fds,
 * confined as c says; vmm.pid is written. iovd binds control.sock and opens console.log
 * (appended) itself and passes both through fds too; stale control.sock, exit and vmm.log
 * are removed first. ret_monitor_fd: the read end of the monitor's report pipe, which hangs
 * up (POLLHUP) once the monitor wrote the exit file or ended (supervisor_read_exit).
 * ret_forked_usec (may be NULL): when the monitor was exec'd, before it reported the VMM's
 * pid (util_now_usec), for timing. */
int supervisor_spawn(const char *vmm, const char *dir, struct iov_vmm_fds *fds,
                     const struct iov_vmm_confinement *c, struct iov_vmm_process *ret,
                     int *ret_monitor_fd, uint64_t *ret_forked_usec);

/* A pidfd for p, -ESRCH when p is gone or its pid now belongs to another process. */
int supervisor_open_pidfd(const struct iov_vmm_process *p, int *ret_fd);
/* A pidfd for the monitor of the running VMM p (its parent), what a re-attached VM has in
 * place of the report pipe; -ESRCH when p or its monitor is gone. */
int supervisor_open_monitor_pidfd(const struct iov_vmm_process *p, int *ret_fd);

/* Read dir/vmm.pid. -ENOENT when there is none. */
int supervisor_read_pid_file(const char *dir, struct iov_vmm_process *ret);

/* Wait until the VMM answers on the control socket of dir (0: it runs), the process
 * behind pidfd ended (-ECHILD) or timeout_ms passed (-ETIMEDOUT). */
int supervisor_wait_ready(const char *dir, int pidfd, unsigned timeout_ms);

/* Send one command to the control socket of dir and return its JSON reply. -EPROTO when
 * the VMM answered with an error (ret gets the reply all the same). */
int supervisor_command(const char *dir, const char *command, unsigned timeout_ms,
                       struct json_object **ret);

/* Read how the VMM of dir ended, waiting at most timeout_ms for the monitor's exit file:
 * until monitor_fd (from supervisor_spawn or supervisor_open_monitor_pidfd) is readable or
 * hangs up; monitor_fd -1 (no monitor known) or timeout_ms 0: no wait. */
int supervisor_read_exit(const char *dir, int monitor_fd, unsigned timeout_ms,
                         struct iov_vmm_exit *ret);
