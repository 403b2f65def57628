/* SPDX-License-Identifier: MIT */
#include "net/net.h"
#include "lib/buf.h"
#include "lib/fdutil.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/rand.h"
#include "lib/timeutil.h"
#include "net/conntrack.h"
#include "net/dnsmsg.h"
#include "net/nft.h"
#include "net/nftnl.h"
#include "net/pool.h"
#include "net/rtnl.h"

#include <jansson.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <pthread.h>

#define NFT_BUF_MAX (4 * 1024 * 1024)
#define PEER_IFNAME "eth0"
#define ID_MAX      128

struct learnt {
        struct net_addr addr;
        int64_t expires_ms;
        char *name; /* the name whose answer taught it (re-checked on policy change) */
};

struct net_sbx {
        char id[ID_MAX];
        bool ready; /* attached (false while attach or detach works outside the lock) */
        struct net_ruleset_sandbox rs;
        int ifindex;
        struct net_policy policy;
        struct learnt *learnt;
        size_t n_learnt;
};

/* A link found at open (crash recovery), waiting for net_sandbox_adopt(). */
struct found {
        char id[ID_MAX];
        char ifname[IF_NAMESIZE];
        int ifindex;
        uint32_t slot;
        bool adopted;
};

/* Locks: `lock` guards the registry (slots, pool, policies, learnt addresses) and is what the
 * DNS forwarder takes; `nl_lock` guards the shared rtnetlink socket `nl`. Netlink work (a
 * veth's creation or deletion takes milliseconds) runs under nl_lock only, so DNS answers never
 * wait for it. An attach talks over a socket of its own and takes neither (attach_kernel()).
 * Order: lock before nl_lock, never the reverse. nft and nftnl have their own mutexes (nft.h,
 * nftnl.h): the host-wide table goes through libnftables text (once), every per-sandbox
 * object through libnftnl batches (no cache of the table, so no cost per other sandbox). */
struct net {
        pthread_mutex_t lock;
        pthread_mutex_t nl_lock;
        struct net_pool *pool;
        struct rtnl *nl;
        struct net_nft *nft;
        struct net_nftnl *nftnl;
        struct net_dns *dns;
        struct net_sbx **by_slot; /* pool slots */
        uint32_t hi;              /* 1 + the highest slot ever registered */
        struct net_ruleset_host host;
        char uplinks[NET_UPLINKS_MAX][IF_NAMESIZE];
        struct net_addr gateway;
        struct net_addr gateway6_ll; /* fe80::1 on every host end */
        unsigned mtu;
        bool ipv6, force_forwarding;
        struct found *found;
        size_t n_found;
        uint32_t generation; /* last ct mark handed out (ruleset.h) */
};

/* A ct mark no flow of this sandbox carries yet: a fresh one per policy installed. Starts at
 * a random value so that marks left in conntrack by a previous coved are not reused. */
static uint32_t next_generation(struct net *n)
{
        if (++n->generation == 0)
                n->generation = 1;
        return n->generation;
}

/* ---- small helpers ---- */

static int nft_run_buf(struct net *n, struct buf *b, struct cove_err **err)
{
        return net_nft_run(n->nft, buf_str(b), err);
}

/* A batch of per-sandbox operations (nftnl.h), freed at scope exit. */
static void batch_freep(struct net_nftnl_batch **b)
{
        net_nftnl_batch_free(*b);
}
#define cleanup_batch __attribute__((cleanup(batch_freep)))

/* The learnt addresses of s, for removal. */
static struct net_addr *learnt_addrs(const struct net_sbx *s)
{
        struct net_addr *a = xmalloc((s->n_learnt + 1) * sizeof(*a));

        for (size_t i = 0; i < s->n_learnt; i++)
                a[i] = s->learnt[i].addr;
        return a;
}

static bool proc_exists(const char *path)
{
        return access(path, F_OK) == 0;
}

static int sysctl_read_u32(const char *path, uint32_t *ret)
{
        cleanup_free char *s = NULL;
        size_t len;
        int r = read_small_file(path, 64, &s, &len);

        if (r < 0)
                return r;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
                s[--len] = '\0';
        return safe_atou32(s, ret);
}

static int sysctl_write(const char *path, const char *value, struct cove_err **err)
{
        int r = write_string_file(path, value);

        if (r < 0)
                return cove_err_set(err, -r, "write %s to '%s': %m", value, path);
        return 0;
}

/* Any registered sandbox, ready or not (callers that need a ready one check). */
static struct net_sbx *find_sbx(struct net *n, const char *id)
{
        for (uint32_t s = 0; s < n->hi; s++)
                if (n->by_slot[s] && streq(n->by_slot[s]->id, id))
                        return n->by_slot[s];
        return NULL;
}

static void register_sbx(struct net *n, struct net_sbx *s)
{
        n->by_slot[s->rs.slot] = s;
        n->hi = MAX(n->hi, s->rs.slot + 1);
}

static struct net_sbx *sbx_by_addr(struct net *n, const struct net_addr *a)
{
        uint32_t slot;
        struct net_sbx *s;

        if (net_pool_slot_of(n->pool, a, &slot) < 0)
                return NULL;
        s = n->by_slot[slot];
        if (!s || !s->ready ||
            !(net_addr_equal(&s->rs.addr4, a) || net_addr_equal(&s->rs.addr6, a)))
                return NULL;
        return s;
}

static void sbx_free(struct net_sbx *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_learnt; i++)
                free(s->learnt[i].name);
        free(s->learnt);
        net_policy_done(&s->policy);
        free(s);
}

/* ---- DNS forwarder hooks ---- */

static enum net_name_verdict dns_verdict(void *ud, const struct net_addr *client,
                                         const struct net_dns_query *q)
{
        struct net *n = ud;
        enum net_name_verdict v = NET_NAME_REFUSE;
        struct net_sbx *s;

        (void)pthread_mutex_lock(&n->lock);
        s = sbx_by_addr(n, client);
        if (s && q->odd) /* no pattern matches it: only the fallback speaks */
                v = s->policy.fallback == NET_VERDICT_ACCEPT ? NET_NAME_ANSWER : NET_NAME_REFUSE;
        else if (s)
                v = net_policy_name_verdict(&s->policy, q->name, q->name_len);
        (void)pthread_mutex_unlock(&n->lock);
        return v;
}

static void learnt_prune(struct net_sbx *s, int64_t now)
{
        size_t k = 0;

        for (size_t i = 0; i < s->n_learnt; i++) {
                if (s->learnt[i].expires_ms <= now) {
                        free(s->learnt[i].name);
                        continue;
                }
                s->learnt[k++] = s->learnt[i];
        }
        s->n_learnt = k;
}

static void dns_learn(void *ud, const struct net_addr *client, const struct net_dns_query *q,
                      const struct net_dns_learnt *a, size_t n_a)
{
        struct net *n = ud;
        cleanup_batch struct net_nftnl_batch *b = net_nftnl_batch_new();
        cleanup_err struct cove_err *err = NULL;
        struct net_sbx *s;
        int64_t now = time_mono_ms();

        (void)pthread_mutex_lock(&n->lock);
        s = sbx_by_addr(n, client);
        if (!s)
                goto out;
        learnt_prune(s, now);
        for (size_t i = 0; i < n_a; i++) {
                uint32_t ttl = MIN(MAX(a[i].ttl, (uint32_t)NET_LEARNT_TTL_MIN),
                                   (uint32_t)NET_LEARNT_TTL_MAX);
                struct learnt *l = NULL;

                if (a[i].addr.family == AF_INET6 && s->rs.addr6.family != AF_INET6)
                        continue;
                for (size_t j = 0; j < s->n_learnt && !l; j++)
                        if (net_addr_equal(&s->learnt[j].addr, &a[i].addr))
                                l = &s->learnt[j];
                if (!l) {
                        if (s->n_learnt >= NET_LEARNT_MAX)
                                continue; /* not learnt, so not reachable: the safe failure */
                        s->learnt = xrealloc(s->learnt, (s->n_learnt + 1) * sizeof(*s->learnt));
                        l = &s->learnt[s->n_learnt++];
                        *l = (struct learnt){ .addr = a[i].addr };
                } else
                        free(l->name);
                l->name = xstrndup(q->name, q->name_len);
                l->expires_ms = MAX(l->expires_ms, now + (int64_t)ttl * 1000);
                if (net_nftnl_learn(b, &s->rs, &a[i].addr, 1, ttl) < 0)
                        break;
        }
        if (net_nftnl_commit(n->nftnl, b, &err) < 0)
                log_debug("learn addresses for '%s': %s", s->id, err->msg);
out:
        (void)pthread_mutex_unlock(&n->lock);
}

/* ---- open ---- */

struct link_scan {
        struct net *n;
        const char *want_uplinks[NET_UPLINKS_MAX];
        struct {
                int ifindex;
                char name[IF_NAMESIZE];
                unsigned mtu;
        } links[256];
        size_t n_links;
};

/* The hex slot of a link name "cove-<hex>" (as net_ruleset_sandbox_init() writes it). */
static int parse_slot(const char *s, uint32_t *ret)
{
        uint32_t v = 0;

        if (!*s || strlen(s) > 8 || (s[0] == '0' && s[1]))
                return -EINVAL;
        for (; *s; s++) {
                unsigned d;
                if (*s >= '0' && *s <= '9')
                        d = (unsigned)(*s - '0');
                else if (*s >= 'a' && *s <= 'f')
                        d = (unsigned)(*s - 'a' + 10);
                else
                        return -EINVAL;
                v = v * 16 + d;
        }
        *ret = v;
        return 0;
}

static int scan_link(const struct rtnl_link_info *l, void *ud)
{
        struct link_scan *sc = ud;
        struct net *n = sc->n;

        if (sc->n_links < ARRAY_SIZE(sc->links)) {
                sc->links[sc->n_links].ifindex = l->ifindex;
                (void)snprintf(sc->links[sc->n_links].name, IF_NAMESIZE, "%s", l->name);
                sc->links[sc->n_links].mtu = l->mtu;
                sc->n_links++;
        }
        /* A sandbox's host end from before a restart: "cove-<slot>" with alias "cove:<id>". */
        if (strncmp(l->name, NET_IFNAME_PREFIX, STRLEN(NET_IFNAME_PREFIX)) == 0 && l->alias &&
            strncmp(l->alias, NET_ALIAS_PREFIX, STRLEN(NET_ALIAS_PREFIX)) == 0) {
                struct found f = { .ifindex = l->ifindex };
                if (parse_slot(l->name + STRLEN(NET_IFNAME_PREFIX), &f.slot) < 0 ||
                    f.slot >= net_pool_slots(n->pool) ||
                    strlen(l->alias) >= ID_MAX + STRLEN(NET_ALIAS_PREFIX))
                        return 0;
                (void)snprintf(f.id, sizeof(f.id), "%s", l->alias + STRLEN(NET_ALIAS_PREFIX));
                (void)snprintf(f.ifname, sizeof(f.ifname), "%s", l->name);
                n->found = xrealloc(n->found, (n->n_found + 1) * sizeof(*n->found));
                n->found[n->n_found++] = f;
        }
        return 0;
}

static const char *link_name(const struct link_scan *sc, int ifindex)
{
        for (size_t i = 0; i < sc->n_links; i++)
                if (sc->links[i].ifindex == ifindex)
                        return sc->links[i].name;
        return NULL;
}

struct route_scan {
        struct net *n;
        struct link_scan *links;
        int defaults[NET_UPLINKS_MAX];
        size_t n_defaults;
        char overlap[NET_CIDR_STR_MAX + IF_NAMESIZE + 8];
};

static int scan_route(const struct rtnl_route_info *r, void *ud)
{
        struct route_scan *rs = ud;
        const char *name = link_name(rs->links, r->ifindex);
        const struct net_cidr *p4 = net_pool_cidr4(rs->n->pool), *p6 = net_pool_cidr6(rs->n->pool);
        char s[NET_CIDR_STR_MAX];

        if (r->dst.prefix == 0) {
                bool seen = false;
                for (size_t i = 0; i < rs->n_defaults; i++)
                        seen |= rs->defaults[i] == r->ifindex;
                if (!seen && r->ifindex > 0 && rs->n_defaults < NET_UPLINKS_MAX)
                        rs->defaults[rs->n_defaults++] = r->ifindex;
                return 0;
        }
        if (name && (strncmp(name, NET_IFNAME_PREFIX, STRLEN(NET_IFNAME_PREFIX)) == 0 ||
                     streq(name, NET_ANCHOR_IFNAME)))
                return 0; /* ours */
        if ((r->dst.addr.family == AF_INET && net_cidr_overlaps(p4, &r->dst)) ||
            (p6 && r->dst.addr.family == AF_INET6 && net_cidr_overlaps(p6, &r->dst)))
                (void)snprintf(rs->overlap, sizeof(rs->overlap), "%s dev %s",
                               net_cidr_format(&r->dst, s), name ? name : "?");
        return 0;
}

static int setup_uplinks(struct net *n, const struct net_config *cfg, struct link_scan *sc,
                         struct cove_err **err)
{
        struct route_scan rs = { .n = n, .links = sc };
        int r;

        r = rtnl_route_dump(n->nl, AF_INET, scan_route, &rs, err);
        if (r >= 0 && net_pool_cidr6(n->pool))
                r = rtnl_route_dump(n->nl, AF_INET6, scan_route, &rs, err);
        if (r < 0)
                return r;
        if (rs.overlap[0])
                return cove_err_set(err, EADDRINUSE,
                                    "network pool overlaps route %s of this host: choose another "
                                    "--network-pool",
                                    rs.overlap);
        if (cfg->n_uplinks) {
                for (size_t i = 0; i < cfg->n_uplinks; i++) {
                        if (!net_ifname_valid(cfg->uplinks[i]))
                                return cove_err_set(err, EINVAL,
                                                    "uplink '%s' is not an interface name",
                                                    cfg->uplinks[i]);
                        if (rtnl_link_index(n->nl, cfg->uplinks[i]) < 0)
                                return cove_err_set(err, ENODEV, "uplink '%s' does not exist",
                                                    cfg->uplinks[i]);
                        (void)snprintf(n->uplinks[i], IF_NAMESIZE, "%s", cfg->uplinks[i]);
                }
                n->host.n_uplinks = cfg->n_uplinks;
        } else {
                for (size_t i = 0; i < rs.n_defaults; i++) {
                        const char *name = link_name(sc, rs.defaults[i]);
                        if (name && n->host.n_uplinks < NET_UPLINKS_MAX)
                                (void)snprintf(n->uplinks[n->host.n_uplinks++], IF_NAMESIZE, "%s",
                                               name);
                }
                if (n->host.n_uplinks == 0)
                        return cove_err_set(err, ENETUNREACH,
                                            "this host has no default route: give --uplink, or "
                                            "--network none");
        }
        for (size_t i = 0; i < n->host.n_uplinks; i++) {
                n->host.uplinks[i] = n->uplinks[i];
                for (size_t j = 0; j < sc->n_links; j++)
                        if (streq(sc->links[j].name, n->uplinks[i]) && sc->links[j].mtu &&
                            (!n->mtu || sc->links[j].mtu < n->mtu))
                                n->mtu = sc->links[j].mtu;
        }
        return 0;
}

/* Sets a 0/1 sysctl to 1 when it is 0, and records that in the table's guard sets. */
static int turn_on(const char *path, const char *value, const char *name, enum net_guard g,
                   struct buf *b, struct cove_err **err)
{
        uint32_t v = 0;
        int r = sysctl_read_u32(path, &v);

        if (r < 0)
                return cove_err_set(err, -r, "read '%s': %m", path);
        if (v != 0)
                return 0;
        r = sysctl_write(path, value, err);
        if (r >= 0 && net_ruleset_guard(g, name, b) < 0)
                r = cove_err_set(err, E2BIG, "nft text too long");
        return r;
}

/* IPv4: forwarding per link (uplinks here, sandbox ends at attach); uplinks whose forwarding
 * we turn on go into the `guard` set. IPv6: per-link force_forwarding where the kernel has it
 * (6.17+), else the global switch, after making sure the uplinks keep accepting router
 * advertisements. */
static int setup_forwarding(struct net *n, struct buf *b, struct cove_err **err)
{
        char path[128];
        uint32_t v;
        int r;

        for (size_t i = 0; i < n->host.n_uplinks; i++) {
                (void)snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding",
                               n->uplinks[i]);
                r = turn_on(path, "1", n->uplinks[i], NET_GUARD_FORWARD4, b, err);
                if (r < 0)
                        return r;
        }
        if (!n->ipv6)
                return 0;
        n->force_forwarding = proc_exists("/proc/sys/net/ipv6/conf/all/force_forwarding");
        for (size_t i = 0; i < n->host.n_uplinks; i++) {
                if (n->force_forwarding) {
                        (void)snprintf(path, sizeof(path),
                                       "/proc/sys/net/ipv6/conf/%s/force_forwarding",
                                       n->uplinks[i]);
                        r = turn_on(path, "1", n->uplinks[i], NET_GUARD_FORWARD6, b, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                (void)snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/accept_ra",
                               n->uplinks[i]);
                if (sysctl_read_u32(path, &v) == 0 && v == 1) {
                        r = sysctl_write(path, "2", err);
                        if (r >= 0)
                                r = net_ruleset_guard(NET_GUARD_ACCEPT_RA, n->uplinks[i], b);
                        if (r < 0)
                                return r;
                }
        }
        if (!n->force_forwarding)
                return turn_on("/proc/sys/net/ipv6/conf/all/forwarding", "1", "all",
                               NET_GUARD_FORWARD6, b, err);
        return 0;
}

static int setup_anchor(struct net *n, struct cove_err **err)
{
        int r, idx = rtnl_link_index(n->nl, NET_ANCHOR_IFNAME);

        if (idx == -ENODEV) {
                r = rtnl_bridge_create(n->nl, NET_ANCHOR_IFNAME, err);
                if (r < 0 && r != -EEXIST)
                        return r;
                idx = rtnl_link_index(n->nl, NET_ANCHOR_IFNAME);
        }
        if (idx < 0)
                return cove_err_set(err, -idx, "find link '%s': %m", NET_ANCHOR_IFNAME);
        r = rtnl_addr_add(n->nl, idx, &n->gateway, 32, 0, err);
        if (r >= 0)
                r = rtnl_link_set_up(n->nl, idx, err);
        return r;
}

static int start_dns(struct net *n, const struct net_config *cfg, struct cove_err **err)
{
        struct net_dns_config dc = { .listen = n->gateway,
                                     .port = cfg->dns_port ? cfg->dns_port : 53,
                                     .internal = n->gateway };
        static const struct net_dns_ops ops = { .verdict = dns_verdict, .learn = dns_learn };

        for (size_t i = 0; i < cfg->n_dns_upstreams && i < NET_DNS_UPSTREAMS_MAX; i++) {
                if (net_dns_parse_upstream(cfg->dns_upstreams[i], &dc.upstreams[i],
                                           &dc.upstream_lens[i]) < 0)
                        return cove_err_set(err, EINVAL,
                                            "DNS upstream '%s' is not an address[:port]",
                                            cfg->dns_upstreams[i]);
                dc.n_upstreams++;
        }
        if (dc.n_upstreams == 0) {
                cleanup_free char *text = NULL;
                size_t len;
                if (read_small_file("/etc/resolv.conf", 64 * 1024, &text, &len) == 0)
                        dc.n_upstreams = net_dns_upstreams_from_resolv_conf(
                                text, dc.upstreams, dc.upstream_lens, NET_DNS_UPSTREAMS_MAX);
        }
        /* Without upstreams sandboxes still resolve cove.internal; everything else SERVFAILs. */
        return net_dns_start(&dc, &ops, n, &n->dns, err);
}

int net_open(const struct net_config *cfg, struct net **ret, struct cove_err **err)
{
        struct net *n = xzalloc(sizeof(*n));
        cleanup_free struct link_scan *sc = xzalloc(sizeof(*sc));
        cleanup_buf struct buf b;
        int r;

        buf_init(&b, NFT_BUF_MAX);
        (void)pthread_mutex_init(&n->lock, NULL);
        (void)pthread_mutex_init(&n->nl_lock, NULL);
        r = net_pool_new(cfg->pool ? cfg->pool : NET_POOL_DEFAULT, &n->pool);
        if (r < 0) {
                r = cove_err_set(err, EINVAL,
                                 "network pool '%s' is not an IPv4 CIDR (at most /29) optionally "
                                 "followed by ',' and an IPv6 CIDR (at most /112)",
                                 cfg->pool ? cfg->pool : NET_POOL_DEFAULT);
                goto fail;
        }
        if (net_pool_cidr6(n->pool) && !proc_exists("/proc/sys/net/ipv6")) {
                /* IPv6 disabled on this host: the pool's IPv4 part alone. */
                char v4[NET_CIDR_STR_MAX];
                net_cidr_format(net_pool_cidr4(n->pool), v4);
                net_pool_free(n->pool);
                n->pool = NULL;
                if (net_pool_new(v4, &n->pool) < 0) {
                        r = cove_err_set(err, EINVAL, "network pool '%s'", v4);
                        goto fail;
                }
        }
        n->by_slot = xmalloc_array(net_pool_slots(n->pool), sizeof(*n->by_slot));
        if (!n->by_slot) {
                r = cove_err_set(err, ENOMEM, "network slots: %m");
                goto fail;
        }
        memset(n->by_slot, 0, net_pool_slots(n->pool) * sizeof(*n->by_slot));
        net_pool_gateway4(n->pool, &n->gateway);
        n->ipv6 = net_pool_cidr6(n->pool) != NULL;
        if (random_bytes(&n->generation, sizeof(n->generation)) < 0)
                n->generation = (uint32_t)time_now_ms();
        (void)net_addr_parse("fe80::1", NET_FAMILY_V6, &n->gateway6_ll);
        r = rtnl_open(-1, &n->nl, err);
        if (r < 0)
                goto fail;
        r = net_nft_new(&n->nft, err);
        if (r >= 0)
                r = net_nftnl_open(&n->nftnl, err);
        if (r < 0)
                goto fail;
        sc->n = n;
        r = rtnl_link_dump(n->nl, scan_link, sc, err);
        if (r < 0)
                goto fail;
        r = setup_uplinks(n, cfg, sc, err);
        if (r < 0)
                goto fail;
        n->host.pool4 = net_pool_cidr4(n->pool);
        n->host.pool6 = net_pool_cidr6(n->pool);
        n->host.gateway4 = n->gateway;
        n->host.api_port = cfg->api_port;
        r = net_ruleset_host(&n->host, &b);
        if (r >= 0)
                r = setup_forwarding(n, &b, err);
        else
                r = cove_err_set(err, -r, "nft text: %m");
        if (r < 0)
                goto fail;
        r = nft_run_buf(n, &b, err);
        if (r < 0) {
                r = cove_err_wrap(err, "install the nftables table '%s'", NET_TABLE);
                goto fail;
        }
        r = setup_anchor(n, err);
        if (r < 0)
                goto fail;
        r = start_dns(n, cfg, err);
        if (r < 0)
                goto fail;
        *ret = n;
        return 0;
fail:
        net_close(n);
        return r;
}

void net_close(struct net *n)
{
        if (!n)
                return;
        net_dns_stop(n->dns);
        if (n->by_slot)
                for (uint32_t s = 0; s < net_pool_slots(n->pool); s++)
                        sbx_free(n->by_slot[s]);
        free(n->by_slot);
        free(n->found);
        net_nft_free(n->nft);
        net_nftnl_close(n->nftnl);
        rtnl_close(n->nl);
        net_pool_free(n->pool);
        (void)pthread_mutex_destroy(&n->nl_lock);
        (void)pthread_mutex_destroy(&n->lock);
        free(n);
}

void net_gateway4(const struct net *n, struct net_addr *ret)
{
        *ret = n->gateway;
}

/* ---- per sandbox ---- */

static void fill_info(const struct net *n, const struct net_sbx *s, struct net_sandbox_info *ret)
{
        if (!ret)
                return;
        *ret = (struct net_sandbox_info){ .addr4 = s->rs.addr4,
                                          .addr6 = s->rs.addr6,
                                          .gateway4 = n->gateway };
        (void)snprintf(ret->ifname, sizeof(ret->ifname), "%s", s->rs.ifname);
}

/* The sandbox's side, through a rtnetlink socket opened inside its namespace. */
static int setup_peer(struct net *n, const struct net_sbx *s, int netns_fd, struct cove_err **err)
{
        struct rtnl *nl = NULL;
        struct net_cidr gw = { .addr = n->gateway, .prefix = 32 };
        struct net_cidr any4 = { .addr = { .family = AF_INET } };
        struct net_cidr any6 = { .addr = { .family = AF_INET6 } };
        int r, lo, eth;

        r = rtnl_open(netns_fd, &nl, err);
        if (r < 0)
                return r;
        lo = rtnl_link_index(nl, "lo");
        eth = rtnl_link_index(nl, PEER_IFNAME);
        if (lo < 0 || eth < 0) {
                r = cove_err_set(err, ENODEV, "links of the sandbox's namespace not found");
                goto out;
        }
        r = rtnl_link_set_up(nl, lo, err);
        if (r >= 0)
                r = rtnl_addr_add(nl, eth, &s->rs.addr4, 32, 0, err);
        if (r >= 0 && s->rs.addr6.family == AF_INET6)
                r = rtnl_addr_add(nl, eth, &s->rs.addr6, 128, RTNL_ADDR_NODAD, err);
        if (r >= 0)
                r = rtnl_link_set_up(nl, eth, err);
        if (r >= 0)
                r = rtnl_route_add(
                        nl, &(struct rtnl_route){ .dst = gw, .ifindex = eth, .scope_link = true },
                        err);
        if (r >= 0)
                r = rtnl_route_add(
                        nl,
                        &(struct rtnl_route){ .dst = any4, .gateway = &n->gateway, .ifindex = eth },
                        err);
        if (r >= 0 && s->rs.addr6.family == AF_INET6)
                r = rtnl_route_add(nl,
                                   &(struct rtnl_route){ .dst = any6,
                                                         .gateway = &n->gateway6_ll,
                                                         .ifindex = eth },
                                   err);
out:
        rtnl_close(nl);
        return r;
}

static int setup_host_end(struct net *n, struct rtnl *nl, const struct net_sbx *s,
                          struct cove_err **err)
{
        cleanup_free char *alias = xasprintf(NET_ALIAS_PREFIX "%s", s->id);
        struct net_cidr d4 = { .addr = s->rs.addr4, .prefix = 32 };
        int r;

        r = rtnl_link_set_alias(nl, s->ifindex, alias, err);
        if (r >= 0)
                r = rtnl_link_set_forwarding4(nl, s->ifindex, true, err);
        if (r >= 0 && s->rs.addr6.family == AF_INET6) {
                r = rtnl_addr_add(nl, s->ifindex, &n->gateway6_ll, 64, RTNL_ADDR_NODAD, err);
                if (r >= 0 && n->force_forwarding) {
                        char path[96];
                        (void)snprintf(path, sizeof(path),
                                       "/proc/sys/net/ipv6/conf/%s/force_forwarding", s->rs.ifname);
                        r = sysctl_write(path, "1", err);
                }
        }
        if (r >= 0)
                r = rtnl_link_set_up(nl, s->ifindex, err);
        if (r >= 0)
                r = rtnl_route_add(nl,
                                   &(struct rtnl_route){ .dst = d4,
                                                         .prefsrc = &n->gateway,
                                                         .ifindex = s->ifindex,
                                                         .scope_link = true },
                                   err);
        if (r >= 0 && s->rs.addr6.family == AF_INET6) {
                struct net_cidr d6 = { .addr = s->rs.addr6, .prefix = 128 };
                r = rtnl_route_add(nl, &(struct rtnl_route){ .dst = d6, .ifindex = s->ifindex },
                                   err);
        }
        return r;
}

static void cidrs_of(const struct net_sbx *s, struct net_cidr out[2], size_t *ret_n)
{
        size_t k = 0;

        out[k++] = (struct net_cidr){ .addr = s->rs.addr4, .prefix = 32 };
        if (s->rs.addr6.family == AF_INET6)
                out[k++] = (struct net_cidr){ .addr = s->rs.addr6, .prefix = 128 };
        *ret_n = k;
}

/* Removes kernel state of s (link, rules, conntrack); errors are reported but every step runs. */
static int teardown(struct net *n, struct net_sbx *s, struct cove_err **err)
{
        cleanup_batch struct net_nftnl_batch *b = net_nftnl_batch_new();
        cleanup_free struct net_addr *learnt = learnt_addrs(s);
        struct net_cidr srcs[2];
        size_t n_srcs;
        int r = 0, q;

        if (s->ifindex > 0) {
                (void)pthread_mutex_lock(&n->nl_lock);
                q = rtnl_link_del(n->nl, s->ifindex, err);
                (void)pthread_mutex_unlock(&n->nl_lock);
                if (q < 0 && q != -ENODEV)
                        r = q;
        }
        /* its objects and its learnt addresses (shared sets), whether or not they all exist */
        q = net_nftnl_sandbox_delete(b, &s->rs);
        if (q >= 0)
                q = net_nftnl_unlearn(b, &s->rs, learnt, s->n_learnt);
        if (q < 0)
                q = cove_err_set(err, -q, "nftables batch: %m");
        else
                q = net_nftnl_commit(n->nftnl, b, err);
        if (q < 0 && r == 0)
                r = q;
        cidrs_of(s, srcs, &n_srcs);
        q = net_ct_cut(srcs, n_srcs, NULL, NULL, err);
        if (q < 0 && r == 0)
                r = q;
        return r;
}

/* The kernel side of a new sandbox network (veth, addresses, routes, rules). Over a netlink
 * socket of its own, without nl_lock: parallel creates (each on its own slot and link names)
 * then wait only for the kernel's rtnl lock, held per message, and never for another create's
 * thread that was preempted halfway through its messages (a queue of tens of milliseconds at
 * 50 concurrent creates on a loaded machine, docs/decisions.md). */
static int attach_kernel(struct net *n, struct net_sbx *s, int netns_fd, struct cove_err **err)
{
        cleanup_batch struct net_nftnl_batch *b = net_nftnl_batch_new();
        struct rtnl *nl = NULL;
        int r;

        r = rtnl_open(-1, &nl, err);
        if (r < 0)
                return r;
        r = rtnl_veth_create(nl, s->rs.ifname, PEER_IFNAME, netns_fd, n->mtu, err);
        if (r == -EEXIST) { /* a leftover of an interrupted teardown: it is ours to remove */
                int old = rtnl_link_index(nl, s->rs.ifname);
                cove_err_free(err);
                if (old > 0)
                        (void)rtnl_link_del(nl, old, NULL);
                r = rtnl_veth_create(nl, s->rs.ifname, PEER_IFNAME, netns_fd, n->mtu, err);
        }
        if (r >= 0) {
                s->ifindex = rtnl_link_index(nl, s->rs.ifname);
                if (s->ifindex < 0)
                        r = cove_err_set(err, -s->ifindex, "find link '%s': %m", s->rs.ifname);
        }
        if (r >= 0)
                r = setup_host_end(n, nl, s, err);
        rtnl_close(nl);
        if (r >= 0) /* its own socket, in the sandbox's namespace */
                r = setup_peer(n, s, netns_fd, err);
        if (r >= 0 && net_nftnl_sandbox_add(b, &s->rs, &s->policy) < 0)
                r = cove_err_set(err, E2BIG, "nftables batch: %m");
        if (r >= 0)
                r = net_nftnl_commit(n->nftnl, b, err);
        return r;
}

int net_sandbox_attach(struct net *n, const char *id, int netns_fd, const struct net_policy *p,
                       struct net_sandbox_info *ret, struct cove_err **err)
{
        struct net_sbx *s = NULL;
        struct net_addr a4, a6;
        uint32_t slot;
        int r;

        if (strlen(id) >= ID_MAX)
                return cove_err_set(err, EINVAL, "sandbox id '%s' is too long", id);
        s = xzalloc(sizeof(*s));
        (void)snprintf(s->id, sizeof(s->id), "%s", id);
        if (net_policy_copy(p, &s->policy) < 0) {
                sbx_free(s);
                return cove_err_set(err, ENOMEM, "copy policy: %m");
        }
        (void)pthread_mutex_lock(&n->lock);
        if (find_sbx(n, id)) {
                (void)pthread_mutex_unlock(&n->lock);
                sbx_free(s);
                return cove_err_set(err, EEXIST, "sandbox '%s' already has a network", id);
        }
        if (net_pool_alloc(n->pool, &slot) < 0) {
                r = cove_err_set(err, ENOSPC, "network pool exhausted (%u addresses in use)",
                                 net_pool_used(n->pool));
                (void)pthread_mutex_unlock(&n->lock);
                sbx_free(s);
                return r;
        }
        net_pool_slot_addrs(n->pool, slot, &a4, &a6);
        net_ruleset_sandbox_init(&s->rs, slot, &a4, a6.family ? &a6 : NULL);
        s->rs.generation = next_generation(n);
        register_sbx(n, s); /* not ready: the slot and the id are taken, DNS ignores it */
        (void)pthread_mutex_unlock(&n->lock);

        r = attach_kernel(n, s, netns_fd, err);
        if (r < 0) {
                (void)cove_err_wrap(err, "network of sandbox '%s'", id);
                (void)teardown(n, s, NULL);
        }
        (void)pthread_mutex_lock(&n->lock);
        if (r < 0) {
                n->by_slot[slot] = NULL;
                net_pool_release(n->pool, slot);
        } else {
                s->ready = true;
                fill_info(n, s, ret);
        }
        (void)pthread_mutex_unlock(&n->lock);
        if (r < 0)
                sbx_free(s);
        return r < 0 ? r : 0;
}

int net_sandbox_adopt(struct net *n, const char *id, const struct net_policy *p,
                      struct net_sandbox_info *ret, struct cove_err **err)
{
        struct found *f = NULL;
        struct net_sbx *s;
        cleanup_batch struct net_nftnl_batch *b = net_nftnl_batch_new();
        struct net_addr a4, a6;
        int r;

        (void)pthread_mutex_lock(&n->lock);
        if (find_sbx(n, id)) {
                r = 0;
                goto unlock;
        }
        for (size_t i = 0; i < n->n_found && !f; i++)
                if (!n->found[i].adopted && streq(n->found[i].id, id))
                        f = &n->found[i];
        /* The link must still be the one found (its namespace alive). */
        if (f) {
                (void)pthread_mutex_lock(&n->nl_lock);
                if (rtnl_link_index(n->nl, f->ifname) != f->ifindex)
                        f = NULL;
                (void)pthread_mutex_unlock(&n->nl_lock);
        }
        if (!f) {
                r = -ENOENT;
                goto unlock;
        }
        if (net_pool_reserve(n->pool, f->slot) < 0) {
                r = cove_err_set(err, EBUSY, "network slot of sandbox '%s' is taken", id);
                goto unlock;
        }
        s = xzalloc(sizeof(*s));
        (void)snprintf(s->id, sizeof(s->id), "%s", id);
        net_pool_slot_addrs(n->pool, f->slot, &a4, &a6);
        net_ruleset_sandbox_init(&s->rs, f->slot, &a4, a6.family ? &a6 : NULL);
        s->ifindex = f->ifindex;
        s->rs.generation = next_generation(n);
        r = net_policy_copy(p, &s->policy);
        if (r >= 0)
                r = net_nftnl_sandbox_add(b, &s->rs, &s->policy);
        if (r >= 0)
                r = net_nftnl_commit(n->nftnl, b, err);
        else
                r = cove_err_set(err, -r, "policy: %m");
        if (r < 0) {
                net_pool_release(n->pool, f->slot);
                sbx_free(s);
                r = cove_err_wrap(err, "restore network of sandbox '%s'", id);
                goto unlock;
        }
        f->adopted = true;
        s->ready = true;
        register_sbx(n, s);
        fill_info(n, s, ret);
unlock:
        (void)pthread_mutex_unlock(&n->lock);
        return r;
}

int net_sandbox_set_policy(struct net *n, const char *id, const struct net_policy *p,
                           struct cove_err **err)
{
        cleanup_batch struct net_nftnl_batch *b = net_nftnl_batch_new();
        cleanup_free struct net_addr *gone = NULL;
        struct net_policy copy;
        struct net_sbx *s;
        size_t k = 0, n_gone = 0;
        int64_t now = time_mono_ms();
        int r;

        if (net_policy_copy(p, &copy) < 0)
                return cove_err_set(err, ENOMEM, "copy policy: %m");
        (void)pthread_mutex_lock(&n->lock);
        s = find_sbx(n, id);
        if (!s || !s->ready) {
                net_policy_done(&copy);
                r = cove_err_set(err, ENOENT, "sandbox '%s' has no network", id);
                goto unlock;
        }
        /* The policy in force already (a resume re-applies the stored one): nothing to change,
         * nothing to cut, no transaction (whose cost grows with the number of sandboxes). */
        if (net_policy_equal(&copy, &s->policy)) {
                net_policy_done(&copy);
                r = 0;
                goto unlock;
        }
        /* One transaction: the new chain (with a new generation, so every established flow
         * meets it on its next packet: that is the cut), and the learnt addresses it no longer
         * allows gone. */
        s->rs.generation = next_generation(n);
        r = net_nftnl_sandbox_policy(b, &s->rs, &copy);
        learnt_prune(s, now);
        gone = xmalloc((s->n_learnt + 1) * sizeof(*gone));
        for (size_t i = 0; i < s->n_learnt; i++) {
                struct learnt *l = &s->learnt[i];
                if (net_policy_name_verdict(&copy, l->name, strlen(l->name)) ==
                    NET_NAME_ANSWER_LEARN) {
                        s->learnt[k++] = *l;
                        continue;
                }
                gone[n_gone++] = l->addr;
                free(l->name);
        }
        s->n_learnt = k;
        if (r >= 0)
                r = net_nftnl_unlearn(b, &s->rs, gone, n_gone);
        if (r < 0) {
                net_policy_done(&copy);
                r = cove_err_set(err, -r, "nftables batch: %m");
                goto unlock;
        }
        r = net_nftnl_commit(n->nftnl, b, err);
        if (r < 0) {
                net_policy_done(&copy);
                r = cove_err_wrap(err, "apply network policy of sandbox '%s'", id);
                goto unlock;
        }
        net_policy_done(&s->policy);
        s->policy = copy;
unlock:
        (void)pthread_mutex_unlock(&n->lock);
        return r;
}

int net_sandbox_counters(struct net *n, const char *id, struct net_counters *ret)
{
        struct rtnl_link_counters c;
        int ifindex = 0;

        (void)pthread_mutex_lock(&n->lock);
        struct net_sbx *s = find_sbx(n, id);
        if (s && s->ready)
                ifindex = s->ifindex;
        (void)pthread_mutex_unlock(&n->lock);
        if (ifindex <= 0)
                return -ENOENT;
        (void)pthread_mutex_lock(&n->nl_lock);
        int r = rtnl_link_counters(n->nl, ifindex, &c);
        (void)pthread_mutex_unlock(&n->nl_lock);
        if (r < 0)
                return r == -ENODEV ? -ENOENT : r;
        /* the host end's receive is what the sandbox sent, and the reverse */
        *ret = (struct net_counters){
                .rx_bytes = c.tx_bytes,
                .tx_bytes = c.rx_bytes,
                .rx_packets = c.tx_packets,
                .tx_packets = c.rx_packets,
                .rx_errors = c.tx_errors,
                .tx_errors = c.rx_errors,
                .rx_drops = c.tx_dropped,
                .tx_drops = c.rx_dropped,
        };
        return 0;
}

int net_sandbox_detach(struct net *n, const char *id, struct cove_err **err)
{
        struct net_sbx *s;
        int r;

        (void)pthread_mutex_lock(&n->lock);
        s = find_sbx(n, id);
        if (!s || !s->ready) { /* unknown, or another call is on it */
                (void)pthread_mutex_unlock(&n->lock);
                return 0;
        }
        s->ready = false; /* DNS and policy changes ignore it from now on; the slot stays taken */
        (void)pthread_mutex_unlock(&n->lock);

        r = teardown(n, s, err);

        (void)pthread_mutex_lock(&n->lock);
        n->by_slot[s->rs.slot] = NULL;
        net_pool_release(n->pool, s->rs.slot);
        (void)pthread_mutex_unlock(&n->lock);
        sbx_free(s);
        return r < 0 ? cove_err_wrap(err, "remove network of sandbox '%s'", id) : 0;
}

/* Learnt addresses of links that are no sandbox's now (a coved that died before their
 * teardown): deleted from the shared learn4/learn6 sets, so that a new sandbox in the same slot
 * never inherits them. n->lock held. */
static int sweep_learnt_locked(struct net *n, struct cove_err **err)
{
        static const char *const sets[] = { "learn4", "learn6" };
        cleanup_buf struct buf b;
        int r = 0;

        buf_init(&b, NFT_BUF_MAX);
        for (size_t k = 0; k < ARRAY_SIZE(sets); k++) {
                cleanup_free char *cmd = xasprintf("list set inet " NET_TABLE " %s", sets[k]);
                cleanup_free char *text = NULL;
                if (net_nft_list_json(n->nft, cmd, &text, NULL) < 0)
                        continue; /* no such set (an older table): nothing learnt there */
                json_auto_t *j = json_loads(text, 0, NULL);
                size_t i, e;
                json_t *o, *el;
                json_array_foreach (json_object_get(j, "nftables"), i, o) {
                        json_array_foreach (json_object_get(json_object_get(o, "set"), "elem"), e,
                                            el) {
                                json_t *val = json_object_get(json_object_get(el, "elem"), "val");
                                json_t *c = json_object_get(val, "concat");
                                const char *ifname = json_string_value(json_array_get(c, 0));
                                const char *addr = json_string_value(json_array_get(c, 1));
                                bool ours = false;
                                if (!ifname || !addr || !net_ifname_valid(ifname) ||
                                    strchr(addr, '"'))
                                        continue;
                                for (uint32_t s = 0; s < n->hi && !ours; s++)
                                        ours = n->by_slot[s] &&
                                               streq(n->by_slot[s]->rs.ifname, ifname);
                                /* add-then-delete: correct even if it expires meanwhile */
                                if (!ours &&
                                    buf_addf(&b,
                                             "add element inet " NET_TABLE
                                             " %s { \"%s\" . %s timeout 1s }\n"
                                             "delete element inet " NET_TABLE
                                             " %s { \"%s\" . %s }\n",
                                             sets[k], ifname, addr, sets[k], ifname, addr) < 0)
                                        return cove_err_set(err, ENOMEM, "nft text: %m");
                        }
                }
        }
        if (b.len)
                r = nft_run_buf(n, &b, err);
        return r;
}

int net_sweep_unadopted(struct net *n, struct cove_err **err)
{
        int swept = 0, r = 0;

        (void)pthread_mutex_lock(&n->lock);
        r = sweep_learnt_locked(n, err);
        for (size_t i = 0; i < n->n_found; i++) {
                struct found *f = &n->found[i];
                struct net_sbx tmp = { .ifindex = f->ifindex };
                struct net_addr a4, a6;
                int q;

                if (f->adopted || net_pool_is_used(n->pool, f->slot))
                        continue;
                net_pool_slot_addrs(n->pool, f->slot, &a4, &a6);
                net_ruleset_sandbox_init(&tmp.rs, f->slot, &a4, a6.family ? &a6 : NULL);
                (void)pthread_mutex_lock(&n->nl_lock);
                if (rtnl_link_index(n->nl, f->ifname) != f->ifindex)
                        tmp.ifindex = 0; /* gone meanwhile (or another link now) */
                (void)pthread_mutex_unlock(&n->nl_lock);
                q = teardown(n, &tmp, err);
                if (q < 0 && r == 0)
                        r = q;
                f->adopted = true;
                swept++;
        }
        (void)pthread_mutex_unlock(&n->lock);
        return r < 0 ? r : swept;
}

/* ---- purge and leftovers ---- */

struct purge_scan {
        int ifindex[1024];
        size_t n;
        bool anchor;
};

static int purge_link(const struct rtnl_link_info *l, void *ud)
{
        struct purge_scan *p = ud;

        /* Ours: the veths named cove-<slot>, the anchor bridge. */
        if (((strncmp(l->name, NET_IFNAME_PREFIX, STRLEN(NET_IFNAME_PREFIX)) == 0 && l->kind &&
              streq(l->kind, "veth")) ||
             (streq(l->name, NET_ANCHOR_IFNAME) && l->kind && streq(l->kind, "bridge"))) &&
            p->n < ARRAY_SIZE(p->ifindex))
                p->ifindex[p->n++] = l->ifindex;
        return 0;
}

/* The interface names in one of the guard sets, from the table's JSON listing. */
static void guarded(struct net_nft *nft, const char *set, char out[][IF_NAMESIZE], size_t max,
                    size_t *ret_n)
{
        cleanup_free char *text = NULL;
        cleanup_free char *cmd = xasprintf("list set inet " NET_TABLE " %s", set);
        json_t *root, *items, *item;
        size_t i, k = 0;

        *ret_n = 0;
        if (net_nft_list_json(nft, cmd, &text, NULL) < 0)
                return;
        root = json_loads(text, 0, NULL);
        items = json_object_get(root, "nftables");
        json_array_foreach (items, i, item) {
                json_t *elem = json_object_get(json_object_get(item, "set"), "elem"), *e;
                size_t j;
                json_array_foreach (elem, j, e) {
                        if (json_is_string(e) && k < max && net_ifname_valid(json_string_value(e)))
                                (void)snprintf(out[k++], IF_NAMESIZE, "%s", json_string_value(e));
                }
        }
        json_decref(root);
        *ret_n = k;
}

/* Undoes what the guard sets record (the links may be gone: nothing to undo then). */
static void unguard(struct net_nft *nft)
{
        static const struct {
                const char *set, *dir, *key, *value;
        } undo[] = {
                { "guard", "ipv4", "forwarding", "0" },
                { "guard6", "ipv6", "force_forwarding", "0" },
                { "guard_ra", "ipv6", "accept_ra", "1" },
        };
        char names[NET_UPLINKS_MAX + 1][IF_NAMESIZE];
        size_t n;

        for (size_t u = 0; u < ARRAY_SIZE(undo); u++) {
                guarded(nft, undo[u].set, names, ARRAY_SIZE(names), &n);
                for (size_t i = 0; i < n; i++) {
                        char path[128];
                        /* "all" in guard6 stands for the global IPv6 switch */
                        bool global = u == 1 && streq(names[i], "all");
                        (void)snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/%s",
                                       undo[u].dir, names[i], global ? "forwarding" : undo[u].key);
                        (void)write_string_file(path, undo[u].value);
                }
        }
}

/* The source ranges of pool (NULL: the default) whose flows conntrack holds: its IPv4 CIDR and,
 * when it has one, its IPv6 CIDR, into srcs[0..1] and *ret_n. */
static int pool_sources(const char *pool, struct net_cidr srcs[2], size_t *ret_n,
                        struct cove_err **err)
{
        struct net_pool *p = NULL;
        size_t n = 0;

        if (net_pool_new(pool ? pool : NET_POOL_DEFAULT, &p) < 0)
                return cove_err_set(err, EINVAL, "network pool '%s' is not valid", pool);
        srcs[n++] = *net_pool_cidr4(p);
        if (net_pool_cidr6(p))
                srcs[n++] = *net_pool_cidr6(p);
        net_pool_free(p);
        *ret_n = n;
        return 0;
}

int net_purge(const char *pool, struct cove_err **err)
{
        struct rtnl *nl = NULL;
        struct net_nft *nft = NULL;
        cleanup_free struct purge_scan *ps = xzalloc(sizeof(*ps));
        cleanup_buf struct buf b;
        cleanup_free char *text = NULL;
        struct net_cidr srcs[2];
        size_t n_srcs = 0;
        int r;

        buf_init(&b, NFT_BUF_MAX);
        r = rtnl_open(-1, &nl, err);
        if (r < 0)
                return r;
        r = rtnl_link_dump(nl, purge_link, ps, err);
        for (size_t i = 0; r >= 0 && i < ps->n; i++) {
                int q = rtnl_link_del(nl, ps->ifindex[i], err);
                if (q < 0 && q != -ENODEV)
                        r = q;
        }
        rtnl_close(nl);
        if (r < 0)
                return r;
        r = net_nft_new(&nft, err);
        if (r < 0)
                return r;
        if (net_nft_list_json(nft, "list table inet " NET_TABLE, &text, NULL) < 0) {
                net_nft_free(nft); /* no table: nothing of ours in nftables */
                goto conntrack;
        }
        unguard(nft);
        r = net_ruleset_host_delete(&b);
        if (r >= 0)
                r = net_nft_run(nft, buf_str(&b), err);
        net_nft_free(nft);
        if (r < 0)
                return r;
conntrack:
        r = pool_sources(pool, srcs, &n_srcs, err);
        if (r < 0)
                return r;
        r = net_ct_cut(srcs, n_srcs, NULL, NULL, err);
        return r < 0 ? r : 0;
}

int net_leftovers(const char *pool, struct net_leftovers *ret, struct cove_err **err)
{
        struct rtnl *nl = NULL;
        struct net_nft *nft = NULL;
        cleanup_free struct purge_scan *ps = xzalloc(sizeof(*ps));
        cleanup_free char *text = NULL;
        struct net_cidr srcs[2];
        size_t n_srcs = 0;
        int r;

        *ret = (struct net_leftovers){ 0 };
        r = rtnl_open(-1, &nl, err);
        if (r < 0)
                return r;
        r = rtnl_link_dump(nl, purge_link, ps, err);
        rtnl_close(nl);
        if (r < 0)
                return r;
        ret->links = (unsigned)ps->n;
        r = net_nft_new(&nft, err);
        if (r < 0)
                return r;
        ret->table = net_nft_list_json(nft, "list table inet " NET_TABLE, &text, NULL) == 0;
        net_nft_free(nft);
        r = pool_sources(pool, srcs, &n_srcs, err);
        if (r < 0)
                return r;
        r = net_ct_count(srcs, n_srcs, err);
        if (r < 0)
                return r;
        ret->conntrack = (unsigned)r;
        return 0;
}
