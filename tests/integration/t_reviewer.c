/*  The reviewer end to end: datasets pushed through the registrar as departments do, the
    reviewer (following data.received) running its checks, and review.show read back as
    operations and as the provider. Entries are set up and pushed with pushing.h. */
#include "pushing.h"

#include "common/json.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*  ---- checks ------------------------------------------------------------------------------ */

/*  ---- the review ---------------------------------------------------------------------------- */

/*  review.show of upload as the holder of cert (NULL: operations), waiting up to 60 s for the
    reviewer to have checked it (checked_at): a reviewer checking a large version answers
    late. The status, the reply in *rep (odp_reply_free it). */
static int s_show(const char *cert, int64_t upload, odp_reply_t *rep)
{
    odp_client_t *c = h_client("reviewer", cert);
    odp_review_show_t m = {0};
    m.upload = odp_v_int(upload);
    int st = 0;
    for (int64_t until = zclock_mono() + 60000; zclock_mono() < until;) {
        st = h_call(c, &odp_def_review_show, &m, rep);
        if (st != 0 && st != 404 && (st != 200 || odp_map_get(&rep->obj, "checked_at")))
            break;
        odp_reply_free(rep);
        usleep(100 * 1000);
    }
    odp_client_destroy(&c);
    return st;
}

/*  A count of a {name: count} map of the reply, 0 when absent. */
static int64_t s_count(const odp_reply_t *rep, const char *map, const char *key)
{
    const msgpack_object *m = odp_map_get(&rep->obj, map);
    const msgpack_object *v = m ? odp_map_get(m, key) : NULL;
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : 0;
}

static bool s_map_size(const odp_reply_t *rep, const char *map, uint32_t want)
{
    const msgpack_object *m = odp_map_get(&rep->obj, map);
    return m && m->type == MSGPACK_OBJECT_MAP && m->via.map.size == want;
}

static void s_messy(void)
{
    const char *dept = "446000001";
    char resource[33];
    CHECK(h_department(dept, "审核测试 脏数据部门") == 0, "department.add");
    if (!tp_entry(dept, "重点企业资产 审核", "dataset", "key_enterprise_assets", true, resource))
        return;
    size_t len;
    char *data = tp_read("key_enterprise_assets.messy.gb18030.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .encoding = "gb18030"};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200, "%s gave %d %s %s", res.step, st, res.code, res.message);
    odp_client_destroy(&c);
    free(data);
    if (st != 200)
        return;
    odp_reply_t rep;
    st = s_show(h_keyfile(dept), res.upload, &rep);
    CHECK(st == 200, "review.show as the provider: %d %s", st, h_err_code(&rep));
    if (st == 200) {
        CHECK(h_int(&rep, "received") == 300 && h_int(&rep, "accepted") == 292 &&
                  h_int(&rep, "quarantined") == 8 && h_int(&rep, "dropped") == 0,
              "received %lld accepted %lld quarantined %lld dropped %lld, not 300 = 292 + 8",
              (long long)h_int(&rep, "received"), (long long)h_int(&rep, "accepted"),
              (long long)h_int(&rep, "quarantined"), (long long)h_int(&rep, "dropped"));
        CHECK(h_int(&rep, "findings") == 9, "%lld findings, not 9",
              (long long)h_int(&rep, "findings"));
        static const struct {
            const char *map, *key;
            int64_t n;
        } want[] = {{"by_type", "type-error", 1},    {"by_type", "missing-cell", 1},
                    {"by_type", "extra-cell", 1},    {"by_type", "constraint-error", 4},
                    {"by_type", "unique-error", 1},  {"by_check", "type", 1},
                    {"by_check", "ragged", 2},       {"by_check", "uscc", 1},
                    {"by_check", "required", 1},     {"by_check", "unique", 1},
                    {"by_check", "minimum", 1},      {"by_check", "enum", 1},
                    {"by_type", "duplicate-row", 1}, {"by_check", "duplicate-row", 1}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            CHECK(s_count(&rep, want[i].map, want[i].key) == want[i].n, "%s %s: %lld, not %lld",
                  want[i].map, want[i].key, (long long)s_count(&rep, want[i].map, want[i].key),
                  (long long)want[i].n);
        CHECK(s_map_size(&rep, "by_type", 6) && s_map_size(&rep, "by_check", 8),
              "findings of other types or checks than expected");
        char state[17];
        tp_str(&rep, "state", state, sizeof state);
        CHECK(strcmp(state, "in_review") == 0, "state %s, not in_review", state);
    }
    odp_reply_free(&rep);
    /*  The isolated rows are the eight of the fixture, one of the duplicate pair (the
        repeat breaks unique and is a duplicate row: 9 findings on 8 rows). */
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.quarantine WHERE upload = %lld AND state = 'isolated' "
             "AND row_no IN (11, 12, 13, 14, 15, 18, 19) ",
             (long long)res.upload);
    CHECK(h_pg_int(pg, sql) == 7, "rows 11-15, 18, 19 are not all isolated");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.quarantine WHERE upload = %lld AND row_no IN (16, 17)",
             (long long)res.upload);
    CHECK(h_pg_int(pg, sql) == 1, "not exactly one of the duplicate rows 16/17 is isolated");
    PQfinish(pg);
    /*  Another department does not see this version's review. */
    const char *other = "446000009";
    CHECK(h_department(other, "审核测试 另一部门") == 0, "department.add");
    odp_client_t *oc = h_client("reviewer", h_keyfile(other));
    odp_review_show_t m = {0};
    m.upload = odp_v_int(res.upload);
    st = h_call(oc, &odp_def_review_show, &m, &rep);
    CHECK(st == 404, "another department's review.show: %d, not 404", st);
    odp_reply_free(&rep);
    odp_client_destroy(&oc);
}

static void s_clean(void)
{
    static const char *const names[] = {"air_quality_daily", "key_enterprise_assets",
                                        "land_use_status", "medical_institutions"};
    const char *dept = "446000002";
    CHECK(h_department(dept, "审核测试 清洁样本部门") == 0, "department.add");
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char file[128], resource[33];
        snprintf(file, sizeof file, "%s.csv", names[i]);
        size_t len;
        char *data = tp_read(file, &len);
        if (!data || !tp_entry(dept, names[i], "dataset", names[i], true, resource)) {
            free(data);
            continue;
        }
        tp_opts_t o = {.resource = resource};
        tp_result_t res;
        int st = tp_push(c, &o, data, len, &res);
        CHECK(st == 200, "%s: %s gave %d %s", names[i], res.step, st, res.code);
        free(data);
        if (st != 200)
            continue;
        odp_reply_t rep;
        st = s_show(NULL, res.upload, &rep);
        CHECK(st == 200, "%s: review.show: %d %s", names[i], st, h_err_code(&rep));
        if (st == 200)
            CHECK(h_int(&rep, "findings") == 0 && h_int(&rep, "quarantined") == 0 &&
                      h_int(&rep, "accepted") == res.rows_received,
                  "%s: %lld findings, %lld quarantined, %lld of %lld accepted", names[i],
                  (long long)h_int(&rep, "findings"), (long long)h_int(&rep, "quarantined"),
                  (long long)h_int(&rep, "accepted"), (long long)res.rows_received);
        odp_reply_free(&rep);
    }
    odp_client_destroy(&c);
}

/*  A dictionary using every check, and rows on both sides of each: rows 1 and 2 pass
    everything (at the boundaries), each later row breaks exactly one check. */
static void s_every_check(void)
{
    const char *dept = "446000003";
    CHECK(h_department(dept, "审核测试 规则部门") == 0, "department.add");
    char dict[512];
    snprintf(dict, sizeof dict, "%s/reviewer-checks.dict.json", h_var());
    json_t *d = json_pack(
        "{s:[{s:s,s:s,s:b,s:b,s:s},{s:s,s:s,s:s},{s:s,s:s,s:[s,s]},{s:s,s:s,s:i,s:i},"
        "{s:s,s:s,s:i},{s:s,s:s,s:s}]}",
        "fields", "name", "code", "type", "text", "required", 1, "unique", 1, "check", "uscc",
        "name", "id", "type", "text", "check", "idcard", "name", "city", "type", "text", "enum",
        "A", "B", "name", "n", "type", "integer", "min", 1, "max", 10, "name", "label", "type",
        "text", "length", 3, "name", "tag", "type", "text", "pattern", "[a-z]+");
    CHECK(d && json_dump_file(d, dict, 0) == 0, "cannot write %s", dict);
    json_decref(d);
    char resource[33];
    if (!tp_entry(dept, "审核 全部规则", "dataset", dict, true, resource))
        return;
    static const char csv[] = "code,id,city,n,label,tag\n"
                              "91440100MA5A000013,11010519491231002X,A,1,abc,abc\n"
                              "91440300MA5A00002G,440106198001011230,B,10,ab,z\n"
                              "91440400MA5A00003R,440106198001011230,A,5,ab,z\n"
                              "91440100MA5A000013,440106198001011230,A,5,ab,z\n"
                              "91440500MA5A000041,440106198001011231,A,5,ab,z\n"
                              "91440600MA5A000059,440106198001011230,C,5,ab,z\n"
                              "91440700MA5A00006H,440106198001011230,A,0,ab,z\n"
                              "91440800MA5A00007R,440106198001011230,A,11,ab,z\n"
                              "91440900MA5A000082,440106198001011230,A,5,abcd,z\n"
                              "91441000MA5A000093,440106198001011230,A,5,ab,ab1\n"
                              ",440106198001011230,A,5,ab,z\n";
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(c, &o, csv, sizeof csv - 1, &res);
    CHECK(st == 200 && res.rows_rejected == 0, "push: %s gave %d %s %s, %lld rejected", res.step,
          st, res.code, res.message, (long long)res.rows_rejected);
    odp_client_destroy(&c);
    if (st != 200)
        return;
    odp_reply_t rep;
    st = s_show(NULL, res.upload, &rep);
    CHECK(st == 200, "review.show: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    static const struct {
        int row;
        const char *field, *check, *type;
    } want[] = {
        {3, "code", "uscc", "constraint-error"},       {4, "code", "unique", "unique-error"},
        {5, "id", "idcard", "constraint-error"},       {6, "city", "enum", "constraint-error"},
        {7, "n", "minimum", "constraint-error"},       {8, "n", "maximum", "constraint-error"},
        {9, "label", "maxLength", "constraint-error"}, {10, "tag", "pattern", "constraint-error"},
        {11, "code", "required", "constraint-error"}};
    PGconn *pg = h_pg_super();
    char sql[400];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM reviewer.findings WHERE upload = %lld",
             (long long)res.upload);
    CHECK(h_pg_int(pg, sql) == 9, "%lld findings, not 9 (one per breaking row)",
          (long long)h_pg_int(pg, sql));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM reviewer.findings WHERE upload = %lld AND row_no = %d AND "
                 "field = '%s' AND check_name = '%s' AND type = '%s'",
                 (long long)res.upload, want[i].row, want[i].field, want[i].check, want[i].type);
        CHECK(h_pg_int(pg, sql) == 1, "row %d: no %s finding %s on %s", want[i].row, want[i].type,
              want[i].check, want[i].field);
    }
    PQfinish(pg);
}

/*  A pattern with character classes keeps its meaning for Chinese on a staging table in
    the collation code_point: its LC_CTYPE is the database's (C.UTF-8), so [[:alpha:]] and
    \w take Chinese characters as letters, as before; under the collation "C" they would
    not (checked below, so that this case can tell the two apart). */
static void s_pattern_classes(void)
{
    const char *dept = "448900002";
    CHECK(h_department(dept, "审核测试 字符类部门") == 0, "department.add");
    char dict[512];
    snprintf(dict, sizeof dict, "%s/reviewer-classes.dict.json", h_var());
    json_t *d =
        json_pack("{s:[{s:s,s:s,s:s},{s:s,s:s,s:s}]}", "fields", "name", "名称", "type", "text",
                  "pattern", "[[:alpha:]]+", "name", "代码", "type", "text", "pattern", "\\w{2,}");
    CHECK(d && json_dump_file(d, dict, 0) == 0, "cannot write %s", dict);
    json_decref(d);
    char resource[33];
    if (!tp_entry(dept, "审核 字符类", "dataset", dict, true, resource))
        return;
    static const char csv[] = "名称,代码\n"
                              "广州市,中文ab\n"
                              "深圳,汕头_1\n"
                              "A1,中-文\n";
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(c, &o, csv, sizeof csv - 1, &res);
    CHECK(st == 200 && res.rows_rejected == 0, "push: %s gave %d %s %s", res.step, st, res.code,
          res.message);
    odp_client_destroy(&c);
    if (st != 200 || !tp_checked(res.upload))
        return;
    PGconn *pg = h_pg_super();
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.findings WHERE upload = %lld AND check_name = "
             "'pattern' AND row_no = 3",
             (long long)res.upload);
    CHECK(h_pg_int(pg, sql) == 2, "row 3 (A1, 中-文) does not break both patterns: %lld findings",
          (long long)h_pg_int(pg, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM reviewer.findings WHERE upload = %lld",
             (long long)res.upload);
    CHECK(h_pg_int(pg, sql) == 2, "%lld findings, not 2: Chinese does not match a class",
          (long long)h_pg_int(pg, sql));
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registrar.stage_u%lld WHERE \"名称\" ~ '^[[:alpha:]]+$' AND "
             "NOT \"名称\" COLLATE \"C\" ~ '^[[:alpha:]]+$'",
             (long long)res.upload);
    CHECK(h_pg_int(pg, sql) == 2, "the collation \"C\" would read the classes as the staging "
                                  "table's collation does: this case proves nothing");
    PQfinish(pg);
}

/*  Push csv under a dictionary of fields (a JSON array) as dept in chunks of chunk bytes
    (0: the registrar's), wait for its review: the upload, or 0. */
static int64_t s_push_reviewed_in(const char *dept, const char *name, const char *fields,
                                  const char *csv, size_t chunk)
{
    char title[96];
    snprintf(title, sizeof title, "审核测试 %s部门", name);
    CHECK(h_department(dept, title) == 0, "department.add");
    char dict[512];
    snprintf(dict, sizeof dict, "%s/%s.dict.json", h_var(), name);
    FILE *f = fopen(dict, "w");
    CHECK(f && fprintf(f, "{\"fields\": %s}", fields) > 0, "cannot write %s", dict);
    if (f)
        fclose(f);
    char resource[33];
    if (!tp_entry(dept, name, "dataset", dict, true, resource))
        return 0;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .chunk = chunk};
    tp_result_t res;
    int st = tp_push(c, &o, csv, strlen(csv), &res);
    CHECK(st == 200 && res.rows_rejected == 0, "push: %s gave %d %s %s, %lld rejected", res.step,
          st, res.code, res.message, (long long)res.rows_rejected);
    odp_client_destroy(&c);
    return st == 200 && tp_checked(res.upload) ? res.upload : 0;
}

static int64_t s_push_reviewed(const char *dept, const char *name, const char *fields,
                               const char *csv)
{
    return s_push_reviewed_in(dept, name, fields, csv, 0);
}

/*  A pattern of the shape 005_cheaper_checks.sql takes a short cut for (a literal prefix,
    one run of a bracket expression or \d with a count) finds exactly the values its regular
    expression does not match: values the short cut takes (row 1, row 6) pass, and values
    next to them - a byte after '9' (':'), full-width digits, a lower-case letter or prefix,
    a run one too short or too long, a non-ASCII digit - are found. */
static void s_pattern_shortcut(void)
{
    static const char fields[] =
        "[{\"name\": \"code\", \"type\": \"text\", \"pattern\": \"B[0-9]{10}\"},"
        " {\"name\": \"hex\", \"type\": \"text\", \"pattern\": \"X[0-9A-F]{2,4}\"},"
        " {\"name\": \"num\", \"type\": \"text\", \"pattern\": \"\\\\d{3}\"}]";
    static const char csv[] = "code,hex,num\n"
                              "B0123456789,X0F,123\n"
                              "B012345678,X0f,12\n"
                              "B:123456789,XG1,1٢3\n"
                              "B０１２３４５６７８９,X0F1F2,1234\n"
                              "b0123456789,X,12a\n"
                              "B01234567890,XAB12,000\n";
    int64_t upload = s_push_reviewed("449200001", "审核 模式捷径", fields, csv);
    if (!upload)
        return;
    PGconn *pg = h_pg_super();
    CHECK(h_pg_int(pg, "SELECT count(*) FROM unnest(ARRAY['B[0-9]{10}', 'X[0-9A-F]{2,4}', "
                       "'\\d{3}']) p WHERE reviewer.pattern_shortcut('v', p) IS NOT NULL") == 3,
          "a pattern here takes no short cut: this case proves nothing about it");
    char sql[600];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.findings WHERE upload = %lld AND check_name = "
             "'pattern' AND row_no || ':' || field = ANY ('{2:code,2:hex,2:num,3:code,3:hex,3:num,"
             "4:code,4:hex,4:num,5:code,5:hex,5:num,6:code}')",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 13, "%lld of the 13 pattern findings expected",
          (long long)h_pg_int(pg, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM reviewer.findings WHERE upload = %lld",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 13, "%lld findings, not 13", (long long)h_pg_int(pg, sql));
    /*  The regular expressions themselves, row by row, say the same. */
    snprintf(sql, sizeof sql,
             "SELECT (NOT code ~ '^(?:B[0-9]{10})$')::int + (NOT hex ~ '^(?:X[0-9A-F]{2,4})$')"
             "::int + (NOT num ~ '^(?:\\d{3})$')::int FROM registrar.stage_u%lld",
             (long long)upload);
    char total[700];
    snprintf(total, sizeof total, "SELECT sum(n) FROM (%s) r(n)", sql);
    CHECK(h_pg_int(pg, total) == 13, "the regular expressions find %lld, not 13",
          (long long)h_pg_int(pg, total));
    PQfinish(pg);
}

/*  ---- quarantine, decision, standard -------------------------------------------------------- */

/*  The messy sample pushed by a new department dept: its upload, 0 when a step failed. */
static int64_t s_messy_upload(const char *dept)
{
    char resource[33], name[64];
    snprintf(name, sizeof name, "审核测试 处理部门 %s", dept);
    CHECK(h_department(dept, name) == 0, "department.add");
    if (!tp_entry(dept, "重点企业资产 处理", "dataset", "key_enterprise_assets", true, resource))
        return 0;
    size_t len;
    char *data = tp_read("key_enterprise_assets.messy.gb18030.csv", &len);
    if (!data)
        return 0;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .encoding = "gb18030"};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    CHECK(st == 200, "%s gave %d %s %s", res.step, st, res.code, res.message);
    odp_client_destroy(&c);
    free(data);
    odp_reply_t rep;
    if (st == 200) {
        st = s_show(NULL, res.upload, &rep);
        CHECK(st == 200, "review.show: %d %s", st, h_err_code(&rep));
        odp_reply_free(&rep);
    }
    return st == 200 ? res.upload : 0;
}

/*  review.show's counts as operations: true when they are want (accepted, quarantined,
    dropped) and add up to received. */
static bool s_counts(int64_t upload, int64_t accepted, int64_t quarantined, int64_t dropped,
                     const char *after)
{
    odp_reply_t rep;
    int st = s_show(NULL, upload, &rep);
    bool ok = st == 200 && h_int(&rep, "accepted") == accepted &&
              h_int(&rep, "quarantined") == quarantined && h_int(&rep, "dropped") == dropped &&
              h_int(&rep, "received") == accepted + quarantined + dropped;
    CHECK(ok,
          "after %s: %d, received %lld accepted %lld quarantined %lld dropped %lld, not %lld "
          "+ %lld + %lld",
          after, st, (long long)h_int(&rep, "received"), (long long)h_int(&rep, "accepted"),
          (long long)h_int(&rep, "quarantined"), (long long)h_int(&rep, "dropped"),
          (long long)accepted, (long long)quarantined, (long long)dropped);
    odp_reply_free(&rep);
    return ok;
}

/*  quarantine.handle as the holder of cert (NULL: operations): the status, the error code
    in code. */
static int s_handle(const char *cert, int64_t upload, int64_t row, const char *outcome,
                    const char *new_value, char code[40])
{
    odp_client_t *c = h_client("reviewer", cert);
    odp_quarantine_handle_t m = {0};
    m.upload = odp_v_int(upload);
    m.row = odp_v_int(row);
    m.outcome = odp_v_str(outcome);
    m.comment = odp_v_str("核对后处理");
    m.new_value = odp_v_str(new_value);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_quarantine_handle, &m, &rep);
    snprintf(code, 40, "%s", st == 200 ? "" : h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

/*  The rows of upload in state (NULL: any), as listed by quarantine.list, into rows. */
static uint32_t s_cases(int64_t upload, const char *state, int64_t *rows, uint32_t max)
{
    odp_client_t *c = h_client("reviewer", NULL);
    odp_quarantine_list_t m = {0};
    m.upload = odp_v_int(upload);
    m.state = odp_v_str(state);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_quarantine_list, &m, &rep);
    CHECK(st == 200, "quarantine.list: %d %s", st, h_err_code(&rep));
    const msgpack_object *items = st == 200 ? odp_map_get(&rep.obj, "items") : NULL;
    uint32_t n = 0;
    for (uint32_t i = 0; items && i < items->via.array.size && n < max; i++) {
        const msgpack_object *row = odp_map_get(&items->via.array.ptr[i], "row");
        if (row && row->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            rows[n++] = (int64_t)row->via.u64;
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return n;
}

/*  review.decide as the holder of cert (NULL: operations); the status, the code, the
    message. */
static int s_decide(const char *cert, int64_t upload, bool approve, const char *reason,
                    char code[40], char message[300])
{
    odp_client_t *c = h_client("reviewer", cert);
    odp_review_decide_t m = {0};
    m.upload = odp_v_int(upload);
    m.approve = odp_v_bool(approve);
    m.reason = odp_v_str(reason);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_review_decide, &m, &rep);
    code[0] = message[0] = '\0';
    if (st != 200) {
        snprintf(code, 40, "%s", h_err_code(&rep));
        odp_v_cstr(&rep.err.message, message, 300);
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

static void s_handling(void)
{
    const char *dept = "446100001";
    int64_t upload = s_messy_upload(dept);
    if (!upload || !s_counts(upload, 292, 8, 0, "the review"))
        return;
    int64_t rows[8];
    CHECK(s_cases(upload, "isolated", rows, 8) == 8, "not 8 isolated rows listed");
    char code[40], message[300];
    int st = s_handle(h_keyfile(dept), upload, rows[0], "released", NULL, code);
    CHECK(st == 403 && strcmp(code, "FORBIDDEN") == 0, "a provider's quarantine.handle: %d %s", st,
          code);
    st = s_handle(NULL, upload, rows[0], "corrected", NULL, code);
    CHECK(st == 422 && strcmp(code, "INVALID_VALUE") == 0, "a correction without a value: %d %s",
          st, code);
    st = s_handle(NULL, upload, rows[0], "dropped", NULL, code);
    CHECK(st == 200, "dropped: %d %s", st, code);
    s_counts(upload, 292, 7, 1, "dropped");
    st = s_handle(NULL, upload, rows[0], "released", NULL, code);
    CHECK(st == 409 && strcmp(code, "INVALID_STATE") == 0, "handled twice: %d %s", st, code);
    st = s_handle(NULL, upload, rows[1], "released", NULL, code);
    CHECK(st == 200, "released: %d %s", st, code);
    s_counts(upload, 293, 6, 1, "released");
    st = s_handle(NULL, upload, rows[2], "corrected", "91440100MA5A000013", code);
    CHECK(st == 200, "corrected: %d %s", st, code);
    s_counts(upload, 294, 5, 1, "corrected");
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.quarantine WHERE upload = %lld AND row_no = %lld AND "
             "state = 'corrected' AND new_value = '91440100MA5A000013' AND old_value IS NOT NULL "
             "AND handled_by LIKE 'operations:%%' AND handled_at IS NOT NULL AND comment <> ''",
             (long long)upload, (long long)rows[2]);
    CHECK(h_pg_int(pg, sql) == 1, "the correction is not recorded with old and new value");
    PQfinish(pg);

    /*  The decision: not by the provider, not while rows wait, then by operations. */
    st = s_decide(h_keyfile(dept), upload, true, NULL, code, message);
    CHECK(st == 403 && strcmp(code, "FORBIDDEN") == 0, "a provider's approval: %d %s", st, code);
    st = s_decide(NULL, upload, true, NULL, code, message);
    CHECK(st == 409 && strcmp(code, "INVALID_STATE") == 0 && strstr(message, " 5 "),
          "approval with 5 open cases: %d %s %s", st, code, message);
    for (int i = 3; i < 8; i++) {
        st = s_handle(NULL, upload, rows[i], "released", NULL, code);
        CHECK(st == 200, "released row %lld: %d %s", (long long)rows[i], st, code);
    }
    s_counts(upload, 299, 0, 1, "all handled");
    CHECK(s_cases(upload, "isolated", rows, 8) == 0 && s_cases(upload, NULL, rows, 8) == 8,
          "the handled rows are not all kept and listed");
    st = s_decide(NULL, upload, true, NULL, code, message);
    CHECK(st == 200, "approval after handling: %d %s %s", st, code, message);
    odp_reply_t rep;
    st = s_show(h_keyfile(dept), upload, &rep);
    char state[17];
    tp_str(&rep, "state", state, sizeof state);
    CHECK(st == 200 && strcmp(state, "approved") == 0, "the provider sees %d %s, not approved", st,
          state);
    odp_reply_free(&rep);
    pg = h_pg_super();
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.signoffs WHERE upload = %lld AND decision = "
             "'approved' AND decided_by LIKE 'operations:%%' AND (findings->>'received')::int = "
             "300",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 1, "no sign-off record with the findings summary");
    PQfinish(pg);
}

/*  A rejection's reason reaches the department: in review.show and in its event replay. */
static void s_rejected(void)
{
    const char *dept = "446100002";
    int64_t upload = s_messy_upload(dept);
    if (!upload)
        return;
    char code[40], message[300];
    int st = s_decide(NULL, upload, false, NULL, code, message);
    CHECK(st == 400 && strcmp(code, "MISSING_FIELD") == 0, "a rejection without reason: %d %s", st,
          code);
    st = s_decide(NULL, upload, false, "统一社会信用代码错误过多，请核对后重新推送", code, message);
    CHECK(st == 200, "rejection: %d %s %s", st, code, message);
    odp_reply_t rep;
    st = s_show(h_keyfile(dept), upload, &rep);
    char state[17], reason[200];
    tp_str(&rep, "state", state, sizeof state);
    tp_str(&rep, "reason", reason, sizeof reason);
    CHECK(st == 200 && strcmp(state, "rejected") == 0 &&
              strcmp(reason, "统一社会信用代码错误过多，请核对后重新推送") == 0,
          "the provider sees %d state %s reason %s", st, state, reason);
    odp_reply_free(&rep);
    st = s_decide(NULL, upload, true, NULL, code, message);
    CHECK(st == 409 && strcmp(code, "INVALID_STATE") == 0, "deciding twice: %d %s", st, code);
}

static int s_standard(const char *check, double mostly)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, check ? 1 : 0);
    if (check) {
        msgpack_pack_map(&pk, 2);
        tp_pack_cstr(&pk, "check");
        tp_pack_cstr(&pk, check);
        tp_pack_cstr(&pk, "mostly");
        msgpack_pack_double(&pk, mostly);
    }
    odp_client_t *c = h_client("reviewer", NULL);
    odp_standard_set_t m = {0};
    m.checks = odp_v_raw(buf.data, buf.size);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_standard_set, &m, &rep);
    int64_t version = st == 200 ? h_int(&rep, "version") : 0;
    CHECK(st == 200 && version >= 1, "standard.set: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    msgpack_sbuffer_destroy(&buf);
    return (int)version;
}

/*  A standard allowing half the rows to fail the pattern: a version where two thirds fail it
    is rejected by the reviewer itself. The standard is emptied again afterwards, so other
    tests' versions are reviewed without thresholds. */
static void s_threshold(void)
{
    const char *dept = "446100003";
    CHECK(h_department(dept, "审核测试 阈值部门") == 0, "department.add");
    char dict[512];
    snprintf(dict, sizeof dict, "%s/reviewer-threshold.dict.json", h_var());
    json_t *d = json_pack("{s:[{s:s,s:s,s:s}]}", "fields", "name", "tag", "type", "text", "pattern",
                          "[a-z]+");
    CHECK(d && json_dump_file(d, dict, 0) == 0, "cannot write %s", dict);
    json_decref(d);
    char resource[33];
    if (!tp_entry(dept, "审核 阈值", "dataset", dict, true, resource))
        return;
    int before = s_standard("pattern", 0.5);
    static const char csv[] = "tag\nabc\nab1\nAB\n";
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(c, &o, csv, sizeof csv - 1, &res);
    CHECK(st == 200, "push: %s gave %d %s", res.step, st, res.code);
    odp_client_destroy(&c);
    odp_reply_t rep;
    if (st == 200) {
        st = s_show(h_keyfile(dept), res.upload, &rep);
        char state[17], reason[300];
        tp_str(&rep, "state", state, sizeof state);
        tp_str(&rep, "reason", reason, sizeof reason);
        CHECK(st == 200 && strcmp(state, "rejected") == 0 && strstr(reason, "pattern") &&
                  strstr(reason, "66.67%"),
              "over the threshold: %d state %s reason %s", st, state, reason);
        odp_reply_free(&rep);
    }
    int after = s_standard(NULL, 0);
    CHECK(after == before + 1, "standard versions %d then %d", before, after);
    odp_client_t *oc = h_client("reviewer", NULL);
    odp_standard_get_t g = {0};
    st = h_call(oc, &odp_def_standard_get, &g, &rep);
    const msgpack_object *checks = odp_map_get(&rep.obj, "checks");
    CHECK(st == 200 && h_int(&rep, "version") == after && checks &&
              checks->type == MSGPACK_OBJECT_ARRAY && checks->via.array.size == 0,
          "standard.get: %d version %lld", st, (long long)h_int(&rep, "version"));
    odp_reply_free(&rep);
    odp_client_destroy(&oc);
}

/*  odpctl sends review.* to the reviewer: the queue, as JSON. */
static void s_odpctl_queue(void)
{
    const char *dept = "446100004";
    int64_t upload = s_messy_upload(dept);
    if (!upload)
        return;
    char bin[512], out[512], err[512];
    snprintf(bin, sizeof bin, "%s/odpctl", h_bin());
    snprintf(out, sizeof out, "%s/odpctl-review-queue.out", h_var());
    snprintf(err, sizeof err, "%s/odpctl-review-queue.err", h_var());
    remove(out);
    remove(err);
    const char *argv[] = {bin, "--json", "review", "queue", NULL};
    pid_t pid = h_spawn(argv, NULL, out, err);
    int rc = h_wait_exit(pid, 10000);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    json_t *items = json_object_get(j, "items");
    bool found = false;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        if (json_integer_value(json_object_get(it, "upload")) == upload)
            found = json_integer_value(json_object_get(it, "isolated")) == 8 &&
                    json_is_string(json_object_get(it, "department")) &&
                    strcmp(json_string_value(json_object_get(it, "department")), dept) == 0;
    }
    CHECK(rc == 0 && found, "odpctl review queue exited %d without upload %lld (see %s)", rc,
          (long long)upload, out);
    json_decref(j);
}

/*  ---- table checks, dictionary revisions, compare, report, score ---------------------------- */

/*  d (stolen) as h_var()/name.dict.json; the path in path. */
static bool s_dict_file(const char *name, json_t *d, char path[512])
{
    snprintf(path, 512, "%s/%s.dict.json", h_var(), name);
    bool ok = d && json_dump_file(d, path, 0) == 0;
    CHECK(ok, "cannot write %s", path);
    json_decref(d);
    return ok;
}

/*  csv pushed to resource by dept and checked by the reviewer: its upload, 0 on failure. */
static int64_t s_push_csv(const char *dept, const char *resource, const char *csv)
{
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(c, &o, csv, strlen(csv), &res);
    CHECK(st == 200, "push: %s gave %d %s %s", res.step, st, res.code, res.message);
    odp_client_destroy(&c);
    if (st != 200)
        return 0;
    odp_reply_t rep;
    st = s_show(NULL, res.upload, &rep);
    CHECK(st == 200 && odp_map_get(&rep.obj, "checked_at"), "review.show: %d %s, checked %d", st,
          h_err_code(&rep), st == 200 && odp_map_get(&rep.obj, "checked_at") != NULL);
    odp_reply_free(&rep);
    return st == 200 ? res.upload : 0;
}

/*  The number of findings of upload matching the SQL condition cond. */
static int64_t s_findings(PGconn *pg, int64_t upload, const char *cond)
{
    char sql[600];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM reviewer.findings WHERE upload = %lld AND %s",
             (long long)upload, cond);
    return h_pg_int(pg, sql);
}

/*  minLength and a primary key over two fields, on both sides of each boundary; duplicate
    and blank rows in a table without a key. */
static void s_table_checks(void)
{
    const char *dept = "446200001";
    CHECK(h_department(dept, "审核测试 表级规则部门") == 0, "department.add");
    char dict[512], resource[33];
    if (!s_dict_file("reviewer-pk",
                     json_pack("{s:[{s:s,s:s,s:b},{s:s,s:s,s:b},{s:s,s:s,s:i,s:i}]}", "fields",
                               "name", "k1", "type", "integer", "primary_key", 1, "name", "k2",
                               "type", "text", "primary_key", 1, "name", "label", "type", "text",
                               "min_length", 2, "length", 4),
                     dict) ||
        !tp_entry(dept, "审核 主键与最短长度", "dataset", dict, true, resource))
        return;
    /*  The registrar keeps min_length for text only, and not above length. */
    static const struct {
        const char *file, *type;
        int min_length, length;
    } wrong[] = {{"reviewer-minlen-int", "integer", 2, 0}, {"reviewer-minlen-long", "text", 5, 4}};
    odp_client_t *reg = h_client("registrar", h_keyfile(dept));
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        json_t *f = json_pack("{s:s,s:s,s:i}", "name", "v", "type", wrong[i].type, "min_length",
                              wrong[i].min_length);
        if (wrong[i].length)
            json_object_set_new(f, "length", json_integer(wrong[i].length));
        if (!s_dict_file(wrong[i].file, json_pack("{s:[o]}", "fields", f), path))
            continue;
        odp_reply_t rep;
        int st = tp_dictionary_call(reg, resource, path, &rep);
        char field[65] = "";
        odp_v_cstr(&rep.err.field, field, sizeof field);
        CHECK(st == 422 && strcmp(h_err_code(&rep), "INVALID_VALUE") == 0 &&
                  strcmp(field, "fields[0].min_length") == 0,
              "%s: %d %s %s", wrong[i].file, st, h_err_code(&rep), field);
        odp_reply_free(&rep);
    }
    odp_client_destroy(&reg);
    /*  1, 2 pass at both length boundaries (2 and 4) and share k1 but not k2; 3 is one
        character short; 4 repeats row 1's key (k1, k2) with another label; 7 is empty
        (minLength leaves empty values to required). */
    int64_t upload = s_push_csv(dept, resource,
                                "k1,k2,label\n1,a,ab\n1,b,abcd\n2,a,a\n1,a,abc\n3,c,xyz\n"
                                "4,a,xyz\n4,d,\n");
    PGconn *pg = h_pg_super();
    if (upload) {
        CHECK(s_findings(pg, upload, "true") == 2, "%lld findings, not 2",
              (long long)s_findings(pg, upload, "true"));
        CHECK(s_findings(pg, upload,
                         "row_no = 3 AND field = 'label' AND check_name = 'minLength' AND "
                         "type = 'constraint-error' AND value = 'a'") == 1,
              "row 3: no minLength finding");
        CHECK(s_findings(pg, upload,
                         "row_no = 4 AND field = 'k1,k2' AND check_name = 'primary-key' AND "
                         "type = 'primary-key' AND message LIKE '%repeats row 1'") == 1,
              "row 4: no primary-key finding naming row 1");
    }
    /*  Without a key: 3 repeats row 1 in every column (2 differs in b only); 4 and 5 are
        blank (5 repeats 4 but is reported as blank only); 6 has one cell. */
    if (s_dict_file("reviewer-rows",
                    json_pack("{s:[{s:s,s:s},{s:s,s:s}]}", "fields", "name", "a", "type", "text",
                              "name", "b", "type", "integer"),
                    dict) &&
        tp_entry(dept, "审核 重复与空行", "dataset", dict, true, resource)) {
        upload = s_push_csv(dept, resource, "a,b\nx,1\nx,2\nx,1\n,\n,\ny,\n");
        if (upload) {
            CHECK(s_findings(pg, upload, "true") == 3, "%lld findings, not 3",
                  (long long)s_findings(pg, upload, "true"));
            CHECK(s_findings(pg, upload,
                             "row_no = 3 AND type = 'duplicate-row' AND message LIKE "
                             "'%repeats row 1'") == 1,
                  "row 3: no duplicate-row finding naming row 1");
            CHECK(s_findings(pg, upload, "row_no IN (4, 5) AND type = 'blank-row'") == 2,
                  "rows 4, 5: not both blank-row");
            /*  Its score: 3 of 6 rows fail (validity 0.5), one row repeats (consistency
                0.8333), nothing required or constrained (both 1): 25 * 3.3333 = 83.33. */
            char sql[300];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM reviewer.quality_scores WHERE upload = %lld AND "
                     "rows_passing = 3 AND validity = 0.5 AND consistency = 0.8333 AND "
                     "completeness = 1 AND normativity = 1 AND score = 83.33",
                     (long long)upload);
            CHECK(h_pg_int(pg, sql) == 1, "the score of upload %lld is not 83.33 from its parts",
                  (long long)upload);
            /*  The metrics service and the publisher read scores, sign-offs and quarantine. */
            static const char *const roles[] = {"metrics", "publisher"};
            for (size_t i = 0; i < 2; i++) {
                PGconn *rc = h_pg_role(roles[i]);
                snprintf(sql, sizeof sql,
                         "SELECT count(*) FROM reviewer.quality_scores q JOIN reviewer.reviews v "
                         "USING (upload) LEFT JOIN reviewer.signoffs s USING (upload) WHERE "
                         "q.upload = %lld AND EXISTS (SELECT 1 FROM reviewer.quarantine WHERE "
                         "upload = q.upload) AND (SELECT count(*) FROM reviewer.standards) >= 0",
                         (long long)upload);
                CHECK(h_pg_int(rc, sql) == 1, "odp_%s cannot read the reviewer's outcome",
                      roles[i]);
                PQfinish(rc);
            }
            PGconn *q = h_pg_role("query");
            PQsetNoticeProcessor(q, NULL, NULL);
            CHECK(h_pg_int(q, "SELECT count(*) FROM reviewer.quality_scores") == -1,
                  "odp_query reads reviewer.quality_scores");
            PQfinish(q);
        }
    }
    PQfinish(pg);
}

/*  h_pg_int(sql) until it is want, up to 20 s; the last value. */
static int64_t s_wait_int(PGconn *pg, const char *sql, int64_t want)
{
    int64_t got = -1;
    for (int i = 0; i < 200 && (got = h_pg_int(pg, sql)) != want; i++)
        usleep(100 * 1000);
    return got;
}

/*  A version begun with dictionary revision 1 is checked with revision 1 even when
    revision 2 came before it finished; approved, it is re-checked with the latest revision
    when the standard changes, raising only the new finding, once. */
static void s_revision_recheck(void)
{
    const char *dept = "446200002";
    CHECK(h_department(dept, "审核测试 修订部门") == 0, "department.add");
    char dict1[512], dict2[512], resource[33];
    if (!s_dict_file("reviewer-rev1",
                     json_pack("{s:[{s:s,s:s,s:s}]}", "fields", "name", "tag", "type", "text",
                               "pattern", "[a-z]+"),
                     dict1) ||
        !s_dict_file("reviewer-rev2",
                     json_pack("{s:[{s:s,s:s,s:s}]}", "fields", "name", "tag", "type", "text",
                               "pattern", "[0-9]+"),
                     dict2) ||
        !tp_entry(dept, "审核 字典修订", "dataset", dict1, true, resource))
        return;
    static const char csv[] = "tag\nabc\n123\n";
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_begin(c, &o, csv, sizeof csv - 1, &res);
    if (st == 200)
        st = tp_dictionary(c, resource, dict2);
    if (st == 200)
        st = tp_chunks(c, &res, csv, sizeof csv - 1, 0, 0);
    if (st == 200)
        st = tp_finish(c, &res);
    CHECK(st == 200, "push across a dictionary revision: %s gave %d %s %s", res.step, st, res.code,
          res.message);
    odp_client_destroy(&c);
    if (st != 200)
        return;
    odp_reply_t rep;
    st = s_show(NULL, res.upload, &rep);
    odp_reply_free(&rep);
    PGconn *pg = h_pg_super();
    CHECK(s_findings(pg, res.upload, "true") == 1 &&
              s_findings(pg, res.upload, "row_no = 2 AND check_name = 'pattern'") == 1,
          "not exactly row 2 breaking revision 1's pattern: %lld findings",
          (long long)s_findings(pg, res.upload, "true"));
    char code[40], message[300];
    st = s_handle(NULL, res.upload, 2, "released", NULL, code);
    CHECK(st == 200, "released: %d %s", st, code);
    st = s_decide(NULL, res.upload, true, NULL, code, message);
    CHECK(st == 200, "approval: %d %s %s", st, code, message);

    /*  The standard changes: revision 2's pattern finds row 1 now (row 2 passes it, and
        its finding stays). */
    s_standard(NULL, 0);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.findings WHERE upload = %lld AND recheck AND "
             "row_no = 1 AND check_name = 'pattern' AND value = 'abc'",
             (long long)res.upload);
    CHECK(s_wait_int(pg, sql, 1) == 1, "the re-check raised no finding on row 1");
    CHECK(s_findings(pg, res.upload, "true") == 2, "%lld findings after the re-check, not 2",
          (long long)s_findings(pg, res.upload, "true"));
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.outbox WHERE topic = 'review.rechecked' AND "
             "department = '%s'",
             dept);
    CHECK(h_pg_int(pg, sql) == 1, "no review.rechecked event for the department");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.reviews WHERE upload = %lld AND state = 'approved'",
             (long long)res.upload);
    CHECK(h_pg_int(pg, sql) == 1, "the re-check changed the decision");

    /*  Again: nothing new, nothing twice. */
    snprintf(sql, sizeof sql, "SELECT rechecked_at FROM reviewer.reviews WHERE upload = %lld",
             (long long)res.upload);
    PGresult *r = PQexec(pg, sql);
    char before[64] = "";
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(before, sizeof before, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    s_standard(NULL, 0);
    char newer[300];
    snprintf(newer, sizeof newer,
             "SELECT count(*) FROM reviewer.reviews WHERE upload = %lld AND rechecked_at > '%s'",
             (long long)res.upload, before);
    CHECK(s_wait_int(pg, newer, 1) == 1, "the second standard.set did not re-check");
    CHECK(s_findings(pg, res.upload, "true") == 2, "%lld findings after a second re-check, not 2",
          (long long)s_findings(pg, res.upload, "true"));
    CHECK(h_pg_int(pg, "SELECT count(*) FROM reviewer.outbox WHERE topic = 'review.rechecked' "
                       "AND department = '446200002'") == 1,
          "a re-check without new findings made an event");
    PQfinish(pg);
}

/*  A text value at path (keys separated by '.') in a JSON object, "" when absent. */
static const char *s_jstr(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(j, a), b);
    return json_is_string(v) ? json_string_value(v) : "";
}

static json_int_t s_jint(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(j, a), b);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/*  Compare: version 2 against what was declared and against version 1 (by row count and
    by primary key, a field added), and on time for a daily entry pushed today. */
static void s_compare(void)
{
    const char *dept = "446200003";
    CHECK(h_department(dept, "审核测试 对比部门") == 0, "department.add");
    char dict1[512], dict2[512], resource[33];
    if (!s_dict_file("reviewer-cmp1",
                     json_pack("{s:[{s:s,s:s,s:b},{s:s,s:s}]}", "fields", "name", "id", "type",
                               "integer", "primary_key", 1, "name", "name", "type", "text"),
                     dict1) ||
        !s_dict_file("reviewer-cmp2",
                     json_pack("{s:[{s:s,s:s,s:b},{s:s,s:s},{s:s,s:s}]}", "fields", "name", "id",
                               "type", "integer", "primary_key", 1, "name", "name", "type", "text",
                               "name", "note", "type", "text"),
                     dict2) ||
        !tp_entry(dept, "审核 资料对比", "dataset", dict1, true, resource))
        return;
    int64_t v1 = s_push_csv(dept, resource, "id,name\n1,a\n2,b\n3,c\n");
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    int st = tp_dictionary(c, resource, dict2);
    odp_client_destroy(&c);
    static const char csv2[] = "id,name,note\n2,b,x\n3,c,y\n4,d,z\n5,e,w\n";
    int64_t v2 = st == 200 ? s_push_csv(dept, resource, csv2) : 0;
    if (!v1 || !v2)
        return;
    odp_reply_t rep;
    st = s_show(h_keyfile(dept), v1, &rep);
    const msgpack_object *cmp = odp_map_get(&rep.obj, "compare");
    const msgpack_object *prev = cmp ? odp_map_get(cmp, "previous") : NULL;
    CHECK(st == 200 && cmp && prev && prev->type == MSGPACK_OBJECT_NIL,
          "version 1 has a previous version, or no compare: %d", st);
    odp_reply_free(&rep);
    st = s_show(h_keyfile(dept), v2, &rep);
    cmp = odp_map_get(&rep.obj, "compare");
    json_t *j = cmp ? odp_json_from_msgpack(cmp) : NULL;
    odp_reply_free(&rep);
    CHECK(st == 200 && j, "review.show of version 2 has no compare: %d", st);
    if (!j)
        return;
    char sha[65];
    tp_sha256(csv2, sizeof csv2 - 1, sha);
    json_t *d = json_object_get(j, "declared"), *p = json_object_get(j, "previous"),
           *t = json_object_get(j, "timeliness");
    CHECK(json_is_true(json_object_get(d, "size_matches")) &&
              json_is_true(json_object_get(d, "sha256_verified")) &&
              s_jint(j, "declared", "size_declared") == (json_int_t)(sizeof csv2 - 1) &&
              strcmp(s_jstr(j, "declared", "sha256_declared"), sha) == 0 &&
              strcmp(s_jstr(j, "declared", "format"), "csv") == 0 &&
              json_array_size(json_object_get(d, "fields")) == 3 &&
              json_array_size(json_object_get(d, "fields_missing")) == 0 &&
              s_jint(j, "declared", "rows") == 4,
          "declared part wrong");
    json_t *added = json_object_get(p, "fields_added");
    CHECK(s_jint(j, "previous", "version") == 1 && s_jint(j, "previous", "rows") == 3 &&
              s_jint(j, "previous", "rows_delta") == 1 &&
              strcmp(s_jstr(j, "previous", "key"), "id") == 0 &&
              s_jint(j, "previous", "keys_added") == 2 &&
              s_jint(j, "previous", "keys_removed") == 1 && json_array_size(added) == 1 &&
              strcmp(json_string_value(json_array_get(added, 0)), "note") == 0 &&
              json_is_true(json_object_get(p, "schema_changed")) &&
              json_is_false(json_object_get(p, "format_changed")),
          "previous part wrong: rows_delta %lld keys +%lld -%lld",
          (long long)s_jint(j, "previous", "rows_delta"),
          (long long)s_jint(j, "previous", "keys_added"),
          (long long)s_jint(j, "previous", "keys_removed"));
    CHECK(strcmp(s_jstr(j, "timeliness", "status"), "on_time") == 0 &&
              strcmp(s_jstr(j, "timeliness", "update_cycle"), "daily") == 0 &&
              s_jint(j, "timeliness", "days_late") == 0 && json_object_get(t, "due_on"),
          "timeliness: %s", s_jstr(j, "timeliness", "status"));
    json_decref(j);
    /*  Late: a version due yesterday. */
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT (reviewer.compare_version(%lld)->'timeliness'->>'days_late')::int",
             (long long)v2);
    PGresult *r = PQexec(pg, "BEGIN");
    PQclear(r);
    char upd[200];
    snprintf(upd, sizeof upd,
             "UPDATE registrar.uploads SET finished_at = finished_at + interval '3 days' WHERE "
             "id = %lld",
             (long long)v2);
    r = PQexec(pg, upd);
    PQclear(r);
    CHECK(h_pg_int(pg, sql) == 2, "a version 3 days after the last is not 2 days late: %lld",
          (long long)h_pg_int(pg, sql));
    r = PQexec(pg, "ROLLBACK");
    PQclear(r);
    PQfinish(pg);
}

/*  review.report in Frictionless' shape: exact counts per type, samples capped, through
    odpctl --format frictionless; review.findings through odp-push for the department
    only, NOT_FOUND alike for another's and for none. */
static void s_report(void)
{
    const char *dept = "446200004";
    CHECK(h_department(dept, "审核测试 报告部门") == 0, "department.add");
    char dict[512], resource[33];
    if (!s_dict_file("reviewer-report",
                     json_pack("{s:[{s:s,s:s,s:s},{s:s,s:s}]}", "fields", "name", "tag", "type",
                               "text", "pattern", "[a-z]+", "name", "n", "type", "integer"),
                     dict) ||
        !tp_entry(dept, "审核 报告", "dataset", dict, true, resource))
        return;
    int64_t upload = s_push_csv(dept, resource, "tag,n\nabc,1\n,\nAB,2\n,\nab1,3\n");
    if (!upload)
        return;
    char bin[512], out[512], err[512], id[24];
    snprintf(bin, sizeof bin, "%s/odpctl", h_bin());
    snprintf(out, sizeof out, "%s/odpctl-review-report.out", h_var());
    snprintf(err, sizeof err, "%s/odpctl-review-report.err", h_var());
    snprintf(id, sizeof id, "%lld", (long long)upload);
    remove(out);
    const char *argv[] = {bin, "review",   "report",       id,  "--limit",
                          "1", "--format", "frictionless", NULL};
    int rc = h_wait_exit(h_spawn(argv, NULL, out, err), 10000);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    json_t *task = json_array_get(json_object_get(j, "tasks"), 0);
    json_t *errors = json_object_get(task, "errors");
    json_t *by_type = json_object_get(json_object_get(task, "stats"), "errorsByType");
    CHECK(rc == 0 && json_is_false(json_object_get(j, "valid")) &&
              s_jint(j, "stats", "errors") == 4 &&
              json_integer_value(json_object_get(by_type, "blank-row")) == 2 &&
              json_integer_value(json_object_get(by_type, "constraint-error")) == 2 &&
              json_integer_value(json_object_get(json_object_get(task, "stats"), "rows")) == 5 &&
              json_is_true(json_object_get(task, "partial")) && json_array_size(errors) == 2,
          "odpctl review report exited %d; report %s (see %s)", rc, je.text, out);
    /*  The samples: the first of each type, header counted as row 1. */
    json_t *e0 = json_array_get(errors, 0), *e1 = json_array_get(errors, 1);
    CHECK(json_integer_value(json_object_get(e0, "rowNumber")) == 3 &&
              strcmp(json_string_value(json_object_get(e0, "type")), "blank-row") == 0 &&
              json_integer_value(json_object_get(e1, "rowNumber")) == 4 &&
              strcmp(json_string_value(json_object_get(e1, "type")), "constraint-error") == 0 &&
              strcmp(json_string_value(json_object_get(e1, "fieldName")), "tag") == 0 &&
              strcmp(json_string_value(json_object_get(e1, "cell")), "AB") == 0 &&
              json_integer_value(json_object_get(e1, "fieldNumber")) == 1 &&
              json_is_string(json_object_get(e1, "message")) &&
              json_is_string(json_object_get(e1, "note")),
          "the sample errors are not rows 3 (blank) and 4 (tag AB) in Frictionless' fields");
    json_decref(j);

    /*  odp-push findings: the department's own, with every finding up to --limit. */
    snprintf(bin, sizeof bin, "%s/odp-push", h_bin());
    snprintf(out, sizeof out, "%s/odp-push-findings.out", h_var());
    remove(out);
    const char *mine[] = {bin, "--json", "--cert", h_keyfile(dept), "findings", id, NULL};
    rc = h_wait_exit(h_spawn(mine, NULL, out, err), 10000);
    j = json_load_file(out, 0, &je);
    json_t *item = json_array_get(json_object_get(j, "items"), 0);
    CHECK(rc == 0 && json_array_size(json_object_get(j, "items")) == 1 &&
              json_integer_value(json_object_get(item, "findings")) == 4 &&
              json_array_size(json_object_get(item, "errors")) == 4 &&
              json_integer_value(json_object_get(item, "upload")) == upload,
          "odp-push findings %s exited %d (see %s)", id, rc, out);
    json_decref(j);
    const char *all[] = {bin, "--json", "--cert", h_keyfile(dept), "findings", NULL};
    snprintf(out, sizeof out, "%s/odp-push-findings-all.out", h_var());
    remove(out);
    rc = h_wait_exit(h_spawn(all, NULL, out, err), 10000);
    j = json_load_file(out, 0, &je);
    CHECK(rc == 0 && json_array_size(json_object_get(j, "items")) == 1,
          "odp-push findings (all) exited %d with other departments' versions (see %s)", rc, out);
    json_decref(j);
    /*  Another department: the same NOT_FOUND for this upload as for one that does not
        exist. */
    const char *other = "446200005";
    CHECK(h_department(other, "审核测试 报告另一部门") == 0, "department.add");
    char codes[2][64];
    const char *ids[2] = {id, "999999999"};
    for (int i = 0; i < 2; i++) {
        const char *theirs[] = {bin,        "--json", "--cert", h_keyfile(other),
                                "findings", ids[i],   NULL};
        snprintf(out, sizeof out, "%s/odp-push-findings-other%d.out", h_var(), i);
        remove(out);
        rc = h_wait_exit(h_spawn(theirs, NULL, out, err), 10000);
        j = json_load_file(out, 0, &je);
        snprintf(codes[i], sizeof codes[i], "%s",
                 json_is_string(json_object_get(j, "code"))
                     ? json_string_value(json_object_get(j, "code"))
                     : "");
        CHECK(rc == 1, "another department's odp-push findings %s exited %d", ids[i], rc);
        json_decref(j);
    }
    CHECK(strcmp(codes[0], "NOT_FOUND") == 0 && strcmp(codes[1], "NOT_FOUND") == 0,
          "another department's upload gave %s, a missing one %s", codes[0], codes[1]);
}

/*  200,000 rows with every check kind on and a finding every few hundred rows: long enough
    a review to kill the reviewer in the middle of it. */
static char *s_big_csv(size_t *len)
{
    size_t cap = 64 + 200000 * 40, n = 0;
    char *csv = malloc(cap);
    if (!csv)
        return NULL;
    n += (size_t)snprintf(csv, cap, "id,code,n,cat\n");
    for (int i = 1; i <= 200000; i++)
        n += (size_t)snprintf(csv + n, cap - n, "%d,%s,%d,%s\n", i % 997 == 0 ? i - 1 : i,
                              i % 701 == 0 ? "AB1" : "ABC", i % 1000, i % 809 == 0 ? "Z" : "A");
    *len = n;
    return csv;
}

/*  A reviewer killed (SIGKILL) once a review has started and restarted finishes it with the
    same findings as an uninterrupted review of the same rows, each once. */
static void s_killed_midway(void)
{
    const char *dept = "446200006";
    CHECK(h_department(dept, "审核测试 中断部门") == 0, "department.add");
    char dict[512], r1[33], r2[33];
    if (!s_dict_file("reviewer-big",
                     json_pack("{s:[{s:s,s:s,s:b,s:b,s:i,s:i},{s:s,s:s,s:s,s:i,s:i},"
                               "{s:s,s:s,s:i,s:i},{s:s,s:s,s:[s,s]}]}",
                               "fields", "name", "id", "type", "integer", "required", 1, "unique",
                               1, "min", 1, "max", 1000000, "name", "code", "type", "text",
                               "pattern", "[A-Z]+", "length", 3, "min_length", 3, "name", "n",
                               "type", "integer", "min", 1, "max", 998, "name", "cat", "type",
                               "text", "enum", "A", "B"),
                     dict) ||
        !tp_entry(dept, "审核 中断 甲", "dataset", dict, true, r1) ||
        !tp_entry(dept, "审核 中断 乙", "dataset", dict, true, r2))
        return;
    size_t len;
    char *csv = s_big_csv(&len);
    CHECK(csv, "out of memory");
    if (!csv)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = r1};
    tp_result_t whole, killed;
    int st = tp_push(c, &o, csv, len, &whole);
    CHECK(st == 200, "push 1: %s gave %d %s", whole.step, st, whole.code);
    odp_reply_t rep;
    if (st == 200) {
        st = s_show(NULL, whole.upload, &rep);
        CHECK(st == 200 && odp_map_get(&rep.obj, "checked_at"), "uninterrupted review: %d", st);
        odp_reply_free(&rep);
    }
    o.resource = r2;
    int st2 = st == 200 ? tp_push(c, &o, csv, len, &killed) : 0;
    CHECK(st2 == 200, "push 2: %s gave %d %s", killed.step, st2, killed.code);
    odp_client_destroy(&c);
    free(csv);
    if (st != 200 || st2 != 200)
        return;
    /*  review.started is committed with the review row, before the checks: seen, the
        reviewer dies in the middle of them. */
    PGconn *pg = h_pg_super();
    char sql[600];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.reviews WHERE upload = %lld AND checked_at IS NULL",
             (long long)killed.upload);
    bool started = false;
    for (int i = 0; i < 2000 && !started; i++) {
        started = h_pg_int(pg, sql) == 1;
        if (!started)
            usleep(5 * 1000);
    }
    h_service_kill9("reviewer");
    CHECK(started, "the review of upload %lld never started", (long long)killed.upload);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.reviews v JOIN reviewer.outbox o ON o.topic = "
             "'review.started' AND o.department = v.department WHERE v.upload = %lld AND "
             "v.checked_at IS NULL",
             (long long)killed.upload);
    CHECK(h_pg_int(pg, sql) >= 1, "killed after the checks: the test shows nothing");
    CHECK(h_service_start("reviewer", NULL) > 0, "the reviewer does not start again");
    st = s_show(NULL, killed.upload, &rep);
    CHECK(st == 200 && odp_map_get(&rep.obj, "checked_at"), "after the restart: %d, checked %d", st,
          st == 200 && odp_map_get(&rep.obj, "checked_at") != NULL);
    odp_reply_free(&rep);
    /*  The same findings, row by row, and each once. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ((SELECT row_no, field, value, type, check_name, message FROM "
             "reviewer.findings WHERE upload = %lld EXCEPT ALL SELECT row_no, field, value, type, "
             "check_name, message FROM reviewer.findings WHERE upload = %lld) UNION ALL (SELECT "
             "row_no, field, value, type, check_name, message FROM reviewer.findings WHERE upload "
             "= %lld EXCEPT ALL SELECT row_no, field, value, type, check_name, message FROM "
             "reviewer.findings WHERE upload = %lld)) d",
             (long long)whole.upload, (long long)killed.upload, (long long)killed.upload,
             (long long)whole.upload);
    CHECK(h_pg_int(pg, sql) == 0, "%lld findings differ between the two reviews",
          (long long)h_pg_int(pg, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM reviewer.findings WHERE upload = %lld",
             (long long)killed.upload);
    int64_t n = h_pg_int(pg, sql);
    /*  id repeats (200), pattern (285), n below 1 (200), n above 998 (200), enum (247). */
    CHECK(n == 200 + 285 + 200 + 200 + 247, "%lld findings, not 1132", (long long)n);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.outbox WHERE topic = 'review.started' AND "
             "department = '%s'",
             dept);
    CHECK(h_pg_int(pg, sql) == 2, "review.started %lld times for two versions",
          (long long)h_pg_int(pg, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM reviewer.quarantine WHERE upload = %lld",
             (long long)killed.upload);
    int64_t q = h_pg_int(pg, sql);
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT row_no) FROM reviewer.findings WHERE upload = %lld",
             (long long)killed.upload);
    CHECK(q == h_pg_int(pg, sql), "%lld rows isolated, not one per row with findings",
          (long long)q);
    PQfinish(pg);
}

/*  The reviewer's loop answers while a version is being checked: the checks run on a
    thread of their own. A lock the test holds on reviewer.quality_scores (SHARE: readers
    pass, the checks' writes wait) keeps the check of a 200,000-row version going for as
    long as the test needs; health, review.show and review.decide are answered meanwhile,
    and once the lock is gone the check ends with the findings an uninterrupted one has. */
static void s_answers_while_checking(void)
{
    const char *dept = "448100001";
    CHECK(h_department(dept, "审核测试 检查中部门") == 0, "department.add");
    char dict[512], resource[33];
    if (!s_dict_file("reviewer-busy",
                     json_pack("{s:[{s:s,s:s,s:b,s:b,s:i,s:i},{s:s,s:s,s:s,s:i,s:i},"
                               "{s:s,s:s,s:i,s:i},{s:s,s:s,s:[s,s]}]}",
                               "fields", "name", "id", "type", "integer", "required", 1, "unique",
                               1, "min", 1, "max", 1000000, "name", "code", "type", "text",
                               "pattern", "[A-Z]+", "length", 3, "min_length", 3, "name", "n",
                               "type", "integer", "min", 1, "max", 998, "name", "cat", "type",
                               "text", "enum", "A", "B"),
                     dict) ||
        !tp_entry(dept, "审核 检查中", "dataset", dict, true, resource))
        return;
    size_t len;
    char *csv = s_big_csv(&len);
    CHECK(csv, "out of memory");
    if (!csv)
        return;
    PGconn *lock = h_pg_super(), *pg = h_pg_super();
    PGresult *r = PQexec(lock, "BEGIN; LOCK TABLE reviewer.quality_scores IN SHARE MODE");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "lock: %s", PQerrorMessage(lock));
    PQclear(r);
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    int st = tp_push(c, &o, csv, len, &res);
    CHECK(st == 200, "push: %s gave %d %s", res.step, st, res.code);
    odp_client_destroy(&c);
    free(csv);
    const char *waiting = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'odp_reviewer' "
                          "AND wait_event_type = 'Lock' AND query LIKE 'SELECT check_%'";
    bool checking = false;
    for (int i = 0; st == 200 && i < 600 && !checking; i++) {
        checking = h_pg_int(pg, waiting) == 1;
        if (!checking)
            usleep(100 * 1000);
    }
    CHECK(checking, "the reviewer never started checking upload %lld", (long long)res.upload);
    if (checking) {
        odp_client_t *rc = h_client("reviewer", NULL);
        odp_reply_t rep;
        odp_health_t health = {0};
        st = h_call(rc, &odp_def_health, &health, &rep);
        CHECK(st == 200, "health while checking: %d", st);
        odp_reply_free(&rep);
        odp_review_show_t show = {0};
        show.upload = odp_v_int(res.upload);
        st = h_call(rc, &odp_def_review_show, &show, &rep);
        CHECK(st == 200 && !odp_map_get(&rep.obj, "checked_at"),
              "review.show while checking: %d, checked %d", st,
              st == 200 && odp_map_get(&rep.obj, "checked_at") != NULL);
        odp_reply_free(&rep);
        odp_review_decide_t decide = {0};
        decide.upload = odp_v_int(res.upload);
        decide.approve = odp_v_bool(true);
        st = h_call(rc, &odp_def_review_decide, &decide, &rep);
        CHECK(st == 409 && strcmp(h_err_code(&rep), "INVALID_STATE") == 0,
              "review.decide while checking: %d %s, not 409 INVALID_STATE", st, h_err_code(&rep));
        odp_reply_free(&rep);
        odp_client_destroy(&rc);
        CHECK(h_pg_int(pg, waiting) == 1, "the check did not wait for the test's lock");
    }
    r = PQexec(lock, "COMMIT");
    PQclear(r);
    PQfinish(lock);
    if (checking) {
        odp_reply_t rep;
        st = s_show(NULL, res.upload, &rep);
        CHECK(st == 200 && odp_map_get(&rep.obj, "checked_at") && h_int(&rep, "findings") == 1132,
              "after the lock: %d, %lld findings, not 1132", st,
              st == 200 ? (long long)h_int(&rep, "findings") : -1LL);
        odp_reply_free(&rep);
    }
    PQfinish(pg);
}

/*  ---- the push's evidence (registrar push_checks.c, reviewer 006) ------------------------- */

/*  The findings of upload as text (row, field, check, value per line, ordered). */
static char *s_findings_text(PGconn *pg, int64_t upload)
{
    char id[24], *out = NULL;
    snprintf(id, sizeof id, "%lld", (long long)upload);
    const char *vals[1] = {id};
    PGresult *r = PQexecParams(pg,
                               "SELECT coalesce(string_agg(format('%s|%s|%s|%s', row_no, field, "
                               "check_name, value), E'\\n' ORDER BY row_no, field, check_name, "
                               "value), '') FROM reviewer.findings WHERE upload = $1",
                               1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        out = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

/*  The findings of upload after the statements del and redo (each with the upload as $1),
    run in a transaction that is rolled back, with reviewer first in the search path. */
static char *s_findings_redone(PGconn *pg, int64_t upload, const char *del, const char *redo)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)upload);
    const char *vals[1] = {id};
    PQclear(PQexec(pg, "BEGIN; SET LOCAL search_path = reviewer"));
    PGresult *r = PQexecParams(pg, del, 1, NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    r = ok ? PQexecParams(pg, redo, 1, NULL, vals, NULL, NULL, 0) : NULL;
    ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
    CHECK(ok, "the SQL path: %s", PQerrorMessage(pg));
    PQclear(r);
    char *out = ok ? s_findings_text(pg, upload) : NULL;
    PQclear(PQexec(pg, "ROLLBACK"));
    return out;
}

/*  The findings the SQL path alone makes of upload (every row-level check scanned, no
    evidence): what the review must have found. */
static char *s_findings_sql(PGconn *pg, int64_t upload)
{
    return s_findings_redone(pg, upload, "DELETE FROM findings WHERE upload = $1",
                             "SELECT collect_row_findings($1, (SELECT dictionary_revision FROM "
                             "registrar.uploads WHERE id = $1), false)");
}

/*  Values on both sides of every boundary, and values the registrar must not prove (at a
    numeric bound, multi-byte text at the length limit, an escaped tab, full-width digits,
    a pattern of another shape, check digits): the review with the push's evidence finds
    exactly what the SQL path alone finds, and left proven checks out of its scan. */
static void s_push_evidence(void)
{
    static const char fields[] =
        "[{\"name\": \"t\", \"type\": \"text\", \"required\": true, \"length\": 3, "
        "\"min_length\": 2},"
        " {\"name\": \"city\", \"type\": \"text\", \"enum\": [\"广州市\", \"深圳市\"]},"
        " {\"name\": \"n\", \"type\": \"integer\", \"min\": 1, \"max\": 10},"
        " {\"name\": \"x\", \"type\": \"numeric\", \"min\": -50, \"max\": 50},"
        " {\"name\": \"code\", \"type\": \"text\", \"pattern\": \"B[0-9]{3}\"},"
        " {\"name\": \"other\", \"type\": \"text\", \"pattern\": \"[0-9]{2}-[0-9]{2}\"},"
        " {\"name\": \"id\", \"type\": \"text\", \"check\": \"idcard\"},"
        " {\"name\": \"note\", \"type\": \"text\", \"length\": 5}]";
    static const char csv[] = "t,city,n,x,code,other,id,note\n"
                              "ab,广州市,1,-50,B123,12-34,11010519491231002X,a\n"
                              "abc,深圳市,10,50,B999,12-34,,b\n"
                              "abcd,广州,0,-50.0000001,B12,1234,440106198001011231,c\n"
                              "a,深圳市 ,11,50.00000000000000001,B1234,12-3,,d\n"
                              "广州市,广州市,5,49.9999999999999999,Ｂ123,,,e\n"
                              "广州市区,广州市,5,1e1,B１２３,,,f\n"
                              "广,广州市,5,0,,,,g\n"
                              "\"a\tb\",广州市,5,0,B000,,,h\n"
                              ",广州市,5,0,B000,,,i\n"
                              ",,,,,,,\n";
    int64_t upload = s_push_reviewed("449400001", "审核 推送证据", fields, csv);
    if (!upload)
        return;
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registrar.uploads WHERE id = %lld AND checked_revision = "
             "dictionary_revision",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 1, "the push did not evaluate the checks");
    snprintf(sql, sizeof sql,
             "SELECT row_checks_left_out * 1000 + row_checks_scanned FROM reviewer.reviews "
             "WHERE upload = %lld",
             (long long)upload);
    int64_t both = h_pg_int(pg, sql);
    /*  Left out: note's maxLength, alone without a value near its bound. */
    CHECK(both / 1000 == 1 && both % 1000 > 0, "left out %lld, scanned %lld, not 1 and some",
          (long long)(both / 1000), (long long)(both % 1000));
    char *got = s_findings_text(pg, upload);
    char *want = s_findings_sql(pg, upload);
    CHECK(got && want && strcmp(got, want) == 0, "with the evidence:\n%s\nthe SQL alone:\n%s",
          got ? got : "?", want ? want : "?");
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT check_name) FROM reviewer.findings WHERE upload = %lld AND "
             "check_name IN ('required', 'maxLength', 'minLength', 'enum', 'minimum', 'maximum', "
             "'pattern', 'idcard', 'blank-row')",
             (long long)upload);
    CHECK(h_pg_int(pg, sql) == 9, "%lld of the 9 check kinds found, the data breaks each",
          (long long)h_pg_int(pg, sql));
    free(got);
    free(want);
    PQfinish(pg);
}

/*  A clean version whose every value the registrar proves: the review scans no row (every
    check left out), finds nothing, and a re-check with the SQL alone agrees. */
static void s_push_clean(void)
{
    static const char fields[] =
        "[{\"name\": \"code\", \"type\": \"text\", \"required\": true, \"pattern\": "
        "\"B[0-9]{3}\", \"length\": 4, \"min_length\": 4},"
        " {\"name\": \"city\", \"type\": \"text\", \"enum\": [\"广州市\", \"深圳市\"]},"
        " {\"name\": \"n\", \"type\": \"integer\", \"min\": 1, \"max\": 10},"
        " {\"name\": \"x\", \"type\": \"numeric\", \"min\": -50, \"max\": 50},"
        " {\"name\": \"d\", \"type\": \"date\", \"required\": true}]";
    static const char csv[] = "code,city,n,x,d\n"
                              "B001,广州市,1,-49.5,2024-01-01\n"
                              "B002,深圳市,10,49.5,2024-01-02\n"
                              "B003,广州市,5,0.25,2024-01-03\n";
    int64_t upload = s_push_reviewed("449400002", "审核 推送全证", fields, csv);
    if (!upload)
        return;
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT row_checks_left_out * 1000 + row_checks_scanned FROM reviewer.reviews "
             "WHERE upload = %lld",
             (long long)upload);
    int64_t both = h_pg_int(pg, sql);
    /*  required twice, pattern, maxLength, minLength, enum, minimum and maximum twice,
        the blank row. */
    CHECK(both == 11000, "left out %lld, scanned %lld, not 11 and 0", (long long)(both / 1000),
          (long long)(both % 1000));
    char *got = s_findings_text(pg, upload);
    char *want = s_findings_sql(pg, upload);
    CHECK(got && want && strcmp(got, "") == 0 && strcmp(want, "") == 0,
          "findings with the evidence:\n%s\nthe SQL alone:\n%s", got ? got : "?",
          want ? want : "?");
    free(got);
    free(want);
    PQfinish(pg);
}

/*  The repeat findings (unique, duplicate rows, primary key) the SQL path alone makes of
    upload (counted by a scan, no evidence). */
static char *s_repeat_findings_sql(PGconn *pg, int64_t upload)
{
    return s_findings_redone(pg, upload,
                             "DELETE FROM findings WHERE upload = $1 AND check_name IN "
                             "('unique', 'duplicate-row', 'primary-key')",
                             "SELECT collect_repeat_findings($1, (SELECT dictionary_revision "
                             "FROM registrar.uploads WHERE id = $1), false, NULL)");
}

/*  rows rows of two unique text fields a and b, a date and a note, with the extra lines
    appended: malloc'd CSV. */
static char *s_keyed_csv(int rows, const char *extra)
{
    size_t cap = (size_t)rows * 64 + strlen(extra) + 64, o = 0;
    char *csv = malloc(cap);
    if (!csv)
        return NULL;
    o += (size_t)snprintf(csv + o, cap - o, "a,b,d,note\n");
    for (int i = 1; i <= rows; i++)
        o += (size_t)snprintf(csv + o, cap - o, "A%06d,键%d,2024-01-%02d,第%d行\n", i, i,
                              1 + i % 28, i);
    snprintf(csv + o, cap - o, "%s", extra);
    return csv;
}

/*  upload's findings as "row:field:check ..." in order ("" for none). */
static void s_findings_list(PGconn *pg, int64_t upload, char *out, size_t size)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(row_no || ':' || coalesce(field, '-') || ':' || check_name, ' ' "
             "ORDER BY row_no, field) FROM reviewer.findings WHERE upload = %lld",
             (long long)upload);
    PGresult *r = PQexec(pg, sql);
    snprintf(out, size, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0)
                                                                           : "");
    PQclear(r);
}

/*  rows keyed rows (s_keyed_csv) and two repeats after them, of row 2's a and of the next
    row's b, pushed in chunks of chunk bytes (0: the default): a's hashes laid out as layout
    (an aggregate over the upload's stage_keys rows of field a) says (want), the repeats
    counted from the push or by the scan (from_push), and exactly the two repeats found. */
static void s_repeats_over(PGconn *pg, const char *dept, const char *name, const char *fields,
                           int rows, size_t chunk, const char *layout, int64_t want, bool from_push)
{
    char *csv = s_keyed_csv(rows, "A000002,新键1,2024-02-01,x\nA900001,新键1,2024-02-02,y\n");
    int64_t up = csv ? s_push_reviewed_in(dept, name, fields, csv, chunk) : 0;
    free(csv);
    if (!up || !pg)
        return;
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM registrar.stage_keys WHERE upload = %lld AND field = 'a'", layout,
             (long long)up);
    CHECK(h_pg_int(pg, sql) == want, "upload %lld: a's hashes laid out %lld, not %lld",
          (long long)up, (long long)h_pg_int(pg, sql), (long long)want);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reviewer.reviews WHERE upload = %lld AND repeats_from_push = %s",
             (long long)up, from_push ? "true" : "false");
    CHECK(h_pg_int(pg, sql) == 1, "upload %lld: the repeats were %s", (long long)up,
          from_push ? "scanned, not merged" : "merged, not scanned");
    char list[200], expect[64];
    s_findings_list(pg, up, list, sizeof list);
    snprintf(expect, sizeof expect, "%d:a:unique %d:b:unique", rows + 1, rows + 2);
    CHECK(strcmp(list, expect) == 0, "upload %lld found [%s], not [%s]", (long long)up, list,
          expect);
}

/*  The repeat check from the push's hashes, over groups far smaller than the version (the
    registrar restarted with 20,000-byte groups): repeats within a group and across groups,
    of an escaped tab and of the second unique field, and NULLs (not repeats) are found
    exactly as the scan finds them, with no scan; a clean version over several groups finds
    none; a version the push could not hash (a timestamp field: its rows go as text) falls
    back to the scan with the same findings, and so does a version of more push groups than
    the reviewer merges; a group of more hashes than a page holds is merged over its pages. */
static void s_push_repeats(void)
{
    static const char fields[] = "[{\"name\": \"a\", \"type\": \"text\", \"unique\": true},"
                                 " {\"name\": \"b\", \"type\": \"text\", \"unique\": true},"
                                 " {\"name\": \"d\", \"type\": \"date\"},"
                                 " {\"name\": \"note\", \"type\": \"text\"}]";
    static const char *const small[] = {"ODP_REGISTRAR_COMMIT_BYTES=20000", NULL};
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", small) > 0, "the registrar restarts with small groups");
    /*  Row 3001 repeats row 2's a (another group), 3002 repeats 3001's b (the same group),
        3004 repeats 3003's a with its tab, 3005 and 3006 have no a (NULL twice: no repeat
        of a, and not duplicate rows either), 3007 repeats 3006's b. */
    char *dirty = s_keyed_csv(3000, "A000002,新键1,2024-02-01,x\n"
                                    "A900001,新键1,2024-02-02,y\n"
                                    "\"T\tab\",新键2,2024-02-03,z\n"
                                    "\"T\tab\",新键3,2024-02-04,w\n"
                                    ",新键4,2024-02-05,v\n"
                                    ",新键5,2024-02-06,u\n"
                                    "A900002,新键5,2024-02-06,t\n");
    char *clean = s_keyed_csv(3000, "\"T\tab\",新键2,2024-02-03,z\n,新键4,2024-02-05,v\n");
    int64_t up[2] = {
        dirty ? s_push_reviewed_in("449400010", "审核 推送哈希", fields, dirty, 8192) : 0,
        clean ? s_push_reviewed_in("449400011", "审核 推送哈希 无重复", fields, clean, 8192) : 0};
    free(dirty);
    free(clean);
    PGconn *pg = h_pg_super();
    for (int i = 0; i < 2 && pg; i++) {
        if (!up[i])
            continue;
        char sql[300];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) * 100 + coalesce(sum(octet_length(hashes) / 8 + nulls) / 1000, "
                 "0) FROM registrar.stage_keys WHERE upload = %lld",
                 (long long)up[i]);
        int64_t runs = h_pg_int(pg, sql) / 100;
        CHECK(runs >= 6, "upload %lld: %lld runs of hashes, not several groups' for a and b",
              (long long)up[i], (long long)runs);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM reviewer.reviews WHERE upload = %lld AND repeats_from_push",
                 (long long)up[i]);
        CHECK(h_pg_int(pg, sql) == 1, "upload %lld: the repeats were not counted from the push",
              (long long)up[i]);
        char *got = s_findings_text(pg, up[i]);
        char *want = s_repeat_findings_sql(pg, up[i]);
        char list[200];
        s_findings_list(pg, up[i], list, sizeof list);
        const char *expect =
            i == 0 ? "3001:a:unique 3002:b:unique 3004:a:unique 3007:b:unique" : "";
        CHECK(strcmp(list, expect) == 0, "upload %lld found [%s], not [%s]", (long long)up[i], list,
              expect);
        CHECK(got && want && strcmp(got, want) == 0,
              "upload %lld with the push's hashes:\n%s\nthe scan:\n%s", (long long)up[i],
              got ? got : "?", want ? want : "?");
        free(got);
        free(want);
    }
    /*  More push groups than the reviewer merges (S_MAX_RUNS, 256): tiny groups, the same
        rows; the version's repeats are left to the scan, with the same findings. */
    static const char *const tiny[] = {"ODP_REGISTRAR_COMMIT_BYTES=200", NULL};
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", tiny) > 0, "the registrar restarts with tiny groups");
    s_repeats_over(pg, "449400013", "审核 推送哈希 多组", fields, 3000, 256,
                   "least(count(DISTINCT run), 257)", 257, false);
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", NULL) > 0, "the registrar restarts");
    /*  One group of more hashes than a page holds (8,192): its run in two pages, merged. */
    s_repeats_over(pg, "449400014", "审核 推送哈希 分页", fields, 9000, 0,
                   "count(*) * 1000 + count(DISTINCT run) * 100 + max(page)", 2101, true);
    /*  A timestamp field: the rows go to PostgreSQL as text, unhashed; the scan counts. */
    static const char stamped[] = "[{\"name\": \"a\", \"type\": \"text\", \"unique\": true},"
                                  " {\"name\": \"at\", \"type\": \"timestamp\"}]";
    int64_t fallback = s_push_reviewed("449400012", "审核 推送哈希 回退", stamped,
                                       "a,at\nA1,2024-01-01 08:00:00\nA2,2024-01-01 09:00:00\n"
                                       "A1,2024-01-01 10:00:00\n");
    if (fallback && pg) {
        char sql[300];
        snprintf(sql, sizeof sql,
                 "SELECT (SELECT count(*) FROM registrar.uploads WHERE id = %lld AND keyed_fields "
                 "IS NULL) * 10 + (SELECT count(*) FROM reviewer.reviews WHERE upload = %lld AND "
                 "NOT repeats_from_push)",
                 (long long)fallback, (long long)fallback);
        CHECK(h_pg_int(pg, sql) == 11, "the unhashed version was not given up and scanned (%lld)",
              (long long)h_pg_int(pg, sql));
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM reviewer.findings WHERE upload = %lld AND row_no = 3 AND "
                 "check_name = 'unique'",
                 (long long)fallback);
        CHECK(h_pg_int(pg, sql) == 1, "the scan did not find row 3's repeat");
    }
    PQfinish(pg);
}

const h_case_t t_reviewer_cases[] = {
    {"reviewer: the messy GB18030 sample ends at 300 = 292 accepted + 8 quarantined, each with its "
     "reason",
     s_messy},
    {"reviewer: every clean sample passes with 0 findings", s_clean},
    {"reviewer: each check catches a row built to break it and passes rows at its boundaries",
     s_every_check},
    {"reviewer: a pattern's character classes ([[:alpha:]], \\w) match Chinese on a staging "
     "table in the collation code_point, as before",
     s_pattern_classes},
    {"reviewer: a pattern's short cut (B[0-9]{10}, X[0-9A-F]{2,4}, \\d{3}) passes only values "
     "its regular expression matches; the values next to them are found",
     s_pattern_shortcut},
    {"reviewer: each handling outcome keeps received = accepted + quarantined + dropped; a "
     "provider may not handle; approval waits for every case",
     s_handling},
    {"reviewer: a rejected version's reason reaches its department", s_rejected},
    {"reviewer: a threshold of the standard exceeded rejects the version", s_threshold},
    {"reviewer: odpctl review queue --json lists the versions in review", s_odpctl_queue},
    {"reviewer: minLength, a primary key over two fields, duplicate and blank rows, on both "
     "sides of each boundary; the score from its parts, readable by metrics and publisher",
     s_table_checks},
    {"reviewer: a version is checked with the dictionary revision it was pushed with; a changed "
     "standard re-checks an approved version, raising only new findings, once",
     s_revision_recheck},
    {"reviewer: compare against what was declared, the previous version (rows, keys, fields) "
     "and the update cycle",
     s_compare},
    {"reviewer: review report in Frictionless' shape through odpctl; odp-push findings for the "
     "own department only",
     s_report},
    {"reviewer: killed mid-review and restarted, it finishes with the same findings as an "
     "uninterrupted review, each once",
     s_killed_midway},
    {"reviewer: answers health, review.show and review.decide while a large version is being "
     "checked",
     s_answers_while_checking},
    {"reviewer: push evidence: values on both sides of every check's boundary, and values the "
     "registrar must not prove, give the same findings as the SQL path alone",
     s_push_evidence},
    {"reviewer: push evidence: a clean version proven by the push is reviewed without a scan",
     s_push_clean},
    {"reviewer: push evidence: repeats within and across push groups found from the push's "
     "hashes exactly as the scan finds them, a group's over two pages too; an unhashed version, "
     "or one of more than 256 push groups, falls back to the scan",
     s_push_repeats},
    {NULL, NULL}};
