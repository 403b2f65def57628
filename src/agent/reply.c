/* SPDX-License-Identifier: MIT */
/*
 * reply.c — what every handler writes back on its connection (agent.h): unary replies (one
 * frame, or a header and data frames when the JSON is larger), errors, stream frames, the
 * client-gone check of a stream's poll loop, and the connection's reply dialect.
 */
#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/frame.h"
#include "lib/macro.h"

#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

/* A unary response whose JSON does not fit one frame is sent as data frames (see
 * agent_reply_ok); this caps that serialisation (two 16 MiB streams, escaped). */
#define AGENT_REPLY_MAX   (200 * 1024 * 1024) /* = coved AGENT_REPLY_BODY_MAX */
#define AGENT_REPLY_CHUNK (256 * 1024)

_Thread_local bool agent_e2b_dialect;

static int write_json_frame(int fd, json_t *j)
{
        int r = frame_write_json(fd, j);
        json_decref(j);
        return r;
}

int agent_reply_ok(int fd, json_t *body)
{
        struct buf b;
        int r;

        if (!body)
                body = json_object();
        json_t *m = json_pack("{s:i, s:O}", "status", 200, "body", body);
        if (!m) {
                json_decref(body);
                return -ENOMEM;
        }
        buf_init(&b, FRAME_MAX_PAYLOAD);
        r = json_to_buf(m, &b);
        json_decref(m);
        if (r == 0) {
                json_decref(body);
                r = frame_write(fd, FRAME_JSON, buf_str(&b), b.len);
                buf_release(&b);
                return r;
        }
        if (r != -E2BIG) {
                json_decref(body);
                return agent_reply_err(fd, 500, "cannot serialise response");
        }

        /* Too big for one frame (a 16 MiB GetResult or run output): the header says so and the
         * body's JSON text follows as D frames, then E. */
        buf_init(&b, AGENT_REPLY_MAX);
        r = json_to_buf(body, &b);
        json_decref(body);
        if (r < 0)
                return agent_reply_err(fd, 500, "response too large");
        r = write_json_frame(fd, json_pack("{s:i, s:b, s:I}", "status", 200, "bodyFollows", 1,
                                           "bodyBytes", (json_int_t)b.len));
        for (size_t o = 0; r == 0 && o < b.len; o += AGENT_REPLY_CHUNK)
                r = frame_write(fd, FRAME_DATA, b.ptr + o,
                                MIN((size_t)AGENT_REPLY_CHUNK, b.len - o));
        if (r == 0)
                r = frame_write(fd, FRAME_END, NULL, 0);
        buf_release(&b);
        return r;
}

int agent_reply_err(int fd, int status, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return write_json_frame(fd, json_pack("{s:i, s:s}", "status", status, "message", msg));
}

int agent_stream_begin(int fd)
{
        return write_json_frame(fd, json_pack("{s:i, s:b}", "status", 200, "stream", 1));
}

int agent_stream_msg(int fd, json_t *m)
{
        return write_json_frame(fd, json_pack("{s:o}", "msg", m));
}

int agent_stream_end(int fd, const char *err_code, const char *err_msg)
{
        if (!err_code)
                return write_json_frame(fd, json_pack("{s:b}", "end", 1));
        return write_json_frame(fd, json_pack("{s:b, s:{s:s, s:s}}", "end", 1, "error", "code",
                                              err_code, "message", err_msg ? err_msg : ""));
}

bool agent_client_gone(int fd, short revents)
{
        char junk[256];

        if (revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))
                return true;
        if (revents & POLLIN) {
                ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        return true;
        }
        return false;
}
