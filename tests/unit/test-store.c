/* SPDX-License-Identifier: MIT */
/* test-store.c — the SQLite state store against a real database file in a temp dir. */
#include "lib/err.h"
#include "lib/macro.h"
#include "lib/timeutil.h"
#include "store/store.h"
#include "tap.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

static char tmpdir[] = "/tmp/test-store-XXXXXX";
static int db_counter;

/* A fresh database path per test: <tmpdir>/db<N>.sqlite (owned by the caller). */
static char *new_db_path(void)
{
        return xasprintf("%s/db%d.sqlite", tmpdir, ++db_counter);
}

static struct store *open_ok(const char *path)
{
        struct store *s = NULL;
        cleanup_err struct cove_err *err = NULL;
        int r = store_open(path, &s, &err);
        if (r < 0)
                printf("# store_open: %s\n", err ? err->msg : "?");
        ASSERT_EQ(r, 0);
        ASSERT_TRUE(s);
        return s;
}

/* Reads one integer with a raw sqlite3 connection (to check what is really on disk). */
static int64_t raw_int(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t v = -1;
        ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static char *raw_text(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char *v = NULL;
        ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
                v = xstrdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static struct sandbox_rec *make_sandbox(const char *id, const char *team, int64_t started_at)
{
        struct sandbox_rec *sb = xzalloc(sizeof(*sb));
        sb->id = xstrdup(id);
        sb->team_id = xstrdup(team);
        sb->template_id = xstrdup("tpl-base-0001");
        sb->state = SANDBOX_RUNNING;
        sb->access_token = xstrdup("tok");
        sb->started_at = started_at;
        sb->end_at = started_at + 300000;
        sb->cpu_count = 2;
        sb->memory_mb = 512;
        sb->disk_size_mb = 1024;
        return sb;
}

static struct template_rec *make_template(const char *id, const char *name)
{
        struct template_rec *t = xzalloc(sizeof(*t));
        t->id = xstrdup(id);
        t->name = name ? xstrdup(name) : NULL;
        t->team_id = xstrdup("team_default");
        t->cpu_count = 2;
        t->memory_mb = 512;
        t->disk_size_mb = 2048;
        t->ttl_seconds = 300;
        t->envs = json_pack("{s:s}", "LANG", "C.UTF-8");
        t->workdir = xstrdup("/home/user");
        t->layers = json_pack("[s,s]", "/var/lib/cove/l/2", "/var/lib/cove/l/1");
        t->binds = json_pack("[{s:s,s:s,s:b}]", "source", "/a", "target", "/b", "readonly", 1);
        t->build_status = xstrdup("ready");
        t->build_id = xstrdup("bld-1");
        t->created_at = 1000;
        t->updated_at = 2000;
        return t;
}

static void test_open_migrate_reopen(void)
{
        cleanup_free char *path = new_db_path();
        struct stat stbuf;
        cleanup_err struct cove_err *err = NULL;
        char *v = NULL;

        struct store *s = open_ok(path);
        ASSERT_EQ(store_setting_set(s, "node", "n1", &err), 0);
        s = store_close(s);
        ASSERT_TRUE(s == NULL);

        /* Reopen: the migration is not re-applied, the data is still there. */
        s = open_ok(path);
        ASSERT_EQ(store_setting_get(s, "node", &v, &err), 0);
        ASSERT_STREQ(v, "n1");
        free(v);
        ASSERT_EQ(stat(path, &stbuf), 0);
        ASSERT_EQ(stbuf.st_mode & 0777, 0600);
        cleanup_free char *wal = xasprintf("%s-wal", path);
        ASSERT_EQ(stat(wal, &stbuf), 0); /* WAL mode is on */
        ASSERT_EQ(stbuf.st_mode & 0777, 0600);
        store_close(s);

        /* Every migration applied (uid_ranges arrived with version 6, e2b_user with 7). */
        ASSERT_TRUE(raw_int(path, "PRAGMA user_version") >= 7);
        cleanup_free char *jm = raw_text(path, "PRAGMA journal_mode");
        ASSERT_STREQ(jm, "wal");

        /* A database from a newer build is refused. */
        cleanup_free char *path2 = new_db_path();
        sqlite3 *db = NULL;
        ASSERT_EQ(sqlite3_open(path2, &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        s = NULL;
        ASSERT_TRUE(store_open(path2, &s, &err) < 0);
        ASSERT_TRUE(s == NULL);
        ASSERT_TRUE(strstr(err->msg, "newer") != NULL);
}

static void test_uidranges(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        int64_t a, b, c, d, n;
        char **orphans = NULL;

        /* The lowest free index, stable per sandbox, unique across sandboxes. */
        ASSERT_EQ(store_uidrange_acquire(s, "sb-a", 3, &a, &err), 0);
        ASSERT_EQ(store_uidrange_acquire(s, "sb-b", 3, &b, &err), 0);
        ASSERT_EQ(store_uidrange_acquire(s, "sb-a", 3, &d, &err), 0);
        ASSERT_EQ(a, 0);
        ASSERT_EQ(b, 1);
        ASSERT_EQ(d, 0);
        ASSERT_EQ(store_uidrange_acquire(s, "sb-c", 3, &c, &err), 0);
        ASSERT_EQ(c, 2);
        ASSERT_EQ(store_uidrange_acquire(s, "sb-d", 3, &d, &err), -ENOSPC);
        ASSERT_STREQ(err->msg, "all 3 uid ranges are in use");
        cove_err_free(&err);
        /* A released index is the next one handed out; a gap is found. */
        ASSERT_EQ(store_uidrange_release(s, "sb-b", &err), 0);
        ASSERT_EQ(store_uidrange_release(s, "sb-b", &err), 0); /* missing is fine */
        ASSERT_EQ(store_uidrange_get(s, "sb-b", &d, &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(store_uidrange_acquire(s, "sb-d", 3, &d, &err), 0);
        ASSERT_EQ(d, 1);
        ASSERT_EQ(store_uidrange_release(s, "sb-a", &err), 0);
        ASSERT_EQ(store_uidrange_acquire(s, "sb-e", 3, &d, &err), 0);
        ASSERT_EQ(d, 0);
        ASSERT_EQ(store_uidrange_count(s, &n, &err), 0);
        ASSERT_EQ(n, 3);

        /* Recovered on restart; ranges without a sandbox row are orphans. */
        struct sandbox_rec *sb = make_sandbox("sb-c", "team_default", 1000);
        ASSERT_EQ(store_sandbox_insert(s, sb, &err), 0);
        sandbox_rec_free(sb);
        s = store_close(s);
        s = open_ok(path);
        ASSERT_EQ(store_uidrange_get(s, "sb-c", &c, &err), 0);
        ASSERT_EQ(c, 2);
        ASSERT_EQ(store_uidrange_orphans(s, &orphans, &err), 0);
        ASSERT_STREQ(orphans[0], "sb-e");
        ASSERT_STREQ(orphans[1], "sb-d");
        ASSERT_TRUE(orphans[2] == NULL);
        strv_free(orphans);
        store_close(s);
}

static void test_open_bad_path(void)
{
        struct store *s = NULL;
        cleanup_err struct cove_err *err = NULL;
        ASSERT_EQ(store_open("/nonexistent-dir-cove/x.db", &s, &err), -ENOENT);
        ASSERT_TRUE(err && strstr(err->msg, "/nonexistent-dir-cove/x.db"));
}

static void test_team_default(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *name = NULL;

        ASSERT_EQ(store_team_get_name(s, "team_default", &name, &err), -ENOENT);
        ASSERT_STREQ(err->msg, "team 'team_default' not found");
        cove_err_free(&err);
        ASSERT_EQ(store_team_ensure_default(s, &err), 0);
        ASSERT_EQ(store_team_ensure_default(s, &err), 0); /* idempotent */
        ASSERT_EQ(store_team_get_name(s, "team_default", &name, &err), 0);
        ASSERT_STREQ(name, "default");
        store_close(s);
}

static void test_apikeys(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct apikey_rec *k = NULL;
        int64_t n = -1;

        ASSERT_EQ(store_team_ensure_default(s, &err), 0);
        ASSERT_EQ(store_apikey_count(s, &n, &err), 0);
        ASSERT_EQ(n, 0);
        ASSERT_EQ(store_apikey_insert(s, "abc", "team_default", "admin", &err), 0);
        ASSERT_EQ(store_apikey_insert(s, "cove_0123456789wxyz", "team_default", "user", &err), 0);
        ASSERT_EQ(store_apikey_count(s, &n, &err), 0);
        ASSERT_EQ(n, 2);

        ASSERT_EQ(store_apikey_lookup(s, "cove_0123456789wxyz", &k, &err), 0);
        ASSERT_EQ(strncmp(k->id, "key_", 4), 0);
        ASSERT_EQ(strlen(k->id), 20);
        ASSERT_STREQ(k->team_id, "team_default");
        ASSERT_STREQ(k->role, "user");
        ASSERT_STREQ(k->last4, "wxyz");
        ASSERT_TRUE(k->created_at > 0);
        apikey_rec_free(k);
        k = NULL;
        apikey_rec_free(NULL);

        ASSERT_EQ(store_apikey_insert(s, "abc", "team_default", "user", &err), -EEXIST);
        cove_err_free(&err);
        ASSERT_EQ(store_apikey_lookup(s, "nope", &k, &err), -ENOENT);
        ASSERT_TRUE(k == NULL);
        ASSERT_TRUE(strstr(err->msg, "nope") == NULL); /* never echo a key */
        cove_err_free(&err);
        ASSERT_EQ(store_apikey_insert(s, "zzz", "team_missing", "user", &err), -ENOENT);
        cove_err_free(&err);
        store_close(s);

        /* Only SHA-256 hex is on disk. */
        cleanup_free char *h = raw_text(path, "SELECT key_hash FROM api_keys WHERE last4 = 'abc'");
        ASSERT_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        ASSERT_EQ(raw_int(path, "SELECT count(*) FROM api_keys WHERE key_hash LIKE '%wxyz%'"
                                " OR id LIKE '%wxyz%'"),
                  0);
}

static void test_templates(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct template_rec *t = make_template("tpl-base-0001", "base"), *g = NULL;
        struct template_rec *t2 = make_template("tpl-x-0002", NULL);
        struct template_rec **list = NULL;

        t->official = true;
        t->public_ = true;
        ASSERT_EQ(store_template_insert(s, t, &err), 0);
        ASSERT_EQ(store_template_insert(s, t2, &err), 0);
        ASSERT_EQ(store_template_insert(s, t, &err), -EEXIST);
        cove_err_free(&err);

        ASSERT_EQ(store_template_get(s, "tpl-base-0001", &g, &err), 0);
        ASSERT_STREQ(g->id, "tpl-base-0001");
        ASSERT_STREQ(g->name, "base");
        ASSERT_STREQ(g->team_id, "team_default");
        ASSERT_TRUE(g->official && g->public_);
        ASSERT_EQ(g->cpu_count, 2);
        ASSERT_EQ(g->memory_mb, 512);
        ASSERT_EQ(g->disk_size_mb, 2048);
        ASSERT_EQ(g->ttl_seconds, 300);
        ASSERT_TRUE(json_equal(g->envs, t->envs));
        ASSERT_TRUE(json_equal(g->layers, t->layers));
        ASSERT_TRUE(json_equal(g->binds, t->binds));
        ASSERT_STREQ(g->workdir, "/home/user");
        ASSERT_TRUE(g->start_cmd == NULL && g->ready_cmd == NULL);
        ASSERT_STREQ(g->build_status, "ready");
        ASSERT_STREQ(g->build_id, "bld-1");
        ASSERT_EQ(g->created_at, 1000);
        ASSERT_EQ(g->updated_at, 2000);
        template_rec_free(g);
        g = NULL;

        ASSERT_EQ(store_template_resolve(s, "base", &g, &err), 0);
        ASSERT_STREQ(g->id, "tpl-base-0001");
        template_rec_free(g);
        ASSERT_EQ(store_template_resolve(s, "tpl-x-0002", &g, &err), 0);
        ASSERT_TRUE(g->name == NULL);
        ASSERT_TRUE(json_is_object(g->envs));
        template_rec_free(g);
        g = NULL;
        ASSERT_EQ(store_template_resolve(s, "nosuch", &g, &err), -ENOENT);
        ASSERT_STREQ(err->msg, "template 'nosuch' not found");
        cove_err_free(&err);
        ASSERT_EQ(store_template_get(s, "base", &g, &err), -ENOENT); /* get is by ID only */
        cove_err_free(&err);

        /* An ID match wins over a name match. */
        struct template_rec *t3 = make_template("tpl-y-0003", "tpl-x-0002");
        ASSERT_EQ(store_template_insert(s, t3, &err), 0);
        ASSERT_EQ(store_template_resolve(s, "tpl-x-0002", &g, &err), 0);
        ASSERT_STREQ(g->id, "tpl-x-0002");
        template_rec_free(g);

        /* Defaults for NULL JSON. */
        json_decref(t3->envs);
        json_decref(t3->layers);
        t3->envs = t3->layers = NULL;
        free(t3->build_status);
        t3->build_status = xstrdup("error");
        free(t3->start_cmd);
        t3->start_cmd = xstrdup("python app.py");
        ASSERT_EQ(store_template_update(s, t3, &err), 0);
        ASSERT_EQ(store_template_get(s, "tpl-y-0003", &g, &err), 0);
        ASSERT_TRUE(json_is_object(g->envs) && json_object_size(g->envs) == 0);
        ASSERT_TRUE(json_is_array(g->layers) && json_array_size(g->layers) == 0);
        ASSERT_STREQ(g->start_cmd, "python app.py");
        template_rec_free(g);

        ASSERT_EQ(store_template_list(s, NULL, &list, &err), 0);
        ASSERT_TRUE(list[0] && list[1] && list[2] && !list[3]);
        template_list_free(list);
        ASSERT_EQ(store_template_list(s, "team_other", &list, &err), 0);
        ASSERT_TRUE(list[0] == NULL);
        template_list_free(list);

        ASSERT_EQ(store_template_delete(s, "tpl-y-0003", &err), 0);
        ASSERT_EQ(store_template_delete(s, "tpl-y-0003", &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(store_template_update(s, t3, &err), -ENOENT);
        cove_err_free(&err);

        template_rec_free(t);
        template_rec_free(t2);
        template_rec_free(t3);
        template_rec_free(NULL);
        store_close(s);
}

static void test_sandboxes(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *a = make_sandbox("sb-a", "team_default", 3000);
        struct sandbox_rec *b = make_sandbox("sb-b", "team_default", 1000);
        struct sandbox_rec *c = make_sandbox("sb-c", "team_other", 3000);
        struct sandbox_rec *g = NULL, **list = NULL;

        ASSERT_EQ(store_sandbox_insert(s, a, &err), 0);
        ASSERT_EQ(store_sandbox_insert(s, b, &err), 0);
        ASSERT_EQ(store_sandbox_insert(s, c, &err), 0);
        ASSERT_TRUE(a->created_seq > 0);
        ASSERT_TRUE(b->created_seq > a->created_seq);
        ASSERT_TRUE(c->created_seq > b->created_seq);
        ASSERT_EQ(store_sandbox_insert(s, a, &err), -EEXIST);
        ASSERT_STREQ(err->msg, "sandbox 'sb-a' already exists");
        cove_err_free(&err);

        ASSERT_EQ(store_sandbox_get(s, "sb-a", &g, &err), 0);
        ASSERT_STREQ(g->id, "sb-a");
        ASSERT_STREQ(g->team_id, "team_default");
        ASSERT_STREQ(g->template_id, "tpl-base-0001");
        ASSERT_TRUE(g->alias == NULL && g->workdir == NULL && g->heartbeat_status == NULL);
        ASSERT_EQ(g->state, SANDBOX_RUNNING);
        ASSERT_STREQ(g->access_token, "tok");
        ASSERT_EQ(g->created_seq, a->created_seq);
        ASSERT_EQ(g->started_at, 3000);
        ASSERT_EQ(g->end_at, 303000);
        ASSERT_EQ(g->cpu_count, 2);
        ASSERT_EQ(g->memory_mb, 512);
        ASSERT_EQ(g->disk_size_mb, 1024);
        ASSERT_TRUE(!g->auto_pause && !g->auto_resume);
        sandbox_rec_free(g);
        g = NULL;

        /* Update every mutable column. */
        a->state = SANDBOX_PAUSED;
        a->alias = xstrdup("base");
        a->workdir = xstrdup("/w");
        a->heartbeat_status = xstrdup("ok");
        a->activated_at = 11;
        a->stopped_at = 12;
        a->paused_remaining_ms = 13;
        a->auto_pause = a->auto_resume = true;
        a->init_pid = 4242;
        a->init_starttime = 99;
        a->exec_n = 3;
        a->heartbeat_at = 14;
        a->end_at = 15;
        int64_t seq = a->created_seq;
        a->created_seq = 777; /* ignored: the store owns it */
        ASSERT_EQ(store_sandbox_update(s, a, &err), 0);
        ASSERT_EQ(store_sandbox_get(s, "sb-a", &g, &err), 0);
        ASSERT_EQ(g->state, SANDBOX_PAUSED);
        ASSERT_STREQ(g->alias, "base");
        ASSERT_STREQ(g->workdir, "/w");
        ASSERT_STREQ(g->heartbeat_status, "ok");
        ASSERT_EQ(g->activated_at, 11);
        ASSERT_EQ(g->stopped_at, 12);
        ASSERT_EQ(g->paused_remaining_ms, 13);
        ASSERT_TRUE(g->auto_pause && g->auto_resume);
        ASSERT_EQ(g->init_pid, 4242);
        ASSERT_EQ(g->init_starttime, 99);
        ASSERT_EQ(g->exec_n, 3);
        ASSERT_EQ(g->heartbeat_at, 14);
        ASSERT_EQ(g->end_at, 15);
        ASSERT_EQ(g->created_seq, seq);
        sandbox_rec_free(g);
        g = NULL;

        /* List: started_at, then id; team filter. */
        ASSERT_EQ(store_sandbox_list(s, NULL, &list, &err), 0);
        ASSERT_TRUE(list[0] && list[1] && list[2] && !list[3]);
        ASSERT_STREQ(list[0]->id, "sb-b");
        ASSERT_STREQ(list[1]->id, "sb-a");
        ASSERT_STREQ(list[2]->id, "sb-c");
        sandbox_list_free(list);
        ASSERT_EQ(store_sandbox_list(s, "team_other", &list, &err), 0);
        ASSERT_TRUE(list[0] && !list[1]);
        ASSERT_STREQ(list[0]->id, "sb-c");
        sandbox_list_free(list);
        ASSERT_EQ(store_sandbox_list(s, "team_none", &list, &err), 0);
        ASSERT_TRUE(list[0] == NULL);
        sandbox_list_free(list);
        sandbox_list_free(NULL);

        /* Delete; created_seq never repeats. */
        int64_t max_seq = c->created_seq;
        ASSERT_EQ(store_sandbox_delete(s, "sb-c", &err), 0);
        ASSERT_EQ(store_sandbox_get(s, "sb-c", &g, &err), -ENOENT);
        ASSERT_STREQ(err->msg, "sandbox 'sb-c' not found");
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_delete(s, "sb-c", &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_update(s, c, &err), -ENOENT);
        ASSERT_STREQ(err->msg, "sandbox 'sb-c' not found");
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_insert(s, c, &err), 0);
        ASSERT_TRUE(c->created_seq > max_seq);

        /* Missing NOT NULL column → -EINVAL. */
        struct sandbox_rec *bad = make_sandbox("sb-bad", "team_default", 1);
        bad->state = _SANDBOX_STATE_INVALID; /* no string: NULL in a NOT NULL column */
        ASSERT_EQ(store_sandbox_insert(s, bad, &err), -EINVAL);
        cove_err_free(&err);
        sandbox_rec_free(bad);

        sandbox_rec_free(a);
        sandbox_rec_free(b);
        sandbox_rec_free(c);
        sandbox_rec_free(NULL);
        store_close(s);
}

static void test_sandbox_json(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *a = make_sandbox("sb-j", "team_default", 1), *g = NULL;

        /* All JSON NULL: defaults on read, diagnostic stays NULL. */
        ASSERT_EQ(store_sandbox_insert(s, a, &err), 0);
        ASSERT_EQ(store_sandbox_get(s, "sb-j", &g, &err), 0);
        ASSERT_TRUE(json_is_object(g->metadata) && json_object_size(g->metadata) == 0);
        ASSERT_TRUE(json_is_object(g->env_vars) && json_object_size(g->env_vars) == 0);
        json_t *net = json_pack("{s:b,s:b,s:[],s:[]}", "allowPublicTraffic", 1,
                                "allowInternetAccess", 1, "allowOut", "denyOut");
        ASSERT_TRUE(json_equal(g->network, net));
        json_decref(net);
        ASSERT_TRUE(json_is_array(g->timeline) && json_array_size(g->timeline) == 0);
        ASSERT_TRUE(json_is_array(g->volume_mounts) && json_array_size(g->volume_mounts) == 0);
        ASSERT_TRUE(g->diagnostic == NULL);
        sandbox_rec_free(g);

        /* Values round-trip (the insert filled a's JSON fields with the defaults it read as). */
        json_decref(a->metadata);
        json_decref(a->env_vars);
        json_decref(a->network);
        json_decref(a->timeline);
        json_decref(a->volume_mounts);
        a->metadata = json_pack("{s:s,s:s}", "app", "agent", "ünï", "cødé \"q\"");
        a->env_vars = json_pack("{s:s}", "A", "1");
        a->network =
                json_pack("{s:b,s:b,s:[s],s:[s]}", "allowPublicTraffic", 0, "allowInternetAccess",
                          0, "allowOut", "10.0.0.0/8", "denyOut", "1.2.3.4/32");
        a->timeline = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]", "phase", "created", "status",
                                "completed", "timestamp", "2026-01-01T00:00:00.000Z", "phase",
                                "runtime_ready", "status", "failed", "timestamp",
                                "2026-01-01T00:00:01.000Z", "message", "boom");
        a->diagnostic = json_pack("{s:s,s:s}", "reason", "init_died", "message", "exit 1");
        a->volume_mounts = json_pack("[{s:s,s:s}]", "name", "v", "path", "/data");
        ASSERT_EQ(store_sandbox_update(s, a, &err), 0);
        ASSERT_EQ(store_sandbox_get(s, "sb-j", &g, &err), 0);
        ASSERT_TRUE(json_equal(g->metadata, a->metadata));
        ASSERT_TRUE(json_equal(g->env_vars, a->env_vars));
        ASSERT_TRUE(json_equal(g->network, a->network));
        ASSERT_TRUE(json_equal(g->timeline, a->timeline));
        ASSERT_TRUE(json_equal(g->diagnostic, a->diagnostic));
        ASSERT_TRUE(json_equal(g->volume_mounts, a->volume_mounts));
        sandbox_rec_free(g);

        /* Compact JSON text on disk; diagnostic back to SQL NULL when cleared. */
        json_decref(a->diagnostic);
        a->diagnostic = NULL;
        ASSERT_EQ(store_sandbox_update(s, a, &err), 0);
        ASSERT_EQ(store_sandbox_get(s, "sb-j", &g, &err), 0);
        ASSERT_TRUE(g->diagnostic == NULL);
        sandbox_rec_free(g);
        store_close(s);
        ASSERT_EQ(raw_int(path, "SELECT diagnostic IS NULL FROM sandboxes WHERE id = 'sb-j'"), 1);
        cleanup_free char *envs =
                raw_text(path, "SELECT env_vars FROM sandboxes WHERE id = 'sb-j'");
        ASSERT_STREQ(envs, "{\"A\":\"1\"}");
        sandbox_rec_free(a);
}

static void test_logs(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct log_rec **v = NULL;
        size_t n;

        ASSERT_EQ(store_log_list(s, "sb-1", &v, &err), 0);
        ASSERT_TRUE(v[0] == NULL);
        log_list_free(v);

        ASSERT_EQ(store_log_append(s, "sb-2", "warn", "agent", "other sandbox", &err), 0);

        int64_t t0 = time_mono_ms();
        for (int i = 1; i <= 10005; i++) {
                char msg[32];
                (void)snprintf(msg, sizeof(msg), "line %d", i);
                int r = store_log_append(s, "sb-1", i % 2 ? "info" : "error",
                                         i % 3 ? "system" : "start_cmd", msg, &err);
                if (r < 0)
                        printf("# append %d: %s\n", i, err->msg);
                ASSERT_EQ(r, 0);
        }
        int64_t dt = time_mono_ms() - t0;
        printf("# 10005 appends: %" PRId64 " ms\n", dt);
        /* Under valgrind (which preloads vgpreload_*.so) everything is ~10x slower. */
        const char *pre = getenv("LD_PRELOAD");
        ASSERT_TRUE(dt < (pre && strstr(pre, "vgpreload") ? 30000 : 3000));

        ASSERT_EQ(store_log_list(s, "sb-1", &v, &err), 0);
        for (n = 0; v[n]; n++)
                ;
        ASSERT_EQ(n, 10000);
        ASSERT_EQ(v[0]->seq, 6);
        ASSERT_STREQ(v[0]->message, "line 6");
        ASSERT_STREQ(v[0]->level, "error");
        ASSERT_STREQ(json_string_value(json_object_get(v[0]->fields, "source")), "start_cmd");
        ASSERT_EQ(json_object_size(v[0]->fields), 1);
        ASSERT_EQ(v[9999]->seq, 10005);
        ASSERT_STREQ(v[9999]->message, "line 10005");
        ASSERT_STREQ(v[9999]->level, "info");
        ASSERT_STREQ(json_string_value(json_object_get(v[9999]->fields, "source")), "start_cmd");
        ASSERT_STREQ(json_string_value(json_object_get(v[9998]->fields, "source")), "system");
        ASSERT_TRUE(v[9999]->ts >= v[0]->ts && v[0]->ts > 0);
        for (size_t i = 1; i < n; i++)
                ASSERT_EQ(v[i]->seq, v[i - 1]->seq + 1);
        log_list_free(v);

        ASSERT_EQ(store_log_list(s, "sb-2", &v, &err), 0);
        ASSERT_TRUE(v[0] && !v[1]);
        ASSERT_EQ(v[0]->seq, 1);
        ASSERT_STREQ(v[0]->level, "warn");
        log_list_free(v);

        ASSERT_EQ(store_log_delete_all(s, "sb-1", &err), 0);
        ASSERT_EQ(store_log_list(s, "sb-1", &v, &err), 0);
        ASSERT_TRUE(v[0] == NULL);
        log_list_free(v);
        /* Numbering restarts for a new sandbox with a reused ID (sandbox IDs never repeat). */
        ASSERT_EQ(store_log_append(s, "sb-1", "info", "system", "again", &err), 0);
        ASSERT_EQ(store_log_list(s, "sb-1", &v, &err), 0);
        ASSERT_EQ(v[0]->seq, 1);
        log_list_free(v);
        log_list_free(NULL);
        store_close(s);
}

static void test_settings(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        char *v = NULL;

        ASSERT_EQ(store_setting_get(s, "node_name", &v, &err), -ENOENT);
        ASSERT_STREQ(err->msg, "setting 'node_name' not found");
        cove_err_free(&err);
        ASSERT_EQ(store_setting_set(s, "node_name", "a", &err), 0);
        ASSERT_EQ(store_setting_set(s, "node_name", "b", &err), 0);
        ASSERT_EQ(store_setting_get(s, "node_name", &v, &err), 0);
        ASSERT_STREQ(v, "b");
        free(v);
        store_close(s);
}

static void test_failure_injection(void)
{
        cleanup_free char *path = new_db_path();
        cleanup_err struct cove_err *err = NULL;
        struct log_rec **v = NULL;
        char *val = NULL;

        /* Step 1 fails: the first call after open. */
        ASSERT_EQ(setenv("COVE_STORE_FAIL_STEP", "1", 1), 0);
        struct store *s = open_ok(path);
        ASSERT_EQ(unsetenv("COVE_STORE_FAIL_STEP"), 0);
        ASSERT_EQ(store_setting_set(s, "k", "v", &err), -EIO);
        ASSERT_TRUE(strstr(err->msg, "set setting 'k'") && strstr(err->msg, "injected"));
        cove_err_free(&err);
        ASSERT_EQ(store_setting_set(s, "k", "v", &err), 0); /* only the N-th step fails */
        ASSERT_EQ(store_setting_get(s, "k", &val, &err), 0);
        ASSERT_STREQ(val, "v");
        free(val);
        store_close(s);

        /* Step 3 of a log append (BEGIN, SELECT max, INSERT) fails: rolled back, store usable. */
        ASSERT_EQ(setenv("COVE_STORE_FAIL_STEP", "3", 1), 0);
        s = open_ok(path);
        ASSERT_EQ(unsetenv("COVE_STORE_FAIL_STEP"), 0);
        ASSERT_EQ(store_log_append(s, "sb", "info", "system", "lost", &err), -EIO);
        cove_err_free(&err);
        ASSERT_EQ(store_log_append(s, "sb", "info", "system", "kept", &err), 0);
        ASSERT_EQ(store_log_list(s, "sb", &v, &err), 0);
        ASSERT_TRUE(v[0] && !v[1]);
        ASSERT_EQ(v[0]->seq, 1);
        ASSERT_STREQ(v[0]->message, "kept");
        log_list_free(v);

        /* Step 4 of a fresh append is the COMMIT: it fails and the entry is not kept. */
        store_close(s);
        ASSERT_EQ(setenv("COVE_STORE_FAIL_STEP", "4", 1), 0);
        s = open_ok(path);
        ASSERT_EQ(unsetenv("COVE_STORE_FAIL_STEP"), 0);
        ASSERT_EQ(store_log_append(s, "sb", "info", "system", "lost", &err), -EIO);
        ASSERT_TRUE(strstr(err->msg, "COMMIT") != NULL);
        cove_err_free(&err);
        ASSERT_EQ(store_log_list(s, "sb", &v, &err), 0);
        ASSERT_TRUE(v[0] && !v[1]);
        log_list_free(v);
        store_close(s);

        /* Failing insert (step 2), then a list failing after its rows (step 3) frees them. */
        ASSERT_EQ(setenv("COVE_STORE_FAIL_STEP", "2", 1), 0);
        s = open_ok(path);
        ASSERT_EQ(unsetenv("COVE_STORE_FAIL_STEP"), 0);
        struct sandbox_rec *a = make_sandbox("sb-f1", "t", 1), *b = make_sandbox("sb-f2", "t", 2);
        struct sandbox_rec **list = NULL;
        ASSERT_EQ(store_sandbox_insert(s, a, &err), 0);    /* step 1 */
        ASSERT_EQ(store_sandbox_insert(s, b, &err), -EIO); /* step 2 */
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_insert(s, b, &err), 0);
        store_close(s);
        ASSERT_EQ(setenv("COVE_STORE_FAIL_STEP", "3", 1), 0);
        s = open_ok(path);
        ASSERT_EQ(unsetenv("COVE_STORE_FAIL_STEP"), 0);
        ASSERT_EQ(store_sandbox_list(s, NULL, &list, &err), -EIO); /* 2 rows, then step 3 */
        ASSERT_TRUE(list == NULL);
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_list(s, NULL, &list, &err), 0);
        ASSERT_TRUE(list[0] && list[1] && !list[2]);
        sandbox_list_free(list);
        sandbox_rec_free(a);
        sandbox_rec_free(b);
        store_close(s);
}

struct thread_arg {
        struct store *s;
        int n;
        int failures;
};

static void *thread_main(void *p)
{
        struct thread_arg *a = p;
        for (int i = 0; i < 200; i++) {
                cleanup_err struct cove_err *err = NULL;
                char id[64];
                (void)snprintf(id, sizeof(id), "sb-t%d-%d", a->n, i);
                struct sandbox_rec *sb = make_sandbox(id, "team_default", i), *g = NULL;
                if (store_sandbox_insert(a->s, sb, &err) < 0 ||
                    store_sandbox_get(a->s, id, &g, &err) < 0 || !streq(g->id, id) ||
                    store_log_append(a->s, "shared", "info", "system", id, &err) < 0)
                        a->failures++;
                sandbox_rec_free(sb);
                sandbox_rec_free(g);
        }
        return NULL;
}

static void test_threads(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct thread_arg args[4];
        pthread_t th[4];
        struct sandbox_rec **list = NULL;
        struct log_rec **v = NULL;
        size_t n;

        for (int i = 0; i < 4; i++) {
                args[i] = (struct thread_arg){ .s = s, .n = i };
                ASSERT_EQ(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                ASSERT_EQ(pthread_join(th[i], NULL), 0);
                ASSERT_EQ(args[i].failures, 0);
        }
        ASSERT_EQ(store_sandbox_list(s, NULL, &list, &err), 0);
        for (n = 0; list[n]; n++)
                ;
        ASSERT_EQ(n, 800);
        sandbox_list_free(list);
        ASSERT_EQ(store_log_list(s, "shared", &v, &err), 0);
        for (n = 0; v[n]; n++)
                ASSERT_EQ(v[n]->seq, (int64_t)n + 1);
        ASSERT_EQ(n, 800);
        log_list_free(v);
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

/* The manager's primitives: one-step read-modify-write, capped insert, deadlines. */
static int set_paused(struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)err;
        if (sb->state != SANDBOX_RUNNING)
                return 0;
        sb->state = SANDBOX_PAUSED;
        sb->deadline_at = *(int64_t *)ud;
        return 1;
}

static int refuse(struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)ud;
        sb->state = SANDBOX_STOPPED; /* never written */
        return cove_err_set(err, EBUSY, "no");
}

static void test_sandbox_modify_and_deadlines(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *a = make_sandbox("sb-a", "team_default", 1);
        struct sandbox_rec *b = make_sandbox("sb-b", "team_default", 2);
        struct sandbox_rec *c = make_sandbox("sb-c", "team_default", 3);
        struct sandbox_rec *g = NULL;
        int64_t next = -1, dl = 500;
        char **ids = NULL;

        a->deadline_at = 300;
        b->deadline_at = 100;
        ASSERT_EQ(store_sandbox_insert_capped(s, a, 2, &err), 0);
        ASSERT_EQ(store_sandbox_insert_capped(s, b, 2, &err), 0);
        ASSERT_EQ(store_sandbox_insert_capped(s, c, 2, &err), -EUSERS);
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_insert_capped(s, c, 0, &err), 0);

        ASSERT_EQ(store_sandbox_next_deadline(s, &next, &err), 0);
        ASSERT_EQ(next, 100);
        ASSERT_EQ(store_sandbox_due(s, 299, 10, &ids, &err), 0);
        ASSERT_TRUE(ids[0] && streq(ids[0], "sb-b") && !ids[1]);
        strv_free(ids);
        ASSERT_EQ(store_sandbox_due(s, 1000, 1, &ids, &err), 0);
        ASSERT_TRUE(ids[0] && streq(ids[0], "sb-b") && !ids[1]);
        strv_free(ids);

        ASSERT_EQ(store_sandbox_modify(s, "sb-b", set_paused, &dl, &g, &err), 0);
        ASSERT_EQ(g->state, SANDBOX_PAUSED);
        sandbox_rec_free(g);
        g = NULL;
        ASSERT_EQ(store_sandbox_modify(s, "sb-b", refuse, NULL, NULL, &err), -EBUSY);
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_get(s, "sb-b", &g, &err), 0);
        ASSERT_EQ(g->state, SANDBOX_PAUSED);
        ASSERT_EQ(g->deadline_at, 500);
        sandbox_rec_free(g);
        ASSERT_EQ(store_sandbox_modify(s, "sb-x", set_paused, &dl, NULL, &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(store_sandbox_next_deadline(s, &next, &err), 0);
        ASSERT_EQ(next, 300);

        int64_t counts[_SANDBOX_STATE_MAX];
        ASSERT_EQ(store_sandbox_count_states(s, counts, &err), 0);
        ASSERT_EQ(counts[SANDBOX_RUNNING], 2);
        ASSERT_EQ(counts[SANDBOX_PAUSED], 1);
        ASSERT_EQ(counts[SANDBOX_STOPPED], 0);

        sandbox_rec_free(a);
        sandbox_rec_free(b);
        sandbox_rec_free(c);
        store_close(s);
}

/* The /v1 columns round-trip; a retired sandbox leaves a tombstone that reads back, lists by
 * team and goes at the purge. */
/* The write hook (the manager's row cache) sees every write of a sandbox row, by every path,
 * with a count that a later read carries as read_seq; a read before a write carries less. */
struct hook_log {
        char ids[16][32];
        uint64_t seqs[16];
        size_t n;
};

static void hook_record(void *ud, const char *id, uint64_t seq)
{
        struct hook_log *l = ud;
        if (l->n < 16) {
                (void)snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", id);
                l->seqs[l->n++] = seq;
        }
}

static int modify_touch(struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)ud;
        (void)err;
        sb->heartbeat_at++;
        return 1;
}

/* sandbox_rec_dup() copies every owned field (the manager's row cache hands out such copies
 * and frees its own: a field left out would be shared, then used after free). */
static void test_sandbox_rec_dup_copies_every_field(void)
{
        struct sandbox_rec *a = make_sandbox("dup-a", "team_default", 1000);

        a->alias = xstrdup("alias");
        a->workdir = xstrdup("/home/user");
        a->heartbeat_status = xstrdup("ok");
        a->size = xstrdup("performance-2");
        a->key_id = xstrdup("key");
        a->e2b_user = xstrdup("builder");
        a->metadata = json_pack("{s:s}", "k", "v");
        a->env_vars = json_pack("{s:s}", "A", "1");
        a->network = json_object();
        a->timeline = json_array();
        a->diagnostic = json_object();
        a->volume_mounts = json_array();
        a->egress = json_object();
        struct sandbox_rec *c = sandbox_rec_dup(a);
        const char *av[] = { a->id,           a->team_id, a->template_id,      a->alias,
                             a->access_token, a->workdir, a->heartbeat_status, a->size,
                             a->key_id,       a->e2b_user };
        const char *cv[] = { c->id,           c->team_id, c->template_id,      c->alias,
                             c->access_token, c->workdir, c->heartbeat_status, c->size,
                             c->key_id,       c->e2b_user };
        for (size_t i = 0; i < ARRAY_SIZE(av); i++) {
                ASSERT_TRUE(cv[i] && cv[i] != av[i]);
                ASSERT_STREQ(cv[i], av[i]);
        }
        ASSERT_TRUE(c->metadata != a->metadata && c->env_vars != a->env_vars &&
                    c->network != a->network && c->timeline != a->timeline &&
                    c->diagnostic != a->diagnostic && c->volume_mounts != a->volume_mounts &&
                    c->egress != a->egress);
        sandbox_rec_free(a);
        ASSERT_STREQ(c->e2b_user, "builder"); /* still there after the original went */
        sandbox_rec_free(c);
}

static void test_sandbox_write_hook(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct hook_log log = { 0 };
        struct sandbox_rec *a = make_sandbox("hook-a", "team_default", 1000);
        struct sandbox_rec *b = make_sandbox("hook-b", "team_default", 1000);
        struct sandbox_rec *g = NULL, *h = NULL;

        store_set_sandbox_write_hook(s, hook_record, &log);
        ASSERT_EQ(store_sandbox_insert(s, a, &err), 0);
        ASSERT_EQ(store_sandbox_insert(s, b, &err), 0);
        ASSERT_EQ(log.n, 2u);
        ASSERT_STREQ(log.ids[0], "hook-a");
        ASSERT_TRUE(log.seqs[1] > log.seqs[0]);

        ASSERT_EQ(store_sandbox_get(s, "hook-a", &g, &err), 0);
        ASSERT_EQ(g->read_seq, log.seqs[1]);
        h = sandbox_rec_dup(g); /* a deep copy: equal, nothing shared */
        ASSERT_STREQ(h->id, g->id);
        ASSERT_TRUE(h->id != g->id && h->access_token != g->access_token);
        ASSERT_TRUE(h->metadata != g->metadata || !g->metadata);
        ASSERT_TRUE(!g->metadata || json_equal(h->metadata, g->metadata));
        ASSERT_EQ(h->read_seq, g->read_seq);
        sandbox_rec_free(h);

        /* update, modify, delete with an event, retire: each one is seen, in order */
        g->state = SANDBOX_PAUSED;
        ASSERT_EQ(store_sandbox_update(s, g, &err), 0);
        ASSERT_EQ(store_sandbox_modify(s, "hook-a", modify_touch, NULL, NULL, &err), 0);
        ASSERT_EQ(store_sandbox_delete_event(s, "hook-b", NULL, &err), 0);
        ASSERT_EQ(store_sandbox_retire(s, "hook-a", 5000, 0, NULL, &err), 0);
        ASSERT_EQ(log.n, 6u);
        ASSERT_STREQ(log.ids[2], "hook-a");
        ASSERT_STREQ(log.ids[3], "hook-a");
        ASSERT_STREQ(log.ids[4], "hook-b");
        ASSERT_STREQ(log.ids[5], "hook-a");
        for (size_t i = 1; i < log.n; i++)
                ASSERT_TRUE(log.seqs[i] > log.seqs[i - 1]);
        /* The row read before those writes is older than every one of them. */
        ASSERT_TRUE(g->read_seq < log.seqs[2]);
        sandbox_rec_free(g);

        /* A failed write (no such row) is no write. */
        ASSERT_EQ(store_sandbox_delete(s, "hook-a", &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(log.n, 6u);

        store_set_sandbox_write_hook(s, NULL, NULL);
        sandbox_rec_free(a);
        sandbox_rec_free(b);
        store_close(s);
}

static void test_v1_columns_and_tombstones(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *sb = make_sandbox("tomb00000000000000a1", "team_a", 1000);
        sb->size = xstrdup("shared-cpu-2x");
        sb->timeout_ms = 90000;
        sb->idle_timeout_ms = 2000;
        sb->last_active_at = 1500;
        sb->updated_at = 1600;
        sb->auto_pause = true;
        sb->metadata = json_pack("{s:s}", "k", "v");
        sb->egress = json_pack("{s:s, s:[s]}", "mode", "allow_all", "deny_cidrs", "10.0.0.0/8");
        sb->volume_mounts = json_pack("[{s:s, s:s}]", "name", "data", "path", "/data");
        sb->e2b_user = xstrdup("app");
        ASSERT_EQ(store_sandbox_insert(s, sb, &err), 0);
        struct sandbox_rec *got = NULL;
        ASSERT_EQ(store_sandbox_get(s, sb->id, &got, &err), 0);
        ASSERT_STREQ(got->e2b_user, "app");
        ASSERT_STREQ(got->size, "shared-cpu-2x");
        ASSERT_EQ(got->timeout_ms, 90000);
        ASSERT_EQ(got->idle_timeout_ms, 2000);
        ASSERT_EQ(got->last_active_at, 1500);
        ASSERT_EQ(got->updated_at, 1600);
        ASSERT_TRUE(json_equal(got->egress, sb->egress));
        ASSERT_EQ(got->destroyed_at, 0);
        sandbox_rec_free(got);

        /* No tombstone while the row lives. */
        got = NULL;
        ASSERT_EQ(store_tombstone_get(s, sb->id, &got, &err), -ENOENT);
        cove_err_free(&err);

        ASSERT_EQ(store_sandbox_retire(s, sb->id, 5000, 0, NULL, &err), 0);
        ASSERT_EQ(store_sandbox_get(s, sb->id, &got, &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(store_tombstone_get(s, sb->id, &got, &err), 0);
        ASSERT_STREQ(got->team_id, "team_a");
        ASSERT_EQ(got->destroyed_at, 5000);
        ASSERT_EQ(got->state, SANDBOX_STOPPED);
        ASSERT_STREQ(got->size, "shared-cpu-2x");
        ASSERT_EQ(got->idle_timeout_ms, 2000);
        ASSERT_TRUE(got->auto_pause);
        ASSERT_EQ(got->started_at, 1000);
        ASSERT_STREQ(json_string_value(json_object_get(got->metadata, "k")), "v");
        ASSERT_TRUE(json_equal(got->egress, sb->egress));
        ASSERT_EQ(json_array_size(got->volume_mounts), 1u);
        sandbox_rec_free(got);
        /* Retiring again: the row is gone. */
        ASSERT_EQ(store_sandbox_retire(s, sb->id, 6000, 0, NULL, &err), -ENOENT);
        cove_err_free(&err);

        struct sandbox_rec *other = make_sandbox("tomb00000000000000b1", "team_b", 2000);
        ASSERT_EQ(store_sandbox_insert(s, other, &err), 0);
        ASSERT_EQ(store_sandbox_retire(s, other->id, 7000, 0, NULL, &err), 0);
        struct sandbox_rec **v = NULL;
        ASSERT_EQ(store_tombstone_list(s, "team_a", 0, &v, &err), 0);
        ASSERT_TRUE(v[0] && !v[1]);
        ASSERT_STREQ(v[0]->id, sb->id);
        sandbox_list_free(v);
        ASSERT_EQ(store_tombstone_list(s, NULL, 0, &v, &err), 0);
        ASSERT_TRUE(v[0] && v[1] && !v[2]);
        ASSERT_STREQ(v[0]->id, other->id); /* newest first */
        sandbox_list_free(v);
        ASSERT_EQ(store_tombstone_list(s, NULL, 6000, &v, &err), 0);
        ASSERT_TRUE(v[0] && !v[1]);
        sandbox_list_free(v);

        /* A later retire purges tombstones older than its cutoff. */
        struct sandbox_rec *third = make_sandbox("tomb00000000000000c1", "team_a", 3000);
        ASSERT_EQ(store_sandbox_insert(s, third, &err), 0);
        ASSERT_EQ(store_sandbox_retire(s, third->id, 9000, 6000, NULL, &err), 0);
        ASSERT_EQ(store_tombstone_get(s, sb->id, &got, &err), -ENOENT);
        cove_err_free(&err);
        ASSERT_EQ(store_tombstone_get(s, other->id, &got, &err), 0);
        sandbox_rec_free(got);

        sandbox_rec_free(sb);
        sandbox_rec_free(other);
        sandbox_rec_free(third);
        store_close(s);
}

static struct volume_rec make_volume(const char *id, const char *team, const char *name)
{
        return (struct volume_rec){ .id = (char *)id,
                                    .team_id = (char *)team,
                                    .name = (char *)name,
                                    .token = (char *)"tok",
                                    .size_mb = 64,
                                    .created_at = 1 };
}

static void test_volumes(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct volume_rec a = make_volume("vol_000000000000000a", "team_a", "data");
        struct volume_rec b = make_volume("vol_000000000000000b", "team_a", "cache");
        struct volume_rec c = make_volume("vol_000000000000000c", "team_b", "data");
        struct volume_rec dup = make_volume("vol_000000000000000d", "team_a", "data");
        ASSERT_EQ(store_volume_insert(s, &a, &err), 0);
        ASSERT_EQ(store_volume_insert(s, &b, &err), 0);
        ASSERT_EQ(store_volume_insert(s, &c, &err), 0); /* same name, another team */
        ASSERT_EQ(store_volume_insert(s, &dup, &err), -EEXIST);
        cove_err_free(&err);

        struct volume_rec **v = NULL;
        ASSERT_EQ(store_volume_list(s, "team_a", &v, &err), 0);
        ASSERT_TRUE(v[0] && v[1] && !v[2]);
        ASSERT_STREQ(v[0]->name, "cache"); /* sorted by name */
        ASSERT_STREQ(v[1]->name, "data");
        volume_list_free(v);

        struct volume_rec *got = NULL;
        ASSERT_EQ(store_volume_get(s, "team_b", a.id, &got, &err), -ENOENT); /* other team */
        cove_err_free(&err);
        ASSERT_EQ(store_volume_get(s, "team_a", a.id, &got, &err), 0);
        ASSERT_EQ(got->size_mb, 64);
        volume_rec_free(got);
        ASSERT_EQ(store_volume_get_by_name(s, "team_b", "data", &got, &err), 0);
        ASSERT_STREQ(got->id, c.id);
        volume_rec_free(got);

        /* Mounted by a sandbox of the team (in any state): refused; another team's sandbox
         * naming the same volume name does not count. */
        struct sandbox_rec *sb = make_sandbox("volsb0000000000000a1", "team_a", 1000);
        sb->state = SANDBOX_STOPPED;
        sb->volume_mounts = json_pack("[{s:s, s:s}]", "name", "data", "path", "/data");
        ASSERT_EQ(store_sandbox_insert(s, sb, &err), 0);
        ASSERT_EQ(store_volume_delete_unmounted(s, "team_a", a.id, NULL, &err), -EBUSY);
        ASSERT_TRUE(strstr(err->msg, "mounted by sandbox") != NULL);
        cove_err_free(&err);
        ASSERT_EQ(store_volume_delete_unmounted(s, "team_b", c.id, &got, &err), 0);
        ASSERT_STREQ(got->name, "data");
        volume_rec_free(got);
        ASSERT_EQ(store_volume_delete_unmounted(s, "team_b", c.id, NULL, &err), -ENOENT);
        cove_err_free(&err);
        /* Once the sandbox is gone (a tombstone does not mount anything), it can go. */
        ASSERT_EQ(store_sandbox_retire(s, sb->id, 5, 0, NULL, &err), 0);
        ASSERT_EQ(store_volume_delete_unmounted(s, "team_a", a.id, NULL, &err), 0);
        sandbox_rec_free(sb);
        store_close(s);
}

/* A row's pending writes (log entries, the template's spawn, the event) go in the row's own
 * transaction: all of them, in order, or none (a refused insert writes no log entry). */
static int start_with_log(struct sandbox_rec *sb, void *ud, struct cove_err **err)
{
        (void)err;
        sb->state = SANDBOX_RUNNING;
        sandbox_rec_log(sb, "info", "system", "sandbox running");
        sb->spawned_template_id = xstrdup(ud);
        return 1;
}

static void test_sandbox_pending_writes(void)
{
        cleanup_free char *path = new_db_path();
        struct store *s = open_ok(path);
        cleanup_err struct cove_err *err = NULL;
        struct template_rec *t = make_template("tpl-base-0001", "base");
        struct sandbox_rec *a = make_sandbox("sb-a", "team_default", 1);
        struct sandbox_rec *dup = make_sandbox("sb-a", "team_default", 2);
        struct log_rec **v = NULL;

        ASSERT_EQ(store_template_insert(s, t, &err), 0);
        a->state = SANDBOX_STARTING;
        sandbox_rec_log(a, "info", "system", "sandbox created");
        ASSERT_EQ(store_sandbox_insert(s, a, &err), 0);
        ASSERT_TRUE(a->logs == NULL && a->spawned_template_id == NULL);        /* consumed */
        ASSERT_TRUE(json_is_object(a->network) && json_is_array(a->timeline)); /* as read */
        sandbox_rec_log(dup, "info", "system", "must not appear");
        dup->spawned_template_id = xstrdup("tpl-base-0001");
        ASSERT_EQ(store_sandbox_insert(s, dup, &err), -EEXIST);
        cove_err_free(&err);
        ASSERT_EQ(raw_int(path, "SELECT spawn_count FROM templates"), 0);
        ASSERT_EQ(store_sandbox_modify(s, "sb-a", start_with_log, (void *)"tpl-base-0001", NULL,
                                       &err),
                  0);
        ASSERT_EQ(raw_int(path, "SELECT spawn_count FROM templates"), 1);
        ASSERT_EQ(raw_int(path, "SELECT count(*) FROM sandboxes WHERE status = 'running'"), 1);
        ASSERT_EQ(store_log_list(s, "sb-a", &v, &err), 0);
        ASSERT_TRUE(v[0] && v[1] && !v[2]);
        ASSERT_TRUE(streq(v[0]->message, "sandbox created") && v[0]->seq == 1);
        ASSERT_TRUE(streq(v[1]->message, "sandbox running") && v[1]->seq == 2);
        log_list_free(v);
        sandbox_rec_free(a);
        sandbox_rec_free(dup);
        template_rec_free(t);
        store_close(s);
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                printf("1..0 # SKIP mkdtemp failed\n");
                return 77;
        }
        (void)unsetenv("COVE_STORE_FAIL_STEP");
        RUN(test_open_migrate_reopen);
        RUN(test_open_bad_path);
        RUN(test_uidranges);
        RUN(test_team_default);
        RUN(test_apikeys);
        RUN(test_templates);
        RUN(test_sandboxes);
        RUN(test_sandbox_json);
        RUN(test_sandbox_modify_and_deadlines);
        RUN(test_sandbox_write_hook);
        RUN(test_sandbox_rec_dup_copies_every_field);
        RUN(test_sandbox_pending_writes);
        RUN(test_logs);
        RUN(test_settings);
        RUN(test_failure_injection);
        RUN(test_threads);
        RUN(test_v1_columns_and_tombstones);
        RUN(test_volumes);
        cleanup_tmpdir();
        return tap_done();
}
