#include "parse.h"

bool odp_parse_int(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return false;
    /*  Accumulate the magnitude unsigned: INT64_MIN's has no positive int64. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)((unsigned char)s[i] - '0');
        if (d > 9 || v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    int64_t value = neg ? (int64_t)(0 - v) : (int64_t)v;
    if (value < min || value > max)
        return false;
    if (out)
        *out = value;
    return true;
}

static int s_2digits(const char *s)
{
    unsigned a = (unsigned)((unsigned char)s[0] - '0'), b = (unsigned)((unsigned char)s[1] - '0');
    return a > 9 || b > 9 ? -1 : (int)(a * 10 + b);
}

bool odp_parse_date(const char *s, size_t n, int32_t *days)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y1 = s_2digits(s), y2 = s_2digits(s + 2), month = s_2digits(s + 5), day = s_2digits(s + 8);
    if (y1 < 0 || y2 < 0 || month < 1 || month > 12 || day < 1)
        return false;
    int year = y1 * 100 + y2;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if (year == 0 || day > mdays[month - 1] + (month == 2 && leap))
        return false;
    if (days) {
        /*  PostgreSQL's date2j() (a Julian day number), less that of 2000-01-01. */
        int y = year, m = month;
        if (m > 2) {
            m += 1;
            y += 4800;
        } else {
            m += 13;
            y += 4799;
        }
        int century = y / 100;
        int julian = y * 365 - 32167 + y / 4 - century + century / 4 + 7834 * m / 256 + day;
        *days = julian - 2451545;
    }
    return true;
}

bool odp_parse_timestamp(const char *s, size_t n)
{
    if (n == 10)
        return odp_parse_date(s, n, NULL);
    if (n < 16 || !odp_parse_date(s, 10, NULL) || (s[10] != 'T' && s[10] != ' ') || s[13] != ':')
        return false;
    int hh = s_2digits(s + 11), mm = s_2digits(s + 14);
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
        return false;
    size_t i = 16;
    if (i < n && s[i] == ':') {
        if (n - i < 3)
            return false;
        int ss = s_2digits(s + i + 1);
        if (ss < 0 || ss > 60)
            return false;
        i += 3;
        if (i < n && s[i] == '.') {
            size_t f0 = ++i;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == f0)
                return false;
        }
    }
    if (i == n)
        return true;
    if (s[i] == 'Z')
        return i + 1 == n;
    if (s[i] != '+' && s[i] != '-')
        return false;
    i++;
    /*  PostgreSQL refuses displacements beyond 15:59. */
    if (n - i < 2 || s_2digits(s + i) < 0 || s_2digits(s + i) > 15)
        return false;
    i += 2;
    if (i == n)
        return true;
    return n - i == 3 && s[i] == ':' && s_2digits(s + i + 1) >= 0 && s_2digits(s + i + 1) <= 59;
}

size_t odp_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    /*  Back over the continuation bytes at the cut to the last lead byte: the character
        it starts is whole only if all the bytes it needs are before max. */
    size_t i = max, cont = 0;
    while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0)
        return 0;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return cont + 1 < need ? i - 1 : max;
}
