/*  consumer: follow other services' events and give each event its effect exactly once.

    A source numbers its events 1, 2, 3 ... without gaps (outbox.h) and publishes them on
    PUB, which drops a subscriber's copies past its high-water mark and says nothing to a
    subscriber that was not connected. So the PUB stream is only a doorbell: per source the
    consumer keeps `last`, the highest number handled, and whenever an event's number jumps
    past last + 1, a heartbeat is ahead of last, the source has been silent too long, or the
    consumer (re)starts, it asks the source's events.replay for last + 1 onwards, a page
    of at most 1000 at a time, and handles those in order; while it works through a page
    it asks for the next ones (up to four held), so the source reads while we write.

    Two modes.
    - Service mode (odp_consumer_new_service): the cursor (source, last) lives in the
      service's own schema (odp_consumer_migration) and moves IN THE SAME TRANSACTION as
      the work the event causes: the library opens the transaction, moves the cursor
      from seq - 1 to seq (with on_page, over a whole replay page at once) (an UPDATE that matches
   no row means the event was handled already: it is skipped, never done twice), calls the handler,
   and commits. A crash anywhere loses the work and the cursor move together, and the event comes
   again by replay. The consumer connects with the service's own key and works inside the service
   loop: SUB and replay sockets are loop readers, and a timer paces replay pages (at most 20 ms of
   events per turn, then requests get the loop back), retries and silence checks.
    - Tool mode (odp_consumer_new): no database; the cursor lives in memory and starts
      "now" or at --since N. odp-events is this mode with a handler that prints.

    A handler answers each event: DONE (the cursor moves past it), RETRY (a transient
    failure: everything is rolled back and the event comes again after a backoff), or
    REFUSE (the event can never be handled, e.g. a body that breaks its declaration: it is
    stored with the handler's reason in consumer_dead_letter and the cursor moves on, so
    one bad event cannot block its source for ever). A consumer must not depend on having
    seen events: on_start runs before the first event and again whenever the database
    connection was re-established, to reconcile from tables. */
#ifndef ODP_CONSUMER_H
#define ODP_CONSUMER_H

#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "service.h"

typedef struct odp_consumer_t odp_consumer_t;

/*  consumer_cursor and consumer_dead_letter; odp_consumer_new_service applies it. */
extern const odp_migration_t odp_consumer_migration;

typedef enum {
    ODP_EVENT_DONE = 0, /* handled, or of no interest: the cursor moves past it */
    ODP_EVENT_RETRY,    /* not now: rolled back, delivered again after a backoff */
    ODP_EVENT_REFUSE    /* never: dead-lettered with ev->why, the cursor moves past it */
} odp_event_rc_t;

typedef struct {
    const char *source;
    int64_t seq;
    const char *topic; /* a view of topic_len bytes, not NUL-terminated */
    size_t topic_len;
    const msgpack_object *body; /* the event's map, envelope included */
    bool replayed;              /* came by events.replay rather than on PUB */
    odp_db_t *db;               /* service mode: in the cursor's transaction; tool mode NULL */
    char why[256];              /* the reason, when the handler returns ODP_EVENT_REFUSE */
} odp_event_t;

typedef odp_event_rc_t (*odp_event_fn)(odp_event_t *ev, void *arg);
/*  Service mode, optional: n consecutive events of one source (replayed: up to 4000,
    across the pages fetched ahead) in one transaction with one cursor move. 0 when every event is
   handled (DONE); -1 when not all of them are (one would RETRY or REFUSE, a statement failed): the
   library rolls the page back and hands its events to on_event one by one, so each gets its own
   answer and a bad one cannot take the others with it. */
typedef int (*odp_page_fn)(odp_event_t *evs, size_t n, void *arg);
/*  0, or -1 to be called again after a backoff (no event is handled until it succeeds). */
typedef int (*odp_reconcile_fn)(odp_db_t *db, void *arg);
/*  A gap (numbers lost on PUB) was filled from `from` to `to` by replaying `replayed`. */
typedef void (*odp_gap_fn)(const char *source, int64_t from, int64_t to, int64_t replayed,
                           void *arg);

typedef struct {
    odp_event_fn on_event;     /* required */
    odp_page_fn on_page;       /* service mode, may be NULL: replay pages one by one */
    odp_reconcile_fn on_start; /* service mode; may be NULL */
    odp_gap_fn on_gap;         /* NULL: logged at info */
    void *arg;                 /* passed to all of them */
    const char *cert;          /* tool mode: secret cert, NULL for ODP_CLIENT_CERT */
    int sub_hwm;               /* receive HWM of each SUB; 0: ODP_<SERVICE>_SUB_HWM or 1000 */
} odp_consumer_cfg_t;

/*  Tool mode. NULL only when out of memory. */
odp_consumer_t *odp_consumer_new(const odp_consumer_cfg_t *cfg);

/*  Service mode, inside svc's loop with svc's database and the service's own key
    (odp_auth_service_cert). Applies odp_consumer_migration. NULL on a configuration error
    (logged). Destroy it before the service. */
odp_consumer_t *odp_consumer_new_service(odp_service_t *svc, const odp_consumer_cfg_t *cfg);

void odp_consumer_destroy(odp_consumer_t **self_p);

/*  Follow source (a service name). since: where to start when nothing is known of it
    yet: 0 = from now on (tool mode only: the first heartbeat or event says where "now"
    is), N >= 1 = from event N (1 = all of its history). In service mode a stored cursor
    takes precedence. 0, or -1 with the reason in err (sockets could not be set up). */
int odp_consumer_follow(odp_consumer_t *self, const char *source, int64_t since, char *err,
                        size_t errsize);

/*  Tool mode's loop step: wait up to timeout_ms for messages, handle them and any due
    work. 0, or -1 when the consumer cannot go on (logged). Returns early on a signal. */
int odp_consumer_poll(odp_consumer_t *self, int timeout_ms);

/*  Handle nothing more (a tool's --count): callable from a handler. */
void odp_consumer_stop(odp_consumer_t *self);
bool odp_consumer_stopped(const odp_consumer_t *self);

typedef struct {
    int64_t handled;    /* events handed to the handler and done */
    int64_t replayed;   /* of those, how many came by replay */
    int64_t gaps;       /* gaps found in the PUB stream (each filled by replay) */
    int64_t duplicates; /* PUB copies of events already handled or being replayed */
    int64_t refused;    /* dead-lettered */
    int64_t retries;    /* RETRY answers and failed transactions */
} odp_consumer_stats_t;
void odp_consumer_stats(const odp_consumer_t *self, odp_consumer_stats_t *out);

/*  The highest number handled for source, or -1 when unknown. */
int64_t odp_consumer_last(const odp_consumer_t *self, const char *source);

/*  For a handler whose statement failed (r, or the connection's last statement when r
    is NULL; r is cleared): a value the schema refuses (SQLSTATE classes 22, 23) makes the
    event REFUSE with the reason in ev->why; a transient failure or a conflict with a
    concurrent transaction makes it RETRY; anything else is a programmer error, logged,
    and RETRY too - the source then stops at that event, loudly, rather than
    dead-lettering every event after it. */
odp_event_rc_t odp_event_db_fail(odp_event_t *ev, PGresult *r, const char *what);

#endif
