/* SPDX-License-Identifier: MIT */
/*
 * pool.c — the node's pool status and rolling updates (control-plane.md §14) over the warm pool
 * (warm.c): `warm` counts its sandboxes (and `total` includes them); a rolling update marks a
 * template's warm sandboxes for replacement and the pool's thread replaces them one by one,
 * reporting progress here. Without warm sandboxes of the template it completes at once with
 * warm_total 0. The status lives in memory (a restart shows `idle` again, as a fresh node
 * would).
 */
#include "coved/manager/internal.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

static const char *const rolling_phase_table[_ROLLING_PHASE_MAX] = {
        [ROLLING_IDLE] = "idle",           [ROLLING_RUNNING] = "running",
        [ROLLING_COMPLETED] = "completed", [ROLLING_CANCELLED] = "cancelled",
        [ROLLING_FAILED] = "failed",
};

const char *rolling_phase_to_string(enum rolling_phase p)
{
        if ((int)p < 0 || p >= _ROLLING_PHASE_MAX)
                return "idle";
        return rolling_phase_table[p];
}

int manager_pool_status(struct coved *cd, struct pool_status *ret, struct cove_err **err)
{
        int64_t counts[_SANDBOX_STATE_MAX] = { 0 };
        int r = store_sandbox_count_states(cd->store, counts, err);
        if (r < 0)
                return r;
        struct manager *m = cd->manager;
        *ret = (struct pool_status){
                .warm = warm_count(cd),
                .active = counts[SANDBOX_RUNNING],
                .creating = counts[SANDBOX_STARTING],
                .stopped = counts[SANDBOX_PAUSED] + counts[SANDBOX_STOPPED],
                .deleting = atomic_load(&m->deleting),
                .deleted = atomic_load(&m->deleted),
        };
        ret->total = ret->warm;
        for (int s = 0; s < _SANDBOX_STATE_MAX; s++)
                ret->total += counts[s];
        ret->utilization = cd->cfg.max_sandboxes > 0
                                   ? MIN((double)ret->active / (double)cd->cfg.max_sandboxes, 1.0)
                                   : 0.0;
        return 0;
}

int manager_rolling_start(struct coved *cd, const char *template_ref, struct rolling_status *ret,
                          struct cove_err **err)
{
        struct manager *m = cd->manager;
        struct template_rec *t = NULL;
        int r = store_template_resolve(cd->store, template_ref, &t, err);
        if (r == -ENOENT) {
                cove_err_free(err);
                return cove_err_set_status(err, 404, ENOENT, "template '%s' not found",
                                           template_ref);
        }
        if (r < 0)
                return r;
        (void)pthread_mutex_lock(&m->rolling_lock);
        if (m->rolling.phase == ROLLING_RUNNING) {
                (void)pthread_mutex_unlock(&m->rolling_lock);
                template_rec_free(t);
                return cove_err_set_status(err, 409, EBUSY, "a rolling update is already running");
        }
        int64_t now = time_now_ms();
        int64_t total = warm_roll(cd, t->id);
        m->rolling = (struct rolling_status){
                .phase = total > 0 ? ROLLING_RUNNING : ROLLING_COMPLETED,
                .warm_total = total,
                .warm_updated = 0,
                .started_at = now,
                .completed_at = total > 0 ? 0 : now,
        };
        (void)snprintf(m->rolling.template_id, sizeof(m->rolling.template_id), "%s", t->id);
        *ret = m->rolling;
        (void)pthread_mutex_unlock(&m->rolling_lock);
        template_rec_free(t);
        return 0;
}

void manager_rolling_status(struct coved *cd, struct rolling_status *ret)
{
        struct manager *m = cd->manager;
        (void)pthread_mutex_lock(&m->rolling_lock);
        *ret = m->rolling;
        (void)pthread_mutex_unlock(&m->rolling_lock);
}

void manager_rolling_cancel(struct coved *cd, struct rolling_status *ret)
{
        struct manager *m = cd->manager;
        (void)pthread_mutex_lock(&m->rolling_lock);
        if (m->rolling.phase == ROLLING_RUNNING) {
                warm_roll_cancel(cd);
                m->rolling.phase = ROLLING_CANCELLED;
                m->rolling.completed_at = time_now_ms();
        }
        *ret = m->rolling;
        (void)pthread_mutex_unlock(&m->rolling_lock);
}
