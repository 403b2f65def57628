/* SPDX-License-Identifier: MIT */
/* h_sandboxes.h — control-plane sandbox routes (control-plane.md). */
#pragma once

#include "coved/http.h"
#include "lib/err.h"

#include <jansson.h>

extern const struct route sandbox_routes[];

/* Validates an envVars-shaped object (create envVars, runtime /configure envs). */
int validate_env_vars(const char *field, json_t *v, struct cove_err **err);
