/*  itest: the integration suite. Usage: itest [NAME-SUBSTRING]
    Starts the five services, runs every case (or those whose name contains the filter, with
    their group's set-up), prints TAP, stops the services. Exit 0 when every case passed. */
#include "harness.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*  The registrar killed at random offsets (t_push_kill) goes last: services that were waiting
    on it (the publisher's index requests) take time to come back, and the cases after it
    would measure that instead of what they test. */
static const h_case_t *const s_groups[] = {
    t_registry_cases,  t_events_cases,     t_robust_cases,    t_security_cases, t_catalogue_cases,
    t_push_cases,      t_odp_push_cases,   t_access_cases,    t_grants_cases,   t_consumer_cases,
    t_tools_cases,     t_reviewer_cases,   t_publisher_cases, t_query_cases,    t_metrics_cases,
    t_backup_cases,    t_query_rows_cases, t_download_cases,  t_web_cases,      t_search_cases,
    t_push_kill_cases,
};

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    zsys_init();
    zsys_set_logstream(stderr);
    if (h_start_all() < 0) {
        printf("not ok 1 - services start\n1..1\n");
        h_stop_all();
        return 1;
    }
    int n = 0, failed = 0;
    for (size_t g = 0; g < sizeof s_groups / sizeof s_groups[0]; g++) {
        /*  A group's set-up case (its name says "set-up") runs whenever one of the group's
            cases does: the others read what it made. */
        bool wanted = !filter;
        for (const h_case_t *c = s_groups[g]; c->name && !wanted; c++)
            wanted = strstr(c->name, filter) != NULL;
        for (const h_case_t *c = s_groups[g]; c->name; c++) {
            if (filter && !strstr(c->name, filter) && !(wanted && strstr(c->name, "set-up")))
                continue;
            h_case_failures = 0;
            int64_t t0 = zclock_mono();
            c->fn();
            n++;
            if (h_case_failures)
                failed++;
            printf("%s %d - %s (%lld ms)\n", h_case_failures ? "not ok" : "ok", n, c->name,
                   (long long)(zclock_mono() - t0));
        }
    }
    printf("1..%d\n", n);
    h_stop_all();
    return failed ? 1 : 0;
}
