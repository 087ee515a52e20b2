/*  Backup and emergency recovery (R6b, R6c): `odpctl backup` of the live platform with a
    department, a pushed dataset and the reviewer's findings on it; `odpctl restore` onto
    ANOTHER cluster (deploy/pg.sh init, its own port, directory and passwords) and other
    certificate directories; the services started against that copy serve the same data,
    accept the same keys and continue every event counter with no gap or repeat. A
    restore onto a platform that already holds data, and a damaged backup, are refused. */
#include "pushing.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*  Run odpctl with args and extra environment; its exit status, stdout+stderr in log. */
static int s_odpctl(const char *const *args, const char *const *env, const char *log)
{
    char path[512];
    snprintf(path, sizeof path, "%s/odpctl", h_bin());
    const char *argv[8] = {path};
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    pid_t pid = h_spawn(argv, env, log, log);
    int rc = h_wait_exit(pid, 60000);
    if (rc < 0) {
        kill(pid, SIGKILL);
        h_wait_exit(pid, 5000);
    }
    return rc;
}

static bool s_log_has(const char *log, const char *text)
{
    char buf[8192] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
        fclose(f);
    }
    return strstr(buf, text) != NULL;
}

/*  The value of `export KEY='value'` in a file written by deploy/pg.sh. */
static bool s_env_value(const char *file, const char *key, char *out, size_t size)
{
    FILE *f = fopen(file, "r");
    char line[1024], want[128];
    snprintf(want, sizeof want, "export %s=", key);
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) {
        if (strncmp(line, want, strlen(want)) != 0)
            continue;
        char *v = line + strlen(want);
        v[strcspn(v, "\n")] = '\0';
        if (*v == '\'') {
            v++;
            v[strcspn(v, "'")] = '\0';
        }
        snprintf(out, size, "%s", v);
        found = true;
    }
    if (f)
        fclose(f);
    return found;
}

typedef struct {
    int64_t seq[ODP_NSERVICES];
    int64_t received, accepted, quarantined, outbox_rows;
    bool dept_ok;
} s_state_t;

/*  What the platform serves now, through its services (and the registrar's outbox size
    through pg, the superuser connection given). */
static void s_observe(const char *dept, int64_t upload, PGconn *pg, s_state_t *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < ODP_NSERVICES; i++)
        h_health(odp_service_names[i], &s->seq[i], NULL, NULL);
    odp_client_t *c = h_client("reviewer", h_keyfile(dept));
    odp_review_show_t m = {0};
    m.upload = odp_v_int(upload);
    odp_reply_t rep;
    if (h_call(c, &odp_def_review_show, &m, &rep) == 200) {
        s->received = h_int(&rep, "received");
        s->accepted = h_int(&rep, "accepted");
        s->quarantined = h_int(&rep, "quarantined");
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    /*  The department's own key, as it was before: whoami answers as that department. */
    c = h_client("registrar", h_keyfile(dept));
    odp_whoami_t w = {0};
    if (h_call(c, &odp_def_whoami, &w, &rep) == 200) {
        char id[65];
        tp_str(&rep, "id", id, sizeof id);
        s->dept_ok = strcmp(id, dept) == 0;
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    s->outbox_rows = h_pg_int(pg, "SELECT count(*) FROM registrar.outbox");
}

static void s_backup_restore(void)
{
    const char *dept = "446600001";
    char resource[33];
    CHECK(h_department(dept, "备份恢复测试部门") == 0, "department.add");
    if (!tp_entry(dept, "重点企业资产 备份", "dataset", "key_enterprise_assets", true, resource))
        return;
    size_t len;
    char *data = tp_read("key_enterprise_assets.messy.gb18030.csv", &len);
    if (!data)
        return;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource, .encoding = "gb18030"};
    tp_result_t res;
    int st = tp_push(c, &o, data, len, &res);
    odp_client_destroy(&c);
    free(data);
    CHECK(st == 200, "push: %s gave %d %s %s", res.step, st, res.code, res.message);
    if (st != 200)
        return;
    /*  Wait for the reviewer's findings: they are part of what must survive. */
    PGconn *pg = h_pg_super();
    s_state_t before;
    for (int i = 0; i < 200; i++) {
        s_observe(dept, res.upload, pg, &before);
        if (before.received > 0)
            break;
        usleep(100 * 1000);
    }
    /*  Event numbers are announced just after their commit: let them settle. */
    usleep(500 * 1000);
    s_observe(dept, res.upload, pg, &before);
    CHECK(before.received == 300 && before.quarantined == 8 && before.dept_ok,
          "before the backup: received %lld quarantined %lld, department key %s",
          (long long)before.received, (long long)before.quarantined,
          before.dept_ok ? "ok" : "refused");
    PQfinish(pg);

    char tar[512], log[512];
    snprintf(tar, sizeof tar, "%s/backup-%d.tar", h_var(), (int)getpid());
    snprintf(log, sizeof log, "%s/log/backup.log", h_var());
    remove(tar);
    const char *bargs[] = {"backup", tar, NULL};
    int rc = s_odpctl(bargs, NULL, log);
    CHECK(rc == 0, "odpctl backup exit %d (see %s)", rc, log);
    if (rc != 0)
        return;
    /*  A service may announce an event of its own while the backup runs (metrics' monitor
        on a loaded machine, say): the copy holds each counter somewhere between its value
        before the backup and its value after. */
    s_state_t during;
    pg = h_pg_super();
    s_observe(dept, res.upload, pg, &during);
    PQfinish(pg);
    /*  Never over a platform that has data. */
    const char *rargs[] = {"restore", tar, NULL};
    snprintf(log, sizeof log, "%s/log/restore-refused.log", h_var());
    rc = s_odpctl(rargs, NULL, log);
    CHECK(rc == 1 && s_log_has(log, "already holds"),
          "restore onto the live database: exit %d, not 1 with 'already holds' (see %s)", rc, log);

    /*  Another cluster: its own port (in this run's range), directory and passwords. */
    char pgdir[256], envfile[512], port[16];
    snprintf(port, sizeof port, "%d", atoi(h_env("ODP_PORT_BASE")) + 95);
    snprintf(pgdir, sizeof pgdir, "/tmp/odp-test-restore-%s", port);
    snprintf(envfile, sizeof envfile, "%s/restore-pg.env", h_var());
    const char *destroy[] = {"/bin/bash", "deploy/pg.sh", "destroy", pgdir, NULL};
    h_wait_exit(h_spawn(destroy, NULL, NULL, NULL), 60000);
    const char *init[] = {"/bin/bash", "deploy/pg.sh", "init", pgdir, port, envfile, NULL};
    snprintf(log, sizeof log, "%s/log/restore-pg.log", h_var());
    rc = h_wait_exit(h_spawn(init, NULL, log, log), 120000);
    CHECK(rc == 0, "deploy/pg.sh init of the second cluster: exit %d (see %s)", rc, log);
    char url[512] = "";
    s_env_value(envfile, "ODP_PG_SUPERUSER_URL", url, sizeof url);

    static char env[16][600];
    const char *envp[17] = {0};
    int n = 0;
    snprintf(env[n++], sizeof env[0], "ODP_PG_SUPERUSER_URL=%s", url);
    snprintf(env[n++], sizeof env[0], "ODP_CERT_DIR=%s/restored/public", h_var());
    snprintf(env[n++], sizeof env[0], "ODP_SERVER_CERT=%s/restored/server", h_var());
    snprintf(env[n++], sizeof env[0], "ODP_SERVICE_KEYS=%s/restored/keys", h_var());
    snprintf(env[n++], sizeof env[0], "ODP_DB_PORT=%s", port);
    for (int i = 0; i < ODP_NSERVICES; i++) {
        char key[64], pw[128] = "";
        snprintf(key, sizeof key, "ODP_%s_DB_PASSWORD", odp_service_names[i]);
        for (char *p = key; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        s_env_value(envfile, key, pw, sizeof pw);
        snprintf(env[n++], sizeof env[0], "%s=%s", key, pw);
    }
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    char restored[512];
    snprintf(restored, sizeof restored, "%s/restored", h_var());
    const char *rmr[] = {"/bin/rm", "-rf", restored, NULL};
    h_wait_exit(h_spawn(rmr, NULL, NULL, NULL), 10000);

    /*  A damaged copy (here a directory backup with one byte of its dump changed) is
        refused before anything is written. */
    char bad[600], dump[700];
    snprintf(bad, sizeof bad, "%s.dir", tar);
    const char *rmbad[] = {"/bin/rm", "-rf", bad, NULL};
    h_wait_exit(h_spawn(rmbad, NULL, NULL, NULL), 10000);
    const char *dargs[] = {"backup", bad, NULL};
    snprintf(log, sizeof log, "%s/log/backup-dir.log", h_var());
    CHECK(s_odpctl(dargs, NULL, log) == 0, "odpctl backup into a directory (see %s)", log);
    snprintf(dump, sizeof dump, "%s/db.dump", bad);
    FILE *f = fopen(dump, "r+b");
    CHECK(f != NULL, "no %s", dump);
    if (f) {
        fseek(f, 100, SEEK_SET);
        int ch = fgetc(f);
        fseek(f, 100, SEEK_SET);
        fputc(ch ^ 0x55, f);
        fclose(f);
    }
    const char *badargs[] = {"restore", bad, NULL};
    snprintf(log, sizeof log, "%s/log/restore-damaged.log", h_var());
    rc = s_odpctl(badargs, envp, log);
    CHECK(rc == 1 && s_log_has(log, "backup damaged: db.dump"),
          "restore of a damaged backup: exit %d, no 'backup damaged: db.dump' (see %s)", rc, log);
    h_wait_exit(h_spawn(rmbad, NULL, NULL, NULL), 10000);

    snprintf(log, sizeof log, "%s/log/restore.log", h_var());
    rc = s_odpctl(rargs, envp, log);
    CHECK(rc == 0, "odpctl restore onto the second cluster: exit %d (see %s)", rc, log);

    /*  The platform, now on the restored cluster and certificates. */
    h_stop_all();
    bool up = rc == 0;
    for (int i = 0; up && i < ODP_NSERVICES; i++)
        up = h_service_start(odp_service_names[i], envp) > 0;
    CHECK(up, "services did not start on the restored cluster");
    PGconn *pg2 = PQconnectdb(url);
    if (up) {
        s_state_t after;
        s_observe(dept, res.upload, pg2, &after);
        for (int i = 0; i < ODP_NSERVICES; i++)
            CHECK(after.seq[i] >= before.seq[i] && after.seq[i] <= during.seq[i],
                  "%s event counter %lld after, %lld before the backup, %lld after it",
                  odp_service_names[i], (long long)after.seq[i], (long long)before.seq[i],
                  (long long)during.seq[i]);
        CHECK(after.received == before.received && after.accepted == before.accepted &&
                  after.quarantined == before.quarantined,
              "review after: %lld/%lld/%lld, before %lld/%lld/%lld", (long long)after.received,
              (long long)after.accepted, (long long)after.quarantined, (long long)before.received,
              (long long)before.accepted, (long long)before.quarantined);
        CHECK(after.dept_ok, "the department's key is not accepted after the restore");
        CHECK(after.outbox_rows == before.outbox_rows, "registrar outbox %lld rows, was %lld",
              (long long)after.outbox_rows, (long long)before.outbox_rows);
        /*  The next change takes the next numbers: the outbox stays 1..N, no gap, no
            repeat, and the registrar announces the new last number. */
        CHECK(h_department("446600002", "恢复后新增部门") == 0, "department.add after restore");
        char sql[300];
        int64_t rows = h_pg_int(pg2, "SELECT count(*) FROM registrar.outbox");
        int64_t distinct = h_pg_int(pg2, "SELECT count(DISTINCT seq) FROM registrar.outbox");
        int64_t lo = h_pg_int(pg2, "SELECT min(seq) FROM registrar.outbox");
        int64_t hi = h_pg_int(pg2, "SELECT max(seq) FROM registrar.outbox");
        CHECK(rows > before.outbox_rows && distinct == rows && lo == 1 && hi == rows,
              "registrar outbox: %lld rows (%lld before), %lld distinct, seq %lld..%lld",
              (long long)rows, (long long)before.outbox_rows, (long long)distinct, (long long)lo,
              (long long)hi);
        int64_t seq = 0;
        for (int i = 0; i < 30 && seq != hi; i++) {
            h_health("registrar", &seq, NULL, NULL);
            if (seq != hi)
                usleep(100 * 1000);
        }
        CHECK(seq == hi, "registrar announces event %lld, its outbox ends at %lld", (long long)seq,
              (long long)hi);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM registrar.stage_u%lld",
                 (long long)res.upload);
        CHECK(h_pg_int(pg2, sql) == res.rows_staged,
              "restored staging table of upload %lld does not hold the pushed rows",
              (long long)res.upload);
    }
    PQfinish(pg2);
    h_stop_all();
    h_wait_exit(h_spawn(destroy, NULL, NULL, NULL), 60000);
    remove(tar);
    CHECK(h_start_all() == 0, "the original platform did not start again");
}

const h_case_t t_backup_cases[] = {{"backup: restore on another cluster", s_backup_restore},
                                   {NULL, NULL}};
