/* SPDX-License-Identifier: MIT */
/*
 * fuzz-frame.c — the agent frame codec (lib/frame.c, docs/design/agent-protocol.md): the
 * blocking reader frame_read() and the incremental struct frame_decoder.
 *
 * coved reads frames from the agent, which runs inside the sandbox: every byte is the
 * sandbox's. The payload (after the cut header of fuzz.h) is a byte stream, read three ways:
 * by frame_read() from a memfd until EOF or an error, and by a frame_decoder (refusing the
 * kinds the agent protocol does not have, as frame_read() does) fed whole and cut at the
 * fuzzer's offsets. Checked: all three see the same frames; frame_read() ends cleanly exactly
 * when the decoder ends between frames without error; each frame has a known kind and a
 * NUL-terminated payload of at most FRAME_MAX_PAYLOAD bytes; writing the frames back with
 * frame_write() reproduces the bytes consumed.
 */
#include "fuzz.h"
#include "lib/buf.h"
#include "lib/frame.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd_with(const uint8_t *data, size_t size)
{
        int fd = memfd_create("fuzz-frame", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        size_t done = 0;
        while (done < size) {
                ssize_t w = write(fd, data + done, size - done);
                FUZZ_CHECK(w > 0);
                done += (size_t)w;
        }
        FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
        return fd;
}

/* Each frame is logged as its header and payload: the log is the bytes consumed. */
static void log_frame(struct buf *log, uint8_t kind, const char *p, size_t n)
{
        unsigned char h[FRAME_HEADER_SIZE];

        FUZZ_CHECK(kind == FRAME_JSON || kind == FRAME_DATA || kind == FRAME_END);
        FUZZ_CHECK(n <= FRAME_MAX_PAYLOAD && p[n] == '\0');
        frame_header_encode(h, kind, (uint32_t)n);
        FUZZ_CHECK(buf_add(log, h, sizeof(h)) == 0);
        FUZZ_CHECK(buf_add(log, p, n) == 0);
}

/* Reads with frame_read(); returns its last result (0 clean EOF, -EPROTO). */
static int read_frames(const uint8_t *data, size_t size, struct buf *log)
{
        int in = memfd_with(data, size);
        int out = memfd_create("fuzz-frame-out", MFD_CLOEXEC);
        struct buf payload;
        int r;

        FUZZ_CHECK(out >= 0);
        buf_init(&payload, FRAME_MAX_PAYLOAD);
        for (;;) {
                char kind = 0;
                r = frame_read(in, &kind, &payload);
                if (r <= 0)
                        break;
                log_frame(log, (uint8_t)kind, payload.ptr, payload.len);
                FUZZ_CHECK(frame_write(out, kind, payload.ptr, payload.len) == 0);
        }
        FUZZ_CHECK(r == 0 || r == -EPROTO);
        FUZZ_CHECK(r < 0 || log->len == size); /* a clean EOF only after the last frame */
        /* frame_write() writes back what frame_read() read. */
        off_t end = lseek(out, 0, SEEK_CUR);
        FUZZ_CHECK(end >= 0 && (size_t)end == log->len);
        if (log->len > 0) {
                uint8_t *back = malloc(log->len);
                FUZZ_CHECK(back);
                FUZZ_CHECK(pread(out, back, log->len, 0) == (ssize_t)log->len);
                FUZZ_CHECK(memcmp(back, data, log->len) == 0);
                FUZZ_CHECK(memcmp(log->ptr, data, log->len) == 0);
                free(back);
        }
        buf_release(&payload);
        (void)close(in);
        (void)close(out);
        return r;
}

static int agent_kinds(void *ud, uint8_t kind, uint32_t len)
{
        (void)ud;
        (void)len;
        return kind == FRAME_JSON || kind == FRAME_DATA || kind == FRAME_END ? 0 : -EPROTO;
}

static int on_frame(void *ud, uint8_t kind, const char *p, size_t n)
{
        log_frame(ud, kind, p, n);
        return 0;
}

struct decoded {
        int r;
        bool idle;
        struct buf log;
};

static void decode(const uint8_t *p, const size_t *at, size_t nat, struct decoded *d)
{
        struct frame_decoder dec;

        buf_init(&d->log, SIZE_MAX);
        frame_decoder_init(&dec, FRAME_MAX_PAYLOAD, agent_kinds);
        d->r = 0;
        for (size_t i = 0; i + 1 < nat && d->r == 0; i++)
                d->r = frame_decoder_feed(&dec, (const char *)p + at[i], at[i + 1] - at[i],
                                          on_frame, &d->log);
        FUZZ_CHECK(d->r == 0 || d->r == -EPROTO || d->r == -E2BIG);
        d->idle = frame_decoder_idle(&dec);
        frame_decoder_release(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_cuts cuts;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        if (!fuzz_take_cuts(data, size, &cuts))
                return 0;

        struct buf read_log;
        buf_init(&read_log, SIZE_MAX);
        int rr = read_frames(cuts.payload, cuts.len, &read_log);

        struct decoded whole, split;
        size_t all[2] = { 0, cuts.len };
        decode(cuts.payload, all, 2, &whole);
        decode(cuts.payload, cuts.at, cuts.n + 2, &split);
        FUZZ_CHECK(whole.r == split.r);
        FUZZ_CHECK(whole.r < 0 || whole.idle == split.idle);
        FUZZ_CHECK(whole.log.len == split.log.len);
        FUZZ_CHECK(whole.log.len == 0 || memcmp(whole.log.ptr, split.log.ptr, whole.log.len) == 0);

        /* The blocking reader and the decoder agree. */
        FUZZ_CHECK((rr == 0) == (whole.r == 0 && whole.idle));
        FUZZ_CHECK(read_log.len == whole.log.len);
        FUZZ_CHECK(read_log.len == 0 || memcmp(read_log.ptr, whole.log.ptr, read_log.len) == 0);

        buf_release(&read_log);
        buf_release(&whole.log);
        buf_release(&split.log);
        return 0;
}
