/*  registrar: the provider side of the platform and the department registry. */
#ifndef ODP_REGISTRAR_H
#define ODP_REGISTRAR_H

#include "common/service.h"

extern const odp_migration_t registrar_migrations[];
extern const size_t registrar_nmigrations;

/*  registry.c: authorisation, departments, staff, credentials (R3.1-R3.3, R4.1). */
void registry_routes(odp_service_t *svc);
/*  Write every active credential's public certificate into ODP_CERT_DIR. */
int registry_sync_certs(odp_db_t *db);

#endif
