/* SPDX-License-Identifier: MIT */
/*
 * fs_service.c — the filesystem.Filesystem methods (runtime.md §7.2) other than the
 * watchers: Stat, ListDir, MakeDir, Remove, Move, Edit.
 */
#include "agent/fs.h"
#include "lib/fdutil.h"
#include "lib/frame.h"
#include "lib/macro.h"

#include <fcntl.h>
#include <sys/stat.h>

/* ---- filesystem.Stat ---- */

int fs_op_stat(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL;
        cleanup_at struct fs_at at = { .dirfd = -1 };
        struct stat st;
        int r;

        r = fs_req_parse_path(c, fs_fields_path, &q, &path, err);
        if (r < 0)
                return r;
        r = fs_at_open(path, &at, err);
        if (r < 0)
                return r;
        r = fs_at_lstat(&at, &st);
        if (r < 0)
                return fs_err_lookup(err, r, path);
        return fs_reply_entry(c, at.dirfd, at.name, path, &st, err);
}

/* ---- filesystem.ListDir ---- */

struct listing {
        json_t **v; /* owned references */
        size_t n, cap;
};

static void listing_done(struct listing *l)
{
        for (size_t i = 0; i < l->n; i++)
                json_decref(l->v[i]);
        free(l->v);
}

static int list_walk(int dfd, const char *dpath, unsigned level, unsigned depth, struct listing *l,
                     struct cove_err **err)
{
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;
        int r;

        r = fs_dir_open(dfd, dpath, &d, err);
        if (r < 0)
                return r;
        /* Now dfd is owned by d. */
        for (;;) {
                struct stat st;
                r = fs_dir_next(d, dpath, &de, err);
                if (r <= 0)
                        return r;
                if (!fs_name_is_utf8(de->d_name))
                        continue; /* cannot be put in JSON */
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* vanished meanwhile */
                if (l->n >= FS_LIST_MAX_ENTRIES)
                        return cove_err_set_status(err, 413, E2BIG,
                                                   "directory listing has more than %d entries",
                                                   FS_LIST_MAX_ENTRIES);
                cleanup_free char *child = fs_path_join(dpath, de->d_name);
                json_t *e = fs_entry_new(dirfd(d), de->d_name, child, &st);
                if (!e)
                        continue;
                if (l->n == l->cap) {
                        l->cap = l->cap ? l->cap * 2 : 64;
                        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
                }
                l->v[l->n++] = e;
                if (S_ISDIR(st.st_mode) && level < depth) {
                        int sub = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
                                                 O_NONBLOCK);
                        if (sub < 0)
                                continue; /* unreadable subdirectory: listed, not descended */
                        r = list_walk(sub, child, level + 1, depth, l, err);
                        if (r < 0)
                                return r;
                }
        }
}

static int entry_cmp(const void *a, const void *b)
{
        const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
        return strcmp(json_string_value(json_object_get(x, "path")),
                      json_string_value(json_object_get(y, "path")));
}

/* Like agent_reply_ok(), for bodies that may exceed one frame: those are sent the way main.c
 * does, {"status":200,"bodyFollows":true,"bodyBytes":n}, then D frames, then E.
 * FIXME: use agent_reply_ok() again once lib/json.c's json_to_buf() latches a failed append:
 * jansson ignores the callback's failure while dumping an object key, so a body just over
 * FRAME_MAX_PAYLOAD is currently sent as one frame holding only the tail of the JSON. */
static int reply_large(int fd, json_t *body)
{
        cleanup_free char *text = NULL;
        size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
        int r;

        if (n == 0 || n + 64 < FRAME_MAX_PAYLOAD)
                return agent_reply_ok(fd, body);
        text = xmalloc(n);
        if (json_dumpb(body, text, n, JSON_COMPACT) != n) {
                json_decref(body);
                return agent_reply_err(fd, 500, "cannot serialise response");
        }
        json_decref(body);
        json_t *head = json_pack("{s:i, s:b, s:I}", "status", 200, "bodyFollows", 1, "bodyBytes",
                                 (json_int_t)n);
        r = frame_write_json(fd, head);
        json_decref(head);
        for (size_t o = 0; r >= 0 && o < n; o += FS_REPLY_CHUNK)
                r = frame_write(fd, FRAME_DATA, text + o, MIN((size_t)FS_REPLY_CHUNK, n - o));
        if (r >= 0)
                r = frame_write(fd, FRAME_END, NULL, 0);
        return r;
}

int fs_op_list_dir(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL;
        struct listing l = {};
        int r;

        r = fs_req_parse_path(c, fs_fields_list, &q, &path, err);
        if (r < 0)
                return r;
        /* The listed path itself may be a symlink to a directory; entries are not followed. */
        int dfd = fs_open_dir(path, err);
        if (dfd < 0)
                return dfd;
        r = list_walk(dfd, path, 1, q.depth.set ? (unsigned)q.depth.v : 1, &l, err);
        if (r < 0) {
                listing_done(&l);
                return r;
        }
        if (l.n > 0)
                qsort(l.v, l.n, sizeof(*l.v), entry_cmp);
        json_t *arr = json_array();
        for (size_t i = 0; i < l.n; i++)
                json_array_append_new(arr, l.v[i]);
        l.n = 0;
        listing_done(&l);
        return reply_large(c->fd, json_pack("{s:o}", "entries", arr));
}

/* ---- filesystem.MakeDir ---- */

int fs_op_make_dir(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL, *parent = NULL;
        cleanup_created struct fs_created made = {};
        cleanup_close int pfd = -1;
        struct stat st;
        int r;

        r = fs_req_parse_path(c, fs_fields_path, &q, &path, err);
        if (r < 0)
                return r;
        if (streq(path, "/"))
                return cove_err_set_status(err, 409, EEXIST, "path '/' already exists");
        parent = fs_path_parent(path);
        pfd = fs_tree_mkdir_parents(parent, &made, err);
        if (pfd < 0)
                return pfd;
        r = fs_tree_mkdir_at(pfd, fs_path_base(path));
        if (r == -EEXIST) {
                /* Whatever is there (a magic link is not described either). */
                r = fstatat(pfd, fs_path_base(path), &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
                if (r >= 0 && fs_is_magic_link(pfd, fs_path_base(path), &st) == 1)
                        return fs_err(err, FS_EMAGIC, path);
                return cove_err_set_status(err, 409, EEXIST, "path '%s' already exists", path);
        }
        if (r < 0) {
                fs_tree_unmake(&made, parent);
                return fs_err(err, r, path);
        }
        if (fstatat(pfd, fs_path_base(path), &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fs_err(err, errno, path);
        return fs_reply_entry(c, pfd, fs_path_base(path), path, &st, err);
}

/* ---- filesystem.Remove ---- */

int fs_op_remove(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL;
        int r;

        r = fs_req_parse_path(c, fs_fields_path, &q, &path, err);
        if (r < 0)
                return r;
        if (streq(path, "/"))
                return cove_err_set_status(err, 400, EINVAL, "cannot remove '/'");
        r = fs_tree_remove(path, err);
        if (r < 0)
                return r;
        return agent_reply_ok(c->fd, json_object());
}

/* ---- filesystem.Move ---- */

static int move_rename_err(struct cove_err **err, int e, const char *src, const char *dst)
{
        if (e == ENOTEMPTY || e == EEXIST)
                return cove_err_set_status(err, 409, e, "directory '%s' is not empty", dst);
        if (e == EISDIR || e == ENOTDIR)
                return cove_err_set_status(err, 409, e, "cannot move '%s' over '%s'", src, dst);
        return fs_err(err, e, src);
}

/* Move across filesystems: after checking that the whole source may be deleted, copy it into
 * a temporary name next to the destination, rename that over the destination (so rename(2)'s
 * replace rules still apply), then delete the source. */
static int move_copy(const struct agent_call *c, const struct fs_at *src_at, const struct stat *sst,
                     const char *src, int pfd, const char *dst, bool dst_exists,
                     struct cove_err **err)
{
        cleanup_free char *tmp = NULL;
        const char *dname = fs_path_base(dst);
        int r;

        r = fs_tree_check_removable(src_at, sst, fs_acting_uid(c), src, err);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < FS_TMP_TRIES; i++) {
                struct stat st;
                free(tmp);
                tmp = fs_tmp_name(dname, !dst_exists);
                if (fstatat(pfd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                        break;
        }
        r = fs_tree_copy(src_at->dirfd, src_at->name, src, pfd, tmp, fs_acting_root(c), 0, err);
        if (r >= 0 && renameat(pfd, tmp, pfd, dname) < 0)
                r = move_rename_err(err, errno, src, dst);
        if (r < 0) {
                struct stat st;
                struct fs_at tmp_at = { .dirfd = pfd, .name = tmp };
                if (fstatat(pfd, tmp, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        (void)fs_tree_remove_at(&tmp_at, &st, tmp, NULL);
                return r;
        }
        return fs_tree_remove_at(src_at, sst, src, err);
}

/* The rename itself, once everything the request needs has been checked; pfd is the
 * destination's (possibly just created) parent. */
static int move_into(struct agent_call *c, const struct fs_at *src_at, const struct stat *sst,
                     const char *src, int pfd, const char *dst, struct cove_err **err)
{
        const char *dname = fs_path_base(dst);
        bool same = streq(src, dst), dst_exists = false;
        struct stat dst_st, sdir, ddir;
        uid_t uid = fs_acting_uid(c);
        int r;

        if (!same && fstatat(pfd, dname, &dst_st, AT_SYMLINK_NOFOLLOW) >= 0) {
                bool sd = S_ISDIR(sst->st_mode), dd = S_ISDIR(dst_st.st_mode);
                struct fs_at dst_at = { .dirfd = pfd, .name = (char *)dname };

                dst_exists = true;
                if (fs_is_magic_link(pfd, dname, &dst_st) == 1)
                        return fs_err(err, FS_EMAGIC, dst);
                if (sd && !dd)
                        return cove_err_set_status(err, 409, ENOTDIR,
                                                   "cannot overwrite non-directory '%s' with "
                                                   "directory '%s'",
                                                   dst, src);
                if (!sd && dd)
                        return cove_err_set_status(err, 409, EISDIR,
                                                   "cannot overwrite directory '%s' with "
                                                   "non-directory '%s'",
                                                   dst, src);
                /* Replacing it: the sticky rule applies to it too. */
                r = fs_check_removable(&dst_at, &dst_st, uid, dst, err);
                if (r < 0)
                        return r;
        }
        /* A directory that changes parent gets a new "..": it must be writable itself. */
        if (!same && S_ISDIR(sst->st_mode) && fstat(src_at->dirfd, &sdir) >= 0 &&
            fstat(pfd, &ddir) >= 0 && (sdir.st_dev != ddir.st_dev || sdir.st_ino != ddir.st_ino)) {
                cleanup_close int fd = openat(src_at->dirfd, src_at->name,
                                              O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return fs_err(err, errno, src);
                r = fs_check_writable_dir(fd, src, err);
                if (r < 0)
                        return r;
        }
        if (renameat(src_at->dirfd, src_at->name, pfd, dname) >= 0)
                return 0;
        if (errno != EXDEV)
                return move_rename_err(err, errno, src, dst);
        return move_copy(c, src_at, sst, src, pfd, dst, dst_exists, err);
}

int fs_op_move(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *src = NULL, *dst = NULL, *parent = NULL;
        cleanup_at struct fs_at src_at = { .dirfd = -1 };
        cleanup_created struct fs_created made = {};
        cleanup_close int pfd = -1;
        struct stat sst, st;
        int r;

        r = fs_req_parse(c, fs_fields_move, &q, err);
        if (r < 0)
                return r;
        r = fs_path_resolve(c, q.source, "source", &src, err);
        if (r < 0)
                return r;
        r = fs_path_resolve(c, q.destination, "destination", &dst, err);
        if (r < 0)
                return r;
        r = fs_at_open(src, &src_at, err);
        if (r < 0)
                return r;
        r = fs_at_lstat(&src_at, &sst);
        if (r < 0)
                return fs_err_lookup(err, r, src);
        if (streq(src, "/"))
                return cove_err_set_status(err, 400, EINVAL, "cannot move '/'");
        if (!streq(src, dst) && fs_path_is_under(dst, src))
                return cove_err_set_status(err, 400, EINVAL, "cannot move '%s' into itself", src);

        /* Everything that can be checked before anything changes: a refused move leaves the
         * filesystem as it was (parents it had to create are removed again on failure). */
        parent = fs_path_parent(dst);
        if (!streq(src, dst)) {
                r = fs_check_removable(&src_at, &sst, fs_acting_uid(c), src, err);
                if (r < 0)
                        return r;
                r = fs_tree_check_creatable(parent, err);
                if (r < 0)
                        return r;
        }
        pfd = fs_tree_mkdir_parents(parent, &made, err);
        if (pfd < 0)
                return pfd;
        r = move_into(c, &src_at, &sst, src, pfd, dst, err);
        if (r < 0) {
                fs_tree_unmake(&made, parent);
                return r;
        }
        if (fstatat(pfd, fs_path_base(dst), &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fs_err(err, errno, dst);
        return fs_reply_entry(c, pfd, fs_path_base(dst), dst, &st, err);
}

/* ---- filesystem.Edit ---- */

int fs_op_edit(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL, *data = NULL;
        cleanup_close int fd = -1;
        cleanup_sink struct fs_sink s = FS_SINK_NULL;
        struct stat st;
        int r;

        r = fs_req_parse_path(c, fs_fields_edit, &q, &path, err);
        if (r < 0)
                return r;
        if (!q.old_text || !q.old_text[0])
                return cove_err_set_status(err, 400, EINVAL, "oldText must not be empty");
        fd = fs_open_regular(path, /* edit= */ true, err);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return fs_err(err, errno, path);
        if (st.st_size > FS_EDIT_MAX_SIZE)
                return cove_err_set_status(err, 413, EFBIG, "file '%s' is too large to edit", path);
        size_t size = (size_t)st.st_size;
        data = xmalloc(size + 1);
        ssize_t n = read_full(fd, data, size);
        if (n < 0)
                return fs_err(err, (int)n, path);
        size = (size_t)n;

        size_t ol = strlen(q.old_text);
        const char *hit = memmem(data, size, q.old_text, ol);
        if (!hit)
                return cove_err_set_status(err, 404, ENOENT, "oldText not found in '%s'", path);

        r = fs_sink_open(path, &s, err);
        if (r < 0)
                return r;
        const char *nt = q.new_text ? q.new_text : "";
        size_t off = (size_t)(hit - data);
        r = fs_sink_write(&s, data, off, path, err);
        if (r >= 0)
                r = fs_sink_write(&s, nt, strlen(nt), path, err);
        if (r >= 0)
                r = fs_sink_write(&s, hit + ol, size - off - ol, path, err);
        if (r >= 0)
                r = fs_sink_commit(&s, /* mode= */ -1, fs_acting_root(c), path, err);
        if (r < 0)
                return r;
        return agent_reply_ok(
                c->fd, json_pack("{s:s++}", "message", "replaced 1 occurrence in '", path, "'"));
}
