/*  Pushing datasets and files (R5.5b, R7c, R8.3c) end to end: entries are set up through
    the protocol as departments and operations do (catalog.add, dictionary.set,
    registration.request, registration.decide), pushed by a sequential pusher under the
    department's own key, and checked in the staging tables as the superuser sees them. */
#include "pushing.h"

#include "common/auth.h"
#include "common/db.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  ---- data ----------------------------------------------------------------------------- */

/*  Data rows of a CSV without quoted newlines: lines after the header. */
static int64_t s_data_rows(const char *data, size_t len)
{
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    if (len && data[len - 1] != '\n')
        lines++;
    return lines - 1;
}

/*  ---- checks ------------------------------------------------------------------------------ */

static bool s_pg_text(PGconn *pg, const char *sql, char *buf, size_t size)
{
    PGresult *r = PQexec(pg, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
    snprintf(buf, size, "%s", ok ? PQgetvalue(r, 0, 0) : "");
    if (!ok)
        printf("#   query %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

__attribute__((format(printf, 2, 3))) static int64_t s_pg_count(PGconn *pg, const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return h_pg_int(pg, sql);
}

static void s_upload_status(PGconn *pg, int64_t upload, char *buf, size_t size)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT status FROM registrar.uploads WHERE id = %lld",
             (long long)upload);
    s_pg_text(pg, sql, buf, size);
}

/*  Is there, among the registrar's events after seq from, one of topic for upload (with
    that code, when given)? */
static bool s_event_seen(int64_t from, const char *topic, int64_t upload, const char *code)
{
    odp_client_t *c = h_client("registrar", NULL);
    bool seen = false, more = true;
    for (int64_t next = from + 1; c && more && !seen;) {
        odp_events_replay_t m = {0};
        m.from = odp_v_int(next);
        odp_reply_t rep;
        more = false;
        if (h_call(c, &odp_def_events_replay, &m, &rep) == 200) {
            const msgpack_object *ev = odp_map_get(&rep.obj, "events");
            for (uint32_t i = 0; ev && i < ev->via.array.size && !seen; i++) {
                const msgpack_object *pair = ev->via.array.ptr[i].via.array.ptr;
                odp_reply_t body = {.obj = pair[1]};
                char t[48], cd[40];
                snprintf(t, sizeof t, "%.*s", (int)pair[0].via.str.size, pair[0].via.str.ptr);
                tp_str(&body, "code", cd, sizeof cd);
                seen = strcmp(t, topic) == 0 && h_int(&body, "upload") == upload &&
                       (!code || strcmp(cd, code) == 0);
            }
            more = tp_bool(&rep, "more");
            next += ev ? ev->via.array.size : 0u;
        }
        odp_reply_free(&rep);
    }
    odp_client_destroy(&c);
    return seen;
}

static int64_t s_seq(void)
{
    int64_t seq = 0;
    h_health("registrar", &seq, NULL, NULL);
    return seq;
}

/*  ---- cases ---------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *column; /* a typed column */
    const char *type;   /* its SQL type */
} s_sample_t;

static const s_sample_t s_clean_samples[] = {
    {"air_quality_daily", "AQI", "bigint"},
    {"key_enterprise_assets", "资产总额_万元", "numeric"},
    {"land_use_status", "调查日期", "date"},
    {"medical_institutions", "经度", "numeric"},
};

/*  The air quality sample's own sum of AQI and latest date, read from the CSV. */
static void s_air_facts(const char *data, int64_t *sum, char latest[11])
{
    *sum = 0;
    latest[0] = '\0';
    const char *line = strchr(data, '\n');
    while (line && line[1]) {
        line++;
        const char *date = strchr(line, ',') + 1;
        if (strncmp(date, latest, 10) > 0)
            snprintf(latest, 11, "%.10s", date);
        *sum += strtoll(strchr(date, ',') + 1, NULL, 10);
        line = strchr(line, '\n');
    }
}

static void s_clean(void)
{
    const char *dept = "441400001";
    CHECK(h_department(dept, "推送测试 清洁样本部门") == 0, "department.add");
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    PGconn *pg = h_pg_super();
    for (size_t i = 0; i < sizeof s_clean_samples / sizeof s_clean_samples[0]; i++) {
        const s_sample_t *s = &s_clean_samples[i];
        char file[128], resource[33], sql[512], got[128];
        snprintf(file, sizeof file, "%s.csv", s->name);
        size_t len;
        char *data = tp_read(file, &len);
        if (!data || !tp_entry(dept, s->name, "dataset", s->name, true, resource)) {
            free(data);
            continue;
        }
        tp_opts_t o = {.resource = resource};
        tp_result_t res;
        int st = tp_push(c, &o, data, len, &res);
        int64_t rows = s_data_rows(data, len);
        CHECK(st == 200, "%s: %s gave %d %s %s", s->name, res.step, st, res.code, res.message);
        CHECK(res.rows_received == rows && res.rows_rejected == 0 && res.rows_staged == rows,
              "%s: received %lld staged %lld rejected %lld, the file has %lld rows", s->name,
              (long long)res.rows_received, (long long)res.rows_staged,
              (long long)res.rows_rejected, (long long)rows);
        CHECK(res.version == 1 && !res.duplicate, "%s: version %lld", s->name,
              (long long)res.version);
        char want[128];
        snprintf(want, sizeof want, "registrar.stage_u%lld", (long long)res.upload);
        CHECK(strcmp(res.staging, want) == 0, "%s: staging_table %s", s->name, res.staging);
        CHECK(s_pg_count(pg, "SELECT count(*) FROM registrar.stage_u%lld", (long long)res.upload) ==
                  rows,
              "%s: the staging table does not hold %lld rows", s->name, (long long)rows);
        snprintf(sql, sizeof sql,
                 "SELECT pg_typeof(\"%s\")::text FROM registrar.stage_u%lld WHERE \"%s\" IS NOT "
                 "NULL LIMIT 1",
                 s->column, (long long)res.upload, s->column);
        CHECK(s_pg_text(pg, sql, got, sizeof got) && strcmp(got, s->type) == 0,
              "%s: column %s is %s, not %s", s->name, s->column, got, s->type);
        if (strcmp(s->name, "air_quality_daily") == 0) {
            int64_t sum;
            char latest[11];
            s_air_facts(data, &sum, latest);
            snprintf(sql, sizeof sql, "SELECT sum(\"AQI\") FROM registrar.stage_u%lld",
                     (long long)res.upload);
            CHECK(h_pg_int(pg, sql) == sum, "sum(AQI) is not the file's %lld", (long long)sum);
            snprintf(sql, sizeof sql,
                     "SELECT pg_typeof(max(\"日期\"))::text || ' ' || max(\"日期\")::text "
                     "FROM registrar.stage_u%lld",
                     (long long)res.upload);
            char expect[40];
            snprintf(expect, sizeof expect, "date %s", latest);
            CHECK(s_pg_text(pg, sql, got, sizeof got) && strcmp(got, expect) == 0,
                  "max(日期) is '%s', not '%s'", got, expect);
        }
        free(data);
    }
    PQfinish(pg);
    odp_client_destroy(&c);
}

static void s_messy(void)
{
    const char *dept = "441400002";
    char resource[33];
    CHECK(h_department(dept, "推送测试 脏数据部门") == 0, "department.add");
    if (!tp_entry(dept, "重点企业资产 脏数据", "dataset", "key_enterprise_assets", true, resource))
        return;
    size_t len;
    char *data = tp_read("key_enterprise_assets.messy.gb18030.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .encoding = "gb18030", .chunk = 4096};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200, "%s gave %d %s %s", res.step, st, res.code, res.message);
    CHECK(res.rows_received == 300 && res.rows_staged == 297 && res.rows_rejected == 3,
          "received %lld staged %lld rejected %lld, not 300 = 297 + 3",
          (long long)res.rows_received, (long long)res.rows_staged, (long long)res.rows_rejected);
    CHECK(res.rows_received == res.rows_staged + res.rows_rejected, "the counts do not add up");
    PGconn *pg = h_pg_super();
    CHECK(s_pg_count(pg, "SELECT count(*) FROM registrar.stage_u%lld", (long long)res.upload) ==
              297,
          "the staging table does not hold 297 rows");
    char got[64];
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT \"所属地市\" FROM registrar.stage_u%lld WHERE row_no = 19",
             (long long)res.upload);
    CHECK(s_pg_text(pg, sql, got, sizeof got) && strcmp(got, "香港") == 0,
          "row 19 was not converted from GB18030: '%s'", got);
    PQfinish(pg);

    odp_rejects_list_t m = {0};
    m.resource = odp_v_str(resource);
    m.version = odp_v_int(res.version > 0 ? res.version : 1);
    odp_reply_t rep;
    st = h_call(c, &odp_def_rejects_list, &m, &rep);
    CHECK(st == 200, "rejects.list: %d %s", st, h_err_code(&rep));
    const msgpack_object *items = st == 200 ? odp_map_get(&rep.obj, "items") : NULL;
    static const struct {
        int64_t row;
        const char *reason;
    } want[] = {{12, "type"}, {13, "ragged"}, {14, "ragged"}};
    CHECK(items && items->via.array.size == 3, "rejects.list does not list 3 rows");
    for (uint32_t i = 0; items && i < items->via.array.size && i < 3; i++) {
        odp_rec_reject_t j;
        odp_error_t e;
        bool ok = odp_decode_fields(&odp_def_rec_reject, &items->via.array.ptr[i], &j, &e) == 0;
        CHECK(ok, "reject %u does not match rec_reject: %s", i, e.message);
        if (ok)
            CHECK(j.row.i == want[i].row && odp_v_eq(&j.reason, want[i].reason) &&
                      j.detail.len > 0 && j.raw.len > 0,
                  "reject %u is row %lld %.*s (detail %zu bytes), not row %lld %s", i,
                  (long long)j.row.i, (int)j.reason.len, j.reason.str, j.detail.len,
                  (long long)want[i].row, want[i].reason);
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    free(data);
}

/*  A dictionary file of fields "name:type,..." in h_var() for tp_entry(). */
static const char *s_dict_file(const char *tag, const char *fields, char *path, size_t size)
{
    snprintf(path, size, "%s/push-%s.dict.json", h_var(), tag);
    json_t *list = json_array();
    char buf[256];
    snprintf(buf, sizeof buf, "%s", fields);
    for (char *save = NULL, *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(f, ':');
        *colon = '\0';
        json_array_append_new(list, json_pack("{s:s,s:s}", "name", f, "type", colon + 1));
    }
    json_t *dict = json_pack("{s:o}", "fields", list);
    CHECK(json_dump_file(dict, path, 0) == 0, "cannot write %s", path);
    json_decref(dict);
    return path;
}

/*  A column of a staging table as text, row by row: 'NULL' for NULL, '|' between. */
static bool s_column(PGconn *pg, int64_t upload, const char *col, char *buf, size_t size)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(coalesce(\"%s\"::text, 'NULL'), '|' ORDER BY row_no) "
             "FROM registrar.stage_u%lld",
             col, (long long)upload);
    return s_pg_text(pg, sql, buf, size);
}

/*  Every column type arrives as PostgreSQL itself reads the values: a table of text,
    integer, numeric, date and boolean columns (the registrar sends its rows in COPY's
    binary format) and one with a timestamp column (sent as COPY text). */
static void s_types(void)
{
    const char *dept = "441400006";
    char resource[33], dict[512], got[512];
    CHECK(h_department(dept, "推送测试 类型部门") == 0, "department.add");
    s_dict_file("types", "名称:text,数量:integer,金额:numeric,日期:date,有效:boolean", dict,
                sizeof dict);
    if (!tp_entry(dept, "类型 全部", "dataset", dict, true, resource))
        return;
    static const char csv[] = "名称,数量,金额,日期,有效\n"
                              "\"tab\there\",-9223372036854775808,1.50,2024-02-29,是\n"
                              "\"two\nlines\",+42,-0.000,0001-01-01,否\n"
                              "back\\slash,9223372036854775807,1e3,9999-12-31,TRUE\n"
                              ", 7 ,12345678901234567890.123456789,2000-01-01,0\n"
                              "\"逗号,引号\"\"\",0,1.5E-3,1999-12-31,\n"
                              "x,,-.5e1,,yes\n";
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .chunk = 50};
    tp_result_t res;
    int st = tp_push(c, &o, csv, sizeof csv - 1, &res);
    CHECK(st == 200 && res.rows_staged == 6 && res.rows_rejected == 0,
          "%s gave %d %s %s, %lld staged", res.step, st, res.code, res.message,
          (long long)res.rows_staged);
    static const struct {
        const char *col;
        const char *want;
    } cols[] = {
        {"名称", "tab\there|two\nlines|back\\slash|NULL|逗号,引号\"|x"},
        {"数量", "-9223372036854775808|42|9223372036854775807|7|0|NULL"},
        {"金额", "1.50|0.000|1000|12345678901234567890.123456789|0.0015|-5"},
        {"日期", "2024-02-29|0001-01-01|9999-12-31|2000-01-01|1999-12-31|NULL"},
        {"有效", "true|false|true|false|NULL|true"},
        {"row_no", "1|2|3|4|5|6"},
    };
    PGconn *pg = h_pg_super();
    for (size_t i = 0; st == 200 && i < sizeof cols / sizeof cols[0]; i++)
        CHECK(s_column(pg, res.upload, cols[i].col, got, sizeof got) &&
                  strcmp(got, cols[i].want) == 0,
              "column %s holds '%s', not '%s'", cols[i].col, got, cols[i].want);

    s_dict_file("timestamps", "时间:timestamp,编号:integer", dict, sizeof dict);
    if (tp_entry(dept, "类型 时间", "dataset", dict, true, resource)) {
        static const char ts[] = "时间,编号\n"
                                 "2024-01-02T03:04:05Z,1\n"
                                 "2024-01-02 03:04,2\n"
                                 "2024-06-30T23:59:60+08:00,3\n";
        o.resource = resource;
        st = tp_push(c, &o, ts, sizeof ts - 1, &res);
        CHECK(st == 200 && res.rows_staged == 3, "timestamps: %s gave %d %s %s", res.step, st,
              res.code, res.message);
        char sql[300];
        snprintf(sql, sizeof sql,
                 "SELECT string_agg((\"时间\" = CASE row_no WHEN 1 THEN "
                 "'2024-01-02T03:04:05Z'::timestamptz WHEN 2 THEN '2024-01-02 03:04' ELSE "
                 "'2024-07-01 00:00:00+08' END)::text, '|' ORDER BY row_no) "
                 "FROM registrar.stage_u%lld",
                 (long long)res.upload);
        CHECK(st != 200 ||
                  (s_pg_text(pg, sql, got, sizeof got) && strcmp(got, "true|true|true") == 0),
              "the timestamps compare as %s", got);
    }
    PQfinish(pg);
    odp_client_destroy(&c);
}

static int64_t s_versions_listed(odp_client_t *c, const char *resource, int64_t *newest)
{
    odp_version_list_t m = {0};
    m.resource = odp_v_str(resource);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_version_list, &m, &rep);
    CHECK(st == 200, "version.list: %d %s", st, h_err_code(&rep));
    const msgpack_object *items = st == 200 ? odp_map_get(&rep.obj, "items") : NULL;
    int64_t n = items ? (int64_t)items->via.array.size : -1;
    *newest = -1;
    if (n > 0) {
        odp_reply_t first = {.obj = items->via.array.ptr[0]};
        *newest = h_int(&first, "version");
    }
    odp_reply_free(&rep);
    return n;
}

static void s_versions(void)
{
    const char *dept = "441400003";
    char resource[33];
    CHECK(h_department(dept, "推送测试 版本部门") == 0, "department.add");
    if (!tp_entry(dept, "空气质量 版本", "dataset", "air_quality_daily", true, resource))
        return;
    size_t len;
    char *data = tp_read("air_quality_daily.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.version == 1, "first push: %d %s, version %lld", st, res.code,
          (long long)res.version);
    int64_t first = res.upload;

    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.duplicate && res.version == 1 && res.upload == -1 &&
              res.offset == (int64_t)len,
          "the same content again: %d duplicate=%d version %lld offset %lld", st, res.duplicate,
          (long long)res.version, (long long)res.offset);
    int64_t newest;
    CHECK(s_versions_listed(c, resource, &newest) == 1 && newest == 1,
          "identical content made another version");
    PGconn *pg = h_pg_super();
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM registrar.uploads WHERE resource = '%s'",
             resource);
    CHECK(h_pg_int(pg, sql) == 1, "a duplicate push created an upload");

    /*  Changed content: the last row goes. */
    size_t cut = len - 1;
    while (cut > 0 && data[cut - 1] != '\n')
        cut--;
    st = tp_push(c, &o, data, cut, &res);
    CHECK(st == 200 && res.version == 2 && !res.duplicate && res.upload != first,
          "changed content: %d %s version %lld", st, res.code, (long long)res.version);
    CHECK(res.rows_received == s_data_rows(data, len) - 1, "version 2 has %lld rows",
          (long long)res.rows_received);
    CHECK(s_versions_listed(c, resource, &newest) == 2 && newest == 2,
          "version.list does not list 2 versions, newest first (first is %lld)", (long long)newest);

    odp_push_status_t ps = {0};
    ps.upload = odp_v_int(first);
    odp_reply_t rep;
    st = h_call(c, &odp_def_push_status, &ps, &rep);
    char status[16];
    tp_str(&rep, "status", status, sizeof status);
    CHECK(st == 200 && strcmp(status, "received") == 0 && h_int(&rep, "version") == 1 &&
              h_int(&rep, "offset") == (int64_t)len,
          "push.status of version 1: %d %s", st, status);
    odp_reply_free(&rep);
    PQfinish(pg);
    odp_client_destroy(&c);
    free(data);
}

static void s_ownership(void)
{
    const char *owner = "441400004", *other = "441400005";
    char resource[33], unregistered[33];
    CHECK(h_department(owner, "推送测试 所有者部门") == 0, "department.add owner");
    CHECK(h_department(other, "推送测试 其他部门") == 0, "department.add other");
    if (!tp_entry(owner, "空气质量 所有权", "dataset", "air_quality_daily", true, resource) ||
        !tp_entry(owner, "空气质量 未登记", "dataset", "air_quality_daily", false, unregistered))
        return;
    size_t len;
    char *data = tp_read("air_quality_daily.csv", &len);
    if (!data)
        return;
    odp_client_t *mine = h_client("registrar", h_keyfile(owner));
    odp_client_t *theirs = h_client("registrar", h_keyfile(other));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(theirs, &o, data, len, &res);
    CHECK(st == 403 && strcmp(res.code, "FORBIDDEN") == 0,
          "another department's push.begin gave %d %s", st, res.code);

    o.chunk = 16384;
    o.max_chunks = 1;
    st = tp_push(mine, &o, data, len, &res);
    CHECK(st == 200 && res.upload > 0, "the owner's push: %d %s", st, res.code);
    st = tp_chunks(theirs, &res, data, len, 0, 1);
    CHECK(st == 403 && strcmp(res.code, "FORBIDDEN") == 0,
          "another department's push.chunk gave %d %s", st, res.code);
    odp_push_abort_t ab = {0};
    ab.upload = odp_v_int(res.upload);
    odp_reply_t rep;
    st = h_call(theirs, &odp_def_push_abort, &ab, &rep);
    CHECK(st == 403, "another department's push.abort gave %d", st);
    odp_reply_free(&rep);
    st = h_call(mine, &odp_def_push_abort, &ab, &rep);
    CHECK(st == 200, "the owner's push.abort gave %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    st = tp_chunks(mine, &res, data, len, 0, 1);
    CHECK(st == 409 && strcmp(res.code, "INVALID_STATE") == 0, "a chunk after abort gave %d %s", st,
          res.code);

    o.resource = unregistered;
    o.max_chunks = 0;
    st = tp_push(mine, &o, data, len, &res);
    CHECK(st == 200 && res.version == 1, "a catalogued, unregistered entry takes a push: %d %s", st,
          res.code);
    o.resource = "441400004-0000-99999";
    st = tp_push(mine, &o, data, len, &res);
    CHECK(st == 404 && strcmp(res.field, "resource") == 0, "a missing entry gave %d %s", st,
          res.code);

    odp_rejects_list_t rl = {0};
    rl.resource = odp_v_str(resource);
    rl.version = odp_v_int(1);
    st = h_call(theirs, &odp_def_rejects_list, &rl, &rep);
    CHECK(st == 403, "another department's rejects.list gave %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&mine);
    odp_client_destroy(&theirs);
    free(data);
}

/*  rules.set as operations; the lists are optional (NULL: unchanged), numbers too (0). */
static int s_rules(const char *const *formats, size_t nf, const char *const *encodings, size_t ne,
                   int64_t max_size, int64_t max_row_length, int64_t chunk_size, int64_t credit)
{
    odp_client_t *ops = h_client("registrar", NULL);
    msgpack_object fa, fi[8], ea, ei[8];
    odp_rules_set_t m = {0};
    if (formats)
        m.formats = tp_strs(&fa, fi, formats, nf);
    if (encodings)
        m.encodings = tp_strs(&ea, ei, encodings, ne);
    if (max_size)
        m.max_size = odp_v_int(max_size);
    if (max_row_length)
        m.max_row_length = odp_v_int(max_row_length);
    if (chunk_size)
        m.chunk_size = odp_v_int(chunk_size);
    if (credit)
        m.credit = odp_v_int(credit);
    odp_reply_t rep;
    int st = h_call(ops, &odp_def_rules_set, &m, &rep);
    CHECK(st == 200, "rules.set: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
    return st;
}

static const char *const s_all_formats[] = {"csv", "jsonl", "file"};
static const char *const s_all_encodings[] = {"utf8", "gb18030"};

static void s_rules_defaults(void)
{
    s_rules(s_all_formats, 3, s_all_encodings, 2, 10737418240LL, 1048576, 262144, 8);
}

/*  A CSV for the air quality dictionary whose row 3 has a station name of 300 bytes. */
static char *s_long_row_csv(size_t *len)
{
    char name[301];
    memset(name, 'x', 300);
    name[300] = '\0';
    char *csv = malloc(1024);
    int n = snprintf(csv, 1024,
                     "监测站点,日期,AQI,PM2_5,PM10,首要污染物,质量等级\n"
                     "广雅中学,2023-01-01,79,47,71,O3,良\n"
                     "广雅中学,2023-01-02,115,69,103,O3,轻度污染\n"
                     "%s,2023-01-03,50,20,30,,优\n"
                     "广雅中学,2023-01-04,60,30,40,,良\n",
                     name);
    *len = (size_t)n;
    return csv;
}

static void s_rule_cases(void)
{
    const char *dept = "441500001";
    char resource[33];
    CHECK(h_department(dept, "推送测试 规则部门") == 0, "department.add");
    if (!tp_entry(dept, "空气质量 规则", "dataset", "air_quality_daily", true, resource))
        return;
    size_t len;
    char *data = tp_read("air_quality_daily.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;

    const char *const no_csv[] = {"jsonl", "file"};
    s_rules(no_csv, 2, NULL, 0, 0, 0, 0, 0);
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "RULE_FORMAT") == 0 && strcmp(res.field, "format") == 0,
          "csv when the rules accept jsonl and file: %d %s %s", st, res.code, res.field);
    o.format = "file";
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "RULE_FORMAT") == 0, "format file for a dataset: %d %s", st,
          res.code);
    o.format = NULL;

    const char *const utf8[] = {"utf8"};
    s_rules(s_all_formats, 3, utf8, 1, 0, 0, 0, 0);
    o.encoding = "gb18030";
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "RULE_ENCODING") == 0 && strcmp(res.field, "encoding") == 0,
          "gb18030 when the rules accept utf8: %d %s", st, res.code);
    s_rules(NULL, 0, s_all_encodings, 2, 0, 0, 0, 0);
    o.format = "jsonl";
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "RULE_ENCODING") == 0, "JSON Lines in gb18030: %d %s", st,
          res.code);
    o.format = NULL;
    o.encoding = "latin1";
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "RULE_ENCODING") == 0, "an unknown encoding: %d %s", st,
          res.code);
    o.encoding = NULL;

    s_rules(NULL, 0, NULL, 0, 100000, 0, 0, 0);
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 413 && strcmp(res.code, "RULE_SIZE") == 0 && strcmp(res.field, "size") == 0,
          "%zu bytes over a 100000-byte maximum: %d %s", len, st, res.code);

    s_rules(NULL, 0, NULL, 0, 10737418240LL, 0, 4096, 0);
    o.chunk = 8192;
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 413 && strcmp(res.code, "RULE_CHUNK_SIZE") == 0 && strcmp(res.step, "chunk") == 0,
          "an 8192-byte chunk under chunk_size 4096: %s %d %s", res.step, st, res.code);
    CHECK(res.chunk_size == 4096, "push.begin said chunk_size %lld", (long long)res.chunk_size);
    o.chunk = 0;
    /*  The refused chunk left the upload receiving: it is aborted, and says so. */
    int64_t seq = s_seq();
    odp_push_abort_t ab = {0};
    ab.upload = odp_v_int(res.upload);
    ab.reason = odp_v_str("测试中止");
    odp_reply_t rep;
    st = h_call(c, &odp_def_push_abort, &ab, &rep);
    CHECK(st == 200, "push.abort: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_event_seen(seq, "data.failed", res.upload, "ABORTED"), "no data.failed ABORTED");

    s_rules(NULL, 0, NULL, 0, 0, 128, 262144, 0);
    size_t llen;
    char *longrow = s_long_row_csv(&llen);
    seq = s_seq();
    st = tp_push(c, &o, longrow, llen, &res);
    CHECK(st == 422 && strcmp(res.code, "RULE_ROW_LENGTH") == 0,
          "a 300-byte row under max_row_length 128: %d %s", st, res.code);
    PGconn *pg = h_pg_super();
    char status[32];
    s_upload_status(pg, res.upload, status, sizeof status);
    CHECK(strcmp(status, "abandoned") == 0, "the upload is %s, not abandoned", status);
    CHECK(s_pg_count(pg, "SELECT count(*) FROM pg_class WHERE relname = 'stage_u%lld'",
                     (long long)res.upload) == 0,
          "the abandoned upload's staging table is still there");
    CHECK(s_event_seen(seq, "data.failed", res.upload, "RULE_ROW_LENGTH"),
          "no data.failed RULE_ROW_LENGTH event for upload %lld", (long long)res.upload);
    PQfinish(pg);
    free(longrow);

    s_rules_defaults();
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.rows_rejected == 0, "under the default rules again: %d %s", st,
          res.code);
    odp_client_destroy(&c);
    free(data);
}

static void s_errors(void)
{
    const char *dept = "441500002";
    char resource[33];
    CHECK(h_department(dept, "推送测试 错误部门") == 0, "department.add");
    if (!tp_entry(dept, "空气质量 错误", "dataset", "air_quality_daily", true, resource))
        return;
    size_t len;
    char *data = tp_read("air_quality_daily.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    PGconn *pg = h_pg_super();
    tp_opts_t o = {.resource = resource, .chunk = 16384, .max_chunks = 2};
    tp_result_t res;

    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.offset == 32768, "two chunks: %d %s", st, res.code);
    int64_t good = res.offset;
    res.offset = good + 100;
    st = tp_chunks(c, &res, data, len, 16384, 1);
    char expect[64];
    snprintf(expect, sizeof expect, "resume from byte %lld", (long long)res.committed);
    CHECK(st == 409 && strcmp(res.code, "BAD_OFFSET") == 0 && strstr(res.message, expect),
          "a chunk 100 bytes ahead: %d %s '%s'", st, res.code, res.message);
    res.offset = good - 16384;
    st = tp_chunks(c, &res, data, len, 16384, 1);
    CHECK(st == 409 && strcmp(res.code, "BAD_OFFSET") == 0, "a chunk sent twice: %d %s", st,
          res.code);
    odp_push_finish_t fin = {0};
    fin.upload = odp_v_int(res.upload);
    odp_reply_t rep;
    st = h_call(c, &odp_def_push_finish, &fin, &rep);
    CHECK(st == 409 && strcmp(h_err_code(&rep), "INVALID_STATE") == 0,
          "push.finish half way: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    /*  The upload is intact after refused chunks: it goes on from where it was. */
    res.offset = good;
    st = tp_chunks(c, &res, data, len, 16384, 0);
    CHECK(st == 200 && tp_finish(c, &res) == 200 && res.rows_received == s_data_rows(data, len),
          "the push after refused chunks: %d %s", res.status, res.code);

    /*  A wrong declared hash (of other content): found at finish, the upload abandoned. */
    char other[65];
    tp_sha256("other content", 13, other);
    o = (tp_opts_t){.resource = resource, .sha256 = other};
    int64_t seq = s_seq();
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "HASH_MISMATCH") == 0 && strcmp(res.step, "finish") == 0,
          "a wrong sha256: %s %d %s", res.step, st, res.code);
    char status[32];
    s_upload_status(pg, res.upload, status, sizeof status);
    CHECK(strcmp(status, "abandoned") == 0, "after HASH_MISMATCH the upload is %s", status);
    CHECK(s_pg_count(pg, "SELECT count(*) FROM pg_class WHERE relname = 'stage_u%lld'",
                     (long long)res.upload) == 0,
          "after HASH_MISMATCH the staging table is still there");
    CHECK(s_event_seen(seq, "data.failed", res.upload, "HASH_MISMATCH"),
          "no data.failed HASH_MISMATCH");

    o.sha256 = "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789";
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "INVALID_VALUE") == 0 && strcmp(res.field, "sha256") == 0,
          "an upper-case sha256: %d %s", st, res.code);
    o.sha256 = NULL;

    /*  Another dataset's file: its header names none of this dictionary's fields. */
    size_t llen;
    char *land = tp_read("land_use_status.csv", &llen);
    seq = s_seq();
    st = tp_push(c, &o, land, llen, &res);
    CHECK(st == 422 && strcmp(res.code, "HEADER_MISMATCH") == 0,
          "a land use file for the air quality dictionary: %d %s", st, res.code);
    s_upload_status(pg, res.upload, status, sizeof status);
    CHECK(strcmp(status, "abandoned") == 0, "after HEADER_MISMATCH the upload is %s", status);
    CHECK(s_event_seen(seq, "data.failed", res.upload, "HEADER_MISMATCH"),
          "no data.failed HEADER_MISMATCH");

    o.table = "nosuchtable";
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 404 && strcmp(res.field, "table") == 0, "a table with no dictionary: %d %s", st,
          res.code);
    free(land);
    PQfinish(pg);
    odp_client_destroy(&c);
    free(data);
}

/*  After the push finished: every row once, numbered 1..rows. */
static void s_check_exactly_once(int64_t upload, int64_t rows)
{
    PGconn *pg = h_pg_super();
    CHECK(s_pg_count(pg, "SELECT count(*) FROM registrar.stage_u%lld", (long long)upload) == rows,
          "the staging table does not hold %lld rows", (long long)rows);
    CHECK(s_pg_count(pg, "SELECT count(DISTINCT row_no) FROM registrar.stage_u%lld",
                     (long long)upload) == rows,
          "a row was staged twice");
    CHECK(s_pg_count(pg, "SELECT max(row_no) - min(row_no) + 1 FROM registrar.stage_u%lld",
                     (long long)upload) == rows,
          "row numbers are not 1..%lld", (long long)rows);
    PQfinish(pg);
}

/*  The registrar restarted with extra environment (NULL: the suite's own). */
static bool s_registrar(const char *const *env)
{
    h_service_stop("registrar");
    return h_service_start("registrar", env) > 0;
}

/*  Groups far smaller than a sample, so that a push commits several before it ends. */
static const char *const s_small_groups[] = {"ODP_REGISTRAR_COMMIT_BYTES=20000", NULL};

/*  Acks are flow control: under the default group size (16 MiB, far more than a sample)
    the chunks are acknowledged as they are handed over, but nothing is committed before
    push.finish. push.begin of the same content meanwhile rolls the open group back: the
    push starts again at byte 0, and every row is still staged exactly once. */
static void s_groups(void)
{
    const char *dept = "441500006";
    char resource[33];
    CHECK(h_department(dept, "推送测试 分组部门") == 0, "department.add");
    if (!tp_entry(dept, "重点企业资产 分组", "dataset", "key_enterprise_assets", true, resource))
        return;
    size_t len;
    char *data = tp_read("key_enterprise_assets.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    int64_t rows = s_data_rows(data, len);
    int nchunks = (int)((len + 8191) / 8192);
    tp_opts_t o = {.resource = resource, .chunk = 8192, .max_chunks = nchunks / 2};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.offset == (int64_t)(nchunks / 2) * 8192 && res.rows_received > 0,
          "half the chunks: %d %s at %lld, %lld rows", st, res.code, (long long)res.offset,
          (long long)res.rows_received);
    CHECK(res.committed == 0, "committed %lld inside the first group", (long long)res.committed);
    int64_t upload = res.upload;
    odp_push_status_t ps = {0};
    ps.upload = odp_v_int(upload);
    odp_reply_t rep;
    st = h_call(c, &odp_def_push_status, &ps, &rep);
    CHECK(st == 200 && h_int(&rep, "offset") == 0, "push.status offset %lld before any commit",
          (long long)h_int(&rep, "offset"));
    odp_reply_free(&rep);

    st = tp_begin(c, &o, data, len, &res);
    CHECK(st == 200 && res.upload == upload && res.offset == 0,
          "push.begin again: %d upload %lld offset %lld", st, (long long)res.upload,
          (long long)res.offset);
    PGconn *pg = h_pg_super();
    CHECK(s_pg_count(pg, "SELECT count(*) FROM registrar.stage_u%lld", (long long)upload) == 0,
          "the rolled back group left rows in the staging table");
    PQfinish(pg);
    st = tp_chunks(c, &res, data, len, 8192, 0);
    CHECK(st == 200 && res.committed == 0, "all chunks again: %d %s, committed %lld", st, res.code,
          (long long)res.committed);
    st = tp_finish(c, &res);
    CHECK(st == 200 && res.rows_received == rows && res.rows_rejected == 0,
          "finish: %d %s %s, %lld rows", st, res.code, res.message, (long long)res.rows_received);
    st = h_call(c, &odp_def_push_status, &ps, &rep);
    CHECK(st == 200 && h_int(&rep, "offset") == (int64_t)len,
          "push.status offset %lld after finish", (long long)h_int(&rep, "offset"));
    odp_reply_free(&rep);
    s_check_exactly_once(upload, rows);
    odp_client_destroy(&c);
    free(data);
}

/*  A group is not left open: once it has been open and idle for
    ODP_REGISTRAR_COMMIT_SECONDS, the next push request (any upload's) commits it, and the
    push goes on from where it was. */
static void s_idle_group(void)
{
    static const char *const env[] = {"ODP_REGISTRAR_COMMIT_SECONDS=1", NULL};
    CHECK(s_registrar(env), "the registrar restarts with 1-second groups");
    const char *dept = "441500008";
    char resource[33];
    CHECK(h_department(dept, "推送测试 空闲部门") == 0, "department.add");
    if (!tp_entry(dept, "重点企业资产 空闲", "dataset", "key_enterprise_assets", true, resource))
        return;
    size_t len;
    char *data = tp_read("key_enterprise_assets.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    int64_t rows = s_data_rows(data, len);
    tp_opts_t o = {.resource = resource, .chunk = 8192, .max_chunks = 2};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.offset == 16384 && res.committed == 0,
          "two chunks: %d %s, committed %lld", st, res.code, (long long)res.committed);
    zclock_sleep(1500);
    odp_push_status_t ps = {0};
    ps.upload = odp_v_int(res.upload);
    odp_reply_t rep;
    st = h_call(c, &odp_def_push_status, &ps, &rep);
    int64_t committed = h_int(&rep, "offset");
    CHECK(st == 200 && committed > 0 && committed <= 16384,
          "push.status after the group sat idle: %d, offset %lld", st, (long long)committed);
    odp_reply_free(&rep);
    st = tp_chunks(c, &res, data, len, 8192, 0);
    CHECK(st == 200 && res.committed >= committed, "the rest: %d %s %s", st, res.code, res.message);
    st = tp_finish(c, &res);
    CHECK(st == 200 && res.rows_received == rows && res.rows_rejected == 0,
          "finish: %d %s %s, %lld rows", st, res.code, res.message, (long long)res.rows_received);
    s_check_exactly_once(res.upload, rows);
    odp_client_destroy(&c);
    free(data);
}

static void s_resume(void)
{
    CHECK(s_registrar(s_small_groups), "the registrar restarts with 20000-byte groups");
    const char *dept = "441500003";
    char resource[33];
    CHECK(h_department(dept, "推送测试 续传部门") == 0, "department.add");
    if (!tp_entry(dept, "重点企业资产 续传", "dataset", "key_enterprise_assets", true, resource))
        return;
    size_t len;
    char *data = tp_read("key_enterprise_assets.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    int64_t rows = s_data_rows(data, len);
    int nchunks = (int)((len + 8191) / 8192);
    tp_opts_t o = {.resource = resource, .chunk = 8192, .max_chunks = nchunks / 2};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.offset == (int64_t)(nchunks / 2) * 8192,
          "half the chunks: %d %s at %lld", st, res.code, (long long)res.offset);
    CHECK(res.committed > 0 && res.committed <= res.offset && res.rows_received > 0,
          "committed %lld of %lld sent", (long long)res.committed, (long long)res.offset);
    int64_t upload = res.upload, committed = res.committed;

    /*  The client starts over: push.begin of the same content names the same upload. */
    st = tp_begin(c, &o, data, len, &res);
    CHECK(st == 200 && res.upload == upload && res.offset == committed && !res.duplicate,
          "push.begin again: %d upload %lld offset %lld (committed %lld)", st,
          (long long)res.upload, (long long)res.offset, (long long)committed);
    odp_push_status_t ps = {0};
    ps.upload = odp_v_int(upload);
    odp_reply_t rep;
    st = h_call(c, &odp_def_push_status, &ps, &rep);
    CHECK(st == 200 && h_int(&rep, "offset") == committed, "push.status offset %lld",
          (long long)h_int(&rep, "offset"));
    odp_reply_free(&rep);
    st = tp_chunks(c, &res, data, len, 8192, 0);
    CHECK(st == 200, "the rest from byte %lld: %d %s %s", (long long)committed, st, res.code,
          res.message);
    st = tp_finish(c, &res);
    char sha[65];
    tp_sha256(data, len, sha);
    CHECK(st == 200 && res.rows_received == rows && res.rows_rejected == 0 &&
              strcmp(res.sha256, sha) == 0,
          "finish after the resume: %d %s, %lld rows", st, res.code, (long long)res.rows_received);
    s_check_exactly_once(upload, rows);
    odp_client_destroy(&c);
    free(data);
}

/*  The same, but the registrar dies (SIGKILL) half way: its in-memory state is gone and
    is rebuilt from the uploads row - loader, header mapping, hash state. */
static void s_restart(void)
{
    CHECK(s_registrar(s_small_groups), "the registrar restarts with 20000-byte groups");
    const char *dept = "441500004";
    char resource[33];
    CHECK(h_department(dept, "推送测试 重启部门") == 0, "department.add");
    if (!tp_entry(dept, "医疗机构 重启", "dataset", "medical_institutions", true, resource))
        return;
    size_t len;
    char *data = tp_read("medical_institutions.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    int64_t rows = s_data_rows(data, len);
    tp_opts_t o = {.resource = resource, .chunk = 5000, .max_chunks = 10};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.offset == 50000, "ten chunks: %d %s", st, res.code);
    int64_t upload = res.upload, committed = res.committed;
    CHECK(committed > 0, "no group was committed before the kill");
    odp_client_destroy(&c);

    h_service_kill9("registrar");
    CHECK(h_service_start("registrar", s_small_groups) > 0, "the registrar restarts");
    c = h_client("registrar", h_keyfile(dept));
    /*  A client that does not know yet: its next chunk is refused with where to resume
        (unless the last ack happened to end on a row). */
    if (committed != res.offset) {
        st = tp_chunks(c, &res, data, len, 5000, 1);
        CHECK(st == 409 && strcmp(res.code, "BAD_OFFSET") == 0,
              "a chunk at %lld after the restart (committed %lld): %d %s", (long long)res.offset,
              (long long)committed, st, res.code);
    }
    st = tp_begin(c, &o, data, len, &res);
    CHECK(st == 200 && res.upload == upload && res.offset == committed,
          "push.begin after the restart: %d upload %lld offset %lld, committed was %lld", st,
          (long long)res.upload, (long long)res.offset, (long long)committed);
    st = tp_chunks(c, &res, data, len, 5000, 0);
    CHECK(st == 200, "the rest: %d %s %s", st, res.code, res.message);
    st = tp_finish(c, &res);
    CHECK(st == 200 && res.rows_received == rows && res.rows_rejected == 0,
          "finish after the restart: %d %s %s, %lld rows", st, res.code, res.message,
          (long long)res.rows_received);
    s_check_exactly_once(upload, rows);
    odp_client_destroy(&c);
    free(data);
    CHECK(s_registrar(NULL), "the registrar restarts with the default group size");
}

static void s_file(void)
{
    const char *dept = "441500005";
    char resource[33];
    CHECK(h_department(dept, "推送测试 文件部门") == 0, "department.add");
    if (!tp_entry(dept, "年度报告 文件", "report", NULL, true, resource))
        return;
    size_t len = 1000000 + 12345;
    char *data = malloc(len);
    randombytes_buf(data, len);
    char sha[65];
    tp_sha256(data, len, sha);
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .format = "csv"};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "RULE_FORMAT") == 0, "a report as csv: %d %s", st,
          res.code);
    o.format = "file";
    o.media_type = "application/pdf";
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200, "%s: %d %s %s", res.step, st, res.code, res.message);
    CHECK(strcmp(res.sha256, sha) == 0 && res.size == (int64_t)len &&
              strcmp(res.kind, "file") == 0 && strcmp(res.media_type, "application/pdf") == 0 &&
              res.version == 1 && res.rows_received == 0 && !res.staging[0],
          "summary: sha %s size %lld kind %s media %s version %lld", res.sha256,
          (long long)res.size, res.kind, res.media_type, (long long)res.version);
    PGconn *pg = h_pg_super();
    CHECK(s_pg_count(pg, "SELECT sum(length(data)) FROM registrar.file_chunks WHERE upload = %lld",
                     (long long)res.upload) == (int64_t)len,
          "the stored pieces do not add up to %zu bytes", len);
    char sql[256], got[80];
    snprintf(sql, sizeof sql,
             "SELECT encode(sha256(string_agg(data, ''::bytea ORDER BY offset_)), 'hex') "
             "FROM registrar.file_chunks WHERE upload = %lld",
             (long long)res.upload);
    CHECK(s_pg_text(pg, sql, got, sizeof got) && strcmp(got, sha) == 0,
          "the stored bytes hash to %s", got);
    PQfinish(pg);

    /*  The same file again is the same version; a wrong hash is found at finish. */
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.duplicate && res.version == 1, "the same file again: %d duplicate=%d",
          st, res.duplicate);
    char other[65];
    tp_sha256("x", 1, other);
    o.sha256 = other;
    st = tp_push(c, &o, data, len, &res);
    CHECK(st == 422 && strcmp(res.code, "HASH_MISMATCH") == 0,
          "a file under another file's hash: %d %s", st, res.code);
    odp_client_destroy(&c);
    free(data);
}

/*  ---- hardening: each case is the attack or the mistake it defends against -------------- */

/*  A small CSV for the air quality dictionary, different for every n. */
static size_t s_tiny_csv(int n, char *buf, size_t size)
{
    int len = snprintf(buf, size,
                       "监测站点,日期,AQI,PM2_5,PM10,首要污染物,质量等级\n"
                       "站点%d,2023-01-01,%d,47,71,O3,良\n",
                       n, 50 + n);
    return (size_t)len;
}

static int64_t s_status_offset(odp_client_t *c, int64_t upload, char *status, size_t size)
{
    odp_push_status_t ps = {0};
    ps.upload = odp_v_int(upload);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_push_status, &ps, &rep);
    int64_t offset = st == 200 ? h_int(&rep, "offset") : -1;
    tp_str(&rep, "status", status, size);
    odp_reply_free(&rep);
    return offset;
}

/*  One department begins sixteen pushes and leaves each after one small chunk (a provider
    system gone wrong, or one that means to lock the others out). It gets its share of the
    upload slots and a 429 beyond it that names its limit and when to retry; every other
    department still pushes; nothing it had is lost. Slots left idle are reclaimed by the
    next push request. */
static void s_fair_share(void)
{
    CHECK(s_registrar(NULL), "the registrar restarts with the default slot share");
    const char *greedy = "441900001", *other = "441900002";
    char mine[33], theirs[33];
    CHECK(h_department(greedy, "推送加固 占用部门") == 0, "department.add greedy");
    CHECK(h_department(other, "推送加固 其他部门") == 0, "department.add other");
    if (!tp_entry(greedy, "空气质量 占用", "dataset", "air_quality_daily", true, mine) ||
        !tp_entry(other, "空气质量 其他", "dataset", "air_quality_daily", true, theirs))
        return;
    odp_client_t *g = h_client("registrar", h_keyfile(greedy));
    int accepted = 0, limited = 0;
    int64_t uploads[16];
    char expect[64];
    snprintf(expect, sizeof expect, "department %s", greedy);
    for (int i = 0; i < 16; i++) {
        char csv[256];
        size_t len = s_tiny_csv(i, csv, sizeof csv);
        tp_opts_t o = {.resource = mine, .max_chunks = 1};
        tp_result_t res;
        int st = tp_push(g, &o, csv, len, &res);
        uploads[i] = res.upload;
        if (st == 200)
            accepted++;
        else if (st == 429 && strcmp(res.code, "RATE_LIMITED") == 0) {
            limited++;
            CHECK(strstr(res.message, expect) && strstr(res.message, "retry_after_ms="),
                  "the refusal does not say whose limit and when: '%s'", res.message);
        } else
            CHECK(false, "push %d: %s %d %s %s", i, res.step, st, res.code, res.message);
    }
    CHECK(accepted == 4 && limited == 12, "%d pushes held a slot, %d were refused (want 4, 12)",
          accepted, limited);

    /*  Another department is not locked out: a whole sample goes through. */
    size_t len;
    char *data = tp_read("air_quality_daily.csv", &len);
    odp_client_t *o = h_client("registrar", h_keyfile(other));
    tp_opts_t oo = {.resource = theirs, .chunk = 16384};
    tp_result_t res;
    int st = data ? tp_push(o, &oo, data, len, &res) : 0;
    CHECK(st == 200 && res.rows_received == s_data_rows(data, len) && res.rows_rejected == 0,
          "the other department's push: %s %d %s %s", res.step, st, res.code, res.message);
    /*  The greedy department's first four are intact, where it left them. */
    for (int i = 0; i < 4; i++) {
        char status[16], csv[256];
        int64_t at = s_status_offset(g, uploads[i], status, sizeof status);
        CHECK(strcmp(status, "receiving") == 0 && at >= 0 && at <= (int64_t)s_tiny_csv(i, csv, 256),
              "upload %lld is %s at %lld", (long long)uploads[i], status, (long long)at);
    }

    /*  Idle slots are reclaimed by the next push request, without a timer. */
    static const char *const env[] = {"ODP_REGISTRAR_IDLE_SECONDS=2",
                                      "ODP_REGISTRAR_UPLOADS_PER_DEPT=1", NULL};
    CHECK(s_registrar(env), "the registrar restarts with 2-second idle slots, one per department");
    char a[256], b[256];
    size_t alen = s_tiny_csv(100, a, sizeof a), blen = s_tiny_csv(101, b, sizeof b);
    tp_opts_t oa = {.resource = mine, .max_chunks = 1}, ob = oa;
    tp_result_t ra, rb;
    st = tp_push(g, &oa, a, alen, &ra);
    CHECK(st == 200, "the first upload takes the department's one slot: %d %s", st, ra.code);
    st = tp_push(g, &ob, b, blen, &rb);
    CHECK(st == 429 && strstr(rb.message, expect), "a second one at once: %d %s '%s'", st, rb.code,
          rb.message);
    zclock_sleep(2500);
    st = tp_chunks(g, &rb, b, blen, 0, 1);
    CHECK(st == 200, "after the first sat idle for 2 seconds, the second goes on: %d %s '%s'", st,
          rb.code, rb.message);
    st = tp_finish(g, &rb);
    CHECK(st == 200 && rb.rows_received == 1, "the second one finishes: %d %s", st, rb.code);
    /*  The reclaimed one resumes from what was committed. */
    st = tp_begin(g, &oa, a, alen, &ra);
    CHECK(st == 200 && tp_chunks(g, &ra, a, alen, 0, 0) == 200 && tp_finish(g, &ra) == 200 &&
              ra.rows_received == 1,
          "the reclaimed upload resumes and finishes: %s %d %s %s", ra.step, ra.status, ra.code,
          ra.message);
    CHECK(s_registrar(NULL), "the registrar restarts with the defaults");
    odp_client_destroy(&g);
    odp_client_destroy(&o);
    free(data);
}

/*  The next reply on s: its status, and its error code and message (or ""). */
static int s_recv_reply(zsock_t *s, char *code, size_t csize, char *message, size_t msize)
{
    code[0] = message[0] = '\0';
    zmsg_t *reply = zmsg_recv(s);
    if (!reply)
        return 0;
    char *st = zmsg_popstr(reply);
    int status = st ? atoi(st) : 0;
    free(st);
    zframe_t *body = zmsg_pop(reply);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj;
    odp_error_t e;
    odp_rep_error_t err;
    if (status != 200 && body &&
        odp_body_unpack(zframe_data(body), zframe_size(body), &zone, &obj, &e) == 0 &&
        odp_decode_fields(&odp_def_rep_error, &obj, &err, &e) == 0) {
        odp_v_cstr(&err.code, code, csize);
        odp_v_cstr(&err.message, message, msize);
    }
    msgpack_zone_destroy(&zone);
    zframe_destroy(&body);
    zmsg_destroy(&reply);
    return status;
}

/*  A client that ignores its credit sends 24 chunks at once where push.begin allowed 8:
    the registrar takes what the credit allows and refuses the rest with CREDIT_EXCEEDED,
    changing nothing; the push then goes on under the credit and every row arrives once;
    another department's push meanwhile is untouched. */
static void s_credit(void)
{
    const char *dept = "441900003", *other = "441900004";
    char resource[33], theirs[33];
    CHECK(h_department(dept, "推送加固 信用部门") == 0, "department.add");
    CHECK(h_department(other, "推送加固 旁观部门") == 0, "department.add other");
    if (!tp_entry(dept, "空气质量 信用", "dataset", "air_quality_daily", true, resource) ||
        !tp_entry(other, "医疗机构 旁观", "dataset", "medical_institutions", true, theirs))
        return;
    size_t len, mlen;
    char *data = tp_read("air_quality_daily.csv", &len);
    char *med = tp_read("medical_institutions.csv", &mlen);
    if (!data || !med)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    memset(&res, 0, sizeof res);
    int st = tp_begin(c, &o, data, len, &res);
    odp_reply_t rep;
    odp_rules_get_t rg = {0};
    CHECK(h_call(c, &odp_def_rules_get, &rg, &rep) == 200, "rules.get");
    int64_t credit = h_int(&rep, "credit");
    odp_reply_free(&rep);
    CHECK(st == 200 && credit == 8 && len > 24 * 1024, "push.begin: %d %s, credit %lld", st,
          res.code, (long long)credit);

    zsock_t *burst = tp_dealer(dept);
    for (int i = 0; burst && i < 24; i++)
        CHECK(tp_send_chunk(burst, res.upload, (int64_t)i * 1024, data + i * 1024, 1024),
              "chunk %d not sent", i);
    /*  The registrar reads at most ODP_RCVHWM (16) requests of a peer ahead: those past
        the credit are refused CREDIT_EXCEEDED; later ones, read after the refusals, no
        longer start where the upload stands and are refused BAD_OFFSET. Either way
        nothing changes. */
    int accepted = 0, refused = 0, over_credit = 0;
    bool in_order = true;
    for (int i = 0; burst && i < 24; i++) {
        char code[40], message[300];
        st = s_recv_reply(burst, code, sizeof code, message, sizeof message);
        if (st == 200) {
            accepted++;
            in_order = in_order && refused == 0;
        } else {
            refused++;
            bool credit_refusal = st == 429 && strcmp(code, "CREDIT_EXCEEDED") == 0 &&
                                  strstr(message, "go on from byte");
            over_credit += credit_refusal;
            CHECK(credit_refusal || (st == 409 && strcmp(code, "BAD_OFFSET") == 0 && over_credit),
                  "chunk %d: %d %s '%s'", i, st, code, message);
        }
    }
    CHECK(accepted + refused == 24 && accepted >= credit && over_credit > 0 && in_order,
          "of 24 chunks sent at once under credit %lld, %d were taken and %d refused",
          (long long)credit, accepted, refused);
    zsock_destroy(&burst);

    /*  Nothing was changed by the refusals: the push goes on from the last ack. */
    res.offset = (int64_t)accepted * 1024;
    st = tp_chunks(c, &res, data, len, 0, 0);
    CHECK(st == 200, "the rest under the credit: %d %s %s", st, res.code, res.message);
    st = tp_finish(c, &res);
    CHECK(st == 200 && res.rows_received == s_data_rows(data, len) && res.rows_rejected == 0,
          "finish: %d %s %s, %lld rows", st, res.code, res.message, (long long)res.rows_received);
    s_check_exactly_once(res.upload, res.rows_received);

    odp_client_t *oc = h_client("registrar", h_keyfile(other));
    tp_opts_t oo = {.resource = theirs, .chunk = 8192};
    st = tp_push(oc, &oo, med, mlen, &res);
    CHECK(st == 200 && res.rows_received == s_data_rows(med, mlen) && res.rows_rejected == 0,
          "the other department's push: %s %d %s", res.step, st, res.code);
    odp_client_destroy(&oc);
    odp_client_destroy(&c);
    free(data);
    free(med);
}

static int s_withdraw(odp_client_t *c, const char *resource, int64_t version, odp_reply_t *rep)
{
    odp_version_withdraw_t m = {0};
    m.resource = odp_v_str(resource);
    m.version = odp_v_int(version);
    m.reason = odp_v_str("以 UTF-8 推送了 GB18030 文件");
    return h_call(c, &odp_def_version_withdraw, &m, rep);
}

/*  The mistake: a GB18030 file pushed as UTF-8 becomes a version full of encoding
    rejects. Pushed again in the right encoding it is a new version, not a "duplicate" of
    the bad one; the provider withdraws the bad one, which stays listed, marked, and is
    nobody's duplicate any more. Another department cannot withdraw it; the good version
    is untouched. */
static void s_wrong_encoding(void)
{
    const char *dept = "441900005", *other = "441900006";
    char resource[33], dict[512];
    CHECK(h_department(dept, "推送加固 编码部门") == 0, "department.add");
    CHECK(h_department(other, "推送加固 无关部门") == 0, "department.add other");
    s_dict_file("encoding", "name:text,city:text,amount:integer", dict, sizeof dict);
    if (!tp_entry(dept, "城市 编码", "dataset", dict, true, resource))
        return;
    /*  广州 深圳 珠海 佛山 in GB18030: none of it is UTF-8. */
    static const char data[] = "name,city,amount\n"
                               "a,\xb9\xe3\xd6\xdd,1\n"
                               "b,\xc9\xee\xdb\xda,2\n"
                               "c,\xd6\xe9\xba\xa3,3\n"
                               "d,\xb7\xf0\xc9\xbd,4\n";
    size_t len = sizeof data - 1;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t utf8 = {.resource = resource, .encoding = "utf8"};
    tp_opts_t gb = {.resource = resource, .encoding = "gb18030"};
    tp_result_t bad, good, res;
    int st = tp_push(c, &utf8, data, len, &bad);
    CHECK(st == 200 && bad.version == 1 && bad.rows_rejected == 4,
          "the GB18030 file as UTF-8: %d %s, version %lld, %lld rejected", st, bad.code,
          (long long)bad.version, (long long)bad.rows_rejected);
    st = tp_push(c, &gb, data, len, &good);
    CHECK(st == 200 && !good.duplicate && good.version == 2 && good.rows_staged == 4 &&
              good.rows_rejected == 0,
          "the same file as GB18030: %d %s, duplicate %d, version %lld, %lld staged", st, good.code,
          good.duplicate, (long long)good.version, (long long)good.rows_staged);

    odp_client_t *o = h_client("registrar", h_keyfile(other));
    odp_reply_t rep;
    st = s_withdraw(o, resource, 1, &rep);
    CHECK(st == 403, "another department withdraws version 1: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    int64_t seq = s_seq();
    st = s_withdraw(c, resource, 1, &rep);
    char reason[200] = "", at[40] = "";
    tp_str(&rep, "withdrawn_reason", reason, sizeof reason);
    tp_str(&rep, "withdrawn_at", at, sizeof at);
    CHECK(st == 200 && h_int(&rep, "version") == 1 && at[0] &&
              strcmp(reason, "以 UTF-8 推送了 GB18030 文件") == 0,
          "version.withdraw: %d %s, at '%s', reason '%s'", st, h_err_code(&rep), at, reason);
    odp_reply_free(&rep);
    CHECK(s_event_seen(seq, "data.withdrawn", bad.upload, NULL), "no data.withdrawn event");
    st = s_withdraw(c, resource, 1, &rep);
    CHECK(st == 409 && strcmp(h_err_code(&rep), "INVALID_STATE") == 0, "withdrawn twice: %d %s", st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    st = s_withdraw(c, resource, 9, &rep);
    CHECK(st == 404 && strcmp(h_err_code(&rep), "NOT_FOUND") == 0, "version 9: %d %s", st,
          h_err_code(&rep));
    odp_reply_free(&rep);

    /*  version.list marks it; the good version is not. */
    odp_version_list_t vl = {0};
    vl.resource = odp_v_str(resource);
    st = h_call(c, &odp_def_version_list, &vl, &rep);
    const msgpack_object *items = st == 200 ? odp_map_get(&rep.obj, "items") : NULL;
    int withdrawn = 0, listed = items ? (int)items->via.array.size : -1;
    for (int i = 0; items && i < listed; i++) {
        odp_rec_version_t v;
        odp_error_t e;
        CHECK(odp_decode_fields(&odp_def_rec_version, &items->via.array.ptr[i], &v, &e) == 0,
              "a version record: %s", e.message);
        if (v.withdrawn_at.present)
            withdrawn += v.version.i == 1 ? 1 : 100;
    }
    CHECK(listed == 2 && withdrawn == 1, "version.list: %d versions, withdrawn mark %d", listed,
          withdrawn);
    odp_reply_free(&rep);

    /*  The good version still is what its content duplicates; the withdrawn one is not. */
    st = tp_push(c, &gb, data, len, &res);
    CHECK(st == 200 && res.duplicate && res.version == 2, "GB18030 again: %d duplicate %d v%lld",
          st, res.duplicate, (long long)res.version);
    st = tp_push(c, &utf8, data, len, &res);
    CHECK(st == 200 && !res.duplicate && res.version == 3,
          "UTF-8 again after the withdrawal: %d duplicate %d v%lld", st, res.duplicate,
          (long long)res.version);
    PGconn *pg = h_pg_super();
    char cities[64];
    CHECK(s_column(pg, good.upload, "city", cities, sizeof cities) &&
              strcmp(cities, "广州|深圳|珠海|佛山") == 0,
          "the good version holds '%s'", cities);
    PQfinish(pg);
    odp_client_destroy(&o);
    odp_client_destroy(&c);
}

/*  The mistake: a data dictionary with a field the staging tables need for themselves
    (row_no, a PostgreSQL system column). dictionary.set refuses it, naming the field,
    and stores nothing; the corrected dictionary is accepted, registered and pushed to. */
static void s_reserved_names(void)
{
    const char *dept = "441900007";
    char resource[33], dict[512];
    CHECK(h_department(dept, "推送加固 字段部门") == 0, "department.add");
    if (!tp_entry(dept, "保留字段", "dataset", NULL, false, resource))
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    static const struct {
        const char *fields;
        const char *name;
        const char *field;
    } bad[] = {{"名称:text,row_no:integer", "row_no", "fields[1].name"},
               {"名称:text,xmin:integer", "xmin", "fields[1].name"},
               {"ctid:text,数量:integer", "ctid", "fields[0].name"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_dict_file("reserved", bad[i].fields, dict, sizeof dict);
        odp_reply_t rep;
        int st = tp_dictionary_call(c, resource, dict, &rep);
        char field[64] = "", message[300] = "";
        odp_v_cstr(&rep.err.field, field, sizeof field);
        odp_v_cstr(&rep.err.message, message, sizeof message);
        CHECK(st == 422 && strcmp(h_err_code(&rep), "INVALID_VALUE") == 0 &&
                  strcmp(field, bad[i].field) == 0 && strstr(message, bad[i].name),
              "a dictionary with %s: %d %s field '%s' '%s'", bad[i].name, st, h_err_code(&rep),
              field, message);
        odp_reply_free(&rep);
    }
    odp_dictionary_get_t g = {0};
    g.resource = odp_v_str(resource);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_dictionary_get, &g, &rep);
    CHECK(st == 404, "a refused dictionary was stored: dictionary.get gave %d", st);
    odp_reply_free(&rep);

    s_dict_file("reserved", "名称:text,row_number:integer", dict, sizeof dict);
    st = tp_dictionary(c, resource, dict);
    odp_client_t *ops = h_client("registrar", NULL);
    odp_registration_request_t rq = {0};
    rq.resource = odp_v_str(resource);
    if (st == 200)
        st = h_call(c, &odp_def_registration_request, &rq, &rep);
    odp_reply_free(&rep);
    odp_registration_decide_t d = {0};
    d.resource = odp_v_str(resource);
    d.approve = odp_v_bool(true);
    if (st == 200)
        st = h_call(ops, &odp_def_registration_decide, &d, &rep);
    odp_reply_free(&rep);
    CHECK(st == 200, "the corrected dictionary is registered: %d", st);
    static const char csv[] = "名称,row_number\n甲,1\n乙,2\n";
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    st = tp_push(c, &o, csv, sizeof csv - 1, &res);
    CHECK(st == 200 && res.rows_staged == 2, "a push to it: %s %d %s %s", res.step, st, res.code,
          res.message);
    odp_client_destroy(&ops);
    odp_client_destroy(&c);
}

/*  The mistakes: a date alone in a timestamp column (PostgreSQL reads it as midnight,
    and so does the registrar now, instead of rejecting the row), and a dictionary field
    with a property that does not exist, whose refusal must speak of the data dictionary
    rather than of the protocol's internal record name. */
static void s_dates_and_wording(void)
{
    const char *dept = "441900008";
    char resource[33], dict[512], got[256];
    CHECK(h_department(dept, "推送加固 时间部门") == 0, "department.add");
    s_dict_file("dateonly", "时间:timestamp,编号:integer", dict, sizeof dict);
    if (!tp_entry(dept, "时间 日期", "dataset", dict, true, resource))
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    static const char ts[] = "时间,编号\n"
                             "2024-01-04,1\n"
                             "2024-01-04T08:30:00+08:00,2\n"
                             "2024-02-30,3\n";
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(c, &o, ts, sizeof ts - 1, &res);
    CHECK(st == 200 && res.rows_staged == 2 && res.rows_rejected == 1,
          "a date alone in a timestamp column: %s %d %s, %lld staged, %lld rejected", res.step, st,
          res.code, (long long)res.rows_staged, (long long)res.rows_rejected);
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT string_agg((\"时间\" = CASE row_no WHEN 1 THEN '2024-01-04'::timestamptz "
             "ELSE '2024-01-04T08:30:00+08:00' END)::text, '|' ORDER BY row_no) "
             "FROM registrar.stage_u%lld",
             (long long)res.upload);
    CHECK(st != 200 || (s_pg_text(pg, sql, got, sizeof got) && strcmp(got, "true|true") == 0),
          "the timestamps compare as %s", got);
    PQfinish(pg);

    /*  A property a field does not have. */
    char other[33];
    if (tp_entry(dept, "时间 属性", "dataset", NULL, false, other)) {
        /*  tp_pack_field packs only the keys a field has: this one is packed by hand. */
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_map(&pk, 2);
        tp_pack_cstr(&pk, "name");
        tp_pack_cstr(&pk, "a");
        tp_pack_cstr(&pk, "type");
        tp_pack_cstr(&pk, "text");
        msgpack_pack_map(&pk, 3);
        tp_pack_cstr(&pk, "name");
        tp_pack_cstr(&pk, "b");
        tp_pack_cstr(&pk, "type");
        tp_pack_cstr(&pk, "text");
        tp_pack_cstr(&pk, "format");
        tp_pack_cstr(&pk, "x");
        odp_dictionary_set_t m = {0};
        m.resource = odp_v_str(other);
        m.fields = odp_v_raw(buf.data, buf.size);
        odp_reply_t rep;
        st = h_call(c, &odp_def_dictionary_set, &m, &rep);
        char field[64], message[300];
        odp_v_cstr(&rep.err.field, field, sizeof field);
        odp_v_cstr(&rep.err.message, message, sizeof message);
        CHECK(st == 400 && strcmp(h_err_code(&rep), "UNKNOWN_FIELD") == 0 &&
                  strcmp(field, "fields[1].format") == 0 &&
                  strstr(message, "data dictionary field 2") && !strstr(message, "rec_"),
              "an unknown field property: %d %s '%s' '%s'", st, h_err_code(&rep), field, message);
        odp_reply_free(&rep);
        msgpack_sbuffer_destroy(&buf);
    }
    odp_client_destroy(&c);
}

/*  odp_db_exec with more parameters than its format array had room for (32): every
    value is a (ptr, len) view into one string, without a NUL after it, so a value read as
    NUL-terminated text would run on to the end of the string. */
static void s_db_many_params(void)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";
    enum { N = 40 };
    const char *vals[N];
    int lens[N];
    char sql[1024] = "SELECT ";
    for (int i = 0; i < N; i++) {
        vals[i] = letters + i;
        lens[i] = 1;
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), "%s$%d::text", i ? " || " : "",
                 i + 1);
    }
    odp_db_t *db = odp_db_new("registrar");
    PGresult *r = db ? odp_db_exec(db, sql, N, vals, lens) : NULL;
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    CHECK(ok, "a %d-parameter statement failed: %s", N, r ? PQresultErrorMessage(r) : "no result");
    if (ok)
        CHECK(strcmp(PQgetvalue(r, 0, 0), letters) == 0, "%d one-byte views came back as '%s'", N,
              PQgetvalue(r, 0, 0));
    PQclear(r);
    /*  Text-format numbers beside binary views, past the 32nd parameter too. */
    int nlens[N];
    char nums[N][12];
    for (int i = 0; i < N; i++) {
        snprintf(nums[i], sizeof nums[i], "%d", i);
        vals[i] = nums[i];
        nlens[i] = i % 2 ? -1 : (int)strlen(nums[i]);
    }
    char sum[1024] = "SELECT ";
    for (int i = 0; i < N; i++)
        snprintf(sum + strlen(sum), sizeof sum - strlen(sum), "%s$%d::text::int", i ? " + " : "",
                 i + 1);
    r = db ? odp_db_exec(db, sum, N, vals, nlens) : NULL;
    ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    CHECK(ok && strcmp(PQgetvalue(r, 0, 0), "780") == 0, "the sum of 0..39 came back as %s",
          ok ? PQgetvalue(r, 0, 0) : PQresultErrorMessage(r));
    PQclear(r);
    odp_db_destroy(&db);
}

/*  An idle push group is committed by the registrar's own timer: nothing else arrives,
    and the rows are durable (committed offset, rows in the staging table) all the same.
    The staging table is readable by the reviewer and the publisher, by no one else, and
    writable by none of them. */
static void s_idle_group_timer(void)
{
    h_service_stop("registrar");
    const char *env[] = {"ODP_REGISTRAR_COMMIT_SECONDS=1", "ODP_REGISTRAR_TICK_MS=200", NULL};
    CHECK(h_service_start("registrar", env) > 0, "registrar with a 1 s group time limit");
    const char *dept = "445200001";
    char resource[33];
    CHECK(h_department(dept, "推送测试 计时部门") == 0, "department.add");
    size_t len;
    char *data = tp_read("air_quality_daily.csv", &len);
    if (!data || !tp_entry(dept, "空气质量 计时", "dataset", "air_quality_daily", true, resource)) {
        free(data);
        goto restore;
    }
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .chunk = 8192, .max_chunks = 1};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200 && res.committed == 0, "one chunk: %d %s, committed %lld", st, res.code,
          (long long)res.committed);
    PGconn *pg = h_pg_super();
    int64_t before = s_pg_count(pg, "SELECT committed FROM registrar.uploads WHERE id = %lld",
                                (long long)res.upload);
    zclock_sleep(2500); /* no request meanwhile */
    int64_t after = s_pg_count(pg, "SELECT committed FROM registrar.uploads WHERE id = %lld",
                               (long long)res.upload);
    int64_t rows =
        s_pg_count(pg, "SELECT count(*) FROM registrar.stage_u%lld", (long long)res.upload);
    CHECK(before == 0 && after > 0 && rows > 0,
          "idle group not committed by the timer: committed %lld -> %lld, %lld rows",
          (long long)before, (long long)after, (long long)rows);
    PQfinish(pg);

    const struct {
        const char *role;
        bool read;
    } who[] = {{"reviewer", true}, {"publisher", true}, {"query", false}, {"metrics", false}};
    for (size_t i = 0; i < sizeof who / sizeof who[0]; i++) {
        PGconn *r = h_pg_role(who[i].role);
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM registrar.stage_u%lld",
                 (long long)res.upload);
        PGresult *q = PQexec(r, sql);
        bool read = PQresultStatus(q) == PGRES_TUPLES_OK;
        PQclear(q);
        CHECK(read == who[i].read, "odp_%s %s read a staging table", who[i].role,
              read ? "may" : "may not");
        snprintf(sql, sizeof sql, "DELETE FROM registrar.stage_u%lld", (long long)res.upload);
        q = PQexec(r, sql);
        const char *state = PQresultErrorField(q, PG_DIAG_SQLSTATE);
        CHECK(state && strcmp(state, "42501") == 0, "odp_%s may delete staged rows", who[i].role);
        PQclear(q);
        PQfinish(r);
    }
    odp_client_destroy(&c);
    free(data);
restore:
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", NULL) > 0, "registrar restarted");
}

const h_case_t t_push_cases[] = {
    {"push: the four clean samples are staged whole, typed by their dictionaries", s_clean},
    {"push: the messy GB18030 file stages 297 rows and keeps 3 rejects with reasons", s_messy},
    {"push: every column type is stored as PostgreSQL reads it (binary and text COPY)", s_types},
    {"push: identical content is one version; changed content is the next", s_versions},
    {"push: only the owning department pushes, and only to a registered entry", s_ownership},
    {"push: every transfer rule is enforced (format, encoding, size, chunk, row length)",
     s_rule_cases},
    {"push: wrong offset, wrong hash and a foreign header are refused", s_errors},
    {"push: acks hand chunks over; rows commit in groups, a resume rolls the open one back",
     s_groups},
    {"push: a group left open and idle is committed by the next push request", s_idle_group},
    {"push: a resumed push goes on at the committed row, each row exactly once", s_resume},
    {"push: after the registrar is killed mid-push, the push resumes exactly once", s_restart},
    {"push: a file (a 1 MB report) is stored whole and its hash verified", s_file},
    {"push: one department holding many idle uploads cannot lock the others out; idle slots are "
     "reclaimed",
     s_fair_share},
    {"push: a client sending 24 chunks at once under credit 8 is held to its credit", s_credit},
    {"push: a file pushed in the wrong encoding is corrected by a new version and withdrawn",
     s_wrong_encoding},
    {"push: a dictionary field named row_no or xmin is refused at dictionary.set",
     s_reserved_names},
    {"push: a date alone is a timestamp's midnight; a bad field property names the dictionary "
     "field",
     s_dates_and_wording},
    {"db: a statement with 40 parameters passes binary views and text numbers", s_db_many_params},
    {"push: an idle group commits on the registrar's timer with no further request; its staging "
     "table is read by the reviewer and publisher only",
     s_idle_group_timer},
    {NULL, NULL}};
