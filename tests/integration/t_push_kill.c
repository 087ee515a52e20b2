/*  A push survives the registrar being killed (SIGKILL) anywhere: at random byte offsets
    of the stream, with a random number of chunks still unanswered - so the kill lands
    while the registrar parses, while PostgreSQL copies, or while a group commits - and
    every resume goes on from the committed row boundary. At the end nothing is lost and
    nothing is doubled: the row counts, the row numbers, and the content of the staged and
    rejected rows equal those of the same bytes pushed once without a kill, and the counts
    the push made of its rows and of the enumerated 所属地市 (stage_counts) equal a count of
    the staged rows, and its check evidence (stage_checks) equals the reference push's. */
#include "pushing.h"

#include "common/auth.h"
#include "common/buf.h"
#include "common/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_TRIALS 24
#define S_CREDIT 8 /* the transfer rules' default */

static uint32_t s_rand_state;

static uint32_t s_rand(uint32_t n)
{
    s_rand_state = s_rand_state * 1103515245u + 12345u;
    return (s_rand_state >> 8) % n;
}

/*  The enterprise sample three times over (6,000 rows, ~720 KB), with a quoted name
    holding a comma and quotes in every seventh row and a ragged row (one field too many,
    rejected) in every 300th: staged rows, rejected rows and libcsv's path all cross the
    kill points. */
static char *s_data(size_t *len, int64_t *rows, int64_t *ragged)
{
    size_t slen;
    char *sample = tp_read("key_enterprise_assets.csv", &slen);
    if (!sample)
        return NULL;
    const char *body = memchr(sample, '\n', slen) + 1;
    size_t hlen = (size_t)(body - sample), blen = slen - hlen;
    odp_buf_t *out = odp_buf_new();
    odp_buf_append(out, sample, hlen);
    *rows = *ragged = 0;
    for (int copy = 0; copy < 3; copy++) {
        for (const char *p = body, *end = body + blen; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            const char *c1 = memchr(p, ',', n), *c2 = c1 ? memchr(c1 + 1, ',', n - 1) : NULL;
            ++*rows;
            if (*rows % 7 == 0 && c1 && c2) {
                odp_buf_append(out, p, (size_t)(c1 + 1 - p));
                odp_buf_append(out, "\"", 1);
                odp_buf_append(out, c1 + 1, (size_t)(c2 - c1 - 1));
                odp_buf_append(out, ",分公司 \"\"甲\"\"\"", strlen(",分公司 \"\"甲\"\"\""));
                odp_buf_append(out, c2, n - (size_t)(c2 - p));
            } else {
                odp_buf_append(out, p, n);
            }
            if (*rows % 300 == 0) {
                odp_buf_append(out, ",多余", strlen(",多余"));
                ++*ragged;
            }
            odp_buf_append(out, "\n", 1);
            p += n + 1;
        }
    }
    free(sample);
    *len = odp_buf_size(out);
    char *data = malloc(*len);
    if (data)
        memcpy(data, odp_buf_data(out), *len);
    odp_buf_destroy(&out);
    return data;
}

/*  The next ack on s: false unless it is a 200; the committed offset it reports raises
 *committed. */
static bool s_recv_ack(zsock_t *s, int64_t *committed)
{
    zmsg_t *reply = zmsg_recv(s);
    if (!reply)
        return false;
    char *st = zmsg_popstr(reply);
    bool ok = st && strcmp(st, "200") == 0;
    free(st);
    zframe_t *body = zmsg_pop(reply);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj;
    odp_error_t e;
    odp_rep_push_ack_t ack;
    if (ok && body && odp_body_unpack(zframe_data(body), zframe_size(body), &zone, &obj, &e) == 0 &&
        odp_decode_fields(&odp_def_rep_push_ack, &obj, &ack, &e) == 0) {
        if (ack.committed.i > *committed)
            *committed = ack.committed.i;
    } else {
        ok = false;
    }
    msgpack_zone_destroy(&zone);
    zframe_destroy(&body);
    zmsg_destroy(&reply);
    return ok;
}

/*  Send [from, to) in chunks of random sizes under the credit, then wait for all acks but
    `leave` of them. false when the registrar refused or did not answer. */
static bool s_send_range(zsock_t *s, int64_t upload, const char *data, int64_t from, int64_t to,
                         int leave, int64_t *committed)
{
    int inflight = 0;
    for (int64_t off = from; off < to;) {
        int64_t n = 1000 + s_rand(30000);
        n = n < to - off ? n : to - off;
        if (inflight == S_CREDIT) {
            if (!s_recv_ack(s, committed))
                return false;
            inflight--;
        }
        if (!tp_send_chunk(s, upload, off, data + off, (size_t)n))
            return false;
        inflight++;
        off += n;
    }
    for (; inflight > leave; inflight--)
        if (!s_recv_ack(s, committed))
            return false;
    return true;
}

/*  "count|distinct|min|max|sha256 of the rows as text in row order" of a staging table. */
static void s_stage_digest(PGconn *pg, int64_t upload, char *buf, size_t size)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) || '|' || count(DISTINCT row_no) || '|' || coalesce(min(row_no), 0) "
             "|| '|' || coalesce(max(row_no), 0) || '|' || encode(sha256(convert_to(coalesce("
             "string_agg(t::text, E'\\n' ORDER BY row_no), ''), 'UTF8')), 'hex') "
             "FROM registrar.stage_u%lld t",
             (long long)upload);
    PGresult *r = PQexec(pg, sql);
    snprintf(buf, size, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : PQerrorMessage(pg));
    PQclear(r);
}

/*  The same of an upload's rejected rows (without the upload's number). */
static void s_rejects_digest(PGconn *pg, int64_t upload, char *buf, size_t size)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) || '|' || count(DISTINCT row_no) || '|' || encode(sha256(convert_to("
             "coalesce(string_agg(row_no || E'\\t' || reason || E'\\t' || detail || E'\\t' || "
             "raw, E'\\n' ORDER BY row_no), ''), 'UTF8')), 'hex') FROM registrar.rejects "
             "WHERE upload = %lld",
             (long long)upload);
    PGresult *r = PQexec(pg, sql);
    snprintf(buf, size, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : PQerrorMessage(pg));
    PQclear(r);
}

static void s_kill_anywhere(void)
{
    s_rand_state = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    uint32_t seed = s_rand_state;
    printf("# kill offsets seed %u\n", seed);
    size_t len;
    int64_t rows, ragged;
    char *data = s_data(&len, &rows, &ragged);
    CHECK(data != NULL, "the test data");
    if (!data)
        return;
    char resource[33], reference[33];
    CHECK(h_department("446700001", "推送测试 强杀部门") == 0, "department.add");
    CHECK(h_department("446700002", "推送测试 对照部门") == 0, "department.add");
    if (!tp_entry("446700001", "重点企业资产 强杀", "dataset", "key_enterprise_assets", true,
                  resource) ||
        !tp_entry("446700002", "重点企业资产 对照", "dataset", "key_enterprise_assets", true,
                  reference)) {
        free(data);
        return;
    }

    /*  The reference: the same bytes, pushed once, nothing killed. */
    odp_client_t *c = h_client("registrar", h_keyfile("446700002"));
    tp_opts_t ro = {.resource = reference};
    tp_result_t ref;
    int st = tp_push(c, &ro, data, len, &ref);
    odp_client_destroy(&c);
    CHECK(st == 200 && ref.rows_received == rows && ref.rows_rejected == ragged,
          "the reference push: %d %s, %lld rows, %lld rejected", st, ref.code,
          (long long)ref.rows_received, (long long)ref.rows_rejected);

    /*  Small groups, so that commits happen all along the stream and kills land between,
        during and after them. */
    static const char *const env[] = {"ODP_REGISTRAR_COMMIT_BYTES=40000", NULL};
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", env) > 0, "the registrar starts with 40000-byte groups");
    int64_t at[S_TRIALS];
    for (int i = 0; i < S_TRIALS; i++)
        at[i] = 1 + (int64_t)s_rand((uint32_t)len - 1);
    for (int i = 1; i < S_TRIALS; i++) /* ascending: the push moves forward between kills */
        for (int j = i; j > 0 && at[j - 1] > at[j]; j--) {
            int64_t t = at[j];
            at[j] = at[j - 1];
            at[j - 1] = t;
        }
    tp_opts_t o = {.resource = resource};
    tp_result_t res = {0};
    int64_t upload = 0, committed = 0; /* the highest committed offset an ack reported */
    for (int i = 0; i < S_TRIALS && !h_case_failures; i++) {
        c = h_client("registrar", h_keyfile("446700001"));
        st = tp_begin(c, &o, data, len, &res);
        odp_client_destroy(&c);
        CHECK(st == 200 && (upload == 0 || res.upload == upload),
              "seed %u, kill %d: push.begin %d %s, upload %lld", seed, i, st, res.code,
              (long long)res.upload);
        CHECK(res.offset >= committed && (res.offset == 0 || data[res.offset - 1] == '\n'),
              "seed %u, kill %d: resumed at %lld, not a row boundary at or after the committed "
              "%lld",
              seed, i, (long long)res.offset, (long long)committed);
        upload = res.upload;
        committed = res.offset;
        int64_t to = at[i] > res.offset ? at[i] : res.offset + 1;
        int leave = (int)s_rand(4);
        zsock_t *s = tp_dealer("446700001");
        bool sent = s && s_send_range(s, upload, data, res.offset, to, leave, &committed);
        CHECK(sent, "seed %u, kill %d: chunks [%lld, %lld)", seed, i, (long long)res.offset,
              (long long)to);
        h_service_kill9("registrar");
        zsock_destroy(&s);
        CHECK(h_service_start("registrar", env) > 0, "seed %u, kill %d: the registrar restarts",
              seed, i);
    }

    /*  The rest, then finish. */
    c = h_client("registrar", h_keyfile("446700001"));
    st = tp_begin(c, &o, data, len, &res);
    CHECK(st == 200 && res.upload == upload && res.offset >= committed,
          "seed %u: push.begin after the last kill: %d %s at %lld (committed %lld)", seed, st,
          res.code, (long long)res.offset, (long long)committed);
    if (st == 200)
        st = tp_chunks(c, &res, data, len, 0, 0);
    if (st == 200)
        st = tp_finish(c, &res);
    odp_client_destroy(&c);
    CHECK(st == 200 && res.rows_received == rows && res.rows_rejected == ragged,
          "seed %u: finish: %d %s %s, %lld rows, %lld rejected", seed, st, res.code, res.message,
          (long long)res.rows_received, (long long)res.rows_rejected);

    PGconn *pg = h_pg_super();
    char got[200], want[200];
    s_stage_digest(pg, upload, got, sizeof got);
    s_stage_digest(pg, ref.upload, want, sizeof want);
    char expect[64];
    snprintf(expect, sizeof expect, "%lld|%lld|1|", (long long)(rows - ragged),
             (long long)(rows - ragged));
    CHECK(strcmp(got, want) == 0,
          "seed %u: the staged rows differ from the reference push (count|distinct|min|max|"
          "sha256): %s vs %s",
          seed, got, want);
    CHECK(strncmp(want, expect, strlen(expect)) == 0, "the reference staged %s, expected %s...",
          want, expect);
    s_rejects_digest(pg, upload, got, sizeof got);
    s_rejects_digest(pg, ref.upload, want, sizeof want);
    CHECK(strcmp(got, want) == 0, "seed %u: the rejected rows differ from the reference: %s vs %s",
          seed, got, want);
    char sql[1600];
    snprintf(sql, sizeof sql,
             "WITH c AS (SELECT field, value, sum(count) AS n FROM registrar.stage_counts WHERE "
             "upload = %lld GROUP BY 1, 2), s AS (SELECT NULL::text AS field, NULL::text AS "
             "value, count(*) AS n FROM registrar.stage_u%lld UNION ALL SELECT '所属地市', "
             "\"所属地市\", count(*) FROM registrar.stage_u%lld GROUP BY 2) SELECT (SELECT "
             "count(*) FROM registrar.uploads WHERE id = %lld AND counted_fields = "
             "'{所属地市}') * 1000 + (SELECT count(*) FROM ((SELECT * FROM c EXCEPT ALL SELECT * "
             "FROM s) UNION ALL (SELECT * FROM s EXCEPT ALL SELECT * FROM c)) d)",
             (long long)upload, (long long)upload, (long long)upload, (long long)upload);
    int64_t v = h_pg_int(pg, sql);
    CHECK(v == 1000,
          "seed %u: the push's counts (counted_fields * 1000 + rows that differ from "
          "a count of the staged rows): %lld",
          seed, (long long)v);
    /*  The check evidence (stage_checks) counts each committed row once: its sums per
        (field, check) are the reference push's. */
    snprintf(sql, sizeof sql,
             "WITH a AS (SELECT field, check_name, sum(unproven) AS n FROM registrar.stage_checks "
             "WHERE upload = %lld GROUP BY 1, 2), b AS (SELECT field, check_name, sum(unproven) "
             "AS n FROM registrar.stage_checks WHERE upload = %lld GROUP BY 1, 2) SELECT (SELECT "
             "count(*) FROM registrar.uploads WHERE id IN (%lld, %lld) AND checked_revision IS "
             "NOT NULL) * 100000 + (SELECT count(*) FROM a) * 100 + (SELECT count(*) FROM "
             "((TABLE a EXCEPT ALL TABLE b) UNION ALL (TABLE b EXCEPT ALL TABLE a)) d)",
             (long long)upload, (long long)ref.upload, (long long)upload, (long long)ref.upload);
    v = h_pg_int(pg, sql);
    CHECK(v / 100000 == 2 && v % 100000 >= 100 && v % 100 == 0,
          "seed %u: the push's check evidence (evaluated * 100000 + checks * 100 + sums that "
          "differ from the reference push's): %lld",
          seed, (long long)v);
    /*  The hashes of the unique field (stage_keys) hold each committed row's value once: the
        same multiset of hashes, and of NULLs, as the reference push's, however the groups
        fell. */
    snprintf(sql, sizeof sql,
             "WITH a AS (SELECT field, substring(hashes FROM 8 * i + 1 FOR 8) AS h FROM "
             "registrar.stage_keys, generate_series(0, octet_length(hashes) / 8 - 1) i WHERE "
             "upload = %lld UNION ALL SELECT field || ' NULL', NULL FROM registrar.stage_keys, "
             "generate_series(1, nulls) WHERE upload = %lld), b AS (SELECT field, "
             "substring(hashes FROM 8 * i + 1 FOR 8) AS h FROM registrar.stage_keys, "
             "generate_series(0, octet_length(hashes) / 8 - 1) i WHERE upload = %lld UNION ALL "
             "SELECT field || ' NULL', NULL FROM registrar.stage_keys, generate_series(1, nulls) "
             "WHERE upload = %lld) SELECT (SELECT count(*) FROM registrar.uploads WHERE id IN "
             "(%lld, %lld) AND cardinality(keyed_fields) > 0) * 100000000 + least((SELECT "
             "count(*) FROM a), 99999) * 1000 + least((SELECT count(*) FROM ((TABLE a EXCEPT ALL "
             "TABLE b) UNION ALL (TABLE b EXCEPT ALL TABLE a)) d), 999)",
             (long long)upload, (long long)upload, (long long)ref.upload, (long long)ref.upload,
             (long long)upload, (long long)ref.upload);
    v = h_pg_int(pg, sql);
    CHECK(v / 100000000 == 2 && v % 100000000 / 1000 == rows - ragged && v % 1000 == 0,
          "seed %u: the push's hashes (keyed * 10^8 + values and NULLs * 1000 + those that "
          "differ from the reference push's): %lld, %lld staged rows",
          seed, (long long)v, (long long)(rows - ragged));
    PQfinish(pg);
    free(data);
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", NULL) > 0, "the registrar restarts with the default groups");
}

const h_case_t t_push_kill_cases[] = {
    {"push: kill -9 of the registrar at 24 random byte offsets loses and doubles nothing, its "
     "counts of rows and values, its check evidence and its hashes of unique values included",
     s_kill_anywhere},
    {NULL, NULL}};
