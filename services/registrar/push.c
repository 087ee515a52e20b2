/*  Pushed data (R5.5b, R7c, R8.3c): datasets and files arrive in chunks, become versions.

    A push is push.begin, push.chunk at consecutive offsets (the client keeps at most
    `credit` of them in flight; each ack frees one), then push.finish.

    A dataset is loaded in groups. Each dataset upload being pushed has a slot with its
    own PostgreSQL connection, which holds the open group: a transaction with
    `COPY stage_u<upload> FROM STDIN` open across chunks. A chunk is typed by the loader
    and its complete rows go to the COPY at once, in one PQputCopyData - in COPY's binary
    format where the column types allow, so that PostgreSQL parses nothing (s_bin_rows) -
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
#include "registrar.h"

#include "loader.h"
#include "rows.h"

#include "common/codelist.h"
#include "common/config.h"
#include "common/log.h"
#include "common/sha256.h"

#include <inttypes.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#endif
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  What the handlers need of an uploads row (and of its resource). */
typedef struct {
    int64_t id;
    char resource[33];
    char table[64];
    char department[10];
    char format[17];
    char encoding[17];
    char status[17];
    char sha256[65];
    char media_type[128];
    bool dataset;
    int64_t size;
    int64_t committed;
    int64_t rows;
    int64_t rejected;
    int64_t chunk_size;
    int64_t max_row_length;
    int64_t version; /* 0 until received */
    bool has_hash;
    crypto_hash_sha256_state hash;
} s_upload_t;

/*  A slot per dataset upload being pushed. 16 parallel pushes is more than the departments
    of one province do at once; the limit bounds the PostgreSQL connections (one per slot)
    and memory (each slot holds at most max_row_length + chunk_size bytes of stream, a
    chunk's typed rows and S_REJECTS_MAX of rejected rows). A slot idle for S_IDLE_MS may
    be given to another upload (its group is rolled back): its own client then gets
    BAD_OFFSET and resumes from the database. */
#define S_SLOTS          16
#define S_IDLE_MS        (10 * 60 * 1000)
#define S_COMMIT_BYTES   (16 * 1024 * 1024) /* default ODP_REGISTRAR_COMMIT_BYTES */
#define S_REJECTS_MAX    (4 * 1024 * 1024)  /* rejected rows that force a group commit */
#define S_COMMIT_SECONDS 30                 /* default ODP_REGISTRAR_COMMIT_SECONDS */

typedef struct {
    int64_t upload;    /* 0: free */
    int64_t committed; /* uploads.committed: where the last committed group ends */
    int64_t boundary;  /* the loader's row boundary: rows before it are in a group */
    loader_t *loader;
    crypto_hash_sha256_state hash; /* of bytes [0, boundary) */
    char *pending;                 /* bytes [boundary, boundary + npending): the open row */
    size_t npending;
    size_t cap;
    odp_db_t *db;          /* the upload's own connection ... */
    PGconn *conn;          /* ... fixed for the slot's life: never silently reconnected */
    bool in_tx;            /* the open group's transaction has begun */
    bool in_copy;          /* and COPY stage_u<upload> FROM STDIN is open in it */
    int64_t group_ms;      /* when that transaction began */
    loader_buf_t staged;   /* one feed's rows (reused) */
    loader_buf_t rejected; /* one feed's rejected rows (reused) */
    loader_buf_t rejects;  /* the open group's rejected rows, as COPY lines for rejects */
    loader_type_t *types;  /* of the staging table's columns, row_no first */
    size_t ntypes;
    bool binary;      /* the rows go in COPY's binary format (see s_bin_rows) */
    bool copy_binary; /* the open COPY is binary */
    bool text_rows;   /* some went as text after all (logged once) */
    loader_buf_t bin; /* one feed's rows in the binary format (reused) */
    s_upload_t u;     /* the uploads row when the slot was opened */
    int64_t used_ms;
} s_slot_t;

/*  A service is one thread handling one request at a time: a file-scope table is safe. */
static s_slot_t s_slots[S_SLOTS];

typedef struct {
    char formats[160];
    char encodings[160];
    int64_t max_size;
    int64_t max_row_length;
    int64_t chunk_size;
    int64_t credit;
} s_rules_t;

/*  ---- small helpers ------------------------------------------------------------------- */

static int64_t s_int(PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void s_copy_str(char *buf, size_t size, PGresult *r, int row, int col)
{
    snprintf(buf, size, "%s", PQgetvalue(r, row, col));
}

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

/*  The staging table of an upload, unqualified: the registrar's schema is first on its
    search_path. Built from a number, so it needs no quoting. */
static void s_stage_name(int64_t upload, char *buf, size_t size)
{
    snprintf(buf, size, "stage_u%" PRId64, upload);
}

/*  Dictionary field types to column types (principle 5: a dataset is a typed table). */
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

/*  The SHA-256 state of the upload's bytes [0, committed). */
static int s_hash_at(odp_req_t *req, const s_upload_t *u, crypto_hash_sha256_state *hash)
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

/*  ---- slots ----------------------------------------------------------------------------- */

static s_slot_t *s_slot_find(int64_t upload)
{
    for (size_t i = 0; i < S_SLOTS; i++)
        if (s_slots[i].upload == upload)
            return &s_slots[i];
    return NULL;
}

/*  Roll the open group back, then close the upload's connection. The rollback is done
    here, not left to the server noticing the closed socket, so that its locks are gone
    before the caller goes on (push.abort drops the staging table next). */
static void s_slot_close(s_slot_t *slot)
{
    PGconn *c = slot->conn;
    if (c && slot->in_tx && PQstatus(c) == CONNECTION_OK) {
        if (slot->in_copy)
            PQputCopyEnd(c, "odp: the group is given up");
        PGresult *r;
        while ((r = PQgetResult(c))) {
            ExecStatusType st = PQresultStatus(r);
            PQclear(r);
            if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
                break;
        }
        PQclear(PQexec(c, "ROLLBACK"));
    }
    slot->conn = NULL;
    slot->in_tx = slot->in_copy = false;
    odp_db_destroy(&slot->db);
}

static void s_slot_free(s_slot_t *slot)
{
    if (!slot)
        return;
    s_slot_close(slot);
    loader_destroy(&slot->loader);
    free(slot->pending);
    loader_buf_free(&slot->staged);
    loader_buf_free(&slot->rejected);
    loader_buf_free(&slot->rejects);
    loader_buf_free(&slot->bin);
    free(slot->types);
    sodium_memzero(slot, sizeof *slot);
}

static void s_slot_drop(int64_t upload)
{
    s_slot_free(s_slot_find(upload));
}

/*  A free slot, else the least recently used one idle for S_IDLE_MS, else NULL. */
static s_slot_t *s_slot_take(void)
{
    s_slot_t *lru = NULL;
    for (size_t i = 0; i < S_SLOTS; i++) {
        if (s_slots[i].upload == 0)
            return &s_slots[i];
        if (!lru || s_slots[i].used_ms < lru->used_ms)
            lru = &s_slots[i];
    }
    if (zclock_mono() - lru->used_ms < S_IDLE_MS)
        return NULL;
    odp_info("event=push.slot_evicted upload=%" PRId64, lru->upload);
    s_slot_free(lru);
    return lru;
}

static int s_buf_add(loader_buf_t *buf, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (buf->len + len > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + len)
            cap *= 2;
        char *p = realloc(buf->data, cap);
        if (!p)
            return -1;
        buf->data = p;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

static int s_pending_add(s_slot_t *slot, const char *data, size_t len)
{
    loader_buf_t b = {slot->pending, slot->npending, slot->cap};
    int rc = s_buf_add(&b, data, len);
    slot->pending = b.data;
    slot->npending = b.len;
    slot->cap = b.cap;
    return rc;
}

/*  "{1,0,2}" -> ints; NULL/empty gives n = 0. */
static int *s_parse_colmap(const char *text, size_t *n)
{
    *n = 0;
    if (!text || text[0] != '{' || text[1] == '}')
        return NULL;
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    int *map = calloc(count, sizeof *map);
    if (!map)
        return NULL;
    const char *p = text + 1;
    for (size_t i = 0; i < count; i++) {
        char *end;
        map[i] = (int)strtol(p, &end, 10);
        p = end + 1;
    }
    *n = count;
    return map;
}

/*  A loader for the upload, resumed at its committed boundary. Its columns are the
    staging table's, not the dictionary's: the table is what the rows must fit, even if the
    dictionary was edited since push.begin. */
static loader_t *s_loader(odp_req_t *req, const s_upload_t *u, const int *map, size_t nmap,
                          loader_type_t **types, size_t *ntypes)
{
    char stage[40];
    s_stage_name(u->id, stage, sizeof stage);
    const char *vals[1] = {stage};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT attname, atttypid::regtype::text FROM pg_attribute "
                              "WHERE attrelid = $1::regclass AND attnum > 1 AND NOT attisdropped "
                              "ORDER BY attnum",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        odp_req_db_fail(req, r, "the staging table");
        return NULL;
    }
    size_t n = (size_t)PQntuples(r), i = 0;
    loader_col_t *cols = calloc(n ? n : 1, sizeof *cols);
    for (; cols && i < n; i++) {
        const char *type = PQgetvalue(r, (int)i, 1);
        size_t t = 0;
        while (t < S_NTYPES && strcmp(s_types[t].sql, type) != 0)
            t++;
        if (t == S_NTYPES)
            break;
        cols[i] = (loader_col_t){PQgetvalue(r, (int)i, 0), s_types[t].loader};
    }
    loader_t *loader = NULL;
    *types = cols && i == n ? calloc(n + 1, sizeof **types) : NULL;
    if (*types) {
        (*types)[0] = LOADER_INTEGER; /* row_no */
        for (size_t c = 0; c < n; c++)
            (*types)[c + 1] = cols[c].type;
        *ntypes = n + 1;
        loader = loader_new(strcmp(u->format, "jsonl") == 0 ? LOADER_JSONL : LOADER_CSV,
                            strcmp(u->encoding, "gb18030") == 0 ? LOADER_GB18030 : LOADER_UTF8,
                            cols, n, (size_t)u->max_row_length);
    }
    free(cols);
    PQclear(r);
    if (loader && u->committed > 0 &&
        loader_resume(loader, u->committed, u->rows, u->rejected, map, nmap) < 0)
        loader_destroy(&loader);
    if (!loader) {
        free(*types);
        *types = NULL;
        odp_error("event=push.no_loader upload=%" PRId64 " committed=%" PRId64, u->id,
                  u->committed);
        odp_req_fail(req, ODP_E_INTERNAL, NULL, "the upload cannot be resumed; it is logged");
    }
    return loader;
}

/*  Rebuild an upload's slot from its row, at its committed boundary. */
static int s_slot_open(odp_req_t *req, const s_upload_t *u, s_slot_t **out)
{
    crypto_hash_sha256_state hash;
    if (s_hash_at(req, u, &hash) < 0)
        return -1;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, u->id);
    const char *vals[1] = {id};
    PGresult *r =
        odp_db_exec(req->db, "SELECT colmap::text FROM uploads WHERE id = $1", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the upload");
    size_t nmap;
    int *map = s_parse_colmap(PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0), &nmap);
    PQclear(r);
    loader_type_t *types = NULL;
    size_t ntypes = 0;
    loader_t *loader = s_loader(req, u, map, nmap, &types, &ntypes);
    free(map);
    if (!loader)
        return -1;
    s_slot_t *slot = s_slot_take();
    if (!slot) {
        free(types);
        loader_destroy(&loader);
        return odp_req_fail(req, ODP_E_RATE_LIMITED, NULL,
                            "%d datasets are being pushed at this moment; retry in a while",
                            S_SLOTS);
    }
    /*  The upload's own connection: same role and search_path as the service's. */
    odp_db_t *db = odp_db_new("registrar");
    PGconn *conn = db ? odp_db_conn(db) : NULL;
    if (!conn) {
        odp_db_destroy(&db);
        free(types);
        loader_destroy(&loader);
        return odp_req_db_fail(req, NULL, "the rows");
    }
    slot->upload = u->id;
    slot->u = *u;
    slot->committed = slot->boundary = u->committed;
    slot->loader = loader;
    slot->hash = hash;
    slot->db = db;
    slot->conn = conn;
    slot->types = types;
    slot->ntypes = ntypes;
    slot->binary = true;
    for (size_t i = 0; i < ntypes; i++)
        slot->binary = slot->binary && types[i] != LOADER_TIMESTAMP;
    slot->used_ms = zclock_mono();
    *out = slot;
    return 0;
}

/*  ---- uploads and rules ------------------------------------------------------------------ */

static int s_rules_load(odp_req_t *req, s_rules_t *rules)
{
    PGresult *r = odp_db_exec(req->db,
                              "SELECT array_to_string(formats, ','), "
                              "array_to_string(encodings, ','), max_size, max_row_length, "
                              "chunk_size, credit FROM transfer_rules WHERE id = 1",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the transfer rules");
    s_copy_str(rules->formats, sizeof rules->formats, r, 0, 0);
    s_copy_str(rules->encodings, sizeof rules->encodings, r, 0, 1);
    rules->max_size = s_int(r, 0, 2);
    rules->max_row_length = s_int(r, 0, 3);
    rules->chunk_size = s_int(r, 0, 4);
    rules->credit = s_int(r, 0, 5);
    PQclear(r);
    return 0;
}

/*  Load upload id; 404 when there is none, 403 when the actor may not act on it. */
static int s_upload_load(odp_req_t *req, int64_t id, s_upload_t *u)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *vals[1] = {ids};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT u.resource, u.table_name, r.department, u.format, coalesce(u.encoding, ''), "
        "u.status, u.sha256, coalesce(u.media_type, ''), u.kind = 'dataset', u.size, "
        "u.committed, u.rows_received, u.rows_rejected, coalesce(u.chunk_size, t.chunk_size), "
        "coalesce(u.max_row_length, t.max_row_length), coalesce(u.version, 0), u.hash_state "
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
    s_copy_str(u->resource, sizeof u->resource, r, 0, 0);
    s_copy_str(u->table, sizeof u->table, r, 0, 1);
    s_copy_str(u->department, sizeof u->department, r, 0, 2);
    s_copy_str(u->format, sizeof u->format, r, 0, 3);
    s_copy_str(u->encoding, sizeof u->encoding, r, 0, 4);
    s_copy_str(u->status, sizeof u->status, r, 0, 5);
    s_copy_str(u->sha256, sizeof u->sha256, r, 0, 6);
    s_copy_str(u->media_type, sizeof u->media_type, r, 0, 7);
    u->dataset = PQgetvalue(r, 0, 8)[0] == 't';
    u->size = s_int(r, 0, 9);
    u->committed = s_int(r, 0, 10);
    u->rows = s_int(r, 0, 11);
    u->rejected = s_int(r, 0, 12);
    u->chunk_size = s_int(r, 0, 13);
    u->max_row_length = s_int(r, 0, 14);
    u->version = s_int(r, 0, 15);
    /*  A state of another size is from another build: s_hash_at() refuses to go on. */
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
static int s_upload_receiving(odp_req_t *req, int64_t id, s_upload_t *u)
{
    if (s_upload_load(req, id, u) < 0)
        return -1;
    if (strcmp(u->status, "receiving") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "upload %" PRId64 " is %s, not receiving", id, u->status);
    return 0;
}

/*  In an open transaction: the uploads row is no longer receiving, its staged rows,
    rejects and file pieces are gone, and data.failed says why. */
static int s_abandon_tx(odp_req_t *req, const s_upload_t *u, const char *code, const char *reason)
{
    char id[24], failure[1100], stage[40], drop[80];
    snprintf(id, sizeof id, "%" PRId64, u->id);
    snprintf(failure, sizeof failure, "%s: %s", code, reason);
    s_stage_name(u->id, stage, sizeof stage);
    snprintf(drop, sizeof drop, "DROP TABLE IF EXISTS %s", stage);
    const char *vals[2] = {id, failure};
    if (odp_db_cmd(req->db,
                   "UPDATE uploads SET status = 'abandoned', failure = $2, finished_at = now(), "
                   "staging_table = NULL, hash_state = NULL WHERE id = $1",
                   2, vals, NULL) < 0 ||
        odp_db_cmd(req->db, drop, 0, NULL, NULL) < 0 ||
        odp_db_cmd(req->db, "DELETE FROM rejects WHERE upload = $1", 1, vals, NULL) < 0 ||
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
static int s_fail_upload(odp_req_t *req, const s_upload_t *u, odp_err_t code, const char *field,
                         const char *reason)
{
    s_slot_drop(u->id);
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abandonment");
    if (s_abandon_tx(req, u, odp_err_name(code), reason) < 0)
        return -1;
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abandonment");
    odp_info("event=push.failed upload=%" PRId64 " code=%s", u->id, odp_err_name(code));
    /*  odp_error_set cuts a long message (a header's names) on a UTF-8 boundary. */
    return odp_error_set(req->err, code, field, "upload %" PRId64 " is abandoned: %s", u->id,
                         reason);
}

/*  The loader refused the stream (HEADER_MISMATCH, RULE_ROW_LENGTH): the push is over. */
static int s_fail_loader(odp_req_t *req, const s_upload_t *u, const odp_error_t *lerr)
{
    return s_fail_upload(req, u, lerr->code ? lerr->code : ODP_E_INTERNAL,
                         lerr->field[0] ? lerr->field : "data",
                         lerr->message[0] ? lerr->message : "the loader failed");
}

/*  ---- binary COPY ------------------------------------------------------------------------- */

/*  PostgreSQL parses COPY's text format and runs every type's input function (date_in
    alone is a tokenizer); its binary format skips both, which takes about a quarter off
    the time PostgreSQL spends on a COPY - and PostgreSQL's core is what a push waits for.
    So the loader's rows, already typed and checked, are turned into the binary format
    here: bigint, numeric, date, boolean and text values, each exactly what the type's
    input function would make of the text (numeric keeps its display scale; text is
    de-escaped as COPY does). A table with a timestamp column keeps the text format (a
    timestamp without a zone is read in the session's time zone: that stays PostgreSQL's
    business), and a chunk with anything the conversion does not expect goes as text, to
    the same COPY semantics as before. */

/*  Signature, flags 0, header extension length 0: 19 bytes. */
static const char s_bin_header[20] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";

static int s_bin_reserve(loader_buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static char *s_be16(char *o, unsigned v)
{
    o[0] = (char)(v >> 8);
    o[1] = (char)v;
    return o + 2;
}

static char *s_be32(char *o, uint32_t v)
{
    o[0] = (char)(v >> 24);
    o[1] = (char)(v >> 16);
    o[2] = (char)(v >> 8);
    o[3] = (char)v;
    return o + 4;
}

static char *s_be64(char *o, uint64_t v)
{
    o = s_be32(o, (uint32_t)(v >> 32));
    return s_be32(o, (uint32_t)v);
}

/*  Each converter reads one field from p - the line ends in '\n' at eol, p <= eol - up
    to the tab or the line end after it, which it leaves in *end, and writes the field's
    length and value at o. NULL when the text is not as the loader writes it. */

/*  "[+-]digits" in the int8 range. */
static char *s_bin_int8(char *o, const char *p, const char **end)
{
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *d0 = p;
    uint64_t v = 0;
    for (unsigned d; (d = (unsigned)(unsigned char)*p - '0') <= 9; p++)
        v = v * 10 + d;
    if (p == d0 || p - d0 > 19 || v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return NULL;
    *end = p;
    o = s_be32(o, 8);
    return s_be64(o, neg ? (uint64_t)0 - v : v);
}

/*  YYYY-MM-DD, a real date of years 1-9999: days from 2000-01-01, by PostgreSQL's own
    date2j(). */
static char *s_bin_date(char *o, const char *p, const char *eol, const char **end)
{
    if (eol - p < 10 || p[4] != '-' || p[7] != '-')
        return NULL;
    int v[8];
    for (int i = 0, j = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        v[j] = p[i] - '0';
        if (v[j] < 0 || v[j] > 9)
            return NULL;
        j++;
    }
    int year = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3], month = v[4] * 10 + v[5],
        day = v[6] * 10 + v[7];
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if (year < 1 || month < 1 || month > 12 || day < 1 ||
        day > mdays[month - 1] + (month == 2 && leap))
        return NULL;
    if (month > 2) {
        month += 1;
        year += 4800;
    } else {
        month += 13;
        year += 4799;
    }
    int century = year / 100;
    int julian = year * 365 - 32167 + year / 4 - century + century / 4 + 7834 * month / 256 + day;
    *end = p + 10;
    o = s_be32(o, 4);
    return s_be32(o, (uint32_t)(julian - 2451545));
}

static long s_floor4(long v)
{
    return v >= 0 ? v / 4 : -((-v + 3) / 4);
}

/*  [+-]digits[.digits][e[+-]digits] as numeric_in() reads it: the exact value, display
    scale = digits after the point less the exponent (at least 0). Base-10000 digits,
    weight of the first, sign, scale; PostgreSQL strips zero digits itself. */
static char *s_bin_numeric(char *o, const char *p, const char **end)
{
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *ip = p;
    while ((unsigned)(unsigned char)*p - '0' <= 9)
        p++;
    size_t ni = (size_t)(p - ip), nf = 0;
    const char *fp = p;
    if (*p == '.') {
        fp = ++p;
        while ((unsigned)(unsigned char)*p - '0' <= 9)
            p++;
        nf = (size_t)(p - fp);
    }
    if (ni + nf == 0)
        return NULL;
    long exp = 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        bool eneg = false;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        const char *e0 = p;
        for (; (unsigned)(unsigned char)*p - '0' <= 9; p++)
            if ((exp = exp * 10 + (*p - '0')) > 1000000)
                return NULL;
        if (p == e0)
            return NULL;
        if (eneg)
            exp = -exp;
    }
    *end = p;
    long dscale = (long)nf - exp;
    if (dscale < 0)
        dscale = 0;
    if (dscale > 0x3FFF)
        return NULL;
    /*  Decimal digit j (of the ni + nf) has the power 10^(point - 1 - j). */
    long point = (long)ni + exp, first = -1, last = -1;
    size_t nd = ni + nf;
#define S_DIGIT(j) ((j) < ni ? ip[(j)] - '0' : fp[(j)-ni] - '0')
    for (size_t j = 0; j < nd; j++)
        if (S_DIGIT(j)) {
            if (first < 0)
                first = (long)j;
            last = (long)j;
        }
    if (first < 0) { /* zero */
        o = s_be32(o, 8);
        o = s_be16(o, 0);
        o = s_be16(o, 0);
        o = s_be16(o, 0);
        return s_be16(o, (unsigned)dscale);
    }
    long w0 = s_floor4(point - 1 - first), wl = s_floor4(point - 1 - last);
    long ndigits = w0 - wl + 1;
    if (w0 > 32767 || wl < -32768 || ndigits > 0xFFFF)
        return NULL;
    o = s_be32(o, (uint32_t)(8 + 2 * ndigits));
    o = s_be16(o, (unsigned)ndigits);
    o = s_be16(o, (unsigned)(uint16_t)(int16_t)w0);
    o = s_be16(o, neg ? 0x4000 : 0);
    o = s_be16(o, (unsigned)dscale);
    static const unsigned pow10[4] = {1, 10, 100, 1000};
    long g = w0;
    unsigned acc = 0;
    for (long j = first; j <= last; j++) {
        long e = point - 1 - j, gj = s_floor4(e);
        while (g > gj) { /* the group is complete */
            o = s_be16(o, acc);
            acc = 0;
            g--;
        }
        acc += (unsigned)S_DIGIT((size_t)j) * pow10[e - 4 * gj];
    }
#undef S_DIGIT
    return s_be16(o, acc);
}

/*  Whether any byte of w is c: the classic has-zero-byte test on w ^ (c * 0x01..01). */
#define S_HAS(w, c)                                                                                \
    ((((w) ^ (0x0101010101010101ULL * (c))) - 0x0101010101010101ULL) &                             \
     ~((w) ^ (0x0101010101010101ULL * (c))) & 0x8080808080808080ULL)

/*  A text value, de-escaped as COPY does. The loader escapes only backslash, tab, newline
    and carriage return; \b \f \v are taken too, anything else (octal, hex, a lone
    backslash) is left to the text format. */
static char *s_bin_text(char *o, const char *p, const char *eol, const char **end)
{
    char *len = o;
    o += 4;
    for (;;) {
        /*  Values rarely hold anything to escape: move them eight bytes at a time. */
        uint64_t w;
        while (eol + 1 - p >= 8) {
            memcpy(&w, p, 8);
            if (S_HAS(w, '\t') || S_HAS(w, '\n') || S_HAS(w, '\\'))
                break;
            memcpy(o, &w, 8);
            o += 8;
            p += 8;
        }
        char c = *p;
        if (c == '\t' || c == '\n')
            break;
        p++;
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        switch (*p++) {
        case '\\':
            *o++ = '\\';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'v':
            *o++ = '\v';
            break;
        default:
            return NULL;
        }
    }
    *end = p;
    s_be32(len, (uint32_t)(o - len - 4));
    return o;
}

/*  The rows of text (lines ending in '\n', fields separated by tabs, \N for NULL) into
    out in the binary format, without its header; -1 when anything is not as the loader
    writes it, out then as it was. types[0] is row_no's. */
static int s_bin_rows(loader_buf_t *out, const char *text, size_t len, const loader_type_t *types,
                      size_t ntypes)
{
    size_t start = out->len;
    char *o = out->data ? out->data + out->len : NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            goto bad;
        /*  A field takes at most its text's length + 16 bytes (a numeric of one digit:
            4 + 8 + 2), a row 2 more. */
        size_t room = (size_t)(eol - p) + 16 * ntypes + 16;
        if (!o || (size_t)(out->data + out->cap - o) < room) {
            size_t at = o ? (size_t)(o - out->data) : out->len;
            out->len = at;
            if (s_bin_reserve(out, room < len ? len : room) < 0)
                goto bad;
            o = out->data + at;
        }
        o = s_be16(o, (unsigned)ntypes);
        for (size_t f = 0; f < ntypes; f++) {
            const char *fe = p;
            if (p[0] == '\\' && p[1] == 'N' && (p[2] == '\t' || p[2] == '\n')) {
                o = s_be32(o, 0xFFFFFFFFu);
                fe = p + 2;
            } else {
                switch (types[f]) {
                case LOADER_TEXT:
                    o = s_bin_text(o, p, eol, &fe);
                    break;
                case LOADER_INTEGER:
                    o = s_bin_int8(o, p, &fe);
                    break;
                case LOADER_NUMERIC:
                    o = s_bin_numeric(o, p, &fe);
                    break;
                case LOADER_DATE:
                    o = s_bin_date(o, p, eol, &fe);
                    break;
                case LOADER_BOOLEAN:
                    if (*p != 't' && *p != 'f')
                        goto bad;
                    o = s_be32(o, 1);
                    *o++ = *p == 't';
                    fe = p + 1;
                    break;
                default:
                    goto bad;
                }
                if (!o)
                    goto bad;
            }
            /*  Each field ends at a tab, the last one at the line end. */
            if (*fe != (f + 1 < ntypes ? '\t' : '\n'))
                goto bad;
            p = fe + 1;
        }
    }
    out->len = (size_t)(o - out->data);
    return 0;
bad:
    out->len = start;
    return -1;
}

/*  ---- the open group ------------------------------------------------------------------ */

static int64_t s_commit_bytes(void)
{
    static int64_t bytes;
    if (bytes == 0) {
        bytes = odp_config_int("registrar", "COMMIT_BYTES", S_COMMIT_BYTES);
        if (bytes < 1)
            bytes = S_COMMIT_BYTES;
    }
    return bytes;
}

/*  How long a group's transaction may stay open, in milliseconds. An open transaction
    holds back what VACUUM may clean in the whole database, and PostgreSQL has no timeout
    for a session waiting for COPY data: a client that went away must not keep one open. */
static int64_t s_commit_ms(void)
{
    static int64_t ms;
    if (ms == 0) {
        int64_t sec = odp_config_int("registrar", "COMMIT_SECONDS", S_COMMIT_SECONDS);
        ms = 1000 * (sec < 1 ? S_COMMIT_SECONDS : sec);
    }
    return ms;
}

/*  Something failed on the upload's connection: log it, give the slot up - its group is
    rolled back, and only a resume from the committed boundary is right - and answer
    UNAVAILABLE (the connection is gone) or INTERNAL (the loader typed every value, so a
    refusal is a bug). Clears r. */
static int s_group_fail(odp_req_t *req, s_slot_t *slot, const char *step, PGresult *r)
{
    bool down = PQstatus(slot->conn) != CONNECTION_OK;
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(slot->conn);
    char q[340];
    odp_error("event=push.group_failed upload=%" PRId64 " step=%s error=%s", slot->upload, step,
              odp_log_quote(m, strlen(m), q, sizeof q));
    PQclear(r);
    s_slot_free(slot);
    if (down)
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                            "the database went away; resume with push.begin");
    return odp_req_fail(req, ODP_E_INTERNAL, NULL,
                        "storing the rows failed; it is logged; resume with push.begin");
}

static int s_copy_end(odp_req_t *req, s_slot_t *slot, const char *step);

/*  The group's transaction, and with copy its COPY into the staging table in the format
    binary asks for, opened when first needed (a COPY in the other format is ended). */
static int s_group_open(odp_req_t *req, s_slot_t *slot, bool copy, bool binary)
{
    PGresult *r;
    if (!slot->in_tx) {
        r = PQexec(slot->conn, "BEGIN");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return s_group_fail(req, slot, "begin", r);
        PQclear(r);
        slot->in_tx = true;
        slot->group_ms = zclock_mono();
    }
    if (copy && slot->in_copy && slot->copy_binary != binary &&
        s_copy_end(req, slot, "copy_switch") < 0)
        return -1;
    if (copy && !slot->in_copy) {
        char sql[80];
        snprintf(sql, sizeof sql, "COPY stage_u%" PRId64 " FROM STDIN%s", slot->upload,
                 binary ? " WITH (FORMAT binary)" : "");
        r = PQexec(slot->conn, sql);
        if (PQresultStatus(r) != PGRES_COPY_IN)
            return s_group_fail(req, slot, "copy", r);
        PQclear(r);
        slot->in_copy = true;
        slot->copy_binary = binary;
        if (binary && PQputCopyData(slot->conn, s_bin_header, sizeof s_bin_header - 1) != 1)
            return s_group_fail(req, slot, "copy_header", NULL);
    }
    return 0;
}

/*  End the COPY in progress: every result must be COMMAND_OK. */
static int s_copy_end(odp_req_t *req, s_slot_t *slot, const char *step)
{
    slot->in_copy = false;
    if (slot->copy_binary && PQputCopyData(slot->conn, "\377\377", 2) != 1) /* trailer: -1 */
        return s_group_fail(req, slot, step, NULL);
    slot->copy_binary = false;
    if (PQputCopyEnd(slot->conn, NULL) != 1)
        return s_group_fail(req, slot, step, NULL);
    PGresult *r, *bad = NULL;
    while ((r = PQgetResult(slot->conn))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || bad) {
            PQclear(r);
        } else {
            bad = r;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break;
    }
    return bad ? s_group_fail(req, slot, step, bad) : 0;
}

/*  One feed's output into the group: its rows to the COPY in one piece (libpq sends it as
    it goes; PostgreSQL copies while we parse the next chunk), its rejected rows, prefixed
    with the upload, to the group's buffer. */
static int s_group_add(odp_req_t *req, s_slot_t *slot)
{
    if (slot->staged.len) {
        const loader_buf_t *rows = &slot->staged;
        bool binary = false;
        if (slot->binary) {
            slot->bin.len = 0;
            binary = s_bin_rows(&slot->bin, slot->staged.data, slot->staged.len, slot->types,
                                slot->ntypes) == 0;
            if (binary)
                rows = &slot->bin;
            else if (!slot->text_rows) {
                slot->text_rows = true;
                odp_warn("event=push.text_rows upload=%" PRId64
                         " msg=\"rows not as expected for the binary format: sent as text\"",
                         slot->upload);
            }
        }
        if (s_group_open(req, slot, true, binary) < 0)
            return -1;
        if (PQputCopyData(slot->conn, rows->data, (int)rows->len) != 1)
            return s_group_fail(req, slot, "copy_data", NULL);
        slot->staged.len = 0;
    }
    char prefix[24];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "%" PRId64 "\t", slot->upload);
    const loader_buf_t *rej = &slot->rejected;
    for (size_t o = 0; o < rej->len;) {
        /*  Loader lines never hold a raw newline inside a value (COPY text format escapes
            it), so '\n' ends a row. */
        const char *nl = memchr(rej->data + o, '\n', rej->len - o);
        size_t len = nl ? (size_t)(nl - (rej->data + o)) + 1 : rej->len - o;
        if (s_buf_add(&slot->rejects, prefix, plen) < 0 ||
            s_buf_add(&slot->rejects, rej->data + o, len) < 0) {
            s_slot_free(slot);
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        }
        o += len;
    }
    slot->rejected.len = 0;
    return 0;
}

/*  "{0,2,1}" for the loader's header mapping, or NULL before the header was read. */
static char *s_colmap_text(const loader_t *loader)
{
    size_t n = 0;
    const int *map = loader_colmap(loader, &n);
    if (!map)
        return NULL;
    char *text = malloc(n * 12 + 3);
    if (!text)
        return NULL;
    size_t o = 0;
    text[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(text + o, "%s%d", i ? "," : "", map[i]);
    text[o++] = '}';
    text[o] = '\0';
    return text;
}

/*  The upload's progress, if nobody moved it meanwhile: committed moves from `from` to
    `to`, with the hash state at `to` (binary) and the row counts. */
#define S_PROGRESS_SQL                                                                             \
    "UPDATE uploads SET committed = $2, hash_state = $3, "                                         \
    "rows_received = $4, rows_rejected = $5, rows_staged = $4::bigint - $5::bigint, "              \
    "colmap = coalesce($6::int[], colmap) "                                                        \
    "WHERE id = $1 AND status = 'receiving' AND committed = $7"

typedef struct {
    char id[24], to[24], from[24], rows[24], rejected[24];
    const char *vals[7];
    int lens[7];
    int formats[7];
} s_progress_t;

static void s_progress(s_progress_t *p, int64_t upload, int64_t from, int64_t to,
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

static int s_moved_on(odp_req_t *req, int64_t upload)
{
    return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                        "upload %" PRId64 " moved on meanwhile: call push.begin again", upload);
}

/*  In the open transaction of the service's connection (files). */
static int s_save_progress(odp_req_t *req, const s_upload_t *u, int64_t from, int64_t to,
                           const crypto_hash_sha256_state *hash)
{
    s_progress_t p;
    s_progress(&p, u->id, from, to, hash, 0, 0, NULL);
    PGresult *r = odp_db_exec(req->db, S_PROGRESS_SQL, 7, p.vals, p.lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_req_db_fail(req, r, "the upload's progress");
    bool hit = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return hit ? 0 : s_moved_on(req, u->id);
}

/*  Commit the open group: end its COPY, copy its rejected rows, move uploads.committed to
    the loader's boundary with the hash state and counts there, COMMIT. On any failure the
    slot is given up (the group is rolled back). */
static int s_group_commit(odp_req_t *req, s_slot_t *slot)
{
    if (!slot->in_tx && slot->boundary == slot->committed && slot->rejects.len == 0)
        return 0;
    if (s_group_open(req, slot, false, false) < 0)
        return -1;
    if (slot->in_copy && s_copy_end(req, slot, "copy_end") < 0)
        return -1;
    if (slot->rejects.len) {
        PGresult *r =
            PQexec(slot->conn, "COPY rejects (upload, row_no, reason, detail, raw) FROM STDIN");
        if (PQresultStatus(r) != PGRES_COPY_IN)
            return s_group_fail(req, slot, "rejects", r);
        PQclear(r);
        slot->in_copy = true;
        if (PQputCopyData(slot->conn, slot->rejects.data, (int)slot->rejects.len) != 1)
            return s_group_fail(req, slot, "rejects_data", NULL);
        if (s_copy_end(req, slot, "rejects_end") < 0)
            return -1;
        slot->rejects.len = 0;
    }
    char *colmap = s_colmap_text(slot->loader);
    s_progress_t p;
    s_progress(&p, slot->upload, slot->committed, slot->boundary, &slot->hash,
               loader_rows(slot->loader), loader_rejected(slot->loader), colmap);
    PGresult *r = PQexecParams(slot->conn, S_PROGRESS_SQL, 7, NULL, p.vals, p.lens, p.formats, 0);
    free(colmap);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_group_fail(req, slot, "progress", r);
    bool hit = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!hit) {
        int64_t upload = slot->upload;
        s_slot_free(slot);
        return s_moved_on(req, upload);
    }
    r = PQexec(slot->conn, "COMMIT");
    /*  A transaction that had failed answers COMMIT with ROLLBACK. */
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0)
        return s_group_fail(req, slot, "commit", r);
    PQclear(r);
    slot->in_tx = false;
    slot->committed = slot->boundary;
    return 0;
}

/*  Commit the groups that have been open and idle for the commit time: at every push
    request, the client that left them may not come back. A failure gives the slot up,
    logged; the request at hand is not answered with it. */
static void s_slots_tidy(odp_req_t *req)
{
    int64_t now = zclock_mono();
    for (size_t i = 0; i < S_SLOTS; i++) {
        s_slot_t *slot = &s_slots[i];
        if (slot->upload == 0 || !slot->in_tx || now - slot->used_ms < s_commit_ms())
            continue;
        odp_error_t err = {0};
        odp_req_t quiet = *req;
        quiet.err = &err;
        odp_info("event=push.idle_commit upload=%" PRId64 " idle_ms=%" PRId64, slot->upload,
                 now - slot->used_ms);
        s_group_commit(&quiet, slot);
    }
}

/*  ---- push.begin ----------------------------------------------------------------------- */

typedef struct {
    char resource[33];
    char table[64];
    char department[10];
    char format[17];
    char encoding[17];
    bool dataset;
    char *columns; /* of the staging table, for a dataset */
    s_rules_t rules;
} s_begin_t;

/*  The resource: exists, may be acted on, registered. */
static int s_begin_resource(odp_req_t *req, const odp_push_begin_t *m, s_begin_t *b)
{
    odp_v_cstr(&m->resource, b->resource, sizeof b->resource);
    const char *vals[1] = {b->resource};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT department, content_kind = 'dataset', status FROM resources "
                              "WHERE resource = $1",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the resource");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no catalogue entry is %s",
                            b->resource);
    }
    s_copy_str(b->department, sizeof b->department, r, 0, 0);
    b->dataset = PQgetvalue(r, 0, 1)[0] == 't';
    char status[32];
    s_copy_str(status, sizeof status, r, 0, 2);
    PQclear(r);
    if (!registrar_may_act(req, b->department))
        return odp_req_fail(req, ODP_E_FORBIDDEN, "resource",
                            "%s belongs to department %s; you may push only to your own entries",
                            b->resource, b->department);
    if (strcmp(status, "registered") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "resource",
                            "%s is %s: register it first (registration.request)", b->resource,
                            status);
    return 0;
}

/*  Format, encoding, table and size against the transfer rules. */
static int s_begin_rules(odp_req_t *req, const odp_push_begin_t *m, s_begin_t *b)
{
    if (s_rules_load(req, &b->rules) < 0)
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

/*  Identical content received already, or the same push in progress: answer and return 1. */
static int s_begin_existing(odp_req_t *req, const odp_push_begin_t *m, const s_begin_t *b)
{
    const char *vals[3] = {b->resource, b->table, m->sha256.str};
    int lens[3] = {-1, -1, (int)m->sha256.len};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT id, status, coalesce(version, 0), committed, size, format, "
                              "coalesce(encoding, ''), coalesce(chunk_size, 0) FROM uploads "
                              "WHERE resource = $1 AND table_name = $2 AND sha256 = $3 "
                              "AND status IN ('received', 'receiving') "
                              "ORDER BY status = 'received' DESC, version LIMIT 1",
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the uploads");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    odp_rep_push_begin_t rep = {0};
    int64_t id = s_int(r, 0, 0);
    bool received = strcmp(PQgetvalue(r, 0, 1), "received") == 0;
    bool same = s_int(r, 0, 4) == m->size.i && strcmp(PQgetvalue(r, 0, 5), b->format) == 0 &&
                strcmp(PQgetvalue(r, 0, 6), b->encoding) == 0;
    rep.credit = odp_v_int(b->rules.credit);
    rep.duplicate = odp_v_bool(received);
    if (received) {
        rep.version = odp_v_int(s_int(r, 0, 2));
        rep.offset = odp_v_int(m->size.i);
        rep.chunk_size = odp_v_int(b->rules.chunk_size);
    } else {
        rep.upload = odp_v_int(id);
        rep.offset = odp_v_int(s_int(r, 0, 3));
        rep.chunk_size = odp_v_int(s_int(r, 0, 7) ? s_int(r, 0, 7) : b->rules.chunk_size);
    }
    PQclear(r);
    if (!received && !same)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "sha256",
                            "upload %" PRId64 " is receiving this content with another size, "
                            "format or encoding: push.abort it first",
                            id);
    /*  A resume starts again at the committed boundary: whatever the slot holds beyond it
        was never acknowledged as committed, and the client sends it again. */
    if (!received)
        s_slot_drop(id);
    if (odp_encode(&odp_def_rep_push_begin, &rep, req->pk) < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the reply");
    return 1;
}

/*  The staging table's columns from the table's dictionary, in position order, as
    `, "<field>" <type> ...` in b->columns (the caller frees it). 404 without one. */
static int s_begin_dictionary(odp_req_t *req, s_begin_t *b)
{
    const char *vals[2] = {b->resource, b->table};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT name, type FROM dictionary_fields WHERE resource = $1 "
                              "AND table_name = $2 ORDER BY position",
                              2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the dictionary");
    int n = PQntuples(r), rc = 0;
    PGconn *c = odp_db_conn(req->db);
    size_t size = 0;
    FILE *f = n && c ? open_memstream(&b->columns, &size) : NULL;
    if (n == 0)
        rc = odp_req_fail(req, ODP_E_NOT_FOUND, "table", "%s has no data dictionary for table %s",
                          b->resource, b->table);
    for (int i = 0; f && rc == 0 && i < n; i++) {
        const char *name = PQgetvalue(r, i, 0), *type = PQgetvalue(r, i, 1);
        size_t t = 0;
        while (t < S_NTYPES && strcmp(s_types[t].field, type) != 0)
            t++;
        char *ident = PQescapeIdentifier(c, name, strlen(name));
        if (strcmp(name, "row_no") == 0)
            rc = odp_req_fail(req, ODP_E_INVALID_VALUE, "table",
                              "the dictionary has a field row_no, the staging table's own row "
                              "number: rename it");
        else if (ident && t < S_NTYPES)
            fprintf(f, ", %s %s", ident, s_types[t].sql);
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
    char size[24], chunk[24], rowlen[24];
    snprintf(size, sizeof size, "%" PRId64, m->size.i);
    snprintf(chunk, sizeof chunk, "%" PRId64, b->rules.chunk_size);
    snprintf(rowlen, sizeof rowlen, "%" PRId64, b->rules.max_row_length);
    const char *media = m->media_type.present ? m->media_type.str
                        : b->dataset          ? NULL
                                              : "application/octet-stream";
    const char *vals[12] = {b->resource,
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
                            rowlen};
    int lens[12] = {-1,
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
                    -1};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO uploads (resource, table_name, kind, format, encoding, "
                              "size, sha256, filename, media_type, started_by, chunk_size, "
                              "max_row_length) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                              "$11, $12) RETURNING id",
                              12, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "a push of this content");
    int64_t id = s_int(r, 0, 0);
    PQclear(r);
    if (b->dataset) {
        char *ddl = NULL;
        if (asprintf(&ddl, "CREATE TABLE stage_u%" PRId64 " (row_no bigint NOT NULL%s)", id,
                     b->columns) < 0)
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        r = odp_db_exec(req->db, ddl, 0, NULL, NULL);
        free(ddl);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            return odp_req_db_fail(req, r, "the staging table");
        PQclear(r);
        char ids[24];
        snprintf(ids, sizeof ids, "%" PRId64, id);
        const char *uv[1] = {ids};
        if (odp_db_cmd(req->db,
                       "UPDATE uploads SET staging_table = current_schema() || '.stage_u' || id "
                       "WHERE id = $1",
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
    s_slots_tidy(req);
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
        rc = s_begin_existing(req, m, &b);
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
static int s_advance(odp_req_t *req, s_slot_t *slot, const char *data, size_t len)
{
    int64_t boundary = loader_boundary(slot->loader);
    int64_t end = slot->boundary + (int64_t)slot->npending + (int64_t)len;
    if (boundary < slot->boundary || boundary > end) {
        odp_error("event=push.bad_boundary upload=%" PRId64 " boundary=%" PRId64 " was=%" PRId64,
                  slot->upload, boundary, slot->boundary);
        s_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "the loader lost its place; it is logged");
    }
    size_t done = (size_t)(boundary - slot->boundary), old = slot->npending;
    if (done <= old) {
        if (done) {
            odp_sha256_update(&slot->hash, (const unsigned char *)slot->pending, done);
            memmove(slot->pending, slot->pending + done, old - done);
            slot->npending = old - done;
        }
    } else {
        odp_sha256_update(&slot->hash, (const unsigned char *)slot->pending, old);
        odp_sha256_update(&slot->hash, (const unsigned char *)data, done - old);
        slot->npending = 0;
        data += done - old;
        len -= done - old;
    }
    slot->boundary = boundary;
    if (s_pending_add(slot, data, len) < 0) {
        s_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    return 0;
}

static int s_chunk_dataset(odp_req_t *req, const s_upload_t *u, const odp_push_chunk_t *m)
{
    s_slot_t *slot = s_slot_find(u->id);
    int64_t expected = slot ? slot->boundary + (int64_t)slot->npending : u->committed;
    if (m->offset.i != expected)
        return s_bad_offset(req, m->offset.i, expected, slot ? slot->committed : u->committed);
    if (m->offset.i + (int64_t)m->data.len > u->size)
        return odp_req_fail(req, ODP_E_RULE_SIZE, "data",
                            "this chunk ends at byte %" PRId64 ", past the declared size %" PRId64,
                            m->offset.i + (int64_t)m->data.len, u->size);
    if (!slot && s_slot_open(req, u, &slot) < 0)
        return -1;
    slot->used_ms = zclock_mono();
    odp_error_t lerr = {0};
    slot->staged.len = slot->rejected.len = 0;
    /*  The slot's pending bytes are the partial row after the boundary: the loader refuses
        a row longer than max_row_length, so no input makes the registrar hold a file. */
    if (loader_feed(slot->loader, m->data.str, m->data.len, &slot->staged, &slot->rejected, &lerr) <
        0)
        return s_fail_loader(req, u, &lerr);
    if (s_advance(req, slot, m->data.str, m->data.len) < 0 || s_group_add(req, slot) < 0)
        return -1;
    if ((slot->boundary - slot->committed >= s_commit_bytes() ||
         slot->rejects.len >= S_REJECTS_MAX ||
         (slot->in_tx && slot->used_ms - slot->group_ms >= s_commit_ms())) &&
        s_group_commit(req, slot) < 0)
        return -1;
    /*  Handed over, not committed: offset is what arrived, committed what is durable. */
    return s_ack(req, u->id, m->offset.i + (int64_t)m->data.len, slot->committed,
                 loader_rows(slot->loader), loader_rejected(slot->loader));
}

/*  A file chunk: stored as it is, committed at once, hashed from the stored state. */
static int s_chunk_file(odp_req_t *req, const s_upload_t *u, const odp_push_chunk_t *m)
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
    if (s_hash_at(req, u, &hash) < 0)
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
    if (s_save_progress(req, u, u->committed, end, &hash) < 0)
        return -1;
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the chunk");
    return s_ack(req, u->id, end, end, 0, 0);
}

static int s_push_chunk(odp_req_t *req)
{
    s_slots_tidy(req);
    const odp_push_chunk_t *m = req->msg;
    s_upload_t u;
    s_slot_t *slot = s_slot_find(m->upload.i);
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
    } else if (s_upload_receiving(req, m->upload.i, &u) < 0) {
        return -1;
    }
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

/*  The rows of the staging table and the rejects must be exactly what the loader counted
    (principle 3: received = staged + rejected). In the open transaction. */
static int s_verify_counts(odp_req_t *req, const s_upload_t *u, const s_counts_t *c)
{
    char sql[160], id[24];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM stage_u%" PRId64 "), "
             "(SELECT count(*) FROM rejects WHERE upload = $1)",
             u->id);
    snprintf(id, sizeof id, "%" PRId64, u->id);
    const char *vals[1] = {id};
    PGresult *r = odp_db_exec(req->db, sql, 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the row counts");
    int64_t staged = s_int(r, 0, 0), rejected = s_int(r, 0, 1);
    PQclear(r);
    if (staged == c->rows - c->rejected && rejected == c->rejected)
        return 0;
    odp_error("event=push.counts_differ upload=%" PRId64 " rows=%" PRId64 " rejected=%" PRId64
              " in_stage=%" PRId64 " in_rejects=%" PRId64,
              u->id, c->rows, c->rejected, staged, rejected);
    return odp_req_fail(req, ODP_E_INTERNAL, NULL,
                        "the staged and rejected rows do not add up; it is logged");
}

/*  The dataset's last bytes: the final hash; when it matches, the loader's tail goes into
    the last group, which is committed on the upload's connection with committed = size.
    Then the transaction for the version is opened on the service's connection and the
    rows are counted in it. A failure after that commit leaves the upload receiving with
    every byte committed: push.finish again (or push.begin, which says offset = size)
    resumes a loader at the end, which adds nothing. */
static int s_finish_dataset(odp_req_t *req, const s_upload_t *u, s_slot_t *slot, char *hex,
                            s_counts_t *counts)
{
    crypto_hash_sha256_state hash = slot->hash;
    unsigned char digest[crypto_hash_sha256_BYTES];
    odp_sha256_update(&hash, (const unsigned char *)slot->pending, slot->npending);
    crypto_hash_sha256_final(&hash, digest);
    s_hex(digest, sizeof digest, hex);
    if (strcmp(hex, u->sha256) != 0)
        return 0; /* the caller compares and abandons */
    odp_error_t lerr = {0};
    slot->staged.len = slot->rejected.len = 0;
    if (loader_finish(slot->loader, &slot->staged, &slot->rejected, &lerr) < 0)
        return s_fail_loader(req, u, &lerr);
    counts->rows = loader_rows(slot->loader);
    counts->rejected = loader_rejected(slot->loader);
    if (s_advance(req, slot, NULL, 0) < 0 || s_group_add(req, slot) < 0 ||
        s_group_commit(req, slot) < 0)
        return -1;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the version");
    return s_verify_counts(req, u, counts);
}

/*  A file's final hash; when it matches, the transaction for the version is opened. */
static int s_finish_file(odp_req_t *req, const s_upload_t *u, char *hex)
{
    crypto_hash_sha256_state hash;
    unsigned char digest[crypto_hash_sha256_BYTES];
    if (s_hash_at(req, u, &hash) < 0)
        return -1;
    crypto_hash_sha256_final(&hash, digest);
    s_hex(digest, sizeof digest, hex);
    if (strcmp(hex, u->sha256) == 0 && odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the version");
    return 0;
}

/*  In the open transaction: the next version of (resource, table), the row, the event. */
static int s_record_version(odp_req_t *req, const s_upload_t *u, const s_counts_t *c,
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
    *version = s_int(r, 0, 0);
    s_copy_str(staging, staging_size, r, 0, 1);
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

static int s_summary(odp_req_t *req, const s_upload_t *u, const s_counts_t *c, int64_t version,
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
    s_slots_tidy(req);
    const odp_push_finish_t *m = req->msg;
    s_upload_t u;
    if (s_upload_receiving(req, m->upload.i, &u) < 0)
        return -1;
    s_slot_t *slot = u.dataset ? s_slot_find(u.id) : NULL;
    int64_t received = slot ? slot->boundary + (int64_t)slot->npending : u.committed;
    if (received != u.size)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "upload",
                            "%" PRId64 " of %" PRId64 " bytes received; resume from byte %" PRId64,
                            received, u.size, u.committed);
    if (u.dataset && !slot && s_slot_open(req, &u, &slot) < 0)
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
        return s_fail_upload(req, &u, ODP_E_HASH_MISMATCH, "sha256", reason);
    }
    int64_t version = 0;
    char staging[128] = "";
    if (rc == 0)
        rc = s_record_version(req, &u, &counts, &version, staging, sizeof staging);
    if (rc == 0 && odp_db_commit(req->db) < 0)
        rc = odp_req_db_fail(req, NULL, "the version");
    /*  Finished or not, the loader has read its last byte: a retry starts from the
        database. */
    s_slot_drop(u.id);
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
    s_slots_tidy(req);
    const odp_push_abort_t *m = req->msg;
    s_upload_t u;
    if (s_upload_receiving(req, m->upload.i, &u) < 0)
        return -1;
    char reason[1001];
    if (m->reason.present)
        odp_v_cstr(&m->reason, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "aborted by %s", req->actor_str);
    s_slot_drop(u.id);
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abort");
    if (s_abandon_tx(req, &u, "ABORTED", reason) < 0)
        return -1;
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the abort");
    odp_info("event=push.aborted upload=%" PRId64, u.id);
    return odp_req_ok_empty(req);
}

static int s_push_status(odp_req_t *req)
{
    s_slots_tidy(req);
    const odp_push_status_t *m = req->msg;
    s_upload_t u;
    if (s_upload_load(req, m->upload.i, &u) < 0)
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
        s_copy_str(dept, size, r, 0, 0);
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no catalogue entry has this code");
    return 0;
}

#define VERSION_COLS                                                                               \
    "version, table_name, kind, sha256, size, rows_received, rows_staged, "                        \
    "rows_rejected, " ROWS_TS("finished_at")

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
}

static int s_version_list(odp_req_t *req)
{
    const odp_version_list_t *m = req->msg;
    char dept[10];
    if (s_resource_department(req, &m->resource, dept, sizeof dept) < 0)
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
        s_copy_str(id, sizeof id, r, 0, 0);
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
}
