/*  fuzz_dict: the registrar's data dictionary parser (dictionary.set), as far as it goes
    without a database.

    The input is a dictionary.set body. It is decoded against its declaration, as the
    service loop does, then handed to the registrar's own checks: s_table and s_dict_rows
    of services/registrar/catalogue.c (each field decoded as rec_dict_field, its type and
    check looked up in the code lists, its pattern compiled, names compared, rows built).
    Those are static, so the file is included here rather than copied: the fuzzer runs the
    code the registrar runs. The promises checked:
      - nothing crashes, leaks or grows without bound, whatever the fields hold;
      - a refusal carries an error code and an error reply that encodes (the path
        fields[i].name, the message);
      - an accepted dictionary has one row per field and serialises to JSON (what
        json_to_recordset is given). */
#include <stddef.h>
#include <stdint.h>

#include "services/registrar/catalogue.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    odp_dictionary_set_t m;
    memset(&m, 0, sizeof m);
    odp_error_t e = {0};
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    if (odp_decode(&odp_def_dictionary_set, data, size, &zone, &m, &e) < 0) {
        fuzz_error_reply_encodes(&e);
        msgpack_zone_destroy(&zone);
        return 0;
    }
    odp_req_t req;
    memset(&req, 0, sizeof req);
    req.msg = &m;
    req.err = &e;
    char table[64];
    json_t *rows = NULL;
    if (s_table(&req, &m.table, table) < 0 || s_dict_rows(&req, &m.fields, &rows) < 0) {
        FUZZ_REQUIRE(rows == NULL, "a refused dictionary left rows behind");
        fuzz_error_reply_encodes(&e);
    } else {
        FUZZ_REQUIRE(json_array_size(rows) == m.fields.obj->via.array.size,
                     "an accepted dictionary without one row per field");
        char *text = json_dumps(rows, JSON_COMPACT);
        FUZZ_REQUIRE(text, "the dictionary's rows do not serialise");
        free(text);
        json_decref(rows);
    }
    msgpack_zone_destroy(&zone);
    return 0;
}
