/* SPDX-License-Identifier: MIT */
/*
 * fuzz-rfc3339.c — RFC 3339 times in query parameters (lib/timeutil.c time_parse_rfc3339(),
 * E2B's `startedAfter` of the sandbox list): any API client's text.
 *
 * Checked: the parser accepts or answers -EINVAL, nothing else; an accepted time, formatted as
 * Cove formats times (UTC, milliseconds) and parsed again, is the same instant. (The parser
 * takes C strings: the HTTP layer refuses a NUL byte in a query before it gets here.)
 */
#include "fuzz.h"
#include "lib/timeutil.h"

#include <errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 256) /* a time is short: longer inputs only slow the fuzzer down */
                return 0;
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        int64_t ms = 0, again = 0;
        int r = time_parse_rfc3339(s, &ms);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0) {
                char out[TIME_RFC3339_MAX];
                /* the formatter covers years 0–9999: what parses must be in it */
                FUZZ_CHECK(ms >= -62167219200000LL && ms <= 253402300799999LL);
                time_format_rfc3339(ms, out);
                FUZZ_CHECK(time_parse_rfc3339(out, &again) == 0);
                FUZZ_CHECK(again == ms);
        }
        free(s);
        return 0;
}
