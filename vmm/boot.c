/* SPDX-License-Identifier: MIT */
/* Linux x86 boot protocol: bzImage / ELF loading, zero page, page tables, GDT. */
#include <asm/bootparam.h>
#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/boot.h"

#define BZ_SETUP_HEADER_OFFSET 0x1f1
#define BZ_BOOT_FLAG           0xaa55
#define BZ_HEADER_MAGIC        0x53726448 /* "HdrS" */
#define BZ_LOADED_HIGH         0x01
#define BZ_XLF_KERNEL_64       0x01
#define BZ_ENTRY64_OFFSET      0x200 /* 64-bit entry = load address + 0x200 (boot.rst) */
#define E820_RAM               1
#define E820_RESERVED          2

_printf_(3, 4) static int boot_fail(int r, char *error, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, 160, fmt, ap);
        va_end(ap);
        return r;
}

/* error buffers are at least 160 bytes (checked by the public entry). */
#define FAIL(r, ...) boot_fail((r), error, __VA_ARGS__)

static void e820_add(struct boot_params *zp, uint64_t addr, uint64_t size, uint32_t type)
{
        if (size == 0 || zp->e820_entries >= E820_MAX_ENTRIES_ZEROPAGE)
                return;
        zp->e820_table[zp->e820_entries++] =
                (struct boot_e820_entry){.addr = addr, .size = size, .type = type};
}

static void boot_fill_e820(struct boot_params *zp, const struct iov_guest_memory *mem)
{
        uint64_t low_end = vmm_memory_low_end(mem);
        /* The top 1 KiB of base memory (EBDA) and the BIOS area hold the MP table. */
        e820_add(zp, 0, IOV_BOOT_EBDA_START, E820_RAM);
        e820_add(zp, IOV_BOOT_EBDA_START, IOV_BOOT_HIGH_START - IOV_BOOT_EBDA_START, E820_RESERVED);
        e820_add(zp, IOV_BOOT_HIGH_START, low_end - IOV_BOOT_HIGH_START, E820_RAM);
        /* The ECAM window of bus 0, the range the ACPI MCFG announces: Linux uses
         * MMCONFIG only when the firmware reserved it (arch/x86/pci/mmconfig-shared.c
         * checks the e820 map early). */
        e820_add(zp, IOV_MEM_ECAM_START, IOV_MEM_ECAM_BUS_SIZE, E820_RESERVED);
        for (unsigned i = 1; i < mem->n_regions; i++)
                e820_add(zp, mem->regions[i].gpa, mem->regions[i].size, E820_RAM);
}

/* Identity map of the first 4 GiB with 2 MiB pages: enough for Linux's first
 * instructions, which build their own tables (boot.rst, 64-bit boot protocol). */
static int boot_write_page_tables(struct iov_guest_memory *mem)
{
        uint64_t *pml4 = vmm_memory_ptr(mem, IOV_BOOT_PML4_ADDR, 6 * 4096);
        if (!pml4)
                return -EFAULT;
        memset(pml4, 0, 6 * 4096);
        uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;
        pml4[0] = (IOV_BOOT_PML4_ADDR + 0x1000) | 0x3; /* present, writable */
        for (uint64_t i = 0; i < 4; i++)
                pdpt[i] = (IOV_BOOT_PML4_ADDR + 0x2000 + i * 0x1000) | 0x3;
        for (uint64_t i = 0; i < 4 * 512; i++)
                pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
        return 0;
}

static int boot_write_gdt(struct iov_guest_memory *mem, struct iov_boot_info *info)
{
        /* Flat 64-bit code at 0x10 and data at 0x18 as boot.rst requires (__BOOT_CS,
         * __BOOT_DS), then a 16-byte busy 64-bit TSS descriptor at 0x20 for TR. */
        const uint64_t gdt[6] = {
                0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL, 0x00008b0000000067ULL, 0,
        };
        int r = vmm_memory_write(mem, IOV_BOOT_GDT_ADDR, gdt, sizeof(gdt));
        if (r < 0)
                return r;
        info->gdt_base = IOV_BOOT_GDT_ADDR;
        info->gdt_limit = sizeof(gdt) - 1;
        return 0;
}

static int boot_place_initrd(struct iov_guest_memory *mem, struct boot_params *zp,
                             const void *initrd, size_t initrd_size, struct iov_boot_info *info,
                             char *error)
{
        if (!initrd)
                return 0;
        uint64_t max = zp->hdr.initrd_addr_max ? zp->hdr.initrd_addr_max : 0x37ffffff;
        uint64_t low_end = vmm_memory_low_end(mem);
        uint64_t limit = max + 1 < low_end ? max + 1 : low_end;
        if (initrd_size > IOV_BOOT_MAX_INITRD || initrd_size > limit ||
            ((limit - initrd_size) & ~0xfffULL) < info->kernel_end)
                return FAIL(-E2BIG,
                            "initrd of %zu bytes does not fit between the kernel end 0x%llx "
                            "and 0x%llx (more --memory?)",
                            initrd_size, (unsigned long long)info->kernel_end,
                            (unsigned long long)limit);
        uint64_t start = (limit - initrd_size) & ~0xfffULL;
        int r = vmm_memory_write(mem, start, initrd, initrd_size);
        if (r < 0)
                return FAIL(r, "initrd does not fit in guest RAM at 0x%llx",
                            (unsigned long long)start);
        zp->hdr.ramdisk_image = (uint32_t)start;
        zp->hdr.ramdisk_size = (uint32_t)initrd_size;
        zp->ext_ramdisk_image = (uint32_t)(start >> 32);
        zp->ext_ramdisk_size = (uint32_t)((uint64_t)initrd_size >> 32);
        info->initrd_start = start;
        info->initrd_size = initrd_size;
        return 0;
}

static int boot_place_cmdline(struct iov_guest_memory *mem, struct boot_params *zp,
                              const char *cmdline, char *error)
{
        if (!cmdline)
                cmdline = "";
        size_t len = strlen(cmdline);
        /* cmdline_size excludes the terminating NUL (boot.rst, protocol 2.06). */
        uint64_t max = zp->hdr.cmdline_size ? zp->hdr.cmdline_size : 255;
        if (max > IOV_BOOT_CMDLINE_MAX - 1)
                max = IOV_BOOT_CMDLINE_MAX - 1;
        if (len > max)
                return FAIL(-E2BIG, "command line of %zu bytes is longer than the kernel's %llu",
                            len, (unsigned long long)max);
        int r = vmm_memory_write(mem, IOV_BOOT_CMDLINE_ADDR, cmdline, len + 1);
        if (r < 0)
                return FAIL(r, "no guest RAM for the command line");
        zp->hdr.cmd_line_ptr = (uint32_t)IOV_BOOT_CMDLINE_ADDR;
        zp->ext_cmd_line_ptr = 0;
        return 0;
}

/* ---- bzImage ------------------------------------------------------------------------ */

static bool is_bzimage(const uint8_t *k, size_t size)
{
        if (size < 0x264)
                return false;
        uint16_t flag;
        uint32_t magic;
        memcpy(&flag, k + 0x1fe, 2);
        memcpy(&magic, k + 0x202, 4);
        return flag == BZ_BOOT_FLAG && magic == BZ_HEADER_MAGIC;
}

static int bzimage_check(const struct setup_header *hdr, size_t size, size_t *ret_pm_offset,
                         char *error)
{
        if (hdr->version < IOV_BOOT_MIN_PROTOCOL)
                return FAIL(-EPROTO, "boot protocol %u.%02u is too old (need 2.12 or later)",
                            hdr->version >> 8, hdr->version & 0xff);
        if (!(hdr->xloadflags & BZ_XLF_KERNEL_64))
                return FAIL(-EPROTO, "kernel has no 64-bit entry point (XLF_KERNEL_64 unset)");
        if (!(hdr->loadflags & BZ_LOADED_HIGH))
                return FAIL(-EPROTO, "kernel must be loaded low (LOADED_HIGH unset): unsupported");
        size_t setup_sects = hdr->setup_sects ? hdr->setup_sects : 4;
        size_t pm_offset = (setup_sects + 1) * 512;
        if (pm_offset + BZ_ENTRY64_OFFSET + 1 > size)
                return FAIL(-EINVAL,
                            "truncated bzImage: %zu bytes, setup alone is %zu, the 64-bit "
                            "entry lies beyond the end",
                            size, pm_offset);
        if (hdr->syssize && (uint64_t)hdr->syssize * 16 > size - pm_offset + 15)
                return FAIL(-EINVAL,
                            "truncated bzImage: header says %llu bytes of kernel, file has %zu",
                            (unsigned long long)hdr->syssize * 16, size - pm_offset);
        *ret_pm_offset = pm_offset;
        return 0;
}

static int bzimage_load(struct iov_guest_memory *mem, const uint8_t *k, size_t size,
                        struct boot_params *zp, struct iov_boot_info *info, char *error)
{
        size_t hdr_end = 0x202 + (size_t)k[0x201];
        size_t hdr_len = hdr_end - BZ_SETUP_HEADER_OFFSET;
        if (hdr_len > sizeof(zp->hdr))
                hdr_len = sizeof(zp->hdr);
        memcpy(&zp->hdr, k + BZ_SETUP_HEADER_OFFSET, hdr_len);

        size_t pm_offset = 0;
        int r = bzimage_check(&zp->hdr, size, &pm_offset, error);
        if (r < 0)
                return r;

        uint64_t load = IOV_BOOT_HIGH_START;
        if (zp->hdr.pref_address >= IOV_BOOT_HIGH_START &&
            zp->hdr.pref_address < vmm_memory_low_end(mem))
                load = zp->hdr.pref_address;
        uint64_t pm_size = size - pm_offset;
        uint64_t need = zp->hdr.init_size > pm_size ? zp->hdr.init_size : pm_size;
        if (!vmm_memory_ptr(mem, load, need))
                return FAIL(-E2BIG, "kernel needs %llu KiB at 0x%llx, more than guest RAM",
                            (unsigned long long)(need >> 10), (unsigned long long)load);
        vmm_memory_write(mem, load, k + pm_offset, pm_size);

        zp->hdr.type_of_loader = 0xff; /* undefined boot loader id */
        zp->hdr.code32_start = (uint32_t)load;
        zp->hdr.vid_mode = 0xffff; /* "normal" */
        info->entry = load + BZ_ENTRY64_OFFSET;
        info->kernel_start = load;
        info->kernel_end = load + need;
        info->protocol = zp->hdr.version;
        return 0;
}

/* ---- ELF vmlinux ---------------------------------------------------------------------- */

static bool is_elf64(const uint8_t *k, size_t size)
{
        return size >= sizeof(Elf64_Ehdr) && memcmp(k, ELFMAG, SELFMAG) == 0;
}

static int elf_load_segment(struct iov_guest_memory *mem, const uint8_t *k, size_t size,
                            const Elf64_Phdr *ph, struct iov_boot_info *info, char *error)
{
        if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset || ph->p_filesz > ph->p_memsz)
                return FAIL(-EINVAL, "truncated ELF: segment at file offset 0x%llx",
                            (unsigned long long)ph->p_offset);
        uint8_t *dst = vmm_memory_ptr(mem, ph->p_paddr, ph->p_memsz);
        if (!dst || ph->p_paddr < IOV_BOOT_HIGH_START)
                return FAIL(-E2BIG, "ELF segment 0x%llx+0x%llx is outside guest RAM",
                            (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
        memcpy(dst, k + ph->p_offset, ph->p_filesz);
        memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
        if (info->kernel_start == 0 || ph->p_paddr < info->kernel_start)
                info->kernel_start = ph->p_paddr;
        if (ph->p_paddr + ph->p_memsz > info->kernel_end)
                info->kernel_end = ph->p_paddr + ph->p_memsz;
        return 0;
}

/* e_entry may be virtual (0xffffffff8...) : translate it through its segment. */
static uint64_t elf_entry_physical(const Elf64_Ehdr *eh, const Elf64_Phdr *phs)
{
        for (unsigned i = 0; i < eh->e_phnum; i++) {
                const Elf64_Phdr *ph = &phs[i];
                if (ph->p_type == PT_LOAD && eh->e_entry >= ph->p_vaddr &&
                    eh->e_entry - ph->p_vaddr < ph->p_memsz)
                        return eh->e_entry - ph->p_vaddr + ph->p_paddr;
        }
        return eh->e_entry;
}

static int elf_load(struct iov_guest_memory *mem, const uint8_t *k, size_t size,
                    struct boot_params *zp, struct iov_boot_info *info, char *error)
{
        Elf64_Ehdr eh;
        memcpy(&eh, k, sizeof(eh));
        if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
            eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
                return FAIL(-ENOEXEC, "ELF file is not an x86-64 executable");
        if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > size ||
            (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff)
                return FAIL(-EINVAL, "truncated ELF: program headers outside the file");

        _cleanup_free_ Elf64_Phdr *phs = calloc(eh.e_phnum, sizeof(*phs));
        if (!phs)
                return -ENOMEM;
        memcpy(phs, k + eh.e_phoff, eh.e_phnum * sizeof(*phs));
        unsigned loaded = 0;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                if (phs[i].p_type != PT_LOAD)
                        continue;
                int r = elf_load_segment(mem, k, size, &phs[i], info, error);
                if (r < 0)
                        return r;
                loaded++;
        }
        if (loaded == 0)
                return FAIL(-ENOEXEC, "ELF file has no loadable segment");

        /* No setup header in a vmlinux: describe ourselves as a 2.12 loader would. */
        zp->hdr.boot_flag = BZ_BOOT_FLAG;
        zp->hdr.header = BZ_HEADER_MAGIC;
        zp->hdr.version = IOV_BOOT_MIN_PROTOCOL;
        zp->hdr.type_of_loader = 0xff;
        zp->hdr.loadflags = BZ_LOADED_HIGH;
        zp->hdr.cmdline_size = IOV_BOOT_CMDLINE_MAX - 1;
        zp->hdr.initrd_addr_max = 0x7fffffff;
        zp->hdr.kernel_alignment = 0x200000;
        info->entry = elf_entry_physical(&eh, phs);
        info->protocol = 0;
        return 0;
}

int vmm_boot_load(struct iov_guest_memory *mem, const void *kernel, size_t kernel_size,
                  const void *initrd, size_t initrd_size, const char *cmdline,
                  struct iov_boot_info *ret, char *error, size_t error_size)
{
        char message[160] = "";
        struct iov_boot_info info = {0};
        int r;

        _cleanup_free_ struct boot_params *zp = calloc(1, sizeof(*zp));
        if (!zp)
                return -ENOMEM;
        if (kernel_size > IOV_BOOT_MAX_KERNEL)
                r = boot_fail(-E2BIG, message, "kernel image of %zu bytes is too large",
                              kernel_size);
        else if (is_bzimage(kernel, kernel_size))
                r = bzimage_load(mem, kernel, kernel_size, zp, &info, message);
        else if (is_elf64(kernel, kernel_size))
                r = elf_load(mem, kernel, kernel_size, zp, &info, message);
        else
                r = boot_fail(
                        -ENOEXEC, message,
                        "not a Linux kernel: no bzImage \"HdrS\" magic and not ELF (%zu bytes)",
                        kernel_size);
        if (r >= 0)
                r = boot_place_cmdline(mem, zp, cmdline, message);
        if (r >= 0)
                r = boot_place_initrd(mem, zp, initrd, initrd_size, &info, message);
        if (r >= 0) {
                boot_fill_e820(zp, mem);
                r = boot_write_page_tables(mem);
                if (r >= 0)
                        r = boot_write_gdt(mem, &info);
                if (r >= 0)
                        r = vmm_memory_write(mem, IOV_BOOT_ZERO_PAGE_ADDR, zp, sizeof(*zp));
                if (r < 0)
                        boot_fail(r, message, "guest RAM too small for the boot structures");
        }
        if (r < 0) {
                if (error && error_size)
                        snprintf(error, error_size, "%s", message);
                return r;
        }
        info.boot_params = IOV_BOOT_ZERO_PAGE_ADDR;
        info.page_table_root = IOV_BOOT_PML4_ADDR;
        *ret = info;
        return 0;
}

/* A kernel or initrd named by path or by an inherited "fd:N" (util_open_inherited). */
static int boot_read_file(const char *path, size_t max_size, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = -1;
        int r = util_open_inherited(path, O_RDONLY, &fd);
        if (r < 0)
                return r;
        /* From the start, whatever offset a passed descriptor has. */
        if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
                return -errno;
        return util_read_fd(fd, max_size, ret, ret_size);
}

int vmm_boot_load_files(struct iov_guest_memory *mem, const char *kernel_path,
                        const char *initrd_path, const char *cmdline, struct iov_boot_info *ret,
                        char *error, size_t error_size)
{
        _cleanup_free_ char *kernel = NULL, *initrd = NULL;
        size_t kernel_size = 0, initrd_size = 0;

        int r = boot_read_file(kernel_path, IOV_BOOT_MAX_KERNEL, &kernel, &kernel_size);
        if (r < 0) {
                snprintf(error, error_size, "cannot read kernel %s: %s", kernel_path,
                         r == -EFBIG ? "larger than 256 MiB" : strerror(-r));
                return r;
        }
        if (initrd_path) {
                r = boot_read_file(initrd_path, IOV_BOOT_MAX_INITRD, &initrd, &initrd_size);
                if (r < 0) {
                        snprintf(error, error_size, "cannot read initrd %s: %s", initrd_path,
                                 r == -EFBIG ? "larger than 2 GiB" : strerror(-r));
                        return r == -EFBIG ? -E2BIG : r;
                }
        }
        return vmm_boot_load(mem, kernel, kernel_size, initrd, initrd_size, cmdline, ret, error,
                             error_size);
}
