/*  Event counts (R10a): every other service's lifecycle events, per (source, topic),
    each counted exactly once.

    The consumer library (common/consumer.h) moves the cursor and the count in one
    transaction, so no crash, restart or dropped PUB message loses or doubles a count. A
    body that breaks its topic's declaration is refused - dead-lettered with the
    decoder's reason - rather than counted: the counts are of valid events. A topic this
    build does not know (a newer service's) is counted as it is. */
#include "metrics.h"

#include "common/config.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Big enough for any declared event's decoded struct. */
typedef union {
#define S_MEMBER(ident, topic) odp_##ident##_t ident;
    ODP_EVENTS(S_MEMBER)
#undef S_MEMBER
} s_any_event_t;

static odp_event_rc_t s_count(odp_event_t *ev, void *arg)
{
    (void)arg;
    const odp_msgdef_t *def = odp_event_find(ev->topic, ev->topic_len);
    if (def) {
        s_any_event_t decoded;
        odp_error_t e;
        if (odp_decode_fields(def, ev->body, &decoded, &e) < 0) {
            snprintf(ev->why, sizeof ev->why, "%.40s: %.160s%s%.40s", def->name, e.message,
                     e.field[0] ? " field=" : "", e.field);
            return ODP_EVENT_REFUSE;
        }
    } else if (!odp_utf8_valid(ev->topic, ev->topic_len)) {
        snprintf(ev->why, sizeof ev->why, "the topic is not UTF-8 text");
        return ODP_EVENT_REFUSE;
    }
    char seq[24];
    snprintf(seq, sizeof seq, "%" PRId64, ev->seq);
    const char *vals[3] = {ev->source, ev->topic, seq};
    int lens[3] = {-1, (int)ev->topic_len, -1};
    PGresult *r = odp_db_exec(ev->db,
                              "INSERT INTO event_counts (source, topic, count, last_seq) "
                              "VALUES ($1, $2, 1, $3::bigint) ON CONFLICT (source, topic) DO "
                              "UPDATE SET count = event_counts.count + 1, "
                              "last_seq = excluded.last_seq, last_at = now()",
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_event_db_fail(ev, r, "the event count");
    PQclear(r);
    return ODP_EVENT_DONE;
}

/*  The counts come from events alone, so per source the counts plus the dead letters
    must equal the cursor. When they do not (a table restored from another backup, an
    edit by hand) the source is counted again from its first event, which replay makes
    exact again. Run at start and after every reconnection, before any event. */
static int s_reconcile(odp_db_t *db, void *arg)
{
    (void)arg;
    PGresult *r =
        odp_db_exec(db,
                    "SELECT c.source, c.last, "
                    "coalesce((SELECT sum(e.count) FROM event_counts e "
                    "WHERE e.source = c.source), 0) + "
                    "(SELECT count(*) FROM consumer_dead_letter d WHERE d.source = c.source) "
                    "FROM consumer_cursor c ORDER BY c.source",
                    0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *source = PQgetvalue(r, i, 0);
        const char *cursor = PQgetvalue(r, i, 1);
        const char *seen = PQgetvalue(r, i, 2);
        if (strtoll(cursor, NULL, 10) == strtoll(seen, NULL, 10)) {
            odp_info("event=metrics.reconciled source=%s events=%s", source, cursor);
            continue;
        }
        odp_error("event=metrics.recount source=%s cursor=%s counted=%s msg=\"counts do not "
                  "match the cursor; counting this source again from its first event\"",
                  source, cursor, seen);
        const char *vals[1] = {source};
        rc = odp_db_begin(db);
        if (rc == 0)
            rc = odp_db_cmd(db, "DELETE FROM event_counts WHERE source = $1", 1, vals, NULL);
        if (rc == 0)
            rc =
                odp_db_cmd(db, "DELETE FROM consumer_dead_letter WHERE source = $1", 1, vals, NULL);
        if (rc == 0)
            rc = odp_db_cmd(db, "UPDATE consumer_cursor SET last = 0 WHERE source = $1", 1, vals,
                            NULL);
        if (rc == 0)
            rc = odp_db_commit(db);
        if (rc < 0)
            odp_db_rollback(db);
    }
    PQclear(r);
    return rc;
}

odp_consumer_t *metrics_events_start(odp_service_t *svc)
{
    odp_consumer_cfg_t cfg = {.on_event = s_count, .on_start = s_reconcile};
    odp_consumer_t *c = odp_consumer_new_service(svc, &cfg);
    if (!c)
        return NULL;
    for (int i = 0; i < ODP_NSERVICES; i++) {
        const char *source = odp_service_names[i];
        if (strcmp(source, odp_service_name(svc)) == 0)
            continue;
        char err[256];
        if (odp_consumer_follow(c, source, 1, err, sizeof err) < 0) {
            odp_error("event=metrics.follow_failed source=%s error=\"%s\"", source, err);
            odp_consumer_destroy(&c);
            return NULL;
        }
    }
    return c;
}
