/* SPDX-License-Identifier: MIT */
/*
 * spawn_client.h — coved's side of the runtime helper protocol (docs/design/runtime-helper.md).
 *
 * runtime_create() fork-execs `cove-runtime create <config>` with a SOCK_SEQPACKET sync socket
 * on the helper's fd 3 and returns the sandbox init's host pid and start time. With `bins`, the
 * sealed copies of cove-init and cove-agent (sealed.h) are handed to the helper as its fds 4
 * and 5 (`create <config> --init-fd 4 --agent-fd 5`), so no create copies them; the caller
 * keeps its fds. It is safe in a multi-threaded process: everything is allocated before fork, the
 * child only calls async-signal-safe functions, and only the helper's own pid is waited for (never
 * -1). The caller should be a child subreaper (PR_SET_CHILD_SUBREAPER): init, orphaned when the
 * helper exits, is then re-parented to it and must be reaped by it.
 *
 * runtime_destroy() and runtime_purge() run in-process (no namespaces are entered): they kill
 * through the cgroup, remove cgroups, the agent socket and the state directory (without
 * following symlinks or crossing mounts). Both are idempotent: missing pieces are not errors.
 *
 * Identity: a sandbox init is identified by pid AND start time (field 22 of /proc/pid/stat)
 * AND living in another pid namespace than the caller; never by pid alone.
 */
#pragma once

#include "lib/err.h"

#include <stdint.h>
#include <sys/types.h>

#include "runtime/phase.h"

struct runtime_result {
        pid_t pid;          /* init's pid in the caller's pid namespace */
        uint64_t starttime; /* clock ticks after boot (proc_starttime) */
        /* Where the helper's time went (runtime/phase.h), as it reported it, plus
         * "helper.spawn+exit": the rest of the wall time from fork to its exit status. */
        size_t n_phases;
        struct phase phases[PHASES_MAX + 1];
};

/* Sealed binaries the helper runs in the sandbox; -1 lets the helper make its own copies. */
struct runtime_binaries {
        int init_fd;
        int agent_fd;
};

/* How long runtime_create waits for the helper's answer before killing it. */
#define RUNTIME_CREATE_TIMEOUT_MS 60000

int runtime_create(const char *helper, const char *config_path, const struct runtime_binaries *bins,
                   struct runtime_result *ret, struct cove_err **err);
/* Accepts the config.json path or the sandbox state directory holding it. */
int runtime_destroy(const char *config_path_or_state_dir, struct cove_err **err);
/* Destroys every DIR/sandboxes/<id>, then removes leftover <cgroup_parent>/<id> cgroups
 * (cgroup_parent NULL: "cove") whose sandbox directory is gone and whose processes (if any)
 * hold an agent socket under DIR/sandboxes, and detaches loop devices of images under it. */
int runtime_purge(const char *data_dir, const char *cgroup_parent, struct cove_err **err);

/* Volumes (volume.c), in-process as well. runtime_volume_create() makes the image file of a
 * volume of size_mb MiB (an empty ext4 filesystem whose root-owned root directory is what
 * sandboxes mount; see volume.c), atomically: the file exists complete or not at all.
 * runtime_volume_delete() removes it (missing is not an error). Sandboxes name volume images
 * in their config.json `volumes`; cove-runtime mounts them (one loop device per image, shared
 * by every sandbox that mounts it). */
int runtime_volume_create(const char *image, uint64_t size_mb, struct cove_err **err);
int runtime_volume_delete(const char *image, struct cove_err **err);

/* Field 22 of /proc/<pid>/stat: 0 or -errno (-ENOENT when the process is gone). */
int proc_starttime(pid_t pid, uint64_t *ret);
/* 1 when pid is alive (not a zombie), has this start time and lives in another pid namespace
 * than the caller; 0 otherwise. */
int runtime_init_alive(pid_t pid, uint64_t starttime);
