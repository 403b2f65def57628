/* SPDX-License-Identifier: MIT */
/*
 * fuzz-agent-fs.c — the file API's request parsers inside the sandbox (src/agent/fs.h): the
 * bodies of filesystem.* / files.* through fs_req_parse() with each of the five field tables,
 * then every path they carry through fs_path_resolve() and fs_path_resolve_json(), for a user
 * with a home, for root, and on the E2B face (`~`, the sandbox's working directory).
 *
 * The bytes come from any holder of the sandbox's access token, through coved, unchanged.
 * Checked: a refusal is a 400 with a message; accepted depth and mode are in their ranges;
 * a resolved path is absolute, shorter than FS_PATH_MAX, has no empty, "." or ".." segment
 * and no trailing '/', and normalises to itself; a path with a NUL byte is never accepted.
 */
#include "fuzz-body.h"
#include "agent/fs.h"
#include "lib/macro.h"

#include <errno.h>

static const struct json_field *const tables[] = {
        fs_fields_path, fs_fields_list, fs_fields_move, fs_fields_edit, fs_fields_write,
};

static void check_refusal(int r, struct cove_err **err)
{
        FUZZ_CHECK(r >= 0 || (*err && (*err)->msg && (*err)->status == 400));
        FUZZ_CHECK(r < 0 || !*err);
        cove_err_free(err);
}

static void check_resolved(const char *p)
{
        size_t n = strlen(p);

        FUZZ_CHECK(p[0] == '/' && n < FS_PATH_MAX);
        FUZZ_CHECK(n == 1 || p[n - 1] != '/');
        FUZZ_CHECK(!strstr(p, "//"));
        for (const char *s = p; s; s = strchr(s + 1, '/')) {
                FUZZ_CHECK(strncmp(s, "/./", 3) != 0 && !streq(s, "/."));
                FUZZ_CHECK(strncmp(s, "/../", 4) != 0 && !streq(s, "/.."));
        }
        char *again = NULL;
        FUZZ_CHECK(fs_path_normalize("/", p, &again) == 0);
        FUZZ_CHECK(streq(again, p));
        free(again);
}

/* Resolves p (a string the body parser accepted) and the body's JSON value v of the same field
 * for c, which must agree. */
static void resolve(const struct agent_call *c, const char *p, json_t *v, const char *what)
{
        struct cove_err *err = NULL;
        char *out = NULL, *out_json = NULL;
        int r = fs_path_resolve(c, p, what, &out, &err);

        check_refusal(r, &err);
        if (r >= 0)
                check_resolved(out);
        int rj = fs_path_resolve_json(c, v, what, &out_json, &err);
        check_refusal(rj, &err);
        if (rj >= 0) {
                check_resolved(out_json);
                FUZZ_CHECK(strlen(json_string_value(v)) == json_string_length(v));
        }
        if (p && v && json_is_string(v) && streq(p, json_string_value(v))) {
                FUZZ_CHECK((r >= 0) == (rj >= 0));
                FUZZ_CHECK(r < 0 || streq(out, out_json));
        }
        free(out);
        free(out_json);
}

static void body(json_t *b, const struct agent_call *c)
{
        for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
                struct fs_req q = { 0 };
                struct cove_err *err = NULL;
                struct agent_call call = *c;

                call.body = b;
                int r = fs_req_parse(&call, tables[i], &q, &err);
                check_refusal(r, &err);
                if (r >= 0) {
                        FUZZ_CHECK(!q.depth.set ||
                                   (q.depth.v >= 1 && q.depth.v <= FS_LIST_MAX_DEPTH));
                        FUZZ_CHECK(!q.mode.set || (q.mode.v >= 0 && q.mode.v <= 07777));
                        resolve(&call, q.path, json_object_get(b, "path"), "path");
                        resolve(&call, q.source, json_object_get(b, "source"), "source");
                        resolve(&call, q.destination, json_object_get(b, "destination"),
                                "destination");
                }
                fs_req_done(&q);
        }
}

FUZZ_JSON_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        json_t *b = fuzz_request_body(data, size);
        if (!b)
                return 0;
        struct agent_user user = { .name = "user", .home = "/home/user", .uid = 1000 };
        struct agent_user root = { .name = "root", .home = "/root" };
        struct agent_call as_user = { .fd = -1, .op = "filesystem.Stat", .user = &user };
        struct agent_call as_root = { .fd = -1, .op = "files.read", .user = &root };
        struct agent_call e2b = {
                .fd = -1, .op = "files.write", .user = &user, .workdir = "/home/user/project"
        };

        body(b, &as_user);
        body(b, &as_root);
        agent_e2b_dialect = true;
        body(b, &e2b);
        agent_e2b_dialect = false;
        json_decref(b);
        return 0;
}
