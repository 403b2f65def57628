/* SPDX-License-Identifier: MIT */
/*
 * sandboxes.c — the E2B control plane's sandbox routes (e2b.md §2.1–§2.6): the same manager
 * calls as the SeaCloud face, E2B's objects, defaults (15 s on /sandboxes, 300 s on
 * /v2/sandboxes), list forms, and lifecycle semantics (connect only extends, pause of a paused
 * sandbox is 409, stopped sandboxes are invisible).
 */
#include "coved/api/e2b/e2b.h"
#include "coved/api/seacloud/netpolicy.h"
#include "coved/api/validate.h"
#include "coved/coved.h"
#include "coved/manager/manager.h"
#include "coved/obs/sampler.h"
#include "coved/templates/templates.h"
#include "lib/b64.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/timeutil.h"
#include "lib/urlpath.h"

#include <math.h>
#include <strings.h>

#define E2B_TIMEOUT_V1      15  /* s: POST /sandboxes without timeout (§2.3) */
#define E2B_TIMEOUT_V2      300 /* s: POST /v2/sandboxes, v2 connect */
#define E2B_TIMEOUT_MAX     86400
#define E2B_LIST_LIMIT      100
#define E2B_LOG_LIMIT       1000
#define E2B_METRICS_IDS_MAX 100
#define MIB                 (1024 * 1024)

/* ---- helpers ---- */

char *e2b_path_sandbox_id(struct http_req *r, const char *param)
{
        const char *id = param ? param : "";
        const char *dash = strchr(id, '-');
        if (dash && strchr(dash + 1, '-')) {
                (void)http_reply_error(r, 400, "invalid sandbox ID");
                return NULL;
        }
        return dash ? xstrndup(id, (size_t)(dash - id)) : xstrdup(id);
}

static void set_time(json_t *o, const char *key, int64_t ms)
{
        char ts[TIME_RFC3339_MAX];
        time_format_rfc3339(ms, ts);
        json_object_set_new(o, key, json_string(ts));
}

static const char *e2b_state(enum sandbox_state s)
{
        return s == SANDBOX_PAUSED ? "paused" : "running";
}

/* A sandbox of the caller's team that this face shows: stopped ones are 404 (§2.2). */
static int load(struct http_req *r, const char *id, struct sandbox_rec **ret, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int q = manager_get(r->cd, r->auth.team_id, id, &sb, err);
        if (q < 0)
                return q;
        if (sb->state == SANDBOX_STOPPED) {
                sandbox_rec_free(sb);
                return cove_err_set_status(err, 404, ENOENT, "sandbox '%s' not found", id);
        }
        *ret = sb;
        return 0;
}

enum render_kind {
        RENDER_SANDBOX, /* create, connect, resume */
        RENDER_DETAIL,  /* GET one */
        RENDER_LISTED,  /* list items */
};

static json_t *render(struct http_req *r, const struct sandbox_rec *sb, enum render_kind kind)
{
        const char *domain = r->cd->cfg.e2b_domain;
        json_t *o = json_object();
        json_t *net = sb->network;

        json_object_set_new(o, "templateID", json_string(sb->template_id));
        if (sb->alias)
                json_object_set_new(o, "alias", json_string(sb->alias));
        json_object_set_new(o, "sandboxID", json_string(sb->id));
        json_object_set_new(o, "clientID", json_string(E2B_CLIENT_ID));
        json_object_set_new(o, "envdVersion", json_string(E2B_ENVD_VERSION));
        if (kind != RENDER_LISTED) {
                json_object_set_new(o, "envdAccessToken", json_string(sb->access_token));
                json_object_set_new(o, "domain", *domain ? json_string(domain) : json_null());
        }
        if (kind == RENDER_SANDBOX)
                json_object_set_new(o, "trafficAccessToken",
                                    json_is_false(json_object_get(net, "allowPublicTraffic"))
                                            ? json_string(sb->access_token)
                                            : json_null());
        if (kind == RENDER_SANDBOX)
                return o;
        set_time(o, "startedAt", sb->started_at);
        set_time(o, "endAt", sb->end_at);
        json_object_set_new(o, "cpuCount", json_integer(sb->cpu_count));
        json_object_set_new(o, "memoryMB", json_integer(sb->memory_mb));
        json_object_set_new(o, "diskSizeMB", json_integer(sb->disk_size_mb));
        json_object_set(o, "metadata", sb->metadata ? sb->metadata : json_object());
        json_object_set_new(o, "state", json_string(e2b_state(sb->state)));
        json_object_set(o, "volumeMounts", sb->volume_mounts ? sb->volume_mounts : json_array());
        if (kind == RENDER_LISTED)
                return o;
        json_t *inet = json_object_get(net, "e2bAllowInternetAccess");
        json_object_set_new(o, "allowInternetAccess",
                            json_is_boolean(inet) ? json_incref(inet) : json_null());
        json_t *n = json_pack(
                "{s:O, s:O, s:O}", "allowPublicTraffic",
                json_is_boolean(json_object_get(net, "allowPublicTraffic"))
                        ? json_object_get(net, "allowPublicTraffic")
                        : json_true(),
                "allowOut",
                json_is_array(json_object_get(net, "allowOut")) ? json_object_get(net, "allowOut")
                                                                : json_array(),
                "denyOut",
                json_is_array(json_object_get(net, "denyOut")) ? json_object_get(net, "denyOut")
                                                               : json_array());
        if (json_is_string(json_object_get(net, "maskRequestHost")))
                json_object_set(n, "maskRequestHost", json_object_get(net, "maskRequestHost"));
        json_object_set_new(o, "network", n);
        json_object_set_new(o, "lifecycle",
                            json_pack("{s:b, s:s}", "autoResume", sb->auto_resume, "onTimeout",
                                      sb->auto_pause ? "pause" : "kill"));
        return o;
}

/* ---- POST /sandboxes, /v2/sandboxes (§2.3) ---- */

struct create_req {
        char *template_id;
        json_t *timeout;
        struct json_bool auto_pause, auto_pause_memory, allow_inet, allow_inet_sc;
        json_t *auto_resume, *metadata, *env_vars, *network, *volume_mounts, *mcp, *iam;
};

static const struct json_field create_fields[] = {
        { "templateID", json_take_str, offsetof(struct create_req, template_id), 0, 0, 1024 },
        { "timeout", json_take_json, offsetof(struct create_req, timeout), 0, 0, 0 },
        { "autoPause", json_take_bool, offsetof(struct create_req, auto_pause), 0, 0, 0 },
        { "autoPauseMemory", json_take_bool, offsetof(struct create_req, auto_pause_memory), 0, 0,
          0 },
        { "autoResume", json_take_json, offsetof(struct create_req, auto_resume), 0, 0, 0 },
        { "allow_internet_access", json_take_bool, offsetof(struct create_req, allow_inet), 0, 0,
          0 },
        { "allowInternetAccess", json_take_bool, offsetof(struct create_req, allow_inet_sc), 0, 0,
          0 },
        { "metadata", json_take_json, offsetof(struct create_req, metadata), 0, 0, 0 },
        { "envVars", json_take_json, offsetof(struct create_req, env_vars), 0, 0, 0 },
        { "network", json_take_json, offsetof(struct create_req, network), 0, 0, 0 },
        { "volumeMounts", json_take_json, offsetof(struct create_req, volume_mounts), 0, 0, 0 },
        { "mcp", json_take_json, offsetof(struct create_req, mcp), 0, 0, 0 },
        { "iam", json_take_json, offsetof(struct create_req, iam), 0, 0, 0 },
        {},
};

static void create_req_release(struct create_req *q)
{
        free(q->template_id);
        json_decref(q->timeout);
        json_decref(q->auto_resume);
        json_decref(q->metadata);
        json_decref(q->env_vars);
        json_decref(q->network);
        json_decref(q->volume_mounts);
        json_decref(q->mcp);
        json_decref(q->iam);
}

/* E2B's template references (§2.3): a leading "<namespace>/" is ignored, the tag "default" is
 * the current build. The rest is the build plane's reference. */
static char *template_ref(const char *ref)
{
        if (!ref || !*ref)
                return xstrdup("base");
        const char *slash = strrchr(ref, '/');
        const char *name = slash ? slash + 1 : ref;
        size_t l = strlen(name);
        if (l > 8 && streq(name + l - 8, ":default"))
                l -= 8;
        return xstrndup(name, l);
}

/* §2.3 timeout: integer seconds, 1–86400, with E2B's messages. */
static int check_timeout(json_t *v, int64_t def, int64_t *ret, struct cove_err **err)
{
        int64_t t;
        if (!v) {
                *ret = def;
                return 0;
        }
        if (!json_get_integer(v, &t))
                return cove_err_set(err, EINVAL, "field 'timeout' must be an integer");
        if (t <= 0)
                return cove_err_set(err, EINVAL, "Timeout must be greater than 0");
        if (t > E2B_TIMEOUT_MAX)
                return cove_err_set(err, EINVAL, "Timeout cannot be greater than 24 hours");
        *ret = t;
        return 0;
}

/* §2.3 network → the stored policy: allowPublicTraffic, allowOut, denyOut as the SeaCloud
 * policy (netpolicy.h), maskRequestHost kept, egressProxy and rules refused. `base` (NULL →
 * defaults) keeps what the request does not name. */
static int network_policy(json_t *req, json_t *base, bool replace, json_t **ret,
                          struct cove_err **err)
{
        json_t *sc = json_object();
        const char *k;
        json_t *v;
        int q = 0;

        if (req && !json_is_null(req) && !json_is_object(req))
                q = cove_err_set(err, EINVAL, "field 'network' must be an object");
        json_object_foreach (json_is_object(req) ? req : NULL, k, v) {
                if (q < 0 || json_is_null(v))
                        continue;
                if (streq(k, "egressProxy") ||
                    (streq(k, "rules") && !(json_is_array(v) && json_array_size(v) == 0) &&
                     !(json_is_object(v) && json_object_size(v) == 0)))
                        q = cove_err_set(err, EINVAL, "network.%s is not supported", k);
                else if (streq(k, "allowPublicTraffic") || streq(k, "allowOut") ||
                         streq(k, "denyOut"))
                        json_object_set(sc, k, v);
                else if (streq(k, "maskRequestHost") && !json_is_string(v))
                        q = cove_err_set(err, EINVAL,
                                         "field 'network.maskRequestHost' must be a string");
        }
        if (q < 0) {
                json_decref(sc);
                return q;
        }
        if (replace) { /* PUT /network: omitted keys return to their defaults (§2.5) */
                if (!json_object_get(sc, "allowOut"))
                        json_object_set_new(sc, "allowOut", json_array());
                if (!json_object_get(sc, "denyOut"))
                        json_object_set_new(sc, "denyOut", json_array());
        }
        json_t *policy = NULL;
        q = netpolicy_from_request(sc, base, NULL, &policy, err);
        json_decref(sc);
        if (q < 0)
                return q;
        json_t *mask = json_is_object(req) ? json_object_get(req, "maskRequestHost") : NULL;
        if (json_is_string(mask))
                json_object_set(policy, "maskRequestHost", mask);
        *ret = policy;
        return 0;
}

struct warm_job {
        struct coved *cd;
        char *sandbox_id;
};

static void warm_job_run(void *arg)
{
        struct warm_job *j = arg;
        j->cd->interp_warm(j->cd, j->sandbox_id);
        free(j->sandbox_id);
        free(j);
}

/* A sandbox of the official code-interpreter template (or its code-interpreter-v1 alias) has
 * its default Python context running before its first execution (§5.2): started on a worker
 * after the 201, so the create does not wait for it. Skipped when no worker is free (the
 * first execution starts it then). */
static void warm_interpreter(struct http_req *r, const struct template_rec *tpl,
                             const char *sandbox_id)
{
        if (!r->cd->interp_warm || !tpl || !tpl->official || !streq(tpl->name, "code-interpreter"))
                return;
        struct warm_job *j = xzalloc(sizeof(*j));
        j->cd = r->cd;
        j->sandbox_id = xstrdup(sandbox_id);
        if (!http_run_detached(r, warm_job_run, j)) {
                free(j->sandbox_id);
                free(j);
        }
}

static int create(struct http_req *r, int64_t default_timeout)
{
        json_auto_t *body = NULL;
        cleanup_err struct cove_err *err = NULL;
        struct create_req q = { 0 };
        json_t *policy = NULL;
        int64_t timeout = 0;
        bool auto_resume = false;

        if (http_body_json(r, true, &body) < 0)
                return 0;
        int rc = json_dispatch(body, create_fields, &q, &err);
        if (rc >= 0)
                rc = check_timeout(q.timeout, default_timeout, &timeout, &err);
        if (rc >= 0 && q.mcp && !json_is_null(q.mcp))
                rc = cove_err_set(&err, EINVAL, "mcp is not supported");
        if (rc >= 0 && q.iam && !json_is_null(q.iam))
                rc = cove_err_set(&err, EINVAL, "iam is not supported");
        if (rc >= 0 && q.auto_resume) {
                json_t *en = json_is_object(q.auto_resume)
                                     ? json_object_get(q.auto_resume, "enabled")
                                     : q.auto_resume;
                if (json_is_boolean(en))
                        auto_resume = json_is_true(en);
                else if (!json_is_null(q.auto_resume) && !(json_is_object(q.auto_resume) && !en))
                        rc = cove_err_set(&err, EINVAL,
                                          "field 'autoResume' must be {\"enabled\": boolean}");
        }
        if (rc >= 0 && q.auto_pause_memory.set && !q.auto_pause_memory.v) {
                if (!(q.auto_pause.set && q.auto_pause.v))
                        rc = cove_err_set(&err, EINVAL,
                                          "autoPauseMemory=false only applies when autoPause is "
                                          "true");
                else if (auto_resume)
                        rc = cove_err_set(&err, EINVAL,
                                          "autoPauseMemory=false cannot be combined with "
                                          "autoResume");
        }
        if (rc >= 0 && q.allow_inet.set && q.allow_inet_sc.set &&
            q.allow_inet.v != q.allow_inet_sc.v)
                rc = cove_err_set(&err, EINVAL,
                                  "allow_internet_access conflicts with allowInternetAccess");
        if (rc >= 0 && q.metadata)
                rc = validate_strmap("metadata", q.metadata, 64, 128, 1024, false, &err);
        if (rc >= 0 && q.env_vars)
                rc = validate_env_vars("envVars", q.env_vars, &err);
        json_auto_t *base = NULL; /* the operator's default, for creates that set no egress */
        if (rc >= 0 && !q.allow_inet.set && !q.allow_inet_sc.set &&
            !netpolicy_sets_egress(q.network))
                rc = netpolicy_default(r->cd, &base, &err);
        if (rc >= 0)
                rc = network_policy(q.network, base, false, &policy, &err);
        if (rc >= 0 && (q.allow_inet.set || q.allow_inet_sc.set)) {
                bool inet = q.allow_inet.set ? q.allow_inet.v : q.allow_inet_sc.v;
                json_object_set_new(policy, "allowInternetAccess", json_boolean(inet));
                json_object_set_new(policy, "e2bAllowInternetAccess", json_boolean(inet));
        }
        if (rc >= 0 && q.volume_mounts && !json_is_array(q.volume_mounts))
                rc = cove_err_set(&err, EINVAL, "field 'volumeMounts' must be an array");
        if (rc < 0) {
                json_decref(policy);
                create_req_release(&q);
                return http_reply_err(r, err);
        }

        cleanup_free char *ref = template_ref(q.template_id);
        struct create_params p = {
                .team_id = r->auth.team_id,
                .template_ref = ref,
                .timeout_s = timeout,
                .wait_ready = true,
                /* the SDKs give up after 60 s: at most 50 s here, then 503 (§2.3) */
                .ready_wait_ms = r->cd->cfg.e2b_ready_wait * 1000,
                .auto_pause = q.auto_pause.set && q.auto_pause.v,
                .auto_resume = auto_resume,
                .metadata = q.metadata,
                .env_vars = q.env_vars,
                .network = policy,
                .volume_mounts = q.volume_mounts && json_array_size(q.volume_mounts) > 0
                                         ? q.volume_mounts
                                         : NULL,
        };
        struct sandbox_rec *sb = NULL;
        /* the template as build-plane.md §3 resolves it for this caller */
        struct tpl_caller tc = { .team_id = r->auth.team_id,
                                 .key_id = r->auth.key_id,
                                 .admin = r->auth.role && streq(r->auth.role, "admin") };
        struct template_rec *tpl = NULL;
        rc = templates_for_spawn(r->cd, &tc, ref, &tpl, &err);
        p.tpl = tpl;
        if (rc >= 0)
                rc = manager_create(r->cd, &p, &sb, &err);
        json_decref(policy);
        create_req_release(&q);
        if (rc < 0) {
                template_rec_free(tpl);
                return http_reply_err(r, err);
        }
        if (http_client_gone(http_client_socket(r))) {
                /* nobody will learn its ID (§2.3, Cove decision): gone at once */
                log_info("sandbox '%s': the client went away before its 201, deleting it", sb->id);
                (void)manager_delete(r->cd, r->auth.team_id, sb->id, NULL);
                sandbox_rec_free(sb);
                template_rec_free(tpl);
                return http_reply_error(r, 499, "client closed the request");
        }
        warm_interpreter(r, tpl, sb->id);
        template_rec_free(tpl);
        json_t *out = render(r, sb, RENDER_SANDBOX);
        sandbox_rec_free(sb);
        return http_reply_json(r, 201, out);
}

static int h_create_v1(struct http_req *r)
{
        return create(r, E2B_TIMEOUT_V1);
}

static int h_create_v2(struct http_req *r)
{
        return create(r, E2B_TIMEOUT_V2);
}

/* ---- GET /sandboxes, /v2/sandboxes (§2.4) ---- */

struct list_query {
        json_t *metadata; /* key → value, all must match */
        char msg[256];
        bool bad;
};

/* E2B's metadata parameter: one more level of escaping than the SeaCloud list. */
static void metadata_param(const char *k, const char *v, void *ud)
{
        struct list_query *f = ud;
        if (f->bad || !streq(k, "metadata"))
                return;
        cleanup_free char *outer = pct_decode(v, strlen(v), true, NULL);
        for (const char *p = outer; *p;) {
                const char *amp = strchr(p, '&');
                size_t l = amp ? (size_t)(amp - p) : strlen(p);
                cleanup_free char *pair = xstrndup(p, l);
                char *eq = strchr(pair, '=');
                if (l > 0 && (!eq || strchr(eq + 1, '='))) {
                        f->bad = true;
                        (void)snprintf(f->msg, sizeof(f->msg),
                                       "metadata pair '%.64s' must be key=value", pair);
                        return;
                }
                if (l > 0) {
                        *eq = '\0';
                        cleanup_free char *kd = pct_decode(pair, strlen(pair), true, NULL);
                        cleanup_free char *vd = pct_decode(eq + 1, strlen(eq + 1), true, NULL);
                        json_object_set_new(f->metadata, kd, json_string(vd));
                }
                if (!amp)
                        break;
                p = amp + 1;
        }
}

static bool metadata_matches(const struct sandbox_rec *sb, json_t *want)
{
        const char *k;
        json_t *v;
        json_object_foreach (want, k, v) {
                json_t *have = json_object_get(sb->metadata, k);
                if (!have || !json_equal(have, v))
                        return false;
        }
        return true;
}

int e2b_offset_token(struct http_req *r, uint64_t *ret)
{
        const char *v = http_query(r, "nextToken");
        unsigned char *dec = NULL;
        size_t dl = 0;
        cleanup_free char *s = NULL;
        *ret = 0;
        if (!v || !*v)
                return 0;
        if (b64_decode(v, strlen(v), B64_URL, &dec, &dl) == 0) {
                s = xstrndup((const char *)dec, dl);
                free(dec);
        }
        if (!s || safe_atou64(s, ret) < 0)
                return http_reply_error(r, 400, "invalid nextToken '%s'", v), -EINVAL;
        return 0;
}

char *e2b_offset_encode(uint64_t offset)
{
        char num[DECIMAL_STR_MAX(uint64_t)];
        (void)snprintf(num, sizeof(num), "%llu", (unsigned long long)offset);
        return b64_encode_alloc(num, strlen(num), B64_URL | B64_NOPAD);
}

int e2b_reply_array(struct http_req *r, json_t *arr, const char *next, bool paged,
                    int64_t total_running)
{
        struct buf b;
        size_t len;
        buf_init(&b, SIZE_MAX / 2);
        (void)json_to_buf(arr, &b);
        json_decref(arr);
        char *s = buf_take(&b, &len);
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(s);
                return -ENOMEM;
        }
        (void)MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
        if (paged) {
                (void)MHD_add_response_header(resp, "X-Has-Next", next ? "true" : "false");
                /* libmicrohttpd refuses empty values; " " reads as the empty value. */
                (void)MHD_add_response_header(resp, "X-Next-Token", next ? next : " ");
        }
        if (total_running >= 0) {
                char num[DECIMAL_STR_MAX(int64_t)];
                (void)snprintf(num, sizeof(num), "%lld", (long long)total_running);
                (void)MHD_add_response_header(resp, "X-Total-Running", num);
        }
        return http_reply_response(r, 200, resp);
}

static int list(struct http_req *r, bool v2)
{
        cleanup_err struct cove_err *err = NULL;
        struct list_query f = { .metadata = json_object() };
        bool want_running = !v2, want_paused = false, desc = true;
        uint64_t offset = 0, limit = v2 ? E2B_LIST_LIMIT : UINT64_MAX;
        int64_t started_after = 0;
        cleanup_free char *tpl_ref = NULL, *next = NULL;
        struct sandbox_rec **all = NULL;
        json_t *tpl_ids = NULL;
        int rc = 0;

        http_query_foreach(r, metadata_param, &f);
        if (f.bad) {
                rc = http_reply_error(r, 400, "%s", f.msg);
                goto out;
        }
        if (v2) {
                cleanup_strv char **states = http_query_list(r, "state");
                want_running = !states[0];
                want_paused = !states[0];
                for (char **s = states; *s; s++) {
                        if (streq(*s, "running"))
                                want_running = true;
                        else if (streq(*s, "paused"))
                                want_paused = true;
                        else {
                                rc = http_reply_error(r, 400, "unknown state '%s'", *s);
                                goto out;
                        }
                }
                const char *v = http_query(r, "order");
                if (v && *v && !streq(v, "asc") && !streq(v, "desc")) {
                        rc = http_reply_error(r, 400, "query 'order' must be 'asc' or 'desc'");
                        goto out;
                }
                desc = !(v && streq(v, "asc"));
                v = http_query(r, "limit");
                int64_t l;
                if (v && *v) {
                        if (safe_atoi64(v, &l) < 0 || l < 0) {
                                rc = http_reply_error(r, 400,
                                                      "query 'limit' must be an integer 1-100");
                                goto out;
                        }
                        limit = l == 0 ? E2B_LIST_LIMIT : (uint64_t)MIN(l, E2B_LIST_LIMIT);
                }
                if (e2b_offset_token(r, &offset) < 0)
                        goto out;
                v = http_query(r, "startedAfter");
                if (v && *v && time_parse_rfc3339(v, &started_after) < 0) {
                        rc = http_reply_error(r, 400,
                                              "query 'startedAfter' must be an RFC 3339 time");
                        goto out;
                }
                v = http_query(r, "template");
                if (v && *v)
                        tpl_ref = template_ref(v);
        }
        if (tpl_ref) {
                struct template_rec *t = NULL;
                cleanup_err struct cove_err *terr = NULL;
                tpl_ids = json_array();
                if (manager_template_resolve(r->cd, tpl_ref, &t, &terr) == 0) {
                        json_array_append_new(tpl_ids, json_string(t->id));
                        template_rec_free(t);
                }
        }
        if (manager_list(r->cd, r->auth.team_id, &all, &err) < 0) {
                rc = http_reply_err(r, err);
                goto out;
        }
        size_t n = 0;
        while (all[n])
                n++;
        json_t *arr = json_array();
        uint64_t matched = 0;
        int64_t running = 0;
        bool has_next = false;
        for (size_t k = 0; k < n; k++) {
                struct sandbox_rec *sb = all[desc ? n - 1 - k : k];
                bool is_paused = sb->state == SANDBOX_PAUSED;
                if (sb->state == SANDBOX_STOPPED || !metadata_matches(sb, f.metadata) ||
                    (started_after && sb->started_at < started_after))
                        continue;
                if (tpl_ids) {
                        json_t *id0 = json_array_get(tpl_ids, 0);
                        if (!id0 || !streq(json_string_value(id0), sb->template_id))
                                continue;
                }
                if (!is_paused)
                        running++;
                if (is_paused ? !want_paused : !want_running)
                        continue;
                if (matched >= offset && json_array_size(arr) < limit)
                        json_array_append_new(arr, render(r, sb, RENDER_LISTED));
                else if (matched >= offset)
                        has_next = true;
                matched++;
        }
        sandbox_list_free(all);
        if (has_next)
                next = e2b_offset_encode(offset + limit);
        rc = e2b_reply_array(r, arr, next, v2, v2 && want_running ? running : -1);
out:
        json_decref(f.metadata);
        json_decref(tpl_ids);
        return rc;
}

static int h_list_v1(struct http_req *r)
{
        return list(r, false);
}

static int h_list_v2(struct http_req *r)
{
        return list(r, true);
}

/* ---- one sandbox ---- */

static int h_get(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        struct sandbox_rec *sb = NULL;
        if (!id)
                return 0;
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = render(r, sb, RENDER_DETAIL);
        sandbox_rec_free(sb);
        return http_reply_json(r, 200, out);
}

static int h_delete(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        if (!id)
                return 0;
        if (manager_delete(r->cd, r->auth.team_id, id, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

struct lifecycle_req {
        struct json_int timeout;
        struct json_bool auto_pause, memory;
};

static const struct json_field timeout_fields[] = {
        { "timeout", json_take_int, offsetof(struct lifecycle_req, timeout), JSON_MANDATORY, 1,
          E2B_TIMEOUT_MAX },
        {},
};

static const struct json_field connect_v1_fields[] = {
        { "timeout", json_take_int, offsetof(struct lifecycle_req, timeout), JSON_MANDATORY, 0,
          E2B_TIMEOUT_MAX },
        { "memory", json_take_bool, offsetof(struct lifecycle_req, memory), 0, 0, 0 },
        {},
};

static const struct json_field connect_v2_fields[] = {
        { "timeout", json_take_int, offsetof(struct lifecycle_req, timeout), 0, 0,
          E2B_TIMEOUT_MAX },
        { "memory", json_take_bool, offsetof(struct lifecycle_req, memory), 0, 0, 0 },
        {},
};

static const struct json_field resume_fields[] = {
        { "timeout", json_take_int, offsetof(struct lifecycle_req, timeout), 0, 0,
          E2B_TIMEOUT_MAX },
        { "autoPause", json_take_bool, offsetof(struct lifecycle_req, auto_pause), 0, 0, 0 },
        { "memory", json_take_bool, offsetof(struct lifecycle_req, memory), 0, 0, 0 },
        {},
};

static const struct json_field pause_fields[] = {
        { "memory", json_take_bool, offsetof(struct lifecycle_req, memory), 0, 0, 0 },
        {},
};

/* The body through its table; 400 replied otherwise. */
static int read_body(struct http_req *r, const struct json_field *fields, bool empty_ok,
                     struct lifecycle_req *q)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;
        if (!empty_ok && (!r->body_present || r->body.len == 0))
                return http_reply_error(r, 400, "request body with 'timeout' is required"), -EINVAL;
        if (http_body_json(r, true, &body) < 0)
                return -EINVAL;
        if (json_dispatch(body, fields, q, &err) < 0)
                return http_reply_err(r, err), -EINVAL;
        return 0;
}

static int h_timeout(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        struct lifecycle_req q = { 0 };
        struct sandbox_rec *sb = NULL;
        if (!id || read_body(r, timeout_fields, false, &q) < 0)
                return 0;
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(sb);
        if (manager_set_timeout(r->cd, r->auth.team_id, id, q.timeout.v, false, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

static int h_refreshes(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        json_auto_t *body = NULL;
        int64_t d = 0;
        if (!id || http_body_json(r, true, &body) < 0)
                return 0;
        json_t *v = json_object_get(body, "duration");
        if (v && !json_is_null(v) && (!json_get_integer(v, &d) || d < 0 || d > 3600))
                return http_reply_error(r, 400, "field 'duration' must be between 0 and 3600");
        if (manager_set_timeout(r->cd, r->auth.team_id, id, d > 0 ? d : E2B_TIMEOUT_V2, true,
                                &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

static int h_pause(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        struct lifecycle_req q = { 0 };
        struct sandbox_rec *sb = NULL;
        if (!id || read_body(r, pause_fields, true, &q) < 0)
                return 0;
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        enum sandbox_state st = sb->state;
        sandbox_rec_free(sb);
        if (st == SANDBOX_STARTING)
                return http_reply_error(r, 409, "sandbox '%s' is still starting", id);
        if (manager_pause(r->cd, r->auth.team_id, id, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

/* connect (§2.5): paused → resume with endAt = now + timeout (201); running or starting →
 * endAt = max(endAt, now + timeout) (200). */
static int connect_sandbox(struct http_req *r, const char *id, int64_t timeout)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = NULL;
        bool resumed = false;
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        bool paused = sb->state == SANDBOX_PAUSED;
        sandbox_rec_free(sb);
        sb = NULL;
        if (manager_connect(r->cd, r->auth.team_id, id, paused ? MAX(timeout, 1) : 0, &sb, &resumed,
                            &err) < 0)
                return http_reply_err(r, err);
        if (!resumed && timeout > 0) {
                sandbox_rec_free(sb);
                sb = NULL;
                if (manager_set_timeout(r->cd, r->auth.team_id, id, timeout, true, &err) < 0 ||
                    load(r, id, &sb, &err) < 0)
                        return http_reply_err(r, err);
        }
        json_t *out = render(r, sb, RENDER_SANDBOX);
        sandbox_rec_free(sb);
        return http_reply_json(r, resumed ? 201 : 200, out);
}

static int h_connect_v1(struct http_req *r)
{
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        struct lifecycle_req q = { 0 };
        if (!id || read_body(r, connect_v1_fields, false, &q) < 0)
                return 0;
        return connect_sandbox(r, id, q.timeout.v);
}

static int h_connect_v2(struct http_req *r)
{
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        struct lifecycle_req q = { 0 };
        if (!id || read_body(r, connect_v2_fields, true, &q) < 0)
                return 0;
        return connect_sandbox(r, id, q.timeout.set ? q.timeout.v : E2B_TIMEOUT_V2);
}

static int h_resume(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        struct lifecycle_req q = { 0 };
        struct sandbox_rec *sb = NULL;
        bool resumed = false;
        if (!id || read_body(r, resume_fields, true, &q) < 0)
                return 0;
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        enum sandbox_state st = sb->state;
        sandbox_rec_free(sb);
        sb = NULL;
        if (st != SANDBOX_PAUSED)
                return http_reply_error(r, 409, "sandbox '%s' is already running", id);
        int64_t timeout = q.timeout.set && q.timeout.v > 0 ? q.timeout.v : E2B_TIMEOUT_V1;
        if (manager_connect(r->cd, r->auth.team_id, id, timeout, &sb, &resumed, &err) < 0)
                return http_reply_err(r, err);
        if (q.auto_pause.set && manager_set_on_timeout(r->cd, id, q.auto_pause.v, &err) < 0) {
                sandbox_rec_free(sb);
                return http_reply_err(r, err);
        }
        json_t *out = render(r, sb, RENDER_SANDBOX);
        sandbox_rec_free(sb);
        return http_reply_json(r, 201, out);
}

/* PUT /sandboxes/{id}/network (§2.5): replaces the egress rules. */
static int h_network(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        json_auto_t *body = NULL;
        struct sandbox_rec *sb = NULL;
        json_t *policy = NULL;
        if (!id || http_body_json(r, true, &body) < 0)
                return 0;
        if (!json_is_object(body))
                return http_reply_error(r, 400, "request body must be a JSON object");
        json_t *inet = json_object_get(body, "allow_internet_access");
        if (inet && !json_is_null(inet) && !json_is_boolean(inet))
                return http_reply_error(r, 400, "field 'allow_internet_access' must be a boolean");
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        /* allowPublicTraffic and maskRequestHost are not changed by this route. */
        json_t *keep = json_pack("{s:O}", "allowPublicTraffic",
                                 json_is_boolean(json_object_get(sb->network, "allowPublicTraffic"))
                                         ? json_object_get(sb->network, "allowPublicTraffic")
                                         : json_true());
        json_t *req = json_deep_copy(body);
        json_object_del(req, "allowPublicTraffic");
        json_object_del(req, "maskRequestHost");
        int q = network_policy(req, keep, true, &policy, &err);
        json_decref(req);
        json_decref(keep);
        if (q >= 0) {
                bool allow = !json_is_false(inet);
                json_object_set_new(policy, "allowInternetAccess", json_boolean(allow));
                json_object_set_new(policy, "e2bAllowInternetAccess",
                                    json_is_boolean(inet) ? json_boolean(allow) : json_null());
                json_t *mask = json_object_get(sb->network, "maskRequestHost");
                if (json_is_string(mask))
                        json_object_set(policy, "maskRequestHost", mask);
                q = manager_set_network(r->cd, r->auth.team_id, id, policy, &err);
        }
        sandbox_rec_free(sb);
        json_decref(policy);
        if (q < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

/* ---- logs (§2.6) ---- */

static void log_list_freep(struct log_rec ***v)
{
        log_list_free(*v);
}
#define cleanup_log_list __attribute__((cleanup(log_list_freep)))

/* Every retained entry of a visible sandbox, ascending (the E2B cursor is a time, not a seq). */
static int all_logs(struct http_req *r, const char *id, struct log_rec ***ret,
                    struct cove_err **err)
{
        struct log_query q = { .limit = 1000000 };
        struct log_page page = { 0 };
        int rc = manager_logs(r->cd, r->auth.team_id, id, &q, &page, err);
        if (rc < 0)
                return rc;
        *ret = page.entries;
        return 0;
}

static int level_rank(const char *l)
{
        static const char *const levels[] = { "debug", "info", "warn", "error" };
        for (size_t i = 0; l && i < ARRAY_SIZE(levels); i++)
                if (streq(l, levels[i]))
                        return (int)i;
        return -1;
}

static json_t *log_entry(const struct log_rec *l)
{
        char ts[TIME_RFC3339_MAX];
        time_format_rfc3339(l->ts, ts);
        return json_pack("{s:s, s:s, s:s, s:O}", "timestamp", ts, "level", l->level, "message",
                         l->message, "fields", l->fields ? l->fields : json_object());
}

static int h_logs_v2(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        cleanup_log_list struct log_rec **logs = NULL;
        struct sandbox_rec *sb = NULL;
        int64_t cursor = -1;
        uint64_t limit = E2B_LOG_LIMIT;
        const char *v;

        if (!id)
                return 0;
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(sb);
        if ((v = http_query(r, "cursor")) && *v && (safe_atoi64(v, &cursor) < 0 || cursor < 0))
                return http_reply_error(r, 400, "query 'cursor' must be Unix milliseconds");
        if ((v = http_query(r, "limit")) && *v &&
            (safe_atou64(v, &limit) < 0 || limit > E2B_LOG_LIMIT))
                return http_reply_error(r, 400, "query 'limit' must be an integer 0-1000");
        if (limit == 0)
                limit = E2B_LOG_LIMIT;
        const char *dir = http_query(r, "direction");
        if (dir && *dir && !streq(dir, "forward") && !streq(dir, "backward"))
                return http_reply_error(r, 400,
                                        "query 'direction' must be 'forward' or 'backward'");
        bool backward = dir && streq(dir, "backward");
        const char *level = http_query(r, "level");
        if (level && *level && level_rank(level) < 0)
                return http_reply_error(r, 400, "query 'level' must be debug, info, warn or error");
        const char *search = http_query(r, "search");
        if (all_logs(r, id, &logs, &err) < 0)
                return http_reply_err(r, err);
        size_t n = 0;
        while (logs[n])
                n++;
        json_t *arr = json_array();
        for (size_t k = 0; k < n && json_array_size(arr) < limit; k++) {
                const struct log_rec *l = logs[backward ? n - 1 - k : k];
                if (cursor >= 0 && (backward ? l->ts > cursor : l->ts < cursor))
                        continue;
                if (level && *level && level_rank(l->level) < level_rank(level))
                        continue;
                if (search && *search && !strcasestr(l->message, search))
                        continue;
                json_array_append_new(arr, log_entry(l));
        }
        return http_reply_json(r, 200, json_pack("{s:o}", "logs", arr));
}

static int h_logs_v1(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        cleanup_log_list struct log_rec **logs = NULL;
        struct sandbox_rec *sb = NULL;
        int64_t start = 0;
        uint64_t limit = E2B_LOG_LIMIT;
        const char *v;

        if (!id)
                return 0;
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(sb);
        if ((v = http_query(r, "start")) && *v && (safe_atoi64(v, &start) < 0 || start < 0))
                return http_reply_error(r, 400, "query 'start' must be Unix milliseconds");
        if ((v = http_query(r, "limit")) && *v && safe_atou64(v, &limit) < 0)
                return http_reply_error(r, 400, "query 'limit' must be an integer");
        if (limit == 0 || limit > E2B_LOG_LIMIT)
                limit = E2B_LOG_LIMIT;
        if (all_logs(r, id, &logs, &err) < 0)
                return http_reply_err(r, err);
        json_t *lines = json_array(), *entries = json_array();
        for (size_t k = 0; logs[k] && json_array_size(entries) < limit; k++) {
                if (logs[k]->ts < start)
                        continue;
                char ts[TIME_RFC3339_MAX];
                time_format_rfc3339(logs[k]->ts, ts);
                json_array_append_new(
                        lines, json_pack("{s:s, s:s}", "timestamp", ts, "line", logs[k]->message));
                json_array_append_new(entries, log_entry(logs[k]));
        }
        return http_reply_json(r, 200,
                               json_pack("{s:o, s:o}", "logs", lines, "logEntries", entries));
}

/* ---- metrics (§2.6) ---- */

/* A SandboxMetric from a point of the sampler's history (obs/sampler.h). */
static json_t *metric_json(const struct sandbox_rec *sb, const struct metric_point *p)
{
        char ts[TIME_RFC3339_MAX];
        time_format_rfc3339(p->ts, ts);
        return json_pack("{s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I}", "timestamp", ts,
                         "timestampUnix", (json_int_t)(p->ts / 1000), "cpuCount",
                         (json_int_t)(sb->cpu_count > 0 ? sb->cpu_count : 1), "cpuUsedPct",
                         round(p->cpu_pct * 100) / 100, "memUsed", (json_int_t)p->mem_used,
                         "memTotal", (json_int_t)p->mem_total, "memCache", (json_int_t)p->mem_cache,
                         "diskUsed", (json_int_t)p->disk_used, "diskTotal",
                         (json_int_t)(sb->disk_size_mb * MIB));
}

/* GET /sandboxes/{id}/metrics?start=&end= (Unix seconds): the sampler's points (one per
 * metrics-interval, the last hour while it runs), oldest first. */
static int h_metrics(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = e2b_path_sandbox_id(r, r->params[0]);
        struct sandbox_rec *sb = NULL;
        int64_t start = -1, end = -1;
        const char *v;
        if (!id)
                return 0;
        if ((v = http_query(r, "start")) && *v && (safe_atoi64(v, &start) < 0 || start < 0))
                return http_reply_error(r, 400, "query 'start' must be Unix seconds");
        if ((v = http_query(r, "end")) && *v && (safe_atoi64(v, &end) < 0 || end < 0))
                return http_reply_error(r, 400, "query 'end' must be Unix seconds");
        if (load(r, id, &sb, &err) < 0)
                return http_reply_err(r, err);
        int64_t now = time_now_ms();
        /* start: the later of startedAt and an hour ago; end: now */
        int64_t from = start >= 0 ? start * 1000 : MAX(sb->started_at, now - 3600 * 1000);
        int64_t to = end >= 0 ? end * 1000 + 999 : now;
        if (to < from && end >= 0) {
                sandbox_rec_free(sb);
                return http_reply_error(r, 400, "query 'end' is before 'start'");
        }
        struct metric_point *pts = NULL;
        size_t n = 0;
        if (sampler_history(r->cd, sb, from, to, &pts, &n, &err) < 0) {
                sandbox_rec_free(sb);
                return http_reply_err(r, err);
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, metric_json(sb, &pts[i]));
        free(pts);
        sandbox_rec_free(sb);
        return http_reply_json(r, 200, arr);
}

/* GET /sandboxes/metrics?sandbox_ids=: the latest point of each listed running sandbox. */
static int h_fleet_metrics(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_strv char **ids = http_query_list(r, "sandbox_ids");
        struct sandbox_rec **all = NULL;
        size_t nids = 0;
        while (ids[nids])
                nids++;
        if (nids > E2B_METRICS_IDS_MAX)
                return http_reply_error(r, 400, "at most %d sandbox_ids", E2B_METRICS_IDS_MAX);
        if (manager_list(r->cd, r->auth.team_id, &all, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = json_object();
        int64_t now = time_now_ms();
        for (size_t i = 0; all[i]; i++) {
                if (all[i]->state != SANDBOX_RUNNING)
                        continue;
                bool want = nids == 0;
                for (size_t k = 0; !want && k < nids; k++)
                        want = streq(ids[k], all[i]->id);
                struct metric_point *pts = NULL;
                size_t n = 0;
                if (!want ||
                    sampler_history(r->cd, all[i], now - 3600 * 1000, now, &pts, &n, NULL) < 0 ||
                    n == 0) {
                        free(pts);
                        continue;
                }
                json_object_set_new(out, all[i]->id, metric_json(all[i], &pts[n - 1]));
                free(pts);
        }
        sandbox_list_free(all);
        return http_reply_json(r, 200, json_pack("{s:o}", "sandboxes", out));
}

/* ---- not served (§2.8) ---- */

static int not_served(struct http_req *r, const char *feature)
{
        return http_reply_error(r, 501, "%s is not supported by Cove", feature);
}

static int h_fork(struct http_req *r)
{
        return not_served(r, "sandbox fork");
}

static int h_snapshots(struct http_req *r)
{
        return not_served(r, "snapshots");
}

const struct route e2b_sandbox_routes[] = {
        { "POST", "sandboxes", h_create_v1, 0, 0, NULL },
        { "POST", "v2/sandboxes", h_create_v2, 0, 0, NULL },
        { "GET", "sandboxes", h_list_v1, 0, 0, NULL },
        { "GET", "v2/sandboxes", h_list_v2, 0, 0, NULL },
        { "GET", "sandboxes/metrics", h_fleet_metrics, 0, 0, NULL },
        { "GET", "sandboxes/:id", h_get, 0, 0, NULL },
        { "DELETE", "sandboxes/:id", h_delete, 0, 0, NULL },
        { "POST", "sandboxes/:id/timeout", h_timeout, 0, 0, NULL },
        { "POST", "sandboxes/:id/refreshes", h_refreshes, 0, 0, NULL },
        { "POST", "sandboxes/:id/pause", h_pause, 0, 0, NULL },
        { "POST", "sandboxes/:id/resume", h_resume, 0, 0, NULL },
        { "POST", "sandboxes/:id/connect", h_connect_v1, 0, 0, NULL },
        { "POST", "v2/sandboxes/:id/connect", h_connect_v2, 0, 0, NULL },
        { "PUT", "sandboxes/:id/network", h_network, 0, 0, NULL },
        { "GET", "sandboxes/:id/logs", h_logs_v1, 0, 0, NULL },
        { "GET", "v2/sandboxes/:id/logs", h_logs_v2, 0, 0, NULL },
        { "GET", "sandboxes/:id/metrics", h_metrics, 0, 0, NULL },
        { "POST", "sandboxes/:id/fork", h_fork, 0, 0, NULL },
        { "POST", "sandboxes/:id/snapshots", h_snapshots, 0, 0, NULL },
        { "GET", "snapshots", h_snapshots, 0, 0, NULL },
        {},
};
