/* SPDX-License-Identifier: MIT */
/*
 * vm-files: the host files a VM definition names (kernel, initrd, the fields of device
 * entries listed in their model's host_files: disk images, console input), confined to
 * the operator's image directories (--image-dir); and TAP interfaces, which iovd opens by
 * name at a start (the VMM has no capability to).
 *
 * A path must be absolute and inside one image directory; the part below it is resolved
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) (Linux >= 5.6,
 * Documentation/filesystems/path-lookup.rst), so neither "..", an absolute symlink nor a
 * symlink swapped in at any moment leads out of it: the kernel refuses the walk, iovd
 * never opens a file outside. Where openat2 answers ENOSYS (a kernel before 5.6, or a
 * seccomp filter such as systemd's RestrictSUIDSGID=, which cannot inspect struct
 * open_how and so refuses the whole call), iovd walks the path itself, one component at a
 * time with O_NOFOLLOW (files_walk: weaker, see there). iovd opens each file at create (to refuse a
 * bad one at once) and again at every start, where it hands the descriptor to iovd-vmm: the
 * config.json iovd-vmm reads names it "fd:N", never a host path (docs/architecture.md).
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

/* path with every run of slashes made one ("//a///b" is "/a/b" to the kernel too), so
 * the image directory is found by its prefix. */
static char *files_collapse_slashes(const char *path)
{
        char *s = malloc(strlen(path) + 1);
        if (!s)
                return NULL;
        size_t n = 0;
        for (const char *c = path; *c; c++)
                if (*c != '/' || n == 0 || s[n - 1] != '/')
                        s[n++] = *c;
        s[n] = '\0';
        return s;
}

/* The image directory path lies in and the rest of path below it; NULL when none. */
static const char *files_find_dir(const struct iov_daemon_config *c, const char *path,
                                  const char **ret_rest)
{
        for (size_t i = 0; i < c->n_image_dirs; i++) {
                const char *dir = c->image_dirs[i];
                size_t len = strlen(dir);
                if (strncmp(path, dir, len) != 0 || path[len] != '/')
                        continue;
                const char *rest = path + len;
                while (*rest == '/')
                        rest++;
                *ret_rest = rest;
                return dir;
        }
        return NULL;
}

/* The last component of a walk, or a directory to go on from: never a symlink, never "..". */
static int files_walk_step(int at, const char *name, bool last, int flags)
{
        if (streq(name, ".."))
                return -EXDEV;
        int fd = openat(at, name, last ? flags | O_NOFOLLOW : O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (!last && fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!last && !S_ISDIR(st.st_mode)) {
                close(fd);
                return S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
        }
        return fd;
}

/* rest beneath dir_fd without openat2: each component opened from the one before with
 * O_NOFOLLOW, ".." refused (-EXDEV), any symlink refused (-ELOOP). Stricter than
 * RESOLVE_BENEATH (a symlink that stays inside is refused too: 403) and weaker in one
 * way: openat2 checks at the end that the file is still beneath the directory, a walk
 * cannot, so a directory of the path renamed out of the image directory while the walk
 * is in it goes unnoticed. Only who may rename inside the image directory (the operator)
 * can do that; an API client cannot. */
static int files_walk(int dir_fd, const char *rest, int flags, int *ret_fd)
{
        _cleanup_free_ char *copy = strdup(rest);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int at = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (at < 0)
                return -errno;
        char *save = NULL;
        for (char *name = strtok_r(copy, "/", &save); name;) {
                char *next = strtok_r(NULL, "/", &save);
                int fd = files_walk_step(at, name, !next, flags);
                if (fd < 0)
                        return fd;
                close(at);
                at = fd;
                name = next;
        }
        *ret_fd = TAKE_FD(at);
        return 0;
}

/* Open rest beneath dir; O_NONBLOCK so that a FIFO or device where a file belongs never
 * hangs the request (the type is checked on the descriptor afterwards). */
static int files_open_beneath(const char *dir, const char *rest, int flags, int *ret_fd)
{
        _cleanup_close_ int dir_fd = open(*dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        flags |= O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
        struct open_how how = {
                .flags = (uint64_t)flags,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, dir_fd, rest, &how, sizeof(how));
        if (fd < 0 && errno == ENOSYS) {
                static atomic_bool said;
                if (!atomic_exchange(&said, true))
                        log_info("openat2 answers ENOSYS here (an old kernel or a seccomp "
                                 "filter): VM files are opened by a walk without symlinks");
                return files_walk(dir_fd, rest, flags, ret_fd);
        }
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static int files_open_error(const char *field, const char *path, int r, struct iov_problem *p)
{
        if (r == -EXDEV || r == -ELOOP)
                return daemon_problem_set(p, 403, "path_not_allowed",
                                          "\"%s\": %.256s leads out of its image directory", field,
                                          path);
        return daemon_problem_set(p, 400, "file_not_readable", "\"%s\": cannot open %.256s: %s",
                                  field, path, strerror(-r));
}

/* The file type a field needs: a regular file, a block device where allowed, a FIFO. */
static int files_check_type(const struct iov_daemon_config *c, const char *field, const char *path,
                            int fd, int kind, struct iov_problem *p)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return files_open_error(field, path, -errno, p);
        if (kind == IOV_VIRTIO_HOST_FIFO)
                return S_ISFIFO(st.st_mode)
                               ? 0
                               : daemon_problem_set(p, 400, "file_not_readable",
                                                    "\"%s\": %.256s is not a FIFO", field, path);
        if (S_ISREG(st.st_mode))
                return 0;
        if (kind == IOV_VIRTIO_HOST_IMAGE && S_ISBLK(st.st_mode))
                return c->allow_block_devices
                               ? 0
                               : daemon_problem_set(p, 403, "path_not_allowed",
                                                    "\"%s\": %.256s is a block device and iovd "
                                                    "runs without --allow-block-devices",
                                                    field, path);
        return daemon_problem_set(p, 400, "file_not_readable",
                                  "\"%s\": %.256s is not a regular file", field, path);
}

/* Kinds beside the device models' (virtio.h): kernel and initrd are read-only files. */
#define VM_FILE_BOOT (-1)

static int files_open(const struct iov_daemon_config *c, const char *field, const char *path,
                      int kind, bool read_only, int *ret_fd, struct iov_problem *p)
{
        _cleanup_free_ char *collapsed = files_collapse_slashes(path);
        if (!collapsed)
                return -ENOMEM;
        const char *rest = NULL;
        const char *dir = collapsed[0] == '/' ? files_find_dir(c, collapsed, &rest) : NULL;
        if (!dir)
                return daemon_problem_set(p, 403, "path_not_allowed",
                                          "\"%s\": %.256s is not inside an image directory "
                                          "(iovd --image-dir)",
                                          field, path);
        int flags = kind == VM_FILE_BOOT || read_only ? O_RDONLY : O_RDWR;
        _cleanup_close_ int fd = -1;
        int r = files_open_beneath(dir, *rest ? rest : ".", flags, &fd);
        if (r < 0)
                return files_open_error(field, path, r, p);
        r = files_check_type(c, field, path, fd, kind, p);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The entry's "queues" (virtio-net pairs; the parser checked it): 1 when absent. */
static unsigned files_queue_pairs(struct json_object *o)
{
        struct json_object *v = json_object_object_get(o, "queues");
        int64_t n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 1;
        return n >= 1 && n <= IOV_VIRTIO_NET_MAX_PAIRS ? (unsigned)n : 1;
}

/* fds[0..n) passed to the VMM, their "fd:N" names in o[key]: a string for one, an array
 * for several (a multiqueue TAP's queues, a vhost device per pair). Takes the fds. */
static int files_pass(struct json_object *o, const char *key, const char *field, int *fds,
                      unsigned n, struct iov_vmm_fds *passed, struct iov_problem *p)
{
        _cleanup_json_ struct json_object *names = json_object_new_array();
        int r = names ? 0 : -ENOMEM;

        for (unsigned i = 0; i < n; i++) {
                _cleanup_free_ char *name = NULL;
                int fd = TAKE_FD(fds[i]);
                if (r >= 0)
                        r = supervisor_fds_add(passed, fd, &name); /* closes fd on failure */
                else
                        close(fd);
                if (r >= 0 && json_object_array_add(names, json_object_new_string(name)) < 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return daemon_problem_set(p, 500, "internal_error", "\"%s\": %s", field,
                                          strerror(-r)); /* 64 files at most */
        json_object_object_add(o, key,
                               n == 1 ? json_object_get(json_object_array_get_idx(names, 0))
                                      : json_object_get(names));
        return 0;
}

/* A TAP interface by name, at a start only: opening creates it when it does not exist;
 * with "queues": N, N queues of a multiqueue TAP. */
static int files_open_tap(struct json_object *o, const char *key, const char *field,
                          struct iov_vmm_fds *fds, struct iov_problem *p)
{
        struct json_object *v = json_object_object_get(o, key);
        int tap_fds[IOV_VIRTIO_NET_MAX_PAIRS];
        unsigned n = files_queue_pairs(o);

        /* A definition names an interface; descriptors are iovd's to pass (vm_files_open). */
        if (!json_object_is_type(v, json_type_string))
                return daemon_problem_set(p, 400, "wrong_type", "\"%s\" must be an interface name",
                                          field);
        if (!fds)
                return 0; /* opened at a start only */
        const char *name = json_object_get_string(v);
        int r = virtio_net_tap_open_queues(name, n, tap_fds);
        if (r < 0)
                return daemon_problem_set(p, 422, "tap_unavailable",
                                          "\"%s\": cannot open TAP interface %.64s%s: %s", field,
                                          name, n > 1 ? " (multiqueue)" : "", strerror(-r));
        return files_pass(o, key, field, tap_fds, n, fds, p);
}

/* /dev/vhost-net for an entry with a tap, at a start only, unless "vhost" is false: the
 * jailed VMM has no /dev. Where it does not open, "auto" becomes false (the VMM's own
 * path, logged) and true is refused. */
static int files_open_vhost(struct json_object *o, const char *key, const char *field,
                            struct iov_vmm_fds *fds, struct iov_problem *p)
{
        struct json_object *v = json_object_object_get(o, key);
        bool required = json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);

        if (!fds || !json_object_object_get(o, "tap") ||
            (json_object_is_type(v, json_type_boolean) && !required))
                return 0;
        int vhost_fds[IOV_VIRTIO_NET_MAX_PAIRS];
        unsigned n = files_queue_pairs(o), opened = 0;
        /* One vhost device per queue pair (vmm/virtio/vhost.c). */
        while (opened < n && (vhost_fds[opened] = open("/dev/vhost-net", O_RDWR | O_CLOEXEC)) >= 0)
                opened++;
        if (opened == n)
                return files_pass(o, key, field, vhost_fds, n, fds, p);
        int err = errno;
        while (opened > 0)
                close(vhost_fds[--opened]);
        if (required)
                return daemon_problem_set(p, 422, "vhost_unavailable",
                                          "\"%s\": cannot open /dev/vhost-net: %s", field,
                                          strerror(err));
        log_info("%s: no vhost-net (%s): the VMM moves the frames", field, strerror(err));
        json_object_object_add(o, key, json_object_new_boolean(false));
        return 0;
}

/* /dev/kvm as o's "kvm", at a start only: the jailed VMM has no /dev (vmm/jail.c), so
 * iovd opens the node as it opens the VM's files. The host's node, as vhost-net's: the
 * VM runs on this host's KVM whatever --dev-root the inventory reads. */
static int files_open_kvm(struct json_object *o, struct iov_vmm_fds *fds, struct iov_problem *p)
{
        if (!fds)
                return 0;
        int kvm_fd[1] = {open("/dev/kvm", O_RDWR | O_CLOEXEC)};
        if (kvm_fd[0] < 0) {
                int err = errno;
                return daemon_problem_set(p, 422, "kvm_unavailable", "cannot open /dev/kvm: %s%s",
                                          strerror(err),
                                          err == ENOENT || err == ENXIO || err == ENODEV
                                                  ? " (enable virtualization, load kvm_intel "
                                                    "or kvm_amd)"
                                                  : "");
        }
        return files_pass(o, "kvm", "kvm", kvm_fd, 1, fds, p);
}

/* Open what o[key] names and put its "fd:N" in its place (fds NULL: a check only). */
static int files_replace(const struct iov_daemon_config *c, struct json_object *o, const char *key,
                         const char *field, int kind, struct iov_vmm_fds *fds,
                         struct iov_problem *p)
{
        struct json_object *v = json_object_object_get(o, key);
        if (kind == IOV_VIRTIO_HOST_TAP)
                return v ? files_open_tap(o, key, field, fds, p) : 0;
        if (!json_object_is_type(v, json_type_string))
                return 0;
        struct json_object *ro = json_object_object_get(o, "read_only");
        bool read_only = json_object_is_type(ro, json_type_boolean) && json_object_get_boolean(ro);
        _cleanup_close_ int fd = -1;
        int r = files_open(c, field, json_object_get_string(v), kind, read_only, &fd, p);
        if (r < 0 || !fds)
                return r;
        _cleanup_free_ char *name = NULL;
        r = supervisor_fds_add(fds, TAKE_FD(fd), &name);
        if (r < 0)
                return daemon_problem_set(p, 500, "internal_error", "\"%s\": %s", field,
                                          strerror(-r)); /* 33 files at most: never */
        json_object_object_add(o, key, json_object_new_string(name));
        return 0;
}

/* The host files of device entry i (json, a copy the caller may change). */
static int files_replace_device(const struct iov_daemon_config *c, const struct iov_vm_device *dev,
                                size_t i, struct json_object *entry, struct iov_vmm_fds *fds,
                                struct iov_problem *p)
{
        if (dev->kind != IOV_VM_DEVICE_VIRTIO || !dev->virtio.ops->host_files)
                return 0;
        for (const struct iov_virtio_host_file *f = dev->virtio.ops->host_files; f->key; f++) {
                char field[64];
                snprintf(field, sizeof(field), "devices[%zu].%s", i, f->key);
                int r = f->kind == IOV_VIRTIO_HOST_VHOST_NET
                                ? files_open_vhost(entry, f->key, field, fds, p)
                                : files_replace(c, entry, f->key, field, (int)f->kind, fds, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vm_files_open(struct iov_vm_table *t, const struct iov_vm_spec *spec, struct iov_vmm_fds *fds,
                  struct json_object **ret, struct iov_problem *p)
{
        const struct iov_daemon_config *c = &t->daemon->config;
        _cleanup_json_ struct json_object *o = NULL;
        int r = vm_spec_to_json(spec, &o);
        if (r < 0)
                return r;
        r = files_open_kvm(o, fds, p);
        if (r >= 0)
                r = files_replace(c, o, "kernel", "kernel", VM_FILE_BOOT, fds, p);
        if (r >= 0)
                r = files_replace(c, o, "initrd", "initrd", VM_FILE_BOOT, fds, p);
        if (r < 0)
                return r;
        if (spec->devices_json) {
                /* A copy: the stored definition keeps its paths. */
                struct json_object *devices = NULL;
                if (json_object_deep_copy(spec->devices_json, &devices, NULL) < 0)
                        return -ENOMEM;
                json_object_object_add(o, "devices", devices);
                for (size_t i = 0; i < spec->n_devices && r >= 0; i++)
                        r = files_replace_device(c, &spec->devices[i], i,
                                                 json_object_array_get_idx(devices, i), fds, p);
        }
        if (r < 0)
                return r;
        if (ret)
                *ret = TAKE_PTR(o);
        return 0;
}
