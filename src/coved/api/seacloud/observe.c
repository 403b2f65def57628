/* SPDX-License-Identifier: MIT */
/*
 * observe.c — the SeaCloud face's metrics, observability summary and usage limits
 * (control-plane.md §9, §10, §11): per-sandbox and fleet snapshots from the sampler, team
 * metrics over time from the store's team samples, usage and limits from the manager.
 */
#include "coved/api/query.h"
#include "coved/api/seacloud/seacloud.h"
#include "coved/coved.h"
#include "coved/manager/manager.h"
#include "coved/obs/sampler.h"
#include "coved/tenancy/tenancy.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <math.h>

#define FLEET_IDS_MAX     100
#define TEAM_SPAN_MAX_S   (31 * 86400)
#define TEAM_POINTS_MAX   1000
#define TEAM_STEP_MIN_S   60
#define CHECK_WARNING_PCT 80

/* Rates keep 4 decimals: enough for a dashboard, short on the wire. */
static void set_num(json_t *o, const char *key, double v)
{
        if (v < 0 || isnan(v) || isinf(v))
                return;
        json_object_set_new(o, key, json_real(round(v * 1e4) / 1e4));
}

static void set_int(json_t *o, const char *key, int64_t v)
{
        if (v >= 0)
                json_object_set_new(o, key, json_integer(v));
}

/* ---- §9.1, §9.2: snapshots ---- */

static json_t *snapshot_error(const char *id, const char *msg)
{
        json_t *o = json_pack("{s:s, s:s}", "sandboxID", id, "error", msg);
        json_set_time(o, "collectedAt", time_now_ms());
        return o;
}

static json_t *snapshot_json(const char *id, const struct metric_snapshot *s)
{
        json_t *o = json_pack("{s:s}", "sandboxID", id);
        json_set_time(o, "collectedAt", s->collected_at);
        if (s->has_load) {
                set_num(o, "load1", s->load1);
                set_num(o, "load5", s->load5);
                set_num(o, "load15", s->load15);
        }
        set_num(o, "cpuUserRate", s->cpu_user_rate);
        set_num(o, "cpuSystemRate", s->cpu_system_rate);
        if (s->memory_limit > 0) {
                set_int(o, "memoryAvailableBytes",
                        MAX(s->memory_limit - s->memory_used, (int64_t)0));
                set_num(o, "memoryUsagePercent",
                        MIN(100.0, 100.0 * (double)s->memory_used / (double)s->memory_limit));
        }
        if (s->swap_total >= 0) {
                set_int(o, "swapTotalBytes", s->swap_total);
                if (s->swap_used >= 0)
                        set_int(o, "swapFreeBytes", MAX(s->swap_total - s->swap_used, (int64_t)0));
        }
        set_num(o, "diskReadOpsPerSecond", s->disk_read_ops);
        set_num(o, "diskWriteOpsPerSecond", s->disk_write_ops);
        set_num(o, "diskReadBytesPerSecond", s->disk_read_bytes);
        set_num(o, "diskWriteBytesPerSecond", s->disk_write_bytes);
        set_num(o, "networkRecvBytesPerSecond", s->net_rx_bytes);
        set_num(o, "networkSentBytesPerSecond", s->net_tx_bytes);
        set_num(o, "networkRecvPacketsPerSecond", s->net_rx_packets);
        set_num(o, "networkSentPacketsPerSecond", s->net_tx_packets);
        set_num(o, "networkRecvErrorsPerSecond", s->net_rx_errors);
        set_num(o, "networkSentErrorsPerSecond", s->net_tx_errors);
        set_num(o, "networkRecvDropsPerSecond", s->net_rx_drops);
        set_num(o, "networkSentDropsPerSecond", s->net_tx_drops);
        set_int(o, "taskCurrent", s->tasks);
        set_int(o, "taskMax", s->tasks_max);
        return o;
}

/* The snapshot item of one visible sandbox (never an HTTP error: errors are items). */
static json_t *snapshot_of(struct http_req *r, const struct sandbox_rec *sb)
{
        cleanup_err struct cove_err *err = NULL;
        struct metric_snapshot s;
        char msg[BUF_MAX_ERR_MSG + 32];
        if (sb->state != SANDBOX_RUNNING) {
                (void)snprintf(msg, sizeof(msg), "sandbox is %s",
                               sandbox_state_to_string(sb->state));
                return snapshot_error(sb->id, msg);
        }
        if (sampler_snapshot(r->cd, sb, &s, &err) < 0) {
                (void)snprintf(msg, sizeof(msg), "metrics unavailable: %s", err->msg);
                return snapshot_error(sb->id, msg);
        }
        return snapshot_json(sb->id, &s);
}

static int h_sandbox_metrics(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = NULL;
        if (manager_get(r->cd, r->auth.team_id, r->params[0], &sb, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = snapshot_of(r, sb);
        sandbox_rec_free(sb);
        return http_reply_json(r, 200, out);
}

static int h_fleet_metrics(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_strv char **ids = http_query_list(r, "sandbox_ids");
        int64_t limit;
        size_t nids = 0;

        for (char **p = ids; *p; p++)
                if (**p)
                        nids++;
        if (nids > FLEET_IDS_MAX)
                return http_reply_error(r, 400, "query 'sandbox_ids' names more than %d sandboxes",
                                        FLEET_IDS_MAX);
        if (query_int(r, "limit", 1, 1000, 100, &limit) < 0)
                return 0;

        json_t *items = json_array(), *map = json_object();
        if (nids > 0) {
                for (char **p = ids; *p && (int64_t)json_array_size(items) < limit; p++) {
                        struct sandbox_rec *sb = NULL;
                        json_t *it;
                        if (!**p || json_object_get(map, *p))
                                continue; /* empty list entries and repeats */
                        if (manager_get(r->cd, r->auth.team_id, *p, &sb, NULL) < 0)
                                it = snapshot_error(*p, "sandbox not found");
                        else
                                it = snapshot_of(r, sb);
                        sandbox_rec_free(sb);
                        json_array_append(items, it);
                        json_object_set_new(map, *p, it);
                }
        } else {
                struct sandbox_rec **all = NULL;
                if (manager_list(r->cd, r->auth.team_id, &all, &err) < 0) {
                        json_decref(items);
                        json_decref(map);
                        return http_reply_err(r, err);
                }
                for (size_t i = 0; all[i] && (int64_t)json_array_size(items) < limit; i++) {
                        if (all[i]->state != SANDBOX_RUNNING)
                                continue;
                        json_t *it = snapshot_of(r, all[i]);
                        json_array_append(items, it);
                        json_object_set_new(map, all[i]->id, it);
                }
                sandbox_list_free(all);
        }
        json_t *out = json_pack("{s:o, s:o}", "items", items, "sandboxes", map);
        json_set_time(out, "collectedAt", time_now_ms());
        return http_reply_json(r, 200, out);
}

/* ---- §9.3: team metrics over time ---- */

struct team_range {
        int64_t start, end, step; /* s */
};

/* start/end as §9.3 says (400 replied otherwise), and the step of at most 1000 points. */
static int team_range(struct http_req *r, struct team_range *ret)
{
        int64_t now = time_now_ms() / 1000, start, end;
        if (query_int(r, "end", 0, INT64_MAX / 2000, now, &end) < 0 ||
            query_int(r, "start", 0, INT64_MAX / 2000, end - 3600, &start) < 0)
                return -EINVAL;
        if (end < start)
                return http_reply_error(r, 400, "query 'end' is before 'start'"), -EINVAL;
        if (end - start > TEAM_SPAN_MAX_S)
                return http_reply_error(r, 400,
                                        "the range from 'start' to 'end' is longer than "
                                        "31 days"),
                       -EINVAL;
        int64_t step = TEAM_STEP_MIN_S;
        if ((end - start) / step + 1 > TEAM_POINTS_MAX) {
                step = (end - start + TEAM_POINTS_MAX - 2) / (TEAM_POINTS_MAX - 1);
                step = (step + TEAM_STEP_MIN_S - 1) / TEAM_STEP_MIN_S * TEAM_STEP_MIN_S;
        }
        *ret = (struct team_range){ start, end, step };
        return 0;
}

struct team_point {
        int64_t t;          /* s */
        int64_t concurrent; /* highest sample in the step */
        int64_t peak_at;    /* ms of that sample */
        int64_t starts;
};

/* One point per step, from the team's samples (and, for the step holding now, the live count
 * the next sample will show). *ret malloc'd. */
static int team_points(struct http_req *r, const char *team_id, const struct team_range *g,
                       struct team_point **ret, size_t *ret_n, struct cove_err **err)
{
        size_t n = (size_t)((g->end - g->start) / g->step) + 1;
        struct team_point *p = xzalloc(n * sizeof(*p));
        struct team_sample *v = NULL;
        size_t nv = 0;
        int rc = sampler_team_samples(r->cd, team_id, g->start * 1000,
                                      (g->start + (int64_t)n * g->step) * 1000 - 1, &v, &nv, err);
        if (rc < 0) {
                free(p);
                return rc;
        }
        for (size_t i = 0; i < n; i++)
                p[i].t = g->start + (int64_t)i * g->step;
        for (size_t k = 0; k < nv; k++) {
                size_t i = (size_t)((v[k].ts / 1000 - g->start) / g->step);
                if (i >= n)
                        continue;
                if (v[k].concurrent > p[i].concurrent || !p[i].peak_at) {
                        p[i].concurrent = MAX(p[i].concurrent, v[k].concurrent);
                        p[i].peak_at = v[k].ts;
                }
                p[i].starts += v[k].starts;
        }
        free(v);
        int64_t now = time_now_ms();
        if (now / 1000 >= g->start && now / 1000 < g->start + (int64_t)n * g->step) {
                struct usage_now u;
                size_t i = (size_t)((now / 1000 - g->start) / g->step);
                if (manager_usage_now(r->cd, false, team_id, &u, NULL) >= 0 &&
                    u.v[LIMIT_CONCURRENT_SANDBOXES] > p[i].concurrent) {
                        p[i].concurrent = u.v[LIMIT_CONCURRENT_SANDBOXES];
                        p[i].peak_at = now;
                }
        }
        *ret = p;
        *ret_n = n;
        return 0;
}

static int h_team_metrics(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct team_range g;
        struct team_point *p = NULL;
        size_t n = 0;
        if (tenancy_team_visible(r->cd, r->auth.key_id, r->params[0], &err) < 0)
                return http_reply_err(r, err);
        if (team_range(r, &g) < 0)
                return 0;
        if (team_points(r, r->params[0], &g, &p, &n, &err) < 0)
                return http_reply_err(r, err);
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
                json_t *o = json_object();
                json_set_time(o, "timestamp", p[i].t * 1000);
                json_object_set_new(o, "timestampUnix", json_integer(p[i].t));
                json_object_set_new(o, "concurrentSandboxes", json_integer(p[i].concurrent));
                json_object_set_new(o, "sandboxStartRate",
                                    json_real((double)p[i].starts / (double)g.step));
                json_array_append_new(a, o);
        }
        free(p);
        return http_reply_json(r, 200, a);
}

static int h_team_metrics_max(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct team_range g;
        struct team_point *p = NULL;
        size_t n = 0;
        if (tenancy_team_visible(r->cd, r->auth.key_id, r->params[0], &err) < 0)
                return http_reply_err(r, err);
        const char *metric = http_query(r, "metric");
        if (!metric ||
            (!streq(metric, "concurrent_sandboxes") && !streq(metric, "sandbox_start_rate")))
                return http_reply_error(r, 400,
                                        "query 'metric' must be concurrent_sandboxes or "
                                        "sandbox_start_rate");
        if (team_range(r, &g) < 0)
                return 0;
        if (team_points(r, r->params[0], &g, &p, &n, &err) < 0)
                return http_reply_err(r, err);
        bool rate = streq(metric, "sandbox_start_rate");
        double best = 0;
        int64_t at = g.start * 1000;
        for (size_t i = 0; i < n; i++) {
                double v = rate ? (double)p[i].starts / (double)g.step : (double)p[i].concurrent;
                if (v > best) {
                        best = v;
                        at = rate || !p[i].peak_at ? p[i].t * 1000 : p[i].peak_at;
                }
        }
        free(p);
        json_t *o = json_object();
        json_set_time(o, "timestamp", at);
        json_object_set_new(o, "timestampUnix", json_integer(at / 1000));
        json_object_set_new(o, "value", rate ? json_real(best) : json_integer((json_int_t)best));
        return http_reply_json(r, 200, o);
}

/* ---- §11 usage limits, §10 summary ---- */

/* The root under which endpoints are given: the request's, or /api/v1 outside the roots. */
static const char *api_root(const struct http_req *r)
{
        return r->root && *r->root ? r->root : "/api/v1";
}

static const enum limit_metric sandbox_metrics[] = { LIMIT_CONCURRENT_SANDBOXES, LIMIT_CPU,
                                                     LIMIT_MEMORY_MB, LIMIT_DISK_MB };
static const enum limit_metric template_metrics[] = { LIMIT_TEMPLATES, LIMIT_CONCURRENT_BUILDS };

struct scope_view {
        bool user;
        const char *id;
        struct limits limits;
        struct usage_now usage;
};

static int scope_load(struct http_req *r, bool user, struct scope_view *ret, struct cove_err **err)
{
        ret->user = user;
        ret->id = user ? r->auth.key_id : r->auth.team_id;
        int rc = manager_limits(r->cd, user, ret->id, &ret->limits, err);
        if (rc >= 0)
                rc = manager_usage_now(r->cd, user, ret->id, &ret->usage, err);
        return rc;
}

/* UsageLimitScope of one resource. */
static json_t *scope_json(const struct scope_view *s, bool templates, bool unlimited)
{
        const enum limit_metric *ms = templates ? template_metrics : sandbox_metrics;
        size_t n = templates ? ARRAY_SIZE(template_metrics) : ARRAY_SIZE(sandbox_metrics);
        json_t *usage = json_object(), *limits = json_object();
        for (size_t i = 0; i < n; i++) {
                enum limit_metric m = ms[i];
                int64_t used = s->usage.v[m], limit = s->limits.v[m];
                json_object_set_new(usage, limit_metric_to_string(m), json_integer(used));
                if (limit > 0)
                        json_object_set_new(limits, limit_metric_to_string(m),
                                            json_pack("{s:I, s:I, s:I, s:b}", "limit",
                                                      (json_int_t)limit, "used", (json_int_t)used,
                                                      "remaining",
                                                      (json_int_t)MAX(limit - used, (int64_t)0),
                                                      "enforced", 1));
        }
        if (!templates)
                json_object_set_new(usage, "pausedSandboxes", json_integer(s->usage.paused));
        json_t *o = json_pack("{s:s, s:o}", "id", s->id, "usage", usage);
        if (!unlimited)
                json_object_set_new(o, "limits", limits);
        else
                json_decref(limits);
        return o;
}

static bool any_limit(const struct scope_view *s, bool templates)
{
        const enum limit_metric *ms = templates ? template_metrics : sandbox_metrics;
        size_t n = templates ? ARRAY_SIZE(template_metrics) : ARRAY_SIZE(sandbox_metrics);
        for (size_t i = 0; i < n; i++)
                if (s->limits.v[ms[i]] > 0)
                        return true;
        return false;
}

static json_t *usage_json(const struct coved *cd, const struct scope_view *user,
                          const struct scope_view *project, bool templates)
{
        bool unlimited = !any_limit(user, templates) && !any_limit(project, templates);
        json_t *o = json_pack("{s:s, s:o, s:o}", "resource", templates ? "templates" : "sandboxes",
                              "user", scope_json(user, templates, unlimited), "project",
                              scope_json(project, templates, unlimited));
        if (unlimited)
                json_object_set_new(o, "unlimited", json_true());
        if (!templates) {
                int64_t max = 86400;
                for (int k = 0; k < 2; k++) {
                        int64_t v = (k ? user : project)->limits.v[LIMIT_MAX_LIFETIME];
                        if (v > 0)
                                max = MIN(max, v);
                }
                json_object_set_new(o, "runtime",
                                    json_pack("{s:I}", "maxRuntimeSeconds", (json_int_t)max));
        } else { /* the operator's ceilings of template resources (build-plane.md §4.1) */
                json_object_set_new(o, "resources",
                                    json_pack("{s:I, s:I, s:I}", "maxTemplateCPU",
                                              (json_int_t)cd->cfg.max_template_cpu,
                                              "maxTemplateMemoryMB",
                                              (json_int_t)cd->cfg.max_template_memory_mb,
                                              "maxTemplateStorageGB",
                                              (json_int_t)(cd->cfg.max_template_disk_mb / 1024)));
        }
        return o;
}

static int h_usage_limits(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct scope_view user, project;
        const char *res = http_query(r, "resource");
        if (res && *res && !streq(res, "sandboxes") && !streq(res, "templates"))
                return http_reply_error(r, 400, "query 'resource' must be sandboxes or templates");
        bool templates = res && streq(res, "templates");
        if (scope_load(r, true, &user, &err) < 0 || scope_load(r, false, &project, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_json(r, 200, usage_json(r->cd, &user, &project, templates));
}

/* Adds the checks (and their actions) of one scope and resource. Returns whether a limit of
 * the resource is exhausted. */
static bool add_checks(struct http_req *r, const struct scope_view *s, bool templates,
                       json_t *checks, json_t *actions)
{
        const enum limit_metric *ms = templates ? template_metrics : sandbox_metrics;
        size_t n = templates ? ARRAY_SIZE(template_metrics) : ARRAY_SIZE(sandbox_metrics);
        cleanup_free char *endpoint =
                xasprintf("%s/usage/limits%s", api_root(r), templates ? "?resource=templates" : "");
        bool exhausted_any = false;
        for (size_t i = 0; i < n; i++) {
                enum limit_metric m = ms[i];
                int64_t used = s->usage.v[m], limit = s->limits.v[m];
                if (limit <= 0 || used * 100 < limit * CHECK_WARNING_PCT)
                        continue;
                bool exhausted = used >= limit;
                exhausted_any |= exhausted;
                const char *scope = s->user ? "user" : "project";
                char msg[256];
                (void)snprintf(msg, sizeof(msg), "%s %s '%s' uses %lld of its %s limit %lld",
                               exhausted ? "exhausted:" : "warning:", scope, s->id, (long long)used,
                               limit_metric_to_string(m), (long long)limit);
                json_array_append_new(
                        checks, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "status",
                                          exhausted ? "exhausted" : "warning", "scope", scope,
                                          "resource", templates ? "templates" : "sandboxes",
                                          "metric", limit_metric_to_string(m), "used",
                                          (json_int_t)used, "limit", (json_int_t)limit, "remaining",
                                          (json_int_t)MAX(limit - used, (int64_t)0), "message", msg,
                                          "usageEndpoint", endpoint));
                char act[320];
                (void)snprintf(act, sizeof(act),
                               exhausted ? "%s %s: new %s are refused until usage drops; free some "
                                           "or ask the operator for a higher limit"
                                         : "%s %s: close to its limit; review what is running",
                               scope, s->id, templates ? "templates or builds" : "sandboxes");
                json_array_append_new(actions, json_pack("{s:s, s:s, s:s, s:s, s:s}", "status",
                                                         exhausted ? "limit_reached" : "review",
                                                         "scope", scope, "resource",
                                                         templates ? "templates" : "sandboxes",
                                                         "message", act, "endpoint", endpoint));
        }
        return exhausted_any;
}

static void availability(json_t *avail, json_t *actions, const char *key, bool ok,
                         const char *message)
{
        json_t *o = json_pack("{s:s}", "status", ok ? "available" : "unavailable");
        if (!ok) {
                json_object_set_new(o, "message", json_string(message));
                json_array_append_new(actions, json_pack("{s:s, s:s, s:s}", "status", "unavailable",
                                                         "resource", key, "message", message));
        }
        json_object_set_new(avail, key, o);
}

static int h_summary(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct scope_view user, project;
        if (scope_load(r, true, &user, &err) < 0 || scope_load(r, false, &project, &err) < 0)
                return http_reply_err(r, err);

        json_t *checks = json_array(), *actions = json_array(), *avail = json_object();
        bool sb_full = add_checks(r, &project, false, checks, actions);
        sb_full |= add_checks(r, &user, false, checks, actions);
        bool tpl_full = add_checks(r, &project, true, checks, actions);
        tpl_full |= add_checks(r, &user, true, checks, actions);

        int64_t counts[_SANDBOX_STATE_MAX] = { 0 };
        bool node_full = false, logs_ok = manager_count_by_state(r->cd, counts, NULL) >= 0;
        if (r->cd->cfg.max_sandboxes > 0)
                node_full = counts[SANDBOX_STARTING] + counts[SANDBOX_RUNNING] >=
                            r->cd->cfg.max_sandboxes;
        availability(avail, actions, "sandboxes", !sb_full && !node_full && !r->cd->stopping,
                     r->cd->stopping ? "coved is shutting down"
                     : node_full     ? "the node has no capacity for another sandbox"
                                     : "a sandbox limit is exhausted: new sandboxes are refused");
        availability(avail, actions, "templates", !tpl_full,
                     "a template limit is exhausted: new templates or builds are refused");
        availability(avail, actions, "metrics", sampler_healthy(r->cd),
                     "sandbox metrics are not being sampled");
        availability(avail, actions, "logs", logs_ok, "the log store does not answer");

        bool degraded = json_array_size(checks) > 0;
        const char *k;
        json_t *v;
        json_object_foreach (avail, k, v)
                degraded |= !streq(json_string_value(json_object_get(v, "status")), "available");

        const char *root = api_root(r);
        cleanup_free char *sb_usage = xasprintf("%s/usage/limits", root);
        cleanup_free char *tpl_usage = xasprintf("%s/usage/limits?resource=templates", root);
        cleanup_free char *detail = xasprintf("%s/sandboxes/{sandboxID}", root);
        cleanup_free char *metrics = xasprintf("%s/sandboxes/{sandboxID}/metrics", root);
        cleanup_free char *logs = xasprintf("%s/sandboxes/{sandboxID}/logs", root);
        cleanup_free char *bstatus =
                xasprintf("%s/templates/{templateID}/builds/{buildID}/status", root);
        cleanup_free char *blogs =
                xasprintf("%s/templates/{templateID}/builds/{buildID}/logs", root);
        json_t *endpoints =
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "sandboxUsage", sb_usage,
                          "templateUsage", tpl_usage, "sandboxDetail", detail, "sandboxMetrics",
                          metrics, "sandboxLogs", logs, "buildStatus", bstatus, "buildLogs", blogs);
        json_t *out = json_pack("{s:s, s:s, s:s, s:{s:o, s:o}, s:o, s:o, s:o, s:o}", "status",
                                degraded ? "degraded" : "ok", "projectID", r->auth.team_id,
                                "userID", r->auth.key_id, "usage", "sandboxes",
                                usage_json(r->cd, &user, &project, false), "templates",
                                usage_json(r->cd, &user, &project, true), "availability", avail,
                                "checks", checks, "actions", actions, "endpoints", endpoints);
        return http_reply_json(r, 200, out);
}

const struct route seacloud_observe_routes[] = {
        { "GET", "sandboxes/:id/metrics", h_sandbox_metrics, 0, 0, NULL },
        { "GET", "sandboxes/metrics", h_fleet_metrics, 0, 0, NULL },
        { "GET", "teams/:team/metrics", h_team_metrics, 0, 0, NULL },
        { "GET", "teams/:team/metrics/max", h_team_metrics_max, 0, 0, NULL },
        { "GET", "observability/summary", h_summary, 0, 0, NULL },
        { "GET", "observability/sandboxes", h_summary, 0, 0, NULL },
        { "GET", "usage/limits", h_usage_limits, 0, 0, NULL },
        {},
};
