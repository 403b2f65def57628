/* SPDX-License-Identifier: MIT */
/* sandboxes.c — /v1/sandboxes: create, list, get, delete, keepalive, wake (v1-api.md §3–§9). */
#include "coved/api/v1/v1.h"
#include "coved/api/seacloud/netpolicy.h"
#include "coved/api/validate.h"
#include "coved/coved.h"
#include "coved/templates/templates.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#define V1_DURATION_MAX_S (24 * 3600)
#define V1_DISK_MIN_MB    256

static void template_rec_freep(struct template_rec **t)
{
        template_rec_free(*t);
}

/* §4: the presets' resources (Cove's choice). */
static const struct size_preset {
        const char *name;
        int64_t cpu_count, memory_mb;
} size_presets[] = {
        { "shared-cpu-1x", 1, 1024 },   { "shared-cpu-2x", 2, 2048 },
        { "shared-cpu-4x", 4, 4096 },   { "performance-1x", 1, 2048 },
        { "performance-2x", 2, 4096 },  { "performance-4x", 4, 8192 },
        { "performance-8x", 8, 16384 },
};

static const struct size_preset *size_find(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(size_presets); i++)
                if (streq(size_presets[i].name, name))
                        return &size_presets[i];
        return NULL;
}

/* ---- rendering (§3.1) ---- */

const char *v1_status_of(const struct sandbox_rec *sb)
{
        if (sb->destroyed_at > 0)
                return "destroyed";
        switch (sb->state) {
        case SANDBOX_STARTING:
                return "creating";
        case SANDBOX_RUNNING:
                return "running";
        case SANDBOX_PAUSED:
                return "suspended";
        case SANDBOX_STOPPED:
        case _SANDBOX_STATE_MAX:
        case _SANDBOX_STATE_INVALID:
        default:
                return "destroyed";
        }
}

static json_t *time_or_null(int64_t ms)
{
        if (ms <= 0)
                return json_null();
        char ts[TIME_RFC3339_MAX];
        time_format_rfc3339(ms, ts);
        return json_string(ts);
}

static json_t *duration_json(int64_t ms)
{
        char d[DURATION_STR_MAX];
        duration_format((ms + 999) / 1000, d);
        return json_string(d);
}

static json_t *render(const struct sandbox_rec *sb)
{
        bool persistent = sb->auto_pause;
        int64_t lifetime = sb->timeout_ms > 0 ? sb->timeout_ms : sb->end_at - sb->started_at;
        int64_t idle = sb->idle_timeout_ms > 0 ? sb->idle_timeout_ms : lifetime;
        json_t *o = json_object();

        json_object_set_new(o, "id", json_string(sb->id));
        json_object_set_new(o, "organization_id", json_string(sb->team_id));
        json_object_set_new(o, "template", json_string(sb->alias ? sb->alias : sb->template_id));
        json_object_set_new(o, "template_id", json_string(sb->template_id));
        json_object_set_new(o, "mode", json_string(persistent ? "persistent" : "ephemeral"));
        json_object_set_new(o, "size", sb->size ? json_string(sb->size) : json_null());
        json_object_set_new(o, "cpu_count", json_integer(sb->cpu_count));
        json_object_set_new(o, "memory_mb", json_integer(sb->memory_mb));
        json_object_set_new(o, "status", json_string(v1_status_of(sb)));
        json_object_set_new(o, "timeout", persistent ? json_null() : duration_json(lifetime));
        json_object_set_new(o, "idle_timeout", persistent ? duration_json(idle) : json_null());
        json_object_set_new(o, "expires_at", persistent ? json_null() : time_or_null(sb->end_at));
        json_object_set_new(
                o, "last_active_at",
                time_or_null(sb->last_active_at > 0 ? sb->last_active_at : sb->started_at));
        json_object_set(o, "metadata", sb->metadata ? sb->metadata : json_object());
        json_object_set_new(o, "egress", v1_egress_of(sb));
        json_object_set_new(o, "created_at", time_or_null(sb->started_at));
        json_object_set_new(o, "updated_at",
                            time_or_null(sb->updated_at > 0 ? sb->updated_at : sb->started_at));
        json_object_set_new(o, "destroyed_at", time_or_null(sb->destroyed_at));
        return o;
}

static const char *team_of(struct http_req *r)
{
        return r->auth.team_id;
}

/* A duration field: absent (or null) leaves *set false; otherwise 1 s to 24 h (§1). */
static int take_duration(json_t *body, const char *key, int64_t max_s, bool *set, int64_t *ret,
                         struct cove_err **err)
{
        json_t *v = json_object_get(body, key);
        int64_t s = 0;
        *set = false;
        if (!v || json_is_null(v))
                return 0;
        /* duration_parse() sees a C string: "5m\u0000junk" is not a duration */
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            duration_parse(json_string_value(v), &s) < 0)
                return cove_err_set(err, EINVAL,
                                    "field '%s' must be a duration such as '30s', '5m' or '1h30m'",
                                    key);
        if (s == 0)
                return cove_err_set(err, EINVAL, "field '%s' must be longer than zero", key);
        if (s > max_s) {
                char m[DURATION_STR_MAX];
                duration_format(max_s, m);
                return cove_err_set(err, EINVAL, "field '%s' must be at most %s", key, m);
        }
        *set = true;
        *ret = s;
        return 0;
}

/* ---- POST /v1/sandboxes (§4) ---- */

struct create_req {
        char *template_ref, *mode, *size;
        struct json_int disk_size_mb;
        json_t *env, *metadata, *egress;
};

static const struct json_field create_fields[] = {
        { "template", json_take_str, offsetof(struct create_req, template_ref), 0, 0, 1024 },
        { "mode", json_take_str, offsetof(struct create_req, mode), 0, 0, 32 },
        { "size", json_take_str, offsetof(struct create_req, size), 0, 0, 64 },
        { "disk_size_mb", json_take_int, offsetof(struct create_req, disk_size_mb), 0, 0,
          INT32_MAX },
        { "env", json_take_json, offsetof(struct create_req, env), 0, 0, 0 },
        { "metadata", json_take_json, offsetof(struct create_req, metadata), 0, 0, 0 },
        { "egress", json_take_json, offsetof(struct create_req, egress), 0, 0, 0 },
        {},
};

static void create_req_release(struct create_req *q)
{
        free(q->template_ref);
        free(q->mode);
        free(q->size);
        json_decref(q->env);
        json_decref(q->metadata);
        json_decref(q->egress);
}
#define cleanup_create_req __attribute__((cleanup(create_req_release)))

static int check_create(struct http_req *r, json_t *body, struct create_req *q,
                        struct create_params *p, struct cove_err **err)
{
        bool timeout_set = false, idle_set = false;
        int64_t timeout = 0, idle = 0;
        int rc = json_dispatch(body, create_fields, q, err);
        if (rc < 0)
                return rc;
        bool persistent = q->mode && streq(q->mode, "persistent");
        if (q->mode && !persistent && !streq(q->mode, "ephemeral"))
                return cove_err_set(err, EINVAL,
                                    "field 'mode' must be 'ephemeral' or 'persistent'");
        if ((rc = take_duration(body, "timeout", V1_DURATION_MAX_S, &timeout_set, &timeout, err)) <
                    0 ||
            (rc = take_duration(body, "idle_timeout", V1_DURATION_MAX_S, &idle_set, &idle, err)) <
                    0)
                return rc;
        if (persistent && timeout_set)
                return cove_err_set(err, EINVAL,
                                    "field 'timeout' is for ephemeral sandboxes; persistent "
                                    "ones take 'idle_timeout'");
        if (!persistent && idle_set)
                return cove_err_set(err, EINVAL,
                                    "field 'idle_timeout' is for persistent sandboxes; "
                                    "ephemeral ones take 'timeout'");
        const struct size_preset *preset = NULL;
        if (q->size) {
                preset = size_find(q->size);
                if (!preset)
                        return cove_err_set(err, EINVAL, "field 'size': unknown size '%s'",
                                            q->size);
        }
        if (q->disk_size_mb.set &&
            (q->disk_size_mb.v < V1_DISK_MIN_MB || q->disk_size_mb.v > r->cd->cfg.max_disk_mb))
                return cove_err_set(err, EINVAL, "field 'disk_size_mb' must be %d to %lld",
                                    V1_DISK_MIN_MB, (long long)r->cd->cfg.max_disk_mb);
        if (q->env && (rc = validate_env_vars("env", q->env, err)) < 0)
                return rc;
        if (q->metadata &&
            (rc = validate_strmap("metadata", q->metadata, 64, 128, 1024, false, err)) < 0)
                return rc;
        json_t *egress = NULL;
        if (q->egress && (rc = v1_egress_validate(q->egress, &egress, err)) < 0)
                return rc;
        json_decref(q->egress);
        q->egress = egress; /* now the normalised policy (or NULL) */

        *p = (struct create_params){
                .team_id = team_of(r),
                .key_id = r->auth.key_id,
                .template_ref = q->template_ref,
                .timeout_s = persistent    ? 0
                             : timeout_set ? timeout
                                           : 300, /* default 5m */
                .wait_ready = true,
                .metadata = q->metadata,
                .env_vars = q->env,
                .size = preset ? preset->name : NULL,
                .cpu_count = preset ? preset->cpu_count : 0,
                .memory_mb = preset ? preset->memory_mb : 0,
                .disk_mb = q->disk_size_mb.set ? q->disk_size_mb.v : 0,
                .idle_timeout_s = persistent ? (idle_set ? idle : 600) : 0, /* default 10m */
                .egress = q->egress,
        };
        return 0;
}

static int h_create(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_create_req struct create_req q = { 0 };
        json_auto_t *body = NULL, *network = NULL;
        struct create_params p;

        if (http_body_json(r, /* empty_ok= */ true, &body) < 0)
                return 0;
        if (!json_is_object(body))
                return http_reply_error(r, 400, "request body must be a JSON object");
        if (check_create(r, body, &q, &p, &err) < 0)
                return http_reply_err(r, err);
        if (q.egress)
                network = v1_egress_to_network(q.egress);
        else if (netpolicy_default(r->cd, &network, &err) < 0) /* the operator's default (§4) */
                return http_reply_err(r, err);
        else if (!network)
                network = json_pack("{s:b, s:b, s:[], s:[]}", "allowPublicTraffic", 1,
                                    "allowInternetAccess", 1, "allowOut", "denyOut");
        p.network = network;
        struct sandbox_rec *sb = NULL;
        /* the template as build-plane.md §3 resolves it for this caller */
        struct tpl_caller tc = { .team_id = p.team_id,
                                 .key_id = r->auth.key_id,
                                 .admin = r->auth.role && streq(r->auth.role, "admin") };
        __attribute__((cleanup(template_rec_freep))) struct template_rec *tpl = NULL;
        if (templates_for_spawn(r->cd, &tc,
                                p.template_ref && *p.template_ref ? p.template_ref : "base", &tpl,
                                &err) < 0)
                return http_reply_err(r, err);
        p.tpl = tpl;
        if (manager_create(r->cd, &p, &sb, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = render(sb);
        sandbox_rec_free(sb);
        return http_reply_json(r, 201, out);
}

/* ---- GET /v1/sandboxes (§7) ---- */

static const char *const v1_statuses[] = { "creating", "running", "suspended", "destroyed" };

static int h_list(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_strv char **want = http_query_list(r, "status");
        bool show[ARRAY_SIZE(v1_statuses)] = { false };
        bool any = false;

        for (char **s = want; *s; s++) {
                if (!**s)
                        continue;
                size_t i = 0;
                while (i < ARRAY_SIZE(v1_statuses) && !streq(v1_statuses[i], *s))
                        i++;
                if (i == ARRAY_SIZE(v1_statuses))
                        return http_reply_error(r, 400,
                                                "query 'status': unknown status '%s' (creating, "
                                                "running, suspended or destroyed)",
                                                *s);
                show[i] = any = true;
        }
        if (!any) /* every non-destroyed sandbox */
                show[0] = show[1] = show[2] = true;

        struct sandbox_rec **all = NULL;
        if (manager_v1_list(r->cd, team_of(r), &all, &err) < 0)
                return http_reply_err(r, err);
        json_t *arr = json_array();
        for (size_t k = 0; all[k]; k++) {
                const char *st = v1_status_of(all[k]);
                for (size_t i = 0; i < ARRAY_SIZE(v1_statuses); i++)
                        if (show[i] && streq(v1_statuses[i], st))
                                json_array_append_new(arr, render(all[k]));
        }
        sandbox_list_free(all);
        return http_reply_json(r, 200, json_pack("{s:o}", "sandboxes", arr));
}

/* ---- one sandbox ---- */

static int h_get(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = NULL;
        if (manager_v1_get(r->cd, team_of(r), r->params[0], &sb, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = render(sb);
        sandbox_rec_free(sb);
        return http_reply_json(r, 200, out);
}

static int h_delete(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        if (manager_v1_delete(r->cd, team_of(r), r->params[0], &err) < 0)
                return http_reply_err(r, err);
        return http_reply_empty(r, 204);
}

static int h_keepalive(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;
        struct sandbox_rec *sb = NULL;
        bool set = false;
        int64_t timeout = 0;

        /* Visibility first: another organisation's sandbox is 403 whatever the body says. */
        if (manager_v1_get(r->cd, team_of(r), r->params[0], &sb, &err) < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(sb);
        sb = NULL;
        if (http_body_json(r, /* empty_ok= */ true, &body) < 0)
                return 0;
        if (!json_is_object(body))
                return http_reply_error(r, 400, "request body must be a JSON object");
        if (take_duration(body, "timeout", V1_DURATION_MAX_S, &set, &timeout, &err) < 0)
                return http_reply_err(r, err);
        if (manager_keepalive(r->cd, team_of(r), r->params[0], set ? timeout : 0, &sb, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = render(sb);
        sandbox_rec_free(sb);
        return http_reply_json(r, 200, out);
}

static int h_wake(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = NULL;
        if (manager_wake(r->cd, team_of(r), r->params[0], &sb, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = render(sb);
        sandbox_rec_free(sb);
        return http_reply_json(r, 200, out);
}

/* Upload bodies are raw bytes streamed to the agent (files.c), limited there to 100 MB. */
#define V1_FILES_BODY_MAX ((size_t)104857600 + 1)

const struct route v1_routes[] = {
        { "POST", "v1/sandboxes", h_create, 0, 0, NULL },
        { "GET", "v1/sandboxes", h_list, 0, 0, NULL },
        { "GET", "v1/sandboxes/:id", h_get, 0, 0, NULL },
        { "DELETE", "v1/sandboxes/:id", h_delete, 0, 0, NULL },
        { "POST", "v1/sandboxes/:id/keepalive", h_keepalive, 0, 0, NULL },
        { "POST", "v1/sandboxes/:id/wake", h_wake, 0, 0, NULL },
        { "POST", "v1/sandboxes/:id/exec", v1_exec, 0, 0, NULL },
        { "PUT", "v1/sandboxes/:id/files", v1_files_upload, 0, V1_FILES_BODY_MAX, v1_files_begin },
        { "POST", "v1/sandboxes/:id/files", v1_files_upload, 0, V1_FILES_BODY_MAX, v1_files_begin },
        { "GET", "v1/sandboxes/:id/files", v1_files_download, 0, 0, v1_files_begin },
        { "DELETE", "v1/sandboxes/:id/files", v1_files_remove, 0, 0, v1_files_begin },
        {},
};
