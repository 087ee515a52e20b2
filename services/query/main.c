/*  odp-query: users, grants, feedback (R4.3b-c, R4.4, R7d, R9e). It owns the query schema,
    answers the common commands and binds the public endpoint (ODP_QUERY_PUBLIC_BIND) where
    anonymous CURVE clients sign up, sign in and act as users. */
#include "query.h"

#include "common/config.h"

#include <sodium.h>
#include <unistd.h>

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    odp_service_t *svc = odp_service_new("query", query_migrations, query_nmigrations);
    if (!svc)
        return 1;
    q_ctx_t ctx = {0};
    ctx.session_ttl_s = odp_config_int("query", "SESSION_TTL_S", 86400);
    ctx.guard = q_guard_new(svc);
    int rc = ctx.guard ? 0 : -1;
    if (ctx.guard) {
        odp_service_set_ctx(svc, &ctx);
        /*  Row queries run on a pool of connections (issue #10): the database answers
            several at once while the loop reads and answers the next. */
        int workers = (int)odp_config_int("query", "WORKERS", 4);
        if (workers > 0 && odp_service_pool(svc, workers) < 0)
            rc = -1;
        /*  And the fast path of a hinted row query: the loop sends its statement itself
            on its own pipelined connections, no thread hand-off (issue #10). By default
            one per two cores: a turn's statements go on the least busy connection, so
            fewer connections wake fewer backends, each for more statements; the loop and
            the ZeroMQ threads need the other cores (docs/scaling.md, round 6). */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int dflt = cores >= 4 ? (int)(cores / 2 < 8 ? cores / 2 : 8) : 1;
        int pipelines = (int)odp_config_int("query", "PIPELINES", dflt);
        if (rc == 0 && workers > 0 && pipelines > 0 && odp_service_pipelines(svc, pipelines) < 0)
            rc = -1;
        identity_routes(svc);
        access_routes(svc);
        feedback_routes(svc);
        search_routes(svc);
        rows_routes(svc);
        download_routes(svc);
        if (rc == 0)
            rc = odp_service_run(svc);
    }
    /*  Before the service: its last flush of the counts needs the database. */
    q_guard_destroy(&ctx.guard);
    odp_service_destroy(&svc);
    return rc == 0 ? 0 : 1;
}
