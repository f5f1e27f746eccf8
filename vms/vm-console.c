/* SPDX-License-Identifier: MIT */
/*
 * vm-console: what a VM's guest printed on COM1. iovd-vmm appends it to
 * RUN_DIR/vms/ID/console.log; a read returns the last IOV_VM_CONSOLE_TAIL bytes, a
 * follower streams from there on as the file grows and ends once the VM is no longer
 * running and everything it printed was sent.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/stat.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

/* The console file of a running VM is kept from growing without bound: once more than
 * CONSOLE_TRIM_AT bytes of it take space, everything but the last CONSOLE_KEEP bytes is
 * punched out (FALLOC_FL_PUNCH_HOLE: the file keeps its size and iovd-vmm keeps
 * appending, the head reads as zeros and takes no space). */
#define CONSOLE_TRIM_AT   (2 * 1024 * 1024)
#define CONSOLE_KEEP      (1024 * 1024)
#define FOLLOW_POLL_USEC  20000
#define FOLLOW_BLOCK_USEC 900000 /* api.h: a stream read blocks about a second at most */

static int console_path(struct iov_vm_table *t, const char *id, char **ret, struct iov_problem *p)
{
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        _cleanup_free_ char *dir = rec ? vm_record_dir(t, rec) : NULL;
        pthread_mutex_unlock(&t->lock);
        if (!rec)
                return vm_problem_not_found(p, id);
        char *path = dir ? util_path_join(dir, IOV_VMM_FILE_CONSOLE, NULL) : NULL;
        if (!path)
                return -ENOMEM;
        *ret = path;
        return 0;
}

/* JSON strings must be UTF-8: bytes outside printable ASCII (but for tab, newline and
 * carriage return) are shown as '?'; the follow stream sends the bytes as they are. */
static void console_sanitize(char *s, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c >= 0x7f)
                        s[i] = '?';
        }
}

int vms_console_read(struct iov_daemon *d, const char *id, struct json_object **ret,
                     struct iov_problem *p)
{
        _cleanup_free_ char *path = NULL;
        int r = console_path(d->vms, id, &path, p);
        if (r < 0)
                return r;
        _cleanup_free_ char *buf = malloc(IOV_VM_CONSOLE_TAIL + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t n = 0;
        off_t size = 0;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT)
                return -errno;
        if (fd >= 0) {
                size = lseek(fd, 0, SEEK_END);
                off_t start = size > IOV_VM_CONSOLE_TAIL ? size - IOV_VM_CONSOLE_TAIL : 0;
                n = pread(fd, buf, IOV_VM_CONSOLE_TAIL, start);
                if (n < 0)
                        return -errno;
        }
        console_sanitize(buf, (size_t)n);
        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "output", json_object_new_string_len(buf, (int)n));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
        json_object_object_add(o, "truncated", json_object_new_boolean(size > n));
        *ret = o;
        return 0;
}

int vm_console_trim(const char *dir)
{
        _cleanup_free_ char *path = util_path_join(dir, IOV_VMM_FILE_CONSOLE, NULL);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t)st.st_blocks * 512 <= CONSOLE_TRIM_AT || st.st_size <= CONSOLE_KEEP)
                return 0;
        off_t end = (st.st_size - CONSOLE_KEEP) & ~(off_t)4095;
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, end) < 0)
                return -errno;
        return 1;
}

struct iov_vm_console_follower {
        struct iov_daemon *daemon;
        char id[IOV_VM_ID_MAX];
        char *path;
        int fd;
        off_t offset;
};

void vms_console_follower_free(struct iov_vm_console_follower *f)
{
        if (!f)
                return;
        if (f->fd >= 0)
                close(f->fd);
        free(f->path);
        free(f);
}

static void follower_open(struct iov_vm_console_follower *f)
{
        if (f->fd >= 0)
                return;
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0)
                return;
        off_t size = lseek(f->fd, 0, SEEK_END);
        f->offset = size > IOV_VM_CONSOLE_TAIL ? size - IOV_VM_CONSOLE_TAIL : 0;
}

int vms_console_follow(struct iov_daemon *d, const char *id, struct iov_vm_console_follower **ret,
                       struct iov_problem *p)
{
        struct iov_vm_console_follower *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->daemon = d;
        f->fd = -1;
        int r = console_path(d->vms, id, &f->path, p);
        if (r < 0) {
                free(f);
                return r;
        }
        snprintf(f->id, sizeof(f->id), "%s", id);
        follower_open(f);
        *ret = f;
        return 0;
}

/* Whether more output may still come: a VMM runs (or is about to) for this VM, and iovd
 * is not stopping (it waits for every connection, so a stream must end by itself). */
static bool follower_vm_active(const struct iov_vm_console_follower *f)
{
        if (daemon_is_stopping(f->daemon))
                return false;
        struct iov_vm_table *t = f->daemon->vms;
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, f->id);
        bool active = rec && !t->stopping &&
                      (rec->starting || rec->finishing || rec->pidfd >= 0 ||
                       rec->state == IOV_VM_STATE_RUNNING || rec->state == IOV_VM_STATE_PAUSED);
        pthread_mutex_unlock(&t->lock);
        return active;
}

static ssize_t follower_pread(struct iov_vm_console_follower *f, char *buf, size_t max)
{
        follower_open(f);
        if (f->fd < 0)
                return 0;
        /* Fallen behind what the trim keeps: skip to the kept tail, not into the hole. */
        struct stat st;
        if (fstat(f->fd, &st) == 0 && st.st_size - f->offset > CONSOLE_KEEP)
                f->offset = st.st_size - CONSOLE_KEEP;
        ssize_t n = pread(f->fd, buf, max, f->offset);
        if (n < 0)
                return VMS_CONSOLE_ERROR;
        f->offset += n;
        return n;
}

ssize_t vms_console_follower_read(struct iov_vm_console_follower *f, char *buf, size_t max)
{
        uint64_t until = util_now_usec() + FOLLOW_BLOCK_USEC;
        for (;;) {
                /* Checked before reading: output written before the VM ended is read
                 * below, after which an inactive VM has nothing more to say. */
                bool active = follower_vm_active(f);
                ssize_t n = follower_pread(f, buf, max);
                if (n != 0)
                        return n;
                if (!active)
                        return VMS_CONSOLE_END;
                if (util_now_usec() >= until)
                        return 0;
                util_sleep_usec(FOLLOW_POLL_USEC);
        }
}
