/*  Find and locate (R5.8a): catalogue search over the published entries with CKAN's
    package_search semantics (q, fq, sort, rows, start, facet.field; count, results,
    search_facets), Chinese included (bigrams: migration 005), and an entry's detail with
    whether the caller may read it and how to obtain it. Withdrawn and not_open entries are
    never found. */
#include "query.h"

#include "common/codelist.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  The fields fq filters on and facets count: CKAN name, the column in the hits. */
static const struct {
    const char *name;
    const char *col;
    const odp_codelist_t *codes;
} s_facets[] = {
    {"domain", "domain", &odp_cl_domain},
    {"department", "department", NULL},
    {"content_kind", "content_kind", &odp_cl_content_kind},
    {"delivery_form", "delivery_form", &odp_cl_delivery_form},
    {"format", "format", NULL},
    {"open_type", "open_type", &odp_cl_open_type},
    {"update_cycle", "update_cycle", &odp_cl_update_cycle},
    {"kind", "kind", NULL},
};
#define S_NFACETS (sizeof s_facets / sizeof s_facets[0])

static int s_facet(const char *name, size_t len)
{
    for (size_t i = 0; i < S_NFACETS; i++)
        if (strlen(s_facets[i].name) == len && memcmp(s_facets[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/*  Sorts: CKAN name, SQL. Ties are broken by the entry's code, so paging is stable. */
static const struct {
    const char *name;
    const char *sql;
} s_sorts[] = {
    {"score desc", "score DESC"},
    {"title asc", "title ASC"},
    {"title desc", "title DESC"},
    {"name asc", "resource ASC"},
    {"name desc", "resource DESC"},
    {"metadata_modified desc", "modified_at DESC"},
    {"metadata_modified asc", "modified_at ASC"},
    {"metadata_created desc", "first_released_at DESC"},
    {"metadata_created asc", "first_released_at ASC"},
};

#define S_MAXP 40

typedef struct {
    const char *vals[S_MAXP];
    int lens[S_MAXP];
    int n;
    char where[4096];
} s_query_t;

static int s_param(s_query_t *q, const char *v, int len)
{
    q->vals[q->n] = v;
    q->lens[q->n] = len;
    return ++q->n;
}

/*  fq: space-separated field:value or field:"value with spaces", every one must hold
    (Solr's default AND, as CKAN sends it). */
static int s_fq(odp_req_t *req, const odp_val_t *fq, s_query_t *q)
{
    const char *p = fq->str, *end = fq->str + fq->len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break;
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!colon)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "fq",
                                "fq is field:value terms separated by spaces");
        int f = s_facet(p, (size_t)(colon - p));
        if (f < 0)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "fq",
                                "fq filters on domain, department, content_kind, delivery_form, "
                                "format, open_type, update_cycle or kind");
        const char *v = colon + 1, *ve;
        if (v < end && *v == '"') {
            v++;
            ve = memchr(v, '"', (size_t)(end - v));
            if (!ve)
                return odp_req_fail(req, ODP_E_INVALID_VALUE, "fq", "an unclosed quote in fq");
            p = ve + 1;
        } else {
            ve = v;
            while (ve < end && *ve != ' ' && *ve != '\t')
                ve++;
            p = ve;
        }
        if (q->n >= S_MAXP - 4)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "fq", "too many fq terms");
        /*  A code list's label (有条件开放) stands for its code, as everywhere else. */
        const char *code =
            s_facets[f].codes ? odp_code_find(s_facets[f].codes, v, (size_t)(ve - v)) : NULL;
        int n = code ? s_param(q, code, -1) : s_param(q, v, (int)(ve - v));
        size_t o = strlen(q->where);
        snprintf(q->where + o, sizeof q->where - o, " AND %s = $%d::text", s_facets[f].col, n);
    }
    return 0;
}

static void s_sync(odp_req_t *req)
{
    /*  A failure leaves the last synced state: the search still answers. */
    PGresult *r = q_exec(req, "SELECT sync_grams()", 0, NULL, NULL);
    PQclear(r);
}

/*  The hits from entry_grams alone (migration 007): the entry visible, the terms' bigrams
    (an InitPlan, so that the GIN index answers them) and the terms themselves, and the
    score: twice per term in the title, once per term in the keywords. */
#define S_MATCH                                                                                    \
    "WITH t AS (SELECT CASE WHEN btrim(coalesce($1::text, '')) = '' THEN NULL ELSE "               \
    "regexp_split_to_array(lower(btrim($1::text)), '[[:space:]]+') END AS terms, "                 \
    "$2::bigint AS page_rows, $3::bigint AS page_start), "                                         \
    "k AS (SELECT (SELECT array_agg(x) FROM unnest(t.terms) u, unnest(grams(u)) x) AS need, "      \
    "(SELECT array_agg('%%' || replace(replace(replace(u, '\\', '\\\\'), '%%', '\\%%'), '_', "     \
    "'\\_') || '%%') FROM unnest(t.terms) u) AS pats FROM t), "                                    \
    "m AS (SELECT g.resource, g.title, g.modified_at, g.first_released_at, g.kind, "               \
    "g.department, g.domain, g.content_kind, g.delivery_form, g.format, g.open_type, "             \
    "g.update_cycle, (SELECT count(*) FILTER (WHERE g.title_l LIKE p) * 2 + count(*) FILTER "      \
    "(WHERE g.keywords_l LIKE p) FROM unnest((SELECT pats FROM k)) p) AS score "                   \
    "FROM entry_grams g WHERE g.visible"

#define S_TERMS                                                                                    \
    " AND g.grams @> (SELECT coalesce(need, '{}') FROM k) AND g.body LIKE ALL ((SELECT pats "      \
    "FROM k)::text[])"

static int s_search(odp_req_t *req)
{
    const odp_catalogue_search_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    s_query_t q = {0};
    s_param(&q, m->q.present ? m->q.str : NULL, (int)m->q.len);
    char rows[24], start[24];
    snprintf(rows, sizeof rows, "%" PRId64, m->rows.present ? m->rows.i : 10);
    snprintf(start, sizeof start, "%" PRId64, m->start.present ? m->start.i : 0);
    s_param(&q, rows, -1);
    s_param(&q, start, -1);
    bool words = false;
    for (size_t i = 0; m->q.present && i < m->q.len && !words; i++)
        words = !strchr(" \t\r\n\f\v", m->q.str[i]);
    if (words)
        snprintf(q.where, sizeof q.where, "%s", S_TERMS);
    if (m->fq.present && s_fq(req, &m->fq, &q) < 0)
        return -1;
    char order[256] = "";
    if (m->sort.present) {
        const char *p = m->sort.str, *end = m->sort.str + m->sort.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ','))
                p++;
            if (p >= end)
                break;
            const char *ce = memchr(p, ',', (size_t)(end - p));
            if (!ce)
                ce = end;
            const char *te = ce;
            while (te > p && te[-1] == ' ')
                te--;
            if (te == p)
                break;
            size_t k = 0;
            for (; k < sizeof s_sorts / sizeof s_sorts[0]; k++)
                if (strlen(s_sorts[k].name) == (size_t)(te - p) &&
                    memcmp(s_sorts[k].name, p, (size_t)(te - p)) == 0)
                    break;
            if (k == sizeof s_sorts / sizeof s_sorts[0] || strlen(order) > 150)
                return odp_req_fail(req, ODP_E_INVALID_VALUE, "sort",
                                    "sort is up to a few of: score desc, title asc|desc, name "
                                    "asc|desc, metadata_modified asc|desc, metadata_created "
                                    "asc|desc");
            size_t o = strlen(order);
            snprintf(order + o, sizeof order - o, "%s, ", s_sorts[k].sql);
            p = ce;
        }
    }
    if (!order[0])
        snprintf(order, sizeof order, "%s",
                 words ? "score DESC, modified_at DESC, " : "modified_at DESC, ");
    /*  The same order on the page's columns (p.), for the rows joined to the entries. */
    char order_p[320] = "";
    for (const char *o = order; *o;) {
        const char *c = strstr(o, ", ");
        size_t at = strlen(order_p);
        snprintf(order_p + at, sizeof order_p - at, "p.%.*s, ", (int)(c - o), o);
        o = c + 2;
    }
    s_sync(req);
    char *sql = NULL;
    /*  One statement: the hits counted (a window over all of them) and ranked, then the
        page's entries read. */
    if (asprintf(&sql,
                 S_MATCH "%s), p AS (SELECT m.resource, m.score, m.title, m.modified_at, "
                         "m.first_released_at, count(*) OVER () AS total FROM m ORDER BY "
                         "%sresource LIMIT $2::bigint OFFSET $3::bigint) "
                         "SELECT p.total, e.resource, e.kind, e.department, e.department_name, "
                         "e.title, e.summary, array_to_json(e.keywords)::text, e.domain, "
                         "e.content_kind, e.delivery_form, e.open_type, e.update_cycle, "
                         "coalesce(r.format, ''), r.rows, r.version, " Q_TS(
                             "e.modified_at") ", p.score FROM p JOIN publisher.entries e ON "
                                              "e.resource = p.resource LEFT JOIN "
                                              "publisher.releases r ON r.id = e.current_release "
                                              "ORDER BY %sp.resource",
                 q.where, order, order_p) < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    PGresult *r = q_exec(req, sql, q.n, q.vals, q.lens);
    free(sql);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the search");
    int n = PQntuples(r);
    int64_t count = 0;
    if (n > 0)
        count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else {
        /*  Past the last page: the count still answers. */
        PQclear(r);
        if (asprintf(&sql, S_MATCH "%s) SELECT count(*) FROM m", q.where) < 0)
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        r = q_exec(req, sql, q.n, q.vals, q.lens);
        free(sql);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the search");
        count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        r = NULL;
    }
    /*  Facets over every hit, not only this page. */
    PGresult *fr = NULL;
    if (m->facet_field.present && m->facet_field.obj->via.array.size) {
        char list[256] = "";
        const msgpack_object_array *a = &m->facet_field.obj->via.array;
        for (uint32_t i = 0; i < a->size; i++) {
            int f = s_facet(a->ptr[i].via.str.ptr, a->ptr[i].via.str.size);
            if (f < 0) {
                PQclear(r);
                return odp_req_fail(req, ODP_E_INVALID_VALUE, "facet_field",
                                    "facets are domain, department, content_kind, delivery_form, "
                                    "format, open_type, update_cycle and kind");
            }
            size_t o = strlen(list);
            snprintf(list + o, sizeof list - o, "%s('%s', %s)", i ? ", " : "", s_facets[f].name,
                     s_facets[f].col);
        }
        char lim[24];
        snprintf(lim, sizeof lim, "%" PRId64, m->facet_limit.present ? m->facet_limit.i : 50);
        s_param(&q, lim, -1);
        if (asprintf(&sql,
                     S_MATCH "%s) SELECT f, v, c FROM (SELECT f, v, count(*) AS c, row_number() "
                             "OVER (PARTITION BY f ORDER BY count(*) DESC, v) AS i FROM m, "
                             "LATERAL (VALUES %s) x (f, v) GROUP BY f, v) s WHERE i <= $%d::int "
                             "ORDER BY f, c DESC, v",
                     q.where, list, q.n) < 0) {
            PQclear(r);
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        }
        fr = q_exec(req, sql, q.n, q.vals, q.lens);
        free(sql);
        if (!fr || PQresultStatus(fr) != PGRES_TUPLES_OK) {
            PQclear(r);
            return odp_req_db_fail(req, fr, "the facets");
        }
    }
    msgpack_packer *pk = req->pk;
    msgpack_pack_map(pk, 3);
    q_pack_str(pk, "count");
    msgpack_pack_int64(pk, count);
    q_pack_str(pk, "results");
    msgpack_pack_array(pk, (size_t)n);
    static const char *const keys[] = {
        NULL,           "resource", "kind",   "department",   "department_name", "title",
        "summary",      "keywords", "domain", "content_kind", "delivery_form",   "open_type",
        "update_cycle", "format",   "rows",   "version",      "modified_at",     "score"};
    for (int i = 0; i < n; i++) {
        msgpack_pack_map(pk, 17);
        for (int c = 1; c <= 17; c++) {
            q_pack_str(pk, keys[c]);
            const char *v = PQgetvalue(r, i, c);
            if (PQgetisnull(r, i, c))
                msgpack_pack_nil(pk);
            else if (c == 7) {
                /*  keywords: a JSON array of strings from array_to_json. */
                json_t *j = json_loads(v, 0, NULL);
                msgpack_pack_array(pk, json_array_size(j));
                for (size_t k = 0; k < json_array_size(j); k++)
                    q_pack_str(pk, json_string_value(json_array_get(j, k)));
                json_decref(j);
            } else if (c == 14 || c == 15 || c == 17)
                msgpack_pack_int64(pk, strtoll(v, NULL, 10));
            else
                q_pack_str(pk, v);
        }
    }
    PQclear(r);
    q_pack_str(pk, "search_facets");
    int nf = fr ? PQntuples(fr) : 0;
    const msgpack_object_array *fa = m->facet_field.present ? &m->facet_field.obj->via.array : NULL;
    msgpack_pack_map(pk, fa ? fa->size : 0);
    for (uint32_t i = 0; fa && i < fa->size; i++) {
        int f = s_facet(fa->ptr[i].via.str.ptr, fa->ptr[i].via.str.size);
        q_pack_str(pk, s_facets[f].name);
        msgpack_pack_map(pk, 2);
        q_pack_str(pk, "title");
        q_pack_str(pk, s_facets[f].name);
        q_pack_str(pk, "items");
        size_t items = 0;
        for (int k = 0; k < nf; k++)
            items += strcmp(PQgetvalue(fr, k, 0), s_facets[f].name) == 0;
        msgpack_pack_array(pk, items);
        for (int k = 0; k < nf; k++) {
            if (strcmp(PQgetvalue(fr, k, 0), s_facets[f].name) != 0)
                continue;
            const char *v = PQgetvalue(fr, k, 1);
            const char *label = NULL;
            for (size_t c = 0; s_facets[f].codes && c < s_facets[f].codes->n; c++)
                if (strcmp(s_facets[f].codes->codes[c].code, v) == 0)
                    label = s_facets[f].codes->codes[c].label;
            msgpack_pack_map(pk, 3);
            q_pack_str(pk, "name");
            q_pack_str(pk, v);
            q_pack_str(pk, "display_name");
            q_pack_str(pk, label ? label : v);
            q_pack_str(pk, "count");
            msgpack_pack_int64(pk, strtoll(PQgetvalue(fr, k, 2), NULL, 10));
        }
    }
    PQclear(fr);
    return 0;
}

/*  package_show: the entry, its current dictionary, its readable versions, and what the
    caller may do with it. Counts a view. */
static int s_show(odp_req_t *req)
{
    const odp_entry_show_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    char uid[24];
    snprintf(uid, sizeof uid, "%" PRId64, who.user);
    const char *vals[2] = {m->resource.str, who.kind == Q_USER ? uid : NULL};
    int lens[2] = {(int)m->resource.len, -1};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT e.resource, e.kind, e.title, e.summary, array_to_json(e.keywords)::text, "
        "e.department, e.department_name, e.domain, e.content_kind, e.delivery_form, "
        "e.open_type, e.update_cycle, e.contact, e.location, e.access_conditions, e.endpoint, "
        "e.current_release, " Q_TS("e.first_released_at") ", " Q_TS(
            "e.modified_at") ", may_read($2::bigint, e.resource), "
                             "(SELECT " Q_TS(
                                 "max(a.expires_at)") " FROM applications a WHERE "
                                                      "a.user_id = $2::bigint AND a.resource = "
                                                      "e.resource AND a.state = "
                                                      "'granted' AND a.expires_at > now()), EXISTS "
                                                      "(SELECT 1 FROM "
                                                      "applications a WHERE a.user_id = $2::bigint "
                                                      "AND a.resource = "
                                                      "e.resource AND a.state = 'granted') "
                                                      "FROM publisher.entries e WHERE e.resource = "
                                                      "$1 AND e.state = "
                                                      "'published' AND e.open_type <> 'not_open'",
        2, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the entry");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource",
                            "no published entry open to the public has this code");
    }
    const char *cur = PQgetvalue(r, 0, 16);
    const char *vv[2] = {m->resource.str, PQgetisnull(r, 0, 16) ? NULL : cur};
    int vl[2] = {(int)m->resource.len, -1};
    PGresult *fr = odp_db_exec(req->db,
                               "SELECT position, name, type, coalesce(description, ''), indexed, "
                               "facet FROM publisher.release_fields WHERE release = $2::bigint "
                               "AND $1::text IS NOT NULL ORDER BY position",
                               2, vv, vl);
    PGresult *vr =
        odp_db_exec(req->db,
                    "SELECT id, version, table_name, state, rows, bytes, sha256, format, " Q_TS(
                        "released_at") " FROM publisher.releases WHERE resource = $1 AND state IN "
                                       "('current', 'superseded') ORDER BY id DESC",
                    1, vv, vl);
    if (!fr || PQresultStatus(fr) != PGRES_TUPLES_OK || !vr ||
        PQresultStatus(vr) != PGRES_TUPLES_OK) {
        PQclear(r);
        bool fr_ok = fr && PQresultStatus(fr) == PGRES_TUPLES_OK;
        PQclear(fr_ok ? fr : vr);
        return odp_req_db_fail(req, fr_ok ? vr : fr, "the entry's versions");
    }
    msgpack_packer *pk = req->pk;
    static const char *const keys[] = {"resource",
                                       "kind",
                                       "title",
                                       "summary",
                                       "keywords",
                                       "department",
                                       "department_name",
                                       "domain",
                                       "content_kind",
                                       "delivery_form",
                                       "open_type",
                                       "update_cycle",
                                       "contact",
                                       "location",
                                       "access_conditions",
                                       "endpoint",
                                       "current_release",
                                       "first_released_at",
                                       "modified_at"};
    msgpack_pack_map(pk, 19 + 6);
    for (int c = 0; c < 19; c++) {
        q_pack_str(pk, keys[c]);
        const char *v = PQgetvalue(r, 0, c);
        if (PQgetisnull(r, 0, c))
            msgpack_pack_nil(pk);
        else if (c == 4) {
            json_t *j = json_loads(v, 0, NULL);
            msgpack_pack_array(pk, json_array_size(j));
            for (size_t k = 0; k < json_array_size(j); k++)
                q_pack_str(pk, json_string_value(json_array_get(j, k)));
            json_decref(j);
        } else if (c == 16)
            msgpack_pack_int64(pk, strtoll(v, NULL, 10));
        else
            q_pack_str(pk, v);
    }
    q_pack_str(pk, "fields");
    msgpack_pack_array(pk, (size_t)PQntuples(fr));
    for (int i = 0; i < PQntuples(fr); i++) {
        msgpack_pack_map(pk, 6);
        q_pack_str(pk, "position");
        msgpack_pack_int64(pk, strtoll(PQgetvalue(fr, i, 0), NULL, 10));
        q_pack_str(pk, "name");
        q_pack_str(pk, PQgetvalue(fr, i, 1));
        q_pack_str(pk, "type");
        q_pack_str(pk, PQgetvalue(fr, i, 2));
        q_pack_str(pk, "description");
        q_pack_str(pk, PQgetvalue(fr, i, 3));
        q_pack_str(pk, "indexed");
        PQgetvalue(fr, i, 4)[0] == 't' ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        q_pack_str(pk, "facet");
        PQgetvalue(fr, i, 5)[0] == 't' ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
    q_pack_str(pk, "versions");
    msgpack_pack_array(pk, (size_t)PQntuples(vr));
    static const char *const vkeys[] = {"release", "version", "table",  "state",      "rows",
                                        "bytes",   "sha256",  "format", "released_at"};
    for (int i = 0; i < PQntuples(vr); i++) {
        msgpack_pack_map(pk, 9);
        for (int c = 0; c < 9; c++) {
            q_pack_str(pk, vkeys[c]);
            if (PQgetisnull(vr, i, c))
                msgpack_pack_nil(pk);
            else if (c == 0 || c == 1 || c == 4 || c == 5)
                msgpack_pack_int64(pk, strtoll(PQgetvalue(vr, i, c), NULL, 10));
            else
                q_pack_str(pk, PQgetvalue(vr, i, c));
        }
    }
    bool may = PQgetvalue(r, 0, 19)[0] == 't';
    bool open = strcmp(PQgetvalue(r, 0, 10), "unconditional") == 0;
    bool had = PQgetvalue(r, 0, 21)[0] == 't';
    q_pack_str(pk, "may_read");
    may ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    q_pack_str(pk, "why");
    q_pack_str(pk, may && open          ? "open to anyone"
                   : may                ? "granted"
                   : who.kind != Q_USER ? "conditional: sign in and apply (application.submit)"
                   : had                ? "conditional: the grant has expired; apply again"
                                        : "conditional: apply first (application.submit)");
    q_pack_str(pk, "grant_expires_at");
    q_pack_str(pk, PQgetisnull(r, 0, 20) ? NULL : PQgetvalue(r, 0, 20));
    q_pack_str(pk, "how");
    q_pack_str(pk, may ? "datastore.search for rows, download.begin for the whole version"
                       : "application.submit with purpose, scope and period; the department "
                         "decides; then datastore.search or download.begin");
    char dept[10], res[33];
    snprintf(dept, sizeof dept, "%s", PQgetvalue(r, 0, 5));
    PQclear(r);
    PQclear(fr);
    PQclear(vr);
    q_guard_count(((q_ctx_t *)req->ctx)->guard, &who, odp_v_cstr(&m->resource, res, sizeof res),
                  dept, Q_VIEW);
    return 0;
}

void search_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_catalogue_search, ODP_ALLOW_ANY, s_search);
    odp_service_route(svc, &odp_def_entry_show, ODP_ALLOW_ANY, s_show);
}
