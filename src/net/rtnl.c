/* SPDX-License-Identifier: MIT */
#include "net/rtnl.h"
#include "lib/macro.h"
#include "net/netns.h"

#include <libmnl/libmnl.h>
#include <net/if.h> /* before the linux/ headers, which then skip their copies */
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netinet/in.h>
#include <time.h>

/* Dumps arrive in messages of up to 32 KiB (MNL_SOCKET_DUMP_SIZE); requests are far smaller. */
#define RTNL_BUF_SIZE 32768

struct rtnl {
        struct mnl_socket *sock;
        unsigned portid;
        unsigned seq;
        char buf[RTNL_BUF_SIZE];
};

int rtnl_open(int netns_fd, struct rtnl **ret, struct cove_err **err)
{
        struct rtnl *nl;
        int fd;

        fd = netns_socket(netns_fd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
        if (fd < 0)
                return cove_err_set(err, -fd, "open rtnetlink socket: %m");
        nl = xzalloc(sizeof(*nl));
        nl->sock = mnl_socket_fdopen(fd);
        if (!nl->sock) {
                int saved = errno;
                (void)close(fd);
                free(nl);
                return cove_err_set(err, saved, "open rtnetlink socket: %m");
        }
        if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
                int saved = errno;
                rtnl_close(nl);
                return cove_err_set(err, saved, "bind rtnetlink socket: %m");
        }
        nl->portid = mnl_socket_get_portid(nl->sock);
        nl->seq = (unsigned)time(NULL);
        *ret = nl;
        return 0;
}

void rtnl_close(struct rtnl *nl)
{
        if (!nl)
                return;
        if (nl->sock)
                (void)mnl_socket_close(nl->sock);
        free(nl);
}

/* Sends one request and reads until its ACK (or the end of a dump). 0 or -errno. */
static int rtnl_talk(struct rtnl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *ud)
{
        /* NLM_F_DUMP shares bits with NLM_F_EXCL: only a GET request (type % 4 == 2) dumps. */
        bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP && (nlh->nlmsg_type & 3) == 2;

        nlh->nlmsg_seq = ++nl->seq;
        nlh->nlmsg_flags |= NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK);
        if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
                return -errno;
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
                int r;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                r = mnl_cb_run(nl->buf, (size_t)n, nl->seq, nl->portid, cb, ud);
                if (r < 0)
                        return errno ? -errno : -EIO;
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

/* Starts a request of type with flags in buf (rtnl_talk() adds NLM_F_REQUEST and the ACK) and
 * appends its family header of hdr_len bytes, zeroed: returned in *ret_hdr. */
static struct nlmsghdr *put_request(char *buf, uint16_t type, uint16_t flags, size_t hdr_len,
                                    void **ret_hdr)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = flags;
        *ret_hdr = mnl_nlmsg_put_extra_header(nlh, hdr_len);
        return nlh;
}

static struct nlmsghdr *put_link_header(char *buf, uint16_t type, uint16_t flags, int ifindex)
{
        struct ifinfomsg *ifm;
        struct nlmsghdr *nlh = put_request(buf, type, flags, sizeof(*ifm), (void **)&ifm);

        ifm->ifi_family = AF_UNSPEC;
        ifm->ifi_index = ifindex;
        return nlh;
}

static int link_index_cb(const struct nlmsghdr *nlh, void *ud)
{
        const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

        *(int *)ud = ifm->ifi_index;
        return MNL_CB_OK;
}

int rtnl_link_index(struct rtnl *nl, const char *name)
{
        char buf[512];
        struct nlmsghdr *nlh;
        int index = 0;

        if (strlen(name) >= IFNAMSIZ)
                return -ENODEV;
        nlh = put_link_header(buf, RTM_GETLINK, 0, 0);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        /* The answer is one RTM_NEWLINK; its ifinfomsg carries the index. */
        int r = rtnl_talk(nl, nlh, link_index_cb, &index);
        if (r == -ENODEV || (r == 0 && index <= 0))
                return -ENODEV;
        return r < 0 ? r : index;
}

struct counters_ctx {
        struct rtnl_link_counters *out;
        bool found;
};

static int counters_attr_cb(const struct nlattr *attr, void *data)
{
        struct counters_ctx *c = data;
        if (mnl_attr_get_type(attr) != IFLA_STATS64 ||
            mnl_attr_get_payload_len(attr) < sizeof(struct rtnl_link_stats64))
                return MNL_CB_OK;
        struct rtnl_link_stats64 st;
        memcpy(&st, mnl_attr_get_payload(attr), sizeof(st)); /* attributes are 4-byte aligned */
        *c->out = (struct rtnl_link_counters){
                .rx_bytes = st.rx_bytes,
                .tx_bytes = st.tx_bytes,
                .rx_packets = st.rx_packets,
                .tx_packets = st.tx_packets,
                .rx_errors = st.rx_errors,
                .tx_errors = st.tx_errors,
                .rx_dropped = st.rx_dropped,
                .tx_dropped = st.tx_dropped,
        };
        c->found = true;
        return MNL_CB_OK;
}

static int link_counters_cb(const struct nlmsghdr *nlh, void *ud)
{
        return mnl_attr_parse(nlh, sizeof(struct ifinfomsg), counters_attr_cb, ud) < 0
                       ? MNL_CB_ERROR
                       : MNL_CB_OK;
}

int rtnl_link_counters(struct rtnl *nl, int ifindex, struct rtnl_link_counters *ret)
{
        char buf[512];
        struct counters_ctx c = { ret, false };
        struct nlmsghdr *nlh = put_link_header(buf, RTM_GETLINK, 0, ifindex);
        int r = rtnl_talk(nl, nlh, link_counters_cb, &c);
        if (r < 0)
                return r == -EINVAL ? -ENODEV : r;
        return c.found ? 0 : -ENODATA;
}

int rtnl_veth_create(struct rtnl *nl, const char *name, const char *peer, int peer_netns_fd,
                     unsigned mtu, struct cove_err **err)
{
        char buf[1024];
        struct nlmsghdr *nlh = put_link_header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
        struct nlattr *linkinfo, *data, *peerinfo;
        struct ifinfomsg *pifm;
        int r;

        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        if (mtu)
                mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
        linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
        data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        peerinfo = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
        pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
        pifm->ifi_family = AF_UNSPEC;
        mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
        if (mtu)
                mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
        if (peer_netns_fd >= 0)
                mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
        mnl_attr_nest_end(nlh, peerinfo);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, linkinfo);
        r = rtnl_talk(nl, nlh, NULL, NULL);
        if (r < 0)
                return cove_err_set(err, -r, "create veth '%s' (peer '%s'): %m", name, peer);
        return 0;
}

int rtnl_bridge_create(struct rtnl *nl, const char *name, struct cove_err **err)
{
        char buf[512];
        struct nlmsghdr *nlh = put_link_header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
        struct nlattr *linkinfo, *data;
        int r;

        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
        data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        /* No ports ever join: no multicast snooping queries, no STP. */
        mnl_attr_put_u8(nlh, IFLA_BR_MCAST_SNOOPING, 0);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, linkinfo);
        r = rtnl_talk(nl, nlh, NULL, NULL);
        if (r < 0)
                return cove_err_set(err, -r, "create bridge '%s': %m", name);
        return 0;
}

int rtnl_link_set_alias(struct rtnl *nl, int ifindex, const char *alias, struct cove_err **err)
{
        char buf[512];
        struct nlmsghdr *nlh = put_link_header(buf, RTM_NEWLINK, 0, ifindex);
        int r;

        mnl_attr_put_str(nlh, IFLA_IFALIAS, alias);
        r = rtnl_talk(nl, nlh, NULL, NULL);
        if (r < 0)
                return cove_err_set(err, -r, "set alias of link %d: %m", ifindex);
        return 0;
}

int rtnl_link_set_up(struct rtnl *nl, int ifindex, struct cove_err **err)
{
        char buf[256];
        struct nlmsghdr *nlh = put_link_header(buf, RTM_NEWLINK, 0, ifindex);
        struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
        int r;

        ifm->ifi_flags = IFF_UP;
        ifm->ifi_change = IFF_UP;
        r = rtnl_talk(nl, nlh, NULL, NULL);
        if (r < 0)
                return cove_err_set(err, -r, "set link %d up: %m", ifindex);
        return 0;
}

int rtnl_link_set_forwarding4(struct rtnl *nl, int ifindex, bool on, struct cove_err **err)
{
        char buf[256];
        struct nlmsghdr *nlh = put_link_header(buf, RTM_NEWLINK, 0, ifindex);
        struct nlattr *spec, *inet, *conf;
        int r;

        spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
        inet = mnl_attr_nest_start(nlh, AF_INET);
        conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
        mnl_attr_put_u32(nlh, IPV4_DEVCONF_FORWARDING, on ? 1 : 0);
        mnl_attr_nest_end(nlh, conf);
        mnl_attr_nest_end(nlh, inet);
        mnl_attr_nest_end(nlh, spec);
        r = rtnl_talk(nl, nlh, NULL, NULL);
        if (r < 0)
                return cove_err_set(err, -r, "set IPv4 forwarding of link %d: %m", ifindex);
        return 0;
}

int rtnl_link_del(struct rtnl *nl, int ifindex, struct cove_err **err)
{
        char buf[256];
        struct nlmsghdr *nlh = put_link_header(buf, RTM_DELLINK, 0, ifindex);
        int r = rtnl_talk(nl, nlh, NULL, NULL);

        if (r == -ENODEV)
                return -ENODEV;
        if (r < 0)
                return cove_err_set(err, -r, "delete link %d: %m", ifindex);
        return 0;
}

int rtnl_addr_add(struct rtnl *nl, int ifindex, const struct net_addr *a, unsigned prefix,
                  unsigned flags, struct cove_err **err)
{
        char buf[256], s[NET_ADDR_STR_MAX];
        struct ifaddrmsg *ifa;
        struct nlmsghdr *nlh = put_request(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE,
                                           sizeof(*ifa), (void **)&ifa);
        size_t len = net_family_len(a->family);
        int r;

        ifa->ifa_family = a->family;
        ifa->ifa_prefixlen = (uint8_t)prefix;
        ifa->ifa_index = (unsigned)ifindex;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        if (a->family == AF_INET6 && a->bytes[0] == 0xfe && (a->bytes[1] & 0xc0) == 0x80)
                ifa->ifa_scope = RT_SCOPE_LINK;
        mnl_attr_put(nlh, IFA_LOCAL, len, a->bytes);
        mnl_attr_put(nlh, IFA_ADDRESS, len, a->bytes);
        if (flags & RTNL_ADDR_NODAD)
                mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
        r = rtnl_talk(nl, nlh, NULL, NULL);
        if (r < 0 && r != -EEXIST)
                return cove_err_set(err, -r, "add address %s/%u to link %d: %m",
                                    net_addr_format(a, s), prefix, ifindex);
        return 0;
}

int rtnl_route_add(struct rtnl *nl, const struct rtnl_route *rt, struct cove_err **err)
{
        char buf[512], s[NET_CIDR_STR_MAX];
        struct rtmsg *rtm;
        struct nlmsghdr *nlh = put_request(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE,
                                           sizeof(*rtm), (void **)&rtm);
        int family = rt->dst.addr.family;
        size_t len = net_family_len(family);
        int r;

        rtm->rtm_family = (uint8_t)family;
        rtm->rtm_dst_len = rt->dst.prefix;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_STATIC;
        rtm->rtm_scope = rt->scope_link ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
        rtm->rtm_type = RTN_UNICAST;
        if (rt->dst.prefix > 0)
                mnl_attr_put(nlh, RTA_DST, len, rt->dst.addr.bytes);
        if (rt->gateway)
                mnl_attr_put(nlh, RTA_GATEWAY, net_family_len(rt->gateway->family),
                             rt->gateway->bytes);
        if (rt->prefsrc)
                mnl_attr_put(nlh, RTA_PREFSRC, net_family_len(rt->prefsrc->family),
                             rt->prefsrc->bytes);
        mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)rt->ifindex);
        r = rtnl_talk(nl, nlh, NULL, NULL);
        if (r < 0 && r != -EEXIST)
                return cove_err_set(err, -r, "add route %s via link %d: %m",
                                    net_cidr_format(&rt->dst, s), rt->ifindex);
        return 0;
}

/* ---- dumps ---- */

struct link_dump {
        int (*cb)(const struct rtnl_link_info *l, void *ud);
        void *ud;
        int result;
};

/* What a dump returns: the caller's callback's refusal, else the request's failure. */
static int dump_finish(int talk_r, int cb_result, const char *what, struct cove_err **err)
{
        if (cb_result < 0)
                return cb_result;
        if (talk_r < 0)
                return cove_err_set(err, -talk_r, "list %s: %m", what);
        return 0;
}

/* mnl_attr_parse() callback filling tb[0..max] (a table of max + 1 entries) by type; attributes
 * of types beyond max are skipped. */
struct attr_table {
        const struct nlattr **tb;
        uint16_t max;
};

static int attr_table_cb(const struct nlattr *attr, void *data)
{
        const struct attr_table *t = data;

        if (mnl_attr_type_valid(attr, t->max) < 0)
                return MNL_CB_OK;
        t->tb[mnl_attr_get_type(attr)] = attr;
        return MNL_CB_OK;
}

/* A string attribute, only when NUL-terminated within its payload. */
static const char *attr_str(const struct nlattr *a)
{
        uint16_t n;
        const char *s;

        if (!a)
                return NULL;
        n = mnl_attr_get_payload_len(a);
        s = mnl_attr_get_payload(a);
        return n > 0 && memchr(s, '\0', n) ? s : NULL;
}

static int link_dump_cb(const struct nlmsghdr *nlh, void *data)
{
        struct link_dump *d = data;
        const struct nlattr *tb[IFLA_MAX + 1] = { 0 }, *info[IFLA_INFO_MAX + 1] = { 0 };
        const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
        struct rtnl_link_info l = { .ifindex = ifm->ifi_index };
        struct attr_table links = { tb, IFLA_MAX }, infos = { info, IFLA_INFO_MAX };

        if (mnl_attr_parse(nlh, sizeof(*ifm), attr_table_cb, &links) < 0)
                return MNL_CB_OK;
        l.name = attr_str(tb[IFLA_IFNAME]);
        l.alias = attr_str(tb[IFLA_IFALIAS]);
        if (tb[IFLA_MTU] && mnl_attr_get_payload_len(tb[IFLA_MTU]) == 4)
                l.mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
        if (tb[IFLA_LINKINFO] &&
            mnl_attr_parse_nested(tb[IFLA_LINKINFO], attr_table_cb, &infos) >= 0)
                l.kind = attr_str(info[IFLA_INFO_KIND]);
        if (!l.name)
                return MNL_CB_OK;
        d->result = d->cb(&l, d->ud);
        return d->result < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int rtnl_link_dump(struct rtnl *nl, int (*cb)(const struct rtnl_link_info *l, void *ud), void *ud,
                   struct cove_err **err)
{
        char buf[256];
        struct nlmsghdr *nlh = put_link_header(buf, RTM_GETLINK, NLM_F_DUMP, 0);
        struct link_dump d = { .cb = cb, .ud = ud };

        return dump_finish(rtnl_talk(nl, nlh, link_dump_cb, &d), d.result, "links", err);
}

struct route_dump {
        int (*cb)(const struct rtnl_route_info *r, void *ud);
        void *ud;
        int result;
};

static int route_dump_cb(const struct nlmsghdr *nlh, void *data)
{
        struct route_dump *d = data;
        const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
        const struct nlattr *tb[RTA_MAX + 1] = { 0 };
        struct attr_table routes = { tb, RTA_MAX };
        struct rtnl_route_info ri = { 0 };
        size_t len = net_family_len(rtm->rtm_family);
        uint32_t table;

        if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6)
                return MNL_CB_OK;
        if (mnl_attr_parse(nlh, sizeof(*rtm), attr_table_cb, &routes) < 0)
                return MNL_CB_OK;
        table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
        if (table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST)
                return MNL_CB_OK;
        ri.dst.addr.family = rtm->rtm_family;
        ri.dst.prefix = rtm->rtm_dst_len;
        if (tb[RTA_DST] && mnl_attr_get_payload_len(tb[RTA_DST]) == len)
                memcpy(ri.dst.addr.bytes, mnl_attr_get_payload(tb[RTA_DST]), len);
        if (tb[RTA_OIF])
                ri.ifindex = (int)mnl_attr_get_u32(tb[RTA_OIF]);
        ri.has_gateway = tb[RTA_GATEWAY] || tb[RTA_MULTIPATH];
        d->result = d->cb(&ri, d->ud);
        return d->result < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int rtnl_route_dump(struct rtnl *nl, int family,
                    int (*cb)(const struct rtnl_route_info *r, void *ud), void *ud,
                    struct cove_err **err)
{
        char buf[256];
        struct rtmsg *rtm;
        struct nlmsghdr *nlh =
                put_request(buf, RTM_GETROUTE, NLM_F_DUMP, sizeof(*rtm), (void **)&rtm);
        struct route_dump d = { .cb = cb, .ud = ud };

        rtm->rtm_family = (uint8_t)family;
        return dump_finish(rtnl_talk(nl, nlh, route_dump_cb, &d), d.result, "routes", err);
}
