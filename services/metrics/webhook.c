/*  The webhook forwarder: every event metrics has handled, to each configured HTTP
    endpoint as a CloudEvent (HTTP binding, structured mode: the whole event is the JSON
    body, Content-Type application/cloudevents+json).

    The event handler keeps each event's CloudEvent in event_log in the transaction that
    moves the consumer's cursor; this loop sends them later (design.md, "Consuming
    events": effects outside PostgreSQL are at least once). Per webhook and source a
    cursor says what was delivered: the next event is sent only after the previous one
    got a 2xx, so delivery is in order per source, and a crash between the answer and the
    cursor's update sends that one event again (at least once; its `id` lets a receiver
    drop the copy). A failure backs that webhook off, 100 ms doubling to
    ODP_METRICS_WEBHOOK_MAX_BACKOFF_MS (30 s); the others go on. A timer turn sends for at
    most 50 ms, so requests are never held long. Rows every webhook has passed are pruned. */
#include "metrics.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t s_discard(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * n;
}

/*  POST one CloudEvent; 0 on a 2xx, else -1 with why. */
static int s_post(metrics_t *m, const char *url, const char *body, char *why, size_t size)
{
    CURL *c = m->curl;
    curl_easy_reset(c);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/cloudevents+json; charset=utf-8");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     (long)odp_config_int("metrics", "WEBHOOK_TIMEOUT_MS", 2000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        snprintf(why, size, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, size, "HTTP status %ld", status);
        return -1;
    }
    return 0;
}

static void s_backoff(odp_db_t *db, const char *id, const char *why)
{
    const char *vals[3] = {id, why, odp_config("metrics", "WEBHOOK_MAX_BACKOFF_MS", "30000")};
    odp_db_cmd(db,
               "UPDATE webhooks SET failures = failures + 1, last_error = $2, backoff_ms = "
               "least(greatest(backoff_ms * 2, 100), $3::int), retry_at = clock_timestamp() + "
               "least(greatest(backoff_ms * 2, 100), $3::int) * interval '1 millisecond' WHERE "
               "id = $1::bigint",
               3, vals, NULL);
}

/*  Send webhook id's events of source after its cursor, in order, until one fails (-1),
    none is left or the turn's time is up (0). */
static int s_deliver(metrics_t *m, odp_db_t *db, const char *id, const char *url,
                     const char *source, int64_t until)
{
    while (zclock_mono() < until) {
        const char *v[2] = {id, source};
        PGresult *n = odp_db_exec(db,
                                  "SELECT l.seq, l.cloudevent FROM webhook_cursor c JOIN "
                                  "event_log l ON l.source = c.source AND l.seq = c.last + 1 "
                                  "WHERE c.webhook = $1::bigint AND c.source = $2",
                                  2, v, NULL);
        if (!n || PQresultStatus(n) != PGRES_TUPLES_OK || PQntuples(n) != 1) {
            PQclear(n);
            return 0;
        }
        char seq[24], why[256];
        snprintf(seq, sizeof seq, "%s", PQgetvalue(n, 0, 0));
        int rc = s_post(m, url, PQgetvalue(n, 0, 1), why, sizeof why);
        PQclear(n);
        if (rc < 0) {
            s_backoff(db, id, why);
            odp_info("event=metrics.webhook_failed webhook=%s source=%s seq=%s error=\"%s\"", id,
                     source, seq, why);
            return -1;
        }
        const char *vals[3] = {id, source, seq};
        if (odp_db_cmd(db,
                       "WITH c AS (UPDATE webhook_cursor SET last = $3::bigint WHERE webhook = "
                       "$1::bigint AND source = $2) UPDATE webhooks SET delivered = delivered + "
                       "1, backoff_ms = 0, retry_at = NULL, last_error = NULL WHERE id = "
                       "$1::bigint",
                       3, vals, NULL) < 0)
            return 0;
    }
    return 0;
}

static void s_tick(odp_service_t *svc, void *arg)
{
    metrics_t *m = arg;
    odp_db_t *db = odp_service_db(svc);
    if (!m->curl || !odp_db_up(db))
        return;
    int64_t now = zclock_mono();
    if (now >= m->webhook_due_ms) {
        /*  What every webhook has passed (everything, when there is none) is pruned. */
        odp_db_cmd(db,
                   "DELETE FROM event_log l WHERE l.seq <= coalesce((SELECT min(c.last) FROM "
                   "webhook_cursor c WHERE c.source = l.source), (SELECT cc.last FROM "
                   "consumer_cursor cc WHERE cc.source = l.source))",
                   0, NULL, NULL);
        m->webhook_due_ms = now + 10000;
    }
    PGresult *r = odp_db_exec(db,
                              "SELECT h.id, h.url, c.source FROM webhooks h JOIN webhook_cursor c "
                              "ON c.webhook = h.id WHERE h.retry_at IS NULL OR h.retry_at <= "
                              "clock_timestamp() ORDER BY h.id, c.source",
                              0, NULL, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return;
    }
    int64_t until = now + 50;
    const char *failed = "";
    for (int i = 0; i < PQntuples(r) && zclock_mono() < until; i++) {
        const char *id = PQgetvalue(r, i, 0);
        if (strcmp(id, failed) == 0)
            continue;
        if (s_deliver(m, db, id, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), until) < 0)
            failed = id;
    }
    PQclear(r);
}

int metrics_webhooks_start(metrics_t *m)
{
    m->curl = curl_easy_init();
    if (!m->curl) {
        odp_error("event=metrics.webhooks_failed msg=\"libcurl could not start\"");
        return -1;
    }
    return odp_service_timer(m->svc, (int)odp_config_int("metrics", "WEBHOOK_MS", 100), s_tick, m);
}

void metrics_webhooks_stop(metrics_t *m)
{
    if (m->curl)
        curl_easy_cleanup(m->curl);
    m->curl = NULL;
}
