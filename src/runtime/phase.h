/* SPDX-License-Identifier: MIT */
/*
 * phase.h — where the time of one `cove-runtime create` goes: a recorder of named phases
 * (microseconds since the previous mark), reported with the helper's result and turned into
 * coved's cove_sandbox_create_phase_seconds histogram (bench/create.py prints it).
 *
 * Off until phase_start() (only cove-runtime's `create` calls it): library code
 * shared with the multi-threaded coved (cgroup.c) may mark phases, which then cost nothing and
 * touch no shared state; so do marks from any thread but the one that called phase_start()
 * (cove-runtime's cgroup joiner, see ns.c). At most PHASES_MAX phases are kept; later marks are
 * folded into the last one. Names are copied (at most PHASE_NAME_MAX - 1 bytes).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PHASES_MAX     24
#define PHASE_NAME_MAX 32

struct phase {
        char name[PHASE_NAME_MAX];
        uint64_t us;
};

/* Starts recording (and forgets what was recorded). */
void phase_start(void);
/* Ends the current phase under `name` (the time since phase_start() or the last mark). */
void phase_mark(const char *name);
/* The phases recorded so far; *ret_n of them. */
const struct phase *phase_list(size_t *ret_n);
