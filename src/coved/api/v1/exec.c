/* SPDX-License-Identifier: MIT */
/*
 * exec.c — POST /v1/sandboxes/{id}/exec (v1-api.md §10.1): one shell command to completion,
 * as one `run` call of the agent (docs/design/agent-protocol.md): `/bin/sh -c <command>` as
 * root, in its own process group, which gets SIGKILL when the timeout fires (so does every
 * child that ignores SIGTERM). The agent keeps up to 16 MiB per stream; here each stream is
 * cut to 10 MiB of UTF-8 (invalid bytes are U+FFFD already) at a character boundary.
 */
#include "coved/agent_client.h"
#include "coved/api/v1/v1.h"
#include "coved/api/validate.h"
#include "coved/coved.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/utf8.h"

#define V1_EXEC_DEFAULT_S   30
#define V1_EXEC_MAX_S       (5 * 60)
#define V1_EXEC_OUTPUT_MAX  (10 * 1024 * 1024)
#define V1_EXEC_IO_SLACK_MS (30 * 1000) /* the agent's own wait beyond the command's timeout */
#define V1_WORKDIR_MAX      4096

struct exec_req {
        char *command, *workdir, *cwd;
        json_t *env;
};

static const struct json_field exec_fields[] = {
        { "command", json_take_str, offsetof(struct exec_req, command), 0, 0, 1024 * 1024 },
        { "workdir", json_take_str, offsetof(struct exec_req, workdir), 0, 0, V1_WORKDIR_MAX },
        { "cwd", json_take_str, offsetof(struct exec_req, cwd), 0, 0, V1_WORKDIR_MAX },
        { "env", json_take_json, offsetof(struct exec_req, env), 0, 0, 0 },
        {},
};

static void exec_req_release(struct exec_req *q)
{
        free(q->command);
        free(q->workdir);
        free(q->cwd);
        json_decref(q->env);
}
#define cleanup_exec_req __attribute__((cleanup(exec_req_release)))

/* At most max bytes of s, cut before a UTF-8 sequence that would cross max. */
static json_t *cut_text(json_t *s, size_t max, bool *truncated)
{
        const char *p = json_string_value(s);
        size_t n = json_string_length(s);
        if (!p)
                return json_string("");
        if (n <= max)
                return json_stringn(p, n);
        *truncated = true;
        size_t k = 0;
        while (k < max) {
                size_t l = utf8_sequence_length(p + k, n - k);
                if (l == 0 || k + l > max)
                        break;
                k += l;
        }
        return json_stringn(p, k);
}

static int parse_exec(struct http_req *r, struct exec_req *q, int64_t *ret_timeout_s,
                      struct cove_err **err)
{
        json_auto_t *body = NULL;
        int64_t timeout = V1_EXEC_DEFAULT_S;
        int rc = json_parse(buf_str(&r->body), r->body.len, /* empty_ok= */ true, &body, err);
        if (rc < 0)
                return rc;
        if ((rc = json_dispatch(body, exec_fields, q, err)) < 0)
                return rc;
        if (!q->command || !*q->command)
                return cove_err_set(err, EINVAL, "field 'command' is required (a shell command)");
        json_t *t = json_object_get(body, "timeout");
        if (t && !json_is_null(t)) {
                if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t) ||
                    duration_parse(json_string_value(t), &timeout) < 0)
                        return cove_err_set(err, EINVAL,
                                            "field 'timeout' must be a duration "
                                            "such as '30s', '5m' or '1h30m'");
                if (timeout == 0)
                        return cove_err_set(err, EINVAL,
                                            "field 'timeout' must be longer than zero");
                if (timeout > V1_EXEC_MAX_S)
                        return cove_err_set(err, EINVAL, "field 'timeout' must be at most 5m");
        }
        const char *dir = q->workdir ? q->workdir : q->cwd;
        if (dir && dir[0] != '/')
                return cove_err_set(err, EINVAL, "field 'workdir' must be an absolute path");
        if (q->env && (rc = validate_env_vars("env", q->env, err)) < 0)
                return rc;
        *ret_timeout_s = timeout;
        return 0;
}

/* The agent's `run` reply as an ExecResult. */
static json_t *exec_result(struct agent_reply *rep, struct cove_err **err)
{
        json_auto_t *body = NULL;
        if (rep->body_text) {
                json_error_t je;
                body = json_loadb(rep->body_text, rep->body_len, JSON_ALLOW_NUL, &je);
                if (!body) {
                        cove_err_set_status(err, 503, EPROTO, "sandbox agent unreachable");
                        return NULL;
                }
        } else {
                body = json_incref(rep->body ? rep->body : json_object());
        }
        int64_t code = 0, ms = 0;
        (void)json_get_integer(json_object_get(body, "exit_code"), &code);
        (void)json_get_integer(json_object_get(body, "duration_ms"), &ms);
        const char *error = json_string_value(json_object_get(body, "error"));
        bool timed_out = error && strncmp(error, "command timed out", 17) == 0;
        bool truncated = error && streq(error, "output truncated");
        json_t *out = cut_text(json_object_get(body, "stdout"), V1_EXEC_OUTPUT_MAX, &truncated);
        json_t *errs = cut_text(json_object_get(body, "stderr"), V1_EXEC_OUTPUT_MAX, &truncated);
        return json_pack("{s:I, s:o, s:o, s:b, s:b, s:I}", "exit_code", (json_int_t)code, "stdout",
                         out, "stderr", errs, "truncated", truncated, "timed_out", timed_out,
                         "duration_ms", (json_int_t)ms);
}

int v1_exec(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_exec_req struct exec_req q = { 0 };
        struct sandbox_rec *sb = NULL;
        const char *id = r->params[0];
        int64_t timeout_s = 0;

        /* Visibility before the body (403 whatever it says), the body before waking. */
        if (manager_v1_get(r->cd, r->auth.team_id, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(sb);
        sb = NULL;
        if (parse_exec(r, &q, &timeout_s, &err) < 0)
                return http_reply_err(r, err);
        if (manager_v1_target(r->cd, r->auth.team_id, id, &sb, &err) < 0)
                return http_reply_err(r, err);

        json_t *body = json_pack("{s:s, s:[s, s], s:I}", "cmd", "/bin/sh", "args", "-c", q.command,
                                 "timeoutMs", (json_int_t)(timeout_s * 1000));
        const char *dir = q.workdir ? q.workdir : q.cwd;
        if (dir)
                json_object_set_new(body, "cwd", json_string(dir));
        if (q.env)
                json_object_set(body, "env", q.env);
        json_t *req = json_pack("{s:s, s:s, s:O, s:o}", "op", "run", "user", "root", "env",
                                sb->env_vars && json_is_object(sb->env_vars) ? sb->env_vars
                                                                             : json_object(),
                                "body", body);
        if (sb->workdir && *sb->workdir)
                json_object_set_new(req, "workdir", json_string(sb->workdir));

        struct agent_reply rep = { 0 };
        int q_rc = agent_client_call(r->cd, id, req, (int)(timeout_s * 1000 + V1_EXEC_IO_SLACK_MS),
                                     &rep, &err);
        json_decref(req);
        manager_activity_end(r->cd, id);
        sandbox_rec_free(sb);
        if (q_rc < 0)
                return http_reply_err(r, err);
        if (rep.status != 200) {
                unsigned st = rep.status >= 400 && rep.status <= 599 ? (unsigned)rep.status : 500;
                q_rc = http_reply_error(r, st, "%s",
                                        rep.message ? rep.message : "the command could not run");
                agent_reply_release(&rep);
                return q_rc;
        }
        json_t *out = exec_result(&rep, &err);
        agent_reply_release(&rep);
        if (!out)
                return http_reply_err(r, err);
        return http_reply_json(r, 200, out);
}
