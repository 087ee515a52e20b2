#include "pushing.h"

#include "common/auth.h"
#include "common/config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*  A whole sample file (the test may hold one; the registrar may not). */
char *tp_read(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", h_samples(), name);
    FILE *f = fopen(path, "rb");
    long size = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    *len = 0;
    if (buf && fseek(f, 0, SEEK_SET) == 0 && fread(buf, 1, (size_t)size, f) == (size_t)size) {
        buf[size] = '\0';
        *len = (size_t)size;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    CHECK(buf, "sample %s is readable (ODP_SAMPLES)", path);
    return buf;
}

void tp_sha256(const void *data, size_t len, char hex[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, data, len);
    sodium_bin2hex(hex, 65, d, sizeof d);
}

/*  ---- replies ---------------------------------------------------------------------------- */

void tp_str(const odp_reply_t *rep, const char *key, char *buf, size_t size)
{
    const msgpack_object *v = odp_map_get(&rep->obj, key);
    buf[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(buf, size, "%.*s", (int)v->via.str.size, v->via.str.ptr);
}

bool tp_bool(const odp_reply_t *rep, const char *key)
{
    const msgpack_object *v = odp_map_get(&rep->obj, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

/*  A list of C strings as a STRS value; arr and items must outlive the call using it. */
odp_val_t tp_strs(msgpack_object *arr, msgpack_object *items, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        items[i].type = MSGPACK_OBJECT_STR;
        items[i].via.str.ptr = list[i];
        items[i].via.str.size = (uint32_t)strlen(list[i]);
    }
    arr->type = MSGPACK_OBJECT_ARRAY;
    arr->via.array.size = (uint32_t)n;
    arr->via.array.ptr = items;
    return (odp_val_t){.present = true, .obj = arr};
}

/*  ---- set-up through the protocol ------------------------------------------------------ */

void tp_pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/*  One field of a .dict.json as a rec_dict_field map (JSON "enum" is the wire's allowed). */
void tp_pack_field(msgpack_packer *pk, json_t *f)
{
    static const char *const keys[] = {
        "name", "type",    "length", "required",    "unique",     "enum",       "min",
        "max",  "pattern", "check",  "description", "min_length", "primary_key"};
    size_t n = 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        n += json_object_get(f, keys[k]) != NULL;
    msgpack_pack_map(pk, n);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        json_t *v = json_object_get(f, keys[k]);
        if (!v)
            continue;
        tp_pack_cstr(pk, strcmp(keys[k], "enum") == 0 ? "allowed" : keys[k]);
        if (json_is_string(v))
            tp_pack_cstr(pk, json_string_value(v));
        else if (json_is_boolean(v))
            json_is_true(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        else if (json_is_integer(v))
            msgpack_pack_int64(pk, json_integer_value(v));
        else if (json_is_real(v))
            msgpack_pack_double(pk, json_real_value(v));
        else if (json_is_array(v)) {
            msgpack_pack_array(pk, json_array_size(v));
            for (size_t i = 0; i < json_array_size(v); i++)
                tp_pack_cstr(pk, json_string_value(json_array_get(v, i)));
        }
    }
}

/*  dictionary.set from <samples>/<name>.dict.json, or from the file name when it is an
    absolute path: the status, the reply in *rep (odp_reply_free it). */
int tp_dictionary_call(odp_client_t *c, const char *resource, const char *name, odp_reply_t *rep)
{
    char path[512];
    if (name[0] == '/')
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "%s/%s.dict.json", h_samples(), name);
    json_error_t je;
    json_t *dict = json_load_file(path, 0, &je);
    json_t *fields = json_object_get(dict, "fields");
    CHECK(json_is_array(fields), "dictionary %s is readable: %s", path, je.text);
    if (!json_is_array(fields)) {
        json_decref(dict);
        memset(rep, 0, sizeof *rep);
        msgpack_zone_init(&rep->zone, 64);
        return 0;
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, json_array_size(fields));
    for (size_t i = 0; i < json_array_size(fields); i++)
        tp_pack_field(&pk, json_array_get(fields, i));
    odp_dictionary_set_t m = {0};
    m.resource = odp_v_str(resource);
    m.fields = odp_v_raw(buf.data, buf.size);
    int st = h_call(c, &odp_def_dictionary_set, &m, rep);
    msgpack_sbuffer_destroy(&buf);
    json_decref(dict);
    return st;
}

int tp_dictionary(odp_client_t *c, const char *resource, const char *name)
{
    odp_reply_t rep;
    int st = tp_dictionary_call(c, resource, name, &rep);
    CHECK(st == 200, "dictionary.set %s: %d %s", name, st, h_err_code(&rep));
    odp_reply_free(&rep);
    return st;
}

/*  A catalogue entry of department dept (acting with its key): with the dictionary of
    sample dict when given, and registered (requested, then approved by operations) when
    reg. Its code goes to resource; false when a step failed. */
bool tp_entry(const char *dept, const char *title, const char *kind, const char *dict, bool reg,
              char resource[33])
{
    resource[0] = '\0';
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    odp_client_t *ops = h_client("registrar", NULL);
    CHECK(c && ops, "clients for %s and operations", dept);
    if (!c || !ops) {
        odp_client_destroy(&c);
        odp_client_destroy(&ops);
        return false;
    }
    msgpack_object kw, kwi[2];
    const char *words[] = {"测试", "推送"};
    odp_catalog_add_t m = {0};
    m.title = odp_v_str(title);
    m.summary = odp_v_str("推送测试用的目录条目");
    m.keywords = tp_strs(&kw, kwi, words, 2);
    m.domain = odp_v_str("resources_environment");
    m.content_kind = odp_v_str(kind);
    m.delivery_form = odp_v_str("dataset_file");
    m.open_type = odp_v_str("unconditional");
    m.update_cycle = odp_v_str("daily");
    m.contact = odp_v_str("020-12345678");
    m.location = odp_v_str("数据中心 A 区");
    odp_reply_t rep;
    int st = h_call(c, &odp_def_catalog_add, &m, &rep);
    CHECK(st == 200, "catalog.add %s: %d %s", title, st, h_err_code(&rep));
    tp_str(&rep, "resource", resource, 33);
    CHECK(st != 200 || resource[0], "catalog.add %s named no resource", title);
    odp_reply_free(&rep);
    if (st == 200 && dict)
        st = tp_dictionary(c, resource, dict);
    if (st == 200 && reg) {
        odp_registration_request_t rq = {0};
        rq.resource = odp_v_str(resource);
        st = h_call(c, &odp_def_registration_request, &rq, &rep);
        CHECK(st == 200, "registration.request: %d %s", st, h_err_code(&rep));
        odp_reply_free(&rep);
    }
    if (st == 200 && reg) {
        odp_registration_decide_t d = {0};
        d.resource = odp_v_str(resource);
        d.approve = odp_v_bool(true);
        st = h_call(ops, &odp_def_registration_decide, &d, &rep);
        CHECK(st == 200, "registration.decide: %d %s", st, h_err_code(&rep));
        odp_reply_free(&rep);
    }
    odp_client_destroy(&c);
    odp_client_destroy(&ops);
    return st == 200 && resource[0];
}

/*  ---- the pusher --------------------------------------------------------------------------- */

int tp_outcome(tp_result_t *res, const char *step, int st, odp_reply_t *rep)
{
    res->status = st;
    snprintf(res->step, sizeof res->step, "%s", step);
    if (st != 200) {
        snprintf(res->code, sizeof res->code, "%s", h_err_code(rep));
        odp_v_cstr(&rep->err.field, res->field, sizeof res->field);
        odp_v_cstr(&rep->err.message, res->message, sizeof res->message);
    }
    return st;
}

/*  Chunks of res->chunk_size (or chunk) from res->offset, one at a time, each waiting for
    its ack; at most max_chunks when not 0. */
int tp_chunks(odp_client_t *c, tp_result_t *res, const char *data, size_t len, size_t chunk,
              int max_chunks)
{
    size_t step = chunk ? chunk : (size_t)res->chunk_size;
    for (int n = 0; res->offset < (int64_t)len && (max_chunks == 0 || n < max_chunks); n++) {
        size_t take = len - (size_t)res->offset < step ? len - (size_t)res->offset : step;
        odp_push_chunk_t m = {0};
        m.upload = odp_v_int(res->upload);
        m.offset = odp_v_int(res->offset);
        m.data = odp_v_bin(data + res->offset, take);
        odp_reply_t rep;
        int st = h_call(c, &odp_def_push_chunk, &m, &rep);
        if (st == 200) {
            res->offset = h_int(&rep, "offset");
            res->committed = h_int(&rep, "committed");
            res->rows_received = h_int(&rep, "rows_received");
            res->rows_rejected = h_int(&rep, "rows_rejected");
        }
        tp_outcome(res, "chunk", st, &rep);
        odp_reply_free(&rep);
        if (st != 200)
            return st;
    }
    return 200;
}

int tp_finish(odp_client_t *c, tp_result_t *res)
{
    odp_push_finish_t m = {0};
    m.upload = odp_v_int(res->upload);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_push_finish, &m, &rep);
    if (st == 200) {
        res->version = h_int(&rep, "version");
        res->rows_received = h_int(&rep, "rows_received");
        res->rows_staged = h_int(&rep, "rows_staged");
        res->rows_rejected = h_int(&rep, "rows_rejected");
        res->size = h_int(&rep, "size");
        res->duplicate = tp_bool(&rep, "duplicate");
        tp_str(&rep, "sha256", res->sha256, sizeof res->sha256);
        tp_str(&rep, "kind", res->kind, sizeof res->kind);
        tp_str(&rep, "media_type", res->media_type, sizeof res->media_type);
        tp_str(&rep, "staging_table", res->staging, sizeof res->staging);
    }
    tp_outcome(res, "finish", st, &rep);
    odp_reply_free(&rep);
    return st;
}

int tp_begin(odp_client_t *c, const tp_opts_t *o, const char *data, size_t len, tp_result_t *res)
{
    char sha[65];
    tp_sha256(data, len, sha);
    odp_push_begin_t m = {0};
    m.resource = odp_v_str(o->resource);
    m.table = odp_v_str(o->table);
    m.format = odp_v_str(o->format ? o->format : "csv");
    m.encoding = odp_v_str(o->encoding);
    m.size = odp_v_int((int64_t)len);
    m.sha256 = odp_v_str(o->sha256 ? o->sha256 : sha);
    m.media_type = odp_v_str(o->media_type);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_push_begin, &m, &rep);
    if (st == 200) {
        res->upload = h_int(&rep, "upload");
        res->offset = h_int(&rep, "offset");
        res->chunk_size = h_int(&rep, "chunk_size");
        res->version = h_int(&rep, "version");
        res->duplicate = tp_bool(&rep, "duplicate");
    }
    tp_outcome(res, "begin", st, &rep);
    odp_reply_free(&rep);
    return st;
}

/*  The whole push: begin, chunks, finish (unless o->max_chunks stops it early). */
int tp_push(odp_client_t *c, const tp_opts_t *o, const char *data, size_t len, tp_result_t *res)
{
    memset(res, 0, sizeof *res);
    int st = tp_begin(c, o, data, len, res);
    if (st != 200 || res->duplicate)
        return st;
    st = tp_chunks(c, res, data, len, o->chunk, o->max_chunks);
    if (st != 200 || o->max_chunks)
        return st;
    return tp_finish(c, res);
}

zsock_t *tp_dealer(const char *dept)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    char ep[256], err[256] = "";
    odp_config_endpoint("registrar", false, false, ep, sizeof ep);
    if (s) {
        zsock_set_linger(s, 0);
        zsock_set_rcvtimeo(s, 10000);
    }
    if (!s || odp_auth_client(s, h_keyfile(dept), err, sizeof err) < 0 ||
        zsock_connect(s, "%s", ep) < 0) {
        CHECK(false, "a DEALER for %s: %s", dept, err);
        zsock_destroy(&s);
    }
    return s;
}

bool tp_send_chunk(zsock_t *s, int64_t upload, int64_t offset, const char *data, size_t len)
{
    odp_push_chunk_t m = {0};
    m.upload = odp_v_int(upload);
    m.offset = odp_v_int(offset);
    m.data = odp_v_bin(data, len);
    msgpack_sbuffer buf;
    if (odp_encode_buf(&odp_def_push_chunk, &m, &buf) < 0)
        return false;
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, ODP_PROTOCOL);
    zmsg_addstr(msg, "push.chunk");
    zmsg_addmem(msg, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    return zmsg_send(&msg, s) == 0;
}

bool tp_checked(int64_t upload)
{
    odp_client_t *c = h_client("reviewer", NULL);
    odp_review_show_t m = {0};
    m.upload = odp_v_int(upload);
    int st = 0;
    for (int i = 0; i < 200 && st != 200; i++) {
        odp_reply_t rep;
        st = h_call(c, &odp_def_review_show, &m, &rep);
        if (st == 200 && !odp_map_get(&rep.obj, "checked_at"))
            st = 0;
        odp_reply_free(&rep);
        if (st != 200)
            usleep(100 * 1000);
    }
    odp_client_destroy(&c);
    CHECK(st == 200, "upload %lld was not checked in 20 s", (long long)upload);
    return st == 200;
}

int64_t tp_publish(const char *dept, const tp_opts_t *o, const char *data, size_t len)
{
    const char *resource = o->resource;
    odp_client_t *c = h_client("registrar", h_keyfile(dept));
    tp_result_t res;
    int st = tp_push(c, o, data, len, &res);
    odp_client_destroy(&c);
    CHECK(st == 200, "push to %s: %s gave %d %s %s", resource, res.step, st, res.code, res.message);
    if (st != 200)
        return 0;
    odp_reply_t rep;
    bool file = o->format && strcmp(o->format, "file") == 0;
    if (!file) {
        if (!tp_checked(res.upload))
            return 0;
        c = h_client("reviewer", NULL);
        odp_review_decide_t d = {0};
        d.upload = odp_v_int(res.upload);
        d.approve = odp_v_bool(true);
        st = h_call(c, &odp_def_review_decide, &d, &rep);
        odp_reply_free(&rep);
        odp_client_destroy(&c);
        CHECK(st == 200, "approve %lld: %d", (long long)res.upload, st);
    }
    c = h_client("publisher", NULL);
    odp_release_publish_t p = {0};
    p.resource = odp_v_str(resource);
    p.version = odp_v_int(res.version);
    st = h_call(c, &odp_def_release_publish, &p, &rep);
    int64_t rel = st == 200 ? h_int(&rep, "release") : 0;
    CHECK(st == 200, "release %s: %d %s", resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return rel;
}
