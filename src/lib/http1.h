/* SPDX-License-Identifier: MIT */
/*
 * http1.h — HTTP/1.1 response heads and chunked bodies (RFC 9112), as the port proxy reads
 * them from inside a sandbox: untrusted bytes, so every length is bounded. Pure (libc only).
 * Fuzz entry points: http1_head_end() + http1_parse_response_head() on a copy of the input,
 * http1_chunked_feed() on bytes split anywhere.
 *
 * Heads. http1_head_end() finds the blank line that ends a head ("\n\n" or "\n\r\n", so bare
 * LF line ends are tolerated). http1_parse_response_head() parses such a head in place: it
 * writes NULs into the buffer and points name[i] / value[i] at them (values trimmed of
 * spaces, tabs and CR). It refuses (-EBADMSG) a NUL byte or a CR not followed by LF anywhere
 * in the head, a status line that is not "HTTP/1.x NNN", a status outside 100–999, obsolete
 * line folding, a field without a name or with a name holding controls, spaces or non-ASCII;
 * more than HTTP1_HEADERS_MAX fields is -E2BIG.
 *
 * Chunked bodies. struct http1_chunked decodes incrementally: each http1_chunked_feed() call
 * consumes a prefix of its input and returns how much, stopping right after at most one span
 * of body bytes (at most max_data of them), which it reports as *ret_data and *ret_len pointing
 * into the input. Chunk-size lines ("1a3f[;ext]", ≤ 15 hex digits) and trailer lines are at
 * most HTTP1_LINE_MAX bytes, trailers at most HTTP1_TRAILERS_MAX lines (they are dropped).
 * -EBADMSG on anything malformed. A caller that reads body bytes straight from the socket may
 * ask http1_chunked_data_left() and report them with http1_chunked_data_consumed().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP1_HEADERS_MAX  100
#define HTTP1_LINE_MAX     1024
#define HTTP1_TRAILERS_MAX 100

struct http1_head {
        unsigned status;
        size_t nhdr;
        char *name[HTTP1_HEADERS_MAX]; /* borrowed from the parsed buffer */
        char *value[HTTP1_HEADERS_MAX];
};

/* Offset just past the blank line ending a head in p[0..n), or 0 when there is none yet. */
size_t http1_head_end(const char *p, size_t n);
/* Parses p[0..n) (a whole head, as delimited by http1_head_end()) in place. */
int http1_parse_response_head(char *p, size_t n, struct http1_head *h);
/* Value of the first field called name (case-insensitive), or NULL. */
const char *http1_head_get(const struct http1_head *h, const char *name);

enum http1_chunked_state {
        HTTP1_CH_SIZE,
        HTTP1_CH_DATA,
        HTTP1_CH_DATA_END,
        HTTP1_CH_TRAILER,
        HTTP1_CH_DONE,
};

struct http1_chunked {
        enum http1_chunked_state state;
        uint64_t remaining; /* bytes left of the current chunk */
        unsigned trailers;
        size_t line_len; /* bytes of the current line collected so far */
        char line[HTTP1_LINE_MAX + 1];
};

void http1_chunked_init(struct http1_chunked *c);
ssize_t http1_chunked_feed(struct http1_chunked *c, const char *in, size_t n, size_t max_data,
                           const char **ret_data, size_t *ret_len);
bool http1_chunked_done(const struct http1_chunked *c);
uint64_t http1_chunked_data_left(const struct http1_chunked *c);
void http1_chunked_data_consumed(struct http1_chunked *c, size_t n);
