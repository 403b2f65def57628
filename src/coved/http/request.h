/* SPDX-License-Identifier: MIT */
/*
 * request.h — the server's side of struct http_req: creating one from the request head,
 * checking the head's bytes, freeing it. Only server.c calls these; handlers use http.h.
 */
#pragma once

#include "coved/http/http.h"

#define HTTP_MAX_HEADERS    100
#define HTTP_MAX_HEAD_BYTES (16 * 1024)
#define HTTP_MAX_SEGMENTS   64
/* One piece of body handed to a worker: libmicrohttpd's read buffer is smaller. */
#define HTTP_MAX_CHUNK (1024 * 1024)

#define HTTP_REQUEST_ID_MAX 130 /* 128 characters (README §3) and the NUL */

/* The request ID (README §3): the client's valid X-Request-ID, else "req_" + 24 hex. */
void http_request_id(struct MHD_Connection *conn, char out[HTTP_REQUEST_ID_MAX]);
/* A request for conn with its ID (the client's valid X-Request-ID, else a new one) and its
 * path split into decoded segments. */
struct http_req *http_req_new(struct coved *cd, struct MHD_Connection *conn, const char *method,
                              const char *url);
void http_req_free(struct http_req *r);
/* Frees the route's state (ctx_free(ctx)) and forgets it. */
void http_req_drop_ctx(struct http_req *r);

/* 431 material: true when the head has more than HTTP_MAX_HEADERS fields or more than
 * HTTP_MAX_HEAD_BYTES bytes. */
bool http_req_head_too_large(struct http_req *r, const char *url);

/* Issue 7: everything coved decodes must be UTF-8 without NUL, because it becomes C strings
 * and JSON. 0, or -EINVAL with the reason in msg: the raw path and every decoded path
 * segment and query key/value (proxied requests, forwarded undecoded, only need UTF-8 past
 * /envd/{id}/proxy/{port}), every header name and value. */
int http_req_check_input(struct http_req *r, char *msg, size_t msglen);

/* access.c: the request's route as a bounded label ("/sandboxes/{id}/connect", "unmatched",
 * "/envd/{sandboxID}/files"), for metrics. */
void http_route_label(const struct http_req *r, char *out, size_t n);
/* access.c: called once per request when it is complete: the access-log line (request ID
 * from the log context, never the query string) and the request metrics. */
void http_req_finished(struct http_req *r);
/* reply.c: a README §5 error as the bytes of a whole HTTP/1.1 response with "Connection:
 * close", for the server to write itself; and r's early reply (r->early_status, r->early_msg)
 * as such, in r's dialect with its CORS headers. */
char *http_error_bytes(unsigned status, const char *request_id, const char *msg, size_t *ret_len);
char *http_early_response(struct http_req *r, size_t *ret_len);

/* server.c: writes a whole response to conn's socket itself and ends the sending side;
 * libmicrohttpd must then close the connection (the caller returns MHD_NO), after which the
 * socket is drained for a few seconds (it may hold a body nobody read). For replies that
 * libmicrohttpd cannot queue. */
void http_conn_send_final(struct MHD_Connection *conn, const char *bytes, size_t len);
