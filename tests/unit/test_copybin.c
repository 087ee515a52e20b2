/*  test_copybin: the registrar's COPY binary encoder against PostgreSQL's own bytes.

    Every expected byte below was produced by PostgreSQL 15 itself: the per-type values by
    its send functions (int8send, numeric_send, date_send, boolsend, textsend), the table
    by `COPY ... TO STDOUT WITH (FORMAT binary)` of a table that `COPY ... FROM STDIN`
    had read from exactly the text rows given here. The encoder must write the same
    bytes, so that PostgreSQL reads the same values from either format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "services/registrar/copybin.h"

/*  One field of the given type from text (without its line end): its length and value
    as the encoder writes them, after the row's field count of 1. */
static void s_field(loader_type_t type, const char *text, const char *want, size_t wantlen)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", text);
    odp_buf_t *out = odp_buf_new();
    assert_int_equal(copybin_rows(out, line, (size_t)n, &type, 1, NULL), 0);
    assert_int_equal(odp_buf_size(out), 2 + wantlen);
    assert_memory_equal(odp_buf_data(out), "\x00\x01", 2);
    if (memcmp(odp_buf_data(out) + 2, want, wantlen) != 0) {
        char got[200] = "";
        for (size_t i = 0; i < wantlen && i < 60; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%02x",
                     (unsigned char)odp_buf_data(out)[2 + i]);
        fail_msg("'%s' encodes as %s", text, got);
    }
    odp_buf_destroy(&out);
}

#define S_FIELD(type, text, want) s_field(type, text, want, sizeof want - 1)

static void s_bigint(void **state)
{
    (void)state;
    S_FIELD(LOADER_INTEGER, "-1", "\x00\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xff");
    S_FIELD(LOADER_INTEGER, "-9223372036854775808",
            "\x00\x00\x00\x08\x80\x00\x00\x00\x00\x00\x00\x00");
    S_FIELD(LOADER_INTEGER, "+42", "\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x2a");
}

static void s_date(void **state)
{
    (void)state;
    S_FIELD(LOADER_DATE, "2000-01-01", "\x00\x00\x00\x04\x00\x00\x00\x00");
    S_FIELD(LOADER_DATE, "1999-12-31", "\x00\x00\x00\x04\xff\xff\xff\xff");
    S_FIELD(LOADER_DATE, "0001-01-01", "\x00\x00\x00\x04\xff\xf4\xdb\xf9");
}

static void s_numeric(void **state)
{
    (void)state;
    /*  ndigits, weight, sign, display scale, then base-10000 digits */
    S_FIELD(LOADER_NUMERIC, "1.50",
            "\x00\x00\x00\x0c\x00\x02\x00\x00\x00\x00\x00\x02\x00\x01\x13\x88");
    S_FIELD(LOADER_NUMERIC, "-0.0015", "\x00\x00\x00\x0a\x00\x01\xff\xff\x40\x00\x00\x04\x00\x0f");
    S_FIELD(LOADER_NUMERIC, "12345678.9",
            "\x00\x00\x00\x0e\x00\x03\x00\x01\x00\x00\x00\x01\x04\xd2\x16\x2e\x23\x28");
}

static void s_boolean_text_null(void **state)
{
    (void)state;
    S_FIELD(LOADER_BOOLEAN, "t", "\x00\x00\x00\x01\x01");
    S_FIELD(LOADER_BOOLEAN, "f", "\x00\x00\x00\x01\x00");
    S_FIELD(LOADER_TEXT, "a\\tb", "\x00\x00\x00\x03\x61\x09\x62");
    S_FIELD(LOADER_NUMERIC, "\\N", "\xff\xff\xff\xff");
}

/*  A whole table: every type, NULLs, escapes, multi-byte text, numeric's display scale
    and exponents, the ends of the bigint and date ranges. */
static const char s_text[] =
    "1\ttab\\there\t-9223372036854775808\t1.50\t2024-02-29\tt\n"
    "2\t\\N\t+42\t-0.000\t0001-01-01\tf\n"
    "3\tback\\\\slash two\\nlines\\r\t9223372036854775807\t1e3\t9999-12-31\t\\N\n"
    "4\t逗号,引号\"\t0\t12345678901234567890.123456789\t2000-01-01\tt\n"
    "5\tx\t\\N\t1.5E-3\t1999-12-31\tf\n"
    "6\t\\b\\f\\v\t-7\t-.5e1\t\\N\tt\n"
    "7\tlong value of more than eight bytes\t007\t0\t1970-01-01\tf\n"
    "8\t中\t1\t100000000\t2024-01-04\tt\n"
    "9\ty\t2\t0.0001\t2024-01-04\tt\n"
    "10\tz\t3\t123.456e5\t2024-01-04\tt\n"
    "11\tw\t4\t1e-20\t2024-01-04\tt\n"
    "12\tv\t5\t-99999.99990000\t2024-01-04\tt\n";

static const char s_pg[] = COPYBIN_HEADER
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x08\x74\x61\x62\x09"
    "\x68\x65\x72\x65\x00\x00\x00\x08\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x02"
    "\x00\x00\x00\x00\x00\x02\x00\x01\x13\x88\x00\x00\x00\x04\x00\x00\x22\x79\x00\x00\x00\x01"
    "\x01"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x02\xff\xff\xff\xff\x00\x00\x00\x08"
    "\x00\x00\x00\x00\x00\x00\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00"
    "\x00\x04\xff\xf4\xdb\xf9\x00\x00\x00\x01\x00"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x15\x62\x61\x63\x6b"
    "\x5c\x73\x6c\x61\x73\x68\x20\x74\x77\x6f\x0a\x6c\x69\x6e\x65\x73\x0d\x00\x00\x00\x08\x7f"
    "\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x0a\x00\x01\x00\x00\x00\x00\x00\x00\x03\xe8\x00"
    "\x00\x00\x04\x00\x2c\x95\xd3\xff\xff\xff\xff"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x0e\xe9\x80\x97\xe5"
    "\x8f\xb7\x2c\xe5\xbc\x95\xe5\x8f\xb7\x22\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x18\x00\x08\x00\x04\x00\x00\x00\x09\x04\xd2\x16\x2e\x23\x34\x0d\x80\x1e\xd2"
    "\x04\xd2\x16\x2e\x23\x28\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x01"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x01\x78\xff\xff\xff"
    "\xff\x00\x00\x00\x0a\x00\x01\xff\xff\x00\x00\x00\x04\x00\x0f\x00\x00\x00\x04\xff\xff\xff"
    "\xff\x00\x00\x00\x01\x00"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x03\x08\x0c\x0b\x00"
    "\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xf9\x00\x00\x00\x0a\x00\x01\x00\x00\x40\x00\x00"
    "\x00\x00\x05\xff\xff\xff\xff\x00\x00\x00\x01\x01"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x23\x6c\x6f\x6e\x67"
    "\x20\x76\x61\x6c\x75\x65\x20\x6f\x66\x20\x6d\x6f\x72\x65\x20\x74\x68\x61\x6e\x20\x65\x69"
    "\x67\x68\x74\x20\x62\x79\x74\x65\x73\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x07\x00"
    "\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\xff\xff\xd5\x33\x00\x00\x00"
    "\x01\x00"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00\x03\xe4\xb8\xad\x00"
    "\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x0a\x00\x01\x00\x02\x00\x00\x00"
    "\x00\x00\x01\x00\x00\x00\x04\x00\x00\x22\x41\x00\x00\x00\x01\x01"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x01\x79\x00\x00\x00"
    "\x08\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x0a\x00\x01\xff\xff\x00\x00\x00\x04\x00"
    "\x01\x00\x00\x00\x04\x00\x00\x22\x41\x00\x00\x00\x01\x01"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x01\x7a\x00\x00\x00"
    "\x08\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x0c\x00\x02\x00\x01\x00\x00\x00\x00\x04"
    "\xd2\x15\xe0\x00\x00\x00\x04\x00\x00\x22\x41\x00\x00\x00\x01\x01"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x0b\x00\x00\x00\x01\x77\x00\x00\x00"
    "\x08\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x0a\x00\x01\xff\xfb\x00\x00\x00\x14\x00"
    "\x01\x00\x00\x00\x04\x00\x00\x22\x41\x00\x00\x00\x01\x01"
    "\x00\x06\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x00\x00\x01\x76\x00\x00\x00"
    "\x08\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x0e\x00\x03\x00\x01\x40\x00\x00\x08\x00"
    "\x09\x27\x0f\x27\x0f\x00\x00\x00\x04\x00\x00\x22\x41\x00\x00\x00\x01\x01" COPYBIN_TRAILER;

static void s_table(void **state)
{
    (void)state;
    static const loader_type_t types[] = {LOADER_INTEGER, LOADER_TEXT, LOADER_INTEGER,
                                          LOADER_NUMERIC, LOADER_DATE, LOADER_BOOLEAN};
    odp_buf_t *out = odp_buf_new();
    assert_int_equal(odp_buf_append(out, COPYBIN_HEADER, COPYBIN_HEADER_LEN), 0);
    assert_int_equal(copybin_rows(out, s_text, sizeof s_text - 1, types, 6, NULL), 0);
    assert_int_equal(odp_buf_append(out, COPYBIN_TRAILER, 2), 0);
    assert_int_equal(odp_buf_size(out), sizeof s_pg - 1);
    for (size_t i = 0; i < sizeof s_pg - 1; i++)
        if (odp_buf_data(out)[i] != s_pg[i])
            fail_msg("byte %zu is %02x, PostgreSQL wrote %02x", i,
                     (unsigned char)odp_buf_data(out)[i], (unsigned char)s_pg[i]);
    odp_buf_destroy(&out);
}

/*  What the encoder does not take is refused whole, the buffer as it was: the caller
    sends those rows in the text format instead. */
static void s_refused(void **state)
{
    (void)state;
    static const struct {
        loader_type_t type;
        const char *row;
    } bad[] = {
        {LOADER_TIMESTAMP, "2024-01-02 03:04\n"},  /* the session's time zone decides */
        {LOADER_TEXT, "octal \\101\n"},            /* an escape the loader never writes */
        {LOADER_INTEGER, "9223372036854775808\n"}, /* past int8 */
        {LOADER_INTEGER, "12 \n"},
        {LOADER_DATE, "2023-02-29\n"},
        {LOADER_BOOLEAN, "yes\n"},
        {LOADER_NUMERIC, "1e\n"},
        {LOADER_TEXT, "no line end"},
    };
    odp_buf_t *out = odp_buf_new();
    assert_int_equal(odp_buf_append(out, "kept", 4), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char rows[128];
        /*  A good row first: it must go again with the bad one. */
        int n = snprintf(rows, sizeof rows, "\\N\n%s", bad[i].row);
        if (copybin_rows(out, rows, (size_t)n, &bad[i].type, 1, NULL) == 0)
            fail_msg("'%s' was encoded", bad[i].row);
        assert_int_equal(odp_buf_size(out), 4);
        assert_string_equal(odp_buf_data(out), "kept");
    }
    /*  Two fields where the types say one. */
    loader_type_t one = LOADER_TEXT;
    assert_int_equal(copybin_rows(out, "a\tb\n", 4, &one, 1, NULL), -1);
    assert_int_equal(odp_buf_size(out), 4);
    odp_buf_destroy(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s_bigint),  cmocka_unit_test(s_date),
        cmocka_unit_test(s_numeric), cmocka_unit_test(s_boolean_text_null),
        cmocka_unit_test(s_table),   cmocka_unit_test(s_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
