/* SPDX-License-Identifier: MIT */
/*
 * fuzz-addrguard.c — the webhook address policy (coved/events/addrguard.c): which resolved
 * addresses coved may connect to for a tenant's webhook. A wrong answer is a server-side
 * request forgery into the node's own network.
 *
 * Input: 16 bytes of an IPv6 address (the first 4 also an IPv4 one). Checked: every IPv6 form
 * that carries an IPv4 address — mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4
 * 2002:AABB:CCDD::, compatible ::a.b.c.d — is judged exactly like that IPv4 address; the IPv4
 * and IPv6 ranges addrguard.h names (loopback, private, link-local, metadata, multicast,
 * unspecified) are never public; a sockaddr too short for its family is never public.
 */
#include "fuzz.h"
#include "coved/events/addrguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static enum addr_class v4(const uint8_t a[4])
{
        struct sockaddr_in sin = { .sin_family = AF_INET };
        memcpy(&sin.sin_addr, a, 4);
        return addrguard_classify((const struct sockaddr *)&sin, sizeof(sin));
}

static enum addr_class v6(const uint8_t a[16])
{
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
        memcpy(&sin6.sin6_addr, a, 16);
        return addrguard_classify((const struct sockaddr *)&sin6, sizeof(sin6));
}

/* Ranges of addrguard.h that must never be public (RFC 6890's special-purpose registry). */
static bool v4_special(const uint8_t a[4])
{
        return a[0] == 0 || a[0] == 127 || a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
               (a[0] == 192 && a[1] == 168) || (a[0] == 100 && (a[1] & 0xc0) == 64) ||
               (a[0] == 198 && (a[1] & 0xfe) == 18) || (a[0] == 169 && a[1] == 254) ||
               a[0] >= 224 || (a[0] == 192 && a[1] == 0 && a[2] == 0);
}

static bool v6_special(const uint8_t a[16])
{
        static const uint8_t zero[16];
        return (memcmp(a, zero, 15) == 0 && a[15] <= 1) || a[0] == 0xff || (a[0] & 0xfe) == 0xfc ||
               (a[0] == 0xfe && (a[1] & 0x80) == 0x80);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t a[16] = { 0 }, m[16] = { 0 };

        if (size > 64)
                return 0;
        memcpy(a, data, size < 16 ? size : 16);
        enum addr_class c4 = v4(a), c6 = v6(a);
        FUZZ_CHECK(c4 <= ADDR_HOST && c6 <= ADDR_HOST);
        FUZZ_CHECK(!v4_special(a) || c4 != ADDR_PUBLIC);
        FUZZ_CHECK(!v6_special(a) || c6 != ADDR_PUBLIC);
        FUZZ_CHECK(addrguard_class_name(c4) && addrguard_class_name(c6));

        /* ::ffff:a.b.c.d */
        memset(m, 0, 16);
        m[10] = m[11] = 0xff;
        memcpy(m + 12, a, 4);
        FUZZ_CHECK(v6(m) == c4);
        /* 64:ff9b::a.b.c.d */
        memset(m, 0, 16);
        m[1] = 0x64, m[2] = 0xff, m[3] = 0x9b;
        memcpy(m + 12, a, 4);
        FUZZ_CHECK(v6(m) == c4);
        /* 2002:AABB:CCDD:<anything>, the rest of the input as the subnet and interface */
        memcpy(m, a, 16);
        m[0] = 0x20, m[1] = 0x02;
        memcpy(m + 2, a, 4);
        FUZZ_CHECK(v6(m) == c4);
        /* ::a.b.c.d, but for :: and ::1 themselves */
        memset(m, 0, 16);
        memcpy(m + 12, a, 4);
        if (!(a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] <= 1))
                FUZZ_CHECK(v6(m) == c4);

        /* A sockaddr shorter than its family's is not an address coved may use. */
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
        memcpy(&sin6.sin6_addr, a, 16);
        size_t len = size > 0 ? data[0] % sizeof(sin6) : 0;
        FUZZ_CHECK(addrguard_classify((const struct sockaddr *)&sin6, len) != ADDR_PUBLIC);
        struct sockaddr_in sin = { .sin_family = AF_INET };
        memcpy(&sin.sin_addr, a, 4);
        len = size > 0 ? data[0] % sizeof(sin) : 0;
        FUZZ_CHECK(addrguard_classify((const struct sockaddr *)&sin, len) != ADDR_PUBLIC);
        return 0;
}
