/* SPDX-License-Identifier: MIT */
/*
 * pools: named selectors over the host's PCI functions ("every VF of 0000:01:00.0 on NUMA
 * node 0"). A pool holds no devices of its own: its capacity is what matches in the
 * current inventory, its free count what of that is not allocated or quarantined. Every
 * criterion given must match (AND); a selector with none is refused, so no pool ever
 * covers host bridges or the boot disk by accident.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "netdev/netdev.h"
#include "pci/pci.h"
#include "util/util.h"

#define IOV_POOL_NAME_MAX      63
#define IOV_POOL_DRIVER_MAX    63
#define IOV_POOL_ADDRESSES_MAX 4096

struct iov_pool_selector {
        int vendor_id;         /* -1: any */
        int device_id;         /* -1: any */
        uint32_t class_value;  /* compared on the top class_digits hex digits */
        unsigned class_digits; /* 0: any; 2 base class, 4 with subclass, 6 with prog-if */
        char *driver;          /* NULL: any; the driver before iovd took the device */
        bool has_physfn;
        struct iov_pci_address physfn;
        int numa_node;                     /* -1: any */
        struct iov_pci_address *addresses; /* NULL: any; else one of these */
        size_t n_addresses;
};

struct iov_pool {
        char name[IOV_POOL_NAME_MAX + 1];
        struct iov_pool_selector selector;
        struct iov_netdev_vf_change *net; /* network template for allocated VFs; NULL: none */
        uint64_t created_usec;            /* CLOCK_REALTIME */
};

/* A parse failure: the field at fault ("selector.vendor_id") and why. */
struct iov_pool_parse_error {
        const char *code; /* "invalid_value" or "unknown_field" */
        char field[64];
        char message[160];
};

/* Bounded, [a-z0-9_-], starting with a letter or digit. */
bool pool_name_is_valid(const char *name);

/* Strict parse of {"name": ..., "selector": {...}} (a request body or a state item;
 * "created_usec" is accepted only when allow_created). Unknown fields, wrong types and bad
 * values fail with -EINVAL and ret_error filled. */
int pool_from_json(struct json_object *obj, bool allow_created, struct iov_pool **ret,
                   struct iov_pool_parse_error *ret_error);

/* {"name", "selector", "created_usec"}: the durable form. */
struct json_object *pool_to_json(const struct iov_pool *pool);

/* The "net" template of a pool: vlan, qos, spoof_check, trust, link_state, min_tx_rate,
 * max_tx_rate (alloc/vf-net.c). Strict, like the rest of a pool. */
int pool_net_from_json(struct json_object *obj, struct iov_netdev_vf_change **ret,
                       struct iov_pool_parse_error *ret_error);
struct json_object *pool_net_to_json(const struct iov_netdev_vf_change *net);

void pool_free(struct iov_pool *pool);
DEFINE_CLEANUP_FUNC(struct iov_pool, pool_free)

/* Whether a device matches; driver is the one to compare (the original driver of an
 * allocated device, else its current one; NULL when none). */
bool pool_selector_match(const struct iov_pool_selector *selector,
                         const struct iov_pci_device *device, const char *driver);
