/* SPDX-License-Identifier: MIT */
/*
 * lab-dma: the two ends of the DMA containment scenario (scenarios/vfio-containment.sh).
 * Linked statically: the same binary runs in the lab and in the L2 guest's busybox
 * initramfs, which has no C library.
 *
 *   lab-dma canary MIN_ADDR
 *       In the lab: lock memory until a page of it sits at a physical address at or
 *       above MIN_ADDR (from /proc/self/pagemap), fill that page with a pattern, print
 *       "canary 0xADDR", its physical address, then wait for SIGTERM and check the
 *       pattern: prints "canary intact" (exit 0) or where it changed (exit 1).
 *   lab-dma e1000e BDF ADDR
 *       In the L2 guest, with no driver bound to BDF: program the 82574 through its BAR 0
 *       (sysfs resource0) to DMA at guest-physical ADDR, outside the guest's RAM: a
 *       transmit ring based there (a descriptor read, 82574 datasheet §7.2.3) and receive
 *       descriptors in guest RAM whose buffers point there (a frame write, §7.1.4). The
 *       IOMMU must stop both; this program only reports what the device did.
 *   lab-dma bar BDF N OFFSET VALUE
 *       In the L2 guest, with no driver bound to BDF: write the 32-bit VALUE at OFFSET of
 *       memory BAR N (sysfs resourceN, mmapped) and read it back: prints "bar N offset
 *       0xOFFSET wrote 0xVALUE read 0xREAD", exit 0 when they match (vfio-nvme-cmb: a
 *       controller memory buffer holds what is written; nothing mapped reads all ones).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE    4096u
#define CANARY_CHUNK (4u << 20)
#define CANARY_MAX   (640u << 20)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* 82574 register offsets and bits (82574 datasheet §10.2; Linux e1000e hw.h). */
#define E1000_CTRL        0x00000
#define E1000_CTRL_RST    (1u << 26)
#define E1000_STATUS      0x00008
#define E1000_STATUS_LU   (1u << 1)
#define E1000_IMC         0x000d8
#define E1000_RCTL        0x00100
#define E1000_RCTL_EN     (1u << 1)
#define E1000_RCTL_UPE    (1u << 3)
#define E1000_RCTL_MPE    (1u << 4)
#define E1000_RCTL_BAM    (1u << 15)
#define E1000_TCTL        0x00400
#define E1000_TCTL_EN     (1u << 1)
#define E1000_TCTL_PSP    (1u << 3)
#define E1000_RDBAL       0x02800
#define E1000_RDBAH       0x02804
#define E1000_RDLEN       0x02808
#define E1000_RDH         0x02810
#define E1000_RDT         0x02818
#define E1000_TDBAL       0x03800
#define E1000_TDBAH       0x03804
#define E1000_TDLEN       0x03808
#define E1000_TDH         0x03810
#define E1000_TDT         0x03818
#define RING_DESCRIPTORS  8 /* 128 bytes: the ring length granule (§10.2.6.4, §10.2.7.4) */
#define RX_DESC_STATUS_DD 0x01

/* The physical address of the page at virtual address p (root only: others read 0). */
static int dma_physical_address(const void *p, uint64_t *ret)
{
        int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        uint64_t entry = 0;
        ssize_t n =
                pread(fd, &entry, sizeof(entry), (off_t)((uintptr_t)p / PAGE_SIZE * sizeof(entry)));
        close(fd);
        /* Documentation/admin-guide/mm/pagemap.rst: bit 63 present, bits 0-54 the PFN. */
        if (n != sizeof(entry) || !(entry >> 63) || !(entry & ((1ULL << 55) - 1)))
                return -ENOENT;
        *ret = (entry & ((1ULL << 55) - 1)) * PAGE_SIZE;
        return 0;
}

static uint64_t canary_word(size_t i)
{
        return 0x10adcafe00000000ULL ^ (uint64_t)i;
}

/* The page of chunk at or above min_addr (below 3 GiB: the lab's RAM there is plain RAM,
 * outside any MMIO hole); its index, or -ENOENT. highest: the highest address seen. */
static int canary_find_page(uint8_t *chunk, uint64_t min_addr, uint64_t *ret_phys,
                            uint64_t *highest)
{
        for (size_t off = 0; off < CANARY_CHUNK; off += PAGE_SIZE) {
                uint64_t phys = 0; /* gcc -O3 cannot see that the call sets it */
                if (dma_physical_address(chunk + off, &phys) < 0)
                        continue;
                if (phys > *highest)
                        *highest = phys;
                if (phys >= min_addr && phys < (3ULL << 30)) {
                        *ret_phys = phys;
                        return (int)(off / PAGE_SIZE);
                }
        }
        return -ENOENT;
}

/* Locked chunks until one holds a page at or above min_addr; the others are given back. */
static uint8_t *canary_alloc(uint64_t min_addr, uint64_t *ret_phys)
{
        uint8_t *chunks[CANARY_MAX / CANARY_CHUNK], *found = NULL;
        uint64_t highest = 0;
        size_t n = 0;
        while (!found && n < ARRAY_LEN(chunks)) {
                uint8_t *c = mmap(NULL, CANARY_CHUNK, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
                if (c == MAP_FAILED)
                        break;
                chunks[n++] = c;
                int page = canary_find_page(c, min_addr, ret_phys, &highest);
                if (page >= 0)
                        found = c + (size_t)page * PAGE_SIZE;
        }
        for (size_t i = 0; i < n; i++)
                if (!found || found < chunks[i] || found >= chunks[i] + CANARY_CHUNK)
                        munmap(chunks[i], CANARY_CHUNK);
        if (!found)
                fprintf(stderr,
                        "lab-dma: no page at or above 0x%" PRIx64 " in %zu MiB (highest 0x%" PRIx64
                        ")\n",
                        min_addr, n * (CANARY_CHUNK >> 20), highest);
        return found;
}

static int canary_run(uint64_t min_addr)
{
        uint64_t phys, now;
        uint64_t *words = (uint64_t *)canary_alloc(min_addr, &phys);
        if (!words)
                return 2;
        for (size_t i = 0; i < PAGE_SIZE / 8; i++)
                words[i] = canary_word(i);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        printf("canary 0x%" PRIx64 "\n", phys);
        int sig;
        sigwait(&set, &sig);
        if (dma_physical_address(words, &now) < 0 || now != phys) {
                printf("canary page moved from 0x%" PRIx64 "\n", phys);
                return 2;
        }
        for (size_t i = 0; i < PAGE_SIZE / 8; i++)
                if (words[i] != canary_word(i)) {
                        printf("canary changed at 0x%" PRIx64 "\n", phys + i * 8);
                        return 1;
                }
        printf("canary intact (the page at 0x%" PRIx64 ")\n", phys);
        return 0;
}

struct nic {
        volatile uint8_t *regs;
        int config_fd;
};

static uint32_t reg_read(const struct nic *n, uint32_t offset)
{
        return *(volatile uint32_t *)(n->regs + offset);
}

static void reg_write(const struct nic *n, uint32_t offset, uint32_t value)
{
        *(volatile uint32_t *)(n->regs + offset) = value;
}

static void sleep_ms(unsigned ms)
{
        struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        nanosleep(&t, NULL);
}

/* Memory decode and bus master on (PCI r3.0 §6.2.2): without bus master a device may not
 * start DMA at all, and the test would prove nothing. */
static int nic_set_command(const struct nic *n, uint16_t bits, bool on)
{
        uint16_t command;
        if (pread(n->config_fd, &command, 2, 4) != 2)
                return -errno;
        command = on ? (uint16_t)(command | bits) : (uint16_t)(command & ~bits);
        return pwrite(n->config_fd, &command, 2, 4) == 2 ? 0 : -errno;
}

static int nic_open(const char *bdf, struct nic *ret)
{
        char path[128];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
        int config_fd = open(path, O_RDWR | O_CLOEXEC);
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
        int fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
        if (config_fd < 0 || fd < 0) {
                fprintf(stderr, "lab-dma: %s: %s\n", path, strerror(errno));
                return -ENODEV;
        }
        void *regs = mmap(NULL, 128 << 10, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (regs == MAP_FAILED) {
                perror("lab-dma: mmap resource0");
                return -ENODEV;
        }
        *ret = (struct nic){.regs = regs, .config_fd = config_fd};
        return nic_set_command(ret, 0x6, true);
}

/* Software reset (§10.2.2.1): nothing left of an earlier user; interrupts masked. */
static void nic_reset(const struct nic *n)
{
        reg_write(n, E1000_CTRL, reg_read(n, E1000_CTRL) | E1000_CTRL_RST);
        sleep_ms(20);
        reg_write(n, E1000_IMC, 0xffffffff);
        printf("lab-dma: status 0x%08x after reset\n", reg_read(n, E1000_STATUS));
}

/* A transmit ring based at addr: bumping the tail makes the device fetch descriptor 0
 * from addr (§3.3.3). */
static void nic_transmit_from(const struct nic *n, uint64_t addr)
{
        reg_write(n, E1000_TDBAL, (uint32_t)addr);
        reg_write(n, E1000_TDBAH, (uint32_t)(addr >> 32));
        reg_write(n, E1000_TDLEN, RING_DESCRIPTORS * 16);
        reg_write(n, E1000_TDH, 0);
        reg_write(n, E1000_TDT, 0);
        reg_write(n, E1000_TCTL, E1000_TCTL_EN | E1000_TCTL_PSP);
        reg_write(n, E1000_TDT, 1);
        sleep_ms(500);
        printf("lab-dma: tx ring at 0x%" PRIx64 ": tail 1, head %u\n", addr,
               reg_read(n, E1000_TDH));
        reg_write(n, E1000_TCTL, 0);
}

/* Receive descriptors (legacy format, §3.2.3) in guest RAM, every buffer at addr; the
 * lab's other NIC sends frames, each one the device writes to addr. Waits for the
 * device to write back descriptor 0 (DD), which it does after the frame's write. */
static int nic_receive_into(const struct nic *n, uint64_t addr)
{
        volatile uint64_t *ring = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
        uint64_t ring_phys;
        if (!ring || mlock((void *)ring, PAGE_SIZE) < 0)
                return -ENOMEM;
        memset((void *)ring, 0, PAGE_SIZE);
        if (dma_physical_address((const void *)ring, &ring_phys) < 0)
                return -ENOENT;
        for (unsigned i = 0; i < RING_DESCRIPTORS; i++)
                ring[2 * i] = addr;
        reg_write(n, E1000_RDBAL, (uint32_t)ring_phys);
        reg_write(n, E1000_RDBAH, (uint32_t)(ring_phys >> 32));
        reg_write(n, E1000_RDLEN, RING_DESCRIPTORS * 16);
        reg_write(n, E1000_RDH, 0);
        reg_write(n, E1000_RDT, RING_DESCRIPTORS - 1);
        reg_write(n, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_UPE | E1000_RCTL_MPE | E1000_RCTL_BAM);
        unsigned waited = 0;
        while (!(((volatile uint8_t *)ring)[12] & RX_DESC_STATUS_DD) && waited < 20000) {
                sleep_ms(100);
                waited += 100;
        }
        reg_write(n, E1000_RCTL, 0);
        printf("lab-dma: rx ring at 0x%" PRIx64 ", buffers at 0x%" PRIx64
               ": descriptor 0 %s after %u ms, head %u\n",
               ring_phys, addr,
               (((volatile uint8_t *)ring)[12] & RX_DESC_STATUS_DD) ? "done" : "not done", waited,
               reg_read(n, E1000_RDH));
        return 0;
}

static int e1000e_run(const char *bdf, uint64_t addr)
{
        struct nic n;
        if (nic_open(bdf, &n) < 0)
                return 2;
        nic_reset(&n);
        printf("lab-dma: link %s\n",
               (reg_read(&n, E1000_STATUS) & E1000_STATUS_LU) ? "up" : "down");
        nic_transmit_from(&n, addr);
        if (nic_receive_into(&n, addr) < 0)
                printf("lab-dma: no receive ring in guest RAM\n");
        (void)nic_set_command(&n, 0x4, false);
        /* Still here and the device still answers: the faults stopped only the DMA. */
        printf("lab-dma: alive, status 0x%08x\n", reg_read(&n, E1000_STATUS));
        return 0;
}

static int bar_run(const char *bdf, unsigned bar, uint64_t offset, uint32_t value)
{
        char path[128];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%u", bdf, bar);
        int fd = open(path, O_RDWR | O_SYNC);
        if (fd < 0) {
                perror("lab-dma: open resource");
                return 1;
        }
        uint64_t page = offset & ~(uint64_t)(PAGE_SIZE - 1);
        void *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)page);
        close(fd);
        if (p == MAP_FAILED) {
                perror("lab-dma: mmap resource");
                return 1;
        }
        volatile uint32_t *word = (volatile uint32_t *)((uint8_t *)p + (offset - page));
        *word = value;
        uint32_t read = *word;
        printf("lab-dma: bar %u offset 0x%" PRIx64 " wrote 0x%08x read 0x%08x\n", bar, offset,
               value, read);
        munmap(p, PAGE_SIZE);
        return read == value ? 0 : 1;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc == 3 && strcmp(argv[1], "canary") == 0)
                return canary_run(strtoull(argv[2], NULL, 0));
        if (argc == 4 && strcmp(argv[1], "e1000e") == 0)
                return e1000e_run(argv[2], strtoull(argv[3], NULL, 0));
        if (argc == 6 && strcmp(argv[1], "bar") == 0)
                return bar_run(argv[2], (unsigned)strtoul(argv[3], NULL, 0),
                               strtoull(argv[4], NULL, 0), (uint32_t)strtoul(argv[5], NULL, 0));
        fprintf(stderr, "usage: lab-dma canary MIN_ADDR | lab-dma e1000e BDF ADDR | "
                        "lab-dma bar BDF N OFFSET VALUE\n");
        return 2;
}
