/* SPDX-License-Identifier: MIT */
/* volume.c — the volumes table (control-plane.md §13.1). */
#include "store-internal.h"

#include "lib/macro.h"

#include "lib/banned.h"

#define VOLUME_SELECT "SELECT id, team_id, name, token, size_mb, created_at FROM volumes"

void volume_rec_free(struct volume_rec *v)
{
        if (!v)
                return;
        free(v->id);
        free(v->team_id);
        free(v->name);
        free(v->token);
        free(v);
}

STORE_DEFINE_LIST_FREE(volume_list_free, struct volume_rec, volume_rec_free)

static int volume_from_row(sqlite3_stmt *st, struct volume_rec **ret, struct cove_err **err)
{
        (void)err;
        struct volume_rec *v = xzalloc(sizeof(*v));
        v->id = store_col_text(st, 0);
        v->team_id = store_col_text(st, 1);
        v->name = store_col_text(st, 2);
        v->token = store_col_text(st, 3);
        v->size_mb = store_col_i64(st, 4);
        v->created_at = store_col_i64(st, 5);
        *ret = v;
        return 0;
}

STORE_DEFINE_COLLECT(volume, struct volume_rec, volume_rec_free)

int store_volume_insert(struct store *s, const struct volume_rec *v, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_VOLUME_INSERT,
                           "INSERT INTO volumes (id, team_id, name, token, size_mb, created_at)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(v->id), STORE_TEXT(v->team_id), STORE_TEXT(v->name),
                           STORE_TEXT(v->token), STORE_I64(v->size_mb), STORE_I64(v->created_at));
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "volume '%s' already exists", v->name);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "insert volume '%s'", v->name);
        return 0;
}

static int get_locked(struct store *s, const char *team_id, const char *id, struct volume_rec **ret,
                      struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st =
                team_id ? store_stmt(s, STMT_VOLUME_GET_TEAM,
                                     VOLUME_SELECT " WHERE id = ?1 AND team_id = ?2", err)
                        : store_stmt(s, STMT_VOLUME_GET, VOLUME_SELECT " WHERE id = ?1", err);
        if (!st)
                return -EIO;
        int rc = team_id ? STORE_RUN(s, st, STORE_TEXT(id), STORE_TEXT(team_id))
                         : STORE_RUN(s, st, STORE_TEXT(id));
        int r = store_one_row(s, rc, "volume", id, err);
        if (r < 0)
                return r;
        return volume_from_row(st, ret, err);
}

int store_volume_get(struct store *s, const char *team_id, const char *id, struct volume_rec **ret,
                     struct cove_err **err)
{
        STORE_LOCK(s);
        return get_locked(s, team_id, id, ret, err);
}

int store_volume_get_by_name(struct store *s, const char *team_id, const char *name,
                             struct volume_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_VOLUME_GET_NAME, VOLUME_SELECT " WHERE team_id = ?1 AND name = ?2", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id), STORE_TEXT(name));
        int r = store_one_row(s, rc, "volume", name, err);
        if (r < 0)
                return r;
        return volume_from_row(st, ret, err);
}

int store_volume_list(struct store *s, const char *team_id, struct volume_rec ***ret,
                      struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                team_id ? store_stmt(s, STMT_VOLUME_LIST_TEAM,
                                     VOLUME_SELECT " WHERE team_id = ?1 ORDER BY name, id", err)
                        : store_stmt(s, STMT_VOLUME_LIST, VOLUME_SELECT " ORDER BY team_id, name",
                                     err);
        if (!st)
                return -EIO;
        int rc = team_id ? STORE_BIND(st, STORE_TEXT(team_id)) : SQLITE_OK;
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list volumes");
        return volume_collect(s, st, "list volumes", ret, err);
}

int store_volume_delete_unmounted(struct store *s, const char *team_id, const char *id,
                                  struct volume_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        struct volume_rec *v = NULL;
        int r = get_locked(s, team_id, id, &v, err);
        if (r < 0)
                return r;
        {
                /* A sandbox of the team that still exists (any state) and names it. */
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_VOLUME_MOUNTED_BY,
                        "SELECT sandboxes.id FROM sandboxes, json_each(sandboxes.volume_mounts) AS "
                        "m"
                        " WHERE sandboxes.team_id = ?1 AND json_extract(m.value, '$.name') = ?2"
                        " LIMIT 1",
                        err);
                if (!st) {
                        volume_rec_free(v);
                        return -EIO;
                }
                int rc = STORE_RUN(s, st, STORE_TEXT(v->team_id), STORE_TEXT(v->name));
                if (rc == SQLITE_ROW) {
                        r = cove_err_set(err, EBUSY, "volume '%s' is mounted by sandbox '%s'",
                                         v->name, (const char *)sqlite3_column_text(st, 0));
                        volume_rec_free(v);
                        return r;
                }
                if (rc != SQLITE_DONE) {
                        volume_rec_free(v);
                        return store_sql_error(s, rc, err, "check mounts of volume '%s'", id);
                }
        }
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_VOLUME_DELETE, "DELETE FROM volumes WHERE id = ?1", err);
        if (!st) {
                volume_rec_free(v);
                return -EIO;
        }
        int rc = STORE_RUN(s, st, STORE_TEXT(id));
        if (rc != SQLITE_DONE) {
                volume_rec_free(v);
                return store_sql_error(s, rc, err, "delete volume '%s'", id);
        }
        if (ret)
                *ret = v;
        else
                volume_rec_free(v);
        return 0;
}
