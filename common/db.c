#include "db.h"

#include "config.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct odp_db_t {
    char service[32];
    char *conninfo;
    PGconn *conn;
    int64_t next_try_ms; /* no attempt before this */
    int64_t backoff_ms;  /* doubles per failure, 100 ms .. 5 s */
    bool was_up;
    char last_state[6]; /* SQLSTATE of the last failure, "" after a success */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Conninfo values are quoted with single quotes and backslash escapes, as libpq's
    conninfo grammar requires; a password may hold spaces or quotes. */
static void s_append(char *buf, size_t size, const char *key, const char *val)
{
    size_t o = strlen(buf);
    o += (size_t)snprintf(buf + o, size - o, "%s%s='", o ? " " : "", key);
    for (const char *p = val; *p && o + 3 < size; p++) {
        if (*p == '\'' || *p == '\\')
            buf[o++] = '\\';
        buf[o++] = *p;
    }
    if (o + 2 < size) {
        buf[o++] = '\'';
        buf[o] = '\0';
    }
}

odp_db_t *odp_db_new(const char *service)
{
    odp_db_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->service, sizeof self->service, "%s", service);
    char role[64], opts[96], buf[1024] = "";
    snprintf(role, sizeof role, "odp_%s", service);
    s_append(buf, sizeof buf, "host", odp_config(service, "DB_HOST", "127.0.0.1"));
    s_append(buf, sizeof buf, "port", odp_config(service, "DB_PORT", "5432"));
    s_append(buf, sizeof buf, "dbname", odp_config(service, "DB_NAME", "odp"));
    s_append(buf, sizeof buf, "user", odp_config(service, "DB_USER", role));
    const char *pw = odp_config(service, "DB_PASSWORD", NULL);
    if (pw)
        s_append(buf, sizeof buf, "password", pw);
    snprintf(opts, sizeof opts, "-c search_path=%s", odp_config(service, "DB_SCHEMA", service));
    s_append(buf, sizeof buf, "options", opts);
    s_append(buf, sizeof buf, "application_name", service);
    s_append(buf, sizeof buf, "connect_timeout", "5");
    self->conninfo = strdup(buf);
    self->backoff_ms = 100;
    return self;
}

void odp_db_destroy(odp_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    odp_db_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

static void s_mark_down(odp_db_t *self)
{
    if (self->conn) {
        PQfinish(self->conn);
        self->conn = NULL;
    }
    self->next_try_ms = s_now_ms() + self->backoff_ms;
    if (self->backoff_ms < 5000)
        self->backoff_ms *= 2;
    if (self->backoff_ms > 5000)
        self->backoff_ms = 5000;
}

PGconn *odp_db_conn(odp_db_t *self)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return self->conn;
    if (self->conn) {
        odp_warn("event=db.lost");
        self->was_up = false;
        s_mark_down(self);
    }
    if (s_now_ms() < self->next_try_ms)
        return NULL;
    self->conn = PQconnectdb(self->conninfo);
    if (PQstatus(self->conn) != CONNECTION_OK) {
        char q[300];
        const char *m = PQerrorMessage(self->conn);
        odp_warn("event=db.connect_failed retry_ms=%lld error=%s", (long long)self->backoff_ms,
                 odp_log_quote(m, strlen(m), q, sizeof q));
        s_mark_down(self);
        return NULL;
    }
    self->backoff_ms = 100;
    if (!self->was_up)
        odp_info("event=db.connected role=%s", PQuser(self->conn));
    self->was_up = true;
    return self->conn;
}

void odp_db_drop(odp_db_t *self)
{
    if (self->conn) {
        odp_warn("event=db.lost");
        self->was_up = false;
        s_mark_down(self);
    }
}

bool odp_db_up(odp_db_t *self)
{
    return odp_db_conn(self) != NULL;
}

PGresult *odp_db_exec(odp_db_t *self, const char *sql, int n, const char *const *vals,
                      const int *lens)
{
    PGconn *c = odp_db_conn(self);
    if (!c) {
        snprintf(self->last_state, sizeof self->last_state, "08006");
        return NULL;
    }
    /*  Binary text: (ptr, len) views need no NUL. A statement with more parameters than
        the array holds gets its formats from the heap: without them every value would be
        read as NUL-terminated text, past the end of a view. */
    int small[32] = {0}, *fmts = NULL;
    if (lens && n > 0) {
        fmts = n <= 32 ? small : calloc((size_t)n, sizeof *fmts);
        if (!fmts)
            return NULL;
        for (int i = 0; i < n; i++)
            fmts[i] = lens[i] >= 0;
    }
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, 0);
    if (fmts != small)
        free(fmts);
    if (PQstatus(c) != CONNECTION_OK) {
        PQclear(r);
        odp_warn("event=db.lost");
        self->was_up = false;
        s_mark_down(self);
        snprintf(self->last_state, sizeof self->last_state, "08006");
        return NULL;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR)
        snprintf(self->last_state, sizeof self->last_state, "%s", odp_db_state(r));
    else
        self->last_state[0] = '\0';
    return r;
}

const char *odp_db_state(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

const char *odp_db_last_state(const odp_db_t *self)
{
    return self->last_state;
}

odp_db_failure_t odp_db_classify(const char *st)
{
    if (!st || strlen(st) != 5)
        return ODP_DBF_BUG;
    if (strcmp(st, "23505") == 0 || strcmp(st, "23P01") == 0)
        return ODP_DBF_CONFLICT;
    if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0)
        return ODP_DBF_INVALID;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return ODP_DBF_RETRY;
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "53", 2) == 0 || strncmp(st, "57", 2) == 0 ||
        strcmp(st, "55P03") == 0 || strcmp(st, "25P03") == 0)
        return ODP_DBF_TRANSIENT;
    return ODP_DBF_BUG;
}

int odp_db_cmd(odp_db_t *self, const char *sql, int n, const char *const *vals, const int *lens)
{
    PGresult *r = odp_db_exec(self, sql, n, vals, lens);
    if (!r)
        return -1;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char q[300];
        const char *m = PQresultErrorMessage(r);
        odp_error("event=db.error state=%s error=%s", odp_db_state(r),
                  odp_log_quote(m, strlen(m), q, sizeof q));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

int odp_db_begin(odp_db_t *self)
{
    return odp_db_cmd(self, "BEGIN", 0, NULL, NULL);
}

int odp_db_commit(odp_db_t *self)
{
    return odp_db_cmd(self, "COMMIT", 0, NULL, NULL);
}

void odp_db_rollback(odp_db_t *self)
{
    if (self->conn && PQtransactionStatus(self->conn) != PQTRANS_IDLE)
        odp_db_cmd(self, "ROLLBACK", 0, NULL, NULL);
}

const char *odp_db_service(odp_db_t *self)
{
    return self->service;
}

int odp_db_migrate(odp_db_t *self, const odp_migration_t *migs, size_t n)
{
    PGconn *c = odp_db_conn(self);
    if (!c)
        return -1;
    /*  One lock key per schema owner: hashtext of the service name. */
    const char *p[2] = {self->service, NULL};
    if (odp_db_cmd(self, "SELECT pg_advisory_lock(hashtext($1))", 1, p, NULL) < 0)
        return -1;
    int rc = odp_db_cmd(self,
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                        0, NULL, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        p[0] = migs[i].name;
        PGresult *r =
            odp_db_exec(self, "SELECT 1 FROM schema_migrations WHERE name = $1", 1, p, NULL);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(r);
            rc = -1;
            break;
        }
        bool done = PQntuples(r) > 0;
        PQclear(r);
        if (done)
            continue;
        /*  Migration files hold several statements: PQexec (no parameters) runs them all
            in the transaction; they are our own files, never input. */
        rc = odp_db_begin(self);
        if (rc == 0) {
            PGresult *m = PQexec(c, migs[i].sql);
            if (PQresultStatus(m) != PGRES_COMMAND_OK && PQresultStatus(m) != PGRES_TUPLES_OK) {
                char q[400];
                const char *e = PQresultErrorMessage(m);
                odp_error("event=db.migration_failed name=%s error=%s", migs[i].name,
                          odp_log_quote(e, strlen(e), q, sizeof q));
                rc = -1;
            }
            PQclear(m);
        }
        if (rc == 0)
            rc = odp_db_cmd(self, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, p, NULL);
        if (rc == 0)
            rc = odp_db_commit(self);
        else
            odp_db_rollback(self);
        if (rc == 0)
            odp_info("event=db.migrated name=%s", migs[i].name);
    }
    p[0] = self->service;
    odp_db_cmd(self, "SELECT pg_advisory_unlock(hashtext($1))", 1, p, NULL);
    return rc;
}
