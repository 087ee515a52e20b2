#include "auth.h"

#include "config.h"
#include "log.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*  The keys the platform knows: the public certificates in ODP_CERT_DIR, by Z85 key.
    Read by the ZAP thread at each handshake and by the service thread at each request, so
    it sits behind a mutex. It is reloaded when the directory changes (count, size, mtime:
    the registrar renames files in, so each change moves the mtime); `generation` counts
    reloads that removed a key, which is what cuts open connections and subscriptions. */
typedef struct {
    pthread_mutex_t lock;
    char dir[512];
    zhashx_t *certs; /* Z85 public key -> zcert_t (public part, metadata) */
    struct timespec mtime;
    off_t size;
    nlink_t nlink;
    bool loaded;
    int64_t loaded_ms; /* wall clock of the last read */
    uint64_t generation;
} s_keystore_t;

static s_keystore_t s_keys = {.lock = PTHREAD_MUTEX_INITIALIZER};
static zactor_t *s_zap = NULL;
static zcert_t *s_server_cert = NULL;
static bool s_secure = true;

static void s_cert_free(void **item)
{
    zcert_destroy((zcert_t **)item);
}

/*  Under the lock. */
static void s_keystore_refresh(s_keystore_t *k)
{
    struct stat st;
    if (stat(k->dir, &st) < 0)
        return;
    /*  A directory's mtime moves in coarse clock ticks (milliseconds): a file renamed in
        during the same tick as the last reload leaves it unchanged. So while the mtime
        is recent, the directory is read again at most every 100 ms whatever it says. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    bool recent = now_ms - mtime_ms < 2000 && now_ms - k->loaded_ms >= 100;
    if (k->loaded && !recent && st.st_mtim.tv_sec == k->mtime.tv_sec &&
        st.st_mtim.tv_nsec == k->mtime.tv_nsec && st.st_size == k->size && st.st_nlink == k->nlink)
        return;
    k->loaded_ms = now_ms;
    zhashx_t *fresh = zhashx_new();
    zhashx_set_destructor(fresh, s_cert_free);
    DIR *d = opendir(k->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".cert") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", k->dir, e->d_name);
        zcert_t *c = zcert_load(path);
        if (c && zhashx_insert(fresh, zcert_public_txt(c), c) != 0)
            zcert_destroy(&c);
    }
    if (d)
        closedir(d);
    bool removed = false;
    if (k->certs)
        for (void *c = zhashx_first(k->certs); c && !removed; c = zhashx_next(k->certs))
            removed = !zhashx_lookup(fresh, zhashx_cursor(k->certs));
    zhashx_destroy(&k->certs);
    k->certs = fresh;
    if (removed)
        k->generation++;
    k->mtime = st.st_mtim;
    k->size = st.st_size;
    k->nlink = st.st_nlink;
    k->loaded = true;
}

/*  ZMTP metadata (RFC 23/37 properties): name length (1 octet), name, value length
    (4 octets, network order), value. The ZAP reply carries it; libzmq attaches it to
    every message the peer sends, where zframe_meta reads it. */
static void s_meta_put(zchunk_t *out, const char *name, const char *value)
{
    if (!value)
        return;
    size_t nl = strlen(name), vl = strlen(value);
    uint8_t hdr[4] = {(uint8_t)(vl >> 24), (uint8_t)(vl >> 16), (uint8_t)(vl >> 8), (uint8_t)vl};
    uint8_t n8 = (uint8_t)nl;
    zchunk_extend(out, &n8, 1);
    zchunk_extend(out, name, nl);
    zchunk_extend(out, hdr, 4);
    zchunk_extend(out, value, vl);
}

/*  One ZAP request (RFC 27) -> reply. Policy by the socket's ZAP domain:
      odp         registered keys only, acting as their certificate says;
      odp.public  any key; a registered one acts as its certificate says, any other as
                  anonymous (no kind);
      odp.events  registered keys of operations, services and the authority only: the
                  live stream carries every department's events (PROTOCOL.md §9). */
static void s_zap_answer(zsock_t *handler)
{
    zmsg_t *req = zmsg_recv(handler);
    if (!req)
        return;
    char *version = zmsg_popstr(req);
    char *request_id = zmsg_popstr(req);
    char *domain = zmsg_popstr(req);
    char *address = zmsg_popstr(req);
    char *identity = zmsg_popstr(req);
    char *mechanism = zmsg_popstr(req);
    zframe_t *key = zmsg_pop(req);
    const char *status = "400", *text = "no access";
    char user[41] = "";
    zchunk_t *meta = zchunk_new(NULL, 256);
    if (mechanism && strcmp(mechanism, "CURVE") == 0 && key && zframe_size(key) == 32 && domain) {
        zmq_z85_encode(user, zframe_data(key), 32);
        pthread_mutex_lock(&s_keys.lock);
        s_keystore_refresh(&s_keys);
        zcert_t *c = zhashx_lookup(s_keys.certs, user);
        const char *kind = c ? zcert_meta(c, "kind") : NULL;
        if (c && (strcmp(domain, "odp") == 0 || strcmp(domain, "odp.public") == 0 ||
                  (strcmp(domain, "odp.events") == 0 && kind &&
                   (strcmp(kind, "operations") == 0 || strcmp(kind, "service") == 0 ||
                    strcmp(kind, "authority") == 0)))) {
            status = "200";
            text = "OK";
            s_meta_put(meta, "kind", kind);
            s_meta_put(meta, "id", zcert_meta(c, "id"));
            s_meta_put(meta, "name", zcert_meta(c, "name"));
        } else if (!c && strcmp(domain, "odp.public") == 0) {
            status = "200";
            text = "OK";
        } else if (c) {
            text = "this key may not subscribe to the live event stream";
        } else {
            text = "key not registered";
        }
        pthread_mutex_unlock(&s_keys.lock);
    }
    odp_debug("event=auth.zap domain=%s address=%s status=%s", domain ? domain : "-",
              address ? address : "-", status);
    zmsg_t *rep = zmsg_new();
    zmsg_addstr(rep, "1.0");
    zmsg_addstr(rep, request_id ? request_id : "");
    zmsg_addstr(rep, status);
    zmsg_addstr(rep, text);
    zmsg_addstr(rep, strcmp(status, "200") == 0 ? user : "");
    zmsg_addmem(rep, zchunk_data(meta), zchunk_size(meta));
    zmsg_send(&rep, handler);
    zchunk_destroy(&meta);
    zframe_destroy(&key);
    free(version);
    free(request_id);
    free(domain);
    free(address);
    free(identity);
    free(mechanism);
    zmsg_destroy(&req);
}

/*  czmq's zauth applies one policy to every socket of the process; odp needs one per
    endpoint (registered, public, events), so it answers ZAP itself (docs/design.md). */
static void s_zap_actor(zsock_t *pipe, void *args)
{
    (void)args;
    zsock_t *handler = zsock_new(ZMQ_REP);
    if (!handler || zsock_bind(handler, "inproc://zeromq.zap.01") < 0) {
        zsock_destroy(&handler);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, handler, NULL);
    while (true) {
        void *which = zpoller_wait(poller, -1);
        if (which == handler)
            s_zap_answer(handler);
        else {
            /*  Anything on the pipe ($TERM) or an interrupted wait ends the handler. */
            if (which == pipe) {
                zmsg_t *m = zmsg_recv(pipe);
                zmsg_destroy(&m);
            }
            break;
        }
    }
    zpoller_destroy(&poller);
    zsock_destroy(&handler);
}

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
    pthread_mutex_lock(&s_keys.lock);
    snprintf(s_keys.dir, sizeof s_keys.dir, "%s", dir);
    s_keys.loaded = false;
    s_keystore_refresh(&s_keys);
    pthread_mutex_unlock(&s_keys.lock);
    s_zap = zactor_new(s_zap_actor, NULL);
    if (!s_zap)
        return -1;
    odp_info("event=auth.curve cert_dir=%s server_key=%s", dir, zcert_public_txt(s_server_cert));
    return 0;
}

void odp_auth_stop(void)
{
    zactor_destroy(&s_zap);
    zcert_destroy(&s_server_cert);
    pthread_mutex_lock(&s_keys.lock);
    zhashx_destroy(&s_keys.certs);
    s_keys.loaded = false;
    pthread_mutex_unlock(&s_keys.lock);
}

bool odp_auth_key_current(const char *key, uint64_t *generation)
{
    if (!s_secure)
        return true;
    pthread_mutex_lock(&s_keys.lock);
    s_keystore_refresh(&s_keys);
    bool ok = key && *key && s_keys.certs && zhashx_lookup(s_keys.certs, key);
    if (generation)
        *generation = s_keys.generation;
    pthread_mutex_unlock(&s_keys.lock);
    return ok;
}

bool odp_auth_key_listed(const char *key)
{
    if (!s_secure)
        return true;
    pthread_mutex_lock(&s_keys.lock);
    bool ok = key && *key && s_keys.certs && zhashx_lookup(s_keys.certs, key);
    pthread_mutex_unlock(&s_keys.lock);
    return ok;
}

int odp_auth_server(zsock_t *sock)
{
    return odp_auth_server_domain(sock, "odp");
}

int odp_auth_server_domain(zsock_t *sock, const char *domain)
{
    if (!s_secure)
        return 0;
    if (!s_server_cert)
        return -1;
    zcert_apply(s_server_cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, domain);
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
