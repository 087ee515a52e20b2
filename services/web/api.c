/*  CKAN's Action API v3 over the query service (docs/http-api.md has the mapping):
    department → organization, catalogue entry → package, released version → resource,
    domain → group. Parameter names, defaults, limits, the envelope and the error shapes
    are CKAN's, so CKAN clients (ckanapi, the CKAN harvesters) work unchanged. */
#include "web.h"

#include "common/codelist.h"
#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  ---- the envelope ------------------------------------------------------------------------ */

static enum MHD_Result s_reply(w_req_t *r, const char *action, unsigned status, json_t *body,
                               const char *extra)
{
    char base[300], help[400];
    w_base_url(r, base, sizeof base);
    snprintf(help, sizeof help, "%s/api/3/action/help_show?name=%s", base, action);
    if (!body) {
        /*  A reply shaped otherwise than this gateway expects: say so, never crash. */
        status = 500;
        body = json_pack("{s:b,s:{s:s,s:s}}", "success", 0, "error", "__type",
                         "Internal Server Error", "message", "an unexpected answer upstream");
    }
    json_object_set_new(body, "help", json_string(help));
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    enum MHD_Result rc = w_send(r, status, "application/json;charset=utf-8", s, strlen(s), extra);
    free(s);
    return rc;
}

static const char *s_action(const w_req_t *r)
{
    const char *a = r->path + strlen("/api/3/action/");
    return strncmp(r->path, "/api/3/action/", 14) == 0 ? a : "";
}

enum MHD_Result w_ckan_error(w_req_t *r, unsigned status, const char *type, const char *field,
                             const char *message)
{
    json_t *err = json_pack("{s:s}", "__type", type);
    if (field)
        json_object_set_new(err, field, json_pack("[s]", message));
    else
        json_object_set_new(err, "message", json_string(message));
    return s_reply(r, s_action(r), status, json_pack("{s:b,s:o}", "success", 0, "error", err),
                   NULL);
}

static enum MHD_Result s_ok(w_req_t *r, json_t *result, const char *extra)
{
    return s_reply(r, s_action(r), 200, json_pack("{s:b,s:o}", "success", 1, "result", result),
                   extra);
}

/*  The query service's field names, as CKAN calls them. */
static const char *s_ckan_field(const char *f)
{
    static const char *const map[][2] = {{"facet_field", "facet.field"},
                                         {"facet_limit", "facet.limit"},
                                         {"resource", "resource_id"},
                                         {"login", "name"},
                                         {"department", "owner_org"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(f, map[i][0]) == 0)
            return map[i][1];
    return f;
}

enum MHD_Result w_ckan_refused(w_req_t *r, const odp_reply_t *rep, int status)
{
    char code[40], field[80], msg[1100];
    odp_v_cstr(&rep->err.code, code, sizeof code);
    odp_v_cstr(&rep->err.field, field, sizeof field);
    odp_v_cstr(&rep->err.message, msg, sizeof msg);
    if (status == 503 && !rep->status)
        return w_ckan_error(r, 503, "Service Unavailable", NULL,
                            "the query service did not answer; try again later");
    if (strcmp(code, "NOT_FOUND") == 0)
        return w_ckan_error(r, 404, "Not Found Error", NULL, msg[0] ? msg : "Not found");
    if (strcmp(code, "FORBIDDEN") == 0 || strcmp(code, "UNAUTHENTICATED") == 0)
        return w_ckan_error(r, 403, "Authorization Error", NULL, msg);
    if (strcmp(code, "RATE_LIMITED") == 0) {
        const char *p = strstr(msg, "retry_after_ms=");
        int64_t ms = p ? strtoll(p + 15, NULL, 10) : 1000;
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Retry-After: %" PRId64, (ms + 999) / 1000);
        json_t *err = json_pack("{s:s,s:s}", "__type", "Rate Limit", "message", msg);
        return s_reply(r, s_action(r), 429, json_pack("{s:b,s:o}", "success", 0, "error", err),
                       hdr);
    }
    if (status >= 500)
        return w_ckan_error(r, status == 503 ? 503 : 500, "Internal Server Error", NULL, msg);
    return w_ckan_error(r, 409, "Validation Error", s_ckan_field(field[0] ? field : "message"),
                        msg);
}

/*  ---- parameters ------------------------------------------------------------------------- */

/*  A parameter that CKAN takes as JSON: a JSON value in a POST body, or its JSON text in a
    query string. New reference, or NULL (and *bad when it was there but not JSON). */
static json_t *s_json_param(w_req_t *r, const char *name, bool *bad)
{
    json_t *v = json_object_get(r->params, name);
    *bad = false;
    if (!v)
        return NULL;
    if (!json_is_string(v))
        return json_incref(v);
    json_t *parsed = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
    if (!parsed)
        *bad = true;
    return parsed;
}

/*  A list given as a JSON list, or as comma-separated text (CKAN's fields). */
static json_t *s_list_param(w_req_t *r, const char *name)
{
    json_t *v = json_object_get(r->params, name);
    if (!v)
        return NULL;
    if (json_is_array(v))
        return json_incref(v);
    if (!json_is_string(v))
        return json_array();
    const char *s = json_string_value(v);
    if (*s == '[') {
        json_t *a = json_loads(s, 0, NULL);
        if (json_is_array(a))
            return a;
        json_decref(a);
    }
    json_t *out = json_array();
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ",");
        size_t t = n;
        while (t && s[t - 1] == ' ')
            t--;
        if (t)
            json_array_append_new(out, json_stringn(s, t));
        s += n;
    }
    return out;
}

static int s_bool_param(w_req_t *r, const char *name, bool def, bool *out)
{
    json_t *v = json_object_get(r->params, name);
    *out = def;
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (s && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "yes") == 0))
        *out = true;
    else if (s && (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0))
        *out = false;
    else
        return -1;
    return 0;
}

#define S_INT(name, def, min, max, out)                                                            \
    do {                                                                                           \
        char why_[120];                                                                            \
        if (w_param_int(r, name, def, min, max, out, why_, sizeof why_) < 0)                       \
            return w_ckan_error(r, 409, "Validation Error", name, why_);                           \
    } while (0)

static const char *s_need(w_req_t *r, const char *name)
{
    const char *v = w_param(r, name);
    return v && *v ? v : NULL;
}

#define S_NEED(var, name)                                                                          \
    const char *var = s_need(r, name);                                                             \
    if (!var)                                                                                      \
    return w_ckan_error(r, 409, "Validation Error", name, "Missing value")

/*  ---- mapping ------------------------------------------------------------------------------ */

static const char *s_label(const odp_codelist_t *cl, const char *code)
{
    for (size_t i = 0; cl && code && i < cl->n; i++)
        if (strcmp(cl->codes[i].code, code) == 0)
            return cl->codes[i].label;
    return code;
}

static const char *s_js(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static json_t *s_resource_dict(const char *base, json_t *e, json_t *v)
{
    const char *res = s_js(e, "resource");
    json_int_t ver = json_integer_value(json_object_get(v, "version"));
    char id[64], url[600], name[64];
    snprintf(id, sizeof id, "%s-v%" JSON_INTEGER_FORMAT, res, ver);
    snprintf(url, sizeof url, "%s/datastore/dump/%s", base, id);
    snprintf(name, sizeof name, "第 %" JSON_INTEGER_FORMAT " 版", ver);
    bool dataset = strcmp(s_js(e, "kind"), "dataset") == 0;
    json_t *d =
        json_pack("{s:s,s:s,s:s,s:s,s:b,s:O?,s:O?,s:O?,s:I,s:O?,s:O?}", "id", id, "package_id", res,
                  "name", name, "url", url, "datastore_active", dataset, "format",
                  json_object_get(v, "format"), "hash", json_object_get(v, "sha256"), "created",
                  json_object_get(v, "released_at"), "version", ver, "rows",
                  json_object_get(v, "rows"), "state_odp", json_object_get(v, "state"));
    if (!json_object_get(d, "format") || json_is_null(json_object_get(d, "format")))
        json_object_set_new(d, "format", json_string(dataset ? "CSV" : ""));
    json_object_set_new(d, "url_type", json_string(dataset ? "datastore" : ""));
    return d;
}

/*  A package from a search hit or an entry.show reply (JSON). */
static json_t *s_package(const char *base, json_t *e)
{
    const char *dept = s_js(e, "department");
    const char *domain = s_js(e, "domain");
    json_t *tags = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(e, "keywords"), i, k)
        json_array_append_new(tags, json_pack("{s:O,s:O}", "name", k, "display_name", k));
    json_t *p = json_pack(
        "{s:s,s:s,s:O?,s:O?,s:s,s:s,s:b,s:O?,s:O?,s:s,s:{s:s,s:s,s:s,s:s,s:b},s:[{s:s,s:s,s:s}],"
        "s:o,s:I}",
        "id", s_js(e, "resource"), "name", s_js(e, "resource"), "title",
        json_object_get(e, "title"), "notes", json_object_get(e, "summary"), "type", "dataset",
        "state", "active", "private", 0, "metadata_created",
        json_object_get(e, "first_released_at"), "metadata_modified",
        json_object_get(e, "modified_at"), "owner_org", dept, "organization", "id", dept, "name",
        dept, "title", s_js(e, "department_name"), "type", "organization", "is_organization", 1,
        "groups", "id", domain, "name", domain, "title", s_label(&odp_cl_domain, domain), "tags",
        tags, "num_tags", (json_int_t)json_array_size(tags));
    json_t *extras = json_array();
    static const char *const ex[] = {"kind",          "open_type",         "content_kind",
                                     "delivery_form", "update_cycle",      "contact",
                                     "location",      "access_conditions", "endpoint"};
    for (size_t x = 0; x < sizeof ex / sizeof ex[0]; x++) {
        json_t *v = json_object_get(e, ex[x]);
        if (json_is_string(v))
            json_array_append_new(extras, json_pack("{s:s,s:O}", "key", ex[x], "value", v));
    }
    json_object_set_new(p, "extras", extras);
    json_object_set(p, "open_type", json_object_get(e, "open_type"));
    json_t *res = json_array();
    json_t *versions = json_object_get(e, "versions");
    if (json_is_array(versions)) {
        json_array_foreach(versions, i, k) json_array_append_new(res, s_resource_dict(base, e, k));
    } else if (json_is_integer(json_object_get(e, "version"))) {
        json_t *v = json_pack("{s:O,s:O?,s:O?,s:s}", "version", json_object_get(e, "version"),
                              "format", json_object_get(e, "format"), "rows",
                              json_object_get(e, "rows"), "state", "current");
        json_array_append_new(res, s_resource_dict(base, e, v));
        json_decref(v);
    }
    json_object_set_new(p, "num_resources", json_integer((json_int_t)json_array_size(res)));
    json_object_set_new(p, "resources", res);
    static const char *const keep[] = {"fields", "may_read", "why", "how", "grant_expires_at"};
    for (size_t x = 0; x < sizeof keep / sizeof keep[0]; x++)
        if (json_object_get(e, keep[x]))
            json_object_set(p, x == 0 ? "dictionary" : keep[x], json_object_get(e, keep[x]));
    return p;
}

/*  CKAN's facet and fq names → the query service's. */
static const char *const s_facet_map[][2] = {
    {"organization", "department"},
    {"groups", "domain"},
    {"res_format", "format"},
    {"owner_org", "department"},
};

static const char *s_facet_in(const char *f)
{
    for (size_t i = 0; i < sizeof s_facet_map / sizeof s_facet_map[0]; i++)
        if (strcmp(f, s_facet_map[i][0]) == 0)
            return s_facet_map[i][1];
    return f;
}

static const char *s_facet_out(const char *f)
{
    for (size_t i = 0; i < 3; i++)
        if (strcmp(f, s_facet_map[i][1]) == 0)
            return s_facet_map[i][0];
    return f;
}

/*  fq with CKAN's field names rewritten where a term starts. */
static char *s_fq(const char *fq)
{
    odp_buf_t *b = odp_buf_new();
    const char *p = fq;
    while (*p) {
        bool start = p == fq || p[-1] == ' ' || p[-1] == '(' || p[-1] == '+' || p[-1] == '-';
        bool done = false;
        for (size_t i = 0; start && i < sizeof s_facet_map / sizeof s_facet_map[0]; i++) {
            size_t n = strlen(s_facet_map[i][0]);
            if (strncmp(p, s_facet_map[i][0], n) == 0 && p[n] == ':') {
                w_bprintf(b, "%s", s_facet_map[i][1]);
                p += n;
                done = true;
                break;
            }
        }
        if (!done)
            odp_buf_append(b, p++, 1);
    }
    char *s = strdup(odp_buf_data(b));
    odp_buf_destroy(&b);
    return s;
}

/*  ---- actions ------------------------------------------------------------------------------ */

static enum MHD_Result s_status_show(w_req_t *r)
{
    char base[300];
    w_base_url(r, base, sizeof base);
    return s_ok(r,
                json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s]}", "site_title", "政务数据开放平台",
                          "site_description", "odp: open government data", "site_url", base,
                          "ckan_version", "2.10.4", "locale_default", "zh_Hans_CN", "extensions",
                          "datastore"),
                NULL);
}

/*  catalogue.search with the given body; the reply as JSON (NULL after answering an error). */
static json_t *s_search(w_req_t *r, json_t *body, enum MHD_Result *answered, bool query_error)
{
    odp_reply_t rep;
    int st = w_call(r, "catalogue.search", body, &rep);
    if (st != 200) {
        char code[40], msg[1100];
        odp_v_cstr(&rep.err.code, code, sizeof code);
        odp_v_cstr(&rep.err.message, msg, sizeof msg);
        if (query_error && st == 422)
            *answered = w_ckan_error(r, 409, "Search Query Error", NULL, msg);
        else
            *answered = w_ckan_refused(r, &rep, st);
        odp_reply_free(&rep);
        return NULL;
    }
    json_t *j = odp_json_from_msgpack(&rep.obj);
    odp_reply_free(&rep);
    return j;
}

static enum MHD_Result s_package_search(w_req_t *r)
{
    int64_t rows, start, flimit;
    S_INT("rows", 10, 0, 1000, &rows);
    S_INT("start", 0, 0, 100000, &start);
    S_INT("facet.limit", 50, -1, 1000, &flimit);
    json_t *body = json_pack("{s:I,s:I}", "rows", (json_int_t)rows, "start", (json_int_t)start);
    const char *q = w_param(r, "q");
    /*  Solr's match-all is CKAN's default q. */
    if (q && *q && strcmp(q, "*:*") != 0)
        json_object_set_new(body, "q", json_string(q));
    const char *fq = w_param(r, "fq");
    if (fq && *fq) {
        char *m = s_fq(fq);
        json_object_set_new(body, "fq", json_string(m));
        free(m);
    }
    const char *sort = w_param(r, "sort");
    if (sort && *sort) {
        /*  CKAN's default is "score desc, metadata_modified desc": the first key decides. */
        char first[101];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(sort, ","), sort);
        json_object_set_new(body, "sort", json_string(first));
    }
    bool bad;
    json_t *ff = s_json_param(r, "facet.field", &bad);
    if (bad || (ff && !json_is_array(ff))) {
        json_decref(ff);
        json_decref(body);
        return w_ckan_error(r, 409, "Validation Error", "facet.field",
                            "Must be a JSON list of field names");
    }
    if (ff) {
        json_t *mapped = json_array();
        size_t i;
        json_t *f;
        json_array_foreach(ff, i, f) if (json_is_string(f))
            json_array_append_new(mapped, json_string(s_facet_in(json_string_value(f))));
        json_object_set_new(body, "facet_field", mapped);
        json_object_set_new(body, "facet_limit",
                            json_integer(flimit < 0 ? 1000
                                         : flimit   ? flimit
                                                    : 1));
        json_decref(ff);
    }
    enum MHD_Result answered = MHD_NO;
    json_t *j = s_search(r, body, &answered, true);
    if (!j)
        return answered;
    char base[300];
    w_base_url(r, base, sizeof base);
    json_t *results = json_array();
    size_t i;
    json_t *hit;
    json_array_foreach(json_object_get(j, "results"), i, hit)
        json_array_append_new(results, s_package(base, hit));
    json_t *facets = json_object(), *sf = json_object();
    const char *k;
    json_t *fv;
    json_object_foreach(json_object_get(j, "search_facets"), k, fv)
    {
        const char *ck = s_facet_out(k);
        json_t *counts = json_object();
        json_t *items = json_array();
        size_t n;
        json_t *it;
        json_array_foreach(json_object_get(fv, "items"), n, it)
        {
            json_object_set(counts, s_js(it, "name"), json_object_get(it, "count"));
            json_t *dn = json_object_get(it, "display_name");
            if (strcmp(k, "domain") == 0)
                dn = json_string(s_label(&odp_cl_domain, s_js(it, "name")));
            else
                json_incref(dn);
            json_array_append_new(items, json_pack("{s:O,s:o,s:O}", "name",
                                                   json_object_get(it, "name"), "display_name", dn,
                                                   "count", json_object_get(it, "count")));
        }
        json_object_set_new(facets, ck, counts);
        json_object_set_new(sf, ck, json_pack("{s:s,s:o}", "title", ck, "items", items));
    }
    json_t *res = json_pack("{s:O,s:o,s:o,s:o,s:s}", "count", json_object_get(j, "count"),
                            "results", results, "facets", facets, "search_facets", sf, "sort",
                            sort && *sort ? sort : "score desc, metadata_modified desc");
    json_decref(j);
    return s_ok(r, res, NULL);
}

static enum MHD_Result s_package_list(w_req_t *r)
{
    int64_t limit, offset;
    S_INT("limit", 1000, 0, 1000, &limit);
    S_INT("offset", 0, 0, 100000, &offset);
    enum MHD_Result answered = MHD_NO;
    json_t *j = s_search(r,
                         json_pack("{s:I,s:I,s:s}", "rows", (json_int_t)limit, "start",
                                   (json_int_t)offset, "sort", "name asc"),
                         &answered, false);
    if (!j)
        return answered;
    json_t *names = json_array();
    size_t i;
    json_t *hit;
    json_array_foreach(json_object_get(j, "results"), i, hit)
        json_array_append(names, json_object_get(hit, "resource"));
    json_decref(j);
    return s_ok(r, names, NULL);
}

static json_t *s_entry(w_req_t *r, const char *resource, enum MHD_Result *answered)
{
    odp_reply_t rep;
    int st = w_call(r, "entry.show", json_pack("{s:s}", "resource", resource), &rep);
    if (st != 200) {
        *answered = w_ckan_refused(r, &rep, st);
        odp_reply_free(&rep);
        return NULL;
    }
    json_t *j = odp_json_from_msgpack(&rep.obj);
    odp_reply_free(&rep);
    return j;
}

static enum MHD_Result s_package_show(w_req_t *r)
{
    S_NEED(id, "id");
    enum MHD_Result answered = MHD_NO;
    json_t *e = s_entry(r, id, &answered);
    if (!e)
        return answered;
    char base[300];
    w_base_url(r, base, sizeof base);
    json_t *p = s_package(base, e);
    json_decref(e);
    return s_ok(r, p, NULL);
}

static enum MHD_Result s_resource_show(w_req_t *r)
{
    S_NEED(id, "id");
    char resource[64];
    int64_t version;
    w_resource_id(id, resource, sizeof resource, &version);
    enum MHD_Result answered = MHD_NO;
    json_t *e = s_entry(r, resource, &answered);
    if (!e)
        return answered;
    char base[300];
    w_base_url(r, base, sizeof base);
    size_t i;
    json_t *v, *found = NULL;
    json_array_foreach(json_object_get(e, "versions"), i, v)
    {
        bool cur = strcmp(s_js(v, "state"), "current") == 0;
        if ((version && json_integer_value(json_object_get(v, "version")) == version) ||
            (!version && cur)) {
            found = s_resource_dict(base, e, v);
            break;
        }
    }
    json_decref(e);
    if (!found)
        return w_ckan_error(r, 404, "Not Found Error", NULL, "Resource was not found.");
    return s_ok(r, found, NULL);
}

/*  organization_list / group_list from the department / domain facet. */
static enum MHD_Result s_facet_list(w_req_t *r, const char *facet)
{
    int64_t limit, offset;
    S_INT("limit", 1000, 0, 1000, &limit);
    S_INT("offset", 0, 0, 100000, &offset);
    bool all;
    if (s_bool_param(r, "all_fields", false, &all) < 0)
        return w_ckan_error(r, 409, "Validation Error", "all_fields", "Must be true or false");
    bool dept = strcmp(facet, "department") == 0;
    enum MHD_Result answered = MHD_NO;
    /*  Department names come with the hits: enough hits to name every department listed. */
    json_t *j = s_search(r,
                         json_pack("{s:[s],s:i,s:i}", "facet_field", facet, "facet_limit", 1000,
                                   "rows", dept && all ? 1000 : 0),
                         &answered, false);
    if (!j)
        return answered;
    json_t *items =
        json_object_get(json_object_get(json_object_get(j, "search_facets"), facet), "items");
    /*  CKAN sorts by name. */
    json_t *sorted = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        size_t at = 0;
        while (at < json_array_size(sorted) &&
               strcmp(s_js(json_array_get(sorted, at), "name"), s_js(it, "name")) < 0)
            at++;
        json_array_insert(sorted, at, it);
    }
    json_t *out = json_array();
    json_array_foreach(sorted, i, it)
    {
        if ((int64_t)i < offset || (int64_t)json_array_size(out) >= limit)
            continue;
        const char *name = s_js(it, "name");
        if (!all) {
            json_array_append_new(out, json_string(name));
            continue;
        }
        const char *title = name;
        if (dept) {
            size_t h;
            json_t *hit;
            json_array_foreach(json_object_get(j, "results"), h,
                               hit) if (strcmp(s_js(hit, "department"), name) == 0) title =
                s_js(hit, "department_name");
        } else
            title = s_label(&odp_cl_domain, name);
        json_array_append_new(out,
                              json_pack("{s:s,s:s,s:s,s:s,s:O,s:b,s:s}", "id", name, "name", name,
                                        "title", title, "display_name", title, "package_count",
                                        json_object_get(it, "count"), "is_organization", dept,
                                        "type", dept ? "organization" : "group"));
    }
    json_decref(sorted);
    json_decref(j);
    return s_ok(r, out, NULL);
}

static enum MHD_Result s_organization_show(w_req_t *r)
{
    S_NEED(id, "id");
    bool with;
    if (s_bool_param(r, "include_datasets", false, &with) < 0)
        return w_ckan_error(r, 409, "Validation Error", "include_datasets",
                            "Must be true or false");
    char fq[64];
    snprintf(fq, sizeof fq, "department:\"%.20s\"", id);
    if (strspn(id, "0123456789") != strlen(id))
        return w_ckan_error(r, 404, "Not Found Error", NULL, "Organization not found");
    enum MHD_Result answered = MHD_NO;
    json_t *j = s_search(
        r, json_pack("{s:s,s:i,s:s}", "fq", fq, "rows", with ? 1000 : 1, "sort", "name asc"),
        &answered, false);
    if (!j)
        return answered;
    json_t *first = json_array_get(json_object_get(j, "results"), 0);
    if (!first) {
        json_decref(j);
        return w_ckan_error(r, 404, "Not Found Error", NULL, "Organization not found");
    }
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:O,s:b,s:s,s:s}", "id", id, "name", id, "title",
                  s_js(first, "department_name"), "display_name", s_js(first, "department_name"),
                  "package_count", json_object_get(j, "count"), "is_organization", 1, "type",
                  "organization", "state", "active");
    if (with) {
        char base[300];
        w_base_url(r, base, sizeof base);
        json_t *pk = json_array();
        size_t i;
        json_t *hit;
        json_array_foreach(json_object_get(j, "results"), i, hit)
            json_array_append_new(pk, s_package(base, hit));
        json_object_set_new(o, "packages", pk);
    }
    json_decref(j);
    return s_ok(r, o, NULL);
}

static enum MHD_Result s_tag_list(w_req_t *r)
{
    const char *q = w_param(r, "query");
    enum MHD_Result answered = MHD_NO;
    json_t *j = s_search(r, json_pack("{s:i}", "rows", 1000), &answered, false);
    if (!j)
        return answered;
    json_t *seen = json_object();
    size_t i, k;
    json_t *hit, *kw;
    json_array_foreach(json_object_get(j, "results"), i, hit)
        json_array_foreach(json_object_get(hit, "keywords"), k,
                           kw) if (json_is_string(kw) && (!q || strstr(json_string_value(kw), q)))
            json_object_set_new(seen, json_string_value(kw), json_true());
    json_decref(j);
    json_t *out = json_array();
    const char *name;
    json_t *x;
    json_object_foreach(seen, name, x)
    {
        size_t at = 0;
        while (at < json_array_size(out) &&
               strcmp(json_string_value(json_array_get(out, at)), name) < 0)
            at++;
        json_array_insert_new(out, at, json_string(name));
    }
    json_decref(seen);
    return s_ok(r, out, NULL);
}

static enum MHD_Result s_datastore_search(w_req_t *r)
{
    const char *id = s_need(r, "resource_id");
    if (!id)
        id = s_need(r, "id");
    if (!id)
        return w_ckan_error(r, 409, "Validation Error", "resource_id", "Missing value");
    int64_t limit, offset;
    S_INT("limit", 100, 0, 32000, &limit);
    S_INT("offset", 0, 0, 100000, &offset);
    bool total;
    if (s_bool_param(r, "include_total", true, &total) < 0)
        return w_ckan_error(r, 409, "Validation Error", "include_total", "Must be true or false");
    char resource[64];
    int64_t version;
    w_resource_id(id, resource, sizeof resource, &version);
    json_t *body = json_pack("{s:s,s:I,s:I,s:b}", "resource", resource, "limit", (json_int_t)limit,
                             "offset", (json_int_t)offset, "include_total", total);
    if (version)
        json_object_set_new(body, "version", json_integer(version));
    bool bad;
    json_t *filters = s_json_param(r, "filters", &bad);
    if (bad || (filters && !json_is_object(filters))) {
        json_decref(filters);
        json_decref(body);
        return w_ckan_error(r, 409, "Validation Error", "filters", "Must be a JSON object");
    }
    if (filters)
        json_object_set_new(body, "filters", filters);
    json_t *q = json_object_get(r->params, "q");
    if (q && !json_is_string(q)) {
        json_decref(body);
        return w_ckan_error(r, 409, "Validation Error", "q", "Must be a string");
    }
    if (q && json_string_length(q))
        json_object_set(body, "q", q);
    json_t *fields = s_list_param(r, "fields");
    if (fields)
        json_object_set_new(body, "fields", fields);
    static const char *const strs[] = {"sort", "records_format", "next_page"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = s_need(r, strs[i]);
        if (v)
            json_object_set_new(body, strs[i], json_string(v));
    }
    odp_reply_t rep;
    int st = w_call(r, "datastore.search", body, &rep);
    if (st != 200) {
        enum MHD_Result rc = w_ckan_refused(r, &rep, st);
        odp_reply_free(&rep);
        return rc;
    }
    int64_t release = w_int(&rep.obj, "release", 0);
    /*  A released version never changes: the same question gets the same rows. */
    char etag[96], hdr[160];
    uint32_t h = 2166136261u;
    const char *key;
    json_t *v;
    json_object_foreach(r->params, key, v)
    {
        char *t = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        const char *p = t ? t : json_string_value(v);
        for (const char *k = key; *k; k++)
            h = (h ^ (uint8_t)*k) * 16777619u;
        /*  A separator, so that ("ab", "c") and ("a", "bc") differ. */
        h = (h ^ (t ? 1u : 0u)) * 16777619u;
        for (; p && *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        free(t);
    }
    snprintf(etag, sizeof etag, "\"r%" PRId64 "-%08x%s\"", release, h, r->token[0] ? "-u" : "");
    snprintf(hdr, sizeof hdr, "ETag: %s\nCache-Control: %s, max-age=60", etag,
             r->token[0] ? "private" : "public");
    if (r->if_none && strcmp(r->if_none, etag) == 0) {
        odp_reply_free(&rep);
        return w_send(r, 304, "application/json;charset=utf-8", "", 0, hdr);
    }
    /*  The answer is written straight from the reply's msgpack: a page of rows as a jansson
        tree cost the gateway more than the query service spent finding it. */
    char base[300];
    w_base_url(r, base, sizeof base);
    odp_buf_t *b = odp_buf_new();
    static const char *const passed[] = {"fields", "records", "records_format"};
    odp_buf_append(b, "{\"success\":true,\"result\":{\"resource_id\":", 40);
    w_json_str(b, id, strlen(id));
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
        const msgpack_object *x = odp_map_get(&rep.obj, passed[i]);
        w_bprintf(b, ",\"%s\":", passed[i]);
        if (x)
            w_json_msgpack(b, x);
        else
            odp_buf_append(b, "null", 4);
    }
    w_bprintf(b, ",\"limit\":%" PRId64 ",\"offset\":%" PRId64 ",\"include_total\":%s", limit,
              offset, total ? "true" : "false");
    static const char *const optional[] = {"total", "total_was_estimated", "version"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        const msgpack_object *x = odp_map_get(&rep.obj, optional[i]);
        if (!x || (i == 1 && !odp_map_get(&rep.obj, "total")))
            continue;
        w_bprintf(b, ",\"%s\":", optional[i]);
        w_json_msgpack(b, x);
    }
    odp_buf_t *lb = odp_buf_new();
    w_bprintf(lb, "/api/3/action/datastore_search?resource_id=");
    w_urlenc(lb, id);
    char np[400];
    w_str(&rep.obj, "next_page", np, sizeof np);
    if (*np) {
        odp_buf_append(b, ",\"next_page\":", 13);
        w_json_str(b, np, strlen(np));
    }
    odp_buf_append(b, ",\"_links\":{\"start\":", 19);
    w_json_str(b, odp_buf_data(lb), odp_buf_size(lb));
    if (*np) {
        w_bprintf(lb, "&next_page=");
        w_urlenc(lb, np);
        w_bprintf(lb, "&limit=%" PRId64, limit);
    } else
        w_bprintf(lb, "&offset=%" PRId64 "&limit=%" PRId64, offset + limit, limit);
    odp_buf_append(b, ",\"next\":", 8);
    w_json_str(b, odp_buf_data(lb), odp_buf_size(lb));
    odp_buf_destroy(&lb);
    odp_reply_free(&rep);
    w_bprintf(b, "}},\"help\":");
    odp_buf_t *help = odp_buf_new();
    w_bprintf(help, "%s/api/3/action/help_show?name=datastore_search", base);
    w_json_str(b, odp_buf_data(help), odp_buf_size(help));
    odp_buf_destroy(&help);
    odp_buf_append(b, "}", 1);
    enum MHD_Result rc =
        w_send(r, 200, "application/json;charset=utf-8", odp_buf_data(b), odp_buf_size(b), hdr);
    odp_buf_destroy(&b);
    return rc;
}

/*  ---- users, applications, feedback (the platform's own actions, CKAN-style names) ------- */

/*  A call whose JSON answer is the result as the query service gave it. */
static enum MHD_Result s_pass(w_req_t *r, const char *cmd, json_t *body)
{
    odp_reply_t rep;
    int st = w_call(r, cmd, body, &rep);
    if (st != 200) {
        enum MHD_Result rc = w_ckan_refused(r, &rep, st);
        odp_reply_free(&rep);
        return rc;
    }
    json_t *j = odp_json_from_msgpack(&rep.obj);
    odp_reply_free(&rep);
    return s_ok(r, j, NULL);
}

/*  Copy the named parameters (text) into body; ints are sent as numbers. */
static json_t *s_body(w_req_t *r, const char *const *texts, const char *const *ints, bool *bad,
                      const char **bad_name)
{
    json_t *b = json_object();
    *bad = false;
    for (; texts && *texts; texts++) {
        const char *v = w_param(r, *texts);
        if (v && *v)
            json_object_set_new(b, *texts, json_string(v));
    }
    for (; ints && *ints; ints++) {
        int64_t n;
        char why[120];
        if (!json_object_get(r->params, *ints))
            continue;
        if (w_param_int(r, *ints, 0, INT64_MIN + 1, INT64_MAX, &n, why, sizeof why) < 0) {
            *bad = true;
            *bad_name = *ints;
            break;
        }
        json_object_set_new(b, *ints, json_integer(n));
    }
    return b;
}

#define S_BODY(var, texts, ints)                                                                   \
    bool bad_;                                                                                     \
    const char *badn_ = NULL;                                                                      \
    json_t *var = s_body(r, texts, ints, &bad_, &badn_);                                           \
    if (bad_) {                                                                                    \
        json_decref(var);                                                                          \
        return w_ckan_error(r, 409, "Validation Error", badn_, "Invalid integer");                 \
    }

static enum MHD_Result s_user_create(w_req_t *r)
{
    S_NEED(name, "name");
    S_NEED(password, "password");
    json_t *b = json_pack("{s:s,s:s}", "login", name, "password", password);
    const char *full = s_need(r, "fullname");
    if (full)
        json_object_set_new(b, "name", json_string(full));
    return s_pass(r, "user.signup", b);
}

static enum MHD_Result s_user_login(w_req_t *r)
{
    S_NEED(name, "name");
    S_NEED(password, "password");
    json_t *b = json_pack("{s:s,s:s}", "login", name, "password", password);
    int64_t ttl;
    S_INT("ttl_s", 0, 0, 2592000, &ttl);
    if (ttl)
        json_object_set_new(b, "ttl_s", json_integer(ttl));
    /*  A login names no session: an Authorization header must not turn it into the header's. */
    r->token[0] = '\0';
    return s_pass(r, "user.signin", b);
}

static enum MHD_Result s_user_logout(w_req_t *r)
{
    bool all;
    if (s_bool_param(r, "all", false, &all) < 0)
        return w_ckan_error(r, 409, "Validation Error", "all", "Must be true or false");
    if (!r->token[0])
        return w_ckan_error(r, 403, "Authorization Error", NULL, "Not signed in");
    json_t *b = json_object();
    if (all)
        json_object_set_new(b, "all", json_true());
    return s_pass(r, "user.signout", b);
}

static enum MHD_Result s_application_create(w_req_t *r)
{
    static const char *const t[] = {"resource",    "purpose",   "scope",
                                    "period_from", "period_to", NULL};
    S_BODY(b, t, NULL);
    if (!json_object_get(b, "resource") && s_need(r, "resource_id"))
        json_object_set_new(b, "resource", json_string(s_need(r, "resource_id")));
    return s_pass(r, "application.submit", b);
}

static enum MHD_Result s_application_list(w_req_t *r)
{
    static const char *const t[] = {"state", "resource", NULL};
    static const char *const i[] = {"limit", NULL};
    S_BODY(b, t, i);
    return s_pass(r, "application.list", b);
}

static enum MHD_Result s_access_check(w_req_t *r)
{
    S_NEED(id, "id");
    char resource[64];
    int64_t version;
    w_resource_id(id, resource, sizeof resource, &version);
    return s_pass(r, "access.check", json_pack("{s:s}", "resource", resource));
}

static enum MHD_Result s_feedback_create(w_req_t *r)
{
    static const char *const t[] = {"kind", "resource", "department", "title", "text", "url", NULL};
    static const char *const i[] = {"rating", NULL};
    S_BODY(b, t, i);
    return s_pass(r, "feedback.submit", b);
}

static enum MHD_Result s_feedback_list(w_req_t *r)
{
    static const char *const t[] = {"kind", "state", NULL};
    static const char *const i[] = {"limit", NULL};
    S_BODY(b, t, i);
    return s_pass(r, "feedback.list", b);
}

static enum MHD_Result s_feedback_show(w_req_t *r)
{
    static const char *const i[] = {"id", NULL};
    S_BODY(b, NULL, i);
    return s_pass(r, "feedback.get", b);
}

static enum MHD_Result s_feedback_reply(w_req_t *r)
{
    static const char *const t[] = {"text", NULL};
    static const char *const i[] = {"id", NULL};
    S_BODY(b, t, i);
    return s_pass(r, "feedback.reply", b);
}

static enum MHD_Result s_download_list(w_req_t *r)
{
    static const char *const t[] = {"resource", NULL};
    static const char *const i[] = {"limit", NULL};
    S_BODY(b, t, i);
    return s_pass(r, "download.list", b);
}

static enum MHD_Result s_user_show(w_req_t *r)
{
    return s_pass(r, "user.me", json_object());
}

static const struct {
    const char *name;
    enum MHD_Result (*fn)(w_req_t *);
    bool write; /* changes something: POST only */
} s_actions[] = {
    {"status_show", s_status_show, false},
    {"package_list", s_package_list, false},
    {"package_search", s_package_search, false},
    {"package_show", s_package_show, false},
    {"organization_list", NULL, false},
    {"organization_show", s_organization_show, false},
    {"group_list", NULL, false},
    {"tag_list", s_tag_list, false},
    {"resource_show", s_resource_show, false},
    {"datastore_search", s_datastore_search, false},
    {"user_create", s_user_create, true},
    {"user_login", s_user_login, true},
    {"user_logout", s_user_logout, true},
    {"user_show", s_user_show, false},
    {"access_check", s_access_check, false},
    {"access_request_create", s_application_create, true},
    {"access_request_list", s_application_list, false},
    {"feedback_create", s_feedback_create, true},
    {"feedback_list", s_feedback_list, false},
    {"feedback_show", s_feedback_show, false},
    {"feedback_reply", s_feedback_reply, true},
    {"download_list", s_download_list, false},
};

enum MHD_Result w_api(w_req_t *r)
{
    const char *a = s_action(r);
    if (strncmp(r->path, "/api/3/action/", 14) != 0 && strncmp(r->path, "/api/action/", 12) != 0)
        return w_ckan_error(r, 404, "Not Found Error", NULL, "Not found");
    if (strncmp(r->path, "/api/action/", 12) == 0)
        a = r->path + 12;
    for (size_t i = 0; i < sizeof s_actions / sizeof s_actions[0]; i++) {
        if (strcmp(a, s_actions[i].name) != 0)
            continue;
        if (s_actions[i].write && strcmp(r->method, "POST") != 0)
            return w_ckan_error(r, 400, "Bad Request", NULL,
                                "Bad request - this action changes data: use POST");
        if (!s_actions[i].fn)
            return s_facet_list(r, strcmp(a, "organization_list") == 0 ? "department" : "domain");
        return s_actions[i].fn(r);
    }
    char msg[200];
    snprintf(msg, sizeof msg, "Bad request - Action name not known: %.100s", a);
    return w_ckan_error(r, 400, "Bad Request", NULL, msg);
}
