/* SPDX-License-Identifier: MIT */
/*
 * files.c — GET/POST /files and /file (runtime.md §4.1, §4.2, §4.6); multipart uploads are in
 * files_multipart.c.
 *
 * Downloads send the file the agent opened and passed (files.open) with sendfile, or stream
 * files.read's D frames where no file came (agent_file.h). Raw uploads are never buffered: every
 * body chunk (gzip-decoded by http.c) becomes D frames of a files.write call opened in begin().
 */
#include "coved/agent_file.h"
#include "coved/envd/envd.h"
#include "lib/b64.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/range.h"

#include <strings.h>
#include <time.h>

/* ---- download ---- */

static bool attr_char(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               strchr("!#$&+-.^_`|~", c);
}

static char *content_disposition(const char *name)
{
        struct buf b;
        bool ascii = true;

        buf_init(&b, 16 * 1024);
        (void)buf_adds(&b, "attachment; filename=\"");
        for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
                if (*p >= 0x80)
                        ascii = false;
                (void)buf_addc(&b, (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') ? '_'
                                                                                        : (char)*p);
        }
        (void)buf_addc(&b, '"');
        if (!ascii) {
                (void)buf_adds(&b, "; filename*=UTF-8''");
                for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
                        if (attr_char(*p))
                                (void)buf_addc(&b, (char)*p);
                        else
                                (void)buf_addf(&b, "%%%02X", *p);
                }
        }
        if (!b.ptr)
                return xstrdup("attachment");
        return buf_take(&b, NULL);
}

static int handle_download(struct http_req *r, struct envd_req *t)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_agent_file struct agent_file f = AGENT_FILE_NULL;
        const char *path = http_query(r, "path");
        int64_t st, size, mtime = 0;
        uint64_t a = 0, n = 0;
        char hdr[128];
        int q;

        if (!path || !*path)
                return http_reply_error(r, 400, "path is required");
        json_t *open_req =
                envd_agent_request(t, "files.open", json_pack("{s:s}", "path", path), false);
        json_t *read_req =
                envd_agent_request(t, "files.read", json_pack("{s:s}", "path", path), false);
        q = agent_file_begin(t->cd, t->rec->id, ENVD_IO_TIMEOUT_MS, open_req, read_req, &f, &err);
        json_decref(open_req);
        json_decref(read_req);
        if (q < 0)
                return http_reply_err(r, err);
        json_t *first = f.head;
        if (!json_get_integer(json_object_get(first, "status"), &st) || st != 200) {
                struct agent_reply rep = {
                        .status = (int)(json_get_integer(json_object_get(first, "status"), &st)
                                                ? st
                                                : 500),
                        .message = json_string_value(json_object_get(first, "message")),
                };
                return envd_reply_agent_error(r, &rep);
        }
        if (!json_get_integer(json_object_get(first, "size"), &size) || size < 0)
                return http_reply_error(r, 503, "sandbox agent unreachable");
        (void)json_get_integer(json_object_get(first, "mtime"), &mtime);
        const char *name = json_string_value(json_object_get(first, "name"));
        cleanup_free char *disp = content_disposition(name ? name : "file");

        const char *range_hdr = http_header(r, "Range");
        int range = http_range_parse(range_hdr, range_hdr ? strlen(range_hdr) : 0, (uint64_t)size,
                                     &a, &n);
        if (range < 0) {
                struct MHD_Response *resp =
                        http_error_response(r, 416, "requested range not satisfiable");
                if (!resp)
                        return -ENOMEM;
                (void)snprintf(hdr, sizeof(hdr), "bytes */%lld", (long long)size);
                (void)MHD_add_response_header(resp, "Content-Range", hdr);
                return http_reply_response(r, 416, resp);
        }
        if (range == 0) {
                a = 0;
                n = (uint64_t)size;
        }

        struct MHD_Response *resp;
        if (n == 0) {
                resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        } else {
                resp = agent_file_response(r, &f, a, n, &err);
                if (!resp && err)
                        return http_reply_err(r, err);
        }
        if (!resp)
                return -ENOMEM;
        (void)MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
        (void)MHD_add_response_header(resp, "Accept-Ranges", "bytes");
        (void)MHD_add_response_header(resp, "Content-Disposition", disp);
        time_t mt = (time_t)mtime;
        struct tm tm;
        if (gmtime_r(&mt, &tm) && strftime(hdr, sizeof(hdr), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0)
                (void)MHD_add_response_header(resp, "Last-Modified", hdr);
        if (range == 1) {
                (void)snprintf(hdr, sizeof(hdr), "bytes %llu-%llu/%lld", (unsigned long long)a,
                               (unsigned long long)(a + n - 1), (long long)size);
                (void)MHD_add_response_header(resp, "Content-Range", hdr);
        }
        return http_reply_response(r, range == 1 ? 206 : 200, resp);
}

/* ---- uploads ---- */

static bool ct_is(const char *ct, const char *want)
{
        size_t l = strlen(want);
        return ct && strncasecmp(ct, want, l) == 0 &&
               (ct[l] == '\0' || ct[l] == ';' || ct[l] == ' ');
}

/* Opens the files.write call; 0 or -errno with err. */
int envd_files_open_write(struct envd_req *t, const char *path, int64_t mode, struct cove_err **err)
{
        json_t *body = json_pack("{s:s}", "path", path);
        if (mode >= 0)
                json_object_set_new(body, "mode", json_integer(mode));
        if (t->e2b_metadata) /* e2b.md §4.4: X-Metadata-* → user.e2b.* on every file */
                json_object_set(body, "metadata", t->e2b_metadata);
        json_t *req = envd_agent_request(t, "files.write", body, false);
        int fd = agent_client_connect(t->cd, t->rec->id, ENVD_IO_TIMEOUT_MS, err);
        if (fd < 0) {
                json_decref(req);
                return fd;
        }
        int q = agent_client_send_json(fd, req, err);
        json_decref(req);
        if (q < 0) {
                (void)close(fd);
                return q;
        }
        agent_client_set_bulk(fd); /* every upload streams: raw, multipart, gzip, JSON */
        t->agent_fd = fd;
        t->up_broken = false;
        return 0;
}

/* Ends the files.write call and reads its reply. */
int envd_files_finish_write(struct envd_req *t, struct agent_reply *ret, struct cove_err **err)
{
        cleanup_err struct cove_err *send_err = NULL;
        if (!t->up_broken && agent_client_send_end(t->agent_fd, &send_err) < 0)
                t->up_broken = true;
        int q = agent_client_read_reply(t->agent_fd, ret, err);
        (void)close(t->agent_fd);
        t->agent_fd = -1;
        return q;
}

static int upload_body(struct http_req *r, const char *p, size_t n)
{
        struct envd_req *t = r->ctx;
        cleanup_err struct cove_err *err = NULL;

        /* Past ENVD_RAW_UPLOAD_MAX the server answers 413 before calling us (and closing the
         * agent connection, EOF before E, makes the agent discard the upload). */
        if (t->err_status)
                return 0;
        if (t->up_broken || t->agent_fd < 0)
                return 0;
        if (agent_client_send_data(t->agent_fd, p, n, &err) < 0)
                t->up_broken = true; /* the agent's reply (read at the end) says why */
        return 0;
}

json_t *envd_files_entry_list(struct agent_reply *rep)
{
        json_t *e = rep->body ? json_incref(rep->body) : NULL;
        if (!e && rep->body_text)
                e = json_loadb(rep->body_text, rep->body_len, 0, NULL);
        return json_pack("[o]", e ? e : json_object());
}

static int handle_raw_upload(struct http_req *r, struct envd_req *t)
{
        cleanup_err struct cove_err *err = NULL;
        struct agent_reply rep = { 0 };
        int q;

        if (t->agent_fd < 0)
                return http_reply_error(r, 503, "sandbox agent unreachable");
        if (http_body_sink_failed(r))
                t->up_broken = true;
        if (envd_files_finish_write(t, &rep, &err) < 0)
                return http_reply_err(r, err);
        if (rep.status != 200)
                q = envd_reply_agent_error(r, &rep);
        else if (t->kind == ENVD_FILE)
                q = http_reply_empty(r, 204);
        else
                q = http_reply_json(r, 200, envd_files_entry_list(&rep));
        agent_reply_release(&rep);
        return q;
}

static int handle_json_upload(struct http_req *r, struct envd_req *t)
{
        cleanup_err struct cove_err *err = NULL;
        struct agent_reply rep = { 0 };
        json_auto_t *body = NULL;
        json_t *v;
        const char *path;
        const char *content = NULL;
        cleanup_free unsigned char *data = NULL;
        size_t len = 0;
        int64_t mode = -1;
        int q;

        if (envd_body_object(r, /* empty_ok= */ true, &body) < 0)
                return 0;
        v = json_object_get(body, "path");
        if (v && !json_is_null(v) && !json_is_string(v))
                return http_reply_error(r, 400, "field 'path' must be a string");
        if (v && json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v))
                /* a C string would silently cut the path at the NUL */
                return http_reply_error(r, 400, "field 'path' must not contain NUL bytes");
        path = v && json_is_string(v) && *json_string_value(v) ? json_string_value(v)
                                                               : http_query(r, "path");
        if (!path || !*path)
                return http_reply_error(r, 400, "path is required");
        json_t *c = json_object_get(body, "content"), *d = json_object_get(body, "data");
        if (c && json_is_null(c))
                c = NULL;
        if (d && json_is_null(d))
                d = NULL;
        if (c && d)
                return http_reply_error(r, 400,
                                        "fields 'content' and 'data' are mutually exclusive");
        if ((c && !json_is_string(c)) || (d && !json_is_string(d)))
                return http_reply_error(r, 400, "field '%s' must be a string",
                                        c ? "content" : "data");
        if (c) {
                content = json_string_value(c);
                len = json_string_length(c);
        } else if (d && b64_decode(json_string_value(d), json_string_length(d), 0, &data, &len) < 0)
                return http_reply_error(r, 400, "field 'data' must be base64");
        v = json_object_get(body, "mode");
        if (v && !json_is_null(v) && (!json_get_integer(v, &mode) || mode < 0 || mode > 4095))
                return http_reply_error(r, 400,
                                        "field 'mode' must be an integer between 0 and 4095");
        cleanup_free char *dest = xstrdup(path);
        if (envd_files_open_write(t, dest, mode, &err) < 0)
                return http_reply_err(r, err);
        const void *bytes = content ? (const void *)content : (const void *)data;
        if (len > 0 && agent_client_send_data(t->agent_fd, bytes, len, &err) < 0)
                t->up_broken = true;
        cove_err_free(&err);
        if (envd_files_finish_write(t, &rep, &err) < 0)
                return http_reply_err(r, err);
        q = rep.status == 200 ? http_reply_json(r, 200, envd_files_entry_list(&rep))
                              : envd_reply_agent_error(r, &rep);
        agent_reply_release(&rep);
        return q;
}

/* e2b.md §4.4: only multipart and octet-stream bodies, X-Metadata-* headers. */
static int e2b_upload_checks(struct http_req *r, struct envd_req *t, const char *ct)
{
        cleanup_err struct cove_err *err = NULL;
        if (!ct_is(ct, "multipart/form-data") && !ct_is(ct, "application/octet-stream"))
                return http_reply_error(r, 400,
                                        "unsupported content type: %s, expected "
                                        "multipart/form-data or application/octet-stream",
                                        ct ? ct : ""),
                       -EINVAL;
        if (e2b_metadata_from_headers(r, &t->e2b_metadata, &err) < 0)
                return http_reply_err(r, err), -EINVAL;
        return 0;
}

int envd_files_begin(struct http_req *r, struct envd_req *t)
{
        cleanup_err struct cove_err *err = NULL;
        uint64_t len = 0;
        bool have_len = http_body_length(r, &len);

        if (!streq(r->method, "POST"))
                return 0;
        const char *ct = http_header(r, "Content-Type");
        if (t->e2b && t->kind == ENVD_FILES && e2b_upload_checks(r, t, ct) < 0)
                return 0;
        if (t->kind == ENVD_FILES && ct_is(ct, "application/json")) {
                t->body_limit = ENVD_JSON_UPLOAD_MAX;
                r->body.max = ENVD_JSON_UPLOAD_MAX + 1;
                http_body_set_limit(r, ENVD_JSON_UPLOAD_MAX);
                if (have_len && len > t->body_limit)
                        return http_reply_error(r, 413, "request body too large (limit %zu bytes)",
                                                t->body_limit);
                return 0;
        }
        /* Raw and multipart bodies: the server answers 413 as soon as they pass 1 GiB. */
        http_body_set_limit(r, ENVD_RAW_UPLOAD_MAX);
        if (t->kind == ENVD_FILES && ct_is(ct, "multipart/form-data")) {
                if (have_len && len > ENVD_RAW_UPLOAD_MAX)
                        return http_reply_error(r, 413, "request body too large (limit %llu bytes)",
                                                (unsigned long long)ENVD_RAW_UPLOAD_MAX);
                return envd_multipart_begin(r, t);
        }

        const char *path = http_query(r, "path");
        if (!path || !*path)
                return http_reply_error(r, 400, "path is required");
        if (have_len && len > ENVD_RAW_UPLOAD_MAX)
                return http_reply_error(r, 413, "request body too large (limit %llu bytes)",
                                        (unsigned long long)ENVD_RAW_UPLOAD_MAX);
        if (envd_files_open_write(t, path, -1, &err) < 0)
                return http_reply_err(r, err);
        r->body_cb = upload_body; /* a gzip body, decoded */
        http_body_set_sink(r, t->agent_fd, ENVD_IO_TIMEOUT_MS);
        return 0;
}

int envd_files_handler(struct http_req *r, struct envd_req *t)
{
        if (streq(r->method, "GET"))
                return handle_download(r, t);
        if (t->mp)
                return envd_multipart_handler(r, t);
        if (t->agent_fd >= 0 || r->body_cb == upload_body)
                return handle_raw_upload(r, t);
        return handle_json_upload(r, t);
}
