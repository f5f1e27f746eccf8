/* SPDX-License-Identifier: MIT */
/*
 * vmm_run(): build the VM in the order KVM needs (VM, irqchip, memory, devices, kernel,
 * MP table, vCPUs), give up privileges, run until the guest stops, report, tear down.
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "util/util.h"
#include "vmm/boot.h"
#include "vmm/kvm.h"
#include "vmm/run.h"
#include "vmm/vcpu.h"
#include "vmm/virtio/virtio.h"

static struct iov_vm *vm_new(const struct iov_vmm_config *config)
{
        struct iov_vm *vm = calloc(1, sizeof(*vm));
        if (!vm)
                return NULL;
        vm->config = config;
        vm->start_usec = util_now_usec();
        vm->kvm_fd = vm->vm_fd = vm->serial_out_fd = -1;
        vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vm->stop_fd < 0) {
                free(vm);
                return NULL;
        }
        vm->n_vcpus = config->spec.vcpus;
        vm->state = IOV_VM_STATE_CREATED;
        vm->attention = true;
        pthread_mutex_init(&vm->gsi_lock, NULL);
        pthread_mutex_init(&vm->state_lock, NULL);
        pthread_mutex_init(&vm->marker_lock, NULL);
        pthread_cond_init(&vm->state_cond, NULL);
        if (vmm_bus_init(&vm->pio, "pio") < 0 || vmm_bus_init(&vm->mmio, "mmio") < 0) {
                close(vm->stop_fd);
                free(vm);
                return NULL;
        }
        return vm;
}

static void vm_free(struct iov_vm *vm)
{
        if (!vm)
                return;
        for (unsigned i = vm->n_cleanups; i > 0; i--)
                vm->cleanups[i - 1].fn(vm->cleanups[i - 1].data);
        for (unsigned i = 0; i < vm->n_vcpus; i++)
                vmm_vcpu_free(vm->vcpus[i]);
        vmm_bus_done(&vm->pio);
        vmm_bus_done(&vm->mmio);
        if (vm->vm_fd >= 0)
                close(vm->vm_fd);
        if (vm->kvm_fd >= 0)
                close(vm->kvm_fd);
        if (vm->serial_out_fd > STDERR_FILENO)
                close(vm->serial_out_fd);
        if (vm->stop_fd >= 0)
                close(vm->stop_fd);
        vmm_memory_free(vm->mem);
        free(vm);
}

static int vm_open_serial(struct iov_vm *vm, char *error, size_t error_size)
{
        const struct iov_vmm_config *c = vm->config;
        if (c->serial == IOV_SERIAL_STDIO) {
                vm->serial_out_fd = STDOUT_FILENO;
        } else if (c->serial == IOV_SERIAL_FILE) {
                /* "fd:N": the console log iovd opened (appending) and passed. */
                int r = strncmp(c->serial_path, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0
                                ? util_open_inherited(c->serial_path, 0, &vm->serial_out_fd)
                                : 0;
                if (r >= 0 && vm->serial_out_fd < 0)
                        vm->serial_out_fd = open(c->serial_path,
                                                 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (vm->serial_out_fd < 0) {
                        r = r < 0 ? r : -errno;
                        snprintf(error, error_size, "cannot open serial file %s: %s",
                                 c->serial_path, strerror(-r));
                        return r;
                }
        }
        return 0;
}

static int vm_create_vcpus(struct iov_vm *vm, const struct iov_boot_info *boot, char *error,
                           size_t error_size)
{
        _cleanup_free_ struct kvm_cpuid2 *cpuid = NULL;
        int r = vmm_kvm_supported_cpuid(vm->kvm_fd, &cpuid);
        if (r < 0) {
                snprintf(error, error_size, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
                return r;
        }
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                r = vmm_vcpu_new(vm, i, cpuid, &vm->vcpus[i]);
                if (r < 0) {
                        snprintf(error, error_size, "creating vCPU %u failed: %s", i, strerror(-r));
                        return r;
                }
        }
        /* Only the boot processor starts; the others wait for INIT/SIPI from the guest
         * (the in-kernel local APIC keeps them in wait-for-SIPI). */
        r = vmm_vcpu_setup_long_mode(vm->vcpus[0], boot->entry, boot->boot_params,
                                     boot->page_table_root, boot->gdt_base, boot->gdt_limit);
        if (r < 0)
                snprintf(error, error_size, "setting up the boot vCPU failed: %s", strerror(-r));
        return r;
}

/* --keeper-fd: a copy of the VM's descriptor for the process that waits for this one
 * (iovd-vmm-monitor). The kernel frees a VM with its last descriptor, and that waits for
 * several SRCU grace periods (kvm_destroy_vm: the PIT, the MMU notifier; 14 to 19 ms
 * after a SIGKILL here, under 1 ms with a copy held elsewhere, bench/vms): with the copy
 * it happens in the keeper after this process ended, so a kill or a stop is judged
 * without waiting for it. Not with VFIO devices: the VM holds their groups (its KVM-VFIO
 * device) until it is freed, and iovd resets them once this process ended. The socket
 * itself is closed with the other inherited descriptors at the sandbox (vmm/sandbox.c),
 * which the keeper sees as the end of the offer. */
static void vm_hand_to_keeper(const struct iov_vmm_config *c, int vm_fd)
{
        bool vfio = false;
        for (size_t i = 0; i < c->spec.n_devices; i++)
                vfio = vfio || c->spec.devices[i].kind == IOV_VM_DEVICE_VFIO;
        if (c->keeper_fd < 0 || vfio)
                return;
        char byte = 'v';
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {0};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = control.buf,
                           .msg_controllen = sizeof(control.buf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &vm_fd, sizeof(int));
        if (sendmsg(c->keeper_fd, &m, MSG_NOSIGNAL) < 0) /* the VM runs all the same */
                fprintf(stderr, "iovd-vmm: cannot hand the VM to its keeper: %m\n");
}

/* The kernel (and initrd, command line) into guest memory, then the MP and ACPI tables. */
static int vm_load_guest(struct iov_vm *vm, struct iov_boot_info *boot, char *error,
                         size_t error_size)
{
        const struct iov_vmm_config *c = vm->config;
        int r = vmm_boot_load_files(vm->mem, c->spec.kernel, c->spec.initrd, c->spec.cmdline, boot,
                                    error, error_size);
        if (r < 0)
                return r;
        r = vmm_mptable_write(vm);
        if (r >= 0)
                r = vmm_acpi_write(vm);
        if (r < 0)
                snprintf(error, error_size, "no room for the MP / ACPI tables: %s", strerror(-r));
        return r;
}

static int vm_build(struct iov_vm *vm, char *error, size_t error_size)
{
        const struct iov_vmm_config *c = vm->config;
        unsigned n_virtio = 0;
        for (size_t i = 0; i < c->spec.n_devices; i++)
                n_virtio += c->spec.devices[i].kind == IOV_VM_DEVICE_VIRTIO;
        /* First: above every KVM and VFIO descriptor (virtio.h says why). */
        int r = virtio_net_link_reserve_fds(n_virtio, VMM_FD_LIMIT - 1);
        if (r < 0) {
                snprintf(error, error_size, "cannot reserve link descriptors: %s", strerror(-r));
                return r;
        }
        r = vmm_kvm_open(c->kvm ? c->kvm : "/dev/kvm", &vm->kvm_fd, error, error_size);
        if (r < 0)
                return r;
        vmm_trace_mark(IOV_VMM_TRACE_KVM_OPEN);
        r = vmm_memory_new(c->spec.memory_mib << 20, &vm->mem);
        if (r < 0) {
                snprintf(error, error_size, "cannot allocate %llu MiB of guest memory: %s",
                         (unsigned long long)c->spec.memory_mib, strerror(-r));
                return r;
        }
        vmm_trace_mark(IOV_VMM_TRACE_MEMORY);
        r = vmm_kvm_create_vm(vm, error, error_size);
        if (r >= 0)
                vm_hand_to_keeper(c, vm->vm_fd);
        if (r >= 0)
                r = vm_open_serial(vm, error, error_size);
        if (r < 0)
                return r;
        vmm_trace_mark(IOV_VMM_TRACE_VM_CREATE);
        r = vmm_devices_init(vm);
        if (r < 0) {
                snprintf(error, error_size, "%s", vm->exit_reason);
                return r;
        }
        vmm_trace_mark(IOV_VMM_TRACE_DEVICES);

        struct iov_boot_info boot;
        r = vm_load_guest(vm, &boot, error, error_size);
        if (r < 0)
                return r;
        vmm_trace_mark(IOV_VMM_TRACE_BOOT_LOAD);
        return vm_create_vcpus(vm, &boot, error, error_size);
}

int vmm_vm_set_paused(struct iov_vm *vm, bool paused)
{
        int r = 0;
        /* Only running -> paused and paused -> running; anything else is the caller's
         * wrong-state error (409 at the API). */
        pthread_mutex_lock(&vm->state_lock);
        if (paused && vm->state == IOV_VM_STATE_RUNNING)
                vm->state = IOV_VM_STATE_PAUSED;
        else if (!paused && vm->state == IOV_VM_STATE_PAUSED)
                vm->state = IOV_VM_STATE_RUNNING;
        else
                r = -EBUSY;
        pthread_cond_broadcast(&vm->state_cond);
        pthread_mutex_unlock(&vm->state_lock);
        if (r == 0 && paused)
                vmm_vcpus_kick(vm);
        return r;
}

static void vm_set_running(struct iov_vm *vm)
{
        pthread_mutex_lock(&vm->state_lock);
        if (vm->state == IOV_VM_STATE_CREATED)
                vm->state = IOV_VM_STATE_RUNNING;
        /* vCPUs check state only when attention is set: clear it while running. */
        atomic_store(&vm->attention, false);
        pthread_cond_broadcast(&vm->state_cond);
        pthread_mutex_unlock(&vm->state_lock);
}

/* SIGTERM, SIGINT and SIGHUP stop the VM cleanly (exit status 0, stats printed). They are
 * blocked in every thread and read from a signalfd the main thread polls along with the
 * stop eventfd and the control socket, so a stop is seen at once, whoever asks for it. */
static int vm_open_stop_signals(int *ret_fd)
{
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        int r = -pthread_sigmask(SIG_BLOCK, &set, NULL);
        if (r < 0)
                return r;
        int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

/* The last two lines of stderr, which iovd reads from the VMM's log (vm-contract.h). */
static void vm_report(struct iov_vm *vm)
{
        struct json_object *stats = vmm_stats_json(vm);
        json_object_object_add(stats, "state",
                               json_object_new_string(vm_state_to_string(vm->state)));
        json_object_object_add(stats, "reason", json_object_new_string(vm->exit_reason));
        _cleanup_free_ char *line = NULL;
        fprintf(stderr, "iovd-vmm: %s: %s\n", vm_state_to_string(vm->state), vm->exit_reason);
        if (vm_stats_line_format(stats, &line) >= 0)
                fputs(line, stderr);
        json_object_put(stats);
}

/* Takes control_fd (or -1) and signal_fd: both are closed once the VM has stopped. */
static int vm_execute(struct iov_vm *vm, int control_fd_arg, int signal_fd, char *error,
                      size_t error_size)
{
        _cleanup_close_ int control_fd = control_fd_arg;
        pthread_t console;
        bool console_started = false;

        /* Threads first, so the seccomp filter need not allow clone(); TSYNC puts it on
         * them too. They wait for RUNNING. */
        int r = vmm_vcpus_start(vm);
        vmm_trace_mark(IOV_VMM_TRACE_VCPUS);
        if (r < 0)
                snprintf(error, error_size, "cannot start vCPU threads: %s", strerror(-r));
        if (r >= 0 && vm->config->serial == IOV_SERIAL_STDIO)
                console_started = vmm_console_start_input(vm, &console) >= 0; /* not fatal */
        if (r >= 0) {
                int keep[] = {vm->kvm_fd, vm->vm_fd, vm->mem->memfd, vm->serial_out_fd,
                              control_fd, signal_fd, vm->stop_fd,    vmm_stats_open()};
                r = vmm_sandbox_enter(keep, ARRAY_SIZE(keep), vm->config->seccomp, error,
                                      error_size);
        }
        vmm_trace_mark(IOV_VMM_TRACE_SANDBOX);
        if (r >= 0) {
                vm_set_running(vm);
                vmm_trace_mark(IOV_VMM_TRACE_RUNNING);
                vmm_control_serve(vm, TAKE_FD(control_fd), signal_fd);
        } else {
                vmm_vm_request_stop(vm, true, IOV_VMM_EXIT_BUILD_FAILED, error);
        }
        /* Every thread ends before the VM it uses is freed. */
        vmm_vcpus_kick(vm);
        vmm_vcpus_join(vm);
        if (console_started)
                pthread_join(console, NULL);
        return r;
}

int vmm_run(const struct iov_vmm_config *config, char **ret_reason)
{
        char error[256] = "";
        int status;

        vmm_sandbox_note_inherited_fds();
        /* A console reader that goes away (a supervisor restarting) must cost the guest
         * its console output, not its life: writes then fail with EPIPE. */
        signal(SIGPIPE, SIG_IGN);
        _cleanup_close_ int signal_fd = -1;
        if (vm_open_stop_signals(&signal_fd) < 0)
                return IOV_VMM_EXIT_BUILD_FAILED;
        struct iov_vm *vm = vm_new(config);
        if (!vm)
                return IOV_VMM_EXIT_BUILD_FAILED;
        _cleanup_close_ int control_fd = -1;
        int r = vm_build(vm, error, sizeof(error));
        if (r >= 0 && config->control_socket) {
                r = vmm_control_open(config->control_socket, &control_fd);
                if (r < 0)
                        snprintf(error, sizeof(error), "cannot listen on %s: %s",
                                 config->control_socket, strerror(-r));
        }
        if (r >= 0)
                r = vm_execute(vm, TAKE_FD(control_fd), signal_fd, error, sizeof(error));
        if (r < 0) {
                status = IOV_VMM_EXIT_BUILD_FAILED;
        } else {
                vm_report(vm);
                status = vm->state == IOV_VM_STATE_CRASHED ? IOV_VMM_EXIT_GUEST_CRASH
                                                           : vm->exit_status;
                snprintf(error, sizeof(error), "%s", vm->exit_reason);
        }
        if (ret_reason)
                *ret_reason = strdup(error);
        vm_free(vm);
        return status;
}
