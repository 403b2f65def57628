/* SPDX-License-Identifier: MIT */
#include "multipart.h"
#include "macro.h"

#include <strings.h>

/* ---- header values ---- */

static bool boundary_char(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c && strchr("'()+_,-./:=? ", c));
}

static bool boundary_valid(const char *b)
{
        size_t n = strlen(b);
        if (n == 0 || n > MULTIPART_BOUNDARY_MAX || b[n - 1] == ' ')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!boundary_char(b[i]))
                        return false;
        return true;
}

static const char *skip_ws(const char *s, const char *e)
{
        while (s < e && (*s == ' ' || *s == '\t'))
                s++;
        return s;
}

/* One parameter value at *ps (quoted-string or token), up to e; advances *ps past it.
 * Returns a new string, or NULL for an unterminated quoted string. In quoted strings a
 * backslash escapes only '"' and '\': browsers send Windows paths with bare backslashes. */
static char *param_value(const char **ps, const char *e)
{
        const char *s = *ps;
        if (s < e && *s == '"') {
                char *out = xmalloc((size_t)(e - s) + 1);
                size_t o = 0;
                for (s++; s < e && *s != '"'; s++) {
                        if (*s == '\\' && s + 1 < e && (s[1] == '"' || s[1] == '\\'))
                                s++;
                        out[o++] = *s;
                }
                if (s >= e) {
                        free(out);
                        return NULL;
                }
                out[o] = '\0';
                *ps = s + 1;
                return out;
        }
        const char *v = s;
        while (s < e && *s != ';')
                s++;
        const char *ve = s;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
        *ps = s;
        return xstrndup(v, (size_t)(ve - v));
}

/* Walks the "; name=value" parameters of a header value [s, e), calling fn for each.
 * -EBADMSG when malformed. */
static int params_foreach(const char *s, const char *e,
                          int (*fn)(void *ud, const char *name, size_t nl, char *value), void *ud)
{
        s = memchr(s, ';', (size_t)(e - s));
        while (s && s < e) {
                s = skip_ws(s + 1, e); /* past ';' */
                if (s >= e)
                        break;
                const char *name = s;
                while (s < e && *s != '=' && *s != ';' && *s != ' ' && *s != '\t')
                        s++;
                size_t nl = (size_t)(s - name);
                s = skip_ws(s, e);
                if (s >= e || *s != '=')
                        return -EBADMSG;
                s = skip_ws(s + 1, e);
                char *value = param_value(&s, e);
                if (!value)
                        return -EBADMSG;
                int r = fn(ud, name, nl, value); /* takes value */
                if (r < 0)
                        return r;
                s = skip_ws(s, e);
                if (s < e && *s != ';')
                        return -EBADMSG;
        }
        return 0;
}

static bool name_is(const char *name, size_t nl, const char *want)
{
        return nl == strlen(want) && strncasecmp(name, want, nl) == 0;
}

static int take_boundary(void *ud, const char *name, size_t nl, char *value)
{
        char *out = ud;
        if (name_is(name, nl, "boundary") && !out[0] && strlen(value) <= MULTIPART_BOUNDARY_MAX)
                memcpy(out, value, strlen(value) + 1);
        free(value);
        return 0;
}

int multipart_boundary(const char *content_type, char out[MULTIPART_BOUNDARY_MAX + 1])
{
        static const char type[] = "multipart/form-data";
        const char *s =
                content_type ? skip_ws(content_type, content_type + strlen(content_type)) : NULL;

        out[0] = '\0';
        if (!s || strncasecmp(s, type, (sizeof(type) - 1)) != 0)
                return -EINVAL;
        const char *t = skip_ws(s + (sizeof(type) - 1), s + strlen(s));
        if (*t && *t != ';')
                return -EINVAL;
        if (params_foreach(t, t + strlen(t), take_boundary, out) < 0 || !boundary_valid(out))
                return -EINVAL;
        return 0;
}

/* ---- the part headers ---- */

struct part_fields {
        char *name, *filename, *content_type;
};

static int take_disposition(void *ud, const char *name, size_t nl, char *value)
{
        struct part_fields *f = ud;
        char **dst = name_is(name, nl, "name")       ? &f->name
                     : name_is(name, nl, "filename") ? &f->filename
                                                     : NULL;
        if (dst && !*dst)
                *dst = value;
        else
                free(value);
        return 0;
}

/* Parses the header block m->headers[0..len) (CRLF-separated lines, the final empty line
 * excluded) and calls part_begin. */
static int begin_part(struct multipart_parser *m, size_t len, const struct multipart_callbacks *cb,
                      void *ud)
{
        struct part_fields f = { 0 };
        const char *s = m->headers, *end = m->headers + len;
        int r = 0;

        while (s < end && r == 0) {
                const char *le = memchr(s, '\n', (size_t)(end - s));
                const char *next = le ? le + 1 : end;
                if (!le)
                        le = end;
                if (le > s && le[-1] == '\r')
                        le--;
                if (le > s) {
                        const char *colon = memchr(s, ':', (size_t)(le - s));
                        if (!colon || colon == s) {
                                r = -EBADMSG;
                                break;
                        }
                        size_t nl = (size_t)(colon - s);
                        const char *v = skip_ws(colon + 1, le);
                        if (name_is(s, nl, "Content-Disposition"))
                                r = params_foreach(v, le, take_disposition, &f);
                        else if (name_is(s, nl, "Content-Type") && !f.content_type) {
                                const char *ve = le;
                                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                                        ve--;
                                f.content_type = xstrndup(v, (size_t)(ve - v));
                        }
                }
                s = next;
        }
        if (r == 0) {
                struct multipart_part part = { f.name, f.filename, f.content_type };
                m->parts++;
                r = cb->part_begin ? cb->part_begin(ud, &part) : 0;
        }
        free(f.name);
        free(f.filename);
        free(f.content_type);
        return r;
}

/* ---- the parser ---- */

int multipart_init(struct multipart_parser *m, const char *boundary)
{
        *m = (struct multipart_parser){ .state = MP_FAILED };
        if (!boundary || !boundary_valid(boundary))
                return -EINVAL;
        m->delim_len = 4 + strlen(boundary);
        memcpy(m->delim, "\r\n--", 4);
        memcpy(m->delim + 4, boundary, strlen(boundary) + 1);
        m->headers = xmalloc(MULTIPART_HEADERS_MAX + 1);
        m->state = MP_PREAMBLE;
        /* The first delimiter may open the body without a CRLF before it: pretend one. */
        m->match = 2;
        return 0;
}

void multipart_release(struct multipart_parser *m)
{
        free(m->headers);
        m->headers = NULL;
}

int multipart_finish(const struct multipart_parser *m)
{
        return m->state == MP_EPILOGUE ? 0 : -EBADMSG;
}

static int fail(struct multipart_parser *m, int r)
{
        m->state = MP_FAILED;
        return r;
}

static int emit(const struct multipart_callbacks *cb, void *ud, const char *p, size_t n)
{
        return n > 0 && cb->part_data ? cb->part_data(ud, p, n) : 0;
}

/* The length of the data at p[0..n) before the first CR where the delimiter may begin: a
 * CR followed by the whole delimiter, or by as much of it as n allows; n when there is none. */
static size_t scan_data(const struct multipart_parser *m, const char *p, size_t n)
{
        const char *c = p, *e = p + n;

        for (;;) {
                const char *cr = memchr(c, '\r', (size_t)(e - c));
                if (!cr)
                        return n;
                size_t k = MIN((size_t)(e - cr), m->delim_len);
                if (memcmp(cr, m->delim, k) == 0)
                        return (size_t)(cr - p);
                c = cr + 1;
        }
}

int multipart_feed(struct multipart_parser *m, const char *p, size_t n,
                   const struct multipart_callbacks *cb, void *ud)
{
        size_t i = 0;
        int r;

        while (i < n) {
                switch (m->state) {
                case MP_PREAMBLE:
                case MP_BODY: {
                        bool body = m->state == MP_BODY;
                        if (m->match == 0) {
                                /* Not inside a possible delimiter: the data runs to the first
                                 * CR that starts the whole delimiter, or its beginning cut by
                                 * the end of the input; one piece, however many CRs the data
                                 * holds (they are compared in place). */
                                size_t k = scan_data(m, p + i, n - i);
                                if (body && (r = emit(cb, ud, p + i, k)) < 0)
                                        return fail(m, r);
                                i += k;
                                if (i < n) { /* at that CR: the byte-wise match takes over */
                                        m->match = 1;
                                        i++;
                                }
                                break;
                        }
                        if (p[i] == m->delim[m->match]) {
                                i++;
                                if (++m->match < m->delim_len)
                                        break;
                                m->match = 0;
                                m->state = MP_AFTER_DELIMITER;
                                if (body && cb->part_end && (r = cb->part_end(ud)) < 0)
                                        return fail(m, r);
                                break;
                        }
                        /* Mismatch: the bytes held back were data after all. The delimiter
                         * has its only CR at index 0, so no shorter match can hide in them:
                         * look at this byte again from scratch. */
                        if (body && (r = emit(cb, ud, m->delim, m->match)) < 0)
                                return fail(m, r);
                        m->match = 0;
                        break;
                }
                case MP_AFTER_DELIMITER:
                        if (p[i] == '-')
                                m->state = MP_AFTER_DASH;
                        else if (p[i] == '\r')
                                m->state = MP_AFTER_CR;
                        else if (p[i] != ' ' && p[i] != '\t') /* transport padding */
                                return fail(m, -EBADMSG);
                        i++;
                        break;
                case MP_AFTER_DASH:
                        if (p[i] != '-')
                                return fail(m, -EBADMSG);
                        m->state = MP_EPILOGUE;
                        i++;
                        break;
                case MP_AFTER_CR:
                        if (p[i] != '\n')
                                return fail(m, -EBADMSG);
                        m->state = MP_HEADERS;
                        m->headers_len = 0;
                        i++;
                        break;
                case MP_HEADERS: {
                        /* Up to and including the next LF, then look for the empty line. */
                        const char *lf = memchr(p + i, '\n', n - i);
                        size_t k = lf ? (size_t)(lf - (p + i)) + 1 : n - i;
                        if (k > MULTIPART_HEADERS_MAX - m->headers_len)
                                return fail(m, -E2BIG);
                        memcpy(m->headers + m->headers_len, p + i, k);
                        m->headers_len += k;
                        i += k;
                        if (!lf)
                                break;
                        size_t h = m->headers_len;
                        const char *b = m->headers;
                        bool end = (h == 2 && b[0] == '\r') ||
                                   (h >= 4 && memcmp(b + h - 4, "\r\n\r\n", 4) == 0);
                        if (!end)
                                break;
                        m->state = MP_BODY;
                        m->match = 0;
                        r = begin_part(m, h == 2 ? 0 : h - 2, cb, ud);
                        if (r < 0)
                                return fail(m, r);
                        break;
                }
                case MP_EPILOGUE:
                        return 0;
                case MP_FAILED:
                default:
                        return -EBADMSG;
                }
        }
        return m->state == MP_FAILED ? -EBADMSG : 0;
}
