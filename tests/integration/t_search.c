/*  Catalogue search from the query service's index in memory (issue #10): it answers what
    the SQL search over the catalogue did (the hits, their order and scores, the count and
    the facet counts), checked against that SQL run here on publisher.entries for many
    queries, sorts, pages and filters; and it follows the catalogue: an entry released,
    changed, withdrawn and restored through the real registrar, reviewer and publisher
    appears, changes, disappears and comes back, also after the service restarts and
    loads the index again. */
#include "pushing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DEPT1 "448800001"
#define S_DEPT2 "448800002"

static char s_res[4][33];
static bool s_ready = false;

/*  Push a small CSV of rows ids to resource as dept, approve it and release it: true when
    released. */
static bool s_publish(const char *dept, const char *resource, int rows)
{
    char csv[256];
    size_t len = (size_t)snprintf(csv, sizeof csv, "id\n");
    for (int i = 1; i <= rows; i++)
        len += (size_t)snprintf(csv + len, sizeof csv - len, "%d\n", i);
    return tp_publish(dept, &(tp_opts_t){.resource = resource}, csv, len) > 0;
}

static void s_setup(void)
{
    const char *env[] = {"ODP_QUERY_RATE_PER_S=100000", "ODP_QUERY_RATE_BURST=100000", NULL};
    h_service_stop("query");
    CHECK(h_service_start("query", env) > 0, "query restarted");
    CHECK(h_department(S_DEPT1, "搜索测试 部门一") == 0, "department 1");
    CHECK(h_department(S_DEPT2, "搜索测试 部门二") == 0, "department 2");
    static char dict[512];
    snprintf(dict, sizeof dict, "%s/search.dict.json", h_var());
    FILE *f = fopen(dict, "w");
    CHECK(f && fputs("{\"fields\": [{\"name\": \"id\", \"type\": \"integer\"}]}", f) >= 0,
          "cannot write %s", dict);
    if (f)
        fclose(f);
    /*  Upper case (lower() on both sides), LIKE's own characters (taken literally), a
        term in several titles (scores and ties), and one entry that will change. */
    static const char *const titles[4] = {"潮汐观测 海港记录", "潮汐预报 Tide Ab",
                                          "海港吞吐 a_b%统计", "鲟鱼 潮汐 名录"};
    static const char *const depts[4] = {S_DEPT1, S_DEPT2, S_DEPT1, S_DEPT2};
    bool ok = true;
    for (int i = 0; i < 4 && ok; i++)
        ok = tp_entry(depts[i], titles[i], "dataset", dict, true, s_res[i]) &&
             s_publish(depts[i], s_res[i], i + 1);
    s_ready = ok && h_case_failures == 0;
}

/*  ---- the search as a user sees it, as one line ---------------------------------------- */

typedef struct {
    const char *q, *fq, *sort;
    int64_t rows, start;
} s_ask_t;

/*  "count | resource:score ... | department: name=count ... | open_type: ... | format: ..."
    from the service. */
static bool s_service(odp_client_t *c, const s_ask_t *a, char *out, size_t size)
{
    odp_catalogue_search_t m = {0};
    if (a->q)
        m.q = odp_v_str(a->q);
    if (a->fq)
        m.fq = odp_v_str(a->fq);
    if (a->sort)
        m.sort = odp_v_str(a->sort);
    m.rows = odp_v_int(a->rows);
    m.start = odp_v_int(a->start);
    msgpack_object arr, items[3];
    const char *facets[] = {"department", "open_type", "format"};
    m.facet_field = tp_strs(&arr, items, facets, 3);
    m.facet_limit = odp_v_int(5);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_catalogue_search, &m, &rep);
    CHECK(st == 200, "search q=%s fq=%s sort=%s: %d %s", a->q ? a->q : "-", a->fq ? a->fq : "-",
          a->sort ? a->sort : "-", st, h_err_code(&rep));
    if (st != 200) {
        odp_reply_free(&rep);
        return false;
    }
    size_t o = (size_t)snprintf(out, size, "%lld |", (long long)h_int(&rep, "count"));
    const msgpack_object *res = odp_map_get(&rep.obj, "results");
    for (uint32_t i = 0; res && i < res->via.array.size && o < size; i++) {
        const msgpack_object *r = odp_map_get(&res->via.array.ptr[i], "resource");
        const msgpack_object *sc = odp_map_get(&res->via.array.ptr[i], "score");
        o += (size_t)snprintf(out + o, size - o, " %.*s:%lld", (int)r->via.str.size, r->via.str.ptr,
                              (long long)sc->via.i64);
    }
    const msgpack_object *sf = odp_map_get(&rep.obj, "search_facets");
    for (int f = 0; f < 3 && o < size; f++) {
        o += (size_t)snprintf(out + o, size - o, " | %s:", facets[f]);
        const msgpack_object *fo = sf ? odp_map_get(sf, facets[f]) : NULL;
        const msgpack_object *it = fo ? odp_map_get(fo, "items") : NULL;
        for (uint32_t i = 0; it && i < it->via.array.size && o < size; i++) {
            const msgpack_object *nm = odp_map_get(&it->via.array.ptr[i], "name");
            const msgpack_object *cn = odp_map_get(&it->via.array.ptr[i], "count");
            o += (size_t)snprintf(out + o, size - o, " %.*s=%lld", (int)nm->via.str.size,
                                  nm->via.str.ptr, (long long)cn->via.i64);
        }
    }
    odp_reply_free(&rep);
    return true;
}

/*  The same line from SQL over publisher.entries: the search as it was before the index
    (migrations 005 and 007: visible, every term in the lowered text by LIKE, twice per
    term in the title and once in the keywords, the facets most frequent first). */
static bool s_oracle(PGconn *pg, const s_ask_t *a, const char *where, const char *order, char *out,
                     size_t size)
{
    char *sql = NULL;
    int words = 0;
    for (const char *p = a->q; p && *p && !words; p++)
        words = !strchr(" \t\r\n\f\v", *p);
    char facet[3][400];
    static const char *const cols[3] = {"department", "open_type", "format"};
    for (int f = 0; f < 3; f++)
        snprintf(facet[f], sizeof facet[f],
                 "(SELECT coalesce(string_agg(' ' || v || '=' || c, '' ORDER BY c DESC, v), '') "
                 "FROM (SELECT %s AS v, count(*) AS c FROM m WHERE true%s GROUP BY 1 ORDER BY c "
                 "DESC, v LIMIT 5) x)",
                 cols[f], where);
    int n = asprintf(
        &sql,
        "WITH t AS (SELECT CASE WHEN btrim(coalesce($1::text, '')) = '' THEN NULL ELSE "
        "regexp_split_to_array(lower(btrim($1::text)), '[[:space:]]+') END AS terms), "
        "k AS (SELECT (SELECT array_agg('%%' || replace(replace(replace(u, '\\', '\\\\'), '%%', "
        "'\\%%'), '_', '\\_') || '%%') FROM unnest(t.terms) u) AS pats FROM t), "
        "g AS (SELECT e.resource, e.title, lower(e.title) AS title_l, "
        "lower(array_to_string(e.keywords, ' ')) AS keywords_l, lower(e.title || ' ' || "
        "e.summary || ' ' || array_to_string(e.keywords, ' ')) AS body, e.modified_at, "
        "e.first_released_at, e.department, e.open_type, coalesce(r.format, '') AS format "
        "FROM publisher.entries e LEFT JOIN publisher.releases r ON r.id = e.current_release "
        "WHERE e.state = 'published' AND e.open_type <> 'not_open'), "
        "m AS (SELECT g.*, (SELECT count(*) FILTER (WHERE g.title_l LIKE p) * 2 + count(*) "
        "FILTER (WHERE g.keywords_l LIKE p) FROM unnest((SELECT pats FROM k)) p) AS score "
        "FROM g WHERE %s) "
        "SELECT (SELECT count(*) FROM m WHERE true%s) || ' |' || (SELECT coalesce(string_agg(' "
        "' || resource || ':' || score, '' ORDER BY i), '') FROM (SELECT resource, score, "
        "row_number() OVER (ORDER BY %sresource) AS i FROM m WHERE true%s ORDER BY %sresource "
        "LIMIT %lld OFFSET %lld) p) || ' | department:' || %s || ' | open_type:' || %s || ' | "
        "format:' || %s",
        words ? "g.body LIKE ALL ((SELECT pats FROM k)::text[])" : "true", where, order, where,
        order, (long long)a->rows, (long long)a->start, facet[0], facet[1], facet[2]);
    if (n < 0)
        return false;
    const char *vals[1] = {a->q};
    PGresult *r = PQexecParams(pg, sql, 1, NULL, vals, NULL, NULL, 0);
    free(sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    CHECK(ok, "oracle q=%s: %s", a->q ? a->q : "-", PQresultErrorMessage(r));
    if (ok)
        snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok;
}

static void s_same(void)
{
    CHECK(s_ready, "set-up failed");
    PGconn *pg = h_pg_super();
    odp_client_t *c = h_client("query", NULL);
    static const char *const qs[] = {
        "潮汐", "潮汐 观测", "海港", "TIDE ab", "a_b%", "a%b",    "测试",        "推送 测试",
        "鲸",   "潮",        "",     NULL,      "  ",   "\t潮汐", "潮汐 无此词",
    };
    /*  CKAN sort, the same in SQL (the SQL search's own, before its resource tie-break). */
    static const char *const sorts[][2] = {
        {NULL, NULL},
        {"title asc", "title ASC, "},
        {"title desc, name desc", "title DESC, resource DESC, "},
        {"metadata_created asc", "first_released_at ASC, "},
        {"name asc", "resource ASC, "},
        {"score desc, metadata_modified asc", "score DESC, modified_at ASC, "},
    };
    static const char *const fqs[][2] = {
        {NULL, ""},
        {"department:" S_DEPT2, " AND department = '" S_DEPT2 "'"},
        {"open_type:无条件开放 format:csv", " AND open_type = 'unconditional' AND format = 'csv'"},
        {"department:999999999", " AND department = '999999999'"},
    };
    static const int64_t pages[][2] = {{100, 0}, {2, 0}, {2, 1}, {3, 2}, {0, 0}, {5, 1000}};
    int compared = 0, differ = 0;
    char got[8192], want[8192];
    for (size_t qi = 0; qi < sizeof qs / sizeof qs[0]; qi++) {
        int words = 0;
        for (const char *p = qs[qi]; p && *p && !words; p++)
            words = !strchr(" \t\r\n\f\v", *p);
        for (size_t si = 0; si < sizeof sorts / sizeof sorts[0]; si++)
            for (size_t fi = 0; fi < sizeof fqs / sizeof fqs[0]; fi++)
                for (size_t pi = 0; pi < sizeof pages / sizeof pages[0]; pi++) {
                    /*  Every sort and filter on the first page; every page on the default. */
                    if (pi && (si || fi))
                        continue;
                    s_ask_t a = {qs[qi], fqs[fi][0], sorts[si][0], pages[pi][0], pages[pi][1]};
                    const char *order = sorts[si][1] ? sorts[si][1]
                                        : words      ? "score DESC, modified_at DESC, "
                                                     : "modified_at DESC, ";
                    if (!s_service(c, &a, got, sizeof got) ||
                        !s_oracle(pg, &a, fqs[fi][1], order, want, sizeof want))
                        continue;
                    compared++;
                    if (strcmp(got, want) != 0 && differ++ < 5)
                        CHECK(false, "q=%s fq=%s sort=%s rows=%lld start=%lld:\n got  %s\n want %s",
                              a.q ? a.q : "(none)", a.fq ? a.fq : "-", a.sort ? a.sort : "-",
                              (long long)a.rows, (long long)a.start, got, want);
                }
    }
    CHECK(compared > 100 && differ == 0, "%d of %d searches differ from the SQL", differ, compared);
    /*  The set-up's entries are found as expected, so the comparison compared something. */
    s_ask_t b = {"潮汐", NULL, NULL, 100, 0};
    CHECK(s_service(c, &b, got, sizeof got) && strstr(got, s_res[0]) && strstr(got, s_res[1]) &&
              strstr(got, s_res[3]) && !strstr(got, s_res[2]),
          "潮汐: %s", got);
    odp_client_destroy(&c);
    PQfinish(pg);
}

/*  The count of q, and the score of resource among its hits (-1 when not a hit). */
static int64_t s_find(odp_client_t *c, const char *q, const char *resource, int64_t *score)
{
    odp_catalogue_search_t m = {0};
    m.q = odp_v_str(q);
    m.rows = odp_v_int(1000);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_catalogue_search, &m, &rep);
    CHECK(st == 200, "search %s: %d %s", q, st, h_err_code(&rep));
    int64_t count = st == 200 ? h_int(&rep, "count") : -1;
    *score = -1;
    const msgpack_object *res = odp_map_get(&rep.obj, "results");
    for (uint32_t i = 0; res && i < res->via.array.size; i++) {
        const msgpack_object *r = odp_map_get(&res->via.array.ptr[i], "resource");
        if (r->via.str.size == strlen(resource) &&
            memcmp(r->via.str.ptr, resource, r->via.str.size) == 0)
            *score = odp_map_get(&res->via.array.ptr[i], "score")->via.i64;
    }
    odp_reply_free(&rep);
    return count;
}

static int s_publisher(const odp_msgdef_t *def, const char *resource)
{
    odp_client_t *c = h_client("publisher", NULL);
    odp_release_withdraw_t m = {0};
    m.resource = odp_v_str(resource);
    m.reason = odp_v_str("搜索测试: 撤回");
    odp_reply_t rep;
    int st;
    if (def == &odp_def_release_withdraw)
        st = h_call(c, def, &m, &rep);
    else {
        odp_release_restore_t r = {0};
        r.resource = odp_v_str(resource);
        st = h_call(c, def, &r, &rep);
    }
    CHECK(st == 200, "%s %s: %d %s", def->name, resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st;
}

static void s_follows(void)
{
    CHECK(s_ready, "set-up failed");
    const char *e = s_res[3]; /* 鲟鱼 潮汐 名录, keywords 测试 推送, summary 推送测试用的… */
    odp_client_t *c = h_client("query", NULL);
    int64_t score;
    CHECK(s_find(c, "鲟鱼", e, &score) == 1 && score == 2, "released: found with score %lld",
          (long long)score);
    CHECK(s_find(c, "推送", e, &score) >= 1 && score == 1, "released: 推送 in keywords, %lld",
          (long long)score);
    /*  Changed: new summary and keywords, released again. */
    odp_client_t *p = h_client("registrar", h_keyfile(S_DEPT2));
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(e);
    u.summary = odp_v_str("长江珍稀鱼类的观测名录");
    msgpack_object kw, kwi[1];
    const char *words[] = {"江豚"};
    u.keywords = tp_strs(&kw, kwi, words, 1);
    odp_reply_t rep;
    int st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "catalog.update: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&p);
    CHECK(s_publish(S_DEPT2, e, 7), "released again");
    CHECK(s_find(c, "江豚", e, &score) == 1 && score == 1, "changed: 江豚 in keywords, %lld",
          (long long)score);
    CHECK(s_find(c, "珍稀鱼类", e, &score) == 1 && score == 0, "changed: in the summary, %lld",
          (long long)score);
    s_find(c, "推送", e, &score);
    CHECK(score == -1, "changed: 推送 no longer in its text, score %lld", (long long)score);
    /*  Withdrawn, restored, withdrawn: each search sees the last. */
    for (int round = 0; round < 2; round++) {
        CHECK(s_publisher(&odp_def_release_withdraw, e) == 200, "withdrawn");
        CHECK(s_find(c, "江豚", e, &score) == 0 && score == -1, "withdrawn: still found");
        CHECK(s_publisher(&odp_def_release_restore, e) == 200, "restored");
        CHECK(s_find(c, "江豚", e, &score) == 1 && score == 1, "restored: not found");
    }
    CHECK(s_publisher(&odp_def_release_withdraw, e) == 200, "withdrawn");
    odp_client_destroy(&c);
    /*  A restarted service loads the index again and sees the same. */
    const char *env[] = {"ODP_QUERY_RATE_PER_S=100000", "ODP_QUERY_RATE_BURST=100000", NULL};
    h_service_stop("query");
    CHECK(h_service_start("query", env) > 0, "query restarted");
    c = h_client("query", NULL);
    CHECK(s_find(c, "江豚", e, &score) == 0, "after a restart: a withdrawn entry found");
    CHECK(s_find(c, "潮汐", s_res[0], &score) >= 2 && score == 2,
          "after a restart: 潮汐 in the title, score %lld", (long long)score);
    odp_client_destroy(&c);
    CHECK(s_publisher(&odp_def_release_restore, e) == 200, "restored");
    c = h_client("query", NULL);
    CHECK(s_find(c, "江豚", e, &score) == 1 && score == 1, "restored after a restart");
    odp_client_destroy(&c);
}

const h_case_t t_search_cases[] = {
    {"catalogue search: set-up (four entries released through registrar, reviewer, publisher)",
     s_setup},
    {"catalogue search: the index answers as SQL over publisher.entries does (hits, order, "
     "scores, count, facets) for many queries, sorts, filters and pages",
     s_same},
    {"catalogue search: an entry released, changed, withdrawn and restored appears, changes, "
     "disappears and comes back, also after a restart",
     s_follows},
    {NULL, NULL},
};
