/*  parse: the one strict reader of integers, dates and timestamps, and the one UTF-8
    cutter. Input is (pointer, length), not NUL-terminated: values come from messages,
    CSV fields and JSON strings. Each accepts exactly what PostgreSQL's own input
    function reads for the value, nothing looser (no blanks, no partial parse), so what
    passes here is stored as sent. */
#ifndef ODP_PARSE_H
#define ODP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  An optional sign and one or more decimal digits, nothing else, whose value lies in
    [min, max]. *out (may be NULL) receives it. */
bool odp_parse_int(const char *s, size_t n, int64_t min, int64_t max, int64_t *out);

/*  YYYY-MM-DD, a real calendar date of years 0001-9999 (leap years counted). *days (may
    be NULL) receives the days from 2000-01-01, PostgreSQL's date epoch (its date2j). */
bool odp_parse_date(const char *s, size_t n, int32_t *days);

/*  An ISO 8601 date and time as PostgreSQL's timestamptz input reads it:
    YYYY-MM-DD[(T|space)HH:MM[:SS[.fraction]][Z|(+|-)HH[:MM]]]. A date alone is its
    midnight, as PostgreSQL reads it; seconds may be 60 (a leap second), a zone at most
    15:59. */
bool odp_parse_timestamp(const char *s, size_t n);

/*  The length of s[0..n) cut to at most max bytes without splitting a UTF-8 character:
    n when n <= max. Only s[0..max) is read, so it also serves a buffer that was already
    cut at max bytes (vsnprintf's). */
size_t odp_utf8_cut(const char *s, size_t n, size_t max);

#endif
