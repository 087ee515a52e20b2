/*  json: msgpack values as JSON (jansson), for the tools' --json output. */
#ifndef ODP_JSON_H
#define ODP_JSON_H

#include <jansson.h>
#include <msgpack.h>

/*  A new JSON value for obj: maps with text keys become objects (other keys are turned
    into their JSON text), bin becomes base64 under {"$bin": "..."}, ext {"$ext": type}. */
json_t *odp_json_from_msgpack(const msgpack_object *obj);

/*  Pack a JSON value as msgpack: objects as maps, integers as integers, reals as floats.
    0, or -1 when the packer fails. */
int odp_json_pack(msgpack_packer *pk, const json_t *v);

/*  The same, but the keys named from in v (an object) or in v's elements (an array of
    objects) are packed as to: a data dictionary file's "enum" is the wire's "allowed".
    Keys deeper down are packed as they are. */
int odp_json_pack_renamed(msgpack_packer *pk, const json_t *v, const char *from, const char *to);

/*  Print value compactly on one line to stdout, with a newline; steals the reference. */
void odp_json_print(json_t *value);

#endif
