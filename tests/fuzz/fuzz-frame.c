/* SPDX-License-Identifier: MIT */
/*
 * fuzz-frame.c — the agent frame reader (lib/frame.c, docs/design/agent-protocol.md).
 *
 * coved reads frames from the agent, which runs inside the sandbox: every byte is the
 * sandbox's. The input is the byte stream; frames are read until EOF or an error. Checked:
 * each frame has a known kind and a NUL-terminated payload of at most FRAME_MAX_PAYLOAD
 * bytes, and writing the frames back with frame_write() reproduces the bytes consumed.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;

        int in = memfd_with(data, size);
        int out = memfd_create("fuzz-frame-out", MFD_CLOEXEC);
        FUZZ_CHECK(out >= 0);
        struct buf payload;
        size_t consumed = 0;
        int r;

        buf_init(&payload, FRAME_MAX_PAYLOAD);
        for (;;) {
                char kind = 0;
                r = frame_read(in, &kind, &payload);
                if (r <= 0)
                        break;
                FUZZ_CHECK(kind == FRAME_JSON || kind == FRAME_DATA || kind == FRAME_END);
                FUZZ_CHECK(payload.ptr && payload.ptr[payload.len] == '\0');
                FUZZ_CHECK(payload.len <= FRAME_MAX_PAYLOAD);
                FUZZ_CHECK(frame_write(out, kind, payload.ptr, payload.len) == 0);
                consumed += FRAME_HEADER_SIZE + payload.len;
        }
        FUZZ_CHECK(r == 0 || r == -EPROTO);
        /* A clean EOF comes only at a frame boundary, after the whole input. */
        FUZZ_CHECK(r < 0 || consumed == size);

        /* Round trip: the frames written back are the bytes read. */
        off_t end = lseek(out, 0, SEEK_CUR);
        FUZZ_CHECK(end >= 0 && (size_t)end == consumed);
        if (consumed > 0) {
                uint8_t *back = malloc(consumed);
                FUZZ_CHECK(back);
                FUZZ_CHECK(pread(out, back, consumed, 0) == (ssize_t)consumed);
                FUZZ_CHECK(memcmp(back, data, consumed) == 0);
                free(back);
        }
        buf_release(&payload);
        (void)close(in);
        (void)close(out);
        return 0;
}
