/*  odp-query: the users' service (R4.3b-c, R4.4, R7d, R9e). Identity (identity.c),
    applications for conditional data and the grant check (access.c), feedback routed to
    departments (feedback.c), per-actor rate limits and batched usage counts (guard.c). */
#ifndef QUERY_H
#define QUERY_H

#include "common/service.h"

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

/*  The same, and the actor must be a signed-in user (401 otherwise). */
int q_user(odp_req_t *req, const odp_val_t *token, q_who_t *who);

/*  The rate limit alone, for commands before there is an account (signup, signin):
    charged to the connection's key. */
int q_charge_key(odp_req_t *req);

q_guard_t *q_guard_new(odp_service_t *svc);
void q_guard_destroy(q_guard_t **self_p);
/*  Spend one token of actor's bucket: 0, or the milliseconds until one is there. */
int64_t q_guard_take(q_guard_t *self, const char *actor);
/*  Count one view, query or download of a resource; added to usage_counts on a timer. */
typedef enum { Q_VIEW, Q_QUERY, Q_DOWNLOAD } q_use_t;
void q_guard_count(q_guard_t *self, const char *resource, const char *department, q_use_t use);

/*  Shared helpers for replies. */
odp_val_t q_col(PGresult *r, int row, int col);
odp_val_t q_int(PGresult *r, int row, int col);
typedef void (*q_fill_fn)(PGresult *r, int i, void *rec);
int q_pack_list(odp_req_t *req, PGresult *r, const odp_msgdef_t *def, q_fill_fn fill, void *rec,
                size_t size);
/*  A timestamp column rendered as ISO 8601 UTC. */
#define Q_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

void identity_routes(odp_service_t *svc);
void access_routes(odp_service_t *svc);
void feedback_routes(odp_service_t *svc);

#endif
