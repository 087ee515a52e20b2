/*  rows: PostgreSQL result rows as protocol values, and lists of them as replies.

    Shared by the registrar's handlers (registry.c, catalogue.c, push.c) so that every
    record is read from the database the same way: NULL is an absent field, timestamps
    are ISO 8601 UTC with milliseconds, text[] columns become lists of text. */
#ifndef ODP_REGISTRAR_ROWS_H
#define ODP_REGISTRAR_ROWS_H

#include "registrar.h"

/*  A timestamptz column as the protocol's time text, 2026-11-27T07:30:00.123Z. */
#define ROWS_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*  Column values; every one is absent when the column is NULL. */
odp_val_t rows_col(PGresult *r, int row, int col);
odp_val_t rows_int(PGresult *r, int row, int col);
odp_val_t rows_num(PGresult *r, int row, int col);
odp_val_t rows_bool(PGresult *r, int row, int col);

/*  A one-dimensional text[] column (its text output, {a,"b c"}) as a list of text. The
    list and its unescaped items are allocated in zone, which must outlive the value. */
odp_val_t rows_strs(PGresult *r, int row, int col, msgpack_zone *zone);

/*  The reverse: n text values as a text[] literal for a text-format parameter
    ($n::text[]). Every item is quoted, so any text survives. Caller frees. */
char *rows_array_literal(const odp_val_t *items, size_t n);

/*  Fill one record (an odp_<ident>_t, zeroed) from row of r. zone is for rows_strs. */
typedef void (*rows_fill_fn)(PGresult *r, int row, void *rec, msgpack_zone *zone);

/*  Pack the rows of r as a msgpack array of records into buf, which this initialises
    and the caller destroys either way. 0 / -1 (a record that breaks def). */
int rows_encode(PGresult *r, const odp_msgdef_t *def, rows_fill_fn fill, size_t size,
                msgpack_sbuffer *buf);

/*  Reply {items: [record, ...]} with one record per row, each filled by fill into a
    struct of size bytes and encoded by def. Clears r. 0, or -1 with the error set. */
int rows_pack(odp_req_t *req, PGresult *r, const odp_msgdef_t *def, rows_fill_fn fill, size_t size);

/*  A present value that is YYYY-MM-DD, a real calendar date (odp_parse_date). */
bool rows_valid_date(const odp_val_t *v);

#endif
