/*  Evidence for the reviewer's row-level checks (migrations/033_stage_checks.sql), made while
    a group's values stream past: for each check of the upload's dictionary revision, how
    many values this code could not prove to pass it. A proof mirrors the reviewer's SQL
    (services/reviewer/migrations/005_cheaper_checks.sql, collect_row_findings) exactly
    where it is given, and is refused wherever it is not certain: a value with an escape,
    a numeric near its bound, a pattern of another shape, a check digit. A refused proof
    only sends the check to the reviewer's SQL, as before; a wrong proof would hide a
    finding, so every doubt counts as unproven. Memory is the field specs and a counter
    per check, whatever the row count. */
#include "push.h"

#include "copybin.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  PostgreSQL's largest repetition count (RE_DUP_MAX): a larger one does not compile. */
#define S_DUP_MAX 255

/*  The checks, in the order of their lines, named as the reviewer's findings name them. */
enum { C_REQUIRED, C_ENUM, C_MIN, C_MAX, C_MAXLEN, C_MINLEN, C_PATTERN, C_DIGITS, C_N };
static const char *const s_names[C_N] = {"required",  "enum",      "minimum", "maximum",
                                         "maxLength", "minLength", "pattern", NULL};

/*  A plain decimal ([+-]digits[.digits], a digit at least): its sign (0 for zero), its
    integer digits without leading zeros and its fraction without trailing zeros. */
typedef struct {
    int sign;
    const char *ip, *fp;
    size_t il, fl;
} s_dec_t;

typedef struct {
    char *name;    /* COPY-escaped */
    bool has[C_N]; /* the field has the check */
    int64_t unproven[C_N];
    bool text;    /* a text field: the staged text is the value */
    bool integer; /* an integer field: bounds compare exactly */
    bool numeric; /* a numeric field: bounds compare exactly, or with a margin */
    int64_t length, min_length;
    char **allowed; /* text fields' listed values */
    size_t *allowed_len, nallowed;
    bool allowed_none;   /* an empty list: x <> ALL ('{}') holds even for NULL */
    bool min_ok, max_ok; /* the bound was read (else the check is never proven) */
    int64_t imin, imax;
    double dmin, dmax;
    bool min_dec, max_dec; /* a numeric bound as a plain decimal, compared exactly */
    s_dec_t decmin, decmax;
    char *bounds[2]; /* the text decmin and decmax point into */
    bool pat_ok;     /* the pattern has the short cut's shape */
    char *prefix;
    size_t plen;
    bool run[128];
    int64_t lo, hi; /* hi -1: unbounded */
    char *digits;   /* check_name: uscc or idcard */
} s_field_t;

struct push_checks_t {
    s_field_t *fields; /* by staged column, row_no first */
    size_t ncols;
    bool *tapped;
    copybin_tap_t tap;
    bool any_value; /* the open row has a value that is not empty */
    int64_t blank;  /* rows not proven not blank */
    bool lost;
};

/*  Strict: an optional '-', digits, within int64. */
static bool s_int64(const char *p, size_t len, int64_t *out)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(p[i] >= '0' && p[i] <= '9') && !(i == 0 && p[i] == '-' && len > 1))
            return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    errno = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/*  A finite decimal of digits, sign, point and exponent only (no space, hex, NaN or
    infinity, which numeric reads otherwise or not at all). */
static bool s_double(const char *p, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789.+-eE", p[i]) || !p[i])
            return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    if (errno || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/*  p as a plain decimal. */
static bool s_dec(const char *p, size_t len, s_dec_t *d)
{
    const char *end = p + len;
    int sign = 1;
    if (p < end && (*p == '+' || *p == '-'))
        sign = *p++ == '-' ? -1 : 1;
    const char *ip = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    size_t il = (size_t)(p - ip);
    const char *fp = p;
    size_t fl = 0;
    if (p < end && *p == '.') {
        fp = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        fl = (size_t)(p - fp);
    }
    if (p != end || il + fl == 0)
        return false;
    while (il > 0 && *ip == '0')
        ip++, il--;
    while (fl > 0 && fp[fl - 1] == '0')
        fl--;
    *d = (s_dec_t){.sign = il + fl ? sign : 0, .ip = ip, .fp = fp, .il = il, .fl = fl};
    return true;
}

/*  The order of two plain decimals, exactly as numeric orders them: <0, 0 or >0. */
static int s_dec_cmp(const s_dec_t *a, const s_dec_t *b)
{
    if (a->sign != b->sign)
        return a->sign < b->sign ? -1 : 1;
    int mag = 0;
    if (a->il != b->il)
        mag = a->il < b->il ? -1 : 1;
    else if (a->il && (mag = memcmp(a->ip, b->ip, a->il)) != 0)
        mag = mag < 0 ? -1 : 1;
    for (size_t i = 0; mag == 0 && i < a->fl + b->fl; i++) {
        char x = i < a->fl ? a->fp[i] : '0', y = i < b->fl ? b->fp[i] : '0';
        mag = x == y ? 0 : x < y ? -1 : 1;
    }
    return a->sign * mag;
}

/*  a > b beyond any rounding of the two parses (each within 2^-53 of its decimal). */
static bool s_clearly_above(double a, double b)
{
    return a - b > 1e-9 * (fabs(a) + fabs(b));
}

/*  The short cut of pattern_shortcut() (005_cheaper_checks.sql), parsed as it parses it:
    a prefix of [A-Za-z0-9-], then a bracket of letters, digits and ranges of them, or the
    escape d, then {n}, {n,}, {n,m}, *, + or ?. false for any other pattern. */
static bool s_pattern(s_field_t *f, const char *pat)
{
    const char *p = pat;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
           *p == '-')
        p++;
    size_t plen = (size_t)(p - pat);
#define S_ALNUM(c)                                                                                 \
    (((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') || ((c) >= '0' && (c) <= '9'))
    if (p[0] == '\\' && p[1] == 'd') {
        for (int c = '0'; c <= '9'; c++)
            f->run[c] = true;
        p += 2;
    } else if (p[0] == '[') {
        p++;
        const char *start = p;
        while (S_ALNUM(*p)) {
            if (p[1] == '-' && S_ALNUM(p[2])) {
                if (p[0] > p[2])
                    return false;
                for (int c = p[0]; c <= p[2]; c++)
                    f->run[c] = true;
                p += 3;
            } else {
                f->run[(unsigned char)*p] = true;
                p++;
            }
        }
        if (p == start || *p != ']')
            return false;
        p++;
    } else {
        return false;
    }
    f->lo = 1;
    f->hi = 1;
    if (*p == '{') {
        int64_t n[2] = {0, 0};
        int got[2] = {0, 0}, k = 0;
        for (p++;; p++) {
            if (*p >= '0' && *p <= '9') {
                if (++got[k] > 4)
                    return false;
                n[k] = n[k] * 10 + (*p - '0');
            } else if (*p == ',' && k == 0 && got[0] > 0) {
                k = 1;
            } else {
                break;
            }
        }
        if (*p != '}' || got[0] == 0)
            return false;
        p++;
        f->lo = n[0];
        f->hi = k == 0 ? n[0] : got[1] ? n[1] : -1;
    } else if (*p == '*' || *p == '+' || *p == '?') {
        f->lo = *p == '+' ? 1 : 0;
        f->hi = *p == '?' ? 1 : -1;
        p++;
    }
#undef S_ALNUM
    if (*p || (f->hi >= 0 && f->hi < f->lo) || f->lo > S_DUP_MAX || f->hi > S_DUP_MAX)
        return false;
    if (plen > 0 && f->run[(unsigned char)pat[plen - 1]])
        return false;
    f->prefix = strndup(pat, plen);
    f->plen = plen;
    return f->prefix != NULL;
}

static void s_value(push_checks_t *self, size_t col, const char *p, size_t len);

static void s_tap(void *arg, size_t col, const char *text, size_t len)
{
    s_value(arg, col, text, len);
}

push_checks_t *push_checks_new(const push_check_spec_t *specs, size_t ncols)
{
    push_checks_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fields = calloc(ncols ? ncols : 1, sizeof *self->fields);
    self->tapped = calloc(ncols ? ncols : 1, sizeof *self->tapped);
    self->ncols = ncols;
    bool ok = self->fields && self->tapped;
    for (size_t c = 1; ok && c < ncols; c++) {
        const push_check_spec_t *s = &specs[c];
        s_field_t *f = &self->fields[c];
        self->tapped[c] = true;
        ok = (f->name = push_copy_escape(s->name)) != NULL;
        f->text = strcmp(s->type, "text") == 0;
        f->integer = strcmp(s->type, "integer") == 0;
        f->numeric = strcmp(s->type, "numeric") == 0;
        f->has[C_REQUIRED] = s->required;
        f->has[C_ENUM] = s->allowed != NULL;
        f->allowed_none = s->allowed && s->nallowed == 0;
        if (ok && s->allowed && f->text && s->nallowed) {
            f->allowed = calloc(s->nallowed, sizeof *f->allowed);
            f->allowed_len = calloc(s->nallowed, sizeof *f->allowed_len);
            ok = f->allowed && f->allowed_len;
            for (size_t i = 0; ok && i < s->nallowed; i++, f->nallowed++) {
                ok = (f->allowed[i] = strdup(s->allowed[i])) != NULL;
                f->allowed_len[i] = strlen(s->allowed[i]);
            }
        }
        f->has[C_MIN] = s->min && (f->integer || f->numeric);
        f->has[C_MAX] = s->max && (f->integer || f->numeric);
        if (f->integer) {
            f->min_ok = s->min && s_int64(s->min, strlen(s->min), &f->imin);
            f->max_ok = s->max && s_int64(s->max, strlen(s->max), &f->imax);
        } else if (f->numeric) {
            f->min_ok = s->min && s_double(s->min, strlen(s->min), &f->dmin);
            f->max_ok = s->max && s_double(s->max, strlen(s->max), &f->dmax);
            f->bounds[0] = s->min ? strdup(s->min) : NULL;
            f->bounds[1] = s->max ? strdup(s->max) : NULL;
            ok = (!s->min || f->bounds[0]) && (!s->max || f->bounds[1]);
            f->min_dec = ok && s->min && s_dec(f->bounds[0], strlen(f->bounds[0]), &f->decmin);
            f->max_dec = ok && s->max && s_dec(f->bounds[1], strlen(f->bounds[1]), &f->decmax);
        }
        f->has[C_MAXLEN] = s->length > 0 && f->text;
        f->length = s->length;
        f->has[C_MINLEN] = s->min_length > 0 && f->text;
        f->min_length = s->min_length;
        f->has[C_PATTERN] = s->pattern != NULL;
        f->pat_ok = s->pattern && f->text && s_pattern(f, s->pattern);
        if (ok && s->check_name) {
            f->has[C_DIGITS] = true;
            ok = (f->digits = strdup(s->check_name)) != NULL;
        }
    }
    self->tap = (copybin_tap_t){.fields = self->tapped, .fn = s_tap, .arg = self};
    if (!ok)
        push_checks_destroy(&self);
    return self;
}

void push_checks_destroy(push_checks_t **self_p)
{
    push_checks_t *self = *self_p;
    if (!self)
        return;
    for (size_t c = 0; self->fields && c < self->ncols; c++) {
        s_field_t *f = &self->fields[c];
        free(f->name);
        for (size_t i = 0; i < f->nallowed; i++)
            free(f->allowed[i]);
        free(f->allowed);
        free(f->allowed_len);
        free(f->prefix);
        free(f->digits);
        free(f->bounds[0]);
        free(f->bounds[1]);
    }
    free(self->fields);
    free(self->tapped);
    free(self);
    *self_p = NULL;
}

/*  UTF-8 characters: the bytes that do not continue one. */
static int64_t s_chars(const char *p, size_t len)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)p[i] & 0xC0) != 0x80;
    return n;
}

/*  One value of column col, as the loader staged it. A check's SQL finds a value only
    when its expression is true; NULL passes every check but required. */
static void s_value(push_checks_t *self, size_t col, const char *p, size_t len)
{
    s_field_t *f = &self->fields[col];
    bool null = len == 2 && p[0] == '\\' && p[1] == 'N';
    /*  Empty as the SQL sees it: only a text can be (any other type's text is not). */
    bool empty = len == 0;
    if (!null && !empty)
        self->any_value = true;
    if (col + 1 == self->ncols) {
        if (!self->any_value)
            self->blank++;
        self->any_value = false;
    }
    if (null) {
        f->unproven[C_REQUIRED] += f->has[C_REQUIRED];
        f->unproven[C_ENUM] += f->allowed_none;
        return;
    }
    /*  (s IS NULL OR s = '') for a text, (s IS NULL) otherwise. */
    f->unproven[C_REQUIRED] += f->has[C_REQUIRED] && empty;
    /*  An escaped text is not its staged bytes: none of its other checks is proven. */
    bool plain = f->text && !memchr(p, '\\', len);
    if (f->has[C_ENUM]) {
        bool in = false;
        for (size_t i = 0; plain && !in && i < f->nallowed; i++)
            in = f->allowed_len[i] == len && memcmp(f->allowed[i], p, len) == 0;
        f->unproven[C_ENUM] += !in;
    }
    if (f->has[C_MIN] || f->has[C_MAX]) {
        bool min = false, max = false;
        int64_t i;
        double d;
        s_dec_t v;
        if (f->integer && s_int64(p, len, &i)) {
            min = f->min_ok && i >= f->imin;
            max = f->max_ok && i <= f->imax;
        } else if (f->numeric && s_dec(p, len, &v)) {
            /*  Both plain decimals: exact, at the bound too. */
            min = f->min_dec && s_dec_cmp(&v, &f->decmin) >= 0;
            max = f->max_dec && s_dec_cmp(&v, &f->decmax) <= 0;
        } else if (f->numeric && s_double(p, len, &d)) {
            min = f->min_ok && s_clearly_above(d, f->dmin);
            max = f->max_ok && s_clearly_above(f->dmax, d);
        }
        f->unproven[C_MIN] += f->has[C_MIN] && !min;
        f->unproven[C_MAX] += f->has[C_MAX] && !max;
    }
    if (f->has[C_MAXLEN] || f->has[C_MINLEN]) {
        /*  (octet_length(s) > max AND char_length(s) > max); (s <> '' AND octet_length(s)
            < min * 4 AND char_length(s) < min): a character takes 1 to 4 bytes. */
        int64_t bytes = (int64_t)len, chars = -1;
        if (plain && ((f->has[C_MAXLEN] && bytes > f->length) ||
                      (f->has[C_MINLEN] && bytes < f->min_length * 4)))
            chars = s_chars(p, len);
        f->unproven[C_MAXLEN] +=
            f->has[C_MAXLEN] && !(plain && (bytes <= f->length || chars <= f->length));
        f->unproven[C_MINLEN] += f->has[C_MINLEN] && !empty &&
                                 !(plain && (bytes >= f->min_length * 4 || chars >= f->min_length));
    }
    if (f->has[C_PATTERN] && !(f->text && empty)) {
        /*  (s <> '' AND NOT (octet_length(s) within bounds AND rtrim(s, run) = prefix OR
            s ~ pattern)): the short cut's truth proves a match. */
        bool match = plain && f->pat_ok && len >= f->plen + (size_t)f->lo &&
                     (f->hi < 0 || len <= f->plen + (size_t)f->hi);
        if (match) {
            size_t n = len;
            while (n > 0 && (unsigned char)p[n - 1] < 128 && f->run[(unsigned char)p[n - 1]])
                n--;
            match = n == f->plen && memcmp(p, f->prefix, n) == 0;
        }
        f->unproven[C_PATTERN] += !match;
    }
    /*  Check digits are the SQL's to decide: every value that is not empty. */
    f->unproven[C_DIGITS] += f->has[C_DIGITS] && !(f->text && empty);
}

const copybin_tap_t *push_checks_tap(push_checks_t *self, const copybin_tap_t *next)
{
    self->tap.next = next;
    return &self->tap;
}

void push_checks_add(push_checks_t *self, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end && !self->lost) {
        for (size_t c = 0; c < self->ncols; c++) {
            const char *fe = memchr(p, c + 1 < self->ncols ? '\t' : '\n', (size_t)(end - p));
            if (!fe) {
                self->lost = true; /* not as the loader writes rows */
                return;
            }
            if (c > 0)
                s_value(self, c, p, (size_t)(fe - p));
            p = fe + 1;
        }
    }
}

void push_checks_give_up(push_checks_t *self)
{
    self->lost = true;
}

bool push_checks_lost(const push_checks_t *self)
{
    return self->lost;
}

int push_checks_take(push_checks_t *self, int64_t upload, odp_buf_t *out)
{
    size_t start = odp_buf_size(out);
    char line[160];
    int rc = 0;
    for (size_t c = 1; rc == 0 && c < self->ncols; c++) {
        s_field_t *f = &self->fields[c];
        for (int k = 0; rc == 0 && k < C_N; k++) {
            if (!f->has[k])
                continue;
            int n = snprintf(line, sizeof line, "%" PRId64 "\t", upload);
            int m = snprintf(line + n, sizeof line - (size_t)n, "\t%s\t%" PRId64 "\n",
                             k == C_DIGITS ? f->digits : s_names[k], f->unproven[k]);
            rc = odp_buf_append(out, line, (size_t)n) < 0 ||
                         odp_buf_append(out, f->name, strlen(f->name)) < 0 ||
                         odp_buf_append(out, line + n, (size_t)m) < 0
                     ? -1
                     : 0;
            f->unproven[k] = 0;
        }
    }
    if (rc == 0 && self->ncols > 1) {
        int n = snprintf(line, sizeof line, "%" PRId64 "\t\\N\tblank-row\t%" PRId64 "\n", upload,
                         self->blank);
        rc = odp_buf_append(out, line, (size_t)n);
    }
    self->blank = 0;
    if (rc < 0)
        odp_buf_truncate(out, start);
    return rc < 0 ? -1 : 0;
}
