#include "json.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *odp_json_from_msgpack(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        /*  Text from a peer may still be invalid UTF-8; JSON output must not be. */
        json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
        return s ? s : json_string("\xef\xbf\xbd");
    }
    case MSGPACK_OBJECT_BIN: {
        size_t n = sodium_base64_ENCODED_LEN(o->via.bin.size, sodium_base64_VARIANT_ORIGINAL);
        char *b = malloc(n);
        if (!b)
            return json_null();
        sodium_bin2base64(b, n, (const unsigned char *)o->via.bin.ptr, o->via.bin.size,
                          sodium_base64_VARIANT_ORIGINAL);
        json_t *v = json_pack("{s:s}", "$bin", b);
        free(b);
        return v;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, odp_json_from_msgpack(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *v = odp_json_from_msgpack(&o->via.map.ptr[i].val);
            if (k->type == MSGPACK_OBJECT_STR) {
                char key[256];
                size_t n = k->via.str.size < sizeof key - 1 ? k->via.str.size : sizeof key - 1;
                memcpy(key, k->via.str.ptr, n);
                key[n] = '\0';
                json_object_set_new(m, key, v);
            } else {
                json_t *kj = odp_json_from_msgpack(k);
                char *ks = json_dumps(kj, JSON_ENCODE_ANY | JSON_COMPACT);
                json_object_set_new(m, ks ? ks : "?", v);
                free(ks);
                json_decref(kj);
            }
        }
        return m;
    }
    default:
        return json_pack("{s:i}", "$ext", (int)o->via.ext.type);
    }
}

void odp_json_print(json_t *value)
{
    char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(value);
}

static int s_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    return msgpack_pack_str(pk, n) < 0 || msgpack_pack_str_body(pk, s, n) < 0 ? -1 : 0;
}

/*  from is renamed in the object v, or in the objects of the array v; not deeper. */
static int s_pack(msgpack_packer *pk, const json_t *v, const char *from, const char *to)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (msgpack_pack_map(pk, json_object_size(v)) < 0)
            return -1;
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item)
        {
            const char *k = from && strcmp(key, from) == 0 ? to : key;
            if (s_pack_str(pk, k, strlen(k)) < 0 || s_pack(pk, item, NULL, NULL) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY:
        if (msgpack_pack_array(pk, json_array_size(v)) < 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (s_pack(pk, json_array_get(v, i), from, to) < 0)
                return -1;
        return 0;
    case JSON_STRING:
        return s_pack_str(pk, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v)) < 0 ? -1 : 0;
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v)) < 0 ? -1 : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) < 0 ? -1 : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) < 0 ? -1 : 0;
    case JSON_NULL:
        return msgpack_pack_nil(pk) < 0 ? -1 : 0;
    }
    return -1;
}

int odp_json_pack(msgpack_packer *pk, const json_t *v)
{
    return s_pack(pk, v, NULL, NULL);
}

int odp_json_pack_renamed(msgpack_packer *pk, const json_t *v, const char *from, const char *to)
{
    return s_pack(pk, v, from, to);
}
