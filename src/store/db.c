/* SPDX-License-Identifier: MIT */
/*
 * db.c — opening the database (pragmas, migrations), the lock, transactions and the settings
 * table (statements, binding and columns are stmt.c's).
 */
#include "store-internal.h"

#include "lib/macro.h"
#include "lib/parse.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "lib/banned.h"

/* The templates columns of schema 1 after (id, name), written out by migration 0 → 1 and again
 * by 4 → 5, which rebuilds the table. Frozen like the migrations that use it: never edit. */
#define SCHEMA_V1_TEMPLATE_COLUMNS                                                                 \
        "  team_id TEXT,"                                                                          \
        "  official INTEGER NOT NULL DEFAULT 0,"                                                   \
        "  public INTEGER NOT NULL DEFAULT 0,"                                                     \
        "  cpu_count INTEGER NOT NULL DEFAULT 0,"                                                  \
        "  memory_mb INTEGER NOT NULL DEFAULT 0,"                                                  \
        "  disk_size_mb INTEGER NOT NULL DEFAULT 0,"                                               \
        "  ttl_seconds INTEGER NOT NULL DEFAULT 0,"                                                \
        "  envs TEXT NOT NULL DEFAULT '{}',"                                                       \
        "  workdir TEXT,"                                                                          \
        "  start_cmd TEXT,"                                                                        \
        "  ready_cmd TEXT,"                                                                        \
        "  layers TEXT NOT NULL DEFAULT '[]',"                                                     \
        "  binds TEXT NOT NULL DEFAULT '[]',"                                                      \
        "  build_status TEXT NOT NULL,"                                                            \
        "  build_id TEXT,"                                                                         \
        "  created_at INTEGER NOT NULL DEFAULT 0,"

/*
 * Ordered migrations: migrations[i] brings the schema from version i to i + 1, and ends by
 * setting PRAGMA user_version to i + 1 (PRAGMA takes no bound parameters, so the number is part
 * of the literal). All pending ones run in one transaction. Never edit a shipped entry: append.
 */
static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE teams ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  name TEXT NOT NULL,"
        "  created_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE TABLE api_keys ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  key_hash TEXT NOT NULL UNIQUE,"
        "  team_id TEXT NOT NULL REFERENCES teams(id),"
        "  role TEXT NOT NULL,"
        "  last4 TEXT NOT NULL,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  revoked INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE INDEX api_keys_team ON api_keys(team_id);"
        "CREATE TABLE templates ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  name TEXT UNIQUE," SCHEMA_V1_TEMPLATE_COLUMNS "  updated_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE INDEX templates_team ON templates(team_id);"
        /* created_seq is the rowid with AUTOINCREMENT: it never repeats, even after deletes. */
        "CREATE TABLE sandboxes ("
        "  created_seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  id TEXT NOT NULL UNIQUE,"
        "  team_id TEXT NOT NULL,"
        "  template_id TEXT NOT NULL,"
        "  alias TEXT,"
        "  status TEXT NOT NULL,"
        "  access_token TEXT,"
        "  started_at INTEGER NOT NULL DEFAULT 0,"
        "  end_at INTEGER NOT NULL DEFAULT 0,"
        "  activated_at INTEGER NOT NULL DEFAULT 0,"
        "  stopped_at INTEGER NOT NULL DEFAULT 0,"
        "  paused_remaining_ms INTEGER NOT NULL DEFAULT 0,"
        "  cpu_count INTEGER NOT NULL DEFAULT 0,"
        "  memory_mb INTEGER NOT NULL DEFAULT 0,"
        "  disk_size_mb INTEGER NOT NULL DEFAULT 0,"
        "  auto_pause INTEGER NOT NULL DEFAULT 0,"
        "  auto_resume INTEGER NOT NULL DEFAULT 0,"
        "  metadata TEXT NOT NULL DEFAULT '{}',"
        "  env_vars TEXT NOT NULL DEFAULT '{}',"
        "  network TEXT NOT NULL DEFAULT '" STORE_NETWORK_DEFAULT "',"
        "  timeline TEXT NOT NULL DEFAULT '[]',"
        "  diagnostic TEXT,"
        "  volume_mounts TEXT NOT NULL DEFAULT '[]',"
        "  workdir TEXT,"
        "  init_pid INTEGER NOT NULL DEFAULT 0,"
        "  init_starttime INTEGER NOT NULL DEFAULT 0,"
        "  exec_n INTEGER NOT NULL DEFAULT 0,"
        "  heartbeat_status TEXT,"
        "  heartbeat_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE INDEX sandboxes_started ON sandboxes(started_at, id);"
        "CREATE INDEX sandboxes_team ON sandboxes(team_id, started_at, id);"
        /* No FK to sandboxes: a deleted sandbox's log is removed by store_log_delete_all(). */
        "CREATE TABLE sandbox_logs ("
        "  sandbox_id TEXT NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  ts INTEGER NOT NULL,"
        "  level TEXT NOT NULL,"
        "  source TEXT NOT NULL,"
        "  message TEXT NOT NULL,"
        "  PRIMARY KEY (sandbox_id, seq)"
        ") WITHOUT ROWID;"
        "CREATE TABLE settings ("
        "  key TEXT PRIMARY KEY NOT NULL,"
        "  value TEXT NOT NULL"
        ");"
        "PRAGMA user_version = 1;",
        /* 1 → 2: the lifecycle loop's next action per sandbox (TTL, stopped retention), set by
         * the manager on every write; the partial index serves MIN() and the due scan. */
        "ALTER TABLE sandboxes ADD COLUMN deadline_at INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX sandboxes_deadline ON sandboxes(deadline_at) WHERE deadline_at > 0;"
        "PRAGMA user_version = 2;",
        /* 2 → 3: the /v1 face (v1-api.md) and volumes (control-plane.md §13.1). Sandboxes get
         * their /v1 lifetime fields (size preset, lifetime and idle durations, last activity,
         * the /v1 egress policy when that API set it last, last change); gone sandboxes leave
         * a tombstone read by the /v1 face for 24 h; volumes belong to a team, one name each. */
        "ALTER TABLE sandboxes ADD COLUMN size TEXT;"
        "ALTER TABLE sandboxes ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE sandboxes ADD COLUMN idle_timeout_ms INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE sandboxes ADD COLUMN last_active_at INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE sandboxes ADD COLUMN egress TEXT;"
        "ALTER TABLE sandboxes ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE sandbox_tombstones ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  team_id TEXT NOT NULL,"
        "  destroyed_at INTEGER NOT NULL,"
        "  record TEXT NOT NULL"
        ");"
        "CREATE INDEX sandbox_tombstones_team ON sandbox_tombstones(team_id, destroyed_at);"
        "CREATE INDEX sandbox_tombstones_age ON sandbox_tombstones(destroyed_at);"
        "CREATE TABLE volumes ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  team_id TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  token TEXT NOT NULL,"
        "  size_mb INTEGER NOT NULL,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  UNIQUE (team_id, name)"
        ");"
        "PRAGMA user_version = 3;",
        /* 3 → 4 (issue 8): who created a sandbox (usage scope "user"), key names and revocation
         * times, keys in more than one team, operator limits, lifecycle events, webhooks and
         * their deliveries, team samples for metrics over time. */
        "ALTER TABLE sandboxes ADD COLUMN key_id TEXT;"
        "CREATE INDEX sandboxes_key ON sandboxes(key_id) WHERE key_id IS NOT NULL;"
        "ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;"
        "CREATE UNIQUE INDEX teams_name ON teams(name);"
        "CREATE TABLE api_key_teams ("
        "  key_id TEXT NOT NULL REFERENCES api_keys(id),"
        "  team_id TEXT NOT NULL REFERENCES teams(id),"
        "  PRIMARY KEY (key_id, team_id)"
        ") WITHOUT ROWID;"
        "CREATE TABLE usage_limits ("
        "  scope TEXT NOT NULL,"
        "  owner_id TEXT NOT NULL,"
        "  metric TEXT NOT NULL,"
        "  value INTEGER NOT NULL,"
        "  PRIMARY KEY (scope, owner_id, metric)"
        ") WITHOUT ROWID;"
        /* body: the SandboxLifecycleEvent as delivered (its bytes are what webhooks sign). */
        "CREATE TABLE lifecycle_events ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  id TEXT NOT NULL UNIQUE,"
        "  type TEXT NOT NULL,"
        "  sandbox_id TEXT NOT NULL,"
        "  team_id TEXT NOT NULL,"
        "  ts INTEGER NOT NULL,"
        "  body TEXT NOT NULL"
        ");"
        "CREATE INDEX lifecycle_events_team ON lifecycle_events(team_id, seq);"
        "CREATE INDEX lifecycle_events_sandbox ON lifecycle_events(team_id, sandbox_id, seq);"
        "CREATE INDEX lifecycle_events_team_ts ON lifecycle_events(team_id, ts);"
        "CREATE INDEX lifecycle_events_ts ON lifecycle_events(ts);"
        "CREATE TABLE webhooks ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  team_id TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  url TEXT NOT NULL,"
        "  secret TEXT NOT NULL,"
        "  enabled INTEGER NOT NULL DEFAULT 1,"
        "  events TEXT NOT NULL DEFAULT '[]',"
        "  has_retry_policy INTEGER NOT NULL DEFAULT 0,"
        "  max_attempts INTEGER NOT NULL DEFAULT 3,"
        "  delays TEXT,"
        "  dead_letter_enabled INTEGER NOT NULL DEFAULT 0,"
        "  dead_letter_url TEXT,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  updated_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE INDEX webhooks_team ON webhooks(team_id, created_at);"
        /* No foreign keys: deliveries outlive their webhook (7 days, like events). */
        "CREATE TABLE webhook_deliveries ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  id TEXT NOT NULL UNIQUE,"
        "  event_id TEXT NOT NULL,"
        "  event_seq INTEGER NOT NULL,"
        "  webhook_id TEXT NOT NULL,"
        "  team_id TEXT NOT NULL,"
        "  sandbox_id TEXT NOT NULL,"
        "  url TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  http_status INTEGER NOT NULL DEFAULT 0,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  max_attempts INTEGER NOT NULL,"
        "  delays TEXT NOT NULL DEFAULT '[10,60]',"
        "  error TEXT,"
        "  dead_letter_url TEXT,"
        "  dead_letter_error TEXT,"
        "  dead_letter INTEGER NOT NULL DEFAULT 0,"
        "  attempt_open INTEGER NOT NULL DEFAULT 0,"
        "  waiting INTEGER NOT NULL DEFAULT 1,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  last_attempt_at INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
        "  delivered_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE INDEX webhook_deliveries_waiting ON webhook_deliveries(next_attempt_at)"
        "  WHERE waiting = 1;"
        "CREATE INDEX webhook_deliveries_line ON webhook_deliveries(webhook_id, sandbox_id,"
        "  event_seq, seq) WHERE waiting = 1;"
        "CREATE INDEX webhook_deliveries_team ON webhook_deliveries(team_id, seq);"
        "CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);"
        "CREATE TABLE team_samples ("
        "  team_id TEXT NOT NULL,"
        "  ts INTEGER NOT NULL,"
        "  concurrent INTEGER NOT NULL,"
        "  starts INTEGER NOT NULL,"
        "  PRIMARY KEY (team_id, ts)"
        ") WITHOUT ROWID;"
        "CREATE INDEX team_samples_ts ON team_samples(ts);"
        "PRAGMA user_version = 4;",
        /* 4 → 5: the build plane (build-plane.md). Template names become unique per team
         * (official ones server-wide), templates gain the fields of §4.1 and §13, and builds,
         * their logs, tags, aliases, uploaded build archives and the layers each build uses
         * get tables of their own. */
        "CREATE TABLE templates_v2 ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  name TEXT," SCHEMA_V1_TEMPLATE_COLUMNS "  updated_at INTEGER NOT NULL DEFAULT 0,"
        "  visibility TEXT NOT NULL DEFAULT 'team',"
        "  created_by TEXT,"
        "  base_template_id TEXT,"
        "  image TEXT,"
        "  dockerfile TEXT,"
        "  port INTEGER NOT NULL DEFAULT 0,"
        "  storage_size_gb INTEGER NOT NULL DEFAULT 0,"
        "  volume_mounts TEXT NOT NULL DEFAULT '[]',"
        "  pinned_build_id TEXT,"
        "  spawn_count INTEGER NOT NULL DEFAULT 0,"
        "  last_spawned_at INTEGER NOT NULL DEFAULT 0,"
        "  generator TEXT,"
        "  build_config TEXT NOT NULL DEFAULT '{}'"
        ");"
        "INSERT INTO templates_v2 (id, name, team_id, official, public, cpu_count, memory_mb,"
        "  disk_size_mb, ttl_seconds, envs, workdir, start_cmd, ready_cmd, layers, binds,"
        "  build_status, build_id, created_at, updated_at, visibility)"
        " SELECT id, name, team_id, official, public, cpu_count, memory_mb, disk_size_mb,"
        "  ttl_seconds, envs, workdir, start_cmd, ready_cmd, layers, binds, build_status, build_id,"
        "  created_at, updated_at, CASE official WHEN 1 THEN 'official' ELSE 'team' END"
        " FROM templates;"
        "DROP TABLE templates;"
        "ALTER TABLE templates_v2 RENAME TO templates;"
        "CREATE INDEX templates_team ON templates(team_id);"
        "CREATE UNIQUE INDEX templates_team_name ON templates(team_id, name) WHERE team_id IS NOT "
        "NULL;"
        "CREATE UNIQUE INDEX templates_official_name ON templates(name) WHERE team_id IS NULL;"
        "CREATE TABLE builds ("
        "  template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,"
        "  id TEXT NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  status TEXT NOT NULL,"
        "  triggered INTEGER NOT NULL DEFAULT 0,"
        "  error_message TEXT NOT NULL DEFAULT '',"
        "  error_step TEXT,"
        "  request TEXT,"
        "  source_kind TEXT,"
        "  tags TEXT NOT NULL DEFAULT '[]',"
        "  layers TEXT NOT NULL DEFAULT '[]',"
        "  config TEXT NOT NULL DEFAULT '{}',"
        "  cpu_count INTEGER NOT NULL DEFAULT 0,"
        "  memory_mb INTEGER NOT NULL DEFAULT 0,"
        "  disk_size_mb INTEGER NOT NULL DEFAULT 0,"
        "  envd_version TEXT NOT NULL DEFAULT '',"
        "  created_by TEXT,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  updated_at INTEGER NOT NULL DEFAULT 0,"
        "  started_at INTEGER NOT NULL DEFAULT 0,"
        "  finished_at INTEGER NOT NULL DEFAULT 0,"
        "  log_count INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (template_id, id)"
        ");"
        "CREATE UNIQUE INDEX builds_seq ON builds(template_id, seq);"
        "CREATE INDEX builds_status ON builds(status);"
        "CREATE TABLE build_logs ("
        "  template_id TEXT NOT NULL,"
        "  build_id TEXT NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  ts INTEGER NOT NULL,"
        "  level TEXT NOT NULL,"
        "  step TEXT NOT NULL,"
        "  message TEXT NOT NULL,"
        "  PRIMARY KEY (template_id, build_id, seq),"
        "  FOREIGN KEY (template_id, build_id) REFERENCES builds(template_id, id) ON DELETE CASCADE"
        ") WITHOUT ROWID;"
        "CREATE TABLE template_tags ("
        "  template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,"
        "  tag TEXT NOT NULL,"
        "  build_id TEXT NOT NULL,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (template_id, tag)"
        ") WITHOUT ROWID;"
        "CREATE TABLE template_aliases ("
        "  alias TEXT PRIMARY KEY NOT NULL,"
        "  template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,"
        "  created_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE INDEX template_aliases_template ON template_aliases(template_id);"
        "CREATE TABLE build_files ("
        "  team_id TEXT NOT NULL,"
        "  hash TEXT NOT NULL,"
        "  size INTEGER NOT NULL DEFAULT 0,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  last_used_at INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (team_id, hash)"
        ") WITHOUT ROWID;"
        /* Which layers a build holds (its stack, or the layers a running build made so far):
         * layer GC keeps exactly the keys listed here. */
        "CREATE TABLE build_layers ("
        "  template_id TEXT NOT NULL,"
        "  build_id TEXT NOT NULL,"
        "  layer_key TEXT NOT NULL,"
        "  PRIMARY KEY (template_id, build_id, layer_key),"
        "  FOREIGN KEY (template_id, build_id) REFERENCES builds(template_id, id) ON DELETE CASCADE"
        ") WITHOUT ROWID;"
        "CREATE INDEX build_layers_key ON build_layers(layer_key);"
        "PRAGMA user_version = 5;",
        /* 5 → 6: the host uid block of each sandbox's user namespace (store/uidrange.c). No
         * foreign key: a range outlives its sandbox row until the engine has cleaned up. */
        "CREATE TABLE uid_ranges ("
        "  idx INTEGER PRIMARY KEY NOT NULL,"
        "  sandbox_id TEXT NOT NULL UNIQUE,"
        "  allocated_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "PRAGMA user_version = 6;",
        /* 6 → 7: the E2B face's default user of a sandbox (its build's last USER). */
        "ALTER TABLE sandboxes ADD COLUMN e2b_user TEXT;"
        "PRAGMA user_version = 7;",
};

struct store *store_lock(struct store *s)
{
        int r = pthread_mutex_lock(&s->lock);
        if (r != 0)
                abort(); /* only EINVAL/EDEADLK: a programming error */
        return s;
}

void store_unlockp(struct store **s)
{
        if (*s)
                (void)pthread_mutex_unlock(&(*s)->lock);
}

/* Runs a cached statement that returns no rows. */
static int store_exec_stmt(struct store *s, enum store_stmt_id id, const char *sql,
                           struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(s, id, sql, err);
        if (!st)
                return -EIO;
        int rc = store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "%s", sql);
        return 0;
}

int store_begin(struct store *s, struct cove_err **err)
{
        return store_exec_stmt(s, STMT_BEGIN, "BEGIN IMMEDIATE", err);
}

int store_commit(struct store *s, struct cove_err **err)
{
        int r = store_exec_stmt(s, STMT_COMMIT, "COMMIT", err);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        if (s->notify_pending && s->event_notify_fd >= 0) {
                uint64_t one = 1;
                /* A full counter (EAGAIN) already wakes the reader. */
                (void)!write(s->event_notify_fd, &one, sizeof(one));
        }
        s->notify_pending = false;
        return r;
}

void store_set_sandbox_write_hook(struct store *s, store_sandbox_write_fn fn, void *ud)
{
        STORE_LOCK(s);
        s->sandbox_hook = fn;
        s->sandbox_hook_ud = ud;
}

void store_set_event_notify(struct store *s, int eventfd)
{
        STORE_LOCK(s);
        s->event_notify_fd = eventfd;
}

void store_rollback(struct store *s)
{
        s->notify_pending = false;
        if (sqlite3_get_autocommit(s->db))
                return;
        /* Not through store_step(): an injected failure must not leave a transaction open. */
        sqlite3_stmt *st = store_stmt(s, STMT_ROLLBACK, "ROLLBACK", NULL);
        if (st) {
                (void)sqlite3_step(st);
                (void)sqlite3_reset(st);
        }
        if (!sqlite3_get_autocommit(s->db))
                (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- open / close ---- */

static int exec_sql(sqlite3 *db, const char *sql, const char *what, struct cove_err **err)
{
        char *emsg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &emsg);
        if (rc != SQLITE_OK) {
                int r = cove_err_set(err, (rc & 0xff) == SQLITE_BUSY ? EAGAIN : EIO, "%s: %s", what,
                                     emsg ? emsg : sqlite3_errstr(rc));
                sqlite3_free(emsg);
                return r;
        }
        return 0;
}

static int read_user_version(sqlite3 *db, int64_t *ret, struct cove_err **err)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        *ret = sqlite3_column_int64(st, 0);
                        rc = SQLITE_OK;
                }
        }
        if (rc != SQLITE_OK) {
                int r = cove_err_set(err, EIO, "read schema version: %s", sqlite3_errmsg(db));
                sqlite3_finalize(st);
                return r;
        }
        sqlite3_finalize(st);
        return 0;
}

static int migrate(sqlite3 *db, struct cove_err **err)
{
        int64_t v = 0;
        int r;

        r = exec_sql(db, "BEGIN IMMEDIATE", "begin migration", err);
        if (r < 0)
                return r;
        r = read_user_version(db, &v, err);
        if (r < 0)
                goto fail;
        if (v < 0 || v > (int64_t)ARRAY_SIZE(migrations)) {
                r = cove_err_set(err, EPROTO,
                                 "database schema version %" PRId64
                                 " is newer than this build (%zu)",
                                 v, ARRAY_SIZE(migrations));
                goto fail;
        }
        for (size_t i = (size_t)v; i < ARRAY_SIZE(migrations); i++) {
                char what[64];
                (void)snprintf(what, sizeof(what), "migrate schema to version %zu", i + 1);
                r = exec_sql(db, migrations[i], what, err);
                if (r < 0)
                        goto fail;
        }
        r = exec_sql(db, "COMMIT", "commit migration", err);
        if (r < 0)
                goto fail;
        return 0;
fail:
        if (!sqlite3_get_autocommit(db))
                (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

/* Creates the file 0600 before SQLite does (it would honour the umask); the -wal and -shm
 * files SQLite creates inherit the main file's mode. */
static int precreate(const char *path, struct cove_err **err)
{
        if (!path[0] || streq(path, ":memory:"))
                return 0;
        cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return cove_err_set(err, errno, "open database '%s': %m", path);
        if (fchmod(fd, 0600) < 0)
                return cove_err_set(err, errno, "chmod database '%s': %m", path);
        return 0;
}

static void store_free(struct store *s)
{
        for (size_t i = 0; i < _STMT_MAX; i++)
                (void)sqlite3_finalize(s->stmts[i]);
        (void)sqlite3_close(s->db);
        (void)pthread_mutex_destroy(&s->lock);
        free(s);
}

int store_open(const char *path, struct store **ret, struct cove_err **err)
{
        struct store *s;
        int rc, r;

        r = precreate(path, err);
        if (r < 0)
                return r;

        s = xzalloc(sizeof(*s));
        s->event_notify_fd = -1;
        s->log_max = 10000;
        r = pthread_mutex_init(&s->lock, NULL);
        if (r != 0) {
                free(s);
                return cove_err_set(err, r, "init store lock: %m");
        }

        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE,
                             NULL);
        if (rc != SQLITE_OK) {
                r = cove_err_set(err, EIO, "open database '%s': %s", path,
                                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                store_free(s);
                return r;
        }
        (void)sqlite3_extended_result_codes(s->db, 1);
        (void)sqlite3_busy_timeout(s->db, 5000);

        /* journal_mode returns a row; sqlite3_exec discards it. ":memory:" stays "memory". */
        r = exec_sql(s->db, "PRAGMA journal_mode=WAL", "set WAL mode", err);
        if (r >= 0)
                r = exec_sql(s->db, "PRAGMA synchronous=NORMAL", "set synchronous mode", err);
        if (r >= 0)
                r = exec_sql(s->db, "PRAGMA foreign_keys=ON", "enable foreign keys", err);
        if (r >= 0)
                r = migrate(s->db, err);
        if (r < 0) {
                store_free(s);
                return cove_err_wrap(err, "open database '%s'", path);
        }

        const char *fail = getenv("COVE_STORE_FAIL_STEP");
        if (fail && fail[0]) {
                int64_t n;
                if (safe_atoi64(fail, &n) == 0 && n > 0)
                        s->fail_step = n;
        }

        *ret = s;
        return 0;
}

struct store *store_close(struct store *s)
{
        if (s)
                store_free(s);
        return NULL;
}

/* ---- settings ---- */

int store_setting_get(struct store *s, const char *key, char **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_SETTING_GET, "SELECT value FROM settings WHERE key = ?", err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, key);
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "get setting '%s'", key);
        rc = store_step(s, st);
        if (rc == SQLITE_DONE)
                return cove_err_set(err, ENOENT, "setting '%s' not found", key);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "get setting '%s'", key);
        *ret = store_col_text(st, 0);
        if (!*ret)
                *ret = xstrdup("");
        return 0;
}

int store_setting_set(struct store *s, const char *key, const char *value, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_SETTING_SET,
                           "INSERT INTO settings (key, value) VALUES (?, ?)"
                           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, key);
        if (rc == SQLITE_OK)
                rc = store_bind_text(st, 2, value ? value : "");
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "set setting '%s'", key);
        return 0;
}
