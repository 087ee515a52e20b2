/*  wbench: load for the web comparison of tests/bench/run.sh (issue 13).

      wbench pair PORT PATH COMMAND JSON CONC SECONDS SLICE
          GET PATH on 127.0.0.1:PORT (the gateway) from CONC keep-alive connections, and
          the same request straight to the query service (ODP_QUERY_ENDPOINT,
          ODP_CLIENT_CERT: COMMAND with the JSON body packed as msgpack) from CONC
          clients, taking turns in slices of SLICE seconds, SECONDS a side in all:
          prints "direct_req/s gateway_req/s"
      wbench get PORT PATH FILE   one GET saved to FILE: prints "seconds bytes"

    Taking turns in short slices, rather than one side then the other, keeps the load
    others put on a shared machine the same for both. Every answer must be 200 (the run
    stops otherwise): a rate limit or an error would make the numbers meaningless. */
#include "common/client.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int s_port;
static const char *s_path, *s_cmd;
static msgpack_sbuffer s_body;

/*  The pair run: which side may send (S_NONE while the main thread switches), and per side
    the requests in flight, done, failed. */
enum { S_NONE, S_ZMQ, S_HTTP };
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_turn = PTHREAD_COND_INITIALIZER;
static int s_phase = S_NONE;
static bool s_stop = false;
static atomic_long s_inflight[3], s_done[3], s_bad[3];

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*  One keep-alive GET: 0 when the answer was 200 and read whole (Content-Length). */
static int s_get(int fd, char *buf, size_t cap)
{
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", s_path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "Content-Length:");
    if (!cl || cl > end)
        return -1;
    size_t want = (size_t)(end + 4 - buf) + (size_t)atol(cl + 15);
    while (len < want) {
        ssize_t r = recv(fd, buf, cap - 1 < want - len ? cap - 1 : want - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }
    return status == 200 ? 0 : -1;
}

/*  Wait for this side's turn: false when the run is over. Counts the request in flight
    under the lock, so the main thread's drain sees it. */
static bool s_my_turn(int side)
{
    pthread_mutex_lock(&s_lock);
    while (!s_stop && s_phase != side)
        pthread_cond_wait(&s_turn, &s_lock);
    bool go = !s_stop;
    if (go)
        atomic_fetch_add(&s_inflight[side], 1);
    pthread_mutex_unlock(&s_lock);
    return go;
}

static void s_finished(int side, bool ok)
{
    atomic_fetch_add(ok ? &s_done[side] : &s_bad[side], 1);
    atomic_fetch_sub(&s_inflight[side], 1);
}

static void *s_http_worker(void *arg)
{
    (void)arg;
    size_t cap = 1 << 22;
    char *buf = malloc(cap);
    int fd = s_connect();
    while (fd >= 0 && s_my_turn(S_HTTP)) {
        bool ok = s_get(fd, buf, cap) == 0;
        s_finished(S_HTTP, ok);
        if (!ok)
            break;
    }
    if (fd < 0)
        atomic_fetch_add(&s_bad[S_HTTP], 1);
    else
        close(fd);
    free(buf);
    return NULL;
}

static void *s_zmq_worker(void *arg)
{
    (void)arg;
    char err[256];
    odp_client_t *c = odp_client_new("query", NULL, NULL, err, sizeof err);
    while (c && s_my_turn(S_ZMQ)) {
        odp_reply_t rep;
        int rc = odp_client_call_raw(c, s_cmd, s_body.data, s_body.size, 10000, &rep);
        bool ok = rc == 0 && rep.status == 200;
        odp_reply_free(&rep);
        s_finished(S_ZMQ, ok);
        if (!ok)
            break;
    }
    if (!c)
        atomic_fetch_add(&s_bad[S_ZMQ], 1);
    odp_client_destroy(&c);
    return NULL;
}

/*  conc connections a side, made before any clock runs; then slices of slice_s seconds,
    the sides taking turns in the order ZMQ HTTP HTTP ZMQ ... so that drift on a busy
    machine falls on both alike. A side's clock runs from its turn's start until its last
    request of the turn has come back. Prints "zmq_req/s http_req/s". */
static int s_pair(int conc, double seconds, double slice_s)
{
    pthread_t t[2][256];
    if (conc < 1 || conc > 256 || slice_s <= 0)
        return 2;
    for (int i = 0; i < conc; i++) {
        pthread_create(&t[0][i], NULL, s_zmq_worker, NULL);
        pthread_create(&t[1][i], NULL, s_http_worker, NULL);
    }
    /*  Let both sides connect (CURVE handshakes, TCP) outside the clocks. */
    usleep(300 * 1000);
    double spent[3] = {0, 0, 0};
    int slices = (int)(2 * seconds / slice_s + 0.5);
    for (int k = 0; k < slices && !atomic_load(&s_bad[S_ZMQ]) && !atomic_load(&s_bad[S_HTTP]);
         k++) {
        int side = (k % 4 == 0 || k % 4 == 3) ? S_ZMQ : S_HTTP;
        double t0 = s_now();
        pthread_mutex_lock(&s_lock);
        s_phase = side;
        pthread_cond_broadcast(&s_turn);
        pthread_mutex_unlock(&s_lock);
        usleep((useconds_t)(slice_s * 1e6));
        pthread_mutex_lock(&s_lock);
        s_phase = S_NONE;
        pthread_mutex_unlock(&s_lock);
        while (atomic_load(&s_inflight[side]))
            usleep(100);
        spent[side] += s_now() - t0;
    }
    pthread_mutex_lock(&s_lock);
    s_stop = true;
    pthread_cond_broadcast(&s_turn);
    pthread_mutex_unlock(&s_lock);
    for (int i = 0; i < conc; i++) {
        pthread_join(t[0][i], NULL);
        pthread_join(t[1][i], NULL);
    }
    if (atomic_load(&s_bad[S_ZMQ]) || atomic_load(&s_bad[S_HTTP])) {
        fprintf(stderr, "wbench: %ld direct and %ld HTTP requests failed\n",
                atomic_load(&s_bad[S_ZMQ]), atomic_load(&s_bad[S_HTTP]));
        return 1;
    }
    printf("%.1f %.1f\n", (double)atomic_load(&s_done[S_ZMQ]) / spent[S_ZMQ],
           (double)atomic_load(&s_done[S_HTTP]) / spent[S_HTTP]);
    return 0;
}

static void s_pack(msgpack_packer *pk, json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach(v, k, x)
        {
            msgpack_pack_str_with_body(pk, k, strlen(k));
            s_pack(pk, x);
        }
        break;
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, x) s_pack(pk, x);
        break;
    case JSON_STRING:
        msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    default:
        msgpack_pack_nil(pk);
    }
}

int main(int argc, char **argv)
{
    zsys_init();
    if (argc == 9 && strcmp(argv[1], "pair") == 0) {
        s_port = atoi(argv[2]);
        s_path = argv[3];
        s_cmd = argv[4];
        json_t *j = json_loads(argv[5], 0, NULL);
        if (!j)
            return 2;
        msgpack_sbuffer_init(&s_body);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &s_body, msgpack_sbuffer_write);
        s_pack(&pk, j);
        json_decref(j);
        return s_pair(atoi(argv[6]), atof(argv[7]), atof(argv[8]));
    }
    if (argc == 5 && strcmp(argv[1], "get") == 0) {
        s_port = atoi(argv[2]);
        FILE *out = fopen(argv[4], "wb");
        int fd = s_connect();
        if (!out || fd < 0)
            return 1;
        char req[2048], buf[1 << 16];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", argv[3]);
        double t0 = s_now();
        send(fd, req, (size_t)n, MSG_NOSIGNAL);
        bool head = true;
        long bytes = 0;
        ssize_t r;
        while ((r = recv(fd, buf, sizeof buf - 1, 0)) > 0) {
            if (head) {
                /*  The status line and headers come in the first segment. */
                buf[r] = '\0';
                char *e = strstr(buf, "\r\n\r\n");
                if (!e || atoi(buf + 9) != 200)
                    return 1;
                head = false;
                size_t body = (size_t)r - (size_t)(e + 4 - buf);
                fwrite(e + 4, 1, body, out);
                bytes += (long)body;
                continue;
            }
            fwrite(buf, 1, (size_t)r, out);
            bytes += r;
        }
        close(fd);
        fclose(out);
        printf("%.3f %ld\n", s_now() - t0, bytes);
        return head ? 1 : 0;
    }
    fprintf(stderr, "usage: wbench pair PORT PATH COMMAND JSON CONC SECONDS SLICE |"
                    " get PORT PATH FILE\n");
    return 2;
}
