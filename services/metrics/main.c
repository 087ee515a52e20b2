/*  odp-metrics: statistics, six-dimension assessment and open data index (R6c, R10).
    It owns the metrics schema, answers the common commands (health, whoami,
    events.replay), and follows every other service's lifecycle events (events.c), the
    start of the platform's monitoring (R10a). */
#include "metrics.h"

int main(void)
{
    odp_service_t *svc = odp_service_new("metrics", metrics_migrations, metrics_nmigrations);
    if (!svc)
        return 1;
    odp_consumer_t *events = metrics_events_start(svc);
    int rc = events ? odp_service_run(svc) : -1;
    odp_consumer_destroy(&events);
    odp_service_destroy(&svc);
    return rc == 0 ? 0 : 1;
}
