/*  odp-metrics: statistics, six-dimension assessment and open data index (R6c, R9e, R10).
    It owns the metrics schema, follows every other service's lifecycle events into its own
    tables (events.c), answers the statistics and index commands (reports.c), watches the
    services and raises alerts (monitor.c), serves Prometheus' /metrics (http.c) and
    forwards events to webhooks as CloudEvents (webhook.c). */
#include "metrics.h"

#include <string.h>

int main(void)
{
    odp_service_t *svc = odp_service_new("metrics", metrics_migrations, metrics_nmigrations);
    if (!svc)
        return 1;
    metrics_t m;
    memset(&m, 0, sizeof m);
    m.svc = svc;
    m.stuck_after_s = odp_config_int("metrics", "STUCK_S", 3600);
    m.max_lag = odp_config_int("metrics", "MAX_LAG", 1000);
    odp_service_set_ctx(svc, &m);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m.events = metrics_events_start(svc);
    int rc = -1;
    if (m.events && metrics_reports_routes(svc) == 0 && metrics_monitor_start(&m) == 0 &&
        metrics_http_start(&m) == 0 && metrics_webhooks_start(&m) == 0)
        rc = odp_service_run(svc);
    metrics_webhooks_stop(&m);
    metrics_http_stop(&m);
    metrics_monitor_stop(&m);
    for (int i = 0; i < ODP_NSERVICES; i++)
        odp_client_destroy(&m.clients[i]);
    odp_consumer_destroy(&m.events);
    odp_service_destroy(&svc);
    curl_global_cleanup();
    return rc == 0 ? 0 : 1;
}
