/* SPDX-License-Identifier: MIT */
/*
 * fuzz-egress.c — the /v1 EgressPolicy (coved/api/v1/egress.c, v1-api.md §5): CIDRs (IPv4 and
 * IPv6) and domain names from any client with an API key, normalised before they become
 * firewall and DNS rules.
 *
 * Each input line (any bytes but '\n') is one entry; the lines are validated once as
 * `allow_cidrs` and once as `allow_domains` of a deny_all policy, so the normalisers see
 * arbitrary strings. Checked for what is accepted: no entry had a NUL (nothing after one may be
 * ignored), CIDRs come out as "address/len" with the host bits clear, domains as lower-case
 * labels of 1-63 [a-z0-9-] within 253 bytes, no duplicates, and validating the result again
 * changes nothing.
 */
#include "fuzz.h"
#include "coved/api/v1/v1.h"

#include <arpa/inet.h>
#include <errno.h>

static void check_cidr(const char *s)
{
        char addr[INET6_ADDRSTRLEN + 1];
        unsigned char a[16];
        const char *slash = strchr(s, '/');
        FUZZ_CHECK(slash && (size_t)(slash - s) < sizeof(addr));
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
        int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
        unsigned maxbits = family == AF_INET6 ? 128 : 32;
        FUZZ_CHECK(inet_pton(family, addr, a) == 1);
        char *end;
        unsigned long bits = strtoul(slash + 1, &end, 10);
        FUZZ_CHECK(*end == '\0' && bits <= maxbits);
        for (unsigned i = (unsigned)bits; i < maxbits; i++)
                FUZZ_CHECK(!(a[i / 8] & (0x80 >> (i % 8))));
}

static void check_domain(const char *s)
{
        size_t n = strlen(s), label = 0;
        FUZZ_CHECK(n >= 1 && n <= 253);
        for (size_t i = 0; i <= n; i++) {
                if (s[i] == '.' || s[i] == '\0') {
                        FUZZ_CHECK(label >= 1 && label <= 63);
                        label = 0;
                        continue;
                }
                FUZZ_CHECK((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                           s[i] == '-');
                label++;
        }
}

static void check_list(json_t *lines, const char *key, void (*check)(const char *))
{
        json_t *in = json_pack("{s:s, s:O}", "mode", "deny_all", key, lines);
        json_t *out = NULL, *again = NULL;
        struct cove_err *err = NULL;
        size_t i, j;
        json_t *e, *f;

        FUZZ_CHECK(in);
        int r = v1_egress_validate(in, &out, &err);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL && err && err->msg);
                cove_err_free(&err);
                json_decref(in);
                return;
        }
        json_array_foreach (lines, i, e)
                FUZZ_CHECK(strlen(json_string_value(e)) == json_string_length(e));
        json_t *list = json_object_get(out, key);
        FUZZ_CHECK(json_array_size(list) <= json_array_size(lines));
        json_array_foreach (list, i, e) {
                check(json_string_value(e));
                json_array_foreach (list, j, f)
                        FUZZ_CHECK(j == i || !json_equal(e, f));
        }
        FUZZ_CHECK(v1_egress_validate(out, &again, &err) == 0);
        FUZZ_CHECK(json_equal(out, again));
        json_decref(again);
        json_decref(out);
        json_decref(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        json_t *lines = json_array();
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
                json_array_append_new(lines, json_stringn_nocheck(p, l));
                p += l + 1;
        }
        check_list(lines, "allow_cidrs", check_cidr);
        check_list(lines, "allow_domains", check_domain);
        json_decref(lines);
        return 0;
}
