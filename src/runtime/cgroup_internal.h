/* SPDX-License-Identifier: MIT */
/*
 * cgroup_internal.h — what cgroup.c (layout detection, names, join/leave, kill loop, destroy,
 * listing) shares with the two drivers behind cgroup.h: cgroup_v1.c and cgroup_v2.c. Never
 * included outside src/runtime/cgroup*.c.
 *
 * The hierarchy table cg_hier[0..cg_n) is filled once by detection (under cg_lock) and is
 * read-only afterwards; on v2 it holds the one unified tree. Drivers are stateless: every
 * operation works on paths "<mount>/<name>/<file>" and fills a cove_err on failure.
 */
#pragma once

#include "runtime/cgroup.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CGROUP_ROOT      "/sys/fs/cgroup"
#define CGROUP_FILE_MAX  (64 * 1024)
#define CGROUP_PROCS_MAX (4 * 1024 * 1024)
#define CGROUP_MAX_HIER  8
#define CFS_PERIOD_US    100000ULL

enum {
        CTRL_MEMORY = 1 << 0,
        CTRL_CPU = 1 << 1,
        CTRL_CPUACCT = 1 << 2,
        CTRL_PIDS = 1 << 3,
        CTRL_FREEZER = 1 << 4,
        CTRL_BLKIO = 1 << 5, /* v1 only, and only when it can weigh I/O (see detection) */
};

struct hier {
        char *mnt;      /* owned */
        unsigned ctrls; /* CTRL_* carried by this mount (v1) */
        char *saved;    /* owned; the caller's path before cgroup_join (for cgroup_leave) */
};

extern struct hier cg_hier[CGROUP_MAX_HIER];
extern size_t cg_n;

/* One layout's operations. `name` is already validated and the layout detected. */
struct cgroup_driver {
        /* mkdir name (and missing parents) in every hierarchy; nothing else. */
        int (*make)(const char *name, struct cove_err **err);
        /* Writes the non-zero limits of lim. */
        int (*set_limits)(const char *name, const struct cgroup_limits *lim, struct cove_err **err);
        /* Asks for freeze/thaw and waits until the kernel reports it (or the deadline). */
        int (*set_frozen)(const char *name, bool freeze, struct cove_err **err);
        /* 1 frozen, 0 not, < 0 error. */
        int (*is_frozen)(const char *name, struct cove_err **err);
        /* One round of SIGKILL to every process of the cgroup (the caller loops until empty). */
        int (*kill_round)(const char *name, struct cove_err **err);
        int (*stats)(const char *name, struct cgroup_stats *ret, struct cove_err **err);
};

extern const struct cgroup_driver cgroup_driver_v1;
extern const struct cgroup_driver cgroup_driver_v2;

/* The hierarchy carrying a controller (v2: the one tree), or NULL. */
const struct hier *cg_hier_for(unsigned ctrl);
unsigned cg_ctrl_bits_from_opts(const char *opts);

char *cg_file(const struct hier *h, const char *name, const char *file);
int cg_write(const struct hier *h, const char *name, const char *file, const char *value,
             struct cove_err **err);
int cg_read(const struct hier *h, const char *name, const char *file, char **ret,
            struct cove_err **err);
bool cg_has_file(const struct hier *h, const char *name, const char *file);
/* First line of a file as an unsigned; "max" → UINT64_MAX. */
int cg_read_u64(const struct hier *h, const char *name, const char *file, uint64_t *ret,
                struct cove_err **err);
/* "key value" line of a flat-keyed file; -ENOENT when the key is absent. */
int cg_keyed_u64(const char *text, const char *key, uint64_t *ret);
int cg_read_pids(const struct hier *h, const char *name, pid_t **ret, size_t *ret_n,
                 struct cove_err **err);
/* SIGKILLs every pid listed in h's cgroup.procs of name. */
int cg_kill_listed(const struct hier *h, const char *name, struct cove_err **err);
/* The same, with name frozen around it when set_frozen (a driver's) is not NULL and freezing
 * works: nothing forks between reading the list and the kill. */
int cg_kill_listed_frozen(const struct hier *h, const char *name,
                          int (*set_frozen)(const char *name, bool freeze, struct cove_err **err),
                          struct cove_err **err);
/* One look (and, where the driver needs it, one more request) at a freeze or thaw: 1 settled,
 * 0 not yet, < 0 an error. */
typedef int (*cg_frozen_step_fn)(const char *name, bool freeze, struct cove_err **err);
/* Calls step with a growing pause (1 to 20 ms) until it settles (0), fails, or
 * CGROUP_SETTLE_TIMEOUT_MS pass (ETIMEDOUT "freeze/thaw cgroup '<name>': not settled"). */
int cg_settle_frozen(const char *name, bool freeze, cg_frozen_step_fn step, struct cove_err **err);
/* mkdir of every missing component of name under mnt; on v2 `enable` lists the controllers to
 * switch on in each parent's cgroup.subtree_control (NULL on v1). */
int cg_mkdir_p(const char *mnt, const char *name, const char *const *enable, size_t n_enable,
               struct cove_err **err);

void cg_sleep_ms(long ms);
int64_t cg_mono_ms(void);
