/* SPDX-License-Identifier: MIT */
/*
 * cgroup_v2.c — the unified-hierarchy driver behind cgroup.h: one directory per cgroup with
 * memory.max (+ memory.swap.max = 0), cpu.max, pids.max, cgroup.freeze/cgroup.events,
 * cgroup.kill (5.14+; freeze + SIGKILL each before that) and the usual stat files.
 */
#include "runtime/cgroup_internal.h"

#include "lib/macro.h"

#include <inttypes.h>

#include "lib/banned.h"

static const char *const v2_controllers[] = { "cpu", "memory", "pids", "io" };

static int v2_make(const char *name, struct cove_err **err)
{
        return cg_mkdir_p(cg_hier[0].mnt, name, v2_controllers, ARRAY_SIZE(v2_controllers), err);
}

static int v2_set_limits(const char *name, const struct cgroup_limits *lim, struct cove_err **err)
{
        const struct hier *h = &cg_hier[0];
        char v[64];
        int r;

        if (lim->memory_mb) {
                if (!cg_has_file(h, name, "memory.max"))
                        return cove_err_set(err, EOPNOTSUPP,
                                            "cgroup controller 'memory' not available");
                (void)snprintf(v, sizeof(v), "%" PRIu64, lim->memory_mb * 1024 * 1024);
                r = cg_write(h, name, "memory.max", v, err);
                if (r < 0)
                        return r;
                if (cg_has_file(h, name, "memory.swap.max")) {
                        r = cg_write(h, name, "memory.swap.max", "0", err);
                        if (r < 0)
                                return r;
                }
        }
        if (lim->cpu_count) {
                if (!cg_has_file(h, name, "cpu.max"))
                        return cove_err_set(err, EOPNOTSUPP,
                                            "cgroup controller 'cpu' not available");
                (void)snprintf(v, sizeof(v), "%llu %llu", lim->cpu_count * CFS_PERIOD_US,
                               CFS_PERIOD_US);
                r = cg_write(h, name, "cpu.max", v, err);
                if (r < 0)
                        return r;
        }
        if (lim->cpu_weight) {
                if (!cg_has_file(h, name, "cpu.weight"))
                        return cove_err_set(err, EOPNOTSUPP,
                                            "cgroup controller 'cpu' not available");
                (void)snprintf(v, sizeof(v), "%" PRIu32, MIN(MAX(lim->cpu_weight, 1U), 10000U));
                r = cg_write(h, name, "cpu.weight", v, err);
                if (r < 0)
                        return r;
        }
        if (lim->pids_max) {
                if (!cg_has_file(h, name, "pids.max"))
                        return cove_err_set(err, EOPNOTSUPP,
                                            "cgroup controller 'pids' not available");
                (void)snprintf(v, sizeof(v), "%" PRIu32, lim->pids_max);
                r = cg_write(h, name, "pids.max", v, err);
                if (r < 0)
                        return r;
        }
        /* io.weight needs the io cost model or BFQ to mean anything; either file will do. */
        if (lim->io_weight) {
                static const char *const files[] = { "io.weight", "io.bfq.weight" };
                (void)snprintf(v, sizeof(v), "%" PRIu32, MIN(MAX(lim->io_weight, 1U), 10000U));
                for (size_t i = 0; i < ARRAY_SIZE(files); i++)
                        if (cg_has_file(h, name, files[i]) &&
                            (r = cg_write(h, name, files[i], v, err)) < 0)
                                return r;
        }
        return 0;
}

static int v2_event(const char *name, const char *key, uint64_t *ret, struct cove_err **err)
{
        cleanup_free char *s = NULL;
        int r = cg_read(&cg_hier[0], name, "cgroup.events", &s, err);
        if (r < 0)
                return r;
        r = cg_keyed_u64(s, key, ret);
        if (r < 0)
                return cove_err_set(err, -r, "cgroup.events of '%s' has no '%s'", name, key);
        return 0;
}

static int v2_frozen_step(const char *name, bool freeze, struct cove_err **err)
{
        uint64_t v;
        int r = v2_event(name, "frozen", &v, err);
        return r < 0 ? r : (v == 1) == freeze;
}

static int v2_set_frozen(const char *name, bool freeze, struct cove_err **err)
{
        int r = cg_write(&cg_hier[0], name, "cgroup.freeze", freeze ? "1" : "0", err);
        if (r < 0)
                return r;
        return cg_settle_frozen(name, freeze, v2_frozen_step, err);
}

static int v2_is_frozen(const char *name, struct cove_err **err)
{
        uint64_t v;
        int r = v2_event(name, "frozen", &v, err);
        return r < 0 ? r : v == 1;
}

static int v2_kill_round(const char *name, struct cove_err **err)
{
        const struct hier *h = &cg_hier[0];
        if (cg_has_file(h, name, "cgroup.kill"))
                return cg_write(h, name, "cgroup.kill", "1", err);
        /* FIXME: drop once the minimum kernel has cgroup.kill (5.14). */
        return cg_kill_listed_frozen(h, name, v2_set_frozen, err);
}

static int v2_stats(const char *name, struct cgroup_stats *ret, struct cove_err **err)
{
        const struct hier *h = &cg_hier[0];
        struct cgroup_stats s = { 0 };
        cleanup_free char *txt = NULL, *ms = NULL, *ev = NULL;
        int r;

        if (cg_has_file(h, name, "memory.current")) {
                r = cg_read_u64(h, name, "memory.current", &s.memory_usage, err);
                if (r < 0)
                        return r;
                r = cg_read_u64(h, name, "memory.max", &s.memory_limit, err);
                if (r < 0)
                        return r;
        } else {
                s.memory_limit = UINT64_MAX;
        }
        if (cg_read(h, name, "cpu.stat", &txt, NULL) == 0) {
                uint64_t us;
                if (cg_keyed_u64(txt, "usage_usec", &us) == 0)
                        s.cpu_usage_ns = us * 1000;
        }
        if (cg_has_file(h, name, "pids.current")) {
                r = cg_read_u64(h, name, "pids.current", &s.pids_current, err);
                if (r < 0)
                        return r;
        }
        if (cg_read(h, name, "memory.stat", &ms, NULL) == 0)
                (void)cg_keyed_u64(ms, "file", &s.memory_cache);
        if (cg_read(h, name, "memory.events", &ev, NULL) == 0 &&
            cg_keyed_u64(ev, "oom_kill", &s.oom_kills) == 0)
                s.has_oom_kills = true;
        *ret = s;
        return 0;
}

const struct cgroup_driver cgroup_driver_v2 = {
        .make = v2_make,
        .set_limits = v2_set_limits,
        .set_frozen = v2_set_frozen,
        .is_frozen = v2_is_frozen,
        .kill_round = v2_kill_round,
        .stats = v2_stats,
};
