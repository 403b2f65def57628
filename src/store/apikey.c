/* SPDX-License-Identifier: MIT */
/*
 * apikey.c — teams and API keys. Only SHA-256(key) in lower-case hex is stored; the key itself
 * is never stored nor put in an error message.
 */
#include "store-internal.h"

#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"

#include <openssl/evp.h>

#include "lib/banned.h"

#define KEY_HASH_HEX_LEN (2 * 32)

int store_apikey_hash(const char *key, unsigned char out[STORE_APIKEY_HASH_LEN],
                      struct cove_err **err)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;

        if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) != 1 ||
            mdlen != STORE_APIKEY_HASH_LEN)
                return cove_err_set(err, EIO, "hash api key: SHA-256 failed");
        memcpy(out, md, STORE_APIKEY_HASH_LEN);
        return 0;
}

static void hash_hex(const unsigned char md[STORE_APIKEY_HASH_LEN], char out[KEY_HASH_HEX_LEN + 1])
{
        static const char hex[] = "0123456789abcdef";
        for (unsigned i = 0; i < STORE_APIKEY_HASH_LEN; i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 0xf];
        }
        out[KEY_HASH_HEX_LEN] = '\0';
}

static int key_hash(const char *key, char out[KEY_HASH_HEX_LEN + 1], struct cove_err **err)
{
        unsigned char md[STORE_APIKEY_HASH_LEN];
        int r = store_apikey_hash(key, md, err);
        if (r < 0)
                return r;
        hash_hex(md, out);
        return 0;
}

void store_keys_written(struct store *s)
{
        __atomic_add_fetch(&s->key_writes, 1, __ATOMIC_SEQ_CST);
}

uint64_t store_apikey_generation(struct store *s)
{
        return __atomic_load_n(&s->key_writes, __ATOMIC_SEQ_CST);
}

void apikey_rec_free(struct apikey_rec *k)
{
        if (!k)
                return;
        free(k->id);
        free(k->team_id);
        free(k->role);
        free(k->last4);
        free(k->name);
        free(k);
}

int store_team_ensure_default(struct store *s, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_TEAM_ENSURE,
                "INSERT OR IGNORE INTO teams (id, name, created_at) VALUES (?, ?, ?)", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT("team_default"), STORE_TEXT("default"),
                           STORE_I64(time_now_ms()));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "create team 'team_default'");
        return 0;
}

int store_team_get_name(struct store *s, const char *team_id, char **ret_name,
                        struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_TEAM_NAME, "SELECT name FROM teams WHERE id = ?", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(team_id));
        int r = store_one_row(s, rc, "team", team_id, err);
        if (r < 0)
                return r;
        *ret_name = store_col_text(st, 0);
        if (!*ret_name)
                *ret_name = xstrdup("");
        return 0;
}

int store_apikey_insert(struct store *s, const char *key, const char *team_id, const char *role,
                        struct cove_err **err)
{
        char hash[KEY_HASH_HEX_LEN + 1], id[STRLEN("key_") + 16 + 1], rnd[16 + 1];
        size_t klen = strlen(key);
        int r;

        if (klen == 0)
                return cove_err_set(err, EINVAL, "api key must not be empty");
        r = key_hash(key, hash, err);
        if (r < 0)
                return r;
        random_hex(rnd, 16);
        (void)snprintf(id, sizeof(id), "key_%s", rnd);
        const char *last4 = key + (klen > 4 ? klen - 4 : 0);

        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_APIKEY_INSERT,
                "INSERT INTO api_keys (id, key_hash, team_id, role, last4, created_at, revoked)"
                " VALUES (?, ?, ?, ?, ?, ?, 0)",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id), STORE_TEXT(hash), STORE_TEXT(team_id),
                           STORE_TEXT(role), STORE_TEXT(last4), STORE_I64(time_now_ms()));
        store_keys_written(s);
        if (rc == SQLITE_DONE)
                return 0;
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "api key already exists");
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
                return cove_err_set(err, ENOENT, "team '%s' not found", team_id);
        return store_sql_error(s, rc, err, "insert api key for team '%s'", team_id);
}

int store_apikey_lookup(struct store *s, const char *key, struct apikey_rec **ret,
                        struct cove_err **err)
{
        unsigned char md[STORE_APIKEY_HASH_LEN];
        int r = store_apikey_hash(key, md, err);
        if (r < 0)
                return r;
        return store_apikey_lookup_hash(s, md, ret, err);
}

int store_apikey_lookup_hash(struct store *s, const unsigned char md[STORE_APIKEY_HASH_LEN],
                             struct apikey_rec **ret, struct cove_err **err)
{
        char hash[KEY_HASH_HEX_LEN + 1];
        hash_hex(md, hash);

        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_APIKEY_LOOKUP,
                           "SELECT id, team_id, role, last4, created_at FROM api_keys"
                           " WHERE key_hash = ? AND revoked = 0",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(hash));
        if (rc == SQLITE_DONE)
                return cove_err_set(err, ENOENT, "api key not found");
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "look up api key");
        struct apikey_rec *k = xzalloc(sizeof(*k));
        k->id = store_col_text(st, 0);
        k->team_id = store_col_text(st, 1);
        k->role = store_col_text(st, 2);
        k->last4 = store_col_text(st, 3);
        k->created_at = store_col_i64(st, 4);
        *ret = k;
        return 0;
}

int store_apikey_count(struct store *s, int64_t *ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_APIKEY_COUNT, "SELECT count(*) FROM api_keys WHERE revoked = 0", err);
        if (!st)
                return -EIO;
        int rc = store_step(s, st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "count api keys");
        *ret = store_col_i64(st, 0);
        return 0;
}
