/* SPDX-License-Identifier: MIT */
#include "build/extract.h"

#include "lib/buf.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "runtime/fsutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "lib/banned.h"

#define EXTRACT_READ_BLOCK    (128 * 1024)
#define EXTRACT_COMPONENT_MAX 255
#define EXTRACT_XATTR_MAX     (64 * 1024)

/* A set of the paths this extraction created (hard-link targets must be among them). */
struct strset {
        char **slots;
        size_t cap, n;
};

static uint64_t fnv1a(const char *s)
{
        uint64_t h = UINT64_C(1469598103934665603);
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
        return h;
}

static void strset_free(struct strset *s)
{
        for (size_t i = 0; i < s->cap; i++)
                free(s->slots[i]);
        free(s->slots);
        *s = (struct strset){ 0 };
}

static bool strset_has(const struct strset *s, const char *k)
{
        if (s->cap == 0)
                return false;
        for (size_t i = fnv1a(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
                if (!s->slots[i])
                        return false;
                if (streq(s->slots[i], k))
                        return true;
        }
}

static void strset_add(struct strset *s, const char *k)
{
        if (strset_has(s, k))
                return;
        if ((s->n + 1) * 2 > s->cap) {
                struct strset g = { .cap = s->cap ? s->cap * 2 : 256 };
                g.slots = xzalloc(g.cap * sizeof(char *));
                for (size_t i = 0; i < s->cap; i++) {
                        if (!s->slots[i])
                                continue;
                        size_t j = fnv1a(s->slots[i]) & (g.cap - 1);
                        while (g.slots[j])
                                j = (j + 1) & (g.cap - 1);
                        g.slots[j] = s->slots[i];
                        g.n++;
                }
                free(s->slots);
                *s = g;
        }
        size_t j = fnv1a(k) & (s->cap - 1);
        while (s->slots[j])
                j = (j + 1) & (s->cap - 1);
        s->slots[j] = xstrdup(k);
        s->n++;
}

struct ctx {
        int rootfd;
        const struct extract_opts *o;
        uint64_t max_entries, max_bytes;
        struct extract_stats st;
        struct strset created;
        char *parent_path; /* cache of the last parent directory */
        int parent_fd;
        /* COPY mode */
        char *src; /* normalised; "" = whole archive */
        bool src_glob;
        size_t src_ncomp;
        char *dest; /* normalised, relative; "" = root */
        bool dest_dir;
        bool matched;
        /* directory mtimes, applied at the end (creating children changes them) */
        struct dir_time {
                char *path;
                struct timespec mtime;
        } * dtimes;
        size_t n_dtimes, cap_dtimes;
};

int extract_name_normalize(const char *name, char **ret, struct cove_err **err)
{
        cleanup_buf struct buf b;
        const char *p = name;

        buf_init(&b, EXTRACT_NAME_MAX + 1);
        if (!name)
                return cove_err_set(err, EINVAL, "entry without a name");
        if (strlen(name) > EXTRACT_NAME_MAX)
                return cove_err_set(err, ENAMETOOLONG, "entry '%.100s…': name is too long", name);
        if (name[0] == '/')
                return cove_err_set(err, EINVAL, "entry '%.200s': absolute names are not allowed",
                                    name);
        while (*p) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return cove_err_set(err, EINVAL,
                                            "entry '%.200s': name leaves the archive root", name);
                if (n > EXTRACT_COMPONENT_MAX)
                        return cove_err_set(err, ENAMETOOLONG,
                                            "entry '%.200s': a name component is too long", name);
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if ((b.len > 0 && buf_addc(&b, '/') < 0) || buf_add(&b, p, n) < 0)
                                return cove_err_set(err, ENAMETOOLONG,
                                                    "entry '%.100s…': name is too long", name);
                }
                p += n;
                while (*p == '/')
                        p++;
        }
        *ret = b.len ? buf_take(&b, NULL) : xstrdup("");
        return 0;
}

static const char *last_component(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

static char *join(const char *a, const char *b)
{
        if (!*a)
                return xstrdup(b);
        if (!*b)
                return xstrdup(a);
        return xasprintf("%s/%s", a, b);
}

static long openat2_in_root(int rootfd, const char *path, int flags, bool follow)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV |
                           (follow ? 0 : RESOLVE_NO_SYMLINKS),
        };
        return syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
}

static int resolve_error(int e, const char *entry, const char *path, struct cove_err **err)
{
        switch (e) {
        case ELOOP:
                return cove_err_set(err, e, "entry '%.200s': '%.200s' lies under a symbolic link",
                                    entry, path);
        case ENOTDIR:
                return cove_err_set(err, e,
                                    "entry '%.200s': a parent of '%.200s' is not a directory",
                                    entry, path);
        case EXDEV:
                return cove_err_set(err, e, "entry '%.200s': '%.200s' crosses a mount point", entry,
                                    path);
        default:
                return cove_err_set(err, e, "entry '%.200s': open '%.200s': %m", entry, path);
        }
}

static void parent_cache_drop(struct ctx *c)
{
        free(c->parent_path);
        c->parent_path = NULL;
        closep(&c->parent_fd);
        c->parent_fd = -1;
}

/* Opens the directory `path` (relative, normalised) inside the root, creating missing
 * components (0755, root) when create. Returns a new O_PATH fd. */
static int open_dir(struct ctx *c, const char *path, bool create, const char *entry,
                    struct cove_err **err)
{
        bool follow = c->o->flags & EXTRACT_FOLLOW_IN_ROOT;
        long fd = openat2_in_root(c->rootfd, path, O_PATH | O_DIRECTORY, follow);
        cleanup_close int cur = -1;
        cleanup_free char *prefix = NULL;

        if (fd >= 0)
                return (int)fd;
        if (errno != ENOENT || !create)
                return resolve_error(errno, entry, path, err);

        cur = (int)openat2_in_root(c->rootfd, "", O_PATH | O_DIRECTORY, false);
        if (cur < 0)
                return cove_err_set(err, errno, "open extraction root: %m");
        prefix = xzalloc(strlen(path) + 1);
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");
                cleanup_free char *comp = xstrndup(p, n);
                size_t pl = strlen(prefix);
                if (pl)
                        prefix[pl++] = '/';
                memcpy(prefix + pl, p, n);
                prefix[pl + n] = '\0';

                long next = openat2_in_root(c->rootfd, prefix, O_PATH | O_DIRECTORY, follow);
                if (next < 0 && errno == ENOENT) {
                        if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
                                return cove_err_set(err, errno,
                                                    "entry '%.200s': mkdir '%.200s': %m", entry,
                                                    prefix);
                        /* mode and owner of implicit parents are fixed, not the umask's */
                        if (fchmodat(cur, comp, 0755, 0) < 0 ||
                            fchownat(cur, comp, 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
                                return cove_err_set(err, errno,
                                                    "entry '%.200s': set up '%.200s': %m", entry,
                                                    prefix);
                        next = openat2_in_root(c->rootfd, prefix, O_PATH | O_DIRECTORY, follow);
                }
                if (next < 0)
                        return resolve_error(errno, entry, prefix, err);
                closep(&cur);
                cur = (int)next;
                p += n;
                while (*p == '/')
                        p++;
        }
        return TAKE_FD(cur);
}

static int get_parent(struct ctx *c, const char *parent, const char *entry, struct cove_err **err)
{
        if (c->parent_path && streq(c->parent_path, parent))
                return c->parent_fd;
        parent_cache_drop(c);
        int fd = open_dir(c, parent, true, entry, err);
        if (fd < 0)
                return fd;
        c->parent_path = xstrdup(parent);
        c->parent_fd = fd;
        return fd;
}

static bool xattr_allowed(const char *name)
{
        if (strstr(name, ".overlay."))
                return false;
        return streq(name, "security.capability") || strncmp(name, "user.", 5) == 0;
}

static int apply_xattrs(struct archive_entry *e, int fd, const char *entry, struct cove_err **err)
{
        const char *name;
        const void *value;
        size_t size, total = 0;

        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!name || !xattr_allowed(name))
                        continue;
                total += size;
                if (total > EXTRACT_XATTR_MAX)
                        return cove_err_set(err, E2BIG,
                                            "entry '%.200s': extended attributes too large", entry);
                if (fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP)
                        return cove_err_set(err, errno, "entry '%.200s': set xattr '%.100s': %m",
                                            entry, name);
        }
        return 0;
}

static int owner_of(struct ctx *c, struct archive_entry *e, const char *entry, uid_t *uid,
                    gid_t *gid, struct cove_err **err)
{
        if (c->o->uid >= 0) {
                *uid = (uid_t)c->o->uid;
                *gid = (gid_t)(c->o->gid >= 0 ? c->o->gid : c->o->uid);
                return 0;
        }
        la_int64_t u = archive_entry_uid(e), g = archive_entry_gid(e);
        if (u < 0 || u > EXTRACT_MAX_ID || g < 0 || g > EXTRACT_MAX_ID)
                return cove_err_set(err, ERANGE,
                                    "entry '%.200s': owner %lld:%lld is outside 0-%d (the ids a "
                                    "sandbox can map)",
                                    entry, (long long)u, (long long)g, EXTRACT_MAX_ID);
        *uid = (uid_t)u;
        *gid = (gid_t)g;
        return 0;
}

static int write_data(struct ctx *c, struct archive *a, struct archive_entry *e, int fd,
                      const char *entry, struct cove_err **err)
{
        const void *block;
        size_t size;
        la_int64_t offset, end = 0;

        if (archive_entry_size_is_set(e) &&
            (uint64_t)MAX(archive_entry_size(e), 0) > c->max_bytes - c->st.bytes)
                return cove_err_set(err, EFBIG, "archive unpacks to more than %llu bytes",
                                    (unsigned long long)c->max_bytes);
        for (;;) {
                int r = archive_read_data_block(a, &block, &size, &offset);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return cove_err_set(err, EIO, "entry '%.200s': read: %s", entry,
                                            archive_error_string(a) ? archive_error_string(a)
                                                                    : "archive error");
                if (c->o->cancel && *c->o->cancel)
                        return cove_err_set(err, ECANCELED, "extraction cancelled");
                if (offset < 0 || size > c->max_bytes - c->st.bytes)
                        return cove_err_set(err, EFBIG, "archive unpacks to more than %llu bytes",
                                            (unsigned long long)c->max_bytes);
                c->st.bytes += size;
                for (size_t done = 0; done < size;) {
                        ssize_t w = TEMP_FAILURE_RETRY(pwrite(fd, (const char *)block + done,
                                                              size - done, offset + (off_t)done));
                        if (w < 0)
                                return cove_err_set(err, errno, "entry '%.200s': write: %m", entry);
                        done += (size_t)w;
                }
                end = MAX(end, offset + (la_int64_t)size);
        }
        /* a sparse file may end in a hole */
        if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
            ftruncate(fd, archive_entry_size(e)) < 0)
                return cove_err_set(err, errno, "entry '%.200s': truncate: %m", entry);
        return 0;
}

/* Maps an archive path to its target inside the root. Returns 1 (mapped), 0 (skip). */
static int map_path(struct ctx *c, const char *p, bool is_dir, char **ret)
{
        const char *rest;
        cleanup_free char *matched = NULL;

        if (!c->o->src) {
                *ret = xstrdup(p);
                return 1;
        }
        if (!*c->src) {
                *ret = join(c->dest, p);
                return 1;
        }
        if (c->src_glob) {
                /* the first src_ncomp components of p must match the pattern */
                size_t n = 0, i = 0;
                for (; p[i]; i++)
                        if (p[i] == '/' && ++n == c->src_ncomp)
                                break;
                if (!p[i])
                        n++;
                if (n < c->src_ncomp)
                        return 0;
                matched = xstrndup(p, i);
                if (fnmatch(c->src, matched, FNM_PATHNAME) != 0)
                        return 0;
                rest = p[i] ? p + i + 1 : NULL;
        } else {
                size_t sl = strlen(c->src);
                if (strncmp(p, c->src, sl) != 0 || (p[sl] != '\0' && p[sl] != '/'))
                        return 0;
                rest = p[sl] ? p + sl + 1 : NULL;
                matched = xstrdup(c->src);
        }
        if (rest) {
                *ret = join(c->dest, rest);
        } else if (is_dir) {
                *ret = xstrdup(c->dest);
        } else {
                *ret = c->dest_dir ? join(c->dest, last_component(matched)) : xstrdup(c->dest);
        }
        return 1;
}

static int do_whiteout(struct ctx *c, const char *target, const char *entry, struct cove_err **err)
{
        cleanup_free char *parent = xstrndup(target, (size_t)(last_component(target) - target));
        const char *base = last_component(target);
        size_t pl = strlen(parent);
        struct stat st;

        if (pl && parent[pl - 1] == '/')
                parent[pl - 1] = '\0';
        int pfd = get_parent(c, parent, entry, err);
        if (pfd < 0)
                return pfd;
        if (streq(base, ".wh..wh..opq")) {
                long dfd = openat2_in_root(c->rootfd, parent, O_RDONLY | O_DIRECTORY, false);
                if (dfd < 0)
                        return resolve_error(errno, entry, parent, err);
                cleanup_close int fd = (int)dfd;
                if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0 ||
                    fsetxattr(fd, "user.overlay.opaque", "y", 1, 0) < 0)
                        return cove_err_set(err, errno, "entry '%.200s': mark opaque: %m", entry);
                return 0;
        }
        if (strncmp(base, ".wh..wh.", 8) == 0)
                return 0; /* aufs bookkeeping */
        const char *name = base + 4;
        if (!*name || streq(name, ".") || streq(name, ".."))
                return cove_err_set(err, EINVAL, "entry '%.200s': invalid whiteout", entry);
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return 0; /* this layer has the name itself: a whiteout hides lower layers only */
        if (errno != ENOENT)
                return cove_err_set(err, errno, "entry '%.200s': stat: %m", entry);
        if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
                return cove_err_set(err, errno, "entry '%.200s': create whiteout: %m", entry);
        return 0;
}

static int set_times(int dirfd, const char *name, int fd, struct archive_entry *e)
{
        struct timespec ts[2] = {
                { .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
                { .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
        };
        if (!archive_entry_mtime_is_set(e))
                return 0;
        if (ts[0].tv_nsec < 0 || ts[0].tv_nsec >= 1000000000)
                ts[0].tv_nsec = ts[1].tv_nsec = 0;
        if (fd >= 0)
                return futimens(fd, ts) < 0 ? -errno : 0;
        return utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static void remember_dir_time(struct ctx *c, const char *target, struct archive_entry *e)
{
        if (!archive_entry_mtime_is_set(e))
                return;
        if (c->n_dtimes == c->cap_dtimes) {
                c->cap_dtimes = c->cap_dtimes ? c->cap_dtimes * 2 : 64;
                c->dtimes = xrealloc(c->dtimes, c->cap_dtimes * sizeof(*c->dtimes));
        }
        long ns = archive_entry_mtime_nsec(e);
        c->dtimes[c->n_dtimes++] = (struct dir_time){
                xstrdup(target),
                { .tv_sec = archive_entry_mtime(e),
                  .tv_nsec = ns >= 0 && ns < 1000000000 ? ns : 0 },
        };
}

static void apply_dir_times(struct ctx *c)
{
        for (size_t i = 0; i < c->n_dtimes; i++) {
                long fd = openat2_in_root(c->rootfd, c->dtimes[i].path, O_RDONLY | O_DIRECTORY,
                                          c->o->flags & EXTRACT_FOLLOW_IN_ROOT);
                if (fd < 0)
                        continue; /* removed again by a later entry */
                struct timespec ts[2] = { c->dtimes[i].mtime, c->dtimes[i].mtime };
                (void)futimens((int)fd, ts);
                (void)close((int)fd);
        }
}

/* Metadata of a directory we own the fd of. */
static int dir_metadata(int fd, struct archive_entry *e, uid_t uid, gid_t gid, const char *entry,
                        struct cove_err **err)
{
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, archive_entry_perm(e) & 07777) < 0)
                return cove_err_set(err, errno, "entry '%.200s': set owner and mode: %m", entry);
        return apply_xattrs(e, fd, entry, err);
}

static int extract_one(struct ctx *c, struct archive *a, struct archive_entry *e, const char *entry,
                       const char *target, struct cove_err **err)
{
        mode_t type = archive_entry_filetype(e);
        const char *hardlink = archive_entry_hardlink(e);
        bool follow = c->o->flags & EXTRACT_FOLLOW_IN_ROOT;
        uid_t uid = 0;
        gid_t gid = 0;
        struct stat st;
        int r;

        if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
                return cove_err_set(
                        err, EPERM,
                        "entry '%.200s': device nodes, FIFOs and sockets are not allowed", entry);
        r = owner_of(c, e, entry, &uid, &gid, err);
        if (r < 0)
                return r;

        if (!*target) {
                /* the root itself: only a directory, and its metadata only for whole layers */
                if (hardlink || type != AE_IFDIR)
                        return cove_err_set(err, EINVAL,
                                            "entry '%.200s': the root must be a directory", entry);
                if (c->o->src)
                        return 0;
                cleanup_close int fd = openat(c->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return cove_err_set(err, errno, "open extraction root: %m");
                return dir_metadata(fd, e, uid, gid, entry, err);
        }

        const char *base = last_component(target);
        cleanup_free char *parent = xstrndup(target, (size_t)(base - target));
        if (*parent)
                parent[strlen(parent) - 1] = '\0';
        int pfd = get_parent(c, parent, entry, err);
        if (pfd < 0)
                return pfd;

        bool exists = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (!exists && errno != ENOENT)
                return cove_err_set(err, errno, "entry '%.200s': stat: %m", entry);
        if (exists && !hardlink && type == AE_IFDIR) {
                if (S_ISDIR(st.st_mode) || (follow && S_ISLNK(st.st_mode))) {
                        /* An existing directory is kept (and, when it is a symlink in COPY mode,
                         * written through, clamped to the root: /lib → usr/lib). */
                        long dfd =
                                openat2_in_root(c->rootfd, target, O_RDONLY | O_DIRECTORY, follow);
                        if (dfd >= 0) {
                                cleanup_close int fd = (int)dfd;
                                strset_add(&c->created, target);
                                if (S_ISLNK(st.st_mode))
                                        return 0;
                                remember_dir_time(c, target, e);
                                return dir_metadata(fd, e, uid, gid, entry, err);
                        }
                        if (!S_ISLNK(st.st_mode))
                                return resolve_error(errno, entry, target, err);
                }
        }
        if (exists) {
                r = rm_rf_at(pfd, base, err);
                if (r < 0)
                        return cove_err_wrap(err, "entry '%.200s': replace", entry);
                /* the removal may have taken a cached directory with it */
                if (!S_ISDIR(st.st_mode) || !c->parent_path ||
                    strncmp(c->parent_path, target, strlen(target)) != 0) {
                        /* pfd (the cache) is still valid: the parent itself was not removed */
                } else {
                        parent_cache_drop(c);
                        pfd = get_parent(c, parent, entry, err);
                        if (pfd < 0)
                                return pfd;
                }
        }

        if (hardlink) {
                cleanup_free char *norm = NULL, *mapped = NULL;
                r = extract_name_normalize(hardlink, &norm, err);
                if (r < 0)
                        return cove_err_wrap(err, "entry '%.200s': hard link", entry);
                if (map_path(c, norm, false, &mapped) == 0 || !strset_has(&c->created, mapped))
                        return cove_err_set(err, EPERM,
                                            "entry '%.200s': hard link to '%.200s' points outside "
                                            "the archive",
                                            entry, hardlink);
                long tfd = openat2_in_root(c->rootfd, mapped, O_PATH | O_NOFOLLOW, follow);
                if (tfd < 0)
                        return resolve_error(errno, entry, mapped, err);
                cleanup_close int tf = (int)tfd;
                if (fstat(tf, &st) < 0)
                        return cove_err_set(err, errno, "entry '%.200s': stat link target: %m",
                                            entry);
                if (S_ISDIR(st.st_mode))
                        return cove_err_set(err, EPERM, "entry '%.200s': hard link to a directory",
                                            entry);
                if (linkat(tf, "", pfd, base, AT_EMPTY_PATH) < 0)
                        return cove_err_set(err, errno, "entry '%.200s': link: %m", entry);
                strset_add(&c->created, target);
                return 0;
        }

        switch (type) {
        case AE_IFDIR: {
                if (mkdirat(pfd, base, 0700) < 0)
                        return cove_err_set(err, errno, "entry '%.200s': mkdir: %m", entry);
                cleanup_close int fd =
                        openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return cove_err_set(err, errno, "entry '%.200s': open: %m", entry);
                r = dir_metadata(fd, e, uid, gid, entry, err);
                remember_dir_time(c, target, e);
                break;
        }
        case AE_IFREG: {
                cleanup_close int fd = openat(
                        pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                        0600);
                if (fd < 0)
                        return cove_err_set(err, errno, "entry '%.200s': create: %m", entry);
                r = write_data(c, a, e, fd, entry, err);
                if (r < 0)
                        return r;
                /* chown first: it clears setuid/setgid, which the chmod then restores */
                if (fchown(fd, uid, gid) < 0 ||
                    fchmod(fd, c->o->has_file_mode ? (mode_t)(c->o->file_mode & 07777)
                                                   : archive_entry_perm(e) & 07777) < 0)
                        return cove_err_set(err, errno, "entry '%.200s': set owner and mode: %m",
                                            entry);
                r = apply_xattrs(e, fd, entry, err);
                if (r < 0)
                        return r;
                (void)set_times(-1, NULL, fd, e);
                break;
        }
        case AE_IFLNK: {
                const char *to = archive_entry_symlink(e);
                if (!to)
                        to = archive_entry_symlink_utf8(e);
                if (!to || !*to || strlen(to) >= EXTRACT_NAME_MAX)
                        return cove_err_set(err, EINVAL, "entry '%.200s': invalid symlink target",
                                            entry);
                if (symlinkat(to, pfd, base) < 0)
                        return cove_err_set(err, errno, "entry '%.200s': symlink: %m", entry);
                if (fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return cove_err_set(err, errno, "entry '%.200s': set owner: %m", entry);
                (void)set_times(pfd, base, -1, e);
                r = 0;
                break;
        }
        default:
                return cove_err_set(err, EPERM, "entry '%.200s': unsupported type", entry);
        }
        if (r >= 0)
                strset_add(&c->created, target);
        return r;
}

static int extract_entries(struct ctx *c, struct archive *a, struct cove_err **err)
{
        struct archive_entry *e;

        for (;;) {
                int r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return cove_err_set(err, EINVAL, "read archive: %s",
                                            archive_error_string(a) ? archive_error_string(a)
                                                                    : "not a tar archive");
                if (c->o->cancel && *c->o->cancel)
                        return cove_err_set(err, ECANCELED, "extraction cancelled");
                if (++c->st.entries > c->max_entries)
                        return cove_err_set(err, EFBIG, "archive has more than %llu entries",
                                            (unsigned long long)c->max_entries);
                const char *raw = archive_entry_pathname(e);
                if (!raw)
                        raw = archive_entry_pathname_utf8(e);
                cleanup_free char *name = NULL, *target = NULL;
                r = extract_name_normalize(raw, &name, err);
                if (r < 0)
                        return r;
                bool is_dir = !archive_entry_hardlink(e) && archive_entry_filetype(e) == AE_IFDIR;
                if (map_path(c, name, is_dir, &target) == 0)
                        continue;
                c->matched = true;
                if ((c->o->flags & EXTRACT_OCI_WHITEOUTS) &&
                    strncmp(last_component(target), ".wh.", 4) == 0) {
                        r = do_whiteout(c, target, raw, err);
                } else {
                        r = extract_one(c, a, e, raw, target, err);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int ctx_init(struct ctx *c, int rootfd, const struct extract_opts *o, struct cove_err **err)
{
        *c = (struct ctx){ .rootfd = rootfd, .o = o, .parent_fd = -1 };
        c->max_entries = o->max_entries ? o->max_entries : EXTRACT_MAX_ENTRIES_DEFAULT;
        c->max_bytes = o->max_bytes ? o->max_bytes : EXTRACT_MAX_BYTES_DEFAULT;
        if (!o->src)
                return 0;

        const char *s = o->src;
        while (*s == '/')
                s++; /* COPY sources are relative to the context root, as Docker reads them */
        int r = extract_name_normalize(s, &c->src, NULL);
        if (r < 0)
                return cove_err_set(err, EINVAL, "source '%.200s' leaves the build context",
                                    o->src);
        c->src_glob = strpbrk(c->src, "*?[") != NULL;
        c->src_ncomp = *c->src ? 1 : 0;
        for (const char *p = c->src; *p; p++)
                c->src_ncomp += *p == '/';

        const char *d = o->dest && *o->dest ? o->dest : "/";
        cleanup_free char *abs = path_normalize("/", d);
        c->dest = xstrdup(abs + 1);
        c->dest_dir = d[strlen(d) - 1] == '/' || !*c->dest;
        if (!c->dest_dir) {
                long fd = openat2_in_root(rootfd, c->dest, O_PATH | O_DIRECTORY,
                                          o->flags & EXTRACT_FOLLOW_IN_ROOT);
                if (fd >= 0) {
                        c->dest_dir = true;
                        (void)close((int)fd);
                }
        }
        return 0;
}

static void ctx_done(struct ctx *c)
{
        parent_cache_drop(c);
        strset_free(&c->created);
        for (size_t i = 0; i < c->n_dtimes; i++)
                free(c->dtimes[i].path);
        free(c->dtimes);
        free(c->src);
        free(c->dest);
}

static struct archive *reader_new(void)
{
        struct archive *a = archive_read_new();
        if (!a)
                return NULL;
        if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK) {
                archive_read_free(a);
                return NULL;
        }
        return a;
}

/* Extracts from a, a reader from reader_new() (NULL when that failed) on which
 * archive_read_open_*() returned open_rc; frees a. The one path of both entry points: only
 * their open call differs. */
static int run(int rootfd, struct archive *a, int open_rc, const struct extract_opts *o,
               struct extract_stats *ret_stats, struct cove_err **err)
{
        struct ctx c;
        int r;

        if (!a)
                return cove_err_set(err, ENOMEM, "set up archive reader");
        if (open_rc != ARCHIVE_OK) {
                r = cove_err_set(err, EINVAL, "read archive: %s",
                                 archive_error_string(a) ? archive_error_string(a) : "open failed");
                archive_read_free(a);
                return r;
        }
        r = ctx_init(&c, rootfd, o, err);
        if (r >= 0)
                r = extract_entries(&c, a, err);
        if (r >= 0 && o->src && !c.matched)
                r = cove_err_set(err, ENOENT, "'%.200s' not found in the build context", o->src);
        if (r >= 0)
                apply_dir_times(&c);
        if (ret_stats)
                *ret_stats = c.st;
        ctx_done(&c);
        archive_read_free(a);
        return r;
}

int extract_archive_fd(int rootfd, int archive_fd, const struct extract_opts *o,
                       struct extract_stats *ret_stats, struct cove_err **err)
{
        struct archive *a = reader_new();
        int open_rc = a ? archive_read_open_fd(a, archive_fd, EXTRACT_READ_BLOCK) : ARCHIVE_FATAL;

        return run(rootfd, a, open_rc, o, ret_stats, err);
}

int extract_archive_mem(int rootfd, const void *p, size_t n, const struct extract_opts *o,
                        struct extract_stats *ret_stats, struct cove_err **err)
{
        struct archive *a = reader_new();
        int open_rc = a ? archive_read_open_memory(a, p, n) : ARCHIVE_FATAL;

        return run(rootfd, a, open_rc, o, ret_stats, err);
}

static int check_tar_fd(int fd, bool need_gzip, struct cove_err **err);

int extract_check_targz_fd(int fd, struct cove_err **err)
{
        return check_tar_fd(fd, true, err);
}

int extract_check_tar_fd(int fd, struct cove_err **err)
{
        return check_tar_fd(fd, false, err);
}

/* A readable tar; gzip-compressed when need_gzip, else gzip-compressed or plain (told apart
 * by the gzip magic bytes, which libarchive's bidding looks at). */
static int check_tar_fd(int fd, bool need_gzip, struct cove_err **err)
{
        const char *what = need_gzip ? "gzip-compressed tar archive" : "tar archive";
        struct archive *a = archive_read_new();
        struct archive_entry *e;
        uint64_t n = 0;
        int r = 0;

        if (!a)
                return cove_err_set(err, ENOMEM, "set up archive reader");
        if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_open_fd(a, fd, EXTRACT_READ_BLOCK) != ARCHIVE_OK) {
                r = cove_err_set(err, EINVAL, "not a %s", what);
                goto out;
        }
        for (;;) {
                int s = archive_read_next_header(a, &e);
                if (s == ARCHIVE_EOF)
                        break;
                if (s < ARCHIVE_WARN || ++n > EXTRACT_MAX_ENTRIES_DEFAULT) {
                        r = cove_err_set(err, EINVAL, "not a readable %s: %s", what,
                                         s < ARCHIVE_WARN && archive_error_string(a)
                                                 ? archive_error_string(a)
                                                 : "too many entries");
                        goto out;
                }
                if (need_gzip && n == 1 && archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
                        r = cove_err_set(err, EINVAL, "archive is not gzip-compressed");
                        goto out;
                }
                if (archive_read_data_skip(a) < ARCHIVE_WARN) {
                        r = cove_err_set(err, EINVAL, "not a readable %s: %s", what,
                                         archive_error_string(a) ? archive_error_string(a)
                                                                 : "truncated");
                        goto out;
                }
        }
        if (need_gzip && archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP)
                r = cove_err_set(err, EINVAL, "archive is not gzip-compressed");
out:
        archive_read_free(a);
        return r;
}
