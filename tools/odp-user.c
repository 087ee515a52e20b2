/*  odp-user: the user's command line for the query service (R4.3c, R4.4, R9e). Not
    odp-query: that is the service's binary (every service is odp-<name>).

    A user is a CURVE key nobody registered, talking to the query service's public endpoint
    (ODP_QUERY_PUBLIC_ENDPOINT), anonymous until signed in. `signin` stores the session
    token in a private file ($ODP_QUERY_TOKEN_FILE, else $HOME/.config/odp/query-token);
    every later command sends it in its `token` field. Passwords are read from standard
    input (without echo on a terminal), never from the command line, where other users of
    the machine could see them. Departments and operations use the same commands with their
    registered keys (--cert, or ODP_CLIENT_CERT) to list and decide applications and answer
    feedback.

    Exit status: 0 done, 1 the service refused (error code printed), 2 usage, 3 no answer. */
#include "common/auth.h"
#include "common/cli.h"
#include "common/client.h"
#include "common/config.h"
#include "common/json.h"
#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PROG "odp-user"

static odp_cli_global_t s_g = {false, 10000, NULL, NULL};

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: odp-user [--json] [--timeout-ms N] [--endpoint E] [--cert FILE] COMMAND ...\n"
            "\n"
            "  keygen [--out BASE]              a key pair for this machine (default\n"
            "                                   $HOME/.config/odp/user); set ODP_CLIENT_CERT to "
            "BASE_secret\n"
            "  signup --login L [--name N]      password from standard input\n"
            "  signin --login L [--ttl-s N]     password from standard input; keeps the token\n"
            "  signout [--all true]             end this session (or all, unbinding keys)\n"
            "  me                               who the token (or this key) acts as\n"
            "  bind-key                         this key acts as you from now on\n"
            "  apply --resource R --purpose P --scope S --period-from D --period-to D\n"
            "  applications [--state S] [--resource R] [--department D]\n"
            "  decide --id N --grant true|false [--expires-at T] [--scope S] [--reason X]\n"
            "  access --resource R              may I read it, and why\n"
            "  feedback comment|report --resource R --text X\n"
            "  feedback request --text X [--title T] [--resource R | --department D]\n"
            "  feedback rate --resource R --rating 1-5 [--text X]\n"
            "  feedback app --resource R --title T --url U [--text X]\n"
            "  feedback list [--kind K] [--state S] [--department D]\n"
            "  feedback get --id N | feedback reply --id N --text X [--resolve true]\n"
            "  search [--q WORDS] [--fq 'field:value ...'] [--sort S] [--rows N] [--start N]\n"
            "         [--facet-field domain,open_type,...]   the catalogue (CKAN package_search)\n"
            "  show --resource R                entry, dictionary, versions, may I read it\n"
            "  query --resource R [--version N] [--filters JSON] [--q X] [--fields a,b]\n"
            "        [--sort 'f desc'] [--limit N] [--offset N] [--next-page C]\n"
            "        [--records-format objects|lists|csv]   rows (CKAN datastore_search)\n"
            "  download --resource R [--version N] [--format csv|jsonl] [--out FILE]\n"
            "                                   the whole version (a file entry: its bytes),\n"
            "                                   checked against its hash\n"
            "  downloads [--resource R]         what you downloaded before\n"
            "\n"
            "Options may come before or after the command. The endpoint is\n"
            "ODP_QUERY_PUBLIC_ENDPOINT (else ODP_QUERY_ENDPOINT); keys: ODP_SERVER_CERT,\n"
            "ODP_CLIENT_CERT. The token file: ODP_QUERY_TOKEN_FILE, else\n"
            "$HOME/.config/odp/query-token.\n"
            "Exit status: 0 done, 1 refused (code printed), 2 usage, 3 no answer.\n");
}

/*  ~/.config/odp/<name>, its directories made private; -1 when there is no HOME. */
static int s_config_path(const char *name, char *buf, size_t size)
{
    const char *home = getenv("HOME");
    if (!home || !*home)
        return -1;
    snprintf(buf, size, "%s/.config", home);
    mkdir(buf, 0700);
    snprintf(buf, size, "%s/.config/odp", home);
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return -1;
    snprintf(buf, size, "%s/.config/odp/%s", home, name);
    return 0;
}

static int s_token_path(char *buf, size_t size)
{
    const char *p = getenv("ODP_QUERY_TOKEN_FILE");
    if (p && *p) {
        snprintf(buf, size, "%s", p);
        return 0;
    }
    return s_config_path("query-token", buf, size);
}

/*  The stored token, or "" when there is none. */
static void s_token_load(char token[65])
{
    token[0] = '\0';
    char path[1024];
    if (s_token_path(path, sizeof path) < 0)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(token, 65, f))
        token[strcspn(token, "\r\n")] = '\0';
    fclose(f);
}

static int s_token_save(const char *token, const char *path)
{
    /*  Created private: the token acts as the user until it expires. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, PROG ": cannot write the token file %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%s\n", token);
    return fclose(f) == 0 ? 0 : -1;
}

/*  One line from standard input, without echo when it is a terminal. */
static int s_read_password(char *buf, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "password: ");
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool ok = fgets(buf, (int)size, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!ok) {
        fprintf(stderr, PROG ": no password on standard input\n");
        return -1;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static odp_client_t *s_client(void)
{
    char err[256] = "";
    const char *ep = s_g.endpoint ? s_g.endpoint : odp_config("query", "PUBLIC_ENDPOINT", NULL);
    odp_client_t *c = odp_client_new("query", ep, s_g.cert, err, sizeof err);
    if (!c)
        fprintf(stderr, PROG ": %s\n", err[0] ? err : "cannot create client");
    return c;
}

/*  Send msg; on success the reply stays in *rep (odp_reply_free it) and 0 is returned,
    else the tool's exit status after saying why. */
static int s_call(const odp_msgdef_t *def, const void *msg, odp_reply_t *rep)
{
    odp_client_t *c = s_client();
    if (!c)
        return 2;
    int rc = odp_client_call(c, def, msg, s_g.timeout_ms, rep);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", odp_client_why(c));
        rc = 3;
    } else if (rep->status != 200) {
        rc = odp_cli_refused(PROG, "query", rep, s_g.json);
    }
    if (rc)
        odp_reply_free(rep);
    odp_client_destroy(&c);
    return rc;
}

static int s_print_call(const odp_msgdef_t *def, const void *msg)
{
    odp_reply_t rep;
    int rc = s_call(def, msg, &rep);
    if (rc == 0) {
        odp_cli_print(&rep.obj, s_g.json);
        odp_reply_free(&rep);
    }
    return rc;
}

static void s_str(const odp_reply_t *rep, const char *key, char *buf, size_t size)
{
    const msgpack_object *v = odp_map_get(&rep->obj, key);
    buf[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(buf, size, "%.*s", (int)v->via.str.size, v->via.str.ptr);
}

static int s_signin(odp_user_signin_t *m)
{
    char pw[512], path[1024];
    if (s_token_path(path, sizeof path) < 0) {
        fprintf(stderr, PROG ": set HOME or ODP_QUERY_TOKEN_FILE (where the token is kept)\n");
        return 2;
    }
    if (s_read_password(pw, sizeof pw) < 0)
        return 2;
    m->password = odp_v_str(pw);
    odp_reply_t rep;
    int rc = s_call(&odp_def_user_signin, m, &rep);
    memset(pw, 0, sizeof pw);
    if (rc)
        return rc;
    char token[65], login[65], until[40];
    s_str(&rep, "token", token, sizeof token);
    s_str(&rep, "login", login, sizeof login);
    s_str(&rep, "expires_at", until, sizeof until);
    odp_reply_free(&rep);
    if (s_token_save(token, path) < 0)
        return 1;
    memset(token, 0, sizeof token);
    if (s_g.json)
        odp_json_print(
            json_pack("{s:s,s:s,s:s}", "login", login, "expires_at", until, "token_file", path));
    else
        printf("signed in as %s until %s; token kept in %s\n", login, until, path);
    return 0;
}

static int s_keygen(const char *out)
{
    char base[1024], key[41];
    if (out)
        snprintf(base, sizeof base, "%s", out);
    else if (s_config_path("user", base, sizeof base) < 0) {
        fprintf(stderr, PROG ": set HOME or give --out BASE\n");
        return 2;
    }
    if (odp_auth_keygen("user", "self", NULL, base, key) < 0) {
        fprintf(stderr, PROG ": cannot write %s and %s_secret\n", base, base);
        return 1;
    }
    if (s_g.json)
        odp_json_print(json_pack("{s:s,s:s,s:s+}", "public_key", key, "public", base, "secret",
                                 base, "_secret"));
    else
        printf("public key %s\nwrote %s and %s_secret; export ODP_CLIENT_CERT=%s_secret\n", key,
               base, base, base);
    return 0;
}

typedef union {
#define S_MEMBER(ident, cmd) odp_##ident##_t ident;
    ODP_REQUESTS(S_MEMBER)
#undef S_MEMBER
} s_any_request_t;

/*  The request each command word sends; feedback's second word picks the kind. */
static const odp_msgdef_t *s_command(int argc, char **argv, int *consumed, const char **kind)
{
    static const struct {
        const char *word;
        const odp_msgdef_t *def;
    } plain[] = {{"signup", &odp_def_user_signup},
                 {"signin", &odp_def_user_signin},
                 {"signout", &odp_def_user_signout},
                 {"me", &odp_def_user_me},
                 {"bind-key", &odp_def_user_bind_key},
                 {"apply", &odp_def_application_submit},
                 {"applications", &odp_def_application_list},
                 {"decide", &odp_def_application_decide},
                 {"access", &odp_def_access_check},
                 {"search", &odp_def_catalogue_search},
                 {"show", &odp_def_entry_show},
                 {"query", &odp_def_datastore_search},
                 {"download", &odp_def_download_begin},
                 {"downloads", &odp_def_download_list}};
    *consumed = 1;
    *kind = NULL;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strcmp(argv[0], plain[i].word) == 0)
            return plain[i].def;
    if (strcmp(argv[0], "feedback") != 0 || argc < 2)
        return NULL;
    *consumed = 2;
    if (strcmp(argv[1], "list") == 0)
        return &odp_def_feedback_list;
    if (strcmp(argv[1], "get") == 0)
        return &odp_def_feedback_get;
    if (strcmp(argv[1], "reply") == 0)
        return &odp_def_feedback_reply;
    static const char *const kinds[][2] = {{"comment", "comment"},
                                           {"report", "report"},
                                           {"request", "request"},
                                           {"rate", "rating"},
                                           {"app", "app"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(argv[1], kinds[i][0]) == 0) {
            *kind = kinds[i][1];
            return &odp_def_feedback_submit;
        }
    return NULL;
}

/*  A whole version into out, chunk after chunk under the download's credit (as many
    requests in flight, one more sent for each reply); the SHA-256 of what was written must
    be the one the service computed as it served the bytes. */
static int s_download(odp_download_begin_t *m, const char *out)
{
    odp_reply_t rep;
    int rc = s_call(&odp_def_download_begin, m, &rep);
    if (rc)
        return rc;
    const msgpack_object *v;
    int64_t id = (v = odp_map_get(&rep.obj, "download")) ? (int64_t)v->via.u64 : 0;
    int64_t span = (v = odp_map_get(&rep.obj, "span")) ? (int64_t)v->via.u64 : 1;
    int64_t last = (v = odp_map_get(&rep.obj, "last_row")) ? (int64_t)v->via.u64 : 0;
    int64_t version = (v = odp_map_get(&rep.obj, "version")) ? (int64_t)v->via.u64 : 0;
    int64_t credit = (v = odp_map_get(&rep.obj, "credit")) ? (int64_t)v->via.u64 : 1;
    char format[16], pushed[65], name[128];
    s_str(&rep, "format", format, sizeof format);
    s_str(&rep, "sha256", pushed, sizeof pushed);
    odp_reply_free(&rep);
    if (!out) {
        snprintf(name, sizeof name, "%.*s-v%lld.%s", (int)m->resource.len, m->resource.str,
                 (long long)version, format);
        out = name;
    }
    FILE *f = fopen(out, "wb");
    if (!f) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", out, strerror(errno));
        return 2;
    }
    odp_client_t *c = s_client();
    if (!c) {
        fclose(f);
        return 2;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    char served[65] = "";
    int64_t bytes = 0, next = 1, inflight = 0, got = 0;
    bool done = false, tty = isatty(2);
    while (!done && rc == 0) {
        /*  Chunks start at 1 + k * span up to the last row; an empty version has one. */
        while (inflight < credit && (next <= last || next == 1)) {
            odp_download_chunk_t ch = {0};
            ch.token = m->token;
            ch.download = odp_v_int(id);
            ch.from_row = odp_v_int(next);
            if (odp_client_send(c, &odp_def_download_chunk, &ch) < 0) {
                fprintf(stderr, PROG ": %s\n", odp_client_why(c));
                rc = 3;
                break;
            }
            next += span;
            inflight++;
        }
        if (rc)
            break;
        if (odp_client_recv(c, s_g.timeout_ms, &rep) < 0) {
            fprintf(stderr, PROG ": %s\n", odp_client_why(c));
            odp_reply_free(&rep);
            rc = 3;
            break;
        }
        inflight--;
        if (rep.status != 200) {
            rc = odp_cli_refused(PROG, "query", &rep, s_g.json);
            odp_reply_free(&rep);
            break;
        }
        const msgpack_object *d = odp_map_get(&rep.obj, "data");
        if (d && d->type == MSGPACK_OBJECT_BIN) {
            if (fwrite(d->via.bin.ptr, 1, d->via.bin.size, f) != d->via.bin.size) {
                fprintf(stderr, PROG ": cannot write %s: %s\n", out, strerror(errno));
                rc = 2;
            }
            odp_sha256_update(&st, (const unsigned char *)d->via.bin.ptr, d->via.bin.size);
            bytes += d->via.bin.size;
        }
        v = odp_map_get(&rep.obj, "done");
        done = v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
        if (done)
            s_str(&rep, "served_sha256", served, sizeof served);
        got = (v = odp_map_get(&rep.obj, "next_row")) ? (int64_t)v->via.u64 - 1 : got;
        odp_reply_free(&rep);
        if (tty)
            fprintf(stderr, "\r%s: %s %lld of %lld, %lld bytes", out,
                    strcmp(format, "file") == 0 ? "byte" : "row",
                    (long long)(got < last ? got : last), (long long)last, (long long)bytes);
    }
    if (tty)
        fputc('\n', stderr);
    odp_client_destroy(&c);
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", out, strerror(errno));
        rc = 2;
    }
    if (rc)
        return rc;
    unsigned char h[32];
    char hex[65];
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    if (strcmp(hex, served) != 0) {
        fprintf(stderr, PROG ": %s has SHA-256 %s, the service served %s: download again\n", out,
                hex, served[0] ? served : "(none)");
        return 1;
    }
    if (s_g.json)
        odp_json_print(json_pack("{s:s,s:I,s:I,s:s,s:s,s:s}", "file", out, "download",
                                 (json_int_t)id, "bytes", (json_int_t)bytes, "sha256", hex,
                                 "format", format, "pushed_sha256", pushed));
    else
        printf("wrote %s: %lld bytes, SHA-256 %s (verified); the pushed file's was %s\n", out,
               (long long)bytes, hex, pushed[0] ? pushed : "-");
    return 0;
}

/*  The token field of msg, when its command has one. */
static odp_val_t *s_token_field(const odp_msgdef_t *def, void *msg)
{
    for (size_t k = 0; k < def->nfields; k++)
        if (strcmp(def->fields[k].name, "token") == 0)
            return (odp_val_t *)((char *)msg + def->fields[k].offset);
    return NULL;
}

int main(int argc, char **argv)
{
    int first = odp_cli_global(PROG, &argc, argv, &s_g, true, s_usage);
    if (first < 0)
        return first == -1 ? 0 : 2;
    argc -= first;
    argv += first;
    zsys_init();
    zsys_set_logstream(stderr);
    if (strcmp(argv[0], "keygen") == 0) {
        const char *out = argc == 3 && strcmp(argv[1], "--out") == 0 ? argv[2] : NULL;
        if (argc != 1 && !out) {
            fprintf(stderr, PROG ": keygen takes only --out BASE\n");
            return 2;
        }
        return s_keygen(out);
    }
    int consumed;
    const char *kind;
    const odp_msgdef_t *def = s_command(argc, argv, &consumed, &kind);
    if (!def) {
        fprintf(stderr, PROG ": unknown command '%s' (odp-user --help)\n", argv[0]);
        return 2;
    }
    s_any_request_t msg;
    memset(&msg, 0, sizeof msg);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    int rc = 2;
    /*  The password is never an option: it would show in the process list. */
    const char *no_password = NULL, *filters = NULL, *out = NULL;
    const odp_cli_opt_t extra[] = {
        {"password", &no_password}, {"filters", &filters}, {"out", &out}, {NULL, NULL}};
    msgpack_sbuffer fbuf;
    msgpack_sbuffer_init(&fbuf);
    if (odp_cli_fill(PROG, def, &msg, argc - consumed, argv + consumed, extra, &zone) < 0)
        goto done;
    if (no_password) {
        fprintf(stderr, PROG ": give the password on standard input, not as --password\n");
        goto done;
    }
    if ((filters && def != &odp_def_datastore_search) || (out && def != &odp_def_download_begin)) {
        fprintf(stderr, PROG ": %s has no option --%s\n", def->name, filters ? "filters" : "out");
        goto done;
    }
    if (filters) {
        json_error_t je;
        json_t *j = json_loads(filters, 0, &je);
        if (!json_is_object(j)) {
            fprintf(stderr, PROG ": --filters is a JSON object: %s\n",
                    j ? "not an object" : je.text);
            json_decref(j);
            goto done;
        }
        msgpack_packer pk;
        msgpack_packer_init(&pk, &fbuf, msgpack_sbuffer_write);
        odp_json_pack(&pk, j);
        json_decref(j);
        msg.datastore_search.filters = odp_v_raw(fbuf.data, fbuf.size);
    }
    if (kind)
        msg.feedback_submit.kind = odp_v_str(kind);
    char token[65];
    odp_val_t *tf = s_token_field(def, &msg);
    if (tf && !tf->present) {
        s_token_load(token);
        if (token[0])
            *tf = odp_v_str(token);
    }
    if (def == &odp_def_user_signin || def == &odp_def_user_signup) {
        /*  The password comes later, from standard input: fill a placeholder so the
            required check looks only at the options. */
        odp_val_t *pw =
            def == &odp_def_user_signin ? &msg.user_signin.password : &msg.user_signup.password;
        *pw = odp_v_str("-");
        if (odp_cli_required(PROG, def, &msg) < 0)
            goto done;
        *pw = (odp_val_t){0};
    } else if (odp_cli_required(PROG, def, &msg) < 0) {
        goto done;
    }
    if (def == &odp_def_user_signin) {
        rc = s_signin(&msg.user_signin);
    } else if (def == &odp_def_user_signup) {
        char pw[512] = "";
        if (s_read_password(pw, sizeof pw) == 0 && strlen(pw) < 8)
            fprintf(stderr, PROG ": a password has at least 8 bytes\n");
        else if (pw[0]) {
            msg.user_signup.password = odp_v_str(pw);
            rc = s_print_call(def, &msg);
        }
        memset(pw, 0, sizeof pw);
    } else if (def == &odp_def_download_begin) {
        rc = s_download(&msg.download_begin, out);
    } else {
        rc = s_print_call(def, &msg);
        if (rc == 0 && def == &odp_def_user_signout) {
            char path[1024];
            if (s_token_path(path, sizeof path) == 0)
                unlink(path);
        }
    }
done:
    msgpack_sbuffer_destroy(&fbuf);
    msgpack_zone_destroy(&zone);
    return rc;
}
