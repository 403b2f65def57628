/* SPDX-License-Identifier: MIT */
/* sampler.c — the metric sampling thread and the snapshots it keeps (sampler.h). */
#include "coved/obs/sampler.h"
#include "coved/manager/manager.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

#define RING                3 /* samples kept per sandbox: rates over ~2 intervals */
#define TEAM_PRUNE_EVERY_MS 3600000
#define MIB                 (1024 * 1024)
#define HISTORY_SPAN_MS     (3600 * 1000) /* the history a running sandbox keeps */
#define DISK_EVERY          6             /* rounds between walks of a writable layer */

struct raw_sample {
        int64_t mono_ms; /* when it was taken (rates) */
        int64_t wall_ms; /* collectedAt */
        struct sandbox_usage u;
};

struct series {
        char *id;
        struct raw_sample ring[RING];
        size_t n;    /* samples in ring, newest at ring[(head + n - 1) % RING] */
        size_t head; /* oldest */
        double load[3];
        int64_t memory_mb; /* the sandbox's memory, when its cgroup has no limit */
        int64_t pids_max;
        uint64_t round; /* last round it was seen running */
        /* the last hour, a ring of hist_cap points (allocated on the first) */
        struct metric_point *hist;
        size_t hist_cap, hist_n, hist_head; /* oldest at hist[hist_head] */
        int64_t cpus;                       /* the sandbox's CPUs (cpuUsedPct's 100 %) */
        int64_t started_ms;                 /* wall clock it (last) started running */
        int64_t disk_bytes;                 /* the last walk of its writable layer */
        uint64_t disk_round;                /* the round of that walk, 0: never */
};

struct sampler {
        struct coved *cd;
        pthread_t thread;
        bool running;
        pthread_mutex_t lock; /* series, stopping */
        pthread_cond_t cond;
        bool stopping;
        struct series *series;
        size_t nseries, cap;
        uint64_t round;
        int64_t last_round_mono; /* 0: never */
        int64_t last_team_ms;    /* wall clock of the last team sample */
        int64_t last_prune_mono;
};

static struct series *series_find(struct sampler *s, const char *id)
{
        for (size_t i = 0; i < s->nseries; i++)
                if (streq(s->series[i].id, id))
                        return &s->series[i];
        return NULL;
}

static struct series *series_get(struct sampler *s, const struct sandbox_rec *sb)
{
        struct series *x = series_find(s, sb->id);
        if (x)
                return x;
        if (s->nseries == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 16;
                s->series = xrealloc(s->series, s->cap * sizeof(*s->series));
        }
        x = &s->series[s->nseries++];
        *x = (struct series){ .id = xstrdup(sb->id) };
        x->cpus = sb->cpu_count > 0 ? sb->cpu_count : 1;
        x->started_ms = sb->activated_at > 0 ? sb->activated_at : sb->started_at;
        /* an hour of rounds, plus one: the ring never drops a point younger than an hour */
        x->hist_cap = (size_t)(HISTORY_SPAN_MS / (MAX(s->cd->cfg.metrics_interval, 1) * 1000)) + 2;
        return x;
}

static void series_release(struct series *x)
{
        free(x->id);
        free(x->hist);
}

/* The history point of sample r (lock held), r not yet in the ring: CPU since the sample
 * before it, or since the sandbox started; the disk of r when it walked the layer, else the
 * last walk's. */
static void history_add(struct series *x, const struct raw_sample *r, bool with_disk,
                        uint64_t round)
{
        const struct raw_sample *prev = x->n > 0 ? &x->ring[(x->head + x->n - 1) % RING] : NULL;
        const struct sandbox_usage *u = &r->u;
        double pct = 0;
        if (prev && u->cpu_usage_ns >= 0 && prev->u.cpu_usage_ns >= 0 && r->mono_ms > prev->mono_ms)
                pct = (double)MAX(u->cpu_usage_ns - prev->u.cpu_usage_ns, (int64_t)0) / 1e6 /
                      (double)(r->mono_ms - prev->mono_ms);
        else if (!prev && u->cpu_usage_ns > 0)
                pct = (double)u->cpu_usage_ns / 1e6 /
                      (double)MAX(r->wall_ms - x->started_ms, (int64_t)1);
        pct = pct * 100.0 / (double)x->cpus;
        if (with_disk) {
                x->disk_bytes = (int64_t)r->u.disk_bytes;
                x->disk_round = round;
        }
        struct metric_point pt = {
                .ts = r->wall_ms,
                .cpu_pct = pct < 0     ? 0
                           : pct > 100 ? 100
                                       : pct,
                .mem_total = u->memory_limit > 0 ? u->memory_limit : x->memory_mb * MIB,
                .mem_cache = MAX(u->memory_cache, (int64_t)0),
                .disk_used = x->disk_bytes,
        };
        pt.mem_used = MAX(u->memory_bytes - pt.mem_cache, (int64_t)0);
        if (!x->hist)
                x->hist = xzalloc(x->hist_cap * sizeof(*x->hist));
        if (x->hist_n < x->hist_cap) {
                x->hist[(x->hist_head + x->hist_n) % x->hist_cap] = pt;
                x->hist_n++;
        } else {
                x->hist[x->hist_head] = pt;
                x->hist_head = (x->hist_head + 1) % x->hist_cap;
        }
        /* older than an hour: gone */
        while (x->hist_n > 0 && x->hist[x->hist_head].ts < r->wall_ms - HISTORY_SPAN_MS) {
                x->hist_head = (x->hist_head + 1) % x->hist_cap;
                x->hist_n--;
        }
}

/* Adds a sample (lock held); updates the load averages with the interval since the last. */
static void series_add(struct series *x, const struct raw_sample *r)
{
        static const double periods_s[3] = { 60, 300, 900 };
        if (x->n > 0 && r->u.runnable >= 0) {
                const struct raw_sample *last = &x->ring[(x->head + x->n - 1) % RING];
                double dt = (double)(r->mono_ms - last->mono_ms) / 1000.0;
                for (int i = 0; i < 3 && dt > 0; i++) {
                        double e = exp(-dt / periods_s[i]);
                        x->load[i] = x->load[i] * e + (double)r->u.runnable * (1 - e);
                }
        }
        if (x->n < RING) {
                x->ring[(x->head + x->n) % RING] = *r;
                x->n++;
        } else {
                x->ring[x->head] = *r;
                x->head = (x->head + 1) % RING;
        }
}

/* Per-second rate of a counter between two samples; -1 when unknown or the counter went
 * backwards (a process that exited took its share: see engine/usage.c). */
static double rate(int64_t a, int64_t b, double dt_s)
{
        if (a < 0 || b < 0 || dt_s <= 0)
                return -1;
        return b >= a ? (double)(b - a) / dt_s : 0;
}

static void snapshot_of(const struct series *x, struct metric_snapshot *ret)
{
        const struct raw_sample *newest = &x->ring[(x->head + x->n - 1) % RING];
        const struct raw_sample *oldest = &x->ring[x->head];
        const struct sandbox_usage *u = &newest->u, *o = &oldest->u;
        double dt = x->n > 1 ? (double)(newest->mono_ms - oldest->mono_ms) / 1000.0 : 0;
        struct metric_snapshot s = { .collected_at = newest->wall_ms };

        s.has_load = x->n > 1 && u->runnable >= 0;
        s.load1 = x->load[0];
        s.load5 = x->load[1];
        s.load15 = x->load[2];
        s.cpu_user_rate = rate(o->cpu_user_ns, u->cpu_user_ns, dt) / 1e9;
        s.cpu_system_rate = rate(o->cpu_system_ns, u->cpu_system_ns, dt) / 1e9;
        if (u->cpu_user_ns < 0 || dt <= 0)
                s.cpu_user_rate = -1;
        if (u->cpu_system_ns < 0 || dt <= 0)
                s.cpu_system_rate = -1;
        s.memory_limit = u->memory_limit > 0 ? u->memory_limit : x->memory_mb * MIB;
        /* In use without the page cache, as `free` and `docker stats` count it. */
        s.memory_used = MAX(u->memory_bytes - MAX(u->memory_cache, (int64_t)0), (int64_t)0);
        s.swap_total = u->swap_limit;
        s.swap_used = u->swap_bytes;
        s.disk_read_ops = rate(o->io_read_ops, u->io_read_ops, dt);
        s.disk_write_ops = rate(o->io_write_ops, u->io_write_ops, dt);
        s.disk_read_bytes = rate(o->io_read_bytes, u->io_read_bytes, dt);
        s.disk_write_bytes = rate(o->io_write_bytes, u->io_write_bytes, dt);
        s.net_rx_bytes = rate(o->net_rx_bytes, u->net_rx_bytes, dt);
        s.net_tx_bytes = rate(o->net_tx_bytes, u->net_tx_bytes, dt);
        s.net_rx_packets = rate(o->net_rx_packets, u->net_rx_packets, dt);
        s.net_tx_packets = rate(o->net_tx_packets, u->net_tx_packets, dt);
        s.net_rx_errors = rate(o->net_rx_errors, u->net_rx_errors, dt);
        s.net_tx_errors = rate(o->net_tx_errors, u->net_tx_errors, dt);
        s.net_rx_drops = rate(o->net_rx_drops, u->net_rx_drops, dt);
        s.net_tx_drops = rate(o->net_tx_drops, u->net_tx_drops, dt);
        s.tasks = u->tasks;
        s.tasks_max = u->tasks_max > 0 ? u->tasks_max : x->pids_max;
        *ret = s;
}

static int take(struct coved *cd, const struct sandbox_rec *sb, bool with_disk,
                struct raw_sample *ret, struct cove_err **err)
{
        *ret = (struct raw_sample){ .mono_ms = time_mono_ms(), .wall_ms = time_now_ms() };
        return manager_usage(cd, sb, with_disk, &ret->u, err);
}

/* Whether this round walks the sandbox's writable layer (lock not held). */
static bool disk_due(struct sampler *s, const char *id, uint64_t round)
{
        (void)pthread_mutex_lock(&s->lock);
        struct series *x = series_find(s, id);
        bool due = !x || x->disk_round == 0 || x->disk_round + DISK_EVERY <= round;
        (void)pthread_mutex_unlock(&s->lock);
        return due;
}

/* ---- the thread ---- */

static void sample_sandboxes(struct sampler *s)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec **all = NULL;
        if (manager_list(s->cd, NULL, &all, &err) < 0) {
                log_warning("metrics: list sandboxes, ignoring: %s", err->msg);
                return;
        }
        uint64_t round = ++s->round;
        for (size_t i = 0; all[i]; i++) {
                struct sandbox_rec *sb = all[i];
                struct raw_sample r;
                if (sb->state != SANDBOX_RUNNING)
                        continue;
                bool with_disk = disk_due(s, sb->id, round);
                if (take(s->cd, sb, with_disk, &r, NULL) < 0)
                        continue;
                (void)pthread_mutex_lock(&s->lock);
                struct series *x = series_get(s, sb);
                x->memory_mb = sb->memory_mb;
                x->pids_max = s->cd->cfg.pids_max;
                x->round = round;
                history_add(x, &r, with_disk, round);
                series_add(x, &r);
                (void)pthread_mutex_unlock(&s->lock);
        }
        sandbox_list_free(all);
        /* Forget what did not run this round (deleted, paused, stopped). */
        (void)pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->nseries;) {
                if (s->series[i].round == round) {
                        i++;
                        continue;
                }
                series_release(&s->series[i]);
                s->series[i] = s->series[--s->nseries];
        }
        s->last_round_mono = time_mono_ms();
        (void)pthread_mutex_unlock(&s->lock);
}

static void sample_teams(struct sampler *s)
{
        cleanup_err struct cove_err *err = NULL;
        int64_t now = time_now_ms();
        int64_t since =
                s->last_team_ms ? s->last_team_ms : now - s->cd->cfg.team_metrics_interval * 1000;
        if (store_team_sample_all(s->cd->store, now, since, &err) < 0) {
                log_warning("metrics: sample teams, ignoring: %s", err->msg);
                return;
        }
        s->last_team_ms = now;
        if (time_mono_ms() - s->last_prune_mono >= TEAM_PRUNE_EVERY_MS || !s->last_prune_mono) {
                cove_err_free(&err);
                s->last_prune_mono = time_mono_ms();
                if (store_team_samples_prune(
                            s->cd->store, now - s->cd->cfg.team_metrics_retention * 1000, &err) < 0)
                        log_warning("metrics: prune team samples, ignoring: %s", err->msg);
        }
}

static void *sampler_main(void *arg)
{
        struct sampler *s = arg;
        int64_t next_sandboxes = time_mono_ms();
        int64_t next_teams = time_mono_ms();

        for (;;) {
                int64_t now = time_mono_ms();
                if (now >= next_sandboxes) {
                        sample_sandboxes(s);
                        next_sandboxes = now + s->cd->cfg.metrics_interval * 1000;
                }
                if (now >= next_teams) {
                        sample_teams(s);
                        next_teams = now + s->cd->cfg.team_metrics_interval * 1000;
                }
                int64_t wake = MIN(next_sandboxes, next_teams);
                struct timespec ts;
                (void)clock_gettime(CLOCK_MONOTONIC, &ts);
                int64_t wait_ms = MAX(wake - time_mono_ms(), (int64_t)0);
                ts.tv_sec += wait_ms / 1000;
                ts.tv_nsec += (wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                (void)pthread_mutex_lock(&s->lock);
                bool stop = s->stopping;
                if (!stop)
                        (void)pthread_cond_timedwait(&s->cond, &s->lock, &ts);
                stop = s->stopping;
                (void)pthread_mutex_unlock(&s->lock);
                if (stop)
                        break;
        }
        return NULL;
}

int sampler_start(struct coved *cd, struct cove_err **err)
{
        struct sampler *s = xzalloc(sizeof(*s));
        pthread_condattr_t ca;

        s->cd = cd;
        if (pthread_mutex_init(&s->lock, NULL) != 0 || pthread_condattr_init(&ca) != 0 ||
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
            pthread_cond_init(&s->cond, &ca) != 0)
                abort();
        (void)pthread_condattr_destroy(&ca);
        int r = pthread_create(&s->thread, NULL, sampler_main, s);
        if (r != 0) {
                (void)pthread_cond_destroy(&s->cond);
                (void)pthread_mutex_destroy(&s->lock);
                free(s);
                return cove_err_set(err, r, "start the metrics thread: %m");
        }
        s->running = true;
        cd->sampler = s;
        return 0;
}

void sampler_stop(struct coved *cd)
{
        struct sampler *s = cd->sampler;
        if (!s)
                return;
        (void)pthread_mutex_lock(&s->lock);
        s->stopping = true;
        (void)pthread_cond_broadcast(&s->cond);
        (void)pthread_mutex_unlock(&s->lock);
        if (s->running)
                (void)pthread_join(s->thread, NULL);
        for (size_t i = 0; i < s->nseries; i++)
                series_release(&s->series[i]);
        free(s->series);
        (void)pthread_cond_destroy(&s->cond);
        (void)pthread_mutex_destroy(&s->lock);
        free(s);
        cd->sampler = NULL;
}

/* A sandbox that started since the last round, sampled on request (its writable layer too). */
static int sample_now(struct sampler *s, const struct sandbox_rec *sb, struct cove_err **err)
{
        struct raw_sample r;
        int rc = take(s->cd, sb, /* with_disk= */ true, &r, err);
        if (rc < 0)
                return rc;
        (void)pthread_mutex_lock(&s->lock);
        struct series *x = series_get(s, sb);
        x->memory_mb = sb->memory_mb;
        x->pids_max = s->cd->cfg.pids_max;
        x->round = s->round;
        if (x->n == 0) {
                history_add(x, &r, /* with_disk= */ true, s->round);
                series_add(x, &r);
        }
        (void)pthread_mutex_unlock(&s->lock);
        return 0;
}

int sampler_snapshot(struct coved *cd, const struct sandbox_rec *sb, struct metric_snapshot *ret,
                     struct cove_err **err)
{
        struct sampler *s = cd->sampler;

        if (!s)
                return cove_err_set_status(err, 503, EAGAIN, "metrics are not being sampled");
        (void)pthread_mutex_lock(&s->lock);
        struct series *x = series_find(s, sb->id);
        if (x && x->n > 0) {
                snapshot_of(x, ret);
                (void)pthread_mutex_unlock(&s->lock);
                return 0;
        }
        (void)pthread_mutex_unlock(&s->lock);

        /* Not sampled yet (it started since the last round): sample it now. */
        int rc = sample_now(s, sb, err);
        if (rc < 0)
                return rc;
        (void)pthread_mutex_lock(&s->lock);
        x = series_find(s, sb->id);
        if (x && x->n > 0)
                snapshot_of(x, ret);
        else
                rc = cove_err_set_status(err, 503, EAGAIN, "sandbox '%s' is not sampled", sb->id);
        (void)pthread_mutex_unlock(&s->lock);
        return rc;
}

int sampler_history(struct coved *cd, const struct sandbox_rec *sb, int64_t from_ms, int64_t to_ms,
                    struct metric_point **ret, size_t *ret_n, struct cove_err **err)
{
        struct sampler *s = cd->sampler;
        *ret = NULL;
        *ret_n = 0;
        if (!s)
                return cove_err_set_status(err, 503, EAGAIN, "metrics are not being sampled");
        if (sb->state != SANDBOX_RUNNING)
                return 0;
        (void)pthread_mutex_lock(&s->lock);
        struct series *x = series_find(s, sb->id);
        bool none = !x || x->hist_n == 0;
        (void)pthread_mutex_unlock(&s->lock);
        if (none) {
                int rc = sample_now(s, sb, err);
                if (rc < 0)
                        return rc;
        }
        (void)pthread_mutex_lock(&s->lock);
        x = series_find(s, sb->id);
        size_t n = 0;
        struct metric_point *v = x && x->hist_n ? xzalloc(x->hist_n * sizeof(*v)) : NULL;
        for (size_t i = 0; x && i < x->hist_n; i++) {
                const struct metric_point *p = &x->hist[(x->hist_head + i) % x->hist_cap];
                if (p->ts >= from_ms && p->ts <= to_ms)
                        v[n++] = *p;
        }
        (void)pthread_mutex_unlock(&s->lock);
        if (n == 0) {
                free(v);
                v = NULL;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

bool sampler_healthy(struct coved *cd)
{
        struct sampler *s = cd->sampler;
        if (!s)
                return false;
        (void)pthread_mutex_lock(&s->lock);
        int64_t last = s->last_round_mono;
        (void)pthread_mutex_unlock(&s->lock);
        return last > 0 && time_mono_ms() - last <= 3 * cd->cfg.metrics_interval * 1000 + 5000;
}

int sampler_team_samples(struct coved *cd, const char *team_id, int64_t from_ms, int64_t to_ms,
                         struct team_sample **ret, size_t *ret_n, struct cove_err **err)
{
        return store_team_samples(cd->store, team_id, from_ms, to_ms, ret, ret_n, err);
}
