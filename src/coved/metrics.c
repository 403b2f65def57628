/* SPDX-License-Identifier: MIT */
/* metrics.c — coved's Prometheus families (metrics.h). */
#include "coved/metrics.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/prom.h"

#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>

/* Seconds: requests are mostly milliseconds; creates wait for an agent; builds take minutes. */
static const double request_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,     2.5,  5,     10,   30,  60 };
static const double start_buckets[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
static const double phase_buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   1 };
static const double build_buckets[] = { 1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600 };

static const char *const l_state[] = { "state", NULL };
static const char *const l_status[] = { "status", NULL };
static const char *const l_route[] = { "route", NULL };
static const char *const l_request[] = { "route", "method", "code", NULL };
static const char *const l_version[] = { "version", NULL };
static const char *const l_reason[] = { "reason", NULL };
static const char *const l_phase[] = { "phase", NULL };

static struct {
        struct prom_registry *reg;
        struct prom_family *build_info, *sandboxes, *creates, *create_failures, *start_seconds,
                *phase_seconds, *deletes, *delete_seconds, *refused, *templates, *builds,
                *build_seconds, *http_requests, *http_seconds, *webhook_deliveries, *webhook_queue,
                *open_fds, *max_fds, *rss, *vsize, *cpu_seconds, *start_time;
        int64_t started_at; /* s since the epoch */
} m;

void metrics_init(void)
{
        struct prom_registry *r = prom_registry_new();

        m.reg = r;
        m.started_at = (int64_t)time(NULL);
        m.build_info = prom_family_add(r, PROM_GAUGE, "cove_build_info",
                                       "Build information (always 1).", l_version, NULL, 0);
        m.sandboxes = prom_family_add(r, PROM_GAUGE, "cove_sandboxes",
                                      "Sandboxes on this node by state.", l_state, NULL, 0);
        m.creates = prom_family_add(r, PROM_COUNTER, "cove_sandbox_creates_total",
                                    "Sandbox creates that answered with a sandbox.", NULL, NULL, 0);
        m.create_failures = prom_family_add(r, PROM_COUNTER, "cove_sandbox_create_failures_total",
                                            "Sandbox creates that failed.", NULL, NULL, 0);
        m.start_seconds = prom_family_add(r, PROM_HISTOGRAM, "cove_sandbox_start_seconds",
                                          "Time from a create request to its answer.", NULL,
                                          start_buckets, ARRAY_SIZE(start_buckets));
        m.phase_seconds = prom_family_add(r, PROM_HISTOGRAM, "cove_sandbox_create_phase_seconds",
                                          "Time of each phase of a sandbox create (bench/create.py "
                                          "prints the breakdown).",
                                          l_phase, phase_buckets, ARRAY_SIZE(phase_buckets));
        m.deletes = prom_family_add(r, PROM_COUNTER, "cove_sandbox_deletes_total",
                                    "Sandboxes deleted (by request, timeout or retention).", NULL,
                                    NULL, 0);
        m.delete_seconds = prom_family_add(r, PROM_HISTOGRAM, "cove_sandbox_delete_seconds",
                                           "Time a sandbox's teardown took.", NULL, start_buckets,
                                           ARRAY_SIZE(start_buckets));
        m.refused = prom_family_add(r, PROM_COUNTER, "cove_sandbox_creates_refused_total",
                                    "Sandbox creates refused by a quota or the node's capacity.",
                                    l_reason, NULL, 0);
        m.templates = prom_family_add(r, PROM_GAUGE, "cove_templates", "Templates on this node.",
                                      NULL, NULL, 0);
        m.builds = prom_family_add(r, PROM_GAUGE, "cove_builds", "Template builds by status.",
                                   l_status, NULL, 0);
        m.build_seconds = prom_family_add(r, PROM_HISTOGRAM, "cove_build_seconds",
                                          "Duration of finished template builds.", NULL,
                                          build_buckets, ARRAY_SIZE(build_buckets));
        m.http_requests = prom_family_add(r, PROM_COUNTER, "cove_http_requests_total",
                                          "HTTP requests answered, by route pattern, method and "
                                          "status code.",
                                          l_request, NULL, 0);
        m.http_seconds = prom_family_add(r, PROM_HISTOGRAM, "cove_http_request_seconds",
                                         "Time from a request's head to its answer, by route "
                                         "pattern.",
                                         l_route, request_buckets, ARRAY_SIZE(request_buckets));
        m.webhook_deliveries =
                prom_family_add(r, PROM_COUNTER, "cove_webhook_deliveries_total",
                                "Webhook delivery attempts by outcome.", l_status, NULL, 0);
        m.webhook_queue = prom_family_add(r, PROM_GAUGE, "cove_webhook_deliveries_waiting",
                                          "Webhook deliveries pending or waiting for a retry.",
                                          NULL, NULL, 0);
        m.open_fds = prom_family_add(r, PROM_GAUGE, "process_open_fds",
                                     "Open file descriptors of coved.", NULL, NULL, 0);
        m.max_fds = prom_family_add(r, PROM_GAUGE, "process_max_fds",
                                    "File descriptor limit of coved.", NULL, NULL, 0);
        m.rss = prom_family_add(r, PROM_GAUGE, "process_resident_memory_bytes",
                                "Resident memory of coved.", NULL, NULL, 0);
        m.vsize = prom_family_add(r, PROM_GAUGE, "process_virtual_memory_bytes",
                                  "Virtual memory of coved.", NULL, NULL, 0);
        m.cpu_seconds = prom_family_add(r, PROM_COUNTER, "process_cpu_seconds_total",
                                        "CPU time coved used (user and system).", NULL, NULL, 0);
        m.start_time = prom_family_add(r, PROM_GAUGE, "process_start_time_seconds",
                                       "When coved started (Unix seconds).", NULL, NULL, 0);

        const char *version[] = { COVE_VERSION };
        prom_set(m.build_info, version, 1);
        /* The outcomes exist from the start, so that rate() sees the first increment. */
        static const char *const outcomes[] = { "delivered", "retrying", "failed", "dead_lettered",
                                                "refused" };
        for (size_t i = 0; i < ARRAY_SIZE(outcomes); i++) {
                const char *v[] = { outcomes[i] };
                prom_inc(m.webhook_deliveries, v, 0);
        }
        static const char *const build_states[] = { "waiting", "building", "ready", "error" };
        for (size_t i = 0; i < ARRAY_SIZE(build_states); i++) {
                const char *v[] = { build_states[i] };
                prom_inc(m.builds, v, 0);
        }
        static const char *const reasons[] = { "quota", "capacity" };
        for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
                const char *v[] = { reasons[i] };
                prom_inc(m.refused, v, 0);
        }
}

void metrics_free(void)
{
        prom_registry_free(m.reg);
        m.reg = NULL;
}

void metrics_http_request(const char *route, const char *method, unsigned code, double seconds)
{
        char c[DECIMAL_STR_MAX(unsigned)];

        if (!m.reg)
                return;
        (void)snprintf(c, sizeof(c), "%u", code);
        const char *v[] = { route, method, c };
        prom_inc(m.http_requests, v, 1);
        const char *rv[] = { route };
        prom_observe(m.http_seconds, rv, seconds);
}

void metrics_sandbox_create(bool ok, double seconds)
{
        if (!m.reg)
                return;
        prom_inc(ok ? m.creates : m.create_failures, NULL, 1);
        if (ok)
                prom_observe(m.start_seconds, NULL, seconds);
}

void metrics_create_phase(const char *phase, double seconds)
{
        if (!m.reg)
                return;
        const char *v[] = { phase };
        prom_observe(m.phase_seconds, v, seconds);
}

void metrics_sandbox_delete(double seconds)
{
        if (!m.reg)
                return;
        prom_inc(m.deletes, NULL, 1);
        prom_observe(m.delete_seconds, NULL, seconds);
}

void metrics_sandbox_refused(const char *reason)
{
        if (!m.reg)
                return;
        const char *v[] = { reason };
        prom_inc(m.refused, v, 1);
}

void metrics_build_transition(const char *from, const char *to)
{
        if (!m.reg)
                return;
        if (from) {
                const char *v[] = { from };
                prom_inc(m.builds, v, -1);
        }
        if (to) {
                const char *v[] = { to };
                prom_inc(m.builds, v, 1);
        }
}

void metrics_build_finished(const char *status, double seconds)
{
        (void)status;
        if (m.reg)
                prom_observe(m.build_seconds, NULL, seconds);
}

void metrics_webhook_delivery(const char *outcome)
{
        if (!m.reg)
                return;
        const char *v[] = { outcome };
        prom_inc(m.webhook_deliveries, v, 1);
}

void metrics_set_gauges(const struct metrics_gauges *g)
{
        if (!m.reg)
                return;
        for (int s = 0; s < _SANDBOX_STATE_MAX; s++) {
                const char *v[] = { sandbox_state_to_string((enum sandbox_state)s) };
                prom_set(m.sandboxes, v, (double)g->sandboxes[s]);
        }
        prom_set(m.templates, NULL, (double)g->templates);
        prom_set(m.webhook_queue, NULL, (double)g->webhook_queue);
}

/* coved's own process figures, read now. */
static void process_gauges(void)
{
        int64_t fds = 0;
        cleanup_closedir DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        fds++;
        if (d)
                fds--; /* the directory's own descriptor */
        prom_set(m.open_fds, NULL, (double)fds);

        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
                prom_set(m.max_fds, NULL, (double)rl.rlim_cur);

        cleanup_free char *statm = NULL;
        size_t len = 0;
        if (read_small_file("/proc/self/statm", 4096, &statm, &len) >= 0) {
                unsigned long long pages_virt = 0, pages_res = 0;
                if (sscanf(statm, "%llu %llu", &pages_virt, &pages_res) == 2) {
                        long page = sysconf(_SC_PAGESIZE);
                        prom_set(m.vsize, NULL, (double)pages_virt * (double)page);
                        prom_set(m.rss, NULL, (double)pages_res * (double)page);
                }
        }

        struct tms t;
        long hz = sysconf(_SC_CLK_TCK);
        if (times(&t) != (clock_t)-1 && hz > 0)
                prom_set(m.cpu_seconds, NULL, (double)(t.tms_utime + t.tms_stime) / (double)hz);
        prom_set(m.start_time, NULL, (double)m.started_at);
}

int metrics_render(struct buf *out)
{
        if (!m.reg)
                return 0;
        process_gauges();
        return prom_render(m.reg, out);
}
