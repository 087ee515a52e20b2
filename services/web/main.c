/*  odp-web: the HTTP server. libmicrohttpd runs a thread per HTTP connection; a request
    borrows one of the kept connections to the query service for each call, so no socket
    is shared and none is set up per request. Limits a public endpoint needs are applied
    here, before any service is asked: the body size (413), a per-client token bucket (429
    with Retry-After), connections per client address, an idle connection timeout; answers
    are gzipped when the client accepts it, and read-only calls carry CORS headers.

    Keys: towards the query service the gateway is an anonymous CURVE key (ODP_WEB_CERT, or
    a key pair made at start in a private directory and removed at exit); a user's token,
    from CKAN's Authorization header or the portal's cookie, makes a call act for that
    user. The publisher's catalogue.export needs a registered key (ODP_WEB_CATALOGUE_CERT,
    else ODP_CLIENT_CERT). */
#include "web.h"

#include "common/auth.h"
#include "common/config.h"
#include "common/json.h"
#include "common/log.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <zlib.h>

static char s_anon_cert[600];  /* the gateway's own key, towards the query service */
static char s_anon_dir[512];   /* the directory made for a generated key ("" when given) */
static char s_query_ep[256];   /* the query service's public endpoint */
static int s_timeout_ms;       /* per call to a service */
static size_t s_max_body;      /* bytes */
static double s_rate, s_burst; /* per client */

/*  ---- per-client rate limit ------------------------------------------------------------- */

/*  A fixed table of buckets, one per client address: a new address takes the slot of its
    hash (the old one's bucket is forgotten only when it was full again, i.e. idle). */
#define S_BUCKETS 4096
typedef struct {
    char ip[64];
    double tokens;
    int64_t at; /* ms */
} s_bucket_t;
static s_bucket_t s_buckets[S_BUCKETS];
static pthread_mutex_t s_bucket_lock = PTHREAD_MUTEX_INITIALIZER;

/*  0 when the client may go on, else the milliseconds until it may. */
static int64_t s_rate_take(const char *ip)
{
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    int64_t now = zclock_mono(), wait = 0;
    pthread_mutex_lock(&s_bucket_lock);
    s_bucket_t *b = &s_buckets[h % S_BUCKETS];
    if (strcmp(b->ip, ip) != 0) {
        /*  A new address, or one that shares the slot: it starts with a full bucket. */
        snprintf(b->ip, sizeof b->ip, "%s", ip);
        b->tokens = s_burst;
        b->at = now;
    }
    double t = b->tokens + (double)(now - b->at) * s_rate / 1000.0;
    if (t > s_burst)
        t = s_burst;
    b->at = now;
    if (t >= 1.0)
        b->tokens = t - 1.0;
    else {
        b->tokens = t;
        wait = (int64_t)((1.0 - t) * 1000.0 / s_rate) + 1;
    }
    pthread_mutex_unlock(&s_bucket_lock);
    return wait;
}

/*  ---- services --------------------------------------------------------------------------- */

/*  Connections to a service, kept between requests: a request borrows one for a call and
    gives it back, so no request pays for a CURVE handshake and no connection thread owns
    one (a thread per HTTP connection would otherwise mean a handshake per connection).
    At most S_POOL_IDLE idle ones are kept; more are made when more calls run at once. */
#define S_POOL_IDLE 64
typedef struct {
    const char *service;
    pthread_mutex_t lock;
    odp_client_t *idle[S_POOL_IDLE];
    size_t n;
} s_pool_t;
static s_pool_t s_pool_query = {"query", PTHREAD_MUTEX_INITIALIZER, {0}, 0};
static s_pool_t s_pool_publisher = {"publisher", PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static odp_client_t *s_borrow(s_pool_t *pool)
{
    odp_client_t *c = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->n)
        c = pool->idle[--pool->n];
    pthread_mutex_unlock(&pool->lock);
    if (c)
        return c;
    char err[256] = "";
    bool query = pool == &s_pool_query;
    c = odp_client_new(pool->service, query ? s_query_ep : NULL,
                       query ? (s_anon_cert[0] ? s_anon_cert : NULL)
                             : odp_config("web", "CATALOGUE_CERT", NULL),
                       err, sizeof err);
    if (!c)
        odp_log(ODP_LOG_ERROR, "%s client: %s", pool->service, err);
    return c;
}

/*  rc: the call's; a client whose call failed is dropped (its socket may hold a late
    answer), the next borrower makes a fresh one. */
static void s_give_back(s_pool_t *pool, odp_client_t *c, int rc)
{
    if (c && rc >= 0) {
        pthread_mutex_lock(&pool->lock);
        if (pool->n < S_POOL_IDLE) {
            pool->idle[pool->n++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
    }
    odp_client_destroy(&c);
}

static void s_pool_close(s_pool_t *pool)
{
    while (pool->n)
        odp_client_destroy(&pool->idle[--pool->n]);
}

odp_client_t *w_query_client_new(void)
{
    char err[256] = "";
    odp_client_t *c =
        odp_client_new("query", s_query_ep, s_anon_cert[0] ? s_anon_cert : NULL, err, sizeof err);
    if (!c)
        odp_log(ODP_LOG_ERROR, "query client: %s", err);
    return c;
}

/*  The token rides in the body's `token` field; a message struct whose definition has one
    gets it set here, so handlers never forget it. */
static void s_set_token(w_req_t *r, const odp_msgdef_t *def, void *msg)
{
    if (!r->token[0])
        return;
    for (size_t i = 0; i < def->nfields; i++)
        if (strcmp(def->fields[i].name, "token") == 0) {
            odp_val_t *v = (odp_val_t *)((char *)msg + def->fields[i].offset);
            *v = odp_v_str(r->token);
        }
}

static int s_status(odp_client_t *c, int rc, odp_reply_t *rep)
{
    if (rc < 0) {
        odp_log(ODP_LOG_WARN, "%s", c ? odp_client_why(c) : "no service client");
        rep->status = 0;
        return 503;
    }
    return rep->status;
}

/*  One call on a borrowed client: def and msg, or a raw body (def NULL). */
static int s_pool_call(s_pool_t *pool, const odp_msgdef_t *def, const void *msg, const char *cmd,
                       const void *body, size_t size, odp_reply_t *rep)
{
    memset(rep, 0, sizeof *rep);
    odp_client_t *c = s_borrow(pool);
    int rc = !c    ? -1
             : def ? odp_client_call(c, def, msg, s_timeout_ms, rep)
                   : odp_client_call_raw(c, cmd, body, size, s_timeout_ms, rep);
    int st = s_status(c, rc, rep);
    s_give_back(pool, c, rc);
    return st;
}

int w_query(w_req_t *r, const odp_msgdef_t *def, void *msg, odp_reply_t *rep)
{
    s_set_token(r, def, msg);
    return s_pool_call(&s_pool_query, def, msg, NULL, NULL, 0, rep);
}

int w_query_raw(w_req_t *r, const char *cmd, const void *body, size_t size, odp_reply_t *rep)
{
    (void)r;
    return s_pool_call(&s_pool_query, NULL, NULL, cmd, body, size, rep);
}

int w_publisher(const odp_msgdef_t *def, void *msg, odp_reply_t *rep)
{
    return s_pool_call(&s_pool_publisher, def, msg, NULL, NULL, 0, rep);
}

int w_call(w_req_t *r, const char *cmd, json_t *body, odp_reply_t *rep)
{
    if (r->token[0])
        json_object_set_new(body, "token", json_string(r->token));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    odp_json_pack(&pk, body);
    json_decref(body);
    int st = w_query_raw(r, cmd, sb.data, sb.size, rep);
    msgpack_sbuffer_destroy(&sb);
    return st;
}

void w_base_url(const w_req_t *r, char *buf, size_t size)
{
    const char *u = odp_config("web", "URL", NULL);
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    if (u)
        snprintf(buf, size, "%s", u);
    else
        snprintf(buf, size, "http://%s",
                 host && strspn(host, "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789.-:[]") == strlen(host)
                     ? host
                     : "localhost");
}

/*  ---- answers ----------------------------------------------------------------------------- */

static void s_headers(w_req_t *r, struct MHD_Response *res, const char *extra)
{
    /*  CORS for reads only: a page elsewhere may read the open data, never act for a user. */
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) {
        MHD_add_response_header(res, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(res, "Access-Control-Expose-Headers", "ETag, Retry-After");
    }
    MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
    while (extra && *extra) {
        const char *nl = strchr(extra, '\n');
        size_t len = nl ? (size_t)(nl - extra) : strlen(extra);
        char line[2048]; /* a Link header names up to four pages */
        snprintf(line, sizeof line, "%.*s", (int)len, extra);
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            MHD_add_response_header(res, line, v);
        }
        extra = nl ? nl + 1 : extra + len;
    }
}

/*  gzip of in, or NULL. */
static char *s_gzip(const char *in, size_t len, size_t *out_len)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, len);
    char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = out ? deflate(&z, Z_FINISH) : Z_MEM_ERROR;
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

enum MHD_Result w_send(w_req_t *r, unsigned status, const char *type, const char *body, size_t len,
                       const char *extra_headers)
{
    struct MHD_Response *res;
    bool gz = r->gzip_ok && len >= 1024 && len < ((size_t)1 << 31);
    size_t zlen = 0;
    char *z = gz ? s_gzip(body, len, &zlen) : NULL;
    if (z)
        res = MHD_create_response_from_buffer(zlen, z, MHD_RESPMEM_MUST_FREE);
    else
        res = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!res)
        return MHD_NO;
    MHD_add_response_header(res, "Content-Type", type);
    if (z)
        MHD_add_response_header(res, "Content-Encoding", "gzip");
    MHD_add_response_header(res, "Vary", "Accept-Encoding");
    s_headers(r, res, extra_headers);
    enum MHD_Result rc = MHD_queue_response(r->conn, status, res);
    MHD_destroy_response(res);
    return rc;
}

enum MHD_Result w_send_stream(w_req_t *r, unsigned status, const char *type,
                              MHD_ContentReaderCallback cb, void *cls,
                              MHD_ContentReaderFreeCallback done, const char *extra_headers)
{
    struct MHD_Response *res =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, cb, cls, done);
    if (!res) {
        done(cls);
        return MHD_NO;
    }
    MHD_add_response_header(res, "Content-Type", type);
    s_headers(r, res, extra_headers);
    enum MHD_Result rc = MHD_queue_response(r->conn, status, res);
    MHD_destroy_response(res);
    return rc;
}

/*  ---- parameters -------------------------------------------------------------------------- */

const char *w_param(const w_req_t *r, const char *name)
{
    json_t *v = json_object_get(r->params, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int w_param_int(const w_req_t *r, const char *name, int64_t def, int64_t min, int64_t max,
                int64_t *out, char *err, size_t errsize)
{
    json_t *v = json_object_get(r->params, name);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    int64_t n;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_string(v) && *json_string_value(v)) {
        char *end;
        errno = 0;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (*end || errno) {
            snprintf(err, errsize, "Invalid integer");
            return -1;
        }
        n = x;
    } else {
        snprintf(err, errsize, "Invalid integer");
        return -1;
    }
    if (n < min) {
        snprintf(err, errsize, min == 0 ? "Must be a natural number" : "Must be at least %" PRId64,
                 min);
        return -1;
    }
    if (n > max) {
        snprintf(err, errsize, "Must be less than or equal to %" PRId64, max);
        return -1;
    }
    *out = n;
    return 0;
}

static int s_hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*  Decode %XX and + in place; returns the new length. */
static size_t s_urldecode(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+')
            s[o++] = ' ';
        else if (s[i] == '%' && i + 2 < len + 0 && s_hex(s[i + 1]) >= 0 && s_hex(s[i + 2]) >= 0) {
            s[o++] = (char)(s_hex(s[i + 1]) * 16 + s_hex(s[i + 2]));
            i += 2;
        } else
            s[o++] = s[i];
    }
    return o;
}

void w_form_parse(json_t *obj, const char *s, size_t len)
{
    char *copy = strndup(s, len);
    char *save = NULL;
    for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        char *val = eq ? eq + 1 : kv + strlen(kv);
        if (eq)
            *eq = '\0';
        size_t kl = s_urldecode(kv, strlen(kv));
        kv[kl] = '\0';
        size_t vl = s_urldecode(val, strlen(val));
        /*  Text that is not UTF-8 cannot be a JSON string: such a parameter is dropped and
            the action then names it as missing. */
        json_t *v = json_stringn(val, vl);
        if (v && kl)
            json_object_set_new(obj, kv, v);
        else
            json_decref(v);
    }
    free(copy);
}

static enum MHD_Result s_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_t *v = value ? json_string(value) : json_string("");
    if (v && key)
        json_object_set_new(cls, key, v);
    else
        json_decref(v);
    return MHD_YES;
}

void w_str(const msgpack_object *map, const char *key, char *buf, size_t size)
{
    const msgpack_object *v = map ? odp_map_get(map, key) : NULL;
    buf[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(buf, size, "%.*s", (int)v->via.str.size, v->via.str.ptr);
}

int64_t w_int(const msgpack_object *map, const char *key, int64_t def)
{
    const msgpack_object *v = map ? odp_map_get(map, key) : NULL;
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)v->via.u64;
    if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    return def;
}

void w_resource_id(const char *id, char *resource, size_t size, int64_t *version)
{
    *version = 0;
    snprintf(resource, size, "%s", id);
    char *v = strstr(resource, "-v");
    while (v && strstr(v + 2, "-v"))
        v = strstr(v + 2, "-v");
    if (v && v[2] >= '1' && v[2] <= '9' && strspn(v + 2, "0123456789") == strlen(v + 2)) {
        *version = strtoll(v + 2, NULL, 10);
        *v = '\0';
    }
}

void w_bprintf(odp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof tmp) {
        odp_buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    odp_buf_append(b, big, (size_t)n);
    free(big);
}

void w_json_str(odp_buf_t *b, const char *s, size_t n)
{
    if (!odp_utf8_valid(s, n)) {
        odp_buf_append(b, "\"\xef\xbf\xbd\"", 5);
        return;
    }
    odp_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes that go out as they are, not yet appended */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        odp_buf_append(b, s + i - run, run);
        run = 0;
        static const char esc[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
                                   ['\t'] = 't', ['"'] = '"',  ['\\'] = '\\'};
        if (c < sizeof esc && esc[c]) {
            char e[2] = {'\\', esc[c]};
            odp_buf_append(b, e, 2);
        } else
            w_bprintf(b, "\\u%04X", c);
    }
    odp_buf_append(b, s + n - run, run);
    odp_buf_append(b, "\"", 1);
}

/*  A double as jansson writes it: 17 significant digits, always a '.' or an exponent, the
    exponent without '+' or leading zeros. JSON has no NaN or infinity: those are null. */
static void s_json_real(odp_buf_t *b, double d)
{
    if (!isfinite(d)) {
        odp_buf_append(b, "null", 4);
        return;
    }
    char t[48];
    int n = snprintf(t, sizeof t - 2, "%.17g", d);
    if (!strchr(t, '.') && !strchr(t, 'e')) {
        memcpy(t + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(t, 'e');
    if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            from++, to++;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(t);
    }
    odp_buf_append(b, t, (size_t)n);
}

void w_json_msgpack(odp_buf_t *b, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        odp_buf_append(b, "null", 4);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        odp_buf_append(b, o->via.boolean ? "true" : "false", o->via.boolean ? 4 : 5);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /*  jansson's integers are signed 64-bit: a larger one wraps there too. */
        w_bprintf(b, "%" PRId64, (int64_t)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        w_bprintf(b, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        s_json_real(b, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        w_json_str(b, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        odp_buf_append(b, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                odp_buf_append(b, ",", 1);
            w_json_msgpack(b, &o->via.array.ptr[i]);
        }
        odp_buf_append(b, "]", 1);
        break;
    case MSGPACK_OBJECT_MAP:
        odp_buf_append(b, "{", 1);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i)
                odp_buf_append(b, ",", 1);
            if (k->type == MSGPACK_OBJECT_STR)
                w_json_str(b, k->via.str.ptr, k->via.str.size);
            else {
                /*  A key that is not text is named by its JSON text. */
                odp_buf_t *kb = odp_buf_new();
                w_json_msgpack(kb, k);
                w_json_str(b, odp_buf_data(kb), odp_buf_size(kb));
                odp_buf_destroy(&kb);
            }
            odp_buf_append(b, ":", 1);
            w_json_msgpack(b, &o->via.map.ptr[i].val);
        }
        odp_buf_append(b, "}", 1);
        break;
    default: {
        /*  bin and ext as odp_json_from_msgpack shows them. */
        json_t *j = odp_json_from_msgpack(o);
        char *t = json_dumps(j, JSON_COMPACT);
        if (t)
            odp_buf_append(b, t, strlen(t));
        free(t);
        json_decref(j);
    }
    }
}

void w_html(odp_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            odp_buf_append(b, "&lt;", 4);
            break;
        case '>':
            odp_buf_append(b, "&gt;", 4);
            break;
        case '&':
            odp_buf_append(b, "&amp;", 5);
            break;
        case '"':
            odp_buf_append(b, "&quot;", 6);
            break;
        case '\'':
            odp_buf_append(b, "&#39;", 5);
            break;
        default:
            odp_buf_append(b, s, 1);
        }
    }
}

void w_urlenc(odp_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c))
            odp_buf_append(b, s, 1);
        else
            w_bprintf(b, "%%%02X", c);
    }
}

/*  ---- the request cycle ------------------------------------------------------------------- */

/*  The token: CKAN's Authorization header (the token itself, or "Bearer <token>"), else the
    portal's cookie. */
static void s_token(w_req_t *r)
{
    const char *a = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0)
        a += 7;
    if (a && *a) {
        snprintf(r->token, sizeof r->token, "%s", a);
        return;
    }
    const char *c = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "odp_token");
    if (c && *c) {
        snprintf(r->token, sizeof r->token, "%s", c);
        r->token_cookie = true;
    }
}

static enum MHD_Result s_body_params(w_req_t *r)
{
    const char *type = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    size_t len = odp_buf_size(r->upload);
    if (!len)
        return MHD_YES;
    if (type && strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0) {
        w_form_parse(r->params, odp_buf_data(r->upload), len);
        return MHD_YES;
    }
    json_error_t jerr;
    json_t *body = json_loadb(odp_buf_data(r->upload), len, 0, &jerr);
    if (!json_is_object(body)) {
        char msg[300];
        snprintf(msg, sizeof msg, "Bad request - JSON Error: %s",
                 body ? "the body is not a JSON object" : jerr.text);
        json_decref(body);
        return MHD_NO;
    }
    json_object_update(r->params, body);
    json_decref(body);
    return MHD_YES;
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    w_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->upload = odp_buf_new();
        r->params = json_object();
        *con_cls = r;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr ||
            getnameinfo(ci->client_addr,
                        ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                               : sizeof(struct sockaddr_in),
                        r->ip, sizeof r->ip, NULL, 0, NI_NUMERICHOST) != 0)
            snprintf(r->ip, sizeof r->ip, "unknown");
        return MHD_YES;
    }
    if (*data_size) {
        if (odp_buf_size(r->upload) + *data_size > s_max_body)
            r->too_large = true;
        else
            odp_buf_append(r->upload, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
    r->gzip_ok = ae && strstr(ae, "gzip");
    r->if_none = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    if (strcmp(method, "OPTIONS") == 0) {
        /*  A CORS preflight: reads only, no credentials. */
        return w_send(r, 204, "text/plain", "", 0,
                      "Access-Control-Allow-Origin: *\nAccess-Control-Allow-Methods: GET\n"
                      "Access-Control-Allow-Headers: Content-Type\nAccess-Control-Max-Age: 86400");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "HEAD") != 0)
        return w_ckan_error(r, 405, "Bad Request", NULL, "Bad request - method not allowed");
    if (r->too_large) {
        char msg[120];
        snprintf(msg, sizeof msg, "Bad request - the body is larger than %zu bytes", s_max_body);
        return w_ckan_error(r, 413, "Bad Request", NULL, msg);
    }
    int64_t wait = s_rate_take(r->ip);
    if (wait) {
        char hdr[64], msg[120];
        snprintf(hdr, sizeof hdr, "Retry-After: %" PRId64, (wait + 999) / 1000);
        snprintf(msg, sizeof msg, "Too many requests: retry after %" PRId64 " ms", wait);
        json_t *j = json_pack("{s:s,s:b,s:{s:s,s:s}}", "help", "", "success", 0, "error", "__type",
                              "Rate Limit", "message", msg);
        char *s = json_dumps(j, JSON_COMPACT);
        enum MHD_Result rc = w_send(r, 429, "application/json;charset=utf-8", s, strlen(s), hdr);
        free(s);
        json_decref(j);
        return rc;
    }
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_arg, r->params);
    s_token(r);
    bool api = strncmp(url, "/api/", 5) == 0;
    if (strcmp(method, "POST") == 0 && s_body_params(r) == MHD_NO) {
        if (api)
            return w_ckan_error(r, 400, "Bad Request", NULL,
                                "Bad request - JSON Error: the body is not a JSON object");
        return w_send(r, 400, "text/plain;charset=utf-8", "bad request\n", 12, NULL);
    }
    if (api)
        return w_api(r);
    if (strncmp(url, "/datastore/dump/", 16) == 0)
        return w_dump(r);
    size_t ul = strlen(url);
    if (strcmp(url, "/catalog.jsonld") == 0 || strcmp(url, "/catalog.ttl") == 0)
        return w_catalog_page(r);
    if (strncmp(url, "/dataset/", 9) == 0 && ul > 16 && strcmp(url + ul - 7, ".jsonld") == 0)
        return w_catalogue(r);
    return w_portal(r);
}

static void s_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                   enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    w_req_t *r = *con_cls;
    if (!r)
        return;
    odp_buf_destroy(&r->upload);
    json_decref(r->params);
    free(r);
    *con_cls = NULL;
}

static volatile sig_atomic_t s_stop = 0;
static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int s_keys(void)
{
    const char *given = odp_config("web", "CERT", NULL);
    if (given) {
        snprintf(s_anon_cert, sizeof s_anon_cert, "%s", given);
        return 0;
    }
    if (!odp_config_secure())
        return 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(s_anon_dir, sizeof s_anon_dir, "%s/odp-web.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s_anon_dir)) {
        odp_log(ODP_LOG_ERROR, "cannot make a directory for the gateway's key: %s",
                strerror(errno));
        return -1;
    }
    char base[560], key[41];
    snprintf(base, sizeof base, "%s/web", s_anon_dir);
    snprintf(s_anon_cert, sizeof s_anon_cert, "%s_secret", base);
    return odp_auth_keygen("user", "web", "odp-web", base, key);
}

static void s_keys_remove(void)
{
    if (!s_anon_dir[0])
        return;
    char p[640];
    snprintf(p, sizeof p, "%s/web", s_anon_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/web_secret", s_anon_dir);
    unlink(p);
    rmdir(s_anon_dir);
}

int main(void)
{
    odp_log_init("web");
    zsys_init();
    zsys_set_logstream(stderr);
    int64_t base = odp_config_int(NULL, "PORT_BASE", 7500);
    int64_t port = odp_config_int("web", "PORT", base + 80);
    s_timeout_ms = (int)odp_config_int("web", "CALL_TIMEOUT_MS", 10000);
    s_max_body = (size_t)odp_config_int("web", "MAX_BODY", 1 << 20);
    s_rate = (double)odp_config_int("web", "RATE_PER_S", 20);
    s_burst = (double)odp_config_int("web", "RATE_BURST", 60);
    if (s_rate < 1)
        s_rate = 1;
    if (s_burst < 1)
        s_burst = 1;
    const char *ep = odp_config("query", "PUBLIC_ENDPOINT", NULL);
    if (ep)
        snprintf(s_query_ep, sizeof s_query_ep, "%s", ep);
    else
        snprintf(s_query_ep, sizeof s_query_ep, "tcp://127.0.0.1:%" PRId64, base + 33);
    if (s_keys() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    /*  A thread per connection: a request blocks its thread while the service answers,
        and a pool thread would hold up every other connection it happened to accept (the
        pool spreads connections by who accepts first, not by load). Connections are
        bounded in number, per client address and in idle time. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, s_handle, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)odp_config_int("web", "IDLE_TIMEOUT_S", 30), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)odp_config_int("web", "MAX_CONNECTIONS", 1000),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)odp_config_int("web", "MAX_CONNECTIONS_PER_CLIENT", 100),
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1 << 20), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(64 * 1024), MHD_OPTION_NOTIFY_COMPLETED, s_done, NULL, MHD_OPTION_END);
    if (!d) {
        odp_log(ODP_LOG_ERROR, "cannot listen on port %" PRId64 ": %s", port, strerror(errno));
        s_keys_remove();
        return 1;
    }
    odp_log(ODP_LOG_INFO, "listening on port %" PRId64 ", query at %s", port, s_query_ep);
    while (!s_stop)
        pause();
    MHD_stop_daemon(d);
    s_pool_close(&s_pool_query);
    s_pool_close(&s_pool_publisher);
    s_keys_remove();
    odp_log(ODP_LOG_INFO, "stopped");
    return 0;
}
