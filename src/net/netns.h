/* SPDX-License-Identifier: MIT */
/*
 * netns.h — doing one thing inside another network namespace without moving the caller.
 *
 * netns_run() runs fn(ud) on a short-lived thread that has setns()ed into netns_fd, and returns
 * fn's result. Sockets opened there stay bound to that namespace after the thread exits: this
 * is how coved configures a sandbox's netns (STYLE.md §0's one exception — coved never clones,
 * mounts or unshares). The calling thread's namespace never changes, so a failure cannot leave
 * an HTTP worker thread inside a sandbox.
 *
 * netns_socket() is the one exception, for the hot path (the proxy opens a socket per
 * connection): creating a socket cannot run arbitrary code, so the calling thread itself
 * enters netns_fd, makes the socket and goes straight back to the namespace it was in (a
 * thread that could not go back aborts coved rather than serve from inside a sandbox).
 */
#pragma once

/* Returns fn's result, or -errno when the thread or setns fails. netns_fd < 0: the caller's
 * own namespace (fn runs on the calling thread). */
int netns_run(int netns_fd, int (*fn)(void *ud), void *ud);
/* A socket (with SOCK_CLOEXEC added) created inside netns_fd (< 0: the caller's namespace),
 * on the calling thread (see above); -errno. The socket stays bound to netns_fd. */
int netns_socket(int netns_fd, int domain, int type, int protocol);
/* Opens /proc/<pid>/ns/net read-only, close-on-exec; -errno. */
int netns_open_pid(int pid);
