/*  odp_config_int: a number the operator wrote wrong is not read as something else (a
    trailing unit, a blank, an overflow would otherwise become another value silently); the
    default is used and the mistake logged. The per-service variable wins over the shared one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/config.h"

static int64_t s_read(const char *text)
{
    setenv("ODP_QUERY_TEST_KNOB", text, 1);
    return odp_config_int("query", "TEST_KNOB", 42);
}

static void s_numbers(void **state)
{
    (void)state;
    assert_int_equal(s_read("7"), 7);
    assert_int_equal(s_read("-3"), -3);
    assert_int_equal(s_read("9223372036854775807"), INT64_MAX);
}

static void s_mistakes_use_the_default(void **state)
{
    (void)state;
    assert_int_equal(s_read("10s"), 42);
    assert_int_equal(s_read(" 5"), 42);
    assert_int_equal(s_read("5 "), 42);
    assert_int_equal(s_read("0x10"), 42);
    assert_int_equal(s_read("9223372036854775808"), 42);
    assert_int_equal(s_read("1e3"), 42);
}

static void s_service_first(void **state)
{
    (void)state;
    unsetenv("ODP_QUERY_TEST_KNOB");
    setenv("ODP_TEST_KNOB", "11", 1);
    assert_int_equal(odp_config_int("query", "TEST_KNOB", 42), 11);
    setenv("ODP_QUERY_TEST_KNOB", "12", 1);
    assert_int_equal(odp_config_int("query", "TEST_KNOB", 42), 12);
    assert_int_equal(odp_config_int("metrics", "TEST_KNOB", 42), 11);
    unsetenv("ODP_TEST_KNOB");
    unsetenv("ODP_QUERY_TEST_KNOB");
    assert_int_equal(odp_config_int("query", "TEST_KNOB", 42), 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s_numbers),
        cmocka_unit_test(s_mistakes_use_the_default),
        cmocka_unit_test(s_service_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
