/*  The publisher end to end: versions pushed through the registrar, reviewed and approved
    through the reviewer, released, superseded, withdrawn and restored through the
    publisher, and read back as the query service does (connected as odp_query). */
#include "pushing.h"

#include "common/json.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*  ---- steps -------------------------------------------------------------------------------- */

static int s_approve(int64_t upload)
{
    odp_client_t *c = h_client("reviewer", NULL);
    odp_review_decide_t m = {0};
    m.upload = odp_v_int(upload);
    m.approve = odp_v_bool(true);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_review_decide, &m, &rep);
    CHECK(st == 200, "review.decide of upload %lld: %d %s", (long long)upload, st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

/*  Push data to resource as dept; the upload (0 when the push failed). */
static int64_t s_push(const char *dept, const char *resource, const char *data, size_t len,
                      const char *format, const char *media_type)
{
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .format = format, .media_type = media_type};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200, "push to %s: %s gave %d %s %s", resource, res.step, st, res.code, res.message);
    odp_client_destroy(&c);
    return st == 200 ? res.upload : 0;
}

/*  release.publish as the holder of cert (NULL: operations): status, reply in *rep. */
static int s_publish(const char *cert, const char *resource, int64_t version, odp_reply_t *rep)
{
    odp_client_t *c = h_client("publisher", cert);
    odp_release_publish_t m = {0};
    m.resource = odp_v_str(resource);
    if (version)
        m.version = odp_v_int(version);
    int st = h_call(c, &odp_def_release_publish, &m, rep);
    odp_client_destroy(&c);
    return st;
}

/*  Released: the release number, 0 after a failed check. */
static int64_t s_release(const char *resource, int64_t version)
{
    odp_reply_t rep;
    int st = s_publish(NULL, resource, version, &rep);
    char msg[300] = "";
    odp_v_cstr(&rep.err.message, msg, sizeof msg);
    CHECK(st == 200, "release.publish %s v%lld: %d %s %s", resource, (long long)version, st,
          h_err_code(&rep), msg);
    int64_t id = st == 200 ? h_int(&rep, "release") : 0;
    odp_reply_free(&rep);
    return id;
}

/*  A dictionary file in the run's directory: id integer unique, ver enum, day date. */
static const char *s_dict(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/publisher.dict.json", h_var());
    json_t *d = json_pack("{s:[{s:s,s:s,s:b,s:b},{s:s,s:s,s:[s,s,s]},{s:s,s:s},{s:s,s:s}]}",
                          "fields", "name", "id", "type", "integer", "required", 1, "unique", 1,
                          "name", "ver", "type", "text", "enum", "v1", "v2", "v3", "name", "day",
                          "type", "date", "name", "note", "type", "text");
    CHECK(d && json_dump_file(d, path, 0) == 0, "cannot write %s", path);
    json_decref(d);
    return path;
}

/*  n rows of version ver: ids from 1. */
static char *s_csv(const char *ver, int n, size_t *len)
{
    size_t cap = 64 + (size_t)n * 48;
    char *buf = malloc(cap);
    size_t off = (size_t)snprintf(buf, cap, "id,ver,day,note\n");
    for (int i = 1; i <= n; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%d,%s,2026-01-%02d,行 %d\n", i, ver,
                                i % 28 + 1, i);
    *len = off;
    return buf;
}

/*  A registered entry of dept with the test dictionary and version 1..versions released. */
static bool s_entry_with(const char *dept, const char *title, int rows, char resource[33])
{
    if (!tp_entry(dept, title, "dataset", s_dict(), true, resource))
        return false;
    size_t len;
    char *csv = s_csv("v1", rows, &len);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    free(csv);
    return upload && tp_checked(upload) && s_approve(upload) == 200 && s_release(resource, 1) > 0;
}

/*  A single-value query as role (query: odp_query); -1 on error, with the SQLSTATE. */
static int64_t s_as(PGconn *pg, const char *sql, char state[6])
{
    PGresult *r = PQexec(pg, sql);
    int64_t v = -1;
    state[0] = '\0';
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (PQresultErrorField(r, PG_DIAG_SQLSTATE))
        snprintf(state, 6, "%s", PQresultErrorField(r, PG_DIAG_SQLSTATE));
    PQclear(r);
    return v;
}

/*  ---- cases ---------------------------------------------------------------------------------- */

/*  Every sample: pushed, reviewed, approved, released; the public view holds exactly the
    staged rows, typed as staged, and the staging table has the indexes its dictionary asks. */
static void s_samples(void)
{
    static const char *const names[] = {"air_quality_daily", "key_enterprise_assets",
                                        "land_use_status", "medical_institutions"};
    const char *dept = "446300001";
    CHECK(h_department(dept, "发布测试 样本部门") == 0, "department.add");
    PGconn *pg = h_pg_super();
    PGconn *q = h_pg_role("query");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char file[128], resource[33], sql[1200], st[6];
        snprintf(file, sizeof file, "%s.csv", names[i]);
        size_t len;
        char *data = tp_read(file, &len);
        if (!data || !tp_entry(dept, names[i], "dataset", names[i], true, resource)) {
            free(data);
            continue;
        }
        int64_t upload = s_push(dept, resource, data, len, NULL, NULL);
        free(data);
        if (!upload || !tp_checked(upload) || s_approve(upload) != 200)
            continue;
        int64_t rel = s_release(resource, 0);
        if (!rel)
            continue;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM publisher.r%lld", (long long)rel);
        int64_t public_rows = s_as(q, sql, st);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM registrar.stage_u%lld", (long long)upload);
        int64_t staged = h_pg_int(pg, sql);
        snprintf(sql, sizeof sql, "SELECT rows FROM publisher.releases WHERE id = %lld",
                 (long long)rel);
        CHECK(public_rows == staged && staged > 0 && h_pg_int(pg, sql) == staged,
              "%s: odp_query reads %lld rows (%s), %lld staged, release says %lld", names[i],
              (long long)public_rows, st, (long long)staged, (long long)h_pg_int(pg, sql));
        /*  Typed as staged: the view's columns are the staging table's, in order. */
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM (SELECT attnum, attname, atttypid FROM pg_attribute "
                 "WHERE attrelid = 'publisher.r%lld'::regclass AND attnum > 0 EXCEPT SELECT "
                 "attnum, attname, atttypid FROM pg_attribute WHERE attrelid = "
                 "'registrar.stage_u%lld'::regclass AND attnum > 0 AND NOT attisdropped) d",
                 (long long)rel, (long long)upload);
        CHECK(h_pg_int(pg, sql) == 0, "%s: the view's columns differ from the staging table's",
              names[i]);
        /*  Every indexed field of the release, and row_no, has its index. */
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM (SELECT name FROM publisher.release_fields WHERE release "
                 "= %lld AND indexed UNION SELECT 'row_no') f WHERE NOT EXISTS (SELECT 1 FROM "
                 "pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
                 "i.indkey[0] WHERE i.indrelid = 'registrar.stage_u%lld'::regclass AND "
                 "a.attname = f.name)",
                 (long long)rel, (long long)upload);
        CHECK(h_pg_int(pg, sql) == 0, "%s: an indexed field has no index", names[i]);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pg_index WHERE indrelid = "
                 "'registrar.stage_u%lld'::regclass",
                 (long long)upload);
        CHECK(h_pg_int(pg, sql) >= 1, "%s: no index at all", names[i]);
    }
    /*  The contract is readable by odp_query and odp_metrics; the publisher's own tables
        are not. */
    char st[6];
    CHECK(s_as(q, "SELECT count(*) FROM publisher.entries", st) >= 4 &&
              s_as(q, "SELECT count(*) FROM publisher.release_fields", st) > 0 &&
              s_as(q, "SELECT count(*) FROM publisher.facets", st) >= 0,
          "odp_query cannot read the public tables (%s)", st);
    CHECK(s_as(q, "SELECT count(*) FROM publisher.attempts", st) == -1 && strcmp(st, "42501") == 0,
          "odp_query reads publisher.attempts (%s)", st);
    PGconn *mt = h_pg_role("metrics");
    CHECK(s_as(mt, "SELECT count(*) FROM publisher.releases", st) >= 4,
          "odp_metrics cannot read publisher.releases (%s)", st);
    PQfinish(mt);
    PQfinish(q);
    PQfinish(pg);
}

/*  The messy sample: one row dropped, one corrected, the rest released; the public view
    is the staged rows without the dropped one, with the corrected value in place. */
/*  upload's row and facet counts were made while it was pushed (registrar.stage_counts,
    counted_fields set) and count_ahead's result from them equals a scan of its staging
    table (facet_query, what count_ahead ran before). */
static void s_counts_from_push(PGconn *pg, int64_t upload)
{
    char sql[1200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registrar.uploads u WHERE u.id = %lld AND u.counted_fields "
             "IS NOT NULL AND EXISTS (SELECT 1 FROM registrar.stage_counts c WHERE c.upload = "
             "u.id AND c.field IS NULL)",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 1, "upload %lld was not counted by its push", (long long)upload);
    snprintf(sql, sizeof sql,
             "SET search_path = publisher; SELECT facet_query(%lld, 'registrar.stage_u%lld')",
             (long long)upload, (long long)upload);
    PGresult *r = PQexec(pg, sql);
    char *scan = PQresultStatus(r) == PGRES_TUPLES_OK ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    PQclear(PQexec(pg, "RESET search_path"));
    CHECK(scan, "facet_query");
    size_t size = strlen(scan ? scan : "") + 600;
    char *cmp = malloc(size);
    snprintf(cmp, size,
             "WITH g AS (%s), f AS (SELECT field, value, count AS n FROM publisher.counts_ahead "
             "WHERE upload = %lld) SELECT (SELECT count(*) FROM f) * 1000000 + (SELECT count(*) "
             "FROM ((SELECT * FROM f EXCEPT ALL SELECT * FROM g) UNION ALL (SELECT * FROM g "
             "EXCEPT ALL SELECT * FROM f)) d)",
             scan ? scan : "SELECT NULL::text, NULL::text, 0::bigint", (long long)upload);
    int64_t v = h_pg_int(pg, cmp);
    CHECK(v >= 2000000 && v % 1000000 == 0,
          "the counts from the push (%lld rows) differ from a scan in %lld rows",
          (long long)(v / 1000000), (long long)(v % 1000000));
    free(cmp);
    free(scan);
}

static void s_messy(void)
{
    const char *dept = "446300002";
    CHECK(h_department(dept, "发布测试 隔离部门") == 0, "department.add");
    char resource[33];
    if (!tp_entry(dept, "重点企业资产 发布", "dataset", "key_enterprise_assets", true, resource))
        return;
    size_t len;
    char *data = tp_read("key_enterprise_assets.messy.gb18030.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .encoding = "gb18030"};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    odp_client_destroy(&c);
    free(data);
    CHECK(st == 200, "push: %d %s", st, res.code);
    if (st != 200 || !tp_checked(res.upload))
        return;
    int64_t upload = res.upload;
    /*  Before anything is handled: refused, naming the quarantine and the sign-off. */
    odp_reply_t rep;
    st = s_publish(NULL, resource, 0, &rep);
    char msg[1000] = "";
    odp_v_cstr(&rep.err.message, msg, sizeof msg);
    CHECK(st == 409 && strcmp(h_err_code(&rep), "INVALID_STATE") == 0 &&
              strstr(msg, "quarantine_handled") && strstr(msg, "approved_signoff"),
          "release with open cases: %d %s %s", st, h_err_code(&rep), msg);
    odp_reply_free(&rep);

    PGconn *pg = h_pg_super();
    char sql[900];
    /*  A staged row with a uscc finding gets a corrected value; another staged row is
        dropped; every other case is released. */
    snprintf(sql, sizeof sql,
             "SELECT f.row_no, f.field FROM reviewer.findings f WHERE f.upload = %lld AND "
             "f.check_name = 'uscc' LIMIT 1",
             (long long)upload);
    PGresult *r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "no uscc finding");
    int64_t corrected = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    char field[64] = "";
    if (PQntuples(r) == 1)
        snprintf(field, sizeof field, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    snprintf(sql, sizeof sql,
             "SELECT q.row_no FROM reviewer.quarantine q WHERE q.upload = %lld AND q.row_no <> "
             "%lld AND EXISTS (SELECT 1 FROM registrar.stage_u%lld s WHERE s.row_no = q.row_no) "
             "ORDER BY q.row_no LIMIT 1",
             (long long)upload, (long long)corrected, (long long)upload);
    int64_t dropped = h_pg_int(pg, sql);
    CHECK(corrected > 0 && dropped > 0, "rows to correct (%lld) and drop (%lld)",
          (long long)corrected, (long long)dropped);
    snprintf(sql, sizeof sql,
             "SELECT row_no FROM reviewer.quarantine WHERE upload = %lld ORDER BY row_no",
             (long long)upload);
    r = PQexec(pg, sql);
    odp_client_t *rv = h_client("reviewer", NULL);
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        int64_t row = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        odp_quarantine_handle_t m = {0};
        m.upload = odp_v_int(upload);
        m.row = odp_v_int(row);
        m.outcome = odp_v_str(row == corrected ? "corrected"
                              : row == dropped ? "dropped"
                                               : "released");
        m.comment = odp_v_str("发布前处理");
        if (row == corrected)
            m.new_value = odp_v_str("91440100MA5A000013");
        st = h_call(rv, &odp_def_quarantine_handle, &m, &rep);
        CHECK(st == 200, "handle row %lld: %d %s", (long long)row, st, h_err_code(&rep));
        odp_reply_free(&rep);
    }
    PQclear(r);
    odp_client_destroy(&rv);
    /*  Handled but not signed off: refused, naming the sign-off only. */
    st = s_publish(NULL, resource, 0, &rep);
    odp_v_cstr(&rep.err.message, msg, sizeof msg);
    CHECK(st == 409 && strstr(msg, "approved_signoff") && !strstr(msg, "quarantine_handled"),
          "release without sign-off: %d %s", st, msg);
    odp_reply_free(&rep);
    /*  Counted ahead while it was reviewed: the release corrects those counts by its
        dropped and corrected rows instead of counting again. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.index_ahead WHERE upload = %lld AND counted",
             (long long)upload);
    int64_t counted = 0;
    for (int i = 0; i < 100 && counted != 1; i++)
        if ((counted = h_pg_int(pg, sql)) != 1)
            usleep(100 * 1000);
    CHECK(counted == 1, "the version was not counted ahead in 10 s");
    s_counts_from_push(pg, upload);
    if (s_approve(upload) != 200)
        return;
    int64_t rel = s_release(resource, 0);
    if (!rel)
        return;
    snprintf(sql, sizeof sql,
             "SET search_path = publisher; SELECT facet_query(%lld, 'publisher.r%lld')",
             (long long)upload, (long long)rel);
    r = PQexec(pg, sql);
    char *full = PQresultStatus(r) == PGRES_TUPLES_OK ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    CHECK(full, "facet_query");
    size_t fsize = 2 * strlen(full ? full : "") + 1000;
    char *cmp = malloc(fsize);
    snprintf(cmp, fsize,
             "WITH g AS (%s), f AS (SELECT field, value, count AS n FROM publisher.facets WHERE "
             "release = %lld UNION ALL SELECT NULL, NULL, rows FROM publisher.releases WHERE id "
             "= %lld) SELECT count(*) FROM ((SELECT * FROM f EXCEPT ALL SELECT * FROM g) UNION "
             "ALL (SELECT * FROM g EXCEPT ALL SELECT * FROM f)) d",
             full ? full : "SELECT 1", (long long)rel, (long long)rel);
    CHECK(h_pg_int(pg, cmp) == 0, "the release's rows and facets differ from a full count");
    free(cmp);
    free(full);
    PGconn *q = h_pg_role("query");
    char st5[6];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ((SELECT row_no FROM publisher.r%lld EXCEPT ALL SELECT row_no "
             "FROM registrar.stage_u%lld WHERE row_no <> %lld) UNION ALL (SELECT row_no FROM "
             "registrar.stage_u%lld WHERE row_no <> %lld EXCEPT ALL SELECT row_no FROM "
             "publisher.r%lld)) d",
             (long long)rel, (long long)upload, (long long)dropped, (long long)upload,
             (long long)dropped, (long long)rel);
    CHECK(h_pg_int(pg, sql) == 0, "the public rows are not the staged rows less the dropped one");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.r%lld WHERE row_no = %lld AND \"%s\"::text = "
             "'91440100MA5A000013'",
             (long long)rel, (long long)corrected, field);
    CHECK(s_as(q, sql, st5) == 1, "the corrected value is not public (%s)", st5);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM publisher.r%lld WHERE row_no = %lld",
             (long long)rel, (long long)dropped);
    CHECK(s_as(q, sql, st5) == 0, "the dropped row is public");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.attempts WHERE resource = '%s' AND outcome = "
             "'refused' AND reasons LIKE '%%approved_signoff%%'",
             resource);
    CHECK(h_pg_int(pg, sql) == 2, "the two refusals are not both logged with their reason");
    PQfinish(q);
    PQfinish(pg);
}

/*  A not_open entry is refused naming it; a provider may not release at all. */
static void s_refusals(void)
{
    const char *dept = "446300003";
    CHECK(h_department(dept, "发布测试 不开放部门") == 0, "department.add");
    char resource[33];
    if (!tp_entry(dept, "不予开放 数据", "dataset", s_dict(), true, resource))
        return;
    size_t len;
    char *csv = s_csv("v1", 10, &len);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    free(csv);
    if (!upload || !tp_checked(upload) || s_approve(upload) != 200)
        return;
    odp_reply_t rep;
    int st = s_publish(h_keyfile(dept), resource, 1, &rep);
    CHECK(st == 403 && strcmp(h_err_code(&rep), "FORBIDDEN") == 0, "a provider's release: %d %s",
          st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(resource);
    u.open_type = odp_v_str("not_open");
    st = h_call(c, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "catalog.update to not_open: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    st = s_publish(NULL, resource, 1, &rep);
    char msg[1000] = "", field[65] = "";
    odp_v_cstr(&rep.err.message, msg, sizeof msg);
    odp_v_cstr(&rep.err.field, field, sizeof field);
    CHECK(st == 409 && strstr(msg, "not_not_open") && strcmp(field, "not_not_open") == 0,
          "a not_open release: %d %s field %s", st, msg, field);
    odp_reply_free(&rep);
}

/*  ---- the switch under a reader ---------------------------------------------------------- */

typedef struct {
    const char *resource;
    volatile int stop;
    int64_t reads, errors, gaps, mixes, v1, v2;
    char last_error[200];
} s_reader_t;

/*  As the query service would: find the current release, count its rows by version. */
static void *s_reader(void *arg)
{
    s_reader_t *rd = arg;
    PGconn *q = h_pg_role("query");
    char sql[300];
    while (!rd->stop) {
        const char *vals[1] = {rd->resource};
        PGresult *r = PQexecParams(q,
                                   "SELECT relation FROM publisher.releases WHERE resource = $1 "
                                   "AND table_name = 'main' AND state = 'current'",
                                   1, NULL, vals, NULL, NULL, 0);
        rd->reads++;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rd->errors++;
            snprintf(rd->last_error, sizeof rd->last_error, "%s", PQresultErrorMessage(r));
        } else if (PQntuples(r) != 1) {
            rd->gaps++;
        } else {
            snprintf(sql, sizeof sql, "SELECT count(*), count(DISTINCT ver), min(ver) FROM %s",
                     PQgetvalue(r, 0, 0));
            PGresult *c = PQexec(q, sql);
            if (PQresultStatus(c) != PGRES_TUPLES_OK) {
                rd->errors++;
                snprintf(rd->last_error, sizeof rd->last_error, "%s", PQresultErrorMessage(c));
            } else {
                int64_t n = strtoll(PQgetvalue(c, 0, 0), NULL, 10);
                bool one = strcmp(PQgetvalue(c, 0, 1), "1") == 0;
                const char *ver = PQgetvalue(c, 0, 2);
                if (one && n == 2000 && strcmp(ver, "v1") == 0)
                    rd->v1++;
                else if (one && n == 3000 && strcmp(ver, "v2") == 0)
                    rd->v2++;
                else
                    rd->mixes++;
            }
            PQclear(c);
        }
        PQclear(r);
    }
    PQfinish(q);
    return NULL;
}

static void s_switch(void)
{
    const char *dept = "446300004";
    CHECK(h_department(dept, "发布测试 切换部门") == 0, "department.add");
    char resource[33];
    if (!s_entry_with(dept, "切换 数据", 2000, resource))
        return;
    s_reader_t rd = {.resource = resource};
    pthread_t th;
    pthread_create(&th, NULL, s_reader, &rd);
    usleep(300 * 1000);
    size_t len;
    char *csv = s_csv("v2", 3000, &len);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    free(csv);
    int64_t rel = 0;
    /*  Reviewed, not decided yet: the publisher has the registrar index it already (row_no,
        the unique id, the date; not the enumerated ver of three values). */
    if (upload && tp_checked(upload)) {
        PGconn *pg = h_pg_super();
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pg_index WHERE indrelid = 'registrar.stage_u%lld'::regclass",
                 (long long)upload);
        int64_t n = 0;
        for (int i = 0; i < 100 && n < 3; i++) {
            n = h_pg_int(pg, sql);
            if (n < 3)
                usleep(100 * 1000);
        }
        CHECK(n == 3, "%lld indexes built ahead of the decision, not 3", (long long)n);
        PQfinish(pg);
        if (s_approve(upload) == 200)
            rel = s_release(resource, 2);
    }
    usleep(300 * 1000);
    rd.stop = 1;
    pthread_join(th, NULL);
    CHECK(rd.errors == 0 && rd.gaps == 0 && rd.mixes == 0,
          "a reader saw %lld errors (%s), %lld gaps, %lld mixes in %lld reads",
          (long long)rd.errors, rd.last_error, (long long)rd.gaps, (long long)rd.mixes,
          (long long)rd.reads);
    CHECK(rd.v1 > 0 && rd.v2 > 0, "the reader saw v1 %lld times and v2 %lld times",
          (long long)rd.v1, (long long)rd.v2);
    if (!rel)
        return;
    /*  Version 1 stays retrievable by number, superseded. */
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_show_t m = {0};
    m.resource = odp_v_str(resource);
    m.version = odp_v_int(1);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_release_show, &m, &rep);
    char state[17] = "", relation[64] = "";
    tp_str(&rep, "state", state, sizeof state);
    tp_str(&rep, "relation", relation, sizeof relation);
    CHECK(st == 200 && strcmp(state, "superseded") == 0 && h_int(&rep, "rows") == 2000,
          "release.show v1: %d %s rows %lld", st, state, (long long)h_int(&rep, "rows"));
    const msgpack_object *attempts = odp_map_get(&rep.obj, "attempts");
    CHECK(attempts && attempts->type == MSGPACK_OBJECT_ARRAY && attempts->via.array.size == 2,
          "not two attempts logged for the table");
    odp_reply_free(&rep);
    PGconn *q = h_pg_role("query");
    char sql[200], st5[6];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE ver = 'v1'", relation);
    CHECK(s_as(q, sql, st5) == 2000, "odp_query cannot read v1 by number (%s)", st5);
    /*  Facets of v2, counted at release. */
    snprintf(sql, sizeof sql,
             "SELECT count FROM publisher.facets WHERE release = %lld AND field = 'ver' AND "
             "value = 'v2'",
             (long long)rel);
    CHECK(s_as(q, sql, st5) == 3000, "the facet ver=v2 is not 3000 (%s)", st5);
    PQfinish(q);
    odp_client_destroy(&c);
}

/*  Withdrawal stops serving at once; restoring brings the same release back. */
static void s_withdraw(void)
{
    const char *dept = "446300005";
    CHECK(h_department(dept, "发布测试 撤回部门") == 0, "department.add");
    char resource[33];
    if (!s_entry_with(dept, "撤回 数据", 50, resource))
        return;
    PGconn *pg = h_pg_super();
    PGconn *q = h_pg_role("query");
    char sql[300], st5[6];
    snprintf(sql, sizeof sql,
             "SELECT id FROM publisher.releases WHERE resource = '%s' AND state = 'current'",
             resource);
    int64_t rel = h_pg_int(pg, sql);
    char read[100];
    snprintf(read, sizeof read, "SELECT count(*) FROM publisher.r%lld", (long long)rel);
    CHECK(s_as(q, read, st5) == 50, "not readable before withdrawal (%s)", st5);
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_withdraw_t w = {0};
    w.resource = odp_v_str(resource);
    w.reason = odp_v_str("发现个人信息，暂停开放");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_release_withdraw, &w, &rep);
    CHECK(st == 200, "release.withdraw: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_as(q, read, st5) == -1 && strcmp(st5, "42501") == 0,
          "a withdrawn release is still served (%s)", st5);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.entries WHERE resource = '%s' AND state = "
             "'withdrawn' AND current_release IS NULL AND withdrawn_reason <> ''",
             resource);
    CHECK(h_pg_int(pg, sql) == 1, "the entry is not withdrawn with its reason");
    odp_release_restore_t rs = {0};
    rs.resource = odp_v_str(resource);
    st = h_call(c, &odp_def_release_restore, &rs, &rep);
    CHECK(st == 200, "release.restore: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_as(q, read, st5) == 50, "not readable after restoring (%s)", st5);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.outbox WHERE topic IN ('release.withdrawn', "
             "'release.restored') AND position(convert_to('%s', 'UTF8') in body) > 0",
             resource);
    CHECK(h_pg_int(pg, sql) >= 2, "no withdrawn/restored events");
    st = h_call(c, &odp_def_release_restore, &rs, &rep);
    CHECK(st == 409, "restoring twice: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    PQfinish(q);
    PQfinish(pg);
}

/*  A publisher killed in the middle of a release: afterwards the old release is current,
    and the release goes through once the publisher is back. */
static void s_killed(void)
{
    const char *dept = "446300006";
    CHECK(h_department(dept, "发布测试 中断部门") == 0, "department.add");
    char resource[33];
    if (!s_entry_with(dept, "中断 数据", 100, resource))
        return;
    size_t len;
    char *csv = s_csv("v2", 120, &len);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    free(csv);
    if (!upload || !tp_checked(upload) || s_approve(upload) != 200)
        return;
    h_service_stop("publisher");
    const char *slow[] = {"ODP_PUBLISHER_RELEASE_PAUSE_MS=4000", NULL};
    CHECK(h_service_start("publisher", slow) > 0, "publisher restart (slow)");
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_publish_t m = {0};
    m.resource = odp_v_str(resource);
    m.version = odp_v_int(2);
    odp_reply_t rep;
    int rc = odp_client_call(c, &odp_def_release_publish, &m, 1500, &rep);
    CHECK(rc < 0, "the slow release answered within 1.5 s");
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    h_service_kill9("publisher");
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(version::text, ',') FROM publisher.releases WHERE resource = "
             "'%s' AND state = 'current'",
             resource);
    PGresult *r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0,
          "after the kill the current versions are '%s', not 1", PQgetvalue(r, 0, 0));
    PQclear(r);
    CHECK(h_service_start("publisher", NULL) > 0, "publisher restart");
    CHECK(s_release(resource, 2) > 0, "the release after the restart");
    r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "2") == 0,
          "after the restart the current versions are '%s', not 2", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
}

/*  Under an automatic policy the approval alone releases the version. */
static void s_automatic(void)
{
    const char *dept = "446300007";
    CHECK(h_department(dept, "发布测试 自动部门") == 0, "department.add");
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_policy_t p = {0};
    p.scope = odp_v_str(dept);
    p.automatic = odp_v_bool(true);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_release_policy, &p, &rep);
    CHECK(st == 200, "release.policy: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    char resource[33];
    if (!tp_entry(dept, "自动 数据", "dataset", s_dict(), true, resource))
        return;
    size_t len;
    char *csv = s_csv("v1", 30, &len);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    free(csv);
    if (!upload || !tp_checked(upload) || s_approve(upload) != 200)
        return;
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.releases WHERE resource = '%s' AND state = "
             "'current' AND rows = 30 AND released_by = 'service:publisher'",
             resource);
    int64_t n = 0;
    for (int i = 0; i < 100 && n != 1; i++) {
        n = h_pg_int(pg, sql);
        if (n != 1)
            usleep(100 * 1000);
    }
    CHECK(n == 1, "the approved version was not released automatically in 10 s");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.outbox WHERE topic = 'release.published' AND "
             "position(convert_to('%s', 'UTF8') in body) > 0",
             resource);
    CHECK(h_pg_int(pg, sql) == 1, "no release.published event");
    PQfinish(pg);
}

/*  ---- the catalogue -------------------------------------------------------------------------- */

/*  An interface or app entry of dept, registered. */
static bool s_service_entry(const char *dept, const char *title, const char *form,
                            char resource[33])
{
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    odp_client_t *ops = h_client("registrar", NULL);
    msgpack_object kw, kwi[2];
    const char *words[] = {"接口", "应用"};
    odp_catalog_add_t m = {0};
    m.title = odp_v_str(title);
    m.summary = odp_v_str("发布测试的服务条目");
    m.keywords = tp_strs(&kw, kwi, words, 2);
    m.domain = odp_v_str("roads_transport");
    m.content_kind = odp_v_str("dataset");
    m.delivery_form = odp_v_str(form);
    m.open_type = odp_v_str("unconditional");
    m.update_cycle = odp_v_str("realtime");
    m.contact = odp_v_str("020-87654321");
    m.location = odp_v_str("交通数据中心");
    m.endpoint = odp_v_str("https://api.example.org/transport/bus-positions");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_catalog_add, &m, &rep);
    CHECK(st == 200, "catalog.add %s: %d %s", form, st, h_err_code(&rep));
    tp_str(&rep, "resource", resource, 33);
    odp_reply_free(&rep);
    if (st == 200) {
        odp_registration_request_t rq = {0};
        rq.resource = odp_v_str(resource);
        st = h_call(c, &odp_def_registration_request, &rq, &rep);
        odp_reply_free(&rep);
    }
    if (st == 200) {
        odp_registration_decide_t d = {0};
        d.resource = odp_v_str(resource);
        d.approve = odp_v_bool(true);
        st = h_call(ops, &odp_def_registration_decide, &d, &rep);
        odp_reply_free(&rep);
    }
    CHECK(st == 200, "registration of %s: %d", form, st);
    odp_client_destroy(&c);
    odp_client_destroy(&ops);
    return st == 200;
}

/*  catalogue.export into path; the reply's through, -1 on failure. */
static int64_t s_export(const char *format, int64_t since, const char *path, int64_t *entries)
{
    odp_client_t *c = h_client("publisher", NULL);
    odp_catalogue_export_t m = {0};
    m.format = odp_v_str(format);
    if (since >= 0)
        m.since = odp_v_int(since);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_catalogue_export, &m, &rep);
    CHECK(st == 200, "catalogue.export %s: %d %s", format, st, h_err_code(&rep));
    int64_t through = -1;
    if (st == 200) {
        through = h_int(&rep, "through");
        *entries = h_int(&rep, "entries");
        const msgpack_object *doc = odp_map_get(&rep.obj, "document");
        FILE *f = path ? fopen(path, "w") : NULL;
        if (f) {
            fwrite(doc->via.str.ptr, 1, doc->via.str.size, f);
            fclose(f);
        }
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return through;
}

/*  Entries of every kind released, exported as DCAT-AP for the SHACL check that
    tests/run.sh runs on the files (tests/shacl); --since returns exactly what changed. */
static void s_catalogue(void)
{
    const char *dept = "446300008";
    CHECK(h_department(dept, "发布测试 目录部门") == 0, "department.add");
    char ds[33], file[33], api[33], app[33];
    if (!s_entry_with(dept, "目录 数据集", 20, ds))
        return;
    if (!tp_entry(dept, "目录 年度报告", "report", NULL, true, file))
        return;
    static const char pdf[] = "%PDF-1.4 a small report for the catalogue test\n";
    if (!s_push(dept, file, pdf, sizeof pdf - 1, "file", "application/pdf"))
        return;
    if (!s_service_entry(dept, "目录 公交位置接口", "query_interface", api) ||
        !s_service_entry(dept, "目录 出行应用", "app", app))
        return;
    CHECK(s_release(file, 0) > 0 && s_release(api, 0) > 0 && s_release(app, 0) > 0,
          "file, interface and app releases");
    char jl[512], ttl[512], so[512];
    snprintf(jl, sizeof jl, "%s/catalogue.jsonld", h_var());
    snprintf(ttl, sizeof ttl, "%s/catalogue.ttl", h_var());
    snprintf(so, sizeof so, "%s/catalogue.schemaorg.json", h_var());
    int64_t n1 = 0, n2 = 0, n3 = 0;
    int64_t through = s_export("jsonld", -1, jl, &n1);
    s_export("turtle", -1, ttl, &n2);
    s_export("schemaorg", -1, so, &n3);
    CHECK(through > 0 && n1 >= 4 && n1 == n2, "exports of %lld and %lld entries", (long long)n1,
          (long long)n2);
    json_error_t je;
    json_t *doc = json_load_file(so, 0, &je);
    bool found = false;
    for (size_t i = 0; i < json_array_size(doc); i++) {
        json_t *d = json_array_get(doc, i);
        if (strcmp(json_string_value(json_object_get(d, "identifier")), ds) == 0)
            found = strcmp(json_string_value(json_object_get(d, "@type")), "Dataset") == 0 &&
                    json_array_size(json_object_get(d, "distribution")) == 1;
    }
    CHECK(found, "the schema.org export has no Dataset %s with its distribution", ds);
    json_decref(doc);
    doc = json_load_file(jl, 0, &je);
    CHECK(doc && json_array_size(json_object_get(doc, "@graph")) > 10,
          "the JSON-LD export does not parse: %s", je.text);
    json_decref(doc);

    /*  Incremental: a new version of the dataset and a new entry change after through. */
    size_t len;
    char *csv = s_csv("v2", 25, &len);
    int64_t upload = s_push(dept, ds, csv, len, NULL, NULL);
    free(csv);
    if (!upload || !tp_checked(upload) || s_approve(upload) != 200 || !s_release(ds, 2))
        return;
    char other[33];
    if (!s_entry_with(dept, "目录 新数据集", 5, other))
        return;
    char since[512];
    snprintf(since, sizeof since, "%s/catalogue-since.jsonld", h_var());
    int64_t n = 0;
    int64_t through2 = s_export("jsonld", through, since, &n);
    doc = json_load_file(since, 0, &je);
    int hits = 0, datasets = 0;
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(doc, "@graph"), i, node)
    {
        json_t *types = json_object_get(node, "@type");
        if (!json_is_array(types) ||
            strcmp(json_string_value(json_array_get(types, 0)), "dcat:Dataset") != 0)
            continue;
        datasets++;
        json_t *id =
            json_object_get(json_array_get(json_object_get(node, "dct:identifier"), 0), "@value");
        if (json_is_string(id) &&
            (strcmp(json_string_value(id), ds) == 0 || strcmp(json_string_value(id), other) == 0))
            hits++;
    }
    json_decref(doc);
    CHECK(n == 2 && datasets == 2 && hits == 2 && through2 > through,
          "--since %lld gave %lld entries, %d datasets, %d of the two changed (through %lld)",
          (long long)through, (long long)n, datasets, hits, (long long)through2);
    int64_t none = 0;
    s_export("jsonld", through2, NULL, &none);
    CHECK(none == 0, "--since the last event gave %lld entries", (long long)none);
}

/*  odpctl release list --json and catalogue export --format turtle. */
static void s_odpctl(void)
{
    char bin[512], out[512], err[512];
    snprintf(bin, sizeof bin, "%s/odpctl", h_bin());
    snprintf(out, sizeof out, "%s/odpctl-release.out", h_var());
    snprintf(err, sizeof err, "%s/odpctl-release.err", h_var());
    remove(out);
    const char *list[] = {bin, "--json", "release", "list", "--state", "current", NULL};
    int rc = h_wait_exit(h_spawn(list, NULL, out, err), 10000);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    CHECK(rc == 0 && json_array_size(json_object_get(j, "items")) > 0,
          "odpctl release list exited %d without releases (%s)", rc, out);
    json_decref(j);
    snprintf(out, sizeof out, "%s/odpctl-catalogue.ttl", h_var());
    remove(out);
    const char *exp[] = {bin, "catalogue", "export", "--format", "turtle", NULL};
    rc = h_wait_exit(h_spawn(exp, NULL, out, err), 10000);
    size_t len = 0;
    char *text = NULL;
    FILE *f = fopen(out, "r");
    if (f) {
        text = calloc(1, 1 << 22);
        len = fread(text, 1, (1 << 22) - 1, f);
        fclose(f);
    }
    CHECK(rc == 0 && len > 0 && strstr(text, "a dcat:Catalog"),
          "odpctl catalogue export exited %d (%s)", rc, out);
    free(text);
}

/*  A file release meets the conditions that apply to it, each named when it fails: the
    entry's (registered, metadata, not not_open), a content hash, and an approving sign-off
    where the version was reviewed. Broken here by hand as the superuser, mended again. */
static void s_file_refusals(void)
{
    const char *dept = "448200001";
    CHECK(h_department(dept, "发布测试 文件条件部门") == 0, "department.add");
    char file[33];
    if (!tp_entry(dept, "文件条件 年度报告", "report", NULL, true, file))
        return;
    static const char pdf[] = "%PDF-1.4 a report whose release is checked\n";
    int64_t upload = s_push(dept, file, pdf, sizeof pdf - 1, "file", "application/pdf");
    if (!upload)
        return;
    PGconn *pg = h_pg_super();
    char sql[1200];
    snprintf(sql, sizeof sql,
             "BEGIN; UPDATE registrar.resources SET open_type = 'not_open', summary = '' WHERE "
             "resource = '%s'; UPDATE registrar.uploads SET sha256 = '' WHERE id = %lld; "
             "INSERT INTO reviewer.reviews (upload, resource, table_name, version, department, "
             "state, rows_received, checked_at) SELECT id, resource, table_name, version, "
             "'%s', 'in_review', 0, now() FROM registrar.uploads WHERE id = %lld; COMMIT",
             file, (long long)upload, dept, (long long)upload);
    PGresult *r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "breaking the file's conditions: %s",
          PQresultErrorMessage(r));
    PQclear(r);
    odp_reply_t rep;
    int st = s_publish(NULL, file, 0, &rep);
    char msg[1000] = "", field[65] = "";
    odp_v_cstr(&rep.err.message, msg, sizeof msg);
    odp_v_cstr(&rep.err.field, field, sizeof field);
    CHECK(st == 409 && strcmp(h_err_code(&rep), "INVALID_STATE") == 0,
          "the broken file release: %d %s %s", st, h_err_code(&rep), msg);
    static const char *const named[] = {"not_not_open", "metadata_complete", "content_hash",
                                        "approved_signoff"};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        CHECK(strstr(msg, named[i]), "the refusal does not name %s: %s", named[i], msg);
    CHECK(strcmp(field, "not_not_open") == 0, "the refusal's field is %s", field);
    odp_reply_free(&rep);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.attempts WHERE resource = '%s' AND outcome = "
             "'refused' AND reasons LIKE '%%content_hash%%' AND reasons LIKE "
             "'%%approved_signoff%%'",
             file);
    CHECK(h_pg_int(pg, sql) == 1, "the file's refusal is not logged with its reasons");
    /*  Mended one by one: the hash and the entry; the review still stands in the way. */
    snprintf(sql, sizeof sql,
             "UPDATE registrar.resources SET open_type = 'unconditional', summary = '年度报告' "
             "WHERE resource = '%s'; UPDATE registrar.uploads SET sha256 = "
             "encode(sha256('x'), 'hex') WHERE id = %lld",
             file, (long long)upload);
    r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "mending: %s", PQresultErrorMessage(r));
    PQclear(r);
    st = s_publish(NULL, file, 0, &rep);
    odp_v_cstr(&rep.err.message, msg, sizeof msg);
    odp_v_cstr(&rep.err.field, field, sizeof field);
    CHECK(st == 409 && strcmp(field, "approved_signoff") == 0 && !strstr(msg, "content_hash"),
          "a reviewed file without a sign-off: %d %s %s", st, field, msg);
    odp_reply_free(&rep);
    snprintf(sql, sizeof sql,
             "UPDATE reviewer.reviews SET state = 'approved' WHERE upload = %lld; INSERT INTO "
             "reviewer.signoffs (upload, decision, decided_by, findings) VALUES (%lld, "
             "'approved', 'operations:test', '{}')",
             (long long)upload, (long long)upload);
    r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "the sign-off: %s", PQresultErrorMessage(r));
    PQclear(r);
    CHECK(s_release(file, 0) > 0, "the file with every condition met");
    PQfinish(pg);
}

/*  Health answered within the client's 5 s, n times over about n * 300 ms. */
static int s_healthy_while(int n)
{
    odp_client_t *c = h_client("publisher", NULL);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        odp_health_t m = {0};
        odp_reply_t rep;
        if (h_call(c, &odp_def_health, &m, &rep) == 200)
            ok++;
        odp_reply_free(&rep);
        usleep(300 * 1000);
    }
    odp_client_destroy(&c);
    return ok;
}

/*  The registrar stopped (SIGSTOP: its port still accepts, nothing answers) while the
    publisher must ask it for a version's indexes, from its timer and from a release: the
    publisher keeps answering, the release fails UNAVAILABLE instead of hanging, and once
    the registrar runs again the release goes through. */
static void s_registrar_stopped(void)
{
    const char *dept = "448200002";
    CHECK(h_department(dept, "发布测试 登记停顿部门") == 0, "department.add");
    char resource[33];
    if (!tp_entry(dept, "停顿 数据", "dataset", s_dict(), true, resource))
        return;
    size_t len;
    char *csv = s_csv("v1", 40, &len);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    free(csv);
    if (!upload || !tp_checked(upload) || s_approve(upload) != 200)
        return;
    PGconn *pg = h_pg_super();
    char sql[300];
    /*  Built ahead (from review.started); then forgotten, so that both ask again. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.index_ahead WHERE upload = %lld AND ready_at IS "
             "NOT NULL",
             (long long)upload);
    int64_t ready = 0;
    for (int i = 0; i < 100 && ready != 1; i++)
        if ((ready = h_pg_int(pg, sql)) != 1)
            usleep(100 * 1000);
    CHECK(ready == 1, "the version's indexes were not built ahead in 10 s");
    pid_t registrar = h_service_pid("registrar");
    CHECK(registrar > 0 && kill(registrar, SIGSTOP) == 0, "SIGSTOP the registrar");
    snprintf(sql, sizeof sql,
             "UPDATE publisher.index_ahead SET ready_at = NULL, next_at = now() WHERE upload = "
             "%lld",
             (long long)upload);
    PQclear(PQexec(pg, sql));
    int ok = s_healthy_while(10);
    CHECK(ok == 10, "the publisher answered %d of 10 health requests with the registrar stopped",
          ok);
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_publish_t m = {0};
    m.resource = odp_v_str(resource);
    odp_reply_t rep;
    int rc = odp_client_call(c, &odp_def_release_publish, &m, 30000, &rep);
    char field[65] = "";
    odp_v_cstr(&rep.err.field, field, sizeof field);
    CHECK(rc == 0 && rep.status == 503 && strcmp(h_err_code(&rep), "UNAVAILABLE") == 0 &&
              strcmp(field, "indexes") == 0,
          "a release with the registrar stopped: rc %d, %d %s field %s", rc, rep.status,
          h_err_code(&rep), field);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    ok = s_healthy_while(3);
    CHECK(ok == 3, "after the failed release the publisher answered %d of 3 health requests", ok);
    CHECK(kill(registrar, SIGCONT) == 0, "SIGCONT the registrar");
    CHECK(s_release(resource, 1) > 0, "the release once the registrar runs again");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.index_ahead WHERE upload = %lld AND ready_at IS "
             "NOT NULL",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 1, "the indexes are not recorded ready after the release");
    PQfinish(pg);
}

/*  A text value's order on a staging table, through the release's view and the query
    service: code-point order, exactly what the database's own collation (C.UTF-8) gives
    and what the registrar's collation code_point gives at memcmp's cost; and a filter or a
    sort on an indexed text field can use its index (the index and the query agree on the
    collation). The builds and counts ahead wait for the review's checks, then run on the
    registrar's usual connections. */
static void s_code_point(void)
{
    const char *dept = "448900001";
    CHECK(h_department(dept, "发布测试 码位排序部门") == 0, "department.add");
    char dict[512];
    snprintf(dict, sizeof dict, "%s/code-point.dict.json", h_var());
    json_t *d = json_pack("{s:[{s:s,s:s,s:b,s:b},{s:s,s:s,s:b}]}", "fields", "name", "id", "type",
                          "integer", "required", 1, "unique", 1, "name", "name", "type", "text",
                          "unique", 1);
    CHECK(d && json_dump_file(d, dict, 0) == 0, "cannot write %s", dict);
    json_decref(d);
    char resource[33];
    if (!tp_entry(dept, "码位 排序", "dataset", dict, true, resource))
        return;
    /*  In code-point order; pushed shuffled. ASCII upper before lower, Latin-1 and Greek,
        CJK (U+4E2D, U+5E7F), a full-width letter (U+FF5A), then beyond the BMP: an emoji
        (U+1F600) and CJK Extension B (U+20000). */
    static const char *const order[] = {"ABC", "Zeta", "a b",    "abc", "z", "éclair", "Ω",
                                        "中",  "中文", "广州市", "ｚ",  "😀", "𠀀字"};
    enum { N = sizeof order / sizeof order[0] };
    static const int shuffled[N] = {7, 12, 0, 9, 3, 11, 5, 1, 10, 6, 2, 8, 4};
    char csv[1024];
    size_t len = (size_t)snprintf(csv, sizeof csv, "id,name\n");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(csv + len, sizeof csv - len, "%d,%s\n", i + 1, order[shuffled[i]]);
    /*  The review's checks wait for a lock the test holds (check_rows empties the version's
        quality_scores first): meanwhile the version is queued for its indexes and counts,
        and neither starts. */
    PGconn *lock = h_pg_super();
    PGresult *r = PQexec(lock, "BEGIN; LOCK TABLE reviewer.quality_scores IN SHARE MODE");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "lock: %s", PQerrorMessage(lock));
    PQclear(r);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    PGconn *pg = h_pg_super();
    char sql[1000];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM publisher.index_ahead WHERE upload = %lld",
             (long long)upload);
    int64_t queued = 0;
    for (int i = 0; i < 100 && queued != 1; i++)
        if ((queued = h_pg_int(pg, sql)) != 1)
            usleep(100 * 1000);
    CHECK(queued == 1, "the version was not queued for its indexes in 10 s");
    usleep(1000 * 1000); /* five of the publisher's ticks */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.index_ahead WHERE upload = %lld AND started_at IS "
             "NULL AND counted IS NULL AND NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname "
             "= 'registrar' AND tablename = 'stage_u%lld')",
             (long long)upload, (long long)upload);
    CHECK(h_pg_int(pg, sql) == 1, "indexes or counts started while the review's checks ran");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.reviews WHERE upload = %lld AND "
             "checked_at IS NULL",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 1, "the review did not wait for the test's lock");
    PQclear(PQexec(lock, "COMMIT"));
    PQfinish(lock);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.index_ahead WHERE upload = %lld AND ready_at IS "
             "NOT NULL AND counted",
             (long long)upload);
    int64_t ready = 0;
    for (int i = 0; i < 100 && ready != 1; i++)
        if ((ready = h_pg_int(pg, sql)) != 1)
            usleep(100 * 1000);
    CHECK(ready == 1, "the version was not indexed and counted in 10 s after its checks");
    int64_t rel =
        upload && tp_checked(upload) && s_approve(upload) == 200 ? s_release(resource, 1) : 0;
    if (!rel) {
        PQfinish(pg);
        return;
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'registrar' "
             "AND table_name = 'stage_u%lld' AND column_name = 'name' AND collation_name = "
             "'code_point'",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 1, "the staging table's text column is not in code_point");
    /*  The view's order, the database collation's order and the expected one agree. */
    char want[300];
    size_t off = 0;
    for (int i = 0; i < N; i++)
        off += (size_t)snprintf(want + off, sizeof want - off, "%s%s", i ? "\x1f" : "", order[i]);
    snprintf(sql, sizeof sql,
             "SELECT string_agg(name, E'\\x1f' ORDER BY name), string_agg(name, E'\\x1f' "
             "ORDER BY name COLLATE \"default\") FROM publisher.r%lld",
             (long long)rel);
    r = PQexec(pg, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    CHECK(ok && strcmp(PQgetvalue(r, 0, 0), want) == 0, "ORDER BY name on the view: %s",
          ok ? PQgetvalue(r, 0, 0) : PQresultErrorMessage(r));
    CHECK(ok && strcmp(PQgetvalue(r, 0, 1), want) == 0,
          "ORDER BY name in the database's collation: %s", ok ? PQgetvalue(r, 0, 1) : "-");
    PQclear(r);
    /*  Case folding is the database's too (LC_CTYPE C.UTF-8): ILIKE, which the query
        service's full-text q uses, finds éclair and Ω in upper case; under "C" it would
        fold ASCII only. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.r%lld WHERE name ILIKE '%%ÉCLAIR%%' OR name "
             "ILIKE 'ω' OR name ILIKE 'Ｚ'",
             (long long)rel);
    CHECK(h_pg_int(pg, sql) == 3, "ILIKE folds the case of %lld of éclair, Ω, ｚ, not 3",
          (long long)h_pg_int(pg, sql));
    /*  The query service sorts the same way. */
    odp_client_t *qc = h_client("query", NULL);
    odp_datastore_search_t m = {0};
    m.resource = odp_v_str(resource);
    m.sort = odp_v_str("name");
    m.limit = odp_v_int(100);
    odp_reply_t rep;
    int st = h_call(qc, &odp_def_datastore_search, &m, &rep);
    const msgpack_object *recs = st == 200 ? odp_map_get(&rep.obj, "records") : NULL;
    CHECK(recs && recs->type == MSGPACK_OBJECT_ARRAY && recs->via.array.size == N,
          "datastore.search sorted by name: %d %s", st, h_err_code(&rep));
    for (uint32_t i = 0; recs && i < recs->via.array.size && i < N; i++) {
        const msgpack_object *v = odp_map_get(&recs->via.array.ptr[i], "name");
        bool same = v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(order[i]) &&
                    memcmp(v->via.str.ptr, order[i], v->via.str.size) == 0;
        CHECK(same, "datastore.search sorted by name: record %u is not %s", i, order[i]);
    }
    odp_reply_free(&rep);
    odp_client_destroy(&qc);
    /*  The query service's shapes of statement (a parameter's collation is the default,
        which gives way to the column's): the index serves an equality, a range and an
        order on the field. */
    static const char *const shapes[] = {"WHERE name = $1 ORDER BY row_no LIMIT 100",
                                         "WHERE name >= $1 ORDER BY name, row_no LIMIT 100",
                                         "WHERE $1 <> '' ORDER BY name DESC, row_no LIMIT 20"};
    PQclear(PQexec(pg, "SET enable_seqscan = off"));
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char shape[300], index[64];
        snprintf(shape, sizeof shape, "SELECT * FROM publisher.r%lld %s", (long long)rel,
                 shapes[i]);
        snprintf(sql, sizeof sql, "PREPARE s%zu (text) AS %s", i, shape);
        PQclear(PQexec(pg, sql));
        snprintf(sql, sizeof sql, "EXPLAIN EXECUTE s%zu ('中文')", i);
        r = PQexec(pg, sql);
        snprintf(index, sizeof index, "stage_u%lld_a3", (long long)upload);
        bool uses = false;
        for (int k = 0; PQresultStatus(r) == PGRES_TUPLES_OK && k < PQntuples(r); k++)
            uses = uses || strstr(PQgetvalue(r, k, 0), index) != NULL;
        CHECK(uses, "%s does not use %s", shape, index);
        PQclear(r);
    }
    /*  Ahead of the release (no release waited for them), on the usual connections: three
        (ODP_REGISTRAR_INDEX_CONNECTIONS) for ANALYZE and the indexes of row_no, id and name,
        not the one connection of a build in the background. */
    char path[600];
    snprintf(path, sizeof path, "%s/log/registrar.log", h_var());
    FILE *f = fopen(path, "r");
    char line[1024], key[64];
    snprintf(key, sizeof key, "event=stage.indexed upload=%lld ", (long long)upload);
    bool found = false, usual = false;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, key)) {
            found = true;
            usual = strstr(line, " connections=3 ") != NULL;
        }
    if (f)
        fclose(f);
    CHECK(found && usual, "the builds ahead: %s",
          found ? "not on three connections" : "not logged");
    PQfinish(pg);
}

/*  The one text value of sql (malloc'd), NULL on error. */
static char *s_pg_str(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    char *v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                  ? strdup(PQgetvalue(r, 0, 0))
                  : NULL;
    PQclear(r);
    return v;
}

/*  datastore.search of resource with filters given as JSON (NULL: none) and sort: the
    status, the number of records in *n. */
static int s_search(const char *resource, const char *filters, const char *sort, int64_t *n)
{
    odp_client_t *qc = h_client("query", NULL);
    odp_datastore_search_t m = {0};
    m.resource = odp_v_str(resource);
    m.limit = odp_v_int(1000);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (filters) {
        json_t *j = json_loads(filters, 0, NULL);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        odp_json_pack(&pk, j);
        json_decref(j);
        m.filters = odp_v_raw(sb.data, sb.size);
    }
    if (sort)
        m.sort = odp_v_str(sort);
    odp_reply_t rep;
    int st = h_call(qc, &odp_def_datastore_search, &m, &rep);
    const msgpack_object *recs = st == 200 ? odp_map_get(&rep.obj, "records") : NULL;
    *n = recs && recs->type == MSGPACK_OBJECT_ARRAY ? (int64_t)recs->via.array.size : -1;
    odp_reply_free(&rep);
    msgpack_sbuffer_destroy(&sb);
    odp_client_destroy(&qc);
    return st;
}

/*  Which fields get an index (migrations/003_index_policy.sql): an enumerated field of 12
    values gets none - it filters, and is a facet, but is not a sort key - while one of 101
    values, the unique key and row_no get theirs; the query service permits and refuses
    sorts by the same flag. */
static void s_index_policy(void)
{
    const char *dept = "449300001";
    CHECK(h_department(dept, "发布测试 索引策略部门") == 0, "department.add");
    char dict[512];
    snprintf(dict, sizeof dict, "%s/index-policy.dict.json", h_var());
    json_t *city = json_array(), *code = json_array();
    for (int i = 1; i <= 12; i++)
        json_array_append_new(city, json_sprintf("c%02d", i));
    for (int i = 0; i <= 100; i++)
        json_array_append_new(code, json_sprintf("k%03d", i));
    json_t *d = json_pack("{s:[{s:s,s:s,s:b,s:b},{s:s,s:s,s:o},{s:s,s:s,s:o},{s:s,s:s}]}", "fields",
                          "name", "id", "type", "integer", "required", 1, "unique", 1, "name",
                          "city", "type", "text", "enum", city, "name", "code", "type", "text",
                          "enum", code, "name", "ok", "type", "boolean");
    CHECK(d && json_dump_file(d, dict, 0) == 0, "cannot write %s", dict);
    json_decref(d);
    char resource[33];
    if (!tp_entry(dept, "索引 策略", "dataset", dict, true, resource))
        return;
    enum { N = 60 };
    static const char *const oks[] = {"", "true", "false", "true"};
    char csv[N * 32 + 32];
    size_t len = (size_t)snprintf(csv, sizeof csv, "id,city,code,ok\n");
    for (int i = 1; i <= N; i++)
        len += (size_t)snprintf(csv + len, sizeof csv - len, "%d,c%02d,k%03d,%s\n", i, i % 12 + 1,
                                i % 101, oks[i % 4]);
    int64_t upload = s_push(dept, resource, csv, len, NULL, NULL);
    if (!upload || !tp_checked(upload))
        return;
    PGconn *pg = h_pg_super();
    char sql[600];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher.index_ahead WHERE upload = %lld AND counted",
             (long long)upload);
    int64_t counted = 0;
    for (int i = 0; i < 100 && counted != 1; i++)
        if ((counted = h_pg_int(pg, sql)) != 1)
            usleep(100 * 1000);
    CHECK(counted == 1, "the version was not counted ahead in 10 s");
    s_counts_from_push(pg, upload);
    int64_t rel = s_approve(upload) == 200 ? s_release(resource, 1) : 0;
    if (!rel) {
        PQfinish(pg);
        return;
    }
    snprintf(sql, sizeof sql,
             "SELECT string_agg(name || ':' || indexed || ':' || facet, ' ' ORDER BY position) "
             "FROM publisher.release_fields WHERE release = %lld",
             (long long)rel);
    char *flags = s_pg_str(pg, sql);
    CHECK(flags && strcmp(flags, "id:true:false city:false:true code:true:true ok:false:true") == 0,
          "release_fields (name:indexed:facet): %s", flags ? flags : "-");
    free(flags);
    /*  row_no (a1), id (a2) and code (a4); nothing on city (a3). */
    snprintf(sql, sizeof sql,
             "SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes WHERE "
             "schemaname = 'registrar' AND tablename = 'stage_u%lld'",
             (long long)upload);
    char *names = s_pg_str(pg, sql);
    char want[200];
    snprintf(want, sizeof want, "stage_u%lld_a1 stage_u%lld_a2 stage_u%lld_a4", (long long)upload,
             (long long)upload, (long long)upload);
    CHECK(names && strcmp(names, want) == 0, "the staging table's indexes: %s, want %s",
          names ? names : "-", want);
    free(names);
    /*  c03 is the city of ids 2, 14, 26, 38 and 50: counted as a facet, found by a filter. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) * 1000 + sum(count) + coalesce(sum(count) FILTER (WHERE value = "
             "'c03'), 0) * 100000 FROM publisher.facets WHERE release = %lld AND field = 'city'",
             (long long)rel);
    CHECK(h_pg_int(pg, sql) == 5 * 100000 + 12 * 1000 + N,
          "city's facets (values * 1000 + rows + c03's * 100000): %lld",
          (long long)h_pg_int(pg, sql));
    PQfinish(pg);
    int64_t n = 0;
    int st = s_search(resource, "{\"city\": \"c03\"}", NULL, &n);
    CHECK(st == 200 && n == 5, "filter on city: %d, %lld records", st, (long long)n);
    st = s_search(resource, NULL, "city", &n);
    CHECK(st == 422, "a sort on city (no index) is not refused: %d", st);
    st = s_search(resource, NULL, "code desc", &n);
    CHECK(st == 200 && n == N, "a sort on code (indexed): %d, %lld records", st, (long long)n);
}

const h_case_t t_publisher_cases[] = {
    {"publisher: every sample goes push -> review -> release; the public view holds the staged "
     "rows, typed, with its indexes",
     s_samples},
    {"publisher: the messy sample releases without the dropped row and with the corrected value; "
     "unhandled cases and a missing sign-off are refused by name",
     s_messy},
    {"publisher: a not_open entry is refused by name; a provider cannot release", s_refusals},
    {"publisher: v2 replaces v1 under a reader that never sees an error, a mix or a gap; v1 "
     "stays retrievable",
     s_switch},
    {"publisher: withdraw stops serving at once, restore brings it back", s_withdraw},
    {"publisher: killed mid-release and restarted, the old version stays current until the new "
     "one is",
     s_killed},
    {"publisher: an automatic policy releases on approval", s_automatic},
    {"publisher: the catalogue exports every kind of entry; --since returns exactly what changed",
     s_catalogue},
    {"publisher: odpctl release list --json and catalogue export", s_odpctl},
    {"publisher: a file release is refused naming each failed condition (not_open, metadata, "
     "content hash, a review without sign-off), then released",
     s_file_refusals},
    {"publisher: staging text in the collation code_point sorts as the database's collation "
     "does, through the view and the query service; filters and sorts use the field's index; "
     "indexes and counts ahead wait for the review's checks",
     s_code_point},
    {"publisher: an enumerated field of 12 values gets no index and is no sort key, but filters "
     "and is a facet; one of 101 values, the key and row_no are indexed",
     s_index_policy},
    {"publisher: with the registrar stopped (SIGSTOP) it answers health and a release fails "
     "UNAVAILABLE; after SIGCONT the release goes through",
     s_registrar_stopped},
    {NULL, NULL}};
