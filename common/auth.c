#include "auth.h"

#include "config.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static zactor_t *s_zap = NULL;
static zcert_t *s_server_cert = NULL;
static bool s_secure = true;

bool odp_auth_secure(void)
{
    return s_secure;
}

int odp_auth_start(const char *service)
{
    s_secure = odp_config_secure();
    if (!s_secure) {
        odp_warn("event=auth.local msg=\"SECURITY OFF: ODP_SECURITY=local - no CURVE, no ZAP, "
                 "loopback only, every request acts as operations:local. Never run this in "
                 "production.\"");
        return 0;
    }
    const char *dir = odp_config(service, "CERT_DIR", NULL);
    const char *cert = odp_config(service, "SERVER_CERT", NULL);
    if (!dir || !cert) {
        odp_error("event=auth.config msg=\"ODP_CERT_DIR and ODP_SERVER_CERT must be set "
                  "(or ODP_SECURITY=local for development)\"");
        return -1;
    }
    if (!zsys_file_exists(dir)) {
        odp_error("event=auth.config msg=\"ODP_CERT_DIR does not exist\" dir=%s", dir);
        return -1;
    }
    char secret[512];
    snprintf(secret, sizeof secret, "%s_secret", cert);
    if (!zsys_file_exists(secret)) {
        odp_error("event=auth.config msg=\"server secret certificate missing\" path=%s", secret);
        return -1;
    }
    s_server_cert = zcert_load(cert);
    if (!s_server_cert) {
        odp_error("event=auth.config msg=\"cannot load server certificate\" path=%s", cert);
        return -1;
    }
    s_zap = zactor_new(zauth, NULL);
    if (!s_zap)
        return -1;
    /*  zauth answers ZAP for every socket of this process's context; CURVE with a
        directory admits exactly the keys that have a certificate there, and the
        certificate store notices files added later. */
    zstr_sendx(s_zap, "CURVE", dir, NULL);
    zsock_wait(s_zap);
    odp_info("event=auth.curve cert_dir=%s server_key=%s", dir, zcert_public_txt(s_server_cert));
    return 0;
}

void odp_auth_stop(void)
{
    zactor_destroy(&s_zap);
    zcert_destroy(&s_server_cert);
}

int odp_auth_server(zsock_t *sock)
{
    if (!s_secure)
        return 0;
    if (!s_server_cert)
        return -1;
    zcert_apply(s_server_cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, "odp");
    return 0;
}

bool odp_auth_endpoint_ok(const char *ep)
{
    if (s_secure)
        return true;
    return strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0 ||
           strncmp(ep, "tcp://127.", 10) == 0 || strncmp(ep, "tcp://localhost:", 16) == 0 ||
           strncmp(ep, "tcp://[::1]:", 12) == 0;
}

static void s_copy_meta(zframe_t *frame, const char *prop, char *dst, size_t size)
{
    const char *v = frame ? zframe_meta(frame, prop) : NULL;
    snprintf(dst, size, "%s", v ? v : "");
}

void odp_auth_actor(zframe_t *frame, odp_actor_t *a)
{
    memset(a, 0, sizeof *a);
    if (!s_secure) {
        snprintf(a->kind, sizeof a->kind, "operations");
        snprintf(a->id, sizeof a->id, "local");
        snprintf(a->name, sizeof a->name, "local development");
        return;
    }
    s_copy_meta(frame, "kind", a->kind, sizeof a->kind);
    s_copy_meta(frame, "id", a->id, sizeof a->id);
    s_copy_meta(frame, "name", a->name, sizeof a->name);
    s_copy_meta(frame, "User-Id", a->key, sizeof a->key);
    if (!a->kind[0])
        snprintf(a->kind, sizeof a->kind, "anonymous");
}

const char *odp_actor_str(const odp_actor_t *a, char *buf, size_t size)
{
    if (a->id[0])
        snprintf(buf, size, "%s:%s", a->kind, a->id);
    else
        snprintf(buf, size, "%s", a->kind);
    return buf;
}

int odp_auth_client(zsock_t *sock, const char *cert_path, char *err, size_t errsize)
{
    if (!odp_config_secure())
        return 0;
    const char *server = odp_config(NULL, "SERVER_CERT", NULL);
    const char *mine = cert_path ? cert_path : odp_config(NULL, "CLIENT_CERT", NULL);
    if (!server || !mine) {
        snprintf(err, errsize,
                 "set ODP_SERVER_CERT (the server's public certificate) and "
                 "ODP_CLIENT_CERT (your secret certificate)");
        return -1;
    }
    zcert_t *srv = zcert_load(server);
    if (!srv) {
        snprintf(err, errsize, "cannot read server certificate %s", server);
        return -1;
    }
    zcert_t *me = zcert_load(mine);
    if (!me) {
        zcert_destroy(&srv);
        snprintf(err, errsize, "cannot read client certificate %s", mine);
        return -1;
    }
    zcert_apply(me, sock);
    zsock_set_curve_serverkey(sock, zcert_public_txt(srv));
    zcert_destroy(&me);
    zcert_destroy(&srv);
    return 0;
}

int odp_auth_service_cert(const char *service, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!odp_config_secure())
        return 0;
    const char *path = odp_config(service, "SERVICE_CERT", NULL);
    if (path) {
        snprintf(buf, size, "%s", path);
        return 0;
    }
    const char *dir = odp_config(NULL, "SERVICE_KEYS", NULL);
    if (!dir)
        return -1;
    snprintf(buf, size, "%s/service-%s_secret", dir, service);
    return 0;
}

int odp_auth_keygen(const char *kind, const char *id, const char *name, const char *base,
                    char *public_key)
{
    zcert_t *c = zcert_new();
    if (!c)
        return -1;
    zcert_set_meta(c, "kind", "%s", kind);
    zcert_set_meta(c, "id", "%s", id);
    if (name && *name)
        zcert_set_meta(c, "name", "%s", name);
    int rc = zcert_save(c, base);
    if (rc == 0) {
        char secret[1024];
        snprintf(secret, sizeof secret, "%s_secret", base);
        chmod(secret, 0600);
        if (public_key)
            snprintf(public_key, 41, "%s", zcert_public_txt(c));
    }
    zcert_destroy(&c);
    return rc;
}

static void s_key_path(const char *dir, const char *public_key, char *path, size_t size)
{
    /*  Z85 keys hold '/', '.', '*' and the like: name the file by the hex of the key. */
    uint8_t bin[32];
    char hex[65] = "";
    if (zmq_z85_decode(bin, public_key))
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", bin[i]);
    snprintf(path, size, "%s/%s.cert", dir, hex);
}

int odp_auth_publish_key(const char *dir, const char *kind, const char *id, const char *name,
                         const char *public_key)
{
    uint8_t bin[32];
    if (strlen(public_key) != 40 || !zmq_z85_decode(bin, public_key))
        return -1;
    zcert_t *c = zcert_new_from(bin, bin); /* secret unused: only the public part is saved */
    if (!c)
        return -1;
    zcert_set_meta(c, "kind", "%s", kind);
    zcert_set_meta(c, "id", "%s", id);
    if (name && *name)
        zcert_set_meta(c, "name", "%s", name);
    char path[1024], tmp[1100];
    s_key_path(dir, public_key, path, sizeof path);
    /*  Write beside the directory, then rename in: czmq's certificate store reloads when
        the directory's file count, size or mtime changes, so a half-written file inside
        it could be read once and then never again. */
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", dir, (int)getpid());
    int rc = zcert_save_public(c, tmp);
    if (rc == 0)
        rc = rename(tmp, path);
    zcert_destroy(&c);
    return rc;
}

int odp_auth_unpublish_key(const char *dir, const char *public_key)
{
    char path[1024];
    s_key_path(dir, public_key, path, sizeof path);
    return unlink(path) == 0 ? 0 : -1;
}
