/*  odp-registrar: departments, catalogue, transfer rules and pushed data. */
#include "registrar.h"

#include "common/config.h"
#include "common/log.h"

#include <malloc.h>

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
    /*  Every pushed chunk is a message of chunk_size bytes that ZeroMQ's I/O thread
        allocates and the service frees. Above 128 KiB glibc maps each one afresh, so every
        page of every chunk was faulted in and unmapped again: about a third of the
        registrar's time in a push. From the heap, and with the heap not trimmed for less
        than 16 MiB at its top, the same pages serve chunk after chunk. (Trimming only
        returns memory after a peak: the peak itself, VmHWM, is what it is either way.) */
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
    return odp_service_main("registrar", registrar_migrations, registrar_nmigrations, s_setup);
}
