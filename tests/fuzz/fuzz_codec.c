/*  fuzz_codec: every declared message's decoder on hostile bytes.

    Input: one byte choosing the declaration (requests, events, replies: every message of
    proto/odp_proto.h, in declaration order), then the body. The promises checked:
      - odp_body_check and odp_decode never crash, leak or allocate without bound;
      - a body odp_body_check accepts, msgpack-c unpacks;
      - a refusal carries an error code and an error reply that encodes;
      - whatever decodes, encodes again, decodes again, and encodes to the same bytes
        (a service can always echo what it accepted). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"

#define S_REF(ident, cmd) &odp_def_##ident,
static const odp_msgdef_t *const s_defs[] = {ODP_REQUESTS(S_REF) ODP_EVENTS(S_REF)
                                                 ODP_REPLIES(S_REF)};
#undef S_REF

/*  Room for any message struct. */
typedef union {
#define S_MEMBER(ident, cmd) odp_##ident##_t ident;
    ODP_REQUESTS(S_MEMBER) ODP_EVENTS(S_MEMBER) ODP_REPLIES(S_MEMBER)
#undef S_MEMBER
} s_any_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const odp_msgdef_t *def = s_defs[data[0] % (sizeof s_defs / sizeof s_defs[0])];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    odp_error_t e = {0};
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    if (odp_body_check(body, len, &e) == 0) {
        msgpack_object obj;
        odp_error_t e2 = {0};
        FUZZ_REQUIRE(odp_body_unpack(body, len, &zone, &obj, &e2) == 0,
                     "a body the check accepted does not unpack");
        msgpack_zone_clear(&zone);
    } else {
        fuzz_error_reply_encodes(&e);
    }

    s_any_t out;
    memset(&out, 0, sizeof out);
    memset(&e, 0, sizeof e);
    if (odp_decode(def, body, len, &zone, &out, &e) < 0) {
        fuzz_error_reply_encodes(&e);
        msgpack_zone_destroy(&zone);
        return 0;
    }
    msgpack_sbuffer first, second;
    FUZZ_REQUIRE(odp_encode_buf(def, &out, &first) == 0, "a decoded message does not encode");
    s_any_t again;
    memset(&again, 0, sizeof again);
    msgpack_zone zone2;
    msgpack_zone_init(&zone2, 2048);
    FUZZ_REQUIRE(odp_decode(def, first.data, first.size, &zone2, &again, &e) == 0,
                 "a re-encoded message does not decode");
    FUZZ_REQUIRE(odp_encode_buf(def, &again, &second) == 0, "a round trip does not encode");
    FUZZ_REQUIRE(first.size == second.size && memcmp(first.data, second.data, first.size) == 0,
                 "encoding is not stable across a round trip");
    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
    msgpack_zone_destroy(&zone2);
    msgpack_zone_destroy(&zone);
    return 0;
}
