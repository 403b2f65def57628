/* SPDX-License-Identifier: MIT */
/*
 * sigreset.h — a clean signal slate for a process about to exec something else.
 *
 * sig_reset_all() sets every signal's disposition to SIG_DFL and empties the blocked mask;
 * what a process ignores or blocks survives execve, so whatever the caller inherited (a coved
 * run under `nohup` ignores SIGHUP; an odd parent may ignore a real-time signal) must not
 * reach the next program. glibc's sigaction() refuses the two real-time signals it reserves
 * (32 and 33 on Linux; GNU make leaves them ignored): those go through the rt_sigaction system
 * call (x86-64 and arm64). Async-signal-safe (sigaction, sigprocmask and raw system calls), so
 * it may run between fork and exec. Returns 0 or -errno.
 */
#pragma once

#include <signal.h>

int sig_reset_all(void);

/* The same for a process that knows which signals are not at SIG_DFL: sig_nondefault() lists
 * them (one sigaction() query per signal), and sig_reset_listed() resets only those, and
 * glibc's two reserved real-time signals always (no sigset_t can hold them), and empties the
 * blocked mask — a few system calls instead of 64 where it matters (a spawn's child, between clone
 * and exec). Handlers need no reset for exec (execve resets them): the list must hold every ignored
 * signal, and the caller must keep every signal blocked until sig_reset_listed() has run
 * (so that no handler runs in a child that shares its parent's memory). Async-signal-safe. */
void sig_nondefault(sigset_t *ret);
int sig_reset_listed(const sigset_t *which);
