/*  copybin: the loader's rows, in COPY's text format, turned into COPY's binary format.

    PostgreSQL parses COPY's text format and runs every type's input function (date_in
    alone is a tokenizer); its binary format skips both, which takes about a quarter off
    the time PostgreSQL spends on a COPY - and PostgreSQL's core is what a push waits for.
    The loader has already typed and checked every value, so the conversion writes, for
    bigint, numeric, date, boolean and text values, exactly what the type's input
    function would make of the text (numeric keeps its display scale; text is de-escaped
    as COPY does). libpq offers no encoder for the format. A timestamp is not converted
    (a timestamp without a zone is read in the session's time zone: that stays
    PostgreSQL's business), nor is anything the conversion does not expect: the caller
    sends such rows as text, to the same COPY semantics. */
#ifndef ODP_REGISTRAR_COPYBIN_H
#define ODP_REGISTRAR_COPYBIN_H

#include "loader.h"

#include "common/buf.h"

/*  The binary format's header (signature, flags 0, header extension length 0) and
    trailer (a field count of -1). */
#define COPYBIN_HEADER     "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0"
#define COPYBIN_HEADER_LEN 19
#define COPYBIN_TRAILER    "\377\377"

/*  What a caller sees of the values it converts: fn(arg, f, text, len) for each value of a
    field f with fields[f], its text as the loader wrote it (escaped; \N for NULL), in the
    order of the fields; then next, unless NULL, sees them too. */
typedef struct copybin_tap {
    const bool *fields;
    void (*fn)(void *arg, size_t field, const char *text, size_t len);
    void *arg;
    const struct copybin_tap *next;
} copybin_tap_t;

/*  Append the rows of text - lines ending in '\n', fields separated by tabs, \N for
    NULL, as loader_feed() writes them - to out in the binary format, without header or
    trailer. types[f] is field f's type (the staging table's row_no first); tap, unless
    NULL, sees the values of its fields. -1 when anything is not as the loader writes it,
    or out of memory: out is then as it was (tap may have seen some rows). */
int copybin_rows(odp_buf_t *out, const char *text, size_t len, const loader_type_t *types,
                 size_t ntypes, const copybin_tap_t *tap);

#endif
