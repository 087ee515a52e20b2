#include "consumer.h"

#include "auth.h"
#include "client.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SOURCES 8
#define S_PAGE        1000 /* the largest page events.replay gives */
#define S_AHEAD       4    /* pages held: the one worked through and those fetched ahead */
#define S_BATCH       4000 /* service mode with on_page: events per transaction at most */
#define S_REPLAY_MS   3000 /* no answer by then: the request socket is replaced */
#define S_TICK_MS     10   /* service mode: how often the timer paces work */
#define S_BUDGET_MS   20   /* service mode: work per turn before requests get the loop back */
#define S_BACKOFF_MIN 100
#define S_BACKOFF_MAX 5000
#define S_POLL_MAX_MS 100 /* tool mode: longest wait, so backoffs end on time */

/*  One events.replay reply being worked through: the frame and the zone its objects
    live in stay until the last item is handled, possibly several loop turns later. */
typedef struct {
    zframe_t *frame;
    msgpack_zone zone;
    const msgpack_object *items;
    uint32_t n;
    uint32_t i;
    int64_t from;    /* what was asked for */
    int64_t through; /* where the source says the page ends; 0 when it did not say */
} s_page_t;

typedef struct {
    odp_consumer_t *owner;
    char name[16];
    zsock_t *sub;       /* the source's events */
    odp_watch_t *watch; /* tool mode: the SUB's connection (a refused key is otherwise silence) */
    zsock_t *dealer;    /* its events.replay, one request at a time */
    int64_t since;
    int64_t last;   /* highest number handled */
    bool known;     /* last is meaningful (cursor read, or "now" learnt) */
    bool reload;    /* service mode: read the cursor again before anything else */
    int64_t target; /* highest number known to exist */
    bool probe;     /* ask for a replay even though nothing is known to be missing */
    bool backlog;   /* the first catch-up (start, --since): not counted as a gap */
    bool inflight;
    int64_t asked_at;
    int64_t asked_from;
    /*  pages[0] is worked through; the ones after it were asked for meanwhile (service
        and tool mode alike), so the source reads and sends while we work. Each starts
        where the one before it ended; a page that does not follow on is dropped and
        asked again. */
    s_page_t pages[S_AHEAD];
    int npages;
    int64_t stall_until; /* no work on this source before then */
    int backoff_ms;
    int64_t heard_at; /* last message on SUB */
    bool silent;      /* no message for the silence interval, logged once */
    bool warned_behind;
    int64_t gap_from; /* first number of the open gap, 0 when none */
    int64_t gap_replayed;
    int64_t single_until; /* a batch of two failed: up to this number, one by one */
    int batch_max;        /* events per batch now: halved after a failed batch */
} s_source_t;

struct odp_consumer_t {
    odp_consumer_cfg_t cfg;
    odp_service_t *svc; /* service mode */
    odp_db_t *db;       /* service mode */
    char cert[512];
    bool has_cert;
    s_source_t sources[S_MAX_SOURCES];
    size_t nsources;
    int backend_pid; /* the connection the cursors were read on; 0 before the first */
    int64_t reconcile_at;
    int reconcile_backoff;
    int silence_ms;
    int64_t ticked_at; /* the last tick: silence counts only while we were listening */
    bool stopped;
    bool fatal;
    odp_consumer_stats_t stats;
    odp_event_t *evs; /* s_batch's, S_BATCH of them, kept between batches */
};

const odp_migration_t odp_consumer_migration = {"000_consumer.sql",
                                                "CREATE TABLE consumer_cursor ("
                                                "  source text PRIMARY KEY,"
                                                "  last bigint NOT NULL CHECK (last >= 0),"
                                                "  at timestamptz NOT NULL DEFAULT now());"
                                                "CREATE TABLE consumer_dead_letter ("
                                                "  source text NOT NULL,"
                                                "  seq bigint NOT NULL,"
                                                "  topic text NOT NULL,"
                                                "  body bytea NOT NULL,"
                                                "  reason text NOT NULL,"
                                                "  at timestamptz NOT NULL DEFAULT now(),"
                                                "  PRIMARY KEY (source, seq));"};

/*  Untrusted bytes for a log line or a text column: printable ASCII only, cut to fit. */
static const char *s_printable(const char *p, size_t len, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < size; i++)
        buf[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    if (len > n && n + 4 >= size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static bool s_is_heartbeat(const char *topic, size_t tlen)
{
    size_t hl = strlen(odp_def_ev_heartbeat.name);
    return tlen == hl && memcmp(topic, odp_def_ev_heartbeat.name, hl) == 0;
}

/*  ---- sockets ---------------------------------------------------------------------------- */

static void s_on_sub(odp_service_t *svc, zsock_t *sock, void *arg);
static void s_on_dealer(odp_service_t *svc, zsock_t *sock, void *arg);

static zsock_t *s_dealer_new(odp_consumer_t *c, const char *source, char *err, size_t errsize)
{
    char ep[256];
    odp_config_endpoint(source, false, false, ep, sizeof ep);
    zsock_t *s = zsock_new(ZMQ_DEALER);
    if (!s) {
        snprintf(err, errsize, "cannot create a socket");
        return NULL;
    }
    zsock_set_linger(s, 0);
    /*  Never block the loop: a request that cannot be queued is retried later. */
    zsock_set_sndtimeo(s, 0);
    if (odp_auth_client(s, c->has_cert ? c->cert : NULL, err, errsize) < 0) {
        zsock_destroy(&s);
        return NULL;
    }
    if (zsock_connect(s, "%s", ep) < 0) {
        snprintf(err, errsize, "cannot connect to %s", ep);
        zsock_destroy(&s);
    }
    return s;
}

/*  Lazy Pirate (zguide): after a timeout the request socket is replaced, so a late reply
    cannot be taken for the next request's. */
static void s_dealer_reset(s_source_t *src)
{
    odp_consumer_t *c = src->owner;
    if (c->svc)
        odp_service_reader_remove(c->svc, src->dealer);
    zsock_destroy(&src->dealer);
    char err[256] = "";
    src->dealer = s_dealer_new(c, src->name, err, sizeof err);
    if (!src->dealer) {
        odp_error("event=consumer.socket_failed source=%s error=\"%s\"", src->name, err);
        if (!c->svc)
            c->fatal = true;
        return;
    }
    if (c->svc && odp_service_reader(c->svc, src->dealer, s_on_dealer, src) < 0) {
        odp_error("event=consumer.socket_failed source=%s error=\"too many readers\"", src->name);
        zsock_destroy(&src->dealer);
    }
}

static void s_slot_free(s_page_t *p)
{
    zframe_destroy(&p->frame);
    msgpack_zone_destroy(&p->zone);
}

/*  Every page: something went wrong, whatever was fetched ahead is asked for again. */
static void s_page_free(s_source_t *src)
{
    for (int k = 0; k < src->npages; k++)
        s_slot_free(&src->pages[k]);
    src->npages = 0;
}

/*  pages[0] is worked through: the next takes its place. */
static void s_page_shift(s_source_t *src)
{
    s_slot_free(&src->pages[0]);
    src->npages--;
    memmove(&src->pages[0], &src->pages[1], (size_t)src->npages * sizeof src->pages[0]);
}

/*  The page now first is kept if it follows on from the cursor (one that a batch has begun
    does); otherwise every page fetched ahead is asked for again. */
static void s_page_check(s_source_t *src)
{
    if (src->npages > 0 && src->pages[0].i == 0 &&
        (src->pages[0].from != src->last + 1 || src->reload))
        s_page_free(src);
}

static void s_page_done(s_source_t *src)
{
    s_page_shift(src);
    s_page_check(src);
}

/*  ---- state ------------------------------------------------------------------------------ */

static void s_stall(s_source_t *src)
{
    src->stall_until = zclock_mono() + src->backoff_ms;
    src->backoff_ms = src->backoff_ms * 2 > S_BACKOFF_MAX ? S_BACKOFF_MAX : src->backoff_ms * 2;
}

static bool s_stalled(const s_source_t *src)
{
    return zclock_mono() < src->stall_until;
}

/*  Nothing in progress: a live event numbered last + 1 may be handled at once. */
static bool s_idle(const s_source_t *src)
{
    return src->known && !src->reload && !src->probe && !src->inflight && src->npages == 0 &&
           !s_stalled(src) && src->last >= src->target && !src->owner->stopped;
}

static void s_gap_open(s_source_t *src)
{
    if (src->gap_from || src->backlog)
        return;
    src->gap_from = src->last + 1;
    src->gap_replayed = 0;
    src->owner->stats.gaps++;
}

static void s_raise_target(s_source_t *src, int64_t seq)
{
    if (seq > src->target)
        src->target = seq;
}

static void s_handled(s_source_t *src, int64_t seq, bool replayed)
{
    odp_consumer_t *c = src->owner;
    src->last = seq;
    src->backoff_ms = S_BACKOFF_MIN;
    c->stats.handled++;
    if (replayed) {
        c->stats.replayed++;
        if (src->gap_from)
            src->gap_replayed++;
    }
}

/*  ---- service mode: the cursor's transaction --------------------------------------------- */

/*  The consumer's transactions commit asynchronously: a commit lost in a PostgreSQL crash
    loses the work and the cursor move together, and the events come again by replay, so
    waiting for the WAL flush buys nothing. A lock held elsewhere is a transient failure
    after two seconds rather than a stalled loop. */
static int s_begin(odp_consumer_t *c)
{
    /*  One round trip (a simple query may hold several statements; no parameters here):
        a replay page is a handful of them, and on a busy machine each costs a wake-up. */
    PGconn *conn = odp_db_conn(c->db);
    if (!conn)
        return -1;
    PGresult *r = PQexec(conn, "BEGIN; SET LOCAL synchronous_commit = off; "
                               "SET LOCAL lock_timeout = '2s'");
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(r);
    return rc;
}

/*  Move src's cursor from seq - 1 to seq, first in the transaction: the row lock orders
    two instances, and a cursor not at seq - 1 means this event is not ours to handle
    now. 1 moved, 0 not at seq - 1, -1 failed. */
static int s_cursor_move(odp_consumer_t *c, s_source_t *src, int64_t seq)
{
    char seqs[24];
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    const char *vals[2] = {src->name, seqs};
    PGresult *r = odp_db_exec(c->db,
                              "UPDATE consumer_cursor SET last = $2::bigint, at = now() "
                              "WHERE source = $1 AND last = $2::bigint - 1",
                              2, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        PQclear(r);
        return -1;
    }
    int moved = atoi(PQcmdTuples(r));
    PQclear(r);
    return moved == 1 ? 1 : 0;
}

/*  A cursor row for src (since - 1 when new), then its value. 0 / -1. */
static int s_cursor_load(odp_consumer_t *c, s_source_t *src)
{
    char start[24];
    snprintf(start, sizeof start, "%" PRId64, src->since - 1);
    const char *vals[2] = {src->name, start};
    if (odp_db_cmd(c->db,
                   "INSERT INTO consumer_cursor (source, last) VALUES ($1, $2::bigint) "
                   "ON CONFLICT (source) DO NOTHING",
                   2, vals, NULL) < 0)
        return -1;
    PGresult *r =
        odp_db_exec(c->db, "SELECT last FROM consumer_cursor WHERE source = $1", 1, vals, NULL);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    src->last = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    src->known = true;
    src->reload = false;
    return 0;
}

/*  A refused event, in a transaction of its own (the handler's was rolled back): the
    cursor moves past it and the event is stored with the reason. On failure the
    transaction is left to the caller to roll back, so its SQLSTATE reaches the log. */
static int s_dead_letter(odp_consumer_t *c, s_source_t *src, const odp_event_t *ev, const void *raw,
                         size_t rawlen)
{
    msgpack_sbuffer packed;
    msgpack_sbuffer_init(&packed);
    if (!raw) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &packed, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *ev->body);
        raw = packed.data;
        rawlen = packed.size;
    }
    char seqs[24], topic[128], why[sizeof ev->why];
    snprintf(seqs, sizeof seqs, "%" PRId64, ev->seq);
    s_printable(ev->topic, ev->topic_len, topic, sizeof topic);
    /*  The reason is the handler's text: keep its valid UTF-8 prefix for the text column. */
    size_t bad;
    size_t ok = odp_utf8_scan(ev->why, strnlen(ev->why, sizeof ev->why - 1), &bad);
    memcpy(why, ev->why, ok);
    why[ok] = '\0';
    const char *vals[5] = {src->name, seqs, topic, (const char *)raw, why[0] ? why : "refused"};
    int lens[5] = {-1, -1, -1, (int)rawlen, -1};
    int rc = -1;
    int moved = 0;
    if (s_begin(c) == 0 && (moved = s_cursor_move(c, src, ev->seq)) == 1 &&
        odp_db_cmd(c->db,
                   "INSERT INTO consumer_dead_letter (source, seq, topic, body, reason) "
                   "VALUES ($1, $2::bigint, $3, $4, $5)",
                   5, vals, lens) == 0 &&
        odp_db_commit(c->db) == 0)
        rc = 0;
    msgpack_sbuffer_destroy(&packed);
    if (rc == 0)
        odp_warn("event=consumer.refused source=%s seq=%" PRId64 " topic=%s reason=\"%s\"",
                 src->name, ev->seq, topic, vals[4]);
    if (moved == 0)
        src->reload = true;
    return rc;
}

/*  ---- delivery ---------------------------------------------------------------------------- */

/*  Hand one event to the handler. true when the cursor moved past it (handled or
    refused); false when it was not handled now (retried later, or the cursor must be
    read again first) - the caller stops working on this source for this turn. */
static bool s_deliver(s_source_t *src, int64_t seq, const char *topic, size_t tlen,
                      const msgpack_object *body, const void *raw, size_t rawlen, bool replayed)
{
    odp_consumer_t *c = src->owner;
    odp_event_t ev = {src->name, seq, topic, tlen, body, replayed, c->db, ""};
    char tbuf[80];
    if (!c->db) {
        odp_event_rc_t rc = c->cfg.on_event(&ev, c->cfg.arg);
        if (rc == ODP_EVENT_RETRY) {
            c->stats.retries++;
            s_raise_target(src, seq);
            s_stall(src);
            return false;
        }
        if (rc == ODP_EVENT_REFUSE) {
            odp_warn("event=consumer.refused source=%s seq=%" PRId64 " topic=%s reason=\"%s\"",
                     src->name, seq, s_printable(topic, tlen, tbuf, sizeof tbuf), ev.why);
            c->stats.refused++;
            src->last = seq;
            return true;
        }
        s_handled(src, seq, replayed);
        return true;
    }

    /*  A connection other than the one the cursors were read on (reconnected under a
        request, say): reconcile first, on the next tick. */
    PGconn *conn = odp_db_conn(c->db);
    if (!conn || PQbackendPID(conn) != c->backend_pid) {
        s_raise_target(src, seq);
        return false;
    }
    int moved = -1;
    if (s_begin(c) == 0)
        moved = s_cursor_move(c, src, seq);
    if (moved == 0) {
        /*  Handled already (a stale cache) or the cursor is behind what we believed (a
            commit lost with the database): either way the table decides. */
        odp_db_rollback(c->db);
        src->reload = true;
        return false;
    }
    if (moved == 1) {
        odp_event_rc_t rc = c->cfg.on_event(&ev, c->cfg.arg);
        if (rc == ODP_EVENT_DONE) {
            PGconn *pc = odp_db_conn(c->db);
            PGTransactionStatusType ts = pc ? PQtransactionStatus(pc) : PQTRANS_UNKNOWN;
            /*  COMMIT of a failed transaction answers ROLLBACK without an error: a
                handler that ignored a failed statement must not move the cursor. */
            if (ts == PQTRANS_INTRANS && odp_db_commit(c->db) == 0) {
                s_handled(src, seq, replayed);
                return true;
            }
            if (ts == PQTRANS_INERROR)
                odp_error("event=consumer.handler_bug source=%s seq=%" PRId64
                          " msg=\"handler returned DONE after a failed statement\"",
                          src->name, seq);
        } else if (rc == ODP_EVENT_REFUSE) {
            odp_db_rollback(c->db);
            if (s_dead_letter(c, src, &ev, raw, rawlen) == 0) {
                c->stats.refused++;
                src->last = seq;
                src->backoff_ms = S_BACKOFF_MIN;
                return true;
            }
        }
    }
    char state[6];
    snprintf(state, sizeof state, "%s", odp_db_last_state(c->db));
    odp_db_rollback(c->db);
    c->stats.retries++;
    odp_warn("event=consumer.retry source=%s seq=%" PRId64 " topic=%s state=%s retry_ms=%d",
             src->name, seq, s_printable(topic, tlen, tbuf, sizeof tbuf), state[0] ? state : "-",
             src->backoff_ms);
    /*  A failed COMMIT may or may not have committed: the table says which. */
    src->reload = true;
    s_raise_target(src, seq);
    s_stall(src);
    return false;
}

/*  A body we accept from src: a map naming src as its source, with a number >= min_seq.
    0, or -1 with the reason in why. */
static int s_check_body(const s_source_t *src, const msgpack_object *body, int64_t min_seq,
                        int64_t *seq, char *why, size_t whysize)
{
    if (body->type != MSGPACK_OBJECT_MAP) {
        snprintf(why, whysize, "body is not a map");
        return -1;
    }
    const msgpack_object *source = odp_map_get(body, "source");
    size_t nl = strlen(src->name);
    if (!source || source->type != MSGPACK_OBJECT_STR || source->via.str.size != nl ||
        memcmp(source->via.str.ptr, src->name, nl) != 0) {
        snprintf(why, whysize, "source is not \"%s\"", src->name);
        return -1;
    }
    const msgpack_object *s = odp_map_get(body, "seq");
    /*  msgpack-c types every non-negative integer as POSITIVE_INTEGER. */
    if (!s || s->type != MSGPACK_OBJECT_POSITIVE_INTEGER || s->via.u64 > (uint64_t)INT64_MAX ||
        (int64_t)s->via.u64 < min_seq) {
        snprintf(why, whysize, "seq is not an integer >= %" PRId64, min_seq);
        return -1;
    }
    *seq = (int64_t)s->via.u64;
    return 0;
}

/*  One [topic, body] item of a replay page. The body is normally the event's map, as the
    outbox stores it; a bin holding the packed map is accepted as well. true when the
    item is behind us (handled, refused or old); false when work on the source stops
    here: an unusable item is never skipped - numbers must not be - so the source is
    asked again after a backoff. */
static bool s_replay_item(s_source_t *src, const msgpack_object *item)
{
    char why[300], tbuf[80];
    if (item->type != MSGPACK_OBJECT_ARRAY || item->via.array.size != 2 ||
        item->via.array.ptr[0].type != MSGPACK_OBJECT_STR) {
        odp_warn("event=consumer.bad_replay source=%s from=%" PRId64
                 " msg=\"an item is not [topic, body]\"",
                 src->name, src->last + 1);
        s_page_free(src);
        s_stall(src);
        return false;
    }
    const msgpack_object *t = &item->via.array.ptr[0];
    const msgpack_object *b = &item->via.array.ptr[1];
    const char *topic = t->via.str.ptr;
    size_t tlen = t->via.str.size;

    msgpack_zone zone;
    bool zoned = false;
    msgpack_object unpacked;
    bool ok = true;
    int64_t seq = 0;
    if (b->type == MSGPACK_OBJECT_BIN) {
        msgpack_zone_init(&zone, 2048);
        zoned = true;
        odp_error_t e;
        if (odp_body_unpack(b->via.bin.ptr, b->via.bin.size, &zone, &unpacked, &e) < 0) {
            snprintf(why, sizeof why, "bad body: %s", e.message);
            ok = false;
        }
        b = &unpacked;
    }
    if (ok && s_check_body(src, b, 1, &seq, why, sizeof why) < 0)
        ok = false;
    if (ok && s_is_heartbeat(topic, tlen)) {
        snprintf(why, sizeof why, "a heartbeat in history");
        ok = false;
    }
    if (ok && seq > src->last + 1) {
        /*  A number is missing from the source's history, or our cursor went back (a
            commit lost with the database): ask again from last + 1, never skip. */
        snprintf(why, sizeof why, "expected seq=%" PRId64 " got seq=%" PRId64, src->last + 1, seq);
        ok = false;
    }
    bool done = true;
    if (!ok) {
        odp_warn("event=consumer.bad_replay source=%s from=%" PRId64 " topic=%s msg=\"%s\"",
                 src->name, src->last + 1, s_printable(topic, tlen, tbuf, sizeof tbuf), why);
        s_page_free(src);
        s_stall(src);
        done = false;
    } else if (seq <= src->last) {
        done = true; /* handled before this page came */
    } else {
        done = s_deliver(src, seq, topic, tlen, b, NULL, 0, true);
    }
    if (zoned)
        msgpack_zone_destroy(&zone);
    return done;
}

/*  Service mode with on_page: the items of src's pages from pages[0].i on, as far as they
    are usable and numbered last + 1, last + 2 ... (at most S_BATCH, across the pages
    fetched ahead), handled in one transaction that moves the cursor once - a batch costs
    a handful of round trips instead of several per event. Items the batch does not take
    (a bad one, a number out of line) are left to s_replay_item, which logs and stalls as
    it does for single events. When the batch fails, it is rolled back and tried again
    half as large, down to two events, and then those go one by one (single_until), each
    with its own DONE, RETRY or REFUSE: one bad event in 4,000 costs a dozen rolled-back
    batches, not 4,000 transactions; after a success the size doubles again. >0 items
    handled, 0 the batch does not apply, -1 stop working on this source for this turn. */
static int s_batch(s_source_t *src)
{
    odp_consumer_t *c = src->owner;
    if (!c->db || !c->cfg.on_page || src->last < src->single_until)
        return 0;
    PGconn *conn = odp_db_conn(c->db);
    if (!conn || PQbackendPID(conn) != c->backend_pid)
        return 0;
    if (!c->evs && !(c->evs = malloc(S_BATCH * sizeof *c->evs)))
        return 0;
    odp_event_t *evs = c->evs;
    msgpack_zone zone; /* bodies that came packed in a bin */
    msgpack_zone_init(&zone, 4096);
    size_t n = 0;
    char why[200];
    bool more = true;
    size_t max =
        src->batch_max >= 2 && src->batch_max <= S_BATCH ? (size_t)src->batch_max : S_BATCH;
    for (int k = 0; k < src->npages && more; k++) {
        const s_page_t *p = &src->pages[k];
        for (uint32_t j = k == 0 ? p->i : 0; j < p->n && more; j++) {
            const msgpack_object *item = &p->items[j];
            more = n < max && item->type == MSGPACK_OBJECT_ARRAY && item->via.array.size == 2 &&
                   item->via.array.ptr[0].type == MSGPACK_OBJECT_STR;
            if (!more)
                break;
            const msgpack_object *t = &item->via.array.ptr[0];
            const msgpack_object *b = &item->via.array.ptr[1];
            if (b->type == MSGPACK_OBJECT_BIN) {
                msgpack_object *u = msgpack_zone_malloc(&zone, sizeof *u);
                odp_error_t e;
                more = u && odp_body_unpack(b->via.bin.ptr, b->via.bin.size, &zone, u, &e) == 0;
                b = u;
            }
            int64_t seq;
            more = more && s_check_body(src, b, 1, &seq, why, sizeof why) == 0 &&
                   !s_is_heartbeat(t->via.str.ptr, t->via.str.size) &&
                   seq == src->last + 1 + (int64_t)n;
            if (more)
                evs[n++] = (odp_event_t){src->name, seq,  t->via.str.ptr, t->via.str.size,
                                         b,         true, c->db,          ""};
        }
    }
    int rc = 0;
    if (n < 2)
        goto out;
    char from[24], to[24];
    snprintf(from, sizeof from, "%" PRId64, src->last);
    snprintf(to, sizeof to, "%" PRId64, evs[n - 1].seq);
    const char *vals[3] = {src->name, from, to};
    PGresult *r = NULL;
    if (s_begin(c) == 0)
        r = odp_db_exec(c->db,
                        "UPDATE consumer_cursor SET last = $3::bigint, at = now() "
                        "WHERE source = $1 AND last = $2::bigint",
                        3, vals, NULL);
    int moved = r && PQresultStatus(r) == PGRES_COMMAND_OK ? atoi(PQcmdTuples(r)) : -1;
    PQclear(r);
    if (moved == 0) {
        /*  Not where we believed: the table decides (as in s_deliver). */
        odp_db_rollback(c->db);
        src->reload = true;
        rc = -1;
        goto out;
    }
    if (moved == 1 && c->cfg.on_page(evs, n, c->cfg.arg) == 0) {
        PGconn *pc = odp_db_conn(c->db);
        if (pc && PQtransactionStatus(pc) == PQTRANS_INTRANS && odp_db_commit(c->db) == 0) {
            for (size_t k = 0; k < n; k++)
                s_handled(src, evs[k].seq, true);
            src->batch_max = (int)(2 * max > S_BATCH ? S_BATCH : 2 * max);
            /*  The pages the batch took are done; the last may be begun. Whether the page
                after them follows on is asked once, at the end: the cursor is already past
                the whole batch, so a page the batch went through would not seem to. */
            for (size_t left = n; left > 0 && src->npages > 0;) {
                s_page_t *p = &src->pages[0];
                size_t take = left < p->n - p->i ? left : p->n - p->i;
                p->i += (uint32_t)take;
                left -= take;
                if (p->i >= p->n)
                    s_page_shift(src);
            }
            s_page_check(src);
            rc = (int)n;
            goto out;
        }
    }
    char state[6];
    snprintf(state, sizeof state, "%s", odp_db_last_state(c->db));
    odp_db_rollback(c->db);
    odp_info("event=consumer.page_one_by_one source=%s from=%s to=%s state=%s", src->name, from, to,
             state[0] ? state : "-");
    if (n > 2)
        src->batch_max = (int)(n / 2 < 2 ? 2 : n / 2);
    else
        src->single_until = evs[n - 1].seq;
    /*  A failed COMMIT may or may not have committed: the table says which. */
    src->reload = true;
    rc = -1;
out:
    msgpack_zone_destroy(&zone);
    return rc;
}

/*  ---- replay ------------------------------------------------------------------------------ */

/*  Ask for the page from `from` on. */
static void s_ask(s_source_t *src, int64_t from)
{
    if (!src->dealer)
        s_dealer_reset(src);
    if (!src->dealer) {
        s_stall(src);
        return;
    }
    odp_events_replay_t req = {0};
    req.from = odp_v_int(from);
    req.limit = odp_v_int(S_PAGE);
    msgpack_sbuffer buf;
    if (odp_encode_buf(&odp_def_events_replay, &req, &buf) < 0)
        return;
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, ODP_PROTOCOL);
    zmsg_addstr(m, odp_def_events_replay.name);
    zmsg_addmem(m, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    if (zmsg_send(&m, src->dealer) < 0) {
        zmsg_destroy(&m);
        odp_warn("event=consumer.replay_failed source=%s from=%" PRId64 " msg=\"cannot send\"",
                 src->name, from);
        s_stall(src);
        return;
    }
    src->inflight = true;
    src->asked_at = zclock_mono();
    src->asked_from = from;
    src->probe = false;
}

/*  The answer to s_ask: keep the page, learn how far the source has got. */
static void s_on_reply(s_source_t *src, zmsg_t *m)
{
    if (!src->inflight || zmsg_size(m) != 2)
        return; /* stray: not an answer to the request in flight */
    src->inflight = false;
    char *st = zmsg_popstr(m);
    int status = st ? atoi(st) : 0;
    free(st);
    /*  While pages are being worked through, this one comes after them (s_prefetch). */
    bool ahead = src->npages > 0;
    s_page_t *p = &src->pages[src->npages++];
    p->frame = zmsg_pop(m);
    msgpack_zone_init(&p->zone, 4096);
    msgpack_object obj;
    odp_error_t e = {0};
    int rc = odp_body_unpack(zframe_data(p->frame), zframe_size(p->frame), &p->zone, &obj, &e);
    if (rc == 0 && status != 200) {
        odp_rep_error_t err;
        char code[40] = "", msg[200] = "";
        if (odp_decode_fields(&odp_def_rep_error, &obj, &err, &e) == 0) {
            odp_v_cstr(&err.code, code, sizeof code);
            odp_v_cstr(&err.message, msg, sizeof msg);
        }
        odp_warn("event=consumer.replay_refused source=%s from=%" PRId64
                 " status=%d code=%s msg=\"%s\"",
                 src->name, src->asked_from, status, code, msg);
        s_page_free(src);
        s_stall(src);
        return;
    }
    odp_rep_replay_t r;
    if (rc == 0 && odp_decode_fields(&odp_def_rep_replay, &obj, &r, &e) < 0)
        rc = -1;
    if (rc == 0 && r.events.obj->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(e.message, sizeof e.message, "events is not a list");
        rc = -1;
    }
    if (rc < 0) {
        odp_warn("event=consumer.bad_replay source=%s from=%" PRId64 " msg=\"%s\"", src->name,
                 src->asked_from, e.message);
        s_page_free(src);
        s_stall(src);
        return;
    }
    p->items = r.events.obj->via.array.ptr;
    p->n = r.events.obj->via.array.size;
    p->i = 0;
    p->from = src->asked_from;
    p->through = r.through.present ? r.through.i : 0;
    s_raise_target(src, r.last.i);
    if (p->n > 0)
        return;
    if (ahead) {
        s_slot_free(p); /* nothing after the pages yet */
        src->npages--;
        return;
    }
    s_page_free(src);
    if (r.last.i > src->last) {
        /*  Numbers that exist but do not come: a source reset under us, or one lying. */
        odp_warn("event=consumer.replay_empty source=%s from=%" PRId64 " source_last=%" PRId64,
                 src->name, src->asked_from, r.last.i);
        s_stall(src);
    } else if (r.last.i < src->last && !src->warned_behind) {
        odp_warn("event=consumer.source_behind source=%s source_last=%" PRId64 " cursor=%" PRId64
                 " msg=\"the source has fewer events than we handled\"",
                 src->name, r.last.i, src->last);
        src->warned_behind = true;
    }
}

static void s_caught_up(s_source_t *src)
{
    odp_consumer_t *c = src->owner;
    if (src->gap_from) {
        if (c->cfg.on_gap)
            c->cfg.on_gap(src->name, src->gap_from, src->last, src->gap_replayed, c->cfg.arg);
        else
            odp_info("event=consumer.gap source=%s from=%" PRId64 " to=%" PRId64
                     " replayed=%" PRId64,
                     src->name, src->gap_from, src->last, src->gap_replayed);
        src->gap_from = 0;
    }
    src->backlog = false;
}

/*  While pages are worked through, the source reads and sends the ones after them: a
    replay then costs the slower of the two sides rather than their sum. */
static void s_prefetch(s_source_t *src)
{
    if (src->npages == 0 || src->npages >= S_AHEAD || src->inflight)
        return;
    const s_page_t *p = &src->pages[src->npages - 1];
    if (p->through > 0 && p->through < src->target)
        s_ask(src, p->through + 1);
}

/*  Work through pages and ask for the next, until done or deadline (0: no limit). */
static void s_pump(odp_consumer_t *c, int64_t deadline)
{
    for (size_t k = 0; k < c->nsources && !c->stopped && !c->fatal; k++) {
        s_source_t *src = &c->sources[k];
        while (src->npages > 0 && !src->reload && !s_stalled(src) && !c->stopped) {
            s_prefetch(src);
            if (deadline && zclock_mono() >= deadline)
                return;
            int batched = s_batch(src);
            if (batched < 0)
                break;
            if (batched > 0)
                continue;
            if (!s_replay_item(src, &src->pages[0].items[src->pages[0].i]))
                break;
            if (src->npages > 0 && ++src->pages[0].i >= src->pages[0].n)
                s_page_done(src);
        }
        if (!src->known || src->reload || src->npages > 0 || src->inflight || s_stalled(src) ||
            c->stopped)
            continue;
        if (src->probe || src->last < src->target)
            s_ask(src, src->last + 1);
        else
            s_caught_up(src);
    }
}

/*  ---- live events ------------------------------------------------------------------------- */

static void s_on_heartbeat(s_source_t *src, int64_t h)
{
    if (!src->known) {
        /*  Tool mode from now on: what came before is history, asked for with --since.
            Service mode: the cursor is not read yet; remember how far the source is. */
        if (!src->owner->db) {
            src->last = h;
            src->known = true;
        }
        s_raise_target(src, h);
        return;
    }
    if (h > src->last && s_idle(src))
        s_gap_open(src); /* a heartbeat ahead of us: events were dropped */
    s_raise_target(src, h);
}

static void s_on_live(s_source_t *src, int64_t seq, const char *topic, size_t tlen,
                      const msgpack_object *body, zframe_t *raw)
{
    odp_consumer_t *c = src->owner;
    if (!src->known) {
        if (c->db) {
            s_raise_target(src, seq);
            return;
        }
        src->last = seq - 1;
        src->known = true;
    }
    if (seq <= src->last) {
        c->stats.duplicates++;
        return;
    }
    if (seq == src->last + 1 && s_idle(src)) {
        s_deliver(src, seq, topic, tlen, body, zframe_data(raw), zframe_size(raw), false);
        return;
    }
    /*  Numbers before it are missing, or a replay is under way: the replay brings this one
        too, in order. */
    if (s_idle(src))
        s_gap_open(src);
    s_raise_target(src, seq);
    c->stats.duplicates++;
}

/*  One [TOPIC, BODY] message from src's SUB socket. */
static void s_on_message(s_source_t *src, zmsg_t *msg)
{
    char tbuf[80], why[128];
    src->heard_at = zclock_mono();
    src->silent = false;
    if (zmsg_size(msg) != 2) {
        odp_warn("event=consumer.dropped source=%s msg=\"%zu frames, not [topic, body]\"",
                 src->name, zmsg_size(msg));
        return;
    }
    zframe_t *tf = zmsg_first(msg);
    zframe_t *bf = zmsg_next(msg);
    const char *topic = (const char *)zframe_data(tf);
    size_t tlen = zframe_size(tf);
    bool heartbeat = s_is_heartbeat(topic, tlen);

    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    msgpack_object body;
    odp_error_t e;
    int64_t seq;
    if (odp_body_unpack(zframe_data(bf), zframe_size(bf), &zone, &body, &e) < 0)
        odp_warn("event=consumer.dropped source=%s topic=%s msg=\"%s\"", src->name,
                 s_printable(topic, tlen, tbuf, sizeof tbuf), e.message);
    else if (s_check_body(src, &body, heartbeat ? 0 : 1, &seq, why, sizeof why) < 0)
        odp_warn("event=consumer.dropped source=%s topic=%s msg=\"%s\"", src->name,
                 s_printable(topic, tlen, tbuf, sizeof tbuf), why);
    else if (heartbeat)
        s_on_heartbeat(src, seq);
    else
        s_on_live(src, seq, topic, tlen, &body, bf);
    msgpack_zone_destroy(&zone);
}

/*  Read what src's SUB socket holds: up to max messages, until deadline (0: none). */
static void s_read_sub(s_source_t *src, int max, int64_t deadline)
{
    for (int i = 0; i < max && !src->owner->stopped; i++) {
        if (i > 0 &&
            (!(zsock_events(src->sub) & ZMQ_POLLIN) || (deadline && zclock_mono() >= deadline)))
            break;
        zmsg_t *m = zmsg_recv(src->sub);
        if (!m)
            break;
        s_on_message(src, m);
        zmsg_destroy(&m);
    }
}

static void s_read_dealer(s_source_t *src)
{
    zmsg_t *m = zmsg_recv(src->dealer);
    if (m)
        s_on_reply(src, m);
    zmsg_destroy(&m);
}

/*  ---- periodic work ----------------------------------------------------------------------- */

/*  Service mode: reconcile and read every cursor before the first event and whenever the
    database connection is a new one (a reconnect: what we cached may be stale, and the
    handler's view of other tables too). */
static void s_check_db(odp_consumer_t *c)
{
    int64_t now = zclock_mono();
    PGconn *pc = odp_db_conn(c->db);
    if (!pc || PQbackendPID(pc) == c->backend_pid || now < c->reconcile_at)
        return;
    if (c->cfg.on_start && c->cfg.on_start(c->db, c->cfg.arg) < 0) {
        odp_db_rollback(c->db);
        c->reconcile_at = now + c->reconcile_backoff;
        if (c->reconcile_backoff < S_BACKOFF_MAX)
            c->reconcile_backoff *= 2;
        odp_warn("event=consumer.reconcile_failed retry_ms=%d", c->reconcile_backoff);
        return;
    }
    pc = odp_db_conn(c->db);
    if (!pc)
        return;
    c->backend_pid = PQbackendPID(pc);
    c->reconcile_backoff = S_BACKOFF_MIN;
    for (size_t k = 0; k < c->nsources; k++) {
        c->sources[k].reload = true;
        c->sources[k].probe = true;
    }
    odp_info("event=consumer.reconciled sources=%zu", c->nsources);
}

static void s_tick(odp_consumer_t *c, int64_t deadline)
{
    if (c->stopped)
        return;
    if (c->db)
        s_check_db(c);
    int64_t now = zclock_mono();
    /*  Away ourselves (stopped, or the loop busy): sources and replies get a fresh
        interval rather than being judged by time in which we could not have heard them. */
    bool away = c->ticked_at && now - c->ticked_at > c->silence_ms / 2;
    c->ticked_at = now;
    for (size_t k = 0; k < c->nsources; k++) {
        s_source_t *src = &c->sources[k];
        if (away) {
            src->heard_at = now;
            src->asked_at = now;
        }
        if (c->db && src->reload && c->backend_pid && !s_stalled(src) &&
            s_cursor_load(c, src) < 0) {
            odp_warn("event=consumer.cursor_unreadable source=%s", src->name);
            s_stall(src);
        }
        if (src->inflight && now - src->asked_at > S_REPLAY_MS) {
            odp_warn("event=consumer.replay_timeout source=%s from=%" PRId64 " waited_ms=%d",
                     src->name, src->asked_from, S_REPLAY_MS);
            src->inflight = false;
            s_dealer_reset(src);
            s_stall(src);
        }
        /*  No heartbeat for several intervals: the source is down, or what it sends does
            not reach us. Ask it directly; the replay covers whatever was missed. */
        if (src->known && now - src->heard_at > c->silence_ms) {
            src->heard_at = now;
            src->probe = true;
            if (!src->silent)
                odp_info("event=consumer.silent source=%s ms=%d", src->name, c->silence_ms);
            src->silent = true;
        }
    }
    s_pump(c, deadline);
}

static void s_on_timer(odp_service_t *svc, void *arg)
{
    (void)svc;
    s_tick(arg, zclock_mono() + S_BUDGET_MS);
}

static void s_on_sub(odp_service_t *svc, zsock_t *sock, void *arg)
{
    (void)svc;
    (void)sock;
    s_source_t *src = arg;
    int64_t deadline = zclock_mono() + S_BUDGET_MS;
    s_read_sub(src, 1000, deadline);
    s_pump(src->owner, deadline);
}

static void s_on_dealer(odp_service_t *svc, zsock_t *sock, void *arg)
{
    (void)svc;
    (void)sock;
    s_source_t *src = arg;
    s_read_dealer(src);
    s_pump(src->owner, zclock_mono() + S_BUDGET_MS);
}

/*  ---- public ------------------------------------------------------------------------------ */

static odp_consumer_t *s_new(const odp_consumer_cfg_t *cfg)
{
    odp_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (c->cfg.sub_hwm <= 0)
        c->cfg.sub_hwm = 1000;
    c->reconcile_backoff = S_BACKOFF_MIN;
    if (cfg->cert) {
        snprintf(c->cert, sizeof c->cert, "%s", cfg->cert);
        c->has_cert = true;
    }
    return c;
}

odp_consumer_t *odp_consumer_new(const odp_consumer_cfg_t *cfg)
{
    return s_new(cfg);
}

odp_consumer_t *odp_consumer_new_service(odp_service_t *svc, const odp_consumer_cfg_t *cfg)
{
    const char *name = odp_service_name(svc);
    odp_consumer_t *c = s_new(cfg);
    if (!c)
        return NULL;
    c->svc = svc;
    c->db = odp_service_db(svc);
    if (cfg->sub_hwm <= 0)
        c->cfg.sub_hwm = (int)odp_config_int(name, "SUB_HWM", 1000);
    if (odp_auth_service_cert(name, c->cert, sizeof c->cert) < 0) {
        odp_error("event=consumer.no_key msg=\"set ODP_%s_SERVICE_CERT or ODP_SERVICE_KEYS: a "
                  "service follows others with its own key\"",
                  name);
        goto fail;
    }
    c->has_cert = c->cert[0] != '\0';
    if (odp_db_migrate(c->db, &odp_consumer_migration, 1) < 0)
        goto fail;
    if (odp_service_timer(svc, S_TICK_MS, s_on_timer, c) < 0) {
        odp_error("event=consumer.no_timer msg=\"too many timers\"");
        goto fail;
    }
    return c;
fail:
    free(c);
    return NULL;
}

void odp_consumer_destroy(odp_consumer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    odp_consumer_t *c = *self_p;
    for (size_t k = 0; k < c->nsources; k++) {
        s_source_t *src = &c->sources[k];
        if (c->svc) {
            odp_service_reader_remove(c->svc, src->sub);
            if (src->dealer)
                odp_service_reader_remove(c->svc, src->dealer);
        }
        odp_watch_destroy(&src->watch);
        zsock_destroy(&src->sub);
        zsock_destroy(&src->dealer);
        s_page_free(src);
    }
    free(c->evs);
    free(c);
    *self_p = NULL;
}

int odp_consumer_follow(odp_consumer_t *c, const char *source, int64_t since, char *err,
                        size_t errsize)
{
    snprintf(err, errsize, "%s", "");
    if (c->nsources >= S_MAX_SOURCES || strlen(source) >= sizeof c->sources[0].name || since < 0 ||
        (c->db && since == 0)) {
        snprintf(err, errsize, "cannot follow %s (too many sources, or a bad start)", source);
        return -1;
    }
    for (size_t k = 0; k < c->nsources; k++)
        if (strcmp(c->sources[k].name, source) == 0)
            return 0;
    s_source_t *src = &c->sources[c->nsources];
    memset(src, 0, sizeof *src);
    src->owner = c;
    snprintf(src->name, sizeof src->name, "%s", source);
    src->since = since;
    src->backoff_ms = S_BACKOFF_MIN;
    src->heard_at = zclock_mono();
    src->sub = odp_client_sub(source, NULL, "", c->cfg.sub_hwm, c->has_cert ? c->cert : NULL,
                              c->svc ? NULL : &src->watch, err, errsize);
    if (src->sub)
        src->dealer = s_dealer_new(c, source, err, errsize);
    if (!src->sub || !src->dealer) {
        odp_watch_destroy(&src->watch);
        zsock_destroy(&src->sub);
        if (!err[0])
            snprintf(err, errsize, "socket not set up");
        return -1;
    }
    if (c->svc && (odp_service_reader(c->svc, src->sub, s_on_sub, src) < 0 ||
                   odp_service_reader(c->svc, src->dealer, s_on_dealer, src) < 0)) {
        odp_service_reader_remove(c->svc, src->sub);
        zsock_destroy(&src->sub);
        zsock_destroy(&src->dealer);
        snprintf(err, errsize, "too many sockets in the service loop");
        return -1;
    }
    if (c->db) {
        src->reload = true; /* read when the database is first reached */
        src->backlog = true;
    } else if (since >= 1) {
        src->last = since - 1;
        src->known = true;
        src->probe = true;
        src->backlog = true;
    }
    /*  Silence is judged by the source's own heartbeat interval. */
    int64_t hb = odp_config_int(source, "HEARTBEAT_MS", 1000);
    int silence = (int)(hb * 5 < 1000 ? 1000 : hb * 5);
    if (silence > c->silence_ms)
        c->silence_ms = silence;
    c->nsources++;
    return 0;
}

int odp_consumer_poll(odp_consumer_t *c, int timeout_ms)
{
    zmq_pollitem_t items[3 * S_MAX_SOURCES];
    s_source_t *owners[3 * S_MAX_SOURCES];
    int n = 0;
    bool work = false;
    for (size_t k = 0; k < c->nsources; k++) {
        s_source_t *src = &c->sources[k];
        items[n] = (zmq_pollitem_t){zsock_resolve(src->sub), 0, ZMQ_POLLIN, 0};
        owners[n++] = src;
        if (src->dealer) {
            items[n] = (zmq_pollitem_t){zsock_resolve(src->dealer), 0, ZMQ_POLLIN, 0};
            owners[n++] = src;
        }
        if (src->watch) {
            items[n] =
                (zmq_pollitem_t){zsock_resolve(odp_watch_socket(src->watch)), 0, ZMQ_POLLIN, 0};
            owners[n++] = src;
        }
        work |= src->npages > 0 && !s_stalled(src);
    }
    if (timeout_ms > S_POLL_MAX_MS)
        timeout_ms = S_POLL_MAX_MS;
    int rc = zmq_poll(items, n, work ? 0 : timeout_ms);
    if (rc < 0 && zmq_errno() != EINTR) {
        odp_error("event=consumer.poll_failed error=\"%s\"", zmq_strerror(zmq_errno()));
        return -1;
    }
    /*  One message from every ready source in turn keeps a busy source from starving the
        others. */
    for (int i = 0; rc > 0 && i < n && !c->stopped; i++) {
        if (!(items[i].revents & ZMQ_POLLIN))
            continue;
        if (items[i].socket == zsock_resolve(owners[i]->sub))
            s_read_sub(owners[i], 1, 0);
        else if (owners[i]->dealer && items[i].socket == zsock_resolve(owners[i]->dealer))
            s_read_dealer(owners[i]);
        else if (owners[i]->watch &&
                 items[i].socket == zsock_resolve(odp_watch_socket(owners[i]->watch))) {
            /*  A connection that cannot come up (a refused key, a wrong server
                certificate) is said once, and ends a tool's run. */
            odp_watch_read(owners[i]->watch);
            if (odp_watch_hopeless(owners[i]->watch)) {
                char why[1024];
                odp_error("event=consumer.refused source=%s msg=\"%s\"", owners[i]->name,
                          odp_watch_why(owners[i]->watch, 0, why, sizeof why));
                c->fatal = true;
            }
        }
    }
    s_tick(c, 0);
    return c->fatal ? -1 : 0;
}

void odp_consumer_stop(odp_consumer_t *c)
{
    c->stopped = true;
}

bool odp_consumer_stopped(const odp_consumer_t *c)
{
    return c->stopped;
}

void odp_consumer_stats(const odp_consumer_t *c, odp_consumer_stats_t *out)
{
    *out = c->stats;
}

int64_t odp_consumer_last(const odp_consumer_t *c, const char *source)
{
    for (size_t k = 0; k < c->nsources; k++)
        if (strcmp(c->sources[k].name, source) == 0)
            return c->sources[k].known ? c->sources[k].last : -1;
    return -1;
}

odp_event_rc_t odp_event_db_fail(odp_event_t *ev, PGresult *r, const char *what)
{
    char state[6];
    snprintf(state, sizeof state, "%s", r ? odp_db_state(r) : odp_db_last_state(ev->db));
    odp_db_failure_t f = odp_db_classify(state);
    odp_event_rc_t rc = ODP_EVENT_RETRY;
    if (f == ODP_DBF_CONFLICT || f == ODP_DBF_INVALID) {
        const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(ev->why, sizeof ev->why, "%s: refused by the database (SQLSTATE %s)%s%s", what,
                 state, m ? ": " : "", m ? m : "");
        rc = ODP_EVENT_REFUSE;
    } else if (f == ODP_DBF_BUG) {
        char q[300];
        const char *m = r ? PQresultErrorMessage(r) : "";
        odp_error("event=consumer.db_error source=%s seq=%" PRId64 " what=\"%s\" state=%s error=%s",
                  ev->source, ev->seq, what, state, odp_log_quote(m, strlen(m), q, sizeof q));
    }
    PQclear(r);
    return rc;
}
