/*  odp-web: the HTTP gateway (CKAN Action API v3, datastore dumps, the DCAT-AP catalogue)
    and the citizens' portal. A stateless process: it holds no database connection, and
    every answer comes from the query service's public endpoint (as an anonymous CURVE key,
    or as the user whose token a request carries) or from the publisher's catalogue.export.
    Any number of copies may run side by side. */
#ifndef ODP_WEB_H
#define ODP_WEB_H

#include "common/buf.h"
#include "common/client.h"
#include "common/codec.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

/*  One HTTP request, from its first byte to its answer. */
typedef struct {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    char ip[64];
    odp_buf_t *upload;   /* the request body, as it arrives */
    bool too_large;      /* the body passed ODP_WEB_MAX_BODY */
    json_t *params;      /* query arguments (strings), then a JSON or form body's fields */
    char token[65];      /* Authorization header, else the portal's cookie; "" for none */
    bool token_cookie;   /* the token came from the cookie (the portal) */
    bool gzip_ok;        /* the client accepts gzip */
    const char *if_none; /* If-None-Match */
} w_req_t;

/*  ---- the services (main.c) ------------------------------------------------------------- */
/*  Call the query service (per thread, one connection) as the request's user when it has a
    token. The HTTP status the reply maps to: the service's status, or 503 when no answer
    came (rep->status 0). odp_reply_free(rep) afterwards in every case. */
int w_query(w_req_t *r, const odp_msgdef_t *def, void *msg, odp_reply_t *rep);
/*  The same call with a raw msgpack body (built with the packer by the caller). */
int w_query_raw(w_req_t *r, const char *cmd, const void *body, size_t size, odp_reply_t *rep);
/*  The same with a JSON object as the body (packed as msgpack; the request's token added);
    steals body. */
int w_call(w_req_t *r, const char *cmd, json_t *body, odp_reply_t *rep);
/*  A connection of the caller's own to the query service, as the gateway's key (a dump
    keeps several requests in flight on it); NULL, logged, when it cannot be made. */
odp_client_t *w_query_client_new(void);
/*  catalogue.export on the publisher. */
int w_publisher(const odp_msgdef_t *def, void *msg, odp_reply_t *rep);

/*  ---- answers (main.c) ---------------------------------------------------------------- */
/*  Queue a whole answer; the body is copied, gzipped when the client accepts it and it is
    worth it. extra_headers: "Name: value" lines separated by \n, or NULL. */
enum MHD_Result w_send(w_req_t *r, unsigned status, const char *type, const char *body, size_t len,
                       const char *extra_headers);
/*  A streamed answer (dumps): the callback fills buffers until it returns
    MHD_CONTENT_READER_END_OF_STREAM. */
enum MHD_Result w_send_stream(w_req_t *r, unsigned status, const char *type,
                              MHD_ContentReaderCallback cb, void *cls,
                              MHD_ContentReaderFreeCallback done, const char *extra_headers);

/*  ---- parameters ----------------------------------------------------------------------- */
const char *w_param(const w_req_t *r, const char *name); /* a string parameter, or NULL */
/*  An integer parameter: def when absent; -1 with why in err (CKAN's wording) when it is
    not an integer in [min, max]. */
int w_param_int(const w_req_t *r, const char *name, int64_t def, int64_t min, int64_t max,
                int64_t *out, char *err, size_t errsize);
/*  Parse application/x-www-form-urlencoded or a query string into obj (strings). */
void w_form_parse(json_t *obj, const char *s, size_t len);
/*  Text from the reply map as a NUL-terminated copy ("" when absent or not text). */
void w_str(const msgpack_object *map, const char *key, char *buf, size_t size);
int64_t w_int(const msgpack_object *map, const char *key, int64_t def);

/*  ---- the API (api.c) and the portal (portal.c) --------------------------------------- */
enum MHD_Result w_api(w_req_t *r);       /* /api/3/action/<name> */
enum MHD_Result w_dump(w_req_t *r);      /* /datastore/dump/<resource> */
enum MHD_Result w_catalogue(w_req_t *r); /* /catalog.jsonld, /catalog.ttl, /dataset/<id>.jsonld */
/*  /catalog.jsonld and /catalog.ttl in pages (catalog.c); w_catalogue serves one dataset. */
enum MHD_Result w_catalog_page(w_req_t *r);
enum MHD_Result w_portal(w_req_t *r); /* everything else */

/*  A CKAN-style error answer: {"help", "success": false, "error": {"__type", "message"}};
    field, when not NULL, makes it a Validation Error {field: [message]}. */
enum MHD_Result w_ckan_error(w_req_t *r, unsigned status, const char *type, const char *field,
                             const char *message);
/*  The CKAN answer for a query service error reply. */
enum MHD_Result w_ckan_refused(w_req_t *r, const odp_reply_t *rep, int status);

/*  The base URL links are made from: ODP_WEB_URL, else http://<Host>. */
void w_base_url(const w_req_t *r, char *buf, size_t size);

/*  A resource id: "<resource>" (its current version) or "<resource>-v<version>". */
void w_resource_id(const char *id, char *resource, size_t size, int64_t *version);

/*  HTML-escape s onto b. */
void w_html(odp_buf_t *b, const char *s);
/*  URL-encode s onto b. */
void w_urlenc(odp_buf_t *b, const char *s);
void w_bprintf(odp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*  s[0..n) as a JSON string onto b (quoted; text that is not UTF-8 becomes U+FFFD, as
    odp_json_from_msgpack makes it). */
void w_json_str(odp_buf_t *b, const char *s, size_t n);
/*  A msgpack value as compact JSON text onto b, the same text odp_json_from_msgpack and
    json_dumps(JSON_COMPACT) make, without building the tree: answers with many rows are
    written straight from the service's reply. */
void w_json_msgpack(odp_buf_t *b, const msgpack_object *o);

#endif
