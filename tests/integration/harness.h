/*  Integration test harness: real PostgreSQL, real service processes, real sockets.

    tests/run.sh prepares a throw-away cluster and certificates and exports their
    environment; the harness starts the five service binaries as child processes, talks to
    them as clients do, and prints one TAP line per case: `ok N - name` or
    `not ok N - name` followed by `#` lines saying which check failed. */
#ifndef ODP_HARNESS_H
#define ODP_HARNESS_H

#include <czmq.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "common/client.h"
#include "common/codec.h"
#include "common/config.h"

/*  ---- checks ---------------------------------------------------------------------------- */
extern int h_case_failures;
void h_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            h_fail(__FILE__, __LINE__, __VA_ARGS__);                                               \
    } while (0)

typedef void (*h_case_fn)(void);
typedef struct {
    const char *name;
    h_case_fn fn;
} h_case_t;

/*  ---- environment and processes ------------------------------------------------------- */
const char *h_env(const char *name); /* getenv or abort with a message */
const char *h_bin(void);             /* directory of the built binaries */
const char *h_var(void);             /* scratch directory of this run */
const char *h_samples(void);         /* the sample datasets (ODP_SAMPLES) */

/*  Start one service (by name) with the current environment plus extra "K=V" strings
    (NULL-terminated list, may be NULL). Waits until it answers health. pid or -1. */
pid_t h_service_start(const char *name, const char *const *extra_env);
bool h_service_wait_healthy(const char *name, int timeout_ms);
void h_service_stop(const char *name);  /* SIGTERM, wait */
void h_service_kill9(const char *name); /* SIGKILL, wait */
pid_t h_service_pid(const char *name);
int h_start_all(void);
void h_stop_all(void);

/*  Spawn any program (argv[0] a path) with stdout/stderr to files (may be NULL). */
pid_t h_spawn(const char *const *argv, const char *const *extra_env, const char *out_path,
              const char *err_path);
int h_wait_exit(pid_t pid, int timeout_ms); /* exit status, or -1 on timeout */

/*  ---- clients ----------------------------------------------------------------------------- */
/*  A client of service acting with the secret cert (NULL: the operations admin). */
odp_client_t *h_client(const char *service, const char *cert);
/*  Call and return the status (0 when no reply came). The reply stays in *rep. */
int h_call(odp_client_t *c, const odp_msgdef_t *def, const void *msg, odp_reply_t *rep);
int h_call_raw(odp_client_t *c, const char *cmd, const void *body, size_t size, odp_reply_t *rep);
/*  The reply's error code as a C string ("" when none). */
const char *h_err_code(odp_reply_t *rep);
/*  Integer field of a reply map, or -1. */
int64_t h_int(const odp_reply_t *rep, const char *key);
/*  The health reply's counters for service. */
bool h_health(const char *service, int64_t *seq, int64_t *requests, int64_t *errors);

/*  Register a provider department with a new key pair at h_var()/keys/<code>; returns 0. */
int h_department(const char *code, const char *name);
/*  Path of a department's secret cert made by h_department. */
const char *h_keyfile(const char *code);

/*  ---- database ---------------------------------------------------------------------------- */
PGconn *h_pg_super(void);                     /* superuser over the cluster's socket */
PGconn *h_pg_role(const char *service);       /* as odp_<service> with its password */
int64_t h_pg_int(PGconn *c, const char *sql); /* single-value query, -1 on error */

/*  ---- events ------------------------------------------------------------------------------ */
/*  Read an odp-events output file: for source, the list of seqs in order, and topics.
    Returns how many lines were for that source. seqs/topics may be NULL. */
int h_events_read(const char *path, const char *source, int64_t *seqs, char (*topics)[48], int max);
/*  The summary numbers from an odp-events stderr file; false if no summary line. */
bool h_events_summary(const char *path, int64_t *printed, int64_t *replayed, int64_t *gaps,
                      int64_t *dups);

/*  Test groups (t_*.c). */
extern const h_case_t t_registry_cases[];
extern const h_case_t t_events_cases[];
extern const h_case_t t_robust_cases[];
extern const h_case_t t_security_cases[];
extern const h_case_t t_push_cases[];
extern const h_case_t t_catalogue_cases[];
extern const h_case_t t_odp_push_cases[];
extern const h_case_t t_access_cases[];
extern const h_case_t t_grants_cases[];
extern const h_case_t t_consumer_cases[];
extern const h_case_t t_tools_cases[];
extern const h_case_t t_reviewer_cases[];
extern const h_case_t t_publisher_cases[];
extern const h_case_t t_query_cases[];
extern const h_case_t t_push_kill_cases[];
extern const h_case_t t_search_cases[];
extern const h_case_t t_metrics_cases[];
extern const h_case_t t_backup_cases[];
extern const h_case_t t_query_rows_cases[];
extern const h_case_t t_download_cases[];
extern const h_case_t t_web_cases[];

#endif
