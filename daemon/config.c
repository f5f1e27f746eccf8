/* SPDX-License-Identifier: MIT */
/*
 * config: iovd's command line (docs/architecture.md lists the options; the defaults are the
 * production ones).
 */
#include <getopt.h>
#include <stdio.h>

#include "config.h"
#include "daemon/daemon.h"

static const char usage_text[] =
        "Usage: iovd [OPTIONS]\n"
        "\n"
        "Host daemon for I/O virtualization on Linux/KVM: PCI, SR-IOV and IOMMU inventory,\n"
        "VF allocation through vfio-pci, served as REST/JSON.\n"
        "\n"
        "  --listen unix:PATH         listen on a Unix socket (mode 0660); repeatable\n"
        "                             (default unix:/run/iovd/iovd.sock)\n"
        "  --listen tcp:HOST:PORT     listen on TCP; needs --token-file, clients send\n"
        "                             \"Authorization: Bearer TOKEN\"\n"
        "  --token-file FILE          the bearer token for TCP listeners: one line of 32+\n"
        "                             hex digits or 22+ base64url characters, mode 600\n"
        "  --state-dir DIR            durable state (default /var/lib/iovd)\n"
        "  --run-dir DIR              runtime files (default /run/iovd)\n"
        "  --sysfs-root DIR           read hardware below DIR instead of /sys\n"
        "  --dev-root DIR             device nodes below DIR instead of /dev\n"
        "  --allow-unsafe-interrupts  allow passthrough without an IOMMU or without\n"
        "                             interrupt remapping (UNSAFE: a device may reach\n"
        "                             host memory or other VMs' interrupts)\n"
        "  --vmm PATH                 the iovd-vmm binary VMs run in (default: next to\n"
        "                             iovd, else in the libexec directory)\n"
        "  --image-dir DIR            a directory whose files VMs may use as kernel,\n"
        "                             initrd, disk or console input; repeatable (default\n"
        "                             " IOV_DAEMON_DEFAULT_IMAGE_DIR ")\n"
        "  --allow-block-devices      VM disks may be block devices (below an image dir)\n"
        "  --vmm-uid-base UID         VMMs run as uids UID to UID+127, one each (default\n"
        "                             2000000000)\n"
        "  --no-vmm-jail              run VMMs as root, without namespaces (debugging)\n"
        "  --memory-overcommit RATIO  the memory of all running VMs together may be up to\n"
        "                             RATIO times the host's MemTotal (0.1 to 100, default 1)\n"
        "  --vcpu-overcommit RATIO    the vCPUs of all running VMs together may be up to RATIO\n"
        "                             times the online CPUs (0.1 to 100, default 4)\n"
        "  --log-level LEVEL          err, warning, notice, info (default) or debug\n"
        "  --help                     show this text\n"
        "  --version                  show the version\n";

enum {
        OPT_LISTEN = 0x100,
        OPT_TOKEN_FILE,
        OPT_STATE_DIR,
        OPT_RUN_DIR,
        OPT_SYSFS_ROOT,
        OPT_DEV_ROOT,
        OPT_ALLOW_UNSAFE,
        OPT_LOG_LEVEL,
        OPT_VMM,
        OPT_CONNECTION_TIMEOUT,
        OPT_MEMORY_OVERCOMMIT,
        OPT_VCPU_OVERCOMMIT,
        OPT_IMAGE_DIR,
        OPT_ALLOW_BLOCK_DEVICES,
        OPT_VMM_UID_BASE,
        OPT_NO_VMM_JAIL,
        OPT_HELP,
        OPT_VERSION,
};

static const struct option long_options[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"run-dir", required_argument, NULL, OPT_RUN_DIR},
        {"sysfs-root", required_argument, NULL, OPT_SYSFS_ROOT},
        {"dev-root", required_argument, NULL, OPT_DEV_ROOT},
        {"allow-unsafe-interrupts", no_argument, NULL, OPT_ALLOW_UNSAFE},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"vmm", required_argument, NULL, OPT_VMM},
        {"memory-overcommit", required_argument, NULL, OPT_MEMORY_OVERCOMMIT},
        {"vcpu-overcommit", required_argument, NULL, OPT_VCPU_OVERCOMMIT},
        {"image-dir", required_argument, NULL, OPT_IMAGE_DIR},
        {"allow-block-devices", no_argument, NULL, OPT_ALLOW_BLOCK_DEVICES},
        {"vmm-uid-base", required_argument, NULL, OPT_VMM_UID_BASE},
        {"no-vmm-jail", no_argument, NULL, OPT_NO_VMM_JAIL},
        /* Hidden (not in --help): for tests of the idle timeout. */
        {"connection-timeout-sec", required_argument, NULL, OPT_CONNECTION_TIMEOUT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {0},
};

int daemon_config_init(struct iov_daemon_config *config)
{
        *config = (struct iov_daemon_config){
                .state_dir = strdup("/var/lib/iovd"),
                .run_dir = strdup("/run/iovd"),
                .sysfs_root = strdup("/sys"),
                .dev_root = strdup("/dev"),
                .log_level = UTIL_LOG_INFO,
                .connection_timeout_sec = 60,
                .memory_overcommit = 1.0,
                /* vCPUs mostly wait: hosts commonly run several per CPU (a 1-CPU host
                 * still runs two small VMs); memory is not overcommitted by default. */
                .vcpu_overcommit = 4.0,
                .vmm_uid_base = IOV_DAEMON_DEFAULT_VMM_UID_BASE,
                .vmm_jail = true,
        };
        if (!config->state_dir || !config->run_dir || !config->sysfs_root || !config->dev_root) {
                daemon_config_clear(config);
                return -ENOMEM;
        }
        return 0;
}

void daemon_config_clear(struct iov_daemon_config *config)
{
        for (size_t i = 0; i < config->n_listen; i++)
                free(config->listen[i]);
        free(config->token_file);
        free(config->state_dir);
        free(config->run_dir);
        free(config->sysfs_root);
        free(config->dev_root);
        free(config->vmm);
        for (size_t i = 0; i < config->n_image_dirs; i++)
                free(config->image_dirs[i]);
        *config = (struct iov_daemon_config){0};
}

static int log_level_parse(const char *s, int *ret)
{
        static const struct {
                const char *name;
                int level;
        } levels[] = {
                {"err", UTIL_LOG_ERR},       {"error", UTIL_LOG_ERR}, {"warning", UTIL_LOG_WARNING},
                {"notice", UTIL_LOG_NOTICE}, {"info", UTIL_LOG_INFO}, {"debug", UTIL_LOG_DEBUG},
        };
        for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
                if (streq(s, levels[i].name)) {
                        *ret = levels[i].level;
                        return 0;
                }
        return -EINVAL;
}

static int set_string(char **field, const char *value)
{
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

/* Paths must be absolute: the daemon may chdir and systemd gives no useful cwd. */
static int set_dir(char **field, const char *option, const char *value)
{
        if (value[0] != '/') {
                fprintf(stderr, "iovd: %s needs an absolute path, not \"%s\"\n", option, value);
                return -EINVAL;
        }
        return set_string(field, value);
}

static int add_listen(struct iov_daemon_config *config, const char *value)
{
        bool unix_ok = strncmp(value, "unix:/", 6) == 0;
        bool tcp_ok = strncmp(value, "tcp:", 4) == 0 && strchr(value + 4, ':');
        if (!unix_ok && !tcp_ok) {
                fprintf(stderr,
                        "iovd: --listen takes unix:/ABSOLUTE/PATH or tcp:HOST:PORT, "
                        "not \"%s\"\n",
                        value);
                return -EINVAL;
        }
        if (config->n_listen == IOV_DAEMON_MAX_LISTEN) {
                fprintf(stderr, "iovd: at most %d --listen options\n", IOV_DAEMON_MAX_LISTEN);
                return -EINVAL;
        }
        config->listen[config->n_listen] = strdup(value);
        if (!config->listen[config->n_listen])
                return -ENOMEM;
        config->n_listen++;
        return 0;
}

/* An image directory, absolute and without trailing slashes, so that a path of a definition
 * is inside it exactly when it starts with it and a slash (vms/vm-files.c). */
static int add_image_dir(struct iov_daemon_config *config, const char *value)
{
        if (value[0] != '/') {
                fprintf(stderr, "iovd: --image-dir needs an absolute path, not \"%s\"\n", value);
                return -EINVAL;
        }
        if (config->n_image_dirs == IOV_DAEMON_MAX_IMAGE_DIRS) {
                fprintf(stderr, "iovd: at most %d --image-dir options\n",
                        IOV_DAEMON_MAX_IMAGE_DIRS);
                return -EINVAL;
        }
        char *dir = strdup(value);
        if (!dir)
                return -ENOMEM;
        for (size_t n = strlen(dir); n > 0 && dir[n - 1] == '/'; n--)
                dir[n - 1] = '\0';
        config->image_dirs[config->n_image_dirs++] = dir;
        return 0;
}

static int config_check(struct iov_daemon_config *config)
{
        if (config->n_image_dirs == 0) {
                int r = add_image_dir(config, IOV_DAEMON_DEFAULT_IMAGE_DIR);
                if (r < 0)
                        return r;
        }
        bool tcp = false;
        for (size_t i = 0; i < config->n_listen; i++)
                tcp = tcp || strncmp(config->listen[i], "tcp:", 4) == 0;
        if (tcp && !config->token_file) {
                fprintf(stderr, "iovd: --listen tcp: needs --token-file (TCP clients must "
                                "authenticate)\n");
                return -EINVAL;
        }
        if (config->n_listen == 0)
                return add_listen(config, "unix:/run/iovd/iovd.sock");
        return 0;
}

static int set_timeout(unsigned *field, const char *value)
{
        uint64_t v;
        if (util_parse_u64(value, 10, &v) < 0 || v < 1 || v > 3600) {
                fprintf(stderr, "iovd: --connection-timeout-sec takes 1 to 3600, not \"%s\"\n",
                        value);
                return -EINVAL;
        }
        *field = (unsigned)v;
        return 0;
}

/* A ratio of 0.1 to 100: below that no VM fits, above it the check means nothing. */
static int set_ratio(double *field, const char *option, const char *value)
{
        char *end = NULL;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !(v >= 0.1 && v <= 100)) {
                fprintf(stderr, "iovd: %s takes a ratio of 0.1 to 100, not \"%s\"\n", option,
                        value);
                return -EINVAL;
        }
        *field = v;
        return 0;
}

/* 1 and up, with room for IOV_VMS_MAX uids below (uid_t)-1, which means "no change". */
static int set_uid_base(uint32_t *field, const char *value)
{
        uint64_t v;
        if (util_parse_u64(value, 10, &v) < 0 || v < 1 || v + 128 >= UINT32_MAX) {
                fprintf(stderr, "iovd: --vmm-uid-base takes 1 to %u, not \"%s\"\n",
                        UINT32_MAX - 129, value);
                return -EINVAL;
        }
        *field = (uint32_t)v;
        return 0;
}

static int option_apply(struct iov_daemon_config *config, int c, const char *arg)
{
        switch (c) {
        case OPT_LISTEN:
                return add_listen(config, arg);
        case OPT_TOKEN_FILE:
                return set_string(&config->token_file, arg);
        case OPT_STATE_DIR:
                return set_dir(&config->state_dir, "--state-dir", arg);
        case OPT_RUN_DIR:
                return set_dir(&config->run_dir, "--run-dir", arg);
        case OPT_SYSFS_ROOT:
                return set_dir(&config->sysfs_root, "--sysfs-root", arg);
        case OPT_DEV_ROOT:
                return set_dir(&config->dev_root, "--dev-root", arg);
        case OPT_CONNECTION_TIMEOUT:
                return set_timeout(&config->connection_timeout_sec, arg);
        case OPT_MEMORY_OVERCOMMIT:
                return set_ratio(&config->memory_overcommit, "--memory-overcommit", arg);
        case OPT_VCPU_OVERCOMMIT:
                return set_ratio(&config->vcpu_overcommit, "--vcpu-overcommit", arg);
        case OPT_VMM:
                return set_dir(&config->vmm, "--vmm", arg);
        case OPT_IMAGE_DIR:
                return add_image_dir(config, arg);
        case OPT_VMM_UID_BASE:
                return set_uid_base(&config->vmm_uid_base, arg);
        case OPT_NO_VMM_JAIL:
                config->vmm_jail = false;
                return 0;
        case OPT_ALLOW_BLOCK_DEVICES:
                config->allow_block_devices = true;
                return 0;
        case OPT_ALLOW_UNSAFE:
                config->allow_unsafe_interrupts = true;
                return 0;
        case OPT_LOG_LEVEL:
                if (log_level_parse(arg, &config->log_level) < 0) {
                        fprintf(stderr, "iovd: unknown log level \"%s\"\n", arg);
                        return -EINVAL;
                }
                return 0;
        default:
                fprintf(stderr, "Try 'iovd --help'.\n");
                return -EINVAL;
        }
}

int daemon_config_parse(struct iov_daemon_config *config, int argc, char **argv)
{
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "", long_options, NULL)) >= 0) {
                if (c == OPT_HELP) {
                        fputs(usage_text, stdout);
                        return 1;
                }
                if (c == OPT_VERSION) {
                        printf("iovd %s\n", IOVD_VERSION);
                        return 1;
                }
                int r = option_apply(config, c, optarg);
                if (r < 0)
                        return r;
        }
        if (optind < argc) {
                fprintf(stderr, "iovd: unexpected argument \"%s\"\n", argv[optind]);
                return -EINVAL;
        }
        return config_check(config);
}
