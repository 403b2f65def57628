/* SPDX-License-Identifier: MIT */
/*
 * config.h — the sandbox config.json of docs/design/runtime-helper.md, parsed into a struct.
 *
 * Every string is owned by the struct; sandbox_config_free() releases all of it and accepts
 * NULL. Paths are checked to be absolute; `layers` must not contain ':' or ',' (overlay option
 * syntax) and the id is a valid hostname.
 *
 * `userns` and `disk` are optional (configs written before they existed still load, so an
 * upgraded coved can destroy older sandboxes): without `userns` sandbox root is host root;
 * without `disk` the writable layer is <state_dir>/upper on the host's filesystem.
 */
#pragma once

#include "lib/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SANDBOX_CONFIG_MAX   (256 * 1024)
#define SANDBOX_MAX_LAYERS   128
#define SANDBOX_MAX_BINDS    64
#define SANDBOX_MAX_VOLUMES  16
#define SANDBOX_MAX_FILES    8
#define SANDBOX_FILE_MAX     (64 * 1024)
#define SANDBOX_DISK_MAX_MB  (16ULL * 1024 * 1024)
#define SANDBOX_USERNS_COUNT 65536

struct sandbox_bind {
        char *source;  /* owned, absolute host path */
        char *target;  /* owned, absolute path inside the sandbox */
        bool readonly; /* default true when the key is absent */
};

/* A volume (control-plane.md §13.1): the image file's filesystem, mounted read-write at target
 * (volume_mount.c). */
struct sandbox_volume {
        char *image;  /* owned, absolute host path of the volume image */
        char *target; /* owned, absolute normalised path inside the sandbox */
        int mnt_fd;   /* the helper's detached mount of it, -1 until volumes_open() */
};

/* A file coved hands the sandbox (seedfiles.c): /etc/resolv.conf, a line of /etc/hosts,
 * /run/cove/access-token. Written inside, after pivot_root, never through a symlink. */
struct sandbox_file {
        char *path;    /* owned, absolute path inside the sandbox, normalised */
        char *content; /* owned */
        uint32_t mode; /* of a created file */
        bool append;   /* add `content` unless the file already holds it; else replace */
};

/* The sandbox's user namespace: ids 0..count-1 inside are uid..uid+count-1 on the host. */
struct sandbox_userns {
        bool set;
        uint32_t uid, gid, count;
};

/* The writable layer's own filesystem: an ext4 image of size_mb, made from `golden` (a
 * formatted image of that size, created on first use). */
struct sandbox_disk {
        char *image;  /* owned; NULL: no disk image */
        char *golden; /* owned */
        uint64_t size_mb;
};

struct sandbox_config {
        char *id;                   /* owned */
        char *state_dir;            /* owned */
        char **layers;              /* owned, NULL-terminated, topmost first */
        struct sandbox_bind *binds; /* owned */
        size_t n_binds;
        struct sandbox_volume *volumes; /* owned */
        size_t n_volumes;
        char *init;         /* owned */
        char *agent;        /* owned */
        char *agent_socket; /* owned */
        char *cgroup_name;  /* owned */
        char *upper_dir;    /* owned, may be NULL: the overlay's upper directory instead of
                             * <state_dir>/upper (build sandboxes write a layer there) */
        char *work_dir;     /* owned, set with upper_dir, on the same filesystem */
        uint32_t cpu_count;
        uint64_t memory_mb;
        uint32_t pids_max;
        struct sandbox_file *files; /* owned */
        size_t n_files;
        uint32_t io_weight;  /* 0: the kernel's default */
        uint32_t cpu_weight; /* 0: the kernel's default (cgroup.h) */
        struct sandbox_userns userns;
        struct sandbox_disk disk;
};

int sandbox_config_load(const char *path, struct sandbox_config **ret, struct cove_err **err);
struct sandbox_config *sandbox_config_free(struct sandbox_config *c);
static inline void sandbox_config_freep(struct sandbox_config **c)
{
        *c = sandbox_config_free(*c);
}
#define cleanup_config __attribute__((cleanup(sandbox_config_freep)))
