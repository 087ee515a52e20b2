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

/*  Who may call a command: a mask of actor kinds. */
#define ODP_ALLOW_AUTHORITY  0x01
#define ODP_ALLOW_OPERATIONS 0x02
#define ODP_ALLOW_PROVIDER   0x04
#define ODP_ALLOW_USER       0x08
#define ODP_ALLOW_ANONYMOUS  0x10
#define ODP_ALLOW_ANY        0x1f

typedef struct {
    odp_service_t *svc;
    odp_db_t *db;
    odp_outbox_t *outbox;
    const odp_actor_t *actor;
    const char *actor_str; /* "kind:id" */
    const void *msg;       /* the decoded odp_<ident>_t */
    msgpack_packer *pk;    /* pack exactly one reply map here on success */
    odp_error_t *err;      /* fill with odp_error_set() and return -1 on failure */
    int queued;            /* requests with this command from this connection that had been
                              read and not answered when this one was read, itself
                              included: what the client had in flight at least */
} odp_req_t;

typedef int (*odp_handler_fn)(odp_req_t *req);

/*  Sockets bound, ZAP started, database connected and migrated (outbox first, then
    migs). NULL on a configuration error, logged. */
odp_service_t *odp_service_new(const char *name, const odp_migration_t *migs, size_t nmigs);
void odp_service_destroy(odp_service_t **self_p);

odp_db_t *odp_service_db(odp_service_t *self);

int odp_service_route(odp_service_t *self, const odp_msgdef_t *def, int allow, odp_handler_fn fn);

/*  Run until SIGTERM/SIGINT. 0 on a clean stop. */
int odp_service_run(odp_service_t *self);

/*  The whole of a service's main(): new, setup (routes; may be NULL), run, destroy.
    Exit status 0 on a clean stop, 1 when the service could not start. */
int odp_service_main(const char *name, const odp_migration_t *migs, size_t nmigs,
                     int (*setup)(odp_service_t *svc));

/*  Helpers for handlers. */
int odp_req_fail(odp_req_t *req, odp_err_t code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*  Map a failed statement to a reply error: UNAVAILABLE when r is NULL (connection lost),
    ALREADY_EXISTS for unique violations, INTERNAL otherwise (logged). Clears r. */
int odp_req_db_fail(odp_req_t *req, PGresult *r, const char *what);
int odp_req_ok_empty(odp_req_t *req);

#endif
