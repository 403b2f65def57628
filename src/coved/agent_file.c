/* SPDX-License-Identifier: MIT */
/* agent_file.c — downloads from a file the agent opened and passed (agent_file.h). */
#include "coved/agent_file.h"
#include "coved/agent_stream.h"
#include "lib/fdutil.h"
#include "lib/frame.h"
#include "lib/json.h"
#include "lib/macro.h"

void agent_file_release(struct agent_file *f)
{
        json_decref(f->head);
        f->head = NULL;
        if (f->fd >= 0)
                (void)close(f->fd); /* checked: a regular file on a local disk */
        f->fd = -1;
        if (f->conn >= 0)
                (void)close(f->conn);
        f->conn = -1;
}

static int start_call(struct coved *cd, const char *id, int timeout_ms, const json_t *req,
                      struct cove_err **err)
{
        cleanup_close int conn = agent_client_connect(cd, id, timeout_ms, err);
        if (conn < 0)
                return conn;
        int q = agent_client_send_json(conn, req, err);
        if (q < 0)
                return q;
        return TAKE_FD(conn);
}

/* files.open's head and its descriptor. 0, or -errno with err. */
static int open_call(struct coved *cd, const char *id, int timeout_ms, const json_t *req,
                     struct agent_file *f, struct cove_err **err)
{
        cleanup_buf struct buf b = { 0 };
        cleanup_close int conn = start_call(cd, id, timeout_ms, req, err);
        int passed = -1;
        char kind;

        if (conn < 0)
                return conn;
        buf_init(&b, FRAME_MAX_PAYLOAD + 1);
        int r = frame_read_fd(conn, &kind, &b, &passed);
        if (r <= 0 || kind != FRAME_JSON) {
                fd_close_foreign(passed);
                return cove_err_set_status(err, 503, r < 0 ? -r : ECONNRESET,
                                           "sandbox agent unreachable");
        }
        f->head = json_loadb(buf_str(&b), b.len, 0, NULL);
        if (!json_is_object(f->head)) {
                fd_close_foreign(passed);
                return cove_err_set_status(err, 503, EPROTO, "sandbox agent unreachable");
        }
        int64_t size;
        if (passed >= 0 && fd_local_file_readable(passed, &size)) {
                json_object_set_new(f->head, "size", json_integer(size));
                f->fd = passed;
        } else {
                fd_close_foreign(passed);
        }
        return 0;
}

int agent_file_begin(struct coved *cd, const char *id, int timeout_ms, const json_t *open_req,
                     const json_t *read_req, struct agent_file *ret, struct cove_err **err)
{
        cleanup_agent_file struct agent_file f = AGENT_FILE_NULL;
        int64_t st = 0;

        int q = open_call(cd, id, timeout_ms, open_req, &f, err);
        if (q < 0)
                return q;
        (void)json_get_integer(json_object_get(f.head, "status"), &st);
        if (f.fd >= 0 || (st != 200 && st != 501)) {
                *ret = f;
                f = AGENT_FILE_NULL;
                return 0;
        }
        /* No usable file (an agent without files.open: 501): files.read streams it. */
        json_decref(f.head);
        f.head = NULL;
        f.conn = start_call(cd, id, timeout_ms, read_req, err);
        if (f.conn < 0)
                return f.conn;
        q = agent_client_read_json(f.conn, &f.head, err);
        if (q < 0)
                return q;
        *ret = f;
        f = AGENT_FILE_NULL;
        return 0;
}

struct MHD_Response *agent_file_response(struct http_req *r, struct agent_file *f, uint64_t off,
                                         uint64_t n, struct cove_err **err)
{
        if (f->fd >= 0) {
                struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(n, f->fd, off);
                if (resp)
                        f->fd = -1; /* the response closes it */
                return resp;
        }
        json_t *rq = json_pack("{s:I, s:I}", "offset", (json_int_t)off, "length", (json_int_t)n);
        int q = agent_client_send_json(f->conn, rq, err);
        json_decref(rq);
        if (q < 0)
                return NULL;
        int conn = f->conn;
        f->conn = -1;
        return agent_stream_response(r, conn, n); /* conn is the response's now */
}
