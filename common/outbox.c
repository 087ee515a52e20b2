#include "outbox.h"

#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct odp_outbox_t {
    odp_db_t *db;
    zsock_t *pub;
    char source[16];
    int64_t published; /* highest number sent on PUB */
    bool loaded;
    bool pending; /* appended since the last flush (maybe rolled back: flush finds out) */
};

const odp_migration_t odp_outbox_migrations[] = {
    {"000_outbox.sql", "CREATE TABLE outbox_counter ("
                       "  id int PRIMARY KEY CHECK (id = 1),"
                       "  last bigint NOT NULL);"
                       "INSERT INTO outbox_counter VALUES (1, 0);"
                       "CREATE TABLE outbox ("
                       "  seq bigint PRIMARY KEY,"
                       "  topic text NOT NULL,"
                       "  body bytea NOT NULL,"
                       "  at timestamptz NOT NULL DEFAULT now());"},
    /*  The department an event concerns, so that a provider's replay holds its own. */
    {"000_outbox_visibility.sql", "ALTER TABLE outbox ADD COLUMN department text;"}};
const size_t odp_outbox_nmigrations = sizeof odp_outbox_migrations / sizeof *odp_outbox_migrations;

void odp_now_iso(char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[24];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03ldZ", when, ts.tv_nsec / 1000000);
}

odp_outbox_t *odp_outbox_new(odp_db_t *db, const char *source, zsock_t *pub)
{
    odp_outbox_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->db = db;
    self->pub = pub;
    snprintf(self->source, sizeof self->source, "%s", source);
    return self;
}

void odp_outbox_set_pub(odp_outbox_t *self, zsock_t *pub)
{
    self->pub = pub;
}

void odp_outbox_destroy(odp_outbox_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

/*  On start the service announces, rather than re-sends, what it committed before: the
    first heartbeat carries this number and subscribers replay whatever they lack. */
int odp_outbox_load(odp_outbox_t *self)
{
    PGresult *r =
        odp_db_exec(self->db, "SELECT last FROM outbox_counter WHERE id = 1", 0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    self->published = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    self->loaded = true;
    PQclear(r);
    return 0;
}

static odp_val_t *s_field(const odp_msgdef_t *def, void *evt, const char *name)
{
    for (size_t i = 0; i < def->nfields; i++)
        if (strcmp(def->fields[i].name, name) == 0)
            return (odp_val_t *)((char *)evt + def->fields[i].offset);
    return NULL;
}

int64_t odp_outbox_append(odp_outbox_t *self, const odp_msgdef_t *def, void *evt, const char *actor)
{
    PGresult *r = odp_db_exec(self->db,
                              "UPDATE outbox_counter SET last = last + 1 WHERE id = 1 "
                              "RETURNING last",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    int64_t seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);

    char at[32];
    odp_now_iso(at, sizeof at);
    odp_val_t *v;
    if ((v = s_field(def, evt, "source")))
        *v = odp_v_str(self->source);
    if ((v = s_field(def, evt, "seq")))
        *v = odp_v_int(seq);
    if ((v = s_field(def, evt, "at")))
        *v = odp_v_str(at);
    if ((v = s_field(def, evt, "actor")))
        *v = odp_v_str(actor);

    msgpack_sbuffer buf;
    if (odp_encode_buf(def, evt, &buf) < 0) {
        odp_error("event=outbox.encode_failed topic=%s", def->name);
        return -1;
    }
    char seqs[24];
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    /*  The department it concerns: its `department` field, or a department event's code. */
    const odp_val_t *dept = s_field(def, evt, "department");
    if ((!dept || !dept->present) && strncmp(def->name, "department.", 11) == 0)
        dept = s_field(def, evt, "code");
    bool has_dept = dept && dept->present;
    const char *vals[4] = {seqs, def->name, buf.data, has_dept ? dept->str : NULL};
    int lens[4] = {-1, -1, (int)buf.size, has_dept ? (int)dept->len : 0};
    int rc = odp_db_cmd(self->db,
                        "INSERT INTO outbox (seq, topic, body, department) "
                        "VALUES ($1, $2, $3, $4)",
                        4, vals, lens);
    msgpack_sbuffer_destroy(&buf);
    if (rc == 0)
        self->pending = true;
    return rc < 0 ? -1 : seq;
}

int odp_outbox_flush(odp_outbox_t *self)
{
    if (!self->loaded && odp_outbox_load(self) < 0)
        return -1;
    if (!self->pub)
        return 0;
    self->pending = false;
    int sent = 0;
    for (;;) {
        char from[24];
        snprintf(from, sizeof from, "%" PRId64, self->published);
        const char *vals[1] = {from};
        /*  Binary result format: body comes back as raw bytes, not hex text. */
        PGconn *c = odp_db_conn(self->db);
        if (!c)
            return -1;
        PGresult *r = PQexecParams(c,
                                   "SELECT seq, topic, body FROM outbox WHERE seq > $1::bigint "
                                   "ORDER BY seq LIMIT 500",
                                   1, NULL, vals, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(r);
            return -1;
        }
        int n = PQntuples(r);
        for (int i = 0; i < n; i++) {
            uint64_t be;
            memcpy(&be, PQgetvalue(r, i, 0), 8);
            int64_t seq = (int64_t)be64toh(be);
            /*  A gap here would mean a number was committed out of order: impossible with
                the counter row lock, but if it ever happened we stop rather than skip. */
            if (seq != self->published + 1)
                break;
            zmsg_t *msg = zmsg_new();
            zmsg_addmem(msg, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
            zmsg_addmem(msg, PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2));
            /*  PUB never blocks: past the high-water mark a subscriber's copy is dropped,
                and that subscriber recovers by replay. */
            zmsg_send(&msg, self->pub);
            self->published = seq;
            sent++;
        }
        PQclear(r);
        if (n < 500)
            break;
    }
    return sent;
}

void odp_outbox_heartbeat(odp_outbox_t *self)
{
    if (!self->pub)
        return;
    char at[32];
    odp_now_iso(at, sizeof at);
    odp_ev_heartbeat_t hb = {0};
    hb.source = odp_v_str(self->source);
    hb.seq = odp_v_int(self->published);
    hb.at = odp_v_str(at);
    msgpack_sbuffer buf;
    if (odp_encode_buf(&odp_def_ev_heartbeat, &hb, &buf) < 0)
        return;
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, odp_def_ev_heartbeat.name);
    zmsg_addmem(msg, buf.data, buf.size);
    zmsg_send(&msg, self->pub);
    msgpack_sbuffer_destroy(&buf);
}

bool odp_outbox_pending(const odp_outbox_t *self)
{
    return self->pending;
}

int64_t odp_outbox_last(odp_outbox_t *self)
{
    return self->published;
}

int odp_outbox_replay(odp_outbox_t *self, int64_t from, int64_t limit, odp_visibility_t vis,
                      const char *department, msgpack_packer *pk)
{
    PGconn *c = odp_db_conn(self->db);
    if (!c)
        return -1;
    PGresult *l = PQexec(c, "SELECT last FROM outbox_counter WHERE id = 1");
    if (PQresultStatus(l) != PGRES_TUPLES_OK || PQntuples(l) != 1) {
        PQclear(l);
        return -1;
    }
    int64_t last = strtoll(PQgetvalue(l, 0, 0), NULL, 10);
    PQclear(l);
    /*  Numbers are gap-free, so a page is a window of numbers; what the caller may not see
        is left out of it, and `through` says where the window ended. */
    int64_t through = from - 1 + limit;
    if (through > last)
        through = last;
    char froms[24], throughs[24];
    snprintf(froms, sizeof froms, "%" PRId64, from);
    snprintf(throughs, sizeof throughs, "%" PRId64, through);
    const char *vis_s = vis == ODP_SEE_ALL ? "all" : vis == ODP_SEE_DEPARTMENT ? "dept" : "public";
    const char *vals[5] = {froms, throughs, vis_s, department ? department : "", ODP_PUBLIC_TOPICS};
    PGresult *r = PQexecParams(c,
                               "SELECT topic, body FROM outbox WHERE seq >= $1::bigint "
                               "AND seq <= $2::bigint AND ($3 = 'all' "
                               "OR ($3 = 'dept' AND department = $4) "
                               "OR topic = ANY ($5::text[])) ORDER BY seq",
                               5, NULL, vals, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    /*  events: [[topic, body], ...] with each body the exact bytes that were published. */
    msgpack_sbuffer evs;
    msgpack_sbuffer_init(&evs);
    msgpack_packer epk;
    msgpack_packer_init(&epk, &evs, msgpack_sbuffer_write);
    msgpack_pack_array(&epk, (size_t)n);
    for (int i = 0; i < n; i++) {
        size_t tl = (size_t)PQgetlength(r, i, 0);
        msgpack_pack_array(&epk, 2);
        msgpack_pack_str(&epk, tl);
        msgpack_pack_str_body(&epk, PQgetvalue(r, i, 0), tl);
        msgpack_sbuffer_write(&evs, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    }
    odp_rep_replay_t rep = {0};
    rep.events = odp_v_raw(evs.data, evs.size);
    rep.last = odp_v_int(last);
    rep.more = odp_v_bool(through < last);
    rep.through = odp_v_int(through < from ? from - 1 : through);
    int rc = odp_encode(&odp_def_rep_replay, &rep, pk);
    msgpack_sbuffer_destroy(&evs);
    PQclear(r);
    return rc;
}
