/*  The catalogue search's index (issue #10): every entry of query.entry_grams in memory, with
    postings of the character bigrams of its text, so that a search over 100,000 entries
    is answered without reading them from the database. It computes what the SQL search of
    migration 007 did, to the hit: an entry is a hit when visible, every fq value holds and
    its text holds every term (LIKE '%term%': a byte substring of valid UTF-8); the bigram
    postings only narrow which entries are looked at (a term's bigrams are in every text that
    holds it). Strings compare as the database's collation does (si_collation). Not thread
    safe: one thread owns it. */
#ifndef SEARCH_INDEX_H
#define SEARCH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The facet columns, in the order of search.c's table of facets. */
#define SI_NFACETS 8

typedef struct si_index_t si_index_t;

/*  One row of query.search_changes. */
typedef struct {
    const char *resource;
    int64_t seq;
    bool visible;
    const char *title, *title_l, *keywords_l, *body;
    int64_t modified_us, created_us;
    const char *facet[SI_NFACETS];
} si_row_t;

/*  Sort keys; every order ends with SI_RESOURCE_ASC. */
typedef enum {
    SI_SCORE_DESC,
    SI_TITLE_ASC,
    SI_TITLE_DESC,
    SI_RESOURCE_ASC,
    SI_RESOURCE_DESC,
    SI_MODIFIED_DESC,
    SI_MODIFIED_ASC,
    SI_CREATED_DESC,
    SI_CREATED_ASC
} si_key_t;

#define SI_MAXKEYS 16
#define SI_MAXFQ   40

typedef struct {
    const char **terms; /* lowered by the database; NULL when q has none */
    size_t nterms;
    bool filter; /* the terms must hold (q has words); else they only score */
    int fq_col[SI_MAXFQ];
    const char *fq_val[SI_MAXFQ];
    size_t fq_len[SI_MAXFQ];
    size_t nfq;
    si_key_t keys[SI_MAXKEYS + 1];
    size_t nkeys;
    int64_t start, rows;
} si_query_t;

typedef struct {
    uint32_t entry;
    int32_t score;
} si_hit_t;

typedef struct {
    size_t count;   /* every hit */
    si_hit_t *page; /* hits start .. start + rows - 1, in order */
    size_t npage;
    si_hit_t *all; /* every hit, in no order (facets) */
} si_result_t;

typedef struct {
    const char *value;
    int64_t count;
} si_facet_item_t;

si_index_t *si_new(void);
void si_destroy(si_index_t **self_p);
/*  Compare strings as the database's default collation (pg_database.datcollate and, from
    PostgreSQL 15, datlocprovider): bytes for C, POSIX and C.UTF-8 and for the builtin
    provider, else strcoll_l in that locale with ties broken by bytes, as PostgreSQL does.
    -1 when this process cannot (an ICU collation, or a locale it lacks). */
int si_collation(si_index_t *self, const char *collate, const char *provider);
/*  Add or replace an entry (a row older than the one held is ignored). 0, or -1 when out
    of memory (the index is then unusable: destroy it). */
int si_put(si_index_t *self, const si_row_t *row);
/*  Give back the room the postings grew into (after a load). */
void si_trim(si_index_t *self);
/*  The key of the last row put: where the next refresh starts. */
int64_t si_last_seq(const si_index_t *self);
const char *si_last_resource(const si_index_t *self);
size_t si_size(const si_index_t *self);
size_t si_bytes(const si_index_t *self);
/*  Run a query. 0, or -1 when out of memory. si_result_free() after. */
int si_search(si_index_t *self, const si_query_t *q, si_result_t *out);
void si_result_free(si_result_t *res);
const char *si_resource(const si_index_t *self, uint32_t entry);
/*  The facet counts of column col over the hits: at most limit values, most frequent
    first, then by value; *items to free(). The number of items, or -1 (out of memory). */
int si_facet(si_index_t *self, const si_result_t *res, int col, int64_t limit,
             si_facet_item_t **items);

#endif
