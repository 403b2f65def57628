/* SPDX-License-Identifier: MIT */
/* ecr.c — registry credentials from AWS keys through ECR's GetAuthorizationToken (ecr.h). */
#include "build/ecr.h"
#include "build/digest.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/macro.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "lib/banned.h"

#define ECR_TARGET     "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
#define ECR_CONTENT    "application/x-amz-json-1.1"
#define ECR_SERVICE    "ecr"
#define ECR_BODY       "{}"
#define ECR_ANSWER_MAX (64 * 1024)
#define ECR_TIMEOUT_S  30L
#define ECR_REGION_MAX 32

static void hmac_raw(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
        unsigned int len = 0;
        (void)HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
                   &len);
}

/* AWS Signature Version 4 of a POST of `body` to `host`, path "/", at amz_date
 * ("YYYYMMDDTHHMMSSZ", UTC): the Authorization header's value (owned). */
static char *sigv4_authorization(const char *key_id, const char *secret, const char *region,
                                 const char *service, const char *host, const char *amz_target,
                                 const char *body, const char *amz_date)
{
        char body_hash[SHA256_HEX_LEN + 1], creq_hash[SHA256_HEX_LEN + 1];
        char sig[SHA256_HEX_LEN + 1];
        char date[9];
        unsigned char k[32];

        (void)snprintf(date, sizeof(date), "%.8s", amz_date);
        sha256_hex(body, strlen(body), body_hash);
        /* the canonical request: method, path, query, headers (lower-case, sorted), their
         * names, the payload's hash */
        cleanup_free char *creq = xasprintf("POST\n/\n\n"
                                            "content-type:" ECR_CONTENT "\n"
                                            "host:%s\n"
                                            "x-amz-date:%s\n"
                                            "x-amz-target:%s\n\n"
                                            "content-type;host;x-amz-date;x-amz-target\n%s",
                                            host, amz_date, amz_target, body_hash);
        sha256_hex(creq, strlen(creq), creq_hash);
        cleanup_free char *scope = xasprintf("%s/%s/%s/aws4_request", date, region, service);
        cleanup_free char *to_sign =
                xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, creq_hash);
        /* the signing key: HMAC chain from "AWS4" + secret over date, region, service */
        cleanup_free char *k0 = xasprintf("AWS4%s", secret);
        hmac_raw(k0, strlen(k0), date, k);
        OPENSSL_cleanse(k0, strlen(k0));
        hmac_raw(k, sizeof(k), region, k);
        hmac_raw(k, sizeof(k), service, k);
        hmac_raw(k, sizeof(k), "aws4_request", k);
        hmac_sha256_hex(k, sizeof(k), to_sign, strlen(to_sign), sig);
        OPENSSL_cleanse(k, sizeof(k));
        return xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s, "
                         "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s",
                         key_id, scope, sig);
}

static bool region_valid(const char *r)
{
        size_t n = r ? strlen(r) : 0;
        if (n == 0 || n > ECR_REGION_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
                        return false;
        return true;
}

struct answer {
        struct buf body;
        bool too_big;
        volatile const int *cancel;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
        struct answer *a = ud;
        size_t len = size * n;
        if (buf_add(&a->body, p, len) < 0) { /* over ECR_ANSWER_MAX */
                a->too_big = true;
                return 0;
        }
        return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
        struct answer *a = ud;
        (void)dt, (void)dn, (void)ut, (void)un;
        return a->cancel && *a->cancel ? 1 : 0;
}

/* host[:port] of url as the Host header carries it; http only on loopback. */
static int endpoint_host(const char *url, char **ret, struct cove_err **err)
{
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL;
        int r = 0;

        if (!u)
                return cove_err_set(err, ENOMEM, "aws-ecr-endpoint: out of memory");
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
                r = cove_err_set(err, EINVAL, "invalid ECR endpoint '%s'", url);
                goto out;
        }
        bool loopback =
                streq(host, "127.0.0.1") || streq(host, "localhost") || streq(host, "[::1]");
        if (!streq(scheme, "https") && !(streq(scheme, "http") && loopback)) {
                r = cove_err_set(err, EINVAL, "ECR endpoint '%s': https only (http on loopback)",
                                 url);
                goto out;
        }
        (void)curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when the URL names one */
        *ret = port ? xasprintf("%s:%s", host, port) : xstrdup(host);
out:
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        return r;
}

/* The answer's token: base64 of "AWS:<password>". */
static int parse_token(const struct buf *body, char **ret_user, char **ret_password,
                       struct cove_err **err)
{
        json_auto_t *j = json_loadb(buf_str(body), body->len, 0, NULL);
        const char *tok = json_string_value(json_object_get(
                json_array_get(json_object_get(j, "authorizationData"), 0), "authorizationToken"));
        unsigned char *raw = NULL;
        size_t n = 0;
        if (!tok || b64_decode(tok, strlen(tok), 0, &raw, &n) < 0)
                return cove_err_set(err, EIO, "ECR GetAuthorizationToken: malformed answer");
        const char *colon = memchr(raw, ':', n);
        if (!colon || colon == (const char *)raw || memchr(raw, '\0', n)) {
                OPENSSL_cleanse(raw, n);
                free(raw);
                return cove_err_set(err, EIO, "ECR GetAuthorizationToken: malformed token");
        }
        *ret_user = xstrndup((const char *)raw, (size_t)(colon - (const char *)raw));
        *ret_password = xstrndup(colon + 1, n - (size_t)(colon + 1 - (const char *)raw));
        OPENSSL_cleanse(raw, n);
        free(raw);
        return 0;
}

int ecr_login(const struct ecr_opts *o, char **ret_user, char **ret_password, struct cove_err **err)
{
        char amz_date[17], errbuf[CURL_ERROR_SIZE] = "";
        struct answer a = { .cancel = o->cancel };
        buf_init(&a.body, ECR_ANSWER_MAX);
        cleanup_free char *host = NULL, *url = NULL;
        struct curl_slist *hdrs = NULL;
        long status = 0;
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (!o->access_key_id || !*o->access_key_id || !o->secret_access_key ||
            !*o->secret_access_key)
                return cove_err_set(err, EINVAL,
                                    "aws credentials need awsAccessKeyId and "
                                    "awsSecretAccessKey");
        if (!region_valid(o->region))
                return cove_err_set(err, EINVAL, "invalid awsRegion '%.40s'",
                                    o->region ? o->region : "");
        url = o->endpoint && *o->endpoint
                      ? xstrdup(o->endpoint)
                      : xasprintf("https://api.ecr.%s.amazonaws.com/", o->region);
        r = endpoint_host(url, &host, err);
        if (r < 0)
                return r;
        if (!gmtime_r(&now, &tm) ||
            strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm) == 0)
                return cove_err_set(err, EIO, "cannot format the current time");
        cleanup_free char *auth =
                sigv4_authorization(o->access_key_id, o->secret_access_key, o->region, ECR_SERVICE,
                                    host, ECR_TARGET, ECR_BODY, amz_date);
        cleanup_free char *h_auth = xasprintf("Authorization: %s", auth);
        cleanup_free char *h_host = xasprintf("Host: %s", host);
        cleanup_free char *h_date = xasprintf("X-Amz-Date: %s", amz_date);
        hdrs = curl_slist_append(hdrs, h_host);
        hdrs = curl_slist_append(hdrs, "Content-Type: " ECR_CONTENT);
        hdrs = curl_slist_append(hdrs, h_date);
        hdrs = curl_slist_append(hdrs, "X-Amz-Target: " ECR_TARGET);
        hdrs = curl_slist_append(hdrs, h_auth);
        hdrs = curl_slist_append(hdrs, "Expect:");
        CURL *h = curl_easy_init();
        if (!h || !hdrs) {
                curl_slist_free_all(hdrs);
                curl_easy_cleanup(h);
                return cove_err_set(err, ENOMEM, "ECR GetAuthorizationToken: out of memory");
        }
        (void)curl_easy_setopt(h, CURLOPT_URL, url);
        (void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        (void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        (void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        (void)curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        (void)curl_easy_setopt(h, CURLOPT_TIMEOUT, ECR_TIMEOUT_S);
        (void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, ECR_BODY);
        (void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        (void)curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
        (void)curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        (void)curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        (void)curl_easy_setopt(h, CURLOPT_XFERINFODATA, &a);
        CURLcode rc = curl_easy_perform(h);
        (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        OPENSSL_cleanse(auth, strlen(auth));
        OPENSSL_cleanse(h_auth, strlen(h_auth));
        if (a.too_big)
                r = cove_err_set(err, EIO, "ECR GetAuthorizationToken: answer over %d bytes",
                                 ECR_ANSWER_MAX);
        else if (rc != CURLE_OK)
                r = cove_err_set(err, EIO, "ECR GetAuthorizationToken at %s: %s", host,
                                 rc == CURLE_ABORTED_BY_CALLBACK ? "cancelled"
                                 : *errbuf                       ? errbuf
                                                                 : curl_easy_strerror(rc));
        else if (status != 200) {
                /* AWS's JSON error: {"__type": "…#UnrecognizedClientException", "message": …} */
                json_auto_t *j = json_loadb(buf_str(&a.body), a.body.len, 0, NULL);
                const char *type = json_string_value(json_object_get(j, "__type"));
                const char *msg = json_string_value(json_object_get(j, "message"));
                if (!msg)
                        msg = json_string_value(json_object_get(j, "Message"));
                const char *hash = type ? strrchr(type, '#') : NULL;
                r = cove_err_set(err, status == 400 || status == 403 ? EACCES : EIO,
                                 "ECR GetAuthorizationToken refused (HTTP %ld%s%.100s): %.300s",
                                 status, type ? ", " : "",
                                 hash   ? hash + 1
                                 : type ? type
                                        : "",
                                 msg ? msg : "no message");
        } else
                r = parse_token(&a.body, ret_user, ret_password, err);
        if (a.body.ptr)
                OPENSSL_cleanse(a.body.ptr, a.body.len);
        buf_release(&a.body);
        return r;
}
