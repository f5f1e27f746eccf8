/* SPDX-License-Identifier: MIT */
/*
 * iovctl commands that change the host: VF creation (sriov), pools and allocations.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct iov_cli_option_spec no_options[] = {{NULL, 0, NULL, NULL}};

/* ---- SR-IOV --------------------------------------------------------------------------- */

static const struct iov_cli_option_spec sriov_options[] = {
        {"autoprobe", 0, NULL, "let host drivers bind the new VFs (off by default)"},
        {NULL, 0, NULL, NULL},
};

static int cmd_sriov(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *pf = args->positional[0], *count = args->positional[1];
        long long num_vfs;

        if (cli_check_address(cli, "physical function", pf) != IOV_CLI_EXIT_OK)
                return IOV_CLI_EXIT_USAGE;
        /* PCIe r5 §9.3.3.8: TotalVFs is a 16-bit field. */
        if (cli_parse_int(count, 0, UINT16_MAX, &num_vfs) < 0)
                return cli_usage_error(cli, "invalid VF count '%s': expected 0 to 65535", count);

        _cleanup_json_ struct json_object *body = json_object_new_object();
        if (!body || json_object_object_add(body, "num_vfs", json_object_new_int64(num_vfs)) < 0)
                return cli_usage_error(cli, "out of memory");
        /* Sent only when asked: the daemon's default (off) stays its decision. */
        if (cli_args_has(args, "autoprobe") &&
            json_object_object_add(body, "drivers_autoprobe", json_object_new_boolean(1)) < 0)
                return cli_usage_error(cli, "out of memory");
        /* iovd answers once the VFs are there (up to 10 s): a progress line meanwhile. */
        return cli_sriov_call_watching(cli, pf, num_vfs, body);
}

/* ---- pools ---------------------------------------------------------------------------- */

static const struct iov_cli_option_spec pool_create_options[] = {
        {"vendor-id", 0, "HEX", "vendor id, e.g. 8086"},
        {"device-id", 0, "HEX", "device id"},
        {"class", 0, "HEX", "class code: 2, 4 or 6 hex digits"},
        {"driver", 0, "NAME", "bound driver"},
        {"physfn", 0, "ADDR", "VFs of this physical function"},
        {"numa-node", 0, "N", "NUMA node"},
        {"address", 0, "ADDR", "an explicit device (repeatable)"},
        {"net", 0, "KEY=VALUE,...",
         "network template for allocated VFs: vlan, qos, spoof_check, trust, link_state, "
         "min_tx_rate, max_tx_rate"},
        {NULL, 0, NULL, NULL},
};

static char *selector_cell(struct json_object *pool)
{
        struct json_object *selector = NULL;
        _cleanup_free_ char *text = strdup("");

        if (!json_object_object_get_ex(pool, "selector", &selector) ||
            !json_object_is_type(selector, json_type_object))
                return NULL;
        json_object_object_foreach (selector, key, value) {
                _cleanup_free_ char *cell = cli_json_cell(value);
                if (!cell || !text)
                        continue;
                char *next = util_strdup_printf("%s%s%s=%s", text, text[0] ? " " : "", key, cell);
                free(text);
                text = next;
        }
        return text && text[0] ? TAKE_PTR(text) : NULL;
}

static int pool_row(struct json_object *p, char **cells)
{
        cells[0] = cli_json_field(p, "name");
        cells[1] = cli_json_field(p, "capacity");
        cells[2] = cli_json_field(p, "free");
        cells[3] = selector_cell(p);
        return 0;
}

static int print_pools(struct iov_cli *cli, struct json_object *json)
{
        static const char *const headers[] = {"NAME", "CAPACITY", "FREE", "SELECTOR"};
        return cli_print_list(cli, json, "pools", headers, ARRAY_SIZE(headers), pool_row);
}

static int cmd_pools(struct iov_cli *cli, const struct iov_cli_args *args)
{
        (void)args;
        return cli_call_and_show(cli, "GET", "/v1/pools", NULL, print_pools);
}

static int cmd_pool_show(struct iov_cli *cli, const struct iov_cli_args *args)
{
        return cli_call_resource(cli, "GET", "/v1/pools", args->positional[0], NULL, NULL);
}

/* Strings as typed; numbers checked here so a typo is a usage error, not a request. */
static int pool_selector_add(struct iov_cli *cli, const struct iov_cli_args *args,
                             struct json_object *selector)
{
        static const char *const options[] = {"vendor-id", "device-id", "class", "driver",
                                              "physfn"};
        static const char *const keys[] = {"vendor_id", "device_id", "class", "driver", "physfn"};
        const char *numa = cli_args_get(args, "numa-node");
        long long node;

        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const char *v = cli_args_get(args, options[i]);
                if (v && json_object_object_add(selector, keys[i], json_object_new_string(v)) < 0)
                        return -ENOMEM;
        }
        if (numa) {
                if (cli_parse_int(numa, 0, 1 << 20, &node) < 0)
                        return cli_usage_error(cli, "--numa-node takes a number, not '%s'", numa);
                if (json_object_object_add(selector, "numa_node", json_object_new_int64(node)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int pool_addresses_add(const struct iov_cli_args *args, struct json_object *selector)
{
        struct json_object *addresses = NULL;
        for (size_t i = 0; i < args->n_options; i++) {
                if (!streq(args->options[i].spec->name, "address"))
                        continue;
                if (!addresses) {
                        addresses = json_object_new_array();
                        if (!addresses ||
                            json_object_object_add(selector, "addresses", addresses) < 0)
                                return -ENOMEM;
                }
                if (json_object_array_add(addresses,
                                          json_object_new_string(args->options[i].value)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* One KEY=VALUE of --net as its JSON value: numbers and on/off (true/false) checked
 * here, link_state passed on for the daemon to judge; NULL for an unknown key. */
static struct json_object *net_value(const char *key, const char *value, bool *ret_bad)
{
        static const char *const numbers[] = {"vlan", "qos", "min_tx_rate", "max_tx_rate"};
        long long n;
        *ret_bad = false;
        for (size_t i = 0; i < ARRAY_SIZE(numbers); i++)
                if (streq(key, numbers[i])) {
                        *ret_bad = cli_parse_int(value, 0, UINT32_MAX, &n) < 0;
                        return *ret_bad ? NULL : json_object_new_int64(n);
                }
        if (streq(key, "spoof_check") || streq(key, "trust")) {
                bool on = streq(value, "on") || streq(value, "true");
                *ret_bad = !on && !streq(value, "off") && !streq(value, "false");
                return *ret_bad ? NULL : json_object_new_boolean(on);
        }
        if (streq(key, "link_state"))
                return json_object_new_string(value);
        *ret_bad = true;
        return NULL;
}

/* --net vlan=100,spoof_check=off,...: the pool's "net" template. */
static int pool_net_add(struct iov_cli *cli, const struct iov_cli_args *args,
                        struct json_object *body)
{
        const char *spec = cli_args_get(args, "net");
        if (!spec)
                return 0;
        _cleanup_free_ char *copy = strdup(spec);
        struct json_object *net = json_object_new_object();
        if (!copy || !net || json_object_object_add(body, "net", net) < 0) {
                json_object_put(net);
                return -ENOMEM;
        }
        char *save = NULL;
        for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(item, '=');
                bool bad = !eq;
                struct json_object *v = eq ? (*eq = '\0', net_value(item, eq + 1, &bad)) : NULL;
                if (eq && (bad || !v))
                        *eq = '='; /* the whole item in the message */
                if (bad || !v)
                        return cli_usage_error(cli,
                                               "--net takes KEY=VALUE,... with vlan, qos, "
                                               "min_tx_rate, max_tx_rate (numbers), spoof_check, "
                                               "trust (on/off), link_state; not '%s'",
                                               item);
                if (json_object_object_add(net, item, v) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int cli_check_addresses(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *physfn = cli_args_get(args, "physfn");
        if (physfn && cli_check_address(cli, "--physfn", physfn) != IOV_CLI_EXIT_OK)
                return IOV_CLI_EXIT_USAGE;
        for (size_t i = 0; i < args->n_options; i++)
                if (streq(args->options[i].spec->name, "address") &&
                    cli_check_address(cli, "--address", args->options[i].value) != IOV_CLI_EXIT_OK)
                        return IOV_CLI_EXIT_USAGE;
        return IOV_CLI_EXIT_OK;
}

static int cmd_pool_create(struct iov_cli *cli, const struct iov_cli_args *args)
{
        _cleanup_json_ struct json_object *body = json_object_new_object();
        struct json_object *selector;
        int r;

        if (cli_check_addresses(cli, args) != IOV_CLI_EXIT_OK)
                return IOV_CLI_EXIT_USAGE;
        if (!body ||
            json_object_object_add(body, "name", json_object_new_string(args->positional[0])) < 0)
                return cli_usage_error(cli, "out of memory");
        selector = json_object_new_object();
        if (!selector || json_object_object_add(body, "selector", selector) < 0) {
                json_object_put(selector);
                return cli_usage_error(cli, "out of memory");
        }
        r = pool_selector_add(cli, args, selector);
        if (r == IOV_CLI_EXIT_USAGE)
                return r;
        if (r >= 0)
                r = pool_addresses_add(args, selector);
        if (r >= 0)
                r = pool_net_add(cli, args, body);
        if (r == IOV_CLI_EXIT_USAGE)
                return r;
        if (r < 0)
                return cli_usage_error(cli, "out of memory");
        return cli_call_and_show(cli, "POST", "/v1/pools", body, cli_print_object);
}

static int cmd_pool_delete(struct iov_cli *cli, const struct iov_cli_args *args)
{
        return cli_call_resource(cli, "DELETE", "/v1/pools", args->positional[0], NULL, NULL);
}

/* ---- allocations ---------------------------------------------------------------------- */

static const struct iov_cli_option_spec alloc_options[] = {
        {"owner", 0, "OWNER", "who holds the allocation (required)"},
        {"device", 0, "ADDR", "allocate this device (with its whole IOMMU group)"},
        {"pool", 0, "NAME",
         "allocate any free device of this pool (with --device: that device, counted in the pool)"},
        {"mac", 0, "MAC", "give the VF this MAC, or auto: a stable one iovd derives"},
        {NULL, 0, NULL, NULL},
};

static int cmd_alloc(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *owner = cli_args_get(args, "owner"), *device = cli_args_get(args, "device");
        const char *pool = cli_args_get(args, "pool");

        if (!owner)
                return cli_usage_error(cli, "alloc: --owner is required");
        if (!device && !pool)
                return cli_usage_error(cli, "alloc: give --device, --pool, or both");
        if (device && cli_check_address(cli, "--device", device) != IOV_CLI_EXIT_OK)
                return IOV_CLI_EXIT_USAGE;

        _cleanup_json_ struct json_object *body = json_object_new_object();
        if (!body || json_object_object_add(body, "owner", json_object_new_string(owner)) < 0 ||
            (device &&
             json_object_object_add(body, "device", json_object_new_string(device)) < 0) ||
            (pool && json_object_object_add(body, "pool", json_object_new_string(pool)) < 0))
                return cli_usage_error(cli, "out of memory");
        const char *mac = cli_args_get(args, "mac"); /* checked by the daemon */
        if (mac && json_object_object_add(body, "mac", json_object_new_string(mac)) < 0)
                return cli_usage_error(cli, "out of memory");
        return cli_call_and_show(cli, "POST", "/v1/allocations", body, cli_print_object);
}

static int allocation_row(struct json_object *a, char **cells)
{
        cells[0] = cli_json_field(a, "id");
        cells[1] = cli_json_field(a, "owner");
        cells[2] = cli_json_field(a, "state");
        cells[3] = cli_json_field(a, "pool");
        cells[4] = cli_json_field(a, "iommu_group");
        cells[5] = cli_json_field(a, "vfio_group");
        cells[6] = cli_json_field(a, "devices");
        return 0;
}

static int print_allocations(struct iov_cli *cli, struct json_object *json)
{
        static const char *const headers[] = {"ID",    "OWNER", "STATE",  "POOL",
                                              "GROUP", "VFIO",  "DEVICES"};
        return cli_print_list(cli, json, "allocations", headers, ARRAY_SIZE(headers),
                              allocation_row);
}

static int cmd_allocations(struct iov_cli *cli, const struct iov_cli_args *args)
{
        (void)args;
        return cli_call_and_show(cli, "GET", "/v1/allocations", NULL, print_allocations);
}

static int cmd_allocation(struct iov_cli *cli, const struct iov_cli_args *args)
{
        return cli_call_resource(cli, "GET", "/v1/allocations", args->positional[0], NULL, NULL);
}

/* The owner is checked by the daemon, as at alloc: one rule, one place. */
static int cmd_alloc_set_owner(struct iov_cli *cli, const struct iov_cli_args *args)
{
        _cleanup_json_ struct json_object *body = json_object_new_object();
        if (!body ||
            json_object_object_add(body, "owner", json_object_new_string(args->positional[1])) < 0)
                return cli_usage_error(cli, "out of memory");
        return cli_call_resource(cli, "PATCH", "/v1/allocations", args->positional[0], NULL, body);
}

static int cmd_release(struct iov_cli *cli, const struct iov_cli_args *args)
{
        return cli_call_resource(cli, "DELETE", "/v1/allocations", args->positional[0], NULL, NULL);
}

const struct iov_cli_command cli_commands_allocation[] = {
        {"sriov", "PF N [--autoprobe]", "set the number of VFs of a physical function", 2, 2,
         sriov_options, cmd_sriov},
        {"pools", "", "list pools with capacity and free devices", 0, 0, no_options, cmd_pools},
        {"pool show", "NAME", "show one pool", 1, 1, no_options, cmd_pool_show},
        {"pool create", "NAME [SELECTORS] [--address ADDR]... [--net KEY=VALUE,...]",
         "create a pool of devices", 1, 1, pool_create_options, cmd_pool_create},
        {"pool delete", "NAME", "delete a pool (refused while allocations use it)", 1, 1,
         no_options, cmd_pool_delete},
        /* Before "alloc": the first command whose name matches the words wins. */
        {"alloc set-owner", "ID OWNER",
         "give an allocation a new owner label (refused for a VM's allocation)", 2, 2, no_options,
         cmd_alloc_set_owner},
        {"alloc", "--owner OWNER (--device ADDR | --pool NAME | --pool NAME --device ADDR)",
         "allocate a device and its IOMMU group for vfio-pci", 0, 0, alloc_options, cmd_alloc},
        {"release", "ID", "release an allocation (restores the host drivers)", 1, 1, no_options,
         cmd_release},
        {"allocations", "", "list allocations", 0, 0, no_options, cmd_allocations},
        {"allocation", "ID", "show one allocation", 1, 1, no_options, cmd_allocation},
        {NULL, NULL, NULL, 0, 0, NULL, NULL},
};
