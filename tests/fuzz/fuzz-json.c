/* SPDX-License-Identifier: MIT */
/*
 * fuzz-json.c — request bodies: json_parse() with the contract's limits, json_dispatch() over a
 * table that uses every take-function (lib/json.h), then the validators the control plane
 * runs on a create body: validate_strmap() on `metadata`, validate_env_vars() on `envVars`,
 * netpolicy_from_request() on `network` (coved/api/validate.c, coved/api/seacloud/netpolicy.c).
 *
 * Checked: a failure always carries a message; what json_to_buf() writes parses and is written
 * again the same; dispatched fields respect their bounds.
 */
#include "fuzz-body.h"
#include "coved/api/seacloud/netpolicy.h"
#include "coved/api/validate.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/macro.h"

struct body {
        char *template_id;
        struct json_int timeout, port;
        struct json_bool wait_ready;
        json_t *metadata, *env_vars, *network, *envs;
        char **cmd;
};

/* The create body's fields (control-plane.md §4.1) and the runtime's string lists and maps. */
static const struct json_field fields[] = {
        { "templateID", json_take_str, offsetof(struct body, template_id), 0, 0, 1024 },
        { "timeout", json_take_int, offsetof(struct body, timeout), 0, 0, 86400 },
        { "waitReady", json_take_bool, offsetof(struct body, wait_ready), 0, 0, 0 },
        { "metadata", json_take_json, offsetof(struct body, metadata), 0, 0, 0 },
        { "envVars", json_take_json, offsetof(struct body, env_vars), 0, 0, 0 },
        { "network", json_take_json, offsetof(struct body, network), 0, 0, 0 },
        { "envs", json_take_strmap, offsetof(struct body, envs), 0, 0, 0 },
        { "cmd", json_take_strv, offsetof(struct body, cmd), 0, 0, 0 },
        /* last, so that a missing one does not hide the others from the fuzzer */
        { "port", json_take_int, offsetof(struct body, port), JSON_MANDATORY, 1, 65535 },
        {},
};

static void body_release(struct body *b)
{
        free(b->template_id);
        json_decref(b->metadata);
        json_decref(b->env_vars);
        json_decref(b->network);
        json_decref(b->envs);
        strv_free(b->cmd);
}

static void check_err(int r, struct cove_err **err)
{
        FUZZ_CHECK(r >= 0 || (*err && (*err)->msg && (*err)->errnum == -r));
        cove_err_free(err);
}

static void dispatch(json_t *j)
{
        struct body b = { 0 };
        struct cove_err *err = NULL;
        int r = json_dispatch(j, fields, &b, &err);

        check_err(r, &err);
        if (r >= 0) {
                FUZZ_CHECK(b.port.set && b.port.v >= 1 && b.port.v <= 65535);
                FUZZ_CHECK(!b.timeout.set || (b.timeout.v >= 0 && b.timeout.v <= 86400));
                FUZZ_CHECK(!b.template_id || strlen(b.template_id) <= 1024);
                for (char **s = b.cmd; s && *s; s++)
                        FUZZ_CHECK(*s);
        }
        if (b.metadata)
                check_err(validate_strmap("metadata", b.metadata, 64, 128, 1024, false, &err),
                          &err);
        if (b.env_vars)
                check_err(validate_env_vars("envVars", b.env_vars, &err), &err);
        if (b.network) {
                json_t *policy = NULL;
                r = netpolicy_from_request(b.network, NULL, NULL, &policy, &err);
                check_err(r, &err);
                if (r >= 0) {
                        FUZZ_CHECK(json_is_object(policy) && json_object_size(policy) == 4);
                        json_decref(policy);
                }
        }
        body_release(&b);
}

FUZZ_JSON_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_t *j = NULL;
        struct cove_err *err = NULL;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        int r = json_parse((const char *)data, size, /* empty_ok= */ true, &j, &err);
        check_err(r, &err);
        if (r < 0)
                return 0;

        /* Round trip through the serialiser the replies and agent frames use. It writes reals
         * with 15 significant digits (lib/json.c), so the text, not the value, is the fixed
         * point: what it wrote parses, and writes again the same. */
        struct buf b, b2;
        buf_init(&b, SIZE_MAX);
        buf_init(&b2, SIZE_MAX);
        FUZZ_CHECK(json_to_buf(j, &b) == 0);
        json_t *again = NULL;
        r = json_parse(buf_str(&b), b.len, /* empty_ok= */ false, &again, &err);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(json_to_buf(again, &b2) == 0);
        FUZZ_CHECK(b.len == b2.len && memcmp(buf_str(&b), buf_str(&b2), b.len) == 0);
        json_decref(again);
        buf_release(&b);
        buf_release(&b2);

        dispatch(j);
        json_decref(j);
        return 0;
}
