/* SPDX-License-Identifier: MIT */
/* template.c — the templates table. */
#include "store-internal.h"

#include "lib/macro.h"

#include "lib/banned.h"

/* Column order of every SELECT and of the ?1…?19 parameters of INSERT/UPDATE. */
#define TEMPLATE_COLS                                                                              \
        "id, name, team_id, official, public, cpu_count, memory_mb, disk_size_mb, ttl_seconds,"    \
        " envs, workdir, start_cmd, ready_cmd, layers, binds, build_status, build_id,"             \
        " created_at, updated_at, visibility, created_by, base_template_id, image, dockerfile,"    \
        " port, storage_size_gb, volume_mounts, pinned_build_id, spawn_count, last_spawned_at,"    \
        " generator, build_config"

enum {
        TC_ID,
        TC_NAME,
        TC_TEAM_ID,
        TC_OFFICIAL,
        TC_PUBLIC,
        TC_CPU,
        TC_MEM,
        TC_DISK,
        TC_TTL,
        TC_ENVS,
        TC_WORKDIR,
        TC_START_CMD,
        TC_READY_CMD,
        TC_LAYERS,
        TC_BINDS,
        TC_BUILD_STATUS,
        TC_BUILD_ID,
        TC_CREATED_AT,
        TC_UPDATED_AT,
        TC_VISIBILITY,
        TC_CREATED_BY,
        TC_BASE,
        TC_IMAGE,
        TC_DOCKERFILE,
        TC_PORT,
        TC_STORAGE_GB,
        TC_VOLUME_MOUNTS,
        TC_PINNED,
        TC_SPAWN_COUNT,
        TC_LAST_SPAWNED,
        TC_GENERATOR,
        TC_BUILD_CONFIG,
        _TC_MAX,
};

void template_rec_free(struct template_rec *t)
{
        if (!t)
                return;
        free(t->id);
        free(t->name);
        free(t->team_id);
        json_decref(t->envs);
        free(t->workdir);
        free(t->start_cmd);
        free(t->ready_cmd);
        json_decref(t->layers);
        json_decref(t->binds);
        free(t->build_status);
        free(t->build_id);
        free(t->visibility);
        free(t->created_by);
        free(t->base_template_id);
        free(t->image);
        free(t->dockerfile);
        json_decref(t->volume_mounts);
        free(t->pinned_build_id);
        free(t->generator);
        json_decref(t->build_config);
        free(t);
}

void template_list_free(struct template_rec **v)
{
        if (!v)
                return;
        for (struct template_rec **p = v; *p; p++)
                template_rec_free(*p);
        free(v);
}

/* Binds every column to parameter (column index + 1). */
static int template_bind(sqlite3_stmt *st, const struct template_rec *t)
{
        int rc = store_bind_text(st, TC_ID + 1, t->id);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_NAME + 1, t->name);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_TEAM_ID + 1, t->team_id);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_OFFICIAL + 1, t->official);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_PUBLIC + 1, t->public_);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_CPU + 1, t->cpu_count);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_MEM + 1, t->memory_mb);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_DISK + 1, t->disk_size_mb);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_TTL + 1, t->ttl_seconds);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, TC_ENVS + 1, t->envs, "{}");
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_WORKDIR + 1, t->workdir);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_START_CMD + 1, t->start_cmd);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_READY_CMD + 1, t->ready_cmd);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, TC_LAYERS + 1, t->layers, "[]");
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, TC_BINDS + 1, t->binds, "[]");
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_BUILD_STATUS + 1, t->build_status);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_BUILD_ID + 1, t->build_id);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_CREATED_AT + 1, t->created_at);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_UPDATED_AT + 1, t->updated_at);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_VISIBILITY + 1,
                                     t->visibility ? t->visibility
                                     : t->official ? "official"
                                                   : "team");
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_CREATED_BY + 1, t->created_by);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_BASE + 1, t->base_template_id);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_IMAGE + 1, t->image);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_DOCKERFILE + 1, t->dockerfile);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_PORT + 1, t->port);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_STORAGE_GB + 1, t->storage_size_gb);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, TC_VOLUME_MOUNTS + 1, t->volume_mounts, "[]");
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_PINNED + 1, t->pinned_build_id);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_SPAWN_COUNT + 1, t->spawn_count);
        if (rc == SQLITE_OK)
                rc = store_bind_i64(st, TC_LAST_SPAWNED + 1, t->last_spawned_at);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, TC_GENERATOR + 1, t->generator);
        if (rc == SQLITE_OK)
                rc = store_bind_json(st, TC_BUILD_CONFIG + 1, t->build_config, "{}");
        return rc;
}

static int template_from_row(sqlite3_stmt *st, struct template_rec **ret, struct cove_err **err)
{
        struct template_rec *t = xzalloc(sizeof(*t));
        int r;

        t->id = store_col_text(st, TC_ID);
        t->name = store_col_text(st, TC_NAME);
        t->team_id = store_col_text(st, TC_TEAM_ID);
        t->official = store_col_i64(st, TC_OFFICIAL) != 0;
        t->public_ = store_col_i64(st, TC_PUBLIC) != 0;
        t->cpu_count = store_col_i64(st, TC_CPU);
        t->memory_mb = store_col_i64(st, TC_MEM);
        t->disk_size_mb = store_col_i64(st, TC_DISK);
        t->ttl_seconds = store_col_i64(st, TC_TTL);
        t->workdir = store_col_text(st, TC_WORKDIR);
        t->start_cmd = store_col_text(st, TC_START_CMD);
        t->ready_cmd = store_col_text(st, TC_READY_CMD);
        t->build_status = store_col_text(st, TC_BUILD_STATUS);
        t->build_id = store_col_text(st, TC_BUILD_ID);
        t->created_at = store_col_i64(st, TC_CREATED_AT);
        t->updated_at = store_col_i64(st, TC_UPDATED_AT);
        t->visibility = store_col_text(st, TC_VISIBILITY);
        t->created_by = store_col_text(st, TC_CREATED_BY);
        t->base_template_id = store_col_text(st, TC_BASE);
        t->image = store_col_text(st, TC_IMAGE);
        t->dockerfile = store_col_text(st, TC_DOCKERFILE);
        t->port = store_col_i64(st, TC_PORT);
        t->storage_size_gb = store_col_i64(st, TC_STORAGE_GB);
        t->pinned_build_id = store_col_text(st, TC_PINNED);
        t->spawn_count = store_col_i64(st, TC_SPAWN_COUNT);
        t->last_spawned_at = store_col_i64(st, TC_LAST_SPAWNED);
        t->generator = store_col_text(st, TC_GENERATOR);
        r = store_col_json(st, TC_ENVS, "{}", &t->envs, err);
        if (r >= 0)
                r = store_col_json(st, TC_LAYERS, "[]", &t->layers, err);
        if (r >= 0)
                r = store_col_json(st, TC_BINDS, "[]", &t->binds, err);
        if (r >= 0)
                r = store_col_json(st, TC_VOLUME_MOUNTS, "[]", &t->volume_mounts, err);
        if (r >= 0)
                r = store_col_json(st, TC_BUILD_CONFIG, "{}", &t->build_config, err);
        if (r < 0) {
                template_rec_free(t);
                return cove_err_wrap(err, "read template");
        }
        *ret = t;
        return 0;
}

int store_template_insert(struct store *s, const struct template_rec *t, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TEMPLATE_INSERT,
                "INSERT INTO templates (" TEMPLATE_COLS ") VALUES"
                " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
                " ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)",
                err);
        if (!st)
                return -EIO;
        int rc = template_bind(st, t);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc == SQLITE_DONE)
                return 0;
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "template '%s' already exists",
                                    t->name ? t->name : t->id);
        return store_sql_error(s, rc, err, "insert template '%s'", t->id);
}

int store_template_update(struct store *s, const struct template_rec *t, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TEMPLATE_UPDATE,
                "UPDATE templates SET name = ?2, team_id = ?3, official = ?4, public = ?5,"
                " cpu_count = ?6, memory_mb = ?7, disk_size_mb = ?8, ttl_seconds = ?9, envs = ?10,"
                " workdir = ?11, start_cmd = ?12, ready_cmd = ?13, layers = ?14, binds = ?15,"
                " build_status = ?16, build_id = ?17, created_at = ?18, updated_at = ?19,"
                " visibility = ?20, created_by = ?21, base_template_id = ?22, image = ?23,"
                " dockerfile = ?24, port = ?25, storage_size_gb = ?26, volume_mounts = ?27,"
                " pinned_build_id = ?28, spawn_count = ?29, last_spawned_at = ?30, generator = ?31,"
                " build_config = ?32"
                " WHERE id = ?1",
                err);
        if (!st)
                return -EIO;
        int rc = template_bind(st, t);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "template '%s' already exists",
                                    t->name ? t->name : t->id);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "update template '%s'", t->id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "template '%s' not found", t->id);
        return 0;
}

static int template_get_one(struct store *s, enum store_stmt_id id, const char *sql,
                            const char *ref, struct template_rec **ret, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(s, id, sql, err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, ref);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc == SQLITE_DONE)
                return cove_err_set(err, ENOENT, "template '%s' not found", ref);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "get template '%s'", ref);
        return template_from_row(st, ret, err);
}

int store_template_get(struct store *s, const char *id, struct template_rec **ret,
                       struct cove_err **err)
{
        STORE_LOCK(s);
        return template_get_one(s, STMT_TEMPLATE_GET,
                                "SELECT " TEMPLATE_COLS " FROM templates WHERE id = ?1", id, ret,
                                err);
}

int store_template_resolve(struct store *s, const char *ref, struct template_rec **ret,
                           struct cove_err **err)
{
        STORE_LOCK(s);
        /* An ID match wins over a name match (a name could look like another template's ID). */
        return template_get_one(s, STMT_TEMPLATE_RESOLVE,
                                "SELECT " TEMPLATE_COLS " FROM templates"
                                " WHERE id = ?1 OR name = ?1 ORDER BY (id = ?1) DESC LIMIT 1",
                                ref, ret, err);
}

int store_template_delete(struct store *s, const char *id, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TEMPLATE_DELETE, "DELETE FROM templates WHERE id = ?", err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, id);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "delete template '%s'", id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "template '%s' not found", id);
        return 0;
}

/* Adapters for store_collect_rows(). */
static int template_row_any(sqlite3_stmt *st, void **ret, struct cove_err **err)
{
        struct template_rec *rec = NULL;
        int r = template_from_row(st, &rec, err);
        if (r >= 0)
                *ret = rec;
        return r;
}

static void template_free_any(void *p)
{
        template_rec_free(p);
}

int store_template_list(struct store *s, const char *team_id, struct template_rec ***ret,
                        struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                team_id ? store_stmt(s, STMT_TEMPLATE_LIST_TEAM,
                                     "SELECT " TEMPLATE_COLS " FROM templates WHERE team_id = ?1"
                                     " ORDER BY created_at, id",
                                     err)
                        : store_stmt(s, STMT_TEMPLATE_LIST,
                                     "SELECT " TEMPLATE_COLS " FROM templates"
                                     " ORDER BY created_at, id",
                                     err);
        if (!st)
                return -EIO;
        int rc = team_id ? store_bind_text(st, 1, team_id) : SQLITE_OK;
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list templates");

        void **v = NULL;
        int r = store_collect_rows(s, st, template_row_any, template_free_any, "list templates", &v,
                                   err);
        if (r < 0)
                return r;
        *ret = (struct template_rec **)v;
        return 0;
}
