/*  test_push_checks: the registrar's evidence for the review's row-level checks
    (services/registrar/push_checks.c): per check, the values it could not prove to pass,
    on both sides of every boundary and for the values it must not prove. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "services/registrar/copybin.h"
#include "services/registrar/push.h"

/*  The unproven count of field's check in the lines of out; -1 when there is no line. */
static long long s_unproven(odp_buf_t *out, const char *field, const char *check)
{
    char want[160];
    snprintf(want, sizeof want, "\t%s\t%s\t", field, check);
    char *text = strndup(odp_buf_data(out), odp_buf_size(out));
    char *hit = strstr(text, want);
    long long n = hit ? strtoll(hit + strlen(want), NULL, 10) : -1;
    free(text);
    return n;
}

/*  One column of type with spec, fed rows (one value each, row_no first): the count. */
static long long s_one(push_check_spec_t spec, const char *rows, const char *check)
{
    push_check_spec_t specs[2] = {{0}, spec};
    specs[1].name = "f";
    push_checks_t *c = push_checks_new(specs, 2);
    assert_non_null(c);
    push_checks_add(c, rows, strlen(rows));
    assert_false(push_checks_lost(c));
    odp_buf_t *out = odp_buf_new();
    assert_int_equal(push_checks_take(c, 9, out), 0);
    long long n = s_unproven(out, "f", check);
    odp_buf_destroy(&out);
    push_checks_destroy(&c);
    return n;
}

/*  required: a text's NULL and '' are found, a space is not; other types only NULL. */
static void s_required(void **state)
{
    (void)state;
    push_check_spec_t t = {.type = "text", .required = true};
    assert_int_equal(s_one(t, "1\t\\N\n2\t\n3\t \n4\tx\n5\t\\\\N\n", "required"), 2);
    push_check_spec_t i = {.type = "integer", .required = true};
    assert_int_equal(s_one(i, "1\t\\N\n2\t0\n", "required"), 1);
}

/*  maxLength 3 counts characters: 3 Chinese characters (9 bytes) pass, 4 do not; an escape
    is never proven; minLength 2 passes '' and NULL, not one character. */
static void s_lengths(void **state)
{
    (void)state;
    push_check_spec_t t = {.type = "text", .length = 3, .min_length = 2};
    const char rows[] = "1\tabc\n2\tabcd\n3\t广州市\n4\t广州市区\n5\ta\\tb\n6\t\n7\t\\N\n8\t广\n";
    assert_int_equal(s_one(t, rows, "maxLength"), 3); /* abcd, 广州市区, a\tb */
    assert_int_equal(s_one(t, rows, "minLength"), 2); /* a\tb (escaped), 广 */
}

/*  enum on text: byte equality with a listed value; NULL passes a list, not an empty one;
    an integer field's values are left to the SQL. */
static void s_enum(void **state)
{
    (void)state;
    const char *const list[] = {"广州市", "深圳市"};
    push_check_spec_t t = {.type = "text", .allowed = list, .nallowed = 2};
    assert_int_equal(s_one(t, "1\t广州市\n2\t广州\n3\t\\N\n4\t广州市 \n", "enum"), 2);
    push_check_spec_t none = {.type = "text", .allowed = list, .nallowed = 0};
    assert_int_equal(s_one(none, "1\t\\N\n", "enum"), 1);
    const char *const nums[] = {"1"};
    push_check_spec_t i = {.type = "integer", .allowed = nums, .nallowed = 1};
    assert_int_equal(s_one(i, "1\t1\n2\t\\N\n", "enum"), 1);
}

/*  integer bounds are exact; numeric bounds are proven only clearly inside. */
static void s_bounds(void **state)
{
    (void)state;
    push_check_spec_t i = {.type = "integer", .min = "0", .max = "99999"};
    const char irows[] = "1\t-1\n2\t0\n3\t99999\n4\t100000\n5\t\\N\n";
    assert_int_equal(s_one(i, irows, "minimum"), 1);
    assert_int_equal(s_one(i, irows, "maximum"), 1);
    push_check_spec_t big = {.type = "integer", .min = "100000000000000000000"};
    assert_int_equal(s_one(big, "1\t5\n", "minimum"), 1);
    push_check_spec_t n = {.type = "numeric", .min = "-50", .max = "50"};
    /*  Plain decimals compare exactly, at the bound too; an exponent only clearly inside. */
    const char nrows[] = "1\t-50\n2\t-49.99\n3\t50.0000000000000001\n4\t49.5\n5\t1e1\n6\tNaN\n"
                         "7\t0\n8\t-50.0000000001\n9\t5e1\n10\t+50.000\n11\t-0.000\n"
                         "12\t-5e1\n";
    assert_int_equal(s_one(n, nrows, "minimum"), 3); /* NaN, -50.0000000001, -5e1 */
    assert_int_equal(s_one(n, nrows, "maximum"), 3); /* 50.0...01, NaN, 5e1 */
    push_check_spec_t z = {.type = "numeric", .min = "0.5"};
    assert_int_equal(s_one(z, "1\t0.49\n2\t.5\n3\t00.50\n4\t0.4999999999999999999\n", "minimum"),
                     2);
}

/*  pattern: only the short cut's shape is proven, exactly as pattern_shortcut() decides. */
static void s_pattern(void **state)
{
    (void)state;
    push_check_spec_t b = {.type = "text", .pattern = "B[0-9]{10}"};
    const char rows[] = "1\tB0123456789\n2\tB012345678\n3\tB01234567890\n4\tb0123456789\n"
                        "5\tB０123456789\n6\t\n7\t\\N\n8\tBB123456789\n";
    assert_int_equal(s_one(b, rows, "pattern"), 5);
    push_check_spec_t d = {.type = "text", .pattern = "\\d{3}"};
    assert_int_equal(s_one(d, "1\t123\n2\t12a\n3\t１２３\n", "pattern"), 2);
    push_check_spec_t h = {.type = "text", .pattern = "X[0-9A-F]{2,4}"};
    assert_int_equal(s_one(h, "1\tXA0\n2\tXA0B12\n3\tX\n4\tXA0B\n", "pattern"), 2);
    push_check_spec_t plus = {.type = "text", .pattern = "[a-c]+"};
    assert_int_equal(s_one(plus, "1\tabc\n2\tabd\n", "pattern"), 1);
    /*  Other shapes, a prefix ending in the run, a count PostgreSQL refuses: never. */
    const char *const other[] = {"[0-9]{2}-[0-9]{2}", "1[0-9]{3}", "[0-9]{256}", "B[9-0]", "(a|b)"};
    for (size_t k = 0; k < sizeof other / sizeof *other; k++) {
        push_check_spec_t o = {.type = "text", .pattern = other[k]};
        assert_int_equal(s_one(o, "1\t12-34\n2\t1234\n3\ta\n", "pattern"), 3);
    }
    push_check_spec_t i = {.type = "integer", .pattern = "[0-9]+"};
    assert_int_equal(s_one(i, "1\t12\n2\t\\N\n", "pattern"), 1);
}

/*  Check digits are left to the SQL, but for '' and NULL. */
static void s_digits(void **state)
{
    (void)state;
    push_check_spec_t t = {.type = "text", .check_name = "uscc"};
    assert_int_equal(s_one(t, "1\t91350100M000100Y43\n2\t\n3\t\\N\n", "uscc"), 1);
}

/*  A blank row has every value NULL or empty, across columns; the copybin tap sees the
    same as the text path, and passes the values on to the next tap. */
static int s_seen;
static void s_count_next(void *arg, size_t field, const char *text, size_t len)
{
    (void)arg;
    (void)field;
    (void)text;
    (void)len;
    s_seen++;
}

static void s_blank_and_tap(void **state)
{
    (void)state;
    push_check_spec_t specs[3] = {
        {0}, {.name = "a", .type = "text"}, {.name = "n", .type = "integer", .min = "1"}};
    const char rows[] = "1\t\t\\N\n2\t\\N\t\\N\n3\tx\t\\N\n4\t\t0\n";
    push_checks_t *c = push_checks_new(specs, 3);
    assert_non_null(c);
    const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT, LOADER_INTEGER};
    const bool all[] = {true, true, true};
    copybin_tap_t next = {.fields = all, .fn = s_count_next};
    odp_buf_t *bin = odp_buf_new();
    assert_int_equal(copybin_rows(bin, rows, sizeof rows - 1, types, 3, push_checks_tap(c, &next)),
                     0);
    assert_int_equal(s_seen, 12);
    odp_buf_t *out = odp_buf_new();
    assert_int_equal(push_checks_take(c, 9, out), 0);
    char *text = strndup(odp_buf_data(out), odp_buf_size(out));
    assert_string_equal(text, "9\tn\tminimum\t1\n9\t\\N\tblank-row\t2\n");
    free(text);
    odp_buf_reset(out);
    /*  Taken: the next group starts from zero. */
    assert_int_equal(push_checks_take(c, 9, out), 0);
    assert_int_equal(s_unproven(out, "n", "minimum"), 0);
    odp_buf_destroy(&out);
    odp_buf_destroy(&bin);
    push_checks_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s_required),      cmocka_unit_test(s_lengths), cmocka_unit_test(s_enum),
        cmocka_unit_test(s_bounds),        cmocka_unit_test(s_pattern), cmocka_unit_test(s_digits),
        cmocka_unit_test(s_blank_and_tap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
