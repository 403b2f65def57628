/* SPDX-License-Identifier: MIT */
#include "frame.h"
#include "fdutil.h"
#include "macro.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

void frame_header_encode(unsigned char out[FRAME_HEADER_SIZE], uint8_t kind, uint32_t len)
{
        out[0] = kind;
        out[1] = (unsigned char)(len >> 24);
        out[2] = (unsigned char)(len >> 16);
        out[3] = (unsigned char)(len >> 8);
        out[4] = (unsigned char)len;
}

uint32_t frame_header_length(const unsigned char h[FRAME_HEADER_SIZE])
{
        return (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
}

/* ---- incremental decoder ---- */

void frame_decoder_init(struct frame_decoder *d, size_t max_payload, frame_check_fn check)
{
        *d = (struct frame_decoder){ .max_payload = max_payload, .check = check };
        buf_init(&d->payload, max_payload + 1);
}

void frame_decoder_release(struct frame_decoder *d)
{
        buf_release(&d->payload);
}

bool frame_decoder_idle(const struct frame_decoder *d)
{
        return d->hdr_len == 0 && !d->in_payload;
}

int frame_decoder_feed(struct frame_decoder *d, const char *p, size_t n, frame_fn fn, void *ud)
{
        while (n > 0 || (d->in_payload && d->need == 0)) {
                if (!d->in_payload) {
                        size_t k = MIN(n, FRAME_HEADER_SIZE - d->hdr_len);
                        memcpy(d->hdr + d->hdr_len, p, k);
                        d->hdr_len += k;
                        p += k;
                        n -= k;
                        if (d->hdr_len < FRAME_HEADER_SIZE)
                                break;
                        uint32_t len = frame_header_length(d->hdr);
                        if (d->check) {
                                int r = d->check(ud, d->hdr[0], len);
                                if (r < 0)
                                        return r;
                        }
                        if (len > d->max_payload)
                                return -E2BIG;
                        d->need = len;
                        d->in_payload = true;
                        buf_reset(&d->payload);
                }
                size_t k = MIN(n, d->need);
                if (k > 0) {
                        int r = buf_add(&d->payload, p, k); /* ≤ max_payload: cannot fail */
                        if (r < 0)
                                return r;
                        p += k;
                        n -= k;
                        d->need -= k;
                }
                if (d->need == 0) {
                        uint8_t kind = d->hdr[0];
                        d->in_payload = false;
                        d->hdr_len = 0;
                        int r = fn(ud, kind, buf_str(&d->payload), d->payload.len);
                        buf_reset(&d->payload);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- blocking file descriptors ---- */

/* One frame; pass_fd >= 0 rides on its first byte (SCM_RIGHTS). */
static int write_frame(int fd, char kind, const void *p, size_t n, int pass_fd)
{
        unsigned char h[FRAME_HEADER_SIZE];
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } cm;

        if (n > FRAME_MAX_PAYLOAD)
                return -E2BIG;
        frame_header_encode(h, (uint8_t)kind, (uint32_t)n);

        struct iovec iov[2] = { { h, sizeof(h) }, { (void *)p, n } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n ? 2 : 1 };
        if (pass_fd >= 0) {
                memset(&cm, 0, sizeof(cm));
                mh.msg_control = cm.buf;
                mh.msg_controllen = sizeof(cm.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        size_t total = sizeof(h) + n;
        while (total > 0) {
                ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (w < 0 && errno == ENOTSOCK && pass_fd < 0) {
                        w = writev(fd, mh.msg_iov, (int)mh.msg_iovlen);
                }
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                mh.msg_control = NULL; /* sent with the first byte */
                mh.msg_controllen = 0;
                total -= (size_t)w;
                while (w > 0 && mh.msg_iovlen > 0) {
                        if ((size_t)w >= mh.msg_iov[0].iov_len) {
                                w -= (ssize_t)mh.msg_iov[0].iov_len;
                                mh.msg_iov++;
                                mh.msg_iovlen--;
                        } else {
                                mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + w;
                                mh.msg_iov[0].iov_len -= (size_t)w;
                                w = 0;
                        }
                }
        }
        return 0;
}

int frame_write(int fd, char kind, const void *p, size_t n)
{
        return write_frame(fd, kind, p, n, -1);
}

int frame_write_fd(int sock, char kind, const void *p, size_t n, int pass_fd)
{
        if (pass_fd < 0)
                return -EBADF;
        return write_frame(sock, kind, p, n, pass_fd);
}

/* Reads the 5 header bytes, taking at most one passed descriptor into *ret_fd (when ret_fd
 * is not NULL; others are closed). Like read_full(): n, less on EOF, -errno. */
static ssize_t read_header(int fd, unsigned char h[FRAME_HEADER_SIZE], int *ret_fd)
{
        size_t got = 0;

        if (!ret_fd)
                return read_full(fd, h, FRAME_HEADER_SIZE);
        while (got < FRAME_HEADER_SIZE) {
                union {
                        char buf[CMSG_SPACE(4 * sizeof(int))];
                        struct cmsghdr align;
                } cm;
                struct iovec iov = { h + got, FRAME_HEADER_SIZE - got };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = cm.buf,
                                     .msg_controllen = sizeof(cm.buf) };
                ssize_t k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                                continue;
                        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < nfd; i++) {
                                int x;
                                memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                if (*ret_fd < 0)
                                        *ret_fd = x;
                                else
                                        fd_close_foreign(x);
                        }
                }
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        return (ssize_t)got;
}

static int read_frame(int fd, char *ret_kind, struct buf *payload, int *ret_fd)
{
        unsigned char h[FRAME_HEADER_SIZE];
        ssize_t r = read_header(fd, h, ret_fd);
        if (r < 0)
                return (int)r;
        if (r == 0)
                return 0;
        if (r < (ssize_t)sizeof(h))
                return -EPROTO;
        if (h[0] != FRAME_JSON && h[0] != FRAME_DATA && h[0] != FRAME_END)
                return -EPROTO;
        size_t n = frame_header_length(h);
        if (n > FRAME_MAX_PAYLOAD)
                return -EPROTO;

        buf_reset(payload);
        payload->max = FRAME_MAX_PAYLOAD + 1;
        char chunk[16384];
        while (n > 0) {
                size_t want = MIN(n, sizeof(chunk));
                r = read_full(fd, chunk, want);
                if (r < 0)
                        return (int)r;
                if ((size_t)r < want)
                        return -EPROTO;
                int q = buf_add(payload, chunk, want);
                if (q < 0)
                        return q;
                n -= want;
        }
        if (!payload->ptr) {
                int q = buf_add(payload, "", 0);
                if (q < 0)
                        return q;
        }
        *ret_kind = (char)h[0];
        return 1;
}

int frame_read(int fd, char *ret_kind, struct buf *payload)
{
        return read_frame(fd, ret_kind, payload, NULL);
}

int frame_read_fd(int sock, char *ret_kind, struct buf *payload, int *ret_fd)
{
        *ret_fd = -1;
        int r = read_frame(sock, ret_kind, payload, ret_fd);
        if (r <= 0) {
                fd_close_foreign(*ret_fd);
                *ret_fd = -1;
        }
        return r;
}
