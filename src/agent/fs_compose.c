/* SPDX-License-Identifier: MIT */
/*
 * fs_compose.c — files.compose (runtime.md §4.5): concatenate the sources into the
 * destination, then delete the sources. (POST /files/batch needs no op of its own: coved
 * validates the whole batch, then writes each entry with files.write.)
 *
 * It never changes anything before every source has been opened as a regular file and the
 * destination checked; the concatenation is streamed (copy_file_range) into a temporary file
 * renamed over the destination, and only then are the sources deleted.
 */
#include "agent/fs.h"
#include "lib/macro.h"

#include <fcntl.h>
#include <sys/stat.h>

#define COMPOSE_MAX_SOURCES 1000

/* ---- files.compose ---- */

static void paths_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Everything that can be checked without changing anything: every source opens as a regular
 * file (following symlinks, never magic links) and may be deleted by the acting user; the
 * destination is not a directory and its missing parents may be created. */
static int compose_check(const struct agent_call *c, char **src, size_t n, const char *dst,
                         struct cove_err **err)
{
        cleanup_free char *parent = fs_path_parent(dst);
        int r;

        for (size_t i = 0; i < n; i++) {
                int fd = fs_open_regular(src[i], /* edit= */ false, err);
                if (fd < 0)
                        return fd;
                (void)close(fd);
        }
        if (streq(dst, "/"))
                return fs_err(err, EISDIR, dst);
        int fd = fs_openat(AT_FDCWD, dst, O_PATH, 0);
        if (fd >= 0) {
                struct stat st;
                r = fstat(fd, &st) < 0 ? -errno : 0;
                (void)close(fd);
                if (r < 0)
                        return fs_err(err, r, dst);
                if (S_ISDIR(st.st_mode))
                        return fs_err(err, EISDIR, dst);
        } else if (fd != -ENOENT && fd != -ENOTDIR) {
                return fs_err(err, fd, dst);
        }
        for (size_t i = 0; i < n; i++) {
                cleanup_at struct fs_at at = { .dirfd = -1 };
                struct stat st;
                if (streq(src[i], dst))
                        continue;
                r = fs_at_open(src[i], &at, err);
                if (r < 0)
                        return r;
                r = fs_at_lstat(&at, &st);
                if (r < 0)
                        return fs_err_lookup(err, r, src[i]);
                r = fs_check_removable(&at, &st, fs_acting_uid(c), src[i], err);
                if (r < 0)
                        return r;
        }
        return fs_tree_check_creatable(parent, err);
}

static int compose_write(struct agent_call *c, char **src, size_t n, const char *dst,
                         struct cove_err **err)
{
        cleanup_sink struct fs_sink s = FS_SINK_NULL;
        cleanup_created struct fs_created made = {};
        cleanup_free char *parent = fs_path_parent(dst);
        int r;

        r = fs_tree_mkdir_parents(parent, &made, err);
        if (r < 0)
                return r;
        (void)close(r);
        r = fs_sink_open(dst, &s, err);
        for (size_t i = 0; i < n && r >= 0; i++) {
                cleanup_close int in = fs_open_regular(src[i], /* edit= */ false, err);
                if (in < 0) {
                        r = in;
                        break;
                }
                r = fs_copy_fd(in, s.fd);
                if (r < 0)
                        r = fs_err(err, r, r == -ENOSPC || r == -EDQUOT ? dst : src[i]);
        }
        if (r >= 0)
                r = fs_sink_commit(&s, /* mode= */ -1, fs_acting_root(c), dst, err);
        if (r < 0) {
                fs_sink_release(&s);
                fs_tree_unmake(&made, parent);
        }
        return r;
}

/* Deletes a source once the destination holds the result (a symlink itself, not its target). */
static int compose_unlink(const char *path, struct cove_err **err)
{
        cleanup_at struct fs_at at = { .dirfd = -1 };
        int r = fs_at_open(path, &at, err);

        if (r < 0)
                return r;
        if (unlinkat(at.dirfd, at.name, 0) < 0 && errno != ENOENT) /* ENOENT: listed twice */
                return fs_err_lookup(err, errno, path);
        return 0;
}

int fs_op_compose(struct agent_call *c, struct cove_err **err)
{
        json_t *jsrc = json_object_get(c->body, "source_paths");
        json_t *jdst = json_object_get(c->body, "destination");
        cleanup_free char *dst = NULL;
        char **src = NULL;
        size_t n = 0;
        int r;

        if (!jsrc || json_is_null(jsrc))
                return cove_err_set_status(err, 400, EINVAL, "source_paths is required");
        if (!json_is_array(jsrc))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'source_paths' must be an array of strings");
        n = json_array_size(jsrc);
        if (n < 1 || n > COMPOSE_MAX_SOURCES)
                return cove_err_set_status(err, 400, EINVAL,
                                           "source_paths must have 1 to %d entries, not %zu",
                                           COMPOSE_MAX_SOURCES, n);
        if (jdst && !json_is_null(jdst) && !json_is_string(jdst))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'destination' must be a string");
        r = fs_path_resolve_json(c, jdst, "destination", &dst, err);
        if (r < 0)
                return r;

        src = xmalloc_array(n, sizeof(*src));
        if (!src)
                return cove_err_set_status(err, 500, ENOMEM, "too many source paths");
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_array_get(jsrc, i);
                cleanup_free char *what = xasprintf("source_paths[%zu]", i);
                src[i] = NULL;
                r = fs_path_resolve_json(c, v, what, &src[i], err);
                if (r < 0) {
                        paths_free(src, i + 1);
                        return r;
                }
        }

        r = compose_check(c, src, n, dst, err);
        if (r >= 0)
                r = compose_write(c, src, n, dst, err);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (!streq(src[i], dst)) /* the destination now holds the result */
                        r = compose_unlink(src[i], err);
        paths_free(src, n);
        if (r < 0)
                return r;
        return agent_reply_ok(c->fd, json_pack("{s:s, s:s, s:s}", "path", dst, "name",
                                               fs_path_base(dst), "type", "file"));
}
