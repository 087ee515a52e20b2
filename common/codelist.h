/*  codelist: the code lists of proto/odp_proto.h (R8 domains, content kinds, ...) as
    tables, for validation and for error messages that list what is allowed. */
#ifndef ODP_CODELIST_H
#define ODP_CODELIST_H

#include <stddef.h>

#include "../proto/odp_proto.h"

typedef struct {
    const char *code;
    const char *label;
} odp_code_t;

typedef struct {
    const char *name;
    const odp_code_t *codes;
    size_t n;
} odp_codelist_t;

#define ODP_CL_DECL(name, LIST) extern const odp_codelist_t odp_cl_##name;
ODP_CODELISTS(ODP_CL_DECL)
#undef ODP_CL_DECL

/*  The canonical code for s (given as the code, or as the label; labels compare
    ASCII-case-insensitively, so "utf-8" finds utf8), or NULL when it is not in the list. */
const char *odp_code_find(const odp_codelist_t *cl, const char *s, size_t len);

/*  "a, b, c": the list's codes, for an error message. */
const char *odp_code_choices(const odp_codelist_t *cl, char *buf, size_t size);

#endif
