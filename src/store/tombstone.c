/* SPDX-License-Identifier: MIT */
/*
 * tombstone.c — the sandbox_tombstones table: what the /v1 face still shows of a gone sandbox
 * for 24 hours (v1-api.md §3.2, §11). A tombstone is the sandbox's record as JSON (only the
 * fields a reader of a gone sandbox needs), so the table does not follow every column the
 * sandboxes table gains.
 */
#include "store-internal.h"

#include "lib/json.h"
#include "lib/macro.h"

#include "lib/banned.h"

/* The record's fields: integers, strings and JSON values, by name. */
static json_t *record_of(const struct sandbox_rec *sb)
{
        json_t *j = json_pack(
                "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:I, s:I, s:I, s:I, s:I}",
                "team_id", sb->team_id, "template_id", sb->template_id, "created_seq",
                (json_int_t)sb->created_seq, "started_at", (json_int_t)sb->started_at, "end_at",
                (json_int_t)sb->end_at, "activated_at", (json_int_t)sb->activated_at, "cpu_count",
                (json_int_t)sb->cpu_count, "memory_mb", (json_int_t)sb->memory_mb, "disk_size_mb",
                (json_int_t)sb->disk_size_mb, "auto_pause", sb->auto_pause, "auto_resume",
                sb->auto_resume, "timeout_ms", (json_int_t)sb->timeout_ms, "idle_timeout_ms",
                (json_int_t)sb->idle_timeout_ms, "last_active_at", (json_int_t)sb->last_active_at,
                "updated_at", (json_int_t)sb->updated_at, "stopped_at", (json_int_t)sb->stopped_at);
        if (!j)
                return NULL;
        if (sb->alias)
                json_object_set_new(j, "alias", json_string(sb->alias));
        if (sb->size)
                json_object_set_new(j, "size", json_string(sb->size));
        json_object_set(j, "metadata", sb->metadata ? sb->metadata : json_object());
        json_object_set(j, "network", sb->network ? sb->network : json_null());
        json_object_set(j, "volume_mounts", sb->volume_mounts ? sb->volume_mounts : json_array());
        if (sb->egress)
                json_object_set(j, "egress", sb->egress);
        return j;
}

static char *str_of(json_t *j, const char *k)
{
        const char *v = json_string_value(json_object_get(j, k));
        return v ? xstrdup(v) : NULL;
}

static int64_t int_of(json_t *j, const char *k)
{
        int64_t v = 0;
        return json_get_integer(json_object_get(j, k), &v) ? v : 0;
}

static json_t *json_of(json_t *j, const char *k, json_t *dflt)
{
        json_t *v = json_object_get(j, k);
        if (!v || json_is_null(v))
                return dflt;
        json_decref(dflt);
        return json_incref(v);
}

static int tombstone_from_row(sqlite3_stmt *st, struct sandbox_rec **ret, struct cove_err **err)
{
        json_t *j = NULL;
        int r = store_col_json(st, 3, "{}", &j, err);
        if (r < 0)
                return r;
        struct sandbox_rec *sb = xzalloc(sizeof(*sb));
        sb->id = store_col_text(st, 0);
        sb->team_id = store_col_text(st, 1);
        sb->destroyed_at = store_col_i64(st, 2);
        sb->state = SANDBOX_STOPPED;
        sb->template_id = str_of(j, "template_id");
        if (!sb->template_id)
                sb->template_id = xstrdup("");
        sb->alias = str_of(j, "alias");
        sb->size = str_of(j, "size");
        sb->created_seq = int_of(j, "created_seq");
        sb->started_at = int_of(j, "started_at");
        sb->end_at = int_of(j, "end_at");
        sb->activated_at = int_of(j, "activated_at");
        sb->stopped_at = int_of(j, "stopped_at");
        sb->cpu_count = int_of(j, "cpu_count");
        sb->memory_mb = int_of(j, "memory_mb");
        sb->disk_size_mb = int_of(j, "disk_size_mb");
        sb->auto_pause = json_is_true(json_object_get(j, "auto_pause"));
        sb->auto_resume = json_is_true(json_object_get(j, "auto_resume"));
        sb->timeout_ms = int_of(j, "timeout_ms");
        sb->idle_timeout_ms = int_of(j, "idle_timeout_ms");
        sb->last_active_at = int_of(j, "last_active_at");
        sb->updated_at = int_of(j, "updated_at");
        sb->metadata = json_of(j, "metadata", json_object());
        sb->network = json_of(j, "network", NULL);
        sb->volume_mounts = json_of(j, "volume_mounts", json_array());
        sb->egress = json_of(j, "egress", NULL);
        sb->env_vars = json_object();
        sb->timeline = json_array();
        json_decref(j);
        *ret = sb;
        return 0;
}

static int purge_locked(struct store *s, int64_t before, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TOMBSTONE_PURGE,
                           "DELETE FROM sandbox_tombstones WHERE destroyed_at < ?1", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_I64(before));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "purge sandbox tombstones");
        return 0;
}

static int insert_locked(struct store *s, const struct sandbox_rec *sb, int64_t destroyed_at,
                         struct cove_err **err)
{
        json_t *rec = record_of(sb);
        if (!rec)
                return cove_err_set(err, ENOMEM, "encode tombstone of sandbox '%s'", sb->id);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TOMBSTONE_INSERT,
                "INSERT INTO sandbox_tombstones (id, team_id, destroyed_at, record)"
                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET team_id = excluded.team_id,"
                " destroyed_at = excluded.destroyed_at, record = excluded.record",
                err);
        if (!st) {
                json_decref(rec);
                return -EIO;
        }
        int rc = STORE_BIND(st, STORE_TEXT(sb->id), STORE_TEXT(sb->team_id),
                            STORE_I64(destroyed_at), STORE_JSON(rec, "{}"));
        json_decref(rec);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "keep tombstone of sandbox '%s'", sb->id);
        return 0;
}

int store_sandbox_retire(struct store *s, const char *id, int64_t destroyed_at,
                         int64_t purge_before, const struct event_rec *ev, struct cove_err **err)
{
        STORE_LOCK(s);
        struct sandbox_rec *sb = NULL;
        int r = sandbox_get_locked(s, id, &sb, err);
        if (r < 0)
                return r;
        sb->updated_at = MAX(sb->updated_at, destroyed_at);
        r = store_begin(s, err);
        if (r >= 0)
                r = purge_locked(s, purge_before, err);
        if (r >= 0)
                r = insert_locked(s, sb, destroyed_at, err);
        if (r >= 0)
                r = sandbox_delete_locked(s, id, err);
        if (r >= 0 && ev)
                r = store_event_insert_locked(s, ev, err);
        if (r >= 0)
                r = store_commit(s, err);
        else
                store_rollback(s);
        sandbox_rec_free(sb);
        return r;
}

int store_tombstone_get(struct store *s, const char *id, struct sandbox_rec **ret,
                        struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TOMBSTONE_GET,
                "SELECT id, team_id, destroyed_at, record FROM sandbox_tombstones WHERE id = ?1",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id));
        if (rc == SQLITE_DONE)
                return cove_err_set(err, ENOENT, "sandbox '%s' not found", id);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "get tombstone of sandbox '%s'", id);
        return tombstone_from_row(st, ret, err);
}

STORE_DEFINE_COLLECT(tombstone, struct sandbox_rec, sandbox_rec_free)

int store_tombstone_list(struct store *s, const char *team_id, int64_t since,
                         struct sandbox_rec ***ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                team_id ? store_stmt(s, STMT_TOMBSTONE_LIST_TEAM,
                                     "SELECT id, team_id, destroyed_at, record FROM"
                                     " sandbox_tombstones WHERE team_id = ?1 AND destroyed_at >= ?2"
                                     " ORDER BY destroyed_at DESC, id",
                                     err)
                        : store_stmt(s, STMT_TOMBSTONE_LIST,
                                     "SELECT id, team_id, destroyed_at, record FROM"
                                     " sandbox_tombstones WHERE destroyed_at >= ?2"
                                     " ORDER BY destroyed_at DESC, id",
                                     err);
        if (!st)
                return -EIO;
        /* Without a team, ?1 is bound to NULL and not used. */
        int rc = STORE_BIND(st, STORE_TEXT(team_id), STORE_I64(since));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list sandbox tombstones");
        return tombstone_collect(s, st, "list sandbox tombstones", ret, err);
}
