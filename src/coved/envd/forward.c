/* SPDX-License-Identifier: MIT */
/*
 * forward.c — envd → agent: agent request frames, the unary forward (one agent call whose
 * answer goes to the client as it is), agent replies as HTTP replies, errors deferred while a
 * body streams, and the buffering body callback.
 */
#include "coved/envd/envd.h"
#include "lib/json.h"
#include "lib/macro.h"

#include <stdarg.h>

/* The agent's "user 'x' not found" (an unknown acting user). */
static bool unknown_user(const char *msg, char *user, size_t n)
{
        size_t l = msg ? strlen(msg) : 0;
        if (l < 18 || strncmp(msg, "user '", 6) != 0 || !streq(msg + l - 11, "' not found"))
                return false;
        (void)snprintf(user, n, "%.*s", (int)(l - 17), msg + 6);
        return true;
}

int envd_reply_agent_error(struct http_req *r, const struct agent_reply *rep)
{
        unsigned status = rep->status >= 400 && rep->status <= 599 ? (unsigned)rep->status : 500;
        const struct envd_req *t = r->ctx;
        char user[256];
        if (t && t->e2b && status == 400 && unknown_user(rep->message, user, sizeof(user)))
                return http_reply_error(r, 401, "invalid username: '%s'", user);
        return http_reply_error(r, status, "%s", rep->message ? rep->message : "agent call failed");
}

int envd_reply_agent_body(struct http_req *r, struct agent_reply *rep)
{
        if (rep->body_text) {
                size_t len = rep->body_len;
                return http_reply_json_text(r, 200, TAKE_PTR(rep->body_text), len);
        }
        return http_reply_json(r, 200, rep->body ? json_incref(rep->body) : json_object());
}

void envd_defer_error(struct envd_req *t, unsigned status, const char *fmt, ...)
{
        char msg[BUF_MAX_ERR_MSG];
        va_list ap;

        if (t->err_status)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        t->err_status = status;
        t->err_msg = xstrdup(msg);
}

int envd_reply_deferred(struct http_req *r, struct envd_req *t)
{
        return http_reply_error(r, t->err_status, "%s", t->err_msg ? t->err_msg : "request failed");
}

json_t *envd_agent_request(struct envd_req *t, const char *op, json_t *body, bool with_env)
{
        json_t *j = json_pack("{s:s, s:s}", "op", op, "user", t->user);
        if (!j)
                abort();
        if (t->user_fallback)
                json_object_set_new(j, "user_fallback", json_string(t->user_fallback));
        if (t->e2b) {
                json_object_set_new(j, "dialect", json_string("e2b"));
                /* relative paths of this face resolve against it (e2b.md §4.2) */
                if (t->rec->workdir && *t->rec->workdir)
                        json_object_set_new(j, "workdir", json_string(t->rec->workdir));
        }
        if (with_env) {
                /* Cove's variables (control-plane.md §7.5); the sandbox's own may override. */
                cleanup_free char *api = xasprintf("http://cove.internal:%u", t->cd->cfg.port);
                json_t *env =
                        json_pack("{s:s, s:s}", "COVE_SANDBOX_ID", t->rec->id, "COVE_API_URL", api);
                if (t->rec->env_vars && json_is_object(t->rec->env_vars))
                        json_object_update(env, t->rec->env_vars);
                json_object_set_new(j, "env", env);
                if (t->rec->workdir && *t->rec->workdir && !t->e2b)
                        json_object_set_new(j, "workdir", json_string(t->rec->workdir));
        }
        json_object_set_new(j, "body", body ? body : json_object());
        return j;
}

int envd_buffer_body(struct http_req *r, const char *p, size_t n)
{
        struct envd_req *t = r->ctx;

        if (t->body_over)
                return 0;
        if (r->body.len + n > t->body_limit || buf_add(&r->body, p, n) < 0) {
                t->body_over = true;
                buf_release(&r->body);
                /* Answered now (an early reply): the rest of the body is not read. */
                return http_reply_error(r, 413, "request body too large (limit %zu bytes)",
                                        t->body_limit);
        }
        return 0;
}

int envd_forward_unary(struct http_req *r, struct envd_req *t, const char *op, json_t *body,
                       bool with_env, int timeout_ms)
{
        cleanup_err struct cove_err *err = NULL;
        struct agent_reply rep = { 0 };
        json_t *req = envd_agent_request(t, op, body, with_env);
        int q = agent_client_call(t->cd, t->rec->id, req, timeout_ms, &rep, &err);

        json_decref(req);
        if (q < 0)
                return http_reply_err(r, err);
        q = rep.status == 200 ? envd_reply_agent_body(r, &rep) : envd_reply_agent_error(r, &rep);
        agent_reply_release(&rep);
        return q;
}

void envd_defer_err(struct envd_req *t, const struct cove_err *err)
{
        envd_defer_error(t, http_err_status(err), "%s", err ? err->msg : "internal error");
}

int envd_json_upload_begin(struct http_req *r, struct envd_req *t)
{
        uint64_t len;

        t->body_limit = ENVD_JSON_UPLOAD_MAX;
        r->body.max = ENVD_JSON_UPLOAD_MAX + 1;
        http_body_set_limit(r, ENVD_JSON_UPLOAD_MAX);
        if (http_body_length(r, &len) && len > t->body_limit)
                return http_reply_error(r, 413, "request body too large (limit %zu bytes)",
                                        t->body_limit);
        return 0;
}

int envd_body_object(struct http_req *r, bool empty_ok, json_t **ret)
{
        cleanup_err struct cove_err *err = NULL;
        json_t *body = NULL;

        if (json_parse(buf_str(&r->body), r->body.len, empty_ok, &body, &err) < 0)
                return http_reply_err(r, err), -EINVAL;
        if (!json_is_object(body)) {
                json_decref(body);
                return http_reply_error(r, 400, "request body must be a JSON object"), -EINVAL;
        }
        *ret = body;
        return 0;
}
