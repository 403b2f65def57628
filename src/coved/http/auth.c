/* SPDX-License-Identifier: MIT */
/*
 * auth.c — API key → team and role, with a cache of verified keys (auth.h).
 *
 * The cache: direct-mapped slots (one key per slot, a slot per hash), each with its lock, so
 * memory is bounded without eviction bookkeeping and requests of different keys do not
 * contend. An entry holds SHA-256(key) — never the key — and what the store answered for it,
 * stamped with the store's key generation read *before* that lookup
 * (store_apikey_generation()). An entry is used only while the generation is still the same:
 * every write of a key or of a key's teams (revoke, a team added, a new key) counts one before
 * the store is released, so an entry read before such a write can never be used after it —
 * a revocation takes effect on the next request, whatever the timing. Unknown and revoked
 * keys are not cached (a stream of wrong keys cannot evict the good ones, and each costs one
 * store lookup as before).
 */
#include "coved/http/auth.h"
#include "coved/coved.h"
#include "lib/macro.h"
#include "store/store.h"

#include <pthread.h>
#include <strings.h>

#define KEYCACHE_SLOTS 1024 /* power of two */

struct keycache_slot {
        pthread_mutex_t lock;
        bool used;
        unsigned char hash[STORE_APIKEY_HASH_LEN];
        uint64_t generation; /* store_apikey_generation() before the lookup */
        char *team_id, *role, *key_id, *last4;
};

struct http_keycache {
        struct keycache_slot slots[KEYCACHE_SLOTS];
};

static void slot_clear(struct keycache_slot *s)
{
        free(s->team_id);
        free(s->role);
        free(s->key_id);
        free(s->last4);
        s->team_id = s->role = s->key_id = s->last4 = NULL;
        s->used = false;
}

struct http_keycache *http_keycache_new(void)
{
        struct http_keycache *c = xzalloc(sizeof(*c));
        for (size_t i = 0; i < KEYCACHE_SLOTS; i++)
                if (pthread_mutex_init(&c->slots[i].lock, NULL) != 0)
                        abort();
        return c;
}

void http_keycache_free(struct http_keycache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < KEYCACHE_SLOTS; i++) {
                slot_clear(&c->slots[i]);
                (void)pthread_mutex_destroy(&c->slots[i].lock);
        }
        free(c);
}

static struct keycache_slot *slot_of(struct http_keycache *c,
                                     const unsigned char hash[STORE_APIKEY_HASH_LEN])
{
        uint32_t h;
        memcpy(&h, hash, sizeof(h)); /* SHA-256 bytes are uniform */
        return &c->slots[h & (KEYCACHE_SLOTS - 1)];
}

/* Fills a from the cache when it holds hash at generation gen. */
static bool keycache_get(struct http_keycache *c, const unsigned char *hash, uint64_t gen,
                         struct http_auth *a)
{
        struct keycache_slot *s = slot_of(c, hash);
        bool hit = false;

        (void)pthread_mutex_lock(&s->lock);
        if (s->used && s->generation == gen && memcmp(s->hash, hash, STORE_APIKEY_HASH_LEN) == 0) {
                a->team_id = xstrdup(s->team_id);
                a->role = xstrdup(s->role);
                a->key_id = xstrdup(s->key_id);
                a->last4 = xstrdup(s->last4);
                hit = true;
        }
        (void)pthread_mutex_unlock(&s->lock);
        return hit;
}

static void keycache_put(struct http_keycache *c, const unsigned char *hash, uint64_t gen,
                         const struct http_auth *a)
{
        struct keycache_slot *s = slot_of(c, hash);

        (void)pthread_mutex_lock(&s->lock);
        slot_clear(s);
        memcpy(s->hash, hash, STORE_APIKEY_HASH_LEN);
        s->generation = gen;
        s->team_id = xstrdup(a->team_id);
        s->role = xstrdup(a->role);
        s->key_id = xstrdup(a->key_id);
        s->last4 = xstrdup(a->last4);
        s->used = true;
        (void)pthread_mutex_unlock(&s->lock);
}

/* The key's own team and role: from the cache, else from the store (then cached). */
static int verify_key(struct coved *cd, const char *key, struct http_auth *a)
{
        unsigned char hash[STORE_APIKEY_HASH_LEN];
        struct apikey_rec *k = NULL;

        if (store_apikey_hash(key, hash, NULL) < 0)
                return -ENOENT;
        /* Read before the lookup: a write that the lookup missed counts after this. */
        uint64_t gen = store_apikey_generation(cd->store);
        if (cd->keys && keycache_get(cd->keys, hash, gen, a))
                return 0;
        if (store_apikey_lookup_hash(cd->store, hash, &k, NULL) < 0)
                return -ENOENT;
        a->team_id = TAKE_PTR(k->team_id);
        a->role = TAKE_PTR(k->role);
        a->key_id = TAKE_PTR(k->id);
        a->last4 = TAKE_PTR(k->last4);
        apikey_rec_free(k);
        if (cd->keys)
                keycache_put(cd->keys, hash, gen, a);
        return 0;
}

int http_authenticate(struct http_req *r)
{
        struct coved *cd = r->cd;
        const char *key = http_header(r, "X-API-Key");
        const char *authz = http_header(r, "Authorization");
        if ((!key || !*key) && authz && strncasecmp(authz, "Bearer ", 7) == 0)
                key = authz + 7;

        if (streq(cd->cfg.auth, "none")) {
                r->auth.team_id = xstrdup("team_default");
                r->auth.role = xstrdup("admin");
                r->auth.key_id = xstrdup("key_open");
                r->auth.last4 = xstrdup("");
                return 0;
        }
        if (!key || !*key)
                return -ENOENT;
        if (verify_key(cd, key, &r->auth) < 0)
                return -ENOENT;
        /* X-Project-ID naming another team of the key: act in that team; any other value is
         * ignored (README §2.1). */
        const char *project = http_header(r, "X-Project-ID");
        if (project && *project && !streq(project, r->auth.team_id)) {
                cleanup_strv char **teams = NULL;
                if (store_apikey_teams(cd->store, r->auth.key_id, &teams, NULL) >= 0)
                        for (char **t = teams; *t; t++)
                                if (streq(*t, project)) {
                                        free(r->auth.team_id);
                                        r->auth.team_id = xstrdup(project);
                                        break;
                                }
        }
        return 0;
}

char *http_auth_team_name(struct http_req *r)
{
        char *name = NULL;
        if (!r->auth.team_id)
                return xstrdup("");
        if (store_team_get_name(r->cd->store, r->auth.team_id, &name, NULL) < 0)
                name = xstrdup(r->auth.team_id);
        return name;
}
