/*  The uploads row of a push and what is fixed with it: the transfer rules as they were
    at push.begin, the staging table's name and column types. */
#include "push.h"

#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t push_int(PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void push_copy_str(char *buf, size_t size, PGresult *r, int row, int col)
{
    snprintf(buf, size, "%s", PQgetvalue(r, row, col));
}

/*  Dictionary field types, their staging table columns and the loader's types. */
static const struct {
    const char *field;
    const char *sql;
    loader_type_t loader;
} s_types[] = {
    {"text", "text", LOADER_TEXT},
    {"integer", "bigint", LOADER_INTEGER},
    {"numeric", "numeric", LOADER_NUMERIC},
    {"date", "date", LOADER_DATE},
    {"timestamp", "timestamp with time zone", LOADER_TIMESTAMP},
    {"boolean", "boolean", LOADER_BOOLEAN},
};
#define S_NTYPES (sizeof s_types / sizeof s_types[0])

const char *push_type_sql(const char *field_type)
{
    for (size_t t = 0; t < S_NTYPES; t++)
        if (strcmp(s_types[t].field, field_type) == 0)
            return s_types[t].sql;
    return NULL;
}

int push_type_loader(const char *sql_type, loader_type_t *type)
{
    for (size_t t = 0; t < S_NTYPES; t++)
        if (strcmp(s_types[t].sql, sql_type) == 0) {
            *type = s_types[t].loader;
            return 0;
        }
    return -1;
}

void push_stage_name(int64_t upload, char *buf, size_t size)
{
    snprintf(buf, size, "stage_u%" PRId64, upload);
}

int push_hash_at(odp_req_t *req, const push_upload_t *u, crypto_hash_sha256_state *hash)
{
    if (u->has_hash) {
        *hash = u->hash;
        return 0;
    }
    if (u->committed == 0) {
        crypto_hash_sha256_init(hash);
        return 0;
    }
    return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                        "upload %" PRId64 " was begun by another build of the registrar and "
                        "cannot be resumed: push.abort it and push again",
                        u->id);
}

int push_rules_load(odp_req_t *req, push_rules_t *rules)
{
    PGresult *r = odp_db_exec(req->db,
                              "SELECT array_to_string(formats, ','), "
                              "array_to_string(encodings, ','), max_size, max_row_length, "
                              "chunk_size, credit FROM transfer_rules WHERE id = 1",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the transfer rules");
    push_copy_str(rules->formats, sizeof rules->formats, r, 0, 0);
    push_copy_str(rules->encodings, sizeof rules->encodings, r, 0, 1);
    rules->max_size = push_int(r, 0, 2);
    rules->max_row_length = push_int(r, 0, 3);
    rules->chunk_size = push_int(r, 0, 4);
    rules->credit = push_int(r, 0, 5);
    PQclear(r);
    return 0;
}

/*  Load upload id; 404 when there is none, 403 when the actor may not act on it. */
int push_upload_load(odp_req_t *req, int64_t id, push_upload_t *u)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *vals[1] = {ids};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT u.resource, u.table_name, r.department, u.format, coalesce(u.encoding, ''), "
        "u.status, u.sha256, coalesce(u.media_type, ''), u.kind = 'dataset', u.size, "
        "u.committed, u.rows_received, u.rows_rejected, coalesce(u.chunk_size, t.chunk_size), "
        "coalesce(u.max_row_length, t.max_row_length), coalesce(u.version, 0), u.hash_state, "
        "coalesce(u.credit, t.credit) "
        "FROM uploads u JOIN resources r ON r.resource = u.resource "
        "JOIN transfer_rules t ON t.id = 1 WHERE u.id = $1",
        1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the upload");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "upload", "no upload has the number %" PRId64,
                            id);
    }
    memset(u, 0, sizeof *u);
    u->id = id;
    push_copy_str(u->resource, sizeof u->resource, r, 0, 0);
    push_copy_str(u->table, sizeof u->table, r, 0, 1);
    push_copy_str(u->department, sizeof u->department, r, 0, 2);
    push_copy_str(u->format, sizeof u->format, r, 0, 3);
    push_copy_str(u->encoding, sizeof u->encoding, r, 0, 4);
    push_copy_str(u->status, sizeof u->status, r, 0, 5);
    push_copy_str(u->sha256, sizeof u->sha256, r, 0, 6);
    push_copy_str(u->media_type, sizeof u->media_type, r, 0, 7);
    u->dataset = PQgetvalue(r, 0, 8)[0] == 't';
    u->size = push_int(r, 0, 9);
    u->committed = push_int(r, 0, 10);
    u->rows = push_int(r, 0, 11);
    u->rejected = push_int(r, 0, 12);
    u->chunk_size = push_int(r, 0, 13);
    u->max_row_length = push_int(r, 0, 14);
    u->version = push_int(r, 0, 15);
    u->credit = push_int(r, 0, 17);
    /*  A state of another size is from another build: push_hash_at() refuses to go on. */
    if (!PQgetisnull(r, 0, 16)) {
        size_t n = 0;
        unsigned char *st = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 16), &n);
        if (st && n == sizeof u->hash) {
            memcpy(&u->hash, st, n);
            u->has_hash = true;
        }
        PQfreemem(st);
    }
    PQclear(r);
    if (!registrar_may_act(req, u->department))
        return odp_req_fail(req, ODP_E_FORBIDDEN, "upload",
                            "upload %" PRId64 " belongs to another department", id);
    return 0;
}

/*  Load an upload that must still be receiving. */
int push_upload_receiving(odp_req_t *req, int64_t id, push_upload_t *u)
{
    if (push_upload_load(req, id, u) < 0)
        return -1;
    if (strcmp(u->status, "receiving") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " is %s, not receiving", id, u->status);
    return 0;
}

/*  In an open transaction: the uploads row is no longer receiving, its staged rows, their
    counts, rejects and file pieces are gone, and data.failed says why. */
int push_abandon_tx(odp_req_t *req, const push_upload_t *u, const char *code, const char *reason)
{
    char id[24], failure[1100], stage[40], drop[80];
    snprintf(id, sizeof id, "%" PRId64, u->id);
    snprintf(failure, sizeof failure, "%s: %s", code, reason);
    push_stage_name(u->id, stage, sizeof stage);
    snprintf(drop, sizeof drop, "DROP TABLE IF EXISTS %s", stage);
    const char *vals[2] = {id, failure};
    if (odp_db_cmd(req->db,
                   "UPDATE uploads SET status = 'abandoned', failure = $2, finished_at = now(), "
                   "staging_table = NULL, hash_state = NULL WHERE id = $1",
                   2, vals, NULL) < 0 ||
        odp_db_cmd(req->db, drop, 0, NULL, NULL) < 0 ||
        odp_db_cmd(req->db, "DELETE FROM rejects WHERE upload = $1", 1, vals, NULL) < 0 ||
        odp_db_cmd(req->db, "DELETE FROM stage_counts WHERE upload = $1", 1, vals, NULL) < 0 ||
        odp_db_cmd(req->db, "DELETE FROM stage_checks WHERE upload = $1", 1, vals, NULL) < 0 ||
        odp_db_cmd(req->db, "DELETE FROM stage_keys WHERE upload = $1", 1, vals, NULL) < 0 ||
        odp_db_cmd(req->db, "DELETE FROM file_chunks WHERE upload = $1", 1, vals, NULL) < 0)
        return odp_req_db_fail(req, NULL, "the abandonment");
    odp_ev_data_failed_t ev = {0};
    ev.resource = odp_v_str(u->resource);
    ev.table = odp_v_str(u->table);
    ev.upload = odp_v_int(u->id);
    ev.code = odp_v_str(code);
    ev.reason = odp_v_str(reason);
    ev.offset = odp_v_int(u->committed);
    if (odp_outbox_append(req->outbox, &odp_def_ev_data_failed, &ev, req->actor_str) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return 0;
}

/*  The push cannot go on: abandon the upload, then answer with the error that ended it. */
int push_fail_upload(odp_req_t *req, const push_upload_t *u, odp_err_t code, const char *field,
                     const char *reason)
{
    push_slot_drop(u->id);
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abandonment");
    if (push_abandon_tx(req, u, odp_err_name(code), reason) < 0)
        return -1;
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abandonment");
    odp_info("event=push.failed upload=%" PRId64 " code=%s", u->id, odp_err_name(code));
    /*  odp_error_set cuts a long message (a header's names) on a UTF-8 boundary. */
    return odp_error_set(req->err, code, field, "upload %" PRId64 " is abandoned: %s", u->id,
                         reason);
}

/*  The loader refused the stream (HEADER_MISMATCH, RULE_ROW_LENGTH): the push is over. */
int push_fail_loader(odp_req_t *req, const push_upload_t *u, const odp_error_t *lerr)
{
    return push_fail_upload(req, u, lerr->code ? lerr->code : ODP_E_INTERNAL,
                            lerr->field[0] ? lerr->field : "data",
                            lerr->message[0] ? lerr->message : "the loader failed");
}

void push_progress(push_progress_t *p, int64_t upload, int64_t from, int64_t to,
                   const crypto_hash_sha256_state *hash, int64_t rows, int64_t rejected,
                   const char *colmap)
{
    snprintf(p->id, sizeof p->id, "%" PRId64, upload);
    snprintf(p->to, sizeof p->to, "%" PRId64, to);
    snprintf(p->from, sizeof p->from, "%" PRId64, from);
    snprintf(p->rows, sizeof p->rows, "%" PRId64, rows);
    snprintf(p->rejected, sizeof p->rejected, "%" PRId64, rejected);
    const char *vals[7] = {p->id, p->to, (const char *)hash, p->rows, p->rejected, colmap, p->from};
    for (int i = 0; i < 7; i++) {
        p->vals[i] = vals[i];
        p->lens[i] = i == 2 ? (int)sizeof *hash : -1;
        p->formats[i] = i == 2;
    }
}

int push_moved_on(odp_req_t *req, int64_t upload)
{
    return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                        "upload %" PRId64 " moved on meanwhile: call push.begin again", upload);
}

/*  In the open transaction of the service's connection (files). */
int push_save_progress(odp_req_t *req, const push_upload_t *u, int64_t from, int64_t to,
                       const crypto_hash_sha256_state *hash)
{
    push_progress_t p;
    push_progress(&p, u->id, from, to, hash, 0, 0, NULL);
    PGresult *r = odp_db_exec(req->db, PUSH_PROGRESS_SQL, 7, p.vals, p.lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_req_db_fail(req, r, "the upload's progress");
    bool hit = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return hit ? 0 : push_moved_on(req, u->id);
}
