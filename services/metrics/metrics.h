/*  odp-metrics: statistics, assessment and the open data index (R6c, R10). */
#ifndef METRICS_H
#define METRICS_H

#include "common/client.h"
#include "common/config.h"
#include "common/consumer.h"
#include "common/service.h"

#include <curl/curl.h>
#include <microhttpd.h>

extern const odp_migration_t metrics_migrations[];
extern const size_t metrics_nmigrations;

typedef struct {
    odp_service_t *svc;
    odp_consumer_t *events;
    odp_client_t *clients[ODP_NSERVICES]; /* health of each other service */
    int poll_next;                        /* the service polled next */
    int64_t stuck_after_s;                /* ODP_METRICS_STUCK_S: pushes, reviews */
    int64_t max_lag;                      /* ODP_METRICS_MAX_LAG: events behind a source */
    struct MHD_Daemon *http;              /* /metrics */
    odp_db_t *cond_db;                    /* alerts: conditions() runs here, off the loop */
    bool cond_busy;                       /* a conditions() query is in flight on it */
    PGresult *cond_pending;               /* conditions not yet compared in full */
    CURLM *curl;                          /* the webhook forwarder's requests */
    int64_t webhook_due_ms;               /* next attempt (backoff after a failure) */
    int webhook_backoff_ms;
} metrics_t;

/*  Follow every other service's events: count them per (source, topic) in event_counts,
    write their facts (002_facts.sql) and keep them for the webhooks, each exactly once.
    NULL when it cannot start (logged). */
odp_consumer_t *metrics_events_start(odp_service_t *svc);

/*  The commands of PROTOCOL.md §12. 0 / -1. */
int metrics_reports_routes(odp_service_t *svc);

/*  Timers: each service's health (heartbeat, counters), alerts. 0 / -1. */
int metrics_monitor_start(metrics_t *m);
void metrics_monitor_stop(metrics_t *m);

/*  /metrics over HTTP (ODP_METRICS_HTTP, host:port; default 127.0.0.1 and the port
    base + 45). 0 / -1 (logged). */
int metrics_http_start(metrics_t *m);
void metrics_http_stop(metrics_t *m);

/*  The webhook forwarder's timer. 0 / -1. */
int metrics_webhooks_start(metrics_t *m);
void metrics_webhooks_stop(metrics_t *m);

#endif
