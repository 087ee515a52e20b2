/*  Planning, the catalogue, data dictionaries, registration and the transfer rules end to
    end (R4.2, R5.3, R5.4, R5.5a, R5.5c, R7a, R8). Departments 4412xxxxx and 4413xxxxx. */
#include "harness.h"

#include <jansson.h>
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
        CHECK(s_get_is(&rep.obj, "planned_by", "provider:441200001"), "planned_by");
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

/*  Pack a JSON value; the dictionary files' "enum" is the wire's "allowed". */
static void s_pack_json(msgpack_packer *pk, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach(j, key, v)
        {
            const char *k = strcmp(key, "enum") == 0 ? "allowed" : key;
            msgpack_pack_str_with_body(pk, k, strlen(k));
            s_pack_json(pk, v);
        }
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            s_pack_json(pk, json_array_get(j, i));
        break;
    case JSON_STRING:
        msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(j));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(j));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        break;
    }
}

/*  dictionary.set of resource's table (NULL: default) with fields given as JSON text. */
static int s_dict_set(odp_client_t *c, const char *resource, const char *table, json_t *fields,
                      odp_reply_t *rep)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    s_pack_json(&pk, fields);
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
    st = s_dict_set_text(other, code, NULL, "[{\"name\": \"a\", \"type\": \"text\"}]", &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "resource", "another department's dictionary");
    odp_reply_free(&rep);
    odp_registration_request_t r = {0};
    r.resource = odp_v_str(code);
    st = h_call(other, &odp_def_registration_request, &r, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "resource", "another department's registration");
    odp_reply_free(&rep);
    odp_plan_list_t l = {0};
    l.department = odp_v_str("441300001");
    st = h_call(other, &odp_def_plan_list, &l, &rep);
    EXPECT(st, &rep, 403, "FORBIDDEN", "department", "another department's plans");
    odp_reply_free(&rep);

    /*  The catalogue itself is public. */
    odp_catalog_get_t g = {0};
    g.resource = odp_v_str(code);
    st = h_call(other, &odp_def_catalog_get, &g, &rep);
    CHECK(st == 200 && s_get_is(&rep.obj, "department", "441300001"),
          "catalog.get of another department's entry: %d", st);
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

/*  Whether the registrar's events after seq include topic for resource. */
static bool s_event_after(int64_t seq, const char *topic, const char *resource)
{
    odp_client_t *ops = h_client("registrar", NULL);
    odp_events_replay_t m = {0};
    m.from = odp_v_int(seq + 1);
    odp_reply_t rep;
    bool found = false;
    if (h_call(ops, &odp_def_events_replay, &m, &rep) == 200) {
        const msgpack_object *evs = odp_map_get(&rep.obj, "events");
        for (uint32_t i = 0; evs && i < evs->via.array.size; i++) {
            const msgpack_object *pair = &evs->via.array.ptr[i];
            if (pair->type == MSGPACK_OBJECT_ARRAY && pair->via.array.size == 2 &&
                s_str_is(&pair->via.array.ptr[0], topic) &&
                s_get_is(&pair->via.array.ptr[1], "resource", resource))
                found = true;
        }
    }
    odp_reply_free(&rep);
    odp_client_destroy(&ops);
    return found;
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
    st = s_dict_set_text(p, code, NULL, dict, &rep);
    EXPECT(st, &rep, 409, "INVALID_STATE", "resource", "changing a registered dictionary");
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

const h_case_t t_catalogue_cases[] = {
    {"plans are listed, overdue until catalogued, and stay in their department", s_plans},
    {"catalogue entries get sequential resource codes; every code list is checked", s_codes},
    {"a department cannot catalogue, describe or register another's entries", s_foreign},
    {"the sample data dictionaries are stored and read back field by field", s_dict_samples},
    {"bad data dictionaries are refused naming the item and the field", s_dict_bad},
    {"registration: requested, refused with a reason, requested again, registered", s_registration},
    {"transfer rules: defaults for all, changed by operations only, lists checked", s_rules},
    {NULL, NULL}};
