/* SPDX-License-Identifier: MIT */
/*
 * net.h — sandbox networking as coved uses it (docs/design/network.md): the host side set up
 * once (anchor address, forwarding, the nft table, the DNS forwarder), then per sandbox a veth
 * pair, addresses, routes, an nft chain with its policy, and the resolver's view of it.
 *
 * Everything happens in the caller's network namespace (coved's) and, for the sandbox side, in
 * the netns fd it passes (netns.h). A struct net is thread-safe: one mutex serialises the
 * changes (each a few netlink round trips and one nft transaction) and the DNS forwarder's
 * lookups.
 *
 * Kernel state outlives the process on purpose: after a crash, net_open() finds the links
 * (their alias names the sandbox), net_sandbox_adopt() takes them back, and
 * net_sweep_unadopted() removes what no sandbox claimed. net_purge() removes everything.
 */
#pragma once

#include "lib/err.h"
#include "net/addr.h"
#include "net/dns.h"
#include "net/policy.h"
#include "net/ruleset.h"

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#define NET_LEARNT_MAX     4096 /* learnt addresses per sandbox */
#define NET_LEARNT_TTL_MIN 5    /* seconds: a client that connects right after a TTL-0 answer */
#define NET_LEARNT_TTL_MAX 86400
#define NET_ALIAS_PREFIX   "cove:"

struct net_config {
        const char *pool;                     /* NULL: NET_POOL_DEFAULT */
        const char *uplinks[NET_UPLINKS_MAX]; /* none: the links of the default routes */
        size_t n_uplinks;
        const char *dns_upstreams[NET_DNS_UPSTREAMS_MAX]; /* none: /etc/resolv.conf's */
        size_t n_dns_upstreams;
        uint16_t api_port; /* coved's port: reachable at cove.internal whatever the policy */
        uint16_t dns_port; /* 0: 53 */
};

struct net;

int net_open(const struct net_config *cfg, struct net **ret, struct cove_err **err);
/* Stops the DNS forwarder and frees memory; kernel state stays (sandboxes keep their network). */
void net_close(struct net *n);
/* The gateway address every sandbox reaches Cove at (DNS, cove.internal). */
void net_gateway4(const struct net *n, struct net_addr *ret);

struct net_sandbox_info {
        char ifname[IF_NAMESIZE];     /* host end */
        struct net_addr addr4, addr6; /* addr6.family 0: no IPv6 */
        struct net_addr gateway4;     /* DNS and cove.internal */
};

/* Gives the sandbox whose network namespace is netns_fd its network, with policy p. */
int net_sandbox_attach(struct net *n, const char *id, int netns_fd, const struct net_policy *p,
                       struct net_sandbox_info *ret, struct cove_err **err);
/* Takes back a sandbox's network found by net_open() (after a restart) and re-applies p.
 * -ENOENT when its link is gone (its namespace died, or it never had one). */
int net_sandbox_adopt(struct net *n, const char *id, const struct net_policy *p,
                      struct net_sandbox_info *ret, struct cove_err **err);
/* Replaces the policy atomically and forgets the learnt addresses p no longer allows. Every
 * established connection meets p on its next packet: those p forbids are cut then (a TCP reset
 * to the sandbox), with no conntrack walk. A policy equal to the one in force changes nothing
 * (no transaction). 0 or -errno. */
int net_sandbox_set_policy(struct net *n, const char *id, const struct net_policy *p,
                           struct cove_err **err);
/* Traffic of a sandbox's interface as the sandbox sees it (rx: received by the sandbox), read
 * from the host end of its veth (whose rx is the sandbox's tx). -ENOENT for a sandbox without
 * a network here. */
struct net_counters {
        uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
        uint64_t rx_errors, tx_errors, rx_drops, tx_drops;
};
int net_sandbox_counters(struct net *n, const char *id, struct net_counters *ret);
/* Removes the sandbox's link, rules, learnt addresses and conntrack entries; idempotent. */
int net_sandbox_detach(struct net *n, const char *id, struct cove_err **err);
/* Removes the links found by net_open() that no net_sandbox_adopt() claimed; returns how many. */
int net_sweep_unadopted(struct net *n, struct cove_err **err);

/* Removes everything Cove's networking left in the caller's network namespace: every
 * `cove-*` link, the anchor, the nft table (turning forwarding off again on the uplinks it had
 * turned on) and the conntrack entries from `pool` (NULL: the default pool). Creates nothing:
 * on a host where Cove never ran it only looks. */
int net_purge(const char *pool, struct cove_err **err);

/* Counts what is left of Cove's networking (for tests and `coved purge` reports): links named
 * cove-* plus the anchor, whether the table exists, conntrack entries from the pool. */
struct net_leftovers {
        unsigned links;
        bool table;
        unsigned conntrack;
};
int net_leftovers(const char *pool, struct net_leftovers *ret, struct cove_err **err);
