/* SPDX-License-Identifier: MIT */
/* Unit tests of src/net's pure modules: addresses and CIDRs, domain patterns, the rule model
 * and its two faces, the pool, the nftables text. */
#include "tap.h"

#include "lib/buf.h"
#include "lib/macro.h"
#include "net/addr.h"
#include "net/dns.h"
#include "net/dnsmsg.h"
#include "net/domain.h"
#include "net/policy.h"
#include "net/pool.h"
#include "net/ruleset.h"

#include <netinet/in.h>

static const char *cidr_str(const char *in, unsigned families)
{
        static char out[NET_CIDR_STR_MAX];
        struct net_cidr c;

        if (net_cidr_parse(in, families, &c) < 0)
                return "ERR";
        return net_cidr_format(&c, out);
}

static void test_cidr_normalises(void)
{
        ASSERT_STREQ(cidr_str("10.1.2.3/8", NET_FAMILY_ANY), "10.0.0.0/8");
        ASSERT_STREQ(cidr_str("10.1.2.3", NET_FAMILY_ANY), "10.1.2.3/32");
        ASSERT_STREQ(cidr_str("0.0.0.0/0", NET_FAMILY_ANY), "0.0.0.0/0");
        ASSERT_STREQ(cidr_str("192.168.1.129/25", NET_FAMILY_ANY), "192.168.1.128/25");
        ASSERT_STREQ(cidr_str("2001:DB8::1/32", NET_FAMILY_ANY), "2001:db8::/32");
        ASSERT_STREQ(cidr_str("2001:db8::1", NET_FAMILY_ANY), "2001:db8::1/128");
        ASSERT_STREQ(cidr_str("2001:db8:ffff::/33", NET_FAMILY_ANY), "2001:db8:8000::/33");
        ASSERT_STREQ(cidr_str("::/0", NET_FAMILY_ANY), "::/0");
}

static void test_cidr_rejects(void)
{
        static const char *const bad[] = {
                "",
                "/8",
                "10.0.0.0/",
                "10.0.0.0/33",
                "10.0.0.0/-1",
                "10.0.0.0/+8",
                "10.0.0.0/08",
                "10.0.0.0/8 ",
                " 10.0.0.0/8",
                "10.0.0",
                "10.0.0.256",
                "010.0.0.1",
                "10.0.0.0/8/8",
                "2001:db8::/129",
                "fe80::1%eth0",
                "1.2.3.4.5",
                "example.com",
                "10.0.0.0/0x8",
                "2001:db8:::1",
        };
        struct net_cidr c;

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (net_cidr_parse(bad[i], NET_FAMILY_ANY, &c) != -EINVAL)
                        TAP_FAIL("accepted '%s'", bad[i]);
        ASSERT_EQ(net_cidr_parse("2001:db8::/32", NET_FAMILY_V4, &c), -EAFNOSUPPORT);
        ASSERT_EQ(net_cidr_parse("::1", NET_FAMILY_V4, &c), -EAFNOSUPPORT);
        ASSERT_EQ(net_cidr_parse("1.2.3.4", NET_FAMILY_V6, &c), -EAFNOSUPPORT);
        ASSERT_EQ(net_cidr_parse(NULL, NET_FAMILY_ANY, &c), -EINVAL);
}

static void test_cidr_contains_and_merge(void)
{
        struct net_cidr a, b, in[5];
        struct net_addr x;
        cleanup_free struct net_cidr *m = NULL;
        size_t n;
        char s[NET_CIDR_STR_MAX];

        ASSERT_EQ(net_cidr_parse("10.0.0.0/8", NET_FAMILY_ANY, &a), 0);
        ASSERT_EQ(net_addr_parse("10.255.1.1", NET_FAMILY_ANY, &x), 0);
        ASSERT_TRUE(net_cidr_contains(&a, &x));
        ASSERT_EQ(net_addr_parse("11.0.0.1", NET_FAMILY_ANY, &x), 0);
        ASSERT_TRUE(!net_cidr_contains(&a, &x));
        ASSERT_EQ(net_addr_parse("::ffff:10.0.0.1", NET_FAMILY_ANY, &x), 0);
        ASSERT_TRUE(!net_cidr_contains(&a, &x)); /* another family */
        ASSERT_EQ(net_cidr_parse("10.1.0.0/16", NET_FAMILY_ANY, &b), 0);
        ASSERT_TRUE(net_cidr_covers(&a, &b));
        ASSERT_TRUE(!net_cidr_covers(&b, &a));
        ASSERT_TRUE(net_cidr_overlaps(&b, &a));

        ASSERT_EQ(net_cidr_parse("10.1.0.0/16", NET_FAMILY_ANY, &in[0]), 0);
        ASSERT_EQ(net_cidr_parse("192.0.2.1", NET_FAMILY_ANY, &in[1]), 0);
        ASSERT_EQ(net_cidr_parse("10.0.0.0/8", NET_FAMILY_ANY, &in[2]), 0);
        ASSERT_EQ(net_cidr_parse("2001:db8::/32", NET_FAMILY_ANY, &in[3]), 0);
        ASSERT_EQ(net_cidr_parse("192.0.2.1/32", NET_FAMILY_ANY, &in[4]), 0);
        ASSERT_EQ(net_cidr_list_merge(in, 5, AF_INET, &m, &n), 0);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(net_cidr_format(&m[0], s), "10.0.0.0/8");
        ASSERT_STREQ(net_cidr_format(&m[1], s), "192.0.2.1/32");
}

static void test_cidr_arithmetic(void)
{
        struct net_cidr c;
        struct net_addr a;
        uint64_t off;
        char s[NET_ADDR_STR_MAX];

        ASSERT_EQ(net_cidr_parse("10.203.0.0/16", NET_FAMILY_ANY, &c), 0);
        ASSERT_EQ(net_cidr_nth(&c, 258, &a), 0);
        ASSERT_STREQ(net_addr_format(&a, s), "10.203.1.2");
        ASSERT_EQ(net_cidr_offset(&c, &a, &off), 0);
        ASSERT_EQ(off, 258);
        ASSERT_EQ(net_cidr_nth(&c, 65536, &a), -ERANGE);
        ASSERT_EQ(net_cidr_parse("fd63:6f76:6500::/64", NET_FAMILY_ANY, &c), 0);
        ASSERT_EQ(net_cidr_nth(&c, 0x1ff, &a), 0);
        ASSERT_STREQ(net_addr_format(&a, s), "fd63:6f76:6500::1ff");
        ASSERT_EQ(net_cidr_offset(&c, &a, &off), 0);
        ASSERT_EQ(off, 0x1ff);
        ASSERT_EQ(net_addr_parse("fd63:6f76:6501::1", NET_FAMILY_ANY, &a), 0);
        ASSERT_EQ(net_cidr_offset(&c, &a, &off), -ERANGE);
}

static void test_domain_patterns(void)
{
        struct net_domain d;
        char s[NET_DOMAIN_MAX + 3];
        char long_label[80], long_name[300];

        ASSERT_EQ(net_domain_parse("Example.COM", 0, &d), 0);
        ASSERT_STREQ(d.name, "example.com");
        ASSERT_EQ(d.kind, NET_DOMAIN_EXACT);
        ASSERT_EQ(net_domain_parse("*.example.com", NET_DOMAIN_ALLOW_WILDCARD, &d), 0);
        ASSERT_EQ(d.kind, NET_DOMAIN_BELOW);
        ASSERT_STREQ(net_domain_format(&d, s), "*.example.com");
        ASSERT_EQ(net_domain_parse("localhost", 0, &d), 0);
        ASSERT_EQ(net_domain_parse("a-b.c0", 0, &d), 0);

        static const char *const bad[] = {
                "",
                ".",
                "example.com.",
                ".example.com",
                "a..b",
                "exa mple.com",
                "ex_ample.com",
                "*.example.com",
                "*example.com",
                "**.example.com",
                "ex*.com",
                "1.2.3.4",
                "1.2.3.400",
                "example.123",
                "é.com",
                "a/b",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (net_domain_parse(bad[i], 0, &d) != -EINVAL)
                        TAP_FAIL("accepted '%s'", bad[i]);
        ASSERT_EQ(net_domain_parse("*.", NET_DOMAIN_ALLOW_WILDCARD, &d), -EINVAL);
        ASSERT_EQ(net_domain_parse("*.*.a.com", NET_DOMAIN_ALLOW_WILDCARD, &d), -EINVAL);

        memset(long_label, 'a', 64);
        long_label[64] = '\0';
        ASSERT_EQ(net_domain_parse(long_label, 0, &d), -EINVAL);
        long_label[63] = '\0';
        ASSERT_EQ(net_domain_parse(long_label, 0, &d), 0);
        /* 253 bytes: ok; 254: too long */
        memset(long_name, 'a', 253);
        for (size_t i = 50; i < 253; i += 51)
                long_name[i] = '.';
        long_name[253] = '\0';
        ASSERT_EQ(net_domain_parse(long_name, 0, &d), 0);
        long_name[253] = 'a';
        long_name[254] = '\0';
        ASSERT_EQ(net_domain_parse(long_name, 0, &d), -EINVAL);
}

static bool match(const char *pattern, const char *name)
{
        struct net_domain d;

        if (net_domain_parse(pattern, NET_DOMAIN_ALLOW_WILDCARD, &d) < 0)
                TAP_FAIL("pattern '%s'", pattern);
        return net_domain_match(&d, name, strlen(name));
}

static void test_domain_match(void)
{
        ASSERT_TRUE(match("example.com", "example.com"));
        ASSERT_TRUE(match("example.com", "EXAMPLE.com."));
        ASSERT_TRUE(!match("example.com", "www.example.com"));
        ASSERT_TRUE(match("*.example.com", "www.example.com"));
        ASSERT_TRUE(match("*.example.com", "a.b.example.com."));
        ASSERT_TRUE(!match("*.example.com", "example.com"));
        ASSERT_TRUE(!match("*.example.com", "badexample.com"));
        ASSERT_TRUE(!match("*.example.com", "wwwexample.com"));
        ASSERT_TRUE(!match("*.example.com", ".example.com"));
        ASSERT_TRUE(!match("example.com", "example.co"));
        ASSERT_TRUE(!match("example.com", ""));
}

/* ---- policy ---- */

static json_t *J(const char *text)
{
        json_error_t e;
        json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);
        if (!j)
                TAP_FAIL("bad test JSON: %s", e.text);
        return j;
}

static char *dump(json_t *j)
{
        static char out[4096];
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

        (void)snprintf(out, sizeof(out), "%s", s ? s : "(null)");
        free(s);
        json_decref(j);
        return out;
}

/* SeaCloud request over base (NULL) → its SeaCloud view, or "ERR: message". */
static const char *seacloud(const char *req)
{
        static char out[4096];
        struct net_policy p;
        struct cove_err *err = NULL;
        json_t *r = J(req);
        int rc = net_policy_from_seacloud(r, NULL, &p, &err);

        json_decref(r);
        if (rc < 0) {
                (void)snprintf(out, sizeof(out), "ERR: %s", err->msg);
                cove_err_free(&err);
                return out;
        }
        (void)snprintf(out, sizeof(out), "%s", dump(net_policy_to_seacloud(&p)));
        net_policy_done(&p);
        return out;
}

static void test_seacloud_front_end(void)
{
        ASSERT_STREQ(seacloud("{}"),
                     "{\"allowInternetAccess\":true,\"allowOut\":[],\"denyOut\":[]}");
        ASSERT_STREQ(seacloud("{\"allowInternetAccess\":false,\"allowOut\":[\"10.1.2.3/"
                              "8\",\"*.Example.com\",\"1.1.1.1\",\"pypi.org\"]}"),
                     "{\"allowInternetAccess\":false,\"allowOut\":[\"10.0.0.0/8\",\"1.1.1.1/32\","
                     "\"*.example.com\",\"pypi.org\"],\"denyOut\":[]}");
        ASSERT_STREQ(seacloud("{\"allowOut\":[\"::1\"]}"),
                     "ERR: field 'network.allowOut[0]': '::1' is IPv6, which network.allowOut does "
                     "not take (IPv4 addresses, CIDRs and domain patterns only)");
        ASSERT_STREQ(seacloud("{\"denyOut\":[\"0.0.0.0/0\", \"10.0.0.0/33\"]}"),
                     "ERR: field 'network.denyOut[1]': '10.0.0.0/33' is not a valid CIDR "
                     "(address/prefix length)");
        ASSERT_STREQ(seacloud("{\"denyOut\":[\"ex ample\"]}"),
                     "ERR: field 'network.denyOut[0]': 'ex ample' is not an IPv4 address, IPv4 "
                     "CIDR or domain pattern ('example.com' or '*.example.com')");
        ASSERT_STREQ(seacloud("{\"denyOut\":[\"1.2.3.400\"]}"),
                     "ERR: field 'network.denyOut[0]': '1.2.3.400' is not an IPv4 address, IPv4 "
                     "CIDR or domain pattern ('example.com' or '*.example.com')");
        ASSERT_STREQ(seacloud("{\"denyOut\":[1]}"),
                     "ERR: field 'network.denyOut[0]' must be a string");
        ASSERT_STREQ(seacloud("{\"denyOut\":\"1.2.3.4\"}"),
                     "ERR: field 'network.denyOut' must be an array");
        ASSERT_STREQ(seacloud("{\"allowInternetAccess\":\"no\"}"),
                     "ERR: field 'network.allowInternetAccess' must be a boolean");
        ASSERT_STREQ(seacloud("[]"), "ERR: field 'network' must be an object");
        ASSERT_STREQ(seacloud("{\"denyOut\":[\"a\\u0000b\"]}"),
                     "ERR: field 'network.denyOut[0]' must not contain NUL bytes");

        /* 256 entries are fine, 257 are not */
        json_t *list = json_array();
        for (int i = 0; i < 257; i++)
                json_array_append_new(list, json_sprintf("10.0.%d.%d", i / 256, i % 256));
        json_t *req = json_pack("{s:o}", "denyOut", list);
        struct net_policy p;
        struct cove_err *err = NULL;
        ASSERT_EQ(net_policy_from_seacloud(req, NULL, &p, &err), -EINVAL);
        ASSERT_STREQ(err->msg, "field 'network.denyOut' has more than 256 entries");
        cove_err_free(&err);
        json_array_remove(list, 0);
        ASSERT_EQ(net_policy_from_seacloud(req, NULL, &p, &err), 0);
        ASSERT_EQ(p.deny.n_cidrs, 256);
        net_policy_done(&p);
        json_decref(req);
}

static void test_seacloud_partial_update(void)
{
        struct net_policy base, p;
        struct cove_err *err = NULL;
        json_t *r1 = J("{\"allowInternetAccess\":false,\"allowOut\":[\"1.1.1.1\"],\"denyOut\":[\"2."
                       "2.2.2\"]}");
        json_t *r2 = J("{\"denyOut\":[]}");

        ASSERT_EQ(net_policy_from_seacloud(r1, NULL, &base, &err), 0);
        ASSERT_EQ(net_policy_from_seacloud(r2, &base, &p, &err), 0);
        ASSERT_STREQ(
                dump(net_policy_to_seacloud(&p)),
                "{\"allowInternetAccess\":false,\"allowOut\":[\"1.1.1.1/32\"],\"denyOut\":[]}");
        net_policy_done(&p);
        ASSERT_EQ(net_policy_from_seacloud(NULL, &base, &p, &err), 0);
        ASSERT_TRUE(net_policy_equal(&p, &base));
        net_policy_done(&p);
        net_policy_done(&base);
        json_decref(r1);
        json_decref(r2);
}

static const char *v1(const char *req)
{
        static char out[4096];
        struct net_policy p;
        struct cove_err *err = NULL;
        json_t *r = J(req);
        int rc = net_policy_from_v1(r, "egress", &p, &err);

        json_decref(r);
        if (rc < 0) {
                (void)snprintf(out, sizeof(out), "ERR: %s", err->msg);
                cove_err_free(&err);
                return out;
        }
        (void)snprintf(out, sizeof(out), "%s", dump(net_policy_to_v1(&p)));
        net_policy_done(&p);
        return out;
}

static void test_v1_front_end(void)
{
        ASSERT_STREQ(
                v1("{\"mode\":\"allow_all\"}"),
                "{\"allow_cidrs\":[],\"allow_domains\":[],\"allow_ports\":[],\"deny_cidrs\":[],"
                "\"deny_domains\":[],\"mode\":\"allow_all\"}");
        ASSERT_STREQ(v1("{\"mode\":\"deny_all\",\"allow_cidrs\":[\"2001:DB8::1/48\",\"198.51.100.7/"
                        "24\"],"
                        "\"allow_ports\":[443,22,443],\"allow_domains\":[\"PyPI.org\"],"
                        "\"deny_domains\":[\"evil.example\"],\"deny_cidrs\":[\"198.51.100.66\"]}"),
                     "{\"allow_cidrs\":[\"2001:db8::/48\",\"198.51.100.0/"
                     "24\"],\"allow_domains\":[\"pypi.org\"],"
                     "\"allow_ports\":[443,22],\"deny_cidrs\":[\"198.51.100.66/32\"],"
                     "\"deny_domains\":[\"evil.example\"],\"mode\":\"deny_all\"}");
        ASSERT_STREQ(v1("{}"), "ERR: field 'egress.mode' is required (allow_all or deny_all)");
        ASSERT_STREQ(v1("{\"mode\":\"block\"}"),
                     "ERR: field 'egress.mode' must be allow_all or deny_all");
        ASSERT_STREQ(v1("{\"mode\":\"allow_all\",\"allow_cidrs\":[\"1.1.1.1\"]}"),
                     "ERR: field 'egress.allow_cidrs' is only valid with mode deny_all");
        ASSERT_STREQ(v1("{\"mode\":\"allow_all\",\"allow_domains\":[\"a.com\"]}"),
                     "ERR: field 'egress.allow_domains' is only valid with mode deny_all");
        ASSERT_STREQ(
                v1("{\"mode\":\"allow_all\",\"allow_cidrs\":[]}"),
                "{\"allow_cidrs\":[],\"allow_domains\":[],\"allow_ports\":[],\"deny_cidrs\":[],"
                "\"deny_domains\":[],\"mode\":\"allow_all\"}");
        ASSERT_STREQ(v1("{\"mode\":\"deny_all\",\"allow_ports\":[80]}"),
                     "ERR: field 'egress.allow_ports' requires a non-empty egress.allow_cidrs");
        ASSERT_STREQ(
                v1("{\"mode\":\"deny_all\",\"allow_cidrs\":[\"1.1.1.1\"],\"allow_ports\":[0]}"),
                "ERR: field 'egress.allow_ports[0]' must be a port number from 1 to 65535");
        ASSERT_STREQ(
                v1("{\"mode\":\"deny_all\",\"allow_cidrs\":[\"1.1.1.1\"],\"allow_ports\":[65536]}"),
                "ERR: field 'egress.allow_ports[0]' must be a port number from 1 to 65535");
        ASSERT_STREQ(v1("{\"mode\":\"deny_all\",\"allow_domains\":[\"*.a.com\"]}"),
                     "ERR: field 'egress.allow_domains[0]': '*.a.com' is not a domain name (labels "
                     "of a-z, 0-9 and '-', at most 253 characters)");
        ASSERT_STREQ(v1("{\"mode\":\"deny_all\",\"allow_cidrs\":[\"a.com\"]}"),
                     "ERR: field 'egress.allow_cidrs[0]': 'a.com' is not an IPv4 or IPv6 address "
                     "or CIDR");
}

static void test_views_round_trip(void)
{
        struct net_policy p, q;
        struct cove_err *err = NULL;
        json_t *r =
                J("{\"mode\":\"deny_all\",\"allow_cidrs\":[\"2001:db8::/48\"],\"allow_ports\":[22],"
                  "\"allow_domains\":[\"a.com\"],\"deny_domains\":[\"b.a.com\"]}");
        json_t *view;

        ASSERT_EQ(net_policy_from_v1(r, "egress", &p, &err), 0);
        view = net_policy_to_v1(&p);
        ASSERT_EQ(net_policy_from_v1(view, "egress", &q, &err), 0);
        ASSERT_TRUE(net_policy_equal(&p, &q));
        net_policy_done(&q);
        json_decref(view);
        /* The SeaCloud view of a /v1 policy (v1-api.md §11): sites are `d` and `*.d`, and the
         * view of the stored object parses back, IPv6 included. */
        view = net_policy_to_seacloud(&p);
        ASSERT_STREQ(dump(json_incref(view)),
                     "{\"allowInternetAccess\":false,\"allowOut\":[\"2001:db8::/48\",\"a.com\","
                     "\"*.a.com\"],\"denyOut\":[\"b.a.com\",\"*.b.a.com\"]}");
        ASSERT_EQ(net_policy_from_seacloud_view(view, &q, &err), 0);
        ASSERT_EQ(q.order, NET_ORDER_ALLOW_FIRST);
        ASSERT_EQ(q.allow.n_cidrs, 1);
        ASSERT_EQ(q.allow.n_names, 2);
        net_policy_done(&q);
        ASSERT_EQ(net_policy_from_seacloud(view, NULL, &q, &err),
                  -EINVAL); /* the API refuses IPv6 */
        cove_err_free(&err);
        json_decref(view);
        json_decref(r);
        net_policy_done(&p);
        net_policy_done(&q);
        /* allow_all shows no allow entries (§5) */
        r = J("{\"allowOut\":[\"10.0.0.0/8\"]}");
        ASSERT_EQ(net_policy_from_seacloud(r, NULL, &p, &err), 0);
        ASSERT_STREQ(
                dump(net_policy_to_v1(&p)),
                "{\"allow_cidrs\":[],\"allow_domains\":[],\"allow_ports\":[],\"deny_cidrs\":[],"
                "\"deny_domains\":[],\"mode\":\"allow_all\"}");
        net_policy_done(&p);
        json_decref(r);
}

static enum net_verdict flow(const struct net_policy *p, uint8_t proto, const char *dst,
                             uint16_t port, bool learnt)
{
        struct net_addr a;
        if (net_addr_parse(dst, NET_FAMILY_ANY, &a) < 0)
                TAP_FAIL("bad address %s", dst);
        return net_policy_flow_verdict(p, proto, &a, port, learnt);
}

static void test_flow_verdicts(void)
{
        struct net_policy p;
        struct cove_err *err = NULL;
        json_t *r;

        /* SeaCloud: allowOut overrides denyOut; denyOut 0/0 + allowOut is an allow-list. */
        r = J("{\"allowOut\":[\"198.51.100.0/24\"],\"denyOut\":[\"0.0.0.0/0\"]}");
        ASSERT_EQ(net_policy_from_seacloud(r, NULL, &p, &err), 0);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "198.51.100.5", 22, false), NET_VERDICT_ACCEPT);
        ASSERT_EQ(flow(&p, IPPROTO_UDP, "198.51.100.5", 53, false), NET_VERDICT_ACCEPT);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "203.0.113.5", 80, false), NET_VERDICT_DENY);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "203.0.113.5", 443, true), NET_VERDICT_ACCEPT);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "203.0.113.5", 22, true), NET_VERDICT_DENY);
        ASSERT_EQ(flow(&p, IPPROTO_UDP, "203.0.113.5", 443, true), NET_VERDICT_DENY);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "2001:db8::1", 80, false), NET_VERDICT_ACCEPT);
        net_policy_done(&p);
        json_decref(r);

        /* /v1: deny before allow; allow_ports limits allow_cidrs to TCP. */
        r = J("{\"mode\":\"deny_all\",\"allow_cidrs\":[\"198.51.100.0/24\",\"2001:db8::/32\"],"
              "\"deny_cidrs\":[\"198.51.100.66\"],\"allow_ports\":[443]}");
        ASSERT_EQ(net_policy_from_v1(r, "egress", &p, &err), 0);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "198.51.100.5", 443, false), NET_VERDICT_ACCEPT);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "198.51.100.5", 80, false), NET_VERDICT_DENY);
        ASSERT_EQ(flow(&p, IPPROTO_ICMP, "198.51.100.5", 0, false), NET_VERDICT_DENY);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "198.51.100.66", 443, false), NET_VERDICT_DENY);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "198.51.100.66", 443, true), NET_VERDICT_DENY);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "2001:db8::5", 443, false), NET_VERDICT_ACCEPT);
        ASSERT_EQ(flow(&p, IPPROTO_TCP, "203.0.113.9", 80, true), NET_VERDICT_ACCEPT);
        net_policy_done(&p);
        json_decref(r);
}

static void test_name_verdicts(void)
{
        struct net_policy p;
        struct cove_err *err = NULL;
        json_t *r;
#define NAME(s) net_policy_name_verdict(&p, s, strlen(s))

        r = J("{\"allowInternetAccess\":false,\"allowOut\":[\"*.allowed.test\",\"exact.test\"],"
              "\"denyOut\":[\"bad.allowed.test\"]}");
        ASSERT_EQ(net_policy_from_seacloud(r, NULL, &p, &err), 0);
        ASSERT_EQ(NAME("www.allowed.test"), NET_NAME_ANSWER_LEARN);
        ASSERT_EQ(NAME("bad.allowed.test"), NET_NAME_ANSWER_LEARN); /* allowOut overrides */
        ASSERT_EQ(NAME("allowed.test"), NET_NAME_REFUSE);           /* not the apex */
        ASSERT_EQ(NAME("exact.test."), NET_NAME_ANSWER_LEARN);
        ASSERT_EQ(NAME("www.exact.test"), NET_NAME_REFUSE);
        ASSERT_EQ(NAME("other.test"), NET_NAME_REFUSE);
        net_policy_done(&p);
        json_decref(r);

        r = J("{\"denyOut\":[\"*.blocked.test\"]}");
        ASSERT_EQ(net_policy_from_seacloud(r, NULL, &p, &err), 0);
        ASSERT_EQ(NAME("a.blocked.test"), NET_NAME_REFUSE);
        ASSERT_EQ(NAME("blocked.test"), NET_NAME_ANSWER);
        ASSERT_EQ(NAME("other.test"), NET_NAME_ANSWER);
        net_policy_done(&p);
        json_decref(r);

        r = J("{\"mode\":\"deny_all\",\"allow_domains\":[\"allowed.test\"],\"deny_domains\":[\"bad."
              "allowed.test\"]}");
        ASSERT_EQ(net_policy_from_v1(r, "egress", &p, &err), 0);
        ASSERT_EQ(NAME("allowed.test"), NET_NAME_ANSWER_LEARN);
        ASSERT_EQ(NAME("a.b.allowed.test"), NET_NAME_ANSWER_LEARN);
        ASSERT_EQ(NAME("bad.allowed.test"), NET_NAME_REFUSE); /* deny first */
        ASSERT_EQ(NAME("x.bad.allowed.test"), NET_NAME_REFUSE);
        ASSERT_EQ(NAME("other.test"), NET_NAME_REFUSE);
        net_policy_done(&p);
        json_decref(r);
#undef NAME
}

/* ---- pool ---- */

static void test_pool(void)
{
        struct net_pool *p;
        struct net_addr a4, a6, g;
        uint32_t slot;
        char s[NET_ADDR_STR_MAX];

        ASSERT_EQ(net_pool_new(NET_POOL_DEFAULT, &p), 0);
        net_pool_gateway4(p, &g);
        ASSERT_STREQ(net_addr_format(&g, s), "10.203.0.1");
        ASSERT_EQ(net_pool_slots(p), 65533);
        ASSERT_EQ(net_pool_alloc(p, &slot), 0);
        ASSERT_EQ(slot, 0);
        net_pool_slot_addrs(p, slot, &a4, &a6);
        ASSERT_STREQ(net_addr_format(&a4, s), "10.203.0.2");
        ASSERT_STREQ(net_addr_format(&a6, s), "fd63:6f76:6500::2");
        ASSERT_EQ(net_pool_alloc(p, &slot), 0);
        ASSERT_EQ(slot, 1);
        ASSERT_EQ(net_pool_reserve(p, 1), -EBUSY);
        ASSERT_EQ(net_pool_reserve(p, 300), 0);
        net_pool_release(p, 0);
        ASSERT_EQ(net_pool_alloc(p, &slot), 0);
        ASSERT_EQ(slot, 0);
        ASSERT_EQ(net_pool_used(p), 3);
        ASSERT_EQ(net_addr_parse("10.203.1.46", NET_FAMILY_ANY, &a4), 0);
        ASSERT_EQ(net_pool_slot_of(p, &a4, &slot), 0);
        ASSERT_EQ(slot, 300);
        ASSERT_EQ(net_addr_parse("fd63:6f76:6500::12e", NET_FAMILY_ANY, &a6), 0);
        ASSERT_EQ(net_pool_slot_of(p, &a6, &slot), 0);
        ASSERT_EQ(slot, 300);
        ASSERT_EQ(net_addr_parse("10.203.0.1", NET_FAMILY_ANY, &a4), 0);
        ASSERT_EQ(net_pool_slot_of(p, &a4, &slot), -ERANGE);
        net_pool_free(p);

        /* A /29 has 5 slots (8 minus network, gateway, broadcast); then ENOSPC. */
        ASSERT_EQ(net_pool_new("192.0.2.8/29", &p), 0);
        ASSERT_TRUE(net_pool_cidr6(p) == NULL);
        for (int i = 0; i < 5; i++)
                ASSERT_EQ(net_pool_alloc(p, &slot), 0);
        net_pool_slot_addrs(p, slot, &a4, &a6);
        ASSERT_STREQ(net_addr_format(&a4, s), "192.0.2.14");
        ASSERT_EQ(a6.family, 0);
        ASSERT_EQ(net_pool_alloc(p, &slot), -ENOSPC);
        net_pool_free(p);

        static const char *const bad[] = {
                "",
                "10.0.0.0/30",
                "10.0.0.1",
                "fd00::/64",
                "10.0.0.0/16,10.1.0.0/16",
                "10.0.0.0/16,fd00::/120",
                "10.0.0.0/16,",
                "none",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (net_pool_new(bad[i], &p) != -EINVAL)
                        TAP_FAIL("accepted pool '%s'", bad[i]);
        ASSERT_EQ(net_pool_new("fd00::/64,10.9.0.0/24", &p), 0);
        ASSERT_EQ(net_pool_slots(p), 253);
        net_pool_free(p);
}

/* ---- ruleset text ---- */

static void test_ruleset_sandbox_text(void)
{
        cleanup_buf struct buf b;
        struct net_ruleset_sandbox s;
        struct net_addr a4, a6;
        struct net_policy p;
        struct cove_err *err = NULL;
        json_t *r =
                J("{\"mode\":\"deny_all\",\"allow_cidrs\":[\"198.51.100.0/24\",\"198.51.100.7\"],"
                  "\"deny_cidrs\":[\"2001:db8::/"
                  "32\"],\"allow_ports\":[443],\"allow_domains\":[\"a.test\"]}");

        buf_init(&b, 1 << 20);
        ASSERT_EQ(net_addr_parse("10.203.0.33", NET_FAMILY_ANY, &a4), 0);
        ASSERT_EQ(net_addr_parse("fd63:6f76:6500::21", NET_FAMILY_ANY, &a6), 0);
        net_ruleset_sandbox_init(&s, 31, &a4, &a6);
        s.generation = 0xc0ffee;
        ASSERT_STREQ(s.ifname, "cove-1f");
        ASSERT_EQ(net_policy_from_v1(r, "egress", &p, &err), 0);
        ASSERT_EQ(net_ruleset_sandbox_policy(&s, &p, &b), 0);
        ASSERT_STREQ(
                buf_str(&b),
                "add chain inet cove s_1f\n"
                "flush chain inet cove s_1f\n"
                "add rule inet cove s_1f ct mark 0x00c0ffee accept\n"
                "add rule inet cove s_1f ip6 daddr { 2001:db8::/32 } goto deny\n"
                "add rule inet cove s_1f ip daddr { 198.51.100.0/24 } meta l4proto tcp th "
                "dport { 443 } ct mark set 0x00c0ffee accept\n"
                "add rule inet cove s_1f iifname . ip daddr @learn4 meta l4proto tcp th dport "
                "{ 80, 443 } ct mark set 0x00c0ffee accept\n"
                "add rule inet cove s_1f iifname . ip6 daddr @learn6 meta l4proto tcp th dport "
                "{ 80, 443 } ct mark set 0x00c0ffee accept\n"
                "add rule inet cove s_1f goto deny\n");
        net_policy_done(&p);
        json_decref(r);
}

/* ---- DNS messages ---- */

struct msg {
        uint8_t b[1024];
        size_t n;
};

static void put16(struct msg *m, unsigned v)
{
        m->b[m->n++] = (uint8_t)(v >> 8);
        m->b[m->n++] = (uint8_t)v;
}

static void put32(struct msg *m, uint32_t v)
{
        put16(m, v >> 16);
        put16(m, v & 0xffff);
}

static void put_name(struct msg *m, const char *name)
{
        while (*name) {
                const char *dot = strchr(name, '.');
                size_t len = dot ? (size_t)(dot - name) : strlen(name);
                m->b[m->n++] = (uint8_t)len;
                memcpy(m->b + m->n, name, len);
                m->n += len;
                name += len + (dot ? 1 : 0);
        }
        m->b[m->n++] = 0;
}

static void header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
        m->n = 0;
        put16(m, id);
        put16(m, flags);
        put16(m, qd);
        put16(m, an);
        put16(m, 0);
        put16(m, 0);
}

static void question(struct msg *m, const char *name, unsigned type, unsigned cls)
{
        put_name(m, name);
        put16(m, type);
        put16(m, cls);
}

static void rr_a(struct msg *m, const char *owner, const char *addr, uint32_t ttl)
{
        struct net_addr a;

        if (net_addr_parse(addr, NET_FAMILY_ANY, &a) < 0)
                TAP_FAIL("bad address %s", addr);
        put_name(m, owner);
        put16(m, a.family == AF_INET ? 1 : 28);
        put16(m, 1);
        put32(m, ttl);
        put16(m, (unsigned)net_family_len(a.family));
        memcpy(m->b + m->n, a.bytes, net_family_len(a.family));
        m->n += net_family_len(a.family);
}

static void rr_cname(struct msg *m, const char *owner, const char *target, uint32_t ttl)
{
        struct msg t = { 0 };

        put_name(&t, target);
        put_name(m, owner);
        put16(m, 5);
        put16(m, 1);
        put32(m, ttl);
        put16(m, (unsigned)t.n);
        memcpy(m->b + m->n, t.b, t.n);
        m->n += t.n;
}

static void test_dns_parse_query(void)
{
        struct msg m;
        struct net_dns_query q;

        header(&m, 0x1234, 0x0100, 1, 0);
        question(&m, "WWW.Allowed.Test", 1, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), 0);
        ASSERT_EQ(q.id, 0x1234);
        ASSERT_EQ(q.qtype, 1);
        ASSERT_STREQ(q.name, "www.allowed.test");
        ASSERT_EQ(q.name_len, 16);
        ASSERT_TRUE(!q.odd);

        header(&m, 1, 0x8100, 1, 0); /* a response */
        question(&m, "a.test", 1, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), -EPROTO);
        header(&m, 1, 0x0100, 2, 0); /* two questions */
        question(&m, "a.test", 1, 1);
        question(&m, "b.test", 1, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), -EPROTO);
        header(&m, 1, 0x1000, 1, 0); /* opcode STATUS */
        question(&m, "a.test", 1, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), -EOPNOTSUPP);
        header(&m, 1, 0x0100, 1, 0); /* class CHAOS */
        question(&m, "version.bind", 16, 3);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), -EOPNOTSUPP);
        ASSERT_EQ(net_dns_parse_query(m.b, 5, &q), -EINVAL);
        header(&m, 1, 0x0100, 1, 0); /* truncated question */
        question(&m, "a.test", 1, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n - 3, &q), -EINVAL);

        /* A label holding a dot ("a.b" + "allowed.test") must not pass for a.b.allowed.test. */
        header(&m, 1, 0x0100, 1, 0);
        m.b[m.n++] = 3;
        memcpy(m.b + m.n, "a.b", 3);
        m.n += 3;
        put_name(&m, "allowed.test");
        put16(&m, 1);
        put16(&m, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), 0);
        ASSERT_TRUE(q.odd);
}

static void test_dns_replies(void)
{
        struct msg m;
        struct net_dns_query q;
        struct net_addr g;
        uint8_t *r = NULL;
        size_t n;

        header(&m, 0xbeef, 0x0100, 1, 0);
        question(&m, "blocked.test", 1, 1);
        ASSERT_EQ(net_dns_reply_error(m.b, m.n, NET_DNS_NXDOMAIN, &r, &n), 0);
        ASSERT_TRUE(n >= 12);
        ASSERT_EQ(r[0] << 8 | r[1], 0xbeef);
        ASSERT_EQ(r[2] & 0x80, 0x80);   /* QR */
        ASSERT_EQ(r[2] & 0x01, 0x01);   /* RD echoed */
        ASSERT_EQ(r[3] & 0x0f, 3);      /* NXDOMAIN */
        ASSERT_EQ(r[4] << 8 | r[5], 1); /* the question is echoed */
        free(r);

        ASSERT_EQ(net_addr_parse("10.203.0.1", NET_FAMILY_ANY, &g), 0);
        header(&m, 7, 0x0100, 1, 0);
        question(&m, "cove.internal", 1, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), 0);
        ASSERT_EQ(net_dns_reply_address(m.b, m.n, &g, 0, &r, &n), 0);
        {
                struct net_dns_learnt l[4];
                size_t k;
                int rcode = -1;
                ASSERT_EQ(net_dns_parse_answer(r, n, &q, l, 4, &k, &rcode), 0);
                ASSERT_EQ(rcode, 0);
                ASSERT_EQ(k, 1);
                ASSERT_TRUE(net_addr_equal(&l[0].addr, &g));
        }
        free(r);
        header(&m, 7, 0x0100, 1, 0); /* AAAA for cove.internal: NOERROR, no record */
        question(&m, "cove.internal", 28, 1);
        ASSERT_EQ(net_dns_reply_address(m.b, m.n, &g, 0, &r, &n), 0);
        ASSERT_EQ(r[6] << 8 | r[7], 0);
        ASSERT_EQ(r[3] & 0x0f, 0);
        free(r);
}

static void test_dns_parse_answer_chain(void)
{
        struct msg m;
        struct net_dns_query q;
        struct net_dns_learnt l[8];
        size_t k;
        char s[NET_ADDR_STR_MAX];

        header(&m, 9, 0x0100, 1, 0);
        question(&m, "www.a.test", 1, 1);
        ASSERT_EQ(net_dns_parse_query(m.b, m.n, &q), 0);

        header(&m, 9, 0x8180, 1, 4);
        question(&m, "WWW.a.test", 1, 1);
        rr_cname(&m, "www.a.test", "cdn.b.test", 300);
        rr_a(&m, "cdn.b.test", "198.51.100.7", 60);
        rr_a(&m, "unrelated.test", "203.0.113.66", 60); /* not in the chain: never learnt */
        rr_a(&m, "CDN.b.test", "198.51.100.8", 30);
        ASSERT_EQ(net_dns_parse_answer(m.b, m.n, &q, l, 8, &k, NULL), 0);
        ASSERT_EQ(k, 2);
        ASSERT_STREQ(net_addr_format(&l[0].addr, s), "198.51.100.7");
        ASSERT_EQ(l[0].ttl, 60);
        ASSERT_STREQ(net_addr_format(&l[1].addr, s), "198.51.100.8");
        ASSERT_EQ(net_dns_parse_answer(m.b, m.n, &q, l, 1, &k, NULL), 0);
        ASSERT_EQ(k, 1); /* capped */

        /* An answer to another question is not an answer. */
        header(&m, 9, 0x8180, 1, 1);
        question(&m, "www.evil.test", 1, 1);
        rr_a(&m, "www.evil.test", "198.51.100.9", 60);
        ASSERT_EQ(net_dns_parse_answer(m.b, m.n, &q, l, 8, &k, NULL), -EINVAL);
        header(&m, 9, 0x0100, 1, 0); /* a query is not an answer */
        question(&m, "www.a.test", 1, 1);
        ASSERT_EQ(net_dns_parse_answer(m.b, m.n, &q, l, 8, &k, NULL), -EINVAL);
        /* A CNAME loop ends. */
        header(&m, 9, 0x8180, 1, 2);
        question(&m, "www.a.test", 1, 1);
        rr_cname(&m, "www.a.test", "x.test", 60);
        rr_cname(&m, "x.test", "www.a.test", 60);
        ASSERT_EQ(net_dns_parse_answer(m.b, m.n, &q, l, 8, &k, NULL), 0);
        ASSERT_EQ(k, 0);
}

static void test_dns_upstreams(void)
{
        struct sockaddr_storage sa[3];
        socklen_t len[3];
        struct net_addr a;
        uint16_t port;
        char s[NET_ADDR_STR_MAX];

        ASSERT_EQ(net_dns_parse_upstream("198.51.100.53", &sa[0], &len[0]), 0);
        ASSERT_EQ(net_addr_from_sockaddr((struct sockaddr *)&sa[0], len[0], &a, &port), 0);
        ASSERT_EQ(port, 53);
        ASSERT_EQ(net_dns_parse_upstream("198.51.100.53:5353", &sa[0], &len[0]), 0);
        ASSERT_EQ(net_addr_from_sockaddr((struct sockaddr *)&sa[0], len[0], &a, &port), 0);
        ASSERT_EQ(port, 5353);
        ASSERT_EQ(net_dns_parse_upstream("[2001:db8::53]:54", &sa[0], &len[0]), 0);
        ASSERT_EQ(net_addr_from_sockaddr((struct sockaddr *)&sa[0], len[0], &a, &port), 0);
        ASSERT_STREQ(net_addr_format(&a, s), "2001:db8::53");
        ASSERT_EQ(port, 54);
        ASSERT_EQ(net_dns_parse_upstream("2001:db8::53", &sa[0], &len[0]), 0);
        static const char *const bad[] = {
                "",       "dns.test", "1.2.3.4:0", "1.2.3.4:65536", "[2001:db8::1",
                "[::1]x", "1.2.3.4:", "[]:53"
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (net_dns_parse_upstream(bad[i], &sa[0], &len[0]) != -EINVAL)
                        TAP_FAIL("accepted upstream '%s'", bad[i]);
        ASSERT_EQ(net_dns_upstreams_from_resolv_conf(
                          "# comment\nsearch x\nnameserver 192.0.2.53\n"
                          "nameserver  fe80::1%eth0\nnameserver\tbad\n"
                          "nameserver 2001:db8::1 # x\nnameserver 4.4.4.4\n",
                          sa, len, 3),
                  3);
        ASSERT_EQ(net_addr_from_sockaddr((struct sockaddr *)&sa[1], len[1], &a, &port), 0);
        ASSERT_STREQ(net_addr_format(&a, s), "fe80::1");
}

int main(void)
{
        RUN(test_cidr_normalises);
        RUN(test_cidr_rejects);
        RUN(test_cidr_contains_and_merge);
        RUN(test_cidr_arithmetic);
        RUN(test_domain_patterns);
        RUN(test_domain_match);
        RUN(test_seacloud_front_end);
        RUN(test_seacloud_partial_update);
        RUN(test_v1_front_end);
        RUN(test_views_round_trip);
        RUN(test_flow_verdicts);
        RUN(test_name_verdicts);
        RUN(test_pool);
        RUN(test_ruleset_sandbox_text);
        RUN(test_dns_parse_query);
        RUN(test_dns_replies);
        RUN(test_dns_parse_answer_chain);
        RUN(test_dns_upstreams);
        return tap_done();
}
