/*  Reviewing a version, in two transactions. The first begins it: the review row and
    review.started, once however often the version is announced (data.received through
    the exactly-once consumer, and again at start for versions left waiting). The second
    runs every check set-based over the registrar's staging table
    (migrations/003_checks_compare_score.sql, 004_fast_checks.sql, 005_cheaper_checks.sql:
    check_rows, check_version) with
    its findings, quarantine, comparison, score and events; a reviewer stopped in between
    finds the review unchecked at start and checks it from the beginning. Approved versions
    are checked again after standard.set and on a schedule (ODP_REVIEWER_RECHECK_S).

    The second transaction, and the re-checks, run on a thread of their own (the checker)
    with database connections of its own, so that the service's loop goes on answering
    requests (review.show, health, ...) while a large version is checked. The loop tells
    the checker over a zactor pipe when there is work ("CHECK": a review was begun and
    committed; "RECHECK": the standard changed); the checker answers "DONE" after its
    transactions, and the loop then publishes the events they committed (the outbox is read
    back from its table, whichever connection wrote it). */
#include "reviewer.h"

#include "common/config.h"
#include "common/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_actor = "service:reviewer";

/*  The loop's side: what to tell the checker on the loop's next turn (s_tick), when the
    transaction that asked for it has committed. */
static struct {
    bool begun;   /* a review was begun: check it */
    bool recheck; /* the standard changed: re-check the approved versions */
    zactor_t *checker;
} s_loop;

/*  The checker's own connections, the one its transactions run on and a side one for a
    read-only count beside them, and its outbox (set up by the loop, used by the checker
    only), and its re-check interval in ms (ODP_REVIEWER_RECHECK_S; 0: none). */
static struct {
    odp_db_t *db, *side;
    odp_outbox_t *outbox;
    int64_t recheck_ms;
} s_checker_cfg;

/*  The checker's running statement, cancelled when the service stops (the transaction
    rolls back; the review is checked again at the next start). */
static struct {
    pthread_mutex_t lock;
    PGcancel *cancel[2]; /* the transaction's connection, the side one */
} s_running = {PTHREAD_MUTEX_INITIALIZER, {NULL, NULL}};

/*  In an open transaction: begin reviewing upload unless it has been already or is not a
    received dataset: its review row and review.started. The checks come after, in a
    transaction of their own (s_check). 0, or -1 with the failed statement in *failed. */
static int s_begin(odp_db_t *db, odp_outbox_t *outbox, int64_t upload, PGresult **failed)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[1] = {id};
    *failed = NULL;
    PGresult *r = odp_db_exec(
        db,
        "INSERT INTO reviews (upload, resource, table_name, version, department, state, "
        "rows_received) SELECT u.id, u.resource, u.table_name, u.version, r.department, "
        "'in_review', u.rows_received FROM registrar.uploads u JOIN registrar.resources r "
        "ON r.resource = u.resource WHERE u.id = $1 AND u.status = 'received' AND "
        "u.kind = 'dataset' AND u.staging_table IS NOT NULL ON CONFLICT (upload) DO NOTHING "
        "RETURNING resource, department, version",
        1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        *failed = r;
        return -1;
    }
    if (PQntuples(r) == 1) {
        odp_ev_review_started_t started = {0};
        started.resource = odp_v_str(PQgetvalue(r, 0, 0));
        started.department = odp_v_str(PQgetvalue(r, 0, 1));
        started.upload = odp_v_int(upload);
        started.version = odp_v_int(strtoll(PQgetvalue(r, 0, 2), NULL, 10));
        if (odp_outbox_append(outbox, &odp_def_ev_review_started, &started, s_actor) < 0) {
            PQclear(r);
            return -1;
        }
        s_loop.begun = true;
    }
    PQclear(r);
    return 0;
}

/*  In an open transaction: every check of a begun review (check_rows and check_version:
    whatever an interrupted run left is redone), its events, and the threshold of the
    standard. 0, or -1 with the failed statement in *failed (NULL: the connection's
    last). */
static int s_check(odp_db_t *db, odp_outbox_t *outbox, int64_t upload, PGresult **failed)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[1] = {id};
    *failed = NULL;
    /*  The lock first: a row that check_version() updates in the statement that locks it
        would drop out of that statement's result. */
    PGresult *r = odp_db_exec(db,
                              "SELECT 1 FROM reviews WHERE upload = $1 AND checked_at IS NULL "
                              "FOR UPDATE",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        *failed = r;
        return -1;
    }
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0)
        return 0;
    int64_t began = zclock_mono();
    /*  The table-wide counts: from the push's hashes of the unique fields when they cover
        them (repeats.c; no scan), else repeat_tally on the side connection while this one
        runs the row-level checks: both only read the staging table, which no longer
        changes. Without the side connection's answer check_version counts them itself. */
    PGconn *side = odp_db_conn(s_checker_cfg.side);
    int64_t hashes = 0;
    char *repeats = review_push_repeats(side ? side : odp_db_conn(db), upload, &hashes);
    bool from_push = repeats != NULL;
    bool sent =
        !from_push && side &&
        PQsendQueryParams(side, "SELECT repeat_tally($1)", 1, NULL, vals, NULL, NULL, 0) == 1;
    r = odp_db_exec(db, "SELECT check_rows($1)", 1, vals, NULL);
    for (PGresult *t; sent && (t = PQgetResult(side)) != NULL; PQclear(t))
        if (PQresultStatus(t) == PGRES_TUPLES_OK && PQntuples(t) == 1 && !PQgetisnull(t, 0, 0))
            repeats = strdup(PQgetvalue(t, 0, 0));
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        free(repeats);
        *failed = r;
        return -1;
    }
    PQclear(r);
    const char *args[2] = {id, repeats};
    r = odp_db_exec(db, "SELECT check_version($1, $2::bigint[])", 2, args, NULL);
    free(repeats);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        *failed = r;
        return -1;
    }
    PQclear(r);
    const char *set[2] = {id, from_push ? "t" : "f"};
    r = odp_db_exec(db, "UPDATE reviews SET repeats_from_push = $2 WHERE upload = $1", 2, set,
                    NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        *failed = r;
        return -1;
    }
    PQclear(r);
    /*  The counts in a statement of their own: a statement does not see what a function it
        calls has written. */
    r = odp_db_exec(db,
                    "SELECT v.upload, v.resource, v.department, (SELECT count(*) FROM findings "
                    "WHERE upload = $1), (SELECT count(*) FROM quarantine WHERE upload = $1), "
                    "coalesce(v.row_checks_scanned, 0), coalesce(v.row_checks_left_out, 0) FROM "
                    "reviews v WHERE v.upload = $1",
                    1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        *failed = r;
        return -1;
    }
    char resource[33], department[10];
    snprintf(resource, sizeof resource, "%s", PQgetvalue(r, 0, 1));
    snprintf(department, sizeof department, "%s", PQgetvalue(r, 0, 2));
    int64_t findings = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    int64_t quarantined = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    /*  The row-level checks scanned, and those the push's evidence left out (006). */
    int64_t scanned = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    int64_t left_out = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    PQclear(r);
    odp_ev_review_flagged_t flagged = {0};
    flagged.resource = odp_v_str(resource);
    flagged.department = odp_v_str(department);
    flagged.upload = odp_v_int(upload);
    flagged.findings = odp_v_int(findings);
    flagged.quarantined = odp_v_int(quarantined);
    if (odp_outbox_append(outbox, &odp_def_ev_review_flagged, &flagged, s_actor) < 0)
        return -1;
    if (quarantined > 0) {
        odp_ev_quarantine_isolated_t isolated = {0};
        isolated.resource = odp_v_str(resource);
        isolated.department = odp_v_str(department);
        isolated.upload = odp_v_int(upload);
        isolated.count = odp_v_int(quarantined);
        if (odp_outbox_append(outbox, &odp_def_ev_quarantine_isolated, &isolated, s_actor) < 0)
            return -1;
    }
    /*  Beyond a threshold of the standard the version is not worth a reviewer's time: the
        reviewer rejects it itself, naming the check and the share that failed. */
    r = odp_db_exec(db, "SELECT check_name, share, mostly FROM threshold_exceeded($1)", 1, vals,
                    NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        *failed = r;
        return -1;
    }
    if (PQntuples(r) == 1) {
        char reason[300];
        double share = strtod(PQgetvalue(r, 0, 1), NULL);
        double mostly = strtod(PQgetvalue(r, 0, 2), NULL);
        int len = snprintf(reason, sizeof reason,
                           "check %s fails on %.2f%% of the rows; the standard allows %.2f%% "
                           "(mostly %g)",
                           PQgetvalue(r, 0, 0), share * 100, (1 - mostly) * 100, mostly);
        PQclear(r);
        if (review_signoff(db, outbox, upload, false, reason, len, s_actor, failed) < 0)
            return -1;
        odp_info("event=review.threshold upload=%" PRId64 " reason=\"%s\"", upload, reason);
    } else
        PQclear(r);
    odp_info("event=review.checked upload=%" PRId64 " findings=%" PRId64 " quarantined=%" PRId64
             " row_checks_scanned=%" PRId64 " row_checks_left_out=%" PRId64
             " repeats_from_push=%s hashes_merged=%" PRId64 " ms=%" PRId64,
             upload, findings, quarantined, scanned, left_out, from_push ? "true" : "false", hashes,
             zclock_mono() - began);
    return 0;
}

/*  In an open transaction: check approved upload again (recheck_version) and, when that
    raised new findings, say so with review.rechecked. */
static int s_recheck(odp_db_t *db, odp_outbox_t *outbox, int64_t upload, PGresult **failed)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    const char *vals[1] = {id};
    *failed = NULL;
    PGresult *r = odp_db_exec(db,
                              "SELECT 1 FROM reviews WHERE upload = $1 AND state = 'approved' "
                              "FOR UPDATE",
                              1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        *failed = r;
        return -1;
    }
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0)
        return 0;
    r = odp_db_exec(db,
                    "SELECT recheck_version($1), v.resource, v.department, v.version, "
                    "coalesce((SELECT max(version) FROM standards), 0) FROM reviews v "
                    "WHERE v.upload = $1",
                    1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        *failed = r;
        return -1;
    }
    int64_t raised = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int rc = 0;
    if (raised > 0) {
        odp_ev_review_rechecked_t ev = {0};
        ev.resource = odp_v_str(PQgetvalue(r, 0, 1));
        ev.department = odp_v_str(PQgetvalue(r, 0, 2));
        ev.upload = odp_v_int(upload);
        ev.version = odp_v_int(strtoll(PQgetvalue(r, 0, 3), NULL, 10));
        ev.standard = odp_v_int(strtoll(PQgetvalue(r, 0, 4), NULL, 10));
        ev.findings = odp_v_int(raised);
        rc = odp_outbox_append(outbox, &odp_def_ev_review_rechecked, &ev, s_actor) < 0 ? -1 : 0;
        odp_info("event=review.rechecked upload=%" PRId64 " findings=%" PRId64, upload, raised);
    }
    PQclear(r);
    return rc;
}

typedef int (*s_step_fn)(odp_db_t *db, odp_outbox_t *outbox, int64_t upload, PGresult **failed);

/*  step for each upload the query lists, each in its own transaction. 0, or -1 when one
    failed (logged; the rest wait for the next turn). */
static int s_each(odp_db_t *db, odp_outbox_t *outbox, const char *query, s_step_fn step,
                  const char *what)
{
    PGresult *r = odp_db_exec(db, query, 0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        odp_error("event=review.%s_failed error=\"%s\"", what,
                  r ? PQresultErrorMessage(r) : "no connection");
        PQclear(r);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        int64_t upload = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        PGresult *failed = NULL;
        rc = odp_db_begin(db);
        if (rc == 0)
            rc = step(db, outbox, upload, &failed);
        if (rc == 0)
            rc = odp_db_commit(db);
        if (rc < 0) {
            odp_error("event=review.%s_failed upload=%" PRId64 " error=\"%s\"", what, upload,
                      failed ? PQresultErrorMessage(failed) : "the transaction failed");
            PQclear(failed);
            odp_db_rollback(db);
        }
    }
    PQclear(r);
    return rc;
}

void review_recheck_request(void)
{
    s_loop.recheck = true;
}

/*  One pass of the checker over the work it was given, each version in its own
    transaction on the checker's connection, with its running statement cancellable. 0, or
    -1 when one failed (logged; it is tried again after a pause). */
static int s_pass(odp_db_t *db, odp_outbox_t *outbox, bool *check, bool *recheck)
{
    PGconn *conn = odp_db_conn(db), *side = odp_db_conn(s_checker_cfg.side);
    if (!conn)
        return -1;
    pthread_mutex_lock(&s_running.lock);
    s_running.cancel[0] = PQgetCancel(conn);
    s_running.cancel[1] = side ? PQgetCancel(side) : NULL;
    pthread_mutex_unlock(&s_running.lock);
    int rc = 0;
    if (*check) {
        *check = false;
        rc = s_each(db, outbox,
                    "SELECT upload FROM reviews WHERE checked_at IS NULL ORDER BY upload", s_check,
                    "check");
        *check = rc < 0;
    }
    if (rc == 0 && *recheck) {
        *recheck = false;
        rc = s_each(db, outbox,
                    "SELECT upload FROM reviews WHERE state = 'approved' ORDER BY upload",
                    s_recheck, "recheck");
        *recheck = rc < 0;
    }
    pthread_mutex_lock(&s_running.lock);
    for (int i = 0; i < 2; i++) {
        PQfreeCancel(s_running.cancel[i]);
        s_running.cancel[i] = NULL;
    }
    pthread_mutex_unlock(&s_running.lock);
    return rc;
}

/*  The checker thread (s_checker_cfg): it checks at start whatever was left unchecked,
    then whatever the loop asks for, and re-checks on the schedule. It ends on $TERM only;
    a signal to the process is the loop's to handle. */
static void s_checker(zsock_t *pipe, void *arg)
{
    (void)arg;
    odp_db_t *db = s_checker_cfg.db;
    odp_outbox_t *outbox = s_checker_cfg.outbox;
    int64_t recheck_ms = s_checker_cfg.recheck_ms;
    zpoller_t *poller = zpoller_new(pipe, NULL);
    zsock_signal(pipe, 0);
    zpoller_set_nonstop(poller, true);
    bool check = true, recheck = false;
    int64_t recheck_at = zclock_mono() + recheck_ms, idle_until = 0;
    for (;;) {
        int64_t now = zclock_mono();
        /*  At least once a second: a schedule may be weeks away, beyond an int of ms. */
        int64_t next = recheck_ms > 0 && recheck_at < now + 1000 ? recheck_at : now + 1000;
        if ((check || recheck) && idle_until < next)
            next = idle_until;
        int wait = next > now ? (int)(next - now) : 0;
        if (zpoller_wait(poller, wait) == pipe) {
            char *cmd = zstr_recv(pipe);
            bool term = !cmd || streq(cmd, "$TERM");
            check = check || (cmd && streq(cmd, "CHECK"));
            recheck = recheck || (cmd && streq(cmd, "RECHECK"));
            zstr_free(&cmd);
            if (term)
                break;
            continue; /* read everything that waits before working */
        }
        now = zclock_mono();
        if (recheck_ms > 0 && now >= recheck_at) {
            recheck = true;
            recheck_at = now + recheck_ms;
        }
        if (!(check || recheck) || now < idle_until)
            continue;
        if (s_pass(db, outbox, &check, &recheck) < 0)
            idle_until = now + 2000;
        zstr_send(pipe, "DONE");
    }
    zpoller_destroy(&poller);
}

/*  The checker committed: publish its events now rather than at the next heartbeat. */
static void s_on_done(odp_service_t *svc, zsock_t *sock, void *arg)
{
    (void)arg;
    char *msg = zstr_recv(sock);
    zstr_free(&msg);
    odp_outbox_flush(odp_service_outbox(svc));
}

/*  The loop's turn: what was asked for since the last one goes to the checker. The
    transaction that asked for it (a consumer's page, standard.set) has committed by now. */
static void s_tick(odp_service_t *svc, void *arg)
{
    (void)svc;
    (void)arg;
    if (s_loop.begun && zstr_send(s_loop.checker, "CHECK") == 0)
        s_loop.begun = false;
    if (s_loop.recheck && zstr_send(s_loop.checker, "RECHECK") == 0)
        s_loop.recheck = false;
}

static odp_event_rc_t s_on_event(odp_event_t *ev, void *arg)
{
    if (strcmp(ev->source, "registrar") != 0 || ev->topic_len != strlen("data.received") ||
        memcmp(ev->topic, "data.received", ev->topic_len) != 0)
        return ODP_EVENT_DONE;
    odp_ev_data_received_t m;
    odp_error_t e;
    if (odp_decode_fields(&odp_def_ev_data_received, ev->body, &m, &e) < 0) {
        snprintf(ev->why, sizeof ev->why, "data.received: %.160s%s%.40s", e.message,
                 e.field[0] ? " field=" : "", e.field);
        return ODP_EVENT_REFUSE;
    }
    PGresult *failed;
    if (s_begin(ev->db, odp_service_outbox(arg), m.upload.i, &failed) < 0)
        return odp_event_db_fail(ev, failed, "the review");
    return ODP_EVENT_DONE;
}

/*  Versions received while the reviewer was away, or announced before its cursor started,
    are begun; reviews begun and not checked (the reviewer stopped in between) are checked
    again from the start, by the checker. */
static int s_on_start(odp_db_t *db, void *arg)
{
    s_loop.begun = true;
    return s_each(db, odp_service_outbox(arg),
                  "SELECT u.id FROM registrar.uploads u WHERE u.status = 'received' "
                  "AND u.kind = 'dataset' AND u.staging_table IS NOT NULL AND NOT "
                  "EXISTS (SELECT 1 FROM reviews v WHERE v.upload = u.id) ORDER BY u.id",
                  s_begin, "waiting");
}

odp_consumer_t *review_consumer_start(odp_service_t *svc)
{
    const char *every = odp_config("reviewer", "RECHECK_S", "3600");
    char *end;
    long long seconds = strtoll(every, &end, 10);
    if (*end || seconds < 0 || seconds > 366LL * 86400) {
        odp_error("event=review.config_failed msg=\"ODP_REVIEWER_RECHECK_S is seconds between "
                  "re-checks, 0 (none) to 31622400, not %s\"",
                  every);
        return NULL;
    }
    s_checker_cfg.recheck_ms = seconds * 1000;
    s_checker_cfg.db = odp_db_new("reviewer");
    s_checker_cfg.side = odp_db_new("reviewer");
    s_checker_cfg.outbox = s_checker_cfg.db && s_checker_cfg.side
                               ? odp_outbox_new(s_checker_cfg.db, "reviewer", NULL)
                               : NULL;
    s_loop.checker = s_checker_cfg.outbox ? zactor_new(s_checker, NULL) : NULL;
    if (!s_loop.checker ||
        odp_service_reader(svc, zactor_sock(s_loop.checker), s_on_done, NULL) < 0) {
        odp_error("event=review.checker_failed");
        review_stop(svc);
        return NULL;
    }
    odp_consumer_cfg_t cfg = {.on_event = s_on_event, .on_start = s_on_start, .arg = svc};
    odp_consumer_t *c = odp_consumer_new_service(svc, &cfg);
    if (c && odp_service_timer(svc, 10, s_tick, NULL) < 0) {
        odp_error("event=review.timer_failed");
        odp_consumer_destroy(&c);
    }
    char err[256];
    if (c && odp_consumer_follow(c, "registrar", 1, err, sizeof err) < 0) {
        odp_error("event=review.follow_failed error=\"%s\"", err);
        odp_consumer_destroy(&c);
    }
    if (!c)
        review_stop(svc);
    return c;
}

void review_stop(odp_service_t *svc)
{
    if (s_loop.checker) {
        odp_service_reader_remove(svc, zactor_sock(s_loop.checker));
        pthread_mutex_lock(&s_running.lock);
        char err[256];
        for (int i = 0; i < 2; i++)
            if (s_running.cancel[i] && !PQcancel(s_running.cancel[i], err, sizeof err))
                odp_warn("event=review.cancel_failed error=\"%s\"", err);
        pthread_mutex_unlock(&s_running.lock);
        zactor_destroy(&s_loop.checker);
    }
    odp_outbox_destroy(&s_checker_cfg.outbox);
    odp_db_destroy(&s_checker_cfg.db);
    odp_db_destroy(&s_checker_cfg.side);
}

/*  {key: count} from two-column rows, as a packed map in buf. */
static void s_pack_counts(PGresult *r, msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)PQntuples(r));
    for (int i = 0; i < PQntuples(r); i++) {
        const char *k = PQgetvalue(r, i, 0);
        msgpack_pack_str(&pk, strlen(k));
        msgpack_pack_str_body(&pk, k, strlen(k));
        msgpack_pack_int64(&pk, strtoll(PQgetvalue(r, i, 1), NULL, 10));
    }
}

int review_show_pack(odp_req_t *req, int64_t upload)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, upload);
    bool provider = strcmp(req->actor->kind, "provider") == 0;
    const char *vals[3] = {id, provider ? "1" : "0", req->actor->id};
    PGresult *r = odp_db_exec(
        req->db,
        "SELECT v.resource, v.table_name, v.version, v.department, v.state, v.rows_received, "
        "(SELECT count(*) FROM quarantine q WHERE q.upload = v.upload AND q.state = 'isolated'), "
        "(SELECT count(*) FROM quarantine q WHERE q.upload = v.upload AND q.state = 'dropped'), "
        "(SELECT count(*) FROM findings f WHERE f.upload = v.upload), s.reason, s.decided_by, "
        "to_char(s.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "v.compare::text, q.score, to_char(v.checked_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM reviews v LEFT JOIN signoffs s ON s.upload = "
        "v.upload "
        "LEFT JOIN quality_scores q ON q.upload = v.upload "
        "WHERE v.upload = $1 AND ($2 = '0' OR v.department = $3)",
        3, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return odp_req_db_fail(req, r, "the review");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "upload", "no review of upload %" PRId64, upload);
    }
    odp_rep_review_t rep = {0};
    rep.upload = odp_v_int(upload);
    rep.resource = odp_v_str(PQgetvalue(r, 0, 0));
    rep.table = odp_v_str(PQgetvalue(r, 0, 1));
    rep.version = odp_v_int(strtoll(PQgetvalue(r, 0, 2), NULL, 10));
    rep.department = odp_v_str(PQgetvalue(r, 0, 3));
    rep.state = odp_v_str(PQgetvalue(r, 0, 4));
    int64_t received = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    int64_t quarantined = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    int64_t dropped = strtoll(PQgetvalue(r, 0, 7), NULL, 10);
    rep.received = odp_v_int(received);
    rep.quarantined = odp_v_int(quarantined);
    rep.dropped = odp_v_int(dropped);
    rep.accepted = odp_v_int(received - quarantined - dropped);
    rep.findings = odp_v_int(strtoll(PQgetvalue(r, 0, 8), NULL, 10));
    for (int k = 9; k <= 11; k++)
        if (!PQgetisnull(r, 0, k))
            *(k == 9    ? &rep.reason
              : k == 10 ? &rep.decided_by
                        : &rep.decided_at) = odp_v_str(PQgetvalue(r, 0, k));
    if (!PQgetisnull(r, 0, 14))
        rep.checked_at = odp_v_str(PQgetvalue(r, 0, 14));
    if (!PQgetisnull(r, 0, 13))
        rep.score = odp_v_num(strtod(PQgetvalue(r, 0, 13), NULL));
    PGresult *types = odp_db_exec(req->db,
                                  "SELECT type, count(*) FROM findings WHERE upload = $1 "
                                  "GROUP BY type ORDER BY type",
                                  1, vals, NULL);
    PGresult *checks = types && PQresultStatus(types) == PGRES_TUPLES_OK
                           ? odp_db_exec(req->db,
                                         "SELECT check_name, count(*) FROM findings WHERE "
                                         "upload = $1 GROUP BY check_name ORDER BY check_name",
                                         1, vals, NULL)
                           : NULL;
    if (!checks || PQresultStatus(checks) != PGRES_TUPLES_OK) {
        PQclear(r);
        PQclear(types);
        return odp_req_db_fail(req, checks, "the findings");
    }
    msgpack_sbuffer tb, cb, xb;
    msgpack_sbuffer_init(&tb);
    msgpack_sbuffer_init(&cb);
    msgpack_sbuffer_init(&xb);
    s_pack_counts(types, &tb);
    s_pack_counts(checks, &cb);
    rep.by_type = odp_v_raw(tb.data, tb.size);
    rep.by_check = odp_v_raw(cb.data, cb.size);
    if (!PQgetisnull(r, 0, 12) && review_pack_json_text(PQgetvalue(r, 0, 12), &xb) == 0)
        rep.compare = odp_v_raw(xb.data, xb.size);
    int rc = odp_encode(&odp_def_rep_review, &rep, req->pk);
    msgpack_sbuffer_destroy(&tb);
    msgpack_sbuffer_destroy(&cb);
    msgpack_sbuffer_destroy(&xb);
    PQclear(types);
    PQclear(checks);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the review did not encode") : 0;
}

static int s_review_show(odp_req_t *req)
{
    const odp_review_show_t *m = req->msg;
    return review_show_pack(req, m->upload.i);
}

void review_routes(odp_service_t *svc)
{
    odp_service_route(svc, &odp_def_review_show, ODP_ALLOW_OPERATIONS | ODP_ALLOW_PROVIDER,
                      s_review_show);
    decide_routes(svc);
    report_routes(svc);
}
