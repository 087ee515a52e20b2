/*  The open group of a dataset upload: a transaction on the slot's own connection with
    `COPY stage_u<upload> FROM STDIN` open across chunks, so that PostgreSQL copies one
    chunk's rows while the registrar parses the next. It is committed when it holds
    ODP_REGISTRAR_COMMIT_BYTES of the stream, PUSH_REJECTS_MAX of rejected rows, has been
    open ODP_REGISTRAR_COMMIT_SECONDS, and at push.finish; uploads.committed moves with
    it, in the same transaction. */
#include "push.h"

#include "copybin.h"

#include "common/config.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_COMMIT_BYTES   (16 * 1024 * 1024) /* default ODP_REGISTRAR_COMMIT_BYTES */
#define S_COMMIT_SECONDS 30                 /* default ODP_REGISTRAR_COMMIT_SECONDS */
#define S_KEYS_PAGE      8192               /* hashes a row of stage_keys holds at most */

int64_t push_commit_bytes(void)
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
int64_t push_commit_ms(void)
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
static int s_group_fail(odp_req_t *req, push_slot_t *slot, const char *step, PGresult *r)
{
    bool down = PQstatus(slot->conn) != CONNECTION_OK;
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(slot->conn);
    char q[340];
    odp_error("event=push.group_failed upload=%" PRId64 " step=%s error=%s", slot->upload, step,
              odp_log_quote(m, strlen(m), q, sizeof q));
    PQclear(r);
    push_slot_free(slot);
    if (down)
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                            "the database went away; resume with push.begin");
    return odp_req_fail(req, ODP_E_INTERNAL, NULL,
                        "storing the rows failed; it is logged; resume with push.begin");
}

static int s_copy_end(odp_req_t *req, push_slot_t *slot, const char *step, int64_t *rows);

/*  The group's transaction, and with copy its COPY into the staging table in the format
    binary asks for, opened when first needed (a COPY in the other format is ended). */
static int s_group_open(odp_req_t *req, push_slot_t *slot, bool copy, bool binary)
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
        s_copy_end(req, slot, "copy_switch", &slot->copied) < 0)
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
        if (binary && PQputCopyData(slot->conn, COPYBIN_HEADER, COPYBIN_HEADER_LEN) != 1)
            return s_group_fail(req, slot, "copy_header", NULL);
    }
    return 0;
}

/*  End the COPY in progress: every result must be COMMAND_OK. The rows it took (its
    command tag, "COPY n") are added to *rows. */
static int s_copy_end(odp_req_t *req, push_slot_t *slot, const char *step, int64_t *rows)
{
    slot->in_copy = false;
    if (slot->copy_binary && PQputCopyData(slot->conn, COPYBIN_TRAILER, 2) != 1)
        return s_group_fail(req, slot, step, NULL);
    slot->copy_binary = false;
    if (PQputCopyEnd(slot->conn, NULL) != 1)
        return s_group_fail(req, slot, step, NULL);
    PGresult *r, *bad = NULL;
    while ((r = PQgetResult(slot->conn))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || bad) {
            if (st == PGRES_COMMAND_OK)
                *rows += strtoll(PQcmdTuples(r), NULL, 10);
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
int push_group_add(odp_req_t *req, push_slot_t *slot)
{
    if (odp_buf_size(slot->staged)) {
        odp_buf_t *rows = slot->staged;
        bool binary = false;
        if (slot->binary) {
            /*  The conversion counts the values and evaluates the checks as it goes
                (push_counts.c, push_checks.c). */
            const copybin_tap_t *tap = slot->counts ? push_counts_tap(slot->counts) : NULL;
            if (slot->checks)
                tap = push_checks_tap(slot->checks, tap);
            if (slot->keys)
                tap = push_keys_tap(slot->keys, tap);
            odp_buf_reset(slot->bin);
            binary = copybin_rows(slot->bin, odp_buf_data(slot->staged), odp_buf_size(slot->staged),
                                  slot->types, slot->ntypes, tap) == 0;
            if (!binary && slot->counts)
                push_counts_give_up(slot->counts); /* it may have counted some rows */
            if (!binary && slot->checks)
                push_checks_give_up(slot->checks);
            if (!binary && slot->keys)
                push_keys_give_up(slot->keys);
            if (binary)
                rows = slot->bin;
            else if (!slot->text_rows) {
                slot->text_rows = true;
                odp_warn("event=push.text_rows upload=%" PRId64
                         " msg=\"rows not as expected for the binary format: sent as text\"",
                         slot->upload);
            }
        }
        if (!slot->binary && slot->counts)
            push_counts_add(slot->counts, odp_buf_data(slot->staged), odp_buf_size(slot->staged));
        if (!slot->binary && slot->checks)
            push_checks_add(slot->checks, odp_buf_data(slot->staged), odp_buf_size(slot->staged));
        /*  Rows sent as text are not hashed: the reviewer counts repeats by a scan. */
        if (!slot->binary && slot->keys)
            push_keys_give_up(slot->keys);
        if (s_group_open(req, slot, true, binary) < 0)
            return -1;
        if (PQputCopyData(slot->conn, odp_buf_data(rows), (int)odp_buf_size(rows)) != 1)
            return s_group_fail(req, slot, "copy_data", NULL);
        odp_buf_reset(slot->staged);
    }
    char prefix[24];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "%" PRId64 "\t", slot->upload);
    const char *rej = odp_buf_data(slot->rejected);
    size_t nrej = odp_buf_size(slot->rejected);
    for (size_t o = 0; o < nrej;) {
        /*  Loader lines never hold a raw newline inside a value (COPY text format escapes
            it), so '\n' ends a row. */
        const char *nl = memchr(rej + o, '\n', nrej - o);
        size_t len = nl ? (size_t)(nl - (rej + o)) + 1 : nrej - o;
        if (odp_buf_append(slot->rejects, prefix, plen) < 0 ||
            odp_buf_append(slot->rejects, rej + o, len) < 0) {
            push_slot_free(slot);
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        }
        o += len;
    }
    odp_buf_reset(slot->rejected);
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

/*  One kind of the upload's evidence given up, in the group's transaction: sql (parameter
    $1 the upload) removes its rows and sets NULL the uploads column that says the push
    makes it, so that its reader works without. what names the kind in the log. 0, or -1
    with the slot given up. */
static int s_give_up(odp_req_t *req, push_slot_t *slot, const char *sql, const char *what)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, slot->upload);
    const char *vals[1] = {id};
    PGresult *r = PQexecParams(slot->conn, sql, 1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char step[40];
        snprintf(step, sizeof step, "%s_given_up", what);
        return s_group_fail(req, slot, step, r);
    }
    PQclear(r);
    odp_warn("event=push.%s_given_up upload=%" PRId64, what, slot->upload);
    return 0;
}

/*  The group's counts into stage_counts, in its transaction; or, when this slot could not
    count them all (too many distinct values, out of memory), the upload's counts given up
    (uploads.counted_fields NULL: the publisher counts by a scan). */
static int s_counts_commit(odp_req_t *req, push_slot_t *slot)
{
    if (slot->counts_lost || (slot->counts && push_counts_overflow(slot->counts))) {
        if (s_give_up(req, slot,
                      "WITH d AS (DELETE FROM stage_counts WHERE upload = $1) UPDATE uploads "
                      "SET counted_fields = NULL WHERE id = $1",
                      "counts") < 0)
            return -1;
        push_counts_destroy(&slot->counts);
        slot->counts_lost = false;
        return 0;
    }
    if (!slot->counts)
        return 0;
    odp_buf_reset(slot->bin);
    if (push_counts_take(slot->counts, slot->upload, slot->copied, slot->bin) < 0) {
        push_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    if (odp_buf_size(slot->bin) == 0)
        return 0;
    PGresult *r = PQexec(slot->conn, "COPY stage_counts (upload, field, value, count) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return s_group_fail(req, slot, "counts", r);
    PQclear(r);
    slot->in_copy = true;
    if (PQputCopyData(slot->conn, odp_buf_data(slot->bin), (int)odp_buf_size(slot->bin)) != 1)
        return s_group_fail(req, slot, "counts_data", NULL);
    int64_t n = 0;
    return s_copy_end(req, slot, "counts_end", &n);
}

/*  The group's check evidence into stage_checks, in its transaction; or, when this slot
    could not evaluate every row, the upload's evidence given up (uploads.checked_revision
    NULL: the reviewer runs every check in SQL). */
static int s_checks_commit(odp_req_t *req, push_slot_t *slot)
{
    if (slot->checks_lost || (slot->checks && push_checks_lost(slot->checks))) {
        if (s_give_up(req, slot,
                      "WITH d AS (DELETE FROM stage_checks WHERE upload = $1) UPDATE uploads "
                      "SET checked_revision = NULL WHERE id = $1",
                      "checks") < 0)
            return -1;
        push_checks_destroy(&slot->checks);
        slot->checks_lost = false;
        return 0;
    }
    if (!slot->checks)
        return 0;
    odp_buf_reset(slot->bin);
    if (push_checks_take(slot->checks, slot->upload, slot->bin) < 0) {
        push_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    if (odp_buf_size(slot->bin) == 0)
        return 0;
    PGresult *r =
        PQexec(slot->conn, "COPY stage_checks (upload, field, check_name, unproven) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return s_group_fail(req, slot, "checks", r);
    PQclear(r);
    slot->in_copy = true;
    if (PQputCopyData(slot->conn, odp_buf_data(slot->bin), (int)odp_buf_size(slot->bin)) != 1)
        return s_group_fail(req, slot, "checks_data", NULL);
    int64_t n = 0;
    return s_copy_end(req, slot, "checks_end", &n);
}

/*  The group's hashes of unique values into stage_keys, in its transaction, a row per keyed
    field; or, when this slot could not hash every value, the upload's evidence given up
    (uploads.keyed_fields NULL: the reviewer counts repeats by a scan). */
static int s_keys_commit(odp_req_t *req, push_slot_t *slot)
{
    if (slot->keys_lost || (slot->keys && push_keys_lost(slot->keys))) {
        if (s_give_up(req, slot,
                      "WITH d AS (DELETE FROM stage_keys WHERE upload = $1) UPDATE uploads SET "
                      "keyed_fields = NULL WHERE id = $1",
                      "keys") < 0)
            return -1;
        push_keys_destroy(&slot->keys);
        slot->keys_lost = false;
        return 0;
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, slot->upload);
    for (size_t i = 0; slot->keys && i < push_keys_count(slot->keys); i++) {
        const char *name = NULL;
        int64_t nulls = 0;
        odp_buf_reset(slot->bin);
        if (push_keys_take(slot->keys, i, &name, &nulls, slot->bin) < 0) {
            push_slot_free(slot);
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        }
        /*  Pages of S_KEYS_PAGE hashes, page 0 with the NULLs (written even when empty of
            hashes, so that every staged row is accounted for). */
        size_t bytes = odp_buf_size(slot->bin);
        if (bytes == 0 && nulls == 0)
            continue;
        char run[24], n[24];
        snprintf(run, sizeof run, "%" PRId64, slot->committed);
        const size_t full = 8 * S_KEYS_PAGE;
        size_t pages = bytes ? (bytes + full - 1) / full : 1;
        for (size_t page = 0; page < pages; page++) {
            size_t at = page * full, len = bytes - at < full ? bytes - at : full;
            char pg[24];
            snprintf(pg, sizeof pg, "%zu", page);
            snprintf(n, sizeof n, "%" PRId64, page ? 0 : nulls);
            const char *vals[6] = {id, name, run, pg, n, bytes ? odp_buf_data(slot->bin) + at : ""};
            int lens[6] = {0, 0, 0, 0, 0, (int)len};
            int formats[6] = {0, 0, 0, 0, 0, 1};
            PGresult *r = PQexecParams(slot->conn,
                                       "INSERT INTO stage_keys (upload, field, run, page, nulls, "
                                       "hashes) VALUES ($1, $2, $3, $4, $5, $6)",
                                       6, NULL, vals, lens, formats, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                return s_group_fail(req, slot, "keys", r);
            PQclear(r);
        }
    }
    return 0;
}

/*  Commit the open group: end its COPY, copy its rejected rows, move uploads.committed to
    the loader's boundary with the hash state and counts there, COMMIT. On any failure the
    slot is given up (the group is rolled back). */
int push_group_commit(odp_req_t *req, push_slot_t *slot)
{
    if (!slot->in_tx && slot->boundary == slot->committed && odp_buf_size(slot->rejects) == 0)
        return 0;
    if (s_group_open(req, slot, false, false) < 0)
        return -1;
    if (slot->in_copy && s_copy_end(req, slot, "copy_end", &slot->copied) < 0)
        return -1;
    int64_t rejects = 0;
    if (odp_buf_size(slot->rejects)) {
        PGresult *r =
            PQexec(slot->conn, "COPY rejects (upload, row_no, reason, detail, raw) FROM STDIN");
        if (PQresultStatus(r) != PGRES_COPY_IN)
            return s_group_fail(req, slot, "rejects", r);
        PQclear(r);
        slot->in_copy = true;
        if (PQputCopyData(slot->conn, odp_buf_data(slot->rejects),
                          (int)odp_buf_size(slot->rejects)) != 1)
            return s_group_fail(req, slot, "rejects_data", NULL);
        if (s_copy_end(req, slot, "rejects_end", &rejects) < 0)
            return -1;
        odp_buf_reset(slot->rejects);
    }
    /*  What PostgreSQL took must be what the loader made of the group's bytes; as every
        group is checked before it commits, the staging table and the rejects hold exactly
        the rows uploads counts, without counting them again at the end. */
    int64_t rows = loader_rows(slot->loader), rejected = loader_rejected(slot->loader);
    int64_t want_rejects = rejected - slot->rejected_committed;
    int64_t want_staged = rows - rejected - (slot->rows_committed - slot->rejected_committed);
    if (slot->copied != want_staged || rejects != want_rejects) {
        odp_error("event=push.counts_differ upload=%" PRId64 " staged=%" PRId64 " copied=%" PRId64
                  " rejected=%" PRId64 " copied_rejects=%" PRId64,
                  slot->upload, want_staged, slot->copied, want_rejects, rejects);
        push_slot_free(slot);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL,
                            "the staged and rejected rows do not add up; it is logged; resume "
                            "with push.begin");
    }
    if (s_counts_commit(req, slot) < 0 || s_checks_commit(req, slot) < 0 ||
        s_keys_commit(req, slot) < 0)
        return -1;
    char *colmap = s_colmap_text(slot->loader);
    push_progress_t p;
    push_progress(&p, slot->upload, slot->committed, slot->boundary, &slot->hash, rows, rejected,
                  colmap);
    PGresult *r =
        PQexecParams(slot->conn, PUSH_PROGRESS_SQL, 7, NULL, p.vals, p.lens, p.formats, 0);
    free(colmap);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_group_fail(req, slot, "progress", r);
    bool hit = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!hit) {
        int64_t upload = slot->upload;
        push_slot_free(slot);
        return push_moved_on(req, upload);
    }
    r = PQexec(slot->conn, "COMMIT");
    /*  A transaction that had failed answers COMMIT with ROLLBACK. */
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0)
        return s_group_fail(req, slot, "commit", r);
    PQclear(r);
    slot->in_tx = false;
    slot->committed = slot->boundary;
    slot->rows_committed = rows;
    slot->rejected_committed = rejected;
    slot->copied = 0;
    return 0;
}
