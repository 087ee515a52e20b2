/*  odp-publisher: releases, withdrawals, public views and the catalogue (R4.3a, R5.7b,
    R9a, R9d, R8.2b, R8.3c-d). It owns the publisher schema, whose public part the query
    and metrics services read (docs/design.md); it follows the reviewer's approvals for
    automatic releases (release.c) and exports the catalogue (catalogue.c). */
#include "publisher.h"

int main(void)
{
    odp_service_t *svc = odp_service_new("publisher", publisher_migrations, publisher_nmigrations);
    if (!svc)
        return 1;
    release_routes(svc);
    catalogue_routes(svc);
    odp_consumer_t *consumer = release_consumer_start(svc);
    int rc = consumer ? odp_service_run(svc) : -1;
    odp_consumer_destroy(&consumer);
    release_stop();
    odp_service_destroy(&svc);
    return rc == 0 ? 0 : 1;
}
