/* SPDX-License-Identifier: MIT */
/*
 * cgroup_v1.c — the legacy/hybrid driver behind cgroup.h: one directory per v1 hierarchy that
 * carries memory, cpu, cpuacct, pids or freezer; memory.limit_in_bytes (+ memsw when swap is
 * accounted), cpu.cfs_quota_us, pids.max, freezer.state; no cgroup.kill (freeze, SIGKILL each,
 * thaw).
 */
#include "runtime/cgroup_internal.h"

#include "lib/macro.h"
#include "runtime/phase.h"

#include <inttypes.h>

#include "lib/banned.h"

static int v1_make(const char *name, struct cove_err **err)
{
        for (size_t i = 0; i < cg_n; i++) {
                int r = cg_mkdir_p(cg_hier[i].mnt, name, NULL, 0, err);
                if (r < 0)
                        return r;
                const char *slash = strrchr(cg_hier[i].mnt, '/');
                char ph[PHASE_NAME_MAX];
                (void)snprintf(ph, sizeof(ph), "cgroup.mkdir.%s",
                               slash ? slash + 1 : cg_hier[i].mnt);
                phase_mark(ph);
        }
        return 0;
}

static const struct hier *need(unsigned ctrl, const char *what, struct cove_err **err)
{
        const struct hier *h = cg_hier_for(ctrl);
        if (!h)
                (void)cove_err_set(err, EOPNOTSUPP, "cgroup controller '%s' not available", what);
        return h;
}

static int v1_set_limits(const char *name, const struct cgroup_limits *lim, struct cove_err **err)
{
        const struct hier *h;
        char v[64];
        int r;

        if (lim->memory_mb) {
                if (!(h = need(CTRL_MEMORY, "memory", err)))
                        return -EOPNOTSUPP;
                (void)snprintf(v, sizeof(v), "%" PRIu64, lim->memory_mb * 1024 * 1024);
                r = cg_write(h, name, "memory.limit_in_bytes", v, err);
                if (r < 0)
                        return r;
                /* memsw >= limit: set after the limit; absent without swap accounting. */
                if (cg_has_file(h, name, "memory.memsw.limit_in_bytes")) {
                        r = cg_write(h, name, "memory.memsw.limit_in_bytes", v, err);
                        if (r < 0)
                                return r;
                }
        }
        if (lim->cpu_count) {
                if (!(h = need(CTRL_CPU, "cpu", err)))
                        return -EOPNOTSUPP;
                (void)snprintf(v, sizeof(v), "%llu", CFS_PERIOD_US);
                r = cg_write(h, name, "cpu.cfs_period_us", v, err);
                if (r < 0)
                        return r;
                (void)snprintf(v, sizeof(v), "%llu", lim->cpu_count * CFS_PERIOD_US);
                r = cg_write(h, name, "cpu.cfs_quota_us", v, err);
                if (r < 0)
                        return r;
        }
        if (lim->cpu_weight) {
                if (!(h = need(CTRL_CPU, "cpu", err)))
                        return -EOPNOTSUPP;
                uint64_t shares = (uint64_t)MIN(MAX(lim->cpu_weight, 1U), 10000U) * 1024 / 100;
                (void)snprintf(v, sizeof(v), "%" PRIu64, MAX(shares, (uint64_t)2));
                r = cg_write(h, name, "cpu.shares", v, err);
                if (r < 0)
                        return r;
        }
        if (lim->pids_max) {
                if (!(h = need(CTRL_PIDS, "pids", err)))
                        return -EOPNOTSUPP;
                (void)snprintf(v, sizeof(v), "%" PRIu32, lim->pids_max);
                r = cg_write(h, name, "pids.max", v, err);
                if (r < 0)
                        return r;
        }
        /* blkio is in the table only where a weight file exists (detection). */
        if (lim->io_weight && (h = cg_hier_for(CTRL_BLKIO))) {
                static const char *const files[] = { "blkio.weight", "blkio.bfq.weight" };
                (void)snprintf(v, sizeof(v), "%" PRIu32, MIN(MAX(lim->io_weight, 10U), 1000U));
                for (size_t i = 0; i < ARRAY_SIZE(files); i++)
                        if (cg_has_file(h, name, files[i]) &&
                            (r = cg_write(h, name, files[i], v, err)) < 0)
                                return r;
        }
        return 0;
}

static int v1_frozen_step(const char *name, bool freeze, struct cove_err **err)
{
        const struct hier *h = cg_hier_for(CTRL_FREEZER);
        const char *want = freeze ? "FROZEN" : "THAWED";
        cleanup_free char *s = NULL;
        int r;

        /* Re-writing FROZEN retries a freeze that got stuck in FREEZING. */
        r = cg_write(h, name, "freezer.state", want, err);
        if (r < 0)
                return r;
        r = cg_read(h, name, "freezer.state", &s, err);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        return streq(s, want);
}

static int v1_set_frozen(const char *name, bool freeze, struct cove_err **err)
{
        if (!need(CTRL_FREEZER, "freezer", err))
                return -EOPNOTSUPP;
        return cg_settle_frozen(name, freeze, v1_frozen_step, err);
}

static int v1_is_frozen(const char *name, struct cove_err **err)
{
        const struct hier *h = need(CTRL_FREEZER, "freezer", err);
        cleanup_free char *s = NULL;
        if (!h)
                return -EOPNOTSUPP;
        int r = cg_read(h, name, "freezer.state", &s, err);
        if (r < 0)
                return r;
        return strncmp(s, "FROZEN", 6) == 0;
}

static int v1_kill_round(const char *name, struct cove_err **err)
{
        const struct hier *h = cg_hier_for(CTRL_FREEZER);
        return cg_kill_listed_frozen(h ? h : &cg_hier[0], name, h ? v1_set_frozen : NULL, err);
}

static uint64_t clamp_unlimited(uint64_t v)
{
        /* v1 reports "unlimited" as PAGE_COUNTER_MAX pages (0x7ffffffffffff000 on 4k). */
        return v >= (1ULL << 62) ? UINT64_MAX : v;
}

static int v1_stats(const char *name, struct cgroup_stats *ret, struct cove_err **err)
{
        struct cgroup_stats s = { .memory_limit = UINT64_MAX };
        const struct hier *h;
        int r;

        if ((h = cg_hier_for(CTRL_MEMORY))) {
                cleanup_free char *ms = NULL, *oc = NULL;
                r = cg_read_u64(h, name, "memory.usage_in_bytes", &s.memory_usage, err);
                if (r < 0)
                        return r;
                r = cg_read_u64(h, name, "memory.limit_in_bytes", &s.memory_limit, err);
                if (r < 0)
                        return r;
                s.memory_limit = clamp_unlimited(s.memory_limit);
                if (cg_read(h, name, "memory.stat", &ms, NULL) == 0 &&
                    cg_keyed_u64(ms, "total_cache", &s.memory_cache) < 0)
                        (void)cg_keyed_u64(ms, "cache", &s.memory_cache);
                if (cg_read(h, name, "memory.oom_control", &oc, NULL) == 0 &&
                    cg_keyed_u64(oc, "oom_kill", &s.oom_kills) == 0)
                        s.has_oom_kills = true;
        }
        if ((h = cg_hier_for(CTRL_CPUACCT))) {
                r = cg_read_u64(h, name, "cpuacct.usage", &s.cpu_usage_ns, err);
                if (r < 0)
                        return r;
        }
        if ((h = cg_hier_for(CTRL_PIDS))) {
                r = cg_read_u64(h, name, "pids.current", &s.pids_current, err);
                if (r < 0)
                        return r;
        }
        *ret = s;
        return 0;
}

const struct cgroup_driver cgroup_driver_v1 = {
        .make = v1_make,
        .set_limits = v1_set_limits,
        .set_frozen = v1_set_frozen,
        .is_frozen = v1_is_frozen,
        .kill_round = v1_kill_round,
        .stats = v1_stats,
};
