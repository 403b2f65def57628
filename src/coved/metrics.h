/* SPDX-License-Identifier: MIT */
/*
 * metrics.h — coved's own Prometheus metrics (control-plane.md §15), one registry per process.
 *
 * Any layer of coved may record into it (this header includes only lib/): the HTTP layer its
 * requests, the manager creates and deletes, the webhook pool its deliveries, the build plane
 * its builds. GET /metrics renders it after metrics_set_gauges() has refreshed the values that
 * are read rather than counted (sandboxes by state, templates, process fds and memory).
 *
 * Labels are always bounded: route patterns ("/sandboxes/{id}/connect"), methods, status
 * codes, states — never raw paths, IDs or client-chosen strings.
 *
 * metrics_init() runs once in main before any thread starts; every other call is thread-safe
 * and cheap (one short mutex).
 */
#pragma once

#include "lib/buf.h"
#include "lib/sandbox_state.h"

#include <stdbool.h>
#include <stdint.h>

void metrics_init(void);
void metrics_free(void);

/* One HTTP request answered: route is the matched pattern ("unmatched" for 404s without a
 * route, "/envd" for the runtime API), code the status sent. */
void metrics_http_request(const char *route, const char *method, unsigned code, double seconds);

/* A sandbox create finished (ok: it answered with a sandbox); seconds from request to answer. */
void metrics_sandbox_create(bool ok, double seconds);
/* A sandbox was deleted (by request or by its lifecycle), seconds the teardown took. */
void metrics_sandbox_delete(double seconds);
/* One phase of a create (engine and manager; names: docs/operations.md, "Where a create's time
 * goes"). */
void metrics_create_phase(const char *phase, double seconds);
/* A create refused by a quota (429) or by node capacity (503). */
void metrics_sandbox_refused(const char *reason /* "quota" | "capacity" */);

/* The build plane's counters: a build moved from one status to another (from NULL: a new
 * build; to NULL: forgotten), and a build finished after `seconds`. Status strings are the
 * build plane's ("waiting", "building", "ready", "error", "cancelled"). */
void metrics_build_transition(const char *from, const char *to);
void metrics_build_finished(const char *status, double seconds);

/* One webhook delivery attempt ended: "delivered", "retrying", "failed", "dead_lettered",
 * "refused" (address not allowed). */
void metrics_webhook_delivery(const char *outcome);

/* Values read at scrape time. */
struct metrics_gauges {
        int64_t sandboxes[_SANDBOX_STATE_MAX];
        int64_t templates;
        int64_t webhook_queue; /* deliveries waiting (pending or retrying) */
};
void metrics_set_gauges(const struct metrics_gauges *g);

/* Appends the text exposition (every cove_* family, then process_* of coved itself). */
int metrics_render(struct buf *out);
