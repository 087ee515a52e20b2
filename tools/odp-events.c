/*  odp-events: every lifecycle event of the platform, as JSON lines, none lost.

    A SUB socket per service receives [TOPIC, BODY] events and heartbeats. PUB drops a
    subscriber's copy past the high-water mark, so events alone cannot be trusted to arrive:
    each source numbers its events 1, 2, 3, ... without gaps, and its heartbeat says the
    latest number it has published. Whenever an event's number jumps, or a heartbeat is
    ahead of what we have, the missing numbers are fetched with events.replay from the same
    service, so stdout carries every event of every source, in order, exactly once.

    Usage: odp-events [--service NAME]... [--topic PREFIX] [--since N] [--hwm N]
                      [--count N] [--idle-exit-ms N] [--quiet-gaps]

    Exit status: 0 done (signal, --count or --idle-exit-ms), 1 a socket could not be set
    up or a connection cannot come up (a refused key: the reason is printed), 2 usage
    (certificate settings included). */
#include "common/client.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/json.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_POLL_MS      200  /* how often signals and --idle-exit-ms are noticed */
#define S_REPLAY_MS    3000 /* wait for one replay page */
#define S_REPLAY_LIMIT 1000 /* largest page the protocol allows */
#define S_FOREVER      INT64_MAX

typedef struct {
    const char *name;     /* service, and the source its events must name */
    zsock_t *sub;         /* its events */
    odp_watch_t *watch;   /* the SUB's connection: a refused key is otherwise silence */
    odp_client_t *client; /* its events.replay, created on first need */
    int64_t last;         /* highest number handled (printed or filtered) */
    bool known;           /* last means something yet */
    bool backlog;         /* --since history not fully replayed yet */
    int64_t gap_from;     /* first number of the open gap, 0 when none */
    int64_t gap_replayed; /* events replayed into the open gap so far */
} s_source_t;

static s_source_t s_sources[ODP_NSERVICES];
static size_t s_nsources = 0;

static const char *s_topic = NULL;
static size_t s_topic_len = 0;
static int64_t s_count = 0; /* 0: no limit */
static bool s_quiet_gaps = false;

static int64_t s_printed = 0;
static int64_t s_replayed = 0;
static int64_t s_gaps = 0;
static int64_t s_duplicates = 0;

static bool s_done = false;  /* --count reached */
static bool s_fatal = false; /* a replay client could not be set up */
static int64_t s_activity = 0;

/*  Whole lines only, even for a reader tailing the file: each line goes out with one
    fwrite into a buffer larger than any event, and line buffering flushes it at once. */
static char s_outbuf[1 << 18];

static void s_usage(FILE *f)
{
    fprintf(f, "usage: odp-events [--service NAME]... [--topic PREFIX] [--since N] [--hwm N]\n"
               "                  [--count N] [--idle-exit-ms N] [--quiet-gaps]\n"
               "\n"
               "  --service NAME     only this service's events (repeatable; default all:\n"
               "                     registrar reviewer publisher query metrics)\n"
               "  --topic PREFIX     print only events whose topic starts with PREFIX\n"
               "  --since N          replay each source's history from event N first\n"
               "                     (default: from now on)\n"
               "  --hwm N            receive high-water mark of each SUB socket (1000)\n"
               "  --count N          exit after printing N events\n"
               "  --idle-exit-ms N   exit after N ms in which no event arrived\n"
               "  --quiet-gaps       do not report recovered gaps on stderr\n"
               "\n"
               "One JSON object per line on stdout: source, seq, topic, at, actor, body.\n"
               "Endpoints and keys come from the environment (source var/odp.env):\n"
               "ODP_<SERVICE>_EVENTS, ODP_<SERVICE>_ENDPOINT, ODP_SERVER_CERT, "
               "ODP_CLIENT_CERT.\n");
}

/*  A whole decimal number within [min, max], or false. */
static bool s_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (!text || !*text || isspace((unsigned char)*text))
        return false;
    errno = 0;
    char *end;
    long long n = strtoll(text, &end, 10);
    if (errno || *end || n < min || n > max)
        return false;
    *out = (int64_t)n;
    return true;
}

/*  Untrusted bytes for a log line: printable ASCII only, cut to fit. */
static const char *s_printable(const char *p, size_t len, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < size; i++)
        buf[n++] = isprint((unsigned char)p[i]) ? p[i] : '?';
    if (len > n && n + 4 >= size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static json_t *s_json_text(const char *p, size_t len)
{
    if (len == 0)
        return json_string(""); /* an empty frame's data may be NULL */
    /*  Invalid UTF-8 cannot be JSON text; the line must still be valid JSON. */
    json_t *s = json_stringn(p, len);
    return s ? s : json_string("\xef\xbf\xbd");
}

static json_t *s_json_field(const msgpack_object *body, const char *key)
{
    const msgpack_object *v = odp_map_get(body, key);
    return v ? odp_json_from_msgpack(v) : json_null();
}

static void s_print(const s_source_t *src, int64_t seq, const char *topic, size_t tlen,
                    const msgpack_object *body)
{
    json_t *o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "source", json_string(src->name));
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "topic", s_json_text(topic, tlen));
    json_object_set_new(o, "at", s_json_field(body, "at"));
    json_object_set_new(o, "actor", s_json_field(body, "actor"));
    json_object_set_new(o, "body", odp_json_from_msgpack(body));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line) {
        fprintf(stderr, "odp-events: cannot format source=%s seq=%" PRId64 "\n", src->name, seq);
        return;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room only for the NUL, which we replace */
    fwrite(line, 1, n + 1, stdout);
    free(line);
}

/*  The next event of src, from the wire or from a replay: print it unless filtered. */
static void s_handle(s_source_t *src, int64_t seq, const char *topic, size_t tlen,
                     const msgpack_object *body, bool replayed)
{
    src->last = seq;
    s_activity = zclock_mono();
    if (replayed) {
        s_replayed++;
        if (src->gap_from)
            src->gap_replayed++;
    }
    if (s_topic_len == 0 || (tlen >= s_topic_len && memcmp(topic, s_topic, s_topic_len) == 0)) {
        s_print(src, seq, topic, tlen, body);
        s_printed++;
        if (s_count > 0 && s_printed >= s_count)
            s_done = true;
    }
}

/*  A body we accept: a map naming src as its source, with a number >= min_seq.
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

/*  One [topic, body] pair of a replay page. The body is normally the event's map, as the
    outbox stores it; a bin holding the packed map is accepted as well. 1 handled, 0 an
    old number (ignored), -1 unusable (the replay stops there: never skip a number). */
static int s_replay_item(s_source_t *src, const msgpack_object *item)
{
    char why[128];
    if (item->type != MSGPACK_OBJECT_ARRAY || item->via.array.size != 2 ||
        item->via.array.ptr[0].type != MSGPACK_OBJECT_STR) {
        fprintf(stderr, "odp-events: replay source=%s: an item is not [topic, body]\n", src->name);
        return -1;
    }
    const msgpack_object *t = &item->via.array.ptr[0];
    const msgpack_object *b = &item->via.array.ptr[1];
    const char *topic = t->via.str.ptr;
    size_t tlen = t->via.str.size;

    msgpack_zone zone;
    bool zoned = false;
    msgpack_object unpacked;
    if (b->type == MSGPACK_OBJECT_BIN) {
        msgpack_zone_init(&zone, 2048);
        zoned = true;
        odp_error_t e;
        if (odp_body_unpack(b->via.bin.ptr, b->via.bin.size, &zone, &unpacked, &e) < 0) {
            fprintf(stderr, "odp-events: replay source=%s from=%" PRId64 ": bad body: %s\n",
                    src->name, src->last + 1, e.message);
            msgpack_zone_destroy(&zone);
            return -1;
        }
        b = &unpacked;
    }
    int rc = 1;
    int64_t seq;
    char tbuf[80];
    if (s_check_body(src, b, 1, &seq, why, sizeof why) < 0) {
        fprintf(stderr, "odp-events: replay source=%s from=%" PRId64 ": bad event: %s\n", src->name,
                src->last + 1, why);
        rc = -1;
    } else if (tlen == strlen(odp_def_ev_heartbeat.name) &&
               memcmp(topic, odp_def_ev_heartbeat.name, tlen) == 0) {
        fprintf(stderr, "odp-events: replay source=%s seq=%" PRId64 ": a heartbeat in history\n",
                src->name, seq);
        rc = -1;
    } else if (seq <= src->last) {
        rc = 0;
    } else if (seq != src->last + 1) {
        /*  The source skipped a number: waiting is the only honest answer. */
        fprintf(stderr,
                "odp-events: replay source=%s expected seq=%" PRId64 " got seq=%" PRId64
                " topic=%s\n",
                src->name, src->last + 1, seq, s_printable(topic, tlen, tbuf, sizeof tbuf));
        rc = -1;
    } else {
        s_handle(src, seq, topic, tlen, b, true);
    }
    if (zoned)
        msgpack_zone_destroy(&zone);
    return rc;
}

/*  Replay src until last >= target (S_FOREVER: until its history is exhausted).
    0 caught up, -1 not (logged; the caller retries on the next message). */
static int s_catch_up(s_source_t *src, int64_t target)
{
    while (src->last < target && !s_done && !zsys_interrupted) {
        if (!src->client) {
            char err[256] = "";
            src->client = odp_client_new(src->name, NULL, NULL, err, sizeof err);
            if (!src->client) {
                fprintf(stderr, "odp-events: cannot set up replay from %s: %s\n", src->name,
                        err[0] ? err : "socket not created");
                s_fatal = true;
                return -1;
            }
        }
        int64_t from = src->last + 1;
        int64_t limit = target - src->last;
        if (limit > S_REPLAY_LIMIT)
            limit = S_REPLAY_LIMIT;
        odp_events_replay_t req = {0};
        req.from = odp_v_int(from);
        req.limit = odp_v_int(limit);
        odp_reply_t rep;
        if (odp_client_call(src->client, &odp_def_events_replay, &req, S_REPLAY_MS, &rep) < 0) {
            odp_reply_free(&rep);
            if (!zsys_interrupted)
                fprintf(stderr, "odp-events: replay source=%s from=%" PRId64 ": %s\n", src->name,
                        from, odp_client_why(src->client));
            return -1;
        }
        if (rep.status != 200) {
            char code[40], msg[200];
            fprintf(stderr, "odp-events: replay source=%s from=%" PRId64 ": status %d %s %s\n",
                    src->name, from, rep.status, odp_v_cstr(&rep.err.code, code, sizeof code),
                    odp_v_cstr(&rep.err.message, msg, sizeof msg));
            odp_reply_free(&rep);
            return -1;
        }
        odp_rep_replay_t r;
        odp_error_t e;
        if (odp_decode_fields(&odp_def_rep_replay, &rep.obj, &r, &e) < 0 ||
            r.events.obj->type != MSGPACK_OBJECT_ARRAY) {
            fprintf(stderr, "odp-events: replay source=%s from=%" PRId64 ": bad reply: %s\n",
                    src->name, from, r.events.present ? "events is not a list" : e.message);
            odp_reply_free(&rep);
            return -1;
        }
        int64_t before = src->last;
        bool broken = false;
        const msgpack_object *evs = r.events.obj;
        for (uint32_t i = 0; i < evs->via.array.size && !s_done; i++)
            if (s_replay_item(src, &evs->via.array.ptr[i]) < 0) {
                broken = true;
                break;
            }
        bool more = r.more.b;
        int64_t newest = r.last.i;
        odp_reply_free(&rep);
        if (broken)
            return -1;
        if (s_done)
            return 0;
        if (target == S_FOREVER) {
            if (!more)
                return 0;
        } else if (src->last == before) {
            /*  The source says it has nothing from here although a message numbered
                beyond it came: a reset source, or one lying. Retrying is all we can do. */
            fprintf(stderr,
                    "odp-events: replay source=%s from=%" PRId64 ": nothing to replay "
                    "(source last=%" PRId64 ", wanted up to %" PRId64 ")\n",
                    src->name, from, newest, target);
            return -1;
        }
        if (src->last == before)
            return -1; /* `more` but an empty page: do not spin */
    }
    return src->last >= target ? 0 : -1;
}

/*  Before anything else from src, finish its --since history. */
static int s_backlog(s_source_t *src)
{
    if (!src->backlog)
        return 0;
    if (s_catch_up(src, S_FOREVER) < 0)
        return -1;
    src->backlog = false;
    return 0;
}

/*  Fill [last+1, target]; counts and reports it as one gap however many tries it takes. */
static int s_fill_gap(s_source_t *src, int64_t target)
{
    if (!src->gap_from) {
        src->gap_from = src->last + 1;
        src->gap_replayed = 0;
        s_gaps++;
    }
    if (s_catch_up(src, target) < 0)
        return -1;
    if (!s_quiet_gaps)
        fprintf(stderr,
                "odp-events: gap source=%s from=%" PRId64 " to=%" PRId64 " replayed=%" PRId64 "\n",
                src->name, src->gap_from, target, src->gap_replayed);
    src->gap_from = 0;
    return 0;
}

static void s_on_heartbeat(s_source_t *src, int64_t h)
{
    if (!src->known) {
        /*  Start from now: what came before is history, asked for with --since. */
        src->last = h;
        src->known = true;
        return;
    }
    if (s_backlog(src) < 0)
        return;
    if (h > src->last)
        s_fill_gap(src, h);
}

static void s_on_event(s_source_t *src, int64_t seq, const char *topic, size_t tlen,
                       const msgpack_object *body)
{
    if (!src->known) {
        src->last = seq - 1;
        src->known = true;
    }
    if (s_backlog(src) < 0)
        return;
    if (seq <= src->last) {
        s_duplicates++;
        return;
    }
    /*  On failure this event is dropped too: handling it would skip the missing ones,
        and the next message or heartbeat tries the replay again. */
    if (seq > src->last + 1 && s_fill_gap(src, seq - 1) < 0)
        return;
    if (s_done)
        return;
    if (seq <= src->last) {
        s_duplicates++; /* the replay brought it already */
        return;
    }
    s_handle(src, seq, topic, tlen, body, false);
}

/*  One [TOPIC, BODY] message from src's SUB socket. */
static void s_on_message(s_source_t *src, zmsg_t *msg)
{
    char tbuf[80], why[128];
    if (zmsg_size(msg) != 2) {
        fprintf(stderr, "odp-events: dropped source=%s: %zu frames, not [topic, body]\n", src->name,
                zmsg_size(msg));
        return;
    }
    zframe_t *tf = zmsg_first(msg);
    zframe_t *bf = zmsg_next(msg);
    const char *topic = (const char *)zframe_data(tf);
    size_t tlen = zframe_size(tf);
    bool heartbeat = tlen == strlen(odp_def_ev_heartbeat.name) &&
                     memcmp(topic, odp_def_ev_heartbeat.name, tlen) == 0;

    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    msgpack_object body;
    odp_error_t e;
    int64_t seq;
    if (odp_body_unpack(zframe_data(bf), zframe_size(bf), &zone, &body, &e) < 0)
        fprintf(stderr, "odp-events: dropped source=%s topic=%s: %s\n", src->name,
                s_printable(topic, tlen, tbuf, sizeof tbuf), e.message);
    else if (s_check_body(src, &body, heartbeat ? 0 : 1, &seq, why, sizeof why) < 0)
        fprintf(stderr, "odp-events: dropped source=%s topic=%s: %s\n", src->name,
                s_printable(topic, tlen, tbuf, sizeof tbuf), why);
    else if (heartbeat)
        s_on_heartbeat(src, seq);
    else
        s_on_event(src, seq, topic, tlen, &body);
    msgpack_zone_destroy(&zone);
}

static void s_add_source(const char *name)
{
    for (size_t i = 0; i < s_nsources; i++)
        if (strcmp(s_sources[i].name, name) == 0)
            return;
    s_sources[s_nsources++].name = name;
}

/*  When which is a source's connection watch: take its news, and when the connection
    cannot come up (a refused key, a wrong server certificate) say why and stop. */
static bool s_watch_says_hopeless(void *which)
{
    for (size_t i = 0; i < s_nsources; i++) {
        s_source_t *src = &s_sources[i];
        if (!src->watch || which != odp_watch_socket(src->watch))
            continue;
        odp_watch_read(src->watch);
        if (!odp_watch_hopeless(src->watch))
            return false;
        char why[1024];
        fprintf(stderr, "odp-events: %s\n", odp_watch_why(src->watch, 0, why, sizeof why));
        s_fatal = true;
        return true;
    }
    return false;
}

int main(int argc, char *argv[])
{
    static const struct option options[] = {{"service", required_argument, NULL, 's'},
                                            {"topic", required_argument, NULL, 't'},
                                            {"since", required_argument, NULL, 'S'},
                                            {"hwm", required_argument, NULL, 'H'},
                                            {"count", required_argument, NULL, 'c'},
                                            {"idle-exit-ms", required_argument, NULL, 'i'},
                                            {"quiet-gaps", no_argument, NULL, 'q'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int64_t since = -1, hwm = 1000, idle_ms = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case 's': {
            int idx = odp_service_index(optarg);
            if (idx < 0) {
                fprintf(stderr, "odp-events: unknown service '%s'\n", optarg);
                ok = false;
            } else {
                s_add_source(odp_service_names[idx]);
            }
            break;
        }
        case 't':
            s_topic = optarg;
            break;
        case 'S':
            ok = s_parse_int(optarg, 0, INT64_MAX, &since);
            if (since == 0)
                since = 1; /* numbers start at 1: all of history */
            break;
        case 'H':
            ok = s_parse_int(optarg, 1, INT32_MAX, &hwm);
            break;
        case 'c':
            ok = s_parse_int(optarg, 0, INT64_MAX, &s_count);
            break;
        case 'i':
            ok = s_parse_int(optarg, 0, INT32_MAX, &idle_ms);
            break;
        case 'q':
            s_quiet_gaps = true;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            ok = false;
        }
        if (!ok) {
            if (opt != 's' && opt != '?' && opt != 'h')
                fprintf(stderr, "odp-events: bad value '%s' for --%s\n", optarg,
                        opt == 'S'   ? "since"
                        : opt == 'H' ? "hwm"
                        : opt == 'c' ? "count"
                                     : "idle-exit-ms");
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "odp-events: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    char setup[256];
    if (odp_client_check_config(NULL, setup, sizeof setup) < 0) {
        fprintf(stderr, "odp-events: %s\n", setup);
        return 2;
    }
    if (s_nsources == 0)
        for (int i = 0; i < ODP_NSERVICES; i++)
            s_add_source(odp_service_names[i]);
    if (s_topic)
        s_topic_len = strlen(s_topic);
    else
        s_topic = "";

    setvbuf(stdout, s_outbuf, _IOLBF, sizeof s_outbuf);
    zsys_init();

    int rc = 0;
    zpoller_t *poller = zpoller_new(NULL);
    if (!poller) {
        fprintf(stderr, "odp-events: cannot create a poller\n");
        return 1;
    }
    for (size_t i = 0; i < s_nsources; i++) {
        s_source_t *src = &s_sources[i];
        char err[256] = "";
        src->sub =
            odp_client_sub(src->name, NULL, "", (int)hwm, NULL, &src->watch, err, sizeof err);
        if (!src->sub) {
            fprintf(stderr, "odp-events: cannot subscribe to %s events: %s\n", src->name,
                    err[0] ? err : "socket not set up");
            rc = 1;
            goto done;
        }
        zpoller_add(poller, src->sub);
        if (src->watch)
            zpoller_add(poller, odp_watch_socket(src->watch));
        if (since >= 1) {
            src->last = since - 1;
            src->known = true;
            src->backlog = true;
        }
    }

    /*  The SUB sockets are already connected, so what is published while history is
        replayed waits for us (or is dropped, and then found missing). */
    for (size_t i = 0; i < s_nsources && !s_done && !s_fatal && !zsys_interrupted; i++)
        s_backlog(&s_sources[i]);

    s_activity = zclock_mono();
    while (!s_done && !s_fatal && !zsys_interrupted) {
        zsock_t *which = zpoller_wait(poller, S_POLL_MS);
        if (zpoller_terminated(poller))
            break;
        /*  Idle means no event for idle_ms: heartbeats keep coming forever, and a
            caught-up subscriber sees nothing else. */
        if (idle_ms > 0 && zclock_mono() - s_activity >= idle_ms)
            break;
        if (!which)
            continue;
        if (s_watch_says_hopeless(which))
            break;
        /*  zpoller names the first ready socket only; taking one message from every ready
            source in turn keeps a busy source from starving the others. */
        for (size_t i = 0; i < s_nsources && !s_done && !s_fatal && !zsys_interrupted; i++) {
            s_source_t *src = &s_sources[i];
            if (src->sub != which && !(zsock_events(src->sub) & ZMQ_POLLIN))
                continue;
            zmsg_t *msg = zmsg_recv(src->sub);
            if (!msg)
                continue;
            s_on_message(src, msg);
            zmsg_destroy(&msg);
        }
    }
    if (s_fatal)
        rc = 1;
    fflush(stdout);
    fprintf(stderr,
            "odp-events: summary printed=%" PRId64 " replayed=%" PRId64 " gaps=%" PRId64
            " duplicates=%" PRId64 "\n",
            s_printed, s_replayed, s_gaps, s_duplicates);

done:
    zpoller_destroy(&poller);
    for (size_t i = 0; i < s_nsources; i++) {
        odp_watch_destroy(&s_sources[i].watch);
        zsock_destroy(&s_sources[i].sub);
        odp_client_destroy(&s_sources[i].client);
    }
    return rc;
}
