/*  The hashes of a group's values of unique text fields (migrations/034_stage_keys.sql),
    so that the review's repeat check reads them instead of scanning and hashing the
    staging table (issue 8: that count was most of the review of a clean version).

    Each value is hashed with libsodium's SipHash-2-4 (crypto_shorthash) under a fixed key,
    over its text as the loader staged it: the loader escapes a value one way only
    (loader.c, s_escape), so equal texts are equal values and distinct texts distinct
    ones, and a NULL (\N) is counted, not hashed. A group's hashes are sorted before they
    are stored, so the reviewer merges the groups' runs without holding them all. Equal
    values give equal hashes, so no repeated value is missed; a collision of distinct
    values only sends the reviewer to its exact comparison, which then finds nothing. A
    group holds at most max hashes (the registrar's memory stays bounded whatever is
    pushed): past that the evidence is given up and the reviewer counts by a scan. */
#include "push.h"

#include "copybin.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;     /* NULL: not keyed */
    uint64_t *hash; /* the group's, in arrival order until taken */
    size_t n, cap;
    int64_t nulls;
} s_field_t;

struct push_keys_t {
    bool *keyed; /* by staged column, row_no first */
    s_field_t *fields;
    size_t ncols, nkeyed, held, max;
    bool lost;
    copybin_tap_t tap;
};

/*  The key of the hashes: fixed, so that every registrar and every resumed push hash
    alike. It guards nothing (a crafted collision costs the reviewer a scan, not a missed
    repeat). */
static const unsigned char s_key[crypto_shorthash_KEYBYTES] = "odp stage keys";

push_keys_t *push_keys_new(const bool *keyed, const char *const *names, size_t ncols, size_t max)
{
    push_keys_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->keyed = calloc(ncols ? ncols : 1, sizeof *self->keyed);
    self->fields = calloc(ncols ? ncols : 1, sizeof *self->fields);
    self->ncols = ncols;
    self->max = max;
    bool ok = self->keyed && self->fields;
    for (size_t c = 0; ok && c < ncols; c++) {
        if (!keyed[c])
            continue;
        self->keyed[c] = true;
        self->nkeyed++;
        ok = (self->fields[c].name = strdup(names[c])) != NULL;
    }
    self->tap = (copybin_tap_t){.fields = self->keyed, .arg = self};
    if (!ok)
        push_keys_destroy(&self);
    return self;
}

void push_keys_destroy(push_keys_t **self_p)
{
    push_keys_t *self = *self_p;
    if (!self)
        return;
    for (size_t c = 0; self->fields && c < self->ncols; c++) {
        free(self->fields[c].name);
        free(self->fields[c].hash);
    }
    free(self->fields);
    free(self->keyed);
    free(self);
    *self_p = NULL;
}

static void s_tap(void *arg, size_t col, const char *text, size_t len)
{
    push_keys_t *self = arg;
    s_field_t *f = &self->fields[col];
    if (self->lost)
        return;
    if (len == 2 && text[0] == '\\' && text[1] == 'N') {
        f->nulls++;
        return;
    }
    if (self->held >= self->max) {
        self->lost = true;
        return;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4096;
        uint64_t *h = realloc(f->hash, cap * sizeof *h);
        if (!h) {
            self->lost = true;
            return;
        }
        f->hash = h;
        f->cap = cap;
    }
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)text, len, s_key);
    uint64_t v = 0;
    for (size_t i = 0; i < crypto_shorthash_BYTES; i++)
        v = v << 8 | out[i];
    f->hash[f->n++] = v;
    self->held++;
}

const copybin_tap_t *push_keys_tap(push_keys_t *self, const copybin_tap_t *next)
{
    self->tap.fn = s_tap;
    self->tap.next = next;
    return &self->tap;
}

void push_keys_give_up(push_keys_t *self)
{
    self->lost = true;
}

bool push_keys_lost(const push_keys_t *self)
{
    return self->lost;
}

static int s_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*  Sort n hashes: a radix sort by bytes, least significant first (eight passes, so the
    result ends where it began), about ten times faster than qsort() on a group's 150,000
    and on the push's path; qsort() when the second buffer cannot be had. */
static void s_sort(uint64_t *a, size_t n)
{
    if (n < 2)
        return;
    uint64_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp) {
        qsort(a, n, sizeof *a, s_cmp);
        return;
    }
    uint64_t *from = a, *to = tmp;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t at[257] = {0};
        for (size_t i = 0; i < n; i++)
            at[((from[i] >> shift) & 0xFF) + 1]++;
        for (size_t b = 1; b < 257; b++)
            at[b] += at[b - 1];
        for (size_t i = 0; i < n; i++)
            to[at[(from[i] >> shift) & 0xFF]++] = from[i];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    free(tmp);
}

size_t push_keys_count(const push_keys_t *self)
{
    return self->nkeyed;
}

int push_keys_take(push_keys_t *self, size_t i, const char **name, int64_t *nulls, odp_buf_t *out)
{
    size_t c = 0;
    for (size_t k = 0; c < self->ncols; c++)
        if (self->keyed[c] && k++ == i)
            break;
    if (c == self->ncols)
        return -1;
    s_field_t *f = &self->fields[c];
    s_sort(f->hash, f->n);
    char *o = f->n ? odp_buf_reserve(out, 8 * f->n) : NULL;
    if (f->n && !o)
        return -1;
    for (size_t k = 0; k < f->n; k++)
        for (int b = 0; b < 8; b++)
            *o++ = (char)(f->hash[k] >> (56 - 8 * b));
    odp_buf_extend(out, 8 * f->n);
    *name = f->name;
    *nulls = f->nulls;
    self->held -= f->n;
    f->n = 0;
    f->nulls = 0;
    return 0;
}
