/* SPDX-License-Identifier: MIT */
/*
 * test-store-obs.c — the store's issue-8 tables against a real database file: lifecycle events
 * written in the transaction of their sandbox change (and rolled back with it), deliveries fanned
 * out to subscribed webhooks only, due deliveries in order per (webhook, sandbox), attempts
 * begun/finished/recovered, replay, pruning; keys, teams, limits and admission; team samples;
 * log pages.
 */
#include "lib/err.h"
#include "lib/macro.h"
#include "lib/timeutil.h"
#include "store/store.h"
#include "tap.h"

#include <sys/stat.h>

static char tmpdir[] = "/tmp/test-store-obs-XXXXXX";
static int db_counter;

static struct store *open_new(char **ret_path)
{
        struct store *s = NULL;
        cleanup_err struct cove_err *err = NULL;
        char *path = xasprintf("%s/db%d.sqlite", tmpdir, ++db_counter);
        int r = store_open(path, &s, &err);
        if (r < 0)
                printf("# store_open: %s\n", err ? err->msg : "?");
        ASSERT_EQ(r, 0);
        ASSERT_EQ(store_team_ensure_default(s, &err), 0);
        if (ret_path)
                *ret_path = path;
        else
                free(path);
        return s;
}

static struct sandbox_rec *make_sandbox(const char *id, const char *team, const char *key)
{
        struct sandbox_rec *sb = xzalloc(sizeof(*sb));
        sb->id = xstrdup(id);
        sb->team_id = xstrdup(team);
        sb->key_id = key ? xstrdup(key) : NULL;
        sb->template_id = xstrdup("tpl-base-0001");
        sb->state = SANDBOX_RUNNING;
        sb->access_token = xstrdup("tok");
        sb->started_at = 1;
        sb->end_at = 300000;
        sb->cpu_count = 2;
        sb->memory_mb = 512;
        sb->disk_size_mb = 1024;
        return sb;
}

static int ev_counter;

static struct event_rec *make_event(const char *type, const char *sandbox, const char *team)
{
        struct event_rec *e = xzalloc(sizeof(*e));
        e->id = xasprintf("evt_%020d", ++ev_counter);
        e->type = xstrdup(type);
        e->sandbox_id = xstrdup(sandbox);
        e->team_id = xstrdup(team);
        e->ts = time_now_ms();
        e->body = json_pack("{s:s, s:s, s:s}", "id", e->id, "type", type, "sandboxId", sandbox);
        return e;
}

static struct webhook_rec *make_webhook(const char *id, const char *team, const char *type)
{
        struct webhook_rec *w = xzalloc(sizeof(*w));
        w->id = xstrdup(id);
        w->team_id = xstrdup(team);
        w->name = xstrdup(id);
        w->url = xstrdup("http://127.0.0.1:9/hook");
        w->secret = xstrdup("secret-123");
        w->enabled = true;
        w->events = json_pack("[s]", type);
        w->max_attempts = 2;
        w->delays = json_pack("[i]", 1);
        w->created_at = w->updated_at = 1;
        return w;
}

static int64_t count_events(struct store *s, const char *team)
{
        cleanup_err struct cove_err *err = NULL;
        struct event_rec **v = NULL;
        struct event_query q = { .team_id = team, .limit = 100 };
        ASSERT_EQ(store_event_list(s, &q, &v, &err), 0);
        int64_t n = 0;
        while (v[n])
                n++;
        event_list_free(v);
        return n;
}

static int set_paused(struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)err;
        sb->state = SANDBOX_PAUSED;
        sb->event = make_event("sandbox.lifecycle.paused", sb->id, sb->team_id);
        return ud ? 1 : 0; /* ud NULL: the fn changes its mind (the event must go too) */
}

static void test_events_in_transactions(void)
{
        cleanup_err struct cove_err *err = NULL;
        struct store *s = open_new(NULL);
        struct webhook_rec *w = make_webhook("whk_a", "team_default", "sandbox.lifecycle.paused");
        struct webhook_rec *w2 = make_webhook("whk_b", "team_default", "sandbox.lifecycle.killed");
        struct webhook_rec *w3 = make_webhook("whk_c", "team_x", "sandbox.lifecycle.paused");
        struct delivery_rec **d = NULL;
        ASSERT_EQ(store_webhook_insert(s, w, 50, &err), 0);
        ASSERT_EQ(store_webhook_insert(s, w2, 50, &err), 0);
        ASSERT_EQ(store_webhook_insert(s, w3, 50, &err), 0);

        struct sandbox_rec *sb = make_sandbox("sb1", "team_default", NULL);
        sb->event = make_event("sandbox.lifecycle.created", "sb1", "team_default");
        ASSERT_EQ(store_sandbox_insert(s, sb, &err), 0);
        ASSERT_TRUE(sb->event == NULL); /* written and consumed */
        ASSERT_EQ(count_events(s, "team_default"), 1);
        ASSERT_EQ(count_events(s, "team_x"), 0); /* lists are per team */

        /* A modify that writes nothing drops its event. */
        ASSERT_EQ(store_sandbox_modify(s, "sb1", set_paused, NULL, NULL, &err), 0);
        ASSERT_EQ(count_events(s, "team_default"), 1);
        ASSERT_EQ(store_sandbox_modify(s, "sb1", set_paused, (void *)1, NULL, &err), 0);
        ASSERT_EQ(count_events(s, "team_default"), 2);

        /* Only the subscribed webhook of the event's own team got a delivery. */
        struct delivery_query q = { .team_id = "team_default", .limit = 100 };
        ASSERT_EQ(store_delivery_list(s, &q, &d, &err), 0);
        ASSERT_TRUE(d[0] && !d[1]);
        ASSERT_STREQ(d[0]->webhook_id, "whk_a");
        ASSERT_STREQ(d[0]->status, "pending");
        ASSERT_EQ(d[0]->attempts, 0);
        ASSERT_EQ(d[0]->max_attempts, 2);
        ASSERT_TRUE(strncmp(d[0]->id, "dlv_", 4) == 0 && strlen(d[0]->id) == 24);
        delivery_list_free(d);

        /* Delete with its event: one transaction. */
        struct event_rec *k = make_event("sandbox.lifecycle.killed", "sb1", "team_default");
        ASSERT_EQ(store_sandbox_delete_event(s, "sb1", k, &err), 0);
        ASSERT_EQ(count_events(s, "team_default"), 3);
        ASSERT_EQ(store_sandbox_delete_event(s, "sb1", k, &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(count_events(s, "team_default"), 3); /* the failed delete wrote nothing */
        event_rec_free(k);

        webhook_rec_free(w);
        webhook_rec_free(w2);
        webhook_rec_free(w3);
        sandbox_rec_free(sb);
        store_close(s);
}

/* Failure injection: when any step of the transaction fails, neither the row change nor the
 * event is written. */
static void test_event_rollback(void)
{
        for (int step = 1; step <= 6; step++) {
                cleanup_err struct cove_err *err = NULL;
                struct sandbox_rec *g = NULL;
                struct store *s = open_new(NULL);
                struct sandbox_rec *sb = make_sandbox("sb1", "team_default", NULL);
                ASSERT_EQ(store_sandbox_insert(s, sb, &err), 0);
                sandbox_rec_free(sb);
                store_close(s);

                char n[8];
                (void)snprintf(n, sizeof(n), "%d", step);
                ASSERT_EQ(setenv("COVE_STORE_FAIL_STEP", n, 1), 0);
                s = NULL;
                char *path = xasprintf("%s/db%d.sqlite", tmpdir, db_counter);
                ASSERT_EQ(store_open(path, &s, &err), 0);
                free(path);
                ASSERT_EQ(unsetenv("COVE_STORE_FAIL_STEP"), 0);
                int r = store_sandbox_modify(s, "sb1", set_paused, (void *)1, NULL, &err);
                cove_err_free(&err);
                ASSERT_EQ(store_sandbox_get(s, "sb1", &g, &err), 0);
                int64_t events = count_events(s, "team_default");
                if (r < 0) {
                        ASSERT_EQ(g->state, SANDBOX_RUNNING);
                        ASSERT_EQ(events, 0);
                } else {
                        ASSERT_EQ(g->state, SANDBOX_PAUSED);
                        ASSERT_EQ(events, 1);
                }
                sandbox_rec_free(g);
                store_close(s);
        }
}

/* Writes an event of sandbox sb (team_default) and returns how many deliveries it made. */
static void emit(struct store *s, const char *sb)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *rec = make_sandbox(sb, "team_default", NULL);
        rec->event = make_event("sandbox.lifecycle.created", sb, "team_default");
        ASSERT_EQ(store_sandbox_insert(s, rec, &err), 0);
        sandbox_rec_free(rec);
}

static void test_delivery_order_and_attempts(void)
{
        cleanup_err struct cove_err *err = NULL;
        struct store *s = open_new(NULL);
        struct webhook_rec *w = make_webhook("whk_a", "team_default", "sandbox.lifecycle.created");
        char **ids = NULL;
        ASSERT_EQ(store_webhook_insert(s, w, 50, &err), 0);
        webhook_rec_free(w);

        /* Two events of one sandbox would need the same sandbox ID twice: use the delete
         * event of the first sandbox to make a second of its line. */
        emit(s, "sb1");
        struct event_rec *k = make_event("sandbox.lifecycle.created", "sb1", "team_default");
        ASSERT_EQ(store_sandbox_delete_event(s, "sb1", k, &err), 0);
        event_rec_free(k);
        emit(s, "sb2");

        /* Due: the head of sb1's line and sb2's, not sb1's second. */
        int64_t now = time_now_ms() + 1;
        ASSERT_EQ(store_delivery_due(s, now, 10, &ids, &err), 0);
        ASSERT_TRUE(ids[0] && ids[1] && !ids[2]);
        struct delivery_rec *d = NULL, *d2 = NULL;
        struct webhook_rec *wh = NULL;
        char *body = NULL;
        ASSERT_EQ(store_delivery_begin(s, ids[0], now, &d, &wh, &body, &err), 0);
        ASSERT_EQ(d->attempts, 1);
        ASSERT_TRUE(d->attempt_open);
        ASSERT_TRUE(strstr(body, "sandbox.lifecycle.created") != NULL);
        ASSERT_STREQ(wh->secret, "secret-123");
        /* A second begin of the same delivery: it is in flight. */
        ASSERT_EQ(store_delivery_begin(s, ids[0], now, &d2, &wh, &body, &err), -EALREADY);
        cove_err_free(&err);
        char *first = xstrdup(ids[0]);
        strv_free(ids);

        /* While in flight, its line waits: only the other sandbox's delivery is due. */
        ASSERT_EQ(store_delivery_due(s, now, 10, &ids, &err), 0);
        ASSERT_TRUE(ids[0] && !ids[1] && !streq(ids[0], first));
        strv_free(ids);

        /* coved dies here: at start the open attempt is recorded as interrupted, retried. */
        int64_t rec = 0;
        ASSERT_EQ(store_delivery_recover(s, now, &rec, &err), 0);
        ASSERT_EQ(rec, 1);
        ASSERT_EQ(store_delivery_get(s, "team_default", first, &d2, &err), 0);
        ASSERT_STREQ(d2->status, "retrying");
        ASSERT_TRUE(d2->error && strstr(d2->error, "interrupted"));
        ASSERT_TRUE(!d2->attempt_open);
        delivery_rec_free(d2);
        delivery_rec_free(d);
        webhook_rec_free(wh);
        free(body);

        /* Second attempt: delivered; then the next of sb1's line is due. */
        ASSERT_EQ(store_delivery_begin(s, first, now, &d, &wh, &body, &err), 0);
        ASSERT_EQ(d->attempts, 2);
        free(d->status);
        d->status = xstrdup("delivered");
        d->delivered_at = now;
        ASSERT_EQ(store_delivery_finish(s, d, &err), 0);
        delivery_rec_free(d);
        webhook_rec_free(wh);
        free(body);
        ASSERT_EQ(store_delivery_due(s, now, 10, &ids, &err), 0);
        ASSERT_TRUE(ids[0] && ids[1] && !ids[2]);
        strv_free(ids);

        /* Replay: a new pending delivery of the same event. */
        struct delivery_rec *rp = NULL;
        ASSERT_EQ(store_delivery_replay(s, "team_default", first, &rp, &err), 0);
        ASSERT_STREQ(rp->status, "pending");
        ASSERT_EQ(rp->attempts, 0);
        ASSERT_TRUE(!streq(rp->id, first));
        delivery_rec_free(rp);
        ASSERT_EQ(store_delivery_replay(s, "team_x", first, &rp, &err), -ENOENT); /* invisible */
        cove_err_free(&err);

        /* Webhook deleted: its waiting deliveries fail. */
        int64_t waiting = 0;
        ASSERT_EQ(store_webhook_delete(s, "team_default", "whk_a", &err), 0);
        ASSERT_EQ(store_delivery_count_waiting(s, &waiting, &err), 0);
        ASSERT_EQ(waiting, 0);

        /* Prune: everything older than now goes. */
        ASSERT_EQ(store_event_prune(s, time_now_ms() + 1000, &err), 0);
        ASSERT_EQ(count_events(s, "team_default"), 0);
        struct delivery_rec **v = NULL;
        struct delivery_query q = { .team_id = "team_default", .limit = 100 };
        ASSERT_EQ(store_delivery_list(s, &q, &v, &err), 0);
        ASSERT_TRUE(v[0] == NULL);
        delivery_list_free(v);
        free(first);
        store_close(s);
}

static void test_webhook_limit(void)
{
        cleanup_err struct cove_err *err = NULL;
        struct store *s = open_new(NULL);
        for (int i = 0; i < 3; i++) {
                char id[32];
                (void)snprintf(id, sizeof(id), "whk_%d", i);
                struct webhook_rec *w =
                        make_webhook(id, "team_default", "sandbox.lifecycle.paused");
                ASSERT_EQ(store_webhook_insert(s, w, 2, &err), i < 2 ? 0 : -EDQUOT);
                webhook_rec_free(w);
        }
        cove_err_free(&err);
        struct webhook_rec *g = NULL;
        ASSERT_EQ(store_webhook_get(s, "team_x", "whk_0", &g, &err), -ENOENT); /* invisible */
        cove_err_free(&err);
        ASSERT_EQ(store_webhook_get(s, "team_default", "whk_0", &g, &err), 0);
        ASSERT_EQ(json_array_size(g->delays), 1);
        webhook_rec_free(g);
        store_close(s);
}

static void test_keys_and_teams(void)
{
        cleanup_err struct cove_err *err = NULL;
        struct store *s = open_new(NULL);
        struct team_rec *t = NULL, *t2 = NULL;
        struct apikey_rec *k = NULL, *found = NULL;
        char *key = NULL;
        char **teams = NULL;

        ASSERT_EQ(store_team_create(s, "acme", &t, &err), 0);
        ASSERT_TRUE(strncmp(t->id, "team_", 5) == 0 && strlen(t->id) == 21);
        ASSERT_EQ(store_team_create(s, "acme", &t2, &err), -EEXIST);
        cove_err_free(&err);
        ASSERT_EQ(store_apikey_create(s, t->id, "user", "ci", false, &key, &k, &err), 0);
        ASSERT_TRUE(strncmp(key, "cove_", 5) == 0 && strlen(key) == 45);
        ASSERT_STREQ(k->last4, key + 41);
        ASSERT_STREQ(k->name, "ci");
        ASSERT_EQ(store_apikey_lookup(s, key, &found, &err), 0);
        ASSERT_STREQ(found->team_id, t->id);
        apikey_rec_free(found);
        {
                /* E2B's form: e2b_ + 40 lower-case hex (e2b.md §1.3), a key like any other */
                char *ekey = NULL;
                struct apikey_rec *ek = NULL, *efound = NULL;
                ASSERT_EQ(store_apikey_create(s, t->id, "user", "sdk", true, &ekey, &ek, &err), 0);
                ASSERT_TRUE(strncmp(ekey, "e2b_", 4) == 0 && strlen(ekey) == 44);
                ASSERT_EQ(strspn(ekey + 4, "0123456789abcdef"), 40u);
                ASSERT_EQ(store_apikey_lookup(s, ekey, &efound, &err), 0);
                ASSERT_STREQ(efound->id, ek->id);
                apikey_rec_free(efound);
                apikey_rec_free(ek);
                free(ekey);
        }

        ASSERT_EQ(store_apikey_add_team(s, k->id, "team_default", &err), 0);
        ASSERT_EQ(store_apikey_add_team(s, k->id, "team_default", &err), 0); /* idempotent */
        ASSERT_EQ(store_apikey_teams(s, k->id, &teams, &err), 0);
        ASSERT_TRUE(teams[0] && teams[1] && !teams[2]);
        ASSERT_STREQ(teams[0], t->id); /* its own team first */
        ASSERT_STREQ(teams[1], "team_default");
        strv_free(teams);

        struct apikey_rec **v = NULL;
        ASSERT_EQ(store_apikey_list(s, "team_default", &v, &err), 0);
        ASSERT_TRUE(v[0] && !v[1]); /* a member of team_default by the extra membership */
        apikey_list_free(v);

        ASSERT_EQ(store_apikey_revoke(s, k->id, &err), 0);
        ASSERT_EQ(store_apikey_lookup(s, key, &found, &err), -ENOENT); /* at once */
        cove_err_free(&err);
        ASSERT_EQ(store_apikey_get(s, k->id, &found, &err), 0);
        ASSERT_TRUE(found->revoked_at > 0);
        apikey_rec_free(found);
        ASSERT_EQ(store_apikey_revoke(s, "key_nope", &err), -ENOENT);
        cove_err_free(&err);

        free(key);
        apikey_rec_free(k);
        team_rec_free(t);
        store_close(s);
}

static void test_admission(void)
{
        cleanup_err struct cove_err *err = NULL;
        struct store *s = open_new(NULL);
        struct store_quota q = { 0 };
        struct store_quota_breach b = { 0 };
        struct store_usage u;

        q.project[QUOTA_CONCURRENT_SANDBOXES] = 2;
        q.user[QUOTA_MEMORY_MB] = 1024;
        for (int i = 0; i < 3; i++) {
                char id[16];
                (void)snprintf(id, sizeof(id), "sb%d", i);
                struct sandbox_rec *sb = make_sandbox(id, "team_default", "key_a");
                sb->event = make_event("sandbox.lifecycle.created", id, "team_default");
                int r = store_sandbox_insert_admitted(s, sb, &q, &b, &err);
                ASSERT_EQ(r, i < 2 ? 0 : -EDQUOT);
                sandbox_rec_free(sb);
        }
        cove_err_free(&err);
        ASSERT_TRUE(!b.user);
        ASSERT_EQ(b.metric, QUOTA_CONCURRENT_SANDBOXES);
        ASSERT_EQ(b.used, 2);
        ASSERT_EQ(b.limit, 2);
        ASSERT_EQ(count_events(s, "team_default"), 2); /* the refused create wrote nothing */

        /* Other teams are unaffected; the key's memory limit (2 × 512 in use) is. */
        struct sandbox_rec *other = make_sandbox("sbx", "team_x", NULL);
        ASSERT_EQ(store_sandbox_insert_admitted(s, other, &q, &b, &err), 0);
        sandbox_rec_free(other);
        q.project[QUOTA_CONCURRENT_SANDBOXES] = 0;
        struct sandbox_rec *sb = make_sandbox("sb9", "team_default", "key_a");
        ASSERT_EQ(store_sandbox_insert_admitted(s, sb, &q, &b, &err), -EDQUOT);
        cove_err_free(&err);
        ASSERT_TRUE(b.user);
        ASSERT_EQ(b.metric, QUOTA_MEMORY_MB);
        ASSERT_EQ(b.used, 1024);
        sandbox_rec_free(sb);

        /* Node capacity. */
        q = (struct store_quota){ .node_max_live = 3 };
        sb = make_sandbox("sb10", "team_y", NULL);
        ASSERT_EQ(store_sandbox_insert_admitted(s, sb, &q, &b, &err), -EUSERS);
        cove_err_free(&err);
        sandbox_rec_free(sb);

        ASSERT_EQ(store_sandbox_usage(s, "team_default", NULL, &u, &err), 0);
        ASSERT_EQ(u.live, 2);
        ASSERT_EQ(u.cpu, 4);
        ASSERT_EQ(u.memory_mb, 1024);
        ASSERT_EQ(u.disk_mb, 2048);
        ASSERT_EQ(store_sandbox_usage(s, NULL, "key_a", &u, &err), 0);
        ASSERT_EQ(u.live, 2);
        ASSERT_EQ(store_sandbox_usage(s, NULL, NULL, &u, &err), 0);
        ASSERT_EQ(u.live, 3);

        /* Limits as set by the operator. */
        json_t *l = NULL;
        ASSERT_EQ(store_limits_set(s, "project", "team_default", "concurrentSandboxes", 10, &err),
                  0);
        ASSERT_EQ(store_limits_set(s, "project", "team_default", "cpuCount", 4, &err), 0);
        ASSERT_EQ(store_limits_set(s, "project", "team_default", "cpuCount", -1, &err), 0);
        ASSERT_EQ(store_limits_get(s, "project", "team_default", &l, &err), 0);
        ASSERT_EQ(json_object_size(l), 1);
        ASSERT_EQ(json_integer_value(json_object_get(l, "concurrentSandboxes")), 10);
        json_decref(l);
        ASSERT_EQ(store_limits_get(s, "user", "team_default", &l, &err), 0);
        ASSERT_EQ(json_object_size(l), 0);
        json_decref(l);
        store_close(s);
}

static void test_team_samples(void)
{
        cleanup_err struct cove_err *err = NULL;
        struct store *s = open_new(NULL);
        struct team_sample *v = NULL;
        size_t n = 0;
        int64_t t0 = time_now_ms();

        emit(s, "sb1");
        emit(s, "sb2");
        ASSERT_EQ(store_team_sample_all(s, t0 + 10, t0 - 1000, &err), 0);
        ASSERT_EQ(store_team_sample_all(s, t0 + 20, t0 + 10, &err), 0);
        ASSERT_EQ(store_team_samples(s, "team_default", t0, t0 + 100, &v, &n, &err), 0);
        ASSERT_EQ(n, 2);
        ASSERT_EQ(v[0].concurrent, 2);
        ASSERT_EQ(v[0].starts, 2);
        ASSERT_EQ(v[1].starts, 0); /* none since the last sample */
        free(v);
        ASSERT_EQ(store_team_samples_prune(s, t0 + 15, &err), 0);
        ASSERT_EQ(store_team_samples(s, "team_default", 0, t0 + 100, &v, &n, &err), 0);
        ASSERT_EQ(n, 1);
        free(v);
        store_close(s);
}

static void test_log_pages(void)
{
        cleanup_err struct cove_err *err = NULL;
        struct store *s = open_new(NULL);
        struct log_page p = { 0 };

        store_log_set_max(s, 100);
        for (int i = 1; i <= 150; i++) {
                char msg[32];
                (void)snprintf(msg, sizeof(msg), "%s line %d", i % 10 == 0 ? "ERROR" : "ok", i);
                ASSERT_EQ(store_log_append(s, "sb", i % 10 == 0 ? "error" : "info", "system", msg,
                                           &err),
                          0);
        }
        /* Retention: the newest 100, numbered 51…150. */
        struct log_query q = { .sandbox_id = "sb", .limit = 10 };
        ASSERT_EQ(store_log_query(s, &q, &p, &err), 0);
        ASSERT_EQ(p.retained, 100);
        ASSERT_EQ(p.entries[0]->seq, 51);
        ASSERT_TRUE(p.has_more);
        log_list_free(p.entries);

        q = (struct log_query){ .sandbox_id = "sb", .limit = 3, .backward = true, .min_level = 3 };
        ASSERT_EQ(store_log_query(s, &q, &p, &err), 0);
        ASSERT_EQ(p.entries[0]->seq, 150);
        ASSERT_EQ(p.entries[1]->seq, 140);
        ASSERT_EQ(p.entries[2]->seq, 130);
        ASSERT_TRUE(p.entries[3] == NULL && p.has_more);
        log_list_free(p.entries);

        q = (struct log_query){ .sandbox_id = "sb", .limit = 100, .search = "error LINE 14" };
        ASSERT_EQ(store_log_query(s, &q, &p, &err), 0);
        ASSERT_EQ(p.entries[0]->seq, 140);
        ASSERT_TRUE(p.entries[1] == NULL && !p.has_more);
        log_list_free(p.entries);

        q = (struct log_query){ .sandbox_id = "sb", .limit = 5, .cursor = 10 };
        ASSERT_EQ(store_log_query(s, &q, &p, &err), 0);
        ASSERT_EQ(p.entries[0]->seq, 51); /* forward from before the window: its oldest */
        log_list_free(p.entries);
        q = (struct log_query){ .sandbox_id = "sb", .limit = 5, .cursor = 10, .backward = true };
        ASSERT_EQ(store_log_query(s, &q, &p, &err), 0);
        ASSERT_TRUE(p.entries[0] == NULL);
        ASSERT_EQ(p.in_window, 0); /* cursor_window_empty */
        log_list_free(p.entries);

        ASSERT_EQ(store_log_prune_orphans(s, &err), 0); /* no sandbox row "sb": gone */
        q = (struct log_query){ .sandbox_id = "sb", .limit = 5 };
        ASSERT_EQ(store_log_query(s, &q, &p, &err), 0);
        ASSERT_EQ(p.retained, 0);
        log_list_free(p.entries);
        store_close(s);
}

static void cleanup_tmpdir(void)
{
        DIR *d = opendir(tmpdir);
        struct dirent *de;
        if (d) {
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        cleanup_free char *p = xasprintf("%s/%s", tmpdir, de->d_name);
                        (void)unlink(p);
                }
                closedir(d);
        }
        (void)rmdir(tmpdir);
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                printf("1..0 # SKIP mkdtemp failed\n");
                return 77;
        }
        (void)unsetenv("COVE_STORE_FAIL_STEP");
        RUN(test_events_in_transactions);
        RUN(test_event_rollback);
        RUN(test_delivery_order_and_attempts);
        RUN(test_webhook_limit);
        RUN(test_keys_and_teams);
        RUN(test_admission);
        RUN(test_team_samples);
        RUN(test_log_pages);
        cleanup_tmpdir();
        return tap_done();
}
