/* SPDX-License-Identifier: MIT */
/*
 * agent_file.h — downloads of sandbox files (docs/design/transfers.md): the agent opens the
 * file with its checks (files.open) and passes the open file to coved (SCM_RIGHTS), which
 * sends it to the client with sendfile; no byte goes through the agent or coved's memory.
 *
 * The passed descriptor is trusted no more than the agent: it must be a regular file opened
 * for reading on a local disk filesystem (fd_local_file_readable()); anything else is closed
 * without blocking (fd_close_foreign()) and the download goes the old way, files.read's D
 * frames streamed by agent_stream.h — as it does with an agent that has no files.open.
 */
#pragma once

#include "coved/agent_client.h"
#include "coved/http/http.h"

#include <stdint.h>

struct agent_file {
        json_t *head; /* owned: the agent's head frame (status, size, mtime, name; or message) */
        int fd;       /* owned: the file to send, or -1 */
        int conn;     /* owned: the files.read call to stream from when fd is -1, or -1 */
};
#define AGENT_FILE_NULL ((struct agent_file){ .head = NULL, .fd = -1, .conn = -1 })

/* Opens a download: files.open (open_req) on one connection, falling back to files.read
 * (read_req) on a second one when no usable file came. Both requests are borrowed. 0 with
 * *ret filled: head's status is 200 (then fd >= 0, or conn >= 0 waiting for its range) or
 * the agent's refusal; -errno with err when the agent is unreachable. The head's "size" is
 * the passed file's size when there is one. */
int agent_file_begin(struct coved *cd, const char *id, int timeout_ms, const json_t *open_req,
                     const json_t *read_req, struct agent_file *ret, struct cove_err **err);
/* The response body: n > 0 bytes from offset off. Takes f's fd or conn (n > 0 bytes asked of
 * files.read). NULL: out of memory, or the range could not be sent (err set). */
struct MHD_Response *agent_file_response(struct http_req *r, struct agent_file *f, uint64_t off,
                                         uint64_t n, struct cove_err **err);
void agent_file_release(struct agent_file *f);
#define cleanup_agent_file __attribute__((cleanup(agent_file_release)))
