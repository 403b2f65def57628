/* SPDX-License-Identifier: MIT */
/*
 * fuzz-netpolicy.c — CIDR normalisation of SandboxNetworkPolicy entries
 * (coved/api/seacloud/netpolicy.c, control-plane.md §2.4): any client with an API key sends these
 * strings.
 *
 * Each input line (any bytes but '\n') becomes one `allowOut` entry, so the normaliser sees
 * arbitrary strings rather than only what survives JSON (which carries NUL bytes as \u0000).
 * Checked: an accepted entry had no NUL and comes out as "a.b.c.d/len" with the host bits
 * cleared, and normalising the result again changes nothing.
 */
#include "fuzz.h"
#include "coved/api/seacloud/netpolicy.h"
#include "lib/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>

static void check_entry(const char *s)
{
        char addr[INET_ADDRSTRLEN];
        const char *slash = strchr(s, '/');
        struct in_addr a;
        uint32_t bits;

        FUZZ_CHECK(slash && (size_t)(slash - s) < sizeof(addr));
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
        FUZZ_CHECK(inet_pton(AF_INET, addr, &a) == 1);
        FUZZ_CHECK(safe_atou32(slash + 1, &bits) == 0 && bits <= 32);
        uint32_t host = bits == 32 ? 0 : ~0U >> bits;
        FUZZ_CHECK((ntohl(a.s_addr) & host) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;

        json_t *list = json_array();
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
                json_array_append_new(list, json_stringn_nocheck(p, l));
                p += l + 1;
        }
        json_t *req = json_pack("{s:o}", "allowOut", list);
        json_t *policy = NULL;
        struct cove_err *err = NULL;
        int r = netpolicy_from_request(req, NULL, &policy, &err);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL && err && err->msg);
                cove_err_free(&err);
                json_decref(req);
                return 0;
        }
        json_t *out = json_object_get(policy, "allowOut");
        FUZZ_CHECK(json_array_size(out) == json_array_size(list));
        size_t i;
        json_t *e;
        /* What was accepted was all of the entry: nothing after a NUL was ignored. */
        json_array_foreach (list, i, e)
                FUZZ_CHECK(strlen(json_string_value(e)) == json_string_length(e));
        json_array_foreach (out, i, e) {
                FUZZ_CHECK(json_is_string(e));
                FUZZ_CHECK(strlen(json_string_value(e)) == json_string_length(e));
                check_entry(json_string_value(e));
        }

        /* Idempotent: the normalised policy is its own normal form. */
        json_t *again = NULL;
        FUZZ_CHECK(netpolicy_from_request(policy, NULL, &again, &err) == 0);
        FUZZ_CHECK(json_equal(policy, again));
        json_decref(again);
        json_decref(policy);
        json_decref(req);
        return 0;
}
