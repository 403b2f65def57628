/* SPDX-License-Identifier: MIT */
/*
 * seccomp.c — the sandbox's deny list (docs/design/seccomp.md).
 *
 * Default ALLOW; the listed syscalls fail with EPERM. no_new_privs stays OFF so setuid
 * binaries (sudo) keep working; loading a filter without it needs CAP_SYS_ADMIN, which the
 * helper's child still has (it only lost it from the bounding set). The filter covers the
 * native ABI and, on x86-64, the i386 and x32 ABIs, so `int 0x80` cannot bypass it.
 */
#include "runtime/setup.h"

#include "lib/macro.h"

#include <sched.h>
#include <seccomp.h>

#include "lib/banned.h"

static const char *const denied[] = {
        /* kernel modules, kexec, reboot */
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
        /* kernel attack surface without a sandbox use */
        "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie", "quotactl", "quotactl_fd",
        "vm86", "vm86old", "iopl", "ioperm", "uselib", "nfsservctl", "syslog",
        /* kernel keyring (not namespaced) */
        "keyctl", "add_key", "request_key",
        /* host-global state */
        "swapon", "swapoff", "acct", "clock_settime", "clock_settime64", "settimeofday",
        "adjtimex", "clock_adjtime", "clock_adjtime64",
        /* file handles bypass the mount namespace (shocker) */
        "open_by_handle_at", "name_to_handle_at",
        /* mounts and namespaces */
        "mount", "umount", "umount2", "pivot_root", "fsopen", "fsmount", "fsconfig", "fspick",
        "move_mount", "open_tree", "mount_setattr", "unshare", "setns",
};

static int add_rules(scmp_filter_ctx ctx, struct cove_err **err)
{
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
                int nr = seccomp_syscall_resolve_name(denied[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* unknown to this libseccomp: nothing to filter */
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
                if (r < 0 && r != -EEXIST)
                        return cove_err_set(err, -r, "seccomp: rule for '%s': %m", denied[i]);
        }
        /* clone(2) creating a user namespace (the usual first step of an escape); clone3 passes
         * its flags in memory, so it gets ENOSYS and libc falls back to clone(2). */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        if (r < 0)
                return cove_err_set(err, -r, "seccomp: rule for 'clone': %m");
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0 && r != -EEXIST)
                return cove_err_set(err, -r, "seccomp: rule for 'clone3': %m");
        return 0;
}

int seccomp_install(struct cove_err **err)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r;

        if (!ctx)
                return cove_err_set(err, ENOMEM, "seccomp: init failed");
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r < 0)
                goto fail;
#if defined(__x86_64__)
        r = seccomp_arch_add(ctx, SCMP_ARCH_X86);
        if (r < 0 && r != -EEXIST)
                goto fail;
        r = seccomp_arch_add(ctx, SCMP_ARCH_X32);
        if (r < 0 && r != -EEXIST)
                goto fail;
#endif
        r = add_rules(ctx, err);
        if (r < 0) {
                seccomp_release(ctx);
                return r;
        }
        r = seccomp_load(ctx);
        if (r < 0)
                goto fail;
        seccomp_release(ctx);
        return 0;
fail:
        seccomp_release(ctx);
        return cove_err_set(err, -r, "seccomp: load filter: %m");
}
