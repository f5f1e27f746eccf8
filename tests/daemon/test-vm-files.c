/* SPDX-License-Identifier: MIT */
/*
 * The files a VM may use, played by an attacker with socket access: every way out of the
 * image directories (an absolute path outside, "..", symlinks out, a directory named like
 * an image directory plus a suffix, a block device without --allow-block-devices) is a
 * clear 403 path_not_allowed that defines nothing; a symlink swapped between a good
 * kernel and a file outside, in a loop racing POST /v1/vms and start, never makes iovd
 * open that file (inotify watches it); where openat2 answers ENOSYS (as under systemd's
 * RestrictSUIDSGID=) iovd's own walk refuses the same ways out; and iovd-vmm's config.json
 * names descriptors, never host paths.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "test-vm-common.h"

VM_TEST_SUITE(vm_files, false, .timeout = 200);

/* A directory beside the image directories, with a kernel-sized secret iovd must never
 * open; removed at the end of each test. */
struct outside {
        char dir[64];
        char *secret;
        int inotify_fd;
};

static void outside_init(struct outside *o)
{
        snprintf(o->dir, sizeof(o->dir), "/tmp/iovd-outside-XXXXXX");
        cr_assert_not_null(mkdtemp(o->dir), "mkdtemp: %s", strerror(errno));
        o->secret = util_path_join(o->dir, "secret.bzImage", NULL);
        _cleanup_free_ char *kernel = vm_guest("idle"), *bytes = NULL;
        size_t size = 0;
        cr_assert_eq(util_read_file(kernel, 1 << 24, &bytes, &size), 0, "read %s", kernel);
        cr_assert_eq(util_write_file_atomic(o->secret, bytes, size, 0600), 0, "write secret");
        /* From here, any open of the secret is an event. */
        o->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        cr_assert_geq(o->inotify_fd, 0, "inotify_init1: %s", strerror(errno));
        cr_assert_geq(inotify_add_watch(o->inotify_fd, o->secret, IN_OPEN | IN_ACCESS), 0,
                      "inotify_add_watch: %s", strerror(errno));
}

/* Fails when anything opened or read the secret since outside_init. */
static void outside_expect_untouched(struct outside *o)
{
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n = read(o->inotify_fd, buf, sizeof(buf));
        cr_expect(n < 0 && errno == EAGAIN, "%s was opened or read (%zd bytes of events)",
                  o->secret, n);
}

static void outside_done(struct outside *o)
{
        close(o->inotify_fd);
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf '%s'", o->dir);
        (void)!system(cmd);
        free(o->secret);
}

static void expect_refused(const char *body, long status, const char *code)
{
        struct iov_http_reply r = {0};
        int rc = harness_request(env.h, "POST", "/v1/vms", body, &r);
        cr_assert_eq(rc, 0, "no reply: %s", strerror(-rc));
        cr_expect_eq(r.status, status, "%s: status %ld, want %ld (%s)", body, r.status, status,
                     r.body ? r.body : "");
        cr_expect_str_eq(vm_error_code(&r), code, "%s: code %s, want %s", body, vm_error_code(&r),
                         code);
        harness_reply_clear(&r);
}

static char *in_env(const char *name)
{
        char *p = util_path_join(env.dir, name, NULL);
        cr_assert_not_null(p);
        return p;
}

/* Symlinks out of env.dir, each naming the secret another way. */
static void make_escape_links(const struct outside *o)
{
        _cleanup_free_ char *abs_link = in_env("abs-link"), *rel_link = in_env("rel-link");
        _cleanup_free_ char *dir_link = in_env("dir-link");
        _cleanup_free_ char *rel = util_strdup_printf("../%s/secret.bzImage", o->dir + 5);
        cr_assert_eq(symlink(o->secret, abs_link), 0, "symlink: %s", strerror(errno));
        cr_assert_eq(symlink(rel, rel_link), 0, "symlink: %s", strerror(errno));
        cr_assert_eq(symlink(o->dir, dir_link), 0, "symlink: %s", strerror(errno));
}

/* Each symlink and ".." way out, as kernel, initrd, disk and console input (k: a good
 * kernel for the other fields). */
static void expect_every_field_refused(const char *k)
{
        const char *inside[] = {"abs-link", "rel-link", "dir-link/secret.bzImage", "../x/../.."};
        for (size_t i = 0; i < ARRAY_SIZE(inside); i++) {
                _cleanup_free_ char *path = in_env(inside[i]);
                _cleanup_free_ char *kernel = util_strdup_printf("{\"kernel\": \"%s\"}", path);
                _cleanup_free_ char *initrd =
                        util_strdup_printf("{\"kernel\": \"%s\", \"initrd\": \"%s\"}", k, path);
                _cleanup_free_ char *disk = util_strdup_printf(
                        "{\"kernel\": \"%s\", \"devices\": [{\"type\": \"virtio-blk\", "
                        "\"path\": \"%s\", \"read_only\": true}]}",
                        k, path);
                _cleanup_free_ char *console = util_strdup_printf(
                        "{\"kernel\": \"%s\", \"devices\": [{\"type\": \"virtio-console\", "
                        "\"input\": \"%s\"}]}",
                        k, path);
                const char *bodies[] = {kernel, initrd, disk, console};
                for (size_t b = 0; b < ARRAY_SIZE(bodies); b++)
                        expect_refused(bodies[b], 403, "path_not_allowed");
        }
}

/* A raw block device inside an image directory: only with --allow-block-devices. */
static void expect_block_device_refused(const char *k)
{
        _cleanup_free_ char *node = in_env("loop0");
        if (mknod(node, S_IFBLK | 0600, makedev(7, 0)) == 0) {
                _cleanup_free_ char *disk = util_strdup_printf(
                        "{\"kernel\": \"%s\", \"devices\": [{\"type\": \"virtio-blk\", "
                        "\"path\": \"%s\", \"read_only\": true}]}",
                        k, node);
                expect_refused(disk, 403, "path_not_allowed");
        } else {
                cr_log_warn("no block device node here (%s): that case is not checked",
                            strerror(errno));
        }
}

Test(vm_files, every_way_out_of_the_image_dirs_is_403)
{
        struct outside o;
        outside_init(&o);
        make_escape_links(&o);
        _cleanup_free_ char *k = vm_guest("idle");
        /* A directory whose name only starts like the image directory's. */
        _cleanup_free_ char *twin = util_strdup_printf("%s-twin", env.dir);
        cr_assert_eq(mkdir(twin, 0700), 0, "mkdir %s: %s", twin, strerror(errno));
        _cleanup_free_ char *twin_kernel = util_path_join(twin, "k", NULL);
        cr_assert_eq(symlink(o.secret, twin_kernel), 0);
        const char *kernels[] = {o.secret, "/etc/passwd", "/proc/self/exe", twin_kernel};
        for (size_t i = 0; i < ARRAY_SIZE(kernels); i++) {
                _cleanup_free_ char *body = util_strdup_printf("{\"kernel\": \"%s\"}", kernels[i]);
                expect_refused(body, 403, "path_not_allowed");
        }
        expect_every_field_refused(k);
        expect_block_device_refused(k);
        struct iov_http_reply r;
        vm_call(&env, "GET", "/v1/vms", NULL, 200, &r);
        cr_expect_eq(json_object_array_length(json_object_object_get(r.json, "vms")), 0,
                     "refused creates defined VMs: %s", r.body);
        harness_reply_clear(&r);
        outside_expect_untouched(&o);
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf '%s'", twin);
        (void)!system(cmd);
        outside_done(&o);
}

struct swapper {
        const char *link, *good, *bad;
        atomic_bool stop;
        unsigned long swaps;
};

/* link is good, then bad, then good...: each time a new symlink renamed over it, so it
 * always exists and a lookup meets one or the other. */
static void *swap_loop(void *arg)
{
        struct swapper *s = arg;
        _cleanup_free_ char *tmp = util_strdup_printf("%s.tmp", s->link);
        while (!atomic_load(&s->stop)) {
                const char *target = s->swaps % 2 ? s->bad : s->good;
                (void)unlink(tmp);
                if (symlink(target, tmp) == 0 && rename(tmp, s->link) == 0)
                        s->swaps++;
        }
        return NULL;
}

/* One start of VM id while the link swaps: 200 (then killed) or 403, nothing else. */
static void race_start(const char *id, unsigned *ret_started, unsigned *ret_refused)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s/start", id);
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(env.h, "POST", path, NULL, &r), 0);
        cr_assert(r.status == 200 || r.status == 403, "start: status %ld (%s)", r.status,
                  r.body ? r.body : "");
        long status = r.status;
        harness_reply_clear(&r);
        if (status == 403) {
                (*ret_refused)++;
                return;
        }
        (*ret_started)++;
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

Test(vm_files, a_symlink_swapped_during_create_and_start_never_leads_out, .timeout = 300)
{
        bool kvm = access("/dev/kvm", R_OK | W_OK) == 0;
        struct outside o;
        outside_init(&o);
        _cleanup_free_ char *link = in_env("k"), *good = in_env("good.bzImage");
        _cleanup_free_ char *kernel = vm_guest("idle"), *bytes = NULL;
        size_t size = 0;
        cr_assert_eq(util_read_file(kernel, 1 << 24, &bytes, &size), 0);
        cr_assert_eq(util_write_file_atomic(good, bytes, size, 0600), 0);
        struct swapper s = {.link = link, .good = "good.bzImage", .bad = o.secret};
        cr_assert_eq(symlink(s.good, link), 0, "symlink: %s", strerror(errno));
        pthread_t thread;
        cr_assert_eq(pthread_create(&thread, NULL, swap_loop, &s), 0);
        _cleanup_free_ char *body =
                util_strdup_printf("{\"kernel\": \"%s\", \"memory_mib\": 16}", link);
        unsigned created = 0, refused = 0, started = 0, start_refused = 0;
        for (unsigned i = 0; i < 400 && (i < 40 || !created || !refused); i++) {
                struct iov_http_reply r = {0};
                cr_assert_eq(harness_request(env.h, "POST", "/v1/vms", body, &r), 0);
                cr_assert(r.status == 201 || r.status == 403, "create: status %ld (%s)", r.status,
                          r.body ? r.body : "");
                if (r.status == 403) {
                        cr_expect_str_eq(vm_error_code(&r), "path_not_allowed");
                        refused++;
                } else {
                        created++;
                        _cleanup_free_ char *id = strdup(vm_str(r.json, "id"));
                        if (kvm && created <= 12)
                                race_start(id, &started, &start_refused);
                        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", id);
                        harness_reply_clear(&r);
                        vm_call(&env, "DELETE", path, NULL, 200, &r);
                }
                harness_reply_clear(&r);
        }
        atomic_store(&s.stop, true);
        pthread_join(thread, NULL);
        cr_log_info("%lu swaps; creates: %u accepted, %u refused; starts: %u ran, %u refused%s",
                    s.swaps, created, refused, started, start_refused,
                    kvm ? "" : " (no /dev/kvm: no starts)");
        cr_expect(created > 0 && refused > 0,
                  "the race never met both targets (%u created, %u refused, %lu swaps)", created,
                  refused, s.swaps);
        outside_expect_untouched(&o);
        outside_done(&o);
}

/* The strings of a JSON value, joined (to look for host paths anywhere in it). */
static void collect_strings(struct json_object *v, char *buf, size_t size)
{
        if (json_object_is_type(v, json_type_string)) {
                strncat(buf, json_object_get_string(v), size - strlen(buf) - 2);
                strncat(buf, "\n", size - strlen(buf) - 1);
        } else if (json_object_is_type(v, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        collect_strings(json_object_array_get_idx(v, i), buf, size);
        } else if (json_object_is_type(v, json_type_object)) {
                json_object_object_foreach (v, key, value) {
                        (void)key;
                        collect_strings(value, buf, size);
                }
        }
}

Test(vm_files, the_vmm_config_names_descriptors_not_host_paths)
{
        HARNESS_SKIP_WITHOUT_KVM();
        _cleanup_free_ char *kernel = vm_guest("idle"), *disk = in_env("disk.img");
        _cleanup_free_ char *fifo = in_env("console.in");
        char zeros[4096] = {0};
        cr_assert_eq(util_write_file_atomic(disk, zeros, sizeof(zeros), 0600), 0);
        cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
        _cleanup_free_ char *body = util_strdup_printf(
                "{\"name\": \"fds\", \"memory_mib\": 16, \"kernel\": \"%s\", \"initrd\": \"%s\", "
                "\"devices\": [{\"type\": \"virtio-blk\", \"path\": \"%s\"}, "
                "{\"type\": \"virtio-console\", \"input\": \"%s\"}]}",
                kernel, disk, disk, fifo);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 201, &r);
        _cleanup_free_ char *id = strdup(vm_str(r.json, "id"));
        harness_reply_clear(&r);
        vm_action(&env, id, "start", NULL, 200, &r);
        harness_reply_clear(&r);

        _cleanup_free_ char *config_path =
                util_path_join(env.run_dir, "vms", id, "config.json", NULL);
        struct json_object *config = json_object_from_file(config_path);
        cr_assert_not_null(config, "no %s", config_path);
        char strings[8192] = "";
        collect_strings(config, strings, sizeof(strings));
        cr_expect(!strstr(strings, "/"), "config.json names a host path: %s",
                  json_object_to_json_string(config));
        struct json_object *devices = json_object_object_get(config, "devices");
        const char *names[] = {vm_str(config, "kernel"), vm_str(config, "initrd"),
                               vm_str(json_object_array_get_idx(devices, 0), "path"),
                               vm_str(json_object_array_get_idx(devices, 1), "input")};
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                cr_expect(strncmp(names[i], "fd:", 3) == 0, "file %zu is named \"%s\"", i,
                          names[i]);
        /* The stored definition keeps the paths the client gave. */
        vm_get(&env, id, &r);
        cr_expect_str_eq(vm_str(r.json, "kernel"), kernel, "kernel %s", vm_str(r.json, "kernel"));
        harness_reply_clear(&r);
        json_object_put(config);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

/* What systemd's RestrictSUIDSGID= does to openat2 (its filter cannot read struct
 * open_how, so the whole call answers ENOSYS), here for this test's process and the iovd
 * it starts next, which inherits the filter. x86-64 numbers: elsewhere the test skips. */
static void deny_openat2(void)
{
#ifdef __x86_64__
        struct sock_filter code[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = ARRAY_SIZE(code), .filter = code};
        cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0, "no_new_privs: %s",
                     strerror(errno));
        cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0, "seccomp: %s",
                     strerror(errno));
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC};
        cr_assert(syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how)) < 0 && errno == ENOSYS,
                  "openat2 still works under the filter");
#else
        cr_skip_test("the openat2 filter is written for x86-64");
#endif
}

/* A copy of the idle kernel at env.dir/name. */
static char *copy_kernel(const char *name)
{
        _cleanup_free_ char *kernel = vm_guest("idle"), *bytes = NULL;
        size_t size = 0;
        cr_assert_eq(util_read_file(kernel, 1 << 24, &bytes, &size), 0, "read %s", kernel);
        char *path = in_env(name);
        cr_assert_eq(util_write_file_atomic(path, bytes, size, 0600), 0, "write %s", path);
        return path;
}

Test(vm_files, without_openat2_a_walk_refuses_every_way_out)
{
        deny_openat2();
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        vm_env_start_iovd(&env);
        struct outside o;
        outside_init(&o);
        make_escape_links(&o);
        _cleanup_free_ char *k = vm_guest("idle");
        expect_every_field_refused(k);
        /* Files inside, also below a subdirectory, open; a symlink that stays inside is
         * refused too (the walk follows none; openat2 would follow it). */
        _cleanup_free_ char *sub = in_env("sub");
        cr_assert_eq(mkdir(sub, 0700), 0, "mkdir %s: %s", sub, strerror(errno));
        _cleanup_free_ char *top = copy_kernel("top.bzImage"), *below = copy_kernel("sub/k");
        _cleanup_free_ char *inner = in_env("inner-link");
        cr_assert_eq(symlink("top.bzImage", inner), 0, "symlink: %s", strerror(errno));
        const char *good[] = {top, below};
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                _cleanup_free_ char *body = util_strdup_printf("{\"kernel\": \"%s\"}", good[i]);
                struct iov_http_reply r;
                vm_call(&env, "POST", "/v1/vms", body, 201, &r);
                harness_reply_clear(&r);
        }
        _cleanup_free_ char *body = util_strdup_printf("{\"kernel\": \"%s\"}", inner);
        expect_refused(body, 403, "path_not_allowed");
        _cleanup_free_ char *log = harness_log(env.h);
        cr_expect(log && strstr(log, "openat2 answers ENOSYS"), "iovd does not say it walks");
        outside_expect_untouched(&o);
        outside_done(&o);
}
