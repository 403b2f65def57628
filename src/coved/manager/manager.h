/* SPDX-License-Identifier: MIT */
/*
 * manager.h — the sandbox manager: the one way handlers (api/, envd/) reach sandboxes.
 *
 * The manager is the state machine of control-plane.md §3 (starting → running ⇄ paused →
 * stopped, and deleted) on top of the store (the truth: every transition is written there
 * before it returns) and the engine (the processes). It is the only writer of the store's
 * sandbox rows and the only reader handlers have.
 *
 * Visibility: every call taking team_id answers 404 "sandbox '<id>' not found" for sandboxes
 * of other teams, exactly as for IDs that do not exist (README §2.1); team_id NULL means any
 * team (runtime requests, authorised by the sandbox's access token instead).
 *
 * Records handed out (struct sandbox_rec, struct log_rec) are snapshots owned by the caller
 * (sandbox_rec_free(), sandbox_list_free(), log_list_free()); changing one changes nothing.
 * Errors carry the spec's status in err->status where it differs from the errno map.
 *
 * Concurrency (docs/decisions.md, "Per-sandbox transitions"): transitions of one sandbox are
 * serialised by a per-sandbox claim; those of different sandboxes run in parallel. No lock is
 * held across a child process or an agent call.
 */
#pragma once

#include "coved/coved.h"
#include "coved/usage.h"
#include "lib/err.h"
#include "lib/sandbox_state.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct create_params {
        const char *team_id;      /* borrowed */
        const char *key_id;       /* borrowed; the API key asking (usage scope "user"), or NULL */
        const char *template_ref; /* borrowed; NULL/"" → base */
        /* borrowed: the template as the caller resolved it for the team (build-plane.md §3,
         * templates_for_spawn); NULL: template_ref is looked up by ID or name */
        const struct template_rec *tpl;
        int64_t timeout_s; /* 0 → template ttl or the default */
        bool wait_ready;
        /* > 0: the ready wait (agent, readyCmd) ends this long after the create began, if that
         * is sooner than ready-wait, and running out of it is 503 "sandbox '<id>' was not
         * ready within <n>s" with the sandbox deleted (the E2B face's 50 s, e2b.md §2.3) */
        int64_t ready_wait_ms;
        bool auto_pause;
        bool auto_resume;
        json_t *metadata; /* borrowed; object string→string or NULL */
        json_t *env_vars; /* borrowed; object string→string or NULL */
        json_t *network;  /* borrowed; normalised policy with all four keys */
        /* Volumes (control-plane.md §4.1): [{name, path}] checked by the caller (syntax); the
         * names are resolved in team_id here (404 "volume '<name>' not found"), merged over
         * the template's default mounts (a request's mount on the same path wins). */
        json_t *volume_mounts; /* borrowed or NULL */
        /* The /v1 face (v1-api.md §4). */
        const char *size;       /* borrowed: preset name, NULL: template resources */
        int64_t cpu_count;      /* > 0: instead of the template's (size presets) */
        int64_t memory_mb;      /* > 0: instead of the template's */
        int64_t disk_mb;        /* > 0: instead of the template's */
        int64_t idle_timeout_s; /* > 0: persistent — suspended after this long without
                                 * activity, woken by any call that needs it (auto_pause and
                                 * auto_resume are implied; timeout_s is ignored) */
        json_t *egress;         /* borrowed: the /v1 EgressPolicy, when that API sets it */
};

/* ---- transitions ---- */

int manager_create(struct coved *cd, const struct create_params *p, struct sandbox_rec **ret,
                   struct cove_err **err);
int manager_delete(struct coved *cd, const char *team_id, const char *id, struct cove_err **err);
int manager_pause(struct coved *cd, const char *team_id, const char *id, struct cove_err **err);
/* 200 semantics (was running) or resume (*ret_resumed = true → 201); waits for a starting
 * sandbox. timeout_s 0 keeps the deadline. */
int manager_connect(struct coved *cd, const char *team_id, const char *id, int64_t timeout_s,
                    struct sandbox_rec **ret, bool *ret_resumed, struct cove_err **err);
/* endAt = now + timeout (extend_only: max(endAt, now + timeout)). running/starting only. */
int manager_set_timeout(struct coved *cd, const char *team_id, const char *id, int64_t timeout_s,
                        bool extend_only, struct cove_err **err);
/* Who may send heartbeats (control-plane.md §7): an API key of the sandbox's team (team_id),
 * else its access token (token): 0; with a key, 404 for other teams or unknown IDs; without
 * one, 401 for a missing or wrong token and for an unknown ID alike (no ID oracle). */
int manager_heartbeat_allowed(struct coved *cd, const char *team_id, const char *token,
                              const char *id, struct cove_err **err);
/* Records a heartbeat status ("starting" | "healthy" | "error"). */
int manager_heartbeat(struct coved *cd, const char *id, const char *status, struct cove_err **err);
/* Replaces the sandbox's `network` (a validated SandboxNetworkPolicy with all four keys):
 * enforced at once when running or starting (control-plane.md §7.6: cuts what it forbids),
 * stored and applied on resume when paused; stopped → 409. Set through the SeaCloud or E2B
 * face, it takes over from a /v1 `egress` (allow overrides deny from then on). */
int manager_set_network(struct coved *cd, const char *team_id, const char *id, json_t *network,
                        struct cove_err **err);
/* lifecycle.onTimeout: pause (true) or kill (false). */
int manager_set_on_timeout(struct coved *cd, const char *id, bool pause, struct cove_err **err);
/* A template by ID or name (code-interpreter-v1 is code-interpreter); -ENOENT when unknown.
 * The record is the caller's (template_rec_free). */
int manager_template_resolve(struct coved *cd, const char *ref, struct template_rec **ret,
                             struct cove_err **err);
/* Merges envs (object string→string, validated by the caller) into the sandbox-level
 * environment (POST /configure). */
int manager_configure_envs(struct coved *cd, const char *id, json_t *envs, struct cove_err **err);

/* ---- reads ---- */

int manager_get(struct coved *cd, const char *team_id, const char *id, struct sandbox_rec **ret,
                struct cove_err **err);
/* Every sandbox of team_id (NULL: all), ordered by start time then ID; NULL-terminated. */
int manager_list(struct coved *cd, const char *team_id, struct sandbox_rec ***ret,
                 struct cove_err **err);
/* One page of a visible sandbox's log (store_log_query(); q->sandbox_id is set from id). */
int manager_logs(struct coved *cd, const char *team_id, const char *id, struct log_query *q,
                 struct log_page *ret, struct cove_err **err);
/* Sandboxes per state, on the whole node. */
int manager_count_by_state(struct coved *cd, int64_t counts[_SANDBOX_STATE_MAX],
                           struct cove_err **err);

/* ---- host uid blocks of sandboxes the manager does not create (build sandboxes) ---- */

/* A block of 65,536 host uids for the user namespace of sandbox `id` (engine_spec.uid_base:
 * the host uid of its root). 503 when every block is in use. Give it back with
 * manager_uid_block_release() only once engine_destroy() succeeded; a block left held (coved
 * died) is reclaimed at the next start. */
int manager_uid_block_acquire(struct coved *cd, const char *id, int64_t *ret_uid_base,
                              struct cove_err **err);
void manager_uid_block_release(struct coved *cd, const char *id);

/* ---- runtime traffic (runtime.md §1) ---- */

/* The sandbox `id` (any team) in a state that serves runtime traffic: unknown → 404
 * "sandbox '<id>' not found"; stopped → 409 "sandbox '<id>' is stopped"; paused → 409
 * "sandbox '<id>' is paused" unless lifecycle.autoResume, in which case it is resumed first
 * (trigger "auto_resume"); starting → waits up to 60 s for running, else 503. On success the
 * request is activity in flight (see "activity" below): the caller ends it with
 * manager_activity_end(). */
int manager_runtime_target(struct coved *cd, const char *id, struct sandbox_rec **ret,
                           struct cove_err **err);
/* The same without blocking (no claim, no store write; a store read at most): -EWOULDBLOCK,
 * err unset and no activity begun, whenever manager_runtime_target() would have to wait, resume
 * or record activity; the caller then calls that. For callers on the HTTP server's threads. */
int manager_runtime_target_nowait(struct coved *cd, const char *id, struct sandbox_rec **ret,
                                  struct cove_err **err);

int manager_usage(struct coved *cd, const struct sandbox_rec *sb, bool with_disk,
                  struct sandbox_usage *ret, struct cove_err **err);
/* A TCP connection to 127.0.0.1:port inside a running sandbox (engine_port_connect()). */
int manager_port_connect(struct coved *cd, const struct sandbox_rec *sb, uint16_t port,
                         int timeout_ms, struct cove_err **err);

/* ---- the /v1 face (v1-api.md) ----
 *
 * Visibility there differs from the SeaCloud face: another team's sandbox is 403 "sandbox
 * '<id>' belongs to another organization" (not 404), and gone sandboxes stay readable for
 * MANAGER_DESTROYED_RETENTION_MS (their tombstones, and stopped rows, read with state
 * stopped and destroyed_at set when known), then 404. */

#define MANAGER_DESTROYED_RETENTION_MS (24LL * 3600 * 1000)

/* The sandbox, live or gone (within the retention). Never wakes, never counts as activity. */
int manager_v1_get(struct coved *cd, const char *team_id, const char *id, struct sandbox_rec **ret,
                   struct cove_err **err);
/* Every sandbox of team_id, live ones and those gone within the retention, newest first;
 * NULL-terminated (sandbox_list_free). */
int manager_v1_list(struct coved *cd, const char *team_id, struct sandbox_rec ***ret,
                    struct cove_err **err);
/* Destroys (idempotent): 0 also for unknown and already destroyed IDs; 403 across teams. */
int manager_v1_delete(struct coved *cd, const char *team_id, const char *id, struct cove_err **err);
/* Resumes a suspended sandbox, waits for a starting one (ready-wait), records activity: the
 * sandbox as it ends. 409 when destroyed (gone or stopped). */
int manager_wake(struct coved *cd, const char *team_id, const char *id, struct sandbox_rec **ret,
                 struct cove_err **err);
/* Ephemeral, running sandboxes only (409 otherwise): expires_at = now + timeout_s (0: its
 * current lifetime duration), which becomes its lifetime duration. */
int manager_keepalive(struct coved *cd, const char *team_id, const char *id, int64_t timeout_s,
                      struct sandbox_rec **ret, struct cove_err **err);
/* For a call that needs the sandbox running (/v1 exec and files): wakes a suspended sandbox
 * first, 409 "sandbox '<id>' is not running" for a starting one, "... is destroyed" for a gone
 * or stopped one. On success the call is in flight as activity (see below): the caller ends it
 * with manager_activity_end(). */
int manager_v1_target(struct coved *cd, const char *team_id, const char *id,
                      struct sandbox_rec **ret, struct cove_err **err);

/* ---- activity (v1-api.md §6) ----
 *
 * A call that needs a sandbox (the /v1 exec and file calls, runtime API and port-proxy
 * requests: manager_v1_target(), manager_runtime_target()) is activity from its start to its
 * end: last_active_at is set at both, a persistent sandbox's idle deadline moves to
 * last_active_at + idle_timeout, and while any such call is in flight the sandbox is not
 * suspended for idleness. */
void manager_activity_end(struct coved *cd, const char *id);

/* ---- volumes (control-plane.md §13.1) ---- */

/* Name syntax is the caller's. 409 (ALREADY_EXISTS) "volume '<name>' already exists". The
 * volume's size is the operator's volume-size-mb. */
int manager_volume_create(struct coved *cd, const char *team_id, const char *name,
                          struct volume_rec **ret, struct cove_err **err);
/* The team's volumes by name; NULL-terminated (volume_list_free). */
int manager_volume_list(struct coved *cd, const char *team_id, struct volume_rec ***ret,
                        struct cove_err **err);
/* 404 "volume '<id>' not found" for unknown IDs and other teams' volumes. */
int manager_volume_get(struct coved *cd, const char *team_id, const char *id,
                       struct volume_rec **ret, struct cove_err **err);
/* Removes the volume and its data; 409 while a sandbox of the team that still exists (any
 * state) mounts it; 404 unknown. */
int manager_volume_delete(struct coved *cd, const char *team_id, const char *id,
                          struct cove_err **err);

/* ---- the node (control-plane.md §14) ---- */

struct pool_status {
        int64_t total, warm, active, creating, stopped, deleting, deleted;
        double utilization;
};
int manager_pool_status(struct coved *cd, struct pool_status *ret, struct cove_err **err);

enum rolling_phase {
        ROLLING_IDLE,
        ROLLING_RUNNING,
        ROLLING_COMPLETED,
        ROLLING_CANCELLED,
        ROLLING_FAILED,
        _ROLLING_PHASE_MAX,
};
const char *rolling_phase_to_string(enum rolling_phase p);

struct rolling_status {
        enum rolling_phase phase;
        int64_t warm_total, warm_updated;
        int64_t started_at, completed_at; /* ms, 0 = unset */
        char template_id[64];             /* the template rolled, "" before the first */
};
/* Replaces the warm-pool sandboxes of a template (by ID or any reference): 404 "template
 * '<ref>' not found", 409 while an update runs. Without a warm pool there is nothing to
 * replace: the update completes at once with warm_total 0. */
int manager_rolling_start(struct coved *cd, const char *template_ref, struct rolling_status *ret,
                          struct cove_err **err);
void manager_rolling_status(struct coved *cd, struct rolling_status *ret);
/* Cancels a running update; the status unchanged when none runs. */
void manager_rolling_cancel(struct coved *cd, struct rolling_status *ret);
/* ---- usage and limits (control-plane.md §11; manager/quota.c) ----
 *
 * Limits are set by the operator: per team (scope "project": the config file's limit-*
 * defaults, overridden per team through the admin routes) and per API key (scope "user":
 * admin routes only). manager_create() admits every new sandbox against both, whatever face
 * asked (429 with README §5.4 details); the build plane asks manager_admit_template() and
 * manager_admit_build() before it creates a template or starts a build. */

enum limit_metric {
        LIMIT_CONCURRENT_SANDBOXES, /* "concurrentSandboxes": starting + running */
        LIMIT_CPU,                  /* "cpuCount": CPUs of starting + running sandboxes */
        LIMIT_MEMORY_MB,            /* "memoryMB": their memory */
        LIMIT_DISK_MB,              /* "diskSizeMB": disk of sandboxes not stopped */
        LIMIT_TEMPLATES,            /* "templates": templates owned */
        LIMIT_CONCURRENT_BUILDS,    /* "concurrentBuilds": builds waiting or building */
        LIMIT_MAX_LIFETIME, /* "maxLifetimeSeconds": the longest timeout a sandbox may get */
        _LIMIT_MAX,
        _LIMIT_INVALID = -EINVAL,
};
const char *limit_metric_to_string(enum limit_metric m);
enum limit_metric limit_metric_from_string(const char *s);
/* "sandboxes" or "templates". */
const char *limit_metric_resource(enum limit_metric m);

/* Limits in force (0: none) of a team (scope project) or of an API key (scope user). */
struct limits {
        int64_t v[_LIMIT_MAX];
        bool set[_LIMIT_MAX]; /* the operator set this one for the owner (else a default) */
};
int manager_limits(struct coved *cd, bool user_scope, const char *owner_id, struct limits *ret,
                   struct cove_err **err);
/* Sets (value >= 0; 0 = no limit) or clears back to the default (value < 0) one limit. */
int manager_limits_set(struct coved *cd, bool user_scope, const char *owner_id, enum limit_metric m,
                       int64_t value, struct cove_err **err);

/* What a team or a key uses now (LIMIT_MAX_LIFETIME: 0). */
struct usage_now {
        int64_t v[_LIMIT_MAX];
        int64_t paused; /* "pausedSandboxes" */
};
int manager_usage_now(struct coved *cd, bool user_scope, const char *owner_id,
                      struct usage_now *ret, struct cove_err **err);
/* Node-wide counts for GET /metrics. */
int manager_count_templates(struct coved *cd, int64_t *ret, struct cove_err **err);

/* 429 (README §5.4 details) when one more template / build would exceed a limit of team_id or
 * of key_id (may be NULL). builds_now: the builds of the team (resp. key) waiting or building. */
int manager_admit_template(struct coved *cd, const char *team_id, const char *key_id,
                           struct cove_err **err);
int manager_admit_build(struct coved *cd, const char *team_id, int64_t team_builds_now,
                        const char *key_id, int64_t key_builds_now, struct cove_err **err);

/* ---- process output and agent messages (control-plane.md §8) ---- */

/* Records output of the template's start command ("start_cmd"), a failed ready command
 * ("ready_cmd") or an agent message ("agent") in the sandbox's log at `level`, one entry per
 * line (cut at 4 KiB; empty lines make none). -ENOENT when the sandbox is gone. */
int manager_sandbox_log(struct coved *cd, const char *id, const char *source, const char *level,
                        const char *text, struct cove_err **err);

/* ---- the daemon ---- */

/* At start, after the store is open: the manager's state (claims, lifecycle loop). */
int manager_init(struct coved *cd, struct cove_err **err);
/* Then, before serving: re-adopt sandboxes whose init lives, stop the others, (re)compute
 * every row's deadline. */
void manager_adopt(struct coved *cd);
/* The lifecycle thread: TTL, init liveness, stopped retention. */
int manager_start(struct coved *cd, struct cove_err **err);
/* Stops the lifecycle thread and frees the manager's state (after the HTTP server stopped). */
void manager_stop(struct coved *cd);
