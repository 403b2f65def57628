/* SPDX-License-Identifier: MIT */
/*
 * hostroot.h — the "host userland" template: a skeleton rootfs whose programs come from the
 * host's own /usr (bind-mounted read-only on top by the sandbox config's `binds`).
 *
 * hostroot_build(dir) creates dir (atomically: built in dir.tmp, then swapped in, so a rebuild
 * replaces an old one and a crash leaves no half tree at dir) with:
 *   - bin, sbin, lib, lib64, lib32, libx32 symlinks mirroring the host's merged-/usr layout
 *     (ENOTSUP when the host's /bin is a real directory: that host cannot share /usr this way);
 *   - empty mount points and directories (usr, proc, dev, sys, tmp, run, var/…, root,
 *     root/workspace, home/user owned 1000:1000);
 *   - a generated /etc: users root and user (1000, passwordless sudo), groups, a locked shadow,
 *     sudoers, the PAM files sudo needs, hosts, resolv.conf, nsswitch.conf, profile,
 *     ld.so.cache/ld.so.conf(.d), CA bundle, os-release, alternatives, mtab, localtime (UTC).
 * Nothing secret of the host is copied (no shadow, ssh keys, /root, /home).
 */
#pragma once

#include "lib/err.h"

int hostroot_build(const char *dir, struct cove_err **err);
