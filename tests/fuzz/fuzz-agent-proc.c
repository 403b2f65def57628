/* SPDX-License-Identifier: MIT */
/*
 * fuzz-agent-proc.c — the process service's request parsers inside the sandbox
 * (src/agent/proc.h, proc_spawn.h): proc_selector_parse() on `process` (pid or tag),
 * proc_parse_pty() on `pty` (size optional and size required), proc_take_timeout_ms() on
 * `timeout` / `timeoutMs` and proc_take_envs() on `envs`, each on a request body parsed as the
 * agent parses its request frames (json_parse()).
 *
 * The bytes come from any holder of the sandbox's access token, through coved, unchanged.
 * Checked: a refusal is EINVAL with a message; an accepted selector names exactly one of a
 * pid in 1..INT32_MAX or the body's own tag string; an accepted PTY size is in
 * 1..PROC_PTY_SIZE_MAX, and 80x24 when the size is optional and absent; a timeout is in
 * 0..2^50 ms, 0 only when absent or zero; accepted envs are strings without NUL under names
 * that are neither empty nor hold '='.
 */
#include "fuzz-body.h"
#include "agent/proc.h"
#include "agent/proc_spawn.h"

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

static void timeout(json_t *body)
{
        int64_t ms = -1;
        struct cove_err *err = NULL;
        int r = proc_take_timeout_ms(body, &ms, &err);

        check_refusal(r, &err);
        if (r < 0)
                return;
        FUZZ_CHECK(ms >= 0 && ms <= INT64_C(1) << 50);
        json_t *tm = json_object_get(body, "timeoutMs"), *t = json_object_get(body, "timeout");
        if ((!tm || json_is_null(tm)) && (!t || json_is_null(t)))
                FUZZ_CHECK(ms == 0);
        else if ((!tm || json_is_null(tm)) && json_number_value(t) > 0)
                FUZZ_CHECK(ms > 0); /* a positive timeout never becomes "none" */
}

static void envs(json_t *body)
{
        json_t *v = json_object_get(body, "envs");
        struct cove_err *err = NULL;
        const char *k;
        json_t *e;

        if (!v)
                return;
        int r = proc_take_envs(v, "envs", &err);
        check_refusal(r, &err);
        if (r < 0)
                return;
        json_object_foreach (v, k, e) {
                FUZZ_CHECK(*k && !strchr(k, '='));
                FUZZ_CHECK(json_is_string(e) &&
                           strlen(json_string_value(e)) == json_string_length(e));
        }
}

FUZZ_JSON_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        json_t *body = fuzz_request_body(data, size);
        if (!body)
                return 0;
        selector(body);
        pty(body, /* size_required= */ false);
        pty(body, /* size_required= */ true);
        timeout(body);
        envs(body);
        json_decref(body);
        return 0;
}
