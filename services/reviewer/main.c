/*  odp-reviewer: acceptance checks, findings and quarantine (R5.6, R9c, R9d). It owns the
    reviewer schema, answers the common commands, reviews every dataset version the
    registrar receives (review.c) and answers review.show. */
#include "reviewer.h"

int main(void)
{
    odp_service_t *svc = odp_service_new("reviewer", reviewer_migrations, reviewer_nmigrations);
    if (!svc)
        return 1;
    review_routes(svc);
    odp_consumer_t *consumer = review_consumer_start(svc);
    int rc = consumer ? odp_service_run(svc) : -1;
    review_stop(svc);
    odp_consumer_destroy(&consumer);
    odp_service_destroy(&svc);
    return rc == 0 ? 0 : 1;
}
