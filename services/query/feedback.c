/*  Feedback (R4.3c, R7d, R9e): comments, error reports (纠错), data requests, ratings and
    apps built on the data. Each item is routed to the department responsible for its
    resource (a data request may name a department, or go to operations), and keeps when it
    was received, first answered and resolved, so response times can be measured. A user
    sees its own items, a department those routed to it, operations all. */
#include "query.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FB_COLS                                                                                    \
    "f.id, f.kind, f.user_id, f.resource, f.department, f.title, f.body, f.rating, f.url, "        \
    "f.state, " Q_TS("f.received_at") ", " Q_TS("f.answered_at") ", " Q_TS(                        \
        "f.resolved_at") ", (SELECT count(*) FROM feedback_replies x WHERE x.feedback = f.id)"

static void s_fill(PGresult *r, int i, void *out)
{
    odp_rec_feedback_t *f = out;
    f->id = q_int(r, i, 0);
    f->kind = q_col(r, i, 1);
    f->user = q_int(r, i, 2);
    f->resource = q_col(r, i, 3);
    f->department = q_col(r, i, 4);
    f->title = q_col(r, i, 5);
    f->text = q_col(r, i, 6);
    f->rating = q_int(r, i, 7);
    f->url = q_col(r, i, 8);
    f->state = q_col(r, i, 9);
    f->received_at = q_col(r, i, 10);
    f->answered_at = q_col(r, i, 11);
    f->resolved_at = q_col(r, i, 12);
    f->replies = q_int(r, i, 13);
}

/*  One item with its thread of replies. */
static int s_pack_item(odp_req_t *req, const char *id)
{
    const char *vals[1] = {id};
    PGresult *r =
        odp_db_exec(req->db, "SELECT " FB_COLS " FROM feedback f WHERE f.id = $1", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the feedback");
    PGresult *t = odp_db_exec(req->db,
                              "SELECT author, body, " Q_TS("at") " FROM feedback_replies "
                                                                 "WHERE feedback = $1 ORDER BY id",
                              1, vals, NULL);
    if (!t || PQresultStatus(t) != PGRES_TUPLES_OK) {
        PQclear(r);
        return odp_req_db_fail(req, t, "the replies");
    }
    msgpack_sbuffer thread;
    msgpack_sbuffer_init(&thread);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &thread, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, (size_t)PQntuples(t));
    for (int i = 0; rc == 0 && i < PQntuples(t); i++) {
        odp_rec_feedback_reply_t rep = {0};
        rep.author = q_col(t, i, 0);
        rep.text = q_col(t, i, 1);
        rep.at = q_col(t, i, 2);
        rc = odp_encode(&odp_def_rec_feedback_reply, &rep, &pk);
    }
    odp_rec_feedback_t rec = {0};
    s_fill(r, 0, &rec);
    rec.thread = odp_v_raw(thread.data, thread.size);
    if (rc == 0)
        rc = odp_encode(&odp_def_rec_feedback, &rec, req->pk);
    msgpack_sbuffer_destroy(&thread);
    PQclear(t);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode") : 0;
}

typedef struct {
    q_who_t who;
    char department[10]; /* "" : operations */
} s_ctx_t;

static int s_submit_txn(odp_req_t *req, void *arg)
{
    const odp_feedback_submit_t *m = req->msg;
    s_ctx_t *s = arg;
    char uid[24], rating[8];
    snprintf(uid, sizeof uid, "%" PRId64, s->who.user);
    snprintf(rating, sizeof rating, "%" PRId64, m->rating.i);
    const char *vals[8] = {m->kind.str,
                           uid,
                           m->resource.present ? m->resource.str : NULL,
                           s->department[0] ? s->department : NULL,
                           m->title.present ? m->title.str : NULL,
                           m->text.present ? m->text.str : NULL,
                           m->rating.present ? rating : NULL,
                           m->url.present ? m->url.str : NULL};
    int lens[8] = {(int)m->kind.len, -1, (int)m->resource.len, -1, (int)m->title.len,
                   (int)m->text.len, -1, (int)m->url.len};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO feedback (kind, user_id, resource, department, title, "
                              "body, rating, url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                              "ON CONFLICT DO NOTHING RETURNING id",
                              8, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the feedback");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_ALREADY_EXISTS, "resource",
                            "you have rated this resource already");
    }
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    odp_ev_feedback_received_t ev = {0};
    ev.id = odp_v_int(strtoll(id, NULL, 10));
    ev.kind = m->kind;
    ev.department = odp_v_str(s->department[0] ? s->department : NULL);
    ev.resource = m->resource;
    if (odp_outbox_append(req->outbox, &odp_def_ev_feedback_received, &ev, s->who.str) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return s_pack_item(req, id);
}

/*  Which fields each kind needs, before anything is looked up. */
static int s_shape(odp_req_t *req, const odp_feedback_submit_t *m)
{
    static const char *const kinds[] = {"comment", "report", "request", "rating", "app", NULL};
    bool known = false;
    for (const char *const *k = kinds; *k && !known; k++)
        known = odp_v_eq(&m->kind, *k);
    if (!known)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "kind",
                            "kind is one of comment, report, request, rating, app");
    bool rating = odp_v_eq(&m->kind, "rating"), app = odp_v_eq(&m->kind, "app");
    bool request = odp_v_eq(&m->kind, "request");
    if (!request && !m->resource.present)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "resource",
                            "a comment, report, rating or app names its resource");
    if (request && m->resource.present && m->department.present)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "department",
                            "a resource names its department; give one or the other");
    if (!request && m->department.present)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "department",
                            "feedback on a resource goes to the resource's department");
    if (rating != m->rating.present)
        return odp_req_fail(req, rating ? ODP_E_MISSING_FIELD : ODP_E_INVALID_VALUE, "rating",
                            "a rating (1 to 5) belongs to kind rating, and only to it");
    if (!rating && !app && !m->text.present)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "text", "say what it is about (text)");
    if (app && (!m->title.present || !m->url.present))
        return odp_req_fail(req, ODP_E_MISSING_FIELD, m->title.present ? "url" : "title",
                            "an app is shown with its title and url");
    if (!app && m->url.present)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "url", "only an app has a url");
    return 0;
}

static int s_submit(odp_req_t *req)
{
    const odp_feedback_submit_t *m = req->msg;
    s_ctx_t s = {0};
    if (q_user(req, &m->token, &s.who) < 0 || s_shape(req, m) < 0)
        return -1;
    PGresult *r = NULL;
    if (m->resource.present) {
        const char *vals[1] = {m->resource.str};
        int lens[1] = {(int)m->resource.len};
        r = odp_db_exec(req->db,
                        "SELECT department FROM registrar.resources WHERE resource = $1 AND "
                        "status = 'registered' AND open_type <> 'not_open'",
                        1, vals, lens);
    } else if (m->department.present) {
        const char *vals[1] = {m->department.str};
        int lens[1] = {(int)m->department.len};
        r = odp_db_exec(req->db,
                        "SELECT code FROM registrar.departments WHERE code = $1 AND active", 1,
                        vals, lens);
    }
    if (r) {
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the department");
        bool found = PQntuples(r) == 1;
        if (found)
            snprintf(s.department, sizeof s.department, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!found)
            return odp_req_fail(
                req, ODP_E_NOT_FOUND, m->resource.present ? "resource" : "department",
                m->resource.present ? "no catalogued resource open to the public has this code"
                                    : "no active department has this code");
    } else if (m->resource.present || m->department.present) {
        return odp_req_db_fail(req, NULL, "the department");
    }
    return odp_req_txn(req, s_submit_txn, &s);
}

/*  The item, if the actor may see it: its author, its department, operations. */
static int s_visible(odp_req_t *req, const q_who_t *who, int64_t id, char *state, size_t size,
                     char *department, char *kind, int64_t *author, bool lock)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *vals[1] = {ids};
    PGresult *r = odp_db_exec(req->db,
                              lock ? "SELECT state, department, kind, user_id FROM feedback "
                                     "WHERE id = $1 FOR UPDATE"
                                   : "SELECT state, department, kind, user_id FROM feedback "
                                     "WHERE id = $1",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the feedback");
    bool ok = false;
    if (PQntuples(r) == 1) {
        *author = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        snprintf(state, size, "%s", PQgetvalue(r, 0, 0));
        snprintf(department, 10, "%s", PQgetvalue(r, 0, 1));
        snprintf(kind, 17, "%s", PQgetvalue(r, 0, 2));
        ok = who->kind == Q_OPERATIONS || (who->kind == Q_USER && who->user == *author) ||
             (who->kind == Q_PROVIDER && strcmp(department, who->department) == 0);
    }
    PQclear(r);
    if (!ok)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "id", "no feedback %" PRId64 " of yours", id);
    return 0;
}

static int s_reply_txn(odp_req_t *req, void *arg)
{
    const odp_feedback_reply_t *m = req->msg;
    s_ctx_t *s = arg;
    char state[17], department[10], kind[17];
    int64_t author;
    if (s_visible(req, &s->who, m->id.i, state, sizeof state, department, kind, &author, true) < 0)
        return -1;
    bool staff = s->who.kind != Q_USER;
    bool resolve = m->resolve.present && m->resolve.b;
    if (resolve && !staff)
        return odp_req_fail(req, ODP_E_FORBIDDEN, "resolve",
                            "the department or operations resolves feedback");
    if (strcmp(state, "resolved") == 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "id",
                            "feedback %" PRId64 " is resolved; submit a new item", m->id.i);
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, m->id.i);
    const char *vals[3] = {ids, s->who.str, m->text.str};
    int lens[3] = {-1, -1, (int)m->text.len};
    if (odp_db_cmd(req->db,
                   "INSERT INTO feedback_replies (feedback, author, body) VALUES ($1, $2, $3)", 3,
                   vals, lens) < 0)
        return odp_req_db_fail(req, NULL, "the reply");
    if (!staff)
        return s_pack_item(req, ids);
    /*  The first answer by the department or operations times the response; resolving
        times the resolution. */
    const char *uv[2] = {ids, resolve ? "t" : "f"};
    PGresult *r = odp_db_exec(
        req->db,
        "UPDATE feedback SET answered_at = coalesce(answered_at, now()), "
        "resolved_at = CASE WHEN $2::boolean THEN now() END, "
        "state = CASE WHEN $2::boolean THEN 'resolved' ELSE 'answered' END WHERE id = $1 "
        "RETURNING round(extract(epoch FROM answered_at - received_at))::bigint, "
        "round(extract(epoch FROM resolved_at - received_at))::bigint",
        2, uv, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the feedback");
    int rc = 0;
    if (strcmp(state, "received") == 0) {
        odp_ev_feedback_answered_t ev = {0};
        ev.id = m->id;
        ev.kind = odp_v_str(kind);
        ev.department = odp_v_str(department[0] ? department : NULL);
        ev.response_s = q_int(r, 0, 0);
        if (odp_outbox_append(req->outbox, &odp_def_ev_feedback_answered, &ev, s->who.str) < 0)
            rc = -1;
    }
    if (rc == 0 && resolve) {
        odp_ev_feedback_resolved_t ev = {0};
        ev.id = m->id;
        ev.kind = odp_v_str(kind);
        ev.department = odp_v_str(department[0] ? department : NULL);
        ev.resolve_s = q_int(r, 0, 1);
        if (odp_outbox_append(req->outbox, &odp_def_ev_feedback_resolved, &ev, s->who.str) < 0)
            rc = -1;
    }
    PQclear(r);
    if (rc < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return s_pack_item(req, ids);
}

static int s_reply(odp_req_t *req)
{
    const odp_feedback_reply_t *m = req->msg;
    s_ctx_t s = {0};
    if (q_who(req, &m->token, &s.who) < 0)
        return -1;
    if (s.who.kind == Q_ANONYMOUS)
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, "token", "sign in first");
    return odp_req_txn(req, s_reply_txn, &s);
}

static int s_get(odp_req_t *req)
{
    const odp_feedback_get_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    if (who.kind == Q_ANONYMOUS)
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, "token", "sign in first");
    char state[17], department[10], kind[17], ids[24];
    int64_t author;
    if (s_visible(req, &who, m->id.i, state, sizeof state, department, kind, &author, false) < 0)
        return -1;
    snprintf(ids, sizeof ids, "%" PRId64, m->id.i);
    return s_pack_item(req, ids);
}

static int s_list(odp_req_t *req)
{
    const odp_feedback_list_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    if (who.kind == Q_ANONYMOUS)
        return odp_req_fail(req, ODP_E_UNAUTHENTICATED, "token", "sign in first");
    static const char *const states[] = {"received", "answered", "resolved", NULL};
    bool state_ok = !m->state.present;
    for (const char *const *st = states; *st && !state_ok; st++)
        state_ok = odp_v_eq(&m->state, *st);
    if (!state_ok)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "state",
                            "state is one of received, answered, resolved");
    char uid[24], limit[24];
    snprintf(uid, sizeof uid, "%" PRId64, who.user);
    snprintf(limit, sizeof limit, "%" PRId64, m->limit.present ? m->limit.i : 1000);
    const char *dept = who.kind == Q_PROVIDER  ? who.department
                       : m->department.present ? m->department.str
                                               : NULL;
    const char *vals[5] = {who.kind == Q_USER ? uid : NULL, dept,
                           m->kind.present ? m->kind.str : NULL,
                           m->state.present ? m->state.str : NULL, limit};
    int lens[5] = {-1, who.kind == Q_PROVIDER ? -1 : (int)m->department.len, (int)m->kind.len,
                   (int)m->state.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " FB_COLS " FROM feedback f WHERE "
                              "($1::bigint IS NULL OR f.user_id = $1) AND ($2::text IS NULL OR "
                              "f.department = $2) AND ($3::text IS NULL OR f.kind = $3) AND "
                              "($4::text IS NULL OR f.state = $4) ORDER BY f.id LIMIT $5",
                              5, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the feedback");
    odp_rec_feedback_t rec;
    return q_pack_list(req, r, &odp_def_rec_feedback, s_fill, &rec, sizeof rec);
}

void feedback_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_feedback_submit, ODP_ALLOW_ANY, s_submit);
    odp_service_route(svc, &odp_def_feedback_reply, ODP_ALLOW_ANY, s_reply);
    odp_service_route(svc, &odp_def_feedback_get, ODP_ALLOW_ANY, s_get);
    odp_service_route(svc, &odp_def_feedback_list, ODP_ALLOW_ANY, s_list);
}
