/*  gen: a deterministic CSV for the push benchmark, with its data dictionary and the
    matching CREATE TABLE for the psql baseline.

    usage: gen ROWS COLS NAME DIR [SEED]
    writes DIR/NAME.csv, DIR/NAME.dict.json and DIR/NAME.sql

    Eight columns are a realistic mix of what departments publish (codes, names with the
    odd quoted comma or quote, counts, amounts, dates, code-list values, rates, optional
    remarks); any other width repeats a five-type cycle (text, integer, numeric, date,
    text). The same seed gives the same bytes, so runs compare. Plain C11: it is built
    with one cc line by tests/bench/run.sh. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_state;

/*  splitmix64: small, fast, and the same everywhere. */
static uint64_t s_next(void)
{
    uint64_t z = (s_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t s_below(uint64_t n)
{
    return s_next() % n;
}

static const char *const s_cities[] = {"广州市", "深圳市", "珠海市", "汕头市", "佛山市", "东莞市",
                                       "中山市", "江门市", "湛江市", "惠州市", "肇庆市", "潮州市"};
static const char *const s_words[] = {"华南", "鹏城", "珠江", "岭南", "嘉禾", "粤海",
                                      "南方", "新城", "东湖", "海港", "天河", "白云"};
static const char *const s_trades[] = {"科技", "贸易", "实业", "建设", "物流", "医药", "能源"};
static const char *const s_remarks[] = {"",
                                        "",
                                        "年度抽查合格",
                                        "已更新联系方式",
                                        "\"\"重点\"\"监管对象",
                                        "分支机构,含两个网点",
                                        "数据来源：部门报送"};

/*  Whether a text value needs CSV quoting (a comma or a quote in it). */
static void s_text(FILE *f, const char *s)
{
    if (strchr(s, ',') || strchr(s, '"'))
        fprintf(f, "\"%s\"", s);
    else
        fputs(s, f);
}

static void s_date(FILE *f)
{
    fprintf(f, "%04d-%02d-%02d", 2000 + (int)s_below(25), 1 + (int)s_below(12),
            1 + (int)s_below(28));
}

typedef struct {
    const char *name;
    const char *type;
} s_col_t;

static const s_col_t s_mix8[] = {
    {"记录编号", "text"},         {"单位名称", "text"}, {"从业人数", "integer"},
    {"资产总额_万元", "numeric"}, {"登记日期", "date"}, {"所属地市", "text"},
    {"增长率", "numeric"},        {"备注", "text"},
};
static const char *const s_cycle[] = {"text", "integer", "numeric", "date", "text"};

static const char *s_type(int cols, int c)
{
    return cols == 8 ? s_mix8[c].type : s_cycle[c % 5];
}

static void s_name(int cols, int c, char *buf, size_t size)
{
    if (cols == 8)
        snprintf(buf, size, "%s", s_mix8[c].name);
    else
        snprintf(buf, size, "字段%02d", c + 1);
}

static void s_row8(FILE *f, int64_t i)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s%s有限公司%s", s_cities[s_below(12)], s_words[s_below(12)],
             s_trades[s_below(7)], s_below(20) == 0 ? ",分公司" : "");
    fprintf(f, "B%010" PRId64 ",", i);
    s_text(f, name);
    fprintf(f, ",%d,%" PRIu64 ".%02d,", (int)s_below(100000), s_below(10000000), (int)s_below(100));
    s_date(f);
    int rate = (int)s_below(100001) - 50000;
    fprintf(f, ",%s,%s%d.%03d,", s_cities[s_below(12)], rate < 0 ? "-" : "", abs(rate) / 1000,
            abs(rate) % 1000);
    s_text(f, s_remarks[s_below(7)]);
    fputc('\n', f);
}

static void s_row_cycle(FILE *f, int cols, int64_t i)
{
    for (int c = 0; c < cols; c++) {
        if (c)
            fputc(',', f);
        switch (c % 5) {
        case 0:
            fprintf(f, "K%" PRId64 "-%02d", i, c);
            break;
        case 1:
            fprintf(f, "%d", (int)s_below(1000000));
            break;
        case 2:
            fprintf(f, "%" PRIu64 ".%02d", s_below(1000000), (int)s_below(100));
            break;
        case 3:
            s_date(f);
            break;
        default:
            fprintf(f, "%s%s", s_cities[s_below(12)], s_words[s_below(12)]);
            break;
        }
    }
    fputc('\n', f);
}

static FILE *s_open(const char *dir, const char *name, const char *ext)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    if (!f)
        perror(path);
    return f;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: gen ROWS COLS NAME DIR [SEED]\n");
        return 2;
    }
    int64_t rows = strtoll(argv[1], NULL, 10);
    int cols = atoi(argv[2]);
    const char *name = argv[3], *dir = argv[4];
    s_state = argc > 5 ? strtoull(argv[5], NULL, 10) : 20261127;
    if (rows < 0 || cols < 1 || cols > 500) {
        fprintf(stderr, "gen: ROWS >= 0 and 1 <= COLS <= 500\n");
        return 2;
    }
    FILE *csv = s_open(dir, name, ".csv"), *dict = s_open(dir, name, ".dict.json"),
         *sql = s_open(dir, name, ".sql");
    if (!csv || !dict || !sql)
        return 1;
    /*  A big stdio buffer: the generator should not be what the benchmark waits on. */
    setvbuf(csv, NULL, _IOFBF, 1 << 20);

    fprintf(dict,
            "{\n  \"name\": \"%s\",\n  \"title\": \"基准测试数据集 %s\",\n"
            "  \"domain\": \"经济建设\",\n  \"fields\": [\n",
            name, name);
    fprintf(sql, "DROP TABLE IF EXISTS %s;\nCREATE TABLE %s (", name, name);
    for (int c = 0; c < cols; c++) {
        char col[64];
        s_name(cols, c, col, sizeof col);
        fprintf(csv, "%s%s", c ? "," : "", col);
        fprintf(dict, "    {\"name\": \"%s\", \"type\": \"%s\"}%s\n", col, s_type(cols, c),
                c + 1 < cols ? "," : "");
        const char *t = s_type(cols, c);
        fprintf(sql, "%s\"%s\" %s", c ? ", " : "", col, strcmp(t, "integer") == 0 ? "bigint" : t);
    }
    fputc('\n', csv);
    fputs("  ]\n}\n", dict);
    fputs(");\n", sql);
    for (int64_t i = 1; i <= rows; i++) {
        if (cols == 8)
            s_row8(csv, i);
        else
            s_row_cycle(csv, cols, i);
    }
    int rc = 0;
    if (fclose(csv) != 0 || fclose(dict) != 0 || fclose(sql) != 0) {
        perror("gen");
        rc = 1;
    }
    return rc;
}
