/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci device model of iovd-vmm: for each virtio entry in the VM's "devices"
 * list (format in spec.c, parsed with the definition), create the device and attach it
 * as a PCI function.
 *
 * virtio-console writes to the VM's console stream (the same fd as the UART: stdout, a
 * file, or nowhere); its input comes from the FIFO named by "input", if any (the UART
 * keeps stdin). virtio-net without a "mac" gets a random locally administered address.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "util/util.h"
#include "vmm/memory.h"
#include "vmm/virtio/pci.h"

static void *vm_memory_ptr(void *opaque, uint64_t gpa, uint64_t len)
{
        return vmm_memory_ptr(opaque, gpa, len);
}

/* One VM per process; the devices keep a pointer to this. */
static struct iov_virtio_mem guest_memory;

static void close_fd(void *data)
{
        close((int)(intptr_t)data);
}

/* The console's input FIFO, opened read-write so it never reads as EOF between writers;
 * closed with the VM. */
static int console_open_input(struct iov_vm *vm, const char *path, int *ret_fd)
{
        struct stat st;
        _cleanup_close_ int fd = -1;

        *ret_fd = -1;
        if (!path)
                return 0;
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISFIFO(st.st_mode))
                return -EINVAL;
        int r = vmm_vm_add_cleanup(vm, close_fd, (void *)(intptr_t)fd);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int spec_create(struct iov_vm *vm, struct iov_virtio_spec *spec, struct iov_virtio_dev **ret)
{
        int in_fd, r;

        switch (spec->type) {
        case IOV_VIRTIO_CONSOLE:
                r = console_open_input(vm, spec->path, &in_fd);
                if (r < 0)
                        return r;
                return virtio_console_new(&guest_memory, in_fd, vm->serial_out_fd, ret);
        case IOV_VIRTIO_BLK:
                return virtio_blk_new(&guest_memory, &spec->blk, ret);
        case IOV_VIRTIO_NET:
                if (!spec->has_mac) {
                        if (getrandom(spec->net.mac, sizeof(spec->net.mac), 0) !=
                            (ssize_t)sizeof(spec->net.mac))
                                return -EIO;
                        /* locally administered, unicast (IEEE 802 §8.2) */
                        spec->net.mac[0] = (uint8_t)((spec->net.mac[0] & 0xfc) | 0x02);
                }
                return virtio_net_new(&guest_memory, &spec->net, ret);
        case IOV_VIRTIO_RNG:
                return virtio_rng_new(&guest_memory, ret);
        }
        return -EINVAL;
}

/* The devices were parsed with the rest of the definition (vm-contract.h), which refused
 * every entry no model knows; the virtio ones are ours. */
static int virtio_pci_init(struct iov_vm *vm)
{
        const struct iov_vm_spec *vm_spec = &vm->config->spec;

        guest_memory = (struct iov_virtio_mem){.ptr = vm_memory_ptr, .opaque = vm->mem};
        for (size_t i = 0; i < vm_spec->n_devices; i++) {
                if (vm_spec->devices[i].kind != IOV_VM_DEVICE_VIRTIO)
                        continue;
                /* A copy: spec_create fills in a made-up MAC; the strings stay the config's. */
                struct iov_virtio_spec spec = vm_spec->devices[i].virtio;
                struct iov_virtio_dev *dev;
                int r = spec_create(vm, &spec, &dev);
                if (r < 0)
                        return r;
                r = vpci_attach(vm, dev, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

IOV_VMM_DEVICE("virtio-pci", IOV_DEVICE_ORDER_PCI, virtio_pci_init)
