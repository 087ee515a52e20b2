/*  The tools as people run them, and the mistakes people make with them: a key that is
    not registered or was revoked, a server certificate or an endpoint that is wrong, a
    missing setting, options after the command, a key directory that does not exist yet,
    a GB18030 file pushed as UTF-8, a push whose every row is rejected, a registrar too busy
    to take another push, and the local platform's environment and psql. Each case spawns
    the real binaries against the real services and checks the exit status and what the
    user is told. */
#include "harness.h"

#include "common/auth.h"

#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int rc;          /* exit status, -1 when it had to be killed */
    int64_t ms;      /* how long it ran */
    char out[65536]; /* stdout */
    char err[65536]; /* stderr */
} s_run_t;

static void s_slurp(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/*  Run tool (odpctl, odp-push, odp-events) with args and extra environment "K=V" strings
    (both NULL-terminated; env may be NULL). */
static void s_tool(s_run_t *r, const char *tag, const char *tool, const char *const *env,
                   const char *const *args, int timeout_ms)
{
    char path[512], out[512], err[512];
    snprintf(path, sizeof path, "%s/%s", h_bin(), tool);
    snprintf(out, sizeof out, "%s/tools-%s.out", h_var(), tag);
    snprintf(err, sizeof err, "%s/tools-%s.err", h_var(), tag);
    remove(out);
    remove(err);
    const char *argv[64] = {path};
    int n = 1;
    for (const char *const *a = args; *a && n < 63; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    int64_t t0 = zclock_mono();
    pid_t pid = h_spawn(argv, env, out, err);
    r->rc = h_wait_exit(pid, timeout_ms);
    if (r->rc < 0) {
        kill(pid, SIGKILL);
        h_wait_exit(pid, 5000);
    }
    r->ms = zclock_mono() - t0;
    s_slurp(out, r->out, sizeof r->out);
    s_slurp(err, r->err, sizeof r->err);
}

static int s_port_base(void)
{
    return atoi(h_env("ODP_PORT_BASE"));
}

/*  A key pair nobody registered, at h_var()/keys/<name>; the secret's path in secret. */
static bool s_stranger(const char *name, char *secret, size_t size)
{
    char base[512], key[41];
    snprintf(base, sizeof base, "%s/keys/%s", h_var(), name);
    snprintf(secret, size, "%s_secret", base);
    return odp_auth_keygen("provider", name, "not registered", base, key) == 0;
}

/*  ---- a key the platform does not know ------------------------------------------------ */

static void s_unregistered_key(void)
{
    char secret[600], ep[64];
    CHECK(s_stranger("stranger-tools", secret, sizeof secret), "keygen");
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s_port_base() + 1);
    /*  A long timeout: the tool must not sit it out, the refusal is final. */
    const char *args[] = {"--cert", secret, "--timeout-ms", "20000", "whoami", NULL};
    s_run_t *r = calloc(1, sizeof *r);
    s_tool(r, "unregistered", "odpctl", NULL, args, 30000);
    CHECK(r->rc == 3, "odpctl with an unregistered key exited %d, expected 3 (%s)", r->rc, r->err);
    CHECK(strstr(r->err, "refused this client's key") && strstr(r->err, ep) &&
              strstr(r->err, secret),
          "the message does not say the key at %s was refused by %s: %s", secret, ep, r->err);
    CHECK(!strstr(r->err, "within"), "the message still blames a timeout: %s", r->err);
    CHECK(r->ms < 10000, "odpctl waited %lld ms for a refused key", (long long)r->ms);

    /*  odp-push pushing: no thirty retries against a refusal. */
    char csv[512];
    snprintf(csv, sizeof csv, "%s/land_use_status.csv", h_samples());
    const char *push[] = {"--cert", secret, "push", "--resource", "440100001-001-00001", csv, NULL};
    s_tool(r, "unregistered-push", "odp-push", NULL, push, 60000);
    CHECK(r->rc == 3, "odp-push push with an unregistered key exited %d, expected 3 (%s)", r->rc,
          r->err);
    CHECK(strstr(r->err, "refused this client's key") && !strstr(r->err, "retry"),
          "odp-push does not stop at the refusal: %s", r->err);
    CHECK(r->ms < 10000, "odp-push took %lld ms to give up on a refused key", (long long)r->ms);

    /*  A subscriber hears nothing when its key is refused: odp-events says so and stops. */
    char env[700], events_ep[64];
    snprintf(env, sizeof env, "ODP_CLIENT_CERT=%s", secret);
    snprintf(events_ep, sizeof events_ep, "tcp://127.0.0.1:%d", s_port_base() + 2);
    const char *e[] = {env, NULL};
    const char *listen[] = {"--service", "registrar", "--idle-exit-ms", "30000", NULL};
    s_tool(r, "unregistered-events", "odp-events", e, listen, 40000);
    CHECK(r->rc == 1, "odp-events with an unregistered key exited %d, expected 1 (%s)", r->rc,
          r->err);
    CHECK(strstr(r->err, "refused this client's key") && strstr(r->err, events_ep),
          "odp-events does not say its key was refused at %s: %s", events_ep, r->err);
    CHECK(r->ms < 10000, "odp-events listened %lld ms to a refusal", (long long)r->ms);
    free(r);
}

static void s_revoked_key(void)
{
    const char *code = "445300001";
    CHECK(h_department(code, "东莞市政务服务数据管理局") == 0, "department.add");
    s_run_t *r = calloc(1, sizeof *r);
    const char *plans[] = {"--cert", h_keyfile(code), "plans", NULL};
    s_tool(r, "revoked-before", "odp-push", NULL, plans, 20000);
    CHECK(r->rc == 0, "the department's key does not work before revocation: %d %s", r->rc, r->err);
    char pub[512];
    snprintf(pub, sizeof pub, "%s/keys/%s", h_var(), code);
    zcert_t *cert = zcert_load(pub);
    CHECK(cert, "load %s", pub);
    if (cert) {
        const char *revoke[] = {"credential", "revoke", "--public-key", zcert_public_txt(cert),
                                NULL};
        s_tool(r, "revoke", "odpctl", NULL, revoke, 20000);
        CHECK(r->rc == 0, "odpctl credential revoke exited %d: %s", r->rc, r->err);
        zcert_destroy(&cert);
    }
    s_tool(r, "revoked-after", "odp-push", NULL, plans, 30000);
    CHECK(r->rc == 3, "odp-push with a revoked key exited %d, expected 3 (%s)", r->rc, r->err);
    CHECK(strstr(r->err, "not registered on the platform, or was revoked"),
          "the message does not say the key may be revoked: %s", r->err);
    free(r);
}

/*  ---- the server's certificate, the endpoint, missing settings -------------------------- */

static void s_wrong_server_cert(void)
{
    char base[512], key[41], env[600];
    snprintf(base, sizeof base, "%s/keys/not-the-server", h_var());
    CHECK(odp_auth_keygen("server", "odp", NULL, base, key) == 0, "keygen");
    snprintf(env, sizeof env, "ODP_SERVER_CERT=%s", base);
    const char *e[] = {env, NULL};
    const char *args[] = {"--timeout-ms", "20000", "department", "list", NULL};
    s_run_t *r = calloc(1, sizeof *r);
    s_tool(r, "wrong-server", "odpctl", e, args, 30000);
    CHECK(r->rc == 3, "odpctl with another server certificate exited %d, expected 3 (%s)", r->rc,
          r->err);
    CHECK(strstr(r->err, "handshake") && strstr(r->err, "ODP_SERVER_CERT") && strstr(r->err, base),
          "the message does not point at ODP_SERVER_CERT (%s): %s", base, r->err);
    CHECK(r->ms < 10000, "odpctl waited %lld ms on a handshake that cannot succeed",
          (long long)r->ms);
    free(r);
}

static void s_wrong_endpoint(void)
{
    char nobody[128], events[128], ep[64];
    /*  Ports of the base's block that no service binds, and the registrar's events port. */
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s_port_base() + 9);
    snprintf(nobody, sizeof nobody, "ODP_REGISTRAR_ENDPOINT=%s", ep);
    snprintf(events, sizeof events, "ODP_REGISTRAR_ENDPOINT=tcp://127.0.0.1:%d", s_port_base() + 2);
    s_run_t *r = calloc(1, sizeof *r);
    const char *args[] = {"--timeout-ms", "1500", "rules", NULL};
    const char *e1[] = {nobody, NULL};
    s_tool(r, "no-listener", "odp-push", e1, args, 20000);
    CHECK(r->rc == 3, "odp-push to a port nobody listens on exited %d, expected 3 (%s)", r->rc,
          r->err);
    CHECK(strstr(r->err, "nothing is listening at") && strstr(r->err, ep) &&
              strstr(r->err, "ODP_REGISTRAR_ENDPOINT"),
          "the message does not name the empty endpoint and its setting: %s", r->err);

    const char *e2[] = {events, NULL};
    s_tool(r, "events-port", "odp-push", e2, args, 20000);
    CHECK(r->rc == 3, "odp-push to the events port exited %d, expected 3 (%s)", r->rc, r->err);
    CHECK(strstr(r->err, "request port"),
          "the message does not suggest the endpoint is not a request port: %s", r->err);

    /*  --endpoint is named as the culprit when it was given. */
    const char *given[] = {"--timeout-ms", "1500",      "--endpoint", ep,
                           "health",       "--service", "registrar",  NULL};
    s_tool(r, "endpoint-option", "odpctl", NULL, given, 20000);
    CHECK(r->rc == 3, "odpctl health --endpoint to nobody exited %d, expected 3", r->rc);
    CHECK(strstr(r->out, "unreachable") && strstr(r->out, "--endpoint"),
          "health does not say the --endpoint is wrong: %s", r->out);
    free(r);
}

static void s_missing_settings(void)
{
    s_run_t *r = calloc(1, sizeof *r);
    const char *no_server[] = {"ODP_SERVER_CERT=", NULL};
    const char *whoami[] = {"whoami", NULL};
    s_tool(r, "no-server-odpctl", "odpctl", no_server, whoami, 20000);
    CHECK(r->rc == 2, "odpctl without ODP_SERVER_CERT exited %d, expected 2 (usage)", r->rc);
    CHECK(strstr(r->err, "ODP_SERVER_CERT is not set"), "odpctl says: %s", r->err);

    const char *rules[] = {"rules", NULL};
    s_tool(r, "no-server-push", "odp-push", no_server, rules, 20000);
    CHECK(r->rc == 2, "odp-push without ODP_SERVER_CERT exited %d, expected 2 (usage)", r->rc);
    CHECK(strstr(r->err, "ODP_SERVER_CERT is not set"), "odp-push says: %s", r->err);

    char csv[512];
    snprintf(csv, sizeof csv, "%s/land_use_status.csv", h_samples());
    const char *push[] = {"push", "--resource", "440100001-001-00001", csv, NULL};
    s_tool(r, "no-server-push-push", "odp-push", no_server, push, 20000);
    CHECK(r->rc == 2, "odp-push push without ODP_SERVER_CERT exited %d, expected 2", r->rc);
    CHECK(strstr(r->err, "ODP_SERVER_CERT is not set"), "odp-push push says: %s", r->err);

    const char *events[] = {"--idle-exit-ms", "500", NULL};
    s_tool(r, "no-server-events", "odp-events", no_server, events, 20000);
    CHECK(r->rc == 2, "odp-events without ODP_SERVER_CERT exited %d, expected 2", r->rc);
    CHECK(strstr(r->err, "ODP_SERVER_CERT is not set"), "odp-events says: %s", r->err);

    const char *no_client[] = {"ODP_CLIENT_CERT=", NULL};
    s_tool(r, "no-client", "odpctl", no_client, whoami, 20000);
    CHECK(r->rc == 2, "odpctl without a client certificate exited %d, expected 2", r->rc);
    CHECK(strstr(r->err, "ODP_CLIENT_CERT"), "odpctl says: %s", r->err);
    free(r);
}

/*  ---- command lines --------------------------------------------------------------------- */

static void s_options_anywhere(void)
{
    s_run_t *r = calloc(1, sizeof *r);
    /*  (small replies: the outputs are read into 64 KiB) */
    const char *after[] = {"whoami", "--json", NULL};
    s_tool(r, "json-after", "odpctl", NULL, after, 20000);
    json_t *j = json_loads(r->out, JSON_DISABLE_EOF_CHECK, NULL);
    CHECK(r->rc == 0 && json_is_object(j) && !strstr(r->out, "\n "),
          "odpctl whoami --json: exit %d, not one compact JSON line: %s %s", r->rc, r->out, r->err);
    json_decref(j);

    const char *push_after[] = {"rules", "--timeout-ms", "5000", "--json", NULL};
    s_tool(r, "push-json-after", "odp-push", NULL, push_after, 20000);
    j = json_loads(r->out, JSON_DISABLE_EOF_CHECK, NULL);
    CHECK(r->rc == 0 && json_is_object(j) && !strstr(r->out, "\n "),
          "odp-push rules --timeout-ms 5000 --json: exit %d: %s %s", r->rc, r->out, r->err);
    json_decref(j);

    /*  A value that looks like a global option is still the value of its option. */
    const char *code = "445300002";
    const char *value[] = {"department", "add", "--code", code, "--name", "--json", NULL};
    s_tool(r, "value-like-option", "odpctl", NULL, value, 20000);
    CHECK(r->rc == 0, "department add --name --json exited %d: %s", r->rc, r->err);
    CHECK(strstr(r->out, "\"name\": \"--json\""),
          "the department is not named \"--json\" in indented output: %s", r->out);

    const char *twice[] = {"department", "list", "--timeout-ms", NULL};
    s_tool(r, "missing-value", "odpctl", NULL, twice, 20000);
    CHECK(r->rc == 2 && strstr(r->err, "--timeout-ms needs a value"),
          "a global option without its value: exit %d, %s", r->rc, r->err);
    free(r);
}

static void s_keygen_makes_directories(void)
{
    char dir[512], base[600], secret[700];
    snprintf(dir, sizeof dir, "%s/fresh-%d", h_var(), (int)getpid());
    snprintf(base, sizeof base, "%s/keys/445300003", dir);
    const char *args[] = {"department",   "add",      "--code", "445300003", "--name",
                          "韶关市数据局", "--keygen", base,     NULL};
    s_run_t *r = calloc(1, sizeof *r);
    s_tool(r, "keygen-dir", "odpctl", NULL, args, 20000);
    CHECK(r->rc == 0, "department add --keygen into a new directory exited %d: %s", r->rc, r->err);
    snprintf(secret, sizeof secret, "%s_secret", base);
    struct stat st;
    CHECK(stat(secret, &st) == 0 && (st.st_mode & 077) == 0, "%s missing or readable by others",
          secret);
    char keys[600];
    snprintf(keys, sizeof keys, "%s/keys", dir);
    CHECK(stat(keys, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
          "%s is not a 0700 directory (mode %o)", keys, (unsigned)(st.st_mode & 0777));
    CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "%s is not 0700", dir);

    /*  The key works: the department can act with it. */
    const char *plans[] = {"--cert", secret, "plans", NULL};
    s_tool(r, "keygen-dir-use", "odp-push", NULL, plans, 20000);
    CHECK(r->rc == 0, "the new department's key does not work: %d %s", r->rc, r->err);

    char out[600];
    snprintf(out, sizeof out, "%s/other/k", dir);
    const char *kg[] = {"keygen", "--kind", "provider", "--id", "445300004", "--out", out, NULL};
    s_tool(r, "keygen-dir-2", "odpctl", NULL, kg, 20000);
    CHECK(r->rc == 0 && access(out, R_OK) == 0, "keygen --out into a new directory: %d %s", r->rc,
          r->err);
    free(r);
}

/*  ---- pushing ------------------------------------------------------------------------- */

/*  registration.decide as operations: the step the provider's tool cannot take. */
static bool s_approve(const char *resource)
{
    odp_client_t *c = h_client("registrar", NULL);
    odp_registration_decide_t m = {0};
    m.resource = odp_v_str(resource);
    m.approve = odp_v_bool(true);
    odp_reply_t rep;
    int st = h_call(c, &odp_def_registration_decide, &m, &rep);
    CHECK(st == 200, "registration.decide of %s: %d %s", resource, st, h_err_code(&rep));
    odp_reply_free(&rep);
    odp_client_destroy(&c);
    return st == 200;
}

/*  A registered dataset of department code described by the sample dictionary dict;
    its code in resource (33 bytes). */
static bool s_registered(const char *tag, const char *code, const char *dict, char *resource)
{
    char dict_path[512], t[64];
    snprintf(dict_path, sizeof dict_path, "%s/%s", h_samples(), dict);
    const char *cat[] = {"--cert",
                         h_keyfile(code),
                         "catalog",
                         "--summary",
                         "工具测试",
                         "--keywords",
                         "测试",
                         "--content-kind",
                         "dataset",
                         "--delivery-form",
                         "dataset_file",
                         "--open-type",
                         "unconditional",
                         "--update-cycle",
                         "monthly",
                         "--contact",
                         "020-12345678",
                         "--location",
                         "前置机",
                         "--dict",
                         dict_path,
                         "--json",
                         NULL};
    s_run_t *r = calloc(1, sizeof *r);
    snprintf(t, sizeof t, "%s-catalog", tag);
    s_tool(r, t, "odp-push", NULL, cat, 20000);
    json_t *j = json_loads(r->out, JSON_DISABLE_EOF_CHECK, NULL);
    const char *res = json_string_value(json_object_get(j, "resource"));
    snprintf(resource, 33, "%s", res ? res : "");
    json_decref(j);
    CHECK(r->rc == 0 && resource[0], "catalog --dict %s exited %d: %s", dict, r->rc, r->err);
    bool ok = r->rc == 0 && resource[0];
    if (ok) {
        const char *reg[] = {"--cert", h_keyfile(code), "register", "--resource", resource, NULL};
        snprintf(t, sizeof t, "%s-register", tag);
        s_tool(r, t, "odp-push", NULL, reg, 20000);
        CHECK(r->rc == 0, "register exited %d: %s", r->rc, r->err);
        ok = r->rc == 0 && s_approve(resource);
    }
    free(r);
    return ok;
}

/*  The last JSON line of out, or NULL. */
static json_t *s_last_json(const char *out)
{
    json_t *last = NULL;
    const char *p = out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_t *j = json_loadb(p, n, 0, NULL);
        if (j) {
            json_decref(last);
            last = j;
        }
        p += n + (nl ? 1 : 0);
    }
    return last;
}

static int64_t s_jint(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/*  UTF-8 sample name converted to GB18030 at path, with iconv(1) as a person would. */
static bool s_to_gb18030(const char *name, const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "iconv -f UTF-8 -t GB18030 '%s/%s' > '%s'", h_samples(), name, path);
    return system(cmd) == 0;
}

static void s_gb18030_detected(void)
{
    const char *code = "445300005";
    CHECK(h_department(code, "韶关市政务服务数据管理局") == 0, "department.add");
    char resource[33], csv[512];
    if (!s_registered("gb-detect", code, "key_enterprise_assets.dict.json", resource))
        return;
    snprintf(csv, sizeof csv, "%s/key_enterprise_assets.messy.gb18030.csv", h_samples());
    s_run_t *r = calloc(1, sizeof *r);
    /*  No --encoding: the tool sees GB18030 and says so. */
    const char *push[] = {"--cert", h_keyfile(code), "push", "--resource", resource,
                          csv,      "--json",        NULL};
    s_tool(r, "gb-detect", "odp-push", NULL, push, 120000);
    CHECK(r->rc == 0, "pushing the GB18030 sample without --encoding exited %d: %s", r->rc, r->err);
    CHECK(strstr(r->err, "reads as GB18030") && strstr(r->err, "--encoding gb18030") &&
              strstr(r->err, "统一社会信用代码"),
          "no notice that the file is GB18030, with its header readable: %s", r->err);
    json_t *sum = s_last_json(r->out);
    CHECK(s_jint(sum, "rows_received") == 300 && s_jint(sum, "rows_staged") == 297,
          "the detected push staged %lld of %lld rows, expected 297 of 300",
          (long long)s_jint(sum, "rows_staged"), (long long)s_jint(sum, "rows_received"));
    json_decref(sum);
    free(r);
}

static void s_gb18030_as_utf8(void)
{
    const char *code = "445300006";
    CHECK(h_department(code, "清远市政务服务数据管理局") == 0, "department.add");
    char resource[33], gb[512];
    if (!s_registered("gb-utf8", code, "land_use_status.dict.json", resource))
        return;
    snprintf(gb, sizeof gb, "%s/land_use_status.gb18030.csv", h_var());
    CHECK(s_to_gb18030("land_use_status.csv", gb), "iconv to %s", gb);
    s_run_t *r = calloc(1, sizeof *r);
    const char *push[] = {"--cert",     h_keyfile(code), "push", "--resource", resource,
                          "--encoding", "utf8",          gb,     NULL};
    s_tool(r, "gb-as-utf8", "odp-push", NULL, push, 120000);
    CHECK(r->rc == 1, "a GB18030 file pushed as UTF-8 exited %d, expected 1 (%s)", r->rc, r->err);
    CHECK(strstr(r->err, "HEADER_MISMATCH"), "no HEADER_MISMATCH: %s", r->err);
    /*  The way out, with the header shown readable rather than as the registrar's bytes. */
    const char *hint = strstr(r->err, "push it with --encoding gb18030");
    CHECK(hint, "no suggestion to use --encoding gb18030: %s", r->err);
    CHECK(strstr(r->err, "warning:") && strstr(r->err, "reads as GB18030"),
          "no warning before the push: %s", r->err);
    free(r);
}

static void s_nothing_staged(void)
{
    const char *code = "445300007";
    CHECK(h_department(code, "潮州市政务服务数据管理局") == 0, "department.add");
    char resource[33], bad[512], sample[512];
    if (!s_registered("none-staged", code, "land_use_status.dict.json", resource))
        return;
    /*  The sample's header, then rows of one field each: every row ragged. */
    snprintf(sample, sizeof sample, "%s/land_use_status.csv", h_samples());
    snprintf(bad, sizeof bad, "%s/land_use_ragged.csv", h_var());
    FILE *in = fopen(sample, "rb"), *out = fopen(bad, "wb");
    CHECK(in && out, "cannot write %s", bad);
    if (in && out) {
        char line[8192];
        if (fgets(line, sizeof line, in))
            fputs(line, out);
        fputs("甲\n乙\n丙\n", out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    s_run_t *r = calloc(1, sizeof *r);
    const char *push[] = {"--cert", h_keyfile(code), "push", "--resource", resource, bad, NULL};
    s_tool(r, "none-staged", "odp-push", NULL, push, 60000);
    CHECK(r->rc == 1, "a push that staged none of its rows exited %d, expected 1 (%s)", r->rc,
          r->err);
    CHECK(strstr(r->err, "none of the 3 rows") && strstr(r->err, "odp-push rejects --resource"),
          "the message does not say no row was staged and where to look: %s", r->err);
    CHECK(strstr(r->out, "3 received = 0 staged + 3 rejected"), "the summary is missing: %s",
          r->out);
    free(r);
}

/*  Uploads of resource holding registrar slots: begun, one chunk sent, not finished.
    Opens them until a chunk is refused with RATE_LIMITED (then every slot is taken);
    their ids go to uploads. The number opened, -1 when the limit never came. */
static int s_fill_slots(odp_client_t *c, const char *resource, const char *header, int64_t *uploads,
                        int max)
{
    for (int i = 0; i < max; i++) {
        char data[256], sha[65];
        int n = snprintf(data, sizeof data, "%s", header);
        unsigned char digest[32];
        char seed[32];
        snprintf(seed, sizeof seed, "slot-%d-%d", (int)getpid(), i);
        crypto_hash_sha256(digest, (const unsigned char *)seed, strlen(seed));
        sodium_bin2hex(sha, sizeof sha, digest, sizeof digest);
        odp_push_begin_t b = {0};
        b.resource = odp_v_str(resource);
        b.format = odp_v_str("csv");
        b.encoding = odp_v_str("utf8");
        b.size = odp_v_int(1000000); /* more than is ever sent: the upload stays open */
        b.sha256 = odp_v_str(sha);
        odp_reply_t rep;
        int st = h_call(c, &odp_def_push_begin, &b, &rep);
        int64_t upload = st == 200 ? h_int(&rep, "upload") : -1;
        odp_reply_free(&rep);
        CHECK(st == 200 && upload > 0, "push.begin %d: %d", i, st);
        if (upload <= 0)
            return -1;
        uploads[i] = upload;
        odp_push_chunk_t ch = {0};
        ch.upload = odp_v_int(upload);
        ch.offset = odp_v_int(0);
        ch.data = odp_v_bin(data, (size_t)n);
        st = h_call(c, &odp_def_push_chunk, &ch, &rep);
        bool limited = st == 429 && strcmp(h_err_code(&rep), "RATE_LIMITED") == 0;
        odp_reply_free(&rep);
        if (limited)
            return i + 1;
        CHECK(st == 200, "push.chunk %d: %d", i, st);
        if (st != 200)
            return -1;
    }
    return -1;
}

static void s_rate_limited(void)
{
    const char *code = "445300008";
    CHECK(h_department(code, "揭西县数据局") == 0, "department.add");
    char resource[33], sample[512], header[200] = "";
    if (!s_registered("busy", code, "land_use_status.dict.json", resource))
        return;
    snprintf(sample, sizeof sample, "%s/land_use_status.csv", h_samples());
    FILE *f = fopen(sample, "rb");
    if (f) {
        if (!fgets(header, sizeof header, f))
            header[0] = '\0';
        fclose(f);
    }
    odp_client_t *c = h_client("registrar", h_keyfile(code));
    int64_t uploads[40];
    int n = s_fill_slots(c, resource, header, uploads, 40);
    CHECK(n > 0, "the registrar never said RATE_LIMITED");
    if (n > 0) {
        s_run_t *r = calloc(1, sizeof *r);
        const char *push[] = {"--cert",     h_keyfile(code), "push",
                              "--resource", resource,        "--retries",
                              "1",          sample,          NULL};
        s_tool(r, "busy", "odp-push", NULL, push, 60000);
        CHECK(r->rc == 1, "odp-push against a full registrar exited %d, expected 1 (%s)", r->rc,
              r->err);
        CHECK(strstr(r->err, "answered 429 RATE_LIMITED") && strstr(r->err, "retry 1"),
              "the retry does not say the registrar answered 429: %s", r->err);
        CHECK(strstr(r->err, "refused (429 RATE_LIMITED): ") && strstr(r->err, "retry_after_ms="),
              "the outcome is not the 429 with its message: %s", r->err);
        CHECK(!strstr(r->err, "lost the registrar") && !strstr(r->err, "no answer"),
              "a 429 is reported as a lost registrar: %s", r->err);
        free(r);
    }
    /*  Give the slots back: later cases push. */
    for (int i = 0; i < (n > 0 ? n : 0); i++) {
        odp_push_abort_t a = {0};
        a.upload = odp_v_int(uploads[i]);
        a.reason = odp_v_str("t_tools: slots filled on purpose");
        odp_reply_t rep;
        int st = h_call(c, &odp_def_push_abort, &a, &rep);
        CHECK(st == 200, "push.abort of upload %lld: %d %s", (long long)uploads[i], st,
              h_err_code(&rep));
        odp_reply_free(&rep);
    }
    odp_client_destroy(&c);
}

/*  ---- the local platform ----------------------------------------------------------------- */

/*  What deploy/odp-local.sh writes to var/odp.env, run from its own source: after `. var/
    odp.env` the README calls odpctl and odp-push by name, so build/bin must be on PATH. */
static void s_env_file_path(void)
{
    char root[512], dir[600], script[2400];
    CHECK(getcwd(root, sizeof root) != NULL, "getcwd");
    snprintf(dir, sizeof dir, "%s/envfile", h_var());
    snprintf(script, sizeof script,
             "set -e; cd '%s'; "
             "eval \"$(sed -n '/^SERVICES=/p;/^shq()/p;/^die()/p;/^write_env()/,/^}/p' "
             "deploy/odp-local.sh)\"; "
             "ROOT=$PWD BIN=$PWD/build/bin VAR='%s' PROG=test; mkdir -p \"$VAR\"; "
             "echo '# no database here' > \"$VAR/pg.env\"; write_env; "
             "env -i PATH=/usr/bin:/bin HOME=/nonexistent bash -c '. \"$1/odp.env\"; "
             "case \":$PATH:\" in *\":$2:\"*) echo ON-PATH ;; esac; . \"$1/odp.env\"; "
             "echo \"PATH=$PATH\"' sh \"$VAR\" \"$BIN\"",
             root, dir);
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/tools-envfile.out", h_var());
    snprintf(err, sizeof err, "%s/tools-envfile.err", h_var());
    remove(out);
    remove(err);
    const char *argv[] = {"/bin/bash", "-c", script, NULL};
    int rc = h_wait_exit(h_spawn(argv, NULL, out, err), 20000);
    char text[8192], errs[4096], bin[600];
    s_slurp(out, text, sizeof text);
    s_slurp(err, errs, sizeof errs);
    snprintf(bin, sizeof bin, "%s/build/bin:", root);
    CHECK(rc == 0 && strstr(text, "ON-PATH"),
          "var/odp.env does not put %s on PATH (exit %d): %s %s", bin, rc, text, errs);
    /*  Sourcing it twice must not grow PATH. */
    const char *p = strstr(text, "PATH=");
    const char *first = p ? strstr(p, bin) : NULL;
    CHECK(first && !strstr(first + 1, bin), "PATH holds build/bin twice after two sources: %s",
          text);
}

/*  `make psql` opens psql on the cluster an env file names (var/odp.env by default). */
static void s_make_psql(void)
{
    char root[512], script[1400], out[512], err[512];
    CHECK(getcwd(root, sizeof root) != NULL, "getcwd");
    snprintf(script, sizeof script,
             "echo 'SELECT 6 * 7 AS answer;' | env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS "
             "make -s -C '%s' psql ODP_ENV='%s/pg.env'",
             root, h_var());
    snprintf(out, sizeof out, "%s/tools-psql.out", h_var());
    snprintf(err, sizeof err, "%s/tools-psql.err", h_var());
    remove(out);
    remove(err);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    int rc = h_wait_exit(h_spawn(argv, NULL, out, err), 30000);
    char text[4096], errs[4096];
    s_slurp(out, text, sizeof text);
    s_slurp(err, errs, sizeof errs);
    CHECK(rc == 0 && strstr(text, "42"), "make psql did not run the query (exit %d): %s %s", rc,
          text, errs);
}

const h_case_t t_tools_cases[] = {
    {"tools: an unregistered key is named as refused, at once, by odpctl, odp-push, odp-events",
     s_unregistered_key},
    {"tools: a revoked key is named as refused", s_revoked_key},
    {"tools: another server certificate is named as a failed handshake", s_wrong_server_cert},
    {"tools: an endpoint nobody listens on, or an events port, is named", s_wrong_endpoint},
    {"tools: a missing ODP_SERVER_CERT / client certificate is a usage error (exit 2)",
     s_missing_settings},
    {"tools: global options after the command (--json at the end)", s_options_anywhere},
    {"tools: --keygen creates the key directory (0700)", s_keygen_makes_directories},
    {"tools: odp-push sees a GB18030 file and pushes it as GB18030", s_gb18030_detected},
    {"tools: a GB18030 file forced as UTF-8: HEADER_MISMATCH with the way out", s_gb18030_as_utf8},
    {"tools: a push that stages none of its rows exits 1 and says so", s_nothing_staged},
    {"tools: a 429 RATE_LIMITED is reported as a 429 with its message", s_rate_limited},
    {"tools: var/odp.env puts build/bin on PATH, once", s_env_file_path},
    {"tools: make psql opens the local cluster", s_make_psql},
    {NULL, NULL}};
