/*  cli: what the command-line tools (odpctl, odp-push) share.

    A command's options are the fields of its request as declared in proto/odp_proto.h:
    `--due-on 2026-12-31` fills due_on. Every option is checked against the declaration
    before anything is sent, so a tool cannot drift from the protocol, and a misspelt
    option is a usage error rather than a field the service would refuse. Replies print as
    JSON: one compact line with --json (for programs), indented otherwise (for people). */
#ifndef ODP_CLI_H
#define ODP_CLI_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>

#include "client.h"
#include "codec.h"

/*  An option a tool takes besides the declared fields (--keygen, --dict, --retries...):
    its value is stored in *value instead of the request. name as typed, without "--". */
typedef struct {
    const char *name;
    const char **value;
} odp_cli_opt_t;

/*  Fill the request msg (an odp_<ident>_t declared by def) from argv's `--name value`
    pairs: dashes in names stand for underscores; text goes in as given, whole numbers and
    true/false are parsed, text lists are split at commas (ASCII or full-width), their items
    kept in zone. Options named in extra (ended by a NULL name; extra may be NULL) go there.
    Values point into argv and zone. 0, or -1 after saying why on stderr, prefixed prog. */
int odp_cli_fill(const char *prog, const odp_msgdef_t *def, void *msg, int argc, char **argv,
                 const odp_cli_opt_t *extra, msgpack_zone *zone);

/*  0 when every required field of msg is present, else -1 after naming the first missing
    one on stderr. Separate from odp_cli_fill so a tool can supply defaults in between. */
int odp_cli_required(const char *prog, const odp_msgdef_t *def, const void *msg);

/*  Split text at commas into a msgpack array of str items (blanks around items and empty
    items dropped), allocated in zone; the value for a STRS field. Absent when text is
    NULL; -1 when the zone is exhausted. */
int odp_cli_strs(const char *text, msgpack_zone *zone, odp_val_t *out);

/*  Print a reply body to stdout: one compact JSON line when json, else indented JSON. */
void odp_cli_print(const msgpack_object *obj, bool json);

/*  The refusal in rep as a JSON object {service, status, code, message, field?}. */
json_t *odp_cli_error_json(const char *service, const odp_reply_t *rep);

/*  Tell the user the service refused: the JSON object on stdout when json, else one line
    on stderr ("prog: service refused (403 FORBIDDEN): message [field f]"). Returns 1, the
    tools' exit status for a refusal. */
int odp_cli_refused(const char *prog, const char *service, const odp_reply_t *rep, bool json);

/*  The options every tool takes, before or after its command word as with git and docker
    (`odp-push rejects --resource R --json`): --json, --timeout-ms N, --cert FILE, --help,
    and --endpoint E where takes_endpoint. They are taken out of argv (*argc shrinks);
    fields not given keep the caller's defaults. A token right after a command option is
    that option's value, and everything after "--" is the command's, whatever it looks
    like. Returns the index of the command word in argv, or -1 after printing help
    (exit 0), or -2 after a usage error (exit 2). */
typedef struct {
    bool json;
    int timeout_ms;
    const char *cert;
    const char *endpoint;
} odp_cli_global_t;

int odp_cli_global(const char *prog, int *argc, char **argv, odp_cli_global_t *g,
                   bool takes_endpoint, void (*usage)(FILE *f));

#endif
