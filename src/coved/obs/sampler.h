/* SPDX-License-Identifier: MIT */
/*
 * sampler.h — metric samples (control-plane.md §9).
 *
 * One thread takes, every metrics-interval seconds (5), a usage sample of every running
 * sandbox (manager_usage()) and keeps the last three per sandbox in memory: snapshots report
 * counters as rates over the span between the newest and the oldest of them (~10 s), load
 * averages as the kernel computes them (decaying averages of runnable tasks over 1, 5 and
 * 15 minutes). Every team-metrics-interval seconds it writes one sample per team into the
 * store (concurrent sandboxes, creates since the last sample: §9.3), and it prunes samples
 * older than team-metrics-retention. Memory is bounded by the number of running sandboxes:
 * sandboxes that stop running are forgotten at the next round.
 *
 * Each running sandbox also keeps a history of its last hour (HISTORY_SPAN_MS): one point per
 * round with the CPU used since the point before (since the sandbox started, for its first
 * point), memory, and the size of its writable layer (walked every DISK_EVERY rounds, carried
 * forward between walks). The E2B face serves it (e2b.md §2.6); a pause or stop ends it.
 */
#pragma once

#include "coved/coved.h"
#include "lib/err.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

/* SandboxMetricSnapshot values; a negative value (or has_* false) means unknown: omitted. */
struct metric_snapshot {
        int64_t collected_at; /* ms */
        bool has_load;
        double load1, load5, load15;
        double cpu_user_rate, cpu_system_rate; /* CPU-seconds per second */
        int64_t memory_limit, memory_used;     /* bytes */
        int64_t swap_total, swap_used;
        double disk_read_ops, disk_write_ops, disk_read_bytes, disk_write_bytes; /* per second */
        double net_rx_bytes, net_tx_bytes, net_rx_packets, net_tx_packets;
        double net_rx_errors, net_tx_errors, net_rx_drops, net_tx_drops;
        int64_t tasks, tasks_max;
};

/* One point of a sandbox's history. */
struct metric_point {
        int64_t ts;                             /* ms, when it was sampled */
        double cpu_pct;                         /* 0–100 of the sandbox's CPUs */
        int64_t mem_used, mem_total, mem_cache; /* bytes; used without the page cache */
        int64_t disk_used;                      /* bytes in the writable layer */
};

int sampler_start(struct coved *cd, struct cove_err **err);
/* Stops and joins the thread, frees everything; no-op when not started. */
void sampler_stop(struct coved *cd);
/* The latest snapshot of a running sandbox; when none was taken yet, one is taken now (its
 * rates are unknown until a second sample exists). */
int sampler_snapshot(struct coved *cd, const struct sandbox_rec *sb, struct metric_snapshot *ret,
                     struct cove_err **err);
/* The history points of a running sandbox with from_ms <= ts <= to_ms, oldest first
 * (*ret: caller frees; NULL with *ret_n 0 when there are none). A running sandbox without any
 * point yet is sampled now. */
int sampler_history(struct coved *cd, const struct sandbox_rec *sb, int64_t from_ms, int64_t to_ms,
                    struct metric_point **ret, size_t *ret_n, struct cove_err **err);
/* Team samples of team_id with from_ms <= ts <= to_ms, oldest first (store_team_samples()). */
int sampler_team_samples(struct coved *cd, const char *team_id, int64_t from_ms, int64_t to_ms,
                         struct team_sample **ret, size_t *ret_n, struct cove_err **err);
/* The sampler ran within the last three intervals (observability availability). */
bool sampler_healthy(struct coved *cd);
