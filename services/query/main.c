/*  odp-query: users, grants, search, rows and downloads, feedback (R4.3b, R4.4, R5.8, R7d).
    This binary is the service skeleton: it owns the query schema, answers the common
    commands (health, whoami, events.replay) and numbers its events; its features land
    with their own issue. */
#include "common/service.h"

extern const odp_migration_t query_migrations[];
extern const size_t query_nmigrations;

int main(void)
{
    return odp_service_main("query", query_migrations, query_nmigrations, NULL);
}
