/* SPDX-License-Identifier: MIT */
/* Linux boot protocol loader: good images land where the protocol says, malformed ones
 * get a clear error and touch nothing they should not (no /dev/kvm needed). */
#include <criterion/criterion.h>
#include <elf.h>

#include "util/util.h"
#include "vmm/boot.h"

#define MIB (1ULL << 20)

static struct iov_guest_memory *mem;

static void setup(void)
{
        int r = vmm_memory_new(64 * MIB, &mem);
        cr_assert_eq(r, 0, "vmm_memory_new: %d", r);
}

static void teardown(void)
{
        vmm_memory_free(mem);
}

TestSuite(vmm_boot, .init = setup, .fini = teardown);

/* A minimal bzImage as tests/guest/mkbzimage builds it; payload_size bytes after the
 * 0x200-byte 32-bit stub. */
static uint8_t *make_bzimage(size_t payload_size, uint16_t version, uint16_t xloadflags,
                             size_t *ret_size)
{
        size_t size = 1024 + 0x200 + payload_size;
        uint8_t *k = calloc(1, size);
        cr_assert_not_null(k);
        k[0x1f1] = 1; /* setup_sects */
        uint16_t flag = 0xaa55;
        memcpy(k + 0x1fe, &flag, 2);
        k[0x200] = 0xeb;
        k[0x201] = 0x66;
        memcpy(k + 0x202, "HdrS", 4);
        memcpy(k + 0x206, &version, 2);
        k[0x211] = 0x01;
        uint32_t initrd_max = 0x7fffffff, cmdline_size = 255, init_size = 0x10000;
        memcpy(k + 0x22c, &initrd_max, 4);
        memcpy(k + 0x236, &xloadflags, 2);
        memcpy(k + 0x238, &cmdline_size, 4);
        memcpy(k + 0x260, &init_size, 4);
        memset(k + 1024 + 0x200, 0x90, payload_size);
        *ret_size = size;
        return k;
}

static int load(const void *k, size_t size, const void *initrd, size_t initrd_size,
                const char *cmdline, struct iov_boot_info *info, char *error)
{
        return vmm_boot_load(mem, k, size, initrd, initrd_size, cmdline, info, error, 200);
}

Test(vmm_boot, bzimage_is_loaded_per_protocol)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 1, &size);
        uint8_t initrd[5000];
        memset(initrd, 0xab, sizeof(initrd));
        struct iov_boot_info info;
        char error[200] = "";
        int r = load(k, size, initrd, sizeof(initrd), "console=ttyS0", &info, error);
        cr_assert_eq(r, 0, "load failed %d: %s", r, error);

        cr_expect_eq(info.entry, 0x100200u, "entry 0x%llx", (unsigned long long)info.entry);
        cr_expect_eq(info.boot_params, IOV_BOOT_ZERO_PAGE_ADDR, "boot_params 0x%llx",
                     (unsigned long long)info.boot_params);
        cr_expect_eq(info.protocol, 0x020f, "protocol 0x%x", info.protocol);
        uint8_t *zp = vmm_memory_ptr(mem, IOV_BOOT_ZERO_PAGE_ADDR, 4096);
        cr_assert_not_null(zp);
        cr_expect_eq(memcmp(zp + 0x202, "HdrS", 4), 0, "setup header not copied");
        cr_expect_eq(zp[0x210], 0xff, "type_of_loader 0x%x", zp[0x210]);
        uint32_t cmd_ptr, ramdisk, ramdisk_size;
        memcpy(&cmd_ptr, zp + 0x228, 4);
        memcpy(&ramdisk, zp + 0x218, 4);
        memcpy(&ramdisk_size, zp + 0x21c, 4);
        cr_expect_str_eq((char *)vmm_memory_ptr(mem, cmd_ptr, 14), "console=ttyS0");
        cr_expect_eq(ramdisk_size, sizeof(initrd), "ramdisk_size %u", ramdisk_size);
        cr_expect_eq(ramdisk % 4096, 0u, "initrd not page aligned: 0x%x", ramdisk);
        cr_expect_leq(ramdisk + ramdisk_size, 64 * MIB, "initrd beyond RAM: 0x%x", ramdisk);
        cr_expect_geq(ramdisk, info.kernel_end, "initrd overlaps kernel: 0x%x", ramdisk);
        cr_expect_eq(*(uint8_t *)vmm_memory_ptr(mem, ramdisk, 1), 0xab, "initrd byte 0x%x",
                     *(uint8_t *)vmm_memory_ptr(mem, ramdisk, 1));
        cr_expect_eq(zp[0x1e8], 4, "e820 entries %u", zp[0x1e8]);
        cr_expect_eq(*(uint8_t *)vmm_memory_ptr(mem, 0x100200, 1), 0x90, "payload not at entry");
        /* Identity map: PML4[0] -> PDPT, PD[1] maps 2 MiB..4 MiB as a large page. */
        uint64_t *pml4 = vmm_memory_ptr(mem, IOV_BOOT_PML4_ADDR, 8);
        cr_expect_eq(*pml4 & ~0xfffULL, IOV_BOOT_PML4_ADDR + 0x1000, "PML4[0] 0x%llx",
                     (unsigned long long)*pml4);
        uint64_t *pd1 = vmm_memory_ptr(mem, IOV_BOOT_PML4_ADDR + 0x2000 + 8, 8);
        cr_expect_eq(*pd1, (2 * MIB) | 0x83, "PD[1] 0x%llx", (unsigned long long)*pd1);
}

/* Load the image (and initrd, cmdline) and expect it refused with expected_r, a message
 * containing message (when not NULL), and nothing written to the returned info. */
static void expect_refused(const void *k, size_t size, const void *initrd, size_t initrd_size,
                           const char *cmdline, int expected_r, const char *message,
                           const char *what)
{
        struct iov_boot_info info = {.entry = 42};
        char error[200] = "";
        int r = load(k, size, initrd, initrd_size, cmdline, &info, error);
        cr_expect_eq(r, expected_r, "%s gave %d, expected %d", what, r, expected_r);
        if (message)
                cr_expect(strstr(error, message) != NULL, "%s: message: %s", what, error);
        cr_expect_eq(info.entry, 42u, "%s: ret written on failure", what);
}

Test(vmm_boot, rejects_bad_magic)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 1, &size);
        memcpy(k + 0x202, "HdrX", 4);
        expect_refused(k, size, NULL, 0, NULL, -ENOEXEC, "HdrS", "bad magic");
}

Test(vmm_boot, rejects_old_protocol)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x0206, 1, &size);
        expect_refused(k, size, NULL, 0, NULL, -EPROTO, "2.06", "protocol 2.06");
}

Test(vmm_boot, rejects_kernel_without_64bit_entry)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 0, &size);
        expect_refused(k, size, NULL, 0, NULL, -EPROTO, "64-bit", "no XLF_KERNEL_64");
}

Test(vmm_boot, rejects_truncated_images)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 1, &size);
        /* Cut inside the 32-bit stub: the 64-bit entry is beyond the end. */
        expect_refused(k, 1024 + 0x100, NULL, 0, NULL, -EINVAL, "truncated", "truncated bzImage");
        /* Shorter than a setup header: not recognised at all. */
        expect_refused(k, 0x100, NULL, 0, NULL, -ENOEXEC, NULL, "0x100-byte file");
        expect_refused(k, 0, NULL, 0, NULL, -ENOEXEC, NULL, "empty file");
}

Test(vmm_boot, rejects_initrd_too_big)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 1, &size);
        size_t initrd_size = 64 * MIB;
        _cleanup_free_ uint8_t *initrd = calloc(1, initrd_size);
        cr_assert_not_null(initrd);
        expect_refused(k, size, initrd, initrd_size, NULL, -E2BIG, "initrd",
                       "64 MiB initrd in 64 MiB RAM");
}

Test(vmm_boot, rejects_cmdline_too_long)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 1, &size);
        char cmdline[300];
        memset(cmdline, 'x', sizeof(cmdline) - 1);
        cmdline[sizeof(cmdline) - 1] = '\0';
        expect_refused(k, size, NULL, 0, cmdline, -E2BIG, "command line",
                       "299-byte command line (limit 255)");
}

Test(vmm_boot, rejects_kernel_larger_than_ram)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 1, &size);
        uint32_t init_size = 128 * MIB;
        memcpy(k + 0x260, &init_size, 4);
        expect_refused(k, size, NULL, 0, NULL, -E2BIG, NULL, "kernel needing 128 MiB");
}

static uint8_t *make_elf(uint64_t paddr, uint64_t filesz, uint64_t memsz, size_t *ret_size)
{
        size_t size = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + filesz;
        uint8_t *k = calloc(1, size);
        Elf64_Ehdr eh = {
                .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
                            EV_CURRENT},
                .e_type = ET_EXEC,
                .e_machine = EM_X86_64,
                .e_version = EV_CURRENT,
                .e_entry = 0xffffffff81000000ULL + 0x10,
                .e_phoff = sizeof(Elf64_Ehdr),
                .e_ehsize = sizeof(Elf64_Ehdr),
                .e_phentsize = sizeof(Elf64_Phdr),
                .e_phnum = 1,
        };
        Elf64_Phdr ph = {
                .p_type = PT_LOAD,
                .p_offset = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr),
                .p_vaddr = 0xffffffff81000000ULL,
                .p_paddr = paddr,
                .p_filesz = filesz,
                .p_memsz = memsz,
        };
        memcpy(k, &eh, sizeof(eh));
        memcpy(k + sizeof(eh), &ph, sizeof(ph));
        memset(k + ph.p_offset, 0xcc, filesz);
        *ret_size = size;
        return k;
}

Test(vmm_boot, elf_vmlinux_is_loaded)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_elf(0x1000000, 4096, 8192, &size);
        uint8_t *bss = vmm_memory_ptr(mem, 0x1000000 + 4096, 1);
        *bss = 0x77;
        struct iov_boot_info info;
        char error[200] = "";
        int r = load(k, size, NULL, 0, "root=/dev/vda", &info, error);
        cr_assert_eq(r, 0, "load failed %d: %s", r, error);
        cr_expect_eq(info.entry, 0x1000010u, "virtual entry not translated: 0x%llx",
                     (unsigned long long)info.entry);
        cr_expect_eq(*(uint8_t *)vmm_memory_ptr(mem, 0x1000000, 1), 0xcc, "segment byte 0x%x",
                     *(uint8_t *)vmm_memory_ptr(mem, 0x1000000, 1));
        cr_expect_eq(*bss, 0, "bss not cleared: 0x%x", *bss);
        cr_expect_eq(info.kernel_end, 0x1000000u + 8192, "kernel_end 0x%llx",
                     (unsigned long long)info.kernel_end);
}

Test(vmm_boot, elf_segment_outside_ram_or_file_is_refused)
{
        size_t size;
        _cleanup_free_ uint8_t *k = make_elf(63 * MIB, 4096, 2 * MIB, &size);
        expect_refused(k, size, NULL, 0, NULL, -E2BIG, NULL, "segment past RAM end");
        _cleanup_free_ uint8_t *k2 = make_elf(0x1000000, 4096, 4096, &size);
        expect_refused(k2, size - 100, NULL, 0, NULL, -EINVAL, "truncated", "truncated segment");
}

Test(vmm_boot, missing_files_are_reported)
{
        struct iov_boot_info info;
        char error[200] = "";
        int r = vmm_boot_load_files(mem, "/nonexistent/kernel", NULL, NULL, &info, error,
                                    sizeof(error));
        cr_expect_eq(r, -ENOENT, "missing kernel gave %d", r);
        cr_expect(strstr(error, "/nonexistent/kernel") != NULL, "message: %s", error);
}

Test(vmm_boot, e820_describes_ram_above_the_hole)
{
        struct iov_guest_memory *big = NULL;
        uint64_t size = IOV_MEM_HOLE_START + 64 * MIB; /* MAP_NORESERVE: nothing touched */
        cr_assert_eq(vmm_memory_new(size, &big), 0);
        size_t ksize;
        _cleanup_free_ uint8_t *k = make_bzimage(64, 0x020f, 1, &ksize);
        struct iov_boot_info info;
        char error[200] = "";
        int r = vmm_boot_load(big, k, ksize, NULL, 0, NULL, &info, error, sizeof(error));
        cr_assert_eq(r, 0, "load failed %d: %s", r, error);
        uint8_t *zp = vmm_memory_ptr(big, IOV_BOOT_ZERO_PAGE_ADDR, 4096);
        cr_assert_eq(zp[0x1e8], 5, "e820 entries %u", zp[0x1e8]);
        uint64_t addr, len;
        uint32_t type;
        /* The MCFG's ECAM window must be reserved, or Linux ignores the MCFG. */
        memcpy(&addr, zp + 0x2d0 + 3 * 20, 8);
        memcpy(&len, zp + 0x2d0 + 3 * 20 + 8, 8);
        memcpy(&type, zp + 0x2d0 + 3 * 20 + 16, 4);
        cr_expect_eq(addr, IOV_MEM_ECAM_START, "ECAM reserved at 0x%llx", (unsigned long long)addr);
        cr_expect_eq(len, 1 * MIB, "ECAM reservation 0x%llx", (unsigned long long)len);
        cr_expect_eq(type, 2u, "ECAM reservation type %u", type);
        memcpy(&addr, zp + 0x2d0 + 4 * 20, 8);
        memcpy(&len, zp + 0x2d0 + 4 * 20 + 8, 8);
        memcpy(&type, zp + 0x2d0 + 4 * 20 + 16, 4);
        cr_expect_eq(addr, IOV_MEM_HOLE_END, "high RAM at 0x%llx", (unsigned long long)addr);
        cr_expect_eq(len, 64 * MIB, "high RAM size 0x%llx", (unsigned long long)len);
        cr_expect_eq(type, 1u, "high RAM type %u", type);
        memcpy(&addr, zp + 0x2d0 + 2 * 20, 8);
        memcpy(&len, zp + 0x2d0 + 2 * 20 + 8, 8);
        cr_expect_eq(addr + len, IOV_MEM_HOLE_START, "low RAM ends at 0x%llx",
                     (unsigned long long)(addr + len));
        vmm_memory_free(big);
}
