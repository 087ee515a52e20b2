/*  qbench: load for the query service's benchmark (tests/bench/run.sh, query block).

    qbench rows   ENDPOINT RESOURCE RELATION MAXROW CONC SECONDS   indexed equality through
    qbench pg     CONNINFO RESOURCE RELATION MAXROW CONC SECONDS   the service / libpq
        CONC threads, each its own connection, asking for one random row by _id (row_no)
        for SECONDS; prints requests per second.
    qbench whoami ENDPOINT CONC SECONDS    the same load of `whoami`, which the service's loop
        answers without PostgreSQL: the transport's ceiling (client, CURVE, ZeroMQ, the
        loop); prints requests per second.
    qbench page   ENDPOINT RESOURCE RELEASE PAGE N    median ms of page 1 and of page PAGE
        (limit 100) through next_page, N times each, interleaved; prints both.
    qbench search ENDPOINT N WORD...                  catalogue.search with one of the words,
        N times; prints p50 and p95 ms.
    qbench download ENDPOINT RESOURCE OUT              the whole current version as CSV in
        chunks, the download's credit of requests in flight; prints seconds and bytes.

    Clients use ODP_CLIENT_CERT / ODP_SERVER_CERT as every tool does; ENDPOINT "-" is the
    query service's default (ODP_QUERY_ENDPOINT or the port base's). */
#include "common/client.h"
#include "common/codec.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    odp_client_t *client; /* made in the main thread: czmq's set-up is not for threads */
    const char *target;   /* endpoint or conninfo */
    const char *resource;
    const char *relation;
    long maxrow;
    double until;
    long done;
    unsigned seed;
    enum { S_ROWS, S_PG, S_WHOAMI } kind;
} s_load_t;

static void *s_load(void *arg)
{
    s_load_t *l = arg;
    odp_client_t *c = NULL;
    PGconn *pg = NULL;
    char sql[256];
    if (l->kind == S_PG) {
        pg = PQconnectdb(l->target);
        snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE row_no = $1::bigint", l->relation);
        if (PQstatus(pg) != CONNECTION_OK) {
            fprintf(stderr, "qbench: %s", PQerrorMessage(pg));
            return NULL;
        }
    } else
        c = l->client;
    while (s_now() < l->until) {
        long row = 1 + (long)(rand_r(&l->seed) % l->maxrow);
        if (pg) {
            char v[24];
            snprintf(v, sizeof v, "%ld", row);
            const char *vals[1] = {v};
            PGresult *r = PQexecParams(pg, sql, 1, NULL, vals, NULL, NULL, 0);
            if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                l->done++;
            PQclear(r);
        } else if (l->kind == S_WHOAMI) {
            odp_whoami_t m = {0};
            odp_reply_t rep;
            if (odp_client_call(c, &odp_def_whoami, &m, 10000, &rep) == 0 && rep.status == 200)
                l->done++;
            odp_reply_free(&rep);
        } else {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str(&pk, 3);
            msgpack_pack_str_body(&pk, "_id", 3);
            msgpack_pack_int64(&pk, row);
            odp_datastore_search_t m = {0};
            m.resource = odp_v_str(l->resource);
            m.filters = odp_v_raw(sb.data, sb.size);
            m.include_total = odp_v_bool(false);
            odp_reply_t rep;
            if (odp_client_call(c, &odp_def_datastore_search, &m, 10000, &rep) == 0 &&
                rep.status == 200)
                l->done++;
            odp_reply_free(&rep);
            msgpack_sbuffer_destroy(&sb);
        }
    }
    PQfinish(pg);
    return NULL;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static double s_page(odp_client_t *c, const char *resource, const char *cursor)
{
    odp_datastore_search_t m = {0};
    m.resource = odp_v_str(resource);
    m.limit = odp_v_int(100);
    m.include_total = odp_v_bool(false);
    if (cursor)
        m.next_page = odp_v_str(cursor);
    odp_reply_t rep;
    double t0 = s_now();
    int rc = odp_client_call(c, &odp_def_datastore_search, &m, 10000, &rep);
    double ms = (s_now() - t0) * 1000;
    if (rc < 0 || rep.status != 200)
        ms = -1;
    odp_reply_free(&rep);
    return ms;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[2], "-") == 0 && strcmp(argv[1], "pg") != 0)
        argv[2] = NULL;
    bool whoami = argc == 5 && strcmp(argv[1], "whoami") == 0;
    if (whoami || (argc >= 8 && (strcmp(argv[1], "rows") == 0 || strcmp(argv[1], "pg") == 0))) {
        int conc = atoi(argv[whoami ? 3 : 6]);
        double secs = atof(argv[whoami ? 4 : 7]);
        s_load_t l[64];
        pthread_t t[64];
        if (conc < 1 || conc > 64)
            return 2;
        double until = s_now() + secs;
        bool pg = strcmp(argv[1], "pg") == 0;
        zsys_init();
        for (int i = 0; i < conc; i++) {
            char err[256];
            odp_client_t *c = pg ? NULL : odp_client_new("query", argv[2], NULL, err, sizeof err);
            if (!pg && !c) {
                fprintf(stderr, "qbench: %s\n", err);
                return 1;
            }
            l[i] = (s_load_t){.client = c,
                              .target = argv[2],
                              .resource = whoami ? NULL : argv[3],
                              .relation = whoami ? NULL : argv[4],
                              .maxrow = whoami ? 1 : atol(argv[5]),
                              .until = until,
                              .seed = (unsigned)i * 7919u + 1u,
                              .kind = pg       ? S_PG
                                      : whoami ? S_WHOAMI
                                               : S_ROWS};
        }
        for (int i = 0; i < conc; i++)
            pthread_create(&t[i], NULL, s_load, &l[i]);
        long total = 0;
        for (int i = 0; i < conc; i++) {
            pthread_join(t[i], NULL);
            total += l[i].done;
            odp_client_destroy(&l[i].client);
        }
        printf("%.0f\n", (double)total / secs);
        return total > 0 ? 0 : 1;
    }
    if (argc == 7 && strcmp(argv[1], "page") == 0) {
        char err[256], cursor[64];
        odp_client_t *c = odp_client_new("query", argv[2], NULL, err, sizeof err);
        if (!c) {
            fprintf(stderr, "qbench: %s\n", err);
            return 1;
        }
        long page = atol(argv[5]);
        int n = atoi(argv[6]);
        /*  The cursor of page PAGE is the last row number of the page before it. */
        snprintf(cursor, sizeof cursor, "%s.%ld", argv[4], (page - 1) * 100);
        double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
        for (int i = 0; i < n; i++) {
            a[i] = s_page(c, argv[3], NULL);
            b[i] = s_page(c, argv[3], cursor);
        }
        printf("%.3f %.3f\n", s_pct(a, n, 0.5), s_pct(b, n, 0.5));
        free(a);
        free(b);
        odp_client_destroy(&c);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "search") == 0) {
        char err[256];
        odp_client_t *c = odp_client_new("query", argv[2], NULL, err, sizeof err);
        if (!c) {
            fprintf(stderr, "qbench: %s\n", err);
            return 1;
        }
        int n = atoi(argv[3]), words = argc - 4, bad = 0;
        double *v = calloc((size_t)n, sizeof *v);
        for (int i = 0; i < n; i++) {
            odp_catalogue_search_t m = {0};
            m.q = odp_v_str(argv[4 + i % words]);
            m.rows = odp_v_int(20);
            odp_reply_t rep;
            double t0 = s_now();
            int rc = odp_client_call(c, &odp_def_catalogue_search, &m, 10000, &rep);
            v[i] = (s_now() - t0) * 1000;
            bad += rc < 0 || rep.status != 200;
            odp_reply_free(&rep);
        }
        printf("%.3f %.3f %d\n", s_pct(v, n, 0.5), s_pct(v, n, 0.95), bad);
        free(v);
        odp_client_destroy(&c);
        return bad ? 1 : 0;
    }
    if (argc == 5 && strcmp(argv[1], "download") == 0) {
        char err[256];
        odp_client_t *c = odp_client_new("query", argv[2], NULL, err, sizeof err);
        FILE *f = fopen(argv[4], "wb");
        if (!c || !f) {
            fprintf(stderr, "qbench: %s\n", c ? "cannot write the output" : err);
            return 1;
        }
        double t0 = s_now();
        odp_download_begin_t b = {0};
        b.resource = odp_v_str(argv[3]);
        odp_reply_t rep;
        if (odp_client_call(c, &odp_def_download_begin, &b, 10000, &rep) < 0 || rep.status != 200)
            return 1;
        const msgpack_object *v = odp_map_get(&rep.obj, "download");
        int64_t id = (int64_t)v->via.u64;
        int64_t span = (int64_t)odp_map_get(&rep.obj, "span")->via.u64;
        int64_t last = (int64_t)odp_map_get(&rep.obj, "last_row")->via.u64;
        int64_t credit = (int64_t)odp_map_get(&rep.obj, "credit")->via.u64;
        odp_reply_free(&rep);
        long bytes = 0;
        bool done = false;
        /*  As odp-user does: credit chunk requests in flight, one more sent per reply. */
        int64_t next = 1, inflight = 0;
        while (!done) {
            while (inflight < credit && (next <= last || next == 1)) {
                odp_download_chunk_t ch = {0};
                ch.download = odp_v_int(id);
                ch.from_row = odp_v_int(next);
                if (odp_client_send(c, &odp_def_download_chunk, &ch) < 0)
                    return 1;
                next += span;
                inflight++;
            }
            if (odp_client_recv(c, 60000, &rep) < 0 || rep.status != 200)
                return 1;
            inflight--;
            const msgpack_object *d = odp_map_get(&rep.obj, "data");
            fwrite(d->via.bin.ptr, 1, d->via.bin.size, f);
            bytes += (long)d->via.bin.size;
            done = odp_map_get(&rep.obj, "done")->via.boolean;
            odp_reply_free(&rep);
        }
        fclose(f);
        printf("%.3f %ld\n", s_now() - t0, bytes);
        odp_client_destroy(&c);
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of tests/bench/qbench.c\n");
    return 2;
}
