/* SPDX-License-Identifier: MIT */
/*
 * ruleset.h — the nftables text of Cove's network (docs/design/network.md §3). Pure: it only
 * writes libnftables command text into a buf; nft.h runs it. Every function appends commands
 * that together form one transaction (atomic when run as one buffer) and are idempotent:
 * running the same text twice leaves the same kernel state.
 *
 * Everything lives in `table inet cove`. Per sandbox (keyed by its pool slot): chain s_<slot>,
 * elements in src4/src6 (anti-spoof), in the map `egress` (link name → jump s_<slot>) and in the
 * shared learn4/learn6 (learnt addresses with timeouts). Interface names and addresses come from
 * the pool and the configuration, never from API input; policy CIDRs are formatted from parsed
 * addresses. Returns 0 or -E2BIG/-ENOMEM from the buf.
 *
 * coved runs the host-wide text (net_ruleset_host*, net_ruleset_guard) through nft.h. The
 * per-sandbox text (net_ruleset_sandbox_add/policy) is the reference form of
 * what nftnl.h sends as netlink batches: tests load it with `nft -f` and compare the kernel's
 * objects (docs/design/network.md §2); coved itself never runs it (its cost grows with the
 * table, libnftables fetching a cache of it first).
 */
#pragma once

#include "lib/buf.h"
#include "net/addr.h"
#include "net/policy.h"

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#define NET_TABLE         "cove"
#define NET_IFNAME_PREFIX "cove-" /* host end of a sandbox's veth: cove-<slot in hex> */
#define NET_ANCHOR_IFNAME "cove0" /* holds the gateway address */
#define NET_UPLINKS_MAX   8

struct net_ruleset_host {
        const struct net_cidr *pool4;
        const struct net_cidr *pool6; /* NULL: no IPv6 */
        struct net_addr gateway4;
        uint16_t api_port; /* reachable on the gateway whatever the policy; 0: none */
        const char *uplinks[NET_UPLINKS_MAX];
        size_t n_uplinks;
};

struct net_ruleset_sandbox {
        uint32_t slot;
        uint32_t generation; /* ct mark of the flows its current policy approved; each policy
                              * installed gets a new one (net.c) */
        char ifname[IF_NAMESIZE];
        struct net_addr addr4;
        struct net_addr addr6; /* family 0: none */
};

/* Fills s->ifname from the slot. */
void net_ruleset_sandbox_init(struct net_ruleset_sandbox *s, uint32_t slot,
                              const struct net_addr *addr4, const struct net_addr *addr6);

/* Creates or refreshes the table and its base chains; keeps every sandbox's objects. */
int net_ruleset_host(const struct net_ruleset_host *h, struct buf *out);
/* Removes the whole table (idempotent). */
int net_ruleset_host_delete(struct buf *out);
/* Creates (or re-creates) a sandbox's objects and installs policy p. Its learnt addresses live
 * in the shared sets learn4/learn6 keyed by its ifname: whoever removes a sandbox removes its
 * elements too (nftnl.h), and net_sweep_unadopted() those of gone sandboxes. */
int net_ruleset_sandbox_add(const struct net_ruleset_sandbox *s, const struct net_policy *p,
                            struct buf *out);
/* Replaces the sandbox's chain with policy p. */
int net_ruleset_sandbox_policy(const struct net_ruleset_sandbox *s, const struct net_policy *p,
                               struct buf *out);
/* What coved changed on the host, recorded in the table (so a restarted coved and `purge` know
 * it): NET_GUARD_FORWARD4 — IPv4 forwarding turned on for an uplink (the host then forwards
 * nothing arriving there but sandbox traffic); NET_GUARD_FORWARD6 — IPv6 force_forwarding of a
 * link, or "all" for the global switch; NET_GUARD_ACCEPT_RA — accept_ra moved from 1 to 2.
 * Purge undoes each. */
enum net_guard {
        NET_GUARD_FORWARD4,
        NET_GUARD_FORWARD6,
        NET_GUARD_ACCEPT_RA,
};
int net_ruleset_guard(enum net_guard g, const char *ifname, struct buf *out);
/* Is `name` a valid interface name for the configuration (1–15 bytes, no space, quote,
 * backslash or slash)? */
bool net_ifname_valid(const char *name);
