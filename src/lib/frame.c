/* SPDX-License-Identifier: MIT */
#include "frame.h"
#include "fdutil.h"
#include "macro.h"

#include <sys/socket.h>
#include <sys/uio.h>

int frame_write(int fd, char kind, const void *p, size_t n)
{
        unsigned char h[FRAME_HEADER_SIZE];

        if (n > FRAME_MAX_PAYLOAD)
                return -E2BIG;
        h[0] = (unsigned char)kind;
        h[1] = (unsigned char)(n >> 24);
        h[2] = (unsigned char)(n >> 16);
        h[3] = (unsigned char)(n >> 8);
        h[4] = (unsigned char)n;

        struct iovec iov[2] = { { h, sizeof(h) }, { (void *)p, n } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n ? 2 : 1 };
        size_t total = sizeof(h) + n;
        while (total > 0) {
                ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (w < 0 && errno == ENOTSOCK) {
                        w = writev(fd, mh.msg_iov, (int)mh.msg_iovlen);
                }
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
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

int frame_read(int fd, char *ret_kind, struct buf *payload)
{
        unsigned char h[FRAME_HEADER_SIZE];
        ssize_t r = read_full(fd, h, sizeof(h));
        if (r < 0)
                return (int)r;
        if (r == 0)
                return 0;
        if (r < (ssize_t)sizeof(h))
                return -EPROTO;
        if (h[0] != FRAME_JSON && h[0] != FRAME_DATA && h[0] != FRAME_END)
                return -EPROTO;
        size_t n = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
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
