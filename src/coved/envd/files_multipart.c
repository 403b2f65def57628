/* SPDX-License-Identifier: MIT */
/*
 * files_multipart.c — POST /files with a multipart/form-data body (runtime.md §4.2).
 *
 * The body is parsed as it streams (lib/multipart.h) and every part becomes one files.write
 * call, opened when the part begins and ended when the next part begins or the body ends.
 * Where a part goes: with ?path=, one part is written to `path` and several go below it as
 * `path/<filename>`; since that is known only when a second part shows up (or the body ends),
 * the first part is held back, up to ENVD_MP_HOLD_MAX bytes (beyond that it goes to `path`).
 * Without ?path=, each part is written to its own filename.
 *
 * The parser hands data over in pieces that end at every CR of the body (a possible
 * delimiter), a few hundred bytes each in binary data: they are gathered in t->mp_out and
 * sent as D frames of ENVD_MP_OUT_BLOCK bytes, so that a frame (and the agent's write) is
 * never that small.
 */
#include "coved/envd/envd.h"
#include "lib/macro.h"

static bool path_is_dir(struct envd_req *t, const char *path)
{
        struct agent_reply rep = { 0 };
        json_t *req =
                envd_agent_request(t, "filesystem.Stat", json_pack("{s:s}", "path", path), false);
        int q = agent_client_call(t->cd, t->rec->id, req, ENVD_IO_TIMEOUT_MS, &rep, NULL);
        json_decref(req);
        bool dir =
                q == 0 && rep.status == 200 &&
                streq(json_string_value(json_object_get(json_object_get(rep.body, "entry"), "type"))
                              ?: "",
                      "FILE_TYPE_DIRECTORY");
        agent_reply_release(&rep);
        return dir;
}

static const char *base_name(const char *f)
{
        const char *s = strrchr(f, '/');
        const char *b = strrchr(f, '\\');
        if (b && (!s || b > s))
                s = b;
        return s ? s + 1 : f;
}

/* Sends the gathered part data of the open part. */
static void mp_flush(struct envd_req *t)
{
        cleanup_err struct cove_err *err = NULL;

        if (!t->up_broken && t->agent_fd >= 0 && t->mp_out.len > 0 &&
            agent_client_send_data(t->agent_fd, t->mp_out.ptr, t->mp_out.len, &err) < 0)
                t->up_broken = true;
        buf_reset(&t->mp_out);
}

/* Finishes the open part, if any; its entry joins t->mp_entries. false on failure (deferred). */
static bool mp_finish_part(struct envd_req *t)
{
        cleanup_err struct cove_err *err = NULL;
        struct agent_reply rep = { 0 };

        if (t->agent_fd < 0)
                return true;
        mp_flush(t);
        if (envd_files_finish_write(t, &rep, &err) < 0) {
                envd_defer_error(t, err->status ? (unsigned)err->status : 503, "%s", err->msg);
                return false;
        }
        if (rep.status != 200) {
                envd_defer_error(t, (unsigned)rep.status, "%s",
                                 rep.message ? rep.message : "upload failed");
                agent_reply_release(&rep);
                return false;
        }
        json_t *l = envd_files_entry_list(&rep);
        json_array_extend(t->mp_entries, l);
        json_decref(l);
        agent_reply_release(&rep);
        return true;
}

/* Opens the files.write of the held-back first part at dest and sends what was held. */
static int mp_commit_first(struct envd_req *t, const char *dest)
{
        cleanup_err struct cove_err *err = NULL;

        t->mp_holding = false;
        if (envd_files_open_write(t, dest, -1, &err) < 0) {
                envd_defer_error(t, err->status ? (unsigned)err->status : 503, "%s", err->msg);
                return -EIO;
        }
        if (t->mp_held.len > 0 &&
            agent_client_send_data(t->agent_fd, t->mp_held.ptr, t->mp_held.len, &err) < 0)
                t->up_broken = true;
        buf_release(&t->mp_held);
        return 0;
}

static char *mp_dir_dest(const char *dir, const char *filename)
{
        const char *base = filename ? base_name(filename) : NULL;
        size_t l = strlen(dir);
        if (!base || !*base)
                return NULL;
        return xasprintf("%s%s%s", dir, l > 0 && dir[l - 1] == '/' ? "" : "/", base);
}

static int mp_start_part(struct http_req *r, struct envd_req *t, const char *filename)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *dest = NULL;
        const char *path = http_query(r, "path");
        unsigned n = ++t->mp_parts;

        if (path && *path) {
                if (n == 2 && t->mp_holding) {
                        /* A second part: `path` is a directory after all. */
                        cleanup_free char *first = mp_dir_dest(path, t->mp_first_name);
                        if (!first)
                                return envd_defer_error(t, 400, "multipart part 1 has no filename"),
                                       -EINVAL;
                        if (mp_commit_first(t, first) < 0 || !mp_finish_part(t))
                                return -EIO;
                }
                if (n > 1 && t->mp_at_path)
                        return envd_defer_error(
                                       t, 400,
                                       "several multipart parts need 'path' to be a directory, "
                                       "but the first part was written to '%s'",
                                       path),
                               -EINVAL;
                if (n == 1 && path[strlen(path) - 1] != '/' && !path_is_dir(t, path)) {
                        /* One part goes to `path`, several go below it: hold the first part back
                         * (bounded) until a second part or the end of the body decides. */
                        t->mp_holding = true;
                        t->mp_first_name = filename ? xstrdup(filename) : NULL;
                        buf_init(&t->mp_held, ENVD_MP_HOLD_MAX + 1);
                        return 0;
                }
                dest = mp_dir_dest(path, filename);
                if (!dest)
                        return envd_defer_error(t, 400, "multipart part %u has no filename", n),
                               -EINVAL;
        } else {
                if (!filename || !*filename)
                        return envd_defer_error(t, 400, "multipart part %u has no filename", n),
                               -EINVAL;
                dest = xstrdup(filename);
        }
        if (envd_files_open_write(t, dest, -1, &err) < 0) {
                envd_defer_error(t, err->status ? (unsigned)err->status : 503, "%s", err->msg);
                return -EIO;
        }
        return 0;
}

/* ---- the parser's callbacks (ud: the http_req) ---- */

static int mp_part_begin(void *ud, const struct multipart_part *part)
{
        struct http_req *r = ud;
        struct envd_req *t = r->ctx;

        if (t->err_status)
                return -ECANCELED;
        if (!mp_finish_part(t) || mp_start_part(r, t, part->filename) < 0)
                return -ECANCELED;
        return 0;
}

static int mp_part_data(void *ud, const char *data, size_t size)
{
        struct http_req *r = ud;
        struct envd_req *t = r->ctx;
        cleanup_err struct cove_err *err = NULL;

        if (t->err_status)
                return -ECANCELED;
        if (t->mp_holding) {
                if (t->mp_held.len + size <= ENVD_MP_HOLD_MAX &&
                    buf_add(&t->mp_held, data, size) == 0)
                        return 0;
                /* Too big to wait for: a lone first part goes to `path`. */
                t->mp_at_path = true;
                if (mp_commit_first(t, http_query(r, "path")) < 0)
                        return -ECANCELED;
        }
        if (t->up_broken || t->agent_fd < 0)
                return 0;
        if (t->mp_out.len + size > ENVD_MP_OUT_BLOCK)
                mp_flush(t);
        if (size >= ENVD_MP_OUT_BLOCK) {
                if (agent_client_send_data(t->agent_fd, data, size, &err) < 0)
                        t->up_broken = true;
                return 0;
        }
        if (buf_add(&t->mp_out, data, size) < 0)
                abort(); /* size < the buffer's max, and the buffer was flushed: cannot fail */
        return 0;
}

static const struct multipart_callbacks mp_callbacks = {
        .part_begin = mp_part_begin,
        .part_data = mp_part_data,
};

static int mp_body(struct http_req *r, const char *p, size_t n)
{
        struct envd_req *t = r->ctx;

        /* Past ENVD_RAW_UPLOAD_MAX the server answers 413 before calling us
         * (http_body_set_limit() in envd_files_begin()). */
        if (t->err_status)
                return 0;
        if (multipart_feed(t->mp, p, n, &mp_callbacks, r) < 0 && !t->err_status)
                envd_defer_error(t, 400, "malformed multipart body");
        return 0;
}

/* ---- entry points ---- */

int envd_multipart_begin(struct http_req *r, struct envd_req *t)
{
        char boundary[MULTIPART_BOUNDARY_MAX + 1];

        if (multipart_boundary(http_header(r, "Content-Type"), boundary) < 0)
                return http_reply_error(r, 400,
                                        "malformed multipart Content-Type (boundary missing?)");
        t->mp = xzalloc(sizeof(*t->mp));
        if (multipart_init(t->mp, boundary) < 0)
                return http_reply_error(r, 400,
                                        "malformed multipart Content-Type (boundary missing?)");
        t->mp_entries = json_array();
        buf_init(&t->mp_out, ENVD_MP_OUT_BLOCK + 1);
        r->body_cb = mp_body;
        return 0;
}

int envd_multipart_handler(struct http_req *r, struct envd_req *t)
{
        if (!t->err_status && multipart_finish(t->mp) < 0)
                envd_defer_error(t, 400, "malformed multipart body (no closing boundary)");
        if (t->err_status)
                return envd_reply_deferred(r, t); /* an open part is dropped: no E frame */
        if (t->mp_holding) {
                t->mp_at_path = true;
                if (mp_commit_first(t, http_query(r, "path")) < 0)
                        return envd_reply_deferred(r, t);
        }
        if (!mp_finish_part(t))
                return envd_reply_deferred(r, t);
        if (t->mp_parts == 0)
                return http_reply_error(r, 400, "multipart body has no parts");
        return http_reply_json(r, 200, json_incref(t->mp_entries));
}

void envd_multipart_free(struct envd_req *t)
{
        if (t->mp) {
                multipart_release(t->mp);
                free(t->mp);
                t->mp = NULL;
        }
        json_decref(t->mp_entries);
        t->mp_entries = NULL;
        buf_release(&t->mp_held);
        buf_release(&t->mp_out);
        free(t->mp_first_name);
        t->mp_first_name = NULL;
}
