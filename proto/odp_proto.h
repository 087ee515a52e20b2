/*  odp wire protocol: the one declaration of every error code, message and event.

    PROTOCOL.md beside this file is the prose contract; this header is the same contract
    for the compiler. Encoders, decoders and validators in common/codec.c are driven by the
    tables these X-macros expand to, so a field is typed exactly once, here.

    Field declaration: F(name, TYPE, REQ, max_len, min, max)
      TYPE    STR   UTF-8 text, at most max_len bytes (min/max: minimum byte length, unused)
              INT   signed 64-bit integer within [min, max]
              NUM   a number (integer or float) within [min, max]
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
    E(INVALID_STATE, 409, "the thing is not in a state that allows this")                          \
    E(BAD_OFFSET, 409, "a pushed chunk does not start where the upload stands")                    \
    E(RULE_FORMAT, 422, "transfer rule: this format is not accepted")                              \
    E(RULE_ENCODING, 422, "transfer rule: this encoding is not accepted")                          \
    E(RULE_SIZE, 413, "transfer rule: larger than the maximum size")                               \
    E(RULE_ROW_LENGTH, 422, "transfer rule: a row is longer than the maximum row length")          \
    E(RULE_CHUNK_SIZE, 413, "transfer rule: a chunk is larger than the chunk size")                \
    E(HEADER_MISMATCH, 422, "the header row does not match the data dictionary")                   \
    E(HASH_MISMATCH, 422, "the bytes received do not have the declared SHA-256")                   \
    E(RATE_LIMITED, 429, "too many requests")                                                      \
    E(INTERNAL, 500, "the service failed; it is logged")                                           \
    E(UNAVAILABLE, 503, "the database is unreachable; retry later")                                \
    E(CREDIT_EXCEEDED, 429, "more push.chunk requests in flight than the credit allows")

typedef enum {
    ODP_OK = 0,
#define ODP_ERR_ENUM(code, status, summary) ODP_E_##code,
    ODP_ERRORS(ODP_ERR_ENUM)
#undef ODP_ERR_ENUM
        ODP_E__COUNT
} odp_err_t;

typedef enum {
    ODP_T_STR = 1,
    ODP_T_INT,
    ODP_T_BOOL,
    ODP_T_BIN,
    ODP_T_STRS,
    ODP_T_ANY,
    ODP_T_NUM
} odp_type_t;

#define ODP_I64_MAX 9223372036854775807LL

/*  Actor kinds carried in a CURVE certificate's metadata (see PROTOCOL.md "Identity"). */
#define ODP_ACTOR_KINDS "authority operations provider user service"

/*  Topics anyone may replay (PROTOCOL.md §9): what is public anyway once it happened.
    Providers also see the events that name their own department; operations, services
    and the authority see everything, live and replayed. As a PostgreSQL text[] literal. */
#define ODP_PUBLIC_TOPICS                                                                          \
    "{release.published,release.superseded,release.withdrawn,release.restored}"

/*  ---------------------------------------------------------------------------------------
    Code lists (R8). X(code, "label"): on the wire a value is the code; the Chinese label
    is accepted as input too and normalised to the code.                                 */

#define ODP_CODES_DOMAIN(X)                                                                        \
    X(economy, "经济建设")                                                                         \
    X(resources_environment, "资源环境")                                                           \
    X(education_science, "教育科技")                                                               \
    X(roads_transport, "道路交通")                                                                 \
    X(social_development, "社会发展")                                                              \
    X(public_safety, "公共安全")                                                                   \
    X(culture_leisure, "文化休闲")                                                                 \
    X(health, "卫生健康")                                                                          \
    X(livelihood_services, "民生服务")                                                             \
    X(organisations, "机构团体")                                                                   \
    X(urban_construction, "城市建设")
#define ODP_CODES_CONTENT_KIND(X)                                                                  \
    X(dataset, "数据集")                                                                           \
    X(archive, "档案")                                                                             \
    X(law, "法律法规")                                                                             \
    X(document, "文件")                                                                            \
    X(report, "报告")                                                                              \
    X(image, "图像")                                                                               \
    X(audio, "音频")                                                                               \
    X(video, "视频")
#define ODP_CODES_DELIVERY_FORM(X)                                                                 \
    X(dataset_file, "数据集文件")                                                                  \
    X(query_interface, "条件查询接口")                                                             \
    X(exchange_interface, "数据交换接口")                                                          \
    X(app, "应用")
#define ODP_CODES_OPEN_TYPE(X)                                                                     \
    X(unconditional, "无条件开放")                                                                 \
    X(conditional, "有条件开放")                                                                   \
    X(not_open, "不予开放")
#define ODP_CODES_UPDATE_CYCLE(X)                                                                  \
    X(realtime, "实时")                                                                            \
    X(daily, "每日")                                                                               \
    X(weekly, "每周")                                                                              \
    X(monthly, "每月")                                                                             \
    X(quarterly, "每季度")                                                                         \
    X(half_yearly, "每半年")                                                                       \
    X(yearly, "每年")                                                                              \
    X(irregular, "不定期")                                                                         \
    X(static, "静态")
#define ODP_CODES_FIELD_TYPE(X)                                                                    \
    X(text, "文本")                                                                                \
    X(integer, "整数")                                                                             \
    X(numeric, "数值")                                                                             \
    X(date, "日期")                                                                                \
    X(timestamp, "时间戳")                                                                         \
    X(boolean, "布尔")
#define ODP_CODES_CHECK(X)                                                                         \
    X(uscc, "统一社会信用代码")                                                                    \
    X(idcard, "居民身份证号码")
#define ODP_CODES_FORMAT(X)                                                                        \
    X(csv, "CSV")                                                                                  \
    X(jsonl, "JSON Lines")                                                                         \
    X(file, "文件")
#define ODP_CODES_ENCODING(X)                                                                      \
    X(utf8, "UTF-8")                                                                               \
    X(gb18030, "GB18030")

#define ODP_CODELISTS(L)                                                                           \
    L(domain, ODP_CODES_DOMAIN)                                                                    \
    L(content_kind, ODP_CODES_CONTENT_KIND)                                                        \
    L(delivery_form, ODP_CODES_DELIVERY_FORM)                                                      \
    L(open_type, ODP_CODES_OPEN_TYPE)                                                              \
    L(update_cycle, ODP_CODES_UPDATE_CYCLE)                                                        \
    L(field_type, ODP_CODES_FIELD_TYPE)                                                            \
    L(check, ODP_CODES_CHECK)                                                                      \
    L(format, ODP_CODES_FORMAT)                                                                    \
    L(encoding, ODP_CODES_ENCODING)

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

/*  Planning and catalogue (R4.2, R5.3, R5.4, R7a, R8). department: providers act on their
    own department and may omit it; operations must name it. */
#define ODP_FIELDS_plan_add(F)                                                                     \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(title, STR, 1, 200, 1, 0)                                                                    \
    F(summary, STR, 0, 4000, 0, 0)                                                                 \
    F(domain, STR, 0, 64, 1, 0)                                                                    \
    F(content_kind, STR, 0, 64, 1, 0)                                                              \
    F(open_type, STR, 1, 64, 1, 0)                                                                 \
    F(update_cycle, STR, 1, 64, 1, 0)                                                              \
    F(due_on, STR, 1, 10, 10, 0)                                                                   \
    F(maintainer, STR, 1, 200, 1, 0)
#define ODP_FIELDS_plan_list(F)                                                                    \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(overdue, BOOL, 0, 0, 0, 0)
/*  Maintenance (R4.2c, R5.3): a planned plan changes only the fields given. */
#define ODP_FIELDS_plan_update(F)                                                                  \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(title, STR, 0, 200, 1, 0)                                                                    \
    F(summary, STR, 0, 4000, 0, 0)                                                                 \
    F(domain, STR, 0, 64, 1, 0)                                                                    \
    F(content_kind, STR, 0, 64, 1, 0)                                                              \
    F(open_type, STR, 0, 64, 1, 0)                                                                 \
    F(update_cycle, STR, 0, 64, 1, 0)                                                              \
    F(due_on, STR, 0, 10, 10, 0)                                                                   \
    F(maintainer, STR, 0, 200, 1, 0)
#define ODP_FIELDS_plan_cancel(F)                                                                  \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(reason, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_catalog_add(F)                                                                  \
    F(plan, INT, 0, 0, 1, ODP_I64_MAX)                                                             \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(title, STR, 1, 200, 1, 0)                                                                    \
    F(summary, STR, 1, 4000, 1, 0)                                                                 \
    F(keywords, STRS, 1, 64, 0, 20)                                                                \
    F(domain, STR, 1, 64, 1, 0)                                                                    \
    F(content_kind, STR, 1, 64, 1, 0)                                                              \
    F(delivery_form, STR, 1, 64, 1, 0)                                                             \
    F(open_type, STR, 1, 64, 1, 0)                                                                 \
    F(update_cycle, STR, 1, 64, 1, 0)                                                              \
    F(released_on, STR, 0, 10, 10, 0)                                                              \
    F(updated_on, STR, 0, 10, 10, 0)                                                               \
    F(contact, STR, 1, 200, 1, 0)                                                                  \
    F(location, STR, 1, 500, 1, 0)                                                                 \
    F(access_conditions, STR, 0, 2000, 1, 0)                                                       \
    F(endpoint, STR, 0, 500, 1, 0)
#define ODP_FIELDS_catalog_get(F) F(resource, STR, 1, 32, 1, 0)
#define ODP_FIELDS_catalog_list(F)                                                                 \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(status, STR, 0, 32, 1, 0)                                                                    \
    F(overdue, BOOL, 0, 0, 0, 0)
/*  Maintenance (R4.2c, R5.4): only the fields given change; updated_on becomes today. */
#define ODP_FIELDS_catalog_update(F)                                                               \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(summary, STR, 0, 4000, 1, 0)                                                                 \
    F(keywords, STRS, 0, 64, 0, 20)                                                                \
    F(open_type, STR, 0, 64, 1, 0)                                                                 \
    F(access_conditions, STR, 0, 2000, 1, 0)                                                       \
    F(update_cycle, STR, 0, 64, 1, 0)                                                              \
    F(contact, STR, 0, 200, 1, 0)                                                                  \
    F(location, STR, 0, 500, 1, 0)                                                                 \
    F(endpoint, STR, 0, 500, 1, 0)
#define ODP_FIELDS_dictionary_set(F)                                                               \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(fields, ANY, 1, 0, 1, 500)
#define ODP_FIELDS_dictionary_get(F)                                                               \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(revision, INT, 0, 0, 1, 2147483647)
#define ODP_FIELDS_registration_request(F) F(resource, STR, 1, 32, 1, 0)
#define ODP_FIELDS_registration_decide(F)                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(approve, BOOL, 1, 0, 0, 0)                                                                   \
    F(reason, STR, 0, 1000, 1, 0)

/*  Transfer rules (R5.5a). */
#define ODP_FIELDS_rules_get(F)
#define ODP_FIELDS_rules_set(F)                                                                    \
    F(formats, STRS, 0, 16, 0, 8)                                                                  \
    F(encodings, STRS, 0, 16, 0, 8)                                                                \
    F(max_size, INT, 0, 0, 1, ODP_I64_MAX)                                                         \
    F(max_row_length, INT, 0, 0, 64, 16777216)                                                     \
    F(chunk_size, INT, 0, 0, 4096, 917504)                                                         \
    F(credit, INT, 0, 0, 1, 64)

/*  Pushing data (R5.5b, R7c): begin, chunks under credit, finish. */
#define ODP_FIELDS_push_begin(F)                                                                   \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(format, STR, 1, 16, 1, 0)                                                                    \
    F(encoding, STR, 0, 16, 1, 0)                                                                  \
    F(size, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(sha256, STR, 1, 64, 64, 0)                                                                   \
    F(filename, STR, 0, 255, 1, 0)                                                                 \
    F(media_type, STR, 0, 127, 1, 0)
#define ODP_FIELDS_push_chunk(F)                                                                   \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(offset, INT, 1, 0, 0, ODP_I64_MAX)                                                           \
    F(data, BIN, 1, 917504, 0, 0)
#define ODP_FIELDS_push_finish(F) F(upload, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_push_abort(F)                                                                   \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(reason, STR, 0, 1000, 1, 0)
#define ODP_FIELDS_push_status(F) F(upload, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_version_list(F)                                                                 \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)
#define ODP_FIELDS_rejects_list(F)                                                                 \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(limit, INT, 0, 0, 1, 10000)
/*  A provider takes back a bad version (pushed in the wrong encoding, say): it stays
    listed, marked withdrawn, and is no longer what a push of the same content duplicates. */
#define ODP_FIELDS_version_withdraw(F)                                                             \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(reason, STR, 1, 1000, 1, 0)
/*  The reviewer (PROTOCOL.md §reviewer): a version's review, its findings and counts. */
#define ODP_FIELDS_review_show(F) F(upload, INT, 1, 0, 1, ODP_I64_MAX)

/*  A version's report in Frictionless' shape, at most limit sample errors per type. */
#define ODP_FIELDS_review_report(F)                                                                \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(limit, INT, 0, 0, 1, 10000)
/*  A department's own versions' findings and rejection reasons (R9e): one version, or all. */
#define ODP_FIELDS_review_findings(F)                                                              \
    F(upload, INT, 0, 0, 1, ODP_I64_MAX)                                                           \
    F(limit, INT, 0, 0, 1, 10000)

/*  Quarantine (R9d): operations list the isolated rows and handle each one. */
#define ODP_FIELDS_quarantine_list(F)                                                              \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(resource, STR, 0, 32, 1, 0)                                                                  \
    F(upload, INT, 0, 0, 1, ODP_I64_MAX)                                                           \
    F(check, STR, 0, 32, 1, 0)                                                                     \
    F(state, STR, 0, 16, 1, 0)                                                                     \
    F(limit, INT, 0, 0, 1, 10000)
#define ODP_FIELDS_quarantine_handle(F)                                                            \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(row, INT, 1, 0, 1, ODP_I64_MAX)                                                              \
    F(outcome, STR, 1, 16, 1, 0)                                                                   \
    F(comment, STR, 1, 1000, 1, 0)                                                                 \
    F(new_value, STR, 0, 10000, 0, 0)
/*  Decision and sign-off (R9c, R5.6a). */
#define ODP_FIELDS_review_queue(F) F(limit, INT, 0, 0, 1, 10000)
#define ODP_FIELDS_review_decide(F)                                                                \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(approve, BOOL, 1, 0, 0, 0)                                                                   \
    F(reason, STR, 0, 1000, 1, 0)
/*  The acceptance standard (R9c): per check, the share of rows that must pass. */
#define ODP_FIELDS_standard_get(F)
#define ODP_FIELDS_standard_set(F)                                                                 \
    F(checks, ANY, 1, 0, 0, 64)                                                                    \
    F(comment, STR, 0, 1000, 1, 0)

/*  The publisher (PROTOCOL.md § Publisher, R4.3a, R5.7b, R9a, R9d, R8.2b, R8.3c-d). A
    release names an entry and, for pushed content, one of its versions (the latest
    received when omitted). Operations only. */
#define ODP_FIELDS_release_queue(F) F(limit, INT, 0, 0, 1, 10000)
#define ODP_FIELDS_release_publish(F)                                                              \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_release_withdraw(F)                                                             \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)                                                          \
    F(reason, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_release_restore(F)                                                              \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_release_list(F)                                                                 \
    F(resource, STR, 0, 32, 1, 0)                                                                  \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(state, STR, 0, 16, 1, 0)                                                                     \
    F(limit, INT, 0, 0, 1, 10000)
#define ODP_FIELDS_release_show(F)                                                                 \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 0, 63, 1, 0)                                                                     \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)
/*  scope: a department code (its entries) or a resource code (that entry, which wins). */
#define ODP_FIELDS_release_policy(F)                                                               \
    F(scope, STR, 1, 32, 1, 0)                                                                     \
    F(automatic, BOOL, 1, 0, 0, 0)
/*  The public catalogue: format jsonld | turtle (DCAT-AP 3) | schemaorg (one entry's
    schema.org Dataset); since N: only entries the publisher's events after N changed. */
#define ODP_FIELDS_catalogue_export(F)                                                             \
    F(format, STR, 1, 16, 1, 0)                                                                    \
    F(since, INT, 0, 0, 0, ODP_I64_MAX)                                                            \
    F(resource, STR, 0, 32, 1, 0)
/*  Registrar, for the publisher only: index columns of a received version's staging table
    (fields: dictionary field names, or row_no). Idempotent. async: answer at once, the
    reply's ready says whether the builds are done. background: build on one connection;
    a later request without it gives the build its usual connections. */
#define ODP_FIELDS_stage_index(F)                                                                  \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(fields, STRS, 1, 63, 0, 500)                                                                 \
    F(async, BOOL, 0, 0, 0, 0)                                                                     \
    F(background, BOOL, 0, 0, 0, 0)
/*  The query service (PROTOCOL.md §13). token: a session token from user.signin; without
    one a request acts as the key bound to an account (user.bind_key), else as anonymous. */
#define ODP_FIELDS_user_signup(F)                                                                  \
    F(login, STR, 1, 64, 3, 0)                                                                     \
    F(password, STR, 1, 256, 8, 0)                                                                 \
    F(name, STR, 0, 200, 1, 0)
#define ODP_FIELDS_user_signin(F)                                                                  \
    F(login, STR, 1, 64, 3, 0)                                                                     \
    F(password, STR, 1, 256, 1, 0)                                                                 \
    F(ttl_s, INT, 0, 0, 1, 2592000)
#define ODP_FIELDS_user_signout(F)                                                                 \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(all, BOOL, 0, 0, 0, 0)
#define ODP_FIELDS_user_me(F)       F(token, STR, 0, 64, 43, 0)
#define ODP_FIELDS_user_bind_key(F) F(token, STR, 1, 64, 43, 0)
#define ODP_FIELDS_application_submit(F)                                                           \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(purpose, STR, 1, 2000, 1, 0)                                                                 \
    F(scope, STR, 1, 2000, 1, 0)                                                                   \
    F(period_from, STR, 1, 10, 10, 0)                                                              \
    F(period_to, STR, 1, 10, 10, 0)
#define ODP_FIELDS_application_list(F)                                                             \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(state, STR, 0, 16, 1, 0)                                                                     \
    F(resource, STR, 0, 32, 1, 0)                                                                  \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(limit, INT, 0, 0, 1, 10000)
#define ODP_FIELDS_application_decide(F)                                                           \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(grant, BOOL, 1, 0, 0, 0)                                                                     \
    F(expires_at, STR, 0, 32, 10, 0)                                                               \
    F(scope, STR, 0, 2000, 1, 0)                                                                   \
    F(reason, STR, 0, 1000, 1, 0)
#define ODP_FIELDS_access_check(F)                                                                 \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(resource, STR, 1, 32, 1, 0)
#define ODP_FIELDS_feedback_submit(F)                                                              \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(resource, STR, 0, 32, 1, 0)                                                                  \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(title, STR, 0, 200, 1, 0)                                                                    \
    F(text, STR, 0, 4000, 1, 0)                                                                    \
    F(rating, INT, 0, 0, 1, 5)                                                                     \
    F(url, STR, 0, 500, 1, 0)
#define ODP_FIELDS_feedback_reply(F)                                                               \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(text, STR, 1, 4000, 1, 0)                                                                    \
    F(resolve, BOOL, 0, 0, 0, 0)
#define ODP_FIELDS_feedback_get(F)                                                                 \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_feedback_list(F)                                                                \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(kind, STR, 0, 16, 1, 0)                                                                      \
    F(state, STR, 0, 16, 1, 0)                                                                     \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(limit, INT, 0, 0, 1, 10000)
/*  Metrics (R6c, R9e, R10a-R10c; PROTOCOL.md §14). period: YYYY, YYYY-Qn, YYYY-MM or
    YYYY-MM-DD (the current month when absent); department: a department code. */
#define ODP_FIELDS_monitor_status(F) F(stuck_after_s, INT, 0, 0, 1, 31536000)
#define ODP_FIELDS_stats_get(F)                                                                    \
    F(period, STR, 0, 10, 4, 0)                                                                    \
    F(department, STR, 0, 9, 9, 0)
#define ODP_FIELDS_assess_get(F)                                                                   \
    F(period, STR, 0, 10, 4, 0)                                                                    \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(resource, STR, 0, 32, 1, 0)
#define ODP_FIELDS_index_get(F)                                                                    \
    F(period, STR, 0, 10, 4, 0)                                                                    \
    F(department, STR, 0, 9, 9, 0)
#define ODP_FIELDS_index_explain(F)                                                                \
    F(period, STR, 0, 10, 4, 0)                                                                    \
    F(department, STR, 1, 9, 9, 0)
#define ODP_FIELDS_index_history(F) F(department, STR, 1, 9, 9, 0)
#define ODP_FIELDS_weights_get(F)   F(version, INT, 0, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_weights_set(F)                                                                  \
    F(volume, NUM, 1, 0, 0, 1000)                                                                  \
    F(quality, NUM, 1, 0, 0, 1000)                                                                 \
    F(apps, NUM, 1, 0, 0, 1000)                                                                    \
    F(access, NUM, 1, 0, 0, 1000)                                                                  \
    F(efficiency, NUM, 1, 0, 0, 1000)                                                              \
    F(effect, NUM, 1, 0, 0, 1000)                                                                  \
    F(comment, STR, 0, 1000, 1, 0)
#define ODP_FIELDS_quality_report(F)                                                               \
    F(period, STR, 0, 10, 4, 0)                                                                    \
    F(department, STR, 0, 9, 9, 0)
#define ODP_FIELDS_webhook_add(F)                                                                  \
    F(url, STR, 1, 2000, 8, 0)                                                                     \
    F(sources, STRS, 0, 16, 0, 5)
#define ODP_FIELDS_webhook_list(F)
#define ODP_FIELDS_webhook_remove(F) F(id, INT, 1, 0, 1, ODP_I64_MAX)
/*  Finding and obtaining published data (PROTOCOL.md §13, R5.8a-b): CKAN's package_search
    (facet_field is CKAN's facet.field), package_show, datastore_search; whole versions
    downloaded in chunks under credit. */
#define ODP_FIELDS_catalogue_search(F)                                                             \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(q, STR, 0, 500, 0, 0)                                                                        \
    F(fq, STR, 0, 2000, 0, 0)                                                                      \
    F(sort, STR, 0, 100, 1, 0)                                                                     \
    F(rows, INT, 0, 0, 0, 1000)                                                                    \
    F(start, INT, 0, 0, 0, 100000)                                                                 \
    F(facet_field, STRS, 0, 32, 0, 8)                                                              \
    F(facet_limit, INT, 0, 0, 1, 1000)
#define ODP_FIELDS_entry_show(F)                                                                   \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(resource, STR, 1, 32, 1, 0)
#define ODP_FIELDS_datastore_search(F)                                                             \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)                                                          \
    F(filters, ANY, 0, 0, 0, 64)                                                                   \
    F(q, STR, 0, 500, 1, 0)                                                                        \
    F(fields, STRS, 0, 63, 1, 500)                                                                 \
    F(sort, STR, 0, 200, 1, 0)                                                                     \
    F(limit, INT, 0, 0, 0, 32000)                                                                  \
    F(offset, INT, 0, 0, 0, 100000)                                                                \
    F(include_total, BOOL, 0, 0, 0, 0)                                                             \
    F(records_format, STR, 0, 16, 1, 0)                                                            \
    F(next_page, STR, 0, 200, 1, 0)
#define ODP_FIELDS_download_begin(F)                                                               \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)                                                          \
    F(format, STR, 0, 16, 1, 0)
#define ODP_FIELDS_download_chunk(F)                                                               \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(download, INT, 1, 0, 1, ODP_I64_MAX)                                                         \
    F(from_row, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_download_list(F)                                                                \
    F(token, STR, 0, 64, 43, 0)                                                                    \
    F(resource, STR, 0, 32, 1, 0)                                                                  \
    F(limit, INT, 0, 0, 1, 10000)

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
    M(credential_revoke, "credential.revoke")                                                      \
    M(plan_add, "plan.add")                                                                        \
    M(plan_list, "plan.list")                                                                      \
    M(plan_update, "plan.update")                                                                  \
    M(plan_cancel, "plan.cancel")                                                                  \
    M(catalog_add, "catalog.add")                                                                  \
    M(catalog_get, "catalog.get")                                                                  \
    M(catalog_list, "catalog.list")                                                                \
    M(catalog_update, "catalog.update")                                                            \
    M(dictionary_set, "dictionary.set")                                                            \
    M(dictionary_get, "dictionary.get")                                                            \
    M(registration_request, "registration.request")                                                \
    M(registration_decide, "registration.decide")                                                  \
    M(rules_get, "rules.get")                                                                      \
    M(rules_set, "rules.set")                                                                      \
    M(push_begin, "push.begin")                                                                    \
    M(push_chunk, "push.chunk")                                                                    \
    M(push_finish, "push.finish")                                                                  \
    M(push_abort, "push.abort")                                                                    \
    M(push_status, "push.status")                                                                  \
    M(version_list, "version.list")                                                                \
    M(rejects_list, "rejects.list")                                                                \
    M(version_withdraw, "version.withdraw")                                                        \
    M(review_show, "review.show")                                                                  \
    M(quarantine_list, "quarantine.list")                                                          \
    M(quarantine_handle, "quarantine.handle")                                                      \
    M(review_queue, "review.queue")                                                                \
    M(review_decide, "review.decide")                                                              \
    M(standard_get, "standard.get")                                                                \
    M(standard_set, "standard.set")                                                                \
    M(release_queue, "release.queue")                                                              \
    M(release_publish, "release.publish")                                                          \
    M(release_withdraw, "release.withdraw")                                                        \
    M(release_restore, "release.restore")                                                          \
    M(release_list, "release.list")                                                                \
    M(release_show, "release.show")                                                                \
    M(release_policy, "release.policy")                                                            \
    M(catalogue_export, "catalogue.export")                                                        \
    M(stage_index, "stage.index")                                                                  \
    M(user_signup, "user.signup")                                                                  \
    M(user_signin, "user.signin")                                                                  \
    M(user_signout, "user.signout")                                                                \
    M(user_me, "user.me")                                                                          \
    M(user_bind_key, "user.bind_key")                                                              \
    M(application_submit, "application.submit")                                                    \
    M(application_list, "application.list")                                                        \
    M(application_decide, "application.decide")                                                    \
    M(access_check, "access.check")                                                                \
    M(feedback_submit, "feedback.submit")                                                          \
    M(feedback_reply, "feedback.reply")                                                            \
    M(feedback_get, "feedback.get")                                                                \
    M(feedback_list, "feedback.list")                                                              \
    M(review_report, "review.report")                                                              \
    M(review_findings, "review.findings")                                                          \
    M(monitor_status, "monitor.status")                                                            \
    M(stats_get, "stats.get")                                                                      \
    M(assess_get, "assess.get")                                                                    \
    M(index_get, "index.get")                                                                      \
    M(index_explain, "index.explain")                                                              \
    M(index_history, "index.history")                                                              \
    M(weights_get, "weights.get")                                                                  \
    M(weights_set, "weights.set")                                                                  \
    M(quality_report, "quality.report")                                                            \
    M(webhook_add, "webhook.add")                                                                  \
    M(webhook_list, "webhook.list")                                                                \
    M(webhook_remove, "webhook.remove")                                                            \
    M(catalogue_search, "catalogue.search")                                                        \
    M(entry_show, "entry.show")                                                                    \
    M(datastore_search, "datastore.search")                                                        \
    M(download_begin, "download.begin")                                                            \
    M(download_chunk, "download.chunk")                                                            \
    M(download_list, "download.list")

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

#define ODP_FIELDS_ev_catalog_planned(F)                                                           \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(title, STR, 1, 200, 1, 0)                                                                    \
    F(due_on, STR, 1, 10, 10, 0)
#define ODP_FIELDS_ev_catalog_catalogued(F)                                                        \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(title, STR, 1, 200, 1, 0)                                                                    \
    F(plan, INT, 0, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_catalog_registration_requested(F)                                            \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)
#define ODP_FIELDS_ev_catalog_registered(F)                                                        \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)
#define ODP_FIELDS_ev_catalog_refused(F)                                                           \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(reason, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_ev_catalog_updated(F)                                                           \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(fields, STRS, 1, 32, 0, 16)
#define ODP_FIELDS_ev_catalog_plan_updated(F)                                                      \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(fields, STRS, 1, 32, 0, 16)
#define ODP_FIELDS_ev_catalog_plan_cancelled(F)                                                    \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(reason, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_ev_catalog_dictionary_set(F)                                                    \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(revision, INT, 1, 0, 1, 2147483647)
#define ODP_FIELDS_ev_rules_updated(F)                                                             \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(max_size, INT, 1, 0, 1, ODP_I64_MAX)                                                         \
    F(chunk_size, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_data_received(F)                                                             \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(sha256, STR, 1, 64, 64, 0)                                                                   \
    F(size, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(rows_received, INT, 1, 0, 0, ODP_I64_MAX)                                                    \
    F(rows_staged, INT, 1, 0, 0, ODP_I64_MAX)                                                      \
    F(rows_rejected, INT, 1, 0, 0, ODP_I64_MAX)
#define ODP_FIELDS_ev_data_failed(F)                                                               \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(code, STR, 1, 32, 1, 0)                                                                      \
    F(reason, STR, 1, 1000, 1, 0)                                                                  \
    F(offset, INT, 1, 0, 0, ODP_I64_MAX)
#define ODP_FIELDS_ev_data_withdrawn(F)                                                            \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(reason, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_ev_review_started(F)                                                            \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_review_flagged(F)                                                            \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(findings, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(quarantined, INT, 1, 0, 0, ODP_I64_MAX)

#define ODP_FIELDS_ev_quarantine_isolated(F)                                                       \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(count, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_quarantine_handled(F)                                                        \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(row, INT, 1, 0, 1, ODP_I64_MAX)                                                              \
    F(outcome, STR, 1, 16, 1, 0)
#define ODP_FIELDS_ev_review_approved(F)                                                           \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_review_rejected(F)                                                           \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(reason, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_ev_review_rechecked(F)                                                          \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(standard, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(findings, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_standard_updated(F)                                                          \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(checks, INT, 1, 0, 0, 64)

#define ODP_FIELDS_ev_release_published(F)                                                         \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(release, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(rows, INT, 0, 0, 0, ODP_I64_MAX)                                                             \
    F(sha256, STR, 0, 64, 64, 0)                                                                   \
    F(endpoint, STR, 0, 2000, 1, 0)
#define ODP_FIELDS_ev_release_superseded(F)                                                        \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(release, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(by, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_release_withdrawn(F)                                                         \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(release, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(reason, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_ev_release_restored(F)                                                          \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(release, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_user_registered(F)                                                           \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(user, INT, 1, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_ev_application_received(F)                                                      \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)
#define ODP_FIELDS_ev_application_decided(F)                                                       \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(granted, BOOL, 1, 0, 0, 0)                                                                   \
    F(response_s, INT, 1, 0, 0, ODP_I64_MAX)
#define ODP_FIELDS_ev_feedback_received(F)                                                         \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(resource, STR, 0, 32, 1, 0)
#define ODP_FIELDS_ev_feedback_answered(F)                                                         \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(response_s, INT, 1, 0, 0, ODP_I64_MAX)
#define ODP_FIELDS_ev_feedback_resolved(F)                                                         \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(resolve_s, INT, 1, 0, 0, ODP_I64_MAX)
#define ODP_FIELDS_ev_usage_counted(F)                                                             \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(day, STR, 1, 10, 10, 0)                                                                      \
    F(views, INT, 1, 0, 0, ODP_I64_MAX)                                                            \
    F(queries, INT, 1, 0, 0, ODP_I64_MAX)                                                          \
    F(downloads, INT, 1, 0, 0, ODP_I64_MAX)
/*  Query: a signed-in user used (viewed, queried, downloaded) a resource for the first time
    on a day (UTC), at the flush after; for metrics' distinct users. No department: the
    department's own replay does not learn who read its data. */
#define ODP_FIELDS_ev_usage_user_counted(F)                                                        \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(day, STR, 1, 10, 10, 0)                                                                      \
    F(user, STR, 1, 40, 6, 0)
/*  Metrics: a monitored condition began (raised) or ended (cleared); each once per
    condition. alert names the condition (kind:subject), e.g. "stuck_push:42". */
#define ODP_FIELDS_ev_alert_raised(F)                                                              \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(alert, STR, 1, 200, 1, 0)                                                                    \
    F(kind, STR, 1, 32, 1, 0)                                                                      \
    F(subject, STR, 1, 100, 1, 0)                                                                  \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(detail, STR, 1, 1000, 1, 0)
#define ODP_FIELDS_ev_alert_cleared(F)                                                             \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(alert, STR, 1, 200, 1, 0)                                                                    \
    F(kind, STR, 1, 32, 1, 0)                                                                      \
    F(subject, STR, 1, 100, 1, 0)                                                                  \
    F(department, STR, 0, 9, 9, 0)
#define ODP_FIELDS_ev_weights_updated(F)                                                           \
    ODP_EVENT_ENVELOPE(F)                                                                          \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)

#define ODP_EVENTS(M)                                                                              \
    M(ev_heartbeat, "heartbeat")                                                                   \
    M(ev_authority_registered, "authority.registered")                                             \
    M(ev_department_registered, "department.registered")                                           \
    M(ev_department_updated, "department.updated")                                                 \
    M(ev_staff_registered, "staff.registered")                                                     \
    M(ev_credential_added, "credential.added")                                                     \
    M(ev_credential_revoked, "credential.revoked")                                                 \
    M(ev_catalog_planned, "catalog.planned")                                                       \
    M(ev_catalog_catalogued, "catalog.catalogued")                                                 \
    M(ev_catalog_registration_requested, "catalog.registration_requested")                         \
    M(ev_catalog_registered, "catalog.registered")                                                 \
    M(ev_catalog_refused, "catalog.refused")                                                       \
    M(ev_catalog_updated, "catalog.updated")                                                       \
    M(ev_catalog_plan_updated, "catalog.plan_updated")                                             \
    M(ev_catalog_plan_cancelled, "catalog.plan_cancelled")                                         \
    M(ev_catalog_dictionary_set, "catalog.dictionary_set")                                         \
    M(ev_rules_updated, "rules.updated")                                                           \
    M(ev_data_received, "data.received")                                                           \
    M(ev_data_failed, "data.failed")                                                               \
    M(ev_data_withdrawn, "data.withdrawn")                                                         \
    M(ev_review_started, "review.started")                                                         \
    M(ev_review_flagged, "review.flagged")                                                         \
    M(ev_quarantine_isolated, "quarantine.isolated")                                               \
    M(ev_quarantine_handled, "quarantine.handled")                                                 \
    M(ev_review_approved, "review.approved")                                                       \
    M(ev_review_rejected, "review.rejected")                                                       \
    M(ev_standard_updated, "standard.updated")                                                     \
    M(ev_release_published, "release.published")                                                   \
    M(ev_release_superseded, "release.superseded")                                                 \
    M(ev_release_withdrawn, "release.withdrawn")                                                   \
    M(ev_release_restored, "release.restored")                                                     \
    M(ev_user_registered, "user.registered")                                                       \
    M(ev_application_received, "application.received")                                             \
    M(ev_application_decided, "application.decided")                                               \
    M(ev_feedback_received, "feedback.received")                                                   \
    M(ev_feedback_answered, "feedback.answered")                                                   \
    M(ev_feedback_resolved, "feedback.resolved")                                                   \
    M(ev_usage_counted, "usage.counted")                                                           \
    M(ev_usage_user_counted, "usage.user_counted")                                                 \
    M(ev_review_rechecked, "review.rechecked")                                                     \
    M(ev_alert_raised, "alert.raised")                                                             \
    M(ev_alert_cleared, "alert.cleared")                                                           \
    M(ev_weights_updated, "weights.updated")

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
    F(secure, BOOL, 1, 0, 0, 0)                                                                    \
    F(latency_buckets, ANY, 0, 0, 0, 16)                                                           \
    F(latency_sum_us, INT, 0, 0, 0, ODP_I64_MAX)
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
    F(more, BOOL, 1, 0, 0, 0)                                                                      \
    F(through, INT, 0, 0, 0, ODP_I64_MAX)
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

#define ODP_FIELDS_rec_plan(F)                                                                     \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(title, STR, 1, 200, 1, 0)                                                                    \
    F(summary, STR, 0, 4000, 0, 0)                                                                 \
    F(domain, STR, 0, 64, 1, 0)                                                                    \
    F(content_kind, STR, 0, 64, 1, 0)                                                              \
    F(open_type, STR, 1, 64, 1, 0)                                                                 \
    F(update_cycle, STR, 1, 64, 1, 0)                                                              \
    F(due_on, STR, 1, 10, 10, 0)                                                                   \
    F(maintainer, STR, 1, 200, 1, 0)                                                               \
    F(status, STR, 1, 32, 1, 0)                                                                    \
    F(overdue, BOOL, 1, 0, 0, 0)                                                                   \
    F(resource, STR, 0, 32, 1, 0)                                                                  \
    F(planned_by, STR, 1, 100, 1, 0)                                                               \
    F(cancelled_reason, STR, 0, 1000, 1, 0)
#define ODP_FIELDS_rec_catalog(F)                                                                  \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(plan, INT, 0, 0, 1, ODP_I64_MAX)                                                             \
    F(title, STR, 1, 200, 1, 0)                                                                    \
    F(summary, STR, 1, 4000, 1, 0)                                                                 \
    F(keywords, STRS, 1, 64, 0, 20)                                                                \
    F(domain, STR, 1, 64, 1, 0)                                                                    \
    F(content_kind, STR, 1, 64, 1, 0)                                                              \
    F(delivery_form, STR, 1, 64, 1, 0)                                                             \
    F(open_type, STR, 1, 64, 1, 0)                                                                 \
    F(update_cycle, STR, 1, 64, 1, 0)                                                              \
    F(released_on, STR, 0, 10, 10, 0)                                                              \
    F(updated_on, STR, 0, 10, 10, 0)                                                               \
    F(contact, STR, 1, 200, 1, 0)                                                                  \
    F(location, STR, 1, 500, 1, 0)                                                                 \
    F(status, STR, 1, 32, 1, 0)                                                                    \
    F(refused_reason, STR, 0, 1000, 1, 0)                                                          \
    F(catalogued_at, STR, 1, 32, 1, 0)                                                             \
    F(catalogued_by, STR, 1, 100, 1, 0)                                                            \
    F(access_conditions, STR, 0, 2000, 1, 0)                                                       \
    F(endpoint, STR, 0, 500, 1, 0)                                                                 \
    F(next_due_on, STR, 0, 10, 10, 0)                                                              \
    F(overdue, BOOL, 1, 0, 0, 0)
/*  One field of a data dictionary (R8.3a). `allowed` is the list of allowed values (the
    dictionary files' "enum": a C keyword cannot name a struct member). */
#define ODP_FIELDS_rec_dict_field(F)                                                               \
    F(name, STR, 1, 63, 1, 0)                                                                      \
    F(type, STR, 1, 16, 1, 0)                                                                      \
    F(length, INT, 0, 0, 1, 1048576)                                                               \
    F(required, BOOL, 0, 0, 0, 0)                                                                  \
    F(unique, BOOL, 0, 0, 0, 0)                                                                    \
    F(allowed, STRS, 0, 200, 0, 1000)                                                              \
    F(min, NUM, 0, 0, -ODP_I64_MAX, ODP_I64_MAX)                                                   \
    F(max, NUM, 0, 0, -ODP_I64_MAX, ODP_I64_MAX)                                                   \
    F(pattern, STR, 0, 500, 1, 0)                                                                  \
    F(check, STR, 0, 16, 1, 0)                                                                     \
    F(description, STR, 0, 500, 0, 0)                                                              \
    F(min_length, INT, 0, 0, 1, 1048576)                                                           \
    F(primary_key, BOOL, 0, 0, 0, 0)
#define ODP_FIELDS_rep_dictionary(F)                                                               \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(fields, ANY, 1, 0, 1, 500)                                                                   \
    F(revision, INT, 1, 0, 1, 2147483647)                                                          \
    F(set_at, STR, 1, 32, 1, 0)
#define ODP_FIELDS_rep_rules(F)                                                                    \
    F(formats, STRS, 1, 16, 0, 8)                                                                  \
    F(encodings, STRS, 1, 16, 0, 8)                                                                \
    F(max_size, INT, 1, 0, 1, ODP_I64_MAX)                                                         \
    F(max_row_length, INT, 1, 0, 64, 16777216)                                                     \
    F(chunk_size, INT, 1, 0, 4096, 917504)                                                         \
    F(credit, INT, 1, 0, 1, 64)
/*  push.begin: where to (re)start. offset is where the next chunk must start (0 for a new
    upload, the last committed row boundary when resuming); duplicate true when identical
    content is already a version (then upload is absent and version names it). */
#define ODP_FIELDS_rep_push_begin(F)                                                               \
    F(upload, INT, 0, 0, 1, ODP_I64_MAX)                                                           \
    F(offset, INT, 1, 0, 0, ODP_I64_MAX)                                                           \
    F(chunk_size, INT, 1, 0, 4096, 917504)                                                         \
    F(credit, INT, 1, 0, 1, 64)                                                                    \
    F(duplicate, BOOL, 1, 0, 0, 0)                                                                 \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)
/*  push.chunk ack: offset = where the next chunk must start; committed = bytes durably
    processed (a resume restarts there); rows_* so far. */
#define ODP_FIELDS_rep_push_ack(F)                                                                 \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(offset, INT, 1, 0, 0, ODP_I64_MAX)                                                           \
    F(committed, INT, 1, 0, 0, ODP_I64_MAX)                                                        \
    F(rows_received, INT, 1, 0, 0, ODP_I64_MAX)                                                    \
    F(rows_rejected, INT, 1, 0, 0, ODP_I64_MAX)
#define ODP_FIELDS_rep_push_summary(F)                                                             \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(upload, INT, 0, 0, 1, ODP_I64_MAX)                                                           \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(sha256, STR, 1, 64, 64, 0)                                                                   \
    F(size, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(media_type, STR, 0, 127, 1, 0)                                                               \
    F(rows_received, INT, 1, 0, 0, ODP_I64_MAX)                                                    \
    F(rows_staged, INT, 1, 0, 0, ODP_I64_MAX)                                                      \
    F(rows_rejected, INT, 1, 0, 0, ODP_I64_MAX)                                                    \
    F(staging_table, STR, 0, 127, 1, 0)                                                            \
    F(duplicate, BOOL, 1, 0, 0, 0)
#define ODP_FIELDS_rep_push_status(F)                                                              \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(status, STR, 1, 16, 1, 0)                                                                    \
    F(offset, INT, 1, 0, 0, ODP_I64_MAX)                                                           \
    F(size, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)
#define ODP_FIELDS_rec_version(F)                                                                  \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(sha256, STR, 1, 64, 64, 0)                                                                   \
    F(size, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(rows_received, INT, 1, 0, 0, ODP_I64_MAX)                                                    \
    F(rows_staged, INT, 1, 0, 0, ODP_I64_MAX)                                                      \
    F(rows_rejected, INT, 1, 0, 0, ODP_I64_MAX)                                                    \
    F(received_at, STR, 1, 32, 1, 0)                                                               \
    F(withdrawn_at, STR, 0, 32, 1, 0)                                                              \
    F(withdrawn_reason, STR, 0, 1000, 1, 0)
/*  A row the registrar could not type: kept with its raw text for the reviewer. reason is
    one of ragged (wrong number of fields), type (a value that does not parse as its
    column's type), encoding (bytes not valid in the declared encoding), shape (JSON Lines:
    not an object / unknown keys). */
#define ODP_FIELDS_rec_reject(F)                                                                   \
    F(row, INT, 1, 0, 1, ODP_I64_MAX)                                                              \
    F(reason, STR, 1, 16, 1, 0)                                                                    \
    F(detail, STR, 1, 500, 0, 0)                                                                   \
    F(raw, STR, 1, 16777216, 0, 0)
/*  A version's review: state, counts (received = accepted + quarantined + dropped) and
    findings per Frictionless error type and per check, {name: count}. */
#define ODP_FIELDS_rep_review(F)                                                                   \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(state, STR, 1, 16, 1, 0)                                                                     \
    F(received, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(accepted, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(quarantined, INT, 1, 0, 0, ODP_I64_MAX)                                                      \
    F(dropped, INT, 1, 0, 0, ODP_I64_MAX)                                                          \
    F(findings, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(by_type, ANY, 1, 0, 0, 8)                                                                    \
    F(by_check, ANY, 1, 0, 0, 64)                                                                  \
    F(reason, STR, 0, 1000, 1, 0)                                                                  \
    F(decided_by, STR, 0, 100, 1, 0)                                                               \
    F(decided_at, STR, 0, 32, 1, 0)                                                                \
    F(compare, ANY, 0, 0, 0, 8)                                                                    \
    F(score, NUM, 0, 0, 0, 100)                                                                    \
    F(checked_at, STR, 0, 32, 1, 0)

/*  A quarantined row: what the checks found on it (checks, fields: comma-separated names),
    its state (isolated, or the outcome: corrected, dropped, released) and who handled it,
    when and why. */
#define ODP_FIELDS_rec_quarantine(F)                                                               \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(row, INT, 1, 0, 1, ODP_I64_MAX)                                                              \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(checks, STR, 1, 2000, 0, 0)                                                                  \
    F(fields, STR, 1, 2000, 0, 0)                                                                  \
    F(state, STR, 1, 16, 1, 0)                                                                     \
    F(handled_by, STR, 0, 100, 1, 0)                                                               \
    F(handled_at, STR, 0, 32, 1, 0)                                                                \
    F(comment, STR, 0, 1000, 1, 0)                                                                 \
    F(field, STR, 0, 63, 1, 0)                                                                     \
    F(old_value, STR, 0, 10000, 0, 0)                                                              \
    F(new_value, STR, 0, 10000, 0, 0)
/*  A version waiting for its decision (review.queue), oldest first. */
#define ODP_FIELDS_rec_review_queued(F)                                                            \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(received, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(isolated, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(started_at, STR, 1, 32, 1, 0)
/*  One check of the acceptance standard: mostly is the share of rows that must pass it. */
#define ODP_FIELDS_rec_standard_check(F)                                                           \
    F(check, STR, 1, 32, 1, 0)                                                                     \
    F(mostly, NUM, 1, 0, 0, 1)
#define ODP_FIELDS_rep_standard(F)                                                                 \
    F(version, INT, 1, 0, 0, ODP_I64_MAX)                                                          \
    F(checks, ANY, 1, 0, 0, 64)                                                                    \
    F(comment, STR, 0, 1000, 1, 0)                                                                 \
    F(set_by, STR, 0, 100, 1, 0)                                                                   \
    F(set_at, STR, 0, 32, 1, 0)

/*  A release of an entry's version (the publisher): relation is the public view of a
    dataset's accepted rows (publisher.r<release>), absent for files and endpoints. */
#define ODP_FIELDS_rec_release(F)                                                                  \
    F(release, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(state, STR, 1, 16, 1, 0)                                                                     \
    F(upload, INT, 0, 0, 1, ODP_I64_MAX)                                                           \
    F(relation, STR, 0, 63, 1, 0)                                                                  \
    F(rows, INT, 0, 0, 0, ODP_I64_MAX)                                                             \
    F(bytes, INT, 0, 0, 0, ODP_I64_MAX)                                                            \
    F(sha256, STR, 0, 64, 64, 0)                                                                   \
    F(format, STR, 0, 127, 1, 0)                                                                   \
    F(endpoint, STR, 0, 2000, 1, 0)                                                                \
    F(standard, INT, 0, 0, 1, ODP_I64_MAX)                                                         \
    F(released_by, STR, 1, 100, 1, 0)                                                              \
    F(released_at, STR, 1, 32, 1, 0)                                                               \
    F(withdrawn_reason, STR, 0, 1000, 1, 0)
/*  release.show: the release, its fields, its facets [{field, value, count}] and every
    release attempt of the entry's table [{at, actor, version, outcome, reasons}]. */
#define ODP_FIELDS_rep_release(F)                                                                  \
    ODP_FIELDS_rec_release(F) F(fields, ANY, 1, 0, 0, 500) F(facets, ANY, 1, 0, 0, 100000)         \
        F(attempts, ANY, 1, 0, 0, 1000)
#define ODP_FIELDS_rec_release_field(F)                                                            \
    F(position, INT, 1, 0, 1, 2147483647)                                                          \
    F(name, STR, 1, 63, 1, 0)                                                                      \
    F(type, STR, 1, 16, 1, 0)                                                                      \
    F(indexed, BOOL, 1, 0, 0, 0)                                                                   \
    F(facet, BOOL, 1, 0, 0, 0)                                                                     \
    F(description, STR, 0, 500, 0, 0)
#define ODP_FIELDS_rec_facet(F)                                                                    \
    F(field, STR, 1, 63, 1, 0)                                                                     \
    F(value, STR, 0, 10000, 0, 0)                                                                  \
    F(count, INT, 1, 0, 0, ODP_I64_MAX)
/*  outcome released | refused | failed; reasons: the failed conditions, "; "-separated. */
#define ODP_FIELDS_rec_release_attempt(F)                                                          \
    F(at, STR, 1, 32, 1, 0)                                                                        \
    F(actor, STR, 1, 100, 1, 0)                                                                    \
    F(version, INT, 0, 0, 1, ODP_I64_MAX)                                                          \
    F(outcome, STR, 1, 16, 1, 0)                                                                   \
    F(reasons, STR, 0, 4000, 0, 0)
/*  A version approved and not released yet (release.queue): policy auto (releasing) or
    manual (waiting for release.publish). */
#define ODP_FIELDS_rec_release_queued(F)                                                           \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(rows, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(policy, STR, 1, 16, 1, 0)                                                                    \
    F(approved_at, STR, 1, 32, 1, 0)
#define ODP_FIELDS_rep_release_policy(F)                                                           \
    F(scope, STR, 1, 32, 1, 0)                                                                     \
    F(automatic, BOOL, 1, 0, 0, 0)                                                                 \
    F(set_by, STR, 1, 100, 1, 0)                                                                   \
    F(set_at, STR, 1, 32, 1, 0)
/*  through: the publisher's last event number the export covers (the next --since). */
#define ODP_FIELDS_rep_catalogue(F)                                                                \
    F(format, STR, 1, 16, 1, 0)                                                                    \
    F(since, INT, 1, 0, 0, ODP_I64_MAX)                                                            \
    F(through, INT, 1, 0, 0, ODP_I64_MAX)                                                          \
    F(entries, INT, 1, 0, 0, ODP_I64_MAX)                                                          \
    F(document, STR, 1, 67108864, 0, 0)
#define ODP_FIELDS_rep_stage_index(F)                                                              \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(indexes, STRS, 1, 63, 0, 500)                                                                \
    F(created, INT, 1, 0, 0, 500)                                                                  \
    F(ready, BOOL, 0, 0, 0, 0)
/*  The query service's replies (PROTOCOL.md §13). */
#define ODP_FIELDS_rep_session(F)                                                                  \
    F(token, STR, 1, 64, 43, 0)                                                                    \
    F(user, INT, 1, 0, 1, ODP_I64_MAX)                                                             \
    F(login, STR, 1, 64, 3, 0)                                                                     \
    F(expires_at, STR, 1, 32, 1, 0)
#define ODP_FIELDS_rep_user(F)                                                                     \
    F(user, INT, 1, 0, 1, ODP_I64_MAX)                                                             \
    F(login, STR, 1, 64, 3, 0)                                                                     \
    F(name, STR, 0, 200, 1, 0)                                                                     \
    F(via, STR, 1, 16, 1, 0)                                                                       \
    F(keys, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(expires_at, STR, 0, 32, 1, 0)
#define ODP_FIELDS_rec_application(F)                                                              \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(user, INT, 1, 0, 1, ODP_I64_MAX)                                                             \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(department, STR, 1, 9, 9, 0)                                                                 \
    F(purpose, STR, 1, 2000, 1, 0)                                                                 \
    F(scope, STR, 1, 2000, 1, 0)                                                                   \
    F(period_from, STR, 1, 10, 10, 0)                                                              \
    F(period_to, STR, 1, 10, 10, 0)                                                                \
    F(state, STR, 1, 16, 1, 0)                                                                     \
    F(active, BOOL, 1, 0, 0, 0)                                                                    \
    F(submitted_at, STR, 1, 32, 1, 0)                                                              \
    F(decided_by, STR, 0, 100, 1, 0)                                                               \
    F(decided_at, STR, 0, 32, 1, 0)                                                                \
    F(expires_at, STR, 0, 32, 1, 0)                                                                \
    F(granted_scope, STR, 0, 2000, 1, 0)                                                           \
    F(reason, STR, 0, 1000, 1, 0)
#define ODP_FIELDS_rep_access(F)                                                                   \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(open_type, STR, 1, 64, 1, 0)                                                                 \
    F(may_read, BOOL, 1, 0, 0, 0)                                                                  \
    F(why, STR, 1, 300, 1, 0)                                                                      \
    F(expires_at, STR, 0, 32, 1, 0)
#define ODP_FIELDS_rec_feedback(F)                                                                 \
    F(id, INT, 1, 0, 1, ODP_I64_MAX)                                                               \
    F(kind, STR, 1, 16, 1, 0)                                                                      \
    F(user, INT, 1, 0, 1, ODP_I64_MAX)                                                             \
    F(resource, STR, 0, 32, 1, 0)                                                                  \
    F(department, STR, 0, 9, 9, 0)                                                                 \
    F(title, STR, 0, 200, 1, 0)                                                                    \
    F(text, STR, 0, 4000, 1, 0)                                                                    \
    F(rating, INT, 0, 0, 1, 5)                                                                     \
    F(url, STR, 0, 500, 1, 0)                                                                      \
    F(state, STR, 1, 16, 1, 0)                                                                     \
    F(received_at, STR, 1, 32, 1, 0)                                                               \
    F(answered_at, STR, 0, 32, 1, 0)                                                               \
    F(resolved_at, STR, 0, 32, 1, 0)                                                               \
    F(replies, INT, 1, 0, 0, ODP_I64_MAX)                                                          \
    F(thread, ANY, 0, 0, 0, 100000)
#define ODP_FIELDS_rec_feedback_reply(F)                                                           \
    F(author, STR, 1, 100, 1, 0)                                                                   \
    F(text, STR, 1, 4000, 1, 0)                                                                    \
    F(at, STR, 1, 32, 1, 0)
/*  review.report: valid when the version has no finding; report is Frictionless' report
    {valid, stats, warnings, errors, tasks: [{..., errors: [...]}]}; compare and score as
    stored with the review. */
#define ODP_FIELDS_rep_review_report(F)                                                            \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(valid, BOOL, 1, 0, 0, 0)                                                                     \
    F(report, ANY, 1, 0, 0, 16)                                                                    \
    F(compare, ANY, 0, 0, 0, 8)                                                                    \
    F(score, ANY, 0, 0, 0, 32)
/*  One version in review.findings: its state, counts, a rejection's reason and at most
    limit findings [{row, field?, value?, type, check, message}], first rows first. */
#define ODP_FIELDS_rec_version_findings(F)                                                         \
    F(upload, INT, 1, 0, 1, ODP_I64_MAX)                                                           \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(table, STR, 1, 63, 1, 0)                                                                     \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(state, STR, 1, 16, 1, 0)                                                                     \
    F(received, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(quarantined, INT, 1, 0, 0, ODP_I64_MAX)                                                      \
    F(findings, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(reason, STR, 0, 1000, 1, 0)                                                                  \
    F(decided_at, STR, 0, 32, 1, 0)                                                                \
    F(errors, ANY, 1, 0, 0, 10000)
/*  download.begin and download.list: a download of a release; span is how many row
    numbers one download.chunk covers, last_row the release's highest, credit how many chunk
    requests may be in flight. sha256 is the pushed file's; served_sha256 that of the bytes
    this service serves for the release in this format, once a download went through. */
#define ODP_FIELDS_rec_download(F)                                                                 \
    F(download, INT, 1, 0, 1, ODP_I64_MAX)                                                         \
    F(resource, STR, 1, 32, 1, 0)                                                                  \
    F(release, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(version, INT, 1, 0, 1, ODP_I64_MAX)                                                          \
    F(format, STR, 1, 16, 1, 0)                                                                    \
    F(rows, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(span, INT, 1, 0, 1, ODP_I64_MAX)                                                             \
    F(last_row, INT, 1, 0, 0, ODP_I64_MAX)                                                         \
    F(credit, INT, 1, 0, 1, 64)                                                                    \
    F(sha256, STR, 0, 64, 64, 0)                                                                   \
    F(served_sha256, STR, 0, 64, 64, 0)                                                            \
    F(bytes, INT, 1, 0, 0, ODP_I64_MAX)                                                            \
    F(started_at, STR, 1, 32, 1, 0)                                                                \
    F(completed_at, STR, 0, 32, 1, 0)
/*  download.chunk: the bytes of rows numbered [from_row, next_row); done after the last. */
#define ODP_FIELDS_rep_download_chunk(F)                                                           \
    F(download, INT, 1, 0, 1, ODP_I64_MAX)                                                         \
    F(from_row, INT, 1, 0, 1, ODP_I64_MAX)                                                         \
    F(next_row, INT, 1, 0, 1, ODP_I64_MAX)                                                         \
    F(rows, INT, 1, 0, 0, ODP_I64_MAX)                                                             \
    F(data, BIN, 1, 67108864, 0, 0)                                                                \
    F(done, BOOL, 1, 0, 0, 0)                                                                      \
    F(served_sha256, STR, 0, 64, 64, 0)                                                            \
    F(bytes, INT, 1, 0, 0, ODP_I64_MAX)

#define ODP_REPLIES(M)                                                                             \
    M(rep_error, "")                                                                               \
    M(rep_health, "")                                                                              \
    M(rep_whoami, "")                                                                              \
    M(rep_replay, "")                                                                              \
    M(rec_department, "")                                                                          \
    M(rec_authority, "")                                                                           \
    M(rec_staff, "")                                                                               \
    M(rep_list, "")                                                                                \
    M(rec_plan, "")                                                                                \
    M(rec_catalog, "")                                                                             \
    M(rec_dict_field, "")                                                                          \
    M(rep_dictionary, "")                                                                          \
    M(rep_rules, "")                                                                               \
    M(rep_push_begin, "")                                                                          \
    M(rep_push_ack, "")                                                                            \
    M(rep_push_summary, "")                                                                        \
    M(rep_push_status, "")                                                                         \
    M(rec_version, "")                                                                             \
    M(rec_reject, "")                                                                              \
    M(rep_review, "")                                                                              \
    M(rec_quarantine, "")                                                                          \
    M(rec_review_queued, "")                                                                       \
    M(rec_standard_check, "")                                                                      \
    M(rep_standard, "")                                                                            \
    M(rec_release, "")                                                                             \
    M(rep_release, "")                                                                             \
    M(rec_release_field, "")                                                                       \
    M(rec_facet, "")                                                                               \
    M(rec_release_attempt, "")                                                                     \
    M(rec_release_queued, "")                                                                      \
    M(rep_release_policy, "")                                                                      \
    M(rep_catalogue, "")                                                                           \
    M(rep_stage_index, "")                                                                         \
    M(rep_session, "")                                                                             \
    M(rep_user, "")                                                                                \
    M(rec_application, "")                                                                         \
    M(rep_access, "")                                                                              \
    M(rec_feedback, "")                                                                            \
    M(rec_feedback_reply, "")                                                                      \
    M(rep_review_report, "")                                                                       \
    M(rec_version_findings, "")                                                                    \
    M(rec_download, "")                                                                            \
    M(rep_download_chunk, "")

#endif
