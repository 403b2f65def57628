/* SPDX-License-Identifier: MIT */
/* e2b_classify.c — the E2B face's request classification (e2b_classify.h). */
#include "coved/http/e2b_classify.h"
#include "lib/macro.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

/* Host routing (§3.5): "<port>-<id>[-<suffix>].<domain>" with the port removed from Host. */
static bool host_route(const char *host, const char *domain, char **ret_id, char **ret_port)
{
        if (!domain || !*domain || !host)
                return false;
        size_t hl = strcspn(host, ":"), dl = strlen(domain);
        if (host[0] == '[' || hl <= dl + 1 || host[hl - dl - 1] != '.' ||
            strncasecmp(host + hl - dl, domain, dl) != 0)
                return false;
        size_t ll = hl - dl - 1; /* the labels before .<domain> */
        if (memchr(host, '.', ll))
                return false; /* only the first label may precede the domain */
        size_t pl = 0;
        while (pl < ll && isdigit((unsigned char)host[pl]))
                pl++;
        if (pl == 0 || pl >= ll || host[pl] != '-' || pl + 1 == ll)
                return false;
        *ret_port = xstrndup(host, pl);
        char *id = xstrndup(host + pl + 1, ll - pl - 1);
        for (char *c = id; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        *ret_id = id;
        return true;
}

static bool names_e2b_header(const char *list)
{
        if (!list)
                return false;
        return strcasestr(list, "e2b-sandbox-id") || strcasestr(list, "e2b-sandbox-port");
}

enum e2b_class e2b_classify(const struct e2b_request_view *v, const char *domain, char **ret_id,
                            char **ret_port, char *msg, size_t msglen)
{
        const char *id = v->sandbox_id && *v->sandbox_id ? v->sandbox_id : NULL;
        const char *port = v->sandbox_port && *v->sandbox_port ? v->sandbox_port : NULL;
        const char *method = v->method ? v->method : "";

        if (id && port) {
                *ret_id = xstrdup(id);
                *ret_port = xstrdup(port);
                return E2B_CLASS_SANDBOX;
        }
        if (id || port) {
                (void)snprintf(msg, msglen, "missing header: %s",
                               id ? "E2b-Sandbox-Port" : "E2b-Sandbox-Id");
                return E2B_CLASS_BAD;
        }
        if (host_route(v->host, domain, ret_id, ret_port))
                return E2B_CLASS_SANDBOX;
        if (streq(method, "OPTIONS") && names_e2b_header(v->acr_headers))
                return E2B_CLASS_PREFLIGHT;
        if ((streq(method, "GET") || streq(method, "POST")) && v->nsegs >= 1 &&
            streq(v->segs[0], "files") && (v->nsegs == 1 || (v->nsegs == 2 && !*v->segs[1])) &&
            v->has_signature)
                return E2B_CLASS_SIGNED_FILES;
        return E2B_CLASS_NONE;
}
