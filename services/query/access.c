/*  Conditional data (R4.4, R7d): applications, decisions by the resource's own department
    or operations, and the grant check. Every command checks the actor against the object it
    names (OWASP API1): a user sees only its own applications, a department only those for
    its own resources; anything else answers as if the object did not exist. */
#include "query.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  A resource as the public may see it: registered, and not not_open (the registrar's
    entry_visible for a caller with no department). */
#define S_PUBLIC_RESOURCE                                                                          \
    "SELECT r.resource, r.department, r.open_type FROM registrar.resources r "                     \
    "WHERE r.resource = $1 AND r.status = 'registered' AND r.open_type <> 'not_open'"

#define APP_COLS                                                                                   \
    "a.id, a.user_id, a.resource, a.department, a.purpose, a.scope, a.period_from::text, "         \
    "a.period_to::text, a.state, (a.state = 'granted' AND a.expires_at > now()), " Q_TS(           \
        "a.submitted_at") ", a.decided_by, " Q_TS("a.decided_at") ", " Q_TS("a.expires_at") ", "   \
                                                                                            "a."   \
                                                                                            "gran" \
                                                                                            "ted_" \
                                                                                            "scop" \
                                                                                            "e, "  \
                                                                                            "a."   \
                                                                                            "reas" \
                                                                                            "on"

static void s_fill_app(PGresult *r, int i, void *out)
{
    odp_rec_application_t *a = out;
    a->id = q_int(r, i, 0);
    a->user = q_int(r, i, 1);
    a->resource = q_col(r, i, 2);
    a->department = q_col(r, i, 3);
    a->purpose = q_col(r, i, 4);
    a->scope = q_col(r, i, 5);
    a->period_from = q_col(r, i, 6);
    a->period_to = q_col(r, i, 7);
    a->state = q_col(r, i, 8);
    a->active = odp_v_bool(PQgetvalue(r, i, 9)[0] == 't');
    a->submitted_at = q_col(r, i, 10);
    a->decided_by = q_col(r, i, 11);
    a->decided_at = q_col(r, i, 12);
    a->expires_at = q_col(r, i, 13);
    a->granted_scope = q_col(r, i, 14);
    a->reason = q_col(r, i, 15);
}

static int s_pack_app(odp_req_t *req, const char *id)
{
    const char *vals[1] = {id};
    PGresult *r = odp_db_exec(req->db, "SELECT " APP_COLS " FROM applications a WHERE a.id = $1", 1,
                              vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the application");
    odp_rec_application_t rec = {0};
    s_fill_app(r, 0, &rec);
    int rc = odp_encode(&odp_def_rec_application, &rec, req->pk);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode") : 0;
}

typedef struct {
    q_who_t who;
} s_submit_t;

static int s_submit_txn(odp_req_t *req, void *arg)
{
    const odp_application_submit_t *m = req->msg;
    s_submit_t *s = arg;
    const char *rv[1] = {m->resource.str};
    int rl[1] = {(int)m->resource.len};
    PGresult *r = odp_db_exec(req->db, S_PUBLIC_RESOURCE, 1, rv, rl);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the resource");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource",
                            "no catalogued resource open to the public has this code");
    }
    char department[10];
    snprintf(department, sizeof department, "%s", PQgetvalue(r, 0, 1));
    bool conditional = strcmp(PQgetvalue(r, 0, 2), "conditional") == 0;
    PQclear(r);
    if (!conditional)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "resource",
                            "this resource is open without conditions: no application needed");
    char uid[24];
    snprintf(uid, sizeof uid, "%" PRId64, s->who.user);
    const char *vals[7] = {uid,          m->resource.str,    department,      m->purpose.str,
                           m->scope.str, m->period_from.str, m->period_to.str};
    int lens[7] = {-1,
                   (int)m->resource.len,
                   -1,
                   (int)m->purpose.len,
                   (int)m->scope.len,
                   (int)m->period_from.len,
                   (int)m->period_to.len};
    r = odp_db_exec(req->db,
                    "INSERT INTO applications (user_id, resource, department, purpose, scope, "
                    "period_from, period_to) VALUES ($1, $2, $3, $4, $5, $6::text::date, "
                    "$7::text::date) RETURNING id",
                    7, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the application");
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    odp_ev_application_received_t ev = {0};
    ev.id = odp_v_int(strtoll(id, NULL, 10));
    ev.resource = m->resource;
    ev.department = odp_v_str(department);
    if (odp_outbox_append(req->outbox, &odp_def_ev_application_received, &ev, s->who.str) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return s_pack_app(req, id);
}

static int s_submit(odp_req_t *req)
{
    const odp_application_submit_t *m = req->msg;
    s_submit_t s;
    if (q_user(req, &m->token, &s.who) < 0)
        return -1;
    return odp_req_txn(req, s_submit_txn, &s);
}

static int s_list(odp_req_t *req)
{
    const odp_application_list_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    if (who.kind == Q_ANONYMOUS)
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, "token",
                            "sign in first: applications are listed to their applicant");
    static const char *const states[] = {"submitted", "granted", "refused", NULL};
    bool state_ok = !m->state.present;
    for (const char *const *s = states; *s && !state_ok; s++)
        state_ok = odp_v_eq(&m->state, *s);
    if (!state_ok)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "state",
                            "state is one of submitted, granted, refused");
    /*  The object filter comes from the actor, never from the request: a user's own, a
        department's own; operations may narrow to a department. */
    char uid[24], limit[24];
    snprintf(uid, sizeof uid, "%" PRId64, who.user);
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 1000);
    const char *dept = who.kind == Q_PROVIDER  ? who.department
                       : m->department.present ? m->department.str
                                               : NULL;
    const char *vals[5] = {who.kind == Q_USER ? uid : NULL, dept,
                           m->state.present ? m->state.str : NULL,
                           m->resource.present ? m->resource.str : NULL, limit};
    int lens[5] = {-1, who.kind == Q_PROVIDER ? -1 : (int)m->department.len, (int)m->state.len,
                   (int)m->resource.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " APP_COLS " FROM applications a WHERE "
                              "($1::bigint IS NULL OR a.user_id = $1) AND ($2::text IS NULL OR "
                              "a.department = $2) AND ($3::text IS NULL OR a.state = $3) AND "
                              "($4::text IS NULL OR a.resource = $4) ORDER BY a.id LIMIT $5",
                              5, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the applications");
    odp_rec_application_t rec;
    return q_pack_list(req, r, &odp_def_rec_application, s_fill_app, &rec, sizeof rec);
}

typedef struct {
    q_who_t who;
} s_decide_t;

static int s_decide_txn(odp_req_t *req, void *arg)
{
    const odp_application_decide_t *m = req->msg;
    s_decide_t *d = arg;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, m->id.i);
    const char *kv[1] = {id};
    PGresult *r =
        odp_db_exec(req->db, "SELECT department, state FROM applications WHERE id = $1 FOR UPDATE",
                    1, kv, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the application");
    bool mine = PQntuples(r) == 1 && (d->who.kind == Q_OPERATIONS ||
                                      strcmp(PQgetvalue(r, 0, 0), d->who.department) == 0);
    char state[17] = "";
    if (mine)
        snprintf(state, sizeof state, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!mine)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "id",
                            "no application %" PRId64 " for a resource of yours", m->id.i);
    if (strcmp(state, "submitted") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "id",
                            "application %" PRId64 " is decided already (%s)", m->id.i, state);
    bool grant = m->grant.b;
    const char *vals[6] = {id,
                           grant ? "granted" : "refused",
                           d->who.str,
                           grant ? m->expires_at.str : NULL,
                           grant && m->scope.present ? m->scope.str : NULL,
                           m->reason.present ? m->reason.str : NULL};
    int lens[6] = {-1, -1, -1, (int)m->expires_at.len, (int)m->scope.len, (int)m->reason.len};
    r = odp_db_exec(req->db,
                    "UPDATE applications SET state = $2, decided_by = $3, decided_at = now(), "
                    "expires_at = $4::text::timestamptz, granted_scope = CASE WHEN $2 = "
                    "'granted' THEN coalesce($5, scope) END, reason = $6 WHERE id = $1 "
                    "RETURNING resource, department, "
                    "round(extract(epoch FROM decided_at - submitted_at))::bigint, "
                    "expires_at > now()",
                    6, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the decision");
    if (grant && PQgetvalue(r, 0, 3)[0] != 't') {
        PQclear(r);
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "expires_at",
                            "a grant must expire in the future");
    }
    odp_ev_application_decided_t ev = {0};
    ev.id = m->id;
    ev.resource = q_col(r, 0, 0);
    ev.department = q_col(r, 0, 1);
    ev.granted = odp_v_bool(grant);
    ev.response_s = q_int(r, 0, 2);
    int64_t seq = odp_outbox_append(req->outbox, &odp_def_ev_application_decided, &ev, d->who.str);
    PQclear(r);
    if (seq < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return s_pack_app(req, id);
}

static int s_decide(odp_req_t *req)
{
    const odp_application_decide_t *m = req->msg;
    s_decide_t d;
    if (q_who(req, NULL, &d.who) < 0)
        return -1;
    if (d.who.kind == Q_ANONYMOUS)
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, NULL,
                            "applications are decided with a department's or operations' key");
    if (d.who.kind != Q_PROVIDER && d.who.kind != Q_OPERATIONS)
        return odp_req_fail(req, ODP_E_FORBIDDEN, NULL,
                            "applications are decided by the resource's department or operations");
    if (m->grant.b && !m->expires_at.present)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "expires_at",
                            "a grant needs its expiry (expires_at)");
    if (!m->grant.b && !m->reason.present)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "reason", "a refusal needs its reason");
    if (!m->grant.b && (m->expires_at.present || m->scope.present))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, m->scope.present ? "scope" : "expires_at",
                            "a refusal has no expiry and no scope");
    return odp_req_txn(req, s_decide_txn, &d);
}

/*  Whether the caller may read a resource's rows (query.may_read), and why. Counts a view
    of the resource. */
static int s_check(odp_req_t *req)
{
    const odp_access_check_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    char uid[24];
    snprintf(uid, sizeof uid, "%" PRId64, who.user);
    const char *vals[2] = {m->resource.str, who.kind == Q_USER ? uid : NULL};
    int lens[2] = {(int)m->resource.len, -1};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT r.department, r.open_type, may_read($2::bigint, r.resource), "
        "(SELECT " Q_TS(
            "max(a.expires_at)") " FROM applications a WHERE a.user_id = $2 AND "
                                 "a.resource = r.resource AND a.state = 'granted' AND a.expires_at "
                                 "> now()), "
                                 "EXISTS (SELECT 1 FROM applications a WHERE a.user_id = $2 AND "
                                 "a.resource = r.resource "
                                 "AND a.state = 'granted') FROM registrar.resources r WHERE "
                                 "r.resource = $1 AND "
                                 "r.status = 'registered' AND r.open_type <> 'not_open'",
        2, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the resource");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource",
                            "no catalogued resource open to the public has this code");
    }
    char dept[10];
    snprintf(dept, sizeof dept, "%s", PQgetvalue(r, 0, 0));
    const char *open_type = PQgetvalue(r, 0, 1);
    bool may = PQgetvalue(r, 0, 2)[0] == 't';
    bool had = PQgetvalue(r, 0, 4)[0] == 't';
    const char *why = may && strcmp(open_type, "unconditional") == 0 ? "open to anyone"
                      : may                                          ? "granted"
                      : who.kind != Q_USER ? "conditional: sign in and apply (application.submit)"
                      : had                ? "conditional: the grant has expired; apply again"
                                           : "conditional: apply first (application.submit)";
    odp_rep_access_t rep = {0};
    rep.resource = m->resource;
    rep.open_type = q_col(r, 0, 1);
    rep.may_read = odp_v_bool(may);
    rep.why = odp_v_str(why);
    rep.expires_at = q_col(r, 0, 3);
    int rc = odp_encode(&odp_def_rep_access, &rep, req->pk);
    PQclear(r);
    if (rc < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode");
    char res[33];
    q_guard_count(((q_ctx_t *)req->ctx)->guard, &who, odp_v_cstr(&m->resource, res, sizeof res),
                  dept, Q_VIEW);
    return 0;
}

void access_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_application_submit, ODP_ALLOW_ANY, s_submit);
    odp_service_route(svc, &odp_def_application_list, ODP_ALLOW_ANY, s_list);
    odp_service_route(svc, &odp_def_application_decide, ODP_ALLOW_ANY, s_decide);
    odp_service_route(svc, &odp_def_access_check, ODP_ALLOW_ANY, s_check);
}
