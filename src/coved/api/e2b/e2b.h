/* SPDX-License-Identifier: MIT */
/*
 * e2b.h — the E2B face's control plane (e2b.md §2), served at the origin root only, with E2B's
 * objects and error bodies ({"code": <status>, "message"}: the server sets the request's
 * dialect before the route runs). The sandbox endpoints (§3–§5: envd dialect, code
 * interpreter, user ports) are envd/'s (envd/e2b_gateway.c).
 *
 *   sandboxes.c   §2.1–§2.6: sandboxes, lifecycle, network, logs, metrics
 *   templates.c   §2.7, §2.8: templates and builds (on the build plane), routes not served
 *
 * Everything reaches sandboxes through the manager, as every face does: the same store, the
 * same admission (quotas, capacity), the same visibility (another team's sandbox is 404).
 */
#pragma once

#include "coved/http/http.h"

/* envdVersion of every sandbox on this face (e2b.md §2.2): the SDKs gate features on it. */
#define E2B_ENVD_VERSION "0.6.13"
/* clientID of every sandbox on this face (E2B's constant). */
#define E2B_CLIENT_ID "6532622b"

/* The face's route tables (main.c joins them into the server's E2B table). */
extern const struct route e2b_sandbox_routes[];
extern const struct route e2b_template_routes[];

/* The sandbox ID of a {sandboxID} path parameter (§1.2): one "-<anything>" suffix dropped.
 * NULL (after a 400 reply) when the ID has more than one '-'. Caller frees. */
char *e2b_path_sandbox_id(struct http_req *r, const char *param);

/* List answers (§2.4, §2.7): the `nextToken` query parameter as an offset (README §6.1: 0
 * when absent; -EINVAL after a 400 reply otherwise), the token of an offset (caller frees),
 * and a bare JSON array (taken over) with, when paged, X-Has-Next and X-Next-Token (next NULL:
 * the last page) and, when total_running >= 0, X-Total-Running. */
int e2b_offset_token(struct http_req *r, uint64_t *ret);
char *e2b_offset_encode(uint64_t offset);
int e2b_reply_array(struct http_req *r, json_t *arr, const char *next, bool paged,
                    int64_t total_running);
