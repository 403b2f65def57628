/* SPDX-License-Identifier: MIT */
/*
 * templates.c — the E2B control plane's template and build routes (e2b.md §2.7) on the build
 * plane (templates/), and the routes Cove does not serve (§2.8, 501).
 *
 * Every route calls the same templates/ function as the SeaCloud face and reshapes its answer:
 * E2B's Template fields (envdVersion "0.6.13", createdBy as a UUID, statuses in E2B's four
 * words), `201` for the file link, `{}` for the trigger, millisecond log cursors. What differs
 * in the build itself (E2B's step conventions, opaque content-hash uploads) is the build
 * plane's, asked for by templates_build_trigger_e2b() and templates_files_get(opaque).
 */
#include "coved/api/e2b/e2b.h"
#include "coved/api/query.h"
#include "coved/coved.h"
#include "coved/templates/templates.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/rand.h"

#include <inttypes.h>

#define E2B_TEMPLATE_PAGE_MAX 100
#define E2B_BUILD_LOG_PAGE    100

static struct tpl_caller caller_of(struct http_req *r)
{
        return (struct tpl_caller){
                .team_id = r->auth.team_id,
                .key_id = r->auth.key_id,
                .admin = r->auth.role && streq(r->auth.role, "admin"),
        };
}

static int reply(struct http_req *r, int rc, unsigned status, json_t *body, struct cove_err *err)
{
        if (rc < 0) {
                json_decref(body);
                return http_reply_err(r, err);
        }
        return http_reply_json(r, status, body);
}

/* E2B's four build statuses (§2.7): a cancelled build is an error. */
static const char *status_of(const char *s)
{
        return s && streq(s, "cancelled") ? "error" : s ? s : "waiting";
}

static void map_status(json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));
        if (s && streq(s, "cancelled"))
                json_object_set_new(o, key, json_string("error"));
}

/* A UUID derived from a key ID (§2.7 createdBy: E2B types it as a UUID; Cove decision): two
 * FNV-1a 64 hashes with different bases, laid out as an RFC 9562 version 8 UUID. */
static char *key_uuid(const char *key_id)
{
        uint64_t h[2] = { 0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL };
        for (int k = 0; k < 2; k++)
                for (const unsigned char *p = (const unsigned char *)key_id; *p; p++) {
                        h[k] ^= *p;
                        h[k] *= 0x100000001b3ULL;
                }
        h[0] = (h[0] & ~UINT64_C(0xf000)) | UINT64_C(0x8000);       /* version 8 */
        h[1] = (h[1] & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62); /* variant 10 */
        return xasprintf("%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
                         h[0] >> 32, (h[0] >> 16) & 0xffff, h[0] & 0xffff, h[1] >> 48,
                         h[1] & UINT64_C(0xffffffffffff));
}

/* The build plane's template object in E2B's shape (changed in place). */
static void e2b_template(json_t *o)
{
        json_t *by = json_object_get(o, "createdBy");
        const char *id = json_string_value(json_object_get(by, "id"));
        if (id) {
                cleanup_free char *uuid = key_uuid(id);
                json_object_set_new(o, "createdBy", json_pack("{s:s, s:n}", "id", uuid, "email"));
        } else {
                json_object_set_new(o, "createdBy", json_null());
        }
        json_object_set_new(o, "envdVersion", json_string(E2B_ENVD_VERSION));
        map_status(o, "buildStatus");
        (void)json_object_del(o, "extensions");
        /* the code-interpreter SDK's default name resolves to the official code-interpreter
         * (§6): list it where the SDKs look for names */
        json_t *names = json_object_get(o, "names");
        if (json_array_size(names) == 1 && json_is_true(json_object_get(o, "public")) &&
            streq(json_string_value(json_array_get(names, 0)), "code-interpreter")) {
                json_array_append_new(names, json_string("code-interpreter-v1"));
                json_t *aliases = json_object_get(o, "aliases");
                if (json_is_array(aliases))
                        json_array_append_new(aliases, json_string("code-interpreter-v1"));
        }
}

/* ---- GET /templates, /v2/templates ---- */

/* One page of the caller's templates (templates_list() pages by at most 100). */
static int page(struct http_req *r, struct tpl_list_query *q, json_t **ret, struct cove_err **err)
{
        struct tpl_caller c = caller_of(r);
        return templates_list(r->cd, &c, q, ret, err);
}

static int list(struct http_req *r, bool v2)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_list_query q = { .team_id = http_query(r, "teamID") };
        uint64_t offset = 0;
        int64_t limit = 0;
        json_t *out = NULL, *more = NULL;

        if (q.team_id && !*q.team_id)
                q.team_id = NULL;
        if (v2 && (query_int(r, "limit", 0, INT64_MAX, 0, &limit) < 0 ||
                   e2b_offset_token(r, &offset) < 0))
                return 0;
        if (v2) {
                limit = limit == 0 ? E2B_TEMPLATE_PAGE_MAX
                                   : MIN(limit, (int64_t)E2B_TEMPLATE_PAGE_MAX);
                q.offset = (int64_t)offset;
                q.limit = limit;
                if (page(r, &q, &out, &err) < 0)
                        return http_reply_err(r, err);
                /* is there an item after this page? */
                q.offset = (int64_t)offset + limit;
                q.limit = 1;
                if (page(r, &q, &more, &err) < 0) {
                        json_decref(out);
                        return http_reply_err(r, err);
                }
        } else { /* every template, page by page */
                out = json_array();
                for (q.limit = E2B_TEMPLATE_PAGE_MAX;; q.offset += q.limit) {
                        json_t *p = NULL;
                        if (page(r, &q, &p, &err) < 0) {
                                json_decref(out);
                                return http_reply_err(r, err);
                        }
                        size_t n = json_array_size(p);
                        json_array_extend(out, p);
                        json_decref(p);
                        if ((int64_t)n < q.limit)
                                break;
                }
        }
        bool has_next = json_array_size(more) > 0;
        json_decref(more);
        size_t i;
        json_t *t;
        json_array_foreach (out, i, t)
                e2b_template(t);
        cleanup_free char *next =
                has_next ? e2b_offset_encode(offset + (uint64_t)json_array_size(out)) : NULL;
        return e2b_reply_array(r, out, next, v2, -1);
}

static int h_list(struct http_req *r)
{
        return list(r, false);
}

static int h_list_v2(struct http_req *r)
{
        return list(r, true);
}

/* ---- one template ---- */

static int h_get(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        int64_t limit = 0;
        json_t *out = NULL;
        if (query_int(r, "limit", 0, INT64_MAX, 0, &limit) < 0)
                return 0;
        const char *next = http_query(r, "nextToken");
        if (templates_get(r->cd, &c, r->params[0], limit, next && *next ? next : NULL, &out, &err) <
            0)
                return http_reply_err(r, err);
        e2b_template(out);
        size_t i;
        json_t *b;
        json_array_foreach (json_object_get(out, "builds"), i, b) {
                map_status(b, "status");
                json_object_set_new(b, "envdVersion", json_string(E2B_ENVD_VERSION));
        }
        return http_reply_json(r, 200, out);
}

/* PATCH /templates/{id}, /v2/templates/{id}: {public} → {names}. */
static int h_patch(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_auto_t *body = NULL;
        json_t *out = NULL;
        if (http_body_json(r, true, &body) < 0)
                return 0;
        json_t *pub = json_object_get(body, "public");
        json_auto_t *update = json_object();
        if (pub && !json_is_null(pub))
                json_object_set(update, "public", pub);
        int rc = templates_update(r->cd, &c, r->params[0], update, &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_delete(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        if (templates_delete(r->cd, &c, r->params[0], &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

/* GET /templates/aliases/{alias}: {templateID, public}; 404 makes Template.exists() false. */
static int h_alias(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        int rc = templates_alias_lookup(r->cd, &c, r->params[0], &out, &err);
        if (rc == -ENOENT && streq(r->params[0], "code-interpreter-v1")) {
                cove_err_free(&err);
                rc = templates_alias_lookup(r->cd, &c, "code-interpreter", &out, &err);
        }
        return reply(r, rc, 200, out, err);
}

/* ---- tags ---- */

static int h_tags(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        int rc = templates_tags_list(r->cd, &c, r->params[0], &out, &err);
        return reply(r, rc, 200, out, err);
}

static int h_tags_assign(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_auto_t *body = NULL;
        json_t *out = NULL;
        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = templates_tags_assign(r->cd, &c, body, &out, &err);
        return reply(r, rc, 201, out, err);
}

static int h_tags_delete(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_auto_t *body = NULL;
        if (http_body_json(r, false, &body) < 0)
                return 0;
        if (templates_tags_delete(r->cd, &c, body, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

/* ---- builds ---- */

/* A lower-case UUID v4 (§2.7: the Python SDK parses build IDs as UUIDs). */
static void uuid_v4(char out[37])
{
        unsigned char b[16];
        if (random_bytes(b, sizeof(b)) < 0)
                abort();
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        (void)snprintf(out, 37,
                       "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                       b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                       b[13], b[14], b[15]);
}

/* POST /v3/templates {name, tags?, alias?, teamID?, cpuCount?, memoryMB?} → 202. */
static int h_create(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_auto_t *body = NULL;
        json_t *out = NULL;
        char bid[37];

        if (http_body_json(r, false, &body) < 0)
                return 0;
        if (!json_is_object(body))
                return http_reply_error(r, 400, "request body must be a JSON object");
        json_t *name = json_object_get(body, "name"), *alias = json_object_get(body, "alias");
        if (name && !json_is_null(name) && !json_is_string(name))
                return http_reply_error(r, 400, "field 'name' must be a string");
        if (alias && !json_is_null(alias) && !json_is_string(alias))
                return http_reply_error(r, 400, "field 'alias' must be a string");
        bool by_alias = !json_is_string(name) || !*json_string_value(name);
        const char *n = json_string_value(by_alias ? alias : name);
        if (!n || !*n)
                return http_reply_error(r, 400, "field 'name' is required");
        /* a leading "<namespace>/" is dropped */
        const char *slash = strchr(n, '/');
        json_auto_t *create = json_pack("{s:s}", "name", slash ? slash + 1 : n);
        static const char *const pass[] = { "tags", "teamID", "cpuCount", "memoryMB" };
        for (size_t i = 0; i < ARRAY_SIZE(pass); i++) {
                json_t *v = json_object_get(body, pass[i]);
                if (v && !json_is_null(v))
                        json_object_set(create, pass[i], v);
        }
        if (!by_alias && json_is_string(alias) && *json_string_value(alias))
                json_object_set(create, "alias", alias);
        uuid_v4(bid);
        int rc = templates_create_with_build(r->cd, &c, create, bid, &out, &err);
        return reply(r, rc, 202, out, err);
}

/* GET /templates/{id}/files/{hash} → 201 {present, url}: the hash names the content (§2.7). */
static int h_files(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_t *out = NULL;
        int rc = templates_files_get(r->cd, &c, r->params[0], r->params[1], /* opaque= */ true,
                                     &out, &err);
        return reply(r, rc, 201, out, err);
}

/* POST /v2/templates/{id}/builds/{buildID} → 202 {}. */
static int h_trigger(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        json_auto_t *body = NULL;
        if (http_body_json(r, true, &body) < 0)
                return 0;
        if (templates_build_trigger_e2b(r->cd, &c, r->params[0], r->params[1], body, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_json(r, 202, json_object());
}

static int h_status(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        int64_t off = 0, limit = 0;
        json_t *out = NULL;
        if (query_int(r, "logsOffset", 0, INT64_MAX, 0, &off) < 0 ||
            query_int(r, "limit", 0, E2B_BUILD_LOG_PAGE, 0, &limit) < 0)
                return 0;
        const char *level = http_query(r, "level");
        if (templates_build_status(r->cd, &c, r->params[0], r->params[1], off, limit,
                                   level && *level ? level : NULL, &out, &err) < 0)
                return http_reply_err(r, err);
        /* reason only with error (never null: the Python SDK fails on it) */
        const char *s = json_string_value(json_object_get(out, "status"));
        bool cancelled = s && streq(s, "cancelled");
        json_object_set_new(out, "status", json_string(status_of(s)));
        if (cancelled)
                json_object_set_new(out, "reason",
                                    json_pack("{s:s}", "message", "build was cancelled"));
        else if (!json_is_object(json_object_get(out, "reason")))
                (void)json_object_del(out, "reason");
        return http_reply_json(r, 200, out);
}

static int h_logs(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct tpl_caller c = caller_of(r);
        int64_t cursor = -1, limit = 0;
        json_t *out = NULL;
        if (query_int(r, "cursor", 0, INT64_MAX, -1, &cursor) < 0 ||
            query_int(r, "limit", 0, E2B_BUILD_LOG_PAGE, 0, &limit) < 0)
                return 0;
        const char *dir = http_query(r, "direction");
        if (dir && *dir && !streq(dir, "forward") && !streq(dir, "backward"))
                return http_reply_error(r, 400,
                                        "query 'direction' must be 'forward' or 'backward'");
        const char *level = http_query(r, "level");
        int rc = templates_build_logs_ms(r->cd, &c, r->params[0], r->params[1], cursor, limit,
                                         dir && streq(dir, "backward"),
                                         level && *level ? level : NULL, &out, &err);
        return reply(r, rc, 200, out, err);
}

/* ---- not served (§2.8) ---- */

static int h_legacy_build(struct http_req *r)
{
        return http_reply_error(r, 501,
                                "legacy template builds (image push flow) are not supported by "
                                "Cove");
}

static int h_secrets(struct http_req *r)
{
        return http_reply_error(r, 501, "secrets are not supported by Cove");
}

static int h_volume_content(struct http_req *r)
{
        return http_reply_error(r, 501, "volume content is not supported by Cove");
}

static int h_keys(struct http_req *r)
{
        return http_reply_error(r, 501, "keys, access tokens and nodes are not supported by Cove");
}

/* A not-served prefix at depths 1–4, for every method. */
#define NOT_SERVED_AT(m, p, fn)                                                                    \
        { m, p, fn, 0, 0, NULL }, { m, p "/:a", fn, 0, 0, NULL },                                  \
                { m, p "/:a/:b", fn, 0, 0, NULL },                                                 \
        {                                                                                          \
                m, p "/:a/:b/:c", fn, 0, 0, NULL                                                   \
        }
#define NOT_SERVED(p, fn)                                                                          \
        NOT_SERVED_AT("GET", p, fn), NOT_SERVED_AT("POST", p, fn), NOT_SERVED_AT("PUT", p, fn),    \
                NOT_SERVED_AT("PATCH", p, fn), NOT_SERVED_AT("DELETE", p, fn)

const struct route e2b_template_routes[] = {
        { "GET", "templates", h_list, 0, 0, NULL },
        { "GET", "v2/templates", h_list_v2, 0, 0, NULL },
        { "GET", "templates/:id", h_get, 0, 0, NULL },
        { "PATCH", "templates/:id", h_patch, 0, 0, NULL },
        { "PATCH", "v2/templates/:id", h_patch, 0, 0, NULL },
        { "DELETE", "templates/:id", h_delete, 0, 0, NULL },
        { "GET", "templates/:id/tags", h_tags, 0, 0, NULL },
        { "POST", "templates/tags", h_tags_assign, 0, 0, NULL },
        { "DELETE", "templates/tags", h_tags_delete, 0, 0, NULL },
        { "GET", "templates/aliases/:alias", h_alias, 0, 0, NULL },
        { "POST", "v3/templates", h_create, 0, 0, NULL },
        { "GET", "templates/:id/files/:hash", h_files, 0, 0, NULL },
        { "POST", "v2/templates/:id/builds/:build", h_trigger, 0, 0, NULL },
        { "GET", "templates/:id/builds/:build/status", h_status, 0, 0, NULL },
        { "GET", "templates/:id/builds/:build/logs", h_logs, 0, 0, NULL },
        { "POST", "templates", h_legacy_build, 0, 0, NULL },
        { "POST", "v2/templates", h_legacy_build, 0, 0, NULL },
        { "POST", "templates/:id", h_legacy_build, 0, 0, NULL },
        { "POST", "templates/:id/builds/:build", h_legacy_build, 0, 0, NULL },
        NOT_SERVED("secrets", h_secrets),
        NOT_SERVED("volumecontent", h_volume_content),
        NOT_SERVED("api-keys", h_keys),
        NOT_SERVED("access-tokens", h_keys),
        NOT_SERVED("nodes", h_keys),
        {},
};
