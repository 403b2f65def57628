/* SPDX-License-Identifier: MIT */
/*
 * manager.c — the sandbox state machine (manager.h).
 *
 * Every change of a sandbox row is one store_sandbox_modify() step (read, change, write under
 * the store's lock, nothing slow inside), through modify() below, which also recomputes the
 * row's deadline for the lifecycle loop. Changes that drive the engine (start, pause, resume,
 * stop, delete) hold the sandbox's claim (claim.h) from their first read to their last write,
 * so they never interleave on one sandbox; they hold nothing else, so different sandboxes
 * proceed in parallel and a create stuck in its runtime helper delays only callers of that
 * same sandbox. Changes that do not touch the engine (timeouts, heartbeats, environment) need
 * no claim: their one-step write cannot be lost under a transition's.
 */
#include "coved/manager/internal.h"
#include "coved/agent_client.h"
#include "coved/metrics.h"
#include "lib/b64.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/rand.h"
#include "lib/timeutil.h"
#include "lib/utf8.h"

#include <dirent.h>
#include <openssl/crypto.h>
#include <stdarg.h>

#define TIMELINE_MAX            50
#define RESUME_MIN_REMAINING_MS 60000
#define STARTING_WAIT_MS        60000
#define AGENT_READY_MAX_MS      30000
#define ADMIT_TEARDOWN_WAIT_MS  30000
#define DUE_FAILED_RETRY_MS     5000 /* a TTL action that failed is retried this much later */
/* Activity is written at most this often per sandbox (a persistent sandbox's: at most every
 * 1/ACTIVITY_IDLE_FRACTION of its idle timeout), so a burst of runtime requests does not turn
 * into a burst of row writes. */
#define ACTIVITY_WRITE_MIN_MS  1000
#define ACTIVITY_IDLE_FRACTION 20

static struct manager *mgr(struct coved *cd)
{
        return cd->manager;
}

/* ---- records ---- */

/* Appends a log entry (control-plane.md §8) for the sandbox; never fails the caller. */
static void __attribute__((format(printf, 5, 6)))
sandbox_log(struct coved *cd, const char *id, const char *level, const char *source,
            const char *fmt, ...)
{
        char msg[BUF_MAX_ERR_MSG];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        cleanup_err struct cove_err *err = NULL;
        if (store_log_append(cd->store, id, level, source, msg, &err) < 0)
                log_warning("sandbox '%s': cannot record log entry, ignoring: %s", id, err->msg);
}

static void timeline_push(struct sandbox_rec *sb, const char *phase, const char *status,
                          const char *message)
{
        char ts[TIME_RFC3339_MAX];
        time_format_rfc3339(time_now_ms(), ts);
        json_t *e = json_pack("{s:s, s:s, s:s}", "phase", phase, "status", status, "timestamp", ts);
        if (message)
                json_object_set_new(e, "message", json_string(message));
        if (!json_is_array(sb->timeline)) {
                json_decref(sb->timeline);
                sb->timeline = json_array();
        }
        json_array_append_new(sb->timeline, e);
        while (json_array_size(sb->timeline) > TIMELINE_MAX)
                json_array_remove(sb->timeline, 0);
}

static void diagnostic_set(struct sandbox_rec *sb, const char *reason, const char *message,
                           const char *recommendation)
{
        json_decref(sb->diagnostic);
        sb->diagnostic = json_pack("{s:s, s:s}", "reason", reason, "message", message);
        if (recommendation)
                json_object_set_new(sb->diagnostic, "recommendation", json_string(recommendation));
}

static void diagnostic_clear(struct sandbox_rec *sb)
{
        json_decref(sb->diagnostic);
        sb->diagnostic = NULL;
}

static struct engine_identity identity_of(const struct sandbox_rec *sb)
{
        return (struct engine_identity){ .pid = sb->init_pid, .starttime = sb->init_starttime };
}

static bool identity_same(const struct sandbox_rec *sb, const struct engine_identity *who)
{
        return sb->init_pid == who->pid && sb->init_starttime == who->starttime;
}

/* When the lifecycle loop must next act on the row: TTL while starting or running, the end of
 * retention once stopped, nothing while paused. */
static int64_t deadline_of(struct coved *cd, const struct sandbox_rec *sb)
{
        switch (sb->state) {
        case SANDBOX_STARTING:
        case SANDBOX_RUNNING:
                return MAX(sb->end_at, (int64_t)1);
        case SANDBOX_STOPPED:
                return sb->stopped_at > 0 ? sb->stopped_at + cd->cfg.stopped_retention * 1000 : 0;
        case SANDBOX_PAUSED: /* control-plane.md §3.2: the operator's maximum paused age */
                return sb->stopped_at > 0 && cd->cfg.paused_max_age > 0
                               ? sb->stopped_at + cd->cfg.paused_max_age * 1000
                               : 0;
        case _SANDBOX_STATE_MAX:
        case _SANDBOX_STATE_INVALID:
        default:
                return 0;
        }
}

/* ---- one-step writes ---- */

typedef int (*modify_fn)(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err);

struct modify_ctx {
        struct coved *cd;
        modify_fn fn;
        void *ud;
};

static int modify_step(struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        struct modify_ctx *m = ud;
        int r = m->fn(m->cd, sb, m->ud, err);
        if (r > 0) {
                sb->deadline_at = deadline_of(m->cd, sb);
                sb->updated_at = time_now_ms();
        }
        return r;
}

/* Changes the row of id with fn (one step, see store_sandbox_modify()); *ret (optional) is
 * the row as it ends. Wakes the lifecycle loop for an earlier deadline. */
static int modify(struct coved *cd, const char *id, modify_fn fn, void *ud,
                  struct sandbox_rec **ret, struct cove_err **err)
{
        struct modify_ctx m = { cd, fn, ud };
        struct sandbox_rec *sb = NULL;
        int r = store_sandbox_modify(cd->store, id, modify_step, &m, &sb, err);
        if (r < 0)
                return r;
        lifecycle_deadline_changed(mgr(cd)->lc, sb->deadline_at);
        if (ret)
                *ret = sb;
        else
                sandbox_rec_free(sb);
        return 0;
}

/* ---- activity (manager.h) ---- */

static int64_t activity_write_every(const struct sandbox_rec *sb)
{
        if (sb->idle_timeout_ms > 0)
                return MIN(sb->idle_timeout_ms / ACTIVITY_IDLE_FRACTION,
                           (int64_t)ACTIVITY_WRITE_MIN_MS);
        return ACTIVITY_WRITE_MIN_MS;
}

static bool activity_due(const struct sandbox_rec *sb, int64_t now)
{
        return now - sb->last_active_at >= activity_write_every(sb);
}

static int set_active(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const bool *force = ud;
        int64_t now = time_now_ms();
        (void)cd;
        (void)err;
        if (!*force && !activity_due(sb, now))
                return 0;
        sb->last_active_at = now;
        /* A persistent sandbox's idle deadline (endAt = last_active_at + idle_timeout). */
        if (sb->idle_timeout_ms > 0 && sb->state == SANDBOX_RUNNING)
                sb->end_at = now + sb->idle_timeout_ms;
        return 1;
}

/* Records activity on *sb (replaced by the row as written, when it was). */
static void activity_touch(struct coved *cd, struct sandbox_rec **sb, bool force)
{
        struct sandbox_rec *after = NULL;
        if (!force && !activity_due(*sb, time_now_ms()))
                return;
        if (modify(cd, (*sb)->id, set_active, &force, &after, NULL) < 0)
                return; /* gone meanwhile: nothing to record */
        sandbox_rec_free(*sb);
        *sb = after;
}

void manager_activity_end(struct coved *cd, const char *id)
{
        bool force = false;
        struct sandbox_rec *sb = NULL;

        activity_end(mgr(cd)->activity, id);
        /* Most calls have nothing to record: the cached row answers that without a store
         * read. It is never newer than the store's, and last_active_at only grows, so it
         * never says "not due" where the store's row would say "due". */
        bool due = manager_get(cd, NULL, id, &sb, NULL) < 0 || activity_due(sb, time_now_ms());
        sandbox_rec_free(sb);
        if (due)
                (void)modify(cd, id, set_active, &force, NULL, NULL);
}

/* Loads a sandbox visible to team_id (NULL = any team): 404 otherwise. */
static int load_visible(struct coved *cd, const char *team_id, const char *id,
                        struct sandbox_rec **ret, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r = store_sandbox_get(cd->store, id, &sb, err);
        if (r < 0)
                return r;
        if (team_id && !streq(sb->team_id, team_id)) {
                sandbox_rec_free(sb);
                return cove_err_set_status(err, 404, ENOENT, "sandbox '%s' not found", id);
        }
        *ret = sb;
        return 0;
}

/* Claims a visible sandbox: the visibility check, the (possibly long) wait for its claim, and
 * a fresh read of its row once claimed. timeout_ms as claim_acquire(); -ETIMEDOUT leaves
 * *ret NULL and err unset. */
static int claim_visible(struct coved *cd, const char *team_id, const char *id, int timeout_ms,
                         struct sandbox_rec **ret, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r;

        /* Reads go through the row cache: a cached row is the store's row as it is now (it is
         * dropped on every write, and a read that raced one is never cached), so a read after
         * the claim is fresh either way. A free claim is taken first and the row read once
         * (the usual case: a resume used to read and parse the row twice here); a busy one is
         * waited for only once the sandbox is known to be visible, so nobody waits on another
         * team's sandbox. */
        if (claim_try(mgr(cd)->claims, id) == 0) {
                r = manager_get(cd, team_id, id, ret, err);
                if (r < 0)
                        claim_release(mgr(cd)->claims, id);
                return r;
        }
        r = manager_get(cd, team_id, id, &sb, err);
        sandbox_rec_free(sb);
        if (r < 0)
                return r;
        r = claim_acquire(mgr(cd)->claims, id, timeout_ms);
        if (r < 0)
                return r;
        r = manager_get(cd, team_id, id, ret, err);
        if (r < 0)
                claim_release(mgr(cd)->claims, id);
        return r;
}

/* 503 for a sandbox whose claim did not come free in time: starting (the usual case: its
 * create holds the claim) or in another transition. */
static int busy_error(struct coved *cd, const char *id, const char *starting_msg,
                      struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        bool starting =
                store_sandbox_get(cd->store, id, &sb, NULL) < 0 || sb->state == SANDBOX_STARTING;
        sandbox_rec_free(sb);
        if (starting)
                return cove_err_set_status(err, 503, EAGAIN, "sandbox '%s' %s", id, starting_msg);
        return cove_err_set_status(err, 503, EAGAIN,
                                   "sandbox '%s' is busy with another operation, try again", id);
}

/* ---- create ---- */

/* The 400 of a requested timeout longer than the limit of the sandbox's team or key. */
static int lifetime_error(struct cove_err **err, int64_t timeout_s, int64_t max)
{
        return cove_err_set_status(err, 400, EINVAL,
                                   "timeout %llds is longer than the longest sandbox lifetime "
                                   "allowed here (%llds)",
                                   (long long)timeout_s, (long long)max);
}

struct start_result {
        const struct engine_identity *who; /* NULL: the start failed */
        const char *error;                 /* why, when it failed */
        const char *template_id;           /* started: its template counts a spawn */
};

/* The row of a started (or failed) sandbox, with its log entry (and, started, its template's
 * spawn) written in the same step. */
static int set_started(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const struct start_result *res = ud;
        char msg[BUF_MAX_ERR_MSG];
        (void)cd;
        (void)err;
        if (res->who) {
                sb->state = SANDBOX_RUNNING;
                sb->init_pid = res->who->pid;
                sb->init_starttime = res->who->starttime;
                sb->activated_at = time_now_ms();
                timeline_push(sb, "runtime_ready", "completed", NULL);
                diagnostic_clear(sb);
                (void)snprintf(msg, sizeof(msg), "sandbox running (init pid %lld)",
                               (long long)res->who->pid);
                sandbox_rec_log(sb, "info", "system", msg);
                free(sb->spawned_template_id);
                sb->spawned_template_id = res->template_id ? xstrdup(res->template_id) : NULL;
        } else {
                sb->state = SANDBOX_STOPPED;
                sb->stopped_at = time_now_ms();
                sb->init_pid = 0;
                timeline_push(sb, "stopped", "failed", res->error);
                diagnostic_set(sb, "start_failed", res->error,
                               "delete the sandbox and create a new one; check the operator logs");
                event_attach(sb, EVENT_KILLED, json_pack("{s:s}", "reason", "start_failed"));
                (void)snprintf(msg, sizeof(msg), "sandbox failed to start: %s", res->error);
                sandbox_rec_log(sb, "error", "system", msg);
        }
        return 1;
}

/* ---- per-sandbox resources: a disk image and a block of host uids ---- */

static int uid_block(struct coved *cd, const char *id, int64_t *ret_range, struct cove_err **err)
{
        int r = store_uidrange_acquire(cd->store, id, cd->cfg.uid_ranges, ret_range, err);
        if (r == -ENOSPC) {
                cove_err_free(err);
                r = cove_err_set_status(err, 503, EAGAIN,
                                        "no capacity for a new sandbox: every "
                                        "uid range is in use");
        }
        return r;
}

/* Admission, before the row exists: the engine's disk image (503 when the data filesystem
 * cannot hold it, engine_reserve()) and a uid block (503 when none is free). A refusal leaves
 * nothing behind. */
static int admit_once(struct coved *cd, const struct sandbox_rec *sb, struct cove_err **err)
{
        int64_t range, t = time_mono_us();
        int r = engine_reserve(cd, sb->id, sb->disk_size_mb, err);
        metrics_create_phase("admit.disk", (double)(time_mono_us() - t) / 1e6);
        t = time_mono_us();
        if (r >= 0)
                r = uid_block(cd, sb->id, &range, err);
        metrics_create_phase("admit.uid_block", (double)(time_mono_us() - t) / 1e6);
        return r;
}

static int release_engine_and_range(struct coved *cd, const char *id,
                                    const struct engine_identity *who, struct cove_err **err);

/* Deleted sandboxes give their disk and uid block back when their teardown ends, after the
 * delete answered: a refusal for either waits for running teardowns first (a delete followed
 * by a create at the node's edge is admitted as if the delete had been synchronous). */
static int admit(struct coved *cd, const struct sandbox_rec *sb, struct cove_err **err)
{
        int r = admit_once(cd, sb, err);
        if (r == -EAGAIN || r == -ENOSPC) {
                if (atomic_load(&mgr(cd)->deleting) == 0 ||
                    !teardown_wait_idle(cd, ADMIT_TEARDOWN_WAIT_MS))
                        return r;
                (void)release_engine_and_range(cd, sb->id, NULL, NULL);
                cove_err_free(err);
                r = admit_once(cd, sb, err);
        }
        return r;
}

/* Undoes the engine's part and gives the uid block back, the latter only once the engine
 * reports that nothing of the sandbox lives any more. */
static int release_engine_and_range(struct coved *cd, const char *id,
                                    const struct engine_identity *who, struct cove_err **err)
{
        int r = engine_destroy(cd, id, who, err);
        if (r >= 0)
                (void)store_uidrange_release(cd->store, id, NULL);
        return r;
}

int manager_uid_block_acquire(struct coved *cd, const char *id, int64_t *ret_uid_base,
                              struct cove_err **err)
{
        int64_t range;
        int r = uid_block(cd, id, &range, err);
        if (r >= 0)
                *ret_uid_base = cd->cfg.uid_base + range * 65536;
        return r;
}

void manager_uid_block_release(struct coved *cd, const char *id)
{
        (void)store_uidrange_release(cd->store, id, NULL);
}

/* What a create left when coved died between admission and the sandbox row, and what build
 * sandboxes left when it died during a build: uid blocks and state directories of no sandbox.
 * Single-threaded, at start. */
static void reclaim_orphans(struct coved *cd)
{
        cleanup_strv char **ids = NULL;
        if (store_uidrange_orphans(cd->store, &ids, NULL) >= 0)
                for (char **id = ids; *id; id++)
                        if (release_engine_and_range(cd, *id, NULL, NULL) >= 0)
                                log_info("sandbox '%s': reclaimed its uid range (no sandbox "
                                         "record)",
                                         *id);
        cleanup_closedir DIR *d = opendir(cd->sandboxes_dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                struct sandbox_rec *sb = NULL;
                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                if (store_sandbox_get(cd->store, de->d_name, &sb, NULL) == -ENOENT &&
                    release_engine_and_range(cd, de->d_name, NULL, NULL) >= 0)
                        log_info("sandbox '%s': removed its leftover state (no sandbox record)",
                                 de->d_name);
                sandbox_rec_free(sb);
        }
}

/* v1-api.md §4: `performance-*` sizes get "exclusive CPU weight where the host allows": ten
 * times the default weight (cpu.weight 1000, v1 cpu.shares 10240), so under contention they
 * take their CPUs from shared-CPU sandboxes; their CPU quota still caps them at cpu_count. */
#define SIZE_PERFORMANCE_CPU_WEIGHT 1000

static int64_t size_cpu_weight(const char *size)
{
        return size && strncmp(size, "performance-", strlen("performance-")) == 0
                       ? SIZE_PERFORMANCE_CPU_WEIGHT
                       : 0;
}

/* The agent's first ping, sent as soon as its socket exists (engine_spec.spawned), so that the
 * agent starts while the engine attaches the network: the agent answers once it accepts, which
 * is its readiness announcement (docs/decisions.md). fd < 0: not sent (ping again later). */
struct early_ping {
        struct coved *cd;
        const char *id;
        int timeout_ms;
        int fd;
};

static void early_ping_send(void *ud)
{
        struct early_ping *e = ud;
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *req = json_pack("{s:s}", "op", "ping");
        e->fd = agent_client_connect(e->cd, e->id, e->timeout_ms, &err);
        if (e->fd >= 0 && agent_client_send_json(e->fd, req, &err) < 0) {
                (void)close(e->fd);
                e->fd = -1;
        }
}

/* The early ping's answer: 0 when the agent answered 200, else < 0 (the caller pings again,
 * retrying, as without it). */
static int early_ping_wait(struct early_ping *e)
{
        if (e->fd < 0)
                return -EAGAIN;
        cleanup_close int fd = TAKE_FD(e->fd);
        cleanup_err struct cove_err *err = NULL;
        struct agent_reply rep = { 0 };
        int r = agent_client_read_reply(fd, &rep, &err);
        if (r >= 0 && rep.status != 200)
                r = -EIO;
        agent_reply_release(&rep);
        return r;
}

/* Starts the processes of a claimed, starting sandbox and waits for its agent. No lock is
 * held: the runtime helper may take up to a minute, the agent up to AGENT_READY_MAX_MS. The
 * sandbox's disk image and uid block were admitted before its row was written (admit()). */
static int start_runtime(struct coved *cd, const struct sandbox_rec *sb,
                         const struct template_rec *t, const json_t *volumes,
                         int64_t ready_deadline, struct engine_identity *ret, struct cove_err **err)
{
        int64_t range = 0;
        int r = store_uidrange_get(cd->store, sb->id, &range, err);
        if (r < 0)
                return r;
        struct engine_spec spec = {
                .id = sb->id,
                .layers = t->layers,
                .binds = t->binds,
                .volumes = volumes,
                .cpu_count = sb->cpu_count,
                .memory_mb = sb->memory_mb,
                .disk_mb = sb->disk_size_mb,
                .pids_max = cd->cfg.pids_max,
                .cpu_weight = size_cpu_weight(sb->size),
                .network = sb->network,
                .egress = sb->egress,
                .access_token = sb->access_token,
                .uid_base = cd->cfg.uid_base + range * 65536,
        };
        int64_t left = MAX(ready_deadline - time_mono_ms(), (int64_t)1);
        struct early_ping ping = { cd, sb->id, (int)MIN(left, AGENT_READY_MAX_MS), -1 };
        spec.spawned = early_ping_send;
        spec.spawned_ud = &ping;

        r = engine_start(cd, &spec, ret, err);
        if (r < 0) {
                if (ping.fd >= 0)
                        (void)close(ping.fd);
                return r;
        }
        left = MAX(ready_deadline - time_mono_ms(), (int64_t)1);
        int64_t t_us = time_mono_us();
        r = early_ping_wait(&ping);
        if (r < 0)
                r = agent_client_ping(cd, sb->id, (int)MIN(left, AGENT_READY_MAX_MS), err);
        metrics_create_phase("agent.ready", (double)(time_mono_us() - t_us) / 1e6);
        if (r < 0) {
                (void)engine_destroy(cd, sb->id, ret, NULL);
                return cove_err_wrap(err, "agent did not answer");
        }
        return 0;
}

/* What a claimed warm sandbox needs of the request beyond its row: its network policy, when
 * the request named one (the pool attached it with the default policy, as a fresh create
 * without one would). */
static int warm_configure(struct coved *cd, const struct sandbox_rec *sb, struct cove_err **err)
{
        if (!sb->network && !sb->egress)
                return 0;
        return engine_set_network(cd, sb->id, sb->network, sb->egress, err);
}

/* The sandbox's mounts [{name, path}] from the resolved [{id, name, path}]; a mount named
 * `workspace` is the default working directory (control-plane.md §4.1, runtime.md §8.2). */
static void sandbox_set_mounts(struct sandbox_rec *sb, const json_t *mounts)
{
        size_t i;
        json_t *m;
        json_array_foreach (mounts, i, m) {
                const char *name = json_string_value(json_object_get(m, "name"));
                const char *path = json_string_value(json_object_get(m, "path"));
                json_array_append_new(sb->volume_mounts,
                                      json_pack("{s:s, s:s}", "name", name, "path", path));
                if (streq(name, "workspace")) {
                        free(sb->workdir);
                        sb->workdir = xstrdup(path);
                }
        }
}

/* The mounts of a new sandbox, [{id, name, path}]: the template's defaults, then the
 * request's (the request wins on the same path), each name resolved in the team. 404
 * "volume '<name>' not found" otherwise. */
static int resolve_mounts(struct coved *cd, const char *team_id, const json_t *tpl,
                          const json_t *req, json_t **ret, struct cove_err **err)
{
        json_auto_t *all = json_array();
        const json_t *lists[] = { tpl, req };
        for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
                size_t i;
                json_t *m;
                json_array_foreach (lists[l], i, m) {
                        const char *raw = json_string_value(json_object_get(m, "path"));
                        const char *name = json_string_value(json_object_get(m, "name"));
                        if (!raw || !name)
                                continue;
                        cleanup_free char *path = path_normalize(NULL, raw);
                        size_t k;
                        json_t *have;
                        json_array_foreach (all, k, have)
                                if (streq(json_string_value(json_object_get(have, "path")), path)) {
                                        json_array_remove(all, k);
                                        break;
                                }
                        json_array_append_new(all,
                                              json_pack("{s:s, s:s}", "name", name, "path", path));
                }
        }
        json_t *out = json_array();
        size_t i;
        json_t *m;
        json_array_foreach (all, i, m) {
                const char *name = json_string_value(json_object_get(m, "name"));
                struct volume_rec *v = NULL;
                int r = store_volume_get_by_name(cd->store, team_id, name, &v, err);
                if (r < 0) {
                        json_decref(out);
                        if (r != -ENOENT)
                                return r;
                        cove_err_free(err);
                        return cove_err_set_status(err, 404, ENOENT, "volume '%s' not found", name);
                }
                json_array_append_new(out, json_pack("{s:s, s:s, s:O}", "id", v->id, "name", name,
                                                     "path", json_object_get(m, "path")));
                volume_rec_free(v);
        }
        *ret = out;
        return 0;
}

/* After the row exists: every volume it mounts still exists (a delete that came first
 * removed it; one that comes later sees the row and refuses). */
static int check_mounts_exist(struct coved *cd, const char *team_id, const json_t *mounts,
                              struct cove_err **err)
{
        size_t i;
        json_t *m;
        json_array_foreach (mounts, i, m) {
                struct volume_rec *v = NULL;
                const char *vid = json_string_value(json_object_get(m, "id"));
                if (store_volume_get(cd->store, team_id, vid, &v, NULL) < 0)
                        return cove_err_set_status(err, 404, ENOENT, "volume '%s' not found",
                                                   json_string_value(json_object_get(m, "name")));
                volume_rec_free(v);
        }
        return 0;
}

/* The template's startCmd (build-plane.md §4.1): started with /bin/sh -c in every sandbox of
 * the template, in the background, as root, with the sandbox's environment. Once the process
 * started, its stream goes to the startCmd log pump (startlog.c), which writes its output
 * into the sandbox's log (control-plane.md §8). */
static int start_cmd(struct coved *cd, const struct sandbox_rec *sb, const char *cmd,
                     struct cove_err **err)
{
        cleanup_close int fd = agent_client_connect(cd, sb->id, 30 * 1000, err);
        if (fd < 0)
                return fd;
        json_auto_t *req = json_pack("{s:s,s:s,s:O,s:{s:{s:s,s:[s,s]},s:b}}", "op", "process.Start",
                                     "user", "root", "env", sb->env_vars, "body", "process", "cmd",
                                     "/bin/sh", "args", "-c", cmd, "stdin", 0);
        if (sb->workdir)
                json_object_set_new(req, "workdir", json_string(sb->workdir));
        int r = agent_client_send_json(fd, req, err);
        json_t *first = NULL;
        if (r >= 0)
                r = agent_client_read_json(fd, &first, err);
        if (r >= 0) {
                int64_t st = 0;
                (void)json_get_integer(json_object_get(first, "status"), &st);
                if (st != 200)
                        r = cove_err_set(
                                err, EIO, "startCmd: %s",
                                json_string_value(json_object_get(first, "message"))
                                        ? json_string_value(json_object_get(first, "message"))
                                        : "could not start");
        }
        json_decref(first);
        if (r >= 0) {
                sandbox_log(cd, sb->id, "info", "start_cmd", "startCmd started: %s", cmd);
                startlog_add(mgr(cd)->startlog, sb->id, TAKE_FD(fd));
        }
        return r;
}

#define READY_LOG_LINES_MAX 50

/* The first READY_LOG_LINES_MAX lines of text (a copy). */
static char *first_lines(const char *text)
{
        const char *p = text;
        for (int i = 0; i < READY_LOG_LINES_MAX && p; i++) {
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return p ? xstrndup(text, (size_t)(p - text)) : xstrdup(text);
}

/* A failed readyCmd run in the sandbox's log (control-plane.md §8, source "ready_cmd"): its
 * exit code and output lines. A run that failed exactly like the one before (same code and
 * output) is only counted, so a probe retried every 200 ms does not flood the log; the count
 * is reported with the next different failure or the success; at most READY_LOG_LINES_MAX
 * lines of each stream are kept. *last (owned) is the previous failure. */
static void log_ready_failure(struct coved *cd, const char *id, int64_t code, const json_t *body,
                              char **last, int64_t *repeats)
{
        const char *out = json_string_value(json_object_get(body, "stdout"));
        const char *errs = json_string_value(json_object_get(body, "stderr"));
        char *now = xasprintf("%lld\n%s\n%s", (long long)code, out ? out : "", errs ? errs : "");
        if (*last && streq(*last, now)) {
                free(now);
                (*repeats)++;
                return;
        }
        if (*repeats > 0)
                sandbox_log(cd, id, "warn", "ready_cmd",
                            "readyCmd failed the same way %lld more times", (long long)*repeats);
        free(*last);
        *last = now;
        *repeats = 0;
        sandbox_log(cd, id, "warn", "ready_cmd", "readyCmd failed with exit code %lld",
                    (long long)code);
        const char *texts[] = { out, errs };
        for (size_t i = 0; i < ARRAY_SIZE(texts); i++)
                if (texts[i] && *texts[i]) {
                        cleanup_free char *head = first_lines(texts[i]);
                        (void)manager_sandbox_log(cd, id, "ready_cmd", i == 0 ? "info" : "warn",
                                                  head, NULL);
                }
}

/* readyCmd (§4.1): run with /bin/sh -c until it exits 0, at most `wait_ms`. */
static int wait_ready_cmd(struct coved *cd, const struct sandbox_rec *sb, const char *cmd,
                          int64_t wait_ms, struct cove_err **err)
{
        int64_t deadline = time_mono_ms() + wait_ms;
        int64_t code = -1;
        cleanup_free char *last = NULL;
        int64_t repeats = 0;
        for (;;) {
                struct agent_reply rep = { 0 };
                json_auto_t *req =
                        json_pack("{s:s,s:s,s:O,s:{s:s,s:[s,s],s:I}}", "op", "run", "user", "root",
                                  "env", sb->env_vars, "body", "cmd", "/bin/sh", "args", "-c", cmd,
                                  "timeoutMs", (json_int_t)10000);
                if (sb->workdir)
                        json_object_set_new(req, "workdir", json_string(sb->workdir));
                cleanup_err struct cove_err *e = NULL;
                if (agent_client_call(cd, sb->id, req, 15 * 1000, &rep, &e) == 0) {
                        json_t *body = rep.body;
                        json_auto_t *parsed = NULL;
                        if (!body && rep.body_text)
                                body = parsed = json_loadb(rep.body_text, rep.body_len, 0, NULL);
                        code = -1;
                        (void)json_get_integer(json_object_get(body, "exit_code"), &code);
                        if (code != 0)
                                log_ready_failure(cd, sb->id, code, body, &last, &repeats);
                        agent_reply_release(&rep);
                        if (code == 0) {
                                if (repeats > 0)
                                        sandbox_log(cd, sb->id, "warn", "ready_cmd",
                                                    "readyCmd failed the same way %lld more "
                                                    "times, then succeeded",
                                                    (long long)repeats);
                                return 0;
                        }
                }
                if (time_mono_ms() >= deadline)
                        return cove_err_set_status(err, 500, ETIMEDOUT,
                                                   "readyCmd did not succeed within %llds (last "
                                                   "exit code %lld)",
                                                   (long long)(wait_ms / 1000), (long long)code);
                struct timespec ts = { 0, 200 * 1000000L };
                (void)nanosleep(&ts, NULL);
        }
}

/* A new record in state starting, from the template and the request. */
static struct sandbox_rec *new_sandbox(struct coved *cd, const struct create_params *p,
                                       const struct template_rec *t, const char *ref,
                                       const json_t *mounts)
{
        int64_t now = time_now_ms();
        int64_t timeout_s = p->idle_timeout_s > 0 ? p->idle_timeout_s
                            : p->timeout_s > 0    ? p->timeout_s
                            : t->ttl_seconds > 0  ? t->ttl_seconds
                                                  : cd->cfg.default_timeout;
        struct sandbox_rec *sb = xzalloc(sizeof(*sb));
        unsigned char tok[32];

        sb->id = xzalloc(21);
        random_alnum(sb->id, 20);
        if (random_bytes(tok, sizeof(tok)) < 0)
                abort();
        sb->access_token = b64_encode_alloc(tok, sizeof(tok), B64_URL | B64_NOPAD);
        sb->team_id = xstrdup(p->team_id);
        sb->key_id = p->key_id ? xstrdup(p->key_id) : NULL;
        sb->template_id = xstrdup(t->id);
        sb->alias = streq(ref, t->id) ? NULL : xstrdup(ref);
        sb->state = SANDBOX_STARTING;
        sb->started_at = now;
        sb->end_at = now + timeout_s * 1000;
        sb->cpu_count = p->cpu_count > 0   ? p->cpu_count
                        : t->cpu_count > 0 ? t->cpu_count
                                           : cd->cfg.default_cpu_count;
        sb->memory_mb = p->memory_mb > 0   ? p->memory_mb
                        : t->memory_mb > 0 ? t->memory_mb
                                           : cd->cfg.default_memory_mb;
        sb->disk_size_mb = p->disk_mb > 0        ? p->disk_mb
                           : t->disk_size_mb > 0 ? t->disk_size_mb
                                                 : cd->cfg.default_disk_mb;
        sb->auto_pause = p->auto_pause || p->idle_timeout_s > 0;
        sb->auto_resume = p->auto_resume || p->idle_timeout_s > 0;
        sb->size = p->size ? xstrdup(p->size) : NULL;
        sb->idle_timeout_ms = p->idle_timeout_s > 0 ? p->idle_timeout_s * 1000 : 0;
        sb->timeout_ms = p->idle_timeout_s > 0 ? 0 : timeout_s * 1000;
        sb->last_active_at = now;
        sb->updated_at = now;
        sb->egress = p->egress ? json_deep_copy(p->egress) : NULL;
        sb->metadata = p->metadata ? json_deep_copy(p->metadata) : json_object();
        /* the environment its build gave the template (image Env, ENV steps), then the
         * template's own envs, then the request's */
        sb->env_vars = json_object();
        size_t ei;
        json_t *ev;
        json_array_foreach (json_object_get(t->build_config, "env"), ei, ev) {
                const char *e = json_string_value(ev), *eq = e ? strchr(e, '=') : NULL;
                if (eq) {
                        cleanup_free char *k = xstrndup(e, (size_t)(eq - e));
                        json_object_set_new(sb->env_vars, k, json_string(eq + 1));
                }
        }
        if (t->envs)
                json_object_update(sb->env_vars, t->envs);
        if (p->env_vars)
                json_object_update(sb->env_vars, p->env_vars);
        sb->network = json_deep_copy(p->network);
        sb->timeline = json_array();
        sb->volume_mounts = json_array();
        const char *build_wd = json_string_value(json_object_get(t->build_config, "workdir"));
        sb->workdir = t->workdir ? xstrdup(t->workdir) : build_wd ? xstrdup(build_wd) : NULL;
        /* a build through the E2B face names its last USER (e2b.md §2.7, §4.2) */
        const char *e2b_user = json_string_value(json_object_get(t->build_config, "e2bUser"));
        sb->e2b_user = e2b_user ? xstrdup(e2b_user) : NULL;
        sandbox_set_mounts(sb, mounts);
        sb->exec_n = 1;
        sb->deadline_at = deadline_of(cd, sb);
        timeline_push(sb, "created", "completed", NULL);
        timeline_push(sb, "template_resolved", "completed", t->id);
        timeline_push(sb, "runtime_starting", "in_progress", NULL); /* create starts it at once */
        return sb;
}

/* A template by ID or name; `code-interpreter-v1`, the E2B code-interpreter SDK's default,
 * is an alias of the official `code-interpreter` on every face (e2b.md §6). */
static int resolve_template(struct coved *cd, const char *ref, struct template_rec **ret,
                            struct cove_err **err)
{
        int r = store_template_resolve(cd->store, ref, ret, err);
        if (r == -ENOENT && streq(ref, "code-interpreter-v1")) {
                cove_err_free(err);
                r = store_template_resolve(cd->store, "code-interpreter", ret, err);
        }
        return r;
}

/* The error of a waitReady create whose sandbox did not start (and is gone): 500, or 503
 * when the caller's own ready wait ran out (create_params.ready_wait_ms). */
static int start_failed(struct cove_err **err, const struct create_params *p, const char *id,
                        int64_t ready_deadline, int64_t wait_ms, const struct cove_err *why)
{
        if (p->ready_wait_ms > 0 && time_mono_ms() >= ready_deadline)
                return cove_err_set_status(err, 503, ETIMEDOUT,
                                           "sandbox '%s' was not ready within %llds", id,
                                           (long long)((wait_ms + 999) / 1000));
        return cove_err_set_status(err, 500, EIO, "sandbox '%s' failed to start: %s", id, why->msg);
}

/* The writes of a failed start (its sandbox is gone from the engine): without waitReady the
 * row stays, stopped with start_failed (one step with its killed event and log entry); with
 * it, the row goes with its killed event and its log. */
static int create_failed(struct coved *cd, const struct create_params *p,
                         const struct sandbox_rec *sb, const struct engine_identity *who,
                         int64_t ready_deadline, int64_t wait_ms, const struct cove_err *why,
                         struct sandbox_rec **ret, struct cove_err **err)
{
        const char *id = sb->id;
        if (p->wait_ready) {
                (void)release_engine_and_range(cd, id, who, NULL);
                struct event_rec *ev =
                        event_new(sb, EVENT_KILLED, json_pack("{s:s}", "reason", "start_failed"));
                (void)store_sandbox_delete_event(cd->store, id, ev, NULL);
                event_rec_free(ev);
                (void)store_log_delete_all(cd->store, id, NULL);
                return start_failed(err, p, id, ready_deadline, wait_ms, why);
        }
        (void)engine_destroy(cd, id, who, NULL); /* its uid block goes with its row */
        struct start_result res = { .error = why->msg };
        return modify(cd, id, set_started, &res, ret, err);
}

static int create_sandbox(struct coved *cd, const struct create_params *p, struct sandbox_rec **ret,
                          struct cove_err **err)
{
        const char *ref = p->template_ref && *p->template_ref ? p->template_ref : "base";
        struct template_rec *owned = NULL;
        const struct template_rec *t = p->tpl;
        int64_t wait_ms = cd->cfg.ready_wait * 1000;
        if (p->ready_wait_ms > 0 && p->ready_wait_ms < wait_ms)
                wait_ms = p->ready_wait_ms;
        int64_t ready_deadline = time_mono_ms() + wait_ms;
        int r = 0;

        if (!t)
                r = resolve_template(cd, ref, &owned, err);
        t = t ? t : owned;
        if (r < 0) {
                if (r == -ENOENT) {
                        cove_err_free(err);
                        return cove_err_set_status(err, 404, ENOENT, "template '%s' not found",
                                                   ref);
                }
                return r;
        }
        if (!t->build_status || !streq(t->build_status, "ready")) {
                template_rec_free(owned);
                return cove_err_set_status(err, 409, EBUSY, "template '%s' has no ready build",
                                           ref);
        }

        json_t *mounts = NULL;
        struct quota_scope quota = { 0 };
        /* the template's default mounts (build-plane.md §4.1 volumeMounts), then the request's */
        r = resolve_mounts(cd, p->team_id, t->volume_mounts, p->volume_mounts, &mounts, err);
        /* the limits are read once: the lifetime check here, the admission with the insert */
        if (r >= 0)
                r = quota_read(cd, p->team_id, p->key_id, &quota, err);
        int64_t max_lifetime = quota_scope_max_lifetime(&quota);
        if (r >= 0 && p->timeout_s > max_lifetime)
                r = lifetime_error(err, p->timeout_s, max_lifetime);
        if (r < 0) {
                json_decref(mounts);
                template_rec_free(owned);
                return r;
        }
        struct sandbox_rec *sb = new_sandbox(cd, p, t, ref, mounts);
        struct engine_identity who = { 0 };
        /* A warm sandbox of the same shape, when the pool has one (manager/warm.c): it takes
         * the ID, access token, uid block, disk and network made for it ahead. */
        struct warm_sandbox warm = { 0 };
        int64_t t_us = time_mono_us();
        bool is_warm = json_array_size(mounts) == 0 &&
                       warm_claim(cd, t, sb->cpu_count, sb->memory_mb, sb->disk_size_mb, &warm);
        if (is_warm) {
                memcpy(sb->id, warm.id, sizeof(warm.id));
                free(sb->access_token);
                sb->access_token = TAKE_PTR(warm.access_token);
                who = warm.who;
                metrics_create_phase("warm.claim", (double)(time_mono_us() - t_us) / 1e6);
        }
        warm_sandbox_done(&warm);
        const char *id = sb->id;
        if (sb->end_at - sb->started_at > max_lifetime * 1000) { /* a default, not asked for */
                sb->end_at = sb->started_at + max_lifetime * 1000;
                if (sb->timeout_ms > max_lifetime * 1000)
                        sb->timeout_ms = max_lifetime * 1000;
        }
        int64_t timeout_s = (sb->end_at - sb->started_at) / 1000;
        cleanup_err struct cove_err *serr = NULL;
        bool has_start_cmd = t->start_cmd && *t->start_cmd;
        bool has_ready_cmd = p->wait_ready && t->ready_cmd && *t->ready_cmd;

        /* Claimed before its row exists: whoever sees it starting can wait for the claim. The
         * created event and the first log entry are written with the row (and a failed
         * admission writes none of them). */
        (void)claim_acquire(mgr(cd)->claims, id, -1);
        event_attach(
                sb, EVENT_CREATED,
                json_pack("{s:s, s:I}", "templateID", t->id, "timeout", (json_int_t)timeout_s));
        char msg[BUF_MAX_ERR_MSG];
        (void)snprintf(msg, sizeof(msg), "sandbox created from template '%s' (%s), timeout %llds",
                       ref, t->id, (long long)timeout_s);
        sandbox_rec_log(sb, "info", "system", msg);
        /* A warm sandbox runs already: when nothing of the template must run before it counts
         * as running, its network policy is applied first and its row is written once, as
         * running, with its event, both log entries and the template's spawn (one
         * transaction instead of five). */
        bool one_step = false;
        if (is_warm && !has_start_cmd && !has_ready_cmd) {
                t_us = time_mono_us();
                r = warm_configure(cd, sb, &serr);
                metrics_create_phase("warm.configure", (double)(time_mono_us() - t_us) / 1e6);
                if (r >= 0) {
                        struct start_result res = { .who = &who, .template_id = t->id };
                        (void)set_started(cd, sb, &res, NULL);
                        one_step = true;
                }
        }
        sb->deadline_at = deadline_of(cd, sb);
        r = is_warm ? 0 : admit(cd, sb, err);
        t_us = time_mono_us();
        if (r >= 0)
                r = quota_admit_sandbox(cd, sb, &quota, err);
        metrics_create_phase("store.insert+quota", (double)(time_mono_us() - t_us) / 1e6);
        if (r < 0) {
                (void)release_engine_and_range(cd, id, is_warm ? &who : NULL, NULL);
                goto out;
        }
        r = check_mounts_exist(cd, p->team_id, mounts, err);
        if (r < 0) {
                struct event_rec *ev =
                        event_new(sb, EVENT_KILLED, json_pack("{s:s}", "reason", "start_failed"));
                (void)store_sandbox_delete_event(cd->store, id, ev, NULL);
                event_rec_free(ev);
                (void)store_log_delete_all(cd->store, id, NULL);
                (void)release_engine_and_range(cd, id, NULL, NULL);
                goto out;
        }
        lifecycle_deadline_changed(mgr(cd)->lc, sb->deadline_at);
        if (one_step) { /* sb reads as the store holds it now (store_sandbox_insert*()) */
                lifecycle_watch(mgr(cd)->lc, id, &who);
                if (ret) /* id stays valid: it is (*ret)->id, or sb's, freed after its use */
                        *ret = TAKE_PTR(sb);
                goto out;
        }

        if (serr || (is_warm ? warm_configure(cd, sb, &serr)
                             : start_runtime(cd, sb, t, mounts, ready_deadline, &who, &serr)) < 0) {
                log_warning("sandbox '%s' failed to start: %s", id, serr->msg);
                r = create_failed(cd, p, sb, is_warm ? &who : NULL, ready_deadline, wait_ms, serr,
                                  ret, err);
                goto out;
        }
        /* the template's service and readiness probe (a startCmd that cannot start, or a
         * readyCmd that never succeeds, is a failed start like any other) */
        if (has_start_cmd && start_cmd(cd, sb, t->start_cmd, &serr) < 0)
                log_warning("sandbox '%s': %s", id, serr->msg);
        cove_err_free(&serr);
        if (has_ready_cmd &&
            wait_ready_cmd(cd, sb, t->ready_cmd, MAX(ready_deadline - time_mono_ms(), (int64_t)1),
                           &serr) < 0) {
                log_warning("sandbox '%s': %s", id, serr->msg);
                (void)engine_destroy(cd, id, &who, NULL);
                (void)store_sandbox_delete(cd->store, id, NULL);
                (void)store_log_delete_all(cd->store, id, NULL);
                r = start_failed(err, p, id, ready_deadline, wait_ms, serr);
                goto out;
        }
        /* running, its log entry and the template's spawn: one step */
        struct start_result res = { .who = &who, .template_id = t->id };
        t_us = time_mono_us();
        r = modify(cd, id, set_started, &res, ret, err);
        metrics_create_phase("store.running", (double)(time_mono_us() - t_us) / 1e6);
        if (r >= 0)
                lifecycle_watch(mgr(cd)->lc, id, &who);
out:
        claim_release(mgr(cd)->claims, id);
        template_rec_free(owned);
        sandbox_rec_free(sb);
        json_decref(mounts);
        return r;
}

int manager_create(struct coved *cd, const struct create_params *p, struct sandbox_rec **ret,
                   struct cove_err **err)
{
        int64_t t0 = time_mono_ms(), t_us = time_mono_us();
        atomic_fetch_add(&mgr(cd)->creating, 1);
        int r = create_sandbox(cd, p, ret, err);
        atomic_fetch_sub(&mgr(cd)->creating, 1);
        metrics_create_phase("manager.total (all of the above)",
                             (double)(time_mono_us() - t_us) / 1e6);
        metrics_sandbox_create(r >= 0, (double)(time_mono_ms() - t0) / 1000.0);
        return r;
}

/* ---- delete / stop ---- */

/* Removes a claimed sandbox: freezes its processes (nothing of it runs from then on), retires
 * its row and log, and queues the teardown of what the engine holds (teardown.c), which runs
 * after the caller answered. A sandbox that was not stopped yet gets its killed event (reason
 * "deleted", "timeout" or "paused_expired") with the row's removal; a stopped one had it when
 * it stopped. */
static int destroy_claimed(struct coved *cd, const struct sandbox_rec *sb, const char *reason,
                           struct cove_err **err)
{
        struct engine_identity who = identity_of(sb);
        int64_t now = time_now_ms();
        bool froze = sb->init_pid > 0 && sb->state != SANDBOX_PAUSED &&
                     engine_pause(cd, sb->id, NULL) >= 0;
        /* The /v1 face shows it destroyed for a day (from when it stopped, if it had). A
         * sandbox that had not stopped yet gets its killed event with the removal. */
        int64_t gone_at = sb->state == SANDBOX_STOPPED && sb->stopped_at > 0 ? sb->stopped_at : now;
        struct event_rec *ev = NULL;
        if (sb->state != SANDBOX_STOPPED)
                ev = event_new(sb, EVENT_KILLED, json_pack("{s:s}", "reason", reason));
        int r = store_sandbox_retire(cd->store, sb->id, gone_at,
                                     now - MANAGER_DESTROYED_RETENTION_MS, ev, err);
        event_rec_free(ev);
        if (r < 0 && r != -ENOENT) {
                if (froze) /* still there: as it was */
                        (void)engine_resume(cd, sb->id, NULL);
                return r;
        }
        lifecycle_unwatch(mgr(cd)->lc, sb->id);
        atomic_fetch_add(&mgr(cd)->deleting, 1);
        atomic_fetch_add(&mgr(cd)->deleted, 1);
        (void)store_log_delete_all(cd->store, sb->id, NULL);
        teardown_push(cd, sb->id, sb->init_pid ? &who : NULL);
        log_info("sandbox '%s' deleted (%s)", sb->id, reason);
        return 0;
}

int manager_delete(struct coved *cd, const char *team_id, const char *id, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r = claim_visible(cd, team_id, id, -1, &sb, err);
        if (r < 0)
                return r;
        r = destroy_claimed(cd, sb, "deleted", err);
        claim_release(mgr(cd)->claims, id);
        sandbox_rec_free(sb);
        return r;
}

static int set_exited(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const struct engine_identity *who = ud;
        (void)cd;
        if ((sb->state == SANDBOX_STOPPED) || !identity_same(sb, who))
                return cove_err_set(err, ESTALE, "moved on");
        sb->state = SANDBOX_STOPPED;
        sb->stopped_at = time_now_ms();
        sb->init_pid = 0;
        timeline_push(sb, "stopped", "failed", "the sandbox's init process exited");
        diagnostic_set(sb, "runtime_exited",
                       "the sandbox's init process exited; its processes are gone",
                       "delete the sandbox and create a new one");
        event_attach(sb, EVENT_KILLED, json_pack("{s:s}", "reason", "runtime_exited"));
        return 1;
}

/* The init of a claimed sandbox is gone: release what it held, mark the row stopped. */
static void mark_exited_claimed(struct coved *cd, const char *id, const struct engine_identity *who)
{
        cleanup_err struct cove_err *err = NULL;
        lifecycle_unwatch(mgr(cd)->lc, id);
        (void)engine_destroy(cd, id, who, NULL);
        if (modify(cd, id, set_exited, (void *)who, NULL, &err) < 0)
                return;
        sandbox_log(cd, id, "error", "system", "sandbox stopped: init process exited");
        log_warning("sandbox '%s': init exited, marked stopped", id);
}

int manager_init_exited(struct coved *cd, const char *id, const struct engine_identity *who)
{
        struct sandbox_rec *sb = NULL;
        if (claim_try(mgr(cd)->claims, id) < 0)
                return -EBUSY;
        if (store_sandbox_get(cd->store, id, &sb, NULL) >= 0 && sb->state != SANDBOX_STOPPED &&
            identity_same(sb, who)) {
                engine_reap(who);
                mark_exited_claimed(cd, id, who);
        } else {
                lifecycle_unwatch(mgr(cd)->lc, id); /* deleted or moved on meanwhile */
        }
        sandbox_rec_free(sb);
        claim_release(mgr(cd)->claims, id);
        return 0;
}

/* ---- pause / resume ---- */

static int set_paused(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const char *reason = ud;
        (void)cd;
        (void)err;
        sb->paused_remaining_ms = MAX(sb->end_at - time_now_ms(), (int64_t)0);
        sb->state = SANDBOX_PAUSED;
        sb->stopped_at = time_now_ms(); /* the paused age counts from here */
        timeline_push(sb, "paused", "completed", reason);
        diagnostic_set(sb, "paused",
                       streq(reason, "timeout") ? "sandbox paused because its timeout passed"
                       : streq(reason, "idle")  ? "sandbox suspended after its idle timeout"
                                                : "sandbox paused by request",
                       "connect to the sandbox to resume it");
        /* §12.1 knows two reasons: a suspension for idleness (the /v1 face) is a timeout's. */
        event_attach(
                sb, EVENT_PAUSED,
                json_pack("{s:s}", "reason", streq(reason, "request") ? "request" : "timeout"));
        return 1;
}

static int pause_claimed(struct coved *cd, const struct sandbox_rec *sb, const char *reason,
                         struct cove_err **err)
{
        int r = engine_pause(cd, sb->id, err);
        if (r < 0)
                return r;
        agent_pool_forget(cd->agents, sb->id); /* a frozen agent answers nothing */
        r = modify(cd, sb->id, set_paused, (void *)reason, NULL, err);
        if (r >= 0) {
                sandbox_log(cd, sb->id, "info", "system", "sandbox paused (%s)", reason);
                /* Read the row into the row cache now, off the resume's path: the resume's
                 * claim then finds it there instead of reading and parsing it (unless
                 * something writes the row meanwhile, which drops it). */
                struct sandbox_rec *warm = NULL;
                if (manager_get(cd, NULL, sb->id, &warm, NULL) >= 0)
                        sandbox_rec_free(warm);
        }
        return r;
}

int manager_pause(struct coved *cd, const char *team_id, const char *id, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r = claim_visible(cd, team_id, id, -1, &sb, err);
        if (r < 0)
                return r;
        if (sb->state == SANDBOX_PAUSED)
                r = cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is already paused", id);
        else if (sb->state != SANDBOX_RUNNING)
                r = cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is not running", id);
        else
                r = pause_claimed(cd, sb, "request", err);
        claim_release(mgr(cd)->claims, id);
        sandbox_rec_free(sb);
        return r;
}

struct resume_args {
        int64_t timeout_s;
        const char *trigger;
};

static int set_resumed(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const struct resume_args *a = ud;
        int64_t now = time_now_ms();
        (void)err;
        /* The resume is the sandbox's activity too (set_active()'s fields, in this one write):
         * a persistent sandbox is idle from now, whatever timeout a connect asked for. */
        if (sb->idle_timeout_ms > 0)
                sb->end_at = now + sb->idle_timeout_ms;
        else if (a->timeout_s > 0)
                sb->end_at = now + a->timeout_s * 1000;
        else if (sb->paused_remaining_ms < RESUME_MIN_REMAINING_MS)
                sb->end_at = now + cd->cfg.default_timeout * 1000;
        else
                sb->end_at = now + sb->paused_remaining_ms;
        sb->paused_remaining_ms = 0;
        sb->stopped_at = 0;
        sb->exec_n++;
        sb->activated_at = now;
        sb->last_active_at = now;
        sb->state = SANDBOX_RUNNING;
        timeline_push(sb, "resumed", "completed", a->trigger);
        diagnostic_clear(sb);
        /* §12.1's triggers: an explicit connect or wake is "connect", a resume caused by use of
         * the sandbox (runtime requests, /v1 calls) is "auto_resume". */
        bool asked = streq(a->trigger, "connect") || streq(a->trigger, "wake");
        event_attach(sb, EVENT_RESUMED,
                     json_pack("{s:s}", "trigger", asked ? "connect" : "auto_resume"));
        return 1;
}

/* Resumes a claimed, paused sandbox; *ret (optional) is the row after. */
static int resume_claimed(struct coved *cd, const struct sandbox_rec *sb, int64_t timeout_s,
                          const char *trigger, struct sandbox_rec **ret, struct cove_err **err)
{
        struct resume_args a = { timeout_s, trigger };
        int r = engine_resume(cd, sb->id, err);
        if (r < 0)
                return r;
        /* A policy set while paused applies now (control-plane.md §7.6). */
        r = engine_set_network(cd, sb->id, sb->network, sb->egress, err);
        if (r < 0)
                return cove_err_wrap(err, "apply the network policy of sandbox '%s'", sb->id);
        r = modify(cd, sb->id, set_resumed, &a, ret, err);
        if (r >= 0)
                sandbox_log(cd, sb->id, "info", "system", "sandbox resumed (%s)", trigger);
        return r;
}

/* The updated event of a new endAt (control-plane.md §12.1). */
static void attach_end_updated(struct sandbox_rec *sb)
{
        char ts[TIME_RFC3339_MAX];
        time_format_rfc3339(sb->end_at, ts);
        event_attach(sb, EVENT_UPDATED, json_pack("{s:s}", "endAt", ts));
}

static int set_end(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const int64_t *end_at = ud;
        (void)cd;
        (void)err;
        sb->end_at = *end_at;
        attach_end_updated(sb);
        return 1;
}

int manager_connect(struct coved *cd, const char *team_id, const char *id, int64_t timeout_s,
                    struct sandbox_rec **ret, bool *ret_resumed, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL, *after = NULL;
        bool resumed = false;

        /* A starting sandbox is claimed by its create: waiting for the claim waits for it. */
        int r = claim_visible(cd, team_id, id, (int)MIN(cd->cfg.ready_wait * 1000, INT32_MAX), &sb,
                              err);
        if (r == -ETIMEDOUT)
                return busy_error(cd, id, "is still starting", err);
        if (r < 0)
                return r;
        int64_t max = 86400;
        if (timeout_s > 0)
                r = quota_max_lifetime(cd, sb->team_id, sb->key_id, &max, err);
        if (r >= 0 && timeout_s > max)
                r = lifetime_error(err, timeout_s, max);
        if (r < 0) {
                /* nothing to do */
        } else if (sb->state == SANDBOX_STOPPED) {
                r = cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is stopped", id);
        } else if (sb->state == SANDBOX_PAUSED) {
                r = resume_claimed(cd, sb, timeout_s, "connect", &after, err);
                resumed = r >= 0;
        } else if (sb->state == SANDBOX_RUNNING) {
                if (timeout_s > 0) {
                        int64_t end_at = time_now_ms() + timeout_s * 1000;
                        r = modify(cd, id, set_end, &end_at, &after, err);
                }
        } else {
                r = cove_err_set_status(err, 503, EAGAIN, "sandbox '%s' is still starting", id);
        }
        claim_release(mgr(cd)->claims, id);
        if (r < 0) {
                sandbox_rec_free(sb);
                return r;
        }
        if (after) {
                sandbox_rec_free(sb);
                sb = after;
        }
        /* A connect is activity (v1-api.md §6); a resume has recorded it with the transition
         * (set_resumed()), one store write fewer on the resume path. */
        if (!resumed)
                activity_touch(cd, &sb, /* force= */ true);
        *ret = sb;
        *ret_resumed = resumed;
        return 0;
}

/* ---- network policy ---- */

static int set_network(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)cd;
        (void)err;
        json_t *n = ud;
        json_decref(sb->network);
        sb->network = json_deep_copy(n);
        /* Set through the SeaCloud face: its order (allow overrides deny) from now on. */
        json_decref(sb->egress);
        sb->egress = NULL;
        event_attach(sb, EVENT_UPDATED,
                     json_pack("{s:{s:O, s:O, s:O, s:O}}", "network", "allowPublicTraffic",
                               json_object_get(n, "allowPublicTraffic"), "allowInternetAccess",
                               json_object_get(n, "allowInternetAccess"), "allowOut",
                               json_object_get(n, "allowOut"), "denyOut",
                               json_object_get(n, "denyOut")));
        return 1;
}

int manager_set_network(struct coved *cd, const char *team_id, const char *id, json_t *network,
                        struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r = claim_visible(cd, team_id, id, (int)MIN(cd->cfg.ready_wait * 1000, INT32_MAX), &sb,
                              err);
        if (r == -ETIMEDOUT)
                return busy_error(cd, id, "is still starting", err);
        if (r < 0)
                return r;
        if (sb->state == SANDBOX_STOPPED) {
                r = cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is stopped", id);
                goto out;
        }
        /* Enforced first, then recorded: a failure leaves the old policy in both places. A
         * paused sandbox gets it on resume (resume_claimed()). */
        if (sb->state != SANDBOX_PAUSED) {
                r = engine_set_network(cd, id, network, NULL, err);
                if (r < 0)
                        goto out;
        }
        r = modify(cd, id, set_network, network, NULL, err);
        if (r >= 0)
                sandbox_log(cd, id, "info", "system", "network policy updated");
out:
        claim_release(mgr(cd)->claims, id);
        sandbox_rec_free(sb);
        return r;
}

/* ---- timeout / heartbeat / environment: one-step writes, no claim ---- */

struct timeout_args {
        const char *id;
        int64_t timeout_s;
        bool extend_only;
};

static int set_timeout(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const struct timeout_args *a = ud;
        (void)cd;
        if (sb->state != SANDBOX_RUNNING && sb->state != SANDBOX_STARTING)
                return cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is %s", a->id,
                                           sandbox_state_to_string(sb->state));
        int64_t want = time_now_ms() + a->timeout_s * 1000;
        int64_t end = a->extend_only ? MAX(sb->end_at, want) : want;
        if (!a->extend_only && sb->idle_timeout_ms == 0)
                sb->timeout_ms = a->timeout_s * 1000;
        if (end != sb->end_at) {
                sb->end_at = end;
                attach_end_updated(sb);
        }
        return 1;
}

int manager_set_timeout(struct coved *cd, const char *team_id, const char *id, int64_t timeout_s,
                        bool extend_only, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int64_t max = 86400;
        int r = load_visible(cd, team_id, id, &sb, err);
        if (r >= 0)
                r = quota_max_lifetime(cd, sb->team_id, sb->key_id, &max, err);
        /* A refresh is clamped to the limit; an explicit timeout over it is a 400. */
        if (r >= 0 && !extend_only && timeout_s > max)
                r = lifetime_error(err, timeout_s, max);
        sandbox_rec_free(sb);
        if (r < 0)
                return r;
        struct timeout_args a = { id, extend_only ? MIN(timeout_s, max) : timeout_s, extend_only };
        return modify(cd, id, set_timeout, &a, NULL, err);
}

int manager_heartbeat_allowed(struct coved *cd, const char *team_id, const char *token,
                              const char *id, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r = store_sandbox_get(cd->store, id, &sb, NULL);
        if (team_id) {
                r = r == 0 && streq(team_id, sb->team_id)
                            ? 0
                            : cove_err_set_status(err, 404, ENOENT, "sandbox '%s' not found", id);
                sandbox_rec_free(sb);
                return r;
        }
        /* Without an API key the caller must not learn whether the ID exists: an unknown ID
         * is answered exactly like a wrong token. */
        const char *want = r == 0 && sb->access_token ? sb->access_token : NULL;
        size_t n = token ? strlen(token) : 0;
        bool ok = token && want && n == strlen(want) && CRYPTO_memcmp(token, want, n) == 0;
        sandbox_rec_free(sb);
        if (!ok)
                return cove_err_set_status(err, 401, EACCES,
                                           "missing or invalid API key or access token");
        return 0;
}

static int set_heartbeat(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const char *status = ud;
        (void)cd;
        (void)err;
        free(sb->heartbeat_status);
        sb->heartbeat_status = xstrdup(status);
        sb->heartbeat_at = time_now_ms();
        const char *reason = sb->diagnostic
                                     ? json_string_value(json_object_get(sb->diagnostic, "reason"))
                                     : NULL;
        if (streq(status, "error"))
                diagnostic_set(sb, "heartbeat_error", "the last heartbeat reported an error",
                               "check the software inside the sandbox");
        else if (streq(status, "healthy") && reason && streq(reason, "heartbeat_error"))
                diagnostic_clear(sb);
        return 1;
}

int manager_heartbeat(struct coved *cd, const char *id, const char *status, struct cove_err **err)
{
        return modify(cd, id, set_heartbeat, (void *)status, NULL, err);
}

static int set_envs(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        json_t *envs = ud;
        (void)cd;
        (void)err;
        if (!json_is_object(sb->env_vars)) {
                json_decref(sb->env_vars);
                sb->env_vars = json_object();
        }
        json_object_update(sb->env_vars, envs);
        return 1;
}

int manager_configure_envs(struct coved *cd, const char *id, json_t *envs, struct cove_err **err)
{
        return modify(cd, id, set_envs, envs, NULL, err);
}

static int set_on_timeout(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)cd;
        (void)err;
        sb->auto_pause = *(const bool *)ud;
        return 1;
}

int manager_set_on_timeout(struct coved *cd, const char *id, bool pause, struct cove_err **err)
{
        return modify(cd, id, set_on_timeout, &pause, NULL, err);
}

int manager_template_resolve(struct coved *cd, const char *ref, struct template_rec **ret,
                             struct cove_err **err)
{
        return resolve_template(cd, ref, ret, err);
}

/* ---- runtime access ---- */

/* manager_runtime_target() without the activity bookkeeping. */
static int runtime_target(struct coved *cd, const char *id, struct sandbox_rec **ret,
                          struct cove_err **err)
{
        struct sandbox_rec *sb = NULL, *after = NULL;
        int r = manager_get(cd, NULL, id, &sb, err);
        if (r < 0)
                return r;
        /* A sandbox that pauses on its own (its timeout, its idleness) may be in the middle
         * of doing so: its claim is waited for, so a request never reaches a frozen sandbox.
         * The others take no claim. */
        if (sb->state == SANDBOX_RUNNING && !sb->auto_pause) {
                *ret = sb;
                return 0;
        }
        sandbox_rec_free(sb);
        sb = NULL;
        r = claim_visible(cd, NULL, id, STARTING_WAIT_MS, &sb, err);
        if (r == -ETIMEDOUT)
                return busy_error(cd, id, "is not ready yet", err);
        if (r < 0)
                return r;
        if (sb->state == SANDBOX_STOPPED)
                r = cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is stopped", id);
        else if (sb->state == SANDBOX_PAUSED && !sb->auto_resume)
                r = cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is paused", id);
        else if (sb->state == SANDBOX_PAUSED)
                r = resume_claimed(cd, sb, 0, "auto_resume", &after, err);
        else if (sb->state == SANDBOX_STARTING)
                r = cove_err_set_status(err, 503, EAGAIN, "sandbox '%s' is not ready yet", id);
        claim_release(mgr(cd)->claims, id);
        if (r < 0) {
                sandbox_rec_free(sb);
                return r;
        }
        if (after) {
                sandbox_rec_free(sb);
                sb = after;
        }
        *ret = sb;
        return 0;
}

int manager_runtime_target(struct coved *cd, const char *id, struct sandbox_rec **ret,
                           struct cove_err **err)
{
        /* In flight before the state is read: the lifecycle loop, which checks this under
         * the sandbox's claim, then never suspends it for idleness under the request. */
        activity_begin(mgr(cd)->activity, id);
        int r = runtime_target(cd, id, ret, err);
        if (r < 0) {
                activity_end(mgr(cd)->activity, id);
                return r;
        }
        activity_touch(cd, ret, /* force= */ false);
        return 0;
}

int manager_runtime_target_nowait(struct coved *cd, const char *id, struct sandbox_rec **ret,
                                  struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;

        /* In flight before the state is read, as manager_runtime_target(). */
        activity_begin(mgr(cd)->activity, id);
        int r = manager_get(cd, NULL, id, &sb, err);
        /* runtime_target()'s no-claim case, with nothing for activity_touch() to write. */
        if (r >= 0 &&
            (sb->state != SANDBOX_RUNNING || sb->auto_pause || activity_due(sb, time_now_ms())))
                r = -EWOULDBLOCK;
        if (r < 0) {
                activity_end(mgr(cd)->activity, id);
                sandbox_rec_free(sb);
                return r;
        }
        *ret = sb;
        return 0;
}

static int running_identity(const struct sandbox_rec *sb, struct engine_identity *ret,
                            struct cove_err **err)
{
        if (sb->state != SANDBOX_RUNNING || sb->init_pid <= 0)
                return cove_err_set_status(err, 503, ESRCH, "sandbox '%s' is not running", sb->id);
        *ret = identity_of(sb);
        return 0;
}

int manager_usage(struct coved *cd, const struct sandbox_rec *sb, bool with_disk,
                  struct sandbox_usage *ret, struct cove_err **err)
{
        int r = engine_usage(cd, sb->id, ret, err);
        if (r >= 0 && with_disk) {
                struct engine_identity who = identity_of(sb);
                r = engine_disk_usage(cd, sb->id, &who, &ret->disk_bytes, err);
        }
        return r;
}

int manager_port_connect(struct coved *cd, const struct sandbox_rec *sb, uint16_t port,
                         int timeout_ms, struct cove_err **err)
{
        struct engine_identity who;
        int r = running_identity(sb, &who, err);
        if (r < 0)
                return r;
        return engine_port_connect(cd, sb->id, &who, port, timeout_ms, err);
}

/* ---- reads ---- */

int manager_get(struct coved *cd, const char *team_id, const char *id, struct sandbox_rec **ret,
                struct cove_err **err)
{
        struct manager *m = mgr(cd);
        struct sandbox_rec *sb = m ? rowcache_get(m->rows, id) : NULL;

        if (!sb) {
                int r = store_sandbox_get(cd->store, id, &sb, err);
                if (r == -ENOENT) {
                        cove_err_free(err);
                        return cove_err_set_status(err, 404, ENOENT, "sandbox '%s' not found", id);
                }
                if (r < 0)
                        return r;
                if (m)
                        rowcache_put(m->rows, sb);
        }
        /* The same visibility check as load_visible(): another team's sandbox is unknown. */
        if (team_id && !streq(sb->team_id, team_id)) {
                sandbox_rec_free(sb);
                return cove_err_set_status(err, 404, ENOENT, "sandbox '%s' not found", id);
        }
        *ret = sb;
        return 0;
}

int manager_list(struct coved *cd, const char *team_id, struct sandbox_rec ***ret,
                 struct cove_err **err)
{
        return store_sandbox_list(cd->store, team_id, ret, err);
}

int manager_logs(struct coved *cd, const char *team_id, const char *id, struct log_query *q,
                 struct log_page *ret, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r = manager_get(cd, team_id, id, &sb, err);
        sandbox_rec_free(sb);
        if (r < 0)
                return r;
        q->sandbox_id = id;
        return store_log_query(cd->store, q, ret, err);
}

#define SANDBOX_LOG_LINE_MAX 4096

int manager_sandbox_log(struct coved *cd, const char *id, const char *source, const char *level,
                        const char *text, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        int r = store_sandbox_get(cd->store, id, &sb, err);
        sandbox_rec_free(sb);
        if (r < 0)
                return r;
        /* One entry per line; bytes that are not UTF-8 become \xNN so every entry is JSON. */
        for (const char *p = text; p && *p;) {
                size_t l = strcspn(p, "\n");
                size_t keep = MIN(l, (size_t)SANDBOX_LOG_LINE_MAX);
                if (keep > 0 && p[keep - 1] == '\r')
                        keep--;
                cleanup_free char *line = utf8_escape_invalid(p, keep);
                r = store_log_append(cd->store, id, level, source, line, err);
                if (r < 0)
                        return r;
                p += l;
                if (*p == '\n')
                        p++;
        }
        return 0;
}

int manager_count_by_state(struct coved *cd, int64_t counts[_SANDBOX_STATE_MAX],
                           struct cove_err **err)
{
        return store_sandbox_count_states(cd->store, counts, err);
}

/* ---- lifecycle: deadlines, adoption ---- */

static int push_deadline(struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)err;
        sb->deadline_at = *(const int64_t *)ud;
        return 1;
}

int manager_due(struct coved *cd, const char *id)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = NULL;
        int64_t now = time_now_ms();
        int r = 0;

        if (claim_try(mgr(cd)->claims, id) < 0)
                return -EBUSY;
        if (store_sandbox_get(cd->store, id, &sb, NULL) < 0 || sb->deadline_at <= 0 ||
            sb->deadline_at > now)
                goto out; /* gone, or its deadline moved meanwhile */
        bool live = sb->state == SANDBOX_RUNNING || sb->state == SANDBOX_STARTING;
        bool expired = live && sb->end_at <= now;
        bool retention_over = sb->state == SANDBOX_STOPPED;
        bool paused_expired = sb->state == SANDBOX_PAUSED; /* its deadline is the maximum age */
        if (expired && sb->idle_timeout_ms > 0 && activity_busy(mgr(cd)->activity, id)) {
                /* A call is in flight: not idle. Its end moves the deadline; until then,
                 * look again one idle period later. */
                int64_t d = now + sb->idle_timeout_ms;
                (void)store_sandbox_modify(cd->store, id, push_deadline, &d, NULL, NULL);
        } else if (expired && sb->auto_pause && sb->state == SANDBOX_RUNNING) {
                r = pause_claimed(cd, sb, sb->idle_timeout_ms > 0 ? "idle" : "timeout", &err);
                if (r < 0)
                        log_warning("sandbox '%s': pause on timeout failed: %s", id, err->msg);
        } else if (paused_expired) {
                r = destroy_claimed(cd, sb, "paused_expired", &err);
                if (r < 0)
                        log_warning("sandbox '%s': delete failed: %s", id, err->msg);
        } else if (expired || retention_over) {
                r = destroy_claimed(cd, sb, expired ? "timeout" : "stopped retention", &err);
                if (r < 0)
                        log_warning("sandbox '%s': delete failed: %s", id, err->msg);
        } else {
                /* A deadline that no longer matches the row (written by an older coved). */
                int64_t d = deadline_of(cd, sb);
                (void)store_sandbox_modify(cd->store, id, push_deadline, &d, NULL, NULL);
        }
        if (r < 0) { /* retried later, not at every wake */
                int64_t d = now + DUE_FAILED_RETRY_MS;
                (void)store_sandbox_modify(cd->store, id, push_deadline, &d, NULL, NULL);
        }
out:
        sandbox_rec_free(sb);
        claim_release(mgr(cd)->claims, id);
        return 0;
}

int manager_init(struct coved *cd, struct cove_err **err)
{
        cleanup_err struct cove_err *perr = NULL;
        store_log_set_max(cd->store, cd->cfg.log_max_entries);
        if (store_log_prune_orphans(cd->store, &perr) < 0)
                log_warning("prune log entries of deleted sandboxes, ignoring: %s", perr->msg);
        struct manager *m = xzalloc(sizeof(*m));
        m->claims = claims_new();
        m->activity = activity_new();
        if (pthread_mutex_init(&m->rolling_lock, NULL) != 0)
                abort();
        m->rows = rowcache_new();
        int r = lifecycle_new(cd, &m->lc, err);
        if (r < 0) {
                claims_free(m->claims);
                activity_free(m->activity);
                rowcache_free(m->rows);
                (void)pthread_mutex_destroy(&m->rolling_lock);
                free(m);
                return r;
        }
        /* Every write of a sandbox row, by whichever path, drops it from the cache. */
        store_set_sandbox_write_hook(cd->store, rowcache_written, m->rows);
        if (startlog_new(cd, &m->startlog, &perr) < 0) /* its output is then not logged */
                log_warning("startCmd output will not be logged: %s", perr->msg);
        cd->manager = m;
        return warm_init(cd, err);
}

void manager_adopt(struct coved *cd)
{
        struct sandbox_rec **all = NULL;
        unsigned adopted = 0, lost = 0;

        if (store_sandbox_list(cd->store, NULL, &all, NULL) < 0)
                return;
        /* Single-threaded: before the lifecycle thread and the HTTP server start. */
        for (size_t i = 0; all[i]; i++) {
                struct sandbox_rec *sb = all[i];
                struct engine_identity who = identity_of(sb);
                if (sb->state != SANDBOX_STOPPED) {
                        if (sb->init_pid > 0 && engine_alive(&who)) {
                                cleanup_err struct cove_err *nerr = NULL;
                                adopted++;
                                lifecycle_watch(mgr(cd)->lc, sb->id, &who);
                                /* Reported, not left silently offline: the sandbox's log and
                                 * coved's say so; the sandbox keeps running without one. */
                                int nr = engine_adopt(cd, sb->id, &who, sb->network, sb->egress,
                                                      &nerr);
                                if (nr < 0) {
                                        log_warning("sandbox '%s': network not restored: %s",
                                                    sb->id, nerr->msg);
                                        sandbox_log(cd, sb->id, "error", "system",
                                                    "network could not be restored after a "
                                                    "restart of coved: %s",
                                                    nerr->msg);
                                }
                        } else {
                                lost++;
                                mark_exited_claimed(cd, sb->id, &who);
                                continue;
                        }
                }
                /* Deadlines written by a coved without them (or with other settings). */
                int64_t d = deadline_of(cd, sb);
                if (d != sb->deadline_at)
                        (void)store_sandbox_modify(cd->store, sb->id, push_deadline, &d, NULL,
                                                   NULL);
        }
        sandbox_list_free(all);
        reclaim_orphans(cd);
        engine_adopt_done(cd);
        if (adopted || lost)
                log_info("re-adopted %u sandboxes, %u found with their init gone", adopted, lost);
}

int manager_start(struct coved *cd, struct cove_err **err)
{
        int r = lifecycle_start(mgr(cd)->lc, err);
        if (r >= 0)
                r = teardown_start(cd, err);
        return r < 0 ? r : warm_start(cd, err);
}

void manager_stop(struct coved *cd)
{
        struct manager *m = mgr(cd);
        if (!m)
                return;
        warm_stop(cd);
        lifecycle_free(m->lc);
        startlog_free(m->startlog);
        teardown_stop(cd);
        claims_free(m->claims);
        activity_free(m->activity);
        store_set_sandbox_write_hook(cd->store, NULL, NULL);
        rowcache_free(m->rows);
        (void)pthread_mutex_destroy(&m->rolling_lock);
        free(m);
        cd->manager = NULL;
}

/* ---- the /v1 face (manager.h) ---- */

/* Still shown by the /v1 face: live, or gone (or stopped) less than the retention ago. */
static bool v1_retained(const struct sandbox_rec *sb, int64_t now)
{
        int64_t gone = sb->destroyed_at > 0                                 ? sb->destroyed_at
                       : sb->state == SANDBOX_STOPPED && sb->stopped_at > 0 ? sb->stopped_at
                                                                            : 0;
        return gone == 0 || gone + MANAGER_DESTROYED_RETENTION_MS > now;
}

/* The sandbox as the /v1 face sees it: the live row, else its tombstone (*ret_gone). 404
 * unknown (or past the retention), 403 another team's. A stopped row reads with destroyed_at
 * = stopped_at. */
static int v1_load(struct coved *cd, const char *team_id, const char *id, struct sandbox_rec **ret,
                   bool *ret_gone, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        bool gone = false;
        int r = store_sandbox_get(cd->store, id, &sb, NULL);
        if (r == -ENOENT) {
                gone = true;
                r = store_tombstone_get(cd->store, id, &sb, NULL);
        }
        if (r == -ENOENT || (r >= 0 && !v1_retained(sb, time_now_ms()))) {
                sandbox_rec_free(sb);
                return cove_err_set_status(err, 404, ENOENT, "sandbox '%s' not found", id);
        }
        if (r < 0)
                return cove_err_set(err, -r, "read sandbox '%s'", id);
        if (team_id && !streq(sb->team_id, team_id)) {
                sandbox_rec_free(sb);
                return cove_err_set_status(err, 403, EACCES,
                                           "sandbox '%s' belongs to another organization", id);
        }
        if (!gone && sb->state == SANDBOX_STOPPED)
                sb->destroyed_at = sb->stopped_at;
        *ret = sb;
        if (ret_gone)
                *ret_gone = gone;
        return 0;
}

static int destroyed_error(const char *id, struct cove_err **err)
{
        return cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is destroyed", id);
}

int manager_v1_get(struct coved *cd, const char *team_id, const char *id, struct sandbox_rec **ret,
                   struct cove_err **err)
{
        return v1_load(cd, team_id, id, ret, NULL, err);
}

static int v1_newest_first(const void *a, const void *b)
{
        const struct sandbox_rec *x = *(struct sandbox_rec *const *)a;
        const struct sandbox_rec *y = *(struct sandbox_rec *const *)b;
        if (x->started_at != y->started_at)
                return x->started_at > y->started_at ? -1 : 1;
        return strcmp(y->id, x->id);
}

int manager_v1_list(struct coved *cd, const char *team_id, struct sandbox_rec ***ret,
                    struct cove_err **err)
{
        struct sandbox_rec **live = NULL, **gone = NULL;
        int64_t now = time_now_ms();
        int r = store_sandbox_list(cd->store, team_id, &live, err);
        if (r < 0)
                return r;
        r = store_tombstone_list(cd->store, team_id, now - MANAGER_DESTROYED_RETENTION_MS, &gone,
                                 err);
        if (r < 0) {
                sandbox_list_free(live);
                return r;
        }
        size_t n = 0, nl = 0, ng = 0;
        while (live[nl])
                nl++;
        while (gone[ng])
                ng++;
        struct sandbox_rec **all = xzalloc((nl + ng + 1) * sizeof(*all));
        for (size_t i = 0; i < nl; i++) {
                if (!v1_retained(live[i], now)) {
                        sandbox_rec_free(live[i]);
                        continue;
                }
                if (live[i]->state == SANDBOX_STOPPED)
                        live[i]->destroyed_at = live[i]->stopped_at;
                all[n++] = live[i];
        }
        for (size_t i = 0; i < ng; i++)
                all[n++] = gone[i];
        free(live);
        free(gone);
        qsort(all, n, sizeof(*all), v1_newest_first);
        *ret = all;
        return 0;
}

int manager_v1_delete(struct coved *cd, const char *team_id, const char *id, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        bool gone = false;
        int r = v1_load(cd, team_id, id, &sb, &gone, err);
        sandbox_rec_free(sb);
        if (r == -ENOENT) { /* idempotent: unknown is fine */
                cove_err_free(err);
                return 0;
        }
        if (r < 0 || gone)
                return r;
        r = manager_delete(cd, team_id, id, err);
        if (r == -ENOENT) { /* deleted by someone else meanwhile */
                cove_err_free(err);
                return 0;
        }
        return r;
}

int manager_wake(struct coved *cd, const char *team_id, const char *id, struct sandbox_rec **ret,
                 struct cove_err **err)
{
        struct sandbox_rec *sb = NULL, *after = NULL;
        bool gone = false;
        int r = v1_load(cd, team_id, id, &sb, &gone, err);
        if (r < 0)
                return r;
        bool stopped = gone || sb->state == SANDBOX_STOPPED;
        sandbox_rec_free(sb);
        sb = NULL;
        if (stopped)
                return destroyed_error(id, err);

        /* A starting sandbox is claimed by its create: waiting for the claim waits for it. */
        r = claim_visible(cd, team_id, id, (int)MIN(cd->cfg.ready_wait * 1000, INT32_MAX), &sb,
                          err);
        if (r == -ETIMEDOUT)
                return busy_error(cd, id, "is still starting", err);
        if (r == -ENOENT) {
                cove_err_free(err);
                return destroyed_error(id, err);
        }
        if (r < 0)
                return r;
        if (sb->state == SANDBOX_STOPPED)
                r = destroyed_error(id, err);
        else if (sb->state == SANDBOX_PAUSED)
                r = resume_claimed(cd, sb, 0, "wake", &after, err);
        else if (sb->state == SANDBOX_STARTING)
                r = cove_err_set_status(err, 503, EAGAIN, "sandbox '%s' is still starting", id);
        claim_release(mgr(cd)->claims, id);
        if (r < 0) {
                sandbox_rec_free(sb);
                return r;
        }
        if (after) {
                sandbox_rec_free(sb);
                sb = after;
        }
        activity_touch(cd, &sb, /* force= */ true); /* wake is activity (v1-api.md §6) */
        *ret = sb;
        return 0;
}

struct keepalive_args {
        const char *id;
        int64_t timeout_ms;
};

static int set_keepalive(struct coved *cd, struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        const struct keepalive_args *a = ud;
        if (sb->auto_pause)
                return cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is not ephemeral", a->id);
        if (sb->state != SANDBOX_RUNNING)
                return cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is not running", a->id);
        int64_t t = a->timeout_ms > 0    ? a->timeout_ms
                    : sb->timeout_ms > 0 ? sb->timeout_ms
                                         : cd->cfg.default_timeout * 1000;
        sb->end_at = time_now_ms() + t;
        sb->timeout_ms = t;
        attach_end_updated(sb);
        return 1;
}

int manager_keepalive(struct coved *cd, const char *team_id, const char *id, int64_t timeout_s,
                      struct sandbox_rec **ret, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL;
        bool gone = false;
        int r = v1_load(cd, team_id, id, &sb, &gone, err);
        sandbox_rec_free(sb);
        if (r < 0)
                return r;
        if (gone)
                return cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is not running", id);
        struct keepalive_args a = { id, timeout_s * 1000 };
        r = modify(cd, id, set_keepalive, &a, ret, err);
        if (r == -ENOENT) {
                cove_err_free(err);
                return cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is not running", id);
        }
        return r;
}

/* manager_v1_target() without the activity bookkeeping. */
static int v1_target(struct coved *cd, const char *team_id, const char *id,
                     struct sandbox_rec **ret, struct cove_err **err)
{
        struct sandbox_rec *sb = NULL, *after = NULL;
        bool gone = false;
        int r = v1_load(cd, team_id, id, &sb, &gone, err);
        if (r < 0)
                return r;
        /* Suspended: woken first, transparently (§6). One that suspends itself may be doing so
         * right now: its claim is waited for (as for runtime requests). */
        if (!gone && (sb->state == SANDBOX_PAUSED || sb->auto_pause)) {
                sandbox_rec_free(sb);
                sb = NULL;
                r = claim_visible(cd, team_id, id, STARTING_WAIT_MS, &sb, err);
                if (r == -ETIMEDOUT)
                        return busy_error(cd, id, "is busy with another operation", err);
                if (r == -ENOENT) {
                        cove_err_free(err);
                        return destroyed_error(id, err);
                }
                if (r < 0)
                        return r;
                if (sb->state == SANDBOX_PAUSED)
                        r = resume_claimed(cd, sb, 0, "activity", &after, err);
                claim_release(mgr(cd)->claims, id);
                if (after) {
                        sandbox_rec_free(sb);
                        sb = after;
                }
        }
        if (r >= 0 && (gone || sb->state == SANDBOX_STOPPED))
                r = destroyed_error(id, err);
        else if (r >= 0 && sb->state != SANDBOX_RUNNING)
                r = cove_err_set_status(err, 409, EBUSY, "sandbox '%s' is not running", id);
        if (r < 0) {
                sandbox_rec_free(sb);
                return r;
        }
        *ret = sb;
        return 0;
}

int manager_v1_target(struct coved *cd, const char *team_id, const char *id,
                      struct sandbox_rec **ret, struct cove_err **err)
{
        activity_begin(mgr(cd)->activity, id); /* before the state is read: see above */
        int r = v1_target(cd, team_id, id, ret, err);
        if (r < 0) {
                activity_end(mgr(cd)->activity, id);
                return r;
        }
        activity_touch(cd, ret, /* force= */ false);
        return 0;
}
