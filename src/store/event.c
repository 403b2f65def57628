/* SPDX-License-Identifier: MIT */
/*
 * event.c — lifecycle events (control-plane.md §12.1): written in the transaction of the
 * sandbox change they describe, fanned out into one delivery per subscribed webhook in that
 * same transaction, listed per team, kept 7 days.
 */
#include "store-internal.h"

#include "lib/macro.h"

#include "lib/banned.h"

void event_rec_free(struct event_rec *e)
{
        if (!e)
                return;
        free(e->id);
        free(e->type);
        free(e->sandbox_id);
        free(e->team_id);
        json_decref(e->body);
        free(e);
}

STORE_DEFINE_LIST_FREE(event_list_free, struct event_rec, event_rec_free)

int store_event_insert_locked(struct store *s, const struct event_rec *ev, struct cove_err **err)
{
        int64_t seq;
        int rc;

        {
                cleanup_stmt sqlite3_stmt *st = store_stmt(
                        s, STMT_EVENT_INSERT,
                        "INSERT INTO lifecycle_events (id, type, sandbox_id, team_id, ts, body)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        err);
                if (!st)
                        return -EIO;
                rc = STORE_RUN(s, st, STORE_TEXT(ev->id), STORE_TEXT(ev->type),
                               STORE_TEXT(ev->sandbox_id), STORE_TEXT(ev->team_id),
                               STORE_I64(ev->ts), STORE_JSON(ev->body, "{}"));
                if (rc != SQLITE_DONE)
                        return store_sql_error(s, rc, err, "record event '%s'", ev->id);
                seq = sqlite3_last_insert_rowid(s->db);
        }
        /* One delivery per enabled webhook of the team subscribed to this type, each with the
         * webhook's policy of now. IDs: "dlv_" + 20 lower-case hex, within [a-z0-9]. */
        cleanup_stmt sqlite3_stmt *st = store_stmt(
                s, STMT_EVENT_FANOUT,
                "INSERT INTO webhook_deliveries (id, event_id, event_seq, webhook_id, team_id,"
                " sandbox_id, url, status, max_attempts, delays, dead_letter_url, waiting,"
                " created_at, next_attempt_at)"
                " SELECT 'dlv_' || lower(hex(randomblob(10))), ?1, ?2, w.id, w.team_id, ?3, w.url,"
                " 'pending', w.max_attempts, coalesce(w.delays, '[10,60]'),"
                " CASE WHEN w.dead_letter_enabled THEN w.dead_letter_url END, 1, ?4, ?4"
                " FROM webhooks w WHERE w.team_id = ?5 AND w.enabled = 1"
                " AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE value = ?6)",
                err);
        if (!st)
                return -EIO;
        rc = STORE_RUN(s, st, STORE_TEXT(ev->id), STORE_I64(seq), STORE_TEXT(ev->sandbox_id),
                       STORE_I64(ev->ts), STORE_TEXT(ev->team_id), STORE_TEXT(ev->type));
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, err, "create deliveries of event '%s'", ev->id);
        if (sqlite3_changes(s->db) > 0)
                s->notify_pending = true;
        return 0;
}

static int event_from_row(sqlite3_stmt *st, struct event_rec **ret, struct cove_err **err)
{
        struct event_rec *e = xzalloc(sizeof(*e));
        e->seq = store_col_i64(st, 0);
        e->id = store_col_text(st, 1);
        e->type = store_col_text(st, 2);
        e->sandbox_id = store_col_text(st, 3);
        e->team_id = store_col_text(st, 4);
        e->ts = store_col_i64(st, 5);
        int r = store_col_json(st, 6, "{}", &e->body, err);
        if (r < 0) {
                event_rec_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

STORE_DEFINE_COLLECT(event, struct event_rec, event_rec_free)

int store_event_list(struct store *s, const struct event_query *q, struct event_rec ***ret,
                     struct cove_err **err)
{
#define EVENT_LIST_SQL(order)                                                                      \
        "SELECT seq, id, type, sandbox_id, team_id, ts, body FROM lifecycle_events"                \
        " WHERE team_id = ?1 AND (?2 IS NULL OR sandbox_id = ?2)"                                  \
        " AND (?3 IS NULL OR type IN (SELECT value FROM json_each(?3)))"                           \
        " ORDER BY seq " order " LIMIT ?4 OFFSET ?5"
        cleanup_free char *types = NULL;
        if (q->types) {
                json_t *a = json_array();
                for (char **t = q->types; *t; t++)
                        json_array_append_new(a, json_string(*t));
                types = json_dumps(a, JSON_COMPACT);
                json_decref(a);
        }

        STORE_LOCK(s);
        cleanup_stmt sqlite3_stmt *st =
                q->order_asc ? store_stmt(s, STMT_EVENT_LIST_ASC, EVENT_LIST_SQL("ASC"), err)
                             : store_stmt(s, STMT_EVENT_LIST_DESC, EVENT_LIST_SQL("DESC"), err);
#undef EVENT_LIST_SQL
        if (!st)
                return -EIO;
        int rc = STORE_BIND(st, STORE_TEXT(q->team_id), STORE_TEXT(q->sandbox_id),
                            STORE_TEXT(types), STORE_I64(q->limit), STORE_I64(q->offset));
        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, err, "list events");
        return event_collect(s, st, "list events", ret, err);
}

int store_event_prune(struct store *s, int64_t before_ms, struct cove_err **err)
{
        STORE_LOCK(s);
        int r = store_begin(s, err);
        if (r < 0)
                return r;
        static const struct {
                enum store_stmt_id id;
                const char *sql;
        } prunes[] = {
                { STMT_EVENT_PRUNE, "DELETE FROM lifecycle_events WHERE ts < ?1" },
                /* A delivery still waiting after 7 days goes too: its event is gone. */
                { STMT_DELIVERY_PRUNE, "DELETE FROM webhook_deliveries WHERE created_at < ?1" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(prunes) && r >= 0; i++) {
                cleanup_stmt sqlite3_stmt *st = store_stmt(s, prunes[i].id, prunes[i].sql, err);
                if (!st) {
                        r = -EIO;
                        break;
                }
                int rc = STORE_RUN(s, st, STORE_I64(before_ms));
                if (rc != SQLITE_DONE)
                        r = store_sql_error(s, rc, err, "prune events");
        }
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        return store_commit(s, err);
}
