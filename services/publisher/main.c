/*  odp-publisher: releases, withdrawals and public tables (R4.3a, R5.7b, R9d).
    This binary is the service skeleton: it owns the publisher schema, answers the common
    commands (health, whoami, events.replay) and numbers its events; its features land
    with their own issue. */
#include "common/service.h"

extern const odp_migration_t publisher_migrations[];
extern const size_t publisher_nmigrations;

int main(void)
{
    return odp_service_main("publisher", publisher_migrations, publisher_nmigrations, NULL);
}
