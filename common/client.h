/*  client: the request side of the protocol, for tools and tests.

    A DEALER per client, CURVE from ODP_CLIENT_CERT / ODP_SERVER_CERT unless
    ODP_SECURITY=local. Calls are sequential; after a timeout the socket is replaced so a
    late reply cannot be taken for the next call's (zguide "Lazy Pirate"). */
#ifndef ODP_CLIENT_H
#define ODP_CLIENT_H

#include <czmq.h>
#include <msgpack.h>

#include "codec.h"

typedef struct odp_client_t odp_client_t;

typedef struct {
    int status;          /* 200, 400, ... ; 0 when no reply came */
    zframe_t *body;      /* owned by the reply */
    msgpack_zone zone;   /* decoded body lives here */
    msgpack_object obj;  /* the body, when it unpacked */
    odp_rep_error_t err; /* when status != 200 */
} odp_reply_t;

/*  endpoint NULL: ODP_<SERVICE>_ENDPOINT or its default. cert NULL: ODP_CLIENT_CERT. */
odp_client_t *odp_client_new(const char *service, const char *endpoint, const char *cert,
                             char *errbuf, size_t errsize);
void odp_client_destroy(odp_client_t **self_p);

/*  Send [ODP/1, command, body] and wait up to timeout_ms. 0 when any reply came (check
    rep->status), -1 on timeout. odp_reply_free() afterwards either way. */
int odp_client_call_raw(odp_client_t *self, const char *command, const void *body, size_t size,
                        int timeout_ms, odp_reply_t *rep);

/*  Encode msg (declared by def) and call. */
int odp_client_call(odp_client_t *self, const odp_msgdef_t *def, const void *msg, int timeout_ms,
                    odp_reply_t *rep);

void odp_reply_free(odp_reply_t *rep);

/*  Look up a key in a reply map: NULL when absent. */
const msgpack_object *odp_map_get(const msgpack_object *map, const char *key);

/*  A SUB socket on a service's events, CURVE-configured, subscribed to prefix ("" = all). */
zsock_t *odp_client_sub(const char *service, const char *endpoint, const char *prefix, int rcvhwm,
                        const char *cert, char *errbuf, size_t errsize);

#endif
