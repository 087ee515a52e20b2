#include "harness.h"

#include "common/auth.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int h_case_failures = 0;
static pid_t s_pids[ODP_NSERVICES];

void h_fail(const char *file, int line, const char *fmt, ...)
{
    h_case_failures++;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("#   FAILED %s:%d: %s\n", file, line, msg);
    fflush(stdout);
}

const char *h_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "itest: %s is not set (run the tests with `make test`)\n", name);
        exit(2);
    }
    return v;
}

const char *h_bin(void)
{
    return h_env("ODP_TEST_BIN");
}

const char *h_var(void)
{
    return h_env("ODP_TEST_VAR");
}

const char *h_samples(void)
{
    return h_env("ODP_SAMPLES");
}

pid_t h_spawn(const char *const *argv, const char *const *extra_env, const char *out_path,
              const char *err_path)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    for (const char *const *e = extra_env; e && *e; e++)
        putenv((char *)*e);
    if (out_path) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
    }
    if (err_path) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
    }
    execve(argv[0], (char *const *)argv, environ);
    fprintf(stderr, "itest: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int h_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t until = zclock_mono() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 || zclock_mono() > until)
            return -1;
        zclock_sleep(20);
    }
}

pid_t h_service_pid(const char *name)
{
    int i = odp_service_index(name);
    return i < 0 ? -1 : s_pids[i];
}

bool h_service_wait_healthy(const char *name, int timeout_ms)
{
    int64_t until = zclock_mono() + timeout_ms;
    while (zclock_mono() < until) {
        odp_client_t *c = h_client(name, NULL);
        if (c) {
            odp_health_t req = {0};
            odp_reply_t rep;
            int rc = odp_client_call(c, &odp_def_health, &req, 500, &rep);
            bool ok = rc == 0 && rep.status == 200;
            odp_reply_free(&rep);
            odp_client_destroy(&c);
            if (ok)
                return true;
        }
        zclock_sleep(100);
    }
    return false;
}

pid_t h_service_start(const char *name, const char *const *extra_env)
{
    int i = odp_service_index(name);
    char path[512], log[512];
    snprintf(path, sizeof path, "%s/odp-%s", h_bin(), name);
    snprintf(log, sizeof log, "%s/log/%s.log", h_var(), name);
    const char *argv[] = {path, NULL};
    pid_t pid = h_spawn(argv, extra_env, NULL, log);
    if (i >= 0)
        s_pids[i] = pid;
    if (!h_service_wait_healthy(name, 20000)) {
        fprintf(stderr, "itest: %s did not become healthy; see %s\n", name, log);
        return -1;
    }
    return pid;
}

static void s_signal(const char *name, int sig)
{
    int i = odp_service_index(name);
    if (i < 0 || s_pids[i] <= 0)
        return;
    kill(s_pids[i], sig);
    if (h_wait_exit(s_pids[i], 10000) < 0) {
        kill(s_pids[i], SIGKILL);
        h_wait_exit(s_pids[i], 5000);
    }
    s_pids[i] = 0;
}

void h_service_stop(const char *name)
{
    s_signal(name, SIGTERM);
}

void h_service_kill9(const char *name)
{
    s_signal(name, SIGKILL);
}

int h_start_all(void)
{
    for (int i = 0; i < ODP_NSERVICES; i++)
        if (h_service_start(odp_service_names[i], NULL) < 0)
            return -1;
    return 0;
}

void h_stop_all(void)
{
    for (int i = 0; i < ODP_NSERVICES; i++)
        h_service_stop(odp_service_names[i]);
}

odp_client_t *h_client(const char *service, const char *cert)
{
    char err[256] = "";
    odp_client_t *c = odp_client_new(service, NULL, cert, err, sizeof err);
    if (!c)
        fprintf(stderr, "itest: client for %s: %s\n", service, err);
    return c;
}

int h_call(odp_client_t *c, const odp_msgdef_t *def, const void *msg, odp_reply_t *rep)
{
    if (odp_client_call(c, def, msg, 5000, rep) < 0)
        return 0;
    return rep->status;
}

int h_call_raw(odp_client_t *c, const char *cmd, const void *body, size_t size, odp_reply_t *rep)
{
    if (odp_client_call_raw(c, cmd, body, size, 5000, rep) < 0)
        return 0;
    return rep->status;
}

const char *h_err_code(odp_reply_t *rep)
{
    static char code[40];
    return odp_v_cstr(&rep->err.code, code, sizeof code);
}

int64_t h_int(const odp_reply_t *rep, const char *key)
{
    const msgpack_object *v = odp_map_get(&rep->obj, key);
    if (!v ||
        (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
        return -1;
    return v->via.i64;
}

bool h_health(const char *service, int64_t *seq, int64_t *requests, int64_t *errors)
{
    odp_client_t *c = h_client(service, NULL);
    if (!c)
        return false;
    odp_health_t req = {0};
    odp_reply_t rep;
    bool ok = h_call(c, &odp_def_health, &req, &rep) == 200;
    if (ok) {
        if (seq)
            *seq = h_int(&rep, "seq");
        if (requests)
            *requests = h_int(&rep, "requests");
        if (errors)
            *errors = h_int(&rep, "errors");
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return ok;
}

const char *h_keyfile(const char *code)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/keys/%s_secret", h_var(), code);
    return path;
}

int h_department(const char *code, const char *name)
{
    char base[512], key[41];
    snprintf(base, sizeof base, "%s/keys/%s", h_var(), code);
    if (odp_auth_keygen("provider", code, name, base, key) < 0)
        return -1;
    odp_client_t *c = h_client("registrar", NULL);
    if (!c)
        return -1;
    odp_department_add_t m = {0};
    m.code = odp_v_str(code);
    m.name = odp_v_str(name);
    m.public_key = odp_v_str(key);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_department_add, &m, &rep);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st == 200 ? 0 : -1;
}

PGconn *h_pg_super(void)
{
    char ci[1024];
    snprintf(ci, sizeof ci, "host=%s port=%s dbname=odp user=%s", h_env("ODP_PG_SOCKET"),
             h_env("ODP_DB_PORT"), h_env("ODP_PG_SUPERUSER"));
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        fprintf(stderr, "itest: superuser connection: %s", PQerrorMessage(c));
    return c;
}

PGconn *h_pg_role(const char *service)
{
    char var[64], ci[1024];
    snprintf(var, sizeof var, "ODP_%s_DB_PASSWORD", service);
    for (char *p = var; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%s dbname=odp user=odp_%s password=%s",
             h_env("ODP_DB_PORT"), service, h_env(var));
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        fprintf(stderr, "itest: %s connection: %s", service, PQerrorMessage(c));
    return c;
}

int64_t h_pg_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

int h_events_read(const char *path, const char *source, int64_t *seqs, char (*topics)[48], int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[65536];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!j)
            continue;
        const char *src = json_string_value(json_object_get(j, "source"));
        if (src && strcmp(src, source) == 0) {
            if (n < max) {
                if (seqs)
                    seqs[n] = json_integer_value(json_object_get(j, "seq"));
                if (topics) {
                    const char *t = json_string_value(json_object_get(j, "topic"));
                    snprintf(topics[n], 48, "%s", t ? t : "");
                }
            }
            n++;
        }
        json_decref(j);
    }
    fclose(f);
    return n;
}

bool h_events_summary(const char *path, int64_t *printed, int64_t *replayed, int64_t *gaps,
                      int64_t *dups)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        long long p, r, g, d;
        if (sscanf(line, "odp-events: summary printed=%lld replayed=%lld gaps=%lld duplicates=%lld",
                   &p, &r, &g, &d) == 4) {
            *printed = p;
            *replayed = r;
            *gaps = g;
            *dups = d;
            found = true;
        }
    }
    fclose(f);
    return found;
}
