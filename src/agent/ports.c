/* SPDX-License-Identifier: MIT */
/*
 * ports.c — the `ports` op (runtime.md §4.8 GET /ports): the listening TCP sockets of the
 * sandbox's network namespace (the agent's own), from /proc/net/tcp and /proc/net/tcp6
 * (state 0A), deduplicated per (address, port) and sorted by port. The owning process is found
 * by scanning the links in /proc/<pid>/fd for "socket:[<inode>]" (the lowest pid wins; unreadable
 * processes are skipped), its name from /proc/<pid>/comm.
 *
 * The kernel prints an address as the raw 32-bit words of the network-order address in host
 * byte order ("0100007F" is 127.0.0.1 on little-endian), so each word is stored back as it
 * was read; the port is printed in host order.
 */
#include "agent/watch.h"
#include "lib/fdutil.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#define PORTS_MAX        4096   /* listening sockets reported */
#define PORTS_LINE_MAX   512    /* a /proc/net/tcp6 line is ~150 bytes */
#define PORTS_MAX_PIDS   65536  /* processes scanned for socket owners */
#define PORTS_MAX_FDS    500000 /* fd links read in total */
#define PORTS_COMM_MAX   64
#define PORTS_TCP_LISTEN 0x0A

struct lport {
        uint64_t inode;
        uint16_t port;
        char addr[INET6_ADDRSTRLEN];
        int pid; /* 0 = unknown */
};

/* n hex digits (1..8) of s into *ret. */
static int hex_u32(const char *s, size_t n, uint32_t *ret)
{
        uint32_t v = 0;

        if (n == 0 || n > 8)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                unsigned d;
                if (ch >= '0' && ch <= '9')
                        d = (unsigned)(ch - '0');
                else if (ch >= 'A' && ch <= 'F')
                        d = (unsigned)(ch - 'A' + 10);
                else if (ch >= 'a' && ch <= 'f')
                        d = (unsigned)(ch - 'a' + 10);
                else
                        return -EINVAL;
                v = (v << 4) | d;
        }
        *ret = v;
        return 0;
}

/* Splits line into at most max whitespace-separated fields (in place). */
static size_t split_fields(char *line, char **f, size_t max)
{
        size_t n = 0;
        char *p = line;

        while (n < max) {
                while (*p == ' ' || *p == '\t' || *p == '\n')
                        p++;
                if (!*p)
                        break;
                f[n++] = p;
                while (*p && *p != ' ' && *p != '\t' && *p != '\n')
                        p++;
                if (*p)
                        *p++ = '\0';
        }
        return n;
}

/* "ADDR:PORT" of /proc/net/tcp{,6} → text address and port. */
static int parse_endpoint(const char *s, bool v6, struct lport *ret)
{
        const char *colon = strchr(s, ':');
        uint32_t port, w[4];

        if (!colon || hex_u32(colon + 1, strlen(colon + 1), &port) < 0 || port > 65535)
                return -EINVAL;
        if (!v6) {
                struct in_addr a;
                if ((size_t)(colon - s) != 8 || hex_u32(s, 8, &w[0]) < 0)
                        return -EINVAL;
                a.s_addr = w[0];
                if (!inet_ntop(AF_INET, &a, ret->addr, sizeof(ret->addr)))
                        return -errno;
        } else {
                struct in6_addr a;
                if ((size_t)(colon - s) != 32)
                        return -EINVAL;
                for (int i = 0; i < 4; i++)
                        if (hex_u32(s + 8 * i, 8, &w[i]) < 0)
                                return -EINVAL;
                memcpy(&a, w, sizeof(a));
                if (!inet_ntop(AF_INET6, &a, ret->addr, sizeof(ret->addr)))
                        return -errno;
        }
        ret->port = (uint16_t)port;
        return 0;
}

/* Appends the listening sockets of one /proc/net file; a missing file (no IPv6) is fine. */
static int read_tcp_table(const char *path, bool v6, struct lport *out, size_t *n)
{
        cleanup_fclose FILE *f = fopen(path, "re");
        char line[PORTS_LINE_MAX];
        bool header = true;

        if (!f)
                return errno == ENOENT ? 0 : -errno;
        while (fgets(line, sizeof(line), f)) {
                char *fld[10];
                uint32_t st;
                struct lport lp = {};

                if (!strchr(line, '\n') && !feof(f))
                        return -EINVAL; /* not the format we know */
                if (header) {
                        header = false;
                        continue;
                }
                /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
                if (split_fields(line, fld, ARRAY_SIZE(fld)) < ARRAY_SIZE(fld))
                        continue;
                if (hex_u32(fld[3], strlen(fld[3]), &st) < 0 || st != PORTS_TCP_LISTEN)
                        continue;
                if (parse_endpoint(fld[1], v6, &lp) < 0 || safe_atou64(fld[9], &lp.inode) < 0)
                        continue;
                if (*n >= PORTS_MAX)
                        break;
                out[(*n)++] = lp;
        }
        return 0;
}

static int cmp_inode(const void *a, const void *b)
{
        const struct lport *x = a, *y = b;
        return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static int cmp_port(const void *a, const void *b)
{
        const struct lport *x = a, *y = b;
        if (x->port != y->port)
                return x->port < y->port ? -1 : 1;
        int c = strcmp(x->addr, y->addr);
        if (c)
                return c;
        /* a known owner first, so deduplication keeps it */
        if (!x->pid != !y->pid)
                return x->pid ? -1 : 1;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static bool pid_name(const char *s, uint32_t *ret)
{
        return s[0] >= '1' && s[0] <= '9' && safe_atou32(s, ret) >= 0;
}

/* Fills in lp[].pid (lp sorted by inode) from /proc/<pid>/fd. */
static void find_owners(struct lport *lp, size_t n)
{
        cleanup_closedir DIR *proc = NULL;
        struct dirent *de;
        size_t left = n, pids = 0, links = 0;
        char target[64];

        if (n == 0)
                return;
        proc = opendir("/proc");
        if (!proc)
                return;
        while (left > 0 && pids < PORTS_MAX_PIDS && links < PORTS_MAX_FDS && (de = readdir(proc))) {
                cleanup_closedir DIR *fds = NULL;
                struct dirent *fe;
                uint32_t pid;
                char path[STRLEN("/fd") + DECIMAL_STR_MAX(uint32_t) + 1];

                if (!pid_name(de->d_name, &pid) || pid > INT32_MAX)
                        continue;
                pids++;
                (void)snprintf(path, sizeof(path), "%s/fd", de->d_name);
                int fd = openat(dirfd(proc), path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                fds = fdopendir(fd);
                if (!fds) {
                        (void)close(fd);
                        continue;
                }
                /* Now fd is owned by fds. */
                while (left > 0 && links < PORTS_MAX_FDS && (fe = readdir(fds))) {
                        uint64_t ino;
                        if (fe->d_name[0] == '.')
                                continue;
                        links++;
                        ssize_t l = readlinkat(dirfd(fds), fe->d_name, target, sizeof(target) - 1);
                        if (l <= (ssize_t)STRLEN("socket:[]"))
                                continue;
                        target[l] = '\0';
                        if (strncmp(target, "socket:[", STRLEN("socket:[")) != 0 ||
                            target[l - 1] != ']')
                                continue;
                        target[l - 1] = '\0';
                        if (safe_atou64(target + STRLEN("socket:["), &ino) < 0)
                                continue;
                        struct lport key = { .inode = ino };
                        struct lport *hit = bsearch(&key, lp, n, sizeof(*lp), cmp_inode);
                        if (!hit)
                                continue;
                        if (hit->pid == 0) {
                                hit->pid = (int)pid;
                                left--;
                        } else if ((int)pid < hit->pid) {
                                hit->pid = (int)pid;
                        }
                }
        }
}

static char *process_name(int pid)
{
        char path[STRLEN("/proc//comm") + DECIMAL_STR_MAX(int) + 1];
        char *s = NULL;
        size_t len = 0;

        (void)snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        if (read_small_file(path, PORTS_COMM_MAX, &s, &len) < 0)
                return NULL;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\0'))
                s[--len] = '\0';
        return s;
}

int ports_handle(struct agent_call *c)
{
        cleanup_free struct lport *lp = xmalloc_array(PORTS_MAX, sizeof(*lp));
        size_t n = 0;
        json_t *arr;
        int r;

        r = read_tcp_table("/proc/net/tcp", false, lp, &n);
        if (r >= 0)
                r = read_tcp_table("/proc/net/tcp6", true, lp, &n);
        if (r < 0)
                return agent_reply_err(c->fd, 500, "cannot read the socket table: %s",
                                       strerror(-r));

        qsort(lp, n, sizeof(*lp), cmp_inode);
        find_owners(lp, n);
        qsort(lp, n, sizeof(*lp), cmp_port);

        arr = json_array();
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && lp[i].port == lp[i - 1].port && streq(lp[i].addr, lp[i - 1].addr))
                        continue;
                json_t *e = json_pack("{s:i, s:s, s:s}", "port", (int)lp[i].port, "protocol", "tcp",
                                      "address", lp[i].addr);
                if (!e)
                        continue;
                if (lp[i].pid > 0) {
                        cleanup_free char *name = process_name(lp[i].pid);
                        json_object_set_new(e, "pid", json_integer(lp[i].pid));
                        if (name && name[0]) {
                                json_t *s = json_string(name);
                                if (s)
                                        json_object_set_new(e, "process_name", s);
                        }
                }
                json_array_append_new(arr, e);
        }
        return agent_reply_ok(c->fd, json_pack("{s:o}", "ports", arr));
}
