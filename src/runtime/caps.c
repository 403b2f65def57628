/* SPDX-License-Identifier: MIT */
/*
 * caps.c — the sandbox's capability bounding set: the container default set (Docker/runc,
 * minus MKNOD, NET_RAW). See docs/design/seccomp.md for the rationale.
 *
 * Only the bounding set (and ambient/inheritable) is reduced here: the helper's child keeps
 * CAP_SYS_ADMIN in its effective set until exec, which it needs to load a seccomp filter
 * without no_new_privs. After execve, root's permitted set is the bounding set.
 */
#include "runtime/setup.h"

#include "lib/macro.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include "lib/banned.h"

static const cap_value_t keep_caps[] = {
        CAP_CHOWN,       CAP_DAC_OVERRIDE, CAP_FOWNER,  CAP_FSETID,           CAP_KILL,
        CAP_SETGID,      CAP_SETUID,       CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
        CAP_AUDIT_WRITE, CAP_SETFCAP,
};

static bool kept(cap_value_t c)
{
        for (size_t i = 0; i < ARRAY_SIZE(keep_caps); i++)
                if (keep_caps[i] == c)
                        return true;
        return false;
}

int caps_drop_bounding(struct cove_err **err)
{
        cap_value_t max = cap_max_bits();
        cap_t caps = NULL;

        for (cap_value_t c = 0; c < max; c++) {
                if (kept(c))
                        continue;
                if (cap_drop_bound(c) < 0 && errno != EINVAL)
                        return cove_err_set(err, errno, "drop capability %d from bounding set: %m",
                                            c);
        }
        if (cap_reset_ambient() < 0 && errno != EINVAL)
                return cove_err_set(err, errno, "clear ambient capabilities: %m");
        caps = cap_get_proc();
        if (!caps)
                return cove_err_set(err, errno, "get capabilities: %m");
        if (cap_clear_flag(caps, CAP_INHERITABLE) < 0 || cap_set_proc(caps) < 0) {
                int e = errno;
                cap_free(caps);
                return cove_err_set(err, e, "clear inheritable capabilities: %m");
        }
        cap_free(caps);
        return 0;
}
