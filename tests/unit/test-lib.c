/* SPDX-License-Identifier: MIT */
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fdutil.h"
#include "lib/frame.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/path.h"
#include "lib/rand.h"
#include "lib/timeutil.h"
#include "tap.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>

static void test_buf_rejects_growth_past_max(void)
{
        struct buf b;
        buf_init(&b, 8);
        ASSERT_EQ(buf_add(&b, "1234567", 7), 0);
        ASSERT_EQ(buf_add(&b, "89", 2), -E2BIG);
        ASSERT_EQ(b.len, 0u);
}

static void test_buf_addf_large(void)
{
        struct buf b;
        buf_init(&b, 4096);
        ASSERT_EQ(buf_addf(&b, "%0300d", 7), 0);
        ASSERT_EQ(b.len, 300u);
        cleanup_free char *s = buf_take(&b, NULL);
        ASSERT_EQ(s[299], '7');
}

static void test_parse_strict(void)
{
        uint32_t v;
        int64_t i;
        ASSERT_EQ(safe_atou32("42", &v), 0);
        ASSERT_EQ(v, 42);
        ASSERT_EQ(safe_atou32("42x", &v), -EINVAL);
        ASSERT_EQ(safe_atou32("", &v), -EINVAL);
        ASSERT_EQ(safe_atou32("-1", &v), -EINVAL);
        ASSERT_EQ(safe_atou32("4294967296", &v), -ERANGE);
        ASSERT_EQ(safe_atoi64("-9", &i), 0);
        ASSERT_EQ(i, -9);
}

static void test_b64_roundtrip(void)
{
        cleanup_free char *e = b64_encode_alloc("ping\n", 5, 0);
        ASSERT_STREQ(e, "cGluZwo=");
        cleanup_free char *u = b64_encode_alloc("20", 2, B64_URL | B64_NOPAD);
        ASSERT_STREQ(u, "MjA");
        unsigned char *d = NULL;
        size_t n;
        ASSERT_EQ(b64_decode("cGluZwo", 7, 0, &d, &n), 0);
        ASSERT_EQ(n, 5u);
        ASSERT_TRUE(memcmp(d, "ping\n", 5) == 0);
        free(d);
        ASSERT_EQ(b64_decode("cG*u", 4, 0, &d, &n), -EINVAL);
}

static void test_err_wrap(void)
{
        cleanup_err struct cove_err *err = NULL;
        ASSERT_EQ(cove_err_set(&err, ENOENT, "open '%s': %m", "x"), -ENOENT);
        ASSERT_EQ(cove_err_wrap(&err, "create sandbox '%s'", "sb"), -ENOENT);
        ASSERT_STREQ(err->msg, "create sandbox 'sb': open 'x': No such file or directory");
}

struct req {
        char *name;
        struct json_int timeout;
        struct json_bool wait;
};

#define J1 "{\"name\":\"a\",\"timeout\":1800.0,\"x\":1}"
#define J2 "{\"name\":\"a\",\"timeout\":1.5}"
#define J3 "{\"a\":1,\"a\":2}"

static void test_json_dispatch(void)
{
        static const struct json_field fields[] = {
                { "name", json_take_str, offsetof(struct req, name), JSON_MANDATORY, 0, 16 },
                { "timeout", json_take_int, offsetof(struct req, timeout), 0, 0, 86400 },
                { "wait", json_take_bool, offsetof(struct req, wait), 0, 0, 0 },
                {},
        };
        json_t *j = NULL;
        struct req r = { 0 };
        ASSERT_EQ(json_parse(J1, strlen(J1), false, &j, NULL), 0);
        ASSERT_EQ(json_dispatch(j, fields, &r, NULL), 0);
        ASSERT_STREQ(r.name, "a");
        ASSERT_TRUE(r.timeout.set);
        ASSERT_EQ(r.timeout.v, 1800);
        ASSERT_TRUE(!r.wait.set);
        json_decref(j);
        free(r.name);

        cleanup_err struct cove_err *err = NULL;
        memset(&r, 0, sizeof(r));
        ASSERT_EQ(json_parse(J2, strlen(J2), false, &j, NULL), 0);
        ASSERT_EQ(json_dispatch(j, fields, &r, &err), -EINVAL);
        ASSERT_STREQ(err->msg, "field 'timeout' must be an integer");
        json_decref(j);
        free(r.name);

        ASSERT_EQ(json_parse(J3, strlen(J3), false, &j, NULL), -EINVAL);
        char deep[80];
        memset(deep, '[', 40);
        memset(deep + 40, ']', 40);
        ASSERT_EQ(json_parse(deep, 80, false, &j, NULL), -EINVAL);
}

static void test_frame_roundtrip(void)
{
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_EQ(frame_write(sv[0], FRAME_JSON, "{}", 2), 0);
        ASSERT_EQ(frame_write(sv[0], FRAME_END, NULL, 0), 0);
        close(sv[0]);
        struct buf b;
        buf_init(&b, FRAME_MAX_PAYLOAD + 1);
        char kind;
        ASSERT_EQ(frame_read(sv[1], &kind, &b), 1);
        ASSERT_EQ(kind, 'J');
        ASSERT_STREQ(buf_str(&b), "{}");
        ASSERT_EQ(frame_read(sv[1], &kind, &b), 1);
        ASSERT_EQ(kind, 'E');
        ASSERT_EQ(b.len, 0u);
        ASSERT_EQ(frame_read(sv[1], &kind, &b), 0);
        buf_release(&b);
        close(sv[1]);
}

/* One frame header announcing len, then p[0..n), with nfds descriptors on its first byte. */
static int send_with_fds(int sock, char kind, uint32_t len, const char *p, size_t n, const int *fds,
                         size_t nfds)
{
        char frame[FRAME_HEADER_SIZE + 16];
        frame_header_encode((unsigned char *)frame, (uint8_t)kind, len);
        memcpy(frame + FRAME_HEADER_SIZE, p, n);
        union {
                char buf[CMSG_SPACE(4 * sizeof(int))];
                struct cmsghdr align;
        } cm = { 0 };
        struct iovec iov = { frame, FRAME_HEADER_SIZE + n };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = cm.buf,
                             .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
        struct cmsghdr *cmh = CMSG_FIRSTHDR(&mh);
        cmh->cmsg_level = SOL_SOCKET;
        cmh->cmsg_type = SCM_RIGHTS;
        cmh->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cmh), fds, nfds * sizeof(int));
        return sendmsg(sock, &mh, 0) == (ssize_t)(FRAME_HEADER_SIZE + n) ? 0 : -errno;
}

/* A descriptor rides on a frame's first byte; the reader takes one and closes the rest. */
static void test_frame_passes_one_fd(void)
{
        int sv[2], p[2], got = -2;
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
        ASSERT_EQ(frame_write_fd(sv[0], FRAME_JSON, "{\"a\":1}", 7, p[1]), 0);
        ASSERT_EQ(frame_write(sv[0], FRAME_JSON, "{}", 2), 0);
        struct buf b;
        buf_init(&b, FRAME_MAX_PAYLOAD + 1);
        char kind;
        ASSERT_EQ(frame_read_fd(sv[1], &kind, &b, &got), 1);
        ASSERT_STREQ(buf_str(&b), "{\"a\":1}");
        ASSERT_TRUE(got >= 0 && got != p[1]);
        ASSERT_TRUE(fcntl(got, F_GETFD) & FD_CLOEXEC);
        ASSERT_EQ(write(got, "x", 1), 1); /* the same pipe */
        char c = 0;
        ASSERT_EQ(read(p[0], &c, 1), 1);
        ASSERT_EQ(c, 'x');
        close(got);
        ASSERT_EQ(frame_read_fd(sv[1], &kind, &b, &got), 1); /* a frame without one */
        ASSERT_EQ(got, -1);

        /* Three descriptors sent by hand with one frame: the first is kept, the others are
         * closed (their numbers are free again). */
        int fds[3] = { p[1], p[1], p[1] };
        ASSERT_EQ(send_with_fds(sv[0], FRAME_JSON, 2, "{}", 2, fds, 3), 0);
        int before = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the lowest free number */
        close(before);
        ASSERT_EQ(frame_read_fd(sv[1], &kind, &b, &got), 1);
        ASSERT_TRUE(got >= 0);
        int after = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(after <= got + 1);
        close(after);
        close(got);

        /* A truncated frame (10 bytes announced, 2 sent, then EOF): -EPROTO, and the
         * descriptor that came with it is closed, none returned. */
        ASSERT_EQ(send_with_fds(sv[0], FRAME_JSON, 10, "{}", 2, fds, 1), 0);
        ASSERT_EQ(shutdown(sv[0], SHUT_WR), 0);
        before = open("/dev/null", O_RDONLY | O_CLOEXEC);
        close(before);
        ASSERT_EQ(frame_read_fd(sv[1], &kind, &b, &got), -EPROTO);
        ASSERT_EQ(got, -1);
        after = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ASSERT_EQ(after, before);
        close(after);
        buf_release(&b);
        close(sv[0]);
        close(sv[1]);
        close(p[0]);
        close(p[1]);
}

/* What coved accepts from an agent to send with sendfile: regular, readable, local disk. */
static void test_fd_local_file_readable(void)
{
        int64_t size = -1;
        int p[2];
        ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
        ASSERT_TRUE(!fd_local_file_readable(p[0], &size)); /* not a regular file */
        close(p[0]);
        close(p[1]);
        int sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(!fd_local_file_readable(sfd, &size));
        fd_close_foreign(sfd);
        int proc = open("/proc/self/status", O_RDONLY | O_CLOEXEC); /* regular, but procfs */
        ASSERT_TRUE(proc >= 0);
        ASSERT_TRUE(!fd_local_file_readable(proc, &size));
        close(proc);

        /* A file on /dev/shm (tmpfs): accepted for reading, never write-only or O_PATH. */
        char path[] = "/dev/shm/cove-test-fdutil-XXXXXX";
        int fd = mkostemp(path, O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, "hello", 5), 5);
        struct statfs sfs;
        ASSERT_EQ(fstatfs(fd, &sfs), 0);
        if (sfs.f_type == TMPFS_MAGIC) {
                ASSERT_TRUE(fd_local_file_readable(fd, &size));
                ASSERT_EQ(size, 5);
        }
        int wo = open(path, O_WRONLY | O_CLOEXEC);
        int op = open(path, O_PATH | O_CLOEXEC);
        ASSERT_TRUE(wo >= 0 && op >= 0);
        ASSERT_TRUE(!fd_local_file_readable(wo, &size));
        ASSERT_TRUE(!fd_local_file_readable(op, &size));
        close(wo);
        close(op);
        close(fd);
        unlink(path);
}

static void test_json_to_buf_fails_whole_at_cap(void)
{
        /* jansson ignores callback failures while writing object keys: the cap must still fail
         * the whole dump, never produce a truncated document */
        json_t *o = json_object();
        char key[64];
        for (int i = 0; i < 2000; i++) {
                (void)snprintf(key, sizeof(key), "key-%060d", i);
                json_object_set_new(o, key, json_integer(i));
        }
        struct buf b;
        buf_init(&b, 4096);
        ASSERT_EQ(json_to_buf(o, &b), -E2BIG);
        ASSERT_EQ(b.len, 0u);
        json_decref(o);
}

static void check_norm(const char *base, const char *p, const char *want)
{
        cleanup_free char *got = path_normalize(base, p);
        ASSERT_STREQ(got, want);
}

static void test_path_normalize(void)
{
        check_norm(NULL, "/", "/");
        check_norm(NULL, "//a/./b//c/", "/a/b/c");
        check_norm(NULL, "/a/b/../../../etc", "/etc");
        check_norm("/root", "x/../y", "/root/y");
        check_norm("/home/user", "..", "/home");
        check_norm(NULL, "rel", "/rel");
}

static void test_time_format(void)
{
        char out[TIME_RFC3339_MAX];
        time_format_rfc3339(1781081750123, out);
        ASSERT_STREQ(out, "2026-06-10T08:55:50.123Z");
}

static void test_random_id(void)
{
        cleanup_free char *id = random_id("cmd_", 20);
        ASSERT_EQ(strlen(id), 24u);
        for (size_t i = 4; i < 24; i++)
                ASSERT_TRUE((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9'));
}

int main(void)
{
        RUN(test_buf_rejects_growth_past_max);
        RUN(test_buf_addf_large);
        RUN(test_parse_strict);
        RUN(test_b64_roundtrip);
        RUN(test_err_wrap);
        RUN(test_json_dispatch);
        RUN(test_frame_roundtrip);
        RUN(test_frame_passes_one_fd);
        RUN(test_fd_local_file_readable);
        RUN(test_json_to_buf_fails_whole_at_cap);
        RUN(test_path_normalize);
        RUN(test_time_format);
        RUN(test_random_id);
        return tap_done();
}
