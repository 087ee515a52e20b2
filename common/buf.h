/*  buf: the one growable byte buffer (czmq style: new, destroy, accessors).

    Bytes are appended at the end, either copied in (odp_buf_append) or written in place
    into room asked for first (odp_buf_reserve, then odp_buf_extend with what was
    written): the loader and the binary COPY encoder write rows straight into the buffer.
    Every size computation is checked: a request that would overflow size_t fails like
    an allocation that fails, and leaves the buffer as it was.

    The data is always followed by a NUL byte that is not counted in the size, so text
    in a buffer can be handed to string functions; the data may hold NULs of its own. */
#ifndef ODP_BUF_H
#define ODP_BUF_H

#include <stddef.h>

typedef struct odp_buf_t odp_buf_t;

/*  An empty buffer; NULL when out of memory. */
odp_buf_t *odp_buf_new(void);
void odp_buf_destroy(odp_buf_t **self_p);

/*  Copy len bytes of data to the end. 0, or -1 (overflow, out of memory: unchanged). */
int odp_buf_append(odp_buf_t *self, const void *data, size_t len);

/*  Make room for extra more bytes and return where they go (the current end), or NULL
    (overflow, out of memory: unchanged). The room stays valid until the next call that
    may grow the buffer. */
char *odp_buf_reserve(odp_buf_t *self, size_t extra);

/*  The caller wrote n bytes at the end, into room from odp_buf_reserve: count them. */
void odp_buf_extend(odp_buf_t *self, size_t n);

/*  Keep the first size bytes (size at most the current size). */
void odp_buf_truncate(odp_buf_t *self, size_t size);

/*  Drop the first n bytes (at most the size); the rest moves to the front. */
void odp_buf_consume(odp_buf_t *self, size_t n);

/*  Empty, keeping the memory for reuse. */
void odp_buf_reset(odp_buf_t *self);

/*  The bytes (never NULL) and how many there are. */
char *odp_buf_data(odp_buf_t *self);
size_t odp_buf_size(const odp_buf_t *self);

#endif
