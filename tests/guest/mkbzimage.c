/* SPDX-License-Identifier: MIT */
/*
 * Pack a flat 64-bit payload (linked at 0x100200) as a minimal bzImage that iovd-vmm loads
 * through the same path as Linux's (Documentation/arch/x86/boot.rst): one setup sector
 * after the boot sector, a setup header with protocol 2.15, LOADED_HIGH and
 * XLF_KERNEL_64, then the protected-mode part: 0x200 bytes of hlt (the unused 32-bit
 * entry) followed by the payload at the 64-bit entry.
 *
 * Usage: mkbzimage PAYLOAD.bin OUT.bzImage
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_SECTS 1
#define PM_OFFSET   ((SETUP_SECTS + 1) * 512)

static void put16(uint8_t *p, uint16_t v)
{
        memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
        memcpy(p, &v, 8);
}

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: mkbzimage PAYLOAD.bin OUT.bzImage\n");
                return 2;
        }
        FILE *in = fopen(argv[1], "rb");
        if (!in) {
                perror(argv[1]);
                return 1;
        }
        static uint8_t payload[1 << 20];
        size_t n = fread(payload, 1, sizeof(payload), in);
        fclose(in);
        if (n == 0 || n == sizeof(payload)) {
                fprintf(stderr, "mkbzimage: %s: empty or larger than 1 MiB\n", argv[1]);
                return 1;
        }

        size_t pm_size = 0x200 + n;
        size_t total = PM_OFFSET + pm_size;
        uint8_t *img = calloc(1, total);
        if (!img)
                return 1;
        uint8_t *h = img;
        h[0x1f1] = SETUP_SECTS;
        put32(h + 0x1f4, (uint32_t)((pm_size + 15) / 16)); /* syssize */
        put16(h + 0x1fe, 0xaa55);                          /* boot_flag */
        h[0x200] = 0xeb;                                   /* jmp: header ends at 0x268 */
        h[0x201] = 0x66;
        memcpy(h + 0x202, "HdrS", 4);
        put16(h + 0x206, 0x020f);                                  /* protocol 2.15 */
        h[0x211] = 0x01;                                           /* loadflags: LOADED_HIGH */
        put32(h + 0x214, 0x100000);                                /* code32_start */
        put32(h + 0x22c, 0x7fffffff);                              /* initrd_addr_max */
        put32(h + 0x230, 0x200000);                                /* kernel_alignment */
        put16(h + 0x236, 0x0001);                                  /* xloadflags: XLF_KERNEL_64 */
        put32(h + 0x238, 2047);                                    /* cmdline_size */
        put64(h + 0x258, 0x100000);                                /* pref_address */
        put32(h + 0x260, (uint32_t)((pm_size + 0xfff) & ~0xfffu)); /* init_size */

        memset(img + PM_OFFSET, 0xf4, 0x200); /* hlt: nothing enters at 32 bits */
        memcpy(img + PM_OFFSET + 0x200, payload, n);

        FILE *out = fopen(argv[2], "wb");
        if (!out || fwrite(img, 1, total, out) != total || fclose(out) != 0) {
                perror(argv[2]);
                return 1;
        }
        free(img);
        return 0;
}
