/*  Row query (R5.8b, R8.2b) with CKAN datastore_search semantics over a published version:
    filters (equality, lists, and CKAN 2.12's eq/in/gt/gte/lt/lte/$and/$or), q, fields,
    sort, limit, offset, include_total, records_format, and keyset paging (next_page) that
    costs the same at page 10,000 as at page 1. Identifiers come from the release's fields
    only and every value is a parameter cast to its field's type. Sorting is on indexed
    fields or _id (the row number), so no request sorts a large version without an index. */
#include "query.h"

#include "common/buf.h"
#include "common/config.h"

#include <csv.h>
#include <czmq.h>
#include <pthread.h>
#include <jansson.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_PARAMS 2000
#define S_MAX_DEPTH  8

typedef struct {
    odp_req_t *req;
    q_field_t *fields;
    int nfields;
    odp_buf_t *sql;
    char *vals[S_MAX_PARAMS];
    int n;
} s_build_t;

static void s_sql(s_build_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_sql(s_build_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    odp_buf_append(b->sql, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static const q_field_t s_row_no = {"_id", "row_no", "integer", true};

static const q_field_t *s_field(const s_build_t *b, const char *name, size_t len)
{
    if (len == 3 && memcmp(name, "_id", 3) == 0)
        return &s_row_no;
    for (int i = 0; i < b->nfields; i++)
        if (strlen(b->fields[i].name) == len && memcmp(b->fields[i].name, name, len) == 0)
            return &b->fields[i];
    return NULL;
}

/*  A filter value as the text its field's type parses, checked here so that a wrong type
    is named with its field: numbers for integer and numeric fields, true/false for
    boolean ones, text for the rest (dates and timestamps are parsed by PostgreSQL, whose
    refusal is 422 INVALID_VALUE too). Returns the parameter's number, or -1. */
static int s_value(s_build_t *b, const q_field_t *f, const msgpack_object *v)
{
    odp_req_t *req = b->req;
    char tmp[64];
    const char *s = NULL;
    size_t len = 0;
    bool number = strcmp(f->type, "integer") == 0 || strcmp(f->type, "numeric") == 0;
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(tmp, sizeof tmp, "%" PRIu64, v->via.u64);
        s = tmp;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(tmp, sizeof tmp, "%" PRId64, v->via.i64);
        s = tmp;
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (strcmp(f->type, "numeric") != 0)
            return odp_req_fail(req, ODP_E_WRONG_TYPE, f->name,
                                "%s is %s: a fraction does not compare with it", f->name, f->type);
        snprintf(tmp, sizeof tmp, "%.17g", v->via.f64);
        s = tmp;
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        if (strcmp(f->type, "boolean") != 0)
            return odp_req_fail(req, ODP_E_WRONG_TYPE, f->name, "%s is %s, not boolean", f->name,
                                f->type);
        s = v->via.boolean ? "true" : "false";
        break;
    case MSGPACK_OBJECT_STR:
        s = v->via.str.ptr;
        len = v->via.str.size;
        if (!odp_utf8_valid(s, len))
            return odp_req_fail(req, ODP_E_BAD_UTF8, f->name, "a value is not valid UTF-8");
        if (len > 10000)
            return odp_req_fail(req, ODP_E_TOO_LONG, f->name, "a value is longer than 10000 bytes");
        break;
    default:
        return odp_req_fail(req, ODP_E_WRONG_TYPE, f->name,
                            "a value of %s is a string, a number or a boolean", f->name);
    }
    if (s != tmp && v->type != MSGPACK_OBJECT_BOOLEAN && number) {
        /*  A number sent as text: it must read as one, whole for integer fields. */
        char num[64];
        if (len == 0 || len >= sizeof num)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, f->name, "%s is %s: not a number",
                                f->name, f->type);
        memcpy(num, s, len);
        num[len] = '\0';
        char *end;
        errno = 0;
        if (strcmp(f->type, "integer") == 0)
            (void)strtoll(num, &end, 10);
        else
            (void)strtod(num, &end);
        if (*end || errno)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, f->name, "%s is %s: not a number",
                                f->name, f->type);
    } else if (s == tmp && !number && strcmp(f->type, "text") != 0)
        return odp_req_fail(req, ODP_E_WRONG_TYPE, f->name, "%s is %s, not a number", f->name,
                            f->type);
    if (strcmp(f->type, "boolean") == 0 && v->type == MSGPACK_OBJECT_STR &&
        !(len == 4 && memcmp(s, "true", 4) == 0) && !(len == 5 && memcmp(s, "false", 5) == 0))
        return odp_req_fail(req, ODP_E_INVALID_VALUE, f->name, "%s is boolean: true or false",
                            f->name);
    if (b->n >= S_MAX_PARAMS)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "filters", "filters hold more than %d values",
                            S_MAX_PARAMS);
    if (!len)
        len = strlen(s);
    b->vals[b->n] = strndup(s, len);
    if (!b->vals[b->n])
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    return ++b->n;
}

static int s_list(s_build_t *b, const q_field_t *f, const msgpack_object *arr)
{
    if (arr->via.array.size == 0) {
        s_sql(b, "false");
        return 0;
    }
    s_sql(b, "%s IN (", f->ident);
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        int p = s_value(b, f, &arr->via.array.ptr[i]);
        if (p < 0)
            return -1;
        s_sql(b, "%s$%d::%s", i ? ", " : "", p, q_sql_type(f->type));
    }
    s_sql(b, ")");
    return 0;
}

static int s_filter(s_build_t *b, const msgpack_object *obj, int depth);

/*  {"op": value, ...} on one field, every operator holding. */
static int s_ops(s_build_t *b, const q_field_t *f, const msgpack_object *ops)
{
    static const struct {
        const char *op;
        const char *sql;
    } cmp[] = {{"eq", "="}, {"gt", ">"}, {"gte", ">="}, {"lt", "<"}, {"lte", "<="}};
    if (ops->via.map.size == 0)
        return odp_req_fail(b->req, ODP_E_INVALID_VALUE, f->name, "an empty operator map");
    s_sql(b, "(");
    for (uint32_t i = 0; i < ops->via.map.size; i++) {
        const msgpack_object *k = &ops->via.map.ptr[i].key, *v = &ops->via.map.ptr[i].val;
        if (i)
            s_sql(b, " AND ");
        if (k->type != MSGPACK_OBJECT_STR)
            return odp_req_fail(b->req, ODP_E_BAD_KEY, f->name, "an operator is not text");
        if (k->via.str.size == 2 && memcmp(k->via.str.ptr, "in", 2) == 0) {
            if (v->type != MSGPACK_OBJECT_ARRAY)
                return odp_req_fail(b->req, ODP_E_WRONG_TYPE, f->name, "in takes a list");
            if (s_list(b, f, v) < 0)
                return -1;
            continue;
        }
        size_t c = 0;
        for (; c < sizeof cmp / sizeof cmp[0]; c++)
            if (strlen(cmp[c].op) == k->via.str.size &&
                memcmp(cmp[c].op, k->via.str.ptr, k->via.str.size) == 0)
                break;
        if (c == sizeof cmp / sizeof cmp[0])
            return odp_req_fail(b->req, ODP_E_INVALID_VALUE, f->name,
                                "operators are eq, in, gt, gte, lt and lte");
        if (c > 0 && strcmp(f->type, "boolean") == 0)
            return odp_req_fail(b->req, ODP_E_INVALID_VALUE, f->name,
                                "%s is boolean: it has no order", f->name);
        if (v->type == MSGPACK_OBJECT_NIL && c == 0) {
            s_sql(b, "%s IS NULL", f->ident);
            continue;
        }
        int p = s_value(b, f, v);
        if (p < 0)
            return -1;
        s_sql(b, "%s %s $%d::%s", f->ident, cmp[c].sql, p, q_sql_type(f->type));
    }
    s_sql(b, ")");
    return 0;
}

/*  A filter map: each key a field (value: equality, a list, or operators) or $and/$or
    (a list of filter maps); every key holds. */
static int s_filter(s_build_t *b, const msgpack_object *obj, int depth)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return odp_req_fail(b->req, ODP_E_WRONG_TYPE, "filters",
                            "filters are a map of field to value, list or operators");
    if (depth > S_MAX_DEPTH)
        return odp_req_fail(b->req, ODP_E_TOO_DEEP, "filters",
                            "filters nest $and/$or deeper than %d", S_MAX_DEPTH);
    if (obj->via.map.size == 0) {
        s_sql(b, "true");
        return 0;
    }
    s_sql(b, "(");
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr[i].key, *v = &obj->via.map.ptr[i].val;
        if (i)
            s_sql(b, " AND ");
        if (k->type != MSGPACK_OBJECT_STR)
            return odp_req_fail(b->req, ODP_E_BAD_KEY, "filters", "a filter key is not text");
        bool and_ = k->via.str.size == 4 && memcmp(k->via.str.ptr, "$and", 4) == 0;
        bool or_ = k->via.str.size == 3 && memcmp(k->via.str.ptr, "$or", 3) == 0;
        if (and_ || or_) {
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size == 0)
                return odp_req_fail(b->req, ODP_E_WRONG_TYPE, "filters",
                                    "%s takes a non-empty list of filter maps",
                                    and_ ? "$and" : "$or");
            s_sql(b, "(");
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                if (j)
                    s_sql(b, and_ ? " AND " : " OR ");
                if (s_filter(b, &v->via.array.ptr[j], depth + 1) < 0)
                    return -1;
            }
            s_sql(b, ")");
            continue;
        }
        const q_field_t *f = s_field(b, k->via.str.ptr, k->via.str.size);
        if (!f)
            return odp_req_fail(b->req, ODP_E_INVALID_VALUE, "filters",
                                "no field %.*s in this version's dictionary",
                                (int)(k->via.str.size > 63 ? 63 : k->via.str.size), k->via.str.ptr);
        if (v->type == MSGPACK_OBJECT_ARRAY) {
            if (s_list(b, f, v) < 0)
                return -1;
        } else if (v->type == MSGPACK_OBJECT_MAP) {
            if (s_ops(b, f, v) < 0)
                return -1;
        } else if (v->type == MSGPACK_OBJECT_NIL) {
            s_sql(b, "%s IS NULL", f->ident);
        } else {
            int p = s_value(b, f, v);
            if (p < 0)
                return -1;
            s_sql(b, "%s = $%d::%s", f->ident, p, q_sql_type(f->type));
        }
    }
    s_sql(b, ")");
    return 0;
}

static void s_build_free(s_build_t *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->vals[i]);
    odp_buf_destroy(&b->sql);
    free(b->fields);
}

/*  The total of a filtered query: exact when counting fits the budget, else the planner's
    estimate, flagged. */
static int s_total(odp_req_t *req, s_build_t *b, const char *from_where, int64_t *total,
                   bool *estimated)
{
    *estimated = false;
    char *sql = NULL;
    if (asprintf(&sql, "SELECT count(*) %s", from_where) < 0)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    char budget[48];
    snprintf(budget, sizeof budget, "SET LOCAL statement_timeout = %" PRId64,
             odp_config_int("query", "TOTAL_BUDGET_MS", 300));
    PGresult *r = NULL;
    if (odp_db_begin(req->db) == 0 && odp_db_cmd(req->db, budget, 0, NULL, NULL) == 0)
        r = odp_db_exec(req->db, sql, b->n, (const char *const *)b->vals, NULL);
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok)
        *total = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    bool timed_out = !ok && r && strcmp(odp_db_state(r), "57014") == 0;
    if (ok)
        odp_db_commit(req->db);
    else
        odp_db_rollback(req->db);
    if (!ok && !timed_out) {
        free(sql);
        return odp_req_db_fail(req, r, "the total");
    }
    PQclear(r);
    if (!ok) {
        char *explain = NULL;
        if (asprintf(&explain, "EXPLAIN (FORMAT JSON) SELECT 1 %s", from_where) < 0) {
            free(sql);
            return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        }
        r = odp_db_exec(req->db, explain, b->n, (const char *const *)b->vals, NULL);
        free(explain);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            free(sql);
            return odp_req_db_fail(req, r, "the estimate");
        }
        json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        *total = (int64_t)json_number_value(
            json_object_get(json_object_get(json_array_get(j, 0), "Plan"), "Plan Rows"));
        json_decref(j);
        PQclear(r);
        *estimated = true;
    }
    free(sql);
    return 0;
}

/*  A value from PostgreSQL's text output, typed for the reply. numeric stays text: its
    digits are exact, a double's would not be. */
static void s_pack_value(msgpack_packer *pk, PGresult *r, int i, int c, const char *type)
{
    if (PQgetisnull(r, i, c)) {
        msgpack_pack_nil(pk);
        return;
    }
    const char *v = PQgetvalue(r, i, c);
    if (strcmp(type, "integer") == 0)
        msgpack_pack_int64(pk, strtoll(v, NULL, 10));
    else if (strcmp(type, "boolean") == 0)
        v[0] == 't' ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    else {
        size_t n = (size_t)PQgetlength(r, i, c);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, v, n);
    }
}

/*  The release a request (entry, version, next_page's pin) was last answered from, shared
    by the loop and the pool under a lock (issue #10): with it the release's checks and the rows are
   one statement, not two. It is a hint, never trusted: the statement checks the release as
   q_release does (published, current or superseded, who may read it) and reads rows only when the
    release it finds is the hinted one, so a new version, a withdrawal or a grant given or
    ended answers at once. Anything else than rows from the hinted release (S_STALE) drops
    the hint and the request runs the checked way: q_release first, then the rows. */
#define S_HINTS 1000
#define S_STALE 1

static pthread_mutex_t s_hint_lock = PTHREAD_MUTEX_INITIALIZER;
static zhashx_t *s_hint_table; /* key -> release (int64_t), made at first use */

static void s_hint_free(void **item)
{
    free(*item);
    *item = NULL;
}

/*  The table; called with the lock held. */
static zhashx_t *s_hints(void)
{
    if (!s_hint_table && (s_hint_table = zhashx_new()))
        zhashx_set_destructor(s_hint_table, s_hint_free);
    return s_hint_table;
}

/*  The hint's key, or false for an entry code no hint is kept for. */
static bool s_hint_key_of(const odp_val_t *resource, int64_t version, int64_t pin, char *key,
                          size_t size)
{
    if (resource->len == 0 || resource->len > 64 || memchr(resource->str, '\0', resource->len))
        return false;
    snprintf(key, size, "%.*s/%" PRId64 "/%" PRId64, (int)resource->len, resource->str, version,
             pin);
    return true;
}

static int64_t s_hint_get(const char *key)
{
    pthread_mutex_lock(&s_hint_lock);
    zhashx_t *h = s_hints();
    const int64_t *v = h ? zhashx_lookup(h, key) : NULL;
    int64_t release = v ? *v : 0;
    pthread_mutex_unlock(&s_hint_lock);
    return release;
}

static void s_hint_put(const char *key, int64_t release)
{
    int64_t *v = malloc(sizeof *v);
    if (!v)
        return;
    *v = release;
    pthread_mutex_lock(&s_hint_lock);
    zhashx_t *h = s_hints();
    if (h) {
        if (zhashx_size(h) >= S_HINTS)
            zhashx_purge(h);
        zhashx_update(h, key, v);
    } else
        free(v);
    pthread_mutex_unlock(&s_hint_lock);
}

static void s_hint_drop(const char *key)
{
    pthread_mutex_lock(&s_hint_lock);
    zhashx_t *h = s_hints();
    if (h)
        zhashx_delete(h, key);
    pthread_mutex_unlock(&s_hint_lock);
}

/*  The public keys seen bound to an account (the pool resolved them to a user), kept in the
    hints' table under a name no entry code takes ("#" and the key): their requests go
    straight to the pool, which looks the key up. A key not known bound takes the fast path
    as anonymous, and its statement checks that no account holds it; learning, like the
    hints, decides nothing. */
static void s_bound_name(const char *pubkey, char *name, size_t size)
{
    snprintf(name, size, "#%s", pubkey);
}

static bool s_bound_known(const char *pubkey)
{
    char name[64];
    s_bound_name(pubkey, name, sizeof name);
    return s_hint_get(name) != 0;
}

static void s_bound_learn(const char *pubkey)
{
    char name[64];
    s_bound_name(pubkey, name, sizeof name);
    s_hint_put(name, 1);
}

/*  A row query on its way: built (s_rows_build), run here or by the loop (the fast path),
    answered from its result (s_rows_reply). */
typedef struct {
    s_build_t b;
    const q_field_t *cols[501];
    int ncols;
    char *sql;
    char *from_where; /* for the total */
    bool filtered;
    int64_t limit, offset;
    int64_t release;
    bool checked; /* rel is q_release's answer; else the statement checks the release */
    q_release_t rel;
    q_who_t who;
    const char *format;
    char key[128]; /* the hint's, when hinted */
    bool keyed;    /* hinted for a public caller's key: the statement checks it is unbound */
    /*  The hinted statement's parameters: the rows' (text), then q_release_sql's. */
    const char **vals;
    int *lens;
    int nvals;
    char uid[24], ver[24], pin[24];
} s_rows_t;

static void s_rows_free(s_rows_t *q)
{
    if (!q)
        return;
    s_build_free(&q->b);
    free(q->sql);
    free(q->from_where);
    free(q->vals);
    free(q->lens);
    free(q);
}

static int s_rows_params(odp_req_t *req, s_rows_t *q, int64_t pin)
{
    const odp_datastore_search_t *m = req->msg;
    const s_build_t *b = &q->b;
    int n = b->n + 4 + (q->keyed ? 1 : 0);
    q->vals = calloc((size_t)n, sizeof *q->vals);
    q->lens = calloc((size_t)n, sizeof *q->lens);
    if (!q->vals || !q->lens)
        return -1;
    q->nvals = n;
    snprintf(q->uid, sizeof q->uid, "%" PRId64, q->who.user);
    snprintf(q->ver, sizeof q->ver, "%" PRId64, m->version.present ? m->version.i : 0);
    snprintf(q->pin, sizeof q->pin, "%" PRId64, pin);
    for (int i = 0; i < n; i++)
        q->lens[i] = -1;
    for (int i = 0; i < b->n; i++)
        q->vals[i] = b->vals[i];
    q->vals[b->n] = m->resource.str;
    q->lens[b->n] = (int)m->resource.len;
    q->vals[b->n + 1] = m->version.present && m->version.i ? q->ver : NULL;
    q->vals[b->n + 2] = q->who.kind == Q_USER ? q->uid : NULL;
    q->vals[b->n + 3] = pin ? q->pin : NULL;
    if (q->keyed)
        q->vals[b->n + 4] = req->actor->key;
    return 0;
}

/*  Build the row query of release, checked (q_release's answer) or hinted (checked NULL:
    the statement checks it) into q. 0, or -1 with req->err set, or S_STALE (hinted: it may
    come from the hint, another version's fields, so the checked path decides it). */
static int s_rows_build(odp_req_t *req, s_rows_t *q, int64_t pin, int64_t after, int64_t release,
                        const q_release_t *checked)
{
    const odp_datastore_search_t *m = req->msg;
    const int fail = checked ? -1 : S_STALE;
    s_build_t *b = &q->b;
    b->req = req;
    q->release = release;
    q->checked = checked != NULL;
    if (checked)
        q->rel = *checked;
    b->nfields = q_fields(req, release, &b->fields);
    if (b->nfields < 0)
        return fail;
    b->sql = odp_buf_new();
    int rc = fail;
    /*  The columns: _id, then the requested fields (all by default), each once. */
    const q_field_t **cols = q->cols;
    int ncols = 0;
    cols[ncols++] = &s_row_no;
    if (m->fields.present) {
        const msgpack_object_array *a = &m->fields.obj->via.array;
        for (uint32_t i = 0; i < a->size; i++) {
            const q_field_t *f = s_field(b, a->ptr[i].via.str.ptr, a->ptr[i].via.str.size);
            if (!f) {
                odp_req_fail(req, ODP_E_INVALID_VALUE, "fields",
                             "no field %.*s in this version's dictionary",
                             (int)a->ptr[i].via.str.size, a->ptr[i].via.str.ptr);
                goto done;
            }
            bool seen = false;
            for (int k = 0; k < ncols; k++)
                seen |= cols[k] == f;
            if (!seen)
                cols[ncols++] = f;
        }
    } else
        for (int i = 0; i < b->nfields && ncols < 501; i++)
            cols[ncols++] = &b->fields[i];
    s_sql(b, "FROM publisher.r%" PRId64 " WHERE ", release);
    bool filtered = false;
    if (m->filters.present) {
        if (s_filter(b, m->filters.obj, 0) < 0)
            goto done;
        filtered = m->filters.obj->via.map.size > 0;
    } else
        s_sql(b, "true");
    if (m->q.present) {
        /*  Full text over the text fields: a substring, case-insensitive. */
        if (b->n >= S_MAX_PARAMS) {
            odp_req_fail(req, ODP_E_INVALID_VALUE, "q", "too many values");
            goto done;
        }
        char *pat = NULL;
        odp_buf_t *e = odp_buf_new();
        odp_buf_append(e, "%", 1);
        for (size_t i = 0; i < m->q.len; i++) {
            char c = m->q.str[i];
            if (c == '%' || c == '_' || c == '\\')
                odp_buf_append(e, "\\", 1);
            odp_buf_append(e, &c, 1);
        }
        odp_buf_append(e, "%", 1);
        pat = strdup(odp_buf_data(e));
        odp_buf_destroy(&e);
        b->vals[b->n++] = pat;
        s_sql(b, " AND (false");
        for (int i = 0; i < b->nfields; i++)
            if (strcmp(b->fields[i].type, "text") == 0)
                s_sql(b, " OR %s ILIKE $%d", b->fields[i].ident, b->n);
        s_sql(b, ")");
        filtered = true;
    }
    size_t where_len = odp_buf_size(b->sql);
    if (m->next_page.present) {
        /*  A parameter, so that every page runs the one prepared statement. */
        if (b->n >= S_MAX_PARAMS || asprintf(&b->vals[b->n], "%" PRId64, after) < 0) {
            odp_req_fail(req, ODP_E_INVALID_VALUE, "filters", "too many values");
            goto done;
        }
        b->n++;
        s_sql(b, " AND row_no > $%d::bigint", b->n);
    }
    /*  Sort: _id or indexed fields, then row_no so that pages never overlap. */
    char order[600] = "";
    if (m->sort.present) {
        char sort[201];
        odp_v_cstr(&m->sort, sort, sizeof sort);
        char *save = NULL;
        for (char *part = strtok_r(sort, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
            while (*part == ' ')
                part++;
            char *sp = strchr(part, ' ');
            const char *dir = "ASC";
            if (sp) {
                *sp = '\0';
                char *d = sp + 1;
                while (*d == ' ')
                    d++;
                size_t dl = strlen(d);
                while (dl && d[dl - 1] == ' ')
                    d[--dl] = '\0';
                if (strcasecmp(d, "desc") == 0)
                    dir = "DESC";
                else if (strcasecmp(d, "asc") != 0) {
                    odp_req_fail(req, ODP_E_INVALID_VALUE, "sort",
                                 "sort is \"field [asc|desc], ...\"");
                    goto done;
                }
            }
            const q_field_t *f = s_field(b, part, strlen(part));
            if (!f) {
                odp_req_fail(req, ODP_E_INVALID_VALUE, "sort",
                             "no field %.63s in this version's dictionary", part);
                goto done;
            }
            if (!f->indexed) {
                odp_req_fail(req, ODP_E_INVALID_VALUE, "sort",
                             "%s has no index: sort on _id or an indexed field", f->name);
                goto done;
            }
            if (strlen(order) > 400) {
                odp_req_fail(req, ODP_E_INVALID_VALUE, "sort", "too many sort fields");
                goto done;
            }
            size_t o = strlen(order);
            snprintf(order + o, sizeof order - o, "%s %s, ", f->ident, dir);
        }
    }
    int64_t limit = m->limit.present ? m->limit.i : 100;
    int64_t offset = m->offset.present ? m->offset.i : 0;
    char *from_where = strndup(odp_buf_data(b->sql), where_len);
    char *sql = NULL;
    odp_buf_t *sel = odp_buf_new();
    for (int i = 0; i < ncols; i++) {
        odp_buf_append(sel, i ? ", " : "", i ? 2 : 0);
        odp_buf_append(sel, cols[i]->ident, strlen(cols[i]->ident));
    }
    int as;
    if (checked)
        as = asprintf(&sql, "SELECT %s %s ORDER BY %srow_no LIMIT %" PRId64 " OFFSET %" PRId64,
                      odp_buf_data(sel), odp_buf_data(b->sql), order, limit, offset);
    else {
        /*  The release's checks and its rows in one statement: the rows are read only when
            the release found is the hinted one and who may read it. A lateral subquery is
            joined by a nested loop, one release row outside, so the rows keep its order. */
        char check[2048], unbound[128] = "";
        q_release_sql(check, sizeof check, b->n + 1);
        /*  A public caller's key: read as anonymous only while no account holds the key. */
        if (q->keyed)
            snprintf(unbound, sizeof unbound,
                     " AND NOT EXISTS (SELECT 1 FROM user_keys k WHERE k.public_key = $%d)",
                     b->n + 5);
        as = asprintf(
            &sql,
            "SELECT v.id, v.version, v.relation, v.rows, v.department, v.ok, x.* "
            "FROM (SELECT c.*, c.may_read%s AS ok FROM (%s) c) v LEFT JOIN LATERAL (SELECT %s "
            "%s AND v.ok AND v.id = %" PRId64 " ORDER BY %srow_no LIMIT %" PRId64 " OFFSET %" PRId64
            ") x ON true",
            unbound, check, odp_buf_data(sel), odp_buf_data(b->sql), release, order, limit, offset);
    }
    odp_buf_destroy(&sel);
    q->sql = sql;
    q->from_where = from_where;
    q->ncols = ncols;
    q->filtered = filtered;
    q->limit = limit;
    q->offset = offset;
    if (as < 0 || !from_where || (!checked && s_rows_params(req, q, pin) < 0)) {
        odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
        goto done;
    }
    rc = 0;
done:
    return rc;
}

/*  Answer from the statement's result (taken). 0, -1 with req->err set, or S_STALE
    (hinted: the statement found another release than the hinted one, or none, or one the
    caller may not read, or failed). */
static int s_rows_reply(odp_req_t *req, s_rows_t *q, PGresult *r)
{
    const odp_datastore_search_t *m = req->msg;
    const int64_t release = q->release;
    const q_field_t **cols = q->cols;
    const int ncols = q->ncols;
    const int64_t limit = q->limit, offset = q->offset;
    const char *format = q->format;
    q_release_t rel = q->rel;
    int off = 0; /* columns before the rows' */
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (q->checked)
            return odp_req_db_fail(req, r, "the rows");
        PQclear(r);
        return S_STALE;
    }
    if (!q->checked) {
        off = 6;
        char expect[40];
        snprintf(expect, sizeof expect, "publisher.r%" PRId64, release);
        if (PQntuples(r) == 0 || strtoll(PQgetvalue(r, 0, 0), NULL, 10) != release ||
            PQgetvalue(r, 0, 5)[0] != 't' || strcmp(PQgetvalue(r, 0, 2), expect) != 0) {
            PQclear(r);
            return S_STALE;
        }
        memset(&rel, 0, sizeof rel);
        rel.release = release;
        rel.version = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        rel.rows = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        snprintf(rel.department, sizeof rel.department, "%s", PQgetvalue(r, 0, 4));
        odp_v_cstr(&m->resource, rel.resource, sizeof rel.resource);
    }
    /*  From here on the release is checked: failures are the request's own. */
    int64_t total = rel.rows;
    bool estimated = false;
    bool with_total = !m->include_total.present || m->include_total.b;
    if (with_total && q->filtered && s_total(req, &q->b, q->from_where, &total, &estimated) < 0) {
        PQclear(r);
        return -1;
    }
    /*  No row matched: the release's row alone, its row columns NULL (row_no never is). */
    int n = off && PQgetisnull(r, 0, off) ? 0 : PQntuples(r);
    bool more = n == limit && limit > 0 && !m->sort.present;
    msgpack_packer *pk = req->pk;
    msgpack_pack_map(pk, 8 + (with_total ? 2 : 0) + (more ? 1 : 0));
    q_pack_str(pk, "resource");
    q_pack_str(pk, rel.resource);
    q_pack_str(pk, "release");
    msgpack_pack_int64(pk, rel.release);
    q_pack_str(pk, "version");
    msgpack_pack_int64(pk, rel.version);
    q_pack_str(pk, "fields");
    msgpack_pack_array(pk, (size_t)ncols);
    for (int i = 0; i < ncols; i++) {
        msgpack_pack_map(pk, 2);
        q_pack_str(pk, "id");
        q_pack_str(pk, cols[i]->name);
        q_pack_str(pk, "type");
        q_pack_str(pk, cols[i]->type);
    }
    q_pack_str(pk, "records_format");
    q_pack_str(pk, format);
    q_pack_str(pk, "records");
    if (strcmp(format, "csv") == 0) {
        /*  CKAN's csv records: the rows without a header, RFC 4180 quoting (libcsv). */
        odp_buf_t *out = odp_buf_new();
        for (int i = 0; i < n; i++)
            for (int c = 0; c < ncols; c++) {
                if (c)
                    odp_buf_append(out, ",", 1);
                if (!PQgetisnull(r, i, c + off)) {
                    size_t len = (size_t)PQgetlength(r, i, c + off);
                    char *dst = odp_buf_reserve(out, 2 * len + 2);
                    if (dst)
                        odp_buf_extend(out,
                                       csv_write(dst, 2 * len + 2, PQgetvalue(r, i, c + off), len));
                }
                if (c == ncols - 1)
                    odp_buf_append(out, "\r\n", 2);
            }
        msgpack_pack_str(pk, odp_buf_size(out));
        msgpack_pack_str_body(pk, odp_buf_data(out), odp_buf_size(out));
        odp_buf_destroy(&out);
    } else {
        bool objects = strcmp(format, "objects") == 0;
        msgpack_pack_array(pk, (size_t)n);
        for (int i = 0; i < n; i++) {
            if (objects)
                msgpack_pack_map(pk, (size_t)ncols);
            else
                msgpack_pack_array(pk, (size_t)ncols);
            for (int c = 0; c < ncols; c++) {
                if (objects)
                    q_pack_str(pk, cols[c]->name);
                s_pack_value(pk, r, i, c + off, cols[c]->type);
            }
        }
    }
    q_pack_str(pk, "limit");
    msgpack_pack_int64(pk, limit);
    q_pack_str(pk, "offset");
    msgpack_pack_int64(pk, offset);
    if (with_total) {
        q_pack_str(pk, "total");
        msgpack_pack_int64(pk, total);
        q_pack_str(pk, "total_was_estimated");
        estimated ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
    if (more) {
        char cur[64];
        snprintf(cur, sizeof cur, "%" PRId64 ".%s", rel.release, PQgetvalue(r, n - 1, off));
        q_pack_str(pk, "next_page");
        q_pack_str(pk, cur);
    }
    PQclear(r);
    q_guard_count(((q_ctx_t *)req->ctx)->guard, &q->who, rel.resource, rel.department, Q_QUERY);
    return 0;
}

/*  The rows of release, checked (q_release's answer) or hinted (checked NULL: the
    statement checks it). 0, -1 with req->err set, or S_STALE (hinted only). */
static int s_rows(odp_req_t *req, const q_who_t *who, const char *format, int64_t pin,
                  int64_t after, int64_t release, const q_release_t *checked)
{
    s_rows_t *q = calloc(1, sizeof *q);
    if (!q)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    q->who = *who;
    q->format = format;
    int rc = s_rows_build(req, q, pin, after, release, checked);
    if (rc == 0) {
        PGresult *r = checked ? q_exec(req, q->sql, q->b.n, (const char *const *)q->b.vals, NULL)
                              : q_exec(req, q->sql, q->nvals, q->vals, q->lens);
        rc = s_rows_reply(req, q, r);
    }
    s_rows_free(q);
    return rc;
}

/*  The request's own checks, before any statement: next_page's pin and position, the
    records format. 0, or -1 with req->err set. */
static int s_parse(odp_req_t *req, int64_t *pin, int64_t *after, const char **format)
{
    const odp_datastore_search_t *m = req->msg;
    /*  next_page: "<release>.<last row number>", pinned to the release it started on, so a
        new version released meanwhile does not shift the pages. */
    *pin = 0;
    *after = 0;
    if (m->next_page.present) {
        char cur[201];
        odp_v_cstr(&m->next_page, cur, sizeof cur);
        char *end;
        errno = 0;
        *pin = strtoll(cur, &end, 10);
        if (*end == '.')
            *after = strtoll(end + 1, &end, 10);
        if (errno || *end || *pin <= 0 || *after < 0 || !strchr(cur, '.'))
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "next_page",
                                "next_page is the value a previous reply gave");
        if (m->offset.present && m->offset.i)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "offset",
                                "next_page and offset do not combine");
        if (m->sort.present)
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "sort",
                                "next_page pages in _id order: no sort with it");
    }
    *format = "objects";
    if (m->records_format.present) {
        if (odp_v_eq(&m->records_format, "objects"))
            *format = "objects";
        else if (odp_v_eq(&m->records_format, "lists"))
            *format = "lists";
        else if (odp_v_eq(&m->records_format, "csv"))
            *format = "csv";
        else
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "records_format",
                                "records_format is objects, lists or csv");
    }
    return 0;
}

static int s_search(odp_req_t *req)
{
    const odp_datastore_search_t *m = req->msg;
    q_who_t who;
    if (req->resume) {
        /*  The fast path resolved and charged the caller already. */
        who = *(const q_who_t *)req->resume;
        free(req->resume);
        req->resume = NULL;
    } else if (q_who(req, &m->token, &who) < 0)
        return -1;
    if (who.kind == Q_USER && strcmp(who.via, "key") == 0)
        s_bound_learn(req->actor->key);
    int64_t pin, after;
    const char *format;
    if (s_parse(req, &pin, &after, &format) < 0)
        return -1;
    char key[128];
    bool hinted =
        s_hint_key_of(&m->resource, m->version.present ? m->version.i : 0, pin, key, sizeof key);
    int64_t hint = hinted ? s_hint_get(key) : 0;
    if (hint > 0) {
        int rc = s_rows(req, &who, format, pin, after, hint, NULL);
        if (rc != S_STALE)
            return rc;
        s_hint_drop(key);
        memset(req->err, 0, sizeof *req->err);
    }
    q_release_t rel;
    if (q_release(req, &who, &m->resource, m->version.present ? m->version.i : 0, pin, &rel) < 0)
        return -1;
    if (hinted)
        s_hint_put(key, rel.release);
    return s_rows(req, &who, format, pin, after, rel.release, &rel);
}

/*  Whether a hinted query is cheap wherever it runs, so that it may share the loop's
    pipelined connections without holding up the requests behind it: no full-text q, no
    offset to skip, no total to count, every filter on _id or an indexed field. */
static bool s_quick(const odp_datastore_search_t *m, const s_rows_t *q)
{
    if (m->q.present || (m->offset.present && m->offset.i))
        return false;
    if (!q->filtered)
        return true;
    if (!m->include_total.present || m->include_total.b)
        return false;
    const msgpack_object_map *f = &m->filters.obj->via.map;
    for (uint32_t i = 0; i < f->size; i++) {
        const msgpack_object *k = &f->ptr[i].key;
        const q_field_t *field = s_field(&q->b, k->via.str.ptr, k->via.str.size);
        if (!field || !field->indexed)
            return false;
    }
    return true;
}

/*  The row query's fast path on the loop (odp_service_route_async): a request whose release
    is hinted and whose query is quick (s_quick) is built here and its one statement sent on
    the loop's pipelined connections; anything else - a token, a key known bound to an
    account, no hint, a slow query - runs on the pool as before, the caller resolved once
    (a public key's statement that finds the key bound: twice, s_search_finish). */
static int s_search_start(odp_req_t *req, odp_stmt_t *stmt, void **state)
{
    const odp_datastore_search_t *m = req->msg;
    /*  A public caller's key that no account is known to hold: anonymous, charged to its key
        (as q_who does) only once its statement is sent; anything else it asks goes to the
        pool unresolved, where q_who looks the key up and charges it. */
    bool keyed = strcmp(req->actor->kind, "anonymous") == 0 && req->actor->key[0];
    if (m->token.present || (keyed && s_bound_known(req->actor->key)))
        return ODP_ASYNC_POOL;
    q_who_t who;
    if (keyed)
        q_who_anonymous(req, &who);
    else if (q_who(req, &m->token, &who) < 0)
        return -1;
    int64_t pin, after;
    const char *format;
    if (s_parse(req, &pin, &after, &format) < 0) {
        if (!keyed)
            return -1;
        memset(req->err, 0, sizeof *req->err);
        return ODP_ASYNC_POOL;
    }
    q_who_t *resume = keyed ? NULL : malloc(sizeof *resume);
    s_rows_t *q = calloc(1, sizeof *q);
    if ((!keyed && !resume) || !q) {
        free(resume);
        free(q);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    if (resume)
        *resume = who;
    q->who = who;
    q->format = format;
    q->keyed = keyed;
    int64_t hint = s_hint_key_of(&m->resource, m->version.present ? m->version.i : 0, pin, q->key,
                                 sizeof q->key)
                       ? s_hint_get(q->key)
                       : 0;
    if (hint <= 0 || s_rows_build(req, q, pin, after, hint, NULL) != 0 || !s_quick(m, q)) {
        s_rows_free(q);
        memset(req->err, 0, sizeof *req->err);
        req->resume = resume;
        return ODP_ASYNC_POOL;
    }
    free(resume);
    if (keyed && q_charge_key(req) < 0) {
        s_rows_free(q);
        return -1;
    }
    *stmt = (odp_stmt_t){q->sql, q->nvals, q->vals, q->lens};
    *state = q;
    return ODP_ASYNC_SEND;
}

static int s_search_finish(odp_req_t *req, PGresult *r, void *state)
{
    s_rows_t *q = state;
    bool ran = r != NULL;
    int rc = s_rows_reply(req, q, r);
    if (rc == S_STALE) {
        /*  Not rows from the hinted release (or the statement could not run): the checked
            way decides, on the pool. */
        if (ran)
            s_hint_drop(q->key);
        memset(req->err, 0, sizeof *req->err);
        /*  A public caller's key may have been bound to an account: the pool looks it up
            (and charges the request a second time: rare, and never in the caller's favour). */
        q_who_t *resume = q->keyed ? NULL : malloc(sizeof *resume);
        if (q->keyed)
            rc = ODP_ASYNC_POOL;
        else if (resume) {
            *resume = q->who;
            req->resume = resume;
            rc = ODP_ASYNC_POOL;
        } else
            rc = odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    s_rows_free(q);
    return rc;
}

void rows_routes(odp_service_t *svc)
{
    /*  Read-only and thread-safe: q_exec and q_fields keep per-thread state, the guard and
        the hints lock. */
    odp_service_route_async(svc, &odp_def_datastore_search, ODP_ALLOW_ANY, s_search, s_search_start,
                            s_search_finish);
}
