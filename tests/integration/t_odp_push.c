/*  The provider's tool end to end (R5.3-R5.5, R7c, R8.3): odp-push as a department would
    run it - catalogue with a dictionary, registration, push - against the real registrar,
    including a registrar killed mid-push, which the tool must survive by itself. */
#include "harness.h"

#include <csv.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void s_sample(const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", h_samples(), name);
}

/*  Run odp-push with args (NULL-terminated), acting with cert (NULL: operations admin);
    stdout and stderr go to h_var()/push-<tag>.out/.err. Exit status, -1 on timeout. */
static int s_run(const char *tag, const char *cert, const char *const *args, int timeout_ms,
                 char *out, char *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/odp-push", h_bin());
    snprintf(out, 512, "%s/push-%s.out", h_var(), tag);
    snprintf(err, 512, "%s/push-%s.err", h_var(), tag);
    remove(out);
    remove(err);
    const char *argv[48] = {path};
    int n = 1;
    if (cert) {
        argv[n++] = "--cert";
        argv[n++] = cert;
    }
    for (const char *const *a = args; *a && n < 47; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    pid_t pid = h_spawn(argv, NULL, out, err);
    int rc = h_wait_exit(pid, timeout_ms);
    if (rc < 0) {
        kill(pid, SIGKILL);
        h_wait_exit(pid, 5000);
    }
    return rc;
}

/*  The last JSON line of a file (NULL when none): the summary of a push. */
static json_t *s_last_json(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[65536];
    json_t *last = NULL;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j) {
            json_decref(last);
            last = j;
        }
    }
    fclose(f);
    return last;
}

static json_t *s_first_json(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[65536];
    json_t *j = fgets(line, sizeof line, f) ? json_loads(line, 0, NULL) : NULL;
    fclose(f);
    return j;
}

/*  How many lines of a JSON Lines file have "event": event. */
static int s_count_events(const char *path, const char *event)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[65536];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *ev = json_string_value(json_object_get(j, "event"));
        if (ev && strcmp(ev, event) == 0)
            n++;
        json_decref(j);
    }
    fclose(f);
    return n;
}

static bool s_file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static int64_t s_jint(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static const char *s_jstr(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

/*  The file's SHA-256, computed here independently of the tool. */
static void s_sha256(const char *path, char *hex)
{
    hex[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&st, buf, n);
    fclose(f);
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, d);
    sodium_bin2hex(hex, 65, d, sizeof d);
}

static void s_count_record(int c, void *data)
{
    (void)c;
    (*(int64_t *)data)++;
}

/*  Data rows of a CSV file (records after the header), as a CSV parser counts them. */
static int64_t s_csv_rows(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    struct csv_parser p;
    csv_init(&p, 0);
    int64_t records = 0;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        csv_parse(&p, buf, n, NULL, s_count_record, &records);
    csv_fini(&p, NULL, s_count_record, &records);
    csv_free(&p);
    fclose(f);
    return records - 1;
}

/*  registration.decide as operations: the step the provider's tool cannot take. */
static bool s_approve(const char *resource)
{
    odp_client_t *c = h_client("registrar", NULL);
    odp_registration_decide_t m = {0};
    m.resource = odp_v_str(resource);
    m.approve = odp_v_bool(true);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_registration_decide, &m, &rep);
    CHECK(st == 200, "registration.decide of %s: %d %s", resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st == 200;
}

/*  catalog --dict, register and approval: a registered entry ready for pushes. The
    resource code goes to resource (33 bytes); false when a step failed (reported). */
static bool s_registered(const char *tag, const char *code, const char *dict, char *resource)
{
    char out[512], err[512], dict_path[512];
    s_sample(dict, dict_path, sizeof dict_path);
    const char *cat[] = {"--json",
                         "catalog",
                         "--summary",
                         "由 odp-push 集成测试编目",
                         "--keywords",
                         "测试,odp-push，样例",
                         "--content-kind",
                         "dataset",
                         "--delivery-form",
                         "dataset_file",
                         "--open-type",
                         "unconditional",
                         "--update-cycle",
                         "monthly",
                         "--contact",
                         "020-12345678 数据科",
                         "--location",
                         "部门前置机 /data/export",
                         "--dict",
                         dict_path,
                         NULL};
    int rc = s_run(tag, h_keyfile(code), cat, 20000, out, err);
    json_t *j = s_first_json(out);
    snprintf(resource, 33, "%s", s_jstr(j, "resource"));
    json_decref(j);
    CHECK(rc == 0 && resource[0], "odp-push catalog --dict %s exited %d without a resource (%s)",
          dict, rc, err);
    if (rc != 0 || !resource[0])
        return false;
    const char *reg[] = {"register", "--resource", resource, NULL};
    rc = s_run(tag, h_keyfile(code), reg, 20000, out, err);
    CHECK(rc == 0, "odp-push register --resource %s exited %d (%s)", resource, rc, err);
    return rc == 0 && s_approve(resource);
}

/*  push --json FILE [extra...]: the exit status and the summary (last line; may be NULL). */
static int s_push(const char *tag, const char *code, const char *resource, const char *file,
                  const char *const *extra, json_t **summary, char *out)
{
    char err[512];
    const char *args[24] = {"--json", "push", "--resource", resource, file};
    int n = 5;
    for (const char *const *a = extra; a && *a && n < 23; a++)
        args[n++] = *a;
    args[n] = NULL;
    int rc = s_run(tag, h_keyfile(code), args, 180000, out, err);
    *summary = s_last_json(out);
    return rc;
}

static void s_check_summary(json_t *s, const char *what, const char *resource, int64_t version,
                            const char *file, int64_t rows, int64_t rejected, bool duplicate)
{
    char hex[65];
    s_sha256(file, hex);
    CHECK(s && strcmp(s_jstr(s, "event"), "summary") == 0, "%s: the last line is no summary", what);
    if (!s)
        return;
    CHECK(strcmp(s_jstr(s, "resource"), resource) == 0, "%s: resource %s", what,
          s_jstr(s, "resource"));
    CHECK(s_jint(s, "version") == version, "%s: version %lld, expected %lld", what,
          (long long)s_jint(s, "version"), (long long)version);
    CHECK(strcmp(s_jstr(s, "sha256"), hex) == 0, "%s: sha256 %s, the file's is %s", what,
          s_jstr(s, "sha256"), hex);
    CHECK(s_jint(s, "rows_received") == rows, "%s: rows_received %lld, the file has %lld", what,
          (long long)s_jint(s, "rows_received"), (long long)rows);
    CHECK(s_jint(s, "rows_staged") == rows - rejected, "%s: rows_staged %lld, expected %lld", what,
          (long long)s_jint(s, "rows_staged"), (long long)(rows - rejected));
    CHECK(s_jint(s, "rows_rejected") == rejected, "%s: rows_rejected %lld, expected %lld", what,
          (long long)s_jint(s, "rows_rejected"), (long long)rejected);
    CHECK(json_is_boolean(json_object_get(s, "duplicate")) &&
              json_is_true(json_object_get(s, "duplicate")) == duplicate,
          "%s: duplicate should be %s", what, duplicate ? "true" : "false");
}

/*  ---- cases ------------------------------------------------------------------------------ */

static void s_four_samples(void)
{
    const char *code = "441600001";
    CHECK(h_department(code, "惠州市政务服务数据管理局") == 0, "department.add");
    static const char *const names[] = {"air_quality_daily", "key_enterprise_assets",
                                        "land_use_status", "medical_institutions"};
    for (size_t i = 0; i < 4; i++) {
        char dict[128], csv[512], resource[33], out[512];
        snprintf(dict, sizeof dict, "%s.dict.json", names[i]);
        char file[128];
        snprintf(file, sizeof file, "%s.csv", names[i]);
        s_sample(file, csv, sizeof csv);
        if (!s_registered(names[i], code, dict, resource))
            continue;
        json_t *sum = NULL;
        int rc = s_push(names[i], code, resource, csv, NULL, &sum, out);
        CHECK(rc == 0, "odp-push push %s exited %d", file, rc);
        s_check_summary(sum, file, resource, 1, csv, s_csv_rows(csv), 0, false);
        CHECK(s_count_events(out, "progress") >= 1, "%s: no progress event before the summary",
              file);
        json_decref(sum);
    }
}

static void s_messy_gb18030(void)
{
    const char *code = "441600002";
    CHECK(h_department(code, "汕尾市政务服务数据管理局") == 0, "department.add");
    char resource[33], csv[512], out[512], err[512];
    if (!s_registered("messy", code, "key_enterprise_assets.dict.json", resource))
        return;
    s_sample("key_enterprise_assets.messy.gb18030.csv", csv, sizeof csv);
    const char *enc[] = {"--encoding", "gb18030", NULL};
    json_t *sum = NULL;
    int rc = s_push("messy", code, resource, csv, enc, &sum, out);
    CHECK(rc == 0, "odp-push push --encoding gb18030 exited %d", rc);
    s_check_summary(sum, "messy GB18030", resource, 1, csv, 300, 3, false);
    json_decref(sum);

    const char *rej[] = {"--json", "rejects", "--resource", resource, "--version", "1", NULL};
    rc = s_run("messy-rejects", h_keyfile(code), rej, 20000, out, err);
    CHECK(rc == 0, "odp-push rejects exited %d", rc);
    json_t *j = s_first_json(out);
    json_t *items = json_object_get(j, "items");
    CHECK(json_array_size(items) == 3, "rejects lists %zu rows, expected 3",
          json_array_size(items));
    static const int64_t rows[] = {12, 13, 14};
    for (size_t i = 0; i < 3 && i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        CHECK(s_jint(it, "row") == rows[i], "rejected row %zu is %lld, expected %lld", i,
              (long long)s_jint(it, "row"), (long long)rows[i]);
    }
    json_decref(j);

    /*  Without --json the summary points at the rejected rows. */
    const char *plain[] = {"versions", "--resource", resource, NULL};
    rc = s_run("messy-versions", h_keyfile(code), plain, 20000, out, err);
    CHECK(rc == 0 && s_file_has(out, "\"rows_rejected\": 3"),
          "odp-push versions does not show version 1 with 3 rejected rows (exit %d)", rc);
}

static void s_duplicate_then_version_2(void)
{
    const char *code = "441600003";
    CHECK(h_department(code, "河源市政务服务数据管理局") == 0, "department.add");
    char resource[33], csv[512], out[512];
    if (!s_registered("dup", code, "land_use_status.dict.json", resource))
        return;
    s_sample("land_use_status.csv", csv, sizeof csv);
    int64_t rows = s_csv_rows(csv);
    json_t *sum = NULL;
    int rc = s_push("dup-1", code, resource, csv, NULL, &sum, out);
    CHECK(rc == 0, "first push exited %d", rc);
    s_check_summary(sum, "first push", resource, 1, csv, rows, 0, false);
    json_decref(sum);

    rc = s_push("dup-2", code, resource, csv, NULL, &sum, out);
    CHECK(rc == 0, "the same file again exited %d", rc);
    s_check_summary(sum, "same file again", resource, 1, csv, rows, 0, true);
    CHECK(s_count_events(out, "progress") == 0, "a duplicate sent data");
    json_decref(sum);

    /*  The same file without its last row: new content, the next version. */
    char changed[512];
    snprintf(changed, sizeof changed, "%s/land_use_status-v2.csv", h_var());
    FILE *in = fopen(csv, "rb"), *o = fopen(changed, "wb");
    CHECK(in && o, "cannot write %s", changed);
    if (!in || !o) {
        if (in)
            fclose(in);
        if (o)
            fclose(o);
        return;
    }
    char line[8192];
    for (int64_t i = 0; i < rows && fgets(line, sizeof line, in); i++)
        fputs(line, o); /* the header and rows - 1 data rows */
    fclose(in);
    fclose(o);
    rc = s_push("dup-3", code, resource, changed, NULL, &sum, out);
    CHECK(rc == 0, "the changed file exited %d", rc);
    s_check_summary(sum, "changed file", resource, 2, changed, rows - 1, 0, false);
    json_decref(sum);
}

/*  A CSV in the key_enterprise_assets shape, big enough to take seconds to push. */
static bool s_write_big(const char *path, int64_t rows)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    static const char *const cities[] = {"广州市", "深圳市", "珠海市", "佛山市", "东莞市"};
    static const char *const trades[] = {"制造业", "金融业", "批发和零售业", "建筑业"};
    fputs("统一社会信用代码,企业名称,所属地市,行业门类,资产总额_万元,营业收入_万元,从业人员数,"
          "统计年度\n",
          f);
    for (int64_t i = 1; i <= rows; i++)
        fprintf(f, "91440%013lld,\"测试企业%lld有限公司\",%s,%s,%lld.%02lld,%lld.%02lld,%lld,%d\n",
                (long long)i, (long long)i, cities[i % 5], trades[i % 4],
                (long long)(i * 37 % 1000000), (long long)(i % 100), (long long)(i * 13 % 500000),
                (long long)(i * 7 % 100), (long long)(i % 20000), 2000 + (int)(i % 25));
    return fclose(f) == 0;
}

static void s_kill_mid_push(void)
{
    const char *code = "441600004";
    const int64_t rows = 300000;
    CHECK(h_department(code, "梅州市政务服务数据管理局") == 0, "department.add");
    char resource[33], big[512], hex[65];
    if (!s_registered("kill", code, "key_enterprise_assets.dict.json", resource))
        return;
    snprintf(big, sizeof big, "%s/big-enterprises.csv", h_var());
    CHECK(s_write_big(big, rows), "cannot write %s", big);
    s_sha256(big, hex);

    char path[512], out[512], err[512];
    snprintf(path, sizeof path, "%s/odp-push", h_bin());
    snprintf(out, sizeof out, "%s/push-kill.out", h_var());
    snprintf(err, sizeof err, "%s/push-kill.err", h_var());
    remove(out);
    remove(err);
    const char *argv[] = {path,     "--json", "--cert", h_keyfile(code), "push", "--resource",
                          resource, big,      NULL};
    pid_t pid = h_spawn(argv, NULL, out, err);

    /*  Kill the registrar once some rows are committed and before the end. */
    PGconn *pg = h_pg_super();
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT committed FROM registrar.uploads WHERE sha256 = '%s' AND status = "
             "'receiving'",
             hex);
    int64_t committed = -1, until = zclock_mono() + 60000;
    while (zclock_mono() < until) {
        committed = h_pg_int(pg, sql);
        if (committed > 0)
            break;
        zclock_sleep(10);
    }
    CHECK(committed > 0, "no committed bytes seen for the push (%lld)", (long long)committed);
    h_service_kill9("registrar");
    int64_t at_kill = h_pg_int(pg, sql);
    CHECK(at_kill > 0,
          "the push was no longer receiving when the registrar died (%lld): "
          "make the file bigger",
          (long long)at_kill);
    CHECK(h_service_start("registrar", NULL) > 0, "the registrar did not come back");

    int rc = h_wait_exit(pid, 300000);
    if (rc < 0) {
        kill(pid, SIGKILL);
        h_wait_exit(pid, 5000);
    }
    CHECK(rc == 0, "odp-push did not finish by itself after the restart (exit %d; see %s)", rc,
          err);
    CHECK(s_count_events(out, "resume") >= 1, "no resume event in %s", out);
    json_t *sum = s_last_json(out);
    s_check_summary(sum, "killed mid-push", resource, 1, big, rows, 0, false);

    /*  Exactly once: every row staged, none twice. */
    const char *staging = s_jstr(sum, "staging_table");
    char table[160];
    if (strchr(staging, '.'))
        snprintf(table, sizeof table, "%s", staging);
    else
        snprintf(table, sizeof table, "registrar.stage_u%lld", (long long)s_jint(sum, "upload"));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    int64_t n = h_pg_int(pg, sql);
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT row_no) FROM %s", table);
    int64_t distinct = h_pg_int(pg, sql);
    CHECK(n == rows && distinct == rows, "%s holds %lld rows, %lld distinct; expected %lld", table,
          (long long)n, (long long)distinct, (long long)rows);
    json_decref(sum);
    PQfinish(pg);
    remove(big);
}

static void s_refusals(void)
{
    const char *owner = "441700001", *other = "441700002";
    CHECK(h_department(owner, "揭阳市政务服务数据管理局") == 0, "department.add");
    CHECK(h_department(other, "云浮市政务服务数据管理局") == 0, "department.add");
    char resource[33], csv[512], out[512], err[512];
    if (s_registered("refuse", owner, "land_use_status.dict.json", resource)) {
        s_sample("land_use_status.csv", csv, sizeof csv);
        const char *push[] = {"push", "--resource", resource, csv, NULL};
        int rc = s_run("refuse-push", h_keyfile(other), push, 20000, out, err);
        CHECK(rc == 1, "pushing to another department's entry exited %d, expected 1", rc);
        CHECK(s_file_has(err, "FORBIDDEN"), "the refusal does not say FORBIDDEN (see %s)", err);
    }
    const char *mars[] = {"catalog",
                          "--title",
                          "火星土壤数据",
                          "--summary",
                          "不存在的领域",
                          "--keywords",
                          "火星",
                          "--domain",
                          "火星",
                          "--content-kind",
                          "dataset",
                          "--delivery-form",
                          "dataset_file",
                          "--open-type",
                          "unconditional",
                          "--update-cycle",
                          "yearly",
                          "--contact",
                          "020-00000000",
                          "--location",
                          "无",
                          NULL};
    int rc = s_run("refuse-domain", h_keyfile(owner), mars, 20000, out, err);
    CHECK(rc == 1, "a catalogue entry in domain 火星 exited %d, expected 1", rc);
    CHECK(s_file_has(err, "field domain"), "the refusal does not name the field domain (see %s)",
          err);
    const char *usage[] = {"push", "--resource", resource, NULL};
    rc = s_run("refuse-usage", h_keyfile(owner), usage, 20000, out, err);
    CHECK(rc == 2, "push without a FILE exited %d, expected 2", rc);
}

const h_case_t t_odp_push_cases[] = {
    {"odp-push: a department catalogues, registers and pushes the four samples", s_four_samples},
    {"odp-push: the messy GB18030 file gives 300 / 297 / 3 and lists rows 12-14", s_messy_gb18030},
    {"odp-push: the same file again is a duplicate, a changed one version 2",
     s_duplicate_then_version_2},
    {"odp-push: a registrar killed mid-push; the tool resumes, every row exactly once",
     s_kill_mid_push},
    {"odp-push: refusals reach the user (FORBIDDEN, the field at fault)", s_refusals},
    {NULL, NULL}};
