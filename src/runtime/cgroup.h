/* SPDX-License-Identifier: MIT */
/*
 * cgroup.h — one interface over the two cgroup layouts (PLATFORM.md, cgroups).
 *
 * The layout is detected once per process (statfs magic of /sys/fs/cgroup):
 *   - CGROUP2_SUPER_MAGIC: pure v2, one tree at /sys/fs/cgroup; cpu, memory and pids are enabled
 *     in every ancestor's cgroup.subtree_control on create.
 *   - tmpfs with v1 controller mounts (hybrid or legacy): one directory per v1 hierarchy that
 *     carries memory, cpu, cpuacct, pids or freezer (mount points read from mountinfo).
 *
 * Cgroups are addressed by name, relative to the root of each hierarchy (`cove/<id>`): the API
 * is stateless, so coved can drive a sandbox's cgroup after a restart from its name alone.
 * Names are validated ([A-Za-z0-9._-] components, no "." or ".."). Every function is
 * thread-safe (coved calls them from worker threads); none logs.
 *
 * Limits of 0 mean "no limit". A limit whose controller is missing fails with EOPNOTSUPP.
 */
#pragma once

#include "lib/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum cgroup_layout {
        CGROUP_LAYOUT_V1 = 1,
        CGROUP_LAYOUT_V2 = 2,
};

struct cgroup_limits {
        uint32_t cpu_count; /* CFS quota = cpu_count * 100 ms per 100 ms */
        uint64_t memory_mb; /* memory (and memory+swap) limit */
        uint32_t pids_max;
        uint32_t io_weight;  /* 1..10000 (v1: clamped to 10..1000); applied only where the kernel
                              * can weigh I/O (io.weight/io.bfq.weight, blkio.[bfq.]weight) */
        uint32_t cpu_weight; /* 1..10000, 100 = the kernel's default (v2 cpu.weight; v1
                              * cpu.shares = weight × 1024 / 100); 0: left at the default */
};

struct cgroup_stats {
        uint64_t memory_usage; /* bytes */
        uint64_t memory_limit; /* bytes; UINT64_MAX = unlimited */
        uint64_t memory_cache; /* bytes of page cache (memory.stat file / total_cache); 0 unknown */
        uint64_t cpu_usage_ns;
        uint64_t pids_current;
        uint64_t oom_kills;
        bool has_oom_kills; /* the kernel reports an OOM-kill counter */
};

/* How long freeze/kill/destroy wait for the kernel to settle. */
#define CGROUP_SETTLE_TIMEOUT_MS 5000

int cgroup_layout(enum cgroup_layout *ret_layout, struct cove_err **err);
/* Test hook: drive the v2 driver on another cgroup2 mount (e.g. /sys/fs/cgroup/unified).
 * NULL returns to auto-detection. Not for production callers. */
int cgroup_force_v2_root(const char *mountpoint);

int cgroup_create(const char *name, const struct cgroup_limits *limits, struct cove_err **err);
/* Makes name if missing and writes the non-zero limits; never removes anything (for a parent
 * that other cgroups live in, e.g. the node budget of every sandbox). */
int cgroup_update(const char *name, const struct cgroup_limits *limits, struct cove_err **err);
/* Moves pid (0 = the caller) into the cgroup in every hierarchy. */
int cgroup_join(const char *name, pid_t pid, struct cove_err **err);
/* Moves the caller back to the cgroups it was in before cgroup_join() (paths saved by the
 * first cgroup_join of this process). */
int cgroup_leave(struct cove_err **err);
int cgroup_freeze(const char *name, struct cove_err **err);
int cgroup_thaw(const char *name, struct cove_err **err);
/* 1 frozen, 0 not frozen, < 0 error. */
int cgroup_is_frozen(const char *name, struct cove_err **err);
/* The freezer pin (cgroup v1 only; a no-op elsewhere). The v1 freezer turns a kernel static
 * key on when the first cgroup of the host starts freezing and off when the last one thaws,
 * and each of those switches patches kernel text on every CPU: a freeze or thaw with no other
 * cgroup frozen took ~150 µs instead of ~25 µs. An empty cgroup kept frozen keeps the key on.
 * The pin of (parent, data_dir) is "<parent>/.freeze-pin-<hash of data_dir>": a leading dot,
 * so cgroup_list_children() never takes it for a sandbox. cgroup_freezer_pin() creates and
 * freezes it (idempotent), cgroup_freezer_unpin() thaws and removes it (absent is fine). */
char *cgroup_freezer_pin_name(const char *parent, const char *data_dir);
int cgroup_freezer_pin(const char *name, struct cove_err **err);
int cgroup_freezer_unpin(const char *name, struct cove_err **err);
/* SIGKILLs every process (v2 cgroup.kill; v1 freeze, kill each, thaw) and waits until the cgroup
 * is empty. A missing cgroup is not an error. Zombies whose parent is outside the cgroup
 * (the sandbox's init, reaped by coved) count as gone. */
int cgroup_kill_all(const char *name, struct cove_err **err);
/* rmdir in every hierarchy, retrying briefly while busy. Missing is not an error. */
int cgroup_destroy(const char *name, struct cove_err **err);
bool cgroup_exists(const char *name);
int cgroup_stats(const char *name, struct cgroup_stats *ret, struct cove_err **err);
/* Pids in the cgroup (v2: cgroup.procs; v1: the first hierarchy's). Caller frees *ret. */
int cgroup_pids(const char *name, pid_t **ret, size_t *ret_n, struct cove_err **err);
/* Names of the direct children of `parent` (e.g. "cove" → "cove/abc", …), NULL-terminated. */
int cgroup_list_children(const char *parent, char ***ret, struct cove_err **err);
/* The directory of `name` in the first hierarchy (for tests and diagnostics); caller frees. */
char *cgroup_path(const char *name, const char *controller);
