/*  The slots: one per dataset upload being pushed, each with its own PostgreSQL
    connection (which holds the upload's open group), its loader, the SHA-256 state at the
    loader's boundary and the bytes after it. Everything in a slot can be rebuilt from the
    uploads row, so a slot may be given up at any time: its group is rolled back and its
    client resumes with push.begin from the committed offset. */
#include "push.h"

#include "common/config.h"
#include "common/log.h"
#include "common/parse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  16 parallel pushes is more than the departments of one province do at once; the limit
    bounds the PostgreSQL connections (one per slot) and memory (each slot holds at most
    max_row_length + chunk_size bytes of stream, a chunk's typed rows and PUSH_REJECTS_MAX
    of rejected rows).

    The pool is shared fairly: one department holds at most ODP_REGISTRAR_UPLOADS_PER_DEPT
    slots (default a quarter of them), so that a department that begins many pushes and
    leaves them - by mistake or on purpose - cannot lock the others out. A slot left idle
    for ODP_REGISTRAR_IDLE_SECONDS is reclaimed (its group committed first): its client
    then gets BAD_OFFSET and resumes with push.begin from the committed offset. */
#define S_SLOTS        16
#define S_IDLE_SECONDS 120 /* default ODP_REGISTRAR_IDLE_SECONDS */

/*  A service is one thread handling one request at a time: a file-scope table is safe. */
static push_slot_t s_slots[S_SLOTS];

/*  The connection of a slot that ended with no transaction open, kept for the next slot:
    opening one (a backend started, SCRAM) cost every push some 50 ms before its first
    rows reached PostgreSQL. One is kept; it holds no transaction and no lock. */
static odp_db_t *s_spare;

push_slot_t *push_slot_find(int64_t upload)
{
    for (size_t i = 0; i < S_SLOTS; i++)
        if (s_slots[i].upload == upload)
            return &s_slots[i];
    return NULL;
}

/*  Roll the open group back, then close the upload's connection. The rollback is done
    here, not left to the server noticing the closed socket, so that its locks are gone
    before the caller goes on (push.abort drops the staging table next). */
static void s_slot_close(push_slot_t *slot)
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
    } else if (c && !s_spare && PQstatus(c) == CONNECTION_OK &&
               PQtransactionStatus(c) == PQTRANS_IDLE) {
        s_spare = slot->db;
        slot->db = NULL;
    }
    slot->conn = NULL;
    slot->in_tx = slot->in_copy = false;
    odp_db_destroy(&slot->db);
}

void push_slot_free(push_slot_t *slot)
{
    if (!slot)
        return;
    s_slot_close(slot);
    loader_destroy(&slot->loader);
    odp_buf_destroy(&slot->pending);
    odp_buf_destroy(&slot->staged);
    odp_buf_destroy(&slot->rejected);
    odp_buf_destroy(&slot->rejects);
    odp_buf_destroy(&slot->bin);
    free(slot->types);
    push_counts_destroy(&slot->counts);
    push_checks_destroy(&slot->checks);
    push_keys_destroy(&slot->keys);
    sodium_memzero(slot, sizeof *slot);
}

void push_slot_drop(int64_t upload)
{
    push_slot_free(push_slot_find(upload));
}

int64_t push_slot_received(const push_slot_t *slot)
{
    return slot->boundary + (int64_t)odp_buf_size(slot->pending);
}

static int64_t s_idle_ms(void)
{
    static int64_t ms;
    if (ms == 0) {
        int64_t sec = odp_config_int("registrar", "IDLE_SECONDS", S_IDLE_SECONDS);
        ms = 1000 * (sec < 1 ? S_IDLE_SECONDS : sec);
    }
    return ms;
}

static int64_t s_per_dept(void)
{
    static int64_t n;
    if (n == 0) {
        n = odp_config_int("registrar", "UPLOADS_PER_DEPT", S_SLOTS / 4);
        if (n < 1 || n > S_SLOTS)
            n = S_SLOTS / 4;
    }
    return n;
}

/*  A free slot for an upload of department, or NULL after a 429 that says whose limit
    it is - the department's share or the whole pool - and, in retry_after_ms, when the
    first slot that counts against it would be reclaimed if it stays idle. */
static push_slot_t *s_slot_take(odp_req_t *req, const char *department)
{
    int64_t now = zclock_mono(), mine = 0, used = 0;
    int64_t mine_after = INT64_MAX, any_after = INT64_MAX;
    push_slot_t *free_slot = NULL;
    for (size_t i = 0; i < S_SLOTS; i++) {
        push_slot_t *slot = &s_slots[i];
        if (slot->upload == 0) {
            free_slot = free_slot ? free_slot : slot;
            continue;
        }
        int64_t after = slot->used_ms + s_idle_ms() - now;
        after = after < 1 ? 1 : after;
        used++;
        any_after = after < any_after ? after : any_after;
        if (strcmp(slot->u.department, department) == 0) {
            mine++;
            mine_after = after < mine_after ? after : mine_after;
        }
    }
    if (mine >= s_per_dept()) {
        odp_req_fail(req, ODP_E_RATE_LIMITED, "upload",
                     "department %s is pushing %" PRId64 " datasets at once, its share of the "
                     "registrar's %d upload slots (ODP_REGISTRAR_UPLOADS_PER_DEPT): finish or "
                     "abort one of them; retry_after_ms=%" PRId64,
                     department, mine, S_SLOTS, mine_after);
        return NULL;
    }
    if (!free_slot)
        odp_req_fail(req, ODP_E_RATE_LIMITED, "upload",
                     "all %" PRId64 " upload slots of the registrar are in use by other "
                     "departments' pushes; retry_after_ms=%" PRId64,
                     used, any_after);
    return free_slot;
}

/*  "{1,0,2}" (uploads.colmap as text) as ints; NULL with n = 0 when it is NULL, empty or
    not such a list. */
static int *s_parse_colmap(const char *text, size_t *n)
{
    *n = 0;
    size_t len = text ? strlen(text) : 0;
    if (len < 3 || text[0] != '{' || text[len - 1] != '}')
        return NULL;
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    int *map = calloc(count, sizeof *map);
    if (!map)
        return NULL;
    const char *p = text + 1, *end = text + len - 1;
    for (size_t i = 0; i < count; i++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        int64_t v;
        if (!odp_parse_int(p, (size_t)(e - p), 0, INT32_MAX, &v)) {
            free(map);
            return NULL;
        }
        map[i] = (int)v;
        p = e + 1;
    }
    *n = count;
    return map;
}

/*  A loader for the upload, resumed at its committed boundary. Its columns are the
    staging table's, not the dictionary's: the table is what the rows must fit, even if the
    dictionary was edited since push.begin. *counts: for the columns the push counts
    (uploads.counted_fields), NULL when it counts none or out of memory (*counting says
    which). */
static loader_t *s_loader(odp_req_t *req, const push_upload_t *u, const int *map, size_t nmap,
                          loader_type_t **types, size_t *ntypes, push_counts_t **counts,
                          bool *counting)
{
    char stage[40], id[24];
    push_stage_name(u->id, stage, sizeof stage);
    snprintf(id, sizeof id, "%" PRId64, u->id);
    const char *vals[2] = {stage, id};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT a.attname, a.atttypid::regtype::text, coalesce(a.attname = "
                              "ANY (u.counted_fields), false), u.counted_fields IS NOT NULL FROM "
                              "pg_attribute a, uploads u WHERE a.attrelid = $1::regclass AND "
                              "a.attnum > 1 AND NOT a.attisdropped AND u.id = $2 ORDER BY a.attnum",
                              2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        odp_req_db_fail(req, r, "the staging table");
        return NULL;
    }
    size_t n = (size_t)PQntuples(r), i = 0;
    loader_col_t *cols = calloc(n ? n : 1, sizeof *cols);
    for (; cols && i < n; i++) {
        cols[i].name = PQgetvalue(r, (int)i, 0);
        if (push_type_loader(PQgetvalue(r, (int)i, 1), &cols[i].type) < 0)
            break;
    }
    loader_t *loader = NULL;
    *types = cols && i == n ? calloc(n + 1, sizeof **types) : NULL;
    bool *counted = calloc(n + 1, sizeof *counted);
    const char **names = calloc(n + 1, sizeof *names);
    *counts = NULL;
    *counting = n > 0 && PQgetvalue(r, 0, 3)[0] == 't';
    if (*types && counted && names && *counting) {
        for (size_t c = 0; c < n; c++) {
            counted[c + 1] = PQgetvalue(r, (int)c, 2)[0] == 't';
            names[c + 1] = cols[c].name;
        }
        *counts = push_counts_new(counted, names, n + 1);
    }
    free(counted);
    free(names);
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
        push_counts_destroy(counts);
        odp_error("event=push.no_loader upload=%" PRId64 " committed=%" PRId64, u->id,
                  u->committed);
        odp_req_fail(req, ODP_E_INTERNAL, NULL, "the upload cannot be resumed; it is logged");
    }
    return loader;
}

/*  The row-level checks of uploads.checked_revision for the staging table's columns, for
    push_checks.c; NULL when the push evaluates none (*checking false) or out of memory. */
static push_checks_t *s_checks(odp_req_t *req, int64_t upload, bool *checking)
{
    char stage[40], id[24];
    push_stage_name(upload, stage, sizeof stage);
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[2] = {stage, id};
    *checking = false;
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT a.attname, coalesce(f.type, ''), coalesce(f.required, false), f.allowed IS NOT "
        "NULL, CASE WHEN f.type = 'integer' THEN ceil(f.min_value)::text ELSE "
        "f.min_value::text END, CASE WHEN f.type = 'integer' THEN floor(f.max_value)::text "
        "ELSE f.max_value::text END, coalesce(f.length, 0), coalesce(f.min_length, 0), "
        "f.pattern, f.check_name, u.checked_revision IS NOT NULL FROM uploads u CROSS JOIN "
        "pg_attribute a LEFT JOIN dictionary_revision_fields f ON f.resource = u.resource AND "
        "f.table_name = u.table_name AND f.revision = u.checked_revision AND f.name = a.attname "
        "WHERE a.attrelid = $1::regclass AND a.attnum > 1 AND NOT a.attisdropped AND u.id = $2 "
        "ORDER BY a.attnum",
        2, vals, NULL);
    PGresult *e = r && PQresultStatus(r) == PGRES_TUPLES_OK
                      ? odp_db_exec(req->db,
                                    "SELECT f.name, e.v FROM uploads u JOIN "
                                    "dictionary_revision_fields f ON f.resource = u.resource AND "
                                    "f.table_name = u.table_name AND f.revision = "
                                    "u.checked_revision CROSS JOIN unnest(f.allowed) e(v) WHERE "
                                    "u.id = $1 AND e.v IS NOT NULL",
                                    1, vals + 1, NULL)
                      : NULL;
    if (!e || PQresultStatus(e) != PGRES_TUPLES_OK) {
        PQclear(r);
        PQclear(e);
        odp_warn("event=push.no_checks upload=%" PRId64, upload);
        *checking = true; /* whatever the upload evaluated is given up at the next commit */
        return NULL;
    }
    size_t n = (size_t)PQntuples(r), ne = (size_t)PQntuples(e);
    *checking = n > 0 && PQgetvalue(r, 0, 10)[0] == 't';
    push_check_spec_t *specs = calloc(n + 1, sizeof *specs);
    const char **allowed = calloc(ne ? ne : 1, sizeof *allowed);
    push_checks_t *checks = NULL;
    if (*checking && specs && allowed) {
        size_t used = 0;
        for (size_t c = 0; c < n; c++) {
            int i = (int)c;
            push_check_spec_t *sp = &specs[c + 1];
            sp->name = PQgetvalue(r, i, 0);
            sp->type = PQgetvalue(r, i, 1);
            sp->required = PQgetvalue(r, i, 2)[0] == 't';
            if (PQgetvalue(r, i, 3)[0] == 't') {
                sp->allowed = allowed + used;
                for (size_t k = 0; k < ne; k++)
                    if (strcmp(PQgetvalue(e, (int)k, 0), sp->name) == 0)
                        allowed[used + sp->nallowed++] = PQgetvalue(e, (int)k, 1);
                used += sp->nallowed;
            }
            sp->min = PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4);
            sp->max = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5);
            sp->length = strtoll(PQgetvalue(r, i, 6), NULL, 10);
            sp->min_length = strtoll(PQgetvalue(r, i, 7), NULL, 10);
            sp->pattern = PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8);
            sp->check_name = PQgetisnull(r, i, 9) ? NULL : PQgetvalue(r, i, 9);
        }
        checks = push_checks_new(specs, n + 1);
    }
    free(specs);
    free(allowed);
    PQclear(r);
    PQclear(e);
    return checks;
}

/*  Most hashes a slot holds for one group (8 bytes each; a 16 MB group of the bench's rows
    holds about 150,000). */
#define S_KEYS_MAX (1024 * 1024)

/*  The hashes of the unique text fields the push keys (uploads.keyed_fields), for
    push_keys.c; NULL when it keys none (*keying false) or out of memory. */
static push_keys_t *s_keys(odp_req_t *req, int64_t upload, bool *keying)
{
    char stage[40], id[24];
    push_stage_name(upload, stage, sizeof stage);
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[2] = {stage, id};
    *keying = false;
    PGresult *r = odp_db_exec(req->db,
                              "SELECT a.attname, coalesce(a.attname = ANY (u.keyed_fields), "
                              "false), u.keyed_fields IS NOT NULL FROM pg_attribute a, uploads "
                              "u WHERE a.attrelid = $1::regclass AND a.attnum > 1 AND NOT "
                              "a.attisdropped AND u.id = $2 ORDER BY a.attnum",
                              2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        odp_warn("event=push.no_keys upload=%" PRId64, upload);
        *keying = true; /* whatever the upload hashed is given up at the next commit */
        return NULL;
    }
    size_t n = (size_t)PQntuples(r);
    bool *keyed = calloc(n + 1, sizeof *keyed), any = false;
    const char **names = calloc(n + 1, sizeof *names);
    *keying = n > 0 && PQgetvalue(r, 0, 2)[0] == 't';
    for (size_t c = 0; keyed && names && c < n; c++) {
        keyed[c + 1] = PQgetvalue(r, (int)c, 1)[0] == 't';
        names[c + 1] = PQgetvalue(r, (int)c, 0);
        any = any || keyed[c + 1];
    }
    push_keys_t *keys =
        *keying && any && keyed && names ? push_keys_new(keyed, names, n + 1, S_KEYS_MAX) : NULL;
    /*  Keying nothing is not losing anything: the reviewer sees no field keyed. */
    *keying = *keying && any;
    free(keyed);
    free(names);
    PQclear(r);
    return keys;
}

/*  Rebuild an upload's slot from its row, at its committed boundary. */
int push_slot_open(odp_req_t *req, const push_upload_t *u, push_slot_t **out)
{
    /*  The slot first: a refusal costs nothing, and it stays free until filled below. */
    push_slot_t *slot = s_slot_take(req, u->department);
    if (!slot)
        return -1;
    crypto_hash_sha256_state hash;
    if (push_hash_at(req, u, &hash) < 0)
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
    push_counts_t *counts = NULL;
    bool counting = false;
    loader_t *loader = s_loader(req, u, map, nmap, &types, &ntypes, &counts, &counting);
    free(map);
    if (!loader)
        return -1;
    bool checking = false;
    push_checks_t *checks = s_checks(req, u->id, &checking);
    bool keying = false;
    push_keys_t *keys = s_keys(req, u->id, &keying);
    /*  The upload's own connection: same role and search_path as the service's. A spare
        is used when it still answers (the server may have gone away since). */
    odp_db_t *db = s_spare;
    s_spare = NULL;
    if (db) {
        PGresult *alive = PQexec(odp_db_conn(db), "SELECT 1");
        if (PQresultStatus(alive) != PGRES_TUPLES_OK)
            odp_db_destroy(&db);
        PQclear(alive);
    }
    if (!db)
        db = odp_db_new("registrar");
    PGconn *conn = db ? odp_db_conn(db) : NULL;
    if (!conn) {
        odp_db_destroy(&db);
        free(types);
        push_counts_destroy(&counts);
        push_checks_destroy(&checks);
        push_keys_destroy(&keys);
        loader_destroy(&loader);
        return odp_req_db_fail(req, NULL, "the rows");
    }
    slot->pending = odp_buf_new();
    slot->staged = odp_buf_new();
    slot->rejected = odp_buf_new();
    slot->rejects = odp_buf_new();
    slot->bin = odp_buf_new();
    slot->upload = u->id;
    slot->u = *u;
    slot->committed = slot->boundary = u->committed;
    slot->rows_committed = u->rows;
    slot->rejected_committed = u->rejected;
    slot->loader = loader;
    slot->hash = hash;
    slot->db = db;
    slot->conn = conn;
    slot->types = types;
    slot->ntypes = ntypes;
    slot->counts = counts;
    slot->counts_lost = counting && !counts;
    slot->checks = checks;
    slot->checks_lost = checking && !checks;
    slot->keys = keys;
    slot->keys_lost = keying && !keys;
    slot->binary = true;
    for (size_t i = 0; i < ntypes; i++)
        slot->binary = slot->binary && types[i] != LOADER_TIMESTAMP;
    slot->used_ms = zclock_mono();
    if (!slot->pending || !slot->staged || !slot->rejected || !slot->rejects || !slot->bin) {
        push_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    *out = slot;
    return 0;
}

void push_tick(void)
{
    /*  Group commits have no request to answer: their failures are logged only. */
    odp_error_t err = {0};
    odp_req_t quiet = {.err = &err};
    int64_t now = zclock_mono();
    for (size_t i = 0; i < S_SLOTS; i++) {
        push_slot_t *slot = &s_slots[i];
        int64_t idle = now - slot->used_ms;
        if (slot->upload == 0)
            continue;
        bool reclaim = idle >= s_idle_ms();
        /*  An open transaction holds back VACUUM: the client that left it may not come
            back. A failed commit gives the slot up. */
        if (slot->in_tx && (reclaim || idle >= push_commit_ms())) {
            odp_info("event=push.idle_commit upload=%" PRId64 " idle_ms=%" PRId64, slot->upload,
                     idle);
            if (push_group_commit(&quiet, slot) < 0)
                continue;
        }
        if (reclaim) {
            odp_info("event=push.slot_reclaimed upload=%" PRId64 " department=%s idle_ms=%" PRId64,
                     slot->upload, slot->u.department, idle);
            push_slot_free(slot);
        }
    }
}
