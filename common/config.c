#include "config.h"
#include "log.h"
#include "parse.h"

#include <inttypes.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const odp_service_names[ODP_NSERVICES] = {
#define S_NAME(name, idx) #name,
    ODP_SERVICES(S_NAME)
#undef S_NAME
};

int odp_service_index(const char *name)
{
    for (int i = 0; i < ODP_NSERVICES; i++)
        if (name && strcmp(name, odp_service_names[i]) == 0)
            return i;
    return -1;
}

/*  The value of ODP_<SERVICE>_<KEY> (upper-cased), or NULL when unset or empty. */
static const char *s_service_env(const char *service, const char *key)
{
    char var[128];
    int n = snprintf(var, sizeof var, "ODP_%s_%s", service, key);
    for (int i = 0; i < n && var[i]; i++)
        var[i] = (char)toupper((unsigned char)var[i]);
    const char *v = getenv(var);
    return v && *v ? v : NULL;
}

static const char *s_env(const char *service, const char *key)
{
    char var[128];
    const char *sv = service ? s_service_env(service, key) : NULL;
    if (sv)
        return sv;
    snprintf(var, sizeof var, "ODP_%s", key);
    const char *v = getenv(var);
    return v && *v ? v : NULL;
}

const char *odp_config(const char *service, const char *key, const char *dflt)
{
    const char *v = s_env(service, key);
    return v ? v : dflt;
}

int64_t odp_config_int(const char *service, const char *key, int64_t dflt)
{
    const char *v = s_env(service, key);
    if (!v)
        return dflt;
    int64_t n;
    if (odp_parse_int(v, strlen(v), INT64_MIN, INT64_MAX, &n))
        return n;
    odp_warn("config: %s for %s is not a whole number; using %" PRId64, key,
             service ? service : "every service", dflt);
    return dflt;
}

void odp_config_endpoint(const char *service, bool events, bool bind, char *buf, size_t size)
{
    const char *key = bind ? (events ? "EVENTS_BIND" : "BIND") : (events ? "EVENTS" : "ENDPOINT");
    /*  Only the per-service variable counts here: a bare ODP_BIND would give all five
        services one address. */
    const char *v = s_service_env(service, key);
    if (v) {
        snprintf(buf, size, "%s", v);
        return;
    }
    int idx = odp_service_index(service);
    int64_t base = odp_config_int(NULL, "PORT_BASE", 7500);
    snprintf(buf, size, "tcp://127.0.0.1:%lld",
             (long long)(base + 10 * (idx < 0 ? 0 : idx) + (events ? 2 : 1)));
}

bool odp_config_secure(void)
{
    const char *v = odp_config(NULL, "SECURITY", "curve");
    return strcmp(v, "local") != 0;
}
