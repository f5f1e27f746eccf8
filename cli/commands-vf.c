/* SPDX-License-Identifier: MIT */
/*
 * iovctl vf set VF --mac ... --vlan ...: the network settings of a VF of a network PF
 * (PUT /v1/devices/{vf}/net). Options become the request's fields one for one; the
 * daemon checks the values against what the kernel can carry and answers with what the
 * kernel reports afterwards. `iovctl device VF` shows them (its net.* lines).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct iov_cli_option_spec vf_set_options[] = {
        {"mac", 0, "MAC", "unicast MAC address, e.g. 02:00:00:00:00:01"},
        {"vlan", 0, "ID", "VLAN id 0..4094 (0: untagged)"},
        {"qos", 0, "N", "802.1p priority 0..7 of the VLAN"},
        {"spoof-check", 0, "on|off", "drop frames whose source MAC is not the VF's"},
        {"trust", 0, "on|off", "let the VF change its MAC and enter promiscuous modes"},
        {"link-state", 0, "auto|enable|disable", "the VF's link: the PF's, always up or down"},
        {"min-tx-rate", 0, "MBPS", "guaranteed transmit rate in Mbit/s (0: none)"},
        {"max-tx-rate", 0, "MBPS", "transmit rate limit in Mbit/s (0: none)"},
        {NULL, 0, NULL, NULL},
};

/* --option name, its JSON field, and how its value is read. */
enum vf_value { VF_STRING, VF_INT, VF_SWITCH };

static const struct {
        const char *option;
        const char *field;
        enum vf_value kind;
        long long max;
} vf_fields[] = {
        {"mac", "mac", VF_STRING, 0},
        {"vlan", "vlan", VF_INT, 4094},
        {"qos", "qos", VF_INT, 7},
        {"spoof-check", "spoof_check", VF_SWITCH, 0},
        {"trust", "trust", VF_SWITCH, 0},
        {"link-state", "link_state", VF_STRING, 0},
        {"min-tx-rate", "min_tx_rate", VF_INT, UINT32_MAX},
        {"max-tx-rate", "max_tx_rate", VF_INT, UINT32_MAX},
};

/* One option's value as JSON; NULL with a usage error printed when it is malformed. */
static struct json_object *vf_value_json(struct iov_cli *cli, size_t i, const char *value)
{
        long long n;
        switch (vf_fields[i].kind) {
        case VF_INT:
                if (cli_parse_int(value, 0, vf_fields[i].max, &n) == 0)
                        return json_object_new_int64(n);
                cli_usage_error(cli, "--%s takes a number from 0 to %lld, not '%s'",
                                vf_fields[i].option, vf_fields[i].max, value);
                return NULL;
        case VF_SWITCH:
                if (streq(value, "on") || streq(value, "off"))
                        return json_object_new_boolean(streq(value, "on"));
                cli_usage_error(cli, "--%s takes on or off, not '%s'", vf_fields[i].option, value);
                return NULL;
        default:
                return json_object_new_string(value);
        }
}

static int cmd_vf_set(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *vf = args->positional[0];
        if (cli_check_address(cli, "VF address", vf) != IOV_CLI_EXIT_OK)
                return IOV_CLI_EXIT_USAGE;
        _cleanup_json_ struct json_object *body = json_object_new_object();
        if (!body)
                return cli_usage_error(cli, "out of memory");
        for (size_t i = 0; i < ARRAY_SIZE(vf_fields); i++) {
                const char *value = cli_args_get(args, vf_fields[i].option);
                if (!value)
                        continue;
                struct json_object *v = vf_value_json(cli, i, value);
                if (!v)
                        return IOV_CLI_EXIT_USAGE;
                json_object_object_add(body, vf_fields[i].field, v);
        }
        if (json_object_object_length(body) == 0)
                return cli_usage_error(cli, "vf set needs at least one setting (--mac, --vlan, "
                                            "...)");
        return cli_call_resource(cli, "PUT", "/v1/devices", vf, "/net", body);
}

const struct iov_cli_command cli_commands_vf[] = {
        {"vf set", "VF [--mac MAC] [--vlan ID] [--qos N] [...]",
         "set the network settings of a VF of a network PF", 1, 1, vf_set_options, cmd_vf_set},
        {NULL, NULL, NULL, 0, 0, NULL, NULL},
};
