/* SPDX-License-Identifier: MIT */
/*
 * usage.c — what teams and keys use, the operator's limits, admission of new sandboxes
 * against both (count and insert in one step), team samples for metrics over time, and the
 * pruning of rows nothing else removes.
 */
#include "store-internal.h"

#include "lib/macro.h"

#include "lib/banned.h"

/* Lock held. */
static int usage_locked(struct store *s, const char *team_id, const char *key_id,
                        struct store_usage *ret, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_SANDBOX_USAGE,
                "SELECT"
                " coalesce(SUM(status IN ('starting', 'running')), 0),"
                " coalesce(SUM(status = 'paused'), 0),"
                " coalesce(SUM(CASE WHEN status IN ('starting', 'running') THEN cpu_count END), 0),"
                " coalesce(SUM(CASE WHEN status IN ('starting', 'running') THEN memory_mb END), 0),"
                " coalesce(SUM(CASE WHEN status != 'stopped' THEN disk_size_mb END), 0)"
                " FROM sandboxes WHERE (?1 IS NULL OR team_id = ?1) AND (?2 IS NULL OR key_id = "
                "?2)",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(key_id));
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "count sandbox usage");
        *ret = (struct store_usage){
                .live = sqlite3_column_int64(st, 0),
                .paused = sqlite3_column_int64(st, 1),
                .cpu = sqlite3_column_int64(st, 2),
                .memory_mb = sqlite3_column_int64(st, 3),
                .disk_mb = sqlite3_column_int64(st, 4),
        };
        return 0;
}

int store_sandbox_usage(struct store *s, const char *team_id, const char *key_id,
                        struct store_usage *ret, struct cove_err **err)
{
        STORE_LOCK(s);
        return usage_locked(s, team_id, key_id, ret, err);
}

/* Templates of a team (team_id), made by a key (key_id), or all (both NULL). */
static int template_count(struct store *s, const char *team_id, const char *key_id, int64_t *ret,
                          struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TEMPLATE_COUNT,
                           "SELECT COUNT(*) FROM templates WHERE (?1 IS NULL OR team_id = ?1)"
                           " AND (?2 IS NULL OR created_by = ?2)",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(key_id));
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "count templates");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

int store_template_count(struct store *s, const char *team_id, int64_t *ret, struct cove_err **err)
{
        return template_count(s, team_id, NULL, ret, err);
}

int store_template_count_by_key(struct store *s, const char *key_id, int64_t *ret,
                                struct cove_err **err)
{
        return template_count(s, NULL, key_id, ret, err);
}

/* The first limit of q that one more sandbox like sb would exceed. */
static bool breach_of(const int64_t limits[_QUOTA_MAX], const struct store_usage *u,
                      const struct sandbox_rec *sb, struct store_quota_breach *ret)
{
        const int64_t used[_QUOTA_MAX] = {
                [QUOTA_CONCURRENT_SANDBOXES] = u->live,
                [QUOTA_CPU] = u->cpu,
                [QUOTA_MEMORY_MB] = u->memory_mb,
                [QUOTA_DISK_MB] = u->disk_mb,
        };
        const int64_t adds[_QUOTA_MAX] = {
                [QUOTA_CONCURRENT_SANDBOXES] = 1,
                [QUOTA_CPU] = sb->cpu_count,
                [QUOTA_MEMORY_MB] = sb->memory_mb,
                [QUOTA_DISK_MB] = sb->disk_size_mb,
        };
        for (int m = 0; m < _QUOTA_MAX; m++)
                if (limits[m] > 0 && used[m] + adds[m] > limits[m]) {
                        *ret = (struct store_quota_breach){
                                .metric = (enum store_quota_metric)m,
                                .used = used[m],
                                .limit = limits[m],
                        };
                        return true;
                }
        return false;
}

static bool any_limit(const int64_t limits[_QUOTA_MAX])
{
        for (int m = 0; m < _QUOTA_MAX; m++)
                if (limits[m] > 0)
                        return true;
        return false;
}

int store_sandbox_insert_admitted(struct store *s, struct sandbox_rec *sb,
                                  const struct store_quota *q,
                                  struct store_quota_breach *ret_breach, struct cove_err **err)
{
        struct store_usage u;
        int r;

        STORE_LOCK(s);
        if (q->node_max_live > 0) {
                r = usage_locked(s, NULL, NULL, &u, err);
                if (r < 0)
                        return r;
                if (u.live >= q->node_max_live)
                        return cove_err_set(err, EUSERS, "%lld sandboxes are live (capacity %lld)",
                                            (long long)u.live, (long long)q->node_max_live);
        }
        if (any_limit(q->project)) {
                r = usage_locked(s, sb->team_id, NULL, &u, err);
                if (r < 0)
                        return r;
                if (breach_of(q->project, &u, sb, ret_breach))
                        return cove_err_set(err, EDQUOT, "project limit reached");
        }
        if (sb->key_id && any_limit(q->user)) {
                r = usage_locked(s, NULL, sb->key_id, &u, err);
                if (r < 0)
                        return r;
                if (breach_of(q->user, &u, sb, ret_breach)) {
                        ret_breach->user = true;
                        return cove_err_set(err, EDQUOT, "user limit reached");
                }
        }
        return store_sandbox_insert_locked(s, sb, err);
}

int store_limits_get(struct store *s, const char *scope, const char *owner_id, json_t **ret,
                     struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_LIMITS_GET,
                "SELECT metric, value FROM usage_limits WHERE scope = ?1 AND owner_id = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(scope), STORE_TEXT(owner_id));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "read limits");
        json_t *o = json_object();
        while ((rc = store_step(s, st)) == SQLITE_ROW)
                json_object_set_new(o, (const char *)sqlite3_column_text(st, 0),
                                    json_integer(sqlite3_column_int64(st, 1)));
        if (rc != SQLITE_DONE) {
                json_decref(o);
                return store_sql_error(s, rc, err, "read limits");
        }
        *ret = o;
        return 0;
}

int store_limits_set(struct store *s, const char *scope, const char *owner_id, const char *metric,
                     int64_t value, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                value >= 0
                        ? store_stmt(
                                  s, STMT_LIMITS_SET,
                                  "INSERT INTO usage_limits (scope, owner_id, metric, value)"
                                  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope, owner_id, metric)"
                                  " DO UPDATE SET value = excluded.value",
                                  err)
                        : store_stmt(s, STMT_LIMITS_DELETE,
                                     "DELETE FROM usage_limits WHERE scope = ?1 AND owner_id = ?2"
                                     " AND metric = ?3",
                                     err);
        if (!st)
                return -EIO;
        int rc = value >= 0 ? STORE_RUN(s, st, STORE_TEXT(scope), STORE_TEXT(owner_id),
                                        STORE_TEXT(metric), STORE_I64(value))
                            : STORE_RUN(s, st, STORE_TEXT(scope), STORE_TEXT(owner_id),
                                        STORE_TEXT(metric));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "set limit '%s'", metric);
        return 0;
}

/* ---- team samples ---- */

int store_team_sample_all(struct store *s, int64_t ts, int64_t since_ms, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TEAM_SAMPLE,
                "INSERT OR REPLACE INTO team_samples (team_id, ts, concurrent, starts)"
                " SELECT t.id, ?1,"
                " (SELECT COUNT(*) FROM sandboxes x WHERE x.team_id = t.id"
                "  AND x.status IN ('starting', 'running')),"
                " (SELECT COUNT(*) FROM lifecycle_events e WHERE e.team_id = t.id"
                "  AND e.ts > ?2 AND e.ts <= ?1 AND e.type = 'sandbox.lifecycle.created')"
                " FROM teams t",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_I64(ts), STORE_I64(since_ms));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "sample teams");
        return 0;
}

int store_team_samples(struct store *s, const char *team_id, int64_t from_ms, int64_t to_ms,
                       struct team_sample **ret, size_t *ret_n, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TEAM_SAMPLES,
                           "SELECT ts, concurrent, starts FROM team_samples WHERE team_id = ?1"
                           " AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(team_id), STORE_I64(from_ms), STORE_I64(to_ms));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "read team samples");
        struct team_sample *v = NULL;
        size_t n = 0, cap = 0;
        while ((rc = store_step(s, st)) == SQLITE_ROW) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        v = xrealloc(v, cap * sizeof(*v));
                }
                v[n++] = (struct team_sample){ sqlite3_column_int64(st, 0),
                                               sqlite3_column_int64(st, 1),
                                               sqlite3_column_int64(st, 2) };
        }
        if (rc != SQLITE_DONE) {
                free(v);
                return store_sql_error(s, rc, err, "read team samples");
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int exec_prune(struct store *s, enum store_stmt_id id, const char *sql, int64_t arg,
                      bool bind, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(s, id, sql, err);
        if (!st)
                return -EIO;
        int rc = bind ? STORE_RUN(s, st, STORE_I64(arg)) : store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "prune");
        return 0;
}

int store_team_samples_prune(struct store *s, int64_t before_ms, struct cove_err **err)
{
        return exec_prune(s, STMT_TEAM_SAMPLES_PRUNE, "DELETE FROM team_samples WHERE ts < ?1",
                          before_ms, true, err);
}

int store_log_prune_orphans(struct store *s, struct cove_err **err)
{
        return exec_prune(s, STMT_LOG_PRUNE_ORPHANS,
                          "DELETE FROM sandbox_logs WHERE sandbox_id NOT IN"
                          " (SELECT id FROM sandboxes)",
                          0, false, err);
}
