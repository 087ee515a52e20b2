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

/*  catalogue.c: plans, catalogue entries, data dictionaries, registration, transfer
    rules (R4.2, R5.3, R5.4, R5.5a, R5.5c, R7a, R8). */
void catalogue_routes(odp_service_t *svc);

/*  push.c: pushed datasets and files, versions, rejected rows (R5.5b, R7c, R8.3c). */
void push_routes(odp_service_t *svc);
/*  Commit the push groups left idle for ODP_REGISTRAR_COMMIT_SECONDS and reclaim the
    upload slots left idle for ODP_REGISTRAR_IDLE_SECONDS. Every push request calls it
    first; a loop timer may call it too, so that idle slots go without waiting for one. */
void push_tick(void);

/*  stage_index.c: stage.index, indexes on a staging table at the publisher's request. */
void stage_index_routes(odp_service_t *svc);

/*  push_upload.c: is name (len bytes) a column name the staging tables reserve (row_no,
    PostgreSQL's system columns)? dictionary.set refuses such field names. */
bool registrar_reserved_column(const char *name, size_t len);
#define REGISTRAR_RESERVED_COLUMNS "row_no, tableoid, xmin, cmin, xmax, cmax, ctid"

/*  Shared by catalogue.c and push.c: may the actor act on the entries of department?
    Operations may act on all; a provider only on its own. */
bool registrar_may_act(const odp_req_t *req, const char *department);

/*  catalogue.c, for push.c's readers: the department of resource in dept when the actor
    may see the entry (operations, its own department, anyone once registered and open);
    otherwise 404 NOT_FOUND (field resource), as for an entry that does not exist. */
int registrar_resource_visible(odp_req_t *req, const odp_val_t *resource, char *dept, size_t size);

#endif
