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

STORE_DEFINE_LIST_FREE(template_list_free, struct template_rec, template_rec_free)

/* Binds t to ?1 … ?32, in TEMPLATE_COLS' order (the TC_ enum), and steps st. */
static int template_run(struct store *s, sqlite3_stmt *st, const struct template_rec *t)
{
        const char *visibility = t->visibility ? t->visibility : t->official ? "official" : "team";

        return STORE_RUN(
                s, st, STORE_TEXT(t->id), STORE_TEXT(t->name), STORE_TEXT(t->team_id),
                STORE_I64(t->official), STORE_I64(t->public_), STORE_I64(t->cpu_count),
                STORE_I64(t->memory_mb), STORE_I64(t->disk_size_mb), STORE_I64(t->ttl_seconds),
                STORE_JSON(t->envs, "{}"), STORE_TEXT(t->workdir), STORE_TEXT(t->start_cmd),
                STORE_TEXT(t->ready_cmd), STORE_JSON(t->layers, "[]"), STORE_JSON(t->binds, "[]"),
                STORE_TEXT(t->build_status), STORE_TEXT(t->build_id), STORE_I64(t->created_at),
                STORE_I64(t->updated_at), STORE_TEXT(visibility), STORE_TEXT(t->created_by),
                STORE_TEXT(t->base_template_id), STORE_TEXT(t->image), STORE_TEXT(t->dockerfile),
                STORE_I64(t->port), STORE_I64(t->storage_size_gb),
                STORE_JSON(t->volume_mounts, "[]"), STORE_TEXT(t->pinned_build_id),
                STORE_I64(t->spawn_count), STORE_I64(t->last_spawned_at), STORE_TEXT(t->generator),
                STORE_JSON(t->build_config, "{}"));
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
        int rc = template_run(s, st, t);
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
        int rc = template_run(s, st, t);
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
        int rc = STORE_RUN(s, st, STORE_TEXT(ref));
        int r = store_one_row(s, rc, "template", ref, err);
        if (r < 0)
                return r;
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
        int rc = STORE_RUN(s, st, STORE_TEXT(id));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "delete template '%s'", id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "template '%s' not found", id);
        return 0;
}

STORE_DEFINE_COLLECT(template, struct template_rec, template_rec_free)

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
        int rc = team_id ? STORE_BIND(st, STORE_TEXT(team_id)) : SQLITE_OK;
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list templates");
        return template_collect(s, st, "list templates", ret, err);
}
