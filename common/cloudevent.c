#include "cloudevent.h"

#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

json_t *odp_cloudevent(const char *source, int64_t seq, const char *topic, size_t topic_len,
                       const msgpack_object *body)
{
    json_t *data = odp_json_from_msgpack(body);
    if (!data)
        return NULL;
    char id[64], seqs[24], src[64], type[200];
    snprintf(id, sizeof id, "%s-%" PRId64, source, seq);
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    snprintf(src, sizeof src, "/odp/%s", source);
    snprintf(type, sizeof type, "odp.%.*s", (int)(topic_len > 190 ? 190 : topic_len), topic);
    json_t *ce =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "specversion", "1.0", "id", id, "source", src,
                  "type", type, "sequence", seqs, "datacontenttype", "application/json");
    if (!ce) {
        json_decref(data);
        return NULL;
    }
    json_t *at = json_object_get(data, "at");
    if (json_is_string(at))
        json_object_set(ce, "time", at);
    static const char *const subjects[] = {"resource", "department", "code", "id",
                                           "upload",   "login",      "alert"};
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        json_t *v = json_object_get(data, subjects[i]);
        if (json_is_string(v)) {
            json_object_set(ce, "subject", v);
            break;
        }
        if (json_is_integer(v)) {
            json_object_set_new(ce, "subject",
                                json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v)));
            break;
        }
    }
    json_object_set_new(ce, "data", data);
    return ce;
}
