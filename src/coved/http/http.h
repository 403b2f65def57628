/* SPDX-License-Identifier: MIT */
/*
 * http.h — what a route handler sees of coved's HTTP layer (libmicrohttpd underneath).
 *
 * Request life: the server (server.c) is called (1) once with the head, (2) once per body
 * chunk, (3) once at the end. At (1) it validates the request line and headers (request.c:
 * UTF-8, no NUL, head limits), assigns the request ID, splits the raw path into
 * percent-decoded segments, finds the route (routing.c), authenticates (auth.c), sets up the
 * body (body.c: limits, gzip) and calls the route's callbacks:
 *
 *   begin(r)        optional, at (1) after auth; may reply early or install r->body_cb to
 *                   receive the (decoded) body as a stream instead of having it buffered
 *   handler(r)      at (3); the buffered body is r->body (capped at route->body_max)
 *
 * Every callback returns 0, or -errno after failing to reply (then the server answers 500).
 * Exactly one reply per request, through the one reply path below (reply.c): every reply
 * carries X-Request-ID, runtime-API replies (/envd/…) carry the CORS headers of runtime.md
 * §2.1, errors use the spec's error body (README §5) whose status comes from err->status or
 * the errno map of lib/http_status.h.
 *
 * Threads (docs/decisions.md, "HTTP server"): a few libmicrohttpd threads serve every
 * connection with epoll, and nothing may block them. A route's begin(), handler() and its
 * streaming body_cb run on a worker thread (worker.h) while the connection is suspended,
 * unless the route is ROUTE_INLINE (its callbacks only read memory and SQLite); bodies that
 * the server buffers (no body_cb) are read on the server thread. Content readers of streaming
 * responses run on the server threads and must not block either: they wait with
 * http_wait_fd(). Upgraded connections are tunnelled by http_tunnel_start().
 *
 * Bodies: the server counts every body byte against the request's limit (route->body_max,
 * 8 MiB when 0, changed by http_body_set_limit()) as it arrives — raw bytes and, for gzip,
 * decoded bytes — and answers 413 as soon as it is passed; a route that streams a larger body
 * through body_cb sets its limit in begin(). An error reply made while the body is still
 * arriving (from body_cb, or the gzip decoder) is sent at once and the connection is closed
 * after it; the rest of the body is not read.
 *
 * Ownership: everything in struct http_req is owned by the request and freed when MHD
 * completes it; `ctx` + `ctx_free` let a route hang its own state on the request.
 */
#pragma once

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/urlpath.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

struct http_req;
struct coved;
struct poller;
struct worker_pool;
struct worker_slot;

typedef int (*http_fn)(struct http_req *r);
/* A body chunk for a streaming route: 0 to continue. A callback that fails either replies
 * now (an early reply: sent at once, the connection closes, the rest of the body is not
 * read) or records its error, keeps returning 0 (the route discards the rest, within the
 * body limit) and replies from handler(). < 0 without a reply is answered 500 at once. */
typedef int (*http_body_fn)(struct http_req *r, const char *p, size_t n);

enum route_flags {
        ROUTE_NO_AUTH = 1 << 0,   /* no API key needed */
        ROUTE_ADMIN = 1 << 1,     /* admin role required (403 otherwise) */
        ROUTE_RAW_BODY = 1 << 2,  /* no Content-Encoding decoding (proxy, build files) */
        ROUTE_HEARTBEAT = 1 << 3, /* API key or the sandbox's X-Access-Token */
        ROUTE_INLINE = 1 << 4,    /* callbacks never block: run on the server thread */
        /* begin() is first tried on the server thread with r->begin_nowait set: it either
         * finishes there (answered or not) without blocking, or returns HTTP_WOULD_BLOCK
         * before it replied, having left nothing on the request but r->ctx (freed by the
         * server), and then runs again, from the start, as a worker job. One thread handoff
         * (two wake-ups) fewer per request when the fast path applies. */
        ROUTE_BEGIN_TRY = 1 << 5,
};
#define HTTP_WOULD_BLOCK (-EWOULDBLOCK)

struct route {
        const char *method;  /* "GET", "POST", … */
        const char *pattern; /* segments after the API root: "sandboxes/:id/connect" */
        http_fn handler;
        unsigned flags;
        size_t body_max; /* 0 → BUF_MAX_HTTP_BODY */
        http_fn begin;   /* optional */
};

/* How errors and CORS look on the face a request came through (README §5 everywhere, except
 * the E2B face: e2b.md §1.3, §3.3, §4.1, §4.5, §5.1). */
enum http_dialect {
        HTTP_DIALECT_COVE,        /* README §5 error bodies */
        HTTP_DIALECT_E2B_API,     /* {"code": <status>, "message"} */
        HTTP_DIALECT_E2B_ENVD,    /* the same, plus the E2B CORS headers (§4.9) */
        HTTP_DIALECT_E2B_CONNECT, /* {"code": "<connect code>", "message"}, E2B CORS */
        HTTP_DIALECT_E2B_TEXT,    /* text/plain message (code interpreter), E2B CORS */
        HTTP_DIALECT_PASSTHROUGH, /* a user port: no CORS added (edge bodies for errors) */
};

struct http_auth {
        char *team_id; /* owned; NULL when the request is not authenticated */
        char *role;    /* owned: "admin" | "user" */
        char *key_id;  /* owned */
        char *last4;   /* owned: last 4 characters of the presented key (for masking) */
};

struct http_req {
        struct coved *cd;            /* borrowed: the daemon */
        struct MHD_Connection *conn; /* borrowed */
        const char *method;          /* borrowed from MHD */
        char *raw_path;              /* owned: path as sent, without the query */
        char **segs;                 /* owned: percent-decoded path segments (NULL-terminated) */
        size_t nsegs;
        char *root;                /* owned: API root the request came in on ("/api/v1"), or "" */
        char request_id[130];      /* HTTP_REQUEST_ID_MAX */
        const struct route *route; /* borrowed from the route table */
        char *params[ROUTE_MAX_PARAMS]; /* owned: values of :params in pattern order */
        struct http_auth auth;
        struct buf body;      /* buffered body (decoded) */
        bool body_present;    /* any body bytes arrived */
        http_body_fn body_cb; /* set by begin() for streaming bodies */
        void *ctx;            /* route state */
        void (*ctx_free)(void *ctx);
        bool replied;
        unsigned status;
        int64_t start_mono_ms;
        bool runtime; /* a /envd/… request: CORS on every response */
        enum http_dialect dialect;
        bool passthrough;  /* path and query forwarded undecoded (proxies): only UTF-8 checked */
        bool begin_nowait; /* begin() runs on the server thread (ROUTE_BEGIN_TRY): must not block */
        /* internal (server.c, body.c, reply.c, poller.c) */
        struct poller *poller;       /* borrowed */
        struct worker_pool *workers; /* borrowed */
        struct worker_slot *slot;    /* owned while the request has blocking work */
        char **owned;                /* decoded query values handed out by http_query() */
        size_t nowned;
        void *gz;              /* zlib stream when Content-Encoding: gzip */
        bool gz_ended;         /* the gzip stream ended (Z_STREAM_END) */
        uint64_t body_limit;   /* decoded bytes allowed; 0: no limit */
        unsigned limit_status; /* the reply past body_limit: 413 unless a route said otherwise */
        const char *limit_msg; /* borrowed; NULL: "request body too large (limit N bytes)" */
        uint64_t raw_bytes;    /* body bytes as received */
        uint64_t body_bytes;   /* body bytes after decoding */
        bool in_body;          /* between the head and the end of the body: replies are early */
        bool body_complete;    /* the end of the request was reached */
        unsigned early_status; /* an error reply to send at once, closing the connection */
        char *early_msg;       /* owned */
        int job;               /* the worker job running or last run (server.c) */
        bool job_busy;         /* a worker runs a job: the connection is suspended */
        bool job_done;         /* the job finished; the server has not seen it yet */
        struct buf chunk;      /* body bytes gathered for the next JOB_BODY (server.c) */
        /* http_body_set_sink() (body.c, server.c) */
        bool sink_on;                /* the body goes to sink_fd from the server thread */
        bool sink_failed;            /* a write failed or timed out: the rest is dropped */
        int sink_fd;                 /* borrowed */
        int sink_timeout_ms;         /* longest wait for sink_fd to take more */
        unsigned char sink_hdr[5];   /* FRAME_HEADER_SIZE: the frame being written */
        size_t sink_hdr_off;         /* bytes of sink_hdr written */
        size_t sink_left;            /* payload bytes of that frame still to write; 0: none */
        struct http_wait *sink_wait; /* owned: the wait while sink_fd is full */
};

/* ---- request (request.c) ---- */

/* Header value (case-insensitive name) or NULL. */
const char *http_header(struct http_req *r, const char *name);
/* Query parameter value, percent-decoded ('+' → ' '), first occurrence; NULL if absent.
 * The returned string is owned by the request. Never contains NUL (the server refused it). */
const char *http_query(struct http_req *r, const char *name);
/* Every value of a repeatable query parameter, split on commas too. NULL-terminated, owned
 * by the caller (strv_free). */
char **http_query_list(struct http_req *r, const char *name);
/* Calls fn for every query parameter (decoded key and value). */
void http_query_foreach(struct http_req *r, void (*fn)(const char *k, const char *v, void *ud),
                        void *ud);
/* Calls fn for every request header (name as sent, value). */
void http_header_foreach(struct http_req *r, void (*fn)(const char *k, const char *v, void *ud),
                         void *ud);
/* The client's socket (watched for hang-ups while a handler waits), or -1. */
int http_client_socket(struct http_req *r);
/* Whether the client of socket fd (http_client_socket) has closed its end or the connection
 * broke: an end-of-file or an error pending on it, seen without reading; false for -1. */
bool http_client_gone(int fd);
/* The client's address as text ("unknown" when not known). */
void http_client_address(struct http_req *r, char *out, size_t n);

/* ---- replies (reply.c): the one reply path ---- */

/* json is stolen (NULL, from a failed json_pack, is answered 500). */
int http_reply_json(struct http_req *r, unsigned status, json_t *json);
/* JSON text already serialised; text is taken over. */
int http_reply_json_text(struct http_req *r, unsigned status, char *text, size_t len);
int http_reply_empty(struct http_req *r, unsigned status);
/* The wrapped success envelope of README §4.3 (heartbeat, /admin/…): {code: 0, message:
 * "success", data, request_id, requestID}; data is stolen. */
int http_reply_wrapped(struct http_req *r, unsigned status, json_t *data);
int http_reply_text(struct http_req *r, unsigned status, const char *content_type,
                    const char *text);
/* Queues a prepared MHD response (consumed). X-Request-ID (and CORS for /envd/) are added. */
int http_reply_response(struct http_req *r, unsigned status, struct MHD_Response *resp);
/* 204 to a CORS preflight of the E2B sandbox ports (e2b.md §4.9): the requested headers are
 * allowed. */
int http_reply_e2b_preflight(struct http_req *r);
/* The README §5 error response, for callers that add headers (Allow, Content-Range) before
 * http_reply_response(). Logs 5xx. NULL only when out of memory. */
struct MHD_Response *http_error_response(struct http_req *r, unsigned status, const char *msg);
int http_reply_error(struct http_req *r, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Error from a cove_err (NULL → 500): status = http_err_status(err). */
int http_reply_err(struct http_req *r, const struct cove_err *err);
/* err->status when set, else the errno map; 500 for NULL. */
unsigned http_err_status(const struct cove_err *err);
/* The Connect code of an HTTP status ("not_found" for 404, …; e2b.md §4.5). */
const char *http_connect_code(unsigned status);
/* Builds the README §5 error body (new reference; never NULL). */
json_t *http_error_body(unsigned status, const char *request_id, const char *message);

/* ---- bodies (body.c) ---- */

/* Parses r->body as JSON (empty → {} when empty_ok). 400 reply on failure (returns -EINVAL). */
int http_body_json(struct http_req *r, bool empty_ok, json_t **ret);
/* The body's length announced up front (Content-Length of an identity-encoded body): true
 * with *ret_len, false when unknown (chunked or compressed). */
bool http_body_length(struct http_req *r, uint64_t *ret_len);
/* The largest body (decoded bytes) this request takes; 0: no limit. Past it the server
 * answers 413 at once. Call from begin(). */
void http_body_set_limit(struct http_req *r, uint64_t max);
/* The same, for a route whose spec answers a body over its limit with another status and
 * message (the /v1 upload: 400); msg is kept, not copied (a string literal). */
void http_body_set_limit_reply(struct http_req *r, uint64_t max, unsigned status, const char *msg);
/* Streams the rest of the body to fd as agent D frames (lib/frame.h, no E frame), written on
 * the server thread straight from libmicrohttpd's buffer without blocking: no worker job and
 * no copy per chunk, and while fd cannot take more the connection is suspended until it can
 * (the poller) or timeout_ms passes. Call from begin() of a streaming route, which installs
 * its body_cb too: a gzip body still goes through body_cb (decoded there). fd is borrowed and
 * must stay open until the request is freed; the body limit applies as to any body. After a
 * failed or timed-out write the rest of the body is read and dropped, and
 * http_body_sink_failed() is true: the peer's reply (read by the handler) says why. */
void http_body_set_sink(struct http_req *r, int fd, int timeout_ms);
bool http_body_sink_failed(const struct http_req *r);

/* ---- streaming responses without a thread (poller.c) ----
 *
 * A content reader (MHD_create_response_from_callback) runs on a server thread and must not
 * block. When it has nothing to send it returns http_wait_fd(): 0, with the connection
 * suspended until `fd` is ready for `events` (POLLIN/POLLOUT), `timeout_ms` (< 0: none) has
 * passed or the client hung up; libmicrohttpd then calls the reader again and
 * http_wait_reason() tells why. MHD_CONTENT_READER_END_WITH_ERROR when coved is stopping.
 * The reader tries its I/O without blocking (MSG_DONTWAIT) before it waits. */
struct http_wait;
enum http_wake {
        HTTP_WAKE_NONE,        /* not woken from a wait (the first call, or more to send) */
        HTTP_WAKE_READY,       /* the fd is ready, or has an error or EOF to report */
        HTTP_WAKE_TIMEOUT,     /* timeout_ms passed */
        HTTP_WAKE_CLIENT_GONE, /* the client hung up */
        HTTP_WAKE_STOPPING,    /* coved is stopping: end the response */
};
/* One per streaming response of r, freed by the response's free callback. */
struct http_wait *http_wait_new(struct http_req *r);
void http_wait_free(struct http_wait *w);
ssize_t http_wait_fd(struct http_wait *w, int fd, short events, int timeout_ms);
/* With fd < 0, http_wait_fd() waits for the timeout or the client's hang-up only. */
/* Runs fn(arg) on a worker thread while the connection is suspended (a reader that must make
 * a blocking call, e.g. to the agent); the reader runs again when fn has returned (reason
 * HTTP_WAKE_READY). Returns 0, or MHD_CONTENT_READER_END_WITH_ERROR when no worker can be
 * had (coved busy or stopping). */
ssize_t http_wait_work(struct http_wait *w, void (*fn)(void *arg), void *arg);
/* Runs fn(arg) on a worker thread, detached from any request: blocking clean-up that a
 * response's free callback must not do on a server thread. When no worker can be had, fn
 * runs at once, here. */
void http_run_later(struct http_wait *w, void (*fn)(void *arg), void *arg);
/* Runs fn(arg) on a worker thread, detached from r: blocking work that r's reply must not
 * wait for (warming a sandbox up after its 201). false when no worker can be had: fn did not
 * run (the caller still owns arg). coved's stop waits for the job to return. */
bool http_run_detached(struct http_req *r, void (*fn)(void *arg), void *arg);
/* Why the reader runs again; resets to HTTP_WAKE_NONE. */
enum http_wake http_wait_reason(struct http_wait *w);

/* ---- upgraded connections (poller.c) ----
 *
 * From an MHD upgrade handler: copies bytes between the client socket and peer_fd (taken
 * over) until both directions are done, idle_ms pass without traffic, or, once one side has
 * finished sending, half_close_ms pass; then closes peer_fd and gives the client socket back
 * (MHD_UPGRADE_ACTION_CLOSE). to_peer / to_client (copied) are sent first: bytes that arrived
 * after each side's head. Returns at once. */
void http_tunnel_start(struct http_req *r, struct MHD_UpgradeResponseHandle *urh, int client_fd,
                       int peer_fd, const char *to_peer, size_t to_peer_len, const char *to_client,
                       size_t to_client_len, int idle_ms, int half_close_ms);
