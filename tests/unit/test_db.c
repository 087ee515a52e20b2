/*  SQLSTATE classes map to the reply a caller gets (common/db.c odp_db_classify). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/db.h"

typedef struct {
    const char *state;
    odp_db_failure_t expect;
} s_case_t;

static const s_case_t s_cases[] = {
    {"23505", ODP_DBF_CONFLICT},  /* unique_violation */
    {"23P01", ODP_DBF_CONFLICT},  /* exclusion_violation */
    {"23502", ODP_DBF_INVALID},   /* not_null_violation */
    {"23503", ODP_DBF_INVALID},   /* foreign_key_violation */
    {"23514", ODP_DBF_INVALID},   /* check_violation */
    {"22001", ODP_DBF_INVALID},   /* string_data_right_truncation */
    {"22P02", ODP_DBF_INVALID},   /* invalid_text_representation */
    {"22008", ODP_DBF_INVALID},   /* datetime_field_overflow */
    {"40001", ODP_DBF_RETRY},     /* serialization_failure */
    {"40P01", ODP_DBF_RETRY},     /* deadlock_detected */
    {"08006", ODP_DBF_TRANSIENT}, /* connection_failure */
    {"08001", ODP_DBF_TRANSIENT}, /* sqlclient_unable_to_establish_sqlconnection */
    {"53300", ODP_DBF_TRANSIENT}, /* too_many_connections */
    {"57014", ODP_DBF_TRANSIENT}, /* query_canceled (statement timeout) */
    {"57P01", ODP_DBF_TRANSIENT}, /* admin_shutdown */
    {"55P03", ODP_DBF_TRANSIENT}, /* lock_not_available */
    {"42601", ODP_DBF_BUG},       /* syntax_error */
    {"42501", ODP_DBF_BUG},       /* insufficient_privilege: a missing grant is our bug */
    {"42P01", ODP_DBF_BUG},       /* undefined_table */
    {"XX000", ODP_DBF_BUG},       /* internal_error */
    {"40002", ODP_DBF_BUG},       /* integrity constraint at commit: not retried blindly */
    {"", ODP_DBF_BUG},
    {"2350", ODP_DBF_BUG},
};

static void test_classes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        odp_db_failure_t got = odp_db_classify(s_cases[i].state);
        if (got != s_cases[i].expect)
            fail_msg("SQLSTATE '%s': class %d, expected %d", s_cases[i].state, (int)got,
                     (int)s_cases[i].expect);
    }
    assert_int_equal(odp_db_classify(NULL), ODP_DBF_BUG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_classes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
