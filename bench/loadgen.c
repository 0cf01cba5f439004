/* bench-loadgen: the load generator of `make bench` (method in bench/README.md).
 *
 * Drives an HTTPS server on loopback with --clients concurrent connections,
 * spread over --threads epoll loops of non-blocking OpenSSL clients (TLS 1.3,
 * default groups: X25519 first), and prints one line of key=value results on
 * stdout. Modes:
 *   enroll  POST a pre-generated ECDSA P-256 CSR (RFC 7030 4.2), one new TCP
 *           and TLS connection per request, Connection: close
 *   get     GET --path, a new connection per request or with --keepalive
 *   idle    open --conns keep-alive connections, one GET each, hold them idle
 *           and report the server's RSS before and after
 * For every --pid, the server's CPU time (utime+stime, /proc/PID/stat) and RSS
 * (VmRSS and VmHWM, /proc/PID/status) are read at the edges of the measured
 * window; several pids (nginx master and workers) are added up. Every loop is
 * bounded by the window plus a drain of LG_DRAIN_SECONDS. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proc.h"

#define LG_MAX_CLIENTS 100000
#define LG_MAX_THREADS 64
#define LG_MAX_PIDS 16
#define LG_MAX_CSRS 4096
#define LG_MAX_OTPS 100000
#define LG_MAX_SECONDS 600
#define LG_RESP_MAX (64 * 1024)           /* one response; larger is a protocol error */
#define LG_REQ_MAX (64 * 1024)            /* one request with its CSR */
#define LG_SAMPLES_MAX (20 * 1000 * 1000) /* latencies kept per thread */
#define LG_DRAIN_SECONDS 3                /* after the window: let in-flight requests end */
#define LG_SETTLE_SECONDS 2               /* idle mode: wait before reading RSS */
#define LG_ERR_LOG_MAX 3                  /* error details printed per thread and kind */
#define LG_EVENTS 256
#define NS 1000000000ULL

enum lg_mode { LG_ENROLL, LG_GET, LG_IDLE };

/* Why a request failed; counted separately. */
enum lg_err {
    LG_E_CONNECT,    /* socket or connect */
    LG_E_TLS,        /* handshake */
    LG_E_IO,         /* write or read after the handshake */
    LG_E_EOF,        /* closed before the response was complete */
    LG_E_PROTO,      /* response not HTTP/1.1 as expected, or too large */
    LG_E_HTTP,       /* complete response with a status other than 2xx */
    LG_E_UNFINISHED, /* still running when the drain ended */
    LG_E__MAX
};

static const char *const lg_err_names[LG_E__MAX] = {
    "connect", "tls", "io", "eof", "proto", "http", "unfinished",
};

enum lg_state { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_WRITE, ST_READ, ST_IDLE };

struct lg_opts {
    enum lg_mode mode;
    const char *host;
    int port;
    const char *path;
    const char *cafile;
    const char *servername;
    int clients;
    int threads;
    double seconds;
    double warmup;
    bool keepalive;
    const char *otp_file;
    const char *entity;
    const char *cert;
    const char *key;
    const char *cn;
    int ncsrs;
    int conns;
    pid_t pids[LG_MAX_PIDS];
    int npids;
};

/* Pre-built requests, shared read-only by all loops. */
struct lg_reqs {
    char **buf;
    size_t *len;
    size_t n;
};

struct lg_loop;

struct lg_conn {
    struct lg_loop *loop;
    enum lg_state st;
    int fd;
    SSL *ssl;
    const char *req; /* borrowed from lg_reqs */
    size_t req_len, req_off;
    char *buf; /* response, LG_RESP_MAX */
    size_t len;
    size_t hdr_end; /* 0 until the header block is complete */
    long long clen; /* Content-Length, -1 if absent */
    int status;
    bool server_close; /* Connection: close in the response */
    uint64_t t0;       /* request start (connect() for a new connection) */
};

/* One epoll loop and its share of the clients; touched only by its thread
 * until joined. */
struct lg_loop {
    const struct lg_opts *o;
    SSL_CTX *ctx;
    const struct lg_reqs *reqs;
    struct sockaddr_in addr;
    pthread_t th;
    int ep;
    struct lg_conn *conns;
    size_t nconns;
    size_t next_req;
    size_t inflight; /* connections in a state other than FREE and IDLE */
    uint64_t *lat;   /* ns, responses completed in the window */
    size_t nlat, caplat;
    uint64_t ok_window, ok_total, reconnects;
    uint64_t err_window[LG_E__MAX], err_total[LG_E__MAX];
    unsigned err_logged[LG_E__MAX];
    /* idle mode */
    size_t opened, ready, failed, dropped;
};

static uint64_t t_warm, t_stop, t_drain; /* CLOCK_MONOTONIC ns */
static atomic_bool lg_stop_idle;
static atomic_size_t lg_idle_done; /* loops that finished opening */

static void die(const char *msg)
{
    fprintf(stderr, "bench-loadgen: %s\n", msg);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        die("out of memory");
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / NS), .tv_nsec = (long)(t % NS)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ---- requests ---- */

static char *b64_encode(const unsigned char *in, size_t len)
{
    char *out = xcalloc(4 * ((len + 2) / 3) + 1, 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* A PKCS#10 request for a fresh P-256 key, base64 DER on one line. */
static char *csr_new_b64(const char *cn)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    char *b64 = NULL;
    int n;

    if (pk == NULL || req == NULL || name == NULL)
        die("cannot create a P-256 key");
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, pk) || X509_REQ_sign(req, pk, EVP_sha256()) <= 0)
        die("cannot sign a CSR");
    n = i2d_X509_REQ(req, &der);
    if (n <= 0)
        die("cannot encode a CSR");
    b64 = b64_encode(der, (size_t)n);
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(pk);
    return b64;
}

/* OTPs, one a line; at most LG_MAX_OTPS. */
static char **otps_load(const char *path, size_t *count)
{
    FILE *f = fopen(path, "r");
    char **otps = xcalloc(LG_MAX_OTPS, sizeof(*otps));
    char line[256];
    size_t n = 0;

    if (f == NULL)
        die("cannot open the OTP file");
    while (n < LG_MAX_OTPS && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != '\0')
            otps[n++] = strdup(line);
    }
    fclose(f);
    if (n == 0)
        die("no OTP in the OTP file");
    *count = n;
    return otps;
}

static void reqs_add(struct lg_reqs *r, char *buf, size_t len)
{
    r->buf[r->n] = buf;
    r->len[r->n] = len;
    r->n++;
}

static void reqs_build(const struct lg_opts *o, struct lg_reqs *r)
{
    char host[300];

    snprintf(host, sizeof(host), "%s:%d", o->servername, o->port);
    r->buf = xcalloc(LG_MAX_CSRS, sizeof(*r->buf));
    r->len = xcalloc(LG_MAX_CSRS, sizeof(*r->len));
    if (o->mode != LG_ENROLL) {
        char *buf = xcalloc(LG_REQ_MAX, 1);
        int n = snprintf(buf, LG_REQ_MAX,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kipuka-bench\r\n"
                         "Connection: %s\r\n\r\n",
                         o->path, host, o->keepalive ? "keep-alive" : "close");
        if (n <= 0 || n >= LG_REQ_MAX)
            die("request too long");
        reqs_add(r, buf, (size_t)n);
        return;
    }

    char **otps = NULL;
    size_t notps = 0;
    if (o->otp_file != NULL)
        otps = otps_load(o->otp_file, &notps);
    for (int i = 0; i < o->ncsrs; i++) {
        char cn[64], auth[512] = "";
        char *csr, *buf = xcalloc(LG_REQ_MAX, 1);
        int n;

        if (o->cn != NULL)
            snprintf(cn, sizeof(cn), "%s", o->cn);
        else
            snprintf(cn, sizeof(cn), "bench-device-%d", i);
        csr = csr_new_b64(cn);
        if (otps != NULL) {
            char cred[300];
            char *b64;
            int c = snprintf(cred, sizeof(cred), "%s:%s", o->entity, otps[(size_t)i % notps]);
            if (c <= 0 || (size_t)c >= sizeof(cred))
                die("entity or OTP too long");
            b64 = b64_encode((const unsigned char *)cred, (size_t)c);
            snprintf(auth, sizeof(auth), "Authorization: Basic %s\r\n", b64);
            OPENSSL_cleanse(cred, sizeof(cred));
            free(b64);
        }
        n = snprintf(buf, LG_REQ_MAX,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kipuka-bench\r\n%s"
                     "Content-Type: application/pkcs10\r\nContent-Transfer-Encoding: base64\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     o->path, host, auth, strlen(csr), csr);
        if (n <= 0 || n >= LG_REQ_MAX)
            die("request too long");
        reqs_add(r, buf, (size_t)n);
        free(csr);
    }
    for (size_t i = 0; i < notps; i++)
        free(otps[i]);
    free(otps);
}

/* ---- TLS client ---- */

static SSL_CTX *ctx_new(const struct lg_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* no session is ever offered back: every connection is a full handshake */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1)
        die("cannot load --cafile");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o->cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
            die("cannot load --cert/--key");
    }
    return ctx;
}

/* ---- connections ---- */

static void loop_err_log(struct lg_loop *l, enum lg_err kind, const char *detail)
{
    unsigned long e;

    if (l->err_logged[kind] >= LG_ERR_LOG_MAX) {
        ERR_clear_error();
        return;
    }
    l->err_logged[kind]++;
    e = ERR_peek_last_error();
    fprintf(stderr, "bench-loadgen: %s error: %s%s%s\n", lg_err_names[kind], detail, e ? ": " : "",
            e ? ERR_reason_error_string(e) : "");
    ERR_clear_error();
}

static void conn_close(struct lg_conn *c)
{
    if (c->ssl != NULL) {
        /* Connection: close is done: send close_notify, do not wait for the answer */
        if (SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->st != ST_FREE && c->st != ST_IDLE)
        c->loop->inflight--;
    c->st = ST_FREE;
    ERR_clear_error();
}

static void conn_reset_response(struct lg_conn *c)
{
    c->len = 0;
    c->hdr_end = 0;
    c->clen = -1;
    c->status = 0;
    c->server_close = false;
}

static void conn_next_request(struct lg_conn *c)
{
    struct lg_loop *l = c->loop;
    size_t i = l->next_req++ % l->reqs->n;

    c->req = l->reqs->buf[i];
    c->req_len = l->reqs->len[i];
    c->req_off = 0;
    conn_reset_response(c);
}

/* A new TCP connection; the TLS handshake starts once it is up. */
static bool conn_start(struct lg_conn *c)
{
    struct lg_loop *l = c->loop;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    int one = 1;

    conn_next_request(c);
    c->t0 = now_ns();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        loop_err_log(l, LG_E_CONNECT, strerror(errno));
        return false;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    l->inflight++;
    c->st = ST_CONNECTING;
    if (connect(c->fd, (const struct sockaddr *)&l->addr, sizeof(l->addr)) != 0 &&
        errno != EINPROGRESS) {
        loop_err_log(l, LG_E_CONNECT, strerror(errno));
        return false;
    }
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        loop_err_log(l, LG_E_CONNECT, strerror(errno));
        return false;
    }
    c->ssl = SSL_new(l->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, l->o->servername) != 1 ||
        SSL_set1_host(c->ssl, l->o->servername) != 1) {
        loop_err_log(l, LG_E_TLS, "SSL_new");
        return false;
    }
    SSL_set_connect_state(c->ssl);
    return true;
}

static bool in_window(uint64_t t)
{
    return t >= t_warm && t < t_stop;
}

static void loop_count_err(struct lg_loop *l, enum lg_err kind, uint64_t t)
{
    l->err_total[kind]++;
    if (in_window(t))
        l->err_window[kind]++;
}

/* Open the next connection on c's slot while the run goes on (enroll and
 * get); a failure to open counts and is retried on the loop's next pass,
 * which the window bounds. Idle mode opens from loop_open_more only. */
static void conn_restart(struct lg_conn *c)
{
    struct lg_loop *l = c->loop;

    if (l->o->mode == LG_IDLE || now_ns() >= t_stop)
        return;
    if (!conn_start(c)) {
        loop_count_err(l, LG_E_CONNECT, now_ns());
        conn_close(c);
    }
}

/* Idle mode: keep --clients handshakes going until every slot was tried. */
static void loop_open_more(struct lg_loop *l)
{
    while (l->inflight < (size_t)l->o->clients && l->opened < l->nconns &&
           !atomic_load(&lg_stop_idle)) {
        struct lg_conn *c = &l->conns[l->opened++];
        if (!conn_start(c)) {
            loop_count_err(l, LG_E_CONNECT, now_ns());
            l->failed++;
            conn_close(c);
        }
    }
}

static void conn_fail(struct lg_conn *c, enum lg_err kind, const char *detail)
{
    struct lg_loop *l = c->loop;

    loop_count_err(l, kind, now_ns());
    loop_err_log(l, kind, detail);
    if (l->o->mode == LG_IDLE)
        l->failed++;
    conn_close(c);
}

static bool hdr_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);

    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    *value = line + n + 1;
    while (**value == ' ' || **value == '\t')
        (*value)++;
    return true;
}

/* 1: the response is complete, 0: more bytes needed, -1: not what we speak. */
static int resp_parse(struct lg_conn *c, bool eof)
{
    if (c->hdr_end == 0) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        const char *p, *v;

        if (end == NULL)
            return eof ? -1 : 0;
        c->hdr_end = (size_t)(end - c->buf) + 4;
        *end = '\0'; /* headers become one string; the body is left alone */
        if (strncmp(c->buf, "HTTP/1.1 ", 9) != 0 && strncmp(c->buf, "HTTP/1.0 ", 9) != 0)
            return -1;
        c->status = (int)strtol(c->buf + 9, NULL, 10);
        for (p = strstr(c->buf, "\r\n"); p != NULL; p = strstr(p, "\r\n")) {
            const char *eol;
            size_t len;

            p += 2;
            eol = strstr(p, "\r\n");
            len = eol ? (size_t)(eol - p) : strlen(p);
            if (hdr_is(p, len, "Content-Length", &v))
                c->clen = strtoll(v, NULL, 10);
            else if (hdr_is(p, len, "Connection", &v) && strncasecmp(v, "close", 5) == 0)
                c->server_close = true;
            else if (hdr_is(p, len, "Transfer-Encoding", &v))
                return -1; /* neither kipuka nor nginx chunk a static body */
        }
    }
    if (c->clen >= 0) {
        size_t want = c->hdr_end + (size_t)c->clen;
        if (c->len > want)
            return -1; /* nothing was pipelined */
        return c->len == want ? 1 : (eof ? -1 : 0);
    }
    return eof ? 1 : 0;
}

/* A whole response: count it, then the next request on this connection or a
 * new one. Returns whether the connection goes on being driven. */
static bool conn_done(struct lg_conn *c)
{
    struct lg_loop *l = c->loop;
    uint64_t t = now_ns();
    bool ok = c->status >= 200 && c->status < 300;

    if (ok) {
        l->ok_total++;
        if (in_window(t)) {
            l->ok_window++;
            if (l->nlat < l->caplat)
                l->lat[l->nlat++] = t - c->t0;
        }
    } else {
        char detail[64];
        loop_count_err(l, LG_E_HTTP, t);
        snprintf(detail, sizeof(detail), "status %d", c->status);
        loop_err_log(l, LG_E_HTTP, detail);
    }
    if (l->o->mode == LG_IDLE) {
        if (!ok || c->server_close) {
            l->failed++;
            conn_close(c);
            return false;
        }
        c->st = ST_IDLE;
        l->inflight--;
        l->ready++;
        return false;
    }
    if (l->o->keepalive && !c->server_close && t < t_stop) {
        conn_next_request(c);
        c->t0 = t;
        c->st = ST_WRITE;
        return true;
    }
    if (l->o->keepalive && c->server_close)
        l->reconnects++;
    conn_close(c);
    conn_restart(c);
    return c->st != ST_FREE;
}

/* Advance c as far as it goes without blocking. */
static void conn_drive(struct lg_conn *c, uint32_t events)
{
    struct lg_loop *l = c->loop;
    int r, e;

    for (;;) {
        switch (c->st) {
        case ST_FREE:
            return;
        case ST_IDLE: {
            char b[256];
            /* nothing is expected on an idle connection but its end */
            r = SSL_read(c->ssl, b, sizeof(b));
            if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ &&
                !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                return;
            l->dropped++;
            l->ready--;
            conn_close(c);
            return;
        }
        case ST_CONNECTING: {
            int err = 0;
            socklen_t elen = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
                conn_fail(c, LG_E_CONNECT, strerror(err ? err : errno));
                conn_restart(c);
                return;
            }
            c->st = ST_HANDSHAKE;
            break;
        }
        case ST_HANDSHAKE:
            r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                c->st = ST_WRITE;
                break;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            conn_fail(c, LG_E_TLS, "handshake");
            conn_restart(c);
            return;
        case ST_WRITE:
            r = SSL_write(c->ssl, c->req + c->req_off, (int)(c->req_len - c->req_off));
            if (r > 0) {
                c->req_off += (size_t)r;
                if (c->req_off == c->req_len)
                    c->st = ST_READ;
                break;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            conn_fail(c, LG_E_IO, "write");
            conn_restart(c);
            return;
        case ST_READ: {
            bool eof = false;
            if (c->len == LG_RESP_MAX) {
                conn_fail(c, LG_E_PROTO, "response too large");
                conn_restart(c);
                return;
            }
            r = SSL_read(c->ssl, c->buf + c->len, (int)(LG_RESP_MAX - c->len));
            if (r > 0) {
                c->len += (size_t)r;
            } else {
                e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return;
                if (e != SSL_ERROR_ZERO_RETURN) {
                    conn_fail(c, LG_E_IO, "read");
                    conn_restart(c);
                    return;
                }
                eof = true;
            }
            r = resp_parse(c, eof);
            if (r < 0) {
                conn_fail(c, eof && c->hdr_end == 0 ? LG_E_EOF : LG_E_PROTO,
                          eof ? "closed before the response ended" : "malformed response");
                conn_restart(c);
                return;
            }
            if (r == 1 && !conn_done(c))
                return;
            break;
        }
        }
    }
}

/* ---- loops ---- */

static void *loop_run(void *arg)
{
    struct lg_loop *l = arg;
    struct epoll_event evs[LG_EVENTS];
    bool idle_reported = false;

    for (;;) {
        uint64_t t = now_ns();
        int n;

        if (l->o->mode == LG_IDLE) {
            if (atomic_load(&lg_stop_idle))
                break;
            loop_open_more(l);
            if (!idle_reported && l->opened == l->nconns && l->inflight == 0) {
                idle_reported = true;
                atomic_fetch_add(&lg_idle_done, 1);
            }
        } else {
            if (t >= t_drain || (t >= t_stop && l->inflight == 0))
                break;
            /* first pass, or a connection that could not be opened */
            for (size_t i = 0; i < l->nconns && t < t_stop; i++)
                if (l->conns[i].st == ST_FREE)
                    conn_restart(&l->conns[i]);
        }
        n = epoll_wait(l->ep, evs, LG_EVENTS, 50);
        for (int i = 0; i < n; i++)
            conn_drive(evs[i].data.ptr, evs[i].events);
    }
    for (size_t i = 0; i < l->nconns; i++) {
        struct lg_conn *c = &l->conns[i];
        if (c->st != ST_FREE && c->st != ST_IDLE)
            loop_count_err(l, LG_E_UNFINISHED, t_warm); /* counted in the window */
        conn_close(c);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    return (double)v[(size_t)(p * (double)(n - 1))] / 1e6;
}

/* ---- main ---- */

static void usage(void)
{
    fputs("usage: bench-loadgen enroll|get|idle --port N --cafile CA.pem [options]\n"
          "  --host A          IPv4 address (127.0.0.1)\n"
          "  --servername N    SNI and certificate host check (localhost)\n"
          "  --path P          request path\n"
          "  --clients N       concurrent connections (idle: handshakes in flight) (8)\n"
          "  --threads T       epoll loops (1)\n"
          "  --seconds S       measured window (10); --warmup S before it (1)\n"
          "  --keepalive       get: reuse connections\n"
          "  --otp-file F --entity ID   enroll: HTTP Basic ID:OTP, OTPs one a line\n"
          "  --cert F --key F  client certificate (mTLS)\n"
          "  --cn NAME         CSR subject CN (default bench-device-<i>); --csrs N (256)\n"
          "  --conns K         idle: connections to hold (10000)\n"
          "  --pid PID         server process to sample (repeatable)\n",
          stderr);
    exit(2);
}

static double arg_num(const char *s, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

static void opts_parse(int argc, char **argv, struct lg_opts *o)
{
    static const struct option lo[] = {{"host", required_argument, NULL, 'H'},
                                       {"port", required_argument, NULL, 'p'},
                                       {"path", required_argument, NULL, 'P'},
                                       {"cafile", required_argument, NULL, 'C'},
                                       {"servername", required_argument, NULL, 'S'},
                                       {"clients", required_argument, NULL, 'c'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"warmup", required_argument, NULL, 'w'},
                                       {"keepalive", no_argument, NULL, 'k'},
                                       {"otp-file", required_argument, NULL, 'o'},
                                       {"entity", required_argument, NULL, 'e'},
                                       {"cert", required_argument, NULL, 'x'},
                                       {"key", required_argument, NULL, 'y'},
                                       {"cn", required_argument, NULL, 'n'},
                                       {"csrs", required_argument, NULL, 'r'},
                                       {"conns", required_argument, NULL, 'K'},
                                       {"pid", required_argument, NULL, 'i'},
                                       {NULL, 0, NULL, 0}};
    int ch;

    if (argc < 2)
        usage();
    if (strcmp(argv[1], "enroll") == 0)
        o->mode = LG_ENROLL;
    else if (strcmp(argv[1], "get") == 0)
        o->mode = LG_GET;
    else if (strcmp(argv[1], "idle") == 0)
        o->mode = LG_IDLE;
    else
        usage();
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            o->port = (int)arg_num(optarg, 1, 65535);
            break;
        case 'P':
            o->path = optarg;
            break;
        case 'C':
            o->cafile = optarg;
            break;
        case 'S':
            o->servername = optarg;
            break;
        case 'c':
            o->clients = (int)arg_num(optarg, 1, LG_MAX_CLIENTS);
            break;
        case 't':
            o->threads = (int)arg_num(optarg, 1, LG_MAX_THREADS);
            break;
        case 's':
            o->seconds = arg_num(optarg, 0.1, LG_MAX_SECONDS);
            break;
        case 'w':
            o->warmup = arg_num(optarg, 0, LG_MAX_SECONDS);
            break;
        case 'k':
            o->keepalive = true;
            break;
        case 'o':
            o->otp_file = optarg;
            break;
        case 'e':
            o->entity = optarg;
            break;
        case 'x':
            o->cert = optarg;
            break;
        case 'y':
            o->key = optarg;
            break;
        case 'n':
            o->cn = optarg;
            break;
        case 'r':
            o->ncsrs = (int)arg_num(optarg, 1, LG_MAX_CSRS);
            break;
        case 'K':
            o->conns = (int)arg_num(optarg, 1, LG_MAX_CLIENTS);
            break;
        case 'i':
            if (o->npids == LG_MAX_PIDS)
                usage();
            o->pids[o->npids++] = (pid_t)arg_num(optarg, 1, 4194304);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || o->port == 0 || o->cafile == NULL ||
        (o->cert == NULL) != (o->key == NULL) || (o->otp_file != NULL && o->entity == NULL))
        usage();
    if (o->mode == LG_IDLE) {
        o->threads = 1;
        o->keepalive = true;
    }
    if (o->threads > o->clients && o->mode != LG_IDLE)
        o->threads = o->clients;
}

int main(int argc, char **argv)
{
    struct lg_opts o = {.host = "127.0.0.1",
                        .path = "/.well-known/est/cacerts",
                        .servername = "localhost",
                        .clients = 8,
                        .threads = 1,
                        .seconds = 10,
                        .warmup = 1,
                        .ncsrs = 256,
                        .conns = 10000};
    struct lg_reqs reqs = {0};
    struct lg_loop *loops;
    SSL_CTX *ctx;
    size_t total_conns;
    uint64_t t0;
    double cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0, mach0 = 0, mach1 = 0;
    long rss_before = 0, rss_after = 0;

    opts_parse(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    ctx = ctx_new(&o);
    reqs_build(&o, &reqs);

    total_conns = o.mode == LG_IDLE ? (size_t)o.conns : (size_t)o.clients;
    loops = xcalloc((size_t)o.threads, sizeof(*loops));
    for (int i = 0; i < o.threads; i++) {
        struct lg_loop *l = &loops[i];
        size_t share =
            total_conns / (size_t)o.threads + ((size_t)i < total_conns % (size_t)o.threads);

        l->o = &o;
        l->ctx = ctx;
        l->reqs = &reqs;
        l->addr.sin_family = AF_INET;
        l->addr.sin_port = htons((uint16_t)o.port);
        if (inet_pton(AF_INET, o.host, &l->addr.sin_addr) != 1)
            die("--host must be an IPv4 address");
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        if (l->ep < 0)
            die("epoll_create1");
        l->nconns = share;
        l->conns = xcalloc(share, sizeof(*l->conns));
        for (size_t j = 0; j < share; j++) {
            l->conns[j].loop = l;
            l->conns[j].fd = -1;
            l->conns[j].buf = xcalloc(LG_RESP_MAX, 1);
        }
        l->next_req = (size_t)i * 7919; /* loops start at different CSRs */
        if (o.mode != LG_IDLE) {
            /* room for 200,000 responses a second; beyond that only counted */
            double cap = o.seconds * 200000.0 + 1024.0;
            l->caplat = cap > LG_SAMPLES_MAX ? LG_SAMPLES_MAX : (size_t)cap;
            l->lat = xcalloc(l->caplat, sizeof(uint64_t));
        }
    }

    t0 = now_ns();
    if (o.mode == LG_IDLE) {
        /* the window is the whole hold, so every response counts */
        t_warm = t0;
        t_stop = t_drain = t0 + (uint64_t)(o.seconds * (double)NS);
        rss_before = proc_status_kb(o.pids, o.npids, "VmRSS");
    } else {
        t_warm = t0 + (uint64_t)(o.warmup * (double)NS);
        t_stop = t_warm + (uint64_t)(o.seconds * (double)NS);
        t_drain = t_stop + LG_DRAIN_SECONDS * NS;
    }
    for (int i = 0; i < o.threads; i++)
        if (pthread_create(&loops[i].th, NULL, loop_run, &loops[i]) != 0)
            die("pthread_create");

    if (o.mode == LG_IDLE) {
        /* --seconds bounds the time to open them all */
        while (atomic_load(&lg_idle_done) < (size_t)o.threads && now_ns() < t_stop)
            sleep_until(now_ns() + NS / 20);
        sleep_until(now_ns() + LG_SETTLE_SECONDS * NS);
        rss_after = proc_status_kb(o.pids, o.npids, "VmRSS");
        atomic_store(&lg_stop_idle, true);
    } else {
        sleep_until(t_warm);
        cpu0 = proc_cpu_seconds(o.pids, o.npids);
        self0 = self_cpu_seconds();
        mach0 = machine_busy_seconds();
        sleep_until(t_stop);
        cpu1 = proc_cpu_seconds(o.pids, o.npids);
        self1 = self_cpu_seconds();
        mach1 = machine_busy_seconds();
        rss_after = proc_status_kb(o.pids, o.npids, "VmRSS");
    }
    for (int i = 0; i < o.threads; i++)
        pthread_join(loops[i].th, NULL);

    /* merge */
    uint64_t ok = 0, reconnects = 0, errs[LG_E__MAX] = {0}, nerr = 0;
    size_t nlat = 0, ready = 0, failed = 0, dropped = 0;
    for (int i = 0; i < o.threads; i++) {
        ok += loops[i].ok_window;
        reconnects += loops[i].reconnects;
        nlat += loops[i].nlat;
        ready += loops[i].ready;
        failed += loops[i].failed;
        dropped += loops[i].dropped;
        for (int k = 0; k < LG_E__MAX; k++) {
            errs[k] += loops[i].err_window[k];
            nerr += loops[i].err_window[k];
        }
    }
    if (o.mode == LG_IDLE) {
        long hwm = proc_status_kb(o.pids, o.npids, "VmHWM");
        double per = ready ? (double)(rss_after - rss_before) * 1024.0 / (double)ready : 0;
        printf("mode=idle conns=%d open=%zu failed=%zu dropped=%zu rss_before_kb=%ld "
               "rss_after_kb=%ld bytes_per_conn=%.0f srv_hwm_kb=%ld\n",
               o.conns, ready, failed, dropped, rss_before, rss_after, per, hwm);
        return ready == (size_t)o.conns ? 0 : 1;
    }

    uint64_t *all = xcalloc(nlat ? nlat : 1, sizeof(uint64_t));
    size_t k = 0;
    for (int i = 0; i < o.threads; i++) {
        memcpy(all + k, loops[i].lat, loops[i].nlat * sizeof(uint64_t));
        k += loops[i].nlat;
    }
    qsort(all, nlat, sizeof(uint64_t), cmp_u64);
    double srv_cpu = cpu1 - cpu0, self_cpu = self1 - self0;
    /* what else ran on the machine meanwhile (other processes, interrupts) */
    double other = mach1 - mach0 - srv_cpu - self_cpu;
    printf("mode=%s clients=%d threads=%d window_s=%.3f ok=%" PRIu64 " rps=%.1f p50_ms=%.2f "
           "p90_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%" PRIu64,
           o.mode == LG_ENROLL ? "enroll" : "get", o.clients, o.threads, o.seconds, ok,
           (double)ok / o.seconds, pct_ms(all, nlat, 0.50), pct_ms(all, nlat, 0.90),
           pct_ms(all, nlat, 0.99), pct_ms(all, nlat, 1.0), nerr);
    for (int e = 0; e < LG_E__MAX; e++)
        printf(" err_%s=%" PRIu64, lg_err_names[e], errs[e]);
    printf(" reconnects=%" PRIu64 " srv_cpu_s=%.2f srv_cpu_pct=%.1f srv_cpu_us_per_req=%.1f "
           "lg_cpu_pct=%.1f other_cpu_pct=%.1f srv_rss_kb=%ld srv_hwm_kb=%ld\n",
           reconnects, srv_cpu, 100.0 * srv_cpu / o.seconds, ok ? srv_cpu * 1e6 / (double)ok : 0.0,
           100.0 * self_cpu / o.seconds, 100.0 * (other > 0 ? other : 0) / o.seconds, rss_after,
           proc_status_kb(o.pids, o.npids, "VmHWM"));
    free(all);
    return 0;
}
