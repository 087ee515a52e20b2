/*  What catalogue.c and maintenance.c share: the checks of catalogue values, the records
    they reply with, and the entry being changed. Internal to the registrar. */
#ifndef ODP_REGISTRAR_CATALOGUE_H
#define ODP_REGISTRAR_CATALOGUE_H

#include "registrar.h"
#include "rows.h"

#include "common/codelist.h"

#define CAT_DEPT_SIZE 65 /* an actor id fits, so a foreign id is never truncated into a code */

/*  A plan is catalogued once a catalogue entry names it, cancelled once cancelled, else
    planned; overdue while planned from the day after its due date (R5.3: planned, never
    delivered). Read FROM plans p with CAT_PLAN_JOIN. */
#define CAT_PLAN_COLS                                                                              \
    "p.id, p.department, p.title, p.summary, p.domain, p.content_kind, p.open_type, "              \
    "p.update_cycle, p.due_on::text, p.maintainer, "                                               \
    "CASE WHEN p.cancelled_at IS NOT NULL THEN 'cancelled' WHEN r.resource IS NULL "               \
    "THEN 'planned' ELSE 'catalogued' END, " CAT_PLAN_OVERDUE ", r.resource, p.planned_by, "       \
    "p.cancelled_reason"
#define CAT_PLAN_OVERDUE                                                                           \
    "(p.cancelled_at IS NULL AND r.resource IS NULL AND p.due_on < current_date)"
#define CAT_PLAN_JOIN " LEFT JOIN resources r ON r.plan = p.id"

/*  A catalogue entry, read from resources (in SELECT and in RETURNING): next_due_on()
    and cycle_period() are in migration 009. */
#define CAT_COLS                                                                                   \
    "resource, department, plan, title, summary, keywords, domain, content_kind, "                 \
    "delivery_form, open_type, update_cycle, released_on::text, updated_on::text, contact, "       \
    "location, status, refused_reason, " ROWS_TS(                                                  \
        "catalogued_at") ", catalogued_by, "                                                       \
                         "access_conditions, endpoint, next_due_on(resources)::text, "             \
                         "coalesce(next_due_on(resources) < current_date, false)"

/*  The code for v (its code or its Chinese label) in *code; NULL when v is absent.
    Otherwise 422 naming field and every allowed code. */
int cat_code(odp_req_t *req, const odp_codelist_t *cl, const odp_val_t *v, const char *field,
             const char **code);
/*  v absent or a calendar date YYYY-MM-DD; else 422 naming field. */
int cat_date(odp_req_t *req, const odp_val_t *v, const char *field);
/*  keywords: 1 to 20 (the declaration bounds the count and each length), none empty. */
int cat_keywords(odp_req_t *req, const odp_val_t *v, odp_val_t items[20], size_t *n);
/*  The endpoint and access conditions an entry needs, given its delivery form and open
    type: a service or app is reached at an http(s) endpoint and has no pushed content,
    a dataset file has no endpoint; a conditional opening states its conditions. given
    is the request's endpoint, stored whether the entry already has one. */
int cat_entry_rules(odp_req_t *req, const char *delivery_form, const char *open_type,
                    const odp_val_t *given, bool stored, bool has_conditions);

int cat_exec_ok(PGresult *r, ExecStatusType want);
/*  Append ev to the outbox in the open transaction. -1 with the error set. */
int cat_event(odp_req_t *req, const odp_msgdef_t *def, void *ev);
int cat_commit(odp_req_t *req, const char *what);

/*  The actor as entry_visible()'s first two parameters (kind, id). */
void cat_viewer(const odp_req_t *req, const char *vals[2]);

/*  Fill an odp_rec_plan_t from row i of CAT_PLAN_COLS. */
void cat_fill_plan(PGresult *r, int i, void *out, msgpack_zone *zone);
/*  Reply with the plan record in row 0 of r, which this clears. */
int cat_reply_plan(odp_req_t *req, PGresult *r);
/*  Reply with the catalogue record (CAT_COLS) in row 0 of r, which this clears. */
int cat_reply_catalog(odp_req_t *req, PGresult *r);

/*  An entry being changed, as cat_resource_lock() found it. */
typedef struct {
    char department[CAT_DEPT_SIZE];
    char content_kind[32];
    char delivery_form[32];
    char open_type[32];
    char status[32];
    bool has_endpoint;
    bool has_conditions;
} cat_resource_t;

/*  In a transaction: lock the entry's row until commit, so that no two changes of one
    entry interleave, and check the actor may act on it: 404 when the actor may not even
    see it (or it does not exist), 403 when it may see but not change it. */
int cat_resource_lock(odp_req_t *req, const odp_val_t *resource, cat_resource_t *res);

/*  maintenance.c: plan.update, plan.cancel, catalog.update (R4.2c, R5.3, R5.4). */
void maintenance_routes(odp_service_t *svc);

#endif
