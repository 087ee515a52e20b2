/*  codec: msgpack bodies, safe on hostile input, driven by the declarations in proto/.

    Decoding is two steps. odp_body_check() walks the raw bytes once, without allocating,
    and refuses anything msgpack-c should never see: bytes that are not msgpack, a value
    followed by trailing bytes, nesting deeper than ODP_MAX_DEPTH, or a container whose
    declared count is larger than the bytes left (msgpack-c allocates count * 24 bytes up
    front: issue #1013, five bytes can ask for ~96 GB). Only then does msgpack-c unpack the
    body into a per-message zone, and odp_decode_fields() checks every declared field's
    presence, type, length, range and UTF-8, rejecting unknown and duplicate fields.

    Strings are (ptr, len) views into the message and the zone: they are not NUL-terminated
    and live as long as the frame and the zone they came from.
*/
#ifndef ODP_CODEC_H
#define ODP_CODEC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/odp_proto.h"

#define ODP_MAX_DEPTH 16

typedef struct {
    bool present;
    const char *str; /* STR, BIN: view, not NUL-terminated */
    size_t len;
    int64_t i;                 /* INT */
    double d;                  /* NUM */
    bool b;                    /* BOOL */
    const msgpack_object *obj; /* STRS, ANY on decode; may be set for encode */
    const void *raw;           /* ANY on encode: already-packed msgpack bytes */
    size_t raw_len;
} odp_val_t;

typedef struct {
    const char *name;
    odp_type_t type;
    bool required;
    size_t max_len;
    int64_t min;
    int64_t max;
    size_t offset; /* of this field's odp_val_t in the message struct */
} odp_field_t;

typedef struct {
    const char *name; /* command or topic; "" for reply shapes */
    const char *ident;
    const odp_field_t *fields;
    size_t nfields;
} odp_msgdef_t;

typedef struct {
    odp_err_t code;
    char field[64];
    char message[256];
} odp_error_t;

/*  One struct per declared message, one odp_val_t per field, named as declared. */
#define ODP_STRUCT_FIELD(name, type, req, maxlen, min, max) odp_val_t name;
#define ODP_STRUCT(ident, cmd)                                                                     \
    typedef struct {                                                                               \
        ODP_FIELDS_##ident(ODP_STRUCT_FIELD) char _end;                                            \
    } odp_##ident##_t;                                                                             \
    extern const odp_msgdef_t odp_def_##ident;
ODP_REQUESTS(ODP_STRUCT)
ODP_EVENTS(ODP_STRUCT)
ODP_REPLIES(ODP_STRUCT)
#undef ODP_STRUCT

/*  Table of requests and events, for lookup by command or topic. */
extern const odp_msgdef_t *const odp_requests[];
extern const size_t odp_nrequests;
extern const odp_msgdef_t *const odp_events[];
extern const size_t odp_nevents;
const odp_msgdef_t *odp_request_find(const char *command, size_t len);
const odp_msgdef_t *odp_event_find(const char *topic, size_t len);

/*  Error code table. */
const char *odp_err_name(odp_err_t code);
int odp_err_status(odp_err_t code);
const char *odp_err_summary(odp_err_t code);
/*  Look up a code by name (for clients decoding replies); ODP_E__COUNT if unknown. */
odp_err_t odp_err_from_name(const char *name, size_t len);

/*  Fill *e with code, field (may be NULL) and a printf-style message; returns -1. */
int odp_error_set(odp_error_t *e, odp_err_t code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*  Validate raw bytes: exactly one msgpack value, depth <= ODP_MAX_DEPTH, every container
    count plausible for the bytes that follow. Allocates nothing. 0 or -1 with *e set. */
int odp_body_check(const void *data, size_t size, odp_error_t *e);

/*  odp_body_check(), then unpack into zone. *out is valid while zone and data live. */
int odp_body_unpack(const void *data, size_t size, msgpack_zone *zone, msgpack_object *out,
                    odp_error_t *e);

/*  Check obj against def and fill the message struct at out (odp_<ident>_t). */
int odp_decode_fields(const odp_msgdef_t *def, const msgpack_object *obj, void *out,
                      odp_error_t *e);

/*  Both of the above. */
int odp_decode(const odp_msgdef_t *def, const void *data, size_t size, msgpack_zone *zone,
               void *out, odp_error_t *e);

/*  Pack the present fields of the struct at in as a map. A missing required field, or a
    value that breaks its declaration, is a programmer error: returns -1 and logs nothing.  */
int odp_encode(const odp_msgdef_t *def, const void *in, msgpack_packer *pk);

/*  Pack into a fresh sbuffer the caller owns (msgpack_sbuffer_destroy). 0 / -1. */
int odp_encode_buf(const odp_msgdef_t *def, const void *in, msgpack_sbuffer *buf);

/*  Value builders. */
odp_val_t odp_v_str(const char *s); /* NULL gives an absent value */
odp_val_t odp_v_strn(const char *s, size_t len);
odp_val_t odp_v_int(int64_t i);
odp_val_t odp_v_num(double d);
odp_val_t odp_v_bool(bool b);
odp_val_t odp_v_bin(const void *p, size_t len);
odp_val_t odp_v_raw(const void *packed, size_t len);

/*  Copy a STR value into buf as a C string; returns buf, or "" when absent. Truncates to
    size - 1 (declared lengths make truncation a programmer error; callers size buf). */
char *odp_v_cstr(const odp_val_t *v, char *buf, size_t size);
bool odp_v_eq(const odp_val_t *v, const char *s);

/*  Strict UTF-8 check (no overlongs, no surrogates, nothing above U+10FFFF, no NUL:
    PostgreSQL text cannot hold U+0000). */
bool odp_utf8_valid(const char *s, size_t len);

/*  Offset of the first byte of s that is not strict UTF-8 (NUL included), or len when all
    is valid; *bad receives the length of the invalid sequence there (the maximal subpart
    that one U+FFFD replaces). Fast on ASCII and common CJK: it is on the push path. */
size_t odp_utf8_scan(const char *s, size_t len, size_t *bad);

#endif
