/* SPDX-License-Identifier: MIT */
/*
 * fuzz-agent-proc.c — the process service's request parsers inside the sandbox
 * (src/agent/proc.h): proc_selector_parse() on `process` (pid or tag) and proc_parse_pty() on
 * `pty` (size optional and size required), each on a request body parsed as the agent parses
 * its request frames (json_parse()).
 *
 * The bytes come from any holder of the sandbox's access token, through coved, unchanged.
 * Checked: a refusal is EINVAL with a message; an accepted selector names exactly one of a
 * pid in 1..INT32_MAX or the body's own tag string; an accepted PTY size is in
 * 1..PROC_PTY_SIZE_MAX, and 80x24 when the size is optional and absent.
 */
#include "fuzz.h"
#include "agent/proc.h"
#include "lib/json.h"

#include <errno.h>

static void check_refusal(int r, struct cove_err **err)
{
        FUZZ_CHECK(r >= 0 || (r == -EINVAL && *err && (*err)->msg && (*err)->errnum == EINVAL));
        FUZZ_CHECK(r < 0 || !*err);
        cove_err_free(err);
}

static void selector(json_t *body)
{
        struct selector sel = { .pid = -1, .tag = "unset" };
        struct cove_err *err = NULL;
        int r = proc_selector_parse(body, &sel, &err);

        check_refusal(r, &err);
        if (r < 0)
                return;
        json_t *tag = json_object_get(json_object_get(body, "process"), "tag");
        if (sel.pid != 0) {
                FUZZ_CHECK(sel.pid > 0 && !sel.tag);
        } else {
                FUZZ_CHECK(sel.tag && json_is_string(tag));
                FUZZ_CHECK(sel.tag == json_string_value(tag)); /* borrowed from the body */
        }
}

static void pty(json_t *body, bool size_required)
{
        unsigned short cols = 0, rows = 0;
        struct cove_err *err = NULL;
        json_t *p = json_object_get(body, "pty");
        int r = proc_parse_pty(p, "pty", size_required, &cols, &rows, &err);

        check_refusal(r, &err);
        if (r < 0)
                return;
        json_t *size = json_object_get(p, "size");
        if (!size || json_is_null(size)) {
                FUZZ_CHECK(!size_required && cols == 80 && rows == 24);
                return;
        }
        FUZZ_CHECK(cols >= 1 && cols <= PROC_PTY_SIZE_MAX);
        FUZZ_CHECK(rows >= 1 && rows <= PROC_PTY_SIZE_MAX);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        json_object_seed(1); /* reproducible hashing: same input, same run */
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_t *body = NULL;
        struct cove_err *err = NULL;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        if (json_parse((const char *)data, size, /* empty_ok= */ false, &body, &err) < 0) {
                FUZZ_CHECK(err && err->msg);
                cove_err_free(&err);
                return 0;
        }
        /* The agent refuses a body that is not an object before any op sees it (main.c). */
        if (json_is_object(body)) {
                selector(body);
                pty(body, /* size_required= */ false);
                pty(body, /* size_required= */ true);
        }
        json_decref(body);
        return 0;
}
