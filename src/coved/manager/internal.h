/* SPDX-License-Identifier: MIT */
/*
 * internal.h — shared by manager.c and lifecycle.c only.
 */
#pragma once

#include "coved/engine/engine.h"
#include "coved/manager/claim.h"
#include "coved/manager/lifecycle.h"
#include "coved/manager/manager.h"

#include <pthread.h>
#include <stdatomic.h>

struct activity;
struct rowcache;
struct startlog;
struct warm_pool;
struct teardown;

#define SANDBOX_ID_LEN 20 /* [a-z0-9]{20} */

struct manager {
        struct claims *claims;
        struct lifecycle *lc;
        struct activity *activity;    /* calls in flight per sandbox (activity.c) */
        struct rowcache *rows;        /* read cache of sandbox rows (rowcache.c) */
        struct startlog *startlog;    /* startCmd output into sandbox logs (startlog.c), or NULL */
        _Atomic int64_t deleting;     /* destroys in progress (pool status) */
        _Atomic int64_t creating;     /* manager_create() calls in progress (warm.c's refill) */
        _Atomic int64_t deleted;      /* sandboxes destroyed since start */
        pthread_mutex_t rolling_lock; /* rolling */
        struct rolling_status rolling;
        struct warm_pool *warm;    /* warm.c */
        struct teardown *teardown; /* teardown.c */
};

/* teardown.c — deleted sandboxes' teardown in the background (see there). teardown_start() in
 * manager_start, teardown_stop() in manager_stop (finishes every queued teardown).
 * teardown_push: destroys what the engine holds of id (init identified by who, may be NULL)
 * and gives its uid block back, then decrements manager->deleting (which the caller
 * incremented); inline when the workers are not running. */
int teardown_start(struct coved *cd, struct cove_err **err);
void teardown_push(struct coved *cd, const char *id, const struct engine_identity *who);
/* Waits (at most timeout_ms) until no teardown is queued or running; true when so. Admission
 * calls it before refusing for lack of uid blocks or disk while deletes are finishing, so a
 * delete followed by a create behaves as if the teardown had been synchronous. */
bool teardown_wait_idle(struct coved *cd, int timeout_ms);
void teardown_stop(struct coved *cd);

/* warm.c — the warm pool (see there). warm_init() in manager_init, warm_start() in
 * manager_start (a thread, only with warm-pool-size > 0), warm_stop() in manager_stop: stops
 * the thread and destroys every warm sandbox. */
struct warm_sandbox {
        char id[SANDBOX_ID_LEN + 1];
        char *access_token;         /* owned */
        struct engine_identity who; /* its init */
};
int warm_init(struct coved *cd, struct cove_err **err);
int warm_start(struct coved *cd, struct cove_err **err);
void warm_stop(struct coved *cd);
/* Takes a live warm sandbox of template t's current build (its layers and binds) with exactly
 * these CPUs, memory and disk size out of the pool (false: none; the caller makes a fresh one).
 * The caller owns *ret (release with warm_sandbox_done) and the sandbox: its uid block, disk
 * image and network are the ones a create's admission would have made, under ret->id. */
bool warm_claim(struct coved *cd, const struct template_rec *t, int64_t cpu_count,
                int64_t memory_mb, int64_t disk_mb, struct warm_sandbox *ret);
void warm_sandbox_done(struct warm_sandbox *w);
/* Warm sandboxes waiting now. */
int64_t warm_count(struct coved *cd);
/* Marks the warm sandboxes of template_id for replacement by ones of its current build (the
 * thread reports progress in manager->rolling); returns how many there are (0: nothing to do). */
int64_t warm_roll(struct coved *cd, const char *template_id);
void warm_roll_cancel(struct coved *cd);

/* activity.c — how many calls that need a sandbox are in flight, per sandbox ID. Thread-safe;
 * IDs are copied. */
struct activity *activity_new(void);
void activity_free(struct activity *a);
void activity_begin(struct activity *a, const char *id);
void activity_end(struct activity *a, const char *id);
bool activity_busy(struct activity *a, const char *id);

/* rowcache.c — a bounded read cache of sandbox rows for manager_get() (the reads of every
 * GET and runtime-API request). Thread-safe. rowcache_get() returns a copy (caller frees) or
 * NULL; rowcache_put() keeps a copy of a row just read from the store, unless the row was
 * written since (read_seq); rowcache_written() is the store's write hook
 * (store_set_sandbox_write_hook()), which drops the row. */
struct rowcache *rowcache_new(void);
void rowcache_free(struct rowcache *c);
struct sandbox_rec *rowcache_get(struct rowcache *c, const char *id);
void rowcache_put(struct rowcache *c, const struct sandbox_rec *rec);
void rowcache_written(void *ud, const char *id, uint64_t seq);
/* startlog.c — one thread that writes the output of every running startCmd into its
 * sandbox's log (source "start_cmd", control-plane.md §8) until the process or the sandbox
 * ends. startlog_add() always takes fd (an agent stream whose process.Start answered 200);
 * with sl NULL it just closes it. startlog_free() stops the thread and closes every stream
 * (the processes keep running: output after a restart of coved is not logged). */
int startlog_new(struct coved *cd, struct startlog **ret, struct cove_err **err);
void startlog_free(struct startlog *sl);
void startlog_add(struct startlog *sl, const char *id, int fd);

/* A deadline of the lifecycle loop came (the row's deadline_at <= now): acts on it under the
 * sandbox's claim, taken without waiting. -EBUSY when another transition holds it. */
int manager_due(struct coved *cd, const char *id);
/* The init of sandbox id (identity who) exited: marks the sandbox stopped under its claim,
 * taken without waiting. -EBUSY when another transition holds it; 0 otherwise (also when the
 * row has moved on). */
int manager_init_exited(struct coved *cd, const char *id, const struct engine_identity *who);

/* quota.c: the limits in force for a team and (when key_id is set) a key, read once for a
 * create: its lifetime check and its admission use the same reading. */
struct quota_scope {
        struct limits team, key;
        bool has_key;
};
int quota_read(struct coved *cd, const char *team_id, const char *key_id, struct quota_scope *ret,
               struct cove_err **err);
/* The longest timeout (s) those limits allow a sandbox. */
int64_t quota_scope_max_lifetime(const struct quota_scope *q);
/* Inserts sb (with its pending writes: event, log entries, spawn) admitted against node
 * capacity (503) and the limits q of its team and key (429 with details). */
int quota_admit_sandbox(struct coved *cd, struct sandbox_rec *sb, const struct quota_scope *q,
                        struct cove_err **err);
/* The longest timeout (s) a sandbox of team_id created by key_id (may be NULL) may get. */
int quota_max_lifetime(struct coved *cd, const char *team_id, const char *key_id, int64_t *ret_s,
                       struct cove_err **err);
/* The 429 of README §5.4 for metric m of a team (or, user_scope, a key). */
int quota_error(struct cove_err **err, bool user_scope, const char *owner_id, enum limit_metric m,
                int64_t used, int64_t limit, int64_t needs);

/* event.c — lifecycle event types (control-plane.md §12.1). */
#define EVENT_CREATED "sandbox.lifecycle.created"
#define EVENT_PAUSED  "sandbox.lifecycle.paused"
#define EVENT_RESUMED "sandbox.lifecycle.resumed"
#define EVENT_UPDATED "sandbox.lifecycle.updated"
#define EVENT_KILLED  "sandbox.lifecycle.killed"
/* A new event of sb as it is now; data (stolen, may be NULL) is its eventData. */
struct event_rec *event_new(const struct sandbox_rec *sb, const char *type, json_t *data);
/* Hangs a new event on sb, to be written with sb's row change (store.h, sandbox_rec.event). */
void event_attach(struct sandbox_rec *sb, const char *type, json_t *data);
