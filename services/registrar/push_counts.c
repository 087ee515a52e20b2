/*  The counts of a group's code-like values (migrations/032_stage_counts.sql): the staged
    text of each counted column, as the loader wrote it, in one hash table of (column,
    value) keys per group. A column of an enumerated field holds few distinct values, but
    the loader does not refuse values outside the list (the review quarantines them), so a
    group holding more than S_MAX_KEYS distinct ones gives the counting up: memory stays
    bounded whatever is pushed, and the publisher then counts by a scan as before. */
#include "push.h"

#include "copybin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_KEYS 20000

typedef struct {
    char *value; /* NULL: a free bucket */
    size_t len;
    uint64_t hash;
    int64_t count;
    uint32_t col;
} s_entry_t;

struct push_counts_t {
    bool *counted; /* by staged column, row_no first */
    char **names;  /* COPY-escaped names of the counted columns */
    size_t ncols;
    size_t last;       /* the last counted column */
    bool any;          /* some column is counted */
    copybin_tap_t tap; /* the counted columns' values, as copybin converts them */
    s_entry_t *table;
    size_t cap, used;
    bool overflow;
};

/*  FNV-1a over the column and the value's bytes. */
static uint64_t s_hash(uint32_t col, const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ col;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

char *push_copy_escape(const char *name)
{
    char *out = malloc(2 * strlen(name) + 1), *o = out;
    for (const char *p = name; out && *p; p++) {
        char c = *p == '\\' ? '\\' : *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : 0;
        if (c) {
            *o++ = '\\';
            *o++ = c;
        } else {
            *o++ = *p;
        }
    }
    if (out)
        *o = '\0';
    return out;
}

push_counts_t *push_counts_new(const bool *counted, const char *const *names, size_t ncols)
{
    push_counts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->counted = calloc(ncols ? ncols : 1, sizeof *self->counted);
    self->names = calloc(ncols ? ncols : 1, sizeof *self->names);
    self->ncols = ncols;
    self->cap = 64;
    self->table = calloc(self->cap, sizeof *self->table);
    bool ok = self->counted && self->names && self->table;
    for (size_t c = 0; ok && c < ncols; c++) {
        self->counted[c] = counted[c];
        if (counted[c]) {
            ok = (self->names[c] = push_copy_escape(names[c])) != NULL;
            self->last = c;
            self->any = true;
        }
    }
    if (!ok)
        push_counts_destroy(&self);
    return self;
}

static void s_clear(push_counts_t *self)
{
    for (size_t i = 0; i < self->cap; i++)
        free(self->table[i].value);
    memset(self->table, 0, self->cap * sizeof *self->table);
    self->used = 0;
}

void push_counts_destroy(push_counts_t **self_p)
{
    push_counts_t *self = *self_p;
    if (!self)
        return;
    if (self->table)
        s_clear(self);
    for (size_t c = 0; self->names && c < self->ncols; c++)
        free(self->names[c]);
    free(self->names);
    free(self->counted);
    free(self->table);
    free(self);
    *self_p = NULL;
}

static bool s_grow(push_counts_t *self)
{
    size_t cap = self->cap * 2;
    s_entry_t *t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < self->cap; i++) {
        s_entry_t *e = &self->table[i];
        if (!e->value)
            continue;
        size_t j = e->hash & (cap - 1);
        while (t[j].value)
            j = (j + 1) & (cap - 1);
        t[j] = *e;
    }
    free(self->table);
    self->table = t;
    self->cap = cap;
    return true;
}

static void s_count(push_counts_t *self, uint32_t col, const char *p, size_t len)
{
    uint64_t h = s_hash(col, p, len);
    size_t i = h & (self->cap - 1);
    for (s_entry_t *e = &self->table[i]; e->value; e = &self->table[i]) {
        if (e->hash == h && e->col == col && e->len == len && memcmp(e->value, p, len) == 0) {
            e->count++;
            return;
        }
        i = (i + 1) & (self->cap - 1);
    }
    if (self->used >= S_MAX_KEYS) {
        self->overflow = true;
        return;
    }
    s_entry_t *e = &self->table[i];
    e->value = malloc(len ? len : 1);
    if (!e->value) {
        self->overflow = true;
        return;
    }
    memcpy(e->value, p, len);
    e->len = len;
    e->hash = h;
    e->col = col;
    e->count = 1;
    self->used++;
    if (2 * self->used > self->cap && !s_grow(self))
        self->overflow = true;
}

static void s_tap(void *arg, size_t col, const char *text, size_t len)
{
    push_counts_t *self = arg;
    if (!self->overflow)
        s_count(self, (uint32_t)col, text, len);
}

const copybin_tap_t *push_counts_tap(push_counts_t *self)
{
    self->tap = (copybin_tap_t){.fields = self->counted, .fn = s_tap, .arg = self};
    return &self->tap;
}

void push_counts_give_up(push_counts_t *self)
{
    self->overflow = true;
}

void push_counts_add(push_counts_t *self, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (self->any && p < end && !self->overflow) {
        /*  Fields up to the last counted one, then the rest of the line at once: values
            hold no raw tab or line end (COPY's text format escapes them). */
        size_t c = 0;
        for (; c <= self->last; c++) {
            char sep = c + 1 < self->ncols ? '\t' : '\n';
            const char *fe = memchr(p, sep, (size_t)(end - p));
            if (!fe) {
                self->overflow = true; /* not as the loader writes rows: give up */
                return;
            }
            if (self->counted[c])
                s_count(self, (uint32_t)c, p, (size_t)(fe - p));
            p = fe + 1;
        }
        if (c < self->ncols) {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            p = eol ? eol + 1 : end;
        }
    }
}

bool push_counts_overflow(const push_counts_t *self)
{
    return self->overflow;
}

int push_counts_take(push_counts_t *self, int64_t upload, int64_t rows, odp_buf_t *out)
{
    char num[48];
    int n = snprintf(num, sizeof num, "%" PRId64 "\t", upload);
    size_t start = odp_buf_size(out);
    int rc = 0;
    if (rows > 0) {
        char total[40];
        int t = snprintf(total, sizeof total, "\\N\t\\N\t%" PRId64 "\n", rows);
        rc = odp_buf_append(out, num, (size_t)n) < 0 || odp_buf_append(out, total, (size_t)t) < 0
                 ? -1
                 : 0;
    }
    for (size_t i = 0; rc == 0 && i < self->cap; i++) {
        const s_entry_t *e = &self->table[i];
        if (!e->value)
            continue;
        const char *name = self->names[e->col];
        char count[24];
        int k = snprintf(count, sizeof count, "\t%" PRId64 "\n", e->count);
        if (odp_buf_append(out, num, (size_t)n) < 0 ||
            odp_buf_append(out, name, strlen(name)) < 0 || odp_buf_append(out, "\t", 1) < 0 ||
            odp_buf_append(out, e->value, e->len) < 0 || odp_buf_append(out, count, (size_t)k) < 0)
            rc = -1;
    }
    if (rc < 0)
        odp_buf_truncate(out, start);
    s_clear(self);
    return rc;
}
