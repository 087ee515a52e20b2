/*  After the checks: operations handle the quarantined rows (R9d), decide on the version
    with a sign-off (R9c, R5.6a), and keep the versioned acceptance standard whose
    thresholds the reviewer applies itself (review.c). */
#include "reviewer.h"

#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static odp_val_t s_col(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_strn(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static odp_val_t s_int(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_int(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

typedef void (*s_fill_fn)(PGresult *r, int i, void *rec);

/*  Every row of r as a record of def in a rep_list reply. Clears r. */
static int s_pack_list(odp_req_t *req, PGresult *r, const odp_msgdef_t *def, s_fill_fn fill,
                       void *rec, size_t size)
{
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, (size_t)PQntuples(r));
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        memset(rec, 0, size);
        fill(r, i, rec);
        rc = odp_encode(def, rec, &pk);
    }
    if (rc == 0) {
        odp_rep_list_t rep = {0};
        rep.items = odp_v_raw(items.data, items.size);
        rc = odp_encode(&odp_def_rep_list, &rep, req->pk);
    }
    msgpack_sbuffer_destroy(&items);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the list") : 0;
}

/*  ---- quarantine ------------------------------------------------------------------------- */

#define CASE_COLS                                                                                  \
    "q.upload, q.row_no, v.resource, v.department, v.version, "                                    \
    "(SELECT string_agg(DISTINCT f.check_name, ',') FROM findings f WHERE f.upload = q.upload "    \
    "AND f.row_no = q.row_no), (SELECT string_agg(DISTINCT f.field, ',') FROM findings f "         \
    "WHERE f.upload = q.upload AND f.row_no = q.row_no), q.state, q.handled_by, " TS(              \
        "q.handled_at") ", q.comment, q.field, q.old_value, q.new_value"

static void s_fill_case(PGresult *r, int i, void *out)
{
    odp_rec_quarantine_t *c = out;
    c->upload = s_int(r, i, 0);
    c->row = s_int(r, i, 1);
    c->resource = s_col(r, i, 2);
    c->department = s_col(r, i, 3);
    c->version = s_int(r, i, 4);
    c->checks = PQgetisnull(r, i, 5) ? odp_v_str("") : s_col(r, i, 5);
    c->fields = PQgetisnull(r, i, 6) ? odp_v_str("") : s_col(r, i, 6);
    c->state = s_col(r, i, 7);
    c->handled_by = s_col(r, i, 8);
    c->handled_at = s_col(r, i, 9);
    c->comment = s_col(r, i, 10);
    c->field = s_col(r, i, 11);
    c->old_value = s_col(r, i, 12);
    c->new_value = s_col(r, i, 13);
}

static bool s_one_of(const odp_val_t *v, const char *const *list)
{
    for (; *list; list++)
        if (odp_v_eq(v, *list))
            return true;
    return false;
}

static const char *const s_outcomes[] = {"corrected", "dropped", "released", NULL};

static int s_quarantine_list(odp_req_t *req)
{
    const odp_quarantine_list_t *m = req->msg;
    static const char *const states[] = {"isolated", "corrected", "dropped", "released", NULL};
    if (m->state.present && !s_one_of(&m->state, states))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "state",
                            "state is one of isolated, corrected, dropped, released");
    char upload[24], limit[24];
    snprintf(upload, sizeof upload, "%" PRId64, m->upload.i);
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 1000);
    const char *vals[6] = {m->department.present ? m->department.str : NULL,
                           m->resource.present ? m->resource.str : NULL,
                           m->upload.present ? upload : NULL,
                           m->check.present ? m->check.str : NULL,
                           m->state.present ? m->state.str : NULL,
                           limit};
    int lens[6] = {(int)m->department.len, (int)m->resource.len, -1,
                   (int)m->check.len,      (int)m->state.len,    -1};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT " CASE_COLS " FROM quarantine q JOIN reviews v ON v.upload = q.upload "
        "WHERE ($1::text IS NULL OR v.department = $1) AND ($2::text IS NULL OR v.resource = $2) "
        "AND ($3::bigint IS NULL OR q.upload = $3) AND ($4::text IS NULL OR EXISTS (SELECT 1 "
        "FROM findings f WHERE f.upload = q.upload AND f.row_no = q.row_no AND "
        "f.check_name = $4)) AND ($5::text IS NULL OR q.state = $5) "
        "ORDER BY q.upload, q.row_no LIMIT $6",
        6, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the quarantine");
    odp_rec_quarantine_t rec;
    return s_pack_list(req, r, &odp_def_rec_quarantine, s_fill_case, &rec, sizeof rec);
}

static int s_handle_txn(odp_req_t *req, void *arg)
{
    (void)arg;
    const odp_quarantine_handle_t *m = req->msg;
    char upload[24], row[24];
    snprintf(upload, sizeof upload, "%" PRId64, m->upload.i);
    snprintf(row, sizeof row, "%" PRId64, m->row.i);
    const char *key[2] = {upload, row};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT q.state, v.state FROM quarantine q JOIN reviews v ON "
                              "v.upload = q.upload WHERE q.upload = $1 AND q.row_no = $2 "
                              "FOR UPDATE OF q",
                              2, key, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the quarantined row");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "row",
                            "row %" PRId64 " of upload %" PRId64 " is not quarantined", m->row.i,
                            m->upload.i);
    }
    char state[17], review[17];
    snprintf(state, sizeof state, "%s", PQgetvalue(r, 0, 0));
    snprintf(review, sizeof review, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    if (strcmp(state, "isolated") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "row",
                            "row %" PRId64 " of upload %" PRId64 " is handled already (%s)",
                            m->row.i, m->upload.i, state);
    if (strcmp(review, "in_review") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " is %s: its rows are no longer handled", m->upload.i,
                            review);
    const char *vals[6] = {upload,         row,
                           m->outcome.str, m->comment.str,
                           req->actor_str, m->new_value.present ? m->new_value.str : NULL};
    int lens[6] = {-1, -1, (int)m->outcome.len, (int)m->comment.len, -1, (int)m->new_value.len};
    /*  A correction by operations names the value it replaces: the first finding's field
        (a registrar reject has none: then the old value is the raw row). */
    r = odp_db_exec(req->db,
                    "WITH f AS (SELECT field, value FROM findings WHERE upload = $1 AND "
                    "row_no = $2 ORDER BY field NULLS LAST, check_name LIMIT 1) "
                    "UPDATE quarantine q SET state = $3, comment = $4, handled_by = $5, "
                    "handled_at = now(), new_value = $6, "
                    "field = CASE WHEN $3 = 'corrected' THEN (SELECT field FROM f) END, "
                    "old_value = CASE WHEN $3 = 'corrected' THEN (SELECT value FROM f) END "
                    "FROM reviews v WHERE v.upload = q.upload AND q.upload = $1 AND "
                    "q.row_no = $2 RETURNING v.resource, v.department",
                    6, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the handling");
    odp_ev_quarantine_handled_t ev = {0};
    ev.resource = odp_v_str(PQgetvalue(r, 0, 0));
    ev.department = odp_v_str(PQgetvalue(r, 0, 1));
    ev.upload = m->upload;
    ev.row = m->row;
    ev.outcome = m->outcome;
    int64_t seq =
        odp_outbox_append(req->outbox, &odp_def_ev_quarantine_handled, &ev, req->actor_str);
    PQclear(r);
    if (seq < 0)
        return odp_req_db_fail(req, NULL, "the event");
    r = odp_db_exec(req->db,
                    "SELECT " CASE_COLS " FROM quarantine q JOIN reviews v ON "
                    "v.upload = q.upload WHERE q.upload = $1 AND q.row_no = $2",
                    2, key, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the handled row");
    odp_rec_quarantine_t rec = {0};
    s_fill_case(r, 0, &rec);
    int rc = odp_encode(&odp_def_rec_quarantine, &rec, req->pk);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the row did not encode") : 0;
}

static int s_quarantine_handle(odp_req_t *req)
{
    const odp_quarantine_handle_t *m = req->msg;
    if (!s_one_of(&m->outcome, s_outcomes))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "outcome",
                            "outcome is one of corrected, dropped, released");
    bool corrected = odp_v_eq(&m->outcome, "corrected");
    if (corrected != m->new_value.present)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "new_value",
                            corrected ? "a correction needs the new value"
                                      : "only a correction has a new value");
    if (odp_req_txn(req, s_handle_txn, NULL) < 0)
        return -1;
    odp_info("event=quarantine.handled upload=%" PRId64 " row=%" PRId64 " outcome=%.*s",
             m->upload.i, m->row.i, (int)m->outcome.len, m->outcome.str);
    return 0;
}

/*  ---- decision and sign-off ------------------------------------------------------------- */

static void s_fill_queued(PGresult *r, int i, void *out)
{
    odp_rec_review_queued_t *q = out;
    q->upload = s_int(r, i, 0);
    q->resource = s_col(r, i, 1);
    q->table = s_col(r, i, 2);
    q->version = s_int(r, i, 3);
    q->department = s_col(r, i, 4);
    q->received = s_int(r, i, 5);
    q->isolated = s_int(r, i, 6);
    q->started_at = s_col(r, i, 7);
}

static int s_review_queue(odp_req_t *req)
{
    const odp_review_queue_t *m = req->msg;
    char limit[24];
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 1000);
    const char *vals[1] = {limit};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT v.upload, v.resource, v.table_name, v.version, v.department, v.rows_received, "
        "(SELECT count(*) FROM quarantine q WHERE q.upload = v.upload AND "
        "q.state = 'isolated'), " TS(
            "v.started_at") " FROM reviews v WHERE v.state = "
                            "'in_review' ORDER BY v.started_at, v.upload LIMIT $1",
        1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the queue");
    odp_rec_review_queued_t rec;
    return s_pack_list(req, r, &odp_def_rec_review_queued, s_fill_queued, &rec, sizeof rec);
}

int review_signoff(odp_db_t *db, odp_outbox_t *outbox, int64_t upload, bool approve,
                   const char *reason, int reason_len, const char *actor, PGresult **failed)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[4] = {id, approve ? "approved" : "rejected", reason, actor};
    int lens[4] = {-1, -1, reason_len, -1};
    *failed = NULL;
    PGresult *r = odp_db_exec(
        db,
        "WITH s AS (INSERT INTO signoffs (upload, decision, reason, decided_by, standard, "
        "findings) VALUES ($1, $2, $3, $4, (SELECT max(version) FROM standards), "
        "findings_summary($1)) RETURNING upload) UPDATE reviews v SET state = $2 FROM s "
        "WHERE v.upload = s.upload RETURNING v.resource, v.department, v.version",
        4, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        *failed = r;
        return -1;
    }
    odp_val_t resource = odp_v_str(PQgetvalue(r, 0, 0));
    odp_val_t department = odp_v_str(PQgetvalue(r, 0, 1));
    odp_val_t version = odp_v_int(strtoll(PQgetvalue(r, 0, 2), NULL, 10));
    int64_t seq;
    if (approve) {
        odp_ev_review_approved_t ev = {0};
        ev.resource = resource;
        ev.department = department;
        ev.upload = odp_v_int(upload);
        ev.version = version;
        seq = odp_outbox_append(outbox, &odp_def_ev_review_approved, &ev, actor);
    } else {
        odp_ev_review_rejected_t ev = {0};
        ev.resource = resource;
        ev.department = department;
        ev.upload = odp_v_int(upload);
        ev.version = version;
        ev.reason = odp_v_strn(reason, (size_t)reason_len);
        seq = odp_outbox_append(outbox, &odp_def_ev_review_rejected, &ev, actor);
    }
    PQclear(r);
    return seq < 0 ? -1 : 0;
}

static int s_decide_txn(odp_req_t *req, void *arg)
{
    (void)arg;
    const odp_review_decide_t *m = req->msg;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, m->upload.i);
    const char *vals[1] = {id};
    /*  NOWAIT: the reviewer's checker holds the row while it checks the version, and the
        loop must not wait for that. */
    PGresult *r = odp_db_exec(req->db,
                              "SELECT v.state, (SELECT count(*) FROM quarantine q WHERE "
                              "q.upload = v.upload AND q.state = 'isolated'), v.checked_at IS "
                              "NULL FROM reviews v WHERE v.upload = $1 FOR UPDATE NOWAIT",
                              1, vals, NULL);
    if (r && strcmp(odp_db_state(r), "55P03") == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " is being checked; decide once it is checked",
                            m->upload.i);
    }
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the review");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "upload", "no review of upload %" PRId64,
                            m->upload.i);
    }
    char state[17];
    snprintf(state, sizeof state, "%s", PQgetvalue(r, 0, 0));
    int64_t isolated = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    bool unchecked = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    PQclear(r);
    if (strcmp(state, "in_review") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " is %s, not in review", m->upload.i, state);
    if (unchecked)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " is not checked yet; decide once it is checked",
                            m->upload.i);
    if (m->approve.b && isolated > 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " has %" PRId64
                            " quarantined rows not handled yet (quarantine.handle)",
                            m->upload.i, isolated);
    PGresult *failed;
    if (review_signoff(req->db, req->outbox, m->upload.i, m->approve.b,
                       m->reason.present ? m->reason.str : NULL, (int)m->reason.len, req->actor_str,
                       &failed) < 0)
        return odp_req_db_fail(req, failed, "the sign-off");
    return review_show_pack(req, m->upload.i);
}

static int s_review_decide(odp_req_t *req)
{
    const odp_review_decide_t *m = req->msg;
    if (!m->approve.b && !m->reason.present)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "reason",
                            "a rejection needs a reason: it goes back to the department");
    if (odp_req_txn(req, s_decide_txn, NULL) < 0)
        return -1;
    odp_info("event=review.decided upload=%" PRId64 " approve=%d", m->upload.i, m->approve.b);
    return 0;
}

/*  ---- the acceptance standard ------------------------------------------------------------ */

static int s_standard_pack(odp_req_t *req)
{
    PGresult *r = odp_db_exec(req->db,
                              "SELECT version, checks::text, comment, set_by, " TS(
                                  "set_at") " FROM standards ORDER BY version DESC LIMIT 1",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the standard");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    odp_rep_standard_t rep = {0};
    rep.version = odp_v_int(0);
    json_t *checks = NULL;
    if (PQntuples(r) == 1) {
        rep.version = s_int(r, 0, 0);
        rep.comment = s_col(r, 0, 2);
        rep.set_by = s_col(r, 0, 3);
        rep.set_at = s_col(r, 0, 4);
        checks = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
    }
    msgpack_pack_array(&pk, json_array_size(checks));
    for (size_t i = 0; i < json_array_size(checks); i++) {
        json_t *c = json_array_get(checks, i);
        odp_rec_standard_check_t rec = {0};
        rec.check = odp_v_str(json_string_value(json_object_get(c, "check")));
        rec.mostly = odp_v_num(json_number_value(json_object_get(c, "mostly")));
        odp_encode(&odp_def_rec_standard_check, &rec, &pk);
    }
    rep.checks = odp_v_raw(buf.data, buf.size);
    int rc = odp_encode(&odp_def_rep_standard, &rep, req->pk);
    json_decref(checks);
    msgpack_sbuffer_destroy(&buf);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the standard did not encode") : 0;
}

static int s_standard_get(odp_req_t *req)
{
    return s_standard_pack(req);
}

static int s_standard_txn(odp_req_t *req, void *arg)
{
    const char *checks = arg;
    const odp_standard_set_t *m = req->msg;
    const char *vals[3] = {checks, m->comment.present ? m->comment.str : NULL, req->actor_str};
    int lens[3] = {-1, (int)m->comment.len, -1};
    /*  The table lock makes version numbers follow one another without gaps or clashes. */
    if (odp_db_cmd(req->db, "LOCK TABLE standards IN EXCLUSIVE MODE", 0, NULL, NULL) < 0)
        return odp_req_db_fail(req, NULL, "the standard");
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO standards (version, checks, comment, set_by) SELECT "
                              "COALESCE(max(version), 0) + 1, $1::jsonb, $2, $3 FROM standards "
                              "RETURNING version, jsonb_array_length(checks)",
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the standard");
    odp_ev_standard_updated_t ev = {0};
    ev.version = s_int(r, 0, 0);
    ev.checks = s_int(r, 0, 1);
    int64_t seq = odp_outbox_append(req->outbox, &odp_def_ev_standard_updated, &ev, req->actor_str);
    PQclear(r);
    if (seq < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return s_standard_pack(req);
}

static int s_standard_set(odp_req_t *req)
{
    const odp_standard_set_t *m = req->msg;
    const msgpack_object *list = m->checks.obj;
    if (list->type != MSGPACK_OBJECT_ARRAY)
        return odp_req_fail(req, ODP_E_WRONG_TYPE, "checks",
                            "checks must be a list of {check, mostly} maps");
    json_t *checks = json_array();
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < list->via.array.size; i++) {
        odp_rec_standard_check_t c;
        odp_error_t e;
        if (list->via.array.ptr[i].type != MSGPACK_OBJECT_MAP ||
            odp_decode_fields(&odp_def_rec_standard_check, &list->via.array.ptr[i], &c, &e) < 0) {
            rc = odp_req_fail(req, ODP_E_INVALID_VALUE, "checks",
                              "checks[%u] must be a map {check: name, mostly: 0..1}", i);
            break;
        }
        for (size_t k = 0; k < json_array_size(checks); k++)
            if (odp_v_eq(&c.check,
                         json_string_value(json_object_get(json_array_get(checks, k), "check"))))
                rc = odp_req_fail(req, ODP_E_INVALID_VALUE, "checks",
                                  "checks[%u] names check %.*s a second time", i, (int)c.check.len,
                                  c.check.str);
        json_array_append_new(checks, json_pack("{s:s%,s:f}", "check", c.check.str, c.check.len,
                                                "mostly", c.mostly.d));
    }
    char *text = rc == 0 ? json_dumps(checks, JSON_COMPACT) : NULL;
    json_decref(checks);
    if (rc == 0 && !text)
        rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    if (rc == 0)
        rc = odp_req_txn(req, s_standard_txn, text);
    free(text);
    if (rc == 0) {
        odp_info("event=standard.updated checks=%u", list->via.array.size);
        review_recheck_request();
    }
    return rc;
}

void decide_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_quarantine_list, ODP_ALLOW_OPERATIONS, s_quarantine_list);
    odp_service_route(svc, &odp_def_quarantine_handle, ODP_ALLOW_OPERATIONS, s_quarantine_handle);
    odp_service_route(svc, &odp_def_review_queue, ODP_ALLOW_OPERATIONS, s_review_queue);
    odp_service_route(svc, &odp_def_review_decide, ODP_ALLOW_OPERATIONS, s_review_decide);
    odp_service_route(svc, &odp_def_standard_get, ODP_ALLOW_OPERATIONS, s_standard_get);
    odp_service_route(svc, &odp_def_standard_set, ODP_ALLOW_OPERATIONS, s_standard_set);
}
