/* SPDX-License-Identifier: MIT */
/*
 * fuzz-http1.c — HTTP/1.1 response heads and chunked bodies (lib/http1.c), as coved's port
 * proxy reads them from a server inside the sandbox: every byte is the sandbox's, read by a
 * root process.
 *
 * The payload (after the cut header of fuzz.h) is used three ways:
 * - as a response head: http1_head_end() finds the blank line, http1_parse_response_head()
 *   parses a copy of exactly that much; the fields must be well-formed and findable;
 * - as a chunked body, decoded whole and cut at the fuzzer's offsets, with a fuzzer-chosen
 *   max_data: the same bytes, the same end, the same error (differential);
 * - as data: encoded as chunks at the cut offsets, the decoder must give it back exactly.
 */
#include "fuzz.h"
#include "lib/buf.h"
#include "lib/http1.h"

#include <errno.h>
#include <strings.h>

static void check_head(const uint8_t *p, size_t n)
{
        size_t end = http1_head_end((const char *)p, n);
        if (end == 0)
                return;
        FUZZ_CHECK(end <= n && end >= 2 && p[end - 1] == '\n');
        FUZZ_CHECK(p[end - 2] == '\n' || (end >= 3 && p[end - 2] == '\r' && p[end - 3] == '\n'));
        /* It is the first blank line ("\n\n" or "\n\r\n"). */
        for (size_t i = 0; i + 1 < end; i++) {
                size_t e = 0;
                if (p[i] == '\n' && p[i + 1] == '\n')
                        e = i + 2;
                else if (p[i] == '\n' && p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
                        e = i + 3;
                if (e) {
                        FUZZ_CHECK(e == end);
                        break;
                }
        }

        char *copy = malloc(end);
        FUZZ_CHECK(copy);
        memcpy(copy, p, end);
        struct http1_head h;
        int r = http1_parse_response_head(copy, end, &h);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -E2BIG);
        if (r == 0) {
                /* RFC 9112 §2.2, 5.5: no NUL anywhere, a CR only before LF. A value that is a
                 * C string must not be cut short by a NUL, nor carry a bare CR onward. */
                FUZZ_CHECK(!memchr(p, '\0', end));
                for (size_t i = 0; i < end; i++)
                        FUZZ_CHECK(p[i] != '\r' || (i + 1 < end && p[i + 1] == '\n'));
                FUZZ_CHECK(h.status >= 100 && h.status <= 999);
                FUZZ_CHECK(h.nhdr <= HTTP1_HEADERS_MAX);
                for (size_t i = 0; i < h.nhdr; i++) {
                        const char *name = h.name[i], *v = h.value[i];
                        FUZZ_CHECK(name >= copy && name < copy + end && *name);
                        FUZZ_CHECK(v >= copy && v < copy + end);
                        for (const char *c = name; *c; c++)
                                FUZZ_CHECK((unsigned char)*c > ' ' && (unsigned char)*c < 0x7f &&
                                           *c != ':');
                        FUZZ_CHECK(!strchr(v, '\n'));
                        size_t vl = strlen(v);
                        FUZZ_CHECK(vl == 0 || (v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' &&
                                               v[vl - 1] != '\t' && v[vl - 1] != '\r'));
                        const char *first = http1_head_get(&h, name);
                        FUZZ_CHECK(first);
                        for (size_t j = 0; j < i; j++)
                                if (strcasecmp(h.name[j], name) == 0) {
                                        FUZZ_CHECK(first == h.value[j]);
                                        break;
                                }
                }
        }
        free(copy);
}

struct decoded {
        ssize_t r; /* the first error, or 0 */
        bool done;
        size_t consumed;
        struct buf data;
};

static void decode(const uint8_t *p, const size_t *at, size_t nat, size_t max_data,
                   struct decoded *d)
{
        struct http1_chunked c;

        http1_chunked_init(&c);
        buf_init(&d->data, SIZE_MAX);
        d->r = 0;
        d->consumed = 0;
        for (size_t i = 0; i + 1 < nat && d->r == 0 && !http1_chunked_done(&c); i++) {
                const char *in = (const char *)p + at[i];
                size_t n = at[i + 1] - at[i];
                while (n > 0 && !http1_chunked_done(&c)) {
                        const char *data;
                        size_t len;
                        ssize_t k = http1_chunked_feed(&c, in, n, max_data, &data, &len);
                        if (k < 0) {
                                FUZZ_CHECK(k == -EBADMSG);
                                d->r = k;
                                break;
                        }
                        FUZZ_CHECK((size_t)k <= n);
                        FUZZ_CHECK(len <= max_data);
                        if (len > 0) {
                                FUZZ_CHECK(data >= in && data + len <= in + k);
                                FUZZ_CHECK(buf_add(&d->data, data, len) == 0);
                        }
                        /* Progress: all of it, or up to a span of data, or the end. */
                        FUZZ_CHECK(k > 0 || http1_chunked_done(&c));
                        in += k;
                        n -= (size_t)k;
                        d->consumed += (size_t)k;
                }
        }
        d->done = http1_chunked_done(&c);
}

static void check_chunked(const struct fuzz_cuts *cuts, size_t max_data)
{
        struct decoded a, b;
        size_t whole[2] = { 0, cuts->len };

        decode(cuts->payload, whole, 2, max_data, &a);
        decode(cuts->payload, cuts->at, cuts->n + 2, max_data, &b);
        FUZZ_CHECK(a.r == b.r);
        FUZZ_CHECK(a.done == b.done);
        if (a.r == 0)
                FUZZ_CHECK(a.consumed == b.consumed);
        FUZZ_CHECK(a.data.len == b.data.len);
        FUZZ_CHECK(a.data.len == 0 || memcmp(a.data.ptr, b.data.ptr, a.data.len) == 0);
        buf_release(&a.data);
        buf_release(&b.data);
}

/* Encodes the payload as chunks cut at the offsets (empty pieces skipped), then decodes. */
static void check_round_trip(const struct fuzz_cuts *cuts, size_t max_data)
{
        struct buf enc;
        struct decoded d;

        buf_init(&enc, SIZE_MAX);
        for (size_t i = 0; i + 1 < cuts->n + 2; i++) {
                size_t n = cuts->at[i + 1] - cuts->at[i];
                if (n == 0)
                        continue;
                FUZZ_CHECK(buf_addf(&enc, "%zx%s\r\n", n, i % 2 ? ";ext=1" : "") == 0);
                FUZZ_CHECK(buf_add(&enc, cuts->payload + cuts->at[i], n) == 0);
                FUZZ_CHECK(buf_adds(&enc, "\r\n") == 0);
        }
        FUZZ_CHECK(buf_adds(&enc, cuts->n % 2 ? "0\r\nX-Trailer: 1\r\n\r\n" : "0\r\n\r\n") == 0);
        size_t whole[2] = { 0, enc.len };
        decode((const uint8_t *)enc.ptr, whole, 2, max_data, &d);
        FUZZ_CHECK(d.r == 0 && d.done && d.consumed == enc.len);
        FUZZ_CHECK(d.data.len == cuts->len);
        FUZZ_CHECK(cuts->len == 0 || memcmp(d.data.ptr, cuts->payload, cuts->len) == 0);
        buf_release(&d.data);
        buf_release(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_cuts cuts;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        if (!fuzz_take_cuts(data, size, &cuts))
                return 0;
        /* The count byte's high bits choose max_data: 1, 7, 4096 or unlimited. */
        static const size_t max_data[] = { 1, 7, 4096, SIZE_MAX };
        size_t md = max_data[(data[0] >> 4) & 3];

        check_head(cuts.payload, cuts.len);
        check_chunked(&cuts, md);
        check_round_trip(&cuts, md);
        return 0;
}
