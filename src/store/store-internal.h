/* SPDX-License-Identifier: MIT */
/*
 * store-internal.h — shared plumbing of the store/ files; never included outside store/.
 *
 * Locking: every public function starts with STORE_LOCK(s) as its *first* declaration, so the
 * lock is released last, after the cleanup_stmt resets of the statements it used (cleanups
 * run in reverse declaration order). Internal helpers assume the lock is held.
 *
 * Statements: store_stmt() returns the cached statement for an id, preparing it from sql the
 * first time. Declare it `cleanup_stmt sqlite3_stmt *st = ...;`: it is reset and its bindings
 * cleared on scope exit (the statement stays cached; store_close() finalizes it).
 *
 * Every sqlite3_step goes through store_step(), which implements failure injection:
 * COVE_STORE_FAIL_STEP=N (read at open) makes the N-th step after open fail with SQLITE_IOERR.
 */
#pragma once

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>

enum store_stmt_id {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_SETTING_GET,
        STMT_SETTING_SET,
        STMT_TEAM_ENSURE,
        STMT_TEAM_NAME,
        STMT_APIKEY_INSERT,
        STMT_APIKEY_LOOKUP,
        STMT_APIKEY_COUNT,
        STMT_TEMPLATE_INSERT,
        STMT_TEMPLATE_UPDATE,
        STMT_TEMPLATE_GET,
        STMT_TEMPLATE_RESOLVE,
        STMT_TEMPLATE_DELETE,
        STMT_TEMPLATE_LIST,
        STMT_TEMPLATE_LIST_TEAM,
        STMT_SANDBOX_INSERT,
        STMT_SANDBOX_UPDATE,
        STMT_SANDBOX_GET,
        STMT_SANDBOX_DELETE,
        STMT_SANDBOX_LIST,
        STMT_SANDBOX_LIST_TEAM,
        STMT_SANDBOX_COUNT_LIVE,
        STMT_SANDBOX_COUNT_STATES,
        STMT_SANDBOX_NEXT_DEADLINE,
        STMT_SANDBOX_DUE,
        STMT_LOG_MAX_SEQ,
        STMT_LOG_INSERT,
        STMT_LOG_TRIM,
        STMT_LOG_LIST,
        STMT_LOG_DELETE_ALL,
        STMT_TOMBSTONE_INSERT,
        STMT_TOMBSTONE_PURGE,
        STMT_TOMBSTONE_GET,
        STMT_TOMBSTONE_LIST,
        STMT_TOMBSTONE_LIST_TEAM,
        STMT_VOLUME_INSERT,
        STMT_VOLUME_GET,
        STMT_VOLUME_GET_TEAM,
        STMT_VOLUME_GET_NAME,
        STMT_VOLUME_LIST,
        STMT_VOLUME_LIST_TEAM,
        STMT_VOLUME_MOUNTED_BY,
        STMT_VOLUME_DELETE,
        /* issue 8: events, webhooks, tenancy, usage */
        STMT_EVENT_INSERT,
        STMT_EVENT_FANOUT,
        STMT_EVENT_LIST_ASC,
        STMT_EVENT_LIST_DESC,
        STMT_EVENT_PRUNE,
        STMT_EVENT_BODY,
        STMT_WEBHOOK_COUNT,
        STMT_WEBHOOK_INSERT,
        STMT_WEBHOOK_GET,
        STMT_WEBHOOK_LIST,
        STMT_WEBHOOK_UPDATE,
        STMT_WEBHOOK_DELETE,
        STMT_WEBHOOK_DELETE_DELIVERIES,
        STMT_DELIVERY_PRUNE,
        STMT_DELIVERY_LIST_ASC,
        STMT_DELIVERY_LIST_DESC,
        STMT_DELIVERY_GET,
        STMT_DELIVERY_REPLAY,
        STMT_DELIVERY_DUE,
        STMT_DELIVERY_NEXT_DUE,
        STMT_DELIVERY_COUNT_WAITING,
        STMT_DELIVERY_WRITE,
        STMT_DELIVERY_RECOVER,
        STMT_TEAM_CREATE,
        STMT_TEAM_GET,
        STMT_TEAM_LIST,
        STMT_APIKEY_SET_NAME,
        STMT_APIKEY_LIST,
        STMT_APIKEY_GET,
        STMT_APIKEY_REVOKE,
        STMT_APIKEY_ADD_TEAM,
        STMT_APIKEY_TEAMS,
        STMT_SANDBOX_USAGE,
        STMT_TEMPLATE_COUNT,
        STMT_LIMITS_GET,
        STMT_LIMITS_SET,
        STMT_LIMITS_DELETE,
        STMT_TEAM_SAMPLE,
        STMT_TEAM_SAMPLES,
        STMT_TEAM_SAMPLES_PRUNE,
        STMT_LOG_PRUNE_ORPHANS,
        STMT_LOG_QUERY_FWD,
        STMT_LOG_QUERY_BWD,
        STMT_LOG_STATS,
        STMT_TEMPLATE_BY_NAME,
        STMT_TEMPLATE_BY_OFFICIAL_NAME,
        STMT_TEMPLATE_SPAWNED,
        STMT_BUILD_INSERT,
        STMT_BUILD_NEXT_SEQ,
        STMT_BUILD_UPDATE,
        STMT_BUILD_GET,
        STMT_BUILD_COUNT,
        STMT_BUILD_LIST,
        STMT_BUILD_LIST_BY_STATUS,
        STMT_BUILD_LOG_COUNT,
        STMT_BUILD_LOG_INSERT,
        STMT_BUILD_LOG_SET_COUNT,
        STMT_BUILD_LOG_FORWARD,
        STMT_BUILD_LOG_BACKWARD,
        STMT_TAG_SET,
        STMT_TAG_DELETE,
        STMT_TAG_GET,
        STMT_TAG_LIST,
        STMT_ALIAS_INSERT,
        STMT_ALIAS_GET,
        STMT_ALIAS_LIST,
        STMT_FILE_PUT,
        STMT_FILE_HAS,
        STMT_FILE_TOUCH,
        STMT_FILE_UNUSED,
        STMT_FILE_DELETE,
        STMT_BUILD_LAYER_ADD,
        STMT_LAYER_KEYS,
        STMT_BUILD_ACTIVE_TEAM,
        STMT_BUILD_ACTIVE_KEY,
        STMT_UIDRANGE_GET,
        STMT_UIDRANGE_FREE,
        STMT_UIDRANGE_INSERT,
        STMT_UIDRANGE_DELETE,
        STMT_UIDRANGE_ORPHANS,
        STMT_UIDRANGE_COUNT,
        _STMT_MAX,
};

struct store {
        sqlite3 *db;
        pthread_mutex_t lock;
        sqlite3_stmt *stmts[_STMT_MAX];
        int64_t fail_step;       /* COVE_STORE_FAIL_STEP; 0 = off */
        int64_t step_count;      /* steps since open (only counted when fail_step > 0) */
        bool injected;           /* the last failing step was injected */
        int event_notify_fd;     /* store_set_event_notify(); -1 = none */
        bool notify_pending;     /* the open transaction wrote an event */
        int64_t log_max;         /* log entries kept per sandbox */
        uint64_t sandbox_writes; /* writes of sandbox rows since open */
        store_sandbox_write_fn sandbox_hook; /* store_set_sandbox_write_hook(), or NULL */
        void *sandbox_hook_ud;
        uint64_t key_writes; /* writes of keys and their teams since open (atomic) */
};

/* apikey.c: counts a write of api_keys or api_key_teams (store_apikey_generation()); called
 * with the lock held, after the statement ran. */
void store_keys_written(struct store *s);

/* db.c: the lock */
struct store *store_lock(struct store *s);
void store_unlockp(struct store **s);
#define STORE_LOCK(s)                                                                              \
        __attribute__((cleanup(store_unlockp))) struct store *_store_locked_ = store_lock(s)

/* ---- stmt.c: statements, errors, parameters, columns, rows ---- */

void store_stmt_resetp(sqlite3_stmt **st);
#define cleanup_stmt __attribute__((cleanup(store_stmt_resetp)))

/* NULL (and err set) when preparing fails. */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id, const char *sql,
                         struct cove_err **err);
int store_step(struct store *s, sqlite3_stmt *st);

/* Maps a failed rc: UNIQUE/PRIMARYKEY → -EEXIST, NOTNULL/CHECK → -EINVAL, BUSY/LOCKED →
 * -EAGAIN, else -EIO; the message is "<ctx>: <sqlite3_errmsg>". */
int store_sql_error(struct store *s, int rc, struct cove_err **err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
bool store_rc_is_unique(int rc);
/* After the step (rc) of a statement reading the one record of a kind named id: 0 with a row,
 * -ENOENT "<kind> '<id>' not found" without, else store_sql_error() "get <kind> '<id>'". */
int store_one_row(struct store *s, int rc, const char *kind, const char *id, struct cove_err **err);

/* event.c: inserts ev (assigning ev->seq) and one pending delivery per enabled webhook of its
 * team that subscribes to its type. Call inside a transaction (store_begin()). */
int store_event_insert_locked(struct store *s, const struct event_rec *ev, struct cove_err **err);

/* log.c: appends one entry of a sandbox's log (and trims it). Inside a transaction. */
int store_log_append_locked(struct store *s, const char *sandbox_id, const char *level,
                            const char *source, const char *message, struct cove_err **err);
/* build.c: spawn_count + 1, last_spawned_at = now_ms of template id. Lock held. */
int store_template_spawned_locked(struct store *s, const char *id, int64_t now_ms,
                                  struct cove_err **err);

/* sandbox.c: inserts sb and its pending writes (event, log entries, template spawn; consumed
 * once written) in one transaction. Lock held. */
int store_sandbox_insert_locked(struct store *s, struct sandbox_rec *sb, struct cove_err **err);

/* db.c: BEGIN IMMEDIATE / COMMIT; store_rollback() never fails and is a no-op outside a
 * transaction. */
int store_begin(struct store *s, struct cove_err **err);
int store_commit(struct store *s, struct cove_err **err);
void store_rollback(struct store *s);

/* ---- stmt.c, continued ---- */

/* Binding helpers: return an SQLite rc (SQLITE_OK on success). */
int store_bind_text(sqlite3_stmt *st, int i, const char *v); /* NULL → SQL NULL */
int store_bind_i64(sqlite3_stmt *st, int i, int64_t v);
/* v == NULL → dflt as text (or SQL NULL when dflt is NULL too); else compact JSON text. */
int store_bind_json(sqlite3_stmt *st, int i, const json_t *v, const char *dflt);

/* One parameter of a statement, made with STORE_TEXT(), STORE_I64() or STORE_JSON() (which bind
 * as the helpers above do). */
enum store_arg_kind {
        STORE_ARG_TEXT,
        STORE_ARG_I64,
        STORE_ARG_JSON,
};
struct store_arg {
        enum store_arg_kind kind;
        const char *text; /* TEXT: the value (borrowed); JSON: the default text */
        int64_t i64;
        const json_t *json; /* borrowed */
};
#define STORE_TEXT(v) ((struct store_arg){ .kind = STORE_ARG_TEXT, .text = (v) })
#define STORE_I64(v)  ((struct store_arg){ .kind = STORE_ARG_I64, .i64 = (v) })
#define STORE_JSON(v, dflt)                                                                        \
        ((struct store_arg){ .kind = STORE_ARG_JSON, .json = (v), .text = (dflt) })

/* Binds args[0], args[1], … to ?1, ?2, …, stopping at the first failure: its rc, or SQLITE_OK. */
int store_bind_args(sqlite3_stmt *st, const struct store_arg *args, size_t n);
/* store_bind_args(), then store_step(): the step's rc (SQLITE_ROW, SQLITE_DONE, an error) or the
 * failed binding's. SQLITE_ERROR when st is NULL (store_stmt() failed; err is set). */
int store_run_args(struct store *s, sqlite3_stmt *st, const struct store_arg *args, size_t n);
/* STORE_BIND(st, STORE_TEXT(id), STORE_I64(now)) binds ?1 and ?2; STORE_RUN(s, st, …) also steps.
 * At least one argument. */
#define STORE_ARGS(...)                                                                            \
        (const struct store_arg[]){ __VA_ARGS__ },                                                 \
                sizeof((const struct store_arg[]){ __VA_ARGS__ }) / sizeof(struct store_arg)
#define STORE_BIND(st, ...)   store_bind_args((st), STORE_ARGS(__VA_ARGS__))
#define STORE_RUN(s, st, ...) store_run_args((s), (st), STORE_ARGS(__VA_ARGS__))

/* Column helpers. */
char *store_col_text(sqlite3_stmt *st, int i); /* owned copy or NULL for SQL NULL */
int64_t store_col_i64(sqlite3_stmt *st, int i);
/* Parses a JSON column: SQL NULL → parse of dflt (NULL when dflt is NULL). Corrupt text → -EIO. */
int store_col_json(sqlite3_stmt *st, int i, const char *dflt, json_t **ret, struct cove_err **err);

/* Steps st to the end, turning each row into a record with row(); returns a NULL-terminated
 * array in *ret. On failure everything collected so far is released with free_one().
 * `what` names the operation in error messages ("list sandboxes"). */
typedef int (*store_row_fn)(sqlite3_stmt *st, void **ret, struct cove_err **err);
int store_collect_rows(struct store *s, sqlite3_stmt *st, store_row_fn row,
                       void (*free_one)(void *), const char *what, void ***ret,
                       struct cove_err **err);
/* For a record type with `static int NAME_from_row(sqlite3_stmt *st, TYPE **ret, struct
 * cove_err **err)` and its `void free_fn(TYPE *)`: defines `static int NAME_collect(struct store
 * *s, sqlite3_stmt *st, const char *what, TYPE ***ret, struct cove_err **err)`,
 * store_collect_rows() for that type (a NULL-terminated array the caller frees). */
#define STORE_DEFINE_COLLECT(name, type, free_fn)                                                  \
        static int name##_row_any(sqlite3_stmt *st, void **ret, struct cove_err **err)             \
        {                                                                                          \
                type *rec = NULL;                                                                  \
                int r = name##_from_row(st, &rec, err);                                            \
                if (r >= 0)                                                                        \
                        *ret = rec;                                                                \
                return r;                                                                          \
        }                                                                                          \
        static void name##_free_any(void *p)                                                       \
        {                                                                                          \
                free_fn(p);                                                                        \
        }                                                                                          \
        static int name##_collect(struct store *s, sqlite3_stmt *st, const char *what,             \
                                  type ***ret, struct cove_err **err)                              \
        {                                                                                          \
                void **v = NULL;                                                                   \
                int r = store_collect_rows(s, st, name##_row_any, name##_free_any, what, &v, err); \
                if (r < 0)                                                                         \
                        return r;                                                                  \
                *ret = (type **)v;                                                                 \
                return 0;                                                                          \
        }

/* Defines `void list_free(TYPE **v)` (declared in store.h): each record through rec_free, then
 * the array; NULL is fine. */
#define STORE_DEFINE_LIST_FREE(list_free, type, rec_free)                                          \
        void list_free(type **v)                                                                   \
        {                                                                                          \
                if (!v)                                                                            \
                        return;                                                                    \
                for (type **p = v; *p; p++)                                                        \
                        rec_free(*p);                                                              \
                free(v);                                                                           \
        }

/* sandbox.c, for tombstone.c: one row, with the lock held. */
int sandbox_get_locked(struct store *s, const char *id, struct sandbox_rec **ret,
                       struct cove_err **err);
int sandbox_delete_locked(struct store *s, const char *id, struct cove_err **err);
/* After every statement that wrote sandbox row id (even inside a transaction that may roll
 * back: a cache that drops a row too often is only slower). */
void sandbox_written_locked(struct store *s, const char *id);

#define STORE_NETWORK_DEFAULT                                                                      \
        "{\"allowPublicTraffic\":true,\"allowInternetAccess\":true,\"allowOut\":[],\"denyOut\":[]" \
        "}"
