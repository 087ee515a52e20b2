/*  odp_sha256_update must be crypto_hash_sha256_update, byte for byte and state for
    state, however the input is split: the registrar stores the state between chunks and
    resumes it, and providers' hashes must match the registrar's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/sha256.h"

static uint32_t s_seed = 20261127;
static uint32_t s_rand(void)
{
    s_seed = s_seed * 1664525u + 1013904223u;
    return s_seed >> 8;
}

static void s_both(const unsigned char *data, size_t len, const size_t *cuts, size_t ncuts)
{
    crypto_hash_sha256_state a, b;
    crypto_hash_sha256_init(&a);
    crypto_hash_sha256_init(&b);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        crypto_hash_sha256_update(&a, data + at, end - at);
        odp_sha256_update(&b, data + at, end - at);
        /*  The state itself, not just the digest: stored states must be interchangeable.
            The buffer counts only up to the bytes not yet hashed; past them is scratch. */
        assert_memory_equal(a.state, b.state, sizeof a.state);
        assert_int_equal(a.count, b.count);
        assert_memory_equal(a.buf, b.buf, (size_t)((a.count >> 3) & 63));
        at = end;
    }
    unsigned char da[32], db[32];
    crypto_hash_sha256_final(&a, da);
    crypto_hash_sha256_final(&b, db);
    assert_memory_equal(da, db, 32);
}

static void test_known_vector(void **state)
{
    (void)state;
    /*  FIPS 180-2 example: "abc" repeated to cross many block boundaries. */
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)"abc"[i % 3];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    odp_sha256_update(&st, buf, sizeof buf);
    unsigned char d[32], want[32];
    crypto_hash_sha256_final(&st, d);
    crypto_hash_sha256(want, buf, sizeof buf);
    assert_memory_equal(d, want, 32);
}

static void test_every_split_small(void **state)
{
    (void)state;
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)s_rand();
    for (size_t len = 0; len <= sizeof buf; len += 7)
        for (size_t cut = 0; cut <= len; cut++)
            s_both(buf, len, &cut, 1);
}

static void test_random_splits_large(void **state)
{
    (void)state;
    size_t len = 3u << 20;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)s_rand();
    for (int round = 0; round < 20; round++) {
        size_t cuts[16], n = 0, at = 0;
        while (n < 16) {
            at += s_rand() % (len / 8);
            if (at > len)
                break;
            cuts[n++] = at;
        }
        s_both(buf, len, cuts, n);
    }
    free(buf);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_every_split_small),
        cmocka_unit_test(test_random_splits_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
