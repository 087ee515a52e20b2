/*  test_loader: the registrar's loader on the sample datasets, on hostile and messy input,
    fed whole, in random chunks and resumed from a boundary.

    Build: cc -std=c11 -D_GNU_SOURCE -I. tests/unit/test_loader.c services/registrar/loader.c \
               common/codec.c common/buf.c common/parse.c \
               $(pkg-config --cflags --libs cmocka msgpack jansson) -lcsv -lm
    Run from the repository root; the samples are in $ODP_SAMPLES, else build/samples
    (made by `make` from tests/fixtures).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <csv.h>
#include <jansson.h>

#include "common/codec.h"
#include "services/registrar/loader.h"

#define MAX_ROW (1024 * 1024)

/*  ---------------------------------------------------------------------------------------
    Helpers                                                                              */

static void s_buf_add(odp_buf_t *buf, const char *data, size_t len)
{
    assert_int_equal(odp_buf_append(buf, data, len), 0);
}

static const char *s_samples(void)
{
    const char *dir = getenv("ODP_SAMPLES");
    return dir && *dir ? dir : "build/samples";
}

static char *s_read(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", s_samples(), name);
    FILE *file = fopen(path, "rb");
    if (!file)
        fail_msg("cannot open %s (set ODP_SAMPLES)", path);
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, file), (size_t)size);
    fclose(file);
    data[size] = '\0';
    *len = (size_t)size;
    return data;
}

//  A data dictionary: columns from <name>.dict.json
typedef struct {
    loader_col_t cols[64];
    char *names[64];
    size_t ncols;
} t_dict_t;

static void s_dict_load(t_dict_t *dict, const char *name)
{
    char file[256];
    snprintf(file, sizeof file, "%s.dict.json", name);
    size_t len;
    char *text = s_read(file, &len);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    assert_non_null(root);
    json_t *fields = json_object_get(root, "fields");
    assert_true(json_is_array(fields));
    memset(dict, 0, sizeof *dict);
    size_t i;
    json_t *field;
    json_array_foreach(fields, i, field)
    {
        assert_true(i < 64);
        const char *type = json_string_value(json_object_get(field, "type"));
        assert_non_null(type);
        loader_type_t t = LOADER_TEXT;
        if (strcmp(type, "integer") == 0)
            t = LOADER_INTEGER;
        else if (strcmp(type, "numeric") == 0)
            t = LOADER_NUMERIC;
        else if (strcmp(type, "date") == 0)
            t = LOADER_DATE;
        else if (strcmp(type, "timestamp") == 0)
            t = LOADER_TIMESTAMP;
        else if (strcmp(type, "boolean") == 0)
            t = LOADER_BOOLEAN;
        else
            assert_string_equal(type, "text");
        dict->names[i] = strdup(json_string_value(json_object_get(field, "name")));
        dict->cols[i].name = dict->names[i];
        dict->cols[i].type = t;
        dict->ncols = i + 1;
    }
    json_decref(root);
}

static void s_dict_free(t_dict_t *dict)
{
    for (size_t i = 0; i < dict->ncols; i++)
        free(dict->names[i]);
}

//  Everything one pass produced, drained after every call as the registrar does
typedef struct {
    odp_buf_t *staged;
    odp_buf_t *rejected;
    int rc;
    odp_error_t err;
    int64_t rows, rejects, boundary;
} t_run_t;

static void s_run_free(t_run_t *run)
{
    odp_buf_destroy(&run->staged);
    odp_buf_destroy(&run->rejected);
}

//  Feed data into loader, in one go (seed 0) or in chunks of 1..maxchunk bytes drawn
//  from seed; finish if asked. run->rc is the first failure, if any.
static void s_feed(loader_t *loader, const char *data, size_t len, uint32_t seed, size_t maxchunk,
                   bool finish, t_run_t *run)
{
    odp_buf_t *staged = odp_buf_new(), *rejected = odp_buf_new();
    if (!run->staged)
        run->staged = odp_buf_new();
    if (!run->rejected)
        run->rejected = odp_buf_new();
    uint32_t x = seed;
    size_t pos = 0;
    run->rc = 0;
    while (pos < len) {
        size_t n = len - pos;
        if (seed) {
            x = x * 1103515245u + 12345u;
            size_t chunk = 1 + (x >> 8) % maxchunk;
            if (chunk < n)
                n = chunk;
        }
        run->rc = loader_feed(loader, data + pos, n, staged, rejected, &run->err);
        s_buf_add(run->staged, odp_buf_data(staged), odp_buf_size(staged));
        s_buf_add(run->rejected, odp_buf_data(rejected), odp_buf_size(rejected));
        odp_buf_reset(staged);
        odp_buf_reset(rejected);
        if (run->rc)
            break;
        pos += n;
    }
    if (!run->rc && finish) {
        run->rc = loader_finish(loader, staged, rejected, &run->err);
        s_buf_add(run->staged, odp_buf_data(staged), odp_buf_size(staged));
        s_buf_add(run->rejected, odp_buf_data(rejected), odp_buf_size(rejected));
    }
    odp_buf_destroy(&staged);
    odp_buf_destroy(&rejected);
    run->rows = loader_rows(loader);
    run->rejects = loader_rejected(loader);
    run->boundary = loader_boundary(loader);
}

//  A whole pass over data with a fresh loader
static void s_pass(loader_format_t format, loader_encoding_t encoding, const loader_col_t *cols,
                   size_t ncols, size_t max_row, const char *data, size_t len, uint32_t seed,
                   size_t maxchunk, t_run_t *run)
{
    memset(run, 0, sizeof *run);
    loader_t *loader = loader_new(format, encoding, cols, ncols, max_row);
    assert_non_null(loader);
    s_feed(loader, data, len, seed, maxchunk, true, run);
    loader_destroy(&loader);
    assert_null(loader);
}

static size_t s_count(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == c;
    return n;
}

//  The line of a COPY buffer for row_no, or NULL; copied into line
static const char *s_row(odp_buf_t *buf, int64_t row_no, char *line, size_t size)
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%lld\t", (long long)row_no);
    const char *p = odp_buf_data(buf), *end = p + odp_buf_size(buf);
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n >= (size_t)plen && memcmp(p, prefix, (size_t)plen) == 0) {
            assert_true(n < size);
            memcpy(line, p, n);
            line[n] = '\0';
            return line;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

//  Field i (0: row_no) of a COPY line, copied into out
static const char *s_field(const char *line, size_t i, char *out, size_t size)
{
    const char *p = line;
    for (size_t k = 0; k < i; k++) {
        p = strchr(p, '\t');
        assert_non_null(p);
        p++;
    }
    const char *tab = strchr(p, '\t');
    size_t n = tab ? (size_t)(tab - p) : strlen(p);
    assert_true(n < size);
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/*  ---------------------------------------------------------------------------------------
    The clean samples                                                                    */

static void s_clean_sample(const char *name)
{
    t_dict_t dict;
    s_dict_load(&dict, name);
    char file[256];
    snprintf(file, sizeof file, "%s.csv", name);
    size_t len;
    char *data = s_read(file, &len);
    size_t lines = s_count(data, len, '\n');
    assert_true(lines > 1);

    t_run_t whole, chunked, tiny;
    s_pass(LOADER_CSV, LOADER_UTF8, dict.cols, dict.ncols, MAX_ROW, data, len, 0, 0, &whole);
    assert_int_equal(whole.rc, 0);
    assert_int_equal(whole.rows, (int64_t)lines - 1);
    assert_int_equal(whole.rejects, 0);
    assert_int_equal(odp_buf_size(whole.rejected), 0);
    assert_int_equal(whole.boundary, (int64_t)len);
    assert_int_equal(s_count(odp_buf_data(whole.staged), odp_buf_size(whole.staged), '\n'),
                     lines - 1);
    //  Every staged line: row_no, then one value per dictionary column
    assert_int_equal(s_count(odp_buf_data(whole.staged), odp_buf_size(whole.staged), '\t'),
                     (lines - 1) * dict.ncols);

    s_pass(LOADER_CSV, LOADER_UTF8, dict.cols, dict.ncols, MAX_ROW, data, len, 42, 4096, &chunked);
    assert_int_equal(chunked.rc, 0);
    assert_int_equal(odp_buf_size(chunked.staged), odp_buf_size(whole.staged));
    assert_memory_equal(odp_buf_data(chunked.staged), odp_buf_data(whole.staged),
                        odp_buf_size(whole.staged));
    s_pass(LOADER_CSV, LOADER_UTF8, dict.cols, dict.ncols, MAX_ROW, data, len, 7, 7, &tiny);
    assert_int_equal(tiny.rc, 0);
    assert_int_equal(odp_buf_size(tiny.staged), odp_buf_size(whole.staged));
    assert_memory_equal(odp_buf_data(tiny.staged), odp_buf_data(whole.staged),
                        odp_buf_size(whole.staged));

    s_run_free(&whole);
    s_run_free(&chunked);
    s_run_free(&tiny);
    free(data);
    s_dict_free(&dict);
}

static void test_sample_air_quality(void **state)
{
    (void)state;
    s_clean_sample("air_quality_daily");
    //  And the first row exactly as COPY will read it
    t_dict_t dict;
    s_dict_load(&dict, "air_quality_daily");
    size_t len;
    char *data = s_read("air_quality_daily.csv", &len);
    t_run_t run;
    s_pass(LOADER_CSV, LOADER_UTF8, dict.cols, dict.ncols, MAX_ROW, data, len, 0, 0, &run);
    const char *first = "1\t广雅中学\t2023-01-01\t79\t47\t71\tO3\t良\n";
    assert_true(odp_buf_size(run.staged) > strlen(first));
    assert_memory_equal(odp_buf_data(run.staged), first, strlen(first));
    s_run_free(&run);
    free(data);
    s_dict_free(&dict);
}

static void test_sample_key_enterprise_assets(void **state)
{
    (void)state;
    s_clean_sample("key_enterprise_assets");
}

static void test_sample_land_use_status(void **state)
{
    (void)state;
    s_clean_sample("land_use_status");
}

static void test_sample_medical_institutions(void **state)
{
    (void)state;
    s_clean_sample("medical_institutions");
}

/*  ---------------------------------------------------------------------------------------
    The messy GB18030 sample                                                             */

static void test_messy_gb18030(void **state)
{
    (void)state;
    t_dict_t dict;
    s_dict_load(&dict, "key_enterprise_assets");
    size_t len;
    char *data = s_read("key_enterprise_assets.messy.gb18030.csv", &len);
    char *expected_text = s_read("key_enterprise_assets.messy.expected.json", &(size_t){0});
    json_t *expected = json_loads(expected_text, 0, NULL);
    assert_non_null(expected);
    int64_t rows_sent = json_integer_value(json_object_get(expected, "rows_sent"));
    assert_int_equal(rows_sent, 300);

    t_run_t run;
    s_pass(LOADER_CSV, LOADER_GB18030, dict.cols, dict.ncols, MAX_ROW, data, len, 0, 0, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, rows_sent);
    assert_int_equal(run.rejects, 3);
    assert_int_equal(s_count(odp_buf_data(run.staged), odp_buf_size(run.staged), '\n'), 297);
    assert_int_equal(run.boundary, (int64_t)len);
    assert_true(odp_utf8_valid(odp_buf_data(run.staged), odp_buf_size(run.staged)));
    assert_true(odp_utf8_valid(odp_buf_data(run.rejected), odp_buf_size(run.rejected)));

    //  Exactly rows 12 (type), 13 and 14 (ragged), in that order
    char line[4096], field[1024];
    assert_int_equal(s_count(odp_buf_data(run.rejected), odp_buf_size(run.rejected), '\n'), 3);
    const char *reasons[] = {"12\ttype\t", "13\tragged\t", "14\tragged\t"};
    const char *p = odp_buf_data(run.rejected);
    for (size_t i = 0; i < 3; i++) {
        assert_memory_equal(p, reasons[i], strlen(reasons[i]));
        p = strchr(p, '\n') + 1;
    }
    assert_non_null(s_row(run.rejected, 12, line, sizeof line));
    s_field(line, 2, field, sizeof field);
    assert_non_null(strstr(field, "资产总额_万元"));
    assert_non_null(strstr(field, "\"N/A\""));
    s_field(line, 3, field, sizeof field);
    assert_string_equal(field, "914412006N3473ECFA,肇庆鹏城南粤实业有限公司,肇庆市,"
                               "信息传输、软件和信息技术服务业,N/A,61957.11,10669,2022");
    assert_non_null(s_row(run.rejected, 13, line, sizeof line));
    assert_string_equal(s_field(line, 2, field, sizeof field), "5 fields, expected 8");
    assert_non_null(s_row(run.rejected, 14, line, sizeof line));
    assert_string_equal(s_field(line, 2, field, sizeof field), "9 fields, expected 8");
    for (int64_t r = 12; r <= 14; r++)
        assert_null(s_row(run.staged, r, line, sizeof line));

    //  Row 4: a quoted comma, quotes and a newline, staged with the newline escaped
    assert_non_null(s_row(run.staged, 4, line, sizeof line));
    assert_string_equal(line, "4\t91445100FBAR3Y099N\t广州“联合”实业有限公司, 第一分公司\\n(筹)"
                              "\t潮州市\t批发和零售业\t61006.05\t57604.24\t14813\t2023");
    //  The reviewer's rows are staged: check digit, empty required, duplicate, range, enum
    assert_non_null(s_row(run.staged, 11, line, sizeof line));
    assert_non_null(s_row(run.staged, 15, line, sizeof line));
    assert_string_equal(s_field(line, 1, field, sizeof field), "\\N");
    assert_non_null(s_row(run.staged, 16, line, sizeof line));
    assert_non_null(s_row(run.staged, 17, line, sizeof line));
    assert_non_null(s_row(run.staged, 18, line, sizeof line));
    assert_string_equal(s_field(line, 8, field, sizeof field), "1899");
    assert_non_null(s_row(run.staged, 19, line, sizeof line));
    assert_string_equal(s_field(line, 3, field, sizeof field), "香港");
    assert_non_null(s_row(run.staged, 300, line, sizeof line));
    //  CR LF never leaks into the last column
    assert_null(strstr(odp_buf_data(run.staged), "\\r"));

    //  Random chunks cut GB18030 characters and CR LF pairs: same output
    for (uint32_t seed = 1; seed <= 5; seed++) {
        t_run_t chunked;
        s_pass(LOADER_CSV, LOADER_GB18030, dict.cols, dict.ncols, MAX_ROW, data, len, seed,
               seed == 1 ? 3 : 4096, &chunked);
        assert_int_equal(chunked.rc, 0);
        assert_int_equal(odp_buf_size(chunked.staged), odp_buf_size(run.staged));
        assert_memory_equal(odp_buf_data(chunked.staged), odp_buf_data(run.staged),
                            odp_buf_size(run.staged));
        assert_int_equal(odp_buf_size(chunked.rejected), odp_buf_size(run.rejected));
        assert_memory_equal(odp_buf_data(chunked.rejected), odp_buf_data(run.rejected),
                            odp_buf_size(run.rejected));
        s_run_free(&chunked);
    }

    s_run_free(&run);
    json_decref(expected);
    free(expected_text);
    free(data);
    s_dict_free(&dict);
}

/*  ---------------------------------------------------------------------------------------
    Resume                                                                               */

//  Interrupt after cut bytes, resume from the boundary in a new loader: the two halves
//  together must be exactly the single pass
static void s_resume_at(const t_dict_t *dict, loader_format_t format, loader_encoding_t encoding,
                        const char *data, size_t len, size_t cut, uint32_t seed,
                        const t_run_t *single)
{
    t_run_t first = {0}, second = {0};
    loader_t *a = loader_new(format, encoding, dict->cols, dict->ncols, MAX_ROW);
    assert_non_null(a);
    s_feed(a, data, cut, seed, 1000, false, &first);
    assert_int_equal(first.rc, 0);
    int64_t boundary = loader_boundary(a);
    assert_true(boundary >= 0 && boundary <= (int64_t)cut);
    size_t ncolmap = 0;
    const int *colmap = loader_colmap(a, &ncolmap);
    int saved[64];
    if (colmap) {
        assert_int_equal(ncolmap, dict->ncols);
        memcpy(saved, colmap, ncolmap * sizeof(int));
    } else if (format == LOADER_CSV)
        assert_int_equal(boundary, 0);
    loader_destroy(&a);

    loader_t *b = loader_new(format, encoding, dict->cols, dict->ncols, MAX_ROW);
    assert_non_null(b);
    assert_int_equal(loader_resume(b, boundary, first.rows, first.rejects, colmap ? saved : NULL,
                                   colmap ? ncolmap : 0),
                     0);
    s_feed(b, data + boundary, len - (size_t)boundary, seed + 1, 1000, true, &second);
    assert_int_equal(second.rc, 0);
    assert_int_equal(second.rows, single->rows);
    assert_int_equal(second.rejects, single->rejects);
    assert_int_equal(second.boundary, (int64_t)len);
    loader_destroy(&b);

    s_buf_add(first.staged, odp_buf_data(second.staged), odp_buf_size(second.staged));
    s_buf_add(first.rejected, odp_buf_data(second.rejected), odp_buf_size(second.rejected));
    assert_int_equal(odp_buf_size(first.staged), odp_buf_size(single->staged));
    assert_memory_equal(odp_buf_data(first.staged), odp_buf_data(single->staged),
                        odp_buf_size(single->staged));
    assert_int_equal(odp_buf_size(first.rejected), odp_buf_size(single->rejected));
    assert_memory_equal(odp_buf_data(first.rejected), odp_buf_data(single->rejected),
                        odp_buf_size(single->rejected));
    s_run_free(&first);
    s_run_free(&second);
}

static void test_resume_exactly_once(void **state)
{
    (void)state;
    t_dict_t dict;
    s_dict_load(&dict, "key_enterprise_assets");
    size_t len;
    char *data = s_read("key_enterprise_assets.messy.gb18030.csv", &len);
    t_run_t single;
    s_pass(LOADER_CSV, LOADER_GB18030, dict.cols, dict.ncols, MAX_ROW, data, len, 0, 0, &single);
    assert_int_equal(single.rc, 0);

    //  Inside the header, inside row 4's quoted newline, inside a GB18030 character, ...
    const char *row4 = strstr(data, "91445100FBAR3Y099N");
    assert_non_null(row4);
    size_t in_row4 = (size_t)(strchr(row4, '\n') - data) + 2;
    size_t cuts[] = {0,    5,    80,   150,     in_row4 - 3, in_row4, in_row4 + 1, 1001,
                     1234, 4097, 9999, len / 2, len - 40,    len - 1, len};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        s_resume_at(&dict, LOADER_CSV, LOADER_GB18030, data, len, cuts[i], (uint32_t)i + 1,
                    &single);
    for (size_t cut = 7; cut < len; cut += 613)
        s_resume_at(&dict, LOADER_CSV, LOADER_GB18030, data, len, cut, (uint32_t)cut, &single);

    //  A resume from state no boundary can have is refused
    loader_t *bad = loader_new(LOADER_CSV, LOADER_GB18030, dict.cols, dict.ncols, MAX_ROW);
    int dup[8] = {0, 0, 1, 2, 3, 4, 5, 6};
    assert_int_equal(loader_resume(bad, 100, 0, 0, dup, 8), -1);     //  not a mapping
    assert_int_equal(loader_resume(bad, 100, 0, 0, NULL, 0), -1);    //  no header
    assert_int_equal(loader_resume(bad, 100, 1, 2, dup + 1, 7), -1); //  short, bad counts
    assert_int_equal(loader_resume(bad, -1, 0, 0, NULL, 0), -1);
    loader_destroy(&bad);

    s_run_free(&single);
    free(data);
    s_dict_free(&dict);
}

/*  ---------------------------------------------------------------------------------------
    Small inputs                                                                         */

static const loader_col_t s_abc[] = {{"a", LOADER_TEXT}, {"b", LOADER_INTEGER}, {"c", LOADER_TEXT}};

static void s_small(const char *text, size_t max_row, t_run_t *run)
{
    s_pass(LOADER_CSV, LOADER_UTF8, s_abc, 3, max_row, text, strlen(text), 0, 0, run);
    //  Byte by byte gives the same, and so the same failure
    t_run_t bytes;
    s_pass(LOADER_CSV, LOADER_UTF8, s_abc, 3, max_row, text, strlen(text), 99, 1, &bytes);
    assert_int_equal(bytes.rc, run->rc);
    assert_string_equal(odp_buf_data(bytes.staged), odp_buf_data(run->staged));
    assert_string_equal(odp_buf_data(bytes.rejected), odp_buf_data(run->rejected));
    s_run_free(&bytes);
}

static void test_header(void **state)
{
    (void)state;
    t_run_t run;
    //  Any order, surrounding whitespace, a quoted name: staged in dictionary order
    s_small(" c ,\"b\",a\nz,1,x\n", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_string_equal(odp_buf_data(run.staged), "1\tx\t1\tz\n");
    s_run_free(&run);
    loader_t *loader = loader_new(LOADER_CSV, LOADER_UTF8, s_abc, 3, MAX_ROW);
    size_t n = 99;
    assert_null(loader_colmap(loader, &n));
    assert_int_equal(n, 0);
    odp_buf_t *staged = odp_buf_new(), *rejected = odp_buf_new();
    odp_error_t err;
    assert_int_equal(loader_feed(loader, "c,b,a\n", 6, staged, rejected, &err), 0);
    const int *colmap = loader_colmap(loader, &n);
    assert_non_null(colmap);
    assert_int_equal(n, 3);
    assert_int_equal(colmap[0], 2);
    assert_int_equal(colmap[1], 1);
    assert_int_equal(colmap[2], 0);
    assert_int_equal(loader_boundary(loader), 6);
    loader_destroy(&loader);
    odp_buf_destroy(&staged);
    odp_buf_destroy(&rejected);

    //  A column not in the dictionary, and one missing
    s_small("a,b,x\n1,2,3\n", MAX_ROW, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_HEADER_MISMATCH);
    assert_non_null(strstr(run.err.message, "x"));
    assert_non_null(strstr(run.err.message, "missing: c"));
    assert_int_equal(odp_buf_size(run.staged), 0);
    s_run_free(&run);
    s_small("a,b\n1,2\n", MAX_ROW, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_HEADER_MISMATCH);
    assert_non_null(strstr(run.err.message, "missing: c"));
    s_run_free(&run);
    s_small("a,b,c,a\n", MAX_ROW, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_HEADER_MISMATCH);
    s_run_free(&run);
    //  Blank lines after the last row: after finish the boundary is the end of the stream
    s_small("a,b,c\n1,2,3\n\r\n\n", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.boundary, 15);
    s_run_free(&run);
    //  No header at all, or only blank lines
    s_small("", MAX_ROW, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_HEADER_MISMATCH);
    s_run_free(&run);
    s_small("\n\r\n", MAX_ROW, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_HEADER_MISMATCH);
    s_run_free(&run);
    //  Only a header: no rows, fine
    s_small("a,b,c", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 0);
    s_run_free(&run);
}

static void test_crlf_bom_blank_lines(void **state)
{
    (void)state;
    t_run_t run;
    s_small("\xef\xbb\xbf"
            "a,b,c\r\n1,2,x\r\n\r\n\n2,3,\r\n3, 4 ,\" y \"\r\n",
            MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 3);
    assert_string_equal(odp_buf_data(run.staged), "1\t1\t2\tx\n2\t2\t3\t\\N\n3\t3\t4\t y \n");
    s_run_free(&run);

    //  GB18030's BOM is U+FEFF too
    const char gb[] = "\x84\x31\x95\x33"
                      "a,b,c\r\n\xd6\xd0\xce\xc4,1,\x81\x30\x81\x30\r\n";
    s_pass(LOADER_CSV, LOADER_GB18030, s_abc, 3, MAX_ROW, gb, sizeof gb - 1, 0, 0, &run);
    assert_int_equal(run.rc, 0);
    assert_string_equal(odp_buf_data(run.staged),
                        "1\t中文\t1\t\xc2\x80\n"); //  81 30 81 30 is U+0080
    s_run_free(&run);
    //  A BOM later in the stream is data
    s_small("a,b,c\n\xef\xbb\xbfq,1,\n", MAX_ROW, &run);
    assert_string_equal(odp_buf_data(run.staged), "1\t\xef\xbb\xbfq\t1\t\\N\n");
    s_run_free(&run);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    t_run_t run;
    s_small("a,b,c\n"
            "ok,1,x\n"
            "bad \xff\xfe,2,x\n"
            "cut \xe4\xb8,3,x\n"
            "nul \x01,4,x\n"
            "over\xc0\xaf,5,\"x\n\xed\xa0\x80\"\n" //  overlong, then a surrogate in a quoted line
            "fine,6,y\n",
            MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 6);
    assert_int_equal(run.rejects, 3);
    assert_string_equal(odp_buf_data(run.staged),
                        "1\tok\t1\tx\n4\tnul \x01\t4\tx\n6\tfine\t6\ty\n");
    assert_true(odp_utf8_valid(odp_buf_data(run.rejected), odp_buf_size(run.rejected)));
    char line[512], field[256];
    assert_non_null(s_row(run.rejected, 2, line, sizeof line));
    assert_string_equal(s_field(line, 1, field, sizeof field), "encoding");
    assert_non_null(strstr(s_field(line, 2, field, sizeof field), "byte offset 17"));
    assert_string_equal(s_field(line, 3, field, sizeof field), "bad \xef\xbf\xbd\xef\xbf\xbd,2,x");
    assert_non_null(s_row(run.rejected, 3, line, sizeof line));
    assert_string_equal(s_field(line, 3, field, sizeof field), "cut \xef\xbf\xbd,3,x");
    assert_non_null(s_row(run.rejected, 5, line, sizeof line));
    assert_string_equal(s_field(line, 1, field, sizeof field), "encoding");
    assert_string_equal(
        s_field(line, 3, field, sizeof field),
        "over\xef\xbf\xbd\xef\xbf\xbd,5,\"x\\n\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    s_run_free(&run);

    //  NUL cannot go into PostgreSQL text
    const char nul[] = "a,b,c\nx\0y,1,z\n";
    s_pass(LOADER_CSV, LOADER_UTF8, s_abc, 3, MAX_ROW, nul, sizeof nul - 1, 0, 0, &run);
    assert_int_equal(run.rejects, 1);
    assert_non_null(strstr(odp_buf_data(run.rejected), "\tencoding\t"));
    assert_non_null(strstr(odp_buf_data(run.rejected), "x\xef\xbf\xbdy,1,z\n"));
    s_run_free(&run);
}

static void test_invalid_gb18030(void **state)
{
    (void)state;
    //  中文 is D6D0 CEC4; FF is never valid, 81 followed by a comma is a cut character
    const char gb[] = "a,b,c\n"
                      "\xd6\xd0\xce\xc4,1,x\n"
                      "\xd6\xd0\xff,2,x\n"
                      "\xd6\xd0\x81,3,x\n"
                      "\xce\xc4,4,\x81\n"
                      "\xce\xc4,5,y";
    t_run_t run;
    s_pass(LOADER_CSV, LOADER_GB18030, s_abc, 3, MAX_ROW, gb, sizeof gb - 1, 0, 0, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 5);
    assert_int_equal(run.rejects, 3);
    assert_string_equal(odp_buf_data(run.staged), "1\t中文\t1\tx\n5\t文\t5\ty\n");
    assert_true(odp_utf8_valid(odp_buf_data(run.rejected), odp_buf_size(run.rejected)));
    char line[512], field[256];
    assert_non_null(s_row(run.rejected, 2, line, sizeof line));
    assert_string_equal(s_field(line, 1, field, sizeof field), "encoding");
    assert_non_null(strstr(s_field(line, 2, field, sizeof field), "GB18030"));
    assert_non_null(strstr(field, "byte offset 17"));
    assert_string_equal(s_field(line, 3, field, sizeof field), "中\xef\xbf\xbd,2,x");
    assert_non_null(s_row(run.rejected, 3, line, sizeof line));
    assert_string_equal(s_field(line, 3, field, sizeof field), "中\xef\xbf\xbd,3,x");
    assert_non_null(s_row(run.rejected, 4, line, sizeof line));
    assert_string_equal(s_field(line, 3, field, sizeof field), "文,4,\xef\xbf\xbd");
    s_run_free(&run);
}

static void test_row_length(void **state)
{
    (void)state;
    t_run_t run;
    //  "1,2,xxxxxx" is 10 bytes: fits 10, not 9 (the line end does not count)
    s_small("a,b,c\r\n1,2,xxxxxx\r\n", 10, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 1);
    s_run_free(&run);
    s_small("a,b,c\r\n1,2,xxxxxx\r\n", 9, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_RULE_ROW_LENGTH);
    assert_non_null(strstr(run.err.message, "row 1 "));
    assert_non_null(strstr(run.err.message, "9 bytes"));
    s_run_free(&run);
    //  A quoted field spanning lines counts as one row
    s_small("a,b,c\n1,2,x\n2,3,\"xx\nxx\nxx\"\n", 10, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_RULE_ROW_LENGTH);
    assert_int_equal(run.rows, 1);
    assert_non_null(strstr(run.err.message, "row 2 "));
    s_run_free(&run);
    //  A header that never ends
    s_small("a,b,c,ddddddddddddddddddddd", 10, &run);
    assert_int_equal(run.rc, -1);
    assert_int_equal(run.err.code, ODP_E_RULE_ROW_LENGTH);
    s_run_free(&run);

    //  Caught as bytes arrive: a 1 MB line fails long before it ends, and the loader
    //  stays failed
    loader_t *loader = loader_new(LOADER_CSV, LOADER_UTF8, s_abc, 3, 4096);
    odp_buf_t *staged = odp_buf_new(), *rejected = odp_buf_new();
    odp_error_t err;
    assert_int_equal(loader_feed(loader, "a,b,c\n", 6, staged, rejected, &err), 0);
    char chunk[1024];
    memset(chunk, 'x', sizeof chunk);
    int rc = 0;
    size_t fed = 0;
    while (!rc && fed < 1024 * 1024) {
        rc = loader_feed(loader, chunk, sizeof chunk, staged, rejected, &err);
        fed += sizeof chunk;
    }
    assert_int_equal(rc, -1);
    assert_int_equal(err.code, ODP_E_RULE_ROW_LENGTH);
    assert_true(fed <= 5 * 1024);
    assert_int_equal(loader_feed(loader, "\n", 1, staged, rejected, &err), -1);
    loader_destroy(&loader);
    odp_buf_destroy(&staged);
    odp_buf_destroy(&rejected);
}

static void test_escaping(void **state)
{
    (void)state;
    t_run_t run;
    s_small("a,b,c\n"
            "\"tab\there\",1,back\\slash\n"
            "\"cr\rin\",2,\"lf\nin\"\n"
            "\"crlf\r\nin\",3,\\N\n"
            "\"quote \"\"x\"\" comma, \",4,.\n"
            "\"t\tab\",x,\"ba\\ck\"\n",
            MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_string_equal(odp_buf_data(run.staged), "1\ttab\\there\t1\tback\\\\slash\n"
                                                  "2\tcr\\rin\t2\tlf\\nin\n"
                                                  "3\tcrlf\\r\\nin\t3\t\\\\N\n"
                                                  "4\tquote \"x\" comma, \t4\t.\n");
    //  Rejected raw text is escaped the same way
    assert_string_equal(odp_buf_data(run.rejected),
                        "5\ttype\tcolumn \"b\": \"x\" is not an integer\t"
                        "\"t\\tab\",x,\"ba\\\\ck\"\n");
    s_run_free(&run);
}

static void test_final_row_without_newline(void **state)
{
    (void)state;
    t_run_t run;
    s_small("a,b,c\n1,2,x\n2,3,y", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 2);
    assert_int_equal(run.boundary, 17);
    assert_string_equal(odp_buf_data(run.staged), "1\t1\t2\tx\n2\t2\t3\ty\n");
    s_run_free(&run);
    s_small("a,b,c\n1,2,\"x\"\r", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_string_equal(odp_buf_data(run.staged), "1\t1\t2\tx\n");
    s_run_free(&run);
    //  Before finish, the last row is not counted: it may still go on
    loader_t *loader = loader_new(LOADER_CSV, LOADER_UTF8, s_abc, 3, MAX_ROW);
    odp_buf_t *staged = odp_buf_new(), *rejected = odp_buf_new();
    odp_error_t err;
    assert_int_equal(loader_feed(loader, "a,b,c\n1,2,x", 11, staged, rejected, &err), 0);
    assert_int_equal(loader_rows(loader), 0);
    assert_int_equal(loader_boundary(loader), 6);
    assert_int_equal(loader_finish(loader, staged, rejected, &err), 0);
    assert_int_equal(loader_rows(loader), 1);
    assert_int_equal(loader_boundary(loader), 11);
    loader_destroy(&loader);
    odp_buf_destroy(&staged);
    odp_buf_destroy(&rejected);
}

static void test_unterminated_quote(void **state)
{
    (void)state;
    t_run_t run;
    s_small("a,b,c\n1,2,x\n2,3,\"open\nstill open\n", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 2);
    assert_int_equal(run.rejects, 1);
    assert_string_equal(odp_buf_data(run.staged), "1\t1\t2\tx\n");
    assert_string_equal(odp_buf_data(run.rejected),
                        "2\tragged\tunterminated quoted field\t2,3,\"open\\nstill open\n");
    s_run_free(&run);
    s_small("a,b,c\n1,2,\"x", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_string_equal(odp_buf_data(run.rejected),
                        "1\tragged\tunterminated quoted field\t1,2,\"x\n");
    s_run_free(&run);
}

static void test_ragged(void **state)
{
    (void)state;
    t_run_t run;
    s_small("a,b,c\n1,2\n1,2,3,4\n,,\n", MAX_ROW, &run);
    assert_int_equal(run.rc, 0);
    assert_string_equal(odp_buf_data(run.rejected), "1\tragged\t2 fields, expected 3\t1,2\n"
                                                    "2\tragged\t4 fields, expected 3\t1,2,3,4\n");
    assert_string_equal(odp_buf_data(run.staged), "3\t\\N\t\\N\t\\N\n");
    s_run_free(&run);
}

/*  ---------------------------------------------------------------------------------------
    Against libcsv itself: lines without quotes, and lines whose quoted fields close on
    the same line right before a comma or the line end, take a shortcut past libcsv, which
    must give exactly what libcsv gives with the loader's options (LF ends a record, CR is
    trimmed from field edges).                                                           */

typedef struct {
    odp_buf_t *staged;
    odp_buf_t *ragged; //  "row_no\n" per ragged row
    odp_buf_t *fields;
    size_t off[16];
    size_t len[16];
    size_t n;
    int64_t row;
    bool header;
} t_ref_t;

static int s_is_cr(unsigned char c)
{
    return c == '\r';
}

static int s_is_lf(unsigned char c)
{
    return c == '\n';
}

static void s_ref_field(void *s, size_t len, void *arg)
{
    t_ref_t *ref = arg;
    if (ref->n < 16) {
        ref->off[ref->n] = odp_buf_size(ref->fields);
        ref->len[ref->n] = len;
        s_buf_add(ref->fields, s, len);
    }
    ref->n++;
}

static void s_ref_row(int term, void *arg)
{
    (void)term;
    t_ref_t *ref = arg;
    char num[32];
    if (!ref->header)
        ref->header = true;
    else if (ref->n != 3) {
        snprintf(num, sizeof num, "%lld\n", (long long)++ref->row);
        s_buf_add(ref->ragged, num, strlen(num));
    } else {
        snprintf(num, sizeof num, "%lld", (long long)++ref->row);
        s_buf_add(ref->staged, num, strlen(num));
        for (size_t i = 0; i < 3; i++) {
            s_buf_add(ref->staged, "\t", 1);
            if (!ref->len[i])
                s_buf_add(ref->staged, "\\N", 2);
            for (size_t k = 0; k < ref->len[i]; k++) {
                char c = odp_buf_data(ref->fields)[ref->off[i] + k];
                const char *esc = c == '\t'   ? "\\t"
                                  : c == '\n' ? "\\n"
                                  : c == '\r' ? "\\r"
                                  : c == '\\' ? "\\\\"
                                              : NULL;
                s_buf_add(ref->staged, esc ? esc : &c, esc ? 2 : 1);
            }
        }
        s_buf_add(ref->staged, "\n", 1);
    }
    ref->n = 0;
    odp_buf_reset(ref->fields);
}

static void test_plain_lines_match_libcsv(void **state)
{
    (void)state;
    static const char *unquoted[] = {"a", "b", " ", "\t", "\\", "\r", "中", "x\"y", "\\N"};
    static const char *quoted[] = {"a", ",", "\n", "\r", " ", "\t", "\\", "\"\"", "\r\n"};
    odp_buf_t *input = odp_buf_new();
    s_buf_add(input, "c0,c1,c2\n", 9);
    uint32_t x = 2024;
#define NEXT(n) ((x = x * 1103515245u + 12345u), (x >> 8) % (n))
    for (int row = 0; row < 5000; row++) {
        if (NEXT(20) == 0) { //  a blank line, maybe with a CR
            if (NEXT(2))
                s_buf_add(input, "\r", 1);
            s_buf_add(input, "\n", 1);
        }
        static const size_t counts[] = {2, 3, 3, 3, 3, 3, 3, 4};
        size_t nfields = counts[NEXT(8)];
        for (size_t f = 0; f < nfields; f++) {
            if (f)
                s_buf_add(input, ",", 1);
            size_t len = NEXT(6);
            bool q = NEXT(4) == 0;
            if (q)
                s_buf_add(input, "\"", 1);
            for (size_t k = 0; k < len; k++) {
                const char *piece = q ? quoted[NEXT(9)] : unquoted[NEXT(9)];
                //  A quote may not open an unquoted field; stray ones elsewhere are rare
                if (!q && (k == 0 || NEXT(8)) && strchr(piece, '"'))
                    piece = "a";
                s_buf_add(input, piece, strlen(piece));
            }
            if (q)
                s_buf_add(input, "\"", 1);
            //  Now and then something after the closing quote: libcsv's to read
            if (q && NEXT(16) == 0)
                s_buf_add(input, NEXT(2) ? "x" : "\r", 1);
        }
        if (NEXT(3) == 0)
            s_buf_add(input, "\r", 1);
        s_buf_add(input, "\n", 1);
    }
#undef NEXT
    t_ref_t ref;
    memset(&ref, 0, sizeof ref);
    ref.staged = odp_buf_new();
    ref.ragged = odp_buf_new();
    ref.fields = odp_buf_new();
    struct csv_parser csv;
    csv_init(&csv, 0);
    csv_set_space_func(&csv, s_is_cr);
    csv_set_term_func(&csv, s_is_lf);
    assert_int_equal(
        csv_parse(&csv, odp_buf_data(input), odp_buf_size(input), s_ref_field, s_ref_row, &ref),
        odp_buf_size(input));
    csv_fini(&csv, s_ref_field, s_ref_row, &ref);
    csv_free(&csv);
    assert_true(ref.row > 4000);

    const loader_col_t cols[] = {{"c0", LOADER_TEXT}, {"c1", LOADER_TEXT}, {"c2", LOADER_TEXT}};
    for (uint32_t seed = 0; seed < 3; seed++) {
        t_run_t run;
        s_pass(LOADER_CSV, LOADER_UTF8, cols, 3, MAX_ROW, odp_buf_data(input), odp_buf_size(input),
               seed, 64, &run);
        assert_int_equal(run.rc, 0);
        assert_int_equal(run.rows, ref.row);
        assert_int_equal(odp_buf_size(run.staged), odp_buf_size(ref.staged));
        assert_memory_equal(odp_buf_data(run.staged), odp_buf_data(ref.staged),
                            odp_buf_size(ref.staged));
        //  The same rows are ragged
        odp_buf_t *rows = odp_buf_new();
        for (const char *p = odp_buf_data(run.rejected); *p; p = strchr(p, '\n') + 1) {
            const char *tab = strchr(p, '\t');
            s_buf_add(rows, p, (size_t)(tab - p));
            s_buf_add(rows, "\n", 1);
            assert_memory_equal(tab, "\tragged\t", 8);
        }
        assert_string_equal(odp_buf_data(rows), odp_buf_data(ref.ragged));
        odp_buf_destroy(&rows);
        s_run_free(&run);
    }
    odp_buf_destroy(&ref.staged);
    odp_buf_destroy(&ref.ragged);
    odp_buf_destroy(&ref.fields);
    odp_buf_destroy(&input);
}

/*  ---------------------------------------------------------------------------------------
    Byte soup: whatever arrives, every row lands exactly once in valid COPY text, and
    chunking or resuming changes nothing.                                                */

static void s_check_copy(odp_buf_t *buf, size_t tabs)
{
    assert_true(odp_utf8_valid(odp_buf_data(buf), odp_buf_size(buf)));
    const char *p = odp_buf_data(buf), *end = p + odp_buf_size(buf);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        assert_int_equal(s_count(p, (size_t)(nl - p), '\t'), tabs);
        p = nl + 1;
    }
}

static void s_soup(loader_encoding_t encoding, uint32_t seed)
{
    static const char *utf8[] = {
        ",",  ",", "\"", "\n",         "\r\n", "a",        "中", "\xff", "\\",
        "\t", "1", "-7", "2024-02-29", "\r",   "\xe4\xb8", " ",  "\"\"", "\nok,5,2023-01-01\r\n"};
    static const char *gb[] = {",",          ",",    "\"",   "\n", "\r\n", "a",
                               "\xd6\xd0",   "\xff", "\\",   "\t", "1",    "-7",
                               "2024-02-29", "\r",   "\x81", " ",  "\"\"", "\nok,5,2023-01-01\r\n"};
    const char **pieces = encoding == LOADER_UTF8 ? utf8 : gb;
    const loader_col_t cols[] = {{"t", LOADER_TEXT}, {"i", LOADER_INTEGER}, {"d", LOADER_DATE}};
    uint32_t x = seed;
#define NEXT(n) ((x = x * 1103515245u + 12345u), (x >> 8) % (n))
    odp_buf_t *input = odp_buf_new();
    s_buf_add(input, "t,i,d\r\n", 8);
    size_t npieces = 200 + NEXT(2000);
    for (size_t k = 0; k < npieces; k++) {
        const char *piece = pieces[NEXT(18)];
        s_buf_add(input, piece, strlen(piece));
    }
    size_t max_row = NEXT(4) ? MAX_ROW : 40 + NEXT(200);

    t_run_t whole, chunked;
    s_pass(LOADER_CSV, encoding, cols, 3, max_row, odp_buf_data(input), odp_buf_size(input), 0, 0,
           &whole);
    s_pass(LOADER_CSV, encoding, cols, 3, max_row, odp_buf_data(input), odp_buf_size(input), seed,
           1 + NEXT(64), &chunked);
    assert_int_equal(chunked.rc, whole.rc);
    if (whole.rc)
        assert_int_equal(chunked.err.code, whole.err.code);
    assert_int_equal(chunked.rows, whole.rows);
    assert_string_equal(odp_buf_data(chunked.staged), odp_buf_data(whole.staged));
    assert_string_equal(odp_buf_data(chunked.rejected), odp_buf_data(whole.rejected));
    s_check_copy(whole.staged, 3);
    s_check_copy(whole.rejected, 3);
    if (!whole.rc) {
        assert_int_equal(
            s_count(odp_buf_data(whole.staged), odp_buf_size(whole.staged), '\n') +
                s_count(odp_buf_data(whole.rejected), odp_buf_size(whole.rejected), '\n'),
            (size_t)whole.rows);
        assert_int_equal(s_count(odp_buf_data(whole.rejected), odp_buf_size(whole.rejected), '\n'),
                         (size_t)whole.rejects);
        assert_int_equal(whole.boundary, (int64_t)odp_buf_size(input));
        if (max_row == MAX_ROW) {
            t_dict_t dict = {.ncols = 3};
            memcpy(dict.cols, cols, sizeof cols);
            s_resume_at(&dict, LOADER_CSV, encoding, odp_buf_data(input), odp_buf_size(input),
                        NEXT(odp_buf_size(input) + 1), seed, &whole);
        }
    } else
        assert_int_equal(whole.err.code, ODP_E_RULE_ROW_LENGTH);
#undef NEXT
    s_run_free(&whole);
    s_run_free(&chunked);
    odp_buf_destroy(&input);
}

static void test_byte_soup(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 150; seed++) {
        s_soup(LOADER_UTF8, seed);
        s_soup(LOADER_GB18030, seed);
    }
}

/*  ---------------------------------------------------------------------------------------
    Types                                                                                */

typedef struct {
    const char *in;
    const char *out; //  staged value, NULL when the row must be rejected "type"
} t_case_t;

static void s_type_table(loader_type_t type, const t_case_t *cases, size_t n)
{
    loader_col_t col = {"v", type};
    odp_buf_t *input = odp_buf_new();
    s_buf_add(input, "v\n", 2);
    for (size_t i = 0; i < n; i++) {
        //  Quoted, so that commas and quotes reach the type check as they are
        s_buf_add(input, "\"", 1);
        for (const char *p = cases[i].in; *p; p++)
            s_buf_add(input, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
        s_buf_add(input, "\"\n", 2);
    }
    t_run_t run;
    s_pass(LOADER_CSV, LOADER_UTF8, &col, 1, MAX_ROW, odp_buf_data(input), odp_buf_size(input), 0,
           0, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, (int64_t)n);
    char line[512], expect[512];
    for (size_t i = 0; i < n; i++) {
        int64_t row = (int64_t)i + 1;
        if (cases[i].out) {
            if (!s_row(run.staged, row, line, sizeof line))
                fail_msg("\"%s\" should be staged as \"%s\"", cases[i].in, cases[i].out);
            snprintf(expect, sizeof expect, "%lld\t%s", (long long)row, cases[i].out);
            if (strcmp(line, expect) != 0)
                fail_msg("\"%s\" staged as \"%s\", expected \"%s\"", cases[i].in, line, expect);
        } else {
            if (!s_row(run.rejected, row, line, sizeof line))
                fail_msg("\"%s\" should be rejected", cases[i].in);
            char field[256];
            assert_string_equal(s_field(line, 1, field, sizeof field), "type");
            assert_non_null(strstr(s_field(line, 2, field, sizeof field), "column \"v\""));
        }
    }
    s_run_free(&run);
    odp_buf_destroy(&input);
}

static void test_type_integer(void **state)
{
    (void)state;
    const t_case_t cases[] = {
        {"0", "0"},
        {"+5", "+5"},
        {"-17", "-17"},
        {"007", "007"},
        {" 42 ", "42"},
        {"", "\\N"},
        {"9223372036854775807", "9223372036854775807"},
        {"-9223372036854775808", "-9223372036854775808"},
        {"9223372036854775808", NULL},
        {"-9223372036854775809", NULL},
        {"5.0", NULL},
        {"1e3", NULL},
        {"1,234", NULL},
        {"abc", NULL},
        {"+", NULL},
        {"--1", NULL},
        {"1 2", NULL},
        {"０", NULL}, //  a full-width digit
    };
    s_type_table(LOADER_INTEGER, cases, sizeof cases / sizeof cases[0]);
}

static void test_type_numeric(void **state)
{
    (void)state;
    const t_case_t cases[] = {
        {"1e5", "1e5"},
        {".5", ".5"},
        {"5.", "5."},
        {"-1.25E-3", "-1.25E-3"},
        {"+0.0", "+0.0"},
        {"48442.08", "48442.08"},
        {"123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"},
        {"", "\\N"},
        {" 3.5\t", "3.5"},
        {"N/A", NULL},
        {"1,234", NULL},
        {".", NULL},
        {"e5", NULL},
        {"1e", NULL},
        {"1e+", NULL},
        {"NaN", NULL},
        {"Infinity", NULL},
        {"1e1001", "1e1001"},
        {"1e131071", "1e131071"}, //  PostgreSQL's limits: 131072 digits before the point,
        {"1e131072", NULL},       //  16383 after it
        {"1e-16383", "1e-16383"},
        {"1.5e-16383", NULL},
        {"1e99999999999999999999", NULL},
        {"1.2.3", NULL},
        {"0x10", NULL},
    };
    s_type_table(LOADER_NUMERIC, cases, sizeof cases / sizeof cases[0]);
}

static void test_type_date(void **state)
{
    (void)state;
    const t_case_t cases[] = {
        {"2024-02-29", "2024-02-29"},
        {"2000-02-29", "2000-02-29"},
        {"2023-12-31", "2023-12-31"},
        {"0001-01-01", "0001-01-01"},
        {"", "\\N"},
        {"2023-02-29", NULL},
        {"1900-02-29", NULL},
        {"2023-04-31", NULL},
        {"2023-00-10", NULL},
        {"2023-13-01", NULL},
        {"2023-01-00", NULL},
        {"0000-01-01", NULL},
        {"2023-1-01", NULL},
        {"2023/01/01", NULL},
        {"20230101", NULL},
        {"2023-01-01T00:00", NULL},
    };
    s_type_table(LOADER_DATE, cases, sizeof cases / sizeof cases[0]);
}

static void test_type_timestamp(void **state)
{
    (void)state;
    const t_case_t cases[] = {
        {"2023-01-01T10:00:00Z", "2023-01-01T10:00:00Z"},
        {"2023-01-01 10:00", "2023-01-01 10:00"},
        {"2023-01-01 23:59:59.123456", "2023-01-01 23:59:59.123456"},
        {"2023-01-01T10:00:00+08:00", "2023-01-01T10:00:00+08:00"},
        {"2023-01-01T10:00-05", "2023-01-01T10:00-05"},
        {"2024-02-29 00:00:00", "2024-02-29 00:00:00"},
        {"", "\\N"},
        {"2023-13-01 00:00", NULL},
        {"2023-02-29 10:00", NULL},
        {"2023-01-01", "2023-01-01"}, //  a date alone: midnight, as PostgreSQL reads it
        {"2023-02-29", NULL},
        {"2023-01-01 24:00", NULL},
        {"2023-01-01 10:60", NULL},
        {"2023-01-01 10:00:61", NULL},
        {"2023-01-01T10:00:00.Z", NULL},
        {"2023-01-01T10:00:00+16:00", NULL},
        {"2023-01-01T10:00:00+0800", NULL},
        {"2023-01-01X10:00", NULL},
        {"2023-01-01 10:00 PM", NULL},
    };
    s_type_table(LOADER_TIMESTAMP, cases, sizeof cases / sizeof cases[0]);
}

static void test_type_boolean(void **state)
{
    (void)state;
    const t_case_t cases[] = {
        {"是", "t"}, {"否", "f"}, {"true", "t"},   {"FALSE", "f"}, {"T", "t"},   {"f", "f"},
        {"1", "t"},  {"0", "f"},  {"Yes", "t"},    {"no", "f"},    {" t ", "t"}, {"", "\\N"},
        {"y", NULL}, {"2", NULL}, {"truth", NULL}, {"是的", NULL}, {"on", NULL}, {"01", NULL},
    };
    s_type_table(LOADER_BOOLEAN, cases, sizeof cases / sizeof cases[0]);
}

static void test_type_text(void **state)
{
    (void)state;
    const t_case_t cases[] = {
        {"N/A", "N/A"},     {" spaced ", " spaced "}, {"", "\\N"},
        {"1,234", "1,234"}, {"\"q\"", "\"q\""},       {"中文", "中文"},
    };
    s_type_table(LOADER_TEXT, cases, sizeof cases / sizeof cases[0]);
}

/*  ---------------------------------------------------------------------------------------
    JSON Lines                                                                           */

static void test_jsonl(void **state)
{
    (void)state;
    const loader_col_t cols[] = {{"name", LOADER_TEXT},      {"n", LOADER_INTEGER},
                                 {"amount", LOADER_NUMERIC}, {"day", LOADER_DATE},
                                 {"ok", LOADER_BOOLEAN},     {"at", LOADER_TIMESTAMP}};
    const char *text =
        "{\"name\":\"甲\",\"n\":5,\"amount\":1.50,\"day\":\"2024-02-29\",\"ok\":true,"
        "\"at\":\"2023-01-01T10:00:00Z\"}\n"                                      //  1
        "[1,2]\n"                                                                 //  2 shape
        "{\"name\":\"乙\",\"zz\":1}\n"                                            //  3 shape
        "{\"name\":\"丙\",\"n\":\"five\"}\r\n"                                    //  4 type
        "\n   \r\n"                                                               //  blank
        "{\"n\":5.0, \"amount\": 12345678901234567890123.5e-3, \"ok\": \"是\"}\n" //  5
        "not json\n"                                                              //  6 shape
        "{\"n\":12345678901234567890}\n"                                          //  7 type
        "{\"ok\":1}\n"                                                            //  8 type
        "{\"name\":1}\n"                                                          //  9 type
        "{\"name\":\"t\\tb\",\"amount\":\"-2\",\"n\":\"+3\",\"day\":null}\n"      //  10
        "{\"name\":\"a\",\"name\":\"b\"}\n"                                       //  11 shape
        "{\"amount\":-1E+2,\"n\":-9223372036854775808,\"at\":{\"x\":[1]}}\n"      //  12 type
        "{\"amount\":-1E+2,\"n\":1e3}";                                           //  13
    t_run_t run;
    s_pass(LOADER_JSONL, LOADER_UTF8, cols, 6, MAX_ROW, text, strlen(text), 0, 0, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rows, 13);
    assert_int_equal(run.rejects, 9);
    assert_int_equal(run.boundary, (int64_t)strlen(text));
    assert_string_equal(odp_buf_data(run.staged),
                        "1\t甲\t5\t1.50\t2024-02-29\tt\t2023-01-01T10:00:00Z\n"
                        "5\t\\N\t5\t12345678901234567890123.5e-3\t\\N\tt\t\\N\n"
                        "10\tt\\tb\t+3\t-2\t\\N\t\\N\t\\N\n"
                        "13\t\\N\t1000\t-1E+2\t\\N\t\\N\t\\N\n");
    const char *reasons[][2] = {{"2", "shape"}, {"3", "shape"},  {"4", "type"},
                                {"6", "shape"}, {"7", "type"},   {"8", "type"},
                                {"9", "type"},  {"11", "shape"}, {"12", "type"}};
    char line[512], field[256];
    assert_int_equal(s_count(odp_buf_data(run.rejected), odp_buf_size(run.rejected), '\n'), 9);
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        assert_non_null(s_row(run.rejected, atoll(reasons[i][0]), line, sizeof line));
        assert_string_equal(s_field(line, 1, field, sizeof field), reasons[i][1]);
    }
    assert_non_null(s_row(run.rejected, 3, line, sizeof line));
    assert_non_null(strstr(s_field(line, 2, field, sizeof field), "zz"));
    assert_string_equal(s_field(line, 3, field, sizeof field), "{\"name\":\"乙\",\"zz\":1}");
    assert_non_null(s_row(run.rejected, 4, line, sizeof line));
    assert_non_null(strstr(s_field(line, 2, field, sizeof field), "\"five\""));
    assert_non_null(s_row(run.rejected, 7, line, sizeof line));
    assert_non_null(strstr(s_field(line, 2, field, sizeof field), "12345678901234567890"));

    //  Resumed anywhere: exactly once
    t_dict_t dict = {.ncols = 6};
    memcpy(dict.cols, cols, sizeof cols);
    for (size_t cut = 0; cut <= strlen(text); cut += 7)
        s_resume_at(&dict, LOADER_JSONL, LOADER_UTF8, text, strlen(text), cut, (uint32_t)cut, &run);

    //  Same in random chunks
    t_run_t chunked;
    s_pass(LOADER_JSONL, LOADER_UTF8, cols, 6, MAX_ROW, text, strlen(text), 3, 9, &chunked);
    assert_string_equal(odp_buf_data(chunked.staged), odp_buf_data(run.staged));
    assert_string_equal(odp_buf_data(chunked.rejected), odp_buf_data(run.rejected));
    s_run_free(&chunked);
    s_run_free(&run);

    //  A BOM before the first object is no part of it
    const char *bom = "\xef\xbb\xbf{\"n\":1}\r\n{\"n\":2}";
    s_pass(LOADER_JSONL, LOADER_UTF8, cols, 6, MAX_ROW, bom, strlen(bom), 0, 0, &run);
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.rejects, 0);
    assert_string_equal(odp_buf_data(run.staged), "1\t\\N\t1\t\\N\t\\N\t\\N\t\\N\n"
                                                  "2\t\\N\t2\t\\N\t\\N\t\\N\t\\N\n");
    s_run_free(&run);

    //  No header in JSON Lines; bad encoding is still "encoding"
    loader_t *loader = loader_new(LOADER_JSONL, LOADER_UTF8, cols, 6, MAX_ROW);
    odp_buf_t *staged = odp_buf_new(), *rejected = odp_buf_new();
    odp_error_t err;
    const char *bad = "{\"name\":\"\xff\"}\n";
    assert_int_equal(loader_feed(loader, bad, strlen(bad), staged, rejected, &err), 0);
    size_t n = 7;
    assert_null(loader_colmap(loader, &n));
    assert_int_equal(loader_rejected(loader), 1);
    assert_non_null(strstr(odp_buf_data(rejected), "\tencoding\t"));
    assert_int_equal(loader_finish(loader, staged, rejected, &err), 0);
    loader_destroy(&loader);
    odp_buf_destroy(&staged);
    odp_buf_destroy(&rejected);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_null(loader_new(LOADER_CSV, LOADER_UTF8, NULL, 0, 10));
    const loader_col_t nameless[] = {{NULL, LOADER_TEXT}};
    assert_null(loader_new(LOADER_CSV, LOADER_UTF8, nameless, 1, 10));
    loader_destroy(NULL);
    loader_t *loader = loader_new(LOADER_CSV, LOADER_UTF8, s_abc, 3, 10);
    odp_buf_t *staged = odp_buf_new(), *rejected = odp_buf_new();
    odp_error_t err;
    assert_int_equal(loader_feed(loader, "a,b,c\n", 6, staged, rejected, &err), 0);
    //  Resume only before the first byte
    assert_int_equal(loader_resume(loader, 0, 0, 0, NULL, 0), -1);
    assert_int_equal(loader_feed(loader, "x", 1, NULL, rejected, &err), -1);
    loader_destroy(&loader);
    odp_buf_destroy(&staged);
    odp_buf_destroy(&rejected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_air_quality),
        cmocka_unit_test(test_sample_key_enterprise_assets),
        cmocka_unit_test(test_sample_land_use_status),
        cmocka_unit_test(test_sample_medical_institutions),
        cmocka_unit_test(test_messy_gb18030),
        cmocka_unit_test(test_resume_exactly_once),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_crlf_bom_blank_lines),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_invalid_gb18030),
        cmocka_unit_test(test_row_length),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_final_row_without_newline),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_ragged),
        cmocka_unit_test(test_plain_lines_match_libcsv),
        cmocka_unit_test(test_byte_soup),
        cmocka_unit_test(test_type_integer),
        cmocka_unit_test(test_type_numeric),
        cmocka_unit_test(test_type_date),
        cmocka_unit_test(test_type_timestamp),
        cmocka_unit_test(test_type_boolean),
        cmocka_unit_test(test_type_text),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
