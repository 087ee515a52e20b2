/*  What a review found, for readers outside operations' queue: review.report, the version's
    report in Frictionless' shape (valid, stats, tasks[].errors[]) with the comparison and
    the quality score, and review.findings, a department's own versions' findings and
    rejection reasons (R9e). Counts are exact (SQL aggregates over every finding); the
    listed errors are samples, capped per type. Both are built as jsonb in one statement
    and travel as msgpack. */
#include "reviewer.h"

#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int review_pack_json_text(const char *text, msgpack_sbuffer *buf)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!j)
        return -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    int rc = odp_json_pack(&pk, j);
    json_decref(j);
    return rc;
}

/*  Frictionless numbers rows from the header (row 1), so a version's data row n is row
    n + 1 there; fieldNumber is the field's position in the dictionary. */
static const char s_report_sql[] =
    "WITH v AS (SELECT v.upload, v.resource, v.table_name, v.version, v.rows_received, "
    "v.compare, v.started_at, v.checked_at, up.size, up.sha256, up.dictionary_revision "
    "FROM reviews v JOIN registrar.uploads up ON up.id = v.upload "
    "WHERE v.upload = $1 AND ($2 = '0' OR v.department = $3)), "
    "fl AS (SELECT d.name, d.position FROM v JOIN registrar.dictionary_revision_fields d "
    "ON d.resource = v.resource AND d.table_name = v.table_name "
    "AND d.revision = v.dictionary_revision), "
    "n AS (SELECT type, count(*) AS n FROM findings WHERE upload = $1 GROUP BY type), "
    "e AS (SELECT f.*, fl.position FROM (SELECT f.*, row_number() OVER (PARTITION BY f.type "
    "ORDER BY f.row_no, f.field) AS k FROM findings f WHERE f.upload = $1) f "
    "LEFT JOIN fl ON fl.name = f.field WHERE f.k <= $4), "
    "t AS (SELECT coalesce(sum(n), 0) AS total, coalesce(jsonb_object_agg(type, n), '{}') "
    "AS by_type FROM n) "
    "SELECT t.total = 0, jsonb_build_object('valid', t.total = 0, 'stats', "
    "jsonb_build_object('tasks', 1, 'errors', t.total, 'warnings', 0, 'seconds', "
    "round(extract(epoch FROM coalesce(v.checked_at, now()) - v.started_at)::numeric, 3)), "
    "'warnings', '[]'::jsonb, 'errors', '[]'::jsonb, 'tasks', jsonb_build_array("
    "jsonb_build_object('valid', t.total = 0, 'name', v.table_name, 'type', 'table', "
    "'place', v.resource || '/' || v.table_name || '@' || v.version, "
    "'labels', coalesce((SELECT jsonb_agg(name ORDER BY position) FROM fl), '[]'), "
    "'partial', t.total > (SELECT count(*) FROM e), "
    "'stats', jsonb_build_object('errors', t.total, 'warnings', 0, 'rows', v.rows_received, "
    "'fields', (SELECT count(*) FROM fl), 'bytes', v.size, 'hash', v.sha256, "
    "'errorsByType', t.by_type), 'warnings', '[]'::jsonb, "
    "'errors', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object("
    "'type', e.type, 'title', initcap(replace(e.type, '-', ' ')), 'note', e.message, "
    "'message', 'Row ' || (e.row_no + 1) || coalesce(' field \"' || e.field || '\"', '') || "
    "': ' || e.message, 'tags', CASE WHEN e.field IS NULL THEN '[\"#table\", \"#row\"]' "
    "ELSE '[\"#table\", \"#row\", \"#cell\"]' END::jsonb, 'rowNumber', e.row_no + 1, "
    "'fieldName', e.field, 'fieldNumber', e.position, 'cell', e.value, 'check', e.check_name)) "
    "ORDER BY e.row_no, e.type, e.field) FROM e), '[]'))))::text, v.compare::text, "
    "(SELECT to_jsonb(q) - 'upload' FROM quality_scores q WHERE q.upload = $1)::text "
    "FROM v, t";

static int s_review_report(odp_req_t *req)
{
    const odp_review_report_t *m = req->msg;
    char id[24], limit[24];
    snprintf(id, sizeof id, "%" PRId64, m->upload.i);
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 100);
    bool provider = strcmp(req->actor->kind, "provider") == 0;
    const char *vals[4] = {id, provider ? "1" : "0", req->actor->id, limit};
    PGresult *r = odp_db_exec(req->db, s_report_sql, 4, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the report");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "upload", "no review of upload %" PRId64,
                            m->upload.i);
    }
    msgpack_sbuffer rb, cb, sb;
    msgpack_sbuffer_init(&rb);
    msgpack_sbuffer_init(&cb);
    msgpack_sbuffer_init(&sb);
    odp_rep_review_report_t rep = {0};
    rep.upload = m->upload;
    rep.valid = odp_v_bool(PQgetvalue(r, 0, 0)[0] == 't');
    int rc = review_pack_json_text(PQgetvalue(r, 0, 1), &rb);
    rep.report = odp_v_raw(rb.data, rb.size);
    if (rc == 0 && !PQgetisnull(r, 0, 2) &&
        (rc = review_pack_json_text(PQgetvalue(r, 0, 2), &cb)) == 0)
        rep.compare = odp_v_raw(cb.data, cb.size);
    if (rc == 0 && !PQgetisnull(r, 0, 3) &&
        (rc = review_pack_json_text(PQgetvalue(r, 0, 3), &sb)) == 0)
        rep.score = odp_v_raw(sb.data, sb.size);
    if (rc == 0)
        rc = odp_encode(&odp_def_rep_review_report, &rep, req->pk);
    msgpack_sbuffer_destroy(&rb);
    msgpack_sbuffer_destroy(&cb);
    msgpack_sbuffer_destroy(&sb);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the report did not encode") : 0;
}

static int s_review_findings(odp_req_t *req)
{
    const odp_review_findings_t *m = req->msg;
    char id[24], limit[24];
    snprintf(id, sizeof id, "%" PRId64, m->upload.i);
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 100);
    bool provider = strcmp(req->actor->kind, "provider") == 0;
    const char *vals[4] = {m->upload.present ? id : NULL, provider ? "1" : "0", req->actor->id,
                           limit};
    /*  What another department's version holds does not exist for a provider: the same
        NOT_FOUND as for an upload without a review. */
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT v.upload, v.resource, v.table_name, v.version, v.state, v.rows_received, "
        "(SELECT count(*) FROM quarantine q WHERE q.upload = v.upload AND q.state = "
        "'isolated'), (SELECT count(*) FROM findings f WHERE f.upload = v.upload), s.reason, "
        "to_char(s.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('row', f.row_no, "
        "'field', f.field, 'value', f.value, 'type', f.type, 'check', f.check_name, "
        "'message', f.message)) ORDER BY f.row_no, f.field) FROM (SELECT * FROM findings f "
        "WHERE f.upload = v.upload ORDER BY f.row_no, f.field LIMIT $4::bigint) f), "
        "'[]')::text FROM reviews v LEFT JOIN signoffs s ON s.upload = v.upload "
        "WHERE ($1::bigint IS NULL OR v.upload = $1::bigint) AND ($2 = '0' OR "
        "v.department = $3) ORDER BY v.upload DESC LIMIT 100",
        4, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the findings");
    if (m->upload.present && PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "upload", "no review of upload %" PRId64,
                            m->upload.i);
    }
    msgpack_sbuffer items, errors;
    msgpack_sbuffer_init(&items);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, (size_t)PQntuples(r));
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        odp_rec_version_findings_t rec = {0};
        rec.upload = odp_v_int(strtoll(PQgetvalue(r, i, 0), NULL, 10));
        rec.resource = odp_v_str(PQgetvalue(r, i, 1));
        rec.table = odp_v_str(PQgetvalue(r, i, 2));
        rec.version = odp_v_int(strtoll(PQgetvalue(r, i, 3), NULL, 10));
        rec.state = odp_v_str(PQgetvalue(r, i, 4));
        rec.received = odp_v_int(strtoll(PQgetvalue(r, i, 5), NULL, 10));
        rec.quarantined = odp_v_int(strtoll(PQgetvalue(r, i, 6), NULL, 10));
        rec.findings = odp_v_int(strtoll(PQgetvalue(r, i, 7), NULL, 10));
        if (!PQgetisnull(r, i, 8))
            rec.reason = odp_v_str(PQgetvalue(r, i, 8));
        if (!PQgetisnull(r, i, 9))
            rec.decided_at = odp_v_str(PQgetvalue(r, i, 9));
        msgpack_sbuffer_init(&errors);
        rc = review_pack_json_text(PQgetvalue(r, i, 10), &errors);
        rec.errors = odp_v_raw(errors.data, errors.size);
        if (rc == 0)
            rc = odp_encode(&odp_def_rec_version_findings, &rec, &pk);
        msgpack_sbuffer_destroy(&errors);
    }
    if (rc == 0) {
        odp_rep_list_t rep = {0};
        rep.items = odp_v_raw(items.data, items.size);
        rc = odp_encode(&odp_def_rep_list, &rep, req->pk);
    }
    msgpack_sbuffer_destroy(&items);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the findings did not encode") : 0;
}

void report_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_review_report, ODP_ALLOW_OPERATIONS | ODP_ALLOW_PROVIDER,
                      s_review_report);
    odp_service_route(svc, &odp_def_review_findings, ODP_ALLOW_OPERATIONS | ODP_ALLOW_PROVIDER,
                      s_review_findings);
}
