/* SPDX-License-Identifier: MIT */
/* The VM's statistics as one JSON object: exits by reason, accesses by device, accesses
 * to nothing, boot markers, memory. Shared by the control socket and the exit report. */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/run.h"
#include "vmm/vcpu.h"

static void stats_add_device(void *userdata, const char *device, uint64_t accesses)
{
        struct json_object *devices = userdata;
        struct json_object *old = NULL;
        uint64_t sum = accesses;
        if (json_object_object_get_ex(devices, device, &old))
                sum += (uint64_t)json_object_get_int64(old);
        json_object_object_add(devices, device, json_object_new_int64((int64_t)sum));
}

static struct json_object *stats_exits(struct iov_vm *vm)
{
        uint64_t sums[IOV_VM_EXIT_REASONS] = {0};
        for (unsigned i = 0; i < vm->n_vcpus; i++)
                for (unsigned reason = 0; reason < IOV_VM_EXIT_REASONS; reason++)
                        sums[reason] += atomic_load(&vm->vcpus[i]->exits[reason]);
        struct json_object *exits = json_object_new_object();
        for (unsigned reason = 0; reason < IOV_VM_EXIT_REASONS; reason++)
                if (sums[reason])
                        stats_add_device(exits, vmm_exit_reason_name(reason), sums[reason]);
        return exits;
}

static struct json_object *stats_markers(struct iov_vm *vm)
{
        struct json_object *markers = json_object_new_array();
        pthread_mutex_lock(&vm->marker_lock);
        for (unsigned i = 0; i < vm->n_markers; i++) {
                struct json_object *m = json_object_new_object();
                json_object_object_add(m, "value", json_object_new_int64(vm->markers[i].value));
                json_object_object_add(m, "usec",
                                       json_object_new_int64((int64_t)vm->markers[i].usec));
                json_object_object_add(m, "count",
                                       json_object_new_int64((int64_t)vm->markers[i].count));
                json_object_object_add(m, "exits",
                                       json_object_new_int64((int64_t)vm->markers[i].exits));
                json_object_array_add(markers, m);
        }
        pthread_mutex_unlock(&vm->marker_lock);
        return markers;
}

/* The virtio devices' counters, when vmm/virtio/ is built in (a weak reference: the VMM
 * builds and runs without it). */
struct json_object *virtio_pci_stats_json(struct iov_vm *vm) __attribute__((weak));
struct json_object *virtio_net_links_json(void) __attribute__((weak));

/* Opened before the sandbox, which forbids open(). */
static int proc_status_fd = -1;

int vmm_stats_open(void)
{
        if (proc_status_fd < 0)
                proc_status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        return proc_status_fd;
}

/* VmRSS and RssShmem (the guest RAM memfd) from /proc/self/status, in KiB. */
static void stats_memory(struct json_object *o)
{
        char status[4096];
        if (vmm_stats_open() < 0)
                return;
        ssize_t n = pread(proc_status_fd, status, sizeof(status) - 1, 0);
        if (n <= 0)
                return;
        status[n] = '\0';
        static const char *const keys[][2] = {{"VmRSS:", "rss_kib"},
                                              {"RssShmem:", "rss_guest_kib"}};
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                const char *p = strstr(status, keys[i][0]);
                if (p)
                        json_object_object_add(
                                o, keys[i][1],
                                json_object_new_int64(strtoll(p + strlen(keys[i][0]), NULL, 10)));
        }
}

struct json_object *vmm_stats_json(struct iov_vm *vm)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "uptime_usec",
                               json_object_new_int64((int64_t)(util_now_usec() - vm->start_usec)));
        json_object_object_add(o, "exits", stats_exits(vm));

        struct json_object *devices = json_object_new_object();
        vmm_bus_for_each_counter(&vm->pio, stats_add_device, devices);
        vmm_bus_for_each_counter(&vm->mmio, stats_add_device, devices);
        json_object_object_add(o, "devices", devices);

        struct json_object *unhandled = json_object_new_object();
        json_object_object_add(unhandled, "pio_reads",
                               json_object_new_int64((int64_t)vm->pio.unhandled_reads));
        json_object_object_add(unhandled, "pio_writes",
                               json_object_new_int64((int64_t)vm->pio.unhandled_writes));
        json_object_object_add(unhandled, "mmio_reads",
                               json_object_new_int64((int64_t)vm->mmio.unhandled_reads));
        json_object_object_add(unhandled, "mmio_writes",
                               json_object_new_int64((int64_t)vm->mmio.unhandled_writes));
        json_object_object_add(o, "unhandled", unhandled);
        json_object_object_add(o, "markers", stats_markers(vm));
        if (virtio_pci_stats_json)
                json_object_object_add(o, "virtio", virtio_pci_stats_json(vm));
        /* VM-to-VM links (vmm/virtio/net-link.c): carrier and counters, by link name. */
        if (virtio_net_links_json)
                json_object_object_add(o, "links", virtio_net_links_json());
        stats_memory(o);
        struct json_object *trace = vmm_trace_json();
        if (trace)
                json_object_object_add(o, "trace", trace);
        return o;
}
