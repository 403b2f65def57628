/* SPDX-License-Identifier: MIT */
/*
 * fuzz-connect.c — the Connect-RPC envelope codec (runtime.md §6.3): connect_request_message()
 * on a whole request body, and the incremental connect_decoder.
 *
 * Both read request bodies of the runtime API, i.e. any client holding a sandbox's access
 * token. The decoder is differential: the payload is fed once whole and once cut at
 * fuzzer-chosen offsets (fuzz.h), and both feeds must deliver the same envelopes, end in the
 * same result and agree on whether an envelope is left half-received.
 */
#include "fuzz.h"
#include "coved/envd/connect_json.h"
#include "lib/connect.h"
#include "lib/frame.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <errno.h>
#include <jansson.h>

/* Small enough that the fuzzer reaches the E2BIG path. */
#define DECODER_MAX 4096

/* Each envelope is recorded as flags, u32 length, payload. */
static int record(void *ud, uint8_t flags, const char *p, size_t n)
{
        struct buf *log = ud;
        unsigned char h[CONNECT_HEADER_SIZE];

        FUZZ_CHECK(n <= DECODER_MAX);
        FUZZ_CHECK(p[n] == '\0');
        frame_header_encode(h, flags, (uint32_t)n);
        FUZZ_CHECK(buf_add(log, h, sizeof(h)) == 0);
        FUZZ_CHECK(buf_add(log, p, n) == 0);
        return 0;
}

static int decode(const uint8_t *p, const size_t *at, size_t nat, struct buf *log, bool *idle)
{
        struct connect_decoder d;
        struct cove_err *err = NULL;
        int r = 0;

        connect_decoder_init(&d, DECODER_MAX);
        for (size_t i = 0; i + 1 < nat && r >= 0; i++)
                r = connect_decoder_feed(&d, (const char *)p + at[i], at[i + 1] - at[i], record,
                                         log, &err);
        FUZZ_CHECK(r >= 0 || (err && err->msg));
        *idle = connect_decoder_idle(&d);
        connect_decoder_release(&d);
        cove_err_free(&err);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_cuts cuts;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        if (!fuzz_take_cuts(data, size, &cuts))
                return 0;

        /* A whole buffered body (unary requests). */
        json_t *msg = NULL;
        struct cove_err *err = NULL;
        int r = connect_request_message((const char *)cuts.payload, cuts.len, &msg, &err);
        if (r >= 0) {
                FUZZ_CHECK(json_is_object(msg));
                json_decref(msg);
        } else {
                FUZZ_CHECK(r == -EINVAL && err && err->msg);
        }
        cove_err_free(&err);

        /* The incremental decoder (client streaming), whole and in pieces. */
        struct buf whole, split;
        bool idle_whole, idle_split;
        size_t all[2] = { 0, cuts.len };

        buf_init(&whole, SIZE_MAX);
        buf_init(&split, SIZE_MAX);
        int rw = decode(cuts.payload, all, 2, &whole, &idle_whole);
        int rs = decode(cuts.payload, cuts.at, cuts.n + 2, &split, &idle_split);
        FUZZ_CHECK(rw == rs);
        FUZZ_CHECK(whole.len == split.len);
        FUZZ_CHECK(whole.len == 0 || memcmp(whole.ptr, split.ptr, whole.len) == 0);
        if (rw >= 0) {
                FUZZ_CHECK(idle_whole == idle_split);
                /* Envelopes delivered plus what is half-received is the whole payload. */
                FUZZ_CHECK(!idle_whole || whole.len == cuts.len);
                FUZZ_CHECK(whole.len == 0 || memcmp(whole.ptr, cuts.payload, whole.len) == 0);
        }
        buf_release(&whole);
        buf_release(&split);
        return 0;
}
