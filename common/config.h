/*  config: environment variables with defaults that run on one machine.

    A key K for service S is looked up as ODP_<S>_<K>, then ODP_<K>, then the default,
    so one env file can hold a value for every service and per-service overrides. */
#ifndef ODP_CONFIG_H
#define ODP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define ODP_SERVICES(X)                                                                            \
    X(registrar, 0)                                                                                \
    X(reviewer, 1)                                                                                 \
    X(publisher, 2)                                                                                \
    X(query, 3)                                                                                    \
    X(metrics, 4)

#define ODP_NSERVICES 5
extern const char *const odp_service_names[ODP_NSERVICES];
int odp_service_index(const char *name); /* -1 if unknown */

/*  Value for service (may be NULL: only ODP_<K>) and key; dflt when unset or empty. A
    number that is not a whole decimal number is logged and the default used. */
const char *odp_config(const char *service, const char *key, const char *dflt);
int64_t odp_config_int(const char *service, const char *key, int64_t dflt);

/*  Endpoints. bind=true: where the service binds (ODP_<S>_BIND / ODP_<S>_EVENTS_BIND);
    false: where clients connect (ODP_<S>_ENDPOINT / ODP_<S>_EVENTS). Defaults derive from
    ODP_PORT_BASE (7500): service i listens on base+10i+1 (requests) and +2 (events). */
void odp_config_endpoint(const char *service, bool events, bool bind, char *buf, size_t size);

/*  true unless ODP_SECURITY=local */
bool odp_config_secure(void);

#endif
