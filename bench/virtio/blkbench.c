/* SPDX-License-Identifier: MIT */
/*
 * blkbench FILE SECONDS: sequential 1 MiB reads, then random 4 KiB reads, of FILE for
 * SECONDS each; prints "seq_mib_s=X rand4k_iops=Y". Runs in the lab's L2 guest on
 * /dev/vda (O_DIRECT, so the guest's page cache is out of the way) and in the lab on the
 * backing file (page cache: the limit). Built static, it needs nothing from the guest.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: blkbench FILE SECONDS direct|cached\n");
                return 2;
        }
        int direct = argv[3][0] == 'd';
        int fd = open(argv[1], O_RDONLY | (direct ? O_DIRECT : 0));
        if (fd < 0) {
                perror(argv[1]);
                return 1;
        }
        off_t size = lseek(fd, 0, SEEK_END);
        double seconds = atof(argv[2]);
        void *buf;
        if (size < (1 << 20) || posix_memalign(&buf, 4096, 1 << 20) != 0)
                return 1;

        uint64_t bytes = 0;
        off_t off = 0;
        double start = now();
        while (now() - start < seconds) {
                if (off + (1 << 20) > size)
                        off = 0;
                if (pread(fd, buf, 1 << 20, off) != 1 << 20)
                        return 1;
                bytes += 1 << 20;
                off += 1 << 20;
        }
        double seq = (double)bytes / (now() - start) / (1 << 20);

        uint64_t ops = 0, x = 88172645463325252ull;
        uint64_t blocks = (uint64_t)size / 4096;
        start = now();
        while (now() - start < seconds) {
                x ^= x << 13; /* xorshift64: a cheap, fixed sequence of offsets */
                x ^= x >> 7;
                x ^= x << 17;
                if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096)
                        return 1;
                ops++;
        }
        double iops = (double)ops / (now() - start);
        printf("seq_mib_s=%.1f rand4k_iops=%.0f\n", seq, iops);
        return 0;
}
