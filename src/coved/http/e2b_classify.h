/* SPDX-License-Identifier: MIT */
/*
 * e2b_classify.h — the E2B face's classification of a request before the route map (e2b.md
 * §1.1), as a pure function of what the request carries, so that it is fuzzed and unit-tested
 * without a server (routing.c's http_e2b_classify() fills the view from a struct http_req).
 *
 * A sandbox request is named by the E2b-Sandbox-Id and E2b-Sandbox-Port headers (both
 * non-empty; an empty value counts as absent) or, when `domain` is set, by a Host
 * "<port>-<sandboxID>[-<suffix>].<domain>" (port removed, case-insensitive, only that one
 * label before the domain); one of the two headers alone is BAD (`msg` names the missing
 * one); an OPTIONS whose Access-Control-Request-Headers names either header is a PREFLIGHT;
 * a GET or POST of the origin-root path /files with a `signature` query parameter is
 * SIGNED_FILES; anything else is NONE. For SANDBOX, *ret_id and *ret_port (owned by the
 * caller) are the values as sent — headers as they are, the Host's sandbox label lower-cased —
 * their syntax is the gateway's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum e2b_class {
        E2B_CLASS_NONE,
        E2B_CLASS_SANDBOX,
        E2B_CLASS_BAD,
        E2B_CLASS_PREFLIGHT,
        E2B_CLASS_SIGNED_FILES,
};

/* What the classification looks at; NULL members are absent. */
struct e2b_request_view {
        const char *method;
        const char *const *segs; /* the path's decoded segments */
        size_t nsegs;
        const char *sandbox_id;   /* E2b-Sandbox-Id */
        const char *sandbox_port; /* E2b-Sandbox-Port */
        const char *host;         /* Host */
        const char *acr_headers;  /* Access-Control-Request-Headers */
        bool has_signature;       /* a `signature` query parameter */
};

enum e2b_class e2b_classify(const struct e2b_request_view *v, const char *domain, char **ret_id,
                            char **ret_port, char *msg, size_t msglen);
