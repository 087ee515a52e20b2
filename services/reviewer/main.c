/*  odp-reviewer: acceptance rules, checks, findings and quarantine (R5.6, R9c, R9d).
    This binary is the service skeleton: it owns the reviewer schema, answers the common
    commands (health, whoami, events.replay) and numbers its events; review features land
    with their own issue. */
#include "common/service.h"

extern const odp_migration_t reviewer_migrations[];
extern const size_t reviewer_nmigrations;

int main(void)
{
    return odp_service_main("reviewer", reviewer_migrations, reviewer_nmigrations, NULL);
}
