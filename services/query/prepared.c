/*  Statements prepared once per connection (issue #10): a reader's request runs the same
    few statements again and again, and parsing and planning them each time cost the
    backend more than running them. A statement is named by its text; a connection that
    changed (reconnected after a loss) starts with none; past S_MAX statements all are
    deallocated and preparing starts again, so a client sending ever new filters cannot
    grow the backend's memory. Any failure to prepare or a lost connection falls back to
    odp_db_exec, which reports the error (with its SQLSTATE) or the loss as before. The
    cache is per thread: each thread runs its own connection. */
#include "query.h"

#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX 200

typedef struct {
    PGconn *conn;
    zhashx_t *names; /* SQL text -> statement name */
    unsigned next;
} s_cache_t;

static void s_free(void **item)
{
    free(*item);
    *item = NULL;
}

/*  Each thread's cache hangs on a key whose destructor frees it when a pool worker ends. */
static pthread_key_t s_key;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_drop(void *p)
{
    s_cache_t *c = p;
    zhashx_destroy(&c->names);
    free(c);
}

static void s_make_key(void)
{
    pthread_key_create(&s_key, s_drop);
}

static s_cache_t *s_mine(void)
{
    pthread_once(&s_once, s_make_key);
    s_cache_t *c = pthread_getspecific(s_key);
    if (!c && (c = calloc(1, sizeof *c)) && pthread_setspecific(s_key, c) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

PGresult *q_exec(odp_req_t *req, const char *sql, int n, const char *const *vals, const int *lens)
{
    PGconn *c = odp_db_conn(req->db);
    s_cache_t *cache = s_mine();
    if (!c || !cache)
        return odp_db_exec(req->db, sql, n, vals, lens);
    if (cache->conn != c || !cache->names) {
        zhashx_destroy(&cache->names);
        cache->names = zhashx_new();
        if (!cache->names)
            return odp_db_exec(req->db, sql, n, vals, lens);
        zhashx_set_destructor(cache->names, s_free);
        cache->conn = c;
    }
    const char *name = zhashx_lookup(cache->names, sql);
    if (!name) {
        if (zhashx_size(cache->names) >= S_MAX) {
            PQclear(PQexec(c, "DEALLOCATE ALL"));
            zhashx_purge(cache->names);
        }
        char buf[24];
        snprintf(buf, sizeof buf, "q%u", ++cache->next);
        PGresult *p = PQprepare(c, buf, sql, n, NULL);
        bool ok = p && PQresultStatus(p) == PGRES_COMMAND_OK;
        PQclear(p);
        char *copy = ok ? strdup(buf) : NULL;
        if (!copy)
            return odp_db_exec(req->db, sql, n, vals, lens);
        zhashx_insert(cache->names, sql, copy);
        name = copy;
    }
    /*  Text given with its length is sent as binary text, as odp_db_exec does. */
    int small[32] = {0}, *fmts = NULL;
    if (lens && n > 0) {
        fmts = n <= 32 ? small : calloc((size_t)n, sizeof *fmts);
        if (!fmts)
            return NULL;
        for (int i = 0; i < n; i++)
            fmts[i] = lens[i] >= 0;
    }
    PGresult *r = PQexecPrepared(c, name, n, vals, lens, fmts, 0);
    if (fmts != small)
        free(fmts);
    if (PQstatus(c) != CONNECTION_OK) {
        PQclear(r);
        return odp_db_exec(req->db, sql, n, vals, lens);
    }
    /*  A statement gone or a plan whose result changed shape (a relation replaced): the
        text runs as it is, and is prepared again next time. */
    const char *st = odp_db_state(r);
    if (strcmp(st, "26000") == 0 || strcmp(st, "0A000") == 0) {
        PQclear(r);
        zhashx_delete(cache->names, sql);
        return odp_db_exec(req->db, sql, n, vals, lens);
    }
    return r;
}
