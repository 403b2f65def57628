/* SPDX-License-Identifier: MIT */
/* agent_stream.c — agent D frames as an HTTP response body (agent_stream.h). */
#include "coved/agent_stream.h"
#include "lib/frame.h"
#include "lib/macro.h"

#include <poll.h>
#include <sys/socket.h>

#define AGENT_STREAM_BLOCK   (256 * 1024) /* libmicrohttpd's buffer per call of the reader */
#define AGENT_STREAM_IDLE_MS (60 * 1000)  /* the agent silent this long: cut the body */

/* The payload of each D frame is received straight into libmicrohttpd's buffer (no copy in
 * coved); only the 5-byte frame headers are read here. */
struct agent_stream {
        int fd;                 /* owned: agent connection, read without blocking */
        struct http_wait *wait; /* owned: waits for the agent without holding a thread */
        unsigned char hdr[FRAME_HEADER_SIZE];
        size_t hdr_len; /* header bytes of the next frame received so far */
        size_t left;    /* payload bytes of the current D frame not yet received */
        bool broken;    /* not a D frame, too long, EOF or an error: cut the body */
};

/* One non-blocking recv: > 0 bytes, 0 would block, < 0 the stream is broken. */
static ssize_t stream_recv(struct agent_stream *d, void *p, size_t n)
{
        for (;;) {
                ssize_t k = recv(d->fd, p, n, MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (k <= 0) {
                        d->broken = true;
                        return -EPIPE;
                }
                return k;
        }
}

/* Runs on a server thread: never blocks (http_wait_fd() waits for the agent). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
        struct agent_stream *d = cls;
        ssize_t k;
        (void)pos;

        enum http_wake why = http_wait_reason(d->wait);
        if (why == HTTP_WAKE_TIMEOUT || why == HTTP_WAKE_CLIENT_GONE || why == HTTP_WAKE_STOPPING)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        while (d->left == 0) {
                if (d->broken)
                        return MHD_CONTENT_READER_END_WITH_ERROR; /* short file: cut the body */
                k = stream_recv(d, d->hdr + d->hdr_len, FRAME_HEADER_SIZE - d->hdr_len);
                if (k < 0)
                        continue;
                if (k == 0)
                        return http_wait_fd(d->wait, d->fd, POLLIN, AGENT_STREAM_IDLE_MS);
                d->hdr_len += (size_t)k;
                if (d->hdr_len < FRAME_HEADER_SIZE)
                        continue;
                d->hdr_len = 0;
                d->left = frame_header_length(d->hdr);
                if (d->hdr[0] != FRAME_DATA || d->left > FRAME_MAX_PAYLOAD) {
                        d->left = 0;
                        d->broken = true;
                }
        }
        k = stream_recv(d, out, MIN(max, d->left));
        if (k < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (k == 0)
                return http_wait_fd(d->wait, d->fd, POLLIN, AGENT_STREAM_IDLE_MS);
        d->left -= (size_t)k;
        return k;
}

static void stream_free(void *cls)
{
        struct agent_stream *d = cls;
        if (d->fd >= 0)
                (void)close(d->fd);
        http_wait_free(d->wait);
        free(d);
}

struct MHD_Response *agent_stream_response(struct http_req *r, int fd, uint64_t n)
{
        struct agent_stream *d = xzalloc(sizeof(*d));
        d->fd = fd;
        d->wait = http_wait_new(r);
        struct MHD_Response *resp = MHD_create_response_from_callback(n, AGENT_STREAM_BLOCK,
                                                                      stream_read, d, stream_free);
        if (!resp)
                stream_free(d);
        return resp;
}
