/* SPDX-License-Identifier: MIT */
/*
 * fuzz-tar.c — archive extraction (src/build/extract.c, build-plane.md §7.4): image layers
 * from any registry and build contexts from any client are unpacked by coved, as root.
 *
 * The first byte chooses the options (OCI whiteouts, following symlinks in the root, COPY mode
 * with a glob, numeric ids); the rest is the archive (tar, gzip or zstd), extracted into a
 * fresh directory `root` beside a sentinel file. Checked: whatever the archive holds, nothing
 * appears, changes or disappears beside `root` (no escape through "..", absolute names,
 * symlinks or hard links), no device node or FIFO is made inside it, and a failure carries a
 * message. extract_name_normalize() is checked on the input as a name too: a normalised name
 * is relative, has no "", "." or ".." component and no trailing '/', and is its own normal form.
 */
#include "fuzz.h"
#include "build/extract.h"
#include "lib/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[64];

static void remove_base(void)
{
        (void)rmdir(base); /* empty after every input */
}

static void remove_tree(int dirfd)
{
        DIR *d = fdopendir(dirfd);
        struct dirent *de;
        FUZZ_CHECK(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                struct stat st;
                FUZZ_CHECK(fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
                FUZZ_CHECK(!S_ISCHR(st.st_mode) || st.st_rdev == 0); /* whiteouts only */
                FUZZ_CHECK(!S_ISBLK(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode));
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        FUZZ_CHECK(sub >= 0);
                        remove_tree(sub);
                        FUZZ_CHECK(unlinkat(dirfd, de->d_name, AT_REMOVEDIR) == 0);
                } else {
                        FUZZ_CHECK(unlinkat(dirfd, de->d_name, 0) == 0);
                }
        }
        closedir(d);
}

/* base holds exactly "root" and "sentinel", the sentinel as it was made. */
static void check_base(int basefd)
{
        DIR *d = fdopendir(dup(basefd));
        struct dirent *de;
        size_t n = 0;
        FUZZ_CHECK(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                FUZZ_CHECK(strcmp(de->d_name, "root") == 0 || strcmp(de->d_name, "sentinel") == 0);
                n++;
        }
        closedir(d);
        FUZZ_CHECK(n == 2);
        struct stat st;
        FUZZ_CHECK(fstatat(basefd, "sentinel", &st, AT_SYMLINK_NOFOLLOW) == 0);
        FUZZ_CHECK(S_ISREG(st.st_mode) && st.st_size == 4 && (st.st_mode & 07777) == 0600);
        FUZZ_CHECK(fstatat(basefd, "root", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));
}

static void check_name(const uint8_t *data, size_t size)
{
        char *name = strndup((const char *)data, size), *norm = NULL, *again = NULL;
        struct cove_err *err = NULL;
        FUZZ_CHECK(name);
        if (extract_name_normalize(name, &norm, &err) < 0) {
                FUZZ_CHECK(err && err->msg && !norm);
        } else {
                size_t l = strlen(norm);
                FUZZ_CHECK(norm[0] != '/' && (l == 0 || norm[l - 1] != '/'));
                for (const char *s = norm; l > 0 && s;) {
                        const char *e = strchr(s, '/');
                        size_t k = e ? (size_t)(e - s) : strlen(s);
                        FUZZ_CHECK(k > 0 && !(k == 1 && s[0] == '.') &&
                                   !(k == 2 && s[0] == '.' && s[1] == '.'));
                        s = e ? e + 1 : NULL;
                }
                FUZZ_CHECK(extract_name_normalize(norm, &again, &err) == 0);
                FUZZ_CHECK(strcmp(norm, again) == 0);
        }
        cove_err_free(&err);
        free(name);
        free(norm);
        free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1 || size > FUZZ_MAX_INPUT)
                return 0;
        check_name(data + 1, size - 1);

        if (!base[0]) {
                (void)snprintf(base, sizeof(base), "/tmp/cove-fuzz-tar.%d", (int)getpid());
                FUZZ_CHECK(mkdir(base, 0700) == 0 || errno == EEXIST);
                FUZZ_CHECK(atexit(remove_base) == 0);
        }
        int basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        FUZZ_CHECK(basefd >= 0);
        FUZZ_CHECK(mkdirat(basefd, "root", 0755) == 0);
        int s = openat(basefd, "sentinel", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        FUZZ_CHECK(s >= 0 && write(s, "keep", 4) == 4);
        (void)close(s);
        int rootfd = openat(basefd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
        FUZZ_CHECK(rootfd >= 0);

        uint8_t opt = data[0];
        struct extract_opts o = {
                .flags = (opt & 1 ? EXTRACT_OCI_WHITEOUTS : 0) |
                         (opt & 2 ? EXTRACT_FOLLOW_IN_ROOT : 0),
                .max_entries = 256,
                .max_bytes = 1 << 20,
                .uid = opt & 4 ? -1 : 0,
                .gid = opt & 4 ? -1 : 0,
                .src = opt & 8 ? (opt & 16 ? "a*/*.py" : "app") : NULL,
                .dest = opt & 8 ? (opt & 32 ? "/srv/" : "/srv/x") : NULL,
        };
        struct cove_err *err = NULL;
        struct extract_stats stats = { 0 };
        int r = extract_archive_mem(rootfd, data + 1, size - 1, &o, &stats, &err);
        if (r < 0)
                FUZZ_CHECK(err && err->msg);
        else
                FUZZ_CHECK(stats.entries <= 256 && stats.bytes <= (1 << 20));
        cove_err_free(&err);
        (void)close(rootfd);

        check_base(basefd);
        int rfd = openat(basefd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        FUZZ_CHECK(rfd >= 0);
        remove_tree(rfd);
        FUZZ_CHECK(unlinkat(basefd, "root", AT_REMOVEDIR) == 0);
        FUZZ_CHECK(unlinkat(basefd, "sentinel", 0) == 0);
        (void)close(basefd);
        return 0;
}
