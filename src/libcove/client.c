/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "libcove/cove.h"
int cove__placeholder(void);
int cove__placeholder(void) { return 0; }
