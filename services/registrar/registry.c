/*  The department registry (R3.1-R3.3, R4.1).

    Operations records who authorised it (the responsible organisation, by which
    document), registers provider departments and its own staff, and gives each of them
    credentials: CURVE public keys whose certificates carry the actor's kind and id. The
    credentials table is the truth; certificate files in ODP_CERT_DIR are derived from it,
    written in the same request before its commit and rebuilt at every start. */
#include "registrar.h"
#include "rows.h"

#include "common/config.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

/*  Department code: GB/T 2260 division (6 digits, province 11-82) + 3-digit department
    number, 001-999 (docs/identifiers.md). */
static bool s_valid_code(const odp_val_t *v)
{
    if (v->len != 9 || v->str[0] < '1' || v->str[0] > '8')
        return false;
    for (size_t i = 0; i < 9; i++)
        if (v->str[i] < '0' || v->str[i] > '9')
            return false;
    return memcmp(v->str + 6, "000", 3) != 0;
}

static const char *s_cert_dir(void)
{
    return odp_auth_secure() ? odp_config("registrar", "CERT_DIR", NULL) : NULL;
}

/*  Store a credential row and its event; write its certificate. In the caller's
    transaction. */
static int s_add_credential(odp_req_t *req, const char *kind, const odp_val_t *id,
                            const odp_val_t *name, const odp_val_t *key)
{
    const char *vals[5] = {key->str, kind, id->str, name->present ? name->str : NULL,
                           req->actor_str};
    int lens[5] = {(int)key->len, -1, (int)id->len, (int)name->len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO credentials (public_key, kind, actor_id, name, "
                              "created_by) VALUES ($1, $2, $3, $4, $5)",
                              5, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_req_db_fail(req, r, "a credential with this public key");
    PQclear(r);
    odp_ev_credential_added_t ev = {0};
    ev.kind = odp_v_str(kind);
    ev.id = *id;
    ev.public_key = *key;
    if (odp_outbox_append(req->outbox, &odp_def_ev_credential_added, &ev, req->actor_str) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    const char *dir = s_cert_dir();
    if (dir) {
        char k[41], i[65], n[201];
        odp_v_cstr(key, k, sizeof k);
        odp_v_cstr(id, i, sizeof i);
        odp_v_cstr(name, n, sizeof n);
        if (odp_auth_publish_key(dir, kind, i, n, k) < 0) {
            odp_error("event=registry.cert_write_failed dir=%s", dir);
            return odp_req_fail(req, ODP_E_INTERNAL, NULL,
                                "cannot write the certificate; nothing was registered");
        }
    }
    return 0;
}

/*  Commit; if the commit fails, take back a certificate written before it. */
static int s_commit(odp_req_t *req, const odp_val_t *key)
{
    if (odp_db_commit(req->db) == 0)
        return 0;
    const char *dir = s_cert_dir();
    if (dir && key && key->present) {
        char k[41];
        odp_auth_unpublish_key(dir, odp_v_cstr(key, k, sizeof k));
    }
    return odp_req_db_fail(req, NULL, "the registration");
}

/*  ---- authorisation (R3.2, R3.3) ---------------------------------------------------- */

#define AUTH_COLS "id, authority, operations, document, granted_on::text, recorded_by"

static void s_fill_authority(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    (void)zone;
    odp_rec_authority_t *a = out;
    a->id = rows_int(r, i, 0);
    a->authority = rows_col(r, i, 1);
    a->operations = rows_col(r, i, 2);
    a->document = rows_col(r, i, 3);
    a->granted_on = rows_col(r, i, 4);
    a->recorded_by = rows_col(r, i, 5);
}

static int s_authority_register(odp_req_t *req)
{
    const odp_authority_register_t *m = req->msg;
    if (!rows_valid_date(&m->granted_on))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "granted_on",
                            "granted_on must be a date, YYYY-MM-DD");
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the authorisation");
    const char *vals[5] = {m->authority.str, m->operations.str, m->document.str, m->granted_on.str,
                           req->actor_str};
    int lens[5] = {(int)m->authority.len, (int)m->operations.len, (int)m->document.len,
                   (int)m->granted_on.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO authorisations (authority, operations, document, "
                              "granted_on, recorded_by) VALUES ($1, $2, $3, $4::text::date, $5) "
                              "RETURNING " AUTH_COLS,
                              5, vals, lens);
    if (r && (strcmp(odp_db_state(r), "22008") == 0 || strcmp(odp_db_state(r), "22007") == 0)) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "granted_on",
                            "granted_on is not a calendar date");
    }
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the authorisation");
    odp_rec_authority_t rec = {0};
    s_fill_authority(r, 0, &rec, NULL);
    odp_ev_authority_registered_t ev = {0};
    ev.id = rec.id;
    ev.authority = m->authority;
    ev.operations = m->operations;
    int rc =
        odp_outbox_append(req->outbox, &odp_def_ev_authority_registered, &ev, req->actor_str) < 0
            ? odp_req_db_fail(req, NULL, "the event")
            : s_commit(req, NULL);
    if (rc == 0)
        rc = odp_encode(&odp_def_rec_authority, &rec, req->pk);
    PQclear(r);
    return rc;
}

static int s_authority_list(odp_req_t *req)
{
    PGresult *r =
        odp_db_exec(req->db, "SELECT " AUTH_COLS " FROM authorisations ORDER BY id", 0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "authorisations");
    return rows_pack(req, r, &odp_def_rec_authority, s_fill_authority, sizeof(odp_rec_authority_t));
}

/*  ---- departments (R3.1) ------------------------------------------------------------ */

#define DEPT_COLS "code, name, contact, active, " ROWS_TS("registered_at") ", registered_by"

static void s_fill_department(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    (void)zone;
    odp_rec_department_t *d = out;
    d->code = rows_col(r, i, 0);
    d->name = rows_col(r, i, 1);
    d->contact = rows_col(r, i, 2);
    d->active = rows_bool(r, i, 3);
    d->registered_at = rows_col(r, i, 4);
    d->registered_by = rows_col(r, i, 5);
}

static int s_department_add(odp_req_t *req)
{
    const odp_department_add_t *m = req->msg;
    if (!s_valid_code(&m->code))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "code",
                            "code must be a 6-digit GB/T 2260 division code and a 3-digit "
                            "department number 001-999, e.g. 440000001");
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the department");
    const char *vals[4] = {m->code.str, m->name.str, m->contact.present ? m->contact.str : NULL,
                           req->actor_str};
    int lens[4] = {(int)m->code.len, (int)m->name.len, (int)m->contact.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO departments (code, name, contact, registered_by) "
                              "VALUES ($1, $2, $3, $4) RETURNING " DEPT_COLS,
                              4, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "a department with this code or name");
    odp_rec_department_t rec = {0};
    s_fill_department(r, 0, &rec, NULL);
    odp_ev_department_registered_t ev = {0};
    ev.code = m->code;
    ev.name = m->name;
    int rc = 0;
    if (odp_outbox_append(req->outbox, &odp_def_ev_department_registered, &ev, req->actor_str) < 0)
        rc = odp_req_db_fail(req, NULL, "the event");
    if (rc == 0 && m->public_key.present)
        rc = s_add_credential(req, "provider", &m->code, &m->name, &m->public_key);
    if (rc == 0)
        rc = s_commit(req, &m->public_key);
    if (rc == 0)
        rc = odp_encode(&odp_def_rec_department, &rec, req->pk);
    PQclear(r);
    return rc;
}

static int s_department_get(odp_req_t *req)
{
    const odp_department_get_t *m = req->msg;
    const char *vals[1] = {m->code.str};
    int lens[1] = {(int)m->code.len};
    PGresult *r = odp_db_exec(req->db, "SELECT " DEPT_COLS " FROM departments WHERE code = $1", 1,
                              vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the department");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "code", "no department has this code");
    }
    odp_rec_department_t rec = {0};
    s_fill_department(r, 0, &rec, NULL);
    int rc = odp_encode(&odp_def_rec_department, &rec, req->pk);
    PQclear(r);
    return rc;
}

static int s_department_list(odp_req_t *req)
{
    PGresult *r =
        odp_db_exec(req->db, "SELECT " DEPT_COLS " FROM departments ORDER BY code", 0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "departments");
    return rows_pack(req, r, &odp_def_rec_department, s_fill_department,
                     sizeof(odp_rec_department_t));
}

static int s_department_update(odp_req_t *req)
{
    const odp_department_update_t *m = req->msg;
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the department");
    const char *vals[4] = {m->code.str, m->name.present ? m->name.str : NULL,
                           m->contact.present ? m->contact.str : NULL,
                           m->active.present ? (m->active.b ? "true" : "false") : NULL};
    int lens[4] = {(int)m->code.len, (int)m->name.len, (int)m->contact.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "UPDATE departments SET name = COALESCE($2, name), "
                              "contact = COALESCE($3, contact), "
                              "active = COALESCE($4::text::boolean, active) "
                              "WHERE code = $1 RETURNING " DEPT_COLS,
                              4, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "a department with this name");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "code", "no department has this code");
    }
    odp_rec_department_t rec = {0};
    s_fill_department(r, 0, &rec, NULL);
    odp_ev_department_updated_t ev = {0};
    ev.code = rec.code;
    ev.name = rec.name;
    ev.active = rec.active;
    int rc = odp_outbox_append(req->outbox, &odp_def_ev_department_updated, &ev, req->actor_str) < 0
                 ? odp_req_db_fail(req, NULL, "the event")
                 : s_commit(req, NULL);
    /*  A deactivated department's keys stop working at once; reactivation restores them. */
    if (rc == 0 && m->active.present && registry_sync_certs(req->db) < 0)
        odp_error("event=registry.cert_sync_failed code=%.*s", (int)m->code.len, m->code.str);
    if (rc == 0)
        rc = odp_encode(&odp_def_rec_department, &rec, req->pk);
    PQclear(r);
    return rc;
}

/*  ---- operations staff (R3.2) --------------------------------------------------------- */

static void s_fill_staff(PGresult *r, int i, void *out, msgpack_zone *zone)
{
    (void)zone;
    odp_rec_staff_t *s = out;
    s->login = rows_col(r, i, 0);
    s->name = rows_col(r, i, 1);
    s->registered_at = rows_col(r, i, 2);
}

static int s_staff_add(odp_req_t *req)
{
    const odp_staff_add_t *m = req->msg;
    for (size_t i = 0; i < m->login.len; i++) {
        char c = m->login.str[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "login",
                                "login may hold only a-z, 0-9, '.', '_' and '-'");
    }
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the staff member");
    const char *vals[3] = {m->login.str, m->name.str, req->actor_str};
    int lens[3] = {(int)m->login.len, (int)m->name.len, -1};
    PGresult *r = odp_db_exec(req->db,
                              "INSERT INTO staff (login, name, registered_by) VALUES ($1, $2, $3) "
                              "RETURNING login, name, " ROWS_TS("registered_at"),
                              3, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "a staff member with this login");
    odp_rec_staff_t rec = {0};
    s_fill_staff(r, 0, &rec, NULL);
    odp_ev_staff_registered_t ev = {0};
    ev.login = m->login;
    ev.name = m->name;
    int rc = 0;
    if (odp_outbox_append(req->outbox, &odp_def_ev_staff_registered, &ev, req->actor_str) < 0)
        rc = odp_req_db_fail(req, NULL, "the event");
    if (rc == 0 && m->public_key.present)
        rc = s_add_credential(req, "operations", &m->login, &m->name, &m->public_key);
    if (rc == 0)
        rc = s_commit(req, &m->public_key);
    if (rc == 0)
        rc = odp_encode(&odp_def_rec_staff, &rec, req->pk);
    PQclear(r);
    return rc;
}

static int s_staff_list(odp_req_t *req)
{
    PGresult *r = odp_db_exec(
        req->db, "SELECT login, name, " ROWS_TS("registered_at") " FROM staff ORDER BY login", 0,
        NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "staff");
    return rows_pack(req, r, &odp_def_rec_staff, s_fill_staff, sizeof(odp_rec_staff_t));
}

/*  ---- credentials --------------------------------------------------------------------- */

static int s_credential_add(odp_req_t *req)
{
    const odp_credential_add_t *m = req->msg;
    static const char *kinds[] = {"authority", "operations", "provider", "user"};
    const char *kind = NULL;
    for (size_t i = 0; i < 4; i++)
        if (odp_v_eq(&m->kind, kinds[i]))
            kind = kinds[i];
    if (!kind)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "kind",
                            "kind must be authority, operations, provider or user");
    /*  A provider key must act for a registered, active department; an operations key
        for registered staff. */
    const char *check = NULL;
    if (strcmp(kind, "provider") == 0)
        check = "SELECT 1 FROM departments WHERE code = $1 AND active";
    else if (strcmp(kind, "operations") == 0)
        check = "SELECT 1 FROM staff WHERE login = $1";
    if (check) {
        const char *vals[1] = {m->id.str};
        int lens[1] = {(int)m->id.len};
        PGresult *r = odp_db_exec(req->db, check, 1, vals, lens);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the credential");
        bool found = PQntuples(r) > 0;
        PQclear(r);
        if (!found)
            return odp_req_fail(req, ODP_E_NOT_FOUND, "id",
                                "no active %s is registered under this id",
                                strcmp(kind, "provider") == 0 ? "department" : "staff member");
    }
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the credential");
    int rc = s_add_credential(req, kind, &m->id, &m->name, &m->public_key);
    if (rc == 0)
        rc = s_commit(req, &m->public_key);
    return rc == 0 ? odp_req_ok_empty(req) : rc;
}

static int s_credential_revoke(odp_req_t *req)
{
    const odp_credential_revoke_t *m = req->msg;
    if (req->actor->key[0] && odp_v_eq(&m->public_key, req->actor->key))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "public_key",
                            "you cannot revoke the key this request is signed with");
    if (odp_db_begin(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the revocation");
    const char *vals[1] = {m->public_key.str};
    int lens[1] = {(int)m->public_key.len};
    PGresult *r = odp_db_exec(req->db,
                              "UPDATE credentials SET revoked_at = now() WHERE public_key = $1 "
                              "AND revoked_at IS NULL",
                              1, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        return odp_req_db_fail(req, r, "the revocation");
    bool hit = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!hit)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "public_key",
                            "no active credential has this key");
    odp_ev_credential_revoked_t ev = {0};
    ev.public_key = m->public_key;
    if (odp_outbox_append(req->outbox, &odp_def_ev_credential_revoked, &ev, req->actor_str) < 0)
        return odp_req_db_fail(req, NULL, "the event");
    if (odp_db_commit(req->db) < 0)
        return odp_req_db_fail(req, NULL, "the revocation");
    const char *dir = s_cert_dir();
    if (dir) {
        char k[41];
        odp_auth_unpublish_key(dir, odp_v_cstr(&m->public_key, k, sizeof k));
    }
    return odp_req_ok_empty(req);
}

/*  The certificate directory mirrors who may act now: a credential that is not revoked,
    and for a provider, whose department is active. Everything else is removed, which cuts
    its open connections and subscriptions too (odp_auth_key_current). */
int registry_sync_certs(odp_db_t *db)
{
    const char *dir = s_cert_dir();
    if (!dir)
        return 0;
    PGresult *r = odp_db_exec(db,
                              "SELECT c.public_key, c.kind, c.actor_id, coalesce(c.name, ''), "
                              "c.revoked_at IS NULL AND (c.kind <> 'provider' OR EXISTS "
                              "(SELECT 1 FROM departments d WHERE d.code = c.actor_id "
                              "AND d.active)) FROM credentials c",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int rc = 0, live = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, 4), "t") == 0) {
            live++;
            if (odp_auth_publish_key(dir, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                                     PQgetvalue(r, i, 3), PQgetvalue(r, i, 0)) < 0)
                rc = -1;
        } else {
            odp_auth_unpublish_key(dir, PQgetvalue(r, i, 0));
        }
    }
    odp_info("event=registry.certs_synced live=%d all=%d dir=%s", live, PQntuples(r), dir);
    PQclear(r);
    return rc;
}

bool registrar_may_act(const odp_req_t *req, const char *department)
{
    if (strcmp(req->actor->kind, "operations") == 0)
        return true;
    return strcmp(req->actor->kind, "provider") == 0 && department &&
           strcmp(req->actor->id, department) == 0;
}

void registry_routes(odp_service_t *svc)
{
    const int ops = ODP_ALLOW_OPERATIONS;
    odp_service_route(svc, &odp_def_authority_register, ops | ODP_ALLOW_AUTHORITY,
                      s_authority_register);
    odp_service_route(svc, &odp_def_authority_list, ODP_ALLOW_ANY, s_authority_list);
    odp_service_route(svc, &odp_def_department_add, ops, s_department_add);
    odp_service_route(svc, &odp_def_department_get, ODP_ALLOW_ANY, s_department_get);
    odp_service_route(svc, &odp_def_department_list, ODP_ALLOW_ANY, s_department_list);
    odp_service_route(svc, &odp_def_department_update, ops, s_department_update);
    odp_service_route(svc, &odp_def_staff_add, ops, s_staff_add);
    odp_service_route(svc, &odp_def_staff_list, ops, s_staff_list);
    odp_service_route(svc, &odp_def_credential_add, ops, s_credential_add);
    odp_service_route(svc, &odp_def_credential_revoke, ops, s_credential_revoke);
}
