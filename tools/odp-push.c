/*  odp-push: the provider department's command line.

    A department plans and catalogues its resources, describes their tables with data
    dictionaries, asks operations to register them, and pushes their data. Options are the
    protocol's own fields (common/cli.h), so `odp-push plan --due-on 2026-12-31` sends
    plan.add with due_on, checked against proto/odp_proto.h before anything is sent.

    Pushing streams the file, it never loads it: a first pass hashes it (SHA-256, which
    names the content for duplicate detection and resume), then push.begin, then chunks
    under the registrar's credit (zguide "fileio3"): at most `credit` push.chunk requests
    in flight on one DEALER, one more sent for each ack, so memory is credit x chunk_size on
    both sides whatever the file's size, and the link stays busy while the registrar
    parses. Acks come back in order. When the registrar goes away (no ack within the
    timeout, the connection drops, or it says BAD_OFFSET), the socket is thrown away - a
    late reply must not be taken for a new one - and after a backoff push.begin is asked
    again with the same hash: it answers with the offset the registrar had committed, and
    the stream goes on from there. Nothing is sent twice into the data: the registrar
    resumes its loader at a row boundary.

    Exit status: 0 done, 1 refused by the service, 2 usage, 3 no answer (after retries). */
#include "common/auth.h"
#include "common/cli.h"
#include "common/sha256.h"
#include "common/client.h"
#include "common/codelist.h"
#include "common/config.h"
#include "common/parse.h"
#include "common/json.h"

#include <errno.h>
#include <iconv.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_PROG        "odp-push"
#define S_MAX_CREDIT  64
#define S_BACKOFF_MIN 200
#define S_BACKOFF_MAX 5000

static bool s_json = false;
static int s_timeout_ms = 10000;
static const char *s_cert = NULL;

typedef union {
#define S_MEMBER(ident, cmd) odp_##ident##_t ident;
    ODP_REQUESTS(S_MEMBER)
#undef S_MEMBER
} s_any_request_t;

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: odp-push [--json] [--cert FILE] [--timeout-ms N] COMMAND ...\n"
            "\n"
            "  plan --title T --open-type X --update-cycle Y --due-on YYYY-MM-DD --maintainer M\n"
            "       [--summary S] [--domain D] [--content-kind K] [--department C]\n"
            "  plans [--department C] [--overdue true]\n"
            "  catalog --title T --summary S --keywords a,b,c --domain D --content-kind K\n"
            "          --delivery-form F --open-type O --update-cycle U --contact C --location L\n"
            "          [--plan N] [--released-on D] [--updated-on D] [--department C]\n"
            "          [--dict FILE.dict.json [--table NAME]]\n"
            "          prints the new resource code; --dict also sends the dictionary (title\n"
            "          and domain default to the dictionary file's)\n"
            "  dict --resource R --file FILE.dict.json [--table NAME]\n"
            "  register --resource R             ask operations to register the entry\n"
            "  catalog-get --resource R | catalog-list [--department C] [--status S]\n"
            "  rules                             the transfer rules in force\n"
            "  push --resource R FILE [--table NAME] [--format csv|jsonl|file]\n"
            "       [--encoding utf8|gb18030] [--media-type T] [--retries N]\n"
            "                                    resumes by itself if the registrar goes away\n"
            "  status --upload N\n"
            "  versions --resource R [--table T]\n"
            "  rejects --resource R --version V [--table T] [--limit N]\n"
            "  findings [UPLOAD] [--limit N]    the reviewer's findings on your versions (all,\n"
            "                                    or one upload) and a rejection's reason\n"
            "\n"
            "--cert is your department's secret certificate (default ODP_CLIENT_CERT);\n"
            "ODP_SERVER_CERT, ODP_REGISTRAR_ENDPOINT and (findings) ODP_REVIEWER_ENDPOINT come "
            "from the\n"
            "environment.\n"
            "Exit status: 0 done, 1 refused (code printed), 2 usage, 3 no answer.\n");
}

static bool s_code_is(const odp_reply_t *rep, const char *code)
{
    return odp_v_eq(&rep->err.code, code);
}

/*  One request on a fresh client; the reply stays in *rep for the caller (who frees it)
    when 0 comes back. Otherwise the outcome is already told: 1 refused, 2 the client
    cannot be set up (certificates, endpoint), 3 no answer. */
static int s_request_to(const char *service, const odp_msgdef_t *def, const void *msg,
                        odp_reply_t *rep)
{
    char err[256] = "";
    odp_client_t *c = odp_client_new(service, NULL, s_cert, err, sizeof err);
    if (!c) {
        fprintf(stderr, S_PROG ": %s\n", err[0] ? err : "cannot create client");
        return 2;
    }
    int rc = 0;
    if (odp_client_call(c, def, msg, s_timeout_ms, rep) < 0) {
        fprintf(stderr, S_PROG ": %s\n", odp_client_why(c));
        rc = 3;
    } else if (rep->status != 200) {
        rc = odp_cli_refused(S_PROG, service, rep, s_json);
    }
    if (rc)
        odp_reply_free(rep);
    odp_client_destroy(&c);
    return rc;
}

static int s_request(const odp_msgdef_t *def, const void *msg, odp_reply_t *rep)
{
    return s_request_to("registrar", def, msg, rep);
}

static int s_call_print(const odp_msgdef_t *def, const void *msg)
{
    odp_reply_t rep;
    int rc = s_request(def, msg, &rep);
    if (rc == 0) {
        odp_cli_print(&rep.obj, s_json);
        odp_reply_free(&rep);
    }
    return rc;
}

/*  ---------------------------------------------------------------------------------------
    Data dictionaries. A *.dict.json file is {name, title, domain, fields: [...]}, each
    field as rec_dict_field declares it except that the list of allowed values is called
    "enum" there. The fields travel as one packed msgpack array; each is checked against
    the declaration here, so a mistake in the file is named with its field number before
    anything is created.                                                                  */

typedef struct {
    json_t *root;
    const char *title;
    const char *domain;
    msgpack_sbuffer fields;
    size_t nfields;
} s_dict_t;

static void s_dict_free(s_dict_t *d)
{
    json_decref(d->root);
    msgpack_sbuffer_destroy(&d->fields);
    memset(d, 0, sizeof *d);
}

static int s_dict_load(const char *path, s_dict_t *d)
{
    memset(d, 0, sizeof *d);
    msgpack_sbuffer_init(&d->fields);
    json_error_t je;
    d->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!d->root) {
        fprintf(stderr, S_PROG ": %s:%d: %s\n", path, je.line, je.text);
        return -1;
    }
    json_t *fields = json_object_get(d->root, "fields");
    if (!json_is_object(d->root) || !json_is_array(fields) || json_array_size(fields) == 0) {
        fprintf(stderr, S_PROG ": %s: expected an object with a non-empty \"fields\" list\n", path);
        return -1;
    }
    d->title = json_string_value(json_object_get(d->root, "title"));
    d->domain = json_string_value(json_object_get(d->root, "domain"));
    msgpack_packer pk;
    msgpack_packer_init(&pk, &d->fields, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, json_array_size(fields));
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        size_t start = d->fields.size;
        if (!json_is_object(f) || odp_json_pack_renamed(&pk, f, "enum", "allowed") < 0) {
            fprintf(stderr, S_PROG ": %s: field %zu is not an object\n", path, i + 1);
            return -1;
        }
        msgpack_zone zone;
        msgpack_zone_init(&zone, 1024);
        msgpack_object obj;
        odp_rec_dict_field_t rec;
        odp_error_t e;
        int rc = odp_body_unpack(d->fields.data + start, d->fields.size - start, &zone, &obj, &e);
        if (rc == 0)
            rc = odp_decode_fields(&odp_def_rec_dict_field, &obj, &rec, &e);
        msgpack_zone_destroy(&zone);
        if (rc < 0) {
            const char *name = json_string_value(json_object_get(f, "name"));
            fprintf(stderr, S_PROG ": %s: field %zu%s%s%s: %s%s\n", path, i + 1, name ? " (" : "",
                    name ? name : "", name ? ")" : "", e.message,
                    strcmp(e.field, "allowed") == 0 ? " (the file's \"enum\")" : "");
            return -1;
        }
    }
    d->nfields = json_array_size(fields);
    return 0;
}

/*  dictionary.set for resource; the reply is printed (stderr when stdout carries only
    the resource code). */
static int s_dict_send(const char *resource, const char *table, const s_dict_t *d,
                       bool quiet_stdout)
{
    odp_dictionary_set_t m = {0};
    m.resource = odp_v_str(resource);
    m.table = odp_v_str(table);
    m.fields = odp_v_raw(d->fields.data, d->fields.size);
    odp_reply_t rep;
    int rc = s_request(&odp_def_dictionary_set, &m, &rep);
    if (rc)
        return rc;
    if (quiet_stdout && !s_json) {
        const msgpack_object *t = odp_map_get(&rep.obj, "table");
        fprintf(stderr, S_PROG ": dictionary of %zu fields set for %s table %.*s\n", d->nfields,
                resource, t && t->type == MSGPACK_OBJECT_STR ? (int)t->via.str.size : 1,
                t && t->type == MSGPACK_OBJECT_STR ? t->via.str.ptr : "?");
    } else {
        odp_cli_print(&rep.obj, s_json);
    }
    odp_reply_free(&rep);
    return 0;
}

static int s_catalog(int argc, char **argv)
{
    odp_catalog_add_t m = {0};
    const char *dict_path = NULL, *table = NULL;
    const odp_cli_opt_t extra[] = {{"dict", &dict_path}, {"table", &table}, {NULL, NULL}};
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    s_dict_t dict = {0};
    msgpack_sbuffer_init(&dict.fields);
    int rc = 2;
    if (odp_cli_fill(S_PROG, &odp_def_catalog_add, &m, argc, argv, extra, &zone) < 0)
        goto done;
    if (table && !dict_path) {
        fprintf(stderr, S_PROG ": --table goes with --dict\n");
        goto done;
    }
    if (dict_path) {
        msgpack_sbuffer_destroy(&dict.fields);
        if (s_dict_load(dict_path, &dict) < 0)
            goto done;
        if (!m.domain.present)
            m.domain = odp_v_str(dict.domain);
        if (!m.title.present)
            m.title = odp_v_str(dict.title);
    }
    if (odp_cli_required(S_PROG, &odp_def_catalog_add, &m) < 0)
        goto done;
    odp_reply_t rep;
    rc = s_request(&odp_def_catalog_add, &m, &rep);
    if (rc)
        goto done;
    char resource[33] = "";
    const msgpack_object *r = odp_map_get(&rep.obj, "resource");
    if (r && r->type == MSGPACK_OBJECT_STR && r->via.str.size < sizeof resource)
        memcpy(resource, r->via.str.ptr, r->via.str.size);
    if (s_json)
        odp_cli_print(&rep.obj, true);
    else
        printf("%s\n", resource);
    fflush(stdout);
    odp_reply_free(&rep);
    if (!resource[0]) {
        fprintf(stderr, S_PROG ": catalog.add answered without a resource code\n");
        rc = 1;
    } else if (dict_path) {
        rc = s_dict_send(resource, table, &dict, true);
    }
done:
    s_dict_free(&dict);
    msgpack_zone_destroy(&zone);
    return rc;
}

static int s_dict(int argc, char **argv)
{
    odp_dictionary_set_t m = {0};
    const char *path = NULL;
    const odp_cli_opt_t extra[] = {{"file", &path}, {NULL, NULL}};
    if (odp_cli_fill(S_PROG, &odp_def_dictionary_set, &m, argc, argv, extra, NULL) < 0)
        return 2;
    if (!path || !m.resource.present) {
        fprintf(stderr, S_PROG ": dict needs --resource and --file\n");
        return 2;
    }
    s_dict_t dict;
    if (s_dict_load(path, &dict) < 0) {
        s_dict_free(&dict);
        return 2;
    }
    char resource[33], table[64];
    int rc = s_dict_send(odp_v_cstr(&m.resource, resource, sizeof resource),
                         m.table.present ? odp_v_cstr(&m.table, table, sizeof table) : NULL, &dict,
                         false);
    s_dict_free(&dict);
    return rc;
}

/*  ---------------------------------------------------------------------------------------
    Pushing.                                                                              */

typedef enum { S_OK, S_LOST, S_REFUSED } s_outcome_t;

typedef enum { S_TEXT_ASCII, S_TEXT_UTF8, S_TEXT_GB18030, S_TEXT_OTHER } s_text_t;

typedef struct {
    char resource[33];
    char table[64];
    char sha256[65];
    char kind[17];
    char staging[128];
    int64_t version;
    int64_t upload; /* 0: none (a duplicate) */
    int64_t size;
    int64_t rows_received;
    int64_t rows_staged;
    int64_t rows_rejected;
    bool has_rows;
    bool duplicate;
} s_summary_t;

typedef struct {
    /*  what to push */
    const char *path;
    int fd;
    odp_push_begin_t begin;
    char resource[33];
    char table[64];
    char sha256[65];
    int64_t size;
    int retries;
    /*  the connection: a DEALER, a watch that tells when it drops or cannot work, a
        poller on both */
    char endpoint[256];
    zsock_t *sock;
    odp_watch_t *watch;
    zpoller_t *poller;
    msgpack_sbuffer out;
    /*  the upload */
    int64_t upload;
    int64_t chunk_size;
    int credit;
    char *buf;
    int64_t acked; /* the registrar has everything before this offset */
    int64_t ends[S_MAX_CREDIT];
    int inflight;
    int head;
    int64_t rows;
    /*  progress */
    bool tty;
    bool dataset;     /* rows to count (csv, jsonl), or a file's bytes */
    s_text_t text;    /* what the file's first bytes are (datasets) */
    char header[256]; /* its first line as UTF-8, when it reads as GB18030 */
    int64_t t0;
    int64_t offset0;
    int64_t last_shown;
    /*  why it stopped, when refused: the reply, or a sentence */
    odp_reply_t refusal;
    bool has_refusal;
    char problem[1024];
    bool hopeless; /* the connection cannot come up: retrying is pointless */
} s_push_t;

/*  Media types of the files departments publish (R8.3c), by extension. */
static const char *s_media_type(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {"pdf", "application/pdf"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"7z", "application/x-7z-compressed"},
        {"rar", "application/vnd.rar"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"tif", "image/tiff"},
        {"tiff", "image/tiff"},
        {"svg", "image/svg+xml"},
        {"mp3", "audio/mpeg"},
        {"wav", "audio/wav"},
        {"mp4", "video/mp4"},
        {"avi", "video/x-msvideo"},
        {"doc", "application/msword"},
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"xls", "application/vnd.ms-excel"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"ppt", "application/vnd.ms-powerpoint"},
        {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
        {"ofd", "application/ofd"},
        {"txt", "text/plain"},
        {"csv", "text/csv"},
        {"json", "application/json"},
        {"xml", "application/xml"},
        {"html", "text/html"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static const char *s_format_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/')) {
        if (strcasecmp(dot, ".csv") == 0)
            return "csv";
        if (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".ndjson") == 0)
            return "jsonl";
    }
    return "file";
}

/*  The first pass: size and SHA-256, reading in pieces. */
static int s_hash_file(int fd, char *hex, int64_t *size)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return -1;
    int64_t total = 0;
    for (;;) {
        if (zsys_interrupted) {
            free(buf);
            errno = EINTR;
            return -1;
        }
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        odp_sha256_update(&st, buf, (size_t)n);
        total += n;
    }
    free(buf);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
    *size = total;
    return 0;
}

/*  Does in (n bytes) convert from GB18030 without an invalid sequence? A character cut
    by the end of a sample (whole false) counts as valid. The first line, converted, goes
    to header when it is not NULL. */
static bool s_gb18030_valid(const char *in, size_t n, bool whole, char *header, size_t hsize)
{
    iconv_t cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t)-1)
        return false;
    char out[65536];
    char *ip = (char *)in;
    size_t left = n;
    bool ok = true, first = true;
    while (left > 0) {
        char *op = out;
        size_t room = sizeof out;
        size_t r = iconv(cd, &ip, &left, &op, &room);
        if (first && header) {
            size_t len = (size_t)(op - out);
            const char *nl = memchr(out, '\n', len);
            len = nl ? (size_t)(nl - out) : len;
            while (len > 0 && (out[len - 1] == '\r' || len >= hsize))
                len = len >= hsize ? hsize - 1 : len - 1;
            /*  Cut at a character boundary. */
            while (len > 0 && !odp_utf8_valid(out, len))
                len--;
            memcpy(header, out, len);
            header[len] = '\0';
            first = false;
        }
        if (r == (size_t)-1 && errno == E2BIG)
            continue;
        if (r == (size_t)-1)
            ok = errno == EINVAL && !whole;
        break;
    }
    iconv_close(cd);
    return ok;
}

static bool s_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/*  What a dataset file's first 4 MiB are: ASCII (fits either), strict UTF-8, else
    GB18030 (every sequence converts), else neither. A file pushed in the wrong one gives a
   mismatched header and rows rejected for their bytes, so the tool looks before it sends. */
static s_text_t s_sniff(int fd, int64_t size, char *header, size_t hsize)
{
    size_t cap = 4 << 20;
    if (size < (int64_t)cap)
        cap = (size_t)size;
    header[0] = '\0';
    char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return S_TEXT_OTHER;
    size_t n = 0;
    while (n < cap) {
        ssize_t r = pread(fd, buf + n, cap - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    bool whole = (int64_t)n == size;
    s_text_t text = S_TEXT_OTHER;
    size_t bad = 0, off = odp_utf8_scan(buf, n, &bad);
    if (memchr(buf, '\0', n))
        text = S_TEXT_OTHER; /* binary: no text encoding fits */
    else if (off == n || (!whole && off + bad == n && n - off < 4))
        text = s_ascii(buf, n) ? S_TEXT_ASCII : S_TEXT_UTF8;
    else if (s_gb18030_valid(buf, n, whole, header, hsize))
        text = S_TEXT_GB18030;
    free(buf);
    return text;
}

static void s_human_bytes(int64_t n, char *buf, size_t size)
{
    if (n >= 1 << 30)
        snprintf(buf, size, "%.2f GiB", (double)n / (1 << 30));
    else if (n >= 1 << 20)
        snprintf(buf, size, "%.1f MiB", (double)n / (1 << 20));
    else if (n >= 1 << 10)
        snprintf(buf, size, "%.1f KiB", (double)n / (1 << 10));
    else
        snprintf(buf, size, "%lld B", (long long)n);
}

/*  Progress: rows/s counts this process's work only, so a resumed push is not credited
    with rows an earlier run sent (rows per byte times this run's byte rate). */
static void s_progress(s_push_t *self, bool last)
{
    if (!s_json && !self->tty)
        return;
    int64_t now = zclock_mono();
    if (!last && now - self->last_shown < (s_json ? 250 : 100))
        return;
    self->last_shown = now;
    double secs = (double)(now - self->t0) / 1000.0;
    double byte_rate = secs > 0 ? (double)(self->acked - self->offset0) / secs : 0;
    double rows_per_s =
        self->acked > 0 ? (double)self->rows / (double)self->acked * byte_rate : 0.0;
    if (s_json) {
        odp_json_print(json_pack("{s:s,s:I,s:I,s:I,s:I}", "event", "progress", "bytes",
                                 (json_int_t)self->acked, "total", (json_int_t)self->size, "rows",
                                 (json_int_t)self->rows, "rows_per_s",
                                 (json_int_t)(rows_per_s + 0.5)));
        fflush(stdout);
        return;
    }
    int pct = self->size > 0 ? (int)(self->acked * 100 / self->size) : 100;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    char done[32], total[32], eta[32] = "--:--";
    s_human_bytes(self->acked, done, sizeof done);
    s_human_bytes(self->size, total, sizeof total);
    if (byte_rate > 0) {
        long left = (long)((double)(self->size - self->acked) / byte_rate + 0.5);
        snprintf(eta, sizeof eta, "%ld:%02ld", left / 60, left % 60);
    }
    char rate[32];
    if (self->dataset)
        snprintf(rate, sizeof rate, "%.0f rows/s", rows_per_s);
    else
        snprintf(rate, sizeof rate, "%.1f MiB/s", byte_rate / (1 << 20));
    fprintf(stderr, "\r[%s] %3d%%  %s / %s  %s  ETA %s\033[K", bar, pct, done, total, rate, eta);
    if (last)
        fputc('\n', stderr);
    fflush(stderr);
}

static void s_disconnect(s_push_t *self)
{
    zpoller_destroy(&self->poller);
    /*  The watch stops monitoring the socket on destroy, so it goes first. */
    odp_watch_destroy(&self->watch);
    zsock_destroy(&self->sock);
    self->inflight = 0;
    self->head = 0;
}

/*  A new DEALER. The watch reports the connection dropping (the registrar killed or
    restarted) at once, so a push does not sit out the whole timeout for acks that can
    no longer come, and says why a connection never came up. 0, or -1 when the
    certificates or the endpoint cannot be used (a usage error). */
static int s_connect(s_push_t *self)
{
    char err[256] = "";
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) {
        snprintf(self->problem, sizeof self->problem, "cannot create a socket");
        return -1;
    }
    zsock_set_linger(self->sock, 0);
    zsock_set_sndtimeo(self->sock, s_timeout_ms);
    if (odp_client_check_config(s_cert, err, sizeof err) < 0 ||
        odp_auth_client(self->sock, s_cert, err, sizeof err) < 0) {
        snprintf(self->problem, sizeof self->problem, "%s", err);
        zsock_destroy(&self->sock);
        return -1;
    }
    self->watch = odp_watch_new(self->sock, "registrar", self->endpoint, s_cert, 0);
    if (!self->watch) {
        snprintf(self->problem, sizeof self->problem, "cannot monitor a socket");
        s_disconnect(self);
        return -1;
    }
    if (zsock_connect(self->sock, "%s", self->endpoint) < 0) {
        snprintf(self->problem, sizeof self->problem,
                 "cannot connect to %s: not an endpoint (tcp://HOST:PORT)", self->endpoint);
        s_disconnect(self);
        return -1;
    }
    self->poller = zpoller_new(self->sock, odp_watch_socket(self->watch), NULL);
    return 0;
}

static int s_send(s_push_t *self, const odp_msgdef_t *def, const void *msg)
{
    msgpack_sbuffer_clear(&self->out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->out, msgpack_sbuffer_write);
    if (odp_encode(def, msg, &pk) < 0) {
        snprintf(self->problem, sizeof self->problem, "%s does not fit its declaration", def->name);
        return -2;
    }
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, ODP_PROTOCOL);
    zmsg_addstr(m, def->name);
    zmsg_addmem(m, self->out.data, self->out.size);
    if (zmsg_send(&m, self->sock) < 0) {
        zmsg_destroy(&m);
        return -1;
    }
    return 0;
}

/*  The next reply, in *rep (always odp_reply_free it). -1 when none came within
    timeout_ms, the connection dropped or cannot come up (self->problem says which). */
static int s_recv(s_push_t *self, int timeout_ms, odp_reply_t *rep)
{
    memset(rep, 0, sizeof *rep);
    msgpack_zone_init(&rep->zone, 1024);
    int64_t until = zclock_mono() + timeout_ms;
    for (;;) {
        int64_t left = until - zclock_mono();
        void *which = left > 0 ? zpoller_wait(self->poller, (int)left) : NULL;
        if (!which || (which == odp_watch_socket(self->watch) &&
                       (odp_watch_read(self->watch) == ODP_LINK_DROPPED ||
                        odp_watch_hopeless(self->watch)))) {
            self->hopeless = odp_watch_hopeless(self->watch);
            odp_watch_why(self->watch, timeout_ms, self->problem, sizeof self->problem);
            return -1;
        }
        if (which != self->sock)
            continue;
        zmsg_t *m = zmsg_recv(self->sock);
        if (!m)
            return -1;
        char *st = zmsg_popstr(m);
        rep->status = st ? atoi(st) : 0;
        free(st);
        rep->body = zmsg_pop(m);
        zmsg_destroy(&m);
        if (rep->body) {
            odp_error_t e;
            if (odp_body_unpack(zframe_data(rep->body), zframe_size(rep->body), &rep->zone,
                                &rep->obj, &e) == 0 &&
                rep->status != 200)
                odp_decode_fields(&odp_def_rep_error, &rep->obj, &rep->err, &e);
        }
        return 0;
    }
}

static void s_forget_refusal(s_push_t *self);

/*  A refusal: keep the reply to tell the user. Some codes say "not now" or "not there"
    rather than "no": UNAVAILABLE and RATE_LIMITED anywhere, and once an upload runs,
    BAD_OFFSET and INVALID_STATE (the registrar restarted, or gave the upload's slot away,
    and wants push.begin again). Those are worth another attempt (S_LOST); the reply stays
    kept, so that when the attempts run out the user is told what the registrar said (a
    429 is a 429), not that it went silent. */
static s_outcome_t s_refused(s_push_t *self, odp_reply_t *rep, bool running)
{
    s_forget_refusal(self);
    self->refusal = *rep;
    self->has_refusal = true;
    if (s_code_is(rep, "UNAVAILABLE") || s_code_is(rep, "RATE_LIMITED") ||
        (running && (s_code_is(rep, "BAD_OFFSET") || s_code_is(rep, "INVALID_STATE")))) {
        char code[40], msg[300];
        snprintf(self->problem, sizeof self->problem, "%d %s: %s", rep->status,
                 odp_v_cstr(&rep->err.code, code, sizeof code),
                 odp_v_cstr(&rep->err.message, msg, sizeof msg));
        return S_LOST;
    }
    return S_REFUSED;
}

/*  One request and its reply on the push socket, with nothing else in flight. Only on
    S_OK is *rep the caller's (to free); otherwise it was released, or kept as the refusal. */
static s_outcome_t s_exchange(s_push_t *self, const odp_msgdef_t *def, const void *msg,
                              int timeout_ms, bool running, odp_reply_t *rep)
{
    int sent = s_send(self, def, msg);
    if (sent < 0)
        return sent == -2 ? S_REFUSED : S_LOST;
    if (s_recv(self, timeout_ms, rep) < 0) {
        odp_reply_free(rep);
        return S_LOST;
    }
    if (rep->status != 200)
        return s_refused(self, rep, running);
    return S_OK;
}

/*  Drop a kept refusal: the lookups after a duplicate are courtesies whose failure does
    not fail the push, and a "not now" is superseded by the next attempt. */
static void s_forget_refusal(s_push_t *self)
{
    if (self->has_refusal) {
        odp_reply_free(&self->refusal);
        self->has_refusal = false;
    }
}

/*  The summary of an existing version (a duplicate, or our own push when the reply to
    push.finish was lost), from version.list. */
static void s_version_summary(s_push_t *self, int64_t version, int64_t upload, bool duplicate,
                              s_summary_t *sum)
{
    memset(sum, 0, sizeof *sum);
    snprintf(sum->resource, sizeof sum->resource, "%s", self->resource);
    snprintf(sum->table, sizeof sum->table, "%s", self->table[0] ? self->table : "main");
    snprintf(sum->sha256, sizeof sum->sha256, "%s", self->sha256);
    sum->version = version;
    sum->upload = upload;
    sum->size = self->size;
    sum->duplicate = duplicate;
    odp_version_list_t m = {0};
    m.resource = self->begin.resource;
    m.table = self->begin.table;
    odp_reply_t rep;
    if (s_exchange(self, &odp_def_version_list, &m, s_timeout_ms, false, &rep) == S_OK) {
        const msgpack_object *items = odp_map_get(&rep.obj, "items");
        for (uint32_t i = 0;
             items && items->type == MSGPACK_OBJECT_ARRAY && i < items->via.array.size; i++) {
            odp_rec_version_t v;
            odp_error_t e;
            /*  Without --table the push went to the registrar's default table, "main". */
            if (odp_decode_fields(&odp_def_rec_version, &items->via.array.ptr[i], &v, &e) < 0 ||
                v.version.i != version || (!m.table.present && !odp_v_eq(&v.table, "main")))
                continue;
            odp_v_cstr(&v.table, sum->table, sizeof sum->table);
            odp_v_cstr(&v.kind, sum->kind, sizeof sum->kind);
            odp_v_cstr(&v.sha256, sum->sha256, sizeof sum->sha256);
            sum->size = v.size.i;
            sum->rows_received = v.rows_received.i;
            sum->rows_staged = v.rows_staged.i;
            sum->rows_rejected = v.rows_rejected.i;
            sum->has_rows = true;
        }
        odp_reply_free(&rep);
    }
    s_forget_refusal(self);
}

/*  After a lost push.finish, push.begin says "duplicate": was it ours that committed?
    push.status of our upload tells. */
static int64_t s_our_version(s_push_t *self)
{
    odp_push_status_t m = {0};
    m.upload = odp_v_int(self->upload);
    odp_reply_t rep;
    int64_t version = 0;
    if (s_exchange(self, &odp_def_push_status, &m, s_timeout_ms, false, &rep) == S_OK) {
        odp_rep_push_status_t st;
        odp_error_t e;
        if (odp_decode_fields(&odp_def_rep_push_status, &rep.obj, &st, &e) == 0 &&
            odp_v_eq(&st.status, "received") && st.version.present)
            version = st.version.i;
        odp_reply_free(&rep);
    }
    s_forget_refusal(self);
    return version;
}

/*  Read exactly n bytes at offset: the file must still be what was hashed. */
static int s_read_at(s_push_t *self, int64_t offset, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(self->fd, self->buf + got, n - got, (off_t)(offset + (int64_t)got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(self->problem, sizeof self->problem,
                     "%s: cannot read at offset %lld (%s); did it change during the push?",
                     self->path, (long long)(offset + (int64_t)got),
                     r < 0 ? strerror(errno) : "end of file");
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/*  Stream from self->acked to the end under credit: send while fewer than credit chunks
    are in flight, then wait for the oldest one's ack. */
static s_outcome_t s_stream(s_push_t *self, int *fails, int *backoff)
{
    int64_t next = self->acked;
    for (;;) {
        while (self->inflight < self->credit && next < self->size) {
            int64_t left = self->size - next;
            size_t n = (size_t)(left < self->chunk_size ? left : self->chunk_size);
            if (s_read_at(self, next, n) < 0)
                return S_REFUSED;
            odp_push_chunk_t c = {0};
            c.upload = odp_v_int(self->upload);
            c.offset = odp_v_int(next);
            c.data = odp_v_bin(self->buf, n);
            int sent = s_send(self, &odp_def_push_chunk, &c);
            if (sent < 0)
                return sent == -2 ? S_REFUSED : S_LOST;
            self->ends[(self->head + self->inflight) % S_MAX_CREDIT] = next + (int64_t)n;
            self->inflight++;
            next += (int64_t)n;
        }
        if (self->inflight == 0)
            return S_OK;
        odp_reply_t rep;
        if (s_recv(self, s_timeout_ms, &rep) < 0) {
            odp_reply_free(&rep);
            return S_LOST;
        }
        if (rep.status != 200)
            return s_refused(self, &rep, true);
        odp_rep_push_ack_t ack;
        odp_error_t e = {0};
        int64_t expect = self->ends[self->head];
        if (odp_decode_fields(&odp_def_rep_push_ack, &rep.obj, &ack, &e) < 0 ||
            ack.offset.i != expect) {
            /*  The registrar's idea of the stream differs from ours: ask it where to go on
                rather than guess. */
            snprintf(self->problem, sizeof self->problem,
                     "unexpected acknowledgement (expected offset %lld): %s", (long long)expect,
                     e.message[0] ? e.message : "offset differs");
            odp_reply_free(&rep);
            return S_LOST;
        }
        self->acked = expect;
        self->rows = ack.rows_received.i;
        self->head = (self->head + 1) % S_MAX_CREDIT;
        self->inflight--;
        odp_reply_free(&rep);
        *fails = 0;
        *backoff = S_BACKOFF_MIN;
        s_progress(self, false);
    }
}

static void s_summary_from_reply(const odp_rep_push_summary_t *r, s_summary_t *sum)
{
    memset(sum, 0, sizeof *sum);
    odp_v_cstr(&r->resource, sum->resource, sizeof sum->resource);
    odp_v_cstr(&r->table, sum->table, sizeof sum->table);
    odp_v_cstr(&r->sha256, sum->sha256, sizeof sum->sha256);
    odp_v_cstr(&r->kind, sum->kind, sizeof sum->kind);
    odp_v_cstr(&r->staging_table, sum->staging, sizeof sum->staging);
    sum->version = r->version.i;
    sum->upload = r->upload.present ? r->upload.i : 0;
    sum->size = r->size.i;
    sum->rows_received = r->rows_received.i;
    sum->rows_staged = r->rows_staged.i;
    sum->rows_rejected = r->rows_rejected.i;
    sum->has_rows = true;
    sum->duplicate = r->duplicate.b;
}

static void s_summary_print(const s_push_t *self, const s_summary_t *sum)
{
    if (s_json) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:I}", "event", "summary", "resource", sum->resource,
                              "table", sum->table, "version", (json_int_t)sum->version);
        json_object_set_new(j, "upload", sum->upload ? json_integer(sum->upload) : json_null());
        json_object_set_new(j, "sha256", json_string(sum->sha256));
        json_object_set_new(j, "size", json_integer(sum->size));
        if (sum->has_rows) {
            json_object_set_new(j, "rows_received", json_integer(sum->rows_received));
            json_object_set_new(j, "rows_staged", json_integer(sum->rows_staged));
            json_object_set_new(j, "rows_rejected", json_integer(sum->rows_rejected));
        }
        json_object_set_new(j, "duplicate", json_boolean(sum->duplicate));
        if (sum->kind[0])
            json_object_set_new(j, "kind", json_string(sum->kind));
        if (sum->staging[0])
            json_object_set_new(j, "staging_table", json_string(sum->staging));
        odp_json_print(j);
        return;
    }
    char size[32];
    s_human_bytes(sum->size, size, sizeof size);
    if (sum->duplicate) {
        printf("%s is already version %lld of %s table %s (identical content): nothing sent\n",
               self->path, (long long)sum->version, sum->resource, sum->table);
    } else {
        printf("pushed %s to %s table %s: version %lld (upload %lld)\n", self->path, sum->resource,
               sum->table, (long long)sum->version, (long long)sum->upload);
    }
    if (sum->has_rows && strcmp(sum->kind, "file") != 0)
        printf("  rows:   %lld received = %lld staged + %lld rejected\n",
               (long long)sum->rows_received, (long long)sum->rows_staged,
               (long long)sum->rows_rejected);
    printf("  sha256: %s\n  size:   %lld bytes (%s)\n", sum->sha256, (long long)sum->size, size);
    if (sum->has_rows && sum->rows_rejected > 0)
        printf("  %lld rows could not be typed and were kept aside; see: odp-push rejects "
               "--resource %s --version %lld%s%s\n",
               (long long)sum->rows_rejected, sum->resource, (long long)sum->version,
               self->table[0] ? " --table " : "", self->table);
}

/*  What a GB18030 file pushed as UTF-8 should have been told, or "". */
static const char *s_encoding_hint(const s_push_t *self, char *buf, size_t size)
{
    buf[0] = '\0';
    if (self->text == S_TEXT_GB18030 && odp_v_eq(&self->begin.encoding, "utf8"))
        snprintf(buf, size,
                 "%s is not UTF-8 but reads as GB18030 (header: %s): push it with --encoding "
                 "gb18030",
                 self->path, self->header);
    return buf;
}

/*  Print the summary; the exit status. A push that received rows and staged none is no
    success even though it made a version: the data is all in rejects, most often for an
    encoding or a dictionary that does not fit the file. */
static int s_summary_end(const s_push_t *self, const s_summary_t *sum)
{
    s_summary_print(self, sum);
    if (!sum->has_rows || strcmp(sum->kind, "file") == 0 || sum->rows_received == 0 ||
        sum->rows_staged > 0)
        return 0;
    fflush(stdout);
    char hint[600];
    fprintf(stderr,
            S_PROG ": none of the %lld rows of %s could be staged: all were rejected (see "
                   "odp-push rejects --resource %s --version %lld%s%s)%s%s\n",
            (long long)sum->rows_received, self->path, sum->resource, (long long)sum->version,
            self->table[0] ? " --table " : "", self->table,
            s_encoding_hint(self, hint, sizeof hint)[0] ? "; "
                                                        : "; check the file's encoding "
                                                          "and the data dictionary",
            hint);
    return 1;
}

/*  push.abort after a refusal mid-stream, so the upload does not linger as receiving.
    Best effort, on a fresh connection: the old one still has replies in flight. */
static void s_abort(s_push_t *self, const char *why)
{
    odp_client_t *c = odp_client_new("registrar", NULL, s_cert, NULL, 0);
    if (!c)
        return;
    odp_push_abort_t m = {0};
    m.upload = odp_v_int(self->upload);
    m.reason = odp_v_str(why);
    odp_reply_t rep;
    odp_client_call(c, &odp_def_push_abort, &m, 2000, &rep);
    odp_reply_free(&rep);
    odp_client_destroy(&c);
}

/*  Tell the user why the push stopped; the exit status. */
static int s_push_refused(s_push_t *self)
{
    if (self->has_refusal) {
        if (s_json) {
            json_t *j = odp_cli_error_json("registrar", &self->refusal);
            json_object_set_new(j, "event", json_string("error"));
            odp_json_print(j);
        } else {
            odp_cli_refused(S_PROG, "registrar", &self->refusal, false);
        }
        char hint[600];
        if (s_code_is(&self->refusal, "HEADER_MISMATCH") &&
            s_encoding_hint(self, hint, sizeof hint)[0])
            fprintf(stderr, S_PROG ": %s\n", hint);
        return 1;
    }
    if (s_json)
        odp_json_print(json_pack("{s:s,s:s}", "event", "error", "message", self->problem));
    else
        fprintf(stderr, S_PROG ": %s\n", self->problem);
    return 1;
}

static int s_push_run(s_push_t *self)
{
    int fails = 0, backoff = S_BACKOFF_MIN;
    bool begun = false;
    self->t0 = zclock_mono();
    for (;;) {
        s_outcome_t out = S_LOST;
        odp_reply_t rep;
        if (!self->sock && s_connect(self) < 0) {
            fprintf(stderr, S_PROG ": %s\n", self->problem);
            return 2;
        }
        out = s_exchange(self, &odp_def_push_begin, &self->begin, s_timeout_ms, false, &rep);
        if (out == S_REFUSED)
            return s_push_refused(self);
        if (out == S_OK) {
            odp_rep_push_begin_t b;
            odp_error_t e = {0};
            if (odp_decode_fields(&odp_def_rep_push_begin, &rep.obj, &b, &e) < 0 ||
                (!b.duplicate.b && !b.upload.present) || (b.duplicate.b && !b.version.present)) {
                snprintf(self->problem, sizeof self->problem,
                         "push.begin answered with an unexpected reply: %s", e.message);
                odp_reply_free(&rep);
                return s_push_refused(self);
            }
            odp_reply_free(&rep);
            if (b.duplicate.b) {
                /*  Identical content is a version already. If our own finish was lost on
                    the way back, that version is ours, not a duplicate. */
                int64_t ours = self->upload ? s_our_version(self) : 0;
                s_summary_t sum;
                s_version_summary(self, b.version.i, ours ? self->upload : 0, ours == 0, &sum);
                return s_summary_end(self, &sum);
            }
            if (begun) {
                if (s_json)
                    odp_json_print(json_pack("{s:s,s:I}", "event", "resume", "offset",
                                             (json_int_t)b.offset.i));
                else
                    fprintf(stderr, S_PROG ": resuming at byte %lld\n", (long long)b.offset.i);
            } else {
                self->offset0 = b.offset.i;
            }
            begun = true;
            self->upload = b.upload.i;
            self->acked = b.offset.i;
            self->credit = (int)(b.credit.i > S_MAX_CREDIT ? S_MAX_CREDIT : b.credit.i);
            if (b.chunk_size.i != self->chunk_size) {
                free(self->buf);
                self->chunk_size = b.chunk_size.i;
                self->buf = malloc((size_t)self->chunk_size);
                if (!self->buf) {
                    snprintf(self->problem, sizeof self->problem, "out of memory");
                    return s_push_refused(self);
                }
            }
            out = s_stream(self, &fails, &backoff);
            if (out == S_REFUSED) {
                char why[600];
                if (self->has_refusal) {
                    char code[40];
                    snprintf(why, sizeof why, "odp-push stopped on %s",
                             odp_v_cstr(&self->refusal.err.code, code, sizeof code));
                } else {
                    snprintf(why, sizeof why, "odp-push stopped: %.500s", self->problem);
                }
                s_disconnect(self);
                s_abort(self, why);
                s_progress(self, true);
                return s_push_refused(self);
            }
            if (out == S_OK) {
                s_progress(self, true);
                /*  The registrar may do real work at the end (the last rows, the version
                    record): allow it more than one ack's time. */
                int finish_ms = s_timeout_ms < 60000 ? 60000 : s_timeout_ms;
                odp_push_finish_t fin = {0};
                fin.upload = odp_v_int(self->upload);
                out = s_exchange(self, &odp_def_push_finish, &fin, finish_ms, true, &rep);
                if (out == S_REFUSED)
                    return s_push_refused(self);
                if (out == S_OK) {
                    odp_rep_push_summary_t r;
                    if (odp_decode_fields(&odp_def_rep_push_summary, &rep.obj, &r, &e) < 0) {
                        snprintf(self->problem, sizeof self->problem,
                                 "push.finish answered with an unexpected reply: %s", e.message);
                        odp_reply_free(&rep);
                        return s_push_refused(self);
                    }
                    s_summary_t sum;
                    s_summary_from_reply(&r, &sum);
                    odp_reply_free(&rep);
                    return s_summary_end(self, &sum);
                }
            }
        }
        /*  Lost: a fresh socket after a pause, then push.begin tells where to go on. */
        s_disconnect(self);
        if (zsys_interrupted) {
            fprintf(stderr, S_PROG ": interrupted; the same command resumes this push\n");
            return 3;
        }
        if (self->hopeless) {
            /*  A refused key or a wrong server certificate does not mend by waiting. */
            fprintf(stderr, S_PROG ": %s\n", self->problem);
            return 3;
        }
        if (++fails > self->retries) {
            /*  The registrar's last word, when it had one (429, 503), is the outcome. */
            if (self->has_refusal)
                return s_push_refused(self);
            fprintf(stderr, S_PROG ": no answer from the registrar after %d attempts%s%s\n", fails,
                    self->problem[0] ? "; last: " : "", self->problem);
            return 3;
        }
        if (!s_json) {
            if (self->tty && begun)
                fputc('\n', stderr); /* below the progress line */
            if (self->has_refusal)
                fprintf(stderr, S_PROG ": the registrar answered %s; retry %d in %d ms\n",
                        self->problem, fails, backoff);
            else if (begun)
                fprintf(stderr,
                        S_PROG ": lost the registrar at byte %lld (%s); retry %d in %d ms\n",
                        (long long)self->acked, self->problem, fails, backoff);
            else
                fprintf(stderr, S_PROG ": no answer from the registrar (%s); retry %d in %d ms\n",
                        self->problem, fails, backoff);
        }
        self->problem[0] = '\0';
        s_forget_refusal(self);
        zclock_sleep(backoff);
        backoff = backoff * 2 > S_BACKOFF_MAX ? S_BACKOFF_MAX : backoff * 2;
    }
}

/*  The encoding to declare: as given, else what the file reads as, said on stderr when
    it is not the UTF-8 one would assume. A given encoding the bytes contradict is
    pushed as asked, with a warning: the user may know better (a file starting in ASCII). */
static int s_choose_encoding(s_push_t *self)
{
    self->text = s_sniff(self->fd, self->size, self->header, sizeof self->header);
    char given[17] = "";
    const char *enc = NULL;
    if (self->begin.encoding.present) {
        enc = odp_code_find(&odp_cl_encoding, self->begin.encoding.str, self->begin.encoding.len);
        if (!enc)
            return 0; /* the registrar names the allowed ones */
        odp_v_cstr(&self->begin.encoding, given, sizeof given);
    }
    const char *format =
        odp_code_find(&odp_cl_format, self->begin.format.str, self->begin.format.len);
    bool jsonl = format && strcmp(format, "jsonl") == 0;
    if (!enc && self->text == S_TEXT_GB18030) {
        if (jsonl) {
            fprintf(stderr,
                    S_PROG ": %s is not UTF-8 but reads as GB18030, and JSON Lines must be "
                           "UTF-8: convert it first (iconv -f GB18030 -t UTF-8)\n",
                    self->path);
            return -1;
        }
        fprintf(stderr,
                S_PROG ": %s is not UTF-8 but reads as GB18030 (header: %s); pushing it with "
                       "--encoding gb18030\n",
                self->path, self->header);
        self->begin.encoding = odp_v_str("gb18030");
        return 0;
    }
    if (!enc)
        self->begin.encoding = odp_v_str("utf8");
    if (enc && strcmp(enc, "utf8") == 0 && self->text == S_TEXT_GB18030)
        fprintf(stderr,
                S_PROG ": warning: %s is not UTF-8 but reads as GB18030 (header: %s); it is "
                       "pushed as --encoding %s as asked, use --encoding gb18030 if that fails\n",
                self->path, self->header, given);
    else if (enc && strcmp(enc, "gb18030") == 0 && self->text == S_TEXT_UTF8)
        fprintf(stderr,
                S_PROG ": warning: %s is UTF-8 text; read as GB18030 (as asked) its characters "
                       "will be others: drop --encoding if it is UTF-8\n",
                self->path);
    else if (self->text == S_TEXT_OTHER)
        fprintf(stderr,
                S_PROG ": warning: the start of %s is neither UTF-8 nor GB18030; rows with "
                       "invalid bytes will be rejected (reason encoding)\n",
                self->path);
    return 0;
}

static int s_push(int argc, char **argv)
{
    /*  FILE is the one argument that is not an --option value pair. */
    char **opts = calloc((size_t)argc + 1, sizeof *opts);
    if (!opts)
        return 2;
    int nopts = 0;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            opts[nopts++] = argv[i];
            if (i + 1 < argc)
                opts[nopts++] = argv[++i];
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, S_PROG ": push takes one FILE, got '%s' too\n", argv[i]);
            free(opts);
            return 2;
        }
    }
    s_push_t self;
    memset(&self, 0, sizeof self);
    self.fd = -1;
    self.retries = 30;
    const char *retries = NULL;
    const odp_cli_opt_t extra[] = {{"retries", &retries}, {NULL, NULL}};
    int rc = odp_cli_fill(S_PROG, &odp_def_push_begin, &self.begin, nopts, opts, extra, NULL);
    free(opts);
    if (rc < 0)
        return 2;
    if (retries) {
        int64_t n;
        if (!odp_parse_int(retries, strlen(retries), 0, 1000000, &n)) {
            fprintf(stderr, S_PROG ": --retries needs a whole number >= 0\n");
            return 2;
        }
        self.retries = (int)n;
    }
    if (!path || !self.begin.resource.present) {
        fprintf(stderr, S_PROG ": push needs --resource R and a FILE\n");
        return 2;
    }
    if (self.begin.size.present || self.begin.sha256.present) {
        fprintf(stderr, S_PROG ": size and sha256 are computed from the file\n");
        return 2;
    }
    self.path = path;
    self.fd = open(path, O_RDONLY);
    struct stat sb;
    if (self.fd < 0 || fstat(self.fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, S_PROG ": %s: %s\n", path, self.fd < 0 ? strerror(errno) : "not a file");
        if (self.fd >= 0)
            close(self.fd);
        return 2;
    }
    if (s_hash_file(self.fd, self.sha256, &self.size) < 0) {
        fprintf(stderr, S_PROG ": %s: %s\n", path, strerror(errno));
        close(self.fd);
        return 2;
    }
    odp_v_cstr(&self.begin.resource, self.resource, sizeof self.resource);
    odp_v_cstr(&self.begin.table, self.table, sizeof self.table);
    if (!self.begin.format.present)
        self.begin.format = odp_v_str(s_format_for(path));
    char fmtbuf[17];
    const char *format =
        odp_code_find(&odp_cl_format, self.begin.format.str, self.begin.format.len);
    if (!format)
        format = odp_v_cstr(&self.begin.format, fmtbuf, sizeof fmtbuf);
    self.dataset = strcmp(format, "csv") == 0 || strcmp(format, "jsonl") == 0;
    if (self.dataset && s_choose_encoding(&self) < 0) {
        close(self.fd);
        return 2;
    }
    if (!self.dataset && !self.begin.media_type.present)
        self.begin.media_type = odp_v_str(s_media_type(path));
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (*base && strlen(base) <= 255 && odp_utf8_valid(base, strlen(base)))
        self.begin.filename = odp_v_str(base);
    self.begin.size = odp_v_int(self.size);
    self.begin.sha256 = odp_v_str(self.sha256);
    odp_config_endpoint("registrar", false, false, self.endpoint, sizeof self.endpoint);
    self.tty = !s_json && isatty(STDERR_FILENO);
    msgpack_sbuffer_init(&self.out);

    rc = s_push_run(&self);

    s_disconnect(&self);
    if (self.has_refusal)
        odp_reply_free(&self.refusal);
    msgpack_sbuffer_destroy(&self.out);
    free(self.buf);
    close(self.fd);
    return rc;
}

/*  findings [UPLOAD | --upload N] [--limit N]: the reviewer's findings on the department's
    own versions, and a rejection's reason (review.findings). */
static int s_findings(int argc, char **argv)
{
    odp_review_findings_t msg;
    memset(&msg, 0, sizeof msg);
    char *upload = NULL;
    if (argc > 0 && argv[0][0] != '-') {
        upload = argv[0];
        argc--;
        argv++;
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    int rc = odp_cli_fill(S_PROG, &odp_def_review_findings, &msg, argc, argv, NULL, &zone);
    if (rc == 0 && upload) {
        int64_t n;
        if (!odp_parse_int(upload, strlen(upload), 1, INT64_MAX, &n)) {
            fprintf(stderr, S_PROG ": findings: the upload is a number, not '%s'\n", upload);
            rc = -1;
        } else
            msg.upload = odp_v_int(n);
    }
    odp_reply_t rep;
    if (rc == 0 && (rc = s_request_to("reviewer", &odp_def_review_findings, &msg, &rep)) == 0) {
        odp_cli_print(&rep.obj, s_json);
        odp_reply_free(&rep);
    } else if (rc < 0)
        rc = 2;
    msgpack_zone_destroy(&zone);
    return rc;
}

/*  ---------------------------------------------------------------------------------------
    Commands that are one request and its printed reply.                                */

static const struct {
    const char *name;
    const odp_msgdef_t *def;
} s_simple[] = {
    {"plan", &odp_def_plan_add},
    {"plans", &odp_def_plan_list},
    {"register", &odp_def_registration_request},
    {"catalog-get", &odp_def_catalog_get},
    {"catalog-list", &odp_def_catalog_list},
    {"rules", &odp_def_rules_get},
    {"status", &odp_def_push_status},
    {"versions", &odp_def_version_list},
    {"rejects", &odp_def_rejects_list},
};

int main(int argc, char **argv)
{
    /*  A chunk is a message that ZeroMQ's I/O thread frees once sent; glibc would map
        and unmap every one (over 128 KiB), or trim the heap under it, faulting in each page
        of the file twice. */
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
    odp_cli_global_t g = {s_json, s_timeout_ms, s_cert, NULL};
    int first = odp_cli_global(S_PROG, &argc, argv, &g, false, s_usage);
    if (first < 0)
        return first == -1 ? 0 : 2;
    s_json = g.json;
    s_timeout_ms = g.timeout_ms;
    s_cert = g.cert;
    argc -= first;
    argv += first;
    zsys_init();
    zsys_set_logstream(stderr);
    if (sodium_init() < 0) {
        fprintf(stderr, S_PROG ": libsodium cannot start\n");
        return 2;
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "push") == 0)
        return s_push(argc - 1, argv + 1);
    if (strcmp(cmd, "catalog") == 0)
        return s_catalog(argc - 1, argv + 1);
    if (strcmp(cmd, "dict") == 0)
        return s_dict(argc - 1, argv + 1);
    if (strcmp(cmd, "findings") == 0)
        return s_findings(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof s_simple / sizeof s_simple[0]; i++) {
        if (strcmp(cmd, s_simple[i].name) != 0)
            continue;
        s_any_request_t msg;
        memset(&msg, 0, sizeof msg);
        msgpack_zone zone;
        msgpack_zone_init(&zone, 1024);
        int rc = 2;
        if (odp_cli_fill(S_PROG, s_simple[i].def, &msg, argc - 1, argv + 1, NULL, &zone) == 0 &&
            odp_cli_required(S_PROG, s_simple[i].def, &msg) == 0)
            rc = s_call_print(s_simple[i].def, &msg);
        msgpack_zone_destroy(&zone);
        return rc;
    }
    fprintf(stderr, S_PROG ": unknown command '%s'\n", cmd);
    s_usage(stderr);
    return 2;
}
