/* SPDX-License-Identifier: MIT */
/*
 * volume_mount.c — mounting volumes into a sandbox (cove-runtime create; setup.h).
 *
 * The parent (before clone) makes a *detached* mount (fsopen/fsmount) of each volume's ext4
 * image; the child attaches it at the volume's path inside the new root (move_mount, in
 * rootfs_setup(), mount.c). Nothing is ever mounted in the host's namespace.
 *
 * One filesystem image may be mounted by many sandboxes at once, and it must then be one
 * filesystem: two loop devices on the same file would be two ext4 instances writing the same
 * blocks. So every mount of an image goes through the same loop device: under an exclusive
 * flock of the image file (on an open of its own), an existing loop device bound to that file (same
 * st_dev/st_ino) is reused — mounting its block device again yields the superblock already mounted
 * — and a new one is attached only when none is. The device is auto-clearing: when the last sandbox
 * that mounted the volume is gone, the kernel unmounts the filesystem and detaches the device.
 */
#include "runtime/setup.h"

#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/banned.h"

#define LOOP_ATTACH_TRIES 64
#define LOOP_REUSE_TRIES  50 /* a device going away (auto-clear in progress) is waited for */
#define LOOP_DEV_PATH_MAX (STRLEN("/dev/loop") + DECIMAL_STR_MAX(int))

/* The loop device bound to the image (same st_dev and st_ino, whatever path it was bound by),
 * opened read-write, or -ENOENT when none is. */
static int loop_find(const struct stat *st, char path[LOOP_DEV_PATH_MAX])
{
        cleanup_closedir DIR *d = opendir("/sys/block");
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                uint32_t nr;
                if (strncmp(de->d_name, "loop", 4) != 0 || safe_atou32(de->d_name + 4, &nr) < 0)
                        continue;
                cleanup_free char *bf = xasprintf("/sys/block/%s/loop/backing_file", de->d_name);
                if (access(bf, F_OK) < 0)
                        continue; /* not bound */
                (void)snprintf(path, LOOP_DEV_PATH_MAX, "/dev/loop%u", nr);
                int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        continue;
                struct loop_info64 info;
                if (ioctl(fd, LOOP_GET_STATUS64, &info) == 0 && info.lo_inode == st->st_ino &&
                    info.lo_device == st->st_dev)
                        return fd;
                (void)close(fd);
        }
        return -ENOENT;
}

static int loop_attach(int file, char path[LOOP_DEV_PATH_MAX], struct cove_err **err)
{
        cleanup_close int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return cove_err_set(err, errno, "open /dev/loop-control: %m");
        for (int tries = 0; tries < LOOP_ATTACH_TRIES; tries++) {
                int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (nr < 0)
                        return cove_err_set(err, errno, "find a free loop device: %m");
                (void)snprintf(path, LOOP_DEV_PATH_MAX, "/dev/loop%d", nr);
                cleanup_close int dev = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (dev < 0 && errno == ENOENT)
                        continue;
                if (dev < 0)
                        return cove_err_set(err, errno, "open '%s': %m", path);
                struct loop_config lc = {
                        .fd = (uint32_t)file,
                        .block_size = 4096,
                        .info = { .lo_flags = LO_FLAGS_AUTOCLEAR },
                };
                if (ioctl(dev, LOOP_CONFIGURE, &lc) == 0)
                        return TAKE_FD(dev);
                if (errno == EBUSY)
                        continue; /* taken between GET_FREE and now */
                return cove_err_set(err, errno, "configure '%s': %m", path);
        }
        return cove_err_set(err, EBUSY, "no free loop device after %d tries", LOOP_ATTACH_TRIES);
}

/* A detached mount of the ext4 filesystem on dev: -errno (no err) so the caller can retry. */
static int mount_ext4(const char *dev)
{
        cleanup_close int fs = fsopen("ext4", FSOPEN_CLOEXEC);
        if (fs < 0)
                return -errno;
        if (fsconfig(fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        int m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
        return m < 0 ? -errno : m;
}

static int volume_open(const struct sandbox_volume *v, struct cove_err **err)
{
        cleanup_close int img = open(v->image, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        char dev[LOOP_DEV_PATH_MAX];
        struct stat st;

        if (img < 0)
                return cove_err_set(err, errno, "volume image '%s': %m", v->image);
        if (fstat(img, &st) < 0)
                return cove_err_set(err, errno, "volume image '%s': %m", v->image);
        if (!S_ISREG(st.st_mode))
                return cove_err_set(err, EINVAL, "volume image '%s' is not a regular file",
                                    v->image);
        /* One mounter of this image at a time (sandboxes of other volumes do not wait). The
         * lock is on an open file description of its own: the loop device keeps the one it
         * is bound to, and a lock on that would never be released. */
        cleanup_close int lock = open(v->image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (lock < 0 || TEMP_FAILURE_RETRY(flock(lock, LOCK_EX)) < 0)
                return cove_err_set(err, errno, "lock volume image '%s': %m", v->image);

        for (int tries = 0; tries < LOOP_REUSE_TRIES; tries++) {
                cleanup_close int fd = loop_find(&st, dev);
                if (fd == -ENOENT)
                        break;
                if (fd < 0)
                        return cove_err_set(err, -fd, "list loop devices: %m");
                int m = mount_ext4(dev);
                if (m >= 0)
                        return m;
                /* The device is being cleared (its last mount just went): wait for it to go
                 * rather than attach a second device to the same file while it might live. */
                struct timespec ts = { 0, 10 * 1000 * 1000 };
                (void)nanosleep(&ts, NULL);
                if (tries + 1 == LOOP_REUSE_TRIES)
                        return cove_err_set(err, -m, "mount volume '%s' from '%s': %m", v->image,
                                            dev);
        }
        cleanup_close int devfd = loop_attach(img, dev, err);
        if (devfd < 0)
                return cove_err_wrap(err, "volume image '%s'", v->image);
        int m = mount_ext4(dev);
        if (m < 0)
                return cove_err_set(err, -m, "mount volume '%s' from '%s': %m", v->image, dev);
        return m;
}

int volumes_open(const struct sandbox_config *c, struct cove_err **err)
{
        for (size_t i = 0; i < c->n_volumes; i++) {
                int m = volume_open(&c->volumes[i], err);
                if (m < 0)
                        return m;
                c->volumes[i].mnt_fd = m;
        }
        return 0;
}

int volumes_idmap(const struct sandbox_config *c, int userns_fd, struct cove_err **err)
{
        /* On disk a volume holds the sandboxes' own ids (0 for root, 1000 for user), so that
         * any sandbox that mounts it sees them so, whatever its block of host uids: each
         * sandbox's mount of it is idmapped through its user namespace, as the layers are. */
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd };
        if (userns_fd < 0)
                return 0;
        for (size_t i = 0; i < c->n_volumes; i++)
                if (mount_setattr(c->volumes[i].mnt_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                        return cove_err_set(err, errno, "volume '%s': idmap: %m",
                                            c->volumes[i].image);
        return 0;
}

void volumes_close(const struct sandbox_config *c)
{
        for (size_t i = 0; i < c->n_volumes; i++)
                if (c->volumes[i].mnt_fd >= 0) {
                        (void)close(c->volumes[i].mnt_fd);
                        c->volumes[i].mnt_fd = -1;
                }
}
