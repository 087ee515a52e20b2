/*  The metrics service's commands (PROTOCOL.md §14): statistics, assessment, index,
    weights, the quality report, monitoring and webhooks. The numbers are computed by the
    SQL functions of 003_reports.sql, which docs/assessment.md defines; each command runs
    one of them, which answers JSON, and sends that as the msgpack reply. */
#include "metrics.h"

#include "common/json.h"
#include "common/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*  Run sql, whose one row and column is JSON, and reply with it. */
static int s_reply_sql(odp_req_t *req, const char *what, const char *sql, int n,
                       const char *const *vals)
{
    PGresult *r = odp_db_exec(req->db, sql, n, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, what);
    json_error_t je;
    json_t *v = json_loads(PQgetvalue(r, 0, 0), JSON_DECODE_ANY, &je);
    PQclear(r);
    if (!v)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "%s: unreadable result", what);
    odp_json_pack(req->pk, v);
    json_decref(v);
    return 0;
}

/*  ---- periods ---------------------------------------------------------------------------- */

/*  period (YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD; absent: this month, UTC) as [from, to) in
    ISO 8601 UTC, and its canonical name. 0, or -1 with the reply's error set. */
static int s_period(odp_req_t *req, const odp_val_t *p, char from[32], char to[32], char name[16])
{
    int y = 0, m = 1, d = 1, q = 0, months = 12, days = 0;
    char text[16] = "";
    if (p->present)
        odp_v_cstr(p, text, sizeof text);
    else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%Y-%m", &tm);
    }
    char tail;
    if (strlen(text) == 4 && sscanf(text, "%4d%c", &y, &tail) == 1) {
        months = 12;
    } else if (strlen(text) == 7 && sscanf(text, "%4d-Q%1d%c", &y, &q, &tail) == 2 && q >= 1 &&
               q <= 4) {
        m = 3 * (q - 1) + 1;
        months = 3;
    } else if (strlen(text) == 7 && sscanf(text, "%4d-%2d%c", &y, &m, &tail) == 2 && m >= 1 &&
               m <= 12) {
        months = 1;
    } else if (strlen(text) == 10 && sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 &&
               m >= 1 && m <= 12 && d >= 1 && d <= 31) {
        months = 0;
        days = 1;
    } else {
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "period",
                            "period is YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD, not %s", text);
    }
    if (y < 1970 || y > 9998)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "period", "year %d is out of range", y);
    struct tm a = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    struct tm b = {.tm_year = y - 1900, .tm_mon = m - 1 + months, .tm_mday = d + days};
    time_t ta = timegm(&a), tb = timegm(&b);
    struct tm chk;
    gmtime_r(&ta, &chk);
    if (chk.tm_mday != d)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "period", "%s is not a date", text);
    gmtime_r(&tb, &b);
    strftime(from, 32, "%Y-%m-%dT00:00:00Z", &chk);
    strftime(to, 32, "%Y-%m-%dT00:00:00Z", &b);
    snprintf(name, 16, "%s", text);
    return 0;
}

static const char *s_cstr(const odp_val_t *v, char *buf, size_t size)
{
    return v->present ? odp_v_cstr(v, buf, size) : NULL;
}

/*  ---- statistics, assessment, index ------------------------------------------------------ */

static int s_stats(odp_req_t *req)
{
    const odp_stats_get_t *m = req->msg;
    char from[32], to[32], name[16], dept[10];
    if (s_period(req, &m->period, from, to, name) < 0)
        return -1;
    const char *vals[3] = {from, to, s_cstr(&m->department, dept, sizeof dept)};
    return s_reply_sql(req, "the statistics",
                       "SELECT stats_json($1::timestamptz, $2::timestamptz, $3)", 3, vals);
}

static int s_assess(odp_req_t *req)
{
    const odp_assess_get_t *m = req->msg;
    char from[32], to[32], name[16], dept[10], res[33];
    if (s_period(req, &m->period, from, to, name) < 0)
        return -1;
    const char *vals[4] = {from, to, s_cstr(&m->department, dept, sizeof dept),
                           s_cstr(&m->resource, res, sizeof res)};
    return s_reply_sql(req, "the assessment",
                       "SELECT assess_json($1::timestamptz, $2::timestamptz, $3, $4)", 4, vals);
}

static int s_index_txn(odp_req_t *req, void *arg)
{
    const char *const *vals = arg;
    return s_reply_sql(req, "the index",
                       "SELECT index_json($1, $2::timestamptz, $3::timestamptz, $4)", 4, vals);
}

static int s_index(odp_req_t *req)
{
    const odp_index_get_t *m = req->msg;
    char from[32], to[32], name[16], dept[10];
    if (s_period(req, &m->period, from, to, name) < 0)
        return -1;
    const char *vals[4] = {name, from, to, s_cstr(&m->department, dept, sizeof dept)};
    return odp_req_txn(req, s_index_txn, vals);
}

static int s_department_known(odp_req_t *req, const char *dept)
{
    const char *vals[1] = {dept};
    PGresult *r =
        odp_db_exec(req->db, "SELECT 1 FROM registrar.departments WHERE code = $1", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the department");
    int n = PQntuples(r);
    PQclear(r);
    return n ? 0 : odp_req_fail(req, ODP_E_NOT_FOUND, "department", "no department %s", dept);
}

static int s_explain(odp_req_t *req)
{
    const odp_index_explain_t *m = req->msg;
    char from[32], to[32], name[16], dept[10];
    if (s_period(req, &m->period, from, to, name) < 0 ||
        s_department_known(req, odp_v_cstr(&m->department, dept, sizeof dept)) < 0)
        return -1;
    const char *vals[3] = {from, to, dept};
    return s_reply_sql(req, "the index explanation",
                       "SELECT explain_json($1::timestamptz, $2::timestamptz, $3)", 3, vals);
}

static int s_history(odp_req_t *req)
{
    const odp_index_history_t *m = req->msg;
    char dept[10];
    const char *vals[1] = {odp_v_cstr(&m->department, dept, sizeof dept)};
    return s_reply_sql(req, "the index history",
                       "SELECT json_build_object('items', coalesce(json_agg(json_build_object("
                       "'period', period, 'weights', weights, 'score', score, 'components', "
                       "components::json, 'computed_at', computed_at) ORDER BY computed_at), "
                       "'[]')) FROM index_history WHERE department = $1",
                       1, vals);
}

static int s_report(odp_req_t *req)
{
    const odp_quality_report_t *m = req->msg;
    char from[32], to[32], name[16], dept[10];
    if (s_period(req, &m->period, from, to, name) < 0)
        return -1;
    const char *d = s_cstr(&m->department, dept, sizeof dept);
    /*  A provider sees its own department's report only. */
    if (strcmp(req->actor->kind, "provider") == 0) {
        if (d && strcmp(d, req->actor->id) != 0)
            return odp_req_fail(req, ODP_E_FORBIDDEN, "department",
                                "a department sees its own quality report only");
        d = req->actor->id;
    }
    const char *vals[3] = {from, to, d};
    return s_reply_sql(req, "the quality report",
                       "SELECT json_build_object('items', feedback_json($1::timestamptz, "
                       "$2::timestamptz, $3))",
                       3, vals);
}

/*  ---- weights ------------------------------------------------------------------------------ */

static int s_weights_get(odp_req_t *req)
{
    const odp_weights_get_t *m = req->msg;
    char v[24];
    const char *vals[1] = {
        m->version.present ? (snprintf(v, sizeof v, "%lld", (long long)m->version.i), v) : NULL};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT 1 FROM weights WHERE $1::bigint IS NULL OR version = "
                              "$1::bigint",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the weights");
    int n = PQntuples(r);
    PQclear(r);
    if (!n)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "version", "no weights version %s", v);
    return s_reply_sql(req, "the weights",
                       "SELECT json_build_object('current', (SELECT row_to_json(w) FROM weights "
                       "w WHERE w.version = coalesce($1::bigint, (SELECT max(version) FROM "
                       "weights))), 'versions', (SELECT json_agg(w ORDER BY w.version) FROM "
                       "weights w))",
                       1, vals);
}

static int s_weights_txn(odp_req_t *req, void *arg)
{
    (void)arg;
    const odp_weights_set_t *m = req->msg;
    char num[6][32], comment[1001];
    const odp_val_t *w[6] = {&m->volume, &m->quality,    &m->apps,
                             &m->access, &m->efficiency, &m->effect};
    const char *vals[8];
    for (int i = 0; i < 6; i++) {
        snprintf(num[i], sizeof num[i], "%.17g", w[i]->d);
        vals[i] = num[i];
    }
    vals[6] = s_cstr(&m->comment, comment, sizeof comment);
    vals[7] = req->actor_str;
    PGresult *r = odp_db_exec(
        req->db,
        "INSERT INTO weights (version, volume, quality, apps, access, efficiency, effect, "
        "apps_target, access_target, comment, set_by) SELECT max(version) + 1, $1, $2, $3, $4, "
        "$5, $6, (SELECT apps_target FROM weights ORDER BY version DESC LIMIT 1), (SELECT "
        "access_target FROM weights ORDER BY version DESC LIMIT 1), $7, $8 FROM weights "
        "RETURNING version",
        8, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the weights");
    odp_ev_weights_updated_t ev = {0};
    ev.version = odp_v_int(strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    if (odp_outbox_append(req->outbox, &odp_def_ev_weights_updated, &ev, req->actor_str) < 0)
        return odp_req_db_fail(req, NULL, "the weights.updated event");
    return s_reply_sql(req, "the weights",
                       "SELECT row_to_json(w) FROM weights w ORDER BY version DESC LIMIT 1", 0,
                       NULL);
}

static int s_weights_set(odp_req_t *req)
{
    const odp_weights_set_t *m = req->msg;
    double sum =
        m->volume.d + m->quality.d + m->apps.d + m->access.d + m->efficiency.d + m->effect.d;
    if (!(sum > 0))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, NULL, "at least one weight must be above 0");
    return odp_req_txn(req, s_weights_txn, NULL);
}

/*  ---- webhooks ----------------------------------------------------------------------------- */

static int s_webhook_add_txn(odp_req_t *req, void *arg)
{
    (void)arg;
    const odp_webhook_add_t *m = req->msg;
    char url[2001];
    odp_v_cstr(&m->url, url, sizeof url);
    /*  sources as a text[] literal built from validated service names. */
    char sources[128] = "";
    if (m->sources.present) {
        size_t off = 0;
        off += (size_t)snprintf(sources + off, sizeof sources - off, "{");
        for (uint32_t i = 0; i < m->sources.obj->via.array.size; i++) {
            const msgpack_object *s = &m->sources.obj->via.array.ptr[i];
            char name[17];
            snprintf(name, sizeof name, "%.*s", (int)s->via.str.size, s->via.str.ptr);
            if (odp_service_index(name) < 0)
                return odp_req_fail(req, ODP_E_INVALID_VALUE, "sources", "no service %s", name);
            off +=
                (size_t)snprintf(sources + off, sizeof sources - off, "%s%s", i ? "," : "", name);
        }
        snprintf(sources + off, sizeof sources - off, "}");
    }
    const char *vals[3] = {url, sources[0] ? sources : NULL, req->actor_str};
    /*  A new webhook starts at what metrics has handled now: it forwards what comes next. */
    PGresult *r =
        odp_db_exec(req->db,
                    "WITH h AS (INSERT INTO webhooks (url, sources, added_by) VALUES "
                    "($1, $2::text[], $3) RETURNING *), c AS (INSERT INTO "
                    "webhook_cursor (webhook, source, last) SELECT h.id, c.source, "
                    "c.last FROM h, consumer_cursor c WHERE h.sources IS NULL OR c.source = "
                    "ANY (h.sources)) SELECT row_to_json(h) FROM h",
                    3, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the webhook");
    json_t *v = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!v)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "the webhook: unreadable result");
    odp_json_pack(req->pk, v);
    json_decref(v);
    return 0;
}

static int s_webhook_add(odp_req_t *req)
{
    const odp_webhook_add_t *m = req->msg;
    if (!(m->url.len > 7 && (strncmp(m->url.str, "http://", 7) == 0 ||
                             (m->url.len > 8 && strncmp(m->url.str, "https://", 8) == 0))))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "url", "url must be http:// or https://");
    return odp_req_txn(req, s_webhook_add_txn, NULL);
}

static int s_webhook_list(odp_req_t *req)
{
    return s_reply_sql(req, "the webhooks",
                       "SELECT json_build_object('items', coalesce(json_agg(json_build_object("
                       "'id', h.id, 'url', h.url, 'sources', h.sources, 'added_by', h.added_by, "
                       "'delivered', h.delivered, 'failures', h.failures, 'last_error', "
                       "h.last_error, 'cursor', (SELECT json_object_agg(c.source, c.last) FROM "
                       "webhook_cursor c WHERE c.webhook = h.id)) ORDER BY h.id), '[]')) FROM "
                       "webhooks h",
                       0, NULL);
}

static int s_webhook_remove(odp_req_t *req)
{
    const odp_webhook_remove_t *m = req->msg;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)m->id.i);
    const char *vals[1] = {id};
    PGresult *r = odp_db_exec(req->db, "DELETE FROM webhooks WHERE id = $1::bigint", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_req_db_fail(req, r, "the webhook");
    bool gone = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!gone)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "id", "no webhook %s", id);
    return odp_req_ok_empty(req);
}

/*  ---- monitoring ---------------------------------------------------------------------------- */

static int s_monitor(odp_req_t *req)
{
    const odp_monitor_status_t *m = req->msg;
    metrics_t *mx = req->ctx;
    char stuck[32], lag[24];
    snprintf(stuck, sizeof stuck, "%lld seconds",
             (long long)(m->stuck_after_s.present ? m->stuck_after_s.i : mx->stuck_after_s));
    snprintf(lag, sizeof lag, "%lld", (long long)mx->max_lag);
    const char *vals[2] = {stuck, lag};
    return s_reply_sql(
        req, "the monitor",
        "SELECT json_build_object('services', (SELECT coalesce(json_agg(json_build_object("
        "'service', s.service, 'status', s.status, 'seq', s.seq, 'uptime_s', s.uptime_s, "
        "'checked_at', s.checked_at, 'heartbeat_at', s.ok_at, 'handled', c.last, 'lag', "
        "greatest(s.seq - coalesce(c.last, 0), 0)) ORDER BY s.service), '[]') FROM "
        "service_status s LEFT JOIN consumer_cursor c ON c.source = s.service), 'conditions', "
        "(SELECT coalesce(json_agg(json_build_object('alert', k.alert, 'kind', k.kind, "
        "'subject', k.subject, 'department', k.department, 'detail', k.detail) ORDER BY "
        "k.alert), '[]') FROM conditions($1::interval, $2::bigint) k), 'alerts', (SELECT "
        "coalesce(json_agg(a ORDER BY a.alert), '[]') FROM alerts a))",
        2, vals);
}

int metrics_reports_routes(odp_service_t *svc)
{
    const int ops = ODP_ALLOW_OPERATIONS | ODP_ALLOW_AUTHORITY;
    const int readers = ops | ODP_ALLOW_SERVICE;
    int rc = 0;
    rc |= odp_service_route(svc, &odp_def_monitor_status, readers, s_monitor);
    rc |= odp_service_route(svc, &odp_def_stats_get, readers, s_stats);
    rc |= odp_service_route(svc, &odp_def_assess_get, readers, s_assess);
    rc |= odp_service_route(svc, &odp_def_index_get, readers, s_index);
    rc |= odp_service_route(svc, &odp_def_index_explain, readers, s_explain);
    rc |= odp_service_route(svc, &odp_def_index_history, readers, s_history);
    rc |= odp_service_route(svc, &odp_def_weights_get, readers, s_weights_get);
    rc |= odp_service_route(svc, &odp_def_weights_set, ODP_ALLOW_OPERATIONS, s_weights_set);
    rc |= odp_service_route(svc, &odp_def_quality_report, readers | ODP_ALLOW_PROVIDER, s_report);
    rc |= odp_service_route(svc, &odp_def_webhook_add, ODP_ALLOW_OPERATIONS, s_webhook_add);
    rc |= odp_service_route(svc, &odp_def_webhook_list, ODP_ALLOW_OPERATIONS, s_webhook_list);
    rc |= odp_service_route(svc, &odp_def_webhook_remove, ODP_ALLOW_OPERATIONS, s_webhook_remove);
    return rc;
}
