/* SPDX-License-Identifier: MIT */
#include "lib/sigreset.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/banned.h"

/* A signal glibc's sigaction() refuses (its internal 32 and 33), through the system call with
 * the kernel's struct sigaction of the architectures that have sa_restorer. */
static int reset_raw(int sig)
{
#if defined(__x86_64__) || defined(__aarch64__)
        struct {
                void (*handler)(int);
                unsigned long flags;
                void (*restorer)(void);
                uint64_t mask;
        } dfl = { .handler = SIG_DFL };
        if (syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask)) < 0 && errno != EINVAL)
                return -errno;
#else
        (void)sig;
#endif
        return 0;
}

void sig_nondefault(sigset_t *ret)
{
        sigemptyset(ret);
        for (int s = 1; s < NSIG; s++) {
                struct sigaction old;
                if (s == SIGKILL || s == SIGSTOP)
                        continue;
                /* glibc refuses its reserved ones (EINVAL; sig_reset_listed() resets them
                 * always) */
                if (sigaction(s, NULL, &old) < 0 || old.sa_handler != SIG_DFL)
                        (void)sigaddset(ret, s);
        }
}

int sig_reset_listed(const sigset_t *which)
{
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;

        for (int s = 1; s < NSIG; s++) {
                /* glibc's reserved ones (32, 33) cannot be in a sigset_t: always reset. */
                bool reserved = s >= 32 && s < SIGRTMIN;
                if (!reserved && !sigismember(which, s))
                        continue;
                if (sigaction(s, &dfl, NULL) == 0)
                        continue;
                if (errno != EINVAL)
                        return -errno;
                int r = reset_raw(s);
                if (r < 0)
                        return r;
        }
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                return -errno;
        return 0;
}

int sig_reset_all(void)
{
        sigset_t every;

        /* every signal but the two that cannot be caught; glibc's reserved ones are reset by
         * sig_reset_listed() whatever the set says */
        sigfillset(&every);
        (void)sigdelset(&every, SIGKILL);
        (void)sigdelset(&every, SIGSTOP);
        return sig_reset_listed(&every);
}
