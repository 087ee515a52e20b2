/*  The query service's users' side: accounts and sessions, applications for conditional
    data, feedback, rate limits and counts. Users are CURVE keys nobody registered, talking
    to the public endpoint (ODP_QUERY_PUBLIC_BIND) as anonymous until they sign in;
    departments and operations use their registered keys. Every command is tried with an
    actor that must be refused (OWASP API1). */
#include "pushing.h"

#include "common/auth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_DEPT1 "446400001"
#define S_DEPT2 "446400002"

static char s_public[64]; /* where users connect */
static char s_open[33];   /* resources of S_DEPT1, by open type */
static char s_cond[33];
static char s_closed[33];
static bool s_ready = false;

#define EXPECT(st, rep, want_st, want_code, what)                                                  \
    CHECK((st) == (want_st) && strcmp(h_err_code(rep), want_code) == 0,                            \
          "%s: got %d %s (%.*s), want %d %s", what, st, h_err_code(rep),                           \
          (int)(rep)->err.message.len, (rep)->err.message.str ? (rep)->err.message.str : "",       \
          want_st, want_code)

/*  Restart the query service with a public endpoint and extra settings (NULL-ended). */
static bool s_restart(const char *const *extra)
{
    static char bind[80], flush[64];
    snprintf(bind, sizeof bind, "ODP_QUERY_PUBLIC_BIND=tcp://127.0.0.1:%d",
             atoi(h_env("ODP_PORT_BASE")) + 39);
    snprintf(s_public, sizeof s_public, "tcp://127.0.0.1:%d", atoi(h_env("ODP_PORT_BASE")) + 39);
    snprintf(flush, sizeof flush, "ODP_QUERY_COUNT_FLUSH_MS=300");
    const char *env[8] = {bind, flush};
    size_t n = 2;
    for (; extra && *extra && n < 7; extra++)
        env[n++] = *extra;
    env[n] = NULL;
    h_service_stop("query");
    return h_service_start("query", env) > 0;
}

/*  A user's client: a fresh key pair nobody registered, on the public endpoint. */
static odp_client_t *s_anon(const char *name)
{
    char base[512], secret[600], key[41], err[256];
    snprintf(base, sizeof base, "%s/keys/q-%s", h_var(), name);
    snprintf(secret, sizeof secret, "%s_secret", base);
    if (odp_auth_keygen("user", name, name, base, key) < 0)
        return NULL;
    odp_client_t *c = odp_client_new("query", s_public, secret, err, sizeof err);
    CHECK(c, "client %s: %s", name, err);
    return c;
}

static int s_signup(odp_client_t *c, const char *login, const char *pw, odp_reply_t *rep)
{
    odp_user_signup_t m = {0};
    m.login = odp_v_str(login);
    m.password = odp_v_str(pw);
    return h_call(c, &odp_def_user_signup, &m, rep);
}

/*  Sign in; the token into token (43 characters). The status. */
static int s_signin(odp_client_t *c, const char *login, const char *pw, int64_t ttl, char token[65])
{
    odp_user_signin_t m = {0};
    m.login = odp_v_str(login);
    m.password = odp_v_str(pw);
    if (ttl)
        m.ttl_s = odp_v_int(ttl);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_user_signin, &m, &rep);
    token[0] = '\0';
    if (st == 200)
        tp_str(&rep, "token", token, 65);
    odp_reply_free(&rep);
    return st;
}

/*  A user account with a session: signed up (if new) and signed in. */
static bool s_user(odp_client_t *c, const char *login, char token[65])
{
    odp_reply_t rep;
    int st = s_signup(c, login, "correct horse battery", &rep);
    odp_reply_free(&rep);
    CHECK(st == 200 || st == 409, "signup %s: %d", login, st);
    st = s_signin(c, login, "correct horse battery", 0, token);
    CHECK(st == 200 && strlen(token) == 43, "signin %s: %d", login, st);
    return st == 200;
}

static int s_me(odp_client_t *c, const char *token, char *login, size_t size, char *via)
{
    odp_user_me_t m = {0};
    if (token)
        m.token = odp_v_str(token);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_user_me, &m, &rep);
    if (login)
        tp_str(&rep, "login", login, size);
    if (via)
        tp_str(&rep, "via", via, 16);
    odp_reply_free(&rep);
    return st;
}

static void s_iso_in(int seconds, char *buf, size_t size)
{
    time_t t = time(NULL) + seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void s_setup(void)
{
    /*  A short statement timeout for the query role, so the timeout case need not wait 5 s;
        it applies to the sessions the restarted service opens. */
    PGconn *pg = h_pg_super();
    PQclear(PQexec(pg, "ALTER ROLE odp_query SET statement_timeout = '1s'"));
    PQfinish(pg);
    CHECK(s_restart(NULL), "query with a public endpoint");
    CHECK(h_department(S_DEPT1, "查询测试 提供部门一") == 0, "department 1");
    CHECK(h_department(S_DEPT2, "查询测试 提供部门二") == 0, "department 2");
    bool ok =
        tp_entry(S_DEPT1, "查询测试 无条件开放", "dataset", "air_quality_daily", true, s_open) &&
        tp_entry(S_DEPT1, "查询测试 有条件开放", "dataset", "air_quality_daily", true, s_cond) &&
        tp_entry(S_DEPT1, "查询测试 不予开放", "dataset", "air_quality_daily", true, s_closed);
    odp_client_t *p = h_client("registrar", h_keyfile(S_DEPT1));
    odp_catalog_update_t u = {0};
    odp_reply_t rep;
    u.resource = odp_v_str(s_cond);
    u.open_type = odp_v_str("conditional");
    u.access_conditions = odp_v_str("用于科研，不得转售");
    int st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "conditional: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    u = (odp_catalog_update_t){0};
    u.resource = odp_v_str(s_closed);
    u.open_type = odp_v_str("not_open");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "not_open: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&p);
    s_ready = ok && h_case_failures == 0;
}

/*  ---- identity --------------------------------------------------------------------------- */

static void s_identity(void)
{
    odp_client_t *a = s_anon("alice"), *k = s_anon("alice-key"), *other = s_anon("mallory");
    if (!a || !k || !other)
        goto done;
    odp_reply_t rep;
    int st = s_signup(a, "alice", "correct horse battery", &rep);
    CHECK(st == 200 && h_int(&rep, "user") > 0, "signup: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    st = s_signup(other, "alice", "another password", &rep);
    EXPECT(st, &rep, 409, "ALREADY_EXISTS", "a login taken");
    odp_reply_free(&rep);
    st = s_signup(a, "bad login!", "correct horse battery", &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "a login with a space");
    odp_reply_free(&rep);
    static const char shortpw[] = "\x82\xa5login\xa6shorty\xa8password\xa5short";
    st = h_call_raw(a, "user.signup", shortpw, sizeof shortpw - 1, &rep);
    EXPECT(st, &rep, 400, "OUT_OF_RANGE", "a password under 8 bytes");
    odp_reply_free(&rep);

    char token[65], login[65], via[16];
    CHECK(s_signin(other, "alice", "wrong password", 0, token) == 401, "wrong password");
    CHECK(s_signin(other, "nobody-here", "wrong password", 0, token) == 401, "unknown login");
    CHECK(s_me(other, NULL, NULL, 0, NULL) == 401, "anonymous user.me");

    CHECK(s_signin(a, "alice", "correct horse battery", 0, token) == 200, "signin");
    CHECK(s_me(other, token, login, sizeof login, via) == 200 && strcmp(login, "alice") == 0 &&
              strcmp(via, "token") == 0,
          "the token acts as alice from any key: %s via %s", login, via);

    /*  Expiry. */
    char brief[65];
    CHECK(s_signin(a, "alice", "correct horse battery", 1, brief) == 200, "signin ttl 1");
    CHECK(s_me(a, brief, NULL, 0, NULL) == 200, "a fresh session works");
    usleep(1600 * 1000);
    CHECK(s_me(a, brief, NULL, 0, NULL) == 401, "an expired session is refused");

    /*  Revocation. */
    odp_user_signout_t so = {0};
    so.token = odp_v_str(token);
    st = h_call(a, &odp_def_user_signout, &so, &rep);
    CHECK(st == 200, "signout: %d", st);
    odp_reply_free(&rep);
    CHECK(s_me(a, token, NULL, 0, NULL) == 401, "a signed-out token is refused");
    st = h_call(a, &odp_def_user_signout, &so, &rep);
    EXPECT(st, &rep, 401, "UNAUTHENTICATED", "signing out twice");
    odp_reply_free(&rep);

    /*  A bound key acts as its user with no token; another key does not. */
    CHECK(s_signin(k, "alice", "correct horse battery", 0, token) == 200, "signin for the key");
    odp_user_bind_key_t b = {0};
    b.token = odp_v_str(token);
    st = h_call(k, &odp_def_user_bind_key, &b, &rep);
    CHECK(st == 200 && h_int(&rep, "keys") == 1, "bind_key: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_me(k, NULL, login, sizeof login, via) == 200 && strcmp(login, "alice") == 0 &&
              strcmp(via, "key") == 0,
          "the bound key acts as alice: %s via %s", login, via);
    CHECK(s_me(other, NULL, NULL, 0, NULL) == 401, "another key is still anonymous");
    char mtoken[65];
    CHECK(s_user(other, "mallory", mtoken), "mallory");
    b.token = odp_v_str(mtoken);
    st = h_call(k, &odp_def_user_bind_key, &b, &rep);
    EXPECT(st, &rep, 409, "ALREADY_EXISTS", "binding alice's key to mallory");
    odp_reply_free(&rep);
    odp_client_t *ops = h_client("query", NULL);
    st = ops ? h_call(ops, &odp_def_user_bind_key, &b, &rep) : 0;
    EXPECT(st, &rep, 409, "INVALID_STATE", "binding a registered key");
    if (ops)
        odp_reply_free(&rep);
    odp_client_destroy(&ops);

    /*  Signing out everywhere ends every session and unbinds the key. */
    so = (odp_user_signout_t){0};
    so.all = odp_v_bool(true);
    st = h_call(k, &odp_def_user_signout, &so, &rep);
    CHECK(st == 200, "signout all through the key: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_me(k, NULL, NULL, 0, NULL) == 401, "the key is unbound");
    CHECK(s_me(a, token, NULL, 0, NULL) == 401, "every session ended");
done:
    odp_client_destroy(&a);
    odp_client_destroy(&k);
    odp_client_destroy(&other);
}

/*  The clear text of a password is nowhere: not in any table of any schema (as text or as
    the hex of its bytes), not in the query service's log. */
static void s_password_nowhere(void)
{
    const char *pw = "Zebra-Unique-Pw-7731";
    odp_client_t *c = s_anon("pwcheck");
    odp_reply_t rep;
    int st = c ? s_signup(c, "pwcheck", pw, &rep) : 0;
    CHECK(st == 200, "signup: %d", st);
    if (c)
        odp_reply_free(&rep);
    char token[65];
    CHECK(c && s_signin(c, "pwcheck", pw, 0, token) == 200, "signin");
    CHECK(c && s_signin(c, "pwcheck", "Zebra-Wrong-Pw-7731", 0, token) == 401, "wrong signin");
    odp_client_destroy(&c);

    PGconn *pg = h_pg_super();
    char hex[64] = "";
    for (size_t i = 0; i < strlen(pw); i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)pw[i]);
    PGresult *t = PQexec(pg, "SELECT format('%I.%I', table_schema, table_name) FROM "
                             "information_schema.tables WHERE table_schema NOT IN "
                             "('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'");
    int tables = PQntuples(t);
    CHECK(tables > 20, "only %d tables to scan", tables);
    for (int i = 0; i < tables; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM %s x WHERE strpos(x::text, '%s') > 0 OR "
                 "strpos(x::text, '%s') > 0 OR strpos(x::text, 'Zebra-Wrong') > 0",
                 PQgetvalue(t, i, 0), pw, hex);
        int64_t n = h_pg_int(pg, sql);
        CHECK(n == 0, "the password is in %s (%lld rows)", PQgetvalue(t, i, 0), (long long)n);
    }
    PQclear(t);
    CHECK(h_pg_int(pg, "SELECT count(*) FROM query.users WHERE login = 'pwcheck' AND "
                       "pwhash LIKE '$argon2id$%'") == 1,
          "the account holds an argon2id hash");
    PQfinish(pg);

    char path[512];
    snprintf(path, sizeof path, "%s/log/query.log", h_var());
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    char *log = NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        log = calloc(1, (size_t)size + 1);
        len = log ? fread(log, 1, (size_t)size, f) : 0;
        fclose(f);
    }
    CHECK(log && len > 0 && strstr(log, "cmd=user.signin"), "the query log records sign-ins");
    CHECK(log && !strstr(log, "Zebra"), "a password is in the query log");
    free(log);
}

/*  ---- applications ---------------------------------------------------------------------- */

static int s_apply(odp_client_t *c, const char *token, const char *resource, odp_reply_t *rep)
{
    odp_application_submit_t m = {0};
    if (token)
        m.token = odp_v_str(token);
    m.resource = odp_v_str(resource);
    m.purpose = odp_v_str("城市规划研究");
    m.scope = odp_v_str("全部字段，2025 年的行");
    m.period_from = odp_v_str("2026-01-01");
    m.period_to = odp_v_str("2026-12-31");
    return h_call(c, &odp_def_application_submit, &m, rep);
}

static int s_decide(odp_client_t *c, int64_t id, bool grant, const char *expires,
                    const char *reason, odp_reply_t *rep)
{
    odp_application_decide_t m = {0};
    m.id = odp_v_int(id);
    m.grant = odp_v_bool(grant);
    if (expires)
        m.expires_at = odp_v_str(expires);
    if (reason)
        m.reason = odp_v_str(reason);
    return h_call(c, &odp_def_application_decide, &m, rep);
}

/*  access.check's may_read (1 / 0), or -status. why receives the reason. */
static int s_may(odp_client_t *c, const char *token, const char *resource, char *why)
{
    odp_access_check_t m = {0};
    if (token)
        m.token = odp_v_str(token);
    m.resource = odp_v_str(resource);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_access_check, &m, &rep);
    int rc = st == 200 ? tp_bool(&rep, "may_read") : -st;
    if (why)
        tp_str(&rep, "why", why, 200);
    odp_reply_free(&rep);
    return rc;
}

static int s_list_count(odp_client_t *c, const odp_msgdef_t *def, const void *m)
{
    odp_reply_t rep;
    int st = h_call(c, def, m, &rep);
    const msgpack_object *items = st == 200 ? odp_map_get(&rep.obj, "items") : NULL;
    int n = items && items->type == MSGPACK_OBJECT_ARRAY ? (int)items->via.array.size : -st;
    odp_reply_free(&rep);
    return n;
}

static void s_applications(void)
{
    if (!s_ready) {
        CHECK(false, "set-up failed");
        return;
    }
    odp_client_t *ua = s_anon("app-alice"), *ub = s_anon("app-bob");
    odp_client_t *p1 = h_client("query", h_keyfile(S_DEPT1));
    odp_client_t *p2 = h_client("query", h_keyfile(S_DEPT2));
    odp_client_t *ops = h_client("query", NULL);
    char ta[65], tb[65], why[200];
    if (!ua || !ub || !p1 || !p2 || !ops || !s_user(ua, "app-alice", ta) ||
        !s_user(ub, "app-bob", tb))
        goto done;
    odp_reply_t rep;
    int st = s_apply(ua, ta, s_open, &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "applying for open data");
    odp_reply_free(&rep);
    st = s_apply(ua, ta, s_closed, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "applying for not_open data");
    odp_reply_free(&rep);
    st = s_apply(ua, NULL, s_cond, &rep);
    EXPECT(st, &rep, 401, "UNAUTHENTICATED", "applying anonymously");
    odp_reply_free(&rep);
    st = s_apply(p1, NULL, s_cond, &rep);
    EXPECT(st, &rep, 401, "UNAUTHENTICATED", "a department applying");
    odp_reply_free(&rep);
    st = s_apply(ua, ta, s_cond, &rep);
    int64_t id = h_int(&rep, "id");
    char dept[16] = "", state[17] = "";
    tp_str(&rep, "department", dept, sizeof dept);
    tp_str(&rep, "state", state, sizeof state);
    CHECK(st == 200 && id > 0 && strcmp(dept, S_DEPT1) == 0 && strcmp(state, "submitted") == 0,
          "apply: %d %s id=%lld dept=%s state=%s", st, h_err_code(&rep), (long long)id, dept,
          state);
    odp_reply_free(&rep);

    CHECK(s_may(ua, NULL, s_open, why) == 1, "anyone reads open data");
    CHECK(s_may(ua, ta, s_cond, why) == 0 && strstr(why, "apply first"), "applied, not granted: %s",
          why);
    CHECK(s_may(ub, NULL, s_cond, why) == 0, "anonymous on conditional data");
    CHECK(s_may(ua, ta, s_closed, why) == -404, "not_open data is not even found");

    /*  Who sees the application. */
    odp_application_list_t l = {0};
    l.token = odp_v_str(ta);
    CHECK(s_list_count(ua, &odp_def_application_list, &l) == 1, "the applicant sees it");
    l.token = odp_v_str(tb);
    CHECK(s_list_count(ub, &odp_def_application_list, &l) == 0, "another user sees nothing");
    l = (odp_application_list_t){0};
    l.department = odp_v_str(S_DEPT1);
    CHECK(s_list_count(p2, &odp_def_application_list, &l) == 0,
          "another department sees nothing, even naming the owner");
    CHECK(s_list_count(p1, &odp_def_application_list, &l) == 1, "the owner department sees it");
    CHECK(s_list_count(ops, &odp_def_application_list, &l) >= 1, "operations sees it");
    l = (odp_application_list_t){0};
    CHECK(s_list_count(ub, &odp_def_application_list, &l) == -401, "anonymous lists nothing");

    /*  Who decides. */
    char until[40];
    s_iso_in(4, until, sizeof until);
    st = s_decide(ub, id, true, until, NULL, &rep);
    EXPECT(st, &rep, 401, "UNAUTHENTICATED", "a user (anonymous key) deciding");
    odp_reply_free(&rep);
    st = s_decide(p2, id, true, until, NULL, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "another department deciding");
    odp_reply_free(&rep);
    st = s_decide(p1, id, true, NULL, NULL, &rep);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "a grant without expiry");
    odp_reply_free(&rep);
    st = s_decide(p1, id, true, "2020-01-01T00:00:00Z", NULL, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "a grant that expired already");
    odp_reply_free(&rep);
    st = s_decide(p1, id, true, "not a time", NULL, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "an expiry that is no time");
    odp_reply_free(&rep);
    st = s_decide(p1, id, true, until, NULL, &rep);
    tp_str(&rep, "state", state, sizeof state);
    CHECK(st == 200 && strcmp(state, "granted") == 0 && tp_bool(&rep, "active"),
          "the owner grants: %d %s %s", st, h_err_code(&rep), state);
    odp_reply_free(&rep);
    st = s_decide(ops, id, false, NULL, "改变主意", &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "deciding twice");
    odp_reply_free(&rep);

    CHECK(s_may(ua, ta, s_cond, why) == 1 && strcmp(why, "granted") == 0, "granted: %s", why);
    CHECK(s_may(ub, tb, s_cond, why) == 0, "another user is not granted");

    /*  Operations refuses another application; a refusal needs its reason. */
    st = s_apply(ub, tb, s_cond, &rep);
    int64_t id2 = h_int(&rep, "id");
    odp_reply_free(&rep);
    st = s_decide(ops, id2, false, NULL, NULL, &rep);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "a refusal without reason");
    odp_reply_free(&rep);
    st = s_decide(ops, id2, false, NULL, "用途不符合开放条件", &rep);
    tp_str(&rep, "state", state, sizeof state);
    CHECK(st == 200 && strcmp(state, "refused") == 0, "operations refuses: %d %s", st, state);
    odp_reply_free(&rep);
    l = (odp_application_list_t){0};
    l.token = odp_v_str(tb);
    l.state = odp_v_str("refused");
    CHECK(s_list_count(ub, &odp_def_application_list, &l) == 1, "bob sees his refusal");
    CHECK(s_may(ub, tb, s_cond, why) == 0, "refused: %s", why);

    /*  The grant runs out. */
    int rc = 1;
    for (int i = 0; i < 100 && rc == 1; i++) {
        usleep(100 * 1000);
        rc = s_may(ua, ta, s_cond, why);
    }
    CHECK(rc == 0 && strstr(why, "expired"), "the grant expired: %d %s", rc, why);

    PGconn *pg = h_pg_super();
    CHECK(h_pg_int(pg, "SELECT count(*) FROM query.outbox WHERE topic = 'application.received' "
                       "AND department = '" S_DEPT1 "'") == 2,
          "two application.received for the department");
    CHECK(h_pg_int(pg, "SELECT count(*) FROM query.outbox WHERE topic = 'application.decided' "
                       "AND department = '" S_DEPT1 "'") == 2,
          "two application.decided for the department");
    PQfinish(pg);
done:
    odp_client_destroy(&ua);
    odp_client_destroy(&ub);
    odp_client_destroy(&p1);
    odp_client_destroy(&p2);
    odp_client_destroy(&ops);
}

/*  ---- feedback --------------------------------------------------------------------------- */

static int64_t s_feedback(odp_client_t *c, const char *token, const char *kind,
                          const char *resource, const char *dept, int rating, int want)
{
    odp_feedback_submit_t m = {0};
    if (token)
        m.token = odp_v_str(token);
    m.kind = odp_v_str(kind);
    if (resource)
        m.resource = odp_v_str(resource);
    if (dept)
        m.department = odp_v_str(dept);
    if (rating)
        m.rating = odp_v_int(rating);
    else if (strcmp(kind, "app") != 0)
        m.text = odp_v_str("第 3 行的坐标有误");
    if (strcmp(kind, "app") == 0) {
        m.title = odp_v_str("空气质量地图");
        m.url = odp_v_str("https://example.org/aq");
    }
    odp_reply_t rep;
    int st = h_call(c, &odp_def_feedback_submit, &m, &rep);
    char got[16] = "";
    tp_str(&rep, "department", got, sizeof got);
    CHECK(st == want, "feedback %s: %d %s, want %d", kind, st, h_err_code(&rep), want);
    const char *expect = resource ? S_DEPT1 : dept ? dept : "";
    CHECK(st != 200 || strcmp(got, expect) == 0, "feedback %s went to '%s', not '%s'", kind, got,
          expect);
    int64_t id = st == 200 ? h_int(&rep, "id") : -1;
    odp_reply_free(&rep);
    return id;
}

static int s_reply(odp_client_t *c, const char *token, int64_t id, bool resolve, odp_reply_t *rep)
{
    odp_feedback_reply_t m = {0};
    if (token)
        m.token = odp_v_str(token);
    m.id = odp_v_int(id);
    m.text = odp_v_str("已核实，将在下一版本更正");
    if (resolve)
        m.resolve = odp_v_bool(true);
    return h_call(c, &odp_def_feedback_reply, &m, rep);
}

static void s_feedback_routed(void)
{
    if (!s_ready) {
        CHECK(false, "set-up failed");
        return;
    }
    odp_client_t *ua = s_anon("fb-alice"), *ub = s_anon("fb-bob");
    odp_client_t *p1 = h_client("query", h_keyfile(S_DEPT1));
    odp_client_t *p2 = h_client("query", h_keyfile(S_DEPT2));
    odp_client_t *ops = h_client("query", NULL);
    char ta[65], tb[65];
    if (!ua || !ub || !p1 || !p2 || !ops || !s_user(ua, "fb-alice", ta) ||
        !s_user(ub, "fb-bob", tb))
        goto done;
    int64_t comment = s_feedback(ua, ta, "comment", s_open, NULL, 0, 200);
    int64_t report = s_feedback(ua, ta, "report", s_cond, NULL, 0, 200);
    s_feedback(ua, ta, "request", NULL, S_DEPT2, 0, 200);
    s_feedback(ua, ta, "request", NULL, NULL, 0, 200);
    s_feedback(ua, ta, "rating", s_open, NULL, 4, 200);
    s_feedback(ua, ta, "rating", s_open, NULL, 5, 409);
    s_feedback(ua, ta, "app", s_open, NULL, 0, 200);
    s_feedback(ua, NULL, "comment", s_open, NULL, 0, 401);
    s_feedback(ua, ta, "comment", s_closed, NULL, 0, 404);
    s_feedback(ua, ta, "request", NULL, "446499999", 0, 404);
    s_feedback(ua, ta, "rating", s_open, NULL, 0, 400);
    s_feedback(ua, ta, "praise", s_open, NULL, 0, 422);
    s_feedback(ua, ta, "comment", s_open, S_DEPT2, 0, 422);

    odp_feedback_list_t l = {0};
    CHECK(s_list_count(p1, &odp_def_feedback_list, &l) == 4, "department 1 gets its four");
    l.department = odp_v_str(S_DEPT1);
    CHECK(s_list_count(p2, &odp_def_feedback_list, &l) == 1,
          "department 2 gets its one request, whatever it names");
    l = (odp_feedback_list_t){0};
    l.token = odp_v_str(ta);
    CHECK(s_list_count(ua, &odp_def_feedback_list, &l) == 6, "the author sees her six");
    l.token = odp_v_str(tb);
    CHECK(s_list_count(ub, &odp_def_feedback_list, &l) == 0, "another user sees none");
    l = (odp_feedback_list_t){0};
    CHECK(s_list_count(ops, &odp_def_feedback_list, &l) >= 6, "operations sees all");

    /*  Who reads and answers an item. */
    odp_feedback_get_t g = {0};
    g.id = odp_v_int(report);
    g.token = odp_v_str(tb);
    odp_reply_t rep;
    int st = h_call(ub, &odp_def_feedback_get, &g, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "another user reading the report");
    odp_reply_free(&rep);
    g.token = (odp_val_t){0};
    st = h_call(p2, &odp_def_feedback_get, &g, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "another department reading the report");
    odp_reply_free(&rep);
    st = s_reply(p2, NULL, report, false, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "another department answering");
    odp_reply_free(&rep);
    st = s_reply(ub, tb, report, false, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "another user replying");
    odp_reply_free(&rep);
    st = s_reply(ub, NULL, report, false, &rep);
    EXPECT(st, &rep, 401, "UNAUTHENTICATED", "anonymous replying");
    odp_reply_free(&rep);

    st = s_reply(p1, NULL, report, false, &rep);
    char state[17] = "", answered[40] = "";
    tp_str(&rep, "state", state, sizeof state);
    tp_str(&rep, "answered_at", answered, sizeof answered);
    CHECK(st == 200 && strcmp(state, "answered") == 0 && answered[0],
          "the department answers: %d %s %s", st, state, answered);
    odp_reply_free(&rep);
    st = s_reply(ua, ta, report, true, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "the author resolving");
    odp_reply_free(&rep);
    st = s_reply(ua, ta, report, false, &rep);
    CHECK(st == 200 && h_int(&rep, "replies") == 2, "the author replies: %d", st);
    odp_reply_free(&rep);
    st = s_reply(p1, NULL, report, true, &rep);
    tp_str(&rep, "state", state, sizeof state);
    CHECK(st == 200 && strcmp(state, "resolved") == 0, "resolved: %d %s", st, state);
    odp_reply_free(&rep);
    st = s_reply(ops, NULL, report, false, &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "a reply to resolved feedback");
    odp_reply_free(&rep);
    g.token = odp_v_str(ta);
    st = h_call(ua, &odp_def_feedback_get, &g, &rep);
    const msgpack_object *thread = st == 200 ? odp_map_get(&rep.obj, "thread") : NULL;
    CHECK(thread && thread->type == MSGPACK_OBJECT_ARRAY && thread->via.array.size == 3,
          "the author reads the thread of 3: %d", st);
    odp_reply_free(&rep);
    st = s_reply(ops, NULL, comment, false, &rep);
    CHECK(st == 200, "operations answers any item: %d", st);
    odp_reply_free(&rep);

    PGconn *pg = h_pg_super();
    CHECK(h_pg_int(pg, "SELECT count(*) FROM query.outbox WHERE topic = 'feedback.received' AND "
                       "department = '" S_DEPT1 "'") == 4,
          "four feedback.received name department 1");
    CHECK(h_pg_int(pg, "SELECT count(*) FROM query.outbox WHERE topic = 'feedback.received' AND "
                       "department = '" S_DEPT2 "'") == 1,
          "one feedback.received names department 2");
    CHECK(h_pg_int(pg, "SELECT count(*) FROM query.outbox WHERE topic IN ('feedback.answered', "
                       "'feedback.resolved') AND department = '" S_DEPT1 "'") == 3,
          "answered twice and resolved once in department 1");
    PQfinish(pg);
done:
    odp_client_destroy(&ua);
    odp_client_destroy(&ub);
    odp_client_destroy(&p1);
    odp_client_destroy(&p2);
    odp_client_destroy(&ops);
}

/*  ---- protection --------------------------------------------------------------------------- */

static void s_counted(void)
{
    if (!s_ready) {
        CHECK(false, "set-up failed");
        return;
    }
    PGconn *pg = h_pg_super();
    char views_sql[256], events_sql[256];
    snprintf(views_sql, sizeof views_sql,
             "SELECT coalesce(sum(views), 0) FROM query.usage_counts WHERE resource = '%s' AND "
             "department = '" S_DEPT1 "'",
             s_open);
    snprintf(events_sql, sizeof events_sql,
             "SELECT count(*) FROM query.outbox WHERE topic = 'usage.counted' AND department = "
             "'" S_DEPT1 "'");
    /*  Whatever earlier cases counted is flushed first. */
    usleep(700 * 1000);
    int64_t views0 = h_pg_int(pg, views_sql), events0 = h_pg_int(pg, events_sql);
    odp_client_t *c = s_anon("counter");
    for (int i = 0; c && i < 12; i++)
        CHECK(s_may(c, NULL, s_open, NULL) == 1, "access.check %d", i);
    odp_client_destroy(&c);
    int64_t views = views0;
    for (int i = 0; i < 50 && views < views0 + 12; i++) {
        usleep(100 * 1000);
        views = h_pg_int(pg, views_sql);
    }
    CHECK(views == views0 + 12, "views counted: %lld, then %lld", (long long)views0,
          (long long)views);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM query.usage_counts WHERE resource = '%s'",
             s_open);
    CHECK(h_pg_int(pg, sql) == 1, "one row per resource and day");
    int64_t events = h_pg_int(pg, events_sql) - events0;
    CHECK(events >= 1 && events <= 4, "usage.counted per flush, not per view: %lld for 12 views",
          (long long)events);
    PQfinish(pg);
}

static void s_timeout(void)
{
    odp_client_t *c = s_anon("slow");
    PGconn *pg = h_pg_super();
    PQclear(PQexec(pg, "BEGIN"));
    PGresult *r = PQexec(pg, "LOCK TABLE query.users IN ACCESS EXCLUSIVE MODE");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "lock: %s", PQresultErrorMessage(r));
    PQclear(r);
    odp_reply_t rep;
    int64_t t0 = zclock_mono();
    int st = c ? s_signup(c, "slowpoke", "correct horse battery", &rep) : 0;
    int64_t ms = zclock_mono() - t0;
    EXPECT(st, &rep, 503, "UNAVAILABLE", "a statement held past the statement timeout");
    CHECK(ms < 4000, "answered after %lld ms", (long long)ms);
    if (c)
        odp_reply_free(&rep);
    PQclear(PQexec(pg, "ROLLBACK"));
    PQfinish(pg);
    st = c ? s_signup(c, "slowpoke", "correct horse battery", &rep) : 0;
    CHECK(st == 200, "after the lock: %d %s", st, h_err_code(&rep));
    if (c)
        odp_reply_free(&rep);
    odp_client_destroy(&c);
}

static void s_hostile(void)
{
    odp_client_t *c = s_anon("hostile");
    if (!c)
        return;
    int64_t requests0 = 0;
    h_health("query", NULL, &requests0, NULL);
    struct {
        const char *cmd;
        const char *body; /* msgpack bytes */
        size_t len;
        int status;
        const char *code;
    } cases[] = {
        {"user.me", "\x81\xa5token\x2a", 8, 400, "WRONG_TYPE"},
        {"user.me",
         "\x81\xa5token\xa3"
         "abc",
         11, 400, "OUT_OF_RANGE"},
        {"user.signin",
         "\x82\xa5login\xa5"
         "alice\xa8password\xc3",
         23, 400, "WRONG_TYPE"},
        {"user.signup",
         "\x81\xa5login\xa5"
         "alice",
         13, 400, "MISSING_FIELD"},
        {"user.drop", "\x80", 1, 400, "UNKNOWN_COMMAND"},
        {"feedback.list",
         "\x81\xa4"
         "evil\xc0",
         7, 400, "UNKNOWN_FIELD"},
        {"application.list", "\x81\xa5state", 7, 400, "MALFORMED"},
        {"application.list",
         "\x81\xa5state\xa4"
         "gone",
         12, 401, "UNAUTHENTICATED"},
        {"access.check", "\x81\xa8resource\xa8' OR 1=1", 19, 404, "NOT_FOUND"},
        {"application.decide", "\x82\xa2id\xff\xa5grant\xc3", 12, 400, "OUT_OF_RANGE"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        odp_reply_t rep;
        int st = h_call_raw(c, cases[i].cmd, cases[i].body, cases[i].len, &rep);
        CHECK(st == cases[i].status && strcmp(h_err_code(&rep), cases[i].code) == 0,
              "%s case %zu: %d %s, want %d %s", cases[i].cmd, i, st, h_err_code(&rep),
              cases[i].status, cases[i].code);
        odp_reply_free(&rep);
    }
    /*  A token that is well-formed but never issued, and text over its limit. */
    odp_user_me_t me = {0};
    me.token = odp_v_str("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_user_me, &me, &rep);
    EXPECT(st, &rep, 401, "UNAUTHENTICATED", "a token never issued");
    odp_reply_free(&rep);
    /*  The encoder refuses what breaks a declaration, so the oversize body is packed here. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    tp_pack_cstr(&pk, "purpose");
    char big[2100];
    memset(big, 'x', sizeof big);
    msgpack_pack_str(&pk, sizeof big);
    msgpack_pack_str_body(&pk, big, sizeof big);
    st = h_call_raw(c, "application.submit", sb.data, sb.size, &rep);
    msgpack_sbuffer_destroy(&sb);
    EXPECT(st, &rep, 400, "TOO_LONG", "a purpose over 2000 bytes");
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    int64_t requests1 = 0;
    CHECK(h_health("query", NULL, &requests1, NULL) && requests1 > requests0,
          "the query service is up and counted the requests");
}

/*  ---- the user's tool ------------------------------------------------------------------------ */

/*  Run odp-user through sh with input on its standard input, as user (a key made here);
    its exit status, stdout in out. */
static int s_tool(const char *user, const char *input, const char *args, char *out, size_t size)
{
    char cmd[2048], outp[512], errp[512], cert[600], ep[128], tok[600];
    snprintf(outp, sizeof outp, "%s/q-tool.out", h_var());
    snprintf(errp, sizeof errp, "%s/log/q-tool.err", h_var());
    unlink(outp);
    snprintf(cmd, sizeof cmd, "printf '%s' | '%s/odp-user' %s", input, h_bin(), args);
    snprintf(cert, sizeof cert, "ODP_CLIENT_CERT=%s/keys/q-%s_secret", h_var(), user);
    snprintf(ep, sizeof ep, "ODP_QUERY_PUBLIC_ENDPOINT=%s", s_public);
    snprintf(tok, sizeof tok, "ODP_QUERY_TOKEN_FILE=%s/q-%s.token", h_var(), user);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    const char *env[] = {cert, ep, tok, NULL};
    int rc = h_wait_exit(h_spawn(argv, env, outp, errp), 20000);
    out[0] = '\0';
    FILE *f = fopen(outp, "r");
    if (f) {
        size_t n = fread(out, 1, size - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    return rc;
}

static void s_tool_user(void)
{
    if (!s_ready) {
        CHECK(false, "set-up failed");
        return;
    }
    odp_client_t *c = s_anon("tool-carol"); /* makes the key the tool uses */
    odp_client_destroy(&c);
    char out[8192], args[512], path[600];
    CHECK(s_tool("tool-carol", "carol password 1\\n", "signup --login tool-carol --json", out,
                 sizeof out) == 0 &&
              strstr(out, "\"login\":\"tool-carol\""),
          "signup: %s", out);
    CHECK(s_tool("tool-carol", "short\\n", "signup --login tool-carol2", out, sizeof out) == 2,
          "a short password is refused before anything is sent");
    CHECK(s_tool("tool-carol", "", "signup --login x --password secret123", out, sizeof out) == 2,
          "a password on the command line is refused");
    CHECK(s_tool("tool-carol", "wrong password\\n", "signin --login tool-carol --json", out,
                 sizeof out) == 1 &&
              strstr(out, "UNAUTHENTICATED"),
          "a wrong password: %s", out);
    CHECK(s_tool("tool-carol", "carol password 1\\n", "signin --login tool-carol --json", out,
                 sizeof out) == 0 &&
              strstr(out, "token_file"),
          "signin: %s", out);
    snprintf(path, sizeof path, "%s/q-tool-carol.token", h_var());
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0 && st.st_size == 44,
          "the token file is private and holds the token");
    CHECK(!strstr(out, "carol password"), "the password is not echoed");
    CHECK(s_tool("tool-carol", "", "me --json", out, sizeof out) == 0 &&
              strstr(out, "\"via\":\"token\""),
          "me: %s", out);
    snprintf(args, sizeof args,
             "apply --resource %s --purpose 研究 --scope 全部 --period-from 2026-01-01 "
             "--period-to 2026-06-30 --json",
             s_cond);
    CHECK(s_tool("tool-carol", "", args, out, sizeof out) == 0 &&
              strstr(out, "\"state\":\"submitted\""),
          "apply: %s", out);
    CHECK(s_tool("tool-carol", "", "applications --json", out, sizeof out) == 0 &&
              strstr(out, s_cond),
          "applications: %s", out);
    snprintf(args, sizeof args, "feedback rate --resource %s --rating 5 --json", s_open);
    CHECK(s_tool("tool-carol", "", args, out, sizeof out) == 0 &&
              strstr(out, "\"department\":\"" S_DEPT1 "\""),
          "feedback rate: %s", out);
    snprintf(args, sizeof args, "feedback report --resource %s --text 坐标错误 --json", s_open);
    CHECK(s_tool("tool-carol", "", args, out, sizeof out) == 0 && strstr(out, "\"report\""),
          "feedback report: %s", out);
    CHECK(s_tool("tool-carol", "", "feedback list --json", out, sizeof out) == 0 &&
              strstr(out, "\"rating\":5"),
          "feedback list: %s", out);
    CHECK(s_tool("tool-carol", "", "signout --json", out, sizeof out) == 0 && stat(path, &st) < 0,
          "signout removes the token file");
    CHECK(s_tool("tool-carol", "", "me --json", out, sizeof out) == 1 &&
              strstr(out, "UNAUTHENTICATED"),
          "signed out: %s", out);
}

static void s_rate_limited(void)
{
    const char *env[] = {"ODP_QUERY_RATE_PER_S=2", "ODP_QUERY_RATE_BURST=5", NULL};
    CHECK(s_restart(env), "query with a small bucket");
    odp_client_t *a = s_anon("greedy"), *b = s_anon("patient");
    int ok = 0, limited = 0;
    bool retry_after = true;
    for (int i = 0; a && i < 12; i++) {
        odp_reply_t rep;
        odp_user_me_t m = {0};
        int st = h_call(a, &odp_def_user_me, &m, &rep);
        if (st == 429 && strcmp(h_err_code(&rep), "RATE_LIMITED") == 0) {
            limited++;
            retry_after = retry_after && rep.err.message.str &&
                          memmem(rep.err.message.str, rep.err.message.len, "retry_after_ms=", 15);
        } else if (st == 401) {
            ok++;
        }
        odp_reply_free(&rep);
    }
    CHECK(ok >= 5 && ok <= 7 && limited >= 5, "a burst of 12: %d served, %d limited", ok, limited);
    CHECK(retry_after, "each 429 says retry_after_ms");
    CHECK(b && s_me(b, NULL, NULL, 0, NULL) == 401, "another key is not limited");
    usleep(1200 * 1000);
    CHECK(a && s_me(a, NULL, NULL, 0, NULL) == 401, "the bucket refills");
    odp_client_destroy(&a);
    odp_client_destroy(&b);
    PGconn *pg = h_pg_super();
    PQclear(PQexec(pg, "ALTER ROLE odp_query SET statement_timeout = '5s'"));
    PQfinish(pg);
    h_service_stop("query");
    CHECK(h_service_start("query", NULL) > 0, "query restarted as before");
}

const h_case_t t_query_cases[] = {
    {"query: set-up (public endpoint, two departments, open, conditional, not_open entries)",
     s_setup},
    {"query: sign-up and sign-in; sessions expire and are revoked; a bound key acts as its user",
     s_identity},
    {"query: a password never appears in the database or the log", s_password_nowhere},
    {"query: applications decided by the resource's department or operations only; grants "
     "expire",
     s_applications},
    {"query: feedback reaches the responsible department; only it, operations and the author "
     "see and answer it",
     s_feedback_routed},
    {"query: views are counted in memory and flushed as one row per resource and day", s_counted},
    {"query: a statement past the statement timeout answers 503; the service stays up", s_timeout},
    {"query: hostile inputs get stable codes and the service stays up", s_hostile},
    {"query: odp-user signup and signin read the password from stdin and keep the token privately; "
     "apply, applications, feedback, signout",
     s_tool_user},
    {"query: the rate limit answers 429 with retry_after_ms, per actor", s_rate_limited},
    {NULL, NULL}};
