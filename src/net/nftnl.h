/* SPDX-License-Identifier: MIT */
/*
 * nftnl.h — a sandbox's nftables objects as netlink messages (libnftnl), sent as one batch over
 * one NETLINK_NETFILTER socket (docs/design/network.md §3). The per-sandbox counterpart of
 * ruleset.h + nft.h, which keep the host-wide table (created once): no cache of the table is
 * fetched, so the cost of an operation does not depend on how many sandboxes exist.
 *
 * A struct net_nftnl_batch collects messages; net_nftnl_commit() sends them between
 * NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END: the kernel applies all of them or none. The
 * builders append exactly the objects (and expressions) libnftables makes of the text commands
 * docs/design/network.md §3 lists, and keep ruleset.h's promises: sandbox_add and policy are
 * idempotent, sandbox_delete removes every object whether or not it exists (add-then-delete).
 *
 * A struct net_nftnl owns the socket, bound to the network namespace current at
 * net_nftnl_open(); a mutex serialises commits (thread-safe). Batches are not shared between
 * threads. Builders return 0 or -ENOMEM/-E2BIG (a batch holds at most NET_NFTNL_BATCH_MAX
 * bytes); commit errors are a cove_err naming the failed operation ("nftables: add rule to
 * chain s_1f: No such file or directory") with the kernel's errno.
 */
#pragma once

#include "lib/err.h"
#include "net/addr.h"
#include "net/policy.h"
#include "net/ruleset.h"

#include <stdint.h>

#define NET_NFTNL_BATCH_MAX (8u * 1024 * 1024)

struct net_nftnl;
struct net_nftnl_batch;

int net_nftnl_open(struct net_nftnl **ret, struct cove_err **err);
void net_nftnl_close(struct net_nftnl *n);

struct net_nftnl_batch *net_nftnl_batch_new(void);
void net_nftnl_batch_free(struct net_nftnl_batch *b);

/* Sends the batch as one transaction; the batch may be freed or reused (it is emptied). An
 * empty batch sends nothing. */
int net_nftnl_commit(struct net_nftnl *n, struct net_nftnl_batch *b, struct cove_err **err);

/* The per-sandbox operations; net_nftnl_sandbox_add and _policy send what ruleset.h's text of
 * the same name describes. sandbox_delete removes every object of the sandbox, whether or not
 * they all exist. */
int net_nftnl_sandbox_add(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                          const struct net_policy *p);
int net_nftnl_sandbox_policy(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                             const struct net_policy *p);
int net_nftnl_sandbox_delete(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s);
/* Adds (or refreshes) learnt addresses of the sandbox, timeout in seconds (0 means 1). */
int net_nftnl_learn(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                    const struct net_addr *a, size_t n, uint32_t timeout_s);
/* Removes learnt addresses whether or not they are still there (add with 1 s, then delete). */
int net_nftnl_unlearn(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                      const struct net_addr *a, size_t n);
