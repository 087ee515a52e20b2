/*  odp-reviewer: acceptance checks, findings and quarantine (R5.6, R9a, R9d). */
#ifndef REVIEWER_H
#define REVIEWER_H

#include "common/consumer.h"
#include "common/service.h"

#include <jansson.h>

extern const odp_migration_t reviewer_migrations[];
extern const size_t reviewer_nmigrations;

/*  Follow the registrar's data.received and review each received dataset version once;
    at start, review the versions left waiting. The checks run on a thread of their own
    (review.c). NULL when it cannot start (logged). */
odp_consumer_t *review_consumer_start(odp_service_t *svc);

/*  Stop the checks' thread, cancelling a check in progress (it is done again at the next
    start). Before the service is destroyed. */
void review_stop(odp_service_t *svc);

void review_routes(odp_service_t *svc);

/*  Re-check the approved versions on the loop's next turn (the standard changed). */
void review_recheck_request(void);

/*  quarantine.*, review.queue, review.decide, standard.* (decide.c). */
void decide_routes(odp_service_t *svc);

/*  review.show's reply for upload, as the request's actor may see it (a provider: only its
    own department's versions). 0, or -1 with req->err set. */
int review_show_pack(odp_req_t *req, int64_t upload);

/*  In an open transaction: decide on upload (in review) as actor, with a sign-off record
    (the current standard, the findings summary), its state and its event. A rejection
    needs reason. 0, or -1 with the failed statement in *failed (NULL: the last one). */
int review_signoff(odp_db_t *db, odp_outbox_t *outbox, int64_t upload, bool approve,
                   const char *reason, int reason_len, const char *actor, PGresult **failed);

/*  JSON text (jsonb from the database) as one msgpack value appended to buf: objects as
    maps, arrays, strings, integers, reals, booleans, null. 0, or -1 when it does not
    parse. */
int review_pack_json_text(const char *text, msgpack_sbuffer *buf);

/*  The repeat counts of upload as repeat_tally() gives them ("{n,...}"), from the push's
    hashes of its unique fields (repeats.c), read on conn; *hashes says how many were
    merged. NULL when the evidence does not cover them or the database failed: the caller
    counts by a scan. Malloc'd. */
char *review_push_repeats(PGconn *conn, int64_t upload, int64_t *hashes);

/*  review.report and review.findings (report.c). */
void report_routes(odp_service_t *svc);

#endif
