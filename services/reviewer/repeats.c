/*  The repeat counts of a version from the push's evidence (migrations/007_push_repeats.sql):
    a k-way merge of the groups' sorted runs of hashes (registrar.stage_keys), read in
    slices so that the memory stays bounded whatever the row count (S_WINDOW hashes over
    all the runs being merged, at least S_MIN_SLICE a run). A hash equal to the one before
    it in the merged order is a repeat. */
#include "reviewer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WINDOW    (256 * 1024) /* hashes held over all runs: 2 MB */
#define S_MIN_SLICE 1024

typedef struct {
    const char *id;   /* stage_keys.id */
    int64_t len, pos; /* hashes in the run; the next one to read from it */
    uint64_t *buf;
    size_t n, at, cap; /* hashes in buf, the next one to merge, room */
} s_run_t;

/*  The next slice of run r into its buffer. 0, or -1 when the database fails. */
static int s_fill(PGconn *conn, s_run_t *r)
{
    int64_t want = r->len - r->pos;
    if (want > (int64_t)r->cap)
        want = (int64_t)r->cap;
    char k[24], n[24];
    snprintf(k, sizeof k, "%" PRId64, r->pos);
    snprintf(n, sizeof n, "%" PRId64, want);
    const char *vals[3] = {r->id, k, n};
    PGresult *res = PQexecParams(conn, "SELECT repeat_run_slice($1, $2, $3)", 3, NULL, vals,
                                 NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        PQgetlength(res, 0, 0) != 8 * want) {
        PQclear(res);
        return -1;
    }
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, 0, 0);
    for (int64_t i = 0; i < want; i++, p += 8) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++)
            v = v << 8 | p[b];
        r->buf[i] = v;
    }
    PQclear(res);
    r->n = (size_t)want;
    r->at = 0;
    r->pos += want;
    return 0;
}

static uint64_t s_head(const s_run_t *r)
{
    return r->buf[r->at];
}

/*  Restore the min-heap of runs (by their head) below slot i. */
static void s_sift(s_run_t **heap, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && s_head(heap[l]) < s_head(heap[m]))
            m = l;
        if (l + 1 < n && s_head(heap[l + 1]) < s_head(heap[m]))
            m = l + 1;
        if (m == i)
            return;
        s_run_t *t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

/*  The hashes of runs[0..n) merged: how many equal the one before them. -1 when the
    database fails. */
static int64_t s_merge(PGconn *conn, s_run_t *runs, size_t n)
{
    s_run_t **heap = calloc(n ? n : 1, sizeof *heap);
    size_t slice = n ? S_WINDOW / n : 0;
    if (slice < S_MIN_SLICE)
        slice = S_MIN_SLICE;
    size_t live = 0;
    int64_t repeats = -1;
    for (size_t i = 0; heap && i < n; i++) {
        runs[i].cap = (size_t)runs[i].len < slice ? (size_t)runs[i].len : slice;
        runs[i].buf = malloc(runs[i].cap * sizeof *runs[i].buf);
        if (!runs[i].buf || s_fill(conn, &runs[i]) < 0)
            goto done;
        if (runs[i].n)
            heap[live++] = &runs[i];
    }
    for (size_t i = live; i-- > 0;)
        s_sift(heap, live, i);
    repeats = 0;
    bool any = false;
    uint64_t last = 0;
    while (live) {
        s_run_t *r = heap[0];
        uint64_t v = s_head(r);
        if (any && v == last)
            repeats++;
        last = v;
        any = true;
        if (++r->at == r->n) {
            if (r->pos < r->len && s_fill(conn, r) < 0) {
                repeats = -1;
                goto done;
            }
            if (r->at == r->n)
                heap[0] = heap[--live];
        }
        s_sift(heap, live, 0);
    }
done:
    for (size_t i = 0; i < n; i++) {
        free(runs[i].buf);
        runs[i].buf = NULL;
    }
    free(heap);
    return repeats;
}

/*  "{1,2,3}" as PostgreSQL prints an array of n integers: a malloc'd array. */
static int64_t *s_parse_array(const char *text, size_t *n)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    int64_t *out = calloc(cap, sizeof *out);
    *n = 0;
    const char *p = text + (*text == '{');
    while (out && *n < cap && *p && *p != '}') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p)
            break;
        out[(*n)++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return out;
}

char *review_push_repeats(PGconn *conn, int64_t upload, int64_t *hashes)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[1] = {id};
    PGresult *r = PQexecParams(conn,
                               "SELECT places, u_null_i, u_nulls, run_ids, run_places, "
                               "run_lengths FROM repeat_evidence($1)",
                               1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return NULL;
    }
    int places = atoi(PQgetvalue(r, 0, 0));
    int u_null_i = PQgetisnull(r, 0, 1) ? 0 : atoi(PQgetvalue(r, 0, 1));
    int64_t u_nulls = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    size_t nids = 0, nplaces = 0, nlens = 0;
    int64_t *ids = s_parse_array(PQgetvalue(r, 0, 3), &nids);
    int64_t *run_places = s_parse_array(PQgetvalue(r, 0, 4), &nplaces);
    int64_t *lens = s_parse_array(PQgetvalue(r, 0, 5), &nlens);
    PQclear(r);
    int slots = places + (u_null_i > 0);
    int64_t *tally = calloc((size_t)slots + 1, sizeof *tally);
    char (*idtext)[24] = calloc(nids ? nids : 1, sizeof *idtext);
    s_run_t *runs = calloc(nids ? nids : 1, sizeof *runs);
    bool ok = ids && run_places && lens && tally && idtext && runs && nids == nplaces &&
              nids == nlens && places > 0 && (u_null_i == 0 || u_null_i == places + 1);
    *hashes = 0;
    for (int place = 1; ok && place <= places; place++) {
        size_t n = 0;
        for (size_t i = 0; i < nids; i++) {
            if (run_places[i] != place)
                continue;
            snprintf(idtext[i], sizeof idtext[i], "%" PRId64, ids[i]);
            runs[n++] = (s_run_t){.id = idtext[i], .len = lens[i]};
            *hashes += lens[i];
        }
        tally[place - 1] = s_merge(conn, runs, n);
        ok = tally[place - 1] >= 0;
    }
    if (u_null_i > 0)
        tally[u_null_i - 1] = u_nulls;
    char *text = NULL;
    size_t size = 0;
    FILE *f = ok ? open_memstream(&text, &size) : NULL;
    for (int i = 0; f && i < slots; i++)
        fprintf(f, "%s%" PRId64, i ? "," : "{", tally[i]);
    if (f) {
        fputc('}', f);
        if (fclose(f) != 0) {
            free(text);
            text = NULL;
        }
    }
    free(ids);
    free(run_places);
    free(lens);
    free(tally);
    free(idtext);
    free(runs);
    return text;
}
