/* SPDX-License-Identifier: MIT */
/*
 * warm.c — the warm pool (docs/operations.md, "Warm pool"): `warm-pool-size` sandboxes of each
 * `warm-pool-templates` template, started ahead by one background thread, so that a create is
 * a claim plus a configure.
 *
 * A warm sandbox is made exactly as a create makes one, with what the sandbox will be when it
 * is claimed chosen ahead: its ID and access token (random, as a create's), its uid block and
 * disk image (admitted as a create admits them), its template's CPUs, memory and disk, its
 * network attached with the default policy. Everything a request may choose that is not baked
 * into the sandbox — team, metadata, environment (passed to each process by coved), timeout,
 * network policy (applied at the claim, one nftables transaction) — is set at the claim, when
 * the sandbox's row is written; so a claimed sandbox is indistinguishable from a fresh one.
 * Requests that differ in what is baked in (CPUs, memory, disk size, volumes) get a fresh one.
 *
 * Warm sandboxes have no row: nothing lists, counts or bills them but the pool status. After
 * a crash their uid blocks and state directories have no sandbox record, and manager_adopt()'s
 * reclaim removes them (the pool is refilled once coved runs); a clean stop destroys them.
 *
 * Locking: `lock` guards the list and the counters; the thread builds and destroys sandboxes
 * outside it. A claim takes an entry under the lock and checks its init outside.
 */
#include "coved/manager/internal.h"
#include "coved/agent_client.h"
#include "coved/metrics.h"
#include "lib/b64.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"

#include <pthread.h>
#include <time.h>

#define WARM_READY_MAX_MS    30000
#define WARM_IDLE_WAKE_MS    1000
#define WARM_FAIL_BACKOFF_MS 5000
#define WARM_TEMPLATES_MAX   16
/* A refill waits until creates pause this long (a start competes with them for the CPUs),
 * unless the pool is down to half its size: then only until no create is in flight (a burst
 * of claims is answered before its refills take the CPUs; a steady stream of creates still
 * gets a refill after every quiet period). */
#define WARM_REFILL_QUIET_MS 100

struct warm_item {
        struct warm_sandbox sb;
        char template_id[64];
        json_t *layers, *binds; /* owned: what it was made of (the template's build then) */
        int64_t cpu_count, memory_mb, disk_mb;
        uint64_t generation; /* of the pool when it was made (rolling updates) */
};

struct warm_pool {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        bool running, stop;
        struct warm_item *items;
        size_t n, cap;
        uint64_t generation;      /* bumped by each rolling update */
        char roll_template[64];   /* "" when no update runs */
        uint64_t roll_generation; /* items of roll_template older than this are replaced */
        int64_t failed_until;     /* ms (monotonic): after a failed build, wait */
        int64_t last_claim;       /* ms (monotonic) */
};

static struct warm_pool *pool_of(struct coved *cd)
{
        return cd->manager->warm;
}

static void warm_sandbox_release(struct warm_sandbox *w)
{
        free(w->access_token);
        w->access_token = NULL;
}

static void item_release(struct warm_item *it)
{
        warm_sandbox_release(&it->sb);
        json_decref(it->layers);
        json_decref(it->binds);
        it->layers = it->binds = NULL;
}

/* Made from the template's current build (a rebuild changes its layers). */
static bool item_current(const struct warm_item *it, const json_t *layers, const json_t *binds)
{
        return json_equal(it->layers, layers) && json_equal(it->binds, binds);
}

/* Destroys a warm sandbox that left the list: processes, network, disk, uid block. */
static void destroy_item(struct coved *cd, struct warm_item *it)
{
        cleanup_err struct cove_err *err = NULL;
        if (engine_destroy(cd, it->sb.id, &it->sb.who, &err) < 0)
                log_warning("warm sandbox '%s': %s", it->sb.id, err->msg);
        else
                manager_uid_block_release(cd, it->sb.id);
        item_release(it);
}

/* What a create without CPU, memory or disk in its request gives a sandbox of t. */
static void template_shape(struct coved *cd, const struct template_rec *t, int64_t *cpu,
                           int64_t *mem, int64_t *disk)
{
        *cpu = t->cpu_count > 0 ? t->cpu_count : cd->cfg.default_cpu_count;
        *mem = t->memory_mb > 0 ? t->memory_mb : cd->cfg.default_memory_mb;
        *disk = t->disk_size_mb > 0 ? t->disk_size_mb : cd->cfg.default_disk_mb;
}

/* Starts one sandbox of t as a create would (without its row) and waits for its agent. */
static int make_item(struct coved *cd, const struct template_rec *t, uint64_t generation,
                     struct warm_item *ret, struct cove_err **err)
{
        struct warm_item it = { .generation = generation };
        unsigned char tok[32];
        int64_t uid_base = 0;
        int r;

        random_alnum(it.sb.id, SANDBOX_ID_LEN);
        if (random_bytes(tok, sizeof(tok)) < 0)
                abort();
        it.sb.access_token = b64_encode_alloc(tok, sizeof(tok), B64_URL | B64_NOPAD);
        (void)snprintf(it.template_id, sizeof(it.template_id), "%s", t->id);
        template_shape(cd, t, &it.cpu_count, &it.memory_mb, &it.disk_mb);

        r = engine_reserve(cd, it.sb.id, it.disk_mb, err);
        if (r >= 0)
                r = manager_uid_block_acquire(cd, it.sb.id, &uid_base, err);
        if (r < 0)
                goto fail;
        struct engine_spec spec = {
                .id = it.sb.id,
                .layers = t->layers,
                .binds = t->binds,
                .cpu_count = it.cpu_count,
                .memory_mb = it.memory_mb,
                .disk_mb = it.disk_mb,
                .pids_max = cd->cfg.pids_max,
                .access_token = it.sb.access_token,
                .uid_base = uid_base,
        };
        r = engine_start(cd, &spec, &it.sb.who, err);
        if (r >= 0)
                r = agent_client_ping(cd, it.sb.id,
                                      (int)MIN(cd->cfg.ready_wait * 1000, WARM_READY_MAX_MS), err);
        if (r < 0)
                goto fail;
        it.layers = json_deep_copy(t->layers);
        it.binds = json_deep_copy(t->binds);
        *ret = it;
        return 0;
fail:
        (void)engine_destroy(cd, it.sb.id, it.sb.who.pid ? &it.sb.who : NULL, NULL);
        manager_uid_block_release(cd, it.sb.id);
        item_release(&it);
        return cove_err_wrap(err, "warm sandbox of template '%s'", t->id);
}

static size_t count_locked(const struct warm_pool *p, const char *template_id)
{
        size_t n = 0;
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->items[i].template_id, template_id))
                        n++;
        return n;
}

static void remove_locked(struct warm_pool *p, size_t i, struct warm_item *ret)
{
        *ret = p->items[i];
        p->items[i] = p->items[--p->n];
}

static void add_item(struct warm_pool *p, const struct warm_item *it)
{
        (void)pthread_mutex_lock(&p->lock);
        if (p->n == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 8;
                p->items = xrealloc(p->items, p->cap * sizeof(*p->items));
        }
        p->items[p->n++] = *it;
        (void)pthread_mutex_unlock(&p->lock);
}

/* The rolling update's bookkeeping (manager->rolling, shared with pool.c). */
static void rolling_progress(struct coved *cd, bool replaced, bool done, bool failed)
{
        struct manager *m = cd->manager;
        (void)pthread_mutex_lock(&m->rolling_lock);
        if (m->rolling.phase == ROLLING_RUNNING) {
                if (replaced)
                        m->rolling.warm_updated++;
                /* a refill of the old build that was under way when the update began is
                 * replaced too: it counts */
                if (m->rolling.warm_updated > m->rolling.warm_total)
                        m->rolling.warm_total = m->rolling.warm_updated;
                if (done || failed) {
                        m->rolling.phase = failed ? ROLLING_FAILED : ROLLING_COMPLETED;
                        m->rolling.completed_at = time_now_ms();
                }
        }
        (void)pthread_mutex_unlock(&m->rolling_lock);
}

/* One step of work for template t: replace one outdated sandbox (rolling update), or add one
 * up to the pool size. Returns true when it did something. */
static bool step_template(struct coved *cd, const struct template_rec *t)
{
        struct warm_pool *p = pool_of(cd);
        struct warm_item old = { 0 }, fresh;
        bool have_old = false, rolling = false, want_more;
        uint64_t gen;
        cleanup_err struct cove_err *err = NULL;

        (void)pthread_mutex_lock(&p->lock);
        gen = p->generation;
        /* made from an earlier build of the template: replaced like a rolling update does */
        for (size_t i = 0; i < p->n && !have_old; i++)
                if (streq(p->items[i].template_id, t->id) &&
                    !item_current(&p->items[i], t->layers, t->binds)) {
                        remove_locked(p, i, &old);
                        have_old = true;
                }
        if (!have_old && *p->roll_template && streq(p->roll_template, t->id)) {
                rolling = true;
                for (size_t i = 0; i < p->n; i++)
                        if (streq(p->items[i].template_id, t->id) &&
                            p->items[i].generation < p->roll_generation) {
                                remove_locked(p, i, &old);
                                have_old = true;
                                break;
                        }
                if (!have_old)
                        p->roll_template[0] = '\0';
        }
        size_t have = count_locked(p, t->id);
        want_more = have < (size_t)cd->cfg.warm_pool_size &&
                    (time_mono_ms() - p->last_claim >= WARM_REFILL_QUIET_MS ||
                     (have * 2 < (size_t)cd->cfg.warm_pool_size &&
                      atomic_load(&cd->manager->creating) == 0));
        (void)pthread_mutex_unlock(&p->lock);

        bool rolled = rolling && have_old;
        if (rolling && !have_old) {
                rolling_progress(cd, false, true, false);
                return true;
        }
        if (have_old)
                destroy_item(cd, &old);
        else if (!want_more)
                return false;
        if (make_item(cd, t, gen, &fresh, &err) < 0) {
                log_warning("%s; retrying in %d s", err->msg, WARM_FAIL_BACKOFF_MS / 1000);
                (void)pthread_mutex_lock(&p->lock);
                p->failed_until = time_mono_ms() + WARM_FAIL_BACKOFF_MS;
                if (rolled)
                        p->roll_template[0] = '\0';
                (void)pthread_mutex_unlock(&p->lock);
                if (rolled)
                        rolling_progress(cd, false, false, true);
                return false;
        }
        add_item(p, &fresh);
        if (rolled)
                rolling_progress(cd, true, false, false);
        return true;
}

static bool stopping(struct warm_pool *p)
{
        (void)pthread_mutex_lock(&p->lock);
        bool s = p->stop;
        (void)pthread_mutex_unlock(&p->lock);
        return s;
}

static void *warm_thread(void *ud)
{
        struct coved *cd = ud;
        struct warm_pool *p = pool_of(cd);
        const char *refs[WARM_TEMPLATES_MAX];
        char *buf = xstrdup(cd->cfg.warm_pool_templates), *save = NULL;
        size_t n_refs = 0;

        for (char *tok = strtok_r(buf, ", ", &save); tok && n_refs < WARM_TEMPLATES_MAX;
             tok = strtok_r(NULL, ", ", &save))
                refs[n_refs++] = tok;
        while (!stopping(p)) {
                bool did = false;
                if (time_mono_ms() >= p->failed_until)
                        for (size_t i = 0; i < n_refs && !stopping(p); i++) {
                                struct template_rec *t = NULL;
                                if (manager_template_resolve(cd, refs[i], &t, NULL) < 0)
                                        continue;
                                if (t->build_status && streq(t->build_status, "ready"))
                                        did |= step_template(cd, t);
                                template_rec_free(t);
                        }
                if (did)
                        continue;
                (void)pthread_mutex_lock(&p->lock);
                if (!p->stop) {
                        /* soon again while creates hold a refill back, else on a claim */
                        int64_t quiet = p->last_claim + WARM_REFILL_QUIET_MS - time_mono_ms();
                        int64_t wait_ms = quiet > 0 ? quiet + 1 : WARM_IDLE_WAKE_MS;
                        struct timespec ts;
                        (void)clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_sec += wait_ms / 1000;
                        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
                        if (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        (void)pthread_cond_timedwait(&p->cond, &p->lock, &ts);
                }
                (void)pthread_mutex_unlock(&p->lock);
        }
        free(buf);
        return NULL;
}

int warm_init(struct coved *cd, struct cove_err **err)
{
        struct warm_pool *p = xzalloc(sizeof(*p));
        pthread_condattr_t ca;
        (void)err;
        if (pthread_mutex_init(&p->lock, NULL) != 0 || pthread_condattr_init(&ca) != 0 ||
            pthread_cond_init(&p->cond, &ca) != 0)
                abort();
        (void)pthread_condattr_destroy(&ca);
        cd->manager->warm = p;
        return 0;
}

int warm_start(struct coved *cd, struct cove_err **err)
{
        struct warm_pool *p = pool_of(cd);
        if (cd->cfg.warm_pool_size <= 0)
                return 0;
        int r = pthread_create(&p->thread, NULL, warm_thread, cd);
        if (r != 0)
                return cove_err_set(err, r, "start the warm pool thread: %m");
        p->running = true;
        log_info("warm pool: %lld sandboxes of each of '%s'", (long long)cd->cfg.warm_pool_size,
                 cd->cfg.warm_pool_templates);
        return 0;
}

void warm_stop(struct coved *cd)
{
        struct warm_pool *p = pool_of(cd);
        if (!p)
                return;
        (void)pthread_mutex_lock(&p->lock);
        p->stop = true;
        (void)pthread_cond_broadcast(&p->cond);
        (void)pthread_mutex_unlock(&p->lock);
        if (p->running)
                (void)pthread_join(p->thread, NULL);
        for (size_t i = 0; i < p->n; i++)
                destroy_item(cd, &p->items[i]);
        free(p->items);
        (void)pthread_cond_destroy(&p->cond);
        (void)pthread_mutex_destroy(&p->lock);
        free(p);
        cd->manager->warm = NULL;
}

bool warm_claim(struct coved *cd, const struct template_rec *t, int64_t cpu_count,
                int64_t memory_mb, int64_t disk_mb, struct warm_sandbox *ret)
{
        const char *template_id = t->id;
        struct warm_pool *p = pool_of(cd);
        if (!p || cd->cfg.warm_pool_size <= 0)
                return false;
        for (;;) {
                struct warm_item it;
                bool found = false;
                (void)pthread_mutex_lock(&p->lock);
                for (size_t i = 0; i < p->n && !found; i++) {
                        const struct warm_item *c = &p->items[i];
                        if (streq(c->template_id, template_id) && c->cpu_count == cpu_count &&
                            c->memory_mb == memory_mb && c->disk_mb == disk_mb &&
                            item_current(c, t->layers, t->binds) &&
                            c->generation >= (streq(p->roll_template, template_id)
                                                      ? p->roll_generation
                                                      : 0)) {
                                remove_locked(p, i, &it);
                                found = true;
                                p->last_claim = time_mono_ms();
                        }
                }
                (void)pthread_cond_broadcast(&p->cond); /* refill */
                (void)pthread_mutex_unlock(&p->lock);
                if (!found)
                        return false;
                if (engine_alive(&it.sb.who)) {
                        *ret = it.sb;
                        it.sb.access_token = NULL; /* the caller's now */
                        item_release(&it);
                        return true;
                }
                log_warning("warm sandbox '%s': its init is gone, removing it", it.sb.id);
                destroy_item(cd, &it);
        }
}

void warm_sandbox_done(struct warm_sandbox *w)
{
        warm_sandbox_release(w);
}

int64_t warm_count(struct coved *cd)
{
        struct warm_pool *p = pool_of(cd);
        if (!p)
                return 0;
        (void)pthread_mutex_lock(&p->lock);
        int64_t n = (int64_t)p->n;
        (void)pthread_mutex_unlock(&p->lock);
        return n;
}

int64_t warm_roll(struct coved *cd, const char *template_id)
{
        struct warm_pool *p = pool_of(cd);
        if (!p || !p->running)
                return 0;
        (void)pthread_mutex_lock(&p->lock);
        int64_t n = (int64_t)count_locked(p, template_id);
        if (n > 0) {
                p->roll_generation = ++p->generation;
                (void)snprintf(p->roll_template, sizeof(p->roll_template), "%s", template_id);
                (void)pthread_cond_broadcast(&p->cond);
        }
        (void)pthread_mutex_unlock(&p->lock);
        return n;
}

void warm_roll_cancel(struct coved *cd)
{
        struct warm_pool *p = pool_of(cd);
        if (!p)
                return;
        (void)pthread_mutex_lock(&p->lock);
        p->roll_template[0] = '\0';
        (void)pthread_mutex_unlock(&p->lock);
}
