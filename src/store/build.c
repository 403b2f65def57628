/* SPDX-License-Identifier: MIT */
/* build.c — the build plane's tables (schema 2): builds, build logs, tags, aliases, uploaded
 * build archives and the layers builds hold; plus the template look-ups the build plane adds. */
#include "store-internal.h"

#include "lib/macro.h"

#include "lib/banned.h"

/* ---- templates ---- */

int store_template_get_by_name(struct store *s, const char *team_id, const char *name,
                               struct template_rec **ret, struct cove_err **err)
{
        cleanup_free char *id = NULL;
        {
                STORE_LOCK(s);
                cleanup_stmt sqlite3_stmt *st =
                        team_id ? store_stmt(s, STMT_TEMPLATE_BY_NAME,
                                             "SELECT id FROM templates WHERE team_id = ?1 AND name "
                                             "= ?2",
                                             err)
                                : store_stmt(s, STMT_TEMPLATE_BY_OFFICIAL_NAME,
                                             "SELECT id FROM templates WHERE team_id IS NULL AND "
                                             "name = ?2",
                                             err);
                if (!st)
                        return -EIO;
                /* ?1 is unused (and NULL) in the official-name statement */
                int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(name));
                int r = store_one_row(s, rc, "template", name, err);
                if (r < 0)
                        return r;
                id = store_col_text(st, 0);
        }
        return store_template_get(s, id, ret, err);
}

int store_template_spawned(struct store *s, const char *id, int64_t now_ms, struct cove_err **err)
{
        STORE_LOCK(s);
        return store_template_spawned_locked(s, id, now_ms, err);
}

int store_template_spawned_locked(struct store *s, const char *id, int64_t now_ms,
                                  struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(s, STMT_TEMPLATE_SPAWNED,
                                                   "UPDATE templates SET spawn_count = spawn_count "
                                                   "+ 1, last_spawned_at = ?2 WHERE id = ?1",
                                                   err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id), STORE_I64(now_ms));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "update template '%s'", id);
        return 0;
}

/* ---- builds ---- */

#define BUILD_COLS                                                                                 \
        "template_id, id, seq, status, triggered, error_message, error_step, request,"             \
        " source_kind, tags, layers, config, cpu_count, memory_mb, disk_size_mb, envd_version,"    \
        " created_by, created_at, updated_at, started_at, finished_at, log_count"

enum {
        BC_TEMPLATE,
        BC_ID,
        BC_SEQ,
        BC_STATUS,
        BC_TRIGGERED,
        BC_ERROR,
        BC_ERROR_STEP,
        BC_REQUEST,
        BC_SOURCE,
        BC_TAGS,
        BC_LAYERS,
        BC_CONFIG,
        BC_CPU,
        BC_MEM,
        BC_DISK,
        BC_ENVD,
        BC_CREATED_BY,
        BC_CREATED_AT,
        BC_UPDATED_AT,
        BC_STARTED_AT,
        BC_FINISHED_AT,
        BC_LOG_COUNT,
};

void build_rec_free(struct build_rec *b)
{
        if (!b)
                return;
        free(b->template_id);
        free(b->id);
        free(b->status);
        free(b->error_message);
        free(b->error_step);
        json_decref(b->request);
        free(b->source_kind);
        json_decref(b->tags);
        json_decref(b->layers);
        json_decref(b->config);
        free(b->envd_version);
        free(b->created_by);
        free(b);
}

STORE_DEFINE_LIST_FREE(build_list_free, struct build_rec, build_rec_free)

/* Binds b to ?1 … ?22, in BUILD_COLS' order (the BC_ enum), and steps st. */
static int build_run(struct store *s, sqlite3_stmt *st, const struct build_rec *b)
{
        return STORE_RUN(
                s, st, STORE_TEXT(b->template_id), STORE_TEXT(b->id), STORE_I64(b->seq),
                STORE_TEXT(b->status), STORE_I64(b->triggered),
                STORE_TEXT(b->error_message ? b->error_message : ""), STORE_TEXT(b->error_step),
                STORE_JSON(b->request, NULL), STORE_TEXT(b->source_kind), STORE_JSON(b->tags, "[]"),
                STORE_JSON(b->layers, "[]"), STORE_JSON(b->config, "{}"), STORE_I64(b->cpu_count),
                STORE_I64(b->memory_mb), STORE_I64(b->disk_size_mb),
                STORE_TEXT(b->envd_version ? b->envd_version : ""), STORE_TEXT(b->created_by),
                STORE_I64(b->created_at), STORE_I64(b->updated_at), STORE_I64(b->started_at),
                STORE_I64(b->finished_at), STORE_I64(b->log_count));
}

static int build_from_row(sqlite3_stmt *st, struct build_rec **ret, struct cove_err **err)
{
        struct build_rec *b = xzalloc(sizeof(*b));
        int r;

        b->template_id = store_col_text(st, BC_TEMPLATE);
        b->id = store_col_text(st, BC_ID);
        b->seq = store_col_i64(st, BC_SEQ);
        b->status = store_col_text(st, BC_STATUS);
        b->triggered = store_col_i64(st, BC_TRIGGERED) != 0;
        b->error_message = store_col_text(st, BC_ERROR);
        b->error_step = store_col_text(st, BC_ERROR_STEP);
        b->source_kind = store_col_text(st, BC_SOURCE);
        b->cpu_count = store_col_i64(st, BC_CPU);
        b->memory_mb = store_col_i64(st, BC_MEM);
        b->disk_size_mb = store_col_i64(st, BC_DISK);
        b->envd_version = store_col_text(st, BC_ENVD);
        b->created_by = store_col_text(st, BC_CREATED_BY);
        b->created_at = store_col_i64(st, BC_CREATED_AT);
        b->updated_at = store_col_i64(st, BC_UPDATED_AT);
        b->started_at = store_col_i64(st, BC_STARTED_AT);
        b->finished_at = store_col_i64(st, BC_FINISHED_AT);
        b->log_count = store_col_i64(st, BC_LOG_COUNT);
        r = store_col_json(st, BC_REQUEST, NULL, &b->request, err);
        if (r >= 0)
                r = store_col_json(st, BC_TAGS, "[]", &b->tags, err);
        if (r >= 0)
                r = store_col_json(st, BC_LAYERS, "[]", &b->layers, err);
        if (r >= 0)
                r = store_col_json(st, BC_CONFIG, "{}", &b->config, err);
        if (r < 0) {
                build_rec_free(b);
                return cove_err_wrap(err, "read build");
        }
        *ret = b;
        return 0;
}

STORE_DEFINE_COLLECT(build, struct build_rec, build_rec_free)

int store_build_insert(struct store *s, struct build_rec *b, struct cove_err **err)
{
        STORE_LOCK(s);
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_BUILD_NEXT_SEQ,
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM builds WHERE template_id = ?1", err);
                if (!st) {
                        store_rollback(s);
                        return -EIO;
                }
                int rc = STORE_RUN(s, st, STORE_TEXT(b->template_id));
                if (rc != SQLITE_ROW) {
                        store_rollback(s);
                        return store_sql_error(s, rc, err, "insert build '%s'", b->id);
                }
                b->seq = store_col_i64(st, 0);
        }
        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_BUILD_INSERT,
                        "INSERT INTO builds (" BUILD_COLS
                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                        " ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
                        err);
                if (!st) {
                        store_rollback(s);
                        return -EIO;
                }
                int rc = build_run(s, st, b);
                if (rc != SQLITE_DONE) {
                        store_rollback(s);
                        if (store_rc_is_unique(rc))
                                return cove_err_set(err, EEXIST, "build '%s' already exists",
                                                    b->id);
                        return store_sql_error(s, rc, err, "insert build '%s'", b->id);
                }
        }
        return store_commit(s, err);
}

int store_build_update(struct store *s, const struct build_rec *b, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_BUILD_UPDATE,
                "UPDATE builds SET status = ?4, triggered = ?5, error_message = ?6, error_step = "
                "?7,"
                " request = ?8, source_kind = ?9, tags = ?10, layers = ?11, config = ?12,"
                " cpu_count = ?13, memory_mb = ?14, disk_size_mb = ?15, envd_version = ?16,"
                " created_by = ?17, created_at = ?18, updated_at = ?19, started_at = ?20,"
                " finished_at = ?21"
                /* build_run() binds seq (?3) and log_count (?22) too: the seq never changes,
                 * the count only through store_build_log_append() */
                " WHERE template_id = ?1 AND id = ?2 AND ?3 = ?3 AND ?22 = ?22",
                err);
        if (!st)
                return -EIO;
        int rc = build_run(s, st, b);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "update build '%s'", b->id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "build '%s' not found", b->id);
        return 0;
}

int store_build_get(struct store *s, const char *template_id, const char *id,
                    struct build_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_BUILD_GET,
                "SELECT " BUILD_COLS " FROM builds WHERE template_id = ?1 AND id = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(id));
        int r = store_one_row(s, rc, "build", id, err);
        if (r < 0)
                return r;
        return build_from_row(st, ret, err);
}

int store_build_list(struct store *s, const char *template_id, const char *from_id, int64_t offset,
                     int64_t limit, struct build_rec ***ret, int64_t *ret_total,
                     struct cove_err **err)
{
        int64_t from_seq = INT64_MAX;

        if (from_id) {
                struct build_rec *b = NULL;
                int r = store_build_get(s, template_id, from_id, &b, err);
                if (r < 0)
                        return r;
                from_seq = b->seq;
                build_rec_free(b);
        }
        STORE_LOCK(s);
        if (ret_total) {
                cleanup_stmt sqlite3_stmt *st =
                        store_stmt(s, STMT_BUILD_COUNT,
                                   "SELECT COUNT(*) FROM builds WHERE template_id = ?1", err);
                if (!st)
                        return -EIO;
                int rc = STORE_RUN(s, st, STORE_TEXT(template_id));
                if (rc != SQLITE_ROW)
                        return store_sql_error(s, rc, err, "count builds");
                *ret_total = store_col_i64(st, 0);
        }
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_BUILD_LIST,
                           "SELECT " BUILD_COLS " FROM builds WHERE template_id = ?1 AND seq <= ?2"
                           " ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(template_id), STORE_I64(from_seq), STORE_I64(limit),
                            STORE_I64(offset));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list builds");
        return build_collect(s, st, "list builds", ret, err);
}

int store_build_list_by_status(struct store *s, const char *status, struct build_rec ***ret,
                               struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_BUILD_LIST_BY_STATUS,
                "SELECT " BUILD_COLS " FROM builds WHERE status = ?1 ORDER BY created_at, seq",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(status));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list builds");
        return build_collect(s, st, "list builds", ret, err);
}

/* ---- build logs ---- */

#define LEVEL_RANK                                                                                 \
        "(CASE level WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warn' THEN 2 ELSE 3 END)"

static int64_t level_rank(const char *level)
{
        if (!level || streq(level, "debug"))
                return 0;
        if (streq(level, "info"))
                return 1;
        if (streq(level, "warn"))
                return 2;
        return 3;
}

static void build_log_rec_free(struct build_log_rec *l)
{
        free(l->level);
        free(l->step);
        free(l->message);
        free(l);
}

STORE_DEFINE_LIST_FREE(build_log_list_free, struct build_log_rec, build_log_rec_free)

static int log_insert(struct store *s, const char *template_id, const char *build_id, int64_t seq,
                      int64_t ts, const char *level, const char *step, const char *message,
                      struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_BUILD_LOG_INSERT,
                "INSERT INTO build_logs (template_id, build_id, seq, ts, level, step, message)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(build_id), STORE_I64(seq),
                           STORE_I64(ts), STORE_TEXT(level), STORE_TEXT(step), STORE_TEXT(message));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "append build log");
        return 0;
}

int store_build_log_append(struct store *s, const char *template_id, const char *build_id,
                           int64_t ts, const char *level, const char *step, const char *message,
                           struct cove_err **err)
{
        STORE_LOCK(s);
        int64_t count;
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_BUILD_LOG_COUNT,
                        "SELECT log_count FROM builds WHERE template_id = ?1 AND id = ?2", err);
                if (!st) {
                        store_rollback(s);
                        return -EIO;
                }
                int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(build_id));
                if (rc != SQLITE_ROW) {
                        store_rollback(s);
                        if (rc == SQLITE_DONE)
                                return cove_err_set(err, ENOENT, "build '%s' not found", build_id);
                        return store_sql_error(s, rc, err, "append build log");
                }
                count = store_col_i64(st, 0);
        }
        if (count >= BUILD_LOG_MAX) {
                store_rollback(s);
                return 0; /* dropped, as the last entry says */
        }
        if (count == BUILD_LOG_MAX - 1)
                r = log_insert(s, template_id, build_id, count, ts, "warn", step,
                               "build log limit reached (50000 entries): further output is dropped",
                               err);
        else
                r = log_insert(s, template_id, build_id, count, ts, level, step, message, err);
        if (r >= 0) {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_BUILD_LOG_SET_COUNT,
                        "UPDATE builds SET log_count = ?3 WHERE template_id = ?1 AND id = ?2", err);
                int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(build_id),
                                   STORE_I64(count + 1));
                if (rc != SQLITE_DONE)
                        r = st ? store_sql_error(s, rc, err, "append build log") : -EIO;
        }
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        return store_commit(s, err);
}

static int build_log_from_row(sqlite3_stmt *st, struct build_log_rec **ret, struct cove_err **err)
{
        struct build_log_rec *l = xzalloc(sizeof(*l));
        (void)err;
        l->seq = store_col_i64(st, 0);
        l->ts = store_col_i64(st, 1);
        l->level = store_col_text(st, 2);
        l->step = store_col_text(st, 3);
        l->message = store_col_text(st, 4);
        *ret = l;
        return 0;
}

STORE_DEFINE_COLLECT(build_log, struct build_log_rec, build_log_rec_free)

int store_build_log_list(struct store *s, const char *template_id, const char *build_id,
                         const char *min_level, int64_t cursor, bool backward, int64_t skip,
                         int64_t limit, struct build_log_rec ***ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                backward ? store_stmt(s, STMT_BUILD_LOG_BACKWARD,
                                      "SELECT seq, ts, level, step, message FROM build_logs"
                                      " WHERE template_id = ?1 AND build_id = ?2 AND seq <= ?3"
                                      " AND " LEVEL_RANK
                                      " >= ?4 ORDER BY seq DESC LIMIT ?5 OFFSET ?6",
                                      err)
                         : store_stmt(s, STMT_BUILD_LOG_FORWARD,
                                      "SELECT seq, ts, level, step, message FROM build_logs"
                                      " WHERE template_id = ?1 AND build_id = ?2 AND seq >= ?3"
                                      " AND " LEVEL_RANK " >= ?4 ORDER BY seq LIMIT ?5 OFFSET ?6",
                                      err);
        if (!st)
                return -EIO;
        if (cursor < 0)
                cursor = backward ? INT64_MAX : 0;
        int rc = STORE_BIND(st, STORE_TEXT(template_id), STORE_TEXT(build_id), STORE_I64(cursor),
                            STORE_I64(level_rank(min_level)), STORE_I64(limit), STORE_I64(skip));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list build logs");
        return build_log_collect(s, st, "list build logs", ret, err);
}

/* ---- tags ---- */

static void tag_rec_free(struct tag_rec *t)
{
        free(t->tag);
        free(t->build_id);
        free(t);
}

STORE_DEFINE_LIST_FREE(tag_list_free, struct tag_rec, tag_rec_free)

int store_tag_set(struct store *s, const char *template_id, const char *tag, const char *build_id,
                  int64_t now_ms, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TAG_SET,
                "INSERT INTO template_tags (template_id, tag, build_id, created_at)"
                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (template_id, tag)"
                " DO UPDATE SET build_id = excluded.build_id, created_at = excluded.created_at",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(tag), STORE_TEXT(build_id),
                           STORE_I64(now_ms));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "set tag '%s'", tag);
        return 0;
}

int store_tag_delete(struct store *s, const char *template_id, const char *tag,
                     struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TAG_DELETE,
                           "DELETE FROM template_tags WHERE template_id = ?1 AND tag = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(tag));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "delete tag '%s'", tag);
        return 0;
}

int store_tag_get(struct store *s, const char *template_id, const char *tag, char **ret_build_id,
                  struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TAG_GET,
                "SELECT build_id FROM template_tags WHERE template_id = ?1 AND tag = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(tag));
        int r = store_one_row(s, rc, "tag", tag, err);
        if (r < 0)
                return r;
        *ret_build_id = store_col_text(st, 0);
        return 0;
}

static int tag_from_row(sqlite3_stmt *st, struct tag_rec **ret, struct cove_err **err)
{
        struct tag_rec *t = xzalloc(sizeof(*t));
        (void)err;
        t->tag = store_col_text(st, 0);
        t->build_id = store_col_text(st, 1);
        t->created_at = store_col_i64(st, 2);
        *ret = t;
        return 0;
}

STORE_DEFINE_COLLECT(tag, struct tag_rec, tag_rec_free)

int store_tag_list(struct store *s, const char *template_id, struct tag_rec ***ret,
                   struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TAG_LIST,
                "SELECT tag, build_id, created_at FROM template_tags WHERE template_id = ?1"
                " ORDER BY tag",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(template_id));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list tags");
        return tag_collect(s, st, "list tags", ret, err);
}

/* ---- aliases ---- */

int store_alias_insert(struct store *s, const char *alias, const char *template_id, int64_t now_ms,
                       struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_ALIAS_INSERT,
                "INSERT INTO template_aliases (alias, template_id, created_at) VALUES (?1, ?2, ?3)",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(alias), STORE_TEXT(template_id), STORE_I64(now_ms));
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "alias '%s' already exists", alias);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "add alias '%s'", alias);
        return 0;
}

int store_alias_get(struct store *s, const char *alias, char **ret_template_id,
                    struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_ALIAS_GET,
                           "SELECT template_id FROM template_aliases WHERE alias = ?1", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(alias));
        int r = store_one_row(s, rc, "alias", alias, err);
        if (r < 0)
                return r;
        *ret_template_id = store_col_text(st, 0);
        return 0;
}

static int string_from_row(sqlite3_stmt *st, void **ret, struct cove_err **err)
{
        (void)err;
        *ret = store_col_text(st, 0);
        return 0;
}

/* One text column per row into a NULL-terminated strv. */
static int collect_strings(struct store *s, sqlite3_stmt *st, const char *what, char ***ret,
                           struct cove_err **err)
{
        void **v = NULL;
        int r = store_collect_rows(s, st, string_from_row, free, what, &v, err);
        if (r < 0)
                return r;
        *ret = (char **)v;
        return 0;
}

int store_alias_list(struct store *s, const char *template_id, char ***ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_ALIAS_LIST,
                "SELECT alias FROM template_aliases WHERE template_id = ?1 ORDER BY alias", err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(template_id));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list aliases");
        return collect_strings(s, st, "list aliases", ret, err);
}

/* ---- uploaded build archives ---- */

int store_build_file_put(struct store *s, const char *team_id, const char *hash, int64_t size,
                         int64_t now_ms, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_FILE_PUT,
                "INSERT INTO build_files (team_id, hash, size, created_at, last_used_at)"
                " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (team_id, hash)"
                " DO UPDATE SET size = excluded.size, last_used_at = excluded.last_used_at",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(hash), STORE_I64(size),
                           STORE_I64(now_ms));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "record build archive");
        return 0;
}

int store_build_file_has(struct store *s, const char *team_id, const char *hash,
                         struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_FILE_HAS,
                           "SELECT 1 FROM build_files WHERE team_id = ?1 AND hash = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(hash));
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return store_sql_error(s, rc, err, "look up build archive");
}

int store_build_file_touch(struct store *s, const char *team_id, const char *hash, int64_t now_ms,
                           struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_FILE_TOUCH,
                "UPDATE build_files SET last_used_at = ?3 WHERE team_id = ?1 AND hash = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(hash), STORE_I64(now_ms));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "touch build archive");
        return 0;
}

int store_build_file_list_unused(struct store *s, int64_t before_ms, char ***ret,
                                 struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_FILE_UNUSED,
                           "SELECT team_id || '/' || hash FROM build_files WHERE last_used_at < ?1"
                           " ORDER BY last_used_at",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_I64(before_ms));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list build archives");
        return collect_strings(s, st, "list build archives", ret, err);
}

int store_build_file_delete(struct store *s, const char *team_id, const char *hash,
                            struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_FILE_DELETE,
                           "DELETE FROM build_files WHERE team_id = ?1 AND hash = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(hash));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "delete build archive");
        return 0;
}

/* ---- layers held by builds ---- */

int store_build_layers_add(struct store *s, const char *template_id, const char *build_id,
                           char *const *keys, struct cove_err **err)
{
        STORE_LOCK(s);
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        for (size_t i = 0; keys && keys[i]; i++) {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_BUILD_LAYER_ADD,
                        "INSERT OR IGNORE INTO build_layers (template_id, build_id, layer_key)"
                        " VALUES (?1, ?2, ?3)",
                        err);
                if (!st) {
                        store_rollback(s);
                        return -EIO;
                }
                int rc = STORE_RUN(s, st, STORE_TEXT(template_id), STORE_TEXT(build_id),
                                   STORE_TEXT(keys[i]));
                if (rc != SQLITE_DONE) {
                        store_rollback(s);
                        return store_sql_error(s, rc, err, "record layers of build '%s'", build_id);
                }
        }
        return store_commit(s, err);
}

int store_layer_keys_in_use(struct store *s, char ***ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_LAYER_KEYS,
                           "SELECT DISTINCT layer_key FROM build_layers ORDER BY layer_key", err);
        if (!st)
                return -EIO;
        return collect_strings(s, st, "list layers in use", ret, err);
}

int store_build_count_active(struct store *s, const char *team_id, const char *key_id, int64_t *ret,
                             struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                team_id ? store_stmt(s, STMT_BUILD_ACTIVE_TEAM,
                                     "SELECT COUNT(*) FROM builds b JOIN templates t"
                                     " ON t.id = b.template_id WHERE t.team_id = ?1"
                                     " AND b.triggered = 1 AND b.status IN ('waiting', 'building')",
                                     err)
                        : store_stmt(s, STMT_BUILD_ACTIVE_KEY,
                                     "SELECT COUNT(*) FROM builds WHERE created_by = ?1"
                                     " AND triggered = 1 AND status IN ('waiting', 'building')",
                                     err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id ? team_id : key_id));
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "count builds in progress");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}
