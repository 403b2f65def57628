/* SPDX-License-Identifier: MIT */
/*
 * access.c — who may use a sandbox's runtime API, and as whom: the access token
 * (X-Access-Token), signed file URLs (runtime.md §2.3), the proxy's traffic token (§5), and
 * the acting user (§2.2). Tokens are compared in constant time.
 */
#include "coved/envd/envd.h"
#include "lib/b64.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/timeutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>

static bool ct_streq(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        if (la != lb)
                return false;
        return CRYPTO_memcmp(a, b, la) == 0;
}

/* The expected signature of this request with `token` ("v1_…"); caller frees. */
static char *expected_signature(struct http_req *r, const char *token)
{
        const char *path = http_query(r, "path");
        const char *user = http_query(r, "username");
        const char *exp = http_query(r, "signature_expiration");
        const char *op = streq(r->method, "GET") ? "read" : "write";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        char b64[EVP_MAX_MD_SIZE * 2];

        cleanup_free char *input =
                exp ? xasprintf("%s:%s:%s:%s:%s", path ? path : "", op, user ? user : "", token,
                                exp)
                    : xasprintf("%s:%s:%s:%s", path ? path : "", op, user ? user : "", token);
        if (EVP_Digest(input, strlen(input), md, &mdlen, EVP_sha256(), NULL) != 1)
                return NULL;
        b64_encode(md, mdlen, b64, B64_NOPAD);
        return xasprintf("v1_%s", b64);
}

/* The request's signature with raw '+' restored (a client that sent it unescaped). */
static char *presented_signature(struct http_req *r)
{
        const char *sig_in = http_query(r, "signature");
        if (!sig_in)
                return NULL;
        char *sig = xstrdup(sig_in);
        for (char *c = sig; *c; c++)
                if (*c == ' ')
                        *c = '+';
        return sig;
}

bool envd_signature_matches(struct http_req *r, const char *token)
{
        cleanup_free char *sig = presented_signature(r);
        cleanup_free char *want = sig && token && *token ? expected_signature(r, token) : NULL;
        return want && ct_streq(sig, want);
}

/* e2b.md §4.4: token alone when X-Access-Token is present; else the signature, with E2B's
 * texts. */
int envd_e2b_check_access(struct http_req *r, struct envd_req *t)
{
        const char *tok = http_header(r, "X-Access-Token");
        const char *token = t->rec->access_token ? t->rec->access_token : "";
        bool files = t->kind == ENVD_FILES;
        int64_t n = 0;

        if (tok && *token && ct_streq(tok, token))
                return 0;
        if (tok || !files)
                return http_reply_error(r, 401,
                                        "unauthorized access, please provide a valid access "
                                        "token or method signing if supported"),
                       -EACCES;
        const char *exp = http_query(r, "signature_expiration");
        if (!http_query(r, "signature"))
                return http_reply_error(r, 401, "missing signature query parameter"), -EACCES;
        if (exp && safe_atoi64(exp, &n) < 0)
                return http_reply_error(r, 400, "signature_expiration must be an integer"), -EINVAL;
        if (!envd_signature_matches(r, token))
                return http_reply_error(r, 401, "invalid signature"), -EACCES;
        if (exp && n >= 1000000000 && time_now_ms() / 1000 > n)
                return http_reply_error(r, 401, "signature is already expired"), -EACCES;
        return 0;
}

/* runtime.md §2.3. 0 = valid, else a reply has been queued (returns -EACCES / -EINVAL). */
static int check_signature(struct http_req *r, struct envd_req *t, const char *sig_in)
{
        const char *path = http_query(r, "path");
        const char *user = http_query(r, "username");
        const char *exp = http_query(r, "signature_expiration");
        const char *op = streq(r->method, "GET") ? "read" : "write";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        char b64[EVP_MAX_MD_SIZE * 2];
        int64_t n = 0;

        if (exp && safe_atoi64(exp, &n) < 0)
                return http_reply_error(r, 400, "signature_expiration must be an integer"), -EINVAL;
        if (!path)
                return http_reply_error(r, 400, "path is required"), -EINVAL;

        cleanup_free char *sig = xstrdup(sig_in);
        for (char *c = sig; *c; c++)
                if (*c == ' ')
                        *c = '+';

        cleanup_free char *input =
                exp ? xasprintf("%s:%s:%s:%s:%s", path, op, user ? user : "", t->rec->access_token,
                                exp)
                    : xasprintf("%s:%s:%s:%s", path, op, user ? user : "", t->rec->access_token);
        if (EVP_Digest(input, strlen(input), md, &mdlen, EVP_sha256(), NULL) != 1)
                return http_reply_error(r, 500, "cannot compute signature"), -EIO;
        b64_encode(md, mdlen, b64, B64_NOPAD);
        cleanup_free char *want = xasprintf("v1_%s", b64);
        if (!ct_streq(sig, want))
                return http_reply_error(r, 401, "invalid signature"), -EACCES;
        if (exp && n >= 1000000000 && time_now_ms() / 1000 > n)
                return http_reply_error(r, 401, "signature expired"), -EACCES;
        return 0;
}

int envd_check_access(struct http_req *r, struct envd_req *t)
{
        const char *tok = http_header(r, "X-Access-Token");
        const char *token = t->rec->access_token ? t->rec->access_token : "";

        if (tok && *token && ct_streq(tok, token))
                return 0;
        const char *sig = http_query(r, "signature");
        bool signable =
                (t->kind == ENVD_FILES) && (streq(r->method, "GET") || streq(r->method, "POST"));
        if (sig && signable && *token)
                return check_signature(r, t, sig);
        if (!tok)
                return http_reply_error(r, 401, "missing access token (X-Access-Token)"), -EACCES;
        return http_reply_error(r, 401, "invalid access token"), -EACCES;
}

/* runtime.md §5: no credential while network.allowPublicTraffic is true (the default), else
 * X-Access-Token or X-Traffic-Access-Token equal to the traffic token (= the access token). */
int envd_check_proxy_access(struct http_req *r, struct envd_req *t)
{
        json_t *pub = json_object_get(t->rec->network, "allowPublicTraffic");
        const char *token = t->rec->access_token ? t->rec->access_token : "";
        const char *a = http_header(r, "X-Access-Token");
        const char *b = http_header(r, "X-Traffic-Access-Token");

        if (!json_is_false(pub))
                return 0;
        if (*token && ((a && ct_streq(a, token)) || (b && ct_streq(b, token))))
                return 0;
        if (!a && !b)
                return http_reply_error(r, 401,
                                        "missing traffic access token (X-Access-Token or "
                                        "X-Traffic-Access-Token)"),
                       -EACCES;
        return http_reply_error(r, 401, "invalid traffic access token"), -EACCES;
}

/* runtime.md §2.2: query username vs Authorization: Basic base64("<user>:"). */
int envd_resolve_user(struct http_req *r, struct envd_req *t)
{
        const char *q = http_query(r, "username");
        const char *authz = http_header(r, "Authorization");
        cleanup_free char *basic = NULL;

        if (authz && strncasecmp(authz, "Basic ", 6) == 0) {
                const char *v = authz + 6;
                unsigned char *dec = NULL;
                size_t declen = 0;
                while (*v == ' ')
                        v++;
                if (b64_decode(v, strlen(v), 0, &dec, &declen) < 0)
                        return http_reply_error(r, 400, "invalid Basic authorization header"),
                               -EINVAL;
                unsigned char *colon = memchr(dec, ':', declen);
                size_t ul = colon ? (size_t)(colon - dec) : declen;
                if (memchr(dec, '\0', ul)) {
                        free(dec);
                        return http_reply_error(r, 400, "invalid Basic authorization header"),
                               -EINVAL;
                }
                basic = xstrndup((const char *)dec, ul);
                free(dec);
        }
        if (q && !*q)
                q = NULL;
        if (basic && !*basic) {
                free(basic);
                basic = NULL;
        }
        if (q && basic && !streq(q, basic))
                return http_reply_error(
                               r, 400,
                               "conflicting users: username '%s' and Authorization user '%s'", q,
                               basic),
                       -EINVAL;
        if (t->e2b && !q && !basic) {
                /* e2b.md §4.2: the E2B default user: the last USER of a build made through the
                 * E2B face, else `user` where the account exists, else root. */
                if (t->rec->e2b_user && *t->rec->e2b_user) {
                        t->user = xstrdup(t->rec->e2b_user);
                        return 0;
                }
                t->user = xstrdup("user");
                t->user_fallback = "root";
                return 0;
        }
        t->user = xstrdup(q ? q : basic ? basic : "root");
        return 0;
}
