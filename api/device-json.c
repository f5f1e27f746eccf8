/* SPDX-License-Identifier: MIT */
/*
 * device-json: the JSON form of a PCI function and an IOMMU group, as docs/architecture.md fixes it
 * (lowercase hex ids without 0x, null for what is unknown or absent). Shared by every
 * resource that shows devices.
 */
#include <stdio.h>

#include "api/api.h"
#include "daemon/daemon.h"

/* A JSON string (RFC 8259 §7): quote, backslash and control characters escaped. */
static void write_string(FILE *out, const char *s)
{
        if (!s) {
                fputs("null", out);
                return;
        }
        fputc('"', out);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(out, "\\%c", *p);
                else if (*p < 0x20)
                        fprintf(out, "\\u%04x", *p);
                else
                        fputc(*p, out);
        }
        fputc('"', out);
}

static void write_sriov(FILE *out, const struct iov_pci_device *dev)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        fprintf(out, "{\"total_vfs\":%u,\"num_vfs\":%u,\"vfs\":[", dev->total_vfs, dev->num_vfs);
        for (size_t i = 0; i < dev->n_vfs; i++)
                fprintf(out, "%s\"%s\"", i ? "," : "", pci_address_format(&dev->vfs[i], buf));
        fprintf(out, "],\"vf_device_id\":\"%04x\",\"drivers_autoprobe\":%s}", dev->vf_device_id,
                dev->drivers_autoprobe ? "true" : "false");
}

static void write_json(FILE *out, struct json_object *o)
{
        fputs(o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE)
                : "null",
              out);
}

static void write_allocation(struct iov_daemon *d, FILE *out, const struct iov_pci_device *dev)
{
        struct json_object *a = daemon_device_allocation(d, &dev->address);
        write_json(out, a);
        json_object_put(a);
}

/* Written straight to text, not built as json-c objects: a list of 16,384 functions is
 * served in tens of milliseconds instead of hundreds. */
void api_device_write(struct iov_daemon *d, const struct iov_pci_device *dev, FILE *out)
{
        char buf[IOV_PCI_ADDRESS_MAX];

        fprintf(out,
                "{\"address\":\"%s\",\"vendor_id\":\"%04x\",\"device_id\":\"%04x\","
                "\"subsystem_vendor_id\":\"%04x\",\"subsystem_device_id\":\"%04x\","
                "\"class\":\"%06x\",\"vendor_name\":",
                dev->name, dev->vendor_id, dev->device_id, dev->subsystem_vendor_id,
                dev->subsystem_device_id, dev->class_code & 0xffffff);
        write_string(out, dev->vendor_name);
        fputs(",\"device_name\":", out);
        write_string(out, dev->device_name);
        fputs(",\"driver\":", out);
        write_string(out, dev->driver);
        fputs(",\"driver_override\":", out);
        write_string(out, dev->driver_override);
        if (dev->iommu_group >= 0)
                fprintf(out, ",\"iommu_group\":%d", dev->iommu_group);
        else
                fputs(",\"iommu_group\":null", out);
        if (dev->numa_node >= 0)
                fprintf(out, ",\"numa_node\":%d", dev->numa_node);
        else
                fputs(",\"numa_node\":null", out);
        fputs(",\"sriov\":", out);
        if (dev->is_pf)
                write_sriov(out, dev);
        else
                fputs("null", out);
        if (dev->is_vf)
                fprintf(out, ",\"physfn\":\"%s\"", pci_address_format(&dev->physfn, buf));
        else
                fputs(",\"physfn\":null", out);
        fputs(",\"allocation\":", out);
        write_allocation(d, out, dev);
        fputc('}', out);
}

/* Close a memstream and parse what was written to it: NULL on OOM. */
static struct json_object *memstream_parse(FILE *out, char **text)
{
        int r = fclose(out);
        _cleanup_free_ char *t = TAKE_PTR(*text);
        return r == 0 && t ? json_tokener_parse(t) : NULL;
}

/* One serializer: the object form is the text form parsed back (single devices only). */
struct json_object *api_device_json(struct iov_daemon *d, const struct iov_pci_device *dev)
{
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        if (!out)
                return NULL;
        api_device_write(d, dev, out);
        return memstream_parse(out, &text);
}

/* PCI-to-PCI bridges (class 06 04, PCI r3.0 Appendix D) bound to pcieport do not stop a
 * group from going to VFIO; the kernel's own viability rule allows them. */
static bool member_blocks(const struct iov_pci_device *dev)
{
        if (!dev->driver || streq(dev->driver, "vfio-pci"))
                return false;
        return !((dev->class_code >> 8) == 0x0604 && streq(dev->driver, "pcieport"));
}

void api_group_write(struct iov_daemon *d, const struct iov_snapshot *s,
                     const struct iov_iommu_group *g, FILE *out)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        size_t n_blockers = 0;

        fprintf(out, "{\"id\":%u,\"devices\":[", g->id);
        for (size_t i = 0; i < g->n_devices; i++)
                fprintf(out, "%s\"%s\"", i ? "," : "", pci_address_format(&g->devices[i], buf));
        fputs("],\"blockers\":[", out);
        for (size_t i = 0; i < g->n_devices; i++) {
                const struct iov_pci_device *dev = pci_inventory_find(s->pci, &g->devices[i]);
                if (!dev || !member_blocks(dev))
                        continue;
                fprintf(out, "%s{\"address\":\"%s\",\"driver\":", n_blockers++ ? "," : "",
                        dev->name);
                write_string(out, dev->driver);
                fputc('}', out);
        }
        fprintf(out, "],\"viable\":%s,\"owner\":", n_blockers ? "false" : "true");
        struct json_object *owner = daemon_group_owner(d, g->id);
        write_json(out, owner);
        json_object_put(owner);
        fputc('}', out);
}

struct json_object *api_group_json(struct iov_daemon *d, const struct iov_snapshot *s,
                                   const struct iov_iommu_group *g)
{
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        if (!out)
                return NULL;
        api_group_write(d, s, g, out);
        return memstream_parse(out, &text);
}
