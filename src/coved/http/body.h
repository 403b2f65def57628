/* SPDX-License-Identifier: MIT */
/*
 * body.h — request bodies: the limit (route->body_max, or what begin() set with
 * http_body_set_limit()) counted on raw and decoded bytes as they arrive, Content-Encoding
 * (gzip decoded as it streams, other encodings 415), buffering into r->body or handing chunks
 * to r->body_cb. Called by server.c; handlers read r->body or use http_body_json() (http.h).
 *
 * Every function here replies when it fails (while the body arrives that reply is an early
 * one, see http.h) and then returns -errno.
 */
#pragma once

#include "coved/http/http.h"

/* At the head, after routing: the route's limit and the decoder. */
int http_body_setup(struct http_req *r);
/* After begin(): a Content-Length over the limit is refused before the body is read. */
int http_body_check_length(struct http_req *r);
/* One chunk of the raw body. */
int http_body_feed(struct http_req *r, const char *p, size_t n);
/* The raw body goes to the route's sink (http_body_set_sink(), not gzip-encoded). */
bool http_body_sinking(const struct http_req *r);
/* Writes what of p[0..n) the sink takes now without blocking, as D frames: the bytes consumed
 * (all n once the sink failed: they are dropped), fewer when the sink is full; or -errno after
 * replying (the body limit). */
ssize_t http_body_sink_write(struct http_req *r, const char *p, size_t n);
/* At the end of the body: a gzip stream that did not end is a 400. */
int http_body_finish(struct http_req *r);
