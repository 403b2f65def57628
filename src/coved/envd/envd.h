/* SPDX-License-Identifier: MIT */
/*
 * envd.h — shared by the files of the runtime API gateway (runtime.md), never included
 * outside envd/:
 *
 *   gateway.c        dispatch of /envd/{id}/…: the route table, state, body limits
 *   access.c         access token, signed URLs (§2.3), traffic token (§5), acting user (§2.2)
 *   forward.c        envd → agent: request frames, the unary forward, deferred errors
 *   run.c env.c      POST /run; GET /envs, POST /configure
 *   files.c          GET/POST /files and /file (download, raw and JSON uploads)
 *   files_multipart.c  multipart uploads (lib/multipart.h)
 *   files_content.c  GET /files/content; files_batch.c POST /files/batch and /files/compose
 *   metrics.c ports.c  GET /metrics, GET /ports
 *   rpc.c connect.c  Connect-RPC (§6) and its JSON message rules
 *   proxy.c          {envdUrl}/proxy/{port}/… (§5)
 *
 * struct envd_req hangs on http_req.ctx for the life of one request and is freed by the
 * gateway. Every reply goes through http.h, which adds the runtime CORS headers (§2.1).
 */
#pragma once

#include "coved/agent_client.h"
#include "coved/http/http.h"
#include "coved/manager/manager.h"
#include "lib/connect.h"
#include "lib/multipart.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* README §3.1 */
#define ENVD_JSON_BODY_MAX   BUF_MAX_HTTP_BODY   /* 8 MiB */
#define ENVD_JSON_UPLOAD_MAX BUF_MAX_JSON_UPLOAD /* 64 MiB */
#define ENVD_RAW_UPLOAD_MAX  ((uint64_t)1 << 30) /* 1 GiB */
#define ENVD_KEEPALIVE_MS    15000
#define ENVD_MP_HOLD_MAX     (1024 * 1024) /* first multipart part held back */
#define ENVD_MP_OUT_BLOCK    (256 * 1024)  /* multipart part data gathered per D frame */
#define ENVD_IO_TIMEOUT_MS   (60 * 1000)   /* one file agent call */

enum envd_kind {
        ENVD_ROOT,
        ENVD_HEALTH,
        ENVD_FILES,
        ENVD_FILE,
        ENVD_RUN,
        ENVD_ENVS,
        ENVD_CONFIGURE,
        ENVD_RPC,
        ENVD_FILES_CONTENT,
        ENVD_FILES_BATCH,
        ENVD_FILES_COMPOSE,
        ENVD_METRICS,
        ENVD_PORTS,
        ENVD_PROXY,
        ENVD_RESERVED, /* E2B's control-plane-only paths (e2b.md §4.1) */
        ENVD_INTERP,   /* the E2B code interpreter (port 49999) */
        ENVD_UNKNOWN,
};

enum envd_rpc_kind {
        ENVD_RPC_UNARY,
        ENVD_RPC_SERVER_STREAM,
        ENVD_RPC_CLIENT_STREAM,
};

struct envd_req {
        struct coved *cd;          /* borrowed: the daemon */
        bool e2b;                  /* the E2B dialect (e2b.md §4), chosen by the face */
        const char *user_fallback; /* static: the agent's user when `user` is not an account */
        struct sandbox_rec *rec;   /* owned: snapshot of the sandbox (manager) */
        bool activity;             /* manager_runtime_target() began activity: ended when freed */
        char *user;                /* owned: acting user ("root" by default) */
        char **sub;                /* borrowed from r->segs: the runtime path segments */
        size_t nsub;
        enum envd_kind kind;
        char *op; /* owned: "<service>.<Method>" for ENVD_RPC */
        enum envd_rpc_kind rpc_kind;

        /* Buffered bodies (JSON routes): r->body with our own limit. */
        size_t body_limit;
        bool body_over;

        /* Deferred failure found while the body streams in (MHD cannot queue a response in
         * the middle of an upload): answered by the handler. First one wins. */
        unsigned err_status;
        char *err_msg; /* owned */

        json_t *e2b_metadata; /* owned: E2B upload metadata (X-Metadata-*), or NULL */

        /* Streamed upload (raw POST /files, POST /file). */
        int agent_fd;   /* owned, -1 */
        bool up_broken; /* sending failed: read the agent's reply at the end */

        /* Multipart upload: one files.write call per part, opened when the part starts. */
        struct multipart_parser *mp; /* owned */
        json_t *mp_entries;          /* owned: RestEntryInfo of the finished parts */
        unsigned mp_parts;           /* parts started so far */
        bool mp_at_path;             /* the first part was written to `path` itself */
        bool mp_holding;             /* first part held back in mp_held (files_multipart.c) */
        struct buf mp_held;          /* owned: at most ENVD_MP_HOLD_MAX bytes */
        struct buf mp_out;           /* owned: part data not yet sent, < ENVD_MP_OUT_BLOCK */
        char *mp_first_name;         /* owned: filename of the first part */

        /* StreamInput (client streaming). */
        struct connect_decoder dec;
        bool dec_ready;
        int si_mode;        /* 0 unknown, 1 envelopes, 2 plain JSON */
        json_t *si_process; /* owned: the selector from the start message */
        unsigned si_count;

        /* Port proxy (proxy.c). */
        struct envd_proxy *proxy; /* owned (envd_proxy_free) until the response takes it */
};

/* A route handler of the gateway's table. */
typedef int (*envd_fn)(struct http_req *r, struct envd_req *t);

/* ---- gateway.c ---- */

/* A request context on r (r->ctx) for the runtime path segments sub[0..nsub). */
struct envd_req *envd_req_new(struct http_req *r, char **sub, size_t nsub);
/* The E2B dialect on port 49983 (e2b.md §4) for a sandbox the caller (e2b_gateway.c) has
 * already targeted (t->rec, t->activity set): route, token, method, acting user, body. */
int envd_e2b_begin(struct http_req *r, struct envd_req *t);
/* handler() of both dialects. */
int envd_handler(struct http_req *r, struct envd_req *t);

/* ---- e2b_connect.c: the E2B dialect's message rules (e2b.md §4.6–§4.8) ---- */

/* A unary response body as the E2B face sends it (EntryInfo.size as a string, no nulls, no
 * Cove-only fields). Changes body in place. */
void e2b_fix_unary(const char *op, json_t *body);
/* A stream message (agent `msg`) as the E2B face sends it; false to drop it. */
bool e2b_fix_stream_msg(const char *op, json_t *msg);
/* The Connect error body {"code": "<code>", "message"} with HTTP `status` (E2B unary). */
int e2b_reply_connect_error(struct http_req *r, unsigned status, const char *code, const char *msg);
/* Adds the metadata ({key: value} of user.e2b.* attributes) to a files.write request from the
 * X-Metadata-* headers (e2b.md §4.4): 0, or -EINVAL with the 400 message in err. */
int e2b_metadata_from_headers(struct http_req *r, json_t **ret, struct cove_err **err);

/* ---- access.c (each 0, or < 0 after replying) ---- */

/* X-Access-Token, or a signed URL on /files (runtime.md §2.3). */
int envd_check_access(struct http_req *r, struct envd_req *t);
/* The proxy's traffic token (§5): none while network.allowPublicTraffic. */
int envd_check_proxy_access(struct http_req *r, struct envd_req *t);
/* E2B (e2b.md §4.2, §4.4): the token on every route but health/OPTIONS; /files takes the
 * token or a signature (with E2B's messages). */
int envd_e2b_check_access(struct http_req *r, struct envd_req *t);
/* The signature of a /files request (runtime.md §2.3) computed with `token`: true when the
 * request's `signature` matches (constant time). */
bool envd_signature_matches(struct http_req *r, const char *token);
/* Sets t->user from ?username= and Authorization: Basic (§2.2). */
int envd_resolve_user(struct http_req *r, struct envd_req *t);

/* ---- forward.c ---- */

/* An agent request frame {op, user, [env, workdir], body}; body is stolen (NULL → {}). */
json_t *envd_agent_request(struct envd_req *t, const char *op, json_t *body, bool with_env);
/* Reply for a non-200 agent reply (status + message). */
int envd_reply_agent_error(struct http_req *r, const struct agent_reply *rep);
/* Success reply of a unary agent call: the body as application/json. */
int envd_reply_agent_body(struct http_req *r, struct agent_reply *rep);
/* One unary agent call (op, body stolen) whose answer — success body or agent error — is the
 * reply; with_env adds the sandbox's environment and working directory. */
int envd_forward_unary(struct http_req *r, struct envd_req *t, const char *op, json_t *body,
                       bool with_env, int timeout_ms);
/* Records a deferred error (first one wins). */
void envd_defer_error(struct envd_req *t, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Records err as the deferred error (status as http_err_status()). */
void envd_defer_err(struct envd_req *t, const struct cove_err *err);
int envd_reply_deferred(struct http_req *r, struct envd_req *t);
/* A body_cb that buffers into r->body up to t->body_limit (413 at once beyond). */
int envd_buffer_body(struct http_req *r, const char *p, size_t n);
/* begin() of JSON routes that take up to ENVD_JSON_UPLOAD_MAX (batch, compose). */
int envd_json_upload_begin(struct http_req *r, struct envd_req *t);
/* The request body as a JSON object; replies 400 otherwise (returns -EINVAL). */
int envd_body_object(struct http_req *r, bool empty_ok, json_t **ret);

/* ---- the routes ---- */

int envd_run(struct http_req *r, struct envd_req *t);  /* run.c */
int envd_envs(struct http_req *r, struct envd_req *t); /* env.c */
int envd_configure(struct http_req *r, struct envd_req *t);
int envd_files_begin(struct http_req *r, struct envd_req *t); /* files.c */
int envd_files_handler(struct http_req *r, struct envd_req *t);
int envd_files_open_write(struct envd_req *t, const char *path, int64_t mode,
                          struct cove_err **err);
int envd_files_finish_write(struct envd_req *t, struct agent_reply *ret, struct cove_err **err);
json_t *envd_files_entry_list(struct agent_reply *rep);
int envd_multipart_begin(struct http_req *r, struct envd_req *t); /* files_multipart.c */
int envd_multipart_handler(struct http_req *r, struct envd_req *t);
void envd_multipart_free(struct envd_req *t);
int envd_files_content(struct http_req *r, struct envd_req *t); /* files_content.c */
int envd_files_batch(struct http_req *r, struct envd_req *t);   /* files_batch.c */
int envd_files_compose(struct http_req *r, struct envd_req *t);
int envd_metrics(struct http_req *r, struct envd_req *t); /* metrics.c */
int envd_ports(struct http_req *r, struct envd_req *t);   /* ports.c */

/* rpc.c: *ret_kind set when the path names a known method (0), else -ENOENT. */
int envd_rpc_lookup(const char *service, const char *method, enum envd_rpc_kind *ret_kind);
int envd_rpc_begin(struct http_req *r, struct envd_req *t);
int envd_rpc_handler(struct http_req *r, struct envd_req *t);

/* proxy.c: {envdUrl}/proxy/{port}/{rest} (runtime.md §5). begin() is called after the
 * proxy credential check; it checks the state, connects upstream and sends the request head. */
struct envd_proxy;
int envd_proxy_begin(struct http_req *r, struct envd_req *t);
int envd_proxy_handler(struct http_req *r, struct envd_req *t);
/* E2B user ports (e2b.md §3.4): the raw path, Host kept (or network.maskRequestHost), no
 * X-Forwarded-*, no Location rewriting; edge bodies for an unreachable port. */
int envd_e2b_proxy_begin(struct http_req *r, struct envd_req *t, uint16_t port);

/* e2b_gateway.c: E2B's edge error body (e2b.md §3.3); port < 0: none. */
int envd_e2b_edge_error(struct http_req *r, unsigned status, const char *sandbox_id,
                        const char *msg, int port);

/* interp.c: the code interpreter on port 49999 (e2b.md §5). */
int envd_interp_begin(struct http_req *r, struct envd_req *t);
/* Starts the default Python context's kernel of sandbox_id (e2b.md §5.2: a code-interpreter
 * sandbox has it running before its first execution), unless an execution is already on it.
 * Blocks on agent calls (run it on a worker); failures are logged only (the first execution
 * starts the kernel then). */
void envd_interp_warm(struct coved *cd, const char *sandbox_id);
int envd_interp_handler(struct http_req *r, struct envd_req *t);
void envd_proxy_free(struct envd_proxy *p);
