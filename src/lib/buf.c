/* SPDX-License-Identifier: MIT */
#include "buf.h"
#include "macro.h"

void buf_init(struct buf *b, size_t max)
{
        b->ptr = NULL;
        b->len = 0;
        b->cap = 0;
        b->max = max;
}

void buf_release(struct buf *b)
{
        free(b->ptr);
        b->ptr = NULL;
        b->len = 0;
        b->cap = 0;
}

void buf_reset(struct buf *b)
{
        b->len = 0;
        if (b->ptr)
                b->ptr[0] = '\0';
}

int buf_add(struct buf *b, const void *p, size_t n)
{
        if (n > b->max || b->len + 1 > b->max - n) {
                buf_release(b);
                return -E2BIG;
        }
        size_t need = b->len + n + 1;
        if (need > b->cap) {
                size_t cap = b->cap ? b->cap : 64;
                while (cap < need)
                        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
                if (cap > b->max)
                        cap = b->max;
                char *q = realloc(b->ptr, cap);
                if (!q) {
                        buf_release(b);
                        return -ENOMEM;
                }
                b->ptr = q;
                b->cap = cap;
        }
        if (n)
                memcpy(b->ptr + b->len, p, n);
        b->len += n;
        b->ptr[b->len] = '\0';
        return 0;
}

int buf_adds(struct buf *b, const char *s)
{
        return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
        return buf_add(b, &c, 1);
}

int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
        char small[256];
        va_list aq;

        va_copy(aq, ap);
        int n = vsnprintf(small, sizeof(small), fmt, aq);
        va_end(aq);
        if (n < 0) {
                buf_release(b);
                return -EINVAL;
        }
        if ((size_t)n < sizeof(small))
                return buf_add(b, small, (size_t)n);
        cleanup_free char *big = xmalloc((size_t)n + 1);
        (void)vsnprintf(big, (size_t)n + 1, fmt, ap);
        return buf_add(b, big, (size_t)n);
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = buf_vaddf(b, fmt, ap);
        va_end(ap);
        return r;
}

const char *buf_str(const struct buf *b)
{
        return b->ptr ? b->ptr : "";
}

char *buf_take(struct buf *b, size_t *ret_len)
{
        char *p = b->ptr ? b->ptr : xstrdup("");
        if (ret_len)
                *ret_len = b->len;
        size_t max = b->max;
        buf_init(b, max);
        return p;
}
