/*  Releasing, withdrawing and restoring (R4.3a, R5.7b, R9a, R9d, R8.2b, R8.3c-d).

    A release runs in three steps. The checks of migrations/001_publisher.sql
    (release_checks) name every condition that fails, and a refusal is logged with them.
    For a dataset the registrar then indexes the filterable fields of the version's staging
    table (stage.index: its table, its writer), outside any transaction of ours. Last, one
    transaction checks again, supersedes the current release, makes the new one current
    with its view, counts its rows and facets, logs the attempt and appends the events:
    a reader sees the old release or the new one, and a crash anywhere before COMMIT leaves
    the old one current. */
#include "publisher.h"

#include "common/auth.h"
#include "common/config.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_service_actor = "service:publisher";

odp_val_t pub_col(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_strn(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

odp_val_t pub_int(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_int(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

/*  A failed statement as a reply error, by SQLSTATE class (as odp_req_db_fail does for a
    request, here also for the release loop). Clears r. */
static int s_db_err(odp_db_t *db, odp_error_t *err, PGresult *r, const char *what)
{
    const char *state = r ? odp_db_state(r) : odp_db_last_state(db);
    char msg[300];
    snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : "the connection failed");
    PQclear(r);
    switch (odp_db_classify(state)) {
    case ODP_DBF_CONFLICT:
        return odp_error_set(err, ODP_E_ALREADY_EXISTS, NULL, "%s exists already", what);
    case ODP_DBF_RETRY:
    case ODP_DBF_TRANSIENT:
        return odp_error_set(err, ODP_E_UNAVAILABLE, NULL, "%s: the database is unavailable", what);
    default:
        odp_error("event=release.db_failed what=\"%s\" sqlstate=%s error=\"%s\"", what, state, msg);
        return odp_error_set(err, ODP_E_INTERNAL, NULL, "%s failed; it is logged", what);
    }
}

/*  ---- the release ------------------------------------------------------------------------- */

typedef struct {
    char resource[33];
    char table[64];
    int64_t version; /* 0: the latest received version, or an endpoint's next */
    char actor[101];
    int64_t release; /* out */
} s_job_t;

static odp_client_t *s_registrar = NULL;

/*  Log an attempt (its own statement: a refusal is kept whatever happens next). */
static void s_attempt(odp_db_t *db, const s_job_t *job, const char *outcome, const char *reasons)
{
    char version[24];
    snprintf(version, sizeof version, "%" PRId64, job->version);
    const char *vals[5] = {job->resource, job->table, job->version ? version : NULL, job->actor,
                           outcome};
    const char *rv[6] = {vals[0], vals[1], vals[2], vals[3], vals[4], reasons};
    if (odp_db_cmd(db,
                   "INSERT INTO attempts (resource, table_name, version, actor, outcome, "
                   "reasons) VALUES ($1, $2, $3, $4, $5, $6)",
                   6, rv, NULL) < 0)
        odp_warn("event=release.attempt_not_logged resource=%s", job->resource);
}

/*  The registrar is asked with a bounded wait (REGISTRAR_TIMEOUT_MS for a request of
    operations, REGISTRAR_TICK_TIMEOUT_MS from the timer): its stage.index answers at once
    and builds in the background (async), so a long wait only means it is stopped, stuck
    or very busy. After such a silence the loop's timer leaves it alone for a while
    (doubling up to 30 s), so a stopped registrar costs the loop one short timeout now and
    then, not one per tick; a request of operations asks it all the same. */
static int64_t s_quiet_until = 0;
static int64_t s_quiet_ms = 0;

/*  Ask the registrar to build (or confirm) the indexes of upload: 1 when they are ready,
    0 while they are being built, -1 with err set. Never waits for a build. */
static int s_index_ask(odp_db_t *db, int64_t upload, bool from_timer, odp_error_t *err)
{
    if (from_timer && zclock_mono() < s_quiet_until)
        return odp_error_set(err, ODP_E_UNAVAILABLE, NULL,
                             "the registrar did not answer lately; asked again later");
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[1] = {id};
    PGresult *r =
        odp_db_exec(db, "SELECT name FROM version_fields($1) WHERE indexed", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_db_err(db, err, r, "the version's fields");
    uint32_t n = (uint32_t)PQntuples(r) + 1;
    msgpack_object *items = calloc(n, sizeof *items);
    if (!items) {
        PQclear(r);
        return odp_error_set(err, ODP_E_INTERNAL, NULL, "out of memory");
    }
    items[0].type = MSGPACK_OBJECT_STR;
    items[0].via.str.ptr = "row_no";
    items[0].via.str.size = 6;
    for (uint32_t i = 1; i < n; i++) {
        items[i].type = MSGPACK_OBJECT_STR;
        items[i].via.str.ptr = PQgetvalue(r, (int)i - 1, 0);
        items[i].via.str.size = (uint32_t)PQgetlength(r, (int)i - 1, 0);
    }
    msgpack_object arr = {.type = MSGPACK_OBJECT_ARRAY};
    arr.via.array.size = n;
    arr.via.array.ptr = items;
    odp_stage_index_t m = {0};
    m.upload = odp_v_int(upload);
    m.fields = (odp_val_t){.present = true, .obj = &arr};
    m.async = odp_v_bool(true);
    int rc = 0;
    if (!s_registrar) {
        char cert[512], why[256] = "";
        if (odp_auth_service_cert("publisher", cert, sizeof cert) < 0)
            rc = odp_error_set(err, ODP_E_INTERNAL, NULL, "the publisher has no service key");
        else
            s_registrar = odp_client_new("registrar", NULL, cert[0] ? cert : NULL, why, sizeof why);
        if (rc == 0 && !s_registrar)
            rc = odp_error_set(err, ODP_E_INTERNAL, NULL, "no client for the registrar: %.150s",
                               why);
    }
    if (rc == 0) {
        odp_reply_t rep;
        if (odp_client_call(
                s_registrar, &odp_def_stage_index, &m,
                (int)(from_timer ? odp_config_int("publisher", "REGISTRAR_TICK_TIMEOUT_MS", 1000)
                                 : odp_config_int("publisher", "REGISTRAR_TIMEOUT_MS", 5000)),
                &rep) < 0) {
            s_quiet_ms = s_quiet_ms ? (s_quiet_ms * 2 > 30000 ? 30000 : s_quiet_ms * 2) : 1000;
            s_quiet_until = zclock_mono() + s_quiet_ms;
            rc = odp_error_set(err, ODP_E_UNAVAILABLE, "indexes",
                               "the registrar did not answer for the indexes: %.180s",
                               odp_client_why(s_registrar));
        } else if (rep.status != 200) {
            char msg[200];
            s_quiet_ms = 0;
            rc = odp_error_set(err, rep.status >= 500 ? ODP_E_UNAVAILABLE : ODP_E_INTERNAL,
                               "indexes", "the registrar refused the indexes: %s",
                               odp_v_cstr(&rep.err.message, msg, sizeof msg));
        } else {
            const msgpack_object *ready = odp_map_get(&rep.obj, "ready");
            s_quiet_ms = 0;
            /*  A registrar without async builds before it answers. */
            rc = !ready || (ready->type == MSGPACK_OBJECT_BOOLEAN && ready->via.boolean) ? 1 : 0;
        }
        odp_reply_free(&rep);
    }
    free(items);
    PQclear(r);
    return rc;
}

/*  Where upload's indexes are: 1 ready, 0 being built, -1 with err set (a failure is
    recorded, and the next try comes later). Asks the registrar only until they are ready. */
static int s_index(odp_db_t *db, int64_t upload, bool from_timer, odp_error_t *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[2] = {id, NULL};
    PGresult *r = odp_db_exec(db,
                              "SELECT 1 FROM index_ahead WHERE upload = $1 AND ready_at IS "
                              "NOT NULL",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_db_err(db, err, r, "the index state");
    bool ready = PQntuples(r) == 1;
    PQclear(r);
    if (ready)
        return 1;
    int rc = s_index_ask(db, upload, from_timer, err);
    if (rc < 0) {
        vals[1] = err->message;
        odp_db_cmd(db,
                   "INSERT INTO index_ahead AS a (upload, tries, last_error, next_at) VALUES ($1, "
                   "1, $2, now() + interval '1 second') ON CONFLICT (upload) DO UPDATE SET "
                   "tries = a.tries + 1, last_error = $2, next_at = now() + least(power(2, "
                   "a.tries), 60) * interval '1 second'",
                   2, vals, NULL);
        return -1;
    }
    r = odp_db_exec(db,
                    "INSERT INTO index_ahead AS a (upload, started_at, ready_at) VALUES ($1, "
                    "now(), CASE WHEN $2 THEN now() END) ON CONFLICT (upload) DO UPDATE SET "
                    "started_at = coalesce(a.started_at, now()), ready_at = CASE WHEN $2 THEN "
                    "now() END, last_error = NULL RETURNING round(extract(epoch FROM "
                    "coalesce(ready_at, now()) - started_at) * 1000)",
                    2, (const char *[]){id, rc ? "true" : "false"}, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_db_err(db, err, r, "the index state");
    if (rc == 1)
        odp_info("event=release.indexes_ready upload=%" PRId64 " build_ms=%s", upload,
                 PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/*  In an open transaction: the failed conditions, "name: detail; ..." into reasons and the
    first name into first. 0 when none failed, 1 when some did, -1 on a failed statement. */
static int s_checks(odp_db_t *db, const s_job_t *job, char *reasons, size_t size, char *first,
                    size_t fsize, odp_error_t *err)
{
    char version[24];
    snprintf(version, sizeof version, "%" PRId64, job->version);
    const char *vals[3] = {job->resource, job->table, job->version ? version : NULL};
    PGresult *r =
        odp_db_exec(db, "SELECT condition, detail FROM release_checks($1, $2, $3)", 3, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_db_err(db, err, r, "the release checks");
    size_t off = 0;
    reasons[0] = first[0] = '\0';
    for (int i = 0; i < PQntuples(r); i++) {
        if (i == 0)
            snprintf(first, fsize, "%s", PQgetvalue(r, 0, 0));
        int n = snprintf(reasons + off, size - off, "%s%s: %s", i ? "; " : "", PQgetvalue(r, i, 0),
                         PQgetvalue(r, i, 1));
        if (n > 0 && (size_t)n < size - off)
            off += (size_t)n;
    }
    int failed = PQntuples(r) > 0;
    PQclear(r);
    return failed;
}

/*  The switch, in one transaction. 0, or -1 with err set (rolled back). */
static int s_switch(odp_db_t *db, odp_outbox_t *outbox, s_job_t *job, odp_error_t *err)
{
    char reasons[2000], first[64];
    if (odp_db_begin(db) < 0)
        return s_db_err(db, err, NULL, "the release");
    /*  One release of an entry's table at a time; a second waits here, then sees the first. */
    const char *key[2] = {job->resource, job->table};
    if (odp_db_cmd(db,
                   "SELECT pg_advisory_xact_lock(hashtext('publisher.release ' || $1 || ' ' "
                   "|| $2))",
                   2, key, NULL) < 0) {
        s_db_err(db, err, NULL, "the release lock");
        odp_db_rollback(db);
        return -1;
    }
    int c = s_checks(db, job, reasons, sizeof reasons, first, sizeof first, err);
    if (c != 0) {
        odp_db_rollback(db);
        if (c > 0) {
            s_attempt(db, job, "refused", reasons);
            odp_error_set(err, ODP_E_INVALID_STATE, first, "release refused: %s", reasons);
        }
        return -1;
    }
    char version[24], prepared[24];
    snprintf(prepared, sizeof prepared, "%" PRId64, job->release);
    const char *vals[2] = {prepared, job->actor};
    PGresult *r = odp_db_exec(db,
                              "SELECT release, version, kind, department, rows, sha256, endpoint, "
                              "old_release, old_version FROM switch_to($1, $2)",
                              2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        s_db_err(db, err, r, "the release");
        odp_db_rollback(db);
        return -1;
    }
    job->release = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    job->version = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t pause = odp_config_int("publisher", "RELEASE_PAUSE_MS", 0);
    if (pause > 0) {
        /*  For the crash test: a release that is visibly in progress. */
        char secs[32];
        snprintf(secs, sizeof secs, "%.3f", (double)pause / 1000.0);
        const char *pv[1] = {secs};
        odp_db_cmd(db, "SELECT pg_sleep($1::float8)", 1, pv, NULL);
    }
    odp_ev_release_published_t ev = {0};
    ev.resource = odp_v_str(job->resource);
    ev.department = pub_col(r, 0, 3);
    ev.table = odp_v_str(job->table);
    ev.version = odp_v_int(job->version);
    ev.release = odp_v_int(job->release);
    ev.kind = pub_col(r, 0, 2);
    ev.rows = pub_int(r, 0, 4);
    ev.sha256 = pub_col(r, 0, 5);
    ev.endpoint = pub_col(r, 0, 6);
    int64_t seq = odp_outbox_append(outbox, &odp_def_ev_release_published, &ev, job->actor);
    int64_t published = seq;
    if (seq > 0 && !PQgetisnull(r, 0, 7)) {
        odp_ev_release_superseded_t sv = {0};
        sv.resource = ev.resource;
        sv.department = ev.department;
        sv.table = ev.table;
        sv.version = pub_int(r, 0, 8);
        sv.release = pub_int(r, 0, 7);
        sv.by = ev.release;
        seq = odp_outbox_append(outbox, &odp_def_ev_release_superseded, &sv, job->actor);
    }
    PQclear(r);
    /*  The entry's modified_seq is the number of the last event this release wrote:
        catalogue.export --since N holds the entries changed by events after N. */
    char rel[24], pubs[24], seqs[24];
    snprintf(rel, sizeof rel, "%" PRId64, job->release);
    snprintf(pubs, sizeof pubs, "%" PRId64, published);
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    snprintf(version, sizeof version, "%" PRId64, job->version);
    /*  One statement for the records: the switch's time is mostly round trips. */
    const char *rv[7] = {rel, pubs, seqs, job->resource, job->table, version, job->actor};
    if (seq < 0 ||
        odp_db_cmd(db,
                   "WITH r AS (UPDATE releases SET event_seq = $2 WHERE id = $1), e AS (UPDATE "
                   "entries SET modified_seq = $3 WHERE resource = $4), a AS (INSERT INTO "
                   "attempts (resource, table_name, version, actor, outcome, release) VALUES "
                   "($4, $5, $6, $7, 'released', $1)) DELETE FROM pending WHERE resource = $4 "
                   "AND table_name = $5 AND version = $6",
                   7, rv, NULL) < 0) {
        s_db_err(db, err, NULL, "the release record");
        odp_db_rollback(db);
        return -1;
    }
    if (odp_db_commit(db) < 0)
        return s_db_err(db, err, NULL, "the release");
    return 0;
}

/*  Release job: resolve the version, refuse a second release of it, index, switch.
    0 with job->release set, or -1 with err set; every attempt is logged. While the
    version's indexes are being built it waits up to wait_ms for them, then returns 1 (err
    says so; nothing is logged: the release has not been tried). */
static int s_release(odp_db_t *db, odp_outbox_t *outbox, s_job_t *job, int64_t wait_ms,
                     odp_error_t *err)
{
    const char *vals[2] = {job->resource, job->table};
    PGresult *r =
        odp_db_exec(db,
                    "SELECT x.delivery_form, (SELECT max(u.version) FROM registrar.uploads u WHERE "
                    "u.resource = x.resource AND u.table_name = $2 AND u.status = 'received' AND "
                    "u.withdrawn_at IS NULL) FROM registrar.resources x WHERE x.resource = $1",
                    2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_db_err(db, err, r, "the entry");
    bool pushed = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "dataset_file") == 0;
    if (pushed && job->version == 0 && !PQgetisnull(r, 0, 1))
        job->version = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (!pushed)
        job->version = 0; /* an endpoint's release is numbered by the publisher */
    int64_t upload = 0;
    if (pushed && job->version > 0) {
        char version[24];
        snprintf(version, sizeof version, "%" PRId64, job->version);
        const char *v3[3] = {job->resource, job->table, version};
        r = odp_db_exec(db,
                        "SELECT u.id, u.kind, EXISTS (SELECT 1 FROM releases x WHERE "
                        "x.resource = $1 AND x.table_name = $2 AND x.version = $3 AND "
                        "x.state <> 'prepared') FROM "
                        "registrar.uploads u WHERE u.resource = $1 AND u.table_name = $2 AND "
                        "u.version = $3 AND u.status = 'received'",
                        3, v3, NULL);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return s_db_err(db, err, r, "the version");
        bool released = PQntuples(r) == 1 && PQgetvalue(r, 0, 2)[0] == 't';
        if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 1), "dataset") == 0)
            upload = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        if (released) {
            s_attempt(db, job, "refused", "already_released: this version is released already");
            return odp_error_set(err, ODP_E_ALREADY_EXISTS, "version",
                                 "version %" PRId64 " of %s is released already", job->version,
                                 job->resource);
        }
    }
    /*  Checked before the registrar is asked for indexes, and again in the switch. */
    char reasons[2000], first[64];
    int c = s_checks(db, job, reasons, sizeof reasons, first, sizeof first, err);
    if (c < 0)
        return -1;
    if (c > 0) {
        s_attempt(db, job, "refused", reasons);
        return odp_error_set(err, ODP_E_INVALID_STATE, first, "release refused: %s", reasons);
    }
    int64_t t0 = zclock_mono();
    if (upload > 0) {
        /*  Usually built already: they start when the version's review has checked it. */
        int ready;
        while ((ready = s_index(db, upload, wait_ms == 0, err)) == 0 &&
               zclock_mono() - t0 < wait_ms)
            zclock_sleep(20);
        if (ready < 0) {
            s_attempt(db, job, "failed", err->message);
            return -1;
        }
        if (ready == 0) {
            odp_error_set(err, ODP_E_UNAVAILABLE, "indexes",
                          "the registrar is still building the indexes of version %" PRId64
                          "; ask again",
                          job->version);
            return 1;
        }
    }
    int64_t t1 = zclock_mono();
    char version[24];
    snprintf(version, sizeof version, "%" PRId64, job->version);
    const char *pv[4] = {job->resource, job->table, job->version ? version : NULL, job->actor};
    r = odp_db_exec(db, "SELECT prepare($1, $2, $3, $4)", 4, pv, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        s_db_err(db, err, r, "the release's view and counts");
        s_attempt(db, job, "failed", err->message);
        return -1;
    }
    job->release = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    int64_t t2 = zclock_mono();
    if (s_switch(db, outbox, job, err) < 0) {
        if (err->code != ODP_E_INVALID_STATE)
            s_attempt(db, job, "failed", err->message);
        return -1;
    }
    int64_t t3 = zclock_mono();
    odp_info("event=release.published resource=%s table=%s version=%" PRId64 " release=%" PRId64
             " actor=%s index_ms=%" PRId64 " prepare_ms=%" PRId64 " switch_ms=%" PRId64,
             job->resource, job->table, job->version, job->release, job->actor, t1 - t0, t2 - t1,
             t3 - t2);
    return 0;
}

/*  ---- replies ----------------------------------------------------------------------------- */

#define REL_COLS                                                                                   \
    "r.id, r.resource, e.department, r.table_name, r.version, r.kind, r.state, r.upload, "         \
    "r.relation, r.rows, r.bytes, r.sha256, r.format, r.endpoint, r.standard, "                    \
    "r.released_by, " PUB_TS("r.released_at") ", r.withdrawn_reason"
#define REL_FROM " FROM releases r JOIN entries e ON e.resource = r.resource "

#define FILL_RELEASE(x, r, i)                                                                      \
    do {                                                                                           \
        (x)->release = pub_int(r, i, 0);                                                           \
        (x)->resource = pub_col(r, i, 1);                                                          \
        (x)->department = pub_col(r, i, 2);                                                        \
        (x)->table = pub_col(r, i, 3);                                                             \
        (x)->version = pub_int(r, i, 4);                                                           \
        (x)->kind = pub_col(r, i, 5);                                                              \
        (x)->state = pub_col(r, i, 6);                                                             \
        (x)->upload = pub_int(r, i, 7);                                                            \
        (x)->relation = pub_col(r, i, 8);                                                          \
        (x)->rows = pub_int(r, i, 9);                                                              \
        (x)->bytes = pub_int(r, i, 10);                                                            \
        (x)->sha256 = pub_col(r, i, 11);                                                           \
        (x)->format = pub_col(r, i, 12);                                                           \
        (x)->endpoint = pub_col(r, i, 13);                                                         \
        (x)->standard = pub_int(r, i, 14);                                                         \
        (x)->released_by = pub_col(r, i, 15);                                                      \
        (x)->released_at = pub_col(r, i, 16);                                                      \
        (x)->withdrawn_reason = pub_col(r, i, 17);                                                 \
    } while (0)

typedef void (*s_fill_fn)(PGresult *r, int i, void *rec);

/*  Every row of r as a record of def, packed as an array into buf. */
static int s_pack_rows(PGresult *r, const odp_msgdef_t *def, s_fill_fn fill, void *rec, size_t size,
                       msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, (size_t)PQntuples(r));
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        memset(rec, 0, size);
        fill(r, i, rec);
        rc = odp_encode(def, rec, &pk);
    }
    return rc;
}

/*  r as a rep_list reply. Clears r. */
static int s_pack_list(odp_req_t *req, PGresult *r, const odp_msgdef_t *def, s_fill_fn fill,
                       void *rec, size_t size)
{
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    int rc = s_pack_rows(r, def, fill, rec, size, &items);
    if (rc == 0) {
        odp_rep_list_t rep = {0};
        rep.items = odp_v_raw(items.data, items.size);
        rc = odp_encode(&odp_def_rep_list, &rep, req->pk);
    }
    msgpack_sbuffer_destroy(&items);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the list") : 0;
}

static void s_fill_release(PGresult *r, int i, void *out)
{
    odp_rec_release_t *x = out;
    FILL_RELEASE(x, r, i);
}

static void s_fill_field(PGresult *r, int i, void *out)
{
    odp_rec_release_field_t *x = out;
    x->position = pub_int(r, i, 0);
    x->name = pub_col(r, i, 1);
    x->type = pub_col(r, i, 2);
    x->indexed = odp_v_bool(PQgetvalue(r, i, 3)[0] == 't');
    x->facet = odp_v_bool(PQgetvalue(r, i, 4)[0] == 't');
    x->description = pub_col(r, i, 5);
}

static void s_fill_facet(PGresult *r, int i, void *out)
{
    odp_rec_facet_t *x = out;
    x->field = pub_col(r, i, 0);
    x->value = pub_col(r, i, 1);
    x->count = pub_int(r, i, 2);
}

static void s_fill_attempt(PGresult *r, int i, void *out)
{
    odp_rec_release_attempt_t *x = out;
    x->at = pub_col(r, i, 0);
    x->actor = pub_col(r, i, 1);
    x->version = pub_int(r, i, 2);
    x->outcome = pub_col(r, i, 3);
    x->reasons = pub_col(r, i, 4);
}

/*  release.show's reply for release id. */
static int s_show_pack(odp_req_t *req, int64_t id)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *vals[1] = {ids};
    PGresult *r =
        odp_db_exec(req->db, "SELECT " REL_COLS REL_FROM "WHERE r.id = $1", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the release");
    PGresult *f = odp_db_exec(req->db,
                              "SELECT position, name, type, indexed, facet, description FROM "
                              "release_fields WHERE release = $1 ORDER BY position",
                              1, vals, NULL);
    PGresult *g = odp_db_exec(req->db,
                              "SELECT field, value, count FROM facets WHERE release = $1 "
                              "ORDER BY field, count DESC, value",
                              1, vals, NULL);
    PGresult *a = odp_db_exec(req->db,
                              "SELECT " PUB_TS("a.at") ", a.actor, a.version, a.outcome, "
                                                       "a.reasons FROM attempts a JOIN releases x "
                                                       "ON x.id = $1 WHERE a.resource = "
                                                       "x.resource AND a.table_name = x.table_name "
                                                       "ORDER BY a.id DESC LIMIT 1000",
                              1, vals, NULL);
    int rc = 0;
    if (!f || PQresultStatus(f) != PGRES_TUPLES_OK || !g || PQresultStatus(g) != PGRES_TUPLES_OK ||
        !a || PQresultStatus(a) != PGRES_TUPLES_OK)
        rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "the release's details could not be read");
    msgpack_sbuffer fb, gb, ab;
    msgpack_sbuffer_init(&fb);
    msgpack_sbuffer_init(&gb);
    msgpack_sbuffer_init(&ab);
    odp_rec_release_field_t fr;
    odp_rec_facet_t gr;
    odp_rec_release_attempt_t ar;
    if (rc == 0 &&
        (s_pack_rows(f, &odp_def_rec_release_field, s_fill_field, &fr, sizeof fr, &fb) < 0 ||
         s_pack_rows(g, &odp_def_rec_facet, s_fill_facet, &gr, sizeof gr, &gb) < 0 ||
         s_pack_rows(a, &odp_def_rec_release_attempt, s_fill_attempt, &ar, sizeof ar, &ab) < 0))
        rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "the release did not encode");
    if (rc == 0) {
        odp_rep_release_t rep = {0};
        FILL_RELEASE(&rep, r, 0);
        rep.fields = odp_v_raw(fb.data, fb.size);
        rep.facets = odp_v_raw(gb.data, gb.size);
        rep.attempts = odp_v_raw(ab.data, ab.size);
        if (odp_encode(&odp_def_rep_release, &rep, req->pk) < 0)
            rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "the release did not encode");
    }
    msgpack_sbuffer_destroy(&fb);
    msgpack_sbuffer_destroy(&gb);
    msgpack_sbuffer_destroy(&ab);
    PQclear(r);
    PQclear(f);
    PQclear(g);
    PQclear(a);
    return rc;
}

/*  ---- commands ------------------------------------------------------------------------------ */

static void s_job_from(s_job_t *job, const odp_val_t *resource, const odp_val_t *table,
                       const odp_val_t *version, const char *actor)
{
    memset(job, 0, sizeof *job);
    odp_v_cstr(resource, job->resource, sizeof job->resource);
    if (table->present)
        odp_v_cstr(table, job->table, sizeof job->table);
    else
        snprintf(job->table, sizeof job->table, "main");
    job->version = version->present ? version->i : 0;
    snprintf(job->actor, sizeof job->actor, "%s", actor);
}

static int s_publish(odp_req_t *req)
{
    const odp_release_publish_t *m = req->msg;
    s_job_t job;
    s_job_from(&job, &m->resource, &m->table, &m->version, req->actor_str);
    if (s_release(req->db, req->outbox, &job, odp_config_int("publisher", "INDEX_WAIT_MS", 120000),
                  req->err) != 0)
        return -1;
    return s_show_pack(req, job.release);
}

/*  The release a show/withdraw/restore names: the version's, else the table's current (or
    latest) one. 0 when none. */
static int64_t s_find(odp_req_t *req, const s_job_t *job, bool *failed)
{
    char version[24];
    snprintf(version, sizeof version, "%" PRId64, job->version);
    const char *vals[3] = {job->resource, job->table, job->version ? version : NULL};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT id FROM releases WHERE resource = $1 AND table_name = $2 "
                              "AND ($3::integer IS NULL OR version = $3) ORDER BY state = "
                              "'current' DESC, id DESC LIMIT 1",
                              3, vals, NULL);
    *failed = !r || PQresultStatus(r) != PGRES_TUPLES_OK;
    if (*failed) {
        odp_req_db_fail(req, r, "the release");
        return 0;
    }
    int64_t id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return id;
}

static int s_show(odp_req_t *req)
{
    const odp_release_show_t *m = req->msg;
    s_job_t job;
    s_job_from(&job, &m->resource, &m->table, &m->version, req->actor_str);
    bool failed;
    int64_t id = s_find(req, &job, &failed);
    if (failed)
        return -1;
    if (id == 0)
        return odp_req_fail(req, ODP_E_NOT_FOUND, m->version.present ? "version" : "resource",
                            "no such release of %s", job.resource);
    return s_show_pack(req, id);
}

typedef struct {
    s_job_t job;
    const char *reason;
    int reason_len;
    bool withdraw;
    int64_t first; /* out: a release it changed */
} s_change_t;

static int s_change_txn(odp_req_t *req, void *arg)
{
    s_change_t *ch = arg;
    char version[24];
    snprintf(version, sizeof version, "%" PRId64, ch->job.version);
    const char *vals[5] = {ch->job.resource, ch->job.table[0] ? ch->job.table : NULL,
                           ch->job.version ? version : NULL, ch->reason, req->actor_str};
    int lens[5] = {-1, -1, -1, ch->reason_len, -1};
    const char *key[1] = {ch->job.resource};
    if (odp_db_cmd(req->db, "SELECT 1 FROM entries WHERE resource = $1 FOR UPDATE", 1, key, NULL) <
        0)
        return odp_req_db_fail(req, NULL, "the entry");
    PGresult *r = ch->withdraw ? odp_db_exec(req->db,
                                             "SELECT w.release, w.table_name, w.version, "
                                             "e.department FROM withdraw($1, $2, $3, $4, $5) w "
                                             "JOIN entries e ON e.resource = $1",
                                             5, vals, lens)
                               : odp_db_exec(req->db,
                                             "SELECT w.release, w.table_name, w.version, "
                                             "e.department FROM restore($1, $2, $3) w JOIN "
                                             "entries e ON e.resource = $1",
                                             3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, ch->withdraw ? "the withdrawal" : "the restoration");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_INVALID_STATE, "resource",
                            ch->withdraw ? "%s has no release to withdraw here"
                                         : "%s has no withdrawn release to restore here",
                            ch->job.resource);
    }
    int64_t seq = 0;
    for (int i = 0; i < PQntuples(r) && seq >= 0; i++) {
        if (i == 0)
            ch->first = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if (ch->withdraw) {
            odp_ev_release_withdrawn_t ev = {0};
            ev.resource = odp_v_str(ch->job.resource);
            ev.department = pub_col(r, i, 3);
            ev.table = pub_col(r, i, 1);
            ev.version = pub_int(r, i, 2);
            ev.release = pub_int(r, i, 0);
            ev.reason = odp_v_strn(ch->reason, (size_t)ch->reason_len);
            seq =
                odp_outbox_append(req->outbox, &odp_def_ev_release_withdrawn, &ev, req->actor_str);
        } else {
            odp_ev_release_restored_t ev = {0};
            ev.resource = odp_v_str(ch->job.resource);
            ev.department = pub_col(r, i, 3);
            ev.table = pub_col(r, i, 1);
            ev.version = pub_int(r, i, 2);
            ev.release = pub_int(r, i, 0);
            seq = odp_outbox_append(req->outbox, &odp_def_ev_release_restored, &ev, req->actor_str);
        }
    }
    PQclear(r);
    char seqs[24];
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    const char *ev2[2] = {ch->job.resource, seqs};
    if (seq < 0 || odp_db_cmd(req->db, "UPDATE entries SET modified_seq = $2 WHERE resource = $1",
                              2, ev2, NULL) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return s_show_pack(req, ch->first);
}

static int s_withdraw(odp_req_t *req)
{
    const odp_release_withdraw_t *m = req->msg;
    s_change_t ch = {.withdraw = true, .reason = m->reason.str, .reason_len = (int)m->reason.len};
    s_job_from(&ch.job, &m->resource, &m->table, &m->version, req->actor_str);
    if (!m->table.present)
        ch.job.table[0] = '\0'; /* every table of the entry */
    if (odp_req_txn(req, s_change_txn, &ch) < 0)
        return -1;
    odp_info("event=release.withdrawn resource=%s actor=%s", ch.job.resource, req->actor_str);
    return 0;
}

static int s_restore(odp_req_t *req)
{
    const odp_release_restore_t *m = req->msg;
    s_change_t ch = {.withdraw = false};
    s_job_from(&ch.job, &m->resource, &m->table, &m->version, req->actor_str);
    if (!m->table.present)
        ch.job.table[0] = '\0';
    if (odp_req_txn(req, s_change_txn, &ch) < 0)
        return -1;
    odp_info("event=release.restored resource=%s actor=%s", ch.job.resource, req->actor_str);
    return 0;
}

static int s_list(odp_req_t *req)
{
    const odp_release_list_t *m = req->msg;
    char limit[24];
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 1000);
    const char *vals[4] = {m->resource.present ? m->resource.str : NULL,
                           m->department.present ? m->department.str : NULL,
                           m->state.present ? m->state.str : NULL, limit};
    int lens[4] = {(int)m->resource.len, (int)m->department.len, (int)m->state.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " REL_COLS REL_FROM
                              "WHERE ($1::text IS NULL OR r.resource = $1) AND ($2::text IS "
                              "NULL OR e.department = $2) AND ($3::text IS NULL OR r.state = $3) "
                              "ORDER BY r.id DESC LIMIT $4",
                              4, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the releases");
    odp_rec_release_t rec;
    return s_pack_list(req, r, &odp_def_rec_release, s_fill_release, &rec, sizeof rec);
}

static void s_fill_queued(PGresult *r, int i, void *out)
{
    odp_rec_release_queued_t *x = out;
    x->resource = pub_col(r, i, 0);
    x->department = pub_col(r, i, 1);
    x->table = pub_col(r, i, 2);
    x->version = pub_int(r, i, 3);
    x->upload = pub_int(r, i, 4);
    x->rows = pub_int(r, i, 5);
    x->policy = pub_col(r, i, 6);
    x->approved_at = pub_col(r, i, 7);
}

/*  Approved versions not released yet, oldest decision first. */
#define QUEUE_SQL                                                                                  \
    "SELECT v.resource, v.department, v.table_name, v.version, v.upload, v.rows_received, "        \
    "CASE WHEN policy_auto(v.resource, v.department) THEN 'auto' ELSE 'manual' END, " PUB_TS(      \
        "s.decided_at") " FROM reviewer.reviews v JOIN reviewer.signoffs s ON s.upload = "         \
                        "v.upload AND s.decision = 'approved' WHERE v.state = 'approved' AND "     \
                        "NOT EXISTS (SELECT 1 FROM releases x WHERE x.resource = v.resource AND "  \
                        "x.table_name = v.table_name AND x.version = v.version) "

static int s_queue(odp_req_t *req)
{
    const odp_release_queue_t *m = req->msg;
    char limit[24];
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 1000);
    const char *vals[1] = {limit};
    PGresult *r =
        odp_db_exec(req->db, QUEUE_SQL "ORDER BY s.decided_at, v.upload LIMIT $1", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the queue");
    odp_rec_release_queued_t rec;
    return s_pack_list(req, r, &odp_def_rec_release_queued, s_fill_queued, &rec, sizeof rec);
}

static int s_policy(odp_req_t *req)
{
    const odp_release_policy_t *m = req->msg;
    const char *vals[3] = {m->scope.str, m->automatic.b ? "true" : "false", req->actor_str};
    int lens[3] = {(int)m->scope.len, -1, -1};
    /*  A department code, or a resource code of the catalogue. */
    PGresult *r = odp_db_exec(
        req->db,
        "INSERT INTO policies (scope, automatic, set_by) SELECT $1, $2::boolean, $3 WHERE "
        "EXISTS (SELECT 1 FROM registrar.departments WHERE code = $1) OR EXISTS (SELECT 1 FROM "
        "registrar.resources WHERE resource = $1) ON CONFLICT (scope) DO UPDATE SET automatic = "
        "EXCLUDED.automatic, set_by = EXCLUDED.set_by, set_at = now() RETURNING scope, "
        "automatic, set_by, " PUB_TS("set_at"),
        3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the policy");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "scope",
                            "scope names no department and no catalogue entry");
    }
    odp_rep_release_policy_t rep = {0};
    rep.scope = pub_col(r, 0, 0);
    rep.automatic = odp_v_bool(PQgetvalue(r, 0, 1)[0] == 't');
    rep.set_by = pub_col(r, 0, 2);
    rep.set_at = pub_col(r, 0, 3);
    int rc = odp_encode(&odp_def_rep_release_policy, &rep, req->pk);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the policy did not encode") : 0;
}

void release_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_release_queue, ODP_ALLOW_OPERATIONS, s_queue);
    odp_service_route(svc, &odp_def_release_publish, ODP_ALLOW_OPERATIONS, s_publish);
    odp_service_route(svc, &odp_def_release_withdraw, ODP_ALLOW_OPERATIONS, s_withdraw);
    odp_service_route(svc, &odp_def_release_restore, ODP_ALLOW_OPERATIONS, s_restore);
    odp_service_route(svc, &odp_def_release_list, ODP_ALLOW_OPERATIONS, s_list);
    odp_service_route(svc, &odp_def_release_show, ODP_ALLOW_OPERATIONS, s_show);
    odp_service_route(svc, &odp_def_release_policy, ODP_ALLOW_OPERATIONS, s_policy);
}

/*  ---- automatic releases ------------------------------------------------------------------ */

static bool s_topic(const odp_event_t *ev, const char *topic)
{
    return ev->topic_len == strlen(topic) && memcmp(ev->topic, topic, ev->topic_len) == 0;
}

/*  review.started (or, from an older reviewer, review.flagged): the version is received
    and its review runs. It is queued for its indexes and counts, which start once the
    review's checks are done (S_CHECKED), so that the checks have the cores and the
    decision finds them ready. A version rejected in the end needed none: the cost is one
    build of a version that reached review. */
static odp_event_rc_t s_on_reviewed(odp_event_t *ev)
{
    bool started = s_topic(ev, "review.started");
    odp_ev_review_started_t st;
    odp_ev_review_flagged_t fl;
    odp_error_t e;
    if (odp_decode_fields(started ? &odp_def_ev_review_started : &odp_def_ev_review_flagged,
                          ev->body, started ? (void *)&st : (void *)&fl, &e) < 0) {
        snprintf(ev->why, sizeof ev->why, "%s: %.160s%s%.40s",
                 started ? "review.started" : "review.flagged", e.message,
                 e.field[0] ? " field=" : "", e.field);
        return ODP_EVENT_REFUSE;
    }
    char upload[24];
    snprintf(upload, sizeof upload, "%" PRId64, started ? st.upload.i : fl.upload.i);
    const char *vals[1] = {upload};
    PGresult *r =
        odp_db_exec(ev->db, "INSERT INTO index_ahead (upload) VALUES ($1) ON CONFLICT DO NOTHING",
                    1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_event_db_fail(ev, r, "the index queue");
    PQclear(r);
    return ODP_EVENT_DONE;
}

/*  A version's checks are done (review.flagged): its builds and counts start at the
    loop's next turn (s_kick_tick), not at the next of its slower ticks. */
static bool s_kick = false;

static odp_event_rc_t s_on_event(odp_event_t *ev, void *arg)
{
    (void)arg;
    if (strcmp(ev->source, "reviewer") != 0)
        return ODP_EVENT_DONE;
    if (s_topic(ev, "review.flagged"))
        s_kick = true;
    if (s_topic(ev, "review.started") || s_topic(ev, "review.flagged"))
        return s_on_reviewed(ev);
    if (!s_topic(ev, "review.approved"))
        return ODP_EVENT_DONE;
    odp_ev_review_approved_t m;
    odp_error_t e;
    if (odp_decode_fields(&odp_def_ev_review_approved, ev->body, &m, &e) < 0) {
        snprintf(ev->why, sizeof ev->why, "review.approved: %.160s%s%.40s", e.message,
                 e.field[0] ? " field=" : "", e.field);
        return ODP_EVENT_REFUSE;
    }
    char upload[24];
    snprintf(upload, sizeof upload, "%" PRId64, m.upload.i);
    const char *vals[1] = {upload};
    PGresult *r = odp_db_exec(ev->db,
                              "INSERT INTO pending (upload, resource, table_name, version) SELECT "
                              "v.upload, v.resource, v.table_name, v.version FROM reviewer.reviews "
                              "v WHERE v.upload = $1 AND policy_auto(v.resource, v.department) "
                              "ON CONFLICT (upload) DO NOTHING",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_event_db_fail(ev, r, "the pending release");
    PQclear(r);
    return ODP_EVENT_DONE;
}

/*  Approved versions under an automatic policy that are neither released nor pending nor
    refused before (a refusal waits for operations). */
static int s_on_start(odp_db_t *db, void *arg)
{
    (void)arg;
    return odp_db_cmd(db,
                      "INSERT INTO pending (upload, resource, table_name, version) SELECT "
                      "q.upload, q.resource, q.table_name, q.version FROM (" QUEUE_SQL
                      ") q (resource, department, table_name, version, upload, rows, policy, "
                      "decided_at) WHERE q.policy = 'auto' AND NOT EXISTS (SELECT 1 FROM attempts "
                      "a WHERE a.resource = q.resource AND a.table_name = q.table_name AND "
                      "a.version = q.version AND a.outcome = 'refused') ON CONFLICT DO NOTHING",
                      0, NULL, NULL);
}

/*  A version queued in index_ahead a whose review has checked it (or has ended, or never
    began: a release asks for the indexes all the same). Until then the version's checks
    have the cores to themselves: they and the builds and counts after a push are more
    work than two cores do in the time either is measured against (docs/scaling.md,
    "Release, round 4"), and the checks come first. */
#define S_CHECKED                                                                                  \
    "NOT EXISTS (SELECT 1 FROM reviewer.reviews v WHERE v.upload = a.upload AND v.state = "        \
    "'in_review' AND v.checked_at IS NULL)"

/*  Counting ahead (count_ahead): one version at a time on a connection of the
    publisher's own besides the loop's, so that a scan of a large version never holds the
    loop; the timer starts it and collects its result. */
static odp_db_t *s_count_db = NULL;
static int64_t s_counting = 0; /* the upload being counted, 0 when none */
static int64_t s_count_t0 = 0;

static void s_count_ahead(odp_db_t *db)
{
    if (s_counting) {
        PGconn *c = odp_db_conn(s_count_db);
        if (c && PQconsumeInput(c) && PQisBusy(c))
            return;
        bool ok = c != NULL;
        char msg[200] = "the connection failed";
        PGresult *r;
        while (c && (r = PQgetResult(c))) {
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                ok = false;
                snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
            }
            PQclear(r);
        }
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, s_counting);
        const char *vals[1] = {id};
        if (ok) {
            odp_info("event=release.counted_ahead upload=%" PRId64 " ms=%" PRId64, s_counting,
                     zclock_mono() - s_count_t0);
        } else {
            /*  The release counts everything itself. */
            odp_warn("event=release.count_ahead_failed upload=%" PRId64 " error=\"%s\"", s_counting,
                     msg);
            odp_db_cmd(db, "UPDATE index_ahead SET counted = false WHERE upload = $1", 1, vals,
                       NULL);
        }
        s_counting = 0;
    }
    PGresult *r = odp_db_exec(db,
                              "SELECT a.upload FROM index_ahead a WHERE a.counted IS NULL "
                              "AND " S_CHECKED " AND NOT EXISTS (SELECT 1 FROM reviewer.reviews "
                              "v WHERE v.upload = a.upload AND v.state = 'rejected') ORDER BY "
                              "a.queued_at, a.upload LIMIT 1",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0) {
        PQclear(r);
        return;
    }
    if (!s_count_db)
        s_count_db = odp_db_new("publisher");
    PGconn *c = s_count_db ? odp_db_conn(s_count_db) : NULL;
    const char *vals[1] = {PQgetvalue(r, 0, 0)};
    if (c && PQsendQueryParams(c, "SELECT count_ahead($1)", 1, NULL, vals, NULL, NULL, 0)) {
        s_counting = strtoll(vals[0], NULL, 10);
        s_count_t0 = zclock_mono();
    }
    PQclear(r);
}

/*  The versions whose review has checked them, indexed and followed until their indexes
    are ready (a few milliseconds each: the registrar answers at once); a version rejected
    meanwhile needs neither indexes nor counts. Gives up after a few failures: a release
    asks for the indexes again anyway. */
static void s_index_ahead(odp_db_t *db)
{
    PGresult *r = odp_db_exec(db,
                              "SELECT a.upload, EXISTS (SELECT 1 FROM reviewer.reviews v WHERE "
                              "v.upload = a.upload AND v.state = 'rejected') FROM index_ahead a "
                              "WHERE a.ready_at IS NULL AND a.next_at <= now() AND " S_CHECKED
                              " ORDER BY a.queued_at, a.upload LIMIT 4",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t upload = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        const char *vals[1] = {PQgetvalue(r, i, 0)};
        odp_error_t err = {0};
        if (PQgetvalue(r, i, 1)[0] == 't') {
            /*  Left alone while its count runs: the count's end removes nothing. */
            if (upload != s_counting)
                odp_db_cmd(db,
                           "WITH c AS (DELETE FROM counts_ahead WHERE upload = $1) DELETE FROM "
                           "index_ahead WHERE upload = $1",
                           1, vals, NULL);
        } else if (s_index(db, upload, true, &err) < 0) {
            odp_warn("event=release.index_ahead_failed upload=%" PRId64 " error=\"%s\"", upload,
                     err.message);
            odp_db_cmd(db, "DELETE FROM index_ahead WHERE upload = $1 AND tries >= 5", 1, vals,
                       NULL);
            break; /* the registrar is likely down for the others too */
        }
    }
    PQclear(r);
}

/*  The index builds followed, then one pending version per tick: released, or refused
    (kept in attempts; operations decide), or left for the next tick while its indexes are
    built or when something transient failed. */
static void s_tick(odp_service_t *svc, void *arg)
{
    (void)arg;
    odp_db_t *db = odp_service_db(svc);
    if (!odp_db_up(db))
        return;
    s_index_ahead(db);
    s_count_ahead(db);
    PGresult *r = odp_db_exec(db,
                              "SELECT upload, resource, table_name, version FROM pending WHERE "
                              "queued_at + least(tries, 60) * interval '1 second' <= now() "
                              "ORDER BY queued_at, upload LIMIT 1",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0) {
        PQclear(r);
        return;
    }
    s_job_t job = {0};
    snprintf(job.resource, sizeof job.resource, "%s", PQgetvalue(r, 0, 1));
    snprintf(job.table, sizeof job.table, "%s", PQgetvalue(r, 0, 2));
    job.version = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    snprintf(job.actor, sizeof job.actor, "%s", s_service_actor);
    const char *vals[2] = {PQgetvalue(r, 0, 0), NULL};
    odp_error_t err = {0};
    odp_outbox_t *outbox = odp_service_outbox(svc);
    int rc = s_release(db, outbox, &job, 0, &err);
    if (rc == 0) {
        odp_outbox_flush(outbox);
    } else if (rc > 0) {
        /*  Its indexes are being built: the next tick looks again. */
    } else if (err.code == ODP_E_UNAVAILABLE || err.code == ODP_E_INTERNAL) {
        vals[1] = err.message;
        odp_db_cmd(db, "UPDATE pending SET tries = tries + 1, last_error = $2 WHERE upload = $1", 2,
                   vals, NULL);
    } else {
        odp_info("event=release.auto_refused resource=%s version=%" PRId64 " reason=\"%s\"",
                 job.resource, job.version, err.message);
        odp_db_cmd(db, "DELETE FROM pending WHERE upload = $1", 1, vals, NULL);
    }
    PQclear(r);
}

static void s_kick_tick(odp_service_t *svc, void *arg)
{
    (void)arg;
    odp_db_t *db = odp_service_db(svc);
    if (!s_kick || !odp_db_up(db))
        return;
    s_kick = false;
    s_index_ahead(db);
    s_count_ahead(db);
}

odp_consumer_t *release_consumer_start(odp_service_t *svc)
{
    odp_consumer_cfg_t cfg = {.on_event = s_on_event, .on_start = s_on_start, .arg = svc};
    odp_consumer_t *c = odp_consumer_new_service(svc, &cfg);
    if (!c)
        return NULL;
    char err[256];
    if (odp_consumer_follow(c, "reviewer", 1, err, sizeof err) < 0) {
        odp_error("event=release.follow_failed error=\"%s\"", err);
        odp_consumer_destroy(&c);
        return NULL;
    }
    odp_service_timer(svc, (int)odp_config_int("publisher", "TICK_MS", 200), s_tick, NULL);
    odp_service_timer(svc, 10, s_kick_tick, NULL);
    return c;
}

void release_stop(void)
{
    odp_client_destroy(&s_registrar);
    odp_db_destroy(&s_count_db);
}
