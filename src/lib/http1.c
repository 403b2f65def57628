/* SPDX-License-Identifier: MIT */
#include "http1.h"
#include "macro.h"

#include <strings.h>

/* ---- heads ---- */

size_t http1_head_end(const char *p, size_t n)
{
        for (size_t i = 0; i + 1 < n; i++) {
                if (p[i] != '\n')
                        continue;
                if (p[i + 1] == '\n')
                        return i + 2;
                if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
                        return i + 3;
        }
        return 0;
}

static char *trim(char *s, char *e)
{
        while (s < e && (*s == ' ' || *s == '\t'))
                s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
        *e = '\0';
        return s;
}

int http1_parse_response_head(char *p, size_t n, struct http1_head *h)
{
        char *s = p, *e = p + n;
        char *nl = memchr(s, '\n', n);

        h->nhdr = 0;
        h->status = 0;
        /* RFC 9112 §2.2, §5.5: no NUL, and a CR only right before LF. Values are handed on
         * as C strings: a NUL would cut one short, a bare CR would travel on inside it. */
        for (size_t i = 0; i < n; i++)
                if (p[i] == '\0' || (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n')))
                        return -EBADMSG;
        if (!nl || (size_t)(nl - s) < 12 || strncmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ')
                return -EBADMSG;
        unsigned st = 0;
        for (int i = 9; i < 12; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                st = st * 10 + (unsigned)(s[i] - '0');
        }
        if (st < 100 || (nl - s > 12 && s[12] != ' ' && s[12] != '\r'))
                return -EBADMSG;
        h->status = st;
        for (s = nl + 1; s < e;) {
                nl = memchr(s, '\n', (size_t)(e - s));
                if (!nl)
                        return -EBADMSG;
                char *le = nl;
                if (le > s && le[-1] == '\r')
                        le--;
                if (le == s) /* blank line */
                        break;
                if (*s == ' ' || *s == '\t') /* obsolete line folding */
                        return -EBADMSG;
                char *colon = memchr(s, ':', (size_t)(le - s));
                if (!colon || colon == s)
                        return -EBADMSG;
                for (char *c = s; c < colon; c++)
                        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
                                return -EBADMSG;
                if (h->nhdr >= HTTP1_HEADERS_MAX)
                        return -E2BIG;
                *colon = '\0';
                h->name[h->nhdr] = s;
                h->value[h->nhdr] = trim(colon + 1, le);
                h->nhdr++;
                s = nl + 1;
        }
        return 0;
}

const char *http1_head_get(const struct http1_head *h, const char *name)
{
        for (size_t i = 0; i < h->nhdr; i++)
                if (strcasecmp(h->name[i], name) == 0)
                        return h->value[i];
        return NULL;
}

/* ---- chunked bodies ---- */

void http1_chunked_init(struct http1_chunked *c)
{
        *c = (struct http1_chunked){ .state = HTTP1_CH_SIZE };
}

bool http1_chunked_done(const struct http1_chunked *c)
{
        return c->state == HTTP1_CH_DONE;
}

uint64_t http1_chunked_data_left(const struct http1_chunked *c)
{
        return c->state == HTTP1_CH_DATA ? c->remaining : 0;
}

void http1_chunked_data_consumed(struct http1_chunked *c, size_t n)
{
        if (c->state != HTTP1_CH_DATA)
                return;
        c->remaining -= MIN((uint64_t)n, c->remaining);
        if (c->remaining == 0)
                c->state = HTTP1_CH_DATA_END;
}

/* "1a3f[;ext]": hex digits up to ';', space, tab or CR. */
static int chunk_size(const char *s, const char *e, uint64_t *ret)
{
        uint64_t v = 0;
        size_t digits = 0;

        for (; s < e && *s != ';' && *s != ' ' && *s != '\t' && *s != '\r'; s++, digits++) {
                int d = (*s >= '0' && *s <= '9')   ? *s - '0'
                        : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                        : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                                   : -1;
                if (d < 0 || digits >= 15)
                        return -EBADMSG;
                v = v << 4 | (uint64_t)d;
        }
        if (digits == 0)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* A complete line c->line[0..line_len) (LF excluded) in a line state. */
static int chunked_line(struct http1_chunked *c)
{
        const char *s = c->line, *e = c->line + c->line_len;
        bool empty = e == s || (e - s == 1 && *s == '\r');

        switch (c->state) {
        case HTTP1_CH_SIZE:
                if (chunk_size(s, e, &c->remaining) < 0)
                        return -EBADMSG;
                c->state = c->remaining ? HTTP1_CH_DATA : HTTP1_CH_TRAILER;
                return 0;
        case HTTP1_CH_DATA_END:
                if (!empty)
                        return -EBADMSG;
                c->state = HTTP1_CH_SIZE;
                return 0;
        case HTTP1_CH_TRAILER:
                if (++c->trailers > HTTP1_TRAILERS_MAX)
                        return -EBADMSG;
                if (empty)
                        c->state = HTTP1_CH_DONE;
                return 0;
        case HTTP1_CH_DATA:
        case HTTP1_CH_DONE:
        default:
                return -EBADMSG;
        }
}

ssize_t http1_chunked_feed(struct http1_chunked *c, const char *in, size_t n, size_t max_data,
                           const char **ret_data, size_t *ret_len)
{
        size_t i = 0;

        *ret_data = NULL;
        *ret_len = 0;
        while (i < n && c->state != HTTP1_CH_DONE) {
                if (c->state == HTTP1_CH_DATA) {
                        size_t k = (size_t)MIN((uint64_t)(n - i), c->remaining);
                        k = MIN(k, max_data);
                        if (k == 0)
                                break;
                        *ret_data = in + i;
                        *ret_len = k;
                        http1_chunked_data_consumed(c, k);
                        return (ssize_t)(i + k);
                }
                const char *lf = memchr(in + i, '\n', n - i);
                size_t k = lf ? (size_t)(lf - (in + i)) : n - i;
                if (k > HTTP1_LINE_MAX - c->line_len)
                        return -EBADMSG;
                memcpy(c->line + c->line_len, in + i, k);
                c->line_len += k;
                i += k;
                if (!lf)
                        break;
                i++; /* the LF */
                int r = chunked_line(c);
                c->line_len = 0;
                if (r < 0)
                        return r;
        }
        return (ssize_t)i;
}
