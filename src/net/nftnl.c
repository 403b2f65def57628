/* SPDX-License-Identifier: MIT */
#include "net/nftnl.h"
#include "lib/macro.h"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/time.h>

/* libnftables' data type ids (nft's src/datatype.h), as it writes them in NFTA_SET_KEY_TYPE:
 * they tell `nft list` how to print the keys of the anonymous sets made here. */
#define NFT_TYPE_IPADDR       7
#define NFT_TYPE_IP6ADDR      8
#define NFT_TYPE_INET_SERVICE 13
#define NFT_BYTEORDER_BIG     2 /* nft's enum byteorder: BYTEORDER_BIG_ENDIAN */

#define OP_WHAT_MAX   64
#define SOCK_BUF      (16 * 1024 * 1024)
#define ACK_TIMEOUT_S 10

struct net_nftnl {
        pthread_mutex_t lock;
        struct mnl_socket *sock;
        uint32_t portid;
        uint32_t seq;
};

struct net_nftnl_batch {
        char *buf; /* NFNL_MSG_BATCH_BEGIN, then one message per operation */
        size_t len, cap;
        char (*what)[OP_WHAT_MAX]; /* what[i]: operation i, for error messages */
        size_t n_ops;
        uint32_t set_id; /* last anonymous set id handed out in this batch */
        int error;       /* first builder failure (-E2BIG): commit refuses the batch */
};

static void __attribute__((noreturn)) oom(void)
{
        static const char msg[] = "cove: out of memory\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        abort();
}

static void *must(void *p)
{
        if (!p)
                oom();
        return p;
}

/* ---- socket ---- */

int net_nftnl_open(struct net_nftnl **ret, struct cove_err **err)
{
        struct net_nftnl *n = xzalloc(sizeof(*n));
        int one = 1, size = SOCK_BUF;
        struct timeval tv = { .tv_sec = ACK_TIMEOUT_S };
        int fd;

        n->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
        if (!n->sock) {
                int e = errno;
                free(n);
                return cove_err_set(err, e, "open nftables netlink socket: %m");
        }
        fd = mnl_socket_get_fd(n->sock);
        /* A batch goes out in one sendmsg: room for the largest one. Errors come back without
         * the failed message (NETLINK_CAP_ACK), so acks never fill the receive buffer. */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            mnl_socket_bind(n->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
                int e = errno;
                mnl_socket_close(n->sock);
                free(n);
                return cove_err_set(err, e, "bind nftables netlink socket: %m");
        }
        n->portid = mnl_socket_get_portid(n->sock);
        n->seq = (uint32_t)time(NULL);
        (void)pthread_mutex_init(&n->lock, NULL);
        *ret = n;
        return 0;
}

void net_nftnl_close(struct net_nftnl *n)
{
        if (!n)
                return;
        mnl_socket_close(n->sock);
        (void)pthread_mutex_destroy(&n->lock);
        free(n);
}

/* ---- the batch buffer ---- */

/* Room for a message of at most max bytes at b->buf + b->len; NULL past the batch limit. */
static char *reserve(struct net_nftnl_batch *b, size_t max)
{
        if (b->error)
                return NULL;
        if (b->len + max > NET_NFTNL_BATCH_MAX) {
                b->error = -E2BIG;
                return NULL;
        }
        if (b->len + max > b->cap) {
                size_t cap = MAX(b->cap * 2, (size_t)16384);
                while (cap < b->len + max)
                        cap *= 2;
                b->buf = xrealloc(b->buf, cap);
                b->cap = cap;
        }
        return b->buf + b->len;
}

struct net_nftnl_batch *net_nftnl_batch_new(void)
{
        struct net_nftnl_batch *b = xzalloc(sizeof(*b));
        char *p = reserve(b, MNL_NLMSG_HDRLEN + 64);

        b->len += nftnl_batch_begin(p, 0)->nlmsg_len;
        return b;
}

void net_nftnl_batch_free(struct net_nftnl_batch *b)
{
        if (!b)
                return;
        free(b->buf);
        free(b->what);
        free(b);
}

/* Starts operation n_ops: a header at the end of the buffer (room for max bytes), with a
 * description for error messages. */
static struct nlmsghdr *op_start(struct net_nftnl_batch *b, size_t max, uint16_t type,
                                 uint16_t flags, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static struct nlmsghdr *op_start(struct net_nftnl_batch *b, size_t max, uint16_t type,
                                 uint16_t flags, const char *fmt, ...)
{
        char *p = reserve(b, max);
        va_list ap;

        if (!p)
                return NULL;
        b->what = xrealloc(b->what, (b->n_ops + 1) * sizeof(*b->what));
        va_start(ap, fmt);
        (void)vsnprintf(b->what[b->n_ops], OP_WHAT_MAX, fmt, ap);
        va_end(ap);
        b->n_ops++;
        return nftnl_nlmsg_build_hdr(p, type, NFPROTO_INET, flags | NLM_F_ACK, 0);
}

static void op_end(struct net_nftnl_batch *b, struct nlmsghdr *nlh, size_t max)
{
        /* libnftnl writes without bounds: the reservation must have been enough. */
        if (nlh->nlmsg_len > max)
                abort();
        b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* ---- keys ---- */

struct key {
        uint8_t b[32];
        uint32_t len;
};

/* An interface name as nft stores it: IFNAMSIZ bytes, zero-padded. */
static void key_ifname(struct key *k, const char *ifname)
{
        memset(k, 0, sizeof(*k));
        (void)snprintf((char *)k->b, IF_NAMESIZE, "%s", ifname);
        k->len = IF_NAMESIZE;
}

/* "<ifname> . <address>" (src4/src6, learn4/learn6). */
static void key_ifname_addr(struct key *k, const char *ifname, const struct net_addr *a)
{
        size_t alen = net_family_len(a->family);

        key_ifname(k, ifname);
        memcpy(k->b + IF_NAMESIZE, a->bytes, alen);
        k->len = (uint32_t)(IF_NAMESIZE + alen);
}

/* ---- set elements ---- */

#define ELEM_MAX 192 /* bytes one element takes in a message, at most (key ≤ 32 + attributes) */

enum elem_op { ELEM_ADD, ELEM_DEL };

struct elem {
        struct key key;
        uint64_t timeout_ms;
        const char *jump; /* verdict map: jump to this chain */
        uint32_t flags;   /* NFT_SET_ELEM_INTERVAL_END */
        bool open;        /* interval reaching the end of the address space */
};

/* One NEWSETELEM/DELSETELEM message with n elements of the named set (or, with id, of the
 * anonymous set of that id made in this batch). */
static int elems(struct net_nftnl_batch *b, enum elem_op op, const char *set, uint32_t id,
                 const struct elem *e, size_t n)
{
        size_t max = 256 + n * ELEM_MAX;
        struct nftnl_set *s;
        struct nlmsghdr *nlh;

        nlh = op_start(b, max, op == ELEM_ADD ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
                       op == ELEM_ADD ? NLM_F_CREATE : 0, "%s %zu element%s %s set %s",
                       op == ELEM_ADD ? "add" : "delete", n, n == 1 ? "" : "s",
                       op == ELEM_ADD ? "to" : "from", set);
        if (!nlh)
                return b->error;
        s = must(nftnl_set_alloc());
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
        nftnl_set_set_str(s, NFTNL_SET_TABLE, NET_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, set);
        if (id)
                nftnl_set_set_u32(s, NFTNL_SET_ID, id);
        for (size_t i = 0; i < n; i++) {
                struct nftnl_set_elem *x = must(nftnl_set_elem_alloc());
                nftnl_set_elem_set(x, NFTNL_SET_ELEM_KEY, e[i].key.b, e[i].key.len);
                if (e[i].flags)
                        nftnl_set_elem_set_u32(x, NFTNL_SET_ELEM_FLAGS, e[i].flags);
                if (e[i].timeout_ms)
                        nftnl_set_elem_set_u64(x, NFTNL_SET_ELEM_TIMEOUT, e[i].timeout_ms);
                if (e[i].jump) {
                        nftnl_set_elem_set_u32(x, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_JUMP);
                        nftnl_set_elem_set_str(x, NFTNL_SET_ELEM_CHAIN, e[i].jump);
                }
                if (e[i].open) { /* udata NFTNL_UDATA_SET_ELEM_FLAGS = INTERVAL_OPEN (u32) */
                        const uint8_t ud[6] = { NFTNL_UDATA_SET_ELEM_FLAGS,
                                                4,
                                                NFTNL_SET_ELEM_F_INTERVAL_OPEN,
                                                0,
                                                0,
                                                0 };
                        nftnl_set_elem_set(x, NFTNL_SET_ELEM_USERDATA, ud, sizeof(ud));
                }
                nftnl_set_elem_add(s, x);
        }
        nftnl_set_elems_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        op_end(b, nlh, max);
        return 0;
}

/* An anonymous constant set of n keys (interval: elements are interval starts and ends); its
 * id for lookups in the same batch in *id. */
static int anon_set(struct net_nftnl_batch *b, uint32_t key_type, uint32_t key_len, bool interval,
                    const struct elem *e, size_t n, uint32_t *id)
{
        /* udata: key byte order big endian; interval sets: merge adjacent elements (as nft) */
        const uint8_t ud[] = { NFTNL_UDATA_SET_KEYBYTEORDER,
                               4,
                               NFT_BYTEORDER_BIG,
                               0,
                               0,
                               0,
                               NFTNL_UDATA_SET_MERGE_ELEMENTS,
                               4,
                               1,
                               0,
                               0,
                               0 };
        struct nftnl_set *s;
        struct nlmsghdr *nlh;
        size_t max = 512;

        nlh = op_start(b, max, NFT_MSG_NEWSET, NLM_F_CREATE, "add anonymous set");
        if (!nlh)
                return b->error;
        *id = ++b->set_id;
        s = must(nftnl_set_alloc());
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
        nftnl_set_set_str(s, NFTNL_SET_TABLE, NET_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, "__set%d");
        nftnl_set_set_u32(s, NFTNL_SET_ID, *id);
        nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
                          NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | (interval ? NFT_SET_INTERVAL : 0));
        nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, key_type);
        nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, key_len);
        nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, (uint32_t)n);
        nftnl_set_set_data(s, NFTNL_SET_USERDATA, ud, interval ? sizeof(ud) : 6);
        nftnl_set_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        op_end(b, nlh, max);
        return elems(b, ELEM_ADD, "__set%d", *id, e, n);
}

/* ---- rules ---- */

static void add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
        nftnl_rule_add_expr(r, e);
}

static struct nftnl_expr *expr(const char *name)
{
        return must(nftnl_expr_alloc(name));
}

static void e_meta(struct nftnl_rule *r, uint32_t key)
{
        struct nftnl_expr *e = expr("meta");
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
        add_expr(r, e);
}

static void e_cmp(struct nftnl_rule *r, const void *data, uint32_t len)
{
        struct nftnl_expr *e = expr("cmp");
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
        nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
        add_expr(r, e);
}

static void e_cmp_u8(struct nftnl_rule *r, uint8_t v)
{
        e_cmp(r, &v, 1);
}

static void e_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len,
                      uint32_t dreg)
{
        struct nftnl_expr *e = expr("payload");
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
        add_expr(r, e);
}

static void e_bitwise(struct nftnl_rule *r, const uint8_t *mask, uint32_t len)
{
        static const uint8_t zero[16];
        struct nftnl_expr *e = expr("bitwise");
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
        add_expr(r, e);
}

static void e_lookup(struct nftnl_rule *r, const char *set, uint32_t id)
{
        struct nftnl_expr *e = expr("lookup");
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
        if (id)
                nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id);
        add_expr(r, e);
}

static void e_ct_mark_eq(struct nftnl_rule *r, uint32_t mark)
{
        struct nftnl_expr *e = expr("ct");
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
        add_expr(r, e);
        e_cmp(r, &mark, sizeof(mark)); /* host byte order, as the kernel stores the mark */
}

static void e_ct_mark_set(struct nftnl_rule *r, uint32_t mark)
{
        struct nftnl_expr *e = expr("immediate");
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
        nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &mark, sizeof(mark));
        add_expr(r, e);
        e = expr("ct");
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
        add_expr(r, e);
}

/* verdict: NF_ACCEPT, or NFT_GOTO to chain */
static void e_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
        struct nftnl_expr *e = expr("immediate");
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
        if (chain)
                nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
        add_expr(r, e);
}

static struct nftnl_rule *rule_new(const char *chain)
{
        struct nftnl_rule *r = must(nftnl_rule_alloc());

        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NET_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
        return r;
}

/* Appends rule r (freed) to its chain. */
static int rule_commit(struct net_nftnl_batch *b, struct nftnl_rule *r, const char *chain)
{
        size_t max = 4096;
        struct nlmsghdr *nlh = op_start(b, max, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                                        "add rule to chain %s", chain);

        if (!nlh) {
                nftnl_rule_free(r);
                return b->error;
        }
        nftnl_rule_nlmsg_build_payload(nlh, r);
        nftnl_rule_free(r);
        op_end(b, nlh, max);
        return 0;
}

/* ---- policy rules, as libnftables makes them of ruleset.h's text ---- */

struct fam {
        int family;
        uint8_t nfproto;
        uint32_t daddr_offset; /* in the network header */
        uint32_t key_type;
        const char *learn_set;
};
static const struct fam fams[] = {
        { AF_INET, NFPROTO_IPV4, 16, NFT_TYPE_IPADDR, "learn4" },
        { AF_INET6, NFPROTO_IPV6, 24, NFT_TYPE_IP6ADDR, "learn6" },
};

/* a + 1 in place (big endian); false when it wraps past the last address */
static bool addr_inc(uint8_t *a, size_t len)
{
        for (size_t i = len; i-- > 0;)
                if (++a[i] != 0)
                        return true;
        return false;
}

/* Interval elements of sorted, non-overlapping CIDRs (net_cidr_list_merge()), adjacent ones
 * joined: a leading end at 0 unless the first starts there, then start / end (exclusive) per
 * range; a range up to the last address has no end and is flagged open (nft's encoding). */
static size_t interval_elems(const struct net_cidr *c, size_t k, size_t alen, struct elem *out)
{
        size_t n = 0;
        uint8_t end[16];
        bool have_end = false;

        for (size_t i = 0; i < k; i++) {
                uint8_t start[16], last[16];
                unsigned bits = c[i].prefix;
                memcpy(start, c[i].addr.bytes, alen);
                memcpy(last, start, alen);
                for (size_t bit = bits; bit < alen * 8; bit++)
                        last[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
                if (have_end && memcmp(end, start, alen) == 0) {
                        /* adjacent to the previous range: extend it */
                        n--;
                } else {
                        if (n == 0 && !(i == 0 && memcmp(start, (uint8_t[16]){ 0 }, alen) == 0))
                                out[n++] = (struct elem){ .key.len = (uint32_t)alen,
                                                          .flags = NFT_SET_ELEM_INTERVAL_END };
                        out[n] = (struct elem){ .key.len = (uint32_t)alen };
                        memcpy(out[n].key.b, start, alen);
                        n++;
                }
                memcpy(end, last, alen);
                have_end = addr_inc(end, alen);
                out[n] = (struct elem){ .key.len = (uint32_t)alen,
                                        .flags = NFT_SET_ELEM_INTERVAL_END };
                memcpy(out[n].key.b, end, alen);
                if (have_end)
                        n++;
                else
                        out[n - 1].open = true;
        }
        return n;
}

/* "ip[6] daddr { cidrs }" of family f: a prefix match when one CIDR is left after merging
 * (nft turns a one-element anonymous set into a comparison), else an interval set. */
static int match_daddr(struct net_nftnl_batch *b, struct nftnl_rule *r, const struct fam *f,
                       const struct net_cidr *c, size_t k)
{
        size_t alen = net_family_len(f->family);

        if (k == 1) {
                unsigned bits = c[0].prefix;
                if (bits > 0 && bits % 8 == 0) { /* whole bytes: load and compare just those */
                        e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, f->daddr_offset, bits / 8,
                                  NFT_REG_1);
                        e_cmp(r, c[0].addr.bytes, bits / 8);
                } else {
                        uint8_t mask[16] = { 0 };
                        for (unsigned bit = 0; bit < bits; bit++)
                                mask[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
                        e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, f->daddr_offset, (uint32_t)alen,
                                  NFT_REG_1);
                        e_bitwise(r, mask, (uint32_t)alen);
                        e_cmp(r, c[0].addr.bytes, (uint32_t)alen);
                }
                return 0;
        }
        cleanup_free struct elem *e = xmalloc_array(2 * k + 1, sizeof(*e));
        uint32_t id;
        size_t n;
        int ret;

        if (!e)
                return -ENOMEM;
        n = interval_elems(c, k, alen, e);
        ret = anon_set(b, f->key_type, (uint32_t)alen, true, e, n, &id);
        if (ret < 0)
                return ret;
        e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, f->daddr_offset, (uint32_t)alen, NFT_REG_1);
        e_lookup(r, "__set%d", id);
        return 0;
}

/* "meta l4proto tcp th dport { ports }" */
static int match_tcp_ports(struct net_nftnl_batch *b, struct nftnl_rule *r, const uint16_t *ports,
                           size_t n)
{
        e_meta(r, NFT_META_L4PROTO);
        e_cmp_u8(r, IPPROTO_TCP);
        if (n == 1) {
                uint16_t p = htons(ports[0]);
                e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
                e_cmp(r, &p, sizeof(p));
                return 0;
        }
        struct elem e[NET_POLICY_PORTS_MAX + 2];
        uint32_t id;
        int ret;

        if (n > ARRAY_SIZE(e))
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                uint16_t p = htons(ports[i]);
                e[i] = (struct elem){ .key.len = 2 };
                memcpy(e[i].key.b, &p, 2);
        }
        ret = anon_set(b, NFT_TYPE_INET_SERVICE, 2, false, e, n, &id);
        if (ret < 0)
                return ret;
        e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
        e_lookup(r, "__set%d", id);
        return 0;
}

static void verdict_of(struct nftnl_rule *r, enum net_verdict v, uint32_t generation)
{
        if (v == NET_VERDICT_ACCEPT) {
                e_ct_mark_set(r, generation);
                e_verdict(r, NF_ACCEPT, NULL);
        } else
                e_verdict(r, NFT_GOTO, "deny");
}

/* One policy rule: a kernel rule per address family it names (ruleset.h's add_rule()). */
static int policy_rule(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                       const char *chain, const struct net_rule *rule)
{
        for (size_t i = 0; i < ARRAY_SIZE(fams); i++) {
                const struct fam *f = &fams[i];
                cleanup_free struct net_cidr *m = NULL;
                struct nftnl_rule *r;
                size_t k = 0;
                int ret = 0;

                if (!rule->learnt) {
                        if (net_cidr_list_merge(rule->cidrs, rule->n_cidrs, f->family, &m, &k) < 0)
                                return -ENOMEM;
                        if (k == 0)
                                continue; /* nothing of this family */
                }
                r = rule_new(chain);
                e_meta(r, NFT_META_NFPROTO);
                e_cmp_u8(r, f->nfproto);
                if (rule->learnt) { /* iifname . ip daddr @learn4 */
                        e_meta(r, NFT_META_IIFNAME);
                        e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, f->daddr_offset,
                                  (uint32_t)net_family_len(f->family), NFT_REG_2);
                        e_lookup(r, f->learn_set, 0);
                } else
                        ret = match_daddr(b, r, f, m, k);
                if (ret >= 0 && rule->n_tcp_ports)
                        ret = match_tcp_ports(b, r, rule->tcp_ports, rule->n_tcp_ports);
                if (ret < 0) {
                        nftnl_rule_free(r);
                        return ret;
                }
                verdict_of(r, rule->verdict, s->generation);
                ret = rule_commit(b, r, chain);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int chain_op(struct net_nftnl_batch *b, uint16_t type, const char *chain)
{
        size_t max = 512;
        struct nftnl_chain *c;
        struct nlmsghdr *nlh =
                op_start(b, max, type, type == NFT_MSG_NEWCHAIN ? NLM_F_CREATE : 0, "%s chain %s",
                         type == NFT_MSG_NEWCHAIN ? "add" : "delete", chain);

        if (!nlh)
                return b->error;
        c = must(nftnl_chain_alloc());
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NET_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
        nftnl_chain_nlmsg_build_payload(nlh, c);
        nftnl_chain_free(c);
        op_end(b, nlh, max);
        return 0;
}

static int chain_flush(struct net_nftnl_batch *b, const char *chain)
{
        size_t max = 512;
        struct nftnl_rule *r;
        struct nlmsghdr *nlh = op_start(b, max, NFT_MSG_DELRULE, 0, "flush chain %s", chain);

        if (!nlh)
                return b->error;
        r = rule_new(chain);
        nftnl_rule_nlmsg_build_payload(nlh, r);
        nftnl_rule_free(r);
        op_end(b, nlh, max);
        return 0;
}

static void chain_name(const struct net_ruleset_sandbox *s, char out[32])
{
        (void)snprintf(out, 32, "s_%x", s->slot);
}

int net_nftnl_sandbox_policy(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                             const struct net_policy *p)
{
        struct net_rule rules[NET_RULES_MAX];
        size_t n = net_policy_rules(p, rules);
        struct nftnl_rule *r;
        char chain[32];
        int ret;

        chain_name(s, chain);
        /* add chain s_<slot>; flush chain s_<slot>; ct mark <generation> accept (§6) */
        ret = chain_op(b, NFT_MSG_NEWCHAIN, chain);
        if (ret >= 0)
                ret = chain_flush(b, chain);
        if (ret < 0)
                return ret;
        r = rule_new(chain);
        e_ct_mark_eq(r, s->generation);
        e_verdict(r, NF_ACCEPT, NULL);
        ret = rule_commit(b, r, chain);
        for (size_t i = 0; ret >= 0 && i < n; i++)
                ret = policy_rule(b, s, chain, &rules[i]);
        if (ret < 0)
                return ret;
        r = rule_new(chain);
        verdict_of(r, p->fallback, s->generation);
        return rule_commit(b, r, chain);
}

/* The objects of a sandbox, created if missing (a no-op for those present): its chain, its
 * egress map entry and its anti-spoof elements. */
static int add_objects(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                       const char *chain)
{
        struct elem e = { .jump = chain };
        int ret = chain_op(b, NFT_MSG_NEWCHAIN, chain);

        key_ifname(&e.key, s->ifname);
        if (ret >= 0)
                ret = elems(b, ELEM_ADD, "egress", 0, &e, 1);
        e = (struct elem){ 0 };
        key_ifname_addr(&e.key, s->ifname, &s->addr4);
        if (ret >= 0)
                ret = elems(b, ELEM_ADD, "src4", 0, &e, 1);
        if (ret >= 0 && s->addr6.family == AF_INET6) {
                key_ifname_addr(&e.key, s->ifname, &s->addr6);
                ret = elems(b, ELEM_ADD, "src6", 0, &e, 1);
        }
        return ret;
}

int net_nftnl_sandbox_add(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                          const struct net_policy *p)
{
        char chain[32];
        int ret;

        chain_name(s, chain);
        ret = add_objects(b, s, chain);
        return ret < 0 ? ret : net_nftnl_sandbox_policy(b, s, p);
}

int net_nftnl_sandbox_delete(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s)
{
        struct elem e = { 0 };
        char chain[32];
        int ret;

        chain_name(s, chain);
        ret = add_objects(b, s, chain);
        key_ifname(&e.key, s->ifname);
        if (ret >= 0)
                ret = elems(b, ELEM_DEL, "egress", 0, &e, 1);
        key_ifname_addr(&e.key, s->ifname, &s->addr4);
        if (ret >= 0)
                ret = elems(b, ELEM_DEL, "src4", 0, &e, 1);
        if (ret >= 0 && s->addr6.family == AF_INET6) {
                key_ifname_addr(&e.key, s->ifname, &s->addr6);
                ret = elems(b, ELEM_DEL, "src6", 0, &e, 1);
        }
        if (ret >= 0)
                ret = chain_flush(b, chain);
        if (ret >= 0)
                ret = chain_op(b, NFT_MSG_DELCHAIN, chain);
        return ret;
}

/* The learnt elements of addresses a[0..n) of one family (those of the other are skipped). */
static int learn_family(struct net_nftnl_batch *b, enum elem_op op,
                        const struct net_ruleset_sandbox *s, const struct fam *f,
                        const struct net_addr *a, size_t n, uint32_t timeout_s)
{
        cleanup_free struct elem *e = NULL;
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                k += a[i].family == f->family;
        if (k == 0)
                return 0;
        e = xmalloc_array(k, sizeof(*e));
        if (!e)
                return -ENOMEM;
        k = 0;
        for (size_t i = 0; i < n; i++) {
                if (a[i].family != f->family)
                        continue;
                e[k] = (struct elem){ .timeout_ms =
                                              op == ELEM_ADD ? (uint64_t)timeout_s * 1000 : 0 };
                key_ifname_addr(&e[k].key, s->ifname, &a[i]);
                k++;
        }
        return elems(b, op, f->learn_set, 0, e, k);
}

int net_nftnl_learn(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                    const struct net_addr *a, size_t n, uint32_t timeout_s)
{
        int ret = 0;

        for (size_t i = 0; ret >= 0 && i < ARRAY_SIZE(fams); i++)
                ret = learn_family(b, ELEM_ADD, s, &fams[i], a, n, timeout_s ? timeout_s : 1);
        return ret;
}

int net_nftnl_unlearn(struct net_nftnl_batch *b, const struct net_ruleset_sandbox *s,
                      const struct net_addr *a, size_t n)
{
        int ret = 0;

        /* add-then-delete: correct whether or not the kernel already expired them */
        for (size_t i = 0; ret >= 0 && i < ARRAY_SIZE(fams); i++) {
                ret = learn_family(b, ELEM_ADD, s, &fams[i], a, n, 1);
                if (ret >= 0)
                        ret = learn_family(b, ELEM_DEL, s, &fams[i], a, n, 0);
        }
        return ret;
}

/* ---- commit ---- */

static void batch_reset(struct net_nftnl_batch *b)
{
        b->len = NLMSG_ALIGN(((struct nlmsghdr *)b->buf)->nlmsg_len);
        b->n_ops = 0;
        b->set_id = 0;
        b->error = 0;
}

/* Reads the kernel's answers: one ack (error 0) or error per operation. The first error is
 * reported, naming its operation. */
static int read_acks(struct net_nftnl *n, struct net_nftnl_batch *b, uint32_t seq0,
                     struct cove_err **err)
{
        cleanup_free char *buf = xmalloc(MNL_SOCKET_BUFFER_SIZE);
        size_t acked = 0;
        int first = 0;

        while (acked < b->n_ops) {
                ssize_t len = mnl_socket_recvfrom(n->sock, buf, MNL_SOCKET_BUFFER_SIZE);
                struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
                int rem;

                if (len < 0) {
                        if (errno == EINTR)
                                continue;
                        return cove_err_set(err, errno == EAGAIN ? ETIMEDOUT : errno,
                                            "nftables: read the kernel's answer: %m");
                }
                rem = (int)len;
                for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
                        const struct nlmsgerr *e;
                        uint32_t i;

                        if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != n->portid)
                                continue;
                        e = mnl_nlmsg_get_payload(nlh);
                        if (nlh->nlmsg_seq == seq0) /* the batch itself was refused */
                                return cove_err_set(err, -e->error, "nftables: batch: %m");
                        i = nlh->nlmsg_seq - seq0 - 1;
                        if (i >= b->n_ops)
                                continue; /* a stale answer */
                        acked++;
                        if (e->error && !first)
                                first = cove_err_set(err, -e->error, "nftables: %s: %m",
                                                     b->what[i]);
                }
        }
        return first;
}

int net_nftnl_commit(struct net_nftnl *n, struct net_nftnl_batch *b, struct cove_err **err)
{
        struct nlmsghdr *nlh;
        uint32_t seq0, seq;
        size_t off;
        int r;

        if (b->error) {
                r = cove_err_set(err, -b->error, "nftables: batch of %zu operations: %m", b->n_ops);
                batch_reset(b);
                return r;
        }
        if (b->n_ops == 0)
                return 0;
        if (!reserve(b, MNL_NLMSG_HDRLEN + 64)) {
                r = cove_err_set(err, E2BIG, "nftables: batch of %zu operations: %m", b->n_ops);
                batch_reset(b);
                return r;
        }
        b->len += NLMSG_ALIGN(nftnl_batch_end(b->buf + b->len, 0)->nlmsg_len);

        (void)pthread_mutex_lock(&n->lock);
        seq0 = n->seq;
        n->seq += (uint32_t)b->n_ops + 2;
        /* number the messages: begin, operations, end */
        seq = seq0;
        for (off = 0; off < b->len; off += NLMSG_ALIGN(nlh->nlmsg_len)) {
                nlh = (struct nlmsghdr *)(b->buf + off);
                nlh->nlmsg_seq = seq++;
        }
        if (mnl_socket_sendto(n->sock, b->buf, b->len) < 0)
                r = cove_err_set(err, errno, "nftables: send a batch of %zu operations: %m",
                                 b->n_ops);
        else
                r = read_acks(n, b, seq0, err);
        (void)pthread_mutex_unlock(&n->lock);
        batch_reset(b);
        return r;
}
