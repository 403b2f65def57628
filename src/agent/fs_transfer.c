/* SPDX-License-Identifier: MIT */
/*
 * fs_transfer.c — the two streaming ops behind GET and POST /files (runtime.md §4.1, §4.2;
 * docs/design/agent-protocol.md): files.read answers a head frame, takes coved's range and
 * streams D frames; files.write receives D frames into a sink (fs_sink.c) until E.
 */
#include "agent/fs.h"
#include "lib/fdutil.h"
#include "lib/frame.h"
#include "lib/http_status.h"
#include "lib/macro.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* ---- files.read ---- */

/* One D frame of n bytes of fd from off: the header, then the bytes by sendfile (no copy
 * through the agent), or by pread + write where the file cannot be spliced (*chunk, allocated
 * on first use). A file that shrank under us cannot fill the frame it announced: -EIO. */
static int send_range(int sock, int fd, int64_t off, size_t n, char **chunk)
{
        unsigned char h[FRAME_HEADER_SIZE];
        off_t pos = (off_t)off;
        bool copy = false;

        frame_header_encode(h, FRAME_DATA, (uint32_t)n);
        int w = write_full(sock, h, sizeof(h)); /* SIGPIPE is ignored (main.c) */
        if (w < 0)
                return w;
        while (n > 0) {
                ssize_t k;
                if (!copy) {
                        k = sendfile(sock, fd, &pos, n);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && (errno == EINVAL || errno == ENOSYS)) {
                                copy = true;
                                continue;
                        }
                        if (k < 0)
                                return -errno;
                } else {
                        if (!*chunk)
                                *chunk = xmalloc(FS_READ_CHUNK);
                        k = TEMP_FAILURE_RETRY(
                                pread(fd, *chunk, MIN(n, (size_t)FS_READ_CHUNK), pos));
                        if (k < 0)
                                return -errno;
                        if (k > 0) {
                                int q = write_full(sock, *chunk, (size_t)k);
                                if (q < 0)
                                        return q;
                                pos += k;
                        }
                }
                if (k == 0)
                        return -EIO; /* the file shrank */
                n -= (size_t)k;
        }
        return 0;
}

int fs_op_read(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL, *chunk = NULL;
        cleanup_close int fd = -1;
        cleanup_buf struct buf in = {};
        json_t *j = NULL;
        struct stat st;
        char kind;
        int r;

        r = fs_req_parse_path(c, fs_fields_path, &q, &path, err);
        if (r < 0)
                return r;
        fd = fs_open_regular(path, /* edit= */ false, err);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return fs_err(err, errno, path);

        j = json_pack("{s:i, s:I, s:I, s:s, s:s}", "status", 200, "size", (json_int_t)st.st_size,
                      "mtime", (json_int_t)st.st_mtim.tv_sec, "path", path, "name",
                      fs_path_base(path));
        r = frame_write_json(c->fd, j);
        json_decref(j);
        if (r < 0)
                return r;

        /* Phase two: coved names the range. */
        buf_init(&in, FRAME_MAX_PAYLOAD + 1);
        r = frame_read(c->fd, &kind, &in);
        if (r <= 0)
                return r; /* EOF: coved is no longer interested */
        if (kind != FRAME_JSON)
                return -EPROTO;
        r = json_parse(buf_str(&in), in.len, /* empty_ok= */ true, &j, NULL);
        if (r < 0)
                return -EPROTO;
        int64_t size = st.st_size, off = 0, len = -1;
        if (!json_get_integer(json_object_get(j, "offset"), &off) || off < 0)
                off = 0;
        if (!json_get_integer(json_object_get(j, "length"), &len) || len < 0)
                len = -1;
        json_decref(j);
        if (off > size)
                off = size;
        if (len < 0 || len > size - off)
                len = size - off;

        while (len > 0) {
                size_t k = (size_t)MIN(len, (int64_t)FS_READ_FRAME);
                r = send_range(c->fd, fd, off, k, &chunk);
                if (r < 0)
                        return r; /* mid-stream: no E frame, coved sees a truncation */
                off += (int64_t)k;
                len -= (int64_t)k;
        }
        return frame_write(c->fd, FRAME_END, NULL, 0);
}

/* ---- files.open ---- */

/* Like files.read's head frame, with the opened file itself passed along (SCM_RIGHTS) so
 * that coved sends it to the client with sendfile (docs/design/transfers.md); the call ends
 * there. The same checks as files.read: a regular file the acting user may read. */
int fs_op_open(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL;
        cleanup_close int fd = -1;
        cleanup_buf struct buf b = {};
        struct stat st;
        int r;

        r = fs_req_parse_path(c, fs_fields_path, &q, &path, err);
        if (r < 0)
                return r;
        fd = fs_open_regular(path, /* edit= */ false, err);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return fs_err(err, errno, path);
        json_t *j = json_pack("{s:i, s:I, s:I, s:s, s:s}", "status", 200, "size",
                              (json_int_t)st.st_size, "mtime", (json_int_t)st.st_mtim.tv_sec,
                              "path", path, "name", fs_path_base(path));
        buf_init(&b, FRAME_MAX_PAYLOAD);
        r = json_to_buf(j, &b);
        json_decref(j);
        if (r < 0)
                return r;
        return frame_write_fd(c->fd, FRAME_JSON, buf_str(&b), b.len, fd);
}

/* ---- files.write ---- */

/* files.write's payload path: each D frame's bytes go from the socket to the file by splice
 * through a pipe (the socket's pages are moved into the pipe, then copied once into the page
 * cache), or, where the kernel cannot splice (EINVAL: the file's filesystem, or the socket),
 * read into a buffer of FRAME_MAX_PAYLOAD bytes and written from there. */
struct write_path {
        int pipe[2]; /* owned, -1: not tried yet or given up */
        size_t pipe_size;
        bool copy;   /* splice refused: read + write */
        char *chunk; /* owned: the copy buffer, allocated on first use */
};

static void write_path_release(struct write_path *w)
{
        for (int i = 0; i < 2; i++)
                if (w->pipe[i] >= 0)
                        (void)close(w->pipe[i]);
        free(w->chunk);
}

/* Moves what the pipe holds (*n bytes) into the sink's file. -EINVAL without err: the file
 * takes no splice, *n bytes are still in the pipe. */
static int pipe_drain(struct write_path *w, struct fs_sink *s, size_t *n, const char *path,
                      struct cove_err **err)
{
        while (*n > 0) {
                ssize_t k = splice(w->pipe[0], NULL, s->fd, NULL, *n, SPLICE_F_MOVE);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EINVAL)
                        return -EINVAL;
                if (k <= 0)
                        return fs_err(err, k < 0 ? errno : EIO, path);
                *n -= (size_t)k;
        }
        return 0;
}

/* Reads and drops n bytes of sock: the rest of a frame whose file write failed, so that
 * write_drain() starts at a frame boundary. */
static void skip_payload(struct write_path *w, int sock, size_t n)
{
        if (!w->chunk)
                w->chunk = xmalloc(FRAME_MAX_PAYLOAD);
        while (n > 0) {
                ssize_t got = read_full(sock, w->chunk, MIN(n, (size_t)FRAME_MAX_PAYLOAD));
                if (got <= 0)
                        return;
                n -= (size_t)got;
        }
}

/* n payload bytes of the frame from sock into the sink. Without err set: the connection
 * failed (-EPROTO when it ended inside the frame). With err set (writing the file failed),
 * the rest of the frame has been read and dropped. */
static int write_payload(struct write_path *w, int sock, struct fs_sink *s, size_t n,
                         const char *path, struct cove_err **err)
{
        bool copy = w->copy || n < FS_WRITE_SPLICE_MIN; /* small: a pipe is not worth it */
        if (!copy && w->pipe[0] < 0) {
                if (pipe2(w->pipe, O_CLOEXEC) < 0) {
                        w->pipe[0] = w->pipe[1] = -1;
                        w->copy = copy = true;
                } else {
                        /* a bigger pipe where the user's pipe budget allows: fewer splices */
                        int sz = fcntl(w->pipe[1], F_SETPIPE_SZ, FS_WRITE_PIPE);
                        if (sz < 0)
                                sz = fcntl(w->pipe[1], F_GETPIPE_SZ);
                        w->pipe_size = sz > 0 ? (size_t)sz : 64 * 1024;
                }
        }
        while (n > 0 && !copy) {
                ssize_t k =
                        splice(sock, NULL, w->pipe[1], NULL, MIN(n, w->pipe_size), SPLICE_F_MOVE);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EINVAL) {
                        w->copy = copy = true; /* nothing was moved: copy from here on */
                        break;
                }
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPROTO;
                size_t held = (size_t)k;
                int r = pipe_drain(w, s, &held, path, err);
                if (r < 0 && *err)
                        return skip_payload(w, sock, n - (size_t)k), r;
                if (r < 0 && r != -EINVAL)
                        return r;
                if (r < 0) {
                        /* The file takes no splice: what the pipe holds goes by copy. */
                        w->copy = copy = true;
                        if (!w->chunk)
                                w->chunk = xmalloc(FRAME_MAX_PAYLOAD);
                        ssize_t got = read_full(w->pipe[0], w->chunk, held);
                        if (got < 0 || (size_t)got != held)
                                return got < 0 ? (int)got : -EIO;
                        r = fs_sink_write(s, w->chunk, held, path, err);
                        if (r < 0)
                                return skip_payload(w, sock, n - (size_t)k), r;
                }
                n -= (size_t)k;
        }
        while (n > 0) {
                if (!w->chunk)
                        w->chunk = xmalloc(FRAME_MAX_PAYLOAD);
                size_t want = MIN(n, (size_t)FRAME_MAX_PAYLOAD);
                ssize_t got = read_full(sock, w->chunk, want);
                if (got < 0)
                        return (int)got;
                if ((size_t)got < want)
                        return -EPROTO;
                int r = fs_sink_write(s, w->chunk, want, path, err);
                if (r < 0)
                        return skip_payload(w, sock, n - want), r;
                n -= want;
        }
        return 0;
}

/* Receives D frames into the sink until E. -errno with err set: reply it (then drain);
 * without err: the connection failed (EOF before E is -ECONNRESET). */
static int write_receive(struct agent_call *c, struct fs_sink *s, const char *path,
                         uint64_t *ret_bytes, struct cove_err **err)
{
        struct write_path w = { .pipe = { -1, -1 } };
        uint64_t bytes = 0;
        int r = 0;

        for (;;) {
                unsigned char h[FRAME_HEADER_SIZE];
                ssize_t got = read_full(c->fd, h, sizeof(h));
                if (got == 0) {
                        r = -ECONNRESET;
                        break;
                }
                if (got < 0 || got < (ssize_t)sizeof(h)) {
                        r = got < 0 ? (int)got : -EPROTO;
                        break;
                }
                if (h[0] == FRAME_END)
                        break;
                size_t n = frame_header_length(h);
                if (h[0] != FRAME_DATA || n > FRAME_MAX_PAYLOAD) {
                        r = -EPROTO;
                        break;
                }
                r = write_payload(&w, c->fd, s, n, path, err);
                if (r < 0)
                        break;
                bytes += n;
        }
        write_path_release(&w);
        if (r < 0)
                return r;
        *ret_bytes = bytes;
        return 0;
}

/* After a failure frame, read and discard the rest of the upload so that a coved that sends
 * everything before reading still finds the answer. */
static void write_drain(int fd)
{
        cleanup_buf struct buf in = {};

        buf_init(&in, FRAME_MAX_PAYLOAD + 1);
        for (;;) {
                char kind;
                if (frame_read(fd, &kind, &in) <= 0 || kind == FRAME_END)
                        return;
        }
}

/* e2b.md §4.4: the upload's metadata replaces the file's whole user.e2b.* set. Set on the
 * sink's fd before commit, so that the rename carries them. */
static int write_metadata(struct fs_sink *s, json_t *md, const char *path, struct cove_err **err)
{
        char names[FS_XATTR_LIST_MAX];
        ssize_t n = flistxattr(s->fd, names, sizeof(names));
        for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1)
                if (strncmp(names + off, FS_XATTR_PREFIX, strlen(FS_XATTR_PREFIX)) == 0)
                        (void)fremovexattr(s->fd, names + off);
        const char *k;
        json_t *v;
        json_object_foreach (md, k, v) {
                const char *val = json_string_value(v);
                if (!val)
                        continue;
                cleanup_free char *name = xasprintf("%s%s", FS_XATTR_PREFIX, k);
                if (fsetxattr(s->fd, name, val, strlen(val), 0) < 0)
                        return cove_err_set_status(err,
                                                   errno == ENOSPC || errno == E2BIG ? 400 : 500,
                                                   errno, "set metadata '%s' on '%s': %m", k, path);
        }
        return 0;
}

int fs_op_write(struct agent_call *c, struct cove_err **err)
{
        cleanup_req struct fs_req q = {};
        cleanup_free char *path = NULL, *parent = NULL;
        cleanup_sink struct fs_sink s = FS_SINK_NULL;
        cleanup_created struct fs_created made = {};
        uint64_t bytes = 0;
        int r;

        r = fs_req_parse(c, fs_fields_write, &q, err);
        if (r >= 0)
                r = fs_path_resolve(c, q.path, "path", &path, err);
        if (r >= 0 && streq(path, "/"))
                r = fs_err(err, EISDIR, path);
        if (r >= 0) {
                parent = fs_path_parent(path);
                r = fs_tree_mkdir_parents(parent, &made, err);
                if (r >= 0)
                        (void)close(r);
        }
        if (r >= 0)
                r = fs_sink_open(path, &s, err);
        if (r >= 0)
                r = write_receive(c, &s, path, &bytes, err);
        json_t *md = json_object_get(c->body, "metadata");
        if (r >= 0 && json_is_object(md))
                r = write_metadata(&s, md, path, err);
        if (r >= 0)
                r = fs_sink_commit(&s, q.mode.set ? (int)q.mode.v : -1, fs_acting_root(c), path,
                                   err);
        if (r < 0) {
                if (!*err)
                        return r;
                fs_sink_release(&s);
                if (parent)
                        fs_tree_unmake(&made, parent); /* a failed write leaves no trace */
                /* The failure frame goes out at once; then the rest of the upload is read. */
                int status = (*err)->status ? (*err)->status
                                            : (int)http_status_from_errno((*err)->errnum);
                r = agent_reply_err(c->fd, status, "%s", (*err)->msg);
                cove_err_free(err);
                if (r < 0)
                        return r;
                write_drain(c->fd);
                return 0;
        }
        json_t *j =
                json_pack("{s:i, s:{s:s, s:s, s:s}, s:I}", "status", 200, "body", "path", path,
                          "name", fs_path_base(path), "type", "file", "bytes", (json_int_t)bytes);
        if (json_is_object(md) && json_object_size(md) > 0)
                json_object_set(json_object_get(j, "body"), "metadata", md);
        r = frame_write_json(c->fd, j);
        json_decref(j);
        return r;
}
