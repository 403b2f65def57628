/* SPDX-License-Identifier: MIT */
/*
 * network.h — what the namespace backend (namespaces.c) asks of engine/network.c while it
 * makes and removes a sandbox. The rest of coved uses engine.h's engine_network_*() and
 * engine_set_network()/engine_adopt().
 */
#pragma once

#include "coved/engine/engine.h"

/* The runtime config's "files": resolv.conf and the cove.internal line of /etc/hosts when
 * networking is on, the access token always. New reference. */
json_t *engine_network_files(struct coved *cd, const struct engine_spec *spec);
/* Right after the runtime made the sandbox: its veth, addresses, routes and policy. */
int engine_network_attach(struct coved *cd, const struct engine_spec *spec,
                          const struct engine_identity *who, struct cove_err **err);
/* With the sandbox: every trace of its network (idempotent; failures are logged). */
void engine_network_detach(struct coved *cd, const char *id);
/* The sandbox's network counters into u's net_* (usage.h); they stay -1 without a network. */
void engine_network_usage(struct coved *cd, const char *id, struct sandbox_usage *u);
