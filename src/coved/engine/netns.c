/* SPDX-License-Identifier: MIT */
/*
 * netns.c — engine_port_connect(): a TCP connection to a port inside a sandbox.
 *
 * The socket is created inside the network namespace of the sandbox's init by src/net's
 * netns_socket() (the calling thread enters it and switches straight back; PLATFORM.md,
 * Network; STYLE.md §0's one narrow exception): it stays in that namespace and reaches the
 * sandbox's 127.0.0.1. Nothing is cloned, mounted or unshared.
 */
#include "coved/engine/engine.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/timeutil.h"
#include "net/netns.h"
#include "runtime/spawn_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

/* A nonblocking TCP socket created inside the network namespace of the sandbox's init. */
static int socket_in_sandbox(const char *id, const struct engine_identity *who,
                             struct cove_err **err)
{
        if (!who || who->pid <= 1 || who->pid > INT32_MAX)
                return cove_err_set_status(err, 503, ESRCH, "sandbox '%s' is not running", id);
        cleanup_close int ns = netns_open_pid((int)who->pid);
        if (ns < 0)
                return cove_err_set_status(err, 503, -ns,
                                           "cannot open the network namespace of sandbox '%s': %s",
                                           id, strerror(-ns));
        /* Checked after the open: the fd pins the namespace we will enter, and a pid reused
         * before the open shows another start time here. */
        if (runtime_init_alive((pid_t)who->pid, (uint64_t)who->starttime) != 1)
                return cove_err_set_status(err, 503, ESRCH, "sandbox '%s' is not running", id);
        int fd = netns_socket(ns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return cove_err_set_status(err, 503, -fd,
                                           "cannot create a socket in sandbox '%s': %s", id,
                                           strerror(-fd));
        return fd;
}

/* Waits for the nonblocking connect: 1 done, 0 timeout, -errno. */
static int wait_writable(int fd, int timeout_ms)
{
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int64_t deadline = time_mono_ms() + timeout_ms;

        for (;;) {
                int64_t left = MAX(deadline - time_mono_ms(), (int64_t)0);
                int n = poll(&pfd, 1, (int)left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                return n > 0 ? 1 : 0;
        }
}

int engine_port_connect(struct coved *cd, const char *id, const struct engine_identity *who,
                        uint16_t port, int timeout_ms, struct cove_err **err)
{
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1, so = 0;
        socklen_t sl = sizeof(so);
        (void)cd;

        cleanup_close int fd = socket_in_sandbox(id, who, err);
        if (fd < 0)
                return fd;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (errno != EINPROGRESS && errno != EINTR)
                        so = errno;
                else {
                        int w = wait_writable(fd, timeout_ms);
                        if (w == 0)
                                return cove_err_set_status(
                                        err, 504, ETIMEDOUT,
                                        "connecting to port %u in sandbox '%s' timed out", port,
                                        id);
                        if (w < 0)
                                so = -w;
                        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
                                so = errno;
                }
        }
        if (so == ECONNREFUSED)
                return cove_err_set_status(
                        err, 502, so, "nothing is listening on port %u in sandbox '%s'", port, id);
        if (so)
                return cove_err_set_status(err, 502, so,
                                           "cannot connect to port %u in sandbox '%s': %s", port,
                                           id, strerror(so));
        return TAKE_FD(fd);
}
