/*  What the fuzz targets share: a crash on a broken promise, and the error reply check.

    A target aborts (libFuzzer keeps the input as a crash) not only on memory errors and
    undefined behaviour (ASan, UBSan) but when a promise the services rely on is broken:
    FUZZ_REQUIRE names the promise. */
#ifndef ODP_FUZZ_H
#define ODP_FUZZ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"

#define FUZZ_REQUIRE(cond, what)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: broken promise at %s:%d: %s\n", __FILE__, __LINE__, what);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*  A refusal must reach the client: the error reply, as common/service.c builds it, has to
    encode (a message or field that is not UTF-8, or too long, would leave only an empty
    map and the client without a code). */
static inline void fuzz_error_reply_encodes(const odp_error_t *e)
{
    FUZZ_REQUIRE(e->code != ODP_OK && odp_err_name(e->code), "a failure without an error code");
    FUZZ_REQUIRE(memchr(e->message, '\0', sizeof e->message) &&
                     memchr(e->field, '\0', sizeof e->field),
                 "an error text without its NUL");
    odp_rep_error_t rep = {0};
    rep.code = odp_v_str(odp_err_name(e->code));
    rep.message = odp_v_str(e->message[0] ? e->message : odp_err_summary(e->code));
    if (e->field[0])
        rep.field = odp_v_str(e->field);
    msgpack_sbuffer buf;
    int rc = odp_encode_buf(&odp_def_rep_error, &rep, &buf);
    FUZZ_REQUIRE(rc == 0, "the error reply does not encode (message or field not UTF-8?)");
    msgpack_sbuffer_destroy(&buf);
}

#endif
