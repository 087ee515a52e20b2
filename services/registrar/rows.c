/*  rows: PostgreSQL result rows as protocol values (see rows.h). */
#include "rows.h"

#include "registrar.h"

#include "common/parse.h"

#include <stdlib.h>
#include <string.h>

odp_val_t rows_col(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_strn(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

odp_val_t rows_int(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_int(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

/*  numeric columns hold what came in as a msgpack number (a double at most), so strtod
    gives back the value that was stored. */
odp_val_t rows_num(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_num(strtod(PQgetvalue(r, row, col), NULL));
}

odp_val_t rows_bool(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (odp_val_t){0};
    return odp_v_bool(PQgetvalue(r, row, col)[0] == 't');
}

/*  PostgreSQL writes a one-dimensional text[] as {a,b} and double-quotes an item (with \"
    and \\ inside) whenever it is empty or holds a delimiter, brace, quote, backslash or
    space. Items are never NULL here: the registrar stores none. Unescaping only ever
    shortens, so one buffer of the literal's size holds every item. */
odp_val_t rows_strs(PGresult *r, int row, int col, msgpack_zone *zone)
{
    const char *s = PQgetvalue(r, row, col);
    size_t len = (size_t)PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || len < 2 || s[0] != '{' || s[len - 1] != '}')
        return (odp_val_t){0};
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += s[i] == ',';
    msgpack_object *list = msgpack_zone_malloc(zone, sizeof *list);
    msgpack_object *items = msgpack_zone_malloc(zone, cap * sizeof *items);
    char *buf = msgpack_zone_malloc(zone, len);
    if (!list || !items || !buf)
        return (odp_val_t){0};
    const char *p = s + 1, *end = s + len - 1;
    size_t n = 0, o = 0;
    while (p < end && n < cap) {
        char *start = buf + o;
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end)
                    p++;
                buf[o++] = *p;
            }
            p++;
        } else {
            while (p < end && *p != ',')
                buf[o++] = *p++;
        }
        items[n].type = MSGPACK_OBJECT_STR;
        items[n].via.str.ptr = start;
        items[n].via.str.size = (uint32_t)(buf + o - start);
        n++;
        if (p < end && *p == ',')
            p++;
    }
    list->type = MSGPACK_OBJECT_ARRAY;
    list->via.array.size = (uint32_t)n;
    list->via.array.ptr = items;
    return (odp_val_t){.present = true, .obj = list};
}

char *rows_array_literal(const odp_val_t *items, size_t n)
{
    size_t size = 3;
    for (size_t i = 0; i < n; i++)
        size += 2 * items[i].len + 3;
    char *out = malloc(size);
    if (!out)
        return NULL;
    size_t o = 0;
    out[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[o++] = ',';
        out[o++] = '"';
        for (size_t k = 0; k < items[i].len; k++) {
            char c = items[i].str[k];
            if (c == '"' || c == '\\')
                out[o++] = '\\';
            out[o++] = c;
        }
        out[o++] = '"';
    }
    out[o++] = '}';
    out[o] = '\0';
    return out;
}

int rows_encode(PGresult *r, const odp_msgdef_t *def, rows_fill_fn fill, size_t size,
                msgpack_sbuffer *buf)
{
    int n = PQntuples(r);
    msgpack_sbuffer_init(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)n);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    void *rec = calloc(1, size);
    int rc = rec ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        memset(rec, 0, size);
        fill(r, i, rec, &zone);
        rc = odp_encode(def, rec, &pk);
        /*  Each record is packed before the next is read: its zone memory can go. */
        msgpack_zone_clear(&zone);
    }
    free(rec);
    msgpack_zone_destroy(&zone);
    return rc;
}

int rows_pack(odp_req_t *req, PGresult *r, const odp_msgdef_t *def, rows_fill_fn fill, size_t size)
{
    msgpack_sbuffer items;
    int rc = rows_encode(r, def, fill, size, &items);
    if (rc == 0) {
        odp_rep_list_t rep = {0};
        rep.items = odp_v_raw(items.data, items.size);
        rc = odp_encode(&odp_def_rep_list, &rep, req->pk);
    }
    msgpack_sbuffer_destroy(&items);
    PQclear(r);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "cannot encode the list") : 0;
}

bool rows_valid_date(const odp_val_t *v)
{
    return v->present && odp_parse_date(v->str, v->len, NULL);
}

bool registrar_reserved_column(const char *name, size_t len)
{
    /*  row_no is the staging table's own; the rest are PostgreSQL's system columns, which
        no table may have a column named after. */
    static const char *const reserved[] = {"row_no", "tableoid", "xmin", "cmin",
                                           "xmax",   "cmax",     "ctid"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], name, len) == 0)
            return true;
    return false;
}
