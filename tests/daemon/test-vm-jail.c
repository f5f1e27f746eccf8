/* SPDX-License-Identifier: MIT */
/*
 * Least privilege of the processes behind a VM, read from /proc of a running one:
 *   - its monitor is iovd-vmm-monitor, exec'd (not a fork of iovd): its exe, its command
 *     line, no descriptor of iovd's (the token file, sockets, the state lock) and the
 *     TCP token nowhere in its memory; it keeps a copy of the VM's KVM descriptor;
 *   - iovd-vmm holds no descriptor of iovd's either, and runs jailed: its own uid and
 *     gid (--vmm-uid-base), no capability in any set, seccomp filter and no_new_privs,
 *     its own mount, PID (as init), IPC, UTS and network namespaces, an empty root (not a
 *     single device node: it holds the host's /dev/kvm as a descriptor iovd opened and
 *     passed); and the VM still runs, also when iovd runs with iovd.service's UMask=0077.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test-vm-common.h"
#include "util/json.h"

/* 22 base64url characters: 132 bits, the least iovd accepts in that alphabet. */
#define TOKEN "Zt8wQ1cV5nK0pR7yH3mB-x"

static struct vm_env env;
static char token_path[96];
static char listen_arg[64];

/* iovd on the test's directories, with one more option (or NULL). */
static void start_iovd_with(const char *option)
{
        const char *extra[] = {"--run-dir", env.run_dir,    "--image-dir", env.dir, "--listen",
                               listen_arg,  "--token-file", token_path,    option,  NULL};
        struct iov_harness_options o = {.state_dir = env.state_dir, .extra_args = extra};
        int r = harness_start(&o, &env.h);
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r),
                     env.h ? harness_log(env.h) : "");
}

static void start_iovd(void)
{
        start_iovd_with(NULL);
}

static void restart_iovd_with(const char *option)
{
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        start_iovd_with(option);
}

static void setup(void)
{
        HARNESS_SKIP_WITHOUT_KVM();
        cr_assert_not_null(getenv("GUEST_DIR"), "GUEST_DIR is not set");
        snprintf(env.dir, sizeof(env.dir), "/tmp/iovd-vmtest-XXXXXX");
        cr_assert_not_null(mkdtemp(env.dir), "mkdtemp: %s", strerror(errno));
        env.state_dir = util_path_join(env.dir, "state", NULL);
        env.run_dir = util_path_join(env.dir, "run", NULL);
        snprintf(token_path, sizeof(token_path), "%s/token", env.dir);
        cr_assert_eq(util_write_file_atomic(token_path, TOKEN "\n", strlen(TOKEN) + 1, 0600), 0);
        unsigned port;
        cr_assert_eq(harness_free_port(&port), 0);
        snprintf(listen_arg, sizeof(listen_arg), "tcp:127.0.0.1:%u", port);
        start_iovd();
}

static void teardown(void)
{
        vm_env_done(&env);
}

TestSuite(vm_jail, .init = setup, .fini = teardown, .timeout = 120);

/* Field 4 of /proc/PID/stat: the parent. */
static pid_t parent_of(pid_t pid)
{
        _cleanup_free_ char *path = util_strdup_printf("/proc/%d/stat", (int)pid), *text = NULL;
        cr_assert_eq(util_read_file(path, 4096, &text, NULL), 0, "read %s", path);
        const char *p = strrchr(text, ')');
        int ppid = 0;
        cr_assert(p && sscanf(p + 2, "%*c %d", &ppid) == 1, "parse %s: %s", path, text);
        return ppid;
}

static char *proc_link(pid_t pid, const char *name)
{
        _cleanup_free_ char *path = util_strdup_printf("/proc/%d/%s", (int)pid, name);
        char buf[4096];
        ssize_t n = readlink(path, buf, sizeof(buf) - 1);
        cr_assert_gt(n, 0, "readlink %s: %s", path, strerror(errno));
        buf[n] = '\0';
        return strdup(buf);
}

/* The target of descriptor fd listed in dir (/proc/PID/fd); false when it is gone since
 * readdir: a connection to the control socket the VMM accepted and closed, or the keeper's
 * socket the monitor closes (an inherited descriptor stays until the process ends). */
static bool fd_target(const char *dir, const char *fd, char *target, size_t size)
{
        _cleanup_free_ char *link = util_strdup_printf("%s/%s", dir, fd);
        ssize_t n = readlink(link, target, size - 1);
        if (n < 0 && errno == ENOENT)
                return false;
        cr_assert_gt(n, 0, "readlink %s: %s", link, strerror(errno));
        target[n] = '\0';
        return true;
}

/* Every descriptor of pid: none may be the token file, a socket or a file of the state
 * dir (iovd's lock). */
static void expect_no_iovd_fds(pid_t pid, const char *who)
{
        _cleanup_free_ char *dir = util_strdup_printf("/proc/%d/fd", (int)pid);
        DIR *d = opendir(dir);
        cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char target[4096];
                if (!fd_target(dir, de->d_name, target, sizeof(target)))
                        continue;
                cr_expect(!strstr(target, "token") && !strstr(target, env.state_dir),
                          "%s holds fd %s -> %s", who, de->d_name, target);
                /* The VMM's own sockets are its control socket: the monitor has none. */
                if (streq(who, "the monitor"))
                        cr_expect(!strstr(target, "socket:"), "%s holds fd %s -> %s", who,
                                  de->d_name, target);
        }
        closedir(d);
}

/* Whether one of pid's descriptors links to a target starting with prefix. */
static bool holds_fd_starting_with(pid_t pid, const char *prefix)
{
        _cleanup_free_ char *dir = util_strdup_printf("/proc/%d/fd", (int)pid);
        DIR *d = opendir(dir);
        cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
        bool found = false;
        struct dirent *de;
        while (!found && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char target[4096];
                if (!fd_target(dir, de->d_name, target, sizeof(target)))
                        continue;
                found = strncmp(target, prefix, strlen(prefix)) == 0;
        }
        closedir(d);
        return found;
}

/* Whether pid holds a KVM VM's descriptor. */
static bool holds_kvm_vm(pid_t pid)
{
        return holds_fd_starting_with(pid, "anon_inode:kvm-vm");
}

/* Whether pid holds a socket. */
static bool holds_socket(pid_t pid)
{
        return holds_fd_starting_with(pid, "socket:");
}

/* Whether the token is anywhere in pid's readable memory (the monitor is small). */
static bool memory_has_token(pid_t pid)
{
        _cleanup_free_ char *maps_path = util_strdup_printf("/proc/%d/maps", (int)pid);
        _cleanup_free_ char *mem_path = util_strdup_printf("/proc/%d/mem", (int)pid);
        _cleanup_free_ char *maps = NULL;
        cr_assert_eq(util_read_file(maps_path, 1 << 20, &maps, NULL), 0);
        _cleanup_close_ int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0, "open %s: %s", mem_path, strerror(errno));
        bool found = false;
        char *save = NULL;
        for (char *line = strtok_r(maps, "\n", &save); line && !found;
             line = strtok_r(NULL, "\n", &save)) {
                unsigned long start, end;
                char perms[5];
                if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3 || perms[0] != 'r' ||
                    end - start > (64ul << 20))
                        continue;
                char *buf = malloc(end - start);
                ssize_t n = buf ? pread(fd, buf, end - start, (off_t)start) : -1;
                found = n > 0 && memmem(buf, (size_t)n, TOKEN, strlen(TOKEN));
                free(buf);
        }
        return found;
}

Test(vm_jail, the_monitor_is_exec_d_and_holds_nothing_of_iovd)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 16);
        struct iov_http_reply r;
        pid_t vmm = vm_start_pid(&env, id);
        cr_assert_gt(vmm, 0, "no pid");
        pid_t monitor = parent_of(vmm);
        cr_assert_gt(monitor, 1, "the VMM has no monitor (parent %d)", monitor);

        _cleanup_free_ char *exe = proc_link(monitor, "exe");
        cr_expect(strstr(exe, "/iovd-vmm-monitor") != NULL, "the monitor runs %s", exe);
        _cleanup_free_ char *cmdline_path = util_strdup_printf("/proc/%d/cmdline", (int)monitor);
        _cleanup_free_ char *cmdline = NULL;
        cr_assert_eq(util_read_file(cmdline_path, 1 << 16, &cmdline, NULL), 0);
        cr_expect_str_eq(cmdline, "iovd-vmm-monitor", "the monitor's argv[0] is %s", cmdline);
        /* It keeps the VM (iovd-vmm --keeper-fd), so that the kernel's teardown of the VM
         * comes after the VMM's end, which a kill waits for. The VMM hands it over long
         * before it answers, but the monitor, woken on a loaded host, may take a moment to
         * take it and close the keeper's socket. */
        for (int i = 0; i < 500 && (!holds_kvm_vm(monitor) || holds_socket(monitor)); i++)
                util_sleep_usec(10000);
        cr_expect(holds_kvm_vm(monitor), "the monitor holds no copy of the VM's descriptor");
        expect_no_iovd_fds(monitor, "the monitor");
        expect_no_iovd_fds(vmm, "iovd-vmm");
        cr_expect(holds_kvm_vm(vmm), "the check finds no VM even in iovd-vmm");
        cr_expect(!memory_has_token(monitor), "the TCP token is in the monitor's memory");
        /* The check itself finds the token where it is: in iovd. */
        cr_expect(memory_has_token(env.h->pid) || access("/proc/self/mem", R_OK) != 0,
                  "the token is not even in iovd's memory: the check proves nothing");
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

/* The value of field (e.g. "CapEff") in /proc/PID/status. */
static char *status_field(pid_t pid, const char *field)
{
        _cleanup_free_ char *path = util_strdup_printf("/proc/%d/status", (int)pid);
        _cleanup_free_ char *text = NULL;
        cr_assert_eq(util_read_file(path, 1 << 16, &text, NULL), 0, "read %s", path);
        _cleanup_free_ char *key = util_strdup_printf("\n%s:", field);
        const char *p = strstr(text, key);
        cr_assert_not_null(p, "no %s in %s", field, path);
        p += strlen(key);
        while (*p == '\t' || *p == ' ')
                p++;
        return strndup(p, strcspn(p, "\n"));
}

static void expect_own_namespace(pid_t pid, const char *ns)
{
        _cleanup_free_ char *name = util_strdup_printf("ns/%s", ns);
        _cleanup_free_ char *theirs = proc_link(pid, name), *ours = proc_link(getpid(), name);
        cr_expect_str_neq(theirs, ours, "iovd-vmm shares the host's %s namespace (%s)", ns, ours);
}

/* The VMM's root is empty: no dev/, no device node it could open (or was made for it). */
static void expect_bare_root(pid_t vmm)
{
        _cleanup_free_ char *root = util_strdup_printf("/proc/%d/root", (int)vmm);
        DIR *d = opendir(root);
        cr_assert_not_null(d, "opendir %s: %s", root, strerror(errno));
        struct dirent *de;
        while ((de = readdir(d)))
                cr_expect(streq(de->d_name, ".") || streq(de->d_name, ".."),
                          "the VMM's root holds %s", de->d_name);
        closedir(d);
}

/* The descriptor of the VMM that is the host's /dev/kvm itself (the same inode, not a
 * node made elsewhere with its device number); -1 when it holds none. */
static int find_host_kvm_fd(pid_t vmm)
{
        struct stat host, st;
        cr_assert_eq(stat("/dev/kvm", &host), 0, "stat /dev/kvm: %s", strerror(errno));
        _cleanup_free_ char *dir = util_strdup_printf("/proc/%d/fd", (int)vmm);
        DIR *d = opendir(dir);
        cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
        struct dirent *de;
        int found = -1;
        while (found < 0 && (de = readdir(d))) {
                _cleanup_free_ char *link = util_strdup_printf("%s/%s", dir, de->d_name);
                if (de->d_name[0] != '.' && stat(link, &st) == 0 && S_ISCHR(st.st_mode) &&
                    st.st_rdev == host.st_rdev && st.st_dev == host.st_dev &&
                    st.st_ino == host.st_ino)
                        found = atoi(de->d_name);
        }
        closedir(d);
        return found;
}

Test(vm_jail, the_vmm_runs_without_privileges_in_namespaces_of_its_own)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 16);
        struct iov_http_reply r;
        pid_t vmm = vm_start_pid(&env, id);
        cr_assert_gt(vmm, 0, "no pid");

        /* 2000000000 is --vmm-uid-base's default; the first VM gets its first uid. */
        const char *fields[][2] = {{"Uid", "2000000000\t2000000000\t2000000000\t2000000000"},
                                   {"Gid", "2000000000\t2000000000\t2000000000\t2000000000"},
                                   {"Groups", ""},
                                   {"CapInh", "0000000000000000"},
                                   {"CapPrm", "0000000000000000"},
                                   {"CapEff", "0000000000000000"},
                                   {"CapBnd", "0000000000000000"},
                                   {"CapAmb", "0000000000000000"},
                                   {"NoNewPrivs", "1"},
                                   {"Seccomp", "2"}};
        for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
                _cleanup_free_ char *value = status_field(vmm, fields[i][0]);
                cr_expect_str_eq(value, fields[i][1], "iovd-vmm %s: \"%s\", want \"%s\"",
                                 fields[i][0], value, fields[i][1]);
        }
        /* Its own PID namespace, where it is init. */
        _cleanup_free_ char *nspid = status_field(vmm, "NSpid");
        _cleanup_free_ char *want = util_strdup_printf("%d\t1", (int)vmm);
        cr_expect_str_eq(nspid, want, "NSpid %s", nspid);
        const char *namespaces[] = {"mnt", "pid", "ipc", "uts", "net"};
        for (size_t i = 0; i < ARRAY_SIZE(namespaces); i++)
                expect_own_namespace(vmm, namespaces[i]);

        expect_bare_root(vmm);
        /* And the VM works: its console answers through the control socket. */
        vm_get(&env, id, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "running", "state %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        harness_reply_clear(&r);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

/* The jail makes no device node (no CAP_MKNOD, no CAP_CHOWN in iovd.service): iovd opens
 * /dev/kvm and passes it, named "fd:N" as "kvm" in the VMM's config.json. */
Test(vm_jail, the_vmm_holds_the_hosts_kvm_as_a_descriptor_and_no_node)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 16);
        struct iov_http_reply r;
        pid_t vmm = vm_start_pid(&env, id);
        cr_assert_gt(vmm, 0, "no pid");
        vm_get(&env, id, &r);
        cr_assert_str_eq(vm_str(r.json, "state"), "running", "state %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        harness_reply_clear(&r);

        expect_bare_root(vmm);
        int fd = find_host_kvm_fd(vmm);
        cr_expect_geq(fd, 0, "iovd-vmm pid %d holds no descriptor of the host's /dev/kvm",
                      (int)vmm);
        _cleanup_free_ char *link = util_strdup_printf("/proc/%d/fd/%d", (int)vmm, fd);
        char target[64] = "";
        cr_expect(readlink(link, target, sizeof(target) - 1) > 0 && streq(target, "/dev/kvm"),
                  "%s -> \"%s\", want /dev/kvm", link, target);

        _cleanup_free_ char *path = util_strdup_printf("%s/vms/%s/config.json", env.run_dir, id);
        _cleanup_free_ char *text = NULL;
        cr_assert_eq(util_read_file(path, 1 << 20, &text, NULL), 0, "cannot read %s", path);
        _cleanup_json_ struct json_object *config = json_tokener_parse(text);
        const char *kvm = vm_str(config, "kvm");
        cr_expect(strncmp(kvm, "fd:", 3) == 0, "config.json \"kvm\": %s, want fd:N", kvm);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

/* ---- virtio-net on a TAP iovd opened and passed to the jailed VMM ---------------------- */

#define NET_TAP       "iovjail0"
#define NET_ETHERTYPE 0x88b5 /* IEEE 802 local experimental */
static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* The host end (tests/guest/virtio-net.S): set the TAP up, wait for the guest's hello,
 * answer. Exit status 0, or the step that failed. */
static int net_peer(void)
{
        unsigned ifindex = 0;
        for (int i = 0; i < 1000 && !(ifindex = if_nametoindex(NET_TAP)); i++)
                util_sleep_usec(10000);
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {0};
        strcpy(ifr.ifr_name, NET_TAP);
        if (!ifindex || s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return 2;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return 3;
        int p = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(NET_ETHERTYPE));
        struct sockaddr_ll ll = {.sll_family = AF_PACKET,
                                 .sll_protocol = htons(NET_ETHERTYPE),
                                 .sll_ifindex = (int)ifindex};
        if (p < 0 || bind(p, (struct sockaddr *)&ll, sizeof(ll)) < 0)
                return 4;
        uint8_t frame[1600];
        for (;;) {
                ssize_t n = recv(p, frame, sizeof(frame), 0);
                if (n >= 30 && memcmp(frame + 6, guest_mac, 6) == 0 &&
                    memcmp(frame + 14, "iovd-guest-hello", 16) == 0)
                        break;
        }
        uint8_t reply[60] = {0};
        memcpy(reply, guest_mac, 6);
        memcpy(reply + 6, (const uint8_t[]){0x02, 0, 0, 0, 0, 1}, 6);
        reply[12] = NET_ETHERTYPE >> 8;
        reply[13] = NET_ETHERTYPE & 0xff;
        memcpy(reply + 14, "iovd-host-reply", 15);
        for (int i = 0; i < 3; i++)
                if (send(p, reply, sizeof(reply), 0) != (ssize_t)sizeof(reply))
                        return 5;
        return 0;
}

static bool has_marker(struct json_object *vm, int64_t value)
{
        struct json_object *stats = NULL, *markers = NULL;
        if (!json_object_object_get_ex(vm, "stats", &stats) ||
            !json_object_object_get_ex(stats, "markers", &markers))
                return false;
        for (size_t i = 0; i < json_object_array_length(markers); i++)
                if (json_object_get_int64(json_object_object_get(
                            json_object_array_get_idx(markers, i), "value")) == value)
                        return true;
        return false;
}

Test(vm_jail, virtio_net_runs_on_the_tap_iovd_passed)
{
        const char *payload = getenv("VIRTIO_NET_PAYLOAD");
        if (!payload || access(payload, R_OK) < 0 || access("/dev/net/tun", R_OK | W_OK) < 0)
                cr_skip_test("no virtio-net payload or no usable /dev/net/tun");
        /* iovd again, in a network namespace of this test's: the TAP it makes is there. */
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        if (unshare(CLONE_NEWNET) < 0)
                cr_skip_test("no network namespace here: %s", strerror(errno));
        start_iovd();
        _cleanup_free_ char *body = util_strdup_printf(
                "{\"name\": \"net\", \"memory_mib\": 64, \"kernel\": \"%s\", \"devices\": "
                "[{\"type\": \"virtio-net\", \"tap\": \"" NET_TAP "\", \"mac\": "
                "\"52:54:00:12:34:56\"}]}",
                payload);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 201, &r);
        harness_reply_clear(&r);
        pid_t peer = fork();
        cr_assert_geq(peer, 0, "fork: %s", strerror(errno));
        if (peer == 0)
                _exit(net_peer());
        vm_action(&env, "net", "start", NULL, 200, &r);
        harness_reply_clear(&r);
        vm_wait_state(&env, "net", "stopped", &r);
        int status = 0;
        kill(peer, SIGKILL); /* a peer still waiting means no hello came */
        waitpid(peer, &status, 0);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the host end of the TAP failed (status 0x%x)", status);
        cr_expect(has_marker(r.json, 0x41) && !has_marker(r.json, 0xdead),
                  "the guest got no reply over virtio-net: %s", r.body);
        /* "vhost" is auto: iovd passes /dev/vhost-net where it opens, else the jailed VMM
         * moves the frames itself, and GET says which. */
        struct json_object *stats, *list, *path;
        const char *want = access("/dev/vhost-net", R_OK | W_OK) == 0 ? "vhost" : "userspace";
        cr_assert(json_object_object_get_ex(r.json, "stats", &stats) &&
                          json_object_object_get_ex(stats, "virtio", &list) &&
                          json_object_array_length(list) == 1 &&
                          json_object_object_get_ex(json_object_array_get_idx(list, 0), "data_path",
                                                    &path),
                  "no virtio data_path in %s", r.body);
        cr_expect_str_eq(json_object_get_string(path), want, "data_path %s, expected %s",
                         json_object_get_string(path), want);
        harness_reply_clear(&r);
}

/* Entries of /sys/class/net/TAP/queues/ named prefix-N: the TAP's real queue count. The
 * sysfs mounted at /sys shows the network namespace of its mounter, so a child reads a
 * sysfs of this test's namespace, mounted in a mount namespace of its own. */
static unsigned tap_queue_count(const char *tap, const char *prefix)
{
        pid_t pid = fork();
        int status = 0;

        cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
                    mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
                        _exit(255);
                _cleanup_free_ char *path = util_strdup_printf("/sys/class/net/%s/queues", tap);
                DIR *d = opendir(path);
                unsigned n = 0;
                for (struct dirent *e; d && (e = readdir(d));)
                        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
                                n++;
                _exit((int)n);
        }
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255,
                  "no sysfs of the test's network namespace (status 0x%x)", status);
        return (unsigned)WEXITSTATUS(status);
}

/* "queues": 2 on a TAP: iovd opens two queues of a multiqueue TAP for the jailed VMM,
 * which serves them (tx-0 and tx-1 while the VM runs); a link refuses it at create. */
Test(vm_jail, virtio_net_queues_open_a_multiqueue_tap)
{
        if (access("/dev/net/tun", R_OK | W_OK) < 0)
                cr_skip_test("no usable /dev/net/tun");
        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        if (unshare(CLONE_NEWNET) < 0)
                cr_skip_test("no network namespace here: %s", strerror(errno));
        start_iovd();
        _cleanup_free_ char *kernel = vm_guest("idle");
        _cleanup_free_ char *body = util_strdup_printf(
                "{\"name\": \"mq\", \"vcpus\": 2, \"memory_mib\": 16, \"kernel\": \"%s\", "
                "\"devices\": [{\"type\": \"virtio-net\", \"tap\": \"" NET_TAP "\", "
                "\"queues\": 2, \"poll_us\": 20}]}",
                kernel);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 201, &r);
        harness_reply_clear(&r);
        vm_action(&env, "mq", "start", NULL, 200, &r);
        harness_reply_clear(&r);
        unsigned tx = tap_queue_count(NET_TAP, "tx-"), rx = tap_queue_count(NET_TAP, "rx-");
        cr_expect_eq(tx, 2, "%s has %u transmit queues, expected 2", NET_TAP, tx);
        cr_expect_eq(rx, 2, "%s has %u receive queues, expected 2", NET_TAP, rx);
        vm_get(&env, "mq", &r);
        struct json_object *stats, *list, *queues;
        cr_assert(json_object_object_get_ex(r.json, "stats", &stats) &&
                          json_object_object_get_ex(stats, "virtio", &list) &&
                          json_object_array_length(list) == 1 &&
                          json_object_object_get_ex(json_object_array_get_idx(list, 0),
                                                    "queue_requests", &queues),
                  "no virtio queue_requests in %s", r.body);
        /* two pairs and the control queue; under vhost-net one vhost device per pair */
        cr_expect_eq(json_object_array_length(queues), 5, "%zu queues in %s",
                     json_object_array_length(queues), r.body);
        const char *want = access("/dev/vhost-net", R_OK | W_OK) == 0 ? "vhost" : "userspace";
        const char *path = vm_str(json_object_array_get_idx(list, 0), "data_path");
        cr_expect_str_eq(path, want, "data_path %s, expected %s", path, want);
        harness_reply_clear(&r);
        vm_action(&env, "mq", "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

/* Refused at create: queues on a link (one channel, one pair), and descriptors in a
 * definition's "tap" (iovd's to pass, never a client's to name). */
Test(vm_jail, virtio_net_queues_refused_on_links_and_fd_lists)
{
        _cleanup_free_ char *kernel = vm_guest("idle");
        _cleanup_free_ char *link = util_strdup_printf(
                "{\"name\": \"mqlink\", \"memory_mib\": 16, \"kernel\": \"%s\", \"devices\": "
                "[{\"type\": \"virtio-net\", \"port\": \"p\", \"queues\": 2}]}",
                kernel);
        _cleanup_free_ char *fds = util_strdup_printf(
                "{\"name\": \"mqfds\", \"memory_mib\": 16, \"kernel\": \"%s\", \"devices\": "
                "[{\"type\": \"virtio-net\", \"tap\": [\"fd:3\", \"fd:4\"], \"queues\": 2}]}",
                kernel);
        struct iov_http_reply r;

        vm_call(&env, "POST", "/v1/vms", link, 400, &r);
        cr_expect(strstr(r.body, "one queue pair"), "a link with queues 2: %s", r.body);
        harness_reply_clear(&r);
        vm_call(&env, "POST", "/v1/vms", fds, 400, &r);
        cr_expect(strstr(r.body, "interface name"), "a tap of descriptors: %s", r.body);
        harness_reply_clear(&r);
}

/* Where iovd can make cgroups (cgroup v2 with memory and pids, iovd alone in its cgroup),
 * the VMM of a started VM runs in one of its VM's (the unnamed VM's id), with memory.max =
 * memory + 256 MiB, pids.max = vCPUs + 64 and, with cpu delegated, cpu.max = vCPUs periods
 * (vms/vm-cgroup.c), jailed or not; elsewhere iovd says why in its log and this skips. The
 * VMM's uid is that of its mode (the jail's first, or root). */
static void expect_vm_cgroup(const char *uid)
{
        _cleanup_free_ char *id = vm_create(&env, "idle", 16);
        struct iov_http_reply r;
        pid_t vmm = vm_start_pid(&env, id);
        _cleanup_free_ char *uids = status_field(vmm, "Uid");
        cr_expect(strncmp(uids, uid, strlen(uid)) == 0, "iovd-vmm runs as %s, want %s", uids, uid);
        _cleanup_free_ char *path = util_strdup_printf("/proc/%d/cgroup", (int)vmm);
        _cleanup_free_ char *text = NULL;
        cr_assert_eq(util_read_file(path, 1 << 16, &text, NULL), 0, "read %s", path);
        const char *v2 = strstr(text, "0::");
        _cleanup_free_ char *log = harness_log(env.h);
        if (!v2 || !strstr(log, "VMMs get cgroups below")) {
                vm_action(&env, id, "kill", NULL, 200, &r);
                harness_reply_clear(&r);
                cr_skip_test("no cgroup limits here: %s", strstr(log, "without cgroup limits")
                                                                  ? "iovd says so in its log"
                                                                  : "no cgroup v2");
        }
        _cleanup_free_ char *cgroup = strndup(v2 + 3, strcspn(v2 + 3, "\n"));
        cr_expect(strstr(cgroup, id) != NULL, "the VMM's cgroup is %s", cgroup);
        _cleanup_free_ char *max_path = util_strdup_printf("/sys/fs/cgroup%s/memory.max", cgroup);
        _cleanup_free_ char *pids_path = util_strdup_printf("/sys/fs/cgroup%s/pids.max", cgroup);
        _cleanup_free_ char *max = NULL, *pids = NULL;
        cr_expect_eq(util_read_line(max_path, &max), 0, "read %s", max_path);
        cr_expect_eq(util_read_line(pids_path, &pids), 0, "read %s", pids_path);
        cr_expect_str_eq(max ? max : "", "285212672", "memory.max %s", max ? max : "");
        cr_expect_str_eq(pids ? pids : "", "65", "pids.max %s", pids ? pids : "");
        /* cpu.max only where the cpu controller is delegated too: 1 vCPU, one period. */
        _cleanup_free_ char *cpu_path = util_strdup_printf("/sys/fs/cgroup%s/cpu.max", cgroup);
        _cleanup_free_ char *cpu = NULL;
        if (util_read_line(cpu_path, &cpu) == 0)
                cr_expect_str_eq(cpu, "100000 100000", "cpu.max %s", cpu);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}

Test(vm_jail, the_vmm_runs_in_a_cgroup_with_limits_where_there_are_cgroups)
{
        expect_vm_cgroup("2000000000\t");
}

/* The cgroup does not come with the jail: an unjailed VMM gets its VM's too. */
Test(vm_jail, an_unjailed_vmm_runs_in_its_cgroup_too)
{
        restart_iovd_with("--no-vmm-jail");
        expect_vm_cgroup("0\t");
}

/* iovd.service runs iovd with UMask=0077: the jail's root must not inherit it (a dir of
 * mode 0700 root would keep the VMM's uid out of its own root). */
Test(vm_jail, a_jailed_vmm_runs_under_the_units_umask)
{
        umask(077);
        restart_iovd_with(NULL);
        _cleanup_free_ char *id = vm_create(&env, "idle", 16);
        struct iov_http_reply r;
        pid_t vmm = vm_start_pid(&env, id);
        _cleanup_free_ char *root = util_strdup_printf("/proc/%d/root", (int)vmm);
        struct stat st;
        cr_expect(stat(root, &st) == 0 && (st.st_mode & 07777) == 0755, "%s: mode %o", root,
                  (unsigned)(st.st_mode & 07777));
        vm_get(&env, id, &r);
        cr_expect_str_eq(vm_str(r.json, "state"), "running", "state %s (%s)",
                         vm_str(r.json, "state"), vm_str(r.json, "reason"));
        harness_reply_clear(&r);
        vm_action(&env, id, "kill", NULL, 200, &r);
        harness_reply_clear(&r);
}
