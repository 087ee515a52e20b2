/*  Keeping plans and catalogue entries up to date (R4.2c, R5.3, R5.4).

    plan.update changes a plan that is still planned; plan.cancel withdraws it with a
    reason (it is then never overdue and cannot be catalogued). catalog.update changes an
    entry's describing metadata in any state and dates it (updated_on = today); what makes
    up its identity - department, title, domain, content kind, delivery form, the plan it
    realises - is fixed by its resource code and cataloguing, and a different resource is
    a new entry. Each change is one transaction with its event, which names the fields
    given. The provider department acts on its own plans and entries, operations on all. */
#include "catalogue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_NAMES 16

/*  The names of the fields a request gives, as an event's list of text. */
typedef struct {
    msgpack_object items[S_MAX_NAMES];
    msgpack_object list;
} s_names_t;

static void s_name(s_names_t *n, const odp_val_t *v, const char *name)
{
    uint32_t i = n->list.via.array.size;
    if (!v->present || i == S_MAX_NAMES)
        return;
    n->items[i].type = MSGPACK_OBJECT_STR;
    n->items[i].via.str.ptr = name;
    n->items[i].via.str.size = (uint32_t)strlen(name);
    n->list.via.array.size = i + 1;
}

static odp_val_t s_names_val(s_names_t *n)
{
    n->list.type = MSGPACK_OBJECT_ARRAY;
    n->list.via.array.ptr = n->items;
    return (odp_val_t){.present = true, .obj = &n->list};
}

static int s_nothing_given(odp_req_t *req, const s_names_t *n, const char *what)
{
    if (n->list.via.array.size > 0)
        return 0;
    return odp_req_fail(req, ODP_E_INVALID_VALUE, NULL,
                        "name at least one field of the %s to change", what);
}

/*  ---- plans ------------------------------------------------------------------------------ */

/*  In a transaction: lock plan id until commit; it must be one the actor may see (404),
    of a department it may act for (403), and still planned (409). */
static int s_plan_lock(odp_req_t *req, const odp_val_t *id, char dept[CAT_DEPT_SIZE])
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%" PRId64, id->i);
    const char *vals[3] = {idtext};
    cat_viewer(req, vals + 1);
    PGresult *r = odp_db_exec(req->db,
                              "SELECT p.department, p.cancelled_at IS NOT NULL, r.resource IS NOT "
                              "NULL, entry_visible($2, $3, p.department, r.status, r.open_type) "
                              "FROM plans p" CAT_PLAN_JOIN " WHERE p.id = $1::bigint "
                              "FOR UPDATE OF p",
                              3, vals, NULL);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the plan");
    bool visible = PQntuples(r) == 1 && PQgetvalue(r, 0, 3)[0] == 't';
    bool cancelled = visible && PQgetvalue(r, 0, 1)[0] == 't';
    bool catalogued = visible && PQgetvalue(r, 0, 2)[0] == 't';
    if (visible)
        snprintf(dept, CAT_DEPT_SIZE, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!visible)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "id", "there is no plan %s", idtext);
    if (!registrar_may_act(req, dept))
        return odp_req_fail(req, ODP_E_FORBIDDEN, "id", "plan %s belongs to department %s", idtext,
                            dept);
    if (cancelled || catalogued)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "id",
                            "plan %s is %s; only a planned plan can be changed or cancelled",
                            idtext, cancelled ? "cancelled" : "catalogued");
    return 0;
}

static int s_plan_update(odp_req_t *req)
{
    const odp_plan_update_t *m = req->msg;
    const char *codes[4];
    if (cat_code(req, &odp_cl_domain, &m->domain, "domain", &codes[0]) < 0 ||
        cat_code(req, &odp_cl_content_kind, &m->content_kind, "content_kind", &codes[1]) < 0 ||
        cat_code(req, &odp_cl_open_type, &m->open_type, "open_type", &codes[2]) < 0 ||
        cat_code(req, &odp_cl_update_cycle, &m->update_cycle, "update_cycle", &codes[3]) < 0 ||
        cat_date(req, &m->due_on, "due_on") < 0)
        return -1;
    s_names_t names = {0};
    s_name(&names, &m->title, "title");
    s_name(&names, &m->summary, "summary");
    s_name(&names, &m->domain, "domain");
    s_name(&names, &m->content_kind, "content_kind");
    s_name(&names, &m->open_type, "open_type");
    s_name(&names, &m->update_cycle, "update_cycle");
    s_name(&names, &m->due_on, "due_on");
    s_name(&names, &m->maintainer, "maintainer");
    char dept[CAT_DEPT_SIZE], id[24];
    if (s_nothing_given(req, &names, "plan") < 0)
        return -1;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the plan");
    if (s_plan_lock(req, &m->id, dept) < 0)
        return -1;
    snprintf(id, sizeof id, "%" PRId64, m->id.i);
    const char *vals[10] = {
        id,       m->title.str, m->summary.str, codes[0],          codes[1],
        codes[2], codes[3],     m->due_on.str,  m->maintainer.str, req->actor_str};
    int lens[10] = {-1, (int)m->title.len,  (int)m->summary.len,    -1, -1, -1,
                    -1, (int)m->due_on.len, (int)m->maintainer.len, -1};
    PGresult *r = odp_db_exec(
        req->db,
        "WITH p AS (UPDATE plans SET title = coalesce($2, title), summary = coalesce($3, summary), "
        "domain = coalesce($4, domain), content_kind = coalesce($5, content_kind), "
        "open_type = coalesce($6, open_type), update_cycle = coalesce($7, update_cycle), "
        "due_on = coalesce($8::text::date, due_on), maintainer = coalesce($9, maintainer), "
        "updated_by = $10, updated_at = now() WHERE id = $1::bigint RETURNING *) "
        "SELECT " CAT_PLAN_COLS " FROM p" CAT_PLAN_JOIN,
        10, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0 || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the plan");
    odp_ev_catalog_plan_updated_t ev = {0};
    ev.id = m->id;
    ev.department = odp_v_str(dept);
    ev.fields = s_names_val(&names);
    if (cat_event(req, &odp_def_ev_catalog_plan_updated, &ev) < 0 ||
        cat_commit(req, "the plan") < 0) {
        PQclear(r);
        return -1;
    }
    return cat_reply_plan(req, r);
}

static int s_plan_cancel(odp_req_t *req)
{
    const odp_plan_cancel_t *m = req->msg;
    char dept[CAT_DEPT_SIZE], id[24];
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the plan");
    if (s_plan_lock(req, &m->id, dept) < 0)
        return -1;
    snprintf(id, sizeof id, "%" PRId64, m->id.i);
    const char *vals[3] = {id, m->reason.str, req->actor_str};
    int lens[3] = {-1, (int)m->reason.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "WITH p AS (UPDATE plans SET cancelled_reason = $2, "
                              "cancelled_by = $3, cancelled_at = now() WHERE id = $1::bigint "
                              "RETURNING *) SELECT " CAT_PLAN_COLS " FROM p" CAT_PLAN_JOIN,
                              3, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0 || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the plan");
    odp_ev_catalog_plan_cancelled_t ev = {0};
    ev.id = m->id;
    ev.department = odp_v_str(dept);
    ev.reason = m->reason;
    if (cat_event(req, &odp_def_ev_catalog_plan_cancelled, &ev) < 0 ||
        cat_commit(req, "the plan") < 0) {
        PQclear(r);
        return -1;
    }
    return cat_reply_plan(req, r);
}

/*  ---- catalogue entries ------------------------------------------------------------------ */

static int s_catalog_write(odp_req_t *req, const odp_catalog_update_t *m,
                           const char *const codes[2], const char *keywords,
                           const cat_resource_t *res, s_names_t *names)
{
    const char *vals[9] = {m->resource.str, m->summary.str,           keywords,
                           codes[0],        m->access_conditions.str, codes[1],
                           m->contact.str,  m->location.str,          m->endpoint.str};
    int lens[9] = {(int)m->resource.len,
                   (int)m->summary.len,
                   -1,
                   -1,
                   (int)m->access_conditions.len,
                   -1,
                   (int)m->contact.len,
                   (int)m->location.len,
                   (int)m->endpoint.len};
    PGresult *r = odp_db_exec(
        req->db,
        "UPDATE resources SET summary = coalesce($2, summary), keywords = coalesce($3::text[], "
        "keywords), open_type = coalesce($4, open_type), access_conditions = coalesce($5, "
        "access_conditions), update_cycle = coalesce($6, update_cycle), contact = coalesce($7, "
        "contact), location = coalesce($8, location), endpoint = coalesce($9, endpoint), "
        "updated_on = current_date WHERE resource = $1 RETURNING " CAT_COLS,
        9, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0 || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the catalogue entry");
    odp_ev_catalog_updated_t ev = {0};
    ev.resource = m->resource;
    ev.department = odp_v_str(res->department);
    ev.fields = s_names_val(names);
    if (cat_event(req, &odp_def_ev_catalog_updated, &ev) < 0 ||
        cat_commit(req, "the catalogue entry") < 0) {
        PQclear(r);
        return -1;
    }
    return cat_reply_catalog(req, r);
}

static int s_catalog_update(odp_req_t *req)
{
    const odp_catalog_update_t *m = req->msg;
    const char *codes[2];
    odp_val_t words[20];
    size_t nwords = 0;
    if (cat_code(req, &odp_cl_open_type, &m->open_type, "open_type", &codes[0]) < 0 ||
        cat_code(req, &odp_cl_update_cycle, &m->update_cycle, "update_cycle", &codes[1]) < 0 ||
        (m->keywords.present && cat_keywords(req, &m->keywords, words, &nwords) < 0))
        return -1;
    s_names_t names = {0};
    s_name(&names, &m->summary, "summary");
    s_name(&names, &m->keywords, "keywords");
    s_name(&names, &m->open_type, "open_type");
    s_name(&names, &m->access_conditions, "access_conditions");
    s_name(&names, &m->update_cycle, "update_cycle");
    s_name(&names, &m->contact, "contact");
    s_name(&names, &m->location, "location");
    s_name(&names, &m->endpoint, "endpoint");
    if (s_nothing_given(req, &names, "entry") < 0)
        return -1;
    cat_resource_t res;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the catalogue entry");
    if (cat_resource_lock(req, &m->resource, &res) < 0 ||
        cat_entry_rules(req, res.delivery_form, codes[0] ? codes[0] : res.open_type, &m->endpoint,
                        res.has_endpoint, res.has_conditions || m->access_conditions.present) < 0)
        return -1;
    char *keywords = m->keywords.present ? rows_array_literal(words, nwords) : NULL;
    if (m->keywords.present && !keywords)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    int rc = s_catalog_write(req, m, codes, keywords, &res, &names);
    free(keywords);
    return rc;
}

void maintenance_routes(odp_service_t *svc)
{
    const int owner = ODP_ALLOW_OPERATIONS | ODP_ALLOW_PROVIDER;
    odp_service_route(svc, &odp_def_plan_update, owner, s_plan_update);
    odp_service_route(svc, &odp_def_plan_cancel, owner, s_plan_cancel);
    odp_service_route(svc, &odp_def_catalog_update, owner, s_catalog_update);
}
