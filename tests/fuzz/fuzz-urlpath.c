/* SPDX-License-Identifier: MIT */
/*
 * fuzz-urlpath.c — percent-decoding, path splitting and route matching (lib/urlpath.c): the
 * first things coved does with a request's path, before any authentication.
 *
 * Input: "<route pattern>\n<raw path>" (no newline: the whole input is the path and the
 * pattern is "sandboxes/:id/:p"). Checked:
 * - pct_decode never grows its input, decodes what pct-encoding every byte produced, and
 *   leaves a string without '%' and '+' as it is;
 * - urlpath_split gives at most max_segs NULL-terminated segments, each the decoding of the
 *   raw segment (up to its first NUL);
 * - route_match hands out one non-empty parameter per ":name" segment and matches literals
 *   exactly; route_literal_mask marks the literal segments.
 */
#include "fuzz.h"
#include "lib/macro.h"
#include "lib/urlpath.h"

static void check_decode(const char *s, size_t n)
{
        size_t len;
        for (int plus = 0; plus < 2; plus++) {
                char *d = pct_decode(s, n, plus, &len);
                FUZZ_CHECK(len <= n && d[len] == '\0');
                if (!memchr(s, '%', n) && (!plus || !memchr(s, '+', n)))
                        FUZZ_CHECK(len == n && memcmp(d, s, n) == 0);
                free(d);
        }
        char *enc = malloc(3 * n + 1);
        FUZZ_CHECK(enc);
        for (size_t i = 0; i < n; i++)
                (void)snprintf(enc + 3 * i, 4, "%%%02X", (unsigned char)s[i]);
        char *d = pct_decode(enc, 3 * n, true, &len);
        FUZZ_CHECK(len == n && memcmp(d, s, n) == 0);
        free(d);
        free(enc);
}

static void check_split(const char *path, size_t n, size_t max_segs)
{
        char **segs = NULL;
        size_t k = 0;

        urlpath_split(path, n, max_segs, &segs, &k);
        FUZZ_CHECK(k <= max_segs && segs[k] == NULL);
        /* Reference: skip one leading '/', cut at every '/', decode each piece. */
        size_t i = n > 0 && path[0] == '/' ? 1 : 0, got = 0;
        while (i < n && got < max_segs) {
                const char *e = memchr(path + i, '/', n - i);
                size_t l = e ? (size_t)(e - (path + i)) : n - i;
                char *want = pct_decode(path + i, l, false, NULL);
                FUZZ_CHECK(segs[got] && strcmp(segs[got], want) == 0);
                free(want);
                got++;
                if (!e)
                        break;
                i += l + 1;
                if (i == n && got < max_segs) {
                        FUZZ_CHECK(segs[got] && segs[got][0] == '\0');
                        got++;
                }
        }
        FUZZ_CHECK(got == k);
        strv_free(segs);
}

static void check_route(const char *pattern, const char *path, size_t n)
{
        char **segs = NULL;
        size_t k = 0;
        const char *params[ROUTE_MAX_PARAMS];

        urlpath_split(path, n, 64, &segs, &k);
        if (route_match(pattern, segs, k, params)) {
                size_t i = 0, np = 0;
                uint64_t mask = route_literal_mask(pattern);
                for (const char *p = pattern; *p; i++) {
                        const char *e = strchr(p, '/');
                        size_t l = e ? (size_t)(e - p) : strlen(p);
                        FUZZ_CHECK(i < k);
                        if (p[0] == ':') {
                                FUZZ_CHECK(np < ROUTE_MAX_PARAMS && params[np] == segs[i]);
                                FUZZ_CHECK(*params[np]);
                                np++;
                                FUZZ_CHECK(i >= 64 || !(mask & (UINT64_C(1) << (63 - i))));
                        } else {
                                FUZZ_CHECK(strlen(segs[i]) == l && memcmp(segs[i], p, l) == 0);
                                FUZZ_CHECK(i >= 64 || (mask & (UINT64_C(1) << (63 - i))));
                        }
                        p = e ? e + 1 : p + l;
                }
                /* Every segment was matched, but for one trailing empty one. */
                FUZZ_CHECK(i == k || (i + 1 == k && segs[k - 1][0] == '\0'));
                for (; np < ROUTE_MAX_PARAMS; np++)
                        FUZZ_CHECK(params[np] == NULL);
        }
        strv_free(segs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        const char *s = (const char *)data;
        const char *nl = memchr(s, '\n', size);
        char *pattern = nl ? strndup(s, (size_t)(nl - s)) : strdup("sandboxes/:id/:p");
        const char *path = nl ? nl + 1 : s;
        size_t n = nl ? size - (size_t)(nl - s) - 1 : size;
        FUZZ_CHECK(pattern);

        check_decode(s, size);
        check_split(path, n, 64);
        check_split(path, n, 3);
        check_route(pattern, path, n);
        free(pattern);
        return 0;
}
