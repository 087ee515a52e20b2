/*  loader: pushed dataset bytes in, typed COPY rows and rejected rows out.

    The registrar never holds a whole file: bytes arrive chunk by chunk and the loader
    keeps only the current partial row. It converts the declared encoding to UTF-8
    (iconv; GB18030 included), strips a byte-order mark, parses CSV with libcsv (quoted
    fields, embedded commas, quotes and newlines, CRLF) or JSON Lines with jansson, checks
    the header against the data dictionary, and types every value by its column.

    Each data row (numbered from 1, header excluded) ends up exactly once in one of two
    buffers, both in PostgreSQL COPY text format:
      staged   : row_no \t col_1 \t ... \t col_n \n        (dictionary order; NULL as \N)
      rejected : row_no \t reason \t detail \t raw \n
    reason is one of: ragged (wrong number of fields), type (a value that does not parse
    as its column's type), encoding (bytes invalid in the declared encoding), shape
    (JSON Lines: not an object, or keys not in the dictionary). Empty values are NULL:
    required, unique, allowed values, ranges, patterns and check digits are the
    reviewer's, not the loader's.

    Resumability: loader_boundary() is the byte offset, in the raw stream, just after the
    last complete row. Everything before it is fully accounted for in the buffers; a push
    that resumes sends bytes again from there into a loader made with loader_resume(). */
#ifndef ODP_LOADER_H
#define ODP_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/codec.h"

typedef enum {
    LOADER_TEXT,
    LOADER_INTEGER,   /* int8 range */
    LOADER_NUMERIC,   /* [+-]digits[.digits][e[+-]digits] */
    LOADER_DATE,      /* YYYY-MM-DD, a real calendar date */
    LOADER_TIMESTAMP, /* YYYY-MM-DD[[T ]HH:MM[:SS[.frac]][Z|+HH[:MM]|-HH[:MM]]] */
    LOADER_BOOLEAN    /* true/false/t/f/1/0/yes/no/是/否 (any ASCII case) */
} loader_type_t;

typedef enum { LOADER_CSV, LOADER_JSONL } loader_format_t;
typedef enum { LOADER_UTF8, LOADER_GB18030 } loader_encoding_t;

typedef struct {
    const char *name; /* UTF-8, as in the dictionary */
    loader_type_t type;
} loader_col_t;

typedef struct loader_t loader_t;

/*  cols are copied. max_row_length bounds the raw bytes of one row (RULE_ROW_LENGTH). */
loader_t *loader_new(loader_format_t format, loader_encoding_t encoding, const loader_col_t *cols,
                     size_t ncols, size_t max_row_length);
void loader_destroy(loader_t **self_p);

/*  Continue a stream at raw offset (a boundary from before), rows data rows already
    counted, rejected of them rejected, with the header already read and mapped by colmap
    (colmap[i] = dictionary column of file column i; NULL when the header was not read
    yet, i.e. offset 0). */
int loader_resume(loader_t *self, int64_t offset, int64_t rows, int64_t rejected, const int *colmap,
                  size_t ncolmap);

/*  The next raw bytes of the stream; rows are appended to staged and rejected, which the
    caller drains (odp_buf_reset) after each call. 0, or -1 with err set: HEADER_MISMATCH (a header
    column not in the dictionary, or a dictionary column missing; message names them),
    RULE_ROW_LENGTH (a row longer than max_row_length). After -1 the loader is unusable. */
int loader_feed(loader_t *self, const char *data, size_t len, odp_buf_t *staged,
                odp_buf_t *rejected, odp_error_t *err);

/*  End of stream: a last row without a line end counts; an unterminated quoted field is
    a rejected row (ragged). A file with no header at all is HEADER_MISMATCH. */
int loader_finish(loader_t *self, odp_buf_t *staged, odp_buf_t *rejected, odp_error_t *err);

int64_t loader_boundary(const loader_t *self); /* raw offset after the last complete row */
int64_t loader_rows(const loader_t *self);     /* data rows completed (staged + rejected) */
int64_t loader_rejected(const loader_t *self);
/*  The header mapping (file column i -> dictionary column), once the header is read;
    NULL before. *n receives the number of file columns. */
const int *loader_colmap(const loader_t *self, size_t *n);

#endif
