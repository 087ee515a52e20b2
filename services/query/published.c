/*  What the publisher made public, as readers reach it (docs/design.md "What the publisher
    makes public"): a release found by entry and version, checked against the reader
    (query.may_read), and its fields. Identifiers used in SQL come only from here: the
    relation is the release's own view and field names are those of release_fields,
    quoted. */
#include "query.h"

#include <czmq.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void q_pack_str(msgpack_packer *pk, const char *s)
{
    if (!s) {
        msgpack_pack_nil(pk);
        return;
    }
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void q_owner(const odp_req_t *req, const q_who_t *who, char *buf, size_t size)
{
    if (who->kind == Q_ANONYMOUS && req->actor->key[0])
        snprintf(buf, size, "key:%s", req->actor->key);
    else
        snprintf(buf, size, "%s", who->kind == Q_ANONYMOUS ? req->actor_str : who->str);
}

void q_release_sql(char *buf, size_t size, int p)
{
    /*  Several tables of one entry may share a version number: the latest release wins. */
    snprintf(buf, size,
             "SELECT r.id, r.version, coalesce(r.relation, '') AS relation, coalesce(r.rows, 0) "
             "AS rows, coalesce(r.bytes, 0) AS bytes, e.department, coalesce(r.sha256, '') AS "
             "sha256, r.kind, e.open_type, may_read($%d::bigint, e.resource) AS may_read, EXISTS "
             "(SELECT 1 FROM applications a WHERE a.user_id = $%d::bigint AND a.resource = "
             "e.resource AND a.state = 'granted') AS had_grant "
             "FROM publisher.entries e JOIN publisher.releases r ON r.resource = e.resource "
             "WHERE e.resource = $%d AND e.state = 'published' AND e.open_type <> 'not_open' "
             "AND r.state IN ('current', 'superseded') AND CASE WHEN $%d::bigint IS NOT NULL THEN "
             "r.id = $%d::bigint WHEN $%d::int IS NOT NULL THEN r.version = $%d::int ELSE r.id = "
             "e.current_release END ORDER BY r.id DESC LIMIT 1",
             p + 2, p + 2, p, p + 3, p + 3, p + 1, p + 1);
}

static int s_release(odp_req_t *req, const q_who_t *who, const odp_val_t *resource, int64_t version,
                     int64_t release, bool files, q_release_t *out);

int q_release(odp_req_t *req, const q_who_t *who, const odp_val_t *resource, int64_t version,
              int64_t release, q_release_t *out)
{
    return s_release(req, who, resource, version, release, false, out);
}

int q_release_or_file(odp_req_t *req, const q_who_t *who, const odp_val_t *resource,
                      int64_t version, int64_t release, q_release_t *out)
{
    return s_release(req, who, resource, version, release, true, out);
}

static int s_release(odp_req_t *req, const q_who_t *who, const odp_val_t *resource, int64_t version,
                     int64_t release, bool files, q_release_t *out)
{
    memset(out, 0, sizeof *out);
    char uid[24], ver[24], rel[24];
    snprintf(uid, sizeof uid, "%" PRId64, who->user);
    snprintf(ver, sizeof ver, "%" PRId64, version);
    snprintf(rel, sizeof rel, "%" PRId64, release);
    const char *vals[4] = {resource->str, version ? ver : NULL, who->kind == Q_USER ? uid : NULL,
                           release ? rel : NULL};
    int lens[4] = {(int)resource->len, -1, -1, -1};
    char sql[2048];
    q_release_sql(sql, sizeof sql, 1);
    PGresult *r = q_exec(req, sql, 4, vals, lens);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the release");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, version ? "version" : "resource",
                            version ? "this entry has no published version with this number"
                                    : "no published entry open to the public has this code");
    }
    out->release = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    out->version = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    snprintf(out->relation, sizeof out->relation, "%s", PQgetvalue(r, 0, 2));
    out->rows = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    out->bytes = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    snprintf(out->department, sizeof out->department, "%s", PQgetvalue(r, 0, 5));
    snprintf(out->sha256, sizeof out->sha256, "%s", PQgetvalue(r, 0, 6));
    snprintf(out->kind, sizeof out->kind, "%s", PQgetvalue(r, 0, 7));
    snprintf(out->open_type, sizeof out->open_type, "%s", PQgetvalue(r, 0, 8));
    out->may_read = PQgetvalue(r, 0, 9)[0] == 't';
    out->had_grant = PQgetvalue(r, 0, 10)[0] == 't';
    odp_v_cstr(resource, out->resource, sizeof out->resource);
    PQclear(r);
    if (!out->may_read)
        return odp_req_fail(req, ODP_E_FORBIDDEN, "resource", "%s",
                            who->kind != Q_USER ? "conditional: sign in and apply "
                                                  "(application.submit)"
                            : out->had_grant    ? "conditional: the grant has expired; apply again"
                                                : "conditional: apply first (application.submit)");
    if (files && strcmp(out->kind, "file") == 0)
        return 0;
    /*  The publisher names its views publisher.r<release>; anything else is not read. */
    char expect[40];
    snprintf(expect, sizeof expect, "publisher.r%" PRId64, out->release);
    if (strcmp(out->relation, expect) != 0)
        return odp_req_fail(
            req, ODP_E_INVALID_STATE, "resource", "a %s entry has no rows to serve%s", out->kind,
            files || strcmp(out->kind, "file") != 0 ? ""
                                                    : " (download.begin fetches a file's bytes)");
    return 0;
}

const char *q_sql_type(const char *field_type)
{
    static const char *const map[][2] = {{"integer", "bigint"},  {"numeric", "numeric"},
                                         {"date", "date"},       {"timestamp", "timestamptz"},
                                         {"boolean", "boolean"}, {"text", "text"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], field_type) == 0)
            return map[i][1];
    return "text";
}

/*  A release's fields never change once it is prepared: they are read once and kept,
    release by release (the table is emptied when it grows past S_FIELDS_CACHE). */
#define S_FIELDS_CACHE 1000
typedef struct {
    int n;
    q_field_t f[];
} s_fields_t;
static void s_cache_free(void **item)
{
    free(*item);
    *item = NULL;
}

/*  Per thread (the loop's, each pool worker's), freed when a worker ends. */
static pthread_key_t s_key;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_drop(void *p)
{
    zhashx_t *h = p;
    zhashx_destroy(&h);
}

static void s_make_key(void)
{
    pthread_key_create(&s_key, s_drop);
}

static zhashx_t *s_mine(void)
{
    pthread_once(&s_once, s_make_key);
    zhashx_t *h = pthread_getspecific(s_key);
    if (!h && (h = zhashx_new())) {
        zhashx_set_destructor(h, s_cache_free);
        if (pthread_setspecific(s_key, h) != 0)
            zhashx_destroy(&h);
    }
    return h;
}

static int s_copy(const s_fields_t *c, q_field_t **out)
{
    *out = calloc((size_t)c->n + 1, sizeof **out);
    if (!*out)
        return -1;
    memcpy(*out, c->f, (size_t)c->n * sizeof **out);
    return c->n;
}

int q_fields(odp_req_t *req, int64_t release, q_field_t **out)
{
    char rel[24];
    snprintf(rel, sizeof rel, "%" PRId64, release);
    zhashx_t *cache = s_mine();
    const s_fields_t *hit = cache ? zhashx_lookup(cache, rel) : NULL;
    if (hit) {
        int n = s_copy(hit, out);
        return n < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory") : n;
    }
    const char *vals[1] = {rel};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT name, type, indexed FROM publisher.release_fields "
                              "WHERE release = $1 ORDER BY position",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the fields");
    int n = PQntuples(r);
    q_field_t *f = calloc((size_t)n + 1, sizeof *f);
    if (!f) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        snprintf(f[i].name, sizeof f[i].name, "%s", PQgetvalue(r, i, 0));
        snprintf(f[i].type, sizeof f[i].type, "%s", PQgetvalue(r, i, 1));
        f[i].indexed = PQgetvalue(r, i, 2)[0] == 't';
        /*  Quoted as PostgreSQL quotes identifiers: inner quotes doubled. */
        size_t o = 0;
        f[i].ident[o++] = '"';
        for (const char *c = f[i].name; *c && o < sizeof f[i].ident - 3; c++) {
            if (*c == '"')
                f[i].ident[o++] = '"';
            f[i].ident[o++] = *c;
        }
        f[i].ident[o++] = '"';
        f[i].ident[o] = '\0';
    }
    PQclear(r);
    *out = f;
    s_fields_t *c = n > 0 ? malloc(sizeof *c + (size_t)n * sizeof c->f[0]) : NULL;
    if (c && cache) {
        c->n = n;
        memcpy(c->f, f, (size_t)n * sizeof c->f[0]);
        if (zhashx_size(cache) >= S_FIELDS_CACHE)
            zhashx_purge(cache);
        zhashx_update(cache, rel, c);
    } else
        free(c);
    return n;
}
