/*  The catalogue search's index in memory (search_index.h). */
#include "search_index.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

/*  An entry: its strings in one block of size bytes (resource, title and body, each
    NUL-terminated, and title_l and keywords_l, which may lie in title or body), the rest as
    numbers. */
typedef struct {
    char *text;
    uint32_t size;
    uint32_t title, title_l, keywords_l, body; /* offsets in text */
    uint32_t title_l_len, keywords_l_len, body_len;
    int64_t seq, modified, created;
    uint32_t facet[SI_NFACETS]; /* ids of the values, per column */
    bool visible;
} s_entry_t;

/*  Open addressing of ids (id + 1; 0 is empty), the keys kept elsewhere. */
typedef struct {
    uint32_t *slots;
    size_t cap; /* a power of two */
    size_t n;
} s_table_t;

typedef struct {
    uint32_t *ids; /* entries, ascending */
    uint32_t n, cap;
} s_posting_t;

typedef struct {
    char **values;
    size_t n, cap;
    s_table_t table;
} s_dict_t;

struct si_index_t {
    s_entry_t *entries;
    size_t n, cap;
    s_table_t by_resource;
    uint64_t *gram_keys; /* per posting: its bigram */
    s_posting_t *postings;
    size_t ngrams, gcap;
    s_table_t by_gram;
    s_dict_t facets[SI_NFACETS];
    locale_t coll; /* (locale_t)0: bytes */
    int64_t last_seq;
    char *last_resource;
    size_t bytes; /* of strings and postings */
};

static uint64_t s_hash_str(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static uint64_t s_hash_u64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

/*  The slot of the id whose key is the one hashed to h (match(ctx, id) says), or the empty
    slot where it goes. */
typedef bool (*s_match_fn)(const void *ctx, uint32_t id);
static uint32_t *s_slot(const s_table_t *t, uint64_t h, s_match_fn match, const void *ctx)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask)
        if (t->slots[i] == 0 || match(ctx, t->slots[i] - 1))
            return &t->slots[i];
}

/*  Room for one more id: doubled (and every id placed again) at half full. */
typedef uint64_t (*s_rehash_fn)(const void *owner, uint32_t id);
static int s_grow(s_table_t *t, s_rehash_fn rehash, const void *owner)
{
    if ((t->n + 1) * 2 <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i])
            continue;
        size_t j = (size_t)rehash(owner, t->slots[i] - 1) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/*  ---- keys of the tables -------------------------------------------------------------- */

typedef struct {
    const si_index_t *ix;
    const char *s;
    size_t len;
    uint64_t gram;
    const s_dict_t *dict;
} s_key_t;

static bool s_match_resource(const void *ctx, uint32_t id)
{
    const s_key_t *k = ctx;
    const char *r = k->ix->entries[id].text;
    return strncmp(r, k->s, k->len) == 0 && r[k->len] == '\0';
}

static uint64_t s_rehash_resource(const void *owner, uint32_t id)
{
    const char *r = ((const si_index_t *)owner)->entries[id].text;
    return s_hash_str(r, strlen(r));
}

static bool s_match_gram(const void *ctx, uint32_t id)
{
    const s_key_t *k = ctx;
    return k->ix->gram_keys[id] == k->gram;
}

static uint64_t s_rehash_gram(const void *owner, uint32_t id)
{
    return s_hash_u64(((const si_index_t *)owner)->gram_keys[id]);
}

static bool s_match_value(const void *ctx, uint32_t id)
{
    const s_key_t *k = ctx;
    const char *v = k->dict->values[id];
    return strncmp(v, k->s, k->len) == 0 && v[k->len] == '\0';
}

static uint64_t s_rehash_value(const void *owner, uint32_t id)
{
    const char *v = ((const s_dict_t *)owner)->values[id];
    return s_hash_str(v, strlen(v));
}

/*  ---- bigrams ------------------------------------------------------------------------- */

/*  The characters of valid UTF-8 (the database's text) two by two, each pair one number:
    the bytes of the first character, then those of the second. */
static size_t s_char(const char *s, size_t len, size_t i, uint32_t *c)
{
    unsigned char b = (unsigned char)s[i];
    size_t n = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    if (n > len - i)
        n = len - i;
    uint32_t v = 0;
    for (size_t k = 0; k < n; k++)
        v = v << 8 | (unsigned char)s[i + k];
    *c = v;
    return n;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*  The distinct bigrams of s, ascending, appended to *out (grown as needed). */
static int s_grams(const char *s, size_t len, uint64_t **out, size_t *n, size_t *cap)
{
    size_t first = *n;
    uint32_t prev = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t step = s_char(s, len, i, &c);
        if (i > 0) {
            if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                uint64_t *g = realloc(*out, nc * sizeof *g);
                if (!g)
                    return -1;
                *out = g;
                *cap = nc;
            }
            (*out)[(*n)++] = (uint64_t)prev << 32 | c;
        }
        prev = c;
        i += step;
    }
    if (*n - first > 1)
        qsort(*out + first, *n - first, sizeof **out, s_cmp_u64);
    size_t w = first;
    for (size_t i = first; i < *n; i++)
        if (w == first || (*out)[w - 1] != (*out)[i])
            (*out)[w++] = (*out)[i];
    *n = w;
    return 0;
}

static s_posting_t *s_posting(si_index_t *self, uint64_t gram, bool add)
{
    s_key_t k = {.ix = self, .gram = gram};
    if (self->by_gram.cap) {
        uint32_t *slot = s_slot(&self->by_gram, s_hash_u64(gram), s_match_gram, &k);
        if (*slot)
            return &self->postings[*slot - 1];
    }
    if (!add)
        return NULL;
    if (self->ngrams == self->gcap) {
        size_t nc = self->gcap ? self->gcap * 2 : 1024;
        uint64_t *keys = realloc(self->gram_keys, nc * sizeof *keys);
        if (!keys)
            return NULL;
        self->gram_keys = keys;
        s_posting_t *p = realloc(self->postings, nc * sizeof *p);
        if (!p)
            return NULL;
        self->postings = p;
        self->gcap = nc;
    }
    if (s_grow(&self->by_gram, s_rehash_gram, self) < 0)
        return NULL;
    uint32_t id = (uint32_t)self->ngrams++;
    self->gram_keys[id] = gram;
    self->postings[id] = (s_posting_t){0};
    *s_slot(&self->by_gram, s_hash_u64(gram), s_match_gram, &k) = id + 1;
    self->by_gram.n++;
    return &self->postings[id];
}

static size_t s_lower_bound(const s_posting_t *p, uint32_t e)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->ids[mid] < e)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int s_post_add(si_index_t *self, uint64_t gram, uint32_t e)
{
    s_posting_t *p = s_posting(self, gram, true);
    if (!p)
        return -1;
    if (p->n == p->cap) {
        uint32_t nc = p->cap ? p->cap * 2 : 4;
        uint32_t *ids = realloc(p->ids, nc * sizeof *ids);
        if (!ids)
            return -1;
        self->bytes += (nc - p->cap) * sizeof *ids;
        p->ids = ids;
        p->cap = nc;
    }
    /*  New entries come last: an append, except for an entry whose text changed. */
    size_t at = p->n && p->ids[p->n - 1] > e ? s_lower_bound(p, e) : p->n;
    memmove(p->ids + at + 1, p->ids + at, (p->n - at) * sizeof *p->ids);
    p->ids[at] = e;
    p->n++;
    return 0;
}

static void s_post_remove(si_index_t *self, uint64_t gram, uint32_t e)
{
    s_posting_t *p = s_posting(self, gram, false);
    size_t at = p ? s_lower_bound(p, e) : 0;
    if (!p || at == p->n || p->ids[at] != e)
        return;
    memmove(p->ids + at, p->ids + at + 1, (p->n - at - 1) * sizeof *p->ids);
    p->n--;
}

/*  ---- the index ----------------------------------------------------------------------- */

si_index_t *si_new(void)
{
    return calloc(1, sizeof(si_index_t));
}

void si_destroy(si_index_t **self_p)
{
    si_index_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++)
        free(self->entries[i].text);
    free(self->entries);
    free(self->by_resource.slots);
    for (size_t i = 0; i < self->ngrams; i++)
        free(self->postings[i].ids);
    free(self->postings);
    free(self->gram_keys);
    free(self->by_gram.slots);
    for (int f = 0; f < SI_NFACETS; f++) {
        for (size_t i = 0; i < self->facets[f].n; i++)
            free(self->facets[f].values[i]);
        free(self->facets[f].values);
        free(self->facets[f].table.slots);
    }
    if (self->coll)
        freelocale(self->coll);
    free(self->last_resource);
    free(self);
    *self_p = NULL;
}

int si_collation(si_index_t *self, const char *collate, const char *provider)
{
    /*  PostgreSQL 17's builtin provider knows C and C.UTF-8 only: both sort as bytes. */
    if (provider && strcmp(provider, "b") == 0)
        return 0;
    if (provider && strcmp(provider, "c") != 0)
        return -1;
    if (strcmp(collate, "C") == 0 || strcmp(collate, "POSIX") == 0 ||
        strcmp(collate, "C.UTF-8") == 0 || strcmp(collate, "C.utf8") == 0)
        return 0;
    self->coll = newlocale(LC_COLLATE_MASK, collate, (locale_t)0);
    return self->coll ? 0 : -1;
}

static int s_strcmp(const si_index_t *self, const char *a, const char *b)
{
    int r = self->coll ? strcoll_l(a, b, self->coll) : 0;
    return r ? r : strcmp(a, b);
}

static int s_value(si_index_t *self, int col, const char *v, uint32_t *id)
{
    s_dict_t *d = &self->facets[col];
    size_t len = strlen(v);
    s_key_t k = {.s = v, .len = len, .dict = d};
    uint64_t h = s_hash_str(v, len);
    if (d->table.cap) {
        uint32_t *slot = s_slot(&d->table, h, s_match_value, &k);
        if (*slot) {
            *id = *slot - 1;
            return 0;
        }
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        char **vals = realloc(d->values, nc * sizeof *vals);
        if (!vals)
            return -1;
        d->values = vals;
        d->cap = nc;
    }
    if (s_grow(&d->table, s_rehash_value, d) < 0 || !(d->values[d->n] = strdup(v)))
        return -1;
    self->bytes += len + 1;
    *id = (uint32_t)d->n++;
    *s_slot(&d->table, h, s_match_value, &k) = *id + 1;
    d->table.n++;
    return 0;
}

int si_put(si_index_t *self, const si_row_t *row)
{
    size_t rlen = strlen(row->resource);
    s_key_t k = {.ix = self, .s = row->resource, .len = rlen};
    uint64_t h = s_hash_str(row->resource, rlen);
    if (s_grow(&self->by_resource, s_rehash_resource, self) < 0)
        return -1;
    uint32_t *slot = s_slot(&self->by_resource, h, s_match_resource, &k);
    s_entry_t *e = *slot ? &self->entries[*slot - 1] : NULL;
    char *last = strdup(row->resource);
    if (!last)
        return -1;
    free(self->last_resource);
    self->last_resource = last;
    self->last_seq = row->seq;
    if (e && e->seq >= row->seq)
        return 0;
    /*  resource, title and body, then title_l and keywords_l unless they are already there:
        the lowered title is most often the title itself (Chinese has no case) or the start
        of the body, the keywords its end. */
    const char *parts[5] = {row->resource, row->title, row->body, row->title_l, row->keywords_l};
    size_t lens[5], total = 0;
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(parts[i]);
    uint32_t off[5];
    bool own[5] = {true, true, true, true, true};
    for (int i = 0; i < 3; i++)
        total += lens[i] + 1;
    off[0] = 0;
    off[1] = (uint32_t)lens[0] + 1;
    off[2] = off[1] + (uint32_t)lens[1] + 1;
    if (lens[3] <= lens[1] && memcmp(row->title_l, row->title, lens[3]) == 0)
        own[3] = false, off[3] = off[1];
    else if (lens[3] <= lens[2] && memcmp(row->title_l, row->body, lens[3]) == 0)
        own[3] = false, off[3] = off[2];
    if (lens[4] <= lens[2] && memcmp(row->keywords_l, row->body + lens[2] - lens[4], lens[4]) == 0)
        own[4] = false, off[4] = off[2] + (uint32_t)(lens[2] - lens[4]);
    for (int i = 3; i < 5; i++)
        if (own[i])
            off[i] = (uint32_t)total, total += lens[i] + 1;
    char *text = malloc(total);
    if (!text)
        return -1;
    for (int i = 0; i < 5; i++)
        if (own[i])
            memcpy(text + off[i], parts[i], lens[i] + 1);
    /*  The postings change by the bigrams the text lost and gained. */
    uint64_t *g = NULL;
    size_t nold = 0, n = 0, cap = 0;
    int rc = e ? s_grams(e->text + e->body, e->body_len, &g, &n, &cap) : 0;
    nold = n;
    if (rc == 0)
        rc = s_grams(row->body, lens[2], &g, &n, &cap);
    if (rc == 0 && !e && self->n == self->cap) {
        size_t nc = self->cap ? self->cap * 2 : 1024;
        s_entry_t *es = realloc(self->entries, nc * sizeof *es);
        if (es) {
            self->entries = es;
            self->cap = nc;
        }
        rc = es ? 0 : -1;
    }
    if (rc < 0) {
        free(g);
        free(text);
        return -1;
    }
    uint32_t id;
    if (e)
        id = (uint32_t)(e - self->entries);
    else {
        id = (uint32_t)self->n++;
        e = &self->entries[id];
        *e = (s_entry_t){0};
        *slot = id + 1;
        self->by_resource.n++;
    }
    size_t i = 0, j = nold;
    while (rc == 0 && (i < nold || j < n)) {
        if (j == n || (i < nold && g[i] < g[j]))
            s_post_remove(self, g[i++], id);
        else if (i == nold || g[j] < g[i])
            rc = s_post_add(self, g[j++], id);
        else
            i++, j++;
    }
    free(g);
    self->bytes += total - e->size;
    free(e->text);
    e->text = text;
    e->size = (uint32_t)total;
    e->title = off[1];
    e->body = off[2];
    e->title_l = off[3];
    e->keywords_l = off[4];
    e->body_len = (uint32_t)lens[2];
    e->title_l_len = (uint32_t)lens[3];
    e->keywords_l_len = (uint32_t)lens[4];
    e->seq = row->seq;
    e->visible = row->visible;
    e->modified = row->modified_us;
    e->created = row->created_us;
    for (int f = 0; rc == 0 && f < SI_NFACETS; f++)
        rc = s_value(self, f, row->facet[f], &e->facet[f]);
    return rc;
}

void si_trim(si_index_t *self)
{
    for (size_t i = 0; i < self->ngrams; i++) {
        s_posting_t *p = &self->postings[i];
        uint32_t *ids = p->n && p->n < p->cap ? realloc(p->ids, p->n * sizeof *ids) : NULL;
        if (ids) {
            self->bytes -= (p->cap - p->n) * sizeof *ids;
            p->ids = ids;
            p->cap = p->n;
        }
    }
}

int64_t si_last_seq(const si_index_t *self)
{
    return self->last_seq;
}

const char *si_last_resource(const si_index_t *self)
{
    return self->last_resource ? self->last_resource : "";
}

size_t si_size(const si_index_t *self)
{
    return self->n;
}

size_t si_bytes(const si_index_t *self)
{
    return self->bytes + self->cap * sizeof(s_entry_t) +
           (self->by_resource.cap + self->by_gram.cap) * sizeof(uint32_t) +
           self->gcap * (sizeof(uint64_t) + sizeof(s_posting_t));
}

const char *si_resource(const si_index_t *self, uint32_t entry)
{
    return self->entries[entry].text;
}

/*  ---- searching ----------------------------------------------------------------------- */

typedef struct {
    const si_index_t *ix;
    const si_query_t *q;
} s_order_t;

static int s_cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

/*  < 0 when a comes first. */
static int s_cmp_hit(const void *pa, const void *pb, void *ctx)
{
    const s_order_t *o = ctx;
    const si_hit_t *a = pa, *b = pb;
    const s_entry_t *x = &o->ix->entries[a->entry], *y = &o->ix->entries[b->entry];
    for (size_t i = 0; i < o->q->nkeys; i++) {
        int r = 0;
        switch (o->q->keys[i]) {
        case SI_SCORE_DESC:
            r = s_cmp_i64(b->score, a->score);
            break;
        case SI_TITLE_ASC:
            r = s_strcmp(o->ix, x->text + x->title, y->text + y->title);
            break;
        case SI_TITLE_DESC:
            r = s_strcmp(o->ix, y->text + y->title, x->text + x->title);
            break;
        case SI_RESOURCE_ASC:
            r = s_strcmp(o->ix, x->text, y->text);
            break;
        case SI_RESOURCE_DESC:
            r = s_strcmp(o->ix, y->text, x->text);
            break;
        case SI_MODIFIED_DESC:
            r = s_cmp_i64(y->modified, x->modified);
            break;
        case SI_MODIFIED_ASC:
            r = s_cmp_i64(x->modified, y->modified);
            break;
        case SI_CREATED_DESC:
            r = s_cmp_i64(y->created, x->created);
            break;
        case SI_CREATED_ASC:
            r = s_cmp_i64(x->created, y->created);
            break;
        }
        if (r)
            return r;
    }
    return 0;
}

/*  The heap of the best k so far, the worst on top. */
static void s_sift(si_hit_t *h, size_t n, size_t i, s_order_t *o)
{
    for (;;) {
        size_t l = 2 * i + 1, w = i;
        if (l < n && s_cmp_hit(&h[l], &h[w], o) > 0)
            w = l;
        if (l + 1 < n && s_cmp_hit(&h[l + 1], &h[w], o) > 0)
            w = l + 1;
        if (w == i)
            return;
        si_hit_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static bool s_has(const char *hay, size_t hlen, const char *needle)
{
    return memmem(hay, hlen, needle, strlen(needle)) != NULL;
}

/*  The entries holding every bigram of the terms, ascending (*all when no term has one). */
static int s_candidates(si_index_t *self, const si_query_t *q, uint32_t **out, size_t *n, bool *all)
{
    uint64_t *g = NULL;
    size_t ng = 0, cap = 0;
    for (size_t t = 0; t < q->nterms; t++)
        if (s_grams(q->terms[t], strlen(q->terms[t]), &g, &ng, &cap) < 0) {
            free(g);
            return -1;
        }
    *all = ng == 0;
    *n = 0;
    *out = NULL;
    if (*all)
        return 0;
    const s_posting_t **ps = malloc(ng * sizeof *ps);
    if (!ps) {
        free(g);
        return -1;
    }
    size_t best = 0;
    for (size_t i = 0; i < ng; i++) {
        ps[i] = s_posting(self, g[i], false);
        if (!ps[i] || ps[i]->n == 0) {
            free(ps);
            free(g);
            return 0;
        }
        if (ps[i]->n < ps[best]->n)
            best = i;
    }
    free(g);
    uint32_t *c = malloc((ps[best]->n ? ps[best]->n : 1) * sizeof *c);
    if (!c) {
        free(ps);
        return -1;
    }
    memcpy(c, ps[best]->ids, ps[best]->n * sizeof *c);
    size_t nc = ps[best]->n;
    for (size_t i = 0; i < ng && nc; i++) {
        if (i == best)
            continue;
        size_t w = 0, j = 0;
        for (size_t k = 0; k < nc; k++) {
            while (j < ps[i]->n && ps[i]->ids[j] < c[k])
                j++;
            if (j < ps[i]->n && ps[i]->ids[j] == c[k])
                c[w++] = c[k];
        }
        nc = w;
    }
    free(ps);
    *out = c;
    *n = nc;
    return 0;
}

int si_search(si_index_t *self, const si_query_t *q, si_result_t *out)
{
    *out = (si_result_t){0};
    /*  fq values the index has never seen match nothing. */
    uint32_t fq[SI_MAXFQ];
    bool none = false;
    for (size_t i = 0; i < q->nfq; i++) {
        const s_dict_t *d = &self->facets[q->fq_col[i]];
        s_key_t k = {.s = q->fq_val[i], .len = q->fq_len[i], .dict = d};
        uint32_t *slot =
            d->table.cap ? s_slot(&d->table, s_hash_str(k.s, k.len), s_match_value, &k) : NULL;
        none = none || !slot || !*slot;
        fq[i] = slot && *slot ? *slot - 1 : 0;
    }
    uint32_t *cand = NULL;
    size_t ncand = 0;
    bool all = true;
    if (!none && q->filter && s_candidates(self, q, &cand, &ncand, &all) < 0)
        return -1;
    size_t total = none ? 0 : all ? self->n : ncand;
    si_hit_t *hits = malloc((total ? total : 1) * sizeof *hits);
    if (!hits) {
        free(cand);
        return -1;
    }
    size_t n = 0;
    for (size_t c = 0; c < total; c++) {
        uint32_t id = all ? (uint32_t)c : cand[c];
        const s_entry_t *e = &self->entries[id];
        bool hit = e->visible;
        for (size_t i = 0; hit && i < q->nfq; i++)
            hit = e->facet[q->fq_col[i]] == fq[i];
        for (size_t t = 0; hit && q->filter && t < q->nterms; t++)
            hit = s_has(e->text + e->body, e->body_len, q->terms[t]);
        if (!hit)
            continue;
        int32_t score = 0;
        for (size_t t = 0; t < q->nterms; t++)
            score += 2 * s_has(e->text + e->title_l, e->title_l_len, q->terms[t]) +
                     s_has(e->text + e->keywords_l, e->keywords_l_len, q->terms[t]);
        hits[n++] = (si_hit_t){id, score};
    }
    free(cand);
    out->count = n;
    out->all = hits;
    int64_t want = q->start + q->rows;
    size_t k = q->start >= (int64_t)n ? 0 : want > (int64_t)n ? n : (size_t)want;
    if (k == 0)
        return 0;
    si_hit_t *best = malloc(k * sizeof *best);
    if (!best)
        return -1;
    s_order_t o = {self, q};
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        if (nb < k) {
            best[nb++] = hits[i];
            for (size_t c = nb - 1; c > 0 && s_cmp_hit(&best[(c - 1) / 2], &best[c], &o) < 0;
                 c = (c - 1) / 2) {
                si_hit_t t = best[c];
                best[c] = best[(c - 1) / 2];
                best[(c - 1) / 2] = t;
            }
        } else if (s_cmp_hit(&hits[i], &best[0], &o) < 0) {
            best[0] = hits[i];
            s_sift(best, nb, 0, &o);
        }
    }
    qsort_r(best, nb, sizeof *best, s_cmp_hit, &o);
    out->page = best;
    out->npage = nb - (size_t)q->start;
    memmove(best, best + q->start, out->npage * sizeof *best);
    return 0;
}

void si_result_free(si_result_t *res)
{
    free(res->page);
    free(res->all);
    *res = (si_result_t){0};
}

typedef struct {
    const si_index_t *ix;
    const s_dict_t *d;
    const int64_t *counts;
} s_fctx_t;

static int s_cmp_value(const void *pa, const void *pb, void *ctx)
{
    const s_fctx_t *f = ctx;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    int r = s_cmp_i64(f->counts[b], f->counts[a]);
    return r ? r : s_strcmp(f->ix, f->d->values[a], f->d->values[b]);
}

int si_facet(si_index_t *self, const si_result_t *res, int col, int64_t limit,
             si_facet_item_t **items)
{
    const s_dict_t *d = &self->facets[col];
    *items = NULL;
    int64_t *counts = calloc(d->n + 1, sizeof *counts);
    uint32_t *ids = malloc((d->n + 1) * sizeof *ids);
    if (!counts || !ids) {
        free(counts);
        free(ids);
        return -1;
    }
    for (size_t i = 0; i < res->count; i++)
        counts[self->entries[res->all[i].entry].facet[col]]++;
    size_t n = 0;
    for (size_t v = 0; v < d->n; v++)
        if (counts[v])
            ids[n++] = (uint32_t)v;
    s_fctx_t f = {self, d, counts};
    qsort_r(ids, n, sizeof *ids, s_cmp_value, &f);
    if (limit < (int64_t)n)
        n = limit > 0 ? (size_t)limit : 0;
    *items = malloc((n ? n : 1) * sizeof **items);
    if (!*items) {
        free(counts);
        free(ids);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        (*items)[i] = (si_facet_item_t){d->values[ids[i]], counts[ids[i]]};
    free(counts);
    free(ids);
    return (int)n;
}
