/*  loader: pushed dataset bytes in, typed COPY rows and rejected rows out (see loader.h).

    The raw stream is cut at '\n' bytes: neither UTF-8 nor GB18030 has 0x0A inside a
    multibyte character, so every line can be converted (or checked) on its own, and a raw
    offset is known for every line end. Rows can only end at a line end (libcsv is told
    that LF alone terminates a record, CR is trimmed as trailing space), so after a line
    has been parsed the row either ended with it, or the line was blank, or a quoted field
    is still open. Only the first case moves the boundary.

    Bytes that have not yet reached a line end stay in self->line; lines of a row that is
    still open stay, converted, in self->rowtext. Both are bounded by max_row_length, which
    is checked as bytes arrive, so the loader never holds more than one row plus the chunk
    the caller is feeding. Lines that lie whole inside a chunk are used in place.
*/
#include "loader.h"

#include "common/parse.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  libcsv's parser states (libcsv.c); the struct is public, the names are not
#define S_CSV_ROW_NOT_BEGUN 0
#define S_CSV_FIELD_BEGUN   2

//  Longest value quoted back in a reject's detail, in bytes
#define S_DETAIL_VALUE 64

struct loader_t {
    loader_format_t format;
    loader_encoding_t encoding;
    loader_col_t *cols; //  names point into names
    size_t *name_len;
    char *names;
    size_t ncols;
    size_t max_row;

    iconv_t cd; //  GB18030 only
    struct csv_parser csv;

    int64_t offset;    //  raw bytes received so far
    int64_t boundary;  //  raw offset after the last complete row
    int64_t row_start; //  raw offset where the open row (or the next one) began
    int64_t rows;
    int64_t rejected;
    bool at_start; //  the next line is the first of the stream: strip a BOM
    bool fed;
    bool failed;
    bool header; //  CSV header read and mapped

    int *colmap; //  file column -> dictionary column
    size_t ncolmap;
    int *dictpos; //  dictionary column -> file column

    odp_buf_t *line;    //  raw bytes after the last line end
    odp_buf_t *conv;    //  the current line as UTF-8, when it cannot be used in place
    odp_buf_t *rowtext; //  UTF-8 text of the open row's earlier lines
    odp_buf_t *fbuf;    //  field bytes of the current row
    size_t *foff;
    size_t *flen;
    size_t nfields;
    size_t fcap;
    bool row_done; //  libcsv ended a record
    bool oom;      //  an allocation failed inside a libcsv callback
    bool bad;      //  the open row holds bytes invalid in the declared encoding
    int64_t bad_at;

    json_t **jvals;   //  JSON Lines: value of each dictionary column, borrowed
    int *jorder;      //  dictionary column of the object's k-th key
    size_t *joff;     //  span of the k-th top-level value in the line
    size_t *jlen;     //  ...
    const char **num; //  source text of a number value, per dictionary column
    size_t *numlen;

    odp_buf_t *staged; //  the caller's buffers, during one feed or finish
    odp_buf_t *rejects;
    odp_error_t *err;
};

static int s_oom(loader_t *self)
{
    self->failed = true;
    return odp_error_set(self->err, ODP_E_INTERNAL, NULL, "loader: out of memory");
}

/*  ---------------------------------------------------------------------------------------
    Text helpers                                                                         */

//  COPY text format: backslash, the tab delimiter and line ends must be escaped
static const char s_esc[93] = {['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r', ['\\'] = '\\'};

//  Whether any byte of w is c: the classic has-zero-byte test on w ^ (c * 0x01..01)
#define S_HAS(w, c)                                                                                \
    ((((w) ^ (0x0101010101010101ULL * (c))) - 0x0101010101010101ULL) &                             \
     ~((w) ^ (0x0101010101010101ULL * (c))) & 0x8080808080808080ULL)

static char *s_escape(char *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + n;
    while (p < end) {
        //  Values rarely hold anything to escape: move them eight bytes at a time
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (S_HAS(w, '\t') || S_HAS(w, '\n') || S_HAS(w, '\r') || S_HAS(w, '\\'))
                break;
            memcpy(out, p, 8);
            out += 8;
            p += 8;
        }
        size_t left = (size_t)(end - p) < 8 ? (size_t)(end - p) : 8;
        for (const unsigned char *stop = p + left; p < stop; p++) {
            unsigned char c = *p;
            if (c <= '\\' && s_esc[c]) {
                *out++ = '\\';
                *out++ = s_esc[c];
            } else
                *out++ = (char)c;
        }
    }
    return out;
}

static char *s_put_i64(char *out, int64_t v)
{
    char tmp[24];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *out++ = '-';
    while (n)
        *out++ = tmp[--n];
    return out;
}

static bool s_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/*  ---------------------------------------------------------------------------------------
    Types                                                                                */

static bool s_int_ok(const char *s, size_t n)
{
    return odp_parse_int(s, n, INT64_MIN, INT64_MAX, NULL);
}

//  [+-]digits[.digits][e[+-]digits], within what PostgreSQL's numeric holds once the
//  exponent is applied: 131072 digits before the point, 16383 after it
static bool s_numeric_ok(const char *s, size_t n)
{
    size_t i = 0, lead = 0, sig = 0, frac = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && s[i] == '0')
        i++, lead++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, sig++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, frac++;
    }
    if (lead + sig + frac == 0)
        return false;
    long exp = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool neg = false;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            neg = s[i++] == '-';
        size_t e0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (exp <= 1000000) //  far past either limit, and no overflow
                exp = exp * 10 + (s[i] - '0');
            i++;
        }
        if (i == e0)
            return false;
        if (neg)
            exp = -exp;
    }
    if (i != n)
        return false;
    if ((long)sig + exp > 131072 || (long)frac - exp > 16383)
        return false;
    return true;
}

static bool s_ieq(const char *s, size_t n, const char *word)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!word[i] || c != (unsigned char)word[i])
            return false;
    }
    return word[n] == '\0';
}

//  1 true, 0 false, -1 neither
static int s_bool(const char *s, size_t n)
{
    if (s_ieq(s, n, "t") || s_ieq(s, n, "true") || s_ieq(s, n, "yes") || s_ieq(s, n, "1") ||
        (n == 3 && memcmp(s, "\xe6\x98\xaf", 3) == 0)) //  是
        return 1;
    if (s_ieq(s, n, "f") || s_ieq(s, n, "false") || s_ieq(s, n, "no") || s_ieq(s, n, "0") ||
        (n == 3 && memcmp(s, "\xe5\x90\xa6", 3) == 0)) //  否
        return 0;
    return -1;
}

static const char *s_type_name(loader_type_t type)
{
    switch (type) {
    case LOADER_INTEGER:
        return "an integer";
    case LOADER_NUMERIC:
        return "numeric";
    case LOADER_DATE:
        return "a date";
    case LOADER_TIMESTAMP:
        return "a timestamp";
    case LOADER_BOOLEAN:
        return "a boolean";
    default:
        return "text";
    }
}

static char *s_put_null(char *out)
{
    *out++ = '\\';
    *out++ = 'N';
    return out;
}

//  Write a text value typed by its column at out (room reserved: 2 * n + 2 bytes).
//  Typed columns get the value without surrounding whitespace, as PostgreSQL reads it;
//  booleans become t/f since PostgreSQL does not read 是/否. NULL: not of that type.
static char *s_put_value(char *out, loader_type_t type, const char *s, size_t n)
{
    if (type == LOADER_TEXT)
        return n ? s_escape(out, s, n) : s_put_null(out);
    while (n && s_is_space((unsigned char)*s))
        s++, n--;
    while (n && s_is_space((unsigned char)s[n - 1]))
        n--;
    if (!n)
        return s_put_null(out);
    bool ok;
    switch (type) {
    case LOADER_INTEGER:
        ok = s_int_ok(s, n);
        break;
    case LOADER_NUMERIC:
        ok = s_numeric_ok(s, n);
        break;
    case LOADER_DATE:
        ok = odp_parse_date(s, n, NULL);
        break;
    case LOADER_TIMESTAMP:
        ok = odp_parse_timestamp(s, n);
        break;
    case LOADER_BOOLEAN: {
        int b = s_bool(s, n);
        if (b < 0)
            return NULL;
        *out++ = b ? 't' : 'f';
        return out;
    }
    default:
        ok = false;
    }
    if (!ok)
        return NULL;
    //  Only digits, signs, '.', 'e', ':', 'T', 'Z' and spaces: nothing to escape
    memcpy(out, s, n);
    return out + n;
}

/*  ---------------------------------------------------------------------------------------
    Output                                                                               */

static int s_reject(loader_t *self, const char *reason, const char *detail, size_t dlen,
                    const char *raw, size_t rawlen)
{
    size_t rlen = strlen(reason);
    //  rejects.detail is text: never let a cut message (jansson's, snprintf's) break UTF-8
    size_t badlen;
    dlen = odp_utf8_scan(detail, dlen, &badlen);
    char *start = odp_buf_reserve(self->rejects, 24 + rlen + 2 * dlen + 2 * rawlen + 4);
    if (!start)
        return s_oom(self);
    char *p = s_put_i64(start, self->rows + 1);
    *p++ = '\t';
    memcpy(p, reason, rlen);
    p += rlen;
    *p++ = '\t';
    p = s_escape(p, detail, dlen);
    *p++ = '\t';
    p = s_escape(p, raw, rawlen);
    *p++ = '\n';
    odp_buf_extend(self->rejects, (size_t)(p - start));
    self->rejected++;
    return 0;
}

//  Detail for a value its column cannot hold: what it is (a JSON kind, may be empty),
//  then the value itself when s is not NULL, cut short. Fits in 320 bytes.
static size_t s_type_detail(char *buf, size_t size, const loader_col_t *col, size_t name_len,
                            const char *what, const char *s, size_t n)
{
    size_t vlen = s ? odp_utf8_cut(s, n, S_DETAIL_VALUE) : 0;
    int len = snprintf(buf, size, "column \"%.*s\": %s%s%.*s%s%s is not %s",
                       (int)odp_utf8_cut(col->name, name_len, 96), col->name, what, s ? "\"" : "",
                       (int)vlen, s ? s : "", vlen < n ? "..." : "", s ? "\"" : "",
                       s_type_name(col->type));
    return len < 0 ? 0 : (size_t)len < size ? (size_t)len : size - 1;
}

static int s_reject_encoding(loader_t *self, const char *raw, size_t rawlen)
{
    char detail[96];
    int len =
        snprintf(detail, sizeof detail, "bytes invalid in %s at byte offset %lld",
                 self->encoding == LOADER_GB18030 ? "GB18030" : "UTF-8", (long long)self->bad_at);
    return s_reject(self, "encoding", detail, (size_t)len, raw, rawlen);
}

/*  ---------------------------------------------------------------------------------------
    Encoding: one complete line in, UTF-8 text out                                       */

static void s_mark_bad(loader_t *self, int64_t at)
{
    if (!self->bad) {
        self->bad = true;
        self->bad_at = at;
    }
}

//  UTF-8 with invalid sequences replaced by U+FFFD, into self->conv
static int s_utf8_repair(loader_t *self, const char *s, size_t n, size_t first, size_t badlen,
                         int64_t at)
{
    odp_buf_reset(self->conv);
    //  Worst case, every byte replaced: the appends below cannot fail after this
    if (!odp_buf_reserve(self->conv, 3 * n + 16))
        return -1;
    s_mark_bad(self, at + (int64_t)first);
    size_t i = 0;
    while (i < n) {
        if (first > i)
            odp_buf_append(self->conv, s + i, first - i);
        if (first == n)
            break;
        odp_buf_append(self->conv, "\xef\xbf\xbd", 3);
        i = first + badlen;
        first = i + odp_utf8_scan(s + i, n - i, &badlen);
    }
    return 0;
}

static int s_decode(loader_t *self, const char *raw, size_t n, int64_t at, const char **text,
                    size_t *tlen)
{
    if (self->encoding == LOADER_UTF8) {
        size_t badlen = 0;
        size_t first = odp_utf8_scan(raw, n, &badlen);
        if (first == n) {
            *text = raw;
            *tlen = n;
            return 0;
        }
        if (s_utf8_repair(self, raw, n, first, badlen, at))
            return -1;
    } else {
        odp_buf_reset(self->conv);
        //  iconv's prototype is not const-correct; it only reads the input
        char *in = (char *)raw;
        size_t inleft = n;
        while (inleft) {
            size_t room = 2 * inleft + 16;
            char *out = odp_buf_reserve(self->conv, room);
            if (!out)
                return -1;
            size_t outleft = room;
            size_t rc = iconv(self->cd, &in, &inleft, &out, &outleft);
            odp_buf_extend(self->conv, room - outleft);
            if (rc != (size_t)-1)
                break;
            if (errno == E2BIG)
                continue;
            //  EILSEQ, or EINVAL for a character cut by the line end: skip one byte
            s_mark_bad(self, at + (int64_t)(in - raw));
            if (odp_buf_append(self->conv, "\xef\xbf\xbd", 3))
                return -1;
            in++;
            inleft--;
        }
        //  GB18030 0x00 is U+0000, which PostgreSQL text cannot hold
        const char *nul = memchr(raw, 0, n);
        if (nul) {
            s_mark_bad(self, at + (nul - raw));
            odp_buf_t *fixed = odp_buf_new();
            const char *conv = odp_buf_data(self->conv);
            for (size_t i = 0; fixed && i < odp_buf_size(self->conv); i++) {
                int rc = conv[i] ? odp_buf_append(fixed, conv + i, 1)
                                 : odp_buf_append(fixed, "\xef\xbf\xbd", 3);
                if (rc)
                    odp_buf_destroy(&fixed);
            }
            if (!fixed)
                return -1;
            odp_buf_destroy(&self->conv);
            self->conv = fixed;
        }
    }
    *text = odp_buf_data(self->conv);
    *tlen = odp_buf_size(self->conv);
    return 0;
}

/*  ---------------------------------------------------------------------------------------
    Rows                                                                                 */

static int s_find_col(const loader_t *self, const char *name, size_t len)
{
    for (size_t j = 0; j < self->ncols; j++)
        if (self->name_len[j] == len && memcmp(self->cols[j].name, name, len) == 0)
            return (int)j;
    return -1;
}

//  Text minus its line end (LF, CR LF, or a lone CR left at the end of the stream)
static size_t s_chomp(const char *s, size_t n)
{
    if (n && s[n - 1] == '\n')
        n--;
    if (n && s[n - 1] == '\r')
        n--;
    return n;
}

//  The whole text of the row that just ended, the line cur being its last
static int s_row_text(loader_t *self, const char *cur, size_t curlen, const char **raw,
                      size_t *rawlen)
{
    if (!odp_buf_size(self->rowtext)) {
        *raw = cur;
        *rawlen = s_chomp(cur, curlen);
        return 0;
    }
    if (odp_buf_append(self->rowtext, cur, curlen))
        return s_oom(self);
    *raw = odp_buf_data(self->rowtext);
    *rawlen = s_chomp(*raw, odp_buf_size(self->rowtext));
    return 0;
}

static void s_row_reset(loader_t *self, int64_t end)
{
    self->boundary = self->row_start = end;
    odp_buf_reset(self->rowtext);
    odp_buf_reset(self->fbuf);
    self->nfields = 0;
    self->bad = false;
}

//  Append ", name" to a message list, keeping it within size
static void s_list_add(char *list, size_t size, const char *name, size_t len)
{
    size_t used = strlen(list);
    if (used + 8 >= size)
        return;
    int n = snprintf(list + used, size - used, "%s%.*s", used ? ", " : "",
                     (int)odp_utf8_cut(name, len, size - used - 8), name);
    if (n < 0 || (size_t)n >= size - used)
        list[used] = '\0';
}

//  The first record: map file columns to dictionary columns, or HEADER_MISMATCH
static int s_header(loader_t *self, const char *base)
{
    size_t n = self->nfields;
    int *colmap = malloc((n ? n : 1) * sizeof(int));
    int *dictpos = malloc(self->ncols * sizeof(int));
    if (!colmap || !dictpos) {
        free(colmap);
        free(dictpos);
        return s_oom(self);
    }
    for (size_t j = 0; j < self->ncols; j++)
        dictpos[j] = -1;
    char unknown[128] = "", missing[128] = "", twice[64] = "";
    for (size_t i = 0; i < n; i++) {
        const char *name = base + self->foff[i];
        size_t len = self->flen[i];
        while (len && s_is_space((unsigned char)*name))
            name++, len--;
        if (len >= 3 && memcmp(name, "\xef\xbb\xbf", 3) == 0)
            name += 3, len -= 3;
        while (len && s_is_space((unsigned char)*name))
            name++, len--;
        while (len && s_is_space((unsigned char)name[len - 1]))
            len--;
        int j = s_find_col(self, name, len);
        if (j < 0)
            s_list_add(unknown, sizeof unknown, name, len);
        else if (dictpos[j] >= 0)
            s_list_add(twice, sizeof twice, name, len);
        else
            dictpos[j] = (int)i;
        colmap[i] = j;
    }
    for (size_t j = 0; j < self->ncols; j++)
        if (dictpos[j] < 0)
            s_list_add(missing, sizeof missing, self->cols[j].name, self->name_len[j]);
    if (*unknown || *missing || *twice) {
        free(colmap);
        free(dictpos);
        self->failed = true;
        const char *sep1 = *unknown ? "; " : "";
        const char *sep2 = *unknown || *missing ? "; " : "";
        return odp_error_set(self->err, ODP_E_HEADER_MISMATCH, "header",
                             "header does not match the dictionary: %s%s%s%s%s%s%s%s",
                             *unknown ? "not in the dictionary: " : "", unknown,
                             *missing ? sep1 : "", *missing ? "missing: " : "", missing,
                             *twice ? sep2 : "", *twice ? "repeated: " : "", twice);
    }
    free(self->colmap);
    free(self->dictpos);
    self->colmap = colmap;
    self->dictpos = dictpos;
    self->ncolmap = n;
    self->header = true;
    return 0;
}

//  A CSV record has ended: its fields are at base + foff[i], bytes long in all; cur is
//  the text of its last line
static int s_csv_row(loader_t *self, const char *base, size_t bytes, const char *cur, size_t curlen,
                     int64_t end)
{
    if (!self->header) {
        if (s_header(self, base))
            return -1;
        s_row_reset(self, end);
        return 0;
    }
    const char *raw;
    size_t rawlen;
    if (s_row_text(self, cur, curlen, &raw, &rawlen))
        return -1;
    int rc = 0;
    if (self->bad)
        rc = s_reject_encoding(self, raw, rawlen);
    else if (self->nfields != self->ncolmap) {
        char detail[64];
        int len = snprintf(detail, sizeof detail, "%zu fields, expected %zu", self->nfields,
                           self->ncolmap);
        rc = s_reject(self, "ragged", detail, (size_t)len, raw, rawlen);
    } else {
        char *start = odp_buf_reserve(self->staged, 24 + 2 * bytes + 3 * self->ncols);
        if (!start)
            return s_oom(self);
        char *p = s_put_i64(start, self->rows + 1);
        const char *fields = base;
        for (size_t j = 0; j < self->ncols; j++) {
            size_t i = (size_t)self->dictpos[j];
            *p++ = '\t';
            char *next = s_put_value(p, self->cols[j].type, fields + self->foff[i], self->flen[i]);
            if (!next) {
                char detail[320];
                size_t dlen =
                    s_type_detail(detail, sizeof detail, &self->cols[j], self->name_len[j], "",
                                  fields + self->foff[i], self->flen[i]);
                rc = s_reject(self, "type", detail, dlen, raw, rawlen);
                p = NULL;
                break;
            }
            p = next;
        }
        if (p) {
            *p++ = '\n';
            odp_buf_extend(self->staged, (size_t)(p - start));
        }
    }
    if (rc)
        return -1;
    self->rows++;
    s_row_reset(self, end);
    return 0;
}

//  Note one field of the current record. 0, or -1 out of memory.
static int s_field(loader_t *self, size_t off, size_t len)
{
    //  Past the expected count only the count matters: a row of commas stays cheap
    if (self->header && self->nfields >= self->ncolmap) {
        self->nfields++;
        return 0;
    }
    if (self->nfields == self->fcap) {
        size_t cap = self->fcap ? self->fcap * 2 : 16;
        size_t *foff = realloc(self->foff, cap * sizeof(size_t));
        if (foff)
            self->foff = foff;
        size_t *flen = realloc(self->flen, cap * sizeof(size_t));
        if (flen)
            self->flen = flen;
        if (!foff || !flen)
            return -1;
        self->fcap = cap;
    }
    self->foff[self->nfields] = off;
    self->flen[self->nfields] = len;
    self->nfields++;
    return 0;
}

static void s_on_field(void *s, size_t len, void *arg)
{
    loader_t *self = arg;
    //  libcsv reuses its entry buffer: keep a copy
    if (self->header && self->nfields >= self->ncolmap)
        self->nfields++;
    else if (s_field(self, odp_buf_size(self->fbuf), len) || odp_buf_append(self->fbuf, s, len))
        self->oom = true;
}

static void s_on_row(int c, void *arg)
{
    (void)c;
    loader_t *self = arg;
    self->row_done = true;
}

static int s_csv_check(loader_t *self, size_t parsed, size_t len)
{
    if (self->oom)
        return s_oom(self);
    if (parsed != len) {
        self->failed = true;
        return odp_error_set(self->err, ODP_E_INTERNAL, NULL, "csv: %s",
                             csv_strerror(csv_error(&self->csv)));
    }
    return 0;
}

//  End of stream inside a row: an open quoted field is the provider's error, anything
//  else is a last row without a line end
static int s_csv_eof(loader_t *self, int64_t end)
{
    if (self->csv.pstate == S_CSV_ROW_NOT_BEGUN)
        return 0;
    if (self->csv.pstate == S_CSV_FIELD_BEGUN && self->csv.quoted) {
        csv_fini(&self->csv, NULL, NULL, NULL);
        if (!self->header) {
            self->failed = true;
            return odp_error_set(self->err, ODP_E_HEADER_MISMATCH, "header",
                                 "the header row ends inside a quoted field");
        }
        const char *raw;
        size_t rawlen;
        if (s_row_text(self, "", 0, &raw, &rawlen))
            return -1;
        int rc = self->bad ? s_reject_encoding(self, raw, rawlen)
                           : s_reject(self, "ragged", "unterminated quoted field", 25, raw, rawlen);
        if (rc)
            return -1;
        self->rows++;
        s_row_reset(self, end);
        return 0;
    }
    self->row_done = false;
    if (csv_fini(&self->csv, s_on_field, s_on_row, self) || self->oom)
        return s_oom(self);
    return self->row_done
               ? s_csv_row(self, odp_buf_data(self->fbuf), odp_buf_size(self->fbuf), "", 0, end)
               : 0;
}

//  A whole line with no quote, outside any open row: split at commas here, exactly as
//  libcsv would with our options (a field loses its leading and trailing CRs, nothing
//  else), without its per-byte callbacks. Two thirds of the loader's time otherwise.
static int s_csv_plain(loader_t *self, const char *text, size_t tlen, int64_t end)
{
    const char *p = text, *stop = text + tlen - 1; //  without the LF
    while (p < stop && *p == '\r')
        p++;
    if (p == stop) {
        self->row_start = end; //  a blank line
        return 0;
    }
    p = text;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(stop - p));
        const char *f = p, *e = comma ? comma : stop;
        while (f < e && *f == '\r')
            f++;
        while (e > f && e[-1] == '\r')
            e--;
        if (s_field(self, (size_t)(f - text), (size_t)(e - f)))
            return s_oom(self);
        if (!comma)
            break;
        p = comma + 1;
    }
    return s_csv_row(self, text, tlen, text, tlen, end);
}

//  A whole line whose quotes are all of the plainest kind - a field that starts with a
//  quote, ends with one directly before a comma or the line end, and holds only doubled
//  quotes in between - outside any open row: split and unquoted here, as libcsv does.
//  Anything else (a quote inside an unquoted field, text after a closing quote, a quoted
//  field running on to the next line) returns 1 and is libcsv's. 0, or -1 as s_csv_row.
static int s_csv_quoted(loader_t *self, const char *text, size_t tlen, int64_t end)
{
    const char *p = text, *stop = text + tlen - 1; //  without the LF
    odp_buf_reset(self->fbuf);
    self->nfields = 0;
    for (;;) {
        size_t off = odp_buf_size(self->fbuf);
        if (p < stop && *p == '"') {
            for (p++;;) {
                const char *q = memchr(p, '"', (size_t)(stop - p));
                if (!q)
                    goto libcsv; //  the field goes on past the line end
                bool doubled = q + 1 < stop && q[1] == '"';
                if (odp_buf_append(self->fbuf, p, (size_t)(q - p) + doubled))
                    return s_oom(self);
                p = q + 1 + doubled;
                if (!doubled)
                    break;
            }
            if (p < stop && *p != ',')
                goto libcsv;
        } else {
            const char *comma = memchr(p, ',', (size_t)(stop - p));
            const char *f = p, *e = comma ? comma : stop;
            if (memchr(f, '"', (size_t)(e - f)))
                goto libcsv;
            while (f < e && *f == '\r')
                f++;
            while (e > f && e[-1] == '\r')
                e--;
            if (odp_buf_append(self->fbuf, f, (size_t)(e - f)))
                return s_oom(self);
            p = comma ? comma : stop;
        }
        if (s_field(self, off, odp_buf_size(self->fbuf) - off))
            return s_oom(self);
        if (p == stop)
            break;
        p++; //  the comma
    }
    return s_csv_row(self, odp_buf_data(self->fbuf), odp_buf_size(self->fbuf), text, tlen, end);
libcsv:
    odp_buf_reset(self->fbuf);
    self->nfields = 0;
    return 1;
}

static int s_csv_line(loader_t *self, const char *text, size_t tlen, int64_t end, bool eof)
{
    if (!eof && self->csv.pstate == S_CSV_ROW_NOT_BEGUN) {
        if (!memchr(text, '"', tlen))
            return s_csv_plain(self, text, tlen, end);
        int rc = s_csv_quoted(self, text, tlen, end);
        if (rc <= 0)
            return rc;
    }
    self->row_done = false;
    size_t parsed = csv_parse(&self->csv, text, tlen, s_on_field, s_on_row, self);
    if (s_csv_check(self, parsed, tlen))
        return -1;
    //  Only LF ends a record and it is the line's last byte: at most one row per line
    if (self->row_done)
        return s_csv_row(self, odp_buf_data(self->fbuf), odp_buf_size(self->fbuf), text, tlen, end);
    if (self->csv.pstate == S_CSV_ROW_NOT_BEGUN) {
        //  A blank line: the next row starts after it
        self->row_start = end;
        odp_buf_reset(self->rowtext);
        return 0;
    }
    if (odp_buf_append(self->rowtext, text, tlen))
        return s_oom(self);
    return eof ? s_csv_eof(self, end) : 0;
}

/*  ---------------------------------------------------------------------------------------
    JSON Lines                                                                           */

//  End of the JSON value starting at s[i]; the text has passed jansson already
static size_t s_json_skip(const char *s, size_t n, size_t i)
{
    int depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            i++;
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            depth--;
            i++;
        } else if (c == ',' && depth == 0)
            return i;
        else
            i++;
        if (depth == 0 && (c == '"' || c == '}' || c == ']'))
            return i;
    }
    return i;
}

//  Spans of the top-level values of an object jansson accepted, in text order, which is
//  the order json_object_foreach() gives (jansson keeps insertion order)
static size_t s_json_spans(loader_t *self, const char *s, size_t n)
{
    size_t i = 0, k = 0;
    while (i < n && s[i] != '{')
        i++;
    i++;
    while (i < n && k < self->ncols) {
        while (i < n && s[i] != '"' && s[i] != '}')
            i++;
        if (i >= n || s[i] == '}')
            break;
        i = s_json_skip(s, n, i); //  the key
        while (i < n && s[i] != ':')
            i++;
        i++;
        while (i < n && s_is_space((unsigned char)s[i]))
            i++;
        size_t v0 = i;
        if (i < n && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))) {
            while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '+' ||
                             s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
                i++;
        } else
            i = s_json_skip(s, n, i);
        self->joff[k] = v0;
        self->jlen[k] = i - v0;
        k++;
        while (i < n && s[i] != ',' && s[i] != '}')
            i++;
        if (i < n && s[i] == ',')
            i++;
    }
    return k;
}

//  One JSON value for dictionary column j, at out (room reserved). NULL: wrong type.
static char *s_put_json(loader_t *self, char *out, size_t j, json_t *v)
{
    loader_type_t type = self->cols[j].type;
    if (!v || json_is_null(v))
        return s_put_null(out);
    if (json_is_string(v))
        return s_put_value(out, type, json_string_value(v), json_string_length(v));
    if (json_is_boolean(v)) {
        if (type != LOADER_BOOLEAN)
            return NULL;
        *out++ = json_is_true(v) ? 't' : 'f';
        return out;
    }
    if (json_is_number(v) && self->num[j]) {
        const char *s = self->num[j];
        size_t n = self->numlen[j];
        if (type == LOADER_NUMERIC) {
            if (!s_numeric_ok(s, n))
                return NULL;
            memcpy(out, s, n);
            return out + n;
        }
        if (type == LOADER_INTEGER) {
            if (s_int_ok(s, n)) {
                memcpy(out, s, n);
                return out + n;
            }
            //  5.0 or 1e3: integral, and exact below 2^53
            double d = json_number_value(v);
            if (d == floor(d) && fabs(d) < 9007199254740992.0)
                return s_put_i64(out, (int64_t)d);
        }
    }
    return NULL;
}

static const char *s_json_kind(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a JSON object";
    case JSON_ARRAY:
        return "a JSON array";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return "the number ";
    }
}

static int s_json_row(loader_t *self, const char *s, size_t n)
{
    char detail[320];
    json_error_t jerr;
    //  Integers as reals so that a big one is no parse error: numbers are written from
    //  their source text anyway, never from the double
    json_t *root = json_loadb(s, n, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        int len = snprintf(detail, sizeof detail, "not valid JSON: %s at character %d", jerr.text,
                           jerr.position);
        size_t dlen = len < 0 ? 0 : (size_t)len < sizeof detail ? (size_t)len : sizeof detail - 1;
        return s_reject(self, "shape", detail, dlen, s, n);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc = s_reject(self, "shape", "not a JSON object", 17, s, n);
        json_decref(root);
        return rc;
    }
    memset(self->jvals, 0, self->ncols * sizeof(json_t *));
    memset(self->num, 0, self->ncols * sizeof(char *));
    const char *key;
    json_t *val;
    size_t k = 0;
    bool numbers = false;
    json_object_foreach(root, key, val)
    {
        int j = s_find_col(self, key, strlen(key));
        if (j < 0) {
            int len = snprintf(detail, sizeof detail, "key \"%.*s\" is not a dictionary column",
                               (int)odp_utf8_cut(key, strlen(key), 128), key);
            rc = s_reject(self, "shape", detail, (size_t)len, s, n);
            json_decref(root);
            return rc;
        }
        self->jvals[j] = val;
        self->jorder[k++] = j;
        if (json_is_number(val))
            numbers = true;
    }
    if (numbers) {
        size_t spans = s_json_spans(self, s, n);
        for (size_t i = 0; i < k && i < spans; i++) {
            self->num[self->jorder[i]] = s + self->joff[i];
            self->numlen[self->jorder[i]] = self->jlen[i];
        }
    }
    //  A number written from its double (1e15) may be longer than its source text
    char *start = odp_buf_reserve(self->staged, 24 + 2 * n + 24 * self->ncols);
    if (!start) {
        json_decref(root);
        return s_oom(self);
    }
    char *p = s_put_i64(start, self->rows + 1);
    for (size_t j = 0; j < self->ncols && p; j++) {
        *p++ = '\t';
        char *next = s_put_json(self, p, j, self->jvals[j]);
        if (!next) {
            json_t *v = self->jvals[j];
            size_t dlen;
            if (json_is_string(v))
                dlen = s_type_detail(detail, sizeof detail, &self->cols[j], self->name_len[j], "",
                                     json_string_value(v), json_string_length(v));
            else {
                bool number = json_is_number(v) && self->num[j];
                dlen = s_type_detail(detail, sizeof detail, &self->cols[j], self->name_len[j],
                                     s_json_kind(v), number ? self->num[j] : NULL,
                                     number ? self->numlen[j] : 0);
            }
            rc = s_reject(self, "type", detail, dlen, s, n);
        }
        p = next;
    }
    if (p) {
        *p++ = '\n';
        odp_buf_extend(self->staged, (size_t)(p - start));
    }
    json_decref(root);
    return rc;
}

static int s_json_line(loader_t *self, const char *text, size_t tlen, int64_t end)
{
    size_t n = s_chomp(text, tlen);
    size_t i = 0;
    while (i < n && s_is_space((unsigned char)text[i]))
        i++;
    if (i == n && !self->bad) {
        self->row_start = end;
        return 0;
    }
    int rc = self->bad ? s_reject_encoding(self, text, n) : s_json_row(self, text, n);
    if (rc)
        return -1;
    self->rows++;
    s_row_reset(self, end);
    return 0;
}

/*  ---------------------------------------------------------------------------------------
    Lines                                                                                */

static int s_too_long(loader_t *self)
{
    self->failed = true;
    if (self->format == LOADER_CSV && !self->header)
        return odp_error_set(self->err, ODP_E_RULE_ROW_LENGTH, "max_row_length",
                             "the header row is longer than max_row_length (%zu bytes)",
                             self->max_row);
    return odp_error_set(self->err, ODP_E_RULE_ROW_LENGTH, "max_row_length",
                         "row %lld is longer than max_row_length (%zu bytes)",
                         (long long)(self->rows + 1), self->max_row);
}

//  One line of raw bytes starting at raw offset at; it ends in '\n' unless eof
static int s_line(loader_t *self, const char *raw, size_t n, int64_t at, bool eof)
{
    if ((uint64_t)(at + (int64_t)s_chomp(raw, n) - self->row_start) > self->max_row)
        return s_too_long(self);
    const char *text;
    size_t tlen;
    if (s_decode(self, raw, n, at, &text, &tlen))
        return s_oom(self);
    if (self->at_start) {
        self->at_start = false;
        if (tlen >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
            text += 3, tlen -= 3;
    }
    int64_t end = at + (int64_t)n;
    if (self->format == LOADER_CSV)
        return s_csv_line(self, text, tlen, end, eof);
    return s_json_line(self, text, tlen, end);
}

/*  ---------------------------------------------------------------------------------------
    API                                                                                  */

static int s_csv_is_space(unsigned char c)
{
    //  Only CR, so that CR LF ends a row while spaces and tabs stay part of the value
    return c == '\r';
}

static int s_csv_is_term(unsigned char c)
{
    //  Only LF: row ends then coincide with line ends, where raw offsets are known
    return c == '\n';
}

loader_t *loader_new(loader_format_t format, loader_encoding_t encoding, const loader_col_t *cols,
                     size_t ncols, size_t max_row_length)
{
    if (!cols || !ncols || ncols > INT32_MAX || (format != LOADER_CSV && format != LOADER_JSONL) ||
        (encoding != LOADER_UTF8 && encoding != LOADER_GB18030))
        return NULL;
    loader_t *self = calloc(1, sizeof(loader_t));
    if (!self)
        return NULL;
    self->format = format;
    self->encoding = encoding;
    self->ncols = ncols;
    self->max_row = max_row_length;
    self->at_start = true;
    self->cd = (iconv_t)-1;
    csv_init(&self->csv, 0);
    csv_set_space_func(&self->csv, s_csv_is_space);
    csv_set_term_func(&self->csv, s_csv_is_term);
    csv_set_blk_size(&self->csv, 4096);

    size_t total = 0;
    for (size_t j = 0; j < ncols; j++) {
        if (!cols[j].name)
            goto fail;
        total += strlen(cols[j].name) + 1;
    }
    self->line = odp_buf_new();
    self->conv = odp_buf_new();
    self->rowtext = odp_buf_new();
    self->fbuf = odp_buf_new();
    self->cols = calloc(ncols, sizeof(loader_col_t));
    self->name_len = calloc(ncols, sizeof(size_t));
    self->names = malloc(total);
    self->jvals = calloc(ncols, sizeof(json_t *));
    self->jorder = calloc(ncols, sizeof(int));
    self->joff = calloc(ncols, sizeof(size_t));
    self->jlen = calloc(ncols, sizeof(size_t));
    self->num = calloc(ncols, sizeof(char *));
    self->numlen = calloc(ncols, sizeof(size_t));
    if (!self->line || !self->conv || !self->rowtext || !self->fbuf || !self->cols ||
        !self->name_len || !self->names || !self->jvals || !self->jorder || !self->joff ||
        !self->jlen || !self->num || !self->numlen)
        goto fail;
    char *name = self->names;
    for (size_t j = 0; j < ncols; j++) {
        size_t len = strlen(cols[j].name);
        memcpy(name, cols[j].name, len + 1);
        self->cols[j].name = name;
        self->cols[j].type = cols[j].type;
        self->name_len[j] = len;
        name += len + 1;
    }
    if (encoding == LOADER_GB18030) {
        self->cd = iconv_open("UTF-8", "GB18030");
        if (self->cd == (iconv_t)-1)
            goto fail;
    }
    return self;
fail:
    loader_destroy(&self);
    return NULL;
}

void loader_destroy(loader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    loader_t *self = *self_p;
    if (self->cd != (iconv_t)-1)
        iconv_close(self->cd);
    csv_free(&self->csv);
    free(self->cols);
    free(self->name_len);
    free(self->names);
    free(self->colmap);
    free(self->dictpos);
    odp_buf_destroy(&self->line);
    odp_buf_destroy(&self->conv);
    odp_buf_destroy(&self->rowtext);
    odp_buf_destroy(&self->fbuf);
    free(self->foff);
    free(self->flen);
    free(self->jvals);
    free(self->jorder);
    free(self->joff);
    free(self->jlen);
    free(self->num);
    free(self->numlen);
    free(self);
    *self_p = NULL;
}

int loader_resume(loader_t *self, int64_t offset, int64_t rows, int64_t rejected, const int *colmap,
                  size_t ncolmap)
{
    if (!self || self->fed || offset < 0 || rows < 0 || rejected < 0 || rejected > rows)
        return -1;
    if (self->format == LOADER_CSV) {
        //  Past the first row there is always a header, and it maps every column once
        if (offset > 0 && !colmap)
            return -1;
        if (colmap) {
            //  A header column may be ignored (-1: an empty name, as after a trailing
            //  comma); every dictionary column must still be mapped exactly once
            if (ncolmap < self->ncols)
                return -1;
            int *map = malloc(ncolmap * sizeof(int));
            int *pos = malloc(self->ncols * sizeof(int));
            if (!map || !pos) {
                free(map);
                free(pos);
                return -1;
            }
            for (size_t j = 0; j < self->ncols; j++)
                pos[j] = -1;
            size_t mapped = 0;
            for (size_t i = 0; i < ncolmap; i++) {
                map[i] = colmap[i];
                if (colmap[i] == -1)
                    continue;
                if (colmap[i] < 0 || (size_t)colmap[i] >= self->ncols || pos[colmap[i]] >= 0) {
                    free(map);
                    free(pos);
                    return -1;
                }
                pos[colmap[i]] = (int)i;
                mapped++;
            }
            if (mapped != self->ncols) {
                free(map);
                free(pos);
                return -1;
            }
            free(self->colmap);
            free(self->dictpos);
            self->colmap = map;
            self->dictpos = pos;
            self->ncolmap = ncolmap;
            self->header = true;
        }
    }
    self->offset = self->boundary = self->row_start = offset;
    self->rows = rows;
    self->rejected = rejected;
    self->at_start = offset == 0;
    return 0;
}

static int s_begin(loader_t *self, odp_buf_t *staged, odp_buf_t *rejected, odp_error_t *err)
{
    if (!self || !staged || !rejected)
        return odp_error_set(err, ODP_E_INTERNAL, NULL, "loader: missing argument");
    if (self->failed)
        return odp_error_set(err, ODP_E_INTERNAL, NULL, "loader: failed or finished already");
    self->fed = true;
    self->staged = staged;
    self->rejects = rejected;
    self->err = err;
    return 0;
}

int loader_feed(loader_t *self, const char *data, size_t len, odp_buf_t *staged,
                odp_buf_t *rejected, odp_error_t *err)
{
    if (s_begin(self, staged, rejected, err))
        return -1;
    if (!len)
        return 0;
    if (!data)
        return odp_error_set(err, ODP_E_INTERNAL, NULL, "loader: no data");
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            //  A line still open: keep it, but never more of it than one row may hold
            size_t n = (size_t)(end - p);
            int64_t pending = self->offset + (int64_t)n - self->row_start;
            if (end[-1] == '\r')
                pending--; //  may be the CR of a CR LF
            if ((uint64_t)pending > self->max_row)
                return s_too_long(self);
            if (odp_buf_append(self->line, p, n))
                return s_oom(self);
            self->offset += (int64_t)n;
            break;
        }
        size_t n = (size_t)(nl + 1 - p);
        int rc;
        if (odp_buf_size(self->line)) {
            int64_t at = self->offset - (int64_t)odp_buf_size(self->line);
            if (odp_buf_append(self->line, p, n))
                return s_oom(self);
            rc = s_line(self, odp_buf_data(self->line), odp_buf_size(self->line), at, false);
            odp_buf_reset(self->line);
        } else
            rc = s_line(self, p, n, self->offset, false);
        if (rc)
            return -1;
        self->offset += (int64_t)n;
        p += n;
    }
    return 0;
}

int loader_finish(loader_t *self, odp_buf_t *staged, odp_buf_t *rejected, odp_error_t *err)
{
    if (s_begin(self, staged, rejected, err))
        return -1;
    int rc = 0;
    size_t open = odp_buf_size(self->line);
    if (open) {
        rc = s_line(self, odp_buf_data(self->line), open, self->offset - (int64_t)open, true);
        odp_buf_reset(self->line);
    } else if (self->format == LOADER_CSV)
        rc = s_csv_eof(self, self->offset);
    if (rc)
        return -1;
    if (self->format == LOADER_CSV && !self->header) {
        self->failed = true;
        return odp_error_set(err, ODP_E_HEADER_MISMATCH, "header", "the file has no header row");
    }
    //  Trailing blank lines are accounted for too: the whole stream is
    self->boundary = self->offset;
    //  Nothing more may come: a further feed is a caller's error
    self->failed = true;
    return 0;
}

int64_t loader_boundary(const loader_t *self)
{
    return self ? self->boundary : 0;
}

int64_t loader_rows(const loader_t *self)
{
    return self ? self->rows : 0;
}

int64_t loader_rejected(const loader_t *self)
{
    return self ? self->rejected : 0;
}

const int *loader_colmap(const loader_t *self, size_t *n)
{
    if (!self || !self->header) {
        if (n)
            *n = 0;
        return NULL;
    }
    if (n)
        *n = self->ncolmap;
    return self->colmap;
}
