/* SPDX-License-Identifier: MIT */
/* The VM definition: defaults, the JSON of POST /v1/vms, and validation. */
#include <json-c/json.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/vmm.h"

#define CONFIG_MAX_NAME 64

void vmm_config_init(struct iov_vmm_config *config)
{
        *config = (struct iov_vmm_config){
                .vcpus = 1,
                .memory_mib = IOV_VMM_DEFAULT_MEMORY,
                .serial = IOV_SERIAL_STDIO,
                .seccomp = true,
        };
}

void vmm_config_done(struct iov_vmm_config *config)
{
        if (!config)
                return;
        free(config->name);
        free(config->kernel);
        free(config->initrd);
        free(config->cmdline);
        free(config->serial_path);
        free(config->control_socket);
        json_object_put(config->devices);
        vmm_config_init(config);
}

_printf_(2, 3) static int config_error(char **ret_error, const char *fmt, ...)
{
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

static int config_set_string(char **field, struct json_object *v, const char *key, char **ret_error)
{
        if (!json_object_is_type(v, json_type_string))
                return config_error(ret_error, "\"%s\" must be a string", key);
        char *s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int config_set_uint(uint64_t *field, struct json_object *v, const char *key,
                           char **ret_error)
{
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return config_error(ret_error, "\"%s\" must be a non-negative integer", key);
        *field = (uint64_t)json_object_get_int64(v);
        return 0;
}

static int config_set_field(struct iov_vmm_config *c, const char *key, struct json_object *v,
                            char **ret_error)
{
        uint64_t n = 0;
        int r;
        if (streq(key, "name"))
                return config_set_string(&c->name, v, key, ret_error);
        if (streq(key, "kernel"))
                return config_set_string(&c->kernel, v, key, ret_error);
        if (streq(key, "initrd"))
                return json_object_is_type(v, json_type_null)
                               ? 0
                               : config_set_string(&c->initrd, v, key, ret_error);
        if (streq(key, "cmdline"))
                return config_set_string(&c->cmdline, v, key, ret_error);
        if (streq(key, "vcpus")) {
                r = config_set_uint(&n, v, key, ret_error);
                if (r >= 0)
                        c->vcpus = n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
                return r;
        }
        if (streq(key, "memory_mib"))
                return config_set_uint(&c->memory_mib, v, key, ret_error);
        if (streq(key, "devices")) {
                if (!json_object_is_type(v, json_type_array))
                        return config_error(ret_error, "\"devices\" must be an array");
                json_object_put(c->devices);
                c->devices = json_object_get(v);
                return 0;
        }
        return config_error(ret_error, "unknown field \"%s\"", key);
}

int vmm_config_parse_json(struct iov_vmm_config *config, const char *json, char **ret_error)
{
        enum json_tokener_error jerr;
        struct json_object *root = json_tokener_parse_verbose(json, &jerr);
        if (!root)
                return config_error(ret_error, "configuration is not valid JSON: %s",
                                    json_tokener_error_desc(jerr));
        int r = 0;
        if (!json_object_is_type(root, json_type_object))
                r = config_error(ret_error, "configuration must be a JSON object");
        else {
                json_object_object_foreach (root, key, value) {
                        r = config_set_field(config, key, value, ret_error);
                        if (r < 0)
                                break;
                }
        }
        json_object_put(root);
        return r;
}

int vmm_config_validate(const struct iov_vmm_config *c, char **ret_error)
{
        if (!c->kernel || !*c->kernel)
                return config_error(ret_error, "a kernel is required (--kernel or \"kernel\")");
        if (c->vcpus < 1 || c->vcpus > IOV_VMM_MAX_VCPUS)
                return config_error(ret_error, "vcpus must be 1..%d, not %u", IOV_VMM_MAX_VCPUS,
                                    c->vcpus);
        if (c->memory_mib < 16 || c->memory_mib > (1ULL << 20))
                return config_error(ret_error, "memory_mib must be 16..1048576, not %llu",
                                    (unsigned long long)c->memory_mib);
        if (c->name && (strlen(c->name) == 0 || strlen(c->name) > CONFIG_MAX_NAME))
                return config_error(ret_error, "name must be 1..%d characters", CONFIG_MAX_NAME);
        if (c->serial == IOV_SERIAL_FILE && (!c->serial_path || !*c->serial_path))
                return config_error(ret_error, "serial file needs a path");
        return 0;
}
