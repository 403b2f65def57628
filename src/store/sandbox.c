/* SPDX-License-Identifier: MIT */
/* sandbox.c — the sandboxes table. */
#include "store-internal.h"

#include "lib/macro.h"
#include "lib/timeutil.h"

#include "lib/banned.h"

/* Column order of every SELECT. INSERT/UPDATE bind parameter ?(i + 1) for column i, except
 * created_seq (SB_CREATED_SEQ), which the store assigns and never rewrites. */
#define SANDBOX_COLS                                                                               \
        "id, team_id, template_id, alias, status, access_token, created_seq, started_at, end_at,"  \
        " activated_at, stopped_at, paused_remaining_ms, cpu_count, memory_mb, disk_size_mb,"      \
        " auto_pause, auto_resume, metadata, env_vars, network, timeline, diagnostic,"             \
        " volume_mounts, workdir, init_pid, init_starttime, exec_n, heartbeat_status,"             \
        " heartbeat_at, deadline_at, size, timeout_ms, idle_timeout_ms, last_active_at, egress,"   \
        " updated_at, key_id, e2b_user"

enum {
        SB_ID,
        SB_TEAM_ID,
        SB_TEMPLATE_ID,
        SB_ALIAS,
        SB_STATUS,
        SB_ACCESS_TOKEN,
        SB_CREATED_SEQ,
        SB_STARTED_AT,
        SB_END_AT,
        SB_ACTIVATED_AT,
        SB_STOPPED_AT,
        SB_PAUSED_REMAINING_MS,
        SB_CPU,
        SB_MEM,
        SB_DISK,
        SB_AUTO_PAUSE,
        SB_AUTO_RESUME,
        SB_METADATA,
        SB_ENV_VARS,
        SB_NETWORK,
        SB_TIMELINE,
        SB_DIAGNOSTIC,
        SB_VOLUME_MOUNTS,
        SB_WORKDIR,
        SB_INIT_PID,
        SB_INIT_STARTTIME,
        SB_EXEC_N,
        SB_HEARTBEAT_STATUS,
        SB_HEARTBEAT_AT,
        SB_DEADLINE_AT,
        SB_SIZE,
        SB_TIMEOUT_MS,
        SB_IDLE_TIMEOUT_MS,
        SB_LAST_ACTIVE_AT,
        SB_EGRESS,
        SB_UPDATED_AT,
        SB_KEY_ID,
        SB_E2B_USER,
        _SB_MAX,
};

#define SANDBOX_SELECT "SELECT " SANDBOX_COLS " FROM sandboxes"

/* A log entry queued on a record (sandbox_rec_log()). */
struct sandbox_log_pending {
        struct sandbox_log_pending *next;
        char *level, *source, *message;
};

void sandbox_rec_log(struct sandbox_rec *sb, const char *level, const char *source,
                     const char *message)
{
        struct sandbox_log_pending *l = xzalloc(sizeof(*l)), **tail = &sb->logs;
        l->level = xstrdup(level ? level : "info");
        l->source = xstrdup(source ? source : "system");
        l->message = xstrdup(message ? message : "");
        while (*tail)
                tail = &(*tail)->next;
        *tail = l;
}

/* Drops what a write of sb would have carried besides the row. */
static void pending_free(struct sandbox_rec *sb)
{
        event_rec_free(sb->event);
        sb->event = NULL;
        while (sb->logs) {
                struct sandbox_log_pending *l = sb->logs;
                sb->logs = l->next;
                free(l->level);
                free(l->source);
                free(l->message);
                free(l);
        }
        free(sb->spawned_template_id);
        sb->spawned_template_id = NULL;
}

static bool pending_any(const struct sandbox_rec *sb)
{
        return sb->event || sb->logs || sb->spawned_template_id;
}

/* Writes sb's pending event, log entries and template spawn. Inside a transaction. */
static int pending_write_locked(struct store *s, const struct sandbox_rec *sb,
                                struct cove_err **err)
{
        int r = 0;
        if (sb->event)
                r = store_event_insert_locked(s, sb->event, err);
        for (const struct sandbox_log_pending *l = sb->logs; r >= 0 && l; l = l->next)
                r = store_log_append_locked(s, sb->id, l->level, l->source, l->message, err);
        if (r >= 0 && sb->spawned_template_id)
                r = store_template_spawned_locked(s, sb->spawned_template_id, time_now_ms(), err);
        return r;
}

void sandbox_rec_free(struct sandbox_rec *sb)
{
        if (!sb)
                return;
        free(sb->id);
        free(sb->team_id);
        free(sb->template_id);
        free(sb->alias);
        free(sb->access_token);
        json_decref(sb->metadata);
        json_decref(sb->env_vars);
        json_decref(sb->network);
        json_decref(sb->timeline);
        json_decref(sb->diagnostic);
        json_decref(sb->volume_mounts);
        free(sb->workdir);
        free(sb->heartbeat_status);
        free(sb->size);
        json_decref(sb->egress);
        free(sb->e2b_user);
        free(sb->key_id);
        pending_free(sb);
        free(sb);
}

static char *dup_or_null(const char *p)
{
        return p ? xstrdup(p) : NULL;
}

static json_t *json_dup_or_null(json_t *j)
{
        json_t *c = j ? json_deep_copy(j) : NULL;
        if (j && !c)
                abort(); /* out of memory */
        return c;
}

struct sandbox_rec *sandbox_rec_dup(const struct sandbox_rec *sb)
{
        struct sandbox_rec *c = xmalloc(sizeof(*c));

        *c = *sb;
        c->id = dup_or_null(sb->id);
        c->team_id = dup_or_null(sb->team_id);
        c->template_id = dup_or_null(sb->template_id);
        c->alias = dup_or_null(sb->alias);
        c->access_token = dup_or_null(sb->access_token);
        c->metadata = json_dup_or_null(sb->metadata);
        c->env_vars = json_dup_or_null(sb->env_vars);
        c->network = json_dup_or_null(sb->network);
        c->timeline = json_dup_or_null(sb->timeline);
        c->diagnostic = json_dup_or_null(sb->diagnostic);
        c->volume_mounts = json_dup_or_null(sb->volume_mounts);
        c->workdir = dup_or_null(sb->workdir);
        c->heartbeat_status = dup_or_null(sb->heartbeat_status);
        c->size = dup_or_null(sb->size);
        c->egress = json_dup_or_null(sb->egress);
        c->key_id = dup_or_null(sb->key_id);
        c->e2b_user = dup_or_null(sb->e2b_user);
        c->event = NULL;
        c->logs = NULL;
        c->spawned_template_id = NULL;
        return c;
}

void sandbox_written_locked(struct store *s, const char *id)
{
        s->sandbox_writes++;
        if (s->sandbox_hook)
                s->sandbox_hook(s->sandbox_hook_ud, id, s->sandbox_writes);
}

void sandbox_list_free(struct sandbox_rec **v)
{
        if (!v)
                return;
        for (struct sandbox_rec **p = v; *p; p++)
                sandbox_rec_free(*p);
        free(v);
}

static int sandbox_bind(sqlite3_stmt *st, const struct sandbox_rec *sb)
{
        int rc = store_bind_text(st, SB_ID + 1, sb->id);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_TEAM_ID + 1, sb->team_id);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_TEMPLATE_ID + 1, sb->template_id);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_ALIAS + 1, sb->alias);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_STATUS + 1, sandbox_state_to_string(sb->state));
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_ACCESS_TOKEN + 1, sb->access_token);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_STARTED_AT + 1, sb->started_at);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_END_AT + 1, sb->end_at);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_ACTIVATED_AT + 1, sb->activated_at);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_STOPPED_AT + 1, sb->stopped_at);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_PAUSED_REMAINING_MS + 1, sb->paused_remaining_ms);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_CPU + 1, sb->cpu_count);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_MEM + 1, sb->memory_mb);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_DISK + 1, sb->disk_size_mb);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_AUTO_PAUSE + 1, sb->auto_pause);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_AUTO_RESUME + 1, sb->auto_resume);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, SB_METADATA + 1, sb->metadata, "{}");
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, SB_ENV_VARS + 1, sb->env_vars, "{}");
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, SB_NETWORK + 1, sb->network, STORE_NETWORK_DEFAULT);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, SB_TIMELINE + 1, sb->timeline, "[]");
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, SB_DIAGNOSTIC + 1, sb->diagnostic, NULL);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, SB_VOLUME_MOUNTS + 1, sb->volume_mounts, "[]");
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_WORKDIR + 1, sb->workdir);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_INIT_PID + 1, sb->init_pid);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_INIT_STARTTIME + 1, sb->init_starttime);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_EXEC_N + 1, sb->exec_n);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_HEARTBEAT_STATUS + 1, sb->heartbeat_status);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_HEARTBEAT_AT + 1, sb->heartbeat_at);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_DEADLINE_AT + 1, sb->deadline_at);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_SIZE + 1, sb->size);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_TIMEOUT_MS + 1, sb->timeout_ms);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_IDLE_TIMEOUT_MS + 1, sb->idle_timeout_ms);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_LAST_ACTIVE_AT + 1, sb->last_active_at);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, SB_EGRESS + 1, sb->egress, NULL);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, SB_UPDATED_AT + 1, sb->updated_at);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_KEY_ID + 1, sb->key_id);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, SB_E2B_USER + 1, sb->e2b_user);
        return rc;
}

static int sandbox_from_row(sqlite3_stmt *st, struct sandbox_rec **ret, struct cove_err **err)
{
        struct sandbox_rec *sb = xzalloc(sizeof(*sb));
        int r;

        sb->id = store_col_text(st, SB_ID);
        sb->team_id = store_col_text(st, SB_TEAM_ID);
        sb->template_id = store_col_text(st, SB_TEMPLATE_ID);
        sb->alias = store_col_text(st, SB_ALIAS);
        cleanup_free char *state = store_col_text(st, SB_STATUS);
        sb->state = sandbox_state_from_string(state);
        sb->access_token = store_col_text(st, SB_ACCESS_TOKEN);
        sb->created_seq = store_col_i64(st, SB_CREATED_SEQ);
        sb->started_at = store_col_i64(st, SB_STARTED_AT);
        sb->end_at = store_col_i64(st, SB_END_AT);
        sb->activated_at = store_col_i64(st, SB_ACTIVATED_AT);
        sb->stopped_at = store_col_i64(st, SB_STOPPED_AT);
        sb->paused_remaining_ms = store_col_i64(st, SB_PAUSED_REMAINING_MS);
        sb->cpu_count = store_col_i64(st, SB_CPU);
        sb->memory_mb = store_col_i64(st, SB_MEM);
        sb->disk_size_mb = store_col_i64(st, SB_DISK);
        sb->auto_pause = store_col_i64(st, SB_AUTO_PAUSE) != 0;
        sb->auto_resume = store_col_i64(st, SB_AUTO_RESUME) != 0;
        sb->workdir = store_col_text(st, SB_WORKDIR);
        sb->init_pid = store_col_i64(st, SB_INIT_PID);
        sb->init_starttime = store_col_i64(st, SB_INIT_STARTTIME);
        sb->exec_n = store_col_i64(st, SB_EXEC_N);
        sb->heartbeat_status = store_col_text(st, SB_HEARTBEAT_STATUS);
        sb->heartbeat_at = store_col_i64(st, SB_HEARTBEAT_AT);
        sb->deadline_at = store_col_i64(st, SB_DEADLINE_AT);
        sb->size = store_col_text(st, SB_SIZE);
        sb->timeout_ms = store_col_i64(st, SB_TIMEOUT_MS);
        sb->idle_timeout_ms = store_col_i64(st, SB_IDLE_TIMEOUT_MS);
        sb->last_active_at = store_col_i64(st, SB_LAST_ACTIVE_AT);
        sb->updated_at = store_col_i64(st, SB_UPDATED_AT);
        sb->key_id = store_col_text(st, SB_KEY_ID);
        sb->e2b_user = store_col_text(st, SB_E2B_USER);

        r = sb->state >= 0 ? 0 : cove_err_set(err, EIO, "unknown state '%s'", state ? state : "");
        if (r >= 0)
                r = store_col_json(st, SB_METADATA, "{}", &sb->metadata, err);
        if (r >= 0)
                r = store_col_json(st, SB_ENV_VARS, "{}", &sb->env_vars, err);
        if (r >= 0)
                r = store_col_json(st, SB_NETWORK, STORE_NETWORK_DEFAULT, &sb->network, err);
        if (r >= 0)
                r = store_col_json(st, SB_TIMELINE, "[]", &sb->timeline, err);
        if (r >= 0)
                r = store_col_json(st, SB_DIAGNOSTIC, NULL, &sb->diagnostic, err);
        if (r >= 0)
                r = store_col_json(st, SB_VOLUME_MOUNTS, "[]", &sb->volume_mounts, err);
        if (r >= 0)
                r = store_col_json(st, SB_EGRESS, NULL, &sb->egress, err);
        if (r >= 0 && sb->egress && json_is_null(sb->egress)) {
                json_decref(sb->egress);
                sb->egress = NULL;
        }
        if (r >= 0 && sb->diagnostic && json_is_null(sb->diagnostic)) {
                json_decref(sb->diagnostic);
                sb->diagnostic = NULL;
        }
        if (r < 0) {
                r = cove_err_wrap(err, "read sandbox '%s'", sb->id ? sb->id : "?");
                sandbox_rec_free(sb);
                return r;
        }
        *ret = sb;
        return 0;
}

/* A JSON column's value as a read of the row returns it: NULL stands for the default. */
static void json_default(json_t **v, const char *dflt)
{
        if (!*v && !(*v = json_loads(dflt, JSON_DECODE_ANY, NULL)))
                abort(); /* our own constant, so out of memory only */
}

static int insert_locked(struct store *s, struct sandbox_rec *sb, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_SANDBOX_INSERT,
                "INSERT INTO sandboxes (id, team_id, template_id, alias, status, access_token,"
                " started_at, end_at, activated_at, stopped_at, paused_remaining_ms, cpu_count,"
                " memory_mb, disk_size_mb, auto_pause, auto_resume, metadata, env_vars, network,"
                " timeline, diagnostic, volume_mounts, workdir, init_pid, init_starttime, exec_n,"
                " heartbeat_status, heartbeat_at, deadline_at, size, timeout_ms, idle_timeout_ms,"
                " last_active_at, egress, updated_at, key_id, e2b_user) VALUES (?1, ?2, ?3, ?4,"
                " ?5, ?6, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,"
                " ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38)",
                err);
        if (!st)
                return -EIO;
        int rc = sandbox_bind(st, sb);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "sandbox '%s' already exists", sb->id);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "insert sandbox '%s'", sb->id);
        sb->created_seq = sqlite3_last_insert_rowid(s->db);
        /* sb now reads as store_sandbox_get() would return it */
        json_default(&sb->metadata, "{}");
        json_default(&sb->env_vars, "{}");
        json_default(&sb->network, STORE_NETWORK_DEFAULT);
        json_default(&sb->timeline, "[]");
        json_default(&sb->volume_mounts, "[]");
        sandbox_written_locked(s, sb->id);
        return 0;
}

/* Inserts the row and its pending writes (event, log entries, template spawn) in one
 * transaction; they are freed once written. */
int store_sandbox_insert_locked(struct store *s, struct sandbox_rec *sb, struct cove_err **err)
{
        if (!pending_any(sb))
                return insert_locked(s, sb, err);
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        r = insert_locked(s, sb, err);
        if (r >= 0)
                r = pending_write_locked(s, sb, err);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        r = store_commit(s, err);
        if (r >= 0)
                pending_free(sb);
        return r;
}

int store_sandbox_insert(struct store *s, struct sandbox_rec *sb, struct cove_err **err)
{
        STORE_LOCK(s);
        return store_sandbox_insert_locked(s, sb, err);
}

int store_sandbox_insert_capped(struct store *s, struct sandbox_rec *sb, int64_t max_live,
                                struct cove_err **err)
{
        STORE_LOCK(s);
        if (max_live > 0) {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_SANDBOX_COUNT_LIVE,
                        "SELECT COUNT(*) FROM sandboxes WHERE status IN ('starting', 'running')",
                        err);
                if (!st)
                        return -EIO;
                int rc = store_step(s, st);
                if (rc != SQLITE_ROW)
                        return store_sql_error(s, rc, err, "count live sandboxes");
                if (sqlite3_column_int64(st, 0) >= max_live)
                        return cove_err_set(err, EUSERS, "%lld sandboxes are live (capacity %lld)",
                                            (long long)sqlite3_column_int64(st, 0),
                                            (long long)max_live);
        }
        return store_sandbox_insert_locked(s, sb, err);
}

static int update_locked(struct store *s, const struct sandbox_rec *sb, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_SANDBOX_UPDATE,
                "UPDATE sandboxes SET team_id = ?2, template_id = ?3, alias = ?4, status = ?5,"
                " access_token = ?6, started_at = ?8, end_at = ?9, activated_at = ?10,"
                " stopped_at = ?11, paused_remaining_ms = ?12, cpu_count = ?13, memory_mb = ?14,"
                " disk_size_mb = ?15, auto_pause = ?16, auto_resume = ?17, metadata = ?18,"
                " env_vars = ?19, network = ?20, timeline = ?21, diagnostic = ?22,"
                " volume_mounts = ?23, workdir = ?24, init_pid = ?25, init_starttime = ?26,"
                " exec_n = ?27, heartbeat_status = ?28, heartbeat_at = ?29, deadline_at = ?30,"
                " size = ?31, timeout_ms = ?32, idle_timeout_ms = ?33, last_active_at = ?34,"
                " egress = ?35, updated_at = ?36, key_id = ?37, e2b_user = ?38 WHERE id = ?1",
                err);
        if (!st)
                return -EIO;
        int rc = sandbox_bind(st, sb);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "update sandbox '%s'", sb->id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "sandbox '%s' not found", sb->id);
        sandbox_written_locked(s, sb->id);
        return 0;
}

int store_sandbox_update(struct store *s, const struct sandbox_rec *sb, struct cove_err **err)
{
        STORE_LOCK(s);
        return update_locked(s, sb, err);
}

int sandbox_get_locked(struct store *s, const char *id, struct sandbox_rec **ret,
                       struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_SANDBOX_GET, SANDBOX_SELECT " WHERE id = ?", err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, id);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc == SQLITE_DONE)
                return cove_err_set(err, ENOENT, "sandbox '%s' not found", id);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "get sandbox '%s'", id);
        int r = sandbox_from_row(st, ret, err);
        if (r >= 0)
                (*ret)->read_seq = s->sandbox_writes;
        return r;
}

int store_sandbox_get(struct store *s, const char *id, struct sandbox_rec **ret,
                      struct cove_err **err)
{
        STORE_LOCK(s);
        return sandbox_get_locked(s, id, ret, err);
}

int store_sandbox_modify(struct store *s, const char *id, store_sandbox_modify_fn fn, void *ud,
                         struct sandbox_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        struct sandbox_rec *sb = NULL;
        int r = sandbox_get_locked(s, id, &sb, err);
        if (r < 0)
                return r;
        r = fn(sb, ud, err);
        if (r > 0 && pending_any(sb)) {
                /* The change, its lifecycle event and log entries are one transaction: the
                 * event is durable exactly when the transition is. */
                r = store_begin(s, err);
                if (r >= 0)
                        r = update_locked(s, sb, err);
                if (r >= 0)
                        r = pending_write_locked(s, sb, err);
                if (r >= 0)
                        r = store_commit(s, err);
                else
                        store_rollback(s);
        } else if (r > 0) {
                r = update_locked(s, sb, err);
        }
        pending_free(sb);
        if (r < 0 || !ret) {
                sandbox_rec_free(sb);
                return r < 0 ? r : 0;
        }
        *ret = sb;
        return 0;
}

int store_sandbox_delete(struct store *s, const char *id, struct cove_err **err)
{
        STORE_LOCK(s);
        return sandbox_delete_locked(s, id, err);
}

int sandbox_delete_locked(struct store *s, const char *id, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_SANDBOX_DELETE, "DELETE FROM sandboxes WHERE id = ?", err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, id);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "delete sandbox '%s'", id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "sandbox '%s' not found", id);
        sandbox_written_locked(s, id);
        return 0;
}

int store_sandbox_delete_event(struct store *s, const char *id, const struct event_rec *ev,
                               struct cove_err **err)
{
        STORE_LOCK(s);
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_SANDBOX_DELETE, "DELETE FROM sandboxes WHERE id = ?", err);
                if (!st) {
                        store_rollback(s);
                        return -EIO;
                }
                int rc = store_bind_text(st, 1, id);
                if (rc == SQLITE_OK)
                        rc = store_step(s, st);
                if (rc != SQLITE_DONE)
                        r = store_sql_error(s, rc, err, "delete sandbox '%s'", id);
                else if (sqlite3_changes(s->db) == 0)
                        r = cove_err_set(err, ENOENT, "sandbox '%s' not found", id);
                else
                        sandbox_written_locked(s, id);
        }
        if (r >= 0 && ev)
                r = store_event_insert_locked(s, ev, err);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        return store_commit(s, err);
}

/* Adapters for store_collect_rows(). */
static int sandbox_row_any(sqlite3_stmt *st, void **ret, struct cove_err **err)
{
        struct sandbox_rec *rec = NULL;
        int r = sandbox_from_row(st, &rec, err);
        if (r >= 0)
                *ret = rec;
        return r;
}

static void sandbox_free_any(void *p)
{
        sandbox_rec_free(p);
}

int store_sandbox_list(struct store *s, const char *team_id, struct sandbox_rec ***ret,
                       struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                team_id ? store_stmt(s, STMT_SANDBOX_LIST_TEAM,
                                     SANDBOX_SELECT " WHERE team_id = ?1 ORDER BY started_at, id",
                                     err)
                        : store_stmt(s, STMT_SANDBOX_LIST,
                                     SANDBOX_SELECT " ORDER BY started_at, id", err);
        if (!st)
                return -EIO;
        int rc = team_id ? store_bind_text(st, 1, team_id) : SQLITE_OK;
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list sandboxes");

        void **v = NULL;
        int r = store_collect_rows(s, st, sandbox_row_any, sandbox_free_any, "list sandboxes", &v,
                                   err);
        if (r < 0)
                return r;
        *ret = (struct sandbox_rec **)v;
        return 0;
}

int store_sandbox_count_states(struct store *s, int64_t counts[_SANDBOX_STATE_MAX],
                               struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_SANDBOX_COUNT_STATES,
                           "SELECT status, COUNT(*) FROM sandboxes GROUP BY status", err);
        if (!st)
                return -EIO;
        for (int i = 0; i < _SANDBOX_STATE_MAX; i++)
                counts[i] = 0;
        int rc;
        while ((rc = store_step(s, st)) == SQLITE_ROW) {
                enum sandbox_state state =
                        sandbox_state_from_string((const char *)sqlite3_column_text(st, 0));
                if (state >= 0)
                        counts[state] = sqlite3_column_int64(st, 1);
        }
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "count sandboxes");
        return 0;
}

int store_sandbox_next_deadline(struct store *s, int64_t *ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_SANDBOX_NEXT_DEADLINE,
                           "SELECT MIN(deadline_at) FROM sandboxes WHERE deadline_at > 0", err);
        if (!st)
                return -EIO;
        int rc = store_step(s, st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "next sandbox deadline");
        *ret = sqlite3_column_int64(st, 0); /* NULL (no row matched) reads as 0 */
        return 0;
}

int store_sandbox_due(struct store *s, int64_t now, size_t max, char ***ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_SANDBOX_DUE,
                           "SELECT id FROM sandboxes WHERE deadline_at > 0 AND deadline_at <= ?1"
                           " ORDER BY deadline_at LIMIT ?2",
                           err);
        if (!st)
                return -EIO;
        int rc = store_bind_i64(st, 1, now);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, 2, (int64_t)MIN(max, (size_t)INT32_MAX));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "due sandboxes");
        char **ids = xzalloc((max + 1) * sizeof(char *));
        size_t n = 0;
        while (n < max && (rc = store_step(s, st)) == SQLITE_ROW)
                ids[n++] = store_col_text(st, 0);
        if (n < max && rc != SQLITE_DONE) {
                strv_free(ids);
                return store_sql_error(s, rc, err, "due sandboxes");
        }
        *ret = ids;
        return 0;
}
