/* SPDX-License-Identifier: MIT */
/*
 * webhook.c — lifecycle webhooks and their deliveries (control-plane.md §12.3–§12.4).
 *
 * A delivery row is the durable state of one event's way to one webhook: created with the
 * event (event.c), picked by the delivery pool when due (store_delivery_due), marked open
 * while an attempt runs (store_delivery_begin) and closed with the attempt's outcome
 * (store_delivery_finish). `waiting` is 1 while the row still has work (pending, retrying, or
 * its dead-letter POST due); indexes cover only waiting rows, so finished ones cost nothing
 * but disk until the 7-day prune.
 */
#include "store-internal.h"

#include "lib/macro.h"
#include "lib/timeutil.h"

#include "lib/banned.h"

/* ---- webhooks ---- */

#define WEBHOOK_COLS                                                                               \
        "id, team_id, name, url, secret, enabled, events, has_retry_policy, max_attempts,"         \
        " delays, dead_letter_enabled, dead_letter_url, created_at, updated_at"

void webhook_rec_free(struct webhook_rec *w)
{
        if (!w)
                return;
        free(w->id);
        free(w->team_id);
        free(w->name);
        free(w->url);
        free(w->secret);
        json_decref(w->events);
        json_decref(w->delays);
        free(w->dead_letter_url);
        free(w);
}

STORE_DEFINE_LIST_FREE(webhook_list_free, struct webhook_rec, webhook_rec_free)

static int webhook_from_row(sqlite3_stmt *st, struct webhook_rec **ret, struct cove_err **err)
{
        struct webhook_rec *w = xzalloc(sizeof(*w));
        w->id = store_col_text(st, 0);
        w->team_id = store_col_text(st, 1);
        w->name = store_col_text(st, 2);
        w->url = store_col_text(st, 3);
        w->secret = store_col_text(st, 4);
        w->enabled = store_col_i64(st, 5) != 0;
        w->has_retry_policy = store_col_i64(st, 7) != 0;
        w->max_attempts = store_col_i64(st, 8);
        w->dead_letter_enabled = store_col_i64(st, 10) != 0;
        w->dead_letter_url = store_col_text(st, 11);
        w->created_at = store_col_i64(st, 12);
        w->updated_at = store_col_i64(st, 13);
        int r = store_col_json(st, 6, "[]", &w->events, err);
        if (r >= 0)
                r = store_col_json(st, 9, NULL, &w->delays, err);
        if (r < 0) {
                webhook_rec_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

/* Binds ?1..?14 in WEBHOOK_COLS order. */
static int webhook_bind(sqlite3_stmt *st, const struct webhook_rec *w)
{
        int rc = STORE_BIND(st, STORE_TEXT(w->id), STORE_TEXT(w->team_id), STORE_TEXT(w->name),
                            STORE_TEXT(w->url), STORE_TEXT(w->secret), STORE_I64(w->enabled),
                            STORE_JSON(w->events, "[]"), STORE_I64(w->has_retry_policy),
                            STORE_I64(w->max_attempts), STORE_JSON(w->delays, NULL),
                            STORE_I64(w->dead_letter_enabled), STORE_TEXT(w->dead_letter_url),
                            STORE_I64(w->created_at), STORE_I64(w->updated_at));
        return rc;
}

int store_webhook_insert(struct store *s, const struct webhook_rec *w, int64_t max_per_team,
                         struct cove_err **err)
{
        STORE_LOCK(s);
        if (max_per_team > 0) {
                cleanup_stmt sqlite3_stmt *st =
                        store_stmt(s, STMT_WEBHOOK_COUNT,
                                   "SELECT COUNT(*) FROM webhooks WHERE team_id = ?1", err);
                if (!st)
                        return -EIO;
                int rc = STORE_RUN(s, st, STORE_TEXT(w->team_id));
                if (rc != SQLITE_ROW)
                        return store_sql_error(s, rc, err, "count webhooks");
                if (sqlite3_column_int64(st, 0) >= max_per_team)
                        return cove_err_set(err, EDQUOT,
                                            "webhook limit reached for team '%s' (%lld of %lld)",
                                            w->team_id, (long long)sqlite3_column_int64(st, 0),
                                            (long long)max_per_team);
        }
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_WEBHOOK_INSERT,
                           "INSERT INTO webhooks (" WEBHOOK_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                           " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                           err);
        if (!st)
                return -EIO;
        int rc = webhook_bind(st, w);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (store_rc_is_unique(rc))
                return cove_err_set(err, EEXIST, "webhook '%s' already exists", w->id);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "insert webhook '%s'", w->id);
        return 0;
}

static int webhook_get_locked(struct store *s, const char *team_id, const char *id,
                              struct webhook_rec **ret, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_WEBHOOK_GET,
                           "SELECT " WEBHOOK_COLS
                           " FROM webhooks WHERE id = ?1 AND (?2 IS NULL OR team_id = ?2)",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id), STORE_TEXT(team_id));
        int r = store_one_row(s, rc, "webhook", id, err);
        if (r < 0)
                return r;
        return webhook_from_row(st, ret, err);
}

int store_webhook_get(struct store *s, const char *team_id, const char *id,
                      struct webhook_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        return webhook_get_locked(s, team_id, id, ret, err);
}

STORE_DEFINE_COLLECT(webhook, struct webhook_rec, webhook_rec_free)

int store_webhook_list(struct store *s, const char *team_id, struct webhook_rec ***ret,
                       struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(s, STMT_WEBHOOK_LIST,
                                                   "SELECT " WEBHOOK_COLS " FROM webhooks"
                                                   " WHERE team_id = ?1 ORDER BY created_at, id",
                                                   err);
        if (!st)
                return -EIO;
        int rc = store_bind_text(st, 1, team_id);
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list webhooks");
        return webhook_collect(s, st, "list webhooks", ret, err);
}

int store_webhook_update(struct store *s, const struct webhook_rec *w, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_WEBHOOK_UPDATE,
                "UPDATE webhooks SET name = ?3, url = ?4, secret = ?5, enabled = ?6, events = ?7,"
                " has_retry_policy = ?8, max_attempts = ?9, delays = ?10,"
                " dead_letter_enabled = ?11, dead_letter_url = ?12, updated_at = ?14"
                " WHERE id = ?1 AND team_id = ?2",
                err);
        if (!st)
                return -EIO;
        int rc = webhook_bind(st, w);
        if (rc == SQLITE_OK)
                rc = store_step(s, st);
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "update webhook '%s'", w->id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "webhook '%s' not found", w->id);
        return 0;
}

int store_webhook_delete(struct store *s, const char *team_id, const char *id,
                         struct cove_err **err)
{
        STORE_LOCK(s);
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        {
                cleanup_stmt sqlite3_stmt *st =
                        store_stmt(s, STMT_WEBHOOK_DELETE,
                                   "DELETE FROM webhooks WHERE id = ?1 AND team_id = ?2", err);
                int rc = STORE_RUN(s, st, STORE_TEXT(id), STORE_TEXT(team_id));
                if (!st)
                        r = -EIO;
                else if (rc != SQLITE_DONE)
                        r = store_sql_error(s, rc, err, "delete webhook '%s'", id);
                else if (sqlite3_changes(s->db) == 0)
                        r = cove_err_set(err, ENOENT, "webhook '%s' not found", id);
        }
        if (r >= 0) {
                /* An attempt in flight records its own outcome. */
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_WEBHOOK_DELETE_DELIVERIES,
                        "UPDATE webhook_deliveries SET status = 'failed',"
                        " error = 'webhook was deleted', waiting = 0, next_attempt_at = 0,"
                        " dead_letter = 0 WHERE webhook_id = ?1 AND waiting = 1 AND attempt_open = "
                        "0",
                        err);
                int rc = STORE_RUN(s, st, STORE_TEXT(id));
                if (!st)
                        r = -EIO;
                else if (rc != SQLITE_DONE)
                        r = store_sql_error(s, rc, err, "fail deliveries of webhook '%s'", id);
        }
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        return store_commit(s, err);
}

/* ---- deliveries ---- */

#define DELIVERY_COLS                                                                              \
        "seq, id, event_id, event_seq, webhook_id, team_id, sandbox_id, url, status,"              \
        " http_status, attempts, max_attempts, delays, error, dead_letter_url,"                    \
        " dead_letter_error, dead_letter, attempt_open, created_at, last_attempt_at,"              \
        " next_attempt_at, delivered_at"

void delivery_rec_free(struct delivery_rec *d)
{
        if (!d)
                return;
        free(d->id);
        free(d->event_id);
        free(d->webhook_id);
        free(d->team_id);
        free(d->sandbox_id);
        free(d->url);
        free(d->status);
        json_decref(d->delays);
        free(d->error);
        free(d->dead_letter_url);
        free(d->dead_letter_error);
        free(d);
}

STORE_DEFINE_LIST_FREE(delivery_list_free, struct delivery_rec, delivery_rec_free)

static int delivery_from_row(sqlite3_stmt *st, struct delivery_rec **ret, struct cove_err **err)
{
        struct delivery_rec *d = xzalloc(sizeof(*d));
        d->seq = store_col_i64(st, 0);
        d->id = store_col_text(st, 1);
        d->event_id = store_col_text(st, 2);
        d->event_seq = store_col_i64(st, 3);
        d->webhook_id = store_col_text(st, 4);
        d->team_id = store_col_text(st, 5);
        d->sandbox_id = store_col_text(st, 6);
        d->url = store_col_text(st, 7);
        d->status = store_col_text(st, 8);
        d->http_status = store_col_i64(st, 9);
        d->attempts = store_col_i64(st, 10);
        d->max_attempts = store_col_i64(st, 11);
        d->error = store_col_text(st, 13);
        d->dead_letter_url = store_col_text(st, 14);
        d->dead_letter_error = store_col_text(st, 15);
        d->dead_letter = (int)store_col_i64(st, 16);
        d->attempt_open = store_col_i64(st, 17) != 0;
        d->created_at = store_col_i64(st, 18);
        d->last_attempt_at = store_col_i64(st, 19);
        d->next_attempt_at = store_col_i64(st, 20);
        d->delivered_at = store_col_i64(st, 21);
        int r = store_col_json(st, 12, "[10,60]", &d->delays, err);
        if (r < 0) {
                delivery_rec_free(d);
                return r;
        }
        if (!d->status)
                d->status = xstrdup("pending");
        *ret = d;
        return 0;
}

STORE_DEFINE_COLLECT(delivery, struct delivery_rec, delivery_rec_free)

int store_delivery_list(struct store *s, const struct delivery_query *q, struct delivery_rec ***ret,
                        struct cove_err **err)
{
#define DELIVERY_LIST_SQL(order)                                                                   \
        "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE team_id = ?1"                      \
        " AND (?2 IS NULL OR webhook_id = ?2) AND (?3 IS NULL OR event_id = ?3)"                   \
        " AND (?4 IS NULL OR status = ?4) ORDER BY seq " order " LIMIT ?5 OFFSET ?6"
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                q->order_asc
                        ? store_stmt(s, STMT_DELIVERY_LIST_ASC, DELIVERY_LIST_SQL("ASC"), err)
                        : store_stmt(s, STMT_DELIVERY_LIST_DESC, DELIVERY_LIST_SQL("DESC"), err);
#undef DELIVERY_LIST_SQL
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(q->team_id), STORE_TEXT(q->webhook_id),
                            STORE_TEXT(q->event_id), STORE_TEXT(q->status), STORE_I64(q->limit),
                            STORE_I64(q->offset));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list deliveries");
        return delivery_collect(s, st, "list deliveries", ret, err);
}

static int delivery_get_locked(struct store *s, const char *team_id, const char *id,
                               struct delivery_rec **ret, struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_DELIVERY_GET,
                           "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE id = ?1"
                           " AND (?2 IS NULL OR team_id = ?2)",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(id), STORE_TEXT(team_id));
        int r = store_one_row(s, rc, "delivery", id, err);
        if (r < 0)
                return r;
        return delivery_from_row(st, ret, err);
}

int store_delivery_get(struct store *s, const char *team_id, const char *id,
                       struct delivery_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        return delivery_get_locked(s, team_id, id, ret, err);
}

/* The stored body of an event; -ENOENT when it was pruned. */
static int event_body_locked(struct store *s, const char *event_id, char **ret,
                             struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_EVENT_BODY, "SELECT body FROM lifecycle_events WHERE id = ?1", err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(event_id));
        if (rc == SQLITE_DONE)
                return cove_err_set(err, ENOENT, "event '%s' is no longer retained", event_id);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "get event '%s'", event_id);
        *ret = store_col_text(st, 0);
        return *ret ? 0 : cove_err_set(err, EIO, "event '%s' has no body", event_id);
}

int store_delivery_replay(struct store *s, const char *team_id, const char *id,
                          struct delivery_rec **ret, struct cove_err **err)
{
        STORE_LOCK(s);
        struct delivery_rec *old = NULL;
        struct webhook_rec *w = NULL;
        cleanup_free char *body = NULL;
        cleanup_free char *new_id = NULL;
        int r = delivery_get_locked(s, team_id, id, &old, err);
        if (r >= 0)
                r = webhook_get_locked(s, team_id, old->webhook_id, &w, err);
        if (r >= 0)
                r = event_body_locked(s, old->event_id, &body, err); /* still retained? */
        if (r >= 0) {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_DELIVERY_REPLAY,
                        "INSERT INTO webhook_deliveries (id, event_id, event_seq, webhook_id,"
                        " team_id, sandbox_id, url, status, max_attempts, delays,"
                        " dead_letter_url, waiting, created_at, next_attempt_at)"
                        " VALUES ('dlv_' || lower(hex(randomblob(10))), ?1, ?2, ?3, ?4, ?5, ?6,"
                        " 'pending', ?7, coalesce(?8, '[10,60]'), ?9, 1, ?10, ?10)"
                        " RETURNING id",
                        err);
                int rc = STORE_RUN(s, st, STORE_TEXT(old->event_id), STORE_I64(old->event_seq),
                                   STORE_TEXT(w->id), STORE_TEXT(w->team_id),
                                   STORE_TEXT(old->sandbox_id), STORE_TEXT(w->url),
                                   STORE_I64(w->max_attempts), STORE_JSON(w->delays, NULL),
                                   STORE_TEXT(w->dead_letter_enabled ? w->dead_letter_url : NULL),
                                   STORE_I64(time_now_ms()));
                if (!st)
                        r = -EIO;
                else if (rc != SQLITE_ROW)
                        r = store_sql_error(s, rc, err, "replay delivery '%s'", id);
                else
                        new_id = store_col_text(st, 0);
                if (st && rc == SQLITE_ROW)
                        (void)store_step(s, st); /* run RETURNING to completion */
        }
        delivery_rec_free(old);
        webhook_rec_free(w);
        if (r < 0)
                return r;
        if (s->event_notify_fd >= 0) {
                uint64_t one = 1;
                (void)!write(s->event_notify_fd, &one, sizeof(one));
        }
        return delivery_get_locked(s, team_id, new_id, ret, err);
}

int store_delivery_due(struct store *s, int64_t now, size_t max, char ***ret_ids,
                       struct cove_err **err)
{
        STORE_LOCK(s);
        /* The head of each (webhook, sandbox) line only: nothing older of the same line may
         * still wait (an open attempt waits too). */
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_DELIVERY_DUE,
                           "SELECT d.id FROM webhook_deliveries d"
                           " WHERE d.waiting = 1 AND d.attempt_open = 0 AND d.next_attempt_at <= ?1"
                           " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.waiting = 1"
                           "  AND e.webhook_id = d.webhook_id AND e.sandbox_id = d.sandbox_id"
                           "  AND (e.event_seq < d.event_seq OR (e.event_seq = d.event_seq AND "
                           "e.seq < d.seq)))"
                           " ORDER BY d.next_attempt_at, d.seq LIMIT ?2",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_I64(now), STORE_I64((int64_t)max));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "due deliveries");
        char **ids = xzalloc((max + 1) * sizeof(char *));
        size_t n = 0;
        while (n < max && (rc = store_step(s, st)) == SQLITE_ROW)
                ids[n++] = store_col_text(st, 0);
        if (n < max && rc != SQLITE_DONE) {
                strv_free(ids);
                return store_sql_error(s, rc, err, "due deliveries");
        }
        *ret_ids = ids;
        return 0;
}

int store_delivery_next_due(struct store *s, int64_t *ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_DELIVERY_NEXT_DUE,
                           "SELECT MIN(next_attempt_at) FROM webhook_deliveries"
                           " WHERE waiting = 1 AND attempt_open = 0",
                           err);
        if (!st)
                return -EIO;
        int rc = store_step(s, st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "next due delivery");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

int store_delivery_count_waiting(struct store *s, int64_t *ret, struct cove_err **err)
{
        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_DELIVERY_COUNT_WAITING,
                           "SELECT COUNT(*) FROM webhook_deliveries WHERE waiting = 1", err);
        if (!st)
                return -EIO;
        int rc = store_step(s, st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, err, "count waiting deliveries");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

/* Writes every mutable field of d; waiting follows from its status. Lock held. */
static int delivery_write_locked(struct store *s, const struct delivery_rec *d, bool open,
                                 struct cove_err **err)
{
        cleanup_stmt sqlite3_stmt *st =
                store_stmt(s, STMT_DELIVERY_WRITE,
                           "UPDATE webhook_deliveries SET url = ?2, status = ?3, http_status = ?4,"
                           " attempts = ?5, error = ?6, dead_letter_error = ?7, dead_letter = ?8,"
                           " attempt_open = ?9, last_attempt_at = ?10, next_attempt_at = ?11,"
                           " delivered_at = ?12,"
                           " waiting = (?3 IN ('pending', 'retrying') OR ?8 = 1) WHERE id = ?1",
                           err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_TEXT(d->id), STORE_TEXT(d->url), STORE_TEXT(d->status),
                           STORE_I64(d->http_status), STORE_I64(d->attempts), STORE_TEXT(d->error),
                           STORE_TEXT(d->dead_letter_error), STORE_I64(d->dead_letter),
                           STORE_I64(open), STORE_I64(d->last_attempt_at),
                           STORE_I64(d->next_attempt_at), STORE_I64(d->delivered_at));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "update delivery '%s'", d->id);
        if (sqlite3_changes(s->db) == 0)
                return cove_err_set(err, ENOENT, "delivery '%s' not found", d->id);
        return 0;
}

int store_delivery_begin(struct store *s, const char *id, int64_t now, struct delivery_rec **ret,
                         struct webhook_rec **ret_webhook, char **ret_body, struct cove_err **err)
{
        STORE_LOCK(s);
        struct delivery_rec *d = NULL;
        struct webhook_rec *w = NULL;
        char *body = NULL;
        int r = delivery_get_locked(s, NULL, id, &d, err);
        if (r < 0)
                return r;
        bool waiting = streq(d->status, "pending") || streq(d->status, "retrying") ||
                       d->dead_letter == DEAD_LETTER_DUE;
        if (!waiting || d->attempt_open) {
                delivery_rec_free(d);
                return cove_err_set(err, EALREADY, "delivery '%s' is not waiting", id);
        }
        r = webhook_get_locked(s, NULL, d->webhook_id, &w, err);
        if (r >= 0)
                r = event_body_locked(s, d->event_id, &body, err);
        if (r >= 0) {
                if (d->dead_letter != DEAD_LETTER_DUE) {
                        d->attempts++;
                        free(d->url);
                        d->url = xstrdup(w->url);
                }
                d->last_attempt_at = now;
                r = delivery_write_locked(s, d, /* open= */ true, err);
        }
        if (r < 0) {
                delivery_rec_free(d);
                webhook_rec_free(w);
                free(body);
                return r;
        }
        d->attempt_open = true;
        *ret = d;
        *ret_webhook = w;
        *ret_body = body;
        return 0;
}

int store_delivery_finish(struct store *s, const struct delivery_rec *d, struct cove_err **err)
{
        STORE_LOCK(s);
        return delivery_write_locked(s, d, /* open= */ false, err);
}

int store_delivery_recover(struct store *s, int64_t now, int64_t *ret, struct cove_err **err)
{
        STORE_LOCK(s);
        /* An interrupted attempt counts as failed; when it was the main URL's last, the
         * delivery fails (and its dead-letter POST becomes due); an interrupted dead-letter
         * POST is simply sent again. */
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_DELIVERY_RECOVER,
                "UPDATE webhook_deliveries SET attempt_open = 0, next_attempt_at = ?1,"
                " error = CASE WHEN dead_letter = 1 THEN error"
                "  ELSE 'attempt interrupted by a restart of coved' END,"
                " status = CASE WHEN dead_letter = 1 THEN status"
                "  WHEN attempts >= max_attempts THEN 'failed' ELSE 'retrying' END,"
                " dead_letter = CASE WHEN dead_letter = 1 THEN 1"
                "  WHEN attempts >= max_attempts AND dead_letter_url IS NOT NULL THEN 1 ELSE 0 END,"
                " waiting = CASE WHEN dead_letter = 1 THEN 1"
                "  WHEN attempts < max_attempts THEN 1"
                "  WHEN dead_letter_url IS NOT NULL THEN 1 ELSE 0 END"
                " WHERE attempt_open = 1",
                err);
        if (!st)
                return -EIO;
        int rc = STORE_RUN(s, st, STORE_I64(now));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "recover deliveries");
        *ret = sqlite3_changes(s->db);
        return 0;
}
