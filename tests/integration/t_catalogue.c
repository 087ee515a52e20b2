/*  Planning, the catalogue, data dictionaries, registration and the transfer rules end to
    end (R4.2, R5.3, R5.4, R5.5a, R5.5b, R5.5c, R7a, R8, R9b). Departments 4412xxxxx, 4413xxxxx
    and 4420xxxxx. */
#include "harness.h"

#include "common/auth.h"
#include "common/json.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*  ---- helpers ----------------------------------------------------------------------------- */

static bool s_str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static bool s_get_is(const msgpack_object *map, const char *key, const char *s)
{
    return s_str_is(odp_map_get(map, key), s);
}

static bool s_get_bool(const msgpack_object *map, const char *key, bool want)
{
    const msgpack_object *o = odp_map_get(map, key);
    return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean == want;
}

static void s_copy(const msgpack_object *map, const char *key, char *out, size_t size)
{
    const msgpack_object *o = odp_map_get(map, key);
    out[0] = '\0';
    if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size < size) {
        memcpy(out, o->via.str.ptr, o->via.str.size);
        out[o->via.str.size] = '\0';
    }
}

/*  The status is want and, for an error, the code and field are too. */
#define EXPECT(st, rep, want, want_code, want_field, what)                                         \
    do {                                                                                           \
        char f_[65], m_[300];                                                                      \
        odp_v_cstr(&(rep)->err.field, f_, sizeof f_);                                              \
        odp_v_cstr(&(rep)->err.message, m_, sizeof m_);                                            \
        CHECK((st) == (want) && strcmp(h_err_code(rep), want_code) == 0 &&                         \
                  strcmp(f_, want_field) == 0,                                                     \
              "%s: got %d %s field '%s' (%s), want %d %s field '%s'", what, st, h_err_code(rep),   \
              f_, m_, want, want_code, want_field);                                                \
    } while (0)

/*  A msgpack list of text over items (which must outlive it). */
static odp_val_t s_strs(msgpack_object *buf, const char *const *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf[i + 1].type = MSGPACK_OBJECT_STR;
        buf[i + 1].via.str.ptr = items[i];
        buf[i + 1].via.str.size = (uint32_t)strlen(items[i]);
    }
    buf[0].type = MSGPACK_OBJECT_ARRAY;
    buf[0].via.array.size = (uint32_t)n;
    buf[0].via.array.ptr = buf + 1;
    return (odp_val_t){.present = true, .obj = buf};
}

static const char *const s_words[] = {"空气质量", "AQI"};
static msgpack_object s_words_obj[3];

/*  A complete, valid catalog.add for a daily air quality dataset. */
static odp_catalog_add_t s_entry(void)
{
    odp_catalog_add_t m = {0};
    m.title = odp_v_str("空气质量日报");
    m.summary = odp_v_str("全省各监测站点每日空气质量");
    m.keywords = s_strs(s_words_obj, s_words, 2);
    m.domain = odp_v_str("resources_environment");
    m.content_kind = odp_v_str("dataset");
    m.delivery_form = odp_v_str("dataset_file");
    m.open_type = odp_v_str("unconditional");
    m.update_cycle = odp_v_str("daily");
    m.released_on = odp_v_str("2026-01-15");
    m.contact = odp_v_str("020-83880000 数据科");
    m.location = odp_v_str("https://data.example.gov.cn/air/daily");
    return m;
}

/*  catalog.add; the new resource code into code (empty on failure). */
static int s_catalog(odp_client_t *c, const odp_catalog_add_t *m, char code[33])
{
    odp_reply_t rep;
    int st = h_call(c, &odp_def_catalog_add, m, &rep);
    CHECK(st == 200, "catalog.add status %d %s (%.*s)", st, h_err_code(&rep),
          (int)rep.err.message.len, rep.err.message.str ? rep.err.message.str : "");
    s_copy(&rep.obj, "resource", code, 33);
    odp_reply_free(&rep);
    return st;
}

static int s_plan(odp_client_t *c, const char *due_on, int64_t *id)
{
    odp_plan_add_t m = {0};
    m.title = odp_v_str("空气质量日报开放计划");
    m.domain = odp_v_str("资源环境");
    m.content_kind = odp_v_str("dataset");
    m.open_type = odp_v_str("无条件开放");
    m.update_cycle = odp_v_str("daily");
    m.due_on = odp_v_str(due_on);
    m.maintainer = odp_v_str("监测处 王工");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_plan_add, &m, &rep);
    *id = st == 200 ? h_int(&rep, "id") : -1;
    if (st == 200) {
        CHECK(s_get_is(&rep.obj, "open_type", "unconditional") &&
                  s_get_is(&rep.obj, "domain", "resources_environment"),
              "plan.add did not store labels as codes");
        CHECK(s_get_is(&rep.obj, "status", "planned"), "a new plan is planned");
        char by[80];
        s_copy(&rep.obj, "planned_by", by, sizeof by);
        CHECK(strncmp(by, "provider:44", 11) == 0, "planned_by %s", by);
    }
    odp_reply_free(&rep);
    return st;
}

/*  The plan with id in a plan.list reply, or NULL. */
static const msgpack_object *s_find_plan(const odp_reply_t *rep, int64_t id)
{
    const msgpack_object *items = odp_map_get(&rep->obj, "items");
    for (uint32_t i = 0; items && i < items->via.array.size; i++) {
        const msgpack_object *id_o = odp_map_get(&items->via.array.ptr[i], "id");
        if (id_o && id_o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (int64_t)id_o->via.u64 == id)
            return &items->via.array.ptr[i];
    }
    return NULL;
}

static int s_list_plans(odp_client_t *c, const odp_plan_list_t *m, odp_reply_t *rep)
{
    int st = h_call(c, &odp_def_plan_list, m, rep);
    CHECK(st == 200, "plan.list status %d %s", st, h_err_code(rep));
    return st;
}

/*  ---- JSON data dictionaries as msgpack -------------------------------------------------- */

/*  dictionary.set of resource's table (NULL: default) with fields given as JSON text. */
static int s_dict_set(odp_client_t *c, const char *resource, const char *table, json_t *fields,
                      odp_reply_t *rep)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    odp_json_pack_renamed(&pk, fields, "enum", "allowed");
    odp_dictionary_set_t m = {0};
    m.resource = odp_v_str(resource);
    m.table = odp_v_str(table);
    m.fields = odp_v_raw(buf.data, buf.size);
    int st = h_call(c, &odp_def_dictionary_set, &m, rep);
    msgpack_sbuffer_destroy(&buf);
    return st;
}

static int s_dict_set_text(odp_client_t *c, const char *resource, const char *table,
                           const char *json, odp_reply_t *rep)
{
    json_error_t je;
    json_t *fields = json_loads(json, 0, &je);
    CHECK(fields, "test JSON does not parse: %s", je.text);
    if (!fields) {
        memset(rep, 0, sizeof *rep);
        return 0;
    }
    int st = s_dict_set(c, resource, table, fields, rep);
    json_decref(fields);
    return st;
}

static bool s_num_is(const msgpack_object *o, double want)
{
    if (!o)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (double)o->via.u64 == want;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return (double)o->via.i64 == want;
    return (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) &&
           o->via.f64 == want;
}

/*  Whether the stored field got is the JSON field want, key by key; a key absent from
    want must be absent from got (required and unique default to false). */
static bool s_differs(char *why, size_t size, const char *what)
{
    snprintf(why, size, "%s differs", what);
    return false;
}

static bool s_field_same(json_t *want, const msgpack_object *got, char *why, size_t size)
{
    static const char *text[] = {"name", "type", "pattern", "check", "description"};
    for (size_t k = 0; k < 5; k++) {
        json_t *w = json_object_get(want, text[k]);
        const msgpack_object *g = odp_map_get(got, text[k]);
        if (w ? !s_str_is(g, json_string_value(w)) : g != NULL)
            return s_differs(why, size, text[k]);
    }
    static const char *nums[] = {"length", "min", "max"};
    for (size_t k = 0; k < 3; k++) {
        json_t *w = json_object_get(want, nums[k]);
        const msgpack_object *g = odp_map_get(got, nums[k]);
        if (w ? !s_num_is(g, json_number_value(w)) : g != NULL)
            return s_differs(why, size, nums[k]);
    }
    if (!s_get_bool(got, "required", json_is_true(json_object_get(want, "required"))) ||
        !s_get_bool(got, "unique", json_is_true(json_object_get(want, "unique"))))
        return s_differs(why, size, "required or unique");
    json_t *w = json_object_get(want, "enum");
    const msgpack_object *g = odp_map_get(got, "allowed");
    if (!w)
        return g == NULL || s_differs(why, size, "allowed");
    if (!g || g->type != MSGPACK_OBJECT_ARRAY || g->via.array.size != json_array_size(w))
        return s_differs(why, size, "allowed");
    for (size_t i = 0; i < json_array_size(w); i++)
        if (!s_str_is(&g->via.array.ptr[i], json_string_value(json_array_get(w, i))))
            return s_differs(why, size, "allowed");
    return true;
}

/*  The reply's fields are the JSON fields, in order. */
static void s_dict_matches(json_t *want, const odp_reply_t *rep, const char *what)
{
    const msgpack_object *got = odp_map_get(&rep->obj, "fields");
    CHECK(got && got->type == MSGPACK_OBJECT_ARRAY && got->via.array.size == json_array_size(want),
          "%s: %zu fields sent, a different number stored", what, json_array_size(want));
    for (size_t i = 0; got && got->type == MSGPACK_OBJECT_ARRAY && i < got->via.array.size &&
                       i < json_array_size(want);
         i++) {
        char why[64] = "";
        CHECK(s_field_same(json_array_get(want, i), &got->via.array.ptr[i], why, sizeof why),
              "%s: field %zu did not round-trip: %s", what, i, why);
    }
}

/*  ---- events, registration, pushes, the database ------------------------------------------ */

/*  The registrar's newest event number. */
static int64_t s_seq(void)
{
    int64_t seq = -1;
    h_health("registrar", &seq, NULL, NULL);
    return seq;
}

/*  The body of the first registrar event of topic after seq whose key is the text value
    (or, value NULL, the integer id), in *out while rep lives; false when there is none. */
static bool s_event_find(int64_t seq, const char *topic, const char *key, const char *value,
                         int64_t id, odp_reply_t *rep, const msgpack_object **out)
{
    odp_client_t *ops = h_client("registrar", NULL);
    odp_events_replay_t m = {0};
    m.from = odp_v_int(seq + 1);
    *out = NULL;
    if (h_call(ops, &odp_def_events_replay, &m, rep) == 200) {
        const msgpack_object *evs = odp_map_get(&rep->obj, "events");
        for (uint32_t i = 0; evs && !*out && i < evs->via.array.size; i++) {
            const msgpack_object *pair = &evs->via.array.ptr[i];
            if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
                !s_str_is(&pair->via.array.ptr[0], topic))
                continue;
            const msgpack_object *body = &pair->via.array.ptr[1], *k = odp_map_get(body, key);
            if (value
                    ? s_str_is(k, value)
                    : k && k->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (int64_t)k->via.u64 == id)
                *out = body;
        }
    }
    odp_client_destroy(&ops);
    return *out != NULL;
}

/*  Whether the registrar's events after seq include topic for resource. */
static bool s_event_after(int64_t seq, const char *topic, const char *resource)
{
    odp_reply_t rep;
    const msgpack_object *body;
    bool found = s_event_find(seq, topic, "resource", resource, 0, &rep, &body);
    odp_reply_free(&rep);
    return found;
}

static bool s_int_is(const msgpack_object *map, const char *key, int64_t want)
{
    const msgpack_object *o = odp_map_get(map, key);
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (int64_t)o->via.u64 == want;
}

/*  The list at key of map is exactly the n texts want, in order. */
static bool s_list_is(const msgpack_object *map, const char *key, const char *const *want, size_t n)
{
    const msgpack_object *o = odp_map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_str_is(&o->via.array.ptr[i], want[i]))
            return false;
    return true;
}

static int s_decide(odp_client_t *c, const char *code, bool approve, const char *reason,
                    odp_reply_t *rep)
{
    odp_registration_decide_t d = {0};
    d.resource = odp_v_str(code);
    d.approve = odp_v_bool(approve);
    d.reason = odp_v_str(reason);
    return h_call(c, &odp_def_registration_decide, &d, rep);
}

/*  The provider requests registration of code and operations registers it. */
static void s_register(odp_client_t *p, const char *code)
{
    odp_client_t *ops = h_client("registrar", NULL);
    odp_registration_request_t r = {0};
    r.resource = odp_v_str(code);
    odp_reply_t rep;
    int st = h_call(p, &odp_def_registration_request, &r, &rep);
    CHECK(st == 200, "registration.request of %s: %d %s", code, st, h_err_code(&rep));
    odp_reply_free(&rep);
    st = s_decide(ops, code, true, NULL, &rep);
    CHECK(st == 200, "registration of %s: %d %s", code, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
}

/*  Push csv to resource's main table in one chunk; its version, or -1. */
static int64_t s_push_csv(odp_client_t *c, const char *resource, const char *csv)
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    size_t len = strlen(csv);
    crypto_hash_sha256(digest, (const unsigned char *)csv, len);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    odp_push_begin_t b = {0};
    b.resource = odp_v_str(resource);
    b.format = odp_v_str("csv");
    b.size = odp_v_int((int64_t)len);
    b.sha256 = odp_v_str(hex);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_push_begin, &b, &rep);
    int64_t upload = st == 200 ? h_int(&rep, "upload") : -1;
    CHECK(upload > 0, "push.begin %s: %d %s", resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    if (upload <= 0)
        return -1;
    odp_push_chunk_t ch = {0};
    ch.upload = odp_v_int(upload);
    ch.offset = odp_v_int(0);
    ch.data = odp_v_bin(csv, len);
    st = h_call(c, &odp_def_push_chunk, &ch, &rep);
    CHECK(st == 200, "push.chunk %s: %d %s", resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_push_finish_t f = {0};
    f.upload = odp_v_int(upload);
    st = h_call(c, &odp_def_push_finish, &f, &rep);
    int64_t version = st == 200 ? h_int(&rep, "version") : -1;
    CHECK(version > 0, "push.finish %s: %d %s", resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    return version;
}

/*  One value as text from the database (superuser), "" when none. */
static void s_pg_text(const char *sql, char *out, size_t size)
{
    PGconn *pg = h_pg_super();
    PGresult *r = PQexec(pg, sql);
    out[0] = '\0';
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pg);
}

/*  Run a statement as superuser (test set-up: moving dates into the past). */
static void s_pg_do(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_pg_do(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *pg = h_pg_super();
    PGresult *r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pg);
}

/*  A client acting as a user (使用者) with a new key. */
static odp_client_t *s_user(const char *id)
{
    char base[512], secret[600], key[41];
    snprintf(base, sizeof base, "%s/keys/user-%s", h_var(), id);
    CHECK(odp_auth_keygen("user", id, "公众用户", base, key) == 0, "keygen user %s", id);
    odp_client_t *ops = h_client("registrar", NULL);
    odp_credential_add_t m = {0};
    m.kind = odp_v_str("user");
    m.id = odp_v_str(id);
    m.public_key = odp_v_str(key);
    odp_reply_t rep;
    int st = h_call(ops, &odp_def_credential_add, &m, &rep);
    CHECK(st == 200, "credential.add user %s: %d %s", id, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
    snprintf(secret, sizeof secret, "%s_secret", base);
    return h_client("registrar", secret);
}

/*  ---- cases --------------------------------------------------------------------------------- */

static void s_plans(void)
{
    CHECK(h_department("441200001", "韶关市生态环境局") == 0, "department.add 441200001");
    CHECK(h_department("441200002", "韶关市交通运输局") == 0, "department.add 441200002");
    odp_client_t *p = h_client("registrar", h_keyfile("441200001"));
    odp_client_t *ops = h_client("registrar", NULL);
    int64_t future = -1, past = -1;
    CHECK(s_plan(p, "2099-12-31", &future) == 200, "plan.add due in the future");
    CHECK(s_plan(p, "2020-01-31", &past) == 200, "plan.add due in the past");

    odp_plan_add_t bad = {0};
    bad.title = odp_v_str("坏计划");
    bad.open_type = odp_v_str("unconditional");
    bad.update_cycle = odp_v_str("daily");
    bad.due_on = odp_v_str("2026-02-30");
    bad.maintainer = odp_v_str("某人");
    odp_reply_t rep;
    int st = h_call(p, &odp_def_plan_add, &bad, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "due_on", "a plan due on 30 February");
    odp_reply_free(&rep);
    bad.due_on = odp_v_str("2026-06-30");
    bad.update_cycle = odp_v_str("fortnightly");
    st = h_call(p, &odp_def_plan_add, &bad, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "update_cycle", "a fortnightly plan");
    odp_reply_free(&rep);
    bad.update_cycle = odp_v_str("每月");
    bad.department = odp_v_str("441200002");
    st = h_call(p, &odp_def_plan_add, &bad, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "department", "planning for another department");
    odp_reply_free(&rep);
    bad.department = (odp_val_t){0};
    st = h_call(ops, &odp_def_plan_add, &bad, &rep);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "department", "operations planning for nobody");
    odp_reply_free(&rep);
    bad.department = odp_v_str("441299999");
    st = h_call(ops, &odp_def_plan_add, &bad, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "department", "a plan for an unknown department");
    odp_reply_free(&rep);

    odp_plan_list_t l = {0};
    if (s_list_plans(p, &l, &rep) == 200) {
        const msgpack_object *f = s_find_plan(&rep, future), *o = s_find_plan(&rep, past);
        CHECK(f && s_get_bool(f, "overdue", false), "the future plan is listed, not overdue");
        CHECK(o && s_get_bool(o, "overdue", true) && s_get_is(o, "status", "planned"),
              "the past-due plan is listed as planned and overdue");
    }
    odp_reply_free(&rep);
    l.overdue = odp_v_bool(true);
    if (s_list_plans(p, &l, &rep) == 200)
        CHECK(s_find_plan(&rep, past) && !s_find_plan(&rep, future),
              "overdue=true lists the past-due plan only");
    odp_reply_free(&rep);

    /*  Delivering the plan's entry ends its overdue state. */
    odp_catalog_add_t m = s_entry();
    m.plan = odp_v_int(past);
    char code[33];
    s_catalog(p, &m, code);
    if (s_list_plans(p, &l, &rep) == 200)
        CHECK(!s_find_plan(&rep, past), "a catalogued plan is no longer overdue");
    odp_reply_free(&rep);
    l.overdue = (odp_val_t){0};
    if (s_list_plans(p, &l, &rep) == 200) {
        const msgpack_object *o = s_find_plan(&rep, past);
        CHECK(o && s_get_is(o, "status", "catalogued") && s_get_bool(o, "overdue", false) &&
                  s_get_is(o, "resource", code),
              "the plan is catalogued as %s", code);
    }
    odp_reply_free(&rep);
    st = h_call(p, &odp_def_catalog_add, &m, &rep);
    EXPECT(st, &rep, 409, "ALREADY_EXISTS", "plan", "cataloguing a plan twice");
    odp_reply_free(&rep);

    /*  Another department neither sees these plans nor can realise them. */
    odp_client_t *other = h_client("registrar", h_keyfile("441200002"));
    if (s_list_plans(other, &l, &rep) == 200)
        CHECK(!s_find_plan(&rep, future) && !s_find_plan(&rep, past),
              "a department sees another's plans");
    odp_reply_free(&rep);
    m.plan = odp_v_int(future);
    st = h_call(other, &odp_def_catalog_add, &m, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "plan", "cataloguing another department's plan");
    odp_reply_free(&rep);
    l.department = odp_v_str("441200002");
    if (s_list_plans(ops, &l, &rep) == 200)
        CHECK(!s_find_plan(&rep, future), "operations' department filter");
    odp_reply_free(&rep);
    odp_client_destroy(&other);
    odp_client_destroy(&ops);
    odp_client_destroy(&p);
}

static void s_codes(void)
{
    const char *dept = "441200003";
    CHECK(h_department(dept, "韶关市统计局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    char a[33], b[33], c[33];
    odp_catalog_add_t m = s_entry();
    m.domain = odp_v_str("资源环境");
    s_catalog(p, &m, a);
    CHECK(strcmp(a, "441200003-021-00001") == 0, "first code %s, want 441200003-021-00001", a);
    s_catalog(p, &m, b);
    CHECK(strcmp(b, "441200003-021-00002") == 0, "second code %s, want 441200003-021-00002", b);
    m.domain = odp_v_str("economy");
    m.content_kind = odp_v_str("报告");
    m.delivery_form = odp_v_str("app");
    m.endpoint = odp_v_str("https://apps.example.gov.cn/stats");
    s_catalog(p, &m, c);
    CHECK(strcmp(c, "441200003-015-00001") == 0, "new classification %s, want -015-00001", c);

    odp_reply_t rep;
    odp_catalog_get_t g = {0};
    g.resource = odp_v_str(a);
    int st = h_call(p, &odp_def_catalog_get, &g, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "domain", "resources_environment") &&
              s_get_is(&rep.obj, "status", "catalogued") &&
              s_get_is(&rep.obj, "released_on", "2026-01-15") &&
              s_get_is(&rep.obj, "catalogued_by", "provider:441200003"),
          "catalog.get %s: %d, the label stored as its code", a, st);
    odp_reply_free(&rep);

    /*  Each code-list field, wrong, is named. */
    static const char *fields[] = {"domain", "content_kind", "delivery_form", "open_type",
                                   "update_cycle"};
    for (size_t i = 0; i < 5; i++) {
        odp_catalog_add_t x = s_entry();
        odp_val_t *v[] = {&x.domain, &x.content_kind, &x.delivery_form, &x.open_type,
                          &x.update_cycle};
        *v[i] = odp_v_str("不存在的代码");
        st = h_call(p, &odp_def_catalog_add, &x, &rep);
        EXPECT(st, &rep, 422, "INVALID_VALUE", fields[i], fields[i]);
        odp_reply_free(&rep);
    }
    odp_catalog_add_t x = s_entry();
    msgpack_object none[1], blank[3];
    static const char *const blanks[] = {"空气", ""};
    x.keywords = s_strs(none, NULL, 0);
    st = h_call(p, &odp_def_catalog_add, &x, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "keywords", "no keywords");
    odp_reply_free(&rep);
    x.keywords = s_strs(blank, blanks, 2);
    st = h_call(p, &odp_def_catalog_add, &x, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "keywords", "an empty keyword");
    odp_reply_free(&rep);
    x = s_entry();
    x.updated_on = odp_v_str("2026-13-01");
    st = h_call(p, &odp_def_catalog_add, &x, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "updated_on", "month 13");
    odp_reply_free(&rep);

    /*  Keywords that need quoting in a PostgreSQL array come back as sent. */
    msgpack_object odd[4];
    static const char *const odds[] = {"a,b", "say \"hi\"", "back\\slash"};
    x = s_entry();
    x.keywords = s_strs(odd, odds, 3);
    char d[33];
    s_catalog(p, &x, d);
    g.resource = odp_v_str(d);
    st = h_call(p, &odp_def_catalog_get, &g, &rep);
    const msgpack_object *kw = odp_map_get(&rep.obj, "keywords");
    CHECK(st == 200 && kw && kw->type == MSGPACK_OBJECT_ARRAY && kw->via.array.size == 3 &&
              s_str_is(&kw->via.array.ptr[0], odds[0]) &&
              s_str_is(&kw->via.array.ptr[1], odds[1]) && s_str_is(&kw->via.array.ptr[2], odds[2]),
          "keywords with a comma, quotes and a backslash did not round-trip");
    odp_reply_free(&rep);

    odp_catalog_list_t l = {0};
    l.department = odp_v_str(dept);
    st = h_call(p, &odp_def_catalog_list, &l, &rep);
    const msgpack_object *items = odp_map_get(&rep.obj, "items");
    CHECK(st == 200 && items && items->via.array.size == 4 &&
              s_get_is(&items->via.array.ptr[0], "resource", c),
          "catalog.list of the department: %d, %u entries", st, items ? items->via.array.size : 0);
    odp_reply_free(&rep);
    l.status = odp_v_str("published");
    st = h_call(p, &odp_def_catalog_list, &l, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "status", "listing an unknown status");
    odp_reply_free(&rep);
    g.resource = odp_v_str("441200003-021-99999");
    st = h_call(p, &odp_def_catalog_get, &g, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "resource", "an unknown resource");
    odp_reply_free(&rep);
    odp_client_destroy(&p);
}

static void s_foreign(void)
{
    CHECK(h_department("441300001", "清远市卫生健康局") == 0, "department.add owner");
    CHECK(h_department("441300002", "清远市教育局") == 0, "department.add other");
    odp_client_t *owner = h_client("registrar", h_keyfile("441300001"));
    odp_client_t *other = h_client("registrar", h_keyfile("441300002"));
    char code[33];
    odp_catalog_add_t m = s_entry();
    s_catalog(owner, &m, code);

    odp_reply_t rep;
    m.department = odp_v_str("441300001");
    int st = h_call(other, &odp_def_catalog_add, &m, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "department", "cataloguing for another department");
    odp_reply_free(&rep);
    odp_plan_add_t pa = {0};
    pa.department = odp_v_str("441300001");
    pa.title = odp_v_str("代别人计划");
    pa.open_type = odp_v_str("unconditional");
    pa.update_cycle = odp_v_str("daily");
    pa.due_on = odp_v_str("2099-01-01");
    pa.maintainer = odp_v_str("某人");
    st = h_call(other, &odp_def_plan_add, &pa, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "department", "planning for another department");
    odp_reply_free(&rep);

    /*  An entry the other department may not see (not registered) is not there for it. */
    st = s_dict_set_text(other, code, NULL, "[{\"name\": \"a\", \"type\": \"text\"}]", &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "resource", "another department's unseen dictionary");
    odp_reply_free(&rep);
    odp_registration_request_t r = {0};
    r.resource = odp_v_str(code);
    st = h_call(other, &odp_def_registration_request, &r, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "resource", "another department's unseen registration");
    odp_reply_free(&rep);
    odp_catalog_get_t g = {0};
    g.resource = odp_v_str(code);
    st = h_call(other, &odp_def_catalog_get, &g, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "resource", "catalog.get of another's unregistered entry");
    odp_reply_free(&rep);

    /*  Once registered it is public, and still not the other department's to change. */
    CHECK(s_dict_set_text(owner, code, NULL, "[{\"name\": \"a\", \"type\": \"text\"}]", &rep) ==
              200,
          "the owner's dictionary.set");
    odp_reply_free(&rep);
    s_register(owner, code);
    st = h_call(other, &odp_def_catalog_get, &g, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "department", "441300001"),
          "catalog.get of another department's registered entry: %d", st);
    odp_reply_free(&rep);
    st = s_dict_set_text(other, code, NULL, "[{\"name\": \"a\", \"type\": \"text\"}]", &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "resource", "another department's registered dictionary");
    odp_reply_free(&rep);
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(code);
    u.contact = odp_v_str("冒充的联系方式");
    st = h_call(other, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "resource", "updating another department's entry");
    odp_reply_free(&rep);
    odp_client_destroy(&other);
    odp_client_destroy(&owner);
}

static void s_dict_samples(void)
{
    const char *dept = "441300003";
    CHECK(h_department(dept, "清远市自然资源局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    static const char *names[] = {"air_quality_daily", "key_enterprise_assets", "land_use_status",
                                  "medical_institutions"};
    for (size_t i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.dict.json", h_samples(), names[i]);
        json_error_t je;
        json_t *dict = json_load_file(path, 0, &je);
        CHECK(dict, "cannot read %s: %s (set ODP_SAMPLES)", path, je.text);
        if (!dict)
            continue;
        json_t *fields = json_object_get(dict, "fields");
        char code[33];
        odp_catalog_add_t m = s_entry();
        m.title = odp_v_str(json_string_value(json_object_get(dict, "title")));
        m.domain = odp_v_str(json_string_value(json_object_get(dict, "domain")));
        s_catalog(p, &m, code);
        odp_reply_t rep;
        int st = s_dict_set(p, code, NULL, fields, &rep);
        CHECK(st == 200 && s_get_is(&rep.obj, "table", "main") &&
                  s_get_is(&rep.obj, "resource", code),
              "dictionary.set %s: %d %s %.*s", names[i], st, h_err_code(&rep),
              (int)rep.err.message.len, rep.err.message.str ? rep.err.message.str : "");
        if (st == 200)
            s_dict_matches(fields, &rep, names[i]);
        odp_reply_free(&rep);

        odp_dictionary_get_t g = {0};
        g.resource = odp_v_str(code);
        st = h_call(p, &odp_def_dictionary_get, &g, &rep);
        CHECK(st == 200, "dictionary.get %s: %d", names[i], st);
        if (st == 200)
            s_dict_matches(fields, &rep, names[i]);
        odp_reply_free(&rep);
        g.table = odp_v_str("other");
        st = h_call(p, &odp_def_dictionary_get, &g, &rep);
        EXPECT(st, &rep, 404, "NOT_FOUND", "table", "a table without a dictionary");
        odp_reply_free(&rep);
        json_decref(dict);
    }
    odp_client_destroy(&p);
}

static void s_dict_bad(void)
{
    const char *dept = "441300004";
    CHECK(h_department(dept, "清远市市场监督管理局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    char code[33], report[33];
    odp_catalog_add_t m = s_entry();
    s_catalog(p, &m, code);
    m.content_kind = odp_v_str("report");
    s_catalog(p, &m, report);

    static const struct {
        const char *second; /* fields[1] after a good fields[0] */
        int status;
        const char *code, *field;
    } cases[] = {
        {"{\"name\": \"b\", \"type\": \"varchar\"}", 422, "INVALID_VALUE", "fields[1].type"},
        {"{\"name\": \"b\", \"type\": \"text\", \"check\": \"iban\"}", 422, "INVALID_VALUE",
         "fields[1].check"},
        {"{\"name\": \"b\", \"type\": \"text\", \"pattern\": \"([0-9\"}", 422, "INVALID_VALUE",
         "fields[1].pattern"},
        {"{\"name\": \"a\", \"type\": \"integer\"}", 422, "INVALID_VALUE", "fields[1].name"},
        {"{\"name\": \"b\", \"type\": \"numeric\", \"min\": 10, \"max\": 1.5}", 422,
         "INVALID_VALUE", "fields[1].min"},
        {"{\"name\": \"b\", \"type\": \"text\", \"enum\": [\"x\", \"\"]}", 422, "INVALID_VALUE",
         "fields[1].allowed"},
        {"{\"name\": \"b\\u0007\", \"type\": \"text\"}", 422, "INVALID_VALUE", "fields[1].name"},
        {"{\"name\": \"b\", \"type\": 5}", 400, "WRONG_TYPE", "fields[1].type"},
        {"{\"name\": \"b\", \"type\": \"text\", \"length\": 0}", 400, "OUT_OF_RANGE",
         "fields[1].length"},
        {"{\"name\": \"b\", \"type\": \"text\", \"format\": \"x\"}", 400, "UNKNOWN_FIELD",
         "fields[1].format"},
        {"{\"type\": \"text\"}", 400, "MISSING_FIELD", "fields[1].name"},
        {"\"b\"", 400, "WRONG_TYPE", "fields[1]"},
    };
    odp_reply_t rep;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[300];
        snprintf(json, sizeof json, "[{\"name\": \"a\", \"type\": \"文本\"}, %s]", cases[i].second);
        int st = s_dict_set_text(p, code, NULL, json, &rep);
        EXPECT(st, &rep, cases[i].status, cases[i].code, cases[i].field, cases[i].second);
        odp_reply_free(&rep);
    }
    int st = s_dict_set_text(p, code, NULL, "[]", &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "fields", "an empty dictionary");
    odp_reply_free(&rep);
    st = s_dict_set_text(p, code, "Main-Table", "[{\"name\": \"a\", \"type\": \"text\"}]", &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "table", "a table name with capitals and a dash");
    odp_reply_free(&rep);
    st = s_dict_set_text(p, report, NULL, "[{\"name\": \"a\", \"type\": \"text\"}]", &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "resource", "a dictionary for a report");
    odp_reply_free(&rep);

    /*  Nothing refused was stored; a second table has its own dictionary; a new one
        replaces the old one whole. */
    odp_dictionary_get_t g = {0};
    g.resource = odp_v_str(code);
    st = h_call(p, &odp_def_dictionary_get, &g, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "table", "dictionary.get after refusals only");
    odp_reply_free(&rep);
    st = s_dict_set_text(p, code, "detail",
                         "[{\"name\": \"a\", \"type\": \"text\"}, {\"name\": \"b\", \"type\": "
                         "\"numeric\", \"min\": 0.1}]",
                         &rep);
    CHECK(st == 200, "dictionary.set of table detail: %d", st);
    odp_reply_free(&rep);
    st = s_dict_set_text(p, code, "detail", "[{\"name\": \"c\", \"type\": \"date\"}]", &rep);
    const msgpack_object *f = odp_map_get(&rep.obj, "fields");
    CHECK(st == 200 && f && f->type == MSGPACK_OBJECT_ARRAY && f->via.array.size == 1 &&
              s_get_is(&f->via.array.ptr[0], "name", "c"),
          "a second dictionary.set replaces the table's dictionary whole");
    odp_reply_free(&rep);
    odp_client_destroy(&p);
}

static void s_registration(void)
{
    const char *dept = "441300005";
    CHECK(h_department(dept, "清远市水利局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    odp_client_t *ops = h_client("registrar", NULL);
    char code[33], doc[33];
    odp_catalog_add_t m = s_entry();
    s_catalog(p, &m, code);
    odp_registration_request_t r = {0};
    r.resource = odp_v_str(code);
    odp_reply_t rep;
    int st = h_call(p, &odp_def_registration_request, &r, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "resource", "registration without a dictionary");
    char msg[300];
    CHECK(strstr(odp_v_cstr(&rep.err.message, msg, sizeof msg), "send the data dictionary"),
          "the refusal says to send the data dictionary first: %s", msg);
    odp_reply_free(&rep);

    const char *dict = "[{\"name\": \"站点\", \"type\": \"text\", \"required\": true}]";
    CHECK(s_dict_set_text(p, code, NULL, dict, &rep) == 200, "dictionary.set");
    odp_reply_free(&rep);
    st = h_call(p, &odp_def_registration_request, &r, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "status", "registration_requested"),
          "registration.request: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    st = h_call(p, &odp_def_registration_request, &r, &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "resource", "requesting twice");
    odp_reply_free(&rep);
    st = s_decide(p, code, true, NULL, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "", "a provider deciding its own registration");
    odp_reply_free(&rep);
    st = s_decide(ops, code, false, NULL, &rep);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "reason", "a refusal without a reason");
    odp_reply_free(&rep);
    st = s_decide(ops, code, false, "字段说明不完整", &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "status", "refused") &&
              s_get_is(&rep.obj, "refused_reason", "字段说明不完整"),
          "refusal with a reason: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);

    /*  The provider mends the dictionary and asks again; operations registers it. */
    CHECK(s_dict_set_text(p, code, NULL, dict, &rep) == 200, "dictionary.set while refused");
    odp_reply_free(&rep);
    st = h_call(p, &odp_def_registration_request, &r, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "status", "registration_requested") &&
              !odp_map_get(&rep.obj, "refused_reason"),
          "a second request: %d", st);
    odp_reply_free(&rep);
    int64_t seq = -1;
    h_health("registrar", &seq, NULL, NULL);
    st = s_decide(ops, code, true, NULL, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "status", "registered"), "approval: %d %s", st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_event_after(seq, "catalog.registered", code), "no catalog.registered event for %s",
          code);
    /*  Nothing was pushed with it yet: the registered dictionary is still revision 1. */
    st = s_dict_set_text(p, code, NULL, dict, &rep);
    CHECK(st == 200 && h_int(&rep, "revision") == 1,
          "changing a registered dictionary before any push keeps revision 1: %d, revision %lld",
          st, (long long)h_int(&rep, "revision"));
    odp_reply_free(&rep);
    st = s_decide(ops, code, true, NULL, &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "resource", "deciding a registered resource");
    odp_reply_free(&rep);

    /*  A document has no dictionary to wait for. */
    m.content_kind = odp_v_str("document");
    m.delivery_form = odp_v_str("dataset_file");
    s_catalog(p, &m, doc);
    r.resource = odp_v_str(doc);
    st = h_call(p, &odp_def_registration_request, &r, &rep);
    CHECK(st == 200, "registration.request of a document: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
    odp_client_destroy(&p);
}

/*  The rules in rep are formats, encodings and chunk_size as given, other sizes default. */
static bool s_rules_are(const odp_reply_t *rep, const char *const *formats, size_t nf,
                        const char *const *encodings, size_t ne, int64_t chunk_size)
{
    const msgpack_object *f = odp_map_get(&rep->obj, "formats");
    const msgpack_object *e = odp_map_get(&rep->obj, "encodings");
    if (!f || !e || f->type != MSGPACK_OBJECT_ARRAY || e->type != MSGPACK_OBJECT_ARRAY ||
        f->via.array.size != nf || e->via.array.size != ne)
        return false;
    for (size_t i = 0; i < nf; i++)
        if (!s_str_is(&f->via.array.ptr[i], formats[i]))
            return false;
    for (size_t i = 0; i < ne; i++)
        if (!s_str_is(&e->via.array.ptr[i], encodings[i]))
            return false;
    return h_int(rep, "chunk_size") == chunk_size && h_int(rep, "max_size") == 10737418240LL &&
           h_int(rep, "max_row_length") == 1048576 && h_int(rep, "credit") == 8;
}

static void s_rules(void)
{
    static const char *const formats[] = {"csv", "jsonl", "file"};
    static const char *const encodings[] = {"utf8", "gb18030"};
    CHECK(h_department("441300006", "清远市文化广电旅游体育局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile("441300006"));
    odp_client_t *ops = h_client("registrar", NULL);
    odp_rules_get_t g = {0};
    odp_reply_t rep;
    int st = h_call(p, &odp_def_rules_get, &g, &rep);
    CHECK(st == 200 && s_rules_are(&rep, formats, 3, encodings, 2, 262144),
          "rules.get by a provider shows the defaults (%d)", st);
    odp_reply_free(&rep);

    odp_rules_set_t s = {0};
    s.chunk_size = odp_v_int(65536);
    st = h_call(p, &odp_def_rules_set, &s, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "", "a provider setting the rules");
    odp_reply_free(&rep);
    msgpack_object fbuf[4], ebuf[3];
    static const char *const bad_enc[] = {"utf8", "latin1"};
    s.encodings = s_strs(ebuf, bad_enc, 2);
    st = h_call(ops, &odp_def_rules_set, &s, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "encodings", "an unknown encoding");
    odp_reply_free(&rep);
    s.encodings = (odp_val_t){0};
    s.formats = s_strs(fbuf, NULL, 0);
    st = h_call(ops, &odp_def_rules_set, &s, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "formats", "no formats at all");
    odp_reply_free(&rep);

    /*  A label is normalised, a repeat counts once, unnamed rules keep their values. */
    static const char *const two[] = {"CSV", "jsonl", "csv"}, *const two_codes[] = {"csv", "jsonl"};
    s.formats = s_strs(fbuf, two, 3);
    st = h_call(ops, &odp_def_rules_set, &s, &rep);
    CHECK(st == 200 && s_rules_are(&rep, two_codes, 2, encodings, 2, 65536), "rules.set: %d %s", st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    st = h_call(p, &odp_def_rules_get, &g, &rep);
    CHECK(st == 200 && s_rules_are(&rep, two_codes, 2, encodings, 2, 65536),
          "rules.get after rules.set");
    odp_reply_free(&rep);

    /*  Later tests expect the defaults. */
    s.formats = s_strs(fbuf, formats, 3);
    s.chunk_size = odp_v_int(262144);
    st = h_call(ops, &odp_def_rules_set, &s, &rep);
    CHECK(st == 200 && s_rules_are(&rep, formats, 3, encodings, 2, 262144),
          "the defaults restored: %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
    odp_client_destroy(&p);
}

/*  ---- maintenance, services, revisions, timeliness, visibility (departments 4420xxxxx) ---- */

static int s_plan_update(odp_client_t *c, int64_t id, const odp_plan_update_t *in, odp_reply_t *rep)
{
    odp_plan_update_t m = *in;
    m.id = odp_v_int(id);
    return h_call(c, &odp_def_plan_update, &m, rep);
}

static int s_plan_cancel(odp_client_t *c, int64_t id, const char *reason, odp_reply_t *rep)
{
    odp_plan_cancel_t m = {0};
    m.id = odp_v_int(id);
    m.reason = odp_v_str(reason);
    return h_call(c, &odp_def_plan_cancel, &m, rep);
}

static void s_plan_upkeep(void)
{
    const char *dept = "442000001";
    CHECK(h_department(dept, "中山市生态环境局") == 0, "department.add");
    CHECK(h_department("442000002", "中山市水务局") == 0, "department.add other");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    odp_client_t *other = h_client("registrar", h_keyfile("442000002"));
    odp_client_t *ops = h_client("registrar", NULL);
    odp_plan_add_t pa = {0};
    pa.title = odp_v_str("水质月报开放计划");
    pa.open_type = odp_v_str("unconditional");
    pa.update_cycle = odp_v_str("monthly");
    pa.due_on = odp_v_str("2020-06-30");
    pa.maintainer = odp_v_str("监测科");
    odp_reply_t rep;
    int st = h_call(p, &odp_def_plan_add, &pa, &rep);
    int64_t id = st == 200 ? h_int(&rep, "id") : -1;
    CHECK(st == 200 && s_get_bool(&rep.obj, "overdue", true), "plan.add, overdue: %d", st);
    odp_reply_free(&rep);

    /*  Refusals first: nothing named, a bad date or code, another department, no plan. */
    odp_plan_update_t u = {0};
    st = s_plan_update(p, id, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "", "plan.update naming nothing");
    odp_reply_free(&rep);
    u.due_on = odp_v_str("2027-02-29");
    st = s_plan_update(p, id, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "due_on", "plan.update to 29 February 2027");
    odp_reply_free(&rep);
    u.due_on = (odp_val_t){0};
    u.update_cycle = odp_v_str("hourly");
    st = s_plan_update(p, id, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "update_cycle", "plan.update to an unknown cycle");
    odp_reply_free(&rep);
    u.update_cycle = (odp_val_t){0};
    u.maintainer = odp_v_str("别的部门");
    st = s_plan_update(other, id, &u, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "id", "another department's plan.update");
    odp_reply_free(&rep);
    st = s_plan_cancel(other, id, "不要了", &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "id", "another department's plan.cancel");
    odp_reply_free(&rep);
    st = s_plan_update(p, 99999999, &u, &rep);
    EXPECT(st, &rep, 404, "NOT_FOUND", "id", "plan.update of no plan");
    odp_reply_free(&rep);

    /*  The owner reschedules it (a label stored as its code); operations may too. */
    int64_t seq = s_seq();
    u = (odp_plan_update_t){0};
    u.due_on = odp_v_str("2099-06-30");
    u.open_type = odp_v_str("有条件开放");
    st = s_plan_update(p, id, &u, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "due_on", "2099-06-30") &&
              s_get_is(&rep.obj, "open_type", "conditional") &&
              s_get_bool(&rep.obj, "overdue", false) &&
              s_get_is(&rep.obj, "title", "水质月报开放计划"),
          "plan.update reschedules: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    const msgpack_object *ev;
    static const char *const changed[] = {"open_type", "due_on"};
    CHECK(s_event_find(seq, "catalog.plan_updated", "id", NULL, id, &rep, &ev) &&
              s_get_is(ev, "department", dept) && s_list_is(ev, "fields", changed, 2),
          "catalog.plan_updated names the plan and the fields changed");
    odp_reply_free(&rep);
    u = (odp_plan_update_t){0};
    u.maintainer = odp_v_str("运维代为维护");
    st = s_plan_update(ops, id, &u, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "maintainer", "运维代为维护"),
          "operations' plan.update: %d", st);
    odp_reply_free(&rep);

    /*  Cancelled: with a reason, never overdue, then neither changed nor catalogued. */
    u = (odp_plan_update_t){0};
    u.due_on = odp_v_str("2020-01-31");
    st = s_plan_update(p, id, &u, &rep);
    CHECK(st == 200 && s_get_bool(&rep.obj, "overdue", true), "due in the past again: %d", st);
    odp_reply_free(&rep);
    seq = s_seq();
    st = s_plan_cancel(p, id, "并入全省水质数据集", &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "status", "cancelled") &&
              s_get_is(&rep.obj, "cancelled_reason", "并入全省水质数据集") &&
              s_get_bool(&rep.obj, "overdue", false),
          "plan.cancel: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(s_event_find(seq, "catalog.plan_cancelled", "id", NULL, id, &rep, &ev) &&
              s_get_is(ev, "reason", "并入全省水质数据集"),
          "catalog.plan_cancelled with the reason");
    odp_reply_free(&rep);
    odp_plan_list_t l = {0};
    l.overdue = odp_v_bool(true);
    if (s_list_plans(p, &l, &rep) == 200)
        CHECK(!s_find_plan(&rep, id), "a cancelled plan is not overdue");
    odp_reply_free(&rep);
    st = s_plan_update(p, id, &u, &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "id", "changing a cancelled plan");
    odp_reply_free(&rep);
    st = s_plan_cancel(p, id, "再次取消", &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "id", "cancelling twice");
    odp_reply_free(&rep);
    odp_catalog_add_t m = s_entry();
    m.plan = odp_v_int(id);
    st = h_call(p, &odp_def_catalog_add, &m, &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "plan", "cataloguing a cancelled plan");
    odp_reply_free(&rep);

    /*  A catalogued plan is delivered: it cannot be changed or cancelled either. */
    int64_t done = -1;
    pa.due_on = odp_v_str("2099-01-01");
    st = h_call(p, &odp_def_plan_add, &pa, &rep);
    done = st == 200 ? h_int(&rep, "id") : -1;
    odp_reply_free(&rep);
    m.plan = odp_v_int(done);
    char code[33];
    s_catalog(p, &m, code);
    st = s_plan_cancel(p, done, "晚了", &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "id", "cancelling a catalogued plan");
    odp_reply_free(&rep);
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_int64(&pk, done);
    st = h_call_raw(p, "plan.cancel", body.data, body.size, &rep);
    msgpack_sbuffer_destroy(&body);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "reason", "plan.cancel without a reason");
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
    odp_client_destroy(&other);
    odp_client_destroy(&p);
}

static void s_catalog_upkeep(void)
{
    const char *dept = "442000003";
    CHECK(h_department(dept, "中山市统计局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    odp_client_t *ops = h_client("registrar", NULL);
    char code[33], today[16];
    odp_catalog_add_t m = s_entry();
    s_catalog(p, &m, code);
    s_pg_text("SELECT current_date::text", today, sizeof today);

    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(code);
    odp_reply_t rep;
    int st = h_call(p, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "", "catalog.update naming nothing");
    odp_reply_free(&rep);
    u.open_type = odp_v_str("有条件开放");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "access_conditions",
           "a conditional opening without its conditions");
    odp_reply_free(&rep);
    u.open_type = odp_v_str("半开放");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "open_type", "an unknown open type");
    odp_reply_free(&rep);
    msgpack_object none[1];
    u.open_type = (odp_val_t){0};
    u.keywords = s_strs(none, NULL, 0);
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "keywords", "no keywords");
    odp_reply_free(&rep);
    u.keywords = (odp_val_t){0};
    u.endpoint = odp_v_str("https://data.example.gov.cn/api");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "endpoint", "an endpoint for a dataset file");
    odp_reply_free(&rep);
    odp_client_t *user = s_user("visitor.upkeep");
    u.endpoint = (odp_val_t){0};
    u.summary = odp_v_str("用户改的摘要");
    st = h_call(user, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "", "a user's catalog.update");
    odp_reply_free(&rep);
    odp_client_destroy(&user);

    /*  The owner changes what describes it; the rest stays; it is dated today. */
    int64_t seq = s_seq();
    msgpack_object kwbuf[3];
    static const char *const kws[] = {"水质", "月报"};
    u = (odp_catalog_update_t){0};
    u.resource = odp_v_str(code);
    u.summary = odp_v_str("全市监测断面每月水质");
    u.keywords = s_strs(kwbuf, kws, 2);
    u.open_type = odp_v_str("conditional");
    u.access_conditions = odp_v_str("实名注册并签署数据使用协议");
    u.update_cycle = odp_v_str("每月");
    u.contact = odp_v_str("0760-88880000");
    u.location = odp_v_str("https://data.example.gov.cn/water/monthly");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "summary", "全市监测断面每月水质") &&
              s_list_is(&rep.obj, "keywords", kws, 2) &&
              s_get_is(&rep.obj, "open_type", "conditional") &&
              s_get_is(&rep.obj, "access_conditions", "实名注册并签署数据使用协议") &&
              s_get_is(&rep.obj, "update_cycle", "monthly") &&
              s_get_is(&rep.obj, "contact", "0760-88880000") &&
              s_get_is(&rep.obj, "location", "https://data.example.gov.cn/water/monthly") &&
              s_get_is(&rep.obj, "updated_on", today) &&
              s_get_is(&rep.obj, "title", "空气质量日报") &&
              s_get_is(&rep.obj, "released_on", "2026-01-15") &&
              s_get_is(&rep.obj, "status", "catalogued"),
          "catalog.update: %d %s, the fields given changed, dated %s", st, h_err_code(&rep), today);
    odp_reply_free(&rep);
    const msgpack_object *ev;
    static const char *const changed[] = {"summary",           "keywords",     "open_type",
                                          "access_conditions", "update_cycle", "contact",
                                          "location"};
    CHECK(s_event_find(seq, "catalog.updated", "resource", code, 0, &rep, &ev) &&
              s_get_is(ev, "department", dept) && s_list_is(ev, "fields", changed, 7),
          "catalog.updated names the entry and the fields changed");
    odp_reply_free(&rep);

    /*  Still conditional, so the stored conditions carry a later change; operations may
        change it too, in any state. */
    u = (odp_catalog_update_t){0};
    u.resource = odp_v_str(code);
    u.open_type = odp_v_str("conditional");
    st = h_call(ops, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "access_conditions", "实名注册并签署数据使用协议"),
          "operations' catalog.update keeps the stored conditions: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_catalog_add_t c = s_entry();
    c.open_type = odp_v_str("conditional");
    st = h_call(p, &odp_def_catalog_add, &c, &rep);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "access_conditions",
           "catalog.add conditional, no terms");
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
    odp_client_destroy(&p);
}

static void s_services(void)
{
    const char *dept = "442000004";
    CHECK(h_department(dept, "中山市交通运输局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    odp_catalog_add_t m = s_entry();
    m.delivery_form = odp_v_str("条件查询接口");
    odp_reply_t rep;
    int st = h_call(p, &odp_def_catalog_add, &m, &rep);
    EXPECT(st, &rep, 400, "MISSING_FIELD", "endpoint", "a query interface without its endpoint");
    odp_reply_free(&rep);
    static const char *const bad[] = {"ftp://data.example.gov.cn/air",
                                      "https://",
                                      "https://user@data.example.gov.cn/air",
                                      "http://data.example.gov.cn:70000/air",
                                      "javascript:alert(1)",
                                      "https://data.example.gov.cn/air quality",
                                      "data.example.gov.cn/air",
                                      "https://-bad-.example.gov.cn/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m.endpoint = odp_v_str(bad[i]);
        st = h_call(p, &odp_def_catalog_add, &m, &rep);
        EXPECT(st, &rep, 422, "INVALID_VALUE", "endpoint", bad[i]);
        odp_reply_free(&rep);
    }
    static const char *const good[] = {"https://data.example.gov.cn:8443/api/air?station=all#doc",
                                       "HTTP://10.20.0.7/交通/实时", "http://[fd00::7]:8080/"};
    char codes[3][33];
    for (size_t i = 0; i < 3; i++) {
        m.endpoint = odp_v_str(good[i]);
        m.delivery_form = odp_v_str(i == 1   ? "exchange_interface"
                                    : i == 2 ? "app"
                                             : "query_interface");
        s_catalog(p, &m, codes[i]);
    }
    odp_catalog_get_t g = {0};
    g.resource = odp_v_str(codes[0]);
    st = h_call(p, &odp_def_catalog_get, &g, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "endpoint", good[0]) &&
              s_get_is(&rep.obj, "delivery_form", "query_interface") &&
              !odp_map_get(&rep.obj, "next_due_on") && s_get_bool(&rep.obj, "overdue", false),
          "a query interface keeps its endpoint and is never due: %d", st);
    odp_reply_free(&rep);

    /*  No pushed content, so no dictionary to wait for: it registers as it is. */
    s_register(p, codes[0]);
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(codes[0]);
    u.endpoint = odp_v_str("gopher://data.example.gov.cn/");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "endpoint", "moving the interface to gopher");
    odp_reply_free(&rep);
    u.endpoint = odp_v_str("https://api.example.gov.cn/v2/air");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "endpoint", "https://api.example.gov.cn/v2/air") &&
              s_get_is(&rep.obj, "status", "registered"),
          "moving the interface: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&p);
}

/*  The dictionary of code's main table: its revision and number of fields. */
static void s_dict_rev(odp_client_t *c, const char *code, int64_t revision, int64_t *got,
                       uint32_t *nfields)
{
    odp_dictionary_get_t g = {0};
    g.resource = odp_v_str(code);
    if (revision)
        g.revision = odp_v_int(revision);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_dictionary_get, &g, &rep);
    const msgpack_object *f = odp_map_get(&rep.obj, "fields");
    *got = st == 200 ? h_int(&rep, "revision") : -st;
    *nfields = st == 200 && f && f->type == MSGPACK_OBJECT_ARRAY ? f->via.array.size : 0;
    odp_reply_free(&rep);
}

static void s_revisions(void)
{
    const char *dept = "442000005";
    CHECK(h_department(dept, "中山市气象局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    char code[33], staging[160];
    odp_catalog_add_t m = s_entry();
    s_catalog(p, &m, code);
    const char *two = "[{\"name\": \"站点\", \"type\": \"text\"}, {\"name\": \"aqi\", \"type\": "
                      "\"integer\"}]";
    const char *three = "[{\"name\": \"站点\", \"type\": \"text\"}, {\"name\": \"aqi\", \"type\": "
                        "\"integer\"}, {\"name\": \"日期\", \"type\": \"date\"}]";
    odp_reply_t rep;
    CHECK(s_dict_set_text(p, code, NULL, three, &rep) == 200 && h_int(&rep, "revision") == 1,
          "the first dictionary is revision 1");
    odp_reply_free(&rep);
    int64_t seq = s_seq();
    CHECK(s_dict_set_text(p, code, NULL, two, &rep) == 200 && h_int(&rep, "revision") == 1,
          "before any push a second dictionary.set replaces revision 1");
    odp_reply_free(&rep);
    const msgpack_object *ev;
    CHECK(s_event_find(seq, "catalog.dictionary_set", "resource", code, 0, &rep, &ev) &&
              s_get_is(ev, "table", "main") && s_int_is(ev, "revision", 1),
          "catalog.dictionary_set names the table and revision 1");
    odp_reply_free(&rep);
    s_register(p, code);
    CHECK(s_push_csv(p, code, "站点,aqi\n荷花池,42\n") == 1, "version 1 with revision 1");

    /*  Revision 1 typed version 1: a new dictionary is revision 2, which version 2 uses. */
    CHECK(s_dict_set_text(p, code, NULL, three, &rep) == 200 && h_int(&rep, "revision") == 2,
          "dictionary.set after a push makes revision 2");
    odp_reply_free(&rep);
    int64_t rev;
    uint32_t n;
    s_dict_rev(p, code, 0, &rev, &n);
    CHECK(rev == 2 && n == 3, "dictionary.get is the latest: revision %lld, %u fields",
          (long long)rev, n);
    s_dict_rev(p, code, 1, &rev, &n);
    CHECK(rev == 1 && n == 2, "revision 1 is kept: revision %lld, %u fields", (long long)rev, n);
    s_dict_rev(p, code, 3, &rev, &n);
    CHECK(rev == -404, "dictionary.get of revision 3 gave %lld", (long long)-rev);
    CHECK(s_push_csv(p, code, "站点,aqi,日期\n荷花池,40,2026-11-30\n") == 2,
          "version 2 with the new column");
    char sql[400], got[64];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(version || ':' || dictionary_revision, ',' ORDER BY version) "
             "FROM registrar.uploads WHERE resource = '%s' AND status = 'received'",
             code);
    s_pg_text(sql, got, sizeof got);
    CHECK(strcmp(got, "1:1,2:2") == 0, "versions keep their revisions: %s", got);
    snprintf(sql, sizeof sql,
             "SELECT staging_table FROM registrar.uploads WHERE resource = '%s' AND version = 1",
             code);
    s_pg_text(sql, staging, sizeof staging);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_attribute WHERE attrelid = '%s'::regclass AND attnum > 1 "
             "AND NOT attisdropped",
             staging);
    s_pg_text(sql, got, sizeof got);
    CHECK(strcmp(got, "2") == 0, "version 1's staging table keeps revision 1's 2 columns: %s", got);

    /*  Revision 2 is in use now: the next change is revision 3. */
    CHECK(s_dict_set_text(p, code, NULL, two, &rep) == 200 && h_int(&rep, "revision") == 3,
          "a change after version 2 makes revision 3");
    odp_reply_free(&rep);
    odp_client_destroy(&p);
}

/*  The date that is days before today plus period, as the database computes it. */
static void s_date_after(int days, const char *period, char out[16])
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT (current_date - %d + interval '%s')::date::text", days,
             period);
    s_pg_text(sql, out, 16);
}

static void s_timeliness(void)
{
    const char *dept = "442000006";
    CHECK(h_department(dept, "中山市住房和城乡建设局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    static const struct {
        const char *cycle, *period; /* period NULL: never due */
        bool overdue;               /* catalogued 40 days ago, nothing received */
    } cases[] = {{"daily", "1 day", true},
                 {"weekly", "7 days", true},
                 {"monthly", "1 month", true},
                 {"quarterly", "3 months", false},
                 {"half_yearly", "6 months", false},
                 {"yearly", "12 months", false},
                 {"realtime", NULL, false},
                 {"irregular", NULL, false},
                 {"static", NULL, false}};
    enum { N = sizeof cases / sizeof cases[0] };
    char codes[N][33];
    for (size_t i = 0; i < N; i++) {
        odp_catalog_add_t m = s_entry();
        m.update_cycle = odp_v_str(cases[i].cycle);
        s_catalog(p, &m, codes[i]);
    }
    s_pg_do("UPDATE registrar.resources SET catalogued_at = now() - interval '40 days' "
            "WHERE department = '%s'",
            dept);
    odp_reply_t rep;
    for (size_t i = 0; i < N; i++) {
        char want[16] = "";
        if (cases[i].period)
            s_date_after(40, cases[i].period, want);
        odp_catalog_get_t g = {0};
        g.resource = odp_v_str(codes[i]);
        int st = h_call(p, &odp_def_catalog_get, &g, &rep);
        CHECK(st == 200 &&
                  (cases[i].period ? s_get_is(&rep.obj, "next_due_on", want)
                                   : !odp_map_get(&rep.obj, "next_due_on")) &&
                  s_get_bool(&rep.obj, "overdue", cases[i].overdue),
              "%s catalogued 40 days ago: due %s, overdue %d", cases[i].cycle,
              cases[i].period ? want : "never", cases[i].overdue);
        odp_reply_free(&rep);
    }

    /*  catalog.list --overdue lists exactly the late ones. */
    odp_catalog_list_t l = {0};
    l.department = odp_v_str(dept);
    l.overdue = odp_v_bool(true);
    int st = h_call(p, &odp_def_catalog_list, &l, &rep);
    const msgpack_object *items = odp_map_get(&rep.obj, "items");
    CHECK(st == 200 && items && items->via.array.size == 3 &&
              s_get_is(&items->via.array.ptr[0], "resource", codes[0]) &&
              s_get_is(&items->via.array.ptr[2], "resource", codes[2]),
          "overdue=true lists daily, weekly, monthly: %d, %u", st,
          items ? items->via.array.size : 0);
    odp_reply_free(&rep);
    l.overdue = odp_v_bool(false);
    st = h_call(p, &odp_def_catalog_list, &l, &rep);
    items = odp_map_get(&rep.obj, "items");
    CHECK(st == 200 && items && items->via.array.size == N - 3, "overdue=false lists the other %d",
          N - 3);
    odp_reply_free(&rep);

    /*  Registered 3 days ago, nothing received: a week counts from the registration. */
    const char *weekly = codes[1];
    CHECK(s_dict_set_text(p, weekly, NULL, "[{\"name\": \"站点\", \"type\": \"text\"}]", &rep) ==
              200,
          "dictionary.set");
    odp_reply_free(&rep);
    s_register(p, weekly);
    s_pg_do("UPDATE registrar.resources SET registered_at = now() - interval '3 days' "
            "WHERE resource = '%s'",
            weekly);
    char want[16];
    s_date_after(3, "7 days", want);
    odp_catalog_get_t g = {0};
    g.resource = odp_v_str(weekly);
    st = h_call(p, &odp_def_catalog_get, &g, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "next_due_on", want) &&
              s_get_bool(&rep.obj, "overdue", false),
          "weekly, registered 3 days ago: due %s, not overdue", want);
    odp_reply_free(&rep);

    /*  A version received 10 days ago is late by a week's cycle; a new one makes it on time. */
    CHECK(s_push_csv(p, weekly, "站点\n荷花池\n") == 1, "version 1");
    s_pg_do("UPDATE registrar.uploads SET finished_at = now() - interval '10 days' "
            "WHERE resource = '%s'",
            weekly);
    s_date_after(10, "7 days", want);
    st = h_call(p, &odp_def_catalog_get, &g, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "next_due_on", want) &&
              s_get_bool(&rep.obj, "overdue", true),
          "weekly, last version 10 days ago: due %s, overdue", want);
    odp_reply_free(&rep);
    CHECK(s_push_csv(p, weekly, "站点\n荷花池\n白云山\n") == 2, "version 2");
    s_date_after(0, "7 days", want);
    st = h_call(p, &odp_def_catalog_get, &g, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "next_due_on", want) &&
              s_get_bool(&rep.obj, "overdue", false),
          "weekly, a version today: due %s, on time", want);
    odp_reply_free(&rep);

    /*  Operations asks the same with odpctl: daily and monthly are late, weekly not now. */
    char bin[512], out[512], err[512];
    snprintf(bin, sizeof bin, "%s/odpctl", h_bin());
    snprintf(out, sizeof out, "%s/odpctl-overdue.out", h_var());
    snprintf(err, sizeof err, "%s/odpctl-overdue.err", h_var());
    remove(out);
    remove(err);
    const char *argv[] = {bin,  "--json",    "catalog", "list", "--department",
                          dept, "--overdue", "true",    NULL};
    pid_t pid = h_spawn(argv, NULL, out, err);
    int rc = h_wait_exit(pid, 10000);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    json_t *late = json_object_get(j, "items");
    const char *first = json_string_value(json_object_get(json_array_get(late, 0), "resource"));
    const char *second = json_string_value(json_object_get(json_array_get(late, 1), "resource"));
    CHECK(rc == 0 && json_array_size(late) == 2 && first && strcmp(first, codes[0]) == 0 &&
              second && strcmp(second, codes[2]) == 0,
          "odpctl catalog list --overdue true exited %d with %zu entries (see %s)", rc,
          json_array_size(late), out);
    json_decref(j);
    odp_client_destroy(&p);
}

/*  The resource codes in a catalog.list reply, in order, joined by spaces. */
static void s_listed(odp_client_t *c, const odp_catalog_list_t *l, char *out, size_t size)
{
    odp_reply_t rep;
    int st = h_call(c, &odp_def_catalog_list, l, &rep);
    CHECK(st == 200, "catalog.list: %d %s", st, h_err_code(&rep));
    const msgpack_object *items = odp_map_get(&rep.obj, "items");
    out[0] = '\0';
    for (uint32_t i = 0; items && i < items->via.array.size; i++) {
        char code[33];
        s_copy(&items->via.array.ptr[i], "resource", code, sizeof code);
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? " " : "", code);
    }
    odp_reply_free(&rep);
}

static void s_visibility(void)
{
    const char *dept = "442000007";
    CHECK(h_department(dept, "中山市卫生健康局") == 0, "department.add owner");
    CHECK(h_department("442000008", "中山市教育局") == 0, "department.add other");
    odp_client_t *owner = h_client("registrar", h_keyfile(dept));
    odp_client_t *other = h_client("registrar", h_keyfile("442000008"));
    odp_client_t *ops = h_client("registrar", NULL);
    odp_client_t *user = s_user("visitor.zhang");
    const char *dict = "[{\"name\": \"机构\", \"type\": \"text\"}]";

    /*  Four entries: catalogued, refused, registered and open, registered not to open. */
    int64_t plan_open = -1, plan_idle = -1;
    CHECK(s_plan(owner, "2099-01-01", &plan_open) == 200, "plan.add");
    CHECK(s_plan(owner, "2099-01-01", &plan_idle) == 200, "plan.add");
    char cat[33], refused[33], open[33], closed[33];
    odp_catalog_add_t m = s_entry();
    s_catalog(owner, &m, cat);
    s_catalog(owner, &m, refused);
    m.plan = odp_v_int(plan_open);
    s_catalog(owner, &m, open);
    m.plan = (odp_val_t){0};
    m.open_type = odp_v_str("not_open");
    s_catalog(owner, &m, closed);
    odp_reply_t rep;
    const char *codes[] = {cat, refused, open, closed};
    for (size_t i = 0; i < 4; i++) {
        CHECK(s_dict_set_text(owner, codes[i], NULL, dict, &rep) == 200, "dictionary.set");
        odp_reply_free(&rep);
    }
    odp_registration_request_t rq = {0};
    rq.resource = odp_v_str(refused);
    CHECK(h_call(owner, &odp_def_registration_request, &rq, &rep) == 200, "request");
    odp_reply_free(&rep);
    CHECK(s_decide(ops, refused, false, "缺少字段说明", &rep) == 200, "refusal");
    odp_reply_free(&rep);
    s_register(owner, open);
    s_register(owner, closed);

    /*  catalog.get: the owner and operations see all four (the refusal with its reason);
        another department and a user only the registered, open one. */
    odp_client_t *const viewers[] = {owner, ops, other, user};
    static const char *const names[] = {"the owner", "operations", "another department", "a user"};
    for (size_t v = 0; v < 4; v++)
        for (size_t i = 0; i < 4; i++) {
            bool sees = v < 2 || codes[i] == open;
            odp_catalog_get_t g = {0};
            g.resource = odp_v_str(codes[i]);
            int st = h_call(viewers[v], &odp_def_catalog_get, &g, &rep);
            if (sees)
                CHECK(st == 200 && (codes[i] != refused ||
                                    s_get_is(&rep.obj, "refused_reason", "缺少字段说明")),
                      "%s sees %s: %d", names[v], codes[i], st);
            else
                EXPECT(st, &rep, 404, "NOT_FOUND", "resource", names[v]);
            odp_reply_free(&rep);
            odp_dictionary_get_t dg = {0};
            dg.resource = odp_v_str(codes[i]);
            st = h_call(viewers[v], &odp_def_dictionary_get, &dg, &rep);
            if (sees)
                CHECK(st == 200, "%s reads the dictionary of %s: %d", names[v], codes[i], st);
            else
                EXPECT(st, &rep, 404, "NOT_FOUND", "resource", names[v]);
            odp_reply_free(&rep);
        }

    /*  catalog.list and plan.list filter the same way. */
    char all[200], listed[200];
    snprintf(all, sizeof all, "%s %s %s %s", cat, refused, open, closed);
    odp_catalog_list_t l = {0};
    l.department = odp_v_str(dept);
    for (size_t v = 0; v < 4; v++) {
        s_listed(viewers[v], &l, listed, sizeof listed);
        CHECK(strcmp(listed, v < 2 ? all : open) == 0, "%s lists %s", names[v], listed);
    }
    l.status = odp_v_str("refused");
    s_listed(user, &l, listed, sizeof listed);
    CHECK(listed[0] == '\0', "a user lists refused entries: %s", listed);
    s_listed(owner, &l, listed, sizeof listed);
    CHECK(strcmp(listed, refused) == 0, "the owner lists its refused entry: %s", listed);
    odp_plan_list_t pl = {0};
    pl.department = odp_v_str(dept);
    for (size_t v = 0; v < 4; v++) {
        if (s_list_plans(viewers[v], &pl, &rep) == 200)
            CHECK(s_find_plan(&rep, plan_open) && (v < 2) == (s_find_plan(&rep, plan_idle) != NULL),
                  "%s sees the plan of the open entry, and the idle plan only if it may", names[v]);
        odp_reply_free(&rep);
    }
    odp_client_destroy(&user);
    odp_client_destroy(&ops);
    odp_client_destroy(&other);
    odp_client_destroy(&owner);
}

/*  How many rows registrar.publishable_versions has for code. */
static int64_t s_publishable(const char *code)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registrar.publishable_versions WHERE resource = '%s'", code);
    PGconn *pg = h_pg_super();
    int64_t n = h_pg_int(pg, sql);
    PQfinish(pg);
    return n;
}

static void s_publishable_versions(void)
{
    const char *dept = "442000009";
    CHECK(h_department(dept, "中山市市场监督管理局") == 0, "department.add");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    char early[33], open[33];
    odp_catalog_add_t m = s_entry();
    s_catalog(p, &m, early);
    s_catalog(p, &m, open);
    odp_reply_t rep;
    const char *dict = "[{\"name\": \"企业\", \"type\": \"text\"}]";
    CHECK(s_dict_set_text(p, early, NULL, dict, &rep) == 200, "dictionary.set");
    odp_reply_free(&rep);
    CHECK(s_dict_set_text(p, open, NULL, dict, &rep) == 200, "dictionary.set");
    odp_reply_free(&rep);

    /*  A version received before registration waits until operations registers the entry. */
    s_pg_do("INSERT INTO registrar.uploads (resource, table_name, kind, format, encoding, size, "
            "sha256, status, version, started_by, finished_at) VALUES ('%s', 'main', 'dataset', "
            "'csv', 'utf8', 10, repeat('a', 64), 'received', 1, 'provider:%s', now())",
            early, dept);
    CHECK(s_publishable(early) == 0, "a version of an unregistered entry is publishable");
    s_register(p, early);
    CHECK(s_publishable(early) == 1, "the version is publishable once registered");

    /*  Registered and open: publishable; set not to open: not any more; open again: back. */
    s_register(p, open);
    CHECK(s_push_csv(p, open, "企业\n某公司\n") == 1, "version 1");
    CHECK(s_publishable(open) == 1, "a registered, open entry's version is publishable");
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(open);
    u.open_type = odp_v_str("not_open");
    CHECK(h_call(p, &odp_def_catalog_update, &u, &rep) == 200, "not to be opened");
    odp_reply_free(&rep);
    CHECK(s_publishable(open) == 0, "a not_open entry's version is publishable");
    u.open_type = odp_v_str("unconditional");
    CHECK(h_call(p, &odp_def_catalog_update, &u, &rep) == 200, "open again");
    odp_reply_free(&rep);
    CHECK(s_publishable(open) == 1, "opened again, its version is publishable again");
    odp_client_destroy(&p);
}

/*  The number of versions version.list gives c for code, or -status. */
static int64_t s_versions(odp_client_t *c, const char *code)
{
    odp_version_list_t m = {0};
    m.resource = odp_v_str(code);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_version_list, &m, &rep);
    const msgpack_object *items = odp_map_get(&rep.obj, "items");
    int64_t n = st == 200 && items ? (int64_t)items->via.array.size : -st;
    odp_reply_free(&rep);
    return n;
}

static void s_order(void)
{
    const char *dept = "442000010";
    CHECK(h_department(dept, "中山市自然资源局") == 0, "department.add");
    CHECK(h_department("442000011", "中山市公安局") == 0, "department.add other");
    odp_client_t *p = h_client("registrar", h_keyfile(dept));
    odp_client_t *other = h_client("registrar", h_keyfile("442000011"));
    odp_client_t *ops = h_client("registrar", NULL);
    odp_client_t *user = s_user("visitor.order");
    char code[33], app[33];
    odp_catalog_add_t m = s_entry();
    s_catalog(p, &m, code);
    odp_reply_t rep;
    CHECK(s_dict_set_text(p, code, NULL, "[{\"name\": \"地块\", \"type\": \"text\"}]", &rep) == 200,
          "dictionary.set");
    odp_reply_free(&rep);

    /*  Content first, while the entry is only catalogued; only its department and
        operations see the version until it is registered. */
    CHECK(s_push_csv(p, code, "地块\nA-01\n") == 1, "a push to a catalogued entry");
    CHECK(s_publishable(code) == 0, "a version of an unregistered entry is publishable");
    CHECK(s_versions(p, code) == 1 && s_versions(ops, code) == 1,
          "the owner and operations list the version");
    CHECK(s_versions(other, code) == -404 && s_versions(user, code) == -404,
          "another department and a user list versions of an unregistered entry");
    s_register(p, code);
    CHECK(s_publishable(code) == 1, "registered, the version is publishable");
    CHECK(s_versions(user, code) == 1, "registered, a user lists its version");

    /*  A service has no pushed content. */
    m.delivery_form = odp_v_str("app");
    m.endpoint = odp_v_str("https://apps.example.gov.cn/land");
    s_catalog(p, &m, app);
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256(digest, (const unsigned char *)"x", 1);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    odp_push_begin_t b = {0};
    b.resource = odp_v_str(app);
    b.format = odp_v_str("file");
    b.size = odp_v_int(1);
    b.sha256 = odp_v_str(hex);
    int st = h_call(p, &odp_def_push_begin, &b, &rep);
    EXPECT(st, &rep, 422, "INVALID_VALUE", "resource", "a push to an app");
    odp_reply_free(&rep);
    odp_client_destroy(&user);
    odp_client_destroy(&ops);
    odp_client_destroy(&other);
    odp_client_destroy(&p);
}

const h_case_t t_catalogue_cases[] = {
    {"plans are listed, overdue until catalogued, and stay in their department", s_plans},
    {"catalogue entries get sequential resource codes; every code list is checked", s_codes},
    {"a department cannot catalogue, describe or register another's entries", s_foreign},
    {"the sample data dictionaries are stored and read back field by field", s_dict_samples},
    {"bad data dictionaries are refused naming the item and the field", s_dict_bad},
    {"registration: requested, refused with a reason, requested again, registered", s_registration},
    {"transfer rules: defaults for all, changed by operations only, lists checked", s_rules},
    {"plans: changed while planned, cancelled with a reason, then neither", s_plan_upkeep},
    {"catalog.update changes what describes an entry, dates it, emits catalog.updated",
     s_catalog_upkeep},
    {"services and apps: an http(s) endpoint, no pushed content, registered without a dictionary",
     s_services},
    {"dictionary revisions: fixed once pushed; the next push uses the next; versions keep theirs",
     s_revisions},
    {"timeliness: next due from the update cycle and the last version; catalog.list --overdue",
     s_timeliness},
    {"visibility: others see only registered, open entries; the owner and operations see all",
     s_visibility},
    {"versions are publishable only while their entry is registered and open",
     s_publishable_versions},
    {"order of the spec: content pushed once catalogued, public and publishable once registered; "
     "no push to an app",
     s_order},
    {NULL, NULL}};
