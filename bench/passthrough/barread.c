/* SPDX-License-Identifier: MIT */
/*
 * lab-barread BDF OFFSET SECONDS: 32-bit reads of the register at OFFSET of the
 * function's BAR 0 (sysfs resource0, mmapped) for SECONDS; prints
 * "reads=N ns_per_read=X". Runs in the lab on the device itself and in the L2 guest on
 * the same device passed through, where the BAR is a KVM memory slot over the VFIO
 * mapping: a read that exits to the VMM would show in the ratio and in iovd-vmm's MMIO
 * exit count. Memory decode is switched on first (PCI r3.0 §6.2.2): no driver holds the
 * function. Static: the L2 guest's initramfs has no C library.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int decode_on(const char *bdf)
{
        char path[128];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        uint16_t command;
        if (fd < 0 || pread(fd, &command, 2, 4) != 2)
                return -1;
        command |= 0x2;
        int r = pwrite(fd, &command, 2, 4) == 2 ? 0 : -1;
        close(fd);
        return r;
}

static volatile uint32_t *map_bar0(const char *bdf, unsigned long offset)
{
        char path[128];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
        int fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        size_t length = (offset & ~4095ul) + 4096;
        void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        return p == MAP_FAILED ? NULL : (volatile uint32_t *)((uint8_t *)p + offset);
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: lab-barread BDF OFFSET SECONDS\n");
                return 2;
        }
        unsigned long offset = strtoul(argv[2], NULL, 0);
        double seconds = atof(argv[3]);
        volatile uint32_t *reg = decode_on(argv[1]) == 0 ? map_bar0(argv[1], offset & ~3ul) : NULL;
        if (!reg) {
                perror("lab-barread");
                return 1;
        }
        uint64_t reads = 0;
        double start = now(), elapsed = 0;
        /* The clock is read every 1024 reads: its cost stays out of the figure. */
        while (elapsed < seconds) {
                for (unsigned i = 0; i < 1024; i++)
                        (void)*reg; /* volatile: every read reaches the BAR */
                reads += 1024;
                elapsed = now() - start;
        }
        printf("reads=%llu ns_per_read=%.1f value=0x%08x\n", (unsigned long long)reads,
               elapsed * 1e9 / (double)reads, *reg);
        return 0;
}
