/*  cloudevent: an odp event as a CloudEvents 1.0 event in JSON (the structured content
    mode of the HTTP binding), the shape monitoring tools already read.

      specversion "1.0"
      id          "<source>-<seq>"           unique per event: a source never reuses a number
      source      "/odp/<source>"            the service that published it
      type        "odp.<topic>"              e.g. odp.release.published
      time        the event's `at`
      subject     what it is about: resource, else department, else code/id/upload, if any
      sequence    "<seq>" (the Sequence extension: text, gap-free and ordered per source)
      datacontenttype "application/json"
      data        the event's body as JSON, envelope included */
#ifndef ODP_CLOUDEVENT_H
#define ODP_CLOUDEVENT_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/*  A new JSON object, or NULL when out of memory. */
json_t *odp_cloudevent(const char *source, int64_t seq, const char *topic, size_t topic_len,
                       const msgpack_object *body);

#endif
