/*  log: one line per entry on stderr, `<time> <LEVEL> <service> key=value ...`.
    The same lines are the platform's run log (R6b): operators collect stderr.        */
#ifndef ODP_LOG_H
#define ODP_LOG_H

#include <stddef.h>

typedef enum { ODP_LOG_DEBUG = 0, ODP_LOG_INFO, ODP_LOG_WARN, ODP_LOG_ERROR } odp_log_level_t;

/*  Name the process in every line; level from ODP_LOG_LEVEL (debug|info|warn|error). */
void odp_log_init(const char *service);

/*  fmt should produce key=value pairs; free text goes in a quoted msg="...". Newlines in
    the formatted result are replaced so that an entry is always one line. */
void odp_log(odp_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define odp_debug(...) odp_log(ODP_LOG_DEBUG, __VA_ARGS__)
#define odp_info(...)  odp_log(ODP_LOG_INFO, __VA_ARGS__)
#define odp_warn(...)  odp_log(ODP_LOG_WARN, __VA_ARGS__)
#define odp_error(...) odp_log(ODP_LOG_ERROR, __VA_ARGS__)

/*  Quote a value for a log field: "..." with \" and \\ escaped, control chars as spaces,
    cut at size. Returns buf. */
char *odp_log_quote(const char *s, size_t len, char *buf, size_t size);

#endif
