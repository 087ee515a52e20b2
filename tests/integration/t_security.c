/*  Identity at the socket (CURVE + ZAP) and least privilege in the database. */
#include "harness.h"

#include "common/auth.h"

#include <stdio.h>
#include <string.h>

static bool s_answers(const char *svc, const char *cert)
{
    odp_client_t *c = h_client(svc, cert);
    if (!c)
        return false;
    odp_whoami_t w = {0};
    odp_reply_t rep;
    int rc = odp_client_call(c, &odp_def_whoami, &w, 1500, &rep);
    bool ok = rc == 0 && rep.status == 200;
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return ok;
}

static void s_unknown_key(void)
{
    char base[512], key[41], secret[600];
    snprintf(base, sizeof base, "%s/keys/stranger", h_var());
    snprintf(secret, sizeof secret, "%s_secret", base);
    CHECK(odp_auth_keygen("operations", "admin", "claims to be admin", base, key) == 0, "keygen");
    /*  Its certificate even claims to be the admin: only the server's directory counts. */
    for (int i = 0; i < ODP_NSERVICES; i++)
        CHECK(!s_answers(odp_service_names[i], secret), "%s answered an unknown key",
              odp_service_names[i]);
    CHECK(s_answers("registrar", NULL), "the admin key still works");
}

static void s_revoked_key(void)
{
    const char *code = "440600001";
    CHECK(h_department(code, "佛山市数据局") == 0, "department.add");
    CHECK(s_answers("query", h_keyfile(code)), "the new key works");
    char pub[512];
    snprintf(pub, sizeof pub, "%s/keys/%s", h_var(), code);
    zcert_t *cert = zcert_load(pub);
    CHECK(cert, "load %s", pub);
    if (!cert)
        return;
    odp_client_t *c = h_client("registrar", NULL);
    odp_credential_revoke_t m = {0};
    m.public_key = odp_v_str(zcert_public_txt(cert));
    odp_reply_t rep;
    int st = h_call(c, &odp_def_credential_revoke, &m, &rep);
    CHECK(st == 200, "credential.revoke %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    st = h_call(c, &odp_def_credential_revoke, &m, &rep);
    CHECK(st == 404, "revoking twice gave %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    zcert_destroy(&cert);
    CHECK(!s_answers("query", h_keyfile(code)), "a revoked key still connects");
}

static bool s_denied(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool denied = state && strcmp(state, "42501") == 0;
    PQclear(r);
    return denied;
}

static void s_schema_isolation(void)
{
    for (int a = 0; a < ODP_NSERVICES; a++) {
        const char *me = odp_service_names[a];
        PGconn *c = h_pg_role(me);
        CHECK(PQstatus(c) == CONNECTION_OK, "connect as odp_%s", me);
        if (PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            continue;
        }
        /*  The control: its own schema is writable, so a denial below means something. */
        char sql[256];
        snprintf(sql, sizeof sql,
                 "BEGIN; UPDATE %s.outbox_counter SET last = last; CREATE TABLE %s.probe (x int);"
                 " ROLLBACK",
                 me, me);
        PGresult *r = PQexec(c, sql);
        CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "odp_%s cannot write its own schema: %s", me,
              PQresultErrorMessage(r));
        PQclear(r);
        for (int b = 0; b < ODP_NSERVICES; b++) {
            if (a == b)
                continue;
            const char *other = odp_service_names[b];
            snprintf(sql, sizeof sql, "CREATE TABLE %s.intruder (x int)", other);
            CHECK(s_denied(c, sql), "odp_%s may create tables in %s", me, other);
            snprintf(sql, sizeof sql, "UPDATE %s.outbox_counter SET last = last + 1", other);
            CHECK(s_denied(c, sql), "odp_%s may update %s.outbox_counter", me, other);
            snprintf(sql, sizeof sql,
                     "INSERT INTO %s.outbox (seq, topic, body) VALUES "
                     "(999999, 'forged', '')",
                     other);
            CHECK(s_denied(c, sql), "odp_%s may forge events in %s", me, other);
        }
        CHECK(s_denied(c, "CREATE TABLE public.stray (x int)"), "odp_%s may create in public", me);
        PQfinish(c);
    }
}

/*  Local mode is for one machine: it must refuse to listen beyond loopback. */
static void s_local_mode_is_local(void)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/odp-registrar", h_bin());
    snprintf(err, sizeof err, "%s/local-mode.err", h_var());
    remove(err);
    const char *argv[] = {path, NULL};
    const char *env[] = {"ODP_SECURITY=local", "ODP_REGISTRAR_BIND=tcp://0.0.0.0:17991",
                         "ODP_REGISTRAR_EVENTS_BIND=tcp://127.0.0.1:17992", NULL};
    pid_t pid = h_spawn(argv, env, NULL, err);
    int st = h_wait_exit(pid, 10000);
    CHECK(st != 0 && st != -1, "a local-mode service bound 0.0.0.0 (exit %d)", st);
    FILE *f = fopen(err, "r");
    char buf[8192] = "";
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    CHECK(strstr(buf, "SECURITY OFF"), "local mode does not say so loudly in its log");
    CHECK(strstr(buf, "bind_refused"), "no bind_refused entry in its log");
}

const h_case_t t_security_cases[] = {
    {"a client without a known CURVE key is refused by every service", s_unknown_key},
    {"a revoked key is refused", s_revoked_key},
    {"each service's role cannot write another service's schema", s_schema_isolation},
    {"local mode without CURVE refuses non-loopback endpoints", s_local_mode_is_local},
    {NULL, NULL}};
