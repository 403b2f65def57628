/* SPDX-License-Identifier: MIT */
/*
 * agent_stream.h — an agent data stream (the D frames that follow a files.read; docs/design/
 * agent-protocol.md) as the body of an HTTP response, read while libmicrohttpd sends it:
 * never buffered in coved (each frame's payload is received straight into libmicrohttpd's
 * send buffer). The reader runs on a server thread and never blocks: it waits for the agent
 * with http_wait_fd() (60 s of silence cut the body, as does the client hanging up).
 */
#pragma once

#include "coved/http/http.h"

#include <stdint.h>

/* A response of exactly n bytes (n > 0) from the D frames arriving on fd. fd is taken: it is
 * closed when the response is freed, or at once when NULL (out of memory) is returned. A
 * stream that ends short (E, EOF, an error) cuts the body: the client sees a truncated
 * transfer, never made-up bytes. */
struct MHD_Response *agent_stream_response(struct http_req *r, int fd, uint64_t n);
