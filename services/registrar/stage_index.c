/*  stage.index: indexes on a received version's staging table, at the publisher's request.

    The publisher makes a version public as a view over the registrar's staging table
    (docs/design.md, "Publishing without copying"); the filterable fields it chooses need
    indexes there, and only the table's owner can create them, so each schema keeps one
    writer. A staging table never changes after its push, so an index built once serves
    every release of the version; the command is idempotent.

    The builds are what makes a release of a large version slow, and they would hold the
    registrar's loop (pushes) for as long. So they run on connections of their own, several
    at once (CREATE INDEX statements on one table take SHARE locks, which do not conflict),
    each with memory to sort in, and the loop's timer follows them. ANALYZE comes first,
    once, because the table never changes after (it conflicts with CREATE INDEX: the builds
    wait for it); started ahead of a release, its time then falls before the decision, not
    after. Last, autovacuum, off on a staging table since its push, is turned back on. With
    async
    the command answers at once (ready false while a build runs; ask again); without it,
    it answers when the builds are done, as it always did.

    Builds asked for in the background (beside other work on the same cores) take one
    connection; the next request without background gives the running job its usual
    connections. The publisher asks without it, once the version's review has checked it,
    so that the checks have the cores first. */
#include "registrar.h"

#include "common/config.h"
#include "common/log.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_FIELDS 500
#define S_JOBS       4 /* versions indexed at once; more wait (UNAVAILABLE, ask again) */
#define S_CONNS      4 /* connections of one job at most */

typedef struct {
    odp_db_t *db;
    PGconn *conn; /* while a statement runs on it */
} s_conn_t;

typedef struct {
    int64_t upload; /* 0: a free slot */
    char stage[40];
    char (*ddl)[256];  /* ANALYZE and the CREATE INDEX statements */
    int n, sent, done; /* statements: ANALYZE, then one CREATE INDEX per index */
    s_conn_t conns[S_CONNS];
    int nconns;
    bool finishing; /* autovacuum back on, the last statement */
    bool failed;    /* kept until the next stage.index of the upload reports it */
    char error[256];
    int64_t started;
    char setup[160]; /* each connection's settings */
} s_job_t;

/*  A service is one thread: a file-scope table is safe. */
static s_job_t s_jobs[S_JOBS];

static s_job_t *s_job_find(int64_t upload)
{
    for (int i = 0; i < S_JOBS; i++)
        if (s_jobs[i].upload == upload)
            return &s_jobs[i];
    return NULL;
}

static void s_job_free(s_job_t *job)
{
    for (int i = 0; i < job->nconns; i++) {
        /*  A connection closed mid-statement makes the server cancel it. */
        odp_db_destroy(&job->conns[i].db);
    }
    free(job->ddl);
    memset(job, 0, sizeof *job);
}

static void s_job_fail(s_job_t *job, const char *what, const char *detail)
{
    snprintf(job->error, sizeof job->error, "%s: %.200s", what, detail);
    odp_error("event=stage.index_failed upload=%" PRId64 " error=\"%s\"", job->upload, job->error);
    for (int i = 0; i < job->nconns; i++)
        odp_db_destroy(&job->conns[i].db);
    job->nconns = 0;
    job->failed = true;
}

/*  Send sql on conns[i]; false when it could not be sent (the job failed). */
static bool s_send(s_job_t *job, int i, const char *sql)
{
    PGconn *c = odp_db_conn(job->conns[i].db);
    if (!c || !PQsendQuery(c, sql)) {
        s_job_fail(job, "the index connection", c ? PQerrorMessage(c) : "cannot connect");
        return false;
    }
    job->conns[i].conn = c;
    return true;
}

/*  Collect what finished, send what is next. Never waits. */
static void s_job_advance(s_job_t *job)
{
    for (int i = 0; i < job->nconns && !job->failed; i++) {
        s_conn_t *k = &job->conns[i];
        if (k->conn) {
            if (!PQconsumeInput(k->conn)) {
                s_job_fail(job, "the index connection", PQerrorMessage(k->conn));
                return;
            }
            if (PQisBusy(k->conn))
                continue;
            PGresult *r;
            bool ok = true;
            char msg[200] = "";
            while ((r = PQgetResult(k->conn))) {
                if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                    ok = false;
                    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
                }
                PQclear(r);
            }
            k->conn = NULL;
            if (!ok) {
                s_job_fail(job, job->finishing ? "ALTER TABLE" : "the index build", msg);
                return;
            }
            if (job->finishing) {
                odp_info("event=stage.indexed upload=%" PRId64 " created=%d connections=%d "
                         "ms=%" PRId64,
                         job->upload, job->n - 1, job->nconns, zclock_mono() - job->started);
                s_job_free(job);
                return;
            }
            job->done++;
        }
        if (job->sent < job->n) {
            if (!s_send(job, i, job->ddl[job->sent]))
                return;
            job->sent++;
        }
    }
    if (!job->failed && !job->finishing && job->done == job->n) {
        /*  Autovacuum, off since the push (push.c), may now set the visibility map. */
        char sql[96];
        snprintf(sql, sizeof sql, "ALTER TABLE %s RESET (autovacuum_enabled)", job->stage);
        job->finishing = true;
        s_send(job, 0, sql);
    }
}

/*  The connections a job has, up to want (no more than statements are left to send):
    false when one could not be opened (the job failed). */
static bool s_job_grow(s_job_t *job, int want)
{
    if (want > S_CONNS)
        want = S_CONNS;
    if (want > job->nconns + (job->n - job->sent))
        want = job->nconns + (job->n - job->sent);
    while (!job->finishing && job->nconns < want) {
        s_conn_t *k = &job->conns[job->nconns];
        k->db = odp_db_new("registrar");
        job->nconns++;
        PGconn *c = k->db ? odp_db_conn(k->db) : NULL;
        PGresult *r = c ? PQexec(c, job->setup) : NULL;
        bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            s_job_fail(job, "the index connection", c ? PQerrorMessage(c) : "cannot connect");
            return false;
        }
    }
    return true;
}

/*  ODP_REGISTRAR_INDEX_CONNECTIONS, within 1 .. S_CONNS. */
static int s_connections(void)
{
    int64_t want = odp_config_int("registrar", "INDEX_CONNECTIONS", 3);
    return (int)(want < 1 ? 1 : want > S_CONNS ? S_CONNS : want);
}

/*  ODP_REGISTRAR_ANALYZE_TARGET, within PostgreSQL's 1 .. 10000. */
static int s_analyze_target(void)
{
    int64_t t = odp_config_int("registrar", "ANALYZE_TARGET", 10);
    return (int)(t < 1 ? 1 : t > 10000 ? 10000 : t);
}

/*  Start building the n statements of ddl (taken over) for upload, on one connection in
    the background, else on INDEX_CONNECTIONS. */
static int s_job_start(int64_t upload, const char *stage, char (*ddl)[256], int n, bool background,
                       odp_error_t *err)
{
    s_job_t *job = NULL;
    for (int i = 0; i < S_JOBS && !job; i++)
        if (s_jobs[i].upload == 0)
            job = &s_jobs[i];
    if (!job) {
        free(ddl);
        return odp_error_set(err, ODP_E_UNAVAILABLE, NULL,
                             "%d versions are being indexed; ask again", S_JOBS);
    }
    job->upload = upload;
    snprintf(job->stage, sizeof job->stage, "%s", stage);
    job->ddl = ddl;
    job->n = n;
    job->started = zclock_mono();
    int want = s_connections();
    /*  In-memory sorts: a million-row text index spills to disk at the default 64 MB.
        The job's own workers (its connections) are the parallelism: a statement's parallel
        workers would compete with them for the same cores, and in the background with
        the review. ANALYZE samples 300 rows per unit of statistics target: at 10, 3,000
        rows (0.13 s of CPU on 1M x 8 against 0.57 s at the default 100), enough for the
        plans the query service's statements get - an equality or range on an indexed
        field, row_no order with a filter (docs/scaling.md, "Release, round 4"). */
    snprintf(job->setup, sizeof job->setup,
             "SET maintenance_work_mem = '%dMB'; SET max_parallel_maintenance_workers = %d; "
             "SET default_statistics_target = %d",
             (int)odp_config_int("registrar", "INDEX_MEMORY_MB", 256),
             want > 1 || background ? 0 : (int)odp_config_int("registrar", "INDEX_WORKERS", 1),
             s_analyze_target());
    /*  ANALYZE starts on the first connection while the others are opened (tens of ms
        each). */
    if (!s_job_grow(job, 1)) {
        s_job_free(job);
        return odp_error_set(err, ODP_E_UNAVAILABLE, NULL,
                             "no database connection for the indexes");
    }
    s_job_advance(job);
    if (!background && !job->failed && s_job_grow(job, want))
        s_job_advance(job);
    return 0;
}

static void s_tick(odp_service_t *svc, void *arg)
{
    (void)svc;
    (void)arg;
    for (int i = 0; i < S_JOBS; i++)
        if (s_jobs[i].upload && !s_jobs[i].failed)
            s_job_advance(&s_jobs[i]);
}

/*  Until upload's job is done or failed: the synchronous form. */
static void s_job_wait(int64_t upload)
{
    s_job_t *job;
    while ((job = s_job_find(upload)) && !job->failed) {
        struct pollfd fds[S_CONNS];
        nfds_t n = 0;
        for (int i = 0; i < job->nconns; i++)
            if (job->conns[i].conn)
                fds[n++] = (struct pollfd){.fd = PQsocket(job->conns[i].conn), .events = POLLIN};
        poll(fds, n, 100);
        s_job_advance(job);
    }
}

typedef struct {
    int64_t upload;
    char stage[40];
    char names[S_MAX_FIELDS][64]; /* index names, for the reply */
    int n;
    char (*ddl)[256]; /* ANALYZE, then the missing ones */
    int missing;
} s_index_req_t;

static int s_index_txn(odp_req_t *req, void *arg)
{
    s_index_req_t *q = arg;
    const odp_stage_index_t *m = req->msg;
    q->n = q->missing = 0;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, q->upload);
    const char *vals[2] = {id, NULL};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT 1 FROM uploads WHERE id = $1 AND status = 'received' AND "
                              "kind = 'dataset' AND staging_table IS NOT NULL",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the upload");
    bool found = PQntuples(r) == 1;
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "upload",
                            "upload %" PRId64 " is not a received dataset version", q->upload);
    const msgpack_object *list = m->fields.obj;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object_str *f = &list->via.array.ptr[i].via.str;
        vals[0] = q->stage;
        vals[1] = f->ptr;
        int lens[2] = {-1, (int)f->size};
        r = odp_db_exec(req->db,
                        "SELECT a.attnum, to_regclass(current_schema() || '.' || $1 || '_a' || "
                        "a.attnum) IS NULL FROM pg_attribute a WHERE a.attrelid = "
                        "(current_schema() || '.' || $1)::regclass AND a.attname = $2 AND "
                        "a.attnum > 0 AND NOT a.attisdropped",
                        2, vals, lens);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
            return odp_req_db_fail(req, r, "the staging table's columns");
        if (PQntuples(r) != 1) {
            PQclear(r);
            return odp_req_fail(req, ODP_E_INVALID_VALUE, "fields",
                                "fields[%u] (%.*s) is not a column of %s", i, (int)f->size, f->ptr,
                                q->stage);
        }
        int attnum = atoi(PQgetvalue(r, 0, 0));
        bool missing = PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
        snprintf(q->names[q->n], sizeof q->names[0], "%s_a%d", q->stage, attnum);
        if (missing) {
            char *col = PQescapeIdentifier(odp_db_conn(req->db), f->ptr, f->size);
            if (!col)
                return odp_req_fail(req, ODP_E_INTERNAL, "fields", "cannot quote a column name");
            snprintf(q->ddl[q->missing + 1], sizeof q->ddl[0],
                     "CREATE INDEX IF NOT EXISTS %s ON %s (%s)", q->names[q->n], q->stage, col);
            PQfreemem(col);
            q->missing++;
        }
        q->n++;
    }
    snprintf(q->ddl[0], sizeof q->ddl[0], "ANALYZE %s", q->stage);
    return 0;
}

static int s_stage_index(odp_req_t *req)
{
    const odp_stage_index_t *m = req->msg;
    /*  Services share one actor kind; only the publisher reads staging tables publicly.
        In local mode (no keys) every request is operations:local and the platform's own
        publisher must still be able to ask. */
    bool publisher =
        strcmp(req->actor->kind, "service") == 0 && strcmp(req->actor->id, "publisher") == 0;
    if (!publisher && odp_auth_secure())
        return odp_req_fail(req, ODP_E_FORBIDDEN, NULL, "only the publisher asks for indexes");
    bool async = m->async.present && m->async.b;
    bool background = m->background.present && m->background.b;
    int64_t upload = m->upload.i;
    s_job_t *job = s_job_find(upload);
    if (job && job->failed) {
        /*  Reported once; the next request builds again. */
        int rc = odp_req_fail(req, ODP_E_UNAVAILABLE, NULL, "the indexes failed: %s", job->error);
        s_job_free(job);
        return rc;
    }
    s_index_req_t *q = calloc(1, sizeof *q);
    if (q)
        q->ddl = calloc(S_MAX_FIELDS + 1, sizeof *q->ddl);
    if (!q || !q->ddl) {
        if (q)
            free(q);
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    }
    q->upload = upload;
    snprintf(q->stage, sizeof q->stage, "stage_u%" PRId64, upload);
    int rc = odp_req_txn(req, s_index_txn, q);
    int created = 0;
    if (rc == 0 && !job && q->missing > 0) {
        /*  A build in progress is not visible to the catalogue yet: the job says it is. */
        rc = s_job_start(upload, q->stage, q->ddl, q->missing + 1, background, req->err);
        q->ddl = NULL;
        created = rc == 0 ? q->missing : 0;
    } else if (rc == 0 && job && !background) {
        /*  Someone waits for this build now: it gets its usual connections. */
        if (s_job_grow(job, s_connections()))
            s_job_advance(job);
    }
    if (rc == 0 && !async) {
        s_job_wait(upload);
        job = s_job_find(upload);
        if (job && job->failed) {
            rc = odp_req_fail(req, ODP_E_UNAVAILABLE, NULL, "the indexes failed: %s", job->error);
            s_job_free(job);
        }
    }
    if (rc == 0) {
        msgpack_object items[S_MAX_FIELDS];
        for (int i = 0; i < q->n; i++) {
            items[i].type = MSGPACK_OBJECT_STR;
            items[i].via.str.ptr = q->names[i];
            items[i].via.str.size = (uint32_t)strlen(q->names[i]);
        }
        msgpack_object arr = {.type = MSGPACK_OBJECT_ARRAY};
        arr.via.array.size = (uint32_t)q->n;
        arr.via.array.ptr = items;
        odp_rep_stage_index_t rep = {0};
        rep.upload = m->upload;
        rep.indexes = (odp_val_t){.present = true, .obj = &arr};
        rep.created = odp_v_int(created);
        rep.ready = odp_v_bool(s_job_find(upload) == NULL);
        rc = odp_encode(&odp_def_rep_stage_index, &rep, req->pk) < 0
                 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode")
                 : 0;
        if (created > 0)
            odp_info("event=stage.index_started upload=%" PRId64 " indexes=%d created=%d", upload,
                     q->n, created);
    }
    free(q->ddl);
    free(q);
    return rc;
}

void stage_index_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_stage_index, ODP_ALLOW_SERVICE | ODP_ALLOW_OPERATIONS,
                      s_stage_index);
    /*  Short: a build's end is noticed within it. */
    odp_service_timer(svc, 20, s_tick, NULL);
}
