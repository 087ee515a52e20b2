/*  odp-metrics: statistics, six-dimension assessment and open data index (R6c, R10).
    This binary is the service skeleton: it owns the metrics schema, answers the common
    commands (health, whoami, events.replay) and numbers its events; its features land
    with their own issue. */
#include "common/service.h"

extern const odp_migration_t metrics_migrations[];
extern const size_t metrics_nmigrations;

int main(void)
{
    return odp_service_main("metrics", metrics_migrations, metrics_nmigrations, NULL);
}
