/* SPDX-License-Identifier: MIT */
/*
 * devices: GET /v1/devices (with filters) and GET /v1/devices/{address}, read from the
 * current inventory snapshot. Every filter value is parsed strictly; a bad one is a 400
 * naming the parameter, never an empty list.
 */
#include <ctype.h>
#include <stdio.h>

#include "api/api.h"
#include "daemon/daemon.h"

struct device_filter {
        bool has_class;
        uint32_t class_value;
        unsigned class_shift; /* 16: base class only, 8: + subclass, 0: full code */
        int vendor_id;        /* -1: any */
        int device_id;
        const char *driver; /* NULL: any; "none": no driver */
        bool has_physfn;
        struct iov_pci_address physfn;
        enum { SRIOV_ANY, SRIOV_PF, SRIOV_VF, SRIOV_NONE } sriov;
        bool has_numa;
        int numa_node;
};

/* Exactly digits hex digits: no "0x", no sign (strtoull would take both). */
static bool is_hex(const char *s, size_t digits)
{
        if (strlen(s) != digits)
                return false;
        for (size_t i = 0; i < digits; i++)
                if (!isxdigit((unsigned char)s[i]))
                        return false;
        return true;
}

static int parse_hex_id(const char *s, size_t digits, int *ret)
{
        uint64_t v;
        if (!is_hex(s, digits) || util_parse_u64(s, 16, &v) < 0)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

/* "02" (base class), "0200" (with subclass) or "020000" (with programming interface). */
static int parse_class(const char *s, struct device_filter *f)
{
        size_t len = strlen(s);
        uint64_t v;
        if ((len != 2 && len != 4 && len != 6) || !is_hex(s, len) || util_parse_u64(s, 16, &v) < 0)
                return -EINVAL;
        f->has_class = true;
        f->class_shift = (unsigned)(6 - len) * 4;
        f->class_value = (uint32_t)v;
        return 0;
}

static bool driver_name_valid(const char *s)
{
        size_t len = strlen(s);
        if (len == 0 || len > 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!(*p == '-' || *p == '_' || (*p >= '0' && *p <= '9') ||
                      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                        return false;
        return true;
}

static int parse_numa(const char *s, int *ret)
{
        uint64_t v;
        if (util_parse_u64(s, 10, &v) < 0 || v > 4095)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

static int filter_one(struct device_filter *f, const char *name, const char *value)
{
        if (streq(name, "class"))
                return parse_class(value, f);
        if (streq(name, "vendor_id"))
                return parse_hex_id(value, 4, &f->vendor_id);
        if (streq(name, "device_id"))
                return parse_hex_id(value, 4, &f->device_id);
        if (streq(name, "driver")) {
                f->driver = value;
                return driver_name_valid(value) ? 0 : -EINVAL;
        }
        if (streq(name, "physfn")) {
                f->has_physfn = true;
                return pci_address_parse(value, &f->physfn);
        }
        if (streq(name, "sriov")) { /* the router let only the declared values through */
                f->sriov = streq(value, "pf")   ? SRIOV_PF
                           : streq(value, "vf") ? SRIOV_VF
                                                : SRIOV_NONE;
                return 0;
        }
        f->has_numa = true;
        return parse_numa(value, &f->numa_node); /* "numa_node": the router refused others */
}

/* The filters GET /v1/devices takes (api/openapi.yaml), in the order of filter_formats. */
static const char *const sriov_values[] = {"pf", "vf", "none", NULL};
static const struct iov_api_query_param filters[] = {
        {"class", NULL},  {"vendor_id", NULL},     {"device_id", NULL}, {"driver", NULL},
        {"physfn", NULL}, {"sriov", sriov_values}, {"numa_node", NULL}, {NULL, NULL},
};

static const char *const filter_formats[] = {
        "2, 4 or 6 hex digits",      "4 hex digits",  "4 hex digits",
        "a driver name or \"none\"", "a PCI address", "pf, vf or none",
        "a decimal node number",
};

static int filter_parse(const struct iov_api_request *req, struct iov_api_response *resp,
                        struct device_filter *ret)
{
        struct device_filter f = {.vendor_id = -1, .device_id = -1};
        for (size_t i = 0; filters[i].name; i++) {
                const char *v = api_request_query(req, filters[i].name);
                if (v && filter_one(&f, filters[i].name, v) < 0)
                        return api_error(resp, 400, "invalid_filter",
                                         "filter \"%s\" must be %s, not \"%s\"", filters[i].name,
                                         filter_formats[i], v);
        }
        *ret = f;
        return 0;
}

static bool filter_match(const struct device_filter *f, const struct iov_pci_device *dev)
{
        if (f->has_class && (dev->class_code >> f->class_shift) != f->class_value)
                return false;
        if (f->vendor_id >= 0 && dev->vendor_id != f->vendor_id)
                return false;
        if (f->device_id >= 0 && dev->device_id != f->device_id)
                return false;
        if (f->driver &&
            !(streq(f->driver, "none") ? !dev->driver : streq_ptr(dev->driver, f->driver)))
                return false;
        if (f->has_physfn && !(dev->is_vf && pci_address_equal(&dev->physfn, &f->physfn)))
                return false;
        if ((f->sriov == SRIOV_PF && !dev->is_pf) || (f->sriov == SRIOV_VF && !dev->is_vf) ||
            (f->sriov == SRIOV_NONE && (dev->is_pf || dev->is_vf)))
                return false;
        return !f->has_numa || dev->numa_node == f->numa_node;
}

static int devices_list(struct iov_daemon *d, const struct iov_api_request *req,
                        struct iov_api_response *resp)
{
        struct device_filter f;
        int r = filter_parse(req, resp, &f);
        if (r < 0)
                return r;

        _cleanup_snapshot_ struct iov_snapshot *s = daemon_snapshot_get(d);
        char *text = NULL;
        size_t size = 0, n = 0;
        FILE *out = open_memstream(&text, &size);
        if (!out)
                return -ENOMEM;
        fputs("{\"devices\":[", out);
        for (size_t i = 0; i < s->pci->n_devices; i++) {
                if (!filter_match(&f, &s->pci->devices[i]))
                        continue;
                if (n++)
                        fputc(',', out);
                api_device_write(d, &s->pci->devices[i], out);
        }
        fprintf(out, "],\"generation\":%llu}\n", (unsigned long long)s->generation);
        if (fclose(out) != 0) {
                free(text);
                return -ENOMEM;
        }
        return api_reply_text(resp, 200, IOV_API_JSON_TYPE, text);
}

static int devices_get(struct iov_daemon *d, const struct iov_api_request *req,
                       struct iov_api_response *resp)
{
        struct iov_pci_address address;

        int r = api_param_address(req, resp, "address", &address);
        if (r < 0)
                return r;
        _cleanup_snapshot_ struct iov_snapshot *s = daemon_snapshot_get(d);
        const struct iov_pci_device *dev = pci_inventory_find(s->pci, &address);
        if (!dev) {
                char buf[IOV_PCI_ADDRESS_MAX];
                return api_error(resp, 404, "device_not_found", "no PCI function %s",
                                 pci_address_format(&address, buf));
        }
        struct json_object *o = api_device_json(d, dev);
        if (!o)
                return -ENOMEM;
        /* Asked of the kernel for this one function only: lists stay a sysfs snapshot. */
        json_object_object_add(o, "net", dev->is_vf ? api_vf_net_json(d, &dev->address) : NULL);
        return api_reply_json(resp, 200, o);
}

API_ROUTE_QUERY(devices_list, "GET", "/v1/devices", devices_list, filters)
API_ROUTE(devices_get, "GET", "/v1/devices/{address}", devices_get)
