/* SPDX-License-Identifier: MIT */
/*
 * files.c — /v1/sandboxes/{id}/files?path= (v1-api.md §10.2–§10.4): upload (PUT, POST),
 * download (GET), remove (DELETE), as the acting user root.
 *
 * begin() checks visibility (403/404), the path rules (400) and wakes the sandbox (§6); the
 * call is activity until the request is freed. Uploads are streamed: every (gzip-decoded)
 * body chunk becomes D frames of a files.write call opened in begin(); more than 100 MB is a
 * 400 and the partial file is dropped (the agent discards a write that ends without E).
 * Downloads send the file the agent opened (files.open, sendfile), else stream files.read
 * (agent_file.h).
 */
#include "coved/agent_client.h"
#include "coved/agent_file.h"
#include "coved/api/v1/v1.h"
#include "coved/coved.h"
#include "lib/json.h"
#include "lib/macro.h"

#include <stdarg.h>

#define V1_UPLOAD_MAX ((uint64_t)104857600) /* 100 MB, after gzip decoding */
#define V1_FILE_IO_MS (60 * 1000)           /* one agent read or write */
#define V1_FILE_MODE  0644

struct v1_files {
        struct coved *cd;
        char *id;      /* owned */
        char *path;    /* owned */
        bool activity; /* a call in flight on the sandbox: ended when freed */
        int agent_fd;  /* owned: the upload's files.write call, -1 */
        uint64_t bytes;
        bool broken;         /* sending failed: the agent's reply (read at the end) says why */
        unsigned err_status; /* deferred failure (a reply cannot be queued mid-body) */
        char *err_msg;       /* owned */
};

static void v1_files_free(void *p)
{
        struct v1_files *f = p;
        if (!f)
                return;
        if (f->agent_fd >= 0)
                (void)close(f->agent_fd); /* before E: the agent drops the partial upload */
        if (f->activity)
                manager_activity_end(f->cd, f->id);
        free(f->id);
        free(f->path);
        free(f->err_msg);
        free(f);
}

static void __attribute__((format(printf, 3, 4)))
defer_error(struct v1_files *f, unsigned status, const char *fmt, ...)
{
        char msg[BUF_MAX_ERR_MSG];
        va_list ap;
        if (f->err_status)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        f->err_status = status;
        f->err_msg = xstrdup(msg);
}

/* §10.2: present, absolute, not the root, no ".." anywhere. */
static int check_path(struct http_req *r, const char *path)
{
        if (!path || !*path)
                return http_reply_error(r, 400, "query 'path' is required"), -EINVAL;
        if (path[0] != '/')
                return http_reply_error(r, 400, "path '%s' must be absolute", path), -EINVAL;
        if (path[strspn(path, "/")] == '\0')
                return http_reply_error(r, 400, "path '%s' names the root directory", path),
                       -EINVAL;
        if (strstr(path, ".."))
                return http_reply_error(r, 400, "path '%s' must not contain '..'", path), -EINVAL;
        return 0;
}

static json_t *agent_request(const char *op, json_t *body)
{
        return json_pack("{s:s, s:s, s:o}", "op", op, "user", "root", "body", body);
}

static int upload_body(struct http_req *r, const char *p, size_t n)
{
        struct v1_files *f = r->ctx;
        cleanup_err struct cove_err *err = NULL;

        if (f->err_status)
                return 0;
        f->bytes += n;
        if (f->bytes > V1_UPLOAD_MAX) {
                defer_error(f, 400, "file larger than 100 MB (104857600 bytes)");
                if (f->agent_fd >= 0) { /* EOF before E: the agent discards the upload */
                        (void)close(f->agent_fd);
                        f->agent_fd = -1;
                }
                return 0;
        }
        if (f->broken || f->agent_fd < 0)
                return 0;
        if (agent_client_send_data(f->agent_fd, p, n, &err) < 0)
                f->broken = true;
        return 0;
}

static int open_upload(struct http_req *r, struct v1_files *f)
{
        cleanup_err struct cove_err *err = NULL;
        uint64_t len;

        if (http_body_length(r, &len) && len > V1_UPLOAD_MAX)
                return http_reply_error(r, 400, "file larger than 100 MB (104857600 bytes)");
        int fd = agent_client_connect(f->cd, f->id, V1_FILE_IO_MS, &err);
        if (fd < 0)
                return http_reply_err(r, err);
        json_t *req = agent_request("files.write",
                                    json_pack("{s:s, s:i}", "path", f->path, "mode", V1_FILE_MODE));
        int q = agent_client_send_json(fd, req, &err);
        json_decref(req);
        if (q < 0) {
                (void)close(fd);
                return http_reply_err(r, err);
        }
        f->agent_fd = fd;
        r->body_cb = upload_body; /* a gzip body, decoded */
        agent_client_set_bulk(fd);
        http_body_set_sink(r, fd, V1_FILE_IO_MS);
        /* The server stops a longer body as it arrives (§10.2: 400, not 413). */
        http_body_set_limit_reply(r, V1_UPLOAD_MAX, 400,
                                  "file larger than 100 MB (104857600 bytes)");
        return 0;
}

int v1_files_begin(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = NULL;
        struct v1_files *f = xzalloc(sizeof(*f));
        const char *path = http_query(r, "path");

        f->cd = r->cd;
        f->agent_fd = -1;
        f->id = xstrdup(r->params[0]);
        r->ctx = f;
        r->ctx_free = v1_files_free;
        if (manager_v1_get(r->cd, r->auth.team_id, f->id, &sb, &err) < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(sb);
        sb = NULL;
        if (check_path(r, path) < 0)
                return 0;
        f->path = xstrdup(path);
        if (manager_v1_target(r->cd, r->auth.team_id, f->id, &sb, &err) < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(sb);
        f->activity = true;
        if (streq(r->method, "PUT") || streq(r->method, "POST"))
                return open_upload(r, f);
        return 0;
}

static int reply_agent_failure(struct http_req *r, int status, const char *message)
{
        unsigned st = status >= 400 && status <= 599 ? (unsigned)status : 500;
        return http_reply_error(r, st, "%s", message ? message : "file operation failed");
}

int v1_files_upload(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_err struct cove_err *send_err = NULL;
        struct v1_files *f = r->ctx;
        struct agent_reply rep = { 0 };

        if (f->err_status)
                return http_reply_error(r, f->err_status, "%s", f->err_msg);
        if (f->agent_fd < 0)
                return http_reply_error(r, 503, "sandbox agent unreachable");
        if (http_body_sink_failed(r))
                f->broken = true;
        if (!f->broken && agent_client_send_end(f->agent_fd, &send_err) < 0)
                f->broken = true;
        int q = agent_client_read_reply(f->agent_fd, &rep, &err);
        (void)close(f->agent_fd);
        f->agent_fd = -1;
        if (q < 0)
                return http_reply_err(r, err);
        q = rep.status == 200 ? http_reply_empty(r, 204)
                              : reply_agent_failure(r, rep.status, rep.message);
        agent_reply_release(&rep);
        return q;
}

int v1_files_download(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_agent_file struct agent_file af = AGENT_FILE_NULL;
        struct v1_files *f = r->ctx;
        int64_t st = 0, size = 0;

        json_t *open_req = agent_request("files.open", json_pack("{s:s}", "path", f->path));
        json_t *read_req = agent_request("files.read", json_pack("{s:s}", "path", f->path));
        int q = agent_file_begin(f->cd, f->id, V1_FILE_IO_MS, open_req, read_req, &af, &err);
        json_decref(open_req);
        json_decref(read_req);
        if (q < 0)
                return http_reply_err(r, err);
        json_t *first = af.head;
        if (!json_get_integer(json_object_get(first, "status"), &st) || st != 200) {
                /* Missing, a directory or a special file: not a file (§10.3). */
                if (st == 400 || st == 404)
                        return http_reply_error(r, 404, "file '%s' not found", f->path);
                return reply_agent_failure(r, (int)st,
                                           json_string_value(json_object_get(first, "message")));
        }
        if (!json_get_integer(json_object_get(first, "size"), &size) || size < 0)
                return http_reply_error(r, 503, "sandbox agent unreachable");
        struct MHD_Response *resp =
                size == 0 ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
                          : agent_file_response(r, &af, 0, (uint64_t)size, &err);
        if (!resp && err)
                return http_reply_err(r, err);
        if (!resp)
                return -ENOMEM;
        (void)MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
        return http_reply_response(r, 200, resp);
}

/* One unary agent call on the sandbox; *ret owns the reply. */
static int call(struct v1_files *f, const char *op, json_t *body, struct agent_reply *ret,
                struct cove_err **err)
{
        json_t *req = agent_request(op, body);
        int q = agent_client_call(f->cd, f->id, req, V1_FILE_IO_MS, ret, err);
        json_decref(req);
        return q;
}

/* The reply's body, parsed when it came as data frames; borrowed or owned through *own. */
static json_t *reply_body(struct agent_reply *rep, json_t **own)
{
        if (rep->body_text) {
                *own = json_loadb(rep->body_text, rep->body_len, 0, NULL);
                return *own;
        }
        return rep->body;
}

int v1_files_remove(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct v1_files *f = r->ctx;
        struct agent_reply rep = { 0 };
        json_auto_t *own = NULL;
        const char *rec = http_query(r, "recursive");
        bool recursive = rec && (streq(rec, "true") || streq(rec, "1"));
        int q;

        if (rec && *rec && !recursive && !streq(rec, "false") && !streq(rec, "0"))
                return http_reply_error(r, 400, "query 'recursive' must be true or false");
        if (call(f, "filesystem.Stat", json_pack("{s:s}", "path", f->path), &rep, &err) < 0)
                return http_reply_err(r, err);
        if (rep.status != 200) {
                q = rep.status == 404 ? http_reply_error(r, 404, "nothing at '%s'", f->path)
                                      : reply_agent_failure(r, rep.status, rep.message);
                agent_reply_release(&rep);
                return q;
        }
        json_t *entry = json_object_get(reply_body(&rep, &own), "entry");
        const char *type = json_string_value(json_object_get(entry, "type"));
        bool dir = type && streq(type, "FILE_TYPE_DIRECTORY");
        agent_reply_release(&rep);

        if (dir && !recursive) {
                json_decref(own);
                own = NULL;
                if (call(f, "filesystem.ListDir",
                         json_pack("{s:s, s:i}", "path", f->path, "depth", 1), &rep, &err) < 0)
                        return http_reply_err(r, err);
                if (rep.status != 200) {
                        q = reply_agent_failure(r, rep.status, rep.message);
                        agent_reply_release(&rep);
                        return q;
                }
                json_t *entries = json_object_get(reply_body(&rep, &own), "entries");
                size_t n = json_array_size(entries);
                agent_reply_release(&rep);
                if (n > 0)
                        return http_reply_error(r, 400,
                                                "directory '%s' is not empty (use recursive=true)",
                                                f->path);
        }
        if (call(f, "filesystem.Remove", json_pack("{s:s}", "path", f->path), &rep, &err) < 0)
                return http_reply_err(r, err);
        q = rep.status == 200   ? http_reply_empty(r, 204)
            : rep.status == 404 ? http_reply_error(r, 404, "nothing at '%s'", f->path)
                                : reply_agent_failure(r, rep.status, rep.message);
        agent_reply_release(&rep);
        return q;
}
