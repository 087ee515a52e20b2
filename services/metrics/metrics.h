/*  odp-metrics: statistics, assessment and the open data index (R6c, R10). */
#ifndef METRICS_H
#define METRICS_H

#include "common/consumer.h"
#include "common/service.h"

extern const odp_migration_t metrics_migrations[];
extern const size_t metrics_nmigrations;

/*  Follow every other service's events and count them per (source, topic) in
    event_counts, each exactly once. NULL when it cannot start (logged). */
odp_consumer_t *metrics_events_start(odp_service_t *svc);

#endif
