/* SPDX-License-Identifier: MIT */
/*
 * fuzz-e2b-classify.c — the E2B face's classification of every request before the route map
 * (coved/http/e2b_classify.c, e2b.md §1.1): the E2B headers, the Host and the preflight's
 * header list come from any client, before authentication.
 *
 * Input: '\n'-separated fields — method, path (split on '/'), E2b-Sandbox-Id,
 * E2b-Sandbox-Port, Host, Access-Control-Request-Headers, the Host routing domain, and a last
 * field whose first byte says whether a `signature` query parameter is present. Missing fields
 * are absent.
 *
 * Checked: SANDBOX always names an ID and a port (by headers: the values as sent; by Host: a
 * non-empty decimal port and a lower-case ID without '.' taken from the Host's first label,
 * under the domain); BAD names the missing header; the other classes hand out nothing; the
 * result does not depend on the domain when both headers are set.
 */
#include "fuzz.h"
#include "coved/http/e2b_classify.h"

#include <ctype.h>
#include <strings.h>

#define FIELDS   8
#define SEGS_MAX 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        char *f[FIELDS] = { 0 };
        char *p = text;
        for (int i = 0; i < FIELDS && p; i++) {
                f[i] = p;
                p = strchr(p, '\n');
                if (p)
                        *p++ = '\0';
        }
        const char *segs[SEGS_MAX];
        size_t nsegs = 0;
        for (char *s = f[1], *slash; s && nsegs < SEGS_MAX; s = slash ? slash + 1 : NULL) {
                slash = strchr(s, '/');
                if (slash)
                        *slash = '\0';
                segs[nsegs++] = s;
        }
        struct e2b_request_view v = {
                .method = f[0],
                .segs = segs,
                .nsegs = nsegs,
                .sandbox_id = f[2],
                .sandbox_port = f[3],
                .host = f[4],
                .acr_headers = f[5],
                .has_signature = f[7] && (f[7][0] & 1),
        };
        const char *domain = f[6];
        char *id = NULL, *port = NULL, msg[128] = "";
        enum e2b_class c = e2b_classify(&v, domain, &id, &port, msg, sizeof(msg));
        bool by_headers = v.sandbox_id && *v.sandbox_id && v.sandbox_port && *v.sandbox_port;

        switch (c) {
        case E2B_CLASS_SANDBOX:
                FUZZ_CHECK(id && port);
                if (by_headers) {
                        FUZZ_CHECK(strcmp(id, v.sandbox_id) == 0);
                        FUZZ_CHECK(strcmp(port, v.sandbox_port) == 0);
                } else {
                        size_t dl = strlen(domain);
                        FUZZ_CHECK(dl > 0 && v.host);
                        FUZZ_CHECK(*port && strspn(port, "0123456789") == strlen(port));
                        FUZZ_CHECK(*id && !strchr(id, '.'));
                        for (const char *c2 = id; *c2; c2++)
                                FUZZ_CHECK(!isupper((unsigned char)*c2));
                        /* "<port>-<id>.<domain>[:…]" */
                        size_t hl = strcspn(v.host, ":");
                        FUZZ_CHECK(hl == strlen(port) + 1 + strlen(id) + 1 + dl);
                        FUZZ_CHECK(strncasecmp(v.host + hl - dl, domain, dl) == 0);
                        FUZZ_CHECK(strncmp(v.host, port, strlen(port)) == 0);
                        FUZZ_CHECK(strncasecmp(v.host + strlen(port) + 1, id, strlen(id)) == 0);
                }
                break;
        case E2B_CLASS_BAD:
                FUZZ_CHECK(!id && !port && !by_headers);
                FUZZ_CHECK(strcmp(msg, "missing header: E2b-Sandbox-Port") == 0 ||
                           strcmp(msg, "missing header: E2b-Sandbox-Id") == 0);
                break;
        case E2B_CLASS_NONE:
        case E2B_CLASS_PREFLIGHT:
        case E2B_CLASS_SIGNED_FILES:
                FUZZ_CHECK(!id && !port && !by_headers);
                break;
        }
        if (by_headers) { /* the headers decide, whatever the Host routing domain */
                char *id2 = NULL, *port2 = NULL;
                FUZZ_CHECK(e2b_classify(&v, NULL, &id2, &port2, msg, sizeof(msg)) ==
                           E2B_CLASS_SANDBOX);
                free(id2);
                free(port2);
        }
        free(id);
        free(port);
        free(text);
        return 0;
}
