/*  odp-registrar: departments, catalogue, transfer rules and pushed data. */
#include "registrar.h"

#include "common/log.h"

static int s_setup(odp_service_t *svc)
{
    registry_routes(svc);
    catalogue_routes(svc);
    push_routes(svc);
    /*  The credentials table is the truth; a lost or fresh certificate volume is rebuilt
        from it before the first request. */
    if (registry_sync_certs(odp_service_db(svc)) < 0)
        odp_warn("event=registry.sync_failed msg=\"certificate directory not rebuilt\"");
    return 0;
}

int main(void)
{
    return odp_service_main("registrar", registrar_migrations, registrar_nmigrations, s_setup);
}
