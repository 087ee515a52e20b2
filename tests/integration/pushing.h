/*  Setting entries up and pushing to them as a department does, for the integration cases
    that need pushed versions (t_push, t_reviewer): catalog.add with a dictionary from a sample,
    registration, and a sequential pusher that records how each push ended. */
#ifndef ODP_TEST_PUSHING_H
#define ODP_TEST_PUSHING_H

#include "harness.h"

#include <jansson.h>

typedef struct {
    const char *resource;
    const char *table;
    const char *format; /* csv when NULL */
    const char *encoding;
    const char *media_type;
    const char *sha256; /* the data's own when NULL */
    size_t chunk;       /* the chunk_size push.begin returned when 0 */
    int max_chunks;     /* stop after this many chunks, not finishing; all when 0 */
} tp_opts_t;

typedef struct {
    int status; /* of the request that ended the push; 200 when it went through */
    char step[8];
    char code[40];
    char field[65];
    char message[300];
    int64_t upload;
    int64_t offset; /* where the next chunk would start */
    int64_t committed;
    int64_t chunk_size;
    int64_t version;
    bool duplicate;
    int64_t rows_received;
    int64_t rows_staged;
    int64_t rows_rejected;
    int64_t size;
    char sha256[65];
    char kind[17];
    char media_type[128];
    char staging[128];
} tp_result_t;

char *tp_read(const char *name, size_t *len);
void tp_sha256(const void *data, size_t len, char hex[65]);
void tp_str(const odp_reply_t *rep, const char *key, char *buf, size_t size);
bool tp_bool(const odp_reply_t *rep, const char *key);
odp_val_t tp_strs(msgpack_object *arr, msgpack_object *items, const char *const *list, size_t n);
void tp_pack_cstr(msgpack_packer *pk, const char *s);
void tp_pack_field(msgpack_packer *pk, json_t *f);
int tp_dictionary_call(odp_client_t *c, const char *resource, const char *name, odp_reply_t *rep);
int tp_dictionary(odp_client_t *c, const char *resource, const char *name);
bool tp_entry(const char *dept, const char *title, const char *kind, const char *dict, bool reg,
              char resource[33]);
int tp_outcome(tp_result_t *res, const char *step, int st, odp_reply_t *rep);
int tp_chunks(odp_client_t *c, tp_result_t *res, const char *data, size_t len, size_t chunk,
              int max_chunks);
int tp_finish(odp_client_t *c, tp_result_t *res);
int tp_begin(odp_client_t *c, const tp_opts_t *o, const char *data, size_t len, tp_result_t *res);
int tp_push(odp_client_t *c, const tp_opts_t *o, const char *data, size_t len, tp_result_t *res);

/*  A DEALER of its own on the registrar, under dept's key: chunks go out without waiting for
    their acks (as odp-push sends them under its credit, or as a client that ignores it). */
zsock_t *tp_dealer(const char *dept);
/*  push.chunk on a tp_dealer socket, not waiting for the reply. */
bool tp_send_chunk(zsock_t *s, int64_t upload, int64_t offset, const char *data, size_t len);
/*  Wait up to 20 s for the reviewer to have checked upload (review.show with checked_at:
    review.decide refuses a version before its checks). */
bool tp_checked(int64_t upload);
/*  Push data as dept with o (o->resource), approve it once checked unless it is a file
    (o->format "file": files are not reviewed), and release it: the release's number, or 0
    (each failed step CHECKed). */
int64_t tp_publish(const char *dept, const tp_opts_t *o, const char *data, size_t len);
#endif
