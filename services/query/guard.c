/*  Protection and counting (OWASP API4; R6c): a token bucket per actor, and views,
    queries and downloads counted in memory and added to usage_counts on a timer, with the
    signed-in users who made them (usage_users: who used a resource on a day, for the
    distinct users of the statistics). */
#include "query.h"

#include "common/config.h"
#include "common/log.h"

#include <czmq.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Buckets of actors idle long enough to be full again are dropped when the table
    grows past this: a full bucket and no bucket answer the same. */
#define S_MAX_BUCKETS 100000

typedef struct {
    double tokens;
    int64_t at_ms;
} s_bucket_t;

typedef struct {
    char department[10];
    int64_t n[3]; /* Q_VIEW, Q_QUERY, Q_DOWNLOAD */
} s_count_t;

struct q_guard_t {
    odp_service_t *svc;
    double rate;  /* tokens per second */
    double burst; /* bucket size */
    zhashx_t *buckets;
    zhashx_t *counts; /* resource -> s_count_t */
    zhashx_t *users;  /* "resource user:<id>" -> itself, the users seen since the last flush */
    /*  Handlers on the service's pool take tokens and count beside the loop's. */
    pthread_mutex_t lock;
};

static void s_free(void **item)
{
    free(*item);
    *item = NULL;
}

static void s_flush(odp_service_t *svc, void *arg);

q_guard_t *q_guard_new(odp_service_t *svc)
{
    q_guard_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->svc = svc;
    pthread_mutex_init(&self->lock, NULL);
    self->rate = (double)odp_config_int("query", "RATE_PER_S", 20);
    self->burst = (double)odp_config_int("query", "RATE_BURST", 60);
    if (self->rate < 1)
        self->rate = 1;
    if (self->burst < 1)
        self->burst = 1;
    self->buckets = zhashx_new();
    self->counts = zhashx_new();
    self->users = zhashx_new();
    int flush_ms = (int)odp_config_int("query", "COUNT_FLUSH_MS", 5000);
    if (!self->buckets || !self->counts || !self->users ||
        odp_service_timer(svc, flush_ms, s_flush, self) < 0) {
        q_guard_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->buckets, s_free);
    zhashx_set_destructor(self->counts, s_free);
    zhashx_set_destructor(self->users, s_free);
    odp_info("event=query.guard rate_per_s=%.0f burst=%.0f count_flush_ms=%d", self->rate,
             self->burst, flush_ms);
    return self;
}

void q_guard_destroy(q_guard_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    q_guard_t *self = *self_p;
    /*  What was counted since the last flush is not lost on a clean stop. */
    if (self->counts && zhashx_size(self->counts))
        s_flush(self->svc, self);
    zhashx_destroy(&self->buckets);
    zhashx_destroy(&self->counts);
    zhashx_destroy(&self->users);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

static int64_t s_take(q_guard_t *self, const char *actor);

int64_t q_guard_take(q_guard_t *self, const char *actor)
{
    pthread_mutex_lock(&self->lock);
    int64_t wait = s_take(self, actor);
    pthread_mutex_unlock(&self->lock);
    return wait;
}

static int64_t s_take(q_guard_t *self, const char *actor)
{
    int64_t now = zclock_mono();
    s_bucket_t *b = zhashx_lookup(self->buckets, actor);
    if (!b) {
        if (zhashx_size(self->buckets) >= S_MAX_BUCKETS) {
            zlist_t *full = zlist_new();
            for (s_bucket_t *x = zhashx_first(self->buckets); x; x = zhashx_next(self->buckets))
                if (x->tokens + (double)(now - x->at_ms) * self->rate / 1000.0 >= self->burst)
                    zlist_append(full, (void *)zhashx_cursor(self->buckets));
            for (const char *k = zlist_first(full); k; k = zlist_next(full))
                zhashx_delete(self->buckets, k);
            zlist_destroy(&full);
        }
        b = malloc(sizeof *b);
        if (!b)
            return 0;
        *b = (s_bucket_t){self->burst, now};
        zhashx_insert(self->buckets, actor, b);
    }
    b->tokens += (double)(now - b->at_ms) * self->rate / 1000.0;
    if (b->tokens > self->burst)
        b->tokens = self->burst;
    b->at_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    int64_t wait = (int64_t)((1.0 - b->tokens) * 1000.0 / self->rate) + 1;
    return wait;
}

static void s_add(zhashx_t *counts, const char *resource, const char *department,
                  const int64_t n[3])
{
    s_count_t *c = zhashx_lookup(counts, resource);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return;
        snprintf(c->department, sizeof c->department, "%s", department);
        zhashx_insert(counts, resource, c);
    }
    for (int i = 0; i < 3; i++)
        c->n[i] += n[i];
}

/*  key ("resource user:<id>") into the set users, once. */
static void s_add_user(zhashx_t *users, const char *key)
{
    if (zhashx_lookup(users, key))
        return;
    char *item = strdup(key);
    if (item && zhashx_insert(users, item, item) != 0)
        free(item);
}

void q_guard_count(q_guard_t *self, const q_who_t *who, const char *resource,
                   const char *department, q_use_t use)
{
    int64_t n[3] = {0};
    n[use] = 1;
    char user[120] = "";
    if (who && who->kind == Q_USER)
        snprintf(user, sizeof user, "%s %s", resource, who->str);
    pthread_mutex_lock(&self->lock);
    s_add(self->counts, resource, department, n);
    if (*user)
        s_add_user(self->users, user);
    pthread_mutex_unlock(&self->lock);
}

/*  One user's first use of a resource today: a row of usage_users, and for a new row one
    usage.user_counted event. 0, or -1 when the statement failed. */
static int s_flush_user(odp_service_t *svc, const char *key)
{
    const char *space = strchr(key, ' ');
    if (!space)
        return 0;
    char resource[40];
    snprintf(resource, sizeof resource, "%.*s", (int)(space - key), key);
    const char *vals[2] = {resource, space + 1};
    PGresult *r = odp_db_exec(odp_service_db(svc),
                              "INSERT INTO usage_users (day, resource, user_id) VALUES "
                              "((now() AT TIME ZONE 'UTC')::date, $1, $2) ON CONFLICT DO NOTHING "
                              "RETURNING day::text",
                              2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int rc = 0;
    if (PQntuples(r) == 1) {
        odp_ev_usage_user_counted_t ev = {0};
        ev.resource = odp_v_str(resource);
        ev.day = odp_v_str(PQgetvalue(r, 0, 0));
        ev.user = odp_v_str(space + 1);
        if (odp_outbox_append(odp_service_outbox(svc), &odp_def_ev_usage_user_counted, &ev,
                              "service:query") < 0)
            rc = -1;
    }
    PQclear(r);
    return rc;
}

/*  One transaction per flush: each counted resource's row added to, and one usage.counted
    event per resource carrying its department, for metrics; then the users seen. When it
    fails the counts and users stay in memory for the next flush. */
static void s_flush(odp_service_t *svc, void *arg)
{
    q_guard_t *self = arg;
    /*  The counts so far are taken out whole, so that counting goes on while they are
        written; when writing fails they are added back. */
    zhashx_t *fresh = zhashx_new();
    zhashx_t *fresh_users = zhashx_new();
    if (!fresh || !fresh_users) {
        zhashx_destroy(&fresh);
        zhashx_destroy(&fresh_users);
        return;
    }
    zhashx_set_destructor(fresh, s_free);
    zhashx_set_destructor(fresh_users, s_free);
    pthread_mutex_lock(&self->lock);
    zhashx_t *counts = self->counts;
    zhashx_t *users = self->users;
    bool some = zhashx_size(counts) > 0;
    if (some) {
        self->counts = fresh;
        self->users = fresh_users;
    }
    pthread_mutex_unlock(&self->lock);
    if (!some) {
        zhashx_destroy(&fresh);
        zhashx_destroy(&fresh_users);
        return;
    }
    odp_db_t *db = odp_service_db(svc);
    int rc = odp_db_begin(db);
    for (s_count_t *c = zhashx_first(counts); c && rc == 0; c = zhashx_next(counts)) {
        const char *resource = zhashx_cursor(counts);
        char n[3][24];
        for (int i = 0; i < 3; i++)
            snprintf(n[i], sizeof n[i], "%" PRId64, c->n[i]);
        const char *vals[5] = {resource, c->department, n[0], n[1], n[2]};
        PGresult *r = odp_db_exec(
            db,
            "INSERT INTO usage_counts AS u (day, resource, department, views, queries, downloads) "
            "VALUES ((now() AT TIME ZONE 'UTC')::date, $1, $2, $3, $4, $5) "
            "ON CONFLICT (day, resource) DO UPDATE SET views = u.views + excluded.views, "
            "queries = u.queries + excluded.queries, downloads = u.downloads + excluded.downloads "
            "RETURNING day::text",
            5, vals, NULL);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(r);
            rc = -1;
            break;
        }
        odp_ev_usage_counted_t ev = {0};
        ev.resource = odp_v_str(resource);
        ev.department = odp_v_str(c->department);
        ev.day = odp_v_str(PQgetvalue(r, 0, 0));
        ev.views = odp_v_int(c->n[Q_VIEW]);
        ev.queries = odp_v_int(c->n[Q_QUERY]);
        ev.downloads = odp_v_int(c->n[Q_DOWNLOAD]);
        if (odp_outbox_append(odp_service_outbox(svc), &odp_def_ev_usage_counted, &ev,
                              "service:query") < 0)
            rc = -1;
        PQclear(r);
    }
    for (const char *k = zhashx_first(users); k && rc == 0; k = zhashx_next(users))
        rc = s_flush_user(svc, k);
    if (rc == 0 && odp_db_commit(db) == 0) {
        zhashx_destroy(&counts);
        zhashx_destroy(&users);
        return;
    }
    odp_db_rollback(db);
    odp_warn("event=query.count_flush_failed resources=%zu users=%zu msg=\"kept for the next "
             "flush\"",
             zhashx_size(counts), zhashx_size(users));
    pthread_mutex_lock(&self->lock);
    for (s_count_t *c = zhashx_first(counts); c; c = zhashx_next(counts))
        s_add(self->counts, zhashx_cursor(counts), c->department, c->n);
    for (const char *k = zhashx_first(users); k; k = zhashx_next(users))
        s_add_user(self->users, k);
    pthread_mutex_unlock(&self->lock);
    zhashx_destroy(&counts);
    zhashx_destroy(&users);
}

/*  ---- replies ------------------------------------------------------------------------ */

odp_val_t q_col(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_strn(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

odp_val_t q_int(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_int(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

int q_pack_list(odp_req_t *req, PGresult *r, const odp_msgdef_t *def, q_fill_fn fill, void *rec,
                size_t size)
{
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, (size_t)PQntuples(r));
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        memset(rec, 0, size);
        fill(r, i, rec);
        rc = odp_encode(def, rec, &pk);
    }
    if (rc == 0) {
        odp_rep_list_t rep = {0};
        rep.items = odp_v_raw(items.data, items.size);
        rc = odp_encode(&odp_def_rep_list, &rep, req->pk);
    }
    msgpack_sbuffer_destroy(&items);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the list") : 0;
}
