/*  service: the loop every odp service runs.

    ROUTER for requests ["ODP/1", COMMAND, BODY] -> [STATUS, BODY], PUB for events, a
    heartbeat timer, SIGTERM/SIGINT for a clean stop. Every request is bounded, decoded
    against its declaration, authorised by actor kind, and answered - with a stable error
    code when anything is wrong - so that no input can take the service down. Every
    service answers health, whoami and events.replay. */
#ifndef ODP_SERVICE_H
#define ODP_SERVICE_H

#include <czmq.h>
#include <msgpack.h>

#include "auth.h"
#include "codec.h"
#include "db.h"
#include "outbox.h"

typedef struct odp_service_t odp_service_t;

/*  Upper bounds (ms) of the request duration buckets that health reports (latency_buckets:
    one count per bound, then one for longer; not cumulative). */
#define ODP_LATENCY_BOUNDS_MS                                                                      \
    {                                                                                              \
        1, 5, 10, 50, 100, 500, 1000, 5000                                                         \
    }
#define ODP_LATENCY_NBUCKETS 9

/*  Who may call a command: a mask of actor kinds. */
#define ODP_ALLOW_AUTHORITY  0x01
#define ODP_ALLOW_OPERATIONS 0x02
#define ODP_ALLOW_PROVIDER   0x04
#define ODP_ALLOW_USER       0x08
#define ODP_ALLOW_ANONYMOUS  0x10
#define ODP_ALLOW_SERVICE    0x20 /* another odp service, with its own key (kind service) */
#define ODP_ALLOW_ANY        0x3f

typedef struct {
    odp_service_t *svc;
    void *ctx; /* the service's own state, set with odp_service_set_ctx */
    odp_db_t *db;
    odp_outbox_t *outbox;
    const odp_actor_t *actor;
    const char *actor_str; /* "kind:id" */
    const void *msg;       /* the decoded odp_<ident>_t */
    msgpack_packer *pk;    /* pack exactly one reply map here on success */
    odp_error_t *err;      /* fill with odp_error_set() and return -1 on failure */
    msgpack_sbuffer *rbuf; /* what pk writes to: a retried transaction starts it again */
    int queued;            /* requests with this command from this connection that had been
                              read and not answered when this one was read, itself
                              included: what the client had in flight at least */
    void *resume;          /* what a route's fast path left for its handler when it fell
                              back to the pool (odp_service_route_async); the handler
                              frees it */
} odp_req_t;

typedef int (*odp_handler_fn)(odp_req_t *req);

/*  Sockets bound, ZAP started, database connected and migrated (outbox first, then
    migs). NULL on a configuration error, logged. */
odp_service_t *odp_service_new(const char *name, const odp_migration_t *migs, size_t nmigs);
void odp_service_destroy(odp_service_t **self_p);

odp_db_t *odp_service_db(odp_service_t *self);

int odp_service_route(odp_service_t *self, const odp_msgdef_t *def, int allow, odp_handler_fn fn);

/*  Opt-in, for read-only commands: a pool of nworkers threads, each with its own database
    connection, runs the handlers of the commands routed with odp_service_route_pooled,
    while the loop goes on reading, checking and answering. Such a handler must be
    thread-safe (what it shares through req->ctx it locks), gets req->outbox NULL (it
    writes no events) and req->db its worker's connection. Replies on one connection keep
    the order of its requests. 0 / -1. */
int odp_service_pool(odp_service_t *self, int nworkers);
int odp_service_route_pooled(odp_service_t *self, const odp_msgdef_t *def, int allow,
                             odp_handler_fn fn);

/*  A pooled route's fast path on the loop (issue #10): start checks the request and either
    answers it (0, or -1 with req->err set), or hands back one read-only statement in *stmt
    (ODP_ASYNC_SEND), or sends the request to the pool (ODP_ASYNC_POOL). A statement is
    sent by the loop itself on one of its own connections in pipeline mode (prepared once
    per connection; the requests read in one turn go in one write), with no thread
    hand-off; finish then gets its result (NULL when it could not run: a lost connection)
    and answers, or sends the request to the pool. start may keep its own state in *state
    (what stmt points into); finish is called exactly once after ODP_ASYNC_SEND and frees
    it. When either sends the request to the pool, what it leaves in req->resume goes to
    the route's handler there. Both run on the loop: req->db is the loop's connection,
    req->outbox NULL. Replies on a connection keep the order of its requests. Effective
    only with odp_service_pool and odp_service_pipelines. */
typedef struct {
    const char *sql;
    int n;
    const char *const *vals;
    const int *lens; /* as odp_db_exec */
} odp_stmt_t;
#define ODP_ASYNC_SEND 1
#define ODP_ASYNC_POOL 2
typedef int (*odp_start_fn)(odp_req_t *req, odp_stmt_t *stmt, void **state);
typedef int (*odp_finish_fn)(odp_req_t *req, PGresult *r, void *state);
int odp_service_route_async(odp_service_t *self, const odp_msgdef_t *def, int allow,
                            odp_handler_fn fn, odp_start_fn start, odp_finish_fn finish);
/*  The loop's own connections for the fast paths: nconns of them. 0 / -1. */
int odp_service_pipelines(odp_service_t *self, int nconns);

/*  The service's own state, handed to every handler as req->ctx and to timers and readers. */
void odp_service_set_ctx(odp_service_t *self, void *ctx);
void *odp_service_ctx(odp_service_t *self);
const char *odp_service_name(odp_service_t *self);
odp_outbox_t *odp_service_outbox(odp_service_t *self);

/*  Periodic work owned by the loop (Redis's serverCron, czmq's zloop_timer): fn runs every
    interval_ms between requests, whether or not requests arrive. A timer's work must be
    short; it shares the thread with requests. 0 / -1 (too many timers). */
typedef void (*odp_timer_fn)(odp_service_t *svc, void *arg);
int odp_service_timer(odp_service_t *self, int interval_ms, odp_timer_fn fn, void *arg);

/*  A socket the loop polls beside its own (a SUB on another service's events, say): fn is
    called when sock is readable and must read at least one message. The caller keeps
    ownership of sock and removes it with odp_service_reader_remove before destroying it. */
typedef void (*odp_reader_fn)(odp_service_t *svc, zsock_t *sock, void *arg);
int odp_service_reader(odp_service_t *self, zsock_t *sock, odp_reader_fn fn, void *arg);
void odp_service_reader_remove(odp_service_t *self, zsock_t *sock);

/*  Run until SIGTERM/SIGINT. 0 on a clean stop. */
int odp_service_run(odp_service_t *self);

/*  The whole of a service's main(): new, setup (routes; may be NULL), run, destroy.
    Exit status 0 on a clean stop, 1 when the service could not start. */
int odp_service_main(const char *name, const odp_migration_t *migs, size_t nmigs,
                     int (*setup)(odp_service_t *svc));

/*  Helpers for handlers. */
int odp_req_fail(odp_req_t *req, odp_err_t code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*  Map a failed statement to a reply error by its SQLSTATE class (odp_db_classify): the
    caller's mistake (409/422, naming the column when PostgreSQL does), a transient failure
    (503), or a programmer error (500, logged). r NULL: the statement that failed is the
    connection's last one (a BEGIN/COMMIT through odp_db_cmd, or a lost connection).
    Clears r. */
int odp_req_db_fail(odp_req_t *req, PGresult *r, const char *what);

/*  One way to run a request's transaction: BEGIN, fn (changes, odp_outbox_append), COMMIT.
    A serialization failure or deadlock (SQLSTATE 40001, 40P01) anywhere, the COMMIT
    included, rolls back and runs fn again from the start, reply buffer emptied, up to
    ODP_TXN_TRIES times; any other failure maps as odp_req_db_fail does. fn returns 0 or
    -1 with req->err set (a failed statement: return odp_req_db_fail(req, r, what)).
    0 when committed. */
#define ODP_TXN_TRIES 4
typedef int (*odp_txn_fn)(odp_req_t *req, void *arg);
int odp_req_txn(odp_req_t *req, odp_txn_fn fn, void *arg);
int odp_req_ok_empty(odp_req_t *req);

#endif
