/* SPDX-License-Identifier: MIT */
/*
 * watch.c — filesystem watchers (runtime.md §7.3) on inotify.
 *
 * - Every watcher owns one inotify instance and a map wd → directory relative to the watched
 *   root ("" for the root). Recursive watchers watch every subdirectory; a directory created
 *   later is added when its IN_CREATE arrives, and the entries that appeared in it before its
 *   watch existed are reported as EVENT_TYPE_CREATE by a scan, followed by EVENT_TYPE_WRITE for
 *   a file that already has content (a racing entry may be reported twice; never missed). A
 * directory moved in is watched without reporting its contents; one moved out (or renamed) loses
 * its watches, re-added under the new name if it stays inside.
 * - Event mapping: IN_CREATE / IN_MOVED_TO → CREATE, IN_DELETE → REMOVE, IN_MOVED_FROM →
 *   RENAME, IN_MODIFY → WRITE, IN_ATTRIB → CHMOD (also timestamps, like fsnotify).
 *   A WRITE is merged into the previous event when that is a still-queued WRITE of the same
 *   name less than WATCH_MERGE_MS old. WatchDir holds such a fresh trailing WRITE back for at
 *   most WATCH_MERGE_MS, so merging never hides the last write.
 * - The watched directory itself: IN_ATTRIB → CHMOD ".", removal → REMOVE "." (moving it away
 *   → RENAME "."), after which the watcher is dead: WatchDir ends its stream, a polled
 *   watcher keeps its queue until removed or expired.
 * - WatchDir runs on its connection's thread (poll on the inotify fd and the connection).
 *   Polled watchers are read by one shared thread (epoll, started on first use), which also
 *   removes watchers not polled for WATCH_IDLE_MS. GetWatcherEvents reads the inotify fd
 *   itself first, so everything that happened before the call is returned.
 * - Cove's temporary files (".<name>.cove-[nr]XXXXX", fs_tmp_name()) are never reported:
 *   a write through the API shows as CREATE (new file) then WRITE of its name, the rename of
 *   the temporary file being matched to it by its inotify cookie (runtime.md §7.3).
 * - Checks (existence, type, permission, network filesystem) run with the acting user's fs
 *   credentials on an fd opened without magic links (fs_open_dir) that is then watched
 *   through /proc/self/fd (no path race); inotify itself, and the subdirectories of a
 *   recursive watch, run as the agent, each subdirectory opened beneath the watched one
 *   without following any symlink.
 *
 * Locking: `wlock` guards nwatchers, the polled list and every polled watcher's fields. A
 * WatchDir watcher belongs to its thread alone (only the count is shared).
 */
#include "agent/fs.h"
#include "agent/watch.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define WATCH_MAX             64                /* watchers of both kinds per sandbox (spec) */
#define WATCH_QUEUE_MAX       10000             /* queued events per watcher (spec) */
#define WATCH_QUEUE_MAX_BYTES (8 * 1024 * 1024) /* and their names, oldest dropped first */
#define WATCH_MAX_DIRS        8192              /* inotify watches per (recursive) watcher */
#define WATCH_MAX_DEPTH       64                /* nesting followed by a recursive watcher */
#define WATCH_SCAN_MAX        10000             /* CREATEs reported by scans of one batch */
#define WATCH_MERGE_MS        50                /* consecutive WRITEs merged (spec) */
#define WATCH_LIMIT_DEFAULT   100
#define WATCH_LIMIT_MAX       1000
#define WATCH_READ_BUF        (64 * 1024)
#define WATCH_READS_PER_WAKE  16
#define WATCH_PATH_MAX        4096
#define WATCH_ID_LEN          20

/* Overridable for a manual test build (-DWATCH_IDLE_MS=1500 -DWATCH_SWEEP_MS=500). */
#ifndef WATCH_IDLE_MS
#define WATCH_IDLE_MS  (10 * 60 * 1000) /* unpolled watcher removed (spec) */
#define WATCH_SWEEP_MS (10 * 1000)
#endif

#define WATCH_MASK                                                                                 \
        (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO |             \
         IN_DELETE_SELF | IN_MOVE_SELF | IN_EXCL_UNLINK)

static const char EV_CREATE[] = "EVENT_TYPE_CREATE";
static const char EV_WRITE[] = "EVENT_TYPE_WRITE";
static const char EV_REMOVE[] = "EVENT_TYPE_REMOVE";
static const char EV_RENAME[] = "EVENT_TYPE_RENAME";
static const char EV_CHMOD[] = "EVENT_TYPE_CHMOD";

struct wev {
        struct wev *next;
        int64_t ts;       /* time_mono_ms() when queued */
        const char *type; /* one of EV_* */
        size_t len;
        char name[]; /* relative to the watched directory, "." for itself */
};

struct wdir {
        int wd;
        char *rel; /* owned; "" for the root */
};

struct watcher {
        struct watcher *next; /* polled list */
        uint64_t serial;      /* epoll key of a polled watcher */
        char *id;             /* owned: "wch_…", NULL for WatchDir */
        char *root;           /* owned: real absolute path of the watched directory */
        bool recursive;
        bool dead; /* the watched directory is gone: no more events */
        int ifd;   /* owned: inotify instance, -1 once dead */
        struct wdir *dirs;
        size_t ndirs, cap_dirs;
        struct wev *head, *tail; /* queue, oldest first */
        size_t nev, bytes;
        unsigned scan_budget; /* CREATEs scans may still report in this batch */
        uint32_t tmp_cookie;  /* rename cookie of a Cove temporary file moved away, 0: none */
        bool tmp_new;         /* … which was written for a new file */
        int64_t last_poll;    /* time_mono_ms() of creation or last GetWatcherEvents */
};

static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;
static unsigned nwatchers;
static struct watcher *polled;
static uint64_t next_serial = 1;
static int epfd = -1;
static bool poller_running;

/* ---- queue ---- */

static struct wev *wq_pop(struct watcher *w)
{
        struct wev *e = w->head;

        if (!e)
                return NULL;
        w->head = e->next;
        if (!w->head)
                w->tail = NULL;
        w->nev--;
        w->bytes -= e->len;
        return e;
}

static void wq_push(struct watcher *w, const char *name, const char *type)
{
        int64_t now = time_mono_ms();
        size_t len = strlen(name);
        struct wev *e;

        if (type == EV_WRITE && w->tail && w->tail->type == EV_WRITE &&
            now - w->tail->ts < WATCH_MERGE_MS && streq(w->tail->name, name))
                return;
        e = xmalloc(sizeof(*e) + len + 1);
        e->next = NULL;
        e->ts = now;
        e->type = type;
        e->len = len;
        memcpy(e->name, name, len + 1);
        if (w->tail)
                w->tail->next = e;
        else
                w->head = e;
        w->tail = e;
        w->nev++;
        w->bytes += len;
        while (w->nev > WATCH_QUEUE_MAX || w->bytes > WATCH_QUEUE_MAX_BYTES)
                free(wq_pop(w));
}

/* {"name": …, "type": …}; NULL for a name that is not UTF-8 (jansson refuses it). */
static json_t *wev_json(const struct wev *e)
{
        return json_pack("{s:s, s:s}", "name", e->name, "type", e->type);
}

/* ---- the wd map ---- */

static struct wdir *dir_find(struct watcher *w, int wd)
{
        for (size_t i = 0; i < w->ndirs; i++)
                if (w->dirs[i].wd == wd)
                        return &w->dirs[i];
        return NULL;
}

static void dir_del_at(struct watcher *w, size_t i)
{
        free(w->dirs[i].rel);
        w->dirs[i] = w->dirs[--w->ndirs];
}

/* "<rel>/<name>", or name when rel is the root. */
static char *rel_join(const char *rel, const char *name)
{
        return rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
}

static bool rel_is_under(const char *p, const char *dir)
{
        size_t l = strlen(dir);
        return strncmp(p, dir, l) == 0 && (p[l] == '\0' || p[l] == '/');
}

/* Stops watching rel and everything below it (a directory that moved away). */
static void dir_drop_tree(struct watcher *w, const char *rel)
{
        for (size_t i = 0; i < w->ndirs;) {
                if (w->dirs[i].rel[0] && rel_is_under(w->dirs[i].rel, rel)) {
                        (void)inotify_rm_watch(w->ifd, w->dirs[i].wd);
                        dir_del_at(w, i);
                } else {
                        i++;
                }
        }
}

/* Watches subdirectory rel (and, recursively, its subdirectories); with emit, reports every
 * entry found in them as CREATE (they appeared before the watch existed). */
static void dir_add_tree(struct watcher *w, const char *rel, bool emit, unsigned depth)
{
        cleanup_free char *full = xasprintf("%s/%s", streq(w->root, "/") ? "" : w->root, rel);
        char proc[STRLEN("/proc/self/fd/") + DECIMAL_STR_MAX(int)];
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;
        int wd, fd;

        if (depth > WATCH_MAX_DEPTH || strlen(full) >= WATCH_PATH_MAX)
                return;
        /* Beneath the watched directory and through no symlink at all: a subdirectory swapped
         * for a link meanwhile is not watched. (No fd of the watched directory is kept open:
         * it would hold back the IN_DELETE_SELF of its removal.) */
        int rootfd = fs_openat(AT_FDCWD, w->root, O_PATH | O_DIRECTORY, 0);
        if (rootfd < 0) {
                log_debug_errno(rootfd, "watch '%s': %m", w->root);
                return;
        }
        fd = fs_openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_NONBLOCK,
                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        (void)close(rootfd);
        if (fd < 0) {
                log_debug_errno(fd, "watch '%s': %m", full);
                return;
        }
        d = fdopendir(fd);
        if (!d) {
                (void)close(fd);
                return;
        }
        /* Now fd is owned by d. The watch goes on that very directory, through our own fd. */
        (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        wd = inotify_add_watch(w->ifd, proc, WATCH_MASK | IN_ONLYDIR);
        if (wd < 0 && errno == ENOENT) /* no /proc: the path will have to do */
                wd = inotify_add_watch(w->ifd, full, WATCH_MASK | IN_ONLYDIR | IN_DONT_FOLLOW);
        if (wd < 0) {
                log_debug("watch '%s': %m", full);
                return;
        }
        struct wdir *old = dir_find(w, wd);
        if (old) {
                free(old->rel);
                old->rel = xstrdup(rel);
        } else if (w->ndirs >= WATCH_MAX_DIRS) {
                log_debug("watch '%s': more than %d directories, not watched", full,
                          WATCH_MAX_DIRS);
                (void)inotify_rm_watch(w->ifd, wd);
                return;
        } else {
                if (w->ndirs == w->cap_dirs) {
                        w->cap_dirs = w->cap_dirs ? w->cap_dirs * 2 : 16;
                        w->dirs = xrealloc(w->dirs, w->cap_dirs * sizeof(*w->dirs));
                }
                w->dirs[w->ndirs++] = (struct wdir){ .wd = wd, .rel = xstrdup(rel) };
        }

        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fs_tmp_parse(de->d_name, NULL))
                        continue; /* a write in progress: reported when it lands */
                bool isdir = de->d_type == DT_DIR;
                if (de->d_type == DT_UNKNOWN) {
                        struct stat st;
                        isdir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                                S_ISDIR(st.st_mode);
                }
                cleanup_free char *child = rel_join(rel, de->d_name);
                if (emit && w->scan_budget > 0) {
                        struct stat st;
                        wq_push(w, child, EV_CREATE);
                        w->scan_budget--;
                        /* A file that already has content was written before we could see it:
                         * reported as the write it was (an upload into a new directory). */
                        if ((de->d_type == DT_REG || de->d_type == DT_UNKNOWN) &&
                            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                            S_ISREG(st.st_mode) && st.st_size > 0)
                                wq_push(w, child, EV_WRITE);
                }
                if (isdir)
                        dir_add_tree(w, child, emit, depth + 1);
        }
}

/* ---- reading events ---- */

static void watcher_kill(struct watcher *w, const char *type)
{
        if (w->dead)
                return;
        wq_push(w, ".", type);
        w->dead = true;
}

static void handle_event(struct watcher *w, const struct inotify_event *ev)
{
        struct wdir *d;
        bool is_root;

        if (ev->mask & IN_Q_OVERFLOW) {
                log_debug("watcher on '%s': inotify queue overflow, events lost", w->root);
                return;
        }
        d = dir_find(w, ev->wd);
        if (!d)
                return;
        is_root = d->rel[0] == '\0';
        if (ev->mask & IN_IGNORED) {
                dir_del_at(w, (size_t)(d - w->dirs));
                if (is_root)
                        watcher_kill(w, EV_REMOVE);
                return;
        }
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
                if (is_root)
                        watcher_kill(w, ev->mask & IN_MOVE_SELF ? EV_RENAME : EV_REMOVE);
                return;
        }
        if (ev->len == 0 || !ev->name[0]) {
                /* An event of a directory itself: a subdirectory's is reported by its parent. */
                if (is_root && (ev->mask & IN_ATTRIB))
                        wq_push(w, ".", EV_CHMOD);
                return;
        }

        cleanup_free char *rel = rel_join(d->rel, ev->name);
        bool isdir = ev->mask & IN_ISDIR, is_new;
        /* d may move when dir_add_tree grows the map: not used below. */

        /* Cove's own temporary files (fs_sink.c, a Move across filesystems) are never
         * reported; their rename over the target is reported as the in-place write that it
         * stands for: CREATE when the target is new, then WRITE (a directory: CREATE). */
        if (fs_tmp_parse(ev->name, &is_new)) {
                if (ev->mask & IN_MOVED_FROM) {
                        w->tmp_cookie = ev->cookie;
                        w->tmp_new = is_new;
                }
                return;
        }
        if ((ev->mask & IN_MOVED_TO) && ev->cookie && ev->cookie == w->tmp_cookie) {
                w->tmp_cookie = 0;
                if (isdir || w->tmp_new)
                        wq_push(w, rel, EV_CREATE);
                if (!isdir)
                        wq_push(w, rel, EV_WRITE);
                else if (w->recursive)
                        dir_add_tree(w, rel, /* emit= */ false, 1);
                return;
        }

        if (ev->mask & IN_MOVED_FROM) {
                wq_push(w, rel, EV_RENAME);
                if (isdir && w->recursive)
                        dir_drop_tree(w, rel);
        }
        if (ev->mask & IN_CREATE) {
                wq_push(w, rel, EV_CREATE);
                if (isdir && w->recursive)
                        dir_add_tree(w, rel, /* emit= */ true, 1);
        }
        if (ev->mask & IN_MOVED_TO) {
                wq_push(w, rel, EV_CREATE);
                if (isdir && w->recursive)
                        dir_add_tree(w, rel, /* emit= */ false, 1);
        }
        if (ev->mask & IN_DELETE)
                wq_push(w, rel, EV_REMOVE);
        if (ev->mask & IN_MODIFY)
                wq_push(w, rel, EV_WRITE);
        if (ev->mask & IN_ATTRIB)
                wq_push(w, rel, EV_CHMOD);
}

/* Reads what the inotify fd has (non-blocking) into the queue. */
static void watcher_read(struct watcher *w)
{
        cleanup_free char *buf = NULL;

        if (w->ifd < 0)
                return;
        buf = xmalloc(WATCH_READ_BUF); /* threads have small stacks */
        w->scan_budget = WATCH_SCAN_MAX;
        for (unsigned i = 0; i < WATCH_READS_PER_WAKE && !w->dead; i++) {
                ssize_t n = read(w->ifd, buf, WATCH_READ_BUF);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_debug("read inotify: %m");
                        return;
                }
                for (ssize_t o = 0; o + (ssize_t)sizeof(struct inotify_event) <= n;) {
                        const struct inotify_event *ev = (const void *)(buf + o);
                        handle_event(w, ev);
                        o += (ssize_t)(sizeof(*ev) + ev->len);
                }
        }
}

/* ---- lifetime ---- */

static struct watcher *watcher_free(struct watcher *w)
{
        if (!w)
                return NULL;
        pthread_mutex_lock(&wlock);
        nwatchers--;
        pthread_mutex_unlock(&wlock);
        if (w->ifd >= 0)
                (void)close(w->ifd);
        for (size_t i = 0; i < w->ndirs; i++)
                free(w->dirs[i].rel);
        free(w->dirs);
        while (w->head)
                free(wq_pop(w));
        free(w->root);
        free(w->id);
        free(w);
        return NULL;
}

static void watcher_freep(struct watcher **w)
{
        *w = watcher_free(*w);
}
#define cleanup_watcher __attribute__((cleanup(watcher_freep)))

/* The checks of §7.3, as the acting user, on path (normalised): opened without magic links
 * (fs_open_dir: 404, 400 not a directory, 403), then not on a network filesystem. Returns an
 * O_RDONLY fd. */
static int open_watch_dir(const struct agent_call *c, const char *path, struct cove_err **err)
{
        cleanup_close int fd = -1;
        struct statfs sfs;
        int r;

        /* the E2B face watches with root's privileges (e2b.md §4.2) */
        r = agent_e2b_dialect ? 0 : agent_fscreds_enter(c->user);
        if (r < 0)
                return cove_err_set_status(err, 500, -r, "cannot act as user '%s': %m",
                                           c->user ? c->user->name : "root");
        fd = fs_open_dir(path, err);
        if (!agent_e2b_dialect)
                agent_fscreds_leave();
        if (fd < 0)
                return fd;

        if (fstatfs(fd, &sfs) < 0)
                return cove_err_set_status(err, 500, errno, "statfs '%s': %m", path);
        switch ((unsigned long)sfs.f_type) {
        case 0x6969UL:     /* NFS */
        case 0x517BUL:     /* SMB */
        case 0xFF534D42UL: /* CIFS */
        case 0xFE534D42UL: /* SMB2 */
        case 0x01021997UL: /* 9P */
        case 0x65735546UL: /* FUSE */
        case 0x00C36400UL: /* Ceph */
        case 0x5346414FUL: /* AFS */
        case 0x6B414653UL: /* kAFS */
        case 0x73757245UL: /* Coda */
        case 0x564CUL:     /* NCP */
        case 0x7461636FUL: /* OCFS2 */
        case 0x01161970UL: /* GFS2 */
        case 0x0BD00BD0UL: /* Lustre */
                return cove_err_set_status(err, 400, EOPNOTSUPP,
                                           "'%s' is on a network filesystem, which cannot be "
                                           "watched",
                                           path);
        default:
                return TAKE_FD(fd);
        }
}

/* Validates the request and starts a watcher (counted against WATCH_MAX). */
static int watcher_open(const struct agent_call *c, const char *path, bool recursive,
                        struct watcher **ret, struct cove_err **err)
{
        cleanup_watcher struct watcher *w = NULL;
        cleanup_close int dfd = -1;
        char proc[STRLEN("/proc/self/fd/") + DECIMAL_STR_MAX(int)];
        cleanup_free char *real = xmalloc(WATCH_PATH_MAX);
        bool full;
        int wd;

        dfd = open_watch_dir(c, path, err);
        if (dfd < 0)
                return dfd;

        pthread_mutex_lock(&wlock);
        full = nwatchers >= WATCH_MAX;
        if (!full)
                nwatchers++;
        pthread_mutex_unlock(&wlock);
        if (full)
                return cove_err_set_status(err, 429, EBUSY, "too many watchers (at most %d)",
                                           WATCH_MAX);
        /* Counted from here on: watcher_free() gives the slot back. */
        w = xzalloc(sizeof(*w));
        w->ifd = -1;
        w->recursive = recursive;
        w->last_poll = time_mono_ms();

        w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->ifd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
                        return cove_err_set_status(err, 429, errno, "cannot create a watcher: %m");
                return cove_err_set_status(err, 500, errno, "inotify: %m");
        }
        (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd);
        ssize_t n = readlink(proc, real, WATCH_PATH_MAX - 1);
        if (n > 0 && real[0] == '/') {
                real[n] = '\0';
                w->root = xstrdup(real);
        } else {
                w->root = xstrdup(path); /* no /proc: the checked path will have to do */
                proc[0] = '\0';
        }
        wd = inotify_add_watch(w->ifd, proc[0] ? proc : path, WATCH_MASK | IN_ONLYDIR);
        if (wd < 0) {
                if (errno == ENOSPC)
                        return cove_err_set_status(err, 429, errno,
                                                   "inotify watch limit reached for '%s'", path);
                return cove_err_set_status(err, 500, errno, "watch '%s': %m", path);
        }
        w->dirs = xmalloc(16 * sizeof(*w->dirs));
        w->cap_dirs = 16;
        w->dirs[w->ndirs++] = (struct wdir){ .wd = wd, .rel = xstrdup("") };

        if (recursive) {
                cleanup_closedir DIR *d = fdopendir(dfd);
                struct dirent *de;
                if (!d)
                        return cove_err_set_status(err, 500, errno, "read '%s': %m", path);
                dfd = -1; /* now owned by d */
                while ((de = readdir(d))) {
                        struct stat st;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (de->d_type != DT_DIR &&
                            (de->d_type != DT_UNKNOWN ||
                             fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                             !S_ISDIR(st.st_mode)))
                                continue;
                        dir_add_tree(w, de->d_name, /* emit= */ false, 1);
                }
        }
        *ret = TAKE_PTR(w);
        return 0;
}

/* ---- request bodies ---- */

struct watch_req {
        char *path;       /* owned */
        char *watcher_id; /* owned */
        struct json_bool recursive;
        struct json_int limit;
};

static void watch_req_done(struct watch_req *q)
{
        free(q->path);
        free(q->watcher_id);
}
#define cleanup_wreq __attribute__((cleanup(watch_req_done)))

static const struct json_field fields_watch[] = {
        { "path", json_take_str, offsetof(struct watch_req, path) },
        { "recursive", json_take_bool, offsetof(struct watch_req, recursive) },
        {},
};
static const struct json_field fields_events[] = {
        { "watcherId", json_take_str, offsetof(struct watch_req, watcher_id) },
        { "limit", json_take_int, offsetof(struct watch_req, limit), 0, 1, WATCH_LIMIT_MAX },
        {},
};

static int watch_parse(struct agent_call *c, const struct json_field *fields, struct watch_req *q,
                       struct cove_err **err)
{
        int r = json_dispatch(c->body, fields, q, err);
        if (r < 0 && *err)
                (*err)->status = 400;
        return r;
}

static int watch_open_req(struct agent_call *c, struct watcher **ret, struct cove_err **err)
{
        cleanup_wreq struct watch_req q = {};
        cleanup_free char *path = NULL;
        int r;

        r = watch_parse(c, fields_watch, &q, err);
        if (r < 0)
                return r;
        r = fs_path_resolve(c, q.path, "path", &path, err);
        if (r < 0)
                return r;
        return watcher_open(c, path, q.recursive.set && q.recursive.v, ret, err);
}

/* ---- WatchDir ---- */

/* Sends the queued events, except a trailing WRITE younger than WATCH_MERGE_MS (more writes
 * may merge into it). *ret_timeout: the ms until that one is due, -1 when nothing is held. */
static int stream_flush(struct watcher *w, int fd, int *ret_timeout)
{
        for (;;) {
                struct wev *e = w->head;
                if (!e) {
                        *ret_timeout = -1;
                        return 0;
                }
                if (e == w->tail && e->type == EV_WRITE && !w->dead) {
                        int64_t age = time_mono_ms() - e->ts;
                        if (age < WATCH_MERGE_MS) {
                                *ret_timeout = (int)(WATCH_MERGE_MS - age);
                                return 0;
                        }
                }
                e = wq_pop(w);
                json_t *m = wev_json(e);
                free(e);
                if (!m)
                        continue;
                int r = agent_stream_msg(fd, json_pack("{s:o}", "filesystem", m));
                if (r < 0)
                        return r;
        }
}

static int op_watch_dir(struct agent_call *c, struct cove_err **err)
{
        cleanup_watcher struct watcher *w = NULL;
        int r;

        r = watch_open_req(c, &w, err);
        if (r < 0)
                return r;
        r = agent_stream_begin(c->fd);
        if (r < 0)
                return r;
        for (;;) {
                int timeout;
                r = stream_flush(w, c->fd, &timeout);
                if (r < 0)
                        return r;
                if (w->dead && !w->head)
                        return agent_stream_end(c->fd, NULL, NULL);

                struct pollfd pfd[2] = {
                        { .fd = w->ifd, .events = POLLIN },
                        { .fd = c->fd, .events = POLLIN | POLLRDHUP },
                };
                if (poll(pfd, 2, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (pfd[1].revents && agent_client_gone(c->fd, pfd[1].revents))
                        return -ECONNRESET;
                if (pfd[0].revents)
                        watcher_read(w);
        }
}

/* ---- polled watchers ---- */

static struct watcher *polled_find_id(const char *id)
{
        for (struct watcher *w = polled; w; w = w->next)
                if (streq(w->id, id))
                        return w;
        return NULL;
}

static struct watcher *polled_find_serial(uint64_t serial)
{
        for (struct watcher *w = polled; w; w = w->next)
                if (w->serial == serial)
                        return w;
        return NULL;
}

/* Stops reading a watcher whose directory is gone (its queue stays). Under wlock. */
static void polled_close_locked(struct watcher *w)
{
        if (w->ifd < 0)
                return;
        (void)epoll_ctl(epfd, EPOLL_CTL_DEL, w->ifd, NULL);
        (void)close(w->ifd);
        w->ifd = -1;
}

/* Unlinks w from the polled list. Under wlock; the caller frees it after unlocking. */
static void polled_unlink_locked(struct watcher *w)
{
        for (struct watcher **pp = &polled; *pp; pp = &(*pp)->next)
                if (*pp == w) {
                        *pp = w->next;
                        break;
                }
        polled_close_locked(w);
}

static void polled_read_locked(struct watcher *w)
{
        watcher_read(w);
        if (w->dead)
                polled_close_locked(w);
}

static void *poller_thread(void *arg)
{
        struct epoll_event evs[16];
        int64_t last_sweep = time_mono_ms();

        (void)arg;
        for (;;) {
                int n = epoll_wait(epfd, evs, (int)ARRAY_SIZE(evs), WATCH_SWEEP_MS);
                if (n < 0 && errno != EINTR) {
                        log_error_errno(errno, "epoll_wait (watchers): %m");
                        return NULL;
                }
                struct watcher *expired = NULL;
                pthread_mutex_lock(&wlock);
                for (int i = 0; i < n; i++) {
                        struct watcher *w = polled_find_serial(evs[i].data.u64);
                        if (w)
                                polled_read_locked(w);
                }
                int64_t now = time_mono_ms();
                if (now - last_sweep >= WATCH_SWEEP_MS) {
                        last_sweep = now;
                        for (struct watcher **pp = &polled; *pp;) {
                                struct watcher *w = *pp;
                                if (now - w->last_poll < WATCH_IDLE_MS) {
                                        pp = &w->next;
                                        continue;
                                }
                                *pp = w->next;
                                polled_close_locked(w);
                                w->next = expired;
                                expired = w;
                        }
                }
                pthread_mutex_unlock(&wlock);
                while (expired) {
                        struct watcher *w = expired;
                        expired = w->next;
                        log_debug("watcher %s not polled for 10 minutes, removed", w->id);
                        watcher_free(w);
                }
        }
}

/* Starts the epoll thread once. Under wlock. */
static int poller_start_locked(void)
{
        pthread_attr_t attr;
        pthread_t t;

        if (poller_running)
                return 0;
        if (epfd < 0) {
                epfd = epoll_create1(EPOLL_CLOEXEC);
                if (epfd < 0)
                        return -errno;
        }
        if (pthread_attr_init(&attr) != 0)
                return -ENOMEM;
        int r = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (r == 0)
                r = pthread_attr_setstacksize(&attr, 256 * 1024);
        if (r == 0)
                r = pthread_create(&t, &attr, poller_thread, NULL);
        (void)pthread_attr_destroy(&attr);
        if (r != 0)
                return -r;
        poller_running = true;
        return 0;
}

static int op_create_watcher(struct agent_call *c, struct cove_err **err)
{
        cleanup_watcher struct watcher *w = NULL;
        int r;

        r = watch_open_req(c, &w, err);
        if (r < 0)
                return r;
        w->id = random_id("wch_", WATCH_ID_LEN);
        json_t *body = json_pack("{s:s}", "watcherId", w->id);

        pthread_mutex_lock(&wlock);
        r = poller_start_locked();
        if (r >= 0) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u64 = next_serial };
                w->serial = next_serial++;
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, w->ifd, &ev) < 0)
                        r = -errno;
        }
        if (r >= 0) {
                w->next = polled;
                polled = TAKE_PTR(w); /* now owned by the list */
        }
        pthread_mutex_unlock(&wlock);
        if (r < 0) {
                json_decref(body);
                return cove_err_set_status(err, 500, -r, "cannot start the watcher: %m");
        }
        return agent_reply_ok(c->fd, body);
}

static int op_get_watcher_events(struct agent_call *c, struct cove_err **err)
{
        cleanup_wreq struct watch_req q = {};
        json_t *events;
        int r;

        r = watch_parse(c, fields_events, &q, err);
        if (r < 0)
                return r;
        if (!q.watcher_id || !q.watcher_id[0])
                return cove_err_set_status(err, 400, EINVAL, "watcherId is required");
        int64_t limit = q.limit.set ? q.limit.v : WATCH_LIMIT_DEFAULT;

        events = json_array();
        pthread_mutex_lock(&wlock);
        struct watcher *w = polled_find_id(q.watcher_id);
        if (w) {
                polled_read_locked(w);
                w->last_poll = time_mono_ms();
                for (int64_t i = 0; i < limit;) {
                        struct wev *e = wq_pop(w);
                        if (!e)
                                break;
                        json_t *j = wev_json(e);
                        free(e);
                        if (j) {
                                json_array_append_new(events, j);
                                i++;
                        }
                }
        }
        pthread_mutex_unlock(&wlock);
        if (!w) {
                json_decref(events);
                return cove_err_set_status(err, 404, ENOENT, "watcher '%s' not found",
                                           q.watcher_id);
        }
        return agent_reply_ok(c->fd, json_pack("{s:o}", "events", events));
}

static int op_remove_watcher(struct agent_call *c, struct cove_err **err)
{
        cleanup_wreq struct watch_req q = {};
        int r;

        r = watch_parse(c, fields_events, &q, err);
        if (r < 0)
                return r;
        if (!q.watcher_id || !q.watcher_id[0])
                return cove_err_set_status(err, 400, EINVAL, "watcherId is required");
        pthread_mutex_lock(&wlock);
        struct watcher *w = polled_find_id(q.watcher_id);
        if (w)
                polled_unlink_locked(w);
        pthread_mutex_unlock(&wlock);
        if (!w)
                return cove_err_set_status(err, 404, ENOENT, "watcher '%s' not found",
                                           q.watcher_id);
        watcher_free(w);
        return agent_reply_ok(c->fd, json_object());
}

/* ---- dispatch ---- */

struct watch_op {
        const char *name;
        int (*fn)(struct agent_call *c, struct cove_err **err);
};

static const struct watch_op watch_ops[] = {
        { "filesystem.WatchDir", op_watch_dir },
        { "filesystem.CreateWatcher", op_create_watcher },
        { "filesystem.GetWatcherEvents", op_get_watcher_events },
        { "filesystem.RemoveWatcher", op_remove_watcher },
};

bool watch_handles(const char *op)
{
        for (size_t i = 0; i < ARRAY_SIZE(watch_ops); i++)
                if (streq(op, watch_ops[i].name))
                        return true;
        return false;
}

int watch_handle(struct agent_call *c)
{
        cleanup_err struct cove_err *err = NULL;

        for (size_t i = 0; i < ARRAY_SIZE(watch_ops); i++) {
                if (!streq(c->op, watch_ops[i].name))
                        continue;
                int r = watch_ops[i].fn(c, &err);
                if (r >= 0)
                        return 0;
                if (!err)
                        return r;
                return agent_reply_err(c->fd, err->status ? err->status : 500, "%s", err->msg);
        }
        return agent_reply_err(c->fd, 404, "unknown operation '%s'", c->op);
}
