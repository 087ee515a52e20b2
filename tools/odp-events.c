/*  odp-events: every lifecycle event of the platform, as JSON lines, none lost.

    The consumer library (common/consumer.h) in tool mode does the work: a SUB socket per
    service, gap detection by the sources' gap-free numbers and heartbeats, and replay of
    whatever PUB dropped, so stdout carries every event of every source, in order, exactly
    once. The cursor lives in memory: from now on, or from --since N.

    Usage: odp-events [--service NAME]... [--topic PREFIX] [--since N] [--hwm N]
                      [--count N] [--idle-exit-ms N] [--quiet-gaps]
                      [--format lines|cloudevents]
    --format cloudevents prints each event as a CloudEvents 1.0 JSON object
    (common/cloudevent.h) instead of odp's own line.

    Exit status: 0 done (signal, --count or --idle-exit-ms), 1 a socket could not be set
    up, 2 usage. */
#include "common/client.h"
#include "common/cloudevent.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/parse.h"
#include "common/consumer.h"
#include "common/json.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_POLL_MS 200 /* how often signals and --idle-exit-ms are noticed */

static const char *s_names[ODP_NSERVICES];
static size_t s_nsources = 0;

static const char *s_topic = NULL;
static size_t s_topic_len = 0;
static int64_t s_count = 0; /* 0: no limit */
static bool s_quiet_gaps = false;
static bool s_cloudevents = false; /* --format cloudevents */

static odp_consumer_t *s_consumer = NULL;
static int64_t s_printed = 0;
static int64_t s_activity = 0;

/*  Whole lines only, even for a reader tailing the file: each line goes out with one
    fwrite into a buffer larger than any event, and line buffering flushes it at once. */
static char s_outbuf[1 << 18];

static void s_usage(FILE *f)
{
    fprintf(f, "usage: odp-events [--service NAME]... [--topic PREFIX] [--since N] [--hwm N]\n"
               "                  [--count N] [--idle-exit-ms N] [--quiet-gaps]\n"
               "                  [--format lines|cloudevents]\n"
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
               "  --format F         lines (odp's own, the default) or cloudevents\n"
               "                     (CloudEvents 1.0 JSON, one per line)\n"
               "\n"
               "One JSON object per line on stdout: source, seq, topic, at, actor, body.\n"
               "Endpoints and keys come from the environment (source var/odp.env):\n"
               "ODP_<SERVICE>_EVENTS, ODP_<SERVICE>_ENDPOINT, ODP_SERVER_CERT, "
               "ODP_CLIENT_CERT.\n");
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

static void s_print(const odp_event_t *ev)
{
    json_t *o = s_cloudevents
                    ? odp_cloudevent(ev->source, ev->seq, ev->topic, ev->topic_len, ev->body)
                    : json_object();
    if (!o)
        return;
    if (!s_cloudevents) {
        json_object_set_new(o, "source", json_string(ev->source));
        json_object_set_new(o, "seq", json_integer((json_int_t)ev->seq));
        json_object_set_new(o, "topic", s_json_text(ev->topic, ev->topic_len));
        json_object_set_new(o, "at", s_json_field(ev->body, "at"));
        json_object_set_new(o, "actor", s_json_field(ev->body, "actor"));
        json_object_set_new(o, "body", odp_json_from_msgpack(ev->body));
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line) {
        fprintf(stderr, "odp-events: cannot format source=%s seq=%" PRId64 "\n", ev->source,
                ev->seq);
        return;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room only for the NUL, which we replace */
    fwrite(line, 1, n + 1, stdout);
    free(line);
}

/*  The next event of a source, from the wire or from a replay: print it unless filtered. */
static odp_event_rc_t s_on_event(odp_event_t *ev, void *arg)
{
    (void)arg;
    s_activity = zclock_mono();
    if (s_topic_len == 0 ||
        (ev->topic_len >= s_topic_len && memcmp(ev->topic, s_topic, s_topic_len) == 0)) {
        s_print(ev);
        s_printed++;
        if (s_count > 0 && s_printed >= s_count)
            odp_consumer_stop(s_consumer);
    }
    return ODP_EVENT_DONE;
}

static void s_on_gap(const char *source, int64_t from, int64_t to, int64_t replayed, void *arg)
{
    (void)arg;
    if (!s_quiet_gaps)
        fprintf(stderr,
                "odp-events: gap source=%s from=%" PRId64 " to=%" PRId64 " replayed=%" PRId64 "\n",
                source, from, to, replayed);
}

static void s_add_source(const char *name)
{
    for (size_t i = 0; i < s_nsources; i++)
        if (strcmp(s_names[i], name) == 0)
            return;
    s_names[s_nsources++] = name;
}

int main(int argc, char *argv[])
{
    static const struct option options[] = {
        {"service", required_argument, NULL, 's'}, {"topic", required_argument, NULL, 't'},
        {"since", required_argument, NULL, 'S'},   {"hwm", required_argument, NULL, 'H'},
        {"count", required_argument, NULL, 'c'},   {"idle-exit-ms", required_argument, NULL, 'i'},
        {"quiet-gaps", no_argument, NULL, 'q'},    {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
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
            ok = odp_parse_int(optarg, strlen(optarg), 0, INT64_MAX, &since);
            if (since == 0)
                since = 1; /* numbers start at 1: all of history */
            break;
        case 'H':
            ok = odp_parse_int(optarg, strlen(optarg), 1, INT32_MAX, &hwm);
            break;
        case 'c':
            ok = odp_parse_int(optarg, strlen(optarg), 0, INT64_MAX, &s_count);
            break;
        case 'i':
            ok = odp_parse_int(optarg, strlen(optarg), 0, INT32_MAX, &idle_ms);
            break;
        case 'q':
            s_quiet_gaps = true;
            break;
        case 'f':
            s_cloudevents = strcmp(optarg, "cloudevents") == 0;
            ok = s_cloudevents || strcmp(optarg, "lines") == 0;
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
                        : opt == 'f' ? "format"
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
    if (s_nsources == 0)
        for (int i = 0; i < ODP_NSERVICES; i++)
            s_add_source(odp_service_names[i]);
    if (s_topic)
        s_topic_len = strlen(s_topic);
    else
        s_topic = "";

    char setup[256];
    if (odp_client_check_config(NULL, setup, sizeof setup) < 0) {
        fprintf(stderr, "odp-events: %s\n", setup);
        return 2;
    }

    setvbuf(stdout, s_outbuf, _IOLBF, sizeof s_outbuf);
    zsys_init();
    odp_log_init("odp-events");

    int rc = 0;
    odp_consumer_cfg_t cfg = {.on_event = s_on_event, .on_gap = s_on_gap, .sub_hwm = (int)hwm};
    s_consumer = odp_consumer_new(&cfg);
    if (!s_consumer) {
        fprintf(stderr, "odp-events: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < s_nsources; i++) {
        char err[256] = "";
        if (odp_consumer_follow(s_consumer, s_names[i], since >= 1 ? since : 0, err, sizeof err) <
            0) {
            fprintf(stderr, "odp-events: cannot subscribe to %s events: %s\n", s_names[i], err);
            rc = 1;
            goto done;
        }
    }

    /*  Idle means no event for idle_ms: heartbeats keep coming forever, and a caught-up
        subscriber sees nothing else. */
    s_activity = zclock_mono();
    while (!odp_consumer_stopped(s_consumer) && !zsys_interrupted) {
        if (odp_consumer_poll(s_consumer, S_POLL_MS) < 0) {
            rc = 1;
            break;
        }
        if (idle_ms > 0 && zclock_mono() - s_activity >= idle_ms)
            break;
    }
    fflush(stdout);
    odp_consumer_stats_t st;
    odp_consumer_stats(s_consumer, &st);
    fprintf(stderr,
            "odp-events: summary printed=%" PRId64 " replayed=%" PRId64 " gaps=%" PRId64
            " duplicates=%" PRId64 "\n",
            s_printed, st.replayed, st.gaps, st.duplicates);

done:
    odp_consumer_destroy(&s_consumer);
    return rc;
}
