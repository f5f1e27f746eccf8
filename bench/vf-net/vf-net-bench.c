/* SPDX-License-Identifier: MIT */
/*
 * lab-vf-net-bench: one network VF allocated with settings and released, over and over,
 * two ways in one process, in alternating blocks, so both see the same lab and the same
 * load and neither pays for starting programs:
 *   iovd  POST /v1/allocations (a pool with a net template, and a MAC) and DELETE, over
 *         one keep-alive connection to iovd's Unix socket (libcurl reuses it);
 *   bare  what iovd does to the kernel for the same, done here with iovd's own netdev/,
 *         pci/ and util/ code: the VF's settings read (RTM_GETLINK), changed and read back
 *         (RTM_SETLINK with IFLA_VFINFO_LIST), driver_override and drivers_probe to
 *         vfio-pci, wait for /dev/vfio/G; then reset, unbind, the override cleared, the
 *         settings read and put back.
 * iovd is stopped (SIGSTOP) during the bare arm's blocks, so it does not react to them.
 * Per cycle it prints the wall time, the lab's busy CPU time (/proc/stat), this
 * process's CPU time (getrusage) and iovd's (/proc/PID/stat); around each block a
 * "bench-cpu:" marker on stderr (the console) with idle pauses on both sides, for
 * bench/lab/cpumon.py outside to sample the lab QEMU's own CPU time.
 *
 * Usage: lab-vf-net-bench SOCKET POOL VF MAC VLAN ROUNDS BLOCK IOVD_PID
 * Prints "bench: ARM round=R cycle=C ms=.. lab_cpu_ms=.. client_cpu_ms=.. iovd_cpu_ms=..".
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

#include "netdev/netdev.h"
#include "pci/pci.h"
#include "util/util.h"

#define SYSFS        "/sys"
#define VFIO_DRIVER  "vfio-pci"
#define POLL_USEC    1000 /* as iommu/bind.c polls a driver link */
#define WAIT_USEC    (10 * 1000 * 1000ULL)
#define MARKER_PAUSE (300 * 1000) /* the lab idle while cpumon.py samples its QEMU */
#define SETTLE_TRIES 20

struct bench {
        const char *socket, *pool, *mac;
        unsigned vlan;
        struct iov_pci_address vf;
        struct iov_netdev_vf_location loc;
        char vfio_node[64];
        long iovd_pid;
        long ticks_per_second;
        CURL *curl;
        struct curl_slist *headers;
        char *reply;
        size_t reply_size;
        long connects; /* connections libcurl opened: 1 when iovd kept the first alive */
        struct iov_netdev *nd;
        struct iov_netdev_vf_change change;
};

struct sample {
        uint64_t wall_usec;
        uint64_t lab_busy_ticks; /* /proc/stat: all but idle and iowait */
        uint64_t client_usec;
        uint64_t iovd_ticks;
};

/* ---- measuring ------------------------------------------------------------------------ */

static uint64_t lab_busy_ticks(void)
{
        _cleanup_free_ char *text = NULL;
        unsigned long long v[8] = {0};
        if (util_read_file("/proc/stat", 1 << 16, &text, NULL) < 0 ||
            sscanf(text, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) != 8)
                return 0;
        return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* user nice system irq softirq steal */
}

static uint64_t process_ticks(long pid)
{
        char path[64];
        _cleanup_free_ char *text = NULL;
        unsigned long long utime = 0, stime = 0;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        if (util_read_file(path, 4096, &text, NULL) < 0)
                return 0;
        const char *after = strrchr(text, ')'); /* the name may hold spaces (proc(5)) */
        if (!after || sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                             &utime, &stime) != 2)
                return 0;
        return utime + stime;
}

static void sample_take(const struct bench *b, struct sample *ret)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        ret->wall_usec = util_now_usec();
        ret->lab_busy_ticks = lab_busy_ticks();
        ret->client_usec = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
                           (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
        ret->iovd_ticks = process_ticks(b->iovd_pid);
}

static void sample_print(const struct bench *b, const char *arm, unsigned round, unsigned cycle,
                         const struct sample *s0, const struct sample *s1)
{
        double tick_ms = 1000.0 / (double)b->ticks_per_second;
        printf("bench: %s round=%u cycle=%u ms=%.1f lab_cpu_ms=%.0f client_cpu_ms=%.1f "
               "iovd_cpu_ms=%.0f\n",
               arm, round, cycle, (double)(s1->wall_usec - s0->wall_usec) / 1000.0,
               (double)(s1->lab_busy_ticks - s0->lab_busy_ticks) * tick_ms,
               (double)(s1->client_usec - s0->client_usec) / 1000.0,
               (double)(s1->iovd_ticks - s0->iovd_ticks) * tick_ms);
        fflush(stdout);
}

/* ---- the iovd arm: HTTP over one kept-alive connection -------------------------------- */

static size_t on_reply(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct bench *b = userdata;
        size_t n = size * nmemb;
        char *p = realloc(b->reply, b->reply_size + n + 1);
        if (!p)
                return 0;
        memcpy(p + b->reply_size, data, n);
        b->reply_size += n;
        p[b->reply_size] = 0;
        b->reply = p;
        return n;
}

static int http_setup(struct bench *b)
{
        b->curl = curl_easy_init();
        b->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!b->curl || !b->headers)
                return -ENOMEM;
        curl_easy_setopt(b->curl, CURLOPT_UNIX_SOCKET_PATH, b->socket);
        curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, b->headers);
        curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, on_reply);
        curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, b);
        curl_easy_setopt(b->curl, CURLOPT_TIMEOUT, 60L);
        return 0;
}

/* method path [body]: 0 when iovd answered with status want. */
static int http_call(struct bench *b, const char *method, const char *path, const char *body,
                     long want)
{
        char url[160];
        long status = 0;
        snprintf(url, sizeof(url), "http://lab%s", path);
        b->reply_size = 0;
        curl_easy_setopt(b->curl, CURLOPT_URL, url);
        curl_easy_setopt(b->curl, CURLOPT_HTTPGET, 1L); /* resets a previous POST */
        if (body)
                curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(b->curl, CURLOPT_CUSTOMREQUEST, body ? NULL : method);
        CURLcode c = curl_easy_perform(b->curl);
        long opened = 0;
        curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(b->curl, CURLINFO_NUM_CONNECTS, &opened);
        b->connects += opened;
        if (c == CURLE_OK && status == want)
                return 0;
        fprintf(stderr, "lab-vf-net-bench: %s %s: %s, status %ld: %s\n", method, path,
                curl_easy_strerror(c), status, b->reply ? b->reply : "");
        return -EPROTO;
}

static int iovd_cycle(struct bench *b)
{
        char body[256], path[128];
        snprintf(body, sizeof(body), "{\"owner\": \"bench\", \"pool\": \"%s\", \"mac\": \"%s\"}",
                 b->pool, b->mac);
        int r = http_call(b, "POST", "/v1/allocations", body, 201);
        if (r < 0)
                return r;
        struct json_object *reply = json_tokener_parse(b->reply);
        struct json_object *id = json_object_object_get(reply, "id");
        if (json_object_is_type(id, json_type_string))
                snprintf(path, sizeof(path), "/v1/allocations/%s", json_object_get_string(id));
        json_object_put(reply);
        if (!id)
                return -EBADMSG;
        return http_call(b, "DELETE", path, NULL, 200);
}

/* ---- the bare arm: the same kernel operations, directly ------------------------------- */

static int write_vf_attr(const struct bench *b, const char *attribute, const char *value)
{
        _cleanup_free_ char *path = pci_device_sysfs_path(SYSFS, &b->vf, attribute);
        return path ? util_write_attr(path, value) : -ENOMEM;
}

static int write_bus_attr(const struct bench *b, const char *file)
{
        char name[IOV_PCI_ADDRESS_MAX];
        _cleanup_free_ char *path = util_path_join(SYSFS, "bus/pci", file, NULL);
        return path ? util_write_attr(path, pci_address_format(&b->vf, name)) : -ENOMEM;
}

/* Until the path exists (want) or is gone (!want). */
static int wait_path(const char *path, bool want)
{
        uint64_t deadline = util_now_usec() + WAIT_USEC;
        while ((access(path, F_OK) == 0) != want) {
                if (util_now_usec() >= deadline)
                        return -ETIMEDOUT;
                util_sleep_usec(POLL_USEC);
        }
        return 0;
}

/* The settings as they are, then the change, applied and read back (netdev_vf_set). */
static int bare_settings(struct bench *b, struct iov_netdev_vf *ret_original)
{
        struct iov_netdev_link link = {0}, after = {0};
        int r = netdev_link_read(b->nd, b->loc.ifname, &link);
        const struct iov_netdev_vf *vf = r < 0 ? NULL : netdev_link_find_vf(&link, b->loc.index);
        if (vf)
                *ret_original = *vf;
        netdev_link_clear(&link);
        if (r < 0 || !vf)
                return r < 0 ? r : -ENOENT;
        r = netdev_vf_set(b->nd, b->loc.ifname, b->loc.index, &b->change, &after);
        netdev_link_clear(&after);
        return r;
}

/* What differs from the original goes back, as iovd's allocation_net_restore does. */
static int bare_settings_back(struct bench *b, const struct iov_netdev_vf *original)
{
        static const struct iov_netdev_vf_change all = {.set_mac = true,
                                                        .set_vlan = true,
                                                        .set_rate = true,
                                                        .set_spoof_check = true,
                                                        .set_trust = true,
                                                        .set_link_state = true};
        struct iov_netdev_link now = {0}, after = {0};
        struct iov_netdev_vf_change undo;
        int r = netdev_link_read(b->nd, b->loc.ifname, &now);
        const struct iov_netdev_vf *vf = r < 0 ? NULL : netdev_link_find_vf(&now, b->loc.index);
        if (vf)
                netdev_vf_change_undo(original, vf, &all, &undo);
        netdev_link_clear(&now);
        if (r < 0 || !vf)
                return r < 0 ? r : -ENOENT;
        r = netdev_vf_set(b->nd, b->loc.ifname, b->loc.index, &undo, &after);
        netdev_link_clear(&after);
        return r;
}

static int bare_cycle(struct bench *b)
{
        struct iov_netdev_vf original;
        _cleanup_free_ char *driver_link = pci_device_sysfs_path(SYSFS, &b->vf, "driver");
        int r = bare_settings(b, &original);
        if (r == 0)
                r = write_vf_attr(b, "driver_override", VFIO_DRIVER);
        if (r == 0)
                r = write_bus_attr(b, "drivers_probe");
        if (r == 0)
                r = wait_path(b->vfio_node, true);
        if (r == 0)
                r = pci_device_reset(SYSFS, &b->vf);
        if (r == 0)
                r = write_bus_attr(b, "drivers/" VFIO_DRIVER "/unbind");
        if (r == 0)
                r = driver_link ? wait_path(driver_link, false) : -ENOMEM;
        if (r == 0)
                r = write_vf_attr(b, "driver_override", "\n"); /* empty: cleared */
        if (r == 0)
                r = bare_settings_back(b, &original);
        if (r < 0)
                fprintf(stderr, "lab-vf-net-bench: bare cycle: %s\n", strerror(-r));
        return r;
}

/* ---- the run -------------------------------------------------------------------------- */

/* iovd stopped (SIGSTOP) while the bare arm runs: else its udev thread refreshes the
 * inventory for every bind and unbind of the bare arm, work the bare operations do not
 * need, on the lab's one vCPU. Continued, it catches up on those uevents; the next block
 * starts once its CPU time stops growing, so neither arm pays for that. */
static void iovd_pause(const struct bench *b, bool stop)
{
        if (stop) {
                kill((pid_t)b->iovd_pid, SIGSTOP);
                return;
        }
        kill((pid_t)b->iovd_pid, SIGCONT);
        uint64_t before = process_ticks(b->iovd_pid);
        for (unsigned i = 0; i < SETTLE_TRIES; i++) {
                util_sleep_usec(MARKER_PAUSE);
                uint64_t now = process_ticks(b->iovd_pid);
                if (now == before)
                        return;
                before = now;
        }
}

/* One block of cycles of one arm, bracketed for cpumon.py by markers and idle pauses. */
static int run_block(struct bench *b, bool iovd, unsigned round, unsigned cycles)
{
        const char *arm = iovd ? "iovd" : "bare";
        int r = 0;
        if (!iovd)
                iovd_pause(b, true);
        fprintf(stderr, "bench-cpu: begin vf-net %s run=%u\n", arm, round);
        util_sleep_usec(MARKER_PAUSE);
        for (unsigned c = 1; c <= cycles && r == 0; c++) {
                struct sample s0, s1;
                sample_take(b, &s0);
                r = iovd ? iovd_cycle(b) : bare_cycle(b);
                sample_take(b, &s1);
                if (r == 0)
                        sample_print(b, arm, round, c, &s0, &s1);
        }
        fprintf(stderr, "bench-cpu: end vf-net %s run=%u\n", arm, round);
        util_sleep_usec(MARKER_PAUSE);
        if (!iovd)
                iovd_pause(b, false);
        return r;
}

static int parse_args(int argc, char **argv, struct bench *b, unsigned *rounds, unsigned *block)
{
        uint64_t vlan, n_rounds, n_block, pid;
        if (argc != 9 || pci_address_parse(argv[3], &b->vf) < 0 ||
            netdev_mac_parse(argv[4], b->change.mac) < 0 ||
            util_parse_u64(argv[5], 10, &vlan) < 0 || vlan > 4094 ||
            util_parse_u64(argv[6], 10, &n_rounds) < 0 ||
            util_parse_u64(argv[7], 10, &n_block) < 0 || util_parse_u64(argv[8], 10, &pid) < 0)
                return -EINVAL;
        b->socket = argv[1];
        b->pool = argv[2];
        b->mac = argv[4];
        b->vlan = (unsigned)vlan;
        b->iovd_pid = (long)pid;
        *rounds = (unsigned)n_rounds;
        *block = (unsigned)n_block;
        /* What the pool's template and the request set in the scenario: MAC, VLAN, trust. */
        b->change.set_mac = b->change.set_vlan = b->change.set_trust = true;
        b->change.vlan = (uint16_t)vlan;
        b->change.trust = true;
        return 0;
}

/* The VF's PF interface and index, and the VFIO node its group gets. */
static int locate(struct bench *b)
{
        _cleanup_free_ char *group = NULL;
        _cleanup_free_ char *link = pci_device_sysfs_path(SYSFS, &b->vf, "iommu_group");
        int r = netdev_vf_locate(SYSFS, &b->vf, &b->loc);
        if (r == 0)
                r = link ? util_readlink_basename(link, &group) : -ENOMEM;
        if (r == 0)
                snprintf(b->vfio_node, sizeof(b->vfio_node), "/dev/vfio/%s", group);
        if (r == 0)
                r = netdev_open(&b->nd);
        return r;
}

int main(int argc, char **argv)
{
        struct bench b = {.ticks_per_second = sysconf(_SC_CLK_TCK)};
        unsigned rounds = 0, block = 0;
        int r = parse_args(argc, argv, &b, &rounds, &block);
        if (r < 0) {
                fprintf(stderr, "usage: lab-vf-net-bench SOCKET POOL VF MAC VLAN ROUNDS BLOCK "
                                "IOVD_PID\n");
                return 2;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = locate(&b);
        if (r == 0)
                r = http_setup(&b);
        for (unsigned round = 1; r == 0 && round <= rounds; round++) {
                r = run_block(&b, true, round, block);
                if (r == 0)
                        r = run_block(&b, false, round, block);
        }
        printf("bench: connections opened to iovd: %ld\n", b.connects);
        if (r < 0)
                fprintf(stderr, "lab-vf-net-bench: %s\n", strerror(-r));
        curl_slist_free_all(b.headers);
        curl_easy_cleanup(b.curl);
        netdev_close(b.nd);
        free(b.reply);
        curl_global_cleanup();
        return r < 0 ? 1 : 0;
}
