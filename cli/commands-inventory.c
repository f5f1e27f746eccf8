/* SPDX-License-Identifier: MIT */
/*
 * iovctl commands that read the host: host, devices, device, groups, group, rescan and
 * the event stream.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct json_object *cli_json_list(struct json_object *json, const char *key)
{
        struct json_object *list = NULL;
        if (json_object_is_type(json, json_type_array))
                return json;
        if (json_object_is_type(json, json_type_object) &&
            json_object_object_get_ex(json, key, &list) &&
            json_object_is_type(list, json_type_array))
                return list;
        return NULL;
}

/* A table of a list in the answer: one row per element made by fill_row. */
int cli_print_list(struct iov_cli *cli, struct json_object *json, const char *key,
                   const char *const *headers, size_t n_columns,
                   int (*fill_row)(struct json_object *item, char **cells))
{
        _cleanup_table_ struct iov_cli_table *t = cli_table_new(n_columns, headers);
        struct json_object *list = cli_json_list(json, key);
        if (!t)
                return -ENOMEM;
        if (!list)
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                char *cells[16] = {0};
                assert(n_columns <= ARRAY_SIZE(cells));
                int r = fill_row(json_object_array_get_idx(list, i), cells);
                if (r >= 0)
                        r = cli_table_add_row(t, (const char *const *)cells);
                for (size_t c = 0; c < n_columns; c++)
                        free(cells[c]);
                if (r < 0)
                        return r;
        }
        return cli_table_show(cli, t);
}

static int cmd_host(struct iov_cli *cli, const struct iov_cli_args *args)
{
        (void)args;
        return cli_call_and_show(cli, "GET", "/v1/host", NULL, cli_print_object);
}

/* ---- devices -------------------------------------------------------------------------- */

static const struct iov_cli_option_spec device_filter_options[] = {
        {"class", 0, "HEX", "class code: 2, 4 or 6 hex digits (020000 Ethernet, 02 network)"},
        {"vendor-id", 0, "HEX", "vendor id, e.g. 8086"},
        {"device-id", 0, "HEX", "device id"},
        {"driver", 0, "NAME", "bound driver name"},
        {"physfn", 0, "ADDR", "VFs of this physical function"},
        {"sriov", 0, "pf|vf|none", "SR-IOV physical or virtual functions, or neither"},
        {"numa-node", 0, "N", "NUMA node"},
        {NULL, 0, NULL, NULL},
};

static char *device_sriov_cell(struct json_object *device)
{
        struct json_object *sriov = NULL;
        _cleanup_free_ char *physfn = cli_json_field(device, "physfn");
        if (physfn)
                return util_strdup_printf("vf of %s", physfn);
        if (json_object_object_get_ex(device, "sriov", &sriov) &&
            json_object_is_type(sriov, json_type_object)) {
                _cleanup_free_ char *num = cli_json_field(sriov, "num_vfs");
                _cleanup_free_ char *total = cli_json_field(sriov, "total_vfs");
                return util_strdup_printf("pf %s/%s", num ? num : "-", total ? total : "-");
        }
        return NULL;
}

/* An allocation appears as an object (its id) or as a plain value. */
static char *allocation_cell(struct json_object *obj)
{
        struct json_object *a = NULL;
        if (!json_object_object_get_ex(obj, "allocation", &a))
                return NULL;
        if (json_object_is_type(a, json_type_object))
                return cli_json_field(a, "id");
        return cli_json_cell(a);
}

static int device_row(struct json_object *d, char **cells)
{
        _cleanup_free_ char *vendor = cli_json_field(d, "vendor_id");
        _cleanup_free_ char *device = cli_json_field(d, "device_id");
        _cleanup_free_ char *vendor_name = cli_json_field(d, "vendor_name");
        _cleanup_free_ char *device_name = cli_json_field(d, "device_name");

        cells[0] = cli_json_field(d, "address");
        cells[1] = cli_json_field(d, "class");
        cells[2] = util_strdup_printf("%s:%s", vendor ? vendor : "-", device ? device : "-");
        cells[3] = cli_json_field(d, "driver");
        cells[4] = cli_json_field(d, "iommu_group");
        cells[5] = cli_json_field(d, "numa_node");
        cells[6] = device_sriov_cell(d);
        cells[7] = allocation_cell(d);
        if (vendor_name || device_name)
                cells[8] = util_strdup_printf("%s%s%s", vendor_name ? vendor_name : "",
                                              vendor_name && device_name ? " " : "",
                                              device_name ? device_name : "");
        return 0;
}

static int print_devices(struct iov_cli *cli, struct json_object *json)
{
        static const char *const headers[] = {"ADDRESS", "CLASS", "ID",         "DRIVER", "GROUP",
                                              "NUMA",    "SRIOV", "ALLOCATION", "NAME"};
        return cli_print_list(cli, json, "devices", headers, ARRAY_SIZE(headers), device_row);
}

static int cmd_devices(struct iov_cli *cli, const struct iov_cli_args *args)
{
        static const char *const options[] = {"class",  "vendor-id", "device-id", "driver",
                                              "physfn", "sriov",     "numa-node"};
        static const char *const params[] = {"class",  "vendor_id", "device_id", "driver",
                                             "physfn", "sriov",     "numa_node"};
        const char *physfn = cli_args_get(args, "physfn"), *sriov = cli_args_get(args, "sriov");
        const char *numa = cli_args_get(args, "numa-node");
        long long node;

        if (physfn && cli_check_address(cli, "--physfn", physfn) != IOV_CLI_EXIT_OK)
                return IOV_CLI_EXIT_USAGE;
        if (sriov && !streq(sriov, "pf") && !streq(sriov, "vf") && !streq(sriov, "none"))
                return cli_usage_error(cli, "--sriov takes pf, vf or none, not '%s'", sriov);
        if (numa && cli_parse_int(numa, 0, 1 << 20, &node) < 0)
                return cli_usage_error(cli, "--numa-node takes a number, not '%s'", numa);

        _cleanup_free_ char *path =
                cli_query_build("/v1/devices", args, options, params, ARRAY_SIZE(options));
        if (!path)
                return cli_usage_error(cli, "out of memory");
        return cli_call_and_show(cli, "GET", path, NULL, print_devices);
}

static int cmd_device(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *address = args->positional[0];
        if (cli_check_address(cli, "device address", address) != IOV_CLI_EXIT_OK)
                return IOV_CLI_EXIT_USAGE;
        return cli_call_resource(cli, "GET", "/v1/devices", address, NULL, NULL);
}

/* ---- IOMMU groups --------------------------------------------------------------------- */

static int group_row(struct json_object *g, char **cells)
{
        cells[0] = cli_json_field(g, "id");
        cells[1] = cli_json_field(g, "viable");
        cells[2] = cli_json_field(g, "owner");
        cells[3] = cli_json_field(g, "devices");
        return 0;
}

static int print_groups(struct iov_cli *cli, struct json_object *json)
{
        static const char *const headers[] = {"ID", "VIABLE", "OWNER", "DEVICES"};
        return cli_print_list(cli, json, "groups", headers, ARRAY_SIZE(headers), group_row);
}

static int cmd_groups(struct iov_cli *cli, const struct iov_cli_args *args)
{
        (void)args;
        return cli_call_and_show(cli, "GET", "/v1/iommu-groups", NULL, print_groups);
}

static int cmd_group(struct iov_cli *cli, const struct iov_cli_args *args)
{
        long long id;
        if (cli_parse_int(args->positional[0], 0, INT32_MAX, &id) < 0)
                return cli_usage_error(cli, "invalid IOMMU group '%s': expected a number",
                                       args->positional[0]);
        _cleanup_free_ char *path = util_strdup_printf("/v1/iommu-groups/%lld", id);
        if (!path)
                return cli_usage_error(cli, "out of memory");
        return cli_call_and_show(cli, "GET", path, NULL, cli_print_object);
}

static int cmd_rescan(struct iov_cli *cli, const struct iov_cli_args *args)
{
        (void)args;
        return cli_call_and_show(cli, "POST", "/v1/rescan", NULL, cli_print_object);
}

static const struct iov_cli_option_spec no_options[] = {{NULL, 0, NULL, NULL}};

const struct iov_cli_command cli_commands_inventory[] = {
        {"host", "", "KVM, IOMMU and vfio-pci status of the host", 0, 0, no_options, cmd_host},
        {"devices", "[FILTERS]", "list PCI functions", 0, 0, device_filter_options, cmd_devices},
        {"device", "ADDR", "show one PCI function", 1, 1, no_options, cmd_device},
        {"groups", "", "list IOMMU groups", 0, 0, no_options, cmd_groups},
        {"group", "ID", "show one IOMMU group", 1, 1, no_options, cmd_group},
        {"rescan", "", "re-read the PCI inventory", 0, 0, no_options, cmd_rescan},
        {"events", "[--count N]", "follow device, VF, allocation and VM events", 0, 0,
         cli_events_options, cli_cmd_events},
        {NULL, NULL, NULL, 0, 0, NULL, NULL},
};
