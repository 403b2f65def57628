/* SPDX-License-Identifier: MIT */
/* log.c — per-sandbox log entries (control-plane.md §8): numbered 1, 2, 3 …, the newest
 * store->log_max (10,000 unless the operator says otherwise) kept. */
#include "store-internal.h"

#include "lib/macro.h"
#include "lib/timeutil.h"

#include "lib/banned.h"

static void log_rec_free(struct log_rec *l)
{
        if (!l)
                return;
        free(l->level);
        free(l->message);
        json_decref(l->fields);
        free(l);
}

STORE_DEFINE_LIST_FREE(log_list_free, struct log_rec, log_rec_free)

/* A row of "seq, ts, level, source, message"; fields is NULL when out of memory. */
static struct log_rec *log_from_row(sqlite3_stmt *st)
{
        struct log_rec *l = xzalloc(sizeof(*l));
        l->seq = store_col_i64(st, 0);
        l->ts = store_col_i64(st, 1);
        l->level = store_col_text(st, 2);
        l->message = store_col_text(st, 4);
        const char *src = (const char *)sqlite3_column_text(st, 3);
        l->fields = json_pack("{s:s}", "source", src ? src : "");
        if (!l->level)
                l->level = xstrdup("info");
        if (!l->message)
                l->message = xstrdup("");
        return l;
}

/* Runs inside the caller's transaction. */
int store_log_append_locked(struct store *s, const char *sandbox_id, const char *level,
                            const char *source, const char *message, struct cove_err **err)
{
        int64_t seq;
        int rc;

        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_LOG_MAX_SEQ,
                        "SELECT coalesce(max(seq), 0) FROM sandbox_logs WHERE sandbox_id = ?", err);
                if (!st)
                        return -EIO;
                rc = STORE_RUN(s, st, STORE_TEXT(sandbox_id));
                if (rc != SQLITE_ROW)
                        return store_sql_error(s, rc, err, "read log of sandbox '%s'", sandbox_id);
                seq = store_col_i64(st, 0) + 1;
        }
        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_LOG_INSERT,
                        "INSERT INTO sandbox_logs (sandbox_id, seq, ts, level, source, message)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        err);
                if (!st)
                        return -EIO;
                rc = STORE_RUN(s, st, STORE_TEXT(sandbox_id), STORE_I64(seq),
                               STORE_I64(time_now_ms()), STORE_TEXT(level), STORE_TEXT(source),
                               STORE_TEXT(message));
                if (rc != SQLITE_DONE)
                        return store_sql_error(s, rc, err, "append to log of sandbox '%s'",
                                               sandbox_id);
        }
        if (seq > s->log_max) {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_LOG_TRIM,
                        "DELETE FROM sandbox_logs WHERE sandbox_id = ? AND seq <= ?", err);
                if (!st)
                        return -EIO;
                rc = STORE_RUN(s, st, STORE_TEXT(sandbox_id), STORE_I64(seq - s->log_max));
                if (rc != SQLITE_DONE)
                        return store_sql_error(s, rc, err, "trim log of sandbox '%s'", sandbox_id);
        }
        return 0;
}

int store_log_append(struct store *s, const char *sandbox_id, const char *level, const char *source,
                     const char *message, struct cove_err **err)
{
        STORE_LOCK(s);
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        r = store_log_append_locked(s, sandbox_id, level ? level : "info",
                                    source ? source : "system", message ? message : "", err);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        return store_commit(s, err);
}

int store_log_list(struct store *s, const char *sandbox_id, struct log_rec ***ret,
                   struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_LOG_LIST,
                "SELECT seq, ts, level, source, message FROM sandbox_logs WHERE sandbox_id = ?"
                " ORDER BY seq",
                err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, sandbox_id);
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list log of sandbox '%s'", sandbox_id);

        size_t n = 0, cap = 16;
        struct log_rec **v = xmalloc(cap * sizeof(*v));
        v[0] = NULL;
        for (;;) {
                rc = store_step(s, st);
                if (rc == SQLITE_DONE)
                        break;
                if (rc != SQLITE_ROW) {
                        log_list_free(v);
                        return store_sql_error(s, rc, err, "list log of sandbox '%s'", sandbox_id);
                }
                if (n + 2 > cap) {
                        cap *= 2;
                        v = xrealloc(v, cap * sizeof(*v));
                }
                struct log_rec *l = log_from_row(st);
                if (!l->fields) {
                        log_rec_free(l);
                        log_list_free(v);
                        return cove_err_set(err, ENOMEM, "list log of sandbox '%s': %m",
                                            sandbox_id);
                }
                v[n++] = l;
                v[n] = NULL;
        }
        *ret = v;
        return 0;
}

int store_log_delete_all(struct store *s, const char *sandbox_id, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_LOG_DELETE_ALL, "DELETE FROM sandbox_logs WHERE sandbox_id = ?", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(sandbox_id));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "delete log of sandbox '%s'", sandbox_id);
        return 0;
}

void store_log_set_max(struct store *s, int64_t max_entries)
{
        STORE_LOCK(s);
        s->log_max = max_entries > 0 ? max_entries : 10000;
}

#define LOG_RANK                                                                                   \
        "(CASE level WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warn' THEN 2"                    \
        " WHEN 'error' THEN 3 ELSE 1 END)"
#define LOG_QUERY_SQL(cmp, order)                                                                  \
        "SELECT seq, ts, level, source, message FROM sandbox_logs WHERE sandbox_id = ?1"           \
        " AND seq " cmp " ?2 AND " LOG_RANK " >= ?3"                                               \
        " AND (?4 IS NULL OR instr(lower(message), lower(?4)) > 0)"                                \
        " ORDER BY seq " order " LIMIT ?5"

int store_log_query(struct store *s, const struct log_query *q, struct log_page *ret,
                    struct cove_err **err)
{
        int64_t cursor = q->backward && q->cursor <= 0 ? INT64_MAX : q->cursor;
        int rc;

        STORE_LOCK(s);
        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_LOG_STATS,
                        "SELECT COUNT(*), coalesce(SUM(CASE WHEN ?3 THEN seq <= ?2"
                        " ELSE seq >= ?2 END), 0) FROM sandbox_logs WHERE sandbox_id = ?1",
                        err);
                if (!st)
                        return -EIO;
                rc = STORE_RUN(s, st, STORE_TEXT(q->sandbox_id), STORE_I64(cursor),
                               STORE_I64(q->backward));
                if (rc != SQLITE_ROW)
                        return store_sql_error(s, rc, err, "count log of sandbox '%s'",
                                               q->sandbox_id);
                ret->retained = sqlite3_column_int64(st, 0);
                ret->in_window = sqlite3_column_int64(st, 1);
        }
        cleanup_stmt sqlite3_stmt *st =
                q->backward ? store_stmt(s, STMT_LOG_QUERY_BWD, LOG_QUERY_SQL("<=", "DESC"), err)
                            : store_stmt(s, STMT_LOG_QUERY_FWD, LOG_QUERY_SQL(">=", "ASC"), err);
        if (!st)
                return -EIO;
        /* ?5: one more than asked for tells has_more. */
        rc = STORE_BIND(st, STORE_TEXT(q->sandbox_id), STORE_I64(cursor), STORE_I64(q->min_level),
                        STORE_TEXT(q->search), STORE_I64(q->limit + 1));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "query log of sandbox '%s'", q->sandbox_id);
        struct log_rec **v = xzalloc((size_t)(q->limit + 1) * sizeof(*v));
        int64_t n = 0;
        ret->has_more = false;
        while ((rc = store_step(s, st)) == SQLITE_ROW) {
                if (n == q->limit) {
                        ret->has_more = true;
                        break;
                }
                struct log_rec *l = log_from_row(st);
                v[n++] = l;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                log_list_free(v);
                return store_sql_error(s, rc, err, "query log of sandbox '%s'", q->sandbox_id);
        }
        ret->entries = v;
        return 0;
}
