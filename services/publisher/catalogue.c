/*  catalogue.export: the public catalogue as DCAT-AP 3 (JSON-LD or Turtle) and each
    dataset as a schema.org Dataset (docs/catalogue.md, "The public catalogue").

    The DCAT-AP graph is built once, as JSON-LD node objects whose keys are compact IRIs
    of the prefixes below; the Turtle form is written from those same nodes, so the two
    formats cannot say different things. --since N keeps the entries that the
    publisher's events after N changed, read in one snapshot with the number it covers. */
#include "publisher.h"

#include "common/config.h"
#include "common/log.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *prefix, *iri;
} s_prefixes[] = {{"dcat", "http://www.w3.org/ns/dcat#"},
                  {"dct", "http://purl.org/dc/terms/"},
                  {"foaf", "http://xmlns.com/foaf/0.1/"},
                  {"vcard", "http://www.w3.org/2006/vcard/ns#"},
                  {"skos", "http://www.w3.org/2004/02/skos/core#"},
                  {"spdx", "http://spdx.org/rdf/terms#"},
                  {"xsd", "http://www.w3.org/2001/XMLSchema#"},
                  {"rdfs", "http://www.w3.org/2000/01/rdf-schema#"}};

#define EU_AUTH "http://publications.europa.eu/resource/authority/"

/*  The EU frequency vocabulary for the update cycles (ODP_CODES_UPDATE_CYCLE). */
static const char *s_frequency(const char *cycle)
{
    static const char *const map[][2] = {
        {"realtime", "UPDATE_CONT"}, {"daily", "DAILY"},         {"weekly", "WEEKLY"},
        {"monthly", "MONTHLY"},      {"quarterly", "QUARTERLY"}, {"half_yearly", "ANNUAL_2"},
        {"yearly", "ANNUAL"},        {"irregular", "IRREG"},     {"static", "NEVER"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(cycle, map[i][0]) == 0)
            return map[i][1];
    return "UNKNOWN";
}

/*  An IRI from text: characters an IRI may not hold are percent-encoded (RFC 3987). */
static char *s_iri(const char *base, const char *a, const char *b, const char *c)
{
    const char *parts[4] = {base, a, b, c};
    size_t cap = 16;
    for (int i = 0; i < 4; i++)
        cap += parts[i] ? strlen(parts[i]) * 3 + 1 : 0;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (int i = 0; i < 4; i++) {
        if (!parts[i])
            continue;
        if (i > 1)
            *o++ = '/';
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            if (*p <= 0x20 || strchr("<>\"{}|^`\\", *p) || (i > 0 && *p == '#'))
                o += sprintf(o, "%%%02X", *p);
            else
                *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

static json_t *s_id(const char *iri)
{
    return json_pack("{s:s}", "@id", iri);
}

static json_t *s_lit(const char *text)
{
    return json_pack("{s:s,s:s}", "@value", text, "@language", "zh");
}

static json_t *s_typed(const char *text, const char *type)
{
    return json_pack("{s:s,s:s}", "@value", text, "@type", type);
}

/*  Add value under key of node (every key holds an array). Steals value. */
static void s_add(json_t *node, const char *key, json_t *value)
{
    if (!value)
        return;
    json_t *arr = json_object_get(node, key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(node, key, arr);
    }
    json_array_append_new(arr, value);
}

static json_t *s_node(json_t *graph, const char *iri, const char *type)
{
    json_t *n = json_pack("{s:s,s:[s]}", "@id", iri, "@type", type);
    json_array_append_new(graph, n);
    return n;
}

typedef struct {
    const char *base;
    json_t *graph;
    json_t *seen; /* IRIs of the shared nodes already in the graph */
} s_doc_t;

/*  A shared node (an agent, a concept, a vocabulary term) once per document. */
static json_t *s_shared(s_doc_t *d, const char *iri, const char *type)
{
    if (json_object_get(d->seen, iri))
        return NULL;
    json_object_set_new(d->seen, iri, json_true());
    return s_node(d->graph, iri, type);
}

/*  Column indexes of the entry query. */
enum {
    E_RESOURCE,
    E_KIND,
    E_DEPT,
    E_DEPT_NAME,
    E_TITLE,
    E_SUMMARY,
    E_KEYWORDS,
    E_DOMAIN,
    E_CONTENT_KIND,
    E_OPEN_TYPE,
    E_UPDATE_CYCLE,
    E_CONTACT,
    E_LOCATION,
    E_ENDPOINT,
    E_ISSUED,
    E_MODIFIED,
    E_VERSION
};
enum {
    R_RESOURCE,
    R_TABLE,
    R_VERSION,
    R_KIND,
    R_STATE,
    R_ROWS,
    R_BYTES,
    R_SHA256,
    R_FORMAT,
    R_RELEASED,
    R_RELEASE
};

static void s_concept(s_doc_t *d, json_t *node, const char *key, const char *scheme,
                      const char *code)
{
    char *iri = s_iri(d->base, "vocab", scheme, code);
    char *sch = s_iri(d->base, "vocab", scheme, NULL);
    s_add(node, key, s_id(iri));
    json_t *c = s_shared(d, iri, "skos:Concept");
    if (c) {
        s_add(c, "skos:prefLabel", s_typed(code, "xsd:string"));
        s_add(c, "skos:inScheme", s_id(sch));
    }
    json_t *cs = s_shared(d, sch, "skos:ConceptScheme");
    if (cs)
        s_add(cs, "dct:title", s_typed(scheme, "xsd:string"));
    free(iri);
    free(sch);
}

/*  The describing properties every dataset and service carries. */
static void s_describe(s_doc_t *d, json_t *node, const char *iri, PGresult *e, int i)
{
    s_add(node, "dct:identifier", s_typed(PQgetvalue(e, i, E_RESOURCE), "xsd:string"));
    s_add(node, "dct:title", s_lit(PQgetvalue(e, i, E_TITLE)));
    s_add(node, "dct:description", s_lit(PQgetvalue(e, i, E_SUMMARY)));
    json_t *kw = json_loads(PQgetvalue(e, i, E_KEYWORDS), 0, NULL);
    for (size_t k = 0; k < json_array_size(kw); k++)
        s_add(node, "dcat:keyword", s_lit(json_string_value(json_array_get(kw, k))));
    json_decref(kw);
    s_concept(d, node, "dcat:theme", "domain", PQgetvalue(e, i, E_DOMAIN));
    char *agent = s_iri(d->base, "agent", PQgetvalue(e, i, E_DEPT), NULL);
    s_add(node, "dct:publisher", s_id(agent));
    json_t *a = s_shared(d, agent, "foaf:Agent");
    if (a) {
        s_add(a, "foaf:name", s_lit(PQgetvalue(e, i, E_DEPT_NAME)));
        s_add(a, "dct:identifier", s_typed(PQgetvalue(e, i, E_DEPT), "xsd:string"));
    }
    free(agent);
    char contact[1024];
    snprintf(contact, sizeof contact, "%s#contact", iri);
    s_add(node, "dcat:contactPoint", s_id(contact));
    json_t *k = s_node(d->graph, contact, "vcard:Kind");
    s_add(k, "vcard:fn", s_lit(PQgetvalue(e, i, E_DEPT_NAME)));
    s_add(k, "vcard:note", s_lit(PQgetvalue(e, i, E_CONTACT)));
    const char *rights =
        strcmp(PQgetvalue(e, i, E_OPEN_TYPE), "unconditional") == 0 ? "PUBLIC" : "RESTRICTED";
    char rights_iri[128];
    snprintf(rights_iri, sizeof rights_iri, EU_AUTH "access-right/%s", rights);
    s_add(node, "dct:accessRights", s_id(rights_iri));
    s_shared(d, rights_iri, "dct:RightsStatement");
}

/*  One release as a distribution of its dataset. */
static void s_distribution(s_doc_t *d, json_t *ds, const char *ds_iri, PGresult *r, int j)
{
    char version[32];
    snprintf(version, sizeof version, "v%s", PQgetvalue(r, j, R_VERSION));
    char *iri = s_iri(ds_iri, NULL, PQgetvalue(r, j, R_TABLE), version);
    bool file = strcmp(PQgetvalue(r, j, R_KIND), "file") == 0;
    s_add(ds, "dcat:distribution", s_id(iri));
    json_t *n = s_node(d->graph, iri, "dcat:Distribution");
    char title[200];
    snprintf(title, sizeof title, "%s %s", PQgetvalue(r, j, R_TABLE), version);
    s_add(n, "dct:title", s_typed(title, "xsd:string"));
    /*  A dataset's rows are served by the query service per release; a file is downloaded. */
    char *access = s_iri(d->base, file ? "files" : "data", PQgetvalue(r, j, R_RELEASE), NULL);
    s_add(n, "dcat:accessURL", s_id(access));
    if (file)
        s_add(n, "dcat:downloadURL", s_id(access));
    free(access);
    s_add(n, "dct:issued", s_typed(PQgetvalue(r, j, R_RELEASED), "xsd:dateTime"));
    if (!PQgetisnull(r, j, R_BYTES))
        s_add(n, "dcat:byteSize", s_typed(PQgetvalue(r, j, R_BYTES), "xsd:nonNegativeInteger"));
    const char *format = PQgetvalue(r, j, R_FORMAT);
    if (!file) {
        char ft[128];
        snprintf(ft, sizeof ft, EU_AUTH "file-type/%s",
                 strcmp(format, "jsonl") == 0 ? "JSON_LINES" : "CSV");
        s_add(n, "dct:format", s_id(ft));
        s_shared(d, ft, "dct:MediaTypeOrExtent");
    } else if (format[0]) {
        char *mt = s_iri("https://www.iana.org/assignments/media-types/", format, NULL, NULL);
        s_add(n, "dcat:mediaType", s_id(mt));
        s_shared(d, mt, "dct:MediaType");
        free(mt);
    }
    if (!PQgetisnull(r, j, R_SHA256)) {
        char sum[1024];
        snprintf(sum, sizeof sum, "%s#sha256", iri);
        s_add(n, "spdx:checksum", s_id(sum));
        json_t *c = s_node(d->graph, sum, "spdx:Checksum");
        s_add(c, "spdx:algorithm", s_id("http://spdx.org/rdf/terms#checksumAlgorithm_sha256"));
        s_add(c, "spdx:checksumValue", s_typed(PQgetvalue(r, j, R_SHA256), "xsd:hexBinary"));
        s_shared(d, "http://spdx.org/rdf/terms#checksumAlgorithm_sha256", "spdx:ChecksumAlgorithm");
    }
    if (!PQgetisnull(r, j, R_ROWS)) {
        char desc[200];
        snprintf(desc, sizeof desc, "%s rows; %s", PQgetvalue(r, j, R_ROWS),
                 PQgetvalue(r, j, R_STATE));
        s_add(n, "dct:description", s_typed(desc, "xsd:string"));
    }
    free(iri);
}

/*  The DCAT-AP graph of the entries in e with their releases in r (ordered by resource). */
static json_t *s_dcat(const char *base, PGresult *e, PGresult *r, bool whole)
{
    s_doc_t d = {.base = base, .graph = json_array(), .seen = json_object()};
    char *cat_iri = s_iri(base, "catalogue", NULL, NULL);
    json_t *cat = s_node(d.graph, cat_iri, "dcat:Catalog");
    s_add(cat, "dct:title", s_lit(odp_config("publisher", "CATALOGUE_TITLE", "政府开放数据目录")));
    s_add(cat, "dct:description",
          s_lit(whole ? "已发布的开放数据资源：数据集、文件、数据接口和应用"
                      : "自上次收割以来变更的开放数据资源"));
    s_add(cat, "foaf:homepage", s_id(base));
    char *ops = s_iri(base, "agent", "operations", NULL);
    s_add(cat, "dct:publisher", s_id(ops));
    json_t *opsn = s_shared(&d, ops, "foaf:Agent");
    s_add(opsn, "foaf:name", s_lit(odp_config("publisher", "OPERATOR_NAME", "开放数据运维部门")));
    free(ops);
    s_shared(&d, base, "foaf:Document");
    int j = 0;
    for (int i = 0; i < PQntuples(e); i++) {
        const char *resource = PQgetvalue(e, i, E_RESOURCE);
        const char *kind = PQgetvalue(e, i, E_KIND);
        bool service = strcmp(kind, "interface") == 0 || strcmp(kind, "app") == 0;
        char *iri = s_iri(base, service ? "service" : "dataset", resource, NULL);
        json_t *n = s_node(d.graph, iri, service ? "dcat:DataService" : "dcat:Dataset");
        s_add(cat, service ? "dcat:service" : "dcat:dataset", s_id(iri));
        s_describe(&d, n, iri, e, i);
        s_concept(&d, n, "dct:type", service ? "delivery-form" : "content-kind",
                  service ? kind : PQgetvalue(e, i, E_CONTENT_KIND));
        if (service) {
            char *ep = s_iri(PQgetvalue(e, i, E_ENDPOINT), NULL, NULL, NULL);
            s_add(n, "dcat:endpointURL", s_id(ep));
            free(ep);
        } else {
            char freq[128];
            snprintf(freq, sizeof freq, EU_AUTH "frequency/%s",
                     s_frequency(PQgetvalue(e, i, E_UPDATE_CYCLE)));
            s_add(n, "dct:accrualPeriodicity", s_id(freq));
            s_shared(&d, freq, "dct:Frequency");
            s_add(n, "dct:issued", s_typed(PQgetvalue(e, i, E_ISSUED), "xsd:dateTime"));
            s_add(n, "dct:modified", s_typed(PQgetvalue(e, i, E_MODIFIED), "xsd:dateTime"));
            if (!PQgetisnull(e, i, E_VERSION))
                s_add(n, "dcat:version", s_typed(PQgetvalue(e, i, E_VERSION), "xsd:string"));
            char prov[1024];
            snprintf(prov, sizeof prov, "%s#location", iri);
            s_add(n, "dct:provenance", s_id(prov));
            json_t *p = s_node(d.graph, prov, "dct:ProvenanceStatement");
            s_add(p, "rdfs:label", s_lit(PQgetvalue(e, i, E_LOCATION)));
        }
        for (; j < PQntuples(r) && strcmp(PQgetvalue(r, j, R_RESOURCE), resource) < 0; j++)
            ;
        for (; j < PQntuples(r) && strcmp(PQgetvalue(r, j, R_RESOURCE), resource) == 0; j++)
            if (!service)
                s_distribution(&d, n, iri, r, j);
        free(iri);
    }
    free(cat_iri);
    json_t *ctx = json_object();
    for (size_t p = 0; p < sizeof s_prefixes / sizeof s_prefixes[0]; p++)
        json_object_set_new(ctx, s_prefixes[p].prefix, json_string(s_prefixes[p].iri));
    json_decref(d.seen);
    return json_pack("{s:o,s:o}", "@context", ctx, "@graph", d.graph);
}

/*  ---- Turtle, from the JSON-LD nodes -------------------------------------------------------- */

static void s_put(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 65536;
        while (c < *len + n + 1)
            c *= 2;
        char *p = realloc(*out, c);
        if (!p)
            return;
        *out = p;
        *cap = c;
    }
    memcpy(*out + *len, s, n);
    *len += n;
    (*out)[*len] = '\0';
}

#define PUT(s) s_put(&out, &len, &cap, (s), strlen(s))

static char *s_turtle(json_t *doc)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    for (size_t p = 0; p < sizeof s_prefixes / sizeof s_prefixes[0]; p++) {
        char line[160];
        snprintf(line, sizeof line, "@prefix %s: <%s> .\n", s_prefixes[p].prefix,
                 s_prefixes[p].iri);
        PUT(line);
    }
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(doc, "@graph"), i, node)
    {
        PUT("\n<");
        PUT(json_string_value(json_object_get(node, "@id")));
        PUT(">");
        const char *key;
        json_t *vals;
        bool first = true;
        json_object_foreach(node, key, vals)
        {
            if (strcmp(key, "@id") == 0)
                continue;
            PUT(first ? "\n    " : " ;\n    ");
            first = false;
            PUT(strcmp(key, "@type") == 0 ? "a" : key);
            size_t k;
            json_t *v;
            json_array_foreach(vals, k, v)
            {
                PUT(k ? ", " : " ");
                if (json_is_string(v)) { /* a type: a compact IRI */
                    PUT(json_string_value(v));
                } else if (json_object_get(v, "@id")) {
                    PUT("<");
                    PUT(json_string_value(json_object_get(v, "@id")));
                    PUT(">");
                } else {
                    PUT("\"");
                    for (const char *c = json_string_value(json_object_get(v, "@value")); *c; c++) {
                        const char *esc = *c == '"'    ? "\\\""
                                          : *c == '\\' ? "\\\\"
                                          : *c == '\n' ? "\\n"
                                          : *c == '\r' ? "\\r"
                                          : *c == '\t' ? "\\t"
                                                       : NULL;
                        if (esc)
                            PUT(esc);
                        else
                            s_put(&out, &len, &cap, c, 1);
                    }
                    PUT("\"");
                    json_t *lang = json_object_get(v, "@language");
                    if (lang) {
                        PUT("@");
                        PUT(json_string_value(lang));
                    } else {
                        PUT("^^");
                        PUT(json_string_value(json_object_get(v, "@type")));
                    }
                }
            }
        }
        PUT(" .\n");
    }
    return out;
}

/*  ---- schema.org ---------------------------------------------------------------------------- */

static json_t *s_schemaorg(const char *base, PGresult *e, PGresult *r)
{
    json_t *list = json_array();
    int j = 0;
    for (int i = 0; i < PQntuples(e); i++) {
        const char *resource = PQgetvalue(e, i, E_RESOURCE);
        const char *kind = PQgetvalue(e, i, E_KIND);
        if (strcmp(kind, "dataset") != 0 && strcmp(kind, "file") != 0)
            continue;
        char *iri = s_iri(base, "dataset", resource, NULL);
        json_t *kw = json_loads(PQgetvalue(e, i, E_KEYWORDS), 0, NULL);
        json_t *ds = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:s,s:s,s:b}",
            "@context", "https://schema.org/", "@type", "Dataset", "@id", iri, "name",
            PQgetvalue(e, i, E_TITLE), "description", PQgetvalue(e, i, E_SUMMARY), "identifier",
            resource, "keywords", kw ? kw : json_array(), "url", iri, "creator", "@type",
            "GovernmentOrganization", "name", PQgetvalue(e, i, E_DEPT_NAME), "identifier",
            PQgetvalue(e, i, E_DEPT), "publisher", "@type", "GovernmentOrganization", "name",
            PQgetvalue(e, i, E_DEPT_NAME), "identifier", PQgetvalue(e, i, E_DEPT), "datePublished",
            PQgetvalue(e, i, E_ISSUED), "dateModified", PQgetvalue(e, i, E_MODIFIED),
            "isAccessibleForFree", 1);
        if (!PQgetisnull(e, i, E_VERSION))
            json_object_set_new(ds, "version", json_string(PQgetvalue(e, i, E_VERSION)));
        json_t *dist = json_array();
        for (; j < PQntuples(r) && strcmp(PQgetvalue(r, j, R_RESOURCE), resource) < 0; j++)
            ;
        for (; j < PQntuples(r) && strcmp(PQgetvalue(r, j, R_RESOURCE), resource) == 0; j++) {
            bool file = strcmp(PQgetvalue(r, j, R_KIND), "file") == 0;
            char *url = s_iri(base, file ? "files" : "data", PQgetvalue(r, j, R_RELEASE), NULL);
            char name[200];
            snprintf(name, sizeof name, "%s v%s", PQgetvalue(r, j, R_TABLE),
                     PQgetvalue(r, j, R_VERSION));
            json_t *dd =
                json_pack("{s:s,s:s,s:s,s:s}", "@type", "DataDownload", "name", name, "contentUrl",
                          url, "encodingFormat",
                          file ? PQgetvalue(r, j, R_FORMAT)
                          : strcmp(PQgetvalue(r, j, R_FORMAT), "jsonl") == 0 ? "application/jsonl"
                                                                             : "text/csv");
            if (!PQgetisnull(r, j, R_BYTES))
                json_object_set_new(dd, "contentSize", json_string(PQgetvalue(r, j, R_BYTES)));
            if (!PQgetisnull(r, j, R_SHA256))
                json_object_set_new(dd, "sha256", json_string(PQgetvalue(r, j, R_SHA256)));
            json_array_append_new(dist, dd);
            free(url);
        }
        json_object_set_new(ds, "distribution", dist);
        json_array_append_new(list, ds);
        free(iri);
    }
    return list;
}

/*  ---- the command ---------------------------------------------------------------------------- */

static int s_export(odp_req_t *req)
{
    const odp_catalogue_export_t *m = req->msg;
    bool jsonld = odp_v_eq(&m->format, "jsonld"), turtle = odp_v_eq(&m->format, "turtle"),
         schema = odp_v_eq(&m->format, "schemaorg");
    if (!jsonld && !turtle && !schema)
        return odp_req_fail(req, ODP_E_INVALID_VALUE, "format",
                            "format is one of jsonld, turtle (DCAT-AP 3), schemaorg");
    char since[24];
    snprintf(since, sizeof since, "%" PRId64, m->since.present ? m->since.i : 0);
    const char *vals[2] = {since, m->resource.present ? m->resource.str : NULL};
    int lens[2] = {-1, (int)m->resource.len};
    /*  One snapshot: the entries and the event number they are complete up to. */
    if (odp_db_cmd(req->db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL) < 0)
        return odp_req_db_fail(req, NULL, "the catalogue");
    PGresult *e = odp_db_exec(
        req->db,
        "SELECT e.resource, e.kind, e.department, e.department_name, e.title, e.summary, "
        "array_to_json(e.keywords)::text, e.domain, e.content_kind, e.open_type, e.update_cycle, "
        "e.contact, e.location, e.endpoint, " PUB_TS("e.first_released_at") ", " PUB_TS(
            "e.modified_at") ", (SELECT r.version::text FROM releases r WHERE r.id = "
                             "e.current_release) FROM entries e WHERE e.state = 'published' AND "
                             "e.modified_seq > $1 AND ($2::text IS NULL OR e.resource = $2) "
                             "ORDER BY e.resource COLLATE \"C\"",
        2, vals, lens);
    PGresult *r =
        e && PQresultStatus(e) == PGRES_TUPLES_OK
            ? odp_db_exec(req->db,
                          "SELECT r.resource, r.table_name, r.version, r.kind, r.state, "
                          "r.rows, r.bytes, r.sha256, r.format, " PUB_TS(
                              "r.released_at") ", r.id FROM releases r JOIN entries e "
                                               "ON e.resource = r.resource WHERE "
                                               "e.state = 'published' AND "
                                               "e.modified_seq > $1 AND r.state IN "
                                               "('current', 'superseded') ORDER BY r.resource "
                                               "COLLATE \"C\", r.table_name, r.version",
                          1, vals, NULL)
            : NULL;
    PGresult *t =
        r && PQresultStatus(r) == PGRES_TUPLES_OK
            ? odp_db_exec(req->db, "SELECT coalesce(max(seq), 0) FROM outbox", 0, NULL, NULL)
            : NULL;
    if (!t || PQresultStatus(t) != PGRES_TUPLES_OK) {
        PGresult *failed = !e || PQresultStatus(e) != PGRES_TUPLES_OK   ? e
                           : !r || PQresultStatus(r) != PGRES_TUPLES_OK ? r
                                                                        : t;
        if (failed != e)
            PQclear(e);
        if (failed != r)
            PQclear(r);
        if (failed != t)
            PQclear(t);
        odp_db_rollback(req->db);
        return odp_req_db_fail(req, failed, "the catalogue");
    }
    odp_db_rollback(req->db); /* read only: nothing to keep */
    if (m->resource.present && PQntuples(e) == 0) {
        PQclear(e);
        PQclear(r);
        PQclear(t);
        return odp_req_fail(req, ODP_E_NOT_FOUND, "resource", "no published entry %.*s",
                            (int)m->resource.len, m->resource.str);
    }
    const char *base = odp_config("publisher", "BASE_URL", "https://opendata.example.org/");
    json_t *doc = schema ? s_schemaorg(base, e, r) : s_dcat(base, e, r, !m->since.present);
    char *text = turtle ? s_turtle(doc) : json_dumps(doc, JSON_INDENT(1));
    int64_t entries = PQntuples(e);
    int64_t through = strtoll(PQgetvalue(t, 0, 0), NULL, 10);
    json_decref(doc);
    PQclear(e);
    PQclear(r);
    PQclear(t);
    if (!text)
        return odp_req_fail(req, ODP_E_INTERNAL, NULL, "the catalogue could not be written");
    odp_rep_catalogue_t rep = {0};
    rep.format = m->format;
    rep.since = odp_v_int(m->since.present ? m->since.i : 0);
    rep.through = odp_v_int(through);
    rep.entries = odp_v_int(entries);
    rep.document = odp_v_str(text);
    int rc = odp_encode(&odp_def_rep_catalogue, &rep, req->pk);
    free(text);
    return rc < 0 ? odp_req_fail(req, ODP_E_INTERNAL, NULL, "the catalogue did not encode") : 0;
}

void catalogue_routes(odp_service_t *svc)
{
    /*  The catalogue is public: anyone may harvest it. */
    odp_service_route(svc, &odp_def_catalogue_export, ODP_ALLOW_ANY, s_export);
}
