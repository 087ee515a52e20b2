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

    The one place that maps events to the tables of 002_facts.sql and 005_query_facts.sql:
    one row per (source, topic), the statement it runs and the body fields (envelope
    included) that are its parameters $1, $2 ... in order. A field absent from the body is
    NULL; text goes as text, whole numbers as text-format numbers, booleans as true/false.
    Every statement is idempotent for one event (inserts skip existing keys - usage.counted
    is keyed by its own number, since its counts add up - and updates set values), so a
    source counted again from its first event (s_reconcile) ends with the same facts. */
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
    {"query",
     "usage.counted",
     "INSERT INTO usage_counted (seq, resource, day, views, queries, downloads) VALUES "
     "($1::bigint, $2, $3::date, $4::bigint, $5::bigint, $6::bigint) ON CONFLICT (seq) DO NOTHING",
     {"seq", "resource", "day", "views", "queries", "downloads"}},
    {"query",
     "usage.user_counted",
     "INSERT INTO usage_users (resource, day, actor) VALUES ($1, $2::date, $3) ON CONFLICT "
     "(resource, day, actor) DO NOTHING",
     {"resource", "day", "user"}},
    {"query",
     "application.received",
     "INSERT INTO applications (id, resource, department, actor, received_at) VALUES "
     "($1::bigint, $2, $3, $4, $5::timestamptz) ON CONFLICT (id) DO NOTHING",
     {"id", "resource", "department", "actor", "at"}},
    {"query",
     "application.decided",
     "UPDATE applications SET decided_at = $2::timestamptz, granted = $3::boolean, response_s = "
     "$4::bigint WHERE id = $1::bigint",
     {"id", "at", "granted", "response_s"}},
    {"query",
     "feedback.received",
     "INSERT INTO feedback (source, id, resource, kind, opened_at, department, actor) VALUES "
     "('query', $1, $2, $3, $4::timestamptz, $5, $6) ON CONFLICT (source, id) DO NOTHING",
     {"id", "resource", "kind", "at", "department", "actor"}},
    {"query",
     "feedback.answered",
     "UPDATE feedback SET answered_at = coalesce(feedback.answered_at, $2::timestamptz) WHERE "
     "source = 'query' AND id = $1",
     {"id", "at"}},
    {"query",
     "feedback.resolved",
     "UPDATE feedback SET resolved = true, resolved_at = $2::timestamptz WHERE source = 'query' "
     "AND id = $1",
     {"id", "at"}},
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

#define S_NFACTS   (sizeof s_facts / sizeof s_facts[0])
#define S_MAXPARAM 12

/*  The fact f writes for an event, or NULL. */
static const s_fact_t *s_fact_of(const odp_event_t *ev)
{
    for (size_t i = 0; i < S_NFACTS; i++) {
        const s_fact_t *f = &s_facts[i];
        if (strlen(f->topic) == ev->topic_len && memcmp(f->topic, ev->topic, ev->topic_len) == 0 &&
            strcmp(f->source, ev->source) == 0)
            return f;
    }
    return NULL;
}

/*  f's parameters for ev as NUL-terminated text (NULL for an absent field), into vals;
    their number in *n. The caller frees vals[0 .. *n - 1] whatever the answer. Text
    format: a binary text parameter would be read as the binary form of the type the
    statement casts it to (date, timestamptz). */
static odp_event_rc_t s_fact_values(odp_event_t *ev, const s_fact_t *f, char **vals, int *n)
{
    const char *names[S_MAXPARAM];
    int k = 0;
    for (; k < 10 && f->fields[k]; k++)
        names[k] = f->fields[k];
    /*  data.received's time and pusher are the envelope's: parameters after the fields. */
    if (strcmp(f->topic, "data.received") == 0) {
        names[k++] = "at";
        names[k++] = "actor";
    }
    *n = k;
    for (int i = 0; i < k; i++)
        vals[i] = NULL;
    for (int i = 0; i < k; i++) {
        const msgpack_object *v = s_field(ev->body, names[i]);
        if (!v || v->type == MSGPACK_OBJECT_NIL)
            continue;
        if (v->type == MSGPACK_OBJECT_STR)
            vals[i] = strndup(v->via.str.ptr, v->via.str.size);
        else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (asprintf(&vals[i], "%" PRIu64, v->via.u64) < 0)
                vals[i] = NULL;
        } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            if (asprintf(&vals[i], "%" PRId64, v->via.i64) < 0)
                vals[i] = NULL;
        } else if (v->type == MSGPACK_OBJECT_BOOLEAN)
            vals[i] = strdup(v->via.boolean ? "true" : "false");
        else {
            snprintf(ev->why, sizeof ev->why, "%s: field %s has a type metrics cannot store",
                     f->topic, names[i]);
            return ODP_EVENT_REFUSE;
        }
        if (!vals[i])
            return ODP_EVENT_RETRY;
    }
    return ODP_EVENT_DONE;
}

static odp_event_rc_t s_fact(odp_event_t *ev, const s_fact_t *f)
{
    char *vals[S_MAXPARAM];
    int n = 0;
    odp_event_rc_t rc = s_fact_values(ev, f, vals, &n);
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

/*  A body that breaks its topic's declaration, or a topic that is not text: refused. */
static odp_event_rc_t s_valid(odp_event_t *ev)
{
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
    return ODP_EVENT_DONE;
}

/*  Whether a webhook follows source: only then is an event kept in event_log. A webhook
    starts at metrics' cursor when it is added (reports.c), so what was handled before it
    existed is never asked for; without one, writing the CloudEvent would cost most of a
    replay page for rows the next prune deletes. 1, 0, or -1 when the query failed. */
static int s_logged(odp_db_t *db, const char *source)
{
    const char *vals[1] = {source};
    PGresult *r = odp_db_exec(db, "SELECT EXISTS (SELECT 1 FROM webhook_cursor WHERE source = $1)",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    int yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return yes;
}

static odp_event_rc_t s_count(odp_event_t *ev, void *arg)
{
    (void)arg;
    odp_event_rc_t valid = s_valid(ev);
    if (valid != ODP_EVENT_DONE)
        return valid;
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
    const s_fact_t *f = s_fact_of(ev);
    if (f) {
        odp_event_rc_t rc = s_fact(ev, f);
        if (rc != ODP_EVENT_DONE)
            return rc;
    }
    /*  The webhooks' copy, in the same transaction (design.md: effects outside PostgreSQL
        belong in a table the handler writes, sent later by their own loop). */
    int logged = s_logged(ev->db, ev->source);
    if (logged < 0)
        return odp_event_db_fail(ev, NULL, "the webhooks");
    if (!logged)
        return ODP_EVENT_DONE;
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

/*  ---- pages: the same effects, set-based --------------------------------------------------

    A replay page (consumer.h, on_page) is written with a few statements rather than three
    per event: the counts summed per topic, the event log in one insert, and the facts in
    runs - consecutive events of one fact statement, each run one statement over arrays
    (s_page_sql: the fact's own statement with its parameters read from unnest). A run
    ends where its fact changes or where an event's key (its first field) is already in
    the run, so every row a run statement touches is touched once and the order of events
    that concern one row is kept. Anything unusual - a refusal, a failed statement -
    answers -1, and the consumer hands the page's events to s_count one by one. */

static char s_page_sqls[S_NFACTS][1200];

static int s_nparams(const s_fact_t *f)
{
    int n = 0;
    while (n < 10 && f->fields[n])
        n++;
    return strcmp(f->topic, "data.received") == 0 ? n + 2 : n;
}

/*  f's statement over arrays: $k becomes u.pk of unnest($1::text[] ... $n::text[]) AS
    u(p1 ... pn); an INSERT's VALUES (...) becomes SELECT ... FROM that, an UPDATE gets
    it as its FROM. 0, or -1 when the statement is not of either shape. */
static int s_page_sql_build(const s_fact_t *f, char *out, size_t size)
{
    char body[1024], from[512];
    size_t k = 0;
    for (const char *p = f->sql; *p && k + 16 < sizeof body; p++) {
        if (*p == '$' && p[1] >= '1' && p[1] <= '9') {
            char *end;
            long v = strtol(p + 1, &end, 10);
            k += (size_t)snprintf(body + k, sizeof body - k, "u.p%ld", v);
            p = end - 1;
        } else
            body[k++] = *p;
    }
    body[k] = '\0';
    int n = s_nparams(f);
    size_t m = (size_t)snprintf(from, sizeof from, "unnest(");
    for (int i = 1; i <= n; i++)
        m += (size_t)snprintf(from + m, sizeof from - m, "%s$%d::text[]", i > 1 ? ", " : "", i);
    m += (size_t)snprintf(from + m, sizeof from - m, ") AS u(");
    for (int i = 1; i <= n; i++)
        m += (size_t)snprintf(from + m, sizeof from - m, "%sp%d", i > 1 ? ", " : "", i);
    snprintf(from + m, sizeof from - m, ")");
    int w = -1;
    if (strncmp(body, "INSERT ", 7) == 0) {
        const char *v = strstr(body, " VALUES (");
        if (!v)
            return -1;
        const char *open = v + 8;
        const char *q = open;
        int depth = 0;
        for (; *q; q++) {
            depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
            if (depth == 0)
                break;
        }
        if (!*q)
            return -1;
        w = snprintf(out, size, "%.*s SELECT %.*s FROM %s%s", (int)(v - body), body,
                     (int)(q - open - 1), open + 1, from, q + 1);
    } else if (strncmp(body, "UPDATE ", 7) == 0) {
        const char *where = strstr(body, " WHERE ");
        if (!where)
            return -1;
        w = snprintf(out, size, "%.*s FROM %s%s", (int)(where - body), body, from, where);
    }
    return w > 0 && (size_t)w < size ? 0 : -1;
}

/*  A PostgreSQL array literal of text, built element by element. */
typedef struct {
    char *buf;
    size_t len;
    size_t cap;
    size_t n;
    bool bad; /* out of memory */
} s_arr_t;

static void s_arr_put(s_arr_t *a, const char *p, size_t len)
{
    if (a->bad)
        return;
    if (a->len + len + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (a->len + len + 1 > cap)
            cap *= 2;
        char *b = realloc(a->buf, cap);
        if (!b) {
            a->bad = true;
            return;
        }
        a->buf = b;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, p, len);
    a->len += len;
    a->buf[a->len] = '\0';
}

static int s_arr_open(s_arr_t *a)
{
    *a = (s_arr_t){0};
    s_arr_put(a, "{", 1);
    return a->bad ? -1 : 0;
}

/*  v of len bytes, or NULL. */
static void s_arr_add(s_arr_t *a, const char *v, size_t len)
{
    if (a->n++)
        s_arr_put(a, ",", 1);
    if (!v) {
        s_arr_put(a, "NULL", 4);
        return;
    }
    s_arr_put(a, "\"", 1);
    for (size_t i = 0; i < len;) {
        size_t run = 0;
        while (i + run < len && v[i + run] != '"' && v[i + run] != '\\')
            run++;
        s_arr_put(a, v + i, run);
        i += run;
        if (i < len) {
            char esc[2] = {'\\', v[i++]};
            s_arr_put(a, esc, 2);
        }
    }
    s_arr_put(a, "\"", 1);
}

/*  The literal (a->buf), or -1. */
static int s_arr_close(s_arr_t *a)
{
    s_arr_put(a, "}", 1);
    return a->bad ? -1 : 0;
}

static void s_arr_free(s_arr_t *a)
{
    free(a->buf);
    *a = (s_arr_t){0};
}

/*  One statement whose parameters are the literals of arrs. 0 / -1; a statement that
    returns rows gives its first value's truth in *yes (may be NULL otherwise). */
static int s_page_exec(odp_db_t *db, const char *sql, s_arr_t *arrs, int n, const char *first,
                       bool *yes)
{
    const char *vals[S_MAXPARAM + 1];
    int k = 0;
    if (first)
        vals[k++] = first;
    for (int i = 0; i < n; i++) {
        if (s_arr_close(&arrs[i]) < 0)
            return -1;
        vals[k++] = arrs[i].buf;
    }
    PGresult *r = odp_db_exec(db, sql, k, vals, NULL);
    int rc = -1;
    if (r && PQresultStatus(r) == PGRES_COMMAND_OK && !yes)
        rc = 0;
    else if (r && PQresultStatus(r) == PGRES_TUPLES_OK && yes && PQntuples(r) == 1) {
        *yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        rc = 0;
    }
    PQclear(r);
    return rc;
}

/*  The counts, and in the same round trip whether a webhook follows the source (s_logged)
    into *logged. */
static int s_page_counts(odp_event_t *evs, size_t n, bool *logged)
{
    /*  Distinct topics, first seen first; a page has few. */
    size_t *first = malloc(n * sizeof *first);
    int64_t *count = malloc(n * sizeof *count);
    int64_t *last = malloc(n * sizeof *last);
    size_t nt = 0;
    int rc = first && count && last ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t t = 0;
        while (t < nt && !(evs[first[t]].topic_len == evs[i].topic_len &&
                           memcmp(evs[first[t]].topic, evs[i].topic, evs[i].topic_len) == 0))
            t++;
        if (t == nt) {
            first[nt] = i;
            count[nt++] = 0;
        }
        count[t]++;
        last[t] = evs[i].seq; /* the page is in order */
    }
    s_arr_t a[3];
    int opened = 0;
    for (; opened < 3 && rc == 0; opened++)
        rc = s_arr_open(&a[opened]);
    for (size_t t = 0; t < nt && rc == 0; t++) {
        char c[24], l[24];
        snprintf(c, sizeof c, "%" PRId64, count[t]);
        snprintf(l, sizeof l, "%" PRId64, last[t]);
        const odp_event_t *ev = &evs[first[t]];
        s_arr_add(&a[0], ev->topic, ev->topic_len);
        s_arr_add(&a[1], c, strlen(c));
        s_arr_add(&a[2], l, strlen(l));
    }
    if (rc == 0)
        rc = s_page_exec(evs[0].db,
                         "WITH c AS (INSERT INTO event_counts (source, topic, count, last_seq) "
                         "SELECT $1, u.t, u.c::bigint, u.s::bigint "
                         "FROM unnest($2::text[], $3::text[], $4::text[]) AS u(t, c, s) "
                         "ON CONFLICT (source, topic) DO UPDATE SET "
                         "count = event_counts.count + excluded.count, "
                         "last_seq = excluded.last_seq, last_at = now()) "
                         "SELECT EXISTS (SELECT 1 FROM webhook_cursor WHERE source = $1)",
                         a, 3, evs[0].source, logged);
    for (int i = 0; i < opened; i++)
        s_arr_free(&a[i]);
    free(first);
    free(count);
    free(last);
    return rc;
}

/*  true when key is in the run's table (open addressing, nkeys slots, at most half of
    them used) already; otherwise it is added. */
static bool s_key_seen(const char **keys, size_t nkeys, const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    for (size_t i = h % nkeys;; i = (i + 1) % nkeys) {
        if (!keys[i]) {
            keys[i] = key;
            return false;
        }
        if (strcmp(keys[i], key) == 0)
            return true;
    }
}

/*  Events [i, n) from i on while they share f and their keys differ: one statement. The
    number taken, or 0 on failure. */
static size_t s_page_run(odp_event_t *evs, size_t i, size_t n, const s_fact_t *f)
{
    int np = s_nparams(f);
    s_arr_t a[S_MAXPARAM];
    size_t nkeys = 2 * (n - i) + 1;
    char **firsts = calloc(n - i, sizeof *firsts);
    const char **keys = calloc(nkeys, sizeof *keys);
    int opened = 0;
    bool ok = firsts && keys;
    for (; opened < np && ok; opened++)
        ok = s_arr_open(&a[opened]) == 0;
    size_t j = i;
    for (; ok && j < n && s_fact_of(&evs[j]) == f; j++) {
        char *vals[S_MAXPARAM];
        int k = 0;
        ok = s_fact_values(&evs[j], f, vals, &k) == ODP_EVENT_DONE;
        if (ok && vals[0] && s_key_seen(keys, nkeys, vals[0])) {
            for (int x = 0; x < k; x++)
                free(vals[x]);
            break;
        }
        for (int x = 0; ok && x < k; x++)
            s_arr_add(&a[x], vals[x], vals[x] ? strlen(vals[x]) : 0);
        /*  The key stays alive in firsts while the table points at it. */
        firsts[j - i] = k > 0 ? vals[0] : NULL;
        for (int x = 1; x < k; x++)
            free(vals[x]);
        if (k > 0 && !ok) {
            free(firsts[j - i]);
            firsts[j - i] = NULL;
        }
    }
    if (ok)
        ok = s_page_exec(evs[i].db, s_page_sqls[f - s_facts], a, np, NULL, NULL) == 0;
    for (int x = 0; x < opened; x++)
        s_arr_free(&a[x]);
    if (firsts)
        for (size_t x = 0; x < n - i; x++)
            free(firsts[x]);
    free(firsts);
    free(keys);
    return ok ? j - i : 0;
}

static int s_page_log(odp_event_t *evs, size_t n)
{
    s_arr_t a[3];
    int opened = 0, rc = 0;
    for (; opened < 3 && rc == 0; opened++)
        rc = s_arr_open(&a[opened]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        odp_event_t *ev = &evs[i];
        json_t *ce = odp_cloudevent(ev->source, ev->seq, ev->topic, ev->topic_len, ev->body);
        char *text = ce ? json_dumps(ce, JSON_COMPACT) : NULL;
        json_decref(ce);
        if (!text) {
            rc = -1;
            break;
        }
        char seq[24];
        snprintf(seq, sizeof seq, "%" PRId64, ev->seq);
        s_arr_add(&a[0], seq, strlen(seq));
        s_arr_add(&a[1], ev->topic, ev->topic_len);
        s_arr_add(&a[2], text, strlen(text));
        free(text);
    }
    if (rc == 0)
        rc = s_page_exec(evs[0].db,
                         "INSERT INTO event_log (source, seq, topic, cloudevent) "
                         "SELECT $1, u.s::bigint, u.t, u.c "
                         "FROM unnest($2::text[], $3::text[], $4::text[]) AS u(s, t, c) "
                         "ON CONFLICT (source, seq) DO NOTHING",
                         a, 3, evs[0].source, NULL);
    for (int i = 0; i < opened; i++)
        s_arr_free(&a[i]);
    return rc;
}

static int s_page(odp_event_t *evs, size_t n, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < n; i++)
        if (s_valid(&evs[i]) != ODP_EVENT_DONE)
            return -1;
    bool logged = false;
    if (s_page_counts(evs, n, &logged) < 0)
        return -1;
    for (size_t i = 0; i < n;) {
        const s_fact_t *f = s_fact_of(&evs[i]);
        if (!f) {
            i++;
            continue;
        }
        size_t took = s_page_run(evs, i, n, f);
        if (took == 0)
            return -1;
        i += took;
    }
    return logged ? s_page_log(evs, n) : 0;
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
    for (size_t i = 0; i < S_NFACTS; i++)
        if (s_page_sql_build(&s_facts[i], s_page_sqls[i], sizeof s_page_sqls[i]) < 0) {
            odp_error("event=metrics.bad_fact topic=%s msg=\"its statement cannot be run over "
                      "arrays\"",
                      s_facts[i].topic);
            return NULL;
        }
    odp_consumer_cfg_t cfg = {.on_event = s_count, .on_page = s_page, .on_start = s_reconcile};
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
