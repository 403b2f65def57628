/* SPDX-License-Identifier: MIT */
/*
 * engine.h — the sandbox backend. The manager (and, for the agent's transport, agent_client.c)
 * speak only this; engine/ is the one part of coved that includes runtime/ headers, so a
 * microVM backend replaces engine/ and nothing else.
 *
 * The backend here (namespaces.c, netns.c, disk_usage.c) runs each sandbox as Linux
 * namespaces + cgroup + overlayfs, started by the cove-runtime helper. A sandbox is an ID, an
 * opaque identity of its "init" (here: host pid + start time; a VMM process would do as well)
 * and an agent reachable through engine_agent_connect(). Nothing namespace-specific leaks.
 *
 * Threads: every call is safe from any thread and holds no lock across its waits; the manager
 * guarantees that at most one of start/destroy/pause/resume runs per sandbox at a time.
 * Errors: -errno with err; err->status set where the spec names a status for the case.
 */
#pragma once

#include "coved/coved.h"
#include "coved/usage.h"
#include "lib/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What a sandbox is made of. Fields are filled by the manager from the template, the create
 * request and the operator's settings (new resources — uid ranges, disk images — are new
 * fields here, allocated by the manager before engine_start and released after
 * engine_destroy). */
struct engine_spec {
        const char *id;
        const json_t *layers;  /* template lower dirs, topmost first */
        const json_t *binds;   /* [{source, target, readonly}] */
        const json_t *volumes; /* [{"id": volume ID, "path": mount path}] or NULL */
        int64_t cpu_count;
        int64_t memory_mb;
        int64_t disk_mb; /* size of the writable layer (engine_reserve() made its image) */
        int64_t pids_max;
        int64_t cpu_weight; /* CPU weight under contention, 100 = default; 0: the default */
        /* Build sandboxes (templates/): the overlay's upper and work directories are these
         * host directories (a layer being made) instead of the sandbox's own; the engine
         * never removes them. NULL for every other sandbox. */
        const char *upper_dir;
        const char *work_dir;
        const json_t *network;    /* SandboxNetworkPolicy: enforced unless `egress` is set */
        const json_t *egress;     /* the /v1 EgressPolicy when that face set it last, or NULL */
        const char *access_token; /* the sandbox's token, at /run/cove/access-token inside */
        int64_t uid_base;         /* host uid of the sandbox's root: its block of 65,536 uids;
                                   * 0: no user namespace */
        /* Optional: called by engine_start() once the sandbox's processes exist and its agent
         * can be reached (engine_agent_connect() works), before the engine's remaining work
         * (the network attach); so the caller's first agent request overlaps that work. */
        void (*spawned)(void *ud);
        void *spawned_ud;
};

/* Who the sandbox's init is: persisted with the sandbox, enough to find it again after a
 * restart and to tell it from a process that reused its pid. */
struct engine_identity {
        int64_t pid;       /* host pid of the sandbox's init */
        int64_t starttime; /* its start time (clock ticks since boot) */
};

/* ---- the process ---- */

/* Once at start: sealed in-memory copies of cove-init and cove-agent (runtime/sealed.h), which
 * every sandbox then runs (a sandbox can neither read nor change them); the node budget (the
 * parent cgroup's pids and memory limits) and, when the setting is 0, max-sandboxes. */
int engine_prepare(struct coved *cd, struct cove_err **err);
/* Undoes what engine_prepare() set up on the host for this coved alone (the freezer pin,
 * runtime/cgroup.h); sandboxes keep running. At stop. */
void engine_release(struct coved *cd);
/* Once at start: makes coved the reaper of orphaned sandbox inits (child subreaper). */
int engine_init(void);
/* Destroys every sandbox under data_dir (`coved purge`). */
int engine_purge(const char *data_dir, const char *cgroup_parent, struct cove_err **err);

/* ---- one sandbox's life ---- */

/* Admission: makes the sandbox's state dir and its (sparse) disk image of disk_mb, if the data
 * filesystem can hold it while every existing image grows to its full size and the operator's
 * reserve stays free; else 503 "not enough disk space". Serialised, so concurrent creates never
 * promise the same free space twice. engine_destroy() undoes it. */
int engine_reserve(struct coved *cd, const char *id, int64_t disk_mb, struct cove_err **err);

/* Starts the sandbox and returns its init's identity once its processes run (the agent may
 * not answer yet: see agent_client_ping()). On failure nothing of it is left behind. Waits
 * for a child process (the runtime helper, up to RUNTIME_CREATE_TIMEOUT_MS). */
int engine_start(struct coved *cd, const struct engine_spec *spec, struct engine_identity *ret,
                 struct cove_err **err);
/* Kills every process of the sandbox and removes everything it held. Idempotent; `who` may be
 * NULL when the identity is unknown (a failed start). */
int engine_destroy(struct coved *cd, const char *id, const struct engine_identity *who,
                   struct cove_err **err);
int engine_pause(struct coved *cd, const char *id, struct cove_err **err);
int engine_resume(struct coved *cd, const char *id, struct cove_err **err);

/* ---- networks (engine/network.c; no-ops under --network none) ---- */

/* Once at start, before adoption: the host side of sandbox networking (cd->net). */
int engine_network_open(struct coved *cd, struct cove_err **err);
void engine_network_close(struct coved *cd);
/* `coved purge`: everything networking left in this network namespace. */
int engine_network_purge(const struct coved_config *cfg, struct cove_err **err);
/* The address sandboxes reach coved at (cove.internal): -ENOENT without networking. */
int engine_network_gateway(struct coved *cd, char out[46]);
/* Replaces a running (or starting) sandbox's egress policy at once: connections the new
 * policy forbids are cut. */
int engine_set_network(struct coved *cd, const char *id, const json_t *network,
                       const json_t *egress, struct cove_err **err);
/* After a restart, for each live sandbox: takes its network back with `network` applied, or
 * gives it a new one when its link is gone. An error means the sandbox has no network now. */
int engine_adopt(struct coved *cd, const char *id, const struct engine_identity *who,
                 const json_t *network, const json_t *egress, struct cove_err **err);
/* Then: removes the networks no live sandbox claimed. */
void engine_adopt_done(struct coved *cd);

/* ---- identity, liveness, adoption ---- */

/* true when the init identified by `who` is still the sandbox's init (used to re-adopt
 * sandboxes after a restart). A dead init that is our child is reaped. */
bool engine_alive(const struct engine_identity *who);
/* A pollable fd (owned by the caller, CLOEXEC) that becomes readable once the init of `who`
 * has exited — the lifecycle loop waits on it instead of polling. -ESRCH when `who` is gone
 * already (or its pid was reused). */
int engine_watch(const struct engine_identity *who);
/* Collects the exit of an init that engine_watch() reported, when it is our child. */
void engine_reap(const struct engine_identity *who);

/* ---- reaching inside ---- */

/* A connected stream socket to the sandbox's agent (blocking, CLOEXEC), or -errno with err
 * (503 "sandbox agent unreachable" semantics are the caller's). Retries briefly while the
 * listener's backlog is full. */
int engine_agent_connect(struct coved *cd, const char *id, struct cove_err **err);
/* A TCP connection to 127.0.0.1:port inside the sandbox (nonblocking, CLOEXEC), connected
 * within timeout_ms: 502 when nothing listens or the connect fails, 504 on timeout, 503 when
 * the sandbox's network cannot be entered or `who` is gone. */
int engine_port_connect(struct coved *cd, const char *id, const struct engine_identity *who,
                        uint16_t port, int timeout_ms, struct cove_err **err);

/* ---- usage ---- */

/* CPU, memory, swap, task, I/O (and, once sandboxes have interfaces, network) counters of a
 * running sandbox, from its cgroup and /proc (usage.c). Values this host cannot tell are -1. */
int engine_usage(struct coved *cd, const char *id, struct sandbox_usage *ret,
                 struct cove_err **err);
/* Bytes in use on the sandbox's writable layer: its own filesystem's used blocks (its init
 * `who` must be running), or for a sandbox without a disk image the size of its upper dir on
 * the host (du-style, bounded walk: a lower bound for huge trees). */
int engine_disk_usage(struct coved *cd, const char *id, const struct engine_identity *who,
                      uint64_t *ret_bytes, struct cove_err **err);

/* ---- volumes (control-plane.md §13.1) ---- */

/* Makes the storage of a new volume: size_mb MiB that sandboxes naming it in
 * engine_spec.volumes mount read-write and share; writes past the size fail with ENOSPC
 * inside. It outlives sandboxes and restarts until engine_volume_delete(). */
int engine_volume_create(struct coved *cd, const char *volume_id, int64_t size_mb,
                         struct cove_err **err);
/* Removes a volume's storage (its data is gone). Idempotent. The caller makes sure no
 * sandbox mounts it. */
int engine_volume_delete(struct coved *cd, const char *volume_id, struct cove_err **err);

/* ---- templates ---- */

/* Builds at dir a root filesystem made from the host's own userland, for the default
 * templates (templates/defaults.c); its /usr is bound read-only from the host by the
 * template's binds. */
int engine_host_rootfs(const char *dir, struct cove_err **err);
