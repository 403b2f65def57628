/* SPDX-License-Identifier: MIT */
/*
 * seccomp.c — the sandbox's deny list (docs/design/seccomp.md, which gives each rule's reason
 * and the comparison with Docker's default profile).
 *
 * Default ALLOW; the listed syscalls fail with EPERM. The list is short on purpose: sandbox
 * processes hold no capability outside their user namespace and none of CAP_SYS_ADMIN,
 * CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_TIME, CAP_SYS_RAWIO, … inside it (caps.c), so the
 * kernel itself refuses mounts, modules, kexec, clocks, swap and the like. What stays here is
 * what an unprivileged process can reach: creating a user namespace (the way to get those
 * capabilities back), and kernel surface that host sysctls may leave open to everyone.
 *
 * no_new_privs stays OFF so setuid binaries (sudo) keep working; loading a filter without it
 * needs CAP_SYS_ADMIN in the current user namespace, which the helper's child has until exec.
 * The filter covers the native ABI and, on x86-64, the i386 and x32 ABIs, so `int 0x80` cannot
 * bypass it.
 */
#include "runtime/setup.h"

#include "lib/macro.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>

#include "lib/banned.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static const char *const denied[] = {
        /* kernel keyrings: not namespaced, a long record of exploitable bugs */
        "keyctl",
        "add_key",
        "request_key",
        /* verifier, PMU and fault-race surface that kernel.unprivileged_bpf_disabled,
         * kernel.perf_event_paranoid and vm.unprivileged_userfaultfd may open to anyone */
        "bpf",
        "perf_event_open",
        "userfaultfd",
        /* the host's kernel log (kernel.dmesg_restrict = 0 on some hosts) */
        "syslog",
        /* io_uring: a large, young interface with a history of privilege escalations */
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        /* opening by file handle bypasses the mount namespace ("shocker"); recent kernels
         * relaxed its capability check */
        "open_by_handle_at",
        /* quotactl has unprivileged subcommands; uselib loads a.out libraries */
        "quotactl",
        "quotactl_fd",
        "uselib",
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
        /* A new user namespace would give its creator every capability over it: the way back
         * to mounts, netfilter and the other namespaced-root surfaces. clone(2) and unshare(2)
         * with CLONE_NEWUSER fail; clone3 passes its flags in memory, which seccomp cannot
         * inspect, so it gets ENOSYS and libc falls back to clone(2). */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        if (r < 0)
                return cove_err_set(err, -r, "seccomp: rule for 'clone': %m");
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        if (r < 0)
                return cove_err_set(err, -r, "seccomp: rule for 'unshare': %m");
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0 && r != -EEXIST)
                return cove_err_set(err, -r, "seccomp: rule for 'clone3': %m");
        /* vsock reaches the hypervisor's services when the host is a VM (Docker denies it). */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_EQ, AF_VSOCK));
        if (r < 0 && r != -EEXIST)
                return cove_err_set(err, -r, "seccomp: rule for 'socket': %m");
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
