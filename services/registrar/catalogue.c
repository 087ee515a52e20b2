/*  Planning and the open data catalogue (R4.2, R5.3, R5.4, R5.5a, R5.5c, R7a, R8).

    A provider department plans what it will open (plan.add), then catalogues it
    (catalog.add: 编目), which gives the resource its code (docs/identifiers.md). A dataset
    is described by one data dictionary per table (dictionary.set, R8.3a/b), kept as
    numbered revisions. The provider then asks for registration and operations registers
    or refuses it; the transfer rules that pushes must follow are operations' too (R5.5a).
    Services and apps are entries too, reached at their endpoint (R7a, R8.2b, R8.3d).

    Every code-list value is stored as its code (a Chinese label is accepted and
    normalised). A provider acts only on its own department's entries; operations and the
    owning department see an entry in every state, everyone else only once it is
    registered and open (SQL entry_visible(), migration 009). Everything that changes
    state does it in one transaction together with its event. */
#include "catalogue.h"

#include <inttypes.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  ---- shared checks (catalogue.h) ------------------------------------------------------- */

int cat_code(odp_req_t *req, const odp_codelist_t *cl, const odp_val_t *v, const char *field,
             const char **code)
{
    *code = NULL;
    if (!v->present)
        return 0;
    *code = odp_code_find(cl, v->str, v->len);
    if (*code)
        return 0;
    char choices[512];
    return odp_req_fail(req, ODP_E_INVALID_VALUE, field, "%s must be one of: %s (or its label)",
                        field, odp_code_choices(cl, choices, sizeof choices));
}

/*  1-based position of code in cl: the resource code's classification digits. */
static size_t s_code_pos(const odp_codelist_t *cl, const char *code)
{
    for (size_t i = 0; i < cl->n; i++)
        if (strcmp(cl->codes[i].code, code) == 0)
            return i + 1;
    return 0;
}

int cat_date(odp_req_t *req, const odp_val_t *v, const char *field)
{
    if (!v->present || rows_valid_date(v))
        return 0;
    return odp_req_fail(req, ODP_E_INVALID_VALUE, field, "%s must be a calendar date, YYYY-MM-DD",
                        field);
}

int cat_exec_ok(PGresult *r, ExecStatusType want)
{
    return r && PQresultStatus(r) == want ? 0 : -1;
}

int cat_event(odp_req_t *req, const odp_msgdef_t *def, void *ev)
{
    if (odp_outbox_append(req->outbox, def, ev, req->actor_str) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    return 0;
}

int cat_commit(odp_req_t *req, const char *what)
{
    return odp_db_commit(req->db) < 0 ? odp_req_db_fail(req, NULL, what) : 0;
}

void cat_viewer(const odp_req_t *req, const char *vals[2])
{
    vals[0] = req->actor->kind;
    vals[1] = req->actor->id;
}

/*  An absolute http or https URL with a host name or address, an optional port and no
    user name, space or control character. Group 5 is the port. */
#define S_URL                                                                                      \
    "^[hH][tT][tT][pP][sS]?://"                                                                    \
    "([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"          \
    "|\\[[0-9A-Fa-f:.]+\\])"                                                                       \
    "(:[0-9]{1,5})?([/?#][^[:space:][:cntrl:]]*)?$"

static bool s_http_url(const odp_val_t *v)
{
    char url[512];
    regex_t re;
    regmatch_t m[6];
    if (v->len >= sizeof url || regcomp(&re, S_URL, REG_EXTENDED) != 0)
        return false;
    bool ok = regexec(&re, odp_v_cstr(v, url, sizeof url), 6, m, 0) == 0;
    regfree(&re);
    if (ok && m[5].rm_so >= 0) {
        long port = strtol(url + m[5].rm_so + 1, NULL, 10);
        ok = port >= 1 && port <= 65535;
    }
    return ok;
}

int cat_entry_rules(odp_req_t *req, const char *delivery_form, const char *open_type,
                    const odp_val_t *given, bool stored, bool has_conditions)
{
    bool file = strcmp(delivery_form, "dataset_file") == 0;
    if (given->present && file)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "endpoint",
                            "a dataset_file entry has pushed content, not an endpoint; its "
                            "location says where it is kept");
    if (given->present && !s_http_url(given))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "endpoint",
                            "endpoint must be an http:// or https:// URL with a host, e.g. "
                            "https://data.example.gov.cn/api/air");
    if (!file && !given->present && !stored)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "endpoint",
                            "an entry delivered as %s is reached at its endpoint: give its "
                            "http(s) URL",
                            delivery_form);
    if (strcmp(open_type, "conditional") == 0 && !has_conditions)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "access_conditions",
                            "a conditional opening must state its access conditions");
    return 0;
}

/*  The department a plan or catalogue entry is for. A provider acts for itself (naming
    another department is 403) and may leave it out; operations must name it. Either way
    it must be registered and active (404). */
static int s_acting_department(odp_req_t *req, const odp_val_t *given, char dept[CAT_DEPT_SIZE])
{
    if (strcmp(req->actor->kind, "provider") == 0) {
        if (given->present && !odp_v_eq(given, req->actor->id))
            return odp_req_fail(req, ODP_E_FORBIDDEN, "department",
                                "department %s acts only for itself", req->actor->id);
        snprintf(dept, CAT_DEPT_SIZE, "%s", req->actor->id);
    } else if (!given->present) {
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "department",
                            "operations must name the department");
    } else {
        odp_v_cstr(given, dept, CAT_DEPT_SIZE);
    }
    const char *vals[1] = {dept};
    PGresult *r =
        odp_db_exec(req->db, "SELECT 1 FROM departments WHERE code = $1 AND active", 1, vals, NULL);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the department");
    bool found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "department",
                            "no active department has the code %s", dept);
    return 0;
}

/*  ---- plans (R4.2a, R5.3, R7a) -------------------------------------------------------- */

void cat_fill_plan(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    (void)zone;
    odp_rec_plan_t *p = out;
    p->id = rows_int(r, i, 0);
    p->department = rows_col(r, i, 1);
    p->title = rows_col(r, i, 2);
    p->summary = rows_col(r, i, 3);
    p->domain = rows_col(r, i, 4);
    p->content_kind = rows_col(r, i, 5);
    p->open_type = rows_col(r, i, 6);
    p->update_cycle = rows_col(r, i, 7);
    p->due_on = rows_col(r, i, 8);
    p->maintainer = rows_col(r, i, 9);
    p->status = rows_col(r, i, 10);
    p->overdue = rows_bool(r, i, 11);
    p->resource = rows_col(r, i, 12);
    p->planned_by = rows_col(r, i, 13);
    p->cancelled_reason = rows_col(r, i, 14);
}

int cat_reply_plan(odp_req_t *req, PGresult *r)
{
    odp_rec_plan_t rec = {0};
    cat_fill_plan(r, 0, &rec, NULL);
    int rc = odp_encode(&odp_def_rec_plan, &rec, req->pk);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the plan") : 0;
}

static int s_plan_insert(odp_req_t *req, const odp_plan_add_t *m, const char *dept,
                         const char *const codes[4])
{
    const char *vals[10] = {
        dept,     m->title.str, m->summary.str, codes[0],          codes[1],
        codes[2], codes[3],     m->due_on.str,  m->maintainer.str, req->actor_str};
    int lens[10] = {-1, (int)m->title.len,  (int)m->summary.len,    -1, -1, -1,
                    -1, (int)m->due_on.len, (int)m->maintainer.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "WITH p AS (INSERT INTO plans (department, title, summary, domain, "
                              "content_kind, open_type, update_cycle, due_on, maintainer, "
                              "planned_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::date, $9, "
                              "$10) RETURNING *) SELECT " CAT_PLAN_COLS " FROM p" CAT_PLAN_JOIN,
                              10, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the plan");
    odp_ev_catalog_planned_t ev = {0};
    ev.id = rows_int(r, 0, 0);
    ev.department = rows_col(r, 0, 1);
    ev.title = rows_col(r, 0, 2);
    ev.due_on = rows_col(r, 0, 8);
    if (cat_event(req, &odp_def_ev_catalog_planned, &ev) < 0 || cat_commit(req, "the plan") < 0) {
        PQclear(r);
        return -1;
    }
    return cat_reply_plan(req, r);
}

static int s_plan_add(odp_req_t *req)
{
    const odp_plan_add_t *m = req->msg;
    char dept[CAT_DEPT_SIZE];
    const char *codes[4];
    if (s_acting_department(req, &m->department, dept) < 0 ||
        cat_code(req, &odp_cl_domain, &m->domain, "domain", &codes[0]) < 0 ||
        cat_code(req, &odp_cl_content_kind, &m->content_kind, "content_kind", &codes[1]) < 0 ||
        cat_code(req, &odp_cl_open_type, &m->open_type, "open_type", &codes[2]) < 0 ||
        cat_code(req, &odp_cl_update_cycle, &m->update_cycle, "update_cycle", &codes[3]) < 0 ||
        cat_date(req, &m->due_on, "due_on") < 0)
        return -1;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the plan");
    return s_plan_insert(req, m, dept, codes);
}

/*  A plan is seen with its entry: by operations and its department always, by anyone
    else once it is catalogued as an entry they may see. */
static int s_plan_list(odp_req_t *req)
{
    const odp_plan_list_t *m = req->msg;
    const char *vals[4] = {m->department.str, NULL};
    int lens[4] = {(int)m->department.len, -1, -1, -1};
    if (m->overdue.present)
        vals[1] = m->overdue.b ? "true" : "false";
    cat_viewer(req, vals + 2);
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " CAT_PLAN_COLS " FROM plans p" CAT_PLAN_JOIN
                              " WHERE ($1::text IS NULL OR p.department = $1::text) AND "
                              "($2::boolean IS NULL OR " CAT_PLAN_OVERDUE " = $2::boolean) AND "
                              "entry_visible($3, $4, p.department, r.status, r.open_type) "
                              "ORDER BY p.id",
                              4, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "plans");
    return rows_pack(req, r, &odp_def_rec_plan, cat_fill_plan, sizeof(odp_rec_plan_t));
}

/*  ---- catalogue entries (R4.2a, R4.2d, R5.4, R8.1, R8.2) ------------------------------ */

static const char *const s_statuses[] = {"catalogued", "registration_requested", "registered",
                                         "refused"};

static void s_fill_catalog(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    odp_rec_catalog_t *c = out;
    c->resource = rows_col(r, i, 0);
    c->department = rows_col(r, i, 1);
    c->plan = rows_int(r, i, 2);
    c->title = rows_col(r, i, 3);
    c->summary = rows_col(r, i, 4);
    c->keywords = rows_strs(r, i, 5, zone);
    c->domain = rows_col(r, i, 6);
    c->content_kind = rows_col(r, i, 7);
    c->delivery_form = rows_col(r, i, 8);
    c->open_type = rows_col(r, i, 9);
    c->update_cycle = rows_col(r, i, 10);
    c->released_on = rows_col(r, i, 11);
    c->updated_on = rows_col(r, i, 12);
    c->contact = rows_col(r, i, 13);
    c->location = rows_col(r, i, 14);
    c->status = rows_col(r, i, 15);
    c->refused_reason = rows_col(r, i, 16);
    c->catalogued_at = rows_col(r, i, 17);
    c->catalogued_by = rows_col(r, i, 18);
    c->access_conditions = rows_col(r, i, 19);
    c->endpoint = rows_col(r, i, 20);
    c->next_due_on = rows_col(r, i, 21);
    c->overdue = rows_bool(r, i, 22);
}

int cat_reply_catalog(odp_req_t *req, PGresult *r)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    odp_rec_catalog_t rec = {0};
    s_fill_catalog(r, 0, &rec, &zone);
    int rc = odp_encode(&odp_def_rec_catalog, &rec, req->pk);
    msgpack_zone_destroy(&zone);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the entry") : 0;
}

int cat_keywords(odp_req_t *req, const odp_val_t *v, odp_val_t items[20], size_t *n)
{
    const msgpack_object_array *a = &v->obj->via.array;
    if (a->size == 0)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "keywords", "give 1 to 20 keywords");
    for (uint32_t i = 0; i < a->size && i < 20; i++) {
        if (a->ptr[i].via.str.size == 0)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "keywords",
                                "keyword %" PRIu32 " is empty", i);
        items[i] = odp_v_strn(a->ptr[i].via.str.ptr, a->ptr[i].via.str.size);
    }
    *n = a->size;
    return 0;
}

/*  An entry may realise one plan of its own department, once, unless it was cancelled.
    The UNIQUE on resources.plan settles a race between two entries for the same plan. */
static int s_plan_free(odp_req_t *req, const odp_val_t *plan, const char *dept)
{
    if (!plan->present)
        return 0;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)plan->i);
    const char *vals[2] = {id, dept};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT EXISTS (SELECT 1 FROM resources WHERE plan = p.id), "
                              "p.cancelled_at IS NOT NULL FROM plans p WHERE p.id = $1::bigint "
                              "AND p.department = $2",
                              2, vals, NULL);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the plan");
    int found = PQntuples(r) > 0, taken = found && PQgetvalue(r, 0, 0)[0] == 't';
    int cancelled = found && PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "plan", "department %s has no plan %s", dept, id);
    if (taken)
        return odp_req_fail(req, ODP_E_ALREADY_EXISTS, "plan", "plan %s is catalogued already", id);
    if (cancelled)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "plan", "plan %s is cancelled", id);
    return 0;
}

/*  The resource code is <department>-<DD><K>-<NNNNN> (docs/identifiers.md): the next
    number of the department's classification is taken in the same statement, so a
    rolled-back entry takes its number back and a committed one never shares it. */
static int s_catalog_insert(odp_req_t *req, const odp_catalog_add_t *m, const char *dept,
                            const char *const codes[5], const char *keywords)
{
    char cls[48], plan[24] = "";
    snprintf(cls, sizeof cls, "%02zu%zu", s_code_pos(&odp_cl_domain, codes[0]),
             s_code_pos(&odp_cl_content_kind, codes[1]));
    if (m->plan.present)
        snprintf(plan, sizeof plan, "%lld", (long long)m->plan.i);
    const char *vals[18] = {dept,
                            cls,
                            m->plan.present ? plan : NULL,
                            m->title.str,
                            m->summary.str,
                            keywords,
                            codes[0],
                            codes[1],
                            codes[2],
                            codes[3],
                            codes[4],
                            m->released_on.str,
                            m->updated_on.str,
                            m->contact.str,
                            m->location.str,
                            req->actor_str,
                            m->access_conditions.str,
                            m->endpoint.str};
    int lens[18] = {-1,
                    -1,
                    -1,
                    (int)m->title.len,
                    (int)m->summary.len,
                    -1,
                    -1,
                    -1,
                    -1,
                    -1,
                    -1,
                    (int)m->released_on.len,
                    (int)m->updated_on.len,
                    (int)m->contact.len,
                    (int)m->location.len,
                    -1,
                    (int)m->access_conditions.len,
                    (int)m->endpoint.len};
    PGresult *r = odp_db_exec(
        req->db,
        "WITH seq AS (INSERT INTO resource_sequences (department, classification, last) "
        "VALUES ($1::text, $2::text, 1) ON CONFLICT (department, classification) "
        "DO UPDATE SET last = resource_sequences.last + 1 RETURNING last) "
        "INSERT INTO resources (resource, department, plan, title, summary, keywords, domain, "
        "content_kind, delivery_form, open_type, update_cycle, released_on, updated_on, contact, "
        "location, catalogued_by, access_conditions, endpoint) SELECT $1::text || '-' || "
        "$2::text || '-' || lpad(last::text, 5, '0'), $1::text, $3::bigint, $4, $5, $6::text[], "
        "$7, $8, $9, $10, $11, $12::text::date, $13::text::date, $14, $15, $16, $17, $18 "
        "FROM seq WHERE last <= 99999 RETURNING " CAT_COLS,
        18, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "a catalogue entry for this plan");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_INVALID_VALUE, NULL,
                            "department %s has used all 99999 codes of classification %s", dept,
                            cls);
    }
    odp_ev_catalog_catalogued_t ev = {0};
    ev.resource = rows_col(r, 0, 0);
    ev.department = rows_col(r, 0, 1);
    ev.title = m->title;
    ev.plan = m->plan;
    if (cat_event(req, &odp_def_ev_catalog_catalogued, &ev) < 0 ||
        cat_commit(req, "the catalogue entry") < 0) {
        PQclear(r);
        return -1;
    }
    return cat_reply_catalog(req, r);
}

static int s_catalog_add(odp_req_t *req)
{
    const odp_catalog_add_t *m = req->msg;
    char dept[CAT_DEPT_SIZE];
    const char *codes[5];
    odp_val_t words[20];
    size_t nwords = 0;
    if (s_acting_department(req, &m->department, dept) < 0 ||
        cat_code(req, &odp_cl_domain, &m->domain, "domain", &codes[0]) < 0 ||
        cat_code(req, &odp_cl_content_kind, &m->content_kind, "content_kind", &codes[1]) < 0 ||
        cat_code(req, &odp_cl_delivery_form, &m->delivery_form, "delivery_form", &codes[2]) < 0 ||
        cat_code(req, &odp_cl_open_type, &m->open_type, "open_type", &codes[3]) < 0 ||
        cat_code(req, &odp_cl_update_cycle, &m->update_cycle, "update_cycle", &codes[4]) < 0 ||
        cat_date(req, &m->released_on, "released_on") < 0 ||
        cat_date(req, &m->updated_on, "updated_on") < 0 ||
        cat_keywords(req, &m->keywords, words, &nwords) < 0 ||
        cat_entry_rules(req, codes[2], codes[3], &m->endpoint, false,
                        m->access_conditions.present) < 0)
        return -1;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the catalogue entry");
    if (s_plan_free(req, &m->plan, dept) < 0)
        return -1;
    char *keywords = rows_array_literal(words, nwords);
    if (!keywords)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    int rc = s_catalog_insert(req, m, dept, codes, keywords);
    free(keywords);
    return rc;
}

/*  An entry the actor may not see is answered as if it did not exist. */
static int s_catalog_get(odp_req_t *req)
{
    const odp_catalog_get_t *m = req->msg;
    const char *vals[3] = {m->resource.str};
    int lens[3] = {(int)m->resource.len, -1, -1};
    cat_viewer(req, vals + 1);
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " CAT_COLS " FROM resources WHERE resource = $1 AND "
                              "entry_visible($2, $3, department, status, open_type)",
                              3, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the catalogue entry");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no catalogue entry has this code");
    }
    return cat_reply_catalog(req, r);
}

static int s_catalog_list(odp_req_t *req)
{
    const odp_catalog_list_t *m = req->msg;
    bool known = !m->status.present;
    for (size_t i = 0; i < 4 && !known; i++)
        known = odp_v_eq(&m->status, s_statuses[i]);
    if (!known)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "status",
                            "status must be one of: catalogued, registration_requested, "
                            "registered, refused");
    const char *vals[5] = {m->department.str, m->status.str, NULL};
    int lens[5] = {(int)m->department.len, (int)m->status.len, -1, -1, -1};
    if (m->overdue.present)
        vals[2] = m->overdue.b ? "true" : "false";
    cat_viewer(req, vals + 3);
    PGresult *r = odp_db_exec(req->db,
                              "SELECT " CAT_COLS " FROM resources WHERE ($1::text IS NULL OR "
                              "department = $1::text) AND ($2::text IS NULL OR status = $2::text) "
                              "AND ($3::boolean IS NULL OR coalesce(next_due_on(resources) < "
                              "current_date, false) = $3::boolean) AND "
                              "entry_visible($4, $5, department, status, open_type) "
                              "ORDER BY resource",
                              5, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the catalogue");
    return rows_pack(req, r, &odp_def_rec_catalog, s_fill_catalog, sizeof(odp_rec_catalog_t));
}

/*  ---- an entry being read or changed ----------------------------------------------------- */

/*  The entry's department in dept when the actor may see it; else 404, as if it did not
    exist. */
static int s_visible(odp_req_t *req, const odp_val_t *resource, char *dept, size_t size)
{
    const char *vals[3] = {resource->str};
    int lens[3] = {(int)resource->len, -1, -1};
    cat_viewer(req, vals + 1);
    PGresult *r = odp_db_exec(req->db,
                              "SELECT department FROM resources WHERE resource = $1 AND "
                              "entry_visible($2, $3, department, status, open_type)",
                              3, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the catalogue entry");
    bool found = PQntuples(r) == 1;
    if (found)
        snprintf(dept, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no catalogue entry has this code");
    return 0;
}

int registrar_resource_visible(odp_req_t *req, const odp_val_t *resource, char *dept, size_t size)
{
    return s_visible(req, resource, dept, size);
}

int cat_resource_lock(odp_req_t *req, const odp_val_t *resource, cat_resource_t *res)
{
    const char *vals[3] = {resource->str};
    int lens[3] = {(int)resource->len, -1, -1};
    cat_viewer(req, vals + 1);
    PGresult *r = odp_db_exec(req->db,
                              "SELECT department, content_kind, delivery_form, open_type, status, "
                              "endpoint IS NOT NULL, access_conditions IS NOT NULL, "
                              "entry_visible($2, $3, department, status, open_type) "
                              "FROM resources WHERE resource = $1 FOR UPDATE",
                              3, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the catalogue entry");
    bool visible = PQntuples(r) == 1 && PQgetvalue(r, 0, 7)[0] == 't';
    if (visible) {
        snprintf(res->department, sizeof res->department, "%s", PQgetvalue(r, 0, 0));
        snprintf(res->content_kind, sizeof res->content_kind, "%s", PQgetvalue(r, 0, 1));
        snprintf(res->delivery_form, sizeof res->delivery_form, "%s", PQgetvalue(r, 0, 2));
        snprintf(res->open_type, sizeof res->open_type, "%s", PQgetvalue(r, 0, 3));
        snprintf(res->status, sizeof res->status, "%s", PQgetvalue(r, 0, 4));
        res->has_endpoint = PQgetvalue(r, 0, 5)[0] == 't';
        res->has_conditions = PQgetvalue(r, 0, 6)[0] == 't';
    }
    PQclear(r);
    if (!visible)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no catalogue entry has this code");
    if (!registrar_may_act(req, res->department))
        return odp_req_fail(req, ODP_E_FORBIDDEN, "resource",
                            "this resource belongs to department %s", res->department);
    return 0;
}

/*  Set the resource's status (and what goes with it) by sql, whose $1 is the resource;
    r receives the updated record. */
static int s_resource_update(odp_req_t *req, const char *sql, int n, const char *const *vals,
                             const int *lens, PGresult **out)
{
    PGresult *r = odp_db_exec(req->db, sql, n, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0 || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the catalogue entry");
    *out = r;
    return 0;
}

/*  ---- data dictionaries (R8.3a, R8.3b) ------------------------------------------------- */

/*  A table name becomes part of a staging table's name and a column set's key: plain
    lower-case identifier, at most 63 bytes (PostgreSQL's limit). */
static bool s_valid_table(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 63 || t[0] < 'a' || t[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
            return false;
    return true;
}

static int s_table(odp_req_t *req, const odp_val_t *v, char table[64])
{
    if (!v->present)
        snprintf(table, 64, "main");
    else
        odp_v_cstr(v, table, 64);
    if (!v->present || (v->len < 64 && s_valid_table(table)))
        return 0;
    return odp_req_fail(req, ODP_E_INVALID_VALUE, "table",
                        "table must match ^[a-z][a-z0-9_]{0,62}$, e.g. main");
}

/*  An error about item i of fields, naming it as fields[i].name in field and message. */
__attribute__((format(printf, 5, 6))) static int
s_item_fail(odp_req_t *req, odp_err_t code, size_t i, const char *name, const char *fmt, ...)
{
    char path[64], msg[200];
    snprintf(path, sizeof path, "fields[%zu]%s%s", i, name && *name ? "." : "", name ? name : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return odp_req_fail(req, code, path, "%s: %s", path, msg);
}

/*  Column names end up as the columns of typed tables and in CSV headers: no control
    characters (C0, DEL, or C1 as UTF-8 0xC2 0x80-0x9F). */
static bool s_plain_name(const odp_val_t *v)
{
    const unsigned char *s = (const unsigned char *)v->str;
    for (size_t i = 0; i < v->len; i++)
        if (s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 && i + 1 < v->len && s[i + 1] < 0xa0))
            return false;
    return true;
}

/*  The pattern will be matched as a POSIX extended regular expression. */
static bool s_pattern_compiles(const odp_val_t *v)
{
    char pat[512];
    regex_t re;
    if (regcomp(&re, odp_v_cstr(v, pat, sizeof pat), REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    regfree(&re);
    return true;
}

/*  A number as short text that reads back as the same double (numeric columns keep
    exactly what was sent, not 0.10000000000000001). */
static const char *s_num_text(double d, char *buf, size_t size)
{
    snprintf(buf, size, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, size, "%.17g", d);
    return buf;
}

/*  Checks of one field beyond its declaration; the normalised type and check in out. */
static int s_dict_check(odp_req_t *req, size_t i, const odp_rec_dict_field_t *f,
                        const odp_val_t *names, const char **type, const char **check)
{
    char choices[256];
    if (!s_plain_name(&f->name))
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "name", "holds a control character");
    if (registrar_reserved_column(f->name.str, f->name.len))
        return s_item_fail(
            req, ODP_E_INVALID_VALUE, i, "name",
            "%.*s is a column name the staging tables reserve (" REGISTRAR_RESERVED_COLUMNS
            "): rename the field",
            (int)f->name.len, f->name.str);
    for (size_t k = 0; k < i; k++)
        if (names[k].len == f->name.len && memcmp(names[k].str, f->name.str, f->name.len) == 0)
            return s_item_fail(req, ODP_E_INVALID_VALUE, i, "name",
                               "repeats the name of fields[%zu]", k);
    *type = odp_code_find(&odp_cl_field_type, f->type.str, f->type.len);
    if (!*type)
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "type", "must be one of: %s",
                           odp_code_choices(&odp_cl_field_type, choices, sizeof choices));
    *check = f->check.present ? odp_code_find(&odp_cl_check, f->check.str, f->check.len) : NULL;
    if (f->check.present && !*check)
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "check", "must be one of: %s",
                           odp_code_choices(&odp_cl_check, choices, sizeof choices));
    if (f->pattern.present && !s_pattern_compiles(&f->pattern))
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "pattern",
                           "is not a POSIX extended regular expression");
    bool numeric = strcmp(*type, "integer") == 0 || strcmp(*type, "numeric") == 0;
    if (f->min_length.present && strcmp(*type, "text") != 0)
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "min_length",
                           "min_length applies to text fields only");
    if (f->min_length.present && f->length.present && f->min_length.i > f->length.i)
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "min_length",
                           "min_length is greater than length");
    if ((f->min.present || f->max.present) && !numeric)
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, f->min.present ? "min" : "max",
                           "min and max apply to integer and numeric fields only");
    if (f->min.present && f->max.present && f->min.d > f->max.d)
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "min", "min is greater than max");
    const msgpack_object *a = f->allowed.present ? f->allowed.obj : NULL;
    if (a && a->via.array.size == 0)
        return s_item_fail(req, ODP_E_INVALID_VALUE, i, "allowed", "list at least one value");
    for (uint32_t k = 0; a && k < a->via.array.size; k++)
        if (a->via.array.ptr[k].via.str.size == 0)
            return s_item_fail(req, ODP_E_INVALID_VALUE, i, "allowed", "value %" PRIu32 " is empty",
                               k);
    return 0;
}

/*  One row for json_to_recordset: keys are dictionary_fields' columns. */
static json_t *s_dict_row(size_t i, const odp_rec_dict_field_t *f, const char *type,
                          const char *check)
{
    char num[40];
    json_t *o = json_object();
    json_object_set_new(o, "position", json_integer((json_int_t)i + 1));
    json_object_set_new(o, "name", json_stringn(f->name.str, f->name.len));
    json_object_set_new(o, "type", json_string(type));
    if (f->length.present)
        json_object_set_new(o, "length", json_integer(f->length.i));
    json_object_set_new(o, "required", json_boolean(f->required.present && f->required.b));
    json_object_set_new(o, "is_unique", json_boolean(f->unique.present && f->unique.b));
    if (f->allowed.present) {
        json_t *a = json_array();
        const msgpack_object_array *v = &f->allowed.obj->via.array;
        for (uint32_t k = 0; k < v->size; k++)
            json_array_append_new(a, json_stringn(v->ptr[k].via.str.ptr, v->ptr[k].via.str.size));
        json_object_set_new(o, "allowed", a);
    }
    if (f->min.present)
        json_object_set_new(o, "min_value", json_string(s_num_text(f->min.d, num, sizeof num)));
    if (f->max.present)
        json_object_set_new(o, "max_value", json_string(s_num_text(f->max.d, num, sizeof num)));
    if (f->pattern.present)
        json_object_set_new(o, "pattern", json_stringn(f->pattern.str, f->pattern.len));
    if (check)
        json_object_set_new(o, "check_name", json_string(check));
    if (f->description.present)
        json_object_set_new(o, "description", json_stringn(f->description.str, f->description.len));
    if (f->min_length.present)
        json_object_set_new(o, "min_length", json_integer(f->min_length.i));
    json_object_set_new(o, "primary_key", json_boolean(f->primary_key.present && f->primary_key.b));
    return o;
}

/*  The codec's message would name the declaration, rec_dict_field, which means nothing to
    a provider: say which field of the dictionary, and what a field may have. */
static int s_unknown_property(odp_req_t *req, size_t i, const char *name)
{
    char props[160] = "";
    for (size_t k = 0; k < odp_def_rec_dict_field.nfields; k++)
        snprintf(props + strlen(props), sizeof props - strlen(props), "%s%s", k ? ", " : "",
                 odp_def_rec_dict_field.fields[k].name);
    return s_item_fail(req, ODP_E_UNKNOWN_FIELD, i, name,
                       "data dictionary field %zu has no property %s (a field has %s)", i + 1, name,
                       props);
}

/*  Check every item of fields (a list of 1..500 maps) and turn them into rows (a JSON
    array, the caller's). A fault inside item i names fields[i].<field>. */
static int s_dict_rows(odp_req_t *req, const odp_val_t *fields, json_t **rows)
{
    const msgpack_object *list = fields->obj;
    if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size == 0)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "fields",
                            "fields must be a list of 1 to 500 field maps");
    size_t n = list->via.array.size;
    odp_val_t *names = calloc(n, sizeof *names);
    *rows = json_array();
    int rc = names && *rows ? 0 : odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        odp_rec_dict_field_t f;
        odp_error_t e;
        const char *type = NULL, *check = NULL;
        if (list->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
            rc = s_item_fail(req, ODP_E_WRONG_TYPE, i, NULL,
                             "must be a map of a field's properties");
        else if (odp_decode_fields(&odp_def_rec_dict_field, &list->via.array.ptr[i], &f, &e) < 0)
            rc = e.code == ODP_E_UNKNOWN_FIELD
                     ? s_unknown_property(req, i, e.field)
                     : s_item_fail(req, e.code, i, e.field, "%s", e.message);
        else if ((rc = s_dict_check(req, i, &f, names, &type, &check)) == 0) {
            names[i] = f.name;
            json_array_append_new(*rows, s_dict_row(i, &f, type, check));
        }
    }
    free(names);
    if (rc < 0) {
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}

#define DICT_COLS                                                                                  \
    "name, type, length, required, is_unique, allowed, min_value, max_value, pattern, "            \
    "check_name, description, min_length, primary_key"

static void s_fill_dict_field(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    odp_rec_dict_field_t *f = out;
    f->name = rows_col(r, i, 0);
    f->type = rows_col(r, i, 1);
    f->length = rows_int(r, i, 2);
    f->required = rows_bool(r, i, 3);
    f->unique = rows_bool(r, i, 4);
    f->allowed = rows_strs(r, i, 5, zone);
    f->min = rows_num(r, i, 6);
    f->max = rows_num(r, i, 7);
    f->pattern = rows_col(r, i, 8);
    f->check = rows_col(r, i, 9);
    f->description = rows_col(r, i, 10);
    f->min_length = rows_int(r, i, 11);
    f->primary_key = rows_bool(r, i, 12);
}

/*  A statement without rows; a failure is answered as odp_req_db_fail() does. */
static int s_cmd(odp_req_t *req, const char *sql, int n, const char *const *vals, const int *lens,
                 const char *what)
{
    PGresult *r = odp_db_exec(req->db, sql, n, vals, lens);
    if (cat_exec_ok(r, PGRES_COMMAND_OK) < 0)
        return odp_req_db_fail(req, r, what);
    PQclear(r);
    return 0;
}

/*  Reply with revision (0: the latest) of the dictionary of resource's table: 404 when the
    table has none, or not that revision. */
static int s_dictionary_reply(odp_req_t *req, const odp_val_t *resource, const char *table,
                              int64_t revision)
{
    char rev[24];
    snprintf(rev, sizeof rev, "%" PRId64, revision);
    const char *vals[3] = {resource->str, table, revision ? rev : NULL};
    int lens[3] = {(int)resource->len, -1, -1};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT " DICT_COLS ", d.revision, " ROWS_TS(
            "d.set_at") " FROM dictionary_revisions d "
                        "JOIN dictionary_revision_fields f USING (resource, table_name, revision) "
                        "WHERE d.resource = $1 AND d.table_name = $2 AND d.revision = "
                        "coalesce($3::integer, "
                        "(SELECT max(revision) FROM dictionary_revisions WHERE resource = $1 AND "
                        "table_name = $2)) ORDER BY f.position",
        3, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the dictionary");
    if (PQntuples(r) == 0) {
        PQclear(r);
        if (revision)
            return odp_req_fail(req, ODP_E_NOT_FOUND, "revision",
                                "table %s of this resource has no dictionary revision %s", table,
                                rev);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "table",
                            "no dictionary is stored for this resource and table %s", table);
    }
    msgpack_sbuffer items;
    int rc = rows_encode(r, &odp_def_rec_dict_field, s_fill_dict_field,
                         sizeof(odp_rec_dict_field_t), &items);
    if (rc == 0) {
        odp_rep_dictionary_t rep = {0};
        rep.resource = *resource;
        rep.table = odp_v_str(table);
        rep.fields = odp_v_raw(items.data, items.size);
        rep.revision = rows_int(r, 0, 13);
        rep.set_at = rows_col(r, 0, 14);
        rc = odp_encode(&odp_def_rep_dictionary, &rep, req->pk);
    }
    PQclear(r);
    msgpack_sbuffer_destroy(&items);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the dictionary") : 0;
}

/*  Only a dataset has a data dictionary (an interface over a dataset may describe its
    fields with one too). */
static int s_dictionary_allowed(odp_req_t *req, const cat_resource_t *res)
{
    if (strcmp(res->content_kind, "dataset") != 0)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "resource",
                            "only a dataset has a data dictionary; this resource is a %s",
                            res->content_kind);
    return 0;
}

/*  The revision dictionary.set writes, made ready for its fields: the table's current
    revision while no upload has begun with it (its fields are dropped, to be replaced),
    else the next one, which the next push uses; revision 1 for a table's first. */
static int s_dictionary_revision(odp_req_t *req, const odp_val_t *resource, const char *table,
                                 char rev[24])
{
    const char *vals[4] = {resource->str, table, rev, req->actor_str};
    int lens[4] = {(int)resource->len, -1, -1, -1};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT d.revision, EXISTS (SELECT 1 FROM uploads u WHERE "
                              "u.resource = d.resource AND u.table_name = d.table_name AND "
                              "u.dictionary_revision = d.revision AND u.status IN ('receiving', "
                              "'received')) FROM dictionary_revisions d WHERE d.resource = $1 AND "
                              "d.table_name = $2 ORDER BY d.revision DESC LIMIT 1",
                              2, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the dictionary");
    bool fresh = PQntuples(r) == 0 || PQgetvalue(r, 0, 1)[0] == 't';
    long current = PQntuples(r) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    snprintf(rev, 24, "%ld", fresh ? current + 1 : current);
    if (fresh)
        return s_cmd(req,
                     "INSERT INTO dictionary_revisions (resource, table_name, revision, set_by) "
                     "VALUES ($1, $2, $3::integer, $4)",
                     4, vals, lens, "the dictionary");
    if (s_cmd(req,
              "UPDATE dictionary_revisions SET set_by = $4, set_at = now() WHERE resource = $1 "
              "AND table_name = $2 AND revision = $3::integer",
              4, vals, lens, "the dictionary") < 0)
        return -1;
    return s_cmd(req,
                 "DELETE FROM dictionary_revision_fields WHERE resource = $1 AND table_name = $2 "
                 "AND revision = $3::integer",
                 3, vals, lens, "the dictionary");
}

/*  Store the fields of revision rev: one set-based INSERT. */
static int s_dictionary_store(odp_req_t *req, const odp_val_t *resource, const char *table,
                              const char *rev, json_t *rows)
{
    char *json = json_dumps(rows, JSON_COMPACT);
    if (!json)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    const char *vals[4] = {resource->str, table, rev, json};
    int lens[4] = {(int)resource->len, -1, -1, -1};
    int rc = s_cmd(req,
                   "INSERT INTO dictionary_revision_fields (resource, table_name, revision, "
                   "position, name, type, length, required, is_unique, allowed, min_value, "
                   "max_value, pattern, check_name, description, min_length, primary_key) "
                   "SELECT $1, $2, $3::integer, x.* FROM json_to_recordset($4::json) AS "
                   "x(position integer, name text, type text, length integer, required "
                   "boolean, is_unique boolean, allowed text[], min_value numeric, max_value "
                   "numeric, pattern text, check_name text, description text, min_length "
                   "integer, primary_key boolean)",
                   4, vals, lens, "the dictionary");
    free(json);
    return rc;
}

static int s_dictionary_set(odp_req_t *req)
{
    const odp_dictionary_set_t *m = req->msg;
    char table[64], rev[24];
    cat_resource_t res;
    json_t *rows = NULL;
    if (s_table(req, &m->table, table) < 0)
        return -1;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the dictionary");
    if (cat_resource_lock(req, &m->resource, &res) < 0 || s_dictionary_allowed(req, &res) < 0 ||
        s_dict_rows(req, &m->fields, &rows) < 0)
        return -1;
    int rc = s_dictionary_revision(req, &m->resource, table, rev);
    if (rc == 0)
        rc = s_dictionary_store(req, &m->resource, table, rev, rows);
    json_decref(rows);
    if (rc < 0)
        return -1;
    odp_ev_catalog_dictionary_set_t ev = {0};
    ev.resource = m->resource;
    ev.department = odp_v_str(res.department);
    ev.table = odp_v_str(table);
    ev.revision = odp_v_int(strtoll(rev, NULL, 10));
    if (cat_event(req, &odp_def_ev_catalog_dictionary_set, &ev) < 0 ||
        cat_commit(req, "the dictionary") < 0)
        return -1;
    return s_dictionary_reply(req, &m->resource, table, ev.revision.i);
}

static int s_dictionary_get(odp_req_t *req)
{
    const odp_dictionary_get_t *m = req->msg;
    char table[64], dept[CAT_DEPT_SIZE];
    if (s_table(req, &m->table, table) < 0 || s_visible(req, &m->resource, dept, sizeof dept) < 0)
        return -1;
    return s_dictionary_reply(req, &m->resource, table, m->revision.present ? m->revision.i : 0);
}

/*  ---- registration (R4.2c, R5.5c, R7c) ------------------------------------------------- */

static int s_has_dictionary(odp_req_t *req, const odp_val_t *resource, bool *has)
{
    const char *vals[1] = {resource->str};
    int lens[1] = {(int)resource->len};
    PGresult *r = odp_db_exec(
        req->db, "SELECT 1 FROM dictionary_revisions WHERE resource = $1 LIMIT 1", 1, vals, lens);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0)
        return odp_req_db_fail(req, r, "the dictionary");
    *has = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

static int s_registration_request(odp_req_t *req)
{
    const odp_registration_request_t *m = req->msg;
    cat_resource_t res;
    bool has = true;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the request");
    if (cat_resource_lock(req, &m->resource, &res) < 0)
        return -1;
    if (strcmp(res.status, "catalogued") != 0 && strcmp(res.status, "refused") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "resource",
                            "the resource is %s; only a catalogued or refused resource can be "
                            "requested for registration",
                            res.status);
    /*  Entries catalogued before endpoints and access conditions existed meet the rules
        here at the latest. */
    odp_val_t none = {0};
    if (cat_entry_rules(req, res.delivery_form, res.open_type, &none, res.has_endpoint,
                        res.has_conditions) < 0)
        return -1;
    bool pushed = strcmp(res.delivery_form, "dataset_file") == 0;
    if (pushed && strcmp(res.content_kind, "dataset") == 0 &&
        s_has_dictionary(req, &m->resource, &has) < 0)
        return -1;
    if (!has)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "resource",
                            "a dataset is described by its data dictionary: send the data "
                            "dictionary first (dictionary.set)");
    const char *vals[1] = {m->resource.str};
    int lens[1] = {(int)m->resource.len};
    PGresult *r;
    if (s_resource_update(req,
                          "UPDATE resources SET status = 'registration_requested', "
                          "refused_reason = NULL WHERE resource = $1 RETURNING " CAT_COLS,
                          1, vals, lens, &r) < 0)
        return -1;
    odp_ev_catalog_registration_requested_t ev = {0};
    ev.resource = m->resource;
    ev.department = odp_v_str(res.department);
    if (cat_event(req, &odp_def_ev_catalog_registration_requested, &ev) < 0 ||
        cat_commit(req, "the request") < 0) {
        PQclear(r);
        return -1;
    }
    return cat_reply_catalog(req, r);
}

static int s_registration_decide(odp_req_t *req)
{
    const odp_registration_decide_t *m = req->msg;
    cat_resource_t res;
    if (!m->approve.b && !m->reason.present)
        return odp_req_fail(req, ODP_E_MISSING_FIELD, "reason",
                            "a refusal must give the reason the provider is to act on");
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the decision");
    if (cat_resource_lock(req, &m->resource, &res) < 0)
        return -1;
    if (strcmp(res.status, "registration_requested") != 0)
        return odp_req_fail(req, ODP_E_INVALID_STATE, "resource",
                            "the resource is %s; only a requested registration can be decided",
                            res.status);
    /*  $2 is who registered it, or why it was refused. */
    const char *vals[2] = {m->resource.str, m->approve.b ? req->actor_str : m->reason.str};
    int lens[2] = {(int)m->resource.len, m->approve.b ? -1 : (int)m->reason.len};
    PGresult *r;
    int rc = s_resource_update(req,
                               m->approve.b ? "UPDATE resources SET status = 'registered', "
                                              "registered_by = $2, registered_at = now() "
                                              "WHERE resource = $1 RETURNING " CAT_COLS
                                            : "UPDATE resources SET status = 'refused', "
                                              "refused_reason = $2 WHERE resource = $1 "
                                              "RETURNING " CAT_COLS,
                               2, vals, lens, &r);
    if (rc < 0)
        return -1;
    if (m->approve.b) {
        odp_ev_catalog_registered_t ev = {0};
        ev.resource = m->resource;
        ev.department = odp_v_str(res.department);
        rc = cat_event(req, &odp_def_ev_catalog_registered, &ev);
    } else {
        odp_ev_catalog_refused_t ev = {0};
        ev.resource = m->resource;
        ev.department = odp_v_str(res.department);
        ev.reason = m->reason;
        rc = cat_event(req, &odp_def_ev_catalog_refused, &ev);
    }
    if (rc < 0 || cat_commit(req, "the decision") < 0) {
        PQclear(r);
        return -1;
    }
    return cat_reply_catalog(req, r);
}

/*  ---- transfer rules (R5.5a) ----------------------------------------------------------- */

#define RULE_COLS "formats, encodings, max_size, max_row_length, chunk_size, credit"

static int s_reply_rules(odp_req_t *req, PGresult *r)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 512);
    odp_rep_rules_t rep = {0};
    rep.formats = rows_strs(r, 0, 0, &zone);
    rep.encodings = rows_strs(r, 0, 1, &zone);
    rep.max_size = rows_int(r, 0, 2);
    rep.max_row_length = rows_int(r, 0, 3);
    rep.chunk_size = rows_int(r, 0, 4);
    rep.credit = rows_int(r, 0, 5);
    int rc = odp_encode(&odp_def_rep_rules, &rep, req->pk);
    msgpack_zone_destroy(&zone);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the rules") : 0;
}

static int s_rules_get(odp_req_t *req)
{
    PGresult *r = odp_db_exec(req->db, "SELECT " RULE_COLS " FROM transfer_rules WHERE id = 1", 0,
                              NULL, NULL);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0 || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the transfer rules");
    return s_reply_rules(req, r);
}

/*  A list of codes from cl (codes or labels, at least one; a repeat counts once) as a
    text[] literal in *out, the caller's to free; NULL when v is absent. */
static int s_code_array(odp_req_t *req, const odp_codelist_t *cl, const odp_val_t *v,
                        const char *field, char **out)
{
    *out = NULL;
    if (!v->present)
        return 0;
    const msgpack_object_array *a = &v->obj->via.array;
    odp_val_t codes[8];
    size_t n = 0;
    char choices[256];
    if (a->size == 0)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, field, "%s must list at least one of: %s",
                            field, odp_code_choices(cl, choices, sizeof choices));
    for (uint32_t i = 0; i < a->size && i < 8; i++) {
        const char *code = odp_code_find(cl, a->ptr[i].via.str.ptr, a->ptr[i].via.str.size);
        if (!code)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, field,
                                "%s: item %" PRIu32 " is not one of: %s (or its label)", field, i,
                                odp_code_choices(cl, choices, sizeof choices));
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen = seen || odp_v_eq(&codes[k], code);
        if (!seen)
            codes[n++] = odp_v_str(code);
    }
    *out = rows_array_literal(codes, n);
    return *out ? 0 : odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
}

static const char *s_int_text(const odp_val_t *v, char *buf, size_t size)
{
    if (!v->present)
        return NULL;
    snprintf(buf, size, "%lld", (long long)v->i);
    return buf;
}

/*  Only the fields given change; the rest keep their values. */
static int s_rules_update(odp_req_t *req, const odp_rules_set_t *m, const char *formats,
                          const char *encodings)
{
    char n[4][24];
    const char *vals[7] = {formats,
                           encodings,
                           s_int_text(&m->max_size, n[0], sizeof n[0]),
                           s_int_text(&m->max_row_length, n[1], sizeof n[1]),
                           s_int_text(&m->chunk_size, n[2], sizeof n[2]),
                           s_int_text(&m->credit, n[3], sizeof n[3]),
                           req->actor_str};
    PGresult *r = odp_db_exec(req->db,
                              "UPDATE transfer_rules SET formats = COALESCE($1::text[], formats), "
                              "encodings = COALESCE($2::text[], encodings), "
                              "max_size = COALESCE($3::bigint, max_size), "
                              "max_row_length = COALESCE($4::integer, max_row_length), "
                              "chunk_size = COALESCE($5::integer, chunk_size), "
                              "credit = COALESCE($6::integer, credit), updated_by = $7, "
                              "updated_at = now() WHERE id = 1 RETURNING " RULE_COLS,
                              7, vals, NULL);
    if (cat_exec_ok(r, PGRES_TUPLES_OK) < 0 || PQntuples(r) != 1)
        return odp_req_db_fail(req, r, "the transfer rules");
    odp_ev_rules_updated_t ev = {0};
    ev.max_size = rows_int(r, 0, 2);
    ev.chunk_size = rows_int(r, 0, 4);
    if (cat_event(req, &odp_def_ev_rules_updated, &ev) < 0 ||
        cat_commit(req, "the transfer rules") < 0) {
        PQclear(r);
        return -1;
    }
    return s_reply_rules(req, r);
}

static int s_rules_set(odp_req_t *req)
{
    const odp_rules_set_t *m = req->msg;
    char *formats = NULL, *encodings = NULL;
    int rc = s_code_array(req, &odp_cl_format, &m->formats, "formats", &formats);
    if (rc == 0)
        rc = s_code_array(req, &odp_cl_encoding, &m->encodings, "encodings", &encodings);
    if (rc == 0 && odp_db_begin(req->db) < 0)
        rc = odp_req_db_fail(req, NULL, "the transfer rules");
    if (rc == 0)
        rc = s_rules_update(req, m, formats, encodings);
    free(formats);
    free(encodings);
    return rc;
}

void catalogue_routes(odp_service_t *svc)
{
    const int ops = ODP_ALLOW_OPERATIONS, owner = ODP_ALLOW_OPERATIONS | ODP_ALLOW_PROVIDER;
    const int actors = ODP_ALLOW_ANY & ~ODP_ALLOW_ANONYMOUS;
    odp_service_route(svc, &odp_def_plan_add, owner, s_plan_add);
    odp_service_route(svc, &odp_def_plan_list, ODP_ALLOW_ANY, s_plan_list);
    odp_service_route(svc, &odp_def_catalog_add, owner, s_catalog_add);
    odp_service_route(svc, &odp_def_catalog_get, ODP_ALLOW_ANY, s_catalog_get);
    odp_service_route(svc, &odp_def_catalog_list, ODP_ALLOW_ANY, s_catalog_list);
    odp_service_route(svc, &odp_def_dictionary_set, owner, s_dictionary_set);
    odp_service_route(svc, &odp_def_dictionary_get, ODP_ALLOW_ANY, s_dictionary_get);
    odp_service_route(svc, &odp_def_registration_request, owner, s_registration_request);
    odp_service_route(svc, &odp_def_registration_decide, ops, s_registration_decide);
    odp_service_route(svc, &odp_def_rules_get, actors, s_rules_get);
    odp_service_route(svc, &odp_def_rules_set, ops, s_rules_set);
    maintenance_routes(svc);
}
