/* SPDX-License-Identifier: MIT */
/* body.c — request bodies: limits counted as bytes arrive, gzip, buffering or streaming to the
 * route. */
#include "coved/http/body.h"
#include "lib/frame.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <zlib.h>

#define GZ_OUT_BLOCK (64 * 1024)

bool http_body_length(struct http_req *r, uint64_t *ret_len)
{
        const char *cl = http_header(r, "Content-Length");
        return cl && !http_header(r, "Content-Encoding") && safe_atou64(cl, ret_len) == 0;
}

void http_body_set_limit(struct http_req *r, uint64_t max)
{
        r->body_limit = max;
        r->limit_status = 0;
        r->limit_msg = NULL;
}

void http_body_set_limit_reply(struct http_req *r, uint64_t max, unsigned status, const char *msg)
{
        r->body_limit = max;
        r->limit_status = status;
        r->limit_msg = msg;
}

static int too_large(struct http_req *r)
{
        if (r->limit_status && r->limit_msg)
                return http_reply_error(r, r->limit_status, "%s", r->limit_msg), -E2BIG;
        return http_reply_error(r, 413, "request body too large (limit %llu bytes)",
                                (unsigned long long)r->body_limit),
               -E2BIG;
}

static bool is_proxy(const struct http_req *r)
{
        return r->runtime && r->nsegs >= 4 && streq(r->segs[2], "proxy");
}

static int setup_gzip(struct http_req *r)
{
        const char *ce = http_header(r, "Content-Encoding");
        if (!ce || !*ce || strcasecmp(ce, "identity") == 0)
                return 0;
        if (r->passthrough || (r->route && (r->route->flags & ROUTE_RAW_BODY)))
                return 0;
        /* Runtime proxy paths /envd/{id}/proxy/{port}/… pass bodies through byte for byte
         * (README §3); decided here because the body is set up before the route's begin(). */
        if (is_proxy(r))
                return 0;
        if (strcasecmp(ce, "gzip") != 0)
                return http_reply_error(r, 415, "unsupported content encoding '%s'", ce), -EINVAL;
        z_stream *z = xzalloc(sizeof(*z));
        if (inflateInit2(z, 15 + 16) != Z_OK) {
                free(z);
                return http_reply_error(r, 500, "cannot initialise gzip decoder"), -EIO;
        }
        r->gz = z;
        return 0;
}

int http_body_setup(struct http_req *r)
{
        r->body_limit = r->route->body_max ? r->route->body_max : BUF_MAX_HTTP_BODY;
        r->body.max = r->body_limit;
        return setup_gzip(r);
}

int http_body_check_length(struct http_req *r)
{
        uint64_t len;

        if (r->replied || !r->body_limit || !http_body_length(r, &len) || len <= r->body_limit)
                return 0;
        return too_large(r);
}

static int deliver(struct http_req *r, const char *p, size_t n)
{
        if (r->body_limit && (n > r->body_limit || r->body_bytes > r->body_limit - n))
                return too_large(r);
        r->body_bytes += n;
        if (r->body_cb) {
                int q = r->body_cb(r, p, n);
                if (q < 0 && !r->replied)
                        http_reply_error(r, 500, "internal error");
                return r->replied ? -EIO : 0;
        }
        if (buf_add(&r->body, p, n) < 0)
                return http_reply_error(r, 413, "request body too large (limit %zu bytes)",
                                        r->body.max),
                       -E2BIG;
        return 0;
}

int http_body_feed(struct http_req *r, const char *p, size_t n)
{
        /* Compressed bytes are capped too: a gzip stream that decodes to nothing (empty
         * blocks) must not run forever. Compression can grow incompressible data a little. */
        uint64_t raw_max = r->body_limit + r->body_limit / 64 + 64 * 1024;
        if (r->body_limit && (n > raw_max || r->raw_bytes > raw_max - n))
                return too_large(r);
        r->raw_bytes += n;
        if (!r->gz)
                return deliver(r, p, n);

        z_stream *z = r->gz;
        unsigned char out[GZ_OUT_BLOCK];
        z->next_in = (unsigned char *)p;
        z->avail_in = (uInt)n;
        while (z->avail_in > 0) {
                if (r->gz_ended) { /* another member (concatenated gzip) */
                        (void)inflateReset(z);
                        r->gz_ended = false;
                }
                z->next_out = out;
                z->avail_out = sizeof(out);
                int zr = inflate(z, Z_NO_FLUSH);
                if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                        return http_reply_error(r, 400, "invalid gzip request body"), -EINVAL;
                size_t got = sizeof(out) - z->avail_out;
                /* The limit applies to decoded bytes, checked per block: a gzip bomb stops
                 * here, having cost one block of memory. */
                if (got > 0) {
                        int q = deliver(r, (const char *)out, got);
                        if (q < 0)
                                return q;
                }
                if (zr == Z_STREAM_END)
                        r->gz_ended = true;
                else if (zr == Z_BUF_ERROR && got == 0)
                        break;
        }
        return 0;
}

void http_body_set_sink(struct http_req *r, int fd, int timeout_ms)
{
        r->sink_on = true;
        r->sink_fd = fd;
        r->sink_timeout_ms = timeout_ms;
}

bool http_body_sink_failed(const struct http_req *r)
{
        return r->sink_failed;
}

bool http_body_sinking(const struct http_req *r)
{
        return r->sink_on && !r->gz;
}

/* The next D frame's length: a body of known length is framed in FRAME_MAX_PAYLOAD pieces
 * that span libmicrohttpd's chunks (~32 KiB each), so that the agent handles few large frames;
 * otherwise (chunked) one frame per chunk. `sent` bytes of the body are framed already. */
static size_t sink_frame_length(struct http_req *r, size_t have, uint64_t sent)
{
        uint64_t len;

        if (http_body_length(r, &len) && len > sent)
                return (size_t)MIN(len - sent, (uint64_t)FRAME_MAX_PAYLOAD);
        return MIN(have, (size_t)FRAME_MAX_PAYLOAD);
}

ssize_t http_body_sink_write(struct http_req *r, const char *p, size_t n)
{
        size_t off = 0;

        if (r->body_limit && (n > r->body_limit || r->body_bytes > r->body_limit - n))
                return too_large(r);
        while (off < n && !r->sink_failed) {
                if (r->sink_left == 0) {
                        r->sink_left = sink_frame_length(r, n - off, r->body_bytes + off);
                        frame_header_encode(r->sink_hdr, FRAME_DATA, (uint32_t)r->sink_left);
                        r->sink_hdr_off = 0;
                }
                struct iovec iov[2] = {
                        { r->sink_hdr + r->sink_hdr_off, FRAME_HEADER_SIZE - r->sink_hdr_off },
                        { (void *)(p + off), MIN(r->sink_left, n - off) },
                };
                struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
                if (iov[0].iov_len == 0) {
                        msg.msg_iov = &iov[1];
                        msg.msg_iovlen = 1;
                }
                ssize_t w = sendmsg(r->sink_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                if (w < 0) {
                        r->sink_failed = true; /* the peer's reply says why */
                        break;
                }
                size_t h = MIN((size_t)w, iov[0].iov_len);
                r->sink_hdr_off += h;
                off += (size_t)w - h;
                r->sink_left -= (size_t)w - h;
        }
        if (r->sink_failed)
                off = n;
        r->raw_bytes += off;
        r->body_bytes += off;
        return (ssize_t)off;
}

int http_body_finish(struct http_req *r)
{
        if (r->gz && r->raw_bytes > 0 && !r->gz_ended)
                return http_reply_error(r, 400, "invalid gzip request body (truncated)"), -EINVAL;
        return 0;
}

int http_body_json(struct http_req *r, bool empty_ok, json_t **ret)
{
        cleanup_err struct cove_err *err = NULL;
        if (json_parse(buf_str(&r->body), r->body.len, empty_ok, ret, &err) < 0) {
                http_reply_err(r, err);
                return -EINVAL;
        }
        return 0;
}
