/* SPDX-License-Identifier: MIT */
/*
 * store.h — the SQLite state store: the single source of truth of coved. A restart rebuilds
 * every in-memory structure from it. Only store/ includes <sqlite3.h>.
 *
 * Concurrency: one `struct store` holds one connection guarded by an internal mutex; every
 * function is safe to call from any thread. WAL mode, busy timeout 5 s, foreign keys on,
 * schema versioned by PRAGMA user_version with ordered migrations applied in one transaction.
 *
 * Errors: -errno + err (SQLITE_CONSTRAINT_UNIQUE → -EEXIST, SQLITE_BUSY → -EAGAIN, not found →
 * -ENOENT with a message like "sandbox 'x' not found", anything else -EIO with sqlite3_errmsg).
 *
 * Records: plain structs, every string owned by the record, freed by the *_free() function.
 * JSON-valued columns are jansson values (owned references) so callers never re-parse text.
 * Times are Unix milliseconds (int64); 0 means "unset".
 */
#pragma once

#include "lib/err.h"
#include "lib/sandbox_state.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct store;

int store_open(const char *path, struct store **ret, struct cove_err **err);
struct store *store_close(struct store *s);

/* ---- teams and API keys (spec README §2) ---- */

struct apikey_rec {
        char *id;      /* "key_" + 16 hex; never the key itself */
        char *team_id; /* "team_default" … */
        char *role;    /* "admin" | "user" */
        char *last4;   /* last 4 chars of the key, for masking */
        int64_t created_at;
        char *name;         /* operator's label, "" when none */
        int64_t revoked_at; /* ms, 0 = valid */
};
void apikey_rec_free(struct apikey_rec *k);

/* Creates team_default ("default") if missing. */
int store_team_ensure_default(struct store *s, struct cove_err **err);
/* Name of a team; -ENOENT when unknown. */
int store_team_get_name(struct store *s, const char *team_id, char **ret_name,
                        struct cove_err **err);
/* Stores SHA-256(key) (hex) for a new key; -EEXIST if that key already exists. */
int store_apikey_insert(struct store *s, const char *key, const char *team_id, const char *role,
                        struct cove_err **err);
/* Looks a presented key up by its SHA-256; -ENOENT when unknown or revoked. */
int store_apikey_lookup(struct store *s, const char *key, struct apikey_rec **ret,
                        struct cove_err **err);
/* SHA-256 of a presented key, the form lookups use (raw bytes). */
#define STORE_APIKEY_HASH_LEN 32
int store_apikey_hash(const char *key, unsigned char out[STORE_APIKEY_HASH_LEN],
                      struct cove_err **err);
/* store_apikey_lookup() by that hash. */
int store_apikey_lookup_hash(struct store *s, const unsigned char hash[STORE_APIKEY_HASH_LEN],
                             struct apikey_rec **ret, struct cove_err **err);
/* The number of writes of API keys and of their teams (insert, rename, revoke, team added)
 * since the store was opened. A writer counts its write before it releases the store, so a
 * cache of lookups made after reading generation g holds what the store holds as long as the
 * generation is still g (http/auth.c's verified-key cache). */
uint64_t store_apikey_generation(struct store *s);
/* Number of non-revoked keys. */
int store_apikey_count(struct store *s, int64_t *ret, struct cove_err **err);

/* ---- templates ---- */

struct template_rec {
        char *id;      /* "tpl-…" */
        char *name;    /* "base", "code-interpreter", user names; resolvable */
        char *team_id; /* owner team; NULL for official templates */
        bool official;
        bool public_;
        int64_t cpu_count;
        int64_t memory_mb;
        int64_t disk_size_mb;
        int64_t ttl_seconds;
        json_t *envs;       /* object string→string */
        char *workdir;      /* may be NULL */
        char *start_cmd;    /* may be NULL */
        char *ready_cmd;    /* may be NULL */
        json_t *layers;     /* array of absolute host dirs, topmost first */
        json_t *binds;      /* array of {source, target, readonly} */
        char *build_status; /* "ready" | "building" | "error" | "waiting" */
        char *build_id;     /* the current build (build-plane.md §2) */
        int64_t created_at;
        int64_t updated_at;
        /* build plane (schema 2) */
        char *visibility;       /* "personal" | "team" | "official" */
        char *created_by;       /* API key ID; NULL for official templates */
        char *base_template_id; /* may be NULL */
        char *image;            /* stored source image, may be NULL */
        char *dockerfile;       /* stored Dockerfile, may be NULL */
        int64_t port;
        int64_t storage_size_gb;
        json_t *volume_mounts; /* array of {name, path} */
        char *pinned_build_id; /* rollback pin (§10), may be NULL */
        int64_t spawn_count;
        int64_t last_spawned_at;
        char *generator;      /* official templates: version of what made them, may be NULL */
        json_t *build_config; /* what the current build gives sandboxes: {env: ["K=V"…],
                               * workdir?, startCmd?, readyCmd?, port?} */
};
void template_rec_free(struct template_rec *t);

int store_template_insert(struct store *s, const struct template_rec *t, struct cove_err **err);
int store_template_get(struct store *s, const char *id, struct template_rec **ret,
                       struct cove_err **err);
/* Resolves an ID or a name: -ENOENT "template '<ref>' not found". */
int store_template_resolve(struct store *s, const char *ref, struct template_rec **ret,
                           struct cove_err **err);

/* ---- sandboxes ---- */

typedef void (*store_sandbox_write_fn)(void *ud, const char *id, uint64_t seq);

struct sandbox_rec {
        char *id;
        char *team_id;
        char *template_id;
        char *alias;              /* may be NULL */
        enum sandbox_state state; /* stored as its string */
        char *access_token;       /* envdAccessToken, 43 chars */
        int64_t created_seq;  /* monotonically increasing insert order (list ordering tiebreak) */
        int64_t started_at;   /* ms */
        int64_t end_at;       /* ms */
        int64_t activated_at; /* ms, 0 = never */
        int64_t stopped_at;   /* ms it stopped or paused, 0 = running or starting */
        int64_t paused_remaining_ms; /* remaining lifetime recorded at pause */
        int64_t cpu_count, memory_mb, disk_size_mb;
        bool auto_pause; /* lifecycle.onTimeout = pause */
        bool auto_resume;
        json_t *metadata;       /* object string→string */
        json_t *env_vars;       /* object string→string: template envs + envVars + /configure */
        json_t *network;        /* SandboxNetworkPolicy, all four keys */
        json_t *timeline;       /* array of SandboxTimelineEvent, oldest first, ≤ 50 */
        json_t *diagnostic;     /* object or NULL */
        json_t *volume_mounts;  /* array of {name, path} */
        char *workdir;          /* default working directory, may be NULL */
        int64_t init_pid;       /* host pid of cove-init, 0 = none */
        int64_t init_starttime; /* /proc/<pid>/stat field 22 */
        int64_t exec_n;         /* resume counter for sandboxExecutionId */
        char *heartbeat_status; /* may be NULL */
        int64_t heartbeat_at;
        int64_t deadline_at; /* ms of the lifecycle loop's next action on it, 0 = none */
        /* The /v1 face (v1-api.md §3.1). */
        char *size;              /* size preset given at create, NULL: template resources */
        int64_t timeout_ms;      /* lifetime duration last set (create, keepalive, timeout) */
        int64_t idle_timeout_ms; /* > 0: suspended after this long without activity (§6) */
        int64_t last_active_at;  /* ms of the last activity (§6) */
        json_t *egress;          /* the /v1 EgressPolicy when that API set it last, or NULL */
        int64_t updated_at;      /* ms of the last change of the row */
        int64_t destroyed_at;    /* tombstones only (not a column): when it went */
        uint64_t read_seq;       /* not a column: the store's count of sandbox row writes when this
                                  * row was read by store_sandbox_get() (a cache's staleness check) */
        char *key_id;            /* the API key that created it (usage scope "user"), may be NULL */
        char *e2b_user;          /* the E2B face's default user (e2b.md §4.2): the last USER of a
                                  * build made through the E2B face, NULL otherwise */
        /* Not a column: a lifecycle event to write together with this change of the row, in the
         * same transaction (store_sandbox_insert*(), store_sandbox_modify()); owned, consumed
         * (freed and reset) by the write. */
        struct event_rec *event;
        /* Not columns either, written and consumed the same way: sandbox log entries
         * (sandbox_rec_log()) and a spawn of the template spawned_template_id (its spawn_count
         * and last_spawned_at, as store_template_spawned()). One create is then one or two
         * transactions instead of one per record (docs/decisions.md, "One transaction per
         * create"). */
        struct sandbox_log_pending *logs;
        char *spawned_template_id;
};
void sandbox_rec_free(struct sandbox_rec *sb);
/* A deep copy (strings and JSON values copied; the pending event, log entries and spawn are
 * not). */
struct sandbox_rec *sandbox_rec_dup(const struct sandbox_rec *sb);
/* Queues a log entry (store_log_append()'s arguments, copied) on sb, to be written by the
 * next store_sandbox_insert*() or store_sandbox_modify() of it, in the same transaction as
 * the row. Entries keep their order. */
void sandbox_rec_log(struct sandbox_rec *sb, const char *level, const char *source,
                     const char *message);

/* Inserts a new sandbox (created_seq is assigned by the store). -EEXIST on ID clash. */
int store_sandbox_insert(struct store *s, struct sandbox_rec *sb, struct cove_err **err);
/* Replaces every mutable column of an existing sandbox with sb's values. -ENOENT if gone. */
int store_sandbox_update(struct store *s, const struct sandbox_rec *sb, struct cove_err **err);
/* -ENOENT "sandbox '<id>' not found" when missing. */
int store_sandbox_get(struct store *s, const char *id, struct sandbox_rec **ret,
                      struct cove_err **err);
int store_sandbox_delete(struct store *s, const char *id, struct cove_err **err);

/* Inserts like store_sandbox_insert(), unless max_live > 0 sandboxes are starting or running
 * already: then -EUSERS and nothing is written. The count and the insert are one step, so
 * concurrent creates cannot overshoot. */
int store_sandbox_insert_capped(struct store *s, struct sandbox_rec *sb, int64_t max_live,
                                struct cove_err **err);
/* Read-modify-write of one row as one step: loads the row, calls fn(sb, ud, err) on it and,
 * when fn returns > 0, writes every mutable column back. fn < 0 aborts (its value is
 * returned, nothing written); 0 writes nothing. fn runs under the store's lock: it must only
 * change the record (no I/O, no store calls). *ret (optional) is the record as it ends,
 * owned by the caller. -ENOENT when the row is gone. */
typedef int (*store_sandbox_modify_fn)(struct sandbox_rec *sb, void *ud, struct cove_err **err);
int store_sandbox_modify(struct store *s, const char *id, store_sandbox_modify_fn fn, void *ud,
                         struct sandbox_rec **ret, struct cove_err **err);
/* Sandboxes per state (without decoding rows). */
int store_sandbox_count_states(struct store *s, int64_t counts[_SANDBOX_STATE_MAX],
                               struct cove_err **err);
/* The earliest deadline_at > 0 (index scan), 0 when none. */
int store_sandbox_next_deadline(struct store *s, int64_t *ret, struct cove_err **err);
/* IDs of up to max sandboxes with 0 < deadline_at <= now, earliest first; NULL-terminated
 * (strv_free). */
int store_sandbox_due(struct store *s, int64_t now, size_t max, char ***ret, struct cove_err **err);

/* Every sandbox (all teams when team_id is NULL), ordered by started_at then id; ret is a
 * NULL-terminated array the caller frees with sandbox_list_free(). */
int store_sandbox_list(struct store *s, const char *team_id, struct sandbox_rec ***ret,
                       struct cove_err **err);
void sandbox_list_free(struct sandbox_rec **v);

/* ---- tombstones: gone sandboxes as the /v1 face still shows them (v1-api.md §3.2) ---- */

/* Deletes the sandbox row and, in the same transaction, keeps a tombstone of it (the record
 * as sandbox_rec reads it back, destroyed_at set, state stopped) and writes ev (its lifecycle
 * event, may be NULL). -ENOENT when the row is gone. Tombstones destroyed before purge_before
 * (ms) are removed in the same step. */
int store_sandbox_retire(struct store *s, const char *id, int64_t destroyed_at,
                         int64_t purge_before, const struct event_rec *ev, struct cove_err **err);
/* The tombstone of id: -ENOENT "sandbox '<id>' not found" when none. */
int store_tombstone_get(struct store *s, const char *id, struct sandbox_rec **ret,
                        struct cove_err **err);
/* Tombstones of team_id (all teams when NULL) destroyed at or after since (ms), newest first;
 * NULL-terminated (sandbox_list_free). */
int store_tombstone_list(struct store *s, const char *team_id, int64_t since,
                         struct sandbox_rec ***ret, struct cove_err **err);

/* ---- volumes (control-plane.md §13.1) ---- */

struct volume_rec {
        char *id;      /* "vol_" + 16 hex */
        char *team_id; /* owner */
        char *name;    /* unique in the team */
        char *token;   /* opaque credential, reserved for direct volume access */
        int64_t size_mb;
        int64_t created_at;
};
void volume_rec_free(struct volume_rec *v);
void volume_list_free(struct volume_rec **v);

/* -EEXIST "volume '<name>' already exists" when the team has that name. */
int store_volume_insert(struct store *s, const struct volume_rec *v, struct cove_err **err);
/* By ID (any team when team_id is NULL) or by name in a team: -ENOENT "volume '<x>' not found". */
int store_volume_get(struct store *s, const char *team_id, const char *id, struct volume_rec **ret,
                     struct cove_err **err);
int store_volume_get_by_name(struct store *s, const char *team_id, const char *name,
                             struct volume_rec **ret, struct cove_err **err);
/* The team's volumes sorted by name (every volume when team_id is NULL); NULL-terminated. */
int store_volume_list(struct store *s, const char *team_id, struct volume_rec ***ret,
                      struct cove_err **err);
/* Deletes the volume of team_id unless a sandbox row of that team mounts it (-EBUSY "volume
 * '<name>' is mounted by sandbox '<id>'"); the check and the delete are one step. *ret (optional)
 * is the deleted record. -ENOENT when unknown. */
int store_volume_delete_unmounted(struct store *s, const char *team_id, const char *id,
                                  struct volume_rec **ret, struct cove_err **err);

/* ---- sandbox logs (control-plane.md §8) ---- */

struct log_rec {
        int64_t seq; /* 1, 2, 3 … per sandbox */
        int64_t ts;  /* ms */
        char *level; /* debug | info | warn | error */
        char *message;
        json_t *fields; /* object string→string (without seq; the handler adds it) */
};
void log_list_free(struct log_rec **v);

/* Appends an entry (seq = last + 1) and trims to the newest 10,000. */
int store_log_append(struct store *s, const char *sandbox_id, const char *level, const char *source,
                     const char *message, struct cove_err **err);
/* All retained entries, ascending seq; NULL-terminated array. */
int store_log_list(struct store *s, const char *sandbox_id, struct log_rec ***ret,
                   struct cove_err **err);
int store_log_delete_all(struct store *s, const char *sandbox_id, struct cove_err **err);
/* How many entries each sandbox keeps (default 10,000; the oldest go first). */
void store_log_set_max(struct store *s, int64_t max_entries);

/* One page of a sandbox's log (control-plane.md §8): entries with seq >= cursor ascending
 * (forward) or seq <= cursor descending (backward; cursor 0 = from the newest), of at least
 * min_level (0 debug … 3 error) and containing search (ASCII case-insensitive) when given. */
struct log_query {
        const char *sandbox_id;
        int64_t cursor;
        int64_t limit;
        bool backward;
        int min_level;      /* 0: all */
        const char *search; /* NULL: any */
};
struct log_page {
        struct log_rec **entries; /* NULL-terminated, at most limit */
        bool has_more;            /* more matching entries exist in this direction */
        int64_t retained;         /* entries the sandbox has */
        int64_t in_window;        /* of those, on the cursor's side (before any filter) */
};
int store_log_query(struct store *s, const struct log_query *q, struct log_page *ret,
                    struct cove_err **err);

/* ---- settings (small key/value of coved itself, e.g. node name) ---- */
int store_setting_get(struct store *s, const char *key, char **ret, struct cove_err **err);
int store_setting_set(struct store *s, const char *key, const char *value, struct cove_err **err);

/* ---- additions (store implementation): template maintenance for the build plane ---- */

/* Replaces every column of an existing template (matched by t->id); -ENOENT if gone, -EEXIST if
 * the new name is taken. */
int store_template_update(struct store *s, const struct template_rec *t, struct cove_err **err);
/* -ENOENT "template '<id>' not found" when missing. */
int store_template_delete(struct store *s, const char *id, struct cove_err **err);
/* Templates owned by team_id (every template when team_id is NULL), ordered by created_at then
 * id; ret is a NULL-terminated array the caller frees with template_list_free(). */
int store_template_list(struct store *s, const char *team_id, struct template_rec ***ret,
                        struct cove_err **err);
void template_list_free(struct template_rec **v);

/* ==== issue 8: events, webhooks, tenancy, usage (store/event.c, webhook.c, tenancy.c,
 * usage.c) ==== */

/* ---- lifecycle events (control-plane.md §12.1) ---- */

struct event_rec {
        int64_t seq; /* global insert order, assigned by the store */
        char *id;    /* "evt_" + 20 [a-z0-9] */
        char *type;  /* "sandbox.lifecycle.created" … */
        char *sandbox_id;
        char *team_id;
        int64_t ts;   /* ms */
        json_t *body; /* the SandboxLifecycleEvent exactly as listed and delivered */
};
void event_rec_free(struct event_rec *e);
void event_list_free(struct event_rec **v);

/* Removes a sandbox row and writes ev (may be NULL) in one transaction. -ENOENT if gone. */
int store_sandbox_delete_event(struct store *s, const char *id, const struct event_rec *ev,
                               struct cove_err **err);

struct event_query {
        const char *team_id;    /* required: only this team's events */
        const char *sandbox_id; /* NULL: every sandbox of the team */
        char **types;           /* NULL or NULL-terminated: only these types */
        int64_t offset, limit;
        bool order_asc; /* false: newest first */
};
int store_event_list(struct store *s, const struct event_query *q, struct event_rec ***ret,
                     struct cove_err **err);
/* Events and deliveries older than before_ms go (7-day retention, control-plane.md §12). */
int store_event_prune(struct store *s, int64_t before_ms, struct cove_err **err);
/* After every committed transaction that wrote an event, 8 bytes (1) are written to this
 * eventfd (the webhook pool's wake-up); -1 = none. Set once before threads start. */
void store_set_event_notify(struct store *s, int eventfd);
/* Called after every write of a sandbox row (insert, update, delete, retire) with the row's
 * ID and the store's new write count (what read_seq of a later read will be at least), while
 * the store's lock is held: fn must be quick and must not call the store. One hook (the
 * manager's row cache); NULL removes it. Set before other threads use the store. */
void store_set_sandbox_write_hook(struct store *s, store_sandbox_write_fn fn, void *ud);

/* ---- webhooks and deliveries (control-plane.md §12.3–§12.4) ---- */

struct webhook_rec {
        char *id; /* "whk_" + 20 [a-z0-9] */
        char *team_id;
        char *name;
        char *url;
        char *secret; /* signatureSecret: never returned by any route, never logged */
        bool enabled;
        json_t *events;        /* array of event type strings */
        bool has_retry_policy; /* a retryPolicy was given (it is returned then) */
        int64_t max_attempts;  /* 1–10 */
        json_t *delays;        /* array of seconds, or NULL (default [10, 60]) */
        bool dead_letter_enabled;
        char *dead_letter_url; /* may be NULL */
        int64_t created_at, updated_at;
};
void webhook_rec_free(struct webhook_rec *w);
void webhook_list_free(struct webhook_rec **v);

/* -EDQUOT when the team has max_per_team webhooks already (count and insert are one step). */
int store_webhook_insert(struct store *s, const struct webhook_rec *w, int64_t max_per_team,
                         struct cove_err **err);
/* One of team_id's webhooks: -ENOENT "webhook '<id>' not found" otherwise. */
int store_webhook_get(struct store *s, const char *team_id, const char *id,
                      struct webhook_rec **ret, struct cove_err **err);
int store_webhook_list(struct store *s, const char *team_id, struct webhook_rec ***ret,
                       struct cove_err **err);
/* Rewrites every mutable column of w (matched by team and ID). */
int store_webhook_update(struct store *s, const struct webhook_rec *w, struct cove_err **err);
/* Deletes the webhook; its deliveries still waiting fail with "webhook was deleted". */
int store_webhook_delete(struct store *s, const char *team_id, const char *id,
                         struct cove_err **err);

enum delivery_dead_letter {
        DEAD_LETTER_NONE = 0,
        DEAD_LETTER_DUE = 1,  /* attempts exhausted: the dead-letter POST is to be sent */
        DEAD_LETTER_DONE = 2, /* sent (status dead_lettered, or failed with dead_letter_error) */
};

struct delivery_rec {
        int64_t seq; /* insert order */
        char *id;    /* "dlv_" + 20 [a-z0-9] */
        char *event_id;
        int64_t event_seq;
        char *webhook_id;
        char *team_id;
        char *sandbox_id;
        char *url;
        char *status;        /* pending | retrying | delivered | failed | dead_lettered */
        int64_t http_status; /* 0 = none */
        int64_t attempts;
        int64_t max_attempts;
        json_t *delays; /* array of seconds */
        char *error;    /* may be NULL */
        char *dead_letter_url;
        char *dead_letter_error;
        int dead_letter;   /* enum delivery_dead_letter */
        bool attempt_open; /* an attempt began and has not been recorded yet */
        int64_t created_at, last_attempt_at, next_attempt_at, delivered_at;
};
void delivery_rec_free(struct delivery_rec *d);
void delivery_list_free(struct delivery_rec **v);

struct delivery_query {
        const char *team_id;                        /* required */
        const char *webhook_id, *event_id, *status; /* optional filters */
        int64_t offset, limit;
        bool order_asc;
};
int store_delivery_list(struct store *s, const struct delivery_query *q, struct delivery_rec ***ret,
                        struct cove_err **err);
int store_delivery_get(struct store *s, const char *team_id, const char *id,
                       struct delivery_rec **ret, struct cove_err **err);
/* A new pending delivery of the same event to the same webhook (with its current URL and
 * retry policy). -ENOENT when the delivery or its webhook is gone. */
int store_delivery_replay(struct store *s, const char *team_id, const char *id,
                          struct delivery_rec **ret, struct cove_err **err);

/* The delivery pool's side. A delivery is due when it waits (pending, retrying, or a
 * dead-letter POST to send) with next_attempt_at <= now and it is the oldest waiting one of its
 * (webhook, sandbox): deliveries of one sandbox to one webhook go out in event order. */
int store_delivery_due(struct store *s, int64_t now, size_t max, char ***ret_ids,
                       struct cove_err **err);
/* The earliest next_attempt_at of any waiting delivery, 0 when none. */
int store_delivery_next_due(struct store *s, int64_t *ret, struct cove_err **err);
int store_delivery_count_waiting(struct store *s, int64_t *ret, struct cove_err **err);
/* Begins an attempt of a due delivery: attempts + 1 (not for the dead-letter POST),
 * last_attempt_at = now, attempt_open = 1, url = the webhook's current one. Returns the
 * delivery as it is now, its webhook and the event body to send. -ENOENT when the delivery or
 * its webhook is gone, -EALREADY when it is no longer waiting. */
int store_delivery_begin(struct store *s, const char *id, int64_t now, struct delivery_rec **ret,
                         struct webhook_rec **ret_webhook, char **ret_body, struct cove_err **err);
/* Records an attempt's outcome: every mutable field of d (status, http_status, error,
 * next_attempt_at, delivered_at, dead_letter*, url), attempt_open = 0. */
int store_delivery_finish(struct store *s, const struct delivery_rec *d, struct cove_err **err);
/* At start: attempts that were open when coved died are recorded as failed ("attempt
 * interrupted by a restart of coved") and retried now, or failed for good when they were the
 * last (dead-letter due if enabled). Returns how many. */
int store_delivery_recover(struct store *s, int64_t now, int64_t *ret, struct cove_err **err);

/* ---- tenancy (teams and keys; spec README §2, control-plane.md §13.2) ---- */

struct team_rec {
        char *id; /* "team_" + 16 hex, or "team_default" */
        char *name;
        int64_t created_at;
};
void team_rec_free(struct team_rec *t);
void team_list_free(struct team_rec **v);

/* -EEXIST "team '<name>' already exists". */
int store_team_create(struct store *s, const char *name, struct team_rec **ret,
                      struct cove_err **err);
int store_team_get(struct store *s, const char *id, struct team_rec **ret, struct cove_err **err);
int store_team_list(struct store *s, struct team_rec ***ret, struct cove_err **err);

/* A new key for team_id (role "admin" | "user"): "cove_" + 40 [a-z0-9], or with e2b_form
 * "e2b_" + 40 lower-case hex (the form E2B's Python SDK checks, e2b.md §1.3). Only its hash is
 * kept; *ret_key is the one copy of the key itself (caller frees). */
int store_apikey_create(struct store *s, const char *team_id, const char *role, const char *name,
                        bool e2b_form, char **ret_key, struct apikey_rec **ret,
                        struct cove_err **err);
/* Keys of team_id (every key when NULL), oldest first, revoked ones included. */
int store_apikey_list(struct store *s, const char *team_id, struct apikey_rec ***ret,
                      struct cove_err **err);
int store_apikey_get(struct store *s, const char *id, struct apikey_rec **ret,
                     struct cove_err **err);
void apikey_list_free(struct apikey_rec **v);
/* Revokes at once (lookups fail from the next request on); -ENOENT when unknown, 0 when it
 * was revoked already. */
int store_apikey_revoke(struct store *s, const char *id, struct cove_err **err);
/* Adds a team to a key's teams (its own team is always one). Idempotent. */
int store_apikey_add_team(struct store *s, const char *key_id, const char *team_id,
                          struct cove_err **err);
/* The key's teams, its own team first; NULL-terminated (strv_free). */
int store_apikey_teams(struct store *s, const char *key_id, char ***ret, struct cove_err **err);

/* ---- usage and limits (control-plane.md §11) ---- */

/* Sandboxes of a team (team_id) or created by a key (key_id), or the node (both NULL). */
struct store_usage {
        int64_t live; /* starting or running */
        int64_t paused;
        int64_t cpu, memory_mb; /* summed over live sandboxes */
        int64_t disk_mb;        /* summed over starting, running and paused sandboxes */
};
int store_sandbox_usage(struct store *s, const char *team_id, const char *key_id,
                        struct store_usage *ret, struct cove_err **err);
/* Templates owned by team_id (every template when NULL). */
int store_template_count(struct store *s, const char *team_id, int64_t *ret, struct cove_err **err);
/* Templates made by one API key (their created_by). */
int store_template_count_by_key(struct store *s, const char *key_id, int64_t *ret,
                                struct cove_err **err);

/* The limits an insert is admitted against; 0 = no limit. */
enum store_quota_metric {
        QUOTA_CONCURRENT_SANDBOXES,
        QUOTA_CPU,
        QUOTA_MEMORY_MB,
        QUOTA_DISK_MB,
        _QUOTA_MAX,
};
struct store_quota {
        int64_t node_max_live;       /* node capacity (max-sandboxes) */
        int64_t project[_QUOTA_MAX]; /* limits of the sandbox's team */
        int64_t user[_QUOTA_MAX];    /* limits of the sandbox's key (sb->key_id) */
};
struct store_quota_breach {
        bool user; /* scope: the key's limit (else the team's) */
        enum store_quota_metric metric;
        int64_t used, limit;
};
/* Inserts sb (and its event) unless it would take the node over its capacity (-EUSERS) or its
 * team or key over a limit (-EDQUOT, *ret_breach says which). The counts and the insert are
 * one step, so concurrent creates cannot overshoot. */
int store_sandbox_insert_admitted(struct store *s, struct sandbox_rec *sb,
                                  const struct store_quota *q,
                                  struct store_quota_breach *ret_breach, struct cove_err **err);

/* Operator-set limits of one owner (scope "project": a team; "user": an API key) as an
 * object metric→integer. */
int store_limits_get(struct store *s, const char *scope, const char *owner_id, json_t **ret,
                     struct cove_err **err);
/* Sets (value >= 0) or removes (value < 0) one limit. */
int store_limits_set(struct store *s, const char *scope, const char *owner_id, const char *metric,
                     int64_t value, struct cove_err **err);

/* ---- team metrics over time (control-plane.md §9.3) ---- */

struct team_sample {
        int64_t ts;         /* ms */
        int64_t concurrent; /* starting + running sandboxes at ts */
        int64_t starts;     /* creates in (previous sample, ts] */
};
/* One sample per team at ts; starts are the created events in (since_ms, ts]. */
int store_team_sample_all(struct store *s, int64_t ts, int64_t since_ms, struct cove_err **err);
/* Samples of team_id with from_ms <= ts <= to_ms, oldest first (*ret malloc'd, *ret_n). */
int store_team_samples(struct store *s, const char *team_id, int64_t from_ms, int64_t to_ms,
                       struct team_sample **ret, size_t *ret_n, struct cove_err **err);
int store_team_samples_prune(struct store *s, int64_t before_ms, struct cove_err **err);
/* Log entries whose sandbox row is gone (a crash between the two deletes). */
int store_log_prune_orphans(struct store *s, struct cove_err **err);
/* ---- the build plane (schema 2; build-plane.md) ---- */

/* Template by name: in team_id, or the official one when team_id is NULL. -ENOENT otherwise. */
int store_template_get_by_name(struct store *s, const char *team_id, const char *name,
                               struct template_rec **ret, struct cove_err **err);
/* spawn_count + 1, last_spawned_at = now_ms. */
int store_template_spawned(struct store *s, const char *id, int64_t now_ms, struct cove_err **err);

struct build_rec {
        char *template_id;
        char *id;
        int64_t seq;         /* 1, 2, 3 … per template (assigned by the store); newest = max */
        char *status;        /* waiting | building | ready | error | cancelled */
        bool triggered;      /* a trigger (or a source on create) started it */
        char *error_message; /* "" unless error/cancelled */
        char *error_step;    /* reason.step, may be NULL */
        json_t *request;     /* BuildRequest without credentials, may be NULL */
        char *source_kind;   /* image | dockerfile | template, may be NULL until resolved */
        json_t *tags;        /* requested tags: array of strings */
        json_t *layers;      /* layer keys bottom → top when ready: array of strings */
        json_t *config; /* resulting sandbox defaults {env, workdir, startCmd, readyCmd, port} */
        int64_t cpu_count, memory_mb, disk_size_mb;
        char *envd_version;
        char *created_by;
        int64_t created_at, updated_at, started_at, finished_at;
        int64_t log_count;
};
void build_rec_free(struct build_rec *b);
void build_list_free(struct build_rec **v);

/* Inserts b (b->seq is assigned). -EEXIST "build '<id>' already exists". */
int store_build_insert(struct store *s, struct build_rec *b, struct cove_err **err);
/* Replaces the mutable columns (status … log_count). -ENOENT when gone. */
int store_build_update(struct store *s, const struct build_rec *b, struct cove_err **err);
/* -ENOENT "build '<id>' not found". */
int store_build_get(struct store *s, const char *template_id, const char *id,
                    struct build_rec **ret, struct cove_err **err);
/* Newest first. from_id (inclusive start, may be NULL) → -ENOENT when not a build of the
 * template; offset/limit page; *ret_total counts every build of the template. */
int store_build_list(struct store *s, const char *template_id, const char *from_id, int64_t offset,
                     int64_t limit, struct build_rec ***ret, int64_t *ret_total,
                     struct cove_err **err);
/* Every build (any template) with the status, oldest first (recovery, queue). */
int store_build_list_by_status(struct store *s, const char *status, struct build_rec ***ret,
                               struct cove_err **err);

#define BUILD_LOG_MAX 50000

struct build_log_rec {
        int64_t seq; /* 0, 1, 2 … */
        int64_t ts;
        char *level; /* debug | info | warn | error */
        char *step;  /* "base", "1", …, "finalize" */
        char *message;
};
void build_log_list_free(struct build_log_rec **v);

/* Appends an entry (numbers stay stable); past BUILD_LOG_MAX entries further output is
 * dropped, after one last entry that says so. */
int store_build_log_append(struct store *s, const char *template_id, const char *build_id,
                           int64_t ts, const char *level, const char *step, const char *message,
                           struct cove_err **err);
/* Entries with level ≥ min_level (NULL: all). Forward: seq ≥ cursor (after skipping `skip`
 * matching entries); backward: seq ≤ cursor, descending (cursor < 0: from the newest). */
int store_build_log_list(struct store *s, const char *template_id, const char *build_id,
                         const char *min_level, int64_t cursor, bool backward, int64_t skip,
                         int64_t limit, struct build_log_rec ***ret, struct cove_err **err);

struct tag_rec {
        char *tag;
        char *build_id;
        int64_t created_at;
};
void tag_list_free(struct tag_rec **v);
/* Points tag at build_id (moving it), created_at = now. */
int store_tag_set(struct store *s, const char *template_id, const char *tag, const char *build_id,
                  int64_t now_ms, struct cove_err **err);
int store_tag_delete(struct store *s, const char *template_id, const char *tag,
                     struct cove_err **err);
/* -ENOENT when the template has no such tag. */
int store_tag_get(struct store *s, const char *template_id, const char *tag, char **ret_build_id,
                  struct cove_err **err);
/* Sorted by tag. */
int store_tag_list(struct store *s, const char *template_id, struct tag_rec ***ret,
                   struct cove_err **err);

/* -EEXIST "alias '<a>' already exists" on a clash (aliases are server-wide). */
int store_alias_insert(struct store *s, const char *alias, const char *template_id, int64_t now_ms,
                       struct cove_err **err);
/* -ENOENT when unknown. */
int store_alias_get(struct store *s, const char *alias, char **ret_template_id,
                    struct cove_err **err);
/* The template's aliases, sorted (NULL-terminated strv). */
int store_alias_list(struct store *s, const char *template_id, char ***ret, struct cove_err **err);

/* Uploaded build archives (§9), per team and content hash. */
int store_build_file_put(struct store *s, const char *team_id, const char *hash, int64_t size,
                         int64_t now_ms, struct cove_err **err);
/* 1 present, 0 absent. */
int store_build_file_has(struct store *s, const char *team_id, const char *hash,
                         struct cove_err **err);
int store_build_file_touch(struct store *s, const char *team_id, const char *hash, int64_t now_ms,
                           struct cove_err **err);
/* "team_id/hash" of archives unused since before `before_ms` (GC), NULL-terminated. */
int store_build_file_list_unused(struct store *s, int64_t before_ms, char ***ret,
                                 struct cove_err **err);
int store_build_file_delete(struct store *s, const char *team_id, const char *hash,
                            struct cove_err **err);

/* Builds in progress with a source (status waiting or building, triggered) of a team's
 * templates (team_id) or started by a key (key_id, when team_id is NULL): the
 * concurrentBuilds usage (control-plane.md §11). */
int store_build_count_active(struct store *s, const char *team_id, const char *key_id, int64_t *ret,
                             struct cove_err **err);

/* Records that a build holds these layers (added to what it held). */
int store_build_layers_add(struct store *s, const char *template_id, const char *build_id,
                           char *const *keys, struct cove_err **err);
/* Every layer key some build holds (layer GC keeps these), NULL-terminated. */
int store_layer_keys_in_use(struct store *s, char ***ret, struct cove_err **err);

/* ---- uid ranges (store/uidrange.c): the block of host uids each sandbox's user namespace
 * maps to. Index i stands for a block the engine places (uid-base + i * 65536); the store only
 * guarantees that no two sandboxes hold the same index. Release a range only once nothing of
 * its sandbox lives any more (processes, files). ---- */

/* The sandbox's index; a new sandbox gets the lowest index in [0, n_ranges) that nobody holds
 * (-ENOSPC "all N uid ranges are in use" when there is none). */
int store_uidrange_acquire(struct store *s, const char *sandbox_id, int64_t n_ranges,
                           int64_t *ret_index, struct cove_err **err);
/* -ENOENT when the sandbox holds none. */
int store_uidrange_get(struct store *s, const char *sandbox_id, int64_t *ret_index,
                       struct cove_err **err);
/* Missing is not an error. */
int store_uidrange_release(struct store *s, const char *sandbox_id, struct cove_err **err);
/* Sandbox ids holding a range with no sandbox row (a crash between the two writes);
 * NULL-terminated, the caller frees with strv_free(). */
int store_uidrange_orphans(struct store *s, char ***ret_ids, struct cove_err **err);
int store_uidrange_count(struct store *s, int64_t *ret, struct cove_err **err);
