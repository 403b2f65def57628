/* SPDX-License-Identifier: MIT */
/*
 * uidrange.c — which sandbox holds which block of host uids (store.h, "uid ranges"). A row is
 * the truth: it is written before the sandbox starts and deleted only after everything of the
 * sandbox is gone, so a restart of coved knows every range in use.
 */
#include "store-internal.h"

#include "lib/macro.h"
#include "lib/timeutil.h"

#include "lib/banned.h"

/* The sandbox's index, or -ENOENT. Lock held. */
static int get_locked(struct store *s, const char *sandbox_id, int64_t *ret, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_UIDRANGE_GET, "SELECT idx FROM uid_ranges WHERE sandbox_id = ?", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(sandbox_id));
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "uid range of sandbox '%s'", sandbox_id);
        *ret = store_col_i64(st, 0);
        return 0;
}

/* The lowest index in [0, n) that no row holds, or -ENOSPC. Lock held. */
static int lowest_free_locked(struct store *s, int64_t n, int64_t *ret, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_UIDRANGE_FREE,
                "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM uid_ranges WHERE idx = 0) THEN 0 ELSE"
                " (SELECT min(a.idx + 1) FROM uid_ranges a WHERE NOT EXISTS"
                "  (SELECT 1 FROM uid_ranges b WHERE b.idx = a.idx + 1)) END",
                err);
        if (!st)
                return -EIO;
        int rc = store_step(s, st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "find a free uid range");
        int64_t idx = store_col_i64(st, 0);
        if (idx < 0 || idx >= n)
                return cove_err_set(err, ENOSPC, "all %lld uid ranges are in use", (long long)n);
        *ret = idx;
        return 0;
}

int store_uidrange_acquire(struct store *s, const char *sandbox_id, int64_t n_ranges,
                           int64_t *ret_index, struct cove_err **err)
{
        STORE_LOCK(s);
        int64_t idx;
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        r = get_locked(s, sandbox_id, &idx, err);
        if (r == -ENOENT) {
                r = lowest_free_locked(s, n_ranges, &idx, err);
                if (r >= 0) {
                        cleanup_stmt sqlite3_stmt *st =
                                store_stmt(s, STMT_UIDRANGE_INSERT,
                                           "INSERT INTO uid_ranges (idx, sandbox_id, allocated_at) "
                                           "VALUES (?, ?, ?)",
                                           err);
                        int rc = STORE_RUN(s, st, STORE_I64(idx), STORE_TEXT(sandbox_id),
                                           STORE_I64(time_now_ms()));
                        if (!st)
                                r = -EIO;
                        else if (rc != SQLITE_DONE)
                                r = store_sql_error(s, rc, err, "record uid range of sandbox '%s'",
                                                    sandbox_id);
                }
        }
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        r = store_commit(s, err);
        if (r < 0)
                return r;
        *ret_index = idx;
        return 0;
}

int store_uidrange_get(struct store *s, const char *sandbox_id, int64_t *ret_index,
                       struct cove_err **err)
{
        STORE_LOCK(s);
        int r = get_locked(s, sandbox_id, ret_index, err);
        if (r == -ENOENT)
                return cove_err_set(err, ENOENT, "sandbox '%s' holds no uid range", sandbox_id);
        return r;
}

int store_uidrange_release(struct store *s, const char *sandbox_id, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_UIDRANGE_DELETE, "DELETE FROM uid_ranges WHERE sandbox_id = ?", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(sandbox_id));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "release uid range of sandbox '%s'", sandbox_id);
        return 0;
}

static int orphan_row(sqlite3_stmt *st, void **ret, struct cove_err **err)
{
        (void)err;
        char *id = store_col_text(st, 0);
        *ret = id ? id : xstrdup("");
        return 0;
}

int store_uidrange_orphans(struct store *s, char ***ret_ids, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_UIDRANGE_ORPHANS,
                           "SELECT sandbox_id FROM uid_ranges r WHERE NOT EXISTS"
                           " (SELECT 1 FROM sandboxes s WHERE s.id = r.sandbox_id) ORDER BY idx",
                           err);
        if (!st)
                return -EIO;
        return store_collect_rows(s, st, orphan_row, free, "list orphaned uid ranges",
                                  (void ***)ret_ids, err);
}

int store_uidrange_count(struct store *s, int64_t *ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_UIDRANGE_COUNT, "SELECT count(*) FROM uid_ranges", err);
        if (!st)
                return -EIO;
        int rc = store_step(s, st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "count uid ranges");
        *ret = store_col_i64(st, 0);
        return 0;
}
