/*  The DCAT-AP catalogue in pages: /catalog.jsonld and /catalog.ttl, as ckanext-dcat serves
    them (page=N, 100 entries a page by default, a hydra:PagedCollection node naming the
    first, previous, next and last pages), plus RFC 8288 Link headers. modified_since is the
    publisher's event number (the X-Odp-Through of an earlier answer) and is carried on
    into every page link.

    The publisher's catalogue.export has no paging: a page is cut here from its JSON-LD.
    A page is a graph of its own: the catalogue node listing the page's entries, those
    entries, and every node they refer to (distributions, agents, concepts), so a harvester
    can read each page alone. Turtle is written from that graph the way the publisher
    writes it from the whole one. */
#include "web.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_HYDRA "http://www.w3.org/ns/hydra/core#"

static bool s_has_type(json_t *node, const char *type)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(node, "@type"), i,
                       t) if (json_is_string(t) &&
                              strcmp(json_string_value(t), type) == 0) return true;
    return false;
}

/*  Keep only the values of node[key] whose @id is in ids. */
static void s_trim(json_t *node, const char *key, json_t *ids)
{
    json_t *vals = json_object_get(node, key);
    for (size_t i = json_array_size(vals); i-- > 0;) {
        const char *id = json_string_value(json_object_get(json_array_get(vals, i), "@id"));
        if (!id || !json_object_get(ids, id))
            json_array_remove(vals, i);
    }
    if (vals && !json_array_size(vals))
        json_object_del(node, key);
}

/*  Add to keep every node reachable from the nodes already in it (by @id references). */
static void s_reach(json_t *index, json_t *keep)
{
    json_t *todo = json_array();
    const char *id;
    json_t *x;
    json_object_foreach(keep, id, x) json_array_append_new(todo, json_string(id));
    while (json_array_size(todo)) {
        size_t last = json_array_size(todo) - 1;
        json_t *node = json_object_get(index, json_string_value(json_array_get(todo, last)));
        json_array_remove(todo, last);
        const char *key;
        json_t *vals;
        json_object_foreach(node, key, vals)
        {
            size_t i;
            json_t *v;
            json_array_foreach(vals, i, v)
            {
                const char *ref = json_string_value(json_object_get(v, "@id"));
                if (ref && json_object_get(index, ref) && !json_object_get(keep, ref)) {
                    json_object_set_new(keep, ref, json_true());
                    json_array_append_new(todo, json_string(ref));
                }
            }
        }
    }
    json_decref(todo);
}

static json_t *s_literal(const char *value, const char *type)
{
    return json_pack("[{s:s,s:s}]", "@value", value, "@type", type);
}

/*  The link to page p (the same format, limit and modified_since). */
static void s_page_url(odp_buf_t *b, const char *base, const char *path, int64_t page,
                       int64_t limit, int64_t since, bool limit_given)
{
    w_bprintf(b, "%s%s?page=%" PRId64, base, path, page);
    if (limit_given)
        w_bprintf(b, "&limit=%" PRId64, limit);
    if (since)
        w_bprintf(b, "&modified_since=%" PRId64, since);
}

/*  Turtle of a JSON-LD document whose nodes hold arrays of values (the publisher's shape):
    types as compact IRIs, references as <IRI>, literals with a language or a datatype. */
static void s_turtle(odp_buf_t *b, json_t *doc)
{
    const char *prefix;
    json_t *iri;
    json_object_foreach(json_object_get(doc, "@context"), prefix, iri)
        w_bprintf(b, "@prefix %s: <%s> .\n", prefix, json_string_value(iri));
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(doc, "@graph"), i, node)
    {
        w_bprintf(b, "\n<%s>", json_string_value(json_object_get(node, "@id")));
        const char *key;
        json_t *vals;
        bool first = true;
        json_object_foreach(node, key, vals)
        {
            if (strcmp(key, "@id") == 0)
                continue;
            w_bprintf(b, "%s%s", first ? "\n    " : " ;\n    ",
                      strcmp(key, "@type") == 0 ? "a" : key);
            first = false;
            size_t k;
            json_t *v;
            json_array_foreach(vals, k, v)
            {
                odp_buf_append(b, k ? ", " : " ", k ? 2 : 1);
                if (json_is_string(v)) {
                    w_bprintf(b, "%s", json_string_value(v));
                    continue;
                }
                const char *ref = json_string_value(json_object_get(v, "@id"));
                if (ref) {
                    w_bprintf(b, "<%s>", ref);
                    continue;
                }
                odp_buf_append(b, "\"", 1);
                for (const char *c = json_string_value(json_object_get(v, "@value")); c && *c;
                     c++) {
                    const char *esc = *c == '"'    ? "\\\""
                                      : *c == '\\' ? "\\\\"
                                      : *c == '\n' ? "\\n"
                                      : *c == '\r' ? "\\r"
                                      : *c == '\t' ? "\\t"
                                                   : NULL;
                    odp_buf_append(b, esc ? esc : c, esc ? strlen(esc) : 1);
                }
                const char *lang = json_string_value(json_object_get(v, "@language"));
                if (lang)
                    w_bprintf(b, "\"@%s", lang);
                else
                    w_bprintf(b, "\"^^%s", json_string_value(json_object_get(v, "@type")));
            }
        }
        odp_buf_append(b, " .\n", 3);
    }
}

enum MHD_Result w_catalog_page(w_req_t *r)
{
    bool ttl = strcmp(r->path, "/catalog.ttl") == 0;
    int64_t since, page, limit;
    char why[120];
    if (w_param_int(r, "modified_since", 0, 0, INT64_MAX, &since, why, sizeof why) < 0)
        return w_ckan_error(r, 400, "Validation Error", "modified_since", why);
    if (w_param_int(r, "page", 1, 1, 1000000, &page, why, sizeof why) < 0)
        return w_ckan_error(r, 400, "Validation Error", "page", why);
    if (w_param_int(r, "limit", 100, 1, 1000, &limit, why, sizeof why) < 0)
        return w_ckan_error(r, 400, "Validation Error", "limit", why);
    bool limit_given = w_param(r, "limit") != NULL;
    odp_catalogue_export_t m = {0};
    m.format = odp_v_str("jsonld");
    if (since)
        m.since = odp_v_int(since);
    odp_reply_t rep;
    int st = w_publisher(&odp_def_catalogue_export, &m, &rep);
    if (st != 200) {
        enum MHD_Result rc = w_ckan_refused(r, &rep, st);
        odp_reply_free(&rep);
        return rc;
    }
    int64_t through = w_int(&rep.obj, "through", 0);
    char etag[120], hdr[2400];
    snprintf(etag, sizeof etag, "\"c%" PRId64 "-%" PRId64 "-p%" PRId64 "-%" PRId64 "-%s\"", since,
             through, page, limit, ttl ? "ttl" : "jsonld");
    const char *type = ttl ? "text/turtle; charset=utf-8" : "application/ld+json; charset=utf-8";
    if (r->if_none && strcmp(r->if_none, etag) == 0) {
        odp_reply_free(&rep);
        snprintf(hdr, sizeof hdr, "X-Odp-Through: %" PRId64 "\nETag: %s", through, etag);
        return w_send(r, 304, type, "", 0, hdr);
    }
    const msgpack_object *text = odp_map_get(&rep.obj, "document");
    json_t *doc = text && text->type == MSGPACK_OBJECT_STR
                      ? json_loadb(text->via.str.ptr, text->via.str.size, 0, NULL)
                      : NULL;
    odp_reply_free(&rep);
    json_t *graph = json_object_get(doc, "@graph");
    if (!json_is_array(graph) || !json_is_object(json_object_get(doc, "@context"))) {
        json_decref(doc);
        return w_ckan_error(r, 502, "Internal Server Error", NULL,
                            "the publisher's catalogue could not be read");
    }
    /*  The entries, in the publisher's order (by resource code), and the catalogue node. */
    json_t *index = json_object(), *items = json_array(), *catalog = NULL;
    size_t i;
    json_t *node;
    json_array_foreach(graph, i, node)
    {
        const char *id = json_string_value(json_object_get(node, "@id"));
        if (!id)
            continue;
        json_object_set(index, id, node);
        if (s_has_type(node, "dcat:Catalog"))
            catalog = node;
        else if (s_has_type(node, "dcat:Dataset") || s_has_type(node, "dcat:DataService"))
            json_array_append(items, node);
    }
    int64_t total = (int64_t)json_array_size(items);
    int64_t last = total ? (total + limit - 1) / limit : 1;
    if (page > last) {
        json_decref(index);
        json_decref(items);
        json_decref(doc);
        char msg[120];
        snprintf(msg, sizeof msg, "page %" PRId64 " is past the last page (%" PRId64 ")", page,
                 last);
        return w_ckan_error(r, 404, "Not Found Error", NULL, msg);
    }
    json_t *keep = json_object(), *on_page = json_object();
    for (int64_t k = (page - 1) * limit; k < total && k < page * limit; k++) {
        const char *id =
            json_string_value(json_object_get(json_array_get(items, (size_t)k), "@id"));
        json_object_set_new(keep, id, json_true());
        json_object_set_new(on_page, id, json_true());
    }
    if (catalog) {
        s_trim(catalog, "dcat:dataset", on_page);
        s_trim(catalog, "dcat:service", on_page);
        json_object_set_new(keep, json_string_value(json_object_get(catalog, "@id")), json_true());
    }
    s_reach(index, keep);
    json_t *paged = json_array();
    json_array_foreach(graph, i, node)
    {
        const char *id = json_string_value(json_object_get(node, "@id"));
        if (id && json_object_get(keep, id))
            json_array_append(paged, node);
    }
    /*  The paging, as ckanext-dcat writes it (its harvester follows hydra:nextPage). */
    char base[300], n[32];
    w_base_url(r, base, sizeof base);
    odp_buf_t *u = odp_buf_new(), *links = odp_buf_new();
    s_page_url(u, base, r->path, page, limit, since, limit_given);
    json_t *hydra =
        json_pack("{s:s,s:[s]}", "@id", odp_buf_data(u), "@type", "hydra:PagedCollection");
    snprintf(n, sizeof n, "%" PRId64, total);
    json_object_set_new(hydra, "hydra:totalItems", s_literal(n, "xsd:integer"));
    snprintf(n, sizeof n, "%" PRId64, limit);
    json_object_set_new(hydra, "hydra:itemsPerPage", s_literal(n, "xsd:integer"));
    static const char *const rel[] = {"first", "previous", "next", "last"};
    static const char *const prop[] = {"hydra:firstPage", "hydra:previousPage", "hydra:nextPage",
                                       "hydra:lastPage"};
    int64_t target[] = {1, page - 1, page + 1, last};
    w_bprintf(links, "Link: ");
    for (size_t k = 0; k < 4; k++) {
        if (target[k] < 1 || target[k] > last)
            continue;
        odp_buf_reset(u);
        s_page_url(u, base, r->path, target[k], limit, since, limit_given);
        json_object_set_new(hydra, prop[k], s_literal(odp_buf_data(u), "xsd:string"));
        w_bprintf(links, "%s<%s>; rel=\"%s\"", odp_buf_size(links) > 6 ? ", " : "", odp_buf_data(u),
                  k == 1 ? "prev" : rel[k]);
    }
    json_array_append_new(paged, hydra);
    json_object_set_new(json_object_get(doc, "@context"), "hydra", json_string(S_HYDRA));
    json_object_set_new(doc, "@graph", paged);
    snprintf(hdr, sizeof hdr,
             "X-Odp-Through: %" PRId64 "\nETag: %s\nCache-Control: public, max-age=60\n%.2000s",
             through, etag, odp_buf_data(links));
    odp_buf_destroy(&u);
    odp_buf_destroy(&links);
    enum MHD_Result rc;
    if (ttl) {
        odp_buf_t *b = odp_buf_new();
        s_turtle(b, doc);
        rc = w_send(r, 200, type, odp_buf_data(b), odp_buf_size(b), hdr);
        odp_buf_destroy(&b);
    } else {
        char *s = json_dumps(doc, JSON_INDENT(1));
        rc = s ? w_send(r, 200, type, s, strlen(s), hdr) : MHD_NO;
        free(s);
    }
    json_decref(keep);
    json_decref(on_page);
    json_decref(index);
    json_decref(items);
    json_decref(doc);
    return rc;
}
