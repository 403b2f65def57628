/* SPDX-License-Identifier: MIT */
/*
 * quota.c — usage limits (control-plane.md §11): which limits are in force for a team or a
 * key, what they use, and the 429 errors (README §5.4) of the admission checks. The check
 * for new sandboxes itself runs inside the store's insert (store_sandbox_insert_admitted()),
 * so that parallel creates cannot overshoot; manager_create() turns its verdict into the
 * error built here.
 */
#include "coved/manager/internal.h"
#include "coved/metrics.h"
#include "lib/macro.h"

static const char *const metric_names[_LIMIT_MAX] = {
        [LIMIT_CONCURRENT_SANDBOXES] = "concurrentSandboxes",
        [LIMIT_CPU] = "cpuCount",
        [LIMIT_MEMORY_MB] = "memoryMB",
        [LIMIT_DISK_MB] = "diskSizeMB",
        [LIMIT_TEMPLATES] = "templates",
        [LIMIT_CONCURRENT_BUILDS] = "concurrentBuilds",
        [LIMIT_MAX_LIFETIME] = "maxLifetimeSeconds",
};

/* What the messages call each limit. */
static const char *const metric_prose[_LIMIT_MAX] = {
        [LIMIT_CONCURRENT_SANDBOXES] = "concurrent sandbox",
        [LIMIT_CPU] = "CPU",
        [LIMIT_MEMORY_MB] = "memory (MiB)",
        [LIMIT_DISK_MB] = "disk (MiB)",
        [LIMIT_TEMPLATES] = "template",
        [LIMIT_CONCURRENT_BUILDS] = "concurrent build",
        [LIMIT_MAX_LIFETIME] = "lifetime",
};

const char *limit_metric_to_string(enum limit_metric m)
{
        return m >= 0 && m < _LIMIT_MAX ? metric_names[m] : NULL;
}

enum limit_metric limit_metric_from_string(const char *s)
{
        for (int m = 0; s && m < _LIMIT_MAX; m++)
                if (streq(s, metric_names[m]))
                        return (enum limit_metric)m;
        return _LIMIT_INVALID;
}

const char *limit_metric_resource(enum limit_metric m)
{
        return m == LIMIT_TEMPLATES || m == LIMIT_CONCURRENT_BUILDS ? "templates" : "sandboxes";
}

int manager_limits(struct coved *cd, bool user_scope, const char *owner_id, struct limits *ret,
                   struct cove_err **err)
{
        struct limits l = { 0 };
        if (!user_scope) {
                const struct coved_config *c = &cd->cfg;
                l.v[LIMIT_CONCURRENT_SANDBOXES] = c->limit_concurrent_sandboxes;
                l.v[LIMIT_CPU] = c->limit_cpu;
                l.v[LIMIT_MEMORY_MB] = c->limit_memory_mb;
                l.v[LIMIT_DISK_MB] = c->limit_disk_mb;
                l.v[LIMIT_TEMPLATES] = c->limit_templates;
                l.v[LIMIT_CONCURRENT_BUILDS] = c->limit_concurrent_builds;
                l.v[LIMIT_MAX_LIFETIME] = c->limit_max_lifetime;
        }
        json_t *o = NULL;
        int r = store_limits_get(cd->store, user_scope ? "user" : "project", owner_id, &o, err);
        if (r < 0)
                return r;
        const char *k;
        json_t *v;
        json_object_foreach (o, k, v) {
                enum limit_metric m = limit_metric_from_string(k);
                if (m >= 0) {
                        l.v[m] = json_integer_value(v);
                        l.set[m] = true;
                }
        }
        json_decref(o);
        *ret = l;
        return 0;
}

int manager_limits_set(struct coved *cd, bool user_scope, const char *owner_id, enum limit_metric m,
                       int64_t value, struct cove_err **err)
{
        if (m < 0 || m >= _LIMIT_MAX)
                return cove_err_set(err, EINVAL, "unknown limit");
        if (m == LIMIT_MAX_LIFETIME && value > 86400)
                return cove_err_set(err, EINVAL,
                                    "limit 'maxLifetimeSeconds' must be at most 86400");
        return store_limits_set(cd->store, user_scope ? "user" : "project", owner_id,
                                metric_names[m], value, err);
}

/* Builds waiting or building with a source, of a team or a key (the build plane's tables). */
static int64_t builds_in_progress(struct coved *cd, bool user_scope, const char *owner_id)
{
        int64_t n = 0;
        if (store_build_count_active(cd->store, user_scope ? NULL : owner_id,
                                     user_scope ? owner_id : NULL, &n, NULL) < 0)
                return 0;
        return n;
}

int manager_usage_now(struct coved *cd, bool user_scope, const char *owner_id,
                      struct usage_now *ret, struct cove_err **err)
{
        struct store_usage su;
        struct usage_now u = { 0 };
        int r = store_sandbox_usage(cd->store, user_scope ? NULL : owner_id,
                                    user_scope ? owner_id : NULL, &su, err);
        if (r < 0)
                return r;
        u.v[LIMIT_CONCURRENT_SANDBOXES] = su.live;
        u.v[LIMIT_CPU] = su.cpu;
        u.v[LIMIT_MEMORY_MB] = su.memory_mb;
        u.v[LIMIT_DISK_MB] = su.disk_mb;
        u.paused = su.paused;
        r = user_scope
                    ? store_template_count_by_key(cd->store, owner_id, &u.v[LIMIT_TEMPLATES], err)
                    : store_template_count(cd->store, owner_id, &u.v[LIMIT_TEMPLATES], err);
        if (r < 0)
                return r;
        u.v[LIMIT_CONCURRENT_BUILDS] = builds_in_progress(cd, user_scope, owner_id);
        *ret = u;
        return 0;
}

int manager_count_templates(struct coved *cd, int64_t *ret, struct cove_err **err)
{
        return store_template_count(cd->store, NULL, ret, err);
}

int quota_error(struct cove_err **err, bool user_scope, const char *owner_id, enum limit_metric m,
                int64_t used, int64_t limit, int64_t needs)
{
        const char *scope = user_scope ? "user" : "project";
        int r;
        if (needs > 1)
                r = cove_err_set_status(err, 429, EDQUOT,
                                        "%s limit reached for %s '%s' (%lld of %lld in use, "
                                        "this sandbox needs %lld)",
                                        metric_prose[m], scope, owner_id, (long long)used,
                                        (long long)limit, (long long)needs);
        else
                r = cove_err_set_status(
                        err, 429, EDQUOT, "%s limit reached for %s '%s' (%lld of %lld)",
                        metric_prose[m], scope, owner_id, (long long)used, (long long)limit);
        json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "scope", scope, "resource",
                              limit_metric_resource(m), "metric", metric_names[m], "used",
                              (json_int_t)used, "limit", (json_int_t)limit, "remaining",
                              (json_int_t)MAX(limit - used, (int64_t)0), "usageEndpoint",
                              m == LIMIT_TEMPLATES || m == LIMIT_CONCURRENT_BUILDS
                                      ? "/usage/limits?resource=templates"
                                      : "/usage/limits");
        cove_err_set_details(err, d ? json_dumps(d, JSON_COMPACT) : NULL);
        json_decref(d);
        return r;
}

/* The admission check of one more template or build against both scopes. */
static int admit_one(struct coved *cd, enum limit_metric m, const char *team_id, int64_t team_now,
                     const char *key_id, int64_t key_now, struct cove_err **err)
{
        struct limits l;
        int r = manager_limits(cd, false, team_id, &l, err);
        if (r < 0)
                return r;
        if (l.v[m] > 0 && team_now + 1 > l.v[m])
                return quota_error(err, false, team_id, m, team_now, l.v[m], 1);
        if (!key_id)
                return 0;
        r = manager_limits(cd, true, key_id, &l, err);
        if (r < 0)
                return r;
        if (l.v[m] > 0 && key_now + 1 > l.v[m])
                return quota_error(err, true, key_id, m, key_now, l.v[m], 1);
        return 0;
}

int manager_admit_template(struct coved *cd, const char *team_id, const char *key_id,
                           struct cove_err **err)
{
        int64_t n = 0, by_key = 0;
        int r = store_template_count(cd->store, team_id, &n, err);
        if (r >= 0 && key_id)
                r = store_template_count_by_key(cd->store, key_id, &by_key, err);
        if (r < 0)
                return r;
        return admit_one(cd, LIMIT_TEMPLATES, team_id, n, key_id, by_key, err);
}

int manager_admit_build(struct coved *cd, const char *team_id, int64_t team_builds_now,
                        const char *key_id, int64_t key_builds_now, struct cove_err **err)
{
        return admit_one(cd, LIMIT_CONCURRENT_BUILDS, team_id, team_builds_now, key_id,
                         key_builds_now, err);
}

int quota_read(struct coved *cd, const char *team_id, const char *key_id, struct quota_scope *ret,
               struct cove_err **err)
{
        struct quota_scope q = { .has_key = key_id != NULL };
        int r = manager_limits(cd, false, team_id, &q.team, err);
        if (r >= 0 && key_id)
                r = manager_limits(cd, true, key_id, &q.key, err);
        if (r < 0)
                return r;
        *ret = q;
        return 0;
}

int64_t quota_scope_max_lifetime(const struct quota_scope *q)
{
        int64_t max = 86400;
        if (q->team.v[LIMIT_MAX_LIFETIME] > 0)
                max = MIN(max, q->team.v[LIMIT_MAX_LIFETIME]);
        if (q->has_key && q->key.v[LIMIT_MAX_LIFETIME] > 0)
                max = MIN(max, q->key.v[LIMIT_MAX_LIFETIME]);
        return max;
}

int quota_admit_sandbox(struct coved *cd, struct sandbox_rec *sb, const struct quota_scope *qs,
                        struct cove_err **err)
{
        struct store_quota q = { .node_max_live = cd->cfg.max_sandboxes };
        struct store_quota_breach b = { 0 };
        static const enum limit_metric map[_QUOTA_MAX] = {
                [QUOTA_CONCURRENT_SANDBOXES] = LIMIT_CONCURRENT_SANDBOXES,
                [QUOTA_CPU] = LIMIT_CPU,
                [QUOTA_MEMORY_MB] = LIMIT_MEMORY_MB,
                [QUOTA_DISK_MB] = LIMIT_DISK_MB,
        };

        for (int i = 0; i < _QUOTA_MAX; i++) {
                q.project[i] = qs->team.v[map[i]];
                q.user[i] = qs->has_key ? qs->key.v[map[i]] : 0;
        }
        int r = store_sandbox_insert_admitted(cd->store, sb, &q, &b, err);
        if (r == -EUSERS) {
                cove_err_free(err);
                metrics_sandbox_refused("capacity");
                return cove_err_set_status(err, 503, EAGAIN, "no capacity for a new sandbox");
        }
        if (r == -EDQUOT) {
                cove_err_free(err);
                metrics_sandbox_refused("quota");
                enum limit_metric m = map[b.metric];
                int64_t needs = m == LIMIT_CPU         ? sb->cpu_count
                                : m == LIMIT_MEMORY_MB ? sb->memory_mb
                                : m == LIMIT_DISK_MB   ? sb->disk_size_mb
                                                       : 1;
                return quota_error(err, b.user, b.user ? sb->key_id : sb->team_id, m, b.used,
                                   b.limit, needs);
        }
        return r;
}

int quota_max_lifetime(struct coved *cd, const char *team_id, const char *key_id, int64_t *ret_s,
                       struct cove_err **err)
{
        struct quota_scope q;
        int r = quota_read(cd, team_id, key_id, &q, err);
        if (r >= 0)
                *ret_s = quota_scope_max_lifetime(&q);
        return r;
}
