/*  The metrics service end to end (R6c, R9e, R10a-R10c): a scripted history made through the
    real registrar and reviewer (departments, plans, entries, pushes, quarantine, decisions),
    and the real publisher (two releases, one withdrawal), gives the numbers docs/assessment.md
   defines, computed here by hand from what the other services answered. Then: restarts and a fresh
   start count the same, /metrics is valid for promtool and its counters never go back, a webhook
   receiver that was down gets every event in order, alerts are raised once per condition. */
#include "pushing.h"

#include "common/auth.h"
#include "common/outbox.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_D1 "446500001"
#define S_D2 "446500002"
#define S_D3 "448500001" /* the query service's users' department */

static const char *const s_fast_env[] = {"ODP_METRICS_ALERT_MS=300", "ODP_METRICS_POLL_MS=300",
                                         "ODP_METRICS_WEBHOOK_MAX_BACKOFF_MS=400", NULL};

static void s_metrics_restart(void)
{
    h_service_stop("metrics");
    CHECK(h_service_start("metrics", s_fast_env) > 0, "metrics starts again");
}

/*  Wait until metrics has handled every event each source has committed. */
static bool s_caught_up(int timeout_ms)
{
    PGconn *pg = h_pg_super();
    bool ok = false;
    int64_t until = zclock_mono() + timeout_ms;
    while (!ok && zclock_mono() < until) {
        ok = h_pg_int(pg, "SELECT count(*) FROM (VALUES ('registrar', (SELECT last FROM "
                          "registrar.outbox_counter)), ('reviewer', (SELECT last FROM "
                          "reviewer.outbox_counter)), ('publisher', (SELECT last FROM "
                          "publisher.outbox_counter)), ('query', (SELECT last FROM "
                          "query.outbox_counter))) s(source, last) WHERE s.last > "
                          "coalesce((SELECT c.last FROM metrics.consumer_cursor c WHERE "
                          "c.source = s.source), 0)") == 0;
        if (!ok)
            zclock_sleep(100);
    }
    PQfinish(pg);
    CHECK(ok, "metrics caught up with every source within %d ms", timeout_ms);
    return ok;
}

/*  The real publisher releases a version (operations' key), or withdraws the entry's
    current release: the release.* events metrics counts are its own. 200 when done. */
static int s_release(const char *resource, int64_t version)
{
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_publish_t m = {0};
    m.resource = odp_v_str(resource);
    m.version = odp_v_int(version);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_release_publish, &m, &rep);
    CHECK(st == 200, "release.publish %s v%lld: %d %s", resource, (long long)version, st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

static int s_withdraw(const char *resource)
{
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_withdraw_t m = {0};
    m.resource = odp_v_str(resource);
    m.reason = odp_v_str("指标测试: 撤回");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_release_withdraw, &m, &rep);
    CHECK(st == 200, "release.withdraw %s: %d %s", resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

static int s_decide(int64_t upload, bool approve)
{
    odp_client_t *c = h_client("reviewer", NULL);
    odp_review_decide_t m = {0};
    m.upload = odp_v_int(upload);
    m.approve = odp_v_bool(approve);
    m.reason = odp_v_str(approve ? NULL : "隔离行过多, 退回重报");
    odp_reply_t rep;
    int st = 0;
    /*  The reviewer checks after data.received: until then the version is not in review. */
    for (int i = 0; i < 200; i++) {
        st = h_call(c, &odp_def_review_decide, &m, &rep);
        if (st != 404 && st != 409)
            break;
        odp_reply_free(&rep);
        usleep(100 * 1000);
    }
    CHECK(st == 200, "review.decide %lld: %d %s", (long long)upload, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

static int64_t s_plan(const char *dept, const char *title, const char *due)
{
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    odp_plan_add_t m = {0};
    m.title = odp_v_str(title);
    m.open_type = odp_v_str("unconditional");
    m.update_cycle = odp_v_str("monthly");
    m.due_on = odp_v_str(due);
    m.maintainer = odp_v_str("指标测试");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_plan_add, &m, &rep);
    CHECK(st == 200, "plan.add %s: %d %s", title, st, h_err_code(&rep));
    int64_t id = st == 200 ? h_int(&rep, "id") : 0;
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return id;
}

static bool s_push(const char *dept, const char *resource, const char *file, const char *enc,
                   tp_result_t *res)
{
    size_t len;
    char *data = tp_read(file, &len);
    if (!data)
        return false;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .encoding = enc};
    int st = tp_push(c, &o, data, len, res);
    CHECK(st == 200, "push %s: %s gave %d %s %s", file, res->step, st, res->code, res->message);
    odp_client_destroy(&c);
    free(data);
    return st == 200;
}

/*  ---- reading replies ---------------------------------------------------------------------- */

static const msgpack_object *s_path(const msgpack_object *o, const char *a, const char *b)
{
    o = o ? odp_map_get(o, a) : NULL;
    return o && b ? odp_map_get(o, b) : o;
}

static double s_num(const msgpack_object *o)
{
    if (!o)
        return NAN;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return o->via.f64;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return (double)o->via.i64;
    default:
        return NAN;
    }
}

/*  The item of array o whose key field is the text value. */
static const msgpack_object *s_find(const msgpack_object *o, const char *key, const char *value)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *v = odp_map_get(&o->via.array.ptr[i], key);
        if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(value) &&
            memcmp(v->via.str.ptr, value, v->via.str.size) == 0)
            return &o->via.array.ptr[i];
    }
    return NULL;
}

#define NEAR(got, want, what)                                                                      \
    CHECK(fabs((got) - (want)) < 1e-9, "%s: %.12g, by hand %.12g", what, (double)(got),            \
          (double)(want))

static int s_metrics_call(const odp_msgdef_t *def, const void *msg, const char *cert,
                          odp_reply_t *rep)
{
    odp_client_t *c = h_client("metrics", cert);
    int st = h_call(c, def, msg, rep);
    odp_client_destroy(&c);
    return st;
}

/*  ---- the scripted history ------------------------------------------------------------------ */

typedef struct {
    char e1[33], e2[33];
    tp_result_t v1, v2, w1; /* E1 messy (rejected), E1 clean (approved), E2 (approved) */
    int64_t late_plan, future_plan;
    double completeness1, completeness2;
    bool ok;
} s_history_t;

static s_history_t s_h;

static double s_completeness(const char *resource)
{
    PGconn *pg = h_pg_super();
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT (coalesce(cardinality(keywords), 0) > 0)::int + (released_on IS NOT "
             "NULL)::int + (updated_on IS NOT NULL)::int + (open_type <> 'conditional' OR "
             "access_conditions IS NOT NULL)::int FROM registrar.resources WHERE resource = "
             "'%s'",
             resource);
    int64_t n = h_pg_int(pg, sql);
    PQfinish(pg);
    return (double)n / 4.0;
}

static void s_history(void)
{
    memset(&s_h, 0, sizeof s_h);
    CHECK(h_department(S_D1, "指标测试 一部门") == 0, "department %s", S_D1);
    CHECK(h_department(S_D2, "指标测试 二部门") == 0, "department %s", S_D2);
    s_h.late_plan = s_plan(S_D1, "早已到期的计划", "2020-01-01");
    s_h.future_plan = s_plan(S_D1, "明年的计划", "2030-12-31");
    if (!tp_entry(S_D1, "指标 重点企业资产", "dataset", "key_enterprise_assets", true, s_h.e1) ||
        !tp_entry(S_D2, "指标 空气质量", "dataset", "air_quality_daily", true, s_h.e2))
        return;
    if (!s_push(S_D1, s_h.e1, "key_enterprise_assets.messy.gb18030.csv", "gb18030", &s_h.v1) ||
        s_decide(s_h.v1.upload, false) != 200)
        return;
    if (!s_push(S_D1, s_h.e1, "key_enterprise_assets.csv", NULL, &s_h.v2) ||
        s_decide(s_h.v2.upload, true) != 200)
        return;
    if (!s_push(S_D2, s_h.e2, "air_quality_daily.csv", NULL, &s_h.w1) ||
        s_decide(s_h.w1.upload, true) != 200)
        return;
    /*  The publisher releases both approved versions, then withdraws E1's. */
    if (s_release(s_h.e1, s_h.v2.version) != 200 || s_release(s_h.e2, s_h.w1.version) != 200 ||
        s_withdraw(s_h.e1) != 200)
        return;
    s_h.completeness1 = s_completeness(s_h.e1);
    s_h.completeness2 = s_completeness(s_h.e2);
    s_h.ok = s_caught_up(30000);
}

/*  How many rows the reviewer said it isolated in upload: its review.flagged event's
    `quarantined` (what metrics is told; docs/assessment.md counts from the events). */
static int64_t s_quarantined(int64_t upload)
{
    PGconn *pg = h_pg_super();
    PGresult *r =
        PQexecParams(pg, "SELECT body FROM reviewer.outbox WHERE topic = 'review.flagged'", 0, NULL,
                     NULL, NULL, NULL, 1);
    int64_t n = -1;
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), NULL) ==
                MSGPACK_UNPACK_SUCCESS &&
            s_num(odp_map_get(&u.data, "upload")) == (double)upload)
            n = (int64_t)s_num(odp_map_get(&u.data, "quarantined"));
        msgpack_unpacked_destroy(&u);
    }
    PQclear(r);
    PQfinish(pg);
    CHECK(n >= 0, "the reviewer flagged upload %lld", (long long)upload);
    return n;
}

static void s_statistics(void)
{
    if (!s_h.ok)
        s_history();
    if (!s_h.ok)
        return;
    odp_stats_get_t m = {0};
    m.department = odp_v_str(S_D1);
    odp_reply_t rep;
    int st = s_metrics_call(&odp_def_stats_get, &m, NULL, &rep);
    CHECK(st == 200, "stats.get: %d %s", st, h_err_code(&rep));
    if (st == 200) {
        const msgpack_object *t = odp_map_get(&rep.obj, "totals");
        NEAR(s_num(s_path(t, "planned", NULL)), 2, "planned");
        NEAR(s_num(s_path(t, "catalogued", NULL)), 1, "catalogued");
        NEAR(s_num(s_path(t, "registered", NULL)), 1, "registered");
        NEAR(s_num(s_path(t, "released", NULL)), 1, "released");
        NEAR(s_num(s_path(t, "withdrawn", NULL)), 1, "withdrawn");
        NEAR(s_num(odp_map_get(&rep.obj, "versions")), 2, "versions");
        NEAR(s_num(odp_map_get(&rep.obj, "rows")), s_h.v1.rows_staged + s_h.v2.rows_staged, "rows");
        NEAR(s_num(odp_map_get(&rep.obj, "bytes")), s_h.v1.size + s_h.v2.size, "bytes");
        NEAR(s_num(s_path(&rep.obj, "efficiency", "first_pass_approval_rate")), 0.5,
             "first-pass approval rate");
        const msgpack_object *dom =
            s_find(odp_map_get(&rep.obj, "by_domain"), "domain", "resources_environment");
        NEAR(s_num(s_path(dom, "catalogued", NULL)), 1, "catalogued in resources_environment");
        NEAR(s_num(s_path(&rep.obj, "access", "downloads")), 0, "downloads (no query events)");
    }
    odp_reply_free(&rep);
    /*  A period that is not one is refused, naming the field. */
    m.period = odp_v_str("2026-13");
    st = s_metrics_call(&odp_def_stats_get, &m, NULL, &rep);
    CHECK(st == 422 && strcmp(h_err_code(&rep), "INVALID_VALUE") == 0,
          "period 2026-13: %d %s, not 422 INVALID_VALUE", st, h_err_code(&rep));
    odp_reply_free(&rep);
    /*  Statistics are for operations: a department is refused. */
    m.period = odp_v_str(NULL);
    st = s_metrics_call(&odp_def_stats_get, &m, h_keyfile(S_D1), &rep);
    CHECK(st == 403, "stats.get as a provider: %d, not 403", st);
    odp_reply_free(&rep);
}

/*  The six dimensions of docs/assessment.md, by hand from the history's own numbers. */
typedef struct {
    double continuity, consistency, normativity, authenticity, completeness, validity;
} s_dims_t;

static s_dims_t s_expect_d1(void)
{
    double r1 = (double)s_h.v1.rows_received, st1 = (double)s_h.v1.rows_staged;
    double r2 = (double)s_h.v2.rows_received, st2 = (double)s_h.v2.rows_staged;
    double q1 = (double)s_quarantined(s_h.v1.upload);
    s_dims_t d;
    d.continuity = 1.0;                      /* one daily period so far, approved in it */
    d.consistency = (st1 + st2) / (r1 + r2); /* staged of received */
    d.normativity = 1.0 / (2 + 0);           /* first-pass approvals / (decided + failed) */
    d.authenticity = ((1 + 0 + 1) / 3.0 + (1 + 1 + 1) / 3.0) / 2; /* mean of the versions' */
    d.completeness = s_h.completeness1;
    d.validity = 1.0 - q1 / (st1 + st2);
    return d;
}

static void s_check_dims(const msgpack_object *o, const s_dims_t *d, const char *who)
{
    char what[80];
#define S_DIM(name)                                                                                \
    snprintf(what, sizeof what, "%s " #name, who);                                                 \
    NEAR(s_num(odp_map_get(o, #name)), d->name, what)
    S_DIM(continuity);
    S_DIM(consistency);
    S_DIM(normativity);
    S_DIM(authenticity);
    S_DIM(completeness);
    S_DIM(validity);
#undef S_DIM
}

static void s_assessment(void)
{
    if (!s_h.ok)
        s_history();
    if (!s_h.ok)
        return;
    odp_assess_get_t m = {0};
    m.department = odp_v_str(S_D1);
    odp_reply_t rep;
    int st = s_metrics_call(&odp_def_assess_get, &m, NULL, &rep);
    CHECK(st == 200, "assess.get: %d %s", st, h_err_code(&rep));
    if (st == 200) {
        s_dims_t d = s_expect_d1();
        s_check_dims(s_find(odp_map_get(&rep.obj, "departments"), "department", S_D1), &d,
                     "department");
        s_check_dims(s_find(odp_map_get(&rep.obj, "entries"), "resource", s_h.e1), &d, "entry");
        /*  The rejected version alone: its own six numbers. */
        const msgpack_object *vs = odp_map_get(&rep.obj, "versions");
        const msgpack_object *v1 = NULL;
        for (uint32_t i = 0; vs && vs->type == MSGPACK_OBJECT_ARRAY && i < vs->via.array.size; i++)
            if (s_num(odp_map_get(&vs->via.array.ptr[i], "upload")) == (double)s_h.v1.upload)
                v1 = &vs->via.array.ptr[i];
        s_dims_t v = {1.0,
                      (double)s_h.v1.rows_staged / (double)s_h.v1.rows_received,
                      0.0,
                      2.0 / 3.0,
                      s_h.completeness1,
                      1.0 - (double)s_quarantined(s_h.v1.upload) / (double)s_h.v1.rows_staged};
        s_check_dims(v1, &v, "rejected version");
    }
    odp_reply_free(&rep);
}

/*  Whether metrics has recorded any use of any entry (the query service's usage.counted,
    from whichever case made some): until then the index's access is nil, after it 0 for
    a department nobody used. */
static bool s_accessed(void)
{
    PGconn *pg = h_pg_super();
    bool yes = h_pg_int(pg, "SELECT count(*) FROM metrics.access") > 0;
    PQfinish(pg);
    return yes;
}

/*  D1's index by hand: volume 0 (its one release is withdrawn; one plan is late), quality
    the mean of its six dimensions, apps 0, access 0 (nobody used it) or nil (nothing used
    yet), effect without inputs, efficiency the mean of 1/2 (first-pass approvals) and 0
    (its one due plan is late). */
static double s_expect_index_d1(const double w[6])
{
    s_dims_t d = s_expect_d1();
    double q = (d.continuity + d.consistency + d.normativity + d.authenticity + d.completeness +
                d.validity) /
               6;
    double volume = 0.0 / (1 + 1), apps = 0, efficiency = (0.5 + 0.0) / 2;
    double access_w = s_accessed() ? w[3] : 0;
    return 100 * (w[0] * volume + w[1] * q + w[2] * apps + w[4] * efficiency) /
           (w[0] + w[1] + w[2] + access_w + w[4]);
}

static double s_index_of(const char *dept, odp_reply_t *rep)
{
    odp_index_get_t m = {0};
    m.department = odp_v_str(dept);
    int st = s_metrics_call(&odp_def_index_get, &m, NULL, rep);
    CHECK(st == 200, "index.get: %d %s", st, h_err_code(rep));
    return st == 200
               ? s_num(s_path(s_find(odp_map_get(&rep->obj, "departments"), "department", dept),
                              "score", NULL))
               : NAN;
}

static void s_index(void)
{
    if (!s_h.ok)
        s_history();
    if (!s_h.ok)
        return;
    odp_reply_t rep;
    double w[6] = {0.2, 0.25, 0.1, 0.15, 0.2, 0.1};
    NEAR(s_index_of(S_D1, &rep), s_expect_index_d1(w), "index of D1, initial weights");
    odp_reply_free(&rep);
    /*  D2: volume 1 (released, open), apps 0, efficiency 1 (approved first time, no plans). */
    double d2 = s_index_of(S_D2, &rep);
    odp_reply_free(&rep);
    CHECK(d2 > s_expect_index_d1(w), "D2 (%.3f) ranks above D1", d2);
    /*  index.explain traces the volume to the records: E1 is not open, plan late. */
    odp_index_explain_t x = {0};
    x.department = odp_v_str(S_D1);
    int st = s_metrics_call(&odp_def_index_explain, &x, NULL, &rep);
    CHECK(st == 200, "index.explain: %d %s", st, h_err_code(&rep));
    if (st == 200) {
        NEAR(s_num(s_path(&rep.obj, "volume", "late_plans")), 1, "explained late plans");
        const msgpack_object *late = s_path(&rep.obj, "efficiency", "late");
        CHECK(late && late->type == MSGPACK_OBJECT_ARRAY && late->via.array.size == 1 &&
                  s_num(&late->via.array.ptr[0]) == (double)s_h.late_plan,
              "the late plan %lld is named", (long long)s_h.late_plan);
        const msgpack_object *rej = s_path(&rep.obj, "efficiency", "rejected_first");
        CHECK(rej && rej->type == MSGPACK_OBJECT_ARRAY && rej->via.array.size == 1 &&
                  s_num(&rej->via.array.ptr[0]) == (double)s_h.v1.upload,
              "the rejected upload %lld is named", (long long)s_h.v1.upload);
    }
    odp_reply_free(&rep);
    x.department = odp_v_str("446599999");
    st = s_metrics_call(&odp_def_index_explain, &x, NULL, &rep);
    CHECK(st == 404, "index.explain of no department: %d, not 404", st);
    odp_reply_free(&rep);

    /*  New weights: a new version, and the index as the definition gives with them. */
    odp_weights_set_t ws = {0};
    double nw[6] = {0.5, 0.1, 0.1, 0.1, 0.1, 0.1};
    ws.volume = odp_v_num(nw[0]);
    ws.quality = odp_v_num(nw[1]);
    ws.apps = odp_v_num(nw[2]);
    ws.access = odp_v_num(nw[3]);
    ws.efficiency = odp_v_num(nw[4]);
    ws.effect = odp_v_num(nw[5]);
    ws.comment = odp_v_str("开放数量优先");
    st = s_metrics_call(&odp_def_weights_set, &ws, h_keyfile(S_D1), &rep);
    CHECK(st == 403, "weights.set by a department: %d, not 403", st);
    odp_reply_free(&rep);
    st = s_metrics_call(&odp_def_weights_set, &ws, NULL, &rep);
    CHECK(st == 200, "weights.set: %d %s", st, h_err_code(&rep));
    int64_t version = st == 200 ? h_int(&rep, "version") : -1;
    odp_reply_free(&rep);
    NEAR(s_index_of(S_D1, &rep), s_expect_index_d1(nw), "index of D1, new weights");
    NEAR(s_num(odp_map_get(&rep.obj, "weights")), (double)version, "weights version used");
    odp_reply_free(&rep);
    odp_weights_set_t zero = {0};
    zero.volume = zero.quality = zero.apps = zero.access = zero.efficiency = zero.effect =
        odp_v_num(0);
    st = s_metrics_call(&odp_def_weights_set, &zero, NULL, &rep);
    CHECK(st == 422, "all weights 0: %d, not 422", st);
    odp_reply_free(&rep);
    /*  The history keeps every computed index, with its weights. */
    odp_index_history_t hq = {0};
    hq.department = odp_v_str(S_D1);
    st = s_metrics_call(&odp_def_index_history, &hq, NULL, &rep);
    const msgpack_object *items = odp_map_get(&rep.obj, "items");
    CHECK(st == 200 && items && items->type == MSGPACK_OBJECT_ARRAY && items->via.array.size >= 2,
          "index.history keeps both computations");
    odp_reply_free(&rep);
    /*  The quality report names the rejected version and its quarantine. */
    odp_quality_report_t fr = {0};
    st = s_metrics_call(&odp_def_quality_report, &fr, h_keyfile(S_D1), &rep);
    CHECK(st == 200, "quality.report as the department: %d %s", st, h_err_code(&rep));
    if (st == 200) {
        const msgpack_object *mine = s_find(odp_map_get(&rep.obj, "items"), "department", S_D1);
        NEAR(s_num(s_path(mine, "quarantined", NULL)), (double)s_quarantined(s_h.v1.upload),
             "quarantined rows reported");
        const msgpack_object *fix = s_path(mine, "to_fix", NULL);
        CHECK(fix && fix->type == MSGPACK_OBJECT_ARRAY && fix->via.array.size == 1,
              "one version to fix");
        CHECK(odp_map_get(&rep.obj, "items")->via.array.size == 1,
              "a department sees its own report only");
    }
    odp_reply_free(&rep);
    /*  The tool: odpctl index --explain with --json prints the same record. */
    char path[512], out[512];
    snprintf(path, sizeof path, "%s/odpctl", h_bin());
    snprintf(out, sizeof out, "%s/metrics-odpctl.out", h_var());
    const char *argv[] = {path, "index", "--explain", "--department", S_D1, "--json", NULL};
    unlink(out);
    int rc = h_wait_exit(h_spawn(argv, NULL, out, NULL), 10000);
    json_t *j = json_load_file(out, 0, NULL);
    CHECK(rc == 0 && j && json_is_object(json_object_get(j, "volume")),
          "odpctl index --explain --json: exit %d", rc);
    json_decref(j);
}

/*  ---- following: restarts and a late start count the same ---------------------------------- */

/*  Everything metrics derived from events, as one digest. */
static char *s_digest(void)
{
    PGconn *pg = h_pg_super();
    PGresult *r = PQexec(
        pg, "SELECT md5(concat_ws('|', (SELECT string_agg(concat_ws(',', source, topic, count, "
            "last_seq), ';' ORDER BY source, topic) FROM metrics.event_counts), (SELECT "
            "string_agg(p::text, ';' ORDER BY id) FROM metrics.plans p), (SELECT "
            "string_agg(e::text, ';' ORDER BY resource) FROM metrics.entries e), (SELECT "
            "string_agg(v::text, ';' ORDER BY upload) FROM metrics.versions v), (SELECT "
            "string_agg(f::text, ';' ORDER BY upload) FROM metrics.push_failures f), (SELECT "
            "string_agg(q::text, ';' ORDER BY upload) FROM metrics.quarantine_isolated q), "
            "(SELECT string_agg(w::text, ';' ORDER BY upload) FROM metrics.reviews w), "
            "(SELECT string_agg(h::text, ';' ORDER BY upload, row_no) FROM "
            "metrics.quarantine_handled h), (SELECT string_agg(r::text, ';' ORDER BY resource, "
            "version) FROM metrics.releases r)))");
    char *d = PQresultStatus(r) == PGRES_TUPLES_OK ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    PQfinish(pg);
    return d;
}

static void s_following(void)
{
    if (!s_h.ok)
        s_history();
    /*  Down while events are made: plans, a push; killed mid-stream during more. */
    h_service_stop("metrics");
    for (int i = 0; i < 30; i++) {
        char title[64];
        snprintf(title, sizeof title, "停机期间的计划%d", i);
        s_plan(S_D2, title, "2031-01-31");
    }
    tp_result_t res;
    s_push(S_D2, s_h.e2, "air_quality_daily.csv", NULL, &res);
    CHECK(h_service_start("metrics", s_fast_env) > 0, "metrics starts");
    for (int i = 0; i < 30; i++) {
        char title[64];
        snprintf(title, sizeof title, "重启期间的计划%d", i);
        s_plan(S_D2, title, "2031-01-31");
        if (i == 10)
            h_service_kill9("metrics");
        if (i == 20)
            CHECK(h_service_start("metrics", s_fast_env) > 0, "metrics starts after SIGKILL");
    }
    if (!s_caught_up(30000))
        return;
    char *restarted = s_digest();
    /*  Counted exactly: per source and topic as many as the source committed. */
    PGconn *pg = h_pg_super();
    /*  (An event whose body breaks its declaration is dead-lettered, not counted.) */
    CHECK(h_pg_int(pg, "SELECT count(*) FROM (SELECT topic, count(*) AS n FROM registrar.outbox "
                       "GROUP BY topic) o FULL JOIN (SELECT topic, sum(n) AS n FROM (SELECT "
                       "topic, count AS n FROM metrics.event_counts WHERE source = 'registrar' "
                       "UNION ALL SELECT topic, count(*) FROM metrics.consumer_dead_letter WHERE "
                       "source = 'registrar' GROUP BY topic) x GROUP BY topic) m USING (topic) "
                       "WHERE o.n IS DISTINCT FROM m.n") == 0,
          "metrics' registrar counts and dead letters equal the registrar's outbox, topic by "
          "topic");
    /*  A metrics started after all this history: nothing of its own, it replays every
        source from its first event. */
    h_service_stop("metrics");
    PGresult *r =
        PQexec(pg, "TRUNCATE metrics.consumer_cursor, metrics.consumer_dead_letter, "
                   "metrics.event_counts, metrics.plans, metrics.entries, metrics.versions, "
                   "metrics.push_failures, metrics.quarantine_isolated, metrics.reviews, "
                   "metrics.quarantine_handled, metrics.releases, metrics.event_log");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "emptying metrics: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pg);
    CHECK(h_service_start("metrics", s_fast_env) > 0, "a fresh metrics starts");
    s_caught_up(60000);
    char *fresh = s_digest();
    CHECK(restarted && fresh && strcmp(restarted, fresh) == 0,
          "a fresh start ends with the numbers of the restarted one (%s, %s)", fresh, restarted);
    free(restarted);
    free(fresh);
}

/*  ---- Prometheus ------------------------------------------------------------------------------
 */

static int s_http_port(int offset)
{
    return (int)odp_config_int(NULL, "PORT_BASE", 7500) + offset;
}

static size_t s_collect(char *p, size_t size, size_t n, void *arg)
{
    FILE *f = arg;
    return fwrite(p, size, n, f);
}

/*  GET /metrics into path; the HTTP status. */
static long s_scrape(const char *path)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", s_http_port(45));
    FILE *f = fopen(path, "w");
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    fclose(f);
    return status;
}

/*  The value of the sample whose line starts with prefix (name and labels), or -1. */
static double s_sample(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    double v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, prefix, strlen(prefix)) == 0 && line[strlen(prefix)] == ' ')
            v = strtod(line + strlen(prefix) + 1, NULL);
    if (f)
        fclose(f);
    return v;
}

static void s_prometheus(void)
{
    if (!s_h.ok)
        s_history();
    char before[512], after[512], cmd[1200];
    snprintf(before, sizeof before, "%s/metrics-before.prom", h_var());
    snprintf(after, sizeof after, "%s/metrics-after.prom", h_var());
    zclock_sleep(1000); /* a health poll of every service */
    CHECK(s_scrape(before) == 200, "GET /metrics answers 200");
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.check 2>&1", before, before);
    CHECK(system(cmd) == 0, "promtool check metrics accepts /metrics (see %s.check)", before);
    static const char *const counters[] = {
        "odp_requests_total{service=\"registrar\"}",
        "odp_requests_total{service=\"reviewer\"}",
        "odp_request_duration_seconds_count{service=\"registrar\"}",
        "odp_events_total{source=\"registrar\",topic=\"catalog.planned\"}",
        "odp_plans_total",
        "odp_versions_received_total",
        "odp_releases_published_total"};
    size_t n = sizeof counters / sizeof counters[0];
    double was[16];
    for (size_t i = 0; i < n; i++) {
        was[i] = s_sample(before, counters[i]);
        CHECK(was[i] > 0, "%s is exported and above 0 (%g)", counters[i], was[i]);
    }
    /*  Both the counted service and metrics restart: nothing goes back. */
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", NULL) > 0, "registrar starts again");
    s_metrics_restart();
    zclock_sleep(1500);
    CHECK(s_scrape(after) == 200, "GET /metrics after the restarts answers 200");
    for (size_t i = 0; i < n; i++) {
        double now = s_sample(after, counters[i]);
        CHECK(now >= was[i], "%s went back: %g after %g", counters[i], now, was[i]);
    }
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/x",
             s_http_port(45));
    FILE *p = popen(cmd, "r");
    char code[8] = "";
    if (p) {
        CHECK(fgets(code, sizeof code, p) != NULL, "curl answered");
        pclose(p);
    }
    CHECK(strcmp(code, "404") == 0, "another path: %s, not 404", code);
}

/*  ---- webhooks ---------------------------------------------------------------------------- */

#define S_HOOK_MAX 4096
static struct {
    pthread_mutex_t lock;
    int64_t seqs[S_HOOK_MAX];
    int n;
    int bad; /* bodies that are not CloudEvents */
} s_recv = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0};

typedef struct {
    char *body;
    size_t len;
} s_upload_t;

static enum MHD_Result s_hook(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    s_upload_t *u = *state;
    if (!u) {
        *state = calloc(1, sizeof *u);
        return *state ? MHD_YES : MHD_NO;
    }
    if (*size) {
        char *b = realloc(u->body, u->len + *size + 1);
        if (!b)
            return MHD_NO;
        memcpy(b + u->len, data, *size);
        u->body = b;
        u->len += *size;
        u->body[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    json_t *ce = u->body ? json_loads(u->body, 0, NULL) : NULL;
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const char *seq = json_string_value(json_object_get(ce, "sequence"));
    pthread_mutex_lock(&s_recv.lock);
    if (!seq || !type || strncmp(type, "application/cloudevents+json", 28) != 0 ||
        strcmp(json_string_value(json_object_get(ce, "specversion")) ?: "", "1.0") != 0 ||
        strcmp(json_string_value(json_object_get(ce, "source")) ?: "", "/odp/registrar") != 0)
        s_recv.bad++;
    else if (s_recv.n < S_HOOK_MAX)
        s_recv.seqs[s_recv.n++] = strtoll(seq, NULL, 10);
    pthread_mutex_unlock(&s_recv.lock);
    json_decref(ce);
    free(u->body);
    free(u);
    *state = NULL;
    static const char ok[] = "";
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_ACCEPTED, r);
    MHD_destroy_response(r);
    return rc;
}

static void s_webhook(void)
{
    if (!s_h.ok)
        s_history();
    int port = s_http_port(46);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    odp_webhook_add_t a = {0};
    msgpack_object arr, items[1];
    const char *src[] = {"registrar"};
    a.url = odp_v_str(url);
    a.sources = tp_strs(&arr, items, src, 1);
    odp_reply_t rep;
    int st = s_metrics_call(&odp_def_webhook_add, &a, NULL, &rep);
    CHECK(st == 200, "webhook.add: %d %s", st, h_err_code(&rep));
    int64_t id = st == 200 ? h_int(&rep, "id") : -1;
    odp_reply_free(&rep);
    a.url = odp_v_str("ftp://127.0.0.1/x");
    st = s_metrics_call(&odp_def_webhook_add, &a, NULL, &rep);
    CHECK(st == 422, "an ftp url: %d, not 422", st);
    odp_reply_free(&rep);
    PGconn *pg = h_pg_super();
    int64_t start = h_pg_int(pg, "SELECT last FROM registrar.outbox_counter");
    /*  The receiver is down: events wait, metrics restarts meanwhile. */
    for (int i = 0; i < 15; i++) {
        char title[64];
        snprintf(title, sizeof title, "钩子计划%d", i);
        s_plan(S_D2, title, "2031-06-30");
        if (i == 7)
            s_metrics_restart();
    }
    zclock_sleep(1500);
    odp_webhook_list_t l = {0};
    st = s_metrics_call(&odp_def_webhook_list, &l, NULL, &rep);
    const msgpack_object *it = odp_map_get(&rep.obj, "items");
    const msgpack_object *mine = NULL;
    for (uint32_t i = 0; it && it->type == MSGPACK_OBJECT_ARRAY && i < it->via.array.size; i++)
        if (s_num(odp_map_get(&it->via.array.ptr[i], "id")) == (double)id)
            mine = &it->via.array.ptr[i];
    CHECK(st == 200 && s_num(s_path(mine, "failures", NULL)) > 0,
          "the webhook records its failed attempts");
    odp_reply_free(&rep);
    /*  The receiver comes up: everything arrives, in order. */
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL,
                                            NULL, s_hook, NULL, MHD_OPTION_END);
    CHECK(d != NULL, "the test receiver listens on %d", port);
    int64_t end = h_pg_int(pg, "SELECT last FROM registrar.outbox_counter");
    int64_t until = zclock_mono() + 20000;
    bool all = false;
    while (!all && zclock_mono() < until) {
        pthread_mutex_lock(&s_recv.lock);
        all = s_recv.n > 0 && s_recv.seqs[s_recv.n - 1] >= end;
        pthread_mutex_unlock(&s_recv.lock);
        zclock_sleep(100);
    }
    if (d)
        MHD_stop_daemon(d);
    pthread_mutex_lock(&s_recv.lock);
    CHECK(s_recv.bad == 0, "%d deliveries were not registrar CloudEvents", s_recv.bad);
    /*  At least once, in order: each number after the first is the one before or the next. */
    int64_t expect = start + 1;
    bool ordered = s_recv.n > 0 && s_recv.seqs[0] == expect;
    for (int i = 1; i < s_recv.n && ordered; i++)
        ordered = s_recv.seqs[i] == s_recv.seqs[i - 1] || s_recv.seqs[i] == s_recv.seqs[i - 1] + 1;
    CHECK(ordered && s_recv.n && s_recv.seqs[s_recv.n - 1] >= end,
          "received %d events, %lld..%lld, wanted %lld..%lld in order", s_recv.n,
          (long long)(s_recv.n ? s_recv.seqs[0] : 0),
          (long long)(s_recv.n ? s_recv.seqs[s_recv.n - 1] : 0), (long long)expect, (long long)end);
    pthread_mutex_unlock(&s_recv.lock);
    PQfinish(pg);
    odp_webhook_remove_t rm = {0};
    rm.id = odp_v_int(id);
    st = s_metrics_call(&odp_def_webhook_remove, &rm, NULL, &rep);
    CHECK(st == 200, "webhook.remove: %d", st);
    odp_reply_free(&rep);
    st = s_metrics_call(&odp_def_webhook_remove, &rm, NULL, &rep);
    CHECK(st == 404, "webhook.remove again: %d, not 404", st);
    odp_reply_free(&rep);
}

/*  odp-events --format cloudevents: CloudEvents 1.0 JSON, numbered per source. */
static void s_cloudevents(void)
{
    char path[512], out[512];
    snprintf(path, sizeof path, "%s/odp-events", h_bin());
    snprintf(out, sizeof out, "%s/events-cloudevents.out", h_var());
    const char *argv[] = {path, "--service", "registrar",   "--since",      "1", "--count",
                          "3",  "--format",  "cloudevents", "--quiet-gaps", NULL};
    unlink(out);
    int rc = h_wait_exit(h_spawn(argv, NULL, out, NULL), 20000);
    CHECK(rc == 0, "odp-events exits 0 (%d)", rc);
    FILE *f = fopen(out, "r");
    char line[65536];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        n++;
        json_t *ce = json_loads(line, 0, NULL);
        char id[32], seq[16];
        snprintf(id, sizeof id, "registrar-%d", n);
        snprintf(seq, sizeof seq, "%d", n);
        CHECK(ce &&
                  strcmp(json_string_value(json_object_get(ce, "specversion")) ?: "", "1.0") == 0 &&
                  strcmp(json_string_value(json_object_get(ce, "id")) ?: "", id) == 0 &&
                  strcmp(json_string_value(json_object_get(ce, "source")) ?: "",
                         "/odp/registrar") == 0 &&
                  strncmp(json_string_value(json_object_get(ce, "type")) ?: "", "odp.", 4) == 0 &&
                  json_is_string(json_object_get(ce, "time")) &&
                  strcmp(json_string_value(json_object_get(ce, "sequence")) ?: "", seq) == 0 &&
                  json_is_object(json_object_get(ce, "data")),
              "line %d is not the CloudEvent of registrar event %d: %.200s", n, n, line);
        json_decref(ce);
    }
    if (f)
        fclose(f);
    CHECK(n == 3, "%d lines, not 3", n);
}

/*  ---- monitoring --------------------------------------------------------------------------- */

/*  How many alert.raised / alert.cleared events metrics published for alert. */
static int64_t s_alert_events(PGconn *pg, const char *topic, const char *alert)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM metrics.outbox WHERE topic = '%s' AND position(convert_to('%s', "
             "'UTF8') IN body) > 0",
             topic, alert);
    return h_pg_int(pg, sql);
}

static void s_monitor(void)
{
    if (!s_h.ok)
        s_history();
    s_metrics_restart();
    zclock_sleep(2000); /* several polls and alert ticks */
    odp_monitor_status_t m = {0};
    odp_reply_t rep;
    int st = s_metrics_call(&odp_def_monitor_status, &m, NULL, &rep);
    CHECK(st == 200, "monitor.status: %d %s", st, h_err_code(&rep));
    char late[64], gone[128];
    snprintf(late, sizeof late, "overdue_plan:%lld", (long long)s_h.late_plan);
    snprintf(gone, sizeof gone, "withdrawn_release:%s/%lld", s_h.e1, (long long)s_h.v2.version);
    if (st == 200) {
        const msgpack_object *svc =
            s_find(odp_map_get(&rep.obj, "services"), "service", "registrar");
        const msgpack_object *s = svc ? odp_map_get(svc, "status") : NULL;
        CHECK(s && s->type == MSGPACK_OBJECT_STR && s->via.str.size == 2 &&
                  memcmp(s->via.str.ptr, "ok", 2) == 0,
              "the registrar is listed ok");
        CHECK(s_num(s_path(svc, "lag", NULL)) >= 0, "the registrar's lag is given");
        const msgpack_object *k = odp_map_get(&rep.obj, "conditions");
        CHECK(s_find(k, "alert", late) != NULL, "the late plan is a condition");
        CHECK(s_find(k, "alert", gone) != NULL, "the withdrawn release is a condition");
    }
    odp_reply_free(&rep);
    PGconn *pg = h_pg_super();
    zclock_sleep(1500);
    CHECK(s_alert_events(pg, "alert.raised", late) == 1, "%s raised %lld times, not once", late,
          (long long)s_alert_events(pg, "alert.raised", late));
    /*  The fresh start of the case before emptied metrics' releases for a moment: that
        condition may have cleared and been raised again, but never raised twice in a row. */
    int64_t raised = s_alert_events(pg, "alert.raised", gone);
    CHECK(raised >= 1 && raised - s_alert_events(pg, "alert.cleared", gone) == 1,
          "%s raised %lld times, cleared %lld", gone, (long long)raised,
          (long long)s_alert_events(pg, "alert.cleared", gone));
    zclock_sleep(1000);
    CHECK(s_alert_events(pg, "alert.raised", gone) == raised, "%s raised again while it lasts",
          gone);
    /*  The condition ends: cleared once. */
    odp_client_t *c = h_client("registrar", h_keyfile(S_D1));
    odp_plan_cancel_t pc = {0};
    pc.id = odp_v_int(s_h.late_plan);
    pc.reason = odp_v_str("不再开放");
    st = h_call(c, &odp_def_plan_cancel, &pc, &rep);
    CHECK(st == 200, "plan.cancel: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    int64_t until = zclock_mono() + 5000;
    while (s_alert_events(pg, "alert.cleared", late) == 0 && zclock_mono() < until)
        zclock_sleep(100);
    zclock_sleep(1000);
    CHECK(s_alert_events(pg, "alert.cleared", late) == 1, "%s cleared once", late);
    PQfinish(pg);
}

/*  ---- the query service's events ------------------------------------------------------------ */

/*  A user of the query service on its public endpoint (the query service restarted with
    one): a fresh key, signed up and signed in; the session token into token. */
static odp_client_t *s_user(const char *endpoint, const char *login, char token[65])
{
    char base[512], secret[600], key[41], err[256];
    snprintf(base, sizeof base, "%s/keys/m-%s", h_var(), login);
    snprintf(secret, sizeof secret, "%s_secret", base);
    if (odp_auth_keygen("user", login, login, base, key) < 0)
        return NULL;
    odp_client_t *c = odp_client_new("query", endpoint, secret, err, sizeof err);
    CHECK(c, "client %s: %s", login, err);
    if (!c)
        return NULL;
    odp_user_signup_t up = {0};
    up.login = odp_v_str(login);
    up.password = odp_v_str("correct horse battery");
    odp_reply_t rep;
    /*  Passwords are hashed to be slow: on a busy machine signing up and in take seconds,
        so they get a long timeout. */
    int st = odp_client_call(c, &odp_def_user_signup, &up, 30000, &rep) == 0 ? rep.status : 0;
    odp_reply_free(&rep);
    odp_user_signin_t in = {0};
    in.login = up.login;
    in.password = up.password;
    token[0] = '\0';
    st = odp_client_call(c, &odp_def_user_signin, &in, 30000, &rep) == 0 ? rep.status : 0;
    if (st == 200)
        tp_str(&rep, "token", token, 65);
    odp_reply_free(&rep);
    CHECK(st == 200 && strlen(token) == 43, "signin %s: %d", login, st);
    return c;
}

/*  The query service's figures for resource, summed from its own table. */
static int64_t s_used(PGconn *pg, const char *what, const char *resource)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(%s), 0) FROM query.usage_counts WHERE resource = '%s'", what,
             resource);
    return h_pg_int(pg, sql);
}

static void s_query_facts(void)
{
    char endpoint[64], bind[96];
    int port = atoi(h_env("ODP_PORT_BASE")) + 39;
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    snprintf(bind, sizeof bind, "ODP_QUERY_PUBLIC_BIND=%s", endpoint);
    const char *env[] = {bind, "ODP_QUERY_COUNT_FLUSH_MS=300", NULL};
    h_service_stop("query");
    CHECK(h_service_start("query", env) > 0, "query with a public endpoint");
    char open[33], cond[33];
    CHECK(h_department(S_D3, "指标测试 查询部门") == 0, "department %s", S_D3);
    if (!tp_entry(S_D3, "指标 查询 开放", "dataset", "air_quality_daily", true, open) ||
        !tp_entry(S_D3, "指标 查询 有条件", "dataset", "air_quality_daily", true, cond))
        goto restore;
    odp_client_t *reg = h_client("registrar", h_keyfile(S_D3));
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(cond);
    u.open_type = odp_v_str("conditional");
    u.access_conditions = odp_v_str("用于科研");
    odp_reply_t rep;
    int st = h_call(reg, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "conditional: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&reg);

    char ta[65], tb[65], tc[65];
    odp_client_t *ua = s_user(endpoint, "metrics-alice", ta);
    odp_client_t *ub = s_user(endpoint, "metrics-bob", tb);
    odp_client_t *uc = s_user(endpoint, "metrics-carol", tc);
    odp_client_t *dept = h_client("query", h_keyfile(S_D3));
    if (!ua || !ub || !uc || !dept)
        goto done;
    /*  Carol only reads: two views of the open entry, signed in. She is one user of it. */
    for (int i = 0; i < 2; i++) {
        odp_access_check_t m = {0};
        m.resource = odp_v_str(open);
        m.token = odp_v_str(tc);
        st = h_call(uc, &odp_def_access_check, &m, &rep);
        CHECK(st == 200, "carol's access.check %d: %d %s", i, st, h_err_code(&rep));
        odp_reply_free(&rep);
    }
    /*  Views: access.check of the open entry, by a user and anonymously. */
    for (int i = 0; i < 5; i++) {
        odp_access_check_t m = {0};
        m.resource = odp_v_str(open);
        if (i % 2)
            m.token = odp_v_str(ta);
        st = h_call(i % 2 ? ua : ub, &odp_def_access_check, &m, &rep);
        CHECK(st == 200, "access.check %d: %d %s", i, st, h_err_code(&rep));
        odp_reply_free(&rep);
    }
    /*  Feedback from alice, answered and resolved by the department. */
    odp_feedback_submit_t f = {0};
    f.token = odp_v_str(ta);
    f.kind = odp_v_str("comment");
    f.resource = odp_v_str(open);
    f.text = odp_v_str("第 3 行的坐标有误");
    st = h_call(ua, &odp_def_feedback_submit, &f, &rep);
    int64_t fid = st == 200 ? h_int(&rep, "id") : -1;
    CHECK(st == 200, "feedback: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    /*  And an error report (纠错), which quality.report counts for the department. */
    f.kind = odp_v_str("report");
    f.text = odp_v_str("第 5 行的日期不存在");
    st = h_call(ua, &odp_def_feedback_submit, &f, &rep);
    CHECK(st == 200, "error report: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    zclock_sleep(1100); /* response times in whole seconds: one that is not 0 */
    odp_feedback_reply_t r = {0};
    r.id = odp_v_int(fid);
    r.text = odp_v_str("已更正");
    r.resolve = odp_v_bool(true);
    st = h_call(dept, &odp_def_feedback_reply, &r, &rep);
    CHECK(st == 200, "feedback.reply: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    /*  An application from bob, granted by the department. */
    odp_application_submit_t a = {0};
    a.token = odp_v_str(tb);
    a.resource = odp_v_str(cond);
    a.purpose = odp_v_str("城市规划研究");
    a.scope = odp_v_str("全部字段");
    a.period_from = odp_v_str("2026-01-01");
    a.period_to = odp_v_str("2026-12-31");
    st = h_call(ub, &odp_def_application_submit, &a, &rep);
    int64_t aid = st == 200 ? h_int(&rep, "id") : -1;
    CHECK(st == 200, "application: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_application_decide_t d = {0};
    char until[32];
    time_t t = time(NULL) + 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
    d.id = odp_v_int(aid);
    d.grant = odp_v_bool(true);
    d.expires_at = odp_v_str(until);
    st = h_call(dept, &odp_def_application_decide, &d, &rep);
    CHECK(st == 200, "application.decide: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);

    /*  The query service flushes its counts; metrics follows its events. */
    PGconn *pg = h_pg_super();
    int64_t views = 0;
    for (int i = 0; i < 50 && views < 5; i++) {
        zclock_sleep(100);
        views = s_used(pg, "views", open);
    }
    CHECK(views >= 5, "the query service counted %lld views", (long long)views);
    if (!s_caught_up(30000)) {
        PQfinish(pg);
        goto done;
    }
    odp_stats_get_t m = {0};
    m.department = odp_v_str(S_D3);
    st = s_metrics_call(&odp_def_stats_get, &m, NULL, &rep);
    CHECK(st == 200, "stats.get: %d %s", st, h_err_code(&rep));
    if (st == 200) {
        const msgpack_object *acc = odp_map_get(&rep.obj, "access");
        int64_t q_views = s_used(pg, "views", open) + s_used(pg, "views", cond);
        int64_t q_queries = s_used(pg, "queries", open) + s_used(pg, "queries", cond);
        int64_t q_downloads = s_used(pg, "downloads", open) + s_used(pg, "downloads", cond);
        NEAR(s_num(s_path(acc, "views", NULL)), (double)q_views,
             "views as the query service has them");
        NEAR(s_num(s_path(acc, "queries", NULL)), (double)q_queries, "queries");
        NEAR(s_num(s_path(acc, "downloads", NULL)), (double)q_downloads, "downloads");
        /*  alice viewed and gave feedback, bob applied, carol only viewed (twice);
            the anonymous views are nobody's. */
        NEAR(s_num(s_path(acc, "distinct_users", NULL)), 3, "distinct users (alice, bob, carol)");
        double fb = s_num(s_path(&rep.obj, "efficiency", "feedback_response_s"));
        CHECK(fb >= 1 && fb < 60, "feedback response time %.3f s", fb);
        double ap = s_num(s_path(&rep.obj, "efficiency", "application_response_s"));
        CHECK(ap >= 0 && ap < 60, "application response time %.3f s", ap);
    }
    odp_reply_free(&rep);
    odp_quality_report_t qr = {0};
    qr.department = odp_v_str(S_D3);
    st = s_metrics_call(&odp_def_quality_report, &qr, NULL, &rep);
    CHECK(st == 200, "quality.report: %d %s", st, h_err_code(&rep));
    if (st == 200)
        NEAR(s_num(s_path(s_find(odp_map_get(&rep.obj, "items"), "department", S_D3),
                          "error_reports", NULL)),
             1, "the user's error report in the department's quality report");
    odp_reply_free(&rep);
    /*  The facts, exactly once: one usage row per usage.counted event of the query service. */
    CHECK(h_pg_int(pg, "SELECT count(*) FROM metrics.usage_counted") ==
              h_pg_int(pg, "SELECT count(*) FROM query.outbox WHERE topic = 'usage.counted'"),
          "one usage row per usage.counted event");
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM query.usage_users WHERE resource = '%s' AND user_id IN "
             "(SELECT 'user:' || id FROM query.users WHERE login = 'metrics-carol')",
             open);
    CHECK(h_pg_int(pg, sql) == 1, "carol's two views are one row of usage_users");
    CHECK(h_pg_int(pg, "SELECT count(*) FROM metrics.usage_users") ==
                  h_pg_int(
                      pg, "SELECT count(*) FROM query.outbox WHERE topic = 'usage.user_counted'") &&
              h_pg_int(pg, "SELECT count(*) FROM metrics.usage_users") ==
                  h_pg_int(pg, "SELECT count(*) FROM query.usage_users"),
          "one metrics usage_users row per usage.user_counted event and per query row");
    CHECK(h_pg_int(pg, "SELECT count(*) FROM metrics.feedback WHERE resolved AND answered_at IS "
                       "NOT NULL AND actor LIKE 'user:%'") >= 1,
          "the feedback answered and resolved, with its user");
    PQfinish(pg);
done:
    odp_client_destroy(&ua);
    odp_client_destroy(&ub);
    odp_client_destroy(&uc);
    odp_client_destroy(&dept);
restore:
    h_service_stop("query");
    CHECK(h_service_start("query", NULL) > 0, "query restarted as before");
}

const h_case_t t_metrics_cases[] = {
    {"metrics: a scripted history gives the statistics docs/assessment.md gives by hand",
     s_statistics},
    {"metrics: the six dimensions per version, entry and department are the hand-computed ones",
     s_assessment},
    {"metrics: the open data index, its explanation, history and quality report; new weights "
     "change it as defined",
     s_index},
    {"metrics: stopped and killed during activity, then started fresh after the history, it "
     "counts the same",
     s_following},
    {"metrics: /metrics passes promtool and its counters do not go back after restarts",
     s_prometheus},
    {"metrics: a webhook receiver that was down gets every event in order once it is back",
     s_webhook},
    {"metrics: odp-events --format cloudevents prints CloudEvents 1.0", s_cloudevents},
    {"metrics: monitor.status shows services and conditions; each alert is raised and cleared "
     "once",
     s_monitor},
    {"metrics: the query service's views, feedback and applications give stats.get's access "
     "figures and response times",
     s_query_facts},
    {NULL, NULL}};
