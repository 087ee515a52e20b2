#include "service.h"

#include "config.h"
#include "log.h"

#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ROUTES  64
#define S_MAX_TIMERS  16
#define S_MAX_READERS 16
/*  A request is at most [identity, delimiter, "ODP/1", COMMAND, BODY]. */
#define S_MAX_FRAMES 5

typedef struct {
    int interval_ms;
    int64_t next_ms;
    odp_timer_fn fn;
    void *arg;
} s_timer_t;

typedef struct {
    zsock_t *sock;
    odp_reader_fn fn;
    void *arg;
} s_reader_t;

/*  Requests are read ahead of handling into a bounded queue, so that the service sees how
    many requests a connection has sent that it has not answered yet (odp_req_t.queued):
    a client's promise to keep at most `credit` requests in flight can then be held to.
    Past these bounds requests wait in libzmq, as they would without the queue. */
#define S_QUEUE_MAX   256
#define S_QUEUE_BYTES (24 << 20)

typedef struct {
    zmsg_t *msg;
    zsock_t *router; /* the endpoint it came in on, where the reply goes */
    size_t extra;    /* frames past S_MAX_FRAMES, dropped as they were read */
    size_t bytes;    /* as read, dropped frames included */
    int queued;
} s_queued_t;

typedef struct {
    const odp_msgdef_t *def;
    int allow;
    odp_handler_fn fn;
    bool pooled;        /* run on the worker pool (odp_service_route_pooled) */
    odp_start_fn start; /* its fast path on the loop (odp_service_route_async) */
    odp_finish_fn finish;
} s_route_t;

/*  Big enough for any declared request's decoded struct. */
typedef union {
#define S_MEMBER(ident, cmd) odp_##ident##_t ident;
    ODP_REQUESTS(S_MEMBER)
#undef S_MEMBER
} s_any_request_t;

/*  A routed request on its way: checked by the loop, run where its route says (the loop,
    or a worker of the pool), answered by the loop. */
typedef struct s_job_t {
    zsock_t *router;
    zmsg_t *envelope; /* routing id and delimiter: where the reply goes */
    zmsg_t *msg;      /* ["ODP/1", COMMAND, BODY] */
    const s_route_t *route;
    odp_actor_t actor;
    char actor_s[128];
    int queued;
    bool probe;
    int64_t t0;
    int worker;    /* its worker, while on the pool */
    char conn[64]; /* the connection's routing id, hex: its pooled requests keep order */
    int rc;
    odp_error_t err;
    msgpack_sbuffer rbuf;
    struct s_job_t *next_in_order; /* the connection's next pooled job */
    bool ready;                    /* answered: its reply goes once those before it went */
    void *resume;                  /* for the handler on the pool (odp_req_t.resume) */
    /*  On the fast path: the request decoded once for start and finish, start's state,
        and the statement's result. */
    bool decoded_ok;
    msgpack_zone zone;
    s_any_request_t decoded;
    msgpack_packer pk;
    void *state;
    PGresult *result;
} s_job_t;

/*  A connection's pooled jobs in request order (pool and fast path alike): a reply goes
    out when those before it have gone. */
typedef struct {
    s_job_t *head, *tail;
} s_order_t;

/*  One of the loop's connections for the fast paths, in pipeline mode: what it waits for,
    in the order the results come (a statement's preparation, a job's statement, a sync
    point ending one turn's statements). */
#define S_PIPE_ITEMS 1024
#define S_PIPE_NAMES 200
#define S_MAX_PIPES  8
typedef enum { S_ITEM_PREPARE, S_ITEM_QUERY, S_ITEM_SYNC } s_item_kind_t;
typedef struct {
    s_item_kind_t kind;
    s_job_t *job; /* S_ITEM_QUERY */
    char *sql;    /* S_ITEM_PREPARE: the text whose name it made */
} s_item_t;
typedef struct {
    odp_db_t *db;
    PGconn *conn;    /* as set up for the pipeline; another one from odp_db_conn is new */
    zhashx_t *names; /* SQL text -> prepared statement name on conn */
    unsigned next_name;
    s_item_t items[S_PIPE_ITEMS]; /* a ring of nitems from head */
    size_t head, nitems;
    int jobs;      /* statements in the pipeline */
    bool unsynced; /* statements sent since the last sync point */
    bool writing;  /* output libpq could not write yet */
} s_pipe_t;
#define S_MAX_WORKERS 16

/*  The pool (opt-in): threads with a database connection each, for read-only commands
    whose handlers are thread-safe. A job goes to the worker already running its
    connection's earlier jobs (replies on a connection keep the order of its requests),
    else to the least busy one. */
typedef struct {
    pthread_t thread;
    zsock_t *pipe;  /* the loop's end: jobs to the worker */
    zsock_t *wpipe; /* the worker's end */
    zsock_t *out;   /* the worker's answered jobs, to the loop's one socket for them */
    odp_db_t *db;
    void *svc;
    int busy;
} s_worker_t;

struct odp_service_t {
    char name[16];
    void *ctx;
    zsock_t *router;
    zsock_t *public_router; /* ODP_<S>_PUBLIC_BIND: any CURVE key, anonymous unless known */
    /*  A router's last ZMQ_EVENTS found no message, and nothing was sent or read on it
        since: its ZMQ_FD will wake the poll for whatever comes next (issue #10). */
    bool router_quiet, public_quiet;
    zsock_t *pub;
    char events_ep[256];
    uint64_t key_generation; /* of the key directory when the PUB socket was bound */
    s_timer_t timers[S_MAX_TIMERS];
    size_t ntimers;
    s_reader_t readers[S_MAX_READERS];
    size_t nreaders;
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
    int64_t latency[ODP_LATENCY_NBUCKETS]; /* routed requests by duration (health) */
    int64_t latency_sum_us;
    s_queued_t queue[S_QUEUE_MAX]; /* a ring of qcount from qhead */
    size_t qhead, qcount, qbytes;
    s_worker_t workers[S_MAX_WORKERS];
    int nworkers;
    zhashx_t *on_pool;  /* connection (hex routing id) -> its jobs on the pool */
    zsock_t *done;      /* answered jobs from every worker: one socket for the loop to poll */
    int pool_jobs;      /* on the pool: the loop polls for answers only while there are */
    zhashx_t *in_order; /* connection (hex routing id) -> s_order_t of its pooled jobs */
    s_pipe_t pipes[S_MAX_PIPES];
    int npipes;
};

static zsock_t *s_events_socket(odp_service_t *self);
static void s_run_job(odp_service_t *self, s_job_t *job, odp_db_t *db, odp_outbox_t *outbox);
static void s_finish_job(odp_service_t *self, s_job_t *job);
static void s_pool_send(odp_service_t *self, s_job_t *job);
static void s_pool_stop(odp_service_t *self);
static int s_order_add(odp_service_t *self, s_job_t *job);
static void s_free_item(void **item);
static void s_job_ready(odp_service_t *self, s_job_t *job);
static void s_async_start(odp_service_t *self, s_job_t *job);
static zframe_t *s_command(zmsg_t *msg);
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
    if (strcmp(kind, "service") == 0)
        return ODP_ALLOW_SERVICE;
    return ODP_ALLOW_ANONYMOUS;
}

static zsock_t *s_socket(int type, const char *domain, const char *endpoint, size_t maxmsg,
                         int sndhwm, int sndbuf, int rcvhwm)
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
    if (rcvhwm)
        zsock_set_rcvhwm(s, rcvhwm);
    if (odp_auth_server_domain(s, domain) < 0 || zsock_bind(s, "%s", endpoint) < 0) {
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
    /*  glibc raises its mmap threshold to the size of the largest block freed, after which
        large frames come from the heap and stay there once freed. A fixed threshold keeps
        every large frame in its own mapping, returned to the system when it is freed. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    if (odp_auth_start(name) < 0)
        goto fail;
    char ep[256], eev[256];
    odp_config_endpoint(name, false, true, ep, sizeof ep);
    odp_config_endpoint(name, true, true, eev, sizeof eev);
    /*  What one peer can make the service hold (PROTOCOL.md, Limits): a frame larger than
        the body limit plus 64 KiB makes libzmq drop the connection before the frame is
        stored; RCVHWM messages at most wait per peer (beyond them libzmq stops reading the
        peer's TCP socket: flow control, nothing lost). 16 is above the default push
        credit, so that read-ahead sees a client that sends more than its credit. */
    size_t frame_cap = self->max_body + 65536;
    int rcvhwm = (int)odp_config_int(name, "RCVHWM", 16);
    self->router = s_socket(ZMQ_ROUTER, "odp", ep, frame_cap, 0, 0, rcvhwm);
    const char *public_ep = odp_config(name, "PUBLIC_BIND", NULL);
    if (public_ep) {
        self->public_router =
            s_socket(ZMQ_ROUTER, "odp.public", public_ep, frame_cap, 0, 0, rcvhwm);
        if (!self->public_router)
            goto fail;
    }
    /*  Slow subscribers have an explicit policy: past PUB_HWM queued events their copies
        are dropped (never blocking the service) and they recover by replay. Only
        operations, services and the authority may subscribe (ZAP domain odp.events). */
    snprintf(self->events_ep, sizeof self->events_ep, "%s", eev);
    odp_auth_key_current(NULL, &self->key_generation);
    self->pub = s_events_socket(self);
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
    if (odp_db_migrate(self->db, odp_outbox_migrations, odp_outbox_nmigrations) < 0 ||
        odp_db_migrate(self->db, migs, nmigs) < 0)
        goto fail;
    self->outbox = odp_outbox_new(self->db, name, self->pub);
    if (!self->outbox || odp_outbox_load(self->outbox) < 0)
        goto fail;

    odp_service_route(self, &odp_def_health, ODP_ALLOW_ANY, s_health);
    odp_service_route(self, &odp_def_whoami, ODP_ALLOW_ANY, s_whoami);
    odp_service_route(self, &odp_def_events_replay, ODP_ALLOW_ANY, s_replay);
    self->in_order = zhashx_new();
    if (!self->in_order)
        goto fail;
    zhashx_set_destructor(self->in_order, s_free_item);
    odp_info("event=service.started requests=%s public=%s events=%s seq=%lld secure=%s", ep,
             public_ep ? public_ep : "-", eev, (long long)odp_outbox_last(self->outbox),
             odp_auth_secure() ? "curve" : "OFF");
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
    if (self->nworkers)
        s_pool_stop(self);
    for (int i = 0; i < self->npipes; i++) {
        odp_db_destroy(&self->pipes[i].db);
        zhashx_destroy(&self->pipes[i].names);
    }
    zhashx_destroy(&self->in_order);
    for (size_t i = 0; i < self->qcount; i++)
        zmsg_destroy(&self->queue[(self->qhead + i) % S_QUEUE_MAX].msg);
    odp_outbox_destroy(&self->outbox);
    odp_db_destroy(&self->db);
    zsock_destroy(&self->router);
    zsock_destroy(&self->public_router);
    zsock_destroy(&self->pub);
    odp_auth_stop();
    free(self);
    *self_p = NULL;
}

odp_db_t *odp_service_db(odp_service_t *self)
{
    return self->db;
}

void odp_service_set_ctx(odp_service_t *self, void *ctx)
{
    self->ctx = ctx;
}

void *odp_service_ctx(odp_service_t *self)
{
    return self->ctx;
}

const char *odp_service_name(odp_service_t *self)
{
    return self->name;
}

odp_outbox_t *odp_service_outbox(odp_service_t *self)
{
    return self->outbox;
}

int odp_service_timer(odp_service_t *self, int interval_ms, odp_timer_fn fn, void *arg)
{
    if (self->ntimers >= S_MAX_TIMERS || interval_ms <= 0)
        return -1;
    self->timers[self->ntimers++] = (s_timer_t){interval_ms, zclock_mono() + interval_ms, fn, arg};
    return 0;
}

int odp_service_reader(odp_service_t *self, zsock_t *sock, odp_reader_fn fn, void *arg)
{
    if (self->nreaders >= S_MAX_READERS)
        return -1;
    self->readers[self->nreaders++] = (s_reader_t){sock, fn, arg};
    return 0;
}

void odp_service_reader_remove(odp_service_t *self, zsock_t *sock)
{
    for (size_t i = 0; i < self->nreaders; i++)
        if (self->readers[i].sock == sock) {
            self->readers[i] = self->readers[--self->nreaders];
            return;
        }
}

int odp_service_route(odp_service_t *self, const odp_msgdef_t *def, int allow, odp_handler_fn fn)
{
    if (self->nroutes >= S_MAX_ROUTES)
        return -1;
    self->routes[self->nroutes++] = (s_route_t){def, allow, fn, false, NULL, NULL};
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
    const char *state = r ? odp_db_state(r) : odp_db_last_state(req->db);
    const char *column = r ? PQresultErrorField(r, PG_DIAG_COLUMN_NAME) : NULL;
    char field[64] = "";
    if (column)
        snprintf(field, sizeof field, "%s", column);
    int rc;
    switch (odp_db_classify(state)) {
    case ODP_DBF_CONFLICT:
        rc = odp_req_fail(req, ODP_E_ALREADY_EXISTS, field[0] ? field : NULL, "%s exists already",
                          what);
        break;
    case ODP_DBF_INVALID:
        rc = odp_req_fail(req, ODP_E_INVALID_VALUE, field[0] ? field : NULL,
                          "%s: a value is not acceptable (SQLSTATE %s)", what, state);
        break;
    case ODP_DBF_RETRY:
    case ODP_DBF_TRANSIENT:
        rc = odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                          "%s: the database is unreachable or busy (SQLSTATE %s); nothing was "
                          "changed, retry later",
                          what, state[0] ? state : "none");
        break;
    default: {
        char q[300];
        const char *m = r ? PQresultErrorMessage(r) : "";
        odp_error("event=db.error what=\"%s\" state=%s error=%s", what, state,
                  odp_log_quote(m, strlen(m), q, sizeof q));
        rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "storing %s failed; it is logged", what);
    }
    }
    PQclear(r);
    return rc;
}

int odp_req_txn(odp_req_t *req, odp_txn_fn fn, void *arg)
{
    for (int attempt = 1;; attempt++) {
        *req->err = (odp_error_t){0};
        if (req->rbuf)
            req->rbuf->size = 0;
        if (odp_db_begin(req->db) < 0)
            return odp_req_db_fail(req, NULL, "the transaction");
        int rc = fn(req, arg);
        if (rc == 0 && odp_db_commit(req->db) == 0)
            return 0;
        /*  The failed statement's class decides: a serialization failure or deadlock
            means another transaction won; ours is safe to run again from the start. */
        char state[6];
        snprintf(state, sizeof state, "%s", odp_db_last_state(req->db));
        bool retry = odp_db_classify(state) == ODP_DBF_RETRY && attempt < ODP_TXN_TRIES;
        if (!retry && rc == 0)
            odp_req_db_fail(req, NULL, "the transaction");
        odp_db_rollback(req->db);
        if (!retry)
            return -1;
        odp_info("event=db.retry state=%s attempt=%d", state, attempt);
    }
}

int odp_req_ok_empty(odp_req_t *req)
{
    msgpack_pack_map(req->pk, 0);
    return 0;
}

static bool *s_quiet(odp_service_t *self, zsock_t *sock)
{
    return sock == self->router                  ? &self->router_quiet
           : sock && sock == self->public_router ? &self->public_quiet
                                                 : NULL;
}

static void s_send_reply(odp_service_t *self, zmsg_t *envelope, int status, const char *data,
                         size_t size, zsock_t *router)
{
    /*  A send may run the commands that say a message came in: the next turn asks first. */
    bool *quiet = s_quiet(self, router);
    if (quiet)
        *quiet = false;
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    zmsg_addstr(envelope, st);
    zmsg_addmem(envelope, data, size);
    zmsg_send(&envelope, router);
}

static void s_send_error(odp_service_t *self, zsock_t *router, zmsg_t *envelope,
                         const odp_error_t *e)
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
    s_send_reply(self, envelope, odp_err_status(e->code), buf.data, buf.size, router);
    msgpack_sbuffer_destroy(&buf);
    self->errors++;
    self->by_code[e->code]++;
}

/*  One request, start to finish. Everything allocated here (zone, reply buffer, frames)
    is freed before returning: per-message memory, as PostgreSQL's memory contexts. */
/*  Read one message frame by frame, keeping at most S_MAX_FRAMES: the rest are freed as
    they are read, so a message of a thousand frames costs no more here than one of five
    (libzmq itself holds a multipart message whole before its first frame is readable;
    the frame size cap bounds each of them). *extra counts the frames dropped. */
static zmsg_t *s_recv_request(zsock_t *router, size_t *extra, size_t *bytes)
{
    zmsg_t *msg = zmsg_new();
    *extra = 0;
    *bytes = 0;
    do {
        zframe_t *f = zframe_recv(router);
        if (!f)
            break;
        *bytes += zframe_size(f);
        if (zmsg_size(msg) < S_MAX_FRAMES)
            zmsg_append(msg, &f);
        else {
            (*extra)++;
            zframe_destroy(&f);
        }
    } while (zsock_rcvmore(router));
    return msg;
}

/*  Takes the message: the job it becomes keeps it until it is answered. */
static void s_handle(odp_service_t *self, zsock_t *router, zmsg_t **msg_p, size_t extra, int queued)
{
    zmsg_t *msg = *msg_p;
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
    if (zmsg_size(msg) + extra != 3) {
        odp_error_set(&err, ODP_E_BAD_FRAME, NULL,
                      "a request is three frames [\"ODP/1\", COMMAND, BODY]; got %zu",
                      zmsg_size(msg) + extra);
        s_send_error(self, router, envelope, &err);
        return;
    }
    zframe_t *ver = zmsg_first(msg);
    zframe_t *cmd = zmsg_next(msg);
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
        if (strcmp(actor.kind, "anonymous") != 0 && !odp_auth_key_listed(actor.key)) {
            /*  CURVE and ZAP saw the key when the connection was made; a key revoked since
                (or its department deactivated) must stop working at once: the loop reads
                the key directory once per turn, after its poll, before the turn's requests. */
            odp_error_set(&err, ODP_E_UNAUTHENTICATED, NULL,
                          "the key this connection was made with is no longer registered "
                          "(revoked, or its department deactivated)");
        } else if (!route) {
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
        s_send_error(self, router, envelope, &err);
        odp_info("event=request cmd=%.*s actor=%s status=%d code=%s",
                 (int)(zframe_size(cmd) > 40 ? 40 : zframe_size(cmd)),
                 (const char *)zframe_data(cmd), actor_s, odp_err_status(err.code),
                 odp_err_name(err.code));
        return;
    }

    /*  Another service's health probe (metrics polls every service) is not a request of
        this service's clients: it is left out of the counts and durations it reports. */
    s_job_t *job = calloc(1, sizeof *job);
    if (!job) {
        odp_error_set(&err, ODP_E_UNAVAILABLE, NULL, "out of memory; retry later");
        s_send_error(self, router, envelope, &err);
        return;
    }
    job->router = router;
    job->envelope = envelope;
    job->route = route;
    job->actor = actor;
    snprintf(job->actor_s, sizeof job->actor_s, "%s", actor_s);
    job->queued = queued;
    job->probe = route->fn == s_health && strcmp(actor.kind, "service") == 0;
    if (job->probe)
        self->requests--;
    job->t0 = zclock_usecs();
    msgpack_sbuffer_init(&job->rbuf);
    job->msg = msg;
    *msg_p = NULL;
    if (route->pooled && self->nworkers > 0) {
        if (s_order_add(self, job) < 0) {
            odp_error_set(&job->err, ODP_E_UNAVAILABLE, NULL, "out of memory; retry later");
            job->rc = -1;
            s_finish_job(self, job);
        } else if (route->start && self->npipes > 0)
            s_async_start(self, job);
        else
            s_pool_send(self, job);
        return;
    }
    s_run_job(self, job, self->db, self->outbox);
    s_finish_job(self, job);
}

/*  Decode and run the handler with this database connection; the reply or the error is
    left in the job. */
static void s_run_job(odp_service_t *self, s_job_t *job, odp_db_t *db, odp_outbox_t *outbox)
{
    zframe_t *body = zmsg_last(job->msg);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    s_any_request_t decoded;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &job->rbuf, msgpack_sbuffer_write);
    int rc = odp_decode(job->route->def, zframe_data(body), zframe_size(body), &zone, &decoded,
                        &job->err);
    if (rc == 0) {
        odp_req_t req = {self,     self->ctx, db,        outbox,     &job->actor, job->actor_s,
                         &decoded, &pk,       &job->err, &job->rbuf, job->queued, job->resume};
        job->resume = NULL;
        rc = job->route->fn(&req);
        /*  A handler that failed mid-transaction leaves nothing half-done. */
        odp_db_rollback(db);
        if (rc < 0 && job->err.code == ODP_OK)
            odp_error_set(&job->err, ODP_E_INTERNAL, NULL, "handler failed without a reason");
    }
    msgpack_zone_destroy(&zone);
    job->rc = rc;
}

/*  Send the job's reply, count it, log it, free it. */
static void s_finish_job(odp_service_t *self, s_job_t *job)
{
    if (job->rc == 0) {
        s_send_reply(self, job->envelope, 200, job->rbuf.data, job->rbuf.size, job->router);
        job->envelope = NULL;
    } else {
        s_send_error(self, job->router, job->envelope, &job->err);
    }
    /*  The run log (R6b): every request, one line, at info. */
    int64_t us = zclock_usecs() - job->t0;
    static const int64_t bounds[] = ODP_LATENCY_BOUNDS_MS;
    size_t b = 0;
    while (b < ODP_LATENCY_NBUCKETS - 1 && us > bounds[b] * 1000)
        b++;
    if (!job->probe) {
        self->latency[b]++;
        self->latency_sum_us += us;
    }
    odp_info(
        "event=request cmd=%s actor=%s status=%d code=%s field=%s ms=%lld.%03lld",
        job->route->def->name, job->actor_s, job->rc == 0 ? 200 : odp_err_status(job->err.code),
        job->rc == 0 ? "OK" : odp_err_name(job->err.code), job->err.field[0] ? job->err.field : "-",
        (long long)(us / 1000), (long long)(us % 1000));
    msgpack_sbuffer_destroy(&job->rbuf);
    zmsg_destroy(&job->msg);
    free(job);
    /*  Events committed by this request go out now, after their commit. */
    if (odp_outbox_pending(self->outbox))
        odp_outbox_flush(self->outbox);
}

/*  ---- the pool ---------------------------------------------------------------------- */

static void *s_worker_main(void *arg)
{
    s_worker_t *w = arg;
    for (;;) {
        s_job_t *job = NULL;
        if (zsock_recv(w->wpipe, "p", &job) < 0 || !job)
            break;
        s_run_job(w->svc, job, w->db, NULL);
        zsock_send(w->out, "p", job);
    }
    return NULL;
}

/*  The routing id as text: the key of a connection's jobs on the pool. */
static void s_conn_key(zmsg_t *envelope, char *buf, size_t size)
{
    zframe_t *id = zmsg_first(envelope);
    size_t n = id ? zframe_size(id) : 0, o = 0;
    const byte *d = id ? zframe_data(id) : NULL;
    for (size_t i = 0; i < n && o + 3 < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%02x", d[i]);
    buf[o] = '\0';
}

static void s_pool_send(odp_service_t *self, s_job_t *job)
{
    s_conn_key(job->envelope, job->conn, sizeof job->conn);
    s_job_t *last = zhashx_lookup(self->on_pool, job->conn);
    int w = 0;
    if (last)
        w = last->worker;
    else
        for (int i = 1; i < self->nworkers; i++)
            if (self->workers[i].busy < self->workers[w].busy)
                w = i;
    job->worker = w;
    self->workers[w].busy++;
    self->pool_jobs++;
    /*  The latest job of the connection stands for it until its worker answers. */
    zhashx_update(self->on_pool, job->conn, job);
    zsock_send(self->workers[w].pipe, "p", job);
}

static void s_pool_done(odp_service_t *self)
{
    s_job_t *job = NULL;
    if (zsock_recv(self->done, "p", &job) < 0 || !job)
        return;
    self->workers[job->worker].busy--;
    self->pool_jobs--;
    if (zhashx_lookup(self->on_pool, job->conn) == job)
        zhashx_delete(self->on_pool, job->conn);
    s_job_ready(self, job);
}

/*  Whether a request goes to the pool. */
static bool s_pooled(odp_service_t *self, zmsg_t *msg)
{
    zframe_t *cmd = self->nworkers > 0 ? s_command(msg) : NULL;
    for (size_t i = 0; cmd && i < self->nroutes; i++) {
        const char *c = self->routes[i].def->name;
        if (zframe_size(cmd) == strlen(c) && memcmp(zframe_data(cmd), c, strlen(c)) == 0)
            return self->routes[i].pooled;
    }
    return false;
}

/*  Whether a request must wait for its connection's pooled jobs (on the pool or the fast
    path): one the loop would answer itself would overtake them. */
static bool s_waits_for_pool(odp_service_t *self, zmsg_t *msg)
{
    if (zhashx_size(self->in_order) == 0)
        return false;
    zframe_t *cmd = s_command(msg);
    for (size_t i = 0; cmd && i < self->nroutes; i++) {
        const char *c = self->routes[i].def->name;
        if (zframe_size(cmd) == strlen(c) && memcmp(zframe_data(cmd), c, strlen(c)) == 0 &&
            self->routes[i].pooled)
            return false;
    }
    char key[64];
    zmsg_t *env = zmsg_new();
    zframe_t *id = zmsg_first(msg);
    zframe_t *copy = id ? zframe_dup(id) : NULL;
    if (copy)
        zmsg_append(env, &copy);
    s_conn_key(env, key, sizeof key);
    zmsg_destroy(&env);
    return zhashx_lookup(self->in_order, key) != NULL;
}

int odp_service_pool(odp_service_t *self, int nworkers)
{
    if (nworkers < 1 || nworkers > S_MAX_WORKERS || self->nworkers)
        return -1;
    char done_ep[64];
    snprintf(done_ep, sizeof done_ep, "inproc://odp-pool-%p-done", (void *)self);
    self->on_pool = zhashx_new();
    self->done = zsock_new_pull(NULL);
    if (!self->on_pool || !self->done || zsock_bind(self->done, "%s", done_ep) < 0) {
        zhashx_destroy(&self->on_pool);
        zsock_destroy(&self->done);
        return -1;
    }
    /*  Values are jobs owned elsewhere: the table only points at them. */
    for (int i = 0; i < nworkers; i++) {
        s_worker_t *w = &self->workers[i];
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://odp-pool-%p-%d", (void *)self, i);
        w->pipe = zsock_new_pair(NULL);
        if (w->pipe && zsock_bind(w->pipe, "%s", ep) < 0)
            zsock_destroy(&w->pipe);
        w->wpipe = w->pipe ? zsock_new_pair(NULL) : NULL;
        if (w->wpipe && zsock_connect(w->wpipe, "%s", ep) < 0)
            zsock_destroy(&w->wpipe);
        w->out = zsock_new_push(NULL);
        if (w->out && zsock_connect(w->out, "%s", done_ep) < 0)
            zsock_destroy(&w->out);
        w->db = odp_db_new(self->name);
        w->svc = self;
        if (!w->pipe || !w->wpipe || !w->out || !w->db ||
            pthread_create(&w->thread, NULL, s_worker_main, w) != 0) {
            zsock_destroy(&w->pipe);
            zsock_destroy(&w->wpipe);
            zsock_destroy(&w->out);
            odp_db_destroy(&w->db);
            return -1;
        }
        self->nworkers = i + 1;
    }
    odp_info("event=service.pool workers=%d", nworkers);
    return 0;
}

int odp_service_route_pooled(odp_service_t *self, const odp_msgdef_t *def, int allow,
                             odp_handler_fn fn)
{
    if (odp_service_route(self, def, allow, fn) < 0)
        return -1;
    self->routes[self->nroutes - 1].pooled = true;
    return 0;
}

static void s_pool_stop(odp_service_t *self)
{
    /*  Each worker finishes the jobs it holds; their replies are answered, then it ends. */
    int busy = 0;
    for (int i = 0; i < self->nworkers; i++) {
        zsock_send(self->workers[i].pipe, "p", NULL);
        busy += self->workers[i].busy;
    }
    for (; busy > 0; busy--)
        s_pool_done(self);
    for (int i = 0; i < self->nworkers; i++) {
        s_worker_t *w = &self->workers[i];
        pthread_join(w->thread, NULL);
        zsock_destroy(&w->pipe);
        zsock_destroy(&w->wpipe);
        zsock_destroy(&w->out);
        odp_db_destroy(&w->db);
    }
    self->nworkers = 0;
    zsock_destroy(&self->done);
    zhashx_destroy(&self->on_pool);
}

/*  ---- reply order -------------------------------------------------------------------- */

static void s_free_item(void **item)
{
    free(*item);
    *item = NULL;
}

static int s_order_add(odp_service_t *self, s_job_t *job)
{
    s_conn_key(job->envelope, job->conn, sizeof job->conn);
    s_order_t *o = zhashx_lookup(self->in_order, job->conn);
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o)
            return -1;
        zhashx_insert(self->in_order, job->conn, o);
    }
    if (o->tail)
        o->tail->next_in_order = job;
    else
        o->head = job;
    o->tail = job;
    return 0;
}

/*  The job is answered: its reply goes, and those after it that were answered first. */
static void s_job_ready(odp_service_t *self, s_job_t *job)
{
    job->ready = true;
    char key[64];
    snprintf(key, sizeof key, "%s", job->conn);
    s_order_t *o = zhashx_lookup(self->in_order, key);
    if (!o) {
        s_finish_job(self, job);
        return;
    }
    while (o->head && o->head->ready) {
        s_job_t *next = o->head->next_in_order;
        s_finish_job(self, o->head);
        o->head = next;
    }
    if (!o->head)
        zhashx_delete(self->in_order, key);
}

/*  ---- the fast path: statements the loop sends itself (issue #10) ------------------- */

static odp_req_t s_async_req(odp_service_t *self, s_job_t *job)
{
    return (odp_req_t){self,          self->ctx, self->db,  NULL,       &job->actor, job->actor_s,
                       &job->decoded, &job->pk,  &job->err, &job->rbuf, job->queued, NULL};
}

/*  What start or finish decided: the answer, or the pool. */
static void s_async_after(odp_service_t *self, s_job_t *job, odp_req_t *req, int rc)
{
    odp_db_rollback(self->db);
    if (job->decoded_ok) {
        msgpack_zone_destroy(&job->zone);
        job->decoded_ok = false;
    }
    if (rc == ODP_ASYNC_POOL) {
        job->resume = req->resume;
        job->rbuf.size = 0;
        job->err = (odp_error_t){0};
        s_pool_send(self, job);
        return;
    }
    if (rc < 0 && job->err.code == ODP_OK)
        odp_error_set(&job->err, ODP_E_INTERNAL, NULL, "handler failed without a reason");
    job->rc = rc < 0 ? -1 : 0;
    s_job_ready(self, job);
}

static void s_async_finish(odp_service_t *self, s_job_t *job)
{
    odp_req_t req = s_async_req(self, job);
    PGresult *r = job->result;
    job->result = NULL;
    int rc = job->route->finish(&req, r, job->state);
    job->state = NULL;
    s_async_after(self, job, &req, rc);
}

static void s_pipe_pop(s_pipe_t *p)
{
    p->head = (p->head + 1) % S_PIPE_ITEMS;
    p->nitems--;
}

static int s_pipe_push(s_pipe_t *p, s_item_kind_t kind, s_job_t *job, char *sql)
{
    if (p->nitems >= S_PIPE_ITEMS)
        return -1;
    p->items[(p->head + p->nitems++) % S_PIPE_ITEMS] = (s_item_t){kind, job, sql};
    return 0;
}

/*  The connection is gone or out of step: what waited on it is answered by the pool,
    which reports a database that is really away as every handler does. */
static void s_pipe_fail(odp_service_t *self, s_pipe_t *p)
{
    s_job_t *jobs[S_PIPE_ITEMS];
    size_t njobs = 0;
    while (p->nitems) {
        s_item_t *it = &p->items[p->head];
        if (it->kind == S_ITEM_QUERY)
            jobs[njobs++] = it->job;
        free(it->sql);
        s_pipe_pop(p);
    }
    p->jobs = 0;
    p->unsynced = p->writing = false;
    zhashx_purge(p->names);
    odp_db_drop(p->db);
    p->conn = NULL;
    for (size_t i = 0; i < njobs; i++) {
        PQclear(jobs[i]->result);
        jobs[i]->result = NULL;
        s_async_finish(self, jobs[i]);
    }
}

/*  The pipe's connection, set up for pipelining when it is a new one; NULL while down. */
static PGconn *s_pipe_conn(s_pipe_t *p)
{
    PGconn *c = odp_db_conn(p->db);
    if (!c) {
        p->conn = NULL;
        return NULL;
    }
    if (c != p->conn || PQpipelineStatus(c) == PQ_PIPELINE_OFF) {
        if (PQsetnonblocking(c, 1) != 0 || PQenterPipelineMode(c) != 1) {
            odp_db_drop(p->db);
            p->conn = NULL;
            return NULL;
        }
        zhashx_purge(p->names);
        p->conn = c;
    }
    return c;
}

/*  Prepared statements are kept per connection as q_exec keeps them; past S_PIPE_NAMES,
    or when one failed as gone or changed shape, all are deallocated. */
static bool s_pipe_deallocate(s_pipe_t *p, PGconn *c)
{
    zhashx_purge(p->names);
    if (PQsendQueryParams(c, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0) != 1)
        return false;
    s_pipe_push(p, S_ITEM_PREPARE, NULL, NULL);
    return true;
}

/*  Queue the job's statement on the least busy pipe; the sync point that sends the turn's
    statements comes at the end of the turn (s_pipes_sync). -1: none could take it. */
static int s_pipe_send(odp_service_t *self, s_job_t *job, const odp_stmt_t *st)
{
    s_pipe_t *p = NULL;
    PGconn *c = NULL;
    for (int i = 0; i < self->npipes; i++) {
        s_pipe_t *q = &self->pipes[i];
        /*  Room for a deallocation, a preparation, the statement and the sync point. */
        if (q->nitems + 4 > S_PIPE_ITEMS || (p && q->jobs >= p->jobs))
            continue;
        PGconn *qc = s_pipe_conn(q);
        if (qc) {
            p = q;
            c = qc;
        }
    }
    if (!p)
        return -1;
    const char *name = zhashx_lookup(p->names, st->sql);
    bool ok = true;
    if (!name) {
        char buf[24];
        snprintf(buf, sizeof buf, "a%u", ++p->next_name);
        if (zhashx_size(p->names) >= S_PIPE_NAMES)
            ok = s_pipe_deallocate(p, c);
        char *copy = ok ? strdup(buf) : NULL;
        ok = copy && PQsendPrepare(c, buf, st->sql, st->n, NULL) == 1;
        if (ok) {
            zhashx_insert(p->names, st->sql, copy);
            s_pipe_push(p, S_ITEM_PREPARE, NULL, strdup(st->sql));
            name = copy;
        } else
            free(copy);
    }
    /*  Text given with its length is sent as binary text, as odp_db_exec does. */
    int small[32] = {0}, *fmts = NULL;
    if (ok && st->lens && st->n > 0) {
        fmts = st->n <= 32 ? small : calloc((size_t)st->n, sizeof *fmts);
        ok = fmts != NULL;
        for (int i = 0; ok && i < st->n; i++)
            fmts[i] = st->lens[i] >= 0;
    }
    ok = ok && PQsendQueryPrepared(c, name, st->n, st->vals, st->lens, fmts, 0) == 1;
    if (fmts != small)
        free(fmts);
    if (!ok) {
        s_pipe_fail(self, p);
        return -1;
    }
    s_pipe_push(p, S_ITEM_QUERY, job, NULL);
    p->jobs++;
    p->unsynced = true;
    return 0;
}

/*  One sync point per pipe per turn: the statements the turn queued go in one write, and
    the backend runs them one after another without waiting for a wake-up each. A failing
    statement aborts the rest of its turn's on that pipe; they go to the pool. */
static void s_pipes_sync(odp_service_t *self)
{
    for (int i = 0; i < self->npipes; i++) {
        s_pipe_t *p = &self->pipes[i];
        if (!p->unsynced)
            continue;
        p->unsynced = false;
        if (PQpipelineSync(p->conn) != 1 || s_pipe_push(p, S_ITEM_SYNC, NULL, NULL) < 0) {
            s_pipe_fail(self, p);
            continue;
        }
        int f = PQflush(p->conn);
        if (f < 0)
            s_pipe_fail(self, p);
        else
            p->writing = f == 1;
    }
}

/*  Read what the pipe's connection has: each statement's result goes to its job's finish. */
static void s_pipe_read(odp_service_t *self, s_pipe_t *p)
{
    PGconn *c = p->conn;
    if (!c)
        return;
    if (PQconsumeInput(c) != 1) {
        s_pipe_fail(self, p);
        return;
    }
    if (p->writing) {
        int f = PQflush(c);
        if (f < 0) {
            s_pipe_fail(self, p);
            return;
        }
        p->writing = f == 1;
    }
    while (p->nitems && !PQisBusy(c)) {
        s_item_t *it = &p->items[p->head];
        PGresult *r = PQgetResult(c);
        if (it->kind == S_ITEM_SYNC) {
            bool sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            PQclear(r);
            if (!sync) {
                /*  Out of step with the connection: nothing it says can be matched. */
                s_pipe_fail(self, p);
                return;
            }
            s_pipe_pop(p);
            continue;
        }
        if (r) {
            if (it->kind == S_ITEM_QUERY && !it->job->result)
                it->job->result = r;
            else {
                if (it->sql && PQresultStatus(r) != PGRES_COMMAND_OK)
                    zhashx_delete(p->names, it->sql);
                PQclear(r);
            }
            continue;
        }
        /*  NULL: the item's results are complete. */
        s_item_t done = *it;
        s_pipe_pop(p);
        free(done.sql);
        if (done.kind != S_ITEM_QUERY)
            continue;
        p->jobs--;
        const char *state = done.job->result ? odp_db_state(done.job->result) : "";
        if ((strcmp(state, "26000") == 0 || strcmp(state, "0A000") == 0) &&
            !s_pipe_deallocate(p, c)) {
            s_async_finish(self, done.job);
            s_pipe_fail(self, p);
            return;
        }
        s_async_finish(self, done.job);
    }
}

static void s_async_start(odp_service_t *self, s_job_t *job)
{
    zframe_t *body = zmsg_last(job->msg);
    msgpack_zone_init(&job->zone, 2048);
    job->decoded_ok = true;
    msgpack_packer_init(&job->pk, &job->rbuf, msgpack_sbuffer_write);
    odp_req_t req = s_async_req(self, job);
    if (odp_decode(job->route->def, zframe_data(body), zframe_size(body), &job->zone, &job->decoded,
                   &job->err) < 0) {
        s_async_after(self, job, &req, -1);
        return;
    }
    odp_stmt_t st = {0};
    int rc = job->route->start(&req, &st, &job->state);
    if (rc == ODP_ASYNC_SEND) {
        if (s_pipe_send(self, job, &st) == 0)
            return;
        rc = job->route->finish(&req, NULL, job->state);
        job->state = NULL;
    }
    s_async_after(self, job, &req, rc);
}

/*  At the stop: what is in the pipelines is answered before the pool stops. */
static void s_pipes_drain(odp_service_t *self)
{
    for (int i = 0; i < self->npipes; i++) {
        s_pipe_t *p = &self->pipes[i];
        for (int tries = 0; p->nitems && p->conn && tries < 50; tries++) {
            zmq_pollitem_t it = {NULL, PQsocket(p->conn),
                                 (short)(ZMQ_POLLIN | (p->writing ? ZMQ_POLLOUT : 0)), 0};
            zmq_poll(&it, 1, 100);
            s_pipe_read(self, p);
        }
        if (p->nitems)
            s_pipe_fail(self, p);
    }
}

int odp_service_route_async(odp_service_t *self, const odp_msgdef_t *def, int allow,
                            odp_handler_fn fn, odp_start_fn start, odp_finish_fn finish)
{
    if (odp_service_route_pooled(self, def, allow, fn) < 0)
        return -1;
    self->routes[self->nroutes - 1].start = start;
    self->routes[self->nroutes - 1].finish = finish;
    return 0;
}

int odp_service_pipelines(odp_service_t *self, int nconns)
{
    if (nconns < 0 || nconns > S_MAX_PIPES || self->npipes)
        return -1;
    for (int i = 0; i < nconns; i++) {
        s_pipe_t *p = &self->pipes[i];
        p->db = odp_db_new(self->name);
        p->names = zhashx_new();
        if (!p->db || !p->names) {
            odp_db_destroy(&p->db);
            zhashx_destroy(&p->names);
            return -1;
        }
        zhashx_set_destructor(p->names, s_free_item);
        self->npipes = i + 1;
    }
    odp_info("event=service.pipelines connections=%d", nconns);
    return 0;
}

static zsock_t *s_events_socket(odp_service_t *self)
{
    return s_socket(ZMQ_PUB, "odp.events", self->events_ep, 0,
                    (int)odp_config_int(self->name, "PUB_HWM", 10000),
                    (int)odp_config_int(self->name, "PUB_SNDBUF", 0), 0);
}

/*  A subscription outlives its key: PUB cannot drop one peer, so when a key has been
    removed since the socket was made, the events socket is closed - which closes every
    subscriber's connection - and a new one is bound. libzmq reconnects the other
    subscribers, whose keys pass ZAP again, and their heartbeat-driven gap check replays
    anything sent meanwhile. The old socket's port is released by libzmq's I/O thread a
    moment later: until the new bind succeeds (retried at each heartbeat) events wait in
    the outbox. */
static void s_check_subscribers(odp_service_t *self)
{
    uint64_t gen;
    odp_auth_key_current(NULL, &gen);
    if (gen != self->key_generation && self->pub) {
        self->key_generation = gen;
        odp_outbox_set_pub(self->outbox, NULL);
        zsock_destroy(&self->pub);
        odp_info("event=service.events_closed endpoint=%s reason=key_removed", self->events_ep);
    }
    if (!self->pub) {
        self->pub = s_events_socket(self);
        if (self->pub) {
            odp_outbox_set_pub(self->outbox, self->pub);
            odp_info("event=service.events_rebound endpoint=%s", self->events_ep);
        }
    }
}

/*  Run the timers that are due; returns ms until the next one (or until max_ms). */
static int s_run_timers(odp_service_t *self, int max_ms)
{
    int64_t now = zclock_mono();
    int wait = max_ms;
    for (size_t i = 0; i < self->ntimers; i++) {
        s_timer_t *t = &self->timers[i];
        if (now >= t->next_ms) {
            t->fn(self, t->arg);
            /*  A handler that failed mid-transaction leaves nothing half-done. */
            odp_db_rollback(self->db);
            now = zclock_mono();
            t->next_ms = now + t->interval_ms;
        }
        if (t->next_ms - now < wait)
            wait = (int)(t->next_ms - now);
    }
    if (odp_outbox_pending(self->outbox))
        odp_outbox_flush(self->outbox);
    return wait < 0 ? 0 : wait;
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

/*  Read what has arrived (the poll found it readable), without waiting, into the queue: each
   request with the count of its connection's requests of the same command queued before it, plus
   one. */
static void s_read_ahead(odp_service_t *self, zsock_t *router)
{
    /*  The poll said one is there: the first is read without asking again. */
    bool more = true;
    while (more && self->qcount < S_QUEUE_MAX && self->qbytes < S_QUEUE_BYTES) {
        size_t extra, bytes;
        zmsg_t *msg = s_recv_request(router, &extra, &bytes);
        int queued = 1;
        for (size_t i = 0; i < self->qcount; i++) {
            s_queued_t *q = &self->queue[(self->qhead + i) % S_QUEUE_MAX];
            queued += q->router == router && s_same_stream(q->msg, msg);
        }
        self->queue[(self->qhead + self->qcount) % S_QUEUE_MAX] =
            (s_queued_t){msg, router, extra, bytes, queued};
        self->qcount++;
        self->qbytes += zmsg_content_size(msg);
        more = (zsock_events(router) & ZMQ_POLLIN) != 0;
    }
    bool *quiet = s_quiet(self, router);
    if (quiet)
        *quiet = !more;
}

/*  ZMQ_EVENTS: runs the socket's pending commands (one check of its mailbox) and says
    whether a message is there to read; -1 once the context is gone. */
static int s_readable(void *sock)
{
    int ev = 0;
    size_t len = sizeof ev;
    if (zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &len) < 0)
        return -1;
    return (ev & ZMQ_POLLIN) != 0;
}

int odp_service_run(odp_service_t *self)
{
    int64_t next_hb = zclock_mono();
    while (!zsys_interrupted) {
        int64_t now = zclock_mono();
        if (now >= next_hb) {
            /*  Catch up anything committed but not yet sent (a flush that failed while the
                database was away), then say where we are. */
            s_check_subscribers(self);
            odp_outbox_flush(self->outbox);
            odp_outbox_heartbeat(self->outbox);
            next_hb = now + self->heartbeat_ms;
        }
        int wait = s_run_timers(self, (int)(next_hb - zclock_mono()));
        bool ready = self->qcount && !s_waits_for_pool(self, self->queue[self->qhead].msg);
        /*  The sockets, then the readers', then the fast path's database connections, in one
            poll(2) of their descriptors. zmq_poll would check each ZeroMQ socket's command
            mailbox (a poll and a getpid system call here) before and after, and poll twice
            when it has to wait (issue #10). A socket's ZMQ_FD is readable only when commands
            arrive, and a send may already have taken those saying a message is there: so
            each socket's mailbox is checked before the poll (ZMQ_EVENTS) - unless it is a
            router left quiet (its last check found nothing, no send or read since) - and
            again only when its descriptor woke the poll. */
        struct pollfd fds[3 + S_MAX_READERS + S_MAX_PIPES];
        void *zs[3 + S_MAX_READERS];
        bool zin[3 + S_MAX_READERS];
        s_pipe_t *polled[S_MAX_PIPES];
        /*  The pool's answers are polled for only while it has jobs, and a socket is read
            only when its ZMQ_EVENTS said so (issue #10). */
        int n = 0, npolled = 0, i_public = -1, i_done = -1;
        zs[n++] = zsock_resolve(self->router);
        if (self->public_router) {
            i_public = n;
            zs[n++] = zsock_resolve(self->public_router);
        }
        if (self->done && self->pool_jobs > 0) {
            i_done = n;
            zs[n++] = zsock_resolve(self->done);
        }
        int first_reader = n;
        for (size_t i = 0; i < self->nreaders; i++)
            zs[n++] = zsock_resolve(self->readers[i].sock);
        int first_pipe = n;
        bool gone = false;
        for (int k = 0; k < first_pipe; k++) {
            bool *quiet = k == 0 ? &self->router_quiet : k == i_public ? &self->public_quiet : NULL;
            int in = quiet && *quiet ? 0 : s_readable(zs[k]);
            if (quiet)
                *quiet = in == 0;
            gone = gone || in < 0;
            zin[k] = in > 0;
            ready = ready || in > 0;
            size_t len = sizeof(int);
            int fd = -1;
            zmq_getsockopt(zs[k], ZMQ_FD, &fd, &len);
            fds[k] = (struct pollfd){fd, POLLIN, 0};
        }
        if (gone)
            break;
        for (int i = 0; i < self->npipes; i++) {
            s_pipe_t *p = &self->pipes[i];
            if (p->conn && (p->nitems || p->writing)) {
                polled[npolled++] = p;
                fds[n++] = (struct pollfd){PQsocket(p->conn),
                                           (short)(POLLIN | (p->writing ? POLLOUT : 0)), 0};
            }
        }
        poll(fds, (nfds_t)n, ready || wait < 0 ? 0 : wait);
        short revents[3 + S_MAX_READERS + S_MAX_PIPES];
        for (int k = 0; k < n; k++) {
            if (k >= first_pipe)
                revents[k] = fds[k].revents;
            else if (zin[k] || (fds[k].revents && s_readable(zs[k]) > 0))
                revents[k] = POLLIN;
            else
                revents[k] = 0;
        }
        /*  Answers of the pool and the fast path go out first: their requests came before
            those queued. */
        if (i_done >= 0 && revents[i_done]) {
            s_pool_done(self);
            while (self->pool_jobs > 0 && (zsock_events(self->done) & ZMQ_POLLIN))
                s_pool_done(self);
        }
        for (int i = 0; i < npolled; i++)
            if (revents[first_pipe + i])
                s_pipe_read(self, polled[i]);
        /*  Everything that has arrived is read before the next request is answered. */
        if (revents[0])
            s_read_ahead(self, self->router);
        if (i_public >= 0 && revents[i_public])
            s_read_ahead(self, self->public_router);
        /*  A request for the pool only passes through the loop: those queued go on one
            after another without a poll between them (issue #10); one run here ends the
            turn, so that events and timers are served between such requests. */
        if (self->qcount && !s_waits_for_pool(self, self->queue[self->qhead].msg))
            odp_auth_key_current(NULL, NULL);
        while (self->qcount && !s_waits_for_pool(self, self->queue[self->qhead].msg)) {
            s_queued_t next = self->queue[self->qhead];
            bool pooled = s_pooled(self, next.msg);
            self->qhead = (self->qhead + 1) % S_QUEUE_MAX;
            self->qcount--;
            self->qbytes -= zmsg_content_size(next.msg);
            s_handle(self, next.router, &next.msg, next.extra, next.queued);
            zmsg_destroy(&next.msg);
            /*  Give a spike back: freed frames return to the system (see mallopt above),
                and the heap's free top is trimmed. */
            if (next.bytes > self->max_body / 2)
                malloc_trim(0);
            if (!pooled)
                break;
        }
        s_pipes_sync(self);
        /*  Another service's events, say: served between requests, not after all of them. */
        for (int k = first_reader; k < first_pipe; k++) {
            if (!(revents[k] & POLLIN))
                continue;
            for (size_t i = 0; i < self->nreaders; i++)
                if (zsock_resolve(self->readers[i].sock) == zs[k]) {
                    self->readers[i].fn(self, self->readers[i].sock, self->readers[i].arg);
                    odp_db_rollback(self->db);
                    if (odp_outbox_pending(self->outbox))
                        odp_outbox_flush(self->outbox);
                    break;
                }
        }
    }
    /*  The fast path's and the pool's jobs in flight are answered, and no handler runs
        after the loop: the service's state may go once this returns. */
    s_pipes_drain(self);
    if (self->nworkers)
        s_pool_stop(self);
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
    msgpack_sbuffer lb;
    msgpack_sbuffer_init(&lb);
    msgpack_packer lp;
    msgpack_packer_init(&lp, &lb, msgpack_sbuffer_write);
    msgpack_pack_array(&lp, ODP_LATENCY_NBUCKETS);
    for (size_t i = 0; i < ODP_LATENCY_NBUCKETS; i++)
        msgpack_pack_int64(&lp, self->latency[i]);
    rep.latency_buckets = odp_v_raw(lb.data, lb.size);
    rep.latency_sum_us = odp_v_int(self->latency_sum_us);
    int rc = odp_encode(&odp_def_rep_health, &rep, req->pk);
    msgpack_sbuffer_destroy(&lb);
    return rc;
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
    const char *kind = req->actor->kind;
    odp_visibility_t vis = ODP_SEE_PUBLIC;
    if (strcmp(kind, "operations") == 0 || strcmp(kind, "service") == 0 ||
        strcmp(kind, "authority") == 0)
        vis = ODP_SEE_ALL;
    else if (strcmp(kind, "provider") == 0)
        vis = ODP_SEE_DEPARTMENT;
    if (odp_outbox_replay(req->outbox, m->from.i, limit, vis, req->actor->id, req->pk) < 0)
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                            "cannot read the event history now; retry later");
    return 0;
}
