/* SPDX-License-Identifier: MIT */
/*
 * iovctl vm ...: VM lifecycle through POST/GET/DELETE /v1/vms. A VM is named by what
 * the API calls its id; the daemon decides whether a name works there too.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct iov_cli_option_spec no_options[] = {{NULL, 0, NULL, NULL}};

/* ---- create --------------------------------------------------------------------------- */

static const struct iov_cli_option_spec vm_create_options[] = {
        {"config", 0, "FILE", "start from this JSON definition (the body of POST /v1/vms)"},
        {"kernel", 0, "FILE", "kernel image (bzImage or vmlinux)"},
        {"initrd", 0, "FILE", "initial ramdisk"},
        {"cmdline", 0, "STR", "kernel command line"},
        {"vcpus", 0, "N", "number of vCPUs"},
        {"memory", 0, "MIB", "guest memory in MiB"},
        {"device", 0, "SPEC",
         "a device: TYPE,key=value,... (virtio-blk,path=F,read_only=true; virtio-net,tap=T,"
         "mac=M; virtio-net,port=P,mac=M; virtio-rng; virtio-console; "
         "vfio,pool=NAME|device=ADDR|allocation=ID[,guest_address=N]) or a JSON object, e.g. "
         "a VM-to-VM link (repeatable)"},
        {NULL, 0, NULL, NULL},
};

/* The daemon may run in another directory: relative paths are made absolute here. */
static char *path_absolute(const char *path)
{
        char cwd[PATH_MAX];
        if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
                return strdup(path);
        return util_strdup_printf("%s/%s", cwd, path);
}

static int vm_body_load_config(const char *file, struct json_object **ret, char **ret_error)
{
        _cleanup_free_ char *text = NULL;
        int r = util_read_file(file, 1024 * 1024, &text, NULL);
        if (r < 0) {
                *ret_error = util_strdup_printf("cannot read %s: %s", file, strerror(-r));
                return r;
        }
        struct json_object *body = json_tokener_parse(text);
        if (!body || !json_object_is_type(body, json_type_object)) {
                json_object_put(body);
                *ret_error = util_strdup_printf("%s does not hold a JSON object", file);
                return -EINVAL;
        }
        *ret = body;
        return 0;
}

static int vm_body_add_files(const struct iov_cli_args *args, struct json_object *body)
{
        static const char *const files[] = {"kernel", "initrd"};
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                const char *v = cli_args_get(args, files[i]);
                if (!v)
                        continue;
                _cleanup_free_ char *abs = path_absolute(v);
                if (!abs || json_object_object_add(body, files[i], json_object_new_string(abs)) < 0)
                        return -ENOMEM;
        }
        const char *cmdline = cli_args_get(args, "cmdline");
        if (cmdline && json_object_object_add(body, "cmdline", json_object_new_string(cmdline)) < 0)
                return -ENOMEM;
        return 0;
}

static int vm_body_add_numbers(const struct iov_cli_args *args, struct json_object *body,
                               char **ret_error)
{
        static const char *const options[] = {"vcpus", "memory"};
        static const char *const keys[] = {"vcpus", "memory_mib"};
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const char *v = cli_args_get(args, options[i]);
                long long n;
                if (!v)
                        continue;
                if (cli_parse_int(v, 1, INT32_MAX, &n) < 0) {
                        *ret_error = util_strdup_printf("--%s takes a positive number, not '%s'",
                                                        options[i], v);
                        return -EINVAL;
                }
                if (json_object_object_add(body, keys[i], json_object_new_int64(n)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int vm_body_add_devices(const struct iov_cli_args *args, struct json_object *body,
                               char **ret_error)
{
        struct json_object *devices = NULL;
        for (size_t i = 0; i < args->n_options; i++) {
                struct json_object *device = NULL;
                if (!streq(args->options[i].spec->name, "device"))
                        continue;
                int r = cli_device_spec_parse(args->options[i].value, &device, ret_error);
                if (r < 0)
                        return r;
                if (!devices) {
                        devices = json_object_new_array();
                        if (!devices || json_object_object_add(body, "devices", devices) < 0) {
                                json_object_put(device);
                                return -ENOMEM;
                        }
                }
                if (json_object_array_add(devices, device) < 0) {
                        json_object_put(device);
                        return -ENOMEM;
                }
        }
        return 0;
}

static int cmd_vm_create(struct iov_cli *cli, const struct iov_cli_args *args)
{
        _cleanup_json_ struct json_object *body = NULL;
        _cleanup_free_ char *error = NULL;
        const char *config = cli_args_get(args, "config");
        int r = 0;

        if (config)
                r = vm_body_load_config(config, &body, &error);
        else if (!(body = json_object_new_object()))
                r = -ENOMEM;
        if (r >= 0 && args->n_positional > 0 &&
            json_object_object_add(body, "name", json_object_new_string(args->positional[0])) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = vm_body_add_files(args, body);
        if (r >= 0)
                r = vm_body_add_numbers(args, body, &error);
        if (r >= 0)
                r = vm_body_add_devices(args, body, &error);
        if (r < 0)
                return cli_usage_error(cli, "vm create: %s", error ? error : strerror(-r));
        return cli_call_and_show(cli, "POST", "/v1/vms", body, cli_print_object);
}

/* ---- list, show, actions -------------------------------------------------------------- */

static int vm_row(struct json_object *vm, char **cells)
{
        cells[0] = cli_json_field(vm, "id");
        cells[1] = cli_json_field(vm, "name");
        cells[2] = cli_json_field(vm, "state");
        cells[3] = cli_json_field(vm, "vcpus");
        cells[4] = cli_json_field(vm, "memory_mib");
        cells[5] = cli_json_field(vm, "reason");
        return 0;
}

static int print_vms(struct iov_cli *cli, struct json_object *json)
{
        static const char *const headers[] = {"ID",    "NAME",       "STATE",
                                              "VCPUS", "MEMORY_MIB", "REASON"};
        return cli_print_list(cli, json, "vms", headers, ARRAY_SIZE(headers), vm_row);
}

static int cmd_vm_list(struct iov_cli *cli, const struct iov_cli_args *args)
{
        (void)args;
        return cli_call_and_show(cli, "GET", "/v1/vms", NULL, print_vms);
}

static int cmd_vm_show(struct iov_cli *cli, const struct iov_cli_args *args)
{
        return cli_call_resource(cli, "GET", "/v1/vms", args->positional[0], NULL, NULL);
}

static const struct iov_cli_option_spec vm_delete_options[] = {
        {"force", 0, NULL, "delete a driver VM even though client VMs have links to its ports"},
        {NULL, 0, NULL, NULL},
};

static int cmd_vm_delete(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *suffix = cli_args_has(args, "force") ? "?force=true" : NULL;
        return cli_call_resource(cli, "DELETE", "/v1/vms", args->positional[0], suffix, NULL);
}

/* start, stop, kill, pause, resume: POST /v1/vms/{id}/ACTION; body may be NULL. */
static int vm_action(struct iov_cli *cli, const struct iov_cli_args *args, const char *action,
                     struct json_object *body)
{
        _cleanup_free_ char *suffix = util_strdup_printf("/%s", action);
        if (!suffix)
                return cli_usage_error(cli, "out of memory");
        return cli_call_resource(cli, "POST", "/v1/vms", args->positional[0], suffix, body);
}

static const struct iov_cli_option_spec vm_stop_options[] = {
        {"timeout", 0, "SEC", "kill the VM when the guest has not shut down after SEC seconds"},
        {NULL, 0, NULL, NULL},
};

static int cmd_vm_stop(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *timeout = cli_args_get(args, "timeout");
        _cleanup_json_ struct json_object *body = NULL;
        long long sec;

        if (!timeout)
                return vm_action(cli, args, "stop", NULL);
        if (cli_parse_int(timeout, 0, INT32_MAX, &sec) < 0)
                return cli_usage_error(cli, "--timeout takes seconds, not '%s'", timeout);
        body = json_object_new_object();
        if (!body || json_object_object_add(body, "timeout_sec", json_object_new_int64(sec)) < 0)
                return cli_usage_error(cli, "out of memory");
        return vm_action(cli, args, "stop", body);
}

#define VM_ACTION(name_)                                                                           \
        static int cmd_vm_##name_(struct iov_cli *cli, const struct iov_cli_args *args)            \
        {                                                                                          \
                return vm_action(cli, args, #name_, NULL);                                         \
        }
VM_ACTION(kill)
VM_ACTION(pause)
VM_ACTION(resume)

const struct iov_cli_command cli_commands_vm[] = {
        {"vm create", "[NAME] --kernel FILE [OPTIONS]", "define a VM", 0, 1, vm_create_options,
         cmd_vm_create},
        {"vm list", "", "list VMs", 0, 0, no_options, cmd_vm_list},
        {"vm show", "ID", "show one VM", 1, 1, no_options, cmd_vm_show},
        {"vm start", "ID [--wait [--marker N] [--timeout SEC]]", "start a VM", 1, 1,
         cli_vm_start_options, cli_cmd_vm_start},
        {"vm stop", "ID [--timeout SEC]", "ask the guest to shut down (killed after a timeout)", 1,
         1, vm_stop_options, cmd_vm_stop},
        {"vm kill", "ID", "stop a VM at once", 1, 1, no_options, cmd_vm_kill},
        {"vm pause", "ID", "pause a running VM", 1, 1, no_options, cmd_vm_pause},
        {"vm resume", "ID", "resume a paused VM", 1, 1, no_options, cmd_vm_resume},
        {"vm delete", "ID [--force]", "delete a VM", 1, 1, vm_delete_options, cmd_vm_delete},
        {"vm console", "ID [--follow]", "print what the VM's serial console printed", 1, 1,
         cli_console_options, cli_cmd_vm_console},
        {NULL, NULL, NULL, 0, 0, NULL, NULL},
};
