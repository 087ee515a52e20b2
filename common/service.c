#include "service.h"

#include "config.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ROUTES 64

/*  Requests are read ahead of handling into a bounded queue, so that the service sees how
    many requests a connection has sent that it has not answered yet (odp_req_t.queued):
    a client's promise to keep at most `credit` requests in flight can then be held to.
    Past these bounds requests wait in libzmq, as they would without the queue. */
#define S_QUEUE_MAX   256
#define S_QUEUE_BYTES (64 << 20)

typedef struct {
    zmsg_t *msg;
    int queued;
} s_queued_t;

typedef struct {
    const odp_msgdef_t *def;
    int allow;
    odp_handler_fn fn;
} s_route_t;

/*  Big enough for any declared request's decoded struct. */
typedef union {
#define S_MEMBER(ident, cmd) odp_##ident##_t ident;
    ODP_REQUESTS(S_MEMBER)
#undef S_MEMBER
} s_any_request_t;

struct odp_service_t {
    char name[16];
    zsock_t *router;
    zsock_t *pub;
    odp_db_t *db;
    odp_outbox_t *outbox;
    s_route_t routes[S_MAX_ROUTES];
    size_t nroutes;
    size_t max_body;
    int heartbeat_ms;
    int64_t started_ms;
    int64_t requests;
    int64_t errors;
    int64_t by_code[ODP_E__COUNT];
    s_queued_t queue[S_QUEUE_MAX]; /* a ring of qcount from qhead */
    size_t qhead, qcount, qbytes;
};

static int s_health(odp_req_t *req);
static int s_whoami(odp_req_t *req);
static int s_replay(odp_req_t *req);

static int s_kind_bit(const char *kind)
{
    if (strcmp(kind, "authority") == 0)
        return ODP_ALLOW_AUTHORITY;
    if (strcmp(kind, "operations") == 0)
        return ODP_ALLOW_OPERATIONS;
    if (strcmp(kind, "provider") == 0)
        return ODP_ALLOW_PROVIDER;
    if (strcmp(kind, "user") == 0)
        return ODP_ALLOW_USER;
    return ODP_ALLOW_ANONYMOUS;
}

static zsock_t *s_socket(int type, const char *endpoint, size_t maxmsg, int sndhwm, int sndbuf)
{
    if (!odp_auth_endpoint_ok(endpoint)) {
        odp_error("event=service.bind_refused endpoint=%s msg=\"local mode binds only to "
                  "loopback or ipc\"",
                  endpoint);
        return NULL;
    }
    zsock_t *s = zsock_new(type);
    if (!s)
        return NULL;
    /*  Options first: anything set after bind does not apply to it. */
    zsock_set_linger(s, 0);
    if (maxmsg)
        zsock_set_maxmsgsize(s, (int)maxmsg);
    if (sndhwm)
        zsock_set_sndhwm(s, sndhwm);
    if (sndbuf)
        zsock_set_sndbuf(s, sndbuf);
    if (odp_auth_server(s) < 0 || zsock_bind(s, "%s", endpoint) < 0) {
        odp_error("event=service.bind_failed endpoint=%s error=\"%s\"", endpoint,
                  zmq_strerror(zmq_errno()));
        zsock_destroy(&s);
        return NULL;
    }
    return s;
}

odp_service_t *odp_service_new(const char *name, const odp_migration_t *migs, size_t nmigs)
{
    odp_log_init(name);
    odp_service_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->name, sizeof self->name, "%s", name);
    self->started_ms = zclock_mono();
    self->max_body = (size_t)odp_config_int(name, "MAX_BODY", 1 << 20);
    self->heartbeat_ms = (int)odp_config_int(name, "HEARTBEAT_MS", 1000);
    zsys_set_logident(name);

    if (odp_auth_start(name) < 0)
        goto fail;
    char ep[256], eev[256];
    odp_config_endpoint(name, false, true, ep, sizeof ep);
    odp_config_endpoint(name, true, true, eev, sizeof eev);
    /*  A message up to 4x the body limit is read and answered TOO_LARGE; beyond that
        libzmq drops the connection before any byte reaches us (PROTOCOL.md, Limits). */
    self->router = s_socket(ZMQ_ROUTER, ep, self->max_body * 4 + 1024, 0, 0);
    /*  Slow subscribers have an explicit policy: past PUB_HWM queued events their copies
        are dropped (never blocking the service) and they recover by replay. */
    self->pub = s_socket(ZMQ_PUB, eev, 0, (int)odp_config_int(name, "PUB_HWM", 10000),
                         (int)odp_config_int(name, "PUB_SNDBUF", 0));
    if (!self->router || !self->pub)
        goto fail;

    self->db = odp_db_new(name);
    int64_t wait_ms = odp_config_int(name, "DB_WAIT_S", 60) * 1000;
    int64_t until = zclock_mono() + wait_ms;
    while (!odp_db_up(self->db)) {
        if (zclock_mono() > until || zsys_interrupted) {
            odp_error("event=service.no_database waited_s=%lld", (long long)(wait_ms / 1000));
            goto fail;
        }
        zclock_sleep(250);
    }
    if (odp_db_migrate(self->db, &odp_outbox_migration, 1) < 0 ||
        odp_db_migrate(self->db, migs, nmigs) < 0)
        goto fail;
    self->outbox = odp_outbox_new(self->db, name, self->pub);
    if (!self->outbox || odp_outbox_load(self->outbox) < 0)
        goto fail;

    odp_service_route(self, &odp_def_health, ODP_ALLOW_ANY, s_health);
    odp_service_route(self, &odp_def_whoami, ODP_ALLOW_ANY, s_whoami);
    odp_service_route(self, &odp_def_events_replay, ODP_ALLOW_ANY & ~ODP_ALLOW_ANONYMOUS, s_replay);
    odp_info("event=service.started requests=%s events=%s seq=%lld secure=%s", ep, eev,
             (long long)odp_outbox_last(self->outbox), odp_auth_secure() ? "curve" : "OFF");
    return self;
fail:
    odp_service_destroy(&self);
    return NULL;
}

void odp_service_destroy(odp_service_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    odp_service_t *self = *self_p;
    for (size_t i = 0; i < self->qcount; i++)
        zmsg_destroy(&self->queue[(self->qhead + i) % S_QUEUE_MAX].msg);
    odp_outbox_destroy(&self->outbox);
    odp_db_destroy(&self->db);
    zsock_destroy(&self->router);
    zsock_destroy(&self->pub);
    odp_auth_stop();
    free(self);
    *self_p = NULL;
}

odp_db_t *odp_service_db(odp_service_t *self)
{
    return self->db;
}

int odp_service_route(odp_service_t *self, const odp_msgdef_t *def, int allow, odp_handler_fn fn)
{
    if (self->nroutes >= S_MAX_ROUTES)
        return -1;
    self->routes[self->nroutes++] = (s_route_t){def, allow, fn};
    return 0;
}

int odp_req_fail(odp_req_t *req, odp_err_t code, const char *field, const char *fmt, ...)
{
    /*  Format wide, then let odp_error_set cut at a character boundary: a message cut
        inside a UTF-8 sequence could not be encoded into the error reply. */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return odp_error_set(req->err, code, field, "%s", msg);
}

int odp_req_db_fail(odp_req_t *req, PGresult *r, const char *what)
{
    if (!r)
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                            "the database is unreachable; nothing was changed, retry later");
    const char *state = odp_db_state(r);
    int rc;
    if (strcmp(state, "23505") == 0) {
        rc = odp_req_fail(req, ODP_E_ALREADY_EXISTS, NULL, "%s exists already", what);
    } else {
        char q[300];
        const char *m = PQresultErrorMessage(r);
        odp_error("event=db.error what=%s state=%s error=%s", what, state,
                  odp_log_quote(m, strlen(m), q, sizeof q));
        rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "storing %s failed; it is logged", what);
    }
    PQclear(r);
    return rc;
}

int odp_req_ok_empty(odp_req_t *req)
{
    msgpack_pack_map(req->pk, 0);
    return 0;
}

static void s_send_reply(zmsg_t *envelope, int status, const char *data, size_t size,
                         zsock_t *router)
{
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    zmsg_addstr(envelope, st);
    zmsg_addmem(envelope, data, size);
    zmsg_send(&envelope, router);
}

static void s_send_error(odp_service_t *self, zmsg_t *envelope, const odp_error_t *e)
{
    odp_rep_error_t rep = {0};
    rep.code = odp_v_str(odp_err_name(e->code));
    rep.message = odp_v_str(e->message[0] ? e->message : odp_err_summary(e->code));
    if (e->field[0])
        rep.field = odp_v_str(e->field);
    msgpack_sbuffer buf;
    if (odp_encode_buf(&odp_def_rep_error, &rep, &buf) < 0) {
        msgpack_sbuffer_init(&buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 0);
    }
    s_send_reply(envelope, odp_err_status(e->code), buf.data, buf.size, self->router);
    msgpack_sbuffer_destroy(&buf);
    self->errors++;
    self->by_code[e->code]++;
}

/*  One request, start to finish. Everything allocated here (zone, reply buffer, frames)
    is freed before returning: per-message memory, as PostgreSQL's memory contexts. */
static void s_handle(odp_service_t *self, zmsg_t *msg, int queued)
{
    self->requests++;
    odp_error_t err = {0};
    zmsg_t *envelope = zmsg_new();
    zframe_t *id = zmsg_pop(msg);
    if (!id) {
        zmsg_destroy(&envelope);
        return;
    }
    zmsg_append(envelope, &id);
    /*  A REQ client puts an empty delimiter before its frames; a DEALER does not. */
    zframe_t *first = zmsg_first(msg);
    if (first && zframe_size(first) == 0) {
        zframe_t *delim = zmsg_pop(msg);
        zmsg_append(envelope, &delim);
    }
    size_t total = zmsg_content_size(msg);
    if (zmsg_size(msg) != 3) {
        odp_error_set(&err, ODP_E_BAD_FRAME, NULL,
                      "a request is three frames [\"ODP/1\", COMMAND, BODY]; got %zu",
                      zmsg_size(msg));
        s_send_error(self, envelope, &err);
        return;
    }
    zframe_t *ver = zmsg_first(msg);
    zframe_t *cmd = zmsg_next(msg);
    zframe_t *body = zmsg_next(msg);
    odp_actor_t actor;
    odp_auth_actor(ver, &actor);
    char actor_s[128];
    odp_actor_str(&actor, actor_s, sizeof actor_s);

    const s_route_t *route = NULL;
    if (zframe_size(ver) != strlen(ODP_PROTOCOL) ||
        memcmp(zframe_data(ver), ODP_PROTOCOL, zframe_size(ver)) != 0) {
        odp_error_set(&err, ODP_E_BAD_VERSION, NULL, "first frame must be \"ODP/1\"");
    } else if (total > self->max_body + 256) {
        odp_error_set(&err, ODP_E_TOO_LARGE, NULL, "request is %zu bytes; the limit is %zu", total,
                      self->max_body);
    } else {
        for (size_t i = 0; i < self->nroutes; i++) {
            const char *c = self->routes[i].def->name;
            if (zframe_size(cmd) == strlen(c) && memcmp(zframe_data(cmd), c, strlen(c)) == 0)
                route = &self->routes[i];
        }
        if (!route) {
            char q[80];
            odp_error_set(
                &err, ODP_E_UNKNOWN_COMMAND, NULL, "%s does not know the command %s", self->name,
                odp_log_quote((const char *)zframe_data(cmd), zframe_size(cmd), q, sizeof q));
        } else if (!(route->allow & s_kind_bit(actor.kind))) {
            odp_error_set(&err,
                          strcmp(actor.kind, "anonymous") == 0 ? ODP_E_UNAUTHENTICATED
                                                               : ODP_E_FORBIDDEN,
                          NULL, "%s may not call %s", actor_s, route->def->name);
        }
    }
    if (err.code) {
        s_send_error(self, envelope, &err);
        odp_info("event=request cmd=%.*s actor=%s status=%d code=%s",
                 (int)(zframe_size(cmd) > 40 ? 40 : zframe_size(cmd)),
                 (const char *)zframe_data(cmd), actor_s, odp_err_status(err.code),
                 odp_err_name(err.code));
        return;
    }

    int64_t t0 = zclock_usecs();
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    s_any_request_t decoded;
    msgpack_sbuffer rbuf;
    msgpack_sbuffer_init(&rbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &rbuf, msgpack_sbuffer_write);
    int rc = odp_decode(route->def, zframe_data(body), zframe_size(body), &zone, &decoded, &err);
    if (rc == 0) {
        odp_req_t req = {self,     self->db, self->outbox, &actor, actor_s,
                         &decoded, &pk,      &err,         queued};
        rc = route->fn(&req);
        /*  A handler that failed mid-transaction leaves nothing half-done. */
        odp_db_rollback(self->db);
        if (rc < 0 && err.code == ODP_OK)
            odp_error_set(&err, ODP_E_INTERNAL, NULL, "handler failed without a reason");
    }
    if (rc == 0) {
        s_send_reply(envelope, 200, rbuf.data, rbuf.size, self->router);
        envelope = NULL;
    } else {
        s_send_error(self, envelope, &err);
    }
    odp_log(rc == 0 ? ODP_LOG_DEBUG : ODP_LOG_INFO,
            "event=request cmd=%s actor=%s status=%d code=%s field=%s us=%lld", route->def->name,
            actor_s, rc == 0 ? 200 : odp_err_status(err.code),
            rc == 0 ? "OK" : odp_err_name(err.code), err.field[0] ? err.field : "-",
            (long long)(zclock_usecs() - t0));
    msgpack_sbuffer_destroy(&rbuf);
    msgpack_zone_destroy(&zone);
    /*  Events committed by this request go out now, after their commit. */
    if (odp_outbox_pending(self->outbox))
        odp_outbox_flush(self->outbox);
}

/*  The command frame of a request as read from the ROUTER: after the routing id, a REQ
    client's empty delimiter and the version. NULL when there is none. */
static zframe_t *s_command(zmsg_t *msg)
{
    zframe_t *f = zmsg_first(msg);
    f = f ? zmsg_next(msg) : NULL;
    if (f && zframe_size(f) == 0)
        f = zmsg_next(msg);
    return f ? zmsg_next(msg) : NULL;
}

static bool s_same_stream(zmsg_t *a, zmsg_t *b)
{
    if (!zframe_eq(zmsg_first(a), zmsg_first(b)))
        return false;
    zframe_t *ca = s_command(a), *cb = s_command(b);
    return ca && cb && zframe_eq(ca, cb);
}

/*  Read what has arrived, without waiting, into the queue: each request with the count of
    its connection's requests of the same command queued before it, plus one. */
static void s_read_ahead(odp_service_t *self)
{
    while (self->qcount < S_QUEUE_MAX && self->qbytes < S_QUEUE_BYTES &&
           (zsock_events(self->router) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->router);
        if (!msg)
            break;
        int queued = 1;
        for (size_t i = 0; i < self->qcount; i++)
            queued += s_same_stream(self->queue[(self->qhead + i) % S_QUEUE_MAX].msg, msg);
        self->queue[(self->qhead + self->qcount) % S_QUEUE_MAX] = (s_queued_t){msg, queued};
        self->qcount++;
        self->qbytes += zmsg_content_size(msg);
    }
}

int odp_service_run(odp_service_t *self)
{
    zpoller_t *poller = zpoller_new(self->router, NULL);
    int64_t next_hb = zclock_mono();
    while (!zsys_interrupted) {
        int64_t now = zclock_mono();
        if (now >= next_hb) {
            /*  Catch up anything committed but not yet sent (a flush that failed while the
                database was away), then say where we are. */
            odp_outbox_flush(self->outbox);
            odp_outbox_heartbeat(self->outbox);
            next_hb = now + self->heartbeat_ms;
        }
        void *which = zpoller_wait(poller, self->qcount ? 0 : (int)(next_hb - now));
        if (!which && zpoller_terminated(poller))
            break;
        /*  Everything that has arrived is read before the next request is answered. */
        s_read_ahead(self);
        if (self->qcount) {
            s_queued_t next = self->queue[self->qhead];
            self->qhead = (self->qhead + 1) % S_QUEUE_MAX;
            self->qcount--;
            self->qbytes -= zmsg_content_size(next.msg);
            s_handle(self, next.msg, next.queued);
            zmsg_destroy(&next.msg);
        }
    }
    zpoller_destroy(&poller);
    odp_info("event=service.stopped requests=%lld errors=%lld", (long long)self->requests,
             (long long)self->errors);
    return 0;
}

int odp_service_main(const char *name, const odp_migration_t *migs, size_t nmigs,
                     int (*setup)(odp_service_t *svc))
{
    odp_service_t *svc = odp_service_new(name, migs, nmigs);
    if (!svc)
        return 1;
    int rc = setup ? setup(svc) : 0;
    if (rc == 0)
        rc = odp_service_run(svc);
    odp_service_destroy(&svc);
    return rc == 0 ? 0 : 1;
}

static int s_health(odp_req_t *req)
{
    odp_service_t *self = req->svc;
    bool db = odp_db_up(self->db);
    odp_rep_health_t rep = {0};
    rep.service = odp_v_str(self->name);
    rep.status = odp_v_str(db ? "ok" : "degraded");
    rep.db = odp_v_bool(db);
    rep.seq = odp_v_int(odp_outbox_last(self->outbox));
    rep.uptime_s = odp_v_int((zclock_mono() - self->started_ms) / 1000);
    rep.requests = odp_v_int(self->requests);
    rep.errors = odp_v_int(self->errors);
    rep.secure = odp_v_bool(odp_auth_secure());
    return odp_encode(&odp_def_rep_health, &rep, req->pk);
}

static int s_whoami(odp_req_t *req)
{
    odp_rep_whoami_t rep = {0};
    rep.actor = odp_v_str(req->actor_str);
    rep.kind = odp_v_str(req->actor->kind);
    rep.id = odp_v_str(req->actor->id);
    return odp_encode(&odp_def_rep_whoami, &rep, req->pk);
}

static int s_replay(odp_req_t *req)
{
    const odp_events_replay_t *m = req->msg;
    int64_t limit = m->limit.present ? m->limit.i : 1000;
    if (odp_outbox_replay(req->outbox, m->from.i, limit, req->pk) < 0)
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                            "cannot read the event history now; retry later");
    return 0;
}
