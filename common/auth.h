/*  auth: who is asking. On TCP every socket is a CURVE server and odp's own ZAP handler
    (a thread) reads public certificates from ODP_CERT_DIR: on a registered-only endpoint a
    client whose key has no certificate there is refused at the handshake. The certificate's
   metadata (kind, id, name) comes back on every message as ZAP metadata, which is how a request's
   actor is known. CURVE is never enabled without ZAP: that would admit any key.

    ODP_SECURITY=local turns all of this off for development: sockets may then bind only
    to loopback or ipc, every request acts as operations:local, and the log says so. */
#ifndef ODP_AUTH_H
#define ODP_AUTH_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char kind[16]; /* authority | operations | provider | user | service | anonymous */
    char id[65];
    char name[201];
    char key[41]; /* Z85 public key, "" in local mode */
} odp_actor_t;

/*  Start the ZAP handler (once per process) and load the server certificate named by
    ODP_SERVER_CERT. 0 / -1 (logged). */
int odp_auth_start(const char *service);
void odp_auth_stop(void);
bool odp_auth_secure(void);

/*  Make sock a CURVE server (before bind) in ZAP domain "odp": registered keys only.
    No-op in local mode. */
int odp_auth_server(zsock_t *sock);
/*  The same with a domain: "odp.public" admits any key (anonymous unless registered),
    "odp.events" only operations, service and authority keys. */
int odp_auth_server_domain(zsock_t *sock, const char *domain);

/*  Whether a key (Z85) is still registered now: checked for every request, because CURVE
    and ZAP look at a key only when the connection is made. One stat() of the certificate
    directory, and a reload when it changed. generation (may be NULL) receives the count of
    reloads that removed a key. Always true in local mode. */
bool odp_auth_key_current(const char *key, uint64_t *generation);
/*  The same against the directory as last read, without looking at it: for a loop that
    reads it once per turn (odp_auth_key_current) and then checks each request of the turn. */
bool odp_auth_key_listed(const char *key);

/*  Refuse non-local endpoints in local mode. */
bool odp_auth_endpoint_ok(const char *endpoint);

/*  Actor of a received message, from any of its frames' metadata. */
void odp_auth_actor(zframe_t *frame, odp_actor_t *actor);

/*  "kind:id" */
const char *odp_actor_str(const odp_actor_t *actor, char *buf, size_t size);

/*  Client side: make sock a CURVE client of the server in ODP_SERVER_CERT using the
    secret cert at ODP_CLIENT_CERT (or cert_path when not NULL). 0 / -1 with a reason in
    err. No-op in local mode. */
int odp_auth_client(zsock_t *sock, const char *cert_path, char *err, size_t errsize);

/*  The secret certificate a service acts with when it calls or follows another service
    (actor kind service, id its name): ODP_<SERVICE>_SERVICE_CERT, else
    $ODP_SERVICE_KEYS/service-<name>_secret. Writes the path into buf; -1 when neither is
    configured (in local mode 0 with buf "": no certificate is needed). */
int odp_auth_service_cert(const char *service, char *buf, size_t size);

/*  Write a new key pair: base (public cert with metadata kind/id/name) and base_secret.
    public_key receives the Z85 public key (41 bytes). 0 / -1. */
int odp_auth_keygen(const char *kind, const char *id, const char *name, const char *base,
                    char *public_key);

/*  Write a public certificate for key into dir as <kind>-<id>.cert (or remove it). */
int odp_auth_publish_key(const char *dir, const char *kind, const char *id, const char *name,
                         const char *public_key);
int odp_auth_unpublish_key(const char *dir, const char *public_key);

#endif
