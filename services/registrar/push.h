/*  push: what the files of the push share (see push.c for how a push works).

      push_upload.c  the uploads row, the transfer rules, the staging table's names and
                     types, abandoning an upload
      push_slots.c   the pool of slots: one per dataset upload being pushed, each with its
                     own PostgreSQL connection and loader
      push_group.c   the open group: a transaction with COPY into the staging table
      push_counts.c  the counts of a group's code-like values (stage_counts)
      push_checks.c  the values a group holds that the review's row-level checks may
                     find (stage_checks)
      push_keys.c    the hashes of a group's unique values, for the review's repeat check
                     (stage_keys)
      copybin.c      rows in COPY's binary format
      push.c         the handlers */
#ifndef ODP_REGISTRAR_PUSH_H
#define ODP_REGISTRAR_PUSH_H

#include "loader.h"
#include "registrar.h"

#include "common/buf.h"

#include <sodium.h>

/*  ---- push_upload.c ----------------------------------------------------------------------- */

/*  What the handlers need of an uploads row (and of its resource). */
typedef struct {
    int64_t id;
    char resource[33];
    char table[64];
    char department[10];
    char format[17];
    char encoding[17];
    char status[17];
    char sha256[65];
    char media_type[128];
    bool dataset;
    int64_t size;
    int64_t committed;
    int64_t rows;
    int64_t rejected;
    int64_t chunk_size;
    int64_t max_row_length;
    int64_t credit;
    int64_t version; /* 0 until received */
    bool has_hash;
    crypto_hash_sha256_state hash;
} push_upload_t;

typedef struct {
    char formats[160];
    char encodings[160];
    int64_t max_size;
    int64_t max_row_length;
    int64_t chunk_size;
    int64_t credit;
} push_rules_t;

int64_t push_int(PGresult *r, int row, int col);
void push_copy_str(char *buf, size_t size, PGresult *r, int row, int col);

/*  Dictionary field types as staging table column types (principle 5: a dataset is a
    typed table) and as the loader's types. NULL / -1 when unknown. */
const char *push_type_sql(const char *field_type);
int push_type_loader(const char *sql_type, loader_type_t *type);

/*  The staging table of an upload, unqualified: the registrar's schema is first on its
    search_path. Built from a number, so it needs no quoting. */
void push_stage_name(int64_t upload, char *buf, size_t size);

int push_rules_load(odp_req_t *req, push_rules_t *rules);

/*  Load upload id: 404 when there is none, 403 when the actor may not act on it. */
int push_upload_load(odp_req_t *req, int64_t id, push_upload_t *u);
/*  The same, for an upload that must still be receiving (409 otherwise). */
int push_upload_receiving(odp_req_t *req, int64_t id, push_upload_t *u);

/*  The SHA-256 state of the upload's bytes [0, committed). */
int push_hash_at(odp_req_t *req, const push_upload_t *u, crypto_hash_sha256_state *hash);

/*  In an open transaction: the uploads row is no longer receiving, its staged rows,
    rejects and file pieces are gone, and data.failed says why. */
int push_abandon_tx(odp_req_t *req, const push_upload_t *u, const char *code, const char *reason);

/*  The push cannot go on: give its slot up, abandon the upload, then answer with the
    error that ended it. */
int push_fail_upload(odp_req_t *req, const push_upload_t *u, odp_err_t code, const char *field,
                     const char *reason);

/*  The loader refused the stream (HEADER_MISMATCH, RULE_ROW_LENGTH): the push is over. */
int push_fail_loader(odp_req_t *req, const push_upload_t *u, const odp_error_t *lerr);

/*  The upload's progress, if nobody moved it meanwhile: committed moves from `from` to
    `to`, with the hash state at `to` (binary) and the row counts. */
#define PUSH_PROGRESS_SQL                                                                          \
    "UPDATE uploads SET committed = $2, hash_state = $3, "                                         \
    "rows_received = $4, rows_rejected = $5, rows_staged = $4::bigint - $5::bigint, "              \
    "colmap = coalesce($6::int[], colmap) "                                                        \
    "WHERE id = $1 AND status = 'receiving' AND committed = $7"

typedef struct {
    char id[24], to[24], from[24], rows[24], rejected[24];
    const char *vals[7];
    int lens[7];
    int formats[7];
} push_progress_t;

void push_progress(push_progress_t *p, int64_t upload, int64_t from, int64_t to,
                   const crypto_hash_sha256_state *hash, int64_t rows, int64_t rejected,
                   const char *colmap);

/*  409: the uploads row is not where this registrar left it. */
int push_moved_on(odp_req_t *req, int64_t upload);

/*  In the open transaction of the service's connection (files). */
int push_save_progress(odp_req_t *req, const push_upload_t *u, int64_t from, int64_t to,
                       const crypto_hash_sha256_state *hash);

/*  ---- push_counts.c ----------------------------------------------------------------------- */

typedef struct push_counts_t push_counts_t;

/*  Counts of the staged columns c with counted[c] (row_no first), named names[c]. */
push_counts_t *push_counts_new(const bool *counted, const char *const *names, size_t ncols);
void push_counts_destroy(push_counts_t **self_p);

/*  Count the values of rows in the loader's text (lines, tab-separated, as staged). */
void push_counts_add(push_counts_t *self, const char *text, size_t len);

/*  The same, as copybin_rows() converts the rows (copybin.h): no pass of its own. */
const struct copybin_tap *push_counts_tap(push_counts_t *self);

/*  Some rows could not be counted (a conversion failed part way): give the counts up. */
void push_counts_give_up(push_counts_t *self);

/*  More distinct values than counting keeps, or given up: the upload's counts are lost. */
bool push_counts_overflow(const push_counts_t *self);

/*  Append the counts as COPY lines of stage_counts (upload, field, value, count), with the
    group's row total (field NULL) when rows > 0, to out, and start again from zero. -1
    when out of memory (out as it was). */
int push_counts_take(push_counts_t *self, int64_t upload, int64_t rows, odp_buf_t *out);

/*  name in COPY's text format (malloc'd; NULL when out of memory). */
char *push_copy_escape(const char *name);

/*  ---- push_checks.c ----------------------------------------------------------------------- */

typedef struct push_checks_t push_checks_t;

/*  A staged column's row-level checks, as dictionary_revision_fields holds them: type is
    the field's type; allowed (NULL: no enum check) lists nallowed values; min and max are
    the bounds' text (NULL: none), an integer field's already rounded inwards as the
    reviewer rounds them (ceil of the minimum, floor of the maximum); length and
    min_length 0 for none; pattern and check_name NULL for none. */
typedef struct {
    const char *name;
    const char *type;
    bool required;
    const char *const *allowed;
    size_t nallowed;
    const char *min, *max;
    int64_t length, min_length;
    const char *pattern;
    const char *check_name;
} push_check_spec_t;

/*  The checks of the staged columns specs[1..ncols) (specs[0], row_no, is not read). */
push_checks_t *push_checks_new(const push_check_spec_t *specs, size_t ncols);
void push_checks_destroy(push_checks_t **self_p);

/*  Evaluate rows in the loader's text (lines, tab-separated, as staged). */
void push_checks_add(push_checks_t *self, const char *text, size_t len);

/*  The same, as copybin_rows() converts the rows, then next (may be NULL). */
const struct copybin_tap *push_checks_tap(push_checks_t *self, const struct copybin_tap *next);

/*  Some rows could not be evaluated (a conversion failed part way): the evidence is lost. */
void push_checks_give_up(push_checks_t *self);
bool push_checks_lost(const push_checks_t *self);

/*  Append, for every check of every column and for blank rows (field NULL), the values
    not proven to pass it as COPY lines of stage_checks (upload, field, check_name,
    unproven), to out, and start again from zero. -1 when out of memory (out as it was). */
int push_checks_take(push_checks_t *self, int64_t upload, odp_buf_t *out);

/*  ---- push_keys.c ------------------------------------------------------------------------- */

typedef struct push_keys_t push_keys_t;

/*  The hashes of the staged columns c with keyed[c] (row_no first), named names[c]; at most
    max of them held between two takes, past which the evidence is lost. */
push_keys_t *push_keys_new(const bool *keyed, const char *const *names, size_t ncols, size_t max);
void push_keys_destroy(push_keys_t **self_p);

/*  The keyed columns' values, as copybin_rows() converts the rows, then next (may be
    NULL). */
const struct copybin_tap *push_keys_tap(push_keys_t *self, const struct copybin_tap *next);

/*  Some rows could not be hashed (rows sent as text, a conversion failed part way, too
    many values): the evidence is lost. */
void push_keys_give_up(push_keys_t *self);
bool push_keys_lost(const push_keys_t *self);

/*  How many columns are keyed. */
size_t push_keys_count(const push_keys_t *self);

/*  The i-th keyed column's name, its NULLs since the last take and, appended to out, its
    hashes since then, sorted, 8 bytes each, most significant byte first; then start again
    from zero. -1 when i is out of range or out of memory. */
int push_keys_take(push_keys_t *self, size_t i, const char **name, int64_t *nulls, odp_buf_t *out);

/*  ---- push_slots.c ------------------------------------------------------------------------ */

typedef struct {
    int64_t upload;             /* 0: free */
    int64_t committed;          /* uploads.committed: where the last committed group ends */
    int64_t boundary;           /* the loader's row boundary: rows before it are in a group */
    int64_t rows_committed;     /* the loader's rows before committed ... */
    int64_t rejected_committed; /* ... and how many of them were rejected */
    int64_t copied;             /* rows the open group's COPYs into the staging table took */
    loader_t *loader;
    crypto_hash_sha256_state hash; /* of bytes [0, boundary) */
    odp_buf_t *pending;            /* bytes [boundary, ...): the open row */
    odp_db_t *db;                  /* the upload's own connection ... */
    PGconn *conn;                  /* ... fixed for the slot's life: never silently reconnected */
    bool in_tx;                    /* the open group's transaction has begun */
    bool in_copy;                  /* and COPY stage_u<upload> FROM STDIN is open in it */
    int64_t group_ms;              /* when that transaction began */
    odp_buf_t *staged;             /* one feed's rows (reused) */
    odp_buf_t *rejected;           /* one feed's rejected rows (reused) */
    odp_buf_t *rejects;            /* the open group's rejected rows, as COPY lines for rejects */
    loader_type_t *types;          /* of the staging table's columns, row_no first */
    size_t ntypes;
    bool binary;           /* the rows go in COPY's binary format (copybin.h) */
    bool copy_binary;      /* the open COPY is binary */
    bool text_rows;        /* some went as text after all (logged once) */
    odp_buf_t *bin;        /* one feed's rows in the binary format (reused) */
    push_counts_t *counts; /* the open group's (NULL: the upload is not counted) */
    bool counts_lost;      /* counted, but not by this slot: the next commit gives it up */
    push_checks_t *checks; /* the open group's (NULL: the push does not evaluate checks) */
    bool checks_lost;      /* evaluated, but not by this slot: the next commit gives it up */
    push_keys_t *keys;     /* the open group's (NULL: the push hashes no unique field) */
    bool keys_lost;        /* hashed, but not by this slot: the next commit gives it up */
    push_upload_t u;       /* the uploads row when the slot was opened */
    int64_t used_ms;
} push_slot_t;

push_slot_t *push_slot_find(int64_t upload);

/*  Rebuild an upload's slot from its row, at its committed boundary. */
int push_slot_open(odp_req_t *req, const push_upload_t *u, push_slot_t **out);

/*  Give the slot up: its open group is rolled back, its connection closed. */
void push_slot_free(push_slot_t *slot);
void push_slot_drop(int64_t upload);

/*  The bytes received so far, as the slot sees them. */
int64_t push_slot_received(const push_slot_t *slot);

/*  ---- push_group.c ------------------------------------------------------------------------ */

#define PUSH_REJECTS_MAX (4 * 1024 * 1024) /* rejected rows that force a group commit */

/*  ODP_REGISTRAR_COMMIT_BYTES and ODP_REGISTRAR_COMMIT_SECONDS (in ms). */
int64_t push_commit_bytes(void);
int64_t push_commit_ms(void);

/*  One feed's output into the group: its rows to the COPY, its rejected rows to the
    group's buffer. */
int push_group_add(odp_req_t *req, push_slot_t *slot);

/*  Commit the open group: end its COPY, copy its rejected rows, move uploads.committed to
    the loader's boundary with the hash state and counts there, COMMIT. On any failure the
    slot is given up (the group is rolled back). Of req only err is used: push_tick()
    commits without a request. */
int push_group_commit(odp_req_t *req, push_slot_t *slot);

#endif
