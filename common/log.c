#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static char s_service[32] = "odp";
static odp_log_level_t s_min = ODP_LOG_INFO;
static const char *s_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void odp_log_init(const char *service)
{
    snprintf(s_service, sizeof s_service, "%s", service);
    const char *lvl = getenv("ODP_LOG_LEVEL");
    if (lvl) {
        for (int i = 0; i < 4; i++)
            if (strcasecmp(lvl, s_names[i]) == 0)
                s_min = (odp_log_level_t)i;
    }
}

void odp_log(odp_log_level_t level, const char *fmt, ...)
{
    if (level < s_min)
        return;
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    for (char *p = body; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    /*  One fprintf per entry: stderr is unbuffered, and a single write keeps lines from
        two threads (zauth's actor logs too) from interleaving mid-line. */
    fprintf(stderr, "%s.%03ldZ %s %s %s\n", when, ts.tv_nsec / 1000000, s_names[level], s_service,
            body);
}

char *odp_log_quote(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0;
    if (size < 3) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < len && o + 3 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[o++] = ' ';
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
