/*  odp-query: the users' service (R4.3b-c, R4.4, R7d, R9e). Identity (identity.c),
    applications for conditional data and the grant check (access.c), feedback routed to
    departments (feedback.c), per-actor rate limits and batched usage counts (guard.c). */
#ifndef QUERY_H
#define QUERY_H

#include "common/service.h"

#include <stdbool.h>
#include <stdint.h>

extern const odp_migration_t query_migrations[];
extern const size_t query_nmigrations;

typedef struct q_guard_t q_guard_t;

typedef struct {
    q_guard_t *guard;
    int64_t session_ttl_s; /* default and ceiling of a session's life */
} q_ctx_t;

/*  Who a request acts for, after its token or bound key is looked at. */
typedef enum { Q_ANONYMOUS, Q_USER, Q_PROVIDER, Q_OPERATIONS } q_kind_t;

typedef struct {
    q_kind_t kind;
    int64_t user;        /* Q_USER */
    char department[10]; /* Q_PROVIDER: its code */
    char str[80];        /* "user:<id>", "provider:<code>", "operations:<login>", "anonymous" */
    char via[16];        /* token, key, certificate, none */
    char expires_at[33]; /* of the session, when via token */
} q_who_t;

/*  Resolve the request's actor: a token (when token is present) must be a live session
    (else 401), a key bound to an account acts as that user, a registered department or
    operations key as itself; anyone else is anonymous. Then charge the actor's rate
    limit (429 with retry_after_ms when it is spent). 0, or -1 with req->err set. */
int q_who(odp_req_t *req, const odp_val_t *token, q_who_t *who);

/*  An anonymous caller as q_who names one, neither looked up nor charged: the row query's
    fast path for a public key no account is known to hold (rows.c), which charges the key
    itself (q_charge_key) and whose statement checks that the key is unbound. */
void q_who_anonymous(const odp_req_t *req, q_who_t *who);

/*  The same, and the actor must be a signed-in user (401 otherwise). */
int q_user(odp_req_t *req, const odp_val_t *token, q_who_t *who);

/*  The rate limit alone, for commands before there is an account (signup, signin):
    charged to the connection's key. */
int q_charge_key(odp_req_t *req);

q_guard_t *q_guard_new(odp_service_t *svc);
void q_guard_destroy(q_guard_t **self_p);
/*  Spend one token of actor's bucket: 0, or the milliseconds until one is there. */
int64_t q_guard_take(q_guard_t *self, const char *actor);
typedef enum { Q_VIEW, Q_QUERY, Q_DOWNLOAD } q_use_t;
/*  Count one view, query or download of a resource by who (a signed-in user is kept as one
    of the resource's users that day); added to usage_counts and usage_users on a timer. */
void q_guard_count(q_guard_t *self, const q_who_t *who, const char *resource,
                   const char *department, q_use_t use);

/*  Shared helpers for replies. */
odp_val_t q_col(PGresult *r, int row, int col);
odp_val_t q_int(PGresult *r, int row, int col);
typedef void (*q_fill_fn)(PGresult *r, int i, void *rec);
int q_pack_list(odp_req_t *req, PGresult *r, const odp_msgdef_t *def, q_fill_fn fill, void *rec,
                size_t size);
/*  A timestamp column rendered as ISO 8601 UTC. */
#define Q_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*  A released version as a reader may reach it (published.c): the entry published and not
    not_open, the release current or superseded (a numbered version, or release when > 0,
    or the current one), and whether who may read its rows (query.may_read). */
typedef struct {
    int64_t release;
    int64_t version;
    int64_t rows;
    int64_t bytes;
    char resource[33];
    char department[10];
    char relation[40]; /* publisher.r<release>; "" for files and endpoints */
    char sha256[65];
    char kind[16];
    char open_type[16];
    bool may_read;
    bool had_grant; /* a grant that has expired */
} q_release_t;

/*  The SELECT q_release runs, its parameters numbered from p: resource, version (NULL:
    not asked), user (NULL: not a user), release (NULL: not pinned); one row, columns id,
    version, relation, rows, bytes, department, sha256, kind, open_type, may_read,
    had_grant. rows.c runs it in the same statement as the rows it guards. */
void q_release_sql(char *buf, size_t size, int p);
/*  0, or -1 with req->err set: 404 when nothing published matches, 403 (naming why) when
    who may not read it, 409 INVALID_STATE when it has no rows to serve. */
int q_release(odp_req_t *req, const q_who_t *who, const odp_val_t *resource, int64_t version,
              int64_t release, q_release_t *out);
/*  The same, a file entry's release included (relation "", kind "file"): its bytes are
    downloadable (download.c). */
int q_release_or_file(odp_req_t *req, const q_who_t *who, const odp_val_t *resource,
                      int64_t version, int64_t release, q_release_t *out);

/*  A field of a release (publisher.release_fields), its identifier quoted for SQL. */
typedef struct {
    char name[64];
    char ident[136];
    char type[16]; /* text integer numeric date timestamp boolean */
    bool indexed;
} q_field_t;
/*  The release's fields in position order into *out (free() it); the count, or -1 with
    req->err set. */
int q_fields(odp_req_t *req, int64_t release, q_field_t **out);
/*  The SQL type a field's values are cast to. */
const char *q_sql_type(const char *field_type);

/*  Who a download belongs to: user:<id>, or the key of an anonymous caller. */
void q_owner(const odp_req_t *req, const q_who_t *who, char *buf, size_t size);

/*  odp_db_exec through a statement prepared once per connection (prepared.c): for the
    statements every reader's request runs. Same results and errors. */
PGresult *q_exec(odp_req_t *req, const char *sql, int n, const char *const *vals, const int *lens);

/*  Pack a C string (NULL: nil). */
void q_pack_str(msgpack_packer *pk, const char *s);

void identity_routes(odp_service_t *svc);
void search_routes(odp_service_t *svc);
void rows_routes(odp_service_t *svc);
void download_routes(odp_service_t *svc);
void access_routes(odp_service_t *svc);
void feedback_routes(odp_service_t *svc);

#endif
