/*  The query service's finding and obtaining side: catalogue search in Chinese with facet
    counts, row queries with every filter operator, hostile filters and sorts refused,
    keyset paging across a new release, downloads whose bytes match the published rows and
    their hash, and who gets what on open and conditional entries. Data is pushed, reviewed
    and released through the real registrar, reviewer and publisher. */
#include "pushing.h"

#include "common/auth.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_DEPT1 "446800001"
#define S_DEPT2 "446800002"
#define S_DEPT3 "448700001"
#define S_ROWS  300

static char s_public[64];
static char s_open[33]; /* 蓝鲸观测: unconditional, released v1 (and v2 in the paging case) */
static char s_cond[33]; /* conditional, released */
static char s_other[33];
static bool s_ready = false;

/*  id integer unique, ver enum, day date, note text, amt numeric, ok boolean. */
static const char *s_dict(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/query-rows.dict.json", h_var());
    json_t *d = json_pack(
        "{s:[{s:s,s:s,s:b,s:b},{s:s,s:s,s:[s,s,s]},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]}",
        "fields", "name", "id", "type", "integer", "required", 1, "unique", 1, "name", "ver",
        "type", "text", "enum", "v1", "v2", "v3", "name", "day", "type", "date", "name", "note",
        "type", "text", "name", "amt", "type", "numeric", "name", "ok", "type", "boolean");
    CHECK(d && json_dump_file(d, path, 0) == 0, "cannot write %s", path);
    json_decref(d);
    return path;
}

static char *s_csv(const char *ver, int n, size_t *len)
{
    size_t cap = 64 + (size_t)n * 64;
    char *buf = malloc(cap);
    size_t off = (size_t)snprintf(buf, cap, "id,ver,day,note,amt,ok\n");
    for (int i = 1; i <= n; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%d,%s,2026-01-%02d,行 %d,%d.5,%s\n", i, ver,
                                i % 28 + 1, i, i, i % 2 ? "true" : "false");
    *len = off;
    return buf;
}

static odp_client_t *s_anon(const char *name)
{
    char base[512], secret[600], key[41], err[256];
    snprintf(base, sizeof base, "%s/keys/qr-%s", h_var(), name);
    snprintf(secret, sizeof secret, "%s_secret", base);
    if (odp_auth_keygen("user", name, name, base, key) < 0)
        return NULL;
    odp_client_t *c = odp_client_new("query", s_public, secret, err, sizeof err);
    CHECK(c, "client %s: %s", name, err);
    return c;
}

static void s_setup(void)
{
    static char bind[80];
    int port = atoi(h_env("ODP_PORT_BASE")) + 39;
    snprintf(bind, sizeof bind, "ODP_QUERY_PUBLIC_BIND=tcp://127.0.0.1:%d", port);
    snprintf(s_public, sizeof s_public, "tcp://127.0.0.1:%d", port);
    const char *env[] = {bind,
                         "ODP_QUERY_RATE_PER_S=100000",
                         "ODP_QUERY_RATE_BURST=100000",
                         "ODP_QUERY_COUNT_FLUSH_MS=300",
                         "ODP_QUERY_DOWNLOAD_CHUNK_BYTES=2000",
                         NULL};
    h_service_stop("query");
    CHECK(h_service_start("query", env) > 0, "query with a public endpoint");
    CHECK(h_department(S_DEPT1, "行查询测试 部门一") == 0, "department 1");
    CHECK(h_department(S_DEPT2, "行查询测试 部门二") == 0, "department 2");
    const char *dict = s_dict();
    bool ok = tp_entry(S_DEPT1, "蓝鲸观测 海洋记录", "dataset", dict, true, s_open) &&
              tp_entry(S_DEPT1, "行查询 有条件数据", "dataset", dict, true, s_cond) &&
              tp_entry(S_DEPT2, "行查询 其他部门", "dataset", dict, true, s_other);
    odp_client_t *p = h_client("registrar", h_keyfile(S_DEPT1));
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(s_cond);
    u.open_type = odp_v_str("conditional");
    u.access_conditions = odp_v_str("用于科研");
    odp_reply_t rep;
    int st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "conditional: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&p);
    size_t len;
    char *csv = s_csv("v1", S_ROWS, &len);
    ok = ok && tp_publish(S_DEPT1, &(tp_opts_t){.resource = s_open}, csv, len) > 0 &&
         tp_publish(S_DEPT1, &(tp_opts_t){.resource = s_cond}, csv, len) > 0 &&
         tp_publish(S_DEPT2, &(tp_opts_t){.resource = s_other}, csv, len) > 0;
    free(csv);
    s_ready = ok && h_case_failures == 0;
}

/*  ---- calls ------------------------------------------------------------------------------ */

static int s_search(odp_client_t *c, const char *q, const char *fq, odp_reply_t *rep)
{
    odp_catalogue_search_t m = {0};
    if (q)
        m.q = odp_v_str(q);
    if (fq)
        m.fq = odp_v_str(fq);
    m.rows = odp_v_int(100);
    msgpack_object arr, items[2];
    const char *facets[] = {"open_type", "department"};
    m.facet_field = tp_strs(&arr, items, facets, 2);
    return h_call(c, &odp_def_catalogue_search, &m, rep);
}

/*  datastore.search with filters given as JSON (packed as msgpack). */
static int s_rows(odp_client_t *c, const char *token, const char *resource, const char *filters,
                  const char *sort, const char *next, int64_t limit, odp_reply_t *rep)
{
    odp_datastore_search_t m = {0};
    m.resource = odp_v_str(resource);
    if (token)
        m.token = odp_v_str(token);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (filters) {
        json_t *j = json_loads(filters, JSON_DECODE_ANY, NULL);
        CHECK(j, "bad test filter %s", filters);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        odp_json_pack(&pk, j);
        json_decref(j);
        m.filters = odp_v_raw(sb.data, sb.size);
    }
    if (sort)
        m.sort = odp_v_str(sort);
    if (next)
        m.next_page = odp_v_str(next);
    if (limit)
        m.limit = odp_v_int(limit);
    int st = h_call(c, &odp_def_datastore_search, &m, rep);
    msgpack_sbuffer_destroy(&sb);
    return st;
}

static int64_t s_count(odp_client_t *c, const char *filters)
{
    odp_reply_t rep;
    int st = s_rows(c, NULL, s_open, filters, NULL, NULL, 1000, &rep);
    const msgpack_object *recs = st == 200 ? odp_map_get(&rep.obj, "records") : NULL;
    int64_t n = recs ? (int64_t)recs->via.array.size : -1;
    int64_t total = h_int(&rep, "total");
    CHECK(st != 200 || total == n, "%s: total %lld, %lld records", filters, (long long)total,
          (long long)n);
    CHECK(st == 200, "filters %s: %d %s", filters, st, h_err_code(&rep));
    odp_reply_free(&rep);
    return n;
}

/*  ---- cases ------------------------------------------------------------------------------ */

static void s_search_chinese(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("searcher");
    odp_reply_t rep;
    int st = s_search(c, "蓝鲸", NULL, &rep);
    const msgpack_object *res = odp_map_get(&rep.obj, "results");
    char first[40] = "";
    if (st == 200 && res && res->via.array.size) {
        const msgpack_object *r = odp_map_get(&res->via.array.ptr[0], "resource");
        snprintf(first, sizeof first, "%.*s", (int)r->via.str.size, r->via.str.ptr);
    }
    CHECK(st == 200 && h_int(&rep, "count") == 1 && strcmp(first, s_open) == 0,
          "蓝鲸: %d count %lld first %s", st, (long long)h_int(&rep, "count"), first);
    odp_reply_free(&rep);
    /*  Both terms must hold; a term in no entry finds nothing. */
    st = s_search(c, "蓝鲸 有条件", NULL, &rep);
    CHECK(st == 200 && h_int(&rep, "count") == 0, "two terms: %d %lld", st,
          (long long)h_int(&rep, "count"));
    odp_reply_free(&rep);
    /*  Facets count every hit: 行查询 is in two entries of two departments. */
    st = s_search(c, "行查询", NULL, &rep);
    const msgpack_object *f = odp_map_get(&rep.obj, "search_facets");
    const msgpack_object *dep = f ? odp_map_get(f, "department") : NULL;
    const msgpack_object *items = dep ? odp_map_get(dep, "items") : NULL;
    int64_t d1 = -1, d2 = -1;
    for (uint32_t i = 0; items && i < items->via.array.size; i++) {
        const msgpack_object *nm = odp_map_get(&items->via.array.ptr[i], "name");
        const msgpack_object *cn = odp_map_get(&items->via.array.ptr[i], "count");
        if (nm->via.str.size == 9 && memcmp(nm->via.str.ptr, S_DEPT1, 9) == 0)
            d1 = (int64_t)cn->via.u64;
        if (nm->via.str.size == 9 && memcmp(nm->via.str.ptr, S_DEPT2, 9) == 0)
            d2 = (int64_t)cn->via.u64;
    }
    CHECK(st == 200 && h_int(&rep, "count") == 2 && d1 == 1 && d2 == 1,
          "行查询: %d count %lld, facets %lld/%lld", st, (long long)h_int(&rep, "count"),
          (long long)d1, (long long)d2);
    odp_reply_free(&rep);
    st = s_search(c, "行查询", "open_type:conditional", &rep);
    CHECK(st == 200 && h_int(&rep, "count") == 1, "fq open_type: %d %lld", st,
          (long long)h_int(&rep, "count"));
    odp_reply_free(&rep);
    st = s_search(c, NULL, "colour:red", &rep);
    CHECK(st == 422 && strcmp(h_err_code(&rep), "INVALID_VALUE") == 0, "fq unknown: %d %s", st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

static void s_filters(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("filterer");
    static const struct {
        const char *filters;
        int64_t want;
    } cases[] = {
        {"{\"id\": 7}", 1},
        {"{\"id\": [1, 2, 3, 999]}", 3},
        {"{\"id\": {\"gt\": 299}}", 1},
        {"{\"id\": {\"gte\": 299}}", 2},
        {"{\"id\": {\"lt\": 2}}", 1},
        {"{\"id\": {\"lte\": 2}}", 2},
        {"{\"id\": {\"gt\": 10, \"lte\": 20}}", 10},
        {"{\"id\": {\"in\": [5, 6]}}", 2},
        {"{\"id\": {\"eq\": \"8\"}}", 1},
        {"{\"ver\": \"v1\"}", S_ROWS},
        {"{\"ver\": \"v2\"}", 0},
        {"{\"ver\": {\"in\": [\"v2\", \"v3\"]}}", 0},
        {"{\"note\": \"行 12\"}", 1},
        {"{\"note\": {\"gt\": \"行 98\"}}", 1}, /* 行 99 */
        {"{\"day\": \"2026-01-02\"}", 11},      /* i % 28 == 1: 1, 29, ..., 281 */
        {"{\"day\": {\"gte\": \"2026-01-28\"}}", 10},
        {"{\"day\": {\"lt\": \"2026-01-02\"}}", 10},
        {"{\"amt\": {\"gt\": 299.5}}", 1},
        {"{\"amt\": {\"gte\": 299.5}}", 2},
        {"{\"amt\": {\"lt\": 1.5}}", 0},
        {"{\"amt\": {\"lte\": 1.5}}", 1},
        {"{\"ok\": true}", S_ROWS / 2},
        {"{\"ok\": false}", S_ROWS / 2},
        {"{\"$or\": [{\"id\": 1}, {\"id\": 2}, {\"ok\": false, \"id\": {\"lte\": 4}}]}", 3},
        {"{\"$and\": [{\"id\": {\"gt\": 100}}, {\"id\": {\"lte\": 110}}], \"ok\": true}", 5},
        {"{\"_id\": {\"lte\": 3}}", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t n = s_count(c, cases[i].filters);
        CHECK(n == cases[i].want, "%s: %lld rows, want %lld", cases[i].filters, (long long)n,
              (long long)cases[i].want);
    }
    odp_client_destroy(&c);
}

static void s_hostile(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("hostile");
    static const struct {
        const char *filters;
        const char *sort;
        int status;
        const char *code;
    } cases[] = {
        {"{\"nope\": 1}", NULL, 422, "INVALID_VALUE"},
        {"{\"id\\\"; DROP TABLE x; --\": 1}", NULL, 422, "INVALID_VALUE"},
        {"{\"id\": \"1 OR 1=1\"}", NULL, 422, "INVALID_VALUE"},
        {"{\"id\": {\"like\": 1}}", NULL, 422, "INVALID_VALUE"},
        {"{\"id\": {\"gt\": [1]}}", NULL, 400, "WRONG_TYPE"},
        {"{\"ok\": {\"gt\": true}}", NULL, 422, "INVALID_VALUE"},
        {"{\"ok\": \"maybe\"}", NULL, 422, "INVALID_VALUE"},
        {"{\"id\": 1.5}", NULL, 400, "WRONG_TYPE"},
        {"{\"day\": \"2026-13-45\"}", NULL, 422, "INVALID_VALUE"},
        {"{\"$or\": {\"id\": 1}}", NULL, 400, "WRONG_TYPE"},
        {"[1]", NULL, 400, "WRONG_TYPE"},
        {NULL, "note", 422, "INVALID_VALUE"},
        {NULL, "amt desc", 422, "INVALID_VALUE"},
        {NULL, "id; DROP TABLE x", 422, "INVALID_VALUE"},
        {NULL, "id sideways", 422, "INVALID_VALUE"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        odp_reply_t rep;
        int st = s_rows(c, NULL, s_open, cases[i].filters, cases[i].sort, NULL, 10, &rep);
        CHECK(st == cases[i].status && strcmp(h_err_code(&rep), cases[i].code) == 0,
              "%s / %s: %d %s, want %d %s", cases[i].filters ? cases[i].filters : "-",
              cases[i].sort ? cases[i].sort : "-", st, h_err_code(&rep), cases[i].status,
              cases[i].code);
        odp_reply_free(&rep);
    }
    odp_reply_t rep;
    int st = s_rows(c, NULL, s_open, NULL, "id desc", NULL, 3, &rep);
    const msgpack_object *recs = odp_map_get(&rep.obj, "records");
    const msgpack_object *id0 =
        recs && recs->via.array.size ? odp_map_get(&recs->via.array.ptr[0], "id") : NULL;
    CHECK(st == 200 && id0 && id0->via.u64 == S_ROWS, "sort id desc: %d", st);
    odp_reply_free(&rep);
    st = s_rows(c, NULL, s_open, NULL, NULL, "1.x", 3, &rep);
    CHECK(st == 422 && strcmp(h_err_code(&rep), "INVALID_VALUE") == 0, "bad cursor: %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

/*  Every row once, in order, while v2 is released between the pages. */
static void s_paging(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("pager");
    char seen[S_ROWS + 1] = {0};
    char next[201] = "";
    int pages = 0, rows = 0, dup = 0;
    bool released = false;
    for (;;) {
        odp_reply_t rep;
        int st = s_rows(c, NULL, s_open, NULL, NULL, next[0] ? next : NULL, 40, &rep);
        CHECK(st == 200, "page %d: %d %s", pages, st, h_err_code(&rep));
        if (st != 200) {
            odp_reply_free(&rep);
            break;
        }
        const msgpack_object *recs = odp_map_get(&rep.obj, "records");
        for (uint32_t i = 0; recs && i < recs->via.array.size; i++) {
            const msgpack_object *id = odp_map_get(&recs->via.array.ptr[i], "id");
            const msgpack_object *ver = odp_map_get(&recs->via.array.ptr[i], "ver");
            int64_t v = (int64_t)id->via.u64;
            CHECK(ver->via.str.size == 2 && memcmp(ver->via.str.ptr, "v1", 2) == 0,
                  "a v2 row on page %d", pages);
            if (v >= 1 && v <= S_ROWS) {
                dup += seen[v];
                seen[v] = 1;
            }
            rows++;
        }
        const msgpack_object *np = odp_map_get(&rep.obj, "next_page");
        next[0] = '\0';
        if (np)
            snprintf(next, sizeof next, "%.*s", (int)np->via.str.size, np->via.str.ptr);
        odp_reply_free(&rep);
        pages++;
        if (!released && pages == 2) {
            size_t len;
            char *csv = s_csv("v2", S_ROWS, &len);
            released = tp_publish(S_DEPT1, &(tp_opts_t){.resource = s_open}, csv, len) > 0;
            free(csv);
        }
        if (!next[0] || pages > 20)
            break;
    }
    int missing = 0;
    for (int i = 1; i <= S_ROWS; i++)
        missing += !seen[i];
    CHECK(released && rows == S_ROWS && dup == 0 && missing == 0,
          "paging: released %d, %d rows, %d twice, %d missing over %d pages", released, rows, dup,
          missing, pages);
    /*  A new query reads v2. */
    odp_reply_t rep;
    int st = s_rows(c, NULL, s_open, NULL, NULL, NULL, 1, &rep);
    CHECK(st == 200 && h_int(&rep, "version") == 2, "after the release: %d v%lld", st,
          (long long)h_int(&rep, "version"));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

/*  The whole version through download.chunk under its credit; the bytes equal what COPY of
    the public view gives, and the served hash is theirs. */
static void s_download(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("downloader");
    odp_download_begin_t b = {0};
    b.resource = odp_v_str(s_other);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_download_begin, &b, &rep);
    int64_t id = h_int(&rep, "download"), span = h_int(&rep, "span"),
            last = h_int(&rep, "last_row"), rel = h_int(&rep, "release");
    CHECK(st == 200 && id > 0 && span > 0 && last == S_ROWS, "download.begin: %d %s", st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    CHECK(span < S_ROWS / 4, "span %lld: the download is not cut into chunks", (long long)span);
    odp_buf_t *got = odp_buf_new();
    char served[65] = "";
    bool done = false;
    for (int64_t from = 1; st == 200 && !done && from <= last + span; from += span) {
        /*  A resumed download asks again for a chunk it had: the same bytes, and the hash
            goes on undisturbed; a chunk beyond where the download stands is refused. */
        if (from == 1 + 2 * span) {
            odp_download_chunk_t again = {0};
            again.download = odp_v_int(id);
            again.from_row = odp_v_int(1 + span);
            st = h_call(c, &odp_def_download_chunk, &again, &rep);
            const msgpack_object *d = odp_map_get(&rep.obj, "data");
            size_t size = odp_buf_size(got);
            CHECK(st == 200 && d && d->via.bin.size < size &&
                      memcmp(odp_buf_data(got) + size - d->via.bin.size, d->via.bin.ptr,
                             d->via.bin.size) == 0,
                  "chunk 2 asked again: %d, not the same bytes", st);
            odp_reply_free(&rep);
            again.from_row = odp_v_int(1 + 3 * span);
            st = h_call(c, &odp_def_download_chunk, &again, &rep);
            CHECK(st == 409 && strcmp(h_err_code(&rep), "BAD_OFFSET") == 0, "a chunk ahead: %d %s",
                  st, h_err_code(&rep));
            odp_reply_free(&rep);
            again.from_row = odp_v_int(2 + 2 * span);
            st = h_call(c, &odp_def_download_chunk, &again, &rep);
            CHECK(st == 409 && strcmp(h_err_code(&rep), "BAD_OFFSET") == 0,
                  "a chunk off the boundary: %d %s", st, h_err_code(&rep));
            odp_reply_free(&rep);
            st = 200;
        }
        odp_download_chunk_t ch = {0};
        ch.download = odp_v_int(id);
        ch.from_row = odp_v_int(from);
        st = h_call(c, &odp_def_download_chunk, &ch, &rep);
        CHECK(st == 200, "chunk at %lld: %d %s", (long long)from, st, h_err_code(&rep));
        const msgpack_object *d = odp_map_get(&rep.obj, "data");
        if (d)
            odp_buf_append(got, d->via.bin.ptr, d->via.bin.size);
        done = tp_bool(&rep, "done");
        if (done)
            tp_str(&rep, "served_sha256", served, sizeof served);
        odp_reply_free(&rep);
    }
    char hex[65];
    tp_sha256(odp_buf_data(got), odp_buf_size(got), hex);
    CHECK(done && strcmp(hex, served) == 0, "served hash %s, bytes hash %s", served, hex);
    /*  Re-imported: the same rows as the view. */
    PGconn *pg = h_pg_super();
    PQclear(PQexec(pg, "CREATE TEMP TABLE t (id bigint, ver text, day date, note text, amt "
                       "numeric, ok boolean)"));
    PGresult *r = PQexec(pg, "COPY t FROM STDIN (FORMAT csv, HEADER)");
    bool copied = PQresultStatus(r) == PGRES_COPY_IN &&
                  PQputCopyData(pg, odp_buf_data(got), (int)odp_buf_size(got)) == 1 &&
                  PQputCopyEnd(pg, NULL) == 1;
    PQclear(r);
    r = PQgetResult(pg);
    copied = copied && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ((SELECT * FROM t EXCEPT ALL SELECT id, ver, day, note, amt, ok "
             "FROM publisher.r%lld) UNION ALL (SELECT id, ver, day, note, amt, ok FROM "
             "publisher.r%lld EXCEPT ALL SELECT * FROM t)) d",
             (long long)rel, (long long)rel);
    int64_t diff = h_pg_int(pg, sql);
    CHECK(copied && diff == 0 && h_pg_int(pg, "SELECT count(*) FROM t") == S_ROWS,
          "re-imported download differs from the view by %lld rows", (long long)diff);
    PQfinish(pg);
    odp_buf_destroy(&got);
    /*  Someone else's download is not there for them. */
    odp_client_t *other = s_anon("not-the-downloader");
    odp_download_chunk_t ch = {0};
    ch.download = odp_v_int(id);
    ch.from_row = odp_v_int(1);
    st = h_call(other, &odp_def_download_chunk, &ch, &rep);
    CHECK(st == 404 && strcmp(h_err_code(&rep), "NOT_FOUND") == 0, "another's download: %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&other);
    odp_client_destroy(&c);
}

/*  A signed-in user's session token (signed up first when new). */
static void s_signin(odp_client_t *c, const char *login, char token[65])
{
    odp_reply_t rep;
    odp_user_signup_t su = {0};
    su.login = odp_v_str(login);
    su.password = odp_v_str("correct horse battery");
    int st = h_call(c, &odp_def_user_signup, &su, &rep);
    odp_reply_free(&rep);
    CHECK(st == 200 || st == 409, "signup %s: %d", login, st);
    odp_user_signin_t si = {0};
    si.login = su.login;
    si.password = su.password;
    st = h_call(c, &odp_def_user_signin, &si, &rep);
    token[0] = '\0';
    tp_str(&rep, "token", token, 65);
    odp_reply_free(&rep);
    CHECK(st == 200 && strlen(token) == 43, "signin %s: %d", login, st);
}

static int s_begin(odp_client_t *c, const char *token, const char *resource)
{
    odp_download_begin_t b = {0};
    b.resource = odp_v_str(resource);
    if (token)
        b.token = odp_v_str(token);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_download_begin, &b, &rep);
    odp_reply_free(&rep);
    return st;
}

/*  A granted user reads conditional rows until the grant expires; a department reads
    another department's conditional rows no more than the public does. */
/*  The signed-in user of token applies for resource: the application's id (CHECKed). */
static int64_t s_apply(odp_client_t *c, const char *token, const char *resource)
{
    odp_application_submit_t a = {0};
    a.token = odp_v_str(token);
    a.resource = odp_v_str(resource);
    a.purpose = odp_v_str("研究");
    a.scope = odp_v_str("全部");
    a.period_from = odp_v_str("2026-01-01");
    a.period_to = odp_v_str("2026-12-31");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_application_submit, &a, &rep);
    int64_t app = h_int(&rep, "id");
    CHECK(st == 200 && app > 0, "apply: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    return app;
}

/*  dept grants application app until 2099. */
static void s_grant(const char *dept, int64_t app)
{
    odp_client_t *c = h_client("query", h_keyfile(dept));
    odp_application_decide_t d = {0};
    d.id = odp_v_int(app);
    d.grant = odp_v_bool(true);
    d.expires_at = odp_v_str("2099-01-01T00:00:00Z");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_application_decide, &d, &rep);
    CHECK(st == 200, "grant: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

static void s_granted(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("grantee");
    char token[65];
    s_signin(c, "rows-grantee", token);
    int64_t app = s_apply(c, token, s_cond);
    odp_reply_t rep;
    int st = s_rows(c, token, s_cond, NULL, NULL, NULL, 5, &rep);
    CHECK(st == 403, "applied, not granted: %d", st);
    odp_reply_free(&rep);
    s_grant(S_DEPT1, app);
    st = s_rows(c, token, s_cond, "{\"id\": {\"lte\": 5}}", NULL, NULL, 10, &rep);
    CHECK(st == 200 && h_int(&rep, "total") == 5, "granted: %d %s total %lld", st, h_err_code(&rep),
          (long long)h_int(&rep, "total"));
    odp_reply_free(&rep);
    CHECK(s_begin(c, token, s_cond) == 200, "granted download");
    CHECK(s_begin(c, NULL, s_cond) == 403, "the same key without the token downloads");
    /*  The grant expires. */
    PGconn *pg = h_pg_super();
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE query.applications SET expires_at = now() - interval '1 second' WHERE id = "
             "%lld",
             (long long)app);
    PQclear(PQexec(pg, sql));
    PQfinish(pg);
    st = s_rows(c, token, s_cond, NULL, NULL, NULL, 5, &rep);
    char msg[300] = "";
    odp_v_cstr(&rep.err.message, msg, sizeof msg);
    CHECK(st == 403 && strstr(msg, "expired"), "expired grant: %d %s", st, msg);
    odp_reply_free(&rep);
    CHECK(s_begin(c, token, s_cond) == 403, "expired grant downloads");
    /*  Another department, with its registered key: the public's rights, no more. */
    odp_client_t *other = h_client("query", h_keyfile(S_DEPT2));
    st = s_rows(other, NULL, s_cond, NULL, NULL, NULL, 5, &rep);
    CHECK(st == 403, "another department on conditional: %d", st);
    odp_reply_free(&rep);
    st = s_rows(other, NULL, s_open, NULL, NULL, NULL, 5, &rep);
    CHECK(st == 200, "another department on open: %d", st);
    odp_reply_free(&rep);
    odp_client_destroy(&other);
    odp_client_destroy(&c);
}

/*  odp-user search, query and download as a user would run them; the file it writes has
    the hash the service served. */
static void s_tool(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("tool");
    odp_client_destroy(&c);
    char file[512], cmd[2048], outp[512], errp[512], cert[600], ep[128], tok[600];
    snprintf(file, sizeof file, "%s/qr-download.csv", h_var());
    snprintf(outp, sizeof outp, "%s/qr-tool.out", h_var());
    snprintf(errp, sizeof errp, "%s/log/qr-tool.err", h_var());
    snprintf(cert, sizeof cert, "ODP_CLIENT_CERT=%s/keys/qr-tool_secret", h_var());
    snprintf(ep, sizeof ep, "ODP_QUERY_PUBLIC_ENDPOINT=%s", s_public);
    snprintf(tok, sizeof tok, "ODP_QUERY_TOKEN_FILE=%s/qr-tool.token", h_var());
    const char *env[] = {cert, ep, tok, NULL};
    snprintf(cmd, sizeof cmd,
             "B='%s/odp-user'; $B --json search --q 蓝鲸 --facet-field open_type | grep -q "
             "'\"count\": *1' && $B --json query --resource %s --filters '{\"id\": {\"in\": [3, "
             "4]}}' --fields id,ver | grep -q '\"total\": *2' && $B --json download --resource %s "
             "--out '%s'",
             h_bin(), s_open, s_open, file);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    unlink(outp);
    unlink(file);
    int rc = h_wait_exit(h_spawn(argv, env, outp, errp), 30000);
    json_t *j = json_load_file(outp, 0, NULL);
    const char *sha = json_string_value(json_object_get(j, "sha256"));
    size_t len = 0;
    char *data = NULL;
    FILE *f = fopen(file, "rb");
    if (f) {
        data = malloc(1 << 22);
        len = fread(data, 1, 1 << 22, f);
        fclose(f);
    }
    char hex[65] = "";
    if (data)
        tp_sha256(data, len, hex);
    CHECK(rc == 0 && sha && strcmp(sha, hex) == 0 && len > 0,
          "odp-user exited %d; file %zu bytes %s, reported %s (see %s)", rc, len, hex,
          sha ? sha : "-", errp);
    free(data);
    json_decref(j);
}

/*  Views, queries and downloads reach usage_counts through the batched counter. */
static void s_counted(void)
{
    CHECK(s_ready, "set-up failed");
    usleep(800 * 1000);
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(queries), 0) * 1000 + coalesce(sum(downloads), 0) FROM "
             "query.usage_counts WHERE resource = '%s'",
             s_open);
    int64_t v = h_pg_int(pg, sql);
    PQfinish(pg);
    CHECK(v / 1000 >= 30 && v % 1000 >= 1, "usage of %s: %lld queries, %lld downloads", s_open,
          (long long)(v / 1000), (long long)(v % 1000));
}

/*  One connection sends row queries (run on the service's pool of connections) and
    commands the loop answers itself, all before reading a reply: the replies come back in
    the order of the requests, each with its own rows. */
static void s_in_order(void)
{
    CHECK(s_ready, "set-up failed");
    enum { N = 60 };
    zsock_t *d = zsock_new(ZMQ_DEALER);
    char ep[256], e[256];
    odp_config_endpoint("query", false, false, ep, sizeof ep);
    CHECK(odp_auth_client(d, NULL, e, sizeof e) == 0, "curve client: %s", e);
    zsock_set_sndhwm(d, 0);
    zsock_set_rcvhwm(d, 0);
    zsock_set_rcvtimeo(d, 20000);
    zsock_connect(d, "%s", ep);
    for (int i = 0; i < N; i++) {
        msgpack_sbuffer buf, fb;
        msgpack_sbuffer_init(&fb);
        const char *cmd = "whoami";
        if (i % 4 != 3) {
            msgpack_packer pk;
            msgpack_packer_init(&pk, &fb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str(&pk, 3);
            msgpack_pack_str_body(&pk, "_id", 3);
            msgpack_pack_int64(&pk, 1 + i % S_ROWS);
            odp_datastore_search_t m = {0};
            m.resource = odp_v_str(s_open);
            m.filters = odp_v_raw(fb.data, fb.size);
            odp_encode_buf(&odp_def_datastore_search, &m, &buf);
            cmd = "datastore.search";
        } else {
            odp_whoami_t m = {0};
            odp_encode_buf(&odp_def_whoami, &m, &buf);
        }
        zmsg_t *msg = zmsg_new();
        zmsg_addstr(msg, ODP_PROTOCOL);
        zmsg_addstr(msg, cmd);
        zmsg_addmem(msg, buf.data, buf.size);
        zmsg_send(&msg, d);
        msgpack_sbuffer_destroy(&buf);
        msgpack_sbuffer_destroy(&fb);
    }
    int good = 0;
    for (int i = 0; i < N; i++) {
        zmsg_t *rep = zmsg_recv(d);
        CHECK(rep, "reply %d did not come", i);
        if (!rep)
            break;
        char *status = zmsg_popstr(rep);
        zframe_t *body = zmsg_pop(rep);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        bool ok = status && strcmp(status, "200") == 0 && body &&
                  msgpack_unpack_next(&u, (const char *)zframe_data(body), zframe_size(body),
                                      NULL) == MSGPACK_UNPACK_SUCCESS;
        if (ok && i % 4 == 3)
            ok = odp_map_get(&u.data, "actor") && !odp_map_get(&u.data, "records");
        else if (ok) {
            const msgpack_object *recs = odp_map_get(&u.data, "records");
            const msgpack_object *id = recs && recs->via.array.size == 1
                                           ? odp_map_get(&recs->via.array.ptr[0], "_id")
                                           : NULL;
            ok = id && id->via.i64 == 1 + i % S_ROWS;
        }
        CHECK(ok, "reply %d (status %s) is not the answer to request %d", i, status ? status : "-",
              i);
        good += ok;
        msgpack_unpacked_destroy(&u);
        zframe_destroy(&body);
        zstr_free(&status);
        zmsg_destroy(&rep);
    }
    CHECK(good == N, "%d of %d replies in order", good, N);
    zsock_destroy(&d);
}

/*  Anonymous and signed-in users without a grant read open rows and are refused the
    conditional ones; a withdrawn entry is neither found nor served. */
static void s_who_gets_what(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = s_anon("reader");
    odp_reply_t rep;
    int st = s_rows(c, NULL, s_other, NULL, NULL, NULL, 5, &rep);
    CHECK(st == 200, "anonymous on open: %d", st);
    odp_reply_free(&rep);
    st = s_rows(c, NULL, s_cond, NULL, NULL, NULL, 5, &rep);
    CHECK(st == 403 && strcmp(h_err_code(&rep), "FORBIDDEN") == 0, "anonymous on conditional: %d",
          st);
    odp_reply_free(&rep);
    odp_user_signup_t su = {0};
    su.login = odp_v_str("rows-reader");
    su.password = odp_v_str("correct horse battery");
    st = h_call(c, &odp_def_user_signup, &su, &rep);
    odp_reply_free(&rep);
    odp_user_signin_t si = {0};
    si.login = su.login;
    si.password = su.password;
    st = h_call(c, &odp_def_user_signin, &si, &rep);
    char token[65] = "";
    tp_str(&rep, "token", token, sizeof token);
    odp_reply_free(&rep);
    st = s_rows(c, token, s_cond, NULL, NULL, NULL, 5, &rep);
    CHECK(st == 403 && strcmp(h_err_code(&rep), "FORBIDDEN") == 0,
          "signed-in without a grant on conditional: %d", st);
    odp_reply_free(&rep);
    odp_entry_show_t sh = {0};
    sh.resource = odp_v_str(s_cond);
    sh.token = odp_v_str(token);
    st = h_call(c, &odp_def_entry_show, &sh, &rep);
    CHECK(st == 200 && !tp_bool(&rep, "may_read"), "entry.show conditional: %d", st);
    odp_reply_free(&rep);
    /*  Withdrawn: not found, not served. */
    odp_client_t *pub = h_client("publisher", NULL);
    odp_release_withdraw_t w = {0};
    w.resource = odp_v_str(s_other);
    w.reason = odp_v_str("行查询测试：撤回");
    st = h_call(pub, &odp_def_release_withdraw, &w, &rep);
    CHECK(st == 200, "withdraw: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&pub);
    st = s_rows(c, NULL, s_other, NULL, NULL, NULL, 5, &rep);
    CHECK(st == 404, "a withdrawn entry's rows: %d", st);
    odp_reply_free(&rep);
    st = s_search(c, "其他部门", NULL, &rep);
    CHECK(st == 200 && h_int(&rep, "count") == 0, "a withdrawn entry found: %d %lld", st,
          (long long)h_int(&rep, "count"));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

/*  The version of a reply and its first record's ver. */
static bool s_answer(odp_reply_t *rep, int64_t version, const char *ver)
{
    const msgpack_object *recs = odp_map_get(&rep->obj, "records");
    const msgpack_object *v =
        recs && recs->via.array.size ? odp_map_get(&recs->via.array.ptr[0], "ver") : NULL;
    return h_int(rep, "version") == version && v && v->type == MSGPACK_OBJECT_STR &&
           v->via.str.size == strlen(ver) && memcmp(v->via.str.ptr, ver, v->via.str.size) == 0;
}

/*  A row query runs on a hint of the release it was last answered from (rows.c); the hint
    decides nothing. On one connection (so one worker, its hint warm from the answers
    before), a new version, the entry made conditional, a grant given and ended, and a
    withdrawal each change the very next answer. */
static void s_hint(void)
{
    CHECK(s_ready, "set-up failed");
    char res[33] = "";
    bool ok = h_department(S_DEPT3, "行查询测试 部门三") == 0 &&
              tp_entry(S_DEPT3, "行查询 版本提示", "dataset", s_dict(), true, res);
    size_t len;
    char *csv = s_csv("v1", 20, &len);
    ok = ok && tp_publish(S_DEPT3, &(tp_opts_t){.resource = res}, csv, len) > 0;
    free(csv);
    CHECK(ok, "entry and its v1");
    odp_client_t *c = s_anon("hinted");
    char token[65];
    s_signin(c, "rows-hinted", token);
    odp_reply_t rep;
    int st;
    for (int i = 0; i < 3; i++) {
        st = s_rows(c, token, res, "{\"id\": 7}", NULL, NULL, 5, &rep);
        CHECK(st == 200 && s_answer(&rep, 1, "v1"), "v1, query %d: %d %s", i, st, h_err_code(&rep));
        odp_reply_free(&rep);
    }
    csv = s_csv("v2", 20, &len);
    CHECK(tp_publish(S_DEPT3, &(tp_opts_t){.resource = res}, csv, len) > 0, "release v2");
    free(csv);
    st = s_rows(c, token, res, "{\"id\": 7}", NULL, NULL, 5, &rep);
    CHECK(st == 200 && s_answer(&rep, 2, "v2"), "after v2's release: %d v%lld", st,
          (long long)h_int(&rep, "version"));
    odp_reply_free(&rep);
    /*  Made conditional: refused at once, then read with a grant until it ends. */
    odp_client_t *p = h_client("registrar", h_keyfile(S_DEPT3));
    odp_catalog_update_t u = {0};
    u.resource = odp_v_str(res);
    u.open_type = odp_v_str("conditional");
    u.access_conditions = odp_v_str("用于科研");
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "conditional: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&p);
    st = s_rows(c, token, res, "{\"id\": 7}", NULL, NULL, 5, &rep);
    CHECK(st == 403 && strcmp(h_err_code(&rep), "FORBIDDEN") == 0, "made conditional: %d %s", st,
          h_err_code(&rep));
    odp_reply_free(&rep);
    int64_t app = s_apply(c, token, res);
    s_grant(S_DEPT3, app);
    for (int i = 0; i < 2; i++) {
        st = s_rows(c, token, res, "{\"id\": 7}", NULL, NULL, 5, &rep);
        CHECK(st == 200 && s_answer(&rep, 2, "v2"), "granted, query %d: %d %s", i, st,
              h_err_code(&rep));
        odp_reply_free(&rep);
    }
    PGconn *pg = h_pg_super();
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE query.applications SET expires_at = now() - interval '1 second' WHERE id = "
             "%lld",
             (long long)app);
    PQclear(PQexec(pg, sql));
    PQfinish(pg);
    st = s_rows(c, token, res, "{\"id\": 7}", NULL, NULL, 5, &rep);
    CHECK(st == 403, "the grant ended: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    /*  Readable again by the public, then withdrawn: not served. */
    p = h_client("registrar", h_keyfile(S_DEPT3));
    u.open_type = odp_v_str("unconditional");
    u.access_conditions = (odp_val_t){0};
    st = h_call(p, &odp_def_catalog_update, &u, &rep);
    CHECK(st == 200, "unconditional: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&p);
    st = s_rows(c, NULL, res, "{\"id\": 7}", NULL, NULL, 5, &rep);
    CHECK(st == 200 && s_answer(&rep, 2, "v2"), "open again: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_t *pub = h_client("publisher", NULL);
    odp_release_withdraw_t w = {0};
    w.resource = odp_v_str(res);
    w.reason = odp_v_str("行查询测试：提示");
    st = h_call(pub, &odp_def_release_withdraw, &w, &rep);
    CHECK(st == 200, "withdraw: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&pub);
    st = s_rows(c, NULL, res, "{\"id\": 7}", NULL, NULL, 5, &rep);
    CHECK(st == 404, "withdrawn: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

/*  A public caller's key takes the loop's fast path as anonymous while no account holds it
    (rows.c); its statement checks that, so a key bound to an account acts as its user from
    the next request: here the user's reads are counted as the user's (usage_users), which
    an anonymous read of the same open entry would not be. */
static void s_bound_fast(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *k = s_anon("bound-fast");
    odp_reply_t rep;
    int st;
    for (int i = 0; i < 3; i++) {
        st = s_rows(k, NULL, s_open, NULL, NULL, NULL, 5, &rep);
        CHECK(st == 200 && h_int(&rep, "total") == S_ROWS, "anonymous, query %d: %d %s", i, st,
              h_err_code(&rep));
        odp_reply_free(&rep);
    }
    char token[65];
    s_signin(k, "rows-bound-fast", token);
    odp_user_bind_key_t b = {0};
    b.token = odp_v_str(token);
    st = h_call(k, &odp_def_user_bind_key, &b, &rep);
    CHECK(st == 200, "bind_key: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    PGconn *pg = h_pg_super();
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM query.usage_users WHERE resource = '%s' AND user_id IN "
             "(SELECT 'user:' || id FROM query.users WHERE login = 'rows-bound-fast')",
             s_open);
    CHECK(h_pg_int(pg, sql) == 0, "no use counted for the user before the key was bound");
    /*  No token: the key alone says who asks, once on the fast path's statement, then on the
        pool that learned it is bound. */
    for (int i = 0; i < 2; i++) {
        st = s_rows(k, NULL, s_open, NULL, NULL, NULL, 5, &rep);
        CHECK(st == 200 && h_int(&rep, "total") == S_ROWS, "bound, query %d: %d %s", i, st,
              h_err_code(&rep));
        odp_reply_free(&rep);
    }
    int64_t until = zclock_mono() + 5000;
    while (h_pg_int(pg, sql) != 1 && zclock_mono() < until)
        zclock_sleep(100);
    CHECK(h_pg_int(pg, sql) == 1, "the bound key's reads are the user's");
    PQfinish(pg);
    odp_client_destroy(&k);
}

/*  ---- the loop's pipelined fast path (issue #10) ---------------------------------------- */

/*  A DEALER to the query service with the test's client certificate: requests sent ahead of
    their replies. */
static zsock_t *s_dealer(void)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    char ep[256], e[256];
    odp_config_endpoint("query", false, false, ep, sizeof ep);
    CHECK(odp_auth_client(d, NULL, e, sizeof e) == 0, "curve client: %s", e);
    zsock_set_sndhwm(d, 0);
    zsock_set_rcvhwm(d, 0);
    zsock_set_rcvtimeo(d, 20000);
    zsock_connect(d, "%s", ep);
    return d;
}

/*  Kinds of request: one row by _id without the total (the fast path when the release is
    hinted), the same with the total (a count: the pool), and whoami (the loop itself). */
enum { S_FAST, S_POOLED, S_WHOAMI };

static void s_send_kind(zsock_t *d, int kind, int64_t id)
{
    msgpack_sbuffer buf, fb;
    msgpack_sbuffer_init(&fb);
    const char *cmd = "whoami";
    if (kind != S_WHOAMI) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &fb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "_id", 3);
        msgpack_pack_int64(&pk, id);
        odp_datastore_search_t m = {0};
        m.resource = odp_v_str(s_open);
        m.filters = odp_v_raw(fb.data, fb.size);
        m.include_total = odp_v_bool(kind == S_POOLED);
        odp_encode_buf(&odp_def_datastore_search, &m, &buf);
        cmd = "datastore.search";
    } else {
        odp_whoami_t m = {0};
        odp_encode_buf(&odp_def_whoami, &m, &buf);
    }
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, ODP_PROTOCOL);
    zmsg_addstr(msg, cmd);
    zmsg_addmem(msg, buf.data, buf.size);
    zmsg_send(&msg, d);
    msgpack_sbuffer_destroy(&buf);
    msgpack_sbuffer_destroy(&fb);
}

/*  The next reply: its status (0 when none came), and whether it answers a request of kind
    for row id (the row, the total only when asked; whoami's actor). */
static int s_recv_kind(zsock_t *d, int kind, int64_t id, bool *answers)
{
    *answers = false;
    zmsg_t *rep = zmsg_recv(d);
    if (!rep)
        return 0;
    char *status = zmsg_popstr(rep);
    zframe_t *body = zmsg_pop(rep);
    int st = status ? atoi(status) : 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (st == 200 && body &&
        msgpack_unpack_next(&u, (const char *)zframe_data(body), zframe_size(body), NULL) ==
            MSGPACK_UNPACK_SUCCESS) {
        if (kind == S_WHOAMI)
            *answers = odp_map_get(&u.data, "actor") && !odp_map_get(&u.data, "records");
        else {
            const msgpack_object *recs = odp_map_get(&u.data, "records");
            const msgpack_object *row =
                recs && recs->type == MSGPACK_OBJECT_ARRAY && recs->via.array.size == 1
                    ? odp_map_get(&recs->via.array.ptr[0], "_id")
                    : NULL;
            *answers = row && row->via.i64 == id &&
                       (odp_map_get(&u.data, "total") != NULL) == (kind == S_POOLED);
        }
    } else if (st == 503 && body &&
               msgpack_unpack_next(&u, (const char *)zframe_data(body), zframe_size(body), NULL) ==
                   MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *code = odp_map_get(&u.data, "code");
        *answers = code && code->type == MSGPACK_OBJECT_STR && code->via.str.size == 11 &&
                   memcmp(code->via.str.ptr, "UNAVAILABLE", 11) == 0;
    }
    msgpack_unpacked_destroy(&u);
    zframe_destroy(&body);
    zstr_free(&status);
    zmsg_destroy(&rep);
    return st;
}

/*  Row queries the loop runs on its pipelined connections, others it hands to the pool and
    commands it answers itself, sent ahead on one connection: every reply answers its own
    request, in request order. */
static void s_fast_in_order(void)
{
    CHECK(s_ready, "set-up failed");
    enum { N = 90 };
    zsock_t *d = s_dealer();
    /*  The first answer gives the release hint that the fast path needs. */
    bool answers;
    s_send_kind(d, S_FAST, 1);
    CHECK(s_recv_kind(d, S_FAST, 1, &answers) == 200 && answers, "first query");
    for (int i = 0; i < N; i++)
        s_send_kind(d, i % 5 == 2 ? S_POOLED : i % 5 == 4 ? S_WHOAMI : S_FAST, 1 + i % S_ROWS);
    int good = 0;
    for (int i = 0; i < N; i++) {
        int kind = i % 5 == 2 ? S_POOLED : i % 5 == 4 ? S_WHOAMI : S_FAST;
        int st = s_recv_kind(d, kind, 1 + i % S_ROWS, &answers);
        CHECK(st == 200 && answers, "reply %d (status %d) is not the answer to request %d", i, st,
              i);
        good += st == 200 && answers;
        if (!st)
            break;
    }
    CHECK(good == N, "%d of %d replies in order", good, N);
    zsock_destroy(&d);
}

/*  The connections the fast path's statements wait on are killed while the statements are
    in their pipelines (held there by a lock on the release's view): each request is still
    answered, in order - its row (the pool runs it again) or UNAVAILABLE, never silence -
    and the service goes on serving. */
static void s_fast_lost(void)
{
    CHECK(s_ready, "set-up failed");
    enum { N = 12 };
    PGconn *pg = h_pg_super(), *killer = h_pg_super();
    char sql[512];
    snprintf(
        sql, sizeof sql,
        "SELECT substr(relation, 12)::bigint FROM publisher.releases WHERE resource = '%s' AND "
        "state = 'current'",
        s_open);
    int64_t release = h_pg_int(pg, sql);
    CHECK(release > 0, "no current release of %s", s_open);
    zsock_t *d = s_dealer();
    bool answers;
    s_send_kind(d, S_FAST, 2);
    CHECK(s_recv_kind(d, S_FAST, 2, &answers) == 200 && answers, "first query");
    PGresult *r = PQexec(pg, "BEGIN; LOCK TABLE publisher.releases IN ACCESS EXCLUSIVE MODE");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "lock: %s", PQerrorMessage(pg));
    PQclear(r);
    for (int i = 0; i < N; i++)
        s_send_kind(d, i % 4 == 3 ? S_WHOAMI : S_FAST, 10 + i);
    const char *waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'query' "
                          "AND wait_event_type = 'Lock'";
    int64_t waiters = 0;
    for (int t = 0; t < 100 && waiters < 1; t++) {
        zclock_sleep(50);
        waiters = h_pg_int(killer, waiting);
    }
    CHECK(waiters >= 1, "no statement of the query service waits on the lock");
    int64_t killed = h_pg_int(killer, "SELECT count(pg_terminate_backend(pid)) FROM "
                                      "pg_stat_activity WHERE application_name = 'query' AND "
                                      "wait_event_type = 'Lock'");
    CHECK(killed >= 1, "no connection killed");
    PQclear(PQexec(pg, "ROLLBACK"));
    int good = 0;
    for (int i = 0; i < N; i++) {
        int kind = i % 4 == 3 ? S_WHOAMI : S_FAST;
        int st = s_recv_kind(d, kind, 10 + i, &answers);
        CHECK((st == 200 || (st == 503 && kind != S_WHOAMI)) && answers,
              "reply %d (status %d) is not an answer to request %d", i, st, i);
        good += answers;
        if (!st)
            break;
    }
    CHECK(good == N, "%d of %d requests answered in order", good, N);
    /*  Still serving: a row and the health of the service. */
    int st = 0;
    for (int t = 0; t < 20; t++) {
        s_send_kind(d, S_FAST, 3);
        st = s_recv_kind(d, S_FAST, 3, &answers);
        if (st == 200 && answers)
            break;
        zclock_sleep(200);
    }
    CHECK(st == 200 && answers, "after the loss: %d", st);
    CHECK(h_health("query", NULL, NULL, NULL), "query is not healthy after the loss");
    zsock_destroy(&d);
    PQfinish(pg);
    PQfinish(killer);
}

const h_case_t t_query_rows_cases[] = {
    {"query rows: set-up (open, conditional and another department's entries released)", s_setup},
    {"query rows: Chinese keyword search finds by title, every term must hold, facets count "
     "every hit, fq filters",
     s_search_chinese},
    {"query rows: every filter operator on integer, text, date, numeric and boolean fields, both "
     "sides of each boundary",
     s_filters},
    {"query rows: hostile filters and sorts get stable codes", s_hostile},
    {"query rows: keyset paging returns every row once while a new version is released", s_paging},
    {"query rows: a download re-imported equals the published rows and its hash matches",
     s_download},
    {"query rows: a granted user reads conditional rows until the grant expires; another "
     "department has the public's rights",
     s_granted},
    {"query rows: odp-user search, query and download; the file has the served hash", s_tool},
    {"query rows: queries and downloads are counted in usage_counts", s_counted},
    {"query rows: pipelined row queries and other commands on one connection are answered in "
     "request order",
     s_in_order},
    {"query rows: anonymous and ungranted users are refused conditional rows; a withdrawn entry "
     "is neither found nor served",
     s_who_gets_what},
    {"query rows: row queries on the loop's pipelines, on the pool and commands the loop answers, "
     "sent ahead on one connection, are answered in request order",
     s_fast_in_order},
    {"query rows: connections killed while row queries wait in the loop's pipelines: every "
     "request answered in order (its row or UNAVAILABLE), the service goes on",
     s_fast_lost},
    {"query rows: the release hint decides nothing: a new version, the entry made conditional, a "
     "grant given and ended, and a withdrawal change the very next answer",
     s_hint},
    {"query rows: a public key read as anonymous on the loop's fast path is read as its user "
     "from the request after it is bound",
     s_bound_fast},
    {NULL, NULL}};
