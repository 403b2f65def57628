/* SPDX-License-Identifier: MIT */
/*
 * fuzz-duration.c — the /v1 API's duration strings (lib/duration.c): "30s", "1h30m", sent by
 * any client with an API key (timeouts, keepalives).
 *
 * Differential: duration_parse() against a reference written here from duration.h (groups of
 * digits and a unit h/m/s, summed; at most DURATION_TEXT_MAX bytes; totals above
 * DURATION_MAX_S are -ERANGE). Checked too: a parsed total written back by duration_format()
 * parses to itself, and the first 8 bytes read as a number of seconds format and parse back.
 */
#include "fuzz.h"
#include "lib/duration.h"

#include <errno.h>

/* 0 and the total, -EINVAL or -ERANGE. A too-long group (> 12 digits) is -ERANGE in the parser
 * and may be either here when the string is also malformed later on. */
static int reference(const char *s, int64_t *ret, bool *range)
{
        __int128 total = 0;
        size_t n = strlen(s);

        *range = false;
        if (n == 0 || n > DURATION_TEXT_MAX)
                return -EINVAL;
        for (const char *p = s; *p;) {
                __int128 v = 0;
                size_t digits = 0;
                while (*p >= '0' && *p <= '9') {
                        if (++digits > 12)
                                *range = true; /* and v stops growing: no overflow here */
                        else
                                v = v * 10 + (*p - '0');
                        p++;
                }
                if (digits == 0)
                        return -EINVAL;
                int unit = *p == 'h' ? 3600 : *p == 'm' ? 60 : *p == 's' ? 1 : 0;
                if (!unit)
                        return -EINVAL;
                p++;
                total += v * unit;
                if (total > DURATION_MAX_S)
                        *range = true;
        }
        if (*range)
                return -ERANGE;
        *ret = (int64_t)total;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 256)
                return 0;
        char *s = strndup((const char *)data, size);
        FUZZ_CHECK(s);
        int64_t got = -7, want = -7;
        bool range;
        int r = duration_parse(s, &got);
        int w = reference(s, &want, &range);
        /* Where the string is malformed after a group that is too long, either error is fine. */
        FUZZ_CHECK(r == w || (r == -ERANGE && range) || (r == -EINVAL && w == -ERANGE && range));
        if (r == 0) {
                FUZZ_CHECK(got == want && got >= 0 && got <= DURATION_MAX_S);
                char text[DURATION_STR_MAX];
                int64_t again = -1;
                duration_format(got, text);
                FUZZ_CHECK(duration_parse(text, &again) == 0 && again == got);
        } else {
                FUZZ_CHECK(got == -7);
        }
        free(s);

        if (size >= 8) {
                uint64_t v = 0;
                for (int i = 0; i < 8; i++)
                        v = v << 8 | data[i];
                int64_t secs = (int64_t)(v % (uint64_t)(DURATION_MAX_S + 1));
                char text[DURATION_STR_MAX];
                int64_t back = -1;
                duration_format(secs, text);
                FUZZ_CHECK(strlen(text) < DURATION_STR_MAX);
                FUZZ_CHECK(duration_parse(text, &back) == 0 && back == secs);
        }
        return 0;
}
