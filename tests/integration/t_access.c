/*  What a hostile or careless client can still try at the transport: a key revoked while
    its connection is open, a deactivated department, a provider listening to everyone's
    events, the public endpoint, a REQ client's delimiter, and messages built to make a
    service hold memory. Each case is written as the attack, and checks that everyone else
    is unharmed. */
#include "harness.h"

#include "common/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  ---- helpers ------------------------------------------------------------------------ */

static int s_whoami(odp_client_t *c, char *kind, size_t size)
{
    odp_whoami_t w = {0};
    odp_reply_t rep;
    int st = h_call(c, &odp_def_whoami, &w, &rep);
    if (kind) {
        const msgpack_object *k = st == 200 ? odp_map_get(&rep.obj, "kind") : NULL;
        snprintf(kind, size, "%.*s", k ? (int)k->via.str.size : 0, k ? k->via.str.ptr : "");
    }
    odp_reply_free(&rep);
    return st;
}

static int s_plan(odp_client_t *c, const char *title, char *code, size_t size)
{
    odp_plan_add_t m = {0};
    m.title = odp_v_str(title);
    m.open_type = odp_v_str("unconditional");
    m.update_cycle = odp_v_str("monthly");
    m.due_on = odp_v_str("2027-06-30");
    m.maintainer = odp_v_str("数据科");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_plan_add, &m, &rep);
    if (code)
        snprintf(code, size, "%s", h_err_code(&rep));
    odp_reply_free(&rep);
    return st;
}

static char *s_public_key(const char *code, char *key)
{
    char pub[512];
    snprintf(pub, sizeof pub, "%s/keys/%s", h_var(), code);
    zcert_t *cert = zcert_load(pub);
    snprintf(key, 41, "%s", cert ? zcert_public_txt(cert) : "");
    zcert_destroy(&cert);
    return key;
}

static int s_revoke(const char *key)
{
    odp_client_t *c = h_client("registrar", NULL);
    odp_credential_revoke_t m = {0};
    m.public_key = odp_v_str(key);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_credential_revoke, &m, &rep);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

static int s_set_active(const char *code, bool active)
{
    odp_client_t *c = h_client("registrar", NULL);
    odp_department_update_t m = {0};
    m.code = odp_v_str(code);
    m.active = odp_v_bool(active);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_department_update, &m, &rep);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

/*  Messages a SUB socket receives within ms (heartbeats included). */
static int s_drain(zsock_t *sub, int ms)
{
    int n = 0;
    int64_t until = zclock_mono() + ms;
    zpoller_t *p = zpoller_new(sub, NULL);
    while (zclock_mono() < until) {
        if (!zpoller_wait(p, (int)(until - zclock_mono())))
            continue;
        zmsg_t *m = zmsg_recv(sub);
        zmsg_destroy(&m);
        n++;
    }
    zpoller_destroy(&p);
    return n;
}

static int64_t s_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    int64_t kb = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            kb = strtoll(line + fl + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/*  ---- access control ------------------------------------------------------------------ */

/*  A stolen key is revoked while the thief's connection is open: the next request on that
    very socket is refused, and another department goes on unharmed. */
static void s_revoked_key_open_connection(void)
{
    const char *thief = "440700001", *other = "440700002";
    CHECK(h_department(thief, "江门市数据局") == 0, "department.add");
    CHECK(h_department(other, "湛江市数据局") == 0, "department.add");
    odp_client_t *c = h_client("registrar", h_keyfile(thief));
    odp_client_t *o = h_client("registrar", h_keyfile(other));
    CHECK(s_plan(c, "被盗密钥之前", NULL, 0) == 200, "the key works before revocation");
    char key[41], code[40];
    CHECK(s_revoke(s_public_key(thief, key)) == 200, "credential.revoke");
    int st = s_plan(c, "被盗密钥之后", code, sizeof code);
    CHECK(st == 401 && strcmp(code, "UNAUTHENTICATED") == 0,
          "plan.add on the open connection after revocation gave %d %s", st, code);
    /*  Every service checks, not only the one that revoked. */
    odp_client_t *q = h_client("query", h_keyfile(thief));
    CHECK(s_whoami(q, NULL, 0) != 200, "the revoked key still answers on query");
    odp_client_destroy(&q);
    CHECK(s_plan(o, "另一部门照常", NULL, 0) == 200, "another department was harmed");
    odp_client_destroy(&c);
    odp_client_destroy(&o);
}

/*  A staff member's key is revoked while it follows the live event stream: its
    subscription ends, while the administrator's goes on. */
static void s_revoked_key_subscription(void)
{
    char base[512], key[41], secret[600];
    snprintf(base, sizeof base, "%s/keys/staff-leaver", h_var());
    snprintf(secret, sizeof secret, "%s_secret", base);
    CHECK(odp_auth_keygen("operations", "leaver", "离职员工", base, key) == 0, "keygen");
    odp_client_t *c = h_client("registrar", NULL);
    odp_staff_add_t m = {0};
    m.login = odp_v_str("leaver");
    m.name = odp_v_str("离职员工");
    m.public_key = odp_v_str(key);
    odp_reply_t rep;
    CHECK(h_call(c, &odp_def_staff_add, &m, &rep) == 200, "staff.add: %s", h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    char err[256];
    zsock_t *leaver = odp_client_sub("registrar", NULL, "", 1000, secret, NULL, err, sizeof err);
    zsock_t *admin = odp_client_sub("registrar", NULL, "", 1000, NULL, NULL, err, sizeof err);
    CHECK(leaver && admin, "subscribe: %s", err);
    if (!leaver || !admin) {
        zsock_destroy(&leaver);
        zsock_destroy(&admin);
        return;
    }
    CHECK(s_drain(leaver, 1200) > 0, "the staff key receives nothing before revocation");
    CHECK(s_revoke(key) == 200, "credential.revoke");
    /*  The service notices at its next heartbeat and binds its events endpoint afresh. */
    zclock_sleep(800);
    s_drain(leaver, 300);
    s_drain(admin, 300);
    int after = s_drain(leaver, 2000);
    int admin_after = s_drain(admin, 2000);
    CHECK(after == 0, "the revoked key's subscription received %d messages", after);
    CHECK(admin_after > 0, "the administrator's subscription did not come back");
    zsock_destroy(&leaver);
    zsock_destroy(&admin);
}

/*  A department is deactivated: its keys stop at once, pushes included; reactivated, they
    work again. */
static void s_deactivated_department(void)
{
    const char *code = "440800001";
    CHECK(h_department(code, "茂名市数据局") == 0, "department.add");
    odp_client_t *c = h_client("registrar", h_keyfile(code));
    CHECK(s_plan(c, "停用之前", NULL, 0) == 200, "the key works while active");
    CHECK(s_set_active(code, false) == 200, "department.update active=false");
    char err[40];
    int st = s_plan(c, "停用之后", err, sizeof err);
    CHECK(st == 401, "plan.add by a deactivated department gave %d %s", st, err);
    odp_push_begin_t b = {0};
    b.resource = odp_v_str("440800001-021-00001");
    b.format = odp_v_str("csv");
    b.size = odp_v_int(10);
    b.sha256 = odp_v_str("0000000000000000000000000000000000000000000000000000000000000000");
    odp_reply_t rep;
    st = h_call(c, &odp_def_push_begin, &b, &rep);
    CHECK(st == 401, "push.begin by a deactivated department gave %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_set_active(code, true) == 200, "department.update active=true");
    CHECK(s_plan(c, "恢复之后", NULL, 0) == 200, "the key does not work again after reactivation");
    odp_client_destroy(&c);
}

/*  A provider tries to listen to every department's events: the live stream refuses it,
    and its replay holds only its own department's events. */
static void s_provider_event_visibility(void)
{
    const char *mine = "440900001", *theirs = "440900002";
    CHECK(h_department(mine, "梅州市数据局") == 0, "department.add");
    CHECK(h_department(theirs, "汕尾市数据局") == 0, "department.add");
    odp_client_t *a = h_client("registrar", h_keyfile(mine));
    odp_client_t *b = h_client("registrar", h_keyfile(theirs));
    CHECK(s_plan(a, "本部门计划", NULL, 0) == 200, "plan.add (mine)");
    CHECK(s_plan(b, "他部门的保密计划", NULL, 0) == 200, "plan.add (theirs)");
    char err[256];
    zsock_t *sub =
        odp_client_sub("registrar", NULL, "", 1000, h_keyfile(mine), NULL, err, sizeof err);
    CHECK(sub && s_drain(sub, 1200) == 0, "a provider key receives the live stream");
    zsock_destroy(&sub);

    int64_t mine_seen = 0, other_seen = 0, events = 0, through = 0, last = 0;
    for (int64_t from = 1;;) {
        odp_events_replay_t r = {0};
        r.from = odp_v_int(from);
        odp_reply_t rep;
        int st = h_call(a, &odp_def_events_replay, &r, &rep);
        CHECK(st == 200, "events.replay by a provider gave %d", st);
        if (st != 200) {
            odp_reply_free(&rep);
            break;
        }
        const msgpack_object *evs = odp_map_get(&rep.obj, "events");
        for (uint32_t i = 0; evs && i < evs->via.array.size; i++) {
            const msgpack_object *body = &evs->via.array.ptr[i].via.array.ptr[1];
            const msgpack_object *d = odp_map_get(body, "department");
            if (!d)
                d = odp_map_get(body, "code");
            events++;
            if (d && d->via.str.size == 9 && memcmp(d->via.str.ptr, mine, 9) == 0)
                mine_seen++;
            else
                other_seen++;
        }
        through = h_int(&rep, "through");
        last = h_int(&rep, "last");
        const msgpack_object *more = odp_map_get(&rep.obj, "more");
        bool again = more && more->type == MSGPACK_OBJECT_BOOLEAN && more->via.boolean;
        odp_reply_free(&rep);
        if (!again || through < from)
            break;
        from = through + 1;
    }
    CHECK(mine_seen >= 2, "the provider's replay lacks its own events (%lld)",
          (long long)mine_seen);
    CHECK(other_seen == 0, "the provider's replay holds %lld events not its own",
          (long long)other_seen);
    CHECK(through == last, "the replay stopped at %lld of %lld", (long long)through,
          (long long)last);
    CHECK(last > events, "operations' history (%lld) should be larger than a provider's (%lld)",
          (long long)last, (long long)events);
    odp_client_destroy(&a);
    odp_client_destroy(&b);
}

/*  The public endpoint admits a key nobody registered, as anonymous; the registered
    endpoint of the same service refuses it; a registered key on the public endpoint is
    still itself. */
static void s_public_endpoint(void)
{
    char bind[64], connect[64];
    int port = atoi(h_env("ODP_PORT_BASE")) + 29;
    snprintf(bind, sizeof bind, "ODP_PUBLISHER_PUBLIC_BIND=tcp://127.0.0.1:%d", port);
    snprintf(connect, sizeof connect, "tcp://127.0.0.1:%d", port);
    h_service_stop("publisher");
    const char *env[] = {bind, NULL};
    CHECK(h_service_start("publisher", env) > 0, "publisher with a public endpoint");

    char base[512], key[41], secret[600], err[256];
    snprintf(base, sizeof base, "%s/keys/citizen", h_var());
    snprintf(secret, sizeof secret, "%s_secret", base);
    CHECK(odp_auth_keygen("user", "citizen", "公众", base, key) == 0, "keygen");

    odp_client_t *pub = odp_client_new("publisher", connect, secret, err, sizeof err);
    char kind[32] = "";
    int st = pub ? s_whoami(pub, kind, sizeof kind) : -1;
    CHECK(st == 200 && strcmp(kind, "anonymous") == 0,
          "an unknown key on the public endpoint: %d kind=%s", st, kind);
    odp_events_replay_t r = {0};
    r.from = odp_v_int(1);
    odp_reply_t rep;
    st = pub ? h_call(pub, &odp_def_events_replay, &r, &rep) : -1;
    const msgpack_object *evs = st == 200 ? odp_map_get(&rep.obj, "events") : NULL;
    CHECK(st == 200 && evs && evs->via.array.size == 0,
          "anonymous replay: %d with %d events (no public topic has happened)", st,
          evs ? (int)evs->via.array.size : -1);
    if (pub)
        odp_reply_free(&rep);
    odp_client_destroy(&pub);

    odp_client_t *reg = odp_client_new("publisher", NULL, secret, err, sizeof err);
    odp_whoami_t w = {0};
    int rc = reg ? odp_client_call(reg, &odp_def_whoami, &w, 1500, &rep) : -1;
    CHECK(rc < 0, "the registered endpoint answered an unknown key (status %d)", rep.status);
    if (reg)
        odp_reply_free(&rep);
    odp_client_destroy(&reg);

    odp_client_t *ops = odp_client_new("publisher", connect, NULL, err, sizeof err);
    st = ops ? s_whoami(ops, kind, sizeof kind) : -1;
    CHECK(st == 200 && strcmp(kind, "operations") == 0,
          "a registered key on the public endpoint: %d kind=%s", st, kind);
    odp_client_destroy(&ops);

    h_service_stop("publisher");
    CHECK(h_service_start("publisher", NULL) > 0, "publisher restarted");
}

/*  ---- protocol ------------------------------------------------------------------------ */

/*  A REQ client sends an empty delimiter and must get a reply its socket accepts: the
    delimiter echoed, which REQ strips, leaving [STATUS, BODY]. */
static void s_req_delimiter(void)
{
    zsock_t *req = zsock_new(ZMQ_REQ);
    char ep[256], e[256];
    odp_config_endpoint("registrar", false, false, ep, sizeof ep);
    CHECK(odp_auth_client(req, NULL, e, sizeof e) == 0, "curve: %s", e);
    zsock_set_rcvtimeo(req, 5000);
    zsock_connect(req, "%s", ep);
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, ODP_PROTOCOL);
    zmsg_addstr(m, "whoami");
    zmsg_addmem(m, "\x80", 1);
    zmsg_send(&m, req);
    zmsg_t *r = zmsg_recv(req);
    CHECK(r && zmsg_size(r) == 2, "a REQ client got %zu frames", r ? zmsg_size(r) : 0);
    char *st = r ? zmsg_popstr(r) : NULL;
    CHECK(st && strcmp(st, "200") == 0, "REQ whoami status %s", st ? st : "(none)");
    free(st);
    zmsg_destroy(&r);
    zsock_destroy(&req);
}

/*  ---- resource limits ----------------------------------------------------------------- */

/*  One request of many large frames, sent by `peers` peers at once. */
static void s_flood(int peers, int frames, size_t frame_size, int *replies)
{
    zsock_t *d[16];
    char ep[256], e[256];
    odp_config_endpoint("registrar", false, false, ep, sizeof ep);
    char *blob = calloc(1, frame_size);
    *replies = 0;
    for (int p = 0; p < peers; p++) {
        d[p] = zsock_new(ZMQ_DEALER);
        zsock_set_sndhwm(d[p], 0);
        odp_auth_client(d[p], NULL, e, sizeof e);
        zsock_connect(d[p], "%s", ep);
        zmsg_t *m = zmsg_new();
        zmsg_addstr(m, ODP_PROTOCOL);
        zmsg_addstr(m, "health");
        for (int f = 0; f < frames; f++)
            zmsg_addmem(m, blob, frame_size);
        zmsg_send(&m, d[p]);
    }
    for (int p = 0; p < peers; p++) {
        zpoller_t *poll = zpoller_new(d[p], NULL);
        if (zpoller_wait(poll, 8000)) {
            zmsg_t *r = zmsg_recv(d[p]);
            char *st = r ? zmsg_popstr(r) : NULL;
            if (st && strcmp(st, "400") == 0)
                (*replies)++;
            free(st);
            zmsg_destroy(&r);
        }
        zpoller_destroy(&poll);
        zsock_destroy(&d[p]);
    }
    free(blob);
}

/*  ["ODP/1", "health", 4 MiB] and 61 more 4 MiB frames, from one peer and then from ten
    at once: each frame is past the per-frame cap, so libzmq drops the connection before
    storing it, and the registrar's peak memory stays within 64 MB of its idle size. */
static void s_memory_flood(void)
{
    pid_t pid = h_service_pid("registrar");
    CHECK(h_health("registrar", NULL, NULL, NULL), "registrar up");
    int64_t idle = s_status_kb(pid, "VmRSS");
    int64_t hwm0 = s_status_kb(pid, "VmHWM");
    int replies;
    s_flood(1, 62, 4u << 20, &replies);
    CHECK(replies == 0, "a 4 MiB frame was answered, so it was stored");
    s_flood(10, 62, 4u << 20, &replies);
    CHECK(h_health("registrar", NULL, NULL, NULL), "registrar survives the flood");
    int64_t peak = s_status_kb(pid, "VmHWM");
    printf("#   4 MiB x 62 frames, 1 then 10 peers: idle RSS %lld kB, peak %lld kB (before %lld)\n",
           (long long)idle, (long long)peak, (long long)hwm0);
    CHECK(peak - idle < 64 * 1024 || peak == hwm0,
          "peak RSS %lld kB is more than 64 MB above idle %lld kB", (long long)peak,
          (long long)idle);

    /*  Frames under the cap are held by libzmq until the message is whole (a libzmq
        property, PROTOCOL.md §4); the service answers BAD_FRAME and gives the memory back. */
    s_flood(1, 40, 1u << 20, &replies);
    CHECK(replies == 1, "40 x 1 MiB frames got %d BAD_FRAME replies", replies);
    zclock_sleep(200);
    int64_t after = s_status_kb(pid, "VmRSS");
    printf("#   1 MiB x 40 frames: peak %lld kB, RSS after %lld kB (idle %lld kB)\n",
           (long long)s_status_kb(pid, "VmHWM"), (long long)after, (long long)idle);
#ifndef __SANITIZE_ADDRESS__
    /*  ASan's allocator keeps freed memory in quarantine: only glibc's can show it back. */
    CHECK(after - idle < 16 * 1024, "memory not returned: RSS %lld kB after, %lld kB idle",
          (long long)after, (long long)idle);
#endif
    odp_client_t *c = h_client("registrar", NULL);
    CHECK(s_whoami(c, NULL, 0) == 200, "a well-behaved client was harmed");
    odp_client_destroy(&c);
}

const h_case_t t_access_cases[] = {
    {"attack: a revoked key's open connection is refused at its next request",
     s_revoked_key_open_connection},
    {"attack: a revoked key's event subscription ends; others' go on", s_revoked_key_subscription},
    {"attack: a deactivated department's keys stop at once; reactivation restores them",
     s_deactivated_department},
    {"attack: a provider cannot follow other departments' events, live or replayed",
     s_provider_event_visibility},
    {"a public endpoint admits an unknown key as anonymous; the registered one refuses it",
     s_public_endpoint},
    {"a REQ client's delimiter is echoed: it reads [STATUS, BODY]", s_req_delimiter},
    {"attack: 62 x 4 MiB frames from 1 and 10 peers; memory stays bounded and comes back",
     s_memory_flood},
    {NULL, NULL}};
