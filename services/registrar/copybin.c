#include "copybin.h"

#include "common/parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static char *s_be16(char *o, unsigned v)
{
    o[0] = (char)(v >> 8);
    o[1] = (char)v;
    return o + 2;
}

static char *s_be32(char *o, uint32_t v)
{
    o[0] = (char)(v >> 24);
    o[1] = (char)(v >> 16);
    o[2] = (char)(v >> 8);
    o[3] = (char)v;
    return o + 4;
}

static char *s_be64(char *o, uint64_t v)
{
    o = s_be32(o, (uint32_t)(v >> 32));
    return s_be32(o, (uint32_t)v);
}

/*  Each converter reads one field from p - the line ends in '\n' at eol, p <= eol - up
    to the tab or the line end after it, which it leaves in *end, and writes the field's
    length and value at o. NULL when the text is not as the loader writes it. */

/*  "[+-]digits" in the int8 range. */
static char *s_bin_int8(char *o, const char *p, const char *eol, const char **end)
{
    const char *e = p;
    while (e < eol && *e != '\t')
        e++;
    int64_t v;
    if (!odp_parse_int(p, (size_t)(e - p), INT64_MIN, INT64_MAX, &v))
        return NULL;
    *end = e;
    o = s_be32(o, 8);
    return s_be64(o, (uint64_t)v);
}

/*  YYYY-MM-DD: days from 2000-01-01. */
static char *s_bin_date(char *o, const char *p, const char *eol, const char **end)
{
    int32_t days;
    if (eol - p < 10 || !odp_parse_date(p, 10, &days))
        return NULL;
    *end = p + 10;
    o = s_be32(o, 4);
    return s_be32(o, (uint32_t)days);
}

static long s_floor4(long v)
{
    return v >= 0 ? v / 4 : -((-v + 3) / 4);
}

/*  [+-]digits[.digits][e[+-]digits] as numeric_in() reads it: the exact value, display
    scale = digits after the point less the exponent (at least 0). Base-10000 digits,
    weight of the first, sign, scale; PostgreSQL strips zero digits itself. */
static char *s_bin_numeric(char *o, const char *p, const char **end)
{
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *ip = p;
    while ((unsigned)(unsigned char)*p - '0' <= 9)
        p++;
    size_t ni = (size_t)(p - ip), nf = 0;
    const char *fp = p;
    if (*p == '.') {
        fp = ++p;
        while ((unsigned)(unsigned char)*p - '0' <= 9)
            p++;
        nf = (size_t)(p - fp);
    }
    if (ni + nf == 0)
        return NULL;
    long exp = 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        bool eneg = false;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        const char *e0 = p;
        for (; (unsigned)(unsigned char)*p - '0' <= 9; p++)
            if ((exp = exp * 10 + (*p - '0')) > 1000000)
                return NULL;
        if (p == e0)
            return NULL;
        if (eneg)
            exp = -exp;
    }
    *end = p;
    long dscale = (long)nf - exp;
    if (dscale < 0)
        dscale = 0;
    if (dscale > 0x3FFF)
        return NULL;
    /*  Decimal digit j (of the ni + nf) has the power 10^(point - 1 - j). */
    long point = (long)ni + exp, first = -1, last = -1;
    size_t nd = ni + nf;
#define S_DIGIT(j) ((j) < ni ? ip[(j)] - '0' : fp[(j)-ni] - '0')
    for (size_t j = 0; j < nd; j++)
        if (S_DIGIT(j)) {
            if (first < 0)
                first = (long)j;
            last = (long)j;
        }
    if (first < 0) { /* zero */
        o = s_be32(o, 8);
        o = s_be16(o, 0);
        o = s_be16(o, 0);
        o = s_be16(o, 0);
        return s_be16(o, (unsigned)dscale);
    }
    long w0 = s_floor4(point - 1 - first), wl = s_floor4(point - 1 - last);
    long ndigits = w0 - wl + 1;
    if (w0 > 32767 || wl < -32768 || ndigits > 0xFFFF)
        return NULL;
    o = s_be32(o, (uint32_t)(8 + 2 * ndigits));
    o = s_be16(o, (unsigned)ndigits);
    o = s_be16(o, (unsigned)(uint16_t)(int16_t)w0);
    o = s_be16(o, neg ? 0x4000 : 0);
    o = s_be16(o, (unsigned)dscale);
    static const unsigned pow10[4] = {1, 10, 100, 1000};
    long g = w0;
    unsigned acc = 0;
    for (long j = first; j <= last; j++) {
        long e = point - 1 - j, gj = s_floor4(e);
        while (g > gj) { /* the group is complete */
            o = s_be16(o, acc);
            acc = 0;
            g--;
        }
        acc += (unsigned)S_DIGIT((size_t)j) * pow10[e - 4 * gj];
    }
#undef S_DIGIT
    return s_be16(o, acc);
}

/*  Whether any byte of w is c: the classic has-zero-byte test on w ^ (c * 0x01..01). */
#define S_HAS(w, c)                                                                                \
    ((((w) ^ (0x0101010101010101ULL * (c))) - 0x0101010101010101ULL) &                             \
     ~((w) ^ (0x0101010101010101ULL * (c))) & 0x8080808080808080ULL)

/*  A text value, de-escaped as COPY does. The loader escapes only backslash, tab, newline
    and carriage return; \b \f \v are taken too, anything else (octal, hex, a lone
    backslash) is left to the text format. */
static char *s_bin_text(char *o, const char *p, const char *eol, const char **end)
{
    char *len = o;
    o += 4;
    for (;;) {
        /*  Values rarely hold anything to escape: move them eight bytes at a time. */
        uint64_t w;
        while (eol + 1 - p >= 8) {
            memcpy(&w, p, 8);
            if (S_HAS(w, '\t') || S_HAS(w, '\n') || S_HAS(w, '\\'))
                break;
            memcpy(o, &w, 8);
            o += 8;
            p += 8;
        }
        char c = *p;
        if (c == '\t' || c == '\n')
            break;
        p++;
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        switch (*p++) {
        case '\\':
            *o++ = '\\';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'v':
            *o++ = '\v';
            break;
        default:
            return NULL;
        }
    }
    *end = p;
    s_be32(len, (uint32_t)(o - len - 4));
    return o;
}

int copybin_rows(odp_buf_t *out, const char *text, size_t len, const loader_type_t *types,
                 size_t ntypes, const copybin_tap_t *tap)
{
    size_t start = odp_buf_size(out);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            goto bad;
        /*  A field takes at most its text's length + 16 bytes (a numeric of one digit:
            4 + 8 + 2), a row 2 more. */
        char *row = odp_buf_reserve(out, (size_t)(eol - p) + 16 * ntypes + 16);
        if (!row)
            goto bad;
        char *o = s_be16(row, (unsigned)ntypes);
        for (size_t f = 0; f < ntypes; f++) {
            const char *fe = p;
            if (p[0] == '\\' && p[1] == 'N' && (p[2] == '\t' || p[2] == '\n')) {
                o = s_be32(o, 0xFFFFFFFFu);
                fe = p + 2;
            } else {
                switch (types[f]) {
                case LOADER_TEXT:
                    o = s_bin_text(o, p, eol, &fe);
                    break;
                case LOADER_INTEGER:
                    o = s_bin_int8(o, p, eol, &fe);
                    break;
                case LOADER_NUMERIC:
                    o = s_bin_numeric(o, p, &fe);
                    break;
                case LOADER_DATE:
                    o = s_bin_date(o, p, eol, &fe);
                    break;
                case LOADER_BOOLEAN:
                    if (*p != 't' && *p != 'f')
                        goto bad;
                    o = s_be32(o, 1);
                    *o++ = *p == 't';
                    fe = p + 1;
                    break;
                default:
                    goto bad;
                }
                if (!o)
                    goto bad;
            }
            /*  Each field ends at a tab, the last one at the line end. */
            if (*fe != (f + 1 < ntypes ? '\t' : '\n'))
                goto bad;
            for (const copybin_tap_t *t = tap; t; t = t->next)
                if (t->fields[f])
                    t->fn(t->arg, f, p, (size_t)(fe - p));
            p = fe + 1;
        }
        odp_buf_extend(out, (size_t)(o - row));
    }
    return 0;
bad:
    odp_buf_truncate(out, start);
    return -1;
}
