/*  odp-publisher: releases, withdrawals, public views and the catalogue others harvest
    (R4.3a, R5.7b, R9a, R9d, R8.2b, R8.3c-d). */
#ifndef PUBLISHER_H
#define PUBLISHER_H

#include "common/client.h"
#include "common/consumer.h"
#include "common/service.h"

extern const odp_migration_t publisher_migrations[];
extern const size_t publisher_nmigrations;

/*  release.c: release.* commands, and the release loop for automatic releases. */
void release_routes(odp_service_t *svc);
/*  Follow the reviewer's review.approved: under an automatic policy the version joins
    pending, which a timer releases one by one. NULL when it cannot start (logged). */
odp_consumer_t *release_consumer_start(odp_service_t *svc);
void release_stop(void);

/*  catalogue.c: catalogue.export (DCAT-AP 3 as JSON-LD or Turtle, schema.org Dataset). */
void catalogue_routes(odp_service_t *svc);

/*  Shared helpers (release.c). */
#define PUB_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
odp_val_t pub_col(PGresult *r, int row, int col);
odp_val_t pub_int(PGresult *r, int row, int col);

#endif
