/*  test_push_keys: the registrar's hashes of a push group's unique values
    (services/registrar/push_keys.c), as the reviewer reads them from stage_keys. */
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

static uint64_t s_at(odp_buf_t *out, size_t i)
{
    const unsigned char *p = (const unsigned char *)odp_buf_data(out) + 8 * i;
    uint64_t v = 0;
    for (int b = 0; b < 8; b++)
        v = v << 8 | p[b];
    return v;
}

/*  Columns row_no, code (keyed), n, name (keyed), converted as a push converts them: each
    keyed column's hashes come out sorted, one per value that is not NULL; equal values
    (an escaped tab included) hash alike, distinct ones apart; NULLs are counted; a take
    starts the next group from zero. */
static void s_keys(void **state)
{
    (void)state;
    const bool keyed[] = {false, true, false, true};
    const char *const names[] = {"row_no", "code", "n", "name"};
    const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT, LOADER_INTEGER, LOADER_TEXT};
    push_keys_t *k = push_keys_new(keyed, names, 4, 100);
    assert_non_null(k);
    assert_int_equal(push_keys_count(k), 2);
    const char rows[] = "1\tB001\t5\t广州\n"
                        "2\ta\\tb\t6\t深圳\n"
                        "3\t\\N\t7\t广州\n"
                        "4\ta\\tb\t\\N\t\\N\n"
                        "5\tB002\t8\t\\N\n";
    odp_buf_t *bin = odp_buf_new(), *out = odp_buf_new();
    assert_int_equal(copybin_rows(bin, rows, sizeof rows - 1, types, 4, push_keys_tap(k, NULL)), 0);
    assert_false(push_keys_lost(k));
    const char *name = NULL;
    int64_t nulls = -1;
    assert_int_equal(push_keys_take(k, 0, &name, &nulls, out), 0);
    assert_string_equal(name, "code");
    assert_int_equal(nulls, 1);
    assert_int_equal(odp_buf_size(out), 4 * 8);
    /*  Sorted; B001 and B002 apart; the two a\tb one hash twice. */
    int equal = 0;
    for (size_t i = 1; i < 4; i++) {
        assert_true(s_at(out, i - 1) <= s_at(out, i));
        equal += s_at(out, i - 1) == s_at(out, i);
    }
    assert_int_equal(equal, 1);
    odp_buf_reset(out);
    assert_int_equal(push_keys_take(k, 1, &name, &nulls, out), 0);
    assert_string_equal(name, "name");
    assert_int_equal(nulls, 2);
    assert_int_equal(odp_buf_size(out), 3 * 8);
    assert_true(s_at(out, 0) == s_at(out, 1) || s_at(out, 1) == s_at(out, 2));
    assert_false(s_at(out, 0) == s_at(out, 1) && s_at(out, 1) == s_at(out, 2));
    /*  Taken: the next group starts from zero. */
    odp_buf_reset(out);
    assert_int_equal(push_keys_take(k, 0, &name, &nulls, out), 0);
    assert_int_equal(odp_buf_size(out), 0);
    assert_int_equal(nulls, 0);
    assert_int_equal(push_keys_take(k, 2, &name, &nulls, out), -1);
    odp_buf_destroy(&bin);
    odp_buf_destroy(&out);
    push_keys_destroy(&k);
    assert_null(k);
}

/*  The same value hashes alike in another group and another registrar (a fixed key): what
    makes the groups' runs comparable. */
static void s_stable(void **state)
{
    (void)state;
    const bool keyed[] = {false, true};
    const char *const names[] = {"row_no", "code"};
    const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT};
    uint64_t h[2];
    for (int i = 0; i < 2; i++) {
        push_keys_t *k = push_keys_new(keyed, names, 2, 10);
        odp_buf_t *bin = odp_buf_new(), *out = odp_buf_new();
        const char row[] = "9\t记录B0000000001\n";
        assert_int_equal(copybin_rows(bin, row, sizeof row - 1, types, 2, push_keys_tap(k, NULL)),
                         0);
        const char *name;
        int64_t nulls;
        assert_int_equal(push_keys_take(k, 0, &name, &nulls, out), 0);
        assert_int_equal(odp_buf_size(out), 8);
        h[i] = s_at(out, 0);
        odp_buf_destroy(&bin);
        odp_buf_destroy(&out);
        push_keys_destroy(&k);
    }
    assert_true(h[0] == h[1]);
}

/*  A group's worth of values comes out in ascending order, each once (the reviewer's merge
    relies on the order). */
static void s_many(void **state)
{
    (void)state;
    const bool keyed[] = {false, true};
    const char *const names[] = {"row_no", "code"};
    const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT};
    push_keys_t *k = push_keys_new(keyed, names, 2, 100000);
    odp_buf_t *bin = odp_buf_new(), *rows = odp_buf_new(), *out = odp_buf_new();
    char line[48];
    for (int i = 0; i < 60000; i++) {
        int n = snprintf(line, sizeof line, "%d\tB%010d\n", i, i * 7919);
        odp_buf_append(rows, line, (size_t)n);
    }
    assert_int_equal(
        copybin_rows(bin, odp_buf_data(rows), odp_buf_size(rows), types, 2, push_keys_tap(k, NULL)),
        0);
    const char *name;
    int64_t nulls;
    assert_int_equal(push_keys_take(k, 0, &name, &nulls, out), 0);
    assert_int_equal(odp_buf_size(out), 60000 * 8);
    for (size_t i = 1; i < 60000; i++)
        assert_true(s_at(out, i - 1) < s_at(out, i));
    odp_buf_destroy(&bin);
    odp_buf_destroy(&rows);
    odp_buf_destroy(&out);
    push_keys_destroy(&k);
}

/*  A group whose keyed values are all NULL: no hashes, its NULLs counted (and nothing to
    sort: the sanitizers' build checks that no null buffer reaches qsort). */
static void s_only_nulls(void **state)
{
    (void)state;
    const bool keyed[] = {false, true};
    const char *const names[] = {"row_no", "code"};
    const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT};
    push_keys_t *k = push_keys_new(keyed, names, 2, 10);
    odp_buf_t *bin = odp_buf_new(), *out = odp_buf_new();
    const char rows[] = "1\t\\N\n2\t\\N\n";
    assert_int_equal(copybin_rows(bin, rows, sizeof rows - 1, types, 2, push_keys_tap(k, NULL)), 0);
    const char *name;
    int64_t nulls;
    assert_int_equal(push_keys_take(k, 0, &name, &nulls, out), 0);
    assert_int_equal(nulls, 2);
    assert_int_equal(odp_buf_size(out), 0);
    odp_buf_destroy(&bin);
    odp_buf_destroy(&out);
    push_keys_destroy(&k);
}

/*  More values in a group than it holds, or a conversion that fails part way: lost. */
static void s_lost(void **state)
{
    (void)state;
    const bool keyed[] = {false, true};
    const char *const names[] = {"row_no", "code"};
    const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT};
    push_keys_t *k = push_keys_new(keyed, names, 2, 3);
    odp_buf_t *bin = odp_buf_new();
    const char rows[] = "1\ta\n2\tb\n3\tc\n";
    assert_int_equal(copybin_rows(bin, rows, sizeof rows - 1, types, 2, push_keys_tap(k, NULL)), 0);
    assert_false(push_keys_lost(k));
    const char more[] = "4\td\n";
    assert_int_equal(copybin_rows(bin, more, sizeof more - 1, types, 2, push_keys_tap(k, NULL)), 0);
    assert_true(push_keys_lost(k));
    push_keys_destroy(&k);
    k = push_keys_new(keyed, names, 2, 100);
    push_keys_give_up(k);
    assert_true(push_keys_lost(k));
    odp_buf_destroy(&bin);
    push_keys_destroy(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s_keys),       cmocka_unit_test(s_stable), cmocka_unit_test(s_many),
        cmocka_unit_test(s_only_nulls), cmocka_unit_test(s_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
