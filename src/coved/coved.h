/* SPDX-License-Identifier: MIT */
/*
 * coved.h — the daemon's shared state and operator configuration.
 *
 * One `struct coved` exists per process; it is created in main.c and borrowed by every
 * module. Configuration is read once at start (flags > config file > defaults) and is
 * immutable afterwards.
 */
#pragma once

#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct coved_config {
        char *listen;      /* "127.0.0.1:49982" */
        char *listen_host; /* parsed */
        uint16_t port;
        char *data_dir;            /* /var/lib/cove */
        char *public_url;          /* http://127.0.0.1:<port> */
        char *auth;                /* "key" | "none" */
        char *node_name;           /* clientID; default: host name */
        char *libexec_dir;         /* where cove-runtime, cove-init, cove-agent live */
        char *log_format;          /* "text" | "json" */
        char *log_level;           /* error|warning|info|debug */
        int64_t default_timeout;   /* s, 300 */
        int64_t ready_wait;        /* s, 120 */
        int64_t max_sandboxes;     /* node capacity; 0 in the settings = derived at start */
        int64_t default_cpu_count; /* 2 */
        int64_t default_memory_mb; /* 512 */
        int64_t default_disk_mb;   /* 2048 */
        int64_t pids_max;          /* 1024 per sandbox */
        int64_t stopped_retention; /* s, 3600 */
        int64_t paused_max_age;    /* s a sandbox may stay paused, 0 = unlimited */
        int64_t volume_size_mb;    /* size of every new volume (MiB), 1024 */
        int64_t max_disk_mb;       /* largest /v1 disk_size_mb (MiB) */
        /* issue 8: observability, events and webhooks, limits */
        int64_t log_max_entries;        /* log entries kept per sandbox, 10000 */
        int64_t metrics_interval;       /* s between sandbox metric samples, 5 */
        int64_t team_metrics_interval;  /* s between team samples, 15 */
        int64_t team_metrics_retention; /* s, 31 days */
        int64_t event_retention;        /* s, 7 days (events and deliveries) */
        char *metrics_auth;             /* GET /metrics: "key" | "none" (public) */
        bool webhook_allow_private;     /* deliver to loopback/private/link-local addresses */
        int64_t webhook_workers;        /* delivery threads, 4 */
        /* default limits of every team (0: none); admin routes override them per team */
        int64_t limit_concurrent_sandboxes;
        int64_t limit_cpu;
        int64_t limit_memory_mb;
        int64_t limit_disk_mb;
        int64_t limit_templates;
        int64_t limit_concurrent_builds;
        int64_t limit_max_lifetime; /* s; 0: 86400 */
        char *e2b_domain;           /* E2B Host routing (e2b.md §3.5); "" = off */
        int64_t e2b_ready_wait;     /* s, 50: the E2B face's create wait (e2b.md §2.3) */
        /* the build plane */
        char *registry_mirrors;         /* "HOST=URL[,only]" lines, may be "" */
        char *aws_ecr_endpoint;         /* "" = AWS's own, per region */
        int64_t max_concurrent_builds;  /* 2 */
        char *direct_build;             /* "on" | "off" */
        int64_t max_template_cpu;       /* 8 */
        int64_t max_template_memory_mb; /* 16384 */
        int64_t max_template_disk_mb;   /* 51200 */
        /* Sandbox networking (docs/operations.md, Network): "on" | "none"; the pool (IPv4
         * CIDR[,IPv6 CIDR]); uplinks and DNS upstreams, comma-separated ("": the default
         * routes' links, /etc/resolv.conf's servers); a SeaCloud network object for creates
         * that set none. */
        char *network;
        char *network_pool;
        char *uplink;
        char *dns_upstream;
        char *network_default_policy;
        /* HTTP server (http/server.h) */
        int64_t http_threads;           /* libmicrohttpd threads; 0: one per CPU, at least 2 */
        int64_t max_connections;        /* 0: 3/4 of the open-file limit */
        int64_t max_connections_client; /* per client address; 0: no limit */
        int64_t idle_timeout;           /* s, 60 */
        int64_t max_active;             /* requests doing blocking work at once */
        int64_t max_active_sandbox;     /* ... for one sandbox's runtime API */
        /* issue 7: the sandboxes' user namespaces, disk admission, the node budget */
        int64_t uid_base;               /* first host uid of the sandboxes' user namespaces */
        int64_t uid_ranges;             /* blocks of 65,536 uids from uid_base */
        int64_t disk_reserve_mb;        /* free space no sandbox may eat into */
        int64_t node_pids_reserve;      /* pids kept for the host */
        int64_t node_memory_reserve_mb; /* memory kept for the host */
        int64_t io_weight;              /* per sandbox, where the kernel weighs I/O */
        char *cgroup_parent;            /* "cove": the parent cgroup of every sandbox */
        /* issue 10: the warm pool (manager/warm.c) */
        int64_t warm_pool_size;    /* pre-started sandboxes kept per pooled template; 0 = none */
        char *warm_pool_templates; /* comma-separated template references ("base") */
};

struct coved {
        struct coved_config cfg;
        struct store *store;           /* owned */
        char *api_key_file;            /* owned: <data-dir>/admin.key */
        char *sandboxes_dir;           /* owned: <data-dir>/sandboxes */
        char *templates_dir;           /* owned: <data-dir>/templates */
        struct manager *manager;       /* owned: the sandbox manager's state (manager/) */
        struct webhook_pool *webhooks; /* owned: the delivery pool (events/) */
        struct sampler *sampler;       /* owned: metric samples (obs/) */
        struct builder *builder;       /* owned: the build plane's state (templates/) */
        struct net *net;               /* owned: networking (engine/network.c); NULL: none */
        struct http_keycache *keys;    /* owned: verified API keys (http/auth.c); NULL: none */
        struct agent_pool *agents;     /* owned: kept agent connections (agent_client.h) */
        /* The code interpreter's warm-up (envd_interp_warm(), set by main.c): the E2B face
         * calls it, on a worker, for a sandbox of the code-interpreter template it created
         * (e2b.md §5.2); api/ cannot include envd/. NULL: none. */
        void (*interp_warm)(struct coved *cd, const char *sandbox_id);
        volatile bool stopping;
        int64_t started_mono_ms;
};
