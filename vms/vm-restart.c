/* SPDX-License-Identifier: MIT */
/*
 * vm-restart: the restart policy of a VM definition ("restart": "on-crash"). A VM that
 * crashed (not one stopped or killed on request) is started again after
 * IOV_VM_RESTART_DELAY_SEC, on a thread of its own so the watcher that saw the crash goes
 * on following the other VMs. A run shorter than that delay is not restarted: a VMM that
 * cannot even build its VM would otherwise be restarted forever.
 */
#include <stdio.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

#define IOV_VM_RESTART_DELAY_SEC 1

struct vm_restart {
        struct iov_daemon *daemon;
        char id[IOV_VM_ID_MAX];
        unsigned run; /* the run that crashed: a start meanwhile cancels the restart */
};

/* The restart is over (lock not held): vm_restart_wait_all() may return. */
static void vm_restart_done(struct iov_vm_table *t)
{
        pthread_mutex_lock(&t->lock);
        t->restarts_running--;
        pthread_cond_broadcast(&t->changed);
        pthread_mutex_unlock(&t->lock);
}

static void *vm_restart_main(void *arg)
{
        _cleanup_free_ struct vm_restart *rs = arg;
        struct iov_vm_table *t = rs->daemon->vms;
        util_sleep_usec(IOV_VM_RESTART_DELAY_SEC * 1000000ULL);
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, rs->id);
        bool go = !t->stopping && rec && rec->run == rs->run && rec->state == IOV_VM_STATE_CRASHED;
        pthread_mutex_unlock(&t->lock);
        if (!go) {
                vm_restart_done(t);
                return NULL;
        }
        log_info("VM %s: crashed, restarting it (restart: on-crash)", rs->id);
        struct json_object *o = NULL;
        struct iov_problem p = {0};
        int r = vms_act(rs->daemon, rs->id, IOV_VM_ACTION_START, 0, &o, &p);
        if (r < 0)
                log_warning_errno(r, "VM %s: restart failed: %m (%s)", rs->id, p.message);
        json_object_put(o);
        json_object_put(p.details);
        vm_restart_done(t);
        return NULL;
}

void vm_restart_consider(struct iov_vm_table *t, const struct iov_vm_record *rec)
{
        if (rec->spec.restart != IOV_VM_RESTART_ON_CRASH || rec->state != IOV_VM_STATE_CRASHED ||
            t->stopping)
                return;
        if (util_realtime_usec() - rec->started_usec < IOV_VM_RESTART_DELAY_SEC * 1000000ULL) {
                log_warning("VM %s: crashed within %d s of its start: not restarted", rec->id,
                            IOV_VM_RESTART_DELAY_SEC);
                return;
        }
        struct vm_restart *rs = calloc(1, sizeof(*rs));
        if (!rs)
                return;
        *rs = (struct vm_restart){.daemon = t->daemon, .run = rec->run};
        memcpy(rs->id, rec->id, sizeof(rs->id));
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attr, vm_restart_main, rs) == 0)
                t->restarts_running++;
        else
                free(rs);
        pthread_attr_destroy(&attr);
}

void vm_restart_wait_all(struct iov_vm_table *t)
{
        pthread_mutex_lock(&t->lock);
        while (t->restarts_running > 0)
                pthread_cond_wait(&t->changed, &t->lock);
        pthread_mutex_unlock(&t->lock);
}
