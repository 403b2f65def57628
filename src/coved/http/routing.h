/* SPDX-License-Identifier: MIT */
/*
 * routing.h — API roots and route tables (spec README §1).
 *
 * Every control-plane route is served under each API root: /api/v1/sandbox,
 * /api/sandbox/v1, /api/v1, and the bare root. A path matches a table entry when its
 * segments after the root match the entry's pattern (lib/urlpath.h); when several match,
 * literal beats parameter; a path that matches only with other methods is 405 with Allow.
 */
#pragma once

#include "coved/http/e2b_classify.h"
#include "coved/http/http.h"

/* Sets r->root and returns how many leading segments it took. */
size_t http_route_strip_root(struct http_req *r);
/* The route for r (its params copied into r->params), or NULL with *ret_status 404 or 405
 * and, for 405, the methods of the path in allow. */
const struct route *http_route_find(const struct route *table, struct http_req *r, size_t skip,
                                    unsigned *ret_status, struct buf *allow);

/* ---- the E2B face (e2b.md §1.1) ----
 *
 * Classifies a request before the route map (e2b_classify.h, on r's headers, path and query). */
enum e2b_class http_e2b_classify(struct http_req *r, const char *domain, char **ret_id,
                                 char **ret_port, char *msg, size_t msglen);
/* An origin-root path under one of the E2B control plane's prefixes (/sandboxes, /v2, /v3,
 * /templates, /volumes, /teams and the not-served ones of §2.8). */
bool http_e2b_control_path(const struct http_req *r);
