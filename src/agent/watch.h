/* SPDX-License-Identifier: MIT */
/*
 * watch.h — filesystem watchers (runtime.md §7.3) and the listening-port listing (§4.8 /ports).
 *
 *   watch.c  filesystem.WatchDir (stream), CreateWatcher / GetWatcherEvents / RemoveWatcher
 *            (polled, drained by one shared epoll thread); at most WATCH_MAX watchers of both
 *            kinds per agent (= per sandbox).
 *   ports.c  the `ports` op: listening TCP sockets from /proc/net/tcp{,6} with their owners.
 *
 * Handlers follow agent.h: they write their own response frames to c->fd and return 0, or
 * -errno when the connection must just be dropped.
 *
 * fs_path_resolve() lives in fs.c (its path rules: relative paths are relative to the acting
 * user's home, lexically normalised); it is declared here because watch.c is its only outside
 * caller.
 */
#pragma once

#include "agent/agent.h"

/* "filesystem.WatchDir", "filesystem.CreateWatcher", "filesystem.GetWatcherEvents",
 * "filesystem.RemoveWatcher". */
bool watch_handles(const char *op);
/* Runs the watcher op; switches to the acting user's fs credentials itself for the checks. */
int watch_handle(struct agent_call *c);

/* The `ports` op (no body): {"ports": [{port, protocol, address, pid?, process_name?}]}. */
int ports_handle(struct agent_call *c);

/* fs.c: normalises request path p for c's user into *ret (caller frees). Empty → 400
 * "<what> is required"; too long → 400. Sets err (with its HTTP status) on failure. */
int fs_path_resolve(const struct agent_call *c, const char *p, const char *what, char **ret,
                    struct cove_err **err);
