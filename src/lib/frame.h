/* SPDX-License-Identifier: MIT */
/*
 * frame.h — the one codec of "kind byte + big-endian u32 length + payload" framing.
 *
 * Two protocols share it:
 *   - the agent wire protocol (docs/design/agent-protocol.md): kinds 'J' one JSON value,
 *     'D' raw data bytes, 'E' end of a data stream (empty); payloads ≤ FRAME_MAX_PAYLOAD;
 *   - Connect-RPC envelopes (runtime.md §6.3, lib/connect.h): the kind byte holds flags.
 *
 * Header: frame_header_encode() / frame_header_length() are the only places that lay out or
 * read the 5 bytes.
 *
 * Incremental decoding (bytes arriving in arbitrary pieces: HTTP bodies, libcurl writes):
 * struct frame_decoder collects one frame at a time and calls back once per complete frame;
 * `check` (optional) sees each header as soon as it is complete and may refuse it before its
 * payload is read (a bad kind, a length over the limit). A length above `max_payload` is
 * -E2BIG; after any error the stream is broken and must be dropped.
 *
 * Blocking sockets (the agent protocol): frame_read() reads exactly one frame and nothing
 * after it, so a connection can change hands between frames; frame_write() writes one.
 */
#pragma once

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum frame_kind {
        FRAME_JSON = 'J',
        FRAME_DATA = 'D',
        FRAME_END = 'E',
};

#define FRAME_HEADER_SIZE 5
#define FRAME_MAX_PAYLOAD BUF_MAX_AGENT_FRAME

void frame_header_encode(unsigned char out[FRAME_HEADER_SIZE], uint8_t kind, uint32_t len);
uint32_t frame_header_length(const unsigned char h[FRAME_HEADER_SIZE]);

/* ---- incremental decoder ---- */

/* Called with each complete header (payload not read yet): < 0 refuses the frame. */
typedef int (*frame_check_fn)(void *ud, uint8_t kind, uint32_t len);
/* Called with each complete frame; p is NUL-terminated after n (and valid only during the call). */
typedef int (*frame_fn)(void *ud, uint8_t kind, const char *p, size_t n);

struct frame_decoder {
        size_t max_payload;
        frame_check_fn check; /* optional */
        unsigned char hdr[FRAME_HEADER_SIZE];
        size_t hdr_len; /* header bytes collected so far */
        size_t need;    /* payload bytes still missing */
        bool in_payload;
        struct buf payload;
};

void frame_decoder_init(struct frame_decoder *d, size_t max_payload, frame_check_fn check);
void frame_decoder_release(struct frame_decoder *d);
/* Feeds p[0..n): fn runs for each complete frame, in order. Returns 0, -E2BIG (length over
 * max_payload), or the first negative value of check/fn (which stops the feed). */
int frame_decoder_feed(struct frame_decoder *d, const char *p, size_t n, frame_fn fn, void *ud);
/* True between frames (call at the end of the input: false means a truncated frame). */
bool frame_decoder_idle(const struct frame_decoder *d);

/* ---- blocking file descriptors (agent protocol) ---- */

/* Writes one frame with a single writev (MSG_NOSIGNAL on sockets). 0 or -errno. */
int frame_write(int fd, char kind, const void *p, size_t n);
/* Reads one frame into payload (reset first; NUL-terminated). Returns 1 for a frame, 0 for
 * a clean EOF before any header byte, -EPROTO for a bad kind, oversize or truncated frame,
 * -errno on I/O errors. */
int frame_read(int fd, char *ret_kind, struct buf *payload);

/* ---- a file descriptor passed with a frame (unix sockets, SCM_RIGHTS) ---- */

/* frame_write() whose first byte carries pass_fd (the receiver gets its own copy). */
int frame_write_fd(int sock, char kind, const void *p, size_t n, int pass_fd);
/* frame_read() that also takes the descriptor passed with the frame's header, if any:
 * *ret_fd is it (close-on-exec, owned by the caller) or -1. Further descriptors, and every
 * descriptor when the call fails, are closed with fd_close_foreign() (fdutil.h). */
int frame_read_fd(int sock, char *ret_kind, struct buf *payload, int *ret_fd);
