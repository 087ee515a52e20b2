/*  stage.index: indexes on a received version's staging table, at the publisher's request.

    The publisher makes a version public as a view over the registrar's staging table
    (docs/design.md, "Publishing without copying"); the filterable fields it chooses need
    indexes there, and only the table's owner can create them, so each schema keeps one
    writer. A staging table never changes after its push, so an index built once serves
    every release of the version; the command is idempotent and, when it created indexes,
    ends with ANALYZE, which
    gives the planner the statistics the public queries are planned with. */
#include "registrar.h"

#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t upload;
    char names[500][64]; /* index names, for the reply */
    int n;
    int created;
} s_index_job_t;

static int s_index_txn(odp_req_t *req, void *arg)
{
    s_index_job_t *job = arg;
    const odp_stage_index_t *m = req->msg;
    job->n = job->created = 0;
    char id[24], stage[40];
    snprintf(id, sizeof id, "%" PRId64, job->upload);
    snprintf(stage, sizeof stage, "stage_u%" PRId64, job->upload);
    const char *vals[2] = {id, NULL};
    PGresult *r = odp_db_exec(req->db,
                              "SELECT 1 FROM uploads WHERE id = $1 AND status = 'received' AND "
                              "kind = 'dataset' AND staging_table IS NOT NULL FOR SHARE",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the upload");
    bool found = PQntuples(r) == 1;
    PQclear(r);
    if (!found)
        return odp_req_fail(req, ODP_E_NOT_FOUND, "upload",
                            "upload %" PRId64 " is not a received dataset version", job->upload);
    const msgpack_object *list = m->fields.obj;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object_str *f = &list->via.array.ptr[i].via.str;
        vals[0] = stage;
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
                                stage);
        }
        int attnum = atoi(PQgetvalue(r, 0, 0));
        bool missing = PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
        snprintf(job->names[job->n], sizeof job->names[0], "%s_a%d", stage, attnum);
        if (missing) {
            char *col = PQescapeIdentifier(odp_db_conn(req->db), f->ptr, f->size);
            if (!col)
                return odp_req_fail(req, ODP_E_INTERNAL, "fields", "cannot quote a column name");
            char ddl[256];
            snprintf(ddl, sizeof ddl, "CREATE INDEX %s ON %s (%s)", job->names[job->n], stage, col);
            PQfreemem(col);
            if (odp_db_cmd(req->db, ddl, 0, NULL, NULL) < 0)
                return odp_req_db_fail(req, NULL, "the index");
            job->created++;
        }
        job->n++;
    }
    /*  Statistics once, with the first indexes: the table never changes after. */
    char analyze[64];
    snprintf(analyze, sizeof analyze, "ANALYZE %s", stage);
    if (job->created > 0 && odp_db_cmd(req->db, analyze, 0, NULL, NULL) < 0)
        return odp_req_db_fail(req, NULL, "ANALYZE");
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
    s_index_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "out of memory");
    job->upload = m->upload.i;
    int rc = odp_req_txn(req, s_index_txn, job);
    if (rc == 0) {
        msgpack_object items[500];
        for (int i = 0; i < job->n; i++) {
            items[i].type = MSGPACK_OBJECT_STR;
            items[i].via.str.ptr = job->names[i];
            items[i].via.str.size = (uint32_t)strlen(job->names[i]);
        }
        msgpack_object arr = {.type = MSGPACK_OBJECT_ARRAY};
        arr.via.array.size = (uint32_t)job->n;
        arr.via.array.ptr = items;
        odp_rep_stage_index_t rep = {0};
        rep.upload = m->upload;
        rep.indexes = (odp_val_t){.present = true, .obj = &arr};
        rep.created = odp_v_int(job->created);
        rc = odp_encode(&odp_def_rep_stage_index, &rep, req->pk) < 0
                 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the reply did not encode")
                 : 0;
        odp_info("event=stage.indexed upload=%" PRId64 " indexes=%d created=%d", job->upload,
                 job->n, job->created);
    }
    free(job);
    return rc;
}

void stage_index_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_stage_index, ODP_ALLOW_SERVICE | ODP_ALLOW_OPERATIONS,
                      s_stage_index);
}
