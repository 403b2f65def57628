/* SPDX-License-Identifier: MIT */
/* sandboxes.c — the SeaCloud face's sandbox routes (control-plane.md §1–§8). */
#include "coved/api/seacloud/seacloud.h"
#include "coved/coved.h"
#include "coved/http/http.h"
#include "coved/manager/manager.h"
#include "coved/templates/templates.h"
#include "coved/api/seacloud/netpolicy.h"
#include "coved/api/validate.h"
#include "lib/b64.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/path.h"
#include "lib/timeutil.h"
#include "lib/utf8.h"

#include <ctype.h>
#include <strings.h>

#define AGENT_VERSION_STR "0.1.0"

enum render_kind {
        RENDER_SANDBOX, /* create / connect */
        RENDER_DETAIL,  /* GET one */
        RENDER_LISTED,  /* list items */
};

static void set_time(json_t *o, const char *key, int64_t ms)
{
        char ts[TIME_RFC3339_MAX];
        time_format_rfc3339(ms, ts);
        json_object_set_new(o, key, json_string(ts));
}

static json_t *render(struct http_req *r, const struct sandbox_rec *sb, enum render_kind kind)
{
        struct coved *cd = r->cd;
        json_t *o = json_object();
        json_object_set_new(o, "templateID", json_string(sb->template_id));
        if (sb->alias)
                json_object_set_new(o, "alias", json_string(sb->alias));
        json_object_set_new(o, "sandboxID", json_string(sb->id));
        json_object_set_new(o, "clientID", json_string(cd->cfg.node_name));
        json_object_set_new(o, "envdVersion", json_string(AGENT_VERSION_STR));
        if (kind != RENDER_LISTED) {
                cleanup_free char *url = xasprintf("%s/envd/%s", cd->cfg.public_url, sb->id);
                json_object_set_new(o, "envdAccessToken", json_string(sb->access_token));
                json_object_set_new(o, "envdUrl", json_string(url));
                json_object_set_new(o, "trafficAccessToken", json_string(sb->access_token));
        }
        json_object_set_new(o, "status", json_string(sandbox_state_to_string(sb->state)));
        json_object_set_new(o, "state", json_string(sandbox_state_to_string(sb->state)));
        set_time(o, "startedAt", sb->started_at);
        set_time(o, "endAt", sb->end_at);
        if (sb->activated_at > 0)
                set_time(o, "activatedAt", sb->activated_at);
        if (kind != RENDER_LISTED)
                json_object_set(o, "timeline", sb->timeline ? sb->timeline : json_array());
        if (sb->diagnostic && json_is_object(sb->diagnostic))
                json_object_set(o, "diagnostic", sb->diagnostic);
        json_object_set_new(o, "network", json_deep_copy(sb->network));
        if (kind != RENDER_SANDBOX) {
                json_object_set_new(o, "cpuCount", json_integer(sb->cpu_count));
                json_object_set_new(o, "memoryMB", json_integer(sb->memory_mb));
                json_object_set_new(o, "diskSizeMB", json_integer(sb->disk_size_mb));
                json_object_set(o, "metadata", sb->metadata ? sb->metadata : json_object());
                json_object_set_new(o, "lifecycle",
                                    json_pack("{s:s, s:b}", "onTimeout",
                                              sb->auto_pause ? "pause" : "kill", "autoResume",
                                              sb->auto_resume));
                json_object_set(o, "volumeMounts",
                                sb->volume_mounts ? sb->volume_mounts : json_array());
        }
        return o;
}

static const char *team_of(struct http_req *r)
{
        return r->auth.team_id;
}

/* ---- POST /sandboxes ---- */

struct create_req {
        char *template_id;
        struct json_int timeout;
        struct json_bool wait_ready, auto_pause, auto_resume, allow_internet;
        json_t *metadata, *env_vars, *network, *volume_mounts;
};

static const struct json_field create_fields[] = {
        /* Refused first, as the spec orders the checks. */
        { "timeoutMs", json_take_refused, 0, 0, 0, 0,
          "timeoutMs is no longer supported in sandbox create requests; use timeout seconds" },
        { "secure", json_take_refused, 0, 0, 0, 0, "secure is not supported" },
        { "mcp", json_take_refused, 0, 0, 0, 0, "mcp is not supported" },
        { "volume_mounts", json_take_refused, 0, 0, 0, 0, "volume_mounts is not supported" },
        { "templateID", json_take_str, offsetof(struct create_req, template_id), 0, 0, 1024 },
        { "timeout", json_take_int, offsetof(struct create_req, timeout), 0, 0, 86400 },
        { "waitReady", json_take_bool, offsetof(struct create_req, wait_ready), 0, 0, 0 },
        { "autoPause", json_take_bool, offsetof(struct create_req, auto_pause), 0, 0, 0 },
        { "autoResume", json_take_bool, offsetof(struct create_req, auto_resume), 0, 0, 0 },
        { "allowInternetAccess", json_take_bool, offsetof(struct create_req, allow_internet), 0, 0,
          0 },
        { "metadata", json_take_json, offsetof(struct create_req, metadata), 0, 0, 0 },
        { "envVars", json_take_json, offsetof(struct create_req, env_vars), 0, 0, 0 },
        { "network", json_take_json, offsetof(struct create_req, network), 0, 0, 0 },
        { "volumeMounts", json_take_json, offsetof(struct create_req, volume_mounts), 0, 0, 0 },
        {},
};

static void create_req_release(struct create_req *q)
{
        free(q->template_id);
        json_decref(q->metadata);
        json_decref(q->env_vars);
        json_decref(q->network);
        json_decref(q->volume_mounts);
}

#define VOLUME_MOUNTS_MAX     16
#define VOLUME_MOUNT_PATH_MAX 4096

/* control-plane.md §4.1 volumeMounts: ≤ 16 of {name, path}; path absolute, not "/", no ".."
 * segment, ≤ 4096 bytes, unique. Whether the names exist in the team is the manager's (404). */
static int check_volume_mounts(json_t *v, struct cove_err **err)
{
        size_t i;
        json_t *m;
        if (!json_is_array(v))
                return cove_err_set(err, EINVAL, "field 'volumeMounts' must be an array");
        if (json_array_size(v) > VOLUME_MOUNTS_MAX)
                return cove_err_set(err, EINVAL, "field 'volumeMounts' has more than %d mounts",
                                    VOLUME_MOUNTS_MAX);
        json_array_foreach (v, i, m) {
                json_t *jn = json_object_get(m, "name"), *jp = json_object_get(m, "path");
                const char *name = json_string_value(jn);
                const char *path = json_string_value(jp);
                /* Read as C strings below: a NUL would silently cut either short. */
                if (!json_is_object(m) || !name || !*name || strlen(name) != json_string_length(jn))
                        return cove_err_set(err, EINVAL,
                                            "field 'volumeMounts[%zu].name' must be a string", i);
                if (!path || strlen(path) != json_string_length(jp))
                        return cove_err_set(err, EINVAL,
                                            "field 'volumeMounts[%zu].path' must be a string", i);
                size_t pl = strlen(path);
                bool dotdot = false;
                for (const char *p = path; (p = strstr(p, "..")); p += 2)
                        dotdot |= (p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0');
                if (path[0] != '/' || path[strspn(path, "/")] == '\0' || dotdot ||
                    pl > VOLUME_MOUNT_PATH_MAX)
                        return cove_err_set(err, EINVAL,
                                            "field 'volumeMounts[%zu].path': '%s' must be an "
                                            "absolute path other than '/', without '..', of at "
                                            "most %d bytes",
                                            i, path, VOLUME_MOUNT_PATH_MAX);
                cleanup_free char *norm = path_normalize(NULL, path);
                for (size_t k = 0; k < i; k++) {
                        cleanup_free char *other = path_normalize(
                                NULL,
                                json_string_value(json_object_get(json_array_get(v, k), "path")));
                        if (streq(norm, other))
                                return cove_err_set(err, EINVAL,
                                                    "field 'volumeMounts': path '%s' is used "
                                                    "twice",
                                                    path);
                }
        }
        return 0;
}

static int h_create(struct http_req *r)
{
        json_auto_t *body = NULL;
        cleanup_err struct cove_err *err = NULL;
        struct create_req q = { 0 };

        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = json_dispatch(body, create_fields, &q, &err);
        if (rc >= 0 && q.metadata)
                rc = validate_strmap("metadata", q.metadata, 64, 128, 1024, false, &err);
        if (rc >= 0 && q.env_vars)
                rc = validate_env_vars("envVars", q.env_vars, &err);
        json_t *policy = NULL;
        json_auto_t *base = NULL;
        if (rc >= 0 && !q.allow_internet.set && !netpolicy_sets_egress(q.network))
                rc = netpolicy_default(r->cd, &base, &err);
        if (rc >= 0)
                rc = netpolicy_from_request(q.network, base, NULL, &policy, &err);
        if (rc >= 0 && q.allow_internet.set) {
                json_t *n = q.network ? json_object_get(q.network, "allowInternetAccess") : NULL;
                if (n && json_is_boolean(n) && json_is_true(n) != q.allow_internet.v)
                        rc = cove_err_set(
                                &err, EINVAL,
                                "allowInternetAccess conflicts with network.allowInternetAccess");
                else
                        json_object_set_new(policy, "allowInternetAccess",
                                            json_boolean(q.allow_internet.v));
        }
        if (rc >= 0 && q.volume_mounts)
                rc = check_volume_mounts(q.volume_mounts, &err);
        if (rc < 0) {
                json_decref(policy);
                create_req_release(&q);
                return http_reply_err(r, err);
        }

        struct create_params p = {
                .team_id = team_of(r),
                .key_id = r->auth.key_id,
                .template_ref = q.template_id,
                .timeout_s = q.timeout.set ? q.timeout.v : 0,
                .wait_ready = q.wait_ready.set && q.wait_ready.v,
                .auto_pause = q.auto_pause.set && q.auto_pause.v,
                .auto_resume = q.auto_resume.set && q.auto_resume.v,
                .metadata = q.metadata,
                .env_vars = q.env_vars,
                .network = policy,
                .volume_mounts = q.volume_mounts,
        };
        struct sandbox_rec *sb = NULL;
        /* the template as build-plane.md §3 resolves it for this caller (team, visibility,
         * aliases, ":tag") */
        struct tpl_caller tc = { .team_id = team_of(r),
                                 .key_id = r->auth.key_id,
                                 .admin = r->auth.role && streq(r->auth.role, "admin") };
        struct template_rec *tpl = NULL;
        rc = templates_for_spawn(
                r->cd, &tc, q.template_id && *q.template_id ? q.template_id : "base", &tpl, &err);
        p.tpl = tpl;
        if (rc >= 0)
                rc = manager_create(r->cd, &p, &sb, &err);
        template_rec_free(tpl);
        json_decref(policy);
        create_req_release(&q);
        if (rc < 0)
                return http_reply_err(r, err);
        json_t *out = render(r, sb, RENDER_SANDBOX);
        sandbox_rec_free(sb);
        return http_reply_json(r, 201, out);
}

/* ---- GET /sandboxes ---- */

struct list_filter {
        json_t *metadata; /* key → value */
        bool bad;
        char bad_msg[256];
};

static void metadata_pairs_into(struct list_filter *f, const char *qs)
{
        const char *p = qs;
        while (*p) {
                const char *amp = strchr(p, '&');
                size_t l = amp ? (size_t)(amp - p) : strlen(p);
                if (l > 0) {
                        cleanup_free char *pair = xstrndup(p, l);
                        char *eq = strchr(pair, '=');
                        if (!eq) {
                                f->bad = true;
                                (void)snprintf(f->bad_msg, sizeof(f->bad_msg),
                                               "metadata pair '%s' has no '='", pair);
                                return;
                        }
                        *eq = '\0';
                        /* the outer layer was decoded with the query: decode key and value once
                         * more */
                        cleanup_free char *kd = pct_decode(pair, strlen(pair), true, NULL);
                        cleanup_free char *vd = pct_decode(eq + 1, strlen(eq + 1), true, NULL);
                        json_object_set_new(f->metadata, kd, json_string(vd));
                }
                if (!amp)
                        break;
                p = amp + 1;
        }
}

static void list_query_cb(const char *k, const char *v, void *ud)
{
        struct list_filter *f = ud;
        if (f->bad)
                return;
        if (streq(k, "metadata")) {
                metadata_pairs_into(f, v);
        } else if (strncmp(k, "metadata[", 9) == 0 && k[strlen(k) - 1] == ']') {
                cleanup_free char *key = xstrndup(k + 9, strlen(k) - 10);
                json_object_set_new(f->metadata, key, json_string(v));
        }
}

static int h_list(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_strv char **states = http_query_list(r, "state");
        struct list_filter f = { .metadata = json_object() };
        uint64_t offset = 0, limit = 100;

        for (char **s = states; *s; s++)
                if (sandbox_state_from_string(*s) < 0) {
                        json_decref(f.metadata);
                        return http_reply_error(r, 400, "unknown state '%s'", *s);
                }
        http_query_foreach(r, list_query_cb, &f);
        if (f.bad) {
                json_decref(f.metadata);
                return http_reply_error(r, 400, "%s", f.bad_msg);
        }
        const char *lim = http_query(r, "limit");
        if (lim && *lim) {
                int64_t l;
                if (safe_atoi64(lim, &l) < 0 || l < 0) {
                        json_decref(f.metadata);
                        return http_reply_error(r, 400, "query 'limit' must be an integer 0-100");
                }
                limit = l == 0 ? 100 : (uint64_t)MIN(l, 100);
        }
        const char *tok = http_query(r, "nextToken");
        if (tok && *tok) {
                unsigned char *dec = NULL;
                size_t dl = 0;
                cleanup_free char *s = NULL;
                if (b64_decode(tok, strlen(tok), B64_URL, &dec, &dl) == 0) {
                        s = xstrndup((const char *)dec, dl);
                        free(dec);
                }
                if (!s || safe_atou64(s, &offset) < 0) {
                        json_decref(f.metadata);
                        return http_reply_error(r, 400, "invalid nextToken '%s'", tok);
                }
        }

        struct sandbox_rec **all = NULL;
        if (manager_list(r->cd, team_of(r), &all, &err) < 0) {
                json_decref(f.metadata);
                return http_reply_err(r, err);
        }
        json_t *arr = json_array();
        uint64_t matched = 0;
        bool has_next = false;
        for (size_t i = 0; all[i]; i++) {
                struct sandbox_rec *sb = all[i];
                if (states[0]) {
                        bool ok = false;
                        for (char **s = states; *s; s++)
                                ok |= sandbox_state_from_string(*s) == sb->state;
                        if (!ok)
                                continue;
                }
                const char *k;
                json_t *v;
                bool ok = true;
                json_object_foreach (f.metadata, k, v) {
                        json_t *have = json_object_get(sb->metadata, k);
                        if (!have || !json_equal(have, v))
                                ok = false;
                }
                if (!ok)
                        continue;
                if (matched >= offset && json_array_size(arr) < limit)
                        json_array_append_new(arr, render(r, sb, RENDER_LISTED));
                else if (matched >= offset)
                        has_next = true;
                matched++;
        }
        sandbox_list_free(all);
        json_decref(f.metadata);

        struct buf b;
        buf_init(&b, SIZE_MAX / 2);
        (void)json_to_buf(arr, &b);
        json_decref(arr);
        size_t len;
        char *s = buf_take(&b, &len);
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
        (void)MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
        (void)MHD_add_response_header(resp, "X-Has-Next", has_next ? "true" : "false");
        if (has_next) {
                char num[DECIMAL_STR_MAX(uint64_t)];
                (void)snprintf(num, sizeof(num), "%llu", (unsigned long long)(offset + limit));
                cleanup_free char *t = b64_encode_alloc(num, strlen(num), B64_URL | B64_NOPAD);
                (void)MHD_add_response_header(resp, "X-Next-Token", t);
        } else {
                /* libmicrohttpd refuses empty header values; a lone space is read as the empty
                 * value (RFC 9110 §5.5 trims surrounding whitespace), i.e. "X-Next-Token:". */
                (void)MHD_add_response_header(resp, "X-Next-Token", " ");
        }
        return http_reply_response(r, 200, resp);
}

/* ---- one sandbox ---- */

static int h_get(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = NULL;
        if (manager_get(r->cd, team_of(r), r->params[0], &sb, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = render(r, sb, RENDER_DETAIL);
        sandbox_rec_free(sb);
        return http_reply_json(r, 200, out);
}

static int h_delete(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        if (manager_delete(r->cd, team_of(r), r->params[0], &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

/* The {"timeout"} bodies of connect (0 keeps the deadline) and timeout (≥ 1 s). */
struct timeout_req {
        struct json_int timeout;
};

#define TIMEOUT_FIELDS(min)                                                                        \
        { "timeoutMs",                                                                             \
          json_take_refused,                                                                       \
          0,                                                                                       \
          0,                                                                                       \
          0,                                                                                       \
          0,                                                                                       \
          "timeoutMs is not supported on this route; use timeout seconds" },                       \
                { "timeout",      json_take_int, offsetof(struct timeout_req, timeout),            \
                  JSON_MANDATORY, min,           86400 },                                          \
        {                                                                                          \
        }

static const struct json_field connect_fields[] = { TIMEOUT_FIELDS(0) };
static const struct json_field timeout_fields[] = { TIMEOUT_FIELDS(1) };

/* Reads a required {"timeout"} body (400 replied otherwise). */
static int read_timeout_body(struct http_req *r, const struct json_field *fields, int64_t *ret)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;
        struct timeout_req q = { 0 };

        if (!r->body_present || r->body.len == 0)
                return http_reply_error(r, 400, "request body with 'timeout' is required"), -EINVAL;
        if (http_body_json(r, false, &body) < 0)
                return -EINVAL;
        if (json_dispatch(body, fields, &q, &err) < 0)
                return http_reply_err(r, err), -EINVAL;
        *ret = q.timeout.v;
        return 0;
}

static int h_connect(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        int64_t timeout;
        if (read_timeout_body(r, connect_fields, &timeout) < 0)
                return 0;
        struct sandbox_rec *sb = NULL;
        bool resumed = false;
        if (manager_connect(r->cd, team_of(r), r->params[0], timeout, &sb, &resumed, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = render(r, sb, RENDER_SANDBOX);
        sandbox_rec_free(sb);
        return http_reply_json(r, resumed ? 201 : 200, out);
}

static int h_pause(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        if (manager_pause(r->cd, team_of(r), r->params[0], &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

static int h_timeout(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        int64_t timeout;
        if (read_timeout_body(r, timeout_fields, &timeout) < 0)
                return 0;
        if (manager_set_timeout(r->cd, team_of(r), r->params[0], timeout, false, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

struct refresh_req {
        struct json_int duration;
};

static const struct json_field refresh_fields[] = {
        { "duration", json_take_int, offsetof(struct refresh_req, duration), 0, 0, 3600 },
        {},
};

static int h_refreshes(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;
        struct refresh_req q = { 0 };

        if (http_body_json(r, true, &body) < 0)
                return 0;
        if (json_dispatch(body, refresh_fields, &q, &err) < 0)
                return http_reply_err(r, err);
        int64_t duration = q.duration.set && q.duration.v > 0 ? q.duration.v : 300;
        if (manager_set_timeout(r->cd, team_of(r), r->params[0], duration, true, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

struct heartbeat_req {
        char *status;
};

static const struct json_field heartbeat_fields[] = {
        { "status", json_take_str, offsetof(struct heartbeat_req, status), JSON_MANDATORY, 0, 16 },
        {},
};

static void heartbeat_req_release(struct heartbeat_req *q)
{
        free(q->status);
}
#define cleanup_heartbeat_req __attribute__((cleanup(heartbeat_req_release)))

static int h_heartbeat(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        const char *id = r->params[0];
        /* team_id is set only when an API key authenticated the request (ROUTE_HEARTBEAT). */
        if (manager_heartbeat_allowed(r->cd, r->auth.team_id, http_header(r, "X-Access-Token"), id,
                                      &err) < 0)
                return http_reply_err(r, err);

        json_auto_t *body = NULL;
        cleanup_heartbeat_req struct heartbeat_req q = { 0 };
        if (http_body_json(r, false, &body) < 0)
                return 0;
        if (json_dispatch(body, heartbeat_fields, &q, NULL) < 0 || !q.status ||
            (!streq(q.status, "starting") && !streq(q.status, "healthy") &&
             !streq(q.status, "error")))
                return http_reply_error(r, 400,
                                        "field 'status' must be 'starting', 'healthy' or 'error'");
        const char *status = q.status;
        if (manager_heartbeat(r->cd, id, status, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_wrapped(r, 200, json_pack("{s:b, s:s}", "received", 1, "status", status));
}

/* ---- network (control-plane.md §7.6) ---- */

static int h_network(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL, *policy = NULL;
        struct sandbox_rec *sb = NULL;
        const char *id = r->params[0];
        int rc;

        if (http_body_json(r, false, &body) < 0)
                return 0;
        if (!json_is_object(body))
                return http_reply_error(r, 400, "request body must be a JSON object");
        if (!netpolicy_has_fields(body))
                return http_reply_error(r, 400, "no network policy fields");
        if (manager_get(r->cd, team_of(r), id, &sb, &err) < 0)
                return http_reply_err(r, err);
        rc = netpolicy_from_request(body, sb->network, sb->egress, &policy, &err);
        sandbox_rec_free(sb);
        if (rc >= 0)
                rc = manager_set_network(r->cd, team_of(r), id, policy, &err);
        if (rc < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

/* ---- logs ---- */

static int level_rank(const char *l)
{
        if (!l)
                return -1;
        if (streq(l, "debug"))
                return 0;
        if (streq(l, "info"))
                return 1;
        if (streq(l, "warn"))
                return 2;
        if (streq(l, "error"))
                return 3;
        return -1;
}

static int h_logs(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        const char *id = r->params[0];
        uint64_t cursor = 0, limit = 100;
        const char *v;
        if ((v = http_query(r, "cursor")) && *v &&
            (safe_atou64(v, &cursor) < 0 || cursor > INT64_MAX))
                return http_reply_error(r, 400, "query 'cursor' must be an integer >= 0");
        if ((v = http_query(r, "limit")) && *v && (safe_atou64(v, &limit) < 0 || limit > 1000))
                return http_reply_error(r, 400, "query 'limit' must be an integer 0-1000");
        if (limit == 0)
                limit = 100;
        const char *direction = http_query(r, "direction");
        if (!direction || !*direction)
                direction = "forward";
        if (!streq(direction, "forward") && !streq(direction, "backward"))
                return http_reply_error(r, 400,
                                        "query 'direction' must be 'forward' or 'backward'");
        bool backward = streq(direction, "backward");
        const char *level = http_query(r, "level");
        if (level && !*level)
                level = NULL;
        if (level && level_rank(level) < 0)
                return http_reply_error(r, 400, "query 'level' must be debug, info, warn or error");
        const char *search = http_query(r, "search");
        if (search && !*search)
                search = NULL;
        if (search && utf8_count_chars(search) > 256)
                return http_reply_error(r, 400, "query 'search' is longer than 256 characters");

        struct log_query q = {
                .cursor = (int64_t)cursor,
                .limit = (int64_t)limit,
                .backward = backward,
                .min_level = level ? level_rank(level) : 0,
                .search = search,
        };
        struct log_page page = { 0 };
        if (manager_logs(r->cd, team_of(r), id, &q, &page, &err) < 0)
                return http_reply_err(r, err);

        json_t *arr = json_array();
        int64_t last = 0;
        for (struct log_rec **p = page.entries; *p; p++) {
                struct log_rec *l = *p;
                char ts[TIME_RFC3339_MAX];
                time_format_rfc3339(l->ts, ts);
                json_t *fields = json_deep_copy(l->fields ? l->fields : json_object());
                char seq[DECIMAL_STR_MAX(int64_t)];
                (void)snprintf(seq, sizeof(seq), "%lld", (long long)l->seq);
                json_object_set_new(fields, "seq", json_string(seq));
                json_array_append_new(arr,
                                      json_pack("{s:s, s:s, s:s, s:o}", "timestamp", ts, "message",
                                                l->message, "level", l->level, "fields", fields));
                last = l->seq;
        }
        log_list_free(page.entries);

        json_t *query = json_pack("{s:s, s:s, s:I}", "sandboxID", id, "direction", direction,
                                  "limit", (json_int_t)limit);
        if (level)
                json_object_set_new(query, "level", json_string(level));
        if (search)
                json_object_set_new(query, "search", json_string(search));
        json_t *out =
                json_pack("{s:o, s:b, s:o}", "logs", arr, "hasMore", page.has_more, "query", query);
        if (page.has_more)
                json_object_set_new(out, "nextCursor",
                                    json_integer(backward ? last - 1 : last + 1));
        if (json_array_size(arr) == 0) {
                const char *reason = page.retained == 0   ? "no_logs_yet"
                                     : page.in_window > 0 ? "filters_applied"
                                                          : "cursor_window_empty";
                const char *msg = page.retained == 0 ? "the sandbox has no log entries yet"
                                  : page.in_window > 0
                                          ? "entries exist but the level or search filters "
                                            "excluded them"
                                          : "the cursor lies outside the retained entries";
                json_object_set_new(out, "diagnostic",
                                    json_pack("{s:s, s:s}", "reason", reason, "message", msg));
        }
        return http_reply_json(r, 200, out);
}

const struct route seacloud_sandbox_routes[] = {
        { "POST", "sandboxes", h_create, 0, 0, NULL },
        { "GET", "sandboxes", h_list, ROUTE_INLINE, 0, NULL },
        { "GET", "sandboxes/:id", h_get, ROUTE_INLINE, 0, NULL },
        { "DELETE", "sandboxes/:id", h_delete, 0, 0, NULL },
        { "POST", "sandboxes/:id/connect", h_connect, 0, 0, NULL },
        { "POST", "sandboxes/:id/pause", h_pause, 0, 0, NULL },
        { "POST", "sandboxes/:id/timeout", h_timeout, 0, 0, NULL },
        { "POST", "sandboxes/:id/refreshes", h_refreshes, 0, 0, NULL },
        { "POST", "sandboxes/:id/heartbeat", h_heartbeat, ROUTE_HEARTBEAT, 0, NULL },
        { "PUT", "sandboxes/:id/network", h_network, 0, 0, NULL },
        { "GET", "sandboxes/:id/logs", h_logs, ROUTE_INLINE, 0, NULL },
        {},
};
