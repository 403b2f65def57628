/* SPDX-License-Identifier: MIT */
/*
 * usage.h — what a running sandbox uses, as the engine measures it (engine_usage()) and the
 * manager hands it to handlers (manager_usage()). Counters are cumulative since the sandbox
 * started; rates are the caller's business (obs/sampler.c). -1 means "unknown on this host":
 * callers omit such values rather than report 0 (control-plane.md §9.1).
 */
#pragma once

#include <stdint.h>

struct sandbox_usage {
        int64_t memory_bytes; /* in use, page cache included */
        int64_t memory_limit; /* -1: unlimited */
        int64_t memory_cache; /* page cache within memory_bytes (0 when unknown) */
        int64_t swap_bytes;   /* swap in use */
        int64_t swap_limit;   /* swap allowed (-1: unknown or unlimited) */
        int64_t cpu_usage_ns; /* user + system */
        int64_t cpu_user_ns;
        int64_t cpu_system_ns;
        int64_t tasks;     /* tasks (threads) now */
        int64_t tasks_max; /* task limit */
        int64_t runnable;  /* tasks running or in uninterruptible sleep (for load averages) */
        int64_t io_read_bytes, io_write_bytes, io_read_ops, io_write_ops;
        /* The sandbox's network interface, from the host side, as the sandbox sees it (rx:
         * received by the sandbox); -1 for a sandbox without a network (--network none). */
        int64_t net_rx_bytes, net_tx_bytes, net_rx_packets, net_tx_packets;
        int64_t net_rx_errors, net_tx_errors, net_rx_drops, net_tx_drops;
        uint64_t disk_bytes; /* the writable layer (manager_usage() with_disk only) */
};
