/* SPDX-License-Identifier: MIT */
/* request.c — struct http_req: creation, accessors (headers, query), input checks. */
#include "coved/http/request.h"
#include "coved/http/worker.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"
#include "lib/utf8.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <zlib.h>

/* ---- creation ---- */

static bool request_id_valid(const char *s)
{
        size_t n = strlen(s);
        if (n < 1 || n > 128)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("._:-", *p))
                        return false;
        return true;
}

void http_request_id(struct MHD_Connection *conn, char out[HTTP_REQUEST_ID_MAX])
{
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
        if (rid && request_id_valid(rid)) {
                (void)snprintf(out, HTTP_REQUEST_ID_MAX, "%s", rid);
        } else {
                memcpy(out, "req_", 4);
                random_hex(out + 4, 24);
        }
}

struct http_req *http_req_new(struct coved *cd, struct MHD_Connection *conn, const char *method,
                              const char *url)
{
        struct http_req *r = xzalloc(sizeof(*r));

        r->cd = cd;
        r->conn = conn;
        r->method = method;
        r->start_mono_ms = time_mono_ms();
        buf_init(&r->body, BUF_MAX_HTTP_BODY);
        buf_init(&r->chunk, HTTP_MAX_CHUNK);
        http_request_id(conn, r->request_id);
        const char *q = strchr(url, '?');
        size_t plen = q ? (size_t)(q - url) : strlen(url);
        r->raw_path = xstrndup(url, plen);
        urlpath_split(r->raw_path, plen, HTTP_MAX_SEGMENTS, &r->segs, &r->nsegs);
        return r;
}

void http_req_drop_ctx(struct http_req *r)
{
        if (r->ctx_free && r->ctx)
                r->ctx_free(r->ctx);
        r->ctx = NULL;
        r->ctx_free = NULL;
}

void http_req_free(struct http_req *r)
{
        if (!r)
                return;
        if (r->ctx_free && r->ctx)
                r->ctx_free(r->ctx);
        if (r->gz) {
                (void)inflateEnd(r->gz);
                free(r->gz);
        }
        http_wait_free(r->sink_wait);
        strv_free(r->segs);
        for (size_t i = 0; i < r->nowned; i++)
                free(r->owned[i]);
        free(r->owned);
        free(r->raw_path);
        free(r->root);
        for (size_t i = 0; i < ROUTE_MAX_PARAMS; i++)
                free(r->params[i]);
        free(r->auth.team_id);
        free(r->auth.role);
        free(r->auth.key_id);
        free(r->auth.last4);
        buf_release(&r->body);
        buf_release(&r->chunk);
        free(r->early_msg);
        worker_slot_release(r->slot);
        free(r);
}

static enum MHD_Result count_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
        size_t *acc = cls;
        (void)kind;
        acc[0]++;
        acc[1] += strlen(key) + (value ? strlen(value) : 0) + 4;
        return MHD_YES;
}

bool http_req_head_too_large(struct http_req *r, const char *url)
{
        size_t acc[2] = { 0, strlen(url) + strlen(r->method) + 12 };
        (void)MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header_cb, acc);
        return acc[0] > HTTP_MAX_HEADERS || acc[1] > HTTP_MAX_HEAD_BYTES;
}

/* ---- input checks ---- */

static bool decoded_ok(const char *s, size_t n, bool plus_space, const char **why)
{
        size_t len;
        cleanup_free char *d = pct_decode(s, n, plus_space, &len);
        if (!utf8_is_valid(s, n) || !utf8_is_valid(d, len)) {
                *why = "is not valid UTF-8";
                return false;
        }
        if (memchr(d, '\0', len)) {
                *why = "contains a NUL byte";
                return false;
        }
        return true;
}

/* Proxied requests (/envd/{id}/proxy/{port}/…) pass the rest of the path and the query to the
 * sandbox byte for byte, undecoded. */
static bool is_proxy_path(const struct http_req *r)
{
        if (r->passthrough)
                return true;
        return r->nsegs >= 4 && streq(r->segs[0], "envd") && streq(r->segs[2], "proxy");
}

struct input_check {
        bool decode;
        char *msg;
        size_t msglen;
};

static enum MHD_Result check_query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
        struct input_check *c = cls;
        const char *why = "is not valid UTF-8";
        (void)kind;

        bool ok = c->decode ? decoded_ok(key, strlen(key), true, &why) &&
                                      (!value || decoded_ok(value, strlen(value), true, &why))
                            : utf8_is_valid(key, strlen(key)) &&
                                      (!value || utf8_is_valid(value, strlen(value)));
        if (ok)
                return MHD_YES;
        cleanup_free char *k = utf8_escape_invalid(key, strlen(key));
        (void)snprintf(c->msg, c->msglen, "query parameter '%.64s' %s", k, why);
        return MHD_NO;
}

static enum MHD_Result check_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
        struct input_check *c = cls;
        (void)kind;

        if (utf8_is_valid(key, strlen(key)) && (!value || utf8_is_valid(value, strlen(value))))
                return MHD_YES;
        cleanup_free char *k = utf8_escape_invalid(key, strlen(key));
        (void)snprintf(c->msg, c->msglen, "header '%.64s' is not valid UTF-8", k);
        return MHD_NO;
}

int http_req_check_input(struct http_req *r, char *msg, size_t msglen)
{
        struct input_check c = { .decode = !is_proxy_path(r), .msg = msg, .msglen = msglen };
        size_t nseg = r->passthrough ? 0 : is_proxy_path(r) ? 4 : SIZE_MAX;
        const char *why = NULL;
        const char *p = r->raw_path;

        msg[0] = '\0';
        if (!utf8_is_valid(p, strlen(p))) {
                (void)snprintf(msg, msglen, "request path is not valid UTF-8");
                return -EINVAL;
        }
        /* Segment by segment, as urlpath_split() cut them. */
        if (*p == '/')
                p++;
        for (size_t i = 0; i < nseg && *p; i++) {
                size_t l = strcspn(p, "/");
                if (!decoded_ok(p, l, false, &why)) {
                        (void)snprintf(msg, msglen, "request path segment %zu %s", i + 1, why);
                        return -EINVAL;
                }
                p += l;
                if (*p == '/')
                        p++;
        }
        (void)MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_query_cb, &c);
        if (!msg[0])
                (void)MHD_get_connection_values(r->conn, MHD_HEADER_KIND, check_header_cb, &c);
        return msg[0] ? -EINVAL : 0;
}

/* ---- accessors ---- */

const char *http_header(struct http_req *r, const char *name)
{
        return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct header_iter {
        void (*fn)(const char *k, const char *v, void *ud);
        void *ud;
};

static enum MHD_Result header_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
        struct header_iter *it = cls;
        (void)kind;
        it->fn(key, value ? value : "", it->ud);
        return MHD_YES;
}

void http_header_foreach(struct http_req *r, void (*fn)(const char *k, const char *v, void *ud),
                         void *ud)
{
        struct header_iter it = { .fn = fn, .ud = ud };
        (void)MHD_get_connection_values(r->conn, MHD_HEADER_KIND, header_iter_cb, &it);
}

struct query_iter {
        void (*fn)(const char *k, const char *v, void *ud);
        void *ud;
};

static enum MHD_Result query_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
        struct query_iter *it = cls;
        (void)kind;
        /* The server's no-op unescape callback leaves keys and values raw: decode here. */
        cleanup_free char *k = pct_decode(key, strlen(key), true, NULL);
        cleanup_free char *v = value ? pct_decode(value, strlen(value), true, NULL) : xstrdup("");
        it->fn(k, v, it->ud);
        return MHD_YES;
}

void http_query_foreach(struct http_req *r, void (*fn)(const char *k, const char *v, void *ud),
                        void *ud)
{
        struct query_iter it = { .fn = fn, .ud = ud };
        (void)MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_iter_cb, &it);
}

struct query_find {
        const char *name;
        char *first;
        char **list;
        size_t n;
        bool want_list;
};

static void query_find_cb(const char *k, const char *v, void *ud)
{
        struct query_find *q = ud;
        if (!streq(k, q->name))
                return;
        if (!q->want_list) {
                if (!q->first)
                        q->first = xstrdup(v);
                return;
        }
        const char *p = v;
        for (;;) {
                const char *c = strchr(p, ',');
                size_t l = c ? (size_t)(c - p) : strlen(p);
                if (l > 0 && q->n < 1024) {
                        q->list = xrealloc(q->list, (q->n + 2) * sizeof(char *));
                        q->list[q->n++] = xstrndup(p, l);
                        q->list[q->n] = NULL;
                }
                if (!c)
                        break;
                p = c + 1;
        }
}

const char *http_query(struct http_req *r, const char *name)
{
        struct query_find q = { .name = name };
        http_query_foreach(r, query_find_cb, &q);
        if (!q.first)
                return NULL;
        /* The request keeps ownership, so callers can use the value like a header's. */
        r->owned = xrealloc(r->owned, (r->nowned + 1) * sizeof(char *));
        r->owned[r->nowned++] = q.first;
        return q.first;
}

char **http_query_list(struct http_req *r, const char *name)
{
        struct query_find q = { .name = name, .want_list = true };
        http_query_foreach(r, query_find_cb, &q);
        if (!q.list)
                q.list = xzalloc(sizeof(char *));
        return q.list;
}

int http_client_socket(struct http_req *r)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        return ci ? ci->connect_fd : -1;
}

bool http_client_gone(int fd)
{
        if (fd < 0)
                return false;
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void http_client_address(struct http_req *r, char *out, size_t n)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        (void)snprintf(out, n, "unknown");
        if (!ci || !ci->client_addr)
                return;
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
                (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                                out, (socklen_t)n);
        else if (sa->sa_family == AF_INET6)
                (void)inet_ntop(AF_INET6,
                                &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                                (socklen_t)n);
}
