/* SPDX-License-Identifier: MIT */
#include "coved/agent_client.h"
#include "coved/engine/engine.h"
#include "lib/frame.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#define AGENT_DATA_CHUNK FRAME_MAX_PAYLOAD /* D frames of uploads: the agent splices each */

static int unreachable(struct cove_err **err, int errnum)
{
        if (errnum == EAGAIN || errnum == EWOULDBLOCK || errnum == ETIMEDOUT)
                return cove_err_set_status(err, 503, ETIMEDOUT, "sandbox agent timed out");
        return cove_err_set_status(err, 503, errnum ? errnum : ECONNRESET,
                                   "sandbox agent unreachable");
}

void agent_reply_release(struct agent_reply *r)
{
        if (!r)
                return;
        json_decref(r->frame);
        free(r->body_text);
        *r = (struct agent_reply){ 0 };
}

int agent_client_set_timeout(int fd, int timeout_ms)
{
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        return 0;
}

void agent_client_set_bulk(int fd)
{
        int n = AGENT_BULK_SNDBUF;
        /* SO_SNDBUFFORCE: past net.core.wmem_max (coved runs as root); SO_SNDBUF otherwise. */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof(n)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
}

int agent_client_connect(struct coved *cd, const char *id, int io_timeout_ms, struct cove_err **err)
{
        cleanup_err struct cove_err *e = NULL;
        cleanup_close int fd = engine_agent_connect(cd, id, &e);

        if (fd < 0)
                return e && e->errnum == ENAMETOOLONG ? cove_err_set(err, e->errnum, "%s", e->msg)
                                                      : unreachable(err, -fd);
        if (agent_client_set_timeout(fd, io_timeout_ms) < 0)
                return cove_err_set(err, errno, "set agent socket timeouts: %m");
        return TAKE_FD(fd);
}

int agent_client_send_json(int fd, const json_t *j, struct cove_err **err)
{
        int r = frame_write_json(fd, j);
        if (r == -E2BIG)
                return cove_err_set(err, E2BIG, "agent request too large");
        if (r < 0)
                return unreachable(err, -r);
        return 0;
}

int agent_client_send_data(int fd, const void *p, size_t n, struct cove_err **err)
{
        const char *c = p;
        while (n > 0) {
                size_t k = MIN(n, (size_t)AGENT_DATA_CHUNK);
                int r = frame_write(fd, FRAME_DATA, c, k);
                if (r < 0)
                        return unreachable(err, -r);
                c += k;
                n -= k;
        }
        return 0;
}

int agent_client_send_end(int fd, struct cove_err **err)
{
        int r = frame_write(fd, FRAME_END, NULL, 0);
        if (r < 0)
                return unreachable(err, -r);
        return 0;
}

int agent_client_read_frame(int fd, char *ret_kind, struct buf *payload, struct cove_err **err)
{
        int r = frame_read(fd, ret_kind, payload);
        if (r == 0)
                return unreachable(err, ECONNRESET);
        if (r < 0)
                return unreachable(err, r == -EPROTO ? EPROTO : -r);
        return 0;
}

int agent_client_read_json(int fd, json_t **ret, struct cove_err **err)
{
        cleanup_buf struct buf b = { 0 };
        char kind;
        json_error_t jerr;

        buf_init(&b, FRAME_MAX_PAYLOAD + 1);
        int r = agent_client_read_frame(fd, &kind, &b, err);
        if (r < 0)
                return r;
        if (kind != FRAME_JSON)
                return unreachable(err, EPROTO);
        /* Process output may hold NUL bytes ("\u0000" in a run reply's stdout). */
        json_t *j = json_loadb(buf_str(&b), b.len, JSON_ALLOW_NUL, &jerr);
        if (!j || !json_is_object(j)) {
                json_decref(j);
                return unreachable(err, EPROTO);
        }
        *ret = j;
        return 0;
}

int agent_client_read_reply(int fd, struct agent_reply *ret, struct cove_err **err)
{
        struct agent_reply rep = { 0 };
        int64_t st;
        int r;

        r = agent_client_read_json(fd, &rep.frame, err);
        if (r < 0)
                return r;
        if (!json_get_integer(json_object_get(rep.frame, "status"), &st) || st < 100 || st > 599) {
                agent_reply_release(&rep);
                return unreachable(err, EPROTO);
        }
        rep.status = (int)st;
        rep.message = json_string_value(json_object_get(rep.frame, "message"));
        rep.body = json_object_get(rep.frame, "body");

        if (json_is_true(json_object_get(rep.frame, "bodyFollows"))) {
                cleanup_buf struct buf text = { 0 };
                cleanup_buf struct buf chunk = { 0 };
                buf_init(&text, AGENT_REPLY_BODY_MAX);
                buf_init(&chunk, FRAME_MAX_PAYLOAD + 1);
                for (;;) {
                        char kind;
                        r = agent_client_read_frame(fd, &kind, &chunk, err);
                        if (r < 0) {
                                agent_reply_release(&rep);
                                return r;
                        }
                        if (kind == FRAME_END)
                                break;
                        if (kind != FRAME_DATA || buf_add(&text, chunk.ptr, chunk.len) < 0) {
                                agent_reply_release(&rep);
                                return kind != FRAME_DATA
                                               ? unreachable(err, EPROTO)
                                               : cove_err_set(err, E2BIG, "agent reply too large");
                        }
                }
                if (text.len == 0 && buf_add(&text, "{}", 2) < 0) {
                        agent_reply_release(&rep);
                        return -ENOMEM;
                }
                rep.body_text = buf_take(&text, &rep.body_len);
                rep.body = NULL;
        }
        *ret = rep;
        return 0;
}

int agent_client_call(struct coved *cd, const char *id, const json_t *req, int timeout_ms,
                      struct agent_reply *ret, struct cove_err **err)
{
        cleanup_close int fd = -1;
        cleanup_err struct cove_err *send_err = NULL;

        fd = agent_client_connect(cd, id, timeout_ms, err);
        if (fd < 0)
                return fd;
        /* On a send failure the agent may still have answered (and closed) before reading
         * everything: its reply wins. */
        if (agent_client_send_json(fd, req, &send_err) < 0 && send_err->errnum == E2BIG)
                return cove_err_set(err, E2BIG, "%s", send_err->msg);
        return agent_client_read_reply(fd, ret, err);
}

int agent_client_ping(struct coved *cd, const char *id, int timeout_ms, struct cove_err **err)
{
        int64_t deadline = time_mono_ms() + timeout_ms;
        json_t *req = json_pack("{s:s}", "op", "ping");
        int r;

        for (;;) {
                struct agent_reply rep = { 0 };
                cleanup_err struct cove_err *e = NULL;
                int64_t left = deadline - time_mono_ms();

                r = agent_client_call(cd, id, req, (int)MAX(MIN(left, 5000), 100), &rep, &e);
                if (r == 0 && rep.status == 200) {
                        agent_reply_release(&rep);
                        json_decref(req);
                        return 0;
                }
                if (r == 0)
                        r = cove_err_set_status(&e, 503, EIO, "agent ping failed with status %d",
                                                rep.status);
                agent_reply_release(&rep);
                if (time_mono_ms() >= deadline) {
                        json_decref(req);
                        return cove_err_set_status(err, 503, e ? e->errnum : EIO,
                                                   "sandbox agent did not answer within %d ms: %s",
                                                   timeout_ms, e ? e->msg : "no reply");
                }
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                (void)nanosleep(&ts, NULL);
        }
}
