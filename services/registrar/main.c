/*  odp-registrar: departments, catalogue, transfer rules and pushed data. */
#include "registrar.h"

#include "common/config.h"
#include "common/log.h"

/*  Idle push groups commit, and abandoned upload slots are reclaimed, whether or not
    another request arrives (an open transaction holds back VACUUM). */
static void s_push_tick(odp_service_t *svc, void *arg)
{
    (void)svc;
    (void)arg;
    push_tick();
}

static int s_setup(odp_service_t *svc)
{
    registry_routes(svc);
    catalogue_routes(svc);
    push_routes(svc);
    stage_index_routes(svc);
    odp_service_timer(svc, (int)odp_config_int("registrar", "TICK_MS", 1000), s_push_tick, NULL);
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
