#include "codelist.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define S_ENTRY(code, label) {#code, label},
#define S_LIST(name, LIST)                                                                         \
    static const odp_code_t s_##name[] = {LIST(S_ENTRY)};                                          \
    const odp_codelist_t odp_cl_##name = {#name, s_##name, sizeof s_##name / sizeof s_##name[0]};
ODP_CODELISTS(S_LIST)
#undef S_LIST
#undef S_ENTRY

const char *odp_code_find(const odp_codelist_t *cl, const char *s, size_t len)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < cl->n; i++) {
        const odp_code_t *c = &cl->codes[i];
        if ((strlen(c->code) == len && memcmp(c->code, s, len) == 0) ||
            (strlen(c->label) == len && strncasecmp(c->label, s, len) == 0))
            return c->code;
    }
    return NULL;
}

const char *odp_code_choices(const odp_codelist_t *cl, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cl->n && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", cl->codes[i].code);
    return buf;
}
