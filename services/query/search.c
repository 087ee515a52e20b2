/*  Find and locate (R5.8a): catalogue search over the published entries with CKAN's
    package_search semantics (q, fq, sort, rows, start, facet.field; count, results,
    search_facets), Chinese included (character bigrams), and an entry's detail with
    whether the caller may read it and how to obtain it. Withdrawn and not_open entries are
    never found. The search runs over an index in memory (search_index.c, issue #10). */
#include "query.h"
#include "search_index.h"

#include "common/codelist.h"
#include "common/log.h"

#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  The fields fq filters on and facets count: CKAN name, and the code list whose labels
    stand for codes. Their order is the index's (and query.search_changes') facet columns. */
static const struct {
    const char *name;
    const odp_codelist_t *codes;
} s_facets[SI_NFACETS] = {
    {"domain", &odp_cl_domain},
    {"department", NULL},
    {"content_kind", &odp_cl_content_kind},
    {"delivery_form", &odp_cl_delivery_form},
    {"format", NULL},
    {"open_type", &odp_cl_open_type},
    {"update_cycle", &odp_cl_update_cycle},
    {"kind", NULL},
};

static int s_facet(const char *name, size_t len)
{
    for (size_t i = 0; i < SI_NFACETS; i++)
        if (strlen(s_facets[i].name) == len && memcmp(s_facets[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/*  Sorts: CKAN name, key. Ties are broken by the entry's code, so paging is stable. */
static const struct {
    const char *name;
    si_key_t key;
} s_sorts[] = {
    {"score desc", SI_SCORE_DESC},
    {"title asc", SI_TITLE_ASC},
    {"title desc", SI_TITLE_DESC},
    {"name asc", SI_RESOURCE_ASC},
    {"name desc", SI_RESOURCE_DESC},
    {"metadata_modified desc", SI_MODIFIED_DESC},
    {"metadata_modified asc", SI_MODIFIED_ASC},
    {"metadata_created desc", SI_CREATED_DESC},
    {"metadata_created asc", SI_CREATED_ASC},
};

/*  fq: space-separated field:value or field:"value with spaces", every one must hold
    (Solr's default AND, as CKAN sends it). */
static int s_fq(odp_req_t *req, const odp_val_t *fq, si_query_t *q)
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
        if (q->nfq == SI_MAXFQ)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "fq", "too many fq terms");
        /*  A code list's label (有条件开放) stands for its code, as everywhere else. */
        const char *code =
            s_facets[f].codes ? odp_code_find(s_facets[f].codes, v, (size_t)(ve - v)) : NULL;
        q->fq_col[q->nfq] = f;
        q->fq_val[q->nfq] = code ? code : v;
        q->fq_len[q->nfq++] = code ? strlen(code) : (size_t)(ve - v);
    }
    return 0;
}

/*  The index: the loop thread's own (catalogue.search is not a pooled route, s_tick is the
    loop's timer), loaded by the timer or the first search, brought up to date at every
    search. */
static si_index_t *s_index;

/*  Rows of query.search_changes per call: the first load is a series of them. */
#define S_CHUNK 5000

/*  The query's terms, lowered and split by the database (its lower() and its idea of a
    space are the ones the index's texts were made with), and the changes to the catalogue
    since the last row the index holds. */
#define S_REFRESH                                                                                  \
    "SELECT CASE WHEN btrim(coalesce($1::text, '')) = '' THEN NULL ELSE "                          \
    "array_to_json(regexp_split_to_array(lower(btrim($1::text)), '[[:space:]]+'))::text END, "     \
    "c.* FROM (SELECT 1) o LEFT JOIN search_changes($2::bigint, $3::text, $4::integer) c ON true"

/*  A new index comparing strings as the database does, into s_index. 0, -1 when the
    database did not answer, -2 when this process cannot compare as it does (logged). */
static int s_open(odp_db_t *db)
{
    PGresult *r = odp_db_exec(db,
                              "SELECT datcollate, to_jsonb(d) ->> 'datlocprovider' FROM "
                              "pg_database d WHERE datname = current_database()",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    s_index = si_new();
    const char *coll = PQgetvalue(r, 0, 0);
    if (!s_index ||
        si_collation(s_index, coll, PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1)) < 0) {
        odp_error("event=search.collation collate=%s: this process cannot compare text as the "
                  "database does",
                  coll);
        si_destroy(&s_index);
    }
    PQclear(r);
    return s_index ? 0 : -2;
}

/*  One call of S_REFRESH (through the request's prepared statements when there is one):
    check it with s_ok. */
static PGresult *s_changes(odp_req_t *req, odp_db_t *db, const odp_val_t *q)
{
    char seq[24], lim[24];
    snprintf(seq, sizeof seq, "%" PRId64, si_last_seq(s_index));
    snprintf(lim, sizeof lim, "%d", S_CHUNK);
    const char *vals[4] = {q && q->present ? q->str : NULL, seq, si_last_resource(s_index), lim};
    int lens[4] = {q ? (int)q->len : 0, -1, -1, -1};
    return req ? q_exec(req, S_REFRESH, 4, vals, lens) : odp_db_exec(db, S_REFRESH, 4, vals, lens);
}

static bool s_ok(const PGresult *r)
{
    return r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
}

/*  The changed entries of r into the index: how many, or -1 when out of memory (the index
    is then dropped: half applied, it is loaded again whole). */
static int s_apply(PGresult *r)
{
    int n = PQgetisnull(r, 0, 1) ? 0 : PQntuples(r);
    for (int i = 0; i < n; i++) {
        si_row_t row = {
            .resource = PQgetvalue(r, i, 1),
            .seq = strtoll(PQgetvalue(r, i, 2), NULL, 10),
            .visible = PQgetvalue(r, i, 3)[0] == 't',
            .title = PQgetvalue(r, i, 4),
            .title_l = PQgetvalue(r, i, 5),
            .keywords_l = PQgetvalue(r, i, 6),
            .body = PQgetvalue(r, i, 7),
            .modified_us = strtoll(PQgetvalue(r, i, 8), NULL, 10),
            .created_us = strtoll(PQgetvalue(r, i, 9), NULL, 10),
        };
        for (int f = 0; f < SI_NFACETS; f++)
            row.facet[f] = PQgetvalue(r, i, 10 + f);
        if (si_put(s_index, &row) < 0) {
            si_destroy(&s_index);
            return -1;
        }
    }
    return n;
}

/*  The index brought up to date, and the terms of q (a JSON array, or NULL when q has none)
    into *terms. 0, or -1 with req->err set. */
static int s_refresh(odp_req_t *req, const odp_val_t *q, json_t **terms)
{
    *terms = NULL;
    if (!s_index && s_open(req->db) < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "the search cannot start");
    for (;;) {
        PGresult *r = s_changes(req, req->db, q);
        if (!s_ok(r)) {
            json_decref(*terms);
            *terms = NULL;
            return odp_req_db_fail(req, r, "the search");
        }
        if (!*terms && !PQgetisnull(r, 0, 0))
            *terms = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        int n = s_apply(r);
        PQclear(r);
        if (n < 0) {
            json_decref(*terms);
            *terms = NULL;
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        }
        if (n < S_CHUNK)
            return 0;
    }
}

/*  Between requests, the loop keeps the index near the catalogue, one chunk a tick: the
    first search after a start, or after many entries changed at once, does not wait for
    the whole load (100,000 entries take about a second). */
#define S_TICK_MS 200

static void s_tick(odp_service_t *svc, void *arg)
{
    (void)arg;
    static bool loaded = false, unusable = false;
    static int64_t since = 0;
    odp_db_t *db = odp_service_db(svc);
    if (unusable || !odp_db_up(db))
        return;
    /*  A collation this process cannot reproduce is said once; searches answer INTERNAL. */
    int rc = s_index ? 0 : s_open(db);
    unusable = rc == -2;
    if (rc < 0)
        return;
    if (!since)
        since = zclock_mono();
    PGresult *r = s_changes(NULL, db, NULL);
    int n = s_ok(r) ? s_apply(r) : 0;
    if (r && !s_ok(r))
        odp_warn("event=search.refresh error=\"%s\"", PQresultErrorMessage(r));
    PQclear(r);
    if (!loaded && s_index && n < S_CHUNK) {
        loaded = true;
        si_trim(s_index);
        odp_info("event=search.loaded entries=%zu bytes=%zu ms=%" PRId64, si_size(s_index),
                 si_bytes(s_index), zclock_mono() - since);
    }
}

/*  The page's entries as shown, in the order given (a JSON array of their codes). */
#define S_PAGE                                                                                     \
    "SELECT p.i, e.resource, e.kind, e.department, e.department_name, e.title, e.summary, "        \
    "array_to_json(e.keywords)::text, e.domain, e.content_kind, e.delivery_form, e.open_type, "    \
    "e.update_cycle, coalesce(r.format, ''), r.rows, r.version, " Q_TS(                            \
        "e.modified_at") " FROM json_array_elements_text($1::json) WITH ORDINALITY AS p "          \
                         "(resource, i) JOIN publisher.entries e ON e.resource = p.resource LEFT " \
                         "JOIN publisher.releases r ON r.id = e.current_release ORDER BY p.i"

static int s_search(odp_req_t *req)
{
    const odp_catalogue_search_t *m = req->msg;
    q_who_t who;
    if (q_who(req, &m->token, &who) < 0)
        return -1;
    si_query_t q = {0};
    q.rows = m->rows.present ? m->rows.i : 10;
    q.start = m->start.present ? m->start.i : 0;
    bool words = false;
    for (size_t i = 0; m->q.present && i < m->q.len && !words; i++)
        words = !strchr(" \t\r\n\f\v", m->q.str[i]);
    q.filter = words;
    if (m->fq.present && s_fq(req, &m->fq, &q) < 0)
        return -1;
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
            if (k == sizeof s_sorts / sizeof s_sorts[0] || q.nkeys == SI_MAXKEYS)
                return odp_req_fail(req, ODP_E_INVALID_VALUE, "sort",
                                    "sort is up to a few of: score desc, title asc|desc, name "
                                    "asc|desc, metadata_modified asc|desc, metadata_created "
                                    "asc|desc");
            q.keys[q.nkeys++] = s_sorts[k].key;
            p = ce;
        }
    }
    if (!q.nkeys) {
        if (words)
            q.keys[q.nkeys++] = SI_SCORE_DESC;
        q.keys[q.nkeys++] = SI_MODIFIED_DESC;
    }
    q.keys[q.nkeys++] = SI_RESOURCE_ASC;
    const msgpack_object_array *fa = m->facet_field.present && m->facet_field.obj->via.array.size
                                         ? &m->facet_field.obj->via.array
                                         : NULL;
    for (uint32_t i = 0; fa && i < fa->size; i++)
        if (s_facet(fa->ptr[i].via.str.ptr, fa->ptr[i].via.str.size) < 0)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "facet_field",
                                "facets are domain, department, content_kind, delivery_form, "
                                "format, open_type, update_cycle and kind");
    json_t *terms;
    if (s_refresh(req, &m->q, &terms) < 0)
        return -1;
    q.nterms = json_array_size(terms);
    const char **tv = malloc((q.nterms ? q.nterms : 1) * sizeof *tv);
    for (size_t i = 0; tv && i < q.nterms; i++)
        tv[i] = json_string_value(json_array_get(terms, i));
    q.terms = tv;
    si_result_t res = {0};
    int rc = tv ? si_search(s_index, &q, &res) : -1;
    free(tv);
    PGresult *r = NULL;
    if (rc == 0 && res.npage) {
        json_t *page = json_array();
        for (size_t i = 0; i < res.npage; i++)
            json_array_append_new(page, json_string(si_resource(s_index, res.page[i].entry)));
        char *pj = json_dumps(page, JSON_COMPACT);
        json_decref(page);
        const char *vals[1] = {pj};
        r = pj ? q_exec(req, S_PAGE, 1, vals, NULL) : NULL;
        free(pj);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            json_decref(terms);
            si_result_free(&res);
            return odp_req_db_fail(req, r, "the search");
        }
    }
    json_decref(terms);
    if (rc < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    msgpack_packer *pk = req->pk;
    msgpack_pack_map(pk, 3);
    q_pack_str(pk, "count");
    msgpack_pack_int64(pk, (int64_t)res.count);
    q_pack_str(pk, "results");
    int n = r ? PQntuples(r) : 0;
    msgpack_pack_array(pk, (size_t)n);
    static const char *const keys[] = {
        NULL,           "resource", "kind",   "department",   "department_name", "title",
        "summary",      "keywords", "domain", "content_kind", "delivery_form",   "open_type",
        "update_cycle", "format",   "rows",   "version",      "modified_at",     "score"};
    for (int i = 0; i < n; i++) {
        msgpack_pack_map(pk, 17);
        for (int c = 1; c <= 16; c++) {
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
            } else if (c == 14 || c == 15)
                msgpack_pack_int64(pk, strtoll(v, NULL, 10));
            else
                q_pack_str(pk, v);
        }
        q_pack_str(pk, keys[17]);
        msgpack_pack_int64(pk, res.page[strtoll(PQgetvalue(r, i, 0), NULL, 10) - 1].score);
    }
    PQclear(r);
    /*  Facets over every hit, not only this page. A field asked for twice is counted twice
        over, as the SQL search before the index did. */
    q_pack_str(pk, "search_facets");
    msgpack_pack_map(pk, fa ? fa->size : 0);
    int64_t limit = m->facet_limit.present ? m->facet_limit.i : 50;
    for (uint32_t i = 0; fa && i < fa->size; i++) {
        int f = s_facet(fa->ptr[i].via.str.ptr, fa->ptr[i].via.str.size);
        int64_t times = 0;
        for (uint32_t k = 0; k < fa->size; k++)
            times += s_facet(fa->ptr[k].via.str.ptr, fa->ptr[k].via.str.size) == f;
        si_facet_item_t *items;
        int ni = si_facet(s_index, &res, f, limit, &items);
        q_pack_str(pk, s_facets[f].name);
        msgpack_pack_map(pk, 2);
        q_pack_str(pk, "title");
        q_pack_str(pk, s_facets[f].name);
        q_pack_str(pk, "items");
        msgpack_pack_array(pk, ni > 0 ? (size_t)ni : 0);
        for (int k = 0; k < ni; k++) {
            const char *v = items[k].value;
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
            msgpack_pack_int64(pk, items[k].count * times);
        }
        free(items);
    }
    si_result_free(&res);
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
    /*  Not pooled: the index is the loop thread's, as is its timer. */
    odp_service_route(svc, &odp_def_catalogue_search, ODP_ALLOW_ANY, s_search);
    if (odp_service_timer(svc, S_TICK_MS, s_tick, NULL) < 0)
        odp_error("event=search.timer: the index is kept in step by searches alone");
    odp_service_route(svc, &odp_def_entry_show, ODP_ALLOW_ANY, s_show);
}
