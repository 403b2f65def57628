/* SPDX-License-Identifier: MIT */
/*
 * fuzz-multipart.c — the incremental multipart/form-data parser (lib/multipart.c) behind file
 * uploads of the runtime API: bytes from any client with a sandbox's access token, arriving in
 * whatever pieces the network makes of them.
 *
 * Differential: the body is parsed once whole and once cut at fuzzer-chosen offsets (fuzz.h);
 * both parses must report the same parts (name, filename, type), the same bytes in each, the
 * same result and the same end state — the multipart bug of issue 14 was a part handled twice
 * when its value was split. Also checked: no part's data contains the delimiter, parts begin
 * and end in turn.
 *
 * Payload: "<Content-Type value>\n<body>". When the value names no usable boundary (most
 * mutations), the body is parsed with the boundary "XyZ" so that the body parser still runs.
 */
#include "fuzz.h"
#include "lib/buf.h"
#include "lib/multipart.h"

#include <errno.h>

#define FALLBACK_BOUNDARY "XyZ"

struct events {
        struct buf log; /* 'B' name '\0' filename '\0' type '\0' | 'D' bytes | 'E' */
        bool in_data;   /* the last event was data: more data extends it */
        bool in_part;
        unsigned begun;
        const char *delim;
        struct buf data; /* the current part's bytes */
};

static void add_field(struct buf *b, const char *s)
{
        /* "\1" marks an absent field, distinct from an empty one */
        FUZZ_CHECK(buf_adds(b, s ? s : "\1") == 0 && buf_addc(b, '\0') == 0);
}

static int on_begin(void *ud, const struct multipart_part *part)
{
        struct events *ev = ud;
        FUZZ_CHECK(!ev->in_part);
        ev->in_part = true;
        ev->in_data = false;
        ev->begun++;
        buf_reset(&ev->data);
        FUZZ_CHECK(buf_addc(&ev->log, 'B') == 0);
        add_field(&ev->log, part->name);
        add_field(&ev->log, part->filename);
        add_field(&ev->log, part->content_type);
        return 0;
}

static int on_data(void *ud, const char *p, size_t n)
{
        struct events *ev = ud;
        FUZZ_CHECK(ev->in_part && n > 0);
        if (!ev->in_data)
                FUZZ_CHECK(buf_addc(&ev->log, 'D') == 0);
        ev->in_data = true;
        FUZZ_CHECK(buf_add(&ev->log, p, n) == 0);
        FUZZ_CHECK(buf_add(&ev->data, p, n) == 0);
        return 0;
}

static int on_end(void *ud)
{
        struct events *ev = ud;
        FUZZ_CHECK(ev->in_part);
        ev->in_part = false;
        ev->in_data = false;
        FUZZ_CHECK(!memmem(ev->data.ptr ? ev->data.ptr : "", ev->data.len, ev->delim,
                           strlen(ev->delim)));
        FUZZ_CHECK(buf_addc(&ev->log, 'E') == 0);
        return 0;
}

static const struct multipart_callbacks callbacks = { on_begin, on_data, on_end };

struct outcome {
        int r, finish;
        unsigned parts;
};

static struct outcome parse(const char *boundary, const uint8_t *p, const size_t *at, size_t nat,
                            struct events *ev)
{
        struct multipart_parser m;
        struct outcome o = { 0 };
        char delim[8 + MULTIPART_BOUNDARY_MAX];

        (void)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
        ev->delim = delim;
        FUZZ_CHECK(multipart_init(&m, boundary) == 0);
        for (size_t i = 0; i + 1 < nat && o.r == 0; i++)
                o.r = multipart_feed(&m, (const char *)p + at[i], at[i + 1] - at[i], &callbacks,
                                     ev);
        FUZZ_CHECK(o.r == 0 || o.r == -EBADMSG || o.r == -E2BIG);
        o.finish = multipart_finish(&m);
        o.parts = m.parts;
        FUZZ_CHECK(o.parts == ev->begun);
        multipart_release(&m);
        ev->delim = NULL;
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_cuts cuts;
        char boundary[MULTIPART_BOUNDARY_MAX + 1];

        if (size > FUZZ_MAX_INPUT)
                return 0;
        if (!fuzz_take_cuts(data, size, &cuts))
                return 0;
        const uint8_t *nl = memchr(cuts.payload, '\n', cuts.len);
        if (!nl)
                return 0;
        char *ctype = strndup((const char *)cuts.payload, (size_t)(nl - cuts.payload));
        FUZZ_CHECK(ctype);
        if (multipart_boundary(ctype, boundary) < 0) {
                FUZZ_CHECK(boundary[0] == '\0' || strlen(boundary) <= MULTIPART_BOUNDARY_MAX);
                memcpy(boundary, FALLBACK_BOUNDARY, sizeof(FALLBACK_BOUNDARY));
        }
        free(ctype);

        /* Offsets are into the body: those before it fall on its first byte. */
        size_t skip = (size_t)(nl - cuts.payload) + 1;
        const uint8_t *body = cuts.payload + skip;
        size_t len = cuts.len - skip, whole[2] = { 0, len }, at[FUZZ_MAX_CUTS + 2];
        for (size_t i = 0; i < cuts.n + 2; i++)
                at[i] = cuts.at[i] > skip ? cuts.at[i] - skip : 0;

        struct events a = { 0 }, b = { 0 };
        buf_init(&a.log, SIZE_MAX);
        buf_init(&b.log, SIZE_MAX);
        buf_init(&a.data, SIZE_MAX);
        buf_init(&b.data, SIZE_MAX);
        struct outcome oa = parse(boundary, body, whole, 2, &a);
        struct outcome ob = parse(boundary, body, at, cuts.n + 2, &b);
        FUZZ_CHECK(oa.r == ob.r);
        FUZZ_CHECK(oa.finish == ob.finish);
        FUZZ_CHECK(oa.parts == ob.parts);
        FUZZ_CHECK(a.in_part == b.in_part);
        FUZZ_CHECK(a.log.len == b.log.len);
        FUZZ_CHECK(a.log.len == 0 || memcmp(a.log.ptr, b.log.ptr, a.log.len) == 0);
        /* A body that ended properly has no part left open. */
        FUZZ_CHECK(oa.finish < 0 || !a.in_part);
        buf_release(&a.log);
        buf_release(&b.log);
        buf_release(&a.data);
        buf_release(&b.data);
        return 0;
}
