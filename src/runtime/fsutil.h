/* SPDX-License-Identifier: MIT */
/*
 * fsutil.h — directory-fd based file helpers for the runtime and its library users.
 *
 * rm_rf() never follows symlinks (every step is openat(O_NOFOLLOW)/unlinkat on a dirfd) and
 * never crosses into another filesystem: a directory with a different st_dev than the top (a
 * stray mount) stops the removal with EBUSY instead of deleting what is mounted there.
 */
#pragma once

#include "lib/err.h"

#include <sys/types.h>

/* Removes path and everything below it. A missing path is success. */
int rm_rf(const char *path, struct cove_err **err);
/* Same for an entry `name` of the directory dirfd. */
int rm_rf_at(int dirfd, const char *name, struct cove_err **err);
/* mkdir -p with mode for created components (umask applies). */
int mkdir_p(const char *path, mode_t mode, struct cove_err **err);
/* Copies a regular file (following symlinks at src) to dst with the given mode, via dst.tmp and
 * rename. Fails with ENOENT when src is missing. */
int copy_file(const char *src, const char *dst, mode_t mode, struct cove_err **err);
/* Writes a whole file (created or truncated) with the given mode. */
int write_file_mode(const char *path, const char *content, mode_t mode, struct cove_err **err);
