/*  Whole-version downloads from the query service's open COPY streams: the bytes under full
    credit equal PostgreSQL's own COPY of the release's view (quotes, commas, line breaks,
    NULLs, Chinese), a download resumed mid-stream goes on with the same bytes and hash,
    downloads interleaved over fewer streams than downloads restart theirs where they
    stood, and a released file downloads byte for byte with its pushed hash (also through
    odp-user). Data is pushed, reviewed and released through the real services. */
#include "pushing.h"

#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_DEPT  "448400001"
#define S_ROWS  2500
#define S_FILE  300001 /* bytes: pieces of 50,000 in the registrar, chunks of 7,000 served */
#define S_CHUNK "7000"

static char s_data[33]; /* a dataset entry, released */
static char s_file[33]; /* a file entry, released */
static int64_t s_release;
static char s_file_sha[65];
static unsigned char *s_file_bytes;
static bool s_ready = false;

/*  Push data to resource, approve it when it is a dataset, release it: the release or 0. */
static int64_t s_publish(const char *resource, const char *data, size_t len, bool file)
{
    tp_opts_t o = {.resource = resource};
    if (file) {
        o.format = "file";
        o.media_type = "application/octet-stream";
        o.chunk = 50000;
    }
    return tp_publish(S_DEPT, &o, data, len);
}

/*  id integer, note text (commas, quotes, line breaks, Chinese, empty as NULL), day date,
    amt numeric, ok boolean. */
static const char *s_dict(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/download.dict.json", h_var());
    json_t *d = json_pack("{s:[{s:s,s:s,s:b,s:b},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]}",
                          "fields", "name", "id", "type", "integer", "required", 1, "unique", 1,
                          "name", "note", "type", "text", "name", "day", "type", "date", "name",
                          "amt", "type", "numeric", "name", "ok", "type", "boolean");
    CHECK(d && json_dump_file(d, path, 0) == 0, "cannot write %s", path);
    json_decref(d);
    return path;
}

static char *s_csv(size_t *len)
{
    size_t cap = 64 + (size_t)S_ROWS * 96;
    char *buf = malloc(cap);
    size_t off = (size_t)snprintf(buf, cap, "id,note,day,amt,ok\n");
    for (int i = 1; i <= S_ROWS; i++) {
        const char *note = i % 7 == 0 ? "\"下载, \"\"引号\"\"\n第二行\"" : i % 5 == 0 ? "" : "行";
        off += (size_t)snprintf(buf + off, cap - off, "%d,%s,2026-02-%02d,%d.25,%s\n", i, note,
                                i % 28 + 1, i * 3, i % 2 ? "true" : "false");
    }
    *len = off;
    return buf;
}

static void s_setup(void)
{
    const char *env[] = {"ODP_QUERY_RATE_PER_S=100000", "ODP_QUERY_RATE_BURST=100000",
                         "ODP_QUERY_DOWNLOAD_CHUNK_BYTES=" S_CHUNK, "ODP_QUERY_DOWNLOAD_STREAMS=2",
                         NULL};
    h_service_stop("query");
    CHECK(h_service_start("query", env) > 0, "query with small chunks and two streams");
    CHECK(h_department(S_DEPT, "下载测试 部门") == 0, "department");
    bool ok = tp_entry(S_DEPT, "下载测试 整版数据", "dataset", s_dict(), true, s_data) &&
              tp_entry(S_DEPT, "下载测试 年度报告", "report", NULL, true, s_file);
    size_t len;
    char *csv = s_csv(&len);
    s_release = ok ? s_publish(s_data, csv, len, false) : 0;
    free(csv);
    /*  Every byte value, NULs included, in no pattern a slip of one byte would keep. */
    s_file_bytes = malloc(S_FILE);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < S_FILE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s_file_bytes[i] = (unsigned char)x;
    }
    tp_sha256(s_file_bytes, S_FILE, s_file_sha);
    ok = ok && s_release > 0 && s_publish(s_file, (const char *)s_file_bytes, S_FILE, true) > 0;
    s_ready = ok && h_case_failures == 0;
}

/*  What PostgreSQL's own COPY gives for the release's view, as psql \copy would write it. */
static odp_buf_t *s_reference(void)
{
    PGconn *pg = h_pg_super();
    odp_buf_t *b = odp_buf_new();
    PQclear(PQexec(pg, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET "
                       "extra_float_digits = 1"));
    char sql[300];
    snprintf(sql, sizeof sql,
             "COPY (SELECT id, note, day, amt, ok FROM publisher.r%lld ORDER BY row_no) TO "
             "STDOUT (FORMAT csv, HEADER)",
             (long long)s_release);
    PGresult *r = PQexec(pg, sql);
    CHECK(PQresultStatus(r) == PGRES_COPY_OUT, "reference COPY: %s", PQerrorMessage(pg));
    PQclear(r);
    char *line;
    int len;
    while ((len = PQgetCopyData(pg, &line, 0)) > 0) {
        odp_buf_append(b, line, (size_t)len);
        PQfreemem(line);
    }
    while ((r = PQgetResult(pg)))
        PQclear(r);
    PQfinish(pg);
    return b;
}

typedef struct {
    int64_t id, span, last, credit;
    int64_t next, inflight; /* the next chunk to ask for; requests in flight */
    bool done;
    char served[65];
    char format[16];
    odp_buf_t *got;
} s_dl_t;

static int s_begin(odp_client_t *c, const char *resource, const char *format, s_dl_t *d)
{
    memset(d, 0, sizeof *d);
    odp_download_begin_t b = {0};
    b.resource = odp_v_str(resource);
    if (format)
        b.format = odp_v_str(format);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_download_begin, &b, &rep);
    d->id = h_int(&rep, "download");
    d->span = h_int(&rep, "span");
    d->last = h_int(&rep, "last_row");
    d->credit = h_int(&rep, "credit");
    tp_str(&rep, "format", d->format, sizeof d->format);
    odp_reply_free(&rep);
    d->next = 1;
    d->got = odp_buf_new();
    return st;
}

/*  One chunk, asked alone: 200 with its bytes appended, or the status. */
static int s_one(odp_client_t *c, s_dl_t *d, int64_t from)
{
    odp_download_chunk_t m = {0};
    m.download = odp_v_int(d->id);
    m.from_row = odp_v_int(from);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_download_chunk, &m, &rep);
    const msgpack_object *data = odp_map_get(&rep.obj, "data");
    if (st == 200 && data && data->type == MSGPACK_OBJECT_BIN)
        odp_buf_append(d->got, data->via.bin.ptr, data->via.bin.size);
    if (st == 200 && (d->done = tp_bool(&rep, "done")))
        tp_str(&rep, "served_sha256", d->served, sizeof d->served);
    odp_reply_free(&rep);
    return st;
}

/*  The rest of the download from d->next, the credit's worth of requests in flight. */
static int s_rest(odp_client_t *c, s_dl_t *d)
{
    while (!d->done) {
        while (d->inflight < d->credit && (d->next <= d->last || d->next == 1)) {
            odp_download_chunk_t m = {0};
            m.download = odp_v_int(d->id);
            m.from_row = odp_v_int(d->next);
            if (odp_client_send(c, &odp_def_download_chunk, &m) < 0)
                return 0;
            d->next += d->span;
            d->inflight++;
        }
        odp_reply_t rep;
        if (odp_client_recv(c, 10000, &rep) < 0)
            return 0;
        d->inflight--;
        int st = rep.status;
        const msgpack_object *data = odp_map_get(&rep.obj, "data");
        if (st == 200 && data && data->type == MSGPACK_OBJECT_BIN)
            odp_buf_append(d->got, data->via.bin.ptr, data->via.bin.size);
        if (st == 200 && (d->done = tp_bool(&rep, "done")))
            tp_str(&rep, "served_sha256", d->served, sizeof d->served);
        odp_reply_free(&rep);
        if (st != 200)
            return st;
    }
    return 200;
}

static bool s_same(odp_buf_t *a, odp_buf_t *b)
{
    return odp_buf_size(a) == odp_buf_size(b) &&
           memcmp(odp_buf_data(a), odp_buf_data(b), odp_buf_size(a)) == 0;
}

static bool s_hash_ok(s_dl_t *d)
{
    char hex[65];
    tp_sha256(odp_buf_data(d->got), odp_buf_size(d->got), hex);
    return d->done && strcmp(hex, d->served) == 0;
}

/*  Under full credit the bytes are PostgreSQL's COPY of the view, byte for byte. */
static void s_whole(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = h_client("query", NULL);
    odp_buf_t *ref = s_reference();
    s_dl_t d;
    int st = s_begin(c, s_data, NULL, &d);
    CHECK(st == 200 && d.span > 0 && d.last == S_ROWS && d.credit > 1, "begin: %d", st);
    CHECK(d.span < S_ROWS / 8, "span %lld: too few chunks to pipeline", (long long)d.span);
    st = s_rest(c, &d);
    CHECK(st == 200 && s_same(d.got, ref), "%d: %zu bytes, COPY gives %zu", st, odp_buf_size(d.got),
          odp_buf_size(ref));
    CHECK(s_hash_ok(&d), "served hash %s is not the bytes'", d.served);
    odp_buf_destroy(&d.got);
    /*  JSON Lines: one object a row, in row order. */
    st = s_begin(c, s_data, "jsonl", &d);
    st = st == 200 ? s_rest(c, &d) : st;
    int lines = 0, in_order = 0;
    char *save = NULL;
    for (char *l = strtok_r(odp_buf_data(d.got), "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        lines++;
        in_order +=
            json_integer_value(json_object_get(j, "id")) == lines && json_object_size(j) == 5;
        json_decref(j);
    }
    CHECK(st == 200 && lines == S_ROWS && in_order == S_ROWS, "jsonl: %d: %d lines, %d in order",
          st, lines, in_order);
    odp_buf_destroy(&d.got);
    odp_buf_destroy(&ref);
    odp_client_destroy(&c);
}

/*  A download that asks again for a chunk it had (a resume) gets the same bytes from a new
    COPY and goes on from there; what it kept is the whole version, its hash the served one.
    A chunk ahead of where it stands or off a boundary is refused. */
static void s_resume(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = h_client("query", NULL);
    odp_buf_t *ref = s_reference();
    s_dl_t d;
    int st = s_begin(c, s_data, NULL, &d);
    size_t at[6] = {0}; /* where chunk k + 1 began in what was kept */
    for (int k = 0; st == 200 && k < 5; k++) {
        at[k] = odp_buf_size(d.got);
        st = s_one(c, &d, 1 + k * d.span);
    }
    size_t kept = odp_buf_size(d.got);
    st = st == 200 ? s_one(c, &d, 1 + 3 * d.span) : st;
    size_t again = odp_buf_size(d.got) - kept;
    CHECK(st == 200 && again > 0 && again == at[4] - at[3] &&
              memcmp(odp_buf_data(d.got) + at[3], odp_buf_data(d.got) + kept, again) == 0,
          "chunk 4 asked again: %d, %zu bytes, not those served before", st, again);
    odp_buf_truncate(d.got, kept);
    st = s_one(c, &d, 1 + 7 * d.span);
    CHECK(st == 409, "a chunk ahead: %d", st);
    st = s_one(c, &d, 2 + 5 * d.span);
    CHECK(st == 409, "a chunk off the boundary: %d", st);
    d.next = 1 + 5 * d.span;
    st = s_rest(c, &d);
    CHECK(st == 200 && s_same(d.got, ref), "resumed: %d: %zu bytes, COPY gives %zu", st,
          odp_buf_size(d.got), odp_buf_size(ref));
    CHECK(s_hash_ok(&d), "resumed: served hash %s is not the bytes'", d.served);
    odp_buf_destroy(&d.got);
    odp_buf_destroy(&ref);
    odp_client_destroy(&c);
}

/*  Three downloads taken chunk by chunk in turn over two streams: each one's stream is
    taken by another in between, and restarts where it stood. */
static void s_interleaved(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = h_client("query", NULL);
    odp_buf_t *ref = s_reference();
    s_dl_t d[3];
    int st = 200;
    for (int i = 0; i < 3; i++)
        st = st == 200 ? s_begin(c, s_data, NULL, &d[i]) : st;
    for (int64_t from = 1; st == 200 && !d[2].done; from += d[0].span)
        for (int i = 0; i < 3 && st == 200; i++)
            st = s_one(c, &d[i], from);
    for (int i = 0; i < 3; i++) {
        CHECK(st == 200 && s_same(d[i].got, ref) && s_hash_ok(&d[i]),
              "download %d of 3: %d, %zu bytes, COPY gives %zu", i + 1, st, odp_buf_size(d[i].got),
              odp_buf_size(ref));
        odp_buf_destroy(&d[i].got);
    }
    odp_buf_destroy(&ref);
    odp_client_destroy(&c);
}

/*  A released file: its pushed bytes, chunk by chunk across the registrar's pieces, with
    the pushed hash as the served one; csv is refused for it; odp-user writes the same file. */
static void s_file_download(void)
{
    CHECK(s_ready, "set-up failed");
    odp_client_t *c = h_client("query", NULL);
    s_dl_t d;
    int st = s_begin(c, s_file, "csv", &d);
    CHECK(st == 422, "a file as csv: %d", st);
    odp_buf_destroy(&d.got);
    st = s_begin(c, s_file, NULL, &d);
    CHECK(st == 200 && strcmp(d.format, "file") == 0 && d.last == S_FILE && d.span == atoi(S_CHUNK),
          "begin: %d, format %s, last %lld, span %lld", st, d.format, (long long)d.last,
          (long long)d.span);
    st = st == 200 ? s_rest(c, &d) : st;
    CHECK(st == 200 && odp_buf_size(d.got) == S_FILE &&
              memcmp(odp_buf_data(d.got), s_file_bytes, S_FILE) == 0,
          "file: %d, %zu bytes of %d, or not the pushed ones", st, odp_buf_size(d.got), S_FILE);
    CHECK(s_hash_ok(&d) && strcmp(d.served, s_file_sha) == 0, "served %s, pushed %s", d.served,
          s_file_sha);
    odp_buf_destroy(&d.got);
    odp_client_destroy(&c);
    char out[512], file[512], errp[512], tok[600], cmd[1400];
    snprintf(out, sizeof out, "%s/download-tool.out", h_var());
    snprintf(file, sizeof file, "%s/download-tool.bin", h_var());
    snprintf(errp, sizeof errp, "%s/log/download-tool.err", h_var());
    snprintf(tok, sizeof tok, "ODP_QUERY_TOKEN_FILE=%s/download-tool.token", h_var());
    snprintf(cmd, sizeof cmd, "'%s/odp-user' --json download --resource %s --out '%s'", h_bin(),
             s_file, file);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    const char *env[] = {tok, NULL};
    unlink(out);
    unlink(file);
    int rc = h_wait_exit(h_spawn(argv, env, out, errp), 30000);
    json_t *j = json_load_file(out, 0, NULL);
    const char *sha = json_string_value(json_object_get(j, "sha256"));
    size_t len = 0;
    unsigned char *got = malloc(S_FILE + 1);
    FILE *f = fopen(file, "rb");
    if (f) {
        len = fread(got, 1, S_FILE + 1, f);
        fclose(f);
    }
    CHECK(rc == 0 && sha && strcmp(sha, s_file_sha) == 0 && len == S_FILE &&
              memcmp(got, s_file_bytes, S_FILE) == 0,
          "odp-user exited %d, reported %s, wrote %zu bytes (see %s)", rc, sha ? sha : "-", len,
          errp);
    free(got);
    json_decref(j);
    free(s_file_bytes);
    s_file_bytes = NULL;
}

const h_case_t t_download_cases[] = {
    {"download: set-up (a dataset with awkward text and a file released)", s_setup},
    {"download: under full credit the bytes are PostgreSQL's COPY of the view; jsonl one "
     "object a row",
     s_whole},
    {"download: a chunk asked again restarts the stream there; the bytes and hash go on", s_resume},
    {"download: three downloads interleaved over two streams each restart where they stood",
     s_interleaved},
    {"download: a released file downloads byte-identical with its pushed hash, also through "
     "odp-user",
     s_file_download},
    {NULL, NULL}};
