/*  test_codec: round trips, hostile bodies and a mutation fuzz loop for common/codec.

    Build: cc -std=c11 -D_GNU_SOURCE -I. tests/unit/test_codec.c common/codec.c \
               $(pkg-config --cflags --libs cmocka msgpack)
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/codec.h"

/*  ---------------------------------------------------------------------------------------
    A message the protocol does not declare (yet), so that STRS, BIN and ANY with a small
    limit are covered too.                                                               */

typedef struct {
    odp_val_t tags;
    odp_val_t blob;
    odp_val_t extra;
    char _end;
} t_local_t;

static const odp_field_t s_local_fields[] = {
    {"tags", ODP_T_STRS, true, 8, 0, 3, offsetof(t_local_t, tags)},
    {"blob", ODP_T_BIN, false, 4, 0, 0, offsetof(t_local_t, blob)},
    {"extra", ODP_T_ANY, false, 0, 0, 2, offsetof(t_local_t, extra)},
};
static const odp_msgdef_t s_local_def = {"test.local", "local", s_local_fields, 3};

//  Big enough, and aligned, for any declared message struct.
typedef union {
    odp_val_t vals[32];
    odp_department_add_t department_add;
    odp_rep_health_t rep_health;
} t_any_msg_t;

#define KEY_PK "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

static int s_setup_zone(void **state)
{
    msgpack_zone *zone = malloc(sizeof(msgpack_zone));
    if (!zone || !msgpack_zone_init(zone, 2048)) {
        free(zone);
        return -1;
    }
    *state = zone;
    return 0;
}

static int s_teardown_zone(void **state)
{
    msgpack_zone *zone = *state;
    msgpack_zone_destroy(zone);
    free(zone);
    return 0;
}

/*  ---------------------------------------------------------------------------------------
    Tables and lookups.                                                                  */

static void test_descriptors(void **state)
{
    (void)state;
    /*  One table entry per declaration, counted from the declaration lists themselves. */
#define S_ONE(ident, name) +1
    assert_int_equal(odp_nrequests, 0 ODP_REQUESTS(S_ONE));
    assert_int_equal(odp_nevents, 0 ODP_EVENTS(S_ONE));
#undef S_ONE
    assert_true(odp_nrequests >= 13);
    assert_int_equal(odp_def_health.nfields, 0);
    assert_non_null(odp_def_health.fields);
    assert_string_equal(odp_def_health.name, "health");
    assert_string_equal(odp_def_health.ident, "health");

    const odp_msgdef_t *def = &odp_def_department_add;
    assert_int_equal(def->nfields, 4);
    assert_string_equal(def->fields[0].name, "code");
    assert_int_equal(def->fields[0].type, ODP_T_STR);
    assert_true(def->fields[0].required);
    assert_int_equal(def->fields[0].max_len, 9);
    assert_int_equal(def->fields[0].min, 9);
    assert_int_equal(def->fields[1].offset, offsetof(odp_department_add_t, name));
    assert_int_equal(def->fields[3].offset, offsetof(odp_department_add_t, public_key));
    assert_false(def->fields[2].required);
    assert_null(def->fields[4].name); //  sentinel

    //  Events pull in the envelope through a nested macro
    def = &odp_def_ev_department_registered;
    assert_int_equal(def->nfields, 6);
    assert_string_equal(def->fields[0].name, "source");
    assert_string_equal(def->fields[1].name, "seq");
    assert_int_equal(def->fields[1].type, ODP_T_INT);
    assert_int_equal(def->fields[1].max, INT64_MAX);
    assert_int_equal(def->fields[5].offset, offsetof(odp_ev_department_registered_t, name));

    assert_int_equal(odp_def_rep_health.nfields, 10);
    assert_int_equal(odp_def_rep_health.fields[7].offset, offsetof(odp_rep_health_t, secure));
    assert_int_equal(odp_def_rep_replay.fields[0].type, ODP_T_ANY);
    assert_int_equal(odp_def_rep_replay.fields[0].max, 1000);
    assert_string_equal(odp_def_rep_list.name, "");

    assert_ptr_equal(odp_request_find("department.add", 14), &odp_def_department_add);
    assert_ptr_equal(odp_request_find("events.replay", 13), &odp_def_events_replay);
    assert_ptr_equal(odp_request_find("health", 6), &odp_def_health);
    assert_null(odp_request_find("department.ad", 13));
    assert_null(odp_request_find("department.addx", 15));
    assert_null(odp_request_find("department.add", 13));
    assert_null(odp_request_find("", 0));
    assert_null(odp_request_find(NULL, 0));
    assert_null(odp_request_find("heartbeat", 9));
    assert_ptr_equal(odp_event_find("heartbeat", 9), &odp_def_ev_heartbeat);
    assert_ptr_equal(odp_event_find("credential.revoked", 18), &odp_def_ev_credential_revoked);
    assert_null(odp_event_find("health", 6));
    //  (ptr, len): the name need not be NUL-terminated
    assert_ptr_equal(odp_request_find("whoami-and-more", 6), &odp_def_whoami);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(odp_err_name(ODP_E_MISSING_FIELD), "MISSING_FIELD");
    assert_int_equal(odp_err_status(ODP_E_MISSING_FIELD), 400);
    assert_string_equal(odp_err_summary(ODP_E_MISSING_FIELD), "a required field is missing");
    assert_int_equal(odp_err_status(ODP_E_INVALID_VALUE), 422);
    assert_int_equal(odp_err_status(ODP_E_UNAUTHENTICATED), 401);
    assert_int_equal(odp_err_status(ODP_E_UNAVAILABLE), 503);
    assert_string_equal(odp_err_name(ODP_E__COUNT), "UNKNOWN");
    assert_int_equal(odp_err_status(ODP_E__COUNT), 500);
    for (int code = ODP_OK + 1; code < ODP_E__COUNT; code++) {
        const char *name = odp_err_name((odp_err_t)code);
        assert_int_equal(odp_err_from_name(name, strlen(name)), code);
        assert_true(odp_err_status((odp_err_t)code) >= 400);
        assert_true(strlen(odp_err_summary((odp_err_t)code)) > 0);
    }
    assert_int_equal(odp_err_from_name("MISSING_FIELDS", 14), ODP_E__COUNT);
    assert_int_equal(odp_err_from_name("MISSING_FIELD", 12), ODP_E__COUNT);
    assert_int_equal(odp_err_from_name("OK", 2), ODP_E__COUNT);
    assert_int_equal(odp_err_from_name(NULL, 0), ODP_E__COUNT);

    odp_error_t e;
    assert_int_equal(odp_error_set(&e, ODP_E_TOO_LONG, "name", "at most %d", 200), -1);
    assert_int_equal(e.code, ODP_E_TOO_LONG);
    assert_string_equal(e.field, "name");
    assert_string_equal(e.message, "at most 200");
    assert_int_equal(odp_error_set(&e, ODP_E_INTERNAL, NULL, NULL), -1);
    assert_string_equal(e.field, "");
    assert_string_equal(e.message, odp_err_summary(ODP_E_INTERNAL));
    assert_int_equal(odp_error_set(NULL, ODP_E_INTERNAL, NULL, "x"), -1);

    //  Truncation must not split a character: these strings go back inside rep_error
    char longtext[600] = "";
    for (int i = 0; i < 40; i++)
        strcat(longtext, "数据");
    odp_error_set(&e, ODP_E_UNKNOWN_FIELD, longtext, "x%s", longtext);
    assert_true(strlen(e.field) <= 63);
    assert_true(odp_utf8_valid(e.field, strlen(e.field)));
    assert_true(strlen(e.message) <= 255);
    assert_true(odp_utf8_valid(e.message, strlen(e.message)));
}

/*  What tests/fuzz found. A caller that cut a path inside a character (the registrar's
    "fields[0].<unknown key>", 63 bytes) made an error reply that could not be encoded, so
    the client got an empty map and no code; and encoding a NUM of 2^63 cast a double
    outside int64 (undefined: UBSan stops `make asan` here). */
static void test_found_by_fuzzing(void **state)
{
    (void)state;
    odp_error_t e;
    odp_error_set(&e, ODP_E_UNKNOWN_FIELD, "fields[0].\xe6\x95",
                  "fields[0].\xe6\x95: field '\xe6\x95\xb0\xe6' is not part of %s", "x");
    assert_string_equal(e.field, "fields[0].?");
    assert_string_equal(e.message, "fields[0].?: field '数?' is not part of x");
    odp_rep_error_t rep = {0};
    rep.code = odp_v_str(odp_err_name(e.code));
    rep.message = odp_v_str(e.message);
    rep.field = odp_v_str(e.field);
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&odp_def_rep_error, &rep, &buf), 0);
    msgpack_sbuffer_destroy(&buf);

    const double big[] = {9223372036854775808.0, -9223372036854775808.0, 1e18 + 0.5, 73.0};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        odp_rec_dict_field_t f = {0}, back;
        f.name = odp_v_str("n");
        f.type = odp_v_str("numeric");
        f.min = odp_v_num(big[i]);
        assert_int_equal(odp_encode_buf(&odp_def_rec_dict_field, &f, &buf), 0);
        msgpack_zone zone;
        msgpack_zone_init(&zone, 1024);
        assert_int_equal(odp_decode(&odp_def_rec_dict_field, buf.data, buf.size, &zone, &back, &e),
                         0);
        assert_true(back.min.d == big[i]);
        msgpack_zone_destroy(&zone);
        msgpack_sbuffer_destroy(&buf);
    }
}

/*  ---------------------------------------------------------------------------------------
    UTF-8.                                                                               */

static bool s_utf8(const char *s)
{
    return odp_utf8_valid(s, strlen(s));
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(s_utf8("广东省数据管理局"));
    assert_true(s_utf8("plain ascii"));
    assert_true(s_utf8(""));
    assert_true(odp_utf8_valid(NULL, 0));
    assert_true(s_utf8("\xc2\x80"));         //  U+0080, smallest two-byte
    assert_true(s_utf8("\xe0\xa0\x80"));     //  U+0800, smallest three-byte
    assert_true(s_utf8("\xed\x9f\xbf"));     //  U+D7FF, just below the surrogates
    assert_true(s_utf8("\xee\x80\x80"));     //  U+E000, just above them
    assert_true(s_utf8("\xef\xbf\xbf"));     //  U+FFFF
    assert_true(s_utf8("\xf0\x90\x80\x80")); //  U+10000
    assert_true(s_utf8("\xf0\x9f\x98\x80")); //  an emoji
    assert_true(s_utf8("\xf4\x8f\xbf\xbf")); //  U+10FFFF, the last code point

    assert_false(s_utf8("\xc0\xaf"));         //  overlong '/'
    assert_false(s_utf8("\xc1\xbf"));         //  overlong
    assert_false(s_utf8("\xe0\x80\xaf"));     //  overlong three-byte
    assert_false(s_utf8("\xf0\x80\x80\xaf")); //  overlong four-byte
    assert_false(s_utf8("\xed\xa0\x80"));     //  U+D800
    assert_false(s_utf8("\xed\xbf\xbf"));     //  U+DFFF
    assert_false(s_utf8("\xf4\x90\x80\x80")); //  U+110000
    assert_false(s_utf8("\xf5\x80\x80\x80"));
    assert_false(s_utf8("\xff"));
    assert_false(s_utf8("\xe4\xb8"));         //  truncated
    assert_false(s_utf8("\xe4\xb8\x61"));     //  truncated, then 'a'
    assert_false(s_utf8("\x80"));             //  stray continuation
    assert_false(s_utf8("a\xbf\x62"));        //  continuation between 'a' and 'b'
    assert_false(s_utf8("\xe4\xb8\xad\xad")); //  one continuation too many
    assert_false(odp_utf8_valid("a\0b", 3));  //  NUL: PostgreSQL text cannot hold it
    assert_false(odp_utf8_valid("\0", 1));
}

/*  ---------------------------------------------------------------------------------------
    Round trips.                                                                         */

static void test_roundtrip_department_add(void **state)
{
    msgpack_zone *zone = *state;
    odp_department_add_t in = {
        .code = odp_v_str("440300001"),
        .name = odp_v_str("广东省数据管理局"),
        .contact = odp_v_str("data@gd.gov.cn"),
        .public_key = odp_v_str(KEY_PK),
    };
    assert_int_equal(strlen(KEY_PK), 40);
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&odp_def_department_add, &in, &buf), 0);

    odp_department_add_t out;
    memset(&out, 0xAB, sizeof(out)); //  decode must clear it
    odp_error_t e;
    assert_int_equal(odp_decode(&odp_def_department_add, buf.data, buf.size, zone, &out, &e), 0);
    assert_true(out.code.present);
    assert_true(odp_v_eq(&out.code, "440300001"));
    assert_true(odp_v_eq(&out.name, "广东省数据管理局"));
    assert_int_equal(out.name.len, strlen("广东省数据管理局"));
    assert_true(odp_v_eq(&out.contact, "data@gd.gov.cn"));
    assert_true(odp_v_eq(&out.public_key, KEY_PK));
    assert_null(out.name.obj);
    assert_null(out.name.raw);
    //  Views, not copies: they point into the encoded bytes
    assert_true(out.code.str >= buf.data && out.code.str < buf.data + buf.size);

    char cstr[64];
    assert_string_equal(odp_v_cstr(&out.code, cstr, sizeof(cstr)), "440300001");
    //  Too small a buffer cuts at a character boundary, never inside one
    char small[8];
    assert_string_equal(odp_v_cstr(&out.name, small, sizeof(small)), "广东");
    assert_string_equal(odp_v_cstr(&out.code, small, 4), "440");
    msgpack_sbuffer_destroy(&buf);

    //  Optional fields left out stay absent
    odp_department_add_t lean = {.code = odp_v_str("440300002"), .name = odp_v_str("x")};
    assert_int_equal(odp_encode_buf(&odp_def_department_add, &lean, &buf), 0);
    assert_int_equal((uint8_t)buf.data[0], 0x82);
    assert_int_equal(odp_decode(&odp_def_department_add, buf.data, buf.size, zone, &out, &e), 0);
    assert_false(out.contact.present);
    assert_false(out.public_key.present);
    assert_true(odp_v_eq(&out.contact, NULL));
    assert_string_equal(odp_v_cstr(&out.contact, cstr, sizeof(cstr)), "");
    msgpack_sbuffer_destroy(&buf);
}

static void test_roundtrip_events_replay(void **state)
{
    msgpack_zone *zone = *state;
    odp_events_replay_t in = {.from = odp_v_int(INT64_MAX), .limit = odp_v_int(1000)};
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&odp_def_events_replay, &in, &buf), 0);
    odp_events_replay_t out;
    odp_error_t e;
    assert_int_equal(odp_decode(&odp_def_events_replay, buf.data, buf.size, zone, &out, &e), 0);
    assert_true(out.from.present);
    assert_int_equal(out.from.i, INT64_MAX);
    assert_true(out.limit.present);
    assert_int_equal(out.limit.i, 1000);
    msgpack_sbuffer_destroy(&buf);

    odp_events_replay_t first = {.from = odp_v_int(1)};
    assert_int_equal(odp_encode_buf(&odp_def_events_replay, &first, &buf), 0);
    assert_int_equal(odp_decode(&odp_def_events_replay, buf.data, buf.size, zone, &out, &e), 0);
    assert_int_equal(out.from.i, 1);
    assert_false(out.limit.present);
    msgpack_sbuffer_destroy(&buf);
}

static void test_roundtrip_event(void **state)
{
    msgpack_zone *zone = *state;
    odp_ev_department_registered_t in = {
        .source = odp_v_str("registrar"),
        .seq = odp_v_int(42),
        .at = odp_v_str("2024-05-01T08:00:00.123456Z"),
        .actor = odp_v_str("authority:广东省政务服务数据管理局"),
        .code = odp_v_str("440300001"),
        .name = odp_v_strn("深圳市数据局-extra", strlen("深圳市数据局")),
    };
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&odp_def_ev_department_registered, &in, &buf), 0);
    odp_ev_department_registered_t out;
    odp_error_t e;
    assert_int_equal(
        odp_decode(&odp_def_ev_department_registered, buf.data, buf.size, zone, &out, &e), 0);
    assert_true(odp_v_eq(&out.source, "registrar"));
    assert_int_equal(out.seq.i, 42);
    assert_true(odp_v_eq(&out.at, "2024-05-01T08:00:00.123456Z"));
    assert_true(odp_v_eq(&out.actor, "authority:广东省政务服务数据管理局"));
    assert_true(odp_v_eq(&out.code, "440300001"));
    assert_true(odp_v_eq(&out.name, "深圳市数据局"));

    //  The same bytes are not a heartbeat: unknown fields are refused
    odp_ev_heartbeat_t hb;
    assert_int_equal(odp_decode(&odp_def_ev_heartbeat, buf.data, buf.size, zone, &hb, &e), -1);
    assert_int_equal(e.code, ODP_E_UNKNOWN_FIELD);
    assert_string_equal(e.field, "actor");
    msgpack_sbuffer_destroy(&buf);
}

static void test_roundtrip_rep_health(void **state)
{
    msgpack_zone *zone = *state;
    odp_rep_health_t in = {
        .service = odp_v_str("registrar"),
        .status = odp_v_str("ok"),
        .db = odp_v_bool(true),
        .seq = odp_v_int(0),
        .uptime_s = odp_v_int(INT64_MAX),
        .requests = odp_v_int(7),
        .errors = odp_v_int(4294967296LL),
        .secure = odp_v_bool(false),
    };
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&odp_def_rep_health, &in, &buf), 0);
    odp_rep_health_t out;
    odp_error_t e;
    assert_int_equal(odp_decode(&odp_def_rep_health, buf.data, buf.size, zone, &out, &e), 0);
    assert_true(odp_v_eq(&out.service, "registrar"));
    assert_true(odp_v_eq(&out.status, "ok"));
    assert_true(out.db.present && out.db.b);
    assert_true(out.seq.present);
    assert_int_equal(out.seq.i, 0);
    assert_int_equal(out.uptime_s.i, INT64_MAX);
    assert_int_equal(out.requests.i, 7);
    assert_int_equal(out.errors.i, 4294967296LL);
    assert_true(out.secure.present);
    assert_false(out.secure.b);
    msgpack_sbuffer_destroy(&buf);

    //  Messages without fields encode as an empty map and decode from one
    odp_health_t health = {0};
    assert_int_equal(odp_encode_buf(&odp_def_health, &health, &buf), 0);
    assert_int_equal(buf.size, 1);
    assert_int_equal((uint8_t)buf.data[0], 0x80);
    assert_int_equal(odp_decode(&odp_def_health, buf.data, buf.size, zone, &health, &e), 0);
    msgpack_sbuffer_destroy(&buf);
}

static void test_roundtrip_rep_replay_any(void **state)
{
    msgpack_zone *zone = *state;
    //  One event as the replay reply carries it: [topic, body-bin]
    odp_ev_department_registered_t ev = {
        .source = odp_v_str("registrar"),
        .seq = odp_v_int(7),
        .at = odp_v_str("2024-05-01T08:00:00Z"),
        .actor = odp_v_str("staff:li"),
        .code = odp_v_str("440300001"),
        .name = odp_v_str("数据局"),
    };
    msgpack_sbuffer body;
    assert_int_equal(odp_encode_buf(&odp_def_ev_department_registered, &ev, &body), 0);

    msgpack_sbuffer raw;
    msgpack_sbuffer_init(&raw);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &raw, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "department.registered", 21);
    msgpack_pack_bin_with_body(&pk, body.data, body.size);

    odp_rep_replay_t in = {
        .events = odp_v_raw(raw.data, raw.size),
        .last = odp_v_int(7),
        .more = odp_v_bool(false),
    };
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&odp_def_rep_replay, &in, &buf), 0);

    odp_rep_replay_t out;
    odp_error_t e;
    assert_int_equal(odp_decode(&odp_def_rep_replay, buf.data, buf.size, zone, &out, &e), 0);
    assert_int_equal(out.last.i, 7);
    assert_false(out.more.b);
    const msgpack_object *events = out.events.obj;
    assert_non_null(events);
    assert_int_equal(events->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(events->via.array.size, 1);
    const msgpack_object *pair = &events->via.array.ptr[0];
    assert_int_equal(pair->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(pair->via.array.size, 2);
    const msgpack_object *topic = &pair->via.array.ptr[0];
    const msgpack_object *bin = &pair->via.array.ptr[1];
    assert_int_equal(topic->type, MSGPACK_OBJECT_STR);
    const odp_msgdef_t *def = odp_event_find(topic->via.str.ptr, topic->via.str.size);
    assert_ptr_equal(def, &odp_def_ev_department_registered);
    assert_int_equal(bin->type, MSGPACK_OBJECT_BIN);

    //  The inner body decodes with its own declaration
    odp_ev_department_registered_t inner;
    assert_int_equal(odp_decode(def, bin->via.bin.ptr, bin->via.bin.size, zone, &inner, &e), 0);
    assert_true(odp_v_eq(&inner.name, "数据局"));
    assert_int_equal(inner.seq.i, 7);

    //  Re-encoding the decoded object (obj, not raw) gives the same bytes
    msgpack_sbuffer again;
    assert_int_equal(odp_encode_buf(&odp_def_rep_replay, &out, &again), 0);
    assert_int_equal(again.size, buf.size);
    assert_memory_equal(again.data, buf.data, buf.size);

    msgpack_sbuffer_destroy(&again);
    msgpack_sbuffer_destroy(&buf);
    msgpack_sbuffer_destroy(&raw);
    msgpack_sbuffer_destroy(&body);
}

static void test_roundtrip_strs_bin(void **state)
{
    msgpack_zone *zone = *state;
    msgpack_object items[3] = {
        {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 3, .ptr = "abc"}},
        {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 6, .ptr = "数据"}},
        {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 0, .ptr = NULL}},
    };
    msgpack_object tags = {.type = MSGPACK_OBJECT_ARRAY, .via.array = {.size = 3, .ptr = items}};
    static const char extra[] = "\x82\xa1k\x01\xa1v\x92\xc3\xc0"; //  {"k": 1, "v": [true, nil]}
    t_local_t in = {
        .tags = {.present = true, .obj = &tags},
        .blob = odp_v_bin("\x00\x01\xff", 3),
        .extra = odp_v_raw(extra, sizeof(extra) - 1),
    };
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&s_local_def, &in, &buf), 0);

    t_local_t out;
    odp_error_t e;
    assert_int_equal(odp_decode(&s_local_def, buf.data, buf.size, zone, &out, &e), 0);
    assert_non_null(out.tags.obj);
    assert_int_equal(out.tags.obj->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(out.tags.obj->via.array.size, 3);
    const msgpack_object *got = out.tags.obj->via.array.ptr;
    assert_int_equal(got[0].via.str.size, 3);
    assert_memory_equal(got[0].via.str.ptr, "abc", 3);
    assert_int_equal(got[1].via.str.size, 6);
    assert_memory_equal(got[1].via.str.ptr, "数据", 6);
    assert_int_equal(got[2].via.str.size, 0);
    assert_true(out.blob.present);
    assert_int_equal(out.blob.len, 3);
    assert_memory_equal(out.blob.str, "\x00\x01\xff", 3);
    assert_int_equal(out.extra.obj->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(out.extra.obj->via.map.size, 2);
    assert_int_equal(out.extra.obj->via.map.ptr[1].val.type, MSGPACK_OBJECT_ARRAY);
    msgpack_sbuffer_destroy(&buf);

    //  Only the required field: an empty list is still a list
    t_local_t lean = {.tags = {.present = true, .obj = &tags}};
    tags.via.array.size = 0;
    assert_int_equal(odp_encode_buf(&s_local_def, &lean, &buf), 0);
    assert_int_equal(odp_decode(&s_local_def, buf.data, buf.size, zone, &out, &e), 0);
    assert_int_equal(out.tags.obj->via.array.size, 0);
    assert_false(out.blob.present);
    assert_false(out.extra.present);
    msgpack_sbuffer_destroy(&buf);
}

/*  ---------------------------------------------------------------------------------------
    Hostile bodies. Each string literal is the exact bytes (sizeof - 1, so NULs count).  */

typedef struct {
    const char *label;
    const char *bytes;
    size_t len;
    const odp_msgdef_t *def; //  NULL: odp_body_check only
    odp_err_t code;          //  ODP_OK: must be accepted
    const char *field;       //  expected e.field, NULL for ""
} t_case_t;

// clang-format off
#define B(s) s, sizeof(s) - 1

#define K_FROM    "\xa4" "from"
#define K_LIMIT   "\xa5" "limit"
#define K_CODE    "\xa4" "code"
#define K_NAME    "\xa4" "name"
#define K_ACTIVE  "\xa6" "active"
#define K_EVENTS  "\xa6" "events"
#define K_LAST    "\xa4" "last"
#define K_MORE    "\xa4" "more"
#define K_GRANTED "\xaa" "granted_on"
#define K_TAGS    "\xa4" "tags"
#define K_BLOB    "\xa4" "blob"
#define K_EXTRA   "\xa5" "extra"
#define CODE_OK   K_CODE "\xa9" "440300001"
#define NAME_BAD  "\x82" CODE_OK K_NAME //  department_add, then a bad name value

#define A4   "\x91\x91\x91\x91"
#define A15  A4 A4 A4 "\x91\x91\x91"
#define A16  A4 A4 A4 A4
#define A17  A16 "\x91"
#define A100 A16 A16 A16 A16 A16 A16 A4

#define ER &odp_def_events_replay
#define DG &odp_def_department_get
#define DA &odp_def_department_add
#define DU &odp_def_department_update
#define RR &odp_def_rep_replay
#define LO &s_local_def

static const t_case_t s_cases[] = {
    //  Not msgpack, or cut short
    {"empty body",                  B(""), ER, ODP_E_MALFORMED, NULL},
    {"lone str8 header",            B("\xd9"), DG, ODP_E_MALFORMED, NULL},
    {"str8 header without data",    B("\x81" K_CODE "\xd9\x09"), DG, ODP_E_MALFORMED, NULL},
    {"fixstr cut short",            B("\x81" K_CODE "\xa9" "4403"), DG, ODP_E_MALFORMED, NULL},
    {"int32 cut short",             B("\x81" K_FROM "\xd2\x00\x00"), ER, ODP_E_MALFORMED, NULL},
    {"uint64 cut short",            B("\x81" K_FROM "\xcf\x00\x00\x00"), ER, ODP_E_MALFORMED, NULL},
    {"float64 cut short",           B("\x81" K_FROM "\xcb\x3f"), ER, ODP_E_MALFORMED, NULL},
    {"map missing a value",         B("\x81" K_FROM), ER, ODP_E_MALFORMED, NULL},
    {"map of two with one pair",    B("\x82" K_FROM "\x01"), ER, ODP_E_MALFORMED, NULL},
    {"array16 header cut",          B("\xdc\x00"), ER, ODP_E_MALFORMED, NULL},
    {"bin8 shorter than declared",  B("\x81" K_CODE "\xc4\x09" "abc"), DG, ODP_E_MALFORMED, NULL},
    {"ext8 cut short",              B("\x81" K_CODE "\xc7\x05\x01" "ab"), DG, ODP_E_MALFORMED, NULL},
    {"fixext4 cut short",           B("\x81" K_CODE "\xd6\x01" "ab"), DG, ODP_E_MALFORMED, NULL},
    {"0xc1 alone",                  B("\xc1"), ER, ODP_E_MALFORMED, NULL},
    {"0xc1 as a value",             B("\x81" K_FROM "\xc1"), ER, ODP_E_MALFORMED, NULL},
    {"0xc1 as a key",               B("\x81\xc1\x01"), ER, ODP_E_MALFORMED, NULL},
    {"str32 claiming 4 GB",         B("\x81" K_CODE "\xdb\xff\xff\xff\xff" "abc"), DG, ODP_E_MALFORMED, NULL},
    {"bin32 claiming 4 GB",         B("\x81" K_CODE "\xc6\xff\xff\xff\xff" "abc"), DG, ODP_E_MALFORMED, NULL},
    {"ext32 claiming 4 GB",         B("\x81" K_CODE "\xc9\xff\xff\xff\xff\x01" "ab"), DG, ODP_E_MALFORMED, NULL},
    //  One value and nothing else
    {"trailing byte after a map",   B("\x81" K_FROM "\x01" "\x00"), ER, ODP_E_TRAILING_BYTES, NULL},
    {"two maps",                    B("\x80\x80"), ER, ODP_E_TRAILING_BYTES, NULL},
    //  Depth
    {"depth 16 accepted by walker", B(A16 "\xc0"), NULL, ODP_OK, NULL},
    {"depth 17 refused by walker",  B(A17 "\xc0"), NULL, ODP_E_TOO_DEEP, NULL},
    {"depth 17 body",               B(A17 "\xc0"), ER, ODP_E_TOO_DEEP, NULL},
    {"depth 100 body",              B(A100 "\xc0"), ER, ODP_E_TOO_DEEP, NULL},
    {"depth 16 inside a message",   B("\x83" K_EVENTS A15 "\xc0" K_LAST "\x00" K_MORE "\xc2"), RR, ODP_OK, NULL},
    {"depth 17 inside a message",   B("\x83" K_EVENTS A16 "\xc0" K_LAST "\x00" K_MORE "\xc2"), RR, ODP_E_TOO_DEEP, NULL},
    {"empty containers count",      B(A16 "\x90"), NULL, ODP_E_TOO_DEEP, NULL},
    //  Counts the bytes cannot hold (msgpack-c issue #1013)
    {"array32 of 2^32-1 in 5 bytes", B("\xdd\xff\xff\xff\xff"), ER, ODP_E_BAD_COUNT, NULL},
    {"map32 of 2^32-1 in 5 bytes",  B("\xdf\xff\xff\xff\xff"), ER, ODP_E_BAD_COUNT, NULL},
    {"map16 of 1000 in 3 bytes",    B("\xde\x03\xe8"), ER, ODP_E_BAD_COUNT, NULL},
    {"fixmap of 15 with 2 bytes",   B("\x8f\x01\x02"), ER, ODP_E_BAD_COUNT, NULL},
    {"map needs 2 bytes per entry", B("\x82\x01\x02\x03"), ER, ODP_E_BAD_COUNT, NULL},
    {"array32 bomb inside a field", B("\x81" K_EVENTS "\xdd\xff\xff\xff\xff"), RR, ODP_E_BAD_COUNT, NULL},
    //  Shape
    {"body is an array",            B("\x91\x01"), ER, ODP_E_NOT_A_MAP, NULL},
    {"body is an int",              B("\x05"), ER, ODP_E_NOT_A_MAP, NULL},
    {"body is a string",            B("\xa3" "abc"), ER, ODP_E_NOT_A_MAP, NULL},
    {"body is nil",                 B("\xc0"), ER, ODP_E_NOT_A_MAP, NULL},
    {"int key",                     B("\x81\x01\x01"), ER, ODP_E_BAD_KEY, NULL},
    {"bin key",                     B("\x81\xc4\x04" "from" "\x01"), ER, ODP_E_BAD_KEY, NULL},
    {"nil key",                     B("\x81\xc0\x01"), ER, ODP_E_BAD_KEY, NULL},
    {"invalid UTF-8 key",           B("\x81\xa2\xc0\xaf\x01"), ER, ODP_E_BAD_KEY, NULL},
    {"NUL in key",                  B("\x81\xa5" "fr" "\x00" "om" "\x01"), ER, ODP_E_BAD_KEY, NULL},
    {"unknown field",               B("\x82" K_FROM "\x01" "\xa4" "nope" "\x01"), ER, ODP_E_UNKNOWN_FIELD, "nope"},
    {"field where none declared",   B("\x81\xa1" "x" "\x01"), &odp_def_health, ODP_E_UNKNOWN_FIELD, "x"},
    {"key that differs by case",    B("\x81\xa4" "From" "\x01"), ER, ODP_E_UNKNOWN_FIELD, "From"},
    {"duplicate field",             B("\x82" K_FROM "\x01" K_FROM "\x02"), ER, ODP_E_DUPLICATE_FIELD, "from"},
    {"duplicate after nil",         B("\x83" K_FROM "\x01" K_LIMIT "\xc0" K_LIMIT "\x05"), ER, ODP_E_DUPLICATE_FIELD, "limit"},
    {"empty map",                   B("\x80"), ER, ODP_E_MISSING_FIELD, "from"},
    {"only the optional field",     B("\x81" K_LIMIT "\x05"), ER, ODP_E_MISSING_FIELD, "from"},
    {"department without name",     B("\x81" CODE_OK), DA, ODP_E_MISSING_FIELD, "name"},
    {"nil in a required field",     B("\x81" K_FROM "\xc0"), ER, ODP_E_MISSING_FIELD, "from"},
    {"nil in an optional field",    B("\x82" K_FROM "\x01" K_LIMIT "\xc0"), ER, ODP_OK, NULL},
    //  Types
    {"int where STR",               B("\x81" K_CODE "\x05"), DG, ODP_E_WRONG_TYPE, "code"},
    {"str where INT",               B("\x81" K_FROM "\xa1" "1"), ER, ODP_E_WRONG_TYPE, "from"},
    {"bin where STR",               B("\x81" K_CODE "\xc4\x09" "440300001"), DG, ODP_E_WRONG_TYPE, "code"},
    {"float64 where INT",           B("\x81" K_FROM "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), ER, ODP_E_WRONG_TYPE, "from"},
    {"float32 where INT",           B("\x81" K_FROM "\xca\x3f\x80\x00\x00"), ER, ODP_E_WRONG_TYPE, "from"},
    {"bool where INT",              B("\x81" K_FROM "\xc3"), ER, ODP_E_WRONG_TYPE, "from"},
    {"array where BOOL",            B("\x82" CODE_OK K_ACTIVE "\x90"), DU, ODP_E_WRONG_TYPE, "active"},
    {"int where BOOL",              B("\x82" CODE_OK K_ACTIVE "\x01"), DU, ODP_E_WRONG_TYPE, "active"},
    {"map where STR",               B("\x81" K_CODE "\x80"), DG, ODP_E_WRONG_TYPE, "code"},
    {"ext where STR",               B("\x81" K_CODE "\xd4\x01\x41"), DG, ODP_E_WRONG_TYPE, "code"},
    {"int where ANY",               B("\x83" K_EVENTS "\x05" K_LAST "\x00" K_MORE "\xc2"), RR, ODP_E_WRONG_TYPE, "events"},
    //  UTF-8 in values
    {"overlong",                    B(NAME_BAD "\xa2\xc0\xaf"), DA, ODP_E_BAD_UTF8, "name"},
    {"surrogate",                   B(NAME_BAD "\xa3\xed\xa0\x80"), DA, ODP_E_BAD_UTF8, "name"},
    {"above U+10FFFF",              B(NAME_BAD "\xa4\xf4\x90\x80\x80"), DA, ODP_E_BAD_UTF8, "name"},
    {"truncated sequence",          B(NAME_BAD "\xa2\xe4\xb8"), DA, ODP_E_BAD_UTF8, "name"},
    {"stray continuation",          B(NAME_BAD "\xa1\x80"), DA, ODP_E_BAD_UTF8, "name"},
    {"embedded NUL",                B(NAME_BAD "\xa3" "a" "\x00" "b"), DA, ODP_E_BAD_UTF8, "name"},
    {"byte 0xf5",                   B(NAME_BAD "\xa4\xf5\x80\x80\x80"), DA, ODP_E_BAD_UTF8, "name"},
    {"Chinese text is fine",        B(NAME_BAD "\xa6\xe6\x95\xb0\xe6\x8d\xae"), DA, ODP_OK, NULL},
    //  Lengths and ranges
    {"code of 10 bytes",            B("\x81" K_CODE "\xaa" "4403000012"), DG, ODP_E_TOO_LONG, "code"},
    {"code of 8 bytes",             B("\x81" K_CODE "\xa8" "44030000"), DG, ODP_E_OUT_OF_RANGE, "code"},
    {"empty name",                  B(NAME_BAD "\xa0"), DA, ODP_E_OUT_OF_RANGE, "name"},
    {"granted_on of 11 bytes",      B("\x81" K_GRANTED "\xab" "2024-01-011"), &odp_def_authority_register, ODP_E_TOO_LONG, "granted_on"},
    {"INT 0 below min 1",           B("\x81" K_FROM "\x00"), ER, ODP_E_OUT_OF_RANGE, "from"},
    {"INT -1 below min",            B("\x81" K_FROM "\xff"), ER, ODP_E_OUT_OF_RANGE, "from"},
    {"INT64_MIN",                   B("\x81" K_FROM "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), ER, ODP_E_OUT_OF_RANGE, "from"},
    {"limit 1001 above max",        B("\x82" K_FROM "\x01" K_LIMIT "\xcd\x03\xe9"), ER, ODP_E_OUT_OF_RANGE, "limit"},
    {"limit 0 below min",           B("\x82" K_FROM "\x01" K_LIMIT "\x00"), ER, ODP_E_OUT_OF_RANGE, "limit"},
    {"limit 1000 accepted",         B("\x82" K_FROM "\x01" K_LIMIT "\xcd\x03\xe8"), ER, ODP_OK, NULL},
    {"uint64 2^63",                 B("\x81" K_FROM "\xcf\x80\x00\x00\x00\x00\x00\x00\x00"), ER, ODP_E_OUT_OF_RANGE, "from"},
    {"uint64 max",                  B("\x81" K_FROM "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), ER, ODP_E_OUT_OF_RANGE, "from"},
    {"INT64_MAX as uint64",         B("\x81" K_FROM "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"), ER, ODP_OK, NULL},
    {"small int in int8 form",      B("\x81" K_FROM "\xd0\x05"), ER, ODP_OK, NULL},
    //  STRS, BIN and ANY limits (local declaration)
    {"STRS with 4 items",           B("\x81" K_TAGS "\x94\xa1" "a" "\xa1" "b" "\xa1" "c" "\xa1" "d"), LO, ODP_E_TOO_LONG, "tags"},
    {"STRS with an int item",       B("\x81" K_TAGS "\x92\xa1" "a" "\x05"), LO, ODP_E_WRONG_TYPE, "tags"},
    {"STRS with bad UTF-8",         B("\x81" K_TAGS "\x91\xa2\xc0\xaf"), LO, ODP_E_BAD_UTF8, "tags"},
    {"STRS item of 9 bytes",        B("\x81" K_TAGS "\x91\xa9" "123456789"), LO, ODP_E_TOO_LONG, "tags"},
    {"STRS given a string",         B("\x81" K_TAGS "\xa1" "a"), LO, ODP_E_WRONG_TYPE, "tags"},
    {"STRS empty list",             B("\x81" K_TAGS "\x90"), LO, ODP_OK, NULL},
    {"BIN of 5 bytes",              B("\x82" K_TAGS "\x90" K_BLOB "\xc4\x05" "12345"), LO, ODP_E_TOO_LONG, "blob"},
    {"str where BIN",               B("\x82" K_TAGS "\x90" K_BLOB "\xa1" "1"), LO, ODP_E_WRONG_TYPE, "blob"},
    {"ANY with 3 items",            B("\x82" K_TAGS "\x90" K_EXTRA "\x93\x01\x02\x03"), LO, ODP_E_TOO_LONG, "extra"},
    {"ANY map of 2",                B("\x82" K_TAGS "\x90" K_EXTRA "\x82\x01\x02\x03\x04"), LO, ODP_OK, NULL},
    {"string where ANY",            B("\x82" K_TAGS "\x90" K_EXTRA "\xa1" "x"), LO, ODP_E_WRONG_TYPE, "extra"},
};
// clang-format on

static void test_hostile_table(void **state)
{
    msgpack_zone *zone = *state;
    size_t ncases = sizeof(s_cases) / sizeof(s_cases[0]);
    assert_true(ncases >= 40);
    int failures = 0;
    for (size_t i = 0; i < ncases; i++) {
        const t_case_t *c = &s_cases[i];
        t_any_msg_t out;
        odp_error_t e;
        memset(&e, 0, sizeof(e));
        int rc = c->def ? odp_decode(c->def, c->bytes, c->len, zone, &out, &e)
                        : odp_body_check(c->bytes, c->len, &e);
        const char *field = c->field ? c->field : "";
        bool ok;
        if (c->code == ODP_OK)
            ok = rc == 0;
        else
            ok = rc == -1 && e.code == c->code && strcmp(e.field, field) == 0 &&
                 strlen(e.message) > 0 && odp_utf8_valid(e.message, strlen(e.message));
        if (!ok) {
            print_error("case '%s': rc %d, got %s field '%s' (%s); want %s field '%s'\n", c->label,
                        rc, rc ? odp_err_name(e.code) : "OK", rc ? e.field : "",
                        rc ? e.message : "", odp_err_name(c->code), field);
            failures++;
        }
        //  On failure nothing half-decoded may be left behind
        if (rc && c->def)
            for (size_t f = 0; f < c->def->nfields; f++)
                assert_false(((odp_val_t *)((char *)&out + c->def->fields[f].offset))->present);
    }
    print_message("%zu hostile cases\n", ncases);
    assert_int_equal(failures, 0);
}

static void test_messages(void **state)
{
    msgpack_zone *zone = *state;
    odp_department_get_t out;
    odp_error_t e;
    assert_int_equal(odp_decode(&odp_def_department_get,
                                B("\x81" K_CODE "\xaa"
                                  "4403000012"),
                                zone, &out, &e),
                     -1);
    assert_string_equal(e.message, "field 'code' must be text of exactly 9 bytes");

    odp_department_add_t da;
    assert_int_equal(odp_decode(&odp_def_department_add, B(NAME_BAD "\xa0"), zone, &da, &e), -1);
    assert_string_equal(e.message, "field 'name' must be text of 1 to 200 bytes");

    odp_events_replay_t er;
    assert_int_equal(odp_decode(&odp_def_events_replay,
                                B("\x81" K_FROM "\xa1"
                                  "1"),
                                zone, &er, &e),
                     -1);
    assert_string_equal(e.message, "field 'from' must be an integer, not text");

    //  An unknown key is echoed back cut to fit e.field, at a character boundary
    char body[200];
    size_t len = 0;
    body[len++] = (char)0x81;
    body[len++] = (char)0xd9;
    body[len++] = 99;
    for (int i = 0; i < 33; i++) {
        memcpy(body + len, "数", 3);
        len += 3;
    }
    body[len++] = 0x01;
    assert_int_equal(odp_decode(&odp_def_events_replay, body, len, zone, &er, &e), -1);
    assert_int_equal(e.code, ODP_E_UNKNOWN_FIELD);
    assert_int_equal(strlen(e.field), 63);
    assert_true(odp_utf8_valid(e.field, strlen(e.field)));
    assert_true(odp_utf8_valid(e.message, strlen(e.message)));

    //  No zone is a programmer error, not a client's
    assert_int_equal(odp_decode(&odp_def_events_replay, B("\x81" K_FROM "\x01"), NULL, &er, &e),
                     -1);
    assert_int_equal(e.code, ODP_E_INTERNAL);

    //  odp_body_unpack and odp_decode_fields separately
    msgpack_object obj;
    assert_int_equal(odp_body_unpack(B("\x81" K_FROM "\x01"), zone, &obj, &e), 0);
    assert_int_equal(obj.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(odp_decode_fields(&odp_def_events_replay, &obj, &er, &e), 0);
    assert_int_equal(er.from.i, 1);
    assert_int_equal(odp_decode_fields(&odp_def_department_get, &obj, &out, &e), -1);
    assert_int_equal(e.code, ODP_E_UNKNOWN_FIELD);
}

/*  ---------------------------------------------------------------------------------------
    Encode refuses what decode would refuse.                                             */

static int s_failing_write(void *data, const char *buf, size_t len)
{
    (void)data;
    (void)buf;
    (void)len;
    return -1;
}

static void s_refused(const odp_msgdef_t *def, const void *in)
{
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(def, in, &buf), -1);
    assert_int_equal(buf.size, 0);
    msgpack_sbuffer_destroy(&buf);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    odp_department_add_t da = {.code = odp_v_str("440300001")};
    s_refused(&odp_def_department_add, &da); //  name missing

    char name[202];
    memset(name, 'x', 201);
    name[201] = '\0';
    da.name = odp_v_str(name);
    s_refused(&odp_def_department_add, &da); //  201 bytes
    da.name = odp_v_strn(name, 200);
    msgpack_sbuffer buf;
    assert_int_equal(odp_encode_buf(&odp_def_department_add, &da, &buf), 0);
    msgpack_sbuffer_destroy(&buf);

    da.code = odp_v_str("4403000012");
    s_refused(&odp_def_department_add, &da); //  code too long
    da.code = odp_v_str("44030000");
    s_refused(&odp_def_department_add, &da); //  code too short
    da.code = odp_v_str("440300001");
    da.name = odp_v_str("\xed\xa0\x80");
    s_refused(&odp_def_department_add, &da); //  surrogate
    da.name = odp_v_strn("a\0b", 3);
    s_refused(&odp_def_department_add, &da); //  NUL
    da.name = odp_v_str("ok");
    da.public_key = odp_v_str("short");
    s_refused(&odp_def_department_add, &da); //  public_key must be 40

    odp_events_replay_t er = {.from = odp_v_int(0)};
    s_refused(&odp_def_events_replay, &er);
    er.from = odp_v_int(1);
    er.limit = odp_v_int(1001);
    s_refused(&odp_def_events_replay, &er);

    //  ANY: pre-packed bytes must be one map or list, shallow enough, within max items
    odp_rep_replay_t rr = {.last = odp_v_int(0), .more = odp_v_bool(true)};
    rr.events = odp_v_raw("\x90\xc0", 2); //  trailing byte
    s_refused(&odp_def_rep_replay, &rr);
    rr.events = odp_v_raw("\x05", 1); //  not a container
    s_refused(&odp_def_rep_replay, &rr);
    rr.events = odp_v_raw("\x92\x01", 2); //  cut short
    s_refused(&odp_def_rep_replay, &rr);
    rr.events = odp_v_raw(A16 "\xc0", 17); //  17 deep once inside the message map
    s_refused(&odp_def_rep_replay, &rr);
    rr.events = odp_v_raw(A15 "\xc0", 16); //  16 deep: the limit
    assert_int_equal(odp_encode_buf(&odp_def_rep_replay, &rr, &buf), 0);
    msgpack_sbuffer_destroy(&buf);
    rr.events = (odp_val_t){.present = true}; //  neither raw nor obj
    s_refused(&odp_def_rep_replay, &rr);

    //  STRS must be a list of short text
    msgpack_object item = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 1};
    msgpack_object list = {.type = MSGPACK_OBJECT_ARRAY, .via.array = {.size = 1, .ptr = &item}};
    t_local_t lo = {.tags = {.present = true, .obj = &item}};
    s_refused(&s_local_def, &lo); //  not a list
    lo.tags.obj = &list;
    s_refused(&s_local_def, &lo); //  item not text
    item = (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {.size = 9, .ptr = "123456789"}};
    s_refused(&s_local_def, &lo); //  item too long
    item.via.str.size = 8;
    lo.blob = odp_v_bin("12345", 5);
    s_refused(&s_local_def, &lo); //  blob too long
    lo.blob = odp_v_bin("1234", 4);
    assert_int_equal(odp_encode_buf(&s_local_def, &lo, &buf), 0);
    msgpack_sbuffer_destroy(&buf);

    //  A failing writer is reported
    da.public_key = odp_v_str(NULL);
    msgpack_packer pk;
    msgpack_packer_init(&pk, NULL, s_failing_write);
    assert_int_equal(odp_encode(&odp_def_department_add, &da, &pk), -1);
    assert_int_equal(odp_encode(NULL, &da, &pk), -1);
}

static void test_values(void **state)
{
    (void)state;
    odp_val_t v = odp_v_str(NULL);
    assert_false(v.present);
    v = odp_v_strn(NULL, 3);
    assert_false(v.present);
    v = odp_v_bin(NULL, 0);
    assert_false(v.present);
    v = odp_v_raw(NULL, 4);
    assert_false(v.present);
    v = odp_v_str("");
    assert_true(v.present);
    assert_true(odp_v_eq(&v, ""));
    assert_false(odp_v_eq(&v, NULL));
    v = odp_v_strn("abcdef", 3);
    assert_true(odp_v_eq(&v, "abc"));
    assert_false(odp_v_eq(&v, "ab"));
    assert_false(odp_v_eq(&v, "abcd"));
    v = odp_v_int(-5);
    assert_true(v.present);
    assert_int_equal(v.i, -5);
    v = odp_v_bool(false);
    assert_true(v.present);
    assert_false(v.b);
    char buf[4];
    v = odp_v_str("abcdef");
    assert_string_equal(odp_v_cstr(&v, buf, sizeof(buf)), "abc");
    assert_string_equal(odp_v_cstr(NULL, buf, sizeof(buf)), "");
    assert_string_equal(odp_v_cstr(&v, NULL, 0), "");
}

/*  ---------------------------------------------------------------------------------------
    Fuzz: mutate valid encodings and check the decoder only ever says yes or a known no,
    that whatever it accepts re-encodes and decodes again, and that the walker never lets
    through anything msgpack-c then refuses.                                             */

static uint64_t s_rng = 0x9E3779B97F4A7C15ULL;

static uint32_t s_rand(void)
{
    //  xorshift64*: deterministic across platforms, unlike rand()
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (uint32_t)((s_rng * 2685821657736338717ULL) >> 32);
}

typedef struct {
    const odp_msgdef_t *def;
    msgpack_sbuffer buf;
} t_seed_t;

static void s_mutate(uint8_t *data, size_t *len, size_t cap)
{
    static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                          0xc0, 0xc1, 0xc4, 0xc7, 0xd9, 0xdb, 0xdc, 0xdd,
                                          0xde, 0xdf, 0xff, 0xed, 0xf4, 0xcf, 0xd3};
    //  Mostly one mutation, so that many bodies get past the walker to the field checks
    int rounds = s_rand() % 4 ? 1 : 2 + (int)(s_rand() % 3);
    for (int r = 0; r < rounds; r++) {
        size_t n = *len;
        switch (s_rand() % 8) {
        case 0: //  flip a bit
            if (n)
                data[s_rand() % n] ^= (uint8_t)(1u << (s_rand() % 8));
            break;
        case 1: //  random byte
            if (n)
                data[s_rand() % n] = (uint8_t)s_rand();
            break;
        case 2: //  interesting byte
            if (n)
                data[s_rand() % n] = interesting[s_rand() % sizeof(interesting)];
            break;
        case 3: //  truncate
            *len = n ? s_rand() % n : 0;
            break;
        case 4: //  insert a byte
            if (n < cap) {
                size_t at = s_rand() % (n + 1);
                memmove(data + at + 1, data + at, n - at);
                data[at] =
                    s_rand() % 2 ? (uint8_t)s_rand() : interesting[s_rand() % sizeof(interesting)];
                *len = n + 1;
            }
            break;
        case 5: //  delete a byte
            if (n) {
                size_t at = s_rand() % n;
                memmove(data + at, data + at + 1, n - at - 1);
                *len = n - 1;
            }
            break;
        case 6: //  copy a chunk of the message to somewhere else in it
            if (n) {
                uint8_t chunk[8];
                size_t from = s_rand() % n;
                size_t size = 1 + s_rand() % sizeof(chunk);
                if (size > n - from)
                    size = n - from;
                if (n + size <= cap) {
                    memcpy(chunk, data + from, size);
                    size_t at = s_rand() % (n + 1);
                    memmove(data + at + size, data + at, n - at);
                    memcpy(data + at, chunk, size);
                    *len = n + size;
                }
            }
            break;
        case 7: //  wrap what follows in a run of one-item arrays
            if (n) {
                size_t run = 1 + s_rand() % 24;
                size_t at = s_rand() % n;
                if (n + run <= cap) {
                    memmove(data + at + run, data + at, n - at);
                    memset(data + at, 0x91, run);
                    *len = n + run;
                }
            }
            break;
        }
    }
}

static void test_fuzz(void **state)
{
    (void)state;
    t_seed_t seeds[6];
    size_t nseeds = 0;

    odp_department_add_t da = {
        .code = odp_v_str("440300001"),
        .name = odp_v_str("广东省数据管理局"),
        .contact = odp_v_str("a@b.cn"),
        .public_key = odp_v_str(KEY_PK),
    };
    seeds[nseeds].def = &odp_def_department_add;
    assert_int_equal(odp_encode_buf(seeds[nseeds].def, &da, &seeds[nseeds].buf), 0);
    nseeds++;

    odp_rep_health_t rh = {
        .service = odp_v_str("query"),
        .status = odp_v_str("ok"),
        .db = odp_v_bool(true),
        .seq = odp_v_int(99),
        .uptime_s = odp_v_int(123456789),
        .requests = odp_v_int(70000),
        .errors = odp_v_int(3),
        .secure = odp_v_bool(true),
    };
    seeds[nseeds].def = &odp_def_rep_health;
    assert_int_equal(odp_encode_buf(seeds[nseeds].def, &rh, &seeds[nseeds].buf), 0);
    nseeds++;

    static const char events[] = "\x92\x92\xa9"
                                 "heartbeat"
                                 "\xc4\x04\x81\xa1x\x01"
                                 "\x92\xa1y\x82\xa1"
                                 "a"
                                 "\x93\x01\xcd\x01\x00\xc3\xa1"
                                 "b"
                                 "\xd4\x01\x02";
    odp_rep_replay_t rr = {
        .events = odp_v_raw(events, sizeof(events) - 1),
        .last = odp_v_int(1),
        .more = odp_v_bool(false),
    };
    seeds[nseeds].def = &odp_def_rep_replay;
    assert_int_equal(odp_encode_buf(seeds[nseeds].def, &rr, &seeds[nseeds].buf), 0);
    nseeds++;

    odp_events_replay_t er = {.from = odp_v_int(1LL << 40), .limit = odp_v_int(500)};
    seeds[nseeds].def = &odp_def_events_replay;
    assert_int_equal(odp_encode_buf(seeds[nseeds].def, &er, &seeds[nseeds].buf), 0);
    nseeds++;

    msgpack_object items[2] = {
        {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 2, .ptr = "ab"}},
        {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 3, .ptr = "数"}},
    };
    msgpack_object tags = {.type = MSGPACK_OBJECT_ARRAY, .via.array = {.size = 2, .ptr = items}};
    t_local_t lo = {
        .tags = {.present = true, .obj = &tags},
        .blob = odp_v_bin("\xc1\x00", 2),
        .extra = odp_v_raw("\x81\xa1k\x91\x90", 5),
    };
    seeds[nseeds].def = &s_local_def;
    assert_int_equal(odp_encode_buf(seeds[nseeds].def, &lo, &seeds[nseeds].buf), 0);
    nseeds++;

    odp_ev_credential_added_t ev = {
        .source = odp_v_str("registrar"),
        .seq = odp_v_int(5),
        .at = odp_v_str("2024-01-01T00:00:00Z"),
        .actor = odp_v_str("operations:1"),
        .kind = odp_v_str("department"),
        .id = odp_v_str("440300001"),
        .public_key = odp_v_str(KEY_PK),
    };
    seeds[nseeds].def = &odp_def_ev_credential_added;
    assert_int_equal(odp_encode_buf(seeds[nseeds].def, &ev, &seeds[nseeds].buf), 0);
    nseeds++;

    enum { ITERATIONS = 20000, CAP = 1024 };
    uint8_t data[CAP];
    size_t accepted = 0, by_code[ODP_E__COUNT] = {0};
    for (int it = 0; it < ITERATIONS; it++) {
        const t_seed_t *seed = &seeds[s_rand() % nseeds];
        size_t len = seed->buf.size;
        assert_true(len <= CAP);
        memcpy(data, seed->buf.data, len);
        s_mutate(data, &len, CAP);
        //  Mostly the seed's own declaration, sometimes another one
        const odp_msgdef_t *def = seed->def;
        if (s_rand() % 8 == 0)
            def = odp_requests[s_rand() % odp_nrequests];

        msgpack_zone zone;
        assert_true(msgpack_zone_init(&zone, 1024));
        t_any_msg_t out;
        odp_error_t e;
        int rc = odp_decode(def, data, len, &zone, &out, &e);
        assert_true(rc == 0 || rc == -1);
        if (rc == 0) {
            accepted++;
            //  Anything accepted re-encodes and decodes again
            msgpack_sbuffer again;
            assert_int_equal(odp_encode_buf(def, &out, &again), 0);
            t_any_msg_t twice;
            assert_int_equal(odp_decode(def, again.data, again.size, &zone, &twice, &e), 0);
            msgpack_sbuffer_destroy(&again);
        } else {
            assert_true(e.code > ODP_OK && e.code < ODP_E__COUNT);
            assert_true(memchr(e.field, '\0', sizeof(e.field)) != NULL);
            assert_true(memchr(e.message, '\0', sizeof(e.message)) != NULL);
            assert_true(odp_utf8_valid(e.field, strlen(e.field)));
            assert_true(odp_utf8_valid(e.message, strlen(e.message)));
            by_code[e.code]++;
            //  The walker and msgpack-c agree: what passes the check, msgpack-c unpacks
            if (odp_body_check(data, len, &e) == 0) {
                msgpack_object obj;
                assert_int_equal(odp_body_unpack(data, len, &zone, &obj, &e), 0);
            }
        }
        msgpack_zone_destroy(&zone);
    }
    print_message("fuzz: %d iterations, %zu accepted\n", ITERATIONS, accepted);
    for (int code = ODP_OK + 1; code < ODP_E__COUNT; code++)
        if (by_code[code])
            print_message("fuzz:   %-16s %zu\n", odp_err_name((odp_err_t)code), by_code[code]);
    for (size_t i = 0; i < nseeds; i++)
        msgpack_sbuffer_destroy(&seeds[i].buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptors),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test_setup_teardown(test_roundtrip_department_add, s_setup_zone,
                                        s_teardown_zone),
        cmocka_unit_test_setup_teardown(test_roundtrip_events_replay, s_setup_zone,
                                        s_teardown_zone),
        cmocka_unit_test_setup_teardown(test_roundtrip_event, s_setup_zone, s_teardown_zone),
        cmocka_unit_test_setup_teardown(test_roundtrip_rep_health, s_setup_zone, s_teardown_zone),
        cmocka_unit_test_setup_teardown(test_roundtrip_rep_replay_any, s_setup_zone,
                                        s_teardown_zone),
        cmocka_unit_test_setup_teardown(test_roundtrip_strs_bin, s_setup_zone, s_teardown_zone),
        cmocka_unit_test_setup_teardown(test_hostile_table, s_setup_zone, s_teardown_zone),
        cmocka_unit_test_setup_teardown(test_messages, s_setup_zone, s_teardown_zone),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_found_by_fuzzing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
