#include "client.h"

#include "auth.h"
#include "config.h"

#include <stdio.h>
#include <string.h>

struct odp_client_t {
    zsock_t *sock;
    char endpoint[256];
    char cert[512];
    bool has_cert;
};

static zsock_t *s_connect(odp_client_t *self, char *err, size_t errsize)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    if (!s) {
        snprintf(err, errsize, "cannot create socket");
        return NULL;
    }
    zsock_set_linger(s, 0);
    zsock_set_sndtimeo(s, 5000);
    if (odp_auth_client(s, self->has_cert ? self->cert : NULL, err, errsize) < 0 ||
        zsock_connect(s, "%s", self->endpoint) < 0) {
        if (!err[0])
            snprintf(err, errsize, "cannot connect to %s", self->endpoint);
        zsock_destroy(&s);
    }
    return s;
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
    if (endpoint)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    else
        odp_config_endpoint(service, false, false, self->endpoint, sizeof self->endpoint);
    if (cert) {
        snprintf(self->cert, sizeof self->cert, "%s", cert);
        self->has_cert = true;
    }
    self->sock = s_connect(self, errbuf, errsize);
    if (!self->sock) {
        free(self);
        return NULL;
    }
    return self;
}

void odp_client_destroy(odp_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->sock);
    free(*self_p);
    *self_p = NULL;
}

int odp_client_call_raw(odp_client_t *self, const char *command, const void *body, size_t size,
                        int timeout_ms, odp_reply_t *rep)
{
    memset(rep, 0, sizeof *rep);
    msgpack_zone_init(&rep->zone, 1024);
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, ODP_PROTOCOL);
    zmsg_addstr(msg, command);
    zmsg_addmem(msg, body, size);
    if (zmsg_send(&msg, self->sock) < 0) {
        zmsg_destroy(&msg);
        return -1;
    }
    zpoller_t *p = zpoller_new(self->sock, NULL);
    void *which = zpoller_wait(p, timeout_ms);
    zpoller_destroy(&p);
    if (!which) {
        /*  Lazy Pirate: a late reply must not answer the next call. */
        char err[128] = "";
        zsock_destroy(&self->sock);
        self->sock = s_connect(self, err, sizeof err);
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
                        const char *cert, char *errbuf, size_t errsize)
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
    if (odp_auth_client(s, cert, errbuf, errsize) < 0) {
        zsock_destroy(&s);
        return NULL;
    }
    if (zsock_connect(s, "%s", ep) < 0) {
        snprintf(errbuf, errsize, "cannot connect to %s", ep);
        zsock_destroy(&s);
    }
    return s;
}
