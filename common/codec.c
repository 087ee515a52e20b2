/*  codec: msgpack bodies, safe on hostile input, driven by the declarations in proto/.

    The raw-byte walker below is written against the msgpack format spec rather than on
    top of msgpack-c, because its whole job is to stop bytes reaching msgpack-c that would
    make it allocate or recurse without bound. Everything after the walk works on
    msgpack_object trees that are already known to be small and shallow.
*/
#include "codec.h"

#include "parse.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*  ---------------------------------------------------------------------------------------
    Descriptor tables.

    A field list calls F(name, TYPE, REQ, max_len, min, max) and never tells F which
    message it belongs to, yet offsetof needs the message type. So each list is first
    turned into a comma list of tuples, "(name, TYPE, ...), (name, TYPE, ...),", and a
    counted map then hands every tuple to S_FIELD together with the message ident. A
    tuple survives any depth of macro expansion unchanged, which is why the envelope
    fields that events pull in through ODP_EVENT_ENVELOPE(F) work as well.
    The map is unrolled: a message may have at most 24 fields (more fails to compile).  */

#define S_TUPLE(...)        (__VA_ARGS__),
#define S_UNPAREN(...)      __VA_ARGS__
#define S_CALL(macro, args) macro args
#define S_CAT(a, b)         S_CAT_(a, b)
#define S_CAT_(a, b)        a##b

#define S_NARGS(...)                                                                               \
    S_NARGS_(__VA_ARGS__, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, \
             6, 5, 4, 3, 2, 1, 0)
#define S_NARGS_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,  \
                 a19, a20, a21, a22, a23, a24, a25, n, ...)                                        \
    n

/*  The comma list ends in an empty argument, so k fields give k + 1 arguments and S_MAP_1
    is the terminator that swallows the empty one. */
#define S_MAP(ident, ...) S_CAT(S_MAP_, S_NARGS(__VA_ARGS__))(ident, __VA_ARGS__)
#define S_EACH(ident, t)  S_CALL(S_FIELD, (ident, S_UNPAREN t))
#define S_MAP_1(ident, end)
#define S_MAP_2(ident, t, ...)  S_EACH(ident, t) S_MAP_1(ident, __VA_ARGS__)
#define S_MAP_3(ident, t, ...)  S_EACH(ident, t) S_MAP_2(ident, __VA_ARGS__)
#define S_MAP_4(ident, t, ...)  S_EACH(ident, t) S_MAP_3(ident, __VA_ARGS__)
#define S_MAP_5(ident, t, ...)  S_EACH(ident, t) S_MAP_4(ident, __VA_ARGS__)
#define S_MAP_6(ident, t, ...)  S_EACH(ident, t) S_MAP_5(ident, __VA_ARGS__)
#define S_MAP_7(ident, t, ...)  S_EACH(ident, t) S_MAP_6(ident, __VA_ARGS__)
#define S_MAP_8(ident, t, ...)  S_EACH(ident, t) S_MAP_7(ident, __VA_ARGS__)
#define S_MAP_9(ident, t, ...)  S_EACH(ident, t) S_MAP_8(ident, __VA_ARGS__)
#define S_MAP_10(ident, t, ...) S_EACH(ident, t) S_MAP_9(ident, __VA_ARGS__)
#define S_MAP_11(ident, t, ...) S_EACH(ident, t) S_MAP_10(ident, __VA_ARGS__)
#define S_MAP_12(ident, t, ...) S_EACH(ident, t) S_MAP_11(ident, __VA_ARGS__)
#define S_MAP_13(ident, t, ...) S_EACH(ident, t) S_MAP_12(ident, __VA_ARGS__)
#define S_MAP_14(ident, t, ...) S_EACH(ident, t) S_MAP_13(ident, __VA_ARGS__)
#define S_MAP_15(ident, t, ...) S_EACH(ident, t) S_MAP_14(ident, __VA_ARGS__)
#define S_MAP_16(ident, t, ...) S_EACH(ident, t) S_MAP_15(ident, __VA_ARGS__)
#define S_MAP_17(ident, t, ...) S_EACH(ident, t) S_MAP_16(ident, __VA_ARGS__)
#define S_MAP_18(ident, t, ...) S_EACH(ident, t) S_MAP_17(ident, __VA_ARGS__)
#define S_MAP_19(ident, t, ...) S_EACH(ident, t) S_MAP_18(ident, __VA_ARGS__)
#define S_MAP_20(ident, t, ...) S_EACH(ident, t) S_MAP_19(ident, __VA_ARGS__)
#define S_MAP_21(ident, t, ...) S_EACH(ident, t) S_MAP_20(ident, __VA_ARGS__)
#define S_MAP_22(ident, t, ...) S_EACH(ident, t) S_MAP_21(ident, __VA_ARGS__)
#define S_MAP_23(ident, t, ...) S_EACH(ident, t) S_MAP_22(ident, __VA_ARGS__)
#define S_MAP_24(ident, t, ...) S_EACH(ident, t) S_MAP_23(ident, __VA_ARGS__)
#define S_MAP_25(ident, t, ...) S_EACH(ident, t) S_MAP_24(ident, __VA_ARGS__)

/*  The extra level lets the field list expand into separate arguments before S_MAP
    counts them. */
#define S_FIELDS_(ident, list) S_MAP(ident, list)
#define S_FIELDS(ident)        S_FIELDS_(ident, ODP_FIELDS_##ident(S_TUPLE))

#define S_FIELD(ident, fname, ftype, freq, fmaxlen, fmin, fmax)                                    \
    {.name = #fname,                                                                               \
     .type = ODP_T_##ftype,                                                                        \
     .required = (freq) != 0,                                                                      \
     .max_len = (fmaxlen),                                                                         \
     .min = (fmin),                                                                                \
     .max = (fmax),                                                                                \
     .offset = offsetof(odp_##ident##_t, fname)},

/*  Every array ends in a NULL-named sentinel: C has no empty initialiser lists, and a
    message without fields (health) still needs an array. nfields excludes it, and fields
    is never NULL, so fields + nfields is always a valid pointer. */
#define S_DEF(ident, cmd)                                                                          \
    static const odp_field_t s_fields_##ident[] = {S_FIELDS(ident){.name = NULL}};                 \
    const odp_msgdef_t odp_def_##ident = {cmd, #ident, s_fields_##ident,                           \
                                          sizeof(s_fields_##ident) / sizeof(odp_field_t) - 1};
ODP_REQUESTS(S_DEF)
ODP_EVENTS(S_DEF)
ODP_REPLIES(S_DEF)
#undef S_DEF

#define S_REF(ident, cmd) &odp_def_##ident,
const odp_msgdef_t *const odp_requests[] = {ODP_REQUESTS(S_REF)};
const size_t odp_nrequests = sizeof(odp_requests) / sizeof(odp_requests[0]);
const odp_msgdef_t *const odp_events[] = {ODP_EVENTS(S_REF)};
const size_t odp_nevents = sizeof(odp_events) / sizeof(odp_events[0]);
#undef S_REF

static const odp_msgdef_t *s_def_find(const odp_msgdef_t *const *table, size_t count,
                                      const char *name, size_t len)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        const char *candidate = table[i]->name;
        if (strlen(candidate) == len && memcmp(candidate, name, len) == 0)
            return table[i];
    }
    return NULL;
}

const odp_msgdef_t *odp_request_find(const char *command, size_t len)
{
    return s_def_find(odp_requests, odp_nrequests, command, len);
}

const odp_msgdef_t *odp_event_find(const char *topic, size_t len)
{
    return s_def_find(odp_events, odp_nevents, topic, len);
}

/*  ---------------------------------------------------------------------------------------
    Error codes. Row 0 is ODP_OK so that the enum value indexes the table directly.       */

static const struct {
    const char *name;
    int status;
    const char *summary;
} s_errors[] = {{"OK", 200, "success"},
#define S_ERR_ROW(code, status, summary) {#code, status, summary},
                ODP_ERRORS(S_ERR_ROW)
#undef S_ERR_ROW
};

_Static_assert(sizeof(s_errors) / sizeof(s_errors[0]) == ODP_E__COUNT,
               "error table must have one row per code");

static bool s_err_known(odp_err_t code)
{
    //  The cast folds negative values, should the enum be signed, into "too large"
    return (unsigned)code < (unsigned)ODP_E__COUNT;
}

const char *odp_err_name(odp_err_t code)
{
    return s_err_known(code) ? s_errors[code].name : "UNKNOWN";
}

int odp_err_status(odp_err_t code)
{
    return s_err_known(code) ? s_errors[code].status : 500;
}

const char *odp_err_summary(odp_err_t code)
{
    return s_err_known(code) ? s_errors[code].summary : "unknown error code";
}

odp_err_t odp_err_from_name(const char *name, size_t len)
{
    if (!name)
        return ODP_E__COUNT;
    //  ODP_OK is not an error a reply can carry, so the search starts after it
    for (int code = ODP_OK + 1; code < ODP_E__COUNT; code++) {
        const char *candidate = s_errors[code].name;
        if (strlen(candidate) == len && memcmp(candidate, name, len) == 0)
            return (odp_err_t)code;
    }
    return ODP_E__COUNT;
}

/*  ---------------------------------------------------------------------------------------
    UTF-8. Error fields and messages go back to clients inside rep_error, whose STR fields
    must be valid UTF-8, so truncation must never split a character.                     */

//  Offset of the first byte that is not strict UTF-8 (NUL included: PostgreSQL text
//  cannot hold it), or len; *bad gets the length of the invalid sequence to replace
size_t odp_utf8_scan(const char *s, size_t len, size_t *bad)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        //  Plain ASCII without NUL, eight bytes at a time
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ULL) ||
                ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
                break;
            i += 8;
        }
        if (i == len)
            break;
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c == 0) {
                *bad = 1;
                return i;
            }
            i++;
            continue;
        }
        //  Most of CJK (U+1000-U+CFFF): lead E1-EC, any two continuation bytes
        if (c >= 0xE1 && c <= 0xEC && len - i >= 3 && (p[i + 1] & 0xC0) == 0x80 &&
            (p[i + 2] & 0xC0) == 0x80) {
            i += 3;
            continue;
        }
        //  Unicode 15, table 3-7: the lead byte fixes the length and narrows the range of
        //  the second byte, which is what excludes overlongs, surrogates and > U+10FFFF
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 2;
        else if (c == 0xE0) {
            need = 3;
            lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            need = 3;
        else if (c == 0xED) {
            need = 3;
            hi = 0x9F;
        } else if (c == 0xF0) {
            need = 4;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3)
            need = 4;
        else if (c == 0xF4) {
            need = 4;
            hi = 0x8F;
        } else {
            *bad = 1;
            return i;
        }
        size_t k = 1;
        if (i + 1 < len && p[i + 1] >= lo && p[i + 1] <= hi) {
            k = 2;
            while (k < need && i + k < len && (p[i + k] & 0xC0) == 0x80)
                k++;
        }
        if (k < need) {
            *bad = k; //  the maximal subpart becomes one U+FFFD
            return i;
        }
        i += need;
    }
    return len;
}

bool odp_utf8_valid(const char *s, size_t len)
{
    if (!s)
        return len == 0;
    size_t bad;
    return odp_utf8_scan(s, len, &bad) == len;
}

//  Copy len bytes of src into dst as a C string, cut at a character boundary to fit.
static void s_copy_text(char *dst, size_t size, const char *src, size_t len)
{
    len = odp_utf8_cut(src, len, size - 1);
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

/*  Replace each invalid sequence of the C string s (the maximal subpart U+FFFD would
    stand for) by '?', in place: the text only shrinks. */
static void s_utf8_repair(char *s)
{
    size_t len = strlen(s), i = 0;
    while (i < len) {
        size_t bad = 0, ok = odp_utf8_scan(s + i, len - i, &bad);
        if (i + ok >= len)
            break;
        i += ok;
        bad = bad ? bad : 1;
        s[i] = '?';
        memmove(s + i + 1, s + i + bad, len - i - bad + 1);
        len -= bad - 1;
        i++;
    }
}

/*  Whatever the caller put together (a path cut inside a character, a name echoed from
    the request), the error reply must encode, or the client would get no code at all:
    field and message come out as UTF-8. */
int odp_error_set(odp_error_t *e, odp_err_t code, const char *field, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->code = code;
    s_copy_text(e->field, sizeof(e->field), field ? field : "", field ? strlen(field) : 0);
    int n = -1;
    if (fmt) {
        va_list args;
        va_start(args, fmt);
        n = vsnprintf(e->message, sizeof(e->message), fmt, args);
        va_end(args);
    }
    if (n < 0) {
        const char *summary = odp_err_summary(code);
        s_copy_text(e->message, sizeof(e->message), summary, strlen(summary));
    } else if ((size_t)n >= sizeof(e->message)) {
        size_t len = odp_utf8_cut(e->message, (size_t)n, sizeof(e->message) - 1);
        e->message[len] = '\0';
    }
    s_utf8_repair(e->field);
    s_utf8_repair(e->message);
    return -1;
}

/*  ---------------------------------------------------------------------------------------
    The raw walker.                                                                      */

//  What one msgpack header announces.
typedef struct {
    size_t head;    //  bytes of header, all of which must be present
    uint64_t body;  //  bytes of payload after the header (scalars, str, bin, ext)
    uint64_t count; //  declared entries (containers); a map's entries are pairs
    uint64_t items; //  values that follow: count, or 2 * count for a map
    bool container;
} s_head_t;

static uint64_t s_be(const uint8_t *p, size_t n)
{
    uint64_t value = 0;
    for (size_t i = 0; i < n; i++)
        value = (value << 8) | p[i];
    return value;
}

//  Decode the header at p (avail >= 1 bytes). Fails only on the one never-used byte 0xc1;
//  the caller checks that h->head and h->body fit.
static int s_head(const uint8_t *p, size_t avail, s_head_t *h)
{
    uint8_t b = p[0];
    size_t len_size = 0;  //  big-endian length or count after the type byte
    size_t type_size = 0; //  ext's type byte, after its length
    bool map = false;
    *h = (s_head_t){.head = 1};

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0; //  fixints, nil, false, true: one byte, nothing follows
    if (b <= 0x8f) {
        h->container = true;
        h->count = b & 0x0f;
        h->items = h->count * 2;
        return 0;
    }
    if (b <= 0x9f) {
        h->container = true;
        h->count = h->items = b & 0x0f;
        return 0;
    }
    if (b <= 0xbf) {
        h->body = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xcc:
    case 0xd0:
        h->body = 1;
        return 0;
    case 0xcd:
    case 0xd1:
        h->body = 2;
        return 0;
    case 0xca:
    case 0xce:
    case 0xd2:
        h->body = 4;
        return 0;
    case 0xcb:
    case 0xcf:
    case 0xd3:
        h->body = 8;
        return 0;
    case 0xd4: //  fixext: type byte plus 1, 2, 4, 8, 16 bytes of data
        h->body = 2;
        return 0;
    case 0xd5:
        h->body = 3;
        return 0;
    case 0xd6:
        h->body = 5;
        return 0;
    case 0xd7:
        h->body = 9;
        return 0;
    case 0xd8:
        h->body = 17;
        return 0;
    case 0xc4:
    case 0xd9:
        len_size = 1;
        break;
    case 0xc5:
    case 0xda:
        len_size = 2;
        break;
    case 0xc6:
    case 0xdb:
        len_size = 4;
        break;
    case 0xc7:
        len_size = 1;
        type_size = 1;
        break;
    case 0xc8:
        len_size = 2;
        type_size = 1;
        break;
    case 0xc9:
        len_size = 4;
        type_size = 1;
        break;
    case 0xdc:
        len_size = 2;
        h->container = true;
        break;
    case 0xdd:
        len_size = 4;
        h->container = true;
        break;
    case 0xde:
        len_size = 2;
        h->container = map = true;
        break;
    case 0xdf:
        len_size = 4;
        h->container = map = true;
        break;
    default: //  0xc1
        return -1;
    }
    h->head = 1 + len_size + type_size;
    if (avail < h->head)
        return 0; //  caller reports the truncation
    uint64_t n = s_be(p + 1, len_size);
    if (h->container) {
        h->count = n;
        h->items = map ? n * 2 : n; //  n < 2^32, so this cannot wrap
    } else
        h->body = n;
    return 0;
}

/*  Walk exactly one value at data and nothing after it. Iterative, with one counter per
    open container, so hostile nesting costs neither stack nor heap. root, if given,
    receives the first header. */
static int s_walk(const uint8_t *data, size_t size, size_t max_depth, s_head_t *root,
                  odp_error_t *e)
{
    uint64_t left[ODP_MAX_DEPTH]; //  values still to come in each open container
    size_t depth = 0;
    size_t pos = 0;
    if (max_depth > ODP_MAX_DEPTH)
        max_depth = ODP_MAX_DEPTH;
    if (!data || size == 0)
        return odp_error_set(e, ODP_E_MALFORMED, NULL, "body is empty");

    for (;;) {
        if (pos == size)
            return odp_error_set(e, ODP_E_MALFORMED, NULL,
                                 "body ends after %zu bytes, in the middle of a value", size);
        s_head_t h;
        if (s_head(data + pos, size - pos, &h))
            return odp_error_set(e, ODP_E_MALFORMED, NULL,
                                 "byte 0xc1 at offset %zu is never valid msgpack", pos);
        if (h.head > size - pos)
            return odp_error_set(e, ODP_E_MALFORMED, NULL,
                                 "body ends inside the header at offset %zu", pos);
        if (pos == 0 && root)
            *root = h;
        size_t avail = size - pos - h.head;
        if (h.container) {
            //  Checked before anything inside is read: this is what keeps msgpack-c from
            //  allocating count * sizeof(msgpack_object) for a count the body cannot hold
            if (h.items > avail)
                return odp_error_set(e, ODP_E_BAD_COUNT, NULL,
                                     "container at offset %zu declares %" PRIu64
                                     " entries but only %zu bytes follow",
                                     pos, h.count, avail);
            if (depth == max_depth)
                return odp_error_set(e, ODP_E_TOO_DEEP, NULL, "body nests deeper than %zu levels",
                                     max_depth);
            pos += h.head;
            if (h.items > 0) {
                left[depth++] = h.items;
                continue;
            }
        } else {
            if (h.body > avail)
                return odp_error_set(e, ODP_E_MALFORMED, NULL,
                                     "value at offset %zu declares %" PRIu64
                                     " bytes but only %zu follow",
                                     pos, h.body, avail);
            pos += h.head + (size_t)h.body;
        }
        //  A value is complete; it may complete its container, and that one its own
        while (depth > 0 && --left[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    if (pos != size)
        return odp_error_set(e, ODP_E_TRAILING_BYTES, NULL,
                             "body has %zu bytes after its first value", size - pos);
    return 0;
}

int odp_body_check(const void *data, size_t size, odp_error_t *e)
{
    return s_walk((const uint8_t *)data, size, ODP_MAX_DEPTH, NULL, e);
}

int odp_body_unpack(const void *data, size_t size, msgpack_zone *zone, msgpack_object *out,
                    odp_error_t *e)
{
    if (odp_body_check(data, size, e))
        return -1;
    if (!zone || !out)
        return odp_error_set(e, ODP_E_INTERNAL, NULL, "odp_body_unpack needs a zone");
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack((const char *)data, size, &offset, zone, out);
    //  Running out of memory is ours, not the client's fault, so it is not a 400
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        return odp_error_set(e, ODP_E_INTERNAL, NULL, "out of memory unpacking the body");
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != size)
        return odp_error_set(e, ODP_E_MALFORMED, NULL, "body is not well-formed msgpack");
    return 0;
}

/*  ---------------------------------------------------------------------------------------
    Field checks, shared by decode and encode so that whatever encodes also decodes.     */

static odp_val_t *s_val(const odp_field_t *f, void *msg)
{
    return (odp_val_t *)((char *)msg + f->offset);
}

static const odp_val_t *s_cval(const odp_field_t *f, const void *msg)
{
    return (const odp_val_t *)((const char *)msg + f->offset);
}

static void s_clear(const odp_msgdef_t *def, void *msg)
{
    for (size_t i = 0; i < def->nfields; i++)
        memset(s_val(&def->fields[i], msg), 0, sizeof(odp_val_t));
}

static const char *s_kind(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "a float";
    case MSGPACK_OBJECT_STR:
        return "text";
    case MSGPACK_OBJECT_ARRAY:
        return "a list";
    case MSGPACK_OBJECT_MAP:
        return "a map";
    case MSGPACK_OBJECT_BIN:
        return "binary data";
    case MSGPACK_OBJECT_EXT:
        return "an extension value";
    }
    return "an unknown value";
}

//  A count within [0, max]; a negative max allows nothing.
static bool s_count_ok(uint64_t count, int64_t max)
{
    return max >= 0 && count <= (uint64_t)max;
}

//  "text of exactly 9 bytes", "text of 1 to 200 bytes", "text of at most 200 bytes"
static int s_str_error(odp_error_t *e, odp_err_t code, const odp_field_t *f)
{
    if (f->min > 0 && (uint64_t)f->min == f->max_len)
        return odp_error_set(e, code, f->name, "field '%s' must be text of exactly %zu bytes",
                             f->name, f->max_len);
    if (f->min > 0)
        return odp_error_set(e, code, f->name,
                             "field '%s' must be text of %" PRId64 " to %zu bytes", f->name, f->min,
                             f->max_len);
    return odp_error_set(e, code, f->name, "field '%s' must be text of at most %zu bytes", f->name,
                         f->max_len);
}

static int s_int_error(odp_error_t *e, odp_err_t code, const odp_field_t *f)
{
    if (f->max == INT64_MAX)
        return odp_error_set(e, code, f->name, "field '%s' must be an integer of at least %" PRId64,
                             f->name, f->min);
    return odp_error_set(e, code, f->name,
                         "field '%s' must be an integer from %" PRId64 " to %" PRId64, f->name,
                         f->min, f->max);
}

//  Whether o nests at most levels containers deep; recursion is bounded by levels.
static bool s_obj_fits(const msgpack_object *o, size_t levels)
{
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        if (levels == 0)
            return false;
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!s_obj_fits(&o->via.array.ptr[i], levels - 1))
                return false;
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        if (levels == 0)
            return false;
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (!s_obj_fits(&o->via.map.ptr[i].key, levels - 1) ||
                !s_obj_fits(&o->via.map.ptr[i].val, levels - 1))
                return false;
    }
    return true;
}

static int s_check_strs(const odp_field_t *f, const msgpack_object *o, odp_error_t *e)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        return odp_error_set(e, ODP_E_WRONG_TYPE, f->name, "field '%s' must be a list of text",
                             f->name);
    if (!s_count_ok(o->via.array.size, f->max))
        return odp_error_set(e, ODP_E_TOO_LONG, f->name,
                             "field '%s' must be a list of at most %" PRId64 " items", f->name,
                             f->max);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *item = &o->via.array.ptr[i];
        if (item->type != MSGPACK_OBJECT_STR)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name,
                                 "field '%s' must be a list of text; item %" PRIu32 " is %s",
                                 f->name, i, s_kind(item));
        if (!odp_utf8_valid(item->via.str.ptr, item->via.str.size))
            return odp_error_set(e, ODP_E_BAD_UTF8, f->name,
                                 "field '%s': item %" PRIu32 " is not valid UTF-8 text", f->name,
                                 i);
        if (item->via.str.size > f->max_len)
            return odp_error_set(e, ODP_E_TOO_LONG, f->name,
                                 "field '%s' must hold text of at most %zu bytes per item", f->name,
                                 f->max_len);
    }
    return 0;
}

static int s_check_any(const odp_field_t *f, const odp_val_t *v, odp_error_t *e)
{
    uint64_t count;
    if (v->raw) {
        //  Pre-packed bytes sit one level inside the message map, hence one level less
        s_head_t root;
        odp_error_t inner;
        if (s_walk((const uint8_t *)v->raw, v->raw_len, ODP_MAX_DEPTH - 1, &root, &inner))
            return odp_error_set(e, inner.code, f->name, "field '%s': %s", f->name, inner.message);
        if (!root.container)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name, "field '%s' must be a map or a list",
                                 f->name);
        count = root.count;
    } else {
        const msgpack_object *o = v->obj;
        if (!o || (o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_ARRAY))
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name, "field '%s' must be a map or a list",
                                 f->name);
        if (!s_obj_fits(o, ODP_MAX_DEPTH - 1))
            return odp_error_set(e, ODP_E_TOO_DEEP, f->name,
                                 "field '%s' nests deeper than the limit", f->name);
        count = o->type == MSGPACK_OBJECT_MAP ? o->via.map.size : o->via.array.size;
    }
    if (!s_count_ok(count, f->max))
        return odp_error_set(e, ODP_E_TOO_LONG, f->name,
                             "field '%s' must have at most %" PRId64 " items", f->name, f->max);
    return 0;
}

//  Check a present value against its declaration.
static int s_check_val(const odp_field_t *f, const odp_val_t *v, odp_error_t *e)
{
    switch (f->type) {
    case ODP_T_STR:
        if (!v->str && v->len)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name, "field '%s' must be text", f->name);
        if (!odp_utf8_valid(v->str, v->len))
            return odp_error_set(e, ODP_E_BAD_UTF8, f->name,
                                 "field '%s' must be valid UTF-8 text without NUL", f->name);
        if (v->len > f->max_len || v->len > UINT32_MAX)
            return s_str_error(e, ODP_E_TOO_LONG, f);
        if (f->min > 0 && v->len < (uint64_t)f->min)
            return s_str_error(e, ODP_E_OUT_OF_RANGE, f);
        return 0;
    case ODP_T_INT:
        if (v->i < f->min || v->i > f->max)
            return s_int_error(e, ODP_E_OUT_OF_RANGE, f);
        return 0;
    case ODP_T_BOOL:
        return 0;
    case ODP_T_NUM:
        if (!isfinite(v->d) || v->d < (double)f->min || v->d > (double)f->max)
            return odp_error_set(e, ODP_E_OUT_OF_RANGE, f->name,
                                 "field '%s' must be a finite number from %" PRId64 " to %" PRId64,
                                 f->name, f->min, f->max);
        return 0;
    case ODP_T_BIN:
        if (!v->str && v->len)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name, "field '%s' must be binary data",
                                 f->name);
        if (v->len > f->max_len || v->len > UINT32_MAX)
            return odp_error_set(e, ODP_E_TOO_LONG, f->name,
                                 "field '%s' must be binary data of at most %zu bytes", f->name,
                                 f->max_len);
        return 0;
    case ODP_T_STRS:
        return s_check_strs(f, v->obj, e);
    case ODP_T_ANY:
        return s_check_any(f, v, e);
    }
    return odp_error_set(e, ODP_E_INTERNAL, f->name, "field '%s' has no known type", f->name);
}

//  Type-check o for f, fill *v with views into o, then check the value itself.
static int s_decode_val(const odp_field_t *f, const msgpack_object *o, odp_val_t *v, odp_error_t *e)
{
    switch (f->type) {
    case ODP_T_STR:
        if (o->type != MSGPACK_OBJECT_STR)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name, "field '%s' must be text, not %s",
                                 f->name, s_kind(o));
        v->str = o->via.str.ptr;
        v->len = o->via.str.size;
        break;
    case ODP_T_INT:
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (o->via.u64 > (uint64_t)INT64_MAX)
                return s_int_error(e, ODP_E_OUT_OF_RANGE, f);
            v->i = (int64_t)o->via.u64;
        } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            v->i = o->via.i64;
        else
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name,
                                 "field '%s' must be an integer, not %s", f->name, s_kind(o));
        break;
    case ODP_T_NUM:
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            v->d = (double)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            v->d = (double)o->via.i64;
        else if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
            v->d = o->via.f64;
        else
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name,
                                 "field '%s' must be a number, not %s", f->name, s_kind(o));
        break;
    case ODP_T_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name,
                                 "field '%s' must be true or false, not %s", f->name, s_kind(o));
        v->b = o->via.boolean;
        break;
    case ODP_T_BIN:
        if (o->type != MSGPACK_OBJECT_BIN)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name,
                                 "field '%s' must be binary data, not %s", f->name, s_kind(o));
        v->str = o->via.bin.ptr;
        v->len = o->via.bin.size;
        break;
    case ODP_T_STRS:
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name,
                                 "field '%s' must be a list of text, not %s", f->name, s_kind(o));
        v->obj = o;
        break;
    case ODP_T_ANY:
        if (o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_ARRAY)
            return odp_error_set(e, ODP_E_WRONG_TYPE, f->name,
                                 "field '%s' must be a map or a list, not %s", f->name, s_kind(o));
        v->obj = o;
        break;
    default:
        return odp_error_set(e, ODP_E_INTERNAL, f->name, "field '%s' has no known type", f->name);
    }
    v->present = true;
    return s_check_val(f, v, e);
}

static const odp_field_t *s_field_find(const odp_msgdef_t *def, const char *name, size_t len)
{
    for (size_t i = 0; i < def->nfields; i++) {
        const char *candidate = def->fields[i].name;
        if (strlen(candidate) == len && memcmp(candidate, name, len) == 0)
            return &def->fields[i];
    }
    return NULL;
}

static const char *s_def_label(const odp_msgdef_t *def)
{
    if (def->name && *def->name)
        return def->name;
    return def->ident ? def->ident : "this message";
}

static bool s_same_key(const msgpack_object *a, const msgpack_object *b)
{
    return a->via.str.size == b->via.str.size &&
           memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
}

static int s_decode_map(const odp_msgdef_t *def, const msgpack_object *obj, void *out,
                        odp_error_t *e)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return odp_error_set(e, ODP_E_NOT_A_MAP, NULL, "body must be a map, not %s", s_kind(obj));
    const msgpack_object_map *map = &obj->via.map;
    for (uint32_t k = 0; k < map->size; k++) {
        const msgpack_object *key = &map->ptr[k].key;
        const msgpack_object *val = &map->ptr[k].val;
        if (key->type != MSGPACK_OBJECT_STR)
            return odp_error_set(e, ODP_E_BAD_KEY, NULL, "map key %" PRIu32 " is %s, not text", k,
                                 s_kind(key));
        if (!odp_utf8_valid(key->via.str.ptr, key->via.str.size))
            return odp_error_set(e, ODP_E_BAD_KEY, NULL,
                                 "map key %" PRIu32 " is not valid UTF-8 text", k);
        const odp_field_t *f = s_field_find(def, key->via.str.ptr, key->via.str.size);
        if (!f) {
            char name[sizeof(((odp_error_t *)0)->field)];
            s_copy_text(name, sizeof(name), key->via.str.ptr, key->via.str.size);
            return odp_error_set(e, ODP_E_UNKNOWN_FIELD, name, "field '%s' is not part of %s", name,
                                 s_def_label(def));
        }
        //  Every earlier key is a distinct declared field, so this is O(nfields^2) at worst
        for (uint32_t j = 0; j < k; j++)
            if (s_same_key(&map->ptr[j].key, key))
                return odp_error_set(e, ODP_E_DUPLICATE_FIELD, f->name,
                                     "field '%s' appears more than once", f->name);
        if (val->type == MSGPACK_OBJECT_NIL) {
            //  nil is how clients say "not given", which a required field cannot be
            if (f->required)
                return odp_error_set(e, ODP_E_MISSING_FIELD, f->name,
                                     "field '%s' is required and cannot be nil", f->name);
            continue;
        }
        if (s_decode_val(f, val, s_val(f, out), e))
            return -1;
    }
    for (size_t i = 0; i < def->nfields; i++) {
        const odp_field_t *f = &def->fields[i];
        if (f->required && !s_val(f, out)->present)
            return odp_error_set(e, ODP_E_MISSING_FIELD, f->name, "field '%s' is required",
                                 f->name);
    }
    return 0;
}

int odp_decode_fields(const odp_msgdef_t *def, const msgpack_object *obj, void *out, odp_error_t *e)
{
    if (!def || !out)
        return odp_error_set(e, ODP_E_INTERNAL, NULL, "odp_decode_fields: no message");
    s_clear(def, out);
    if (!obj)
        return odp_error_set(e, ODP_E_INTERNAL, NULL, "odp_decode_fields: no object");
    if (s_decode_map(def, obj, out, e)) {
        //  Half-filled output would invite use of values that were never checked
        s_clear(def, out);
        return -1;
    }
    return 0;
}

int odp_decode(const odp_msgdef_t *def, const void *data, size_t size, msgpack_zone *zone,
               void *out, odp_error_t *e)
{
    if (!def || !out)
        return odp_error_set(e, ODP_E_INTERNAL, NULL, "odp_decode: no message");
    s_clear(def, out);
    msgpack_object obj;
    if (odp_body_unpack(data, size, zone, &obj, e))
        return -1;
    return odp_decode_fields(def, &obj, out, e);
}

/*  ---------------------------------------------------------------------------------------
    Encoding.                                                                            */

static int s_pack_val(msgpack_packer *pk, const odp_field_t *f, const odp_val_t *v)
{
    switch (f->type) {
    case ODP_T_STR:
        if (msgpack_pack_str(pk, v->len))
            return -1;
        return v->len ? msgpack_pack_str_body(pk, v->str, v->len) : 0;
    case ODP_T_BIN:
        if (msgpack_pack_bin(pk, v->len))
            return -1;
        return v->len ? msgpack_pack_bin_body(pk, v->str, v->len) : 0;
    case ODP_T_INT:
        return msgpack_pack_int64(pk, v->i);
    case ODP_T_BOOL:
        return v->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case ODP_T_NUM:
        /*  Whole numbers travel as integers, so 73 stays 73 for every reader. The range
            test comes first: casting a double beyond int64 (or NaN) is undefined. */
        if (fabs(v->d) < 9007199254740992.0 && v->d == (double)(int64_t)v->d)
            return msgpack_pack_int64(pk, (int64_t)v->d);
        return msgpack_pack_double(pk, v->d);
    case ODP_T_STRS:
        return msgpack_pack_object(pk, *v->obj);
    case ODP_T_ANY:
        if (v->raw)
            return pk->callback(pk->data, (const char *)v->raw, v->raw_len);
        return msgpack_pack_object(pk, *v->obj);
    }
    return -1;
}

int odp_encode(const odp_msgdef_t *def, const void *in, msgpack_packer *pk)
{
    if (!def || !in || !pk)
        return -1;
    //  Everything is checked before the first byte goes out, so a refused message leaves
    //  no half-written map behind in the caller's buffer
    size_t present = 0;
    odp_error_t scratch;
    for (size_t i = 0; i < def->nfields; i++) {
        const odp_field_t *f = &def->fields[i];
        const odp_val_t *v = s_cval(f, in);
        if (!f->name)
            return -1;
        if (!v->present) {
            if (f->required)
                return -1;
            continue;
        }
        if (s_check_val(f, v, &scratch))
            return -1;
        present++;
    }
    if (msgpack_pack_map(pk, present))
        return -1;
    for (size_t i = 0; i < def->nfields; i++) {
        const odp_field_t *f = &def->fields[i];
        const odp_val_t *v = s_cval(f, in);
        if (!v->present)
            continue;
        size_t len = strlen(f->name);
        if (msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, f->name, len) ||
            s_pack_val(pk, f, v))
            return -1;
    }
    return 0;
}

int odp_encode_buf(const odp_msgdef_t *def, const void *in, msgpack_sbuffer *buf)
{
    if (!buf)
        return -1;
    msgpack_sbuffer_init(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    if (odp_encode(def, in, &pk)) {
        //  Leave buf empty but valid, so the caller's destroy is harmless either way
        msgpack_sbuffer_destroy(buf);
        msgpack_sbuffer_init(buf);
        return -1;
    }
    return 0;
}

/*  ---------------------------------------------------------------------------------------
    Values.                                                                              */

odp_val_t odp_v_str(const char *s)
{
    return s ? odp_v_strn(s, strlen(s)) : (odp_val_t){.present = false};
}

odp_val_t odp_v_strn(const char *s, size_t len)
{
    odp_val_t v = {.present = false};
    if (s) {
        v.present = true;
        v.str = s;
        v.len = len;
    }
    return v;
}

odp_val_t odp_v_int(int64_t i)
{
    return (odp_val_t){.present = true, .i = i};
}

odp_val_t odp_v_num(double d)
{
    odp_val_t v = {0};
    v.present = true;
    v.d = d;
    return v;
}

odp_val_t odp_v_bool(bool b)
{
    return (odp_val_t){.present = true, .b = b};
}

odp_val_t odp_v_bin(const void *p, size_t len)
{
    odp_val_t v = {.present = false};
    if (p) {
        v.present = true;
        v.str = (const char *)p;
        v.len = len;
    }
    return v;
}

odp_val_t odp_v_raw(const void *packed, size_t len)
{
    odp_val_t v = {.present = false};
    if (packed) {
        v.present = true;
        v.raw = packed;
        v.raw_len = len;
    }
    return v;
}

char *odp_v_cstr(const odp_val_t *v, char *buf, size_t size)
{
    //  Callers with no buffer still get a writable "" rather than a crash
    static char s_empty[1];
    if (!buf || size == 0) {
        s_empty[0] = '\0';
        return s_empty;
    }
    if (!v || !v->present || !v->str) {
        buf[0] = '\0';
        return buf;
    }
    s_copy_text(buf, size, v->str, v->len);
    return buf;
}

bool odp_v_eq(const odp_val_t *v, const char *s)
{
    if (!v || !v->present)
        return s == NULL;
    if (!s)
        return false;
    size_t len = strlen(s);
    return v->len == len && (len == 0 || (v->str && memcmp(v->str, s, len) == 0));
}
