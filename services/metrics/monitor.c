/*  Monitoring (R10a): each service's health, polled, and alerts.

    Every ODP_METRICS_POLL_MS (2000) metrics asks each other service for `health`, one at a
    time spread over the interval (a short timeout: a service that does not answer is
    `down`) and keeps what it said in
    service_status, and its request counters in service_counters. A service's counters
    start at 0 with its process; when one answers with a shorter uptime or a smaller count
    than before, what the earlier process had counted moves into `base`, so the totals
    /metrics exports never go back.

    Every ODP_METRICS_ALERT_MS (5000) the conditions of 003_reports.sql, computed on a
    connection of the monitor's own while the loop goes on, are compared with the alerts
    table: a new condition is inserted and raises alert.raised, a condition
    gone is deleted and raises alert.cleared, both in one transaction with the event - so
    each condition raises one alert however many ticks it lasts, also across restarts. */
#include "metrics.h"

#include "common/auth.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Store one counter as the service reported it; restarted says its process is new. */
static int s_counter(odp_db_t *db, const char *service, const char *name, int64_t value,
                     bool restarted)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, value);
    const char *vals[4] = {service, name, v, restarted ? "true" : "false"};
    return odp_db_cmd(db,
                      "INSERT INTO service_counters (service, name, reported) VALUES ($1, $2, "
                      "$3::float8) ON CONFLICT (service, name) DO UPDATE SET base = "
                      "service_counters.base + CASE WHEN $4::boolean OR excluded.reported < "
                      "service_counters.reported THEN service_counters.reported ELSE 0 END, "
                      "reported = excluded.reported",
                      4, vals, NULL);
}

static void s_status(metrics_t *m, const char *service, const odp_reply_t *rep, bool ok)
{
    odp_db_t *db = odp_service_db(m->svc);
    odp_rep_health_t h;
    odp_error_t e;
    memset(&h, 0, sizeof h);
    if (ok && odp_decode_fields(&odp_def_rep_health, &rep->obj, &h, &e) < 0)
        ok = false;
    char seq[24], up[24];
    snprintf(seq, sizeof seq, "%" PRId64, ok ? h.seq.i : -1);
    snprintf(up, sizeof up, "%" PRId64, ok ? h.uptime_s.i : -1);
    const char *st = !ok ? "down" : h.db.b ? "ok" : "degraded";
    if (odp_db_begin(db) < 0)
        return;
    bool restarted = false;
    if (ok) {
        const char *v1[2] = {service, up};
        PGresult *r = odp_db_exec(db,
                                  "SELECT coalesce((SELECT uptime_s > $2::bigint FROM "
                                  "service_status WHERE service = $1), false)",
                                  2, v1, NULL);
        restarted = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                    strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        int rc = s_counter(db, service, "requests", h.requests.i, restarted);
        rc |= s_counter(db, service, "errors", h.errors.i, restarted);
        if (h.latency_buckets.present && h.latency_buckets.obj->type == MSGPACK_OBJECT_ARRAY) {
            const msgpack_object_array *a = &h.latency_buckets.obj->via.array;
            for (uint32_t i = 0; i < a->size && i < ODP_LATENCY_NBUCKETS; i++) {
                char name[16];
                snprintf(name, sizeof name, "latency_%u", i);
                int64_t n = a->ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER
                                ? (int64_t)a->ptr[i].via.u64
                                : 0;
                rc |= s_counter(db, service, name, n, restarted);
            }
            rc |= s_counter(db, service, "latency_sum_us", h.latency_sum_us.i, restarted);
        }
        if (rc) {
            odp_db_rollback(db);
            return;
        }
    }
    /*  A source's seq while it is down stays what it last said. */
    const char *vals[4] = {service, st, seq, up};
    if (odp_db_cmd(db,
                   "INSERT INTO service_status (service, status, seq, uptime_s, checked_at, "
                   "ok_at) VALUES ($1, $2, greatest($3::bigint, 0), greatest($4::bigint, 0), "
                   "now(), CASE WHEN $2 = 'ok' THEN now() END) ON CONFLICT (service) DO UPDATE "
                   "SET status = $2, seq = CASE WHEN $3::bigint >= 0 THEN $3::bigint ELSE "
                   "service_status.seq END, uptime_s = CASE WHEN $4::bigint >= 0 THEN "
                   "$4::bigint ELSE service_status.uptime_s END, checked_at = now(), ok_at = "
                   "CASE WHEN $2 = 'ok' THEN now() ELSE service_status.ok_at END",
                   4, vals, NULL) < 0 ||
        odp_db_commit(db) < 0)
        odp_db_rollback(db);
}

/*  One service per turn, in turn: a service that does not answer costs the loop one
    timeout (ODP_METRICS_HEALTH_TIMEOUT_MS, 200) per turn, not one per service. */
static void s_poll(odp_service_t *svc, void *arg)
{
    metrics_t *m = arg;
    if (!odp_db_up(odp_service_db(svc)))
        return;
    int i = m->poll_next;
    m->poll_next = (m->poll_next + 1) % ODP_NSERVICES;
    const char *name = odp_service_names[i];
    if (strcmp(name, "metrics") == 0)
        return;
    if (!m->clients[i]) {
        char cert[512], err[256];
        if (odp_auth_service_cert("metrics", cert, sizeof cert) < 0)
            return;
        m->clients[i] = odp_client_new(name, NULL, cert[0] ? cert : NULL, err, sizeof err);
        if (!m->clients[i])
            return;
    }
    odp_health_t req = {0};
    odp_reply_t rep;
    int rc = odp_client_call(m->clients[i], &odp_def_health, &req,
                             (int)odp_config_int("metrics", "HEALTH_TIMEOUT_MS", 200), &rep);
    s_status(m, name, &rep, rc == 0 && rep.status == 200);
    odp_reply_free(&rep);
}

/*  Raise what began, clear what ended: one transaction, events with the rows. The
    conditions come from conditions() run on a connection of their own without waiting for
    it (s_alerts_ask, s_alerts_poll): over a long history it takes seconds, which the loop
    must not wait for. They are of the moment the query ran, so a condition that ended
    meanwhile is cleared on the next turn. At most S_ALERTS alerts are raised and as many
    cleared per transaction (each raised or cleared one is an event to append), the rest
    on the next poll: a history that begins with a hundred thousand late entries holds the
    loop a slice at a time. 1 when there is more to do, 0 done, -1 failed. */
#define S_ALERTS "200"
static int s_alerts_apply(metrics_t *m, PGresult *k)
{
    odp_service_t *svc = m->svc;
    odp_db_t *db = odp_service_db(svc);
    if (!odp_db_up(db))
        return -1;
    const char *vals[5];
    for (int i = 0; i < 5; i++)
        vals[i] = PQgetvalue(k, 0, i);
    if (odp_db_begin(db) < 0)
        return -1;
    PGresult *r = odp_db_exec(
        db,
        "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "$5::text[]) AS k(alert, kind, subject, department, detail)), "
        "raised AS (INSERT INTO alerts (alert, kind, subject, department, detail) SELECT * "
        "FROM k WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.alert = k.alert) "
        "LIMIT " S_ALERTS " ON CONFLICT DO NOTHING "
        "RETURNING alert, kind, subject, department, detail), "
        "cleared AS (DELETE FROM alerts a WHERE a.alert IN (SELECT b.alert FROM alerts b "
        "WHERE NOT EXISTS (SELECT 1 FROM k WHERE k.alert = b.alert) LIMIT " S_ALERTS ") "
        "RETURNING alert, kind, subject, department, detail) "
        "SELECT true, * FROM raised UNION ALL SELECT false, * FROM cleared",
        5, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        odp_db_rollback(db);
        return -1;
    }
    int rc = 0, raised = 0, cleared = 0;
    odp_outbox_t *ob = odp_service_outbox(svc);
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *dept = PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4);
        if (strcmp(PQgetvalue(r, i, 0), "t") == 0) {
            odp_ev_alert_raised_t ev = {0};
            ev.alert = odp_v_str(PQgetvalue(r, i, 1));
            ev.kind = odp_v_str(PQgetvalue(r, i, 2));
            ev.subject = odp_v_str(PQgetvalue(r, i, 3));
            ev.department = odp_v_str(dept);
            ev.detail = odp_v_str(PQgetvalue(r, i, 5));
            rc = odp_outbox_append(ob, &odp_def_ev_alert_raised, &ev, "service:metrics") < 0;
            raised++;
        } else {
            odp_ev_alert_cleared_t ev = {0};
            ev.alert = odp_v_str(PQgetvalue(r, i, 1));
            ev.kind = odp_v_str(PQgetvalue(r, i, 2));
            ev.subject = odp_v_str(PQgetvalue(r, i, 3));
            ev.department = odp_v_str(dept);
            rc = odp_outbox_append(ob, &odp_def_ev_alert_cleared, &ev, "service:metrics") < 0;
            cleared++;
        }
        odp_info("event=metrics.alert state=%s alert=%s",
                 strcmp(PQgetvalue(r, i, 0), "t") == 0 ? "raised" : "cleared", PQgetvalue(r, i, 1));
    }
    PQclear(r);
    if (rc || odp_db_commit(db) < 0) {
        odp_db_rollback(db);
        return -1;
    }
    int limit = atoi(S_ALERTS);
    return raised == limit || cleared == limit ? 1 : 0;
}

/*  Every ALERT_MS: send conditions() on the monitor's own connection, unless one is still
    running. Its rows come back as five arrays, the parameters of s_alerts_apply (one
    aggregation pass, so their elements are in the same order). */
static void s_alerts_ask(odp_service_t *svc, void *arg)
{
    (void)svc;
    metrics_t *m = arg;
    PGconn *c = m->cond_busy || m->cond_pending ? NULL : odp_db_conn(m->cond_db);
    if (!c)
        return;
    char stuck[32], lag[24];
    snprintf(stuck, sizeof stuck, "%" PRId64 " seconds", m->stuck_after_s);
    snprintf(lag, sizeof lag, "%" PRId64, m->max_lag);
    const char *vals[2] = {stuck, lag};
    if (PQsendQueryParams(c,
                          "SELECT coalesce(array_agg(alert), '{}'), "
                          "coalesce(array_agg(kind), '{}'), "
                          "coalesce(array_agg(subject), '{}'), "
                          "coalesce(array_agg(department), '{}'), "
                          "coalesce(array_agg(detail), '{}') "
                          "FROM conditions($1::interval, $2::bigint)",
                          2, NULL, vals, NULL, NULL, 0) == 1)
        m->cond_busy = true;
    else
        odp_warn("event=metrics.conditions_failed error=\"%s\"", PQerrorMessage(c));
}

/*  Often: whether the conditions have come, without waiting for them. */
static void s_alerts_poll(odp_service_t *svc, void *arg)
{
    (void)svc;
    metrics_t *m = arg;
    if (m->cond_pending) {
        if (s_alerts_apply(m, m->cond_pending) != 1) {
            PQclear(m->cond_pending);
            m->cond_pending = NULL;
        }
        return;
    }
    if (!m->cond_busy)
        return;
    PGconn *c = odp_db_conn(m->cond_db);
    if (!c) {
        m->cond_busy = false; /* the connection went; the next turn asks again */
        return;
    }
    if (!PQconsumeInput(c) || PQisBusy(c)) {
        if (PQstatus(c) != CONNECTION_OK)
            m->cond_busy = false;
        return;
    }
    PGresult *k = NULL, *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (!k && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            k = r;
        else {
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                odp_warn("event=metrics.conditions_failed error=\"%s\"", PQresultErrorMessage(r));
            PQclear(r);
        }
    }
    m->cond_busy = false;
    if (k && s_alerts_apply(m, k) == 1)
        m->cond_pending = k; /* the rest on the next polls */
    else
        PQclear(k);
}

int metrics_monitor_start(metrics_t *m)
{
    int poll = (int)odp_config_int("metrics", "POLL_MS", 2000) / ODP_NSERVICES;
    int alert = (int)odp_config_int("metrics", "ALERT_MS", 5000);
    m->cond_db = odp_db_new("metrics");
    if (!m->cond_db || odp_service_timer(m->svc, poll > 0 ? poll : 1, s_poll, m) < 0 ||
        odp_service_timer(m->svc, alert, s_alerts_ask, m) < 0 ||
        odp_service_timer(m->svc, 20, s_alerts_poll, m) < 0)
        return -1;
    return 0;
}

void metrics_monitor_stop(metrics_t *m)
{
    PQclear(m->cond_pending);
    m->cond_pending = NULL;
    odp_db_destroy(&m->cond_db);
}
