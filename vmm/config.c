/* SPDX-License-Identifier: MIT */
/* iovd-vmm's configuration: the VM definition (vm-contract.h) plus how this process runs it. */
#include <json-c/json.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/pci.h"
#include "vmm/vmm.h"

/* Every device of a definition gets a slot on bus 0 beside the host bridge. */
_Static_assert(IOV_VM_MAX_DEVICES < IOV_PCI_MAX_DEVICES, "more devices than PCI slots");
_Static_assert(IOV_VFIO_GUEST_SLOT_MAX == IOV_PCI_MAX_DEVICES - 1, "guest slots of bus 0");

void vmm_config_init(struct iov_vmm_config *config)
{
        *config = (struct iov_vmm_config){
                .serial = IOV_SERIAL_STDIO,
                .seccomp = true,
                .keeper_fd = -1,
        };
        vm_spec_init(&config->spec);
}

void vmm_config_done(struct iov_vmm_config *config)
{
        if (!config)
                return;
        vm_spec_done(&config->spec);
        free(config->serial_path);
        free(config->control_socket);
        free(config->kvm);
        free(config->vfio_container);
        vmm_config_init(config);
}

/* root[key], a device node (a path or "fd:N"), taken out of root into *ret (NULL when
 * absent): it is how this process reaches the VM's devices, not a part of the definition. */
static int config_take_node(struct json_object *root, const char *key, char **ret, char **ret_error)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(root, key, &v)) {
                *ret = NULL;
                return 0;
        }
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if (s[0] != '/' && strncmp(s, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) != 0)
                return util_error_printf(ret_error, "\"%s\" must be a path or \"fd:N\"", key);
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        json_object_object_del(root, key);
        *ret = copy;
        return 0;
}

/* The definition in root, its device nodes ("kvm", "vfio_container") taken out first. */
static int config_parse_root(struct iov_vmm_config *config, struct json_object *root,
                             char **ret_error)
{
        _cleanup_free_ char *kvm = NULL, *container = NULL;
        struct iov_vm_spec spec;
        struct iov_vm_spec_error err;
        int r = config_take_node(root, "kvm", &kvm, ret_error);
        if (r >= 0)
                r = config_take_node(root, "vfio_container", &container, ret_error);
        if (r < 0)
                return r;
        r = vm_spec_parse_json(root, IOV_VM_SPEC_HOST_DEVICES | IOV_VM_SPEC_INHERITED_FDS, &spec,
                               &err);
        if (r == -EINVAL)
                return util_error_printf(ret_error, "%s", err.message);
        if (r < 0)
                return r;
        vm_spec_move(&config->spec, &spec);
        if (kvm) {
                free(config->kvm);
                config->kvm = TAKE_PTR(kvm);
        }
        if (container) {
                free(config->vfio_container);
                config->vfio_container = TAKE_PTR(container);
        }
        return 0;
}

int vmm_config_parse_json(struct iov_vmm_config *config, const char *json, char **ret_error)
{
        enum json_tokener_error jerr;
        struct json_object *root = json_tokener_parse_verbose(json, &jerr);
        if (!root)
                return util_error_printf(ret_error, "configuration is not valid JSON: %s",
                                         json_tokener_error_desc(jerr));
        int r = config_parse_root(config, root, ret_error);
        json_object_put(root);
        return r;
}

int vmm_config_validate(const struct iov_vmm_config *c, char **ret_error)
{
        struct iov_vm_spec_error err;
        if (!c->spec.kernel || !*c->spec.kernel)
                return util_error_printf(ret_error,
                                         "a kernel is required (--kernel or \"kernel\")");
        if (vm_spec_check(&c->spec, &err) < 0)
                return util_error_printf(ret_error, "%s", err.message);
        if (c->serial == IOV_SERIAL_FILE && (!c->serial_path || !*c->serial_path))
                return util_error_printf(ret_error, "serial file needs a path");
        return 0;
}
