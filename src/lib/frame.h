/* SPDX-License-Identifier: MIT */
/*
 * frame.h — the agent wire framing (docs/design/agent-protocol.md).
 *
 * A frame is 1 byte kind, 4 bytes big-endian payload length, then the payload:
 *   'J' one JSON value (UTF-8), 'D' raw data bytes, 'E' end of a data stream (empty).
 * Payloads are at most FRAME_MAX_PAYLOAD bytes; a bigger length is a protocol error and the
 * reader must close the connection.
 */
#pragma once

#include "buf.h"

#include <stddef.h>

enum frame_kind {
        FRAME_JSON = 'J',
        FRAME_DATA = 'D',
        FRAME_END = 'E',
};

#define FRAME_HEADER_SIZE 5
#define FRAME_MAX_PAYLOAD BUF_MAX_AGENT_FRAME

/* Writes one frame with a single writev (MSG_NOSIGNAL on sockets). 0 or -errno. */
int frame_write(int fd, char kind, const void *p, size_t n);
/* Reads one frame into payload (reset first; NUL-terminated). Returns 1 for a frame, 0 for
 * a clean EOF before any header byte, -EPROTO for a bad kind, oversize or truncated frame,
 * -errno on I/O errors. */
int frame_read(int fd, char *ret_kind, struct buf *payload);
