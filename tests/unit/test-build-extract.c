/* SPDX-License-Identifier: MIT */
/* Archive extraction (src/build/extract.c): build-plane.md §7.4 and the OCI layer rules. Runs as
 * root (chown, mknod for whiteouts, trusted.* xattrs); skips otherwise. */
#include "build/extract.h"
#include "build/pack.h"
#include "lib/buf.h"
#include "lib/macro.h"

#include "archive-helpers.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static char tmp[256]; /* per test: <tmp>/root is the extraction root, <tmp>/outside a witness */
static char root[300], outside[300];

static void teardown(void);

static void setup(void)
{
        char cmd[600];

        if (tmp[0])
                teardown(); /* a failed test longjmp'ed past its own teardown */
        (void)snprintf(tmp, sizeof(tmp), "/tmp/cove-test-extract-XXXXXX");
        ASSERT_TRUE(mkdtemp(tmp) != NULL);
        (void)snprintf(root, sizeof(root), "%s/root", tmp);
        (void)snprintf(outside, sizeof(outside), "%s/outside", tmp);
        ASSERT_EQ(mkdir(root, 0755), 0);
        ASSERT_EQ(mkdir(outside, 0755), 0);
        (void)snprintf(cmd, sizeof(cmd), "echo witness > %s/file", outside);
        ASSERT_EQ(system(cmd), 0);
}

static void teardown(void)
{
        char cmd[600];
        if (!tmp[0])
                return;
        (void)snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
        tmp[0] = '\0';
        if (system(cmd) != 0)
                printf("# could not remove %s\n", tmp);
}

/* The witness dir holds exactly the one file, unchanged. */
static void assert_outside_untouched(void)
{
        char p[400], buf[64] = { 0 };
        int n = 0;
        DIR *d = opendir(outside);
        struct dirent *de;
        ASSERT_TRUE(d != NULL);
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        closedir(d);
        ASSERT_EQ(n, 1);
        (void)snprintf(p, sizeof(p), "%s/file", outside);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(read(fd, buf, sizeof(buf) - 1), 8);
        close(fd);
        ASSERT_STREQ(buf, "witness\n");
}

static int extract(const struct tentry *e, size_t n, enum tcomp comp, const struct extract_opts *o,
                   struct cove_err **err)
{
        void *mem;
        size_t len;
        struct extract_opts def = { .uid = -1, .gid = -1 };
        make_tar(e, n, comp, &mem, &len);
        int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int r = extract_archive_mem(rootfd, mem, len, o ? o : &def, NULL, err);
        if (r < 0 && err && *err)
                printf("# extract: %s\n", (*err)->msg);
        close(rootfd);
        free(mem);
        return r;
}

static int lstat_at(const char *rel, struct stat *st)
{
        char p[600];
        (void)snprintf(p, sizeof(p), "%s/%s", root, rel);
        return lstat(p, st);
}

static char *slurp(const char *rel)
{
        char p[600];
        static char buf[4096];
        (void)snprintf(p, sizeof(p), "%s/%s", root, rel);
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return NULL;
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[k < 0 ? 0 : k] = '\0';
        return buf;
}

static void test_name_normalize(void)
{
        char *s = NULL;
        ASSERT_EQ(extract_name_normalize("./a//b/./c/", &s, NULL), 0);
        ASSERT_STREQ(s, "a/b/c");
        free(s);
        ASSERT_EQ(extract_name_normalize("./", &s, NULL), 0);
        ASSERT_STREQ(s, "");
        free(s);
        ASSERT_EQ(extract_name_normalize("a/../b", &s, NULL), -EINVAL);
        ASSERT_EQ(extract_name_normalize("/etc/passwd", &s, NULL), -EINVAL);
        ASSERT_EQ(extract_name_normalize("..", &s, NULL), -EINVAL);
        ASSERT_EQ(extract_name_normalize("a/..b", &s, NULL), 0); /* a name, not a parent */
        ASSERT_STREQ(s, "a/..b");
        free(s);
}

static void test_basic_tree(void)
{
        setup();
        struct tentry e[] = {
                { "./", 'd', NULL, 0755, 0, 0 },
                { "./bin/", 'd', NULL, 0755, 0, 0 },
                { "./bin/tool", 'f', "#!/bin/sh\n", 04755, 0, 0 },
                { "./home/u/notes.txt", 'f', "hello", 0600, 1000, 1001 },
                { "./bin/sh", 'l', "/bin/busybox", 0, 0, 0 },
                { "./bin/tool2", 'h', "bin/tool", 0, 0, 0 },
                { "./etc/cap", 'f', "x", 0755, 0, 0, "security.capability",
                  "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                  "\x00",
                  20 },
                { "./etc/evilx", 'f', "x", 0644, 0, 0, "trusted.overlay.opaque", "y" },
                { "./etc/userx", 'f', "x", 0644, 0, 0, "user.note", "v" },
        };
        struct cove_err *err = NULL;
        struct stat st, st2;
        char v[8] = { 0 };
        char p[600];

        ASSERT_EQ(extract(e, ARRAY_SIZE(e), T_GZIP, NULL, &err), 0);
        ASSERT_EQ(lstat_at("bin/tool", &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 04755); /* setuid survives the chown */
        ASSERT_EQ(lstat_at("home/u/notes.txt", &st), 0);
        ASSERT_EQ(st.st_uid, 1000);
        ASSERT_EQ(st.st_gid, 1001);
        ASSERT_EQ(st.st_mode & 07777, 0600);
        ASSERT_EQ(st.st_mtime, 1700000000);
        ASSERT_STREQ(slurp("home/u/notes.txt"), "hello");
        ASSERT_EQ(lstat_at("home", &st), 0); /* implicit parent */
        ASSERT_EQ(st.st_mode & 07777, 0755);
        ASSERT_EQ(lstat_at("bin", &st), 0); /* directory mtimes survive their children */
        ASSERT_EQ(st.st_mtime, 1700000000);
        ASSERT_EQ(lstat_at("bin/sh", &st), 0);
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        (void)snprintf(p, sizeof(p), "%s/bin/sh", root);
        char target[64] = { 0 };
        ASSERT_EQ(readlink(p, target, sizeof(target) - 1), 12);
        ASSERT_STREQ(target, "/bin/busybox");
        ASSERT_EQ(lstat_at("bin/tool2", &st2), 0);
        ASSERT_EQ(lstat_at("bin/tool", &st), 0);
        ASSERT_EQ(st.st_ino, st2.st_ino);
        (void)snprintf(p, sizeof(p), "%s/etc/evilx", root);
        ASSERT_EQ(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), -1);
        (void)snprintf(p, sizeof(p), "%s/etc/userx", root);
        ASSERT_EQ(lgetxattr(p, "user.note", v, sizeof(v)), 1);
        (void)snprintf(p, sizeof(p), "%s/etc/cap", root);
        ASSERT_TRUE(lgetxattr(p, "security.capability", NULL, 0) > 0);
        assert_outside_untouched();
        teardown();
}

static void expect_refused(const struct tentry *e, size_t n, int errnum, const char *fragment)
{
        struct cove_err *err = NULL;
        setup();
        ASSERT_EQ(extract(e, n, T_GZIP, NULL, &err), -errnum);
        ASSERT_TRUE(err && strstr(err->msg, fragment));
        cove_err_free(&err);
        assert_outside_untouched();
        teardown();
}

static void test_dotdot_refused(void)
{
        char name[400];
        struct tentry e[] = { { name, 'f', "pwned", 0644, 0, 0 } };
        (void)snprintf(name, sizeof(name), "../outside/file");
        expect_refused(e, 1, EINVAL, "leaves the archive root");
        (void)snprintf(name, sizeof(name), "a/../../outside/x");
        expect_refused(e, 1, EINVAL, "leaves the archive root");
}

static void test_absolute_refused(void)
{
        char name[400];
        struct tentry e[] = { { name, 'f', "pwned", 0644, 0, 0 } };
        setup();
        (void)snprintf(name, sizeof(name), "%s/file", outside);
        teardown();
        expect_refused(e, 1, EINVAL, "absolute names are not allowed");
}

static void test_symlink_not_followed(void)
{
        char target[400];
        struct tentry e[] = {
                { "evil", 'l', target, 0, 0, 0 },
                { "evil/file", 'f', "pwned", 0644, 0, 0 },
        };
        struct tentry rel[] = {
                { "up", 'l', "../../..", 0, 0, 0 },
                { "up/tmp/x", 'f', "pwned", 0644, 0, 0 },
        };
        setup();
        (void)snprintf(target, sizeof(target), "%s", outside);
        teardown();
        expect_refused(e, 2, ELOOP, "lies under a symbolic link");
        expect_refused(rel, 2, ELOOP, "lies under a symbolic link");
}

static void test_symlink_final_component_replaced(void)
{
        char target[400], p[600];
        struct tentry e[] = {
                { "f", 'l', target, 0, 0, 0 },
                { "f", 'f', "inside", 0644, 0, 0 },
        };
        struct cove_err *err = NULL;
        struct stat st;
        setup();
        (void)snprintf(target, sizeof(target), "%s/file", outside);
        ASSERT_EQ(extract(e, 2, T_PLAIN, NULL, &err), 0);
        ASSERT_EQ(lstat_at("f", &st), 0);
        ASSERT_TRUE(S_ISREG(st.st_mode));
        ASSERT_STREQ(slurp("f"), "inside");
        (void)p;
        assert_outside_untouched();
        teardown();
}

static void test_hardlink_out_refused(void)
{
        char target[400];
        struct tentry abs[] = { { "hl", 'h', target, 0, 0, 0 } };
        struct tentry dotdot[] = { { "hl", 'h', "../outside/file", 0, 0, 0 } };
        struct tentry notinarchive[] = { { "hl", 'h', "preexisting", 0, 0, 0 } };
        setup();
        (void)snprintf(target, sizeof(target), "%s/file", outside);
        teardown();
        expect_refused(abs, 1, EINVAL, "absolute names are not allowed");
        expect_refused(dotdot, 1, EINVAL, "leaves the archive root");

        /* a file that exists in the root but did not come from this archive */
        struct cove_err *err = NULL;
        char cmd[700];
        setup();
        (void)snprintf(cmd, sizeof(cmd), "echo x > %s/preexisting", root);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_EQ(extract(notinarchive, 1, T_GZIP, NULL, &err), -EPERM);
        ASSERT_TRUE(strstr(err->msg, "points outside the archive"));
        cove_err_free(&err);
        teardown();
}

static void test_devices_refused(void)
{
        struct tentry chr[] = { { "dev/null", 'c', NULL, 0, 0, 0 } };
        struct tentry fifo[] = { { "pipe", 'p', NULL, 0, 0, 0 } };
        expect_refused(chr, 1, EPERM, "device nodes, FIFOs and sockets are not allowed");
        expect_refused(fifo, 1, EPERM, "device nodes, FIFOs and sockets are not allowed");
}

static void test_whiteouts(void)
{
        struct tentry e[] = {
                { "etc/", 'd', NULL, 0755, 0, 0 },
                { "etc/.wh.motd", 'f', "", 0644, 0, 0 },
                { "var/cache/.wh..wh..opq", 'f', "", 0644, 0, 0 },
                { "var/cache/keep", 'f', "k", 0644, 0, 0 },
                { "same", 'f', "here", 0644, 0, 0 },
                { ".wh.same", 'f', "", 0644, 0, 0 },
                { ".wh..wh.plnk", 'f', "", 0644, 0, 0 },
        };
        struct extract_opts o = { .flags = EXTRACT_OCI_WHITEOUTS, .uid = -1, .gid = -1 };
        struct cove_err *err = NULL;
        struct stat st;
        char p[600], v[4] = { 0 };

        setup();
        ASSERT_EQ(extract(e, ARRAY_SIZE(e), T_GZIP, &o, &err), 0);
        ASSERT_EQ(lstat_at("etc/motd", &st), 0);
        ASSERT_TRUE(S_ISCHR(st.st_mode));
        ASSERT_EQ(st.st_rdev, makedev(0, 0));
        ASSERT_TRUE(lstat_at("etc/.wh.motd", &st) < 0);
        (void)snprintf(p, sizeof(p), "%s/var/cache", root);
        ASSERT_EQ(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
        ASSERT_EQ(v[0], 'y');
        ASSERT_EQ(lgetxattr(p, "user.overlay.opaque", v, sizeof(v)), 1);
        ASSERT_STREQ(slurp("var/cache/keep"), "k");
        ASSERT_STREQ(slurp("same"), "here"); /* same-layer whiteout does not hide it */
        ASSERT_TRUE(lstat_at(".wh..wh.plnk", &st) < 0);
        ASSERT_TRUE(lstat_at("plnk", &st) < 0);
        teardown();

        /* without the flag, .wh. names are plain files (build contexts) */
        setup();
        ASSERT_EQ(extract(e, 2, T_GZIP, NULL, &err), 0);
        ASSERT_EQ(lstat_at("etc/.wh.motd", &st), 0);
        ASSERT_TRUE(S_ISREG(st.st_mode));
        teardown();
}

static void test_limits(void)
{
        struct tentry e[] = {
                { "a", 'f', "1234", 0644, 0, 0 },
                { "b", 'f', "1234", 0644, 0, 0 },
                { "c", 'f', "1234", 0644, 0, 0 },
                { "d", 'f', "1234", 0644, 0, 0 },
        };
        struct extract_opts few = { .max_entries = 3, .uid = -1, .gid = -1 };
        struct extract_opts small = { .max_bytes = 10, .uid = -1, .gid = -1 };
        struct tentry big_id[] = { { "x", 'f', "1", 0644, 70000, 0 } };
        struct cove_err *err = NULL;

        setup();
        ASSERT_EQ(extract(e, 4, T_GZIP, &few, &err), -EFBIG);
        ASSERT_TRUE(strstr(err->msg, "more than 3 entries"));
        cove_err_free(&err);
        ASSERT_EQ(extract(e, 4, T_GZIP, &small, &err), -EFBIG);
        ASSERT_TRUE(strstr(err->msg, "more than 10 bytes"));
        cove_err_free(&err);
        ASSERT_EQ(extract(big_id, 1, T_GZIP, NULL, &err), -ERANGE);
        ASSERT_TRUE(strstr(err->msg, "outside 0-65535"));
        cove_err_free(&err);
        teardown();
}

static void test_replace_types(void)
{
        struct tentry e[] = {
                { "x", 'f', "file", 0644, 0, 0 },   { "x/", 'd', NULL, 0755, 0, 0 },
                { "x/in", 'f', "in", 0644, 0, 0 },  { "y/", 'd', NULL, 0755, 0, 0 },
                { "y/deep", 'f', "d", 0644, 0, 0 }, { "y", 'f', "now a file", 0644, 0, 0 },
        };
        struct cove_err *err = NULL;
        struct stat st;
        setup();
        ASSERT_EQ(extract(e, ARRAY_SIZE(e), T_GZIP, NULL, &err), 0);
        ASSERT_EQ(lstat_at("x", &st), 0);
        ASSERT_TRUE(S_ISDIR(st.st_mode));
        ASSERT_STREQ(slurp("x/in"), "in");
        ASSERT_STREQ(slurp("y"), "now a file");
        teardown();
}

static void test_zstd_and_plain(void)
{
        struct tentry e[] = { { "z", 'f', "zstd data", 0644, 0, 0 } };
        struct cove_err *err = NULL;
        setup();
        ASSERT_EQ(extract(e, 1, T_ZSTD, NULL, &err), 0);
        ASSERT_STREQ(slurp("z"), "zstd data");
        teardown();
        setup();
        ASSERT_EQ(extract(e, 1, T_PLAIN, NULL, &err), 0);
        ASSERT_STREQ(slurp("z"), "zstd data");
        teardown();
}

static void test_garbage_refused(void)
{
        struct cove_err *err = NULL;
        struct extract_opts o = { .uid = -1, .gid = -1 };
        static const char junk[] = "this is not a tar archive at all, not even close........";
        setup();
        int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(extract_archive_mem(rootfd, junk, sizeof(junk), &o, NULL, &err) < 0);
        ASSERT_TRUE(err != NULL);
        cove_err_free(&err);
        close(rootfd);
        teardown();
}

static void test_copy_mode(void)
{
        struct tentry ctx[] = {
                { "app/", 'd', NULL, 0755, 501, 20 },
                { "app/main.py", 'f', "print(1)", 0755, 501, 20 },
                { "app/lib/util.py", 'f', "u", 0644, 501, 20 },
                { "req.txt", 'f', "numpy", 0644, 501, 20 },
                { "req-dev.txt", 'f', "pytest", 0644, 501, 20 },
        };
        struct cove_err *err = NULL;
        struct stat st;

        /* a directory copies its contents into dest; owner root unless told */
        struct extract_opts o1 = { .src = "app", .dest = "/srv/code", .uid = 0, .gid = 0 };
        setup();
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o1, &err), 0);
        ASSERT_STREQ(slurp("srv/code/main.py"), "print(1)");
        ASSERT_STREQ(slurp("srv/code/lib/util.py"), "u");
        ASSERT_EQ(lstat_at("srv/code/main.py", &st), 0);
        ASSERT_EQ(st.st_uid, 0);
        ASSERT_EQ(st.st_mode & 0777, 0755);
        ASSERT_TRUE(lstat_at("srv/code/app", &st) < 0);
        ASSERT_TRUE(lstat_at("req.txt", &st) < 0);
        teardown();

        /* a file to a dest ending in '/' lands under its base name; --chown */
        struct extract_opts o2 = { .src = "./req.txt", .dest = "/opt/", .uid = 1000, .gid = 1000 };
        setup();
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o2, &err), 0);
        ASSERT_STREQ(slurp("opt/req.txt"), "numpy");
        ASSERT_EQ(lstat_at("opt/req.txt", &st), 0);
        ASSERT_EQ(st.st_uid, 1000);
        teardown();

        /* a file to a dest without '/' is renamed */
        struct extract_opts o3 = {
                .src = "req.txt", .dest = "/etc/requirements", .uid = 0, .gid = 0
        };
        setup();
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o3, &err), 0);
        ASSERT_STREQ(slurp("etc/requirements"), "numpy");
        teardown();

        /* glob */
        struct extract_opts o4 = { .src = "req*.txt", .dest = "/r/", .uid = 0, .gid = 0 };
        setup();
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o4, &err), 0);
        ASSERT_STREQ(slurp("r/req.txt"), "numpy");
        ASSERT_STREQ(slurp("r/req-dev.txt"), "pytest");
        ASSERT_TRUE(lstat_at("r/main.py", &st) < 0);
        teardown();

        /* "." is the whole context */
        struct extract_opts o5 = { .src = ".", .dest = "/w", .uid = 0, .gid = 0 };
        setup();
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o5, &err), 0);
        ASSERT_STREQ(slurp("w/app/main.py"), "print(1)");
        ASSERT_STREQ(slurp("w/req.txt"), "numpy");
        teardown();

        /* missing source, and sources that leave the context */
        struct extract_opts o6 = { .src = "nope.txt", .dest = "/", .uid = 0, .gid = 0 };
        struct extract_opts o7 = { .src = "../etc/passwd", .dest = "/", .uid = 0, .gid = 0 };
        setup();
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o6, &err), -ENOENT);
        ASSERT_TRUE(strstr(err->msg, "'nope.txt' not found in the build context"));
        cove_err_free(&err);
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o7, &err), -EINVAL);
        ASSERT_TRUE(strstr(err->msg, "leaves the build context"));
        cove_err_free(&err);
        teardown();
}

static void test_copy_follows_existing_links_in_root(void)
{
        /* merged /usr: /lib -> usr/lib; COPY into /lib writes through the link, clamped */
        struct tentry ctx[] = {
                { "lib/", 'd', NULL, 0755, 0, 0 },
                { "lib/libx.so", 'f', "elf", 0644, 0, 0 },
        };
        struct extract_opts o = {
                .flags = EXTRACT_FOLLOW_IN_ROOT, .src = ".", .dest = "/", .uid = 0, .gid = 0
        };
        struct cove_err *err = NULL;
        struct stat st;
        char cmd[700];

        setup();
        (void)snprintf(cmd, sizeof(cmd), "mkdir -p %s/usr/lib && ln -s usr/lib %s/lib", root, root);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o, &err), 0);
        ASSERT_EQ(lstat_at("lib", &st), 0);
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        ASSERT_STREQ(slurp("usr/lib/libx.so"), "elf");
        teardown();

        /* an absolute link resolves inside the root, never on the host */
        setup();
        (void)snprintf(cmd, sizeof(cmd), "mkdir -p %s/usr/lib && ln -s %s %s/lib", root, outside,
                       root);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_EQ(extract(ctx, ARRAY_SIZE(ctx), T_GZIP, &o, &err), 0);
        ASSERT_STREQ(slurp("lib/libx.so"), "elf"); /* the dangling link was replaced */
        assert_outside_untouched();
        teardown();
}

static void test_check_targz(void)
{
        struct tentry e[] = { { "a", 'f', "x", 0644, 0, 0 } };
        void *mem;
        size_t len;
        struct cove_err *err = NULL;
        char path[] = "/tmp/cove-test-targz-XXXXXX";
        int fd = mkstemp(path);

        ASSERT_TRUE(fd >= 0);
        unlink(path);
        make_tar(e, 1, T_GZIP, &mem, &len);
        ASSERT_EQ(write(fd, mem, len), (ssize_t)len);
        free(mem);
        ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
        ASSERT_EQ(extract_check_targz_fd(fd, &err), 0);
        ASSERT_EQ(ftruncate(fd, 0), 0);
        make_tar(e, 1, T_PLAIN, &mem, &len);
        ASSERT_EQ(pwrite(fd, mem, len, 0), (ssize_t)len);
        free(mem);
        ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
        ASSERT_EQ(extract_check_targz_fd(fd, &err), -EINVAL);
        ASSERT_TRUE(strstr(err->msg, "not gzip-compressed"));
        cove_err_free(&err);
        close(fd);
}

static void test_pack_round_trip(void)
{
        struct buf a, b;
        struct cove_err *err = NULL;
        char cmd[900], ctx[400];
        struct stat st;
        setup();
        (void)snprintf(ctx, sizeof(ctx), "%s/ctx", tmp);
        (void)snprintf(
                cmd, sizeof(cmd),
                "mkdir -p %s/app/lib && echo main > %s/app/main.py && echo u > %s/app/lib/u.py"
                " && chmod 755 %s/app/main.py && ln -s main.py %s/app/m && echo r > %s/req.txt",
                ctx, ctx, ctx, ctx, ctx, ctx);
        ASSERT_EQ(system(cmd), 0);
        int cfd = open(ctx, O_PATH | O_DIRECTORY | O_CLOEXEC);
        char *srcs[] = { "app", "./req.txt", NULL };
        ASSERT_EQ(pack_targz(cfd, srcs, &a, NULL), 0);
        ASSERT_EQ(utimensat(cfd, "req.txt", (struct timespec[]){ { 1, 0 }, { 1, 0 } }, 0), 0);
        ASSERT_EQ(pack_targz(cfd, srcs, &b, NULL), 0);
        ASSERT_EQ(a.len, b.len); /* same tree, same bytes: mtimes are not packed */
        ASSERT_TRUE(memcmp(a.ptr, b.ptr, a.len) == 0);
        /* and no time in the gzip header (bytes 4-7, MTIME) */
        ASSERT_EQ((unsigned char)a.ptr[0], 0x1f);
        ASSERT_EQ(a.ptr[4] | a.ptr[5] | a.ptr[6] | a.ptr[7], 0);
        buf_release(&b);
        char *whole[] = { ".", NULL };
        ASSERT_EQ(pack_targz(cfd, whole, &b, NULL), 0);
        buf_release(&b);
        char *bad[] = { "../outside", NULL };
        ASSERT_EQ(pack_targz(cfd, bad, &b, &err), -EINVAL);
        ASSERT_TRUE(strstr(err->msg, "outside the build context"));
        cove_err_free(&err);
        char *missing[] = { "nope", NULL };
        ASSERT_EQ(pack_targz(cfd, missing, &b, &err), -ENOENT);
        cove_err_free(&err);
        close(cfd);

        /* what was packed unpacks as COPY would place it */
        int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct extract_opts o = { .src = "app", .dest = "/srv/", .uid = 0, .gid = 0 };
        ASSERT_EQ(extract_archive_mem(rootfd, a.ptr, a.len, &o, NULL, NULL), 0);
        close(rootfd);
        ASSERT_STREQ(slurp("srv/main.py"), "main\n");
        ASSERT_STREQ(slurp("srv/lib/u.py"), "u\n");
        ASSERT_EQ(lstat_at("srv/m", &st), 0);
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        ASSERT_EQ(lstat_at("srv/main.py", &st), 0);
        ASSERT_EQ(st.st_mode & 0777, 0755);
        buf_release(&a);
        teardown();
}

int main(void)
{
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (chown, mknod, trusted xattrs)\n");
                return 77;
        }
        RUN(test_name_normalize);
        RUN(test_basic_tree);
        RUN(test_dotdot_refused);
        RUN(test_absolute_refused);
        RUN(test_symlink_not_followed);
        RUN(test_symlink_final_component_replaced);
        RUN(test_hardlink_out_refused);
        RUN(test_devices_refused);
        RUN(test_whiteouts);
        RUN(test_limits);
        RUN(test_replace_types);
        RUN(test_zstd_and_plain);
        RUN(test_garbage_refused);
        RUN(test_copy_mode);
        RUN(test_copy_follows_existing_links_in_root);
        RUN(test_check_targz);
        RUN(test_pack_round_trip);
        teardown();
        return tap_done();
}
