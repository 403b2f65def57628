/* SPDX-License-Identifier: MIT */
#include "net/ruleset.h"
#include "lib/macro.h"

#define T "inet " NET_TABLE

/* Always denied, whatever the policy (control-plane.md §4.2): "this" network, loopback,
 * link-local and cloud metadata, multicast and the reserved space up to the broadcast address.
 * The pool (other sandboxes) is added from the configuration. */
static const char *const never4[] = {
        "0.0.0.0/8",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/3",
};
static const char *const never6[] = {
        "::/128", "::1/128", "::ffff:0:0/96", "fe80::/10", "ff00::/8", "fd00:ec2::254/128",
};

void net_ruleset_sandbox_init(struct net_ruleset_sandbox *s, uint32_t slot,
                              const struct net_addr *addr4, const struct net_addr *addr6)
{
        *s = (struct net_ruleset_sandbox){ .slot = slot, .addr4 = *addr4 };
        if (addr6)
                s->addr6 = *addr6;
        (void)snprintf(s->ifname, sizeof(s->ifname), NET_IFNAME_PREFIX "%x", slot);
}

bool net_ifname_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n >= IF_NAMESIZE || streq(name, ".") || streq(name, ".."))
                return false;
        for (const char *p = name; *p; p++)
                if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '/' || *p == ':' || *p == 0x7f)
                        return false;
        return true;
}

/* "{ a, b }" of merged CIDRs of one family; false when there are none. */
static int add_cidr_set(struct buf *out, const struct net_cidr *c, size_t n, int family, bool *any)
{
        cleanup_free struct net_cidr *m = NULL;
        size_t k;
        char s[NET_CIDR_STR_MAX];
        int r;

        *any = false;
        if (net_cidr_list_merge(c, n, family, &m, &k) < 0)
                return -ENOMEM;
        if (k == 0)
                return 0;
        *any = true;
        r = buf_adds(out, "{ ");
        for (size_t i = 0; r >= 0 && i < k; i++)
                r = buf_addf(out, "%s%s", i ? ", " : "", net_cidr_format(&m[i], s));
        if (r >= 0)
                r = buf_adds(out, " }");
        return r;
}

static int add_ports(struct buf *out, const uint16_t *ports, size_t n)
{
        int r = buf_adds(out, " meta l4proto tcp th dport { ");

        for (size_t i = 0; r >= 0 && i < n; i++)
                r = buf_addf(out, "%s%u", i ? ", " : "", ports[i]);
        if (r >= 0)
                r = buf_adds(out, " }");
        return r;
}

static int add_uplinks(struct buf *out, const struct net_ruleset_host *h)
{
        int r = buf_adds(out, "{ ");

        for (size_t i = 0; r >= 0 && i < h->n_uplinks; i++)
                r = buf_addf(out, "%s\"%s\"", i ? ", " : "", h->uplinks[i]);
        if (r >= 0)
                r = buf_adds(out, " }");
        return r;
}

static int add_set_elements(struct buf *out, const char *set, const char *const *fixed, size_t n,
                            const struct net_cidr *extra)
{
        struct net_cidr all[16];
        size_t k = 0;
        bool any;
        int r;

        for (size_t i = 0; i < n && k < ARRAY_SIZE(all); i++)
                if (net_cidr_parse(fixed[i], NET_FAMILY_ANY, &all[k]) == 0)
                        k++;
        if (extra && k < ARRAY_SIZE(all))
                all[k++] = *extra;
        r = buf_addf(out, "flush set " T " %s\nadd element " T " %s ", set, set);
        if (r >= 0)
                r = add_cidr_set(out, all, k, all[0].addr.family, &any);
        if (r >= 0)
                r = buf_adds(out, "\n");
        return r;
}

int net_ruleset_host(const struct net_ruleset_host *h, struct buf *out)
{
        char g[NET_ADDR_STR_MAX], c[NET_CIDR_STR_MAX];
        int r;

        net_addr_format(&h->gateway4, g);
        r = buf_adds(out,
                     "add table " T "\n"
                     "add set " T " src4 { type ifname . ipv4_addr; }\n"
                     "add set " T " src6 { type ifname . ipv6_addr; }\n"
                     "add set " T " never4 { type ipv4_addr; flags interval; }\n"
                     "add set " T " never6 { type ipv6_addr; flags interval; }\n"
                     "add map " T " egress { type ifname : verdict; }\n"
                     /* Addresses each sandbox learnt through DNS (its ifname . the address,
                      * with the answer's TTL): two sets for all sandboxes, not two each —
                      * libnftables' cache grows with the number of sets, and every command
                      * pays for it (2,000 sandboxes: ~100 ms per attach with per-sandbox sets,
                      * ~6 ms without). */
                     "add set " T " learn4 { type ifname . ipv4_addr; flags timeout; size "
                     "16777216; }\n"
                     "add set " T " learn6 { type ifname . ipv6_addr; flags timeout; size "
                     "16777216; }\n"
                     "add set " T " guard { type ifname; }\n"
                     "add set " T " guard6 { type ifname; }\n"
                     "add set " T " guard_ra { type ifname; }\n"
                     /* Spoofed sources are dropped before conntrack sees them. */
                     "add chain " T
                     " prerouting { type filter hook prerouting priority raw; policy accept; }\n"
                     "flush chain " T " prerouting\n"
                     "add chain " T " spoof\n"
                     "flush chain " T " spoof\n"
                     "add rule " T " prerouting iifname \"" NET_IFNAME_PREFIX "*\" jump spoof\n"
                     "add rule " T " spoof iifname . ip saddr @src4 return\n"
                     "add rule " T " spoof iifname . ip6 saddr @src6 return\n"
                     "add rule " T
                     " spoof ip6 saddr { fe80::/10, :: } icmpv6 type { nd-neighbor-solicit, "
                     "nd-neighbor-advert, nd-router-solicit } return\n"
                     "add rule " T " spoof drop\n"
                     /* Refusals fail fast: a reset for TCP, admin-prohibited for the rest. */
                     "add chain " T " deny\n"
                     "flush chain " T " deny\n"
                     "add rule " T " deny meta l4proto tcp reject with tcp reset\n"
                     "add rule " T " deny reject with icmpx type admin-prohibited\n"
                     "add chain " T
                     " input { type filter hook input priority filter; policy accept; }\n"
                     "flush chain " T " input\n"
                     "add chain " T " sandbox_in\n"
                     "flush chain " T " sandbox_in\n"
                     "add rule " T " input iifname \"" NET_IFNAME_PREFIX "*\" jump sandbox_in\n"
                     "add rule " T " sandbox_in ct state established,related accept\n");
        if (r >= 0)
                r = buf_addf(out, "add rule " T " sandbox_in ip daddr %s udp dport 53 accept\n", g);
        if (r >= 0 && h->api_port)
                r = buf_addf(out,
                             "add rule " T " sandbox_in ip daddr %s tcp dport { 53, %u } accept\n",
                             g, h->api_port);
        else if (r >= 0)
                r = buf_addf(out, "add rule " T " sandbox_in ip daddr %s tcp dport 53 accept\n", g);
        if (r >= 0)
                r = buf_adds(
                        out,
                        "add rule " T " sandbox_in icmpv6 type { nd-neighbor-solicit, "
                        "nd-neighbor-advert } accept\n"
                        "add rule " T " sandbox_in goto deny\n"
                        "add chain " T
                        " forward { type filter hook forward priority filter; policy accept; }\n"
                        "flush chain " T " forward\n"
                        "add chain " T " sandbox_out\n"
                        "flush chain " T " sandbox_out\n"
                        "add chain " T " sandbox_inbound\n"
                        "flush chain " T " sandbox_inbound\n"
                        "add rule " T " forward iifname \"" NET_IFNAME_PREFIX
                        "*\" jump sandbox_out\n"
                        "add rule " T " forward oifname \"" NET_IFNAME_PREFIX
                        "*\" jump sandbox_inbound\n");
        /* Uplinks on which coved turned forwarding on (set `guard`, kept across restarts):
         * the host routes nothing from them but sandbox traffic. */
        if (r >= 0)
                r = buf_adds(out, "add rule " T " forward iifname @guard drop\n");
        if (r >= 0)
                r = buf_adds(out, "add rule " T " sandbox_out ct state related accept\n"
                                  "add rule " T " sandbox_out ct state invalid goto deny\n");
        /* Sandbox traffic leaves by the uplinks only (never towards another host link, a
         * container bridge or a VPN); without uplinks it does not leave at all. */
        if (r >= 0 && h->n_uplinks) {
                r = buf_adds(out, "add rule " T " sandbox_out oifname != ");
                if (r >= 0)
                        r = add_uplinks(out, h);
                if (r >= 0)
                        r = buf_adds(out, " goto deny\n");
        } else if (r >= 0)
                r = buf_adds(out, "add rule " T " sandbox_out goto deny\n");
        if (r >= 0)
                r = buf_adds(out,
                             "add rule " T " sandbox_out ip daddr @never4 goto deny\n"
                             "add rule " T " sandbox_out ip6 daddr @never6 goto deny\n"
                             /* Cove's resolver (input chain) is the only DNS a sandbox reaches. */
                             "add rule " T
                             " sandbox_out meta l4proto { tcp, udp } th dport 53 goto deny\n"
                             "add rule " T " sandbox_out iifname vmap @egress\n"
                             "add rule " T " sandbox_out goto deny\n"
                             "add rule " T " sandbox_inbound ct state established,related accept\n"
                             "add rule " T " sandbox_inbound drop\n");
        if (r >= 0)
                r = add_set_elements(out, "never4", never4, ARRAY_SIZE(never4), h->pool4);
        if (r >= 0)
                r = add_set_elements(out, "never6", never6, ARRAY_SIZE(never6), h->pool6);
        if (r >= 0)
                r = buf_adds(out, "add chain " T " postrouting { type nat hook postrouting "
                                  "priority srcnat; policy accept; }\n"
                                  "flush chain " T " postrouting\n");
        if (r >= 0 && h->n_uplinks) {
                r = buf_addf(out, "add rule " T " postrouting ip saddr %s oifname ",
                             net_cidr_format(h->pool4, c));
                if (r >= 0)
                        r = add_uplinks(out, h);
                if (r >= 0)
                        r = buf_adds(out, " masquerade\n");
                if (r >= 0 && h->pool6) {
                        r = buf_addf(out, "add rule " T " postrouting ip6 saddr %s oifname ",
                                     net_cidr_format(h->pool6, c));
                        if (r >= 0)
                                r = add_uplinks(out, h);
                        if (r >= 0)
                                r = buf_adds(out, " masquerade\n");
                }
        }
        return r;
}

int net_ruleset_host_delete(struct buf *out)
{
        return buf_adds(out, "add table " T "\ndelete table " T "\n");
}

static int add_rule(struct buf *out, const struct net_ruleset_sandbox *s,
                    const struct net_rule *rule)
{
        char verdict[48];
        static const struct {
                int family;
                const char *match, *set;
        } fam[] = { { AF_INET, "ip daddr", "learn4" }, { AF_INET6, "ip6 daddr", "learn6" } };
        int r = 0;

        if (rule->verdict == NET_VERDICT_ACCEPT)
                (void)snprintf(verdict, sizeof(verdict), "ct mark set 0x%08x accept",
                               s->generation);
        else
                (void)snprintf(verdict, sizeof(verdict), "goto deny");
        for (size_t f = 0; r >= 0 && f < ARRAY_SIZE(fam); f++) {
                bool any = true;
                size_t mark = out->len;

                if (rule->learnt)
                        r = buf_addf(out, "add rule " T " s_%x iifname . %s @%s", s->slot,
                                     fam[f].match, fam[f].set);
                else
                        r = buf_addf(out, "add rule " T " s_%x %s ", s->slot, fam[f].match);
                if (r >= 0 && !rule->learnt)
                        r = add_cidr_set(out, rule->cidrs, rule->n_cidrs, fam[f].family, &any);
                if (r < 0)
                        break;
                if (!any) { /* nothing of this family: drop the half-written rule */
                        out->len = mark;
                        if (out->ptr)
                                out->ptr[mark] = '\0';
                        continue;
                }
                if (rule->n_tcp_ports)
                        r = add_ports(out, rule->tcp_ports, rule->n_tcp_ports);
                if (r >= 0)
                        r = buf_addf(out, " %s\n", verdict);
        }
        return r;
}

int net_ruleset_sandbox_policy(const struct net_ruleset_sandbox *s, const struct net_policy *p,
                               struct buf *out)
{
        struct net_rule rules[NET_RULES_MAX];
        size_t n = net_policy_rules(p, rules);
        int r;

        /* Every packet of the sandbox comes here, established flows too: those this very
         * policy (its generation) already approved pass on the first rule; after a change,
         * each flow meets the new rules on its next packet and is cut or approved again
         * (docs/design/network.md §6). */
        r = buf_addf(out,
                     "add chain " T " s_%x\n"
                     "flush chain " T " s_%x\n"
                     "add rule " T " s_%x ct mark 0x%08x accept\n",
                     s->slot, s->slot, s->slot, s->generation);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = add_rule(out, s, &rules[i]);
        if (r >= 0 && p->fallback == NET_VERDICT_ACCEPT)
                r = buf_addf(out, "add rule " T " s_%x ct mark set 0x%08x accept\n", s->slot,
                             s->generation);
        else if (r >= 0)
                r = buf_addf(out, "add rule " T " s_%x goto deny\n", s->slot);
        return r;
}

/* The objects of a sandbox, created if missing (a no-op for those present). */
static int add_objects(const struct net_ruleset_sandbox *s, struct buf *out)
{
        char a[NET_ADDR_STR_MAX];
        int r;

        r = buf_addf(out,
                     "add chain " T " s_%x\n"
                     "add element " T " egress { \"%s\" : jump s_%x }\n"
                     "add element " T " src4 { \"%s\" . %s }\n",
                     s->slot, s->ifname, s->slot, s->ifname, net_addr_format(&s->addr4, a));
        if (r >= 0 && s->addr6.family == AF_INET6)
                r = buf_addf(out, "add element " T " src6 { \"%s\" . %s }\n", s->ifname,
                             net_addr_format(&s->addr6, a));
        return r;
}

int net_ruleset_sandbox_add(const struct net_ruleset_sandbox *s, const struct net_policy *p,
                            struct buf *out)
{
        int r = add_objects(s, out);

        if (r >= 0)
                r = net_ruleset_sandbox_policy(s, p, out);
        return r;
}

int net_ruleset_guard(enum net_guard g, const char *ifname, struct buf *out)
{
        static const char *const sets[] = { "guard", "guard6", "guard_ra" };

        return buf_addf(out, "add element " T " %s { \"%s\" }\n", sets[g], ifname);
}
