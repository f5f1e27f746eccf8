/* SPDX-License-Identifier: MIT */
/*
 * netdev: the network settings of SR-IOV virtual functions, kept by the PF's driver and
 * reached through rtnetlink on the PF's interface (include/uapi/linux/if_link.h,
 * Documentation/networking/representors.rst for the model): per VF its MAC, VLAN and
 * QoS, spoof checking, trust, link state and min/max tx rate.
 *
 * Three layers, each usable alone: where a VF's settings live (sysfs: the PF's net/
 * directory names its interface, its virtfnN links give the VF's index), the messages
 * (RTM_GETLINK / RTM_SETLINK built and parsed without I/O, so tests feed canned kernel
 * answers), and a connection that sends them. Every change is read back: what the
 * kernel reports afterwards is the truth, not what was asked.
 *
 * Never logs above debug; returns 0 or a negative errno.
 */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci/pci.h"

#define IOV_NETDEV_MAC_LEN 6

/* IFLA_VF_LINK_STATE values (if_link.h): auto follows the PF's uplink. */
enum iov_netdev_link_state {
        IOV_NETDEV_LINK_AUTO = 0,
        IOV_NETDEV_LINK_ENABLE = 1,
        IOV_NETDEV_LINK_DISABLE = 2,
};

/* One VF as the kernel reports it in IFLA_VFINFO_LIST. A setting the driver does not
 * report is absent (has_* false, or -1 for the tri-state ones). */
struct iov_netdev_vf {
        uint32_t index;
        bool has_mac;
        uint8_t mac[IOV_NETDEV_MAC_LEN];
        bool has_vlan;
        uint16_t vlan;   /* 0: untagged */
        uint8_t qos;     /* 802.1p priority, 0..7 */
        int spoof_check; /* 1, 0, or -1 when not reported */
        int trust;       /* 1, 0, or -1 */
        int link_state;  /* enum iov_netdev_link_state, or -1 */
        bool has_rate;
        uint32_t min_tx_rate; /* Mbit/s, 0: no limit */
        uint32_t max_tx_rate;
};

/* A PF's interface with its VFs (RTM_GETLINK with RTEXT_FILTER_VF). */
struct iov_netdev_link {
        char ifname[IFNAMSIZ];
        int ifindex;
        bool admin_up;     /* IFF_UP */
        bool lower_up;     /* IFF_LOWER_UP: carrier */
        uint8_t operstate; /* IF_OPER_* (RFC 2863) */
        bool has_address;
        uint8_t address[IOV_NETDEV_MAC_LEN]; /* IFLA_ADDRESS: the PF's own MAC */
        uint32_t num_vfs;                    /* IFLA_NUM_VF */
        struct iov_netdev_vf *vfs;
        size_t n_vfs;
};

void netdev_link_clear(struct iov_netdev_link *link);
/* The entry for VF index, or NULL. */
const struct iov_netdev_vf *netdev_link_find_vf(const struct iov_netdev_link *link, uint32_t index);
/* "up", "down", "lowerlayerdown", ... (RFC 2863 ifOperStatus); "unknown" otherwise. */
const char *netdev_operstate_name(uint8_t operstate);
const char *netdev_link_state_name(int link_state);
/* "auto", "enable", "disable" -> the value; -EINVAL otherwise. */
int netdev_link_state_parse(const char *s, int *ret);

/* "aa:bb:cc:dd:ee:ff" (either case, exactly this form) -> bytes; -EINVAL otherwise. */
int netdev_mac_parse(const char *s, uint8_t ret[IOV_NETDEV_MAC_LEN]);
/* Lowercase "aa:bb:cc:dd:ee:ff"; returns buf. */
char *netdev_mac_format(const uint8_t mac[IOV_NETDEV_MAC_LEN], char buf[static 18]);
/* A MAC a VF may be given: not multicast (IEEE 802 I/G bit) and not all zero. */
bool netdev_mac_assignable(const uint8_t mac[IOV_NETDEV_MAC_LEN]);
/* A locally administered unicast MAC derived from seed and attempt alone (FNV-1a): the
 * same inputs give the same MAC on every run, another attempt another MAC. */
void netdev_mac_derive(const void *seed, size_t size, uint32_t attempt,
                       uint8_t ret[IOV_NETDEV_MAC_LEN]);

/* The settings to change on one VF; only those with set_* true are sent. */
struct iov_netdev_vf_change {
        bool set_mac;
        uint8_t mac[IOV_NETDEV_MAC_LEN];
        bool set_vlan; /* vlan and qos travel together (struct ifla_vf_vlan) */
        uint16_t vlan;
        uint8_t qos;
        bool set_spoof_check;
        bool spoof_check;
        bool set_trust;
        bool trust;
        bool set_link_state;
        uint32_t link_state;
        bool set_rate; /* min and max travel together (struct ifla_vf_rate) */
        uint32_t min_tx_rate;
        uint32_t max_tx_rate;
};

/* -EINVAL for values the kernel's structures cannot carry: VLAN > 4094, QoS > 7, a link
 * state outside the enum, a multicast MAC. Checked before anything is sent, so a refused
 * change touches nothing. An all-zero MAC passes: it clears an administratively set one
 * (what a VF had before it was given one); the API refuses it from clients. */
int netdev_vf_change_check(const struct iov_netdev_vf_change *change);

/* ---- where a VF's settings live (sysfs) ------------------------------------------------ */

struct iov_netdev_vf_location {
        struct iov_pci_address pf;
        char ifname[IFNAMSIZ]; /* the PF's interface */
        uint32_t index;        /* N of the PF's virtfnN link to this VF */
};

/* From the VF's physfn link, the PF's net/ directory and its virtfnN links, all below
 * sysfs_root. -ENOENT: no such function; -EINVAL: not a VF; -ENOTSUP: its PF has no
 * network interface (not a network function); -EMLINK: more than one interface. */
int netdev_vf_locate(const char *sysfs_root, const struct iov_pci_address *vf,
                     struct iov_netdev_vf_location *ret);

/* ---- messages ------------------------------------------------------------------------ */

/* Build in buf (at least 512 bytes, aligned for struct nlmsghdr) and return the length:
 * RTM_GETLINK of ifname asking for the VF list without VF statistics. */
size_t netdev_message_getlink(void *buf, size_t size, const char *ifname, uint32_t seq);
/* RTM_SETLINK on ifindex carrying one IFLA_VF_INFO for vf with what change sets, asking
 * for an acknowledgement. */
size_t netdev_message_setvf(void *buf, size_t size, int ifindex, uint32_t vf,
                            const struct iov_netdev_vf_change *change, uint32_t seq);
/* Parse one RTM_NEWLINK message (len bytes). -EBADMSG when it is not one or is malformed. */
int netdev_message_parse_link(const void *msg, size_t len, struct iov_netdev_link *ret);

/* ---- the connection ------------------------------------------------------------------- */

struct iov_netdev;

/* A NETLINK_ROUTE socket in the caller's network namespace. */
int netdev_open(struct iov_netdev **ret);
/* Over an already connected datagram socket (tests: one end of a socketpair with a fake
 * kernel on the other); takes the fd over. */
int netdev_open_fd(int fd, struct iov_netdev **ret);
void netdev_close(struct iov_netdev *nd);
static inline void netdev_closep(struct iov_netdev **nd)
{
        netdev_close(*nd);
}

/* The interface and its VFs now. -ENODEV when there is no such interface. */
int netdev_link_read(struct iov_netdev *nd, const char *ifname, struct iov_netdev_link *ret);

/* Apply change to VF vf of ifname and read the link back into ret_after. When the kernel
 * refuses part of it, what it had already applied (read again) is put back as it was
 * read before, and the kernel's errno is returned (-EINVAL, -EOPNOTSUPP, ...): a refused change
 * changes nothing. -ENOENT when the interface has no such VF. */
int netdev_vf_set(struct iov_netdev *nd, const char *ifname, uint32_t vf,
                  const struct iov_netdev_vf_change *change, struct iov_netdev_link *ret_after);

/* The change that puts back what is in before, for the fields change touches that differ
 * in now (what the kernel reports after a partly applied change). */
void netdev_vf_change_undo(const struct iov_netdev_vf *before, const struct iov_netdev_vf *now,
                           const struct iov_netdev_vf_change *change,
                           struct iov_netdev_vf_change *ret);
