/* SPDX-License-Identifier: MIT */
/*
 * vm-lifecycle: start, stop, kill, pause and resume a VM, and judge how its VMM ended.
 * A VMM is followed through a pidfd by the watcher thread; the moment it ends, the VM
 * becomes stopped (an end iovd asked for, or a guest that shut down) or crashed (anything
 * else, with the reason), whether or not a request is waiting for it.
 */
#include <assert.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/stat.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

#define VM_READY_TIMEOUT_MS   10000 /* iovd-vmm builds the VM before it listens */
#define VM_KILL_WAIT_SEC      5
#define VM_EXIT_FILE_WAIT_MS  2000
#define VM_COMMAND_TIMEOUT_MS 2000

static bool vm_is_active(const struct iov_vm_record *rec)
{
        return rec->state == IOV_VM_STATE_RUNNING || rec->state == IOV_VM_STATE_PAUSED;
}

void vm_watcher_wake(struct iov_vm_table *t)
{
        uint64_t one = 1;
        if (t->wake_fd >= 0)
                (void)!write(t->wake_fd, &one, sizeof(one));
}

/* ---- how a VMM ended ------------------------------------------------------------------ */

static void vm_judge_exit(const struct iov_vm_record *rec, const struct iov_vmm_exit *e,
                          enum iov_vm_state *ret_state, char **ret_reason)
{
        const char *last = e->reason ? e->reason : "no message";
        char *reason = NULL;
        enum iov_vm_state state = IOV_VM_STATE_CRASHED;
        if (rec->request == IOV_VM_REQUEST_KILL) {
                state = IOV_VM_STATE_STOPPED;
                reason = strdup("killed on request");
        } else if (rec->request == IOV_VM_REQUEST_STOP_TIMEOUT) {
                state = IOV_VM_STATE_STOPPED;
                reason = strdup("the guest did not shut down in time: killed");
        } else if (!e->known) {
                reason = util_strdup_printf("iovd-vmm ended and its exit status is lost (its "
                                            "monitor is gone): %s",
                                            last);
        } else if (e->signaled) {
                reason = util_strdup_printf("iovd-vmm was killed by signal %d (SIG%s)", e->code,
                                            sigabbrev_np(e->code) ? sigabbrev_np(e->code) : "?");
        } else if (e->code == 0) {
                state = IOV_VM_STATE_STOPPED;
                reason = strdup(e->reason ? e->reason : "the guest shut down");
        } else if (e->code == IOV_VMM_EXIT_GUEST_CRASH) {
                reason = util_strdup_printf("the guest crashed: %s", last);
        } else {
                reason = util_strdup_printf("iovd-vmm failed (exit status %d): %s", e->code, last);
        }
        *ret_state = state;
        *ret_reason = reason;
}

/* The files of a VMM that ended and that no one may take for a live one's. */
static void vm_remove_runtime_files(const char *dir)
{
        _cleanup_free_ char *sock = util_path_join(dir, IOV_VMM_FILE_CONTROL, NULL);
        _cleanup_free_ char *pid = util_path_join(dir, IOV_VMM_FILE_PID, NULL);
        if (sock)
                (void)unlink(sock);
        if (pid)
                (void)unlink(pid);
}

/* What vm_finish resets once the lock is dropped (NULL: out of memory, nothing reset). */
static struct iov_vm_passthrough *vm_passthrough_copy(const struct iov_vm_record *rec)
{
        struct iov_vm_passthrough *copy = calloc(rec->n_passthrough + 1, sizeof(*copy));
        if (copy && rec->n_passthrough)
                memcpy(copy, rec->passthrough, rec->n_passthrough * sizeof(*copy));
        return copy;
}

/* The verdict e on rec's run, which ended (lock held). */
static void vm_finish_record(struct iov_vm_table *t, struct iov_vm_record *rec,
                             struct iov_vmm_exit *e)
{
        if (rec->pidfd >= 0)
                close(rec->pidfd);
        rec->pidfd = -1;
        rec->finishing = false;
        rec->exit_pending = !e->known;
        if (e->known && rec->monitor_fd >= 0) { /* its exit file is read: nothing to wait for */
                close(rec->monitor_fd);
                rec->monitor_fd = -1;
        }
        rec->exit_status = e->known && !e->signaled ? e->code : -1;
        vm_record_set_stats(rec, TAKE_PTR(e->stats));
        enum iov_vm_state state;
        _cleanup_free_ char *reason = NULL;
        vm_judge_exit(rec, e, &state, &reason);
        rec->request = IOV_VM_REQUEST_NONE;
        vm_record_set_state(t, rec, state, reason);
        vm_links_down(t, rec);
        vm_restart_consider(t, rec);
        /* Saved by the saver, not here: the watcher follows every VMM and must not wait for
         * the disk (a save takes milliseconds, and the ends of several VMs queued behind
         * each other's). A kill or stop waiting for this verdict saves before it answers;
         * an iovd that dies before the save judges the end again at its start, from the
         * exit file (vm_reattach). */
        vm_table_save_soon(t);
}

/* Record the end of run `run` of VM id: read the monitor's verdict (without the lock: it
 * may take a moment to appear), then change the state. */
static void vm_finish(struct iov_vm_table *t, const char *id, unsigned run)
{
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        if (!rec || rec->run != run || rec->finishing) {
                pthread_mutex_unlock(&t->lock);
                return;
        }
        rec->finishing = true;
        /* Killed on request: the verdict needs nothing of the monitor's (vm_judge_exit), so
         * it does not wait for its exit file, which a monitor woken late writes tens of ms
         * after the VMM ended (bench/vms exit_read); the next start waits for it instead. */
        bool killed = rec->request == IOV_VM_REQUEST_KILL;
        _cleanup_free_ char *dir = vm_record_dir(t, rec);
        size_t n_passthrough = rec->n_passthrough;
        _cleanup_free_ struct iov_vm_passthrough *passthrough = vm_passthrough_copy(rec);
        _cleanup_close_ int monitor_fd =
                rec->monitor_fd >= 0 ? fcntl(rec->monitor_fd, F_DUPFD_CLOEXEC, 3) : -1;
        pthread_mutex_unlock(&t->lock);

        struct iov_vmm_exit e = {0};
        if (dir) {
                uint64_t start = util_now_usec();
                (void)supervisor_read_exit(dir, monitor_fd, killed ? 0 : VM_EXIT_FILE_WAIT_MS, &e);
                vm_time_step(t, IOV_VM_STEP_EXIT_READ, start);
                /* Now, while finishing keeps a new start away from these files. */
                vm_remove_runtime_files(dir);
        }
        /* Whatever the guest left its devices doing (a crash mid-DMA), they are reset
         * before the VM is seen stopped or crashed, and stay held. */
        daemon_test_crash_point("vm-vmm-ended");
        vm_passthrough_reset(t->daemon, id, passthrough, passthrough ? n_passthrough : 0);

        pthread_mutex_lock(&t->lock);
        rec = vm_table_find(t, id);
        if (rec && rec->run == run)
                vm_finish_record(t, rec, &e);
        pthread_mutex_unlock(&t->lock);
        supervisor_exit_clear(&e);
}

/* ---- the watcher ---------------------------------------------------------------------- */

struct watch_entry {
        char id[IOV_VM_ID_MAX];
        unsigned run;
};

/* Bound the console files of the VMs that run (vm-console.c), outside the lock. */
static void watcher_trim_consoles(struct iov_vm_table *t)
{
        pthread_mutex_lock(&t->lock);
        char **dirs = calloc(t->n_records + 1, sizeof(*dirs));
        size_t n = 0;
        for (size_t i = 0; dirs && i < t->n_records; i++)
                if (t->records[i]->pidfd >= 0 && (dirs[n] = vm_record_dir(t, t->records[i])))
                        n++;
        pthread_mutex_unlock(&t->lock);
        for (size_t i = 0; i < n; i++) {
                int r = vm_console_trim(dirs[i]);
                if (r < 0)
                        log_debug_errno(r, "Cannot trim the console in %s: %m", dirs[i]);
                free(dirs[i]);
        }
        free(dirs);
}

struct watch_set {
        struct pollfd *pfds; /* [0]: the wake eventfd, then one pidfd per followed VMM */
        struct watch_entry *entries;
        size_t n, capacity;
};

/* Fill set with what to wait for (takes the lock); false when the watcher must end. */
static bool watcher_collect(struct iov_vm_table *t, struct watch_set *set)
{
        pthread_mutex_lock(&t->lock);
        bool go_on = !t->stopping;
        size_t need = t->n_records + 1;
        if (need > set->capacity) {
                struct pollfd *pfds = realloc(set->pfds, need * sizeof(*pfds));
                if (pfds)
                        set->pfds = pfds;
                struct watch_entry *entries = realloc(set->entries, need * sizeof(*entries));
                if (entries)
                        set->entries = entries;
                if (pfds && entries)
                        set->capacity = need;
        }
        set->n = 0;
        if (set->capacity > 0)
                set->pfds[set->n++] = (struct pollfd){.fd = t->wake_fd, .events = POLLIN};
        for (size_t i = 0; i < t->n_records && set->n < set->capacity; i++) {
                struct iov_vm_record *rec = t->records[i];
                if (rec->pidfd < 0 || rec->finishing)
                        continue;
                set->pfds[set->n] = (struct pollfd){.fd = rec->pidfd, .events = POLLIN};
                memcpy(set->entries[set->n].id, rec->id, sizeof(rec->id));
                set->entries[set->n++].run = rec->run;
        }
        pthread_mutex_unlock(&t->lock);
        return go_on;
}

static void *watcher_main(void *userdata)
{
        struct iov_vm_table *t = userdata;
        struct watch_set set = {0};
        uint64_t next_trim = 0;
        while (watcher_collect(t, &set)) {
                if (util_now_usec() >= next_trim) {
                        watcher_trim_consoles(t);
                        next_trim = util_now_usec() + 1000000;
                }
                if (set.n == 0) { /* out of memory: try again in a moment */
                        util_sleep_usec(100000);
                        continue;
                }
                if (poll(set.pfds, set.n, 1000) <= 0)
                        continue;
                if (set.pfds[0].revents) {
                        uint64_t v;
                        (void)!read(t->wake_fd, &v, sizeof(v));
                }
                for (size_t i = 1; i < set.n; i++)
                        if (set.pfds[i].revents)
                                vm_finish(t, set.entries[i].id, set.entries[i].run);
        }
        free(set.pfds);
        free(set.entries);
        return NULL;
}

int vm_watcher_start(struct iov_vm_table *t)
{
        t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (t->wake_fd < 0)
                return -errno;
        int r = vm_saver_start(t);
        if (r < 0)
                return r;
        r = pthread_create(&t->watcher, NULL, watcher_main, t);
        if (r != 0)
                return -r;
        t->watcher_running = true;
        return 0;
}

void vm_watcher_stop(struct iov_vm_table *t)
{
        if (t->watcher_running) {
                pthread_mutex_lock(&t->lock);
                t->stopping = true;
                pthread_mutex_unlock(&t->lock);
                vm_watcher_wake(t);
                pthread_join(t->watcher, NULL);
                t->watcher_running = false;
                vm_restart_wait_all(t);
        }
        vm_saver_stop(t); /* after everything that changes the table */
        if (t->wake_fd >= 0)
                close(t->wake_fd);
        t->wake_fd = -1;
}

/* ---- re-attach at start --------------------------------------------------------------- */

/* A live VMM's own state (its "status" reply, in the contract's names): running unless it
 * says paused. */
static enum iov_vm_state vm_vmm_state(const char *dir)
{
        struct json_object *status = NULL;
        enum iov_vm_state state = IOV_VM_STATE_RUNNING;
        if (supervisor_command(dir, "status", VM_COMMAND_TIMEOUT_MS, &status) >= 0 &&
            vm_state_from_string(json_object_get_string(json_object_object_get(status, "state")),
                                 &state) >= 0 &&
            state != IOV_VM_STATE_PAUSED)
                state = IOV_VM_STATE_RUNNING;
        json_object_put(status);
        return state;
}

/* The jail slot of a running VMM, from its uid (/proc/PID/status "Uid:"); -1 if none. */
static int vm_read_slot(struct iov_vm_table *t, pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        _cleanup_free_ char *status = NULL;
        if (util_read_file(path, 64 * 1024, &status, NULL) < 0)
                return -1;
        const char *line = strstr(status, "\nUid:");
        unsigned long uid;
        if (!line || sscanf(line + 5, "%lu", &uid) != 1)
                return -1;
        uint32_t base = t->daemon->config.vmm_uid_base;
        return uid >= base && uid - base < IOV_VMS_MAX ? (int)(uid - base) : -1;
}

void vm_reattach(struct iov_vm_table *t, struct iov_vm_record *rec)
{
        _cleanup_free_ char *dir = vm_record_dir(t, rec);
        if (!dir)
                return;
        struct iov_vmm_process p;
        int fd = -1;
        int r = supervisor_read_pid_file(dir, &p);
        if (r >= 0)
                r = supervisor_open_pidfd(&p, &fd);
        if (r >= 0) {
                rec->process = p;
                rec->pidfd = fd;
                /* Its verdict waits on the monitor as a spawned one's does on its pipe;
                 * without it (gone already) the exit file is read at once. */
                if (supervisor_open_monitor_pidfd(&p, &rec->monitor_fd) < 0)
                        rec->monitor_fd = -1;
                /* A kill saved before iovd died, its VMM still there: finish it. */
                if (rec->request == IOV_VM_REQUEST_KILL ||
                    rec->request == IOV_VM_REQUEST_STOP_TIMEOUT)
                        (void)pidfd_send_signal(fd, SIGKILL, NULL, 0);
                rec->vmm_slot = vm_read_slot(t, p.pid);
                vm_cgroup_restore(t, rec);
                /* The VMM's word is the truth: iovd may have died before it saved the
                 * state of a start or a pause. */
                enum iov_vm_state state = vm_vmm_state(dir);
                if (rec->state != state)
                        vm_record_set_state(t, rec, state, NULL);
                log_info("VM %s: re-attached to iovd-vmm pid %d", rec->id, (int)p.pid);
                return;
        }
        if (rec->state != IOV_VM_STATE_RUNNING && rec->state != IOV_VM_STATE_PAUSED)
                return;
        /* The VMM ended while iovd was not running (or the host rebooted: no pid file). */
        struct iov_vmm_exit e = {0};
        (void)supervisor_read_exit(dir, -1, 0, &e);
        enum iov_vm_state state;
        _cleanup_free_ char *reason = NULL;
        vm_judge_exit(rec, &e, &state, &reason);
        if (!e.known && !e.reason) {
                free(reason);
                reason = strdup("iovd-vmm was gone when iovd started (no trace of its end)");
        }
        vm_record_set_stats(rec, TAKE_PTR(e.stats));
        supervisor_exit_clear(&e);
        vm_passthrough_reset(t->daemon, rec->id, rec->passthrough, rec->n_passthrough);
        rec->request = IOV_VM_REQUEST_NONE;
        vm_record_set_state(t, rec, state, reason);
}

/* ---- requests ------------------------------------------------------------------------- */

/* Wait (lock held) until run `run` of VM id is no longer active or deadline (wall clock,
 * usec) passed. Returns the record, or NULL when it vanished. */
static struct iov_vm_record *vm_wait_inactive(struct iov_vm_table *t, const char *id, unsigned run,
                                              uint64_t deadline)
{
        for (;;) {
                struct iov_vm_record *rec = vm_table_find(t, id);
                if (!rec || rec->run != run || (!vm_is_active(rec) && rec->pidfd < 0) ||
                    t->stopping || util_realtime_usec() >= deadline)
                        return rec;
                struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000),
                                      .tv_nsec = (long)(deadline % 1000000) * 1000};
                pthread_cond_timedwait(&t->changed, &t->lock, &ts);
        }
}

/* The answer with rec, or a 404 when a DELETE removed the VM while this request waited
 * with the lock dropped (a kill or stop racing a delete): the client's race, never a 500. */
static int vm_reply(struct iov_vm_table *t, struct iov_vm_record *rec, const char *id,
                    struct json_object **ret, struct iov_problem *p)
{
        if (!rec)
                return vm_problem_not_found(p, id);
        struct json_object *o = vm_record_to_json(t, rec);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* iovd-vmm's --config: the definition in the contract's JSON form, which iovd-vmm reads
 * with the same parser as the API (vm-contract.h), with "fd:N" for each host file and its
 * vfio entries naming the host functions the VM's allocations hold (vm_passthrough_prepare). */
static int vm_write_config(struct json_object *config, const char *dir)
{
        _cleanup_free_ char *path = util_path_join(dir, IOV_VMM_FILE_CONFIG, NULL);
        if (!path)
                return -ENOMEM;
        const char *text = json_object_to_json_string_ext(config, JSON_C_TO_STRING_PLAIN);
        int r = util_mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        /* A runtime file, read once by the VMM this start spawns: nothing reads it after a
         * crash of the host, so no fsync (they cost about 16 ms a start, bench/vms). */
        return util_write_file_replace(path, text, strlen(text), 0600);
}

/* Spawn the VMM of rec (dir prepared, its files opened into fds), lock not held; jailed
 * as uid and gid --vmm-uid-base + its slot unless --no-vmm-jail, and in a cgroup of its
 * own wherever iovd may make cgroups (vm-cgroup.c), jailed or not. */
static int vm_spawn(struct iov_vm_table *t, const struct iov_vm_record *rec,
                    struct json_object *config, const char *dir, struct iov_vmm_fds *fds,
                    struct iov_vmm_process *ret_process, int *ret_pidfd, int *ret_monitor_fd)
{
        const struct iov_daemon_config *c = &t->daemon->config;
        uint64_t start = util_now_usec();
        int r = vm_write_config(config, dir);
        if (r < 0)
                return r;
        vm_time_step(t, IOV_VM_STEP_CONFIG_WRITE, start);
        uint32_t id = c->vmm_uid_base + (uint32_t)rec->vmm_slot;
        _cleanup_free_ char *cgroup = NULL;
        start = util_now_usec();
        r = vm_cgroup_create(t, rec, &cgroup);
        if (r < 0) /* limits are best effort: the VM runs all the same */
                log_warning_errno(r, "VM %s: no cgroup limits: %m", rec->id);
        vm_time_step(t, IOV_VM_STEP_JAIL_SETUP, start);
        struct iov_vmm_confinement confinement = {
                .jail = c->vmm_jail, .uid = id, .gid = id, .cgroup = cgroup};
        struct iov_vmm_process p;
        uint64_t forked = start = util_now_usec();
        int monitor_fd = -1;
        r = supervisor_spawn(t->vmm_path, dir, fds, &confinement, &p, &monitor_fd, &forked);
        if (r < 0)
                return r;
        /* Spawn ends where the monitor is on its own (its exec is timed apart). */
        vm_time_step(t, IOV_VM_STEP_SPAWN, start + (util_now_usec() - forked));
        vm_time_step(t, IOV_VM_STEP_MONITOR_EXEC, forked);
        int fd = -1;
        if (supervisor_open_pidfd(&p, &fd) < 0)
                fd = -1; /* ended already: judged at once below */
        *ret_process = p;
        *ret_pidfd = fd;
        *ret_monitor_fd = monitor_fd;
        return 0;
}

/* The lowest jail slot (uid offset) no VMM of another VM has (lock held): at most
 * IOV_VMS_MAX VMs exist, so one is always free. */
static int vm_free_slot(struct iov_vm_table *t, const struct iov_vm_record *rec)
{
        bool used[IOV_VMS_MAX] = {false};
        for (size_t i = 0; i < t->n_records; i++) {
                const struct iov_vm_record *other = t->records[i];
                if (other != rec && other->vmm_slot >= 0 &&
                    (other->pidfd >= 0 || other->starting || other->finishing))
                        used[other->vmm_slot] = true;
        }
        int slot = 0;
        while (slot < IOV_VMS_MAX - 1 && used[slot])
                slot++;
        return slot;
}

/* Claim a VM for a start (lock held): it must be neither running nor being started or
 * judged. While starting, a record is never deleted, so the caller may keep it. */
static int vm_start_claim(struct iov_vm_table *t, const char *id, struct iov_vm_record **ret,
                          char **ret_dir, struct iov_problem *p)
{
        struct iov_vm_record *rec = vm_table_find(t, id);
        if (!rec)
                return vm_problem_not_found(p, id);
        if (rec->starting || rec->deleting || rec->pidfd >= 0 || rec->finishing ||
            vm_is_active(rec))
                return vm_problem_state(p, rec, "start");
        int r = vm_admission_check(t, rec, true, p);
        if (r < 0)
                return r;
        char *dir = vm_record_dir(t, rec);
        if (!dir)
                return -ENOMEM;
        rec->starting = true;
        rec->vmm_slot = vm_free_slot(t, rec);
        *ret = rec;
        *ret_dir = dir;
        return 0;
}

/* Record a new run of rec's VMM (lock held); returns the run's number. */
static unsigned vm_start_record(struct iov_vm_table *t, struct iov_vm_record *rec,
                                const struct iov_vmm_process *process, int pidfd, int monitor_fd,
                                bool unsafe)
{
        rec->starting = false;
        rec->monitor_fd = monitor_fd; /* the last run's was taken by vm_start */
        rec->unsafe_interrupts = unsafe;
        rec->run++;
        rec->process = *process;
        rec->pidfd = pidfd;
        rec->request = IOV_VM_REQUEST_NONE;
        rec->exit_status = -1;
        rec->started_usec = util_realtime_usec();
        rec->started_mono_usec = util_now_usec();
        rec->marker_seen = false;
        json_object_put(rec->stats);
        rec->stats = NULL;
        vm_record_set_state(t, rec, IOV_VM_STATE_RUNNING, NULL);
        return rec->run;
}

/* The answer to a start once run `run` is up or over (lock held): a VMM that could not
 * build the VM is the client's problem (a bad image, 422), one that cannot be executed is
 * iovd's (500); anything else is the VM's state. */
static int vm_start_answer(struct iov_vm_table *t, const char *id, unsigned run,
                           struct json_object **ret, struct iov_problem *p)
{
        struct iov_vm_record *rec = vm_table_find(t, id);
        bool failed = rec && rec->run == run && rec->state == IOV_VM_STATE_CRASHED;
        if (failed && rec->exit_status == SUPERVISOR_EXIT_EXEC_FAILED)
                return daemon_problem_set(p, 500, "vmm_failed", "VM %s did not start: %s", id,
                                          rec->reason ? rec->reason
                                                      : "iovd-vmm cannot be executed");
        if (failed && (rec->exit_status == IOV_VMM_EXIT_BUILD_FAILED ||
                       rec->exit_status == IOV_VMM_EXIT_USAGE))
                return daemon_problem_set(p, 422, "vmm_failed", "VM %s did not start: %s", id,
                                          rec->reason ? rec->reason : "iovd-vmm failed");
        return vm_reply(t, rec, id, ret, p);
}

/* The VMM's configuration for a claimed rec (lock not held): its files opened beneath the
 * image directories into fds (named "fd:N"), its devices reset and named by host
 * function. A refusal (-EBADMSG with p filled: a file gone, or swapped for a way out of its
 * image directory; a device that cannot be reset) leaves the VM as it was, no longer
 * starting, and fds empty. */
static int vm_start_config(struct iov_vm_table *t, struct iov_vm_record *rec,
                           struct iov_vmm_fds *fds, struct json_object **ret, bool *ret_unsafe,
                           struct iov_problem *p)
{
        _cleanup_json_ struct json_object *config = NULL;
        uint64_t start = util_now_usec();
        int r = vm_files_open(t, &rec->spec, fds, &config, p);
        if (r >= 0)
                r = vm_passthrough_prepare(t->daemon, rec, config, fds, ret_unsafe, p);
        vm_time_step(t, IOV_VM_STEP_FILE_OPEN, start);
        if (r < 0) {
                supervisor_fds_clear(fds);
                pthread_mutex_lock(&t->lock);
                rec->starting = false;
                pthread_cond_broadcast(&t->changed);
                pthread_mutex_unlock(&t->lock);
                return r;
        }
        *ret = TAKE_PTR(config);
        return 0;
}

/* Answer a start once run `run`'s control socket is up, or once the end of a VMM that did
 * not get that far was judged (wait_fd: a pidfd of the VMM, -1 when it ended before iovd
 * could follow it). A VM that runs waits for the save of its running state (generation
 * gen) only, not for those of what other VMs changed since; an end judged here is saved
 * with everything before it. */
static int vm_start_wait(struct iov_vm_table *t, const char *id, unsigned run, const char *dir,
                         int wait_fd, uint64_t gen, struct json_object **ret, struct iov_problem *p)
{
        uint64_t start = util_now_usec();
        bool ended =
                wait_fd < 0 || supervisor_wait_ready(dir, wait_fd, VM_READY_TIMEOUT_MS) == -ECHILD;
        vm_time_step(t, IOV_VM_STEP_VMM_READY, start);
        if (ended && wait_fd < 0)
                vm_finish(t, id, run); /* ended before iovd could follow it */
        if (!ended)
                vm_links_up(t, id);
        pthread_mutex_lock(&t->lock);
        if (ended)
                (void)vm_wait_inactive(t, id, run,
                                       util_realtime_usec() + VM_KILL_WAIT_SEC * 1000000ULL);
        int r = vm_start_answer(t, id, run, ret, p);
        (void)vm_table_sync_gen(t, ended ? t->change_gen : gen);
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* The monitor of the last run may not have written its exit file yet (vm_finish of a kill):
 * let it, before this start clears the run directory, so that it never lands on the new
 * run's files. */
static void vm_wait_last_exit(const char *dir, int monitor_fd)
{
        struct iov_vmm_exit e = {0};
        (void)supervisor_read_exit(dir, monitor_fd, VM_EXIT_FILE_WAIT_MS, &e);
        supervisor_exit_clear(&e);
}

static int vm_start(struct iov_vm_table *t, const char *id, struct json_object **ret,
                    struct iov_problem *p)
{
        struct iov_vm_record *rec = NULL;
        _cleanup_free_ char *dir = NULL;
        pthread_mutex_lock(&t->lock);
        int r = vm_start_claim(t, id, &rec, &dir, p);
        bool exit_pending = false;
        _cleanup_close_ int last_monitor_fd = -1;
        if (r >= 0 && rec) {
                exit_pending = rec->exit_pending;
                rec->exit_pending = false;
                last_monitor_fd = TAKE_FD(rec->monitor_fd);
        }
        pthread_mutex_unlock(&t->lock);
        if (r < 0)
                return r;
        if (exit_pending)
                vm_wait_last_exit(dir, last_monitor_fd);
        bool unsafe = false;
        struct iov_vmm_fds fds = {0};
        _cleanup_json_ struct json_object *config = NULL;
        r = vm_start_config(t, rec, &fds, &config, &unsafe, p);
        if (r < 0)
                return r;
        struct iov_vmm_process process = {0};
        int fd = -1, monitor_fd = -1;
        daemon_test_crash_point("vm-start-prepared");
        r = vm_spawn(t, rec, config, dir, &fds, &process, &fd, &monitor_fd);
        supervisor_fds_clear(&fds);
        pthread_mutex_lock(&t->lock);
        if (r < 0) {
                rec->starting = false;
                _cleanup_free_ char *reason = util_strdup_printf("cannot start iovd-vmm %s: %s",
                                                                 t->vmm_path, strerror(-r));
                vm_record_set_state(t, rec, IOV_VM_STATE_CRASHED, reason);
                (void)vm_table_sync(t);
                pthread_mutex_unlock(&t->lock);
                return daemon_problem_set(p, 500, "vmm_failed", "%s",
                                          reason ? reason : "out of memory");
        }
        unsigned run = vm_start_record(t, rec, &process, fd, monitor_fd, unsafe);
        uint64_t gen = t->change_gen;
        /* The running state is saved while the VMM builds the VM; the answer waits for it. */
        vm_table_save_soon(t);
        _cleanup_close_ int wait_fd = fd >= 0 ? dup(fd) : -1;
        pthread_mutex_unlock(&t->lock);
        vm_watcher_wake(t);
        return vm_start_wait(t, id, run, dir, wait_fd, gen, ret, p);
}

/* Find an active VM with its VMM followed and no stop under way; lock held. */
static int vm_find_active(struct iov_vm_table *t, const char *id, const char *what,
                          enum iov_vm_state need, struct iov_vm_record **ret, struct iov_problem *p)
{
        struct iov_vm_record *rec = vm_table_find(t, id);
        if (!rec)
                return vm_problem_not_found(p, id);
        bool state_ok = need == IOV_VM_STATE_CREATED ? vm_is_active(rec) : rec->state == need;
        if (!state_ok || rec->pidfd < 0 || rec->finishing || rec->request != IOV_VM_REQUEST_NONE)
                return vm_problem_state(p, rec, what);
        *ret = rec;
        return 0;
}

static int vm_pause(struct iov_vm_table *t, const char *id, bool pause, struct json_object **ret,
                    struct iov_problem *p)
{
        struct iov_vm_record *rec = NULL; /* set only on success */
        pthread_mutex_lock(&t->lock);
        int r = vm_find_active(t, id, pause ? "pause" : "resume",
                               pause ? IOV_VM_STATE_RUNNING : IOV_VM_STATE_PAUSED, &rec, p);
        if (!rec) {
                assert(r < 0);
                pthread_mutex_unlock(&t->lock);
                return r;
        }
        _cleanup_free_ char *dir = vm_record_dir(t, rec);
        unsigned run = rec->run;
        pthread_mutex_unlock(&t->lock);
        if (!dir)
                return -ENOMEM;
        struct json_object *reply = NULL;
        r = supervisor_command(dir, pause ? "pause" : "resume", VM_COMMAND_TIMEOUT_MS, &reply);
        json_object_put(reply);
        pthread_mutex_lock(&t->lock);
        rec = vm_table_find(t, id);
        if (r >= 0 && rec && rec->run == run && vm_is_active(rec))
                vm_record_set_state(t, rec, pause ? IOV_VM_STATE_PAUSED : IOV_VM_STATE_RUNNING,
                                    NULL);
        else if (r >= 0 || r == -EPROTO)
                r = rec ? vm_problem_state(p, rec, pause ? "pause" : "resume")
                        : vm_problem_not_found(p, id);
        if (r >= 0)
                r = vm_reply(t, rec, id, ret, p);
        (void)vm_table_sync(t);
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* SIGKILL through the pidfd (lock held) and wait for the watcher's verdict. The request is
 * saved (vms.json's "request") while the VMM ends, not after: the verdict of a kill is
 * known before it comes, so the answer needs that save only (*ret_gen), and an iovd that
 * dies before it saved the verdict judges the end the same at its start (vm_reattach). */
static struct iov_vm_record *vm_kill_and_wait(struct iov_vm_table *t, struct iov_vm_record *rec,
                                              enum iov_vm_request why, uint64_t *ret_gen)
{
        char id[IOV_VM_ID_MAX];
        memcpy(id, rec->id, sizeof(id));
        unsigned run = rec->run;
        uint64_t start = util_now_usec();
        rec->request = why;
        *ret_gen = ++t->change_gen;
        vm_table_save_soon(t);
        if (rec->pidfd >= 0 && pidfd_send_signal(rec->pidfd, SIGKILL, NULL, 0) < 0)
                log_warning_errno(-errno, "VM %s: cannot kill iovd-vmm: %m", id);
        rec = vm_wait_inactive(t, id, run, util_realtime_usec() + VM_KILL_WAIT_SEC * 1000000ULL);
        vm_time_step(t, IOV_VM_STEP_STOP, start);
        return rec;
}

static int vm_kill(struct iov_vm_table *t, const char *id, struct json_object **ret,
                   struct iov_problem *p)
{
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        uint64_t gen = t->change_gen;
        int r;
        /* A kill may overtake a stop that is waiting for the guest. */
        if (!rec)
                r = vm_problem_not_found(p, id);
        else if (!vm_is_active(rec) || rec->pidfd < 0 || rec->finishing)
                r = vm_problem_state(p, rec, "kill");
        else
                r = vm_reply(t, vm_kill_and_wait(t, rec, IOV_VM_REQUEST_KILL, &gen), id, ret, p);
        /* The kill's request, saved while the VMM ended; the verdict is the saver's. */
        (void)vm_table_sync_gen(t, gen);
        if (r >= 0)
                daemon_test_crash_point("vm-kill-saved");
        pthread_mutex_unlock(&t->lock);
        return r;
}

static int vm_stop(struct iov_vm_table *t, const char *id, unsigned timeout_sec,
                   struct json_object **ret, struct iov_problem *p)
{
        struct iov_vm_record *rec = NULL; /* set only on success */
        pthread_mutex_lock(&t->lock);
        int r = vm_find_active(t, id, "stop", IOV_VM_STATE_CREATED, &rec, p);
        if (!rec) {
                assert(r < 0);
                pthread_mutex_unlock(&t->lock);
                return r;
        }
        _cleanup_free_ char *dir = vm_record_dir(t, rec);
        bool paused = rec->state == IOV_VM_STATE_PAUSED;
        unsigned run = rec->run;
        rec->request = IOV_VM_REQUEST_STOP;
        pthread_mutex_unlock(&t->lock);
        /* Ask the guest (Ctrl+Alt+Del on its i8042); a paused guest cannot hear it. */
        struct json_object *reply = NULL;
        if (paused && dir)
                (void)supervisor_command(dir, "resume", VM_COMMAND_TIMEOUT_MS, &reply);
        json_object_put(TAKE_PTR(reply));
        bool asked = dir && supervisor_command(dir, "stop", VM_COMMAND_TIMEOUT_MS, &reply) >= 0;
        json_object_put(reply);

        pthread_mutex_lock(&t->lock);
        uint64_t deadline = util_realtime_usec() + (asked ? timeout_sec * 1000000ULL : 0);
        rec = vm_wait_inactive(t, id, run, deadline);
        uint64_t gen;
        if (rec && rec->run == run && (vm_is_active(rec) || rec->pidfd >= 0) &&
            rec->request == IOV_VM_REQUEST_STOP)
                rec = vm_kill_and_wait(t, rec, IOV_VM_REQUEST_STOP_TIMEOUT, &gen);
        r = vm_reply(t, rec, id, ret, p);
        (void)vm_table_sync(t);
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* The start's answer carries the live stats, as a GET does: the VMM answers its control
 * socket only once the VM is built, and a small guest's first boot marker often comes
 * before the start's save is done, so a client waiting for one sees it here instead of a
 * poll later (bench/vms: 2.4 ms from the marker to seeing it, the first GET's). */
static int vm_start_with_stats(struct iov_vm_table *t, const char *id, struct json_object **ret,
                               struct iov_problem *p)
{
        struct json_object *o = NULL;
        int r = vm_start(t, id, &o, p);
        if (r < 0 || !o)
                return r;
        vm_add_live_stats(t, id, o);
        *ret = o;
        return r;
}

int vms_act(struct iov_daemon *d, const char *id, enum iov_vm_action action,
            unsigned stop_timeout_sec, struct json_object **ret, struct iov_problem *p)
{
        struct iov_vm_table *t = d->vms;
        switch (action) {
        case IOV_VM_ACTION_START:
                return vm_start_with_stats(t, id, ret, p);
        case IOV_VM_ACTION_STOP:
                return vm_stop(t, id, stop_timeout_sec, ret, p);
        case IOV_VM_ACTION_KILL:
                return vm_kill(t, id, ret, p);
        case IOV_VM_ACTION_PAUSE:
                return vm_pause(t, id, true, ret, p);
        case IOV_VM_ACTION_RESUME:
                return vm_pause(t, id, false, ret, p);
        }
        return -EINVAL;
}
