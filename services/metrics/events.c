/*  Every other service's lifecycle events, each handled exactly once (R10a): counted per
    (source, topic) in event_counts, written as facts into the tables the statistics, the
    assessment and the index are computed from (s_facts below), and kept as CloudEvents in
    event_log for the webhooks (webhook.c).

    The consumer library (common/consumer.h) moves the cursor, the count and the facts in
    one transaction, so no crash, restart or dropped PUB message loses or doubles one. A
    body that breaks its topic's declaration is refused - dead-lettered with the
    decoder's reason - rather than counted: the counts are of valid events. A topic this
    build does not know (a newer service's) is counted as it is. */
#include "metrics.h"

#include "common/cloudevent.h"
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

/*  ---- facts: which event writes what ----------------------------------------------------

    The one place that maps events to the tables of 002_facts.sql: one row per (source,
    topic), the statement it runs and the body fields that are its parameters $1, $2 ...
    in order. A field absent from the body is NULL; text goes as text, whole numbers as
    text-format numbers, booleans as true/false. Every statement is idempotent for one
    event (inserts skip existing keys, updates set values), so a source counted again from
    its first event (s_reconcile) ends with the same facts. A new service's events - the
    query service's views, queries, downloads and feedback - are one more row each here,
    nothing else: the statistics already read the access and feedback tables. */
typedef struct {
    const char *source;
    const char *topic;
    const char *sql;
    const char *fields[10];
} s_fact_t;

static const s_fact_t s_facts[] = {
    {"registrar",
     "catalog.planned",
     "INSERT INTO plans (id, department, title, due_on, planned_at) VALUES ($1::bigint, $2, $3, "
     "$4::date, $5::timestamptz) ON CONFLICT (id) DO NOTHING",
     {"id", "department", "title", "due_on", "at"}},
    {"registrar",
     "catalog.plan_cancelled",
     "UPDATE plans SET cancelled_at = $2::timestamptz WHERE id = $1::bigint",
     {"id", "at"}},
    {"registrar",
     "catalog.catalogued",
     "INSERT INTO entries (resource, department, plan, catalogued_at) VALUES ($1, $2, "
     "$3::bigint, $4::timestamptz) ON CONFLICT (resource) DO NOTHING",
     {"resource", "department", "plan", "at"}},
    {"registrar",
     "catalog.registered",
     "UPDATE entries SET registered_at = $2::timestamptz WHERE resource = $1",
     {"resource", "at"}},
    {"registrar",
     "catalog.refused",
     "UPDATE entries SET refused_at = $2::timestamptz WHERE resource = $1",
     {"resource", "at"}},
    {"registrar",
     "data.received",
     "INSERT INTO versions (upload, resource, table_name, version, kind, sha256, size, "
     "rows_received, rows_staged, rows_rejected, received_at, pushed_by) VALUES ($1::bigint, "
     "$2, $3, $4::bigint, $5, $6, $7::bigint, $8::bigint, $9::bigint, $10::bigint, "
     "$11::timestamptz, $12) ON CONFLICT (upload) DO NOTHING",
     {"upload", "resource", "table", "version", "kind", "sha256", "size", "rows_received",
      "rows_staged", "rows_rejected"}},
    {"registrar",
     "data.failed",
     "INSERT INTO push_failures (upload, resource, code, failed_at) VALUES ($1::bigint, $2, $3, "
     "$4::timestamptz) ON CONFLICT (upload) DO NOTHING",
     {"upload", "resource", "code", "at"}},
    {"registrar",
     "data.withdrawn",
     "UPDATE versions SET withdrawn_at = $2::timestamptz WHERE upload = $1::bigint",
     {"upload", "at"}},
    {"reviewer",
     "review.started",
     "INSERT INTO reviews (upload, resource, department, started_at) VALUES ($1::bigint, $2, $3, "
     "$4::timestamptz) ON CONFLICT (upload) DO UPDATE SET started_at = "
     "coalesce(reviews.started_at, excluded.started_at)",
     {"upload", "resource", "department", "at"}},
    {"reviewer",
     "review.flagged",
     "INSERT INTO reviews (upload, resource, department, findings, quarantined) VALUES "
     "($1::bigint, $2, $3, $4::bigint, $5::bigint) ON CONFLICT (upload) DO UPDATE SET findings = "
     "excluded.findings, quarantined = excluded.quarantined",
     {"upload", "resource", "department", "findings", "quarantined"}},
    {"reviewer",
     "quarantine.isolated",
     "INSERT INTO quarantine_isolated (upload, rows, isolated_at) VALUES ($1::bigint, "
     "$2::bigint, $3::timestamptz) ON CONFLICT (upload) DO UPDATE SET rows = excluded.rows",
     {"upload", "count", "at"}},
    {"reviewer",
     "quarantine.handled",
     "INSERT INTO quarantine_handled (upload, row_no, outcome, handled_at) VALUES ($1::bigint, "
     "$2::bigint, $3, $4::timestamptz) ON CONFLICT (upload, row_no) DO UPDATE SET outcome = "
     "excluded.outcome, handled_at = excluded.handled_at",
     {"upload", "row", "outcome", "at"}},
    {"reviewer",
     "review.approved",
     "INSERT INTO reviews (upload, resource, department, first_decision, approved_at, "
     "approved_by) VALUES ($1::bigint, $2, $3, 'approved', $4::timestamptz, $5) ON CONFLICT "
     "(upload) DO UPDATE SET first_decision = coalesce(reviews.first_decision, 'approved'), "
     "approved_at = excluded.approved_at, approved_by = excluded.approved_by",
     {"upload", "resource", "department", "at", "actor"}},
    {"reviewer",
     "review.rejected",
     "INSERT INTO reviews (upload, resource, department, first_decision, rejected_at) VALUES "
     "($1::bigint, $2, $3, 'rejected', $4::timestamptz) ON CONFLICT (upload) DO UPDATE SET "
     "first_decision = coalesce(reviews.first_decision, 'rejected'), rejected_at = "
     "excluded.rejected_at",
     {"upload", "resource", "department", "at"}},
    {"publisher",
     "release.published",
     "INSERT INTO releases (resource, version, rows, sha256, published_at) VALUES ($1, "
     "$2::bigint, coalesce($3::bigint, 0), coalesce($4, ''), $5::timestamptz) ON CONFLICT "
     "(resource, version) DO NOTHING",
     {"resource", "version", "rows", "sha256", "at"}},
    {"publisher",
     "release.superseded",
     "UPDATE releases SET superseded_at = $3::timestamptz WHERE resource = $1 AND version = "
     "$2::bigint",
     {"resource", "version", "at"}},
    {"publisher",
     "release.withdrawn",
     "UPDATE releases SET withdrawn_at = $3::timestamptz, restored_at = NULL WHERE resource = "
     "$1 AND version = $2::bigint",
     {"resource", "version", "at"}},
    {"publisher",
     "release.restored",
     "UPDATE releases SET restored_at = $3::timestamptz, withdrawn_at = NULL WHERE resource = "
     "$1 AND version = $2::bigint",
     {"resource", "version", "at"}},
};

/*  The value of key in the map body, or NULL. */
static const msgpack_object *s_field(const msgpack_object *body, const char *key)
{
    if (body->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        const msgpack_object *k = &body->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &body->via.map.ptr[i].val;
    }
    return NULL;
}

/*  Parameters go in text format (NUL-terminated copies): a binary text parameter would be
    read as the binary form of the type the statement casts it to (date, timestamptz). */
static odp_event_rc_t s_fact(odp_event_t *ev, const s_fact_t *f)
{
    const char *names[12];
    int n = 0;
    for (; n < 10 && f->fields[n]; n++)
        names[n] = f->fields[n];
    /*  data.received's time and pusher are the envelope's: parameters after the fields. */
    if (strcmp(f->topic, "data.received") == 0) {
        names[n++] = "at";
        names[n++] = "actor";
    }
    char *vals[12] = {0};
    odp_event_rc_t rc = ODP_EVENT_DONE;
    for (int i = 0; i < n && rc == ODP_EVENT_DONE; i++) {
        const msgpack_object *v = s_field(ev->body, names[i]);
        if (!v || v->type == MSGPACK_OBJECT_NIL)
            continue;
        if (v->type == MSGPACK_OBJECT_STR)
            vals[i] = strndup(v->via.str.ptr, v->via.str.size);
        else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            rc = asprintf(&vals[i], "%" PRIu64, v->via.u64) < 0 ? ODP_EVENT_RETRY : rc;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            rc = asprintf(&vals[i], "%" PRId64, v->via.i64) < 0 ? ODP_EVENT_RETRY : rc;
        else if (v->type == MSGPACK_OBJECT_BOOLEAN)
            vals[i] = strdup(v->via.boolean ? "true" : "false");
        else {
            snprintf(ev->why, sizeof ev->why, "%s: field %s has a type metrics cannot store",
                     f->topic, names[i]);
            rc = ODP_EVENT_REFUSE;
        }
        if (rc == ODP_EVENT_DONE && !vals[i])
            rc = ODP_EVENT_RETRY;
    }
    if (rc == ODP_EVENT_DONE) {
        PGresult *r = odp_db_exec(ev->db, f->sql, n, (const char *const *)vals, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = odp_event_db_fail(ev, r, f->topic);
        else
            PQclear(r);
    }
    for (int i = 0; i < n; i++)
        free(vals[i]);
    return rc;
}

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
    const char *vals[4] = {ev->source, ev->topic, seq, NULL};
    int lens[4] = {-1, (int)ev->topic_len, -1, -1};
    PGresult *r = odp_db_exec(ev->db,
                              "INSERT INTO event_counts (source, topic, count, last_seq) "
                              "VALUES ($1, $2, 1, $3::bigint) ON CONFLICT (source, topic) DO "
                              "UPDATE SET count = event_counts.count + 1, "
                              "last_seq = excluded.last_seq, last_at = now()",
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_event_db_fail(ev, r, "the event count");
    PQclear(r);
    for (size_t i = 0; i < sizeof s_facts / sizeof s_facts[0]; i++) {
        const s_fact_t *f = &s_facts[i];
        if (strlen(f->topic) == ev->topic_len && memcmp(f->topic, ev->topic, ev->topic_len) == 0 &&
            strcmp(f->source, ev->source) == 0) {
            odp_event_rc_t rc = s_fact(ev, f);
            if (rc != ODP_EVENT_DONE)
                return rc;
            break;
        }
    }
    /*  The webhooks' copy, in the same transaction (design.md: effects outside PostgreSQL
        belong in a table the handler writes, sent later by their own loop). */
    json_t *ce = odp_cloudevent(ev->source, ev->seq, ev->topic, ev->topic_len, ev->body);
    char *text = ce ? json_dumps(ce, JSON_COMPACT) : NULL;
    json_decref(ce);
    if (!text)
        return ODP_EVENT_RETRY;
    vals[3] = text;
    r = odp_db_exec(ev->db,
                    "INSERT INTO event_log (source, seq, topic, cloudevent) VALUES ($1, "
                    "$3::bigint, $2, $4) ON CONFLICT (source, seq) DO NOTHING",
                    4, vals, lens);
    free(text);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_event_db_fail(ev, r, "the event log");
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
