/* SPDX-License-Identifier: MIT */
/*
 * tenancy.h — teams and API keys (spec README §2, control-plane.md §13.2): the operator's
 * side (create, list, revoke; admin routes and `cove admin`) and the one check of which teams
 * a key may act in and see.
 *
 * Keys are stored as SHA-256 hashes only; a key exists in clear exactly once, in the answer to
 * its creation. Revocation takes effect on the next request (auth reads the store on every
 * request; nothing caches keys). Records are the store's, owned by the caller.
 */
#pragma once

#include "coved/coved.h"
#include "lib/err.h"
#include "store/store.h"

#include <stdbool.h>

#define TEAM_NAME_MAX 64
#define KEY_NAME_MAX  128

/* The teams key_id belongs to, its own team first (NULL-terminated, strv_free). In open mode
 * (auth = none) the default team only. */
int tenancy_key_teams(struct coved *cd, const char *key_id, char ***ret, struct cove_err **err);
/* 0 when key_id belongs to team_id; 404 "team '<id>' not found" otherwise (README §2.1: what
 * the caller may not see does not exist for it). */
int tenancy_team_visible(struct coved *cd, const char *key_id, const char *team_id,
                         struct cove_err **err);

/* name: 1–TEAM_NAME_MAX of [A-Za-z0-9 ._-]; 409 when taken. */
int tenancy_team_create(struct coved *cd, const char *name, struct team_rec **ret,
                        struct cove_err **err);
int tenancy_team_get(struct coved *cd, const char *id, struct team_rec **ret,
                     struct cove_err **err);
int tenancy_team_list(struct coved *cd, struct team_rec ***ret, struct cove_err **err);

/* role: "admin" or "user" ("member" is taken as "user"). format: NULL or "cove" (cove_ + 40
 * [a-z0-9]), "e2b" (e2b_ + 40 lower-case hex, for E2B's SDKs). *ret_key: the key, once. */
int tenancy_key_create(struct coved *cd, const char *team_id, const char *role, const char *name,
                       const char *format, char **ret_key, struct apikey_rec **ret,
                       struct cove_err **err);
int tenancy_key_list(struct coved *cd, const char *team_id, struct apikey_rec ***ret,
                     struct cove_err **err);
int tenancy_key_get(struct coved *cd, const char *id, struct apikey_rec **ret,
                    struct cove_err **err);
int tenancy_key_revoke(struct coved *cd, const char *id, struct cove_err **err);
/* Lets a key act in one more team (X-Project-ID). */
int tenancy_key_add_team(struct coved *cd, const char *key_id, const char *team_id,
                         struct cove_err **err);
