/* SPDX-License-Identifier: MIT */
/*
 * The vfio entries of a VM's "devices" list (iovd-vmm --config only, see
 * IOV_VM_SPEC_HOST_DEVICES; through the API, passthrough comes with VM-owned allocations):
 *   {"type": "vfio", "host": "0000:00:03.0", "guest_address": 5}
 * host is the function on the host (bound to vfio-pci); guest_address, optional, the
 * slot on the guest's bus 0 (1..31; 0 is the host bridge). Parsed once here.
 */
#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/contract/vm-contract.h"

/* Exactly "DDDD:BB:SS.F" in hex, slot <= 0x1f, function <= 7 (PCI r3.0 §3.2.2.3.2);
 * stored in lowercase, the form sysfs and VFIO_GROUP_GET_DEVICE_FD use. */
static int spec_parse_bdf(const char *s, char ret[static IOV_VFIO_BDF_MAX])
{
        static const char shape[] = "xxxx:xx:xx.x";
        if (strlen(s) != sizeof(shape) - 1)
                return -EINVAL;
        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == 'x' ? !isxdigit((unsigned char)s[i]) : s[i] != shape[i])
                        return -EINVAL;
        unsigned slot = (unsigned)strtoul(s + 8, NULL, 16), function = (unsigned)(s[11] - '0');
        if (slot > 0x1f || function > 7)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(shape); i++)
                ret[i] = (char)tolower((unsigned char)s[i]);
        return 0;
}

static int spec_field(struct iov_vfio_spec *s, bool *has_host, const char *key,
                      struct json_object *v, char **ret_error)
{
        if (streq(key, "type"))
                return 0;
        if (streq(key, "host")) {
                if (!json_object_is_type(v, json_type_string) ||
                    spec_parse_bdf(json_object_get_string(v), s->host) < 0)
                        return util_error_printf(ret_error, "vfio: \"host\" must be a PCI address "
                                                            "DDDD:BB:SS.F");
                *has_host = true;
                return 0;
        }
        if (streq(key, "guest_address")) {
                int64_t slot = json_object_get_int64(v);
                if (!json_object_is_type(v, json_type_int) || slot < 1 ||
                    slot > IOV_VFIO_GUEST_SLOT_MAX)
                        return util_error_printf(ret_error,
                                                 "vfio: \"guest_address\" must be a slot "
                                                 "1..%d",
                                                 IOV_VFIO_GUEST_SLOT_MAX);
                s->guest_slot = (uint8_t)slot;
                return 0;
        }
        return util_error_printf(ret_error, "vfio: unknown field \"%s\"", key);
}

int vfio_spec_parse(struct json_object *entry, struct iov_vfio_spec *ret, char **ret_error)
{
        struct json_object *type;
        if (!json_object_is_type(entry, json_type_object) ||
            !json_object_object_get_ex(entry, "type", &type) ||
            !json_object_is_type(type, json_type_string) ||
            !streq(json_object_get_string(type), "vfio"))
                return 0; /* not ours; the other models (or the config parser) judge it */

        struct iov_vfio_spec s = {0};
        bool has_host = false;
        json_object_object_foreach (entry, key, v) {
                int r = spec_field(&s, &has_host, key, v, ret_error);
                if (r < 0)
                        return r;
        }
        if (!has_host)
                return util_error_printf(ret_error, "vfio: \"host\" (the PCI address) is required");
        *ret = s;
        return 1;
}
