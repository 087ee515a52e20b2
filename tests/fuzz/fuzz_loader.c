/*  fuzz_loader: the registrar's CSV / JSON Lines loader (services/registrar/loader.h) on
    hostile bytes, in both encodings, fed whole, in chunks and resumed.

    Input: a flags byte, a dictionary line, then the pushed bytes.
      flags  bit 0 format (csv, jsonl), bit 1 encoding (utf8, gb18030), bits 2-3 the row
             length limit (64, 256, 4096 bytes, 1 MiB), bits 4-7 how the bytes are chunked
      dictionary  "name:t|name:t|...\n", t one of x (text) i (integer) n (numeric) d (date)
                  s (timestamp) b (boolean); names as the dictionary holds them (UTF-8)
    The promises checked, which pushing relies on:
      - fed in chunks, the loader produces exactly what it produces fed whole (the same
        rows, the same refusal), since a push's chunking is the network's;
      - stopped at any point and resumed at its boundary (loader_resume), the two halves
        together are the whole (a registrar restart loses and repeats nothing);
      - every data row ends up once, staged or rejected, as one COPY line of UTF-8;
      - a refusal carries an error code and an error reply that encodes. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "services/registrar/loader.h"

#define S_MAX_COLS 64

/*  What the harness gathers across calls (the loader's own buffers are drained each call). */
typedef struct {
    char *data;
    size_t len, cap;
} s_acc_t;

typedef struct {
    s_acc_t staged;
    s_acc_t rejected;
    int rc;
    odp_error_t err;
} s_out_t;

static void s_put(s_acc_t *to, const char *data, size_t len)
{
    if (len) {
        if (to->len + len > to->cap) {
            size_t cap = to->cap ? to->cap : 256;
            while (cap < to->len + len)
                cap *= 2;
            to->data = realloc(to->data, cap);
            FUZZ_REQUIRE(to->data, "out of memory in the harness");
            to->cap = cap;
        }
        memcpy(to->data + to->len, data, len);
        to->len += len;
    }
}

static void s_append(s_acc_t *to, s_acc_t *from)
{
    s_put(to, from->data, from->len);
    from->len = 0;
}

/*  Drain a loader output buffer into an accumulator. */
static void s_take(s_acc_t *to, odp_buf_t *from)
{
    s_put(to, odp_buf_data(from), odp_buf_size(from));
    odp_buf_reset(from);
}

static void s_out_free(s_out_t *o)
{
    free(o->staged.data);
    free(o->rejected.data);
}

/*  Feed data in chunks drawn from seed (0: whole), then finish when asked. */
static void s_feed(loader_t *l, const char *data, size_t len, unsigned seed, bool finish,
                   s_out_t *o)
{
    odp_buf_t *staged = odp_buf_new(), *rejected = odp_buf_new();
    FUZZ_REQUIRE(staged && rejected, "out of memory in the harness");
    uint32_t x = seed;
    size_t pos = 0;
    while (o->rc == 0 && pos < len) {
        size_t n = len - pos;
        if (seed) {
            x = x * 1103515245u + 12345u;
            size_t chunk = 1 + (x >> 16) % (seed * 7);
            if (chunk < n)
                n = chunk;
        }
        o->rc = loader_feed(l, data + pos, n, staged, rejected, &o->err);
        s_take(&o->staged, staged);
        s_take(&o->rejected, rejected);
        pos += n;
    }
    if (o->rc == 0 && finish) {
        o->rc = loader_finish(l, staged, rejected, &o->err);
        s_take(&o->staged, staged);
        s_take(&o->rejected, rejected);
    }
    odp_buf_destroy(&staged);
    odp_buf_destroy(&rejected);
}

static size_t s_lines(const s_acc_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

static bool s_same(const s_acc_t *a, const s_acc_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/*  The dictionary line: columns in cols (names point into names), how many; 0 when the
    line is not a dictionary the registrar would have accepted. *used receives the bytes taken,
   newline included. */
static size_t s_dictionary(const char *in, size_t len, char *names, loader_col_t *cols,
                           size_t *used)
{
    const char *nl = memchr(in, '\n', len);
    if (!nl)
        return 0;
    size_t n = (size_t)(nl - in), ncols = 0;
    *used = n + 1;
    memcpy(names, in, n);
    names[n] = '\0';
    for (char *tok = names; tok && *tok && ncols < S_MAX_COLS;) {
        char *bar = strchr(tok, '|');
        if (bar)
            *bar = '\0';
        char *colon = strrchr(tok, ':');
        if (!colon || colon == tok || !colon[1] || colon[2])
            return 0;
        *colon = '\0';
        static const char types[] = "xindsb";
        const char *t = strchr(types, colon[1]);
        if (!t)
            return 0;
        /*  What dictionary.set lets through: UTF-8, 1 to 63 bytes, no control characters,
            no name twice. */
        size_t nl_len = strlen(tok);
        if (nl_len > 63 || !odp_utf8_valid(tok, nl_len))
            return 0;
        for (size_t k = 0; k < nl_len; k++)
            if ((unsigned char)tok[k] < 0x20 || tok[k] == 0x7f)
                return 0;
        for (size_t k = 0; k < ncols; k++)
            if (strcmp(cols[k].name, tok) == 0)
                return 0;
        cols[ncols].name = tok;
        cols[ncols].type = (loader_type_t)(t - types);
        ncols++;
        tok = bar ? bar + 1 : NULL;
    }
    return ncols;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = input[0];
    loader_format_t format = flags & 1 ? LOADER_JSONL : LOADER_CSV;
    loader_encoding_t encoding = flags & 2 ? LOADER_GB18030 : LOADER_UTF8;
    static const size_t limits[] = {64, 256, 4096, 1 << 20};
    size_t max_row = limits[(flags >> 2) & 3];
    unsigned seed = 1 + (flags >> 4);
    char *names = malloc(size);
    loader_col_t cols[S_MAX_COLS];
    size_t used = 0;
    size_t ncols = s_dictionary((const char *)input + 1, size - 1, names, cols, &used);
    const char *data = (const char *)input + 1 + used;
    size_t len = size - 1 - used;
    loader_t *whole_l = ncols ? loader_new(format, encoding, cols, ncols, max_row) : NULL;
    if (!whole_l) {
        free(names);
        return 0;
    }

    s_out_t whole = {0}, chunked = {0};
    s_feed(whole_l, data, len, 0, true, &whole);
    int64_t rows = loader_rows(whole_l), rejected = loader_rejected(whole_l);
    loader_t *chunked_l = loader_new(format, encoding, cols, ncols, max_row);
    FUZZ_REQUIRE(chunked_l, "a second loader with the same arguments was refused");
    s_feed(chunked_l, data, len, seed, true, &chunked);

    FUZZ_REQUIRE(whole.rc == chunked.rc, "chunking changes whether the stream is refused");
    if (whole.rc) {
        FUZZ_REQUIRE(whole.err.code == chunked.err.code, "chunking changes the refusal's code");
        fuzz_error_reply_encodes(&whole.err);
        fuzz_error_reply_encodes(&chunked.err);
    } else {
        FUZZ_REQUIRE(s_same(&whole.staged, &chunked.staged), "chunking changes the staged rows");
        FUZZ_REQUIRE(s_same(&whole.rejected, &chunked.rejected),
                     "chunking changes the rejected rows");
        FUZZ_REQUIRE(loader_rows(chunked_l) == rows && loader_rejected(chunked_l) == rejected,
                     "chunking changes the row counts");
        FUZZ_REQUIRE(loader_boundary(whole_l) == (int64_t)len,
                     "a finished stream's boundary is not its end");
        FUZZ_REQUIRE((int64_t)(s_lines(&whole.staged) + s_lines(&whole.rejected)) == rows,
                     "rows_received != staged lines + rejected lines");
        FUZZ_REQUIRE((int64_t)s_lines(&whole.rejected) == rejected,
                     "the rejected count is not the rejected lines");
        FUZZ_REQUIRE(odp_utf8_valid(whole.staged.data, whole.staged.len) &&
                         odp_utf8_valid(whole.rejected.data, whole.rejected.len),
                     "COPY rows that are not UTF-8 (PostgreSQL would refuse them)");

        /*  Stop after the first half, resume at the boundary with a new loader. */
        loader_t *first = loader_new(format, encoding, cols, ncols, max_row);
        s_out_t a = {0}, b = {0};
        s_feed(first, data, len / 2, seed, false, &a);
        FUZZ_REQUIRE(a.rc == 0, "a prefix of an accepted stream was refused");
        int64_t at = loader_boundary(first);
        FUZZ_REQUIRE(at >= 0 && at <= (int64_t)(len / 2), "a boundary past the bytes fed");
        size_t nmap = 0;
        const int *map = loader_colmap(first, &nmap);
        loader_t *second = loader_new(format, encoding, cols, ncols, max_row);
        FUZZ_REQUIRE(
            loader_resume(second, at, loader_rows(first), loader_rejected(first), map, nmap) == 0,
            "the loader refuses its own boundary");
        s_feed(second, data + at, len - (size_t)at, 0, true, &b);
        FUZZ_REQUIRE(b.rc == 0, "the resumed stream was refused");
        s_append(&a.staged, &b.staged);
        s_append(&a.rejected, &b.rejected);
        FUZZ_REQUIRE(s_same(&a.staged, &whole.staged) && s_same(&a.rejected, &whole.rejected),
                     "resumed at the boundary, the rows differ from the whole stream's");
        FUZZ_REQUIRE(loader_rows(second) == rows && loader_rejected(second) == rejected,
                     "resumed at the boundary, the counts differ");
        s_out_free(&a);
        s_out_free(&b);
        loader_destroy(&first);
        loader_destroy(&second);
    }
    s_out_free(&whole);
    s_out_free(&chunked);
    loader_destroy(&whole_l);
    loader_destroy(&chunked_l);
    free(names);
    return 0;
}
