/*  Obtaining a whole version (R5.8b): download.begin records the download and says how the
    rows are cut into chunks (span row numbers each) and how many chunk requests may be in
    flight (credit: the push protocol in reverse); each download.chunk streams its rows
    from COPY ... TO STDOUT, so the service holds one chunk at a time whatever the size.
    The bytes are the same on every run (row order, header and settings fixed), so a
    download resumes at any chunk, and the SHA-256 of the bytes served, kept across chunks
    in the download's row, is the hash of the whole file. */
#include "query.h"

#include "common/buf.h"
#include "common/config.h"
#include "common/sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Rows per chunk aim at about this many bytes. */
#define S_CHUNK_BYTES (256 * 1024)

#define S_DL_COLS                                                                                  \
    "d.id, d.resource, d.release, d.version, d.format, coalesce(r.rows, 0), d.span, d.last_row, "  \
    "$2::int, r.sha256, h.sha256, d.bytes, " Q_TS("d.started_at") ", " Q_TS("d.completed_at")

static void s_fill(PGresult *r, int i, void *out)
{
    odp_rec_download_t *d = out;
    d->download = q_int(r, i, 0);
    d->resource = q_col(r, i, 1);
    d->release = q_int(r, i, 2);
    d->version = q_int(r, i, 3);
    d->format = q_col(r, i, 4);
    d->rows = q_int(r, i, 5);
    d->span = q_int(r, i, 6);
    d->last_row = q_int(r, i, 7);
    d->credit = q_int(r, i, 8);
    d->sha256 = q_col(r, i, 9);
    d->served_sha256 = q_col(r, i, 10);
    d->bytes = q_int(r, i, 11);
    d->started_at = q_col(r, i, 12);
    d->completed_at = q_col(r, i, 13);
}

static const char *s_credit(void)
{
    static char buf[24];
    int64_t c = odp_config_int("query", "DOWNLOAD_CREDIT", 4);
    snprintf(buf, sizeof buf, "%" PRId64, c < 1 ? 1 : c > 64 ? 64 : c);
    return buf;
}

#define S_DL_FROM                                                                                  \
    " FROM downloads d LEFT JOIN publisher.releases r ON r.id = d.release LEFT JOIN "              \
    "served_hashes h ON h.release = d.release AND h.format = d.format"

static int s_begin(odp_req_t *req)
{
    const odp_download_begin_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    const char *format = "csv";
    if (m->format.present && !odp_v_eq(&m->format, "csv")) {
        if (!odp_v_eq(&m->format, "jsonl"))
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "format", "format is csv or jsonl");
        format = "jsonl";
    }
    q_release_t rel;
    if (q_release(req, &who, &m->resource, m->version.present ? m->version.i : 0, 0, &rel) < 0)
        return -1;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT coalesce(max(row_no), 0) FROM %s", rel.relation);
    PGresult *r = odp_db_exec(req->db, sql, 0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the version's rows");
    int64_t last = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    int64_t per_row = rel.rows > 0 && rel.bytes > 0 ? rel.bytes / rel.rows + 1 : 100;
    int64_t span = S_CHUNK_BYTES / per_row;
    if (span < 1)
        span = 1;
    char owner[96], uid[24], srel[24], sver[24], sspan[24], slast[24];
    q_owner(req, &who, owner, sizeof owner);
    snprintf(uid, sizeof uid, "%" PRId64, who.user);
    snprintf(srel, sizeof srel, "%" PRId64, rel.release);
    snprintf(sver, sizeof sver, "%" PRId64, rel.version);
    snprintf(sspan, sizeof sspan, "%" PRId64, span);
    snprintf(slast, sizeof slast, "%" PRId64, last);
    const char *vals[8] = {
        owner, who.kind == Q_USER ? uid : NULL, rel.resource, srel, sver, format, sspan, slast};
    r = odp_db_exec(req->db,
                    "INSERT INTO downloads (owner, user_id, resource, release, version, format, "
                    "span, last_row) VALUES ($1, $2::bigint, $3, $4::bigint, $5::int, $6, "
                    "$7::bigint, $8::bigint) RETURNING id",
                    8, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the download");
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *iv[2] = {id, s_credit()};
    r = odp_db_exec(req->db, "SELECT " S_DL_COLS S_DL_FROM " WHERE d.id = $1::bigint", 2, iv, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the download");
    odp_rec_download_t rec = {0};
    s_fill(r, 0, &rec);
    int rc = odp_encode(&odp_def_rec_download, &rec, req->pk);
    PQclear(r);
    if (rc < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode");
    q_guard_count(((q_ctx_t *)req->ctx)->guard, rel.resource, rel.department, Q_DOWNLOAD);
    return 0;
}

/*  COPY the rows [from, to) of the release's view in the download's format into out. */
static int s_copy(odp_req_t *req, const q_release_t *rel, const q_field_t *f, int nf,
                  const char *format, int64_t from, int64_t to, odp_buf_t *out)
{
    odp_buf_t *cols = odp_buf_new();
    for (int i = 0; i < nf; i++) {
        odp_buf_append(cols, i ? ", " : "", i ? 2 : 0);
        odp_buf_append(cols, f[i].ident, strlen(f[i].ident));
    }
    char *sql = NULL;
    bool csv = strcmp(format, "csv") == 0;
    /*  JSON Lines: one row_to_json per line. CSV mode with delimiter and quote characters
        that JSON never holds unescaped writes each document as it is. */
    int n = csv ? asprintf(&sql,
                           "COPY (SELECT %s FROM %s WHERE row_no >= %" PRId64
                           " AND row_no < %" PRId64 " ORDER BY row_no) TO STDOUT (FORMAT csv%s)",
                           odp_buf_data(cols), rel->relation, from, to, from == 1 ? ", HEADER" : "")
                : asprintf(&sql,
                           "COPY (SELECT row_to_json(t) FROM (SELECT %s FROM %s WHERE row_no >= "
                           "%" PRId64 " AND row_no < %" PRId64 " ORDER BY row_no) t) TO STDOUT "
                           "(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')",
                           odp_buf_data(cols), rel->relation, from, to);
    odp_buf_destroy(&cols);
    if (n < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    /*  The same bytes on every run: fixed renderings of dates, times and numbers. */
    if (odp_db_begin(req->db) < 0 ||
        odp_db_cmd(req->db, "SET LOCAL TimeZone = 'UTC'", 0, NULL, NULL) < 0 ||
        odp_db_cmd(req->db, "SET LOCAL DateStyle = 'ISO, YMD'", 0, NULL, NULL) < 0 ||
        odp_db_cmd(req->db, "SET LOCAL extra_float_digits = 1", 0, NULL, NULL) < 0) {
        free(sql);
        odp_db_rollback(req->db);
        return odp_req_db_fail(req, NULL, "the chunk");
    }
    PGresult *r = odp_db_exec(req->db, sql, 0, NULL, NULL);
    free(sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_OUT) {
        odp_db_rollback(req->db);
        return odp_req_db_fail(req, r, "the chunk");
    }
    PQclear(r);
    PGconn *conn = odp_db_conn(req->db);
    char *line;
    int len;
    while ((len = PQgetCopyData(conn, &line, 0)) > 0) {
        odp_buf_append(out, line, (size_t)len);
        PQfreemem(line);
    }
    r = PQgetResult(conn);
    bool ok = len == -1 && r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    while ((r = PQgetResult(conn)))
        PQclear(r);
    if (!ok) {
        odp_db_rollback(req->db);
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL, "the copy failed; retry the chunk");
    }
    odp_db_commit(req->db);
    return 0;
}

static int s_chunk(odp_req_t *req)
{
    const odp_download_chunk_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    int64_t credit = strtoll(s_credit(), NULL, 10);
    if (req->queued > credit)
        return odp_req_fail(req, ODP_E_CREDIT_EXCEEDED, "from_row",
                            "%d chunk requests in flight; the credit is %" PRId64, req->queued,
                            credit);
    char owner[96], id[24];
    q_owner(req, &who, owner, sizeof owner);
    snprintf(id, sizeof id, "%" PRId64, m->download.i);
    const char *vals[2] = {id, owner};
    /*  Someone else's download answers as one that does not exist (OWASP API1). */
    PGresult *r = odp_db_exec(req->db,
                              "SELECT resource, release, format, span, last_row, next_row, "
                              "bytes, hash_state FROM downloads WHERE id = $1::bigint AND owner "
                              "= $2",
                              2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the download");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "download", "you have no download %s", id);
    }
    char resource[33], format[8];
    snprintf(resource, sizeof resource, "%s", PQgetvalue(r, 0, 0));
    int64_t release = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    snprintf(format, sizeof format, "%s", PQgetvalue(r, 0, 2));
    int64_t span = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    int64_t last = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    int64_t next = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    int64_t bytes = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    crypto_hash_sha256_state st;
    bool have_state = PQgetlength(r, 0, 7) > 0;
    if (have_state) {
        size_t n = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 7), &n);
        have_state = raw && n == sizeof st;
        if (have_state)
            memcpy(&st, raw, sizeof st);
        PQfreemem(raw);
    }
    PQclear(r);
    int64_t from = m->from_row.i;
    if ((from - 1) % span != 0 || from > next || (from > last && !(from == 1 && last == 0)))
        return odp_req_fail(req, ODP_E_BAD_OFFSET, "from_row",
                            "chunks start at 1 + k * %" PRId64 ", at most at %" PRId64
                            " (where this download stands)",
                            span, next);
    /*  The reader may have lost the right since it began (a grant expired, the entry
        withdrawn): every chunk is checked again. */
    odp_val_t res = odp_v_str(resource);
    q_release_t rel;
    if (q_release(req, &who, &res, 0, release, &rel) < 0)
        return -1;
    q_field_t *fields = NULL;
    int nf = q_fields(req, release, &fields);
    if (nf < 0)
        return -1;
    odp_buf_t *out = odp_buf_new();
    int64_t to = from + span;
    int rc = s_copy(req, &rel, fields, nf, format, from, to, out);
    free(fields);
    if (rc < 0) {
        odp_buf_destroy(&out);
        return -1;
    }
    bool done = to > last;
    char served[65] = "";
    /*  In order: the hash moves on. A chunk asked again (a resumed download) is the same
        bytes as before and leaves it. */
    if (from == next) {
        if (from == 1 || !have_state)
            crypto_hash_sha256_init(&st);
        odp_sha256_update(&st, (const unsigned char *)odp_buf_data(out), odp_buf_size(out));
        bytes += (int64_t)odp_buf_size(out);
        char snext[24], sbytes[24];
        snprintf(snext, sizeof snext, "%" PRId64, to);
        snprintf(sbytes, sizeof sbytes, "%" PRId64, bytes);
        if (done) {
            unsigned char h[32];
            crypto_hash_sha256_final(&st, h);
            sodium_bin2hex(served, sizeof served, h, sizeof h);
        }
        char srel[24];
        snprintf(srel, sizeof srel, "%" PRId64, release);
        const char *uv[7] = {id,   snext, sbytes, (const char *)&st, done ? served : NULL,
                             srel, format};
        int ul[7] = {-1, -1, -1, (int)sizeof st, -1, -1, -1};
        r = odp_db_exec(req->db,
                        "WITH d AS (UPDATE downloads SET next_row = $2::bigint, bytes = "
                        "$3::bigint, hash_state = CASE WHEN $5::text IS NULL THEN $4::bytea END, "
                        "completed_at = CASE WHEN $5::text IS NOT NULL THEN now() END "
                        "WHERE id = $1::bigint RETURNING id) "
                        "INSERT INTO served_hashes (release, format, sha256, bytes) SELECT "
                        "$6::bigint, $7, $5, $3::bigint FROM d WHERE $5::text IS NOT NULL "
                        "ON CONFLICT DO NOTHING",
                        7, uv, ul);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            odp_buf_destroy(&out);
            return odp_req_db_fail(req, r, "the download's progress");
        }
        PQclear(r);
    }
    odp_rep_download_chunk_t rep = {0};
    rep.download = m->download;
    rep.from_row = m->from_row;
    rep.next_row = odp_v_int(to);
    rep.rows = odp_v_int(to - from);
    rep.data = odp_v_bin(odp_buf_data(out), odp_buf_size(out));
    rep.done = odp_v_bool(done);
    if (served[0])
        rep.served_sha256 = odp_v_str(served);
    rep.bytes = odp_v_int(bytes);
    rc = odp_encode(&odp_def_rep_download_chunk, &rep, req->pk);
    odp_buf_destroy(&out);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode") : 0;
}

/*  What the caller obtained, newest first: each can be fetched again by its version. */
static int s_list(odp_req_t *req)
{
    const odp_download_list_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    if (who.kind != Q_USER)
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, "token",
                            "sign in: downloads are kept for users' accounts");
    char uid[24], lim[24];
    snprintf(uid, sizeof uid, "%" PRId64, who.user);
    snprintf(lim, sizeof lim, "%" PRId64, m->limit.present ? m->limit.i : 100);
    const char *vals[4] = {uid, s_credit(), m->resource.present ? m->resource.str : NULL, lim};
    int lens[4] = {-1, -1, (int)m->resource.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " S_DL_COLS S_DL_FROM
                              " WHERE d.user_id = $1::bigint AND ($3::text IS NULL OR "
                              "d.resource = $3) ORDER BY d.id DESC LIMIT $4::bigint",
                              4, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the downloads");
    odp_rec_download_t rec;
    return q_pack_list(req, r, &odp_def_rec_download, s_fill, &rec, sizeof rec);
}

void download_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_download_begin, ODP_ALLOW_ANY, s_begin);
    odp_service_route(svc, &odp_def_download_chunk, ODP_ALLOW_ANY, s_chunk);
    odp_service_route(svc, &odp_def_download_list, ODP_ALLOW_ANY, s_list);
}
