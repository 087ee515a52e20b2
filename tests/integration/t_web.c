/*  The HTTP gateway (odp-web) over real HTTP against the real platform: the CKAN actions
    with their parameters, defaults, limits and error shapes; dumps equal to the released
    rows; users, applications and feedback through the API; the limits a public endpoint
    needs; the portal's pages; the DCAT-AP catalogue. The gateway runs as its own process,
    talking CURVE to the query service's public endpoint as any citizen's client would. */
#include "pushing.h"

#include "common/json.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_DEPT     "446900001"
#define S_DEPT_ESC "448600001"
#define S_ROWS     50

static char s_open[33], s_cond[33];
static int s_port, s_port_strict;
static pid_t s_web = -1, s_web_strict = -1;
static bool s_ready = false;

/*  ---- a small HTTP/1.0 client -----------------------------------------------------------------
 */

typedef struct {
    int status;
    char headers[4096];
    char *body; /* NUL-terminated */
    size_t len;
} s_http_t;

static void s_http_free(s_http_t *h)
{
    free(h->body);
    h->body = NULL;
}

/*  method path on port, with extra header lines ("K: v\r\n"...) and a body. 0 or -1. */
static int s_http(int port, const char *method, const char *path, const char *headers,
                  const char *body, s_http_t *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t blen = body ? strlen(body) : 0;
    char *req = malloc(2048 + strlen(path) + blen);
    int n = sprintf(req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%s", method, path, port,
                    headers ? headers : "");
    if (body)
        n += sprintf(req + n, "Content-Length: %zu\r\n", blen);
    n += sprintf(req + n, "\r\n");
    if (body)
        memcpy(req + n, body, blen);
    size_t total = (size_t)n + blen, sent = 0;
    while (sent < total) {
        ssize_t w = send(fd, req + sent, total - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    free(req);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
        free(buf);
        return -1;
    }
    size_t hl = (size_t)(end - buf);
    snprintf(out->headers, sizeof out->headers, "%.*s", (int)hl, buf);
    out->len = len - hl - 4;
    out->body = malloc(out->len + 1);
    memcpy(out->body, end + 4, out->len);
    out->body[out->len] = '\0';
    free(buf);
    return 0;
}

/*  A header's value (case-insensitive name) into buf; false when absent. */
static bool s_header(const s_http_t *h, const char *name, char *buf, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = h->headers; p && *p;
         p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, size, "%.*s", (int)strcspn(v, "\r\n"), v);
            return true;
        }
    }
    return false;
}

/*  GET on the main gateway, the body as JSON (NULL when it is not). */
static json_t *s_get(const char *path, int *status)
{
    s_http_t h;
    *status = 0;
    if (s_http(s_port, "GET", path, NULL, NULL, &h) < 0)
        return NULL;
    *status = h.status;
    json_t *j = json_loads(h.body, 0, NULL);
    s_http_free(&h);
    return j;
}

static json_t *s_post(const char *path, const char *token, const char *json, int *status)
{
    char hdr[200];
    snprintf(hdr, sizeof hdr, "Content-Type: application/json\r\n%s%s%s",
             token ? "Authorization: " : "", token ? token : "", token ? "\r\n" : "");
    s_http_t h;
    *status = 0;
    if (s_http(s_port, "POST", path, hdr, json, &h) < 0)
        return NULL;
    *status = h.status;
    json_t *j = json_loads(h.body, 0, NULL);
    s_http_free(&h);
    return j;
}

/*  CKAN's error shape: success false, error.__type as given; for a Validation Error the
    field named carries a list of messages. */
static void s_ckan_error(const char *what, json_t *j, int st, int want_st, const char *type,
                         const char *field)
{
    json_t *err = json_object_get(j, "error");
    const char *t = json_string_value(json_object_get(err, "__type"));
    CHECK(st == want_st && j && json_is_false(json_object_get(j, "success")) && t &&
              strcmp(t, type) == 0 && json_is_string(json_object_get(j, "help")),
          "%s: got %d %s, want %d %s", what, st, t ? t : "(no __type)", want_st, type);
    if (field)
        CHECK(json_is_array(json_object_get(err, field)), "%s: no messages for %s", what, field);
    else
        CHECK(json_is_string(json_object_get(err, "message")), "%s: no message", what);
}

static json_t *s_result(const char *what, json_t *j, int st)
{
    CHECK(st == 200 && json_is_true(json_object_get(j, "success")), "%s: %d %s", what, st,
          j ? "" : "(not JSON)");
    return json_object_get(j, "result");
}

/*  A released dataset of dept with the dictionary fields (steals it) and the CSV, open or
    conditional. */
static bool s_released_csv(const char *dept, const char *title, json_t *fields, const char *csv,
                           size_t off, bool conditional, char resource[33])
{
    char dict[512];
    snprintf(dict, sizeof dict, "%s/web.dict.json", h_var());
    json_t *d = json_pack("{s:o}", "fields", fields);
    json_dump_file(d, dict, 0);
    json_decref(d);
    if (!tp_entry(dept, title, "dataset", dict, true, resource))
        return false;
    odp_reply_t rep;
    int st;
    if (conditional) {
        odp_client_t *p = h_client("registrar", h_keyfile(dept));
        odp_catalog_update_t u = {0};
        u.resource = odp_v_str(resource);
        u.open_type = odp_v_str("conditional");
        u.access_conditions = odp_v_str("用于科研，不得转售");
        st = h_call(p, &odp_def_catalog_update, &u, &rep);
        odp_reply_free(&rep);
        odp_client_destroy(&p);
        CHECK(st == 200, "conditional: %d", st);
    }
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_opts_t o = {.resource = resource};
    tp_result_t res;
    st = tp_push(c, &o, csv, off, &res);
    odp_client_destroy(&c);
    CHECK(st == 200, "push: %s %d %s", res.step, st, res.code);
    if (st != 200 || !tp_checked(res.upload))
        return false;
    odp_client_t *rv = h_client("reviewer", NULL);
    odp_review_decide_t dm = {0};
    dm.upload = odp_v_int(res.upload);
    dm.approve = odp_v_bool(true);
    st = h_call(rv, &odp_def_review_decide, &dm, &rep);
    odp_reply_free(&rep);
    odp_client_destroy(&rv);
    CHECK(st == 200, "review.decide: %d", st);
    odp_client_t *pub = h_client("publisher", NULL);
    odp_release_publish_t pm = {0};
    pm.resource = odp_v_str(resource);
    st = h_call(pub, &odp_def_release_publish, &pm, &rep);
    CHECK(st == 200, "release.publish: %d %s", st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&pub);
    return st == 200;
}

/*  A released dataset of S_ROWS rows (id 1.., a Chinese note), open or conditional. */
static bool s_released(const char *title, bool conditional, char resource[33])
{
    char csv[8192];
    size_t off = (size_t)snprintf(csv, sizeof csv, "id,day,note\n");
    for (int i = 1; i <= S_ROWS; i++)
        off += (size_t)snprintf(csv + off, sizeof csv - off,
                                "%d,2026-01-%02d,\"第 %d 行, 含逗号\"\n", i, i % 28 + 1, i);
    json_t *fields = json_pack("[{s:s,s:s,s:b,s:b},{s:s,s:s},{s:s,s:s}]", "name", "id", "type",
                               "integer", "required", 1, "unique", 1, "name", "day", "type", "date",
                               "name", "note", "type", "text");
    return s_released_csv(S_DEPT, title, fields, csv, off, conditional, resource);
}

/*  A gateway on port; query_port 0 is the query service's public endpoint; extra, extra2:
    more variables or NULL. */
static pid_t s_start_web_at(int port, int query_port, const char *rate, const char *burst,
                            const char *extra, const char *extra2)
{
    static char env[4][6][128];
    static int n = 0;
    char(*e)[128] = env[n++ % 4];
    snprintf(e[0], 128, "ODP_WEB_PORT=%d", port);
    snprintf(e[1], 128, "ODP_QUERY_PUBLIC_ENDPOINT=tcp://127.0.0.1:%d",
             query_port ? query_port : atoi(h_env("ODP_PORT_BASE")) + 39);
    snprintf(e[2], 128, "ODP_WEB_RATE_PER_S=%s", rate);
    snprintf(e[3], 128, "ODP_WEB_RATE_BURST=%s", burst);
    snprintf(e[4], 128, "ODP_WEB_MAX_BODY=65536");
    const char *envp[] = {e[0], e[1], e[2], e[3], e[4], extra, extra2, NULL};
    char bin[512], log[512];
    snprintf(bin, sizeof bin, "%s/odp-web", h_bin());
    snprintf(log, sizeof log, "%s/log/web-%d.log", h_var(), port);
    const char *argv[] = {bin, NULL};
    pid_t pid = h_spawn(argv, envp, log, log);
    for (int i = 0; i < 100; i++) {
        s_http_t h;
        if (s_http(port, "GET", "/api/3/action/status_show", NULL, NULL, &h) == 0) {
            s_http_free(&h);
            return pid;
        }
        usleep(50 * 1000);
    }
    CHECK(false, "odp-web did not listen on %d", port);
    return pid;
}

static pid_t s_start_web(int port, const char *rate, const char *burst)
{
    return s_start_web_at(port, 0, rate, burst, NULL, NULL);
}

static void s_stop_web(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        int rc = h_wait_exit(*pid, 5000);
        CHECK(rc == 0, "odp-web exited with %d", rc);
    }
    *pid = -1;
}

/*  ---- cases ------------------------------------------------------------------------------ */

static void s_setup(void)
{
    static char bind[80];
    snprintf(bind, sizeof bind, "ODP_QUERY_PUBLIC_BIND=tcp://127.0.0.1:%d",
             atoi(h_env("ODP_PORT_BASE")) + 39);
    /*  The gateway is one anonymous key to the query service: its own per-client limit is
        the one under test, so the service's bucket is made large. */
    const char *env[] = {bind, "ODP_QUERY_RATE_PER_S=100000", "ODP_QUERY_RATE_BURST=100000", NULL};
    h_service_stop("query");
    CHECK(h_service_start("query", env) > 0, "query with a public endpoint");
    CHECK(h_department(S_DEPT, "网关测试 数据局") == 0, "department");
    bool ok = s_released("网关测试 空气质量日报", false, s_open) &&
              s_released("网关测试 企业信用明细", true, s_cond);
    s_port = atoi(h_env("ODP_PORT_BASE")) + 80;
    s_port_strict = s_port + 1;
    s_web = s_start_web(s_port, "100000", "100000");
    s_web_strict = s_start_web(s_port_strict, "1", "3");
    s_ready = ok && h_case_failures == 0;
}

static void s_actions(void)
{
    if (!s_ready)
        return;
    int st;
    char path[512];
    json_t *j = s_get("/api/3/action/status_show", &st);
    json_t *r = s_result("status_show", j, st);
    CHECK(json_is_string(json_object_get(r, "ckan_version")) &&
              strstr(json_string_value(json_object_get(j, "help")), "help_show?name=status_show"),
          "status_show: version and help");
    json_decref(j);

    /*  package_search: Chinese, defaults, facets under CKAN's names, fq on organization. */
    j = s_get("/api/3/action/package_search?q=%E7%A9%BA%E6%B0%94%E8%B4%A8%E9%87%8F", &st);
    r = s_result("package_search q=空气质量", j, st);
    json_t *first = json_array_get(json_object_get(r, "results"), 0);
    CHECK(json_integer_value(json_object_get(r, "count")) >= 1 &&
              strcmp(json_string_value(json_object_get(first, "name")) ?: "", s_open) == 0,
          "package_search in Chinese finds the entry first");
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(first, "organization"), "name"))
                     ?: "",
                 S_DEPT) == 0 &&
              json_array_size(json_object_get(first, "resources")) == 1,
          "a package has its organization and its resource");
    json_decref(j);
    snprintf(path, sizeof path,
             "/api/3/action/package_search?fq=organization:%s&facet.field=%%5B%%22organization%%22,"
             "%%22groups%%22%%5D&rows=1",
             S_DEPT);
    j = s_get(path, &st);
    r = s_result("package_search fq organization", j, st);
    CHECK(json_integer_value(json_object_get(r, "count")) == 2 &&
              json_array_size(json_object_get(r, "results")) == 1,
          "fq organization: count 2, rows 1");
    CHECK(json_integer_value(json_object_get(
              json_object_get(json_object_get(r, "facets"), "organization"), S_DEPT)) == 2 &&
              json_object_get(json_object_get(r, "search_facets"), "groups"),
          "facets under CKAN's names");
    json_decref(j);
    j = s_get("/api/3/action/package_search", &st);
    r = s_result("package_search defaults", j, st);
    CHECK(json_array_size(json_object_get(r, "results")) <= 10, "rows defaults to 10");
    json_decref(j);
    j = s_get("/api/3/action/package_search?rows=1001", &st);
    s_ckan_error("rows over 1000", j, st, 409, "Validation Error", "rows");
    json_decref(j);
    j = s_get("/api/3/action/package_search?start=-1", &st);
    s_ckan_error("negative start", j, st, 409, "Validation Error", "start");
    json_decref(j);
    j = s_get("/api/3/action/package_search?rows=ten", &st);
    s_ckan_error("rows not a number", j, st, 409, "Validation Error", "rows");
    json_decref(j);
    j = s_get("/api/3/action/package_search?facet.field=organization", &st);
    s_ckan_error("facet.field not JSON", j, st, 409, "Validation Error", "facet.field");
    json_decref(j);
    j = s_get("/api/3/action/package_search?sort=drop%20table", &st);
    s_ckan_error("unknown sort", j, st, 409, "Search Query Error", NULL);
    json_decref(j);

    /*  package_show, resource_show. */
    snprintf(path, sizeof path, "/api/3/action/package_show?id=%s", s_cond);
    j = s_get(path, &st);
    r = s_result("package_show", j, st);
    CHECK(json_is_false(json_object_get(r, "may_read")) &&
              strcmp(json_string_value(json_object_get(r, "open_type")) ?: "", "conditional") ==
                  0 &&
              json_array_size(json_object_get(r, "dictionary")) == 3,
          "package_show: conditional, not readable anonymously, its dictionary");
    json_decref(j);
    j = s_get("/api/3/action/package_show?id=nope", &st);
    s_ckan_error("package_show unknown", j, st, 404, "Not Found Error", NULL);
    json_decref(j);
    j = s_get("/api/3/action/package_show", &st);
    s_ckan_error("package_show without id", j, st, 409, "Validation Error", "id");
    json_decref(j);
    snprintf(path, sizeof path, "/api/3/action/resource_show?id=%s-v1", s_open);
    j = s_get(path, &st);
    r = s_result("resource_show", j, st);
    CHECK(json_integer_value(json_object_get(r, "rows")) == S_ROWS &&
              json_is_true(json_object_get(r, "datastore_active")),
          "resource_show: rows and datastore_active");
    json_decref(j);
    snprintf(path, sizeof path, "/api/3/action/resource_show?id=%s-v9", s_open);
    j = s_get(path, &st);
    s_ckan_error("resource_show of a version not released", j, st, 404, "Not Found Error", NULL);
    json_decref(j);

    /*  Lists. */
    j = s_get("/api/3/action/package_list", &st);
    r = s_result("package_list", j, st);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(r, i, v) found |= strcmp(json_string_value(v) ?: "", s_open) == 0;
    CHECK(found, "package_list names the entry");
    json_decref(j);
    j = s_get("/api/3/action/organization_list?all_fields=true", &st);
    r = s_result("organization_list", j, st);
    found = false;
    json_array_foreach(r, i, v) found |=
        strcmp(json_string_value(json_object_get(v, "name")) ?: "", S_DEPT) == 0 &&
        strcmp(json_string_value(json_object_get(v, "title")) ?: "", "网关测试 数据局") == 0;
    CHECK(found, "organization_list all_fields: the department with its name");
    json_decref(j);
    snprintf(path, sizeof path, "/api/3/action/organization_show?id=%s&include_datasets=true",
             S_DEPT);
    j = s_get(path, &st);
    r = s_result("organization_show", j, st);
    CHECK(json_integer_value(json_object_get(r, "package_count")) == 2 &&
              json_array_size(json_object_get(r, "packages")) == 2,
          "organization_show: two packages");
    json_decref(j);
    j = s_get("/api/3/action/organization_show?id=446999999", &st);
    s_ckan_error("organization_show unknown", j, st, 404, "Not Found Error", NULL);
    json_decref(j);
    j = s_get("/api/3/action/group_list", &st);
    r = s_result("group_list", j, st);
    found = false;
    json_array_foreach(r, i, v) found |=
        strcmp(json_string_value(v) ?: "", "resources_environment") == 0;
    CHECK(found, "group_list: the domain");
    json_decref(j);
    j = s_get("/api/3/action/tag_list", &st);
    r = s_result("tag_list", j, st);
    found = false;
    json_array_foreach(r, i, v) found |= strcmp(json_string_value(v) ?: "", "测试") == 0;
    CHECK(found, "tag_list: the keyword");
    json_decref(j);

    /*  POST with a JSON body; bad bodies and names. */
    j = s_post("/api/3/action/package_search", NULL, "{\"q\": \"企业信用\", \"rows\": 5}", &st);
    r = s_result("package_search by POST", j, st);
    CHECK(json_integer_value(json_object_get(r, "count")) >= 1, "POST JSON search");
    json_decref(j);
    j = s_post("/api/3/action/package_search", NULL, "{\"q\": ", &st);
    s_ckan_error("broken JSON", j, st, 400, "Bad Request", NULL);
    json_decref(j);
    j = s_get("/api/3/action/package_delete", &st);
    s_ckan_error("unknown action", j, st, 400, "Bad Request", NULL);
    json_decref(j);
}

static void s_datastore(void)
{
    if (!s_ready)
        return;
    int st;
    char path[600];
    snprintf(path, sizeof path, "/api/3/action/datastore_search?resource_id=%s", s_open);
    json_t *j = s_get(path, &st);
    json_t *r = s_result("datastore_search", j, st);
    CHECK(json_array_size(json_object_get(r, "records")) == S_ROWS &&
              json_integer_value(json_object_get(r, "total")) == S_ROWS &&
              json_integer_value(json_object_get(r, "limit")) == 100,
          "defaults: limit 100, every row, the total");
    json_t *rec = json_array_get(json_object_get(r, "records"), 0);
    CHECK(json_integer_value(json_object_get(rec, "id")) == 1 &&
              strcmp(json_string_value(json_object_get(rec, "note")) ?: "", "第 1 行, 含逗号") == 0,
          "records as objects, typed");
    json_decref(j);
    snprintf(path, sizeof path,
             "/api/3/action/datastore_search?resource_id=%s-v1&limit=5&offset=10", s_open);
    j = s_get(path, &st);
    r = s_result("limit/offset", j, st);
    CHECK(json_array_size(json_object_get(r, "records")) == 5 &&
              json_integer_value(
                  json_object_get(json_array_get(json_object_get(r, "records"), 0), "id")) == 11 &&
              json_is_string(json_object_get(json_object_get(r, "_links"), "next")),
          "limit 5 offset 10 starts at id 11, with a next link");
    json_decref(j);
    snprintf(path, sizeof path,
             "/api/3/action/datastore_search?resource_id=%s&filters=%%7B%%22id%%22:%%5B3,4%%5D%%7D"
             "&records_format=lists&fields=id,note",
             s_open);
    j = s_get(path, &st);
    r = s_result("filters", j, st);
    CHECK(json_array_size(json_object_get(r, "records")) == 2 &&
              json_integer_value(json_object_get(r, "total")) == 2 &&
              json_is_array(json_array_get(json_object_get(r, "records"), 0)),
          "filters {id: [3, 4]}: two rows, as lists");
    json_decref(j);
    static const struct {
        const char *query, *field;
    } bad[] = {
        {"limit=32001", "limit"},
        {"limit=-5", "limit"},
        {"filters=%7B%22id%3B%20drop%20table%20x%22:1%7D", NULL},
        {"filters=%5B1%5D", "filters"},
        {"sort=note%3B%20select%201", NULL},
        {"fields=nope", NULL},
        {"filters=%7B%22id%22:%22abc%22%7D", NULL},
        {"include_total=maybe", "include_total"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/api/3/action/datastore_search?resource_id=%s&%s", s_open,
                 bad[i].query);
        j = s_get(path, &st);
        json_t *err = json_object_get(j, "error");
        CHECK(st == 409 &&
                  strcmp(json_string_value(json_object_get(err, "__type")) ?: "",
                         "Validation Error") == 0 &&
                  (!bad[i].field || json_is_array(json_object_get(err, bad[i].field))),
              "hostile %s: %d", bad[i].query, st);
        json_decref(j);
    }
    j = s_get("/api/3/action/datastore_search", &st);
    s_ckan_error("no resource_id", j, st, 409, "Validation Error", "resource_id");
    json_decref(j);
    snprintf(path, sizeof path, "/api/3/action/datastore_search?resource_id=%s", s_cond);
    j = s_get(path, &st);
    s_ckan_error("conditional rows, anonymous", j, st, 403, "Authorization Error", NULL);
    json_decref(j);

    /*  ETag on a released version: the same question again is 304. */
    snprintf(path, sizeof path, "/api/3/action/datastore_search?resource_id=%s&limit=3", s_open);
    s_http_t h;
    char etag[128] = "", hdr[200];
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200 &&
              s_header(&h, "ETag", etag, sizeof etag),
          "an ETag");
    s_http_free(&h);
    snprintf(hdr, sizeof hdr, "If-None-Match: %s\r\n", etag);
    CHECK(s_http(s_port, "GET", path, hdr, NULL, &h) == 0 && h.status == 304 && h.len == 0,
          "If-None-Match: %d", h.status);
    s_http_free(&h);
}

/*  The gateway writes datastore_search straight from the query service's reply: the
    records and fields must be the JSON of exactly what the service answers, text with
    quotes, backslashes, newlines, tabs and astral characters included, in every format. */
static void s_rows_equal(void)
{
    if (!s_ready)
        return;
    static char esc[33];
    CHECK(h_department(S_DEPT_ESC, "网关转义 测试局") == 0, "department");
    const char csv[] =
        "id,note,flag,amount\n"
        "1,\"say \"\"hi\"\" \\ back\\slash\",true,1.50\n"
        "2,\"two\nlines\ttab\",false,-0.001\n"
        "3,\"emoji \xf0\x9f\x98\x80 and 中文 \xe2\x80\xa8 sep\",,12345678901234567890.5\n"
        "4,,true,0\n";
    json_t *fields =
        json_pack("[{s:s,s:s,s:b,s:b},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "name", "id", "type",
                  "integer", "required", 1, "unique", 1, "name", "note", "type", "text", "name",
                  "flag", "type", "boolean", "name", "amount", "type", "numeric");
    bool released =
        s_released_csv(S_DEPT_ESC, "网关转义 特殊字符", fields, csv, sizeof csv - 1, false, esc);
    CHECK(released, "a dataset with text to escape, released");
    if (!released)
        return;
    odp_client_t *q = h_client("query", NULL);
    static const char *const formats[] = {"objects", "lists", "csv"};
    for (size_t f = 0; f < 3; f++) {
        char path[300];
        snprintf(path, sizeof path,
                 "/api/3/action/datastore_search?resource_id=%s&records_format=%s", esc,
                 formats[f]);
        int st;
        json_t *j = s_get(path, &st);
        json_t *r = s_result(formats[f], j, st);
        odp_datastore_search_t m = {0};
        m.resource = odp_v_str(esc);
        m.records_format = odp_v_str(formats[f]);
        odp_reply_t rep;
        int dst = h_call(q, &odp_def_datastore_search, &m, &rep);
        json_t *direct = dst == 200 ? odp_json_from_msgpack(&rep.obj) : NULL;
        odp_reply_free(&rep);
        CHECK(dst == 200, "datastore.search straight to the query service: %d", dst);
        static const char *const same[] = {"records", "fields", "total", "version",
                                           "records_format"};
        for (size_t k = 0; direct && k < sizeof same / sizeof same[0]; k++)
            CHECK(json_equal(json_object_get(r, same[k]), json_object_get(direct, same[k])),
                  "%s: %s differs from the query service's", formats[f], same[k]);
        CHECK(json_array_size(json_object_get(r, "records")) == 4 ||
                  json_is_string(json_object_get(r, "records")),
              "%s: four rows", formats[f]);
        if (f == 0) {
            json_t *recs = json_object_get(r, "records");
            const char *n1 = json_string_value(json_object_get(json_array_get(recs, 0), "note"));
            const char *n2 = json_string_value(json_object_get(json_array_get(recs, 1), "note"));
            CHECK(n1 && strcmp(n1, "say \"hi\" \\ back\\slash") == 0 && n2 &&
                      strcmp(n2, "two\nlines\ttab") == 0 &&
                      json_is_true(json_object_get(json_array_get(recs, 0), "flag")) &&
                      json_is_null(json_object_get(json_array_get(recs, 3), "note")),
                  "quotes, backslashes, a newline, a tab, booleans and NULL as JSON");
        }
        json_decref(direct);
        json_decref(j);
    }
    odp_client_destroy(&q);
}

/*  The rows of a dump as a set of ids; -1 when a line is not "id,day,note". */
static int s_dump_ids(const char *body, bool header, bool seen[S_ROWS + 1])
{
    int n = 0;
    const char *p = body;
    if (header) {
        if (strncmp(p, "id,day,note\r\n", 13) != 0 && strncmp(p, "id,day,note\n", 12) != 0)
            return -1;
        p = strchr(p, '\n') + 1;
    }
    while (*p) {
        int id, m, d, k;
        if (sscanf(p, "%d,2026-%d-%d,\"第 %d 行, 含逗号\"", &id, &m, &d, &k) != 4 || id != k ||
            id < 1 || id > S_ROWS || seen[id])
            return -1;
        seen[id] = true;
        n++;
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return n;
}

static void s_dump(void)
{
    if (!s_ready)
        return;
    char path[400];
    s_http_t h;
    /*  The whole version, through the download path: every row once. */
    snprintf(path, sizeof path, "/datastore/dump/%s", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200, "dump: %d",
          h.status);
    bool seen[S_ROWS + 1] = {0};
    CHECK(s_dump_ids(h.body ? h.body : "", true, seen) == S_ROWS,
          "csv dump = the released rows: %.200s", h.body ? h.body : "");
    char v[200];
    CHECK(s_header(&h, "Content-Type", v, sizeof v) && strstr(v, "text/csv"), "csv type");
    s_http_free(&h);
    /*  Through the row path (a filter): the same rows, the same bytes per row. */
    snprintf(path, sizeof path,
             "/datastore/dump/%s-v1?format=csv&bom=true&filters=%%7B%%7D&sort=id", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200, "dump sorted: %d",
          h.status);
    bool seen2[S_ROWS + 1] = {0};
    CHECK(h.body && memcmp(h.body, "\xEF\xBB\xBF", 3) == 0 &&
              s_dump_ids(h.body + 3, true, seen2) == S_ROWS,
          "bom and the rows: %.200s", h.body ? h.body : "");
    s_http_free(&h);
    snprintf(path, sizeof path, "/datastore/dump/%s?format=json&limit=7&q=%%E8%%A1%%8C", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200, "json dump");
    json_t *j = json_loads(h.body ? h.body : "", 0, NULL);
    CHECK(json_array_size(json_object_get(j, "records")) == 7 &&
              json_array_size(json_object_get(j, "fields")) >= 3,
          "json dump with limit 7: %.200s", h.body ? h.body : "");
    json_decref(j);
    s_http_free(&h);
    snprintf(path, sizeof path, "/datastore/dump/%s?format=xml&fields=id", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200, "xml dump");
    int rows = 0;
    for (const char *p = h.body; p && (p = strstr(p, "<row>")); p++)
        rows++;
    CHECK(rows == S_ROWS && strstr(h.body, "<id>50</id>") && strstr(h.body, "</data>"),
          "xml dump: %d rows", rows);
    s_http_free(&h);
    snprintf(path, sizeof path, "/datastore/dump/%s?format=tsv&fields=id,note&limit=2", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200 &&
              strncmp(h.body, "id\tnote\r\n1\t第 1 行, 含逗号\r\n2\t", 20) == 0,
          "tsv dump: %.100s", h.body ? h.body : "");
    s_http_free(&h);
    snprintf(path, sizeof path, "/datastore/dump/%s?format=pdf", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 400, "format pdf: %d",
          h.status);
    s_http_free(&h);
    snprintf(path, sizeof path, "/datastore/dump/%s", s_cond);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 403,
          "conditional dump anonymous: %d", h.status);
    s_http_free(&h);
    CHECK(s_http(s_port, "GET", "/datastore/dump/NOPE", NULL, NULL, &h) == 0 && h.status == 404,
          "unknown dump: %d", h.status);
    s_http_free(&h);
}

static void s_users(void)
{
    if (!s_ready)
        return;
    int st;
    json_t *j = s_post("/api/3/action/user_create", NULL,
                       "{\"name\": \"web.citizen\", \"password\": \"correct horse battery\"}", &st);
    s_result("user_create", j, st);
    json_decref(j);
    j = s_post("/api/3/action/user_create", NULL,
               "{\"name\": \"web.citizen\", \"password\": \"correct horse battery\"}", &st);
    s_ckan_error("user_create again", j, st, 409, "Validation Error", "name");
    json_decref(j);
    j = s_post("/api/3/action/user_create", NULL, "{\"name\": \"x y\", \"password\": \"short\"}",
               &st);
    CHECK(st == 409, "user_create with a bad name: %d", st);
    json_decref(j);
    j = s_get("/api/3/action/user_create?name=a&password=b", &st);
    s_ckan_error("user_create by GET", j, st, 400, "Bad Request", NULL);
    json_decref(j);
    j = s_post("/api/3/action/user_login", NULL,
               "{\"name\": \"web.citizen\", \"password\": \"wrong password\"}", &st);
    s_ckan_error("wrong password", j, st, 403, "Authorization Error", NULL);
    json_decref(j);
    j = s_post("/api/3/action/user_login", NULL,
               "{\"name\": \"web.citizen\", \"password\": \"correct horse battery\"}", &st);
    json_t *r = s_result("user_login", j, st);
    char token[65] = "";
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(r, "token")) ?: "");
    json_decref(j);
    CHECK(strlen(token) == 43, "a token");
    j = s_post("/api/3/action/user_show", token, "{}", &st);
    r = s_result("user_show", j, st);
    CHECK(strcmp(json_string_value(json_object_get(r, "login")) ?: "", "web.citizen") == 0,
          "the token acts as the user");
    json_decref(j);
    j = s_post("/api/3/action/user_show", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "{}", &st);
    s_ckan_error("a forged token", j, st, 403, "Authorization Error", NULL);
    json_decref(j);
    char body[400];
    snprintf(body, sizeof body,
             "{\"resource_id\": \"%s\", \"purpose\": \"研究\", \"scope\": \"全部字段\", "
             "\"period_from\": \"2026-01-01\", \"period_to\": \"2026-12-31\"}",
             s_cond);
    j = s_post("/api/3/action/access_request_create", NULL, body, &st);
    s_ckan_error("apply anonymously", j, st, 403, "Authorization Error", NULL);
    json_decref(j);
    j = s_post("/api/3/action/access_request_create", token, body, &st);
    r = s_result("access_request_create", j, st);
    CHECK(strcmp(json_string_value(json_object_get(r, "state")) ?: "", "submitted") == 0,
          "an application, submitted");
    json_decref(j);
    j = s_post("/api/3/action/access_request_list", token, "{}", &st);
    r = s_result("access_request_list", j, st);
    CHECK(json_array_size(json_object_get(r, "items")) == 1, "one application listed");
    json_decref(j);
    char path[300];
    snprintf(path, sizeof path, "/api/3/action/access_check?id=%s", s_cond);
    j = s_get(path, &st);
    r = s_result("access_check", j, st);
    CHECK(json_is_false(json_object_get(r, "may_read")), "anonymous may not read");
    json_decref(j);
    j = s_post("/api/3/action/feedback_create", token,
               "{\"kind\": \"request\", \"text\": \"希望开放公交到站数据\"}", &st);
    r = s_result("feedback_create request", j, st);
    CHECK(json_integer_value(json_object_get(r, "id")) > 0, "a data request");
    json_decref(j);
    j = s_post("/api/3/action/feedback_create", token, "{\"kind\": \"gossip\", \"text\": \"x\"}",
               &st);
    s_ckan_error("unknown kind", j, st, 409, "Validation Error", "kind");
    json_decref(j);
    j = s_post("/api/3/action/feedback_list", token, "{}", &st);
    r = s_result("feedback_list", j, st);
    CHECK(json_array_size(json_object_get(r, "items")) == 1, "the user's feedback");
    json_decref(j);
    j = s_post("/api/3/action/user_logout", token, "{}", &st);
    s_result("user_logout", j, st);
    json_decref(j);
    j = s_post("/api/3/action/user_show", token, "{}", &st);
    s_ckan_error("after logout", j, st, 403, "Authorization Error", NULL);
    json_decref(j);
}

static void s_limits(void)
{
    if (!s_ready)
        return;
    s_http_t h;
    char v[200];
    /*  A body larger than the limit. */
    size_t big = 70000;
    char *body = malloc(big + 1);
    memset(body, 'a', big);
    body[big] = '\0';
    CHECK(s_http(s_port, "POST", "/api/3/action/package_search",
                 "Content-Type: application/json\r\n", body, &h) == 0 &&
              (h.status == 413 || h.status == 0),
          "a body over the limit: %d", h.status);
    free(body);
    s_http_free(&h);
    /*  CORS on reads; a preflight. */
    CHECK(s_http(s_port, "GET", "/api/3/action/status_show", NULL, NULL, &h) == 0 &&
              s_header(&h, "Access-Control-Allow-Origin", v, sizeof v) && strcmp(v, "*") == 0,
          "CORS on GET");
    s_http_free(&h);
    CHECK(s_http(s_port, "OPTIONS", "/api/3/action/package_search", NULL, NULL, &h) == 0 &&
              h.status == 204 && s_header(&h, "Access-Control-Allow-Methods", v, sizeof v),
          "preflight: %d", h.status);
    s_http_free(&h);
    CHECK(s_http(s_port, "POST", "/api/3/action/user_show", "Content-Type: application/json\r\n",
                 "{}", &h) == 0 &&
              !s_header(&h, "Access-Control-Allow-Origin", v, sizeof v),
          "no CORS on POST");
    s_http_free(&h);
    /*  gzip when asked for. */
    CHECK(s_http(s_port, "GET", "/api/3/action/package_search?rows=20", "Accept-Encoding: gzip\r\n",
                 NULL, &h) == 0 &&
              h.status == 200 && s_header(&h, "Content-Encoding", v, sizeof v) &&
              strcmp(v, "gzip") == 0 && h.len > 2 && (unsigned char)h.body[0] == 0x1f &&
              (unsigned char)h.body[1] == 0x8b,
          "gzip: %d", h.status);
    s_http_free(&h);
    /*  The per-client limit (1/s, burst 3 on the strict gateway): 429 with Retry-After. */
    int limited = 0;
    char retry[32] = "";
    for (int i = 0; i < 6; i++) {
        if (s_http(s_port_strict, "GET", "/api/3/action/status_show", NULL, NULL, &h) == 0 &&
            h.status == 429) {
            limited++;
            s_header(&h, "Retry-After", retry, sizeof retry);
        }
        s_http_free(&h);
    }
    CHECK(limited >= 2 && atoi(retry) >= 1, "429 with Retry-After: %d limited, retry %s", limited,
          retry);
}

static void s_portal(void)
{
    if (!s_ready)
        return;
    s_http_t h;
    char path[400], cookie[200] = "", hdr[300];
    CHECK(s_http(s_port, "GET", "/", NULL, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, "<html lang=\"zh-CN\">") && strstr(h.body, "<label for=\"q\">"),
          "home: %d", h.status);
    s_http_free(&h);
    CHECK(s_http(s_port, "GET", "/dataset?q=%E4%BC%81%E4%B8%9A%E4%BF%A1%E7%94%A8", NULL, NULL,
                 &h) == 0 &&
              h.status == 200 && strstr(h.body, s_cond) && strstr(h.body, "网关测试 企业信用明细"),
          "search in Chinese: %d", h.status);
    s_http_free(&h);
    snprintf(path, sizeof path, "/dataset/%s?page=2", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, "数据字典") && strstr(h.body, "<td>第 21 行, 含逗号</td>") &&
              !strstr(h.body, "<td>第 41 行, 含逗号</td>") && strstr(h.body, "rel=\"next\"") &&
              strstr(h.body, "/datastore/dump/"),
          "dataset page 2 of the preview: %d", h.status);
    s_http_free(&h);
    snprintf(path, sizeof path, "/organization/%s", S_DEPT);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, "网关测试 数据局"),
          "department page: %d", h.status);
    s_http_free(&h);
    /*  Sign up through the form: a session cookie, then the user's page. */
    CHECK(s_http(s_port, "POST", "/user/register",
                 "Content-Type: application/x-www-form-urlencoded\r\n",
                 "name=web.portal&password=correct+horse+battery&fullname=%E5%BC%A0%E4%B8%89",
                 &h) == 0 &&
              h.status == 303 && s_header(&h, "Set-Cookie", cookie, sizeof cookie) &&
              strstr(cookie, "HttpOnly"),
          "register: %d", h.status);
    s_http_free(&h);
    snprintf(hdr, sizeof hdr, "Cookie: %.*s\r\n", (int)strcspn(cookie, ";"), cookie);
    snprintf(path, sizeof path, "/dataset/%s", s_cond);
    CHECK(s_http(s_port, "GET", path, hdr, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, "提交申请") && !strstr(h.body, "preview-table"),
          "conditional page signed in: the form, no preview");
    s_http_free(&h);
    char form[600];
    snprintf(hdr, sizeof hdr, "Cookie: %.*s\r\nContent-Type: application/x-www-form-urlencoded\r\n",
             (int)strcspn(cookie, ";"), cookie);
    snprintf(path, sizeof path, "/dataset/%s/apply", s_cond);
    snprintf(
        form, sizeof form,
        "purpose=%%E7%%A0%%94%%E7%%A9%%B6&scope=all&period_from=2026-01-01&period_to=2026-06-30");
    CHECK(s_http(s_port, "POST", path, hdr, form, &h) == 0 && h.status == 200 &&
              strstr(h.body, "申请已提交"),
          "apply: %d %.300s", h.status, h.body ? h.body : "");
    s_http_free(&h);
    CHECK(s_http(s_port, "GET", "/user", hdr, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, s_cond) && strstr(h.body, "submitted"),
          "my applications: %d", h.status);
    s_http_free(&h);
    CHECK(s_http(s_port, "GET", "/nowhere", NULL, NULL, &h) == 0 && h.status == 404, "404 page");
    s_http_free(&h);
}

static void s_catalogue(void)
{
    if (!s_ready)
        return;
    s_http_t h;
    char v[64], path[300];
    CHECK(s_http(s_port, "GET", "/catalog.jsonld", NULL, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, s_open) && strstr(h.body, "@graph") &&
              s_header(&h, "X-Odp-Through", v, sizeof v),
          "catalog.jsonld: %d", h.status);
    s_http_free(&h);
    char next[300];
    snprintf(next, sizeof next, "/catalog.jsonld?modified_since=%s", v);
    CHECK(s_http(s_port, "GET", next, NULL, NULL, &h) == 0 && h.status == 200 &&
              !strstr(h.body, s_open),
          "modified_since the last answer: nothing changed");
    s_http_free(&h);
    CHECK(s_http(s_port, "GET", "/catalog.ttl", NULL, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, "dcat:Dataset"),
          "catalog.ttl: %d", h.status);
    s_http_free(&h);
    snprintf(path, sizeof path, "/dataset/%s.jsonld", s_open);
    CHECK(s_http(s_port, "GET", path, NULL, NULL, &h) == 0 && h.status == 200 &&
              strstr(h.body, s_open) && !strstr(h.body, s_cond),
          "one dataset's JSON-LD: %d", h.status);
    s_http_free(&h);
}

/*  A page of the catalogue as JSON-LD: the @graph, and its nodes of a type. */
static size_t s_nodes(json_t *doc, const char *type, json_t **first)
{
    size_t n = 0, i, k;
    json_t *node, *t;
    *first = NULL;
    json_array_foreach(json_object_get(doc, "@graph"), i, node)
    {
        json_array_foreach(json_object_get(node, "@type"), k, t)
        {
            if (strcmp(json_string_value(t) ?: "", type) == 0 && !n++)
                *first = node;
        }
    }
    return n;
}

/*  The value of a hydra property (a literal) of the page's PagedCollection node. */
static const char *s_hydra(json_t *doc, const char *prop)
{
    json_t *h;
    s_nodes(doc, "hydra:PagedCollection", &h);
    return json_string_value(
        json_object_get(json_array_get(json_object_get(h, prop), 0), "@value"));
}

static void s_catalogue_pages(void)
{
    if (!s_ready)
        return;
    int st;
    /*  Everything on one page, then one entry a page, following hydra:nextPage. */
    json_t *all = s_get("/catalog.jsonld?limit=1000", &st), *node;
    size_t total = s_nodes(all, "dcat:Dataset", &node);
    CHECK(st == 200 && total >= 3 &&
              strtoull(s_hydra(all, "hydra:totalItems") ?: "0", NULL, 10) >= total &&
              !s_hydra(all, "hydra:nextPage"),
          "one page of 1000: %d, %zu datasets", st, total);
    json_t *seen = json_object();
    char path[600] = "/catalog.jsonld?limit=1";
    int pages = 0;
    bool alone = true;
    while (path[0] && pages < 1000) {
        json_t *p = s_get(path, &st);
        if (st != 200)
            break;
        pages++;
        json_t *ds;
        json_t *cat;
        size_t items = s_nodes(p, "dcat:Dataset", &ds) + s_nodes(p, "dcat:DataService", &node);
        s_nodes(p, "dcat:Catalog", &cat);
        if (ds)
            json_object_set_new(seen, json_string_value(json_object_get(ds, "@id")), json_true());
        /*  Self-contained: every reference of the page's dataset is a node of the page. */
        json_t *ids = json_object();
        size_t i, k;
        json_t *n, *v;
        const char *key;
        json_array_foreach(json_object_get(p, "@graph"), i, n)
            json_object_set_new(ids, json_string_value(json_object_get(n, "@id")), json_true());
        json_object_foreach(ds, key, n)
        {
            json_array_foreach(n, k, v)
            {
                const char *ref = json_string_value(json_object_get(v, "@id"));
                if (strcmp(key, "@type") != 0 && ref && !json_object_get(ids, ref))
                    alone = false;
            }
        }
        CHECK(items == 1 && json_array_size(json_object_get(cat, "dcat:dataset")) +
                                    json_array_size(json_object_get(cat, "dcat:service")) ==
                                1,
              "page %d: one entry, the catalogue lists it alone", pages);
        json_decref(ids);
        const char *next = s_hydra(p, "hydra:nextPage");
        const char *at = next ? strstr(next, "/catalog.jsonld") : NULL;
        snprintf(path, sizeof path, "%s", at ? at : "");
        CHECK(!next || strstr(next, "limit=1"), "the next page keeps the limit: %s", next);
        json_decref(p);
    }
    CHECK(alone, "every page holds the nodes its entry refers to");
    CHECK(st == 200 && (size_t)json_object_size(seen) == total,
          "following hydra:nextPage with limit 1: %d pages, %zu datasets of %zu", pages,
          json_object_size(seen), total);
    json_decref(seen);
    json_decref(all);
    /*  Link headers, an ETag, Turtle pages. */
    s_http_t h;
    char v[2048], through[32] = "", etag[128] = "", hdr[200];
    CHECK(s_http(s_port, "GET", "/catalog.ttl?page=2&limit=1", NULL, NULL, &h) == 0 &&
              h.status == 200 &&
              strstr(h.body, "@prefix hydra: <http://www.w3.org/ns/hydra/core#>") &&
              strstr(h.body, "a hydra:PagedCollection") && strstr(h.body, "hydra:previousPage") &&
              strstr(h.body, "hydra:nextPage") && strstr(h.body, "dcat:Catalog") &&
              s_header(&h, "Link", v, sizeof v) && strstr(v, "page=1&limit=1>; rel=\"prev\"") &&
              strstr(v, "page=3&limit=1>; rel=\"next\"") && strstr(v, "rel=\"first\"") &&
              strstr(v, "rel=\"last\"") && s_header(&h, "X-Odp-Through", through, sizeof through) &&
              s_header(&h, "ETag", etag, sizeof etag),
          "catalog.ttl page 2: %d", h.status);
    {
        int datasets = 0;
        for (const char *p = h.body; p && (p = strstr(p, "a dcat:Dataset")); p++)
            datasets++;
        CHECK(datasets == 1, "catalog.ttl page 2 of 1: %d datasets", datasets);
    }
    s_http_free(&h);
    snprintf(hdr, sizeof hdr, "If-None-Match: %s\r\n", etag);
    CHECK(s_http(s_port, "GET", "/catalog.ttl?page=2&limit=1", hdr, NULL, &h) == 0 &&
              h.status == 304,
          "If-None-Match on a page: %d", h.status);
    s_http_free(&h);
    /*  modified_since rides along in the links; nothing changed since the last answer. */
    snprintf(path, sizeof path, "/catalog.jsonld?modified_since=%s", through);
    json_t *j = s_get(path, &st);
    CHECK(st == 200 && s_nodes(j, "dcat:Dataset", &node) == 0 &&
              strcmp(s_hydra(j, "hydra:totalItems") ?: "", "0") == 0 &&
              strstr(s_hydra(j, "hydra:firstPage") ?: "", "modified_since="),
          "modified_since the last answer: an empty page that says so");
    json_decref(j);
    /*  Pages that are not. */
    static const struct {
        const char *path;
        int status;
    } bad[] = {{"/catalog.jsonld?page=0", 400},
               {"/catalog.jsonld?page=x", 400},
               {"/catalog.ttl?limit=1001", 400},
               {"/catalog.jsonld?limit=0", 400},
               {"/catalog.jsonld?page=1000000&limit=1000", 404}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = s_get(bad[i].path, &st);
        CHECK(st == bad[i].status && json_is_false(json_object_get(j, "success")), "%s: %d",
              bad[i].path, st);
        json_decref(j);
    }
}

/*  Timeouts: an idle connection is closed, and a query service that does not answer is a
    503 after the call timeout, not a hung request. */
static void s_timeouts(void)
{
    if (!s_ready)
        return;
    int port = s_port + 2, silent = atoi(h_env("ODP_PORT_BASE")) + 97;
    /*  A socket that accepts and never answers: ZeroMQ connects, no reply comes. */
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)silent)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 16) == 0,
          "a silent listener on %d", silent);
    pid_t web = s_start_web_at(port, silent, "100000", "100000", "ODP_WEB_IDLE_TIMEOUT_S=1",
                               "ODP_WEB_CALL_TIMEOUT_MS=1500");
    int64_t t0 = zclock_mono();
    s_http_t h;
    char path[200];
    snprintf(path, sizeof path, "/api/3/action/datastore_search?resource_id=%s", s_open);
    CHECK(s_http(port, "GET", path, NULL, NULL, &h) == 0 && h.status == 503 &&
              strstr(h.body, "Service Unavailable"),
          "a silent query service: %d", h.status);
    int64_t took = zclock_mono() - t0;
    CHECK(took >= 1000 && took < 10000, "the 503 came after %lld ms (timeout 1500)",
          (long long)took);
    s_http_free(&h);
    /*  A connection that sends nothing is closed after the idle timeout (1 s). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in w = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    w.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CHECK(connect(fd, (struct sockaddr *)&w, sizeof w) == 0, "connect to the gateway");
    t0 = zclock_mono();
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    took = zclock_mono() - t0;
    CHECK(r == 0 && took >= 500 && took < 8000, "idle connection closed after %lld ms (recv %zd)",
          (long long)took, r);
    close(fd);
    s_stop_web(&web);
    close(ls);
}

/*  The portal in headless Chromium (tests/browser/portal.mjs, playwright-core driving
    Debian's chromium): its TAP lines are folded into this case; screenshots stay in
    <run>/screenshots. */
static void s_browser(void)
{
    if (!s_ready)
        return;
    char root[512], script[600], mods[600], out[600], base[64], log[640];
    snprintf(root, sizeof root, "%s", h_bin());
    for (int i = 0; i < 2; i++)
        *strrchr(root, '/') = '\0';
    snprintf(script, sizeof script, "%s/tests/browser/portal.mjs", root);
    snprintf(mods, sizeof mods, "%s/tests/browser/node_modules/playwright-core", root);
    if (access(mods, R_OK) != 0) {
        /*  Its one npm package, from the committed lock file, as tests/shacl does. */
        char cmd[700], npmlog[640];
        snprintf(cmd, sizeof cmd, "cd '%s/tests/browser' && npm ci --no-audit --no-fund", root);
        snprintf(npmlog, sizeof npmlog, "%s/log/npm-browser.log", h_var());
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        int rc = h_wait_exit(h_spawn(argv, NULL, npmlog, npmlog), 180000);
        CHECK(rc == 0, "npm ci in tests/browser failed (%s)", npmlog);
    }
    CHECK(access(mods, R_OK) == 0 && access("/usr/bin/chromium", X_OK) == 0,
          "the browser test needs Debian's chromium (make deps) and node with npm");
    if (h_case_failures)
        return;
    snprintf(out, sizeof out, "%s/screenshots", h_var());
    mkdir(out, 0755);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", s_port);
    snprintf(log, sizeof log, "%s/browser.tap", h_var());
    unlink(log);
    const char *argv[] = {"/usr/bin/env", "node", script, base, s_open, s_cond, out, NULL};
    pid_t pid = h_spawn(argv, NULL, log, log);
    int rc = h_wait_exit(pid, 180000);
    if (rc < 0)
        kill(pid, SIGKILL);
    FILE *f = fopen(log, "r");
    char line[600];
    int ok = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "not ok", 6) == 0 || line[0] == '#')
            printf("# %s", line);
        ok += strncmp(line, "ok ", 3) == 0;
    }
    if (f)
        fclose(f);
    CHECK(rc == 0 && ok == 6, "browser steps: %d of 6 passed, exit %d (%s)", ok, rc, log);
}

static void s_teardown(void)
{
    s_stop_web(&s_web);
    s_stop_web(&s_web_strict);
}

const h_case_t t_web_cases[] = {
    {"web: set-up (query public endpoint, open and conditional releases, two gateways)", s_setup},
    {"web: CKAN actions (params, defaults, limits, error shapes)", s_actions},
    {"web: datastore_search (filters, paging, hostile params, ETag)", s_datastore},
    {"web: datastore dump equals the released rows (csv, tsv, json, xml)", s_dump},
    {"web: users, applications, feedback through the API", s_users},
    {"web: limits (body size, CORS, gzip, 429 with Retry-After)", s_limits},
    {"web: portal pages (search, dataset, preview paging, sign-up, apply)", s_portal},
    {"web: datastore_search is the query service's rows as JSON (escapes, lists, csv)",
     s_rows_equal},
    {"web: DCAT-AP catalogue (jsonld, turtle, modified_since, one dataset)", s_catalogue},
    {"web: DCAT-AP catalogue in pages (hydra, Link, ETag, modified_since carried, bad pages)",
     s_catalogue_pages},
    {"web: timeouts (idle connection closed, a silent query service is 503)", s_timeouts},
    {"web: portal in headless Chromium (search, dataset, preview, download, sign-up, apply)",
     s_browser},
    {"web: gateways stop cleanly", s_teardown},
    {NULL, NULL},
};
