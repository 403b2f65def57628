/* SPDX-License-Identifier: MIT */
/*
 * auth.h — API keys (spec README §2): X-API-Key or Authorization: Bearer, looked up by hash in
 * the store (the HTTP layer's one use of the store, for keys and teams only — never
 * sandboxes). In open mode (auth = none) every request is the default team's admin.
 *
 * Verified keys are cached (struct coved's keycache; auth.c says how): a hit costs a SHA-256
 * and a slot lock instead of a store lookup, and any write of keys (revoke, new key, a team
 * added to a key) empties the cache for the next request.
 */
#pragma once

#include "coved/http/http.h"

/* Fills r->auth. 0, or -ENOENT when the request carries no valid key. */
int http_authenticate(struct http_req *r);
/* The display name of the caller's team (its ID when it has none); caller frees. */
char *http_auth_team_name(struct http_req *r);

/* The cache of verified keys: bounded (1024 entries), thread-safe; one per daemon. */
struct http_keycache;
struct http_keycache *http_keycache_new(void);
void http_keycache_free(struct http_keycache *c);
