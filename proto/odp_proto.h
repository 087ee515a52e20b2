/*  odp wire protocol: the one declaration of every error code, message and event.

    PROTOCOL.md beside this file is the prose contract; this header is the same contract
    for the compiler. Encoders, decoders and validators in common/codec.c are driven by the
    tables these X-macros expand to, so a field is typed exactly once, here.

    Field declaration: F(name, TYPE, REQ, max_len, min, max)
      TYPE    STR   UTF-8 text, at most max_len bytes (min/max: minimum byte length, unused)
              INT   signed 64-bit integer within [min, max]
              BOOL  true / false
              BIN   raw bytes, at most max_len bytes
              STRS  array of at most max items, each UTF-8 text of at most max_len bytes
              ANY   any msgpack value (map/array), at most max items at its top level;
                    the handler validates its inside with another declaration
      REQ     1 = required, 0 = optional
*/
#ifndef ODP_PROTO_H
#define ODP_PROTO_H

#define ODP_PROTOCOL "ODP/1"

/*  Stable error codes: ODP_ERR(CODE, status, summary). Programs switch on CODE;
    the number is the reply's STATUS frame. Never renumber or rename. */
#define ODP_ERRORS(E)                                                                              \
    E(BAD_FRAME, 400, "request is not [\"ODP/1\", COMMAND, BODY]")                                 \
    E(BAD_VERSION, 400, "protocol version is not ODP/1")                                           \
    E(UNKNOWN_COMMAND, 400, "command is not known to this service")                                \
    E(MALFORMED, 400, "body is not well-formed msgpack")                                           \
    E(TRAILING_BYTES, 400, "body has bytes after the first msgpack value")                         \
    E(TOO_DEEP, 400, "body nests deeper than the limit")                                           \
    E(BAD_COUNT, 400, "a container declares more items than the bytes that follow")                \
    E(NOT_A_MAP, 400, "body is not a msgpack map")                                                 \
    E(BAD_KEY, 400, "a map key is not a UTF-8 string")                                             \
    E(DUPLICATE_FIELD, 400, "a field appears twice")                                               \
    E(UNKNOWN_FIELD, 400, "a field is not part of this message")                                   \
    E(MISSING_FIELD, 400, "a required field is missing")                                           \
    E(WRONG_TYPE, 400, "a field has the wrong msgpack type")                                       \
    E(BAD_UTF8, 400, "a text field is not valid UTF-8")                                            \
    E(TOO_LONG, 400, "a field is longer than its limit")                                           \
    E(OUT_OF_RANGE, 400, "a number is outside its allowed range")                                  \
    E(INVALID_VALUE, 422, "a value is well-typed but not acceptable")                              \
    E(UNAUTHENTICATED, 401, "no known identity for this request")                                  \
    E(FORBIDDEN, 403, "the actor may not do this")                                                 \
    E(NOT_FOUND, 404, "no such thing")                                                             \
    E(ALREADY_EXISTS, 409, "it exists already")                                                    \
    E(TOO_LARGE, 413, "message is larger than the service accepts")                                \
    E(RATE_LIMITED, 429, "too many requests")                                                      \
    E(INTERNAL, 500, "the service failed; it is logged")                                           \
    E(UNAVAILABLE, 503, "the database is unreachable; retry later")

typedef enum {
    ODP_OK = 0,
#define ODP_ERR_ENUM(code, status, summary) ODP_E_##code,
    ODP_ERRORS(ODP_ERR_ENUM)
#undef ODP_ERR_ENUM
        ODP_E__COUNT
} odp_err_t;

typedef enum { ODP_T_STR = 1, ODP_T_INT, ODP_T_BOOL, ODP_T_BIN, ODP_T_STRS, ODP_T_ANY } odp_type_t;

#define ODP_I64_MAX 9223372036854775807LL

/*  Actor kinds carried in a CURVE certificate's metadata (see PROTOCOL.md "Identity"). */
#define ODP_ACTOR_KINDS "authority operations provider user"

/*  ---------------------------------------------------------------------------------------
    Requests. ODP_REQUESTS(M): M(ident, "command"); fields in ODP_FIELDS_<ident>(F).     */

#define ODP_FIELDS_health(F)
#define ODP_FIELDS_events_replay(F)                                                                \
    F(from, INT, 1, 0, 1, ODP_I64_MAX)                                                             \
    F(limit, INT, 0, 0, 1, 1000)
#define ODP_FIELDS_whoami(F)

#define ODP_FIELDS_authority_register(F)                                                           \
    F(authority, STR, 1, 200, 1, 0)                                                                \
    F(operations, STR, 1, 200, 1, 0)                                                               \
    F(document, STR, 1, 200, 1, 0)                                                                 \
    F(granted_on, STR, 1, 10, 10, 0)
#define ODP_FIELDS_authority_list(F)

#define ODP_FIELDS_department_add(F)                                                               \
    F(code, STR, 1, 9, 9, 0)                                                                       \
    F(name, STR, 1, 200, 1, 0)                                                                     \
    F(contact, STR, 0, 200, 0, 0)                                                                  \
    F(public_key, STR, 0, 40, 40, 0)
#define ODP_FIELDS_department_get(F) F(code, STR, 1, 9, 9, 0)
#define ODP_FIELDS_department_list(F)
#define ODP_FIELDS_department_update(F)                                                            \
    F(code, STR, 1, 9, 9, 0)                                                                       \
    F(name, STR, 0, 200, 1, 0)                                                                     \
    F(contact, STR, 0, 200, 0, 0)                                                                  \
    F(active, BOOL, 0, 0, 0, 0)

#define ODP_FIELDS_staff_add(F)                                                                    \
    F(login, STR, 1, 64, 1, 0)                                                                     \
    F(name, STR, 1, 200, 1, 0)                                                                     \
    F(public_key, STR, 0, 40, 40, 0)
#define ODP_FIELDS_staff_list(F)

#define ODP_FIELDS_credential_add(F)                                                               \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(id, STR, 1, 64, 1, 0)                                                                        \
    F(public_key, STR, 1, 40, 40, 0)                                                               \
    F(name, STR, 0, 200, 0, 0)
#define ODP_FIELDS_credential_revoke(F) F(public_key, STR, 1, 40, 40, 0)

#define ODP_REQUESTS(M)                                                                            \
    M(health, "health")                                                                            \
    M(events_replay, "events.replay")                                                              \
    M(whoami, "whoami")                                                                            \
    M(authority_register, "authority.register")                                                    \
    M(authority_list, "authority.list")                                                            \
    M(department_add, "department.add")                                                            \
    M(department_get, "department.get")                                                            \
    M(department_list, "department.list")                                                          \
    M(department_update, "department.update")                                                      \
    M(staff_add, "staff.add")                                                                      \
    M(staff_list, "staff.list")                                                                    \
    M(credential_add, "credential.add")                                                            \
    M(credential_revoke, "credential.revoke")

/*  ---------------------------------------------------------------------------------------
    Event bodies. Every event body carries the envelope fields below, then its own.
    ODP_EVENTS(M): M(ident, "topic").                                                     */

#define ODP_EVENT_ENVELOPE(F)                                                                      \
    F(source, STR, 1, 16, 1, 0)                                                                    \
    F(seq, INT, 1, 0, 1, ODP_I64_MAX)                                                              \
    F(at, STR, 1, 32, 1, 0)                                                                        \
    F(actor, STR, 1, 100, 1, 0)

#define ODP_FIELDS_ev_heartbeat(F)                                                                 \
    F(source, STR, 1, 16, 1, 0)                                                                    \
    F(seq, INT, 1, 0, 0, ODP_I64_MAX)                                                              \
    F(at, STR, 1, 32, 1, 0)
#define ODP_FIELDS_ev_authority_registered(F)                                                      \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(authority, STR, 1, 200, 1, 0)                                                                \
    F(operations, STR, 1, 200, 1, 0)
#define ODP_FIELDS_ev_department_registered(F)                                                     \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(code, STR, 1, 9, 9, 0)                                                                       \
    F(name, STR, 1, 200, 1, 0)
#define ODP_FIELDS_ev_department_updated(F)                                                        \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(code, STR, 1, 9, 9, 0)                                                                       \
    F(name, STR, 1, 200, 1, 0)                                                                     \
    F(active, BOOL, 1, 0, 0, 0)
#define ODP_FIELDS_ev_staff_registered(F)                                                          \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(login, STR, 1, 64, 1, 0)                                                                     \
    F(name, STR, 1, 200, 1, 0)
#define ODP_FIELDS_ev_credential_added(F)                                                          \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(id, STR, 1, 64, 1, 0)                                                                        \
    F(public_key, STR, 1, 40, 40, 0)
#define ODP_FIELDS_ev_credential_revoked(F)                                                        \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(public_key, STR, 1, 40, 40, 0)

#define ODP_EVENTS(M)                                                                              \
    M(ev_heartbeat, "heartbeat")                                                                   \
    M(ev_authority_registered, "authority.registered")                                             \
    M(ev_department_registered, "department.registered")                                           \
    M(ev_department_updated, "department.updated")                                                 \
    M(ev_staff_registered, "staff.registered")                                                     \
    M(ev_credential_added, "credential.added")                                                     \
    M(ev_credential_revoked, "credential.revoked")

/*  ---------------------------------------------------------------------------------------
    Reply bodies with a fixed shape (replies that are lists of records declare the record). */

#define ODP_FIELDS_rep_error(F)                                                                    \
    F(code, STR, 1, 32, 1, 0)                                                                      \
    F(message, STR, 1, 1000, 0, 0)                                                                 \
    F(field, STR, 0, 64, 0, 0)
#define ODP_FIELDS_rep_health(F)                                                                   \
    F(service, STR, 1, 16, 1, 0)                                                                   \
    F(status, STR, 1, 16, 1, 0)                                                                    \
    F(db, BOOL, 1, 0, 0, 0)                                                                        \
    F(seq, INT, 1, 0, 0, ODP_I64_MAX)                                                              \
    F(uptime_s, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(requests, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(errors, INT, 1, 0, 0, ODP_I64_MAX)                                                           \
    F(secure, BOOL, 1, 0, 0, 0)
#define ODP_FIELDS_rep_whoami(F)                                                                   \
    F(actor, STR, 1, 100, 1, 0)                                                                    \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(id, STR, 1, 64, 0, 0)
/*  events.replay reply: events is an array of [topic, body] pairs (body the event's map,
    exactly as published), last the newest seq the source has committed, more true when
    the page was cut at limit. */
#define ODP_FIELDS_rep_replay(F)                                                                   \
    F(events, ANY, 1, 0, 0, 1000)                                                                  \
    F(last, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(more, BOOL, 1, 0, 0, 0)
#define ODP_FIELDS_rec_department(F)                                                               \
    F(code, STR, 1, 9, 9, 0)                                                                       \
    F(name, STR, 1, 200, 1, 0)                                                                     \
    F(contact, STR, 0, 200, 0, 0)                                                                  \
    F(active, BOOL, 1, 0, 0, 0)                                                                    \
    F(registered_at, STR, 1, 32, 1, 0)                                                             \
    F(registered_by, STR, 1, 100, 1, 0)
#define ODP_FIELDS_rec_authority(F)                                                                \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(authority, STR, 1, 200, 1, 0)                                                                \
    F(operations, STR, 1, 200, 1, 0)                                                               \
    F(document, STR, 1, 200, 1, 0)                                                                 \
    F(granted_on, STR, 1, 10, 10, 0)                                                               \
    F(recorded_by, STR, 1, 100, 1, 0)
#define ODP_FIELDS_rec_staff(F)                                                                    \
    F(login, STR, 1, 64, 1, 0)                                                                     \
    F(name, STR, 1, 200, 1, 0)                                                                     \
    F(registered_at, STR, 1, 32, 1, 0)
#define ODP_FIELDS_rep_list(F) F(items, ANY, 1, 0, 0, 100000)

#define ODP_REPLIES(M)                                                                             \
    M(rep_error, "")                                                                               \
    M(rep_health, "")                                                                              \
    M(rep_whoami, "")                                                                              \
    M(rep_replay, "")                                                                              \
    M(rec_department, "")                                                                          \
    M(rec_authority, "")                                                                           \
    M(rec_staff, "")                                                                               \
    M(rep_list, "")

#endif
