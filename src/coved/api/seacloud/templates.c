/* SPDX-License-Identifier: MIT */
/*
 * templates.c — the build plane's routes (build-plane.md §1): templates, builds, tags,
 * aliases, resolve, rollback, build files, the pre-signed upload (`PUT /build-files/…`, no API
 * key) and the direct build (`POST /build`). Each handler reads its parameters, calls
 * templates/ (which does the work and shapes the JSON) and replies.
 */
#include "coved/api/seacloud/seacloud.h"
#include "coved/coved.h"
#include "coved/templates/templates.h"
#include "lib/macro.h"
#include "lib/parse.h"

#define BUILD_FILE_MAX (UINT64_C(1) << 30)

static struct tpl_caller caller_of(struct http_req *r)
{
        return (struct tpl_caller){
                .team_id = r->auth.team_id,
                .key_id = r->auth.key_id,
                .admin = r->auth.role && streq(r->auth.role, "admin"),
        };
}

/* A non-negative integer query parameter (default when absent); -1 after a 400 reply. */
static int64_t query_int(struct http_req *r, const char *name, int64_t dflt, int64_t max, bool *bad)
{
        const char *v = http_query(r, name);
        int64_t x;
        if (!v || !*v)
                return dflt;
        if (safe_atoi64(v, &x) < 0 || x < 0 || (max > 0 && x > max)) {
                *bad = true;
                (void)http_reply_error(r, 400, "query parameter '%s' must be an integer%s", name,
                                       max > 0 ? " in range" : " ≥ 0");
                return -1;
        }
        return x;
}

static int reply(struct http_req *r, int rc, unsigned status, json_t *body, struct cove_err *err)
{
        if (rc < 0) {
                json_decref(body);
                return http_reply_err(r, err);
        }
        return http_reply_json(r, status, body);
}

static int h_create(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *body = NULL, *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = templates_create(r->cd, &c, body, &out, &err);
        json_decref(body);
        return reply(r, rc, 202, out, err);
}

static int h_list(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        bool bad = false;
        struct tpl_list_query q = {
                .visibility = http_query(r, "visibility"),
                .team_id = http_query(r, "teamID"),
        };
        q.limit = query_int(r, "limit", 0, 0, &bad);
        if (!bad)
                q.offset = query_int(r, "offset", 0, 0, &bad);
        if (bad)
                return 0;
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_list(r->cd, &c, &q, &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_get(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        bool bad = false;
        int64_t limit = query_int(r, "limit", 0, 0, &bad);
        if (bad)
                return 0;
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_get(r->cd, &c, r->params[0], limit, http_query(r, "nextToken"), &out,
                               &err);
        return reply(r, rc, 200, out, err);
}

static int h_patch(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *body = NULL, *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (http_body_json(r, true, &body) < 0)
                return 0;
        int rc = templates_update(r->cd, &c, r->params[0], body, &out, &err);
        json_decref(body);
        return reply(r, rc, 200, out, err);
}

static int h_delete(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        cleanup_err struct cove_err *err = NULL;
        if (templates_delete(r->cd, &c, r->params[0], &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

static int h_alias(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_alias_lookup(r->cd, &c, r->params[0], &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_resolve(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_resolve_ref(r->cd, &c, r->params[0], &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_tags_assign(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *body = NULL, *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = templates_tags_assign(r->cd, &c, body, &out, &err);
        json_decref(body);
        return reply(r, rc, 201, out, err);
}

static int h_tags_delete(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *body = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = templates_tags_delete(r->cd, &c, body, &err);
        json_decref(body);
        if (rc < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

static int h_tags_list(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_tags_list(r->cd, &c, r->params[0], &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_files(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_files_get(r->cd, &c, r->params[0], r->params[1], false, &out, &err);
        return reply(r, rc, 200, out, err);
}

static int trigger(struct http_req *r, const char *build_id)
{
        struct tpl_caller c = caller_of(r);
        json_t *body = NULL, *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (http_body_json(r, true, &body) < 0)
                return 0;
        int rc = templates_build_trigger(r->cd, &c, r->params[0], build_id, body, &out, &err);
        json_decref(body);
        return reply(r, rc, 202, out, err);
}

static int h_trigger(struct http_req *r)
{
        return trigger(r, NULL);
}

static int h_trigger_id(struct http_req *r)
{
        return trigger(r, r->params[1]);
}

static int h_builds(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        bool bad = false;
        int64_t offset = query_int(r, "offset", 0, 0, &bad);
        int64_t limit = bad ? 0 : query_int(r, "limit", 0, 0, &bad);
        if (bad)
                return 0;
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_builds_list(r->cd, &c, r->params[0], offset, limit, &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_build(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_build_get(r->cd, &c, r->params[0], r->params[1], &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_status(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        bool bad = false;
        int64_t off = query_int(r, "logsOffset", 0, 0, &bad);
        int64_t limit = bad ? 0 : query_int(r, "limit", 0, 100, &bad);
        if (bad)
                return 0;
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_build_status(r->cd, &c, r->params[0], r->params[1], off, limit,
                                        http_query(r, "level"), &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_logs(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        bool bad = false;
        int64_t cursor = query_int(r, "cursor", -1, 0, &bad);
        int64_t limit = bad ? 0 : query_int(r, "limit", 0, 100, &bad);
        if (bad)
                return 0;
        const char *dir = http_query(r, "direction");
        if (dir && !streq(dir, "forward") && !streq(dir, "backward"))
                return http_reply_error(r, 400, "direction must be forward or backward");
        const char *source = http_query(r, "source");
        if (source && !streq(source, "temporary") && !streq(source, "persistent"))
                return http_reply_error(r, 400, "source must be temporary or persistent");
        json_t *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        int rc = templates_build_logs(r->cd, &c, r->params[0], r->params[1], cursor, limit,
                                      dir && streq(dir, "backward"), http_query(r, "level"), &out,
                                      &err);
        return reply(r, rc, 200, out, err);
}

static int h_rollback(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *body = NULL, *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (http_body_json(r, true, &body) < 0)
                return 0;
        int rc = templates_rollback(r->cd, &c, r->params[0], body, &out, &err);
        json_decref(body);
        return reply(r, rc, 200, out, err);
}

static int h_direct_build(struct http_req *r)
{
        struct tpl_caller c = caller_of(r);
        json_t *body = NULL, *out = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (!streq(r->cd->cfg.direct_build, "on"))
                return http_reply_error(r, 404, "route not found");
        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = templates_direct_build(r->cd, &c, body, &out, &err);
        json_decref(body);
        return reply(r, rc, 202, out, err);
}

/* ---- PUT /build-files/{templateID}/{hash}: streamed into the store ---- */

struct upload_ctx {
        struct tpl_upload *u;
        struct cove_err *err;
        uint64_t bytes;
        bool too_large;
};

static void upload_ctx_free(void *p)
{
        struct upload_ctx *x = p;
        templates_upload_free(x->u);
        cove_err_free(&x->err);
        free(x);
}

static int upload_body(struct http_req *r, const char *p, size_t n)
{
        struct upload_ctx *x = r->ctx;
        if (x->err || x->too_large)
                return 0;
        x->bytes += n;
        if (x->bytes > BUILD_FILE_MAX) {
                x->too_large = true;
                return 0;
        }
        (void)templates_upload_write(x->u, p, n, &x->err);
        return 0;
}

static int upload_begin(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        uint64_t len;
        struct upload_ctx *x = xzalloc(sizeof(*x));
        r->ctx = x;
        r->ctx_free = upload_ctx_free;
        const char *opaque = http_query(r, "opaque");
        if (templates_upload_begin(r->cd, r->params[0], r->params[1], http_query(r, "expires"),
                                   http_query(r, "signature"), opaque && streq(opaque, "1"), &x->u,
                                   &err) < 0)
                return http_reply_err(r, err);
        if (http_body_length(r, &len) && len > BUILD_FILE_MAX)
                return http_reply_error(r, 413, "build archive larger than 1 GiB");
        r->body_cb = upload_body;
        /* The server stops a longer body as it arrives. */
        http_body_set_limit_reply(r, BUILD_FILE_MAX, 413, "build archive larger than 1 GiB");
        return 0;
}

static int h_upload(struct http_req *r)
{
        struct upload_ctx *x = r->ctx;
        cleanup_err struct cove_err *err = NULL;
        if (!x || !x->u)
                return http_reply_error(r, 500, "upload not prepared");
        if (x->too_large)
                return http_reply_error(r, 413, "build archive larger than 1 GiB");
        if (x->err)
                return http_reply_err(r, x->err);
        if (templates_upload_finish(x->u, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

const struct route seacloud_template_routes[] = {
        { "POST", "templates", h_create, 0, 0, NULL },
        { "GET", "templates", h_list, 0, 0, NULL },
        { "GET", "templates/aliases/:alias", h_alias, 0, 0, NULL },
        { "GET", "templates/resolve/:ref", h_resolve, 0, 0, NULL },
        { "POST", "templates/tags", h_tags_assign, 0, 0, NULL },
        { "DELETE", "templates/tags", h_tags_delete, 0, 0, NULL },
        { "GET", "templates/:id", h_get, 0, 0, NULL },
        { "PATCH", "templates/:id", h_patch, 0, 0, NULL },
        { "DELETE", "templates/:id", h_delete, 0, 0, NULL },
        { "GET", "templates/:id/tags", h_tags_list, 0, 0, NULL },
        { "GET", "templates/:id/files/:hash", h_files, 0, 0, NULL },
        { "POST", "templates/:id/builds", h_trigger, 0, 0, NULL },
        { "GET", "templates/:id/builds", h_builds, 0, 0, NULL },
        { "POST", "templates/:id/builds/:build", h_trigger_id, 0, 0, NULL },
        { "GET", "templates/:id/builds/:build", h_build, 0, 0, NULL },
        { "GET", "templates/:id/builds/:build/status", h_status, 0, 0, NULL },
        { "GET", "templates/:id/builds/:build/logs", h_logs, 0, 0, NULL },
        { "POST", "templates/:id/rollback", h_rollback, 0, 0, NULL },
        { "PUT", "build-files/:id/:hash", h_upload, ROUTE_NO_AUTH | ROUTE_RAW_BODY, 0,
          upload_begin },
        { "POST", "build", h_direct_build, 0, 0, NULL },
        {},
};
