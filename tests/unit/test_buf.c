/*  test_buf: the growable buffer - appends, in-place writes, cuts from either end, and
    sizes that would overflow, which must fail and leave the buffer as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void s_empty(void **state)
{
    (void)state;
    odp_buf_t *b = odp_buf_new();
    assert_non_null(b);
    assert_int_equal(odp_buf_size(b), 0);
    assert_non_null(odp_buf_data(b));
    assert_string_equal(odp_buf_data(b), "");
    assert_int_equal(odp_buf_append(b, NULL, 0), 0);
    assert_int_equal(odp_buf_size(b), 0);
    odp_buf_destroy(&b);
    assert_null(b);
    odp_buf_destroy(&b); /* twice is harmless, as in czmq */
}

/*  Many appends of different lengths: every byte in order, NUL after the last. */
static void s_append_grows(void **state)
{
    (void)state;
    odp_buf_t *b = odp_buf_new();
    char want[100000];
    size_t len = 0;
    for (size_t i = 0; len + i % 97 < sizeof want; i++) {
        char piece[97];
        for (size_t k = 0; k < i % 97; k++)
            piece[k] = (char)('a' + (i + k) % 26);
        assert_int_equal(odp_buf_append(b, piece, i % 97), 0);
        memcpy(want + len, piece, i % 97);
        len += i % 97;
    }
    assert_int_equal(odp_buf_size(b), len);
    assert_memory_equal(odp_buf_data(b), want, len);
    assert_int_equal(odp_buf_data(b)[len], '\0');
    odp_buf_destroy(&b);
}

/*  Room written in place counts only once extended; a truncate takes bytes back. */
static void s_reserve_extend(void **state)
{
    (void)state;
    odp_buf_t *b = odp_buf_new();
    assert_int_equal(odp_buf_append(b, "row 1\n", 6), 0);
    char *end = odp_buf_reserve(b, 10000);
    assert_non_null(end);
    assert_ptr_equal(end, odp_buf_data(b) + 6);
    memcpy(end, "row 2\n", 6);
    assert_int_equal(odp_buf_size(b), 6);
    odp_buf_extend(b, 6);
    assert_string_equal(odp_buf_data(b), "row 1\nrow 2\n");
    odp_buf_truncate(b, 6);
    assert_string_equal(odp_buf_data(b), "row 1\n");
    odp_buf_truncate(b, 100); /* longer than the data: nothing happens */
    assert_int_equal(odp_buf_size(b), 6);
    odp_buf_reset(b);
    assert_int_equal(odp_buf_size(b), 0);
    assert_string_equal(odp_buf_data(b), "");
    odp_buf_destroy(&b);
}

static void s_consume(void **state)
{
    (void)state;
    odp_buf_t *b = odp_buf_new();
    assert_int_equal(odp_buf_append(b, "header\npartial", 14), 0);
    odp_buf_consume(b, 7);
    assert_int_equal(odp_buf_size(b), 7);
    assert_string_equal(odp_buf_data(b), "partial");
    odp_buf_consume(b, 0);
    assert_string_equal(odp_buf_data(b), "partial");
    odp_buf_consume(b, 50);
    assert_int_equal(odp_buf_size(b), 0);
    assert_string_equal(odp_buf_data(b), "");
    odp_buf_destroy(&b);
}

/*  A size that cannot be represented fails before any allocation is tried, and the
    buffer keeps its bytes. */
static void s_overflow(void **state)
{
    (void)state;
    odp_buf_t *b = odp_buf_new();
    assert_int_equal(odp_buf_append(b, "keep", 4), 0);
    assert_null(odp_buf_reserve(b, SIZE_MAX));
    assert_null(odp_buf_reserve(b, SIZE_MAX - 4)); /* 4 + it + the NUL wraps */
    assert_int_equal(odp_buf_append(b, "x", SIZE_MAX - 2), -1);
    assert_int_equal(odp_buf_size(b), 4);
    assert_string_equal(odp_buf_data(b), "keep");
    assert_int_equal(odp_buf_append(b, "!", 1), 0);
    assert_string_equal(odp_buf_data(b), "keep!");
    odp_buf_destroy(&b);
}

/*  Binary data with NULs keeps its size: the NUL after it is extra. */
static void s_binary(void **state)
{
    (void)state;
    odp_buf_t *b = odp_buf_new();
    static const char bytes[] = {'P', 0, 'G', 0, (char)0xff};
    assert_int_equal(odp_buf_append(b, bytes, sizeof bytes), 0);
    assert_int_equal(odp_buf_size(b), sizeof bytes);
    assert_memory_equal(odp_buf_data(b), bytes, sizeof bytes);
    odp_buf_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s_empty),          cmocka_unit_test(s_append_grows),
        cmocka_unit_test(s_reserve_extend), cmocka_unit_test(s_consume),
        cmocka_unit_test(s_overflow),       cmocka_unit_test(s_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
