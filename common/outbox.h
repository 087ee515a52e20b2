/*  outbox: lifecycle events with no silent loss (ARCHITECTURE principles 1 and 2).

    A state change and the event describing it are written in one transaction: the
    handler calls odp_outbox_append() between odp_db_begin() and odp_db_commit(). The
    event's number comes from a one-row counter updated in that same transaction, so
    numbers are gap-free (a rollback takes its number back) and commit in order (the row
    lock serialises writers). After commit, odp_outbox_flush() publishes what is committed
    and not yet sent; heartbeats carry the latest published number, so a subscriber that
    missed anything - a dropped PUB message, a restart between commit and publish - sees
    the gap and asks for a replay, which reads the same table. */
#ifndef ODP_OUTBOX_H
#define ODP_OUTBOX_H

#include <czmq.h>
#include <msgpack.h>
#include <stdint.h>

#include "codec.h"
#include "db.h"

typedef struct odp_outbox_t odp_outbox_t;

/*  The SQL of the outbox tables; every service applies these as its first migrations. */
extern const odp_migration_t odp_outbox_migrations[];
extern const size_t odp_outbox_nmigrations;

odp_outbox_t *odp_outbox_new(odp_db_t *db, const char *source, zsock_t *pub);
void odp_outbox_destroy(odp_outbox_t **self_p);

/*  Publish on another PUB socket from now on (the service re-creates it); NULL holds
    events back, unsent, until a socket is set again. */
void odp_outbox_set_pub(odp_outbox_t *self, zsock_t *pub);

/*  Read the latest committed number (call after migrations, and again after the database
    comes back). 0 / -1. */
int odp_outbox_load(odp_outbox_t *self);

/*  In an open transaction: take the next number, fill the envelope (source, seq, at,
    actor) of the event struct evt declared by def, and store it. Returns the number, or
    -1 (the caller rolls back). */
int64_t odp_outbox_append(odp_outbox_t *self, const odp_msgdef_t *def, void *evt,
                          const char *actor);

/*  Publish committed events newer than the last published one; returns how many, or -1. */
int odp_outbox_flush(odp_outbox_t *self);

/*  Send [heartbeat, {source, seq, at}] with the latest published number. */
void odp_outbox_heartbeat(odp_outbox_t *self);

/*  Who may see which event in a replay (PROTOCOL.md §9). */
typedef enum {
    ODP_SEE_ALL,        /* operations, services, the authority */
    ODP_SEE_DEPARTMENT, /* a provider: events naming its department, and public topics */
    ODP_SEE_PUBLIC      /* users and anonymous callers: public topics (ODP_PUBLIC_TOPICS) */
} odp_visibility_t;

/*  Pack an events.replay reply (rep_replay) for the numbers from..from+limit-1 into pk:
    the events of that window the caller may see (department: the provider's code), and
    `through`, the last number the window covered, where the next page starts after. */
int odp_outbox_replay(odp_outbox_t *self, int64_t from, int64_t limit, odp_visibility_t vis,
                      const char *department, msgpack_packer *pk);

int64_t odp_outbox_last(odp_outbox_t *self);

/*  Whether anything was appended since the last flush: a request that wrote no event
    need not query the outbox (the heartbeat timer flushes regardless). */
bool odp_outbox_pending(const odp_outbox_t *self);

/*  ISO 8601 UTC with milliseconds, e.g. 2026-11-27T07:30:00.123Z */
void odp_now_iso(char *buf, size_t size);

#endif
