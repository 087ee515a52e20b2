/*  The webhook forwarder: every event metrics has handled, to each configured HTTP
    endpoint as a CloudEvent (HTTP binding, structured mode: the whole event is the JSON
    body, Content-Type application/cloudevents+json).

    The event handler keeps each event's CloudEvent in event_log in the transaction that
    moves the consumer's cursor (while a webhook follows its source); this loop sends them
    later (design.md, "Consuming events": effects outside PostgreSQL are at least once).
    Per webhook and source a cursor says what was delivered: the next event is sent only
    after the previous one got a 2xx, so delivery is in order per source, and a crash
    between the answer and the cursor's update sends that one event again (at least once;
    its `id` lets a receiver drop the copy). A failure backs that webhook off, 100 ms
    doubling to ODP_METRICS_WEBHOOK_MAX_BACKOFF_MS (30 s); the others go on.

    Requests go through a curl multi handle, one in flight per webhook: a timer turn
    starts what is due, lets curl move every request on without blocking, and takes the
    answers, for at most S_TURN_MS - a slow or silent receiver costs its own requests'
    timeout (ODP_METRICS_WEBHOOK_TIMEOUT_MS, 2000), never the loop's. Rows every webhook
    has passed are pruned. */
#include "metrics.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SLOTS   16 /* webhooks with a request in flight at once */
#define S_TURN_MS 20 /* a timer turn's work at most */

/*  One request in flight: which webhook, source and event it carries. */
typedef struct {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char id[24];
    char source[16];
    char seq[24];
} s_slot_t;

static s_slot_t s_slots[S_SLOTS];

static size_t s_discard(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * n;
}

static void s_slot_free(metrics_t *m, s_slot_t *sl)
{
    if (sl->easy) {
        curl_multi_remove_handle(m->curl, sl->easy);
        curl_easy_cleanup(sl->easy);
    }
    curl_slist_free_all(sl->headers);
    free(sl->body);
    memset(sl, 0, sizeof *sl);
}

/*  Start POSTing body for webhook id; 0, or -1 (nothing started). */
static int s_start(metrics_t *m, s_slot_t *sl, const char *id, const char *url, const char *source,
                   const char *seq, const char *body)
{
    sl->easy = curl_easy_init();
    sl->body = strdup(body);
    sl->headers =
        curl_slist_append(NULL, "Content-Type: application/cloudevents+json; charset=utf-8");
    if (!sl->easy || !sl->body || !sl->headers) {
        s_slot_free(m, sl);
        return -1;
    }
    snprintf(sl->id, sizeof sl->id, "%s", id);
    snprintf(sl->source, sizeof sl->source, "%s", source);
    snprintf(sl->seq, sizeof sl->seq, "%s", seq);
    CURL *c = sl->easy;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, sl->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(sl->body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     (long)odp_config_int("metrics", "WEBHOOK_TIMEOUT_MS", 2000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PRIVATE, sl);
    if (curl_multi_add_handle(m->curl, c) != CURLM_OK) {
        s_slot_free(m, sl);
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

/*  The answers that came: a 2xx moves the webhook's cursor, anything else backs it off.
    How many came. */
static int s_harvest(metrics_t *m, odp_db_t *db)
{
    CURLMsg *msg;
    int left, done = 0;
    while ((msg = curl_multi_info_read(m->curl, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        s_slot_t *sl = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
        if (!sl)
            continue;
        long status = 0;
        curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
        char why[256] = "";
        if (msg->data.result != CURLE_OK)
            snprintf(why, sizeof why, "%s", curl_easy_strerror(msg->data.result));
        else if (status < 200 || status > 299)
            snprintf(why, sizeof why, "HTTP status %ld", status);
        if (why[0]) {
            s_backoff(db, sl->id, why);
            odp_info("event=metrics.webhook_failed webhook=%s source=%s seq=%s error=\"%s\"",
                     sl->id, sl->source, sl->seq, why);
        } else {
            const char *vals[3] = {sl->id, sl->source, sl->seq};
            odp_db_cmd(db,
                       "WITH c AS (UPDATE webhook_cursor SET last = $3::bigint WHERE webhook = "
                       "$1::bigint AND source = $2 AND last = $3::bigint - 1) UPDATE webhooks SET "
                       "delivered = delivered + 1, backoff_ms = 0, retry_at = NULL, last_error = "
                       "NULL WHERE id = $1::bigint",
                       3, vals, NULL);
        }
        s_slot_free(m, sl);
        done++;
    }
    return done;
}

/*  For each webhook without a request in flight and not backing off: its next event (of
    the first of its sources that has one), started. The number started. */
static int s_fill(metrics_t *m, odp_db_t *db)
{
    char busy[S_SLOTS * 24 + 3] = "{";
    size_t off = 1, free_slots = 0;
    for (int i = 0; i < S_SLOTS; i++) {
        if (s_slots[i].easy)
            off += (size_t)snprintf(busy + off, sizeof busy - off, "%s%s", off > 1 ? "," : "",
                                    s_slots[i].id);
        else
            free_slots++;
    }
    snprintf(busy + off, sizeof busy - off, "}");
    if (free_slots == 0)
        return 0;
    const char *vals[1] = {busy};
    PGresult *r =
        odp_db_exec(db,
                    "SELECT DISTINCT ON (h.id) h.id, h.url, c.source, l.seq, l.cloudevent "
                    "FROM webhooks h JOIN webhook_cursor c ON c.webhook = h.id "
                    "JOIN event_log l ON l.source = c.source AND l.seq = c.last + 1 "
                    "WHERE (h.retry_at IS NULL OR h.retry_at <= clock_timestamp()) "
                    "AND h.id <> ALL ($1::bigint[]) ORDER BY h.id, c.source",
                    1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    int started = 0;
    for (int i = 0, k = 0; i < PQntuples(r); i++) {
        while (k < S_SLOTS && s_slots[k].easy)
            k++;
        if (k == S_SLOTS)
            break;
        if (s_start(m, &s_slots[k], PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                    PQgetvalue(r, i, 3), PQgetvalue(r, i, 4)) == 0)
            started++;
    }
    PQclear(r);
    return started;
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
    /*  Local receivers answer within a turn: take the answers and send the next events
        while the turn lasts, waiting on curl's sockets at most what is left of it. */
    int64_t until = now + S_TURN_MS;
    int running = 0;
    bool fill = true;
    do {
        if (fill)
            s_fill(m, db);
        curl_multi_perform(m->curl, &running);
        fill = s_harvest(m, db) > 0;
        int left = (int)(until - zclock_mono());
        if (!fill && running > 0 && left > 0)
            curl_multi_poll(m->curl, NULL, 0, left, NULL);
    } while ((running > 0 || fill) && zclock_mono() < until);
}

int metrics_webhooks_start(metrics_t *m)
{
    m->curl = curl_multi_init();
    if (!m->curl) {
        odp_error("event=metrics.webhooks_failed msg=\"libcurl could not start\"");
        return -1;
    }
    return odp_service_timer(m->svc, (int)odp_config_int("metrics", "WEBHOOK_MS", 100), s_tick, m);
}

void metrics_webhooks_stop(metrics_t *m)
{
    for (int i = 0; i < S_SLOTS; i++)
        if (s_slots[i].easy)
            s_slot_free(m, &s_slots[i]);
    if (m->curl)
        curl_multi_cleanup(m->curl);
    m->curl = NULL;
}
