/*  Pushed data (R5.5b, R7c, R8.3c): datasets and files arrive in chunks, become versions.

    A push is push.begin, push.chunk at consecutive offsets (the client keeps at most
    `credit` of them in flight; each ack frees one), then push.finish.

    A dataset is loaded in groups. Each dataset upload being pushed has a slot with its
    own PostgreSQL connection, which holds the open group: a transaction with
    `COPY stage_u<upload> FROM STDIN` open across chunks. A chunk is typed by the loader
    and its complete rows go to the COPY at once, in one PQputCopyData - in COPY's binary
    format where the column types allow, so that PostgreSQL parses nothing (copybin.h) -
    and the chunk is then acknowledged: handed over, not committed. PostgreSQL copies the
    rows while the registrar parses the next chunk. When the group holds
    ODP_REGISTRAR_COMMIT_BYTES of the stream (default 16 MiB), or its rejected rows 4 MiB,
    or has been open ODP_REGISTRAR_COMMIT_SECONDS (default 30), it is committed: the COPY
    ends, the rejected rows are copied into rejects, uploads.committed moves to the
    loader's row boundary (with the SHA-256 state and the row counts at that boundary),
    COMMIT. An ack's `offset` is what was received; its `committed` is the last committed
    boundary, the only one that survives a crash. push.finish commits the last group and
    then records the version; only its reply acknowledges the push as a whole. A file
    chunk is stored in file_chunks and committed before its ack.

    The registrar never holds a file. A slot keeps the loader (one partial row), the
    SHA-256 state of the bytes before the loader's boundary, the raw bytes received after
    it (at most one row plus one chunk), and the group's rejected rows (bounded by the
    forced commit). Everything in a slot can be rebuilt from the uploads row, so a
    restarted registrar - whose open group PostgreSQL rolls back - or a slot given up
    because the database refused something loses nothing: the client calls push.begin
    again, learns the committed offset, and sends from there; each row is staged exactly
    once. Files need no slot: their committed offset is always the received one.

    The hash state is persisted as the raw bytes of libsodium's crypto_hash_sha256_state.
    That layout is libsodium's, so a stored state is only valid for the same build of the
    registrar (and libsodium): a state of another size is refused (INVALID_STATE, abort and
    push again), one of the same size but another layout ends in HASH_MISMATCH at finish.
    Either way nothing wrong is accepted. It holds only a digest of bytes the client sent,
    nothing secret. */
#include "push.h"
#include "rows.h"

#include "common/codelist.h"
#include "common/log.h"
#include "common/sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  ---- small helpers ------------------------------------------------------------------- */

/*  Is code an element of a comma-separated list? */
static bool s_in_list(const char *list, const char *code)
{
    size_t n = strlen(code);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, code, n) == 0)
            return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

static bool s_valid_sha256(const odp_val_t *v)
{
    if (v->len != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((v->str[i] >= '0' && v->str[i] <= '9') || (v->str[i] >= 'a' && v->str[i] <= 'f')))
            return false;
    return true;
}

static void s_hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/*  ---- push.begin ----------------------------------------------------------------------- */

typedef struct {
    char resource[33];
    char table[64];
    char department[10];
    char format[17];
    char encoding[17];
    bool dataset;
    char *columns;       /* of the staging table, for a dataset */
    char dictionary[65]; /* its digest (uploads.dictionary), for a dataset */
    push_rules_t rules;
} s_begin_t;

/*  The resource: exists, may be acted on, registered. */
static int s_begin_resource(odp_req_t *req, const odp_push_begin_t *m, s_begin_t *b)
{
    odp_v_cstr(&m->resource, b->resource, sizeof b->resource);
    const char *vals[1] = {b->resource};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT department, content_kind = 'dataset', delivery_form FROM "
                              "resources WHERE resource = $1",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the resource");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no catalogue entry is %s",
                            b->resource);
    }
    push_copy_str(b->department, sizeof b->department, r, 0, 0);
    b->dataset = PQgetvalue(r, 0, 1)[0] == 't';
    char form[32];
    push_copy_str(form, sizeof form, r, 0, 2);
    PQclear(r);
    if (!registrar_may_act(req, b->department))
        return odp_req_fail(req, ODP_E_FORBIDDEN, "resource",
                            "%s belongs to department %s; you may push only to your own entries",
                            b->resource, b->department);
    /*  Any state: content comes before registration, which operations decides having seen
        it (spec 5.5b, 5.5c, 7c); versions stay unpublishable until then
        (registrar.publishable_versions). */
    if (strcmp(form, "dataset_file") != 0)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "resource",
                            "%s is delivered as %s, reached at its endpoint: it has no pushed "
                            "content",
                            b->resource, form);
    return 0;
}

/*  Format, encoding, table and size against the transfer rules. */
static int s_begin_rules(odp_req_t *req, const odp_push_begin_t *m, s_begin_t *b)
{
    if (push_rules_load(req, &b->rules) < 0)
        return -1;
    const char *format = odp_code_find(&odp_cl_format, m->format.str, m->format.len);
    bool kind_ok =
        format && (b->dataset ? strcmp(format, "file") != 0 : strcmp(format, "file") == 0);
    if (!kind_ok || !s_in_list(b->rules.formats, format))
        return odp_req_fail(req, ODP_E_RULE_FORMAT, "format",
                            "this entry takes format %s; the transfer rules accept %s",
                            b->dataset ? "csv or jsonl" : "file", b->rules.formats);
    snprintf(b->format, sizeof b->format, "%s", format);
    snprintf(b->table, sizeof b->table, "main");
    if (m->table.present)
        odp_v_cstr(&m->table, b->table, sizeof b->table);
    if (b->dataset) {
        const char *enc = m->encoding.present
                              ? odp_code_find(&odp_cl_encoding, m->encoding.str, m->encoding.len)
                              : "utf8";
        if (!enc || !s_in_list(b->rules.encodings, enc) ||
            (strcmp(format, "jsonl") == 0 && strcmp(enc, "utf8") != 0))
            return odp_req_fail(req, ODP_E_RULE_ENCODING, "encoding",
                                "the transfer rules accept the encodings %s (JSON Lines: utf8 "
                                "only)",
                                b->rules.encodings);
        snprintf(b->encoding, sizeof b->encoding, "%s", enc);
    } else if (strcmp(b->table, "main") != 0) {
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "table", "a file has one table, main");
    }
    if (m->size.i > b->rules.max_size)
        return odp_req_fail(req, ODP_E_RULE_SIZE, "size",
                            "%" PRId64 " bytes is over the transfer rules' maximum of %" PRId64,
                            m->size.i, b->rules.max_size);
    return 0;
}

/*  Identical content received already: answer and return 1. Identical is the same bytes
    read the same way - sha256, format, encoding and the dictionary that types them - so a
    push in the wrong encoding can be corrected by pushing again; a withdrawn version is
    nobody's duplicate. */
static int s_begin_duplicate(odp_req_t *req, const odp_push_begin_t *m, const s_begin_t *b)
{
    const char *vals[6] = {b->resource,
                           b->table,
                           m->sha256.str,
                           b->format,
                           b->dataset ? b->encoding : NULL,
                           b->dataset ? b->dictionary : NULL};
    int lens[6] = {-1, -1, (int)m->sha256.len, -1, -1, -1};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT version FROM uploads WHERE resource = $1 AND "
                              "table_name = $2 AND sha256 = $3 AND status = 'received' AND "
                              "withdrawn_at IS NULL AND format = $4 AND encoding IS NOT "
                              "DISTINCT FROM $5 AND dictionary IS NOT DISTINCT FROM $6 "
                              "ORDER BY version LIMIT 1",
                              6, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the uploads");
    bool found = PQntuples(r) == 1;
    int64_t version = found ? push_int(r, 0, 0) : 0;
    PQclear(r);
    if (!found)
        return 0;
    odp_rep_push_begin_t rep = {0};
    rep.duplicate = odp_v_bool(true);
    rep.version = odp_v_int(version);
    rep.offset = odp_v_int(m->size.i);
    rep.chunk_size = odp_v_int(b->rules.chunk_size);
    rep.credit = odp_v_int(b->rules.credit);
    if (odp_encode(&odp_def_rep_push_begin, &rep, req->pk) < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the reply");
    return 1;
}

/*  The same push in progress (one per content hash and table): resume it and return 1. */
static int s_begin_resume(odp_req_t *req, const odp_push_begin_t *m, const s_begin_t *b)
{
    const char *vals[3] = {b->resource, b->table, m->sha256.str};
    int lens[3] = {-1, -1, (int)m->sha256.len};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT id, committed, size, format, coalesce(encoding, ''), "
                              "coalesce(chunk_size, 0), coalesce(credit, 0) FROM uploads "
                              "WHERE resource = $1 AND table_name = $2 AND sha256 = $3 "
                              "AND status = 'receiving'",
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the uploads");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    int64_t id = push_int(r, 0, 0);
    bool same = push_int(r, 0, 2) == m->size.i && strcmp(PQgetvalue(r, 0, 3), b->format) == 0 &&
                strcmp(PQgetvalue(r, 0, 4), b->encoding) == 0;
    odp_rep_push_begin_t rep = {0};
    rep.duplicate = odp_v_bool(false);
    rep.upload = odp_v_int(id);
    rep.offset = odp_v_int(push_int(r, 0, 1));
    rep.chunk_size = odp_v_int(push_int(r, 0, 5) ? push_int(r, 0, 5) : b->rules.chunk_size);
    rep.credit = odp_v_int(push_int(r, 0, 6) ? push_int(r, 0, 6) : b->rules.credit);
    PQclear(r);
    if (!same)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "sha256",
                            "upload %" PRId64 " is receiving this content with another size, "
                            "format or encoding: push.abort it first",
                            id);
    /*  A resume starts again at the committed boundary: whatever the slot holds beyond it
        was never acknowledged as committed, and the client sends it again. */
    push_slot_drop(id);
    if (odp_encode(&odp_def_rep_push_begin, &rep, req->pk) < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the reply");
    return 1;
}

/*  The staging table's columns from the table's dictionary, in position order, as
    `, "<field>" <type> ...` in b->columns (the caller frees it; text in the collation
    code_point, migrations/031_code_point_collation.sql), and the dictionary's
    digest - computed as migration 006 computes it for older uploads. 404 without one. */
static int s_begin_dictionary(odp_req_t *req, s_begin_t *b)
{
    const char *vals[2] = {b->resource, b->table};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT name, type, (SELECT encode(sha256(convert_to(string_agg(d.name || E'\\t' || "
        "d.type, E'\\n' ORDER BY d.position), 'UTF8')), 'hex') FROM dictionary_fields d "
        "WHERE d.resource = $1 AND d.table_name = $2) FROM dictionary_fields WHERE "
        "resource = $1 AND table_name = $2 ORDER BY position",
        2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the dictionary");
    int n = PQntuples(r), rc = 0;
    if (n)
        push_copy_str(b->dictionary, sizeof b->dictionary, r, 0, 2);
    PGconn *c = odp_db_conn(req->db);
    size_t size = 0;
    FILE *f = n && c ? open_memstream(&b->columns, &size) : NULL;
    if (n == 0)
        rc = odp_req_fail(req, ODP_E_NOT_FOUND, "table", "%s has no data dictionary for table %s",
                          b->resource, b->table);
    for (int i = 0; f && rc == 0 && i < n; i++) {
        const char *name = PQgetvalue(r, i, 0), *type = push_type_sql(PQgetvalue(r, i, 1));
        char *ident = PQescapeIdentifier(c, name, strlen(name));
        /*  dictionary.set refuses these names; a dictionary stored before it did may
            still hold one. */
        if (registrar_reserved_column(name, strlen(name)))
            rc = odp_req_fail(req, ODP_E_INVALID_VALUE, "table",
                              "the dictionary has a field %s, a column name the staging tables "
                              "reserve (" REGISTRAR_RESERVED_COLUMNS "): rename it",
                              name);
        else if (ident && type)
            fprintf(f, ", %s %s%s", ident, type,
                    strcmp(type, "text") == 0 ? " COLLATE code_point" : "");
        else
            rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot build the staging table");
        PQfreemem(ident);
    }
    if (f && fclose(f) != 0 && rc == 0)
        rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    if (n && !f && rc == 0)
        rc = odp_req_db_fail(req, NULL, "the dictionary");
    PQclear(r);
    return rc;
}

static int s_begin_new(odp_req_t *req, const odp_push_begin_t *m, const s_begin_t *b)
{
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the upload");
    char size[24], chunk[24], rowlen[24], credit[24];
    snprintf(size, sizeof size, "%" PRId64, m->size.i);
    snprintf(credit, sizeof credit, "%" PRId64, b->rules.credit);
    snprintf(chunk, sizeof chunk, "%" PRId64, b->rules.chunk_size);
    snprintf(rowlen, sizeof rowlen, "%" PRId64, b->rules.max_row_length);
    const char *media = m->media_type.present ? m->media_type.str
                        : b->dataset          ? NULL
                                              : "application/octet-stream";
    const char *vals[14] = {b->resource,
                            b->table,
                            b->dataset ? "dataset" : "file",
                            b->format,
                            b->dataset ? b->encoding : NULL,
                            size,
                            m->sha256.str,
                            m->filename.present ? m->filename.str : NULL,
                            media,
                            req->actor_str,
                            chunk,
                            rowlen,
                            credit,
                            b->dataset ? b->dictionary : NULL};
    int lens[14] = {-1,
                    -1,
                    -1,
                    -1,
                    -1,
                    -1,
                    (int)m->sha256.len,
                    (int)m->filename.len,
                    m->media_type.present ? (int)m->media_type.len : -1,
                    -1,
                    -1,
                    -1,
                    -1,
                    -1};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO uploads (resource, table_name, kind, format, encoding, "
                              "size, sha256, filename, media_type, started_by, chunk_size, "
                              "max_row_length, credit, dictionary) VALUES ($1, $2, $3, $4, $5, "
                              "$6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                              14, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "a push of this content");
    int64_t id = push_int(r, 0, 0);
    PQclear(r);
    if (b->dataset) {
        /*  Without autovacuum until its indexes are built (stage.index turns it back on):
            a million freshly loaded rows would draw a vacuum and an analyze right when the
            review reads the table on the same cores, and the index job analyzes it anyway. */
        char *ddl = NULL;
        if (asprintf(&ddl,
                     "CREATE TABLE stage_u%" PRId64
                     " (row_no bigint NOT NULL%s) WITH (autovacuum_enabled = false)",
                     id, b->columns) < 0)
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        r = odp_db_exec(req->db, ddl, 0, NULL, NULL);
        free(ddl);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            return odp_req_db_fail(req, r, "the staging table");
        PQclear(r);
        /*  The reviewer checks it and the publisher releases it; neither may change it
            (docs/design.md, "Who reads what"). */
        char grant[96];
        snprintf(grant, sizeof grant,
                 "GRANT SELECT ON stage_u%" PRId64 " TO odp_reviewer, odp_publisher", id);
        if (odp_db_cmd(req->db, grant, 0, NULL, NULL) < 0)
            return odp_req_db_fail(req, NULL, "the staging table");
        char ids[24];
        snprintf(ids, sizeof ids, "%" PRId64, id);
        const char *uv[1] = {ids};
        /*  The fields the push counts (stage_counts): the code-like ones, enumerated or
            boolean, which the publisher makes facets of. The revision whose row-level
            checks it evaluates (stage_checks): push_checks.c counts characters as UTF-8.
            The unique text fields it hashes (stage_keys). */
        if (odp_db_cmd(req->db,
                       "UPDATE uploads u SET staging_table = current_schema() || '.stage_u' || "
                       "u.id, counted_fields = ARRAY(SELECT f.name FROM "
                       "dictionary_revision_fields f WHERE f.resource = u.resource AND "
                       "f.table_name = u.table_name AND f.revision = u.dictionary_revision AND "
                       "(f.allowed IS NOT NULL OR f.type = 'boolean') ORDER BY f.position), "
                       "checked_revision = CASE WHEN current_setting('server_encoding') = "
                       "'UTF8' THEN u.dictionary_revision END, keyed_fields = ARRAY(SELECT "
                       "f.name FROM dictionary_revision_fields f WHERE f.resource = u.resource "
                       "AND f.table_name = u.table_name AND f.revision = u.dictionary_revision "
                       "AND f.is_unique AND f.type = 'text' ORDER BY f.position) WHERE u.id = $1",
                       1, uv, NULL) < 0)
            return odp_req_db_fail(req, NULL, "the upload");
    }
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the upload");
    odp_info("event=push.begun upload=%" PRId64 " resource=%s table=%s size=%" PRId64, id,
             b->resource, b->table, m->size.i);
    odp_rep_push_begin_t rep = {0};
    rep.upload = odp_v_int(id);
    rep.offset = odp_v_int(0);
    rep.chunk_size = odp_v_int(b->rules.chunk_size);
    rep.credit = odp_v_int(b->rules.credit);
    rep.duplicate = odp_v_bool(false);
    return odp_encode(&odp_def_rep_push_begin, &rep, req->pk);
}

static int s_push_begin(odp_req_t *req)
{
    push_tick();
    const odp_push_begin_t *m = req->msg;
    if (!s_valid_sha256(&m->sha256))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "sha256",
                            "sha256 must be 64 lowercase hexadecimal digits");
    s_begin_t b = {0};
    int rc = s_begin_resource(req, m, &b);
    if (rc == 0)
        rc = s_begin_rules(req, m, &b);
    if (rc == 0 && b.dataset)
        rc = s_begin_dictionary(req, &b);
    if (rc == 0)
        rc = s_begin_duplicate(req, m, &b);
    if (rc == 0)
        rc = s_begin_resume(req, m, &b);
    if (rc == 0)
        rc = s_begin_new(req, m, &b);
    free(b.columns);
    return rc < 0 ? -1 : 0;
}

/*  ---- push.chunk ------------------------------------------------------------------------- */

static int s_bad_offset(odp_req_t *req, int64_t got, int64_t expected, int64_t committed)
{
    return odp_req_fail(req, ODP_E_BAD_OFFSET, "offset",
                        "expected a chunk at byte %" PRId64 ", not %" PRId64
                        "; resume from byte %" PRId64 ": call push.begin again",
                        expected, got, committed);
}

static int s_ack(odp_req_t *req, int64_t upload, int64_t received, int64_t committed, int64_t rows,
                 int64_t rejected)
{
    odp_rep_push_ack_t rep = {0};
    rep.upload = odp_v_int(upload);
    rep.offset = odp_v_int(received);
    rep.committed = odp_v_int(committed);
    rep.rows_received = odp_v_int(rows);
    rep.rows_rejected = odp_v_int(rejected);
    return odp_encode(&odp_def_rep_push_ack, &rep, req->pk);
}

/*  The loader took len bytes of data and its boundary may have moved: hash the bytes now
    before the boundary and keep those after it (the open row) as pending. */
static int s_advance(odp_req_t *req, push_slot_t *slot, const char *data, size_t len)
{
    int64_t boundary = loader_boundary(slot->loader);
    size_t old = odp_buf_size(slot->pending);
    if (boundary < slot->boundary || boundary > push_slot_received(slot) + (int64_t)len) {
        odp_error("event=push.bad_boundary upload=%" PRId64 " boundary=%" PRId64 " was=%" PRId64,
                  slot->upload, boundary, slot->boundary);
        push_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "the loader lost its place; it is logged");
    }
    size_t done = (size_t)(boundary - slot->boundary);
    if (done <= old) {
        odp_sha256_update(&slot->hash, (const unsigned char *)odp_buf_data(slot->pending), done);
        odp_buf_consume(slot->pending, done);
    } else {
        odp_sha256_update(&slot->hash, (const unsigned char *)odp_buf_data(slot->pending), old);
        odp_sha256_update(&slot->hash, (const unsigned char *)data, done - old);
        odp_buf_reset(slot->pending);
        data += done - old;
        len -= done - old;
    }
    slot->boundary = boundary;
    if (odp_buf_append(slot->pending, data, len) < 0) {
        push_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    return 0;
}

static int s_chunk_dataset(odp_req_t *req, const push_upload_t *u, const odp_push_chunk_t *m)
{
    push_slot_t *slot = push_slot_find(u->id);
    int64_t expected = slot ? push_slot_received(slot) : u->committed;
    if (m->offset.i != expected)
        return s_bad_offset(req, m->offset.i, expected, slot ? slot->committed : u->committed);
    if (m->offset.i + (int64_t)m->data.len > u->size)
        return odp_req_fail(req, ODP_E_RULE_SIZE, "data",
                            "this chunk ends at byte %" PRId64 ", past the declared size %" PRId64,
                            m->offset.i + (int64_t)m->data.len, u->size);
    if (!slot && push_slot_open(req, u, &slot) < 0)
        return -1;
    slot->used_ms = zclock_mono();
    odp_error_t lerr = {0};
    odp_buf_reset(slot->staged);
    odp_buf_reset(slot->rejected);
    /*  The slot's pending bytes are the partial row after the boundary: the loader refuses
        a row longer than max_row_length, so no input makes the registrar hold a file. */
    if (loader_feed(slot->loader, m->data.str, m->data.len, slot->staged, slot->rejected, &lerr) <
        0)
        return push_fail_loader(req, u, &lerr);
    if (s_advance(req, slot, m->data.str, m->data.len) < 0 || push_group_add(req, slot) < 0)
        return -1;
    if ((slot->boundary - slot->committed >= push_commit_bytes() ||
         odp_buf_size(slot->rejects) >= PUSH_REJECTS_MAX ||
         (slot->in_tx && slot->used_ms - slot->group_ms >= push_commit_ms())) &&
        push_group_commit(req, slot) < 0)
        return -1;
    /*  Handed over, not committed: offset is what arrived, committed what is durable. */
    return s_ack(req, u->id, m->offset.i + (int64_t)m->data.len, slot->committed,
                 loader_rows(slot->loader), loader_rejected(slot->loader));
}

/*  A file chunk: stored as it is, committed at once, hashed from the stored state. */
static int s_chunk_file(odp_req_t *req, const push_upload_t *u, const odp_push_chunk_t *m)
{
    if (m->offset.i != u->committed)
        return s_bad_offset(req, m->offset.i, u->committed, u->committed);
    int64_t end = m->offset.i + (int64_t)m->data.len;
    if (end > u->size)
        return odp_req_fail(req, ODP_E_RULE_SIZE, "data",
                            "this chunk ends at byte %" PRId64 ", past the declared size %" PRId64,
                            end, u->size);
    if (m->data.len == 0) /* a piece is keyed by its offset: an empty one is not stored */
        return s_ack(req, u->id, end, end, 0, 0);
    crypto_hash_sha256_state hash;
    if (push_hash_at(req, u, &hash) < 0)
        return -1;
    odp_sha256_update(&hash, (const unsigned char *)m->data.str, m->data.len);
    char id[24], off[24];
    snprintf(id, sizeof id, "%" PRId64, u->id);
    snprintf(off, sizeof off, "%" PRId64, m->offset.i);
    const char *vals[3] = {id, off, m->data.str};
    int lens[3] = {-1, -1, (int)m->data.len};
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the chunk");
    PGresult *r =
        odp_db_exec(req->db, "INSERT INTO file_chunks (upload, offset_, data) VALUES ($1, $2, $3)",
                    3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_req_db_fail(req, r, "the chunk");
    PQclear(r);
    if (push_save_progress(req, u, u->committed, end, &hash) < 0)
        return -1;
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the chunk");
    return s_ack(req, u->id, end, end, 0, 0);
}

static int s_push_chunk(odp_req_t *req)
{
    push_tick();
    const odp_push_chunk_t *m = req->msg;
    push_upload_t u;
    push_slot_t *slot = push_slot_find(m->upload.i);
    /*  An upload with a slot is receiving as far as this registrar knows - finish, abort
        and every failure give the slot up - and its size, chunk size and department do not
        change: the row need not be read for every chunk. (What another registrar instance
        may do to the row meanwhile is found at the next group commit, which moves an upload
        only while it is receiving at the committed boundary.) */
    if (slot) {
        u = slot->u;
        if (!registrar_may_act(req, u.department))
            return odp_req_fail(req, ODP_E_FORBIDDEN, "upload",
                                "upload %" PRId64 " belongs to another department", u.id);
    } else if (push_upload_receiving(req, m->upload.i, &u) < 0) {
        return -1;
    }
    /*  The ack of an earlier chunk frees one credit: more than credit chunks queued on this
        connection were sent before the client could have had the acks that allow them. */
    if (req->queued > u.credit)
        return odp_req_fail(req, ODP_E_CREDIT_EXCEEDED, "offset",
                            "%d chunks of this connection were in flight when this one "
                            "arrived; the credit of upload %" PRId64 " is %" PRId64
                            " (push.begin): send one more for each ack. Nothing changed; go "
                            "on from byte %" PRId64,
                            req->queued, u.id, u.credit,
                            slot ? push_slot_received(slot) : u.committed);
    if ((int64_t)m->data.len > u.chunk_size)
        return odp_req_fail(req, ODP_E_RULE_CHUNK_SIZE, "data",
                            "a chunk is at most %" PRId64 " bytes (chunk_size from push.begin)",
                            u.chunk_size);
    return u.dataset ? s_chunk_dataset(req, &u, m) : s_chunk_file(req, &u, m);
}

/*  ---- push.finish ----------------------------------------------------------------------- */

typedef struct {
    int64_t rows;
    int64_t rejected;
} s_counts_t;

/*  The dataset's last bytes: the final hash; when it matches, the loader's tail goes into
    the last group, which is committed on the upload's connection with committed = size.
    Then the transaction for the version is opened on the service's connection. The rows
    are not counted again: every group's COPY took exactly the rows the loader counted
    (push_group_commit checks it). A failure after that commit leaves the upload receiving with
    every byte committed: push.finish again (or push.begin, which says offset = size)
    resumes a loader at the end, which adds nothing. */
static int s_finish_dataset(odp_req_t *req, const push_upload_t *u, push_slot_t *slot, char *hex,
                            s_counts_t *counts)
{
    crypto_hash_sha256_state hash = slot->hash;
    unsigned char digest[crypto_hash_sha256_BYTES];
    odp_sha256_update(&hash, (const unsigned char *)odp_buf_data(slot->pending),
                      odp_buf_size(slot->pending));
    crypto_hash_sha256_final(&hash, digest);
    s_hex(digest, sizeof digest, hex);
    if (strcmp(hex, u->sha256) != 0)
        return 0; /* the caller compares and abandons */
    odp_error_t lerr = {0};
    odp_buf_reset(slot->staged);
    odp_buf_reset(slot->rejected);
    if (loader_finish(slot->loader, slot->staged, slot->rejected, &lerr) < 0)
        return push_fail_loader(req, u, &lerr);
    counts->rows = loader_rows(slot->loader);
    counts->rejected = loader_rejected(slot->loader);
    if (s_advance(req, slot, NULL, 0) < 0 || push_group_add(req, slot) < 0 ||
        push_group_commit(req, slot) < 0)
        return -1;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the version");
    return 0;
}

/*  A file's final hash; when it matches, the transaction for the version is opened. */
static int s_finish_file(odp_req_t *req, const push_upload_t *u, char *hex)
{
    crypto_hash_sha256_state hash;
    unsigned char digest[crypto_hash_sha256_BYTES];
    if (push_hash_at(req, u, &hash) < 0)
        return -1;
    crypto_hash_sha256_final(&hash, digest);
    s_hex(digest, sizeof digest, hex);
    if (strcmp(hex, u->sha256) == 0 && odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the version");
    return 0;
}

/*  In the open transaction: the next version of (resource, table), the row, the event. */
static int s_record_version(odp_req_t *req, const push_upload_t *u, const s_counts_t *c,
                            int64_t *version, char *staging, size_t staging_size)
{
    char id[24], rows[24], rej[24];
    snprintf(id, sizeof id, "%" PRId64, u->id);
    snprintf(rows, sizeof rows, "%" PRId64, c->rows);
    snprintf(rej, sizeof rej, "%" PRId64, c->rejected);
    const char *lock[1] = {u->resource};
    /*  Versions are numbered per table; the resource row's lock orders concurrent finishes
        (several registrar instances) so that two cannot take the same number. */
    if (odp_db_cmd(req->db, "SELECT 1 FROM resources WHERE resource = $1 FOR UPDATE", 1, lock,
                   NULL) < 0)
        return odp_req_db_fail(req, NULL, "the version");
    const char *vals[3] = {id, rows, rej};
    PGresult *r = odp_db_exec(
        req->db,
        "UPDATE uploads u SET status = 'received', finished_at = now(), committed = size, "
        "hash_state = NULL, rows_received = $2, rows_rejected = $3, rows_staged = $2::bigint - "
        "$3::bigint, "
        "version = 1 + (SELECT coalesce(max(version), 0) FROM uploads v WHERE "
        "v.resource = u.resource AND v.table_name = u.table_name AND v.status = 'received') "
        "WHERE id = $1 AND status = 'receiving' RETURNING version, coalesce(staging_table, '')",
        3, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the version");
    if (PQntuples(r) != 1) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " is no longer receiving", u->id);
    }
    *version = push_int(r, 0, 0);
    push_copy_str(staging, staging_size, r, 0, 1);
    PQclear(r);
    odp_ev_data_received_t ev = {0};
    ev.resource = odp_v_str(u->resource);
    ev.table = odp_v_str(u->table);
    ev.version = odp_v_int(*version);
    ev.upload = odp_v_int(u->id);
    ev.kind = odp_v_str(u->dataset ? "dataset" : "file");
    ev.sha256 = odp_v_str(u->sha256);
    ev.size = odp_v_int(u->size);
    ev.rows_received = odp_v_int(c->rows);
    ev.rows_staged = odp_v_int(c->rows - c->rejected);
    ev.rows_rejected = odp_v_int(c->rejected);
    if (odp_outbox_append(req->outbox, &odp_def_ev_data_received, &ev, req->actor_str) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return 0;
}

static int s_summary(odp_req_t *req, const push_upload_t *u, const s_counts_t *c, int64_t version,
                     const char *staging)
{
    odp_rep_push_summary_t rep = {0};
    rep.resource = odp_v_str(u->resource);
    rep.table = odp_v_str(u->table);
    rep.version = odp_v_int(version);
    rep.upload = odp_v_int(u->id);
    rep.kind = odp_v_str(u->dataset ? "dataset" : "file");
    rep.sha256 = odp_v_str(u->sha256);
    rep.size = odp_v_int(u->size);
    rep.media_type = odp_v_str(u->media_type[0] ? u->media_type : NULL);
    rep.rows_received = odp_v_int(c->rows);
    rep.rows_staged = odp_v_int(c->rows - c->rejected);
    rep.rows_rejected = odp_v_int(c->rejected);
    rep.staging_table = odp_v_str(staging[0] ? staging : NULL);
    rep.duplicate = odp_v_bool(false);
    return odp_encode(&odp_def_rep_push_summary, &rep, req->pk);
}

static int s_push_finish(odp_req_t *req)
{
    push_tick();
    const odp_push_finish_t *m = req->msg;
    push_upload_t u;
    if (push_upload_receiving(req, m->upload.i, &u) < 0)
        return -1;
    push_slot_t *slot = u.dataset ? push_slot_find(u.id) : NULL;
    int64_t received = slot ? push_slot_received(slot) : u.committed;
    if (received != u.size)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "%" PRId64 " of %" PRId64 " bytes received; resume from byte %" PRId64,
                            received, u.size, u.committed);
    if (u.dataset && !slot && push_slot_open(req, &u, &slot) < 0)
        return -1;
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    s_counts_t counts = {0};
    int rc = 0;
    if (u.dataset)
        rc = s_finish_dataset(req, &u, slot, hex, &counts);
    else
        rc = s_finish_file(req, &u, hex);
    if (rc == 0 && strcmp(hex, u.sha256) != 0) {
        char reason[200];
        snprintf(reason, sizeof reason, "the content's SHA-256 is %s, not the declared %s", hex,
                 u.sha256);
        return push_fail_upload(req, &u, ODP_E_HASH_MISMATCH, "sha256", reason);
    }
    int64_t version = 0;
    char staging[128] = "";
    if (rc == 0)
        rc = s_record_version(req, &u, &counts, &version, staging, sizeof staging);
    if (rc == 0 && odp_db_commit(req->db) < 0)
        rc = odp_req_db_fail(req, NULL, "the version");
    /*  Finished or not, the loader has read its last byte: a retry starts from the
        database. */
    push_slot_drop(u.id);
    if (rc < 0)
        return -1;
    odp_info("event=push.received upload=%" PRId64 " resource=%s table=%s version=%" PRId64
             " rows=%" PRId64 " rejected=%" PRId64,
             u.id, u.resource, u.table, version, counts.rows, counts.rejected);
    return s_summary(req, &u, &counts, version, staging);
}

/*  ---- push.abort, push.status ------------------------------------------------------------ */

static int s_push_abort(odp_req_t *req)
{
    push_tick();
    const odp_push_abort_t *m = req->msg;
    push_upload_t u;
    if (push_upload_receiving(req, m->upload.i, &u) < 0)
        return -1;
    char reason[1001];
    if (m->reason.present)
        odp_v_cstr(&m->reason, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "aborted by %s", req->actor_str);
    push_slot_drop(u.id);
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abort");
    if (push_abandon_tx(req, &u, "ABORTED", reason) < 0)
        return -1;
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abort");
    odp_info("event=push.aborted upload=%" PRId64, u.id);
    return odp_req_ok_empty(req);
}

static int s_push_status(odp_req_t *req)
{
    push_tick();
    const odp_push_status_t *m = req->msg;
    push_upload_t u;
    if (push_upload_load(req, m->upload.i, &u) < 0)
        return -1;
    odp_rep_push_status_t rep = {0};
    rep.upload = odp_v_int(u.id);
    rep.resource = odp_v_str(u.resource);
    rep.table = odp_v_str(u.table);
    rep.status = odp_v_str(u.status);
    rep.offset = odp_v_int(u.committed);
    rep.size = odp_v_int(u.size);
    if (u.version)
        rep.version = odp_v_int(u.version);
    return odp_encode(&odp_def_rep_push_status, &rep, req->pk);
}

/*  ---- version.list, rejects.list ------------------------------------------------------- */

/*  The resource's department, or -1 with 404. */
static int s_resource_department(odp_req_t *req, const odp_val_t *resource, char *dept, size_t size)
{
    const char *vals[1] = {resource->str};
    int lens[1] = {(int)resource->len};
    PGresult *r =
        odp_db_exec(req->db, "SELECT department FROM resources WHERE resource = $1", 1, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the resource");
    bool found = PQntuples(r) == 1;
    if (found)
        push_copy_str(dept, size, r, 0, 0);
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no catalogue entry has this code");
    return 0;
}

#define VERSION_COLS                                                                               \
    "version, table_name, kind, sha256, size, rows_received, rows_staged, "                        \
    "rows_rejected, " ROWS_TS("finished_at") ", " ROWS_TS("withdrawn_at") ", withdrawn_reason"

static void s_fill_version(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    (void)zone;
    odp_rec_version_t *v = out;
    v->version = rows_int(r, i, 0);
    v->table = rows_col(r, i, 1);
    v->kind = rows_col(r, i, 2);
    v->sha256 = rows_col(r, i, 3);
    v->size = rows_int(r, i, 4);
    v->rows_received = rows_int(r, i, 5);
    v->rows_staged = rows_int(r, i, 6);
    v->rows_rejected = rows_int(r, i, 7);
    v->received_at = rows_col(r, i, 8);
    v->withdrawn_at = rows_col(r, i, 9);
    v->withdrawn_reason = rows_col(r, i, 10);
}

static int s_version_list(odp_req_t *req)
{
    const odp_version_list_t *m = req->msg;
    char dept[10];
    if (registrar_resource_visible(req, &m->resource, dept, sizeof dept) < 0)
        return -1;
    const char *vals[2] = {m->resource.str, m->table.present ? m->table.str : NULL};
    int lens[2] = {(int)m->resource.len, (int)m->table.len};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " VERSION_COLS " FROM uploads WHERE resource = $1 "
                              "AND ($2::text IS NULL OR table_name = $2) "
                              "AND status = 'received' ORDER BY finished_at DESC, version DESC",
                              2, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the versions");
    return rows_pack(req, r, &odp_def_rec_version, s_fill_version, sizeof(odp_rec_version_t));
}

static void s_fill_reject(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    (void)zone;
    odp_rec_reject_t *j = out;
    j->row = rows_int(r, i, 0);
    j->reason = rows_col(r, i, 1);
    j->detail = rows_col(r, i, 2);
    j->raw = rows_col(r, i, 3);
}

static int s_rejects_list(odp_req_t *req)
{
    const odp_rejects_list_t *m = req->msg;
    char dept[10];
    if (s_resource_department(req, &m->resource, dept, sizeof dept) < 0)
        return -1;
    if (!registrar_may_act(req, dept))
        return odp_req_fail(req, ODP_E_FORBIDDEN, "resource",
                            "rejected rows are shown to operations and to department %s only",
                            dept);
    char version[24], limit[24];
    snprintf(version, sizeof version, "%" PRId64, m->version.i);
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 1000);
    const char *vals[4] = {m->resource.str, m->table.present ? m->table.str : "main", version,
                           limit};
    int lens[4] = {(int)m->resource.len, m->table.present ? (int)m->table.len : -1, -1, -1};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT id FROM uploads WHERE resource = $1 AND table_name = $2 "
                              "AND version = $3 AND status = 'received'",
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the version");
    bool found = PQntuples(r) == 1;
    char id[24] = "";
    if (found)
        push_copy_str(id, sizeof id, r, 0, 0);
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "version", "this table has no version %s",
                            version);
    const char *lv[2] = {id, limit};
    r = odp_db_exec(req->db,
                    "SELECT row_no, reason, detail, raw FROM rejects WHERE upload = $1 "
                    "ORDER BY row_no LIMIT $2",
                    2, lv, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the rejected rows");
    return rows_pack(req, r, &odp_def_rec_reject, s_fill_reject, sizeof(odp_rec_reject_t));
}

/*  A version its provider takes back: marked, with why and by whom, in the same
    transaction as data.withdrawn. Its rows stay: the reviewer may have looked at them. */
static int s_version_withdraw(odp_req_t *req)
{
    const odp_version_withdraw_t *m = req->msg;
    char dept[10];
    if (s_resource_department(req, &m->resource, dept, sizeof dept) < 0)
        return -1;
    if (!registrar_may_act(req, dept))
        return odp_req_fail(req, ODP_E_FORBIDDEN, "resource",
                            "versions are withdrawn by operations and by department %s only", dept);
    char version[24], table[64] = "main";
    snprintf(version, sizeof version, "%" PRId64, m->version.i);
    if (m->table.present)
        odp_v_cstr(&m->table, table, sizeof table);
    const char *vals[5] = {m->resource.str, table, version, m->reason.str, req->actor_str};
    int lens[5] = {(int)m->resource.len, -1, -1, (int)m->reason.len, -1};
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the withdrawal");
    PGresult *r = odp_db_exec(req->db,
                              "UPDATE uploads SET withdrawn_at = now(), withdrawn_reason = $4, "
                              "withdrawn_by = $5 WHERE resource = $1 AND table_name = $2 AND "
                              "version = $3 AND status = 'received' AND withdrawn_at IS NULL "
                              "RETURNING " VERSION_COLS ", id",
                              5, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the withdrawal");
    if (PQntuples(r) == 0) {
        PQclear(r);
        r = odp_db_exec(req->db,
                        "SELECT 1 FROM uploads WHERE resource = $1 AND table_name = $2 AND "
                        "version = $3 AND status = 'received'",
                        3, vals, lens);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the version");
        bool exists = PQntuples(r) == 1;
        PQclear(r);
        if (exists)
            return odp_req_fail(req, ODP_E_INVALID_STATE, "version",
                                "version %s of table %s is withdrawn already", version, table);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "version", "table %s has no version %s", table,
                            version);
    }
    int64_t upload = push_int(r, 0, 11);
    odp_ev_data_withdrawn_t ev = {0};
    ev.resource = m->resource;
    ev.table = odp_v_str(table);
    ev.version = m->version;
    ev.upload = odp_v_int(upload);
    ev.reason = m->reason;
    if (odp_outbox_append(req->outbox, &odp_def_ev_data_withdrawn, &ev, req->actor_str) < 0) {
        PQclear(r);
        return odp_req_db_fail(req, NULL, "the event");
    }
    odp_rec_version_t rec = {0};
    s_fill_version(r, 0, &rec, NULL);
    int rc = odp_db_commit(req->db) < 0 ? odp_req_db_fail(req, NULL, "the withdrawal") : 0;
    if (rc == 0) {
        odp_info("event=push.withdrawn upload=%" PRId64 " version=%s", upload, version);
        rc = odp_encode(&odp_def_rec_version, &rec, req->pk) < 0
                 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the reply")
                 : 0;
    }
    PQclear(r);
    return rc;
}

void push_routes(odp_service_t *svc)
{
    const int push = ODP_ALLOW_OPERATIONS | ODP_ALLOW_PROVIDER;
    odp_service_route(svc, &odp_def_push_begin, push, s_push_begin);
    odp_service_route(svc, &odp_def_push_chunk, push, s_push_chunk);
    odp_service_route(svc, &odp_def_push_finish, push, s_push_finish);
    odp_service_route(svc, &odp_def_push_abort, push, s_push_abort);
    odp_service_route(svc, &odp_def_push_status, push, s_push_status);
    odp_service_route(svc, &odp_def_version_list, ODP_ALLOW_ANY & ~ODP_ALLOW_ANONYMOUS,
                      s_version_list);
    odp_service_route(svc, &odp_def_rejects_list, push, s_rejects_list);
    odp_service_route(svc, &odp_def_version_withdraw, push, s_version_withdraw);
}
