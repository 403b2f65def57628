/* SPDX-License-Identifier: MIT */
/*
 * stmt.c — the store's statement plumbing, shared by every table's file (and db.c's
 * transactions and settings): the prepared-statement cache, stepping (with failure injection),
 * SQLite errors as errnos, binding parameters (one at a time or a whole statement's from a
 * store_arg list), running a bound statement, reading columns (text, integers, JSON) and
 * collecting a query's rows into a NULL-terminated array. store-internal.h states the contracts.
 */
#include "store-internal.h"

#include "lib/macro.h"

#include <stdarg.h>

#include "lib/banned.h"

void store_stmt_resetp(sqlite3_stmt **st)
{
        if (!*st)
                return;
        (void)sqlite3_reset(*st);
        (void)sqlite3_clear_bindings(*st);
}

bool store_rc_is_unique(int rc)
{
        return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY;
}

int store_sql_error(struct store *s, int rc, struct cove_err **err, const char *fmt, ...)
{
        char ctx[256];
        va_list ap;
        int errnum;

        va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        (void)vsnprintf(ctx, sizeof(ctx), fmt, ap);
#pragma GCC diagnostic pop
        va_end(ap);

        if (store_rc_is_unique(rc))
                errnum = EEXIST;
        else if (rc == SQLITE_CONSTRAINT_NOTNULL || rc == SQLITE_CONSTRAINT_CHECK)
                errnum = EINVAL;
        else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
                errnum = EAGAIN;
        else
                errnum = EIO;

        if (s->injected) {
                s->injected = false;
                return cove_err_set(err, errnum, "%s: injected failure (COVE_STORE_FAIL_STEP)",
                                    ctx);
        }
        return cove_err_set(err, errnum, "%s: %s", ctx,
                            s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

int store_one_row(struct store *s, int rc, const char *kind, const char *id, struct cove_err **err)
{
        if (rc == SQLITE_DONE)
                return cove_err_set(err, ENOENT, "%s '%s' not found", kind, id);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "get %s '%s'", kind, id);
        return 0;
}

sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id, const char *sql,
                         struct cove_err **err)
{
        if ((int)id < 0 || (int)id >= _STMT_MAX)
                abort();
        if (!s->stmts[id]) {
                int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmts[id], NULL);
                if (rc != SQLITE_OK) {
                        s->stmts[id] = NULL;
                        (void)store_sql_error(s, rc, err, "prepare statement %d", (int)id);
                        return NULL;
                }
        }
        return s->stmts[id];
}

int store_step(struct store *s, sqlite3_stmt *st)
{
        if (s->fail_step > 0 && ++s->step_count == s->fail_step) {
                s->injected = true;
                return SQLITE_IOERR;
        }
        return sqlite3_step(st);
}

int store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
        if (!v)
                return sqlite3_bind_null(st, i);
        return sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

int store_bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
        return sqlite3_bind_int64(st, i, v);
}

int store_bind_json(sqlite3_stmt *st, int i, const json_t *v, const char *dflt)
{
        if (!v)
                return dflt ? sqlite3_bind_text(st, i, dflt, -1, SQLITE_STATIC)
                            : sqlite3_bind_null(st, i);
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!txt)
                return SQLITE_NOMEM;
        /* SQLite calls free() on txt even when binding fails. */
        return sqlite3_bind_text(st, i, txt, -1, free);
}

char *store_col_text(sqlite3_stmt *st, int i)
{
        const unsigned char *t = sqlite3_column_text(st, i);
        if (!t)
                return NULL;
        return xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

int64_t store_col_i64(sqlite3_stmt *st, int i)
{
        return sqlite3_column_int64(st, i);
}

int store_col_json(sqlite3_stmt *st, int i, const char *dflt, json_t **ret, struct cove_err **err)
{
        const char *t = (const char *)sqlite3_column_text(st, i);
        size_t n;
        json_error_t je;

        if (!t) {
                if (!dflt) {
                        *ret = NULL;
                        return 0;
                }
                t = dflt;
                n = strlen(dflt);
        } else {
                n = (size_t)sqlite3_column_bytes(st, i);
        }
        json_t *v = json_loadb(t, n, JSON_DECODE_ANY, &je);
        if (!v)
                return cove_err_set(err, EIO, "corrupt JSON in column '%s': %s",
                                    sqlite3_column_name(st, i), je.text);
        *ret = v;
        return 0;
}

int store_bind_args(sqlite3_stmt *st, const struct store_arg *args, size_t n)
{
        int rc = SQLITE_OK;

        for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
                const struct store_arg *a = &args[i];
                int idx = (int)i + 1;
                switch (a->kind) {
                case STORE_ARG_TEXT:
                        rc = store_bind_text(st, idx, a->text);
                        break;
                case STORE_ARG_I64:
                        rc = store_bind_i64(st, idx, a->i64);
                        break;
                case STORE_ARG_JSON:
                        rc = store_bind_json(st, idx, a->json, a->text);
                        break;
                }
        }
        return rc;
}

int store_run_args(struct store *s, sqlite3_stmt *st, const struct store_arg *args, size_t n)
{
        if (!st)
                return SQLITE_ERROR;
        int rc = store_bind_args(st, args, n);
        return rc == SQLITE_OK ? store_step(s, st) : rc;
}

int store_collect_rows(struct store *s, sqlite3_stmt *st, store_row_fn row,
                       void (*free_one)(void *), const char *what, void ***ret,
                       struct cove_err **err)
{
        void **v = xzalloc(sizeof(*v));
        size_t n = 0;
        int r = 0;

        for (;;) {
                int rc = store_step(s, st);
                if (rc == SQLITE_DONE)
                        break;
                if (rc != SQLITE_ROW) {
                        r = store_sql_error(s, rc, err, "%s", what);
                        break;
                }
                void *rec = NULL;
                r = row(st, &rec, err);
                if (r < 0)
                        break;
                v = xrealloc(v, (n + 2) * sizeof(*v));
                v[n++] = rec;
                v[n] = NULL;
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free_one(v[i]);
                free(v);
                return r;
        }
        *ret = v;
        return 0;
}
