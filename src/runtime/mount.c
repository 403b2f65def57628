/* SPDX-License-Identifier: MIT */
/*
 * mount.c — the sandbox's root filesystem, built in the child's private mount namespace:
 * overlay, binds, /proc (with the usual read-only and masked paths), /dev, /sys, /tmp, the
 * home directories, pivot_root.
 *
 * Everything from the host arrives as an fd prepared by the parent (idmap.c, volume_mount.c):
 * the disk image mount, the layer, bind and volume trees (detached, idmapped into the sandbox's
 * user namespace) are attached with move_mount() onto <state_dir>/rootfs, and the overlay is
 * made with the new mount API over /proc/self/fd/N paths (the child may not be able to look up
 * the data directory by name). pivot_root then leaves only the overlay and what is mounted on it.
 *
 * Every mount target inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT) relative to
 * the rootfs and mounted through /proc/self/fd/N, so a symlink in a template (say `dev -> /`)
 * can never redirect a mount outside the sandbox's root (crun, bubblewrap).
 */
#include "runtime/setup.h"

#include "lib/buf.h"
#include "lib/macro.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "lib/banned.h"

#define FSCONFIG_VALUE_MAX 256 /* fsconfig() copies at most 255 bytes of a string */
#define FD_PATH_MAX        (STRLEN("/proc/self/fd/") + DECIMAL_STR_MAX(int))

struct fd_path {
        char p[FD_PATH_MAX];
};

static struct fd_path fdp(int fd)
{
        struct fd_path r;
        (void)snprintf(r.p, sizeof(r.p), "/proc/self/fd/%d", fd);
        return r;
}

static int open_in_root(int rootfd, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        while (*path == '/')
                path++;
        if (!*path)
                path = ".";
        long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
        return fd < 0 ? -errno : (int)fd;
}

/* mkdir -p inside the root; chowns (and chmods) only the last component, and only if created. */
static int mkdir_in_root(int rootfd, const char *path, mode_t mode, uid_t uid, gid_t gid,
                         struct cove_err **err)
{
        cleanup_free char *prefix = xzalloc(strlen(path) + 2);
        cleanup_close int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
        size_t pl = 0;

        if (cur < 0)
                return cove_err_set(err, errno, "dup: %m");
        for (const char *p = path; *p;) {
                p += strspn(p, "/");
                size_t l = strcspn(p, "/");
                if (l == 0)
                        break;
                cleanup_free char *comp = xstrndup(p, l);
                p += l;
                bool last = p[strspn(p, "/")] == '\0';
                if (streq(comp, ".") || streq(comp, ".."))
                        return cove_err_set(err, EINVAL, "mkdir '%s': not a normalised path", path);
                memcpy(prefix + pl, "/", 1);
                memcpy(prefix + pl + 1, comp, l);
                pl += l + 1;
                prefix[pl] = '\0';

                int fd = open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
                if (fd == -ENOENT) {
                        if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST)
                                return cove_err_set(err, errno, "mkdir '%s': %m", prefix);
                        if (last && uid != (uid_t)-1 &&
                            fchownat(cur, comp, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                                return cove_err_set(err, errno, "chown '%s': %m", prefix);
                        if (last && fchmodat(cur, comp, mode, 0) < 0)
                                return cove_err_set(err, errno, "chmod '%s': %m", prefix);
                        fd = open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
                }
                if (fd < 0)
                        return cove_err_set(err, -fd, "open '%s' in rootfs: %m", prefix);
                (void)close(cur);
                cur = fd;
        }
        return TAKE_FD(cur);
}

/* An empty regular file at path (inside root) to bind a file onto. Returns an O_PATH fd. */
static int file_in_root(int rootfd, const char *path, struct cove_err **err)
{
        cleanup_free char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        const char *name = slash ? slash + 1 : dir;
        cleanup_close int dfd = -1, fd = -1;

        if (slash)
                *slash = '\0';
        dfd = mkdir_in_root(rootfd, slash ? dir : "", 0755, (uid_t)-1, (gid_t)-1, err);
        if (dfd < 0)
                return dfd;
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                    0644);
        if (fd < 0 && errno != EEXIST)
                return cove_err_set(err, errno, "create '%s': %m", path);
        int r = open_in_root(rootfd, path, O_PATH);
        if (r < 0)
                return cove_err_set(err, -r, "open '%s' in rootfs: %m", path);
        return r;
}

static int make_readonly(int fd, const char *what, struct cove_err **err)
{
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
        if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) == 0)
                return 0;
        if (errno != ENOSYS)
                return cove_err_set(err, errno, "make '%s' read-only: %m", what);
        /* FIXME: drop once the minimum kernel has mount_setattr (5.12); remounts the top only. */
        if (mount(NULL, fdp(fd).p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
                return cove_err_set(err, errno, "remount '%s' read-only: %m", what);
        return 0;
}

/* Attaches the detached (or already attached) mount `fd` on top of the directory or file
 * `target_fd` refers to. */
static int attach(int fd, int target_fd, const char *what, struct cove_err **err)
{
        if (move_mount(fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
            0)
                return cove_err_set(err, errno, "attach %s: %m", what);
        return 0;
}

static int bind_one(int rootfd, const struct sandbox_bind *b, int tree, struct cove_err **err)
{
        cleanup_close int tfd = -1;
        struct stat st;

        /* The tree is the parent's open_tree() clone of the source (idmapped, and read-only
         * for readonly binds — never nosuid: /usr/bin/sudo must work). */
        if (fstat(tree, &st) < 0)
                return cove_err_set(err, errno, "bind '%s': %m", b->source);
        if (S_ISDIR(st.st_mode))
                tfd = mkdir_in_root(rootfd, b->target, 0755, (uid_t)-1, (gid_t)-1, err);
        else
                tfd = file_in_root(rootfd, b->target, err);
        if (tfd < 0)
                return cove_err_wrap(err, "bind '%s' on '%s'", b->source, b->target);
        if (move_mount(tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return cove_err_set(err, errno, "bind '%s' on '%s': %m", b->source, b->target);
        return 0;
}

/* The volumes' mounts, opened and idmapped by the parent (volume_mount.c), on their targets. */
static int attach_volumes(int rootfd, const struct sandbox_config *c, struct cove_err **err)
{
        for (size_t i = 0; i < c->n_volumes; i++) {
                const struct sandbox_volume *v = &c->volumes[i];
                cleanup_close int tfd =
                        mkdir_in_root(rootfd, v->target, 0755, (uid_t)-1, (gid_t)-1, err);
                if (tfd < 0)
                        return cove_err_wrap(err, "volume on '%s'", v->target);
                if (move_mount(v->mnt_fd, "", tfd, "",
                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                        return cove_err_set(err, errno, "mount volume on '%s': %m", v->target);
        }
        return 0;
}

static int mount_at(int rootfd, const char *target, mode_t mode, const char *src,
                    const char *fstype, unsigned long flags, const char *data,
                    struct cove_err **err)
{
        cleanup_close int fd = mkdir_in_root(rootfd, target, mode, (uid_t)-1, (gid_t)-1, err);
        if (fd < 0)
                return cove_err_wrap(err, "mount %s on '%s'", fstype, target);
        if (mount(src, fdp(fd).p, fstype, flags, data) < 0)
                return cove_err_set(err, errno, "mount %s on '%s': %m", fstype, target);
        return 0;
}

/* Paths of the fresh /proc that the sandbox may read but not write (sysctls: core_pattern is a
 * host escape), and paths hidden behind /dev/null (Docker/runc defaults). */
static const char *const proc_readonly[] = { "sys", "sysrq-trigger", "irq", "bus", "fs" };
static const char *const proc_masked[] = { "kcore",       "keys",          "timer_list",
                                           "sched_debug", "latency_stats", "timer_stats" };

static int setup_proc(int rootfd, struct cove_err **err)
{
        cleanup_close int procfd = -1;
        int r = mount_at(rootfd, "proc", 0555, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                         NULL, err);
        if (r < 0)
                return r;
        procfd = open_in_root(rootfd, "proc", O_PATH | O_DIRECTORY);
        if (procfd < 0)
                return cove_err_set(err, -procfd, "open 'proc' in rootfs: %m");
        for (size_t i = 0; i < ARRAY_SIZE(proc_readonly); i++) {
                cleanup_close int fd =
                        openat(procfd, proc_readonly[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                cleanup_close int top = -1;
                if (fd < 0) {
                        if (errno == ENOENT)
                                continue;
                        return cove_err_set(err, errno, "open '/proc/%s': %m", proc_readonly[i]);
                }
                struct fd_path p = fdp(fd);
                if (mount(p.p, p.p, NULL, MS_BIND | MS_REC, NULL) < 0)
                        return cove_err_set(err, errno, "bind '/proc/%s': %m", proc_readonly[i]);
                top = openat(procfd, proc_readonly[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (top < 0)
                        return cove_err_set(err, errno, "open '/proc/%s': %m", proc_readonly[i]);
                r = make_readonly(top, proc_readonly[i], err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ARRAY_SIZE(proc_masked); i++) {
                cleanup_close int fd =
                        openat(procfd, proc_masked[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ENOENT)
                                continue;
                        return cove_err_set(err, errno, "open '/proc/%s': %m", proc_masked[i]);
                }
                if (mount("/dev/null", fdp(fd).p, NULL, MS_BIND, NULL) < 0)
                        return cove_err_set(err, errno, "mask '/proc/%s': %m", proc_masked[i]);
        }
        return 0;
}

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
static const char *const dev_links[][2] = {
        { "ptmx", "pts/ptmx" },          { "fd", "/proc/self/fd" },
        { "stdin", "/proc/self/fd/0" },  { "stdout", "/proc/self/fd/1" },
        { "stderr", "/proc/self/fd/2" },
};

static int setup_dev(int rootfd, struct cove_err **err)
{
        cleanup_close int devfd = -1, ptsfd = -1, shmfd = -1;
        int r = mount_at(rootfd, "dev", 0755, "tmpfs", "tmpfs", MS_NOSUID, "mode=755,size=65536k",
                         err);
        if (r < 0)
                return r;
        devfd = open_in_root(rootfd, "dev", O_PATH | O_DIRECTORY);
        if (devfd < 0)
                return cove_err_set(err, -devfd, "open 'dev' in rootfs: %m");
        for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
                char host[32];
                cleanup_close int fd =
                        openat(devfd, dev_nodes[i],
                               O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
                if (fd < 0)
                        return cove_err_set(err, errno, "create '/dev/%s': %m", dev_nodes[i]);
                (void)close(TAKE_FD(fd));
                fd = openat(devfd, dev_nodes[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return cove_err_set(err, errno, "open '/dev/%s': %m", dev_nodes[i]);
                (void)snprintf(host, sizeof(host), "/dev/%s", dev_nodes[i]);
                if (mount(host, fdp(fd).p, NULL, MS_BIND, NULL) < 0)
                        return cove_err_set(err, errno, "bind '%s': %m", host);
        }
        if (mkdirat(devfd, "pts", 0755) < 0)
                return cove_err_set(err, errno, "mkdir '/dev/pts': %m");
        ptsfd = openat(devfd, "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ptsfd < 0)
                return cove_err_set(err, errno, "open '/dev/pts': %m");
        if (mount("devpts", fdp(ptsfd).p, "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
                return cove_err_set(err, errno, "mount devpts on '/dev/pts': %m");
        if (mkdirat(devfd, "shm", 01777) < 0)
                return cove_err_set(err, errno, "mkdir '/dev/shm': %m");
        shmfd = openat(devfd, "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (shmfd < 0)
                return cove_err_set(err, errno, "open '/dev/shm': %m");
        if (mount("shm", fdp(shmfd).p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
                return cove_err_set(err, errno, "mount tmpfs on '/dev/shm': %m");
        for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++)
                if (symlinkat(dev_links[i][1], devfd, dev_links[i][0]) < 0)
                        return cove_err_set(err, errno, "symlink '/dev/%s': %m", dev_links[i][0]);
        return 0;
}

/* The kernel's explanation of a failed fsconfig (the fs context log), or "". */
static void fs_log(int fs, char *msg, size_t size)
{
        ssize_t n = read(fs, msg, size - 1);
        msg[n > 2 ? n : 0] = '\0';
        msg[strcspn(msg, "\n")] = '\0';
}

static int fs_set(int fs, const char *key, const char *value, const char *rootfs,
                  struct cove_err **err)
{
        char msg[256];
        if (fsconfig(fs, value ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, key, value, 0) == 0)
                return 0;
        int e = errno;
        fs_log(fs, msg, sizeof(msg));
        return cove_err_set(err, e, "mount overlay on '%s': option '%s': %m%s%s", rootfs, key,
                            *msg ? ": " : "", *msg ? msg + 2 : "");
}

/* The lower layers, topmost first. fsconfig() takes strings of at most 255 bytes: one
 * "lowerdir+" per layer (Linux 6.8+); older kernels get the joined "lowerdir", which holds 15
 * layers. */
static int overlay_lowers(int fs, const struct sandbox_config *c, const struct sandbox_mounts *m,
                          const char *rootfs, struct cove_err **err)
{
        char one[FD_PATH_MAX];
        struct buf all;
        int r;

        for (size_t i = 0; c->layers[i]; i++) {
                (void)snprintf(one, sizeof(one), "/proc/self/fd/%d", m->layers[i]);
                if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", one, 0) == 0)
                        continue;
                if (i > 0 || errno != EINVAL)
                        return fs_set(fs, "lowerdir+", one, rootfs, err);
                /* FIXME: drop once the minimum kernel has "lowerdir+" (6.8). */
                buf_init(&all, FSCONFIG_VALUE_MAX);
                r = 0;
                for (size_t j = 0; r >= 0 && c->layers[j]; j++)
                        r = buf_addf(&all, "%s/proc/self/fd/%d", j ? ":" : "", m->layers[j]);
                if (r < 0)
                        r = cove_err_set(err, E2BIG,
                                         "mount overlay on '%s': too many layers "
                                         "for this kernel (no \"lowerdir+\")",
                                         rootfs);
                else
                        r = fs_set(fs, "lowerdir", buf_str(&all), rootfs, err);
                buf_release(&all);
                return r;
        }
        return 0;
}

/* Mounts the overlay root and returns its fd (the mount's root, attached on m->rootfs). */
static int mount_overlay(const struct sandbox_config *c, const struct sandbox_mounts *m,
                         const char *rootfs, struct cove_err **err)
{
        cleanup_close int fs = -1, ovl = -1;
        char upper[PATH_MAX], work[PATH_MAX], msg[256];
        int r;

        /* The writable layer's filesystem and the lower trees join this mount namespace (an
         * overlay only takes layers from its own); pivot_root detaches them again. */
        if (m->disk >= 0) {
                r = attach(m->disk, m->rootfs, "the writable layer", err);
                if (r < 0)
                        return r;
                (void)snprintf(upper, sizeof(upper), "/proc/self/fd/%d/%s", m->disk, m->upper_name);
                (void)snprintf(work, sizeof(work), "/proc/self/fd/%d/%s", m->disk, m->work_name);
        } else {
                (void)snprintf(upper, sizeof(upper), "/proc/self/fd/%d", m->upper);
                (void)snprintf(work, sizeof(work), "/proc/self/fd/%d", m->work);
        }
        for (size_t i = 0; c->layers[i]; i++) {
                r = attach(m->layers[i], m->rootfs, "an overlay layer", err);
                if (r < 0)
                        return r;
        }
        fs = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs < 0)
                return cove_err_set(err, errno, "mount overlay on '%s': fsopen: %m", rootfs);
        if ((r = overlay_lowers(fs, c, m, rootfs, err)) < 0 ||
            (r = fs_set(fs, "upperdir", upper, rootfs, err)) < 0 ||
            (r = fs_set(fs, "workdir", work, rootfs, err)) < 0)
                return r;
        /* Inside a user namespace overlay keeps its metadata in user.* xattrs. */
        if (c->userns.set && (r = fs_set(fs, "userxattr", NULL, rootfs, err)) < 0)
                return r;
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                int e = errno;
                fs_log(fs, msg, sizeof(msg));
                return cove_err_set(err, e, "mount overlay on '%s': %m%s%s", rootfs,
                                    *msg ? ": " : "", *msg ? msg + 2 : "");
        }
        ovl = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
        if (ovl < 0)
                return cove_err_set(err, errno, "mount overlay on '%s': fsmount: %m", rootfs);
        r = attach(ovl, m->rootfs, "the overlay", err);
        return r < 0 ? r : TAKE_FD(ovl);
}

int rootfs_setup(const struct sandbox_config *c, const struct sandbox_mounts *m,
                 struct cove_err **err)
{
        cleanup_free char *rootfs = xasprintf("%s/rootfs", c->state_dir);
        cleanup_close int rootfd = -1, fd = -1;
        int r;

        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return cove_err_set(err, errno, "make '/' private: %m");
        rootfd = mount_overlay(c, m, rootfs, err);
        if (rootfd < 0)
                return rootfd;

        for (size_t i = 0; i < c->n_binds; i++) {
                r = bind_one(rootfd, &c->binds[i], m->binds[i], err);
                if (r < 0)
                        return r;
        }
        r = attach_volumes(rootfd, c, err);
        if (r < 0)
                return r;
        if ((r = setup_proc(rootfd, err)) < 0 || (r = setup_dev(rootfd, err)) < 0)
                return r;
        r = mount_at(rootfd, "sys", 0555, "sysfs", "sysfs",
                     MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
        if (r < 0)
                return r;
        r = mount_at(rootfd, "tmp", 01777, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777",
                     err);
        if (r < 0)
                return r;

        /* Home directories exist in every sandbox (created in the upper layer if missing). */
        fd = mkdir_in_root(rootfd, "root", 0700, 0, 0, err);
        if (fd < 0)
                return fd;
        (void)close(TAKE_FD(fd));
        fd = mkdir_in_root(rootfd, "root/workspace", 0755, 0, 0, err);
        if (fd < 0)
                return fd;
        (void)close(TAKE_FD(fd));
        fd = mkdir_in_root(rootfd, "home/user", 0755, 1000, 1000, err);
        if (fd < 0)
                return fd;

        if (fchdir(rootfd) < 0)
                return cove_err_set(err, errno, "chdir '%s': %m", rootfs);
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return cove_err_set(err, errno, "pivot_root '%s': %m", rootfs);
        if (umount2(".", MNT_DETACH) < 0)
                return cove_err_set(err, errno, "detach old root: %m");
        if (chdir("/") < 0)
                return cove_err_set(err, errno, "chdir '/': %m");
        return 0;
}
