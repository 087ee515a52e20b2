/*  odp-reviewer: acceptance checks, findings and quarantine (R5.6, R9a, R9d). */
#ifndef REVIEWER_H
#define REVIEWER_H

#include "common/consumer.h"
#include "common/service.h"

extern const odp_migration_t reviewer_migrations[];
extern const size_t reviewer_nmigrations;

/*  Follow the registrar's data.received and review each received dataset version once;
    at start, review the versions left waiting. NULL when it cannot start (logged). */
odp_consumer_t *review_consumer_start(odp_service_t *svc);

void review_routes(odp_service_t *svc);

#endif
