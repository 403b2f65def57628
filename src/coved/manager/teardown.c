/* SPDX-License-Identifier: MIT */
/*
 * teardown.c — deleted sandboxes' teardown, after the delete was answered (docs/decisions.md,
 * "Delete answers before the teardown"): destroy_claimed() freezes the sandbox, retires its
 * row and queues it here; TEARDOWN_WORKERS threads kill its processes and remove its network,
 * cgroups, disk image and state directory, then give its uid block back (engine_destroy, then
 * the uid range: a block is free only once nothing of its sandbox lives).
 *
 * The queue is unbounded in entries but each is one sandbox that exists (its state directory,
 * admitted at create), so it is bounded by the node's capacity. teardown_stop() finishes every
 * queued teardown before it returns; after a crash, the start's reclaim (manager.c,
 * reclaim_orphans) finds the state directories and uid blocks of no sandbox record and removes
 * them, so nothing is left either way.
 */
#include "coved/manager/internal.h"
#include "coved/metrics.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <pthread.h>
#include <time.h>

#define TEARDOWN_WORKERS 2

struct teardown_job {
        struct teardown_job *next;
        char id[64];
        struct engine_identity who;
        bool has_who;
        int64_t queued_at; /* ms, monotonic */
};

struct teardown {
        struct coved *cd;
        pthread_mutex_t lock;
        pthread_cond_t cond, idle;
        struct teardown_job *head, **tail;
        size_t busy; /* jobs being run */
        bool stop;
        pthread_t threads[TEARDOWN_WORKERS];
        size_t n_threads;
};

static void run_job(struct coved *cd, const struct teardown_job *j)
{
        cleanup_err struct cove_err *err = NULL;
        int r = engine_destroy(cd, j->id, j->has_who ? &j->who : NULL, &err);
        if (r < 0)
                log_warning("sandbox '%s': teardown: %s (its leftovers are removed at the next "
                            "start of coved)",
                            j->id, err->msg);
        else
                manager_uid_block_release(cd, j->id);
        atomic_fetch_sub(&cd->manager->deleting, 1);
        metrics_sandbox_delete((double)(time_mono_ms() - j->queued_at) / 1000.0);
}

static void *worker(void *ud)
{
        struct teardown *t = ud;
        (void)pthread_mutex_lock(&t->lock);
        for (;;) {
                struct teardown_job *j = t->head;
                if (!j) {
                        if (t->stop)
                                break;
                        (void)pthread_cond_wait(&t->cond, &t->lock);
                        continue;
                }
                t->head = j->next;
                if (!t->head)
                        t->tail = &t->head;
                t->busy++;
                (void)pthread_mutex_unlock(&t->lock);
                run_job(t->cd, j);
                free(j);
                (void)pthread_mutex_lock(&t->lock);
                t->busy--;
                if (!t->head && t->busy == 0)
                        (void)pthread_cond_broadcast(&t->idle);
        }
        (void)pthread_mutex_unlock(&t->lock);
        return NULL;
}

int teardown_start(struct coved *cd, struct cove_err **err)
{
        struct teardown *t = xzalloc(sizeof(*t));
        t->cd = cd;
        t->tail = &t->head;
        pthread_condattr_t ca;
        if (pthread_mutex_init(&t->lock, NULL) != 0 || pthread_cond_init(&t->cond, NULL) != 0 ||
            pthread_condattr_init(&ca) != 0 ||
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
            pthread_cond_init(&t->idle, &ca) != 0)
                abort();
        (void)pthread_condattr_destroy(&ca);
        cd->manager->teardown = t;
        for (size_t i = 0; i < TEARDOWN_WORKERS; i++) {
                int r = pthread_create(&t->threads[i], NULL, worker, t);
                if (r != 0)
                        return cove_err_set(err, r, "start a teardown thread: %m");
                t->n_threads++;
        }
        return 0;
}

void teardown_push(struct coved *cd, const char *id, const struct engine_identity *who)
{
        struct teardown *t = cd->manager->teardown;
        struct teardown_job *j = xzalloc(sizeof(*j));
        (void)snprintf(j->id, sizeof(j->id), "%s", id);
        if (who) {
                j->who = *who;
                j->has_who = true;
        }
        j->queued_at = time_mono_ms();
        if (!t || t->n_threads == 0) { /* not started (or failed to): inline */
                run_job(cd, j);
                free(j);
                return;
        }
        (void)pthread_mutex_lock(&t->lock);
        *t->tail = j;
        t->tail = &j->next;
        (void)pthread_cond_signal(&t->cond);
        (void)pthread_mutex_unlock(&t->lock);
}

bool teardown_wait_idle(struct coved *cd, int timeout_ms)
{
        struct teardown *t = cd->manager->teardown;
        struct timespec ts;
        bool idle;
        if (!t)
                return true;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_mutex_lock(&t->lock);
        while (!(idle = !t->head && t->busy == 0))
                if (pthread_cond_timedwait(&t->idle, &t->lock, &ts) == ETIMEDOUT)
                        break;
        idle = !t->head && t->busy == 0;
        (void)pthread_mutex_unlock(&t->lock);
        return idle;
}

void teardown_stop(struct coved *cd)
{
        struct teardown *t = cd->manager->teardown;
        if (!t)
                return;
        (void)pthread_mutex_lock(&t->lock);
        t->stop = true;
        (void)pthread_cond_broadcast(&t->cond);
        (void)pthread_mutex_unlock(&t->lock);
        for (size_t i = 0; i < t->n_threads; i++)
                (void)pthread_join(t->threads[i], NULL);
        /* what no worker took (none were started) */
        while (t->head) {
                struct teardown_job *j = t->head;
                t->head = j->next;
                run_job(cd, j);
                free(j);
        }
        (void)pthread_cond_destroy(&t->idle);
        (void)pthread_cond_destroy(&t->cond);
        (void)pthread_mutex_destroy(&t->lock);
        free(t);
        cd->manager->teardown = NULL;
}
