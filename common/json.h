/*  json: msgpack values as JSON (jansson), for the tools' --json output. */
#ifndef ODP_JSON_H
#define ODP_JSON_H

#include <jansson.h>
#include <msgpack.h>

/*  A new JSON value for obj: maps with text keys become objects (other keys are turned
    into their JSON text), bin becomes base64 under {"$bin": "..."}, ext {"$ext": type}. */
json_t *odp_json_from_msgpack(const msgpack_object *obj);

/*  Print value compactly on one line to stdout, with a newline; steals the reference. */
void odp_json_print(json_t *value);

#endif
