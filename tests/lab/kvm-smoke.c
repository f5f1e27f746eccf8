/* SPDX-License-Identifier: MIT */
/*
 * lab-kvm-smoke: prove that /dev/kvm runs guest code, with nothing but raw KVM ioctls
 * (Documentation/virt/kvm/api.rst). A one-page real-mode guest writes 0x42 to I/O port
 * 0x10 and halts; the run must end with exactly that port write, then KVM_EXIT_HLT.
 *
 *   lab-kvm-smoke [/dev/kvm]
 *
 * Prints one line describing what happened; exits 0 when the guest behaved, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include "util/util.h"

#define GUEST_LOAD_ADDRESS 0x1000
#define GUEST_MEMORY_SIZE  0x10000
#define SMOKE_PORT         0x10
#define SMOKE_VALUE        0x42

/* mov dx, 0x10; mov al, 0x42; out dx, al; hlt */
static const uint8_t guest_code[] = {0xba, SMOKE_PORT, 0x00, 0xb0, SMOKE_VALUE, 0xee, 0xf4};

struct smoke_vm {
        int kvm;
        int vm;
        int vcpu;
        struct kvm_run *run;
        size_t run_size;
        uint8_t *memory;
};

static int smoke_fail(const char *what)
{
        int r = -errno;
        printf("kvm-smoke: %s: %s\n", what, strerror(errno));
        return r;
}

static int smoke_setup_memory(struct smoke_vm *s)
{
        s->memory = mmap(NULL, GUEST_MEMORY_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (s->memory == MAP_FAILED)
                return smoke_fail("mmap guest memory");
        memcpy(s->memory + GUEST_LOAD_ADDRESS, guest_code, sizeof(guest_code));

        struct kvm_userspace_memory_region region = {
                .slot = 0,
                .guest_phys_addr = 0,
                .memory_size = GUEST_MEMORY_SIZE,
                .userspace_addr = (uintptr_t)s->memory,
        };
        if (ioctl(s->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
                return smoke_fail("KVM_SET_USER_MEMORY_REGION");
        return 0;
}

static int smoke_setup_vcpu(struct smoke_vm *s)
{
        s->vcpu = ioctl(s->vm, KVM_CREATE_VCPU, 0);
        if (s->vcpu < 0)
                return smoke_fail("KVM_CREATE_VCPU");

        int size = ioctl(s->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (size < (int)sizeof(struct kvm_run))
                return smoke_fail("KVM_GET_VCPU_MMAP_SIZE");
        s->run_size = (size_t)size;
        s->run = mmap(NULL, s->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->vcpu, 0);
        if (s->run == MAP_FAILED)
                return smoke_fail("mmap kvm_run");

        /* Real mode, flat: CS base 0 so the guest starts at physical GUEST_LOAD_ADDRESS. */
        struct kvm_sregs sregs;
        if (ioctl(s->vcpu, KVM_GET_SREGS, &sregs) < 0)
                return smoke_fail("KVM_GET_SREGS");
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        if (ioctl(s->vcpu, KVM_SET_SREGS, &sregs) < 0)
                return smoke_fail("KVM_SET_SREGS");

        struct kvm_regs regs = {.rip = GUEST_LOAD_ADDRESS, .rflags = 0x2};
        if (ioctl(s->vcpu, KVM_SET_REGS, &regs) < 0)
                return smoke_fail("KVM_SET_REGS");
        return 0;
}

static int smoke_open(const char *path, struct smoke_vm *s)
{
        s->kvm = open(path, O_RDWR | O_CLOEXEC);
        if (s->kvm < 0)
                return smoke_fail(path);
        int version = ioctl(s->kvm, KVM_GET_API_VERSION, 0);
        if (version != KVM_API_VERSION) {
                printf("kvm-smoke: KVM_GET_API_VERSION is %d, expected %d\n", version,
                       KVM_API_VERSION);
                return -EPROTO;
        }
        s->vm = ioctl(s->kvm, KVM_CREATE_VM, 0);
        if (s->vm < 0)
                return smoke_fail("KVM_CREATE_VM");
        return 0;
}

static bool smoke_exit_is_expected_out(const struct kvm_run *run)
{
        if (run->exit_reason != KVM_EXIT_IO)
                return false;
        const uint8_t *data = (const uint8_t *)run + run->io.data_offset;
        return run->io.direction == KVM_EXIT_IO_OUT && run->io.port == SMOKE_PORT &&
               run->io.size == 1 && run->io.count == 1 && data[0] == SMOKE_VALUE;
}

/* Two KVM_RUN calls: the first must stop at the port write, the second at hlt. */
static int smoke_run(struct smoke_vm *s)
{
        if (ioctl(s->vcpu, KVM_RUN, 0) < 0)
                return smoke_fail("KVM_RUN");
        if (!smoke_exit_is_expected_out(s->run)) {
                printf("kvm-smoke: first exit reason %u, expected an out of 0x%x to port 0x%x\n",
                       s->run->exit_reason, SMOKE_VALUE, SMOKE_PORT);
                return -EPROTO;
        }
        if (ioctl(s->vcpu, KVM_RUN, 0) < 0)
                return smoke_fail("KVM_RUN");
        if (s->run->exit_reason != KVM_EXIT_HLT) {
                printf("kvm-smoke: second exit reason %u, expected KVM_EXIT_HLT (%u)\n",
                       s->run->exit_reason, KVM_EXIT_HLT);
                return -EPROTO;
        }
        return 0;
}

int main(int argc, char **argv)
{
        const char *path = argc > 1 ? argv[1] : "/dev/kvm";
        struct smoke_vm s = {.kvm = -1, .vm = -1, .vcpu = -1};

        int r = smoke_open(path, &s);
        if (r >= 0)
                r = smoke_setup_memory(&s);
        if (r >= 0)
                r = smoke_setup_vcpu(&s);
        if (r >= 0)
                r = smoke_run(&s);
        if (r >= 0)
                printf("kvm-smoke: guest wrote 0x%x to port 0x%x and halted\n", SMOKE_VALUE,
                       SMOKE_PORT);

        /* The process exits next; the fds and mappings go with it. */
        return r < 0 ? 1 : 0;
}
