/*  sha256: libsodium's SHA-256, faster where the CPU has the x86 SHA extensions.

    Every pushed byte is hashed twice (by the provider's tool and by the registrar), on the
    path the push benchmark measures. libsodium's portable SHA-256 runs at about 0.3 GB/s;
    the SHA extensions at about 1.4 GB/s. odp_sha256_update() is crypto_hash_sha256_update()
    - same state, same buffering - with the 64-byte block function on the SHA extensions
    when present, so a state means the same to either, and crypto_hash_sha256_init() and
    crypto_hash_sha256_final() start and finish it. tests/unit/test_sha256.c compares it
    with libsodium on every split of random inputs. docs/design.md says why it exists. */
#ifndef ODP_SHA256_H
#define ODP_SHA256_H

#include <sodium.h>
#include <stddef.h>

void odp_sha256_update(crypto_hash_sha256_state *st, const unsigned char *in, size_t len);

/*  true when the SHA-extension path is in use on this CPU */
int odp_sha256_accelerated(void);

#endif
