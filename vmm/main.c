/* SPDX-License-Identifier: MIT */
/* iovd-vmm: command line, then vmm_run(). Exit statuses are listed in vmm/vmm.h. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "config.h"
#include "util/util.h"
#include "vmm/run.h"
#include "vmm/vmm.h"

/* One line per option, as iovd --help does; docs/man/iovd-vmm.1.scd documents the same
 * options and a test checks that both list the same ones. */
static void usage(FILE *f)
{
        fprintf(f,
                "Usage: iovd-vmm --kernel FILE [OPTIONS]\n"
                "\n"
                "Run one KVM virtual machine until its guest shuts down.\n"
                "\n"
                "  --kernel FILE          kernel image: bzImage (boot protocol 2.12+) or ELF\n"
                "  --initrd FILE          initial ramdisk\n"
                "  --cmdline STR          kernel command line\n"
                "  --memory MIB           guest memory in MiB, 16 to 1048576 (default %d)\n"
                "  --vcpus N              number of vCPUs, 1 to %d (default 1)\n"
                "  --serial stdio|file:PATH|none\n"
                "                         where COM1 goes (default stdio)\n"
                "  --config FILE          the VM as JSON (the body of POST /v1/vms); options\n"
                "                         given on the command line override its fields\n"
                "  --control-socket PATH  listen for control commands on this Unix socket\n"
                "  --no-seccomp           do not install the system call filter (debugging)\n"
                "  --jail UID:GID         run in namespaces of its own, an empty root, as\n"
                "                         UID:GID without capabilities (as iovd runs it)\n"
                "  --keeper-fd N          hand the VM's KVM descriptor to the Unix socket N,\n"
                "                         so its teardown runs after this process ended\n"
                "  --help                 show this text\n"
                "  --version              show the version\n"
                "\n"
                "Exit status: 0 guest shut down, 1 VM not built, 2 usage, 3 guest crash.\n",
                IOV_VM_DEFAULT_MEMORY_MIB, IOV_VM_MAX_VCPUS);
}

static const struct option options[] = {
        {"kernel", required_argument, NULL, 'k'},
        {"initrd", required_argument, NULL, 'i'},
        {"cmdline", required_argument, NULL, 'c'},
        {"memory", required_argument, NULL, 'm'},
        {"vcpus", required_argument, NULL, 'n'},
        {"serial", required_argument, NULL, 's'},
        {"config", required_argument, NULL, 'f'},
        {"control-socket", required_argument, NULL, 'S'},
        {"no-seccomp", no_argument, NULL, 'N'},
        {"jail", required_argument, NULL, 'J'},
        {"keeper-fd", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {},
};

static int set_string(char **field, const char *value)
{
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int parse_serial(struct iov_vmm_config *c, const char *value)
{
        if (streq(value, "stdio"))
                c->serial = IOV_SERIAL_STDIO;
        else if (streq(value, "none"))
                c->serial = IOV_SERIAL_NONE;
        else if (strncmp(value, "file:", 5) == 0 && value[5]) {
                c->serial = IOV_SERIAL_FILE;
                return set_string(&c->serial_path, value + 5);
        } else
                return -EINVAL;
        return 0;
}

static int load_config_file(struct iov_vmm_config *c, const char *path)
{
        _cleanup_free_ char *json = NULL, *error = NULL;
        int r = util_read_file(path, 1 << 20, &json, NULL);
        if (r < 0) {
                fprintf(stderr, "iovd-vmm: cannot read %s: %s\n", path, strerror(-r));
                return r;
        }
        r = vmm_config_parse_json(c, json, &error);
        if (r < 0)
                fprintf(stderr, "iovd-vmm: %s: %s\n", path, error ? error : strerror(-r));
        return r;
}

static int parse_number(const char *name, const char *value, uint64_t *ret)
{
        int r = util_parse_u64(value, 10, ret);
        if (r < 0)
                fprintf(stderr, "iovd-vmm: --%s needs a decimal number, not \"%s\"\n", name, value);
        return r;
}

/* UID:GID, both decimal and neither 0 (the jail is for an unprivileged identity). */
static int parse_jail(struct iov_vmm_config *c, const char *value)
{
        char *end = NULL;
        errno = 0;
        unsigned long uid = strtoul(value, &end, 10);
        if (errno || end == value || *end != ':')
                return -EINVAL;
        const char *g = end + 1;
        unsigned long gid = strtoul(g, &end, 10);
        if (errno || end == g || *end || uid == 0 || gid == 0 || uid >= UINT32_MAX ||
            gid >= UINT32_MAX)
                return -EINVAL;
        c->jail = true;
        c->jail_uid = (uid_t)uid;
        c->jail_gid = (gid_t)gid;
        return 0;
}

static int apply_option(struct iov_vmm_config *c, int opt, const char *arg)
{
        uint64_t n;
        int r = 0;
        switch (opt) {
        case 'k':
                return set_string(&c->spec.kernel, arg);
        case 'i':
                return set_string(&c->spec.initrd, arg);
        case 'c':
                return set_string(&c->spec.cmdline, arg);
        case 'm':
                r = parse_number("memory", arg, &n);
                if (r >= 0)
                        c->spec.memory_mib = n;
                return r;
        case 'n':
                r = parse_number("vcpus", arg, &n);
                if (r >= 0) /* the limit is checked later (vm_spec_check) */
                        c->spec.vcpus = n > 1000 ? 1000 : (unsigned)n;
                return r;
        case 's':
                r = parse_serial(c, arg);
                if (r < 0)
                        fprintf(stderr, "iovd-vmm: --serial is stdio, none or file:PATH\n");
                return r;
        case 'S':
                return set_string(&c->control_socket, arg);
        case 'N':
                c->seccomp = false;
                return 0;
        case 'J':
                r = parse_jail(c, arg);
                if (r < 0)
                        fprintf(stderr, "iovd-vmm: --jail takes UID:GID, both above 0\n");
                return r;
        case 'K':
                r = parse_number("keeper-fd", arg, &n);
                if (r >= 0 && (n < 3 || n > INT_MAX))
                        r = -EINVAL;
                if (r >= 0)
                        c->keeper_fd = (int)n;
                return r;
        default:
                return 0;
        }
}

static int parse_argv(struct iov_vmm_config *c, int argc, char **argv)
{
        int opt;
        /* First pass: --config, so the other options override the file. */
        while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
                if (opt == 'h') {
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                } else if (opt == 'V') {
                        puts("iovd-vmm " IOVD_VERSION);
                        exit(EXIT_SUCCESS);
                } else if (opt == '?') {
                        usage(stderr);
                        return -EINVAL;
                } else if (opt == 'f' && load_config_file(c, optarg) < 0) {
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "iovd-vmm: unexpected argument \"%s\"\n", argv[optind]);
                return -EINVAL;
        }
        optind = 0;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1)
                if (apply_option(c, opt, optarg) < 0)
                        return -EINVAL;
        return 0;
}

int main(int argc, char **argv)
{
        struct iov_vmm_config config;
        vmm_trace_init();
        vmm_config_init(&config);

        _cleanup_free_ char *error = NULL;
        if (parse_argv(&config, argc, argv) < 0 || vmm_config_validate(&config, &error) < 0) {
                if (error)
                        fprintf(stderr, "iovd-vmm: %s\n", error);
                vmm_config_done(&config);
                return IOV_VMM_EXIT_USAGE;
        }

        char jail_error[256];
        if (vmm_jail_enter(&config, jail_error, sizeof(jail_error)) < 0) {
                fprintf(stderr, "iovd-vmm: %s\n", jail_error);
                vmm_config_done(&config);
                return IOV_VMM_EXIT_BUILD_FAILED;
        }
        vmm_trace_mark(IOV_VMM_TRACE_JAIL);
        _cleanup_free_ char *reason = NULL;
        int status = vmm_run(&config, &reason);
        if (status != 0)
                fprintf(stderr, "iovd-vmm: %s\n", reason ? reason : "failed");
        vmm_config_done(&config);
        return status;
}
