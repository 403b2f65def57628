/* SPDX-License-Identifier: MIT */
/*
 * fuzz-e2b-steps.c — the BuildRequest of E2B's template builder (build/request.c
 * build_req_parse_e2b(), steps with E2B's args: COPY [src, dest, user?, mode?], RUN [command,
 * user?], USER [name, sudo?]; e2b.md §2.7), as any API client sends it to
 * POST /v2/templates/{id}/builds/{buildID}. The input is the JSON body.
 *
 * Checked: a refusal is EINVAL with a message and hands out nothing; an accepted request is
 * marked E2B, every step has its canonical arity (COPY 2 non-empty args and a filesHash, RUN /
 * WORKDIR / USER one non-empty arg, ENV an even, non-zero count), a COPY mode is at most 07777,
 * a step user is non-empty, only USER has sudo; and the same body through the SeaCloud parser
 * is never accepted with fewer checks (a body both accept has the same steps).
 */
#include "fuzz.h"
#include "build/request.h"
#include "lib/err.h"

#include <errno.h>
#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        json_error_t jerr;
        json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!body)
                return 0;
        struct build_req q = { 0 }, plain = { 0 };
        struct cove_err *err = NULL;
        int r = build_req_parse_e2b(body, &q, &err);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL && err && err->msg && *err->msg);
                FUZZ_CHECK(!q.steps && q.n_steps == 0 && !q.e2b);
                cove_err_free(&err);
        } else {
                FUZZ_CHECK(q.e2b && !err);
                for (size_t i = 0; i < q.n_steps; i++) {
                        const struct build_step *st = &q.steps[i];
                        FUZZ_CHECK(st->e2b);
                        FUZZ_CHECK(st->args && !st->args[st->n_args]);
                        FUZZ_CHECK(!st->user || *st->user);
                        FUZZ_CHECK(!st->sudo || st->type == BUILD_STEP_USER);
                        FUZZ_CHECK(!st->has_mode ||
                                   (st->type == BUILD_STEP_COPY && st->mode <= 07777));
                        switch (st->type) {
                        case BUILD_STEP_COPY:
                                FUZZ_CHECK(st->n_args == 2 && *st->args[0] && *st->args[1]);
                                FUZZ_CHECK(st->files_hash);
                                break;
                        case BUILD_STEP_RUN:
                        case BUILD_STEP_WORKDIR:
                        case BUILD_STEP_USER:
                                FUZZ_CHECK(st->n_args == 1 && *st->args[0]);
                                break;
                        case BUILD_STEP_ENV:
                                FUZZ_CHECK(st->n_args > 0 && st->n_args % 2 == 0);
                                FUZZ_CHECK(!st->user);
                                break;
                        case BUILD_STEP_CONTEXT:
                        case BUILD_STEP_FILES:
                                FUZZ_CHECK(st->n_args == 0 && !st->user);
                                break;
                        case _BUILD_STEP_TYPE_MAX:
                        case _BUILD_STEP_TYPE_INVALID:
                                FUZZ_CHECK(false);
                        }
                }
                if (build_req_parse(body, false, &plain, &err) == 0) {
                        FUZZ_CHECK(plain.n_steps == q.n_steps && !plain.e2b);
                        for (size_t i = 0; i < q.n_steps; i++)
                                FUZZ_CHECK(plain.steps[i].type == q.steps[i].type &&
                                           !plain.steps[i].e2b);
                }
                cove_err_free(&err);
        }
        build_req_release(&q);
        build_req_release(&plain);
        json_decref(body);
        return 0;
}
