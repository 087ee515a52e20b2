/*  The department registry end to end (R3.1-R3.3, R4.1) and every service's health. */
#include "harness.h"

#include "common/auth.h"

#include <string.h>

static void s_health_all(void)
{
    for (int i = 0; i < ODP_NSERVICES; i++) {
        const char *svc = odp_service_names[i];
        odp_client_t *c = h_client(svc, NULL);
        CHECK(c, "client for %s", svc);
        if (!c)
            continue;
        odp_health_t req = {0};
        odp_reply_t rep;
        int st = h_call(c, &odp_def_health, &req, &rep);
        CHECK(st == 200, "%s health status %d", svc, st);
        odp_rep_health_t h;
        odp_error_t e;
        if (st == 200) {
            CHECK(odp_decode_fields(&odp_def_rep_health, &rep.obj, &h, &e) == 0,
                  "%s health reply does not match its declaration: %s", svc, e.message);
            CHECK(odp_v_eq(&h.service, svc), "%s health names another service", svc);
            CHECK(h.db.b, "%s reports its database down", svc);
            CHECK(h.secure.b, "%s runs without CURVE", svc);
        }
        odp_reply_free(&rep);
        odp_client_destroy(&c);
    }
}

static void s_authority(void)
{
    odp_client_t *c = h_client("registrar", NULL);
    odp_authority_register_t m = {0};
    m.authority = odp_v_str("广东省政务服务数据管理局");
    m.operations = odp_v_str("广东省数字政府运营中心");
    m.document = odp_v_str("粤政数〔2026〕12号");
    m.granted_on = odp_v_str("2026-03-01");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_authority_register, &m, &rep);
    CHECK(st == 200, "authority.register status %d %s", st, h_err_code(&rep));
    int64_t id = h_int(&rep, "id");
    odp_reply_free(&rep);

    m.granted_on = odp_v_str("2026-02-30");
    st = h_call(c, &odp_def_authority_register, &m, &rep);
    CHECK(st == 422 && strcmp(h_err_code(&rep), "INVALID_VALUE") == 0,
          "an impossible date gave %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);

    odp_authority_list_t l = {0};
    st = h_call(c, &odp_def_authority_list, &l, &rep);
    CHECK(st == 200, "authority.list status %d", st);
    const msgpack_object *items = odp_map_get(&rep.obj, "items");
    bool found = false;
    for (uint32_t i = 0; items && i < items->via.array.size; i++) {
        odp_rec_authority_t a;
        odp_error_t e;
        if (odp_decode_fields(&odp_def_rec_authority, &items->via.array.ptr[i], &a, &e) == 0 &&
            a.id.i == id) {
            found = odp_v_eq(&a.recorded_by, "operations:admin") &&
                    odp_v_eq(&a.operations, "广东省数字政府运营中心") &&
                    odp_v_eq(&a.granted_on, "2026-03-01");
        }
    }
    CHECK(found, "authorisation %lld not listed with who recorded it", (long long)id);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

static void s_department_round_trip(void)
{
    const char *code = "440000001", *name = "广东省生态环境厅";
    CHECK(h_department(code, name) == 0, "department.add with a new key");
    odp_client_t *c = h_client("registrar", NULL);
    odp_department_get_t g = {0};
    g.code = odp_v_str(code);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_department_get, &g, &rep);
    CHECK(st == 200, "department.get status %d", st);
    odp_rec_department_t d;
    odp_error_t e;
    CHECK(st == 200 && odp_decode_fields(&odp_def_rec_department, &rep.obj, &d, &e) == 0,
          "department record does not decode");
    if (st == 200) {
        CHECK(odp_v_eq(&d.name, name), "name did not survive the round trip");
        CHECK(d.active.b, "a new department is active");
        CHECK(odp_v_eq(&d.registered_by, "operations:admin"), "registered_by");
    }
    odp_reply_free(&rep);

    odp_department_update_t u = {0};
    u.code = odp_v_str(code);
    u.contact = odp_v_str("020-12345678 数据科");
    st = h_call(c, &odp_def_department_update, &u, &rep);
    const msgpack_object *contact = odp_map_get(&rep.obj, "contact");
    CHECK(st == 200 && contact && contact->type == MSGPACK_OBJECT_STR &&
              contact->via.str.size == strlen("020-12345678 数据科"),
          "department.update status %d", st);
    odp_reply_free(&rep);

    odp_department_add_t dup = {0};
    dup.code = odp_v_str(code);
    dup.name = odp_v_str("另一个名称");
    st = h_call(c, &odp_def_department_add, &dup, &rep);
    CHECK(st == 409 && strcmp(h_err_code(&rep), "ALREADY_EXISTS") == 0,
          "a duplicate code gave %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);

    const char *bad[] = {"440000000", "940000001", "44000000a"};
    for (size_t i = 0; i < 3; i++) {
        odp_department_add_t b = {0};
        b.code = odp_v_str(bad[i]);
        b.name = odp_v_str("坏代码部门");
        st = h_call(c, &odp_def_department_add, &b, &rep);
        char field[65];
        odp_v_cstr(&rep.err.field, field, sizeof field);
        CHECK(st == 422 && strcmp(h_err_code(&rep), "INVALID_VALUE") == 0 &&
                  strcmp(field, "code") == 0,
              "code %s gave %d %s field=%s", bad[i], st, h_err_code(&rep), field);
        odp_reply_free(&rep);
    }

    odp_department_list_t l = {0};
    st = h_call(c, &odp_def_department_list, &l, &rep);
    const msgpack_object *items = odp_map_get(&rep.obj, "items");
    bool listed = false;
    for (uint32_t i = 0; items && i < items->via.array.size; i++) {
        const msgpack_object *cv = odp_map_get(&items->via.array.ptr[i], "code");
        if (cv && cv->type == MSGPACK_OBJECT_STR && cv->via.str.size == 9 &&
            memcmp(cv->via.str.ptr, code, 9) == 0)
            listed = true;
    }
    CHECK(st == 200 && listed, "department.list does not list %s", code);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

static void s_department_key_acts(void)
{
    const char *code = "440300002";
    CHECK(h_department(code, "深圳市规划和自然资源局") == 0, "department.add");
    odp_client_t *c = h_client("registrar", h_keyfile(code));
    odp_whoami_t w = {0};
    odp_reply_t rep;
    int st = h_call(c, &odp_def_whoami, &w, &rep);
    const msgpack_object *actor = odp_map_get(&rep.obj, "actor");
    CHECK(st == 200 && actor && actor->via.str.size == strlen("provider:440300002") &&
              memcmp(actor->via.str.ptr, "provider:440300002", actor->via.str.size) == 0,
          "whoami with the department's key, status %d", st);
    odp_reply_free(&rep);

    odp_department_add_t m = {0};
    m.code = odp_v_str("440300009");
    m.name = odp_v_str("越权部门");
    st = h_call(c, &odp_def_department_add, &m, &rep);
    CHECK(st == 403 && strcmp(h_err_code(&rep), "FORBIDDEN") == 0,
          "a provider registering a department got %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);

    odp_department_list_t l = {0};
    st = h_call(c, &odp_def_department_list, &l, &rep);
    CHECK(st == 200, "a provider may list departments, got %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&c);

    /*  The same key is known to every service, not just the registrar. */
    c = h_client("metrics", h_keyfile(code));
    st = h_call(c, &odp_def_whoami, &w, &rep);
    CHECK(st == 200, "metrics does not know the department's key (%d)", st);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

static void s_staff(void)
{
    char base[512], key[41];
    snprintf(base, sizeof base, "%s/keys/li.ming", h_var());
    CHECK(odp_auth_keygen("operations", "li.ming", "李明", base, key) == 0, "keygen");
    odp_client_t *c = h_client("registrar", NULL);
    odp_staff_add_t m = {0};
    m.login = odp_v_str("li.ming");
    m.name = odp_v_str("李明");
    m.public_key = odp_v_str(key);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_staff_add, &m, &rep);
    CHECK(st == 200, "staff.add status %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);

    m.login = odp_v_str("Li Ming");
    m.public_key = (odp_val_t){0};
    st = h_call(c, &odp_def_staff_add, &m, &rep);
    CHECK(st == 422, "a login with a space and capitals gave %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&c);

    char secret[600];
    snprintf(secret, sizeof secret, "%s_secret", base);
    c = h_client("registrar", secret);
    odp_whoami_t w = {0};
    st = h_call(c, &odp_def_whoami, &w, &rep);
    const msgpack_object *actor = odp_map_get(&rep.obj, "actor");
    CHECK(st == 200 && actor && actor->via.str.size == strlen("operations:li.ming"),
          "whoami as staff, status %d", st);
    odp_reply_free(&rep);
    odp_staff_list_t l = {0};
    st = h_call(c, &odp_def_staff_list, &l, &rep);
    CHECK(st == 200, "staff may list staff (%d)", st);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

const h_case_t t_registry_cases[] = {
    {"every service answers health", s_health_all},
    {"authorisation of operations is recorded with who recorded it", s_authority},
    {"department registry round trip", s_department_round_trip},
    {"a department's key acts as that department, and only as it", s_department_key_acts},
    {"operations staff registered with credentials", s_staff},
    {NULL, NULL}};
