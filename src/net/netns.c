/* SPDX-License-Identifier: MIT */
#include "net/netns.h"
#include "lib/macro.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

struct netns_job {
        int netns_fd;
        int (*fn)(void *ud);
        void *ud;
        int result;
};

static void *netns_thread(void *arg)
{
        struct netns_job *j = arg;

        if (setns(j->netns_fd, CLONE_NEWNET) < 0)
                j->result = -errno;
        else
                j->result = j->fn(j->ud);
        return NULL; /* the thread ends inside the namespace: nothing else ever runs on it */
}

int netns_run(int netns_fd, int (*fn)(void *ud), void *ud)
{
        struct netns_job j = { .netns_fd = netns_fd, .fn = fn, .ud = ud };
        pthread_t t;
        int r;

        if (netns_fd < 0)
                return fn(ud);
        r = pthread_create(&t, NULL, netns_thread, &j);
        if (r != 0)
                return -r;
        r = pthread_join(t, NULL);
        if (r != 0)
                return -r;
        return j.result;
}

int netns_socket(int netns_fd, int domain, int type, int protocol)
{
        int home, fd, saved;

        if (netns_fd < 0) {
                fd = socket(domain, type | SOCK_CLOEXEC, protocol);
                return fd < 0 ? -errno : fd;
        }
        home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (home < 0)
                return -errno;
        if (setns(netns_fd, CLONE_NEWNET) < 0) {
                saved = errno;
                (void)close(home);
                return -saved;
        }
        fd = socket(domain, type | SOCK_CLOEXEC, protocol);
        saved = errno;
        if (setns(home, CLONE_NEWNET) < 0)
                abort(); /* this thread would go on inside another namespace */
        (void)close(home);
        return fd < 0 ? -saved : fd;
}

int netns_open_pid(int pid)
{
        char path[32 + DECIMAL_STR_MAX(int)];
        int fd;

        (void)snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}
