/* SPDX-License-Identifier: MIT */
/*
 * setup.h — cove-runtime's internal steps (not part of the library).
 *
 * sandbox_run() (ns.c) is the parent side of `create`: with mounts_prepare_host() (idmap.c)
 * before the clone and mounts_prepare_trees() (idmap.c) once the child's user namespace has
 * its maps, it makes every mount that needs host paths or host privileges and hands the fds to
 * the child. The child side calls, in this order, rootfs_setup() (mount.c: attaches those
 * mounts, overlay, /proc, /dev, … up to and including pivot_root), the ns.c steps (hostname,
 * lo), caps_drop_bounding() (caps.c) and seccomp_install() (seccomp.c). Child-side
 * functions fill a cove_err whose message names the failed step and the path involved; they
 * run in the single-threaded helper's child, so allocating is fine, returning through cleanup
 * frames is fine (the child's own resources), and the child _exit()s at the top.
 */
#pragma once

#include "lib/err.h"
#include "runtime/config.h"
#include "runtime/spawn_client.h"

#define SANDBOX_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* bins: the sealed init/agent fds handed over by coved (checked with sealed_exec_check), or
 * NULL: sealed copies of c->init and c->agent are made here. */
int sandbox_run(const struct sandbox_config *c, const struct runtime_binaries *bins,
                struct runtime_result *ret, struct cove_err **err);

/* What the parent prepares for the child's root filesystem. Every fd is close-on-exec and -1
 * when absent. With a user namespace the child cannot even look up paths under the data
 * directory (0700, host root), so everything it needs from the host arrives as an fd. */
struct sandbox_mounts {
        /* The writable layer's mount, detached, holding the overlay's upper and work dirs
         * (named upper_name, work_name in its root): the disk image's ext4 (disk.h), or a
         * clone of the directory holding c->upper_dir and c->work_dir (idmapped through the
         * sandbox's user namespace, so that what it writes there lands as the ids it sees). */
        int disk;
        const char *upper_name, *work_name;
        /* The child's own (child_open_dirs() in ns.c: an fd opened before the clone would name
         * the host's mount, not the child's copy of it): */
        int rootfs;      /* O_PATH <state_dir>/rootfs: where the mounts are attached */
        int upper, work; /* O_PATH <state_dir>/upper and work/ when disk is -1 */
        int *layers;     /* detached trees, one per c->layers entry (idmapped with a userns) */
        int *binds;      /* detached trees, one per c->binds entry (idmapped, read-only per bind) */
};

void mounts_init(struct sandbox_mounts *m, const struct sandbox_config *c);
void mounts_close(struct sandbox_mounts *m, const struct sandbox_config *c);
/* Before the clone: the disk image mount, the clone of upper_dir's directory, or (with a user
 * namespace) upper/ and work/ owned by the sandbox's root and a state dir it may traverse. */
int mounts_prepare_host(const struct sandbox_config *c, struct sandbox_mounts *m,
                        struct cove_err **err);
/* After the child's id maps are written: one detached tree per layer and per bind source,
 * idmapped through userns_fd (-1: no user namespace), and upper_dir's clone idmapped too. */
int mounts_prepare_trees(const struct sandbox_config *c, int userns_fd, struct sandbox_mounts *m,
                         struct cove_err **err);

int rootfs_setup(const struct sandbox_config *c, const struct sandbox_mounts *m,
                 struct cove_err **err);

/* Volumes (volume_mount.c, the parent's side): volumes_open() before clone (a detached mount
 * per volume in c->volumes[i].mnt_fd), volumes_idmap() once the child's user namespace has its
 * maps, volumes_close() once the child has them. rootfs_setup() attaches them in the child's
 * new root. */
int volumes_open(const struct sandbox_config *c, struct cove_err **err);
int volumes_idmap(const struct sandbox_config *c, int userns_fd, struct cove_err **err);
void volumes_close(const struct sandbox_config *c);
int caps_drop_bounding(struct cove_err **err);
/* Writes c->files inside the sandbox (seedfiles.c); after pivot_root, before init. */
int seed_files(const struct sandbox_config *c, struct cove_err **err);
int seccomp_install(struct cove_err **err);
