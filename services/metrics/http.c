/*  Prometheus' /metrics (text exposition format 0.0.4) over HTTP, served by libmicrohttpd
    inside the service loop: the daemon has no thread of its own, a 20 ms timer runs
    MHD_run, so a scrape reads the database on the loop's own connection like any request.

    Names follow Prometheus' conventions: odp_ prefix, base units (seconds, bytes),
    counters end in _total, request durations are a histogram, labels are services,
    sources and topics only (never a dataset). Counters come from tables that only grow
    (event_counts, the facts) or from service_counters, which keeps what earlier processes
    of a service counted (monitor.c): none goes back across a restart of metrics or of the
    service counted. */
#include "metrics.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/*  One metric family from sql: columns are label values (named by labels, NULL-ended),
    then the value. */
static int s_family(FILE *f, odp_db_t *db, const char *name, const char *type, const char *help,
                    const char *const *labels, const char *sql)
{
    PGresult *r = odp_db_exec(db, sql, 0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    int nl = 0;
    while (labels && labels[nl])
        nl++;
    for (int i = 0; i < PQntuples(r); i++) {
        fputs(name, f);
        for (int l = 0; l < nl; l++) {
            fprintf(f, "%s%s=\"", l ? "," : "{", labels[l]);
            s_label(f, PQgetvalue(r, i, l));
            fputc('"', f);
        }
        fprintf(f, "%s %s\n", nl ? "}" : "", PQgetvalue(r, i, nl));
    }
    PQclear(r);
    return 0;
}

static int s_histogram(FILE *f, odp_db_t *db)
{
    PGresult *r = odp_db_exec(db,
                              "SELECT service, name, base + reported FROM service_counters "
                              "WHERE name LIKE 'latency%' ORDER BY service, name",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    static const int bounds[] = ODP_LATENCY_BOUNDS_MS;
    const char *name = "odp_request_duration_seconds";
    fprintf(f, "# HELP %s Time a service took to answer a request.\n# TYPE %s histogram\n", name,
            name);
    for (int i = 0; i < PQntuples(r);) {
        const char *svc = PQgetvalue(r, i, 0);
        double b[ODP_LATENCY_NBUCKETS] = {0}, sum_us = 0;
        for (; i < PQntuples(r) && strcmp(PQgetvalue(r, i, 0), svc) == 0; i++) {
            const char *n = PQgetvalue(r, i, 1);
            double v = strtod(PQgetvalue(r, i, 2), NULL);
            if (strcmp(n, "latency_sum_us") == 0)
                sum_us = v;
            else {
                int k = atoi(n + strlen("latency_"));
                if (k >= 0 && k < ODP_LATENCY_NBUCKETS)
                    b[k] = v;
            }
        }
        double cum = 0;
        for (int k = 0; k < ODP_LATENCY_NBUCKETS; k++) {
            cum += b[k];
            if (k < ODP_LATENCY_NBUCKETS - 1)
                fprintf(f, "%s_bucket{service=\"%s\",le=\"%g\"} %.0f\n", name, svc,
                        bounds[k] / 1000.0, cum);
            else
                fprintf(f, "%s_bucket{service=\"%s\",le=\"+Inf\"} %.0f\n", name, svc, cum);
        }
        fprintf(f, "%s_sum{service=\"%s\"} %.6f\n%s_count{service=\"%s\"} %.0f\n", name, svc,
                sum_us / 1e6, name, svc, cum);
    }
    PQclear(r);
    return 0;
}

static const char *const s_service[] = {"service", NULL};
static const char *const s_source[] = {"source", NULL};

/*  Counters of facts: monotone because facts are only added. */
static const struct {
    const char *name, *help, *sql;
} s_totals[] = {
    {"odp_plans_total", "Resources planned.", "SELECT count(*) FROM plans"},
    {"odp_entries_catalogued_total", "Catalogue entries made.", "SELECT count(*) FROM entries"},
    {"odp_entries_registered_total", "Catalogue entries registered.",
     "SELECT count(*) FROM entries WHERE registered_at IS NOT NULL"},
    {"odp_versions_received_total", "Versions pushed and received.",
     "SELECT count(*) FROM versions"},
    {"odp_received_rows_total", "Rows staged in received versions.",
     "SELECT coalesce(sum(rows_staged), 0) FROM versions"},
    {"odp_received_bytes_total", "Bytes of received versions.",
     "SELECT coalesce(sum(size), 0) FROM versions"},
    {"odp_push_failures_total", "Pushes that ended without a version.",
     "SELECT count(*) FROM push_failures"},
    {"odp_reviews_approved_total", "Versions approved.",
     "SELECT count(*) FROM reviews WHERE approved_at IS NOT NULL"},
    {"odp_quarantined_rows_total", "Rows isolated by the reviewer.",
     "SELECT coalesce(sum(rows), 0) FROM quarantine_isolated"},
    {"odp_quarantine_handled_total", "Isolated rows handled.",
     "SELECT count(*) FROM quarantine_handled"},
    {"odp_releases_published_total", "Releases published.", "SELECT count(*) FROM releases"},
};

static char *s_render(metrics_t *m, size_t *len)
{
    odp_db_t *db = odp_service_db(m->svc);
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    int rc = 0;
    rc |= s_family(f, db, "odp_requests_total", "counter",
                   "Requests a service answered, every process of it together.", s_service,
                   "SELECT service, base + reported FROM service_counters WHERE name = "
                   "'requests' ORDER BY service");
    rc |= s_family(f, db, "odp_request_errors_total", "counter",
                   "Requests a service answered with an error.", s_service,
                   "SELECT service, base + reported FROM service_counters WHERE name = "
                   "'errors' ORDER BY service");
    rc |= s_histogram(f, db);
    rc |= s_family(f, db, "odp_service_up", "gauge",
                   "1 when the service answered its last health check with its database up.",
                   s_service,
                   "SELECT service, (status = 'ok')::int FROM service_status ORDER BY service");
    rc |= s_family(f, db, "odp_service_uptime_seconds", "gauge",
                   "How long the service's process has run.", s_service,
                   "SELECT service, uptime_s FROM service_status ORDER BY service");
    const char *const st[] = {"source", "topic", NULL};
    rc |= s_family(f, db, "odp_events_total", "counter", "Events handled, by source and topic.", st,
                   "SELECT source, topic, count FROM event_counts ORDER BY source, topic");
    rc |= s_family(f, db, "odp_event_source_seq", "gauge",
                   "The newest event number a source has announced.", s_source,
                   "SELECT service, seq FROM service_status ORDER BY service");
    rc |= s_family(f, db, "odp_event_handled_seq", "gauge",
                   "The newest event number metrics has handled, per source.", s_source,
                   "SELECT source, last FROM consumer_cursor ORDER BY source");
    rc |= s_family(f, db, "odp_event_lag", "gauge",
                   "Events a source has announced that metrics has not handled yet.", s_source,
                   "SELECT c.source, greatest(coalesce(s.seq, c.last) - c.last, 0) FROM "
                   "consumer_cursor c LEFT JOIN service_status s ON s.service = c.source ORDER "
                   "BY c.source");
    rc |= s_family(f, db, "odp_events_refused_total", "counter",
                   "Events metrics could not handle (dead letters).", s_source,
                   "SELECT c.source, (SELECT count(*) FROM consumer_dead_letter d WHERE "
                   "d.source = c.source) FROM consumer_cursor c ORDER BY c.source");
    for (size_t i = 0; i < sizeof s_totals / sizeof s_totals[0]; i++)
        rc |= s_family(f, db, s_totals[i].name, "counter", s_totals[i].help, NULL, s_totals[i].sql);
    rc |= s_family(f, db, "odp_releases_withdrawn", "gauge", "Releases withdrawn now.", NULL,
                   "SELECT count(*) FROM releases WHERE withdrawn_at IS NOT NULL");
    rc |= s_family(f, db, "odp_alerts_active", "gauge", "Conditions raised and not cleared.", NULL,
                   "SELECT count(*) FROM alerts");
    fclose(f);
    if (rc) {
        free(text);
        return NULL;
    }
    return text;
}

static enum MHD_Result s_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    metrics_t *m = cls;
    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    char *body = NULL;
    size_t len = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "only GET\n";
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    } else if (strcmp(url, "/metrics") != 0) {
        static const char msg[] = "not found: the metrics are at /metrics\n";
        status = MHD_HTTP_NOT_FOUND;
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    } else if (!(body = s_render(m, &len))) {
        static const char msg[] = "the database is unreachable; retry later\n";
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    }
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    odp_info("event=metrics.scrape url=%s status=%u bytes=%zu", url, status, len);
    return ret;
}

static void s_run(odp_service_t *svc, void *arg)
{
    (void)svc;
    metrics_t *m = arg;
    MHD_run(m->http);
}

int metrics_http_start(metrics_t *m)
{
    char dflt[64];
    snprintf(dflt, sizeof dflt, "127.0.0.1:%lld",
             (long long)(odp_config_int(NULL, "PORT_BASE", 7500) + 45));
    const char *addr = odp_config("metrics", "HTTP", dflt);
    char host[64];
    int port = 0;
    const char *colon = strrchr(addr, ':');
    if (!colon || colon - addr >= (long)sizeof host || (port = atoi(colon + 1)) <= 0 ||
        port > 65535) {
        odp_error("event=metrics.http_config value=\"%s\" msg=\"ODP_METRICS_HTTP is host:port\"",
                  addr);
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        odp_error("event=metrics.http_config value=\"%s\" msg=\"the host is an IPv4 address\"",
                  addr);
        return -1;
    }
    m->http = MHD_start_daemon(MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, s_answer, m,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!m->http) {
        odp_error("event=metrics.http_failed address=%s", addr);
        return -1;
    }
    odp_info("event=metrics.http address=%s path=/metrics", addr);
    return odp_service_timer(m->svc, 20, s_run, m);
}

void metrics_http_stop(metrics_t *m)
{
    if (m->http)
        MHD_stop_daemon(m->http);
    m->http = NULL;
}
