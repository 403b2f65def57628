/* SPDX-License-Identifier: MIT */
/*
 * tenancy.c — teams and the operator's side of API keys: create, list, revoke, a key's teams.
 * (apikey.c keeps the hashing and the per-request lookup.) Keys are generated here and only
 * their SHA-256 is stored; the one copy of a new key goes back to the caller.
 */
#include "store-internal.h"

#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"

#include "lib/banned.h"

void team_rec_free(struct team_rec *t)
{
        if (!t)
                return;
        free(t->id);
        free(t->name);
        free(t);
}

STORE_DEFINE_LIST_FREE(team_list_free, struct team_rec, team_rec_free)

static int team_from_row(sqlite3_stmt *st, struct team_rec **ret, struct cove_err **err)
{
        (void)err;
        struct team_rec *t = xzalloc(sizeof(*t));
        t->id = store_col_text(st, 0);
        t->name = store_col_text(st, 1);
        t->created_at = store_col_i64(st, 2);
        if (!t->name)
                t->name = xstrdup("");
        *ret = t;
        return 0;
}

STORE_DEFINE_COLLECT(team, struct team_rec, team_rec_free)

int store_team_create(struct store *s, const char *name, struct team_rec **ret,
                      struct cove_err **err)
{
        char id[STRLEN("team_") + 16 + 1], rnd[17];
        random_hex(rnd, 16);
        (void)snprintf(id, sizeof(id), "team_%s", rnd);
        int64_t now = time_now_ms();

        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TEAM_CREATE,
                           "INSERT INTO teams (id, name, created_at) VALUES (?1, ?2, ?3)", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id), STORE_TEXT(name), STORE_I64(now));
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "team '%s' already exists", name);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "create team '%s'", name);
        struct team_rec *t = xzalloc(sizeof(*t));
        t->id = xstrdup(id);
        t->name = xstrdup(name);
        t->created_at = now;
        *ret = t;
        return 0;
}

int store_team_get(struct store *s, const char *id, struct team_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TEAM_GET, "SELECT id, name, created_at FROM teams WHERE id = ?1", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id));
        int r = store_one_row(s, rc, "team", id, err);
        if (r < 0)
                return r;
        return team_from_row(st, ret, err);
}

int store_team_list(struct store *s, struct team_rec ***ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TEAM_LIST,
                           "SELECT id, name, created_at FROM teams ORDER BY created_at, id", err);
        if (!st)
                return -EIO;
        return team_collect(s, st, "list teams", ret, err);
}

/* ---- keys ---- */

#define APIKEY_COLS "id, team_id, role, last4, created_at, name, revoked_at"

static int apikey_from_row(sqlite3_stmt *st, struct apikey_rec **ret, struct cove_err **err)
{
        (void)err;
        struct apikey_rec *k = xzalloc(sizeof(*k));
        k->id = store_col_text(st, 0);
        k->team_id = store_col_text(st, 1);
        k->role = store_col_text(st, 2);
        k->last4 = store_col_text(st, 3);
        k->created_at = store_col_i64(st, 4);
        k->name = store_col_text(st, 5);
        k->revoked_at = store_col_i64(st, 6);
        if (!k->name)
                k->name = xstrdup("");
        *ret = k;
        return 0;
}

STORE_DEFINE_COLLECT(apikey, struct apikey_rec, apikey_rec_free)

STORE_DEFINE_LIST_FREE(apikey_list_free, struct apikey_rec, apikey_rec_free)

int store_apikey_create(struct store *s, const char *team_id, const char *role, const char *name,
                        bool e2b_form, char **ret_key, struct apikey_rec **ret,
                        struct cove_err **err)
{
        char rnd[41];
        if (e2b_form)
                random_hex(rnd, 40);
        else
                random_alnum(rnd, 40);
        cleanup_free char *key = xasprintf("%s_%s", e2b_form ? "e2b" : "cove", rnd);
        struct apikey_rec *k = NULL;

        int r = store_apikey_insert(s, key, team_id, role, err);
        if (r < 0)
                return r;
        r = store_apikey_lookup(s, key, &k, err);
        if (r < 0)
                return r;
        {
                STORE_LOCK(s);
                cleanup_stmt sqlite3_stmt *st =
                        store_stmt(s, STMT_APIKEY_SET_NAME,
                                   "UPDATE api_keys SET name = ?2 WHERE id = ?1", err);
                int rc = STORE_RUN(s, st, STORE_TEXT(k->id), STORE_TEXT(name ? name : ""));
                if (!st || rc != SQLITE_DONE) {
                        apikey_rec_free(k);
                        return st ? store_sql_error(s, rc, err, "name api key") : -EIO;
                }
        }
        free(k->name);
        k->name = xstrdup(name ? name : "");
        *ret_key = TAKE_PTR(key);
        *ret = k;
        return 0;
}

int store_apikey_list(struct store *s, const char *team_id, struct apikey_rec ***ret,
                      struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_APIKEY_LIST,
                           "SELECT " APIKEY_COLS " FROM api_keys WHERE ?1 IS NULL OR team_id = ?1"
                           " OR id IN (SELECT key_id FROM api_key_teams WHERE team_id = ?1)"
                           " ORDER BY created_at, id",
                           err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, team_id);
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list api keys");
        return apikey_collect(s, st, "list api keys", ret, err);
}

int store_apikey_get(struct store *s, const char *id, struct apikey_rec **ret,
                     struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_APIKEY_GET, "SELECT " APIKEY_COLS " FROM api_keys WHERE id = ?1", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id));
        int r = store_one_row(s, rc, "api key", id, err);
        if (r < 0)
                return r;
        return apikey_from_row(st, ret, err);
}

int store_apikey_revoke(struct store *s, const char *id, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_APIKEY_REVOKE,
                "UPDATE api_keys SET revoked = 1,"
                " revoked_at = CASE WHEN revoked_at = 0 THEN ?2 ELSE revoked_at END WHERE id = ?1",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id), STORE_I64(time_now_ms()));
        store_keys_written(s);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "revoke api key '%s'", id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "api key '%s' not found", id);
        return 0;
}

int store_apikey_add_team(struct store *s, const char *key_id, const char *team_id,
                          struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_APIKEY_ADD_TEAM,
                "INSERT OR IGNORE INTO api_key_teams (key_id, team_id) VALUES (?1, ?2)", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(key_id), STORE_TEXT(team_id));
        store_keys_written(s);
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
                return cove_err_set(err, ENOENT, "api key '%s' or team '%s' not found", key_id,
                                    team_id);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "add team '%s' to api key '%s'", team_id,
                                       key_id);
        return 0;
}

int store_apikey_teams(struct store *s, const char *key_id, char ***ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_APIKEY_TEAMS,
                           "SELECT team_id, 0 AS o FROM api_keys WHERE id = ?1"
                           " UNION SELECT team_id, 1 FROM api_key_teams WHERE key_id = ?1"
                           "  AND team_id != (SELECT team_id FROM api_keys WHERE id = ?1)"
                           " ORDER BY o, team_id",
                           err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, key_id);
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "teams of api key '%s'", key_id);
        char **v = xzalloc(sizeof(char *));
        size_t n = 0;
        while ((rc = store_step(s, st)) == SQLITE_ROW) {
                v = xrealloc(v, (n + 2) * sizeof(char *));
                v[n++] = store_col_text(st, 0);
                v[n] = NULL;
        }
        if (rc != SQLITE_DONE) {
                strv_free(v);
                return store_sql_error(s, rc, err, "teams of api key '%s'", key_id);
        }
        *ret = v;
        return 0;
}
