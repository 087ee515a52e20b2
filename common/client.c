#include "client.h"

#include "auth.h"
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*  ---- the connection watch ---------------------------------------------------------- */

/*  Handshakes failing this many times in a row, none succeeding, is a configuration
    fault rather than a service restarting under us (that shows as refused connections). */
#define S_HANDSHAKE_HOPELESS 3

struct odp_watch_t {
    void *watched; /* the libzmq socket, to stop monitoring it */
    zsock_t *pair; /* receives the monitor's events */
    odp_link_t link;
    uint32_t value;   /* of the event that set link: ZAP status, ZMTP error, errno */
    int failures;     /* handshakes failed since the last one that succeeded */
    bool ever_up;     /* a handshake succeeded at some point */
    char service[32]; /* for the sentences */
    char endpoint[256];
    char cert[512];
    int flags;
};

odp_watch_t *odp_watch_new(zsock_t *sock, const char *service, const char *endpoint,
                           const char *cert, int flags)
{
    static int counter = 0;
    odp_watch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    char inproc[96];
    snprintf(inproc, sizeof inproc, "inproc://odp-watch-%d-%d", (int)getpid(),
             __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    self->watched = zsock_resolve(sock);
    if (zmq_socket_monitor(self->watched, inproc, ZMQ_EVENT_ALL) < 0 ||
        !(self->pair = zsock_new_pair(inproc))) {
        zmq_socket_monitor(self->watched, NULL, 0);
        free(self);
        return NULL;
    }
    zsock_set_linger(self->pair, 0);
    snprintf(self->service, sizeof self->service, "%s", service ? service : "service");
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    const char *c = cert ? cert : odp_config(NULL, "CLIENT_CERT", NULL);
    snprintf(self->cert, sizeof self->cert, "%s", c ? c : "");
    self->flags = flags;
    return self;
}

void odp_watch_destroy(odp_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    odp_watch_t *self = *self_p;
    zmq_socket_monitor(self->watched, NULL, 0);
    zsock_destroy(&self->pair);
    free(self);
    *self_p = NULL;
}

zsock_t *odp_watch_socket(odp_watch_t *self)
{
    return self->pair;
}

odp_link_t odp_watch_link(const odp_watch_t *self)
{
    return self->link;
}

odp_link_t odp_watch_read(odp_watch_t *self)
{
    zmsg_t *m = zmsg_recv_nowait(self->pair);
    zframe_t *f = m ? zmsg_first(m) : NULL;
    if (!f || zframe_size(f) < 6) {
        zmsg_destroy(&m);
        return self->link;
    }
    uint16_t event;
    uint32_t value;
    memcpy(&event, zframe_data(f), 2);
    memcpy(&value, zframe_data(f) + 2, 4);
    zmsg_destroy(&m);
    switch (event) {
    case ZMQ_EVENT_CONNECTED:
        self->link = ODP_LINK_CONNECTING;
        break;
    case ZMQ_EVENT_CLOSED:
        /*  A connect attempt's socket closed without a connection: refused. */
        if (self->link != ODP_LINK_UP)
            self->link = ODP_LINK_NO_LISTENER;
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        self->link = ODP_LINK_UP;
        self->ever_up = true;
        self->failures = 0;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (self->link == ODP_LINK_UP)
            self->link = ODP_LINK_DROPPED;
        return self->link;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        self->link = ODP_LINK_KEY_REFUSED;
        self->failures++;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        /*  A server without CURVE answers with another mechanism; a CURVE server with
            another key fails without detail (below). */
        self->link = ODP_LINK_NOT_CURVE;
        self->failures++;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        self->link = ODP_LINK_HANDSHAKE;
        self->failures++;
        break;
    default:
        return self->link;
    }
    self->value = value;
    return self->link;
}

bool odp_watch_hopeless(const odp_watch_t *self)
{
    return (self->link == ODP_LINK_KEY_REFUSED && self->value == 400) ||
           self->link == ODP_LINK_NOT_CURVE ||
           (self->link == ODP_LINK_HANDSHAKE && !self->ever_up &&
            self->failures >= S_HANDSHAKE_HOPELESS);
}

/*  Where the endpoint came from, for "check ...". */
static const char *s_endpoint_source(const odp_watch_t *self, char *buf, size_t size)
{
    if (self->flags & ODP_WATCH_GIVEN) {
        snprintf(buf, size, "--endpoint");
        return buf;
    }
    char var[64];
    int n = snprintf(var, sizeof var, "ODP_%s_%s", self->service,
                     self->flags & ODP_WATCH_EVENTS ? "EVENTS" : "ENDPOINT");
    for (int i = 0; i < n && var[i]; i++)
        var[i] = (char)toupper((unsigned char)var[i]);
    if (getenv(var) && *getenv(var))
        snprintf(buf, size, "%s", var);
    else
        snprintf(buf, size, "%s (unset: the port comes from ODP_PORT_BASE, %s)", var,
                 odp_config(NULL, "PORT_BASE", "default 7500"));
    return buf;
}

static const char *s_port_kind(const odp_watch_t *self)
{
    return self->flags & ODP_WATCH_EVENTS ? "events" : "request";
}

const char *odp_watch_why(const odp_watch_t *self, int waited_ms, char *buf, size_t size)
{
    char src[160];
    const char *svc = self->service, *ep = self->endpoint;
    const char *server = odp_config(NULL, "SERVER_CERT", "(unset)");
    switch (self->link) {
    case ODP_LINK_KEY_REFUSED:
        if (self->value == 400)
            snprintf(buf, size,
                     "the %s service at %s refused this client's key: the public key of %s is not "
                     "registered on the platform, or was revoked; check --cert / "
                     "ODP_CLIENT_CERT, or ask operations to register it (odpctl credential "
                     "add)",
                     svc, ep, self->cert[0] ? self->cert : "ODP_CLIENT_CERT");
        else
            snprintf(buf, size,
                     "the %s service at %s could not check this client's key (ZAP status %u); see "
                     "the service's log",
                     svc, ep, self->value);
        break;
    case ODP_LINK_NOT_CURVE:
        snprintf(buf, size,
                 "the handshake with %s failed (ZMTP error 0x%x): the server there does not "
                 "use CURVE (a service started with ODP_SECURITY=local?) or is not an odp "
                 "service; check ODP_SECURITY and %s",
                 ep, self->value, s_endpoint_source(self, src, sizeof src));
        break;
    case ODP_LINK_HANDSHAKE:
        snprintf(buf, size,
                 "the secure handshake with %s failed: the server there does not hold the key "
                 "of ODP_SERVER_CERT (%s), or %s is not the %s service's %s port; check "
                 "ODP_SERVER_CERT and %s",
                 ep, server, ep, svc, s_port_kind(self), s_endpoint_source(self, src, sizeof src));
        break;
    case ODP_LINK_NO_LISTENER:
        snprintf(buf, size,
                 "nothing is listening at %s: the %s service is not running (odpctl health; `make "
                 "up` starts what is stopped), or %s is wrong",
                 ep, svc, s_endpoint_source(self, src, sizeof src));
        break;
    case ODP_LINK_NONE:
        snprintf(buf, size,
                 "no connection to %s within %d ms: the host does not answer (a firewall, "
                 "or a wrong address in %s)",
                 ep, waited_ms, s_endpoint_source(self, src, sizeof src));
        break;
    case ODP_LINK_CONNECTING:
        snprintf(buf, size,
                 "connected to %s, but the secure handshake did not finish within %d ms; "
                 "check that %s is the %s service's %s port (%s)",
                 ep, waited_ms, ep, svc, s_port_kind(self),
                 s_endpoint_source(self, src, sizeof src));
        break;
    case ODP_LINK_UP:
        snprintf(
            buf, size,
            "the %s service at %s accepted the connection but did not reply within %d ms: it is "
            "busy or stuck (odpctl health; its log, var/log/%s.log locally)",
            svc, ep, waited_ms, svc);
        break;
    case ODP_LINK_DROPPED:
        snprintf(buf, size,
                 "the connection to the %s service at %s dropped before it replied: the service "
                 "stopped or restarted",
                 svc, ep);
        break;
    }
    return buf;
}

/*  ---- the client ----------------------------------------------------------------------- */

struct odp_client_t {
    zsock_t *sock;
    odp_watch_t *watch;
    char service[32];
    char endpoint[256];
    bool endpoint_given;
    char cert[512];
    bool has_cert;
    char why[1024];
};

int odp_client_check_config(const char *cert, char *err, size_t errsize)
{
    if (!odp_config_secure())
        return 0;
    if (!odp_config(NULL, "SERVER_CERT", NULL)) {
        snprintf(err, errsize,
                 "ODP_SERVER_CERT is not set: point it at the platform's public server "
                 "certificate (`. var/odp.env` sets it for the local platform), or set "
                 "ODP_SECURITY=local for a development platform without security");
        return -1;
    }
    if (!cert && !odp_config(NULL, "CLIENT_CERT", NULL)) {
        snprintf(err, errsize,
                 "no client certificate: pass --cert FILE_secret or set ODP_CLIENT_CERT to "
                 "your secret certificate");
        return -1;
    }
    return 0;
}

static void s_disconnect(odp_client_t *self)
{
    /*  The monitor stops watching the socket first: it must not outlive it. */
    odp_watch_destroy(&self->watch);
    zsock_destroy(&self->sock);
}

static int s_connect(odp_client_t *self, char *err, size_t errsize)
{
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) {
        snprintf(err, errsize, "cannot create socket");
        return -1;
    }
    zsock_set_linger(self->sock, 0);
    zsock_set_sndtimeo(self->sock, 5000);
    if (odp_client_check_config(self->has_cert ? self->cert : NULL, err, errsize) < 0 ||
        odp_auth_client(self->sock, self->has_cert ? self->cert : NULL, err, errsize) < 0) {
        zsock_destroy(&self->sock);
        return -1;
    }
    self->watch =
        odp_watch_new(self->sock, self->service, self->endpoint, self->has_cert ? self->cert : NULL,
                      self->endpoint_given ? ODP_WATCH_GIVEN : 0);
    if (zsock_connect(self->sock, "%s", self->endpoint) < 0) {
        snprintf(err, errsize, "cannot connect to %s: not an endpoint (tcp://HOST:PORT)",
                 self->endpoint);
        s_disconnect(self);
        return -1;
    }
    return 0;
}

odp_client_t *odp_client_new(const char *service, const char *endpoint, const char *cert,
                             char *errbuf, size_t errsize)
{
    char dummy[8];
    if (!errbuf) {
        errbuf = dummy;
        errsize = sizeof dummy;
    }
    errbuf[0] = '\0';
    odp_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->service, sizeof self->service, "%s", service);
    if (endpoint)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    else
        odp_config_endpoint(service, false, false, self->endpoint, sizeof self->endpoint);
    self->endpoint_given = endpoint != NULL;
    if (cert) {
        snprintf(self->cert, sizeof self->cert, "%s", cert);
        self->has_cert = true;
    }
    if (s_connect(self, errbuf, errsize) < 0) {
        free(self);
        return NULL;
    }
    return self;
}

void odp_client_destroy(odp_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_disconnect(*self_p);
    free(*self_p);
    *self_p = NULL;
}

const char *odp_client_why(const odp_client_t *self)
{
    return self->why;
}

/*  Wait for the reply, reading the watch's news meanwhile. 0 when the socket is readable,
    -1 on timeout or when the watch says none can come. A reply usually comes within
    S_QUICK_MS: until then the socket is polled alone, as each ZeroMQ socket polled costs
    system calls (issue #10); the watch's news wait in its socket meanwhile. */
#define S_QUICK_MS 50
static int s_wait(odp_client_t *self, int timeout_ms)
{
    zmq_pollitem_t items[2] = {
        {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0},
        {self->watch ? zsock_resolve(odp_watch_socket(self->watch)) : NULL, 0, ZMQ_POLLIN, 0}};
    int64_t until = zclock_mono() + timeout_ms;
    int rc = -1;
    int quick = timeout_ms < S_QUICK_MS ? timeout_ms : S_QUICK_MS;
    if (quick > 0 && zmq_poll(items, 1, quick) > 0)
        rc = 0;
    for (int n = self->watch ? 2 : 1; rc < 0;) {
        int64_t left = until - zclock_mono();
        if (left <= 0 || zmq_poll(items, n, (long)left) <= 0)
            break;
        if (items[0].revents) {
            rc = 0;
            break;
        }
        odp_watch_read(self->watch);
        if (odp_watch_hopeless(self->watch))
            break;
    }
    if (rc < 0 && self->watch) {
        /*  Events already queued may say more than the state at the deadline. */
        while (zsock_events(odp_watch_socket(self->watch)) & ZMQ_POLLIN)
            odp_watch_read(self->watch);
        odp_watch_why(self->watch, timeout_ms, self->why, sizeof self->why);
    } else if (rc < 0) {
        snprintf(self->why, sizeof self->why, "no answer from %s at %s within %d ms", self->service,
                 self->endpoint, timeout_ms);
    }
    return rc;
}

int odp_client_send_raw(odp_client_t *self, const char *command, const void *body, size_t size)
{
    self->why[0] = '\0';
    if (!self->sock) {
        snprintf(self->why, sizeof self->why, "cannot reconnect to %s at %s", self->service,
                 self->endpoint);
        return -1;
    }
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, ODP_PROTOCOL);
    zmsg_addstr(msg, command);
    zmsg_addmem(msg, body, size);
    if (zmsg_send(&msg, self->sock) < 0) {
        zmsg_destroy(&msg);
        snprintf(self->why, sizeof self->why, "cannot send to %s at %s", self->service,
                 self->endpoint);
        return -1;
    }
    return 0;
}

int odp_client_recv(odp_client_t *self, int timeout_ms, odp_reply_t *rep)
{
    memset(rep, 0, sizeof *rep);
    msgpack_zone_init(&rep->zone, 1024);
    if (!self->sock) {
        snprintf(self->why, sizeof self->why, "cannot reconnect to %s at %s", self->service,
                 self->endpoint);
        return -1;
    }
    if (s_wait(self, timeout_ms) < 0) {
        /*  Lazy Pirate: a late reply must not answer the next call. */
        char err[256] = "";
        s_disconnect(self);
        s_connect(self, err, sizeof err);
        return -1;
    }
    zmsg_t *reply = zmsg_recv(self->sock);
    if (!reply)
        return -1;
    char *st = zmsg_popstr(reply);
    rep->status = st ? atoi(st) : 0;
    free(st);
    rep->body = zmsg_pop(reply);
    zmsg_destroy(&reply);
    if (rep->body) {
        odp_error_t e;
        if (odp_body_unpack(zframe_data(rep->body), zframe_size(rep->body), &rep->zone, &rep->obj,
                            &e) == 0 &&
            rep->status != 200)
            odp_decode_fields(&odp_def_rep_error, &rep->obj, &rep->err, &e);
    }
    return 0;
}

int odp_client_call_raw(odp_client_t *self, const char *command, const void *body, size_t size,
                        int timeout_ms, odp_reply_t *rep)
{
    if (odp_client_send_raw(self, command, body, size) < 0) {
        memset(rep, 0, sizeof *rep);
        msgpack_zone_init(&rep->zone, 1024);
        return -1;
    }
    return odp_client_recv(self, timeout_ms, rep);
}

int odp_client_send(odp_client_t *self, const odp_msgdef_t *def, const void *msg)
{
    msgpack_sbuffer buf;
    if (odp_encode_buf(def, msg, &buf) < 0)
        return -1;
    int rc = odp_client_send_raw(self, def->name, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

int odp_client_call(odp_client_t *self, const odp_msgdef_t *def, const void *msg, int timeout_ms,
                    odp_reply_t *rep)
{
    msgpack_sbuffer buf;
    if (odp_encode_buf(def, msg, &buf) < 0) {
        memset(rep, 0, sizeof *rep);
        msgpack_zone_init(&rep->zone, 64);
        return -1;
    }
    int rc = odp_client_call_raw(self, def->name, buf.data, buf.size, timeout_ms, rep);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

void odp_reply_free(odp_reply_t *rep)
{
    zframe_destroy(&rep->body);
    msgpack_zone_destroy(&rep->zone);
}

const msgpack_object *odp_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

zsock_t *odp_client_sub(const char *service, const char *endpoint, const char *prefix, int rcvhwm,
                        const char *cert, odp_watch_t **watch, char *errbuf, size_t errsize)
{
    char ep[256];
    if (endpoint)
        snprintf(ep, sizeof ep, "%s", endpoint);
    else
        odp_config_endpoint(service, true, false, ep, sizeof ep);
    zsock_t *s = zsock_new(ZMQ_SUB);
    if (!s) {
        snprintf(errbuf, errsize, "cannot create a SUB socket");
        return NULL;
    }
    zsock_set_linger(s, 0);
    if (rcvhwm > 0)
        zsock_set_rcvhwm(s, rcvhwm);
    /*  A small kernel buffer makes a slow subscriber visible at once (tests use it to
        force drops); by default the kernel decides. */
    int64_t rcvbuf = odp_config_int(NULL, "SUB_RCVBUF", 0);
    if (rcvbuf > 0)
        zsock_set_rcvbuf(s, (int)rcvbuf);
    zsock_set_subscribe(s, prefix ? prefix : "");
    if (odp_client_check_config(cert, errbuf, errsize) < 0 ||
        odp_auth_client(s, cert, errbuf, errsize) < 0) {
        zsock_destroy(&s);
        return NULL;
    }
    if (watch)
        *watch = odp_watch_new(s, service, ep, cert,
                               ODP_WATCH_EVENTS | (endpoint ? ODP_WATCH_GIVEN : 0));
    if (zsock_connect(s, "%s", ep) < 0) {
        snprintf(errbuf, errsize, "cannot connect to %s: not an endpoint (tcp://HOST:PORT)", ep);
        if (watch)
            odp_watch_destroy(watch);
        zsock_destroy(&s);
    }
    return s;
}
