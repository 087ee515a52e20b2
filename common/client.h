/*  client: the request side of the protocol, for tools and tests.

    A DEALER per client, CURVE from ODP_CLIENT_CERT / ODP_SERVER_CERT unless
    ODP_SECURITY=local. Calls are sequential; after a timeout the socket is replaced so a
    late reply cannot be taken for the next call's (zguide "Lazy Pirate").

    Without help, an unregistered or revoked key, a wrong server certificate and a wrong
    endpoint all look the same: silence. libzmq's socket monitor tells them apart (the
    handshake refused by ZAP, the handshake failing, no TCP connection at all), so a call
    that gets no reply can say which it was and what to check (odp_client_why), and gives
    up at once when no reply can come (libzmq does not retry a refused key). */
#ifndef ODP_CLIENT_H
#define ODP_CLIENT_H

#include <czmq.h>
#include <msgpack.h>

#include "codec.h"

typedef struct odp_client_t odp_client_t;
typedef struct odp_watch_t odp_watch_t;

typedef struct {
    int status;          /* 200, 400, ... ; 0 when no reply came */
    zframe_t *body;      /* owned by the reply */
    msgpack_zone zone;   /* decoded body lives here */
    msgpack_object obj;  /* the body, when it unpacked */
    odp_rep_error_t err; /* when status != 200 */
} odp_reply_t;

/*  endpoint NULL: ODP_<SERVICE>_ENDPOINT or its default. cert NULL: ODP_CLIENT_CERT.
    NULL with a reason in errbuf when the configuration cannot work (no ODP_SERVER_CERT,
    an unreadable certificate, a malformed endpoint): a usage error for a tool. */
odp_client_t *odp_client_new(const char *service, const char *endpoint, const char *cert,
                             char *errbuf, size_t errsize);
void odp_client_destroy(odp_client_t **self_p);

/*  The certificate settings a client needs (cert NULL: ODP_CLIENT_CERT), checked before
    libzmq sees them: a missing one is the most common mistake, and the most confusing
    once it turns into silence. 0, or -1 with what to set in err. */
int odp_client_check_config(const char *cert, char *err, size_t errsize);

/*  Send [ODP/1, command, body] and wait up to timeout_ms. 0 when any reply came (check
    rep->status), -1 on timeout or when the connection cannot succeed (odp_client_why
    says which). odp_reply_free() afterwards either way. */
int odp_client_call_raw(odp_client_t *self, const char *command, const void *body, size_t size,
                        int timeout_ms, odp_reply_t *rep);

/*  Encode msg (declared by def) and call. */
int odp_client_call(odp_client_t *self, const odp_msgdef_t *def, const void *msg, int timeout_ms,
                    odp_reply_t *rep);

/*  The same in two halves, for a client that keeps several requests in flight (a
    download under its credit): replies come back in the order the requests were sent.
    A recv that times out replaces the socket, so every request in flight is lost. */
int odp_client_send_raw(odp_client_t *self, const char *command, const void *body, size_t size);
int odp_client_send(odp_client_t *self, const odp_msgdef_t *def, const void *msg);
int odp_client_recv(odp_client_t *self, int timeout_ms, odp_reply_t *rep);

void odp_reply_free(odp_reply_t *rep);

/*  Why the last call got no reply: one sentence naming the service, its endpoint and
    what to check ("" after a reply). */
const char *odp_client_why(const odp_client_t *self);

/*  ---- the connection watch, for tools that drive their own socket (odp-push) ---------- */

typedef enum {
    ODP_LINK_NONE,        /* no TCP connection made yet */
    ODP_LINK_CONNECTING,  /* TCP connected, the handshake not finished */
    ODP_LINK_UP,          /* the handshake succeeded */
    ODP_LINK_DROPPED,     /* it was up, then the connection dropped */
    ODP_LINK_NO_LISTENER, /* the TCP connection was refused: nothing listens there */
    ODP_LINK_KEY_REFUSED, /* ZAP refused the client's key (not registered, or revoked) */
    ODP_LINK_HANDSHAKE,   /* the CURVE handshake failed: another server key, or not a
                             request port */
    ODP_LINK_NOT_CURVE,   /* the server there does not use CURVE, or another protocol error */
} odp_link_t;

/*  Watch sock's connection to endpoint (call before zsock_connect). service, cert (NULL:
    ODP_CLIENT_CERT) and flags only name things in odp_watch_why: ODP_WATCH_GIVEN when the
    endpoint came from --endpoint, ODP_WATCH_EVENTS for a service's events port. NULL when
    the monitor cannot start. */
#define ODP_WATCH_GIVEN  0x1
#define ODP_WATCH_EVENTS 0x2
odp_watch_t *odp_watch_new(zsock_t *sock, const char *service, const char *endpoint,
                           const char *cert, int flags);
/*  Before the watched socket is destroyed. */
void odp_watch_destroy(odp_watch_t **self_p);

/*  Readable when the connection changed: add it to a poller, then odp_watch_read. */
zsock_t *odp_watch_socket(odp_watch_t *self);

/*  Take one pending change (non-blocking); the link's state after it. */
odp_link_t odp_watch_read(odp_watch_t *self);
odp_link_t odp_watch_link(const odp_watch_t *self);

/*  true when waiting longer cannot bring a reply: the key was refused, the server does
    not speak CURVE, or handshakes keep failing without one ever succeeding. */
bool odp_watch_hopeless(const odp_watch_t *self);

/*  The sentence for odp_client_why: what the link says after waited_ms without a reply. */
const char *odp_watch_why(const odp_watch_t *self, int waited_ms, char *buf, size_t size);

/*  Look up a key in a reply map: NULL when absent. */
const msgpack_object *odp_map_get(const msgpack_object *map, const char *key);

/*  A SUB socket on a service's events, CURVE-configured, subscribed to prefix ("" = all).
    When watch is not NULL it receives a watch of the connection (odp_watch_destroy it
    before the socket): a subscriber hears nothing at all when its key is refused. */
zsock_t *odp_client_sub(const char *service, const char *endpoint, const char *prefix, int rcvhwm,
                        const char *cert, odp_watch_t **watch, char *errbuf, size_t errsize);

#endif
