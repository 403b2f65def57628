/* SPDX-License-Identifier: MIT */
/* phase.c — the phase recorder of phase.h. */
#include "runtime/phase.h"

#include "lib/macro.h"
#include "lib/timeutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/banned.h"

static bool active;
static pthread_t owner; /* the thread that called phase_start(): only its marks count */
static uint64_t last_us;
static size_t n_phases;
static struct phase phases[PHASES_MAX];

void phase_start(void)
{
        active = true;
        owner = pthread_self();
        n_phases = 0;
        last_us = (uint64_t)time_mono_us();
}

void phase_mark(const char *name)
{
        if (!active || !pthread_equal(pthread_self(), owner))
                return;
        uint64_t now = (uint64_t)time_mono_us();
        if (n_phases < PHASES_MAX) {
                struct phase *p = &phases[n_phases++];
                (void)snprintf(p->name, sizeof(p->name), "%s", name);
                p->us = now - last_us;
        } else {
                phases[PHASES_MAX - 1].us += now - last_us;
        }
        last_us = now;
}

const struct phase *phase_list(size_t *ret_n)
{
        *ret_n = n_phases;
        return phases;
}
