/*  Consuming events exactly once (common/consumer.h), proved on the first real consumer:
    the metrics service counts the registrar's events per topic in metrics.event_counts.
    Whatever happens - the consumer killed with SIGKILL mid-stream, down while events flow,
    the source killed, the consumer's database connection cut, PUB dropping most of the
    stream - its counts end equal to the registrar's outbox, topic by topic: nothing lost,
    nothing counted twice. The events come from plan.add, pipelined by a provider. */
#include "harness.h"

#include "common/auth.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_DEPT "469900001"

static void s_department(void)
{
    static bool done = false;
    if (!done)
        CHECK(h_department(S_DEPT, "消费者测试部门") == 0, "department %s registers", S_DEPT);
    done = true;
}

/*  count plan.add requests in flight on one DEALER as the test department, without
    waiting for replies (each committed one is one catalog.planned event). */
static zsock_t *s_plans_send(int count, const char *tag)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    char ep[256], e[256];
    odp_config_endpoint("registrar", false, false, ep, sizeof ep);
    CHECK(odp_auth_client(d, h_keyfile(S_DEPT), e, sizeof e) == 0, "curve client: %s", e);
    zsock_set_sndhwm(d, 0);
    zsock_set_rcvhwm(d, 0);
    zsock_connect(d, "%s", ep);
    for (int i = 0; i < count; i++) {
        char title[64];
        snprintf(title, sizeof title, "%s计划%d", tag, i);
        odp_plan_add_t m = {0};
        m.title = odp_v_str(title);
        m.open_type = odp_v_str("无条件开放");
        m.update_cycle = odp_v_str("daily");
        m.due_on = odp_v_str("2030-12-31");
        m.maintainer = odp_v_str("消费者测试");
        msgpack_sbuffer buf;
        odp_encode_buf(&odp_def_plan_add, &m, &buf);
        zmsg_t *msg = zmsg_new();
        zmsg_addstr(msg, ODP_PROTOCOL);
        zmsg_addstr(msg, odp_def_plan_add.name);
        zmsg_addmem(msg, buf.data, buf.size);
        zmsg_send(&msg, d);
        msgpack_sbuffer_destroy(&buf);
    }
    return d;
}

/*  Read the replies waiting on d within wait_ms; returns how many said 200. */
static int s_plans_replies(zsock_t *d, int wait_ms)
{
    int ok = 0;
    zpoller_t *p = zpoller_new(d, NULL);
    while (zpoller_wait(p, wait_ms)) {
        zmsg_t *r = zmsg_recv(d);
        char *st = zmsg_popstr(r);
        ok += st && strcmp(st, "200") == 0;
        free(st);
        zmsg_destroy(&r);
        wait_ms = 0;
    }
    zpoller_destroy(&p);
    return ok;
}

/*  count plans, all answered. */
static void s_plans(int count, const char *tag)
{
    zsock_t *d = s_plans_send(count, tag);
    int ok = 0;
    int64_t until = zclock_mono() + 60000;
    while (ok < count && zclock_mono() < until)
        ok += s_plans_replies(d, 1000);
    zsock_destroy(&d);
    CHECK(ok == count, "%d of %d plan.add succeeded", ok, count);
}

static int64_t s_registrar_last(PGconn *pg)
{
    return h_pg_int(pg, "SELECT last FROM registrar.outbox_counter");
}

static int64_t s_cursor(PGconn *pg)
{
    return h_pg_int(pg, "SELECT last FROM metrics.consumer_cursor WHERE source = 'registrar'");
}

/*  Where the metrics log ends now, and how often needle occurs after from. */
static long s_log_size(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/log/metrics.log", h_var());
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static int s_log_count(long from, const char *needle)
{
    char path[512], line[4096];
    snprintf(path, sizeof path, "%s/log/metrics.log", h_var());
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    fseek(f, from, SEEK_SET);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/*  Wait until metrics has handled every registrar event, then compare, topic by topic,
    its counts and last numbers with the registrar's outbox (events it dead-lettered
    excluded: they are counted there instead). */
static void s_check_exact(const char *what)
{
    PGconn *pg = h_pg_super();
    int64_t until = zclock_mono() + 60000, last, cur;
    do {
        last = s_registrar_last(pg);
        cur = s_cursor(pg);
        if (cur == last)
            break;
        zclock_sleep(100);
    } while (zclock_mono() < until);
    CHECK(cur == last, "%s: metrics' cursor is %lld, the registrar's last event %lld", what,
          (long long)cur, (long long)last);
    PGresult *r =
        PQexec(pg, "SELECT coalesce(o.topic, e.topic), coalesce(o.n, 0), coalesce(e.count, 0), "
                   "coalesce(o.m, 0), coalesce(e.last_seq, 0) "
                   "FROM (SELECT topic, count(*) AS n, max(seq) AS m FROM registrar.outbox x "
                   "      WHERE NOT EXISTS (SELECT 1 FROM metrics.consumer_dead_letter d "
                   "                        WHERE d.source = 'registrar' AND d.seq = x.seq) "
                   "      GROUP BY topic) o "
                   "FULL JOIN (SELECT topic, count, last_seq FROM metrics.event_counts "
                   "           WHERE source = 'registrar') e ON e.topic = o.topic");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", what, PQresultErrorMessage(r));
    int topics = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
    CHECK(topics > 0, "%s: no topics counted", what);
    for (int i = 0; i < topics; i++)
        CHECK(strcmp(PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)) == 0 &&
                  strcmp(PQgetvalue(r, i, 3), PQgetvalue(r, i, 4)) == 0,
              "%s: %s: %s events in the outbox, %s counted (last %s, counted last %s)", what,
              PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
              PQgetvalue(r, i, 4));
    PQclear(r);
    int64_t counted = h_pg_int(pg, "SELECT (SELECT coalesce(sum(count), 0) FROM "
                                   "metrics.event_counts WHERE source = 'registrar') + "
                                   "(SELECT count(*) FROM metrics.consumer_dead_letter "
                                   "WHERE source = 'registrar')");
    CHECK(counted == last, "%s: %lld counted or dead-lettered for %lld events", what,
          (long long)counted, (long long)last);
    PQfinish(pg);
}

/*  (a) SIGKILL at random points while 2,000 events flow, restarted each time. */
static void s_killed_mid_stream(void)
{
    s_department();
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    PGconn *pg = h_pg_super();
    const int total = 2000;
    zsock_t *d = s_plans_send(total, "杀");
    int ok = 0, kills = 0, behind = 0;
    int64_t until = zclock_mono() + 90000;
    int64_t next_kill = zclock_mono() + 100 + rand() % 400;
    while (ok < total && zclock_mono() < until) {
        ok += s_plans_replies(d, 20);
        if (zclock_mono() >= next_kill && kills < 8) {
            behind += s_cursor(pg) < s_registrar_last(pg);
            h_service_kill9("metrics");
            CHECK(h_service_start("metrics", NULL) > 0, "metrics restarts after SIGKILL");
            kills++;
            next_kill = zclock_mono() + 100 + rand() % 600;
        }
    }
    zsock_destroy(&d);
    CHECK(ok == total, "%d of %d plan.add succeeded", ok, total);
    /*  Once more while it catches up, if it has not yet. */
    if (s_cursor(pg) < s_registrar_last(pg)) {
        behind++;
        h_service_kill9("metrics");
        CHECK(h_service_start("metrics", NULL) > 0, "metrics restarts after SIGKILL");
        kills++;
    }
    PQfinish(pg);
    CHECK(behind > 0, "no kill hit metrics while it was behind: the test proves nothing");
    printf("#   seed %u: %d kills, %d of them with events pending\n", seed, kills, behind);
    s_check_exact("after SIGKILLs");
}

/*  (b) Down while its source emits; started, it catches up. */
static void s_down_catches_up(void)
{
    s_department();
    h_service_stop("metrics");
    PGconn *pg = h_pg_super();
    int64_t before = s_cursor(pg);
    s_plans(300, "停");
    CHECK(s_cursor(pg) == before, "the cursor moved while metrics was down");
    CHECK(s_registrar_last(pg) >= before + 300, "the registrar emitted while metrics was down");
    PQfinish(pg);
    CHECK(h_service_start("metrics", NULL) > 0, "metrics starts");
    s_check_exact("after catching up");
}

/*  (c) The source killed mid-stream and restarted. */
static void s_source_killed(void)
{
    s_department();
    PGconn *pg = h_pg_super();
    int64_t s0 = s_registrar_last(pg);
    zsock_t *d = s_plans_send(800, "源");
    zclock_sleep(100 + rand() % 300);
    h_service_kill9("registrar");
    zsock_destroy(&d);
    int64_t s1 = s_registrar_last(pg);
    PQfinish(pg);
    CHECK(s1 > s0 && s1 < s0 + 800, "the kill did not hit mid-stream (%lld of 800 committed)",
          (long long)(s1 - s0));
    CHECK(h_service_start("registrar", NULL) > 0, "registrar restarts");
    s_plans(200, "源后");
    s_check_exact("after the source's SIGKILL");
}

/*  (d) The consumer's database connection cut again and again while events flow: it
    retries, reconnects, reconciles, and ends exact. */
static void s_db_cut(void)
{
    s_department();
    long from = s_log_size();
    PGconn *pg = h_pg_super();
    zsock_t *d = s_plans_send(1000, "断");
    int ok = 0, cuts = 0;
    int64_t until = zclock_mono() + 60000;
    int64_t next_cut = zclock_mono() + 150;
    while (ok < 1000 && zclock_mono() < until) {
        ok += s_plans_replies(d, 20);
        if (zclock_mono() >= next_cut && cuts < 6) {
            cuts += h_pg_int(pg, "SELECT count(pg_terminate_backend(pid)) FROM "
                                 "pg_stat_activity WHERE usename = 'odp_metrics'") > 0;
            next_cut = zclock_mono() + 250;
        }
    }
    zsock_destroy(&d);
    PQfinish(pg);
    CHECK(ok == 1000, "%d of 1000 plan.add succeeded", ok);
    CHECK(cuts >= 3, "only %d connection cuts", cuts);
    s_check_exact("after connection cuts");
    int reconciled = s_log_count(from, "event=consumer.reconciled");
    CHECK(reconciled >= 1, "metrics never reconciled after a reconnection");
    CHECK(h_service_pid("metrics") > 0, "metrics still running");
    printf("#   %d cuts, %d reconciliations, %d retries\n", cuts, reconciled,
           s_log_count(from, "event=consumer.retry"));
}

/*  (e) PUB drops nearly everything: a source high-water mark of 1, a tiny receive
    buffer, and the consumer stopped during a burst. Replay makes it exact. */
static void s_tiny_hwm(void)
{
    s_department();
    const char *src_env[] = {"ODP_REGISTRAR_PUB_HWM=1", NULL};
    const char *con_env[] = {"ODP_METRICS_SUB_HWM=1", "ODP_SUB_RCVBUF=2048", NULL};
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", src_env) > 0, "registrar starts with PUB_HWM=1");
    h_service_stop("metrics");
    CHECK(h_service_start("metrics", con_env) > 0, "metrics starts with SUB_HWM=1");
    s_check_exact("before the burst");
    long from = s_log_size();
    kill(h_service_pid("metrics"), SIGSTOP);
    s_plans(1000, "溢");
    kill(h_service_pid("metrics"), SIGCONT);
    s_check_exact("after the burst");
    int gaps = s_log_count(from, "event=consumer.gap source=registrar");
    CHECK(gaps > 0, "no gap was seen: the burst did not overflow, the test proves nothing");
    printf("#   %d gaps filled by replay\n", gaps);
    h_service_stop("registrar");
    CHECK(h_service_start("registrar", NULL) > 0, "registrar restarts with defaults");
    h_service_stop("metrics");
    CHECK(h_service_start("metrics", NULL) > 0, "metrics restarts with defaults");
}

/*  An event the consumer refuses (its body breaks the topic's declaration) is
    dead-lettered with the reason, and the stream goes on past it. The bad event is
    written into the registrar's outbox directly, as only a broken source could. */
static void s_dead_letter(void)
{
    s_department();
    PGconn *pg = h_pg_super();
    PGresult *r = PQexec(pg, "BEGIN");
    PQclear(r);
    int64_t seq = h_pg_int(pg, "UPDATE registrar.outbox_counter SET last = last + 1 "
                               "RETURNING last");
    /*  The envelope only: id, department, title and due_on are missing. */
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    const char *kv[4][2] = {{"source", "registrar"},
                            {"seq", NULL},
                            {"at", "2026-01-01T00:00:00.000Z"},
                            {"actor", "operations:test"}};
    msgpack_pack_map(&pk, 4);
    for (int i = 0; i < 4; i++) {
        msgpack_pack_str(&pk, strlen(kv[i][0]));
        msgpack_pack_str_body(&pk, kv[i][0], strlen(kv[i][0]));
        if (kv[i][1]) {
            msgpack_pack_str(&pk, strlen(kv[i][1]));
            msgpack_pack_str_body(&pk, kv[i][1], strlen(kv[i][1]));
        } else {
            msgpack_pack_int64(&pk, seq);
        }
    }
    char seqs[24];
    snprintf(seqs, sizeof seqs, "%lld", (long long)seq);
    const char *vals[2] = {seqs, buf.data};
    int lens[2] = {0, (int)buf.size};
    int fmts[2] = {0, 1};
    r = PQexecParams(pg,
                     "INSERT INTO registrar.outbox (seq, topic, body) "
                     "VALUES ($1::bigint, 'catalog.planned', $2::bytea)",
                     2, NULL, vals, lens, fmts, 0);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "bad event stored: %s", PQresultErrorMessage(r));
    PQclear(r);
    r = PQexec(pg, "COMMIT");
    PQclear(r);
    msgpack_sbuffer_destroy(&buf);
    CHECK(seq > 0, "a number for the bad event");

    s_plans(50, "后");
    s_check_exact("past a refused event");
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM metrics.consumer_dead_letter WHERE source = 'registrar' "
             "AND seq = %lld AND topic = 'catalog.planned' AND reason LIKE 'catalog.planned: %%' "
             "AND body = (SELECT body FROM registrar.outbox WHERE seq = %lld)",
             (long long)seq, (long long)seq);
    CHECK(h_pg_int(pg, sql) == 1, "event %lld is not dead-lettered with its body and reason",
          (long long)seq);
    CHECK(h_pg_int(pg, "SELECT count(*) FROM metrics.consumer_dead_letter") == 1,
          "exactly one dead letter");
    PQfinish(pg);
}

const h_case_t t_consumer_cases[] = {
    {"consumer: SIGKILLed at random while 2,000 events flow, counts stay exact",
     s_killed_mid_stream},
    {"consumer: down while its source emits, catches up on start", s_down_catches_up},
    {"consumer: the source SIGKILLed mid-stream, counts stay exact", s_source_killed},
    {"consumer: database connection cut repeatedly, retries and reconciles, exact", s_db_cut},
    {"consumer: a source PUB_HWM of 1 and a stopped consumer, exact by replay", s_tiny_hwm},
    {"consumer: a refused event is dead-lettered with its reason and the stream goes on",
     s_dead_letter},
    {NULL, NULL}};
