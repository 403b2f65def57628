/* SPDX-License-Identifier: MIT */
/*
 * fs_ops.h — the whole-file ops of fs_ops.c (files.content, files.compose; runtime.md §4.3,
 * §4.5) and the few fs.c helpers they share, so both follow the same path, error and atomic
 * write rules (runtime.md §3).
 *
 * The op functions follow fs.c's op convention: they run on the serving thread with the acting
 * user's fs credentials already entered by fs_handle(), send their own success reply, and
 * return >= 0, or -errno with *err set (status = the spec's HTTP status; fs_handle() sends the
 * failure frame), or -errno without *err when the connection failed.
 *
 * struct fs_sink (fs.c) is a write in progress: a temporary file in the destination's
 * directory that fs_sink_done() renames over the destination; fs_sink_free() discards an
 * uncommitted one. Only regular files (following symlinks) can be destinations: a directory
 * → 400 "'<p>' is a directory".
 */
#pragma once

#include "agent/agent.h"

#include <stdbool.h>
#include <stddef.h>

struct fs_sink;

/* fs.c exports (thin wrappers over its static helpers). */
/* errno e from an operation on normalised path p → err with the spec's status and message. */
int fs_err_path(struct cove_err **err, int e, const char *p);
/* Opens a regular file to read (follows symlinks, never blocks on a FIFO); the fd. */
int fs_open_regular(const char *path, struct cove_err **err);
/* mkdir -p of normalised path p as the acting user (0755). */
int fs_mkdir_parents(const char *p, struct cove_err **err);
/* Copies in (from its offset) to out (at its offset) until EOF; 0 or -errno. */
int fs_copy_fd(int in, int out);
int fs_sink_new(const char *dst, struct fs_sink **ret, struct cove_err **err);
/* The fd to append content to (owned by the sink). */
int fs_sink_fd(const struct fs_sink *s);
/* mode < 0: keep an existing file's mode (and owner when root), else 0644. */
int fs_sink_done(struct fs_sink *s, int mode, bool root, const char *path, struct cove_err **err);
struct fs_sink *fs_sink_free(struct fs_sink *s);

/* fs_ops.c */
/* files.content {path, max_tokens?} → {type:"text", content, truncated} or
 * {type:"image", mime_type, data}; 413 image over 10 MiB; 415 binary. */
int fs_op_content(struct agent_call *c, struct cove_err **err);
/* files.compose {source_paths, destination} → {path, name, type:"file"}. */
int fs_op_compose(struct agent_call *c, struct cove_err **err);
