/* SPDX-License-Identifier: MIT */
/*
 * fuzz-dockerfile.c — the Dockerfile parser and its variable expansion (src/build/dockerfile.c,
 * build-plane.md §7.5): a build request carries the Dockerfile as any client wrote it.
 *
 * The input is parsed as a Dockerfile; one that parses is lowered against a small base
 * environment into build steps. Every instruction's raw text is also expanded as Docker's shell
 * lexer would, in both modes, with a lookup that knows three variables. Checked: failures are
 * EINVAL-like with a message; a parsed Dockerfile has a FROM, at most DOCKERFILE_INSTR_MAX
 * instructions of known kinds in line order, an escape of '\\' or '`'; expansions stay within
 * DOCKERFILE_EXPAND_MAX and split mode yields a NULL-terminated vector.
 */
#include "fuzz.h"
#include "build/dockerfile.h"
#include "lib/err.h"
#include "lib/macro.h"

static const char *lookup(void *ud, const char *name)
{
        (void)ud;
        if (strcmp(name, "HOME") == 0)
                return "/root";
        if (strcmp(name, "EMPTY") == 0)
                return "";
        if (strcmp(name, "PATH") == 0)
                return "/usr/bin:/bin";
        return NULL;
}

static void expand(const char *raw, char escape)
{
        for (int split = 0; split < 2; split++) {
                char **words = NULL;
                struct cove_err *err = NULL;
                int r = dockerfile_expand(raw, escape, split, lookup, NULL, &words, &err);
                if (r < 0) {
                        FUZZ_CHECK(err && err->msg);
                        FUZZ_CHECK(!words);
                } else {
                        FUZZ_CHECK(words);
                        size_t n = 0;
                        for (char **w = words; *w; w++, n++)
                                FUZZ_CHECK(strlen(*w) <= DOCKERFILE_EXPAND_MAX);
                        FUZZ_CHECK(split || n == 1);
                }
                strv_free(words);
                cove_err_free(&err);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct dockerfile *df = NULL;
        struct cove_err *err = NULL;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        int r = dockerfile_parse((const char *)data, size, &df, &err);
        if (r < 0) {
                FUZZ_CHECK(err && err->msg && !df);
                cove_err_free(&err);
                return 0;
        }
        FUZZ_CHECK(df && df->from && *df->from);
        FUZZ_CHECK(df->escape == '\\' || df->escape == '`');
        FUZZ_CHECK(df->n_instrs <= DOCKERFILE_INSTR_MAX);
        FUZZ_CHECK(df->port >= 0 && df->port <= 65535);
        for (size_t i = 0; i < df->n_instrs; i++) {
                const struct df_instr *in = &df->instrs[i];
                FUZZ_CHECK(in->kind >= 0 && in->kind < _DF_KIND_MAX);
                FUZZ_CHECK(in->line >= 1 && (i == 0 || in->line >= df->instrs[i - 1].line));
                FUZZ_CHECK(in->raw);
                if (i < 64) /* enough to reach every expansion path without quadratic time */
                        expand(in->raw, df->escape);
        }

        static char *const base_env[] = { "PATH=/usr/bin:/bin", "HOME=/root", NULL };
        struct df_lower_opts o = { .base_env = base_env, .context_hash = "0123abcd" };
        struct build_step *steps = NULL;
        size_t n = 0;
        r = dockerfile_lower(df, &o, &steps, &n, &err);
        if (r < 0)
                FUZZ_CHECK(err && err->msg);
        else
                build_steps_free(steps, n);
        cove_err_free(&err);
        dockerfile_free(df);
        return 0;
}
