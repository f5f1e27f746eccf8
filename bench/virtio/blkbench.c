/* SPDX-License-Identifier: MIT */
/*
 * blkbench FILE SECONDS direct|cached [seq16]: of FILE, for SECONDS each, at queue depth
 * 1 (one reader) and 16 (16 threads, each with one read in flight): sequential 1 MiB
 * reads and random 4 KiB reads. Prints "seq_mib_s=X rand4k_iops=Y seq_qd16_mib_s=Z
 * rand4k_qd16_iops=W". With seq16 only the sequential depth-16 row runs (prints
 * "seq_qd16_mib_s=Z"), so that the block layer's counters around it describe that row
 * alone (bytes per request, bench/lab/l2-init). Runs in the lab's L2 guest on /dev/vda (O_DIRECT,
 * so the guest's page cache is out of the way) and in the lab on the backing file (page cache: the
 * limit). Built static, it needs nothing from the guest.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEPTH 16

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct reader {
        int fd;
        off_t size;
        double seconds;
        size_t block;   /* 1 MiB sequential or 4 KiB random */
        unsigned index; /* which of `stride` readers: sequential ones interleave */
        unsigned stride;
        uint64_t ops; /* out */
        int failed;   /* out */
        pthread_t thread;
};

static void *reader_run(void *arg)
{
        struct reader *r = arg;
        void *buf;
        uint64_t x = 88172645463325252ull + r->index * 0x9e3779b97f4a7c15ull;
        uint64_t blocks = (uint64_t)r->size / r->block, next = r->index;

        if (posix_memalign(&buf, 4096, r->block) != 0) {
                r->failed = 1;
                return NULL;
        }
        double start = now();
        while (now() - start < r->seconds) {
                uint64_t b;
                if (r->block == 4096) {
                        x ^= x << 13; /* xorshift64: a cheap, fixed sequence of offsets */
                        x ^= x >> 7;
                        x ^= x << 17;
                        b = x % blocks;
                } else {
                        b = next % blocks;
                        next += r->stride;
                }
                if (pread(r->fd, buf, r->block, (off_t)(b * r->block)) != (ssize_t)r->block) {
                        r->failed = 1;
                        break;
                }
                r->ops++;
        }
        free(buf);
        return NULL;
}

/* Operations per second of `depth` readers of `block` bytes; -1 on a failed read. */
static double measure(int fd, off_t size, double seconds, size_t block, unsigned depth)
{
        struct reader r[DEPTH] = {0};
        uint64_t ops = 0;
        int failed = 0;

        double start = now();
        for (unsigned i = 0; i < depth; i++) {
                r[i] = (struct reader){fd, size, seconds, block, i, depth, 0, 0, 0};
                if (pthread_create(&r[i].thread, NULL, reader_run, &r[i]) != 0)
                        return -1;
        }
        for (unsigned i = 0; i < depth; i++) {
                pthread_join(r[i].thread, NULL);
                ops += r[i].ops;
                failed |= r[i].failed;
        }
        return failed ? -1 : (double)ops / (now() - start);
}

int main(int argc, char **argv)
{
        if (argc != 4 && !(argc == 5 && strcmp(argv[4], "seq16") == 0)) {
                fprintf(stderr, "usage: blkbench FILE SECONDS direct|cached [seq16]\n");
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
        if (size < (DEPTH << 20))
                return 1;
        if (argc == 5) {
                double only = measure(fd, size, seconds, 1 << 20, DEPTH);
                if (only < 0)
                        return 1;
                printf("seq_qd16_mib_s=%.1f\n", only);
                return 0;
        }
        double seq = measure(fd, size, seconds, 1 << 20, 1);
        double rnd = measure(fd, size, seconds, 4096, 1);
        double seq16 = measure(fd, size, seconds, 1 << 20, DEPTH);
        double rnd16 = measure(fd, size, seconds, 4096, DEPTH);
        if (seq < 0 || rnd < 0 || seq16 < 0 || rnd16 < 0)
                return 1;
        printf("seq_mib_s=%.1f rand4k_iops=%.0f seq_qd16_mib_s=%.1f rand4k_qd16_iops=%.0f\n", seq,
               rnd, seq16, rnd16);
        return 0;
}
