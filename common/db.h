/*  db: one PostgreSQL connection per service, as the service's own role, with the
    service's schema first on the search_path, and reconnection with backoff.

    A service never exits because the database went away: calls fail fast with
    odp_db_conn() == NULL while it is down (the caller answers UNAVAILABLE), and the next
    call after the backoff delay tries again. */
#ifndef ODP_DB_H
#define ODP_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct odp_db_t odp_db_t;

typedef struct {
    const char *name; /* e.g. "001_departments.sql": applied once, in order */
    const char *sql;
} odp_migration_t;

/*  Conninfo from ODP_DB_HOST/PORT/NAME/USER/PASSWORD for service; role odp_<service> and
    search_path <service> unless configured otherwise. Does not connect yet. */
odp_db_t *odp_db_new(const char *service);
void odp_db_destroy(odp_db_t **self_p);

/*  The live connection, connecting or reconnecting if due; NULL while unavailable. */
PGconn *odp_db_conn(odp_db_t *self);
bool odp_db_up(odp_db_t *self);
/*  Close the connection as lost (one whose pipeline broke, say): the next odp_db_conn
    reconnects after the backoff. */
void odp_db_drop(odp_db_t *self);

/*  Run parameterised SQL. With lens NULL every value is a NUL-terminated text parameter;
    otherwise lens[i] >= 0 sends value i as lens[i] bytes in binary format, which for a
    parameter of type text is its raw UTF-8 (so (ptr, len) views from a message need no
    copy), and lens[i] < 0 sends a NUL-terminated text-format value (use it for numbers).
    Returns a result the caller PQclear()s, or NULL when the connection is gone (the
    connection is then marked down and retried later). Check PQresultStatus yourself. */
PGresult *odp_db_exec(odp_db_t *self, const char *sql, int n, const char *const *vals,
                      const int *lens);

/*  Convenience: command that must succeed; 0 / -1 (logged). */
int odp_db_cmd(odp_db_t *self, const char *sql, int n, const char *const *vals, const int *lens);
int odp_db_begin(odp_db_t *self);
int odp_db_commit(odp_db_t *self);
void odp_db_rollback(odp_db_t *self);

/*  SQLSTATE of a failed result ("23505" unique violation), or "" */
const char *odp_db_state(const PGresult *res);

/*  The SQLSTATE of the last statement that failed on this connection through
    odp_db_exec/odp_db_cmd ("" after a success, "08006" when the connection was lost), so
    that a failed BEGIN or COMMIT keeps its class up to the reply. */
const char *odp_db_last_state(const odp_db_t *self);

/*  How a request should answer a failed statement, by SQLSTATE class (PostgreSQL
    Appendix A): the caller's mistake, a transient condition, or a programmer error. */
typedef enum {
    ODP_DBF_CONFLICT,  /* 23505 unique, 23P01 exclusion: 409 ALREADY_EXISTS */
    ODP_DBF_INVALID,   /* other class 23 (not null, FK, check), class 22 data: 422 */
    ODP_DBF_RETRY,     /* 40001 serialization, 40P01 deadlock: run the transaction again */
    ODP_DBF_TRANSIENT, /* class 08 connection, 53 resources, 57 operator/timeout, 55P03: 503 */
    ODP_DBF_BUG        /* everything else (42 syntax/privilege, XX internal ...): 500, logged */
} odp_db_failure_t;
odp_db_failure_t odp_db_classify(const char *sqlstate);

/*  Apply the migrations not yet recorded in <schema>.schema_migrations, each in its own
    transaction, under an advisory lock so that two instances starting together do not
    race. 0 / -1. */
int odp_db_migrate(odp_db_t *self, const odp_migration_t *migs, size_t n);

const char *odp_db_service(odp_db_t *self);

#endif
