/*  odpctl: the operations department's command line.

    Commands are the protocol's own: `odpctl department add --code C --name N` sends
    department.add with the fields named by its options, checked against the declaration
    in proto/odp_proto.h before anything is sent, so the tool can never drift from the
    protocol. A few conveniences sit on top: keygen, --keygen on department/staff add
    (make a key pair and register its public half in one step), and health of every
    service at once.

    Exit status: 0 done, 1 the service refused (error code printed), 2 usage (certificates
    and endpoints included), 3 no answer (what the connection showed is printed). */
#include "common/auth.h"
#include "common/cli.h"
#include "common/client.h"
#include "common/config.h"
#include "common/parse.h"
#include "common/json.h"
#include "tools/backup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool s_json = false;
static int s_timeout_ms = 5000;
static const char *s_endpoint = NULL;
static const char *s_cert = NULL;

/*  Which service answers a command, by the command's first word. */
static const char *s_service_for(const char *command)
{
    static const struct {
        const char *prefix;
        const char *service;
    } map[] = {
        {"authority.", "registrar"},  {"department.", "registrar"},   {"staff.", "registrar"},
        {"credential.", "registrar"}, {"registration.", "registrar"}, {"rules.", "registrar"},
        {"plan.", "registrar"},       {"catalog.", "registrar"},      {"dictionary.", "registrar"},
        {"review.", "reviewer"},      {"quarantine.", "reviewer"},    {"standard.", "reviewer"},
        {"release.", "publisher"},    {"catalogue.", "publisher"},    {"monitor.", "metrics"},
        {"stats.", "metrics"},        {"assess.", "metrics"},         {"index.", "metrics"},
        {"weights.", "metrics"},      {"quality.", "metrics"},        {"webhook.", "metrics"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(command, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].service;
    return NULL;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: odpctl [--json] [--timeout-ms N] [--endpoint E] [--cert FILE] COMMAND ...\n"
               "\n"
               "  health [--service S]            every service (or one); exit 0 when all ok\n"
               "  status                          health of every service (alias)\n"
               "  backup DIR|FILE.tar             database, certificates, settings "
               "(docs/operations.md)\n"
               "  restore DIR|FILE.tar            into a freshly bootstrapped database\n"
               "  whoami [--service S]            the actor your key acts as\n"
               "  keygen --kind K --id ID [--name N] --out BASE\n"
               "                                  write a key pair: BASE (public) and BASE_secret\n"
               "  authority register --authority A --operations O --document D "
               "--granted-on YYYY-MM-DD\n"
               "  authority list\n"
               "  department add --code C --name N [--contact X] [--keygen BASE | "
               "--public-key K]\n"
               "  department get --code C | department list\n"
               "  department update --code C [--name N] [--contact X] [--active true|false]\n"
               "  staff add --login L --name N [--keygen BASE | --public-key K] | staff list\n"
               "  credential add --kind K --id ID --public-key K [--name N]\n"
               "  credential revoke --public-key K\n"
               "  plan list [--department D] [--overdue true|false]\n"
               "  plan update --id N [--due-on YYYY-MM-DD] [--maintainer M] [--open-type T] ...\n"
               "  plan cancel --id N --reason X\n"
               "  catalog get --resource R | catalog list [--department D] [--status S]\n"
               "            [--overdue true|false]\n"
               "  catalog update --resource R [--summary X] [--keywords a,b] [--open-type T]\n"
               "            [--access-conditions X] [--update-cycle C] [--contact X]\n"
               "            [--location X] [--endpoint URL]\n"
               "  dictionary get --resource R [--table T] [--revision N]\n"
               "  registration decide --resource R --approve true|false [--reason X]\n"
               "  rules get | rules set [--formats a,b] [--encodings a,b] [--max-size N]\n"
               "            [--max-row-length N] [--chunk-size N] [--credit N]\n"
               "  review queue | review show --upload N\n"
               "  review decide --upload N --approve true|false [--reason X]\n"
               "  review report UPLOAD [--limit N] [--format frictionless|odp]\n"
               "            frictionless: the Frictionless-shaped report alone, as JSON\n"
               "  review findings [--upload N] [--limit N]\n"
               "  quarantine list [--department D] [--resource R] [--upload N] [--check C]\n"
               "            [--state S]\n"
               "  quarantine handle --upload N --row N --outcome corrected|dropped|released\n"
               "            --comment X [--new-value V]\n"
               "  standard get | standard set (checks: a list; send it with the client library)\n"
               "  release queue | release list [--resource R] [--department D] [--state S]\n"
               "  release publish --resource R [--table T] [--version N]\n"
               "  release withdraw --resource R [--table T] [--version N] --reason X\n"
               "  release restore --resource R [--table T] [--version N]\n"
               "  release show --resource R [--table T] [--version N]\n"
               "  release policy --scope DEPARTMENT|RESOURCE --automatic true|false\n"
               "  catalogue export --format jsonld|turtle|schemaorg [--since N] [--resource R]\n"
               "                                  the document on stdout (--json: the reply)\n"
               "  monitor [--stuck-after-s N]      services, lag, stuck work, alerts\n"
               "  stats [--period P] [--department D]   P: YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD\n"
               "  assess [--period P] [--department D] [--resource R]\n"
               "  index [--period P] [--department D] | index --explain --department D\n"
               "  index history --department D | quality report [--department D]\n"
               "  weights get [--version N] | weights set --volume W --quality W --apps W\n"
               "            --access W --efficiency W --effect W [--comment X]\n"
               "  webhook add --url URL [--sources a,b] | webhook list | webhook remove --id N\n"
               "\n"
               "Options may come before or after the command. Endpoints and keys come from\n"
               "the environment (source var/odp.env): ODP_<SERVICE>_ENDPOINT, ODP_SERVER_CERT,\n"
               "ODP_CLIENT_CERT.\n"
               "Exit status: 0 done, 1 refused (code printed), 2 usage, 3 no answer.\n");
}

/*  only: print that field of the reply alone, as JSON (review report --format
    frictionless); NULL: the whole reply as --json says. */
static int s_call(const char *service, const odp_msgdef_t *def, const void *msg, const char *only)
{
    char err[256] = "";
    odp_client_t *c = odp_client_new(service, s_endpoint, s_cert, err, sizeof err);
    if (!c) {
        fprintf(stderr, "odpctl: %s\n", err[0] ? err : "cannot create client");
        return 2;
    }
    odp_reply_t rep;
    int rc = odp_client_call(c, def, msg, s_timeout_ms, &rep);
    if (rc < 0) {
        fprintf(stderr, "odpctl: %s\n", odp_client_why(c));
        rc = 3;
    } else if (rep.status != 200) {
        rc = odp_cli_refused("odpctl", service, &rep, s_json);
    } else if (!s_json && def == &odp_def_catalogue_export) {
        /*  The catalogue itself, ready for a file or a harvester; its last event number
            (the next --since) on stderr. */
        odp_rep_catalogue_t cat;
        odp_error_t e;
        rc = odp_decode_fields(&odp_def_rep_catalogue, &rep.obj, &cat, &e) == 0 ? 0 : 1;
        if (rc == 0) {
            fwrite(cat.document.str, 1, cat.document.len, stdout);
            fprintf(stderr, "odpctl: %lld entries through event %lld\n", (long long)cat.entries.i,
                    (long long)cat.through.i);
        }
    } else if (only) {
        const msgpack_object *v = odp_map_get(&rep.obj, only);
        rc = v ? 0 : 1;
        if (v)
            odp_json_print(odp_json_from_msgpack(v));
        else
            fprintf(stderr, "odpctl: the reply has no %s\n", only);
    } else {
        odp_cli_print(&rep.obj, s_json);
        rc = 0;
    }
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return rc;
}

static int s_health(int argc, char **argv)
{
    const char *only = NULL;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--service") == 0 && i + 1 < argc)
            only = argv[++i];
    if (only && odp_service_index(only) < 0) {
        fprintf(stderr, "odpctl: unknown service %s\n", only);
        return 2;
    }
    int worst = 0;
    for (int i = 0; i < ODP_NSERVICES; i++) {
        const char *svc = odp_service_names[i];
        if (only && strcmp(only, svc) != 0)
            continue;
        char err[256] = "";
        odp_client_t *c = odp_client_new(svc, only ? s_endpoint : NULL, s_cert, err, sizeof err);
        if (!c) {
            fprintf(stderr, "odpctl: %s\n", err);
            return 2;
        }
        odp_health_t req = {0};
        odp_reply_t rep;
        int rc = odp_client_call(c, &odp_def_health, &req, s_timeout_ms, &rep);
        if (rc < 0) {
            if (s_json)
                odp_json_print(json_pack("{s:s,s:s,s:s}", "service", svc, "status", "unreachable",
                                         "why", odp_client_why(c)));
            else
                printf("%-10s unreachable: %s\n", svc, odp_client_why(c));
            worst = 3;
        } else if (rep.status != 200) {
            worst = worst ? worst : odp_cli_refused("odpctl", svc, &rep, s_json);
        } else if (s_json) {
            odp_json_print(odp_json_from_msgpack(&rep.obj));
        } else {
            odp_rep_health_t h;
            odp_error_t e;
            if (odp_decode_fields(&odp_def_rep_health, &rep.obj, &h, &e) == 0) {
                char st[17];
                printf("%-10s %-8s db=%s seq=%lld requests=%lld errors=%lld uptime=%llds%s\n", svc,
                       odp_v_cstr(&h.status, st, sizeof st), h.db.b ? "up" : "DOWN",
                       (long long)h.seq.i, (long long)h.requests.i, (long long)h.errors.i,
                       (long long)h.uptime_s.i, h.secure.b ? "" : " SECURITY=local");
                if (!h.db.b && !worst)
                    worst = 1;
            }
        }
        odp_reply_free(&rep);
        odp_client_destroy(&c);
    }
    return worst;
}

/*  Create the directories above a key pair's path that do not exist yet, private (0700):
    they hold secret keys. 0, or -1 after saying why. */
static int s_key_dir(const char *base)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", base);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            fprintf(stderr, "odpctl: cannot create directory %s for the key pair: %s\n", dir,
                    strerror(errno));
            return -1;
        }
        *p = c;
        if (!c)
            return 0;
    }
}

static int s_keygen(const char *kind, const char *id, const char *name, const char *out)
{
    char key[41];
    if (s_key_dir(out) < 0)
        return 1;
    errno = 0;
    if (odp_auth_keygen(kind, id, name, out, key) < 0) {
        fprintf(stderr, "odpctl: cannot write %s and %s_secret: %s\n", out, out,
                errno ? strerror(errno) : "write failed");
        return 1;
    }
    if (s_json)
        odp_json_print(json_pack("{s:s,s:s,s:s,s:s,s:s+}", "kind", kind, "id", id, "public_key",
                                 key, "public", out, "secret", out, "_secret"));
    else
        printf("public key %s\nwrote %s (public, give to operations) and %s_secret (keep "
               "private)\n",
               key, out, out);
    return 0;
}

/*  The metrics commands that are one word (monitor, stats, assess, index [--explain]):
    their command in command, how many words they took in *consumed. false for the rest,
    "index history" included. --explain is a flag here, not a field, so it is taken out. */
static bool s_metrics_word(int *argc, char **argv, char *command, size_t size, int *consumed)
{
    static const char *const words[][2] = {{"monitor", "monitor.status"},
                                           {"stats", "stats.get"},
                                           {"assess", "assess.get"},
                                           {"index", "index.get"}};
    if (*argc >= 2 && argv[1][0] != '-')
        return false;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(argv[0], words[i][0]) == 0) {
            snprintf(command, size, "%s", words[i][1]);
            *consumed = 1;
            for (int a = 1; a < *argc; a++)
                if (strcmp(argv[a], "--explain") == 0 && strcmp(words[i][0], "index") == 0) {
                    snprintf(command, size, "index.explain");
                    /*  Drop the flag: the rest are the request's fields. */
                    for (int b = a; b + 1 < *argc; b++)
                        argv[b] = argv[b + 1];
                    (*argc)--;
                    break;
                }
            return true;
        }
    return false;
}

typedef union {
#define S_MEMBER(ident, cmd) odp_##ident##_t ident;
    ODP_REQUESTS(S_MEMBER)
#undef S_MEMBER
} s_any_request_t;

int main(int argc, char **argv)
{
    odp_cli_global_t g = {s_json, s_timeout_ms, s_cert, s_endpoint};
    int first = odp_cli_global("odpctl", &argc, argv, &g, true, s_usage);
    if (first < 0)
        return first == -1 ? 0 : 2;
    s_json = g.json;
    s_timeout_ms = g.timeout_ms;
    s_cert = g.cert;
    s_endpoint = g.endpoint;
    argc -= first;
    argv += first;
    zsys_init();
    zsys_set_logstream(stderr);
    if (strcmp(argv[0], "health") == 0 || strcmp(argv[0], "status") == 0)
        return s_health(argc - 1, argv + 1);
    if (strcmp(argv[0], "backup") == 0 || strcmp(argv[0], "restore") == 0) {
        if (argc != 2) {
            fprintf(stderr, "odpctl: %s needs one path\n", argv[0]);
            return 2;
        }
        return argv[0][0] == 'b' ? odpctl_backup(argv[1]) : odpctl_restore(argv[1]);
    }

    if (strcmp(argv[0], "keygen") == 0) {
        const char *out = NULL;
        const char *kind = NULL, *id = NULL, *name = NULL;
        for (int i = 1; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--kind") == 0)
                kind = argv[i + 1];
            else if (strcmp(argv[i], "--id") == 0)
                id = argv[i + 1];
            else if (strcmp(argv[i], "--name") == 0)
                name = argv[i + 1];
            else if (strcmp(argv[i], "--out") == 0)
                out = argv[i + 1];
        }
        if (!kind || !id || !out) {
            fprintf(stderr, "odpctl: keygen needs --kind, --id and --out\n");
            return 2;
        }
        return s_keygen(kind, id, name, out);
    }

    /*  whoami [--service S] goes to any service; everything else is "noun verb". */
    char command[64];
    int consumed;
    const char *service = NULL;
    if (strcmp(argv[0], "whoami") == 0) {
        snprintf(command, sizeof command, "whoami");
        consumed = 1;
        service = "registrar";
        if (argc >= 3 && strcmp(argv[1], "--service") == 0) {
            service = argv[2];
            consumed = 3;
            if (odp_service_index(service) < 0) {
                fprintf(stderr, "odpctl: unknown service %s\n", service);
                return 2;
            }
        }
    } else if (s_metrics_word(&argc, argv, command, sizeof command, &consumed)) {
        service = "metrics";
    } else {
        if (argc < 2) {
            s_usage(stderr);
            return 2;
        }
        snprintf(command, sizeof command, "%s.%s", argv[0], argv[1]);
        consumed = 2;
        service = s_service_for(command);
    }
    const odp_msgdef_t *def = odp_request_find(command, strlen(command));
    if (!def || !service) {
        fprintf(stderr, "odpctl: unknown command '%s'\n", command);
        return 2;
    }
    s_any_request_t msg;
    memset(&msg, 0, sizeof msg);
    const char *keygen = NULL, *format = NULL, *upload = NULL;
    bool can_keygen = strcmp(command, "department.add") == 0 || strcmp(command, "staff.add") == 0;
    bool report = strcmp(command, "review.report") == 0;
    const odp_cli_opt_t keygen_opt[] = {{"keygen", &keygen}, {NULL, NULL}};
    const odp_cli_opt_t report_opt[] = {{"format", &format}, {NULL, NULL}};
    /*  review report UPLOAD: the upload may come without --upload. */
    if (report && consumed < argc && argv[consumed][0] != '-')
        upload = argv[consumed++];
    /*  Text lists (--formats csv,jsonl) live in the zone until the request is sent. */
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    if (odp_cli_fill("odpctl", def, &msg, argc - consumed, argv + consumed,
                     can_keygen ? keygen_opt
                     : report   ? report_opt
                                : NULL,
                     &zone) < 0) {
        msgpack_zone_destroy(&zone);
        return 2;
    }
    if (upload) {
        int64_t n;
        if (!odp_parse_int(upload, strlen(upload), 1, INT64_MAX, &n)) {
            fprintf(stderr, "odpctl: review report: the upload is a number, not '%s'\n", upload);
            msgpack_zone_destroy(&zone);
            return 2;
        }
        msg.review_report.upload = odp_v_int(n);
    }
    if (format && strcmp(format, "frictionless") != 0 && strcmp(format, "odp") != 0) {
        fprintf(stderr, "odpctl: review report --format is frictionless or odp, not '%s'\n",
                format);
        msgpack_zone_destroy(&zone);
        return 2;
    }
    if (odp_cli_required("odpctl", def, &msg) < 0) {
        msgpack_zone_destroy(&zone);
        return 2;
    }
    char key[41];
    if (keygen) {
        /*  The key pair is made here, on the operator's machine; only the public half
            travels. The secret file goes to the department or staff member. */
        const odp_val_t *idv = strcmp(command, "department.add") == 0 ? &msg.department_add.code
                                                                      : &msg.staff_add.login;
        const odp_val_t *namev =
            strcmp(command, "department.add") == 0 ? &msg.department_add.name : &msg.staff_add.name;
        char id[65], name[201];
        const char *kind = strcmp(command, "department.add") == 0 ? "provider" : "operations";
        if (s_key_dir(keygen) < 0) {
            msgpack_zone_destroy(&zone);
            return 1;
        }
        errno = 0;
        if (odp_auth_keygen(kind, odp_v_cstr(idv, id, sizeof id),
                            odp_v_cstr(namev, name, sizeof name), keygen, key) < 0) {
            fprintf(stderr, "odpctl: cannot write key pair %s: %s\n", keygen,
                    errno ? strerror(errno) : "write failed");
            msgpack_zone_destroy(&zone);
            return 1;
        }
        if (strcmp(command, "department.add") == 0)
            msg.department_add.public_key = odp_v_str(key);
        else
            msg.staff_add.public_key = odp_v_str(key);
        if (!s_json)
            fprintf(stderr,
                    "odpctl: key pair written: %s (public) and %s_secret (hand over "
                    "privately)\n",
                    keygen, keygen);
    }
    int rc =
        s_call(service, def, &msg, format && strcmp(format, "frictionless") == 0 ? "report" : NULL);
    msgpack_zone_destroy(&zone);
    return rc;
}
