/* SPDX-License-Identifier: MIT */
/*
 * config.h — operator settings. Each is a `key = value` line in the config file and a
 * `--key value` flag (flags win); the table in config.c is the single list, also printed by
 * `coved --help`.
 */
#pragma once

#include "coved/coved.h"
#include "lib/err.h"

#include <stdio.h>

void config_defaults(struct coved_config *c);
int config_load_file(struct coved_config *c, const char *path, struct cove_err **err);
int config_set(struct coved_config *c, const char *key, const char *value, struct cove_err **err);
bool config_known(const char *key);
/* Derives listen_host/port, public URL, node name; validates. */
int config_finish(struct coved_config *c, struct cove_err **err);
void config_print_help(FILE *f);
void config_release(struct coved_config *c);
