/* SPDX-License-Identifier: MIT */
/*
 * fuzz-netpolicy.c — the SeaCloud `network` policy (coved/api/seacloud/netpolicy.c over
 * src/net/policy.c, control-plane.md §2.4): any client with an API key sends these entries,
 * which become firewall and DNS rules.
 *
 * Each input line (any bytes but '\n') becomes one entry, of `allowOut` or, when the first
 * input byte is odd, of `denyOut`, so the parsers see arbitrary strings rather than only what
 * survives JSON (which carries NUL bytes as \u0000). Checked: a failure names its field; what
 * is accepted had no NUL and no more entries come out than went in; the normalised policy is
 * its own normal form (applying it again changes nothing).
 */
#include "fuzz.h"
#include "coved/api/seacloud/netpolicy.h"

#include <errno.h>
#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;

        const char *key = size > 0 && (data[0] & 1) ? "denyOut" : "allowOut";
        json_t *list = json_array();
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
                json_array_append_new(list, json_stringn_nocheck(p, l));
                p += l + 1;
        }
        json_t *req = json_pack("{s:o, s:b}", key, list, "allowInternetAccess", 0);
        json_t *policy = NULL;
        struct cove_err *err = NULL;
        int r = netpolicy_from_request(req, NULL, NULL, &policy, &err);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL && err && err->msg && strstr(err->msg, "network"));
                cove_err_free(&err);
                json_decref(req);
                return 0;
        }
        size_t i;
        json_t *e;
        /* What was accepted was all of each entry: nothing after a NUL was ignored. */
        json_array_foreach (list, i, e)
                FUZZ_CHECK(strlen(json_string_value(e)) == json_string_length(e));
        json_t *out = json_object_get(policy, key);
        FUZZ_CHECK(json_is_array(out) && json_array_size(out) <= json_array_size(list));
        json_array_foreach (out, i, e)
                FUZZ_CHECK(json_is_string(e) && json_string_length(e) > 0);

        /* Idempotent: the normalised policy is its own normal form. */
        json_t *again = NULL;
        FUZZ_CHECK(netpolicy_from_request(policy, NULL, NULL, &again, &err) == 0);
        FUZZ_CHECK(json_equal(policy, again));
        json_decref(again);
        json_decref(policy);
        json_decref(req);
        return 0;
}
