/* SPDX-License-Identifier: MIT */
/*
 * server.c — libmicrohttpd glue: configuration, the request life cycle, head limits.
 *
 * libmicrohttpd runs a few threads (MHD_OPTION_THREAD_POOL_SIZE), each with its own epoll
 * set, that serve every connection; idle connections cost no thread. Nothing may block them,
 * so a request's blocking work runs as *jobs* on worker threads (worker.h) while its
 * connection is suspended:
 *
 *   JOB_BEGIN    route->begin(), at the head;
 *   JOB_BODY     a batch of body bytes through a streaming body_cb (server.c gathers the
 *                chunks libmicrohttpd hands over, ~32 KiB each, into r->chunk up to
 *                HTTP_BODY_BATCH bytes, so that a worker handoff moves that much);
 *   JOB_HANDLER  route->handler(), at the end of the body.
 *
 * After a job, the worker resumes the connection and libmicrohttpd calls access_cb() again
 * (the head once more unless a reply is queued; the end only if no reply is queued; during the
 * body, with whatever arrives next, the batch having been consumed when it was gathered):
 * r->job_done tells access_cb() that the job's step is over. Replies made by a job are queued while
 * the connection is suspended, which libmicrohttpd allows at the head and at the end.
 *
 * Replies during the body (body.c's limits, gzip errors, a body_cb's failure) cannot be
 * queued in libmicrohttpd 0.9.75: they are written to the socket here (send_early()) with
 * "Connection: close", and access_cb() returns MHD_NO so that MHD closes the connection. A
 * connection closed before its body was read lingers in the poller (poller.h) for a few
 * seconds so that the close does not reset it before the client has read the answer. A
 * request whose body stalls for the idle timeout is answered 408 the same way, from the
 * completion callback (libmicrohttpd calls it before it shuts the socket down).
 */
#include "coved/http/server.h"
#include "coved/http/auth.h"
#include "coved/http/body.h"
#include "coved/http/poller.h"
#include "coved/http/request.h"
#include "coved/http/routing.h"
#include "coved/http/worker.h"
#include "coved/coved.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

/* Connection settings, in one place; the limits come from the operator (server.h). */
#define HTTP_CONNECTION_MEMORY (64 * 1024)
#define HTTP_LISTEN_BACKLOG    4096
#define HTTP_LINGER_IDLE_MS    (5 * 1000)
#define HTTP_LINGER_TOTAL_MS   (30 * 1000)
#define HTTP_BODY_BATCH        (512 * 1024) /* body bytes per JOB_BODY (< HTTP_MAX_CHUNK) */

enum job_kind {
        JOB_NONE,
        JOB_BEGIN,
        JOB_BODY,
        JOB_HANDLER,
};

struct http_server {
        struct MHD_Daemon *daemon;
        struct coved *cd;
        const struct route *routes;
        const struct route *runtime_route;
        const struct route *e2b_routes;
        const struct route *e2b_sandbox_route;
        struct worker_pool *workers;
        struct poller *poller;
        unsigned idle_timeout_s;
        unsigned max_active, max_active_per_sandbox;
};

/* Per connection (MHD's socket context). */
struct http_conn {
        bool linger; /* closed with body bytes unread: drain them after MHD's close */
};

/* A 405 with its Allow header. */
static int reply_405(struct http_req *r, const struct buf *allow)
{
        char msg[256];
        (void)snprintf(msg, sizeof(msg), "method %s not allowed on '%s'", r->method, r->raw_path);
        struct MHD_Response *resp = http_error_response(r, 405, msg);
        if (!resp)
                return -ENOMEM;
        (void)MHD_add_response_header(resp, "Allow", buf_str(allow));
        return http_reply_response(r, 405, resp);
}

/* Routing and authentication of a control-plane request. 0, or < 0 after replying. */
static int route_request(struct http_server *s, struct http_req *r)
{
        unsigned st = 404;
        cleanup_buf struct buf allow = { 0 };

        buf_init(&allow, 512);
        size_t skip = http_route_strip_root(r);
        if (s->e2b_routes && http_e2b_control_path(r)) {
                /* e2b.md §1.1 step 6: the E2B control plane at the origin root; /volumes and
                 * /teams are the shared handlers, with E2B error bodies. */
                r->dialect = HTTP_DIALECT_E2B_API;
                r->route = http_route_find(s->e2b_routes, r, skip, &st, &allow);
                if (!r->route && st == 404 &&
                    (streq(r->segs[0], "volumes") || streq(r->segs[0], "teams")))
                        r->route = http_route_find(s->routes, r, skip, &st, &allow);
        } else {
                r->route = http_route_find(s->routes, r, skip, &st, &allow);
        }
        if (!r->route) {
                if (st == 405)
                        return reply_405(r, &allow), -ENOENT;
                return http_reply_error(r, 404, "no route for %s '%s'", r->method, r->raw_path),
                       -ENOENT;
        }
        if (r->route->flags & ROUTE_NO_AUTH)
                return 0;
        if (http_authenticate(r) < 0 && !(r->route->flags & ROUTE_HEARTBEAT))
                return http_reply_error(r, 401, "missing or invalid API key"), -EACCES;
        if ((r->route->flags & ROUTE_ADMIN) && r->auth.role && !streq(r->auth.role, "admin"))
                return http_reply_error(r, 403, "this route needs an admin API key"), -EACCES;
        return 0;
}

/* The head's checks, routing, authentication, body set-up: memory and SQLite reads only, on
 * the server thread. 0, or < 0 after replying. */
static int check_head(struct http_server *s, struct http_req *r, const char *url)
{
        char msg[256];

        log_set_context(r->request_id, NULL);
        if (http_req_head_too_large(r, url))
                return http_reply_error(r, 431,
                                        "request headers too large (limit %d fields, %d bytes)",
                                        HTTP_MAX_HEADERS, HTTP_MAX_HEAD_BYTES),
                       -E2BIG;
        /* e2b.md §1.1 steps 1–5 come before the route map. */
        cleanup_free char *e2b_id = NULL, *e2b_port = NULL;
        enum e2b_class ec = E2B_CLASS_NONE;
        if (s->e2b_sandbox_route)
                ec = http_e2b_classify(r, r->cd->cfg.e2b_domain, &e2b_id, &e2b_port, msg,
                                       sizeof(msg));
        if (ec == E2B_CLASS_SANDBOX && !streq(e2b_port, "49983") && !streq(e2b_port, "49999"))
                r->passthrough = true; /* a user port: forwarded as sent */
        bool runtime = ec == E2B_CLASS_NONE && r->nsegs >= 2 && streq(r->segs[0], "envd") &&
                       s->runtime_route;
        r->runtime =
                runtime || (ec == E2B_CLASS_NONE && r->nsegs >= 1 && streq(r->segs[0], "envd"));
        if (ec != E2B_CLASS_NONE)
                r->dialect = HTTP_DIALECT_E2B_API;
        if (ec == E2B_CLASS_BAD)
                return http_reply_error(r, 400, "%s", msg), -EINVAL;
        if (http_req_check_input(r, msg, sizeof(msg)) < 0)
                return http_reply_error(r, 400, "%s", msg), -EINVAL;
        if (ec == E2B_CLASS_PREFLIGHT)
                return http_reply_e2b_preflight(r), -EAGAIN;
        if (ec == E2B_CLASS_SANDBOX || ec == E2B_CLASS_SIGNED_FILES) {
                /* The E2B sandbox gateway: params[0] the sandbox ID and params[1] the port as
                 * sent (both NULL for a signed file URL without routing information). */
                r->root = xstrdup("");
                r->route = s->e2b_sandbox_route;
                r->params[0] = TAKE_PTR(e2b_id);
                r->params[1] = TAKE_PTR(e2b_port);
        } else if (runtime) { /* /envd/{sandboxID}/… */
                r->root = xstrdup("");
                r->route = s->runtime_route;
                r->params[0] = xstrdup(r->segs[1]);
        } else {
                r->runtime = false;
                int q = route_request(s, r);
                if (q < 0)
                        return q;
        }
        return http_body_setup(r);
}

static bool offloaded(const struct http_req *r)
{
        return !(r->route->flags & ROUTE_INLINE);
}

/* The sandbox a request of a sandbox's own API (runtime, E2B sandbox ports) is for: its
 * blocking work counts against that sandbox's share. NULL for everything else. */
static const char *sandbox_key(const struct http_server *s, const struct http_req *r)
{
        if (r->route == s->runtime_route || r->route == s->e2b_sandbox_route)
                return r->params[0];
        return NULL;
}

static void run_begin(struct http_req *r)
{
        if (r->route->begin(r) < 0 && !r->replied)
                http_reply_error(r, 500, "internal error");
}

static void run_handler(struct http_req *r)
{
        if (r->route->handler(r) < 0 && !r->replied)
                http_reply_error(r, 500, "internal error");
        if (!r->replied)
                http_reply_error(r, 500, "no response");
}

/* ---- jobs ---- */

static void job_main(void *arg)
{
        struct http_req *r = arg;
        struct MHD_Connection *conn = r->conn;

        log_set_context(r->request_id, r->runtime ? r->params[0] : NULL);
        switch ((enum job_kind)r->job) {
        case JOB_BEGIN:
                run_begin(r);
                break;
        case JOB_BODY:
                (void)http_body_feed(r, r->chunk.ptr, r->chunk.len);
                break;
        case JOB_HANDLER:
                run_handler(r);
                break;
        case JOB_NONE:
                break;
        }
        /* No blocking work is left once the request has replied or handled its end. */
        if (r->replied || r->job == JOB_HANDLER) {
                worker_slot_release(r->slot);
                r->slot = NULL;
        }
        r->job_busy = false;
        r->job_done = true;
        MHD_resume_connection(conn); /* r may be gone from here on */
}

/* Replies to a request whose blocking work cannot be admitted. */
static void refuse(struct http_server *s, struct http_req *r, int q)
{
        if (q == -EUSERS)
                http_reply_error(r, 429,
                                 "too many requests in progress for sandbox '%s' (limit %u)",
                                 r->params[0] ? r->params[0] : "", s->max_active_per_sandbox);
        else if (q == -ESHUTDOWN)
                http_reply_error(r, 503, "coved is shutting down");
        else if (q == -EAGAIN)
                http_reply_error(r, 503, "server busy: too many requests in progress (limit %u)",
                                 s->max_active);
        else
                http_reply_error(r, 503, "server busy: cannot start a worker: %s", strerror(-q));
}

/* Suspends the connection and runs the job on a worker: true, and access_cb() returns
 * MHD_YES and waits for the repeat call. false when the work cannot be admitted: the request
 * has been answered (early while the body arrives) and the connection is not suspended. */
static bool submit(struct http_server *s, struct http_req *r, enum job_kind kind)
{
        int q = 0;

        r->job = kind;
        if (!r->slot)
                q = worker_slot_take(s->workers, sandbox_key(s, r), &r->slot);
        if (q < 0) {
                refuse(s, r, q);
                return false;
        }
        r->job_busy = true;
        r->job_done = false;
        MHD_suspend_connection(r->conn);
        q = worker_run(r->slot, job_main, r);
        if (q < 0) {
                /* Nothing ran: answer as a failed job would; the repeat call sends it. */
                refuse(s, r, q);
                worker_slot_release(r->slot);
                r->slot = NULL;
                r->job_busy = false;
                r->job_done = true;
                MHD_resume_connection(r->conn);
        }
        return true;
}

/* ---- early replies ---- */

static struct http_conn *conn_ctx(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return ci ? ci->socket_context : NULL;
}

void http_conn_send_final(struct MHD_Connection *conn, const char *bytes, size_t len)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct http_conn *c = conn_ctx(conn);
        size_t off = 0;

        if (!ci)
                return;
        /* A few hundred bytes to a socket that has nothing else to send (libmicrohttpd sends
         * nothing while a request arrives): they fit at once. */
        while (off < len) {
                ssize_t k =
                        send(ci->connect_fd, bytes + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                off += (size_t)k;
        }
        (void)shutdown(ci->connect_fd, SHUT_WR);
        if (c)
                c->linger = true;
}

/* Writes r's early reply to the socket; MHD closes the connection when access_cb() returns
 * MHD_NO. */
static void write_early(struct http_req *r)
{
        size_t len = 0;
        cleanup_free char *bytes = http_early_response(r, &len);

        log_debug("%s %s → %u early: %s", r->method, r->raw_path, r->early_status,
                  r->early_msg ? r->early_msg : "");
        http_conn_send_final(r->conn, bytes, len);
}

static enum MHD_Result send_early(struct http_req *r)
{
        write_early(r);
        return MHD_NO;
}

/* ---- the request life cycle ---- */

/* After begin() (inline or as a job): the limit is final, a Content-Length over it is refused
 * before the body is read. */
static enum MHD_Result head_done(struct http_req *r)
{
        if (!r->replied)
                (void)http_body_check_length(r);
        if (!r->replied)
                r->in_body = true;
        return MHD_YES;
}

static enum MHD_Result first_call(struct http_server *s, struct http_req *r, const char *url)
{
        if (check_head(s, r, url) < 0)
                return MHD_YES;
        if (!r->route->begin)
                return head_done(r);
        if (offloaded(r) && (r->route->flags & ROUTE_BEGIN_TRY)) {
                r->begin_nowait = true;
                int q = r->route->begin(r);
                r->begin_nowait = false;
                if (q != HTTP_WOULD_BLOCK || r->replied) {
                        if (q < 0 && !r->replied)
                                http_reply_error(r, 500, "internal error");
                        return head_done(r);
                }
                http_req_drop_ctx(r); /* begin() starts over on the worker */
        }
        if (offloaded(r))
                return submit(s, r, JOB_BEGIN) ? MHD_YES : head_done(r);
        run_begin(r);
        return head_done(r);
}

static enum MHD_Result access_body(struct http_server *s, struct http_req *r,
                                   const char *upload_data, size_t *upload_data_size);

/* The first call after a job. */
static enum MHD_Result repeat_call(struct http_server *s, struct http_req *r,
                                   const char *upload_data, size_t *upload_data_size)
{
        r->job_done = false;
        switch ((enum job_kind)r->job) {
        case JOB_BEGIN:
                return head_done(r);
        case JOB_BODY:
                /* The batch was consumed when it was gathered: this call carries the next
                 * bytes (or is the end), handled as a first call for them. */
                buf_reset(&r->chunk);
                if (r->early_status)
                        return send_early(r);
                return access_body(s, r, upload_data, upload_data_size);
        case JOB_HANDLER:
        case JOB_NONE:
                break;
        }
        /* MHD calls the end again only when no reply is queued. */
        return MHD_NO;
}

/* A body chunk for the route's sink (http_body_set_sink()): written here, on the server
 * thread, as far as the sink takes it; the rest stays unconsumed in MHD's buffer while the
 * connection waits in the poller for the sink to take more (then MHD calls again with it). */
static enum MHD_Result sink_call(struct http_req *r, const char *data, size_t *upload_data_size)
{
        if (r->sink_wait) {
                enum http_wake why = http_wait_reason(r->sink_wait);
                if (why == HTTP_WAKE_STOPPING) {
                        http_reply_error(r, 503, "coved is shutting down");
                        return send_early(r);
                }
                if (why == HTTP_WAKE_TIMEOUT)
                        r->sink_failed = true; /* the rest is dropped; the handler answers */
                /* Hung up (or half-closed, which the poller cannot tell apart and would
                 * report again at once): nobody waits for the answer. */
                if (why == HTTP_WAKE_CLIENT_GONE)
                        return MHD_NO;
        }
        ssize_t k = http_body_sink_write(r, data, *upload_data_size);
        if (k < 0)
                return send_early(r);
        *upload_data_size -= (size_t)k;
        if (*upload_data_size == 0)
                return MHD_YES;
        if (!r->sink_wait)
                r->sink_wait = http_wait_new(r);
        if (http_wait_fd(r->sink_wait, r->sink_fd, POLLOUT, r->sink_timeout_ms) != 0) {
                http_reply_error(r, 503, "coved is shutting down");
                return send_early(r);
        }
        return MHD_YES;
}

static enum MHD_Result body_call(struct http_server *s, struct http_req *r, const char *data,
                                 size_t *upload_data_size)
{
        size_t n = *upload_data_size;

        if (r->replied && !r->early_status) { /* answered at the head: MHD drops the rest */
                *upload_data_size = 0;
                return MHD_YES;
        }
        r->body_present = true;
        if (http_body_sinking(r))
                return sink_call(r, data, upload_data_size);
        if (offloaded(r) && r->body_cb) {
                /* Gathered (consumed from MHD's buffer) until a batch is full; the job runs
                 * with the connection suspended, and final_call() sends the last batch. */
                size_t k = MIN(n, (size_t)HTTP_BODY_BATCH -
                                          MIN(r->chunk.len, (size_t)HTTP_BODY_BATCH));
                if (buf_add(&r->chunk, data, k) < 0) {
                        http_reply_error(r, 500, "out of memory");
                        return send_early(r);
                }
                *upload_data_size -= k;
                if (r->chunk.len < HTTP_BODY_BATCH)
                        return MHD_YES;
                return submit(s, r, JOB_BODY) ? MHD_YES : send_early(r);
        }
        *upload_data_size = 0;
        (void)http_body_feed(r, data, n);
        return r->early_status ? send_early(r) : MHD_YES;
}

static enum MHD_Result final_call(struct http_server *s, struct http_req *r)
{
        if (r->chunk.len > 0 && !r->replied) /* the last batch first; MHD calls the end again */
                return submit(s, r, JOB_BODY) ? MHD_YES : send_early(r);
        r->in_body = false;
        r->body_complete = true;
        if (r->replied) /* a reply that MHD does not have: close rather than hang */
                return MHD_NO;
        if (http_body_finish(r) < 0)
                return MHD_YES;
        if (offloaded(r))
                (void)submit(s, r, JOB_HANDLER); /* refused: answered already */
        else
                run_handler(r);
        return MHD_YES;
}

/* A call after the head: body bytes, or the end. */
static enum MHD_Result access_body(struct http_server *s, struct http_req *r,
                                   const char *upload_data, size_t *upload_data_size)
{
        if (*upload_data_size > 0)
                return body_call(s, r, upload_data, upload_data_size);
        /* The end comes without data. libmicrohttpd also calls with data but no bytes to
         * take, when bytes of the next request follow an empty body (after a 100 Continue):
         * not the end yet. */
        if (upload_data)
                return MHD_YES;
        return final_call(s, r);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
        struct http_server *s = cls;
        struct http_req *r = *con_cls;
        (void)version;

        if (!r) {
                r = http_req_new(s->cd, conn, method, url);
                r->poller = s->poller;
                r->workers = s->workers;
                *con_cls = r;
                return first_call(s, r, url);
        }
        if (r->job_busy) /* MHD retries a chunk while the job runs: not yet */
                return MHD_YES;
        log_set_context(r->request_id, r->runtime ? r->params[0] : NULL);
        if (r->job_done)
                return repeat_call(s, r, upload_data, upload_data_size);
        return access_body(s, r, upload_data, upload_data_size);
}

static bool body_announced(struct http_req *r)
{
        const char *cl = http_header(r, "Content-Length");
        return (cl && !streq(cl, "0")) || http_header(r, "Transfer-Encoding");
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct http_server *s = cls;
        struct http_req *r = *con_cls;

        if (!r)
                return;
        if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED && !r->replied) {
                /* The body stalled (README §5.2): MHD has not shut the socket down yet. */
                r->in_body = true;
                http_reply_error(r, 408, "request body not received within %u s",
                                 s->idle_timeout_s);
                write_early(r);
        }
        /* Closed (or answered) before its body was read: drain it after the close. */
        struct http_conn *c = conn_ctx(conn);
        if (c && !r->body_complete && body_announced(r))
                c->linger = true;
        http_req_finished(r);
        log_set_context(NULL, NULL);
        http_req_free(r);
        *con_cls = NULL;
}

static void connection_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
        struct http_server *s = cls;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                *socket_context = xzalloc(sizeof(struct http_conn));
                return;
        }
        struct http_conn *c = *socket_context;
        *socket_context = NULL;
        if (c && c->linger) {
                /* MHD closes its fd right after this; a copy keeps the socket open. */
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                int fd = ci ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 3) : -1;
                if (fd >= 0) {
                        (void)shutdown(fd, SHUT_WR); /* the answer is out: FIN now */
                        poller_linger(s->poller, fd, HTTP_LINGER_IDLE_MS, HTTP_LINGER_TOTAL_MS);
                }
        }
        free(c);
}

/* Keep the path and query raw: segments are decoded one by one (lib/urlpath.h), query values
 * by http_query(), and the proxy forwards the raw query. */
static size_t unescape_noop(void *cls, struct MHD_Connection *c, char *s)
{
        (void)cls;
        (void)c;
        return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        (void)cls;
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        size_t l = strlen(msg);
        while (l > 0 && msg[l - 1] == '\n')
                msg[--l] = '\0';
        log_debug("libmicrohttpd: %s", msg);
}

int http_server_start(struct coved *cd, const struct http_server_config *cfg,
                      struct http_server **ret, struct cove_err **err)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(cfg->port) };
        if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1)
                return cove_err_set(err, EINVAL, "listen address '%s' is not an IPv4 address",
                                    cfg->host);

        struct http_server *s = xzalloc(sizeof(*s));
        s->cd = cd;
        s->routes = cfg->routes;
        s->runtime_route = cfg->runtime_route;
        s->e2b_routes = cfg->e2b_routes;
        s->e2b_sandbox_route = cfg->e2b_sandbox_route;
        s->idle_timeout_s = cfg->idle_timeout_s;
        s->max_active = cfg->max_active;
        s->max_active_per_sandbox = cfg->max_active_per_sandbox;
        int q = worker_pool_new(cfg->max_active, cfg->max_active_per_sandbox, &s->workers);
        if (q < 0) {
                free(s);
                return cove_err_set(err, -q, "cannot create the request workers: %m");
        }
        if (poller_start(&s->poller, err) < 0) {
                worker_pool_free(s->workers);
                free(s);
                return -EIO;
        }
        /* epoll, a few threads for all connections (no select() ceiling, no thread per
         * connection); suspend/resume for blocking work and streams; upgrades for WebSocket. */
        s->daemon = MHD_start_daemon(
                MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE |
                        MHD_ALLOW_SUSPEND_RESUME,
                cfg->port, NULL, NULL, access_cb, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                /* One thread is MHD's own internal thread, more are a pool. */
                MHD_OPTION_THREAD_POOL_SIZE, cfg->threads > 1 ? cfg->threads : 0u,
                MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s, MHD_OPTION_NOTIFY_CONNECTION,
                connection_cb, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape_noop, s,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
                MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)HTTP_LISTEN_BACKLOG,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_per_client, MHD_OPTION_END);
        if (!s->daemon) {
                poller_free(s->poller);
                worker_pool_free(s->workers);
                free(s);
                return cove_err_set(err, EADDRINUSE, "cannot listen on %s:%u", cfg->host,
                                    cfg->port);
        }
        *ret = s;
        return 0;
}

void http_server_stop(struct http_server *s)
{
        if (!s)
                return;
        MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
        if (lfd != MHD_INVALID_SOCKET)
                (void)close(lfd);
        /* Blocking work first (it ends within its own timeouts, as a request thread did),
         * then streams and tunnels: libmicrohttpd must find no suspended connection. */
        worker_pool_stop(s->workers);
        poller_stop(s->poller);
        MHD_stop_daemon(s->daemon);
        poller_free(s->poller);
        worker_pool_free(s->workers);
        free(s);
}
