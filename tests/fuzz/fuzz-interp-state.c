/* SPDX-License-Identifier: MIT */
/*
 * fuzz-interp-state.c — the code interpreter's contexts file (coved/envd/interp_state.c),
 * which coved reads back from inside a sandbox whose root may have rewritten it.
 *
 * Checked: a refused file hands out nothing; an accepted one has at most `max` contexts with
 * distinct lower-case UUIDs, known languages, absolute NUL-free cwds and pids in 1..INT32_MAX
 * (or none), and formatting it gives a file that parses to the same contexts (a fixed point).
 */
#include "fuzz.h"
#include "coved/envd/interp_state.h"

#include <errno.h>

static const char *const LANGS[] = {
        "python", "javascript", "typescript", "bash", "r", "java", NULL
};

static bool known(const char *l)
{
        for (size_t i = 0; LANGS[i]; i++)
                if (strcmp(LANGS[i], l) == 0)
                        return true;
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        const size_t max = 8;
        struct interp_state_ctx *v = NULL, *w = NULL;
        size_t n = 0, m = 0;
        int r = interp_state_parse((const char *)data, size, max, LANGS, &v, &n);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r < 0) {
                FUZZ_CHECK(!v && n == 0);
                return 0;
        }
        FUZZ_CHECK(n <= max);
        for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(strlen(v[i].id) == INTERP_STATE_ID_LEN);
                FUZZ_CHECK(strspn(v[i].id, "0123456789abcdef-") == INTERP_STATE_ID_LEN);
                for (size_t k = 0; k < i; k++)
                        FUZZ_CHECK(strcmp(v[i].id, v[k].id) != 0);
                FUZZ_CHECK(known(v[i].language));
                FUZZ_CHECK(v[i].cwd[0] == '/' && strlen(v[i].cwd) <= INTERP_STATE_CWD_MAX);
                FUZZ_CHECK(v[i].pid >= 0 && v[i].pid <= INT32_MAX);
        }
        char *text = interp_state_format(v, n);
        FUZZ_CHECK(interp_state_parse(text, strlen(text), max, LANGS, &w, &m) == 0);
        FUZZ_CHECK(m == n);
        for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(strcmp(v[i].id, w[i].id) == 0);
                FUZZ_CHECK(strcmp(v[i].language, w[i].language) == 0);
                FUZZ_CHECK(strcmp(v[i].cwd, w[i].cwd) == 0);
                FUZZ_CHECK(v[i].pid == w[i].pid);
        }
        free(text);
        interp_state_free(v, n);
        interp_state_free(w, m);
        return 0;
}
