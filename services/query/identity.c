/*  Users (R4.3c, R7d): sign-up, sign-in, sessions that expire and can be revoked, a CURVE
    key bound to an account, and who a request acts for (q_who). Passwords are hashed with
    libsodium's argon2id (crypto_pwhash_str) in this process: the clear text reaches neither
    PostgreSQL nor the log (the request log names the command and fields, never values). */
#include "query.h"

#include "common/log.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TOKEN_BYTES 32

static void s_token_hash(const char *token, size_t len, unsigned char out[32])
{
    crypto_hash_sha256(out, (const unsigned char *)token, len);
}

static int s_limited(odp_req_t *req, int64_t wait_ms)
{
    return odp_req_fail(req, ODP_E_RATE_LIMITED, NULL,
                        "too many requests from this actor; retry_after_ms=%" PRId64, wait_ms);
}

static int s_charge(odp_req_t *req, const char *bucket)
{
    q_ctx_t *ctx = req->ctx;
    int64_t wait = q_guard_take(ctx->guard, bucket);
    return wait > 0 ? s_limited(req, wait) : 0;
}

/*  The bucket of a caller with no account: its CURVE key (or its registered actor). */
static void s_key_bucket(const odp_req_t *req, char *buf, size_t size)
{
    if (req->actor->key[0] && strcmp(req->actor->kind, "anonymous") == 0)
        snprintf(buf, size, "key:%s", req->actor->key);
    else
        snprintf(buf, size, "%s", req->actor_str);
}

int q_charge_key(odp_req_t *req)
{
    char bucket[80];
    s_key_bucket(req, bucket, sizeof bucket);
    return s_charge(req, bucket);
}

/*  The caller's name and how it was known (who->kind and who->via as resolved). */
static void s_who_name(const odp_req_t *req, q_who_t *who)
{
    if (!who->via[0])
        snprintf(who->via, sizeof who->via, "none");
    switch (who->kind) {
    case Q_USER:
        snprintf(who->str, sizeof who->str, "user:%" PRId64, who->user);
        break;
    case Q_PROVIDER:
    case Q_OPERATIONS:
        snprintf(who->str, sizeof who->str, "%s", req->actor_str);
        break;
    case Q_ANONYMOUS:
        snprintf(who->str, sizeof who->str, "anonymous");
        break;
    }
}

int q_who(odp_req_t *req, const odp_val_t *token, q_who_t *who)
{
    memset(who, 0, sizeof *who);
    const odp_actor_t *a = req->actor;
    if (token && token->present) {
        unsigned char h[32];
        s_token_hash(token->str, token->len, h);
        const char *vals[1] = {(const char *)h};
        int lens[1] = {32};
        PGresult *r =
            q_exec(req,
                   "SELECT user_id, " Q_TS(
                       "expires_at") " FROM sessions "
                                     "WHERE token_hash = $1::bytea AND revoked_at IS NULL "
                                     "AND expires_at > now()",
                   1, vals, lens);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the session");
        if (PQntuples(r) == 0) {
            PQclear(r);
            if (q_charge_key(req) < 0)
                return -1;
            return odp_req_fail(req, ODP_E_UNAUTHENTICATED, "token",
                                "the token is not a live session (expired, signed out, or "
                                "never issued): sign in again");
        }
        who->kind = Q_USER;
        who->user = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        snprintf(who->expires_at, sizeof who->expires_at, "%s", PQgetvalue(r, 0, 1));
        snprintf(who->via, sizeof who->via, "token");
        PQclear(r);
    } else if (strcmp(a->kind, "provider") == 0) {
        who->kind = Q_PROVIDER;
        snprintf(who->department, sizeof who->department, "%.9s", a->id);
        snprintf(who->via, sizeof who->via, "certificate");
    } else if (strcmp(a->kind, "operations") == 0) {
        who->kind = Q_OPERATIONS;
        snprintf(who->via, sizeof who->via, "certificate");
    } else if (strcmp(a->kind, "anonymous") == 0 && a->key[0]) {
        const char *vals[1] = {a->key};
        PGresult *r =
            q_exec(req, "SELECT user_id FROM user_keys WHERE public_key = $1", 1, vals, NULL);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the key");
        if (PQntuples(r) == 1) {
            who->kind = Q_USER;
            who->user = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            snprintf(who->via, sizeof who->via, "key");
        }
        PQclear(r);
    }
    s_who_name(req, who);
    return who->kind == Q_ANONYMOUS ? q_charge_key(req) : s_charge(req, who->str);
}

void q_who_anonymous(const odp_req_t *req, q_who_t *who)
{
    memset(who, 0, sizeof *who);
    s_who_name(req, who);
}

int q_user(odp_req_t *req, const odp_val_t *token, q_who_t *who)
{
    if (q_who(req, token, who) < 0)
        return -1;
    if (who->kind != Q_USER)
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, "token",
                            "sign in first: send the session token (user.signin) or use a "
                            "key bound to your account");
    return 0;
}

/*  ---- sign-up, sign-in, sign-out -------------------------------------------------------- */

static bool s_login_ok(const odp_val_t *v)
{
    for (size_t i = 0; i < v->len; i++) {
        char c = v->str[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

static int s_signup_txn(odp_req_t *req, void *arg)
{
    const odp_user_signup_t *m = req->msg;
    const char *hash = arg;
    const char *vals[3] = {m->login.str, m->name.present ? m->name.str : NULL, hash};
    int lens[3] = {(int)m->login.len, (int)m->name.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO users (login, name, pwhash) VALUES ($1, $2, $3) "
                              "ON CONFLICT (login) DO NOTHING RETURNING id",
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the account");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_ALREADY_EXISTS, "login", "this login is taken");
    }
    int64_t id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    odp_ev_user_registered_t ev = {0};
    ev.user = odp_v_int(id);
    char actor[40];
    snprintf(actor, sizeof actor, "user:%" PRId64, id);
    if (odp_outbox_append(req->outbox, &odp_def_ev_user_registered, &ev, actor) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    odp_rep_user_t rep = {0};
    rep.user = odp_v_int(id);
    rep.login = m->login;
    rep.name = m->name;
    rep.via = odp_v_str("none");
    rep.keys = odp_v_int(0);
    return odp_encode(&odp_def_rep_user, &rep, req->pk) < 0
               ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode")
               : 0;
}

static int s_signup(odp_req_t *req)
{
    const odp_user_signup_t *m = req->msg;
    if (q_charge_key(req) < 0)
        return -1;
    if (!s_login_ok(&m->login))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "login",
                            "a login is 3 to 64 of A-Z a-z 0-9 _ . @ -");
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, m->password.str, m->password.len,
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL,
                            "not enough memory to hash the password now; retry later");
    int rc = odp_req_txn(req, s_signup_txn, hash);
    sodium_memzero(hash, sizeof hash);
    return rc;
}

/*  The same answer, and about the same time, for an unknown login and a wrong password:
    an unknown login is checked against a fixed hash, so neither says which it was. */
static int s_signin(odp_req_t *req)
{
    const odp_user_signin_t *m = req->msg;
    q_ctx_t *ctx = req->ctx;
    if (q_charge_key(req) < 0)
        return -1;
    static char dummy[crypto_pwhash_STRBYTES];
    if (!dummy[0] &&
        crypto_pwhash_str(dummy, "not a password", 14, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return odp_req_fail(req, ODP_E_UNAVAILABLE, NULL, "not enough memory now; retry later");
    const char *vals[1] = {m->login.str};
    int lens[1] = {(int)m->login.len};
    PGresult *r =
        odp_db_exec(req->db, "SELECT id, pwhash, login FROM users WHERE login = $1", 1, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the account");
    bool known = PQntuples(r) == 1;
    const char *stored = known ? PQgetvalue(r, 0, 1) : dummy;
    bool ok = crypto_pwhash_str_verify(stored, m->password.str, m->password.len) == 0 && known;
    int64_t id = known ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (!ok) {
        odp_info("event=query.signin_refused");
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, NULL, "login or password is wrong");
    }
    int64_t ttl =
        m->ttl_s.present && m->ttl_s.i < ctx->session_ttl_s ? m->ttl_s.i : ctx->session_ttl_s;
    unsigned char raw[S_TOKEN_BYTES];
    randombytes_buf(raw, sizeof raw);
    char token[sodium_base64_ENCODED_LEN(S_TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(token, sizeof token, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    unsigned char h[32];
    s_token_hash(token, strlen(token), h);
    char ids[24], ttls[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(ttls, sizeof ttls, "%" PRId64, ttl);
    const char *sv[3] = {(const char *)h, ids, ttls};
    int sl[3] = {32, -1, -1};
    r = odp_db_exec(req->db,
                    "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1::bytea, "
                    "$2, now() + make_interval(secs => $3)) RETURNING " Q_TS(
                        "expires_at") ", (SELECT login FROM users WHERE id = $2)",
                    3, sv, sl);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        sodium_memzero(token, sizeof token);
        return odp_req_db_fail(req, r, "the session");
    }
    odp_rep_session_t rep = {0};
    rep.token = odp_v_str(token);
    rep.user = odp_v_int(id);
    rep.expires_at = q_col(r, 0, 0);
    rep.login = q_col(r, 0, 1);
    int rc = odp_encode(&odp_def_rep_session, &rep, req->pk);
    PQclear(r);
    sodium_memzero(token, sizeof token);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode") : 0;
}

static int s_signout_all_txn(odp_req_t *req, void *arg)
{
    const char *vals[1] = {arg};
    if (odp_db_cmd(
            req->db,
            "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", 1,
            vals, NULL) < 0 ||
        odp_db_cmd(req->db, "DELETE FROM user_keys WHERE user_id = $1", 1, vals, NULL) < 0)
        return odp_req_db_fail(req, NULL, "signing out");
    return odp_req_ok_empty(req);
}

/*  Revokes the session of the token; with all, every session of the user and every key
    bound to the account. */
static int s_signout(odp_req_t *req)
{
    const odp_user_signout_t *m = req->msg;
    q_who_t who;
    if (q_user(req, &m->token, &who) < 0)
        return -1;
    if (!m->token.present && !(m->all.present && m->all.b))
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "token",
                            "name the session to end (token), or end them all (all: true)");
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, who.user);
    if (m->all.present && m->all.b)
        return odp_req_txn(req, s_signout_all_txn, ids);
    unsigned char h[32];
    s_token_hash(m->token.str, m->token.len, h);
    const char *vals[2] = {(const char *)h, ids};
    int lens[2] = {32, -1};
    PGresult *r = odp_db_exec(req->db,
                              "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1::bytea "
                              "AND user_id = $2 AND revoked_at IS NULL",
                              2, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_req_db_fail(req, r, "signing out");
    PQclear(r);
    return odp_req_ok_empty(req);
}

static int s_pack_me(odp_req_t *req, const q_who_t *who)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, who->user);
    const char *vals[1] = {ids};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT login, name, (SELECT count(*) FROM user_keys k WHERE "
                              "k.user_id = u.id) FROM users u WHERE id = $1",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the account");
    odp_rep_user_t rep = {0};
    rep.user = odp_v_int(who->user);
    rep.login = q_col(r, 0, 0);
    rep.name = q_col(r, 0, 1);
    rep.keys = q_int(r, 0, 2);
    rep.via = odp_v_str(who->via);
    if (who->expires_at[0])
        rep.expires_at = odp_v_str(who->expires_at);
    int rc = odp_encode(&odp_def_rep_user, &rep, req->pk);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode") : 0;
}

static int s_me(odp_req_t *req)
{
    const odp_user_me_t *m = req->msg;
    q_who_t who;
    if (q_user(req, &m->token, &who) < 0)
        return -1;
    return s_pack_me(req, &who);
}

/*  The key this connection was made with acts as the user from now on: holding the token
    and the key's secret half proves both. A registered key keeps its own identity. */
static int s_bind_key(odp_req_t *req)
{
    const odp_user_bind_key_t *m = req->msg;
    q_who_t who;
    if (q_user(req, &m->token, &who) < 0)
        return -1;
    if (strcmp(req->actor->kind, "anonymous") != 0 || !req->actor->key[0])
        return odp_req_fail(req, ODP_E_INVALID_STATE, NULL,
                            "only a key nobody registered, on the public endpoint, can be bound "
                            "to an account; this one acts as %s",
                            req->actor_str);
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, who.user);
    const char *vals[2] = {req->actor->key, ids};
    PGresult *r =
        odp_db_exec(req->db,
                    "INSERT INTO user_keys (public_key, user_id) VALUES ($1, $2) "
                    "ON CONFLICT (public_key) DO UPDATE SET public_key = excluded.public_key "
                    "WHERE user_keys.user_id = excluded.user_id RETURNING user_id",
                    2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the key");
    bool mine = PQntuples(r) == 1;
    PQclear(r);
    if (!mine)
        return odp_req_fail(req, ODP_E_ALREADY_EXISTS, NULL,
                            "this key is bound to another account");
    return s_pack_me(req, &who);
}

void identity_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_user_signup, ODP_ALLOW_ANY, s_signup);
    odp_service_route(svc, &odp_def_user_signin, ODP_ALLOW_ANY, s_signin);
    odp_service_route(svc, &odp_def_user_signout, ODP_ALLOW_ANY, s_signout);
    odp_service_route(svc, &odp_def_user_me, ODP_ALLOW_ANY, s_me);
    odp_service_route(svc, &odp_def_user_bind_key, ODP_ALLOW_ANY, s_bind_key);
}
