/*  fuzz-seeds: starting inputs for the fuzz targets, and the codec's token dictionary.

    fuzz-seeds --dict FILE
        writes a libFuzzer dictionary: every declared field name and command as the
        msgpack string it travels as, so mutations speak the protocol's words.
    fuzz-seeds --corpus DIR [SAMPLES]
        writes DIR/codec, DIR/loader and DIR/dict seeds (seed-* files, overwritten):
        one valid body of every declared message; the hostile bodies of
        tests/unit/test_codec.c; the messy inputs of tests/unit/test_loader.c; and, when
        the samples directory is given, the head of every sample dataset under its own
        dictionary (GB18030 and JSON Lines included) and every sample dictionary as a
        dictionary.set body. The committed corpus was made this way; make fuzz does not
        regenerate it. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/codec.h"
#include "common/json.h"

#define S_REF(ident, cmd) &odp_def_##ident,
static const odp_msgdef_t *const s_defs[] = {ODP_REQUESTS(S_REF) ODP_EVENTS(S_REF)
                                                 ODP_REPLIES(S_REF)};
#undef S_REF
#define S_NDEFS (sizeof s_defs / sizeof s_defs[0])

typedef union {
#define S_MEMBER(ident, cmd) odp_##ident##_t ident;
    ODP_REQUESTS(S_MEMBER) ODP_EVENTS(S_MEMBER) ODP_REPLIES(S_MEMBER)
#undef S_MEMBER
} s_any_t;

static int s_write(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                   size_t blen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen)) {
        fprintf(stderr, "fuzz-seeds: cannot write %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f);
}

static void s_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/*  ---- codec ------------------------------------------------------------------------- */

/*  A value for f that its declaration accepts. */
static odp_val_t s_value(const odp_field_t *f)
{
    static const char text[] = "广东省政务数据 open data 2026-03-01 "
                               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    /*  [{"name": "字段", "type": "text"}]: a dictionary's fields, the richest ANY. */
    static const char any[] = "\x91\x82\xa4name\xa6\xe5\xad\x97\xe6\xae\xb5\xa4type\xa4text";
    static msgpack_object item = {.type = MSGPACK_OBJECT_STR,
                                  .via.str = {.size = 3, .ptr = "\xe7\x94\xb2"}};
    static msgpack_object list = {.type = MSGPACK_OBJECT_ARRAY,
                                  .via.array = {.size = 1, .ptr = &item}};
    size_t n = f->min > 0 ? (size_t)f->min : 4;
    if (f->max_len && n > f->max_len)
        n = f->max_len;
    odp_val_t v = {0};
    switch (f->type) {
    case ODP_T_STR:
        /*  Exact lengths in ASCII; otherwise some Chinese. */
        return f->min > 0 ? odp_v_strn(text + strlen("广东省政务数据 "), n)
                          : odp_v_strn(text, strlen("广东省"));
    case ODP_T_INT:
        return odp_v_int(f->min > 0 ? f->min : (f->max > 0 && f->max < 7 ? f->max : 7));
    case ODP_T_NUM:
        return odp_v_num(1.5);
    case ODP_T_BOOL:
        return odp_v_bool(true);
    case ODP_T_BIN:
        return odp_v_bin("\x00\x01\xff", 3);
    case ODP_T_STRS:
        v.present = true;
        v.obj = &list;
        return v;
    case ODP_T_ANY:
        return odp_v_raw(any, sizeof any - 1);
    }
    return v;
}

/*  One valid body of def: every field, else only the required ones. */
static int s_codec_valid(const char *dir, size_t idx)
{
    const odp_msgdef_t *def = s_defs[idx];
    for (int only_required = 0; only_required < 2; only_required++) {
        s_any_t msg;
        memset(&msg, 0, sizeof msg);
        for (size_t k = 0; k < def->nfields; k++) {
            const odp_field_t *f = &def->fields[k];
            if (!only_required || f->required)
                *(odp_val_t *)((char *)&msg + f->offset) = s_value(f);
        }
        msgpack_sbuffer body;
        int rc = odp_encode_buf(def, &msg, &body);
        if (rc == 0) {
            unsigned char sel = (unsigned char)idx;
            char name[96];
            snprintf(name, sizeof name, "%03zu-%s", idx, def->ident);
            rc = s_write(dir, name, &sel, 1, body.data, body.size);
        }
        msgpack_sbuffer_destroy(&body);
        if (rc == 0)
            return 0;
    }
    fprintf(stderr, "fuzz-seeds: no valid %s could be built\n", def->ident);
    return -1;
}

static size_t s_index(const odp_msgdef_t *def)
{
    for (size_t i = 0; i < S_NDEFS; i++)
        if (s_defs[i] == def)
            return i;
    return 0;
}

#define K_FROM                                                                                     \
    "\xa4"                                                                                         \
    "from"
#define K_CODE                                                                                     \
    "\xa4"                                                                                         \
    "code"
#define A4  "\x91\x91\x91\x91"
#define A16 A4 A4 A4 A4

static int s_codec(const char *dir)
{
    int rc = 0;
    for (size_t i = 0; i < S_NDEFS; i++)
        rc |= s_codec_valid(dir, i);
    /*  test_codec.c's hostile bodies, under department.add and events.replay. */
    static const struct {
        const char *name;
        const odp_msgdef_t *def;
        const char *body;
        size_t len;
    } hostile[] = {
#define B(s) s, sizeof(s) - 1
        {"str8-cut", &odp_def_department_add, B("\x81" K_CODE "\xd9\x09")},
        {"int32-cut", &odp_def_events_replay, B("\x81" K_FROM "\xd2\x00\x00")},
        {"float64-cut", &odp_def_events_replay, B("\x81" K_FROM "\xcb\x3f")},
        {"bin-short", &odp_def_department_add,
         B("\x81" K_CODE "\xc4\x09"
           "abc")},
        {"ext-cut", &odp_def_department_add,
         B("\x81" K_CODE "\xc7\x05\x01"
           "ab")},
        {"c1-key", &odp_def_events_replay, B("\x81\xc1\x01")},
        {"str32-4gb", &odp_def_department_add,
         B("\x81" K_CODE "\xdb\xff\xff\xff\xff"
           "abc")},
        {"trailing", &odp_def_events_replay,
         B("\x81" K_FROM "\x01"
           "\x00")},
        {"depth-16", &odp_def_events_replay, B(A16 "\xc0")},
        {"depth-17", &odp_def_events_replay, B(A16 "\x91\xc0")},
        {"array32-bomb", &odp_def_events_replay, B("\xdd\xff\xff\xff\xff")},
        {"map32-bomb", &odp_def_events_replay, B("\xdf\xff\xff\xff\xff")},
        {"bad-utf8", &odp_def_department_add,
         B("\x82" K_CODE "\xa9"
           "440300001"
           "\xa4"
           "name"
           "\xa2\xc0\xaf")},
        {"duplicate", &odp_def_events_replay, B("\x82" K_FROM "\x01" K_FROM "\x02")},
        {"unknown-field", &odp_def_events_replay, B("\x81\xa3zzz\x01")},
#undef B
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        unsigned char sel = (unsigned char)s_index(hostile[i].def);
        rc |= s_write(dir, hostile[i].name, &sel, 1, hostile[i].body, hostile[i].len);
    }
    return rc;
}

/*  ---- loader ------------------------------------------------------------------------ */

/*  flags: bit 0 jsonl, bit 1 gb18030, bits 2-3 row limit (3: 1 MiB), bits 4-7 chunking. */
static int s_loader_seed(const char *dir, const char *name, unsigned flags, const char *spec,
                         const char *data, size_t len)
{
    size_t slen = strlen(spec);
    char *head = malloc(slen + 2);
    if (!head)
        return -1;
    head[0] = (char)flags;
    memcpy(head + 1, spec, slen);
    head[slen + 1] = '\n';
    int rc = s_write(dir, name, head, slen + 2, data, len);
    free(head);
    return rc;
}

static int s_loader_inline(const char *dir)
{
    static const char abc[] = "a:x|b:i|c:x";
    static const char jsonl_cols[] = "name:x|n:i|amount:n|day:d|ok:b|at:s";
    static const struct {
        const char *name;
        unsigned flags;
        const char *spec;
        const char *data;
        size_t len;
    } seeds[] = {
#define D(s) s, sizeof(s) - 1
        {"crlf-bom", 0x2c, abc,
         D("\xef\xbb\xbf"
           "a,b,c\r\n1,2,x\r\n\r\n\n2,3,\r\n3, 4 ,\" y \"\r\n")},
        {"gb18030-bom", 0x2e, abc,
         D("\x84\x31\x95\x33"
           "a,b,c\r\n\xd6\xd0\xce\xc4,1,\x81\x30\x81\x30\r\n")},
        {"invalid-utf8", 0x1c, abc,
         D("a,b,c\nok,1,x\nbad \xff\xfe,2,x\ncut \xe4\xb8,3,x\n"
           "over\xc0\xaf,5,\"x\n\xed\xa0\x80\"\nfine,6,y\n")},
        {"nul", 0x3c, abc, D("a,b,c\nx\0y,1,z\n")},
        {"invalid-gb18030", 0x4e, abc,
         D("a,b,c\n\xd6\xd0\xce\xc4,1,x\n\xd6\xd0\xff,2,x\n"
           "\x81,3,x\n")},
        {"quotes-ragged", 0x5c, abc,
         D("c,a,b\n\"q,1\",\"he said \"\"hi\"\"\",2\n1,2\n1,2,3,4\n"
           "\"open,1,2\n")},
        {"row-length", 0x14, abc,
         D("a,b,c\nshort,1,x\n"
           "a much longer row than sixty four bytes, surely,2,"
           "padding padding padding\n")},
        {"header-mismatch", 0x0c, abc, D("a,b,d,d\n1,2,3,4\n")},
        {"types", 0x6c, "t:x|i:i|n:n|d:d|s:s|b:b",
         D("t,i,n,d,s,b\n文本,-9223372036854775808,+1.5e-3,2024-02-29,"
           "2023-01-01T10:00:00+08:00,是\nx,9223372036854775808,1e,2023-02-29,"
           "2023-01-01 25:00,maybe\n")},
        {"jsonl", 0x7d, jsonl_cols,
         D("{\"name\":\"甲\",\"n\":5,\"amount\":1.50,\"day\":\"2024-02-29\",\"ok\":true,"
           "\"at\":\"2023-01-01T10:00:00Z\"}\n[1,2]\n{\"name\":\"乙\",\"zz\":1}\n"
           "{\"name\":\"丙\",\"n\":\"five\"}\r\n\n   \r\nnot json\n{\"n\":12345678901234567890}\n"
           "{\"name\":\"a\",\"name\":\"b\"}\n{\"amount\":-1E+2,\"n\":1e3}")},
#undef D
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        rc |= s_loader_seed(dir, seeds[i].name, seeds[i].flags, seeds[i].spec, seeds[i].data,
                            seeds[i].len);
    return rc;
}

static char *s_read(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    if (data) {
        data[size] = '\0';
        *len = (size_t)size;
    }
    return data;
}

/*  The loader's dictionary line for a sample's dict.json. */
static int s_spec(const char *samples, const char *dict, char *spec, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", samples, dict);
    json_t *root = json_load_file(path, 0, NULL);
    json_t *fields = json_object_get(root, "fields");
    size_t i, used = 0;
    json_t *f;
    spec[0] = '\0';
    json_array_foreach(fields, i, f)
    {
        const char *type = json_string_value(json_object_get(f, "type"));
        const char *t = !type                            ? "x"
                        : strcmp(type, "integer") == 0   ? "i"
                        : strcmp(type, "numeric") == 0   ? "n"
                        : strcmp(type, "date") == 0      ? "d"
                        : strcmp(type, "timestamp") == 0 ? "s"
                        : strcmp(type, "boolean") == 0   ? "b"
                                                         : "x";
        used += (size_t)snprintf(spec + used, size - used, "%s%s:%s", i ? "|" : "",
                                 json_string_value(json_object_get(f, "name")), t);
    }
    json_decref(root);
    return used > 0 && used < size ? 0 : -1;
}

/*  The first lines of data (header included), as a length. */
static size_t s_head(const char *data, size_t len, int lines)
{
    size_t n = 0;
    while (n < len && lines > 0)
        if (data[n++] == '\n')
            lines--;
    return n;
}

static int s_loader_samples(const char *dir, const char *samples)
{
    static const char *const names[] = {"air_quality_daily", "key_enterprise_assets",
                                        "land_use_status", "medical_institutions"};
    int rc = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char file[128], spec[2048];
        size_t len;
        snprintf(file, sizeof file, "%s.dict.json", names[i]);
        if (s_spec(samples, file, spec, sizeof spec) < 0)
            return -1;
        snprintf(file, sizeof file, "%s.csv", names[i]);
        char *data = s_read(samples, file, &len);
        if (!data)
            return -1;
        rc |= s_loader_seed(dir, names[i], 0x1c, spec, data, s_head(data, len, 12));
        if (i == 0) {
            /*  The same rows as JSON Lines, keyed by the header. */
            json_t *out = json_array();
            char *line = strtok(data, "\n");
            char *header = line ? strdup(line) : NULL;
            char *buf = NULL;
            size_t blen = 0;
            FILE *mem = open_memstream(&buf, &blen);
            for (int r = 0; r < 6 && (line = strtok(NULL, "\n")); r++) {
                json_t *o = json_object();
                char *hs = strdup(header), *hsave = NULL, *vsave = NULL;
                char *h = strtok_r(hs, ",", &hsave), *v = strtok_r(line, ",", &vsave);
                for (; h && v; h = strtok_r(NULL, ",", &hsave), v = strtok_r(NULL, ",", &vsave))
                    json_object_set_new(o, h, json_string(v));
                char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
                fprintf(mem, "%s\n", text);
                free(text);
                json_decref(o);
                free(hs);
            }
            fclose(mem);
            rc |= s_loader_seed(dir, "air_quality_daily-jsonl", 0x2d, spec, buf, blen);
            free(buf);
            free(header);
            json_decref(out);
        }
        free(data);
    }
    char spec[2048];
    size_t len;
    char *messy = s_read(samples, "key_enterprise_assets.messy.gb18030.csv", &len);
    if (!messy || s_spec(samples, "key_enterprise_assets.dict.json", spec, sizeof spec) < 0)
        return -1;
    rc |= s_loader_seed(dir, "messy-gb18030", 0x3e, spec, messy, s_head(messy, len, 20));
    free(messy);
    return rc;
}

/*  ---- dictionaries ---------------------------------------------------------------------- */

/*  A dictionary.set body for fields (a JSON array text). */
static int s_dict_seed(const char *dir, const char *name, const char *table, const char *fields)
{
    json_t *j = json_loads(fields, 0, NULL);
    if (!j)
        return -1;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, table ? 3 : 2);
    s_pack_str(&pk, "resource");
    s_pack_str(&pk, "440300002-021-00001");
    if (table) {
        s_pack_str(&pk, "table");
        s_pack_str(&pk, table);
    }
    s_pack_str(&pk, "fields");
    odp_json_pack_renamed(&pk, j, "enum", "allowed");
    int rc = s_write(dir, name, buf.data, buf.size, NULL, 0);
    msgpack_sbuffer_destroy(&buf);
    json_decref(j);
    return rc;
}

static int s_dicts(const char *dir, const char *samples)
{
    static const struct {
        const char *name;
        const char *table;
        const char *fields;
    } seeds[] = {
        {"every-property", "main",
         "[{\"name\":\"代码\",\"type\":\"text\",\"length\":18,\"required\":true,\"unique\":true,"
         "\"pattern\":\"^[0-9A-HJ-NPQRTUWXY]{18}$\",\"check\":\"uscc\",\"description\":\"统一社会"
         "信用代码\"},{\"name\":\"级别\",\"type\":\"文本\",\"enum\":[\"一级\",\"二级\"]},"
         "{\"name\":\"金额\",\"type\":\"numeric\",\"min\":0,\"max\":1e9},"
         "{\"name\":\"日期\",\"type\":\"date\"},{\"name\":\"是否\",\"type\":\"boolean\"}]"},
        {"duplicate-name", NULL,
         "[{\"name\":\"a\",\"type\":\"text\"},{\"name\":\"a\",\"type\":"
         "\"integer\"}]"},
        {"bad-type", NULL, "[{\"name\":\"a\",\"type\":\"blob\"}]"},
        {"bad-pattern", NULL, "[{\"name\":\"a\",\"type\":\"text\",\"pattern\":\"([a-z\"}]"},
        {"min-on-text", "t_2", "[{\"name\":\"a\",\"type\":\"text\",\"min\":1}]"},
        {"min-over-max", NULL, "[{\"name\":\"a\",\"type\":\"integer\",\"min\":5,\"max\":1}]"},
        {"empty-allowed", NULL, "[{\"name\":\"a\",\"type\":\"text\",\"enum\":[]}]"},
        {"control-name", NULL, "[{\"name\":\"a\\u0001b\",\"type\":\"text\"}]"},
        {"bad-table", "Main", "[{\"name\":\"a\",\"type\":\"text\"}]"},
        {"not-a-map", NULL, "[1]"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        rc |= s_dict_seed(dir, seeds[i].name, seeds[i].table, seeds[i].fields);
    if (!samples)
        return rc;
    static const char *const names[] = {"air_quality_daily", "key_enterprise_assets",
                                        "land_use_status", "medical_institutions"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char file[128];
        size_t len;
        snprintf(file, sizeof file, "%s.dict.json", names[i]);
        char *text = s_read(samples, file, &len);
        json_t *root = text ? json_loads(text, 0, NULL) : NULL;
        char *fields = json_dumps(json_object_get(root, "fields"), JSON_COMPACT);
        rc |= fields ? s_dict_seed(dir, names[i], NULL, fields) : -1;
        free(fields);
        json_decref(root);
        free(text);
    }
    return rc;
}

/*  ---- the codec's dictionary ------------------------------------------------------------- */

static void s_token(FILE *f, const char *s)
{
    size_t n = strlen(s);
    if (n > 31)
        return;
    fprintf(f, "\"\\x%02x", 0xa0 | (unsigned)n);
    for (const char *p = s; *p; p++)
        fprintf(f, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    fprintf(f, "\"\n");
}

static int s_dict_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < S_NDEFS; i++) {
        if (s_defs[i]->name[0])
            s_token(f, s_defs[i]->name);
        for (size_t k = 0; k < s_defs[i]->nfields; k++)
            s_token(f, s_defs[i]->fields[k].name);
    }
    return fclose(f);
}

static int s_mkdir(const char *base, const char *sub, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", base, sub);
    if (mkdir(base, 0755) < 0 && errno != EEXIST)
        return -1;
    return mkdir(out, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--dict") == 0)
        return s_dict_file(argv[2]) == 0 ? 0 : 1;
    if ((argc != 3 && argc != 4) || strcmp(argv[1], "--corpus") != 0) {
        fprintf(stderr, "usage: fuzz-seeds --dict FILE | --corpus DIR [SAMPLES]\n");
        return 2;
    }
    const char *samples = argc == 4 ? argv[3] : NULL;
    char dir[1024];
    int rc = 0;
    rc |= s_mkdir(argv[2], "codec", dir, sizeof dir) || s_codec(dir);
    rc |= s_mkdir(argv[2], "loader", dir, sizeof dir) || s_loader_inline(dir) ||
          (samples && s_loader_samples(dir, samples));
    rc |= s_mkdir(argv[2], "dict", dir, sizeof dir) || s_dicts(dir, samples);
    return rc ? 1 : 0;
}
