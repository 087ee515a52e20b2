/*  Obtaining a whole version (R5.8b): download.begin records the download and says how the
    rows are cut into chunks (span row numbers each) and how many chunk requests may be in
    flight (credit: the push protocol in reverse). The bytes are the same on every run (row
    order, header and settings fixed), so a download resumes at any chunk, and the SHA-256
    of the bytes served, kept across chunks in the download's row, is the hash of the whole
    file.

    A download is read from one COPY ... TO STDOUT of the whole version (from the row it
    starts at), on a database connection of its own that stays open between chunks: each
    chunk asked in order is cut from the open stream, while PostgreSQL goes on writing the
    next rows into the connection (read-ahead bounded by the socket's buffers, so the
    service still holds one chunk at a time). Each line carries its row number in front,
    which tells where a chunk ends and is cut off before the line is served. A chunk asked
    out of order (a resumed download) starts a new COPY at its row. At most
    ODP_QUERY_DOWNLOAD_STREAMS streams are open; the one unused longest gives way, and a
    stream idle for ODP_QUERY_DOWNLOAD_IDLE_S is closed.

    A file entry downloads as its pushed bytes (format file): the "rows" are its bytes,
    read through publisher.released_file_part, chunk by chunk. */
#include "query.h"

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/sha256.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Rows per chunk aim at about ODP_QUERY_DOWNLOAD_CHUNK_BYTES (default 192 KiB): below
    the 256 KiB from which every allocation is a mapping of its own (service.c), so the
    reply's copies here and in libzmq's CURVE encoding reuse heap memory instead of
    faulting fresh pages in for every chunk (measured: 7,400 page faults and 0.76 s of
    the service's CPU for a 110 MB version at 256 KiB, 460 and 0.58 s at 195 KB). */
#define S_CHUNK_BYTES (192 * 1024)

#define S_DL_COLS                                                                                  \
    "d.id, d.resource, d.release, d.version, d.format, coalesce(r.rows, 0), d.span, d.last_row, "  \
    "$2::int, r.sha256, h.sha256, d.bytes, " Q_TS("d.started_at") ", " Q_TS("d.completed_at")

/*  One download's open COPY. */
typedef struct {
    int64_t download; /* 0: the slot is free */
    odp_db_t *db;     /* its own connection, made on first use and kept */
    bool copying;     /* a COPY is under way on it */
    bool header;      /* the next line is the CSV header */
    char sep;         /* between the row number and the line: ',' (csv), 0x02 (jsonl) */
    int64_t next_row; /* where the next chunk asked in order starts */
    odp_buf_t *held;  /* a line read that belongs to the next chunk, without its number */
    int64_t held_row; /* its row number; 0 when none is held */
    int64_t used_ms;
} s_stream_t;

static s_stream_t *s_streams;
static int s_nstreams;
static odp_buf_t *s_out; /* the chunk being served: kept, so its pages stay mapped */

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
    q_release_t rel;
    if (q_release_or_file(req, &who, &m->resource, m->version.present ? m->version.i : 0, 0, &rel) <
        0)
        return -1;
    bool file = strcmp(rel.kind, "file") == 0;
    const char *format = file ? "file" : "csv";
    if (m->format.present && !odp_v_eq(&m->format, format)) {
        if (file)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "format",
                                "a file entry downloads as its pushed bytes: format is file");
        if (!odp_v_eq(&m->format, "jsonl"))
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "format", "format is csv or jsonl");
        format = "jsonl";
    }
    int64_t last = rel.bytes, span = odp_config_int("query", "DOWNLOAD_CHUNK_BYTES", S_CHUNK_BYTES);
    if (!file) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT coalesce(max(row_no), 0) FROM %s", rel.relation);
        PGresult *r = odp_db_exec(req->db, sql, 0, NULL, NULL);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the version's rows");
        last = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        span /= rel.rows > 0 && rel.bytes > 0 ? rel.bytes / rel.rows + 1 : 100;
    }
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
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO downloads (owner, user_id, resource, release, version, "
                              "format, span, last_row) VALUES ($1, $2::bigint, $3, $4::bigint, "
                              "$5::int, $6, $7::bigint, $8::bigint) RETURNING id",
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
    q_guard_count(((q_ctx_t *)req->ctx)->guard, &who, rel.resource, rel.department, Q_DOWNLOAD);
    return 0;
}

/*  ---- streams ------------------------------------------------------------------------------ */

static void s_stream_close(s_stream_t *s)
{
    /*  A COPY cut short cannot be left on the connection: closing it ends the COPY. */
    if (s->copying)
        odp_db_destroy(&s->db);
    s->copying = false;
    s->download = 0;
    s->held_row = 0;
}

/*  Streams unused for ODP_QUERY_DOWNLOAD_IDLE_S give their connection back. */
static void s_idle(odp_service_t *svc, void *arg)
{
    (void)svc;
    (void)arg;
    int64_t idle_ms = odp_config_int("query", "DOWNLOAD_IDLE_S", 60) * 1000;
    for (int i = 0; i < s_nstreams; i++)
        if (s_streams[i].db && zclock_mono() - s_streams[i].used_ms > idle_ms) {
            s_stream_close(&s_streams[i]);
            odp_db_destroy(&s_streams[i].db);
        }
}

/*  The stream that serves download from row from: its open one when it stands there, else
    a slot (a free one, or the one unused longest) with a new COPY started at from. NULL
    with req->err set when the COPY cannot start. */
static s_stream_t *s_stream(odp_req_t *req, int64_t download, const q_release_t *rel,
                            const char *format, int64_t from)
{
    s_stream_t *s = NULL;
    for (int i = 0; i < s_nstreams && !s; i++)
        if (s_streams[i].download == download)
            s = &s_streams[i];
    if (s && s->next_row == from && (s->copying || s->held_row)) {
        s->used_ms = zclock_mono();
        return s;
    }
    if (!s)
        for (int i = 0; i < s_nstreams; i++)
            if (!s || s_streams[i].used_ms < s->used_ms)
                s = &s_streams[i];
    if (!s) {
        odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    s_stream_close(s);
    if (!s->held)
        s->held = odp_buf_new();
    if (!s->db)
        s->db = odp_db_new("query");
    /*  The same bytes on every run: fixed renderings of dates, times and numbers, for the
        connection's life (odp_db_up connects when it is not). A COPY lasts as long as its
        reader takes, so the role's statement timeout is lifted here: a stream left
        unread is closed after DOWNLOAD_IDLE_S instead. */
    if (!s->db || !odp_db_up(s->db) ||
        odp_db_cmd(s->db,
                   "SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', "
                   "'ISO, YMD', false), set_config('extra_float_digits', '1', false), "
                   "set_config('statement_timeout', '0', false)",
                   0, NULL, NULL) < 0) {
        odp_db_destroy(&s->db);
        odp_req_fail(req, ODP_E_UNAVAILABLE, NULL, "the database is unreachable; retry the chunk");
        return NULL;
    }
    q_field_t *f = NULL;
    int nf = q_fields(req, rel->release, &f);
    if (nf < 0)
        return NULL;
    bool csv = strcmp(format, "csv") == 0;
    odp_buf_t *cols = odp_buf_new();
    for (int i = 0; i < nf; i++) {
        odp_buf_append(cols, i ? ", v." : "v.", i ? 4 : 2);
        odp_buf_append(cols, f[i].ident, strlen(f[i].ident));
    }
    free(f);
    char *sql = NULL;
    /*  JSON Lines: one row_to_json per line. CSV mode with delimiter and quote characters
        that JSON never holds unescaped writes the number and the document as they are. */
    int n = csv ? asprintf(&sql,
                           "COPY (SELECT v.row_no, %s FROM %s v WHERE v.row_no >= %" PRId64
                           " ORDER BY v.row_no) TO STDOUT (FORMAT csv%s)",
                           odp_buf_data(cols), rel->relation, from, from == 1 ? ", HEADER" : "")
                : asprintf(&sql,
                           "COPY (SELECT v.row_no, (SELECT row_to_json(t) FROM (SELECT %s) t) "
                           "FROM %s v WHERE v.row_no >= %" PRId64 " ORDER BY v.row_no) TO "
                           "STDOUT (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')",
                           odp_buf_data(cols), rel->relation, from);
    odp_buf_destroy(&cols);
    if (n < 0) {
        odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    PGresult *r = odp_db_exec(s->db, sql, 0, NULL, NULL);
    free(sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_OUT) {
        odp_req_db_fail(req, r, "the version's rows");
        odp_db_destroy(&s->db);
        return NULL;
    }
    PQclear(r);
    s->download = download;
    s->copying = true;
    s->header = csv && from == 1;
    s->sep = csv ? ',' : '\x02';
    s->next_row = from;
    s->used_ms = zclock_mono();
    return s;
}

/*  The rows of s before row to, onto out. 0, or -1 with req->err set (the stream closed). */
static int s_read(odp_req_t *req, s_stream_t *s, int64_t to, odp_buf_t *out)
{
    PGconn *conn = odp_db_conn(s->db);
    if (s->held_row) {
        if (s->held_row >= to) {
            s->next_row = to;
            return 0;
        }
        odp_buf_append(out, odp_buf_data(s->held), odp_buf_size(s->held));
        s->held_row = 0;
    }
    while (s->copying) {
        char *line;
        int len = PQgetCopyData(conn, &line, 0);
        if (len < 0) {
            PGresult *r = PQgetResult(conn);
            bool ok = len == -1 && r && PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            while ((r = PQgetResult(conn)))
                PQclear(r);
            s->copying = false;
            if (!ok) {
                s_stream_close(s);
                odp_db_destroy(&s->db);
                return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                                    "the copy failed; retry the chunk");
            }
            break;
        }
        char *rest = memchr(line, s->sep, (size_t)len);
        if (!rest) {
            PQfreemem(line);
            s_stream_close(s);
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "a line without its row number");
        }
        rest++;
        size_t n = (size_t)(line + len - rest);
        if (s->header) {
            s->header = false;
            odp_buf_append(out, rest, n);
            PQfreemem(line);
            continue;
        }
        int64_t row = strtoll(line, NULL, 10);
        if (row >= to) {
            odp_buf_reset(s->held);
            odp_buf_append(s->held, rest, n);
            s->held_row = row;
            PQfreemem(line);
            break;
        }
        odp_buf_append(out, rest, n);
        PQfreemem(line);
    }
    s->next_row = to;
    return 0;
}

/*  A file's bytes [from - 1, to - 1) onto out. */
static int s_file_part(odp_req_t *req, const q_release_t *rel, int64_t from, int64_t to,
                       odp_buf_t *out)
{
    char srel[24], sfrom[24], sto[24];
    snprintf(srel, sizeof srel, "%" PRId64, rel->release);
    snprintf(sfrom, sizeof sfrom, "%" PRId64, from - 1);
    snprintf(sto, sizeof sto, "%" PRId64, to - 1);
    const char *vals[3] = {srel, sfrom, sto};
    PGresult *r = PQexecParams(odp_db_conn(req->db),
                               "SELECT part FROM publisher.released_file_part($1::bigint, "
                               "$2::bigint, $3::bigint)",
                               3, NULL, vals, NULL, NULL, 1);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the file's bytes");
    for (int i = 0; i < PQntuples(r); i++)
        odp_buf_append(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    PQclear(r);
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
    if (q_release_or_file(req, &who, &res, 0, release, &rel) < 0)
        return -1;
    if (!s_out)
        s_out = odp_buf_new();
    odp_buf_t *out = s_out;
    odp_buf_reset(out);
    int64_t to = from + span;
    if (strcmp(format, "file") == 0) {
        if (s_file_part(req, &rel, from, to > last + 1 ? last + 1 : to, out) < 0)
            return -1;
    } else {
        s_stream_t *s = s_stream(req, m->download.i, &rel, format, from);
        if (!s || s_read(req, s, to, out) < 0)
            return -1;
        /*  The last chunk served: the stream's connection is free for another download. */
        if (to > last)
            s_stream_close(s);
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
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            return odp_req_db_fail(req, r, "the download's progress");
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
    int rc = odp_encode(&odp_def_rep_download_chunk, &rep, req->pk);
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
    int64_t n = odp_config_int("query", "DOWNLOAD_STREAMS", 8);
    s_nstreams = (int)(n < 1 ? 1 : n > 64 ? 64 : n);
    s_streams = calloc((size_t)s_nstreams, sizeof *s_streams);
    if (!s_streams)
        s_nstreams = 0;
    /*  Chunks are allocated and freed at the top of the heap one after another: with
        glibc's default trim threshold (128 KiB) each free gives the pages back and the
        next chunk faults them in again, which cost a 110 MB download 2 s of the service's
        CPU (60,000 page faults). Up to 8 MiB of free heap is kept instead: a constant. */
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
    odp_service_timer(svc, 5000, s_idle, NULL);
    odp_service_route(svc, &odp_def_download_begin, ODP_ALLOW_ANY, s_begin);
    odp_service_route(svc, &odp_def_download_chunk, ODP_ALLOW_ANY, s_chunk);
    odp_service_route(svc, &odp_def_download_list, ODP_ALLOW_ANY, s_list);
}
