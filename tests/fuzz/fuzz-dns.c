/* SPDX-License-Identifier: MIT */
/*
 * fuzz-dns.c — the DNS messages of coved's resolver (src/net/dnsmsg.c): queries come from
 * inside sandboxes and answers from upstream servers, both untrusted, both read by coved.
 *
 * The input is one message, read as a query and as an answer to a fixed query (and, when it
 * parses as a query, as an answer to itself). Checked: a parsed query has a lower-case name
 * within NET_DOMAIN_MAX without a trailing dot; the error and address replies coved builds from
 * it parse back as answers to it, with the rcode and the one address it put in; an answer
 * never yields more records than asked for, and only A/AAAA addresses.
 */
#include "fuzz.h"
#include "net/addr.h"
#include "net/dnsmsg.h"

#include <errno.h>

#define LEARN_MAX 8

static void check_query(const struct net_dns_query *q)
{
        FUZZ_CHECK(q->name_len <= NET_DOMAIN_MAX && q->name[q->name_len] == '\0');
        FUZZ_CHECK(strlen(q->name) <= q->name_len);
        if (!q->odd) {
                FUZZ_CHECK(strlen(q->name) == q->name_len);
                FUZZ_CHECK(q->name_len == 0 || q->name[q->name_len - 1] != '.');
                for (size_t i = 0; i < q->name_len; i++)
                        FUZZ_CHECK(!(q->name[i] >= 'A' && q->name[i] <= 'Z'));
        }
}

static void check_answer(const uint8_t *p, size_t n, const struct net_dns_query *q)
{
        struct net_dns_learnt out[LEARN_MAX];
        size_t got = 99;
        int rcode = -1;
        int r = net_dns_parse_answer(p, n, q, out, LEARN_MAX, &got, &rcode);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0) {
                FUZZ_CHECK(got <= LEARN_MAX);
                FUZZ_CHECK(rcode >= 0 && rcode <= 0xfff);
                for (size_t i = 0; i < got; i++)
                        FUZZ_CHECK(out[i].addr.family == AF_INET || out[i].addr.family == AF_INET6);
        }
}

/* The replies coved builds for a query it parsed read back as answers to it. */
static void check_replies(const uint8_t *p, size_t n, const struct net_dns_query *q)
{
        uint8_t *reply = NULL;
        size_t len = 0;
        struct net_dns_learnt out[LEARN_MAX];
        size_t got = 0;
        int rcode = -1;

        FUZZ_CHECK(net_dns_reply_error(p, n, NET_DNS_NXDOMAIN, &reply, &len) == 0);
        FUZZ_CHECK(reply && len > 0 && len <= NET_DNS_MSG_MAX);
        if (!q->odd) {
                FUZZ_CHECK(net_dns_parse_answer(reply, len, q, out, LEARN_MAX, &got, &rcode) == 0);
                FUZZ_CHECK(rcode == NET_DNS_NXDOMAIN && got == 0);
        }
        free(reply);

        struct net_addr a;
        FUZZ_CHECK(net_addr_parse(q->qtype == 28 ? "2001:db8::7" : "203.0.113.7", NET_FAMILY_ANY,
                                  &a) == 0);
        reply = NULL;
        FUZZ_CHECK(net_dns_reply_address(p, n, &a, 60, &reply, &len) == 0);
        FUZZ_CHECK(reply && len > 0 && len <= NET_DNS_MSG_MAX);
        if (!q->odd && (q->qtype == 1 || q->qtype == 28)) {
                got = 0;
                FUZZ_CHECK(net_dns_parse_answer(reply, len, q, out, LEARN_MAX, &got, &rcode) == 0);
                FUZZ_CHECK(rcode == NET_DNS_NOERROR && got == 1);
                FUZZ_CHECK(net_addr_equal(&out[0].addr, &a) && out[0].ttl == 60);
        }
        free(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct net_dns_query q, fixed = { .id = 0x1234, .qtype = 1, .qclass = 1 };

        if (size > NET_DNS_MSG_MAX)
                return 0;
        memcpy(fixed.name, "example.com", sizeof("example.com"));
        fixed.name_len = strlen(fixed.name);
        check_answer(data, size, &fixed);

        int r = net_dns_parse_query(data, size, &q);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EPROTO || r == -EOPNOTSUPP);
        if (r == 0) {
                check_query(&q);
                check_answer(data, size, &q);
                check_replies(data, size, &q);
        }
        return 0;
}
