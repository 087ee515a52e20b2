/*  Least privilege across schemas: each role reads exactly what the design says
    (docs/design.md, "Who reads what") and writes nothing but its own schema. */
#include "harness.h"

#include <stdio.h>
#include <string.h>

/*  0 allowed, 1 refused for lack of privilege, -1 some other failure. */
static int s_try(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int rc = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK ? 0
             : state && strcmp(state, "42501") == 0          ? 1
                                                             : -1;
    if (rc < 0)
        fprintf(stderr, "itest: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

typedef struct {
    const char *role;
    const char *table;
    bool may_read;
} s_rule_t;

static const s_rule_t s_rules[] = {
    {"reviewer", "registrar.uploads", true},
    {"reviewer", "registrar.dictionary_fields", true},
    {"reviewer", "registrar.resources", true},
    {"reviewer", "registrar.rejects", true},
    {"reviewer", "registrar.credentials", false},
    {"reviewer", "registrar.staff", false},
    {"reviewer", "registrar.departments", false},
    {"reviewer", "registrar.file_chunks", false},
    {"publisher", "registrar.uploads", true},
    {"publisher", "registrar.departments", true},
    {"publisher", "registrar.file_chunks", true},
    {"publisher", "registrar.credentials", false},
    {"publisher", "registrar.rejects", false},
    {"publisher", "registrar.publishable_versions", true},
    {"reviewer", "registrar.publishable_versions", false},
    {"query", "registrar.publishable_versions", false},
    {"metrics", "registrar.plans", true},
    {"metrics", "registrar.uploads", true},
    {"metrics", "registrar.credentials", false},
    {"metrics", "registrar.dictionary_fields", false},
    {"query", "registrar.uploads", false},
    {"query", "registrar.resources", true},
    {"query", "registrar.departments", true},
    {"query", "registrar.credentials", false},
};

static void s_cross_schema_reads(void)
{
    for (size_t i = 0; i < sizeof s_rules / sizeof s_rules[0]; i++) {
        const s_rule_t *r = &s_rules[i];
        PGconn *c = h_pg_role(r->role);
        if (PQstatus(c) != CONNECTION_OK) {
            CHECK(false, "connect as odp_%s", r->role);
            PQfinish(c);
            continue;
        }
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", r->table);
        int got = s_try(c, sql);
        CHECK(got == (r->may_read ? 0 : 1), "odp_%s reading %s: %s", r->role, r->table,
              got == 0   ? "allowed"
              : got == 1 ? "refused"
                         : "failed");
        /*  Reading never brings writing with it (a view that cannot be written at all
            refuses before privileges are looked at). */
        snprintf(sql, sizeof sql, "DELETE FROM %s", r->table);
        CHECK(s_try(c, sql) != 0, "odp_%s may delete from %s", r->role, r->table);
        PQfinish(c);
    }
}

const h_case_t t_grants_cases[] = {
    {"each role reads what the design grants it, no more, and writes none of it",
     s_cross_schema_reads},
    {NULL, NULL}};
