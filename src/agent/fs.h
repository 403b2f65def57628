/* SPDX-License-Identifier: MIT */
/*
 * fs.h — the agent's file API (runtime.md §3, §4.1–4.6, §7), split by concern:
 *
 *   fs_dispatch.c dispatch by op (fs_handle), credentials, the failure frame
 *   fs.c          request bodies, errno → the spec's status and message
 *   fs_path.c     path rules: lexical normalisation for the acting user, opening for reading
 *   fs_entry.c    EntryInfo (§7.1)
 *   fs_tree.c     mkdir -p, rm -r, copying a tree (Move across filesystems)
 *   fs_sink.c     writes: a temporary file renamed over the destination (atomic replacement)
 *   fs_service.c  filesystem.{Stat, ListDir, MakeDir, Remove, Move, Edit}
 *   fs_transfer.c files.read / files.write (streamed in D frames)
 *   fs_content.c  files.content (§4.3)
 *   fs_compose.c  files.compose (§4.5)
 *   watch.c       the watchers (§7.3), through fs_handle()
 *
 * Rules every op follows:
 * - It runs on the serving thread with the acting user's fs credentials already entered by
 *   fs_handle() (agent_fscreds_enter), so permission checks and the ownership of new files are
 *   the kernel's. On the E2B face (e2b.md §4.2) it runs as root instead, and what it creates
 *   or overwrites is handed to the acting user (agent_fs_owner).
 * - The agent lives in the sandbox's mount namespace: "/" is the sandbox root. Paths are
 *   normalised lexically first (fs_path_resolve: relative to the user's home; ".", ".." and
 *   "//" removed; ".." above "/" stays at "/").
 * - Stat and ListDir describe symlinks themselves; reads and writes follow them.
 * - Nothing blocks on a FIFO: foreign files are opened O_NONBLOCK and fstat'ed before use.
 *
 * Op convention: an op function returns >= 0 after sending its own success reply, or -errno
 * with *err set (err->status is the HTTP status the spec names; fs_handle() sends the failure
 * frame), or -errno with *err unset when the connection itself failed and must be dropped.
 * Helpers that take `struct cove_err **err` set it the same way, with the spec's status.
 */
#pragma once

#include "agent/agent.h"

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define FS_PATH_MAX         4096               /* normalised path, bytes incl. NUL */
#define FS_LIST_MAX_DEPTH   32                 /* ListDir.depth upper bound (spec) */
#define FS_LIST_MAX_ENTRIES 50000              /* ListDir walk stops here (413) */
#define FS_TREE_MAX_DEPTH   256                /* Remove / cross-fs Move nesting (fds held) */
#define FS_EDIT_MAX_SIZE    (64 * 1024 * 1024) /* Edit reads the whole file */
#define FS_READ_CHUNK       (64 * 1024)        /* files.read copy block where sendfile cannot */
#define FS_READ_FRAME       (1024 * 1024)      /* files.read D frame size (<= FRAME_MAX_PAYLOAD) */
#define FS_WRITE_PIPE       (1024 * 1024)      /* files.write: the splice pipe asked for */
#define FS_WRITE_SPLICE_MIN (64 * 1024)        /* files.write: smaller D frames are copied */
#define FS_REPLY_CHUNK      (256 * 1024)       /* D frames of a large reply */
#define FS_COPY_CHUNK       (64 * 1024)
#define FS_TMP_NAME_KEEP    200 /* bytes of the name kept in a temp name */
#define FS_TMP_TRIES        16

/* ---- fs.c: errors and request bodies ---- */

/* Maps errno e (either sign) from an operation on path p to the spec's status and message. */
int fs_err(struct cove_err **err, int e, const char *p);
/* The same for lookups: a path whose parent component is a file does not exist either. */
int fs_err_lookup(struct cove_err **err, int e, const char *p);
/* 400 "'<p>' is a directory" or "'<p>' is not a regular file", from st. */
int fs_err_not_regular(struct cove_err **err, const struct stat *st, const char *p);

/* The fields of every filesystem.* / files.* body; fs_req_done() frees them. */
struct fs_req {
        char *path;        /* owned */
        char *source;      /* owned */
        char *destination; /* owned */
        char *old_text;    /* owned */
        char *new_text;    /* owned */
        struct json_int depth;
        struct json_int mode;
};
void fs_req_done(struct fs_req *q);
#define cleanup_req __attribute__((cleanup(fs_req_done)))

extern const struct json_field fs_fields_path[];  /* {path} */
extern const struct json_field fs_fields_list[];  /* {path, depth?} */
extern const struct json_field fs_fields_move[];  /* {source, destination} */
extern const struct json_field fs_fields_edit[];  /* {path, oldText, newText} */
extern const struct json_field fs_fields_write[]; /* {path, mode?} */
/* json_dispatch of c's body; a failure is a 400. */
int fs_req_parse(struct agent_call *c, const struct json_field *fields, struct fs_req *q,
                 struct cove_err **err);

/* Is the call acting as root (chown allowed, owners kept)? */
bool fs_acting_root(const struct agent_call *c);
/* The uid whose permissions the op has: the acting user's, or 0 on the E2B face. */
uid_t fs_acting_uid(const struct agent_call *c);
/* Per thread, during one E2B-face op acting for a user other than root: the owner of every
 * file and directory the op creates and of every file it overwrites (e2b.md §4.2). */
extern _Thread_local const struct agent_user *agent_fs_owner;

/* ---- fs_path.c ---- */

/* errno of "a magic link is on the path" inside the fs modules (openat2 says ELOOP): 403. */
#define FS_EMAGIC EREMOTE

/* openat2(dirfd, path, flags | O_CLOEXEC, resolve | RESOLVE_NO_MAGICLINKS): the fd, or -errno,
 * -FS_EMAGIC when a magic link is on the way (or is the last component and would be followed
 * or opened), -ELOOP for a loop of ordinary symlinks (or O_NOFOLLOW on a symlink). */
int fs_openat(int dirfd, const char *path, int flags, uint64_t resolve);
/* 1 when the entry `name` of dirfd, whose lstat is st, is a magic link — a procfs symlink
 * that does not resolve without following one — else 0 (or -errno). */
int fs_is_magic_link(int dirfd, const char *name, const struct stat *st);

/* Where a normalised path lives: its parent directory (O_PATH, resolved without magic links)
 * and its last component ("." for "/"). Ops then use *at() calls on these and never resolve the
 * path string again. Declare `cleanup_at struct fs_at at = { .dirfd = -1 };`. */
struct fs_at {
        int dirfd;  /* owned */
        char *name; /* owned */
};
/* 404 / 403 / 400 like a lookup when the parent cannot be resolved. */
int fs_at_open(const char *path, struct fs_at *at, struct cove_err **err);
void fs_at_done(struct fs_at *at);
#define cleanup_at __attribute__((cleanup(fs_at_done)))
/* lstat of the last component: 0, -errno, or -FS_EMAGIC when it is a magic link itself. */
int fs_at_lstat(const struct fs_at *at, struct stat *st);

/* Opens a regular file to read: follows symlinks (never magic links), never blocks (FIFO),
 * refuses anything but a regular file. With edit, a missing file is 404 "file '<p>' not
 * found". Returns the fd (blocking mode). */
int fs_open_regular(const char *path, bool edit, struct cove_err **err);
/* Opens a directory to read it (following symlinks, never magic links); not one → 400. */
int fs_open_dir(const char *path, struct cove_err **err);

/* Checks, before anything is changed, that the acting user may create entries in dirfd
 * (write + search). */
int fs_check_writable_dir(int dirfd, const char *path, struct cove_err **err);
/* Checks that the acting user (uid) may remove or replace the entry at (whose lstat is st):
 * not on a kernel pseudo filesystem (proc, sys, cgroup, …), write + search on its directory,
 * and the sticky-directory rule. */
int fs_check_removable(const struct fs_at *at, const struct stat *st, uid_t uid, const char *path,
                       struct cove_err **err);

/* Normalises p lexically (lib/path.h) into *ret, -ENAMETOOLONG beyond FS_PATH_MAX. */
int fs_path_normalize(const char *base, const char *p, char **ret);
/* Normalises request path p for c's user into *ret (caller frees). Empty → 400
 * "<what> is required"; too long → 400. */
int fs_path_resolve(const struct agent_call *c, const char *p, const char *what, char **ret,
                    struct cove_err **err);
/* The same for a JSON value: absent/null → 400 "<what> is required"; not a string or with a
 * NUL byte (which a C string would silently cut) → 400. */
int fs_path_resolve_json(const struct agent_call *c, json_t *v, const char *what, char **ret,
                         struct cove_err **err);
/* fs_req_parse() (fs.c), then q->path resolved for c's user (fs_path_resolve, as "path") into
 * *ret_path (caller frees). */
int fs_req_parse_path(struct agent_call *c, const struct json_field *fields, struct fs_req *q,
                      char **ret_path, struct cove_err **err);
/* Base name of a normalised path ("/" for the root); borrowed from p. */
const char *fs_path_base(const char *p);
/* Parent directory of a normalised path; "/" for "/x" and "/". Caller frees. */
char *fs_path_parent(const char *p);
/* dir + "/" + name. Caller frees. */
char *fs_path_join(const char *dir, const char *name);
/* Is p equal to or below dir (both normalised)? */
bool fs_path_is_under(const char *p, const char *dir);

/* ---- fs_entry.c ---- */

/* EntryInfo of the entry `name` in dirfd (not followed) whose normalised path is `path`.
 * NULL when it cannot be expressed in JSON (a name or owner that is not UTF-8). */
json_t *fs_entry_new(int dirfd, const char *name, const char *path, const struct stat *st);
/* E2B file metadata (e2b.md §4.4): extended attributes user.e2b.<key>. */
#define FS_XATTR_PREFIX    "user.e2b."
#define FS_XATTR_LIST_MAX  (64 * 1024)
#define FS_XATTR_VALUE_MAX 4096
/* Adds "metadata" ({key: value} of the path's user.e2b.* attributes) to an EntryInfo, when
 * there are any. */
void fs_entry_add_metadata(json_t *e, const char *path);
/* Entry name strings must be UTF-8 for jansson. */
bool fs_name_is_utf8(const char *s);
/* Replies {"entry": EntryInfo}. */
int fs_reply_entry(struct agent_call *c, int dirfd, const char *name, const char *path,
                   const struct stat *st, struct cove_err **err);

/* ---- fs_tree.c ---- */

/* mkdirat (mode 0755 regardless of umask, keeping an inherited setgid bit); -errno. */
int fs_tree_mkdir_at(int dirfd, const char *name);
/* What fs_tree_mkdir_parents() made: the top-most directory it created (NULL: none). */
struct fs_created {
        char *top; /* owned */
};
void fs_created_done(struct fs_created *m);
#define cleanup_created __attribute__((cleanup(fs_created_done)))
/* mkdir -p of the normalised path p (as the acting user), following symlinks but never magic
 * links; returns an O_PATH fd of p. A component that exists but is not a directory → 400
 * "'<component>' is not a directory". made (empty) records what was created; on failure what
 * was created is removed again before the error returns. */
int fs_tree_mkdir_parents(const char *p, struct fs_created *made, struct cove_err **err);
/* Removes what fs_tree_mkdir_parents() created on the way to leaf (leaf upwards, stopping at
 * a directory that is not empty), so that a request that fails leaves no trace. */
void fs_tree_unmake(struct fs_created *made, const char *leaf);
/* Would fs_tree_mkdir_parents(p) be allowed? A non-directory component → 400; a missing one →
 * the last existing directory must be writable by the acting user (else 403). */
int fs_tree_check_creatable(const char *p, struct cove_err **err);

/* Removes the entry at (whose lstat is st): a file, a symlink itself, or a directory tree. */
int fs_tree_remove_at(const struct fs_at *at, const struct stat *st, const char *path,
                      struct cove_err **err);
/* The same from a path (resolved without magic links; a magic link itself → 403). */
int fs_tree_remove(const char *path, struct cove_err **err);
/* Would fs_tree_remove_at() succeed for the acting user uid? fs_check_removable() for the
 * entry, and for a directory the same for everything below it (no mount point inside). */
int fs_tree_check_removable(const struct fs_at *at, const struct stat *st, uid_t uid,
                            const char *path, struct cove_err **err);

/* Reading a directory: fs_dir_open() takes dfd (owned: closed on failure too) and sets *ret to
 * its DIR, or returns fs_err(path); fs_dir_next() gives the next entry other than "." and "..":
 * 1 with *ret set, 0 at the end, or fs_err(path) when reading fails. */
int fs_dir_open(int dfd, const char *path, DIR **ret, struct cove_err **err);
int fs_dir_next(DIR *d, const char *path, struct dirent **ret, struct cove_err **err);

/* Copies in (from its offset) to out (at its offset) until EOF; 0 or -errno. */
int fs_copy_fd(int in, int out);
/* Copies sfd/sname (whose path is spath, for messages) to dfd/dname, which must not exist:
 * directories recursively, symlinks as links, special files with mknod; owners when root. A
 * magic link → 403. */
int fs_tree_copy(int sfd, const char *sname, const char *spath, int dfd, const char *dname,
                 bool root, unsigned level, struct cove_err **err);

/* ---- fs_sink.c ---- */

/* Where written content goes: a temp file renamed over the destination on commit, or — when
 * the directory is not writable but the file is — the file itself, written in place. Declare
 * it `cleanup_sink struct fs_sink s = FS_SINK_NULL;`; release discards an uncommitted write. */
struct fs_sink {
        int fd;        /* owned: where content goes */
        int dirfd;     /* owned: O_PATH, the directory of the real destination */
        char *name;    /* owned: the real destination's name in dirfd (symlinks followed) */
        char *tmp;     /* owned: temp name in dirfd; NULL when writing in place or committed */
        bool have_old; /* the destination exists (then `old` describes it) */
        struct stat old;
};
#define FS_SINK_NULL                                                                               \
        {                                                                                          \
                .fd = -1, .dirfd = -1                                                              \
        }

/* Prepares writing dst (normalised; its parent exists). A symlink at dst is followed (never a
 * magic link: 403), a dangling one is replaced; a directory → 400 is a directory; a
 * FIFO/socket/device → 400. */
int fs_sink_open(const char *dst, struct fs_sink *s, struct cove_err **err);
int fs_sink_write(struct fs_sink *s, const void *p, size_t n, const char *path,
                  struct cove_err **err);
/* mode < 0: keep the existing file's mode (and owner, when root), else 0644. */
int fs_sink_commit(struct fs_sink *s, int mode, bool root, const char *path, struct cove_err **err);
/* Unlinks an uncommitted temp file, closes, frees; safe on FS_SINK_NULL. */
void fs_sink_release(struct fs_sink *s);
#define cleanup_sink __attribute__((cleanup(fs_sink_release)))

/* The temporary name of a write to `name`: ".<name>.cove-" then 'n' (the file is new) or 'r'
 * (it replaces one), then 5 random [a-z0-9]. Watchers (watch.c) recognise it with
 * fs_tmp_parse(): they never report it, and report its rename over `name` as CREATE (when 'n')
 * then WRITE of `name` (runtime.md §7.3). Caller frees. */
char *fs_tmp_name(const char *name, bool is_new);
/* Is tmp such a name? *ret_new (may be NULL): was it made for a new file? */
bool fs_tmp_parse(const char *tmp, bool *ret_new);

/* ---- the ops (fs_service.c, fs_transfer.c, fs_content.c, fs_compose.c) ---- */

int fs_op_stat(struct agent_call *c, struct cove_err **err);
int fs_op_list_dir(struct agent_call *c, struct cove_err **err);
int fs_op_make_dir(struct agent_call *c, struct cove_err **err);
int fs_op_remove(struct agent_call *c, struct cove_err **err);
int fs_op_move(struct agent_call *c, struct cove_err **err);
int fs_op_edit(struct agent_call *c, struct cove_err **err);
/* files.read {path}: the head frame, then coved's range, then D frames and E. */
int fs_op_read(struct agent_call *c, struct cove_err **err);
int fs_op_open(struct agent_call *c, struct cove_err **err);
/* files.write {path, mode?}: D frames until E into a sink. */
int fs_op_write(struct agent_call *c, struct cove_err **err);
/* files.content {path, max_tokens?} → {type:"text", content, truncated} or
 * {type:"image", mime_type, data}; 413 image over 10 MiB; 415 binary. */
int fs_op_content(struct agent_call *c, struct cove_err **err);
/* files.compose {source_paths, destination} → {path, name, type:"file"}. */
int fs_op_compose(struct agent_call *c, struct cove_err **err);
