/* SPDX-License-Identifier: MIT */
/*
 * fuzz-path.c — the agent's lexical path normaliser (lib/path.c): every path of the file and
 * process APIs passes through it, as the client sent it.
 *
 * Input: "<base>\0<path>" (base must be absolute, per path.h) or just "<path>" (base NULL).
 * Checked: the result is absolute, has no empty, "." or ".." segment and no trailing '/'
 * (except "/" itself), is not longer than its input, is a fixed point, and — for an absolute
 * path — does not depend on the base.
 */
#include "fuzz.h"
#include "lib/path.h"

static void check_normal(const char *n)
{
        FUZZ_CHECK(n[0] == '/');
        if (strcmp(n, "/") == 0)
                return;
        size_t l = strlen(n);
        FUZZ_CHECK(n[l - 1] != '/');
        for (const char *s = n; *s;) {
                const char *e = strchr(s + 1, '/');
                size_t seg = e ? (size_t)(e - s - 1) : strlen(s + 1);
                FUZZ_CHECK(seg > 0);
                FUZZ_CHECK(!(seg == 1 && s[1] == '.'));
                FUZZ_CHECK(!(seg == 2 && s[1] == '.' && s[2] == '.'));
                s = e ? e : s + 1 + seg;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        const uint8_t *nul = memchr(data, '\0', size);
        char *base = nul ? strndup((const char *)data, (size_t)(nul - data)) : NULL;
        char *p = nul ? strndup((const char *)nul + 1, size - (size_t)(nul - data) - 1)
                      : strndup((const char *)data, size);
        FUZZ_CHECK(p && (!nul || base));
        if (base && base[0] != '/')
                goto out;

        char *n = path_normalize(base, p);
        check_normal(n);
        FUZZ_CHECK(strlen(n) <= (p[0] == '/' ? 0 : strlen(base ? base : "/") + 1) + strlen(p) + 1);
        char *again = path_normalize(NULL, n);
        FUZZ_CHECK(strcmp(again, n) == 0);
        free(again);
        if (p[0] == '/') {
                char *other = path_normalize("/elsewhere/entirely", p);
                FUZZ_CHECK(strcmp(other, n) == 0);
                free(other);
        }
        free(n);
out:
        free(base);
        free(p);
        return 0;
}
