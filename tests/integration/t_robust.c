/*  Bad input gets a clear error with a stable code; the service stays up and its counts
    add up. */
#include "harness.h"

#include "common/auth.h"

#include <string.h>

typedef struct {
    const char *what;
    const char *command;
    const char *body;
    size_t len;
    int status;
    const char *code;
    const char *field;
} s_bad_t;

#define B(s) s, sizeof(s) - 1

/*  Hand-written msgpack, so that the service sees exactly these bytes. */
static const s_bad_t s_bad[] = {
    {"unknown command", "department.explode", B("\x80"), 400, "UNKNOWN_COMMAND", NULL},
    {"empty command", "", B("\x80"), 400, "UNKNOWN_COMMAND", NULL},
    {"empty body", "health", "", 0, 400, "MALFORMED", NULL},
    {"reserved byte 0xc1", "health", B("\xc1"), 400, "MALFORMED", NULL},
    {"truncated map", "department.get", B("\x81\xa4\x63\x6f\x64\x65"), 400, "MALFORMED", NULL},
    {"trailing bytes", "health", B("\x80\x80"), 400, "TRAILING_BYTES", NULL},
    {"map32 claiming 4 billion entries (msgpack-c #1013)", "health", B("\xdf\xff\xff\xff\xff"), 400,
     "BAD_COUNT", NULL},
    {"array32 claiming 4 billion items", "health", B("\xdd\xff\xff\xff\xff"), 400, "BAD_COUNT",
     NULL},
    {"deep nesting", "health",
     B("\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x90"), 400,
     "TOO_DEEP", NULL},
    {"body is an array", "health", B("\x90"), 400, "NOT_A_MAP", NULL},
    {"integer key", "health", B("\x81\x01\x02"), 400, "BAD_KEY", NULL},
    {"unknown field", "health", B("\x81\xa3\x66\x6f\x6f\x01"), 400, "UNKNOWN_FIELD", "foo"},
    {"code is a number", "department.get", B("\x81\xa4\x63\x6f\x64\x65\xce\x1a\x38\x5b\x61"), 400,
     "WRONG_TYPE", "code"},
    {"missing required field", "department.get", B("\x80"), 400, "MISSING_FIELD", "code"},
    {"invalid UTF-8", "department.get",
     B("\x81\xa4\x63\x6f\x64\x65\xa9\x34\x34\x30\x30\x30\x30\x30\x30\xff"), 400, "BAD_UTF8",
     "code"},
    {"replay from 0", "events.replay", B("\x81\xa4\x66\x72\x6f\x6d\x00"), 400, "OUT_OF_RANGE",
     "from"},
    {"replay limit too large", "events.replay",
     B("\x82\xa4\x66\x72\x6f\x6d\x01\xa5\x6c\x69\x6d\x69\x74\xcd\x27\x10"), 400, "OUT_OF_RANGE",
     "limit"},
    {"duplicate field", "department.get",
     B("\x82\xa4\x63\x6f\x64\x65\xa9\x34\x34\x30\x30\x30\x30\x30\x30\x31"
       "\xa4\x63\x6f\x64\x65\xa9\x34\x34\x30\x30\x30\x30\x30\x30\x31"),
     400, "DUPLICATE_FIELD", "code"},
};
#define S_NBAD (sizeof s_bad / sizeof s_bad[0])

/*  Frame-level faults need a raw socket: the client library always frames correctly. */
static zmsg_t *s_raw(zsock_t *d, zmsg_t *msg)
{
    zmsg_send(&msg, d);
    zpoller_t *p = zpoller_new(d, NULL);
    zmsg_t *r = zpoller_wait(p, 5000) ? zmsg_recv(d) : NULL;
    zpoller_destroy(&p);
    return r;
}

static int s_frame_faults(const char *svc)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    char ep[256], e[256];
    odp_config_endpoint(svc, false, false, ep, sizeof ep);
    odp_auth_client(d, NULL, e, sizeof e);
    zsock_connect(d, "%s", ep);
    struct {
        const char *what;
        int frames;
        const char *version;
        const char *status;
    } cases[] = {{"two frames", 2, ODP_PROTOCOL, "400"},
                 {"four frames", 4, ODP_PROTOCOL, "400"},
                 {"version ODP/2", 3, "ODP/2", "400"}};
    int sent = 0;
    for (size_t i = 0; i < 3; i++) {
        zmsg_t *m = zmsg_new();
        zmsg_addstr(m, cases[i].version);
        for (int f = 1; f < cases[i].frames; f++)
            zmsg_addmem(m, f == 1 ? "health" : "\x80", f == 1 ? 6 : 1);
        zmsg_t *r = s_raw(d, m);
        sent++;
        char *st = r ? zmsg_popstr(r) : NULL;
        CHECK(st && strcmp(st, cases[i].status) == 0, "%s to %s: status %s", cases[i].what, svc,
              st ? st : "(none)");
        free(st);
        zmsg_destroy(&r);
    }
    zsock_destroy(&d);
    return sent;
}

static void s_bad_requests(void)
{
    for (int k = 0; k < ODP_NSERVICES; k++) {
        const char *svc = odp_service_names[k];
        int64_t r0, e0, r1, e1;
        CHECK(h_health(svc, NULL, &r0, &e0), "%s health before", svc);
        odp_client_t *c = h_client(svc, NULL);
        int bad = 0;
        for (size_t i = 0; i < S_NBAD; i++) {
            const s_bad_t *b = &s_bad[i];
            /*  Commands only the registrar has are unknown elsewhere: expect that. */
            bool here = strcmp(svc, "registrar") == 0 || strncmp(b->command, "department.", 11);
            odp_reply_t rep;
            int st = h_call_raw(c, b->command, b->body, b->len, &rep);
            bad++;
            const char *want = here ? b->code : "UNKNOWN_COMMAND";
            char field[65];
            odp_v_cstr(&rep.err.field, field, sizeof field);
            CHECK(st == (here ? b->status : 400) && strcmp(h_err_code(&rep), want) == 0,
                  "%s: %s gave %d %s, expected %s", svc, b->what, st, h_err_code(&rep), want);
            if (here && b->field)
                CHECK(strcmp(field, b->field) == 0, "%s: %s named field '%s'", svc, b->what, field);
            CHECK(rep.err.message.present && rep.err.message.len > 0, "%s: %s has no message", svc,
                  b->what);
            odp_reply_free(&rep);
        }
        /*  Over the body limit but under the hard cap: read and refused with TOO_LARGE. */
        size_t big = (1 << 20) + 4096;
        char *blob = calloc(1, big);
        odp_reply_t rep;
        int st = h_call_raw(c, "health", blob, big, &rep);
        bad++;
        CHECK(st == 413 && strcmp(h_err_code(&rep), "TOO_LARGE") == 0, "%s: 1 MiB+ body gave %d",
              svc, st);
        odp_reply_free(&rep);
        free(blob);
        odp_client_destroy(&c);
        bad += s_frame_faults(svc);

        CHECK(h_health(svc, NULL, &r1, &e1), "%s stopped answering health", svc);
        /*  Counts add up: every request counted, every bad one an error. r1 includes the
            health request that reported it. */
        CHECK(e1 - e0 == bad, "%s: %d bad requests but errors rose by %lld", svc, bad,
              (long long)(e1 - e0));
        CHECK(r1 - r0 == bad + 1, "%s: %d requests but the count rose by %lld", svc, bad + 1,
              (long long)(r1 - r0));
    }
}

/*  Past the hard cap libzmq closes the connection before the service sees a byte; the
    service must not notice beyond that. */
static void s_hard_cap(void)
{
    odp_client_t *c = h_client("registrar", NULL);
    size_t huge = 5u << 20;
    char *blob = calloc(1, huge);
    odp_reply_t rep;
    int rc = odp_client_call_raw(c, "health", blob, huge, 1500, &rep);
    CHECK(rc < 0, "a 5 MiB message got a reply (status %d)", rep.status);
    odp_reply_free(&rep);
    free(blob);
    odp_client_destroy(&c);
    CHECK(h_health("registrar", NULL, NULL, NULL), "registrar survives a 5 MiB message");
}

/*  Values that look like SQL are data: stored and returned byte for byte. */
static void s_hostile_values(void)
{
    const char *name = "'); DROP TABLE registrar.departments; -- \" \\ %s %n";
    odp_client_t *c = h_client("registrar", NULL);
    odp_department_add_t m = {0};
    m.code = odp_v_str("440500001");
    m.name = odp_v_str(name);
    m.contact = odp_v_str("$1 $2 ::text E'\\x00'");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_department_add, &m, &rep);
    CHECK(st == 200, "hostile-looking name refused: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_department_get_t g = {0};
    g.code = odp_v_str("440500001");
    st = h_call(c, &odp_def_department_get, &g, &rep);
    const msgpack_object *n = odp_map_get(&rep.obj, "name");
    CHECK(st == 200 && n && n->via.str.size == strlen(name) &&
              memcmp(n->via.str.ptr, name, strlen(name)) == 0,
          "the name did not come back byte for byte");
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    PGconn *pg = h_pg_super();
    CHECK(h_pg_int(pg, "SELECT count(*) FROM registrar.departments") > 0, "departments intact");
    PQfinish(pg);
}

/*  The database connection dies under the service: it answers UNAVAILABLE or reconnects,
    and is back within seconds without a restart. */
static void s_db_reconnect(void)
{
    PGconn *pg = h_pg_super();
    int64_t killed = h_pg_int(pg, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE usename = 'odp_registrar'");
    CHECK(killed >= 1, "no registrar connection to terminate");
    PQfinish(pg);
    odp_client_t *c = h_client("registrar", NULL);
    bool back = false;
    int unavailable = 0;
    for (int i = 0; i < 50 && !back; i++) {
        odp_department_list_t l = {0};
        odp_reply_t rep;
        int st = h_call(c, &odp_def_department_list, &l, &rep);
        if (st == 200)
            back = true;
        else if (st == 503 && strcmp(h_err_code(&rep), "UNAVAILABLE") == 0)
            unavailable++;
        else
            CHECK(0, "while reconnecting: %d %s", st, h_err_code(&rep));
        odp_reply_free(&rep);
        if (!back)
            zclock_sleep(100);
    }
    odp_client_destroy(&c);
    CHECK(back, "registrar did not reconnect within 5 s (%d UNAVAILABLE)", unavailable);
    CHECK(h_service_pid("registrar") > 0, "registrar still running");
}

const h_case_t t_robust_cases[] = {
    {"every bad request gets a stable error; services stay up; counts add up", s_bad_requests},
    {"a message past the hard size cap is dropped and the service survives", s_hard_cap},
    {"SQL-looking values are stored as data", s_hostile_values},
    {"the database connection is lost and regained without a restart", s_db_reconnect},
    {NULL, NULL}};
