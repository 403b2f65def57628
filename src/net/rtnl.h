/* SPDX-License-Identifier: MIT */
/*
 * rtnl.h — the rtnetlink requests of sandbox networking, over libmnl (never `ip`).
 *
 * A struct rtnl is one NETLINK_ROUTE socket bound to one network namespace (the caller's, or a
 * sandbox's through netns.h). Every request asks for an ACK and waits for it, so a function
 * returns only once the kernel applied (or refused) the change. Not thread-safe: one user at a
 * time (the caller locks or owns it).
 *
 * Errors: -errno with a message naming the object (`create veth 'cove-1f': File exists`).
 */
#pragma once

#include "lib/err.h"
#include "net/addr.h"

#include <stdbool.h>
#include <stdint.h>

struct rtnl;

/* netns_fd < 0: the caller's namespace. */
int rtnl_open(int netns_fd, struct rtnl **ret, struct cove_err **err);
void rtnl_close(struct rtnl *nl);

/* ifindex of a link, -ENODEV when absent. */
int rtnl_link_index(struct rtnl *nl, const char *name);

/* The kernel's counters of a link (IFLA_STATS64), as that end sees them. */
struct rtnl_link_counters {
        uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
        uint64_t rx_errors, tx_errors, rx_dropped, tx_dropped;
};
/* Counters of link ifindex: 0, -ENODEV when absent, -ENODATA when the kernel sent none. */
int rtnl_link_counters(struct rtnl *nl, int ifindex, struct rtnl_link_counters *ret);

/* A veth pair: `name` here, `peer` created directly inside peer_netns_fd; mtu 0: default. */
int rtnl_veth_create(struct rtnl *nl, const char *name, const char *peer, int peer_netns_fd,
                     unsigned mtu, struct cove_err **err);
/* A bridge without ports (the anchor of the gateway address). */
int rtnl_bridge_create(struct rtnl *nl, const char *name, struct cove_err **err);
int rtnl_link_set_alias(struct rtnl *nl, int ifindex, const char *alias, struct cove_err **err);
int rtnl_link_set_up(struct rtnl *nl, int ifindex, struct cove_err **err);
/* Sets net.ipv4.conf.<link>.forwarding through IFLA_AF_SPEC (no /proc write). */
int rtnl_link_set_forwarding4(struct rtnl *nl, int ifindex, bool on, struct cove_err **err);
/* -ENODEV when already gone (not an error for callers that clean up). */
int rtnl_link_del(struct rtnl *nl, int ifindex, struct cove_err **err);

enum rtnl_addr_flags {
        RTNL_ADDR_NODAD = 1 << 0,
};
/* Adds a/prefix to a link; an address already present is not an error. */
int rtnl_addr_add(struct rtnl *nl, int ifindex, const struct net_addr *a, unsigned prefix,
                  unsigned flags, struct cove_err **err);

struct rtnl_route {
        struct net_cidr dst;
        const struct net_addr *gateway; /* NULL: on-link */
        const struct net_addr *prefsrc; /* NULL: none */
        int ifindex;
        bool scope_link; /* RT_SCOPE_LINK (a directly reachable host) */
};
/* Adds a route in the main table; one already present is not an error. */
int rtnl_route_add(struct rtnl *nl, const struct rtnl_route *r, struct cove_err **err);

struct rtnl_link_info {
        int ifindex;
        const char *name;
        const char *alias; /* NULL: none */
        const char *kind;  /* "veth", "bridge"…; NULL when not reported */
        unsigned mtu;
};
/* Calls cb for every link; cb returns < 0 to stop (that value is returned). */
int rtnl_link_dump(struct rtnl *nl, int (*cb)(const struct rtnl_link_info *l, void *ud), void *ud,
                   struct cove_err **err);

struct rtnl_route_info {
        struct net_cidr dst;
        int ifindex; /* 0 when none */
        bool has_gateway;
};
/* Routes of the main table of one family (unicast only). */
int rtnl_route_dump(struct rtnl *nl, int family,
                    int (*cb)(const struct rtnl_route_info *r, void *ud), void *ud,
                    struct cove_err **err);
