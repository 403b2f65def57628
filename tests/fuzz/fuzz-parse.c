/* SPDX-License-Identifier: MIT */
/*
 * fuzz-parse.c — strict number parsing (lib/parse.c): query parameters (limits, timeouts,
 * signature_expiration), config values, ids read from files.
 *
 * Differential: safe_atou64(), safe_atou32() and safe_atoi64() against a reference written
 * here from the contract in lib/parse.h (whole string decimal, optional '-' for the signed
 * variant only, no overflow).
 */
#include "fuzz.h"
#include "lib/parse.h"

#include <errno.h>

/* The reference: 0 and the value, -EINVAL (not a number) or -ERANGE (magnitude above the limit
 * of its sign). A string with both faults — "99999999999999999999x" — may get either: the
 * contract names no precedence, and the parser stops at the first it meets. */
struct ref {
        bool invalid, range, neg;
        unsigned __int128 v;
};

static struct ref reference(const char *s, bool sign, unsigned __int128 limit_pos,
                            unsigned __int128 limit_neg)
{
        struct ref r = { 0 };

        if (sign && *s == '-') {
                r.neg = true;
                s++;
        }
        if (!*s)
                r.invalid = true;
        for (; *s; s++) {
                if (*s < '0' || *s > '9') {
                        r.invalid = true;
                        continue;
                }
                if (!r.range)
                        r.v = r.v * 10 + (unsigned)(*s - '0');
                if (r.v > (r.neg ? limit_neg : limit_pos))
                        r.range = true;
        }
        return r;
}

static bool agrees(int got, struct ref want)
{
        if (got == 0)
                return !want.invalid && !want.range;
        return (got == -EINVAL && want.invalid) || (got == -ERANGE && want.range);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 256) /* numbers are short; longer inputs only repeat digits */
                return 0;
        char *s = strndup((const char *)data, size);
        FUZZ_CHECK(s);
        struct ref want;

        uint64_t u64 = 7;
        int r = safe_atou64(s, &u64);
        want = reference(s, false, UINT64_MAX, 0);
        FUZZ_CHECK(agrees(r, want));
        FUZZ_CHECK(r < 0 ? u64 == 7 : u64 == (uint64_t)want.v);

        uint32_t u32 = 7;
        r = safe_atou32(s, &u32);
        want = reference(s, false, UINT32_MAX, 0);
        FUZZ_CHECK(agrees(r, want));
        FUZZ_CHECK(r < 0 ? u32 == 7 : u32 == (uint32_t)want.v);

        int64_t i64 = 7;
        r = safe_atoi64(s, &i64);
        want = reference(s, true, (unsigned __int128)INT64_MAX, (unsigned __int128)INT64_MAX + 1);
        FUZZ_CHECK(agrees(r, want));
        if (r < 0)
                FUZZ_CHECK(i64 == 7);
        else if (want.neg)
                FUZZ_CHECK(i64 <= 0 && (unsigned __int128)(-(i64 + 1)) + 1 == want.v);
        else
                FUZZ_CHECK(i64 >= 0 && (unsigned __int128)i64 == want.v);
        free(s);
        return 0;
}
