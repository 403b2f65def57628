/* SPDX-License-Identifier: MIT */
/*
 * fdutil.h — fd helpers: full reads and writes that retry on EINTR and short counts,
 * close-on-exec sweeps for children, and fd flags.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads exactly n bytes: n on success, 0 < r < n on EOF, -errno on error. */
ssize_t read_full(int fd, void *p, size_t n);
/* Writes all n bytes (MSG_NOSIGNAL semantics are the caller's business): 0 or -errno. */
int write_full(int fd, const void *p, size_t n);
/* Closes a descriptor received from a less trusted process (SCM_RIGHTS) without letting it
 * block the caller: a socket with SO_LINGER set by its sender would hold close() until its
 * unsent bytes drain, so sockets are reset first (SO_LINGER 0). */
void fd_close_foreign(int fd);
/* Whether a descriptor received from a less trusted process may be read by us without
 * surprises: a regular file open for reading (not O_PATH) on ext4, xfs, btrfs, tmpfs or
 * overlayfs — not proc or sysfs (whose reads may answer with the reader's credentials), not
 * fuse or a network filesystem (whose reads may wait on another process). Sets *ret_size. */
bool fd_local_file_readable(int fd, int64_t *ret_size);
int fd_set_nonblock(int fd, int on);
int fd_set_cloexec(int fd, int on);
/* Marks every fd >= from close-on-exec (close_range, falling back to /proc/self/fd).
 * Async-signal-safe in its close_range path. */
int fd_cloexec_from(int from);
/* Reads a whole small file (<= max bytes) into a NUL-terminated allocation. */
int read_small_file(const char *path, size_t max, char **ret, size_t *ret_len);
int write_string_file(const char *path, const char *s);

/* The process's open-file limit (RLIMIT_NOFILE).
 *
 * fd_limit_raise() raises the soft limit to the hard limit and remembers the soft limit the
 * process started with; the new soft limit is returned (the old one when raising failed).
 * fd_limit_restore() puts the remembered soft limit back; it is one setrlimit() call and
 * async-signal-safe, meant for a child between fork() and exec(), so that programs the
 * process starts (sandboxes, through cove-runtime) get the limit it was given, not its own
 * raised one. A no-op when nothing was raised. */
unsigned long fd_limit_raise(void);
void fd_limit_restore(void);
