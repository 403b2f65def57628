/* SPDX-License-Identifier: MIT */
/*
 * agent_client.h — coved's side of the agent protocol (docs/design/agent-protocol.md).
 *
 * One connection per call: agent_client_connect() returns a connected stream socket from
 * the engine's transport (engine_agent_connect(): a unix socket for the namespaces backend),
 * owned by the caller (closing it cancels the call in the agent). Except that
 * agent_client_call() of `run` and `ping` keeps its connection afterwards in the pool below
 * (the agent serves another request on it) and takes a kept one when there is one. Frames are
 * written and read with the helpers below (lib/frame.h). I/O timeouts are socket options
 * (SO_RCVTIMEO / SO_SNDTIMEO): `io_timeout_ms` 0 means none (streams, which poll themselves).
 *
 * Errors: an agent that cannot be reached (socket missing, connection refused, EOF or reset
 * before a reply, a malformed frame) is reported with HTTP status 503 and the message
 * `sandbox agent unreachable`; a timeout is 503 `sandbox agent timed out`.
 *
 * Unary replies (agent_client_read_reply) come in two shapes, both normalised into struct
 * agent_reply: `{"status":200,"body":{…}}` (body borrowed from `frame`) and
 * `{"status":200,"bodyFollows":true,"bodyBytes":N}` + D… + E (the body's JSON text, owned, in
 * body_text). Failures carry `status` and `message`.
 */
#pragma once

#include "coved/coved.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <jansson.h>
#include <stddef.h>

#define AGENT_UNARY_TIMEOUT_MS (120 * 1000)
/* Cap on a unary reply body sent as data frames (two 16 MiB outputs, JSON-escaped). */
#define AGENT_REPLY_BODY_MAX (200 * 1024 * 1024)

struct agent_reply {
        int status;      /* HTTP status the agent chose */
        json_t *frame;   /* owned: the first reply frame */
        json_t *body;    /* borrowed from frame: the response message, or NULL */
        char *body_text; /* owned: JSON text of the body when it followed as data frames */
        size_t body_len;
        const char *message; /* borrowed from frame: failure message, or NULL */
};
void agent_reply_release(struct agent_reply *r);

/* Connects to the agent of sandbox `id` and sets the I/O timeouts. Returns the fd or -errno
 * (503 "sandbox agent unreachable" in err). */
int agent_client_connect(struct coved *cd, const char *id, int io_timeout_ms,
                         struct cove_err **err);
/* (Re)sets SO_RCVTIMEO and SO_SNDTIMEO; 0 = no timeout. */
int agent_client_set_timeout(int fd, int timeout_ms);
/* A connection that carries a bulk upload: a send buffer of AGENT_BULK_SNDBUF bytes, so that
 * the server thread writing an upload (http_body_set_sink()) waits for the agent less often.
 * Best effort (the default buffer still works). */
#define AGENT_BULK_SNDBUF (4 * 1024 * 1024)
void agent_client_set_bulk(int fd);

int agent_client_send_json(int fd, const json_t *j, struct cove_err **err);
/* Sends n bytes as D frames of at most 64 KiB. */
int agent_client_send_data(int fd, const void *p, size_t n, struct cove_err **err);
int agent_client_send_end(int fd, struct cove_err **err);

/* Reads one frame. Clean EOF is an error here (503 unreachable). */
int agent_client_read_frame(int fd, char *ret_kind, struct buf *payload, struct cove_err **err);
/* Reads one frame that must be a JSON object. */
int agent_client_read_json(int fd, json_t **ret, struct cove_err **err);
/* Reads a unary reply (see above). ret is written only on success. */
int agent_client_read_reply(int fd, struct agent_reply *ret, struct cove_err **err);

/* The pool of kept agent connections (struct coved's agents; NULL: none). At most
 * AGENT_POOL_PER_SANDBOX idle connections per sandbox, AGENT_POOL_MAX in all (the oldest
 * makes room); a connection is used by one call at a time. A thread watches the idle ones:
 * one that becomes readable (the agent died or restarted, or sent bytes nobody asked for)
 * or idles for AGENT_POOL_IDLE_MS (less than the agent's own idle limit) is closed at once,
 * and a taken one is checked again. agent_pool_forget() closes a sandbox's idle connections
 * (at pause: a frozen agent answers nothing). */
#define AGENT_POOL_MAX         64
#define AGENT_POOL_PER_SANDBOX 4
#define AGENT_POOL_IDLE_MS     (10 * 1000)
struct agent_pool;
int agent_pool_new(struct agent_pool **ret, struct cove_err **err);
void agent_pool_free(struct agent_pool *p); /* closes every connection; NULL is a no-op */
void agent_pool_forget(struct agent_pool *p, const char *id);

/* One whole unary call: request frame out, reply in; on a new connection, or a kept one
 * (see above). */
int agent_client_call(struct coved *cd, const char *id, const json_t *req, int timeout_ms,
                      struct agent_reply *ret, struct cove_err **err);

/* Readiness: retries connect + `ping` until it answers 200 or timeout_ms has passed. */
int agent_client_ping(struct coved *cd, const char *id, int timeout_ms, struct cove_err **err);
