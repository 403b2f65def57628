/* SPDX-License-Identifier: MIT */
/*
 * extract.h — unpacking tar archives (plain, gzip or zstd) into a directory, with the rules of
 * build-plane.md §7.4. Used for OCI image layers and for build contexts (COPY, `files`).
 *
 * Safety invariants, whatever the archive holds:
 * - Every path is resolved relative to `rootfd` with openat2(RESOLVE_IN_ROOT |
 *   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), so nothing is created, changed or removed outside
 *   the root — not through "..", absolute names, symlinks, hard links or mount points.
 * - Entry names must be relative without ".." components (a leading "./" is dropped); an
 *   absolute name or a ".." component fails the extraction.
 * - Symlinks are created as links, with their target text unchanged, and never followed:
 *   the last component of an entry is never followed (an existing link there is replaced),
 *   and intermediate components may not be symlinks either, unless EXTRACT_FOLLOW_IN_ROOT
 *   (COPY into a finished filesystem, where /lib → usr/lib is normal) lets them resolve,
 *   still clamped to the root.
 * - Hard links must name an entry already inside the root (never a directory).
 * - Character and block devices, FIFOs and sockets are refused.
 * - At most max_entries entries and max_bytes bytes of file data (defaults 100,000 and 8 GiB).
 * - xattrs: only `security.capability` and `user.*` are applied; `*.overlay.*` never is.
 *
 * With EXTRACT_OCI_WHITEOUTS the OCI whiteouts become overlayfs whiteouts: `.wh.<name>` a 0:0
 * character device `<name>` (skipped when this layer itself has `<name>`: OCI says a whiteout
 * hides lower layers only), `.wh..wh..opq` the xattrs trusted.overlay.opaque=y and
 * user.overlay.opaque=y (for overlays mounted with `userxattr` in a user namespace) on its
 * directory; other `.wh..wh.*` names are ignored.
 *
 * Ownership: with uid/gid < 0 entries keep the archive's numeric ids, which must be within
 * 0..EXTRACT_MAX_ID (the range an idmapped mount of a layer maps into a sandbox);
 * otherwise every entry gets uid/gid. Modes (with setuid/setgid/sticky) and mtimes of files
 * and links come from the archive; with has_file_mode, file_mode replaces the permission bits of
 * every regular file (E2B's COPY mode, e2b.md §2.7; directories keep theirs).
 *
 * COPY mode (`src` set): only the entry `src` (a file, or a directory whose contents are
 * copied) and what lies below it is extracted, placed at `dest` (a path inside the root; a
 * file `src` lands at dest/<basename> when dest ends with '/'); `src` may be a glob
 * (fnmatch per path component). No matching entry → ENOENT "'<src>' not found in the build
 * context". src "." (or "") means the whole archive.
 *
 * Errors name the entry: "entry '../x': name leaves the archive root".
 */
#pragma once

#include "lib/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXTRACT_MAX_ENTRIES_DEFAULT UINT64_C(100000)
#define EXTRACT_MAX_BYTES_DEFAULT   (UINT64_C(8) * 1024 * 1024 * 1024)
#define EXTRACT_MAX_ID              65535
#define EXTRACT_NAME_MAX            4096

enum extract_flags {
        EXTRACT_OCI_WHITEOUTS = 1 << 0,
        EXTRACT_FOLLOW_IN_ROOT = 1 << 1,
};

struct extract_opts {
        unsigned flags;
        uint64_t max_entries; /* 0: default */
        uint64_t max_bytes;   /* 0: default */
        int64_t uid, gid;     /* >= 0: owner of every entry; < 0: from the archive */
        bool has_file_mode;   /* file_mode replaces the permission bits of files */
        unsigned file_mode;
        const char *src;            /* COPY mode when non-NULL */
        const char *dest;           /* COPY mode: target path inside the root ("/app/") */
        volatile const int *cancel; /* non-zero → ECANCELED; may be NULL */
};

struct extract_stats {
        uint64_t entries;
        uint64_t bytes;
};

/* Reads the archive from archive_fd (any position; it is read to the end or the error). */
int extract_archive_fd(int rootfd, int archive_fd, const struct extract_opts *o,
                       struct extract_stats *ret_stats, struct cove_err **err);
/* Same from memory (tests and fuzzing). */
int extract_archive_mem(int rootfd, const void *p, size_t n, const struct extract_opts *o,
                        struct extract_stats *ret_stats, struct cove_err **err);

/* Pure: validates an archive entry name and returns it normalised (no "./" prefix, no "."
 * components, no trailing '/'; "" for the root). EINVAL with the reason. */
int extract_name_normalize(const char *name, char **ret, struct cove_err **err);

/* Checks that an archive is a readable gzip-compressed tar (upload validation, §9). */
int extract_check_targz_fd(int fd, struct cove_err **err);
/* Checks that an archive is a readable tar, gzip-compressed or plain (E2B's opaque uploads). */
int extract_check_tar_fd(int fd, struct cove_err **err);
