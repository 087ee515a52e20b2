/*  odp_json_pack: JSON packed as msgpack reads back as the same JSON (odp_json_from_msgpack),
    and the renaming form renames only the keys it should: a dictionary's "enum" at the field
    level, not a deeper key that happens to share the name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/json.h"

static json_t *s_round_trip(const json_t *in, const char *from, const char *to)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    int rc = from ? odp_json_pack_renamed(&pk, in, from, to) : odp_json_pack(&pk, in);
    assert_int_equal(rc, 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, buf.data, buf.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, buf.size);
    json_t *out = odp_json_from_msgpack(&u.data);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&buf);
    return out;
}

static void s_same_value(void **state)
{
    (void)state;
    json_t *in = json_loads("{\"a\": [1, -2, 2.5, \"水质\", true, false, null, {}], \"b\": "
                            "{\"c\": 9007199254740993}}",
                            0, NULL);
    assert_non_null(in);
    json_t *out = s_round_trip(in, NULL, NULL);
    assert_true(json_equal(in, out));
    json_decref(out);
    json_decref(in);
}

static void s_renamed_at_field_level(void **state)
{
    (void)state;
    json_t *in = json_loads("[{\"name\": \"k\", \"enum\": [\"A\", \"B\"], \"x\": {\"enum\": 1}}, "
                            "{\"enum\": []}]",
                            0, NULL);
    assert_non_null(in);
    json_t *out = s_round_trip(in, "enum", "allowed");
    json_t *want = json_loads("[{\"name\": \"k\", \"allowed\": [\"A\", \"B\"], \"x\": {\"enum\": "
                              "1}}, {\"allowed\": []}]",
                              0, NULL);
    assert_true(json_equal(want, out));
    json_decref(want);
    json_decref(out);
    out = s_round_trip(json_array_get(in, 0), "enum", "allowed");
    assert_non_null(json_object_get(out, "allowed"));
    assert_null(json_object_get(out, "enum"));
    json_decref(out);
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s_same_value),
        cmocka_unit_test(s_renamed_at_field_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
