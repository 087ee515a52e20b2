/*  The repeat counts of a version from the push's evidence (migrations/007_push_repeats.sql):
    a k-way merge of the groups' sorted runs of hashes (registrar.stage_keys), each read a
    page (at most 8,192 hashes) at a time, so that the memory is a page a run. A hash
    equal to the one before it in the merged order is a repeat. Past S_MAX_RUNS runs (push
    groups) in a field, the version's counts are left to the scan: the memory stays bounded
    (16 MB) whatever the row count. */
#include "reviewer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_RUNS 256

typedef struct {
    const int64_t *pages, *lens; /* the run's stage_keys ids and their lengths, in order */
    size_t npages, next;         /* ... and the next one to read */
    uint64_t *buf;
    size_t n, at, cap; /* hashes in buf, the next one to merge, room */
} s_run_t;

/*  The next page of run r into its buffer. 0, or -1 when the database fails. */
static int s_fill(PGconn *conn, s_run_t *r)
{
    int64_t want = r->lens[r->next];
    if ((size_t)want > r->cap) {
        uint64_t *b = realloc(r->buf, (size_t)want * sizeof *b);
        if (!b)
            return -1;
        r->buf = b;
        r->cap = (size_t)want;
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, r->pages[r->next]);
    const char *vals[1] = {id};
    /*  The whole value: PostgreSQL reads a toasted value whole many times faster than in
        slices (substring). */
    PGresult *res = PQexecParams(conn, "SELECT hashes FROM registrar.stage_keys WHERE id = $1", 1,
                                 NULL, vals, NULL, NULL, 1);
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
    r->next++;
    return 0;
}

/*  A run in the merge's heap: its head hash kept beside it, so that sifting compares
    values in one small array rather than following a pointer to each run's buffer. */
typedef struct {
    uint64_t head;
    s_run_t *run;
} s_top_t;

/*  Restore the min-heap below slot i. */
static void s_sift(s_top_t *heap, size_t n, size_t i)
{
    s_top_t t = heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= n)
            break;
        if (l + 1 < n && heap[l + 1].head < heap[l].head)
            m = l + 1;
        if (heap[m].head >= t.head)
            break;
        heap[i] = heap[m];
        i = m;
    }
    heap[i] = t;
}

/*  The hashes of runs[0..n) merged: how many equal the one before them. -1 when the
    database fails. */
static int64_t s_merge(PGconn *conn, s_run_t *runs, size_t n)
{
    s_top_t *heap = calloc(n ? n : 1, sizeof *heap);
    size_t live = 0;
    int64_t repeats = -1;
    for (size_t i = 0; heap && i < n; i++) {
        if (s_fill(conn, &runs[i]) < 0)
            goto done;
        if (runs[i].n)
            heap[live++] = (s_top_t){runs[i].buf[0], &runs[i]};
    }
    for (size_t i = live / 2; i-- > 0;)
        s_sift(heap, live, i);
    repeats = 0;
    /*  The first hash cannot repeat one before it: last starts as anything else. */
    uint64_t last = live ? ~heap[0].head : 0;
    while (live) {
        s_run_t *r = heap[0].run;
        uint64_t v = heap[0].head;
        repeats += v == last;
        last = v;
        if (++r->at == r->n && r->next < r->npages && s_fill(conn, r) < 0) {
            repeats = -1;
            goto done;
        }
        if (r->at < r->n)
            heap[0].head = r->buf[r->at];
        else
            heap[0] = heap[--live];
        if (live)
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
                               "SELECT places, u_null_i, u_nulls, page_ids, page_places, "
                               "page_runs, page_lengths FROM repeat_evidence($1)",
                               1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return NULL;
    }
    int places = atoi(PQgetvalue(r, 0, 0));
    int u_null_i = PQgetisnull(r, 0, 1) ? 0 : atoi(PQgetvalue(r, 0, 1));
    int64_t u_nulls = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    size_t n = 0, nplaces = 0, nruns = 0, nlens = 0;
    int64_t *ids = s_parse_array(PQgetvalue(r, 0, 3), &n);
    int64_t *pplaces = s_parse_array(PQgetvalue(r, 0, 4), &nplaces);
    int64_t *pruns = s_parse_array(PQgetvalue(r, 0, 5), &nruns);
    int64_t *lens = s_parse_array(PQgetvalue(r, 0, 6), &nlens);
    PQclear(r);
    int slots = places + (u_null_i > 0);
    int64_t *tally = calloc((size_t)slots + 1, sizeof *tally);
    s_run_t *runs = calloc(S_MAX_RUNS, sizeof *runs);
    bool ok = ids && pplaces && pruns && lens && tally && runs && n == nplaces && n == nruns &&
              n == nlens && places > 0 && (u_null_i == 0 || u_null_i == places + 1);
    *hashes = 0;
    /*  The pages come ordered by place, run and page: a place's runs are consecutive. */
    size_t i = 0;
    for (int place = 1; ok && place <= places; place++) {
        size_t k = 0;
        for (; ok && i < n && pplaces[i] == place; i++) {
            if (i == 0 || pplaces[i - 1] != place || pruns[i - 1] != pruns[i]) {
                ok = k < S_MAX_RUNS;
                if (ok)
                    runs[k++] = (s_run_t){.pages = ids + i, .lens = lens + i};
            }
            if (ok)
                runs[k - 1].npages++;
            *hashes += lens[i];
        }
        if (ok) {
            tally[place - 1] = s_merge(conn, runs, k);
            ok = tally[place - 1] >= 0;
        }
    }
    if (u_null_i > 0)
        tally[u_null_i - 1] = u_nulls;
    char *text = NULL;
    size_t size = 0;
    FILE *f = ok ? open_memstream(&text, &size) : NULL;
    for (int j = 0; f && j < slots; j++)
        fprintf(f, "%s%" PRId64, j ? "," : "{", tally[j]);
    if (f) {
        fputc('}', f);
        if (fclose(f) != 0) {
            free(text);
            text = NULL;
        }
    }
    free(ids);
    free(pplaces);
    free(pruns);
    free(lens);
    free(tally);
    free(runs);
    return text;
}
