/*  test_parse: the strict integer, date and timestamp readers and the UTF-8 cutter, on
    the edges PostgreSQL draws (int8 range, calendar, leap years, zone limits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/parse.h"

static bool s_int(const char *s, int64_t *out)
{
    return odp_parse_int(s, strlen(s), INT64_MIN, INT64_MAX, out);
}

static void s_int_valid(void **state)
{
    (void)state;
    int64_t v = 1;
    assert_true(s_int("0", &v));
    assert_int_equal(v, 0);
    assert_true(s_int("-0", &v));
    assert_int_equal(v, 0);
    assert_true(s_int("+42", &v));
    assert_int_equal(v, 42);
    assert_true(s_int("007", &v));
    assert_int_equal(v, 7);
    assert_true(s_int("9223372036854775807", &v));
    assert_true(v == INT64_MAX);
    assert_true(s_int("-9223372036854775808", &v));
    assert_true(v == INT64_MIN);
    assert_true(s_int("0000000000000000000000000001", &v));
    assert_int_equal(v, 1);
    assert_true(s_int("12", NULL));
}

static void s_int_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      "-",
                                      "+",
                                      " 1",
                                      "1 ",
                                      "1a",
                                      "0x10",
                                      "1e3",
                                      "1.0",
                                      "--1",
                                      "9223372036854775808",
                                      "-9223372036854775809",
                                      "99999999999999999999",
                                      "١٢"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 77;
        if (s_int(bad[i], &v))
            fail_msg("'%s' was read as %lld", bad[i], (long long)v);
        assert_int_equal(v, 77); /* untouched */
    }
    /*  A NUL inside the given length is not a digit. */
    assert_false(odp_parse_int("1\0002", 3, INT64_MIN, INT64_MAX, NULL));
    /*  Only the given length is read. */
    assert_true(odp_parse_int("123abc", 3, INT64_MIN, INT64_MAX, NULL));
}

static void s_int_range(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_true(odp_parse_int("64", 2, 1, 64, &v));
    assert_int_equal(v, 64);
    assert_true(odp_parse_int("1", 1, 1, 64, &v));
    assert_false(odp_parse_int("65", 2, 1, 64, &v));
    assert_false(odp_parse_int("0", 1, 1, 64, &v));
    assert_false(odp_parse_int("-5", 2, 0, 10, &v));
}

static bool s_date(const char *s, int32_t *days)
{
    return odp_parse_date(s, strlen(s), days);
}

static void s_dates(void **state)
{
    (void)state;
    /*  Days from 2000-01-01, as PostgreSQL's date - date '2000-01-01' gives them. */
    static const struct {
        const char *text;
        int32_t days;
    } good[] = {{"2000-01-01", 0},       {"1999-12-31", -1},     {"2024-01-04", 8769},
                {"2000-02-29", 59},      {"1970-01-01", -10957}, {"0001-01-01", -730119},
                {"9999-12-31", 2921939}, {"2024-02-29", 8825}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int32_t d = 1;
        if (!s_date(good[i].text, &d))
            fail_msg("%s was refused", good[i].text);
        if (d != good[i].days)
            fail_msg("%s is day %d, not %d", good[i].text, d, good[i].days);
    }
    static const char *const bad[] = {
        "1900-02-29",  "2023-02-29", "0000-01-01", "2024-13-01", "2024-00-10",  "2024-01-00",
        "2024-01-32",  "2024-04-31", "2024-1-01",  "2024/01/01", "2024-01-011", "20240101",
        " 2024-01-01", "2024-01-0a", "",           "+024-01-01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (s_date(bad[i], NULL))
            fail_msg("'%s' was taken for a date", bad[i]);
}

static void s_timestamps(void **state)
{
    (void)state;
    static const char *const good[] = {"2024-01-04", /* a date alone: its midnight */
                                       "2024-01-02T03:04:05Z",
                                       "2024-01-02 03:04",
                                       "2024-06-30T23:59:60+08:00",
                                       "2024-01-02T03:04:05.123456-05",
                                       "2024-01-02T03:04+15:59",
                                       "2024-02-29T00:00:00"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!odp_parse_timestamp(good[i], strlen(good[i])))
            fail_msg("'%s' was refused", good[i]);
    static const char *const bad[] = {"2024-01-02T24:00",
                                      "2024-01-02T03:60",
                                      "2024-01-02T03:04:61",
                                      "2024-01-02T03:04:05+16",
                                      "2024-01-02T03:04:05+08:60",
                                      "2024-01-02T",
                                      "2024-01-02 3:04",
                                      "2024-02-30T00:00",
                                      "2024-01-02T03:04:05.",
                                      "2024-01-02T03:04:05Zx",
                                      "2024-01-02T03:04:05+8",
                                      "2024-01-02X03:04",
                                      "2024-01-0",
                                      "2024-01-02Z",
                                      ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (odp_parse_timestamp(bad[i], strlen(bad[i])))
            fail_msg("'%s' was taken for a timestamp", bad[i]);
}

static void s_utf8_cut(void **state)
{
    (void)state;
    const char *cjk = "中文字"; /* three 3-byte characters */
    assert_int_equal(odp_utf8_cut(cjk, 9, 9), 9);
    assert_int_equal(odp_utf8_cut(cjk, 9, 20), 9);
    assert_int_equal(odp_utf8_cut(cjk, 9, 8), 6);
    assert_int_equal(odp_utf8_cut(cjk, 9, 7), 6);
    assert_int_equal(odp_utf8_cut(cjk, 9, 6), 6);
    assert_int_equal(odp_utf8_cut(cjk, 9, 5), 3);
    assert_int_equal(odp_utf8_cut(cjk, 9, 2), 0);
    assert_int_equal(odp_utf8_cut(cjk, 9, 0), 0);
    const char *mixed = "a\xc3\xa9\xf0\x9f\x98\x80z"; /* a, é (2), 😀 (4), z */
    assert_int_equal(odp_utf8_cut(mixed, 8, 1), 1);
    assert_int_equal(odp_utf8_cut(mixed, 8, 2), 1);
    assert_int_equal(odp_utf8_cut(mixed, 8, 3), 3);
    assert_int_equal(odp_utf8_cut(mixed, 8, 4), 3);
    assert_int_equal(odp_utf8_cut(mixed, 8, 6), 3);
    assert_int_equal(odp_utf8_cut(mixed, 8, 7), 7);
    assert_int_equal(odp_utf8_cut("plain ascii", 11, 5), 5);
    /*  A buffer already cut at max (the bytes past it gone) gives the same answer. */
    char cut[5];
    memcpy(cut, cjk, 5);
    assert_int_equal(odp_utf8_cut(cut, 9, 5), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s_int_valid),  cmocka_unit_test(s_int_refused),
        cmocka_unit_test(s_int_range),  cmocka_unit_test(s_dates),
        cmocka_unit_test(s_timestamps), cmocka_unit_test(s_utf8_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
