/*  /datastore/dump/<resource>: a whole released version as CSV, TSV, JSON or XML, with
    CKAN's parameters (format, bom, q, filters, fields, sort, limit, offset). The version is
    fixed by the first answer, so a release made meanwhile changes nothing mid-stream. A
    plain CSV dump is the query service's download: on a connection of the dump's own, the
    download's credit of chunk requests is kept in flight (one more sent as each reply is
    handed on), so the query service cuts the next chunks while this one goes out to the
    HTTP client. Anything else pages through datastore.search by key (next_page), 32,000
    rows a page, and is written here. Either way the gateway holds one chunk or page at a
    time, plus the replies in flight. */
#include "web.h"

#include "common/config.h"
#include "common/json.h"
#include "common/log.h"

#include <csv.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PAGE 32000

typedef enum { S_CSV, S_TSV, S_JSON, S_XML } s_fmt_t;

typedef struct {
    w_req_t copy; /* the request's token only: the connection is gone by then */
    s_fmt_t fmt;
    bool chunks;      /* the download path */
    int64_t download; /* chunks: the download, the next row to ask for */
    int64_t next_row;
    int64_t span, last; /* chunks: rows a chunk, the version's last row */
    int64_t credit;     /* chunks: requests that may be in flight, and those that are */
    int64_t inflight;
    odp_client_t *client; /* chunks: the dump's own connection */
    json_t *query;        /* pages: the datastore.search body, advanced each page */
    int64_t left;         /* rows still wanted (limit), -1 for all */
    bool first_row;
    bool done;
    bool tail_written;
    odp_buf_t *out; /* bytes not yet handed to the connection */
    size_t out_at;
    json_t *fields; /* pages: the field ids */
    int skip;       /* the column of _id, left out unless asked for; -1 for none */
    bool want_id;   /* fields names _id */
} s_dump_t;

static void s_free(void *cls)
{
    s_dump_t *d = cls;
    odp_client_destroy(&d->client);
    json_decref(d->query);
    json_decref(d->fields);
    odp_buf_destroy(&d->out);
    free(d);
}

static void s_cell_csv(odp_buf_t *b, const char *s, size_t len, char sep)
{
    if (sep == '\t') {
        for (size_t i = 0; i < len; i++)
            odp_buf_append(b, s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ? " " : s + i, 1);
        return;
    }
    /*  Quoted only when it must be, as PostgreSQL's COPY writes CSV: both paths of a dump
        give the same bytes for the same rows. */
    bool quote = len == 0 ? false
                          : memchr(s, ',', len) || memchr(s, '"', len) || memchr(s, '\n', len) ||
                                memchr(s, '\r', len);
    if (!quote) {
        odp_buf_append(b, s, len);
        return;
    }
    char *dst = odp_buf_reserve(b, 2 * len + 2);
    if (dst)
        odp_buf_extend(b, csv_write(dst, 2 * len + 2, s, len));
}

/*  A value as text: strings as they are, numbers and booleans as JSON writes them. */
static char *s_text(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static void s_header(s_dump_t *d)
{
    size_t n = json_array_size(d->fields);
    if (d->fmt == S_JSON) {
        w_bprintf(d->out, "{\"fields\": [");
        for (size_t i = 0; i < n; i++) {
            char *f = json_dumps(json_array_get(d->fields, i), JSON_COMPACT);
            w_bprintf(d->out, "%s%s", i ? ", " : "", f);
            free(f);
        }
        w_bprintf(d->out, "], \"records\": [\n");
    } else if (d->fmt == S_XML)
        w_bprintf(d->out, "<data>\n");
    else
        for (size_t i = 0; i < n; i++) {
            const char *id = json_string_value(json_object_get(json_array_get(d->fields, i), "id"));
            if (i)
                odp_buf_append(d->out, d->fmt == S_TSV ? "\t" : ",", 1);
            s_cell_csv(d->out, id, strlen(id), d->fmt == S_TSV ? '\t' : ',');
        }
    if (d->fmt == S_CSV || d->fmt == S_TSV)
        odp_buf_append(d->out, "\r\n", 2);
}

static void s_rows(s_dump_t *d, json_t *records)
{
    size_t i, n = json_array_size(d->fields);
    json_t *row;
    json_array_foreach(records, i, row)
    {
        if (d->left == 0)
            break;
        if (d->skip >= 0)
            json_array_remove(row, (size_t)d->skip);
        if (d->left > 0)
            d->left--;
        if (d->fmt == S_JSON) {
            char *s = json_dumps(row, JSON_COMPACT);
            w_bprintf(d->out, "%s%s", d->first_row ? "" : ",\n", s);
            free(s);
        } else if (d->fmt == S_XML) {
            odp_buf_append(d->out, "<row>", 5);
            for (size_t c = 0; c < n; c++) {
                const char *id =
                    json_string_value(json_object_get(json_array_get(d->fields, c), "id"));
                char *t = s_text(json_array_get(row, c));
                w_bprintf(d->out, "<%s>", id);
                w_html(d->out, t);
                w_bprintf(d->out, "</%s>", id);
                free(t);
            }
            odp_buf_append(d->out, "</row>\n", 7);
        } else {
            for (size_t c = 0; c < n; c++) {
                if (c)
                    odp_buf_append(d->out, d->fmt == S_TSV ? "\t" : ",", 1);
                json_t *v = json_array_get(row, c);
                if (json_is_null(v))
                    continue;
                char *t = s_text(v);
                s_cell_csv(d->out, t, strlen(t), d->fmt == S_TSV ? '\t' : ',');
                free(t);
            }
            odp_buf_append(d->out, "\r\n", 2);
        }
        d->first_row = false;
    }
}

/*  The next page or chunk into d->out: 200, or the status of a failure. */
static int s_fetch(s_dump_t *d, odp_reply_t *rep)
{
    if (d->chunks) {
        /*  A reply to free whatever happens below. */
        memset(rep, 0, sizeof *rep);
        msgpack_zone_init(&rep->zone, 64);
        /*  Chunks start at 1 + k * span up to the last row; an empty version has one. */
        while (d->inflight < d->credit && (d->next_row <= d->last || d->next_row == 1)) {
            odp_download_chunk_t m = {0};
            if (d->copy.token[0])
                m.token = odp_v_str(d->copy.token);
            m.download = odp_v_int(d->download);
            m.from_row = odp_v_int(d->next_row);
            if (odp_client_send(d->client, &odp_def_download_chunk, &m) < 0)
                return 503;
            d->next_row += d->span;
            d->inflight++;
        }
        odp_reply_free(rep);
        if (odp_client_recv(d->client, (int)odp_config_int("web", "CALL_TIMEOUT_MS", 10000), rep) <
            0) {
            odp_log(ODP_LOG_WARN, "%s", odp_client_why(d->client));
            return 503;
        }
        d->inflight--;
        if (rep->status != 200)
            return rep->status;
        const msgpack_object *data = odp_map_get(&rep->obj, "data");
        if (data && data->type == MSGPACK_OBJECT_BIN)
            odp_buf_append(d->out, data->via.bin.ptr, data->via.bin.size);
        const msgpack_object *done = odp_map_get(&rep->obj, "done");
        d->done = done && done->type == MSGPACK_OBJECT_BOOLEAN && done->via.boolean;
        return 200;
    }
    int st = w_call(&d->copy, "datastore.search", json_deep_copy(d->query), rep);
    if (st != 200)
        return st;
    json_t *j = odp_json_from_msgpack(&rep->obj);
    if (!d->fields) {
        d->fields = json_array();
        size_t i;
        json_t *f;
        d->skip = -1;
        json_array_foreach(json_object_get(j, "fields"), i, f)
        {
            const char *fid = json_string_value(json_object_get(f, "id"));
            if (!d->want_id && fid && strcmp(fid, "_id") == 0)
                d->skip = (int)i;
            else
                json_array_append(d->fields, f);
        }
        /*  Every later page reads the version this one read. */
        json_object_set(d->query, "version", json_object_get(j, "version"));
        s_header(d);
    }
    json_t *records = json_object_get(j, "records");
    s_rows(d, records);
    const char *np = json_string_value(json_object_get(j, "next_page"));
    size_t got = json_array_size(records);
    if (d->left == 0 || got == 0)
        d->done = true;
    else if (np)
        json_object_set_new(d->query, "next_page", json_string(np));
    else if (json_object_get(d->query, "sort") && got == S_PAGE)
        json_object_set_new(
            d->query, "offset",
            json_integer(json_integer_value(json_object_get(d->query, "offset")) + S_PAGE));
    else
        d->done = true;
    json_decref(j);
    return 200;
}

static ssize_t s_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    s_dump_t *d = cls;
    while (odp_buf_size(d->out) - d->out_at == 0) {
        odp_buf_reset(d->out);
        d->out_at = 0;
        if (d->done) {
            if (d->tail_written || d->chunks)
                return MHD_CONTENT_READER_END_OF_STREAM;
            if (d->fmt == S_JSON)
                w_bprintf(d->out, "\n]}\n");
            else if (d->fmt == S_XML)
                w_bprintf(d->out, "</data>\n");
            d->tail_written = true;
            continue;
        }
        odp_reply_t rep;
        int st = s_fetch(d, &rep);
        odp_reply_free(&rep);
        /*  The status line is gone: a failure mid-stream can only cut the answer short. */
        if (st != 200)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = odp_buf_size(d->out) - d->out_at;
    if (n > max)
        n = max;
    memcpy(buf, odp_buf_data(d->out) + d->out_at, n);
    d->out_at += n;
    return (ssize_t)n;
}

enum MHD_Result w_dump(w_req_t *r)
{
    const char *id = r->path + strlen("/datastore/dump/");
    char resource[64];
    int64_t version;
    w_resource_id(id, resource, sizeof resource, &version);
    const char *f = w_param(r, "format");
    s_fmt_t fmt = S_CSV;
    if (f && *f) {
        if (strcasecmp(f, "csv") == 0)
            fmt = S_CSV;
        else if (strcasecmp(f, "tsv") == 0)
            fmt = S_TSV;
        else if (strcasecmp(f, "json") == 0)
            fmt = S_JSON;
        else if (strcasecmp(f, "xml") == 0)
            fmt = S_XML;
        else
            return w_ckan_error(r, 400, "Validation Error", "format",
                                "format is one of csv, tsv, json, xml");
    }
    int64_t limit = -1, offset = 0;
    char why[120];
    if (w_param(r, "limit") &&
        w_param_int(r, "limit", -1, 0, INT64_MAX, &limit, why, sizeof why) < 0)
        return w_ckan_error(r, 400, "Validation Error", "limit", why);
    if (w_param_int(r, "offset", 0, 0, 100000, &offset, why, sizeof why) < 0)
        return w_ckan_error(r, 400, "Validation Error", "offset", why);
    const char *bom = w_param(r, "bom");
    bool with_bom = bom && (strcasecmp(bom, "true") == 0 || strcmp(bom, "1") == 0);
    s_dump_t *d = calloc(1, sizeof *d);
    snprintf(d->copy.token, sizeof d->copy.token, "%s", r->token);
    d->fmt = fmt;
    d->left = limit;
    d->first_row = true;
    d->out = odp_buf_new();
    const char *q = w_param(r, "q"), *filters = w_param(r, "filters"),
               *fields = w_param(r, "fields"), *sort = w_param(r, "sort");
    d->chunks = fmt == S_CSV && !(q && *q) && !(filters && *filters) && !(fields && *fields) &&
                !(sort && *sort) && limit < 0 && offset == 0;
    if (with_bom)
        odp_buf_append(d->out, "\xEF\xBB\xBF", 3);
    odp_reply_t rep;
    int st;
    int64_t release = 0;
    if (d->chunks) {
        json_t *b = json_pack("{s:s,s:s}", "resource", resource, "format", "csv");
        if (version)
            json_object_set_new(b, "version", json_integer(version));
        st = w_call(r, "download.begin", b, &rep);
        if (st == 200) {
            d->download = w_int(&rep.obj, "download", 0);
            d->next_row = 1;
            d->span = w_int(&rep.obj, "span", 1);
            d->last = w_int(&rep.obj, "last_row", 0);
            d->credit = w_int(&rep.obj, "credit", 1);
            release = w_int(&rep.obj, "release", 0);
            /*  The same key as the per-thread connection that began it: the download is
                the key's (or the token's user's). */
            d->client = w_query_client_new();
            if (!d->client) {
                odp_reply_free(&rep);
                memset(&rep, 0, sizeof rep);
                msgpack_zone_init(&rep.zone, 64);
                st = 503;
            }
        }
    } else {
        d->query = json_pack("{s:s,s:s,s:b,s:I,s:I}", "resource", resource, "records_format",
                             "lists", "include_total", 0, "limit",
                             (json_int_t)(limit >= 0 && limit < S_PAGE ? limit : S_PAGE), "offset",
                             (json_int_t)offset);
        if (version)
            json_object_set_new(d->query, "version", json_integer(version));
        if (q && *q)
            json_object_set_new(d->query, "q", json_string(q));
        if (sort && *sort)
            json_object_set_new(d->query, "sort", json_string(sort));
        if (filters && *filters) {
            json_t *fj = json_loads(filters, 0, NULL);
            if (!json_is_object(fj)) {
                json_decref(fj);
                s_free(d);
                return w_ckan_error(r, 400, "Validation Error", "filters", "Must be a JSON object");
            }
            json_object_set_new(d->query, "filters", fj);
        }
        if (fields && *fields) {
            json_t *fl = json_array();
            const char *p = fields;
            while (*p) {
                size_t n = strcspn(p, ",");
                if (n)
                    json_array_append_new(fl, json_stringn(p, n));
                p += n + (p[n] == ',');
            }
            json_object_set_new(d->query, "fields", fl);
            size_t k;
            json_t *x;
            json_array_foreach(fl, k, x) d->want_id |= strcmp(json_string_value(x), "_id") == 0;
        }
        st = s_fetch(d, &rep);
        if (st == 200)
            release = w_int(&rep.obj, "release", 0);
    }
    if (st != 200) {
        enum MHD_Result rc = w_ckan_refused(r, &rep, st);
        odp_reply_free(&rep);
        s_free(d);
        return rc;
    }
    odp_reply_free(&rep);
    static const char *const types[] = {
        "text/csv; charset=utf-8", "text/tab-separated-values; charset=utf-8",
        "application/json; charset=utf-8", "text/xml; charset=utf-8"};
    static const char *const ext[] = {"csv", "tsv", "json", "xml"};
    char hdr[400], etag[80];
    snprintf(etag, sizeof etag, "\"r%" PRId64 "-%s%s\"", release, ext[fmt], d->chunks ? "" : "-q");
    snprintf(hdr, sizeof hdr,
             "Content-Disposition: attachment; filename=\"%s.%s\"\nETag: %s\nCache-Control: %s",
             resource, ext[fmt], etag, r->token[0] ? "private" : "public, max-age=300");
    if (d->chunks && r->if_none && strcmp(r->if_none, etag) == 0) {
        s_free(d);
        return w_send(r, 304, types[fmt], "", 0, hdr);
    }
    /*  A filtered dump's ETag would have to cover every parameter: only whole versions get one. */
    if (!d->chunks)
        snprintf(hdr, sizeof hdr, "Content-Disposition: attachment; filename=\"%s.%s\"", resource,
                 ext[fmt]);
    return w_send_stream(r, 200, types[fmt], s_read, d, s_free, hdr);
}

/*  The publisher's DCAT-AP catalogue (JSON-LD or Turtle), whole or one entry;
    modified_since is the `through` of an earlier answer (the X-Odp-Through header). */
enum MHD_Result w_catalogue(w_req_t *r)
{
    odp_catalogue_export_t m = {0};
    bool ttl = strcmp(r->path, "/catalog.ttl") == 0;
    m.format = odp_v_str(ttl ? "turtle" : "jsonld");
    char resource[64] = "";
    if (strncmp(r->path, "/dataset/", 9) == 0) {
        snprintf(resource, sizeof resource, "%.*s", (int)(strlen(r->path) - 9 - 7), r->path + 9);
        m.resource = odp_v_str(resource);
    }
    int64_t since;
    char why[120];
    if (w_param_int(r, "modified_since", 0, 0, INT64_MAX, &since, why, sizeof why) < 0)
        return w_ckan_error(r, 400, "Validation Error", "modified_since", why);
    if (since)
        m.since = odp_v_int(since);
    odp_reply_t rep;
    int st = w_publisher(&odp_def_catalogue_export, &m, &rep);
    if (st != 200) {
        enum MHD_Result rc = w_ckan_refused(r, &rep, st);
        odp_reply_free(&rep);
        return rc;
    }
    const msgpack_object *doc = odp_map_get(&rep.obj, "document");
    char hdr[200];
    int64_t through = w_int(&rep.obj, "through", 0);
    snprintf(hdr, sizeof hdr, "X-Odp-Through: %" PRId64 "\nETag: \"c%" PRId64 "-%" PRId64 "%s\"",
             through, since, through, resource);
    if (r->if_none) {
        char etag[120];
        snprintf(etag, sizeof etag, "\"c%" PRId64 "-%" PRId64 "%s\"", since, through, resource);
        if (strcmp(r->if_none, etag) == 0) {
            odp_reply_free(&rep);
            return w_send(r, 304, "application/ld+json", "", 0, hdr);
        }
    }
    enum MHD_Result rc =
        w_send(r, 200, ttl ? "text/turtle; charset=utf-8" : "application/ld+json; charset=utf-8",
               doc && doc->type == MSGPACK_OBJECT_STR ? doc->via.str.ptr : "",
               doc && doc->type == MSGPACK_OBJECT_STR ? doc->via.str.size : 0, hdr);
    odp_reply_free(&rep);
    return rc;
}
