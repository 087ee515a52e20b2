/*  test_push_counts: the registrar's counts of a push group's code-like values
    (services/registrar/push_counts.c), as COPY lines of stage_counts. */
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

/*  The lines of out, sorted, joined by '|' (the table's order is the hash's). */
static char *s_sorted(odp_buf_t *out)
{
    char *text = strndup(odp_buf_data(out), odp_buf_size(out));
    char *lines[64];
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < 64;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    char *joined = calloc(1, odp_buf_size(out) + 2);
    for (size_t i = 0; i < n; i++) {
        strcat(joined, i ? "|" : "");
        strcat(joined, lines[i]);
    }
    free(text);
    return joined;
}

/*  Columns row_no, city (counted), note, ok (counted): values as the loader stages them,
    NULL and an escaped tab included; a name with a tab is escaped for COPY. */
static void s_counts(void **state)
{
    (void)state;
    const bool counted[] = {false, true, false, true};
    const char *const names[] = {"row_no", "ci\tty", "note", "ok"};
    push_counts_t *c = push_counts_new(counted, names, 4);
    assert_non_null(c);
    const char rows[] = "1\t广州市\tx\tt\n"
                        "2\t深圳市\ty\tf\n"
                        "3\t广州市\t\\N\t\\N\n"
                        "4\ta\\tb\tz\tt\n";
    push_counts_add(c, rows, sizeof rows - 1);
    assert_false(push_counts_overflow(c));
    odp_buf_t *out = odp_buf_new();
    assert_int_equal(push_counts_take(c, 7, 4, out), 0);
    char *got = s_sorted(out);
    assert_string_equal(got, "7\t\\N\t\\N\t4|7\tci\\tty\ta\\tb\t1|7\tci\\tty\t广州市\t2|"
                             "7\tci\\tty\t深圳市\t1|7\tok\t\\N\t1|7\tok\tf\t1|7\tok\tt\t2");
    free(got);
    /*  Taken: the next group starts from zero, and a group without rows writes nothing. */
    odp_buf_reset(out);
    assert_int_equal(push_counts_take(c, 7, 0, out), 0);
    assert_int_equal(odp_buf_size(out), 0);
    odp_buf_destroy(&out);
    push_counts_destroy(&c);
    assert_null(c);
}

/*  Counted as copybin converts the rows (the binary path of a push): the same counts as
    a pass over the text; a conversion that fails part way gives them up. */
static void s_tap(void **state)
{
    (void)state;
    const bool counted[] = {false, true, false, true};
    const char *const names[] = {"row_no", "city", "n", "ok"};
    const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT, LOADER_INTEGER, LOADER_BOOLEAN};
    const char rows[] = "1\t广州市\t5\tt\n"
                        "2\ta\\tb\t\\N\tf\n"
                        "3\t广州市\t7\t\\N\n";
    push_counts_t *a = push_counts_new(counted, names, 4), *b = push_counts_new(counted, names, 4);
    odp_buf_t *bin = odp_buf_new(), *ta = odp_buf_new(), *tb = odp_buf_new();
    assert_int_equal(copybin_rows(bin, rows, sizeof rows - 1, types, 4, push_counts_tap(a)), 0);
    push_counts_add(b, rows, sizeof rows - 1);
    assert_int_equal(push_counts_take(a, 1, 3, ta), 0);
    assert_int_equal(push_counts_take(b, 1, 3, tb), 0);
    char *ga = s_sorted(ta), *gb = s_sorted(tb);
    assert_string_equal(ga, gb);
    assert_string_equal(ga, "1\t\\N\t\\N\t3|1\tcity\ta\\tb\t1|1\tcity\t广州市\t2|1\tok\t\\N\t1|"
                            "1\tok\tf\t1|1\tok\tt\t1");
    free(ga);
    free(gb);
    const char bad[] = "4\tx\t8\tt\n5\ty\tnot a number\tf\n";
    assert_int_equal(copybin_rows(bin, bad, sizeof bad - 1, types, 4, push_counts_tap(a)), -1);
    push_counts_give_up(a);
    assert_true(push_counts_overflow(a));
    odp_buf_destroy(&bin);
    odp_buf_destroy(&ta);
    odp_buf_destroy(&tb);
    push_counts_destroy(&a);
    push_counts_destroy(&b);
}

/*  More distinct values than counting keeps: given up, memory bounded. */
static void s_overflow(void **state)
{
    (void)state;
    const bool counted[] = {false, true};
    const char *const names[] = {"row_no", "code"};
    push_counts_t *c = push_counts_new(counted, names, 2);
    char line[64];
    for (int i = 0; i < 30000 && !push_counts_overflow(c); i++) {
        int n = snprintf(line, sizeof line, "%d\tv%d\n", i, i);
        push_counts_add(c, line, (size_t)n);
    }
    assert_true(push_counts_overflow(c));
    push_counts_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(s_counts), cmocka_unit_test(s_tap),
                                       cmocka_unit_test(s_overflow)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
